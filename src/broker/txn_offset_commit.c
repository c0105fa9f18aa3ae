/*
 * Pending transactional offsets and TxnOffsetCommit; see txn_offset_commit.h.
 *
 * The pending entries are a list under one mutex (transactions commit a handful of offsets).
 * A commit hands each group's entries to the group coordinator as one trusted OffsetCommit
 * (group_call.trusted) and answers once every group stored them durably.
 */
#include "broker/txn_offset_commit.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/log.h"
#include "broker/broker_internal.h"
#include "broker/groups.h"
#include "broker/handlers.h"
#include "broker/leadership.h"
#include "broker/partition.h"
#include "group/coordinator.h"
#include "group/offsets_log.h"
#include "proto/gen/errors.h"
#include "proto/gen/offset_commit.h"
#include "proto/gen/txn_offset_commit.h"

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
    if (err != 0)
        log_warn("txn", "committing transactional offsets of group %.*s: error %d",
                 gc->req.group_id.len, gc->req.group_id.ptr, err);
    struct commit_batch *b = gc->batch;
    arena_free(&gc->arena);
    free(gc);
    batch_part_done(b, err);
}

static struct kstr arena_kstr(struct arena *a, const char *s)
{
    char *p = s ? arena_strndup(a, s, strlen(s)) : NULL;
    return p ? (struct kstr){p, (int32_t)strlen(p)} : KSTR_NULL;
}

/* Builds and submits the OffsetCommit of `list`'s entries (all of one group). */
static void group_commit_submit(struct broker *b, struct commit_batch *batch,
                                struct pending_offset *list)
{
    struct group_commit *gc = calloc(1, sizeof(*gc));
    if (gc == NULL) {
        batch_part_done(batch, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    arena_init(&gc->arena, 0);
    gc->batch = batch;
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
        while (list) {
            struct pending_offset *e = list;
            list = e->next;
            pending_free(e);
        }
    }
    batch_part_done(batch, 0);
}

/* ---- TxnOffsetCommit ---- */

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

void handle_txn_offset_commit(struct broker_req *r)
{
    struct kmsg_txn_offset_commit_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_txn_offset_commit_request_decode, &req) != 0)
        return;
    struct kmsg_txn_offset_commit_response resp;
    kmsg_txn_offset_commit_response_init(&resp);
    struct broker *b = r->b;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *ot = metadata_image_topic_by_name(img, OFFSETS_TOPIC);
    int32_t shard = ot && req.group_id.len > 0
                        ? offsets_partition_for(req.group_id.ptr, (size_t)req.group_id.len,
                                                (int32_t)ot->n_partitions)
                        : -1;
    int16_t err = shard < 0 ? KAFKA_ERR_COORDINATOR_NOT_AVAILABLE
                  : ot->partitions[shard].leader != b->cfg.node_id ? KAFKA_ERR_NOT_COORDINATOR
                                                                   : 0;
    metadata_image_release(img);
    int32_t nt = req.topics.n > 0 ? req.topics.n : 0;
    resp.topics.v = arena_calloc(r->arena, (size_t)nt + 1, sizeof(*resp.topics.v));
    resp.topics.n = resp.topics.v ? nt : 0;
    struct txn_offsets *t = b->txn_offsets;
    for (int32_t i = 0; i < resp.topics.n; i++) {
        const struct kmsg_txn_offset_commit_request_topic *rt = &req.topics.v[i];
        struct kmsg_txn_offset_commit_response_topic *ot_ = &resp.topics.v[i];
        kmsg_txn_offset_commit_response_topic_init(ot_);
        ot_->name = rt->name;
        int32_t np = rt->partitions.n > 0 ? rt->partitions.n : 0;
        ot_->partitions.v = arena_calloc(r->arena, (size_t)np + 1, sizeof(*ot_->partitions.v));
        ot_->partitions.n = ot_->partitions.v ? np : 0;
        for (int32_t j = 0; j < ot_->partitions.n; j++) {
            const struct kmsg_txn_offset_commit_request_partition *p = &rt->partitions.v[j];
            ot_->partitions.v[j].partition_index = p->partition_index;
            int16_t perr = err;
            struct pending_offset *e = perr ? NULL
                                            : pending_new(req.producer_id, shard, req.group_id,
                                                          rt->name, p, r->hdr.api_version);
            if (perr == 0 && e == NULL)
                perr = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            if (e != NULL) {
                pthread_mutex_lock(&t->mu);
                pending_put_locked(t, e);
                pthread_mutex_unlock(&t->mu);
            }
            ot_->partitions.v[j].error_code = perr;
        }
    }
    broker_reply(r, (kproto_encode_fn)kmsg_txn_offset_commit_response_encode, &resp);
}
