/*
 * ConsumerGroupDescribe (key 69): the groups one by one, each on its shard's owner, like
 * DescribeGroups. A classic group or an unknown id answers GROUP_ID_NOT_FOUND, as Kafka's
 * consumerGroup() lookup does. Owner worker only.
 */
#include <stdlib.h>
#include <string.h>

#include "group/consumer_group.h"
#include "proto/acl_operations.h"
#include "proto/gen/consumer_group_describe.h"
#include "proto/gen/errors.h"

static struct kstr topic_name_of(struct group_call *c, const struct cgroup *cg,
                                 const uint8_t id[16])
{
    for (int32_t t = 0; t < cg->ntopics; t++)
        if (cg->topics[t].nparts >= 0 && memcmp(cg->topics[t].id, id, 16) == 0)
            return arena_kstr_of(
                c->arena, (struct kstr){cg->topics[t].name, (int32_t)strlen(cg->topics[t].name)});
    return KSTR_LIT("");
}

static void describe_set(struct group_call *c, const struct cgroup *cg, const struct cg_tpset *set,
                         struct kmsg_consumer_group_describe_response_assignment *a)
{
    kmsg_consumer_group_describe_response_assignment_init(a);
    int32_t ntopics = 0;
    for (int32_t i = 0; i < set->n; i++)
        ntopics += i == 0 || memcmp(set->v[i].topic_id, set->v[i - 1].topic_id, 16);
    a->topic_partitions.v =
        arena_calloc(c->arena, (size_t)ntopics + 1, sizeof(*a->topic_partitions.v));
    int32_t *parts = arena_calloc(c->arena, (size_t)set->n + 1, sizeof(*parts));
    a->topic_partitions.n = 0;
    if (a->topic_partitions.v == NULL || parts == NULL)
        return;
    int32_t t = -1;
    for (int32_t i = 0; i < set->n; i++) {
        const struct cg_tp *tp = &set->v[i];
        if (i == 0 || memcmp(tp->topic_id, set->v[i - 1].topic_id, 16) != 0) {
            struct kmsg_consumer_group_describe_response_topic_partitions *o =
                &a->topic_partitions.v[++t];
            kmsg_consumer_group_describe_response_topic_partitions_init(o);
            memcpy(o->topic_id.b, tp->topic_id, 16);
            o->topic_name = topic_name_of(c, cg, tp->topic_id);
            o->partitions.v = &parts[i];
            o->partitions.n = 0;
        }
        parts[i] = tp->partition;
        a->topic_partitions.v[t].partitions.n++;
    }
    a->topic_partitions.n = t + 1;
}

static void describe_member(struct group_call *c, const struct cgroup *cg,
                            const struct cg_member *m,
                            struct kmsg_consumer_group_describe_response_member *dm)
{
    kmsg_consumer_group_describe_response_member_init(dm);
    dm->member_id = arena_kstr(c->arena, &m->id);
    dm->instance_id = arena_kstr(c->arena, &m->instance_id);
    dm->rack_id = arena_kstr(c->arena, &m->rack_id);
    dm->member_epoch = m->epoch;
    dm->client_id = m->client_id.len >= 0 ? arena_kstr(c->arena, &m->client_id) : KSTR_LIT("");
    dm->client_host =
        m->client_host.len >= 0 ? arena_kstr(c->arena, &m->client_host) : KSTR_LIT("");
    dm->subscribed_topic_names.v =
        arena_calloc(c->arena, (size_t)m->ntopics + 1, sizeof(*dm->subscribed_topic_names.v));
    dm->subscribed_topic_names.n = dm->subscribed_topic_names.v ? m->ntopics : 0;
    for (int32_t i = 0; i < dm->subscribed_topic_names.n; i++)
        dm->subscribed_topic_names.v[i] =
            arena_kstr_of(c->arena, (struct kstr){m->topics[i], (int32_t)strlen(m->topics[i])});
    dm->subscribed_topic_regex = m->regex.len > 0 ? arena_kstr(c->arena, &m->regex) : KSTR_NULL;
    describe_set(c, cg, &m->assigned, &dm->assignment);
    describe_set(c, cg, &m->target, &dm->target_assignment);
}

void group_handle_consumer_describe(struct shard *s, struct group_call *c)
{
    const struct kmsg_consumer_group_describe_request *req = c->req;
    struct kmsg_consumer_group_describe_response *resp = c->resp;
    if (c->step == 0) {
        resp->groups.v =
            arena_calloc(c->arena, (size_t)req->group_ids.n + 1, sizeof(*resp->groups.v));
        resp->groups.n = resp->groups.v ? req->group_ids.n : 0;
        if (resp->groups.n <= 0) {
            resp->groups.n = 0;
            call_finish(c);
            return;
        }
    }
    struct kmsg_consumer_group_describe_response_described_group *d = &resp->groups.v[c->step];
    kmsg_consumer_group_describe_response_described_group_init(d);
    d->group_id = req->group_ids.v[c->step];
    d->group_state = KSTR_LIT("Dead");
    d->assignor_name = KSTR_LIT("");
    d->authorized_operations = ACL_OPERATIONS_NOT_REQUESTED;
    int16_t err = shard_error(s);
    struct group *g = err ? NULL : group_find(s, d->group_id);
    if (err == 0 && (g == NULL || g->cg == NULL || g->state == GS_DEAD)) {
        err = KAFKA_ERR_GROUP_ID_NOT_FOUND;
        d->error_message =
            g == NULL ? KSTR_LIT("Group not found.") : KSTR_LIT("Group is not a consumer group.");
    }
    if (err == KAFKA_ERR_COORDINATOR_NOT_AVAILABLE && s == NULL &&
        c->gc->env.partition_count(c->gc->env.ctx) == 0) {
        err = KAFKA_ERR_GROUP_ID_NOT_FOUND; /* no __consumer_offsets: no group anywhere */
        d->error_message = KSTR_LIT("Group not found.");
    }
    d->error_code = err;
    if (err == 0) {
        const struct cgroup *cg = g->cg;
        const char *st = cg_state_name(cg);
        d->group_state = (struct kstr){st, (int32_t)strlen(st)};
        d->group_epoch = cg->group_epoch;
        d->assignment_epoch = cg->assignment_epoch;
        d->assignor_name =
            arena_kstr_of(c->arena, (struct kstr){cg->assignor, (int32_t)strlen(cg->assignor)});
        if (req->include_authorized_operations)
            d->authorized_operations = ACL_OPERATIONS_GROUP;
        d->members.v = arena_calloc(c->arena, (size_t)cg->nmembers + 1, sizeof(*d->members.v));
        int32_t n = 0;
        for (const struct cg_member *m = cg->members; d->members.v && m; m = m->next)
            describe_member(c, cg, m, &d->members.v[n++]);
        d->members.n = n;
    }
    c->step++;
    call_continue(c);
}
