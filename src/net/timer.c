/*
 * Worker timers: a binary min-heap of caller-owned struct net_timer ordered by
 * (deadline_ms, seq). The worker's epoll_wait timeout is the time to the heap's top, so an
 * idle worker sleeps until its next deadline and no thread polls.
 *
 * Invariants: t->heap_pos == i + 1 for the timer at heap[i]; heap_pos == 0 for any timer not in
 * the heap. seq grows with every start, which keeps equal deadlines FIFO and lets a run of
 * expiries stop at timers armed during that run (no endless loop on zero delays).
 */
#include <assert.h>
#include <stdlib.h>

#include "base/clock.h"
#include "base/logger.h"
#include "net/internal.h"

static bool net_timer_before(const struct net_timer *a, const struct net_timer *b)
{
    return a->deadline_ms < b->deadline_ms || (a->deadline_ms == b->deadline_ms && a->seq < b->seq);
}

static void net_heap_set(struct net_worker *w, int i, struct net_timer *t)
{
    w->heap[i] = t;
    t->heap_pos = i + 1;
}

static void net_heap_up(struct net_worker *w, int i)
{
    struct net_timer *t = w->heap[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!net_timer_before(t, w->heap[parent]))
            break;
        net_heap_set(w, i, w->heap[parent]);
        i = parent;
    }
    net_heap_set(w, i, t);
}

static void net_heap_down(struct net_worker *w, int i)
{
    struct net_timer *t = w->heap[i];
    for (;;) {
        int child = 2 * i + 1;
        if (child >= w->heap_len)
            break;
        if (child + 1 < w->heap_len && net_timer_before(w->heap[child + 1], w->heap[child]))
            child++;
        if (!net_timer_before(w->heap[child], t))
            break;
        net_heap_set(w, i, w->heap[child]);
        i = child;
    }
    net_heap_set(w, i, t);
}

static void net_heap_remove(struct net_worker *w, struct net_timer *t)
{
    int i = t->heap_pos - 1;
    assert(i >= 0 && i < w->heap_len && w->heap[i] == t);
    t->heap_pos = 0;
    struct net_timer *last = w->heap[--w->heap_len];
    if (last == t)
        return;
    net_heap_set(w, i, last);
    net_heap_up(w, i);
    net_heap_down(w, last->heap_pos - 1);
}

/*
 * The heap grows by doubling. If growing fails the process is out of memory and a lost timer
 * would hang a request forever, so that is fatal.
 */
static void net_heap_reserve(struct net_worker *w)
{
    if (w->heap_len < w->heap_cap)
        return;
    int ncap = w->heap_cap ? w->heap_cap * 2 : 64;
    struct net_timer **nh = realloc(w->heap, (size_t)ncap * sizeof(*nh));
    if (nh == NULL) {
        logger_error(NET_LOG, "out of memory growing the timer heap to %d entries", ncap);
        abort();
    }
    w->heap = nh;
    w->heap_cap = ncap;
}

void net_timer_start(struct net_worker *w, struct net_timer *t, int64_t delay_ms,
                     void (*fn)(struct net_timer *t), void *arg)
{
    assert(net_worker_on_thread(w));
    if (t->heap_pos)
        net_heap_remove(w, t);
    t->fn = fn;
    t->arg = arg;
    t->deadline_ms = clock_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->seq = w->timer_seq++;
    net_heap_reserve(w);
    w->heap[w->heap_len++] = t;
    net_heap_up(w, w->heap_len - 1);
}

void net_timer_cancel(struct net_worker *w, struct net_timer *t)
{
    assert(net_worker_on_thread(w));
    if (t->heap_pos)
        net_heap_remove(w, t);
}

/* Milliseconds epoll_wait may sleep: -1 without timers, 0 when one is due. */
int64_t net_timers_next_timeout(struct net_worker *w, int64_t now)
{
    if (w->heap_len == 0)
        return -1;
    int64_t d = w->heap[0]->deadline_ms - now;
    return d > 0 ? d : 0;
}

void net_timers_run(struct net_worker *w)
{
    if (w->heap_len == 0)
        return;
    int64_t now = clock_mono_ms();
    uint64_t first_new = w->timer_seq;
    while (w->heap_len > 0) {
        struct net_timer *t = w->heap[0];
        if (t->deadline_ms > now || t->seq >= first_new)
            break;
        net_heap_remove(w, t);
        t->fn(t);
    }
}

/* Forgets every armed timer (they belong to their owners) and frees the heap. */
void net_timers_destroy(struct net_worker *w)
{
    for (int i = 0; i < w->heap_len; i++)
        w->heap[i]->heap_pos = 0;
    free(w->heap);
    w->heap = NULL;
    w->heap_len = w->heap_cap = 0;
}
