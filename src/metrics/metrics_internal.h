/* Layout of struct metrics, shared by metrics.c (counters) and metrics_http.c (endpoint). */
#ifndef GREGOR_METRICS_METRICS_INTERNAL_H
#define GREGOR_METRICS_METRICS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "metrics/metrics.h"
#include "proto/gen/api_table.h"

#define METRICS_STRIPES 16 /* worker index modulo this */
#define METRICS_API_SLOTS (KPROTO_API_KEY_COUNT + 1)
#define METRICS_API_UNKNOWN KPROTO_API_KEY_COUNT /* slot for keys no API has */
#define METRICS_LATENCY_BUCKETS 14
#define METRICS_FSYNC_BUCKETS 14
#define METRICS_ERROR_SLOTS 160 /* error codes -1 .. 158 */

struct metrics_api_counts {
    atomic_uint_fast64_t errors;
    atomic_uint_fast64_t sum_ns;
    atomic_uint_fast64_t buckets[METRICS_LATENCY_BUCKETS + 1]; /* requests = their sum */
};

/* One stripe per I/O worker (modulo METRICS_STRIPES): ~14 KiB, so workers rarely share lines. */
struct metrics_stripe {
    struct metrics_api_counts api[METRICS_API_SLOTS];
};

struct metrics_api_snapshot {
    uint64_t requests, errors, sum_ns;
    uint64_t buckets[METRICS_LATENCY_BUCKETS + 1];
};

struct metrics {
    struct metrics_stripe *stripes;
    bool tracked[METRICS_API_SLOTS]; /* written before serving, read by the HTTP thread */
    atomic_uint_fast64_t partition_errors[2][METRICS_ERROR_SLOTS]; /* [produce, fetch][code+1] */
    atomic_llong purgatory[METRICS_PURGATORY_COUNT];
    atomic_uint_fast64_t fsync_buckets[METRICS_FSYNC_BUCKETS + 1];
    atomic_uint_fast64_t fsync_sum_ns;
    int64_t start_mono_ns;
    /* Serving (metrics_http.c). */
    struct MHD_Daemon *daemon;
    struct metrics_source src;
    int port;
};

#endif
