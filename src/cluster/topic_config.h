/*
 * Kafka's topic-level configs: names, types, defaults, valid ranges and the broker property
 * each one falls back to (its "synonym"), so CreateTopics/AlterConfigs can validate values and
 * DescribeConfigs can report value, default, source and synonyms the way Kafka does.
 *
 * The table is constant data; every function here is pure and callable from any thread.
 */
#ifndef GREGOR_CLUSTER_TOPIC_CONFIG_H
#define GREGOR_CLUSTER_TOPIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DescribeConfigs ConfigType codes. */
enum topic_config_type {
    TOPIC_CONFIG_BOOLEAN = 1,
    TOPIC_CONFIG_STRING = 2,
    TOPIC_CONFIG_INT = 3,
    TOPIC_CONFIG_LONG = 5,
    TOPIC_CONFIG_DOUBLE = 6,
    TOPIC_CONFIG_LIST = 7,
};

/* DescribeConfigs ConfigSource codes. */
enum topic_config_source {
    TOPIC_CONFIG_SOURCE_UNKNOWN = 0,
    TOPIC_CONFIG_SOURCE_TOPIC = 1,
    TOPIC_CONFIG_SOURCE_DYNAMIC_BROKER = 2,
    TOPIC_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER = 3,
    TOPIC_CONFIG_SOURCE_STATIC_BROKER = 4,
    TOPIC_CONFIG_SOURCE_DEFAULT = 5,
};

struct topic_config_def {
    const char *name;
    enum topic_config_type type;
    const char *default_value;
    /* Inclusive bounds for INT/LONG (as integers) and DOUBLE; ignored otherwise. */
    double min;
    double max;
    const char *const *valid_values; /* NULL-terminated, case-sensitive; NULL = any */
    const char *broker_synonym;      /* broker property it defaults from, or NULL */
    const char *doc;
};

/* The definition for `name`, or NULL if Kafka has no such topic config. O(log n). */
const struct topic_config_def *topic_config_find(const char *name);

/* Iteration in name order. */
size_t topic_config_count(void);
const struct topic_config_def *topic_config_at(size_t i);

/*
 * Checks `value` for config `name`. Returns 0 (KAFKA_ERR_NONE) or KAFKA_ERR_INVALID_CONFIG with
 * a Kafka-style message in `msg` ("Unknown topic config name: x", "Invalid value abc for
 * configuration retention.ms: Not a number of type LONG").
 */
int topic_config_validate(const char *name, const char *value, char *msg, size_t msglen);
/* The same check against a definition (also the broker-only dynamic configs'). */
int topic_config_validate_def(const struct topic_config_def *d, const char *value, char *msg,
                              size_t msglen);

/* The broker's value of a property from one source (TOPIC_CONFIG_SOURCE_DYNAMIC_BROKER,
 * _DYNAMIC_DEFAULT_BROKER or _STATIC_BROKER) if it is set there, else NULL. */
typedef const char *(*topic_config_broker_lookup_fn)(void *arg, const char *property,
                                                     enum topic_config_source source);

struct topic_config_synonym {
    const char *name;
    const char *value;
    enum topic_config_source source;
};

/* What DescribeConfigs reports for one topic config. Strings point into the inputs/table. */
struct topic_config_value {
    const struct topic_config_def *def;
    const char *value;
    enum topic_config_source source;
    bool is_default;
    unsigned n_synonyms;
    struct topic_config_synonym synonyms[5]; /* most specific first, as Kafka orders them */
};

/*
 * Resolves the effective value of `def` for a topic whose override is `topic_value` (NULL if
 * none): topic override, else the broker's static value of the synonym, else the default.
 * `lookup` may be NULL (no broker overrides).
 */
void topic_config_resolve(const struct topic_config_def *def, const char *topic_value,
                          topic_config_broker_lookup_fn lookup, void *arg,
                          struct topic_config_value *out);

#endif
