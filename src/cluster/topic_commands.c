/*
 * CreateTopics, DeleteTopics and CreatePartitions: validation against the scratch image (Kafka's
 * rules, error codes and messages) and the records each valid item becomes.
 *
 * Replica placement without a manual assignment is Kafka's rack-unaware algorithm over the
 * usable (registered, unfenced, not shutting down) brokers in id order: partition p's first replica
 * is broker (start + p) mod n, and the followers are spread by a shift that grows every n
 * partitions. `start` is derived from the topic name so placement is reproducible.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/commands.h"
#include "cluster/topic_config.h"

/* Beyond this a single request could make the controller allocate without bound. */
#define MAX_PARTITIONS_PER_TOPIC 100000
#define MAX_REPLICATION_FACTOR 64

static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

/* The id of the k-th usable broker in id order (k < metadata_image_usable_brokers). */
static int32_t usable_broker_at(const struct metadata_image *img, uint32_t k)
{
    for (size_t i = 0; i < img->n_brokers; i++)
        if (metadata_broker_usable(&img->brokers[i]) && k-- == 0)
            return img->brokers[i].id;
    assert(!"usable broker index out of range");
    return -1;
}

/* Fills replicas[0..rf) for partition p of a topic whose placement starts at `start`. */
static void assign_replicas(const struct metadata_image *img, uint32_t start, int32_t p, int16_t rf,
                            int32_t *replicas)
{
    uint32_t n = (uint32_t)metadata_image_usable_brokers(img);
    assert(n >= (uint32_t)rf && rf > 0);
    uint32_t first = (start + (uint32_t)p) % n;
    uint32_t shift = (start + (uint32_t)p / n) % (n > 1 ? n - 1 : 1);
    replicas[0] = usable_broker_at(img, first);
    for (int16_t j = 1; j < rf; j++) {
        uint32_t offset = 1 + (shift + (uint32_t)(j - 1)) % (n - 1);
        replicas[j] = usable_broker_at(img, (first + offset) % n);
    }
}

/* The preferred live leader of a new partition: its first usable replica, else the first. */
static int32_t first_usable(const struct metadata_image *img, const int32_t *replicas, uint32_t rf)
{
    for (uint32_t i = 0; i < rf; i++)
        if (metadata_broker_usable(metadata_image_broker(img, replicas[i])))
            return replicas[i];
    return replicas[0];
}

static int emit_partition(struct metadata_image *scratch, struct metadata_buf *out,
                          const uint8_t *topic_id, int32_t p, const int32_t *replicas, uint32_t rf)
{
    struct metadata_record rec = {.type = METADATA_REC_PARTITION};
    memcpy(rec.partition.topic_id, topic_id, METADATA_UUID_LEN);
    rec.partition.partition = p;
    rec.partition.leader = first_usable(scratch, replicas, rf);
    rec.partition.n_replicas = rec.partition.n_isr = rf;
    rec.partition.replicas = rec.partition.isr = (int32_t *)replicas;
    return command_emit(scratch, out, &rec);
}

/*
 * Checks that a CreateTopics manual assignment names partitions 0..n-1 in order. CreatePartitions
 * has no indexes: its lists are positional, for the new partitions only.
 */
static bool check_assignment_indexes(struct command *cmd, struct controller_topic_result *r,
                                     const struct controller_replica_list *a, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (a[i].partition != (int32_t)i) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT,
                              "Partitions should be a consecutive 0-based integer sequence");
            return false;
        }
    }
    return true;
}

/*
 * Checks the replica lists of a manual assignment: equal non-zero sizes, no duplicate replicas,
 * only registered brokers. Returns true if valid.
 */
static bool check_assignment(struct command *cmd, struct controller_topic_result *r,
                             const struct metadata_image *img,
                             const struct controller_replica_list *a, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (a[i].n_replicas == 0 || a[i].n_replicas != a[0].n_replicas ||
            a[i].n_replicas > MAX_REPLICATION_FACTOR) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT,
                              "All partitions in the manual partition assignment must have the "
                              "same, non-zero number of replicas");
            return false;
        }
        for (uint32_t j = 0; j < a[i].n_replicas; j++) {
            int32_t b = a[i].replicas[j];
            if (metadata_image_broker(img, b) == NULL) {
                command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT,
                                  "The manual partition assignment includes broker %d, but no "
                                  "such broker is registered.",
                                  b);
                return false;
            }
            for (uint32_t k = 0; k < j; k++) {
                if (a[i].replicas[k] == b) {
                    command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT,
                                      "The manual partition assignment includes the broker %d "
                                      "more than once.",
                                      b);
                    return false;
                }
            }
        }
    }
    return true;
}

/* True if another topic differs from `name` only by '.' versus '_' (Kafka forbids that). */
static const char *colliding_topic(const struct metadata_image *img, const char *name)
{
    if (strpbrk(name, "._") == NULL)
        return NULL;
    for (size_t i = 0; i < img->n_topics; i++) {
        const char *other = img->topics_by_name[i]->name;
        size_t k = 0;
        while (name[k] && other[k] &&
               (name[k] == other[k] || (strchr("._", name[k]) && strchr("._", other[k]))))
            k++;
        if (name[k] == 0 && other[k] == 0 && strcmp(name, other) != 0)
            return other;
    }
    return NULL;
}

static bool duplicate_name(const char *const *names, size_t n, size_t i)
{
    for (size_t j = 0; j < n; j++)
        if (j != i && strcmp(names[j], names[i]) == 0)
            return true;
    return false;
}

static bool check_new_topic(struct command *cmd, struct controller_topic_result *r,
                            const struct metadata_image *img, const struct controller_new_topic *t,
                            const struct command_defaults *d, int32_t *parts, int16_t *rf)
{
    char msg[512];
    int code = command_check_topic_name(t->name, msg, sizeof(msg));
    if (code) {
        command_set_error(cmd, r, (int16_t)code, "%s", msg);
        return false;
    }
    if (metadata_image_topic_by_name(img, t->name)) {
        command_set_error(cmd, r, KAFKA_ERR_TOPIC_ALREADY_EXISTS, "Topic '%s' already exists.",
                          t->name);
        return false;
    }
    const char *other = colliding_topic(img, t->name);
    if (other) {
        command_set_error(cmd, r, KAFKA_ERR_INVALID_TOPIC_EXCEPTION,
                          "Topic '%s' collides with existing topic: %s", t->name, other);
        return false;
    }
    if (t->n_assignments) {
        if (t->num_partitions != -1 || t->replication_factor != -1) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST,
                              "Both numPartitions or replicationFactor and replicasAssignments "
                              "were set. Both cannot be used at the same time.");
            return false;
        }
        if (t->n_assignments > MAX_PARTITIONS_PER_TOPIC) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_PARTITIONS,
                              "Number of partitions %u exceeds the limit of %d", t->n_assignments,
                              MAX_PARTITIONS_PER_TOPIC);
            return false;
        }
        if (!check_assignment_indexes(cmd, r, t->assignments, t->n_assignments) ||
            !check_assignment(cmd, r, img, t->assignments, t->n_assignments))
            return false;
        *parts = (int32_t)t->n_assignments;
        *rf = (int16_t)t->assignments[0].n_replicas;
    } else {
        *parts = t->num_partitions == -1 ? d->num_partitions : t->num_partitions;
        *rf = t->replication_factor == -1 ? d->replication_factor : t->replication_factor;
        if (*parts <= 0 || *parts > MAX_PARTITIONS_PER_TOPIC) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_PARTITIONS,
                              *parts <= 0 ? "Number of partitions was set to an invalid "
                                            "non-positive value."
                                          : "Number of partitions exceeds the limit of 100000");
            return false;
        }
        if (*rf <= 0 || *rf > MAX_REPLICATION_FACTOR) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICATION_FACTOR,
                              "Replication factor must be larger than 0, or -1 to use the "
                              "default value.");
            return false;
        }
        if ((size_t)*rf > metadata_image_usable_brokers(img)) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICATION_FACTOR,
                              "Unable to replicate the partition %d time(s): The target "
                              "replication factor of %d cannot be reached because only %zu "
                              "broker(s) are registered.",
                              *rf, *rf, metadata_image_usable_brokers(img));
            return false;
        }
    }
    for (uint32_t i = 0; i < t->n_configs; i++) {
        code = topic_config_validate(t->configs[i].name, t->configs[i].value, msg, sizeof(msg));
        if (code) {
            command_set_error(cmd, r, (int16_t)code, "%s", msg);
            return false;
        }
    }
    return true;
}

static int emit_new_topic(struct command *cmd, struct controller_topic_result *r,
                          struct metadata_image *scratch, const struct controller_new_topic *t,
                          int32_t parts, int16_t rf, struct metadata_buf *out)
{
    struct metadata_record rec = {.type = METADATA_REC_TOPIC};
    rec.topic.name = (char *)t->name;
    do {
        int rc = image_generate_topic_id(rec.topic.topic_id);
        if (rc)
            return rc;
    } while (metadata_image_topic_by_id(scratch, rec.topic.topic_id));
    rec.topic.n_configs = t->n_configs;
    rec.topic.configs = (struct metadata_config_entry *)t->configs;
    int rc = command_emit(scratch, out, &rec);
    uint32_t start = name_hash(t->name) % (uint32_t)(scratch->n_brokers ? scratch->n_brokers : 1);
    int32_t replicas[MAX_REPLICATION_FACTOR];
    for (int32_t p = 0; rc == 0 && p < parts; p++) {
        const int32_t *reps = replicas;
        if (t->n_assignments)
            reps = t->assignments[p].replicas;
        else
            assign_replicas(scratch, start, p, rf, replicas);
        rc = emit_partition(scratch, out, rec.topic.topic_id, p, reps, (uint32_t)rf);
    }
    memcpy(r->topic_id, rec.topic.topic_id, METADATA_UUID_LEN);
    return rc;
}

int command_validate_create_topics(struct command *cmd, struct metadata_image *scratch,
                                   const struct command_defaults *defaults,
                                   struct metadata_buf *out)
{
    int emitted = 0;
    const char **names = arena_calloc(&cmd->arena, cmd->n ? cmd->n : 1, sizeof(char *));
    if (names == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cmd->n; i++)
        names[i] = cmd->create[i].name;
    for (size_t i = 0; i < cmd->n; i++) {
        const struct controller_new_topic *t = &cmd->create[i];
        struct controller_topic_result *r = &cmd->results[i];
        int32_t parts = 0;
        int16_t rf = 0;
        if (duplicate_name(names, cmd->n, i)) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST,
                              "Create topics request contains multiple entries for the "
                              "following topics: %s",
                              t->name);
            continue;
        }
        if (!check_new_topic(cmd, r, scratch, t, defaults, &parts, &rf))
            continue;
        r->num_partitions = parts;
        r->replication_factor = rf;
        if (cmd->validate_only)
            continue;
        int rc = emit_new_topic(cmd, r, scratch, t, parts, rf, out);
        if (rc < 0)
            return rc;
        emitted += 1 + parts;
    }
    return emitted;
}

/* ---------- delete ---------- */

static bool id_is_zero(const uint8_t *id)
{
    static const uint8_t zero[METADATA_UUID_LEN];
    return id == NULL || memcmp(id, zero, METADATA_UUID_LEN) == 0;
}

int command_validate_delete_topics(struct command *cmd, struct metadata_image *scratch,
                                   struct metadata_buf *out)
{
    int emitted = 0;
    for (size_t i = 0; i < cmd->n; i++) {
        const struct controller_topic_ref *ref = &cmd->remove[i];
        struct controller_topic_result *r = &cmd->results[i];
        const struct metadata_topic *t;
        if (!id_is_zero(ref->topic_id)) {
            t = metadata_image_topic_by_id(scratch, ref->topic_id);
            memcpy(r->topic_id, ref->topic_id, METADATA_UUID_LEN);
            if (t == NULL) {
                /* Also covers the same id listed twice: the first removes it. */
                command_set_error(cmd, r, KAFKA_ERR_UNKNOWN_TOPIC_ID,
                                  "This server does not host this topic ID.");
                continue;
            }
            r->name = command_strdup(cmd, t->name);
        } else {
            t = metadata_image_topic_by_name(scratch, ref->name);
            if (t == NULL) {
                command_set_error(cmd, r, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                                  "This server does not host this topic-partition.");
                continue;
            }
            memcpy(r->topic_id, t->id, METADATA_UUID_LEN);
        }
        if (r->name == NULL)
            return -ENOMEM;
        r->num_partitions = (int32_t)t->n_partitions;
        struct metadata_record rec = {.type = METADATA_REC_REMOVE_TOPIC};
        memcpy(rec.remove_topic.topic_id, t->id, METADATA_UUID_LEN);
        int rc = command_emit(scratch, out, &rec);
        if (rc < 0)
            return rc;
        emitted++;
    }
    return emitted;
}

/* ---------- create partitions ---------- */

static bool check_increase(struct command *cmd, struct controller_topic_result *r,
                           const struct metadata_image *img,
                           const struct controller_partition_increase *p,
                           const struct metadata_topic *t)
{
    int32_t have = (int32_t)t->n_partitions;
    if (p->count < have) {
        command_set_error(cmd, r, KAFKA_ERR_INVALID_PARTITIONS,
                          "Topic currently has %d partitions, which is higher than the "
                          "requested %d.",
                          have, p->count);
        return false;
    }
    if (p->count == have) {
        command_set_error(cmd, r, KAFKA_ERR_INVALID_PARTITIONS, "Topic already has %d partitions.",
                          have);
        return false;
    }
    if (p->count > MAX_PARTITIONS_PER_TOPIC) {
        command_set_error(cmd, r, KAFKA_ERR_INVALID_PARTITIONS,
                          "Number of partitions exceeds the limit of %d", MAX_PARTITIONS_PER_TOPIC);
        return false;
    }
    int32_t rf = have ? (int32_t)t->partitions[0].n_replicas : 1;
    if (p->n_assignments) {
        if ((int32_t)p->n_assignments != p->count - have) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT,
                              "Attempted to add %d additional partition(s), but only %u "
                              "assignment(s) were specified.",
                              p->count - have, p->n_assignments);
            return false;
        }
        if (!check_assignment(cmd, r, img, p->assignments, p->n_assignments))
            return false;
        if (have && (int32_t)p->assignments[0].n_replicas != rf) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT,
                              "The manual partition assignment includes a partition with %u "
                              "replica(s), but this is not consistent with previous partitions, "
                              "which have %d replica(s).",
                              p->assignments[0].n_replicas, rf);
            return false;
        }
        return true;
    }
    if ((size_t)rf > metadata_image_usable_brokers(img) || rf > MAX_REPLICATION_FACTOR) {
        command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICATION_FACTOR,
                          "Unable to replicate the partition %d time(s): only %zu broker(s) are "
                          "registered.",
                          rf, metadata_image_usable_brokers(img));
        return false;
    }
    return true;
}

int command_validate_create_partitions(struct command *cmd, struct metadata_image *scratch,
                                       struct metadata_buf *out)
{
    int emitted = 0;
    const char **names = arena_calloc(&cmd->arena, cmd->n ? cmd->n : 1, sizeof(char *));
    if (names == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < cmd->n; i++)
        names[i] = cmd->partitions[i].name;
    for (size_t i = 0; i < cmd->n; i++) {
        const struct controller_partition_increase *p = &cmd->partitions[i];
        struct controller_topic_result *r = &cmd->results[i];
        if (duplicate_name(names, cmd->n, i)) {
            command_set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST, "Duplicate topic in request.");
            continue;
        }
        const struct metadata_topic *t = metadata_image_topic_by_name(scratch, p->name);
        if (t == NULL) {
            command_set_error(cmd, r, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                              "This server does not host this topic-partition.");
            continue;
        }
        memcpy(r->topic_id, t->id, METADATA_UUID_LEN);
        if (!check_increase(cmd, r, scratch, p, t))
            continue;
        int32_t have = (int32_t)t->n_partitions;
        int32_t rf = p->n_assignments ? (int32_t)p->assignments[0].n_replicas
                                      : (have ? (int32_t)t->partitions[0].n_replicas : 1);
        r->num_partitions = p->count;
        r->replication_factor = (int16_t)rf;
        if (cmd->validate_only)
            continue;
        uint8_t id[METADATA_UUID_LEN];
        memcpy(id, t->id, METADATA_UUID_LEN); /* t may be replaced by copy-on-write */
        uint32_t start = name_hash(p->name) % (uint32_t)scratch->n_brokers;
        int32_t replicas[MAX_REPLICATION_FACTOR];
        for (int32_t k = have; k < p->count; k++) {
            const int32_t *reps = replicas;
            if (p->n_assignments)
                reps = p->assignments[k - have].replicas;
            else
                assign_replicas(scratch, start, k, (int16_t)rf, replicas);
            int rc = emit_partition(scratch, out, id, k, reps, (uint32_t)rf);
            if (rc < 0)
                return rc;
            emitted++;
        }
    }
    return emitted;
}
