/*
 * Counters and rendering. Invariants: every counter is only ever added to (relaxed atomics),
 * so a scrape that sums the stripes while workers add sees each counter non-decreasing; a
 * histogram's +Inf bucket is computed from the same bucket reads as _count, so the two always
 * agree within one scrape (even if _sum is read a moment later).
 */
#include "metrics/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "metrics/metrics_internal.h"
#include "proto/gen/api_table.h"
#include "proto/gen/errors.h"

/* Request latency buckets (seconds): 0.5 ms .. 10 s; long-polling fetches fill the top ones. */
static const int64_t latency_bounds_ns[METRICS_LATENCY_BUCKETS] = {
    500000,    1000000,   2500000,   5000000,    10000000,   25000000,   50000000,
    100000000, 250000000, 500000000, 1000000000, 2500000000, 5000000000, 10000000000,
};

/* fdatasync buckets (seconds): 50 us .. 2.5 s. */
static const int64_t fsync_bounds_ns[METRICS_FSYNC_BUCKETS] = {
    50000,    100000,   250000,   500000,    1000000,   2500000,    5000000,
    10000000, 25000000, 50000000, 100000000, 250000000, 1000000000, 2500000000,
};

static int bucket_index(const int64_t *bounds, int nb, int64_t ns)
{
    for (int i = 0; i < nb; i++)
        if (ns <= bounds[i])
            return i;
    return nb;
}

struct metrics *metrics_create(void)
{
    struct metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->stripes = calloc(METRICS_STRIPES, sizeof(*m->stripes));
    if (m->stripes == NULL) {
        free(m);
        return NULL;
    }
    m->start_mono_ns = clock_mono_ns();
    return m;
}

void metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    metrics_stop_serving(m);
    free(m->stripes);
    free(m);
}

static int api_slot(int16_t api_key)
{
    if (api_key < 0 || api_key >= KPROTO_API_KEY_COUNT || kproto_api_lookup(api_key) == NULL)
        return METRICS_API_UNKNOWN;
    return api_key;
}

void metrics_track_api(struct metrics *m, int16_t api_key)
{
    if (m != NULL)
        m->tracked[api_slot(api_key)] = true;
}

void metrics_count_request(struct metrics *m, int stripe, int16_t api_key, int64_t latency_ns,
                           bool failed)
{
    if (m == NULL)
        return;
    struct metrics_api_counts *c =
        &m->stripes[(unsigned)stripe % METRICS_STRIPES].api[api_slot(api_key)];
    if (latency_ns < 0)
        latency_ns = 0;
    if (failed)
        atomic_fetch_add_explicit(&c->errors, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->sum_ns, (uint64_t)latency_ns, memory_order_relaxed);
    int b = bucket_index(latency_bounds_ns, METRICS_LATENCY_BUCKETS, latency_ns);
    atomic_fetch_add_explicit(&c->buckets[b], 1, memory_order_relaxed);
}

void metrics_count_partition_error(struct metrics *m, int16_t api_key, int16_t error_code)
{
    if (m == NULL || error_code == 0)
        return;
    int a = api_key == KPROTO_API_PRODUCE ? 0 : api_key == KPROTO_API_FETCH ? 1 : -1;
    int slot = error_code + 1; /* UNKNOWN_SERVER_ERROR (-1) is slot 0 */
    if (a < 0)
        return;
    if (slot < 0 || slot >= METRICS_ERROR_SLOTS)
        slot = 0;
    atomic_fetch_add_explicit(&m->partition_errors[a][slot], 1, memory_order_relaxed);
}

void metrics_purgatory_add(struct metrics *m, enum metrics_purgatory which, int delta)
{
    if (m != NULL && which < METRICS_PURGATORY_COUNT)
        atomic_fetch_add_explicit(&m->purgatory[which], delta, memory_order_relaxed);
}

void metrics_observe_fsync(void *arg, int64_t ns)
{
    struct metrics *m = arg;
    if (m == NULL)
        return;
    if (ns < 0)
        ns = 0;
    int b = bucket_index(fsync_bounds_ns, METRICS_FSYNC_BUCKETS, ns);
    atomic_fetch_add_explicit(&m->fsync_buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->fsync_sum_ns, (uint64_t)ns, memory_order_relaxed);
}

/* Entries in /proc/self/fd, minus the directory's own descriptor; -1 if unreadable. */
static int64_t open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    int64_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;
}

static const char *api_name(int slot)
{
    if (slot == METRICS_API_UNKNOWN)
        return "unknown";
    const struct kproto_api *a = kproto_api_lookup((int16_t)slot);
    return a ? a->name : "unknown";
}

/* Sums the stripes of one API slot. */
static void api_snapshot(struct metrics *m, int slot, struct metrics_api_snapshot *s)
{
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < METRICS_STRIPES; i++) {
        struct metrics_api_counts *c = &m->stripes[i].api[slot];
        for (int b = 0; b <= METRICS_LATENCY_BUCKETS; b++)
            s->buckets[b] += atomic_load_explicit(&c->buckets[b], memory_order_relaxed);
        s->errors += atomic_load_explicit(&c->errors, memory_order_relaxed);
        s->sum_ns += atomic_load_explicit(&c->sum_ns, memory_order_relaxed);
    }
    for (int b = 0; b <= METRICS_LATENCY_BUCKETS; b++)
        s->requests += s->buckets[b];
}

static void render_requests(struct metrics *m, struct expo *e)
{
    struct metrics_api_snapshot *snaps = calloc(METRICS_API_SLOTS, sizeof(*snaps));
    bool show[METRICS_API_SLOTS];
    if (snaps == NULL) {
        e->oom = true;
        return;
    }
    for (int i = 0; i < METRICS_API_SLOTS; i++) {
        api_snapshot(m, i, &snaps[i]);
        show[i] = m->tracked[i] || snaps[i].requests > 0;
    }
    char lab[96];
    expo_family(e, "gregor_requests_total", "counter",
                "Requests completed, by API (response sent, no response for acks=0, or closed).");
    for (int i = 0; i < METRICS_API_SLOTS; i++) {
        if (show[i] && expo_labels(lab, sizeof(lab), "api", api_name(i), NULL) >= 0)
            expo_int(e, "gregor_requests_total", lab, (int64_t)snaps[i].requests);
    }
    expo_family(e, "gregor_request_errors_total", "counter",
                "Requests that failed, by API: connection closed, response not encodable, or "
                "a partition error code in a Produce/Fetch response.");
    for (int i = 0; i < METRICS_API_SLOTS; i++) {
        if (show[i] && expo_labels(lab, sizeof(lab), "api", api_name(i), NULL) >= 0)
            expo_int(e, "gregor_request_errors_total", lab, (int64_t)snaps[i].errors);
    }
    expo_family(e, "gregor_request_duration_seconds", "histogram",
                "Time from a request's last byte received to its completion, by API.");
    for (int i = 0; i < METRICS_API_SLOTS; i++) {
        if (show[i] && expo_labels(lab, sizeof(lab), "api", api_name(i), NULL) >= 0)
            expo_histogram(e, "gregor_request_duration_seconds", lab, latency_bounds_ns,
                           METRICS_LATENCY_BUCKETS, snaps[i].buckets, snaps[i].sum_ns);
    }
    free(snaps);
}

static void render_partition_errors(struct metrics *m, struct expo *e)
{
    static const int16_t apis[2] = {KPROTO_API_PRODUCE, KPROTO_API_FETCH};
    expo_family(e, "gregor_partition_errors_total", "counter",
                "Partition-level error codes in Produce and Fetch responses, by API and error.");
    char lab[128];
    for (int a = 0; a < 2; a++) {
        for (int s = 0; s < METRICS_ERROR_SLOTS; s++) {
            uint64_t v = atomic_load_explicit(&m->partition_errors[a][s], memory_order_relaxed);
            if (v == 0)
                continue;
            const char *name = kafka_error_name(s - 1);
            char code[16];
            if (name == NULL) {
                snprintf(code, sizeof(code), "%d", s - 1);
                name = code;
            }
            if (expo_labels(lab, sizeof(lab), "api", api_name(apis[a]), "error", name, NULL) >= 0)
                expo_int(e, "gregor_partition_errors_total", lab, (int64_t)v);
        }
    }
}

void metrics_render(struct metrics *m, struct expo *e)
{
    expo_family(e, "gregor_uptime_seconds", "gauge", "Seconds since the broker started.");
    expo_double(e, "gregor_uptime_seconds", NULL,
                (double)(clock_mono_ns() - m->start_mono_ns) / 1e9);
    expo_family(e, "gregor_open_fds", "gauge", "Open file descriptors of the process.");
    expo_int(e, "gregor_open_fds", NULL, open_fds());

    render_requests(m, e);
    render_partition_errors(m, e);

    expo_family(e, "gregor_produce_purgatory_size", "gauge",
                "Produce requests with acks=all waiting for their data to be durable.");
    expo_int(e, "gregor_produce_purgatory_size", NULL,
             atomic_load_explicit(&m->purgatory[METRICS_PURGATORY_PRODUCE], memory_order_relaxed));
    expo_family(e, "gregor_fetch_purgatory_size", "gauge",
                "Fetch requests waiting for fetch.min.bytes or fetch.max.wait.ms.");
    expo_int(e, "gregor_fetch_purgatory_size", NULL,
             atomic_load_explicit(&m->purgatory[METRICS_PURGATORY_FETCH], memory_order_relaxed));

    uint64_t fb[METRICS_FSYNC_BUCKETS + 1];
    for (int b = 0; b <= METRICS_FSYNC_BUCKETS; b++)
        fb[b] = atomic_load_explicit(&m->fsync_buckets[b], memory_order_relaxed);
    expo_family(e, "gregor_log_flush_duration_seconds", "histogram",
                "Duration of one log flush (fdatasync of the dirty segments) by the flusher.");
    expo_histogram(e, "gregor_log_flush_duration_seconds", NULL, fsync_bounds_ns,
                   METRICS_FSYNC_BUCKETS, fb,
                   atomic_load_explicit(&m->fsync_sum_ns, memory_order_relaxed));

    if (m->src.collect)
        m->src.collect(m->src.ctx, e);
}
