/* DescribeCluster (60): the brokers, cluster id and controller, from the metadata image, and
 * the cluster's authorized operations when asked. */
#include "proto/gen/describe_cluster.h"

#include <string.h>

#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "proto/acl_operations.h"
#include "proto/gen/errors.h"

void handle_describe_cluster(struct broker_req *r)
{
    struct kmsg_describe_cluster_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_cluster_request_decode, &req) != 0)
        return;
    struct broker *b = r->b;
    struct kmsg_describe_cluster_response resp;
    kmsg_describe_cluster_response_init(&resp);
    resp.endpoint_type = req.endpoint_type;
    resp.cluster_id = (struct kstr){b->cluster_id, (int32_t)strlen(b->cluster_id)};
    /* A live broker that forwards to the active controller, as Kafka brokers answer. */
    resp.controller_id = b->cfg.node_id;
    /* KIP-430: every cluster operation when asked, as Kafka without an authorizer. */
    resp.cluster_authorized_operations = req.include_cluster_authorized_operations
                                             ? ACL_OPERATIONS_CLUSTER
                                             : ACL_OPERATIONS_NOT_REQUESTED;
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
        o->host = (struct kstr){b->advertised_host, (int32_t)strlen(b->advertised_host)};
        o->port = b->advertised_port;
    }
    broker_reply(r, (kproto_encode_fn)kmsg_describe_cluster_response_encode, &resp);
}
