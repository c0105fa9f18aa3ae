/*
 * loopback_recv: the floor under a broker's CPU per GiB ingested, with no Kafka in it
 * (bench/ingest_cpu.py --floor, issue 18). A forked sender writes GIB GiB of random bytes over
 * loopback TCP in 1 MiB writes; the receiver reads them in frames of 1 MiB less 1000 bytes (a
 * produce request of about librdkafka's batch size; not page-aligned, as a log's batches are
 * not, so the kernel gives the file the same small folios it gives a log) and, by MODE:
 *
 *   discard   nothing more: the socket's own cost;
 *   memcpy    copies each frame into a 256 MiB in-memory ring (touched before the clock
 *             starts): what an in-memory broker such as librdkafka's mock does;
 *   file      appends each frame to a file in DIR with pwrite, starts writeback of every 4 MiB
 *             written (sync_file_range) and drops from the page cache what lies more than
 *             BUDGET_MIB behind the end (Gregor's writeback ahead and log.page.cache.max.bytes,
 *             1 GiB by default): what any broker that writes to the page cache pays;
 *   file-crc  file, plus CRC-32C of every byte (Gregor's batch check) before the pwrite;
 *   splice    file, but each frame moves socket -> pipe -> file with splice(2): the socket's
 *             pages are handed to the pipe, and the only copy is the pipe's into the page
 *             cache (one copy instead of read's and pwrite's two);
 *   splice-crc  splice, plus CRC-32C of every byte read back from the page cache through a
 *             read-only mapping of the frame (a broker must check a batch before it is
 *             visible, and with splice the bytes never pass through its own memory).
 *
 *   loopback_recv MODE DIR [GIB] [BUDGET_MIB]
 *
 * Prints one JSON line: mode, bytes, seconds, MiB/s, the receiver's CPU seconds per GiB (its
 * own user + system time, as bench/ingest_cpu.py reads a broker's) and the sender's CPU
 * seconds. The file is removed at the end. Exit 1 on any error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "record/crc32c.h"

#define FRAME (1 << 20)
#define FRAME_LEN (FRAME - 1000) /* what the receiver reads and appends at a time */
#define WRITEBACK_BYTES (4 << 20)
#define RING_BYTES (256 << 20)

enum mode { MODE_DISCARD, MODE_MEMCPY, MODE_FILE, MODE_FILE_CRC, MODE_SPLICE, MODE_SPLICE_CRC };

/* The sender: `total` bytes of one random 1 MiB buffer, written in full. */
static int sender_run(const struct sockaddr_in *addr, int64_t total)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0)
        return 1;
    uint8_t *buf = malloc(FRAME);
    if (buf == NULL)
        return 1;
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < FRAME; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
    for (int64_t sent = 0; sent < total;) {
        size_t want = (size_t)(total - sent) < FRAME ? (size_t)(total - sent) : FRAME;
        ssize_t n = write(fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 1;
        sent += n;
    }
    close(fd);
    free(buf);
    return 0;
}

/* File modes: once an append crosses a 4 MiB boundary, starts writeback of the round before
 * it, and drops the round that now lies more than `budget` behind (waiting for its writeback
 * first). */
static void file_after_write(int file, int64_t from, int64_t end, int64_t budget)
{
    if (from / WRITEBACK_BYTES == end / WRITEBACK_BYTES)
        return;
    int64_t round = end / WRITEBACK_BYTES * WRITEBACK_BYTES - WRITEBACK_BYTES;
    sync_file_range(file, round, WRITEBACK_BYTES, SYNC_FILE_RANGE_WRITE);
    int64_t old = round - budget;
    if (old < 0)
        return;
    sync_file_range(file, old, WRITEBACK_BYTES,
                    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                        SYNC_FILE_RANGE_WAIT_AFTER);
    posix_fadvise(file, old, WRITEBACK_BYTES, POSIX_FADV_DONTNEED);
}

/* Moves exactly len bytes from `from` to `to` (each at *from_off / *to_off when that is not
 * NULL, which splice advances): 0, or -1 on an error or the peer's close. */
static int splice_full(int from, loff_t *from_off, int to, loff_t *to_off, size_t len)
{
    while (len > 0) {
        ssize_t n = splice(from, from_off, to, to_off, len, SPLICE_F_MOVE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len -= (size_t)n;
    }
    return 0;
}

/* A frame socket -> pipe -> file at `at`, in pipe-sized pieces. */
static int splice_frame(int sock, const int pipefd[2], size_t pipe_bytes, int file, int64_t at,
                        size_t len)
{
    loff_t off = at;
    while (len > 0) {
        size_t piece = len < pipe_bytes ? len : pipe_bytes;
        if (splice_full(sock, NULL, pipefd[1], NULL, piece) != 0 ||
            splice_full(pipefd[0], NULL, file, &off, piece) != 0)
            return -1;
        len -= piece;
    }
    return 0;
}

/* CRC-32C of the file's bytes [at, at + len), read through a mapping of them. */
static int crc_mapped(int file, int64_t at, size_t len, uint32_t *crc)
{
    int64_t page = at - at % sysconf(_SC_PAGESIZE);
    size_t span = len + (size_t)(at - page);
    uint8_t *m = mmap(NULL, span, PROT_READ, MAP_SHARED | MAP_POPULATE, file, page);
    if (m == MAP_FAILED)
        return -1;
    *crc = crc32c_update(*crc, m + (at - page), len);
    munmap(m, span);
    return 0;
}

static int parse_mode(const char *s, enum mode *out)
{
    static const char *names[] = {"discard", "memcpy", "file", "file-crc", "splice", "splice-crc"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum mode)i;
            return 0;
        }
    return -1;
}

int main(int argc, char **argv)
{
    enum mode mode;
    if (argc < 3 || parse_mode(argv[1], &mode) != 0) {
        fprintf(stderr,
                "usage: loopback_recv discard|memcpy|file|file-crc|splice|splice-crc DIR [GIB] "
                "[BUDGET_MIB]\n");
        return 2;
    }
    int64_t total = (int64_t)((argc > 3 ? atof(argv[3]) : 1.0) * (1 << 30)) / FRAME_LEN * FRAME_LEN;
    int64_t budget = (int64_t)(argc > 4 ? atoll(argv[4]) : 1024) << 20;
    char path[4096];
    snprintf(path, sizeof(path), "%s/loopback_recv.%d.log", argv[2], (int)getpid());
    int file = -1;
    if (mode >= MODE_FILE && (file = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644)) < 0) {
        perror("loopback_recv: open");
        return 1;
    }
    uint8_t *frame = malloc(FRAME), *ring = mode == MODE_MEMCPY ? malloc(RING_BYTES) : NULL;
    if (frame == NULL || total <= 0 || (mode == MODE_MEMCPY && ring == NULL))
        return 1;
    memset(frame, 0, FRAME);
    if (ring != NULL)
        memset(ring, 0, RING_BYTES);
    struct sockaddr_in addr;
    int lsock = bench_listen_loopback(&addr);
    if (lsock < 0) {
        perror("loopback_recv: listen");
        return 1;
    }
    pid_t sender = fork();
    if (sender < 0)
        return 1;
    if (sender == 0)
        _exit(sender_run(&addr, total));
    int sock = accept(lsock, NULL, NULL);
    if (sock < 0)
        return 1;
    int pipefd[2] = {-1, -1};
    size_t pipe_bytes = 0;
    if (mode >= MODE_SPLICE) {
        int got;
        if (pipe(pipefd) != 0 || (got = fcntl(pipefd[1], F_SETPIPE_SZ, FRAME)) <= 0) {
            perror("loopback_recv: pipe");
            return 1;
        }
        pipe_bytes = (size_t)got;
    }
    double t0 = bench_now_seconds(), cpu0 = bench_cpu_seconds(RUSAGE_SELF);
    uint32_t crc = 0;
    int rc = 0;
    for (int64_t at = 0; at < total && rc == 0; at += FRAME_LEN) {
        if (mode >= MODE_SPLICE) {
            rc = splice_frame(sock, pipefd, pipe_bytes, file, at, FRAME_LEN);
            if (rc == 0 && mode == MODE_SPLICE_CRC)
                rc = crc_mapped(file, at, FRAME_LEN, &crc);
            file_after_write(file, at, at + FRAME_LEN, budget);
            continue;
        }
        if ((rc = bench_read_full(sock, frame, FRAME_LEN)) != 0)
            break;
        if (mode == MODE_MEMCPY)
            memcpy(ring + at % (RING_BYTES - FRAME), frame, FRAME_LEN);
        if (mode == MODE_FILE_CRC)
            crc = crc32c_update(crc, frame, FRAME_LEN);
        if (mode >= MODE_FILE) {
            if (pwrite(file, frame, FRAME_LEN, at) != FRAME_LEN)
                rc = -1;
            file_after_write(file, at, at + FRAME_LEN, budget);
        }
    }
    double cpu = bench_cpu_seconds(RUSAGE_SELF) - cpu0, secs = bench_now_seconds() - t0;
    close(sock);
    int status = 1;
    waitpid(sender, &status, 0);
    if (pipefd[0] >= 0) {
        close(pipefd[0]);
        close(pipefd[1]);
    }
    if (file >= 0) {
        close(file);
        unlink(path);
    }
    if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "loopback_recv: %s failed\n", argv[1]);
        return 1;
    }
    double gib = (double)total / (1 << 30);
    printf("{\"mode\": \"%s\", \"bytes\": %lld, \"seconds\": %.3f, \"mib_per_sec\": %.1f, "
           "\"cpu_s_per_gib\": %.3f, \"sender_cpu_s\": %.3f, \"crc\": %u}\n",
           argv[1], (long long)total, secs, (double)total / (1 << 20) / secs, cpu / gib,
           bench_cpu_seconds(RUSAGE_CHILDREN), crc);
    free(frame);
    free(ring);
    return 0;
}
