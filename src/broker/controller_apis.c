/*
 * The APIs a broker sends the active controller (Kafka's BrokerRegistration and
 * BrokerHeartbeat), served on the broker listener of the node that is the active controller.
 * They are not advertised in ApiVersions (clients never send them). A node that is not the
 * active controller answers NOT_CONTROLLER, and the sender retries against the new one.
 */
#include <string.h>

#include "base/log.h"
#include "broker/async.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "proto/gen/allocate_producer_ids.h"
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
    if (!controller_is_active(b->ctl)) {
        registration_reply(r, KAFKA_ERR_NOT_CONTROLLER, -1);
        return;
    }
    char *cluster = broker_name(r, req.cluster_id);
    if (cluster == NULL || strcmp(cluster, b->cluster_id) != 0) {
        log_warn("controller", "refusing registration of broker %d: cluster id %s is not %s",
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
                                                 {0}};
    memcpy(reg.incarnation, req.incarnation_id.b, sizeof(reg.incarnation));
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
