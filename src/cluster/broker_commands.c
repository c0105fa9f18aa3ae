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
 *  - preferred election: leadership back to the first replica where it is usable and in ISR;
 *  - controller registration: the active controller's Kafka-protocol endpoint, written only
 *    when the image holds none or another one for it (brokers look the active controller up
 *    there, so a controller-only node is reachable without being a registered broker).
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
    int n = 1;
    const struct metadata_rec_endpoint *ob = &cmd->observer;
    const struct metadata_endpoint *old_ob =
        ob->host ? metadata_image_observer(scratch, b->broker_id) : NULL;
    if (rc == 0 && ob->host &&
        (old_ob == NULL || old_ob->port != ob->port || strcmp(old_ob->host, ob->host) != 0)) {
        struct metadata_record orec = {.type = METADATA_REC_OBSERVER_REGISTRATION, .endpoint = *ob};
        rc = command_emit(scratch, out, &orec);
        n++;
    }
    if (rc < 0)
        return rc;
    if (d->live)
        liveness_touch(d->live, b->broker_id, d->now_ms);
    cmd->result.broker_epoch = b->epoch;
    cmd->result.is_fenced = true;
    return n;
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

int command_validate_register_controller(struct command *cmd, struct metadata_image *scratch,
                                         struct metadata_buf *out)
{
    const struct metadata_rec_endpoint *c = &cmd->controller;
    const struct metadata_endpoint *old = metadata_image_controller(scratch, c->node_id);
    if (old && old->port == c->port && strcmp(old->host, c->host) == 0)
        return 0;
    struct metadata_record rec = {.type = METADATA_REC_CONTROLLER_REGISTRATION, .endpoint = *c};
    int rc = command_emit(scratch, out, &rec);
    return rc < 0 ? rc : 1;
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

/* Appends one per-partition result (arena of the command); false on allocation failure. */
static bool elect_result(struct command *cmd, size_t *cap, const char *topic, int32_t partition,
                         int16_t code)
{
    if (cmd->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 64;
        struct controller_topic_result *r = arena_calloc(&cmd->arena, ncap, sizeof(*r));
        if (r == NULL)
            return false;
        if (cmd->n)
            memcpy(r, cmd->results, cmd->n * sizeof(*r));
        cmd->results = r;
        *cap = ncap;
    }
    struct controller_topic_result *r = &cmd->results[cmd->n++];
    memset(r, 0, sizeof(*r));
    r->name = topic;
    r->num_partitions = partition;
    r->error_code = code;
    cmd->result.topics = cmd->results;
    cmd->result.n_topics = cmd->n;
    return true;
}

static const char *elect_message(int16_t code)
{
    switch (code) {
    case KAFKA_ERR_ELECTION_NOT_NEEDED:
        return "Leader election not needed for topic partition.";
    case KAFKA_ERR_PREFERRED_LEADER_NOT_AVAILABLE:
        return "The preferred leader is not in the ISR or not alive.";
    case KAFKA_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE:
        return "No replica of the partition is alive.";
    case KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION:
        return "This server does not host this topic-partition.";
    default:
        return NULL;
    }
}

static int elect_all(struct command *cmd, struct metadata_image *scratch, struct metadata_buf *out)
{
    size_t cap = 0;
    int emitted = 0;
    cmd->n = 0;
    for (size_t ti = 0; ti < scratch->n_topics; ti++) {
        const char *name = command_strdup(cmd, scratch->topics_by_name[ti]->name);
        uint32_t np = scratch->topics_by_name[ti]->n_partitions;
        if (name == NULL)
            return -ENOMEM;
        for (uint32_t pi = 0; pi < np; pi++) {
            int rc = elect_partition(scratch, out, ti, pi, cmd->elect.election_type);
            if (rc < 0)
                return rc;
            emitted += rc == 0;
            if (rc != KAFKA_ERR_ELECTION_NOT_NEEDED &&
                !elect_result(cmd, &cap, name, (int32_t)pi, (int16_t)rc))
                return -ENOMEM;
        }
    }
    for (size_t i = 0; i < cmd->n; i++)
        cmd->results[i].error_message = elect_message(cmd->results[i].error_code);
    return emitted;
}

int command_validate_elect_leaders(struct command *cmd, struct metadata_image *scratch,
                                   struct metadata_buf *out)
{
    const struct command_elect *e = &cmd->elect;
    if (e->election_type != 0 && e->election_type != 1) {
        cmd->result.error_code = KAFKA_ERR_INVALID_REQUEST;
        cmd->result.error_message = "Unknown election type";
        return 0;
    }
    if (e->all_partitions)
        return elect_all(cmd, scratch, out);
    int emitted = 0;
    for (size_t i = 0; i < e->n_parts; i++) {
        struct controller_topic_result *r = &cmd->results[i];
        r->name = e->parts[i].topic;
        r->num_partitions = e->parts[i].partition;
        int rc = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        for (size_t ti = 0; ti < scratch->n_topics; ti++) {
            const struct metadata_topic *t = scratch->topics_by_name[ti];
            if (strcmp(t->name, r->name) != 0)
                continue;
            if (r->num_partitions >= 0 && (uint32_t)r->num_partitions < t->n_partitions)
                rc = elect_partition(scratch, out, ti, (uint32_t)r->num_partitions,
                                     e->election_type);
            break;
        }
        if (rc < 0)
            return rc;
        emitted += rc == 0;
        r->error_code = (int16_t)rc;
        r->error_message = elect_message((int16_t)rc);
    }
    return emitted;
}
