/*
 * DescribeGroups, ListGroups and DeleteGroups. DescribeGroups and DeleteGroups visit their
 * groups one by one, each on its shard's owner; ListGroups visits every shard. Owner worker
 * only (coordinator.h).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/logger.h"
#include "group/consumer_group.h"
#include "group/group_internal.h"
#include "proto/acl_operations.h"
#include "proto/gen/delete_groups.h"
#include "proto/gen/describe_groups.h"
#include "proto/gen/errors.h"
#include "proto/gen/list_groups.h"

void group_handle_describe(struct shard *s, struct group_call *c)
{
    const struct kmsg_describe_groups_request *req = c->req;
    struct kmsg_describe_groups_response *resp = c->resp;
    if (c->step == 0) {
        resp->groups.v = arena_calloc(c->arena, (size_t)req->groups.n + 1, sizeof(*resp->groups.v));
        resp->groups.n = resp->groups.v ? req->groups.n : 0;
        if (resp->groups.n == 0) {
            call_finish(c);
            return;
        }
    }
    struct kmsg_describe_groups_response_described_group *d = &resp->groups.v[c->step];
    kmsg_describe_groups_response_described_group_init(d);
    d->group_id = req->groups.v[c->step];
    d->group_state = KSTR_LIT("Dead");
    d->protocol_type = KSTR_LIT("");
    d->protocol_data = KSTR_LIT("");
    d->members.n = 0;
    d->authorized_operations = ACL_OPERATIONS_NOT_REQUESTED;
    int16_t err = shard_error(s);
    /* No __consumer_offsets yet: no group exists anywhere. */
    if (err == KAFKA_ERR_COORDINATOR_NOT_AVAILABLE && s == NULL &&
        c->gc->env.partition_count(c->gc->env.ctx) == 0)
        err = 0;
    d->error_code = err;
    /* KIP-430 (v3+): every group operation for groups described without error, as Kafka
     * without an authorizer. */
    if (err == 0 && c->api_version >= 3 && req->include_authorized_operations)
        d->authorized_operations = ACL_OPERATIONS_GROUP;
    struct group *g = err ? NULL : group_find(s, d->group_id);
    /* A consumer group (KIP-848) is not a classic group: Kafka's describeGroups answers it as
     * Dead without error up to v5 (v6 adds GROUP_ID_NOT_FOUND with a message). */
    if (g != NULL && g->cg != NULL)
        g = NULL;
    if (g != NULL) {
        d->group_state = KSTR_LIT("");
        const char *st = group_state_name(g->state);
        d->group_state = (struct kstr){st, (int32_t)strlen(st)};
        d->protocol_type =
            g->protocol_type.len >= 0 ? arena_kstr(c->arena, &g->protocol_type) : KSTR_LIT("");
        bool stable = g->state == GS_STABLE;
        if (stable && g->protocol_name.len >= 0)
            d->protocol_data = arena_kstr(c->arena, &g->protocol_name);
        d->members.v = arena_calloc(c->arena, (size_t)g->nmembers + 1, sizeof(*d->members.v));
        int32_t n = 0;
        for (struct member *m = g->members; d->members.v && m; m = m->next) {
            struct kmsg_describe_groups_response_described_group_member *dm = &d->members.v[n++];
            kmsg_describe_groups_response_described_group_member_init(dm);
            dm->member_id = arena_kstr(c->arena, &m->id);
            dm->group_instance_id = arena_kstr(c->arena, &m->instance_id);
            dm->client_id =
                m->client_id.len >= 0 ? arena_kstr(c->arena, &m->client_id) : KSTR_LIT("");
            dm->client_host =
                m->client_host.len >= 0 ? arena_kstr(c->arena, &m->client_host) : KSTR_LIT("");
            dm->member_metadata = (struct kbytes){(const uint8_t *)"", 0};
            dm->member_assignment = (struct kbytes){(const uint8_t *)"", 0};
            if (stable) {
                for (int32_t i = 0; i < m->nprotocols; i++)
                    if (gstr_eq_str(&m->protocols[i].name, &g->protocol_name))
                        dm->member_metadata = arena_kbytes(c->arena, &m->protocols[i].metadata);
                if (m->assignment.len >= 0)
                    dm->member_assignment = arena_kbytes(c->arena, &m->assignment);
            }
        }
        d->members.n = n;
    }
    c->step++;
    call_continue(c);
}

static bool list_wanted(struct group_call *c, const struct group *g)
{
    const struct kmsg_list_groups_request *req = c->req;
    const char *type = g->cg ? "consumer" : "classic";
    if (c->api_version >= 4 && req->states_filter.n > 0) {
        const char *st = g->cg ? cg_state_name(g->cg) : group_state_name(g->state);
        bool ok = false;
        for (int32_t i = 0; i < req->states_filter.n && !ok; i++)
            ok = req->states_filter.v[i].len == (int32_t)strlen(st) &&
                 strncasecmp(req->states_filter.v[i].ptr, st, strlen(st)) == 0;
        if (!ok)
            return false;
    }
    if (c->api_version >= 5 && req->types_filter.n > 0) {
        bool ok = false;
        for (int32_t i = 0; i < req->types_filter.n && !ok; i++)
            ok = req->types_filter.v[i].len == (int32_t)strlen(type) &&
                 strncasecmp(req->types_filter.v[i].ptr, type, strlen(type)) == 0;
        if (!ok)
            return false;
    }
    return true;
}

void group_handle_list(struct shard *s, struct group_call *c)
{
    struct kmsg_list_groups_response *resp = c->resp;
    if (c->step == 0) {
        resp->groups.n = 0;
        resp->groups.v = NULL;
        c->state = NULL; /* capacity of groups.v, as an integer */
    }
    int16_t err = s ? shard_error(s) : 0;
    /* A shard this node leads but has not begun to load yet is loading as far as a client can
     * tell (Kafka schedules the load with the leadership): listing without it and without an
     * error would drop its groups from the answer. */
    if (err == KAFKA_ERR_NOT_COORDINATOR && s->gc->env.is_leader &&
        s->gc->env.is_leader(s->gc->env.ctx, s->index) && atomic_load(&s->state) == SHARD_UNLOADED)
        err = KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    if (err == KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS)
        resp->error_code = err;
    if (s != NULL && err == 0) {
        size_t cap = (size_t)(uintptr_t)c->state;
        for (size_t b = 0; b < s->nbuckets; b++) {
            for (struct group *g = s->buckets[b]; g; g = g->next) {
                if (g->state == GS_DEAD || !list_wanted(c, g))
                    continue;
                if ((size_t)resp->groups.n == cap) {
                    size_t ncap = cap ? cap * 2 : 16;
                    void *nv = arena_calloc(c->arena, ncap, sizeof(*resp->groups.v));
                    if (nv == NULL)
                        continue;
                    if (resp->groups.n)
                        memcpy(nv, resp->groups.v,
                               (size_t)resp->groups.n * sizeof(*resp->groups.v));
                    resp->groups.v = nv;
                    cap = ncap;
                }
                struct kmsg_list_groups_response_listed_group *lg =
                    &resp->groups.v[resp->groups.n++];
                kmsg_list_groups_response_listed_group_init(lg);
                lg->group_id = arena_kstr(c->arena, &g->id);
                lg->protocol_type = g->protocol_type.len >= 0
                                        ? arena_kstr(c->arena, &g->protocol_type)
                                        : KSTR_LIT("");
                const char *st = g->cg ? cg_state_name(g->cg) : group_state_name(g->state);
                lg->group_state = (struct kstr){st, (int32_t)strlen(st)};
                lg->group_type = g->cg ? KSTR_LIT("consumer") : KSTR_LIT("classic");
            }
        }
        c->state = (void *)(uintptr_t)cap;
    }
    if (s == NULL) {
        call_finish(c);
        return;
    }
    c->step++;
    call_continue(c);
}

struct group_delete_state {
    struct group_call *c;
    struct shard *s;
    char *group;
};

static void group_delete_durable(void *arg, int err)
{
    struct group_delete_state *st = arg;
    struct group_call *c = st->c;
    struct kmsg_delete_groups_response *resp = c->resp;
    if (err != 0) {
        resp->results.v[c->step].error_code = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    } else {
        struct group *g = group_find(st->s, (struct kstr){st->group, (int32_t)strlen(st->group)});
        if (g != NULL && g->nmembers == 0 && group_consumer_members(g) == 0)
            group_remove(g);
        logger_info("group", "group %s deleted", st->group);
    }
    free(st->group);
    free(st);
    c->step++;
    call_continue(c);
}

void group_handle_delete(struct shard *s, struct group_call *c)
{
    const struct kmsg_delete_groups_request *req = c->req;
    struct kmsg_delete_groups_response *resp = c->resp;
    if (c->step == 0) {
        resp->results.v =
            arena_calloc(c->arena, (size_t)req->groups_names.n + 1, sizeof(*resp->results.v));
        resp->results.n = resp->results.v ? req->groups_names.n : 0;
        if (resp->results.n == 0) {
            call_finish(c);
            return;
        }
    }
    struct kmsg_delete_groups_response_deletable_group_result *res = &resp->results.v[c->step];
    kmsg_delete_groups_response_deletable_group_result_init(res);
    res->group_id = req->groups_names.v[c->step];
    int16_t err = shard_error(s);
    struct group *g = err ? NULL : group_find(s, res->group_id);
    if (err == 0 && (g == NULL || g->state == GS_DEAD))
        err = KAFKA_ERR_GROUP_ID_NOT_FOUND;
    if (err == 0 && (g->nmembers > 0 || group_consumer_members(g) > 0))
        err = KAFKA_ERR_NON_EMPTY_GROUP;
    res->error_code = err;
    if (err == 0) {
        /* Tombstones for every offset and for the group itself (a consumer group's records
         * as Kafka's createGroupTombstoneRecords). */
        struct cg_records r = {0};
        struct group_delete_state *st = calloc(1, sizeof(*st));
        int rc = -ENOMEM;
        if (st && (st->group = strdup(g->id.p)) != NULL) {
            for (size_t i = 0; i < g->noffsets; i++) {
                struct offsets_kv kv;
                if (offsets_encode_commit(&kv, g->id.p, g->offsets[i].topic,
                                          g->offsets[i].partition, NULL) == 0)
                    cg_records_push(&r, &kv);
            }
            struct offsets_kv kv;
            if (g->cg != NULL)
                cg_records_group_tombstones(&r, g);
            else if (group_encode_metadata(&kv, NULL, g->id.p) == 0)
                cg_records_push(&r, &kv);
            st->c = c;
            st->s = s;
            rc = r.err ? r.err : shard_append(s, r.v, r.n, group_delete_durable, st);
        }
        cg_records_free(&r);
        if (rc == 0)
            return;
        if (st)
            free(st->group);
        free(st);
        res->error_code = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    }
    c->step++;
    call_continue(c);
}
