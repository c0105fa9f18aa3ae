/*
 * DescribeQuorum (55): the metadata quorum (__cluster_metadata-0) as the active controller
 * sees it: leader, epoch (raft term), high watermark (commit index) and each voter's log end;
 * the broker-only nodes (libraft standbys, controller.c) are the observers.
 * A node that is not the active controller forwards the request to it, as Kafka's brokers do;
 * if none can be reached it answers from its own view (followers' log ends unknown, -1).
 */
#include <string.h>

#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/forwarder.h"
#include "broker/handlers.h"
#include "proto/gen/describe_quorum.h"
#include "proto/gen/errors.h"

#define METADATA_TOPIC "__cluster_metadata"

static void quorum_fill_partition(struct broker_req *r,
                                  struct kmsg_describe_quorum_response_partition_data *pd)
{
    struct controller_voter_state v[CONTROLLER_MAX_QUORUM_MEMBERS];
    int32_t leader, epoch;
    int64_t hw;
    size_t n =
        controller_quorum_state(r->b->ctl, v, CONTROLLER_MAX_QUORUM_MEMBERS, &leader, &epoch, &hw);
    kmsg_describe_quorum_response_partition_data_init(pd);
    pd->partition_index = 0;
    pd->leader_id = leader;
    pd->leader_epoch = epoch;
    pd->high_watermark = hw;
    pd->current_voters.v = arena_calloc(r->arena, n + 1, sizeof(*pd->current_voters.v));
    pd->observers.v = arena_calloc(r->arena, n + 1, sizeof(*pd->observers.v));
    pd->current_voters.n = pd->observers.n = 0;
    for (size_t i = 0; pd->current_voters.v && pd->observers.v && i < n; i++) {
        struct kmsg_describe_quorum_response_replica_state *s =
            v[i].observer ? &pd->observers.v[pd->observers.n++]
                          : &pd->current_voters.v[pd->current_voters.n++];
        kmsg_describe_quorum_response_replica_state_init(s);
        s->replica_id = v[i].id;
        s->log_end_offset = v[i].log_end_offset;
    }
}

void handle_describe_quorum(struct broker_req *r)
{
    /* Kafka: DESCRIBE on the cluster, checked here as the relayed request is the broker's */
    if (!broker_authorize_cluster(r, ACL_OPERATION_DESCRIBE)) {
        struct kmsg_describe_quorum_response resp;
        kmsg_describe_quorum_response_init(&resp);
        resp.error_code = KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.topics.n = 0;
        resp.nodes.n = 0;
        broker_reply(r, (kproto_encode_fn)kmsg_describe_quorum_response_encode, &resp);
        return;
    }
    if (forwarder_relay(r))
        return;
    struct kmsg_describe_quorum_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_quorum_request_decode, &req) != 0)
        return;
    struct kmsg_describe_quorum_response resp;
    kmsg_describe_quorum_response_init(&resp);
    resp.topics.v = arena_calloc(r->arena, 1, sizeof(*resp.topics.v));
    struct kmsg_describe_quorum_response_partition_data *pd =
        arena_calloc(r->arena, 1, sizeof(*pd));
    if (resp.topics.v == NULL || pd == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    resp.topics.n = 1;
    kmsg_describe_quorum_response_topic_data_init(&resp.topics.v[0]);
    resp.topics.v[0].topic_name = KSTR_LIT(METADATA_TOPIC);
    quorum_fill_partition(r, pd);
    resp.topics.v[0].partitions =
        (struct kmsg_describe_quorum_response_partition_data_array){1, pd};
    resp.nodes.n = 0;
    broker_reply(r, (kproto_encode_fn)kmsg_describe_quorum_response_encode, &resp);
}
