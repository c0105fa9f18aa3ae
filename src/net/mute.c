/*
 * Channel muting (KIP-219): a throttled client's connection is not read until its throttle time
 * has passed, so a client that ignores throttle_time_ms cannot get ahead of its quota. Muting
 * counts as being over the connection's limits (net_conn_over_limits), so the reading and
 * framing code pauses exactly as it does for backpressure; the mute timer lifts it and resumes
 * reading through the same path as a drained response queue.
 *
 * Invariant: c->muted implies the mute timer is armed (both cleared on close).
 */
#include <assert.h>

#include "base/clock.h"
#include "net/internal.h"

static void net_conn_unmute(struct net_timer *t)
{
    struct net_conn *c = t->arg;
    assert(c->muted && !c->closed);
    c->muted = false;
    net_conn_maybe_resume(c);
}

void net_conn_mute(struct net_conn *c, int64_t ms)
{
    if (c->closed || ms <= 0)
        return;
    int64_t deadline = clock_mono_ms() + ms;
    if (c->muted && c->mute_timer.deadline_ms >= deadline)
        return;
    c->muted = true;
    net_timer_start(c->w, &c->mute_timer, ms, net_conn_unmute, c);
    assert(net_timer_armed(&c->mute_timer));
}

void *net_conn_cache(const struct net_conn *c)
{
    return c->cache;
}

void net_conn_set_cache(struct net_conn *c, void *cache)
{
    c->cache = cache;
}
