/*
 * AlterPartition (Kafka's ReplicationControlManager.alterPartition and the ISR part of
 * PartitionChangeBuilder), validated by the active controller: a partition leader asks for a
 * new ISR, naming the leader and partition epochs it knows.
 *
 * Invariants kept: an ISR written here holds the leader, only assigned replicas, no duplicate,
 * and only brokers that are registered, unfenced and not shutting down (a member already in the
 * ISR included, as Kafka checks every member); the leader never changes except when the new ISR
 * completes an ongoing reassignment. The ISR is stored in the order the leader sent it, and an
 * identical ISR writes nothing (Kafka compares the lists). Gregor records no leader recovery
 * state, so every partition is RECOVERED: asking for RECOVERING is refused as Kafka refuses the
 * RECOVERED -> RECOVERING transition.
 *
 * Controller thread only.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cluster/commands.h"

static void set_error(struct command *cmd, struct controller_partition_result *r, int16_t code,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* As command_set_error, for a partition result. */
static void set_error(struct command *cmd, struct controller_partition_result *r, int16_t code,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->error_message = command_vformat(cmd, fmt, ap);
    va_end(ap);
    r->error_code = code;
}

static bool id_is_zero(const uint8_t *id)
{
    static const uint8_t zero[METADATA_UUID_LEN];
    return memcmp(id, zero, METADATA_UUID_LEN) == 0;
}

/* Kafka's Replicas.validateIsr: no negative id, no duplicate, every member a replica. */
static bool isr_valid(const struct metadata_partition *p, const int32_t *isr, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (isr[i] < 0 || metadata_ids_contain(isr, i, isr[i]) ||
            !metadata_ids_contain(p->replicas, p->n_replicas, isr[i]))
            return false;
    return true;
}

/*
 * Kafka's ineligibleReplicasForIsr: the first member that may not be in an ISR, with the
 * reason in *why; -1 when all may.
 */
static int32_t ineligible_member(const struct metadata_image *img,
                                 const struct controller_isr_change *c, const char **why)
{
    for (uint32_t i = 0; i < c->n_new_isr; i++) {
        const struct metadata_broker *b = metadata_image_broker(img, c->new_isr[i]);
        int64_t epoch = c->new_isr_epochs ? c->new_isr_epochs[i] : -1;
        if (b == NULL)
            *why = "not registered";
        else if (b->state == METADATA_BROKER_SHUTTING_DOWN)
            *why = "shutting down";
        else if (b->state == METADATA_BROKER_FENCED)
            *why = "fenced";
        else if (epoch != -1 && epoch != b->epoch)
            *why = "broker epoch mismatch";
        else
            continue;
        return c->new_isr[i];
    }
    return -1;
}

/* The checks of Kafka's validateAlterPartitionData after the partition is found, in its order. */
static int16_t check_change(struct command *cmd, struct controller_partition_result *r,
                            const struct metadata_image *scratch, const struct metadata_topic *t,
                            const struct metadata_partition *p,
                            const struct controller_isr_change *c)
{
    const struct controller_alter_partition *req = &cmd->alter_partition;
    const char *name = t->name;
    if (c->leader_epoch > p->leader_epoch || c->partition_epoch > p->partition_epoch) {
        /* The leader knows a newer state: this controller is likely no longer active. */
        set_error(cmd, r, KAFKA_ERR_NOT_CONTROLLER,
                  "%s-%d: the request's leader/partition epoch %d/%d is newer than %d/%d", name,
                  c->partition, c->leader_epoch, c->partition_epoch, p->leader_epoch,
                  p->partition_epoch);
    } else if (c->leader_epoch < p->leader_epoch) {
        set_error(cmd, r, KAFKA_ERR_FENCED_LEADER_EPOCH,
                  "%s-%d: the current leader epoch is %d, not %d", name, c->partition,
                  p->leader_epoch, c->leader_epoch);
    } else if (req->broker_id != p->leader) {
        set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST, "%s-%d: the current leader is %d, not %d",
                  name, c->partition, p->leader, req->broker_id);
    } else if (c->partition_epoch < p->partition_epoch) {
        set_error(cmd, r, KAFKA_ERR_INVALID_UPDATE_VERSION,
                  "%s-%d: the current partition epoch is %d, not %d", name, c->partition,
                  p->partition_epoch, c->partition_epoch);
    } else if (!isr_valid(p, c->new_isr, c->n_new_isr)) {
        set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST,
                  "%s-%d: the new ISR has a duplicate or a broker that is not a replica", name,
                  c->partition);
    } else if (!metadata_ids_contain(c->new_isr, c->n_new_isr, p->leader)) {
        set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST,
                  "%s-%d: the new ISR does not include the leader %d", name, c->partition,
                  p->leader);
    } else if (c->leader_recovery_state != 0) {
        /* 1 (RECOVERING) cannot follow RECOVERED; any other value is no state at all. */
        set_error(cmd, r, KAFKA_ERR_INVALID_REQUEST,
                  "%s-%d: leader recovery state %d is not allowed for a recovered "
                  "partition",
                  name, c->partition, c->leader_recovery_state);
    } else {
        const char *why = NULL;
        int32_t bad = ineligible_member(scratch, c, &why);
        if (bad < 0)
            return 0;
        set_error(cmd, r,
                  req->version > 1 ? KAFKA_ERR_INELIGIBLE_REPLICA
                                   : KAFKA_ERR_OPERATION_NOT_ATTEMPTED,
                  "%s-%d: replica %d in the new ISR is %s", name, c->partition, bad, why);
    }
    return r->error_code;
}

/* Copies the partition's state into r (the ISR into the command's arena). */
static int fill_state(struct command *cmd, struct controller_partition_result *r,
                      const struct metadata_partition *p)
{
    int32_t *isr = arena_calloc(&cmd->arena, p->n_isr ? p->n_isr : 1, sizeof(*isr));
    if (isr == NULL)
        return -ENOMEM;
    memcpy(isr, p->isr, p->n_isr * sizeof(*isr));
    r->leader_id = p->leader;
    r->leader_epoch = p->leader_epoch;
    r->partition_epoch = p->partition_epoch;
    r->leader_recovery_state = 0;
    r->isr = isr;
    r->n_isr = p->n_isr;
    return 0;
}

/* One partition: returns the number of records emitted or -ENOMEM; errors go into r. */
static int alter_one(struct command *cmd, struct controller_partition_result *r,
                     struct metadata_image *scratch, struct metadata_buf *out,
                     const struct controller_isr_change *c)
{
    const struct controller_alter_partition *req = &cmd->alter_partition;
    r->partition = c->partition;
    r->leader_id = -1;
    const struct metadata_topic *t;
    if (req->version > 1)
        t = id_is_zero(c->topic_id) ? NULL : metadata_image_topic_by_id(scratch, c->topic_id);
    else
        t = c->topic ? metadata_image_topic_by_name(scratch, c->topic) : NULL;
    if (t == NULL) {
        memcpy(r->topic_id, c->topic_id, METADATA_UUID_LEN);
        set_error(cmd, r,
                  req->version > 1 ? KAFKA_ERR_UNKNOWN_TOPIC_ID
                                   : KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                  "Unknown topic %s", c->topic ? c->topic : "id");
        return 0;
    }
    uint8_t id[METADATA_UUID_LEN];
    memcpy(id, t->id, METADATA_UUID_LEN);
    memcpy(r->topic_id, id, METADATA_UUID_LEN);
    if (c->partition < 0 || (uint32_t)c->partition >= t->n_partitions) {
        set_error(cmd, r, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION, "Unknown partition %s-%d", t->name,
                  c->partition);
        return 0;
    }
    const struct metadata_partition *p = &t->partitions[c->partition];
    if (check_change(cmd, r, scratch, t, p, c) != 0)
        return 0;
    int emitted = 0;
    if (c->n_new_isr != p->n_isr || memcmp(c->new_isr, p->isr, p->n_isr * sizeof(int32_t)) != 0) {
        struct metadata_record rec = {.type = METADATA_REC_PARTITION_CHANGE};
        struct metadata_rec_partition_change *pc = &rec.partition_change;
        memcpy(pc->topic_id, id, METADATA_UUID_LEN);
        pc->partition = c->partition;
        pc->has_isr = 1;
        pc->isr = (int32_t *)c->new_isr;
        pc->n_isr = c->n_new_isr;
        if (command_emit(scratch, out, &rec) < 0)
            return -ENOMEM;
        emitted = 1;
    }
    int rc = reassign_complete_if_in_sync(scratch, out, id, c->partition);
    if (rc < 0)
        return rc;
    emitted += rc;
    /* Re-read: an emitted change replaced the topic with a private copy. */
    t = metadata_image_topic_by_id(scratch, id);
    p = &t->partitions[c->partition];
    if (p->leader != req->broker_id) {
        /* The completed reassignment moved the leadership: the leader must refresh first. */
        set_error(cmd, r,
                  req->version > 1 ? KAFKA_ERR_NEW_LEADER_ELECTED : KAFKA_ERR_FENCED_LEADER_EPOCH,
                  "%s-%d: completing the reassignment elected leader %d", t->name, c->partition,
                  p->leader);
        return emitted;
    }
    return fill_state(cmd, r, p) < 0 ? -ENOMEM : emitted;
}

int command_validate_alter_partition(struct command *cmd, struct metadata_image *scratch,
                                     struct metadata_buf *out)
{
    const struct controller_alter_partition *req = &cmd->alter_partition;
    const struct metadata_broker *b = metadata_image_broker(scratch, req->broker_id);
    if (b == NULL || b->epoch != req->broker_epoch) {
        command_fail(cmd, KAFKA_ERR_STALE_BROKER_EPOCH,
                     b ? "Broker epoch does not match the current registration"
                       : "No broker registration found for the broker id");
        return 0;
    }
    int emitted = 0;
    for (size_t i = 0; i < req->n_partitions; i++) {
        int rc = alter_one(cmd, &cmd->partition_results[i], scratch, out, &req->partitions[i]);
        if (rc < 0)
            return rc;
        emitted += rc;
    }
    return emitted;
}
