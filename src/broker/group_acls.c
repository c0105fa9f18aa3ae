/* ACL checks of the group APIs (group_acls.h). */
#include "broker/group_acls.h"

#include <string.h>

#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "proto/gen/consumer_group_describe.h"
#include "proto/gen/consumer_group_heartbeat.h"
#include "proto/gen/delete_groups.h"
#include "proto/gen/describe_groups.h"
#include "proto/gen/errors.h"
#include "proto/gen/list_groups.h"
#include "proto/gen/offset_delete.h"
#include "proto/gen/heartbeat.h"
#include "proto/gen/join_group.h"
#include "proto/gen/leave_group.h"
#include "proto/gen/offset_commit.h"
#include "proto/gen/offset_fetch.h"
#include "proto/gen/sync_group.h"

static bool group_allowed(struct broker_req *r, struct kstr group, int op)
{
    char *name = broker_name(r, group);
    return name != NULL && broker_authorize(r, NULL, ACL_RESOURCE_GROUP, name, op);
}

static bool topic_allowed(struct broker_req *r, struct kstr topic, int op)
{
    char *name = broker_name(r, topic);
    return name != NULL && broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, name, op);
}

/* ---- OffsetCommit ---- */

static void commit_fill_topic(struct broker_req *r,
                              const struct kmsg_offset_commit_request_topic *t,
                              struct kmsg_offset_commit_response_topic *o, int16_t error)
{
    kmsg_offset_commit_response_topic_init(o);
    o->name = t->name;
    int32_t n = t->partitions.n > 0 ? t->partitions.n : 0;
    o->partitions.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*o->partitions.v));
    o->partitions.n = o->partitions.v ? n : 0;
    for (int32_t j = 0; j < o->partitions.n; j++) {
        kmsg_offset_commit_response_partition_init(&o->partitions.v[j]);
        o->partitions.v[j].partition_index = t->partitions.v[j].partition_index;
        o->partitions.v[j].error_code = error;
    }
}

static bool commit_before(struct broker_req *r, struct kmsg_offset_commit_request *req,
                          struct kmsg_offset_commit_response *resp, struct group_acl_state *st)
{
    int32_t n = req->topics.n > 0 ? req->topics.n : 0;
    if (!group_allowed(r, req->group_id, ACL_OPERATION_READ)) {
        resp->topics.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp->topics.v));
        resp->topics.n = resp->topics.v ? n : 0;
        for (int32_t i = 0; i < resp->topics.n; i++)
            commit_fill_topic(r, &req->topics.v[i], &resp->topics.v[i],
                              KAFKA_ERR_GROUP_AUTHORIZATION_FAILED);
        return true;
    }
    struct kmsg_offset_commit_request_topic *denied =
        arena_calloc(r->arena, (size_t)n + 1, sizeof(*denied));
    if (denied == NULL)
        return false;
    int32_t kept = 0;
    for (int32_t i = 0; i < n; i++) {
        if (topic_allowed(r, req->topics.v[i].name, ACL_OPERATION_READ))
            req->topics.v[kept++] = req->topics.v[i];
        else
            denied[st->n_denied++] = req->topics.v[i];
    }
    req->topics.n = n ? kept : req->topics.n;
    st->denied = denied;
    return false;
}

static void commit_after(struct broker_req *r, struct kmsg_offset_commit_response *resp,
                         struct group_acl_state *st)
{
    if (st->n_denied == 0)
        return;
    int32_t n = resp->topics.n > 0 ? resp->topics.n : 0;
    struct kmsg_offset_commit_response_topic *v =
        arena_calloc(r->arena, (size_t)(n + st->n_denied), sizeof(*v));
    if (v == NULL)
        return;
    if (n)
        memcpy(v, resp->topics.v, (size_t)n * sizeof(*v));
    const struct kmsg_offset_commit_request_topic *denied = st->denied;
    for (int32_t i = 0; i < st->n_denied; i++)
        commit_fill_topic(r, &denied[i], &v[n + i], KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED);
    resp->topics.v = v;
    resp->topics.n = n + st->n_denied;
}

/* ---- OffsetFetch ---- */

/* v0-7: one group. A denied group is a top-level error (v2+) or every partition's (v0-1). */
static bool fetch_before(struct broker_req *r, struct kmsg_offset_fetch_request *req,
                         struct kmsg_offset_fetch_response *resp)
{
    if (r->hdr.api_version >= 8) {
        for (int32_t i = 0; i < req->groups.n; i++)
            if (!group_allowed(r, req->groups.v[i].group_id, ACL_OPERATION_DESCRIBE))
                return false; /* answered per group in fetch_after */
        return false;
    }
    if (group_allowed(r, req->group_id, ACL_OPERATION_DESCRIBE))
        return false;
    resp->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
    resp->topics.n = 0;
    int32_t n = req->topics.n > 0 ? req->topics.n : 0;
    if (r->hdr.api_version >= 2 || n == 0)
        return true;
    resp->topics.v = arena_calloc(r->arena, (size_t)n, sizeof(*resp->topics.v));
    for (int32_t i = 0; resp->topics.v && i < n; i++) {
        struct kmsg_offset_fetch_response_topic *o = &resp->topics.v[resp->topics.n++];
        const struct kmsg_offset_fetch_request_topic *t = &req->topics.v[i];
        kmsg_offset_fetch_response_topic_init(o);
        o->name = t->name;
        int32_t np = t->partition_indexes.n > 0 ? t->partition_indexes.n : 0;
        o->partitions.v = arena_calloc(r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? np : 0;
        for (int32_t j = 0; j < o->partitions.n; j++) {
            kmsg_offset_fetch_response_partition_init(&o->partitions.v[j]);
            o->partitions.v[j].partition_index = t->partition_indexes.v[j];
            o->partitions.v[j].committed_offset = -1;
            o->partitions.v[j].error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
        }
    }
    return true;
}

/* Topics the principal may not DESCRIBE: dropped when all were asked for, else their
 * partitions carry TOPIC_AUTHORIZATION_FAILED. */
#define FETCH_FILTER_TOPICS(r, topics, listed)                                                     \
    do {                                                                                           \
        int32_t kept_ = 0;                                                                         \
        for (int32_t i_ = 0; i_ < (topics).n; i_++) {                                              \
            if (topic_allowed((r), (topics).v[i_].name, ACL_OPERATION_DESCRIBE)) {                 \
                (topics).v[kept_++] = (topics).v[i_];                                              \
                continue;                                                                          \
            }                                                                                      \
            if (!(listed))                                                                         \
                continue;                                                                          \
            for (int32_t j_ = 0; j_ < (topics).v[i_].partitions.n; j_++) {                         \
                (topics).v[i_].partitions.v[j_].committed_offset = -1;                             \
                (topics).v[i_].partitions.v[j_].metadata = KSTR_NULL;                              \
                (topics).v[i_].partitions.v[j_].error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED; \
            }                                                                                      \
            (topics).v[kept_++] = (topics).v[i_];                                                  \
        }                                                                                          \
        if ((topics).n > 0)                                                                        \
            (topics).n = kept_;                                                                    \
    } while (0)

static void fetch_after(struct broker_req *r, const struct kmsg_offset_fetch_request *req,
                        struct kmsg_offset_fetch_response *resp)
{
    if (r->hdr.api_version < 8) {
        FETCH_FILTER_TOPICS(r, resp->topics, req->topics.n >= 0);
        return;
    }
    for (int32_t g = 0; g < resp->groups.n; g++) {
        struct kmsg_offset_fetch_response_group *o = &resp->groups.v[g];
        if (!group_allowed(r, o->group_id, ACL_OPERATION_DESCRIBE)) {
            o->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
            o->topics.n = 0;
            continue;
        }
        bool listed = g < req->groups.n ? req->groups.v[g].topics.n >= 0 : true;
        FETCH_FILTER_TOPICS(r, o->topics, listed);
    }
}

/* ---- DescribeGroups, ListGroups, DeleteGroups, OffsetDelete ---- */

static void describe_after(struct broker_req *r, const struct kmsg_describe_groups_request *req,
                           struct kmsg_describe_groups_response *resp)
{
    for (int32_t i = 0; i < resp->groups.n; i++) {
        struct kmsg_describe_groups_response_described_group *g = &resp->groups.v[i];
        char *name = broker_name(r, g->group_id);
        if (name == NULL ||
            !broker_authorize(r, NULL, ACL_RESOURCE_GROUP, name, ACL_OPERATION_DESCRIBE)) {
            struct kstr id = g->group_id;
            kmsg_describe_groups_response_described_group_init(g);
            g->group_id = id;
            g->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
            g->members.n = 0;
            continue;
        }
        if (req->include_authorized_operations)
            g->authorized_operations = broker_authorized_operations(r, NULL, ACL_RESOURCE_GROUP,
                                                                    name, ACL_OPERATIONS_GROUP);
    }
}

/* ConsumerGroupDescribe: DESCRIBE on each group, as DescribeGroups. */
static void consumer_describe_after(struct broker_req *r,
                                    const struct kmsg_consumer_group_describe_request *req,
                                    struct kmsg_consumer_group_describe_response *resp)
{
    for (int32_t i = 0; i < resp->groups.n; i++) {
        struct kmsg_consumer_group_describe_response_described_group *g = &resp->groups.v[i];
        char *name = broker_name(r, g->group_id);
        if (name == NULL ||
            !broker_authorize(r, NULL, ACL_RESOURCE_GROUP, name, ACL_OPERATION_DESCRIBE)) {
            struct kstr id = g->group_id;
            kmsg_consumer_group_describe_response_described_group_init(g);
            g->group_id = id;
            g->group_state = KSTR_LIT("");
            g->assignor_name = KSTR_LIT("");
            g->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
            g->members.n = 0;
            continue;
        }
        if (req->include_authorized_operations)
            g->authorized_operations = broker_authorized_operations(r, NULL, ACL_RESOURCE_GROUP,
                                                                    name, ACL_OPERATIONS_GROUP);
    }
}

/* Kafka: DESCRIBE on the cluster lists every group, else only those the principal may
 * DESCRIBE. */
static void list_after(struct broker_req *r, struct kmsg_list_groups_response *resp)
{
    if (broker_authorize_cluster(r, ACL_OPERATION_DESCRIBE))
        return;
    int32_t kept = 0;
    for (int32_t i = 0; i < resp->groups.n; i++)
        if (group_allowed(r, resp->groups.v[i].group_id, ACL_OPERATION_DESCRIBE))
            resp->groups.v[kept++] = resp->groups.v[i];
    if (resp->groups.n > 0)
        resp->groups.n = kept;
}

static bool delete_before(struct broker_req *r, struct kmsg_delete_groups_request *req,
                          struct group_acl_state *st)
{
    int32_t n = req->groups_names.n > 0 ? req->groups_names.n : 0;
    struct kstr *denied = arena_calloc(r->arena, (size_t)n + 1, sizeof(*denied));
    if (denied == NULL)
        return false;
    int32_t kept = 0;
    for (int32_t i = 0; i < n; i++) {
        if (group_allowed(r, req->groups_names.v[i], ACL_OPERATION_DELETE))
            req->groups_names.v[kept++] = req->groups_names.v[i];
        else
            denied[st->n_denied++] = req->groups_names.v[i];
    }
    req->groups_names.n = n ? kept : req->groups_names.n;
    st->denied = denied;
    return false;
}

static void delete_after(struct broker_req *r, struct kmsg_delete_groups_response *resp,
                         struct group_acl_state *st)
{
    if (st->n_denied == 0)
        return;
    int32_t n = resp->results.n > 0 ? resp->results.n : 0;
    struct kmsg_delete_groups_response_deletable_group_result *v =
        arena_calloc(r->arena, (size_t)(n + st->n_denied), sizeof(*v));
    if (v == NULL)
        return;
    if (n)
        memcpy(v, resp->results.v, (size_t)n * sizeof(*v));
    const struct kstr *denied = st->denied;
    for (int32_t i = 0; i < st->n_denied; i++) {
        kmsg_delete_groups_response_deletable_group_result_init(&v[n + i]);
        v[n + i].group_id = denied[i];
        v[n + i].error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
    }
    resp->results.v = v;
    resp->results.n = n + st->n_denied;
}

/* OffsetDelete: DELETE on the group (a top-level error), READ on each topic (topics the
 * principal may not read are answered TOPIC_AUTHORIZATION_FAILED without being touched). */
static bool offset_delete_before(struct broker_req *r, struct kmsg_offset_delete_request *req,
                                 struct kmsg_offset_delete_response *resp,
                                 struct group_acl_state *st)
{
    if (!group_allowed(r, req->group_id, ACL_OPERATION_DELETE)) {
        resp->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
        resp->topics.n = 0;
        return true;
    }
    int32_t n = req->topics.n > 0 ? req->topics.n : 0;
    struct kmsg_offset_delete_request_topic *denied =
        arena_calloc(r->arena, (size_t)n + 1, sizeof(*denied));
    if (denied == NULL)
        return false;
    int32_t kept = 0;
    for (int32_t i = 0; i < n; i++) {
        if (topic_allowed(r, req->topics.v[i].name, ACL_OPERATION_READ))
            req->topics.v[kept++] = req->topics.v[i];
        else
            denied[st->n_denied++] = req->topics.v[i];
    }
    req->topics.n = n ? kept : req->topics.n;
    st->denied = denied;
    return false;
}

static void offset_delete_after(struct broker_req *r, struct kmsg_offset_delete_response *resp,
                                struct group_acl_state *st)
{
    if (st->n_denied == 0 || resp->error_code != 0)
        return;
    int32_t n = resp->topics.n > 0 ? resp->topics.n : 0;
    struct kmsg_offset_delete_response_topic *v =
        arena_calloc(r->arena, (size_t)(n + st->n_denied), sizeof(*v));
    if (v == NULL)
        return;
    if (n)
        memcpy(v, resp->topics.v, (size_t)n * sizeof(*v));
    const struct kmsg_offset_delete_request_topic *denied = st->denied;
    for (int32_t i = 0; i < st->n_denied; i++) {
        struct kmsg_offset_delete_response_topic *o = &v[n + i];
        kmsg_offset_delete_response_topic_init(o);
        o->name = denied[i].name;
        int32_t np = denied[i].partitions.n > 0 ? denied[i].partitions.n : 0;
        o->partitions.v = arena_calloc(r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? np : 0;
        for (int32_t j = 0; j < o->partitions.n; j++) {
            kmsg_offset_delete_response_partition_init(&o->partitions.v[j]);
            o->partitions.v[j].partition_index = denied[i].partitions.v[j].partition_index;
            o->partitions.v[j].error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
        }
    }
    resp->topics.v = v;
    resp->topics.n = n + st->n_denied;
}

/* ---- dispatch ---- */

bool group_acl_before(struct broker_req *r, void *req, void *resp, struct group_acl_state *st)
{
    switch (r->hdr.api_key) {
    case KPROTO_API_JOIN_GROUP: {
        struct kmsg_join_group_response *o = resp;
        if (group_allowed(r, ((struct kmsg_join_group_request *)req)->group_id, ACL_OPERATION_READ))
            return false;
        o->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
        o->generation_id = -1;
        return true;
    }
    case KPROTO_API_SYNC_GROUP: {
        struct kmsg_sync_group_response *o = resp;
        if (group_allowed(r, ((struct kmsg_sync_group_request *)req)->group_id, ACL_OPERATION_READ))
            return false;
        o->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
        return true;
    }
    case KPROTO_API_HEARTBEAT: {
        struct kmsg_heartbeat_response *o = resp;
        if (group_allowed(r, ((struct kmsg_heartbeat_request *)req)->group_id, ACL_OPERATION_READ))
            return false;
        o->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
        return true;
    }
    case KPROTO_API_LEAVE_GROUP: {
        struct kmsg_leave_group_response *o = resp;
        if (group_allowed(r, ((struct kmsg_leave_group_request *)req)->group_id,
                          ACL_OPERATION_READ))
            return false;
        o->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
        return true;
    }
    case KPROTO_API_CONSUMER_GROUP_HEARTBEAT: {
        struct kmsg_consumer_group_heartbeat_response *o = resp;
        if (group_allowed(r, ((struct kmsg_consumer_group_heartbeat_request *)req)->group_id,
                          ACL_OPERATION_READ))
            return false;
        o->error_code = KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
        return true;
    }
    case KPROTO_API_OFFSET_COMMIT:
        return commit_before(r, req, resp, st);
    case KPROTO_API_OFFSET_FETCH:
        return fetch_before(r, req, resp);
    case KPROTO_API_DELETE_GROUPS:
        return delete_before(r, req, st);
    case KPROTO_API_OFFSET_DELETE:
        return offset_delete_before(r, req, resp, st);
    }
    return false;
}

void group_acl_after(struct broker_req *r, const void *req, void *resp, struct group_acl_state *st)
{
    switch (r->hdr.api_key) {
    case KPROTO_API_OFFSET_COMMIT:
        commit_after(r, resp, st);
        return;
    case KPROTO_API_OFFSET_FETCH:
        fetch_after(r, req, resp);
        return;
    case KPROTO_API_DESCRIBE_GROUPS:
        describe_after(r, req, resp);
        return;
    case KPROTO_API_CONSUMER_GROUP_DESCRIBE:
        consumer_describe_after(r, req, resp);
        return;
    case KPROTO_API_LIST_GROUPS:
        list_after(r, resp);
        return;
    case KPROTO_API_DELETE_GROUPS:
        delete_after(r, resp, st);
        return;
    case KPROTO_API_OFFSET_DELETE:
        offset_delete_after(r, resp, st);
        return;
    }
}
