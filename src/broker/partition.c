/*
 * Partition registry. Invariants: a partition is in the hash table iff it is hosted and not
 * deleted; the table holds one reference on each; the table is modified only under the write
 * lock (controller thread, start, stop).
 */
#include "broker/partition.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/partition_registry.h"
#include "broker/producer_append.h"
#include "broker/topic_settings.h"
#include "proto/gen/errors.h"
#include "storage/checkpoint.h"
#include "storage/cleaner.h"
#include "storage/flusher.h"

int16_t partition_error_from_storage(int err)
{
    switch (err) {
    case 0:
        return KAFKA_ERR_NONE;
    case LOG_ERR_OFFSET_OUT_OF_RANGE:
        return KAFKA_ERR_OFFSET_OUT_OF_RANGE;
    case LOG_ERR_CORRUPT:
        return KAFKA_ERR_CORRUPT_MESSAGE;
    case LOG_ERR_OFFLINE:
    default:
        return KAFKA_ERR_KAFKA_STORAGE_ERROR; /* disk full, I/O error, offline */
    }
}

struct partition *partition_get(struct partition_registry *reg, const char *topic, int32_t index)
{
    pthread_rwlock_rdlock(&reg->lock);
    struct partition_slot *s =
        reg->by_name[partition_slot_hash_name(topic, index) & (reg->buckets - 1)];
    for (; s; s = s->next_name) {
        struct partition *p = s->p;
        if (p->index == index && strcmp(p->topic, topic) == 0) {
            atomic_fetch_add(&p->refs, 1);
            pthread_rwlock_unlock(&reg->lock);
            return p;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    return NULL;
}

struct partition *partition_get_by_id(struct partition_registry *reg, const uint8_t *topic_id,
                                      int32_t index)
{
    pthread_rwlock_rdlock(&reg->lock);
    struct partition_slot *s =
        reg->by_id[partition_slot_hash_id(topic_id, index) & (reg->buckets - 1)];
    for (; s; s = s->next_id) {
        struct partition *p = s->p;
        if (p->index == index && memcmp(p->topic_id, topic_id, METADATA_UUID_LEN) == 0) {
            atomic_fetch_add(&p->refs, 1);
            pthread_rwlock_unlock(&reg->lock);
            return p;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    return NULL;
}

/*
 * Last reference. A hosted partition's log belongs to the log manager, which closes it at
 * shutdown; a retired partition's log was taken out of the manager, its flusher and cleaner
 * (partition_registry.c), and is discarded here, and its renamed directory removed.
 */
static void partition_free(struct partition *p)
{
    bool deleted = atomic_load(&p->deleted);
    char *dir = NULL;
    if (p->log) {
        if (!deleted) {
            log_flusher_remove(p->reg->flusher, p->log);
            log_cleaner_remove(p->reg->cleaner, p->log);
        }
        producer_partition_close(p);
        if (deleted) {
            dir = p->trash ? p->trash : strdup(log_dir_path(p->log));
            p->trash = NULL;
            log_discard(p->log);
        }
    }
    if (dir != NULL) {
        int rc = log_remove_tree(dir);
        if (rc != 0)
            logger_warn("partition", "cannot remove %s: %s", dir, strerror(-rc));
        else
            logger_info("partition", "removed %s", dir);
        free(dir);
    }
    free(p->trash);
    replica_set_destroy(&p->rs);
    pthread_mutex_destroy(&p->follow_mu);
    waiter_list_destroy(&p->waiters);
    free(p->topic);
    free(p);
}

void partition_put(struct partition *p)
{
    if (p != NULL && atomic_fetch_sub(&p->refs, 1) == 1)
        partition_free(p);
}

void waiter_list_init(struct waiter_list *l)
{
    pthread_mutex_init(&l->mu, NULL);
    l->head = NULL;
}

void waiter_list_destroy(struct waiter_list *l)
{
    pthread_mutex_destroy(&l->mu);
}

void waiter_list_add(struct waiter_list *l, struct partition_waiter *w)
{
    pthread_mutex_lock(&l->mu);
    w->prev = NULL;
    w->next = l->head;
    if (l->head)
        l->head->prev = w;
    /* Stored atomically: waiter_list_notify peeks at it without the lock. */
    __atomic_store_n(&l->head, w, __ATOMIC_RELAXED);
    w->linked = true;
    pthread_mutex_unlock(&l->mu);
}

void waiter_list_remove(struct waiter_list *l, struct partition_waiter *w)
{
    pthread_mutex_lock(&l->mu);
    if (w->linked) {
        if (w->prev)
            w->prev->next = w->next;
        else
            __atomic_store_n(&l->head, w->next, __ATOMIC_RELAXED);
        if (w->next)
            w->next->prev = w->prev;
        w->linked = false;
    }
    pthread_mutex_unlock(&l->mu);
}

void waiter_list_notify(struct waiter_list *l)
{
    /* Unlocked peek (an atomic load: head is only stored atomically); a waiter added now
     * re-checks for itself after adding. */
    if (__atomic_load_n(&l->head, __ATOMIC_RELAXED) == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    for (struct partition_waiter *w = l->head; w; w = w->next)
        w->notify(w);
    pthread_mutex_unlock(&l->mu);
}

void partition_add_waiter(struct partition *p, struct partition_waiter *w)
{
    waiter_list_add(&p->waiters, w);
}

void partition_remove_waiter(struct partition *p, struct partition_waiter *w)
{
    waiter_list_remove(&p->waiters, w);
}

void partition_notify_waiters(struct partition *p)
{
    waiter_list_notify(&p->waiters);
}

struct log_flusher *partition_registry_flusher(struct partition_registry *reg)
{
    return reg->flusher;
}

size_t partition_registry_count(struct partition_registry *reg)
{
    pthread_rwlock_rdlock(&reg->lock);
    size_t n = reg->count;
    pthread_rwlock_unlock(&reg->lock);
    return n;
}

void partition_registry_each(struct partition_registry *reg,
                             void (*fn)(struct partition *p, void *arg), void *arg)
{
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->buckets; i++)
        for (struct partition_slot *s = reg->by_name[i]; s; s = s->next_name)
            fn(s->p, arg);
    pthread_rwlock_unlock(&reg->lock);
}

int registry_table_insert(struct partition_registry *reg, struct partition *p)
{
    struct partition_slot *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->p = p;
    size_t hn = partition_slot_hash_name(p->topic, p->index) & (reg->buckets - 1);
    size_t hi = partition_slot_hash_id(p->topic_id, p->index) & (reg->buckets - 1);
    pthread_rwlock_wrlock(&reg->lock);
    s->next_name = reg->by_name[hn];
    reg->by_name[hn] = s;
    s->next_id = reg->by_id[hi];
    reg->by_id[hi] = s;
    reg->count++;
    pthread_rwlock_unlock(&reg->lock);
    return 0;
}

struct partition *registry_table_remove(struct partition_registry *reg, const uint8_t *topic_id,
                                        int32_t index)
{
    pthread_rwlock_wrlock(&reg->lock);
    size_t hi = partition_slot_hash_id(topic_id, index) & (reg->buckets - 1);
    struct partition_slot **pp = &reg->by_id[hi];
    while (*pp && !((*pp)->p->index == index &&
                    memcmp((*pp)->p->topic_id, topic_id, METADATA_UUID_LEN) == 0))
        pp = &(*pp)->next_id;
    struct partition_slot *s = *pp;
    if (s == NULL) {
        pthread_rwlock_unlock(&reg->lock);
        return NULL;
    }
    *pp = s->next_id;
    size_t hn = partition_slot_hash_name(s->p->topic, index) & (reg->buckets - 1);
    struct partition_slot **pn = &reg->by_name[hn];
    while (*pn != s)
        pn = &(*pn)->next_name;
    *pn = s->next_name;
    reg->count--;
    pthread_rwlock_unlock(&reg->lock);
    struct partition *p = s->p;
    free(s);
    return p;
}
