/*
 * WriteTxnMarkers (key 27) and the coordinator's local marker path; see write_txn_markers.h.
 *
 * One call counts its outstanding partitions (pending, one extra held while it is set up);
 * each partition's answer lands in its response slot, and the last one calls done.
 */
#include "broker/authorizer.h"
#include "broker/write_txn_markers.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/commit_wait.h"
#include "broker/handlers.h"
#include "broker/leadership.h"
#include "broker/partition.h"
#include "broker/partition_append.h"
#include "broker/txn_marker_sender.h"
#include "broker/txn_offset_commit.h"
#include "group/offsets_log.h"
#include "proto/gen/errors.h"
#include "record/control_record.h"

struct markers_call {
    atomic_int pending;
    void (*done)(void *arg);
    void *arg;
};

struct marker_part {
    struct markers_call *mc;
    int16_t *err; /* the partition's response slot */
    struct partition *p;
    /* A group's __consumer_offsets partition: once the marker is committed, the group side
     * applies or drops the transaction's offsets (txn_offset_commit.h). */
    bool offsets;
    struct broker *b;
    int64_t producer_id;
    int32_t index;
    bool commit;
};

static void call_part_done(struct markers_call *mc)
{
    if (atomic_fetch_sub(&mc->pending, 1) == 1) {
        mc->done(mc->arg);
        free(mc);
    }
}

static void offsets_part_done(void *arg, int16_t err)
{
    struct marker_part *mp = arg;
    *mp->err = err;
    struct markers_call *mc = mp->mc;
    free(mp);
    call_part_done(mc);
}

static void part_committed(void *arg, int err)
{
    struct marker_part *mp = arg;
    if (err != 0)
        *mp->err = KAFKA_ERR_NOT_ENOUGH_REPLICAS;
    partition_put(mp->p);
    mp->p = NULL;
    if (err == 0 && mp->offsets) {
        txn_offsets_complete(mp->b, mp->producer_id, mp->index, mp->commit, offsets_part_done, mp);
        return;
    }
    struct markers_call *mc = mp->mc;
    free(mp);
    call_part_done(mc);
}

/* Appends the marker to one partition; its answer goes to *err (now or when committed). */
static void marker_write_one(struct broker *b, struct markers_call *mc,
                             const struct kmsg_write_txn_markers_request_writable_txn_marker *m,
                             const char *topic, int32_t index, int16_t *err)
{
    struct marker_part *mp = calloc(1, sizeof(*mp));
    if (mp == NULL) {
        *err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    mp->mc = mc;
    mp->err = err;
    mp->offsets = strcmp(topic, OFFSETS_TOPIC) == 0;
    mp->b = b;
    mp->producer_id = m->producer_id;
    mp->index = index;
    mp->commit = m->transaction_result;
    int16_t lerr = 0;
    mp->p = partition_get_led(b, topic, NULL, index, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION, &lerr);
    uint8_t *batch = NULL;
    size_t len = 0;
    struct control_marker cm = {m->transaction_result ? CONTROL_TYPE_COMMIT : CONTROL_TYPE_ABORT,
                                m->coordinator_epoch};
    if (mp->p != NULL && control_marker_build(m->producer_id, m->producer_epoch, &cm,
                                              clock_wall_ms(), &batch, &len) != 0)
        lerr = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    struct partition_append_result ar = {0};
    if (mp->p != NULL && lerr == 0) {
        int rc = partition_append_batch(mp->p, batch, len, false, clock_wall_ms(), NULL, &ar);
        lerr = rc != 0 ? partition_error_from_storage(rc) : ar.kafka_error;
    }
    free(batch);
    if (lerr == 0) {
        atomic_fetch_add(&mc->pending, 1);
        if (partition_wait_committed_async(mp->p, ar.info.last_offset + 1, part_committed, mp) == 0)
            return;
        atomic_fetch_sub(&mc->pending, 1);
        lerr = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    }
    *err = lerr;
    partition_put(mp->p);
    free(mp);
}

void txn_markers_apply(struct broker *b, const struct kmsg_write_txn_markers_request *req,
                       struct kmsg_write_txn_markers_response *resp, struct arena *arena,
                       void (*done)(void *arg), void *arg)
{
    struct markers_call *mc = calloc(1, sizeof(*mc));
    int32_t nm = req->markers.n > 0 ? req->markers.n : 0;
    resp->markers.v = arena_calloc(arena, (size_t)nm + 1, sizeof(*resp->markers.v));
    if (mc == NULL || resp->markers.v == NULL) {
        free(mc);
        resp->markers.n = 0;
        done(arg);
        return;
    }
    resp->markers.n = nm;
    atomic_init(&mc->pending, 1);
    mc->done = done;
    mc->arg = arg;
    for (int32_t i = 0; i < nm; i++) {
        const struct kmsg_write_txn_markers_request_writable_txn_marker *m = &req->markers.v[i];
        struct kmsg_write_txn_markers_response_writable_txn_marker_result *mr = &resp->markers.v[i];
        kmsg_write_txn_markers_response_writable_txn_marker_result_init(mr);
        mr->producer_id = m->producer_id;
        int32_t nt = m->topics.n > 0 ? m->topics.n : 0;
        mr->topics.v = arena_calloc(arena, (size_t)nt + 1, sizeof(*mr->topics.v));
        mr->topics.n = mr->topics.v ? nt : 0;
        for (int32_t j = 0; j < mr->topics.n; j++) {
            const struct kmsg_write_txn_markers_request_writable_txn_marker_topic *t =
                &m->topics.v[j];
            struct kmsg_write_txn_markers_response_writable_txn_marker_topic_result *tr =
                &mr->topics.v[j];
            kmsg_write_txn_markers_response_writable_txn_marker_topic_result_init(tr);
            tr->name = t->name;
            char *topic =
                arena_strndup(arena, t->name.ptr, (size_t)(t->name.len > 0 ? t->name.len : 0));
            int32_t np = t->partition_indexes.n > 0 ? t->partition_indexes.n : 0;
            tr->partitions.v = arena_calloc(arena, (size_t)np + 1, sizeof(*tr->partitions.v));
            tr->partitions.n = tr->partitions.v && topic ? np : 0;
            for (int32_t k = 0; k < tr->partitions.n; k++) {
                tr->partitions.v[k].partition_index = t->partition_indexes.v[k];
                marker_write_one(b, mc, m, topic, t->partition_indexes.v[k],
                                 &tr->partitions.v[k].error_code);
            }
        }
    }
    call_part_done(mc);
}

/* ---- the coordinator's markers ---- */

int txn_markers_request_build(struct arena *a, const struct txn_marker_job *job,
                              struct kmsg_write_txn_markers_request *req)
{
    kmsg_write_txn_markers_request_init(req);
    struct kmsg_write_txn_markers_request_writable_txn_marker *m = arena_calloc(a, 1, sizeof(*m));
    struct kmsg_write_txn_markers_request_writable_txn_marker_topic *ts =
        arena_calloc(a, job->nparts + 1, sizeof(*ts));
    if (m == NULL || ts == NULL)
        return -ENOMEM;
    kmsg_write_txn_markers_request_writable_txn_marker_init(m);
    m->producer_id = job->producer_id;
    m->producer_epoch = job->producer_epoch;
    m->transaction_result = job->commit;
    m->coordinator_epoch = job->coordinator_epoch;
    int32_t nt = 0;
    for (size_t i = 0; i < job->nparts; i++) { /* partitions grouped by topic */
        const struct txn_topic_partition *tp = &job->parts[i];
        int32_t t = 0;
        while (t < nt && strcmp(ts[t].name.ptr, tp->topic) != 0)
            t++;
        if (t == nt) {
            char *name = arena_strndup(a, tp->topic, strlen(tp->topic));
            int32_t *ids = arena_calloc(a, job->nparts, sizeof(int32_t));
            if (name == NULL || ids == NULL)
                return -ENOMEM;
            kmsg_write_txn_markers_request_writable_txn_marker_topic_init(&ts[nt]);
            ts[nt].name = (struct kstr){name, (int32_t)strlen(name)};
            ts[nt].partition_indexes = (struct karray_int32){0, ids};
            nt++;
        }
        ts[t].partition_indexes.v[ts[t].partition_indexes.n++] = tp->partition;
    }
    m->topics.v = ts;
    m->topics.n = nt;
    req->markers.v = m;
    req->markers.n = 1;
    return 0;
}

size_t txn_markers_failed(const struct kmsg_write_txn_markers_response *resp, struct arena *a,
                          struct txn_topic_partition **out)
{
    size_t n = 0;
    for (int32_t i = 0; i < resp->markers.n; i++)
        for (int32_t j = 0; j < resp->markers.v[i].topics.n; j++)
            n += (size_t)resp->markers.v[i].topics.v[j].partitions.n;
    struct txn_topic_partition *v = arena_calloc(a, n + 1, sizeof(*v));
    size_t k = 0;
    for (int32_t i = 0; v && i < resp->markers.n; i++)
        for (int32_t j = 0; j < resp->markers.v[i].topics.n; j++) {
            const struct kmsg_write_txn_markers_response_writable_txn_marker_topic_result *t =
                &resp->markers.v[i].topics.v[j];
            for (int32_t p = 0; p < t->partitions.n; p++) {
                if (t->partitions.v[p].error_code == 0)
                    continue;
                char *name = arena_strndup(a, t->name.ptr, (size_t)t->name.len);
                if (name != NULL)
                    v[k++] = (struct txn_topic_partition){name, t->partitions.v[p].partition_index};
            }
        }
    *out = v;
    return k;
}

struct markers_send {
    struct broker *b;
    struct arena arena;
    struct txn_marker_job job;
    struct kmsg_write_txn_markers_request req;
    struct kmsg_write_txn_markers_response resp;
    void (*cb)(void *arg, int16_t err);
    void *arg;
};

/* The local attempt is over: what it could not write (other leaders, failures) goes to the
 * marker sender, which retries until written. */
static void markers_sent(void *arg)
{
    struct markers_send *ms = arg;
    struct txn_topic_partition *left = NULL;
    size_t n = txn_markers_failed(&ms->resp, &ms->arena, &left);
    if (n == 0 || left == NULL) {
        ms->cb(ms->arg, left == NULL ? KAFKA_ERR_UNKNOWN_SERVER_ERROR : 0);
    } else {
        ms->job.parts = left;
        ms->job.nparts = n;
        txn_marker_sender_submit(ms->b, &ms->job, ms->cb, ms->arg);
    }
    arena_free(&ms->arena);
    free(ms);
}

int txn_markers_send(struct broker *b, const struct txn_marker_job *job,
                     void (*cb)(void *arg, int16_t err), void *arg)
{
    struct markers_send *ms = calloc(1, sizeof(*ms));
    if (ms == NULL)
        return -ENOMEM;
    arena_init(&ms->arena, 0);
    ms->b = b;
    ms->job = *job;
    ms->cb = cb;
    ms->arg = arg;
    kmsg_write_txn_markers_response_init(&ms->resp);
    if (txn_markers_request_build(&ms->arena, job, &ms->req) != 0) {
        arena_free(&ms->arena);
        free(ms);
        return -ENOMEM;
    }
    txn_markers_apply(b, &ms->req, &ms->resp, &ms->arena, markers_sent, ms);
    return 0;
}

/* ---- the API ---- */

struct markers_req {
    struct broker_req *r;
    struct kmsg_write_txn_markers_request req;
    struct kmsg_write_txn_markers_response resp;
};

static void markers_req_reply(void *arg)
{
    struct markers_req *mr = arg;
    broker_reply(mr->r, (kproto_encode_fn)kmsg_write_txn_markers_response_encode, &mr->resp);
}

static void markers_req_done(void *arg)
{
    struct markers_req *mr = arg;
    if (net_worker_post(net_request_worker(mr->r->nr), markers_req_reply, mr) != 0)
        logger_warn("txn", "dropping a WriteTxnMarkers response during shutdown");
}

/* Kafka without CLUSTER_ACTION: every partition answers CLUSTER_AUTHORIZATION_FAILED. */
static void markers_reply_denied(struct broker_req *r,
                                 const struct kmsg_write_txn_markers_request *q,
                                 struct kmsg_write_txn_markers_response *resp)
{
    int32_t n = q->markers.n > 0 ? q->markers.n : 0;
    resp->markers.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp->markers.v));
    resp->markers.n = resp->markers.v ? n : 0;
    for (int32_t i = 0; i < resp->markers.n; i++) {
        const struct kmsg_write_txn_markers_request_writable_txn_marker *m = &q->markers.v[i];
        struct kmsg_write_txn_markers_response_writable_txn_marker_result *o = &resp->markers.v[i];
        kmsg_write_txn_markers_response_writable_txn_marker_result_init(o);
        o->producer_id = m->producer_id;
        int32_t nt = m->topics.n > 0 ? m->topics.n : 0;
        o->topics.v = arena_calloc(r->arena, (size_t)nt + 1, sizeof(*o->topics.v));
        o->topics.n = o->topics.v ? nt : 0;
        for (int32_t j = 0; j < o->topics.n; j++) {
            struct kmsg_write_txn_markers_response_writable_txn_marker_topic_result *t =
                &o->topics.v[j];
            kmsg_write_txn_markers_response_writable_txn_marker_topic_result_init(t);
            t->name = m->topics.v[j].name;
            int32_t np = m->topics.v[j].partition_indexes.n;
            np = np > 0 ? np : 0;
            t->partitions.v = arena_calloc(r->arena, (size_t)np + 1, sizeof(*t->partitions.v));
            t->partitions.n = t->partitions.v ? np : 0;
            for (int32_t k = 0; k < t->partitions.n; k++) {
                t->partitions.v[k].partition_index = m->topics.v[j].partition_indexes.v[k];
                t->partitions.v[k].error_code = KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED;
            }
        }
    }
    broker_reply(r, (kproto_encode_fn)kmsg_write_txn_markers_response_encode, resp);
}

void handle_write_txn_markers(struct broker_req *r)
{
    struct markers_req *mr = arena_calloc(r->arena, 1, sizeof(*mr));
    if (mr == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    if (broker_decode(r, (kproto_decode_fn)kmsg_write_txn_markers_request_decode, &mr->req) != 0)
        return;
    mr->r = r;
    kmsg_write_txn_markers_response_init(&mr->resp);
    if (!broker_authorize_cluster(r, ACL_OPERATION_CLUSTER_ACTION)) {
        markers_reply_denied(r, &mr->req, &mr->resp);
        return;
    }
    txn_markers_apply(r->b, &mr->req, &mr->resp, r->arena, markers_req_done, mr);
}
