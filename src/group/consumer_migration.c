/*
 * Kafka's online migration between classic and consumer groups (KIP-848), as its
 * GroupMetadataManager does it:
 *  - upgrade: a consumer-protocol member joining a non-empty classic group of protocol type
 *    "consumer" turns it into a consumer group (convertToConsumerGroup); the classic members
 *    keep their assignment and epoch (the generation) and go on as classic members
 *    (consumer_classic.c);
 *  - downgrade: when the last consumer-protocol member leaves (or is fenced) and only classic
 *    members stay, the group becomes classic again (convertToClassicGroup) and rebalances.
 * group.consumer.migration.policy allows either direction. Owner worker only.
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

/* ---- upgrade ---- */

/* One classic member as a consumer group member (Kafka's ConsumerGroup.fromClassicGroup). */
static int upgrade_member(struct group *g, const struct member *cm, struct arena *a)
{
    const struct group_env *env = &g->s->gc->env;
    const struct gstr *md = NULL;
    for (int32_t i = 0; i < cm->nprotocols; i++)
        if (gstr_eq_str(&cm->protocols[i].name, &g->protocol_name))
            md = &cm->protocols[i].metadata;
    struct kmsg_consumer_protocol_subscription sub;
    struct kmsg_consumer_protocol_assignment asg;
    if (md == NULL ||
        cg_protocol_decode_subscription((const uint8_t *)md->p, md->len, a, &sub) != 0 ||
        cg_protocol_decode_assignment((const uint8_t *)cm->assignment.p, cm->assignment.len, a,
                                      &asg) != 0)
        return -EINVAL;
    struct cg_member *m = cg_member_new(g, gstr_kstr(&cm->id));
    if (m == NULL)
        return -ENOMEM;
    m->epoch = m->previous_epoch = g->generation;
    m->state = CGM_STABLE;
    gstr_set(&m->instance_id, cm->instance_id.p, cm->instance_id.len);
    gstr_from_kstr(&m->rack_id, sub.rack_id);
    m->rebalance_timeout_ms = cm->rebalance_timeout;
    gstr_set(&m->client_id, cm->client_id.p, cm->client_id.len);
    gstr_set(&m->client_host, cm->client_host.p, cm->client_host.len);
    struct kstr *names = arena_calloc(a, (size_t)cm->nprotocols + 1, sizeof(*names));
    struct kbytes *mds = arena_calloc(a, (size_t)cm->nprotocols + 1, sizeof(*mds));
    if (names == NULL || mds == NULL)
        return -ENOMEM;
    for (int32_t i = 0; i < cm->nprotocols; i++) {
        names[i] = gstr_kstr(&cm->protocols[i].name);
        mds[i] = gstr_kbytes(&cm->protocols[i].metadata);
    }
    if (cg_member_set_topics(m, &sub.topics) < 0 ||
        cg_member_set_classic(m, cm->session_timeout, names, mds, cm->nprotocols) != 0 ||
        cg_protocol_tpset_from_names(env, &m->assigned, &asg.assigned_partitions) != 0 ||
        cg_tpset_copy(&m->target, &m->assigned) != 0)
        return -ENOMEM;
    return 0;
}

/* Kafka's ConsumerGroup.createConsumerGroupRecords. */
static void upgrade_records(struct group *g, struct cg_records *r)
{
    for (const struct cg_member *m = g->cg->members; m; m = m->next)
        cg_records_subscription(r, g, m);
    cg_records_epoch(r, g);
    for (const struct cg_member *m = g->cg->members; m; m = m->next)
        cg_records_target(r, g, m);
    cg_records_target_epoch(r, g);
    for (const struct cg_member *m = g->cg->members; m; m = m->next)
        cg_records_current(r, g, m);
}

/* Drops the classic state of g (its members, parked calls answered with err, timers). */
static void classic_clear(struct group *g, int16_t err)
{
    struct net_worker *w = g->s->worker;
    group_fail_parked(g, err);
    while (g->members) {
        struct member *m = g->members;
        g->members = m->next;
        if (w)
            net_timer_cancel(w, &m->session_timer);
        member_free(m);
    }
    g->nmembers = 0;
    while (g->pending) {
        struct pending_member *p = g->pending;
        g->pending = p->next;
        free(p->id);
        free(p);
    }
    if (w)
        net_timer_cancel(w, &g->join_timer);
    gstr_free(&g->protocol_name);
    gstr_free(&g->leader);
    g->generation = 0;
    g->state = GS_EMPTY;
    g->state_ts = group_now_ms();
}

int16_t cg_upgrade(struct group *g, struct cg_records *r, const char **msg)
{
    const struct group_config *cfg = &g->s->gc->cfg;
    *msg = "Group is not a consumer group.";
    if (!cfg->consumer_upgrade_enabled) {
        logger_info("group",
                    "cannot upgrade classic group %s to a consumer group: the online "
                    "upgrade is disabled",
                    g->id.p);
        return KAFKA_ERR_GROUP_ID_NOT_FOUND;
    }
    if (!gstr_eq(&g->protocol_type, PROTOCOL_TYPE_CONSUMER)) {
        logger_info("group",
                    "cannot upgrade classic group %s to a consumer group: it does not "
                    "use the consumer embedded protocol",
                    g->id.p);
        return KAFKA_ERR_GROUP_ID_NOT_FOUND;
    }
    if (g->nmembers > cfg->consumer_max_size) {
        logger_info("group",
                    "cannot upgrade classic group %s to a consumer group: its size "
                    "exceeds group.consumer.max.size",
                    g->id.p);
        return KAFKA_ERR_GROUP_ID_NOT_FOUND;
    }
    assert(g->cg == NULL); /* only a classic group upgrades */
    if ((g->cg = cg_create()) == NULL)
        return *msg = NULL, KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    g->cg->group_epoch = g->cg->assignment_epoch = g->generation;
    struct arena a;
    arena_init(&a, 0);
    int rc = g->protocol_name.len > 0 ? 0 : -EINVAL;
    for (const struct member *cm = g->members; cm && rc == 0; cm = cm->next)
        rc = upgrade_member(g, cm, &a);
    arena_free(&a);
    if (rc != 0) {
        cg_free(g, true);
        logger_warn("group",
                    "cannot upgrade classic group %s: its embedded consumer protocol is "
                    "malformed",
                    g->id.p);
        *msg = "Cannot upgrade the classic group to consumer group because the embedded consumer "
               "protocol is malformed.";
        return rc == -ENOMEM ? KAFKA_ERR_UNKNOWN_SERVER_ERROR : KAFKA_ERR_GROUP_ID_NOT_FOUND;
    }
    /* The classic group's tombstone, then the consumer group's records (Kafka's order). */
    struct offsets_kv kv;
    if (group_encode_metadata(&kv, NULL, g->id.p) == 0)
        cg_records_push(r, &kv);
    else
        r->err = -ENOMEM;
    upgrade_records(g, r);
    logger_info("group",
                "classic group %s (generation %d, %d members) upgraded to a consumer group",
                g->id.p, g->generation, g->nmembers);
    classic_clear(g, KAFKA_ERR_REBALANCE_IN_PROGRESS);
    gstr_set(&g->protocol_type, "consumer", 8);
    for (struct cg_member *m = g->cg->members; m; m = m->next)
        cg_member_schedule_session(g, m);
    *msg = NULL;
    return 0;
}

/* group.consumer.migration.policy allows the downgrade (logged when it does not). */
static bool downgrade_enabled(const struct group *g)
{
    if (g->s->gc->cfg.consumer_downgrade_enabled)
        return true;
    logger_info("group",
                "cannot downgrade consumer group %s to a classic group: the online downgrade is "
                "disabled",
                g->id.p);
    return false;
}

/* ---- downgrade ---- */

bool cg_downgrade_allowed(const struct group *g, const struct cg_member *leaving)
{
    const struct cgroup *cg = g->cg;
    if (leaving->classic)
        return false;
    for (const struct cg_member *o = cg->members; o; o = o->next)
        if (o != leaving && !o->classic)
            return false;
    if (cg->nmembers <= 1)
        return false;
    return downgrade_enabled(g);
}

/* A classic member from a consumer group's classic member (Kafka's ClassicGroupMember). */
static struct member *downgrade_member(struct group *g, const struct cg_member *o)
{
    struct member *m = calloc(1, sizeof(*m));
    struct gprotocol *p = calloc((size_t)o->nclassic_protocols + 1, sizeof(*p));
    if (m == NULL || p == NULL) {
        free(m);
        free(p);
        return NULL;
    }
    m->g = g;
    m->id.len = m->instance_id.len = m->client_id.len = m->client_host.len = -1;
    m->protocol_type.len = m->assignment.len = -1;
    gstr_set(&m->id, o->id.p, o->id.len);
    gstr_set(&m->instance_id, o->instance_id.p, o->instance_id.len);
    gstr_set(&m->client_id, o->client_id.len >= 0 ? o->client_id.p : "",
             o->client_id.len >= 0 ? o->client_id.len : 0);
    gstr_set(&m->client_host, o->client_host.len >= 0 ? o->client_host.p : "",
             o->client_host.len >= 0 ? o->client_host.len : 0);
    gstr_set(&m->protocol_type, "consumer", 8);
    m->session_timeout = o->classic_session_ms;
    m->rebalance_timeout = o->rebalance_timeout_ms;
    m->protocols = p;
    m->nprotocols = o->nclassic_protocols;
    for (int32_t i = 0; i < o->nclassic_protocols; i++) {
        p[i].name.len = p[i].metadata.len = -1;
        gstr_set(&p[i].name, o->classic_protocols[i].name.p, o->classic_protocols[i].name.len);
        gstr_set(&p[i].metadata, o->classic_protocols[i].metadata.p,
                 o->classic_protocols[i].metadata.len);
    }
    return m;
}

void cg_downgrade(struct group *g, struct cg_member *leaving, struct cg_records *r)
{
    struct cgroup *cg = g->cg;
    assert(g->nmembers == 0); /* a consumer group has no classic-group members */
    cg_records_group_tombstones(r, g);
    struct member **tail = &g->members;
    for (const struct cg_member *o = cg->members; o; o = o->next) {
        if (o == leaving)
            continue;
        struct member *m = downgrade_member(g, o);
        if (m == NULL) {
            r->err = -ENOMEM;
            continue;
        }
        *tail = m;
        tail = &m->next;
        g->nmembers++;
    }
    g->generation = cg->group_epoch;
    gstr_set(&g->protocol_type, "consumer", 8);
    const struct gstr *proto = group_select_protocol(g);
    gstr_set(&g->protocol_name, proto ? proto->p : NULL, proto ? proto->len : -1);
    gstr_set(&g->leader, g->members ? g->members->id.p : NULL,
             g->members ? g->members->id.len : -1);
    /* Each member's target assignment, serialised at its subscription's version. */
    for (struct member *m = g->members; m; m = m->next) {
        const struct cg_member *o = cg_find_member(cg, gstr_kstr(&m->id));
        int16_t version = 0;
        for (int32_t i = 0; i < m->nprotocols; i++)
            if (gstr_eq_str(&m->protocols[i].name, &g->protocol_name))
                version = cg_protocol_version((const uint8_t *)m->protocols[i].metadata.p,
                                              m->protocols[i].metadata.len);
        if (o == NULL ||
            cg_protocol_encode_assignment(cg, &o->target, version, &m->assignment) != 0)
            gstr_set(&m->assignment, "", 0);
    }
    g->state = GS_STABLE;
    g->state_ts = group_now_ms();
    struct offsets_kv kv;
    if (group_encode_metadata(&kv, g, g->id.p) == 0)
        cg_records_push(r, &kv);
    else
        r->err = -ENOMEM;
    logger_info("group",
                "consumer group %s (epoch %d, %d classic members) downgraded to a classic "
                "group",
                g->id.p, g->generation, g->nmembers);
    cg_free(g, true);
    for (struct member *m = g->members; m; m = m->next)
        member_schedule(m);
    if (leaving != NULL)
        group_maybe_prepare_rebalance(g);
}

/* Kafka's validateOnlineDowngradeWithReplacedMemberId, once the replaced member (a
 * consumer-protocol one) is gone: every member left uses the classic protocol. */
bool cg_downgrade_after_replace(const struct group *g)
{
    for (const struct cg_member *o = g->cg->members; o; o = o->next)
        if (!o->classic)
            return false;
    return downgrade_enabled(g);
}
