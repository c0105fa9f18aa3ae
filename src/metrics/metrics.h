/*
 * Broker metrics: cheap counters the data path bumps, and an HTTP endpoint (libmicrohttpd, one
 * internal thread) that serves them in Prometheus text format on GET /metrics, and the
 * broker's health on GET /health.
 *
 * What lives here: per-API request counts, errors and latency histograms (striped by I/O
 * worker so workers do not share cache lines), Produce/Fetch per-partition error codes,
 * purgatory sizes, the flusher's fsync latency histogram, process uptime and open file
 * descriptors. Everything the broker owns (partitions, per-topic traffic, controller, network
 * counters) is written at scrape time by the source's collect() callback, which aggregates
 * state that already exists instead of mirroring it.
 *
 * Threads. The metrics_count_*() / metrics_observe_*() / metrics_purgatory_add() functions may
 * be called from any thread at any time between metrics_create() and metrics_free(); they are
 * relaxed atomic adds. metrics_serve(), metrics_stop_serving() and metrics_free() belong to the
 * controlling thread. The source callbacks run on the HTTP thread, between metrics_serve() and
 * metrics_stop_serving().
 */
#ifndef GREGOR_METRICS_METRICS_H
#define GREGOR_METRICS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/expo.h"

struct metrics;

/* What the HTTP thread asks the owner of the metrics (the broker) at scrape time. */
struct metrics_source {
    /* Appends the owner's metric families to e. Optional. */
    void (*collect)(void *ctx, struct expo *e);
    /* Writes a short text body for /health and returns the HTTP status (200 = healthy). */
    int (*health)(void *ctx, struct expo *e);
    void *ctx;
};

enum metrics_purgatory {
    METRICS_PURGATORY_PRODUCE, /* acks=all produces waiting for durability */
    METRICS_PURGATORY_FETCH,   /* fetches waiting for fetch.min.bytes / max.wait.ms */
    METRICS_PURGATORY_COUNT
};

/*
 * Parses a metrics.listener value "http://HOST:PORT" (HOST: name, IPv4, [IPv6] or empty for
 * every interface; PORT 0-65535, 0 = any free port). host may be NULL to only validate.
 * Returns 0 or -EINVAL.
 */
int metrics_parse_listener(const char *s, char *host, size_t hostlen, int *port);

/* Allocates the counters. NULL when out of memory. */
struct metrics *metrics_create(void);

/* Frees the counters; stops serving first if needed. NULL is a no-op. */
void metrics_free(struct metrics *m);

/*
 * Binds `listener` (see metrics_parse_listener) and starts the HTTP thread. On failure writes
 * one line naming metrics.listener to err and returns < 0. src is copied.
 */
int metrics_serve(struct metrics *m, const char *listener, const struct metrics_source *src,
                  char *err, size_t errlen);

/* The bound port, or 0 when not serving. */
int metrics_port(const struct metrics *m);

/* Stops the HTTP thread (waits for a scrape in progress). No-op when not serving. */
void metrics_stop_serving(struct metrics *m);

/* Always list this API key (with zero counts) even before its first request. */
void metrics_track_api(struct metrics *m, int16_t api_key);

/*
 * A request finished: api_key (-1 or any unknown key counts as "unknown"), its latency from
 * receipt to completion, and whether it failed (connection closed, response not encodable,
 * or a partition error in a Produce/Fetch response). stripe: any small integer that differs
 * between concurrent callers (the I/O worker's index).
 */
void metrics_count_request(struct metrics *m, int stripe, int16_t api_key, int64_t latency_ns,
                           bool failed);

/* A Produce or Fetch response carried error_code for one partition. */
void metrics_count_partition_error(struct metrics *m, int16_t api_key, int16_t error_code);

/* A delayed operation parked (+1) or left the purgatory (-1). */
void metrics_purgatory_add(struct metrics *m, enum metrics_purgatory which, int delta);

/* One log flush (fdatasync) by the flusher took ns nanoseconds. Signature of the flusher's
 * observer hook; arg is the struct metrics. */
void metrics_observe_fsync(void *arg, int64_t ns);

/* Renders every metric (own and the source's) into e. Any thread; used by the HTTP thread. */
void metrics_render(struct metrics *m, struct expo *e);

#endif
