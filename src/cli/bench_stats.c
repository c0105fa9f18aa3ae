/*
 * See bench_stats.h. Percentiles use the nearest-rank definition over all samples:
 * p-th percentile = the ceil(p/100 * n)-th smallest sample.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench_stats.h"
#include "cli/internal.h"

void bench_stats_init(struct bench_stats *s, size_t expected_samples, int progress)
{
    memset(s, 0, sizeof(*s));
    s->cap = expected_samples ? expected_samples : 1024;
    s->lat_us = malloc(s->cap * sizeof(*s->lat_us));
    s->progress = progress;
}

void bench_stats_free(struct bench_stats *s)
{
    free(s->lat_us);
    s->lat_us = NULL;
}

void bench_stats_start(struct bench_stats *s)
{
    s->start_us = s->end_us = s->last_tick_us = cli_now_us();
}

void bench_stats_record(struct bench_stats *s, int64_t bytes, int64_t lat_us)
{
    s->records++;
    s->bytes += bytes;
    s->end_us = cli_now_us();
    if (lat_us < 0)
        return;
    if (s->nlat == s->cap) {
        size_t cap = s->cap * 2;
        uint32_t *n = realloc(s->lat_us, cap * sizeof(*n));
        if (!n)
            return; /* keep measuring throughput; the sample is lost */
        s->lat_us = n;
        s->cap = cap;
    }
    s->lat_us[s->nlat++] = lat_us > UINT32_MAX ? UINT32_MAX : (uint32_t)lat_us;
    s->tick_lat_sum_us += lat_us;
    s->tick_lat_n++;
}

void bench_stats_tick(struct bench_stats *s, const char *what)
{
    if (!s->progress)
        return;
    int64_t now = cli_now_us(), dt = now - s->last_tick_us;
    if (dt < 1000000)
        return;
    double secs = dt / 1e6;
    double rps = (s->records - s->tick_records) / secs;
    double mibs = (s->bytes - s->tick_bytes) / secs / (1024.0 * 1024.0);
    fprintf(stderr, "\r\033[K%s: %lld records, %.0f records/s, %.2f MiB/s", what,
            (long long)s->records, rps, mibs);
    if (s->tick_lat_n)
        fprintf(stderr, ", avg latency %.2f ms", s->tick_lat_sum_us / 1e3 / s->tick_lat_n);
    if (s->errors)
        fprintf(stderr, ", %lld errors", (long long)s->errors);
    fflush(stderr);
    s->last_tick_us = now;
    s->tick_records = s->records;
    s->tick_bytes = s->bytes;
    s->tick_lat_sum_us = s->tick_lat_n = 0;
}

void bench_stats_end_progress(struct bench_stats *s)
{
    if (s->progress && s->last_tick_us != s->start_us) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples, in ms. */
static double percentile_ms(const uint32_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    return sorted[rank - 1] / 1000.0;
}

static void json_str_field(const char *name, const char *v)
{
    printf("\"%s\":", name);
    cli_json_string(stdout, v, v ? strlen(v) : 0);
    putchar(',');
}

static void report_json(const struct bench_stats *s, const struct bench_report_params *p,
                        double secs, double rps, double mibs, const double *pct)
{
    putchar('{');
    json_str_field("mode", p->mode);
    json_str_field("topic", p->topic);
    json_str_field("acks", p->acks);
    json_str_field("compression", p->compression);
    printf("\"record_size\":%d,\"partitions\":%d,\"linger_ms\":%ld,\"batch_size\":%ld,"
           "\"rate\":%ld,",
           p->record_size, p->partitions, p->linger_ms, p->batch_size, p->rate);
    printf("\"records\":%lld,\"bytes\":%lld,\"errors\":%lld,\"seconds\":%.6f,"
           "\"records_per_sec\":%.1f,\"mib_per_sec\":%.3f,\"latency_ms\":",
           (long long)s->records, (long long)s->bytes, (long long)s->errors, secs, rps, mibs);
    if (!s->nlat)
        fputs("null", stdout);
    else
        printf("{\"samples\":%zu,\"p50\":%.3f,\"p95\":%.3f,\"p99\":%.3f,\"p99_9\":%.3f,"
               "\"max\":%.3f,\"mean\":%.3f}",
               s->nlat, pct[0], pct[1], pct[2], pct[3], pct[4], pct[5]);
    fputs("}\n", stdout);
}

void bench_stats_report(struct bench_stats *s, const struct bench_report_params *p, int json)
{
    double secs = (s->end_us - s->start_us) / 1e6;
    if (secs <= 0)
        secs = 1e-6;
    double rps = s->records / secs, mibs = s->bytes / secs / (1024.0 * 1024.0);
    double pct[6] = {0};
    if (s->nlat) {
        double sum = 0;
        qsort(s->lat_us, s->nlat, sizeof(*s->lat_us), cmp_u32);
        pct[0] = percentile_ms(s->lat_us, s->nlat, 50);
        pct[1] = percentile_ms(s->lat_us, s->nlat, 95);
        pct[2] = percentile_ms(s->lat_us, s->nlat, 99);
        pct[3] = percentile_ms(s->lat_us, s->nlat, 99.9);
        pct[4] = s->lat_us[s->nlat - 1] / 1000.0;
        for (size_t i = 0; i < s->nlat; i++)
            sum += s->lat_us[i];
        pct[5] = sum / (double)s->nlat / 1000.0;
    }
    if (json) {
        report_json(s, p, secs, rps, mibs, pct);
        fflush(stdout);
        return;
    }
    printf("%s %s: %lld records of %d B in %.2f s: %.0f records/s, %.2f MiB/s, %lld errors\n",
           p->mode, p->topic, (long long)s->records, p->record_size, secs, rps, mibs,
           (long long)s->errors);
    if (s->nlat)
        printf("  latency ms: p50 %.3f  p95 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  "
               "(mean %.3f, %zu samples)\n",
               pct[0], pct[1], pct[2], pct[3], pct[4], pct[5], s->nlat);
    fflush(stdout);
}
