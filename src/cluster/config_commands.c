/*
 * AlterConfigs (full replace) and IncrementalAlterConfigs (set / delete / append / subtract) on
 * topic configs and on dynamic broker configs (KIP-226: a BROKER resource, one broker id or ""
 * for the cluster-wide default). Each resource is validated as a whole: any bad entry fails it
 * and none of its changes apply. A valid resource becomes one config record whose operations
 * turn the current overrides into the requested ones.
 *
 * Dynamic broker configs are the broker properties topic configs default from (log.retention.ms,
 * log.segment.bytes, message.max.bytes, min.insync.replicas, ...: Kafka's DynamicLogConfig),
 * validated as the topic config they stand for; any other key is refused (Kafka: "Cannot update
 * these configs dynamically").
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/broker_dynamic.h"
#include "cluster/commands.h"
#include "cluster/topic_config.h"

/* The resulting overrides of one topic, built up before the record is written. */
struct override_set {
    uint32_t n;
    struct metadata_config_entry *e; /* in the command's arena; value NULL = deleted */
};

static struct metadata_config_entry *override_find(struct override_set *s, const char *name)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (strcmp(s->e[i].name, name) == 0)
            return &s->e[i];
    return NULL;
}

/* Sets (value != NULL) or deletes a key; `capacity` is guaranteed by the caller. */
static void override_put(struct override_set *s, const char *name, char *value)
{
    struct metadata_config_entry *e = override_find(s, name);
    if (e == NULL) {
        e = &s->e[s->n++];
        e->name = (char *)name;
    }
    e->value = value;
}

static bool list_contains(const char *list, const char *item, size_t n)
{
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, item, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

/*
 * APPEND adds items not yet present; SUBTRACT removes items. The base list is the current
 * override, or the default when there is none (as Kafka does). Returns an arena string.
 */
static void list_add(char *out, const char *item, size_t n)
{
    if (n == 0 || list_contains(out, item, n))
        return;
    if (out[0])
        strcat(out, ",");
    strncat(out, item, n);
}

static char *list_edit(struct command *cmd, const char *base, const char *items, bool append)
{
    char *out = arena_alloc(&cmd->arena, strlen(base) + strlen(items) + 2);
    if (out == NULL)
        return NULL;
    out[0] = 0;
    for (const char *p = base; *p; p += *p == ',') {
        size_t n = strcspn(p, ",");
        if (append || !list_contains(items, p, n))
            list_add(out, p, n);
        p += n;
    }
    for (const char *p = items; append && *p; p += *p == ',') {
        size_t n = strcspn(p, ",");
        list_add(out, p, n);
        p += n;
    }
    return out;
}

static bool has_duplicate_key(const struct controller_config_alter *a)
{
    for (uint32_t i = 0; i < a->n_changes; i++)
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(a->changes[i].name, a->changes[j].name) == 0)
                return true;
    return false;
}

/* The current overrides a change starts from: a topic's, or a broker's dynamic configs. */
struct override_base {
    const struct metadata_config_entry *e;
    uint32_t n;
    bool broker;
};

static const char *base_find(const struct override_base *b, const char *name)
{
    for (uint32_t i = 0; i < b->n; i++)
        if (strcmp(b->e[i].name, name) == 0)
            return b->e[i].value;
    return NULL;
}

/* The definition a dynamic broker config is validated with: a topic config it stands for
 * (its broker synonym) or one of the broker-only ones; NULL if it cannot change at run time. */
static const struct topic_config_def *broker_dynamic_config_def(const char *name)
{
    const struct topic_config_def *d = broker_dynamic_def(name);
    if (d != NULL)
        return d;
    for (size_t i = 0; i < topic_config_count(); i++) {
        const struct topic_config_def *def = topic_config_at(i);
        if (def->broker_synonym && strcmp(def->broker_synonym, name) == 0)
            return def;
    }
    return NULL;
}

/* The definition a key is validated with; NULL (with the result's error set) if unknown. */
static const struct topic_config_def *override_def(struct command *cmd,
                                                   struct controller_topic_result *r,
                                                   const struct override_base *b, const char *name)
{
    const struct topic_config_def *def =
        b->broker ? broker_dynamic_config_def(name) : topic_config_find(name);
    if (def == NULL && b->broker)
        command_set_error(cmd, r, KAFKA_ERR_INVALID_CONFIG,
                          "Cannot update these configs dynamically: Set(%s)", name);
    else if (def == NULL)
        command_set_error(cmd, r, KAFKA_ERR_INVALID_CONFIG, "Unknown topic config name: %s", name);
    return def;
}

/* Applies one incremental change to `s`; false (with the result's error set) if invalid. */
static bool incremental_change(struct command *cmd, struct controller_topic_result *r,
                               const struct controller_config_change *c, struct override_set *s,
                               const struct override_base *b)
{
    const struct topic_config_def *def = override_def(cmd, r, b, c->name);
    if (def == NULL)
        return false;
    switch (c->op) {
    case CONTROLLER_CONFIG_SET:
        override_put(s, c->name, (char *)c->value);
        return true;
    case CONTROLLER_CONFIG_DELETE:
        override_put(s, c->name, NULL);
        return true;
    case CONTROLLER_CONFIG_APPEND:
    case CONTROLLER_CONFIG_SUBTRACT: {
        if (def->type != TOPIC_CONFIG_LIST) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_CONFIG,
                              "Config value %s is not allowed for config key: %s",
                              c->op == CONTROLLER_CONFIG_APPEND ? "append" : "subtract", c->name);
            return false;
        }
        const struct metadata_config_entry *cur = override_find(s, c->name);
        const char *base = cur ? cur->value : base_find(b, c->name);
        if (cur && cur->value == NULL)
            base = NULL;
        char *v = list_edit(cmd, base ? base : def->default_value, c->value ? c->value : "",
                            c->op == CONTROLLER_CONFIG_APPEND);
        if (v == NULL)
            return false;
        override_put(s, c->name, v);
        return true;
    }
    }
    command_set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST, "Unknown config operation %d", c->op);
    return false;
}

/*
 * Computes the operations for one topic into `s`. For a full replace every current override
 * not named in the request is deleted. Returns false with r's error set if anything is invalid.
 */
static bool build_ops(struct command *cmd, struct controller_topic_result *r,
                      const struct controller_config_alter *a, const struct override_base *b,
                      struct override_set *s)
{
    bool incremental = cmd->type == COMMAND_INCREMENTAL_ALTER_CONFIGS;
    if (has_duplicate_key(a)) {
        command_set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST, "Error due to duplicate config keys");
        return false;
    }
    if (!incremental)
        for (uint32_t i = 0; i < b->n; i++)
            override_put(s, b->e[i].name, NULL);
    for (uint32_t i = 0; i < a->n_changes; i++) {
        const struct controller_config_change *c = &a->changes[i];
        if (incremental) {
            if (!incremental_change(cmd, r, c, s, b))
                return false;
        } else {
            if (b->broker && override_def(cmd, r, b, c->name) == NULL)
                return false;
            override_put(s, c->name, (char *)c->value);
            if (c->value == NULL) {
                command_set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST,
                                  "Null value not supported for : %s", c->name);
                return false;
            }
        }
    }
    char msg[512];
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->e[i].value == NULL)
            continue;
        const struct topic_config_def *def =
            b->broker ? broker_dynamic_config_def(s->e[i].name) : topic_config_find(s->e[i].name);
        int code = def ? topic_config_validate_def(def, s->e[i].value, msg, sizeof(msg))
                       : topic_config_validate(s->e[i].name, s->e[i].value, msg, sizeof(msg));
        if (code) {
            command_set_error(cmd, r, (int16_t)code, "%s", msg);
            return false;
        }
    }
    return true;
}

/* Kafka's broker resource names: "" (the cluster default, -1) or a broker id. */
static bool broker_resource_id(const char *name, int32_t *id)
{
    if (name[0] == '\0') {
        *id = -1;
        return true;
    }
    char *end;
    long v = strtol(name, &end, 10);
    if (*end != '\0' || v < 0 || v > INT32_MAX)
        return false;
    *id = (int32_t)v;
    return true;
}

/* One BROKER resource: 1 record emitted, 0 none (refused or nothing to do), or -ENOMEM. */
static int alter_broker_configs(struct command *cmd, struct controller_topic_result *r,
                                const struct controller_config_alter *a,
                                struct metadata_image *scratch, struct metadata_buf *out)
{
    int32_t id;
    if (!broker_resource_id(a->topic, &id)) {
        command_set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST, "Invalid broker name '%s'", a->topic);
        return 0;
    }
    const struct metadata_broker_configs *cur = metadata_image_broker_configs(scratch, id);
    struct override_base b = {cur ? cur->configs : NULL, cur ? cur->n_configs : 0, true};
    struct override_set s = {0};
    s.e = arena_calloc(&cmd->arena, b.n + a->n_changes + 1, sizeof(*s.e));
    if (s.e == NULL)
        return -ENOMEM;
    if (!build_ops(cmd, r, a, &b, &s) || cmd->validate_only || s.n == 0)
        return 0;
    struct metadata_record rec = {.type = METADATA_REC_BROKER_CONFIG};
    rec.broker_config = (struct metadata_rec_broker_config){id, s.n, s.e};
    int rc = command_emit(scratch, out, &rec);
    return rc < 0 ? rc : 1;
}

int command_validate_alter_configs(struct command *cmd, struct metadata_image *scratch,
                                   struct metadata_buf *out)
{
    int emitted = 0;
    for (size_t i = 0; i < cmd->n; i++) {
        const struct controller_config_alter *a = &cmd->alter[i];
        struct controller_topic_result *r = &cmd->results[i];
        if (a->broker) {
            int rc = alter_broker_configs(cmd, r, a, scratch, out);
            if (rc < 0)
                return rc;
            emitted += rc;
            continue;
        }
        const struct metadata_topic *t = metadata_image_topic_by_name(scratch, a->topic);
        if (t == NULL) {
            command_set_error(cmd, r, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                              "The topic '%s' does not exist.", a->topic);
            continue;
        }
        memcpy(r->topic_id, t->id, METADATA_UUID_LEN);
        struct override_set s = {0};
        s.e = arena_calloc(&cmd->arena, t->n_configs + a->n_changes + 1, sizeof(*s.e));
        if (s.e == NULL)
            return -ENOMEM;
        struct override_base b = {t->configs, t->n_configs, false};
        if (!build_ops(cmd, r, a, &b, &s))
            continue;
        if (cmd->validate_only || s.n == 0)
            continue;
        struct metadata_record rec = {.type = METADATA_REC_CONFIG};
        memcpy(rec.config.topic_id, t->id, METADATA_UUID_LEN);
        rec.config.n_ops = s.n;
        rec.config.ops = s.e;
        int rc = command_emit(scratch, out, &rec);
        if (rc < 0)
            return rc;
        emitted++;
    }
    return emitted;
}
