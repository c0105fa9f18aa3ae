/*
 * The log cleaner's run-time settings (Kafka's dynamic log.cleaner.backoff.ms and
 * log.cleaner.io.max.bytes.per.second): resolved from this broker's dynamic config, the
 * cluster default, or the static property, and handed to the running cleaner.
 */
#ifndef GREGOR_BROKER_CLEANER_SETTINGS_H
#define GREGOR_BROKER_CLEANER_SETTINGS_H

#include "storage/cleaner.h"

struct broker;
struct broker_config;
struct log;
struct metadata_image;

/* The tuning from the static properties alone (start-up). */
struct log_cleaner_tuning cleaner_settings_static(const struct broker_config *cfg);

/* Applies the image's values to the running cleaner. Controller thread, after a publish. */
void cleaner_settings_apply(struct broker *b, const struct metadata_image *img);

/* log_compact_fn: one compaction pass; returns the bytes read and written (for the throttle). */
int cleaner_settings_compact(struct log *log, int64_t now_ms, void *arg);

#endif
