/*
 * Classic members of a consumer group (Kafka's classicGroup*ToConsumerGroup): after an online
 * upgrade (consumer_migration.c), or when a classic consumer joins a consumer group, JoinGroup,
 * SyncGroup, Heartbeat and LeaveGroup are served by the consumer group: JoinGroup reconciles
 * the member towards its target and answers its epoch as the generation, SyncGroup hands out
 * the assigned partitions, Heartbeat answers REBALANCE_IN_PROGRESS while it must rejoin. The
 * member keeps Kafka's ClassicMemberMetadata (session timeout, supported protocols). Owner
 * worker only.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "group/consumer_group.h"
#include "proto/gen/consumer_protocol_assignment.h"
#include "proto/gen/consumer_protocol_subscription.h"
#include "proto/gen/errors.h"
#include "proto/gen/heartbeat.h"
#include "proto/gen/join_group.h"
#include "proto/gen/leave_group.h"
#include "proto/gen/sync_group.h"

#define PROTOCOL_TYPE_CONSUMER KSTR_LIT("consumer")

static bool kstr_is(struct kstr k, const char *s)
{
    size_t n = strlen(s);
    return k.len == (int32_t)n && memcmp(k.ptr, s, n) == 0;
}

/* ---- ClassicMemberMetadata ---- */

void cg_member_classic_clear(struct cg_member *m)
{
    for (int32_t i = 0; i < m->nclassic_protocols; i++) {
        gstr_free(&m->classic_protocols[i].name);
        gstr_free(&m->classic_protocols[i].metadata);
    }
    free(m->classic_protocols);
    m->classic_protocols = NULL;
    m->nclassic_protocols = 0;
    m->classic = false;
}

void cg_member_cancel_classic_timers(struct cg_member *m)
{
    struct net_worker *w = m->g->s->worker;
    if (w == NULL)
        return;
    net_timer_cancel(w, &m->join_timer);
    net_timer_cancel(w, &m->sync_timer);
}

/* Sets m's ClassicMemberMetadata from n protocols (names and metadata); 0 or -ENOMEM. */
int cg_member_set_classic(struct cg_member *m, int32_t session_ms, const struct kstr *names,
                          const struct kbytes *metadata, int32_t n)
{
    struct gprotocol *p = calloc((size_t)n + 1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    for (int32_t i = 0; i < n; i++) {
        p[i].name.len = p[i].metadata.len = -1;
        gstr_from_kstr(&p[i].name, names[i]);
        gstr_from_kbytes(&p[i].metadata, metadata[i]);
    }
    cg_member_classic_clear(m);
    m->classic = true;
    m->classic_session_ms = session_ms;
    m->classic_protocols = p;
    m->nclassic_protocols = n;
    return 0;
}

/* The version of the member's embedded subscription (its first protocol), for the assignment
 * Kafka serialises back to it. */
static int16_t member_protocol_version(const struct cg_member *m)
{
    if (m->nclassic_protocols <= 0)
        return 0;
    const struct gstr *md = &m->classic_protocols[0].metadata;
    return cg_protocol_version((const uint8_t *)md->p, md->len);
}

/* ---- timers ---- */

static void classic_join_expired(struct net_timer *t)
{
    struct cg_member *m = t->arg;
    struct group *g = m->g;
    struct cg_records r = {0};
    cg_fence_member(g, m, "fenced (the classic member did not rejoin within its rebalance timeout)",
                    &r);
    cg_records_persist(g, &r);
}

static void classic_sync_expired(struct net_timer *t)
{
    struct cg_member *m = t->arg;
    struct group *g = m->g;
    struct cg_records r = {0};
    cg_fence_member(g, m, "fenced (the classic member did not sync within its rebalance timeout)",
                    &r);
    cg_records_persist(g, &r);
}

/* Kafka's scheduleConsumerGroupJoinTimeoutIfAbsent. */
static void member_expect_rejoin(struct group *g, struct cg_member *m)
{
    if (!net_timer_armed(&m->join_timer))
        net_timer_start(g->s->worker, &m->join_timer, m->rebalance_timeout_ms, classic_join_expired,
                        m);
}

/* ---- classic members of a consumer group ---- */

/* Kafka's validateConsumerGroupMember + throwIfMemberDoesNotUseClassicProtocol. */
static struct cg_member *classic_member(struct cgroup *cg, struct kstr member_id,
                                        struct kstr instance, int16_t *err)
{
    struct cg_member *m;
    if (instance.len < 0) {
        m = cg_find_member(cg, member_id);
    } else {
        m = cg_find_static(cg, instance);
        if (m != NULL && !gstr_eq(&m->id, member_id)) {
            *err = KAFKA_ERR_FENCED_INSTANCE_ID;
            return NULL;
        }
    }
    if (m == NULL || !m->classic) {
        *err = KAFKA_ERR_UNKNOWN_MEMBER_ID;
        return NULL;
    }
    *err = 0;
    return m;
}

/* Kafka's ConsumerGroup.supportsClassicProtocols for a non-empty group. */
static bool classic_protocols_supported(const struct cgroup *cg,
                                        const struct kmsg_join_group_request *req)
{
    if (!kstr_is(req->protocol_type, "consumer") || req->protocols.n <= 0)
        return false;
    int32_t nclassic = 0;
    for (const struct cg_member *o = cg->members; o; o = o->next)
        nclassic += o->classic;
    if (nclassic == 0)
        return true;
    for (int32_t i = 0; i < req->protocols.n; i++) {
        int32_t k = 0;
        for (const struct cg_member *o = cg->members; o; o = o->next)
            for (int32_t j = 0; o->classic && j < o->nclassic_protocols; j++)
                if (gstr_eq(&o->classic_protocols[j].name, req->protocols.v[i].name)) {
                    k++;
                    break;
                }
        if (k == nclassic)
            return true;
    }
    return false;
}

static void classic_durable(void *arg, int err)
{
    struct group_call *c = arg;
    int16_t code = err == -ENOENT || err == -ENOTCONN ? KAFKA_ERR_NOT_COORDINATOR
                                                      : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    if (err != 0 && c->api_key == KPROTO_API_JOIN_GROUP) {
        struct kmsg_join_group_response *resp = c->resp;
        resp->error_code = code;
        resp->generation_id = -1;
    } else if (err != 0 && c->api_key == KPROTO_API_LEAVE_GROUP) {
        ((struct kmsg_leave_group_response *)c->resp)->error_code = code;
    }
    call_finish(c);
}

/* Answers c once r is durable (at once when empty); consumes r. */
static void classic_reply_after(struct group *g, struct group_call *c, struct cg_records *r)
{
    int rc = r->err;
    size_t n = r->n;
    if (rc == 0 && n > 0)
        rc = shard_append(g->s, r->v, r->n, classic_durable, c);
    cg_records_free(r);
    if (rc == 0 && n > 0)
        return;
    if (rc != 0) {
        logger_warn("group", "consumer group %s: cannot write its records: %d", g->id.p, rc);
        classic_durable(c, -EIO);
        return;
    }
    call_finish(c);
}

/* The JoinGroup's member: found, created, or a static member taking over (Kafka's
 * getOrMaybeSubscribe*ConsumerGroupMember with createIfNotExists). */
static struct cg_member *join_member(struct group *g, struct kstr id, struct kstr instance,
                                     bool unknown, bool *created, bool *replaced,
                                     bool *replaced_consumer, int16_t *err, struct cg_records *r)
{
    struct cgroup *cg = g->cg;
    *created = *replaced = *replaced_consumer = false;
    *err = 0;
    if (instance.len >= 0) {
        struct cg_member *old = cg_find_static(cg, instance);
        if (old != NULL && gstr_eq(&old->id, id))
            return old;
        if (old != NULL && !unknown) {
            *err = KAFKA_ERR_FENCED_INSTANCE_ID;
            return NULL;
        }
        if (old == NULL && !unknown) {
            *err = KAFKA_ERR_UNKNOWN_MEMBER_ID; /* Kafka's throwIfStaticMemberIsUnknown */
            return NULL;
        }
        if (old != NULL) {
            *replaced_consumer = !old->classic;
            struct cg_member *m = cg_static_replace(g, old, id, r);
            *replaced = m != NULL;
            *err = m ? 0 : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            return m;
        }
    } else {
        struct cg_member *m = cg_find_member(cg, id);
        if (m != NULL)
            return m;
    }
    struct cg_member *m = cg_member_new(g, id);
    *created = m != NULL;
    *err = m ? 0 : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    return m;
}

/* The member's fields from its JoinGroup; 1 if its subscribed topics changed, 0, -ENOMEM. */
static int join_update_member(struct group_call *c, struct cg_member *m, struct kstr instance,
                              const struct kmsg_consumer_protocol_subscription *sub)
{
    const struct kmsg_join_group_request *req = c->req;
    if (instance.len >= 0 && !gstr_eq(&m->instance_id, instance))
        gstr_from_kstr(&m->instance_id, instance);
    if (sub->rack_id.len >= 0 && !gstr_eq(&m->rack_id, sub->rack_id))
        gstr_from_kstr(&m->rack_id, sub->rack_id);
    if (c->api_version >= 1 && req->rebalance_timeout_ms != -1)
        m->rebalance_timeout_ms = req->rebalance_timeout_ms;
    else if (c->api_version < 1)
        m->rebalance_timeout_ms = req->session_timeout_ms;
    gstr_from_kstr(&m->client_id, c->client_id);
    struct kstr host = {c->client_host, (int32_t)strlen(c->client_host)};
    gstr_from_kstr(&m->client_host, host);
    int32_t n = req->protocols.n;
    struct kstr *names = arena_calloc(c->arena, (size_t)n + 1, sizeof(*names));
    struct kbytes *mds = arena_calloc(c->arena, (size_t)n + 1, sizeof(*mds));
    if (names == NULL || mds == NULL)
        return -ENOMEM;
    for (int32_t i = 0; i < n; i++) {
        names[i] = req->protocols.v[i].name;
        mds[i] = req->protocols.v[i].metadata;
    }
    if (cg_member_set_classic(m, req->session_timeout_ms, names, mds, n) != 0)
        return -ENOMEM;
    return cg_member_set_topics(m, &sub->topics);
}

void cg_classic_join(struct group *g, struct group_call *c)
{
    const struct kmsg_join_group_request *req = c->req;
    struct kmsg_join_group_response *resp = c->resp;
    struct cgroup *cg = g->cg;
    const struct group_config *cfg = &g->s->gc->cfg;
    struct kstr instance = c->api_version >= 5 ? req->group_instance_id : KSTR_NULL;
    bool unknown = req->member_id.len <= 0;
    char gen[23];
    struct kstr id = req->member_id;
    if (unknown) {
        cg_new_member_id(gen);
        id = (struct kstr){gen, 22};
    }
    if (cg->nmembers >= cfg->consumer_max_size && (unknown || cg_find_member(cg, id) == NULL)) {
        join_reply_error(c, KAFKA_ERR_GROUP_MAX_SIZE_REACHED, req->member_id);
        return;
    }
    if (!classic_protocols_supported(cg, req)) {
        join_reply_error(c, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, req->member_id);
        return;
    }
    if (unknown && instance.len < 0 && c->api_version >= 4) {
        join_reply_error(c, KAFKA_ERR_MEMBER_ID_REQUIRED, id);
        return;
    }
    struct kmsg_consumer_protocol_subscription sub;
    if (cg_protocol_decode_subscription(req->protocols.v[0].metadata.ptr,
                                        req->protocols.v[0].metadata.len, c->arena, &sub) != 0) {
        join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, req->member_id);
        return;
    }
    struct kmsg_consumer_group_heartbeat_request_topic_partitions_array owned;
    if (cg_protocol_owned_partitions(&g->s->gc->env, c->arena, &sub, &owned) != 0) {
        join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, req->member_id);
        return;
    }
    struct cg_records r = {0};
    bool created, replaced, replaced_consumer;
    int16_t err;
    struct cg_member *m =
        join_member(g, id, instance, unknown, &created, &replaced, &replaced_consumer, &err, &r);
    if (m == NULL) {
        cg_records_persist(g, &r);
        join_reply_error(c, err, req->member_id);
        return;
    }
    struct member_snapshot sn = {0};
    int changed = cg_snapshot_take(&sn, m);
    if (changed == 0)
        changed = join_update_member(c, m, instance, &sub);
    /* Its ClassicMemberMetadata is rewritten with every join (settle writes the subscription
     * record itself when the member is new or its subscription changed). */
    if (changed == 0 && !created && !replaced)
        cg_records_subscription(&r, g, m);
    if (changed < 0 || cg_member_settle(g, m, created, replaced, changed, &owned, &sn, &r) != 0) {
        cg_snapshot_free(&sn);
        cg_records_persist(g, &r);
        join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, req->member_id);
        return;
    }
    cg_snapshot_free(&sn);
    resp->error_code = 0;
    resp->generation_id = m->epoch;
    resp->protocol_type = PROTOCOL_TYPE_CONSUMER;
    resp->protocol_name = arena_kstr(c->arena, &m->classic_protocols[0].name);
    resp->leader = KSTR_LIT("");
    resp->skip_assignment = false;
    resp->member_id = arena_kstr(c->arena, &m->id);
    resp->members.n = 0;
    logger_info("group", "consumer group %s: classic member %s joined at epoch %d (group epoch %d)",
                g->id.p, m->id.p, m->epoch, cg->group_epoch);
    if (replaced && replaced_consumer && cg_downgrade_after_replace(g)) {
        /* The last consumer-protocol member was a static member this one replaced. */
        cg_downgrade(g, NULL, &r);
    } else {
        net_timer_cancel(g->s->worker, &m->join_timer);
        cg_member_schedule_session(g, m);
        net_timer_start(g->s->worker, &m->sync_timer, m->rebalance_timeout_ms, classic_sync_expired,
                        m);
    }
    classic_reply_after(g, c, &r);
}

/* Kafka's waitingOnUnreleasedPartition: a partition of m's target is still another's. */
static bool waiting_on_unreleased(const struct cgroup *cg, const struct cg_member *m)
{
    for (int32_t i = 0; i < m->target.n; i++) {
        const struct cg_tp *tp = &m->target.v[i];
        if (cg_tpset_has(&m->assigned, tp->topic_id, tp->partition))
            continue;
        for (const struct cg_member *o = cg->members; o; o = o->next)
            if (o != m && (cg_tpset_has(&o->assigned, tp->topic_id, tp->partition) ||
                           cg_tpset_has(&o->revoking, tp->topic_id, tp->partition)))
                return true;
    }
    return false;
}

void cg_classic_sync(struct group *g, struct group_call *c)
{
    const struct kmsg_sync_group_request *req = c->req;
    struct kmsg_sync_group_response *resp = c->resp;
    struct cgroup *cg = g->cg;
    if (cg->nmembers == 0) {
        sync_reply(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, NULL, NULL);
        return;
    }
    struct kstr instance = c->api_version >= 3 ? req->group_instance_id : KSTR_NULL;
    int16_t err;
    struct cg_member *m = classic_member(cg, req->member_id, instance, &err);
    if (m == NULL) {
        sync_reply(c, err, NULL, NULL);
        return;
    }
    if (req->generation_id != m->epoch) {
        sync_reply(c, KAFKA_ERR_ILLEGAL_GENERATION, NULL, NULL);
        return;
    }
    struct kstr ptype = c->api_version >= 5 ? req->protocol_type : KSTR_NULL;
    struct kstr pname = c->api_version >= 5 ? req->protocol_name : KSTR_NULL;
    if ((ptype.len >= 0 && !kstr_is(ptype, "consumer")) ||
        (pname.len >= 0 && !gstr_eq(&m->classic_protocols[0].name, pname))) {
        sync_reply(c, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, NULL, NULL);
        return;
    }
    /* Kafka's throwIfRebalanceInProgress: a new epoch was reached; it must rejoin (unless it
     * is revoking, which its next rejoin finishes). */
    if (cg->group_epoch > m->epoch && m->state != CGM_UNREVOKED) {
        member_expect_rejoin(g, m);
        sync_reply(c, KAFKA_ERR_REBALANCE_IN_PROGRESS, NULL, NULL);
        return;
    }
    struct gstr a = {NULL, -1};
    if (cg_protocol_encode_assignment(cg, &m->assigned, member_protocol_version(m), &a) != 0) {
        sync_reply(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, NULL, NULL);
        return;
    }
    net_timer_cancel(g->s->worker, &m->sync_timer);
    cg_member_schedule_session(g, m);
    resp->error_code = 0;
    resp->protocol_type = ptype;
    resp->protocol_name = pname;
    resp->assignment = arena_kbytes(c->arena, &a);
    gstr_free(&a);
    call_finish(c);
}

void cg_classic_heartbeat(struct group *g, struct group_call *c)
{
    const struct kmsg_heartbeat_request *req = c->req;
    struct kmsg_heartbeat_response *resp = c->resp;
    struct cgroup *cg = g->cg;
    struct kstr instance = c->api_version >= 3 ? req->group_instance_id : KSTR_NULL;
    int16_t err;
    struct cg_member *m = classic_member(cg, req->member_id, instance, &err);
    if (m != NULL && req->generation_id != m->epoch)
        err = KAFKA_ERR_ILLEGAL_GENERATION;
    if (err == 0) {
        cg_member_schedule_session(g, m);
        /* It rejoins when the group moved on, when it must revoke, or when the partitions it
         * waits for are free. */
        if (m->epoch < cg->group_epoch || m->state == CGM_UNREVOKED ||
            (m->state == CGM_UNRELEASED && !waiting_on_unreleased(cg, m))) {
            err = KAFKA_ERR_REBALANCE_IN_PROGRESS;
            member_expect_rejoin(g, m);
        }
    }
    resp->error_code = err;
    call_finish(c);
}

/* One classic member leaves (Kafka's classicGroupLeaveToConsumerGroup); its error. */
static int16_t classic_leave_one(struct group *g, struct kstr member_id, struct kstr instance,
                                 struct cg_records *r)
{
    struct cgroup *cg = g->cg;
    struct cg_member *m;
    if (instance.len < 0) {
        m = cg_find_member(cg, member_id);
    } else {
        m = cg_find_static(cg, instance);
        if (m != NULL && member_id.len > 0 && !gstr_eq(&m->id, member_id))
            return KAFKA_ERR_FENCED_INSTANCE_ID;
    }
    if (m == NULL || !m->classic)
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    cg_remove_member(g, m, false, "left (LeaveGroup)", r);
    return 0;
}

static int16_t classic_leave_listed(struct group *g, struct kstr member_id, struct kstr instance,
                                    void *r)
{
    return classic_leave_one(g, member_id, instance, r);
}

void cg_classic_leave(struct group *g, struct group_call *c)
{
    const struct kmsg_leave_group_request *req = c->req;
    struct kmsg_leave_group_response *resp = c->resp;
    struct cg_records r = {0};
    int32_t left = 0;
    resp->error_code = 0;
    resp->members.n = 0;
    if (c->api_version < 3) {
        resp->error_code = classic_leave_one(g, req->member_id, KSTR_NULL, &r);
        left += resp->error_code == 0;
    } else {
        left = group_leave_each(g, c, classic_leave_listed, &r);
        if (left < 0) {
            resp->error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            call_finish(c);
            return;
        }
    }
    if (left > 0) {
        g->cg->group_epoch++;
        cg_records_epoch(&r, g);
    }
    classic_reply_after(g, c, &r);
}
