/*
 * controller_mutation_rate (KIP-599) for CreateTopics, CreatePartitions and DeleteTopics: the
 * partitions a request creates or deletes are recorded against the client's token bucket
 * (quota.c) on the broker that received it, before it is relayed or submitted. A request that
 * arrives while the bucket is in debt is refused when its version knows the error (Kafka's
 * strict quota: CreateTopics v6+, CreatePartitions v3+, DeleteTopics v5+): every topic gets
 * THROTTLING_QUOTA_EXCEEDED and the response the throttle time. Older versions are accepted
 * and only throttled (Kafka's permissive quota): recorded, throttle_time_ms in the response
 * and the connection muted. validate_only requests are not recorded.
 *
 * Kafka checks the bucket before each topic of a request, so a request crossing the quota
 * has its first topics accepted and the rest refused; here the whole request is decided on
 * arrival. Worker thread.
 */
#include <string.h>

#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/quota.h"
#include "proto/gen/create_partitions.h"
#include "proto/gen/create_topics.h"
#include "proto/gen/delete_topics.h"
#include "proto/gen/errors.h"

#define MUTATION_REFUSED_MSG "The throttling quota has been exceeded."

static struct kstr refused_msg(void)
{
    return (struct kstr){MUTATION_REFUSED_MSG, (int32_t)strlen(MUTATION_REFUSED_MSG)};
}

/* Over the quota with a strict version: the throttle time to refuse with, else 0. */
static int32_t mutation_refusal(struct broker_req *r, int16_t strict_from)
{
    int32_t t = quota_mutation_throttle(r);
    if (t <= 0 || r->hdr.api_version < strict_from)
        return 0;
    net_conn_mute(r->nr->conn, t);
    if (t > r->throttle_ms)
        r->throttle_ms = t;
    return t;
}

bool mutation_quota_create_topics(struct broker_req *r)
{
    struct kmsg_create_topics_request q;
    struct kreader copy = r->body;
    if (!quota_active(r->b->quotas) ||
        kmsg_create_topics_request_decode(&copy, r->hdr.api_version, &q) != 0)
        return false;
    int32_t n = q.topics.n > 0 ? q.topics.n : 0;
    int32_t t = mutation_refusal(r, 6);
    if (t > 0) {
        struct kmsg_create_topics_response resp;
        kmsg_create_topics_response_init(&resp);
        resp.throttle_time_ms = t;
        resp.topics.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp.topics.v));
        if (resp.topics.v == NULL) {
            broker_close(r, "out of memory");
            return true;
        }
        resp.topics.n = n;
        for (int32_t i = 0; i < n; i++) {
            struct kmsg_create_topics_response_creatable_topic_result *o = &resp.topics.v[i];
            kmsg_create_topics_response_creatable_topic_result_init(o);
            o->name = q.topics.v[i].name;
            o->error_code = KAFKA_ERR_THROTTLING_QUOTA_EXCEEDED;
            o->error_message = refused_msg();
            o->num_partitions = -1;
            o->replication_factor = -1;
            o->configs.n = -1;
        }
        broker_reply(r, (kproto_encode_fn)kmsg_create_topics_response_encode, &resp);
        return true;
    }
    if (q.validate_only)
        return false;
    double mutations = 0;
    for (int32_t i = 0; i < n; i++) {
        const struct kmsg_create_topics_request_creatable_topic *rt = &q.topics.v[i];
        mutations += rt->assignments.n > 0    ? rt->assignments.n
                     : rt->num_partitions > 0 ? rt->num_partitions
                                              : r->b->cfg.num_partitions;
    }
    quota_mutation_record(r, mutations);
    return false;
}

bool mutation_quota_delete_topics(struct broker_req *r)
{
    struct kmsg_delete_topics_request q;
    struct kreader copy = r->body;
    if (!quota_active(r->b->quotas) ||
        kmsg_delete_topics_request_decode(&copy, r->hdr.api_version, &q) != 0)
        return false;
    bool v6 = r->hdr.api_version >= 6;
    int32_t n = v6 ? q.topics.n : q.topic_names.n;
    if (n < 0)
        n = 0;
    int32_t t = mutation_refusal(r, 5);
    if (t > 0) {
        struct kmsg_delete_topics_response resp;
        kmsg_delete_topics_response_init(&resp);
        resp.throttle_time_ms = t;
        resp.responses.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp.responses.v));
        if (resp.responses.v == NULL) {
            broker_close(r, "out of memory");
            return true;
        }
        resp.responses.n = n;
        for (int32_t i = 0; i < n; i++) {
            struct kmsg_delete_topics_response_deletable_topic_result *o = &resp.responses.v[i];
            kmsg_delete_topics_response_deletable_topic_result_init(o);
            o->name = v6 ? q.topics.v[i].name : q.topic_names.v[i];
            if (v6)
                o->topic_id = q.topics.v[i].topic_id;
            o->error_code = KAFKA_ERR_THROTTLING_QUOTA_EXCEEDED;
            o->error_message = refused_msg();
        }
        broker_reply(r, (kproto_encode_fn)kmsg_delete_topics_response_encode, &resp);
        return true;
    }
    double mutations = 0;
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    for (int32_t i = 0; i < n; i++) {
        struct kstr name = v6 ? q.topics.v[i].name : q.topic_names.v[i];
        const struct metadata_topic *mt = NULL;
        if (name.len >= 0) {
            char *s = broker_name(r, name);
            mt = s ? metadata_image_topic_by_name(img, s) : NULL;
        } else if (v6) {
            mt = metadata_image_topic_by_id(img, q.topics.v[i].topic_id.b);
        }
        mutations += mt ? mt->n_partitions : 0;
    }
    metadata_image_release(img);
    quota_mutation_record(r, mutations);
    return false;
}

bool mutation_quota_create_partitions(struct broker_req *r)
{
    struct kmsg_create_partitions_request q;
    struct kreader copy = r->body;
    if (!quota_active(r->b->quotas) ||
        kmsg_create_partitions_request_decode(&copy, r->hdr.api_version, &q) != 0)
        return false;
    int32_t n = q.topics.n > 0 ? q.topics.n : 0;
    int32_t t = mutation_refusal(r, 3);
    if (t > 0) {
        struct kmsg_create_partitions_response resp;
        kmsg_create_partitions_response_init(&resp);
        resp.throttle_time_ms = t;
        resp.results.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp.results.v));
        if (resp.results.v == NULL) {
            broker_close(r, "out of memory");
            return true;
        }
        resp.results.n = n;
        for (int32_t i = 0; i < n; i++) {
            struct kmsg_create_partitions_response_create_partitions_topic_result *o =
                &resp.results.v[i];
            kmsg_create_partitions_response_create_partitions_topic_result_init(o);
            o->name = q.topics.v[i].name;
            o->error_code = KAFKA_ERR_THROTTLING_QUOTA_EXCEEDED;
            o->error_message = refused_msg();
        }
        broker_reply(r, (kproto_encode_fn)kmsg_create_partitions_response_encode, &resp);
        return true;
    }
    if (q.validate_only)
        return false;
    double mutations = 0;
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    for (int32_t i = 0; i < n; i++) {
        char *s = broker_name(r, q.topics.v[i].name);
        const struct metadata_topic *mt = s ? metadata_image_topic_by_name(img, s) : NULL;
        if (mt && q.topics.v[i].count > (int32_t)mt->n_partitions)
            mutations += q.topics.v[i].count - (int32_t)mt->n_partitions;
    }
    metadata_image_release(img);
    quota_mutation_record(r, mutations);
    return false;
}
