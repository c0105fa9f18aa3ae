/*
 * Storage engine benchmark (not part of make test; run bench/storage.sh).
 *
 *   storage_bench DIR TOTAL_MB DD_WRITE_MBPS DD_READ_MBPS
 *
 * 1. append throughput, 1 KiB records in 16 KiB and 1 MiB batches, without fsync and with group
 *    commit (a flush request after every append; one fdatasync covers all queued appends),
 *    reported as MB/s and as a ratio to dd's sequential write bandwidth (same filesystem).
 * 2. offset lookup latency in one 1 GiB segment (16 KiB batches): median and p99 of log_read
 *    for a random offset (index binary search + batch header scan), target < 2 us median.
 * 3. recovery scan rate: full recovery of that segment (CRC-32C of every batch, index
 *    rebuild) vs dd sequential read of the same file.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "record/record_builder.h"
#include "storage/flusher.h"
#include "storage/log.h"

static uint8_t *make_batch(int records, size_t *len)
{
    struct record_builder b;
    record_builder_init(&b, 0);
    static char val[1000];
    memset(val, 'v', sizeof(val));
    for (int i = 0; i < records; i++)
        record_builder_add(&b, 1700000000000 + i, "key", 3, val, sizeof(val), NULL, 0);
    uint8_t *out = NULL;
    record_builder_finish(&b, &out, len);
    record_builder_release(&b);
    return out;
}

static _Atomic int64_t acked;

static void on_flush(void *arg, int err)
{
    (void)arg;
    if (err == 0)
        atomic_fetch_add(&acked, 1);
}

/* Appends total_bytes in batches of `records` 1 KiB records; returns MB/s. */
static double bench_append(const char *dir, const char *topic, int records, int64_t total_bytes,
                           bool group_commit)
{
    struct log_config cfg = log_config_defaults();
    struct log *log;
    struct log_flusher *f = NULL;
    if (log_open(dir, topic, 0, &cfg, NULL, &log) < 0)
        return -1;
    if (group_commit && (log_flusher_create(&f) < 0 || log_flusher_add(f, log) < 0))
        return -1;
    size_t len;
    uint8_t *b = make_batch(records, &len);
    int64_t n = total_bytes / (int64_t)len, t0 = clock_mono_ns();
    if (n == 0)
        n = 1;
    atomic_store(&acked, 0);
    for (int64_t i = 0; i < n; i++) {
        struct log_append_info info;
        if (log_append(log, b, len, 0, 1700000000000, false, &info) < 0)
            return -1;
        if (group_commit)
            log_flush_request(log, info.last_offset + 1, on_flush, NULL);
    }
    while (group_commit && atomic_load(&acked) < n)
        usleep(100);
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    if (f) {
        log_flusher_remove(f, log);
        log_flusher_destroy(f);
    }
    log_close(log);
    free(b);
    return (double)n * (double)len / 1e6 / secs;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Median and p99 of random-offset reads in a log whose first segment holds `bytes`. */
static int bench_lookup(const char *dir, const char *topic, int64_t *median, int64_t *p99,
                        int64_t *end)
{
    struct log_config cfg = log_config_defaults();
    struct log *log;
    struct log_open_state st = {
        .recovery_point = INT64_MAX, .log_start_offset = 0, .clean_shutdown = true};
    if (log_open(dir, topic, 0, &cfg, &st, &log) < 0)
        return -1;
    *end = log_end_offset(log);
    enum { N = 100000 };
    static int64_t lat[N];
    /* Two passes over the same offsets; the second is reported: a broker's segments stay
     * open and mapped, so first-touch page faults are not the steady state. */
    for (int pass = 0; pass < 2; pass++) {
        unsigned seed = 42;
        for (int i = 0; i < N; i++) {
            int64_t off = ((int64_t)rand_r(&seed) << 16 ^ rand_r(&seed)) % *end;
            struct log_read_result r;
            int64_t t0 = clock_mono_ns();
            int rc = log_read(log, off, 1, INT64_MAX, true, &r);
            lat[i] = clock_mono_ns() - t0;
            if (rc < 0 || r.first_offset > off || r.next_offset <= off)
                return -1;
            log_read_release(&r);
        }
    }
    qsort(lat, N, sizeof(lat[0]), cmp_i64);
    *median = lat[N / 2];
    *p99 = lat[N * 99 / 100];
    log_close(log);
    return 0;
}

/* Full recovery of the log (no state = scan everything); returns MB/s. */
static double bench_recovery(const char *dir, const char *topic, int64_t bytes)
{
    struct log *log;
    int64_t t0 = clock_mono_ns();
    if (log_open(dir, topic, 0, NULL, NULL, &log) < 0)
        return -1;
    double secs = (double)(clock_mono_ns() - t0) / 1e9;
    log_close(log);
    return (double)bytes / 1e6 / secs;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s DIR TOTAL_MB DD_WRITE_MBPS DD_READ_MBPS\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int64_t total = atoll(argv[2]) << 20;
    double dd_w = atof(argv[3]), dd_r = atof(argv[4]);
    struct {
        const char *topic;
        int records;
        bool gc;
        const char *label;
    } runs[] = {
        {"a16k", 16, false, "append 16 KiB batches, no fsync"},
        {"a1m", 1024, false, "append 1 MiB batches, no fsync"},
        {"g16k", 16, true, "append 16 KiB batches, group commit"},
        {"g1m", 1024, true, "append 1 MiB batches, group commit"},
    };
    printf("dd sequential write: %.0f MB/s, read: %.0f MB/s\n", dd_w, dd_r);
    for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
        double mbps = bench_append(dir, runs[i].topic, runs[i].records, total, runs[i].gc);
        printf("%-40s %8.0f MB/s  %.2fx dd\n", runs[i].label, mbps, mbps / dd_w);
        if (i > 0)
            continue;
        /* Lookups and recovery on the 16 KiB-batch log, before other runs evict it. */
        int64_t med, p99, end;
        if (bench_lookup(dir, "a16k", &med, &p99, &end) == 0)
            printf("offset lookup in a %" PRId64 " MiB segment (%" PRId64
                   " offsets): median %.2f us, p99 %.2f us (target median < 2 us)\n",
                   total >> 20, end, (double)med / 1e3, (double)p99 / 1e3);
        double rec = bench_recovery(dir, "a16k", total);
        printf("%-40s %8.0f MB/s  %.2fx dd read\n", "recovery scan (CRC + index rebuild)", rec,
               rec / dd_r);
    }
    return 0;
}
