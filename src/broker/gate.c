/*
 * Start-up gate. Invariant: once `ready` is set (under mu) nothing is added to `held`, so every
 * held request is released exactly once by open or fail.
 */
#include "broker/gate.h"

#include <stdlib.h>

#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/dispatch.h"

struct gate_entry {
    struct gate_entry *next;
    struct net_request *nr;
    struct broker *b;
};

bool broker_gate_hold(struct broker *b, struct net_request *nr)
{
    if (atomic_load_explicit(&b->gate.ready, memory_order_acquire))
        return false;
    struct gate_entry *e = arena_alloc(&nr->arena, sizeof(*e));
    pthread_mutex_lock(&b->gate.mu);
    bool ready = atomic_load(&b->gate.ready);
    if (!ready && e != NULL) {
        e->nr = nr;
        e->b = b;
        e->next = b->gate.held;
        b->gate.held = e;
    }
    pthread_mutex_unlock(&b->gate.mu);
    if (!ready && e == NULL)
        net_request_close(nr);
    return !ready;
}

static void gate_dispatch(void *arg)
{
    struct gate_entry *e = arg;
    broker_dispatch(e->b, e->nr);
}

static void gate_close(void *arg)
{
    struct gate_entry *e = arg;
    net_request_close(e->nr);
}

static void gate_release(struct broker *b, void (*fn)(void *))
{
    pthread_mutex_lock(&b->gate.mu);
    atomic_store_explicit(&b->gate.ready, true, memory_order_release);
    struct gate_entry *e = b->gate.held;
    b->gate.held = NULL;
    pthread_mutex_unlock(&b->gate.mu);
    int n = 0;
    while (e != NULL) {
        struct gate_entry *next = e->next;
        if (net_worker_post(net_request_worker(e->nr), fn, e) != 0)
            logger_warn("broker", "a request held during start-up could not be released");
        e = next;
        n++;
    }
    if (n > 0)
        logger_debug("broker", "released %d request(s) held during start-up", n);
}

void broker_gate_open(struct broker *b)
{
    gate_release(b, gate_dispatch);
}

void broker_gate_fail(struct broker *b)
{
    gate_release(b, gate_close);
}
