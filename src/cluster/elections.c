/*
 * Partition leader election (Kafka's PartitionChangeBuilder, without eligible leader
 * replicas), run by the active controller while validating a command against the scratch
 * image:
 *  - a broker that is fenced or shutting down leaves every ISR it is in, unless it is the last
 *    member (an ISR is never empty: its last member is the only replica known to have every
 *    committed record), and loses every leadership;
 *  - a new leader is the first replica in assignment order that is in the ISR and usable;
 *    only when none is and unclean.leader.election.enable is true (the topic's override or the
 *    broker default) the first usable replica of all, whose ISR then becomes just itself;
 *  - otherwise the partition has no leader (-1) until an ISR member comes back.
 * Every change is a PartitionChange record, so followers apply exactly the same outcome.
 * Controller thread only.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/commands.h"

static bool usable(const struct metadata_image *img, int32_t id)
{
    return metadata_broker_usable(metadata_image_broker(img, id));
}

static bool unclean_allowed(const struct metadata_topic *t, bool unclean_default)
{
    const char *v = metadata_topic_config(t, "unclean.leader.election.enable");
    return v ? strcmp(v, "true") == 0 : unclean_default;
}

/* The leader the rules above pick for replicas/isr, ignoring `excluded` (-1 for none). */
static int32_t choose_leader(const struct metadata_image *img, const struct metadata_partition *p,
                             const int32_t *isr, uint32_t n_isr, int32_t excluded, bool unclean,
                             bool *unclean_used)
{
    *unclean_used = false;
    for (uint32_t i = 0; i < p->n_replicas; i++) {
        int32_t r = p->replicas[i];
        if (r != excluded && metadata_ids_contain(isr, n_isr, r) && usable(img, r))
            return r;
    }
    for (uint32_t i = 0; unclean && i < p->n_replicas; i++) {
        int32_t r = p->replicas[i];
        if (r != excluded && usable(img, r)) {
            *unclean_used = true;
            return r;
        }
    }
    return -1;
}

static int emit_change(struct metadata_image *scratch, struct metadata_buf *out,
                       const uint8_t *topic_id, int32_t partition, int32_t leader, bool set_leader,
                       const int32_t *isr, uint32_t n_isr, bool set_isr)
{
    struct metadata_record rec = {.type = METADATA_REC_PARTITION_CHANGE};
    struct metadata_rec_partition_change *c = &rec.partition_change;
    memcpy(c->topic_id, topic_id, METADATA_UUID_LEN);
    c->partition = partition;
    c->has_leader = set_leader;
    c->leader = leader;
    c->has_isr = set_isr;
    c->isr = (int32_t *)isr;
    c->n_isr = n_isr;
    return command_emit(scratch, out, &rec);
}

/*
 * Re-elects partition `pi` of topic `ti` with `excluded` removed from its ISR (when not the last
 * member) and from leadership. Returns 1 if a record was emitted, 0 if nothing changed, or
 * -ENOMEM.
 */
static int reelect(struct metadata_image *scratch, struct metadata_buf *out, size_t ti, uint32_t pi,
                   int32_t excluded, bool unclean_default)
{
    const struct metadata_topic *t = scratch->topics_by_name[ti];
    const struct metadata_partition *p = &t->partitions[pi];
    int32_t isr[p->n_isr ? p->n_isr : 1];
    uint32_t n_isr = 0;
    for (uint32_t i = 0; i < p->n_isr; i++)
        if (p->isr[i] != excluded)
            isr[n_isr++] = p->isr[i];
    if (n_isr == 0) /* never empty the ISR */
        isr[n_isr++] = excluded;
    bool unclean_used;
    int32_t leader = p->leader;
    if (leader == excluded || leader == -1 || !usable(scratch, leader))
        leader = choose_leader(scratch, p, isr, n_isr, excluded,
                               unclean_allowed(t, unclean_default), &unclean_used);
    else
        unclean_used = false;
    if (unclean_used) {
        isr[0] = leader;
        n_isr = 1;
    }
    assert(n_isr > 0 && "an ISR is never empty");
    assert(leader == -1 || metadata_ids_contain(isr, n_isr, leader));
    bool isr_changed = n_isr != p->n_isr || memcmp(isr, p->isr, n_isr * sizeof(*isr)) != 0;
    bool leader_changed = leader != p->leader;
    if (!isr_changed && !leader_changed)
        return 0;
    uint8_t id[METADATA_UUID_LEN];
    memcpy(id, t->id, METADATA_UUID_LEN);
    int rc =
        emit_change(scratch, out, id, (int32_t)pi, leader, leader_changed, isr, n_isr, isr_changed);
    return rc < 0 ? rc : 1;
}

int elect_away_from(struct metadata_image *scratch, struct metadata_buf *out, int32_t broker,
                    bool unclean_default)
{
    int emitted = 0;
    for (size_t ti = 0; ti < scratch->n_topics; ti++) {
        uint32_t np = scratch->topics_by_name[ti]->n_partitions;
        for (uint32_t pi = 0; pi < np; pi++) {
            /* Re-read: an emitted change replaces the topic with a private copy. */
            const struct metadata_partition *p = &scratch->topics_by_name[ti]->partitions[pi];
            if (p->leader != broker && !metadata_ids_contain(p->isr, p->n_isr, broker))
                continue;
            int rc = reelect(scratch, out, ti, pi, broker, unclean_default);
            if (rc < 0)
                return rc;
            emitted += rc;
        }
    }
    return emitted;
}

int elect_leaderless(struct metadata_image *scratch, struct metadata_buf *out, bool unclean_default)
{
    int emitted = 0;
    for (size_t ti = 0; ti < scratch->n_topics; ti++) {
        uint32_t np = scratch->topics_by_name[ti]->n_partitions;
        for (uint32_t pi = 0; pi < np; pi++) {
            const struct metadata_partition *p = &scratch->topics_by_name[ti]->partitions[pi];
            if (p->leader != -1 && usable(scratch, p->leader))
                continue;
            int rc = reelect(scratch, out, ti, pi, -1, unclean_default);
            if (rc < 0)
                return rc;
            emitted += rc;
        }
    }
    return emitted;
}

int elect_preferred(struct metadata_image *scratch, struct metadata_buf *out,
                    const char *only_topic, int32_t only_partition, int max_changes)
{
    int emitted = 0;
    for (size_t ti = 0; ti < scratch->n_topics && emitted < max_changes; ti++) {
        const struct metadata_topic *t = scratch->topics_by_name[ti];
        if (only_topic && strcmp(t->name, only_topic) != 0)
            continue;
        for (uint32_t pi = 0; pi < t->n_partitions && emitted < max_changes; pi++) {
            if (only_partition >= 0 && (int32_t)pi != only_partition)
                continue;
            t = scratch->topics_by_name[ti];
            const struct metadata_partition *p = &t->partitions[pi];
            assert(p->n_replicas > 0);
            int32_t preferred = p->replicas[0];
            if (p->leader == preferred || !metadata_ids_contain(p->isr, p->n_isr, preferred) ||
                !usable(scratch, preferred))
                continue;
            uint8_t id[METADATA_UUID_LEN];
            memcpy(id, t->id, METADATA_UUID_LEN);
            int rc = emit_change(scratch, out, id, (int32_t)pi, preferred, true, NULL, 0, false);
            if (rc < 0)
                return rc;
            emitted++;
        }
    }
    return emitted;
}

int elect_partition(struct metadata_image *scratch, struct metadata_buf *out, size_t ti,
                    uint32_t pi, int8_t type)
{
    const struct metadata_topic *t = scratch->topics_by_name[ti];
    const struct metadata_partition *p = &t->partitions[pi];
    int32_t leader;
    bool unclean_used = false;
    if (type == 0) {
        int32_t preferred = p->replicas[0];
        if (p->leader == preferred)
            return KAFKA_ERR_ELECTION_NOT_NEEDED;
        if (!metadata_ids_contain(p->isr, p->n_isr, preferred) || !usable(scratch, preferred))
            return KAFKA_ERR_PREFERRED_LEADER_NOT_AVAILABLE;
        leader = preferred;
    } else {
        if (p->leader != -1 && usable(scratch, p->leader))
            return KAFKA_ERR_ELECTION_NOT_NEEDED;
        leader = choose_leader(scratch, p, p->isr, p->n_isr, -1, true, &unclean_used);
        if (leader == -1)
            return KAFKA_ERR_ELIGIBLE_LEADERS_NOT_AVAILABLE;
    }
    uint8_t id[METADATA_UUID_LEN];
    memcpy(id, t->id, METADATA_UUID_LEN);
    int32_t isr[1] = {leader};
    int rc = emit_change(scratch, out, id, (int32_t)pi, leader, true, isr, 1, unclean_used);
    return rc < 0 ? rc : 0;
}

size_t elect_count_led_by(const struct metadata_image *img, int32_t broker)
{
    size_t n = 0;
    for (size_t ti = 0; ti < img->n_topics; ti++) {
        const struct metadata_topic *t = img->topics_by_name[ti];
        for (uint32_t pi = 0; pi < t->n_partitions; pi++)
            n += t->partitions[pi].leader == broker;
    }
    return n;
}
