/*
 * The transaction coordinator's API (coordinator.h): lifecycle, InitProducerId, AddPartitions,
 * EndTxn, Describe/List, and the timeout and expiration sweeps. The table, the ops and loading
 * are in txn_table.c, txn_op.c and coordinator_load.c (shared: txn_internal.h).
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

/* ---- API ---- */

struct txn_coordinator *txn_coordinator_create(const struct txn_config *cfg,
                                               const struct txn_env *env)
{
    struct txn_coordinator *tc = calloc(1, sizeof(*tc));
    if (tc == NULL)
        return NULL;
    tc->cfg = *cfg;
    tc->env = *env;
    tc->nshards = cfg->max_shards > 0 ? cfg->max_shards : 50;
    tc->shards = calloc((size_t)tc->nshards, sizeof(*tc->shards));
    if (tc->shards == NULL) {
        free(tc);
        return NULL;
    }
    pthread_mutex_init(&tc->mu, NULL);
    atomic_init(&tc->stopping, false);
    atomic_init(&tc->ops, 0);
    return tc;
}

void txn_coordinator_shutdown(struct txn_coordinator *tc)
{
    if (tc == NULL)
        return;
    atomic_store(&tc->stopping, true);
    for (int i = 0; i < 500 && atomic_load(&tc->ops) > 0; i++)
        usleep(10000);
    if (atomic_load(&tc->ops) > 0)
        logger_warn("txn", "%d coordinator operations still in flight at shutdown",
                    atomic_load(&tc->ops));
}

void txn_coordinator_destroy(struct txn_coordinator *tc)
{
    if (tc == NULL)
        return;
    txn_table_free_all(&tc->table);
    pthread_mutex_destroy(&tc->mu);
    free(tc->shards);
    free(tc);
}

/* The id's shard, loaded; or the Kafka error. */
static int16_t shard_ready(struct txn_coordinator *tc, const char *id, int32_t *shard)
{
    int32_t n = tc->env.partition_count(tc->env.ctx);
    *shard = txn_shard_of(id, strlen(id), n);
    if (*shard < 0)
        return KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    return txn_coordinator_prepare(tc, *shard);
}

struct init_new {
    struct txn_coordinator *tc;
    char *id;
    int32_t shard;
    int32_t timeout_ms;
    int16_t last_epoch; /* for an id whose epoch ran out */
    txn_done_fn done;
    void *arg;
};

/* A new producer id arrived for a transactional id seen for the first time (or whose epoch
 * ran out): its Empty state with epoch 0 is written. */
static void init_pid_allocated(void *arg, int16_t err, int64_t pid)
{
    struct init_new *in = arg;
    struct txn_coordinator *tc = in->tc;
    if (err != 0) {
        txn_answer(in->done, in->arg, err, -1, -1);
        free(in->id);
        free(in);
        return;
    }
    pthread_mutex_lock(&tc->mu);
    struct txn_meta *m = txn_table_find(&tc->table, in->id);
    struct txn_op *op = NULL;
    if (m == NULL && (m = calloc(1, sizeof(*m))) != NULL) {
        m->id = in->id;
        in->id = NULL;
        m->shard = in->shard;
        m->producer_epoch = -1;
        m->state = TXN_EMPTY;
        m->start_ms = -1;
        m->prev_producer_id = m->next_producer_id = -1;
        m->last_epoch = -1;
        txn_table_insert(&tc->table, m);
    }
    if (m != NULL && !m->busy && (op = txn_op_new(tc, m, OP_SIMPLE, in->done, in->arg)) != NULL) {
        m->busy = true;
        op->client_tv = 0;
        op->prev_producer_id = m->producer_epoch >= 0 ? m->producer_id : pid;
        op->next_producer_id = -1;
        op->last_epoch = in->last_epoch;
        op->producer_id = pid;
        op->producer_epoch = 0;
        op->timeout_ms = in->timeout_ms;
        op->state = TXN_EMPTY;
        op->start_ms = -1;
        op->res = (struct txn_result){0, pid, 0};
    }
    pthread_mutex_unlock(&tc->mu);
    if (op != NULL)
        txn_op_write(op);
    else
        txn_answer(in->done, in->arg, KAFKA_ERR_CONCURRENT_TRANSACTIONS, -1, -1);
    free(in->id);
    free(in);
}

static void init_new_pid(struct txn_coordinator *tc, const char *id, int32_t shard,
                         int32_t timeout_ms, int16_t last_epoch, txn_done_fn done, void *arg)
{
    struct init_new *in = calloc(1, sizeof(*in));
    if (in == NULL || (in->id = strdup(id)) == NULL) {
        free(in);
        txn_answer(done, arg, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
        return;
    }
    *in = (struct init_new){tc, in->id, shard, timeout_ms, last_epoch, done, arg};
    if (tc->env.allocate_pid(tc->env.ctx, init_pid_allocated, in) != 0)
        init_pid_allocated(in, KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS, -1);
}

void txn_init_producer_id(struct txn_coordinator *tc, const char *id, int32_t timeout_ms,
                          int64_t producer_id, int16_t producer_epoch, txn_done_fn done, void *arg)
{
    if (timeout_ms <= 0 || timeout_ms > tc->cfg.max_timeout_ms) {
        txn_answer(done, arg, KAFKA_ERR_INVALID_TRANSACTION_TIMEOUT, -1, -1);
        return;
    }
    int32_t shard;
    int16_t err = shard_ready(tc, id, &shard);
    if (err != 0) {
        txn_answer(done, arg, err, -1, -1);
        return;
    }
    pthread_mutex_lock(&tc->mu);
    struct txn_meta *m = txn_table_find(&tc->table, id);
    struct txn_op *op = NULL;
    bool fencing = false, new_pid = m == NULL;
    /* KIP-360 (Kafka's prepareInitProducerIdTransit): a producer naming its id and epoch is
     * the current one, or retries an InitProducerId whose answer it lost (its epoch is
     * last_epoch), or moved to a new id when its epoch ran out (the previous id, last epoch). */
    bool expected = producer_id >= 0;
    bool retry = expected && m != NULL && m->last_epoch >= 0 && producer_epoch == m->last_epoch &&
                 producer_epoch != m->producer_epoch;
    bool known =
        !expected ||
        (m != NULL && (producer_id == m->producer_id ||
                       (producer_id == m->prev_producer_id && producer_epoch >= INT16_MAX - 1)));
    int16_t last_epoch = expected && m != NULL ? m->producer_epoch : -1;
    if (m == NULL) {
        err = 0;
    } else if (m->busy || m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT ||
               m->state == TXN_PREPARE_EPOCH_FENCE) {
        err = KAFKA_ERR_CONCURRENT_TRANSACTIONS;
    } else if (!known || (expected && m->producer_epoch >= 0 &&
                          producer_epoch != m->producer_epoch && !retry)) {
        err = KAFKA_ERR_PRODUCER_FENCED; /* KIP-360: not the current producer */
    } else if (m->state == TXN_ONGOING) {
        /* Kafka's answer: abort the open transaction with a bumped epoch and let the client
         * retry (CONCURRENT_TRANSACTIONS) until it is complete. */
        op = txn_abort_start_locked(tc, m);
        err = op ? KAFKA_ERR_CONCURRENT_TRANSACTIONS : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        fencing = op != NULL;
    } else if (!retry && m->producer_epoch >= INT16_MAX - 1) {
        new_pid = true; /* the epoch ran out: a new producer id, epoch 0 */
    } else if ((op = txn_op_new(tc, m, OP_SIMPLE, done, arg)) == NULL) {
        err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        m->busy = true;
        op->client_tv = 0;
        op->prev_producer_id = m->producer_id;
        op->next_producer_id = -1;
        /* A retry keeps the epoch it was given and the one before; otherwise a bump. */
        op->last_epoch = retry ? m->last_epoch : last_epoch;
        op->producer_epoch = retry ? m->producer_epoch : (int16_t)(m->producer_epoch + 1);
        op->timeout_ms = timeout_ms;
        op->state = TXN_EMPTY;
        op->start_ms = -1;
        op->res = (struct txn_result){0, m->producer_id, op->producer_epoch};
    }
    pthread_mutex_unlock(&tc->mu);
    if (fencing) {
        logger_info("txn",
                    "%s: aborting the open transaction of producer %" PRId64
                    " (a new producer initialised)",
                    id, m->producer_id);
        txn_answer(done, arg, err, -1, -1);
        txn_op_write(op);
    } else if (op != NULL) {
        txn_op_write(op);
    } else if (err != 0) {
        txn_answer(done, arg, err, -1, -1);
    } else if (new_pid) {
        init_new_pid(tc, id, shard, timeout_ms, last_epoch, done, arg);
    }
}

void txn_add_partitions(struct txn_coordinator *tc, const char *id, int64_t producer_id,
                        int16_t producer_epoch, const struct txn_topic_partition *parts,
                        size_t nparts, txn_done_fn done, void *arg)
{
    int32_t shard;
    int16_t err = shard_ready(tc, id, &shard);
    if (err != 0) {
        txn_answer(done, arg, err, -1, -1);
        return;
    }
    pthread_mutex_lock(&tc->mu);
    struct txn_meta *m = txn_table_find(&tc->table, id);
    err = txn_check_producer_locked(m, producer_id, producer_epoch);
    struct txn_op *op = NULL;
    if (err == 0) {
        size_t n = 0;
        struct txn_topic_partition *u = txn_parts_union(m->parts, m->nparts, parts, nparts, &n);
        if (u == NULL) {
            err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        } else if (n == m->nparts && m->state == TXN_ONGOING) {
            txn_parts_free(u, n); /* nothing new: no record (Kafka answers at once too) */
        } else if ((op = txn_op_new(tc, m, OP_SIMPLE, done, arg)) == NULL) {
            txn_parts_free(u, n);
            err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        } else {
            m->busy = true;
            op->client_tv = 0;
            op->parts = u;
            op->nparts = n;
            op->state = TXN_ONGOING;
            op->start_ms = m->state == TXN_ONGOING ? m->start_ms : clock_wall_ms();
        }
    }
    pthread_mutex_unlock(&tc->mu);
    if (op != NULL)
        txn_op_write(op);
    else
        txn_answer(done, arg, err, producer_id, producer_epoch);
}

void txn_verify_partitions(struct txn_coordinator *tc, const char *id, int64_t producer_id,
                           int16_t producer_epoch, const struct txn_topic_partition *parts,
                           size_t nparts, int16_t *errs)
{
    int32_t shard;
    int16_t err = id[0] == '\0' ? KAFKA_ERR_INVALID_REQUEST : shard_ready(tc, id, &shard);
    pthread_mutex_lock(&tc->mu);
    const struct txn_meta *m = err == 0 ? txn_table_find(&tc->table, id) : NULL;
    if (err == 0 && (m == NULL || m->producer_id != producer_id))
        err = KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING;
    else if (err == 0 && m->producer_epoch != producer_epoch)
        err = KAFKA_ERR_PRODUCER_FENCED;
    else if (err == 0 && (m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT))
        err = KAFKA_ERR_CONCURRENT_TRANSACTIONS;
    for (size_t i = 0; i < nparts; i++) {
        errs[i] = err;
        if (err != 0)
            continue;
        bool in = false;
        for (size_t j = 0; j < m->nparts && m->state == TXN_ONGOING && !in; j++)
            in = m->parts[j].partition == parts[i].partition &&
                 strcmp(m->parts[j].topic, parts[i].topic) == 0;
        errs[i] = in ? 0 : KAFKA_ERR_TRANSACTION_ABORTABLE;
    }
    pthread_mutex_unlock(&tc->mu);
}

/*
 * Kafka's endTransaction checks before a new EndTxn starts, mutex held. Under TV2 (the id's
 * last state came from an EndTxn v5: m->client_tv) the same epoch in Prepare* or Complete* is no
 * retry (it would be the next transaction's EndTxn); a retry comes with the epoch before the
 * bump, or, when the epoch ran out, with the previous producer id and the last usable epoch.
 * Returns -1 (Ongoing and valid: start it), 0 (a retry of the EndTxn that completed it: answer
 * with the current id and epoch), or the Kafka error: INVALID_PRODUCER_ID_MAPPING,
 * PRODUCER_FENCED, CONCURRENT_TRANSACTIONS (the markers of the same outcome are still being
 * written, or another change is), INVALID_TXN_STATE (the other outcome, or no transaction).
 */
static int16_t txn_end_check_locked(const struct txn_meta *m, int64_t pid, int16_t epoch,
                                    bool commit)
{
    if (m == NULL)
        return KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING;
    bool tv2 = m->client_tv >= 2;
    bool retry_bump = tv2 && epoch >= 0 && m->producer_id == pid && m->producer_epoch == epoch + 1;
    bool retry_overflow = tv2 && m->prev_producer_id == pid && m->producer_id != pid &&
                          epoch == INT16_MAX - 1 && m->producer_epoch == 0;
    bool prepare = m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT;
    bool complete = m->state == TXN_COMPLETE_COMMIT || m->state == TXN_COMPLETE_ABORT;
    bool same = m->state == (commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT) ||
                m->state == (commit ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT);
    bool valid = !tv2       ? epoch == m->producer_epoch
                 : prepare  ? retry_bump
                 : complete ? retry_bump || retry_overflow
                            : epoch == m->producer_epoch;
    if (m->producer_id != pid && !retry_overflow)
        return KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING;
    if (!valid)
        return KAFKA_ERR_PRODUCER_FENCED;
    if (prepare) /* its markers are being written (busy) or will be once it is loaded */
        return same ? KAFKA_ERR_CONCURRENT_TRANSACTIONS : KAFKA_ERR_INVALID_TXN_STATE;
    if (m->busy || m->state == TXN_PREPARE_EPOCH_FENCE)
        return KAFKA_ERR_CONCURRENT_TRANSACTIONS;
    if (complete)
        return same ? 0 : KAFKA_ERR_INVALID_TXN_STATE;
    return m->state == TXN_ONGOING ? -1 : KAFKA_ERR_INVALID_TXN_STATE;
}

/* Mutex held: the op that ends m's open transaction (Prepare*), or NULL on ENOMEM. TV2
 * (bump_epoch: EndTxn v5) bumps the epoch: the markers carry the new one, which fences the old
 * one on every partition, and the answer hands it to the producer. When the epoch has run out
 * (Kafka's isProducerEpochExhausted) the bump reaches INT16_MAX, the markers go out with it
 * and the old id, and the producer moves to a new id (*need_pid: allocate it first). */
static struct txn_op *txn_end_start_locked(struct txn_coordinator *tc, struct txn_meta *m,
                                           bool commit, bool bump_epoch, txn_done_fn done,
                                           void *arg, bool *need_pid)
{
    struct txn_op *op = txn_op_new(tc, m, OP_PREPARE, done, arg);
    if (op == NULL)
        return NULL;
    op->parts = txn_parts_union(m->parts, m->nparts, NULL, 0, &op->nparts);
    if (op->parts == NULL && m->nparts > 0) {
        free(op);
        atomic_fetch_sub(&tc->ops, 1);
        return NULL;
    }
    m->busy = true;
    op->state = commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
    op->client_tv = bump_epoch ? 2 : 0;
    op->next_producer_id = -1;
    if (bump_epoch)
        op->last_epoch = op->producer_epoch;
    *need_pid = bump_epoch && op->producer_epoch >= INT16_MAX - 1;
    if (bump_epoch && op->producer_epoch < INT16_MAX)
        op->producer_epoch++;
    op->res.producer_epoch = op->producer_epoch;
    return op;
}

void txn_end(struct txn_coordinator *tc, const char *id, int64_t producer_id,
             int16_t producer_epoch, bool commit, bool bump_epoch, txn_done_fn done, void *arg)
{
    int32_t shard;
    int16_t err = shard_ready(tc, id, &shard);
    if (err != 0) {
        txn_answer(done, arg, err, -1, -1);
        return;
    }
    pthread_mutex_lock(&tc->mu);
    struct txn_meta *m = txn_table_find(&tc->table, id);
    struct txn_op *op = NULL;
    bool need_pid = false;
    err = txn_end_check_locked(m, producer_id, producer_epoch, commit);
    if (err >= 0) { /* answered as Kafka answers a retry, with the current id and epoch */
        int64_t pid = err == 0 ? m->producer_id : -1;
        int16_t epoch = err == 0 ? m->producer_epoch : -1;
        pthread_mutex_unlock(&tc->mu);
        txn_answer(done, arg, err, pid, epoch);
        return;
    }
    op = txn_end_start_locked(tc, m, commit, bump_epoch, done, arg, &need_pid);
    pthread_mutex_unlock(&tc->mu);
    if (op == NULL)
        txn_answer(done, arg, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
    else if (need_pid)
        txn_op_write_next_pid(op);
    else
        txn_op_write(op);
}

static struct txn_description meta_description(const struct txn_meta *m)
{
    return (struct txn_description){m->id,          m->state,          m->timeout_ms, m->start_ms,
                                    m->producer_id, m->producer_epoch, m->parts,      m->nparts};
}

int16_t txn_coordinator_describe(struct txn_coordinator *tc, const char *id,
                                 void (*fn)(void *arg, const struct txn_description *d), void *arg)
{
    int32_t shard;
    int16_t err = shard_ready(tc, id, &shard);
    if (err != 0)
        return err;
    pthread_mutex_lock(&tc->mu);
    const struct txn_meta *m = txn_table_find(&tc->table, id);
    if (m != NULL) {
        struct txn_description d = meta_description(m);
        fn(arg, &d);
    }
    pthread_mutex_unlock(&tc->mu);
    return m != NULL ? 0 : KAFKA_ERR_TRANSACTIONAL_ID_NOT_FOUND;
}

void txn_coordinator_list(struct txn_coordinator *tc,
                          void (*fn)(void *arg, const struct txn_description *d), void *arg)
{
    pthread_mutex_lock(&tc->mu);
    for (size_t b = 0; b < TXN_BUCKETS; b++)
        for (const struct txn_meta *m = tc->table.buckets[b]; m; m = m->next) {
            struct txn_description d = meta_description(m);
            fn(arg, &d);
        }
    pthread_mutex_unlock(&tc->mu);
}

int txn_coordinator_expire_ids(struct txn_coordinator *tc, int64_t now_ms, int64_t expiration_ms)
{
    struct txn_op *todo[64];
    size_t n = 0;
    if (atomic_load(&tc->stopping))
        return 0;
    pthread_mutex_lock(&tc->mu);
    for (size_t b = 0; b < TXN_BUCKETS && n < 64; b++)
        for (struct txn_meta *m = tc->table.buckets[b]; m && n < 64; m = m->next) {
            bool idle = m->state == TXN_EMPTY || m->state == TXN_COMPLETE_COMMIT ||
                        m->state == TXN_COMPLETE_ABORT;
            if (m->busy || !idle || now_ms - m->update_ms < expiration_ms)
                continue;
            struct txn_op *op = txn_op_new(tc, m, OP_REMOVE, NULL, NULL);
            if (op == NULL)
                continue;
            m->busy = true;
            todo[n++] = op;
        }
    pthread_mutex_unlock(&tc->mu);
    for (size_t i = 0; i < n; i++) {
        logger_info("txn", "%s: transactional id expired (unused for %" PRId64 " ms)",
                    todo[i]->m->id, expiration_ms);
        txn_op_write(todo[i]);
    }
    return (int)n;
}

int txn_coordinator_expire(struct txn_coordinator *tc, int64_t now_ms)
{
    struct txn_op *todo[64];
    size_t n = 0;
    if (atomic_load(&tc->stopping))
        return 0;
    pthread_mutex_lock(&tc->mu);
    for (size_t b = 0; b < TXN_BUCKETS && n < 64; b++)
        for (struct txn_meta *m = tc->table.buckets[b]; m && n < 64; m = m->next) {
            if (m->busy || m->state != TXN_ONGOING || m->start_ms < 0 ||
                now_ms - m->start_ms < m->timeout_ms)
                continue;
            struct txn_op *op = txn_abort_start_locked(tc, m);
            if (op != NULL)
                todo[n++] = op;
        }
    pthread_mutex_unlock(&tc->mu);
    for (size_t i = 0; i < n; i++) {
        logger_info("txn", "%s: aborting a transaction open longer than its timeout (%d ms)",
                    todo[i]->m->id, todo[i]->timeout_ms);
        txn_op_write(todo[i]);
    }
    return (int)n;
}
