/*
 * The consumer protocol embedded in classic groups' JoinGroup and SyncGroup (Kafka's
 * ConsumerProtocol: the subscription and assignment a classic consumer sends as opaque bytes),
 * decoded and encoded for the online migration between classic and consumer groups
 * (consumer_migration.c, consumer_classic.c). Owner worker only.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "group/consumer_group.h"
#include "proto/gen/consumer_protocol_assignment.h"
#include "proto/gen/consumer_protocol_subscription.h"

/* The version prefix of an embedded message, -1 when it is too short. */
int16_t cg_protocol_version(const uint8_t *p, int32_t len)
{
    if (p == NULL || len < 2)
        return -1;
    return (int16_t)(((uint16_t)p[0] << 8) | p[1]);
}

/* A newer version than ours reads as our newest (Kafka's ConsumerProtocol does the same: the
 * fields are only appended). 0 or -EINVAL. */
int cg_protocol_decode_subscription(const uint8_t *p, int32_t len, struct arena *a,
                                    struct kmsg_consumer_protocol_subscription *out)
{
    kmsg_consumer_protocol_subscription_init(out);
    int16_t v = cg_protocol_version(p, len);
    if (v < 0)
        return -EINVAL;
    if (v > KMSG_CONSUMER_PROTOCOL_SUBSCRIPTION_MAX_VERSION)
        v = KMSG_CONSUMER_PROTOCOL_SUBSCRIPTION_MAX_VERSION;
    struct kreader r;
    kr_init(&r, p + 2, (size_t)len - 2, a);
    if (kmsg_consumer_protocol_subscription_decode(&r, v, out) != 0 || r.err != 0)
        return -EINVAL;
    return 0;
}

/* An empty assignment (a member that has not synced yet, in a group completing a rebalance)
 * does not decode, as in Kafka (the upgrade is refused then). 0 or -EINVAL. */
int cg_protocol_decode_assignment(const uint8_t *p, int32_t len, struct arena *a,
                                  struct kmsg_consumer_protocol_assignment *out)
{
    kmsg_consumer_protocol_assignment_init(out);
    out->assigned_partitions.n = 0;
    int16_t v = cg_protocol_version(p, len);
    if (v < 0)
        return -EINVAL;
    if (v > KMSG_CONSUMER_PROTOCOL_ASSIGNMENT_MAX_VERSION)
        v = KMSG_CONSUMER_PROTOCOL_ASSIGNMENT_MAX_VERSION;
    struct kreader r;
    kr_init(&r, p + 2, (size_t)len - 2, a);
    if (kmsg_consumer_protocol_assignment_decode(&r, v, out) != 0 || r.err != 0)
        return -EINVAL;
    return 0;
}

static const char *topic_name_of(const struct cgroup *cg, const uint8_t id[16])
{
    for (int32_t i = 0; i < cg->ntopics; i++)
        if (cg->topics[i].nparts >= 0 && memcmp(cg->topics[i].id, id, 16) == 0)
            return cg->topics[i].name;
    return NULL;
}

/* Kafka's ConsumerProtocol.serializeAssignment of set, at `version` (the member's subscription
 * version, as Kafka answers), into out. Partitions of topics gone from the subscription
 * metadata are left out. 0 or -ENOMEM. */
int cg_protocol_encode_assignment(const struct cgroup *cg, const struct cg_tpset *set,
                                  int16_t version, struct gstr *out)
{
    if (version < 0)
        version = 0;
    if (version > KMSG_CONSUMER_PROTOCOL_ASSIGNMENT_MAX_VERSION)
        version = KMSG_CONSUMER_PROTOCOL_ASSIGNMENT_MAX_VERSION;
    struct kmsg_consumer_protocol_assignment a;
    kmsg_consumer_protocol_assignment_init(&a);
    struct kmsg_consumer_protocol_assignment_topic_partition *t =
        calloc((size_t)set->n + 1, sizeof(*t));
    int32_t *parts = calloc((size_t)set->n + 1, sizeof(*parts));
    int rc = t && parts ? 0 : -ENOMEM;
    int32_t n = 0;
    for (int32_t i = 0; i < set->n && rc == 0; i++) {
        const char *name = topic_name_of(cg, set->v[i].topic_id);
        if (name == NULL)
            continue;
        if (n == 0 || strcmp(t[n - 1].topic.ptr, name) != 0) {
            kmsg_consumer_protocol_assignment_topic_partition_init(&t[n]);
            t[n].topic = (struct kstr){name, (int32_t)strlen(name)};
            t[n].partitions.v = &parts[i];
            t[n].partitions.n = 0;
            n++;
        }
        parts[i] = set->v[i].partition;
        t[n - 1].partitions.n++;
    }
    a.assigned_partitions.n = n;
    a.assigned_partitions.v = t;
    a.user_data = KBYTES_NULL;
    uint8_t *buf = NULL;
    int32_t len = 0;
    if (rc == 0)
        rc = offsets_encode(version, version,
                            (kproto_encode_fn)kmsg_consumer_protocol_assignment_encode, &a, &buf,
                            &len);
    if (rc == 0) {
        gstr_set(out, buf, len);
        if (out->p == NULL)
            rc = -ENOMEM;
    }
    free(buf);
    free(t);
    free(parts);
    return rc;
}

/* Topic names and partitions into a set of (topic id, partition); unknown topics are left out
 * (Kafka's toTopicPartitionMap). */
int cg_protocol_tpset_from_names(
    const struct group_env *env, struct cg_tpset *set,
    const struct kmsg_consumer_protocol_assignment_topic_partition_array *a)
{
    for (int32_t i = 0; i < a->n; i++) {
        char *name = kstr_strdup(a->v[i].topic);
        uint8_t id[16];
        if (name == NULL)
            return -ENOMEM;
        int32_t nparts = env->topic_lookup ? env->topic_lookup(env->ctx, name, id) : -1;
        free(name);
        if (nparts < 0)
            continue;
        for (int32_t j = 0; j < a->v[i].partitions.n; j++)
            if (cg_tpset_add(set, id, a->v[i].partitions.v[j]) != 0)
                return -ENOMEM;
    }
    return 0;
}

/* The owned partitions of a classic subscription as a heartbeat's owned partitions (arena);
 * none listed (an eager member, or v0) reads as owning nothing, as Kafka's JoinGroup path. */
int cg_protocol_owned_partitions(
    const struct group_env *env, struct arena *a,
    const struct kmsg_consumer_protocol_subscription *sub,
    struct kmsg_consumer_group_heartbeat_request_topic_partitions_array *out)
{
    int32_t n = sub->owned_partitions.n > 0 ? sub->owned_partitions.n : 0;
    out->v = arena_calloc(a, (size_t)n + 1, sizeof(*out->v));
    out->n = 0;
    if (out->v == NULL)
        return -ENOMEM;
    for (int32_t i = 0; i < n; i++) {
        char *name = kstr_strdup(sub->owned_partitions.v[i].topic);
        if (name == NULL)
            return -ENOMEM;
        struct kmsg_consumer_group_heartbeat_request_topic_partitions *tp = &out->v[out->n];
        int32_t nparts = env->topic_lookup ? env->topic_lookup(env->ctx, name, tp->topic_id.b) : -1;
        free(name);
        if (nparts < 0)
            continue;
        tp->partitions = sub->owned_partitions.v[i].partitions;
        out->n++;
    }
    return 0;
}
