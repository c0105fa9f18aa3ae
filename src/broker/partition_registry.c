/*
 * Partition registry lifecycle: at start the log manager recovers every partition directory
 * (in parallel, num.recovery.threads.per.data.dir); the metadata image then decides which logs
 * are hosted partitions; deleted topics are retired. The log cleaner thread applies retention
 * and compaction, the flusher makes acks=all appends durable, a small housekeeping thread
 * writes the offset checkpoints periodically; on shutdown the log manager writes them and the
 * clean-shutdown marker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/groups.h"
#include "broker/transactions.h"
#include "txn/state_record.h"
#include "broker/partition_append.h"
#include "broker/partition_registry.h"
#include "broker/cleaner_settings.h"
#include "broker/producer_append.h"
#include "broker/replica_fetcher.h"
#include "broker/stray_logs.h"
#include "broker/topic_settings.h"
#include "group/offsets_log.h"
#include "storage/cleaner.h"
#include "storage/compactor.h"
#include "storage/flusher.h"
#include "storage/log_manager.h"
#include "storage/page_cache_budget.h"
#include "storage/partition_metadata.h"

#define REGISTRY_BUCKETS 4096
#define CHECKPOINT_INTERVAL_MS 30000

/* Writes the log dir's offset checkpoints every CHECKPOINT_INTERVAL_MS (Kafka's
 * log.flush.offset.checkpoint.interval.ms); retention and compaction run on the log cleaner. */
static void *registry_housekeeper(void *arg)
{
    struct partition_registry *reg = arg;
    pthread_mutex_lock(&reg->hk_mu);
    while (!reg->hk_stop) {
        struct timespec ts = clock_mono_deadline(CHECKPOINT_INTERVAL_MS);
        pthread_cond_timedwait(&reg->hk_cond, &reg->hk_mu, &ts);
        if (reg->hk_stop)
            break;
        pthread_mutex_unlock(&reg->hk_mu);
        if (log_manager_checkpoint(reg->logs) != 0)
            logger_warn("partition", "cannot write the offset checkpoints in %s",
                        reg->b->cfg.log_dirs);
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
    int rc = clock_cond_init_mono(&reg->hk_cond); /* the housekeeper's monotonic deadlines */
    if (rc != 0) {
        snprintf(err, errlen, "cannot create a condition variable: %s", strerror(rc));
        free(reg->by_name);
        free(reg->by_id);
        free(reg);
        return -rc;
    }
    pthread_rwlock_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->hk_mu, NULL);
    rc = reg->by_name && reg->by_id ? log_flusher_create(&reg->flusher) : -ENOMEM;
    if (rc == 0 && b->cfg.log_page_cache_max_bytes >= 0)
        rc = log_flusher_limit_page_cache(reg->flusher, b->cfg.log_page_cache_max_bytes);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the log flusher: %s", strerror(-rc));
        partition_registry_close(reg);
        return rc;
    }
    struct log_cleaner_config cc = log_cleaner_config_defaults();
    cc.check_interval_ms = b->cfg.log_retention_check_interval_ms;
    cc.compact = b->cfg.log_cleaner_enable ? cleaner_settings_compact : NULL;
    cc.tuning = cleaner_settings_static(&b->cfg);
    rc = log_cleaner_create(&cc, &reg->cleaner);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the log cleaner: %s", strerror(-rc));
        partition_registry_close(reg);
        return rc;
    }
    /* Every partition directory is recovered now, in parallel; the metadata image then says
     * which of them are hosted partitions. */
    struct topic_settings dflt;
    topic_settings_resolve(&b->cfg, NULL, NULL, &dflt);
    rc = log_manager_open(b->cfg.log_dirs, &dflt.log, b->cfg.num_recovery_threads_per_data_dir,
                          &reg->logs);
    if (rc != 0) {
        snprintf(err, errlen, "log.dirs '%s': cannot open the partition logs: %s", b->cfg.log_dirs,
                 strerror(rc < 0 && rc > -4096 ? -rc : EIO));
        partition_registry_close(reg);
        return rc;
    }
    if (pthread_create(&reg->housekeeper, NULL, registry_housekeeper, reg) != 0) {
        snprintf(err, errlen, "cannot start the housekeeping thread");
        partition_registry_close(reg);
        return -EAGAIN;
    }
    reg->hk_started = true;
    *out = reg;
    return 0;
}

static void partition_apply_settings(struct partition *p, const struct broker_config *cfg,
                                     const struct metadata_image *img,
                                     const struct metadata_topic *t, bool reconfigure)
{
    struct topic_settings ts;
    topic_settings_resolve(cfg, img, t, &ts);
    atomic_store(&p->log_append_time, ts.log_append_time);
    atomic_store(&p->max_message_bytes, ts.log.max_message_bytes);
    atomic_store(&p->min_insync_replicas, ts.min_insync_replicas);
    atomic_store(&p->compression_codec, ts.compression_codec);
    atomic_store(&p->compact, ts.log.compact);
    atomic_store(&p->ts_before_max_ms, ts.ts_before_max_ms);
    atomic_store(&p->ts_after_max_ms, ts.ts_after_max_ms);
    if (reconfigure)
        log_set_config(p->log, &ts.log);
}

/* Writes the partition.metadata naming t's id where it is missing (a log created now, or by a
 * Gregor before the file existed) or names another topic (set aside just before). */
static void registry_record_topic_id(struct log *log, const struct metadata_topic *t)
{
    uint8_t id[PARTITION_METADATA_ID_LEN];
    if (partition_metadata_read(log_dir_path(log), id) == 0 &&
        memcmp(id, t->id, PARTITION_METADATA_ID_LEN) == 0)
        return;
    int rc = partition_metadata_write(log_dir_path(log), t->id);
    if (rc != 0)
        logger_warn("partition", "%s-%d: cannot write %s: %s", t->name, log_partition(log),
                    PARTITION_METADATA_FILE, strerror(-rc));
}

static struct partition *registry_open_partition(struct partition_registry *reg,
                                                 const struct metadata_image *img,
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
    replica_set_init(&p->rs, b->cfg.node_id);
    pthread_mutex_init(&p->follow_mu, NULL);
    p->index = mp->partition;
    memcpy(p->topic_id, t->id, METADATA_UUID_LEN);
    atomic_init(&p->leader_epoch, mp->leader_epoch);
    atomic_init(&p->leader, mp->leader);
    atomic_init(&p->isr_size, (int)mp->n_isr);
    waiter_list_init(&p->waiters);
    struct topic_settings ts;
    topic_settings_resolve(&b->cfg, img, t, &ts);
    struct log *old = log_manager_get(reg->logs, t->name, mp->partition);
    if (old != NULL && stray_log_is_other_topic(old, t))
        stray_log_set_aside(reg, t->name, mp->partition,
                            "it belongs to an older topic of the same name");
    int rc = log_manager_create(reg->logs, t->name, mp->partition, &ts.log, &p->log);
    if (rc != 0) {
        logger_error("partition", "cannot open log %s-%d: %d", t->name, mp->partition, rc);
        replica_set_destroy(&p->rs);
        pthread_mutex_destroy(&p->follow_mu);
        waiter_list_destroy(&p->waiters);
        free(p->topic);
        free(p);
        return NULL;
    }
    log_set_config(p->log, &ts.log); /* opened at start with the defaults */
    registry_record_topic_id(p->log, t);
    if (producer_partition_open(p, b->cfg.producer_id_expiration_ms) != 0) {
        log_close(log_manager_remove(reg->logs, t->name, mp->partition));
        replica_set_destroy(&p->rs);
        pthread_mutex_destroy(&p->follow_mu);
        waiter_list_destroy(&p->waiters);
        free(p->topic);
        free(p);
        return NULL;
    }
    partition_apply_settings(p, &b->cfg, img, t, false);
    /* The high watermark from replication-offset-checkpoint moves on by the replica set's rule
     * (a single replica: to the log end at once). */
    replica_set_on_image(p, mp, atomic_load(&p->min_insync_replicas), clock_mono_ms());
    log_flusher_add(reg->flusher, p->log);
    log_cleaner_add(reg->cleaner, p->log);
    return p;
}

/*
 * Takes partition `index` of topic `id` out of service for good (its topic was deleted, or this
 * node is no longer one of its replicas): out of the table, the log manager, the flusher and
 * the cleaner; marked deleted under follow_mu, so no append, truncation or follower write
 * touches its log afterwards; its directory renamed "...-delete" at once, so that a partition
 * of the same name created later starts empty (Kafka does the same). The directory itself is
 * removed with the last reference (partition.c), once fetches reading it are done.
 */
static void registry_retire_partition(struct partition_registry *reg, const uint8_t *id,
                                      int32_t index, const char *why)
{
    struct partition *p = registry_table_remove(reg, id, index);
    if (p == NULL)
        return;
    log_flusher_remove(reg->flusher, p->log);
    log_cleaner_remove(reg->cleaner, p->log);
    struct page_cache_budget *budget = log_flusher_page_cache_budget(reg->flusher);
    if (budget != NULL) /* its cached data goes with the directory */
        page_cache_budget_forget_dir(budget, log_dir_path(p->log));
    pthread_mutex_lock(&p->follow_mu);
    atomic_store(&p->deleted, true);
    p->trash = log_retire_dir(p->log);
    pthread_mutex_unlock(&p->follow_mu);
    log_manager_remove(reg->logs, p->topic, p->index); /* the partition discards it */
    logger_info("partition", "%s-%d: %s; its log will be deleted", p->topic, p->index, why);
    partition_notify_waiters(p);
    partition_put(p);
}

static bool registry_hosts(int32_t node, const struct metadata_partition *mp)
{
    for (uint32_t i = 0; i < mp->n_replicas; i++)
        if (mp->replicas[i] == node)
            return true;
    return false;
}

/* Opens partitions of t assigned to this node that are not open yet; updates the others. */
static void registry_sync_topic(struct partition_registry *reg, const struct metadata_image *img,
                                const struct metadata_topic *t, bool changed)
{
    int32_t node = reg->b->cfg.node_id;
    for (uint32_t i = 0; i < t->n_partitions; i++) {
        const struct metadata_partition *mp = &t->partitions[i];
        if (!registry_hosts(node, mp)) {
            /* Reassigned away (KIP-455 completed or cancelled): the replica goes. */
            if (changed)
                registry_retire_partition(reg, t->id, mp->partition, "no longer a replica here");
            continue;
        }
        struct partition *p = partition_get_by_id(reg, t->id, mp->partition);
        if (p != NULL) {
            if (changed) {
                partition_apply_settings(p, &reg->b->cfg, img, t, true);
                /* Under follow_mu: no follower append or truncation across the change, and the
                 * replica set stops acting as leader before a fetcher may truncate. */
                pthread_mutex_lock(&p->follow_mu);
                int32_t was = atomic_exchange(&p->leader, mp->leader);
                if (was != mp->leader)
                    logger_info("partition", "%s-%d: leader %d -> %d (epoch %d)", t->name,
                                mp->partition, was, mp->leader, mp->leader_epoch);
                int32_t was_epoch = atomic_exchange(&p->leader_epoch, mp->leader_epoch);
                replica_set_on_image(p, mp, atomic_load(&p->min_insync_replicas), clock_mono_ms());
                pthread_mutex_unlock(&p->follow_mu);
                if (was != mp->leader)
                    partition_notify_waiters(p); /* parked fetches answer; clients move on */
                if (was_epoch != mp->leader_epoch && strcmp(t->name, OFFSETS_TOPIC) == 0)
                    groups_on_leader_change(reg->b, mp->partition, was == node, mp->leader == node);
                if (was_epoch != mp->leader_epoch && strcmp(t->name, TXN_STATE_TOPIC) == 0)
                    txn_on_leader_change(reg->b, mp->partition, was == node, mp->leader == node);
            }
            partition_put(p);
            continue;
        }
        p = registry_open_partition(reg, img, t, mp);
        if (p != NULL && registry_table_insert(reg, p) != 0) {
            partition_put(p);
            p = NULL;
        }
        if (p != NULL && mp->leader == node && strcmp(t->name, TXN_STATE_TOPIC) == 0)
            txn_on_leader_change(reg->b, mp->partition, false, true);
    }
}

static void registry_retire_topic(struct partition_registry *reg, const struct metadata_topic *t)
{
    for (uint32_t i = 0; i < t->n_partitions; i++)
        registry_retire_partition(reg, t->id, t->partitions[i].partition, "topic deleted");
}

void partition_registry_on_image(void *arg, const struct metadata_image *prev,
                                 const struct metadata_image *next)
{
    struct partition_registry *reg = arg;
    /* Dynamic broker configs changed: every topic's effective settings may have. */
    bool all = prev && !metadata_image_broker_configs_equal(prev, next);
    for (size_t i = 0; i < next->n_topics; i++) {
        const struct metadata_topic *t = next->topics_by_name[i];
        const struct metadata_topic *old = prev ? metadata_image_topic_by_id(prev, t->id) : NULL;
        if (old != t || (all && old != NULL))
            registry_sync_topic(reg, next, t, old != NULL);
    }
    for (size_t i = 0; prev && i < prev->n_topics; i++) {
        const struct metadata_topic *t = prev->topics_by_name[i];
        if (metadata_image_topic_by_id(next, t->id) == NULL)
            registry_retire_topic(reg, t);
    }
    replica_fetchers_on_image(reg->b);
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
    for (size_t i = 0; reg->by_name && i < reg->buckets; i++) {
        struct partition_slot *s = reg->by_name[i];
        while (s) {
            struct partition_slot *next = s->next_name;
            partition_put(s->p);
            free(s);
            s = next;
        }
    }
    if (reg->cleaner)
        log_cleaner_destroy(reg->cleaner);
    if (reg->flusher)
        log_flusher_destroy(reg->flusher);
    /* Flushes and closes every log, writes the checkpoints and the clean-shutdown marker. */
    log_manager_close(reg->logs);
    free(reg->by_name);
    free(reg->by_id);
    pthread_rwlock_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->hk_mu);
    pthread_cond_destroy(&reg->hk_cond);
    free(reg);
}
