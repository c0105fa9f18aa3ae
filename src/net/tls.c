/*
 * TLS on a connection accepted by a TLS listener (OpenSSL, server side).
 *
 * The handshake is not a separate phase: the SSL object is in accept state, so the first
 * SSL_read runs it inside the worker's loop like any read, returning "want read/write" until
 * it is done. Failures (a plaintext client, garbage, an untrusted certificate) surface as an
 * SSL error on a read; the connection is closed with one warning naming the peer and OpenSSL's
 * reason.
 *
 * Sending: a response chain is staged through a per-connection buffer (allocated on first
 * use, kept for the connection's life): bytes are copied and file ranges read with pread, then
 * SSL_write encrypts from the buffer. A plaintext listener never comes here, so its sendfile
 * path is unchanged. Invariant: buf[off..len) are the chain's next unsent bytes; the chain is
 * advanced only by what SSL_write accepted, and the buffer is refilled only when empty (an
 * interrupted SSL_write must be retried with the same bytes).
 *
 * kTLS: where the kernel offers TCP_ULP "tls", the listener's context asks OpenSSL for it
 * (SSL_OP_ENABLE_KTLS, security/tls_context.c) and OpenSSL moves the connection's send side into
 * the kernel after the handshake when the cipher allows. Once the handshake is done the
 * connection settles its send path (net_tls_settle, counted in the worker's counters and logged
 * for the first connection of the process): with kTLS send, byte pieces go out with SSL_write
 * straight from the chain and file ranges with SSL_sendfile (page cache to socket, encrypted
 * by the kernel: no pread, no staging copy); without it, the staging path above. The machines
 * Gregor is tested on have no TCP_ULP "tls", so only the fallback is exercised there.
 */
#include <assert.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "net/internal.h"

#define NET_TLS_BUF (64u << 10)

struct net_tls {
    SSL *ssl;
    uint8_t *buf; /* staged plaintext of the response being sent */
    size_t len, off;
    bool read_wants_write;
    bool send_wants_read;
    bool failed;    /* a TLS error was logged: later ones are not */
    bool settled;   /* the send path below is decided (the handshake is done) */
    bool ktls_send; /* OpenSSL put the send side into kernel TLS */
};

int net_tls_open(struct net_conn *c, void *ssl_ctx)
{
    struct net_tls *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    t->ssl = SSL_new(ssl_ctx);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, c->io.fd) != 1) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return -ENOMEM;
    }
    SSL_set_accept_state(t->ssl);
    SSL_set_mode(t->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c->tls = t;
    return 0;
}

void net_tls_free(struct net_conn *c)
{
    struct net_tls *t = c->tls;
    if (t == NULL)
        return;
    /* No close_notify: the socket closes right after, and a peer that sent garbage would not
     * read it anyway. */
    SSL_free(t->ssl);
    free(t->buf);
    free(t);
    c->tls = NULL;
}

bool net_tls_read_wants_write(const struct net_conn *c)
{
    return c->tls->read_wants_write;
}

bool net_tls_send_wants_read(const struct net_conn *c)
{
    return c->tls->send_wants_read;
}

/* Logs the first TLS failure of a connection with OpenSSL's reason; returns -1, errno EPROTO. */
static ssize_t net_tls_fail(struct net_conn *c, const char *during, int ssl_err)
{
    struct net_tls *t = c->tls;
    char why[256] = "";
    unsigned long e = ERR_peek_error();
    if (e != 0)
        ERR_error_string_n(e, why, sizeof(why));
    else if (ssl_err == SSL_ERROR_SYSCALL)
        snprintf(why, sizeof(why), "%s", errno ? strerror(errno) : "unexpected EOF");
    else
        snprintf(why, sizeof(why), "SSL error %d", ssl_err);
    ERR_clear_error();
    if (!t->failed)
        logger_warn(NET_LOG, "TLS %s with connection %llu from %s failed: %s",
                    SSL_is_init_finished(t->ssl) ? during : "handshake", (unsigned long long)c->id,
                    c->peer, why);
    t->failed = true;
    errno = EPROTO;
    return -1;
}

/* After the handshake: which way this connection's responses go, counted; the first TLS
 * connection of the process says it in the log (once, not per connection). */
static void net_tls_settle(struct net_conn *c)
{
    struct net_tls *t = c->tls;
    assert(!t->settled && SSL_is_init_finished(t->ssl) && t->off == t->len);
    t->settled = true;
    t->ktls_send = BIO_get_ktls_send(SSL_get_wbio(t->ssl)) != 0;
    net_count(t->ktls_send ? &c->w->counters.tls_ktls : &c->w->counters.tls_userspace, 1);
    if (atomic_exchange(&c->w->srv->tls_path_logged, true))
        return;
    const char *cipher = SSL_get_cipher_name(t->ssl);
    if (t->ktls_send)
        logger_info(NET_LOG,
                    "TLS connection %llu from %s (%s, %s): kTLS send is on: fetched file ranges "
                    "go out with SSL_sendfile (logged for the first connection only)",
                    (unsigned long long)c->id, c->peer, SSL_get_version(t->ssl), cipher);
    else
        logger_info(NET_LOG,
                    "TLS connection %llu from %s (%s, %s): no kTLS (%s): responses are encrypted "
                    "in user space, file ranges read with pread (logged for the first connection "
                    "only; gregor_tls_connections_total counts each path)",
                    (unsigned long long)c->id, c->peer, SSL_get_version(t->ssl), cipher,
                    (SSL_get_options(t->ssl) & SSL_OP_ENABLE_KTLS)
                        ? "OpenSSL did not enable it for this protocol and cipher"
                        : "the kernel offers no TCP_ULP \"tls\"");
}

ssize_t net_tls_read(struct net_conn *c, void *buf, size_t len)
{
    struct net_tls *t = c->tls;
    t->read_wants_write = false;
    ERR_clear_error();
    errno = 0;
    size_t got = 0;
    int ok = SSL_read_ex(t->ssl, buf, len, &got);
    if (ok == 1) {
        if (!t->settled)
            net_tls_settle(c);
        return (ssize_t)got;
    }
    int err = SSL_get_error(t->ssl, ok);
    switch (err) {
    case SSL_ERROR_WANT_READ:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        t->read_wants_write = true;
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN: /* close_notify */
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() == 0 && errno == 0 && SSL_is_init_finished(t->ssl))
            return 0; /* EOF without close_notify after the handshake: a plain close */
        if (ERR_peek_error() == 0 && errno == 0)
            return net_tls_fail(c, "read", err); /* EOF in the middle of the handshake */
        if (ERR_peek_error() == 0 && errno != 0)
            return -1; /* the socket's error, errno set */
        return net_tls_fail(c, "read", err);
    default:
        return net_tls_fail(c, "read", err);
    }
}

/* Stages the chain's next bytes when the buffer is empty. Returns bytes staged or -errno. */
static ssize_t net_tls_stage(struct net_tls *t, const struct iochain *ch)
{
    if (t->off < t->len)
        return (ssize_t)(t->len - t->off);
    if (t->buf == NULL && (t->buf = malloc(NET_TLS_BUF)) == NULL)
        return -ENOMEM;
    ssize_t n = iochain_copy_pending(ch, t->buf, NET_TLS_BUF);
    t->off = 0;
    t->len = n > 0 ? (size_t)n : 0;
    return n;
}

/* An SSL_write / SSL_sendfile that did not complete: 0 to wait for the socket, else < 0. */
static int net_tls_write_failed(struct net_conn *c, int ok)
{
    struct net_tls *t = c->tls;
    int err = SSL_get_error(t->ssl, ok);
    if (err == SSL_ERROR_WANT_WRITE)
        return 0;
    if (err == SSL_ERROR_WANT_READ) {
        t->send_wants_read = true;
        return 0;
    }
    if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 && errno != 0)
        return -errno;
    net_tls_fail(c, "write", err);
    return -EPROTO;
}

/* kTLS send: byte pieces written from the chain, file ranges with SSL_sendfile (no copy into
 * user space). A partial write resumes where the chain says. */
static int net_tls_send_ktls(struct net_conn *c, struct iochain *ch)
{
    struct net_tls *t = c->tls;
    while (ch->sent < ch->total) {
        const struct iochain_piece *p = &ch->pieces[ch->send_piece];
        size_t left = p->len - ch->send_off;
        if (left == 0) { /* an empty piece: OpenSSL refuses 0-byte writes */
            iochain_mark_sent(ch, 0);
            continue;
        }
        size_t wrote = 0;
        ERR_clear_error();
        errno = 0;
        int ok;
        if (p->kind == IOCHAIN_FILE) {
            ossl_ssize_t n =
                SSL_sendfile(t->ssl, p->u.file.fd, p->u.file.off + (off_t)ch->send_off, left, 0);
            ok = n >= 0 ? 1 : (int)n;
            wrote = n > 0 ? (size_t)n : 0;
        } else {
            ok = SSL_write_ex(t->ssl, p->u.bytes.data + ch->send_off, left, &wrote);
        }
        if (ok != 1)
            return net_tls_write_failed(c, ok);
        iochain_mark_sent(ch, wrote);
    }
    return ch->oom ? -ENOMEM : 1;
}

int net_tls_send(struct net_conn *c, struct iochain *ch)
{
    struct net_tls *t = c->tls;
    t->send_wants_read = false;
    if (!t->settled && SSL_is_init_finished(t->ssl))
        net_tls_settle(c);
    if (t->ktls_send && !ch->oom)
        return net_tls_send_ktls(c, ch);
    while (ch->sent < ch->total) {
        ssize_t n = net_tls_stage(t, ch);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EIO;
        ERR_clear_error();
        errno = 0;
        size_t wrote = 0;
        int ok = SSL_write_ex(t->ssl, t->buf + t->off, t->len - t->off, &wrote);
        if (ok != 1)
            return net_tls_write_failed(c, ok);
        t->off += wrote;
        iochain_mark_sent(ch, wrote);
    }
    if (ch->oom)
        return -ENOMEM;
    return 1;
}

const void *net_conn_tls_peer_name(const struct net_conn *c)
{
    if (c->tls == NULL || !SSL_is_init_finished(c->tls->ssl))
        return NULL;
    X509 *cert = SSL_get0_peer_certificate(c->tls->ssl);
    return cert != NULL ? X509_get_subject_name(cert) : NULL;
}
