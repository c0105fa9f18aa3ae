/*
 * AlterClientQuotas on the controller (KIP-546), validated as Kafka's ClientQuotaControlManager
 * does: per entry, the entity must name "user" and/or "client-id" once each with non-empty
 * names (NULL = the default entity); a key may appear once; a set value must be a known key,
 * > 0, finite, and whole for the byte rates (LONG keys). Every failure is INVALID_REQUEST for
 * that entry only. A valid entry becomes one ClientQuota record per key whose value changes
 * (removing an unset key writes nothing); its records are emitted only after the whole entry
 * validated, so an entry is applied completely or not at all.
 *
 * Gregor does not support Kafka's "ip" entity (connection_creation_rate): it is refused.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cluster/commands.h"
#include "cluster/kafka_errors.h"

struct command *command_new_alter_client_quotas(const struct controller_quota_alter *e, size_t n,
                                                bool validate_only)
{
    struct command *cmd = command_alloc(COMMAND_ALTER_CLIENT_QUOTAS, n);
    if (cmd == NULL)
        return NULL;
    cmd->validate_only = validate_only;
    cmd->quotas = arena_calloc(&cmd->arena, n ? n : 1, sizeof(*cmd->quotas));
    if (cmd->quotas == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        struct controller_quota_component *c =
            arena_calloc(&cmd->arena, e[i].n_entity + 1u, sizeof(*c));
        struct controller_quota_op *o = arena_calloc(&cmd->arena, e[i].n_ops + 1u, sizeof(*o));
        if (c == NULL || o == NULL)
            goto err;
        for (uint32_t j = 0; j < e[i].n_entity; j++) {
            c[j].type = command_strdup(cmd, e[i].entity[j].type ? e[i].entity[j].type : "");
            c[j].name = command_strdup(cmd, e[i].entity[j].name);
            if (c[j].type == NULL || (e[i].entity[j].name && c[j].name == NULL))
                goto err;
        }
        for (uint32_t j = 0; j < e[i].n_ops; j++) {
            o[j] = e[i].ops[j];
            o[j].key = command_strdup(cmd, e[i].ops[j].key ? e[i].ops[j].key : "");
            if (o[j].key == NULL)
                goto err;
        }
        cmd->quotas[i] = (struct controller_quota_alter){e[i].n_entity, c, e[i].n_ops, o};
    }
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

/* The entity of an entry, checked; returns 0 or KAFKA_ERR_INVALID_REQUEST with *why. */
static int quota_entity_parse(const struct controller_quota_alter *a,
                              struct metadata_rec_client_quota *q, const char **why)
{
    q->entity = 0;
    if (a->n_entity == 0) {
        *why = "Invalid empty client quota entity";
        return KAFKA_ERR_INVALID_REQUEST;
    }
    for (uint32_t j = 0; j < a->n_entity; j++) {
        const struct controller_quota_component *c = &a->entity[j];
        uint8_t bit = strcmp(c->type, "user") == 0        ? METADATA_QUOTA_USER
                      : strcmp(c->type, "client-id") == 0 ? METADATA_QUOTA_CLIENT_ID
                                                          : 0;
        if (bit == 0) {
            *why = strcmp(c->type, "ip") == 0 ? "ip quota entities are not supported"
                                              : "Unhandled client quota entity type";
            return KAFKA_ERR_INVALID_REQUEST;
        }
        if (q->entity & bit) {
            *why = "Invalid client quota entity, duplicate entity entry";
            return KAFKA_ERR_INVALID_REQUEST;
        }
        if (c->name != NULL && c->name[0] == 0) {
            *why = "Empty entity name not supported";
            return KAFKA_ERR_INVALID_REQUEST;
        }
        q->entity |= bit;
        if (bit == METADATA_QUOTA_USER)
            q->user = (char *)c->name;
        else
            q->client_id = (char *)c->name;
    }
    return 0;
}

/* Kafka's validateQuotaKeyValue: returns 0 or KAFKA_ERR_INVALID_REQUEST with *why. */
static int quota_value_check(int key, double value, const char **why)
{
    if (key < 0) {
        *why = "Invalid configuration key";
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (!(value > 0.0) || !isfinite(value)) {
        *why = "Quota value must be greater than 0";
        return KAFKA_ERR_INVALID_REQUEST;
    }
    bool integral =
        key == METADATA_QUOTA_PRODUCER_BYTE_RATE || key == METADATA_QUOTA_CONSUMER_BYTE_RATE;
    if (integral && value >= 9223372036854775807.0) {
        *why = "Proposed value is too large for a LONG";
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (integral && fabs(fmod(value, 1.0)) > 1e-6) {
        *why = "Byte rate quotas cannot be a fractional value";
        return KAFKA_ERR_INVALID_REQUEST;
    }
    return 0;
}

static bool same_name(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* True when entry i names the same entity as an earlier entry (Kafka ignores it). */
static bool quota_entity_repeated(const struct command *cmd, size_t i,
                                  const struct metadata_rec_client_quota *q)
{
    for (size_t p = 0; p < i; p++) {
        struct metadata_rec_client_quota o = {0};
        const char *why;
        if (quota_entity_parse(&cmd->quotas[p], &o, &why) == 0 && o.entity == q->entity &&
            same_name(o.user, q->user) && same_name(o.client_id, q->client_id))
            return true;
    }
    return false;
}

/* Validates entry i; 0 when every op is acceptable, else the error (message in *why). */
static int quota_entry_check(const struct command *cmd, size_t i,
                             struct metadata_rec_client_quota *q, const char **why)
{
    const struct controller_quota_alter *a = &cmd->quotas[i];
    int rc = quota_entity_parse(a, q, why);
    if (rc != 0)
        return rc;
    if (quota_entity_repeated(cmd, i, q)) {
        *why = "Ignoring duplicate entity";
        return KAFKA_ERR_INVALID_REQUEST;
    }
    for (uint32_t j = 0; j < a->n_ops; j++) {
        for (uint32_t p = 0; p < j; p++)
            if (strcmp(a->ops[p].key, a->ops[j].key) == 0) {
                *why = "Duplicate quota key";
                return KAFKA_ERR_INVALID_REQUEST;
            }
        if (a->ops[j].remove)
            continue;
        rc = quota_value_check(metadata_quota_key_lookup(a->ops[j].key), a->ops[j].value, why);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Emits the records of a validated entry: changed values and removals of set keys. */
static int quota_entry_emit(struct metadata_image *scratch, struct metadata_buf *out,
                            const struct controller_quota_alter *a,
                            const struct metadata_rec_client_quota *q)
{
    int emitted = 0;
    for (uint32_t j = 0; j < a->n_ops; j++) {
        const struct controller_quota_op *op = &a->ops[j];
        int k = metadata_quota_key_lookup(op->key);
        const struct metadata_client_quota *cur =
            metadata_image_client_quota(scratch, q->entity, q->user, q->client_id);
        bool is_set = k >= 0 && cur != NULL && (cur->set & (1u << k));
        if (op->remove ? !is_set : (is_set && cur->values[k] == op->value))
            continue;
        struct metadata_record rec = {.type = METADATA_REC_CLIENT_QUOTA};
        rec.client_quota = *q;
        rec.client_quota.key = (char *)op->key;
        rec.client_quota.value = op->remove ? 0.0 : op->value;
        rec.client_quota.remove = op->remove;
        if (command_emit(scratch, out, &rec) != 0)
            return -ENOMEM;
        emitted++;
    }
    return emitted;
}

int command_validate_alter_client_quotas(struct command *cmd, struct metadata_image *scratch,
                                         struct metadata_buf *out)
{
    int records = 0;
    for (size_t i = 0; i < cmd->n; i++) {
        struct metadata_rec_client_quota q = {0};
        const char *why = NULL;
        int rc = quota_entry_check(cmd, i, &q, &why);
        if (rc != 0) {
            command_set_error(cmd, &cmd->results[i], (int16_t)rc, "%s", why);
            continue;
        }
        if (cmd->validate_only)
            continue;
        int n = quota_entry_emit(scratch, out, &cmd->quotas[i], &q);
        if (n < 0)
            return n;
        records += n;
    }
    return records;
}
