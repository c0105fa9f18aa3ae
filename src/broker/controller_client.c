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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/iochain.h"
#include "broker/interbroker.h"
#include "proto/gen/errors.h"
#include "proto/gen/sasl_authenticate.h"
#include "proto/gen/sasl_handshake.h"
#include "proto/header.h"
#include "security/scram_client.h"

#define MAX_RESPONSE_BYTES (64u << 20)

void controller_client_init(struct controller_client *c, int32_t node_id,
                            struct interbroker_security *sec)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->sec = sec;
    c->next_correlation_id = 1;
    snprintf(c->client_id, sizeof(c->client_id), "gregor-broker-%d", node_id);
}

void controller_client_close(struct controller_client *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl); /* no close_notify: the peer sees a plain close, as from a client */
    c->ssl = NULL;
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

/* One TLS call's outcome: > 0 bytes, or 0 with *wait set to the poll event to wait for, or a
 * negative errno. */
static ssize_t tls_io_result(SSL *ssl, int n, short *wait)
{
    if (n > 0)
        return n;
    int e = SSL_get_error(ssl, n);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *wait = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return 0;
    }
    return e == SSL_ERROR_ZERO_RETURN ? -ECONNRESET : -EPROTO;
}

static int write_all(struct controller_client *c, const uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        short wait = POLLOUT;
        ssize_t w;
        if (c->ssl != NULL) {
            w = tls_io_result(c->ssl, SSL_write(c->ssl, p, (int)n), &wait);
        } else {
            w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w < 0)
                w = errno == EAGAIN || errno == EINTR ? 0 : -errno;
        }
        if (w < 0)
            return (int)w;
        p += w;
        n -= (size_t)w;
        if (n > 0 && w == 0) {
            int rc = wait_fd(c->fd, wait, deadline);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int read_all(struct controller_client *c, uint8_t *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        short wait = POLLIN;
        ssize_t r;
        if (c->ssl != NULL) {
            r = tls_io_result(c->ssl, SSL_read(c->ssl, p, (int)n), &wait);
        } else {
            r = recv(c->fd, p, n, 0);
            if (r == 0)
                return -ECONNRESET;
            if (r < 0)
                r = errno == EAGAIN || errno == EINTR ? 0 : -errno;
        }
        if (r < 0)
            return (int)r;
        p += r;
        n -= (size_t)r;
        if (n > 0 && r == 0) {
            int rc = wait_fd(c->fd, wait, deadline);
            if (rc)
                return rc;
        }
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
    int rc = write_all(c, size, 4, deadline);
    if (rc == 0)
        rc = write_all(c, frame, len, deadline);
    put_be32(frame + 4, orig);
    if (rc == 0)
        rc = read_all(c, size, 4, deadline);
    uint32_t n = rc == 0 ? get_be32(size) : 0;
    if (rc == 0 && (n < 4 || n > MAX_RESPONSE_BYTES))
        rc = -EPROTO;
    uint8_t *buf = rc == 0 ? malloc(n) : NULL;
    if (rc == 0 && buf == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = read_all(c, buf, n, deadline);
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

/* The TLS handshake on the connected c->fd, verifying the peer's certificate (and its host
 * name or address: ssl.endpoint.identification.algorithm=https). */
static int client_tls_handshake(struct controller_client *c, const char *host, int64_t deadline)
{
    c->ssl = SSL_new(c->sec->tls);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        return -ENOMEM;
    if (c->sec->verify_host) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) { /* not an address: a name */
            ERR_clear_error();
            SSL_set_tlsext_host_name(c->ssl, host);
            if (SSL_set1_host(c->ssl, host) != 1)
                return -EINVAL;
        }
    }
    for (;;) {
        short wait = 0;
        pthread_mutex_lock(&c->sec->handshake_mu);
        int step = SSL_connect(c->ssl);
        ssize_t r = tls_io_result(c->ssl, step, &wait);
        pthread_mutex_unlock(&c->sec->handshake_mu);
        if (r > 0)
            return 0;
        if (r < 0)
            return -ECONNREFUSED; /* an untrusted or mismatching certificate, or no TLS there */
        int rc = wait_fd(c->fd, wait, deadline);
        if (rc)
            return rc;
    }
}

static int client_encode(struct controller_client *c, int16_t api_key, int16_t version,
                         const void *msg, uint8_t **frame, size_t *len)
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
    *frame = rc == 0 && !chain.oom ? malloc(chain.total) : NULL;
    if (*frame == NULL)
        rc = rc ? rc : -ENOMEM;
    else
        iochain_flatten(&chain, *frame);
    *len = chain.total;
    iochain_free(&chain);
    return rc;
}

static int client_decode(int16_t api_key, int16_t version, uint8_t *buf, size_t len,
                         struct arena *arena, void *out)
{
    const struct kproto_api *api = kproto_api_lookup(api_key);
    struct kreader r;
    kr_init(&r, buf, len, arena);
    int32_t corr;
    int rc =
        kproto_response_header_decode(&r, kproto_response_header_version(api_key, version), &corr);
    if (rc == 0)
        rc = api->response.decode(&r, version, out);
    return rc;
}

/* One request on the connection as it is (during authentication). *buf: the caller frees. */
static int client_call_connected(struct controller_client *c, int16_t api_key, int16_t version,
                                 const void *msg, void *out, uint8_t **buf, struct arena *arena,
                                 int64_t deadline)
{
    uint8_t *frame = NULL;
    size_t len = 0, resp_len = 0;
    *buf = NULL;
    int rc = client_encode(c, api_key, version, msg, &frame, &len);
    if (rc == 0)
        rc = exchange(c, frame, len, buf, &resp_len, deadline);
    free(frame);
    if (rc == 0)
        rc = client_decode(api_key, version, *buf, resp_len, arena, out);
    return rc;
}

/* One SaslAuthenticate v1 round: sends token, returns the server's bytes (in *buf). */
static int client_sasl_round(struct controller_client *c, const char *token, size_t n,
                             struct kbytes *reply, uint8_t **buf, struct arena *a, int64_t deadline)
{
    struct kmsg_sasl_authenticate_request req;
    struct kmsg_sasl_authenticate_response resp;
    kmsg_sasl_authenticate_request_init(&req);
    kmsg_sasl_authenticate_response_init(&resp);
    req.auth_bytes = (struct kbytes){(const uint8_t *)token, (int32_t)n};
    int rc =
        client_call_connected(c, KPROTO_API_SASL_AUTHENTICATE, 1, &req, &resp, buf, a, deadline);
    if (rc == 0 && resp.error_code != 0)
        rc = -EACCES;
    if (rc == 0)
        *reply = resp.auth_bytes;
    return rc;
}

static int client_sasl_scram(struct controller_client *c, enum scram_hash h, struct arena *a,
                             int64_t deadline)
{
    struct scram_client x;
    char msg[SCRAM_MSG_MAX];
    struct kbytes reply;
    uint8_t *buf = NULL, *buf2 = NULL;
    int rc = scram_client_first(&x, h, c->sec->username, msg, sizeof(msg));
    if (rc == 0)
        rc = client_sasl_round(c, msg, strlen(msg), &reply, &buf, a, deadline);
    if (rc == 0)
        rc = scram_client_final(&x, c->sec->password, reply.ptr, (size_t)reply.len, msg,
                                sizeof(msg));
    if (rc == 0)
        rc = client_sasl_round(c, msg, strlen(msg), &reply, &buf2, a, deadline);
    if (rc == 0)
        rc = scram_client_verify(&x, reply.ptr, (size_t)reply.len);
    free(buf);
    free(buf2);
    return rc;
}

/* SaslHandshake v1 + SaslAuthenticate with this broker's identity (interbroker.h). */
static int client_sasl(struct controller_client *c, int64_t deadline)
{
    struct arena a;
    arena_init(&a, 0);
    struct kmsg_sasl_handshake_request hreq;
    struct kmsg_sasl_handshake_response hresp;
    kmsg_sasl_handshake_request_init(&hreq);
    kmsg_sasl_handshake_response_init(&hresp);
    hreq.mechanism = (struct kstr){c->sec->mechanism, (int32_t)strlen(c->sec->mechanism)};
    uint8_t *buf = NULL;
    int rc =
        client_call_connected(c, KPROTO_API_SASL_HANDSHAKE, 1, &hreq, &hresp, &buf, &a, deadline);
    if (rc == 0 && hresp.error_code != 0)
        rc = -EACCES; /* the mechanism is not enabled there */
    free(buf);
    buf = NULL;
    if (rc == 0 && strcmp(c->sec->mechanism, "PLAIN") == 0) {
        char tok[600];
        int n = snprintf(tok, sizeof(tok), "%c%s%c%s", 0, c->sec->username, 0, c->sec->password);
        struct kbytes reply;
        rc = n > 0 && (size_t)n < sizeof(tok)
                 ? client_sasl_round(c, tok, (size_t)n, &reply, &buf, &a, deadline)
                 : -EINVAL;
        OPENSSL_cleanse(tok, sizeof(tok));
        free(buf);
    } else if (rc == 0) {
        rc = client_sasl_scram(
            c, strcmp(c->sec->mechanism, "SCRAM-SHA-256") == 0 ? SCRAM_SHA_256 : SCRAM_SHA_512, &a,
            deadline);
    }
    arena_free(&a);
    return rc;
}

/* Connects, then TLS and SASL as the inter-broker listener asks. */
static int client_open(struct controller_client *c, const char *host, int port, int64_t deadline)
{
    int rc = connect_to(c, host, port, deadline);
    if (rc == 0 && c->sec != NULL && c->sec->tls != NULL)
        rc = client_tls_handshake(c, host, deadline);
    if (rc == 0 && c->sec != NULL && c->sec->sasl)
        rc = client_sasl(c, deadline);
    if (rc != 0)
        controller_client_close(c);
    return rc;
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
    int rc = c->fd >= 0 ? 0 : client_open(c, host, port, deadline);
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
    uint8_t *frame = NULL;
    size_t len = 0, resp_len = 0;
    int rc = client_encode(c, api_key, version, msg, &frame, &len);
    if (rc == 0)
        rc = controller_client_roundtrip(c, host, port, frame, len, buf, &resp_len, timeout_ms);
    free(frame);
    if (rc != 0)
        return rc;
    rc = client_decode(api_key, version, *buf, resp_len, arena, out);
    if (rc != 0) {
        free(*buf);
        *buf = NULL;
    }
    return rc;
}
