/*
 * Command objects: copying a request out of the caller's memory, dispatching validation, and
 * the two small commands (register broker, allocate producer ids). Topic and config commands
 * live in topic_commands.c and config_commands.c.
 *
 * Ownership: a command owns everything it points to through its arena; results and error
 * messages are allocated there too, so a `done` callback can read them until command_free.
 */
#include "cluster/commands.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct command *command_alloc(enum command_type type, size_t n)
{
    struct command *cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL)
        return NULL;
    cmd->type = type;
    cmd->n = n;
    arena_init(&cmd->arena, 0);
    cmd->results = arena_calloc(&cmd->arena, n ? n : 1, sizeof(*cmd->results));
    if (cmd->results == NULL) {
        command_free(cmd);
        return NULL;
    }
    cmd->result.topics = cmd->results;
    cmd->result.n_topics = n;
    return cmd;
}

void command_free(struct command *cmd)
{
    if (cmd == NULL)
        return;
    arena_free(&cmd->arena);
    free(cmd);
}

char *command_strdup(struct command *cmd, const char *s)
{
    if (s == NULL)
        return NULL;
    return arena_strndup(&cmd->arena, s, strlen(s));
}

/* Copies `n` elements of `size` bytes; NULL only on allocation failure. */
static void *copy_array(struct command *cmd, const void *src, size_t n, size_t size)
{
    void *dst = arena_calloc(&cmd->arena, n ? n : 1, size);
    if (dst && n)
        memcpy(dst, src, n * size);
    return dst;
}

/* Deep-copies replica lists; returns false on allocation failure. */
static bool copy_assignments(struct command *cmd, const struct controller_replica_list **dst,
                             const struct controller_replica_list *src, uint32_t n)
{
    struct controller_replica_list *a = copy_array(cmd, src, n, sizeof(*a));
    if (a == NULL)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        a[i].replicas = copy_array(cmd, src[i].replicas, src[i].n_replicas, sizeof(int32_t));
        if (a[i].replicas == NULL)
            return false;
    }
    *dst = a;
    return true;
}

static bool copy_configs(struct command *cmd, const struct metadata_config_entry **dst,
                         const struct metadata_config_entry *src, uint32_t n)
{
    struct metadata_config_entry *c = copy_array(cmd, src, n, sizeof(*c));
    if (c == NULL)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        c[i].name = command_strdup(cmd, src[i].name ? src[i].name : "");
        c[i].value = command_strdup(cmd, src[i].value);
        if (c[i].name == NULL || (src[i].value && c[i].value == NULL))
            return false;
    }
    *dst = c;
    return true;
}

static bool copy_name(struct command *cmd, size_t i, const char *name, const char **dst)
{
    *dst = command_strdup(cmd, name ? name : "");
    cmd->results[i].name = *dst;
    return *dst != NULL;
}

struct command *command_new_create_topics(const struct controller_new_topic *t, size_t n,
                                          bool validate_only)
{
    struct command *cmd = command_alloc(COMMAND_CREATE_TOPICS, n);
    if (cmd == NULL)
        return NULL;
    cmd->validate_only = validate_only;
    cmd->create = copy_array(cmd, t, n, sizeof(*t));
    if (cmd->create == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        struct controller_new_topic *c = &cmd->create[i];
        if (!copy_name(cmd, i, t[i].name, &c->name) ||
            !copy_assignments(cmd, &c->assignments, t[i].assignments, t[i].n_assignments) ||
            !copy_configs(cmd, &c->configs, t[i].configs, t[i].n_configs))
            goto err;
    }
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

struct command *command_new_delete_topics(const struct controller_topic_ref *t, size_t n)
{
    struct command *cmd = command_alloc(COMMAND_DELETE_TOPICS, n);
    if (cmd == NULL)
        return NULL;
    cmd->remove = copy_array(cmd, t, n, sizeof(*t));
    if (cmd->remove == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        struct controller_topic_ref *r = &cmd->remove[i];
        if (!copy_name(cmd, i, t[i].name, &r->name))
            goto err;
        if (t[i].topic_id) {
            r->topic_id = copy_array(cmd, t[i].topic_id, METADATA_UUID_LEN, 1);
            if (r->topic_id == NULL)
                goto err;
        }
    }
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

struct command *command_new_create_partitions(const struct controller_partition_increase *t,
                                              size_t n, bool validate_only)
{
    struct command *cmd = command_alloc(COMMAND_CREATE_PARTITIONS, n);
    if (cmd == NULL)
        return NULL;
    cmd->validate_only = validate_only;
    cmd->partitions = copy_array(cmd, t, n, sizeof(*t));
    if (cmd->partitions == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        struct controller_partition_increase *p = &cmd->partitions[i];
        if (!copy_name(cmd, i, t[i].name, &p->name) ||
            !copy_assignments(cmd, &p->assignments, t[i].assignments, t[i].n_assignments))
            goto err;
    }
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

struct command *command_new_alter_configs(const struct controller_config_alter *t, size_t n,
                                          bool incremental, bool validate_only)
{
    struct command *cmd =
        command_alloc(incremental ? COMMAND_INCREMENTAL_ALTER_CONFIGS : COMMAND_ALTER_CONFIGS, n);
    if (cmd == NULL)
        return NULL;
    cmd->validate_only = validate_only;
    cmd->alter = copy_array(cmd, t, n, sizeof(*t));
    if (cmd->alter == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        struct controller_config_alter *a = &cmd->alter[i];
        if (!copy_name(cmd, i, t[i].topic, &a->topic))
            goto err;
        struct controller_config_change *c =
            copy_array(cmd, t[i].changes, t[i].n_changes, sizeof(*c));
        if (c == NULL)
            goto err;
        for (uint32_t j = 0; j < t[i].n_changes; j++) {
            c[j].name = command_strdup(cmd, c[j].name ? c[j].name : "");
            c[j].value = command_strdup(cmd, t[i].changes[j].value);
            if (c[j].name == NULL || (t[i].changes[j].value && c[j].value == NULL))
                goto err;
        }
        a->changes = c;
    }
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

struct command *command_new_register_broker(const struct controller_broker_registration *reg)
{
    struct command *cmd = command_alloc(COMMAND_REGISTER_BROKER, 0);
    if (cmd == NULL)
        return NULL;
    cmd->broker.broker_id = reg->broker_id;
    cmd->broker.port = reg->port;
    cmd->broker.host = command_strdup(cmd, reg->host ? reg->host : "");
    cmd->broker.rack = command_strdup(cmd, reg->rack);
    memcpy(cmd->broker.incarnation, reg->incarnation, METADATA_UUID_LEN);
    cmd->observer = (struct metadata_rec_endpoint){reg->broker_id, reg->observer_port,
                                                   command_strdup(cmd, reg->observer_host)};
    if (cmd->broker.host == NULL || (reg->rack && cmd->broker.rack == NULL) ||
        (reg->observer_host && cmd->observer.host == NULL)) {
        command_free(cmd);
        return NULL;
    }
    return cmd;
}

struct command *command_new_broker_heartbeat(const struct command_heartbeat *hb)
{
    struct command *cmd = command_alloc(COMMAND_BROKER_HEARTBEAT, 0);
    if (cmd)
        cmd->heartbeat = *hb;
    return cmd;
}

struct command *command_new_fence_broker(int32_t broker_id)
{
    struct command *cmd = command_alloc(COMMAND_FENCE_BROKER, 0);
    if (cmd)
        cmd->fence_broker_id = broker_id;
    return cmd;
}

struct command *command_new_register_controller(int32_t id, const char *host, int32_t port)
{
    struct command *cmd = command_alloc(COMMAND_REGISTER_CONTROLLER, 0);
    if (cmd == NULL)
        return NULL;
    cmd->controller = (struct metadata_rec_endpoint){id, port, command_strdup(cmd, host)};
    if (cmd->controller.host == NULL) {
        command_free(cmd);
        return NULL;
    }
    return cmd;
}

struct command *command_new_elect_preferred(const char *topic, int32_t partition, int max_changes)
{
    struct command *cmd = command_alloc(COMMAND_ELECT_PREFERRED, 0);
    if (cmd == NULL)
        return NULL;
    cmd->elect.topic = command_strdup(cmd, topic);
    cmd->elect.partition = partition;
    cmd->elect.max_changes = max_changes;
    if (topic && cmd->elect.topic == NULL) {
        command_free(cmd);
        return NULL;
    }
    return cmd;
}

struct command *command_new_allocate_producer_ids(int32_t broker_id)
{
    struct command *cmd = command_alloc(COMMAND_ALLOCATE_PRODUCER_IDS, 0);
    if (cmd)
        cmd->producer_broker_id = broker_id;
    return cmd;
}

struct command *command_new_reassign(const struct controller_reassignment *items, size_t n)
{
    struct command *cmd = command_alloc(COMMAND_REASSIGN, n);
    if (cmd == NULL)
        return NULL;
    cmd->reassign = copy_array(cmd, items, n, sizeof(*items));
    if (cmd->reassign == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        cmd->reassign[i].topic = command_strdup(cmd, items[i].topic ? items[i].topic : "");
        if (cmd->reassign[i].topic == NULL)
            goto err;
        if (items[i].replicas) {
            cmd->reassign[i].replicas =
                copy_array(cmd, items[i].replicas, items[i].n_replicas, sizeof(int32_t));
            if (cmd->reassign[i].replicas == NULL)
                goto err;
        }
    }
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

struct command *command_new_alter_partition(const struct controller_alter_partition *req)
{
    struct command *cmd = command_alloc(COMMAND_ALTER_PARTITION, 0);
    if (cmd == NULL)
        return NULL;
    size_t n = req->n_partitions;
    cmd->alter_partition = *req;
    struct controller_isr_change *c = copy_array(cmd, req->partitions, n, sizeof(*c));
    cmd->partition_results = arena_calloc(&cmd->arena, n ? n : 1, sizeof(*cmd->partition_results));
    if (c == NULL || cmd->partition_results == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        const struct controller_isr_change *src = &req->partitions[i];
        c[i].topic = command_strdup(cmd, src->topic);
        c[i].new_isr = copy_array(cmd, src->new_isr, src->n_new_isr, sizeof(int32_t));
        c[i].new_isr_epochs = src->new_isr_epochs ? copy_array(cmd, src->new_isr_epochs,
                                                               src->n_new_isr, sizeof(int64_t))
                                                  : NULL;
        if ((src->topic && c[i].topic == NULL) || c[i].new_isr == NULL ||
            (src->new_isr_epochs && c[i].new_isr_epochs == NULL))
            goto err;
    }
    cmd->alter_partition.partitions = c;
    cmd->result.partitions = cmd->partition_results;
    cmd->result.n_partitions = n;
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

struct command *command_new_elect_leaders(int8_t type, const struct controller_partition_ref *p,
                                          size_t n, bool all)
{
    struct command *cmd = command_alloc(COMMAND_ELECT_LEADERS, all ? 0 : n);
    if (cmd == NULL)
        return NULL;
    cmd->elect.election_type = type;
    cmd->elect.all_partitions = all;
    cmd->elect.n_parts = all ? 0 : n;
    cmd->elect.parts = arena_calloc(&cmd->arena, n + 1, sizeof(*cmd->elect.parts));
    if (cmd->elect.parts == NULL)
        goto err;
    for (size_t i = 0; !all && i < n; i++) {
        cmd->elect.parts[i].partition = p[i].partition;
        cmd->elect.parts[i].topic = command_strdup(cmd, p[i].topic ? p[i].topic : "");
        if (cmd->elect.parts[i].topic == NULL)
            goto err;
    }
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

/* ---------- helpers ---------- */

int command_emit(struct metadata_image *scratch, struct metadata_buf *out,
                 const struct metadata_record *rec)
{
    int rc = metadata_batch_append(out, rec);
    if (rc != 0)
        return rc;
    rc = image_apply(scratch, rec);
    /* Validation guarantees the record fits; a skip here would be a validator bug. */
    return rc < 0 ? rc : 0;
}

char *command_vformat(struct command *cmd, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    return command_strdup(cmd, msg);
}

void command_set_error(struct command *cmd, struct controller_topic_result *r, int16_t code,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->error_message = command_vformat(cmd, fmt, ap);
    va_end(ap);
    r->error_code = code;
}

void command_fail(struct command *cmd, int16_t code, const char *message)
{
    cmd->result.error_code = code;
    cmd->result.error_message = command_strdup(cmd, message);
    for (size_t i = 0; i < cmd->n; i++) {
        cmd->results[i].error_code = code;
        cmd->results[i].error_message = cmd->result.error_message;
    }
    for (size_t i = 0; i < cmd->result.n_partitions; i++) {
        cmd->partition_results[i].error_code = code;
        cmd->partition_results[i].error_message = cmd->result.error_message;
    }
}

int command_check_topic_name(const char *name, char *msg, size_t msglen)
{
    size_t n = strlen(name);
    if (n == 0) {
        snprintf(msg, msglen, "Topic name is illegal, it can't be empty");
        return KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        snprintf(msg, msglen, "Topic name cannot be \".\" or \"..\"");
        return KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
    }
    if (n > 249) {
        snprintf(
            msg, msglen,
            "Topic name is illegal, it can't be longer than 249 characters, topic name: %.64s...",
            name);
        return KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            snprintf(msg, msglen,
                     "Topic name \"%s\" is illegal, it contains a character other than ASCII "
                     "alphanumerics, '.', '_' and '-'",
                     name);
            return KAFKA_ERR_INVALID_TOPIC_EXCEPTION;
        }
    }
    return 0;
}

/* ---------- small commands ---------- */

static int validate_allocate_producer_ids(struct command *cmd, struct metadata_image *scratch,
                                          struct metadata_buf *out)
{
    if (cmd->producer_broker_id < 0) {
        cmd->result.error_code = KAFKA_ERR_INVALID_REQUEST;
        cmd->result.error_message = "Invalid broker id";
        return 0;
    }
    int64_t start = scratch->next_producer_id;
    struct metadata_record rec = {.type = METADATA_REC_PRODUCER_IDS};
    rec.producer_ids.broker_id = cmd->producer_broker_id;
    rec.producer_ids.next_block_start = start + METADATA_PRODUCER_ID_BLOCK;
    int rc = command_emit(scratch, out, &rec);
    if (rc < 0)
        return rc;
    cmd->result.producer_id_start = start;
    cmd->result.producer_id_len = METADATA_PRODUCER_ID_BLOCK;
    return 1;
}

int command_validate(struct command *cmd, struct metadata_image *scratch,
                     const struct command_defaults *defaults, struct metadata_buf *out)
{
    switch (cmd->type) {
    case COMMAND_CREATE_TOPICS:
        return command_validate_create_topics(cmd, scratch, defaults, out);
    case COMMAND_DELETE_TOPICS:
        return command_validate_delete_topics(cmd, scratch, out);
    case COMMAND_CREATE_PARTITIONS:
        return command_validate_create_partitions(cmd, scratch, out);
    case COMMAND_ALTER_CONFIGS:
    case COMMAND_INCREMENTAL_ALTER_CONFIGS:
        return command_validate_alter_configs(cmd, scratch, out);
    case COMMAND_REGISTER_BROKER:
        return command_validate_register_broker(cmd, scratch, defaults, out);
    case COMMAND_BROKER_HEARTBEAT:
        return command_validate_heartbeat(cmd, scratch, defaults, out);
    case COMMAND_FENCE_BROKER:
        return command_validate_fence_broker(cmd, scratch, defaults, out);
    case COMMAND_ELECT_PREFERRED:
        return command_validate_elect_preferred(cmd, scratch, out);
    case COMMAND_ELECT_LEADERS:
        return command_validate_elect_leaders(cmd, scratch, out);
    case COMMAND_REASSIGN:
        return command_validate_reassign(cmd, scratch, defaults, out);
    case COMMAND_ALLOCATE_PRODUCER_IDS:
        return validate_allocate_producer_ids(cmd, scratch, out);
    case COMMAND_ALTER_PARTITION:
        return command_validate_alter_partition(cmd, scratch, out);
    case COMMAND_REGISTER_CONTROLLER:
        return command_validate_register_controller(cmd, scratch, out);
    case COMMAND_ALTER_CLIENT_QUOTAS:
        return command_validate_alter_client_quotas(cmd, scratch, out);
    case COMMAND_ALTER_SCRAM:
        return command_validate_alter_scram(cmd, scratch, out);
    case COMMAND_ALTER_ACLS:
        return command_validate_alter_acls(cmd, scratch, out);
    }
    return 0;
}
