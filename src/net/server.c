/*
 * The server: configuration defaults, start-up and shutdown of the listener and the workers,
 * and statistics. Start and stop run on the controlling thread; everything else a server does
 * happens on its workers.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/logger.h"
#include "net/internal.h"

static void net_config_defaults(struct net_config *c)
{
    if (c->num_workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->num_workers = n > 0 ? (int)n : 1;
    }
    if (c->num_workers > NET_MAX_WORKERS)
        c->num_workers = NET_MAX_WORKERS;
    if (c->max_frame_bytes <= 0)
        c->max_frame_bytes = NET_DEFAULT_MAX_FRAME_BYTES;
    if (c->idle_ms == 0)
        c->idle_ms = NET_DEFAULT_IDLE_MS;
    if (c->max_pending_bytes_per_conn == 0)
        c->max_pending_bytes_per_conn = NET_DEFAULT_MAX_PENDING_BYTES;
    if (c->max_inflight_per_conn <= 0)
        c->max_inflight_per_conn = NET_DEFAULT_MAX_INFLIGHT;
    if (c->max_connections < 0)
        c->max_connections = 0;
    if (c->max_connections_per_ip < 0)
        c->max_connections_per_ip = 0;
    if (c->backlog <= 0)
        c->backlog = SOMAXCONN;
    if (c->shutdown_timeout_ms <= 0)
        c->shutdown_timeout_ms = NET_DEFAULT_SHUTDOWN_TIMEOUT_MS;
}

/*
 * Stops the workers that run and closes posting on every worker (a worker that never started
 * never closed it itself); idempotent. The worker structs stay, so a late net_worker_post()
 * from another thread finds a valid lock and answers -ESHUTDOWN.
 */
static void net_server_halt(struct net_server *s)
{
    pthread_mutex_lock(&s->resize_lock);
    atomic_store(&s->stopping, 1);
    for (int i = 0; i < s->nworkers; i++)
        if (s->workers[i].thread_started)
            net_worker_wake(&s->workers[i]);
    for (int i = 0; i < s->nworkers; i++) {
        struct net_worker *w = &s->workers[i];
        if (w->thread_started) {
            int rc = pthread_join(w->thread, NULL);
            if (rc != 0)
                logger_error(NET_LOG, "joining worker %d: %s", i, strerror(rc));
            w->thread_started = false;
        }
        net_worker_close_posts(w);
    }
    for (int i = 0; i < s->nlisteners; i++) {
        if (s->listen_fds[i] >= 0 && close(s->listen_fds[i]) < 0)
            logger_warn(NET_LOG, "closing the listening socket: %s", strerror(errno));
        s->listen_fds[i] = -1;
    }
    pthread_mutex_unlock(&s->resize_lock);
}

void net_server_free(struct net_server *s)
{
    if (s == NULL)
        return;
    net_server_halt(s);
    for (int i = 0; i < s->nworkers; i++)
        net_worker_destroy(&s->workers[i]);
    free(s->workers);
    net_admit_destroy(&s->admit);
    pthread_mutex_destroy(&s->resize_lock);
    for (int i = 0; i < s->nlisteners; i++)
        free(s->hosts[i]);
    free(s->host);
    free(s);
}

/* One listening socket per configured listener (or the single host:port of the config). */
static int net_server_open_listeners(struct net_server *s)
{
    const struct net_config *cfg = &s->cfg;
    int n = cfg->num_listeners > 0 ? cfg->num_listeners : 1;
    if (n > NET_MAX_LISTENERS)
        return -EINVAL;
    for (int i = 0; i < n; i++)
        s->listen_fds[i] = -1;
    s->nlisteners = n;
    for (int i = 0; i < n; i++) {
        const struct net_listener_config *l = cfg->num_listeners > 0 ? &cfg->listeners[i] : NULL;
        const char *host = l ? l->host : cfg->host;
        if (host != NULL && (s->hosts[i] = strdup(host)) == NULL)
            return -ENOMEM;
        s->tls[i] = l ? l->tls : NULL;
        int rc = net_listener_open(s, i, s->hosts[i], l ? l->port : cfg->port);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int net_server_start(const struct net_config *cfg, const struct net_handler *handler,
                     struct net_server **out)
{
    *out = NULL;
    if (cfg == NULL || handler == NULL || handler->on_request == NULL)
        return -EINVAL;
    struct net_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->cfg = *cfg;
    net_config_defaults(&s->cfg);
    s->handler = *handler;
    net_admit_init(&s->admit, s->cfg.max_connections, s->cfg.max_connections_per_ip);
    pthread_mutex_init(&s->resize_lock, NULL);
    s->nworkers = 0; /* counts workers initialised, for net_server_free */
    s->home = s->cfg.num_workers;
    s->nactive = s->cfg.num_workers;
    if (cfg->host != NULL) {
        s->host = strdup(cfg->host);
        if (s->host == NULL) {
            net_server_free(s);
            return -ENOMEM;
        }
    }
    s->cfg.host = s->host;
    s->workers = calloc(NET_MAX_WORKERS, sizeof(*s->workers));
    if (s->workers == NULL) {
        net_server_free(s);
        return -ENOMEM;
    }
    int rc = net_server_open_listeners(s);
    if (rc < 0)
        goto err;
    for (int i = 0; i < s->cfg.num_workers; i++) {
        s->nworkers++;
        rc = net_worker_init(&s->workers[i], s, i);
        if (rc < 0)
            goto err;
    }
    for (int i = 0; i < s->nworkers; i++) {
        rc = net_worker_start(&s->workers[i]);
        if (rc < 0)
            goto err;
    }
    *out = s;
    return 0;
err:
    net_server_free(s);
    return rc;
}

void net_server_stop(struct net_server *s)
{
    if (s == NULL)
        return;
    logger_info(NET_LOG, "stopping the listener on port %d", s->ports[0]);
    net_server_halt(s);
}

int net_server_port(const struct net_server *s)
{
    return s->ports[0];
}

int net_server_listener_port(const struct net_server *s, int i)
{
    return i >= 0 && i < s->nlisteners ? s->ports[i] : -1;
}

int net_server_worker_count(const struct net_server *s)
{
    return s->home;
}

struct net_worker *net_server_worker(struct net_server *s, int i)
{
    return i >= 0 && i < s->home ? &s->workers[i] : NULL;
}

static int64_t net_load(_Atomic int64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

void net_server_stats(const struct net_server *s, struct net_stats *out)
{
    memset(out, 0, sizeof(*out));
    int n = atomic_load(&s->nworkers);
    out->io_workers = atomic_load(&s->nactive);
    out->io_threads = atomic_load(&s->threads_running);
    for (int i = 0; i < n; i++) {
        struct net_counters *c = &s->workers[i].counters;
        out->connections_accepted += net_load(&c->accepted);
        out->connections_rejected += net_load(&c->rejected);
        out->connections_closed += net_load(&c->closed);
        out->bytes_in += net_load(&c->bytes_in);
        out->bytes_out += net_load(&c->bytes_out);
        out->requests += net_load(&c->requests);
        out->responses += net_load(&c->responses);
        out->bad_frames += net_load(&c->bad_frames);
        out->queued_response_bytes += net_load(&c->queued_bytes);
        out->paused_connections += net_load(&c->paused);
        out->tls_ktls_connections += net_load(&c->tls_ktls);
        out->tls_userspace_connections += net_load(&c->tls_userspace);
        out->receive_buffer_bytes += net_load(&c->pool_bytes);
        out->copied_bytes += net_load(&c->copied_out);
    }
    out->connections_open = out->connections_accepted - out->connections_closed;
}

void net_server_set_connection_limits(struct net_server *s, int max_total, int max_per_ip)
{
    net_admit_set_limits(&s->admit, max_total > 0 ? max_total : 0, max_per_ip > 0 ? max_per_ip : 0);
}

/* Slot i ready to run again: a fresh slot initialised, or an exited one joined and reset. */
static int net_server_prepare_slot(struct net_server *s, int i)
{
    struct net_worker *w = &s->workers[i];
    if (i >= s->nworkers) {
        int rc = net_worker_init(w, s, i);
        if (rc < 0) {
            net_worker_destroy(w);
            return rc;
        }
        atomic_store(&s->nworkers, i + 1);
        return 0;
    }
    if (i < s->home)
        return 0; /* its thread never left; it rejoins when woken */
    if (w->thread_started) {
        /* Still draining its connections after the shrink; they were closed, so this is the
         * time its last requests take. */
        int rc = pthread_join(w->thread, NULL);
        if (rc != 0)
            return -rc;
        w->thread_started = false;
    }
    return net_worker_reset(w);
}

int net_server_resize(struct net_server *s, int n)
{
    if (n < 1 || n > NET_MAX_WORKERS)
        return -EINVAL;
    pthread_mutex_lock(&s->resize_lock);
    int rc = 0;
    int old = atomic_load(&s->nactive);
    if (atomic_load(&s->stopping)) {
        rc = -ESHUTDOWN;
        goto out;
    }
    int ready = old;
    for (; ready < n; ready++)
        if ((rc = net_server_prepare_slot(s, ready)) < 0)
            break;
    if (ready == old && n > old)
        goto out;
    int target = n > old ? ready : n;
    atomic_store(&s->nactive, target);
    for (int i = old; i < target; i++)
        if (i >= s->home && (rc = net_worker_start(&s->workers[i])) < 0) {
            /* Not started: out of the pool again (its slot stays initialised). */
            atomic_store(&s->nactive, i);
            target = i;
            break;
        }
    int lo = old < target ? old : target, hi = old < target ? target : old;
    for (int i = lo; i < hi; i++)
        net_worker_wake(&s->workers[i]);
    logger_info(NET_LOG, "I/O worker pool resized from %d to %d", old, target);
    assert(1 <= atomic_load(&s->nactive) && atomic_load(&s->nactive) <= s->nworkers);
out:
    pthread_mutex_unlock(&s->resize_lock);
    return rc;
}

int net_server_pool_size(const struct net_server *s)
{
    return atomic_load(&s->nactive);
}
