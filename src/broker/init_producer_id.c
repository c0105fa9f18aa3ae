/*
 * InitProducerId (key 22), for idempotent producers.
 *
 * Producer ids come from blocks of METADATA_PRODUCER_ID_BLOCK ids reserved for this broker
 * through the metadata log (controller_allocate_producer_ids), so no two brokers, and no
 * restart, ever hand out one id twice. The current block is cached in a process-wide pool (one
 * small mutex); when it runs out the request waits for the controller through broker_async,
 * never blocking the worker. Concurrent refills each reserve a block; ids of a block not
 * needed are simply never used.
 *
 * Answers:
 *   - no producer id presented: a new id with epoch 0 (Kafka does the same);
 *   - v3+ with a producer id and epoch (KIP-360, a producer resetting after an error): the
 *     same id with the epoch bumped, which fences the old epoch's in-flight batches on every
 *     partition; a new id with epoch 0 when the epoch would overflow (>= INT16_MAX - 1) or the
 *     id was never handed out by this cluster. (Kafka's coordinator hands a fresh id to
 *     non-transactional producers instead; both are valid answers for clients.)
 *   - only one of id and epoch set: INVALID_REQUEST, as Kafka;
 *   - a transactional id: the transaction coordinator answers (broker/transactions.c); it
 *     takes its producer ids from the same pool (broker_producer_id_next).
 *   - the controller cannot reserve a block (no quorum, not the leader, shutdown):
 *     COORDINATOR_LOAD_IN_PROGRESS, retriable, as Kafka's RPCProducerIdManager answers while
 *     its block is not available.
 */
#include "proto/gen/init_producer_id.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/logger.h"
#include "broker/authorizer.h"
#include "broker/forwarder.h"
#include "broker/async.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/transactions.h"
#include "proto/gen/errors.h"

/* Takes the next id of the broker's cached block, if any is left. */
static bool pool_take(struct broker *b, int64_t *pid)
{
    struct producer_id_pool *pool = &b->pid_pool;
    bool ok = false;
    pthread_mutex_lock(&pool->mu);
    if (pool->next < pool->end) {
        *pid = pool->next++;
        ok = true;
    }
    pthread_mutex_unlock(&pool->mu);
    return ok;
}

/* Takes the first id of a new block [start, end) and pools the rest if the pool is empty. */
static int64_t pool_refill(struct broker *b, int64_t start, int64_t end)
{
    struct producer_id_pool *pool = &b->pid_pool;
    pthread_mutex_lock(&pool->mu);
    if (pool->next >= pool->end) {
        pool->next = start + 1;
        pool->end = end;
    }
    pthread_mutex_unlock(&pool->mu);
    return start;
}

static void reply(struct broker_req *r, int16_t err, int64_t pid, int16_t epoch)
{
    struct kmsg_init_producer_id_response resp;
    kmsg_init_producer_id_response_init(&resp);
    resp.error_code = err;
    resp.producer_id = err ? -1 : pid;
    resp.producer_epoch = err ? -1 : epoch;
    broker_reply(r, (kproto_encode_fn)kmsg_init_producer_id_response_encode, &resp);
}

/* Worker thread: the controller reserved a block (or failed to). */
static void init_producer_id_allocated(struct broker_async *a)
{
    if (a->error_code != 0 || a->producer_id_len <= 0 || a->producer_id_start < 0) {
        logger_warn("producer", "cannot reserve producer ids: error %d%s%s", a->error_code,
                    a->error_message ? ": " : "", a->error_message ? a->error_message : "");
        reply(a->r, KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS, -1, -1);
        return;
    }
    int64_t pid =
        pool_refill(a->r->b, a->producer_id_start, a->producer_id_start + a->producer_id_len);
    reply(a->r, KAFKA_ERR_NONE, pid, 0);
}

struct pid_wait {
    struct broker *b;
    void (*cb)(void *arg, int16_t err, int64_t pid);
    void *arg;
};

/* Any thread: the controller's answer to a block request made for the transaction
 * coordinator. */
static void pid_block_allocated(void *arg, const struct controller_result *res)
{
    struct pid_wait *w = arg;
    if (res->error_code != 0 || res->producer_id_len <= 0 || res->producer_id_start < 0)
        w->cb(w->arg, KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS, -1);
    else
        w->cb(w->arg, 0,
              pool_refill(w->b, res->producer_id_start,
                          res->producer_id_start + res->producer_id_len));
    free(w);
}

int broker_producer_id_next(struct broker *b, void (*cb)(void *arg, int16_t err, int64_t pid),
                            void *arg)
{
    int64_t pid;
    if (pool_take(b, &pid)) {
        cb(arg, 0, pid);
        return 0;
    }
    struct pid_wait *w = malloc(sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    *w = (struct pid_wait){b, cb, arg};
    int rc = broker_allocate_producer_ids(b, pid_block_allocated, w);
    if (rc != 0)
        free(w);
    return rc;
}

/* True when pid lies below the next block the cluster would hand out. */
static bool pid_was_issued(struct broker *b, int64_t pid)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    bool ok = pid < img->next_producer_id;
    metadata_image_release(img);
    return ok;
}

void handle_init_producer_id(struct broker_req *r)
{
    struct kmsg_init_producer_id_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_init_producer_id_request_decode, &req) != 0)
        return;
    if (req.transactional_id.len >= 0 && req.transactional_id.ptr != NULL) {
        /* Kafka: WRITE on the transactional id. */
        char *txn = broker_name(r, req.transactional_id);
        if (txn == NULL ||
            !broker_authorize(r, NULL, ACL_RESOURCE_TRANSACTIONAL_ID, txn, ACL_OPERATION_WRITE)) {
            reply(r, KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1, -1);
            return;
        }
        txn_handle_init_producer_id(r, &req); /* the transaction coordinator (transactions.c) */
        return;
    }
    /* Kafka: an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on a topic. */
    if (!broker_authorize_cluster(r, ACL_OPERATION_IDEMPOTENT_WRITE) &&
        !broker_authorize_any(r, ACL_RESOURCE_TOPIC, ACL_OPERATION_WRITE)) {
        reply(r, KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED, -1, -1);
        return;
    }
    if (r->hdr.api_version >= 3 && (req.producer_id >= 0) != (req.producer_epoch >= 0)) {
        reply(r, KAFKA_ERR_INVALID_REQUEST, -1, -1);
        return;
    }
    if (r->hdr.api_version >= 3 && req.producer_id >= 0 && req.producer_epoch < INT16_MAX - 1 &&
        pid_was_issued(r->b, req.producer_id)) {
        reply(r, KAFKA_ERR_NONE, req.producer_id, (int16_t)(req.producer_epoch + 1));
        return;
    }
    int64_t pid;
    if (pool_take(r->b, &pid)) {
        reply(r, KAFKA_ERR_NONE, pid, 0);
        return;
    }
    struct broker_async *a = broker_async_new(r, init_producer_id_allocated, NULL);
    if (a == NULL || broker_allocate_producer_ids(r->b, broker_async_done, a) != 0) {
        broker_async_free(a);
        reply(r, KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS, -1, -1);
    }
}
