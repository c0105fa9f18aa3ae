/*
 * Network core: TCP listener, I/O worker threads, size-prefixed framing, ordered responses.
 *
 * Knows nothing of Kafka beyond the framing: every request and response on the wire is a
 * 4-byte big-endian size followed by that many bytes.
 *
 * Threads. net_server_start() starts N workers, each running its own epoll loop. One listening
 * socket is registered in every worker's epoll set with EPOLLEXCLUSIVE; the worker that accepts
 * a connection owns it for its whole life: its reads, its handler calls, its writes, its timers.
 * Unless a function says otherwise it must be called on the worker thread that owns the object
 * (the connection's worker, the request's worker, the timer's worker). The only functions that
 * may be called from any thread are net_worker_post(), net_server_stats(), net_server_port()
 * and the net_server_worker*() lookups. net_server_start()/stop()/free() are called by the
 * controlling thread (never by a worker).
 *
 * Requests. For each complete frame the worker calls handler->on_request(ctx, req). The handler
 * must eventually call exactly one of net_request_reply(), net_request_noreply() or
 * net_request_close(), immediately or later, but on the owning worker thread (from another
 * thread, hand the completion over with net_worker_post()). Responses leave each connection in
 * request order, whatever order the handler completes them in. A request stays valid until it
 * is completed, even if its connection died meanwhile (the completion is then discarded).
 *
 * Backpressure. While a connection has max_inflight_per_conn requests not yet answered or more
 * than max_pending_bytes_per_conn response bytes queued, its socket is not read: the kernel
 * buffers fill and TCP flow control stops the client. Other connections are unaffected.
 *
 * Errors are negative errno values.
 */
#ifndef GREGOR_NET_NET_H
#define GREGOR_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/arena.h"
#include "base/iochain.h"

struct net_server;
struct net_worker;
struct net_conn;

/* Defaults applied to zero fields (Kafka's property names in comments). */
#define NET_DEFAULT_MAX_FRAME_BYTES 104857600    /* socket.request.max.bytes */
#define NET_DEFAULT_IDLE_MS 600000               /* connections.max.idle.ms */
#define NET_DEFAULT_MAX_PENDING_BYTES (4u << 20) /* per connection */
#define NET_DEFAULT_MAX_INFLIGHT 32              /* per connection */
#define NET_DEFAULT_SHUTDOWN_TIMEOUT_MS 10000
#define NET_MAX_LISTENERS 8

/*
 * One listening socket of a server. tls is an OpenSSL SSL_CTX * (built by the caller, which
 * keeps it alive until net_server_free) for a TLS listener, NULL for plain TCP. On a TLS
 * listener the handshake runs inside the worker's loop before the first frame is read, and
 * responses are encrypted (file ranges are read with pread instead of sent with sendfile).
 */
struct net_listener_config {
    const char *host; /* as net_config.host */
    int port;         /* 0 = ephemeral, see net_server_listener_port() */
    void *tls;        /* SSL_CTX *, or NULL */
};

struct net_config {
    /* Listening sockets; with num_listeners == 0, the one given by host and port below.
     * Every connection knows which of them accepted it (net_conn_listener()). */
    struct net_listener_config listeners[NET_MAX_LISTENERS];
    int num_listeners;
    const char *host;                  /* address to bind, numeric or a name; NULL or "" = the
                                          first passive address getaddrinfo returns (all
                                          interfaces); "0.0.0.0" = IPv4 only, "::" = dual stack */
    int port;                          /* 0 = ephemeral, see net_server_port() */
    int num_workers;                   /* 0 = one per online CPU */
    int32_t max_frame_bytes;           /* socket.request.max.bytes; 0 = default */
    int64_t idle_ms;                   /* connections.max.idle.ms; 0 = default, <0 = never */
    size_t max_pending_bytes_per_conn; /* queued response bytes before reads stop; 0 = default */
    int max_inflight_per_conn;         /* unanswered requests before reads stop; 0 = default */
    int max_connections;               /* max.connections; 0 = unlimited */
    int max_connections_per_ip;        /* max.connections.per.ip; 0 = unlimited */
    int socket_send_buffer_bytes;      /* socket.send.buffer.bytes; <= 0 = OS default */
    int socket_receive_buffer_bytes;   /* socket.receive.buffer.bytes; <= 0 = OS default */
    int backlog;                       /* listen(2) backlog; 0 = SOMAXCONN */
    bool local_send_copy;              /* plain connections from this host (loopback, or the
                                          peer's address is the socket's own) get file ranges
                                          by pread + write through a worker buffer instead of
                                          sendfile, which is slower over loopback */
    int64_t shutdown_timeout_ms;       /* how long stop waits for unfinished requests; 0 = dflt */
};

struct net_request {
    /* Public, read-only for the handler. */
    struct net_conn *conn;
    uint8_t *frame;     /* the frame's bytes after the 4-byte size prefix; owned by net */
    size_t size;        /* bytes at frame (> 0, <= max_frame_bytes) */
    struct arena arena; /* per-request scratch memory, freed with the request */
    int64_t recv_ms;    /* clock_mono_ms() when the frame was complete */
    void *user;         /* free for the handler */

    /* Private to net. */
    struct net_request *next_in_queue;
    int state;
    int orphan;
    bool pooled;      /* frame is a buffer of the worker's pool (else in the same malloc) */
    bool close_after; /* net_request_reply_close(): close once the response is written */
    struct iochain resp;
    /* net_request_run_in_order(): what to call once the requests before it are answered */
    void (*in_order_run)(struct net_request *req, void *arg);
    void *in_order_arg;
};

struct net_handler {
    /* A complete frame arrived. Called on the connection's worker. Required. */
    void (*on_request)(void *ctx, struct net_request *req);
    /*
     * A connection was accepted, before any of its requests. Returning non-zero closes it
     * (on_close is still called). Optional.
     */
    int (*on_open)(void *ctx, struct net_conn *c);
    /*
     * The connection is closed and none of its requests is outstanding any more: the last
     * moment to release per-connection state (net_conn_user()). Called once for every
     * connection that was accepted, on its worker. Optional.
     */
    void (*on_close)(void *ctx, struct net_conn *c);
    void *ctx;
};

/*
 * Binds, listens and starts the workers. Returns 0 and *out, or a negative errno (logged with
 * the address) when the address can't be resolved/bound or a resource is missing. The config
 * is copied (host included). Controlling thread.
 */
int net_server_start(const struct net_config *cfg, const struct net_handler *handler,
                     struct net_server **out);

/*
 * Stops accepting, closes every connection, lets the handler finish outstanding requests
 * (timers and posts keep running) for up to shutdown_timeout_ms and joins the workers.
 * Requests the handler has not completed by then are leaked with an error log. The server's
 * memory stays until net_server_free(): other threads (a controller, a flusher) may still
 * call net_worker_post(), which then answers -ESHUTDOWN. Controlling thread; NULL is a no-op.
 */
void net_server_stop(struct net_server *s);
/* Frees the server (stopping it first if needed), once no thread can post to its workers any
 * more. Controlling thread; NULL is a no-op. */
void net_server_free(struct net_server *s);

/* The bound port (useful with port 0) of the first listener, or of listener i. Any thread. */
int net_server_port(const struct net_server *s);
int net_server_listener_port(const struct net_server *s, int i);

/* Number of workers started with the server and the i-th of them (0 <= i < count), e.g. for
 * pinning work to a worker: these keep their thread whatever the pool's size (see
 * net_server_resize). Any thread. */
int net_server_worker_count(const struct net_server *s);
struct net_worker *net_server_worker(struct net_server *s, int i);

/* Monotonic counters and gauges summed over the workers (relaxed reads). Any thread. */
struct net_stats {
    int64_t connections_open;
    int64_t connections_accepted;
    int64_t connections_rejected; /* refused by max.connections / max.connections.per.ip */
    int64_t connections_closed;
    int64_t bytes_in;
    int64_t bytes_out;
    int64_t requests;                  /* frames handed to on_request */
    int64_t responses;                 /* responses completely written */
    int64_t bad_frames;                /* size prefix <= 0 or > max_frame_bytes */
    int64_t queued_response_bytes;     /* gauge: response bytes accepted but not yet written */
    int64_t paused_connections;        /* gauge: connections not read because of backpressure */
    int64_t io_workers;                /* gauge: workers serving connections (the pool's size) */
    int64_t io_threads;                /* gauge: worker threads running */
    int64_t tls_ktls_connections;      /* TLS connections sending through kTLS (SSL_sendfile) */
    int64_t tls_userspace_connections; /* TLS connections encrypting in user space */
    int64_t receive_buffer_bytes;      /* gauge: bytes mapped by the workers' large-frame pools */
    int64_t copied_bytes; /* bytes of responses with file ranges written from a worker's buffer
                             (local_send_copy): the ranges and the bytes around them */
};
void net_server_stats(const struct net_server *s, struct net_stats *out);

/*
 * Resizes the I/O worker pool to n (1..256; num.io.threads at run time). Growing starts
 * workers that accept at once. Shrinking makes the workers above n stop accepting and close
 * their connections (clients reconnect to the others, as Kafka does when it removes network
 * processors); their threads exit once their last requests are answered, except the workers
 * counted by net_server_worker_count(), which keep their thread (idle) for the work pinned to
 * them. Any thread but a worker (it may wait for a shrunk worker's thread to exit). Returns 0,
 * -EINVAL, -ESHUTDOWN, or a negative errno when no worker could be added (then the pool keeps
 * the workers that could be).
 */
int net_server_resize(struct net_server *s, int n);
/* The pool's size (workers serving connections). Any thread. */
int net_server_pool_size(const struct net_server *s);

/* max.connections and max.connections.per.ip changed at run time (0 = unlimited): new
 * connections are admitted against them, open ones are kept (as Kafka does). Any thread. */
void net_server_set_connection_limits(struct net_server *s, int max_total, int max_per_ip);

/*
 * Completes req with a response. *resp must be the complete frame, 4-byte size prefix
 * included; its contents move to net and *resp is left empty (iochain_init'ed), so the caller
 * never frees it. If the chain is out of memory (resp->oom) the connection is closed.
 * req must not be used afterwards. Owning worker thread.
 */
void net_request_reply(struct net_request *req, struct iochain *resp);

/*
 * Like net_request_reply(), then closes the connection once this response is written; no
 * further frame of the connection is read (a refused authentication). Owning worker thread.
 */
void net_request_reply_close(struct net_request *req, struct iochain *resp);

/* Completes req without a response (Kafka produce with acks=0). Owning worker thread. */
void net_request_noreply(struct net_request *req);

/*
 * Completes req by closing the connection (protocol error). The connection stops reading new
 * frames at once; responses of requests that came before req are still sent, then the socket
 * is closed. Owning worker thread.
 */
void net_request_close(struct net_request *req);

/*
 * Calls run(req, arg) once every request that arrived before req on its connection is
 * completed: at once when they are, else from the worker's loop right after the last of them
 * completes. Kafka handles one request of a connection at a time; an answer that steers the
 * client (Metadata: where each partition's leader is) must not be computed while an earlier
 * request of the connection is still parked (an acks=all produce), because it would leave
 * only behind that request's response, seconds later and stale. run must then complete req
 * as a handler does. If the connection closes first, req is freed and run is never called.
 * Owning worker thread; req is pending and not waiting already.
 */
void net_request_run_in_order(struct net_request *req,
                              void (*run)(struct net_request *req, void *arg), void *arg);

/* The worker that owns req (post completions there). Any thread while req is outstanding. */
struct net_worker *net_request_worker(const struct net_request *req);

/* Connection information, for logs and ACLs. Owning worker thread (values are immutable). */
uint64_t net_conn_id(const struct net_conn *c);      /* unique per server, from 1 */
const char *net_conn_peer(const struct net_conn *c); /* "1.2.3.4:5678" or "[::1]:5678" */
struct net_worker *net_conn_worker(const struct net_conn *c);
int net_conn_is_closed(const struct net_conn *c); /* socket closed: replies are dropped */
void *net_conn_user(const struct net_conn *c);    /* per-connection state of the handler */
int net_conn_listener(const struct net_conn *c);  /* index of the listener that accepted it */
/* Limits the size of this connection's next frames (e.g. before authentication, Kafka's
 * sasl.server.max.receive.size); 0 restores the server's max_frame_bytes. */
void net_conn_set_max_frame(struct net_conn *c, int32_t bytes);
/*
 * The subject name (an X509_NAME *, owned by the connection) of the certificate the TLS peer
 * of c presented, or NULL when the connection is not TLS, the peer sent no certificate or the
 * handshake has not finished. Owning worker thread.
 */
const void *net_conn_tls_peer_name(const struct net_conn *c);
void net_conn_set_user(struct net_conn *c, void *user);

/*
 * Mutes c for ms milliseconds: no further frame of it is read or parsed until then (Kafka's
 * channel muting for quota throttling, KIP-219); responses are still written. A later call
 * keeps the later deadline. No-op on a closed connection or for ms <= 0. Owning worker thread.
 */
void net_conn_mute(struct net_conn *c, int64_t ms);
/* A second per-connection pointer for a handler's cache, released with free() when the
 * connection is freed (after on_close). Owning worker thread. */
void *net_conn_cache(const struct net_conn *c);
void net_conn_set_cache(struct net_conn *c, void *cache);

/*
 * Runs fn(arg) on worker w's thread soon (FIFO per worker). Any thread. Returns 0, -ENOMEM, or
 * -ESHUTDOWN once the worker has exited (fn will then never run; the caller keeps arg).
 */
int net_worker_post(struct net_worker *w, void (*fn)(void *arg), void *arg);

/* Index of w in its server, 0 <= i < net_server_worker_count(). Any thread. */
int net_worker_index(const struct net_worker *w);

/*
 * One-shot timer on a worker. The struct belongs to the caller (embed it anywhere) and must
 * stay alive while armed; zero-initialise it before first use. Callbacks run on the worker
 * thread and may start or cancel any timer, including their own.
 */
struct net_timer {
    void (*fn)(struct net_timer *t);
    void *arg;
    /* Private to net. */
    int64_t deadline_ms;
    uint64_t seq;
    int heap_pos; /* 1-based position in the worker's heap; 0 = not armed */
};

/*
 * Arms (or re-arms) t to call fn(t) after delay_ms (<= 0: next loop turn). Worker thread. A
 * timer belongs to the worker it was armed on until it fires or is cancelled; it may then be
 * armed on another worker.
 */
void net_timer_start(struct net_worker *w, struct net_timer *t, int64_t delay_ms,
                     void (*fn)(struct net_timer *t), void *arg);
/* Disarms t; no-op if not armed. Worker thread. */
void net_timer_cancel(struct net_worker *w, struct net_timer *t);
static inline int net_timer_armed(const struct net_timer *t)
{
    return t->heap_pos != 0;
}

#endif
