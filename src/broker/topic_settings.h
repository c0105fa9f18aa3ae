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
#include "cluster/topic_config.h"
#include "storage/log.h"

struct topic_settings {
    struct log_config log;
    bool log_append_time;
    int32_t min_insync_replicas;
    int compression_codec;    /* enum record_compression, or -1 for "producer" */
    int64_t ts_before_max_ms; /* INT64_MAX = unlimited */
    int64_t ts_after_max_ms;
};

/* Where broker values come from: the dynamic configs (KIP-226) in img (may be NULL), this
 * broker's (cfg->node_id) first, then the cluster default, then the static properties. */
struct topic_settings_source {
    const struct broker_config *cfg;
    const struct metadata_image *img;
};

/* t may be NULL (broker defaults only); img may be NULL (no dynamic configs yet). */
void topic_settings_resolve(const struct broker_config *cfg, const struct metadata_image *img,
                            const struct metadata_topic *t, struct topic_settings *out);

/* topic_config_broker_lookup_fn over a struct topic_settings_source: the value of a broker
 * property from one source, or NULL. Static values go through a per-thread buffer: copy a
 * result out before the next call on the same thread. */
const char *topic_settings_broker_lookup(void *src, const char *property,
                                         enum topic_config_source source);

#endif
