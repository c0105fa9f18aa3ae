/*
 * Reading and framing: turns the byte stream of a connection into requests.
 *
 * Two ways of reading, picked per connection from the size of the last frame it sent:
 * - small frames (the last one under NET_POOL_MIN bytes): bytes are read into the worker's
 *   shared read buffer, so an idle connection costs no buffer, and complete frames found there
 *   are copied into their request (one allocation holds the request and its frame); many
 *   pipelined small requests cost one read.
 * - large frames (the last one NET_POOL_MIN bytes or more: produce requests of batching
 *   clients): the 4-byte size prefix is read alone into the connection's header, then the
 *   request (with a warm buffer of the worker's pool, bufpool.c) is allocated for exactly that
 *   size and readv puts the frame's bytes straight into it and the next size prefix into the
 *   header. Record data is never copied in user space; the price is a 4-byte read (one more
 *   syscall) per frame whose prefix did not come with the previous frame's last bytes.
 * A frame not complete after a read in either way becomes the connection's partial request
 * and later reads go straight into it.
 *
 * The size prefix is checked before anything is allocated: size <= 0 or > max_frame_bytes
 * closes the connection with a log line.
 *
 * Backpressure: before each new frame the connection's limits are checked; over them, reading
 * stops (epoll is edge-triggered, so not reading is enough) and bytes already read but not yet
 * framed are kept in a per-connection stash. net_conn_flush() resumes reading once the
 * response queue has drained below the limits.
 *
 * Fairness: one call reads at most NET_READ_BUDGET bytes, then leaves the connection on the
 * to-do list so other connections of the worker get their turn.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "base/logger.h"
#include "net/internal.h"

#define NET_READ_BUDGET (4u << 20)

static void net_conn_pause(struct net_conn *c)
{
    if (c->read_paused)
        return;
    c->read_paused = true;
    net_count(&c->w->counters.paused, 1);
}

/* Frees framing state of a closed connection (an undispatched request, stashed bytes). */
void net_conn_read_free(struct net_conn *c)
{
    if (c->partial) {
        net_request_free(c->partial);
        c->partial = NULL;
    }
    free(c->stash);
    c->stash = NULL;
    c->stash_len = c->stash_off = 0;
}

static bool net_frame_size_ok(struct net_conn *c, int32_t size)
{
    int32_t max = c->max_frame > 0 ? c->max_frame : c->w->srv->cfg.max_frame_bytes;
    if (size > 0 && size <= max)
        return true;
    logger_warn(NET_LOG, "closing connection %llu from %s: frame size %d outside 1..%d (%s)",
                (unsigned long long)c->id, c->peer, size, max,
                c->max_frame > 0 ? "the handler's limit for this connection"
                                 : "socket.request.max.bytes");
    net_count(&c->w->counters.bad_frames, 1);
    return false;
}

/*
 * The size prefix in c->hdr is complete: checks it and allocates the frame's request, which
 * the caller fills (and dispatches once full). NULL when the connection was closed for it.
 */
static struct net_request *net_conn_begin_frame(struct net_conn *c)
{
    assert(c->hdr_len == 4 && c->partial == NULL);
    int32_t size = (int32_t)((uint32_t)c->hdr[0] << 24 | (uint32_t)c->hdr[1] << 16 |
                             (uint32_t)c->hdr[2] << 8 | (uint32_t)c->hdr[3]);
    c->hdr_len = 0;
    if (!net_frame_size_ok(c, size)) {
        net_conn_close(c, NULL);
        return NULL;
    }
    c->last_frame = size;
    struct net_request *req = net_request_new(c, (size_t)size);
    if (req == NULL) {
        logger_error(NET_LOG, "closing connection %llu from %s: no memory for a %d-byte frame",
                     (unsigned long long)c->id, c->peer, size);
        net_conn_close(c, NULL);
    }
    return req;
}

/*
 * Frames requests out of buf[0..len). Returns how many bytes were consumed: all of them unless
 * the connection went over its limits (the rest must be kept) or was closed (the rest is
 * meaningless; len is returned).
 */
static size_t net_conn_parse(struct net_conn *c, const uint8_t *buf, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (c->closed || c->close_requested)
            return len;
        if (c->hdr_len == 0 && net_conn_over_limits(c))
            break;
        while (c->hdr_len < 4 && off < len)
            c->hdr[c->hdr_len++] = buf[off++];
        if (c->hdr_len < 4)
            break;
        struct net_request *req = net_conn_begin_frame(c);
        if (req == NULL)
            return len;
        size_t size = req->size;
        size_t k = len - off < size ? len - off : size;
        memcpy(req->frame, buf + off, k);
        off += k;
        if (k == size) {
            net_request_dispatch(req);
        } else {
            c->partial = req;
            c->partial_got = k;
        }
    }
    return off;
}

/* Keeps bytes of the shared buffer that could not be framed yet. Returns false on ENOMEM. */
static bool net_conn_stash(struct net_conn *c, const uint8_t *buf, size_t len)
{
    c->stash = malloc(len);
    if (c->stash == NULL) {
        logger_error(NET_LOG, "closing connection %llu from %s: out of memory",
                     (unsigned long long)c->id, c->peer);
        net_conn_close(c, NULL);
        return false;
    }
    memcpy(c->stash, buf, len);
    c->stash_len = len;
    c->stash_off = 0;
    return true;
}

static void net_conn_parse_stash(struct net_conn *c)
{
    size_t used = net_conn_parse(c, c->stash + c->stash_off, c->stash_len - c->stash_off);
    if (c->stash == NULL) /* closed while parsing */
        return;
    c->stash_off += used;
    if (c->stash_off == c->stash_len) {
        free(c->stash);
        c->stash = NULL;
        c->stash_len = c->stash_off = 0;
    }
}

/* True when the connection reads its frames straight into their requests (large frames). */
static bool net_conn_reads_direct(const struct net_conn *c)
{
    return c->tls == NULL && (size_t)c->last_frame >= NET_POOL_MIN;
}

/* Accounts n freshly read bytes: first the rest of the partial frame, then the header (direct
 * reads) or the shared buffer. */
static void net_conn_consume(struct net_conn *c, size_t n, bool direct)
{
    size_t in_buf = n;
    if (c->partial) {
        struct net_request *req = c->partial;
        size_t need = req->size - c->partial_got;
        size_t k = n < need ? n : need;
        c->partial_got += k;
        in_buf -= k;
        if (c->partial_got == req->size) {
            c->partial = NULL;
            net_request_dispatch(req);
        }
    }
    if (direct) {
        /* The kernel put the rest into c->hdr, from hdr_len on. */
        assert(in_buf <= (size_t)(4 - c->hdr_len));
        c->hdr_len += (int)in_buf;
        if (c->hdr_len < 4 || c->closed || c->close_requested)
            return;
        struct net_request *req = net_conn_begin_frame(c);
        if (req != NULL) {
            c->partial = req;
            c->partial_got = 0;
        }
        return;
    }
    const uint8_t *buf = c->w->rbuf;
    size_t used = net_conn_parse(c, buf, in_buf);
    if (used < in_buf && !c->closed && !c->close_requested)
        net_conn_stash(c, buf + used, in_buf - used);
}

/* One readv; returns its result with errno preserved, and the capacity offered. *direct: the
 * bytes after the partial frame go to the header (large frames), not the shared buffer. On TLS
 * one decrypted read into the first buffer (a TLS read returns one record at most, so a short
 * read does not mean the socket is drained: net_conn_read reads on until EAGAIN). */
static ssize_t net_conn_readv(struct net_conn *c, size_t *cap, bool *direct)
{
    struct iovec iov[2];
    int k = 0;
    if (c->partial) {
        assert(c->hdr_len == 0);
        iov[k].iov_base = c->partial->frame + c->partial_got;
        iov[k].iov_len = c->partial->size - c->partial_got;
        k++;
    }
    *direct = net_conn_reads_direct(c);
    if (*direct) {
        assert(c->hdr_len < 4);
        iov[k].iov_base = c->hdr + c->hdr_len;
        iov[k].iov_len = (size_t)(4 - c->hdr_len);
    } else {
        iov[k].iov_base = c->w->rbuf;
        iov[k].iov_len = c->w->rbuf_cap;
    }
    k++;
    if (c->tls) {
        *cap = iov[0].iov_len;
        return net_tls_read(c, iov[0].iov_base, iov[0].iov_len);
    }
    *cap = 0;
    for (int i = 0; i < k; i++)
        *cap += iov[i].iov_len;
    return readv(c->io.fd, iov, k);
}

/* Reads and frames until the socket is drained, the connection is over its limits or closed,
 * or the budget is spent. Owning worker thread. */
void net_conn_read(struct net_conn *c)
{
    size_t budget = NET_READ_BUDGET;
    while (!c->closed && !c->close_requested) {
        if (net_conn_over_limits(c)) {
            net_conn_pause(c);
            return;
        }
        if (c->stash) {
            net_conn_parse_stash(c);
            continue;
        }
        if (budget == 0) {
            c->want_read = true;
            net_worker_todo(c->w, c);
            return;
        }
        size_t cap;
        bool direct;
        ssize_t n = net_conn_readv(c, &cap, &direct);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                net_conn_close(c, strerror(errno));
            return;
        }
        if (n == 0) {
            net_conn_close(c, "closed by peer");
            return;
        }
        net_count(&c->w->counters.bytes_in, n);
        net_conn_touch(c);
        budget -= (size_t)n < budget ? (size_t)n : budget;
        net_conn_consume(c, (size_t)n, direct);
        if (c->closed)
            return;
        if (net_conn_over_limits(c)) {
            net_conn_pause(c); /* whatever was not framed is in the stash */
            return;
        }
        /* Edge-triggered: a short read drained the socket and new bytes bring a new event; but
         * a FIN that arrived with the data brings no further edge, so then read on to EOF. */
        if ((size_t)n < cap && !c->peer_hup && c->tls == NULL)
            return;
    }
}
