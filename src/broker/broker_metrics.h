/*
 * The broker's side of the metrics endpoint (src/metrics/): what a scrape reads from the
 * broker's own state — partitions and per-topic traffic, the metadata image, the controller,
 * the network counters — and the /health answer. Runs on the metrics HTTP thread.
 */
#ifndef GREGOR_BROKER_BROKER_METRICS_H
#define GREGOR_BROKER_BROKER_METRICS_H

#include "metrics/metrics.h"

struct broker;

/* The metrics_source for broker b (ctx = b). */
struct metrics_source broker_metrics_source(struct broker *b);

#endif
