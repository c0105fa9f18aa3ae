/*
 * The console's short memory (console_history.c): every console.sample.interval.ms (default
 * 10 s) a thread of its own samples each consumer group's total lag (the last
 * CONSOLE_LAG_POINTS samples: an hour at the default) and each topic's bytes-in counter (the
 * last CONSOLE_TRAFFIC_POINTS), in bounded rings owned by the broker context. Exists only
 * with console.listener.
 *
 * Threads. console_history_start/stop belong to the controlling thread; the write functions
 * may be called from any thread (the console's HTTP thread) between them.
 */
#ifndef GREGOR_BROKER_CONSOLE_HISTORY_H
#define GREGOR_BROKER_CONSOLE_HISTORY_H

#include "metrics/expo.h"

#define CONSOLE_LAG_POINTS 360
#define CONSOLE_LAG_GROUPS_MAX 64
#define CONSOLE_TRAFFIC_POINTS 31 /* 30 rates: 5 minutes at the default interval */
#define CONSOLE_TRAFFIC_TOPICS_MAX 1024

struct broker;
struct console_history;

/* Starts the sampling thread (first sample at once). NULL when out of memory or threads. */
struct console_history *console_history_start(struct broker *b, int32_t interval_ms);

/* Stops the thread (a sample in progress ends within one admin call) and frees h. NULL ok. */
void console_history_stop(struct console_history *h);

/* {"group_id":..,"interval_ms":..,"points":[{"time":ms,"lag":n|null},..]} oldest first; 404
 * when the group was never sampled. Returns the HTTP status. */
int console_history_write_lag(struct console_history *h, const char *group, struct expo *e);

/* "bytes_in_rate":[r|null,..], bytes per second over each interval, oldest first (empty when
 * the topic has had no traffic while sampled). */
void console_history_write_rates(struct console_history *h, const char *topic, struct expo *e);

#endif
