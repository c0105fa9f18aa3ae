/*
 * What the files of src/net/ may see of each other. Nothing here is for other layers.
 *
 * Ownership: a server owns its workers; a worker owns its connections (and their requests) and
 * its timer heap. A connection is reference counted: one reference while its socket is open,
 * one per request not yet freed, and one while it sits on the worker's to-do list. It is freed
 * (and on_close called) when the count reaches zero.
 */
#ifndef GREGOR_NET_INTERNAL_H
#define GREGOR_NET_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "net/net.h"

#define NET_LOG "net"

#define net_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Something registered in a worker's epoll set; epoll_data.ptr points at it. */
struct net_io {
    int fd;
    void (*on_events)(struct net_io *io, uint32_t events);
};

/* A worker's registration of one of the server's listening sockets. */
struct net_listen_reg {
    struct net_io io;
    struct net_worker *w;
    int index; /* into net_server.listen_fds */
};

/* An IP address as a hashable key (IPv4 stored as family + 4 bytes). */
struct net_ip_key {
    uint8_t family;
    uint8_t addr[16];
};

/* Connection admission: max.connections and max.connections.per.ip across all workers. */
#define NET_ADMIT_BUCKETS 256
struct net_admit_entry {
    struct net_admit_entry *next;
    struct net_ip_key key;
    int count;
};
struct net_admit {
    int max_total;        /* 0 = unlimited */
    int max_per_ip;       /* 0 = unlimited (then the table stays empty) */
    pthread_mutex_t lock; /* guards open and buckets */
    int open;
    struct net_admit_entry *buckets[NET_ADMIT_BUCKETS];
};

/* Written only by the owning worker; read by anyone (relaxed). */
struct net_counters {
    _Atomic int64_t accepted;
    _Atomic int64_t rejected;
    _Atomic int64_t closed;
    _Atomic int64_t bytes_in;
    _Atomic int64_t bytes_out;
    _Atomic int64_t requests;
    _Atomic int64_t responses;
    _Atomic int64_t bad_frames;
    _Atomic int64_t queued_bytes;
    _Atomic int64_t paused;
    _Atomic int64_t tls_ktls;      /* TLS handshakes done whose sends go through kTLS */
    _Atomic int64_t tls_userspace; /* TLS handshakes done encrypting in user space */
    _Atomic int64_t pool_bytes;    /* mapped by the worker's buffer pool (free and out) */
    _Atomic int64_t copied_out;    /* bytes written from copy_buf (net_stats.copied_bytes) */
};

static inline void net_count(_Atomic int64_t *c, int64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

struct net_post {
    struct net_post *next;
    void (*fn)(void *arg);
    void *arg;
};

/* bufpool.c: a worker's warm receive buffers for large frames (see that file). */
#define NET_POOL_MIN_SHIFT 16 /* 64 KiB: smaller frames are copied out of the read buffer */
#define NET_POOL_CLASSES 10   /* up to 32 MiB mappings */
#define NET_POOL_HEADER 64    /* bytes of each mapping before its data */
/* Frames of at least this many bytes get a pooled buffer and are read straight into it. */
#define NET_POOL_MIN ((size_t)(1u << NET_POOL_MIN_SHIFT) - NET_POOL_HEADER)
struct net_buf;
struct net_bufpool {
    struct net_worker *w;
    struct net_buf *free[NET_POOL_CLASSES]; /* free buffers per class */
    size_t free_bytes;                      /* mapped bytes on the free lists */
    int64_t out;                            /* buffers handed out, not yet back */
    size_t out_bytes;                       /* mapped bytes of those buffers */
    size_t peak_out_bytes;                  /* high-water mark of out_bytes since the last
                                             * idle release: what the load needs at once */
    bool taken_since_check;                 /* a get since the release timer last looked */
    struct net_timer timer;                 /* unmaps the free buffers after an idle spell */
};

struct net_worker {
    struct net_server *srv;
    int index;
    int epfd;
    pthread_t thread;
    bool thread_started; /* written by the controlling thread */
    pthread_t self;      /* written by the worker thread itself, for assertions */
    bool self_known;

    struct net_io wake;                                   /* eventfd: posts and stop */
    struct net_listen_reg listen_regs[NET_MAX_LISTENERS]; /* the shared listening sockets */
    bool listening;                                       /* listen_regs are in epfd */
    struct net_timer accept_retry; /* re-enables accepting after EMFILE and the like */
    bool accept_failing;           /* in an accept back-off episode (logged once) */

    uint8_t *rbuf; /* read buffer shared by this worker's connections */
    size_t rbuf_cap;
    uint8_t *copy_buf;       /* NET_COPY_BUFFER bytes through which file ranges go to local peers
                              * (net_config.local_send_copy; else NULL) */
    struct net_bufpool pool; /* buffers of large frames */

    struct net_timer **heap; /* timers, min-heap on (deadline_ms, seq) */
    int heap_len;
    int heap_cap;
    uint64_t timer_seq;

    struct net_conn *idle_head; /* open connections, least recently active first */
    struct net_conn *idle_tail;
    struct net_timer idle_timer;
    int conns_alive; /* connection objects not yet freed */

    struct net_conn *todo; /* connections with deferred work (flush, more to read) */
    struct net_conn *reap; /* connections with no reference left, freed after the batch */

    pthread_mutex_t post_lock; /* guards posts, posts_tail, post_woken, post_closed */
    struct net_post *posts;
    struct net_post *posts_tail;
    bool post_woken;  /* eventfd already written for the current batch */
    bool post_closed; /* worker exited: posts are refused */

    bool stopping;
    int64_t stop_deadline;
    bool serving;  /* accepting and owning connections (index < the server's nactive) */
    bool retiring; /* above the start-up count and shrunk away: the thread exits once idle */

    /* Last: a slot re-used after a shrink and a grow keeps its counters (net_worker_reset). */
    struct net_counters counters;
};

/* Bytes of a worker's copy_buf: a file range goes out this much per pread + write. Small
 * enough to stay in the CPU's cache between the two copies (bench/fetch_vs_iperf.sh: 256 KiB
 * chunks ran at 2,459 MiB/s, 16 MiB ones at 1,518). */
#define NET_COPY_BUFFER (256u << 10)

/* Most I/O workers a server can have (num.io.threads' upper bound). */
#define NET_MAX_WORKERS 256

struct net_server {
    struct net_config cfg; /* defaults applied; cfg.host points at host */
    char *host;
    struct net_handler handler;
    int nlisteners;                    /* listening sockets (cfg.listeners, or host:port) */
    int listen_fds[NET_MAX_LISTENERS]; /* -1 when closed */
    int ports[NET_MAX_LISTENERS];      /* bound ports */
    char *hosts[NET_MAX_LISTENERS];    /* copies of the configured hosts */
    void *tls[NET_MAX_LISTENERS];      /* SSL_CTX * per listener, NULL = plain TCP */
    /*
     * The worker pool (num.io.threads, resizable at run time). workers has NET_MAX_WORKERS
     * slots; slots [0, nworkers) were initialised and keep their epoll set, eventfd, buffers
     * and counters until net_server_free. Workers [0, nactive) serve connections. The first
     * `home` (the start-up count) always keep their thread, because other layers pin work to
     * them (net_server_worker()); a home worker above nactive only runs timers and posts. A
     * worker at or above both stops its thread once its connections are gone; growing again
     * joins and restarts it. Invariant: 1 <= nactive <= nworkers <= NET_MAX_WORKERS.
     */
    _Atomic int nworkers;
    _Atomic int nactive;
    _Atomic int threads_running;
    int home;
    pthread_mutex_t resize_lock; /* serialises net_server_resize and the halt */
    struct net_worker *workers;
    _Atomic uint64_t next_conn_id;
    _Atomic unsigned next_worker; /* round-robin owner of the next accepted connection */
    _Atomic int stopping;
    struct net_admit admit;
    _Atomic bool tls_path_logged; /* the first TLS connection logged its send path */
};

enum net_req_state { NET_REQ_PENDING, NET_REQ_REPLIED, NET_REQ_NOREPLY, NET_REQ_CLOSE };

struct net_conn {
    struct net_io io;
    struct net_worker *w;
    uint64_t id;
    char peer[64];
    struct net_ip_key ip;
    void *user;
    int refs;
    int listener;        /* index of the listening socket that accepted it */
    int32_t max_frame;   /* net_conn_set_max_frame(); 0 = the server's max_frame_bytes */
    struct net_tls *tls; /* TLS state on a TLS listener, else NULL (tls.c) */
    bool send_copy;      /* a peer on this host: file ranges go through the worker's copy_buf */

    bool closed; /* socket closed */
    bool opened; /* on_open was called (so on_close is owed) */
    bool on_todo;
    bool want_read;       /* read when processing the to-do list */
    bool peer_hup;        /* EPOLLRDHUP/EPOLLHUP seen: read on to EOF even after a short read */
    bool want_flush;      /* write when processing the to-do list */
    bool read_paused;     /* backpressure: not reading until the queue drains */
    bool close_requested; /* net_request_close() seen: read no more frames */
    bool drain_close;     /* its worker left the pool: close once the queue is empty */
    bool muted;           /* net_conn_mute(): not reading until mute_timer fires */
    struct net_timer mute_timer;
    void *cache;                /* net_conn_set_cache(), freed with the connection */
    struct net_conn *todo_next; /* on the to-do list, or (refs == 0) on the reap list */

    int64_t last_active; /* clock_mono_ms() of the last byte in or out */
    struct net_conn *idle_prev;
    struct net_conn *idle_next;

    /* Framing state. */
    uint8_t hdr[4];
    int hdr_len;
    int32_t last_frame;          /* size of the last frame begun: picks how to read the next */
    struct net_request *partial; /* frame whose bytes are still arriving */
    size_t partial_got;
    uint8_t *stash; /* bytes read but not parsed because of backpressure */
    size_t stash_len;
    size_t stash_off;

    /* Response queue, in request order; only a completed head is written. */
    struct net_request *q_head;
    struct net_request *q_tail;
    int inflight;         /* requests in the queue */
    int in_order_waiting; /* requests of the queue waiting in net_request_run_in_order() */
    bool want_in_order;   /* a request completed while some wait: run those now due */
    size_t queued_bytes;  /* bytes of replied responses in the queue not yet written */
};

/* worker.c: after a resize, a worker starts or stops serving connections. Worker thread. */
void net_worker_follow_pool(struct net_worker *w);
/* worker.c: a slot whose thread exited, made ready to start again. Controlling thread. */
int net_worker_reset(struct net_worker *w);

/* request.c: resumes reading a paused connection that is back under its limits. */
void net_conn_maybe_resume(struct net_conn *c);

/* admit.c */
void net_admit_init(struct net_admit *a, int max_total, int max_per_ip);
void net_admit_destroy(struct net_admit *a);
/* 0, -ENFILE (max.connections reached) or -EMFILE (max.connections.per.ip reached). */
int net_admit_acquire(struct net_admit *a, const struct net_ip_key *k);
void net_admit_release(struct net_admit *a, const struct net_ip_key *k);
/* New limits (0 = unlimited) for the next connections; open ones stay. Any thread. */
void net_admit_set_limits(struct net_admit *a, int max_total, int max_per_ip);

/* listener.c */
int net_listener_open(struct net_server *s, int index, const char *host, int port);
int net_listener_attach(struct net_worker *w);
void net_listener_detach(struct net_worker *w);
/* Timer callback: watch the listening sockets again after a failure (arg: the worker). */
void net_listener_retry(struct net_timer *t);

/* worker.c */
int net_worker_init(struct net_worker *w, struct net_server *s, int index);
void net_worker_destroy(struct net_worker *w);
/* Refuses every later net_worker_post() (-ESHUTDOWN). Any thread. */
void net_worker_close_posts(struct net_worker *w);
int net_worker_start(struct net_worker *w);
void net_worker_wake(struct net_worker *w);
void net_worker_todo(struct net_worker *w, struct net_conn *c);
bool net_worker_on_thread(const struct net_worker *w);

/* timer.c */
int64_t net_timers_next_timeout(struct net_worker *w, int64_t now);
void net_timers_run(struct net_worker *w);
void net_timers_destroy(struct net_worker *w);

/* conn.c */
void net_conn_accept(struct net_worker *w, int fd, const struct sockaddr_storage *sa, int listener);
void net_conn_ref(struct net_conn *c);
void net_conn_unref(struct net_conn *c);
void net_conn_close(struct net_conn *c, const char *why);
void net_conn_touch(struct net_conn *c);
bool net_conn_over_limits(const struct net_conn *c);
void net_conn_idle_check(struct net_timer *t);
void net_conn_close_all(struct net_worker *w, const char *why);
/* The worker left the pool: each connection closes once it answered what it read. */
void net_conn_drain_all(struct net_worker *w);
void net_conn_reap(struct net_worker *w);

/* conn_read.c */
void net_conn_read(struct net_conn *c);
void net_conn_read_free(struct net_conn *c);

/* bufpool.c; owning worker thread. */
void net_bufpool_init(struct net_bufpool *p, struct net_worker *w);
/* Unmaps the free buffers; buffers still out are not touched. After the worker exited. */
void net_bufpool_destroy(struct net_bufpool *p);
/* A warm buffer of at least `size` bytes, owned by the caller until net_bufpool_put; NULL if
 * size exceeds the largest class or memory is short. */
uint8_t *net_bufpool_get(struct net_bufpool *p, size_t size);
void net_bufpool_put(struct net_bufpool *p, uint8_t *data);

/* request.c */
struct net_request *net_request_new(struct net_conn *c, size_t size);
void net_request_free(struct net_request *req);
void net_request_dispatch(struct net_request *req);
void net_conn_flush(struct net_conn *c);
void net_conn_drop_queue(struct net_conn *c);
/* request.c: runs the requests waiting in net_request_run_in_order() whose turn has come. */
void net_conn_run_in_order(struct net_conn *c);

/* tls.c: TLS on a connection of a TLS listener (OpenSSL). */
struct net_tls;
/* Creates the TLS state of c (server side, handshake not started). 0 or -ENOMEM. */
int net_tls_open(struct net_conn *c, void *ssl_ctx);
void net_tls_free(struct net_conn *c);
/*
 * Reads decrypted bytes (running the handshake first). Returns > 0, 0 at EOF, or -1 with
 * errno: EAGAIN (wait for the socket; see net_tls_wants), EPROTO (TLS failure, logged once
 * with the peer) or the socket's error.
 */
ssize_t net_tls_read(struct net_conn *c, void *buf, size_t len);
/* Encrypts and sends as much of ch as the socket takes; iochain_send's contract. */
int net_tls_send(struct net_conn *c, struct iochain *ch);
/* Which socket readiness an interrupted read (EPOLLOUT) or send (EPOLLIN) waits for. */
bool net_tls_read_wants_write(const struct net_conn *c);
bool net_tls_send_wants_read(const struct net_conn *c);

#endif
