/*
 * State changes of a transactional id (txn_internal.h): an op marks the id busy, writes the
 * new state as a record (txn_op_write) and applies it once the record is durable (op_written).
 * EndTxn and aborts go on: Prepare* durable -> markers (op_markers_done) -> Complete* record
 * -> done. A busy id's metadata is never freed under its op: a resigned shard drops its ids
 * from the table, and an op finding its id orphaned frees it at the end.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/logger.h"
#include "group/offsets_log.h"
#include "proto/gen/errors.h"
#include "txn/state_record.h"
#include "txn/txn_internal.h"

/* ---- ops ---- */

struct txn_op *txn_op_new(struct txn_coordinator *tc, struct txn_meta *m, enum txn_op_kind kind,
                          txn_done_fn done, void *arg)
{
    struct txn_op *op = calloc(1, sizeof(*op));
    if (op == NULL)
        return NULL;
    atomic_fetch_add(&tc->ops, 1);
    op->tc = tc;
    op->m = m;
    op->kind = kind;
    op->producer_id = m->producer_id;
    op->producer_epoch = m->producer_epoch;
    op->timeout_ms = m->timeout_ms;
    op->state = m->state;
    op->start_ms = m->start_ms;
    op->client_tv = m->client_tv;
    op->prev_producer_id = m->prev_producer_id;
    op->next_producer_id = m->next_producer_id;
    op->last_epoch = m->last_epoch;
    op->coordinator_epoch = tc->shards[m->shard].epoch;
    op->done = done;
    op->arg = arg;
    op->res = (struct txn_result){0, m->producer_id, m->producer_epoch};
    return op;
}

void txn_answer(txn_done_fn done, void *arg, int16_t err, int64_t pid, int16_t epoch)
{
    if (done == NULL)
        return;
    struct txn_result res = {err, err ? -1 : pid, err ? -1 : epoch};
    done(arg, &res);
}

/* The op is over: the id is free again (freed if orphaned); answers if someone waits. Called
 * without the mutex. */
static void op_finish(struct txn_op *op, int16_t err)
{
    struct txn_coordinator *tc = op->tc;
    pthread_mutex_lock(&tc->mu);
    op->m->busy = false;
    if (op->m->orphan)
        txn_meta_free(op->m);
    pthread_mutex_unlock(&tc->mu);
    txn_answer(op->done, op->arg, err, op->res.producer_id, op->res.producer_epoch);
    txn_parts_free(op->parts, op->nparts);
    free(op);
    atomic_fetch_sub(&tc->ops, 1);
}

static void op_markers_done(void *arg, int16_t err)
{
    struct txn_op *op = arg;
    if (err == 0 && atomic_load(&op->tc->stopping))
        err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    if (err != 0) {
        /* Abandoned: this broker stopped coordinating it (or is stopping). The id stays in
         * Prepare*; whoever loads the shard next writes the markers again. */
        logger_info("txn", "markers of %s (producer %" PRId64 ") abandoned: error %d", op->m->id,
                    op->producer_id, err);
        op_finish(op, KAFKA_ERR_NOT_COORDINATOR);
        return;
    }
    /* Complete*: the partitions are done. TV2 (Kafka's prepareComplete): a producer whose
     * epoch ran out moves to its next id with epoch 0, and the answer hands it over. */
    op->kind = OP_COMPLETE;
    if (op->client_tv >= 2) {
        op->last_epoch = op->producer_epoch;
        op->prev_producer_id = op->producer_id;
        if (op->next_producer_id >= 0) {
            op->producer_id = op->next_producer_id;
            op->producer_epoch = 0;
        }
        op->res = (struct txn_result){0, op->producer_id, op->producer_epoch};
    }
    op->next_producer_id = -1;
    op->state = op->state == TXN_PREPARE_COMMIT ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;
    txn_parts_free(op->parts, op->nparts);
    op->parts = NULL;
    op->nparts = 0;
    txn_op_write(op);
}

/* Prepare* is durable: the markers go to every partition of the transaction. */
void txn_op_send_markers(struct txn_op *op)
{
    struct txn_coordinator *tc = op->tc;
    struct txn_marker_job job = {
        .shard = op->m->shard,
        .producer_id = op->producer_id,
        .producer_epoch = op->producer_epoch,
        .coordinator_epoch = op->coordinator_epoch,
        .commit = op->state == TXN_PREPARE_COMMIT,
        .nparts = op->nparts,
        .parts = op->parts,
    };
    if (op->nparts == 0 || tc->env.write_markers(tc->env.ctx, &job, op_markers_done, op) != 0)
        op_markers_done(op, op->nparts == 0 ? 0 : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
}

/* Mutex held: the durable state of op goes into its id. */
static void op_apply_locked(struct txn_op *op)
{
    struct txn_meta *m = op->m;
    assert(op->next_producer_id < 0 || op->state == TXN_PREPARE_COMMIT ||
           op->state == TXN_PREPARE_ABORT);
    m->producer_id = op->producer_id;
    m->client_tv = op->client_tv;
    m->prev_producer_id = op->prev_producer_id;
    m->next_producer_id = op->next_producer_id;
    m->last_epoch = op->last_epoch;
    m->producer_epoch = op->producer_epoch;
    m->timeout_ms = op->timeout_ms;
    m->state = op->state;
    m->start_ms = op->start_ms;
    m->update_ms = clock_wall_ms();
    txn_parts_free(m->parts, m->nparts);
    m->parts = NULL;
    m->nparts = 0;
    /* The markers still need the partitions: the op keeps its copy, the id gets one. */
    if (op->nparts > 0) {
        m->parts = txn_parts_union(op->parts, op->nparts, NULL, 0, &m->nparts);
        if (m->parts == NULL)
            m->nparts = 0;
    }
}

static void op_written(void *arg, int err)
{
    struct txn_op *op = arg;
    struct txn_coordinator *tc = op->tc;
    if (err == 0 && atomic_load(&tc->stopping))
        err = -ESHUTDOWN; /* durable, but nothing more happens here: the next load sees it */
    pthread_mutex_lock(&tc->mu);
    bool orphan = op->m->orphan;
    if (err == 0 && !orphan && op->kind == OP_REMOVE) {
        txn_table_remove(&tc->table, op->m);
        op->m->orphan = true; /* op_finish frees it */
    } else if (err == 0 && !orphan) {
        op_apply_locked(op);
    }
    pthread_mutex_unlock(&tc->mu);
    if (op->kind == OP_REMOVE && err == 0) {
        op_finish(op, 0);
        return;
    }
    if (err != 0 || orphan) {
        op_finish(op, KAFKA_ERR_NOT_COORDINATOR);
        return;
    }
    if (op->kind == OP_PREPARE)
        txn_op_send_markers(op);
    else
        op_finish(op, 0);
}

/* Builds the TransactionLogValue of op (partitions grouped by topic) in arena. */
static void op_value(struct txn_op *op, struct arena *a, struct kmsg_transaction_log_value *v)
{
    kmsg_transaction_log_value_init(v);
    v->producer_id = op->producer_id;
    v->producer_epoch = op->producer_epoch;
    v->transaction_timeout_ms = op->timeout_ms;
    v->transaction_status = op->state;
    v->transaction_last_update_timestamp_ms = clock_wall_ms();
    v->transaction_start_timestamp_ms = op->start_ms;
    if (op->client_tv >= 2) { /* TV2 only: other records stay version 0, as Kafka's TV0/1 */
        v->client_transaction_version = op->client_tv;
        v->previous_producer_id = op->prev_producer_id;
        v->next_producer_id = op->next_producer_id;
    }
    struct kmsg_transaction_log_value_partitions_schema *ts =
        arena_calloc(a, op->nparts + 1, sizeof(*ts));
    int32_t nt = 0;
    for (size_t i = 0; ts && i < op->nparts; i++) {
        int32_t t = 0;
        while (t < nt && strcmp(ts[t].topic.ptr, op->parts[i].topic) != 0)
            t++;
        if (t == nt) {
            kmsg_transaction_log_value_partitions_schema_init(&ts[nt]);
            ts[nt].topic = (struct kstr){op->parts[i].topic, (int32_t)strlen(op->parts[i].topic)};
            ts[nt].partition_ids.v = arena_calloc(a, op->nparts, sizeof(int32_t));
            ts[nt].partition_ids.n = 0;
            nt++;
        }
        if (ts[t].partition_ids.v)
            ts[t].partition_ids.v[ts[t].partition_ids.n++] = op->parts[i].partition;
    }
    v->transaction_partitions.v = ts;
    v->transaction_partitions.n = ts ? nt : 0;
}

void txn_op_write(struct txn_op *op)
{
    struct txn_coordinator *tc = op->tc;
    struct arena a;
    arena_init(&a, 0);
    struct kmsg_transaction_log_value v;
    op_value(op, &a, &v);
    uint8_t *batch = NULL;
    size_t len = 0;
    int rc = txn_state_record_build(op->m->id, op->kind == OP_REMOVE ? NULL : &v, clock_wall_ms(),
                                    &batch, &len);
    arena_free(&a);
    if (rc == 0 && atomic_load(&tc->stopping))
        rc = -ESHUTDOWN;
    if (rc == 0)
        rc = tc->env.append(tc->env.ctx, op->m->shard, batch, len, op_written, op);
    free(batch);
    if (rc != 0)
        op_written(op, rc);
}

static void op_next_pid(void *arg, int16_t err, int64_t pid)
{
    struct txn_op *op = arg;
    if (err != 0) {
        op_finish(op, err);
        return;
    }
    assert(pid >= 0 && pid != op->producer_id);
    op->next_producer_id = pid;
    txn_op_write(op);
}

void txn_op_write_next_pid(struct txn_op *op)
{
    struct txn_coordinator *tc = op->tc;
    if (atomic_load(&tc->stopping) || tc->env.allocate_pid(tc->env.ctx, op_next_pid, op) != 0)
        op_next_pid(op, KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS, -1);
}

/* Mutex held: the id is valid for (pid, epoch), or the Kafka error to answer. */
int16_t txn_check_producer_locked(const struct txn_meta *m, int64_t pid, int16_t epoch)
{
    if (m == NULL || m->producer_id != pid)
        return KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING;
    if (epoch != m->producer_epoch)
        return KAFKA_ERR_PRODUCER_FENCED;
    if (m->busy || m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT ||
        m->state == TXN_PREPARE_EPOCH_FENCE)
        return KAFKA_ERR_CONCURRENT_TRANSACTIONS;
    return 0;
}

/* Mutex held: starts aborting m's open transaction with its epoch bumped (fencing the
 * producer, as Kafka's timeout and InitProducerId do). The op is returned for op_write after
 * unlocking, or NULL on ENOMEM. */
struct txn_op *txn_abort_start_locked(struct txn_coordinator *tc, struct txn_meta *m)
{
    struct txn_op *op = txn_op_new(tc, m, OP_PREPARE, NULL, NULL);
    if (op == NULL)
        return NULL;
    op->parts = txn_parts_union(m->parts, m->nparts, NULL, 0, &op->nparts);
    if (op->parts == NULL && m->nparts > 0) {
        free(op);
        atomic_fetch_sub(&tc->ops, 1);
        return NULL;
    }
    if (op->producer_epoch < INT16_MAX - 1)
        op->producer_epoch++;
    op->state = TXN_PREPARE_ABORT;
    op->client_tv = 0; /* not a client's EndTxn: its old epoch is no retry (fenced) */
    op->next_producer_id = -1;
    op->last_epoch = -1; /* nor may it re-initialise with it (Kafka's fence) */
    m->busy = true;
    return op;
}
