/* Internal layout of the partition registry (partition.c, partition_registry.c only). */
#ifndef GREGOR_BROKER_PARTITION_REGISTRY_H
#define GREGOR_BROKER_PARTITION_REGISTRY_H

#include <pthread.h>
#include <stddef.h>

#include "broker/partition.h"
#include "storage/checkpoint.h"

struct partition_slot {
    struct partition *p;
    struct partition_slot *next_name; /* chain in by_name */
    struct partition_slot *next_id;   /* chain in by_id */
};

struct partition_registry {
    struct broker *b;
    pthread_rwlock_t lock; /* guards the tables and count */
    size_t buckets;        /* power of two */
    struct partition_slot **by_name;
    struct partition_slot **by_id;
    size_t count;
    struct log_flusher *flusher;
    struct log_cleaner *cleaner;
    struct log_manager *logs;
    /* Housekeeping thread: periodic offset checkpoints. */
    pthread_t housekeeper;
    pthread_mutex_t hk_mu;
    pthread_cond_t hk_cond;
    bool hk_stop;
    bool hk_started;
};

static inline uint64_t partition_slot_hash_name(const char *topic, int32_t index)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *s = topic; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return (h ^ (uint32_t)index) * 1099511628211ULL;
}

static inline uint64_t partition_slot_hash_id(const uint8_t *id, int32_t index)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < METADATA_UUID_LEN; i++)
        h = (h ^ id[i]) * 1099511628211ULL;
    return (h ^ (uint32_t)index) * 1099511628211ULL;
}

/* Table changes; the table takes over the caller's reference on insert and hands it back on
 * remove (NULL if absent). Controller thread or start/stop. */
int registry_table_insert(struct partition_registry *reg, struct partition *p);
struct partition *registry_table_remove(struct partition_registry *reg, const uint8_t *topic_id,
                                        int32_t index);

#endif
