/*
 * loopback_send: the kernel's own cost of sending a file over loopback TCP, with no broker in
 * between (bench/fetch_vs_iperf.sh, issue 18). A forked reader connects to 127.0.0.1 and reads
 * into one reused buffer of READ_BYTES (default 16 MiB, as bench/fetch_raw.c holds a whole
 * response; 256 KiB as it streams one) until it has the whole file; the parent sends the file
 * on the accepted socket in one of two ways:
 *
 *   sendfile  sendfile(2) calls of CHUNK bytes (default 16 MiB: one call per Fetch of
 *             fetch_raw's max_bytes), Gregor's fetch to remote clients;
 *   copy      pread(2) of CHUNK bytes (default 1 MiB) into one reused buffer, then write(2):
 *             two copies per byte, Gregor's fetch to clients on the same host with 256 KiB.
 *
 *   loopback_send MODE FILE [CHUNK [READ_BYTES]]
 *
 * Prints one JSON line: mode, bytes, seconds, MiB/s, and the sender's and the reader's CPU
 * seconds. The file should be in the page cache (read it once before). Exit 1 on any error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

/* The reader: reads `total` bytes from a connection to addr and discards them. */
static int reader_run(const struct sockaddr_in *addr, int64_t total, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0)
        return 1;
    uint8_t *buf = malloc(cap);
    if (buf == NULL)
        return 1;
    for (int64_t got = 0; got < total;) {
        ssize_t n = read(fd, buf, cap);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 1;
        got += n;
    }
    free(buf);
    close(fd);
    return 0;
}

static int send_by_sendfile(int sock, int file, int64_t total, size_t chunk)
{
    off_t off = 0;
    while (off < total) {
        size_t len = (size_t)(total - off) < chunk ? (size_t)(total - off) : chunk;
        ssize_t w = sendfile(sock, file, &off, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
    }
    return 0;
}

static int send_by_copy(int sock, int file, int64_t total, size_t chunk)
{
    uint8_t *buf = malloc(chunk);
    if (buf == NULL)
        return -1;
    for (int64_t off = 0; off < total;) {
        ssize_t n = pread(file, buf, chunk, off);
        if (n <= 0) {
            free(buf);
            return -1;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(sock, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                free(buf);
                return -1;
            }
            done += w;
        }
        off += n;
    }
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "sendfile") != 0 && strcmp(argv[1], "copy") != 0)) {
        fprintf(stderr, "usage: loopback_send sendfile|copy FILE [CHUNK [READ_BYTES]]\n");
        return 2;
    }
    int by_sendfile = strcmp(argv[1], "sendfile") == 0;
    size_t chunk = argc > 3 ? (size_t)atoll(argv[3]) : by_sendfile ? 16u << 20 : 1u << 20;
    size_t read_bytes = argc > 4 ? (size_t)atoll(argv[4]) : 16u << 20;
    int file = open(argv[2], O_RDONLY);
    struct stat st;
    if (file < 0 || fstat(file, &st) != 0 || st.st_size == 0 || chunk == 0 || read_bytes == 0) {
        fprintf(stderr, "loopback_send: cannot use %s\n", argv[2]);
        return 1;
    }
    int64_t total = st.st_size;
    struct sockaddr_in addr;
    int lsock = bench_listen_loopback(&addr);
    if (lsock < 0) {
        perror("loopback_send: listen");
        return 1;
    }
    pid_t reader = fork();
    if (reader < 0)
        return 1;
    if (reader == 0)
        _exit(reader_run(&addr, total, read_bytes));
    int sock = accept(lsock, NULL, NULL), one = 1;
    if (sock < 0)
        return 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    double t0 = bench_now_seconds(), cpu0 = bench_cpu_seconds(RUSAGE_SELF);
    int rc = by_sendfile ? send_by_sendfile(sock, file, total, chunk)
                         : send_by_copy(sock, file, total, chunk);
    double cpu = bench_cpu_seconds(RUSAGE_SELF) - cpu0;
    close(sock);
    int status = 1;
    waitpid(reader, &status, 0);
    double secs = bench_now_seconds() - t0; /* until the reader has every byte */
    if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "loopback_send: %s failed\n", argv[1]);
        return 1;
    }
    printf("{\"mode\": \"%s\", \"bytes\": %lld, \"seconds\": %.3f, \"mib_per_sec\": %.1f, "
           "\"sender_cpu_s\": %.3f, \"reader_cpu_s\": %.3f}\n",
           argv[1], (long long)total, secs, (double)total / (1 << 20) / secs, cpu,
           bench_cpu_seconds(RUSAGE_CHILDREN));
    return 0;
}
