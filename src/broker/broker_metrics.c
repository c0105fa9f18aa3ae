/*
 * Scrape-time collection of broker state for /metrics and /health. Nothing here is on the
 * data path: per-topic traffic is summed from the partitions' own atomic counters under the
 * registry's read lock, partition health comes from the published metadata image (read
 * without locks), network counters from net_server_stats().
 *
 * Per-topic counters belong to the partitions: when a topic is deleted its counters go with
 * it, which Prometheus treats as a counter reset.
 */
#include "broker/broker_metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "broker/quota.h"
#include "storage/cleaner.h"
#include "storage/flusher.h"
#include "storage/page_cache_budget.h"
#include "broker/partition_registry.h"
#include "broker/partition.h"
#include "cluster/controller.h"
#include "net/net.h"

struct partition_sample {
    char *topic;
    int32_t index;
    int64_t bytes_in, records_in, bytes_out, records_out, size;
};

struct partition_samples {
    struct partition_sample *v;
    size_t n, cap;
    bool oom;
};

/* Registry read lock held: copy what we need, nothing slow. */
static void collect_partition(struct partition *p, void *arg)
{
    struct partition_samples *s = arg;
    if (s->oom)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct partition_sample *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            s->oom = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    struct partition_sample *x = &s->v[s->n];
    x->topic = strdup(p->topic);
    if (x->topic == NULL) {
        s->oom = true;
        return;
    }
    x->index = p->index;
    x->bytes_in = atomic_load_explicit(&p->bytes_in, memory_order_relaxed);
    x->records_in = atomic_load_explicit(&p->records_in, memory_order_relaxed);
    x->bytes_out = atomic_load_explicit(&p->bytes_out, memory_order_relaxed);
    x->records_out = atomic_load_explicit(&p->records_out, memory_order_relaxed);
    x->size = log_size_bytes(p->log);
    s->n++;
}

static int sample_cmp(const void *a, const void *b)
{
    const struct partition_sample *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* One counter family summed per topic (samples sorted by topic). */
static void emit_topic_counter(struct expo *e, const struct partition_samples *s, const char *name,
                               const char *help, size_t field)
{
    expo_family(e, name, "counter", help);
    char lab[400];
    for (size_t i = 0; i < s->n;) {
        int64_t sum = 0;
        size_t j = i;
        for (; j < s->n && strcmp(s->v[j].topic, s->v[i].topic) == 0; j++)
            sum += *(const int64_t *)((const char *)&s->v[j] + field);
        if (expo_labels(lab, sizeof(lab), "topic", s->v[i].topic, NULL) >= 0)
            expo_int(e, name, lab, sum);
        i = j;
    }
}

static void collect_partitions(struct broker *b, struct expo *e)
{
    struct partition_samples s = {0};
    partition_registry_each(b->parts, collect_partition, &s);
    if (s.oom)
        e->oom = true;
    if (s.n > 1)
        qsort(s.v, s.n, sizeof(*s.v), sample_cmp);
    expo_family(e, "gregor_partitions", "gauge", "Partitions hosted by this broker.");
    expo_int(e, "gregor_partitions", NULL, (int64_t)s.n);
    emit_topic_counter(e, &s, "gregor_topic_bytes_in_total",
                       "Record batch bytes appended by Produce, by topic.",
                       offsetof(struct partition_sample, bytes_in));
    emit_topic_counter(e, &s, "gregor_topic_records_in_total",
                       "Records appended by Produce, by topic.",
                       offsetof(struct partition_sample, records_in));
    emit_topic_counter(e, &s, "gregor_topic_bytes_out_total",
                       "Record bytes sent in Fetch responses, by topic.",
                       offsetof(struct partition_sample, bytes_out));
    emit_topic_counter(e, &s, "gregor_topic_records_out_total",
                       "Records (offsets at or past the fetch offset) sent in Fetch responses, "
                       "by topic.",
                       offsetof(struct partition_sample, records_out));
    expo_family(e, "gregor_log_size_bytes", "gauge", "Bytes of a partition's log segments.");
    char lab[400], idx[16];
    for (size_t i = 0; i < s.n; i++) {
        snprintf(idx, sizeof(idx), "%d", s.v[i].index);
        if (expo_labels(lab, sizeof(lab), "topic", s.v[i].topic, "partition", idx, NULL) >= 0)
            expo_int(e, "gregor_log_size_bytes", lab, s.v[i].size);
    }
    for (size_t i = 0; i < s.n; i++)
        free(s.v[i].topic);
    free(s.v);
}

/* Topics and under-replicated partitions (led here, ISR smaller than the replica set). */
static void collect_image(struct broker *b, struct expo *e)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    int64_t topics = 0, under = 0;
    if (img != NULL) {
        topics = (int64_t)img->n_topics;
        for (size_t i = 0; i < img->n_topics; i++) {
            const struct metadata_topic *t = img->topics_by_name[i];
            for (uint32_t j = 0; j < t->n_partitions; j++) {
                const struct metadata_partition *mp = &t->partitions[j];
                if (mp->leader == b->cfg.node_id && mp->n_isr < mp->n_replicas)
                    under++;
            }
        }
        metadata_image_release(img);
    }
    expo_family(e, "gregor_topics", "gauge", "Topics in the cluster metadata.");
    expo_int(e, "gregor_topics", NULL, topics);
    expo_family(e, "gregor_under_replicated_partitions", "gauge",
                "Partitions led by this broker whose in-sync replicas are fewer than their "
                "replicas.");
    expo_int(e, "gregor_under_replicated_partitions", NULL, under);
    expo_family(e, "gregor_controller_active", "gauge",
                "1 when this broker is the active controller (raft leader), else 0.");
    expo_int(e, "gregor_controller_active", NULL, controller_is_active(b->ctl) ? 1 : 0);
    expo_family(e, "gregor_controller_leader_id", "gauge",
                "Node id of the controller leader, -1 when unknown.");
    expo_int(e, "gregor_controller_leader_id", NULL, controller_leader_id(b->ctl));
}

static void emit_one(struct expo *e, const char *name, const char *type, const char *help,
                     int64_t v)
{
    expo_family(e, name, type, help);
    expo_int(e, name, NULL, v);
}

/* The page-cache budget of written log data (log.page.cache.max.bytes), when bounded. */
static void collect_page_cache(struct broker *b, struct expo *e)
{
    struct page_cache_budget *pc = NULL;
    if (b->parts != NULL && b->parts->flusher != NULL)
        pc = log_flusher_page_cache_budget(b->parts->flusher);
    if (pc == NULL)
        return;
    emit_one(e, "gregor_log_page_cache_bytes", "gauge",
             "Recently written log bytes left in the page cache (at most "
             "log.page.cache.max.bytes).",
             page_cache_budget_cached_bytes(pc));
    emit_one(e, "gregor_log_page_cache_dropped_bytes_total", "counter",
             "Older written log bytes dropped from the page cache once on disk, for new writes "
             "to reuse their memory.",
             page_cache_budget_dropped_bytes(pc));
}

static void collect_network(struct broker *b, struct expo *e)
{
    struct net_stats ns;
    memset(&ns, 0, sizeof(ns));
    if (b->net != NULL)
        net_server_stats(b->net, &ns);
    emit_one(e, "gregor_connections_open", "gauge", "Open client connections.",
             ns.connections_open);
    emit_one(e, "gregor_connections_accepted_total", "counter", "Client connections accepted.",
             ns.connections_accepted);
    emit_one(e, "gregor_connections_rejected_total", "counter",
             "Connections refused by max.connections / max.connections.per.ip.",
             ns.connections_rejected);
    emit_one(e, "gregor_connections_closed_total", "counter", "Client connections closed.",
             ns.connections_closed);
    emit_one(e, "gregor_network_received_bytes_total", "counter", "Bytes read from client sockets.",
             ns.bytes_in);
    emit_one(e, "gregor_network_sent_bytes_total", "counter", "Bytes written to client sockets.",
             ns.bytes_out);
    emit_one(e, "gregor_network_copied_bytes_total", "counter",
             "Of the bytes written to client sockets, fetch responses sent to clients on this "
             "host through a copy buffer (pread + write) instead of sendfile "
             "(fetch.local.copy.enable).",
             ns.copied_bytes);
    emit_one(e, "gregor_network_requests_total", "counter", "Request frames received (all APIs).",
             ns.requests);
    emit_one(e, "gregor_network_responses_total", "counter", "Responses completely written.",
             ns.responses);
    emit_one(e, "gregor_network_bad_frames_total", "counter",
             "Frames refused for their size prefix.", ns.bad_frames);
    emit_one(e, "gregor_network_queued_response_bytes", "gauge",
             "Response bytes accepted but not yet written.", ns.queued_response_bytes);
    emit_one(e, "gregor_network_paused_connections", "gauge",
             "Connections not being read because of backpressure.", ns.paused_connections);
    emit_one(e, "gregor_io_workers", "gauge",
             "I/O workers serving connections (num.io.threads, resizable at run time).",
             ns.io_workers);
    emit_one(e, "gregor_io_worker_threads", "gauge", "I/O worker threads running.", ns.io_threads);
    int64_t io = 0, throttled = 0;
    if (b->parts != NULL && b->parts->cleaner != NULL)
        log_cleaner_stats(b->parts->cleaner, &io, &throttled);
    emit_one(e, "gregor_quota_sensors", "gauge",
             "Client quota rate trackers (per user / client-id in use; idle ones expire).",
             quota_sensor_count(b->quotas));
    emit_one(e, "gregor_log_cleaner_io_bytes_total", "counter",
             "Bytes the log cleaner read and wrote compacting.", io);
    emit_one(e, "gregor_log_cleaner_throttled_ms_total", "counter",
             "Time the log cleaner paused for log.cleaner.io.max.bytes.per.second.", throttled);
    collect_page_cache(b, e);
    expo_family(e, "gregor_tls_connections_total", "counter",
                "TLS connections by how responses are sent once the handshake is done: ktls "
                "(kernel TLS, file ranges with SSL_sendfile) or userspace (pread + SSL_write).");
    expo_int(e, "gregor_tls_connections_total", "send_path=\"ktls\"", ns.tls_ktls_connections);
    expo_int(e, "gregor_tls_connections_total", "send_path=\"userspace\"",
             ns.tls_userspace_connections);
}

static void broker_metrics_collect(void *ctx, struct expo *e)
{
    struct broker *b = ctx;
    collect_partitions(b, e);
    collect_image(b, e);
    collect_network(b, e);
}

/* 200 while serving with a known controller leader; 503 (with the reason) otherwise. */
static int broker_metrics_health(void *ctx, struct expo *e)
{
    struct broker *b = ctx;
    int32_t leader = controller_leader_id(b->ctl);
    bool active = controller_is_active(b->ctl);
    bool serving = b->net != NULL;
    if (serving && leader >= 0) {
        expo_printf(e, "ok\nnode %d serving\ncontroller: leader %d%s\n", b->cfg.node_id, leader,
                    active ? " (this node, active)" : "");
        return 200;
    }
    expo_printf(e, "unavailable\nnode %d %s\ncontroller: %s\n", b->cfg.node_id,
                serving ? "serving" : "not serving", leader >= 0 ? "ok" : "no leader known");
    return 503;
}

struct metrics_source broker_metrics_source(struct broker *b)
{
    return (struct metrics_source){broker_metrics_collect, broker_metrics_health, b};
}
