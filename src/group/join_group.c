/*
 * JoinGroup (Kafka's GroupCoordinator.handleJoinGroup), dispatched on the member and the
 * group's state: a member without an id (doUnknownJoinGroup: MEMBER_ID_REQUIRED for a dynamic
 * member at v4+, the takeover of its old entry for a static one) or with one
 * (doCurrentMemberJoinGroup: by PreparingRebalance, CompletingRebalance, Stable). Joining parks
 * the call in member->join_call until the rebalance completes (membership.c). Static members
 * (KIP-345) rejoining a Stable group keep their assignment without a rebalance. Owner worker
 * only (coordinator.h).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "base/clock.h"
#include "base/logger.h"
#include "group/consumer_group.h"
#include "group/group_internal.h"
#include "proto/gen/errors.h"
#include "proto/gen/join_group.h"

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

/* Renames m to member id `id`, the group's leader id with it if m leads. Used both to hand a
 * static member its new id and to give it its previous id back (Kafka reverts when the group
 * record cannot be stored). */
static void static_member_set_id(struct group *g, struct member *m, const char *id)
{
    bool leader = gstr_eq_str(&g->leader, &m->id);
    gstr_set(&m->id, id, (int32_t)strlen(id));
    if (leader)
        gstr_set(&g->leader, id, (int32_t)strlen(id));
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
        logger_warn("group", "group %s: cannot persist static member %s: %d", g->id.p, sr->instance,
                    err);
        static_member_set_id(g, m, sr->old_id);
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

/* The calls the member's old id still has parked are answered: that id is fenced now. */
static void static_member_fence_parked(struct member *m)
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
}

/*
 * A Stable group whose selected protocol stays the same does not rebalance: the group record
 * with m's new id is stored and static_rejoin_persisted answers c with the current generation.
 * m already carries the new id; old_id and old_leader are what it replaced.
 */
static void static_member_rejoin_stable(struct group *g, struct member *m, struct group_call *c,
                                        const char *old_id, const struct gstr *old_leader)
{
    if (member_update(m, c->req, c) != 0) {
        static_member_set_id(g, m, old_id);
        join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, KSTR_LIT(""));
        return;
    }
    const struct gstr *proto = group_select_protocol(g);
    member_park_join(m, c);
    if (proto == NULL || !gstr_eq_str(proto, &g->protocol_name)) {
        group_maybe_prepare_rebalance(g);
        return;
    }
    if (static_rejoin_persist(g, m, old_id, old_leader) != 0) {
        m->join_call = NULL;
        static_member_set_id(g, m, old_id);
        member_schedule(m);
        join_reply_error(c, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, KSTR_LIT(""));
    }
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
    static_member_fence_parked(m);
    char *old_id = strdup(m->id.p);
    struct gstr old_leader = {NULL, -1};
    gstr_set(&old_leader, g->leader.p, g->leader.len);
    static_member_set_id(g, m, new_id);
    logger_info("group", "group %s (%s): static member %s rejoined as %s", g->id.p,
                group_state_name(g->state), m->instance_id.p, new_id);
    if (g->state == GS_STABLE && old_id != NULL)
        static_member_rejoin_stable(g, m, c, old_id, &old_leader);
    else
        group_update_member_and_rebalance(g, m, c);
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

bool group_take_pending(struct group *g, struct kstr id)
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

/* Ids handed out with MEMBER_ID_REQUIRED and not used yet, per group: a client that never
 * comes back must not grow the list forever. */
#define GROUP_MAX_PENDING_MEMBERS 1000

/* Remembers an id handed out with MEMBER_ID_REQUIRED. The list is newest first; beyond the
 * bound the oldest ids go, so the id just handed out stays usable however many stale ones
 * there are. */
static void pending_add(struct group *g, const char *id)
{
    struct pending_member *p = calloc(1, sizeof(*p));
    if (p == NULL || (p->id = strdup(id)) == NULL) {
        free(p);
        return;
    }
    p->next = g->pending;
    g->pending = p;
    struct pending_member **pp = &g->pending;
    for (int n = 0; *pp && n < GROUP_MAX_PENDING_MEMBERS; n++)
        pp = &(*pp)->next;
    while (*pp) {
        struct pending_member *old = *pp;
        *pp = old->next;
        free(old->id);
        free(old);
    }
}

/* ---- JoinGroup, by member and group state (Kafka's GroupCoordinator.handleJoinGroup) ---- */

/* The static member id of a JoinGroup (v5+), else null. */
static struct kstr join_instance_id(const struct group_call *c)
{
    const struct kmsg_join_group_request *req = c->req;
    return c->api_version >= 5 ? req->group_instance_id : KSTR_NULL;
}

/* The checks that need no group: 0, or the error to answer. */
static int16_t join_check_request(struct shard *s, const struct group_call *c)
{
    const struct kmsg_join_group_request *req = c->req;
    const struct group_config *cfg = &c->gc->cfg;
    int16_t err = shard_error(s);
    if (err)
        return err;
    if (req->group_id.len <= 0)
        return KAFKA_ERR_INVALID_GROUP_ID;
    if (req->session_timeout_ms < cfg->min_session_timeout_ms ||
        req->session_timeout_ms > cfg->max_session_timeout_ms)
        return KAFKA_ERR_INVALID_SESSION_TIMEOUT;
    return 0;
}

/*
 * The group a JoinGroup is for, created when a member without an id joins an unknown group.
 * NULL with *err set when the call must be refused (unknown member of an unknown group, a Dead
 * group, protocols the group cannot agree on).
 */
static struct group *join_find_group(struct shard *s, const struct group_call *c, int16_t *err)
{
    const struct kmsg_join_group_request *req = c->req;
    struct group *g = group_find(s, req->group_id);
    if (g == NULL) {
        if (req->member_id.len > 0) {
            *err = KAFKA_ERR_UNKNOWN_MEMBER_ID;
            return NULL;
        }
        g = group_create(s, req->group_id);
        if (g == NULL) {
            *err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            return NULL;
        }
    }
    if (g->state == GS_DEAD) {
        *err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        return NULL;
    }
    /* A consumer group (KIP-848) with members serves classic members itself (group_handle_join,
     * consumer_classic.c); an empty one becomes classic again. */
    assert(g->cg == NULL || group_consumer_members(g) == 0);
    if (g->cg != NULL) {
        /* Kafka's maybeDeleteEmptyConsumerGroup: the consumer group's tombstones first, so a
         * replay does not bring it back beside the classic group. */
        struct cg_records r = {0};
        cg_records_group_tombstones(&r, g);
        cg_records_persist(g, &r);
        cg_free(g, true);
        gstr_free(&g->protocol_type);
    }
    if (!group_supports(g, req)) {
        *err = KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL;
        return NULL;
    }
    return g;
}

/*
 * Kafka's doUnknownJoinGroup: a member without an id. A static member takes over its old entry;
 * a dynamic one (v4+) first gets an id to join with (MEMBER_ID_REQUIRED); before v4 it joins
 * at once.
 */
static void join_unknown_member(struct group *g, struct group_call *c)
{
    struct kstr instance = join_instance_id(c);
    char id[320];
    new_member_id(c->client_id, id, sizeof(id));
    struct member *old = group_member_by_instance(g, instance);
    if (old != NULL) {
        static_member_rejoin(g, old, c, id);
        return;
    }
    if (instance.len < 0 && c->api_version >= 4) {
        pending_add(g, id);
        join_reply_error(c, KAFKA_ERR_MEMBER_ID_REQUIRED, (struct kstr){id, (int32_t)strlen(id)});
        return;
    }
    group_add_member_and_rebalance(g, c, id);
}

/* A member joins with the id MEMBER_ID_REQUIRED gave it: it becomes a member now. */
static void join_pending_member(struct group *g, struct group_call *c)
{
    const struct kmsg_join_group_request *req = c->req;
    char *id = kstr_strdup(req->member_id);
    if (id == NULL) {
        join_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, req->member_id);
        return;
    }
    group_add_member_and_rebalance(g, c, id);
    free(id);
}

/* A rejoin that changes nothing: the member gets the current generation again. */
static void join_reply_current(struct group *g, struct member *m, struct group_call *c)
{
    member_schedule(m);
    join_reply_member(g, m, c);
}

/* CompletingRebalance: a member whose protocols are unchanged lost its JoinGroup response and
 * gets it again; changed protocols start a new rebalance. */
static void join_member_completing(struct group *g, struct member *m, struct group_call *c)
{
    if (member_matches(m, c->req))
        join_reply_current(g, m, c);
    else
        group_update_member_and_rebalance(g, m, c);
}

/* Stable: a follower with unchanged protocols gets the current generation; the leader (it
 * rejoins to have the group reassigned, e.g. after a metadata change) or a member with changed
 * protocols starts a rebalance. */
static void join_member_stable(struct group *g, struct member *m, struct group_call *c)
{
    if (gstr_eq_str(&g->leader, &m->id) || !member_matches(m, c->req))
        group_update_member_and_rebalance(g, m, c);
    else
        join_reply_current(g, m, c);
}

/* Kafka's doCurrentMemberJoinGroup: a member with an id, dispatched on the group's state. */
static void join_known_member(struct group *g, struct group_call *c)
{
    const struct kmsg_join_group_request *req = c->req;
    if (group_take_pending(g, req->member_id)) {
        join_pending_member(g, c);
        return;
    }
    struct member *m = group_find_member(g, req->member_id);
    struct member *by_instance = group_member_by_instance(g, join_instance_id(c));
    if (by_instance != NULL && by_instance != m) {
        join_reply_error(c, KAFKA_ERR_FENCED_INSTANCE_ID, req->member_id);
        return;
    }
    if (m == NULL) {
        join_reply_error(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, req->member_id);
        return;
    }
    switch (g->state) {
    case GS_PREPARING: /* it joins the rebalance in progress with what it sent */
        group_update_member_and_rebalance(g, m, c);
        break;
    case GS_COMPLETING:
        join_member_completing(g, m, c);
        break;
    case GS_STABLE:
        join_member_stable(g, m, c);
        break;
    case GS_EMPTY: /* an Empty group has no members to know */
    case GS_DEAD:
        join_reply_error(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, req->member_id);
        break;
    }
}

void group_handle_join(struct shard *s, struct group_call *c)
{
    const struct kmsg_join_group_request *req = c->req;
    int16_t err = join_check_request(s, c);
    struct group *cgg = err ? NULL : group_find(s, req->group_id);
    if (cgg != NULL && cgg->cg != NULL && group_consumer_members(cgg) > 0) {
        cg_classic_join(cgg, c); /* Kafka's classicGroupJoinToConsumerGroup */
        return;
    }
    struct group *g = err ? NULL : join_find_group(s, c, &err);
    if (g == NULL) {
        join_reply_error(c, err, req->member_id);
        return;
    }
    if (g->nmembers == 0 && g->protocol_type.len < 0)
        gstr_from_kstr(&g->protocol_type, req->protocol_type);
    if (req->member_id.len <= 0)
        join_unknown_member(g, c);
    else
        join_known_member(g, c);
}
