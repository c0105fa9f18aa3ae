/*
 * fetch_raw: the thinnest Kafka consumer, to measure the broker's fetch path against the
 * loopback itself (bench/fetch_vs_iperf.sh, issue 18). One connection, Fetch v4 for one
 * partition, one request in flight; only the record batch headers are looked at (to learn the
 * next offset). Record bytes are discarded. READ_BYTES picks how a response is read:
 *
 *   0          whole, into one reused buffer of MAX_BYTES + 1 MiB (as librdkafka holds a
 *              response);
 *   n > 0      streamed through one reused buffer of n bytes (default 256 KiB), parsed as it
 *              comes: the reader's copy lands in the CPU's cache, as iperf3's 128 KiB reads do.
 *
 *   fetch_raw HOST PORT TOPIC PARTITION END_OFFSET [MAX_BYTES [READ_BYTES]]
 *
 * Reads from offset 0 until END_OFFSET and prints one JSON line: bytes, seconds, MiB/s, fetches.
 * Exit 1 on any protocol or Kafka error (printed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    p = put32(p, (uint32_t)(v >> 32));
    return put32(p, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static int write_full(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Fetch v4 (header v1) for topic/partition at offset; returns the request's length. */
static size_t build_fetch(uint8_t *out, int32_t corr, const char *topic, int32_t partition,
                          int64_t offset, int32_t max_bytes)
{
    uint8_t *p = out + 4;
    p = put16(p, 1); /* Fetch */
    p = put16(p, 4);
    p = put32(p, (uint32_t)corr);
    p = put16(p, 9);
    memcpy(p, "fetch_raw", 9);
    p += 9;
    p = put32(p, (uint32_t)-1); /* replica_id */
    p = put32(p, 500);          /* max_wait_ms */
    p = put32(p, 1);            /* min_bytes */
    p = put32(p, (uint32_t)max_bytes);
    *p++ = 0;        /* isolation_level: read uncommitted */
    p = put32(p, 1); /* topics */
    size_t tl = strlen(topic);
    p = put16(p, (uint16_t)tl);
    memcpy(p, topic, tl);
    p += tl;
    p = put32(p, 1); /* partitions */
    p = put32(p, (uint32_t)partition);
    p = put64(p, (uint64_t)offset);
    p = put32(p, (uint32_t)max_bytes);
    put32(out, (uint32_t)(p - out - 4));
    return (size_t)(p - out);
}

/* Parses a Fetch v4 response body of one topic/partition; sets *next to the offset after the
 * last complete batch (unchanged if none). Returns the Kafka error, or -1 if malformed. */
static int parse_fetch(const uint8_t *b, size_t len, int64_t *next)
{
    const uint8_t *end = b + len, *p = b + 4 + 4; /* correlation id, throttle */
    if (p + 4 > end || get32(p) != 1)
        return -1;
    p += 4;
    if (p + 2 > end)
        return -1;
    p += 2 + (p[0] << 8 | p[1]); /* topic name */
    if (p + 4 > end || get32(p) != 1)
        return -1;
    p += 4;
    if (p + 4 + 2 + 8 + 8 + 4 > end)
        return -1;
    int err = p[4] << 8 | p[5];
    p += 4 + 2 + 8 + 8;
    int32_t naborted = (int32_t)get32(p);
    p += 4 + (naborted > 0 ? (size_t)naborted * 16 : 0);
    if (p + 4 > end)
        return -1;
    int32_t rlen = (int32_t)get32(p);
    p += 4;
    if (rlen < 0)
        return err;
    if (p + rlen > end)
        return -1;
    const uint8_t *r = p, *rend = p + rlen;
    while (r + 61 <= rend) {
        int64_t base = (int64_t)get64(r);
        uint32_t blen = get32(r + 8);
        if (r + 12 + blen > rend)
            break; /* a partial batch at the end of max_bytes */
        *next = base + (int32_t)get32(r + 23) + 1;
        r += 12 + blen;
    }
    return err;
}

/* The fixed part of a Fetch v4 response of one topic/partition up to its records' length. */
static int read_prefix(int fd, size_t len, size_t *used, int32_t *rlen, int *err)
{
    uint8_t b[512];
    size_t at = 0;
    if (len < 14 || bench_read_full(fd, b, 14) != 0) /* corr, throttle, topics, name length */
        return -1;
    if (get32(b + 8) != 1)
        return -1;
    size_t name = (size_t)(b[12] << 8 | b[13]);
    at = 14 + name + 4 + 4 + 2 + 8 + 8 + 4; /* name, partitions, index, error, hw, lso, aborted */
    if (at > sizeof(b) || at > len || bench_read_full(fd, b + 14, at - 14) != 0)
        return -1;
    const uint8_t *p = b + 14 + name;
    if (get32(p) != 1)
        return -1;
    *err = p[8] << 8 | p[9];
    int32_t naborted = (int32_t)get32(p + 4 + 4 + 2 + 8 + 8);
    for (int32_t i = 0; i < naborted; i++) { /* 16 bytes each: skip them */
        if (at + 16 > len || bench_read_full(fd, b, 16) != 0)
            return -1;
        at += 16;
    }
    if (at + 4 > len || bench_read_full(fd, b, 4) != 0)
        return -1;
    *rlen = (int32_t)get32(b);
    *used = at + 4;
    return 0;
}

/*
 * Reads a response of len bytes through buf (cap bytes), following the batch headers as they
 * stream by; sets *next after the last complete batch. Returns the Kafka error or -1.
 */
static int stream_fetch(int fd, size_t len, uint8_t *buf, size_t cap, int64_t *next)
{
    size_t used;
    int32_t rlen;
    int err;
    if (read_prefix(fd, len, &used, &rlen, &err) != 0)
        return -1;
    size_t records = rlen > 0 ? (size_t)rlen : 0;
    if (used + records > len)
        return -1;
    uint8_t hdr[27]; /* base offset, length, epoch, magic, crc, attributes, last delta */
    size_t hlen = 0, skip = 0, pos = 0;
    for (size_t left = len - used; left > 0;) {
        ssize_t n = read(fd, buf, left < cap ? left : cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        left -= (size_t)n;
        for (size_t i = 0; i < (size_t)n && pos < records;) {
            size_t k;
            if (skip > 0) {
                k = skip < (size_t)n - i ? skip : (size_t)n - i;
                skip -= k;
            } else {
                k = sizeof(hdr) - hlen < (size_t)n - i ? sizeof(hdr) - hlen : (size_t)n - i;
                memcpy(hdr + hlen, buf + i, k);
                hlen += k;
                if (hlen == sizeof(hdr)) {
                    size_t size = 12 + get32(hdr + 8), start = pos + k - hlen;
                    if (start + size <= records) /* else a partial batch at max_bytes */
                        *next = (int64_t)get64(hdr) + (int32_t)get32(hdr + 23) + 1;
                    skip = size - hlen;
                    hlen = 0;
                }
            }
            i += k;
            pos += k;
        }
    }
    return err;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: fetch_raw HOST PORT TOPIC PARTITION END_OFFSET "
                        "[MAX_BYTES [READ_BYTES]]\n");
        return 2;
    }
    const char *topic = argv[3];
    int32_t partition = atoi(argv[4]);
    int64_t end = atoll(argv[5]);
    int32_t max_bytes = argc > 6 ? atoi(argv[6]) : 16 << 20;
    size_t stream = argc > 7 ? (size_t)atoll(argv[7]) : 256u << 10;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
    if (getaddrinfo(argv[1], argv[2], &hints, &ai) != 0) {
        fprintf(stderr, "fetch_raw: cannot resolve %s\n", argv[1]);
        return 1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        perror("fetch_raw: connect");
        return 1;
    }
    freeaddrinfo(ai);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    size_t cap = stream > 0 ? stream : (size_t)max_bytes + (1 << 20);
    uint8_t *buf = malloc(cap), req[512];
    if (buf == NULL || strlen(topic) > 256)
        return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t offset = 0, bytes = 0, fetches = 0;
    while (offset < end) {
        size_t n = build_fetch(req, (int32_t)fetches, topic, partition, offset, max_bytes);
        uint8_t hdr[4];
        if (write_full(fd, req, n) != 0 || bench_read_full(fd, hdr, 4) != 0) {
            fprintf(stderr, "fetch_raw: connection lost at offset %lld\n", (long long)offset);
            return 1;
        }
        size_t len = get32(hdr);
        int64_t before = offset;
        int err;
        if (stream > 0) {
            err = stream_fetch(fd, len, buf, cap, &offset);
        } else {
            if (len > cap || len < 8 || bench_read_full(fd, buf, len) != 0) {
                fprintf(stderr, "fetch_raw: bad response of %zu bytes\n", len);
                return 1;
            }
            err = parse_fetch(buf, len, &offset);
        }
        bytes += (int64_t)len + 4;
        fetches++;
        if (err == 0 && offset == before)
            err = -2; /* no complete batch: would loop forever */
        if (err != 0) {
            fprintf(stderr, "fetch_raw: fetch at %lld: error %d\n", (long long)before, err);
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("{\"bytes\": %lld, \"seconds\": %.3f, \"mib_per_sec\": %.1f, \"fetches\": %lld}\n",
           (long long)bytes, secs, (double)bytes / (1 << 20) / secs, (long long)fetches);
    close(fd);
    free(buf);
    return 0;
}
