/*
 * Partition reassignment (Kafka's AlterPartitionReassignments semantics, KIP-455), validated by
 * the active controller:
 *  - original replicas R (the current set minus replicas still being added), target T;
 *    adding = T - R, removing = R - T; during the reassignment the replica set is T followed by
 *    `removing`, so the new brokers open the partition and (with replication) catch up;
 *  - it completes when every target replica is in the ISR: replicas = T, ISR = ISR within T,
 *    a leader outside T hands over to the first usable in-sync target replica;
 *  - a cancel restores R (ISR within R, a leader being added hands back).
 * A reassignment whose target is not in sync when it is submitted stays recorded
 * (ListPartitionReassignments) until an AlterPartition from the leader brings the last target
 * replica into the ISR (reassign_complete_if_in_sync, called by isr_commands.c).
 */
#include <errno.h>
#include <string.h>

#include "cluster/commands.h"

#define MAX_REPLICAS 64

/* dst = a minus b; returns the count. */
static uint32_t minus(const int32_t *a, uint32_t na, const int32_t *b, uint32_t nb, int32_t *dst)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < na; i++)
        if (!metadata_ids_contain(b, nb, a[i]))
            dst[n++] = a[i];
    return n;
}

static int emit_reassignment(struct metadata_image *scratch, struct metadata_buf *out,
                             const uint8_t *id, int32_t partition, const int32_t *replicas,
                             uint32_t n, const int32_t *adding, uint32_t na,
                             const int32_t *removing, uint32_t nr)
{
    struct metadata_record rec = {.type = METADATA_REC_REASSIGNMENT};
    rec.reassignment = (struct metadata_rec_reassignment){
        {0}, partition, n, na, nr, (int32_t *)replicas, (int32_t *)adding, (int32_t *)removing};
    memcpy(rec.reassignment.topic_id, id, METADATA_UUID_LEN);
    return command_emit(scratch, out, &rec);
}

/* ISR within `keep` (never empty) and a leader in it; emits a PartitionChange if needed. */
static int emit_shrink(struct metadata_image *scratch, struct metadata_buf *out, const uint8_t *id,
                       const struct metadata_partition *p, const int32_t *keep, uint32_t nk)
{
    int32_t isr[MAX_REPLICAS];
    uint32_t ni = 0;
    for (uint32_t i = 0; i < p->n_isr && ni < MAX_REPLICAS; i++)
        if (metadata_ids_contain(keep, nk, p->isr[i]))
            isr[ni++] = p->isr[i];
    if (ni == 0)
        return 0; /* nothing in sync to shrink to: leave ISR and leader as they are */
    int32_t leader = p->leader;
    if (!metadata_ids_contain(isr, ni, leader)) {
        leader = -1;
        for (uint32_t i = 0; i < nk && leader == -1; i++)
            if (metadata_ids_contain(isr, ni, keep[i]) &&
                metadata_broker_usable(metadata_image_broker(scratch, keep[i])))
                leader = keep[i];
    }
    bool isr_changed = ni != p->n_isr;
    if (!isr_changed && leader == p->leader)
        return 0;
    struct metadata_record rec = {.type = METADATA_REC_PARTITION_CHANGE};
    struct metadata_rec_partition_change *c = &rec.partition_change;
    memcpy(c->topic_id, id, METADATA_UUID_LEN);
    c->partition = p->partition;
    c->has_leader = leader != p->leader;
    c->leader = leader;
    c->has_isr = isr_changed;
    c->isr = isr;
    c->n_isr = ni;
    return command_emit(scratch, out, &rec);
}

static const struct metadata_partition *find(struct metadata_image *img, const char *topic,
                                             int32_t partition, uint8_t id[METADATA_UUID_LEN])
{
    const struct metadata_topic *t = metadata_image_topic_by_name(img, topic);
    if (t == NULL || partition < 0 || (uint32_t)partition >= t->n_partitions)
        return NULL;
    memcpy(id, t->id, METADATA_UUID_LEN);
    return &t->partitions[partition];
}

/* Returns records emitted, or a negative errno; sets r's error on invalid input. */
static int reassign_one(struct command *cmd, struct controller_topic_result *r,
                        struct metadata_image *scratch, struct metadata_buf *out,
                        const struct controller_reassignment *it)
{
    uint8_t id[METADATA_UUID_LEN];
    const struct metadata_partition *p = find(scratch, it->topic, it->partition, id);
    if (p == NULL) {
        command_set_error(cmd, r, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION,
                          "Unable to find partition %s-%d.", it->topic, it->partition);
        return 0;
    }
    int32_t orig[MAX_REPLICAS];
    uint32_t no = minus(p->replicas, p->n_replicas, p->adding, p->n_adding, orig);
    if (it->replicas == NULL) {
        if (p->n_adding == 0 && p->n_removing == 0) {
            command_set_error(cmd, r, KAFKA_ERR_NO_REASSIGNMENT_IN_PROGRESS,
                              "No ongoing reassignment for %s-%d.", it->topic, it->partition);
            return 0;
        }
        if (emit_shrink(scratch, out, id, p, orig, no) < 0)
            return -ENOMEM;
        p = find(scratch, it->topic, it->partition, id);
        return emit_reassignment(scratch, out, id, it->partition, orig, no, NULL, 0, NULL, 0) < 0
                   ? -ENOMEM
                   : 2;
    }
    uint32_t nt = it->n_replicas;
    const int32_t *target = it->replicas;
    bool bad = nt == 0 || nt > MAX_REPLICAS;
    for (uint32_t i = 0; !bad && i < nt; i++)
        bad = metadata_image_broker(scratch, target[i]) == NULL ||
              metadata_ids_contain(target, i, target[i]);
    if (bad) {
        command_set_error(cmd, r, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT,
                          "The target replicas must be distinct registered brokers.");
        return 0;
    }
    int32_t adding[MAX_REPLICAS], removing[MAX_REPLICAS], all[2 * MAX_REPLICAS];
    uint32_t na = minus(target, nt, orig, no, adding);
    uint32_t nr = minus(orig, no, target, nt, removing);
    bool complete = true;
    for (uint32_t i = 0; i < nt; i++)
        complete &= metadata_ids_contain(p->isr, p->n_isr, target[i]);
    if (complete) {
        if (emit_shrink(scratch, out, id, p, target, nt) < 0 ||
            emit_reassignment(scratch, out, id, it->partition, target, nt, NULL, 0, NULL, 0) < 0)
            return -ENOMEM;
        return 2;
    }
    memcpy(all, target, nt * sizeof(*all));
    memcpy(all + nt, removing, nr * sizeof(*all));
    return emit_reassignment(scratch, out, id, it->partition, all, nt + nr, adding, na, removing,
                             nr) < 0
               ? -ENOMEM
               : 1;
}

int reassign_complete_if_in_sync(struct metadata_image *scratch, struct metadata_buf *out,
                                 const uint8_t *topic_id, int32_t partition)
{
    const struct metadata_topic *t = metadata_image_topic_by_id(scratch, topic_id);
    if (t == NULL || partition < 0 || (uint32_t)partition >= t->n_partitions)
        return 0;
    const struct metadata_partition *p = &t->partitions[partition];
    if ((p->n_adding == 0 && p->n_removing == 0) || p->n_replicas > MAX_REPLICAS)
        return 0;
    int32_t target[MAX_REPLICAS];
    uint32_t nt = minus(p->replicas, p->n_replicas, p->removing, p->n_removing, target);
    for (uint32_t i = 0; i < nt; i++)
        if (!metadata_ids_contain(p->isr, p->n_isr, target[i]))
            return 0;
    uint8_t id[METADATA_UUID_LEN];
    memcpy(id, topic_id, METADATA_UUID_LEN);
    if (emit_shrink(scratch, out, id, p, target, nt) < 0 ||
        emit_reassignment(scratch, out, id, partition, target, nt, NULL, 0, NULL, 0) < 0)
        return -ENOMEM;
    return 2;
}

int command_validate_reassign(struct command *cmd, struct metadata_image *scratch,
                              const struct command_defaults *d, struct metadata_buf *out)
{
    (void)d;
    int emitted = 0;
    for (size_t i = 0; i < cmd->n; i++) {
        struct controller_topic_result *r = &cmd->results[i];
        r->name = cmd->reassign[i].topic;
        r->num_partitions = cmd->reassign[i].partition;
        int rc = reassign_one(cmd, r, scratch, out, &cmd->reassign[i]);
        if (rc < 0)
            return rc;
        emitted += rc;
    }
    return emitted;
}
