/*
 * The transaction coordinator's state machine; see coordinator.h for the model and threads.
 *
 * An operation that changes an id's state is a struct txn_op: it marks the id busy, writes the
 * new state as a record (op_write), and applies it to the table once the record is durable
 * (op_written). EndTxn and aborts go on: Prepare* durable -> markers (op_markers_done) ->
 * Complete* record -> done. A busy id's metadata is never freed under its op: a resigned
 * shard drops its ids from the table, and an op finding its id orphaned frees it at the end.
 *
 * Invariants: a txn_meta is in the table iff !orphan; busy is set iff exactly one txn_op owns
 * the id; the partitions of an id are distinct.
 */
#include "txn/coordinator.h"

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
#include "base/log.h"
#include "group/offsets_log.h"
#include "proto/gen/errors.h"
#include "txn/state_record.h"

#define TXN_BUCKETS 256

struct txn_meta {
    struct txn_meta *next; /* bucket chain */
    char *id;
    int32_t shard;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    int8_t state;
    struct txn_topic_partition *parts; /* topic strings owned */
    size_t nparts;
    int64_t start_ms, update_ms;
    bool busy;
    bool orphan; /* removed from the table while busy: its op frees it */
};

struct txn_table {
    struct txn_meta *buckets[TXN_BUCKETS];
};

struct txn_shard {
    bool loaded;
    int32_t epoch; /* coordinator epoch: the partition's leader epoch when loaded */
};

struct txn_coordinator {
    pthread_mutex_t mu; /* guards table, shards and every txn_meta */
    struct txn_config cfg;
    struct txn_env env;
    struct txn_table table;
    struct txn_shard *shards;
    int32_t nshards;
    atomic_bool stopping; /* txn_coordinator_shutdown: ops end at their next step */
    atomic_int ops;       /* txn_ops alive */
};

enum txn_op_kind {
    OP_SIMPLE,   /* record durable -> answer */
    OP_PREPARE,  /* Prepare* durable -> markers -> Complete* */
    OP_COMPLETE, /* Complete* durable -> answer */
    OP_REMOVE,   /* tombstone durable -> the id is gone (transactional.id.expiration.ms) */
};

struct txn_op {
    struct txn_coordinator *tc;
    struct txn_meta *m;
    enum txn_op_kind kind;
    /* The state to write and apply. */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    int8_t state;
    struct txn_topic_partition *parts; /* owned; moves into m when applied */
    size_t nparts;
    int64_t start_ms;
    int32_t coordinator_epoch;
    txn_done_fn done; /* NULL: nobody waits (timeouts, fencing, load) */
    void *arg;
    struct txn_result res;
};

/* ---- table ---- */

int32_t txn_shard_of(const char *id, size_t len, int32_t n)
{
    return n > 0 ? offsets_partition_for(id, len, n) : -1;
}

static size_t bucket_of(const char *id)
{
    return (size_t)(uint32_t)offsets_java_string_hash(id, strlen(id)) % TXN_BUCKETS;
}

static struct txn_meta *table_find(struct txn_table *t, const char *id)
{
    for (struct txn_meta *m = t->buckets[bucket_of(id)]; m; m = m->next)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

static void table_insert(struct txn_table *t, struct txn_meta *m)
{
    size_t b = bucket_of(m->id);
    m->next = t->buckets[b];
    t->buckets[b] = m;
}

static void parts_free(struct txn_topic_partition *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)parts[i].topic);
    free(parts);
}

static void meta_free(struct txn_meta *m)
{
    parts_free(m->parts, m->nparts);
    free(m->id);
    free(m);
}

static void table_remove(struct txn_table *t, struct txn_meta *m)
{
    for (struct txn_meta **pp = &t->buckets[bucket_of(m->id)]; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            return;
        }
}

/* Copies parts[0..n) and adds[0..nadd) not already there; NULL on ENOMEM. */
static struct txn_topic_partition *parts_union(const struct txn_topic_partition *parts, size_t n,
                                               const struct txn_topic_partition *adds, size_t nadd,
                                               size_t *out_n)
{
    struct txn_topic_partition *v = calloc(n + nadd + 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; v && i < n + nadd; i++) {
        const struct txn_topic_partition *p = i < n ? &parts[i] : &adds[i - n];
        bool dup = false;
        for (size_t j = 0; j < k && !dup; j++)
            dup = v[j].partition == p->partition && strcmp(v[j].topic, p->topic) == 0;
        if (dup)
            continue;
        v[k].topic = strdup(p->topic);
        v[k].partition = p->partition;
        if (v[k++].topic == NULL) {
            parts_free(v, k);
            return NULL;
        }
    }
    *out_n = k;
    return v;
}

/* ---- ops ---- */

static void op_write(struct txn_op *op);

static struct txn_op *op_new(struct txn_coordinator *tc, struct txn_meta *m, enum txn_op_kind kind,
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
    op->coordinator_epoch = tc->shards[m->shard].epoch;
    op->done = done;
    op->arg = arg;
    op->res = (struct txn_result){0, m->producer_id, m->producer_epoch};
    return op;
}

static void answer(txn_done_fn done, void *arg, int16_t err, int64_t pid, int16_t epoch)
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
        meta_free(op->m);
    pthread_mutex_unlock(&tc->mu);
    answer(op->done, op->arg, err, op->res.producer_id, op->res.producer_epoch);
    parts_free(op->parts, op->nparts);
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
        log_info("txn", "markers of %s (producer %" PRId64 ") abandoned: error %d", op->m->id,
                 op->producer_id, err);
        op_finish(op, KAFKA_ERR_NOT_COORDINATOR);
        return;
    }
    /* Complete*: the partitions are done. */
    op->kind = OP_COMPLETE;
    op->state = op->state == TXN_PREPARE_COMMIT ? TXN_COMPLETE_COMMIT : TXN_COMPLETE_ABORT;
    parts_free(op->parts, op->nparts);
    op->parts = NULL;
    op->nparts = 0;
    op_write(op);
}

/* Prepare* is durable: the markers go to every partition of the transaction. */
static void op_send_markers(struct txn_op *op)
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
    m->producer_id = op->producer_id;
    m->producer_epoch = op->producer_epoch;
    m->timeout_ms = op->timeout_ms;
    m->state = op->state;
    m->start_ms = op->start_ms;
    m->update_ms = clock_wall_ms();
    parts_free(m->parts, m->nparts);
    m->parts = NULL;
    m->nparts = 0;
    /* The markers still need the partitions: the op keeps its copy, the id gets one. */
    if (op->nparts > 0) {
        m->parts = parts_union(op->parts, op->nparts, NULL, 0, &m->nparts);
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
        table_remove(&tc->table, op->m);
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
        op_send_markers(op);
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

static void op_write(struct txn_op *op)
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

/* Mutex held: the id is valid for (pid, epoch), or the Kafka error to answer. */
static int16_t check_producer_locked(const struct txn_meta *m, int64_t pid, int16_t epoch)
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
static struct txn_op *abort_start_locked(struct txn_coordinator *tc, struct txn_meta *m)
{
    struct txn_op *op = op_new(tc, m, OP_PREPARE, NULL, NULL);
    if (op == NULL)
        return NULL;
    op->parts = parts_union(m->parts, m->nparts, NULL, 0, &op->nparts);
    if (op->parts == NULL && m->nparts > 0) {
        free(op);
        return NULL;
    }
    if (op->producer_epoch < INT16_MAX - 1)
        op->producer_epoch++;
    op->state = TXN_PREPARE_ABORT;
    m->busy = true;
    return op;
}

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
    struct txn_meta *m = id ? table_find(&lc->t, id) : NULL;
    if (tomb) {
        if (m) {
            table_remove(&lc->t, m);
            meta_free(m);
        }
        free(id);
        arena_free(&a);
        return;
    }
    if (m == NULL && id != NULL && (m = calloc(1, sizeof(*m))) != NULL) {
        m->id = id;
        id = NULL;
        m->shard = lc->shard;
        table_insert(&lc->t, m);
    }
    free(id);
    if (m != NULL) {
        m->producer_id = v.producer_id;
        m->producer_epoch = v.producer_epoch;
        m->timeout_ms = v.transaction_timeout_ms;
        m->state = v.transaction_status;
        m->start_ms = v.transaction_start_timestamp_ms;
        m->update_ms = v.transaction_last_update_timestamp_ms;
        parts_free(m->parts, m->nparts);
        m->parts = NULL;
        m->nparts = 0;
        for (int32_t i = 0; i < v.transaction_partitions.n; i++) {
            const struct kmsg_transaction_log_value_partitions_schema *ps =
                &v.transaction_partitions.v[i];
            char *topic = strndup(ps->topic.ptr, (size_t)ps->topic.len);
            for (int32_t j = 0; topic && j < ps->partition_ids.n; j++) {
                struct txn_topic_partition add = {topic, ps->partition_ids.v[j]};
                size_t n = 0;
                struct txn_topic_partition *u = parts_union(m->parts, m->nparts, &add, 1, &n);
                if (u) {
                    parts_free(m->parts, m->nparts);
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
            table_insert(&tc->table, m);
            n++;
            bool prepared = m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT;
            struct txn_op *op =
                prepared && ntodo < 64 ? op_new(tc, m, OP_PREPARE, NULL, NULL) : NULL;
            if (op != NULL) {
                op->parts = parts_union(m->parts, m->nparts, NULL, 0, &op->nparts);
                m->busy = true;
                todo[ntodo++] = op;
            }
        }
    }
    pthread_mutex_unlock(&tc->mu);
    log_info("txn", "loaded %zu transactional ids of %s-%d (coordinator epoch %d)", n,
             TXN_STATE_TOPIC, lc->shard, epoch);
    for (size_t i = 0; i < ntodo; i++)
        op_send_markers(todo[i]);
}

static void table_free_all(struct txn_table *t)
{
    for (size_t b = 0; b < TXN_BUCKETS; b++)
        while (t->buckets[b]) {
            struct txn_meta *m = t->buckets[b];
            t->buckets[b] = m->next;
            meta_free(m);
        }
}

/* Mutex held: drops shard's ids (busy ones are orphaned: their op frees them). */
static void shard_unload_locked(struct txn_coordinator *tc, int32_t shard)
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
                    meta_free(m);
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
        shard_unload_locked(tc, shard); /* an older epoch's table, if any */
    pthread_mutex_unlock(&tc->mu);
    if (loaded)
        return 0;
    /* The replay is short (one compacted partition) and runs on the caller's thread. */
    struct load_ctx lc = {.tc = tc, .shard = shard};
    int rc = tc->env.replay(tc->env.ctx, shard, load_record, &lc);
    if (rc != 0) {
        table_free_all(&lc.t);
        return KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    }
    load_install(tc, &lc, epoch);
    table_free_all(&lc.t);
    return 0;
}

void txn_coordinator_resign(struct txn_coordinator *tc, int32_t shard)
{
    if (shard < 0 || shard >= tc->nshards)
        return;
    pthread_mutex_lock(&tc->mu);
    shard_unload_locked(tc, shard);
    pthread_mutex_unlock(&tc->mu);
}

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
        log_warn("txn", "%d coordinator operations still in flight at shutdown",
                 atomic_load(&tc->ops));
}

void txn_coordinator_destroy(struct txn_coordinator *tc)
{
    if (tc == NULL)
        return;
    table_free_all(&tc->table);
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
        answer(in->done, in->arg, err, -1, -1);
        free(in->id);
        free(in);
        return;
    }
    pthread_mutex_lock(&tc->mu);
    struct txn_meta *m = table_find(&tc->table, in->id);
    struct txn_op *op = NULL;
    if (m == NULL && (m = calloc(1, sizeof(*m))) != NULL) {
        m->id = in->id;
        in->id = NULL;
        m->shard = in->shard;
        m->producer_epoch = -1;
        m->state = TXN_EMPTY;
        m->start_ms = -1;
        table_insert(&tc->table, m);
    }
    if (m != NULL && !m->busy && (op = op_new(tc, m, OP_SIMPLE, in->done, in->arg)) != NULL) {
        m->busy = true;
        op->producer_id = pid;
        op->producer_epoch = 0;
        op->timeout_ms = in->timeout_ms;
        op->state = TXN_EMPTY;
        op->start_ms = -1;
        op->res = (struct txn_result){0, pid, 0};
    }
    pthread_mutex_unlock(&tc->mu);
    if (op != NULL)
        op_write(op);
    else
        answer(in->done, in->arg, KAFKA_ERR_CONCURRENT_TRANSACTIONS, -1, -1);
    free(in->id);
    free(in);
}

static void init_new_pid(struct txn_coordinator *tc, const char *id, int32_t shard,
                         int32_t timeout_ms, txn_done_fn done, void *arg)
{
    struct init_new *in = calloc(1, sizeof(*in));
    if (in == NULL || (in->id = strdup(id)) == NULL) {
        free(in);
        answer(done, arg, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
        return;
    }
    *in = (struct init_new){tc, in->id, shard, timeout_ms, done, arg};
    if (tc->env.allocate_pid(tc->env.ctx, init_pid_allocated, in) != 0)
        init_pid_allocated(in, KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS, -1);
}

void txn_init_producer_id(struct txn_coordinator *tc, const char *id, int32_t timeout_ms,
                          int64_t producer_id, int16_t producer_epoch, txn_done_fn done, void *arg)
{
    if (timeout_ms <= 0 || timeout_ms > tc->cfg.max_timeout_ms) {
        answer(done, arg, KAFKA_ERR_INVALID_TRANSACTION_TIMEOUT, -1, -1);
        return;
    }
    int32_t shard;
    int16_t err = shard_ready(tc, id, &shard);
    if (err != 0) {
        answer(done, arg, err, -1, -1);
        return;
    }
    pthread_mutex_lock(&tc->mu);
    struct txn_meta *m = table_find(&tc->table, id);
    struct txn_op *op = NULL;
    bool fencing = false, new_pid = m == NULL;
    if (m == NULL) {
        err = 0;
    } else if (m->busy || m->state == TXN_PREPARE_COMMIT || m->state == TXN_PREPARE_ABORT ||
               m->state == TXN_PREPARE_EPOCH_FENCE) {
        err = KAFKA_ERR_CONCURRENT_TRANSACTIONS;
    } else if (producer_id >= 0 &&
               (producer_id != m->producer_id || producer_epoch != m->producer_epoch)) {
        err = KAFKA_ERR_PRODUCER_FENCED; /* KIP-360: not the current producer */
    } else if (m->state == TXN_ONGOING) {
        /* Kafka's answer: abort the open transaction with a bumped epoch and let the client
         * retry (CONCURRENT_TRANSACTIONS) until it is complete. */
        op = abort_start_locked(tc, m);
        err = op ? KAFKA_ERR_CONCURRENT_TRANSACTIONS : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        fencing = op != NULL;
    } else if (m->producer_epoch >= INT16_MAX - 1) {
        new_pid = true; /* the epoch ran out: a new producer id, epoch 0 */
    } else if ((op = op_new(tc, m, OP_SIMPLE, done, arg)) == NULL) {
        err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        m->busy = true;
        op->producer_epoch = (int16_t)(m->producer_epoch + 1);
        op->timeout_ms = timeout_ms;
        op->state = TXN_EMPTY;
        op->start_ms = -1;
        op->res = (struct txn_result){0, m->producer_id, op->producer_epoch};
    }
    pthread_mutex_unlock(&tc->mu);
    if (fencing) {
        log_info("txn",
                 "%s: aborting the open transaction of producer %" PRId64
                 " (a new producer initialised)",
                 id, m->producer_id);
        answer(done, arg, err, -1, -1);
        op_write(op);
    } else if (op != NULL) {
        op_write(op);
    } else if (err != 0) {
        answer(done, arg, err, -1, -1);
    } else if (new_pid) {
        init_new_pid(tc, id, shard, timeout_ms, done, arg);
    }
}

void txn_add_partitions(struct txn_coordinator *tc, const char *id, int64_t producer_id,
                        int16_t producer_epoch, const struct txn_topic_partition *parts,
                        size_t nparts, txn_done_fn done, void *arg)
{
    int32_t shard;
    int16_t err = shard_ready(tc, id, &shard);
    if (err != 0) {
        answer(done, arg, err, -1, -1);
        return;
    }
    pthread_mutex_lock(&tc->mu);
    struct txn_meta *m = table_find(&tc->table, id);
    err = check_producer_locked(m, producer_id, producer_epoch);
    struct txn_op *op = NULL;
    if (err == 0) {
        size_t n = 0;
        struct txn_topic_partition *u = parts_union(m->parts, m->nparts, parts, nparts, &n);
        if (u == NULL) {
            err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        } else if (n == m->nparts && m->state == TXN_ONGOING) {
            parts_free(u, n); /* nothing new: no record (Kafka answers at once too) */
        } else if ((op = op_new(tc, m, OP_SIMPLE, done, arg)) == NULL) {
            parts_free(u, n);
            err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        } else {
            m->busy = true;
            op->parts = u;
            op->nparts = n;
            op->state = TXN_ONGOING;
            op->start_ms = m->state == TXN_ONGOING ? m->start_ms : clock_wall_ms();
        }
    }
    pthread_mutex_unlock(&tc->mu);
    if (op != NULL)
        op_write(op);
    else
        answer(done, arg, err, producer_id, producer_epoch);
}

void txn_end(struct txn_coordinator *tc, const char *id, int64_t producer_id,
             int16_t producer_epoch, bool commit, txn_done_fn done, void *arg)
{
    int32_t shard;
    int16_t err = shard_ready(tc, id, &shard);
    if (err != 0) {
        answer(done, arg, err, -1, -1);
        return;
    }
    pthread_mutex_lock(&tc->mu);
    struct txn_meta *m = table_find(&tc->table, id);
    err = check_producer_locked(m, producer_id, producer_epoch);
    struct txn_op *op = NULL;
    if (err == 0) {
        if ((m->state == TXN_COMPLETE_COMMIT && commit) ||
            (m->state == TXN_COMPLETE_ABORT && !commit)) {
            err = 0; /* a retry of the EndTxn that completed it */
        } else if (m->state != TXN_ONGOING) {
            err = KAFKA_ERR_INVALID_TXN_STATE;
        } else if ((op = op_new(tc, m, OP_PREPARE, done, arg)) == NULL ||
                   ((op->parts = parts_union(m->parts, m->nparts, NULL, 0, &op->nparts)) == NULL &&
                    m->nparts > 0)) {
            free(op);
            op = NULL;
            err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        } else {
            m->busy = true;
            op->state = commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT;
        }
    }
    pthread_mutex_unlock(&tc->mu);
    if (op != NULL)
        op_write(op);
    else
        answer(done, arg, err, producer_id, producer_epoch);
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
    const struct txn_meta *m = table_find(&tc->table, id);
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
            struct txn_op *op = op_new(tc, m, OP_REMOVE, NULL, NULL);
            if (op == NULL)
                continue;
            m->busy = true;
            todo[n++] = op;
        }
    pthread_mutex_unlock(&tc->mu);
    for (size_t i = 0; i < n; i++) {
        log_info("txn", "%s: transactional id expired (unused for %" PRId64 " ms)", todo[i]->m->id,
                 expiration_ms);
        op_write(todo[i]);
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
            struct txn_op *op = abort_start_locked(tc, m);
            if (op != NULL)
                todo[n++] = op;
        }
    pthread_mutex_unlock(&tc->mu);
    for (size_t i = 0; i < n; i++) {
        log_info("txn", "%s: aborting a transaction open longer than its timeout (%d ms)",
                 todo[i]->m->id, todo[i]->timeout_ms);
        op_write(todo[i]);
    }
    return (int)n;
}
