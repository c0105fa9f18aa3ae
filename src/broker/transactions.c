/*
 * Glue between the broker and the transaction coordinator (src/txn/coordinator.h): the env it
 * runs on, __transaction_state creation, leadership changes, and the timeout sweep (a worker
 * timer every transaction.abort.timed.out.transaction.cleanup.interval.ms).
 */
#include "broker/transactions.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/commit_wait.h"
#include "broker/forwarder.h"
#include "broker/partition.h"
#include "broker/partition_append.h"
#include "broker/write_txn_markers.h"
#include "group/offsets_log.h"
#include "proto/gen/errors.h"
#include "record/record_iter.h"
#include "txn/coordinator.h"
#include "txn/state_record.h"

struct broker_txn {
    struct txn_coordinator *tc;
    atomic_bool creating; /* a create of __transaction_state is in flight */
    struct net_timer sweep;
    struct net_worker *sweep_worker;
};

/* ---- env ---- */

static int32_t topic_partition_count(struct broker *b, const char *name)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, name);
    int32_t n = t ? (int32_t)t->n_partitions : 0;
    metadata_image_release(img);
    return n;
}

static int32_t env_partition_count(void *ctx)
{
    return topic_partition_count(ctx, TXN_STATE_TOPIC);
}

static int32_t env_offsets_partition_count(void *ctx)
{
    return topic_partition_count(ctx, OFFSETS_TOPIC);
}

static bool env_is_leader(void *ctx, int32_t shard, int32_t *epoch)
{
    struct broker *b = ctx;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, TXN_STATE_TOPIC);
    bool ok = t && shard >= 0 && (uint32_t)shard < t->n_partitions &&
              t->partitions[shard].leader == b->cfg.node_id;
    if (ok)
        *epoch = t->partitions[shard].leader_epoch;
    metadata_image_release(img);
    if (ok) { /* the partition must be open here too */
        struct partition *p = partition_get(b->parts, TXN_STATE_TOPIC, shard);
        ok = p != NULL;
        partition_put(p);
    }
    return ok;
}

static bool env_partition_exists(void *ctx, const char *topic, int32_t partition)
{
    struct broker *b = ctx;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, topic);
    bool ok = t && partition >= 0 && (uint32_t)partition < t->n_partitions;
    metadata_image_release(img);
    return ok;
}

struct append_wait {
    struct partition *p;
    void (*cb)(void *arg, int err);
    void *arg;
};

static void append_committed(void *arg, int err)
{
    struct append_wait *w = arg;
    partition_put(w->p);
    w->cb(w->arg, err);
    free(w);
}

static int env_append(void *ctx, int32_t shard, uint8_t *batch, size_t len,
                      void (*cb)(void *arg, int err), void *arg)
{
    struct broker *b = ctx;
    struct partition *p = partition_get(b->parts, TXN_STATE_TOPIC, shard);
    if (p == NULL)
        return -ENOENT;
    struct partition_append_result ar;
    int rc = partition_append_batch(p, batch, len, false, clock_wall_ms(), NULL, &ar);
    if (rc == 0 && ar.kafka_error != 0)
        rc = -ENOENT; /* not the leader any more: NOT_COORDINATOR */
    struct append_wait *w = rc == 0 ? malloc(sizeof(*w)) : NULL;
    if (w == NULL) {
        partition_put(p);
        return rc != 0 ? rc : -ENOMEM;
    }
    *w = (struct append_wait){p, cb, arg};
    if (partition_wait_committed_async(p, ar.info.last_offset + 1, append_committed, w) != 0) {
        partition_put(p);
        free(w);
        return -ENOMEM;
    }
    return 0;
}

/* Calls fn for every record of the batches in buf[0..len). */
static void replay_batches(const uint8_t *buf, size_t len,
                           void (*fn)(void *, const uint8_t *, int32_t, const uint8_t *, int32_t),
                           void *arg)
{
    size_t off = 0;
    while (off + RECORD_BATCH_HEADER_SIZE <= len) {
        struct record_batch_header h;
        if (record_batch_header_parse(buf + off, len - off, &h) != 0 ||
            off + record_batch_size(&h) > len)
            break;
        struct record_iter it;
        if (!(h.attributes & RECORD_ATTR_CONTROL) &&
            record_iter_init(&it, buf + off, record_batch_size(&h), (size_t)64 << 20) == 0) {
            struct record rec;
            while (record_iter_next(&it, &rec) == 1)
                fn(arg, rec.key, rec.key_len, rec.value, rec.value_len);
            record_iter_release(&it);
        }
        off += record_batch_size(&h);
    }
}

static int env_replay(void *ctx, int32_t shard,
                      void (*fn)(void *, const uint8_t *, int32_t, const uint8_t *, int32_t),
                      void *arg)
{
    struct broker *b = ctx;
    struct partition *p = partition_get(b->parts, TXN_STATE_TOPIC, shard);
    if (p == NULL)
        return -ENOENT;
    int rc = 0;
    int64_t off = log_start_offset(p->log), end = log_end_offset(p->log);
    uint8_t *buf = NULL;
    while (rc == 0 && off < end) {
        struct log_read_result res;
        rc = log_read(p->log, off, 1 << 20, end, true, &res);
        if (rc != 0 || res.range.length == 0) {
            log_read_release(&res);
            break;
        }
        size_t len = (size_t)res.range.length;
        uint8_t *nb = realloc(buf, len);
        size_t got = 0;
        while (nb && got < len) {
            ssize_t n = pread(res.range.fd, nb + got, len - got, res.range.position + (off_t)got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        int64_t next = res.next_offset;
        log_read_release(&res);
        if (nb == NULL || got != len) {
            free(nb ? nb : buf);
            return -EIO;
        }
        buf = nb;
        replay_batches(buf, len, fn, arg);
        if (next <= off)
            break;
        off = next;
    }
    free(buf);
    partition_put(p);
    return rc;
}

static int env_allocate_pid(void *ctx, void (*cb)(void *arg, int16_t err, int64_t pid), void *arg)
{
    return broker_producer_id_next(ctx, cb, arg);
}

static int env_write_markers(void *ctx, const struct txn_marker_job *job,
                             void (*cb)(void *arg, int16_t err), void *arg)
{
    return txn_markers_send(ctx, job, cb, arg);
}

/* ---- lifecycle ---- */

static void sweep_fire(struct net_timer *t)
{
    struct broker *b = t->arg;
    struct broker_txn *x = b->txn;
    if (atomic_load(&b->stopping))
        return;
    txn_coordinator_expire(x->tc, clock_wall_ms());
    txn_coordinator_expire_ids(x->tc, clock_wall_ms(), b->cfg.transactional_id_expiration_ms);
    net_timer_start(x->sweep_worker, &x->sweep, b->cfg.transaction_abort_cleanup_interval_ms,
                    sweep_fire, b);
}

static void sweep_arm(void *arg)
{
    struct broker *b = arg;
    net_timer_start(b->txn->sweep_worker, &b->txn->sweep,
                    b->cfg.transaction_abort_cleanup_interval_ms, sweep_fire, b);
}

int txn_start(struct broker *b)
{
    struct broker_txn *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return -ENOMEM;
    struct txn_config cfg = {
        .max_timeout_ms = b->cfg.transaction_max_timeout_ms,
        .max_shards = b->cfg.transaction_state_log_num_partitions > 1000
                          ? b->cfg.transaction_state_log_num_partitions
                          : 1000,
    };
    struct txn_env env = {
        .ctx = b,
        .partition_count = env_partition_count,
        .offsets_partition_count = env_offsets_partition_count,
        .is_leader = env_is_leader,
        .partition_exists = env_partition_exists,
        .append = env_append,
        .replay = env_replay,
        .allocate_pid = env_allocate_pid,
        .write_markers = env_write_markers,
    };
    x->tc = txn_coordinator_create(&cfg, &env);
    if (x->tc == NULL) {
        free(x);
        return -ENOMEM;
    }
    __atomic_store_n(&b->txn, x, __ATOMIC_RELEASE); /* the image listener reads it */
    if (b->net != NULL && net_server_worker_count(b->net) > 0) {
        x->sweep_worker = net_server_worker(b->net, 0);
        if (net_worker_post(x->sweep_worker, sweep_arm, b) != 0)
            logger_warn("txn", "cannot arm the transaction timeout sweep");
    }
    /* Shards this broker already leads (a restart) load now: their open transactions time
     * out and their prepared ones complete without waiting for a client. */
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, TXN_STATE_TOPIC);
    for (uint32_t i = 0; t && i < t->n_partitions; i++)
        if (t->partitions[i].leader == b->cfg.node_id)
            txn_on_leader_change(b, (int32_t)i, false, true);
    metadata_image_release(img);
    return 0;
}

void txn_shutdown(struct broker *b)
{
    if (b->txn != NULL)
        txn_coordinator_shutdown(b->txn->tc);
}

void txn_stop(struct broker *b)
{
    if (b->txn == NULL)
        return;
    txn_coordinator_destroy(b->txn->tc);
    free(b->txn);
    b->txn = NULL;
}

struct txn_coordinator *txn_coordinator_of(struct broker *b)
{
    struct broker_txn *x = __atomic_load_n(&b->txn, __ATOMIC_ACQUIRE);
    return x ? x->tc : NULL;
}

void txn_prepare_shard(struct broker *b, int32_t shard)
{
    struct txn_coordinator *tc = txn_coordinator_of(b);
    if (tc != NULL)
        txn_coordinator_prepare(tc, shard);
}

struct shard_load {
    struct broker *b;
    int32_t shard;
};

/* A worker: load a shard this broker now leads (its open transactions time out, its
 * prepared ones complete, as on Kafka's onElection). Lazily on first use if it cannot yet. */
static void shard_load_on_worker(void *arg)
{
    struct shard_load *sl = arg;
    struct txn_coordinator *tc = txn_coordinator_of(sl->b);
    if (tc != NULL && !atomic_load(&sl->b->stopping))
        txn_coordinator_prepare(tc, sl->shard);
    free(sl);
}

void txn_on_leader_change(struct broker *b, int32_t partition, bool was_leader, bool is_leader)
{
    struct txn_coordinator *tc = txn_coordinator_of(b);
    if (tc == NULL)
        return;
    if (was_leader)
        txn_coordinator_resign(tc, partition);
    struct shard_load *sl = is_leader && b->net ? malloc(sizeof(*sl)) : NULL;
    if (sl == NULL)
        return;
    *sl = (struct shard_load){b, partition};
    int n = net_server_worker_count(b->net);
    struct net_worker *w = n > 0 ? net_server_worker(b->net, partition % n) : NULL;
    if (w == NULL || net_worker_post(w, shard_load_on_worker, sl) != 0)
        free(sl);
}

static void state_topic_created(void *arg, const struct controller_result *res)
{
    struct broker *b = arg;
    int16_t err = res->error_code;
    if (err == 0 && res->n_topics > 0)
        err = res->topics[0].error_code;
    if (err != 0 && err != KAFKA_ERR_TOPIC_ALREADY_EXISTS)
        logger_warn("txn", "cannot create %s: error %d", TXN_STATE_TOPIC, err);
    else if (err == 0)
        logger_info("txn", "created %s", TXN_STATE_TOPIC);
    atomic_store(&b->txn->creating, false);
}

void txn_state_topic_ensure(struct broker *b, const struct metadata_image *img)
{
    if (b->txn == NULL || metadata_image_topic_by_name(img, TXN_STATE_TOPIC) != NULL ||
        atomic_exchange(&b->txn->creating, true))
        return;
    int16_t rf = b->cfg.transaction_state_log_replication_factor;
    int16_t live = (int16_t)metadata_image_usable_brokers(img);
    live = live > 0 ? live : 1;
    if (rf > live) {
        logger_warn("txn",
                    "transaction.state.log.replication.factor=%d but only %d brokers are alive: "
                    "creating %s with replication factor %d",
                    rf, live, TXN_STATE_TOPIC, live);
        rf = live;
    }
    int32_t min_isr = b->cfg.transaction_state_log_min_isr;
    min_isr = min_isr > rf ? rf : min_isr;
    char segment_bytes[32], min_isr_s[16];
    snprintf(segment_bytes, sizeof(segment_bytes), "%d",
             b->cfg.transaction_state_log_segment_bytes);
    snprintf(min_isr_s, sizeof(min_isr_s), "%d", min_isr);
    struct metadata_config_entry configs[] = {
        {"cleanup.policy", "compact"},
        {"compression.type", "producer"},
        {"min.insync.replicas", min_isr_s},
        {"segment.bytes", segment_bytes},
    };
    struct controller_new_topic nt = {
        .name = TXN_STATE_TOPIC,
        .num_partitions = b->cfg.transaction_state_log_num_partitions,
        .replication_factor = rf,
        .n_configs = 4,
        .configs = configs,
    };
    if (broker_create_topics(b, &nt, 1, false, state_topic_created, b) != 0)
        atomic_store(&b->txn->creating, false);
}
