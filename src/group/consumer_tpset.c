/*
 * Sorted sets of topic partitions (topic id, partition) for consumer groups. A member's sets
 * hold its share of the group's partitions, so they stay small; insertion keeps them sorted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "group/consumer_group.h"

int cg_tp_cmp(const struct cg_tp *a, const struct cg_tp *b)
{
    int c = memcmp(a->topic_id, b->topic_id, 16);
    if (c != 0)
        return c;
    return a->partition < b->partition ? -1 : a->partition > b->partition;
}

/* Index of the first element >= key. */
static int32_t tpset_lower_bound(const struct cg_tpset *s, const struct cg_tp *key)
{
    int32_t lo = 0, hi = s->n;
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (cg_tp_cmp(&s->v[mid], key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int cg_tpset_add(struct cg_tpset *s, const uint8_t id[16], int32_t partition)
{
    struct cg_tp key;
    memcpy(key.topic_id, id, 16);
    key.partition = partition;
    int32_t i = tpset_lower_bound(s, &key);
    if (i < s->n && cg_tp_cmp(&s->v[i], &key) == 0)
        return 0;
    if (s->n == s->cap) {
        int32_t ncap = s->cap ? s->cap * 2 : 8;
        struct cg_tp *nv = realloc(s->v, (size_t)ncap * sizeof(*nv));
        if (nv == NULL)
            return -ENOMEM;
        s->v = nv;
        s->cap = ncap;
    }
    memmove(&s->v[i + 1], &s->v[i], (size_t)(s->n - i) * sizeof(*s->v));
    s->v[i] = key;
    s->n++;
    return 0;
}

bool cg_tpset_has(const struct cg_tpset *s, const uint8_t id[16], int32_t partition)
{
    struct cg_tp key;
    memcpy(key.topic_id, id, 16);
    key.partition = partition;
    int32_t i = tpset_lower_bound(s, &key);
    return i < s->n && cg_tp_cmp(&s->v[i], &key) == 0;
}

void cg_tpset_clear(struct cg_tpset *s)
{
    s->n = 0;
}

void cg_tpset_free(struct cg_tpset *s)
{
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

int cg_tpset_copy(struct cg_tpset *dst, const struct cg_tpset *src)
{
    if (dst->cap < src->n) {
        struct cg_tp *nv = realloc(dst->v, (size_t)src->n * sizeof(*nv));
        if (nv == NULL)
            return -ENOMEM;
        dst->v = nv;
        dst->cap = src->n;
    }
    if (src->n > 0)
        memcpy(dst->v, src->v, (size_t)src->n * sizeof(*src->v));
    dst->n = src->n;
    return 0;
}

bool cg_tpset_eq(const struct cg_tpset *a, const struct cg_tpset *b)
{
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, (size_t)a->n * sizeof(*a->v)) == 0);
}
