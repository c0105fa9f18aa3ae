/*
 * Requests and the ordered response queue of a connection.
 *
 * Every dispatched request is appended to its connection's queue and stays there until its
 * response is completely written (or it needed none). The handler completes requests in any
 * order; completing only changes the request's state. The writer (net_conn_flush) looks at the
 * head alone: while the head is completed it is written and popped, so responses leave in
 * request order. A pending head blocks everything behind it, as Kafka clients expect.
 *
 * A request the handler hands to net_request_run_in_order() stays pending in the queue until
 * every request before it is completed; each completion then puts the connection on the
 * worker's to-do list, which runs the waiting requests whose turn came (front to back, stopping
 * at the first request still being handled). A waiting request was never the handler's, so a
 * closing connection frees it instead of orphaning it.
 *
 * When the connection closes, completed requests are freed and pending ones are marked orphan
 * and leave the queue; each keeps its reference on the connection until the handler completes
 * it, which then just frees it.
 *
 * Consecutive completed responses made only of bytes go out together in one writev (pipelined
 * small responses would otherwise cost a syscall each); anything with a file range goes
 * through iochain_send, which uses sendfile.
 *
 * Memory: a frame of NET_POOL_MIN bytes or more lives in a buffer of the worker's pool (warm,
 * no page faults while it fills), owned by the request until net_request_free gives it back;
 * a smaller one shares the request's malloc. The arena and the response chain are freed with
 * the request. Requests are created and freed on their connection's worker thread.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "base/clock.h"
#include "base/logger.h"
#include "net/internal.h"

struct net_request *net_request_new(struct net_conn *c, size_t size)
{
    uint8_t *pooled = size >= NET_POOL_MIN ? net_bufpool_get(&c->w->pool, size) : NULL;
    struct net_request *req = malloc(sizeof(*req) + (pooled ? 0 : size));
    if (req == NULL) {
        if (pooled)
            net_bufpool_put(&c->w->pool, pooled);
        return NULL;
    }
    memset(req, 0, sizeof(*req));
    req->conn = c;
    req->pooled = pooled != NULL;
    req->frame = pooled ? pooled : (uint8_t *)(req + 1);
    req->size = size;
    arena_init(&req->arena, 0);
    iochain_init(&req->resp);
    req->state = NET_REQ_PENDING;
    net_conn_ref(c);
    return req;
}

void net_request_free(struct net_request *req)
{
    struct net_conn *c = req->conn;
    assert(net_worker_on_thread(c->w));
    arena_free(&req->arena);
    iochain_free(&req->resp);
    if (req->pooled)
        net_bufpool_put(&c->w->pool, req->frame);
    free(req);
    net_conn_unref(c);
}

/* Queues a complete request and hands it to the handler. */
void net_request_dispatch(struct net_request *req)
{
    struct net_conn *c = req->conn;
    struct net_worker *w = c->w;
    req->recv_ms = clock_mono_ms();
    if (c->q_tail)
        c->q_tail->next_in_queue = req;
    else
        c->q_head = req;
    c->q_tail = req;
    c->inflight++;
    net_count(&w->counters.requests, 1);
    w->srv->handler.on_request(w->srv->handler.ctx, req);
}

struct net_worker *net_request_worker(const struct net_request *req)
{
    return req->conn->w;
}

static void net_request_complete(struct net_request *req, enum net_req_state state)
{
    struct net_conn *c = req->conn;
    assert(net_worker_on_thread(c->w));
    assert(req->state == NET_REQ_PENDING);
    if (req->orphan) {
        net_request_free(req);
        return;
    }
    req->state = state;
    if (state == NET_REQ_REPLIED) {
        c->queued_bytes += req->resp.total;
        net_count(&c->w->counters.queued_bytes, (int64_t)req->resp.total);
    } else if (state == NET_REQ_CLOSE) {
        c->close_requested = true;
    }
    if (c->q_head == req) {
        c->want_flush = true;
        net_worker_todo(c->w, c);
    }
    if (c->in_order_waiting > 0) {
        c->want_in_order = true;
        net_worker_todo(c->w, c);
    }
}

/* True when every request queued before req on its connection is completed. */
static bool net_request_earlier_done(const struct net_request *req)
{
    for (const struct net_request *r = req->conn->q_head; r != req; r = r->next_in_queue) {
        assert(r != NULL && "req is in its connection's queue");
        if (r->state == NET_REQ_PENDING)
            return false;
    }
    return true;
}

void net_request_run_in_order(struct net_request *req,
                              void (*run)(struct net_request *req, void *arg), void *arg)
{
    struct net_conn *c = req->conn;
    assert(net_worker_on_thread(c->w));
    assert(req->state == NET_REQ_PENDING && req->in_order_run == NULL);
    if (req->orphan || net_request_earlier_done(req)) {
        run(req, arg);
        return;
    }
    req->in_order_run = run;
    req->in_order_arg = arg;
    c->in_order_waiting++;
}

void net_conn_run_in_order(struct net_conn *c)
{
    struct net_request *r = c->q_head;
    while (r != NULL && c->in_order_waiting > 0) {
        if (r->state == NET_REQ_PENDING) {
            if (r->in_order_run == NULL)
                return; /* an earlier request is still being handled */
            void (*run)(struct net_request *, void *) = r->in_order_run;
            r->in_order_run = NULL;
            c->in_order_waiting--;
            run(r, r->in_order_arg);
            /* A completion only marks r, so it stays queued unless the connection closed. */
            if (c->closed || r->state == NET_REQ_PENDING)
                return;
        }
        r = r->next_in_queue;
    }
}

void net_request_reply(struct net_request *req, struct iochain *resp)
{
    req->resp = *resp;
    iochain_init(resp);
    net_request_complete(req, NET_REQ_REPLIED);
}

void net_request_reply_close(struct net_request *req, struct iochain *resp)
{
    req->close_after = true;
    req->conn->close_requested = true;
    net_request_reply(req, resp);
}

void net_request_noreply(struct net_request *req)
{
    net_request_complete(req, NET_REQ_NOREPLY);
}

void net_request_close(struct net_request *req)
{
    net_request_complete(req, NET_REQ_CLOSE);
}

static void net_conn_pop(struct net_conn *c)
{
    struct net_request *req = c->q_head;
    c->q_head = req->next_in_queue;
    if (c->q_head == NULL)
        c->q_tail = NULL;
    c->inflight--;
    if (req->state == NET_REQ_REPLIED) {
        size_t total = req->resp.total;
        c->queued_bytes -= total;
        net_count(&c->w->counters.queued_bytes, -(int64_t)total);
    }
    net_request_free(req);
}

/* Plain send of ch: sendfile, or for a local peer pread + write through the worker's buffer.
 * iochain_send's contract. */
static int net_conn_send(struct net_conn *c, struct iochain *ch)
{
    if (!c->send_copy)
        return iochain_send(ch, c->io.fd);
    assert(c->w->copy_buf != NULL); /* allocated with the worker when local_send_copy is on */
    return iochain_send_copy(ch, c->io.fd, c->w->copy_buf, NET_COPY_BUFFER);
}

/* Writes the head's response. Returns 1 when done, 0 when the socket is full, -1 on close. */
static int net_conn_write_head(struct net_conn *c)
{
    struct net_request *req = c->q_head;
    size_t before = req->resp.sent, copied_before = req->resp.copied;
    int rc = c->tls ? net_tls_send(c, &req->resp) : net_conn_send(c, &req->resp);
    size_t wrote = req->resp.sent - before;
    if (wrote > 0) {
        net_count(&c->w->counters.bytes_out, (int64_t)wrote);
        net_count(&c->w->counters.copied_out, (int64_t)(req->resp.copied - copied_before));
        net_conn_touch(c);
    }
    if (rc < 0) {
        logger_debug(NET_LOG, "closing connection %llu from %s: write: %s",
                     (unsigned long long)c->id, c->peer, strerror(-rc));
        net_conn_close(c, NULL);
        return -1;
    }
    if (rc == 0)
        return 0;
    net_count(&c->w->counters.responses, 1);
    return 1;
}

#define NET_GATHER_IOV 64

static bool net_chain_bytes_only(const struct iochain *ch)
{
    if (ch->oom)
        return false;
    for (int i = ch->send_piece; i < ch->n; i++)
        if (ch->pieces[i].kind != IOCHAIN_BYTES)
            return false;
    return true;
}

/* Appends the unsent byte pieces of ch to iov; returns false if they do not all fit. */
static bool net_chain_gather(const struct iochain *ch, struct iovec *iov, int *k)
{
    for (int i = ch->send_piece; i < ch->n; i++) {
        const struct iochain_piece *p = &ch->pieces[i];
        size_t skip = i == ch->send_piece ? ch->send_off : 0;
        if (p->len == skip)
            continue;
        if (*k == NET_GATHER_IOV)
            return false;
        iov[*k].iov_base = p->u.bytes.data + skip;
        iov[*k].iov_len = p->len - skip;
        (*k)++;
    }
    return true;
}

/* Marks n more bytes of a bytes-only chain as sent (what iochain_send would have recorded). */
static void net_chain_skip(struct iochain *ch, size_t n)
{
    ch->sent += n;
    while (n > 0) {
        size_t left = ch->pieces[ch->send_piece].len - ch->send_off;
        if (n < left) {
            ch->send_off += n;
            return;
        }
        n -= left;
        ch->send_piece++;
        ch->send_off = 0;
    }
}

/* True if the head and at least one completed response after it can share a writev. */
static bool net_conn_can_gather(const struct net_conn *c)
{
    const struct net_request *h = c->q_head;
    if (c->tls != NULL || h->close_after)
        return false; /* TLS sends each response through its own buffer */
    if (h->state != NET_REQ_REPLIED || !net_chain_bytes_only(&h->resp) ||
        h->resp.n - h->resp.send_piece > NET_GATHER_IOV)
        return false; /* (a head with more pieces than iov slots goes alone) */
    const struct net_request *n = h->next_in_queue;
    return n != NULL && n->state == NET_REQ_REPLIED && net_chain_bytes_only(&n->resp);
}

/*
 * Writes the completed bytes-only responses at the head with one writev and pops those fully
 * written. Returns 1 to go on flushing (after a short write the next attempt finds EAGAIN,
 * so nothing depends on an edge being reported for a partial write), 0 if the socket is full,
 * -1 on close.
 */
static int net_conn_write_gathered(struct net_conn *c)
{
    struct iovec iov[NET_GATHER_IOV];
    int k = 0;
    for (struct net_request *r = c->q_head; r != NULL; r = r->next_in_queue) {
        if (r->state == NET_REQ_NOREPLY)
            continue;
        if (r->state != NET_REQ_REPLIED || !net_chain_bytes_only(&r->resp) || r->close_after)
            break;
        int before = k;
        if (!net_chain_gather(&r->resp, iov, &k)) {
            k = before; /* whole responses only; the head fits (net_conn_can_gather) */
            break;
        }
    }
    ssize_t w = 0; /* k == 0: empty responses, popped below */
    while (k > 0 && (w = writev(c->io.fd, iov, k)) < 0 && errno == EINTR)
        ;
    if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        logger_debug(NET_LOG, "closing connection %llu from %s: write: %s",
                     (unsigned long long)c->id, c->peer, strerror(errno));
        net_conn_close(c, NULL);
        return -1;
    }
    net_count(&c->w->counters.bytes_out, w);
    net_conn_touch(c);
    size_t n = (size_t)w;
    while (c->q_head && c->q_head->state != NET_REQ_PENDING && c->q_head->state != NET_REQ_CLOSE) {
        struct net_request *r = c->q_head;
        if (r->state == NET_REQ_REPLIED) {
            size_t left = r->resp.total - r->resp.sent;
            if (n < left) {
                net_chain_skip(&r->resp, n);
                return 1;
            }
            net_chain_skip(&r->resp, left);
            n -= left;
            net_count(&c->w->counters.responses, 1);
        }
        net_conn_pop(c);
        if (n == 0)
            break;
    }
    return 1;
}

void net_conn_maybe_resume(struct net_conn *c)
{
    if (!c->read_paused || net_conn_over_limits(c))
        return;
    c->read_paused = false;
    net_count(&c->w->counters.paused, -1);
    c->want_read = true;
    net_worker_todo(c->w, c);
}

/*
 * Writes completed responses at the head of the queue, in order, until the queue's head is
 * pending or the socket is full (EPOLLOUT, edge-triggered, calls again). Owning worker thread.
 */
void net_conn_flush(struct net_conn *c)
{
    while (!c->closed && c->q_head && c->q_head->state != NET_REQ_PENDING) {
        struct net_request *req = c->q_head;
        if (req->state == NET_REQ_CLOSE) {
            logger_debug(NET_LOG, "closing connection %llu from %s: requested by the handler",
                         (unsigned long long)c->id, c->peer);
            net_conn_close(c, NULL);
            return;
        }
        if (net_conn_can_gather(c)) {
            if (net_conn_write_gathered(c) <= 0)
                return;
            continue;
        }
        if (req->state == NET_REQ_REPLIED && net_conn_write_head(c) <= 0)
            return;
        bool close_after = req->close_after;
        net_conn_pop(c);
        if (close_after) {
            net_conn_close(c, "closed after the response (handler's request)");
            return;
        }
    }
    if (!c->closed && c->drain_close && c->q_head == NULL) {
        net_conn_close(c, "I/O worker pool shrunk");
        return;
    }
    if (!c->closed)
        net_conn_maybe_resume(c);
}

/* The connection closed: free what is complete, orphan what the handler still holds. */
void net_conn_drop_queue(struct net_conn *c)
{
    while (c->q_head) {
        struct net_request *req = c->q_head;
        if (req->state != NET_REQ_PENDING) {
            net_conn_pop(c);
            continue;
        }
        c->q_head = req->next_in_queue;
        req->next_in_queue = NULL;
        c->inflight--;
        if (req->in_order_run != NULL) { /* never handed to the handler: net frees it */
            c->in_order_waiting--;
            net_request_free(req);
            continue;
        }
        req->orphan = 1;
    }
    c->q_tail = NULL;
    assert(c->in_order_waiting == 0);
}
