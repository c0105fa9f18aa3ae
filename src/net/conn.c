/*
 * A client connection: accept-time admission and socket options, reference counting, closing,
 * and the idle timeout (connections.max.idle.ms).
 *
 * Idle detection: each worker keeps its open connections in a list ordered by last activity
 * (a byte read or written moves a connection to the tail, O(1)). One timer per worker fires
 * when the head would become idle; it closes every connection idle for idle_ms that has no
 * request outstanding, and re-arms for the new head. An idle broker therefore sleeps.
 *
 * Invariants: a connection is on the idle list iff its socket is open; refs > 0 until it is on
 * the reap list; on_close is called once, when the object is freed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "net/internal.h"

uint64_t net_conn_id(const struct net_conn *c)
{
    return c->id;
}

const char *net_conn_peer(const struct net_conn *c)
{
    return c->peer;
}

struct net_worker *net_conn_worker(const struct net_conn *c)
{
    return c->w;
}

int net_conn_is_closed(const struct net_conn *c)
{
    return c->closed;
}

void *net_conn_user(const struct net_conn *c)
{
    return c->user;
}

void net_conn_set_user(struct net_conn *c, void *user)
{
    c->user = user;
}

int net_conn_listener(const struct net_conn *c)
{
    return c->listener;
}

void net_conn_set_max_frame(struct net_conn *c, int32_t bytes)
{
    c->max_frame = bytes > 0 ? bytes : 0;
}

/* Fills the admission key and the printable "addr:port" of a peer. */
static void net_conn_describe(const struct sockaddr_storage *sa, struct net_ip_key *key, char *peer,
                              size_t peer_len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    memset(key, 0, sizeof(*key));
    key->family = (uint8_t)sa->ss_family;
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(key->addr, &in->sin_addr, 4);
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
        snprintf(peer, peer_len, "%s:%d", ip, port);
    } else if (sa->ss_family == AF_INET6 &&
               IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
        /* An IPv4 client of a dual-stack listener: count and print it as IPv4. */
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        key->family = AF_INET;
        memcpy(key->addr, &in6->sin6_addr.s6_addr[12], 4);
        inet_ntop(AF_INET, key->addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(peer, peer_len, "%s:%d", ip, port);
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(key->addr, &in6->sin6_addr, 16);
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
        snprintf(peer, peer_len, "[%s]:%d", ip, port);
    } else {
        snprintf(peer, peer_len, "unknown");
    }
}

/* An IPv4 127/8, ::1 or IPv4-mapped 127/8 address. */
static bool net_addr_is_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24 == 127;
    if (a->ss_family != AF_INET6)
        return false;
    const struct in6_addr *x = &((const struct sockaddr_in6 *)a)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(x) || (IN6_IS_ADDR_V4MAPPED(x) && x->s6_addr[12] == 127);
}

/* Two socket addresses of one family naming the same host address (ports ignored). */
static bool net_addr_same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

/*
 * Whether the peer of fd runs on this host: its address is a loopback one, or the socket's own
 * (a connection to one of the host's own addresses goes over the loopback device too).
 */
static bool net_conn_peer_is_local(int fd)
{
    struct sockaddr_storage peer, self;
    socklen_t pl = sizeof(peer), sl = sizeof(self);
    if (getpeername(fd, (struct sockaddr *)&peer, &pl) != 0 ||
        getsockname(fd, (struct sockaddr *)&self, &sl) != 0)
        return false;
    return net_addr_is_loopback(&peer) || net_addr_same_host(&peer, &self);
}

/* Socket options; failures are logged but not fatal (the connection still works). */
static void net_conn_set_options(struct net_conn *c, const struct net_config *cfg)
{
    int one = 1;
    if (setsockopt(c->io.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        logger_warn(NET_LOG, "%s: TCP_NODELAY: %s", c->peer, strerror(errno));
    int snd = cfg->socket_send_buffer_bytes, rcv = cfg->socket_receive_buffer_bytes;
    if (snd > 0 && setsockopt(c->io.fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd)) < 0)
        logger_warn(NET_LOG, "%s: SO_SNDBUF: %s", c->peer, strerror(errno));
    if (rcv > 0 && setsockopt(c->io.fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv)) < 0)
        logger_warn(NET_LOG, "%s: SO_RCVBUF: %s", c->peer, strerror(errno));
}

static void net_idle_unlink(struct net_worker *w, struct net_conn *c)
{
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        w->idle_head = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        w->idle_tail = c->idle_prev;
    c->idle_prev = c->idle_next = NULL;
}

static void net_idle_append(struct net_worker *w, struct net_conn *c)
{
    c->idle_next = NULL;
    c->idle_prev = w->idle_tail;
    if (w->idle_tail)
        w->idle_tail->idle_next = c;
    else
        w->idle_head = c;
    w->idle_tail = c;
}

static void net_idle_arm(struct net_worker *w)
{
    int64_t idle_ms = w->srv->cfg.idle_ms;
    if (idle_ms < 0 || w->idle_head == NULL || w->stopping || net_timer_armed(&w->idle_timer))
        return;
    int64_t delay = w->idle_head->last_active + idle_ms - clock_mono_ms();
    net_timer_start(w, &w->idle_timer, delay, net_conn_idle_check, w);
}

/* Records activity: the connection becomes the most recently active one. */
void net_conn_touch(struct net_conn *c)
{
    c->last_active = clock_mono_ms();
    if (c->closed || c->w->idle_tail == c)
        return;
    net_idle_unlink(c->w, c);
    net_idle_append(c->w, c);
}

void net_conn_idle_check(struct net_timer *t)
{
    struct net_worker *w = t->arg;
    int64_t idle_ms = w->srv->cfg.idle_ms;
    int64_t now = clock_mono_ms();
    while (w->idle_head && now - w->idle_head->last_active >= idle_ms) {
        struct net_conn *c = w->idle_head;
        if (c->inflight > 0) {
            net_conn_touch(c); /* busy, not idle: the handler still owes it responses */
            continue;
        }
        logger_debug(NET_LOG, "closing connection %llu from %s: idle for %lld ms",
                     (unsigned long long)c->id, c->peer, (long long)(now - c->last_active));
        net_conn_close(c, NULL);
    }
    net_idle_arm(w);
}

static void net_conn_on_events(struct net_io *io, uint32_t events)
{
    struct net_conn *c = net_container_of(io, struct net_conn, io);
    if (c->closed)
        return;
    if (events & (EPOLLRDHUP | EPOLLHUP))
        c->peer_hup = true; /* the FIN may sit behind data a short read leaves: read to EOF */
    bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    bool writable = events & (EPOLLOUT | EPOLLERR);
    /* TLS may need the other direction: a handshake step inside a read can have to write, a
     * send during a key update can have to read. */
    bool tls_read = c->tls && writable && net_tls_read_wants_write(c);
    bool tls_send = c->tls && readable && net_tls_send_wants_read(c);
    if ((readable || tls_read) && !c->read_paused)
        net_conn_read(c);
    if ((writable || tls_send) && !c->closed)
        net_conn_flush(c);
}

/* Admission failed or resources are missing: drop the new socket. */
static void net_conn_refuse(struct net_worker *w, int fd, const char *peer, const char *why)
{
    logger_warn(NET_LOG, "rejecting connection from %s: %s", peer, why);
    net_count(&w->counters.rejected, 1);
    if (close(fd) < 0)
        logger_warn(NET_LOG, "close of rejected connection from %s: %s", peer, strerror(errno));
}

static bool net_conn_handoff(struct net_worker *to, int fd, const struct net_ip_key *key,
                             const char *peer, int listener);

/* Makes an admitted socket a connection of w. Worker thread of w. */
static void net_conn_open(struct net_worker *w, int fd, const struct net_ip_key *key,
                          const char *peer, int listener)
{
    struct net_server *s = w->srv;
    if (!w->serving) {
        /* Shrunk away between the pick and the hand-over: worker 0 always serves. */
        if (w->index != 0 && !atomic_load(&s->stopping) &&
            net_conn_handoff(&s->workers[0], fd, key, peer, listener))
            return;
        net_admit_release(&s->admit, key);
        net_conn_refuse(w, fd, peer, w->stopping ? "server stopping" : "worker left the pool");
        return;
    }
    struct net_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        net_admit_release(&s->admit, key);
        net_conn_refuse(w, fd, peer, "out of memory");
        return;
    }
    c->io.fd = fd;
    c->io.on_events = net_conn_on_events;
    c->w = w;
    c->ip = *key;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->id = atomic_fetch_add(&s->next_conn_id, 1) + 1;
    c->refs = 1; /* the open socket */
    c->listener = listener;
    if (s->tls[listener] != NULL && net_tls_open(c, s->tls[listener]) != 0) {
        net_admit_release(&s->admit, key);
        net_conn_refuse(w, fd, peer, "out of memory for TLS");
        free(c);
        return;
    }
    net_conn_set_options(c, &s->cfg);
    c->send_copy = s->cfg.local_send_copy && c->tls == NULL && net_conn_peer_is_local(fd);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.ptr = &c->io};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        net_admit_release(&s->admit, key);
        net_conn_refuse(w, fd, peer, strerror(errno));
        net_tls_free(c);
        free(c);
        return;
    }
    w->conns_alive++;
    net_count(&w->counters.accepted, 1);
    c->last_active = clock_mono_ms();
    net_idle_append(w, c);
    net_idle_arm(w);
    logger_debug(NET_LOG, "accepted connection %llu from %s on worker %d",
                 (unsigned long long)c->id, c->peer, w->index);
    c->opened = true;
    if (s->handler.on_open && s->handler.on_open(s->handler.ctx, c) != 0)
        net_conn_close(c, "refused by the handler");
}

/* An accepted socket travelling to the worker that will own it. */
struct net_handoff {
    struct net_worker *to;
    int fd;
    int listener;
    struct net_ip_key key;
    char peer[64];
};

static void net_conn_handoff_run(void *arg)
{
    struct net_handoff *h = arg;
    net_conn_open(h->to, h->fd, &h->key, h->peer, h->listener);
    free(h);
}

/*
 * The worker that woke up for the listener is whichever the kernel chose (with EPOLLEXCLUSIVE
 * that is mostly the same idle one), so the owner is picked round-robin instead and the socket
 * handed over with a post. Returns false if the hand-over failed (the caller keeps the socket).
 */
static bool net_conn_handoff(struct net_worker *to, int fd, const struct net_ip_key *key,
                             const char *peer, int listener)
{
    struct net_handoff *h = malloc(sizeof(*h));
    if (h == NULL)
        return false;
    h->to = to;
    h->fd = fd;
    h->listener = listener;
    h->key = *key;
    snprintf(h->peer, sizeof(h->peer), "%s", peer);
    if (net_worker_post(to, net_conn_handoff_run, h) != 0) {
        free(h);
        return false;
    }
    return true;
}

/* A socket fresh from accept4(): admission, then the owner. Worker thread of w. */
void net_conn_accept(struct net_worker *w, int fd, const struct sockaddr_storage *sa, int listener)
{
    struct net_server *s = w->srv;
    struct net_ip_key key;
    char peer[64];
    char why[96];
    net_conn_describe(sa, &key, peer, sizeof(peer));
    int rc = net_admit_acquire(&s->admit, &key);
    if (rc < 0) {
        if (rc == -ENFILE)
            snprintf(why, sizeof(why), "max.connections (%d) reached", s->admit.max_total);
        else if (rc == -EMFILE)
            snprintf(why, sizeof(why), "max.connections.per.ip (%d) reached", s->admit.max_per_ip);
        else
            snprintf(why, sizeof(why), "%s", strerror(-rc));
        net_conn_refuse(w, fd, peer, why);
        return;
    }
    unsigned i = atomic_fetch_add_explicit(&s->next_worker, 1, memory_order_relaxed);
    struct net_worker *owner = &s->workers[i % (unsigned)atomic_load(&s->nactive)];
    if (owner != w && net_conn_handoff(owner, fd, &key, peer, listener))
        return;
    net_conn_open(w, fd, &key, peer, listener);
}

void net_conn_ref(struct net_conn *c)
{
    c->refs++;
}

/* The last reference moves the connection to the reap list, freed at the end of the turn. */
void net_conn_unref(struct net_conn *c)
{
    if (--c->refs > 0)
        return;
    c->todo_next = c->w->reap;
    c->w->reap = c;
}

void net_conn_reap(struct net_worker *w)
{
    while (w->reap) {
        struct net_conn *c = w->reap;
        w->reap = c->todo_next;
        struct net_server *s = w->srv;
        if (c->opened && s->handler.on_close)
            s->handler.on_close(s->handler.ctx, c);
        w->conns_alive--;
        free(c->cache);
        free(c);
    }
}

/*
 * Closes the socket now. why (may be NULL when the caller logged already) goes to the debug
 * log. Requests still with the handler stay valid; their completions will be dropped.
 */
void net_conn_close(struct net_conn *c, const char *why)
{
    if (c->closed)
        return;
    struct net_worker *w = c->w;
    if (why)
        logger_debug(NET_LOG, "closing connection %llu from %s: %s", (unsigned long long)c->id,
                     c->peer, why);
    c->closed = true;
    net_tls_free(c);
    if (close(c->io.fd) < 0)
        logger_warn(NET_LOG, "close of connection %llu: %s", (unsigned long long)c->id,
                    strerror(errno));
    c->io.fd = -1;
    net_admit_release(&w->srv->admit, &c->ip);
    net_timer_cancel(w, &c->mute_timer);
    c->muted = false;
    net_idle_unlink(w, c);
    net_count(&w->counters.closed, 1);
    if (c->read_paused) {
        c->read_paused = false;
        net_count(&w->counters.paused, -1);
    }
    net_conn_read_free(c);
    net_conn_drop_queue(c);
    net_conn_unref(c);
}

void net_conn_close_all(struct net_worker *w, const char *why)
{
    while (w->idle_head)
        net_conn_close(w->idle_head, why);
}

/* Every connection of w stops reading; each closes once the responses it owes are written
 * (at once when it owes none). */
void net_conn_drain_all(struct net_worker *w)
{
    struct net_conn *c = w->idle_head;
    while (c) {
        struct net_conn *next = c->idle_next;
        if (c->q_head == NULL) {
            net_conn_close(c, "I/O worker pool shrunk");
        } else {
            c->close_requested = c->drain_close = true;
            c->want_flush = true;
            net_worker_todo(w, c);
        }
        c = next;
    }
}

bool net_conn_over_limits(const struct net_conn *c)
{
    const struct net_config *cfg = &c->w->srv->cfg;
    return c->muted || c->inflight >= cfg->max_inflight_per_conn ||
           c->queued_bytes > cfg->max_pending_bytes_per_conn;
}
