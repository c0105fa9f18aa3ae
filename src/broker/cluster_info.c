/*
 * DescribeCluster (60): the brokers, cluster id and controller, from the metadata image, and
 * the cluster's authorized operations when asked. From v1 the request names an endpoint type
 * (KIP-919): brokers (1) from a node with the broker role, controllers (2) from a node with the
 * controller role (the controllers that have recorded their endpoint, i.e. been active, and
 * the raft leader as controller id); otherwise MISMATCHED_ENDPOINT_TYPE, as Kafka answers.
 */
#include "proto/gen/describe_cluster.h"

#include <string.h>

#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "proto/acl_operations.h"
#include "proto/gen/errors.h"

/* Lists the controllers' registered endpoints (endpoint type 2). */
static void describe_cluster_controllers(struct broker_req *r,
                                         struct kmsg_describe_cluster_response *resp)
{
    struct broker *b = r->b;
    resp->controller_id = controller_leader_id(b->ctl);
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    resp->brokers.v = arena_calloc(r->arena, img->n_controllers + 1, sizeof(*resp->brokers.v));
    resp->brokers.n = 0;
    for (size_t i = 0; resp->brokers.v && i < img->n_controllers; i++) {
        const struct metadata_endpoint *c = &img->controllers[i];
        struct kmsg_describe_cluster_response_describe_cluster_broker *o =
            &resp->brokers.v[resp->brokers.n++];
        kmsg_describe_cluster_response_describe_cluster_broker_init(o);
        o->broker_id = c->id;
        o->host = broker_kstr(r, c->host);
        o->port = c->port;
        o->rack = KSTR_NULL;
    }
    metadata_image_release(img);
}

/*
 * Checks the requested endpoint type against this node's roles; true when resp now carries an
 * error. Fills the controller list for a valid type 2 request.
 */
static bool describe_cluster_endpoint_error(struct broker_req *r,
                                            const struct kmsg_describe_cluster_request *req,
                                            struct kmsg_describe_cluster_response *resp)
{
    int8_t type = r->hdr.api_version >= 1 ? req->endpoint_type : 1;
    resp->endpoint_type = type;
    if (type != 1 && type != 2) {
        resp->error_code = KAFKA_ERR_UNSUPPORTED_ENDPOINT_TYPE;
        resp->error_message = KSTR_LIT("Unsupported endpoint type");
        return true;
    }
    uint8_t role = type == 1 ? CONFIG_ROLE_BROKER : CONFIG_ROLE_CONTROLLER;
    if ((r->b->cfg.roles & role) == 0) {
        resp->error_code = KAFKA_ERR_MISMATCHED_ENDPOINT_TYPE;
        resp->error_message =
            type == 1 ? KSTR_LIT("The request was sent to an endpoint of type CONTROLLER, but we "
                                 "wanted an endpoint of type BROKER")
                      : KSTR_LIT("The request was sent to an endpoint of type BROKER, but we "
                                 "wanted an endpoint of type CONTROLLER");
        return true;
    }
    if (type == 2)
        describe_cluster_controllers(r, resp);
    return false;
}

void handle_describe_cluster(struct broker_req *r)
{
    struct kmsg_describe_cluster_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_cluster_request_decode, &req) != 0)
        return;
    struct broker *b = r->b;
    struct kmsg_describe_cluster_response resp;
    kmsg_describe_cluster_response_init(&resp);
    resp.cluster_id = (struct kstr){b->cluster_id, (int32_t)strlen(b->cluster_id)};
    /* A live broker that forwards to the active controller, as Kafka brokers answer. */
    resp.controller_id = b->cfg.node_id;
    /* KIP-430: the cluster operations the principal may do (all without an authorizer). */
    resp.cluster_authorized_operations =
        req.include_cluster_authorized_operations
            ? broker_authorized_operations(r, NULL, ACL_RESOURCE_CLUSTER, ACL_CLUSTER_NAME,
                                           ACL_OPERATIONS_CLUSTER)
            : ACL_OPERATIONS_NOT_REQUESTED;
    if (describe_cluster_endpoint_error(r, &req, &resp) || resp.endpoint_type == 2) {
        broker_reply(r, (kproto_encode_fn)kmsg_describe_cluster_response_encode, &resp);
        return;
    }
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    resp.brokers.v = arena_calloc(r->arena, img->n_brokers + 1, sizeof(*resp.brokers.v));
    resp.brokers.n = 0;
    bool self_listed = false;
    for (size_t i = 0; resp.brokers.v && i < img->n_brokers; i++) {
        const struct metadata_broker *mb = &img->brokers[i];
        if (mb->state == METADATA_BROKER_FENCED && mb->id != b->cfg.node_id)
            continue;
        struct kmsg_describe_cluster_response_describe_cluster_broker *o =
            &resp.brokers.v[resp.brokers.n++];
        kmsg_describe_cluster_response_describe_cluster_broker_init(o);
        o->broker_id = mb->id;
        o->host = broker_kstr(r, mb->host);
        o->port = mb->port;
        if (mb->id == b->cfg.node_id) { /* this broker: on the client's listener */
            o->host = broker_advertised_host(r);
            o->port = broker_advertised_port(r);
        }
        o->rack = mb->rack ? broker_kstr(r, mb->rack) : KSTR_NULL;
        self_listed |= mb->id == b->cfg.node_id;
    }
    metadata_image_release(img);
    if (!self_listed && resp.brokers.v) {
        /* Not registered yet (controller still electing): list ourselves anyway. */
        struct kmsg_describe_cluster_response_describe_cluster_broker *o =
            &resp.brokers.v[resp.brokers.n++];
        kmsg_describe_cluster_response_describe_cluster_broker_init(o);
        o->broker_id = b->cfg.node_id;
        o->host = broker_advertised_host(r);
        o->port = broker_advertised_port(r);
    }
    broker_reply(r, (kproto_encode_fn)kmsg_describe_cluster_response_encode, &resp);
}
