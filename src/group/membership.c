/*
 * The classic group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the group state
 * machine Empty -> PreparingRebalance -> CompletingRebalance -> Stable (Kafka's
 * GroupCoordinator/GroupMetadata). Runs on the shard's owner worker only (coordinator.h).
 *
 * Parked calls: a JoinGroup waits in member->join_call until the rebalance completes (all
 * known members rejoined, or the rebalance timeout / initial delay timer fired); a SyncGroup
 * waits in member->sync_call until the leader's assignment is durable. While a member waits in
 * JoinGroup its session timer is off (the rebalance timer bounds the wait instead); otherwise
 * it runs and every heartbeat/join/sync/commit restarts it.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/clock.h"
#include "base/log.h"
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

static void join_reply_error(struct group_call *c, int16_t err, struct kstr member_id)
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

static void sync_reply(struct group_call *c, int16_t err, const struct group *g,
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
static void join_reply_as(struct group *g, struct member *m, struct group_call *c,
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
static void join_reply_member(struct group *g, struct member *m, struct group_call *c)
{
    join_reply_as(g, m, c, &g->leader, gstr_eq_str(&g->leader, &m->id), false);
}

/* ---- timers ---- */

static void member_session_expired(struct net_timer *t)
{
    struct member *m = t->arg;
    struct group *g = m->g;
    log_info("group", "member %s of group %s: session timeout (%d ms) expired", m->id.p, g->id.p,
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
        log_warn("group", "cannot persist group metadata: %d", err);
}

/* Writes the group's metadata record without waiting for anyone. */
static void group_persist(struct group *g)
{
    struct offsets_kv kv;
    if (group_encode_metadata(&kv, g, g->id.p) != 0)
        return;
    if (shard_append(g->s, &kv, 1, group_persist_done, NULL) != 0)
        log_warn("group", "cannot persist metadata of group %s", g->id.p);
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
static const struct gstr *group_select_protocol(struct group *g)
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
            log_info("group", "member %s of group %s did not rejoin in time", m->id.p, g->id.p);
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
    log_info("group", "group %s: generation %d with %d members, protocol %s, leader %s", g->id.p,
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
    log_info("group", "group %s: preparing rebalance (generation %d, %d members)", g->id.p,
             g->generation, g->nmembers);
    group_try_complete_join(g);
}

static void group_maybe_prepare_rebalance(struct group *g)
{
    if (g->state == GS_STABLE || g->state == GS_COMPLETING || g->state == GS_EMPTY)
        group_prepare_rebalance(g);
    else if (g->state == GS_PREPARING)
        group_try_complete_join(g);
}

/* Copies the JoinGroup's protocols and timeouts into m. */
static int member_update(struct member *m, const struct kmsg_join_group_request *req,
                         struct group_call *c)
{
    struct gprotocol *ps = calloc((size_t)req->protocols.n + 1, sizeof(*ps));
    if (ps == NULL)
        return -1;
    for (int32_t i = 0; i < req->protocols.n; i++) {
        ps[i].name.len = ps[i].metadata.len = -1;
        gstr_from_kstr(&ps[i].name, req->protocols.v[i].name);
        gstr_from_kbytes(&ps[i].metadata, req->protocols.v[i].metadata);
    }
    for (int32_t i = 0; i < m->nprotocols; i++) {
        gstr_free(&m->protocols[i].name);
        gstr_free(&m->protocols[i].metadata);
    }
    free(m->protocols);
    m->protocols = ps;
    m->nprotocols = req->protocols.n;
    m->session_timeout = req->session_timeout_ms;
    m->rebalance_timeout = c->api_version >= 1 && req->rebalance_timeout_ms > 0
                               ? req->rebalance_timeout_ms
                               : req->session_timeout_ms;
    gstr_from_kstr(&m->client_id, c->client_id.len >= 0 ? c->client_id : KSTR_LIT(""));
    gstr_set(&m->client_host, c->client_host, (int32_t)strlen(c->client_host));
    gstr_from_kstr(&m->protocol_type, req->protocol_type);
    return 0;
}

static bool member_matches(const struct member *m, const struct kmsg_join_group_request *req)
{
    if (m->nprotocols != req->protocols.n)
        return false;
    for (int32_t i = 0; i < m->nprotocols; i++) {
        if (!gstr_eq(&m->protocols[i].name, req->protocols.v[i].name))
            return false;
        struct kbytes b = req->protocols.v[i].metadata;
        if (!gstr_eq(&m->protocols[i].metadata, (struct kstr){(const char *)b.ptr, b.len}))
            return false;
    }
    return true;
}

static void member_park_join(struct member *m, struct group_call *c)
{
    if (m->join_call && m->join_call != c)
        join_reply_error(m->join_call, KAFKA_ERR_REBALANCE_IN_PROGRESS, gstr_kstr(&m->id));
    m->join_call = c;
    net_timer_cancel(m->g->s->worker, &m->session_timer);
}

static void group_add_member_and_rebalance(struct group *g, struct group_call *c,
                                           const char *member_id)
{
    const struct kmsg_join_group_request *req = c->req;
    struct member *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, KSTR_LIT(""));
        return;
    }
    m->g = g;
    m->id.len = m->instance_id.len = m->client_id.len = m->client_host.len = -1;
    m->protocol_type.len = m->assignment.len = -1;
    gstr_set(&m->id, member_id, (int32_t)strlen(member_id));
    gstr_from_kstr(&m->instance_id, c->api_version >= 5 ? req->group_instance_id : KSTR_NULL);
    if (m->id.p == NULL || member_update(m, req, c) != 0) {
        member_free(m);
        join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, KSTR_LIT(""));
        return;
    }
    struct member **tail = &g->members;
    while (*tail)
        tail = &(*tail)->next;
    *tail = m;
    g->nmembers++;
    if (g->nmembers == 1 && g->protocol_type.len < 0)
        gstr_from_kstr(&g->protocol_type, req->protocol_type);
    if (g->leader.len < 0)
        gstr_set(&g->leader, m->id.p, m->id.len);
    g->new_member_added = true;
    member_park_join(m, c);
    group_maybe_prepare_rebalance(g);
}

static void group_update_member_and_rebalance(struct group *g, struct member *m,
                                              struct group_call *c)
{
    if (member_update(m, c->req, c) != 0) {
        join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, gstr_kstr(&m->id));
        return;
    }
    member_park_join(m, c);
    group_maybe_prepare_rebalance(g);
}

/* ---- static members (KIP-345) ---- */

/* A static member's JoinGroup waiting for the group record naming its new member id. */
struct static_rejoin {
    struct shard *s;
    char *group, *instance, *new_id, *old_id;
    struct gstr old_leader; /* the leader before the replacement (old id if it was this member) */
};

static void static_rejoin_free(struct static_rejoin *sr)
{
    free(sr->group);
    free(sr->instance);
    free(sr->new_id);
    free(sr->old_id);
    gstr_free(&sr->old_leader);
    free(sr);
}

/* Gives m its previous member id back (Kafka reverts when the group record cannot be stored). */
static void static_member_revert(struct group *g, struct member *m, const char *old_id)
{
    bool leader = gstr_eq_str(&g->leader, &m->id);
    gstr_set(&m->id, old_id, (int32_t)strlen(old_id));
    if (leader)
        gstr_set(&g->leader, old_id, (int32_t)strlen(old_id));
}

/*
 * Owner worker: the group record with the static member's new id is durable (or failed).
 * Answers the parked JoinGroup as Kafka does, unless a rebalance took the call over (then the
 * rebalance answers it) or the instance was replaced again meanwhile.
 */
static void static_rejoin_persisted(void *arg, int err)
{
    struct static_rejoin *sr = arg;
    struct group *g = group_find(sr->s, (struct kstr){sr->group, (int32_t)strlen(sr->group)});
    struct member *m =
        g ? group_member_by_instance(g, (struct kstr){sr->instance, (int32_t)strlen(sr->instance)})
          : NULL;
    if (m == NULL || g->state != GS_STABLE || m->join_call == NULL || m->id.p == NULL ||
        strcmp(m->id.p, sr->new_id) != 0) {
        static_rejoin_free(sr);
        return;
    }
    struct group_call *c = m->join_call;
    m->join_call = NULL;
    if (err != 0) {
        log_warn("group", "group %s: cannot persist static member %s: %d", g->id.p, sr->instance,
                 err);
        static_member_revert(g, m, sr->old_id);
        member_schedule(m);
        join_reply_error(c, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, KSTR_LIT(""));
        static_rejoin_free(sr);
        return;
    }
    member_schedule(m);
    if (c->api_version >= 9) {
        /* The leader learns it leads, with the members, but must not reassign. */
        bool leader = gstr_eq_str(&g->leader, &m->id);
        join_reply_as(g, m, c, &g->leader, leader, leader);
    } else {
        /* Before v9 the old leader id is returned, so that a restarted leader does not run an
         * assignment a Stable group would never hand out. */
        join_reply_as(g, m, c, &sr->old_leader, false, false);
    }
    static_rejoin_free(sr);
}

/*
 * Writes the group record with m's new id; static_rejoin_persisted answers c. Returns 0, or a
 * negative error with nothing pending.
 */
static int static_rejoin_persist(struct group *g, struct member *m, const char *old_id,
                                 const struct gstr *old_leader)
{
    assert(m->instance_id.p != NULL); /* found by its instance id: a static member */
    struct static_rejoin *sr = calloc(1, sizeof(*sr));
    if (sr == NULL)
        return -ENOMEM;
    sr->s = g->s;
    sr->old_leader.len = -1;
    sr->group = strdup(g->id.p);
    sr->instance = strdup(m->instance_id.p);
    sr->new_id = strdup(m->id.p);
    sr->old_id = strdup(old_id);
    gstr_set(&sr->old_leader, old_leader->p, old_leader->len);
    struct offsets_kv kv;
    int rc = -ENOMEM;
    if (sr->group && sr->instance && sr->new_id && sr->old_id &&
        (old_leader->len < 0 || sr->old_leader.p != NULL) &&
        (rc = group_encode_metadata(&kv, g, g->id.p)) == 0) {
        rc = shard_append(g->s, &kv, 1, static_rejoin_persisted, sr);
        offsets_kv_free(&kv);
    }
    if (rc != 0)
        static_rejoin_free(sr);
    return rc;
}

/*
 * Kafka's updateStaticMemberAndRebalance: a static member rejoining with an unknown member id
 * takes over its old entry under new_id (the old id is fenced at once). In a Stable group whose
 * selected protocol stays the same there is no rebalance: the group record is stored and the
 * member gets the current generation, then its old assignment from SyncGroup. Otherwise the
 * group rebalances as for any member update.
 */
static void static_member_rejoin(struct group *g, struct member *m, struct group_call *c,
                                 const char *new_id)
{
    if (m->join_call) {
        struct group_call *oc = m->join_call;
        m->join_call = NULL;
        join_reply_error(oc, KAFKA_ERR_FENCED_INSTANCE_ID, gstr_kstr(&m->id));
    }
    if (m->sync_call) {
        struct group_call *oc = m->sync_call;
        m->sync_call = NULL;
        sync_reply(oc, KAFKA_ERR_FENCED_INSTANCE_ID, NULL, NULL);
    }
    char *old_id = strdup(m->id.p);
    struct gstr old_leader = {NULL, -1};
    gstr_set(&old_leader, g->leader.p, g->leader.len);
    bool was_leader = gstr_eq_str(&g->leader, &m->id);
    gstr_set(&m->id, new_id, (int32_t)strlen(new_id));
    if (was_leader)
        gstr_set(&g->leader, new_id, (int32_t)strlen(new_id));
    log_info("group", "group %s (%s): static member %s rejoined as %s", g->id.p,
             group_state_name(g->state), m->instance_id.p, new_id);
    if (g->state != GS_STABLE || old_id == NULL) {
        group_update_member_and_rebalance(g, m, c);
        goto out;
    }
    if (member_update(m, c->req, c) != 0) {
        static_member_revert(g, m, old_id);
        join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, KSTR_LIT(""));
        goto out;
    }
    const struct gstr *proto = group_select_protocol(g);
    member_park_join(m, c);
    if (proto == NULL || !gstr_eq_str(proto, &g->protocol_name)) {
        group_maybe_prepare_rebalance(g);
        goto out;
    }
    if (static_rejoin_persist(g, m, old_id, &old_leader) != 0) {
        m->join_call = NULL;
        static_member_revert(g, m, old_id);
        member_schedule(m);
        join_reply_error(c, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, KSTR_LIT(""));
    }
out:
    free(old_id);
    gstr_free(&old_leader);
}

static void new_member_id(struct kstr client_id, char *out, size_t cap)
{
    uint8_t r[16];
    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        int64_t t = clock_mono_ns();
        for (int i = 0; i < 16; i++)
            r[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)(i * 37);
    }
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    int cl = client_id.len > 0 ? (client_id.len > 200 ? 200 : client_id.len) : 0;
    snprintf(out, cap, "%.*s-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             cl, cl ? client_id.ptr : "", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8],
             r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

static bool group_supports(struct group *g, const struct kmsg_join_group_request *req)
{
    if (g->nmembers == 0)
        return req->protocol_type.len > 0 && req->protocols.n > 0;
    if (!gstr_eq(&g->protocol_type, req->protocol_type))
        return false;
    for (int32_t i = 0; i < req->protocols.n; i++) {
        bool all = true;
        for (struct member *m = g->members; m && all; m = m->next) {
            bool found = false;
            for (int32_t j = 0; j < m->nprotocols && !found; j++)
                found = gstr_eq(&m->protocols[j].name, req->protocols.v[i].name);
            all = found;
        }
        if (all)
            return true;
    }
    return false;
}

static bool pending_take(struct group *g, struct kstr id)
{
    for (struct pending_member **pp = &g->pending; *pp; pp = &(*pp)->next) {
        struct pending_member *p = *pp;
        if ((int32_t)strlen(p->id) == id.len && memcmp(p->id, id.ptr, (size_t)id.len) == 0) {
            *pp = p->next;
            free(p->id);
            free(p);
            return true;
        }
    }
    return false;
}

static void pending_add(struct group *g, const char *id)
{
    /* Bounded: a client that never comes back must not grow the list forever. */
    int n = 0;
    struct pending_member **pp = &g->pending;
    while (*pp && n < 1000) {
        pp = &(*pp)->next;
        n++;
    }
    if (*pp) {
        struct pending_member *old = g->pending;
        g->pending = old->next;
        free(old->id);
        free(old);
    }
    struct pending_member *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->id = strdup(id)) == NULL) {
        free(p);
        return;
    }
    p->next = g->pending;
    g->pending = p;
}

void group_handle_join(struct shard *s, struct group_call *c)
{
    const struct kmsg_join_group_request *req = c->req;
    const struct group_config *cfg = &c->gc->cfg;
    int16_t err = shard_error(s);
    if (err) {
        join_reply_error(c, err, req->member_id);
        return;
    }
    if (req->group_id.len <= 0) {
        join_reply_error(c, KAFKA_ERR_INVALID_GROUP_ID, req->member_id);
        return;
    }
    if (req->session_timeout_ms < cfg->min_session_timeout_ms ||
        req->session_timeout_ms > cfg->max_session_timeout_ms) {
        join_reply_error(c, KAFKA_ERR_INVALID_SESSION_TIMEOUT, req->member_id);
        return;
    }
    bool unknown = req->member_id.len <= 0;
    struct group *g = group_find(s, req->group_id);
    if (g == NULL) {
        if (!unknown) {
            join_reply_error(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, req->member_id);
            return;
        }
        g = group_create(s, req->group_id);
        if (g == NULL) {
            join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, req->member_id);
            return;
        }
    }
    if (g->state == GS_DEAD) {
        join_reply_error(c, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, req->member_id);
        return;
    }
    if (!group_supports(g, req)) {
        join_reply_error(c, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL, req->member_id);
        return;
    }
    struct kstr instance = c->api_version >= 5 ? req->group_instance_id : KSTR_NULL;
    if (g->nmembers == 0 && g->protocol_type.len < 0)
        gstr_from_kstr(&g->protocol_type, req->protocol_type);
    if (unknown) {
        char id[320];
        new_member_id(c->client_id, id, sizeof(id));
        struct member *old = group_member_by_instance(g, instance);
        if (old != NULL) {
            static_member_rejoin(g, old, c, id);
            return;
        }
        if (instance.len < 0 && c->api_version >= 4) {
            pending_add(g, id);
            join_reply_error(c, KAFKA_ERR_MEMBER_ID_REQUIRED,
                             (struct kstr){id, (int32_t)strlen(id)});
            return;
        }
        group_add_member_and_rebalance(g, c, id);
        return;
    }
    if (pending_take(g, req->member_id)) {
        char *id = kstr_strdup(req->member_id);
        if (id == NULL) {
            join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, req->member_id);
            return;
        }
        group_add_member_and_rebalance(g, c, id);
        free(id);
        return;
    }
    struct member *m = group_find_member(g, req->member_id);
    struct member *by_instance = group_member_by_instance(g, instance);
    if (by_instance != NULL && by_instance != m) {
        join_reply_error(c, KAFKA_ERR_FENCED_INSTANCE_ID, req->member_id);
        return;
    }
    if (m == NULL) {
        join_reply_error(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, req->member_id);
        return;
    }
    switch (g->state) {
    case GS_PREPARING:
        group_update_member_and_rebalance(g, m, c);
        break;
    case GS_COMPLETING:
        if (member_matches(m, req)) {
            member_schedule(m);
            join_reply_member(g, m, c);
        } else {
            group_update_member_and_rebalance(g, m, c);
        }
        break;
    case GS_STABLE:
        if (gstr_eq_str(&g->leader, &m->id) || !member_matches(m, req)) {
            group_update_member_and_rebalance(g, m, c);
        } else {
            member_schedule(m);
            join_reply_member(g, m, c);
        }
        break;
    default:
        join_reply_error(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, req->member_id);
        break;
    }
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
            log_warn("group", "group %s: cannot persist the assignment: %d", sp->group, err);
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
        log_warn("group", "group %s: cannot append the assignment: %d", g->id.p, rc);
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
        if (pending_take(g, member_id))
            return 0;
        m = group_find_member(g, member_id);
        if (m == NULL)
            return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    }
    log_info("group", "member %s left group %s", m->id.p, g->id.p);
    group_remove_member_and_update(g, m);
    return 0;
}

void group_handle_leave(struct shard *s, struct group_call *c)
{
    const struct kmsg_leave_group_request *req = c->req;
    struct kmsg_leave_group_response *resp = c->resp;
    int16_t err = shard_error(s);
    struct group *g = err ? NULL : group_find(s, req->group_id);
    if (err == 0 && (g == NULL || g->state == GS_DEAD))
        err = KAFKA_ERR_UNKNOWN_MEMBER_ID;
    if (c->api_version < 3) {
        resp->error_code = err ? err : group_leave_one(g, req->member_id, KSTR_NULL);
        call_finish(c);
        return;
    }
    resp->error_code = err;
    resp->members.n = 0;
    if (err == 0 && req->members.n > 0) {
        resp->members.v = arena_calloc(c->arena, (size_t)req->members.n, sizeof(*resp->members.v));
        if (resp->members.v == NULL) {
            resp->error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            call_finish(c);
            return;
        }
        resp->members.n = req->members.n;
        for (int32_t i = 0; i < req->members.n; i++) {
            const struct kmsg_leave_group_request_member_identity *mi = &req->members.v[i];
            struct kmsg_leave_group_response_member_response *mr = &resp->members.v[i];
            kmsg_leave_group_response_member_response_init(mr);
            mr->member_id = mi->member_id;
            mr->group_instance_id = mi->group_instance_id;
            mr->error_code = group_leave_one(g, mi->member_id, mi->group_instance_id);
        }
    }
    call_finish(c);
}
