/*
 * Pending transactional offsets and TxnOffsetCommit; see txn_offset_commit.h.
 *
 * The pending entries are a list under one mutex (transactions commit a handful of offsets).
 * A commit hands each group's entries to the group coordinator as one trusted OffsetCommit
 * (group_call.trusted) and answers once every group stored them durably.
 */
#include "broker/authorizer.h"
#include "broker/txn_offset_commit.h"
#include "broker/txn_verifier.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/groups.h"
#include "broker/handlers.h"
#include "broker/leadership.h"
#include "broker/partition.h"
#include "broker/commit_wait.h"
#include "broker/partition_append.h"
#include "group/coordinator.h"
#include "group/offsets_log.h"
#include "proto/gen/errors.h"
#include "proto/gen/offset_commit.h"
#include "proto/gen/txn_offset_commit.h"
#include "record/record_builder.h"

struct pending_offset {
    struct pending_offset *next;
    int64_t pid;
    int32_t shard; /* the group's __consumer_offsets partition */
    char *group, *topic, *metadata;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
};

struct txn_offsets {
    pthread_mutex_t mu; /* guards head */
    struct pending_offset *head;
};

static void pending_free(struct pending_offset *e)
{
    free(e->group);
    free(e->topic);
    free(e->metadata);
    free(e);
}

int txn_offsets_start(struct broker *b)
{
    struct txn_offsets *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    b->txn_offsets = t;
    return 0;
}

void txn_offsets_stop(struct broker *b)
{
    struct txn_offsets *t = b->txn_offsets;
    if (t == NULL)
        return;
    while (t->head) {
        struct pending_offset *e = t->head;
        t->head = e->next;
        pending_free(e);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
    b->txn_offsets = NULL;
}

/* Mutex held: adds or replaces the pending offset of (pid, group, topic, partition). */
static int pending_put_locked(struct txn_offsets *t, struct pending_offset *n)
{
    for (struct pending_offset *e = t->head; e; e = e->next)
        if (e->pid == n->pid && e->partition == n->partition && strcmp(e->group, n->group) == 0 &&
            strcmp(e->topic, n->topic) == 0) {
            e->offset = n->offset;
            e->leader_epoch = n->leader_epoch;
            free(e->metadata);
            e->metadata = n->metadata;
            n->metadata = NULL;
            pending_free(n);
            return 0;
        }
    n->next = t->head;
    t->head = n;
    return 0;
}

/* ---- the commit: one trusted OffsetCommit per group ---- */

struct commit_batch {
    atomic_int pending;
    atomic_int err;
    void (*cb)(void *arg, int16_t err);
    void *arg;
};

struct group_commit {
    struct group_call call;
    struct arena arena;
    struct kmsg_offset_commit_request req;
    struct kmsg_offset_commit_response resp;
    struct commit_batch *batch;
    struct pending_offset *entries; /* owned, freed once the group answered */
};

static void batch_part_done(struct commit_batch *cb, int16_t err)
{
    if (err != 0)
        atomic_store(&cb->err, err);
    if (atomic_fetch_sub(&cb->pending, 1) == 1) {
        cb->cb(cb->arg, (int16_t)atomic_load(&cb->err));
        free(cb);
    }
}

/* Owner worker of the group's shard: the offsets are stored (or refused). */
static void group_commit_done(struct group_call *c)
{
    struct group_commit *gc = c->user;
    int16_t err = 0;
    for (int32_t i = 0; i < gc->resp.topics.n && err == 0; i++)
        for (int32_t j = 0; j < gc->resp.topics.v[i].partitions.n && err == 0; j++)
            err = gc->resp.topics.v[i].partitions.v[j].error_code;
    /* Refused (the shard moved or started a replay since the completion looked): the marker
     * is in the log before any later replay starts, so that replay applies these offsets. */
    if (err != 0)
        logger_warn("txn",
                    "committing transactional offsets of group %.*s: error %d (the "
                    "next replay of the shard applies them)",
                    gc->req.group_id.len, gc->req.group_id.ptr, err);
    while (gc->entries) {
        struct pending_offset *e = gc->entries;
        gc->entries = e->next;
        pending_free(e);
    }
    struct commit_batch *b = gc->batch;
    arena_free(&gc->arena);
    free(gc);
    batch_part_done(b, err);
}

static char *kstr_dup(struct kstr k)
{
    return k.len >= 0 && k.ptr ? strndup(k.ptr, (size_t)k.len) : NULL;
}

static struct kstr arena_kstr(struct arena *a, const char *s)
{
    char *p = s ? arena_strndup(a, s, strlen(s)) : NULL;
    return p ? (struct kstr){p, (int32_t)strlen(p)} : KSTR_NULL;
}

/* Builds and submits the OffsetCommit of `list`'s entries (all of one group); takes them. */
static void group_commit_submit(struct broker *b, struct commit_batch *batch,
                                struct pending_offset *list)
{
    struct group_commit *gc = calloc(1, sizeof(*gc));
    if (gc == NULL) { /* kept pending: the marker is written again after this error */
        pthread_mutex_lock(&b->txn_offsets->mu);
        while (list) {
            struct pending_offset *e = list;
            list = e->next;
            pending_put_locked(b->txn_offsets, e);
        }
        pthread_mutex_unlock(&b->txn_offsets->mu);
        batch_part_done(batch, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    arena_init(&gc->arena, 0);
    gc->batch = batch;
    gc->entries = list;
    kmsg_offset_commit_request_init(&gc->req);
    kmsg_offset_commit_response_init(&gc->resp);
    gc->req.group_id = arena_kstr(&gc->arena, list->group);
    gc->req.generation_id_or_member_epoch = -1;
    gc->req.member_id = KSTR_LIT("");
    gc->req.group_instance_id = KSTR_NULL;
    size_t n = 0;
    for (struct pending_offset *e = list; e; e = e->next)
        n++;
    /* One topic entry per offset: the coordinator accepts repeated topic names. */
    struct kmsg_offset_commit_request_topic *ts = arena_calloc(&gc->arena, n, sizeof(*ts));
    size_t i = 0;
    for (struct pending_offset *e = list; ts && e; e = e->next, i++) {
        struct kmsg_offset_commit_request_partition *p = arena_calloc(&gc->arena, 1, sizeof(*p));
        if (p == NULL)
            break;
        kmsg_offset_commit_request_topic_init(&ts[i]);
        kmsg_offset_commit_request_partition_init(p);
        ts[i].name = arena_kstr(&gc->arena, e->topic);
        p->partition_index = e->partition;
        p->committed_offset = e->offset;
        p->committed_leader_epoch = e->leader_epoch;
        p->committed_metadata = arena_kstr(&gc->arena, e->metadata);
        ts[i].partitions.v = p;
        ts[i].partitions.n = 1;
    }
    gc->req.topics.v = ts;
    gc->req.topics.n = ts ? (int32_t)i : 0;
    gc->call.api_key = KPROTO_API_OFFSET_COMMIT;
    gc->call.api_version = 8;
    gc->call.req = &gc->req;
    gc->call.resp = &gc->resp;
    gc->call.arena = &gc->arena;
    gc->call.client_id = KSTR_LIT("gregor-txn");
    gc->call.client_host = "/127.0.0.1";
    gc->call.done = group_commit_done;
    gc->call.user = gc;
    gc->call.trusted = true;
    group_coordinator_submit(groups_coordinator(b), &gc->call);
}

void txn_offsets_complete(struct broker *b, int64_t pid, int32_t shard, bool commit,
                          void (*cb)(void *arg, int16_t err), void *arg)
{
    struct txn_offsets *t = b->txn_offsets;
    struct pending_offset *mine = NULL;
    struct group_coordinator *gcoord = groups_coordinator(b);
    if (group_coordinator_shard_loading(gcoord, shard)) {
        /* The replay may not read this marker and then restore the offsets as pending: try
         * again once it is done (an error makes the coordinator write the marker again). */
        cb(arg, KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS);
        return;
    }
    /* Not loaded: the next replay reads this marker from the log; what is held here is
     * dropped below, never committed from memory. */
    if (!group_coordinator_shard_loaded(gcoord, shard))
        commit = false;
    pthread_mutex_lock(&t->mu);
    for (struct pending_offset **pp = &t->head; *pp;) {
        struct pending_offset *e = *pp;
        if (e->pid == pid && e->shard == shard) {
            *pp = e->next;
            e->next = mine;
            mine = e;
        } else {
            pp = &e->next;
        }
    }
    pthread_mutex_unlock(&t->mu);
    struct commit_batch *batch = commit && mine ? calloc(1, sizeof(*batch)) : NULL;
    if (batch == NULL) {
        int16_t err = commit && mine ? KAFKA_ERR_UNKNOWN_SERVER_ERROR : 0;
        while (mine) {
            struct pending_offset *e = mine;
            mine = e->next;
            pending_free(e);
        }
        cb(arg, err);
        return;
    }
    batch->cb = cb;
    batch->arg = arg;
    atomic_init(&batch->pending, 1);
    atomic_init(&batch->err, 0);
    while (mine) { /* split by group */
        struct pending_offset *list = NULL;
        const char *g = mine->group;
        for (struct pending_offset **pp = &mine; *pp;) {
            struct pending_offset *e = *pp;
            if (strcmp(e->group, g) == 0) {
                *pp = e->next;
                e->next = list;
                list = e;
            } else {
                pp = &e->next;
            }
        }
        atomic_fetch_add(&batch->pending, 1);
        group_commit_submit(b, batch, list);
    }
    batch_part_done(batch, 0);
}

static bool kstr_is(struct kstr k, const char *s)
{
    return k.len >= 0 && (size_t)k.len == strlen(s) && memcmp(k.ptr, s, (size_t)k.len) == 0;
}

void txn_offsets_forget_shard(struct broker *b, int32_t shard)
{
    struct txn_offsets *t = b->txn_offsets;
    if (t == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    for (struct pending_offset **pp = &t->head; *pp;) {
        struct pending_offset *e = *pp;
        if (e->shard == shard) {
            *pp = e->next;
            pending_free(e);
        } else {
            pp = &e->next;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

bool txn_offsets_pending(struct broker *b, struct kstr group, struct kstr topic, int32_t partition)
{
    struct txn_offsets *t = b->txn_offsets;
    bool found = false;
    if (t == NULL)
        return false;
    pthread_mutex_lock(&t->mu);
    for (struct pending_offset *e = t->head; e && !found; e = e->next)
        found = e->partition == partition && kstr_is(group, e->group) && kstr_is(topic, e->topic);
    pthread_mutex_unlock(&t->mu);
    return found;
}

/* ---- TxnOffsetCommit ---- */

void txn_offsets_restore(struct broker *b, int32_t shard, int64_t pid, struct kstr group,
                         struct kstr topic, int32_t partition, int64_t offset, int32_t leader_epoch,
                         struct kstr metadata)
{
    struct txn_offsets *t = b->txn_offsets;
    struct pending_offset *e = t ? calloc(1, sizeof(*e)) : NULL;
    if (e == NULL)
        return;
    e->pid = pid;
    e->shard = shard;
    e->group = strndup(group.ptr, (size_t)(group.len > 0 ? group.len : 0));
    e->topic = strndup(topic.ptr, (size_t)(topic.len > 0 ? topic.len : 0));
    e->metadata = metadata.len > 0 ? strndup(metadata.ptr, (size_t)metadata.len) : strdup("");
    e->partition = partition;
    e->offset = offset;
    e->leader_epoch = leader_epoch;
    if (e->group == NULL || e->topic == NULL || e->metadata == NULL) {
        pending_free(e);
        return;
    }
    pthread_mutex_lock(&t->mu);
    pending_put_locked(t, e);
    pthread_mutex_unlock(&t->mu);
}

static struct pending_offset *pending_new(int64_t pid, int32_t shard, struct kstr group,
                                          struct kstr topic,
                                          const struct kmsg_txn_offset_commit_request_partition *p,
                                          int16_t version)
{
    struct pending_offset *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->pid = pid;
    e->shard = shard;
    e->group = strndup(group.ptr, (size_t)group.len);
    e->topic = strndup(topic.ptr, (size_t)topic.len);
    e->metadata = p->committed_metadata.len >= 0
                      ? strndup(p->committed_metadata.ptr, (size_t)p->committed_metadata.len)
                      : strdup("");
    e->partition = p->partition_index;
    e->offset = p->committed_offset;
    e->leader_epoch = version >= 2 ? p->committed_leader_epoch : -1;
    if (e->group == NULL || e->topic == NULL || e->metadata == NULL) {
        pending_free(e);
        return NULL;
    }
    return e;
}

/*
 * The transaction's offset commits as one batch in Kafka's format: OffsetCommit records (key
 * version 1, value version 3) with the producer's id and epoch and the transactional bit; no
 * sequence (-1), as Kafka's coordinator writes them. *out malloc'ed. 0 or < 0.
 */
static int txn_batch_build(const struct kmsg_txn_offset_commit_request *req, int16_t version,
                           int64_t now_ms, uint8_t **out, size_t *out_len)
{
    struct record_builder b;
    record_builder_init(&b, RECORD_COMPRESSION_NONE);
    b.attributes = RECORD_ATTR_TRANSACTIONAL;
    b.producer_id = req->producer_id;
    b.producer_epoch = req->producer_epoch;
    b.base_sequence = -1;
    char *group = kstr_dup(req->group_id);
    int rc = group ? 0 : -ENOMEM;
    for (int32_t i = 0; rc == 0 && i < req->topics.n; i++) {
        char *topic = kstr_dup(req->topics.v[i].name);
        for (int32_t j = 0; topic && rc == 0 && j < req->topics.v[i].partitions.n; j++) {
            const struct kmsg_txn_offset_commit_request_partition *p =
                &req->topics.v[i].partitions.v[j];
            struct kmsg_offset_commit_value v;
            kmsg_offset_commit_value_init(&v);
            v.offset = p->committed_offset;
            v.leader_epoch = version >= 2 ? p->committed_leader_epoch : -1;
            v.metadata = p->committed_metadata.len >= 0 ? p->committed_metadata : KSTR_LIT("");
            v.commit_timestamp = now_ms;
            struct offsets_kv kv;
            rc = offsets_encode_commit(&kv, group, topic, p->partition_index, &v);
            if (rc == 0) {
                rc = record_builder_add(&b, now_ms, kv.key, kv.key_len, kv.value, kv.value_len,
                                        NULL, 0);
                offsets_kv_free(&kv);
            }
        }
        rc = topic ? rc : -ENOMEM;
        free(topic);
    }
    free(group);
    if (rc == 0 && b.count == 0)
        rc = -ENODATA;
    if (rc == 0)
        rc = record_builder_finish(&b, out, out_len);
    record_builder_release(&b);
    return rc;
}

struct txn_commit_req {
    struct broker_req *r;
    struct kmsg_txn_offset_commit_request req;
    struct kmsg_txn_offset_commit_request allowed; /* req without the topics denied READ */
    int16_t *topic_err; /* per topic of req: TOPIC_AUTHORIZATION_FAILED, else 0 */
    struct kmsg_txn_offset_commit_response resp;
    int32_t shard;
    struct partition *p;
    int16_t err;             /* answered for every partition */
    struct group_call check; /* KIP-447's member check, before the append */
    int16_t check_err;
    bool added;      /* v5: the offsets partition was added to the transaction */
    int16_t add_err; /* the coordinator's answer to that */
};

/* Fills every partition's error; on success holds the offsets until the marker. */
static void txn_commit_finish(void *arg)
{
    struct txn_commit_req *tr = arg;
    struct broker_req *r = tr->r;
    struct txn_offsets *t = r->b->txn_offsets;
    for (int32_t i = 0; i < tr->resp.topics.n; i++) {
        const struct kmsg_txn_offset_commit_request_topic *rt = &tr->req.topics.v[i];
        struct kmsg_txn_offset_commit_response_topic *o = &tr->resp.topics.v[i];
        for (int32_t j = 0; j < o->partitions.n; j++) {
            int16_t perr = tr->topic_err[i] != 0 ? tr->topic_err[i] : tr->err;
            struct pending_offset *e =
                perr ? NULL
                     : pending_new(tr->req.producer_id, tr->shard, tr->req.group_id, rt->name,
                                   &rt->partitions.v[j], r->hdr.api_version);
            if (perr == 0 && e == NULL)
                perr = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            if (e != NULL) {
                pthread_mutex_lock(&t->mu);
                pending_put_locked(t, e);
                pthread_mutex_unlock(&t->mu);
            }
            o->partitions.v[j].error_code = perr;
        }
    }
    broker_reply(r, (kproto_encode_fn)kmsg_txn_offset_commit_response_encode, &tr->resp);
}

/* A worker, after the commit wait: back to the request's worker. */
static void txn_commit_durable(void *arg, int err)
{
    struct txn_commit_req *tr = arg;
    partition_put(tr->p);
    tr->p = NULL;
    if (err != 0)
        tr->err = KAFKA_ERR_NOT_COORDINATOR;
    if (net_worker_post(net_request_worker(tr->r->nr), txn_commit_finish, tr) != 0)
        logger_warn("txn", "dropping a TxnOffsetCommit response during shutdown");
}

/* Appends the transaction's offsets to the group's partition; 0 when the answer will come
 * from the commit wait, else the Kafka error to answer now. */
static int16_t txn_commit_append(struct txn_commit_req *tr)
{
    struct broker *b = tr->r->b;
    tr->p = partition_get(b->parts, OFFSETS_TOPIC, tr->shard);
    if (tr->p == NULL)
        return KAFKA_ERR_NOT_COORDINATOR;
    uint8_t *batch = NULL;
    size_t len = 0;
    int rc = txn_batch_build(&tr->allowed, tr->r->hdr.api_version, clock_wall_ms(), &batch, &len);
    struct partition_append_result ar = {0};
    int16_t err = rc == -ENODATA ? 0 : rc != 0 ? KAFKA_ERR_UNKNOWN_SERVER_ERROR : 0;
    if (rc == 0) {
        rc = partition_append_batch(tr->p, batch, len, false, clock_wall_ms(), NULL, &ar);
        err = rc != 0 ? partition_error_from_storage(rc)
              : ar.kafka_error == KAFKA_ERR_NOT_LEADER_OR_FOLLOWER ? KAFKA_ERR_NOT_COORDINATOR
              : ar.kafka_error == KAFKA_ERR_INVALID_PRODUCER_EPOCH ? KAFKA_ERR_PRODUCER_FENCED
                                                                   : ar.kafka_error;
    }
    free(batch);
    if (rc == 0 && err == 0 &&
        partition_wait_committed_async(tr->p, ar.info.last_offset + 1, txn_commit_durable, tr) == 0)
        return 0;
    partition_put(tr->p);
    tr->p = NULL;
    return err != 0 ? err : rc == -ENODATA ? -1 : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
}

/* Appends, or answers the error now. The request's worker. */
static void txn_commit_proceed(struct txn_commit_req *tr)
{
    if (tr->err == 0) {
        int16_t err = txn_commit_append(tr);
        if (err == 0)
            return; /* answered once durable */
        tr->err = err < 0 ? 0 : err;
    }
    txn_commit_finish(tr);
}

static void txn_commit_continue(struct txn_commit_req *tr);

/* The request's worker: the coordinator answered the v5 addition. */
static void txn_commit_added(void *arg)
{
    struct txn_commit_req *tr = arg;
    switch (tr->add_err) {
    case 0:
        break;
    case KAFKA_ERR_PRODUCER_FENCED: /* Kafka's TxnOffsetCommit answers these as they come */
    case KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING:
    case KAFKA_ERR_TRANSACTION_ABORTABLE:
    case KAFKA_ERR_CONCURRENT_TRANSACTIONS:
    case KAFKA_ERR_INVALID_TXN_STATE:
        tr->err = tr->add_err;
        break;
    default: /* coordinator moving or unreachable: retriable for the client */
        tr->err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        break;
    }
    txn_commit_continue(tr);
}

static void txn_commit_add_cb(void *arg, int16_t err)
{
    struct txn_commit_req *tr = arg;
    tr->add_err = err;
    if (net_worker_post(net_request_worker(tr->r->nr), txn_commit_added, tr) != 0)
        logger_warn("txn", "dropping a TxnOffsetCommit response during shutdown");
}

/*
 * v5 (KIP-890 part 2, TV2): the client sent no AddOffsetsToTxn; the group's offsets partition
 * joins the transaction here, through the coordinator (Kafka's addPartition operation), before
 * anything is written. Older versions go straight on.
 */
static void txn_commit_continue(struct txn_commit_req *tr)
{
    if (tr->err == 0 && !tr->added && tr->r->hdr.api_version >= 5) {
        tr->added = true;
        char *id = broker_name(tr->r, tr->req.transactional_id);
        if (id == NULL) {
            tr->err = KAFKA_ERR_INVALID_REQUEST;
        } else {
            txn_verifier_check(tr->r->b, id, tr->req.producer_id, tr->req.producer_epoch,
                               OFFSETS_TOPIC, tr->shard, true, txn_commit_add_cb, tr);
            return;
        }
    }
    txn_commit_proceed(tr);
}

static void txn_commit_checked(void *arg)
{
    struct txn_commit_req *tr = arg;
    tr->err = tr->check_err;
    txn_commit_continue(tr);
}

/* The group's owner worker: back to the request's worker with the check's answer. */
static void txn_commit_check_done(struct group_call *c)
{
    struct txn_commit_req *tr = c->user;
    if (net_worker_post(net_request_worker(tr->r->nr), txn_commit_checked, tr) != 0)
        logger_warn("txn", "dropping a TxnOffsetCommit response during shutdown");
}

/* v3+ (KIP-447): a request naming a generation, member or static instance is checked against
 * the group like an OffsetCommit (Kafka's validateOffsetCommit, transactional) before anything
 * is written; older clients name none and are not checked. The group may move on between the
 * check and the append; its next rebalance fences the member's later commits. */
static bool txn_commit_needs_check(const struct txn_commit_req *tr)
{
    const struct kmsg_txn_offset_commit_request *q = &tr->req;
    return tr->r->hdr.api_version >= 3 &&
           (q->generation_id >= 0 || q->member_id.len > 0 || q->group_instance_id.len >= 0);
}

static void txn_commit_check_submit(struct txn_commit_req *tr)
{
    struct group_call *c = &tr->check;
    c->api_key = KPROTO_API_TXN_OFFSET_COMMIT;
    c->api_version = tr->r->hdr.api_version;
    c->req = &tr->req;
    c->resp = &tr->check_err;
    c->arena = tr->r->arena;
    c->client_id = KSTR_LIT("gregor-txn");
    c->client_host = "/127.0.0.1";
    c->done = txn_commit_check_done;
    c->user = tr;
    group_coordinator_submit(groups_coordinator(tr->r->b), c);
}

/*
 * Kafka's checks: WRITE on the transactional id and READ on the group (failing, every partition
 * gets the error), then READ on each topic: as in Kafka only the partitions of a topic the
 * principal may not read get TOPIC_AUTHORIZATION_FAILED (tr->topic_err); the others are
 * committed (tr->allowed holds them).
 */
static int16_t txn_commit_authorize(struct txn_commit_req *tr)
{
    struct broker_req *r = tr->r;
    const struct kmsg_txn_offset_commit_request *q = &tr->req;
    int32_t n = q->topics.n > 0 ? q->topics.n : 0;
    tr->allowed = *q;
    tr->topic_err = arena_calloc(r->arena, (size_t)n + 1, sizeof(*tr->topic_err));
    if (tr->topic_err == NULL)
        return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    if (!broker_authorizer_on(r->b))
        return 0;
    char *id = broker_name(r, q->transactional_id);
    if (id == NULL ||
        !broker_authorize(r, NULL, ACL_RESOURCE_TRANSACTIONAL_ID, id, ACL_OPERATION_WRITE))
        return KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    char *group = broker_name(r, q->group_id);
    if (group == NULL || !broker_authorize(r, NULL, ACL_RESOURCE_GROUP, group, ACL_OPERATION_READ))
        return KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
    tr->allowed.topics.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*q->topics.v));
    if (tr->allowed.topics.v == NULL)
        return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    tr->allowed.topics.n = 0;
    for (int32_t i = 0; i < n; i++) {
        char *topic = broker_name(r, q->topics.v[i].name);
        if (topic == NULL ||
            !broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, topic, ACL_OPERATION_READ))
            tr->topic_err[i] = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
        else
            tr->allowed.topics.v[tr->allowed.topics.n++] = q->topics.v[i];
    }
    return 0;
}

void handle_txn_offset_commit(struct broker_req *r)
{
    struct txn_commit_req *tr = arena_calloc(r->arena, 1, sizeof(*tr));
    if (tr == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    if (broker_decode(r, (kproto_decode_fn)kmsg_txn_offset_commit_request_decode, &tr->req) != 0)
        return;
    tr->r = r;
    kmsg_txn_offset_commit_response_init(&tr->resp);
    struct broker *b = r->b;
    tr->err = txn_commit_authorize(tr); /* before the coordinator check, as Kafka */
    if (tr->topic_err == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *ot = metadata_image_topic_by_name(img, OFFSETS_TOPIC);
    tr->shard = ot && tr->req.group_id.len > 0
                    ? offsets_partition_for(tr->req.group_id.ptr, (size_t)tr->req.group_id.len,
                                            (int32_t)ot->n_partitions)
                    : -1;
    if (tr->err == 0)
        tr->err = tr->shard < 0 ? KAFKA_ERR_COORDINATOR_NOT_AVAILABLE
                  : ot->partitions[tr->shard].leader != b->cfg.node_id ? KAFKA_ERR_NOT_COORDINATOR
                                                                       : 0;
    metadata_image_release(img);
    int32_t nt = tr->req.topics.n > 0 ? tr->req.topics.n : 0;
    tr->resp.topics.v = arena_calloc(r->arena, (size_t)nt + 1, sizeof(*tr->resp.topics.v));
    tr->resp.topics.n = tr->resp.topics.v ? nt : 0;
    for (int32_t i = 0; i < tr->resp.topics.n; i++) {
        const struct kmsg_txn_offset_commit_request_topic *rt = &tr->req.topics.v[i];
        struct kmsg_txn_offset_commit_response_topic *o = &tr->resp.topics.v[i];
        kmsg_txn_offset_commit_response_topic_init(o);
        o->name = rt->name;
        int32_t np = rt->partitions.n > 0 ? rt->partitions.n : 0;
        o->partitions.v = arena_calloc(r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? np : 0;
        for (int32_t j = 0; j < o->partitions.n; j++)
            o->partitions.v[j].partition_index = rt->partitions.v[j].partition_index;
    }
    if (tr->err == 0 && txn_commit_needs_check(tr)) {
        txn_commit_check_submit(tr);
        return;
    }
    txn_commit_continue(tr);
}
