/*
 * Loading a shard (Kafka's TransactionStateManager.loadTransactionsForTxnTopicPartition): the
 * partition of __transaction_state replayed into a private table, installed when no other load
 * won, and the transactions caught in Prepare* completed; and unloading when the leadership
 * moves.
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

/* ---- loading ---- */

struct load_ctx {
    struct txn_coordinator *tc;
    int32_t shard;
    struct txn_table t;
};

static void load_record(void *arg, const uint8_t *key, int32_t key_len, const uint8_t *value,
                        int32_t value_len)
{
    struct load_ctx *lc = arg;
    struct arena a;
    arena_init(&a, 0);
    struct kstr kid;
    struct kmsg_transaction_log_value v;
    bool tomb = false;
    if (txn_state_record_decode(key, key_len, value, value_len, &a, &kid, &v, &tomb) != 0) {
        arena_free(&a);
        return; /* not a record of ours: skipped, as Kafka does */
    }
    char *id = strndup(kid.ptr, (size_t)kid.len);
    struct txn_meta *m = id ? txn_table_find(&lc->t, id) : NULL;
    if (tomb) {
        if (m) {
            txn_table_remove(&lc->t, m);
            txn_meta_free(m);
        }
        free(id);
        arena_free(&a);
        return;
    }
    if (m == NULL && id != NULL && (m = calloc(1, sizeof(*m))) != NULL) {
        m->id = id;
        id = NULL;
        m->shard = lc->shard;
        m->last_epoch = -1; /* not in the records (Kafka's neither) */
        txn_table_insert(&lc->t, m);
    }
    free(id);
    if (m != NULL) {
        m->producer_id = v.producer_id;
        m->producer_epoch = v.producer_epoch;
        m->client_tv = v.client_transaction_version;
        m->prev_producer_id = v.previous_producer_id;
        /* Only a Prepare* state has a next id (Kafka writes -1 elsewhere); a record saying
         * otherwise is not followed. */
        bool prepared =
            v.transaction_status == TXN_PREPARE_COMMIT || v.transaction_status == TXN_PREPARE_ABORT;
        m->next_producer_id = prepared && v.next_producer_id >= 0 ? v.next_producer_id : -1;
        m->timeout_ms = v.transaction_timeout_ms;
        m->state = v.transaction_status;
        m->start_ms = v.transaction_start_timestamp_ms;
        m->update_ms = v.transaction_last_update_timestamp_ms;
        txn_parts_free(m->parts, m->nparts);
        m->parts = NULL;
        m->nparts = 0;
        for (int32_t i = 0; i < v.transaction_partitions.n; i++) {
            const struct kmsg_transaction_log_value_partitions_schema *ps =
                &v.transaction_partitions.v[i];
            char *topic = strndup(ps->topic.ptr, (size_t)ps->topic.len);
            for (int32_t j = 0; topic && j < ps->partition_ids.n; j++) {
                struct txn_topic_partition add = {topic, ps->partition_ids.v[j]};
                size_t n = 0;
                struct txn_topic_partition *u = txn_parts_union(m->parts, m->nparts, &add, 1, &n);
                if (u) {
                    txn_parts_free(m->parts, m->nparts);
                    m->parts = u;
                    m->nparts = n;
                }
            }
            free(topic);
        }
    }
    arena_free(&a);
}

/* Installs a replayed shard; transactions caught between Prepare* and Complete* are completed
 * (their markers written again), as Kafka does on loading. */
static void load_install(struct txn_coordinator *tc, struct load_ctx *lc, int32_t epoch)
{
    struct txn_op *todo[64];
    size_t ntodo = 0;
    pthread_mutex_lock(&tc->mu);
    if (tc->shards[lc->shard].loaded) {
        pthread_mutex_unlock(&tc->mu);
        return; /* another call loaded it meanwhile (same log): lc's copy is freed */
    }
    tc->shards[lc->shard].loaded = true;
    tc->shards[lc->shard].epoch = epoch;
    size_t n = 0;
    for (size_t b = 0; b < TXN_BUCKETS; b++) {
        while (lc->t.buckets[b]) {
            struct txn_meta *m = lc->t.buckets[b];
            lc->t.buckets[b] = m->next;
            txn_table_insert(&tc->table, m);
            n++;
            bool prepared = m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT;
            struct txn_op *op =
                prepared && ntodo < 64 ? txn_op_new(tc, m, OP_PREPARE, NULL, NULL) : NULL;
            if (op != NULL) {
                op->parts = txn_parts_union(m->parts, m->nparts, NULL, 0, &op->nparts);
                m->busy = true;
                todo[ntodo++] = op;
            }
        }
    }
    pthread_mutex_unlock(&tc->mu);
    logger_info("txn", "loaded %zu transactional ids of %s-%d (coordinator epoch %d)", n,
                TXN_STATE_TOPIC, lc->shard, epoch);
    for (size_t i = 0; i < ntodo; i++)
        txn_op_send_markers(todo[i]);
}

/* Mutex held: drops shard's ids (busy ones are orphaned: their op frees them). */
void txn_shard_unload_locked(struct txn_coordinator *tc, int32_t shard)
{
    if (tc->shards[shard].loaded) {
        tc->shards[shard].loaded = false;
        for (size_t b = 0; b < TXN_BUCKETS; b++)
            for (struct txn_meta **pp = &tc->table.buckets[b]; *pp;) {
                struct txn_meta *m = *pp;
                if (m->shard != shard) {
                    pp = &m->next;
                    continue;
                }
                *pp = m->next;
                if (m->busy)
                    m->orphan = true;
                else
                    txn_meta_free(m);
            }
    }
}

int16_t txn_coordinator_prepare(struct txn_coordinator *tc, int32_t shard)
{
    if (atomic_load(&tc->stopping))
        return KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    int32_t n = tc->env.partition_count(tc->env.ctx);
    if (n <= 0 || shard < 0 || shard >= n || shard >= tc->nshards)
        return KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    int32_t epoch = -1;
    if (!tc->env.is_leader(tc->env.ctx, shard, &epoch))
        return KAFKA_ERR_NOT_COORDINATOR;
    pthread_mutex_lock(&tc->mu);
    bool loaded = tc->shards[shard].loaded && tc->shards[shard].epoch == epoch;
    if (!loaded)
        txn_shard_unload_locked(tc, shard); /* an older epoch's table, if any */
    pthread_mutex_unlock(&tc->mu);
    if (loaded)
        return 0;
    /* The replay is short (one compacted partition) and runs on the caller's thread. */
    struct load_ctx lc = {.tc = tc, .shard = shard};
    int rc = tc->env.replay(tc->env.ctx, shard, load_record, &lc);
    if (rc != 0) {
        txn_table_free_all(&lc.t);
        return KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    }
    load_install(tc, &lc, epoch);
    txn_table_free_all(&lc.t);
    return 0;
}

void txn_coordinator_resign(struct txn_coordinator *tc, int32_t shard)
{
    if (shard < 0 || shard >= tc->nshards)
        return;
    pthread_mutex_lock(&tc->mu);
    txn_shard_unload_locked(tc, shard);
    pthread_mutex_unlock(&tc->mu);
}
