/*
 * ConsumerGroupHeartbeat (key 68): joining, heartbeating, reconciling and leaving a consumer
 * group of the KIP-848 protocol, following Kafka's GroupMetadataManager.consumerGroupHeartbeat
 * and CurrentAssignmentBuilder. See consumer_group.h for the epochs and invariants. Owner worker
 * only.
 *
 * Every change is written to __consumer_offsets as Kafka's records (consumer_records.c) and a
 * heartbeat is answered once they are durable, as Kafka answers after its write; a loaded shard
 * replays them, so after a restart or a coordinator move members go on with their member id,
 * epoch and assignment. Timers (session, rebalance) write without waiting.
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
#include "proto/gen/consumer_group_heartbeat.h"
#include "proto/gen/errors.h"

/* ---- the group ---- */

struct cgroup *cg_create(void)
{
    return calloc(1, sizeof(struct cgroup));
}

static void cg_topics_free(struct cg_topic *t, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        free(t[i].name);
    free(t);
}

void cg_member_free(struct cg_member *m)
{
    gstr_free(&m->id);
    gstr_free(&m->instance_id);
    gstr_free(&m->rack_id);
    gstr_free(&m->client_id);
    gstr_free(&m->client_host);
    gstr_free(&m->assignor);
    for (int32_t i = 0; i < m->ntopics; i++)
        free(m->topics[i]);
    free(m->topics);
    for (int32_t i = 0; i < m->nsubs; i++)
        free(m->subs[i]);
    free(m->subs);
    gstr_free(&m->regex);
    if (m->re_valid)
        regfree(&m->re);
    cg_tpset_free(&m->assigned);
    cg_tpset_free(&m->revoking);
    cg_tpset_free(&m->target);
    cg_member_classic_clear(m);
    free(m);
}

static void cg_member_cancel_timers(struct cg_member *m)
{
    struct net_worker *w = m->g->s->worker;
    if (w == NULL)
        return;
    net_timer_cancel(w, &m->session_timer);
    net_timer_cancel(w, &m->revoke_timer);
    cg_member_cancel_classic_timers(m);
}

void cg_free(struct group *g, bool on_owner)
{
    struct cgroup *cg = g->cg;
    if (cg == NULL)
        return;
    while (cg->members) {
        struct cg_member *m = cg->members;
        cg->members = m->next;
        if (on_owner)
            cg_member_cancel_timers(m);
        assert(on_owner || !net_timer_armed(&m->session_timer));
        cg_member_free(m);
    }
    cg_topics_free(cg->topics, cg->ntopics);
    free(cg);
    g->cg = NULL;
}

void cg_cancel_timers(struct group *g)
{
    for (struct cg_member *m = g->cg ? g->cg->members : NULL; m; m = m->next)
        cg_member_cancel_timers(m);
}

const char *cg_state_name(const struct cgroup *cg)
{
    if (cg->nmembers == 0)
        return "Empty";
    if (cg->group_epoch > cg->assignment_epoch)
        return "Assigning";
    for (const struct cg_member *m = cg->members; m; m = m->next)
        if (m->epoch != cg->assignment_epoch || m->state != CGM_STABLE)
            return "Reconciling";
    return "Stable";
}

struct cg_member *cg_find_member(struct cgroup *cg, struct kstr id)
{
    for (struct cg_member *m = cg->members; m; m = m->next)
        if (gstr_eq(&m->id, id))
            return m;
    return NULL;
}

struct cg_member *cg_find_static(struct cgroup *cg, struct kstr instance_id)
{
    if (instance_id.len < 0)
        return NULL;
    for (struct cg_member *m = cg->members; m; m = m->next)
        if (gstr_eq(&m->instance_id, instance_id))
            return m;
    return NULL;
}

/* Unlinks and frees m; bump: the membership changed (a new target assignment is due). The
 * member's tombstones (and the bumped epoch) go to r. */
void cg_remove_member(struct group *g, struct cg_member *m, bool bump, const char *why,
                      struct cg_records *r)
{
    struct cgroup *cg = g->cg;
    struct cg_member **pp = &cg->members;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    assert(*pp == m); /* every member is in its group's list */
    *pp = m->next;
    cg->nmembers--;
    logger_info("group", "consumer group %s: member %s %s", g->id.p, m->id.p, why);
    cg_records_member_tombstones(r, g, &m->id);
    cg_member_cancel_timers(m);
    cg_member_free(m);
    if (bump) {
        cg->group_epoch++;
        cg_records_epoch(r, g);
    }
}

void cg_fence_member(struct group *g, struct cg_member *m, const char *why, struct cg_records *r)
{
    if (cg_downgrade_allowed(g, m)) {
        logger_info("group", "consumer group %s: member %s %s", g->id.p, m->id.p, why);
        cg_downgrade(g, m, r);
    } else {
        cg_remove_member(g, m, true, why, r);
    }
}

static void member_session_expired(struct net_timer *t)
{
    struct cg_member *m = t->arg;
    struct group *g = m->g;
    struct cg_records r = {0};
    cg_fence_member(g, m, "expired (session timeout)", &r);
    cg_records_persist(g, &r);
}

static void member_revoke_expired(struct net_timer *t)
{
    struct cg_member *m = t->arg;
    struct group *g = m->g;
    struct cg_records r = {0};
    cg_fence_member(g, m, "fenced (did not revoke within its rebalance timeout)", &r);
    cg_records_persist(g, &r);
}

void cg_member_schedule_session(struct group *g, struct cg_member *m)
{
    int32_t ms = m->classic ? m->classic_session_ms : g->s->gc->cfg.consumer_session_timeout_ms;
    net_timer_start(g->s->worker, &m->session_timer, ms, member_session_expired, m);
}

/* ---- the request ---- */

static bool kstr_empty(struct kstr k)
{
    return k.len == 0;
}

/* Compiles a SubscribedTopicRegex as Kafka matches it: the whole topic name. 0 or regcomp's
 * error. */
static int regex_compile(regex_t *re, struct kstr pattern)
{
    char *buf = malloc((size_t)pattern.len + 5);
    if (buf == NULL)
        return REG_ESPACE;
    snprintf(buf, (size_t)pattern.len + 5, "^(%.*s)$", (int)pattern.len, pattern.ptr);
    int rc = regcomp(re, buf, REG_EXTENDED | REG_NOSUB);
    free(buf);
    return rc;
}

/* Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid (4.0, with v1's client-generated
 * member ids and regexes); 0, INVALID_REQUEST, INVALID_REGULAR_EXPRESSION or
 * UNSUPPORTED_ASSIGNOR, with the message in *msg. */
static int16_t hb_validate(const struct group_config *cfg, int16_t version,
                           const struct kmsg_consumer_group_heartbeat_request *req,
                           const char **msg)
{
    if (version >= 1 && req->member_id.len <= 0)
        return *msg = "MemberId can't be empty.", KAFKA_ERR_INVALID_REQUEST;
    if (req->subscribed_topic_regex.len > 0) {
        regex_t re;
        if (regex_compile(&re, req->subscribed_topic_regex) != 0)
            return *msg = "SubscribedTopicRegex is not a valid regular expression.",
                   KAFKA_ERR_INVALID_REGULAR_EXPRESSION;
        regfree(&re);
    }
    *msg = NULL;
    if (req->group_id.len <= 0)
        return *msg = "GroupId can't be empty.", KAFKA_ERR_INVALID_REQUEST;
    if (kstr_empty(req->instance_id))
        return *msg = "InstanceId can't be empty.", KAFKA_ERR_INVALID_REQUEST;
    if (kstr_empty(req->rack_id))
        return *msg = "RackId can't be empty.", KAFKA_ERR_INVALID_REQUEST;
    int32_t e = req->member_epoch;
    if (e > 0 || e == CG_LEAVE_EPOCH) {
        if (req->member_id.len <= 0)
            return *msg = "MemberId can't be empty.", KAFKA_ERR_INVALID_REQUEST;
    } else if (e == 0) {
        if (req->rebalance_timeout_ms == -1)
            return *msg = "RebalanceTimeoutMs must be provided in first request.",
                   KAFKA_ERR_INVALID_REQUEST;
        if (req->topic_partitions.n != 0)
            return *msg = "TopicPartitions must be empty when (re-)joining.",
                   KAFKA_ERR_INVALID_REQUEST;
        if (req->subscribed_topic_names.n <= 0 && req->subscribed_topic_regex.len <= 0)
            return *msg = "Subscription must be set in first request.", KAFKA_ERR_INVALID_REQUEST;
    } else if (e == CG_LEAVE_STATIC_EPOCH) {
        if (req->member_id.len <= 0)
            return *msg = "MemberId can't be empty.", KAFKA_ERR_INVALID_REQUEST;
        if (req->instance_id.len < 0)
            return *msg = "InstanceId can't be null.", KAFKA_ERR_INVALID_REQUEST;
    } else {
        return *msg = "MemberEpoch is invalid.", KAFKA_ERR_INVALID_REQUEST;
    }
    if (req->server_assignor.len >= 0 && !cg_assignor_known(cfg, req->server_assignor))
        return *msg = "ServerAssignor is not supported.", KAFKA_ERR_UNSUPPORTED_ASSIGNOR;
    return 0;
}

/* True if every partition the member reports owning is in set (Kafka's isSubset). */
static bool
owned_subset(const struct kmsg_consumer_group_heartbeat_request_topic_partitions_array *o,
             const struct cg_tpset *set)
{
    if (o->n < 0)
        return false;
    for (int32_t i = 0; i < o->n; i++)
        for (int32_t j = 0; j < o->v[i].partitions.n; j++)
            if (!cg_tpset_has(set, o->v[i].topic_id.b, o->v[i].partitions.v[j]))
                return false;
    return true;
}

/* True if the member may still own a partition of set (unknown when it did not say). */
static bool owns_any(const struct kmsg_consumer_group_heartbeat_request_topic_partitions_array *o,
                     const struct cg_tpset *set)
{
    if (o->n < 0)
        return true;
    for (int32_t i = 0; i < o->n; i++)
        for (int32_t j = 0; j < o->v[i].partitions.n; j++)
            if (cg_tpset_has(set, o->v[i].topic_id.b, o->v[i].partitions.v[j]))
                return true;
    return false;
}

/* Kafka's Uuid.randomUuid().toString(): 16 random bytes in URL-safe base64, unpadded. */
void cg_new_member_id(char out[23])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t r[18] = {0};
    if (getrandom(r, 16, 0) != 16) {
        int64_t t = clock_mono_ns();
        for (int i = 0; i < 16; i++)
            r[i] = (uint8_t)(t >> ((i % 8) * 8)) ^ (uint8_t)(i * 37);
    }
    int o = 0;
    for (int i = 0; i < 18 && o < 22; i += 3) {
        uint32_t v = ((uint32_t)r[i] << 16) | ((uint32_t)r[i + 1] << 8) | r[i + 2];
        for (int k = 3; k >= 0 && o < 22; k--)
            out[o++] = b64[(v >> (k * 6)) & 63];
    }
    out[22] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sets m's subscription from the request's names (sorted, deduplicated); true if it changed.
 * -ENOMEM leaves m unchanged. */
int cg_member_set_topics(struct cg_member *m, const struct karray_str *names)
{
    int32_t n = names->n > 0 ? names->n : 0;
    char **v = calloc((size_t)n + 1, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if ((v[k] = kstr_strdup(names->v[i])) != NULL)
            k++;
    qsort(v, (size_t)k, sizeof(*v), cmp_str);
    int32_t u = 0;
    for (int32_t i = 0; i < k; i++) {
        if (u > 0 && strcmp(v[u - 1], v[i]) == 0)
            free(v[i]);
        else
            v[u++] = v[i];
    }
    bool same = u == m->ntopics;
    for (int32_t i = 0; same && i < u; i++)
        same = strcmp(v[i], m->topics[i]) == 0;
    if (same) {
        for (int32_t i = 0; i < u; i++)
            free(v[i]);
        free(v);
        return 0;
    }
    for (int32_t i = 0; i < m->ntopics; i++)
        free(m->topics[i]);
    free(m->topics);
    m->topics = v;
    m->ntopics = u;
    return 1;
}

/*
 * Recomputes the subscription metadata (every topic some member subscribes to, with its id
 * and partition count as the cluster has them now); true if it changed, which bumps the group
 * epoch: a topic created, deleted or grown reaches the assignment this way. O(members x
 * subscribed topics) per heartbeat, bounded by group.consumer.max.size.
 */
struct regex_matches {
    const regex_t *re;
    char **v;
    int32_t n, cap;
    int err;
};

static void regex_match_one(void *arg, const char *name)
{
    struct regex_matches *mt = arg;
    if (mt->err || regexec(mt->re, name, 0, NULL, 0) != 0)
        return;
    if (mt->n == mt->cap) {
        int32_t ncap = mt->cap ? mt->cap * 2 : 16;
        char **nv = realloc(mt->v, (size_t)ncap * sizeof(*nv));
        if (nv == NULL) {
            mt->err = -ENOMEM;
            return;
        }
        mt->v = nv;
        mt->cap = ncap;
    }
    if ((mt->v[mt->n] = strdup(name)) == NULL)
        mt->err = -ENOMEM;
    else
        mt->n++;
}

/* m's effective subscription: its names and the topics its regex matches now (every topic of
 * the cluster is tried: a created or deleted topic is seen on the next heartbeat). 1 if it
 * changed, 0, or -ENOMEM. */
static int member_refresh_subs(const struct group_env *env, struct cg_member *m)
{
    struct regex_matches mt = {.re = &m->re};
    if (m->re_valid && env->topic_each)
        env->topic_each(env->ctx, regex_match_one, &mt);
    for (int32_t i = 0; i < m->ntopics && mt.err == 0; i++) {
        mt.re = NULL;
        if (mt.n == mt.cap) {
            int32_t ncap = mt.cap ? mt.cap * 2 : 16;
            char **nv = realloc(mt.v, (size_t)ncap * sizeof(*nv));
            if (nv == NULL) {
                mt.err = -ENOMEM;
                break;
            }
            mt.v = nv;
            mt.cap = ncap;
        }
        if ((mt.v[mt.n] = strdup(m->topics[i])) == NULL)
            mt.err = -ENOMEM;
        else
            mt.n++;
    }
    if (mt.n > 0)
        qsort(mt.v, (size_t)mt.n, sizeof(*mt.v), cmp_str);
    int32_t u = 0;
    for (int32_t i = 0; i < mt.n; i++) {
        if (u > 0 && strcmp(mt.v[u - 1], mt.v[i]) == 0)
            free(mt.v[i]);
        else
            mt.v[u++] = mt.v[i];
    }
    bool same = mt.err == 0 && u == m->nsubs;
    for (int32_t i = 0; same && i < u; i++)
        same = strcmp(mt.v[i], m->subs[i]) == 0;
    if (same || mt.err) {
        for (int32_t i = 0; i < u; i++)
            free(mt.v[i]);
        free(mt.v);
        return mt.err;
    }
    for (int32_t i = 0; i < m->nsubs; i++)
        free(m->subs[i]);
    free(m->subs);
    m->subs = mt.v;
    m->nsubs = u;
    return 1;
}

static int cg_refresh_topics(struct group *g)
{
    struct cgroup *cg = g->cg;
    const struct group_env *env = &g->s->gc->env;
    int32_t cap = 0;
    int subs_changed = 0;
    for (struct cg_member *m = cg->members; m; m = m->next) {
        int rc = member_refresh_subs(env, m);
        if (rc < 0)
            return rc;
        subs_changed |= rc;
        cap += m->nsubs;
    }
    char **names = calloc((size_t)cap + 1, sizeof(*names));
    if (names == NULL)
        return -ENOMEM;
    int32_t n = 0;
    for (struct cg_member *m = cg->members; m; m = m->next)
        for (int32_t i = 0; i < m->nsubs; i++)
            names[n++] = m->subs[i];
    qsort(names, (size_t)n, sizeof(*names), cmp_str);
    struct cg_topic *t = calloc((size_t)n + 1, sizeof(*t));
    if (t == NULL) {
        free(names);
        return -ENOMEM;
    }
    int32_t u = 0;
    for (int32_t i = 0; i < n; i++) {
        if (u > 0 && strcmp(t[u - 1].name, names[i]) == 0)
            continue;
        t[u].name = strdup(names[i]);
        if (t[u].name == NULL)
            continue;
        t[u].nparts = env->topic_lookup ? env->topic_lookup(env->ctx, t[u].name, t[u].id) : -1;
        if (t[u].nparts < 0)
            memset(t[u].id, 0, 16);
        u++;
    }
    free(names);
    bool same = u == cg->ntopics;
    for (int32_t i = 0; same && i < u; i++)
        same = strcmp(t[i].name, cg->topics[i].name) == 0 && t[i].nparts == cg->topics[i].nparts &&
               memcmp(t[i].id, cg->topics[i].id, 16) == 0;

    if (same) {
        cg_topics_free(t, u);
        return subs_changed;
    }
    cg_topics_free(cg->topics, cg->ntopics);
    cg->topics = t;
    cg->ntopics = u;
    return 1;
}

/* True if another member than m holds the partition (assigned or still revoking it). */
static bool owned_by_other(const struct cgroup *cg, const struct cg_member *m,
                           const struct cg_tp *tp)
{
    for (const struct cg_member *o = cg->members; o; o = o->next)
        if (o != m && (cg_tpset_has(&o->assigned, tp->topic_id, tp->partition) ||
                       cg_tpset_has(&o->revoking, tp->topic_id, tp->partition)))
            return true;
    return false;
}

/* Kafka's Builder.updateMemberEpoch. */
static void member_set_epoch(struct cg_member *m, int32_t epoch)
{
    m->previous_epoch = m->epoch;
    m->epoch = epoch;
}

/* CurrentAssignmentBuilder.computeNextAssignment: moves m towards its target. */
static int member_next_assignment(
    struct group *g, struct cg_member *m, int32_t epoch,
    const struct kmsg_consumer_group_heartbeat_request_topic_partitions_array *owned)
{
    struct cgroup *cg = g->cg;
    struct cg_tpset keep = {0}, revoke = {0}, pending = {0};
    bool unreleased = false;
    int rc = 0;
    for (int32_t i = 0; i < m->assigned.n && rc == 0; i++) {
        const struct cg_tp *tp = &m->assigned.v[i];
        rc = cg_tpset_add(cg_tpset_has(&m->target, tp->topic_id, tp->partition) ? &keep : &revoke,
                          tp->topic_id, tp->partition);
    }
    for (int32_t i = 0; i < m->target.n && rc == 0; i++) {
        const struct cg_tp *tp = &m->target.v[i];
        if (cg_tpset_has(&keep, tp->topic_id, tp->partition))
            continue;
        if (owned_by_other(cg, m, tp))
            unreleased = true;
        else
            rc = cg_tpset_add(&pending, tp->topic_id, tp->partition);
    }
    if (rc != 0)
        goto out;
    if (revoke.n > 0 && owns_any(owned, &revoke)) {
        m->state = CGM_UNREVOKED;
        member_set_epoch(m, epoch);
        struct cg_tpset t = m->assigned;
        m->assigned = keep, keep = t;
        t = m->revoking;
        m->revoking = revoke, revoke = t;
        if (!net_timer_armed(&m->revoke_timer))
            net_timer_start(g->s->worker, &m->revoke_timer, m->rebalance_timeout_ms,
                            member_revoke_expired, m);
        goto out;
    }
    for (int32_t i = 0; i < pending.n && rc == 0; i++)
        rc = cg_tpset_add(&keep, pending.v[i].topic_id, pending.v[i].partition);
    if (rc != 0)
        goto out;
    m->state = unreleased ? CGM_UNRELEASED : CGM_STABLE;
    member_set_epoch(m, cg->assignment_epoch);
    struct cg_tpset t = m->assigned;
    m->assigned = keep, keep = t;
    cg_tpset_clear(&m->revoking);
    net_timer_cancel(g->s->worker, &m->revoke_timer);
out:
    cg_tpset_free(&keep);
    cg_tpset_free(&revoke);
    cg_tpset_free(&pending);
    return rc;
}

/* CurrentAssignmentBuilder.build. */
static int
member_reconcile(struct group *g, struct cg_member *m,
                 const struct kmsg_consumer_group_heartbeat_request_topic_partitions_array *owned)
{
    switch (m->state) {
    case CGM_STABLE:
        if (m->epoch == g->cg->assignment_epoch)
            return 0;
        return member_next_assignment(g, m, m->epoch, owned);
    case CGM_UNREVOKED:
        if (owns_any(owned, &m->revoking))
            return 0;
        /* Revoked: the partitions are free for their new owners from now on. */
        cg_tpset_clear(&m->revoking);
        return member_next_assignment(g, m, m->epoch + 1, owned);
    case CGM_UNRELEASED:
        return member_next_assignment(g, m, m->epoch, owned);
    }
    return 0;
}

/* The member's assigned partitions, grouped by topic, into the response (arena). */
static int reply_assignment(struct group_call *c, const struct cg_member *m,
                            struct kmsg_consumer_group_heartbeat_response *resp)
{
    struct kmsg_consumer_group_heartbeat_response_assignment *a =
        arena_calloc(c->arena, 1, sizeof(*a));
    if (a == NULL)
        return -ENOMEM;
    kmsg_consumer_group_heartbeat_response_assignment_init(a);
    int32_t ntopics = 0;
    for (int32_t i = 0; i < m->assigned.n; i++)
        ntopics += i == 0 || memcmp(m->assigned.v[i].topic_id, m->assigned.v[i - 1].topic_id, 16);
    a->topic_partitions.v =
        arena_calloc(c->arena, (size_t)ntopics + 1, sizeof(*a->topic_partitions.v));
    int32_t *parts = arena_calloc(c->arena, (size_t)m->assigned.n + 1, sizeof(*parts));
    if (a->topic_partitions.v == NULL || parts == NULL)
        return -ENOMEM;
    int32_t t = -1;
    for (int32_t i = 0; i < m->assigned.n; i++) {
        const struct cg_tp *tp = &m->assigned.v[i];
        if (i == 0 || memcmp(tp->topic_id, m->assigned.v[i - 1].topic_id, 16) != 0) {
            t++;
            memcpy(a->topic_partitions.v[t].topic_id.b, tp->topic_id, 16);
            a->topic_partitions.v[t].partitions.v = &parts[i];
            a->topic_partitions.v[t].partitions.n = 0;
        }
        parts[i] = tp->partition;
        a->topic_partitions.v[t].partitions.n++;
    }
    a->topic_partitions.n = ntopics;
    assert(t + 1 == ntopics);
    resp->assignment = a;
    return 0;
}

static void hb_reply_error(struct group_call *c, int16_t err, const char *msg)
{
    struct kmsg_consumer_group_heartbeat_response *resp = c->resp;
    resp->error_code = err;
    resp->error_message = msg ? (struct kstr){msg, (int32_t)strlen(msg)} : KSTR_NULL;
    resp->member_id = KSTR_NULL;
    resp->member_epoch = 0;
    resp->heartbeat_interval_ms = 0;
    call_finish(c);
}

/* The consumer group of the request, created (or an empty classic group taken over, as
 * Kafka's maybeDeleteEmptyClassicGroup does, or a classic group upgraded, as its
 * convertToConsumerGroup does) when a member joins with epoch 0; the records go to r. */
static struct group *hb_find_group(struct shard *s, struct group_call *c, int16_t *err,
                                   const char **msg, struct cg_records *r)
{
    const struct kmsg_consumer_group_heartbeat_request *req = c->req;
    struct group *g = group_find(s, req->group_id);
    bool create = req->member_epoch == 0;
    /* Kafka's getOrMaybeCreateConsumerGroup: a heartbeat (or leave) of a member of a group
     * that does not exist is answered GROUP_ID_NOT_FOUND. Groups are replayed from
     * __consumer_offsets, so this is a group that was deleted or expired (or one with only
     * offsets, written before the records existed: an empty group without protocol). */
    bool offsets_only = g != NULL && g->cg == NULL && g->nmembers == 0 && g->state == GS_EMPTY &&
                        g->protocol_type.len < 0;
    if ((g == NULL || offsets_only) && !create) {
        *err = KAFKA_ERR_GROUP_ID_NOT_FOUND, *msg = "Consumer group not found.";
        return NULL;
    }
    if (g != NULL && g->state == GS_DEAD) {
        *err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        return NULL;
    }
    if (g == NULL && (g = group_create(s, req->group_id)) == NULL) {
        *err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        return NULL;
    }
    if (g->cg == NULL && create && (g->nmembers > 0 || g->state != GS_EMPTY)) {
        *err = cg_upgrade(g, r, msg);
        return *err ? NULL : g;
    }
    if (g->cg == NULL) {
        if (!create) {
            *err = KAFKA_ERR_GROUP_ID_NOT_FOUND, *msg = "Group is not a consumer group.";
            return NULL;
        }
        if ((g->cg = cg_create()) == NULL) {
            *err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
            return NULL;
        }
        if (g->protocol_type.len >= 0) {
            /* Kafka's maybeDeleteEmptyClassicGroup: the classic group's metadata tombstone,
             * so a replay does not bring the classic group back. */
            struct offsets_kv kv;
            if (group_encode_metadata(&kv, NULL, g->id.p) == 0)
                cg_records_push(r, &kv);
        }
        gstr_free(&g->protocol_type);
        gstr_free(&g->protocol_name);
        gstr_set(&g->protocol_type, "consumer", 8);
        g->generation = 0;
        logger_info("group", "consumer group %s created", g->id.p);
    }
    return g;
}

struct cg_member *cg_member_new(struct group *g, struct kstr id)
{
    struct cg_member *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->g = g;
    m->id.len = m->instance_id.len = m->rack_id.len = m->client_id.len = m->client_host.len =
        m->assignor.len = m->regex.len = -1;
    char gen[23];
    if (id.len <= 0) {
        cg_new_member_id(gen);
        id = (struct kstr){gen, 22};
    }
    gstr_from_kstr(&m->id, id);
    if (m->id.p == NULL) {
        free(m);
        return NULL;
    }
    m->rebalance_timeout_ms = 300000;
    m->next = g->cg->members;
    g->cg->members = m;
    g->cg->nmembers++;
    return m;
}

/* A static member rejoins under a new member id: it takes over the old member's assignment
 * (the old id's tombstones go to r). */
struct cg_member *cg_static_replace(struct group *g, struct cg_member *old, struct kstr id,
                                    struct cg_records *r)
{
    struct cg_member *m = cg_member_new(g, id);
    if (m == NULL)
        return NULL;
    struct cg_tpset t = m->assigned;
    m->assigned = old->assigned, old->assigned = t;
    t = m->revoking;
    m->revoking = old->revoking, old->revoking = t;
    t = m->target;
    m->target = old->target, old->target = t;
    char **topics = m->topics;
    int32_t nt = m->ntopics;
    m->topics = old->topics, m->ntopics = old->ntopics;
    old->topics = topics, old->ntopics = nt;
    char **subs = m->subs;
    int32_t ns = m->nsubs;
    m->subs = old->subs, m->nsubs = old->nsubs;
    old->subs = subs, old->nsubs = ns;
    if (old->regex.len > 0) {
        gstr_set(&m->regex, old->regex.p, old->regex.len);
        m->re_valid = regex_compile(&m->re, gstr_kstr(&m->regex)) == 0;
    }
    gstr_set(&m->instance_id, old->instance_id.p, old->instance_id.len);
    gstr_set(&m->assignor, old->assignor.p, old->assignor.len);
    m->rebalance_timeout_ms = old->rebalance_timeout_ms;
    m->state = old->state;
    cg_remove_member(g, old, false, "replaced by a rejoining static member", r);
    return m;
}

/* The member of a joining/heartbeating request (Kafka's getOrMaybeSubscribe*Member). */
static struct cg_member *hb_member(struct group *g, struct group_call *c, bool *created,
                                   int16_t *err, struct cg_records *r)
{
    const struct kmsg_consumer_group_heartbeat_request *req = c->req;
    struct cgroup *cg = g->cg;
    int32_t epoch = req->member_epoch;
    *created = false;
    struct cg_member *m;
    if (req->instance_id.len < 0) {
        m = cg_find_member(cg, req->member_id);
    } else {
        m = cg_find_static(cg, req->instance_id);
        if (epoch == 0 && m != NULL) {
            if (m->epoch != CG_LEAVE_STATIC_EPOCH && !gstr_eq(&m->id, req->member_id)) {
                *err = KAFKA_ERR_UNRELEASED_INSTANCE_ID;
                return NULL;
            }
            if (!gstr_eq(&m->id, req->member_id)) {
                m = cg_static_replace(g, m, req->member_id, r);
                *err = m ? 0 : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
                return m;
            }
        } else if (epoch != 0) {
            if (m == NULL) {
                *err = KAFKA_ERR_UNKNOWN_MEMBER_ID;
                return NULL;
            }
            if (!gstr_eq(&m->id, req->member_id)) {
                *err = KAFKA_ERR_FENCED_INSTANCE_ID;
                return NULL;
            }
        }
    }
    if (m == NULL) {
        if (epoch != 0) {
            *err = KAFKA_ERR_UNKNOWN_MEMBER_ID;
            return NULL;
        }
        if (cg->nmembers >= g->s->gc->cfg.consumer_max_size) {
            *err = KAFKA_ERR_GROUP_MAX_SIZE_REACHED;
            return NULL;
        }
        m = cg_member_new(g, req->member_id);
        *err = m ? 0 : KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        *created = m != NULL;
        return m;
    }
    if (epoch == 0) {
        /* A known member (re)joins with nothing (validated: no owned partitions), e.g. after
         * FENCED_MEMBER_EPOCH or a lost first answer: it starts over from its target. */
        cg_tpset_clear(&m->assigned);
        cg_tpset_clear(&m->revoking);
        m->epoch = m->previous_epoch = 0;
        m->state = CGM_STABLE;
        net_timer_cancel(g->s->worker, &m->revoke_timer);
        return m;
    }
    /* Kafka's throwIfConsumerGroupMemberEpochIsInvalid. */
    if (epoch > m->epoch ||
        (epoch < m->epoch &&
         (epoch != m->previous_epoch || !owned_subset(&req->topic_partitions, &m->assigned)))) {
        *err = KAFKA_ERR_FENCED_MEMBER_EPOCH;
        return NULL;
    }
    return m;
}

/* Applies what the request changed; 1 if the subscription (topics or assignor) changed. */
static int hb_update_member(struct group_call *c, struct cg_member *m)
{
    const struct kmsg_consumer_group_heartbeat_request *req = c->req;
    int changed = 0;
    if (req->instance_id.len >= 0 && !gstr_eq(&m->instance_id, req->instance_id))
        gstr_from_kstr(&m->instance_id, req->instance_id);
    if (req->rack_id.len >= 0 && !gstr_eq(&m->rack_id, req->rack_id))
        gstr_from_kstr(&m->rack_id, req->rack_id);
    if (req->rebalance_timeout_ms != -1)
        m->rebalance_timeout_ms = req->rebalance_timeout_ms;
    if (req->server_assignor.len >= 0 && !gstr_eq(&m->assignor, req->server_assignor)) {
        gstr_from_kstr(&m->assignor, req->server_assignor);
        changed = 1;
    }
    if (req->subscribed_topic_names.n >= 0) {
        int rc = cg_member_set_topics(m, &req->subscribed_topic_names);
        if (rc < 0)
            return rc;
        changed |= rc;
    }
    /* An empty regex and none are the same subscription (the record stores "" as null, so a
     * replayed member has none where the client keeps sending ""). */
    bool no_regex_either = m->regex.len <= 0 && req->subscribed_topic_regex.len == 0;
    if (req->subscribed_topic_regex.len >= 0 && !no_regex_either &&
        !gstr_eq(&m->regex, req->subscribed_topic_regex)) {
        if (m->re_valid)
            regfree(&m->re);
        m->re_valid = false;
        gstr_from_kstr(&m->regex, req->subscribed_topic_regex);
        /* validated: compiles (an empty pattern clears the regex) */
        if (m->regex.len > 0)
            m->re_valid = regex_compile(&m->re, req->subscribed_topic_regex) == 0;
        changed = 1;
    }
    if (!gstr_eq(&m->client_id, c->client_id))
        gstr_from_kstr(&m->client_id, c->client_id);
    struct kstr host = {c->client_host, (int32_t)strlen(c->client_host)};
    if (!gstr_eq(&m->client_host, host))
        gstr_from_kstr(&m->client_host, host);
    return changed;
}

/* Answers once the records are durable (at once when there are none); consumes r. */
static void hb_reply_after(struct group *g, struct group_call *c, struct cg_records *r);

static void hb_leave(struct group *g, struct group_call *c)
{
    const struct kmsg_consumer_group_heartbeat_request *req = c->req;
    struct kmsg_consumer_group_heartbeat_response *resp = c->resp;
    struct cgroup *cg = g->cg;
    struct cg_member *m = req->instance_id.len >= 0 ? cg_find_static(cg, req->instance_id)
                                                    : cg_find_member(cg, req->member_id);
    if (m == NULL) {
        hb_reply_error(c, KAFKA_ERR_UNKNOWN_MEMBER_ID, NULL);
        return;
    }
    if (!gstr_eq(&m->id, req->member_id)) {
        hb_reply_error(c, KAFKA_ERR_FENCED_INSTANCE_ID, NULL);
        return;
    }
    resp->member_id = arena_kstr(c->arena, &m->id);
    resp->member_epoch = req->member_epoch;
    struct cg_records r = {0};
    if (req->member_epoch == CG_LEAVE_STATIC_EPOCH) {
        /* It will be back: its partitions stay reserved until its session times out. */
        m->epoch = CG_LEAVE_STATIC_EPOCH;
        cg_member_schedule_session(g, m);
        cg_records_current(&r, g, m);
        logger_info("group", "consumer group %s: static member %s left temporarily", g->id.p,
                    m->id.p);
    } else {
        cg_fence_member(g, m, "left", &r);
    }
    hb_reply_after(g, c, &r);
}

static void hb_durable(void *arg, int err)
{
    struct group_call *c = arg;
    struct kmsg_consumer_group_heartbeat_response *resp = c->resp;
    if (err != 0)
        resp->error_code = err == -ENOENT || err == -ENOTCONN ? KAFKA_ERR_NOT_COORDINATOR
                                                              : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    call_finish(c);
}

static void hb_reply_after(struct group *g, struct group_call *c, struct cg_records *r)
{
    struct kmsg_consumer_group_heartbeat_response *resp = c->resp;
    int rc = r->err;
    if (rc == 0 && r->n > 0)
        rc = shard_append(g->s, r->v, r->n, hb_durable, c);
    size_t n = r->n;
    cg_records_free(r);
    if (rc == 0 && n > 0)
        return;
    if (rc != 0) {
        logger_warn("group", "consumer group %s: cannot write its records: %d", g->id.p, rc);
        resp->error_code = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    call_finish(c);
}

int cg_snapshot_take(struct member_snapshot *sn, const struct cg_member *m)
{
    sn->epoch = m->epoch;
    sn->previous_epoch = m->previous_epoch;
    sn->state = m->state;
    if (cg_tpset_copy(&sn->assigned, &m->assigned) != 0 ||
        cg_tpset_copy(&sn->revoking, &m->revoking) != 0)
        return -ENOMEM;
    return 0;
}

static bool snapshot_differs(const struct member_snapshot *sn, const struct cg_member *m)
{
    return sn->epoch != m->epoch || sn->previous_epoch != m->previous_epoch ||
           sn->state != m->state || !cg_tpset_eq(&sn->assigned, &m->assigned) ||
           !cg_tpset_eq(&sn->revoking, &m->revoking);
}

void cg_snapshot_free(struct member_snapshot *sn)
{
    cg_tpset_free(&sn->assigned);
    cg_tpset_free(&sn->revoking);
}

/* The members' targets before a new target assignment, to write only the changed ones (as
 * Kafka's TargetAssignmentBuilder). */
static struct cg_tpset *targets_save(const struct cgroup *cg)
{
    struct cg_tpset *old = calloc((size_t)cg->nmembers + 1, sizeof(*old));
    if (old == NULL)
        return NULL;
    int32_t i = 0;
    for (const struct cg_member *o = cg->members; o; o = o->next, i++)
        if (cg_tpset_copy(&old[i], &o->target) != 0) {
            for (int32_t j = 0; j <= i; j++)
                cg_tpset_free(&old[j]);
            free(old);
            return NULL;
        }
    return old;
}

static void targets_free(struct cg_tpset *old, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        cg_tpset_free(&old[i]);
    free(old);
}

int cg_member_settle(
    struct group *g, struct cg_member *m, bool created, bool replaced, int changed,
    const struct kmsg_consumer_group_heartbeat_request_topic_partitions_array *owned,
    const struct member_snapshot *sn, struct cg_records *r)
{
    struct cgroup *cg = g->cg;
    const struct group_config *cfg = &g->s->gc->cfg;
    int refreshed = cg_refresh_topics(g);
    if (refreshed < 0)
        return refreshed;
    /* Kafka's order: subscription, subscription metadata, group epoch, target assignment,
     * assignment epoch, current assignment. */
    if (created || replaced || changed)
        cg_records_subscription(r, g, m);
    if (refreshed)
        cg_records_partition_metadata(r, g);
    if (created || changed || refreshed) {
        cg->group_epoch++;
        cg_records_epoch(r, g);
    }
    if (cg->group_epoch > cg->assignment_epoch) {
        struct cg_tpset *old = targets_save(cg);
        int32_t n = cg->nmembers;
        if (old == NULL || cg_assign(cg, cfg) != 0) {
            targets_free(old, old ? n : 0);
            return -ENOMEM;
        }
        cg->assignment_epoch = cg->group_epoch;
        int32_t i = 0;
        for (struct cg_member *o = cg->members; o; o = o->next, i++)
            if ((o == m && (created || replaced)) || !cg_tpset_eq(&old[i], &o->target))
                cg_records_target(r, g, o);
        targets_free(old, n);
        cg_records_target_epoch(r, g);
        logger_info("group", "consumer group %s: epoch %d, new target assignment (%s; %s)", g->id.p,
                    cg->group_epoch, cg->assignor,
                    created     ? "a member joined"
                    : changed   ? "a subscription changed"
                    : refreshed ? "subscribed topics changed"
                                : "a member left");
    } else if (replaced) {
        cg_records_target(r, g, m);
    }
    if (member_reconcile(g, m, owned) != 0)
        return -ENOMEM;
    if (created || replaced || snapshot_differs(sn, m))
        cg_records_current(r, g, m);
    return 0;
}

void group_handle_consumer_heartbeat(struct shard *s, struct group_call *c)
{
    const struct kmsg_consumer_group_heartbeat_request *req = c->req;
    struct kmsg_consumer_group_heartbeat_response *resp = c->resp;
    const struct group_config *cfg = s ? &s->gc->cfg : NULL;
    const char *msg = NULL;
    int16_t err = shard_error(s);
    if (err == 0 && !cfg->consumer_protocol_enabled)
        err = KAFKA_ERR_UNSUPPORTED_VERSION;
    if (err == 0)
        err = hb_validate(cfg, c->api_version, req, &msg);
    struct cg_records r = {0};
    struct group *g = err ? NULL : hb_find_group(s, c, &err, &msg, &r);
    if (g == NULL) {
        assert(r.n == 0); /* a refused upgrade changed nothing */
        cg_records_free(&r);
        hb_reply_error(c, err, msg);
        return;
    }
    if (req->member_epoch < 0) {
        assert(r.n == 0); /* only a join (epoch 0) creates or converts a group */
        cg_records_free(&r);
        hb_leave(g, c);
        return;
    }
    size_t converted = r.n; /* a classic group taken over or upgraded */
    bool created;
    struct cg_member *m = hb_member(g, c, &created, &err, &r);
    if (m == NULL) {
        /* What changed in memory (a conversion, a replaced static member) is written anyway. */
        cg_records_persist(g, &r);
        hb_reply_error(c, err, NULL);
        return;
    }
    /* Only a static member taking over its old member id leaves tombstones here. */
    bool replaced = r.n > converted;
    struct member_snapshot sn = {0};
    int changed = cg_snapshot_take(&sn, m);
    if (changed == 0)
        changed = hb_update_member(c, m);
    /* A classic member heartbeating with the consumer protocol becomes one of its members
     * (Kafka's heartbeat clears the ClassicMemberMetadata). */
    bool declassed = m->classic;
    if (declassed) {
        cg_member_classic_clear(m);
        cg_member_cancel_classic_timers(m);
    }
    if (changed < 0 ||
        cg_member_settle(g, m, created, replaced, changed, &req->topic_partitions, &sn, &r) != 0) {
        cg_snapshot_free(&sn);
        cg_records_persist(g, &r);
        hb_reply_error(c, KAFKA_ERR_UNKNOWN_SERVER_ERROR, NULL);
        return;
    }
    if (declassed && !created && !replaced && !changed)
        cg_records_subscription(&r, g, m);
    cg_member_schedule_session(g, m);
    resp->member_id = arena_kstr(c->arena, &m->id);
    resp->member_epoch = m->epoch;
    resp->heartbeat_interval_ms = cfg->consumer_heartbeat_interval_ms;
    /* Kafka's isFullRequest: a (re)join, or every non-optional field set (a client resends
     * everything after an error); then the assignment is sent even if unchanged. */
    bool full = req->member_epoch == 0 ||
                (req->rebalance_timeout_ms != -1 &&
                 (req->subscribed_topic_names.n >= 0 || req->subscribed_topic_regex.len >= 0) &&
                 req->topic_partitions.n >= 0);
    if ((full || !cg_tpset_eq(&sn.assigned, &m->assigned)) && reply_assignment(c, m, resp) != 0)
        resp->error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    cg_snapshot_free(&sn);
    hb_reply_after(g, c, &r);
}

/* ---- after a load ---- */

void cg_after_load(struct group *g)
{
    struct cgroup *cg = g->cg;
    if (cg == NULL)
        return;
    const struct group_env *env = &g->s->gc->env;
    cg_assignor_select(cg, &g->s->gc->cfg, cg->assignor, sizeof(cg->assignor));
    for (struct cg_member *m = cg->members; m; m = m->next) {
        /* The effective subscription as it was: the next heartbeat sees only real changes. */
        (void)member_refresh_subs(env, m);
        cg_member_schedule_session(g, m);
        if (m->state == CGM_UNREVOKED)
            net_timer_start(g->s->worker, &m->revoke_timer, m->rebalance_timeout_ms,
                            member_revoke_expired, m);
    }
}

/* ---- offsets ---- */

int16_t cg_check_commit(struct group *g, struct kstr member_id, int32_t epoch, bool trusted,
                        int16_t api_version)
{
    struct cgroup *cg = g->cg;
    if (epoch < 0 && cg->nmembers == 0)
        return 0;
    struct cg_member *m = cg_find_member(cg, member_id);
    if (m == NULL)
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    /* A classic member commits with its generation (its member epoch) at any version. */
    if (!trusted && !m->classic && api_version < 9)
        return KAFKA_ERR_UNSUPPORTED_VERSION;
    if (epoch != m->epoch)
        return m->classic ? KAFKA_ERR_ILLEGAL_GENERATION : KAFKA_ERR_STALE_MEMBER_EPOCH;
    return 0;
}

int16_t cg_check_fetch(struct group *g, struct kstr member_id, int32_t epoch)
{
    if (member_id.len < 0 && epoch < 0)
        return 0;
    struct cg_member *m = cg_find_member(g->cg, member_id);
    if (m == NULL)
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    if (epoch != m->epoch)
        return m->classic ? KAFKA_ERR_ILLEGAL_GENERATION : KAFKA_ERR_STALE_MEMBER_EPOCH;
    return 0;
}

int32_t group_consumer_members(const struct group *g)
{
    return g->cg ? g->cg->nmembers : 0;
}
