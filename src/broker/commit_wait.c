/*
 * Waiting until a coordinator's records are committed: the partition's high watermark passed
 * them (replicated to the ISR, as Kafka's acks=-1 for internal topics) and, with
 * acks.all.fsync, the flusher made them durable. Used by the group and transaction
 * coordinators and the transaction markers.
 */
#include "broker/commit_wait.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "broker/broker_internal.h"
#include "broker/partition_registry.h"
#include "storage/flusher.h"

/* The coordinator's commit wait: the partition's high watermark (replicated to the ISR, as
 * Kafka's offsets.commit.required.acks=-1) and, with acks.all.fsync, the flush. */
struct commit_wait {
    struct hw_waiter hw;
    atomic_int pending;
    atomic_int err;
    void (*cb)(void *arg, int err);
    void *arg;
};

static void commit_wait_part(struct commit_wait *w, int err)
{
    int zero = 0;
    if (err != 0)
        atomic_compare_exchange_strong(&w->err, &zero, err);
    if (atomic_fetch_sub(&w->pending, 1) == 1) {
        w->cb(w->arg, atomic_load(&w->err));
        free(w);
    }
}

static void commit_wait_flushed(void *arg, int err)
{
    commit_wait_part(arg, err);
}

static void commit_wait_replicated(struct hw_waiter *hw, int16_t error)
{
    commit_wait_part(hw->arg, error ? -ENOTCONN : 0);
}

struct deferred {
    struct broker *b;
    void (*cb)(void *arg, int err);
    void *arg;
    int err;
};

static void deferred_run(void *arg)
{
    struct deferred *d = arg;
    d->cb(d->arg, d->err);
    free(d);
}

static void deferred_fire(void *arg, int err)
{
    struct deferred *d = arg;
    d->err = err;
    struct net_server *net = d->b->net;
    int n = net ? net_server_worker_count(net) : 0;
    /* Any worker will do; spread by the address of the wait. */
    struct net_worker *w =
        n > 0 ? net_server_worker(net, (int)(((uintptr_t)d >> 6) % (unsigned)n)) : NULL;
    if (w == NULL || net_worker_post(w, deferred_run, d) != 0)
        deferred_run(d);
}

int partition_wait_committed_async(struct partition *p, int64_t end, void (*cb)(void *arg, int err),
                                   void *arg)
{
    struct deferred *d = malloc(sizeof(*d));
    if (d == NULL)
        return -ENOMEM;
    *d = (struct deferred){p->reg->b, cb, arg, 0};
    int rc = partition_wait_committed(p, end, deferred_fire, d);
    if (rc != 0)
        free(d);
    return rc;
}

int partition_wait_committed(struct partition *p, int64_t end, void (*cb)(void *arg, int err),
                             void *arg)
{
    struct commit_wait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    w->hw = (struct hw_waiter){.offset = end, .done = commit_wait_replicated, .arg = w};
    w->cb = cb;
    w->arg = arg;
    atomic_init(&w->err, 0);
    atomic_init(&w->pending, 3); /* the two waits and this function's own hold */
    int hw = replica_set_wait_hw(p, &w->hw);
    if (hw != 0)
        commit_wait_part(w, hw < 0 ? -ENOTCONN : 0);
    bool fsync = p->reg->b->cfg.acks_all_fsync;
    if (!fsync || log_flush_request(p->log, end, commit_wait_flushed, w) != 0)
        commit_wait_part(w, fsync ? -EIO : 0);
    commit_wait_part(w, 0);
    return 0;
}
