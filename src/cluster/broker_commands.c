/*
 * Broker lifecycle commands, validated by the active controller (Kafka's ClusterControlManager
 * and ReplicationControlManager rules):
 *  - registration: a new broker epoch (the image version the registration is validated at plus
 *    one, so epochs only grow), the broker starts fenced; a different incarnation of an id whose
 *    session is still alive is refused with DUPLICATE_BROKER_REGISTRATION;
 *  - heartbeat: keeps the session; unfences once the broker has applied its registration and
 *    elects leaders for partitions that had none; want_shutdown starts a controlled shutdown
 *    (leaderships and ISR memberships move away, should_shut_down once it leads nothing);
 *  - fence (session expired): the broker is fenced and loses its leaderships;
 *  - preferred election: leadership back to the first replica where it is usable and in ISR.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "cluster/commands.h"
#include "cluster/liveness.h"

static int emit_state(struct metadata_image *scratch, struct metadata_buf *out,
                      const struct metadata_broker *b, uint8_t state)
{
    struct metadata_record rec = {.type = METADATA_REC_BROKER_FENCE};
    rec.broker_fence = (struct metadata_rec_broker_fence){b->id, b->epoch, state};
    return command_emit(scratch, out, &rec);
}

int command_validate_register_broker(struct command *cmd, struct metadata_image *scratch,
                                     const struct command_defaults *d, struct metadata_buf *out)
{
    struct metadata_rec_broker *b = &cmd->broker;
    if (b->broker_id < 0 || b->host[0] == 0 || b->port <= 0 || b->port > 65535) {
        cmd->result.error_code = KAFKA_ERR_INVALID_REQUEST;
        cmd->result.error_message = "Invalid broker registration (id, host or port)";
        return 0;
    }
    const struct metadata_broker *old = metadata_image_broker(scratch, b->broker_id);
    if (old && memcmp(old->incarnation, b->incarnation, METADATA_UUID_LEN) != 0 &&
        old->state == METADATA_BROKER_UNFENCED && d->live &&
        liveness_heard(d->live, b->broker_id, d->now_ms)) {
        cmd->result.error_code = KAFKA_ERR_DUPLICATE_BROKER_REGISTRATION;
        cmd->result.error_message = "Another broker is registered with that broker ID";
        return 0;
    }
    b->epoch = (int64_t)scratch->version + 1;
    if (old && old->epoch >= b->epoch)
        b->epoch = old->epoch + 1;
    b->fenced = 1;
    struct metadata_record rec = {.type = METADATA_REC_BROKER_REGISTRATION, .broker = *b};
    int rc = command_emit(scratch, out, &rec);
    if (rc < 0)
        return rc;
    if (d->live)
        liveness_touch(d->live, b->broker_id, d->now_ms);
    cmd->result.broker_epoch = b->epoch;
    cmd->result.is_fenced = true;
    return 1;
}

/* Moves every leadership of b away; returns records emitted or -ENOMEM. */
static int shut_down_broker(struct command *cmd, struct metadata_image *scratch,
                            const struct command_defaults *d, struct metadata_buf *out,
                            const struct metadata_broker *b)
{
    int n = 0;
    if (b->state != METADATA_BROKER_SHUTTING_DOWN) {
        int32_t id = b->id;
        if (emit_state(scratch, out, b, METADATA_BROKER_SHUTTING_DOWN) < 0)
            return -ENOMEM;
        n++;
        b = metadata_image_broker(scratch, id);
    }
    int rc = elect_away_from(scratch, out, b->id, d->unclean_leader_election);
    if (rc < 0)
        return rc;
    n += rc;
    cmd->result.should_shut_down = elect_count_led_by(scratch, b->id) == 0;
    cmd->result.is_fenced = true;
    if (cmd->result.should_shut_down) {
        /* Done: the broker is fenced until it registers again. */
        b = metadata_image_broker(scratch, cmd->heartbeat.broker_id);
        if (emit_state(scratch, out, b, METADATA_BROKER_FENCED) < 0)
            return -ENOMEM;
        n++;
    }
    return n;
}

int command_validate_heartbeat(struct command *cmd, struct metadata_image *scratch,
                               const struct command_defaults *d, struct metadata_buf *out)
{
    const struct command_heartbeat *hb = &cmd->heartbeat;
    const struct metadata_broker *b = metadata_image_broker(scratch, hb->broker_id);
    if (b == NULL || b->epoch != hb->broker_epoch) {
        cmd->result.error_code = KAFKA_ERR_STALE_BROKER_EPOCH;
        cmd->result.error_message = "Broker epoch does not match the current registration";
        return 0;
    }
    if (d->live)
        liveness_touch(d->live, b->id, d->now_ms);
    cmd->result.broker_epoch = b->epoch;
    cmd->result.is_caught_up = hb->metadata_offset >= 0;
    if (hb->want_shutdown)
        return shut_down_broker(cmd, scratch, d, out, b);
    int n = 0;
    if (hb->want_fence && b->state == METADATA_BROKER_UNFENCED) {
        int32_t id = b->id;
        if (emit_state(scratch, out, b, METADATA_BROKER_FENCED) < 0)
            return -ENOMEM;
        int rc = elect_away_from(scratch, out, id, d->unclean_leader_election);
        if (rc < 0)
            return rc;
        n = 1 + rc;
    } else if (!hb->want_fence && b->state != METADATA_BROKER_UNFENCED &&
               cmd->result.is_caught_up) {
        if (emit_state(scratch, out, b, METADATA_BROKER_UNFENCED) < 0)
            return -ENOMEM;
        int rc = elect_leaderless(scratch, out, d->unclean_leader_election);
        if (rc < 0)
            return rc;
        n = 1 + rc;
    }
    b = metadata_image_broker(scratch, hb->broker_id);
    assert(b != NULL);
    cmd->result.is_fenced = b->state != METADATA_BROKER_UNFENCED;
    return n;
}

int command_validate_fence_broker(struct command *cmd, struct metadata_image *scratch,
                                  const struct command_defaults *d, struct metadata_buf *out)
{
    const struct metadata_broker *b = metadata_image_broker(scratch, cmd->fence_broker_id);
    /* A heartbeat may have arrived since the sweep queued this command. */
    if (b == NULL || b->state == METADATA_BROKER_FENCED ||
        (d->live && liveness_alive(d->live, b->id, d->now_ms)))
        return 0;
    int32_t id = b->id;
    if (emit_state(scratch, out, b, METADATA_BROKER_FENCED) < 0)
        return -ENOMEM;
    int rc = elect_away_from(scratch, out, id, d->unclean_leader_election);
    return rc < 0 ? rc : 1 + rc;
}

int command_validate_elect_preferred(struct command *cmd, struct metadata_image *scratch,
                                     struct metadata_buf *out)
{
    const struct command_elect *e = &cmd->elect;
    if (e->topic && metadata_image_topic_by_name(scratch, e->topic) == NULL) {
        cmd->result.error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        cmd->result.error_message = "This server does not host this topic-partition.";
        return 0;
    }
    int rc = elect_preferred(scratch, out, e->topic, e->partition, e->max_changes);
    if (rc == 0 && e->topic) {
        cmd->result.error_code = KAFKA_ERR_ELECTION_NOT_NEEDED;
        cmd->result.error_message = "Leader election not needed for topic partition.";
    }
    return rc;
}
