/*
 * Blocking controller client: connect with a deadline, write the whole frame, read the size
 * prefix and then the frame, all under poll() with what is left of the deadline. A response
 * whose correlation id does not match closes the connection (-EPROTO): with one request at a
 * time there is never a reason for another id.
 */
#include "broker/controller_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/iochain.h"
#include "proto/header.h"

#define MAX_RESPONSE_BYTES (64u << 20)

void controller_client_init(struct controller_client *c, int32_t node_id)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->next_correlation_id = 1;
    snprintf(c->client_id, sizeof(c->client_id), "gregor-broker-%d", node_id);
}

void controller_client_close(struct controller_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - clock_mono_ms();
    return left > 0 ? (int)left : 0;
}

static int wait_fd(int fd, short events, int64_t deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int n = poll(&p, 1, remaining_ms(deadline));
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

static int connect_to(struct controller_client *c, const char *host, int port, int64_t deadline)
{
    char service[16];
    snprintf(service, sizeof(service), "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, service, &hints, &ai) != 0 || ai == NULL)
        return -EHOSTUNREACH;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = fd < 0 ? -errno : 0;
    if (rc == 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)
        rc = -errno;
    freeaddrinfo(ai);
    if (rc == 0)
        rc = wait_fd(fd, POLLOUT, deadline);
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr != 0)
        rc = -soerr;
    if (rc != 0) {
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    snprintf(c->host, sizeof(c->host), "%s", host);
    c->port = port;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

static int read_all(int fd, uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t r = recv(fd, p, n, 0);
        if (r > 0) {
            p += r;
            n -= (size_t)r;
            continue;
        }
        if (r == 0)
            return -ECONNRESET;
        if (errno != EAGAIN && errno != EINTR)
            return -errno;
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int exchange(struct controller_client *c, uint8_t *frame, size_t len, uint8_t **resp,
                    size_t *resp_len, int64_t deadline)
{
    /* api_key(2) api_version(2) correlation_id(4) start every request header. */
    uint32_t orig = get_be32(frame + 4);
    int32_t corr = c->next_correlation_id++;
    if (c->next_correlation_id <= 0)
        c->next_correlation_id = 1;
    put_be32(frame + 4, (uint32_t)corr);
    uint8_t size[4];
    put_be32(size, (uint32_t)len);
    int rc = write_all(c->fd, size, 4, deadline);
    if (rc == 0)
        rc = write_all(c->fd, frame, len, deadline);
    put_be32(frame + 4, orig);
    if (rc == 0)
        rc = read_all(c->fd, size, 4, deadline);
    uint32_t n = rc == 0 ? get_be32(size) : 0;
    if (rc == 0 && (n < 4 || n > MAX_RESPONSE_BYTES))
        rc = -EPROTO;
    uint8_t *buf = rc == 0 ? malloc(n) : NULL;
    if (rc == 0 && buf == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = read_all(c->fd, buf, n, deadline);
    if (rc == 0 && (int32_t)get_be32(buf) != corr)
        rc = -EPROTO;
    if (rc != 0) {
        free(buf);
        return rc;
    }
    put_be32(buf, orig);
    *resp = buf;
    *resp_len = n;
    return 0;
}

int controller_client_roundtrip(struct controller_client *c, const char *host, int port,
                                uint8_t *frame, size_t len, uint8_t **resp, size_t *resp_len,
                                int timeout_ms)
{
    if (len < 8)
        return -EINVAL;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    if (c->fd >= 0 && (c->port != port || strcmp(c->host, host) != 0))
        controller_client_close(c);
    int rc = c->fd >= 0 ? 0 : connect_to(c, host, port, deadline);
    if (rc == 0)
        rc = exchange(c, frame, len, resp, resp_len, deadline);
    if (rc != 0)
        controller_client_close(c);
    return rc;
}

int controller_client_call(struct controller_client *c, const char *host, int port, int16_t api_key,
                           int16_t version, const void *msg, void *out, uint8_t **buf,
                           struct arena *arena, int timeout_ms)
{
    const struct kproto_api *api = kproto_api_lookup(api_key);
    if (api == NULL)
        return -EINVAL;
    struct iochain chain;
    iochain_init(&chain);
    struct kwriter w;
    kw_init(&w, &chain);
    int hv = kproto_request_header_version(api_key, version);
    struct kproto_request_header h = {
        api_key, version, 0, {c->client_id, (int32_t)strlen(c->client_id)}, (int16_t)hv};
    int rc = kproto_request_header_encode(&w, &h);
    if (rc == 0)
        rc = api->request.encode(&w, version, msg);
    uint8_t *frame = rc == 0 && !chain.oom ? malloc(chain.total) : NULL;
    if (frame == NULL)
        rc = rc ? rc : -ENOMEM;
    else
        iochain_flatten(&chain, frame);
    size_t len = chain.total;
    iochain_free(&chain);
    size_t resp_len = 0;
    if (rc == 0)
        rc = controller_client_roundtrip(c, host, port, frame, len, buf, &resp_len, timeout_ms);
    free(frame);
    if (rc != 0)
        return rc;
    struct kreader r;
    kr_init(&r, *buf, resp_len, arena);
    int32_t corr;
    rc = kproto_response_header_decode(&r, kproto_response_header_version(api_key, version), &corr);
    if (rc == 0)
        rc = api->response.decode(&r, version, out);
    if (rc != 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}
