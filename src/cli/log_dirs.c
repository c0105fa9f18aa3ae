/*
 * `gregor topic describe --log-dirs`: where a topic's replicas live on disk. librdkafka has no
 * DescribeLogDirs, so every broker in the metadata is asked directly with Gregor's own codec
 * and blocking client (DescribeLogDirs v4, one request per broker for the topic's partitions,
 * each bounded by the command's timeout): per broker its log directory with the volume's total
 * and usable bytes, and per partition replica its size and offset lag (Kafka's
 * kafka-log-dirs.sh reports the same fields).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "broker/controller_client.h"
#include "cli/internal.h"
#include "proto/gen/describe_log_dirs.h"
#include "proto/gen/errors.h"

#define LOG_DIRS_VERSION 4

static void log_dirs_format_bytes(char *out, size_t len, int64_t v)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double x = (double)v;
    int u = 0;
    while (x >= 1024 && u < 4) {
        x /= 1024;
        u++;
    }
    if (v < 0)
        snprintf(out, len, "-");
    else if (u == 0)
        snprintf(out, len, "%" PRId64 " B", v);
    else
        snprintf(out, len, "%.1f %s", x, unit[u]);
}

static void
log_dirs_print_result(const struct kmsg_describe_log_dirs_response_describe_log_dirs_result *d,
                      int32_t broker)
{
    char total[32], usable[32];
    log_dirs_format_bytes(total, sizeof(total), d->total_bytes);
    log_dirs_format_bytes(usable, sizeof(usable), d->usable_bytes);
    printf("  broker %d  %.*s  (volume %s, usable %s)%s%s\n", broker, d->log_dir.len,
           d->log_dir.ptr, total, usable, d->error_code ? "  error " : "",
           d->error_code ? kafka_error_name(d->error_code) : "");
    for (int32_t i = 0; i < d->topics.n; i++) {
        const struct kmsg_describe_log_dirs_response_describe_log_dirs_topic *t = &d->topics.v[i];
        for (int32_t j = 0; j < t->partitions.n; j++) {
            const struct kmsg_describe_log_dirs_response_describe_log_dirs_partition *p =
                &t->partitions.v[j];
            char size[32];
            log_dirs_format_bytes(size, sizeof(size), p->partition_size);
            printf("    %.*s-%d  size %s (%" PRId64 " bytes)  offset lag %" PRId64 "\n",
                   t->name.len, t->name.ptr, p->partition_index, size, p->partition_size,
                   p->offset_lag);
        }
    }
}

/* One broker's answer for the topic's partitions; -1 after printing why it failed. */
static int log_dirs_ask_broker(struct cli_common *c, const struct rd_kafka_metadata_broker *mb,
                               const struct rd_kafka_metadata_topic *t)
{
    int32_t *ids = calloc((size_t)t->partition_cnt + 1, sizeof(*ids));
    if (ids == NULL)
        return -1;
    for (int i = 0; i < t->partition_cnt; i++)
        ids[i] = t->partitions[i].id;
    struct kmsg_describe_log_dirs_request_describable_log_dir_topic topic = {
        .topic = {t->topic, (int32_t)strlen(t->topic)},
        .partitions = {t->partition_cnt, ids},
    };
    struct kmsg_describe_log_dirs_request req;
    kmsg_describe_log_dirs_request_init(&req);
    req.topics.n = 1;
    req.topics.v = &topic;
    struct kmsg_describe_log_dirs_response resp;
    kmsg_describe_log_dirs_response_init(&resp);
    struct controller_client client;
    controller_client_init(&client, -1, NULL);
    snprintf(client.client_id, sizeof(client.client_id), "gregor-cli");
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    int rc = controller_client_call(&client, mb->host, mb->port, KPROTO_API_DESCRIBE_LOG_DIRS,
                                    LOG_DIRS_VERSION, &req, &resp, &buf, &arena, c->timeout_ms);
    controller_client_close(&client);
    free(ids);
    if (rc != 0 || resp.error_code != 0) {
        cli_error(c, "DescribeLogDirs to broker %d at %s:%d failed: %s", mb->id, mb->host, mb->port,
                  rc ? strerror(-rc) : kafka_error_name(resp.error_code));
        rc = -1;
    } else {
        for (int32_t i = 0; i < resp.results.n; i++)
            log_dirs_print_result(&resp.results.v[i], mb->id);
    }
    free(buf);
    arena_free(&arena);
    return rc;
}

int cli_print_log_dirs(struct cli_common *c, const struct rd_kafka_metadata *md,
                       const struct rd_kafka_metadata_topic *t)
{
    printf("  Log dirs of %s:\n", t->topic);
    int rc = 0;
    for (int i = 0; i < md->broker_cnt; i++)
        if (log_dirs_ask_broker(c, &md->brokers[i], t) < 0)
            rc = -1;
    return rc;
}
