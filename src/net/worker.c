/*
 * A worker thread: one epoll loop owning a set of connections, a timer heap, a queue of
 * functions posted by other threads and a to-do list of connections with deferred work.
 *
 * One loop turn: wait for events (no longer than the next timer, not at all when the to-do
 * list is non-empty), handle them, run due timers, run the to-do list, free connections whose
 * last reference went (only here, so an event already returned by epoll_wait never points at
 * freed memory).
 *
 * Replies are never written from inside the handler: they mark the connection for a flush in
 * the to-do list of the same turn. That keeps the handler free of re-entrancy (a reply can't
 * close the connection under the caller's feet) and batches writes of pipelined requests.
 *
 * Stopping: the server sets its stopping flag and wakes every worker; the worker stops
 * accepting, closes its connections and keeps running timers and posts until no connection
 * object is left (the handler finished every outstanding request) or the shutdown timeout.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "net/internal.h"

#define NET_EVENTS_PER_WAIT 256
#define NET_READ_BUFFER (256u << 10)

bool net_worker_on_thread(const struct net_worker *w)
{
    return !w->self_known || pthread_equal(w->self, pthread_self());
}

int net_worker_index(const struct net_worker *w)
{
    return w->index;
}

void net_worker_wake(struct net_worker *w)
{
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(w->wake.fd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
    /* EAGAIN means the counter is already huge, i.e. a wake-up is pending anyway. */
    if (n < 0 && errno != EAGAIN)
        logger_error(NET_LOG, "worker %d: eventfd write failed: %s", w->index, strerror(errno));
}

void net_worker_todo(struct net_worker *w, struct net_conn *c)
{
    if (c->on_todo)
        return;
    c->on_todo = true;
    net_conn_ref(c);
    c->todo_next = w->todo;
    w->todo = c;
}

int net_worker_post(struct net_worker *w, void (*fn)(void *arg), void *arg)
{
    struct net_post *p = malloc(sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    pthread_mutex_lock(&w->post_lock);
    if (w->post_closed) {
        pthread_mutex_unlock(&w->post_lock);
        free(p);
        return -ESHUTDOWN;
    }
    if (w->posts_tail)
        w->posts_tail->next = p;
    else
        w->posts = p;
    w->posts_tail = p;
    bool wake = !w->post_woken;
    w->post_woken = true;
    pthread_mutex_unlock(&w->post_lock);
    if (wake)
        net_worker_wake(w);
    return 0;
}

static void net_worker_run_posts(struct net_worker *w)
{
    pthread_mutex_lock(&w->post_lock);
    struct net_post *p = w->posts;
    w->posts = w->posts_tail = NULL;
    w->post_woken = false;
    pthread_mutex_unlock(&w->post_lock);
    while (p) {
        struct net_post *next = p->next;
        p->fn(p->arg);
        free(p);
        p = next;
    }
}

static void net_worker_begin_stop(struct net_worker *w)
{
    w->stopping = true;
    w->retiring = false;
    w->serving = false;
    w->stop_deadline = clock_mono_ms() + w->srv->cfg.shutdown_timeout_ms;
    net_listener_detach(w);
    net_timer_cancel(w, &w->accept_retry);
    net_timer_cancel(w, &w->idle_timer);
    net_conn_close_all(w, "server stopping");
}

/*
 * Follows the pool's target size (net_server_resize): a worker shrunk away stops accepting and
 * closes its connections (clients reconnect to the others, as Kafka's removed processors do);
 * one above the start-up count also lets its thread exit once its requests are done. A worker
 * grown back starts accepting again.
 */
void net_worker_follow_pool(struct net_worker *w)
{
    struct net_server *s = w->srv;
    if (w->stopping)
        return;
    int target = atomic_load(&s->nactive);
    if (w->index >= target && w->serving) {
        w->serving = false;
        net_listener_detach(w);
        net_timer_cancel(w, &w->accept_retry);
        logger_info(NET_LOG, "worker %d leaves the pool (%d I/O workers)", w->index, target);
        net_conn_drain_all(w);
        if (w->index >= s->home) {
            w->stopping = w->retiring = true;
            w->stop_deadline = INT64_MAX;
        }
    } else if (w->index < target && !w->serving) {
        w->serving = true;
        if (net_listener_attach(w) < 0)
            net_timer_start(w, &w->accept_retry, 100, net_listener_retry, w);
        logger_info(NET_LOG, "worker %d rejoins the pool (%d I/O workers)", w->index, target);
    }
}

static void net_worker_on_wake(struct net_io *io, uint32_t events)
{
    struct net_worker *w = net_container_of(io, struct net_worker, wake);
    uint64_t v;
    if (read(io->fd, &v, sizeof(v)) < 0 && errno != EAGAIN && errno != EINTR)
        logger_error(NET_LOG, "worker %d: eventfd read failed: %s", w->index, strerror(errno));
    net_worker_run_posts(w);
    if ((!w->stopping || w->retiring) && atomic_load(&w->srv->stopping))
        net_worker_begin_stop(w);
    else
        net_worker_follow_pool(w);
}

static void net_worker_run_todo(struct net_worker *w)
{
    struct net_conn *list = w->todo;
    w->todo = NULL;
    while (list) {
        struct net_conn *c = list;
        list = c->todo_next;
        if (c->want_in_order && !c->closed) {
            c->want_in_order = false;
            net_conn_run_in_order(c);
        }
        if (c->want_flush) {
            c->want_flush = false;
            net_conn_flush(c);
        }
        if (c->want_read && !c->closed) {
            c->want_read = false;
            net_conn_read(c);
        }
        if (c->want_flush) {
            c->want_flush = false;
            net_conn_flush(c);
        }
        c->on_todo = false;
        if (!c->closed && (c->want_read || c->want_flush || c->want_in_order))
            net_worker_todo(w, c);
        net_conn_unref(c);
    }
}

/*
 * True once nothing is left to wait for; then posts are closed in the same critical section so
 * none can slip in after the check.
 */
static bool net_worker_finished(struct net_worker *w)
{
    if (w->conns_alive > 0 || w->todo != NULL)
        return false;
    pthread_mutex_lock(&w->post_lock);
    bool done = w->posts == NULL;
    if (done)
        w->post_closed = true;
    pthread_mutex_unlock(&w->post_lock);
    return done;
}

static int net_worker_timeout(struct net_worker *w)
{
    if (w->todo != NULL)
        return 0;
    int64_t now = clock_mono_ms();
    int64_t t = net_timers_next_timeout(w, now);
    if (w->stopping) {
        int64_t left = w->stop_deadline - now;
        if (left < 0)
            left = 0;
        if (t < 0 || t > left)
            t = left;
    }
    return t > INT_MAX ? INT_MAX : (int)t;
}

static void net_worker_give_up(struct net_worker *w)
{
    logger_error(NET_LOG,
                 "worker %d: %d connection(s) still have requests the handler did not complete "
                 "within %lld ms of shutdown; leaking them",
                 w->index, w->conns_alive, (long long)w->srv->cfg.shutdown_timeout_ms);
    pthread_mutex_lock(&w->post_lock);
    w->post_closed = true;
    pthread_mutex_unlock(&w->post_lock);
}

static void *net_worker_main(void *arg)
{
    struct net_worker *w = arg;
    w->self = pthread_self();
    w->self_known = true;
    atomic_fetch_add(&w->srv->threads_running, 1);
    struct epoll_event evs[NET_EVENTS_PER_WAIT];
    for (;;) {
        if (w->stopping) {
            if (net_worker_finished(w))
                break;
            if (clock_mono_ms() >= w->stop_deadline) {
                net_worker_give_up(w);
                break;
            }
        }
        int n = epoll_wait(w->epfd, evs, NET_EVENTS_PER_WAIT, net_worker_timeout(w));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            logger_error(NET_LOG, "worker %d: epoll_wait failed: %s", w->index, strerror(errno));
            abort();
        }
        for (int i = 0; i < n; i++) {
            struct net_io *io = evs[i].data.ptr;
            io->on_events(io, evs[i].events);
        }
        net_timers_run(w);
        net_worker_run_todo(w);
        net_conn_reap(w);
    }
    if (w->retiring) {
        /* A retired slot keeps no idle receive buffers mapped while it sleeps. */
        net_bufpool_destroy(&w->pool);
        logger_info(NET_LOG, "worker %d: thread exits (pool shrunk)", w->index);
    }
    atomic_fetch_sub(&w->srv->threads_running, 1);
    return NULL;
}

int net_worker_init(struct net_worker *w, struct net_server *s, int index)
{
    memset(w, 0, offsetof(struct net_worker, counters));
    w->serving = true;
    w->srv = s;
    w->index = index;
    w->wake.fd = -1;
    pthread_mutex_init(&w->post_lock, NULL);
    int rc;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        goto err;
    w->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake.fd < 0)
        goto err;
    w->wake.on_events = net_worker_on_wake;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->wake.fd, &ev) < 0)
        goto err;
    net_bufpool_init(&w->pool, w);
    w->rbuf_cap = NET_READ_BUFFER;
    w->rbuf = malloc(w->rbuf_cap);
    /* Untouched until a local peer fetches: mapped, not resident (idle RSS unchanged). */
    if (s->cfg.local_send_copy)
        w->copy_buf = malloc(NET_COPY_BUFFER);
    if (w->rbuf == NULL || (s->cfg.local_send_copy && w->copy_buf == NULL)) {
        errno = ENOMEM;
        goto err;
    }
    rc = net_listener_attach(w);
    if (rc < 0)
        return rc;
    return 0;
err:
    rc = -errno;
    logger_error(NET_LOG, "cannot set up worker %d: %s", index, strerror(errno));
    return rc;
}

/* Starts the thread with every signal blocked: signals are for the main thread, and a write
 * to a reset connection must return EPIPE rather than kill the process with SIGPIPE. */
int net_worker_start(struct net_worker *w)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&w->thread, NULL, net_worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        logger_error(NET_LOG, "cannot start worker %d: %s", w->index, strerror(rc));
        return -rc;
    }
    w->thread_started = true;
    return 0;
}

/*
 * A slot whose thread exited after a shrink (joined by the caller), made ready to start
 * again: its epoll set, eventfd, read buffer, timer heap and counters stay; the per-run state
 * is cleared and the listening sockets are watched again.
 */
int net_worker_reset(struct net_worker *w)
{
    assert(!w->thread_started && w->conns_alive == 0 && w->posts == NULL);
    w->stopping = w->retiring = false;
    w->self_known = false;
    w->accept_failing = false;
    w->post_closed = w->post_woken = false;
    w->todo = w->reap = NULL;
    w->serving = true;
    return net_listener_attach(w);
}

void net_worker_close_posts(struct net_worker *w)
{
    pthread_mutex_lock(&w->post_lock);
    w->post_closed = true;
    pthread_mutex_unlock(&w->post_lock);
}

/* Frees what the worker owns once its thread has exited (or never started). */
void net_worker_destroy(struct net_worker *w)
{
    struct net_post *p = w->posts;
    if (p)
        logger_error(NET_LOG, "worker %d: dropping posted work at shutdown", w->index);
    while (p) {
        struct net_post *next = p->next;
        free(p);
        p = next;
    }
    w->posts = w->posts_tail = NULL;
    net_timers_destroy(w);
    net_bufpool_destroy(&w->pool);
    if (w->wake.fd >= 0)
        close(w->wake.fd);
    if (w->epfd >= 0)
        close(w->epfd);
    free(w->rbuf);
    free(w->copy_buf);
    pthread_mutex_destroy(&w->post_lock);
}
