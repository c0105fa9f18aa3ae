/*
 * The transactional client APIs the coordinator answers: InitProducerId with a transactional
 * id (handed over by init_producer_id.c), AddPartitionsToTxn (key 24, v0-3; v4-5 in
 * add_partitions_batched.c), AddOffsetsToTxn
 * (key 25) and EndTxn (key 26). Each decodes, calls the coordinator (txn/coordinator.h) and
 * replies on the request's worker when it answers.
 */
#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/transactions.h"
#include "group/offsets_log.h"
#include "proto/gen/add_offsets_to_txn.h"
#include "proto/gen/add_partitions_to_txn.h"
#include "proto/gen/end_txn.h"
#include "proto/gen/errors.h"
#include "txn/coordinator.h"

/* A request waiting for the coordinator. */
struct txn_req {
    struct broker_req *r;
    struct txn_result res;
    void (*reply)(struct txn_req *t);
    void *state; /* the handler's */
};

static void txn_req_reply(void *arg)
{
    struct txn_req *t = arg;
    t->reply(t);
}

/* Any thread: the coordinator answered. */
static void txn_req_done(void *arg, const struct txn_result *res)
{
    struct txn_req *t = arg;
    t->res = *res;
    if (net_worker_post(net_request_worker(t->r->nr), txn_req_reply, t) != 0)
        logger_warn("txn", "dropping a transaction response during shutdown");
}

static struct txn_req *txn_req_new(struct broker_req *r, void (*reply)(struct txn_req *))
{
    struct txn_req *t = arena_calloc(r->arena, 1, sizeof(*t));
    if (t == NULL) {
        broker_close(r, "out of memory");
        return NULL;
    }
    t->r = r;
    t->reply = reply;
    return t;
}

/* Kafka answers clients that predate PRODUCER_FENCED with INVALID_PRODUCER_EPOCH: EndTxn,
 * AddPartitionsToTxn and AddOffsetsToTxn before v2, InitProducerId before v4. */
static int16_t fenced_for_version(const struct txn_req *t, int16_t first_version)
{
    if (t->res.error == KAFKA_ERR_PRODUCER_FENCED && t->r->hdr.api_version < first_version)
        return KAFKA_ERR_INVALID_PRODUCER_EPOCH;
    return t->res.error;
}

static char *req_cstr(struct broker_req *r, struct kstr s)
{
    return s.len >= 0 && s.ptr ? arena_strndup(r->arena, s.ptr, (size_t)s.len) : NULL;
}

/* ---- InitProducerId ---- */

static void init_reply(struct txn_req *t)
{
    struct kmsg_init_producer_id_response resp;
    kmsg_init_producer_id_response_init(&resp);
    resp.error_code = fenced_for_version(t, 4);
    resp.producer_id = t->res.error ? -1 : t->res.producer_id;
    resp.producer_epoch = t->res.error ? -1 : t->res.producer_epoch;
    broker_reply(t->r, (kproto_encode_fn)kmsg_init_producer_id_response_encode, &resp);
}

void txn_handle_init_producer_id(struct broker_req *r,
                                 const struct kmsg_init_producer_id_request *req)
{
    struct txn_req *t = txn_req_new(r, init_reply);
    char *id = req_cstr(r, req->transactional_id);
    if (t == NULL || id == NULL)
        return;
    if (id[0] == '\0') { /* Kafka: an empty transactional id is an idempotent producer's */
        t->res.error = KAFKA_ERR_INVALID_REQUEST;
        init_reply(t);
        return;
    }
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    txn_state_topic_ensure(r->b, img);
    metadata_image_release(img);
    int64_t pid = r->hdr.api_version >= 3 ? req->producer_id : -1;
    int16_t epoch = r->hdr.api_version >= 3 ? req->producer_epoch : -1;
    txn_init_producer_id(txn_coordinator_of(r->b), id, req->transaction_timeout_ms, pid, epoch,
                         txn_req_done, t);
}

/* Kafka: the transactional APIs need WRITE on the transactional id. */
static bool txn_id_allowed(struct broker_req *r, const char *id)
{
    return id == NULL ||
           broker_authorize(r, NULL, ACL_RESOURCE_TRANSACTIONAL_ID, id, ACL_OPERATION_WRITE);
}

/* ---- AddPartitionsToTxn (v0-3) ---- */

struct add_parts {
    struct kmsg_add_partitions_to_txn_request req;
    struct kmsg_add_partitions_to_txn_response resp;
    int16_t fixed; /* a per-partition answer decided before the coordinator (unknown topic) */
};

/* Fills every partition's error: `err` where none was set before. */
static void add_parts_fill(struct broker_req *r, struct add_parts *ap, int16_t err)
{
    const struct kmsg_add_partitions_to_txn_request_add_partitions_to_txn_topic_array *ts =
        &ap->req.v3_and_below_topics;
    struct kmsg_add_partitions_to_txn_response_add_partitions_to_txn_topic_result_array *out =
        &ap->resp.results_by_topic_v3_and_below;
    if (out->v == NULL) {
        int32_t nt = ts->n > 0 ? ts->n : 0;
        out->v = arena_calloc(r->arena, (size_t)nt + 1, sizeof(*out->v));
        out->n = out->v ? nt : 0;
        for (int32_t i = 0; i < out->n; i++) {
            kmsg_add_partitions_to_txn_response_add_partitions_to_txn_topic_result_init(&out->v[i]);
            out->v[i].name = ts->v[i].name;
            int32_t np = ts->v[i].partitions.n > 0 ? ts->v[i].partitions.n : 0;
            out->v[i].results_by_partition.v =
                arena_calloc(r->arena, (size_t)np + 1, sizeof(*out->v[i].results_by_partition.v));
            out->v[i].results_by_partition.n = out->v[i].results_by_partition.v ? np : 0;
            for (int32_t j = 0; j < out->v[i].results_by_partition.n; j++) {
                out->v[i].results_by_partition.v[j].partition_index = ts->v[i].partitions.v[j];
                out->v[i].results_by_partition.v[j].partition_error_code = -1;
            }
        }
    }
    for (int32_t i = 0; i < out->n; i++)
        for (int32_t j = 0; j < out->v[i].results_by_partition.n; j++)
            if (out->v[i].results_by_partition.v[j].partition_error_code == -1)
                out->v[i].results_by_partition.v[j].partition_error_code = err;
}

static void add_parts_reply(struct txn_req *t)
{
    struct add_parts *ap = t->state;
    add_parts_fill(t->r, ap, fenced_for_version(t, 2));
    broker_reply(t->r, (kproto_encode_fn)kmsg_add_partitions_to_txn_response_encode, &ap->resp);
}

void handle_add_partitions_to_txn(struct broker_req *r)
{
    if (r->hdr.api_version >= 4) {
        handle_add_partitions_to_txn_batched(r);
        return;
    }
    struct txn_req *t = txn_req_new(r, add_parts_reply);
    struct add_parts *ap = arena_calloc(r->arena, 1, sizeof(*ap));
    if (t == NULL || ap == NULL)
        return;
    if (broker_decode(r, (kproto_decode_fn)kmsg_add_partitions_to_txn_request_decode, &ap->req) !=
        0)
        return;
    t->state = ap;
    kmsg_add_partitions_to_txn_response_init(&ap->resp);
    add_parts_fill(r, ap, -1); /* shape only */
    const struct kmsg_add_partitions_to_txn_request_add_partitions_to_txn_topic_array *ts =
        &ap->req.v3_and_below_topics;
    size_t n = 0;
    for (int32_t i = 0; i < ts->n; i++)
        n += ts->v[i].partitions.n > 0 ? (size_t)ts->v[i].partitions.n : 0;
    struct txn_topic_partition *parts = arena_calloc(r->arena, n + 1, sizeof(*parts));
    char *id = req_cstr(r, ap->req.v3_and_below_transactional_id);
    if (parts == NULL || id == NULL) {
        t->res.error = parts ? KAFKA_ERR_INVALID_REQUEST : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        add_parts_reply(t);
        return;
    }
    if (!txn_id_allowed(r, id)) {
        t->res.error = KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        add_parts_reply(t);
        return;
    }
    /* Kafka: an unknown topic fails it (UNKNOWN_TOPIC_OR_PARTITION) and the other partitions
     * are not attempted (OPERATION_NOT_ATTEMPTED). */
    bool unknown = false;
    size_t k = 0;
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    for (int32_t i = 0; i < ts->n; i++) {
        char *name = req_cstr(r, ts->v[i].name);
        const struct metadata_topic *mt = name ? metadata_image_topic_by_name(img, name) : NULL;
        /* Kafka: WRITE on each topic, checked before whether it exists */
        bool denied =
            name && !broker_authorize(r, img, ACL_RESOURCE_TOPIC, name, ACL_OPERATION_WRITE);
        for (int32_t j = 0; j < ts->v[i].partitions.n; j++) {
            int32_t idx = ts->v[i].partitions.v[j];
            if (denied) {
                ap->resp.results_by_topic_v3_and_below.v[i]
                    .results_by_partition.v[j]
                    .partition_error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
                unknown = true;
                continue;
            }
            if (mt == NULL || idx < 0 || (uint32_t)idx >= mt->n_partitions) {
                ap->resp.results_by_topic_v3_and_below.v[i]
                    .results_by_partition.v[j]
                    .partition_error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
                unknown = true;
                continue;
            }
            parts[k++] = (struct txn_topic_partition){name, idx};
        }
    }
    metadata_image_release(img);
    if (unknown) {
        t->res.error = KAFKA_ERR_OPERATION_NOT_ATTEMPTED;
        add_parts_reply(t);
        return;
    }
    txn_add_partitions(txn_coordinator_of(r->b), id, ap->req.v3_and_below_producer_id,
                       ap->req.v3_and_below_producer_epoch, parts, k, txn_req_done, t);
}

/* ---- AddOffsetsToTxn ---- */

static void add_offsets_reply(struct txn_req *t)
{
    struct kmsg_add_offsets_to_txn_response resp;
    kmsg_add_offsets_to_txn_response_init(&resp);
    resp.error_code = fenced_for_version(t, 2);
    broker_reply(t->r, (kproto_encode_fn)kmsg_add_offsets_to_txn_response_encode, &resp);
}

void handle_add_offsets_to_txn(struct broker_req *r)
{
    struct txn_req *t = txn_req_new(r, add_offsets_reply);
    struct kmsg_add_offsets_to_txn_request req;
    if (t == NULL ||
        broker_decode(r, (kproto_decode_fn)kmsg_add_offsets_to_txn_request_decode, &req) != 0)
        return;
    char *id = req_cstr(r, req.transactional_id);
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    const struct metadata_topic *ot = metadata_image_topic_by_name(img, OFFSETS_TOPIC);
    int32_t n = ot ? (int32_t)ot->n_partitions : 0;
    metadata_image_release(img);
    if (id == NULL || req.group_id.len <= 0 || n <= 0) {
        t->res.error = id == NULL || req.group_id.len <= 0 ? KAFKA_ERR_INVALID_REQUEST
                                                           : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        add_offsets_reply(t);
        return;
    }
    char *group = req_cstr(r, req.group_id);
    if (!txn_id_allowed(r, id) ||
        !broker_authorize(r, NULL, ACL_RESOURCE_GROUP, group ? group : "", ACL_OPERATION_READ)) {
        t->res.error = txn_id_allowed(r, id) ? KAFKA_ERR_GROUP_AUTHORIZATION_FAILED
                                             : KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        add_offsets_reply(t);
        return;
    }
    /* The group's __consumer_offsets partition joins the transaction. */
    struct txn_topic_partition *tp = arena_calloc(r->arena, 1, sizeof(*tp));
    if (tp == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    tp->topic = OFFSETS_TOPIC;
    tp->partition = offsets_partition_for(req.group_id.ptr, (size_t)req.group_id.len, n);
    txn_add_partitions(txn_coordinator_of(r->b), id, req.producer_id, req.producer_epoch, tp, 1,
                       txn_req_done, t);
}

/* ---- EndTxn ---- */

static void end_reply(struct txn_req *t)
{
    struct kmsg_end_txn_response resp;
    kmsg_end_txn_response_init(&resp);
    resp.error_code = fenced_for_version(t, 2);
    /* v5 (KIP-890 part 2): the id and the epoch bumped for the next transaction. */
    resp.producer_id = resp.error_code == 0 ? t->res.producer_id : -1;
    resp.producer_epoch = resp.error_code == 0 ? t->res.producer_epoch : -1;
    broker_reply(t->r, (kproto_encode_fn)kmsg_end_txn_response_encode, &resp);
}

void handle_end_txn(struct broker_req *r)
{
    struct txn_req *t = txn_req_new(r, end_reply);
    struct kmsg_end_txn_request req;
    if (t == NULL || broker_decode(r, (kproto_decode_fn)kmsg_end_txn_request_decode, &req) != 0)
        return;
    char *id = req_cstr(r, req.transactional_id);
    if (id == NULL || !txn_id_allowed(r, id)) {
        t->res.error = id == NULL ? KAFKA_ERR_INVALID_REQUEST
                                  : KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        end_reply(t);
        return;
    }
    txn_end(txn_coordinator_of(r->b), id, req.producer_id, req.producer_epoch, req.committed,
            r->hdr.api_version >= 5, txn_req_done, t);
}
