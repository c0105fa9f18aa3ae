/*
 * Effective topic settings: a topic's config overrides from the metadata image, falling back to
 * the broker's properties (Kafka's synonyms, e.g. retention.ms <- log.retention.ms), then to
 * Kafka's defaults.
 */
#ifndef GREGOR_BROKER_TOPIC_SETTINGS_H
#define GREGOR_BROKER_TOPIC_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/config.h"
#include "cluster/image.h"
#include "storage/log.h"

struct topic_settings {
    struct log_config log;
    bool log_append_time;
    int32_t min_insync_replicas;
    int compression_codec;    /* enum record_compression, or -1 for "producer" */
    int64_t ts_before_max_ms; /* INT64_MAX = unlimited */
    int64_t ts_after_max_ms;
};

/* t may be NULL (broker defaults only). */
void topic_settings_resolve(const struct broker_config *cfg, const struct metadata_topic *t,
                            struct topic_settings *out);

/* The value DescribeConfigs reports for a broker property, or NULL. */
const char *topic_settings_broker_lookup(void *cfg, const char *property);

#endif
