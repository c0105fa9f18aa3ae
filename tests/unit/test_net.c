/*
 * Tests of the network core (src/net/): a server on 127.0.0.1 port 0 with an in-test handler
 * speaking a tiny command protocol, driven by blocking client sockets.
 *
 * Request payload: 1 command byte, a 4-byte big-endian argument, then free bytes.
 *   'E' echo now          'D' echo after arg ms (worker timer)
 *   'P' echo after arg ms, completed from another thread through net_worker_post
 *   'N' no reply          'C' close the connection (net_request_close)
 *   'B' reply with arg bytes of 'b'
 *   'F' reply with arg bytes of the test file (sendfile, or copied with local_send_copy)
 *   'Z' reply with an empty chain (no bytes on the wire)
 *   'O' through net_request_run_in_order: a 1-byte reply, the count of 'D' replies by then
 * A response is the request payload echoed (for E, D, P), framed with its 4-byte size.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "net/net.h"
#include "test.h"

/* ---- in-test handler ---------------------------------------------------------------- */

#define MAX_HELPERS 64

struct test_srv {
    struct net_server *srv;
    int port;
    int file_fd; /* for 'F' */
    atomic_int file_releases;
    atomic_int closes; /* on_close calls */
    atomic_int opens;
    atomic_int opens_per_worker[4];
    atomic_int timer_echoes;  /* 'D' replies */
    atomic_int in_order_runs; /* 'O' requests handed to their run function */
    char last_peer[64];       /* written by on_open, under lock */
    uint64_t last_id;
    pthread_t helpers[MAX_HELPERS];
    atomic_int nhelpers;
    pthread_mutex_t lock;
};

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void reply_echo(struct net_request *req)
{
    struct iochain ch;
    iochain_init(&ch);
    uint8_t hdr[4];
    put_be32(hdr, (uint32_t)req->size);
    iochain_append(&ch, hdr, 4);
    iochain_append(&ch, req->frame, req->size);
    net_request_reply(req, &ch);
}

static void reply_bytes(struct net_request *req, uint32_t n)
{
    struct iochain ch;
    iochain_init(&ch);
    uint8_t *p = iochain_reserve(&ch, 4 + (size_t)n);
    if (p) {
        put_be32(p, n);
        memset(p + 4, 'b', n);
    }
    net_request_reply(req, &ch);
}

static void file_release(void *ctx)
{
    struct test_srv *t = ctx;
    atomic_fetch_add(&t->file_releases, 1);
}

static void reply_file(struct test_srv *t, struct net_request *req, uint32_t n)
{
    struct iochain ch;
    iochain_init(&ch);
    uint8_t hdr[5];
    put_be32(hdr, n + 1);
    hdr[4] = 'F';
    iochain_append(&ch, hdr, 5);
    iochain_append_file(&ch, t->file_fd, 7, n, file_release, t);
    net_request_reply(req, &ch);
}

static void on_timer_echo(struct net_timer *tm)
{
    struct net_request *req = tm->arg;
    struct test_srv *t = req->user;
    atomic_fetch_add(&t->timer_echoes, 1);
    reply_echo(req);
}

static void run_in_order_count(struct net_request *req, void *arg)
{
    struct test_srv *t = arg;
    atomic_fetch_add(&t->in_order_runs, 1);
    struct iochain ch;
    iochain_init(&ch);
    uint8_t out[5];
    put_be32(out, 1);
    out[4] = (uint8_t)atomic_load(&t->timer_echoes);
    iochain_append(&ch, out, 5);
    net_request_reply(req, &ch);
}

static void on_timer_short(struct net_timer *tm)
{
    reply_bytes(tm->arg, 1);
}

static void on_post_echo(void *arg)
{
    reply_echo(arg);
}

struct helper_arg {
    struct net_worker *w;
    struct net_request *req;
    int delay_ms;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void *helper_thread(void *p)
{
    struct helper_arg a = *(struct helper_arg *)p;
    free(p);
    sleep_ms(a.delay_ms);
    if (net_worker_post(a.w, on_post_echo, a.req) != 0)
        abort();
    return NULL;
}

static void test_on_request(void *ctx, struct net_request *req)
{
    struct test_srv *t = ctx;
    if (req->size < 5) {
        net_request_close(req);
        return;
    }
    uint32_t arg = get_be32(req->frame + 1);
    switch (req->frame[0]) {
    case 'E':
        reply_echo(req);
        break;
    case 'D': {
        req->user = t;
        struct net_timer *tm = arena_calloc(&req->arena, 1, sizeof(*tm));
        net_timer_start(net_request_worker(req), tm, arg, on_timer_echo, req);
        break;
    }
    case 'S': { /* like 'D', but a 1-byte reply: parked requests whose answer is small */
        struct net_timer *tm = arena_calloc(&req->arena, 1, sizeof(*tm));
        net_timer_start(net_request_worker(req), tm, arg, on_timer_short, req);
        break;
    }
    case 'P': {
        struct helper_arg *a = malloc(sizeof(*a));
        a->w = net_request_worker(req);
        a->req = req;
        a->delay_ms = (int)arg;
        int i = atomic_fetch_add(&t->nhelpers, 1);
        if (i >= MAX_HELPERS || pthread_create(&t->helpers[i], NULL, helper_thread, a) != 0)
            abort();
        break;
    }
    case 'N':
        net_request_noreply(req);
        break;
    case 'C':
        net_request_close(req);
        break;
    case 'B':
        reply_bytes(req, arg);
        break;
    case 'F':
        reply_file(t, req, arg);
        break;
    case 'O':
        net_request_run_in_order(req, run_in_order_count, t);
        break;
    case 'Z': { /* an empty chain: nothing at all goes on the wire */
        struct iochain ch;
        iochain_init(&ch);
        net_request_reply(req, &ch);
        break;
    }
    default:
        net_request_close(req);
    }
}

static int test_on_open(void *ctx, struct net_conn *c)
{
    struct test_srv *t = ctx;
    atomic_fetch_add(&t->opens, 1);
    int i = net_worker_index(net_conn_worker(c));
    if (i < 4)
        atomic_fetch_add(&t->opens_per_worker[i], 1);
    pthread_mutex_lock(&t->lock);
    snprintf(t->last_peer, sizeof(t->last_peer), "%s", net_conn_peer(c));
    t->last_id = net_conn_id(c);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

static void test_on_close(void *ctx, struct net_conn *c)
{
    struct test_srv *t = ctx;
    atomic_fetch_add(&t->closes, 1);
}

static int srv_start(struct test_srv *t, struct net_config *cfg)
{
    memset(t, 0, sizeof(*t));
    pthread_mutex_init(&t->lock, NULL);
    t->file_fd = -1;
    if (cfg->host == NULL)
        cfg->host = "127.0.0.1";
    cfg->port = 0;
    if (cfg->num_workers == 0)
        cfg->num_workers = 2;
    struct net_handler h = {.on_request = test_on_request,
                            .on_open = test_on_open,
                            .on_close = test_on_close,
                            .ctx = t};
    int rc = net_server_start(cfg, &h, &t->srv);
    if (rc == 0)
        t->port = net_server_port(t->srv);
    return rc;
}

static void srv_stop(struct test_srv *t)
{
    net_server_stop(t->srv);
    int n = atomic_load(&t->nhelpers);
    for (int i = 0; i < n && i < MAX_HELPERS; i++)
        pthread_join(t->helpers[i], NULL);
    net_server_free(t->srv); /* after the helpers: they may post until they end */
    if (t->file_fd >= 0)
        close(t->file_fd);
    pthread_mutex_destroy(&t->lock);
}

static struct net_stats stats(struct test_srv *t)
{
    struct net_stats s;
    net_server_stats(t->srv, &s);
    return s;
}

/* ---- client helpers ----------------------------------------------------------------- */

static int cli_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Returns bytes read (== len), 0 on EOF before anything, -1 on error/timeout/short EOF. */
static ssize_t read_all(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, p + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0 && got == 0)
            return 0;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Builds "size | cmd | arg | data" into out; returns the total length. */
static size_t build_req(uint8_t *out, char cmd, uint32_t arg, const void *data, size_t dlen)
{
    put_be32(out, (uint32_t)(5 + dlen));
    out[4] = (uint8_t)cmd;
    put_be32(out + 5, arg);
    if (dlen)
        memcpy(out + 9, data, dlen);
    return 9 + dlen;
}

static int send_req(int fd, char cmd, uint32_t arg, const void *data, size_t dlen)
{
    uint8_t buf[9 + 256];
    if (dlen > 256)
        return -1;
    return write_all(fd, buf, build_req(buf, cmd, arg, data, dlen));
}

/* Reads one response frame into buf (cap bytes); returns its size, or -1. */
static ssize_t recv_resp(int fd, uint8_t *buf, size_t cap)
{
    uint8_t hdr[4];
    if (read_all(fd, hdr, 4) != 4)
        return -1;
    uint32_t n = get_be32(hdr);
    if (n > cap)
        return -1;
    if (n > 0 && read_all(fd, buf, n) != (ssize_t)n)
        return -1;
    return (ssize_t)n;
}

/* True if the server closes fd within timeout_ms (EOF or reset), reading and dropping data. */
static int closed_by_server(int fd, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    uint8_t buf[4096];
    while (clock_mono_ms() < end) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, (int)(end - clock_mono_ms()));
        if (r <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
    }
    return 0;
}

static int wait_until(int (*cond)(struct test_srv *), struct test_srv *t, int timeout_ms)
{
    int64_t end = clock_mono_ms() + timeout_ms;
    while (clock_mono_ms() < end) {
        if (cond(t))
            return 1;
        sleep_ms(5);
    }
    return cond(t);
}

/* ---- tests ---------------------------------------------------------------------------- */

TEST(test_echo_request_gets_its_response)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    CHECK(t.port > 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    CHECK_EQ_INT(send_req(fd, 'E', 42, "hello", 5), 0);
    uint8_t buf[64];
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 10);
    CHECK_EQ_INT(buf[0], 'E');
    CHECK_EQ_INT(get_be32(buf + 1), 42);
    CHECK_MEM(buf + 5, "hello", 5);
    close(fd);
    srv_stop(&t);
}

TEST(test_pipelined_responses_keep_request_order_when_completed_in_reverse)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    /* Five requests in one write; each completes by timer, the last one first. */
    uint8_t out[5 * 10];
    size_t len = 0;
    for (int i = 0; i < 5; i++) {
        uint8_t tag = (uint8_t)('0' + i);
        len += build_req(out + len, 'D', (uint32_t)(250 - 50 * i), &tag, 1);
    }
    CHECK_EQ_INT(write_all(fd, out, len), 0);
    for (int i = 0; i < 5; i++) {
        uint8_t buf[16];
        CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 6);
        CHECK_EQ_INT(buf[5], '0' + i);
    }
    close(fd);
    srv_stop(&t);
}

static int one_bad_frame_and_conn_freed(struct test_srv *t)
{
    struct net_stats s = stats(t);
    return s.bad_frames == 1 && atomic_load(&t->closes) == 1;
}

TEST(test_frame_larger_than_limit_closes_connection_and_server_serves_others)
{
    struct test_srv t;
    struct net_config cfg = {.max_frame_bytes = 1024};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int bad = cli_connect(t.port);
    int good = cli_connect(t.port);
    CHECK(bad >= 0 && good >= 0);
    uint8_t hdr[4];
    put_be32(hdr, 1025);
    CHECK_EQ_INT(write_all(bad, hdr, 4), 0);
    CHECK(closed_by_server(bad, 2000));
    CHECK(wait_until(one_bad_frame_and_conn_freed, &t, 2000));
    CHECK_EQ_INT(send_req(good, 'E', 1, "x", 1), 0);
    uint8_t buf[16];
    CHECK_EQ_INT(recv_resp(good, buf, sizeof(buf)), 6);
    close(bad);
    close(good);
    srv_stop(&t);
}

static int one_conn_freed(struct test_srv *t)
{
    return atomic_load(&t->closes) == 1;
}

static int two_conns_freed(struct test_srv *t)
{
    return atomic_load(&t->closes) == 2;
}

TEST(test_zero_and_negative_frame_sizes_close_connection)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int a = cli_connect(t.port), b = cli_connect(t.port);
    CHECK(a >= 0 && b >= 0);
    uint8_t zero[4] = {0, 0, 0, 0}, neg[4] = {0xff, 0xff, 0xff, 0xfe};
    CHECK_EQ_INT(write_all(a, zero, 4), 0);
    CHECK_EQ_INT(write_all(b, neg, 4), 0);
    CHECK(closed_by_server(a, 2000));
    CHECK(closed_by_server(b, 2000));
    CHECK(wait_until(two_conns_freed, &t, 2000));
    CHECK_EQ_INT(stats(&t).bad_frames, 2);
    close(a);
    close(b);
    srv_stop(&t);
}

TEST(test_garbage_bytes_close_connection)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"; /* "GET " = 1195725856 > 100 MB */
    CHECK_EQ_INT(write_all(fd, junk, strlen(junk)), 0);
    CHECK(closed_by_server(fd, 2000));
    CHECK(wait_until(one_conn_freed, &t, 2000));
    CHECK_EQ_INT(stats(&t).bad_frames, 1);
    close(fd);
    srv_stop(&t);
}

TEST(test_truncated_frame_then_client_close_frees_everything)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    uint8_t out[4 + 10];
    put_be32(out, 100000); /* promises 100000 bytes, sends 10 */
    memset(out + 4, 'E', 10);
    CHECK_EQ_INT(write_all(fd, out, sizeof(out)), 0);
    sleep_ms(50);
    close(fd);
    CHECK(wait_until(one_conn_freed, &t, 2000));
    struct net_stats s = stats(&t);
    CHECK_EQ_INT(s.requests, 0);
    CHECK_EQ_INT(s.connections_open, 0);
    srv_stop(&t); /* ASan's leak check covers the partial request */
}

TEST(test_many_pipelined_frames_in_one_write_are_all_answered_in_order)
{
    struct test_srv t;
    struct net_config cfg = {.max_inflight_per_conn = 16};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    enum { N = 2000 };
    static uint8_t out[N * 13];
    size_t len = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint8_t d[4];
        put_be32(d, i);
        len += build_req(out + len, i % 3 == 1 ? 'D' : 'E', i % 3 == 1 ? 1 : 0, d, 4);
    }
    CHECK_EQ_INT(write_all(fd, out, len), 0);
    for (uint32_t i = 0; i < N; i++) {
        uint8_t buf[16];
        CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 9);
        CHECK_EQ_INT(get_be32(buf + 5), i);
    }
    close(fd);
    srv_stop(&t);
}

TEST(test_large_frame_round_trip)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    size_t n = 8u << 20;
    uint8_t *out = malloc(9 + n), *in = malloc(5 + n);
    CHECK(out && in);
    for (size_t i = 0; i < n; i++)
        out[9 + i] = (uint8_t)(i * 7);
    build_req(out, 'E', 0, NULL, 0);
    put_be32(out, (uint32_t)(5 + n));
    int ok = write_all(fd, out, 9 + n) == 0 && recv_resp(fd, in, 5 + n) == (ssize_t)(5 + n) &&
             memcmp(in + 5, out + 9, n) == 0;
    free(out);
    free(in);
    CHECK(ok);
    close(fd);
    srv_stop(&t);
}

/* Frames of every size around the large-frame threshold (64 KiB less the pool's header: read
 * straight into a pooled buffer), small ones between them (copied out of the shared buffer), one
 * over the largest pool class (plain malloc), written in chunks of random length so size
 * prefixes and frames are split everywhere: every echo must come back byte-exact and in order.
 * Then, idle, the pool must give its buffers back (the receive-buffer gauge falls to 0). */
static const size_t mixed_sizes[] = {70000,   10,       65472,     65471, 65473,  1u << 20,
                                     20,      3u << 20, 33u << 20, 100,   200000, 5,
                                     1000100, 1000100,  1000100,   64,    65536};
#define MIXED_N (sizeof(mixed_sizes) / sizeof(mixed_sizes[0]))

static uint8_t mixed_byte(size_t frame, size_t i)
{
    return (uint8_t)(frame * 31 + i * 7 + (i >> 9));
}

struct mixed_writer {
    int fd;
    int rc;
};

static void *mixed_write(void *arg)
{
    struct mixed_writer *mw = arg;
    unsigned seed = 12345;
    mw->rc = 0;
    for (size_t f = 0; f < MIXED_N && mw->rc == 0; f++) {
        size_t n = mixed_sizes[f]; /* data bytes after the 5-byte command */
        uint8_t *buf = malloc(9 + n);
        if (buf == NULL) {
            mw->rc = -1;
            break;
        }
        build_req(buf, 'E', 0, NULL, 0);
        put_be32(buf, (uint32_t)(5 + n));
        for (size_t i = 0; i < n; i++)
            buf[9 + i] = mixed_byte(f, i);
        for (size_t off = 0; off < 9 + n && mw->rc == 0;) {
            size_t chunk = 1 + (size_t)rand_r(&seed) % (seed % 4 == 0 ? 3 : 150000);
            if (chunk > 9 + n - off)
                chunk = 9 + n - off;
            mw->rc = write_all(mw->fd, buf + off, chunk);
            off += chunk;
        }
        free(buf);
    }
    return NULL;
}

static int pool_released(struct test_srv *t)
{
    return stats(t).receive_buffer_bytes == 0;
}

TEST(test_large_and_small_frames_split_anywhere_echo_byte_exact_and_pool_releases_when_idle)
{
    struct test_srv t;
    struct net_config cfg = {.max_inflight_per_conn = 64};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    struct timeval tv = {60, 0}; /* 70 MiB each way on a loaded machine: not the 5 s default */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct mixed_writer mw = {.fd = fd};
    pthread_t th;
    CHECK_EQ_INT(pthread_create(&th, NULL, mixed_write, &mw), 0);
    uint8_t *in = malloc(5 + (34u << 20));
    CHECK(in != NULL);
    int short_resp = -1, bad_byte = -1;
    for (size_t f = 0; f < MIXED_N && short_resp < 0 && bad_byte < 0; f++) {
        size_t n = mixed_sizes[f];
        if (recv_resp(fd, in, 5 + (34u << 20)) != (ssize_t)(5 + n)) {
            short_resp = (int)f;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (in[5 + i] != mixed_byte(f, i)) {
                bad_byte = (int)f;
                break;
            }
    }
    pthread_join(th, NULL);
    free(in);
    CHECK_EQ_INT(mw.rc, 0);
    CHECK_EQ_INT(short_resp, -1);
    CHECK_EQ_INT(bad_byte, -1);
    CHECK(stats(&t).receive_buffer_bytes > 0); /* the large frames went through the pool */
    CHECK(wait_until(pool_released, &t, 10000));
    close(fd);
    srv_stop(&t);
}

/*
 * What acks=all does to the pool: a client keeps many large requests parked at once, they are
 * answered together, and the next wave comes. Tried: three waves of 24 parked ~900 KiB frames
 * (24 MiB of 1 MiB buffers, more than the pool's 16 MiB floor). The pool keeps what the load
 * needed at once, so the later waves reuse the first wave's buffers: the mapped bytes do not
 * grow after the first wave and the free ones are not given back between waves.
 */
#define WAVE_N 24
#define WAVE_BYTES (900u << 10)
TEST(test_pool_keeps_a_wave_of_parked_large_frames_for_the_next)
{
    struct test_srv t;
    struct net_config cfg = {.max_inflight_per_conn = 64, .num_workers = 1};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    uint8_t *req = calloc(1, 9 + WAVE_BYTES);
    CHECK(req != NULL);
    build_req(req, 'S', 1000, NULL, 0); /* parked long enough for the whole wave to be read,
                                         * even under ThreadSanitizer on a loaded machine */
    put_be32(req, 5 + WAVE_BYTES);
    int64_t after_first = 0;
    for (int wave = 0; wave < 3; wave++) {
        for (int i = 0; i < WAVE_N; i++)
            CHECK_EQ_INT(write_all(fd, req, 9 + WAVE_BYTES), 0);
        for (int i = 0; i < WAVE_N; i++) {
            uint8_t buf[16];
            CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 1);
        }
        int64_t mapped = (int64_t)stats(&t).receive_buffer_bytes;
        if (wave == 0)
            after_first = mapped;
        CHECK(mapped >= (int64_t)WAVE_N << 20); /* all 24 kept: none unmapped on return */
        CHECK_EQ_INT(mapped, after_first);      /* and reused: none mapped afresh */
    }
    free(req);
    CHECK(wait_until(pool_released, &t, 10000)); /* an idle spell still gives it all back */
    close(fd);
    srv_stop(&t);
}

TEST(test_mixed_sync_async_and_noreply_requests_answer_in_order)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    uint8_t out[64];
    size_t len = 0;
    len += build_req(out + len, 'P', 150, "a", 1); /* completed from another thread */
    len += build_req(out + len, 'E', 0, "b", 1);
    len += build_req(out + len, 'N', 0, "-", 1); /* no response at all */
    len += build_req(out + len, 'D', 60, "c", 1);
    len += build_req(out + len, 'P', 10, "d", 1);
    CHECK_EQ_INT(write_all(fd, out, len), 0);
    const char *want = "abcd";
    for (int i = 0; i < 4; i++) {
        uint8_t buf[16];
        CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 6);
        CHECK_EQ_INT(buf[5], want[i]);
    }
    close(fd);
    srv_stop(&t);
}

/* A request run in order (Kafka's one-at-a-time, as Metadata is) runs only after the parked
 * requests before it are answered, and then at once; the requests after it are not held. */
TEST(test_in_order_request_runs_after_the_parked_requests_before_it)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    uint8_t out[64], buf[16];
    size_t len = build_req(out, 'O', 0, NULL, 0); /* nothing before it: runs at once */
    CHECK_EQ_INT(write_all(fd, out, len), 0);
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 1);
    CHECK_EQ_INT(buf[0], 0);
    len = 0;
    len += build_req(out + len, 'D', 300, "a", 1); /* parked 300 ms */
    len += build_req(out + len, 'D', 100, "b", 1);
    len += build_req(out + len, 'O', 0, NULL, 0); /* must see both D answered */
    len += build_req(out + len, 'E', 0, "c", 1);  /* handled at once, answered in order */
    len += build_req(out + len, 'O', 0, NULL, 0);
    CHECK_EQ_INT(write_all(fd, out, len), 0);
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 6);
    CHECK_EQ_INT(buf[5], 'a');
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 6);
    CHECK_EQ_INT(buf[5], 'b');
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 1);
    CHECK_EQ_INT(buf[0], 2); /* ran after both parked requests were answered */
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 6);
    CHECK_EQ_INT(buf[5], 'c');
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 1);
    CHECK_EQ_INT(buf[0], 2);
    CHECK_EQ_INT(atomic_load(&t.in_order_runs), 3);
    close(fd);
    srv_stop(&t);
}

/* A request waiting for its turn when the client goes away is freed by net, never run; the
 * connection is still released once the parked request before it completes. */
TEST(test_in_order_request_waiting_when_the_connection_closes_is_never_run)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    uint8_t out[64];
    size_t len = 0;
    len += build_req(out + len, 'D', 200, "a", 1);
    len += build_req(out + len, 'O', 0, NULL, 0);
    CHECK_EQ_INT(write_all(fd, out, len), 0);
    sleep_ms(50); /* both read by the server */
    close(fd);
    CHECK(wait_until(one_conn_freed, &t, 5000));
    CHECK_EQ_INT(atomic_load(&t.timer_echoes), 1); /* the parked one completed, as an orphan */
    CHECK_EQ_INT(atomic_load(&t.in_order_runs), 0);
    srv_stop(&t);
}

TEST(test_close_request_sends_earlier_responses_then_closes)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    uint8_t out[64];
    size_t len = 0;
    len += build_req(out + len, 'D', 100, "a", 1);
    len += build_req(out + len, 'C', 0, "b", 1);
    len += build_req(out + len, 'E', 0, "c", 1); /* after the close: never answered */
    CHECK_EQ_INT(write_all(fd, out, len), 0);
    uint8_t buf[16];
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 6);
    CHECK_EQ_INT(buf[5], 'a');
    CHECK(closed_by_server(fd, 2000));
    close(fd);
    srv_stop(&t);
}

TEST(test_request_outstanding_when_client_disconnects_is_freed_on_completion)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    CHECK_EQ_INT(send_req(fd, 'D', 300, "x", 1), 0);
    CHECK_EQ_INT(send_req(fd, 'P', 300, "y", 1), 0);
    sleep_ms(50);
    close(fd);
    sleep_ms(100);
    /* The socket is closed but the connection object lives until the handler is done. */
    CHECK_EQ_INT(stats(&t).connections_open, 0);
    CHECK_EQ_INT(atomic_load(&t.closes), 0);
    CHECK(wait_until(one_conn_freed, &t, 3000));
    srv_stop(&t);
}

TEST(test_idle_connection_is_closed_after_idle_ms)
{
    struct test_srv t;
    struct net_config cfg = {.idle_ms = 200};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    int64_t t0 = clock_mono_ms();
    CHECK(closed_by_server(fd, 3000));
    int64_t waited = clock_mono_ms() - t0;
    CHECK(waited >= 150 && waited < 2000);
    close(fd);
    srv_stop(&t);
}

TEST(test_idle_timeout_spares_active_and_busy_connections)
{
    struct test_srv t;
    struct net_config cfg = {.idle_ms = 200, .num_workers = 1};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int busy = cli_connect(t.port), chatty = cli_connect(t.port);
    CHECK(busy >= 0 && chatty >= 0);
    CHECK_EQ_INT(send_req(busy, 'D', 600, "z", 1), 0); /* outstanding longer than idle_ms */
    for (int i = 0; i < 8; i++) {                      /* traffic every 100 ms */
        uint8_t buf[16];
        CHECK_EQ_INT(send_req(chatty, 'E', 0, "c", 1), 0);
        CHECK_EQ_INT(recv_resp(chatty, buf, sizeof(buf)), 6);
        sleep_ms(100);
    }
    uint8_t buf[16];
    CHECK_EQ_INT(recv_resp(busy, buf, sizeof(buf)), 6);
    CHECK_EQ_INT(buf[5], 'z');
    CHECK(closed_by_server(busy, 2000)); /* idle once answered */
    close(busy);
    close(chatty);
    srv_stop(&t);
}

static int paused_one(struct test_srv *t)
{
    return stats(t).paused_connections == 1;
}

static int paused_none(struct test_srv *t)
{
    return stats(t).paused_connections == 0;
}

static int queue_empty(struct test_srv *t)
{
    return stats(t).queued_response_bytes == 0;
}

TEST(test_client_that_never_reads_is_bounded_by_backpressure)
{
    struct test_srv t;
    const size_t limit = 256 << 10, resp = 64 << 10;
    struct net_config cfg = {.max_pending_bytes_per_conn = limit, .max_inflight_per_conn = 1000};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int slow = cli_connect(t.port), other = cli_connect(t.port);
    CHECK(slow >= 0 && other >= 0);
    int small = 16 << 10;
    setsockopt(slow, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    fcntl(slow, F_SETFL, O_NONBLOCK);
    /* Ask for 64 KiB responses as fast as the server takes requests, never reading. */
    uint8_t req[9];
    build_req(req, 'B', (uint32_t)resp, NULL, 0);
    int sent = 0;
    int64_t end = clock_mono_ms() + 1500;
    while (clock_mono_ms() < end && sent < 100000) {
        ssize_t w = write(slow, req, sizeof(req)); /* 9-byte requests never split here */
        if (w == (ssize_t)sizeof(req))
            sent++;
        else
            sleep_ms(1);
    }
    CHECK(wait_until(paused_one, &t, 2000));
    struct net_stats s1 = stats(&t);
    CHECK(s1.queued_response_bytes > 0);
    CHECK(s1.queued_response_bytes <= (int64_t)(limit + resp));
    CHECK(s1.requests < sent); /* the rest waits in socket buffers, not in broker memory */
    /* Other connections are unaffected. */
    for (int i = 0; i < 20; i++) {
        uint8_t buf[16];
        CHECK_EQ_INT(send_req(other, 'E', 0, "o", 1), 0);
        CHECK_EQ_INT(recv_resp(other, buf, sizeof(buf)), 6);
    }
    sleep_ms(200);
    struct net_stats s2 = stats(&t);
    CHECK_EQ_INT(s2.requests, s1.requests + 20); /* the slow client made no progress */
    /* Once the client reads, the server resumes: the next responses come, in order and
     * whole. Reading all of them (up to 100,000 x 64 KiB) adds nothing but minutes under the
     * sanitizers, so the client reads far past what the buffers held when it stopped (the
     * limit, the kernel's socket buffers: a few MiB) and then hangs up. */
    fcntl(slow, F_SETFL, 0);
    static uint8_t big[64 << 10];
    int reads = sent < 512 ? sent : 512;
    for (int i = 0; i < reads; i++)
        CHECK_EQ_INT(recv_resp(slow, big, sizeof(big)), resp);
    CHECK(stats(&t).requests > s2.requests); /* it read requests again */
    close(slow);
    /* The hang-up releases what was queued for it, paused or not. */
    CHECK(wait_until(paused_none, &t, 2000));
    CHECK(wait_until(queue_empty, &t, 2000));
    close(other);
    srv_stop(&t);
}

static int file_released(struct test_srv *t)
{
    return atomic_load(&t->file_releases) == 1;
}

/* A server (local_send_copy = copy) whose 'F' replies come from a file holding content. */
static int srv_start_with_file(struct test_srv *t, bool copy, const void *content, size_t len)
{
    struct net_config cfg = {.local_send_copy = copy};
    if (srv_start(t, &cfg) != 0)
        return -1;
    char path[] = "/tmp/gregor-test-net-XXXXXX";
    t->file_fd = mkstemp(path);
    if (t->file_fd < 0)
        return -1;
    unlink(path);
    return write_all(t->file_fd, content, len);
}

/*
 * A 3 MiB file range (many 256 KiB rounds of the copy buffer) goes to a client on 127.0.0.1
 * that reads slowly through a small receive buffer, so the server's writes come up short and
 * resume mid-range. With local_send_copy the bytes must go by pread + write and be counted as
 * copied; without it by sendfile, nothing copied. Either way byte for byte what the file holds
 * from offset 7, and the file is released once.
 */
static void file_range_round_trip(int *failed_, bool copy)
{
    struct test_srv t;
    size_t flen = 3u << 20;
    uint8_t *content = malloc(flen);
    CHECK(content);
    for (size_t i = 0; i < flen; i++)
        content[i] = (uint8_t)(i * 31 + 5);
    CHECK_EQ_INT(srv_start_with_file(&t, copy, content, flen), 0);
    int fd = cli_connect(t.port);
    int small = 8192;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    uint32_t n = (uint32_t)(flen - 100); /* from offset 7 */
    uint8_t *in = malloc(n + 1);
    int ok = fd >= 0 && in && send_req(fd, 'F', n, NULL, 0) == 0;
    sleep_ms(100); /* the server fills the socket and waits for it to drain */
    ok = ok && recv_resp(fd, in, n + 1) == (ssize_t)(n + 1) && in[0] == 'F' &&
         memcmp(in + 1, content + 7, n) == 0;
    free(content);
    free(in);
    CHECK(ok);
    CHECK(wait_until(file_released, &t, 2000));
    struct net_stats st = stats(&t);
    CHECK(st.bytes_out >= (int64_t)n + 5);
    CHECK_EQ_INT(st.copied_bytes, copy ? (int64_t)n + 5 : 0); /* the header is copied too */
    close(fd);
    srv_stop(&t);
}

TEST(test_file_range_response_is_sent_from_the_file)
{
    file_range_round_trip(failed_, false);
}

TEST(test_file_range_to_a_local_peer_goes_through_the_copy_buffer_when_asked)
{
    file_range_round_trip(failed_, true);
}

/*
 * A file range that ends early (the segment was cut under the response) closes the connection
 * on both send paths: sendfile after the bytes the file still had, the copy path before the
 * chunk that would run past the end. Never bytes from past the file's end.
 */
static void short_file_closes(int *failed_, bool copy)
{
    struct test_srv t;
    uint8_t content[1000];
    memset(content, 'x', sizeof(content));
    CHECK_EQ_INT(srv_start_with_file(&t, copy, content, sizeof(content)), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    CHECK_EQ_INT(send_req(fd, 'F', 5000, NULL, 0), 0); /* 4,000 bytes past the end */
    uint8_t buf[8192];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    /* sendfile: the header, then the file from 7 to its end; copy: nothing */
    CHECK_EQ_INT((int64_t)got, copy ? 0 : 5 + 993);
    for (size_t i = 5; i < got; i++)
        CHECK_EQ_INT(buf[i], 'x');
    CHECK(wait_until(file_released, &t, 2000));
    close(fd);
    srv_stop(&t);
}

TEST(test_file_range_past_the_end_of_the_file_closes_the_connection)
{
    short_file_closes(failed_, false);
    short_file_closes(failed_, true);
}

struct post_probe {
    atomic_int ran;
    pthread_t thread;
    struct net_worker *w;
    struct net_timer timers[3];
    int order[3];
    int norder;
};

static void probe_fn(void *arg)
{
    struct post_probe *p = arg;
    p->thread = pthread_self();
    atomic_store(&p->ran, 1);
}

TEST(test_worker_post_from_another_thread_runs_on_the_worker)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    CHECK_EQ_INT(net_server_worker_count(t.srv), 2);
    struct post_probe p = {0};
    CHECK_EQ_INT(net_worker_post(net_server_worker(t.srv, 1), probe_fn, &p), 0);
    int64_t end = clock_mono_ms() + 2000;
    while (!atomic_load(&p.ran) && clock_mono_ms() < end)
        sleep_ms(1);
    CHECK(atomic_load(&p.ran));
    CHECK(!pthread_equal(p.thread, pthread_self()));
    srv_stop(&t);
}

static void probe_timer(struct net_timer *tm)
{
    struct post_probe *p = tm->arg;
    p->order[p->norder++] = (int)(tm - p->timers);
    if (p->norder == 2)
        atomic_store(&p->ran, 1);
}

static void probe_arm(void *arg)
{
    struct post_probe *p = arg;
    net_timer_start(p->w, &p->timers[0], 80, probe_timer, p);
    net_timer_start(p->w, &p->timers[1], 20, probe_timer, p);
    net_timer_start(p->w, &p->timers[2], 40, probe_timer, p);
    net_timer_cancel(p->w, &p->timers[1]);
    net_timer_start(p->w, &p->timers[1], 10, probe_timer, p); /* re-armed */
    net_timer_cancel(p->w, &p->timers[2]);
}

TEST(test_timers_fire_in_deadline_order_and_cancel_works)
{
    struct test_srv t;
    struct net_config cfg = {.num_workers = 1};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    struct post_probe p = {0};
    p.w = net_server_worker(t.srv, 0);
    CHECK_EQ_INT(net_worker_post(p.w, probe_arm, &p), 0);
    int64_t end = clock_mono_ms() + 2000;
    while (!atomic_load(&p.ran) && clock_mono_ms() < end)
        sleep_ms(1);
    sleep_ms(100); /* a cancelled timer would fire by now */
    CHECK(atomic_load(&p.ran));
    CHECK_EQ_INT(p.norder, 2);
    CHECK_EQ_INT(p.order[0], 1);
    CHECK_EQ_INT(p.order[1], 0);
    srv_stop(&t);
}

static int rejected_one(struct test_srv *t)
{
    return stats(t).connections_rejected == 1;
}

TEST(test_max_connections_per_ip_rejects_extra_connection)
{
    struct test_srv t;
    struct net_config cfg = {.max_connections_per_ip = 2};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int a = cli_connect(t.port), b = cli_connect(t.port);
    CHECK(a >= 0 && b >= 0);
    uint8_t buf[16];
    CHECK_EQ_INT(send_req(a, 'E', 0, "a", 1), 0); /* make sure both are accepted */
    CHECK_EQ_INT(recv_resp(a, buf, sizeof(buf)), 6);
    CHECK_EQ_INT(send_req(b, 'E', 0, "b", 1), 0);
    CHECK_EQ_INT(recv_resp(b, buf, sizeof(buf)), 6);
    int c = cli_connect(t.port);
    CHECK(c >= 0);
    CHECK(closed_by_server(c, 2000));
    CHECK(wait_until(rejected_one, &t, 2000));
    close(c);
    close(a);
    CHECK(wait_until(one_conn_freed, &t, 2000)); /* a's slot is free again */
    int d = cli_connect(t.port);
    CHECK(d >= 0);
    CHECK_EQ_INT(send_req(d, 'E', 0, "d", 1), 0);
    CHECK_EQ_INT(recv_resp(d, buf, sizeof(buf)), 6);
    close(b);
    close(d);
    srv_stop(&t);
}

TEST(test_max_connections_rejects_connection_over_the_total)
{
    struct test_srv t;
    struct net_config cfg = {.max_connections = 1};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int a = cli_connect(t.port);
    CHECK(a >= 0);
    uint8_t buf[16];
    CHECK_EQ_INT(send_req(a, 'E', 0, "a", 1), 0);
    CHECK_EQ_INT(recv_resp(a, buf, sizeof(buf)), 6);
    int b = cli_connect(t.port);
    CHECK(b >= 0);
    CHECK(closed_by_server(b, 2000));
    CHECK(wait_until(rejected_one, &t, 2000));
    close(a);
    close(b);
    srv_stop(&t);
}

TEST(test_binding_a_used_port_fails_with_clear_error)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    struct net_config cfg2 = {.host = "127.0.0.1", .port = t.port, .num_workers = 1};
    struct net_handler h = {.on_request = test_on_request, .ctx = &t};
    struct net_server *s2 = NULL;
    CHECK_EQ_INT(net_server_start(&cfg2, &h, &s2), -EADDRINUSE);
    CHECK(s2 == NULL);
    struct net_config cfg3 = {.host = "256.1.1.1", .port = 0, .num_workers = 1};
    CHECK(net_server_start(&cfg3, &h, &s2) < 0);
    srv_stop(&t);
}

TEST(test_stop_waits_for_outstanding_requests_and_frees_them)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    CHECK_EQ_INT(send_req(fd, 'D', 200, "x", 1), 0);
    CHECK_EQ_INT(send_req(fd, 'P', 200, "y", 1), 0);
    sleep_ms(50);
    int64_t t0 = clock_mono_ms();
    net_server_stop(t.srv);
    net_server_free(t.srv);
    t.srv = NULL;
    CHECK(clock_mono_ms() - t0 >= 100);
    CHECK_EQ_INT(atomic_load(&t.closes), 1);
    CHECK_EQ_INT(atomic_load(&t.opens), 1);
    srv_stop(&t);
    close(fd);
}

static int eight_opened(struct test_srv *t)
{
    return atomic_load(&t->opens) == 8;
}

TEST(test_connections_are_spread_over_workers_even_when_idle)
{
    struct test_srv t;
    struct net_config cfg = {.num_workers = 4};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = cli_connect(t.port);
        CHECK(fds[i] >= 0);
        sleep_ms(10); /* one at a time, so every worker is idle when each arrives */
    }
    CHECK(wait_until(eight_opened, &t, 2000));
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(atomic_load(&t.opens_per_worker[i]), 2);
    for (int i = 0; i < 8; i++) {
        uint8_t buf[16];
        CHECK_EQ_INT(send_req(fds[i], 'E', 0, "s", 1), 0);
        CHECK_EQ_INT(recv_resp(fds[i], buf, sizeof(buf)), 6);
        close(fds[i]);
    }
    srv_stop(&t);
}

static int one_opened(struct test_srv *t)
{
    return atomic_load(&t->opens) == 1;
}

static int two_opened(struct test_srv *t)
{
    return atomic_load(&t->opens) == 2;
}

/* The client's own "ip:port" as the server should print it. */
static void local_name(int fd, char *out, size_t len)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &alen);
    snprintf(out, len, "127.0.0.1:%d", ntohs(a.sin_port));
}

TEST(test_connection_info_gives_peer_address_and_distinct_ids)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int a = cli_connect(t.port);
    CHECK(a >= 0);
    CHECK(wait_until(one_opened, &t, 2000));
    char want[64];
    local_name(a, want, sizeof(want));
    pthread_mutex_lock(&t.lock);
    int same = strcmp(t.last_peer, want) == 0;
    uint64_t id1 = t.last_id;
    pthread_mutex_unlock(&t.lock);
    CHECK(same);
    int b = cli_connect(t.port);
    CHECK(b >= 0);
    CHECK(wait_until(two_opened, &t, 2000));
    pthread_mutex_lock(&t.lock);
    uint64_t id2 = t.last_id;
    pthread_mutex_unlock(&t.lock);
    CHECK(id1 > 0 && id2 > 0 && id1 != id2);
    close(a);
    close(b);
    srv_stop(&t);
}

TEST(test_ipv4_client_of_dual_stack_listener_is_seen_as_ipv4)
{
    struct test_srv t;
    struct net_config cfg = {.host = "::"};
    if (srv_start(&t, &cfg) != 0) { /* no IPv6 here: nothing to test */
        pthread_mutex_destroy(&t.lock);
        return;
    }
    int a = cli_connect(t.port);
    CHECK(a >= 0);
    CHECK(wait_until(one_opened, &t, 2000));
    char want[64];
    local_name(a, want, sizeof(want));
    pthread_mutex_lock(&t.lock);
    int same = strcmp(t.last_peer, want) == 0;
    pthread_mutex_unlock(&t.lock);
    CHECK(same);
    close(a);
    srv_stop(&t);
}

/*
 * Child side of the fd-exhaustion test: a server allowed only a few more descriptors than it
 * needs, reporting its port, then (when told) its CPU time in ms.
 */
static void run_fd_starved_server(int to_parent, int from_parent)
{
    struct test_srv t;
    struct net_config cfg = {.num_workers = 1};
    if (srv_start(&t, &cfg) != 0)
        _exit(2);
    int probe = dup(0); /* the lowest free descriptor tells how many are in use */
    close(probe);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(6);
    rl.rlim_cur = (rlim_t)probe + 4;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        _exit(7);
    int32_t port = t.port;
    if (write(to_parent, &port, sizeof(port)) != sizeof(port))
        _exit(3);
    char go;
    if (read(from_parent, &go, 1) != 1)
        _exit(4);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int32_t cpu_ms = (int32_t)(ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000 +
                               ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000);
    if (write(to_parent, &cpu_ms, sizeof(cpu_ms)) != sizeof(cpu_ms))
        _exit(5);
    srv_stop(&t);
    _exit(0);
}

TEST(test_running_out_of_file_descriptors_pauses_accepting_without_spinning)
{
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer cannot fork a multi-threaded process; the release and ASan builds run
     * this test. */
    printf("# skipped under ThreadSanitizer (fork of a multi-threaded process)\n");
    return;
#endif
    int up[2], down[2];
    CHECK(pipe(up) == 0 && pipe(down) == 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(up[0]);
        close(down[1]);
        run_fd_starved_server(up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    int32_t port = 0;
    CHECK_EQ_INT(read(up[0], &port, sizeof(port)), sizeof(port));
    enum { N = 12 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = cli_connect(port); /* completes in the kernel backlog even if not accepted */
        CHECK(fds[i] >= 0);
        CHECK_EQ_INT(send_req(fds[i], 'E', 0, "q", 1), 0);
    }
    sleep_ms(500); /* the server is out of descriptors all this time */
    for (int i = 0; i < N; i++) {
        uint8_t buf[16];
        CHECK_EQ_INT(recv_resp(fds[i], buf, sizeof(buf)), 6);
        close(fds[i]); /* frees a descriptor in the server, which then accepts the next */
    }
    CHECK_EQ_INT(write(down[1], "g", 1), 1);
    int32_t cpu_ms = -1;
    CHECK_EQ_INT(read(up[0], &cpu_ms, sizeof(cpu_ms)), sizeof(cpu_ms));
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(cpu_ms >= 0 && cpu_ms < 400); /* a spinning accept loop would burn ~all of it */
    close(up[0]);
    close(down[1]);
}

TEST(test_batched_responses_survive_partial_writes_byte_for_byte)
{
    struct test_srv t;
    struct net_config cfg = {.max_inflight_per_conn = 100};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    enum { N = 300, LEN = 200 };
    static uint8_t out[N * (9 + LEN)];
    size_t len = 0;
    for (int i = 0; i < N; i++) {
        uint8_t d[LEN];
        for (int j = 0; j < LEN; j++)
            d[j] = (uint8_t)(i * 13 + j);
        /* Every fifth completes late, so the ones behind it complete and queue up. */
        len += build_req(out + len, i % 5 == 0 ? 'D' : 'E', i % 5 == 0 ? 5 : 0, d, LEN);
    }
    CHECK_EQ_INT(write_all(fd, out, len), 0);
    sleep_ms(300); /* let responses pile up against the small receive buffer */
    for (int i = 0; i < N; i++) {
        uint8_t buf[5 + LEN];
        CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 5 + LEN);
        for (int j = 0; j < LEN; j++)
            CHECK_EQ_INT(buf[5 + j], (uint8_t)(i * 13 + j));
    }
    close(fd);
    srv_stop(&t);
}

TEST(test_empty_responses_between_others_do_not_stall_the_queue)
{
    struct test_srv t;
    struct net_config cfg = {0};
    CHECK_EQ_INT(srv_start(&t, &cfg), 0);
    int fd = cli_connect(t.port);
    CHECK(fd >= 0);
    uint8_t out[128];
    size_t len = 0;
    len += build_req(out + len, 'Z', 0, NULL, 0);
    len += build_req(out + len, 'Z', 0, NULL, 0);
    CHECK_EQ_INT(write_all(fd, out, len), 0); /* nothing but empty responses queued */
    sleep_ms(50);
    len = 0;
    len += build_req(out + len, 'E', 0, "a", 1);
    len += build_req(out + len, 'Z', 0, NULL, 0);
    len += build_req(out + len, 'Z', 0, NULL, 0);
    len += build_req(out + len, 'E', 0, "b", 1);
    CHECK_EQ_INT(write_all(fd, out, len), 0);
    uint8_t buf[16];
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 6);
    CHECK_EQ_INT(buf[5], 'a');
    CHECK_EQ_INT(recv_resp(fd, buf, sizeof(buf)), 6);
    CHECK_EQ_INT(buf[5], 'b');
    close(fd);
    srv_stop(&t);
}

TEST_MAIN
