/*
 * Produce (key 0). Per partition: validate the batch (magic 2, CRC-32C, lengths, counts, size
 * limit), append it (the log assigns offsets in place, in the request's own buffer), wake
 * fetches waiting on the partition, and answer according to acks:
 *   acks=0   no response at all (an error closes the connection, as Kafka does, so the client
 *            notices);
 *   acks=1   once the batch is in the log (page cache);
 *   acks=-1  once it is committed and durable: the high watermark passed it (every replica
 *            in the ISR has it: replica_set.h; at once with a single replica) and the
 *            group-commit flusher has fdatasync'ed it here (acks.all.fsync; followers sync
 *            before they report it, replica_fetcher.h).
 * A waiting produce never blocks the worker: flush completions are posted back to it, and a
 * timer answers REQUEST_TIMED_OUT for partitions still waiting after the request's timeout.
 *
 * Lifetime: the decoded request and the response live in the network request's arena and die
 * with the reply; the small struct produce_state is malloc'ed because flush callbacks may
 * still arrive after a timed-out reply. It is freed when the reply is sent and no callback is
 * outstanding.
 */
#include "proto/gen/produce.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/partition_append.h"
#include "broker/leadership.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/partition.h"
#include "broker/produce_policy.h"
#include "broker/replica_set.h"
#include "metrics/metrics.h"
#include "broker/producer_append.h"
#include "broker/txn_verifier.h"
#include "proto/gen/errors.h"
#include "record/legacy.h"
#include "record/byteorder.h"
#include "record/record_batch.h"
#include "storage/flusher.h"

struct produce_flush;

struct produce_state {
    struct broker_req *r; /* NULL once replied */
    struct net_worker *worker;
    struct kmsg_produce_response resp;
    int outstanding;               /* flush and high-watermark callbacks not yet back */
    struct produce_flush *waiting; /* those callbacks, to time them out */
    struct net_timer timer;
    struct produce_verify *verifying; /* partitions waiting for their KIP-890 check */
    const char *txid;                 /* the request's transactional id, NULL if none */
    int16_t acks;
    int16_t acks_error; /* INVALID_REQUIRED_ACKS for every partition, or 0 */
    bool parked;        /* counted in the produce purgatory metric */
    bool building;      /* handle_produce is still appending: it replies itself */
};

/* One acks=-1 partition waiting for its flush and/or its high watermark. */
struct produce_flush {
    struct produce_state *st;
    struct produce_flush *next, *prev;
    struct kmsg_produce_response_partition_produce_response *pr; /* NULL after the reply */
    int pending;         /* of the two waits below; freed at 0 */
    int err;             /* the flush's storage error */
    int16_t hw_error;    /* the high-watermark wait's Kafka error */
    struct hw_waiter hw; /* registered with the partition's replica set */
};

/*
 * A transactional batch waiting for the coordinator to confirm its partition is in the
 * transaction (KIP-890 part 1, broker/txn_verifier.h). It counts once in st->outstanding. The
 * batch bytes live in the request: after a timed-out reply (pr NULL) they are not touched.
 */
struct produce_verify {
    struct produce_state *st;
    struct produce_verify *next, *prev;
    struct kmsg_produce_response_partition_produce_response *pr; /* NULL after the reply */
    struct partition *p;                                         /* a reference held */
    struct krecords rec;
    uint8_t *owned; /* the buffer rec points into when a policy rewrote it, else NULL */
    struct producer_txn_check chk;
    int16_t err; /* the coordinator's answer */
};

#define PRODUCE_VERIFY_ATTEMPTS 3

static void produce_unlink(struct produce_flush *f)
{
    struct produce_state *st = f->st;
    if (f->prev)
        f->prev->next = f->next;
    else
        st->waiting = f->next;
    if (f->next)
        f->next->prev = f->prev;
}

/* Metrics: per-partition error codes; a response with any marks the request failed. */
static void produce_count_errors(struct broker_req *r, const struct kmsg_produce_response *resp)
{
    for (int32_t i = 0; i < resp->responses.n; i++) {
        for (int32_t j = 0; j < resp->responses.v[i].partition_responses.n; j++) {
            int16_t code = resp->responses.v[i].partition_responses.v[j].error_code;
            if (code != 0) {
                metrics_count_partition_error(r->b->metrics, KPROTO_API_PRODUCE, code);
                r->failed = true;
            }
        }
    }
}

static void produce_reply(struct produce_state *st)
{
    struct broker_req *r = st->r;
    st->r = NULL;
    net_timer_cancel(st->worker, &st->timer);
    if (st->parked)
        metrics_purgatory_add(r->b->metrics, METRICS_PURGATORY_PRODUCE, -1);
    produce_count_errors(r, &st->resp);
    st->resp.throttle_time_ms = r->throttle_ms;
    broker_reply(r, (kproto_encode_fn)kmsg_produce_response_encode, &st->resp);
}

static void produce_state_maybe_free(struct produce_state *st)
{
    if (st->r == NULL && st->outstanding == 0)
        free(st);
}

/*
 * The request is being closed without a reply (out of memory part-way through) while flushes
 * queued for earlier partitions may still complete: their completions must find st alive, and
 * must not touch the partition responses, which die with the request's arena. st is freed now
 * or by the last completion.
 */
static void produce_abandon(struct produce_state *st)
{
    for (struct produce_flush *f = st->waiting; f; f = f->next)
        f->pr = NULL;
    for (struct produce_verify *v = st->verifying; v; v = v->next)
        v->pr = NULL;
    st->r = NULL;
    produce_state_maybe_free(st);
}

/* Worker thread: one of a partition's waits ended with Kafka error `code` (0: fine). */
static void produce_wait_ended(struct produce_flush *f, int16_t code)
{
    struct produce_state *st = f->st;
    assert(st->outstanding > 0 && f->pending > 0);
    st->outstanding--;
    f->pending--;
    if (st->r != NULL && f->pr != NULL && code != 0 && f->pr->error_code == 0) {
        f->pr->error_code = code;
        f->pr->base_offset = -1;
    }
    if (f->pending == 0) {
        produce_unlink(f);
        free(f);
    }
    if (st->building)
        return;
    if (st->r != NULL && st->outstanding == 0)
        produce_reply(st);
    produce_state_maybe_free(st);
}

/* Worker thread: a partition's flush finished. */
static void produce_flushed(void *arg)
{
    struct produce_flush *f = arg;
    produce_wait_ended(f, f->err ? partition_error_from_storage(f->err) : 0);
}

/* Worker thread: the partition's high watermark passed the batch (or the wait failed). */
static void produce_replicated(void *arg)
{
    struct produce_flush *f = arg;
    produce_wait_ended(f, f->hw_error);
}

/* Any thread (replica_set): hand the outcome to the request's worker. */
static void produce_hw_cb(struct hw_waiter *w, int16_t error)
{
    struct produce_flush *f = w->arg;
    f->hw_error = error;
    if (net_worker_post(f->st->worker, produce_replicated, f) != 0)
        logger_warn("produce", "dropping a replication completion during shutdown");
}

/* Flusher thread: hand the completion to the request's worker. */
static void produce_flush_cb(void *arg, int err)
{
    struct produce_flush *f = arg;
    f->err = err;
    if (net_worker_post(f->st->worker, produce_flushed, f) != 0)
        logger_warn("produce", "dropping a flush completion during shutdown");
}

static void produce_timed_out(struct net_timer *t)
{
    struct produce_state *st = t->arg;
    /* Partitions still waiting for durability get REQUEST_TIMED_OUT. */
    for (struct produce_flush *f = st->waiting; f; f = f->next) {
        f->pr->error_code = KAFKA_ERR_REQUEST_TIMED_OUT;
        f->pr->base_offset = -1;
        f->pr = NULL; /* the response dies with the reply */
    }
    for (struct produce_verify *v = st->verifying; v; v = v->next) {
        v->pr->error_code = KAFKA_ERR_REQUEST_TIMED_OUT;
        v->pr->base_offset = -1;
        v->pr = NULL;
    }
    produce_reply(st);
    produce_state_maybe_free(st);
}

/* Checks the records of one partition; returns a Kafka error code. */
static int16_t produce_validate(struct broker_req *r, struct partition *p,
                                const struct krecords *rec)
{
    if (rec->len <= 0 || rec->data == NULL)
        return KAFKA_ERR_CORRUPT_MESSAGE;
    size_t limit = (size_t)atomic_load(&p->max_message_bytes);
    int n = record_batches_validate(rec->data, (size_t)rec->len, RECORD_VALIDATE_PRODUCE, limit);
    /* Produce v3+ may only carry magic-2 batches: Kafka answers INVALID_RECORD otherwise. */
    if (n == RECORD_ERR_MAGIC)
        return KAFKA_ERR_INVALID_RECORD;
    if (n < 0)
        return (int16_t)record_error_to_kafka(n);
    if (n != 1 && r->hdr.api_version >= 3)
        return KAFKA_ERR_INVALID_RECORD;
    /* Only a transaction coordinator writes markers and transactional batches without a
     * sequence (Kafka's LogValidator / AppendOrigin.CLIENT). */
    uint8_t attrs = rec->data[RB_OFF_ATTRIBUTES + 1];
    if ((attrs & RECORD_ATTR_CONTROL) || ((attrs & RECORD_ATTR_TRANSACTIONAL) &&
                                          (int32_t)be32_load(rec->data + RB_OFF_BASE_SEQUENCE) < 0))
        return KAFKA_ERR_INVALID_RECORD;
    int codec = rec->data[RB_OFF_ATTRIBUTES + 1] & RECORD_ATTR_COMPRESSION_MASK;
    if (codec == RECORD_COMPRESSION_ZSTD && r->hdr.api_version < 7)
        return KAFKA_ERR_UNSUPPORTED_COMPRESSION_TYPE;
    return KAFKA_ERR_NONE;
}

/*
 * Produce v0-2 carry legacy message sets (magic 0/1): they become one magic-2 batch before
 * validation, as in Kafka. On success *rec points at the converted batch (*converted, to be
 * freed by the caller). Returns a Kafka error code.
 */
static int16_t produce_convert_legacy(struct broker_req *r, struct partition *p,
                                      struct krecords *rec, uint8_t **converted)
{
    if (r->hdr.api_version >= 3 || rec->data == NULL || rec->len <= 0)
        return KAFKA_ERR_NONE;
    size_t len;
    size_t limit = (size_t)atomic_load(&p->max_message_bytes) * 64;
    int rc = legacy_to_v2(rec->data, (size_t)rec->len, limit, converted, &len);
    if (rc != 0)
        return (int16_t)record_error_to_kafka(rc);
    if (len > INT32_MAX) {
        free(*converted);
        *converted = NULL;
        return KAFKA_ERR_MESSAGE_TOO_LARGE;
    }
    rec->data = *converted;
    rec->len = (int32_t)len;
    return KAFKA_ERR_NONE;
}

/* KIP-467: the records a policy refused, with Kafka's messages (fields of Produce v8+; older
 * versions do not encode them). The strings live in the request's arena, as pr does. */
static void
produce_report_record_errors(struct kmsg_produce_response_partition_produce_response *pr,
                             const struct produce_policy_report *rep)
{
    if (rep->message != NULL)
        pr->error_message = (struct kstr){rep->message, (int32_t)strlen(rep->message)};
    if (rep->n_errors == 0)
        return;
    struct kmsg_produce_response_batch_index_and_error_message *v =
        arena_calloc(rep->arena, rep->n_errors, sizeof(*v));
    if (v == NULL)
        return; /* the error code alone still refuses the batch */
    for (size_t i = 0; i < rep->n_errors; i++) {
        kmsg_produce_response_batch_index_and_error_message_init(&v[i]);
        v[i].batch_index = rep->errors[i].batch_index;
        v[i].batch_index_error_message =
            (struct kstr){rep->errors[i].message, (int32_t)strlen(rep->errors[i].message)};
    }
    pr->record_errors.v = v;
    pr->record_errors.n = (int32_t)rep->n_errors;
}

/*
 * acks=-1 after the append: waits for the high watermark to pass `end` and, with
 * acks.all.fsync, for the flusher to make it durable here. Returns 1 when something is
 * pending (pr is answered when both are back), else 0 (pr already final).
 */
static int produce_wait_committed(struct produce_state *st, struct partition *p,
                                  struct kmsg_produce_response_partition_produce_response *pr,
                                  int64_t end)
{
    struct produce_flush *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        pr->error_code = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        pr->base_offset = -1;
        return 0;
    }
    f->st = st;
    f->pr = pr;
    f->hw = (struct hw_waiter){.offset = end, .done = produce_hw_cb, .arg = f};
    /* Both waits count as pending until registered, so an early completion cannot free f. */
    f->pending = 2;
    st->outstanding += 2;
    f->next = st->waiting;
    if (st->waiting)
        st->waiting->prev = f;
    st->waiting = f;
    int16_t now_error = 0;
    int hw = replica_set_wait_hw(p, &f->hw);
    if (hw != 0) { /* already committed (1), or refused (-error): no callback will come */
        now_error = hw < 0 ? (int16_t)-hw : 0;
        produce_wait_ended(f, now_error);
    }
    if (!st->r->b->cfg.acks_all_fsync || now_error != 0 ||
        log_flush_request(p->log, end, produce_flush_cb, f) != 0) {
        if (!st->r->b->cfg.acks_all_fsync || now_error != 0)
            produce_wait_ended(f, 0);
        else
            produce_wait_ended(f, KAFKA_ERR_KAFKA_STORAGE_ERROR);
    }
    return 1;
}

static int produce_verify_start(struct produce_state *st, struct partition *p,
                                struct kmsg_produce_response_partition_produce_response *pr,
                                const struct krecords *rec, uint8_t *owned,
                                struct producer_txn_check *chk);

/*
 * Appends the validated batch rec to p (its reference is the caller's, handed over: put here,
 * or kept by a verification, as is `owned`, the malloc'ed buffer rec points into or NULL) and
 * fills pr, or waits per acks. chk: the KIP-890 check (NULL: none). Returns 1 when a wait or
 * a verification is pending, else 0 (pr final).
 */
static int produce_append_step(struct produce_state *st, struct partition *p,
                               struct kmsg_produce_response_partition_produce_response *pr,
                               const struct krecords *rec, uint8_t *owned,
                               struct producer_txn_check *chk)
{
    struct partition_append_result ar;
    int rc = partition_append_batch(p, (uint8_t *)rec->data, (size_t)rec->len,
                                    atomic_load(&p->log_append_time), clock_wall_ms(), chk, &ar);
    if (rc == 0 && chk != NULL && chk->needed)
        return produce_verify_start(st, p, pr, rec, owned, chk);
    free(owned); /* the log has its own copy now */
    const struct log_append_info info = ar.info;
    int16_t err = ar.kafka_error;
    if (rc == 0 && err != KAFKA_ERR_NONE) {
        pr->error_code = err;
        partition_put(p);
        return 0;
    }
    if (rc != 0) {
        pr->error_code = partition_error_from_storage(rc);
        logger_warn("produce", "append to %s-%d failed: %d", p->topic, p->index, rc);
        partition_put(p);
        return 0;
    }
    pr->base_offset = info.first_offset;
    pr->log_append_time_ms = info.log_append_time;
    pr->log_start_offset = info.log_start_offset;
    int pending = 0;
    atomic_fetch_add_explicit(&p->bytes_in, rec->len, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->records_in, info.last_offset - info.first_offset + 1,
                              memory_order_relaxed);
    if (st->acks == -1)
        pending = produce_wait_committed(st, p, pr, info.last_offset + 1);
    partition_put(p);
    return pending;
}

/* The Kafka error a partition leader answers the producer for the coordinator's `err`
 * (Kafka's AddPartitionsToTxnManager and ReplicaManager). */
static int16_t produce_verify_error(int16_t err, int16_t version)
{
    switch (err) {
    case KAFKA_ERR_PRODUCER_FENCED:
        return KAFKA_ERR_INVALID_PRODUCER_EPOCH;
    case KAFKA_ERR_TRANSACTION_ABORTABLE: /* Produce v11 introduced it */
        return version >= 11 ? KAFKA_ERR_TRANSACTION_ABORTABLE : KAFKA_ERR_INVALID_TXN_STATE;
    case KAFKA_ERR_CONCURRENT_TRANSACTIONS:
    case KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case KAFKA_ERR_COORDINATOR_NOT_AVAILABLE:
    case KAFKA_ERR_NOT_COORDINATOR:
        return KAFKA_ERR_NOT_ENOUGH_REPLICAS; /* retriable: the client sends it again */
    default:
        return err;
    }
}

/* Worker thread: the coordinator answered v's check. */
static void produce_verified(void *arg)
{
    struct produce_verify *v = arg;
    struct produce_state *st = v->st;
    assert(st->outstanding > 0);
    if (v->prev)
        v->prev->next = v->next;
    else
        st->verifying = v->next;
    if (v->next)
        v->next->prev = v->prev;
    if (st->r == NULL || v->pr == NULL) {
        partition_put(v->p); /* replied (timeout) or abandoned: the batch is gone */
        free(v->owned);
    } else if (v->err != 0) {
        v->pr->error_code = produce_verify_error(v->err, st->r->hdr.api_version);
        partition_put(v->p);
        free(v->owned);
    } else if (v->chk.attempts >= PRODUCE_VERIFY_ATTEMPTS) {
        v->pr->error_code = KAFKA_ERR_NOT_ENOUGH_REPLICAS; /* markers kept racing it */
        partition_put(v->p);
        free(v->owned);
    } else {
        v->chk.verified = true;
        v->chk.needed = false;
        /* May start the next attempt (a marker came in between) or a wait: both count in
         * outstanding while this one still does, so the reply cannot go out underneath. */
        produce_append_step(st, v->p, v->pr, &v->rec, v->owned, &v->chk);
    }
    free(v);
    st->outstanding--;
    if (st->r != NULL && st->outstanding == 0)
        produce_reply(st);
    produce_state_maybe_free(st);
}

/* Any thread: the verifier's answer goes to the request's worker. */
static void produce_verify_cb(void *arg, int16_t err)
{
    struct produce_verify *v = arg;
    v->err = err;
    if (net_worker_post(v->st->worker, produce_verified, v) != 0)
        logger_warn("produce", "dropping a transaction verification during shutdown");
}

/* Starts (again) the check of rec's transaction with the coordinator; takes p's reference.
 * Returns 1 (pending) or 0 (pr final). */
static int produce_verify_start(struct produce_state *st, struct partition *p,
                                struct kmsg_produce_response_partition_produce_response *pr,
                                const struct krecords *rec, uint8_t *owned,
                                struct producer_txn_check *chk)
{
    struct produce_verify *v = calloc(1, sizeof(*v));
    if (v == NULL || st->acks == 0) { /* acks=0: nobody to wait for (a transactional producer
                                       * always uses acks=all) */
        free(v);
        free(owned);
        pr->error_code = KAFKA_ERR_INVALID_TXN_STATE;
        partition_put(p);
        return 0;
    }
    v->st = st;
    v->pr = pr;
    v->p = p;
    v->rec = *rec;
    v->owned = owned;
    v->chk = *chk;
    v->chk.attempts++;
    v->next = st->verifying;
    if (st->verifying)
        st->verifying->prev = v;
    st->verifying = v;
    st->outstanding++;
    int64_t pid = (int64_t)be64_load(rec->data + RB_OFF_PRODUCER_ID);
    int16_t epoch = (int16_t)be16_load(rec->data + RB_OFF_PRODUCER_EPOCH);
    /* v12 (TV2): the client sent no AddPartitionsToTxn; the leader adds the partition. */
    txn_verifier_check(st->r->b, st->txid, pid, epoch, p->topic, p->index,
                       st->r->hdr.api_version >= 12, produce_verify_cb, v);
    return 1;
}

/* Appends one partition's batch; fills pr. Returns 1 when a wait is pending for acks=-1. */
static int produce_partition(struct produce_state *st, struct broker_req *r, int16_t acks,
                             const char *topic,
                             const struct kmsg_produce_request_partition_produce_data *pd,
                             struct kmsg_produce_response_partition_produce_response *pr)
{
    kmsg_produce_response_partition_produce_response_init(pr);
    pr->index = pd->index;
    pr->base_offset = -1;
    pr->log_append_time_ms = -1;
    pr->log_start_offset = -1;
    if (st->acks_error) {
        pr->error_code = st->acks_error;
        return 0;
    }
    int16_t lerr;
    struct partition *p = partition_get_led(r->b, topic, NULL, pd->index,
                                            KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION, &lerr);
    if (p == NULL) {
        pr->error_code = lerr;
        return 0;
    }
    struct krecords rec = pd->records;
    uint8_t *converted = NULL;
    int16_t err = produce_convert_legacy(r, p, &rec, &converted);
    if (err == KAFKA_ERR_NONE)
        err = produce_validate(r, p, &rec);
    struct produce_policy_report report = {.arena = r->arena};
    if (err == KAFKA_ERR_NONE)
        err = produce_policy_apply(p, clock_wall_ms(), &rec, &converted, &report);
    if (err == KAFKA_ERR_NONE && acks == -1 &&
        atomic_load(&p->isr_size) < atomic_load(&p->min_insync_replicas))
        err = KAFKA_ERR_NOT_ENOUGH_REPLICAS;
    if (err != KAFKA_ERR_NONE) {
        pr->error_code = err;
        produce_report_record_errors(pr, &report);
        free(converted);
        partition_put(p);
        return 0;
    }
    bool check = st->txid != NULL && r->b->cfg.txn_partition_verification;
    struct producer_txn_check chk = {0};
    return produce_append_step(st, p, pr, &rec, converted, check ? &chk : NULL);
}

static bool produce_has_error(const struct kmsg_produce_response *resp)
{
    for (int32_t i = 0; i < resp->responses.n; i++)
        for (int32_t j = 0; j < resp->responses.v[i].partition_responses.n; j++)
            if (resp->responses.v[i].partition_responses.v[j].error_code != 0)
                return true;
    return false;
}

/* Kafka's checks: WRITE on the transactional id (every partition fails without it), then
 * WRITE on each topic. Returns the error for topic `topic`, 0 when allowed. */
static int16_t produce_authorize(struct broker_req *r, const struct kmsg_produce_request *req,
                                 const char *topic)
{
    if (req->transactional_id.len >= 0) {
        char *txn = broker_name(r, req->transactional_id);
        if (txn == NULL ||
            !broker_authorize(r, NULL, ACL_RESOURCE_TRANSACTIONAL_ID, txn, ACL_OPERATION_WRITE))
            return KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
    }
    return broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, topic, ACL_OPERATION_WRITE)
               ? 0
               : KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
}

static void produce_partition_denied(const struct kmsg_produce_request_partition_produce_data *pd,
                                     struct kmsg_produce_response_partition_produce_response *pr,
                                     int16_t error)
{
    kmsg_produce_response_partition_produce_response_init(pr);
    pr->index = pd->index;
    pr->base_offset = -1;
    pr->log_append_time_ms = -1;
    pr->log_start_offset = -1;
    pr->error_code = error;
}

/* Kafka's ReplicaManager: clients may not append to an internal topic (its records are the
 * coordinators' state, replayed on load); only the client id "__admin_client" may (Kafka's
 * AdminUtils.ADMIN_CLIENT_ID, its tools' escape hatch). */
static bool produce_internal_refused(const struct broker_req *r, const char *topic)
{
    static const char admin[] = "__admin_client";
    if (strcmp(topic, "__consumer_offsets") != 0 && strcmp(topic, "__transaction_state") != 0)
        return false;
    const struct kstr *id = &r->hdr.client_id;
    return !(id->len == (int32_t)sizeof(admin) - 1 &&
             memcmp(id->ptr, admin, sizeof(admin) - 1) == 0);
}

static int produce_all(struct produce_state *st, struct broker_req *r,
                       const struct kmsg_produce_request *req)
{
    struct kmsg_produce_response *resp = &st->resp;
    int32_t nt = req->topic_data.n > 0 ? req->topic_data.n : 0;
    resp->responses.v = arena_calloc(r->arena, (size_t)nt + 1, sizeof(*resp->responses.v));
    if (resp->responses.v == NULL)
        return -ENOMEM;
    resp->responses.n = nt;
    int waiting = 0;
    for (int32_t i = 0; i < nt; i++) {
        const struct kmsg_produce_request_topic_produce_data *td = &req->topic_data.v[i];
        struct kmsg_produce_response_topic_produce_response *tr = &resp->responses.v[i];
        kmsg_produce_response_topic_produce_response_init(tr);
        tr->name = td->name;
        int32_t np = td->partition_data.n > 0 ? td->partition_data.n : 0;
        tr->partition_responses.v =
            arena_calloc(r->arena, (size_t)np + 1, sizeof(*tr->partition_responses.v));
        if (tr->partition_responses.v == NULL)
            return -ENOMEM;
        tr->partition_responses.n = np;
        char *topic = broker_name(r, td->name);
        if (topic == NULL)
            return -ENOMEM;
        int16_t denied = broker_authorizer_on(r->b) ? produce_authorize(r, req, topic) : 0;
        if (denied == 0 && produce_internal_refused(r, topic))
            denied = KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
        for (int32_t j = 0; j < np; j++) {
            struct kmsg_produce_response_partition_produce_response *pr =
                &tr->partition_responses.v[j];
            if (denied)
                produce_partition_denied(&td->partition_data.v[j], pr, denied);
            else
                waiting += produce_partition(st, r, req->acks, topic, &td->partition_data.v[j], pr);
        }
    }
    return waiting;
}

void handle_produce(struct broker_req *r)
{
    struct kmsg_produce_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_produce_request_decode, &req) != 0)
        return;
    struct produce_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    if (req.acks != 0 && req.acks != 1 && req.acks != -1) {
        /* Kafka answers every partition with INVALID_REQUIRED_ACKS. */
        st->acks_error = KAFKA_ERR_INVALID_REQUIRED_ACKS;
        req.acks = 1;
    }
    st->r = r;
    st->acks = req.acks;
    st->txid =
        req.transactional_id.len > 0 && req.transactional_id.ptr
            ? arena_strndup(r->arena, req.transactional_id.ptr, (size_t)req.transactional_id.len)
            : NULL;
    st->worker = net_request_worker(r->nr);
    kmsg_produce_response_init(&st->resp);
    st->building = true;
    int waiting = produce_all(st, r, &req);
    st->building = false;
    if (waiting < 0) {
        produce_abandon(st);
        broker_close(r, "out of memory");
        return;
    }
    if (req.acks == 0) {
        assert(st->outstanding == 0); /* only acks=-1 waits for flushes */
        bool bad = produce_has_error(&st->resp);
        st->r = NULL;
        free(st);
        if (bad)
            broker_close(r, "produce with acks=0 failed");
        else
            broker_reply_none(r);
        return;
    }
    if (st->outstanding == 0) {
        produce_reply(st);
        free(st);
        return;
    }
    int64_t timeout = req.timeout_ms > 0 ? req.timeout_ms : 30000;
    st->parked = true;
    metrics_purgatory_add(r->b->metrics, METRICS_PURGATORY_PRODUCE, 1);
    net_timer_start(st->worker, &st->timer, timeout, produce_timed_out, st);
}
