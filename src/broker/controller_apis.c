/*
 * The APIs a broker sends the active controller (Kafka's BrokerRegistration, BrokerHeartbeat,
 * AllocateProducerIds and AlterPartition), served on the broker listener of the node that is
 * the active controller.
 * They are not advertised in ApiVersions (clients never send them). A node that is not the
 * active controller answers NOT_CONTROLLER, and the sender retries against the new one.
 * With an authorizer each needs CLUSTER_ACTION on the cluster (Kafka's inter-broker rule).
 */
#include <string.h>

#include "base/logger.h"
#include "broker/async.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/lifecycle.h"
#include "proto/gen/allocate_producer_ids.h"
#include "proto/gen/alter_partition.h"
#include "proto/gen/broker_heartbeat.h"
#include "proto/gen/broker_registration.h"
#include "proto/gen/errors.h"

static void registration_reply(struct broker_req *r, int16_t code, int64_t epoch)
{
    struct kmsg_broker_registration_response resp;
    kmsg_broker_registration_response_init(&resp);
    resp.error_code = code;
    resp.broker_epoch = code ? -1 : epoch;
    broker_reply(r, (kproto_encode_fn)kmsg_broker_registration_response_encode, &resp);
}

static void registration_resume(struct broker_async *a)
{
    registration_reply(a->r, a->error_code, a->broker_epoch);
}

void handle_broker_registration(struct broker_req *r)
{
    struct kmsg_broker_registration_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_broker_registration_request_decode, &req) != 0)
        return;
    struct broker *b = r->b;
    if (!broker_authorize_cluster(r, ACL_OPERATION_CLUSTER_ACTION)) {
        registration_reply(r, KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED, -1);
        return;
    }
    if (!controller_is_active(b->ctl)) {
        registration_reply(r, KAFKA_ERR_NOT_CONTROLLER, -1);
        return;
    }
    char *cluster = broker_name(r, req.cluster_id);
    if (cluster == NULL || strcmp(cluster, b->cluster_id) != 0) {
        logger_warn("controller", "refusing registration of broker %d: cluster id %s is not %s",
                    req.broker_id, cluster ? cluster : "?", b->cluster_id);
        registration_reply(r, KAFKA_ERR_INCONSISTENT_CLUSTER_ID, -1);
        return;
    }
    if (req.listeners.n < 1) {
        registration_reply(r, KAFKA_ERR_INVALID_REQUEST, -1);
        return;
    }
    struct controller_broker_registration reg = {req.broker_id,
                                                 broker_name(r, req.listeners.v[0].host),
                                                 req.listeners.v[0].port,
                                                 broker_str(r, req.rack),
                                                 {0},
                                                 NULL,
                                                 0};
    memcpy(reg.incarnation, req.incarnation_id.b, sizeof(reg.incarnation));
    /* A broker-only node also names where its raft standby listens (lifecycle.h). */
    for (int32_t i = 1; i < req.listeners.n; i++) {
        const struct kmsg_broker_registration_request_listener *l = &req.listeners.v[i];
        char *name = broker_name(r, l->name);
        if (name && strcmp(name, LIFECYCLE_OBSERVER_LISTENER) == 0) {
            reg.observer_host = broker_name(r, l->host);
            reg.observer_port = l->port;
        }
    }
    struct broker_async *a = broker_async_new(r, registration_resume, NULL);
    if (a == NULL || reg.host == NULL ||
        controller_register_broker(b->ctl, &reg, broker_async_done, a) != 0) {
        broker_async_free(a);
        registration_reply(r, KAFKA_ERR_NOT_CONTROLLER, -1);
    }
}

static void heartbeat_reply(struct broker_req *r, const struct broker_async *a, int16_t code)
{
    struct kmsg_broker_heartbeat_response resp;
    kmsg_broker_heartbeat_response_init(&resp);
    resp.error_code = code;
    if (a && code == 0) {
        resp.is_caught_up = a->is_caught_up;
        resp.is_fenced = a->is_fenced;
        resp.should_shut_down = a->should_shut_down;
    }
    broker_reply(r, (kproto_encode_fn)kmsg_broker_heartbeat_response_encode, &resp);
}

static void heartbeat_resume(struct broker_async *a)
{
    heartbeat_reply(a->r, a, a->error_code);
}

void handle_broker_heartbeat(struct broker_req *r)
{
    struct kmsg_broker_heartbeat_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_broker_heartbeat_request_decode, &req) != 0)
        return;
    struct broker *b = r->b;
    if (!broker_authorize_cluster(r, ACL_OPERATION_CLUSTER_ACTION)) {
        heartbeat_reply(r, NULL, KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED);
        return;
    }
    if (!controller_is_active(b->ctl)) {
        heartbeat_reply(r, NULL, KAFKA_ERR_NOT_CONTROLLER);
        return;
    }
    struct broker_async *a = broker_async_new(r, heartbeat_resume, NULL);
    if (a == NULL || controller_broker_heartbeat(b->ctl, req.broker_id, req.broker_epoch,
                                                 req.current_metadata_offset, req.want_fence,
                                                 req.want_shut_down, broker_async_done, a) != 0) {
        broker_async_free(a);
        heartbeat_reply(r, NULL, KAFKA_ERR_NOT_CONTROLLER);
    }
}

static void producer_ids_reply(struct broker_req *r, int16_t code, int64_t start, int32_t len)
{
    struct kmsg_allocate_producer_ids_response resp;
    kmsg_allocate_producer_ids_response_init(&resp);
    resp.error_code = code;
    resp.producer_id_start = code ? -1 : start;
    resp.producer_id_len = code ? 0 : len;
    broker_reply(r, (kproto_encode_fn)kmsg_allocate_producer_ids_response_encode, &resp);
}

static void producer_ids_resume(struct broker_async *a)
{
    producer_ids_reply(a->r, a->error_code, a->producer_id_start, a->producer_id_len);
}

void handle_allocate_producer_ids(struct broker_req *r)
{
    struct kmsg_allocate_producer_ids_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_allocate_producer_ids_request_decode, &req) != 0)
        return;
    struct broker *b = r->b;
    if (!broker_authorize_cluster(r, ACL_OPERATION_CLUSTER_ACTION)) {
        producer_ids_reply(r, KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED, -1, 0);
        return;
    }
    if (!controller_is_active(b->ctl)) {
        producer_ids_reply(r, KAFKA_ERR_NOT_CONTROLLER, -1, 0);
        return;
    }
    struct broker_async *a = broker_async_new(r, producer_ids_resume, NULL);
    if (a == NULL ||
        controller_allocate_producer_ids(b->ctl, req.broker_id, broker_async_done, a) != 0) {
        broker_async_free(a);
        producer_ids_reply(r, KAFKA_ERR_NOT_CONTROLLER, -1, 0);
    }
}

/* AlterPartition: a top-level error answers with no topics (Kafka's errorResponse). */
static void alter_partition_reply_error(struct broker_req *r, int16_t code)
{
    struct kmsg_alter_partition_response resp;
    kmsg_alter_partition_response_init(&resp);
    resp.error_code = code;
    resp.topics.n = 0;
    broker_reply(r, (kproto_encode_fn)kmsg_alter_partition_response_encode, &resp);
}

/* The response mirrors the request's topics; the results come flat, in request order. */
static void alter_partition_resume(struct broker_async *a)
{
    struct broker_req *r = a->r;
    const struct kmsg_alter_partition_request *req = a->arg;
    size_t total = 0;
    for (int32_t i = 0; i < req->topics.n; i++)
        total += req->topics.v[i].partitions.n > 0 ? (size_t)req->topics.v[i].partitions.n : 0;
    if (a->error_code != 0 || a->n_partitions != total) {
        alter_partition_reply_error(r,
                                    a->error_code ? a->error_code : KAFKA_ERR_UNKNOWN_SERVER_ERROR);
        return;
    }
    struct kmsg_alter_partition_response resp;
    kmsg_alter_partition_response_init(&resp);
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp.topics.v = arena_calloc(r->arena, (size_t)nt + 1, sizeof(*resp.topics.v));
    struct kmsg_alter_partition_response_partition_data *parts =
        arena_calloc(r->arena, total + 1, sizeof(*parts));
    if (resp.topics.v == NULL || parts == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    resp.topics.n = nt;
    size_t k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const struct kmsg_alter_partition_request_topic_data *rt = &req->topics.v[i];
        struct kmsg_alter_partition_response_topic_data *t = &resp.topics.v[i];
        kmsg_alter_partition_response_topic_data_init(t);
        t->topic_name = rt->topic_name;
        t->topic_id = rt->topic_id;
        t->partitions.v = &parts[k];
        t->partitions.n = 0;
        for (int32_t j = 0; j < rt->partitions.n; j++, k++) {
            const struct broker_async_partition *res = &a->partitions[k];
            struct kmsg_alter_partition_response_partition_data *p = &parts[k];
            kmsg_alter_partition_response_partition_data_init(p);
            p->partition_index = rt->partitions.v[j].partition_index;
            p->error_code = res->error_code;
            if (res->error_code == 0) {
                p->leader_id = res->leader_id;
                p->leader_epoch = res->leader_epoch;
                p->partition_epoch = res->partition_epoch;
                p->leader_recovery_state = res->leader_recovery_state;
                p->isr = (struct karray_int32){(int32_t)res->n_isr, NULL};
                p->isr.v = arena_calloc(r->arena, res->n_isr + 1, sizeof(int32_t));
                if (p->isr.v == NULL) {
                    broker_close(r, "out of memory");
                    return;
                }
                if (res->n_isr)
                    memcpy(p->isr.v, res->isr, res->n_isr * sizeof(int32_t));
            }
            t->partitions.n++;
        }
    }
    broker_reply(r, (kproto_encode_fn)kmsg_alter_partition_response_encode, &resp);
}

/*
 * One controller_isr_change per request partition: v0-1 name the topic, v2+ give its id; v3
 * sends each new ISR member with its broker epoch (KIP-903), earlier versions only ids.
 */
static struct controller_isr_change *
alter_partition_changes(struct broker_req *r, const struct kmsg_alter_partition_request *req,
                        size_t *n_out)
{
    int16_t version = r->hdr.api_version;
    size_t total = 0;
    for (int32_t i = 0; i < req->topics.n; i++)
        total += req->topics.v[i].partitions.n > 0 ? (size_t)req->topics.v[i].partitions.n : 0;
    struct controller_isr_change *c = arena_calloc(r->arena, total + 1, sizeof(*c));
    if (c == NULL)
        return NULL;
    size_t k = 0;
    for (int32_t i = 0; i < req->topics.n; i++) {
        const struct kmsg_alter_partition_request_topic_data *t = &req->topics.v[i];
        const char *name = version < 2 ? broker_name(r, t->topic_name) : NULL;
        if (version < 2 && name == NULL)
            return NULL;
        for (int32_t j = 0; j < t->partitions.n; j++, k++) {
            const struct kmsg_alter_partition_request_partition_data *p = &t->partitions.v[j];
            c[k].topic = name;
            memcpy(c[k].topic_id, t->topic_id.b, sizeof(c[k].topic_id));
            c[k].partition = p->partition_index;
            c[k].leader_epoch = p->leader_epoch;
            c[k].partition_epoch = p->partition_epoch;
            c[k].leader_recovery_state = version >= 1 ? p->leader_recovery_state : 0;
            if (version < 3) {
                c[k].n_new_isr = p->new_isr.n > 0 ? (uint32_t)p->new_isr.n : 0;
                c[k].new_isr = p->new_isr.v;
                continue;
            }
            uint32_t n = p->new_isr_with_epochs.n > 0 ? (uint32_t)p->new_isr_with_epochs.n : 0;
            int32_t *ids = arena_calloc(r->arena, n + 1, sizeof(*ids));
            int64_t *epochs = arena_calloc(r->arena, n + 1, sizeof(*epochs));
            if (ids == NULL || epochs == NULL)
                return NULL;
            for (uint32_t m = 0; m < n; m++) {
                ids[m] = p->new_isr_with_epochs.v[m].broker_id;
                epochs[m] = p->new_isr_with_epochs.v[m].broker_epoch;
            }
            c[k].n_new_isr = n;
            c[k].new_isr = ids;
            c[k].new_isr_epochs = epochs;
        }
    }
    *n_out = total;
    return c;
}

void handle_alter_partition(struct broker_req *r)
{
    struct kmsg_alter_partition_request *req = arena_calloc(r->arena, 1, sizeof(*req));
    if (req == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    if (broker_decode(r, (kproto_decode_fn)kmsg_alter_partition_request_decode, req) != 0)
        return;
    struct broker *b = r->b;
    if (!broker_authorize_cluster(r, ACL_OPERATION_CLUSTER_ACTION)) {
        alter_partition_reply_error(r, KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED);
        return;
    }
    if (!controller_is_active(b->ctl)) {
        alter_partition_reply_error(r, KAFKA_ERR_NOT_CONTROLLER);
        return;
    }
    size_t n = 0;
    struct controller_isr_change *changes = alter_partition_changes(r, req, &n);
    if (changes == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    struct controller_alter_partition ap = {req->broker_id, req->broker_epoch, r->hdr.api_version,
                                            n, changes};
    struct broker_async *a = broker_async_new(r, alter_partition_resume, req);
    if (a == NULL || controller_alter_partition(b->ctl, &ap, broker_async_done, a) != 0) {
        broker_async_free(a);
        alter_partition_reply_error(r, KAFKA_ERR_NOT_CONTROLLER);
    }
}
