/*
 * The listening sockets. A server has one per configured listener (PLAINTEXT, SASL_SSL, ...),
 * each registered in every worker's epoll set with EPOLLEXCLUSIVE so a new connection wakes
 * one worker (not all); a connection remembers the index of the socket that accepted it.
 * The listener is level-triggered: a worker accepts a small batch per wake-up and leaves the
 * rest to the next wake-up, which spreads bursts of connections over the workers.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/logger.h"
#include "net/internal.h"

#define NET_ACCEPT_BATCH 8
#define NET_ACCEPT_RETRY_MS 100

static int net_listener_bind_one(const struct addrinfo *ai, int backlog)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
        goto err;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        goto err;
    if (listen(fd, backlog) < 0)
        goto err;
    return fd;
err:;
    int rc = -errno;
    close(fd);
    return rc;
}

static int net_listener_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Resolves host:port_num, binds the first address that works, sets listen_fds/ports[index]. */
int net_listener_open(struct net_server *s, int index, const char *host, int port_num)
{
    if (host != NULL && host[0] == '\0')
        host = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", port_num);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        logger_error(NET_LOG, "cannot resolve listener address %s:%d: %s", host ? host : "*",
                     port_num, gai_strerror(gai));
        return -EADDRNOTAVAIL;
    }
    int fd = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = net_listener_bind_one(ai, s->cfg.backlog);
        if (fd >= 0)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        logger_error(NET_LOG, "cannot listen on %s:%d: %s", host ? host : "*", port_num,
                     strerror(-fd));
        return fd;
    }
    int p = net_listener_bound_port(fd);
    if (p < 0) {
        close(fd);
        return p;
    }
    s->listen_fds[index] = fd;
    s->ports[index] = p;
    bool v6 = host != NULL && strchr(host, ':') != NULL;
    logger_info(NET_LOG, "listening on %s%s%s:%d%s with %d workers", v6 ? "[" : "",
                host ? host : "*", v6 ? "]" : "", p, s->tls[index] ? " (TLS)" : "",
                s->cfg.num_workers);
    return 0;
}

void net_listener_retry(struct net_timer *t)
{
    struct net_worker *w = t->arg;
    if (!w->stopping && w->serving && net_listener_attach(w) < 0)
        net_timer_start(w, &w->accept_retry, NET_ACCEPT_RETRY_MS, net_listener_retry, w);
}

/* Out of file descriptors or memory: stop accepting on this worker for a moment. */
static void net_listener_back_off(struct net_worker *w, int err)
{
    if (!w->accept_failing)
        logger_warn(NET_LOG, "worker %d: accept failed: %s; retrying every %d ms", w->index,
                    strerror(err), NET_ACCEPT_RETRY_MS);
    w->accept_failing = true;
    net_listener_detach(w);
    net_timer_start(w, &w->accept_retry, NET_ACCEPT_RETRY_MS, net_listener_retry, w);
}

static void net_listener_on_events(struct net_io *io, uint32_t events)
{
    struct net_listen_reg *reg = net_container_of(io, struct net_listen_reg, io);
    struct net_worker *w = reg->w;
    for (int i = 0; i < NET_ACCEPT_BATCH && w->listening; i++) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        int fd = accept4(io->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (w->accept_failing) {
                logger_info(NET_LOG, "worker %d: accepting connections again", w->index);
                w->accept_failing = false;
            }
            net_conn_accept(w, fd, &sa, reg->index);
            continue;
        }
        switch (errno) {
        case EAGAIN:
            return;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case EPERM:
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
            net_listener_back_off(w, errno);
            return;
        default:
            logger_error(NET_LOG, "accept failed: %s", strerror(errno));
            net_listener_back_off(w, errno);
            return;
        }
    }
}

static void net_listener_unwatch(struct net_worker *w, int n)
{
    for (int i = 0; i < n; i++)
        if (epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listen_regs[i].io.fd, NULL) < 0)
            logger_error(NET_LOG, "worker %d cannot unwatch listening socket %d: %s", w->index, i,
                         strerror(errno));
}

/* Registers every listening socket in w's epoll set. Worker thread (or before it starts). */
int net_listener_attach(struct net_worker *w)
{
    if (w->listening)
        return 0;
    for (int i = 0; i < w->srv->nlisteners; i++) {
        struct net_listen_reg *reg = &w->listen_regs[i];
        reg->io.fd = w->srv->listen_fds[i];
        reg->io.on_events = net_listener_on_events;
        reg->w = w;
        reg->index = i;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &reg->io};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, reg->io.fd, &ev) < 0) {
            int rc = -errno;
            logger_error(NET_LOG, "worker %d cannot watch the listening socket: %s", w->index,
                         strerror(errno));
            net_listener_unwatch(w, i);
            return rc;
        }
    }
    w->listening = true;
    return 0;
}

void net_listener_detach(struct net_worker *w)
{
    if (!w->listening)
        return;
    net_listener_unwatch(w, w->srv->nlisteners);
    w->listening = false;
}
