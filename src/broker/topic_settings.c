/* Effective topic settings from overrides, broker properties and defaults. */
#include "broker/topic_settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/topic_config.h"

/* Per-thread scratch for broker values: lookup results are copied out before the next call. */
static _Thread_local char topic_settings_buf[1024];

const char *topic_settings_broker_lookup(void *arg, const char *property,
                                         enum topic_config_source source)
{
    const struct topic_settings_source *src = arg;
    switch (source) {
    case TOPIC_CONFIG_SOURCE_DYNAMIC_BROKER:
        return src->img ? metadata_image_broker_config(src->img, src->cfg->node_id, property)
                        : NULL;
    case TOPIC_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER:
        return src->img ? metadata_image_broker_config(src->img, -1, property) : NULL;
    case TOPIC_CONFIG_SOURCE_STATIC_BROKER:
        if (config_describe(src->cfg, property, topic_settings_buf, sizeof(topic_settings_buf)))
            return NULL;
        return topic_settings_buf;
    default:
        return NULL;
    }
}

static const char *topic_settings_value(const struct topic_settings_source *src,
                                        const struct metadata_topic *t, const char *name, char *buf,
                                        size_t len)
{
    const struct topic_config_def *def = topic_config_find(name);
    if (def == NULL)
        return NULL;
    struct topic_config_value v;
    const char *override = t ? metadata_topic_config(t, name) : NULL;
    topic_config_resolve(def, override, topic_settings_broker_lookup, (void *)src, &v);
    if (v.value == NULL)
        return NULL;
    snprintf(buf, len, "%s", v.value);
    return buf;
}

static int64_t topic_settings_i64(const struct topic_settings_source *src,
                                  const struct metadata_topic *t, const char *name, int64_t dflt)
{
    char buf[128];
    const char *v = topic_settings_value(src, t, name, buf, sizeof(buf));
    if (v == NULL || *v == '\0')
        return dflt;
    char *end;
    long long x = strtoll(v, &end, 10);
    return *end == '\0' ? x : dflt;
}

void topic_settings_resolve(const struct broker_config *cfg, const struct metadata_image *img,
                            const struct metadata_topic *t, struct topic_settings *out)
{
    const struct topic_settings_source source = {cfg, img}, *src = &source;
    struct log_config *lc = &out->log;
    *lc = log_config_defaults();
    lc->segment_bytes = topic_settings_i64(src, t, "segment.bytes", lc->segment_bytes);
    lc->segment_ms = topic_settings_i64(src, t, "segment.ms", lc->segment_ms);
    lc->index_interval_bytes =
        (int32_t)topic_settings_i64(src, t, "index.interval.bytes", lc->index_interval_bytes);
    lc->segment_index_bytes =
        (int32_t)topic_settings_i64(src, t, "segment.index.bytes", lc->segment_index_bytes);
    lc->retention_ms = topic_settings_i64(src, t, "retention.ms", lc->retention_ms);
    lc->retention_bytes = topic_settings_i64(src, t, "retention.bytes", lc->retention_bytes);
    lc->flush_interval_messages =
        topic_settings_i64(src, t, "flush.messages", lc->flush_interval_messages);
    lc->flush_interval_ms = topic_settings_i64(src, t, "flush.ms", lc->flush_interval_ms);
    lc->file_delete_delay_ms =
        topic_settings_i64(src, t, "file.delete.delay.ms", lc->file_delete_delay_ms);
    lc->max_message_bytes =
        (int32_t)topic_settings_i64(src, t, "max.message.bytes", lc->max_message_bytes);
    lc->delete_retention_ms =
        topic_settings_i64(src, t, "delete.retention.ms", lc->delete_retention_ms);
    lc->min_compaction_lag_ms =
        topic_settings_i64(src, t, "min.compaction.lag.ms", lc->min_compaction_lag_ms);
    char buf[128];
    const char *ratio = topic_settings_value(src, t, "min.cleanable.dirty.ratio", buf, sizeof(buf));
    if (ratio && *ratio)
        lc->min_cleanable_dirty_ratio = strtod(ratio, NULL);
    const char *policy = topic_settings_value(src, t, "cleanup.policy", buf, sizeof(buf));
    if (policy) {
        lc->compact = strstr(policy, "compact") != NULL;
        lc->delete_retention = strstr(policy, "delete") != NULL;
    }
    const char *tt = topic_settings_value(src, t, "message.timestamp.type", buf, sizeof(buf));
    out->log_append_time = tt && strcmp(tt, "LogAppendTime") == 0;
    out->min_insync_replicas = (int32_t)topic_settings_i64(src, t, "min.insync.replicas", 1);
    static const char *codecs[] = {"uncompressed", "gzip", "snappy", "lz4", "zstd"};
    const char *ct = topic_settings_value(src, t, "compression.type", buf, sizeof(buf));
    out->compression_codec = -1;
    for (int i = 0; ct && i < 5; i++)
        if (strcmp(ct, codecs[i]) == 0)
            out->compression_codec = i;
    out->ts_before_max_ms =
        topic_settings_i64(src, t, "message.timestamp.before.max.ms", INT64_MAX);
    out->ts_after_max_ms = topic_settings_i64(src, t, "message.timestamp.after.max.ms", INT64_MAX);
    int64_t diff = topic_settings_i64(src, t, "message.timestamp.difference.max.ms", INT64_MAX);
    if (diff < out->ts_before_max_ms)
        out->ts_before_max_ms = diff;
    if (diff < out->ts_after_max_ms)
        out->ts_after_max_ms = diff;
}
