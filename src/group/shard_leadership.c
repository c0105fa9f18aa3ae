/*
 * A shard follows the leadership of its __consumer_offsets partition (Kafka's
 * GroupCoordinator onResignation / onElection). When this broker stops leading the partition,
 * the shard stops answering (NOT_COORDINATOR: clients look the coordinator up again), answers
 * its parked calls, and frees its groups once the appends it has in flight completed (their
 * completions still find their groups). When it leads again, the shard is replayed from the
 * log, which then holds what the other coordinators wrote meanwhile: no stale state is reused.
 */
#include <assert.h>

#include "base/logger.h"
#include "group/coordinator.h"
#include "group/group_internal.h"
#include "group/offsets_log.h"
#include "proto/gen/errors.h"

static void shard_unload_finish(struct shard *s)
{
    assert(atomic_load(&s->state) == SHARD_UNLOADING && s->appends_in_flight == 0);
    /* Completions that ran meanwhile may have parked calls or armed timers again. */
    shard_quiesce(s, KAFKA_ERR_NOT_COORDINATOR);
    size_t n = s->ngroups;
    shard_free_groups(s);
    pthread_mutex_lock(&s->gc->load_mu);
    atomic_store(&s->state, SHARD_UNLOADED);
    pthread_mutex_unlock(&s->gc->load_mu);
    logger_info("group", "unloaded %zu groups of %s-%d: its leadership moved", n, OFFSETS_TOPIC,
                s->index);
    /* Leading it again already (a new leader epoch on this broker): replay it afresh. */
    group_coordinator_prepare(s->gc, s->index);
}

void shard_unload_begin(struct shard *s)
{
    if (atomic_load(&s->state) != SHARD_LOADED)
        return;
    atomic_store(&s->state, SHARD_UNLOADING);
    shard_quiesce(s, KAFKA_ERR_NOT_COORDINATOR);
    shard_unload_continue(s);
}

void shard_unload_continue(struct shard *s)
{
    if (atomic_load(&s->state) == SHARD_UNLOADING && s->appends_in_flight == 0)
        shard_unload_finish(s);
}

static void shard_resign_on_owner(void *arg)
{
    shard_unload_begin(arg);
}

void group_coordinator_resign(struct group_coordinator *gc, int32_t shard)
{
    if (gc == NULL || shard < 0 || shard >= gc->nshards || atomic_load(&gc->stopping))
        return;
    struct shard *s = &gc->shards[shard];
    pthread_mutex_lock(&gc->load_mu);
    int st = atomic_load(&s->state);
    struct net_worker *w = s->worker;
    pthread_mutex_unlock(&gc->load_mu);
    /* A shard still LOADING checks the leadership itself when its replay is done. */
    if (st == SHARD_LOADED && w != NULL && net_worker_post(w, shard_resign_on_owner, s) != 0)
        logger_warn("group", "cannot unload %s-%d (shutting down)", OFFSETS_TOPIC, shard);
}
