/*
 * The topic config table (Kafka 3.x LogConfig) and value validation.
 *
 * Invariant: TOPIC_CONFIGS is sorted by name (topic_config_find bsearches it; a unit test checks
 * the order). Defaults are Kafka's; each must itself validate.
 */
#include "cluster/topic_config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cluster/kafka_errors.h"

#define LMAX 9223372036854775807.0
#define IMAX 2147483647.0

static const char *const CLEANUP_POLICIES[] = {"compact", "delete", NULL};
static const char *const COMPRESSION_TYPES[] = {"uncompressed", "zstd",     "lz4", "snappy",
                                                "gzip",         "producer", NULL};
static const char *const TIMESTAMP_TYPES[] = {"CreateTime", "LogAppendTime", NULL};

#define B TOPIC_CONFIG_BOOLEAN
#define S TOPIC_CONFIG_STRING
#define I TOPIC_CONFIG_INT
#define L TOPIC_CONFIG_LONG
#define D TOPIC_CONFIG_DOUBLE
#define LS TOPIC_CONFIG_LIST

static const struct topic_config_def TOPIC_CONFIGS[] = {
    {"cleanup.policy", LS, "delete", 0, 0, CLEANUP_POLICIES, "log.cleanup.policy",
     "Retention policy for old segments: delete, compact or both"},
    {"compression.type", S, "producer", 0, 0, COMPRESSION_TYPES, "compression.type",
     "Final compression codec for the topic"},
    {"delete.retention.ms", L, "86400000", 0, LMAX, NULL, "log.cleaner.delete.retention.ms",
     "How long delete tombstones are retained for compacted topics"},
    {"file.delete.delay.ms", L, "60000", 0, LMAX, NULL, "log.segment.delete.delay.ms",
     "Time to wait before deleting a file from the filesystem"},
    {"flush.messages", L, "9223372036854775807", 1, LMAX, NULL, "log.flush.interval.messages",
     "Force fsync after this many messages"},
    {"flush.ms", L, "9223372036854775807", 0, LMAX, NULL, "log.flush.interval.ms",
     "Force fsync after this much time"},
    {"follower.replication.throttled.replicas", LS, "", 0, 0, NULL, NULL,
     "Replicas throttled on the follower side"},
    {"index.interval.bytes", I, "4096", 0, IMAX, NULL, "log.index.interval.bytes",
     "Bytes between offset index entries"},
    {"leader.replication.throttled.replicas", LS, "", 0, 0, NULL, NULL,
     "Replicas throttled on the leader side"},
    {"local.retention.bytes", L, "-2", -2, LMAX, NULL, "log.local.retention.bytes",
     "Local retention size when tiered storage is enabled"},
    {"local.retention.ms", L, "-2", -2, LMAX, NULL, "log.local.retention.ms",
     "Local retention time when tiered storage is enabled"},
    {"max.compaction.lag.ms", L, "9223372036854775807", 1, LMAX, NULL,
     "log.cleaner.max.compaction.lag.ms", "Maximum time a message stays ineligible for compaction"},
    {"max.message.bytes", I, "1048588", 0, IMAX, NULL, "message.max.bytes",
     "Largest record batch size allowed"},
    {"message.downconversion.enable", B, "true", 0, 0, NULL, "log.message.downconversion.enable",
     "Whether down-conversion for old consumers is enabled"},
    {"message.format.version", S, "3.0-IV1", 0, 0, NULL, "log.message.format.version",
     "Deprecated message format version"},
    {"message.timestamp.after.max.ms", L, "9223372036854775807", 0, LMAX, NULL,
     "log.message.timestamp.after.max.ms", "Allowed amount a timestamp may be ahead of the broker"},
    {"message.timestamp.before.max.ms", L, "9223372036854775807", 0, LMAX, NULL,
     "log.message.timestamp.before.max.ms", "Allowed amount a timestamp may be behind the broker"},
    {"message.timestamp.difference.max.ms", L, "9223372036854775807", 0, LMAX, NULL,
     "log.message.timestamp.difference.max.ms", "Deprecated; maximum timestamp difference"},
    {"message.timestamp.type", S, "CreateTime", 0, 0, TIMESTAMP_TYPES, "log.message.timestamp.type",
     "CreateTime or LogAppendTime"},
    {"min.cleanable.dirty.ratio", D, "0.5", 0, 1, NULL, "log.cleaner.min.cleanable.ratio",
     "Minimum dirty ratio before the log is eligible for cleaning"},
    {"min.compaction.lag.ms", L, "0", 0, LMAX, NULL, "log.cleaner.min.compaction.lag.ms",
     "Minimum time a message stays uncompacted"},
    {"min.insync.replicas", I, "1", 1, IMAX, NULL, "min.insync.replicas",
     "Minimum in-sync replicas for acks=all"},
    {"preallocate", B, "false", 0, 0, NULL, "log.preallocate",
     "Preallocate the segment file when creating it"},
    {"remote.storage.enable", B, "false", 0, 0, NULL, NULL, "Tiered storage for the topic"},
    {"retention.bytes", L, "-1", -LMAX, LMAX, NULL, "log.retention.bytes",
     "Maximum partition size before old segments are discarded"},
    {"retention.ms", L, "604800000", -1, LMAX, NULL, "log.retention.ms",
     "Maximum age of a segment before it is discarded"},
    {"segment.bytes", I, "1073741824", 14, IMAX, NULL, "log.segment.bytes", "Segment file size"},
    {"segment.index.bytes", I, "10485760", 4, IMAX, NULL, "log.index.size.max.bytes",
     "Size of the offset index preallocated per segment"},
    {"segment.jitter.ms", L, "0", 0, LMAX, NULL, "log.roll.jitter.ms",
     "Random jitter subtracted from segment.ms"},
    {"segment.ms", L, "604800000", 1, LMAX, NULL, "log.roll.ms",
     "Time after which a segment is rolled"},
    {"unclean.leader.election.enable", B, "false", 0, 0, NULL, "unclean.leader.election.enable",
     "Whether an out-of-sync replica may become leader"},
};

#undef B
#undef S
#undef I
#undef L
#undef D
#undef LS

#define N_TOPIC_CONFIGS (sizeof(TOPIC_CONFIGS) / sizeof(TOPIC_CONFIGS[0]))

static int def_cmp(const void *key, const void *elem)
{
    return strcmp(key, ((const struct topic_config_def *)elem)->name);
}

const struct topic_config_def *topic_config_find(const char *name)
{
    return bsearch(name, TOPIC_CONFIGS, N_TOPIC_CONFIGS, sizeof(TOPIC_CONFIGS[0]), def_cmp);
}

size_t topic_config_count(void)
{
    return N_TOPIC_CONFIGS;
}

const struct topic_config_def *topic_config_at(size_t i)
{
    return i < N_TOPIC_CONFIGS ? &TOPIC_CONFIGS[i] : NULL;
}

static const char *type_name(enum topic_config_type t)
{
    switch (t) {
    case TOPIC_CONFIG_BOOLEAN:
        return "BOOLEAN";
    case TOPIC_CONFIG_STRING:
        return "STRING";
    case TOPIC_CONFIG_INT:
        return "INT";
    case TOPIC_CONFIG_LONG:
        return "LONG";
    case TOPIC_CONFIG_DOUBLE:
        return "DOUBLE";
    case TOPIC_CONFIG_LIST:
        return "LIST";
    }
    return "UNKNOWN";
}

static bool in_set(const char *const *set, const char *v, size_t n)
{
    for (; *set; set++)
        if (strlen(*set) == n && strncmp(*set, v, n) == 0)
            return true;
    return false;
}

/* Kafka trims whitespace around numbers and list items before parsing. */
static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

static int invalid(char *msg, size_t msglen, const struct topic_config_def *d, const char *value,
                   const char *why)
{
    snprintf(msg, msglen, "Invalid value %s for configuration %s: %s", value, d->name, why);
    return KAFKA_ERR_INVALID_CONFIG;
}

static int validate_integer(const struct topic_config_def *d, const char *value, char *msg,
                            size_t msglen)
{
    const char *s = skip_space(value);
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    char why[96];
    if (end == s || *skip_space(end) != 0 || errno == ERANGE ||
        (d->type == TOPIC_CONFIG_INT && (v < -2147483648LL || v > 2147483647LL))) {
        snprintf(why, sizeof(why), "Not a number of type %s", type_name(d->type));
        return invalid(msg, msglen, d, value, why);
    }
    if ((double)v < d->min) {
        snprintf(why, sizeof(why), "Value must be at least %.0f", d->min);
        return invalid(msg, msglen, d, value, why);
    }
    if ((double)v > d->max) {
        snprintf(why, sizeof(why), "Value must be no more than %.0f", d->max);
        return invalid(msg, msglen, d, value, why);
    }
    return 0;
}

static int validate_double(const struct topic_config_def *d, const char *value, char *msg,
                           size_t msglen)
{
    const char *s = skip_space(value);
    char *end;
    double v = strtod(s, &end);
    if (end == s || *skip_space(end) != 0 || isnan(v))
        return invalid(msg, msglen, d, value, "Not a number of type DOUBLE");
    if (v < d->min || v > d->max) {
        char why[96];
        snprintf(why, sizeof(why), "Value must be between %g and %g", d->min, d->max);
        return invalid(msg, msglen, d, value, why);
    }
    return 0;
}

static int validate_list(const struct topic_config_def *d, const char *value, char *msg,
                         size_t msglen)
{
    if (d->valid_values == NULL)
        return 0;
    const char *p = value;
    while (*skip_space(p)) {
        p = skip_space(p);
        size_t n = strcspn(p, ",");
        size_t t = n;
        while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
            t--;
        if (!in_set(d->valid_values, p, t))
            return invalid(msg, msglen, d, value, "String must be one of: compact, delete");
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

int topic_config_validate(const char *name, const char *value, char *msg, size_t msglen)
{
    const struct topic_config_def *d = topic_config_find(name);
    if (d == NULL) {
        snprintf(msg, msglen, "Unknown topic config name: %s", name);
        return KAFKA_ERR_INVALID_CONFIG;
    }
    return topic_config_validate_def(d, value, msg, msglen);
}

int topic_config_validate_def(const struct topic_config_def *d, const char *value, char *msg,
                              size_t msglen)
{
    if (value == NULL) {
        snprintf(msg, msglen, "Null value not supported for topic config %s", d->name);
        return KAFKA_ERR_INVALID_CONFIG;
    }
    switch (d->type) {
    case TOPIC_CONFIG_BOOLEAN:
        if (strcasecmp(value, "true") != 0 && strcasecmp(value, "false") != 0)
            return invalid(msg, msglen, d, value, "Expected value to be either true or false");
        return 0;
    case TOPIC_CONFIG_INT:
    case TOPIC_CONFIG_LONG:
        return validate_integer(d, value, msg, msglen);
    case TOPIC_CONFIG_DOUBLE:
        return validate_double(d, value, msg, msglen);
    case TOPIC_CONFIG_LIST:
        return validate_list(d, value, msg, msglen);
    case TOPIC_CONFIG_STRING:
        if (d->valid_values && !in_set(d->valid_values, value, strlen(value))) {
            char why[160] = "String must be one of:";
            for (const char *const *v = d->valid_values; *v; v++)
                snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s %s",
                         v == d->valid_values ? "" : ",", *v);
            return invalid(msg, msglen, d, value, why);
        }
        return 0;
    }
    return 0;
}

void topic_config_resolve(const struct topic_config_def *def, const char *topic_value,
                          topic_config_broker_lookup_fn lookup, void *arg,
                          struct topic_config_value *out)
{
    static const enum topic_config_source broker_sources[] = {
        TOPIC_CONFIG_SOURCE_DYNAMIC_BROKER, TOPIC_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER,
        TOPIC_CONFIG_SOURCE_STATIC_BROKER};
    memset(out, 0, sizeof(*out));
    out->def = def;
    if (topic_value) {
        out->synonyms[out->n_synonyms++] =
            (struct topic_config_synonym){def->name, topic_value, TOPIC_CONFIG_SOURCE_TOPIC};
    }
    for (size_t i = 0; lookup && def->broker_synonym && i < 3; i++) {
        const char *v = lookup(arg, def->broker_synonym, broker_sources[i]);
        if (v)
            out->synonyms[out->n_synonyms++] =
                (struct topic_config_synonym){def->broker_synonym, v, broker_sources[i]};
    }
    if (def->broker_synonym) {
        out->synonyms[out->n_synonyms++] = (struct topic_config_synonym){
            def->broker_synonym, def->default_value, TOPIC_CONFIG_SOURCE_DEFAULT};
    }
    if (out->n_synonyms > 0 && out->synonyms[0].source != TOPIC_CONFIG_SOURCE_DEFAULT) {
        out->value = out->synonyms[0].value;
        out->source = out->synonyms[0].source;
    } else {
        out->value = def->default_value;
        out->source = TOPIC_CONFIG_SOURCE_DEFAULT;
        out->is_default = true;
    }
}
