/*
 * The dynamic broker configs (KIP-226) that are not a topic config's broker synonym: Kafka's
 * DynamicConnectionQuota (max.connections*), DynamicThreadPool (num.io.threads), the
 * listener's num.network.threads and LogCleaner's log.cleaner.* (threads, backoff, buffers,
 * I/O throttle). The controller validates them with these definitions; every
 * broker applies them (broker/broker.c). Constant data; pure functions, any thread.
 */
#ifndef GREGOR_CLUSTER_BROKER_DYNAMIC_H
#define GREGOR_CLUSTER_BROKER_DYNAMIC_H

#include <stdbool.h>

#include "cluster/topic_config.h"

/* The definition of a broker-only dynamic config, or NULL. */
const struct topic_config_def *broker_dynamic_def(const char *name);

/* True for the thread counts Kafka only lets change to between half and double the current
 * value (DynamicThreadPool.validateReconfiguration), checked by the broker that receives the
 * change against its own current count. */
bool broker_dynamic_is_thread_count(const char *name);

#endif
