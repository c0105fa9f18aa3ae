/*
 * OffsetForLeaderEpoch (key 23, KIP-101/KIP-320): for each partition, where the requested
 * leader epoch ends, from the partition's leader-epoch history (storage/log_epoch.c) as Kafka's
 * Partition.lastOffsetForLeaderEpoch answers it. Consumers use it to validate their position
 * after a leader change (a position beyond the epoch's end means the log was truncated);
 * followers to find where to truncate. The current_leader_epoch (v2+) fences requests that
 * carry stale or future metadata, as in Fetch and ListOffsets. An epoch Kafka cannot place
 * (undefined, or above every known epoch) is answered with no error and epoch/offset -1.
 */
#include "proto/gen/offset_for_leader_epoch.h"

#include <errno.h>

#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/leadership.h"
#include "broker/partition.h"
#include "broker/topic_partitions.h"
#include "proto/gen/errors.h"

static int epoch_end_partition(struct broker_req *r, const char *topic, const void *req_part,
                               void *resp_part)
{
    const struct kmsg_offset_for_leader_epoch_request_offset_for_leader_partition *rp = req_part;
    struct kmsg_offset_for_leader_epoch_response_epoch_end_offset *o = resp_part;
    kmsg_offset_for_leader_epoch_response_epoch_end_offset_init(o);
    o->partition = rp->partition;
    o->leader_epoch = -1;
    o->end_offset = -1;
    /* Kafka: a follower (replica_id >= 0, v3+) needs CLUSTER_ACTION, a client DESCRIBE. */
    const struct kmsg_offset_for_leader_epoch_request *req = r->decoded;
    bool ok = req != NULL && req->replica_id >= 0
                  ? broker_authorize_cluster(r, ACL_OPERATION_CLUSTER_ACTION)
                  : broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, topic, ACL_OPERATION_DESCRIBE);
    if (!ok) {
        o->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
        return 0;
    }
    int16_t lerr;
    struct partition *p = partition_get_led(r->b, topic, NULL, rp->partition,
                                            KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION, &lerr);
    if (p == NULL) {
        o->error_code = lerr; /* a client asks the leader (replica fetchers: issue 14) */
        return 0;
    }
    int32_t current = atomic_load(&p->leader_epoch);
    if (rp->current_leader_epoch >= 0 && rp->current_leader_epoch < current) {
        o->error_code = KAFKA_ERR_FENCED_LEADER_EPOCH;
    } else if (rp->current_leader_epoch > current) {
        o->error_code = KAFKA_ERR_UNKNOWN_LEADER_EPOCH;
    } else {
        int64_t end;
        int32_t epoch;
        if (log_end_offset_for_epoch(p->log, rp->leader_epoch, &end, &epoch) == 0) {
            o->leader_epoch = epoch;
            o->end_offset = end;
        }
    }
    partition_put(p);
    return 0;
}

static const struct topic_partitions_shape epoch_end_shape = TOPIC_PARTITIONS_SHAPE(
    struct kmsg_offset_for_leader_epoch_request_offset_for_leader_topic, topic, partitions,
    struct kmsg_offset_for_leader_epoch_response_offset_for_leader_topic_result, topic, partitions,
    kmsg_offset_for_leader_epoch_response_offset_for_leader_topic_result_init, epoch_end_partition);

void handle_offset_for_leader_epoch(struct broker_req *r)
{
    struct kmsg_offset_for_leader_epoch_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_offset_for_leader_epoch_request_decode, &req) != 0)
        return;
    struct kmsg_offset_for_leader_epoch_response resp;
    kmsg_offset_for_leader_epoch_response_init(&resp);
    if (r->hdr.api_version < 3)
        req.replica_id = -1; /* a consumer's request before the field existed */
    r->decoded = &req;       /* for epoch_end_partition's checks; this frame only */
    int rc = topic_partitions_answer(r, &epoch_end_shape, &req.topics, &resp.topics);
    r->decoded = NULL;
    if (rc < 0)
        return;
    broker_reply(r, (kproto_encode_fn)kmsg_offset_for_leader_epoch_response_encode, &resp);
}
