/*
 * Definitions of the broker-only dynamic configs (see broker_dynamic.h). Defaults are Kafka's.
 */
#include "cluster/broker_dynamic.h"

#include <float.h>
#include <string.h>

static const struct topic_config_def broker_dynamic_defs[] = {
    {"max.connections", TOPIC_CONFIG_INT, "2147483647", 0, 2147483647.0, NULL, NULL,
     "The maximum number of connections the broker allows at any time."},
    {"max.connections.per.ip", TOPIC_CONFIG_INT, "2147483647", 0, 2147483647.0, NULL, NULL,
     "The maximum number of connections allowed from each ip address."},
    /* Gregor's I/O workers read, handle and answer requests: num.io.threads sizes them. */
    {"num.io.threads", TOPIC_CONFIG_INT, "8", 1, 256, NULL, NULL,
     "The number of threads that the server uses for processing requests."},
    /* Accepted as Kafka does; Gregor has no separate network threads (the I/O workers do the
     * network work too), so the value is stored and described but sizes nothing. */
    {"num.network.threads", TOPIC_CONFIG_INT, "3", 1, 256, NULL, NULL,
     "The number of threads that the server uses for network requests."},
    /* Kafka's LogCleaner.ReconfigurableConfigs (the topic-config synonyms among log.cleaner.*
     * are dynamic as topic defaults). Gregor's cleaner applies backoff.ms and
     * io.max.bytes.per.second; it runs one thread and sizes its own buffers, so threads and
     * the buffer settings are validated, stored and described only. */
    {"log.cleaner.threads", TOPIC_CONFIG_INT, "1", 0, 2147483647.0, NULL, NULL,
     "The number of background threads to use for log cleaning"},
    {"log.cleaner.io.max.bytes.per.second", TOPIC_CONFIG_DOUBLE, "1.7976931348623157E308", -DBL_MAX,
     DBL_MAX, NULL, NULL,
     "The log cleaner will be throttled so that the sum of its read and write i/o will be less "
     "than this value on average"},
    {"log.cleaner.dedupe.buffer.size", TOPIC_CONFIG_LONG, "134217728", -9223372036854775807.0,
     9223372036854775807.0, NULL, NULL,
     "The total memory used for log deduplication across all cleaner threads"},
    {"log.cleaner.io.buffer.size", TOPIC_CONFIG_INT, "524288", 0, 2147483647.0, NULL, NULL,
     "The total memory used for log cleaner I/O buffers across all cleaner threads"},
    {"log.cleaner.io.buffer.load.factor", TOPIC_CONFIG_DOUBLE, "0.9", -DBL_MAX, DBL_MAX, NULL, NULL,
     "Log cleaner dedupe buffer load factor."},
    {"log.cleaner.backoff.ms", TOPIC_CONFIG_LONG, "15000", 0, 9223372036854775807.0, NULL, NULL,
     "The amount of time to sleep when there are no logs to clean"},
};

#define N_DEFS (sizeof(broker_dynamic_defs) / sizeof(broker_dynamic_defs[0]))

const struct topic_config_def *broker_dynamic_def(const char *name)
{
    for (size_t i = 0; i < N_DEFS; i++)
        if (strcmp(broker_dynamic_defs[i].name, name) == 0)
            return &broker_dynamic_defs[i];
    return NULL;
}

bool broker_dynamic_is_thread_count(const char *name)
{
    return strcmp(name, "num.io.threads") == 0 || strcmp(name, "num.network.threads") == 0 ||
           strcmp(name, "log.cleaner.threads") == 0;
}
