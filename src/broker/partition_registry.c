/*
 * Partition registry lifecycle: reads the log dir's checkpoints at start, opens the logs of
 * partitions the metadata image assigns to this broker, retires deleted ones, runs the
 * housekeeping thread (retention, purge of *.deleted files, idle segment fds, checkpoints) and
 * on shutdown writes the checkpoints and the clean-shutdown marker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "broker/broker_internal.h"
#include "broker/partition_registry.h"
#include "broker/producer_append.h"
#include "broker/topic_settings.h"
#include "storage/flusher.h"

#define REGISTRY_BUCKETS 4096
#define HOUSEKEEPING_TICK_MS 1000
#define CHECKPOINT_INTERVAL_MS 30000

static void registry_path(struct partition_registry *reg, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", reg->b->cfg.log_dirs, name);
}

static void registry_read_checkpoints(struct partition_registry *reg)
{
    char path[1200];
    registry_path(reg, CHECKPOINT_RECOVERY_POINT, path, sizeof(path));
    if (checkpoint_read_offsets(path, &reg->recovery_points, &reg->n_recovery_points) != 0)
        reg->n_recovery_points = 0;
    registry_path(reg, CHECKPOINT_LOG_START, path, sizeof(path));
    if (checkpoint_read_offsets(path, &reg->log_starts, &reg->n_log_starts) != 0)
        reg->n_log_starts = 0;
    registry_path(reg, CLEAN_SHUTDOWN_MARKER, path, sizeof(path));
    reg->clean_shutdown = access(path, F_OK) == 0;
    if (reg->clean_shutdown && unlink(path) != 0)
        log_warn("partition", "cannot remove %s: %s", path, strerror(errno));
}

/* Collects (topic, partition, value) for every hosted partition; the caller holds the read
 * lock and frees *out (not the names). */
static size_t registry_collect(struct partition_registry *reg, struct checkpoint_entry **out,
                               int64_t (*value)(const struct log *))
{
    struct checkpoint_entry *e = calloc(reg->count + 1, sizeof(*e));
    size_t n = 0;
    for (size_t i = 0; e && i < reg->buckets; i++) {
        for (struct partition_slot *s = reg->by_name[i]; s; s = s->next_name) {
            e[n].topic = s->p->topic;
            e[n].partition = s->p->index;
            e[n].offset = value(s->p->log);
            n++;
        }
    }
    *out = e;
    return n;
}

static int64_t registry_recovery_point(const struct log *l)
{
    return log_recovery_point(l);
}

static int64_t registry_log_start(const struct log *l)
{
    return log_start_offset(l);
}

/* Writes recovery-point and log-start checkpoints. The entries borrow topic names from the
 * partitions, so the registry read lock is held until the files are written. */
static void registry_write_checkpoints(struct partition_registry *reg)
{
    char path[1200];
    struct checkpoint_entry *e;
    pthread_rwlock_rdlock(&reg->lock);
    size_t n = registry_collect(reg, &e, registry_recovery_point);
    registry_path(reg, CHECKPOINT_RECOVERY_POINT, path, sizeof(path));
    if (e && checkpoint_write_offsets(path, e, n) != 0)
        log_warn("partition", "cannot write %s", path);
    free(e);
    n = registry_collect(reg, &e, registry_log_start);
    registry_path(reg, CHECKPOINT_LOG_START, path, sizeof(path));
    if (e && checkpoint_write_offsets(path, e, n) != 0)
        log_warn("partition", "cannot write %s", path);
    free(e);
    pthread_rwlock_unlock(&reg->lock);
}

/* Runs fn on every hosted log (under the read lock; fn must not block for long). */
static void registry_each_log(struct partition_registry *reg, void (*fn)(struct log *, int64_t),
                              int64_t arg)
{
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->buckets; i++)
        for (struct partition_slot *s = reg->by_name[i]; s; s = s->next_name)
            fn(s->p->log, arg);
    pthread_rwlock_unlock(&reg->lock);
}

static void hk_retention(struct log *l, int64_t now)
{
    int n = log_apply_retention(l, now);
    if (n > 0)
        log_info("retention", "%s: deleted %d segment(s), log start now %lld", log_dir_path(l), n,
                 (long long)log_start_offset(l));
}

static void hk_purge(struct log *l, int64_t now)
{
    log_purge_deleted(l, now, false);
}

static void hk_idle(struct log *l, int64_t now_mono)
{
    log_close_idle_segments(l, now_mono);
}

static void *registry_housekeeper(void *arg)
{
    struct partition_registry *reg = arg;
    int64_t next_retention = clock_mono_ms() + 1000;
    int64_t next_checkpoint = clock_mono_ms() + CHECKPOINT_INTERVAL_MS;
    pthread_mutex_lock(&reg->hk_mu);
    while (!reg->hk_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += HOUSEKEEPING_TICK_MS / 1000;
        pthread_cond_timedwait(&reg->hk_cond, &reg->hk_mu, &ts);
        if (reg->hk_stop)
            break;
        pthread_mutex_unlock(&reg->hk_mu);
        int64_t mono = clock_mono_ms();
        if (mono >= next_retention) {
            registry_each_log(reg, hk_retention, clock_wall_ms());
            next_retention = mono + reg->b->cfg.log_retention_check_interval_ms;
        }
        registry_each_log(reg, hk_purge, clock_wall_ms());
        registry_each_log(reg, hk_idle, mono);
        if (mono >= next_checkpoint) {
            registry_write_checkpoints(reg);
            next_checkpoint = mono + CHECKPOINT_INTERVAL_MS;
        }
        pthread_mutex_lock(&reg->hk_mu);
    }
    pthread_mutex_unlock(&reg->hk_mu);
    return NULL;
}

int partition_registry_open(struct broker *b, struct partition_registry **out, char *err,
                            size_t errlen)
{
    struct partition_registry *reg = calloc(1, sizeof(*reg));
    if (reg == NULL)
        return -ENOMEM;
    reg->b = b;
    reg->buckets = REGISTRY_BUCKETS;
    reg->by_name = calloc(reg->buckets, sizeof(*reg->by_name));
    reg->by_id = calloc(reg->buckets, sizeof(*reg->by_id));
    pthread_rwlock_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->hk_mu, NULL);
    pthread_cond_init(&reg->hk_cond, NULL);
    int rc = reg->by_name && reg->by_id ? log_flusher_create(&reg->flusher) : -ENOMEM;
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the log flusher: %s", strerror(-rc));
        partition_registry_close(reg);
        return rc;
    }
    registry_read_checkpoints(reg);
    if (pthread_create(&reg->housekeeper, NULL, registry_housekeeper, reg) != 0) {
        snprintf(err, errlen, "cannot start the housekeeping thread");
        partition_registry_close(reg);
        return -EAGAIN;
    }
    reg->hk_started = true;
    *out = reg;
    return 0;
}


static void registry_start_offset_changed(struct log *log, void *arg)
{
    /* Persisted by the next checkpoint round (and at shutdown); DeleteRecords also forces one. */
    (void)log;
    (void)arg;
}

static void partition_apply_settings(struct partition *p, const struct broker_config *cfg,
                                     const struct metadata_topic *t, bool reconfigure)
{
    struct topic_settings ts;
    topic_settings_resolve(cfg, t, &ts);
    atomic_store(&p->log_append_time, ts.log_append_time);
    atomic_store(&p->max_message_bytes, ts.log.max_message_bytes);
    atomic_store(&p->min_insync_replicas, ts.min_insync_replicas);
    if (reconfigure)
        log_set_config(p->log, &ts.log);
}

static struct partition *registry_open_partition(struct partition_registry *reg,
                                                 const struct metadata_topic *t,
                                                 const struct metadata_partition *mp)
{
    struct broker *b = reg->b;
    struct partition *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->topic = strdup(t->name)) == NULL) {
        free(p);
        return NULL;
    }
    atomic_init(&p->refs, 1);
    p->reg = reg;
    p->index = mp->partition;
    memcpy(p->topic_id, t->id, METADATA_UUID_LEN);
    atomic_init(&p->leader_epoch, mp->leader_epoch);
    atomic_init(&p->isr_size, (int)mp->n_isr);
    pthread_mutex_init(&p->wait_mu, NULL);
    struct topic_settings ts;
    topic_settings_resolve(&b->cfg, t, &ts);
    struct log_open_state st = {
        .recovery_point = checkpoint_find(reg->recovery_points, reg->n_recovery_points, t->name,
                                          mp->partition, 0),
        .log_start_offset =
            checkpoint_find(reg->log_starts, reg->n_log_starts, t->name, mp->partition, -1),
        .high_watermark = 0,
        .clean_shutdown = reg->clean_shutdown,
    };
    int rc = log_open(b->cfg.log_dirs, t->name, mp->partition, &ts.log, &st, &p->log);
    if (rc != 0) {
        log_error("partition", "cannot open log %s-%d: %d", t->name, mp->partition, rc);
        pthread_mutex_destroy(&p->wait_mu);
        free(p->topic);
        free(p);
        return NULL;
    }
    if (producer_partition_open(p, b->cfg.producer_id_expiration_ms) != 0) {
        log_close(p->log);
        pthread_mutex_destroy(&p->wait_mu);
        free(p->topic);
        free(p);
        return NULL;
    }
    /* A single-replica partition's high watermark is its log end. */
    log_set_high_watermark(p->log, log_end_offset(p->log));
    log_set_start_offset_hook(p->log, registry_start_offset_changed, reg);
    partition_apply_settings(p, &b->cfg, t, false);
    log_flusher_add(reg->flusher, p->log);
    return p;
}

static bool registry_hosts(int32_t node, const struct metadata_partition *mp)
{
    for (uint32_t i = 0; i < mp->n_replicas; i++)
        if (mp->replicas[i] == node)
            return true;
    return false;
}

/* Opens partitions of t assigned to this node that are not open yet; updates the others. */
static void registry_sync_topic(struct partition_registry *reg, const struct metadata_topic *t,
                                bool changed)
{
    int32_t node = reg->b->cfg.node_id;
    for (uint32_t i = 0; i < t->n_partitions; i++) {
        const struct metadata_partition *mp = &t->partitions[i];
        if (!registry_hosts(node, mp))
            continue;
        struct partition *p = partition_get_by_id(reg, t->id, mp->partition);
        if (p != NULL) {
            if (changed) {
                atomic_store(&p->leader_epoch, mp->leader_epoch);
                atomic_store(&p->isr_size, (int)mp->n_isr);
                partition_apply_settings(p, &reg->b->cfg, t, true);
            }
            partition_put(p);
            continue;
        }
        p = registry_open_partition(reg, t, mp);
        if (p != NULL && registry_table_insert(reg, p) != 0)
            partition_put(p);
    }
}

static void registry_retire_topic(struct partition_registry *reg, const struct metadata_topic *t)
{
    for (uint32_t i = 0; i < t->n_partitions; i++) {
        struct partition *p = registry_table_remove(reg, t->id, t->partitions[i].partition);
        if (p == NULL)
            continue;
        atomic_store(&p->deleted, true);
        log_info("partition", "topic %s partition %d deleted", p->topic, p->index);
        partition_notify_waiters(p);
        partition_put(p);
    }
}

void partition_registry_on_image(void *arg, const struct metadata_image *prev,
                                 const struct metadata_image *next)
{
    struct partition_registry *reg = arg;
    for (size_t i = 0; i < next->n_topics; i++) {
        const struct metadata_topic *t = next->topics_by_name[i];
        const struct metadata_topic *old = prev ? metadata_image_topic_by_id(prev, t->id) : NULL;
        if (old != t)
            registry_sync_topic(reg, t, old != NULL);
    }
    for (size_t i = 0; prev && i < prev->n_topics; i++) {
        const struct metadata_topic *t = prev->topics_by_name[i];
        if (metadata_image_topic_by_id(next, t->id) == NULL)
            registry_retire_topic(reg, t);
    }
}

static void registry_stop_housekeeper(struct partition_registry *reg)
{
    if (!reg->hk_started)
        return;
    pthread_mutex_lock(&reg->hk_mu);
    reg->hk_stop = true;
    pthread_cond_signal(&reg->hk_cond);
    pthread_mutex_unlock(&reg->hk_mu);
    pthread_join(reg->housekeeper, NULL);
    reg->hk_started = false;
}

void partition_registry_close(struct partition_registry *reg)
{
    if (reg == NULL)
        return;
    registry_stop_housekeeper(reg);
    bool all_flushed = true;
    for (size_t i = 0; reg->by_name && i < reg->buckets; i++)
        for (struct partition_slot *s = reg->by_name[i]; s; s = s->next_name)
            all_flushed &= log_flush(s->p->log, NULL) == 0;
    if (reg->by_name)
        registry_write_checkpoints(reg);
    for (size_t i = 0; reg->by_name && i < reg->buckets; i++) {
        struct partition_slot *s = reg->by_name[i];
        while (s) {
            struct partition_slot *next = s->next_name;
            partition_put(s->p);
            free(s);
            s = next;
        }
    }
    if (reg->flusher)
        log_flusher_destroy(reg->flusher);
    if (reg->by_name && all_flushed) {
        char path[1200];
        registry_path(reg, CLEAN_SHUTDOWN_MARKER, path, sizeof(path));
        FILE *f = fopen(path, "w");
        if (f)
            fclose(f);
    }
    checkpoint_free_offsets(reg->recovery_points, reg->n_recovery_points);
    checkpoint_free_offsets(reg->log_starts, reg->n_log_starts);
    free(reg->by_name);
    free(reg->by_id);
    pthread_rwlock_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->hk_mu);
    pthread_cond_destroy(&reg->hk_cond);
    free(reg);
}
