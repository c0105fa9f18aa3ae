/*
 * Metadata (key 3): brokers, cluster id, controller, and topics with their partitions' leader,
 * replicas and ISR, read from the current metadata image. Requested topics that do not exist
 * are created first when auto-creation is allowed (auto.create.topics.enable and, from v4, the
 * request's flag); the handler waits for the controller without blocking the worker and then
 * answers from the newer image, so clients see the topic at once.
 */
#include "proto/gen/metadata.h"

#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "broker/leadership.h"
#include "broker/forwarder.h"
#include "broker/async.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "cluster/controller.h"
#include "proto/acl_operations.h"
#include "proto/gen/errors.h"

struct metadata_state {
    struct kmsg_metadata_request req;
    char **names;           /* requested names, NUL-terminated; NULL entry for by-id lookups */
    int16_t *create_errors; /* per requested topic, from auto-creation */
    bool *denied;           /* per requested topic: TOPIC_AUTHORIZATION_FAILED (authorizer.h) */
    int all_topics;
    struct broker_req *r;
    struct net_timer wait_timer; /* waiting for a concurrent creation to be published */
    int waits;
};

/* A concurrent request's creation of the same topic is committed but may not be published
 * yet: look again every METADATA_WAIT_MS, at most METADATA_WAITS times, before answering
 * LEADER_NOT_AVAILABLE (which clients retry). */
#define METADATA_WAIT_MS 5
#define METADATA_WAITS 100

static bool metadata_is_internal(const char *name)
{
    return strcmp(name, "__consumer_offsets") == 0 || strcmp(name, "__transaction_state") == 0;
}

static void metadata_fill_brokers(struct broker_req *r, const struct metadata_image *img,
                                  struct kmsg_metadata_response *resp)
{
    struct broker *b = r->b;
    size_t cap = img->n_brokers + 1;
    resp->brokers.v = arena_calloc(r->arena, cap, sizeof(*resp->brokers.v));
    resp->brokers.n = 0;
    if (resp->brokers.v == NULL)
        return;
    struct kmsg_metadata_response_broker *self = &resp->brokers.v[resp->brokers.n++];
    kmsg_metadata_response_broker_init(self);
    self->node_id = b->cfg.node_id;
    self->host = broker_advertised_host(r); /* the listener this client connected to */
    self->port = broker_advertised_port(r);
    for (size_t i = 0; i < img->n_brokers; i++) {
        const struct metadata_broker *mb = &img->brokers[i];
        /* Kafka lists the alive brokers: a fenced broker is left out until it is back. */
        if (mb->id == b->cfg.node_id || mb->state == METADATA_BROKER_FENCED)
            continue;
        struct kmsg_metadata_response_broker *o = &resp->brokers.v[resp->brokers.n++];
        kmsg_metadata_response_broker_init(o);
        o->node_id = mb->id;
        o->host = (struct kstr){mb->host, (int32_t)strlen(mb->host)};
        o->port = mb->port;
        if (mb->rack)
            o->rack = (struct kstr){mb->rack, (int32_t)strlen(mb->rack)};
    }
}

/* KIP-430: the topic operations the principal may do, when asked (v8+). */
static int32_t metadata_topic_operations(struct metadata_state *st,
                                         const struct metadata_image *img, const char *name)
{
    if (!st->req.include_topic_authorized_operations)
        return ACL_OPERATIONS_NOT_REQUESTED;
    return broker_authorized_operations(st->r, img, ACL_RESOURCE_TOPIC, name ? name : "",
                                        ACL_OPERATIONS_TOPIC);
}

static void metadata_fill_topic(struct broker_req *r, const struct metadata_image *img,
                                const struct metadata_topic *t,
                                struct kmsg_metadata_response_topic *o)
{
    o->error_code = KAFKA_ERR_NONE;
    o->name = (struct kstr){t->name, (int32_t)strlen(t->name)};
    memcpy(o->topic_id.b, t->id, sizeof(o->topic_id.b));
    o->is_internal = metadata_is_internal(t->name);
    o->topic_authorized_operations = ACL_OPERATIONS_NOT_REQUESTED;
    o->partitions.v =
        arena_calloc(r->arena, t->n_partitions ? t->n_partitions : 1, sizeof(*o->partitions.v));
    o->partitions.n = 0;
    if (o->partitions.v == NULL)
        return;
    for (uint32_t i = 0; i < t->n_partitions; i++) {
        const struct metadata_partition *mp = &t->partitions[i];
        struct kmsg_metadata_response_partition *p = &o->partitions.v[o->partitions.n++];
        kmsg_metadata_response_partition_init(p);
        p->error_code = mp->leader < 0 ? KAFKA_ERR_LEADER_NOT_AVAILABLE : KAFKA_ERR_NONE;
        p->partition_index = mp->partition;
        p->leader_id = mp->leader;
        p->leader_epoch = mp->leader_epoch;
        p->replica_nodes = broker_ids(r, mp->replicas, mp->n_replicas);
        p->isr_nodes = broker_ids(r, mp->isr, mp->n_isr);
        p->offline_replicas = broker_offline_replicas(r, img, mp);
    }
}

static void metadata_fill_missing(struct kmsg_metadata_response_topic *o, struct kstr name,
                                  struct kuuid id, int16_t error)
{
    o->error_code = error;
    o->name = name;
    o->topic_id = id;
    o->topic_authorized_operations = ACL_OPERATIONS_NOT_REQUESTED;
}

static void metadata_respond(struct broker_req *r, struct metadata_state *st)
{
    struct broker *b = r->b;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    struct kmsg_metadata_response resp;
    kmsg_metadata_response_init(&resp);
    metadata_fill_brokers(r, img, &resp);
    resp.cluster_id = (struct kstr){b->cluster_id, (int32_t)strlen(b->cluster_id)};
    /* As Kafka in KRaft mode: the controller id clients see is a live broker (this one), which
     * forwards what only the active controller can do; so an admin client never waits on a
     * dead controller it learnt about earlier. */
    resp.controller_id = b->cfg.node_id;
    /* Kafka answers the cluster's operations only in v8-10 (the field's versions). */
    resp.cluster_authorized_operations =
        st->req.include_cluster_authorized_operations
            ? broker_authorized_operations(r, img, ACL_RESOURCE_CLUSTER, ACL_CLUSTER_NAME,
                                           ACL_OPERATIONS_CLUSTER)
            : ACL_OPERATIONS_NOT_REQUESTED;
    size_t n = st->all_topics ? img->n_topics : (size_t)st->req.topics.n;
    resp.topics.v = arena_calloc(r->arena, n ? n : 1, sizeof(*resp.topics.v));
    resp.topics.n = 0;
    for (size_t i = 0; resp.topics.v && i < n; i++) {
        if (st->all_topics) {
            /* As Kafka: a topic the principal may not DESCRIBE is left out of the listing. */
            const struct metadata_topic *t = img->topics_by_name[i];
            if (!broker_authorize(r, img, ACL_RESOURCE_TOPIC, t->name, ACL_OPERATION_DESCRIBE))
                continue;
            struct kmsg_metadata_response_topic *o = &resp.topics.v[resp.topics.n++];
            kmsg_metadata_response_topic_init(o);
            metadata_fill_topic(r, img, t, o);
            o->topic_authorized_operations = metadata_topic_operations(st, img, t->name);
            continue;
        }
        struct kmsg_metadata_response_topic *o = &resp.topics.v[resp.topics.n++];
        kmsg_metadata_response_topic_init(o);
        const struct kmsg_metadata_request_topic *rt = &st->req.topics.v[i];
        const struct metadata_topic *t = st->names[i]
                                             ? metadata_image_topic_by_name(img, st->names[i])
                                             : metadata_image_topic_by_id(img, rt->topic_id.b);
        if (t != NULL && st->names[i] == NULL &&
            !broker_authorize(r, img, ACL_RESOURCE_TOPIC, t->name, ACL_OPERATION_DESCRIBE)) {
            metadata_fill_missing(o, KSTR_NULL, rt->topic_id, KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED);
            continue;
        }
        if (st->denied[i]) {
            metadata_fill_missing(o, rt->name, rt->topic_id, KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED);
            o->topic_authorized_operations = metadata_topic_operations(st, img, st->names[i]);
            continue;
        }
        if (t != NULL)
            metadata_fill_topic(r, img, t, o);
        else
            metadata_fill_missing(o, rt->name, rt->topic_id,
                                  st->create_errors[i] ? st->create_errors[i]
                                                       : KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
        /* As Kafka: topics asked for by name get them even when missing; unknown ids not. */
        if (t != NULL || st->names[i] != NULL)
            o->topic_authorized_operations =
                metadata_topic_operations(st, img, t ? t->name : st->names[i]);
    }
    broker_reply(r, (kproto_encode_fn)kmsg_metadata_response_encode, &resp);
    metadata_image_release(img);
}

/* True when a topic whose creation raced with another request is still missing. */
static bool metadata_awaits_topic(struct metadata_state *st)
{
    const struct metadata_image *img = metadata_image_acquire(st->r->b->ctl);
    bool missing = false;
    for (int32_t i = 0; i < st->req.topics.n && !missing; i++)
        missing = st->create_errors[i] == KAFKA_ERR_LEADER_NOT_AVAILABLE && st->names[i] &&
                  metadata_image_topic_by_name(img, st->names[i]) == NULL;
    metadata_image_release(img);
    return missing;
}

static void metadata_wait_done(struct net_timer *t)
{
    struct metadata_state *st = t->arg;
    if (++st->waits < METADATA_WAITS && metadata_awaits_topic(st)) {
        net_timer_start(net_request_worker(st->r->nr), &st->wait_timer, METADATA_WAIT_MS,
                        metadata_wait_done, st);
        return;
    }
    metadata_respond(st->r, st);
}

static void metadata_after_create(struct broker_async *a)
{
    struct metadata_state *st = a->arg;
    /* Map creation errors back to the requested topics (same order as submitted). */
    size_t k = 0;
    for (int32_t i = 0; i < st->req.topics.n && k < a->n_topics; i++) {
        if (st->create_errors[i] != -2)
            continue;
        int16_t e = a->n_topics > k ? a->topics[k++].error_code : 0;
        st->create_errors[i] =
            e == KAFKA_ERR_TOPIC_ALREADY_EXISTS ? KAFKA_ERR_LEADER_NOT_AVAILABLE : e;
    }
    for (int32_t i = 0; i < st->req.topics.n; i++)
        if (st->create_errors[i] == -2)
            st->create_errors[i] = a->error_code;
    if (metadata_awaits_topic(st)) {
        net_timer_start(net_request_worker(a->r->nr), &st->wait_timer, METADATA_WAIT_MS,
                        metadata_wait_done, st);
        return;
    }
    metadata_respond(a->r, st);
}

/* Starts creating the requested topics that are missing; returns 1 if it did (then the response
 * is sent when the controller is done), 0 if nothing needed creating. */
static int metadata_auto_create(struct broker_req *r, struct metadata_state *st)
{
    struct broker *b = r->b;
    bool allowed = b->cfg.auto_create_topics_enable &&
                   (r->hdr.api_version < 4 || st->req.allow_auto_topic_creation);
    if (!allowed || st->all_topics)
        return 0;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    struct controller_new_topic *nt =
        arena_calloc(r->arena, (size_t)st->req.topics.n + 1, sizeof(*nt));
    size_t n = 0;
    for (int32_t i = 0; nt && i < st->req.topics.n; i++) {
        if (st->names[i] == NULL || metadata_image_topic_by_name(img, st->names[i]) != NULL)
            continue;
        /* Kafka: auto-creation needs CREATE on the cluster or the topic. */
        if (!st->denied[i] && !broker_authorize_cluster(r, ACL_OPERATION_CREATE) &&
            !broker_authorize(r, img, ACL_RESOURCE_TOPIC, st->names[i], ACL_OPERATION_CREATE))
            st->denied[i] = true;
        if (st->denied[i])
            continue;
        nt[n].name = st->names[i];
        nt[n].num_partitions = -1;
        nt[n].replication_factor = -1;
        st->create_errors[i] = -2; /* pending */
        n++;
    }
    metadata_image_release(img);
    if (n == 0)
        return 0;
    struct broker_async *a = broker_async_new(r, metadata_after_create, st);
    if (a == NULL || broker_create_topics(b, nt, n, false, broker_async_done, a) != 0) {
        broker_async_free(a);
        for (int32_t i = 0; i < st->req.topics.n; i++)
            if (st->create_errors[i] == -2)
                st->create_errors[i] = KAFKA_ERR_LEADER_NOT_AVAILABLE;
        return 0;
    }
    return 1;
}

void handle_metadata(struct broker_req *r)
{
    struct metadata_state *st = arena_calloc(r->arena, 1, sizeof(*st));
    if (st == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    st->r = r;
    if (broker_decode(r, (kproto_decode_fn)kmsg_metadata_request_decode, &st->req) != 0)
        return;
    /* v0: an empty list means all topics; v1+: null means all, empty means none. */
    st->all_topics = st->req.topics.n < 0 || (r->hdr.api_version == 0 && st->req.topics.n == 0);
    if (!st->all_topics) {
        size_t n = (size_t)st->req.topics.n;
        st->names = arena_calloc(r->arena, n + 1, sizeof(char *));
        st->create_errors = arena_calloc(r->arena, n + 1, sizeof(int16_t));
        st->denied = arena_calloc(r->arena, n + 1, sizeof(bool));
        if (st->names == NULL || st->create_errors == NULL || st->denied == NULL) {
            broker_close(r, "out of memory");
            return;
        }
        for (size_t i = 0; i < n; i++) {
            struct kstr name = st->req.topics.v[i].name;
            if (name.len >= 0)
                st->names[i] = arena_strndup(r->arena, name.ptr, (size_t)name.len);
            st->denied[i] =
                st->names[i] != NULL && !broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, st->names[i],
                                                          ACL_OPERATION_DESCRIBE);
        }
    }
    if (metadata_auto_create(r, st))
        return;
    metadata_respond(r, st);
}
