/*
 * Tests of the network core (src/net/): a server on 127.0.0.1 port 0 with an in-test handler
 * speaking a tiny command protocol, driven by blocking client sockets.
 *
 * Request payload: 1 command byte, a 4-byte big-endian argument, then free bytes.
 *   'E' echo now          'D' echo after arg ms (worker timer)
 *   'P' echo after arg ms, completed from another thread through net_worker_post
 *   'N' no reply          'C' close the connection (net_request_close)
 *   'B' reply with arg bytes of 'b'        'F' reply with arg bytes of the test file (sendfile)
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/net.h"
#include "test.h"

/* ---- in-test handler ---------------------------------------------------------------- */

#define MAX_HELPERS 64

struct test_srv {
    struct net_server *srv;
    int port;
    int file_fd;                 /* for 'F' */
    atomic_int file_releases;
    atomic_int closes;           /* on_close calls */
    atomic_int opens;
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
    reply_echo(tm->arg);
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
        struct net_timer *tm = arena_calloc(&req->arena, 1, sizeof(*tm));
        net_timer_start(net_request_worker(req), tm, arg, on_timer_echo, req);
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
    default:
        net_request_close(req);
    }
}

static int test_on_open(void *ctx, struct net_conn *c)
{
    struct test_srv *t = ctx;
    atomic_fetch_add(&t->opens, 1);
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
    t->file_fd = -1;
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
    if (t->file_fd >= 0)
        close(t->file_fd);
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

TEST_MAIN
