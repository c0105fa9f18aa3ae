/*
 * AddPartitionsToTxn v4-5 (key 24, KIP-890 part 1): the form brokers send, several
 * transactions per request. A transaction with verify_only asks whether its partitions are
 * already in its ongoing transaction (a partition leader checking before it appends a
 * transaction's first batch, txn_verifier.h) and is answered at once from the coordinator's
 * table; one without adds them, as v0-3 does, and is answered when the state is durable. The
 * reply goes once every transaction is answered.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/transactions.h"
#include "proto/gen/add_partitions_to_txn.h"
#include "proto/gen/errors.h"
#include "txn/coordinator.h"

typedef struct kmsg_add_partitions_to_txn_request_add_partitions_to_txn_transaction req_txn;
typedef struct kmsg_add_partitions_to_txn_response_add_partitions_to_txn_result resp_txn;
typedef struct kmsg_add_partitions_to_txn_response_add_partitions_to_txn_topic_result resp_topic;

struct batched {
    struct broker_req *r;
    struct kmsg_add_partitions_to_txn_request req;
    struct kmsg_add_partitions_to_txn_response resp;
    atomic_int pending; /* transactions not answered yet, +1 while the handler runs */
};

/* One transaction of the request being added (not verify-only). */
struct batched_add {
    struct batched *bt;
    resp_txn *out;
    int16_t error;
};

/* Shapes out like `in` with every partition's error -1 (not decided). 0 or -ENOMEM. */
static int batched_shape(struct broker_req *r, const req_txn *in, resp_txn *out)
{
    kmsg_add_partitions_to_txn_response_add_partitions_to_txn_result_init(out);
    out->transactional_id = in->transactional_id;
    int32_t nt = in->topics.n > 0 ? in->topics.n : 0;
    out->topic_results.v = arena_calloc(r->arena, (size_t)nt + 1, sizeof(resp_topic));
    if (out->topic_results.v == NULL)
        return -ENOMEM;
    out->topic_results.n = nt;
    for (int32_t i = 0; i < nt; i++) {
        resp_topic *t = &out->topic_results.v[i];
        kmsg_add_partitions_to_txn_response_add_partitions_to_txn_topic_result_init(t);
        t->name = in->topics.v[i].name;
        int32_t np = in->topics.v[i].partitions.n > 0 ? in->topics.v[i].partitions.n : 0;
        t->results_by_partition.v =
            arena_calloc(r->arena, (size_t)np + 1, sizeof(*t->results_by_partition.v));
        if (t->results_by_partition.v == NULL)
            return -ENOMEM;
        t->results_by_partition.n = np;
        for (int32_t j = 0; j < np; j++) {
            t->results_by_partition.v[j].partition_index = in->topics.v[i].partitions.v[j];
            t->results_by_partition.v[j].partition_error_code = -1;
        }
    }
    return 0;
}

/* Every partition of out still undecided gets err. */
static void batched_fill(resp_txn *out, int16_t err)
{
    for (int32_t i = 0; i < out->topic_results.n; i++)
        for (int32_t j = 0; j < out->topic_results.v[i].results_by_partition.n; j++)
            if (out->topic_results.v[i].results_by_partition.v[j].partition_error_code == -1)
                out->topic_results.v[i].results_by_partition.v[j].partition_error_code = err;
}

static void batched_reply(void *arg)
{
    struct batched *bt = arg;
    broker_reply(bt->r, (kproto_encode_fn)kmsg_add_partitions_to_txn_response_encode, &bt->resp);
}

static void batched_release(struct batched *bt)
{
    if (atomic_fetch_sub(&bt->pending, 1) != 1)
        return;
    if (net_worker_post(net_request_worker(bt->r->nr), batched_reply, bt) != 0)
        logger_warn("txn", "dropping an AddPartitionsToTxn response during shutdown");
}

/* Any thread: the coordinator answered one added transaction. */
static void batched_add_done(void *arg, const struct txn_result *res)
{
    struct batched_add *a = arg;
    batched_fill(a->out, res->error);
    batched_release(a->bt);
}

/* The partitions of t as a flat list (topic strings in the request's arena); NULL on ENOMEM. */
static struct txn_topic_partition *batched_parts(struct broker_req *r, const req_txn *t, size_t *n)
{
    *n = 0;
    for (int32_t i = 0; i < t->topics.n; i++)
        *n += t->topics.v[i].partitions.n > 0 ? (size_t)t->topics.v[i].partitions.n : 0;
    struct txn_topic_partition *parts = arena_calloc(r->arena, *n + 1, sizeof(*parts));
    size_t k = 0;
    for (int32_t i = 0; parts && i < t->topics.n; i++) {
        const struct kstr nm = t->topics.v[i].name;
        char *name = nm.len >= 0 && nm.ptr ? arena_strndup(r->arena, nm.ptr, (size_t)nm.len)
                                           : arena_strndup(r->arena, "", 0);
        if (name == NULL)
            return NULL;
        for (int32_t j = 0; j < t->topics.v[i].partitions.n; j++)
            parts[k++] = (struct txn_topic_partition){name, t->topics.v[i].partitions.v[j]};
    }
    return parts;
}

/* Verify-only: answered now, in request order. */
static void batched_verify(struct broker_req *r, const req_txn *t, const char *id, resp_txn *out)
{
    size_t n;
    struct txn_topic_partition *parts = batched_parts(r, t, &n);
    int16_t *errs = parts ? arena_calloc(r->arena, n + 1, sizeof(*errs)) : NULL;
    if (errs == NULL) {
        batched_fill(out, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    txn_verify_partitions(txn_coordinator_of(r->b), id, t->producer_id, t->producer_epoch, parts, n,
                          errs);
    size_t k = 0;
    for (int32_t i = 0; i < out->topic_results.n; i++)
        for (int32_t j = 0; j < out->topic_results.v[i].results_by_partition.n; j++)
            out->topic_results.v[i].results_by_partition.v[j].partition_error_code = errs[k++];
}

/* Adding: an unknown topic or partition fails the transaction's request as in v0-3. */
static void batched_add(struct batched *bt, const req_txn *t, const char *id, resp_txn *out)
{
    struct broker_req *r = bt->r;
    size_t n;
    struct txn_topic_partition *parts = batched_parts(r, t, &n);
    struct batched_add *a = arena_calloc(r->arena, 1, sizeof(*a));
    if (parts == NULL || a == NULL) {
        batched_fill(out, KAFKA_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    bool unknown = false;
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    size_t k = 0;
    for (int32_t i = 0; i < out->topic_results.n; i++) {
        for (int32_t j = 0; j < out->topic_results.v[i].results_by_partition.n; j++, k++) {
            const struct metadata_topic *mt = metadata_image_topic_by_name(img, parts[k].topic);
            if (mt == NULL || parts[k].partition < 0 ||
                (uint32_t)parts[k].partition >= mt->n_partitions) {
                out->topic_results.v[i].results_by_partition.v[j].partition_error_code =
                    KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                unknown = true;
            }
        }
    }
    metadata_image_release(img);
    if (unknown) {
        batched_fill(out, KAFKA_ERR_OPERATION_NOT_ATTEMPTED);
        return;
    }
    a->bt = bt;
    a->out = out;
    atomic_fetch_add(&bt->pending, 1);
    txn_add_partitions(txn_coordinator_of(r->b), id, t->producer_id, t->producer_epoch, parts, n,
                       batched_add_done, a);
}

void handle_add_partitions_to_txn_batched(struct broker_req *r)
{
    struct batched *bt = arena_calloc(r->arena, 1, sizeof(*bt));
    if (bt == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    if (broker_decode(r, (kproto_decode_fn)kmsg_add_partitions_to_txn_request_decode, &bt->req) !=
        0)
        return;
    bt->r = r;
    atomic_init(&bt->pending, 1);
    kmsg_add_partitions_to_txn_response_init(&bt->resp);
    int32_t n = bt->req.transactions.n > 0 ? bt->req.transactions.n : 0;
    bt->resp.results_by_transaction.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(resp_txn));
    if (bt->resp.results_by_transaction.v == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    bt->resp.results_by_transaction.n = n;
    for (int32_t i = 0; i < n; i++) {
        if (batched_shape(r, &bt->req.transactions.v[i], &bt->resp.results_by_transaction.v[i]) !=
            0) {
            broker_close(r, "out of memory");
            return;
        }
    }
    for (int32_t i = 0; i < n; i++) {
        const req_txn *t = &bt->req.transactions.v[i];
        resp_txn *out = &bt->resp.results_by_transaction.v[i];
        char *id =
            t->transactional_id.len >= 0 && t->transactional_id.ptr
                ? arena_strndup(r->arena, t->transactional_id.ptr, (size_t)t->transactional_id.len)
                : NULL;
        if (id == NULL || id[0] == '\0')
            batched_fill(out, KAFKA_ERR_INVALID_REQUEST);
        else if (t->verify_only)
            batched_verify(r, t, id, out);
        else
            batched_add(bt, t, id, out);
    }
    if (atomic_fetch_sub(&bt->pending, 1) == 1)
        batched_reply(bt); /* everything answered already: no hop through the worker queue */
}
