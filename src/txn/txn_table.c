/* The coordinator's table of transactional ids and its partition lists (txn_internal.h). */
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

/* ---- table ---- */

int32_t txn_shard_of(const char *id, size_t len, int32_t n)
{
    return n > 0 ? offsets_partition_for(id, len, n) : -1;
}

static size_t bucket_of(const char *id)
{
    return (size_t)(uint32_t)offsets_java_string_hash(id, strlen(id)) % TXN_BUCKETS;
}

struct txn_meta *txn_table_find(struct txn_table *t, const char *id)
{
    for (struct txn_meta *m = t->buckets[bucket_of(id)]; m; m = m->next)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

void txn_table_insert(struct txn_table *t, struct txn_meta *m)
{
    size_t b = bucket_of(m->id);
    m->next = t->buckets[b];
    t->buckets[b] = m;
}

void txn_parts_free(struct txn_topic_partition *parts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((char *)parts[i].topic);
    free(parts);
}

void txn_meta_free(struct txn_meta *m)
{
    txn_parts_free(m->parts, m->nparts);
    free(m->id);
    free(m);
}

void txn_table_remove(struct txn_table *t, struct txn_meta *m)
{
    for (struct txn_meta **pp = &t->buckets[bucket_of(m->id)]; *pp; pp = &(*pp)->next)
        if (*pp == m) {
            *pp = m->next;
            return;
        }
}

/* Copies parts[0..n) and adds[0..nadd) not already there; NULL on ENOMEM. */
struct txn_topic_partition *txn_parts_union(const struct txn_topic_partition *parts, size_t n,
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
            txn_parts_free(v, k);
            return NULL;
        }
    }
    *out_n = k;
    return v;
}

void txn_table_free_all(struct txn_table *t)
{
    for (size_t b = 0; b < TXN_BUCKETS; b++)
        while (t->buckets[b]) {
            struct txn_meta *m = t->buckets[b];
            t->buckets[b] = m->next;
            txn_meta_free(m);
        }
}
