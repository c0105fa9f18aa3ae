/*
 * Broker liveness table: a small array searched linearly (clusters have few brokers; the
 * array is bounded by LIVENESS_MAX_BROKERS and a touch beyond it is ignored, which only means
 * such a broker is fenced after its session, never that memory grows).
 */
#include "cluster/liveness.h"

#include <assert.h>

void liveness_init(struct liveness *l, uint64_t session_timeout_ms)
{
    l->session_timeout_ms = session_timeout_ms;
    l->n = 0;
}

static struct liveness_entry *liveness_find(const struct liveness *l, int32_t id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].id == id)
            return (struct liveness_entry *)&l->v[i];
    return NULL;
}

static void liveness_set(struct liveness *l, int32_t id, uint64_t now_ms, bool heard)
{
    struct liveness_entry *e = liveness_find(l, id);
    if (e == NULL && l->n < LIVENESS_MAX_BROKERS) {
        e = &l->v[l->n++];
        e->id = id;
    }
    if (e != NULL) {
        e->last_ms = now_ms;
        e->heard = heard;
    }
    assert(l->n <= LIVENESS_MAX_BROKERS);
}

void liveness_touch(struct liveness *l, int32_t id, uint64_t now_ms)
{
    liveness_set(l, id, now_ms, true);
}

void liveness_assume(struct liveness *l, int32_t id, uint64_t now_ms)
{
    liveness_set(l, id, now_ms, false);
}

void liveness_clear(struct liveness *l)
{
    l->n = 0;
}

bool liveness_alive(const struct liveness *l, int32_t id, uint64_t now_ms)
{
    const struct liveness_entry *e = liveness_find(l, id);
    return e != NULL && now_ms < e->last_ms + l->session_timeout_ms;
}

bool liveness_heard(const struct liveness *l, int32_t id, uint64_t now_ms)
{
    const struct liveness_entry *e = liveness_find(l, id);
    return e != NULL && e->heard && now_ms < e->last_ms + l->session_timeout_ms;
}
