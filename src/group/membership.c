/*
 * The classic group protocol: the group state machine Empty -> PreparingRebalance ->
 * CompletingRebalance -> Stable (Kafka's GroupCoordinator/GroupMetadata), SyncGroup, Heartbeat
 * and LeaveGroup; JoinGroup is in join_group.c. Runs on the shard's owner worker only
 * (coordinator.h).
 *
 * Parked calls: a JoinGroup waits in member->join_call until the rebalance completes (all
 * known members rejoined, or the rebalance timeout / initial delay timer fired); a SyncGroup
 * waits in member->sync_call until the leader's assignment is durable. While a member waits in
 * JoinGroup its session timer is off (the rebalance timer bounds the wait instead); otherwise
 * it runs and every heartbeat/join/sync/commit restarts it.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/logger.h"
#include "group/consumer_group.h"
#include "group/group_internal.h"
#include "proto/gen/errors.h"
#include "proto/gen/heartbeat.h"
#include "proto/gen/join_group.h"
#include "proto/gen/leave_group.h"
#include "proto/gen/sync_group.h"

static void group_prepare_rebalance(struct group *g);
static void group_try_complete_join(struct group *g);

void member_free(struct member *m)
{
    gstr_free(&m->id);
    gstr_free(&m->instance_id);
    gstr_free(&m->client_id);
    gstr_free(&m->client_host);
    gstr_free(&m->protocol_type);
    gstr_free(&m->assignment);
    for (int32_t i = 0; i < m->nprotocols; i++) {
        gstr_free(&m->protocols[i].name);
        gstr_free(&m->protocols[i].metadata);
    }
    free(m->protocols);
    free(m);
}

static void group_set_state(struct group *g, enum group_state st)
{
    g->state = st;
    g->state_ts = group_now_ms();
}

/* ---- responses ---- */

void join_reply_error(struct group_call *c, int16_t err, struct kstr member_id)
{
    struct kmsg_join_group_response *resp = c->resp;
    resp->error_code = err;
    resp->generation_id = -1;
    resp->protocol_type = KSTR_NULL;
    resp->protocol_name = c->api_version >= 7 ? KSTR_NULL : KSTR_LIT("");
    resp->leader = KSTR_LIT("");
    resp->member_id = member_id.len >= 0 ? arena_kstr_of(c->arena, member_id) : KSTR_LIT("");
    resp->members.n = 0;
    call_finish(c);
}

void sync_reply(struct group_call *c, int16_t err, const struct group *g,
                const struct gstr *assignment)
{
    struct kmsg_sync_group_response *resp = c->resp;
    resp->error_code = err;
    resp->protocol_type = KSTR_NULL;
    resp->protocol_name = KSTR_NULL;
    resp->assignment = (struct kbytes){(const uint8_t *)"", 0};
    if (err == 0 && g != NULL) {
        resp->protocol_type = arena_kstr(c->arena, &g->protocol_type);
        resp->protocol_name = arena_kstr(c->arena, &g->protocol_name);
        if (assignment && assignment->len >= 0)
            resp->assignment = arena_kbytes(c->arena, assignment);
    }
    call_finish(c);
}

static void heartbeat_reply(struct group_call *c, int16_t err)
{
    ((struct kmsg_heartbeat_response *)c->resp)->error_code = err;
    call_finish(c);
}

static const struct gstr *member_protocol_metadata(const struct member *m, const struct gstr *name)
{
    for (int32_t i = 0; i < m->nprotocols; i++)
        if (gstr_eq_str(&m->protocols[i].name, name))
            return &m->protocols[i].metadata;
    return NULL;
}

/*
 * Answers m's JoinGroup with the group's current generation, naming `leader` as the leader;
 * the member list goes along when `with_members`. skip_assignment tells a v9+ leader not to run
 * the assignor (a static leader rejoining a Stable group).
 */
void join_reply_as(struct group *g, struct member *m, struct group_call *c,
                   const struct gstr *leader, bool with_members, bool skip_assignment)
{
    struct kmsg_join_group_response *resp = c->resp;
    resp->error_code = 0;
    resp->generation_id = g->generation;
    resp->protocol_type = arena_kstr(c->arena, &g->protocol_type);
    resp->protocol_name = arena_kstr(c->arena, &g->protocol_name);
    if (c->api_version < 7 && resp->protocol_name.len < 0)
        resp->protocol_name = KSTR_LIT("");
    resp->leader = leader->len >= 0 ? arena_kstr(c->arena, leader) : KSTR_LIT("");
    resp->member_id = arena_kstr(c->arena, &m->id);
    resp->skip_assignment = skip_assignment;
    resp->members.n = 0;
    if (with_members) {
        resp->members.v = arena_calloc(c->arena, (size_t)g->nmembers + 1, sizeof(*resp->members.v));
        if (resp->members.v) {
            int32_t n = 0;
            for (struct member *o = g->members; o; o = o->next) {
                struct kmsg_join_group_response_member *jm = &resp->members.v[n++];
                kmsg_join_group_response_member_init(jm);
                jm->member_id = arena_kstr(c->arena, &o->id);
                jm->group_instance_id = arena_kstr(c->arena, &o->instance_id);
                const struct gstr *md = member_protocol_metadata(o, &g->protocol_name);
                jm->metadata =
                    md ? arena_kbytes(c->arena, md) : (struct kbytes){(const uint8_t *)"", 0};
            }
            resp->members.n = n;
        }
    }
    call_finish(c);
}

/* Answers m's parked (or current) JoinGroup with the group's current generation. */
void join_reply_member(struct group *g, struct member *m, struct group_call *c)
{
    join_reply_as(g, m, c, &g->leader, gstr_eq_str(&g->leader, &m->id), false);
}

/* ---- timers ---- */

static void member_session_expired(struct net_timer *t)
{
    struct member *m = t->arg;
    struct group *g = m->g;
    logger_info("group", "member %s of group %s: session timeout (%d ms) expired", m->id.p, g->id.p,
                m->session_timeout);
    group_remove_member_and_update(g, m);
}

void member_schedule(struct member *m)
{
    struct shard *s = m->g->s;
    if (m->join_call != NULL)
        return; /* the rebalance timer bounds the wait */
    net_timer_start(s->worker, &m->session_timer, m->session_timeout, member_session_expired, m);
}

void group_arm_loaded_members(struct group *g)
{
    for (struct member *m = g->members; m; m = m->next)
        member_schedule(m);
}

void group_fail_parked(struct group *g, int16_t err)
{
    for (struct member *m = g->members; m; m = m->next) {
        if (m->join_call) {
            struct group_call *c = m->join_call;
            m->join_call = NULL;
            join_reply_error(c, err, gstr_kstr(&m->id));
        }
        if (m->sync_call) {
            struct group_call *c = m->sync_call;
            m->sync_call = NULL;
            sync_reply(c, err, NULL, NULL);
        }
    }
}

/* ---- membership changes ---- */

/* Nothing is allocated for the completion: it may be dropped during shutdown. */
static void group_persist_done(void *arg, int err)
{
    (void)arg;
    if (err != 0)
        logger_warn("group", "cannot persist group metadata: %d", err);
}

/* Writes the group's metadata record without waiting for anyone. */
static void group_persist(struct group *g)
{
    struct offsets_kv kv;
    if (group_encode_metadata(&kv, g, g->id.p) != 0)
        return;
    if (shard_append(g->s, &kv, 1, group_persist_done, NULL) != 0)
        logger_warn("group", "cannot persist metadata of group %s", g->id.p);
    offsets_kv_free(&kv);
}

static void member_unlink(struct group *g, struct member *m)
{
    struct member **pp = &g->members;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = m->next;
        g->nmembers--;
    }
    net_timer_cancel(g->s->worker, &m->session_timer);
    if (m->join_call) {
        struct group_call *c = m->join_call;
        m->join_call = NULL;
        join_reply_error(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, gstr_kstr(&m->id));
    }
    if (m->sync_call) {
        struct group_call *c = m->sync_call;
        m->sync_call = NULL;
        sync_reply(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, NULL, NULL);
    }
    if (gstr_eq_str(&g->leader, &m->id)) {
        if (g->members)
            gstr_set(&g->leader, g->members->id.p, g->members->id.len);
        else
            gstr_free(&g->leader);
    }
}

void group_remove_member_and_update(struct group *g, struct member *m)
{
    member_unlink(g, m);
    member_free(m);
    switch (g->state) {
    case GS_STABLE:
    case GS_COMPLETING:
        group_prepare_rebalance(g);
        break;
    case GS_PREPARING:
        group_try_complete_join(g);
        break;
    default:
        break;
    }
}

static bool member_supports(const struct member *m, const struct gstr *name)
{
    return member_protocol_metadata(m, name) != NULL;
}

/* Kafka's protocol selection: among the protocols every member supports, the one most members
 * list first among those. */
const struct gstr *group_select_protocol(struct group *g)
{
    const struct member *first = g->members;
    const struct gstr *best = NULL;
    int best_votes = -1;
    for (int32_t i = 0; first && i < first->nprotocols; i++) {
        const struct gstr *cand = &first->protocols[i].name;
        bool all = true;
        for (struct member *m = g->members; m && all; m = m->next)
            all = member_supports(m, cand);
        if (!all)
            continue;
        int votes = 0;
        for (struct member *m = g->members; m; m = m->next) {
            for (int32_t j = 0; j < m->nprotocols; j++) {
                const struct gstr *n = &m->protocols[j].name;
                bool n_all = true;
                for (struct member *o = g->members; o && n_all; o = o->next)
                    n_all = member_supports(o, n);
                if (n_all) {
                    if (gstr_eq_str(n, cand))
                        votes++;
                    break;
                }
            }
        }
        if (votes > best_votes) {
            best = cand;
            best_votes = votes;
        }
    }
    return best;
}

static void group_complete_join(struct group *g)
{
    struct shard *s = g->s;
    net_timer_cancel(s->worker, &g->join_timer);
    g->initial_delay = false;
    /* Members that did not rejoin in time are out. */
    for (struct member *m = g->members, *next; m; m = next) {
        next = m->next;
        if (m->join_call == NULL) {
            logger_info("group", "member %s of group %s did not rejoin in time", m->id.p, g->id.p);
            member_unlink(g, m);
            member_free(m);
        }
    }
    g->generation++;
    if (g->nmembers == 0) {
        gstr_free(&g->protocol_name);
        gstr_free(&g->leader);
        group_set_state(g, GS_EMPTY);
        group_persist(g);
        return;
    }
    const struct gstr *proto = group_select_protocol(g);
    if (proto)
        gstr_set(&g->protocol_name, proto->p, proto->len);
    else
        gstr_free(&g->protocol_name);
    if (g->leader.len < 0 || group_find_member(g, gstr_kstr(&g->leader)) == NULL)
        gstr_set(&g->leader, g->members->id.p, g->members->id.len);
    group_set_state(g, GS_COMPLETING);
    logger_info("group", "group %s: generation %d with %d members, protocol %s, leader %s", g->id.p,
                g->generation, g->nmembers, g->protocol_name.p ? g->protocol_name.p : "-",
                g->leader.p);
    for (struct member *m = g->members; m; m = m->next) {
        gstr_free(&m->assignment);
        struct group_call *c = m->join_call;
        m->join_call = NULL;
        member_schedule(m);
        if (c)
            join_reply_member(g, m, c);
    }
}

static int32_t group_max_rebalance_timeout(struct group *g)
{
    int32_t t = 0;
    for (struct member *m = g->members; m; m = m->next)
        if (m->rebalance_timeout > t)
            t = m->rebalance_timeout;
    return t;
}

static void group_join_timer_fired(struct net_timer *t)
{
    struct group *g = t->arg;
    if (g->state != GS_PREPARING)
        return;
    if (g->initial_delay) {
        int64_t remaining = g->join_deadline_ms - clock_mono_ms();
        if (g->new_member_added && remaining > 0) {
            g->new_member_added = false;
            int64_t d = g->s->gc->cfg.initial_rebalance_delay_ms;
            net_timer_start(g->s->worker, &g->join_timer, d < remaining ? d : remaining,
                            group_join_timer_fired, g);
            return;
        }
    }
    group_complete_join(g);
}

static void group_try_complete_join(struct group *g)
{
    if (g->state != GS_PREPARING || g->initial_delay)
        return;
    for (struct member *m = g->members; m; m = m->next)
        if (m->join_call == NULL)
            return;
    group_complete_join(g);
}

static void group_reset_and_propagate(struct group *g, int16_t err)
{
    for (struct member *m = g->members; m; m = m->next) {
        gstr_free(&m->assignment);
        if (m->sync_call) {
            struct group_call *c = m->sync_call;
            m->sync_call = NULL;
            sync_reply(c, err, NULL, NULL);
        }
    }
}

static void group_prepare_rebalance(struct group *g)
{
    struct shard *s = g->s;
    if (g->state == GS_COMPLETING)
        group_reset_and_propagate(g, KAFKA_ERR_REBALANCE_IN_PROGRESS);
    int32_t rt = group_max_rebalance_timeout(g);
    if (g->state == GS_EMPTY) {
        int64_t d = s->gc->cfg.initial_rebalance_delay_ms;
        g->initial_delay = true;
        g->new_member_added = false;
        g->join_deadline_ms = clock_mono_ms() + (rt > d ? rt : d);
        net_timer_start(s->worker, &g->join_timer, d < rt ? d : rt, group_join_timer_fired, g);
    } else {
        g->initial_delay = false;
        net_timer_start(s->worker, &g->join_timer, rt, group_join_timer_fired, g);
    }
    group_set_state(g, GS_PREPARING);
    logger_info("group", "group %s: preparing rebalance (generation %d, %d members)", g->id.p,
                g->generation, g->nmembers);
    group_try_complete_join(g);
}

void group_maybe_prepare_rebalance(struct group *g)
{
    if (g->state == GS_STABLE || g->state == GS_COMPLETING || g->state == GS_EMPTY)
        group_prepare_rebalance(g);
    else if (g->state == GS_PREPARING)
        group_try_complete_join(g);
}

/* Kafka's isStaticMemberFenced: the instance id belongs to another member id now. */
static bool static_fenced(struct group *g, struct kstr instance, struct kstr member_id)
{
    struct member *bi = group_member_by_instance(g, instance);
    return bi != NULL && !gstr_eq(&bi->id, member_id);
}

/* ---- SyncGroup ---- */

struct sync_persist {
    char *group;
    int32_t generation;
    struct shard *s;
};

static void group_sync_persisted(void *arg, int err)
{
    struct sync_persist *sp = arg;
    struct group *g = group_find(sp->s, (struct kstr){sp->group, (int32_t)strlen(sp->group)});
    if (g != NULL && g->state == GS_COMPLETING && g->generation == sp->generation) {
        if (err != 0) {
            logger_warn("group", "group %s: cannot persist the assignment: %d", sp->group, err);
            group_reset_and_propagate(g, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
            group_prepare_rebalance(g);
        } else {
            group_set_state(g, GS_STABLE);
            for (struct member *m = g->members; m; m = m->next) {
                if (m->sync_call) {
                    struct group_call *c = m->sync_call;
                    m->sync_call = NULL;
                    sync_reply(c, 0, g, &m->assignment);
                }
            }
        }
    }
    free(sp->group);
    free(sp);
}

void group_handle_sync(struct shard *s, struct group_call *c)
{
    const struct kmsg_sync_group_request *req = c->req;
    int16_t err = shard_error(s);
    if (err) {
        sync_reply(c, err, NULL, NULL);
        return;
    }
    struct group *g = group_find(s, req->group_id);
    if (g != NULL && g->cg != NULL) {
        cg_classic_sync(g, c); /* Kafka's classicGroupSyncToConsumerGroup */
        return;
    }
    struct member *m = g ? group_find_member(g, req->member_id) : NULL;
    struct kstr instance = c->api_version >= 3 ? req->group_instance_id : KSTR_NULL;
    if (g != NULL && static_fenced(g, instance, req->member_id)) {
        sync_reply(c, KAFKA_ERR_FENCED_INSTANCE_ID, NULL, NULL);
        return;
    }
    if (g == NULL || m == NULL) {
        sync_reply(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, NULL, NULL);
        return;
    }
    if (instance.len >= 0 && !gstr_eq(&m->instance_id, instance)) {
        sync_reply(c, KAFKA_ERR_FENCED_INSTANCE_ID, NULL, NULL);
        return;
    }
    if (req->generation_id != g->generation) {
        sync_reply(c, KAFKA_ERR_ILLEGAL_GENERATION, NULL, NULL);
        return;
    }
    if (c->api_version >= 5 &&
        ((req->protocol_type.len >= 0 && !gstr_eq(&g->protocol_type, req->protocol_type)) ||
         (req->protocol_name.len >= 0 && !gstr_eq(&g->protocol_name, req->protocol_name)))) {
        sync_reply(c, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, NULL, NULL);
        return;
    }
    switch (g->state) {
    case GS_PREPARING:
        sync_reply(c, KAFKA_ERR_REBALANCE_IN_PROGRESS, NULL, NULL);
        return;
    case GS_STABLE:
        member_schedule(m);
        sync_reply(c, 0, g, &m->assignment);
        return;
    case GS_COMPLETING:
        break;
    default:
        sync_reply(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, NULL, NULL);
        return;
    }
    if (m->sync_call && m->sync_call != c)
        sync_reply(m->sync_call, KAFKA_ERR_REBALANCE_IN_PROGRESS, NULL, NULL);
    m->sync_call = c;
    member_schedule(m);
    if (!gstr_eq_str(&g->leader, &m->id))
        return;
    for (struct member *o = g->members; o; o = o->next) {
        gstr_set(&o->assignment, "", 0);
        for (int32_t i = 0; i < req->assignments.n; i++)
            if (gstr_eq(&o->id, req->assignments.v[i].member_id)) {
                struct kbytes a = req->assignments.v[i].assignment;
                gstr_set(&o->assignment, a.ptr, a.len >= 0 ? a.len : 0);
            }
    }
    struct sync_persist *sp = calloc(1, sizeof(*sp));
    struct offsets_kv kv;
    int rc = -1;
    if (sp && (sp->group = strdup(g->id.p)) != NULL) {
        sp->generation = g->generation;
        sp->s = s;
        if (group_encode_metadata(&kv, g, g->id.p) == 0) {
            rc = shard_append(s, &kv, 1, group_sync_persisted, sp);
            offsets_kv_free(&kv);
        }
    }
    if (rc != 0) {
        if (sp)
            free(sp->group);
        free(sp);
        logger_warn("group", "group %s: cannot append the assignment: %d", g->id.p, rc);
        group_reset_and_propagate(g, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
        group_prepare_rebalance(g);
    }
}

/* ---- Heartbeat ---- */

void group_handle_heartbeat(struct shard *s, struct group_call *c)
{
    const struct kmsg_heartbeat_request *req = c->req;
    int16_t err = shard_error(s);
    if (err) {
        heartbeat_reply(c, err);
        return;
    }
    struct group *g = group_find(s, req->group_id);
    if (g != NULL && g->cg != NULL) {
        cg_classic_heartbeat(g, c); /* Kafka's classicGroupHeartbeatToConsumerGroup */
        return;
    }
    struct member *m = g ? group_find_member(g, req->member_id) : NULL;
    struct kstr instance = c->api_version >= 3 ? req->group_instance_id : KSTR_NULL;
    if (g == NULL || g->state == GS_EMPTY) {
        heartbeat_reply(c, KAFKA_ERR_UNKNOWN_MEMBER_ID);
        return;
    }
    if (g->state == GS_DEAD) {
        heartbeat_reply(c, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (static_fenced(g, instance, req->member_id)) {
        heartbeat_reply(c, KAFKA_ERR_FENCED_INSTANCE_ID);
        return;
    }
    if (m == NULL) {
        heartbeat_reply(c, KAFKA_ERR_UNKNOWN_MEMBER_ID);
        return;
    }
    if (instance.len >= 0 && !gstr_eq(&m->instance_id, instance)) {
        heartbeat_reply(c, KAFKA_ERR_FENCED_INSTANCE_ID);
        return;
    }
    if (req->generation_id != g->generation) {
        heartbeat_reply(c, KAFKA_ERR_ILLEGAL_GENERATION);
        return;
    }
    member_schedule(m);
    heartbeat_reply(c, g->state == GS_PREPARING ? KAFKA_ERR_REBALANCE_IN_PROGRESS : 0);
}

/* ---- LeaveGroup ---- */

/* Removes one member; returns its error code. */
static int16_t group_leave_one(struct group *g, struct kstr member_id, struct kstr instance)
{
    struct member *m;
    if (instance.len >= 0) {
        m = group_member_by_instance(g, instance);
        if (m == NULL)
            return KAFKA_ERR_UNKNOWN_MEMBER_ID;
        if (member_id.len > 0 && !gstr_eq(&m->id, member_id))
            return KAFKA_ERR_FENCED_INSTANCE_ID;
    } else {
        if (group_take_pending(g, member_id))
            return 0;
        m = group_find_member(g, member_id);
        if (m == NULL)
            return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    }
    logger_info("group", "member %s left group %s", m->id.p, g->id.p);
    group_remove_member_and_update(g, m);
    return 0;
}

int group_leave_each(struct group *g, struct group_call *c, group_leave_fn leave_one, void *arg)
{
    const struct kmsg_leave_group_request *req = c->req;
    struct kmsg_leave_group_response *resp = c->resp;
    resp->members.n = 0;
    if (req->members.n <= 0)
        return 0;
    resp->members.v = arena_calloc(c->arena, (size_t)req->members.n, sizeof(*resp->members.v));
    if (resp->members.v == NULL)
        return -ENOMEM;
    resp->members.n = req->members.n;
    int left = 0;
    for (int32_t i = 0; i < req->members.n; i++) {
        const struct kmsg_leave_group_request_member_identity *mi = &req->members.v[i];
        struct kmsg_leave_group_response_member_response *mr = &resp->members.v[i];
        kmsg_leave_group_response_member_response_init(mr);
        mr->member_id = mi->member_id;
        mr->group_instance_id = mi->group_instance_id;
        mr->error_code = leave_one(g, mi->member_id, mi->group_instance_id, arg);
        left += mr->error_code == 0;
    }
    return left;
}

static int16_t group_leave_listed(struct group *g, struct kstr member_id, struct kstr instance,
                                  void *arg)
{
    (void)arg;
    return group_leave_one(g, member_id, instance);
}

void group_handle_leave(struct shard *s, struct group_call *c)
{
    const struct kmsg_leave_group_request *req = c->req;
    struct kmsg_leave_group_response *resp = c->resp;
    int16_t err = shard_error(s);
    struct group *g = err ? NULL : group_find(s, req->group_id);
    if (err == 0 && (g == NULL || g->state == GS_DEAD))
        err = KAFKA_ERR_UNKNOWN_MEMBER_ID;
    if (err == 0 && g->cg != NULL) {
        cg_classic_leave(g, c); /* Kafka's classicGroupLeaveToConsumerGroup */
        return;
    }
    if (c->api_version < 3) {
        resp->error_code = err ? err : group_leave_one(g, req->member_id, KSTR_NULL);
        call_finish(c);
        return;
    }
    resp->error_code = err;
    resp->members.n = 0;
    if (err == 0 && group_leave_each(g, c, group_leave_listed, NULL) < 0)
        resp->error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    call_finish(c);
}
