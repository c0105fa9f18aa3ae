/*
 * Definitions of the broker-only dynamic configs (see broker_dynamic.h). Defaults are Kafka's.
 */
#include "cluster/broker_dynamic.h"

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
