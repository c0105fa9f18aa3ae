/*
 * DeleteRecords (21): moves a partition's log start offset forward (offset -1 means the high
 * watermark), as Kafka does; whole segments below it are deleted by the log and the new start
 * is checkpointed by the housekeeping thread and at shutdown.
 */
#include "proto/gen/delete_records.h"

#include "base/clock.h"
#include "broker/authorizer.h"
#include "broker/leadership.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/partition.h"
#include "broker/topic_partitions.h"
#include "proto/gen/errors.h"

static int delete_records_partition(struct broker_req *r, const char *topic, const void *req_part,
                                    void *resp_part)
{
    const struct kmsg_delete_records_request_delete_records_partition *rp = req_part;
    struct kmsg_delete_records_response_delete_records_partition_result *o = resp_part;
    kmsg_delete_records_response_delete_records_partition_result_init(o);
    o->partition_index = rp->partition_index;
    o->low_watermark = -1;
    if (!broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, topic, ACL_OPERATION_DELETE)) {
        o->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED; /* Kafka: DELETE on the topic */
        return 0;
    }
    int16_t lerr;
    struct partition *p = partition_get_led(r->b, topic, NULL, rp->partition_index,
                                            KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION, &lerr);
    if (p == NULL) {
        o->error_code = lerr;
        return 0;
    }
    int64_t hw = log_high_watermark(p->log);
    int64_t offset = rp->offset == -1 ? hw : rp->offset;
    /* Under follow_mu: a partition retired meanwhile (partition_registry.c) is not touched. */
    pthread_mutex_lock(&p->follow_mu);
    if (atomic_load(&p->deleted)) {
        o->error_code = KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (offset < 0 || offset > hw) {
        o->error_code = KAFKA_ERR_OFFSET_OUT_OF_RANGE;
    } else {
        int rc = log_delete_records(p->log, offset, clock_wall_ms());
        o->error_code = rc == 0 ? KAFKA_ERR_NONE : partition_error_from_storage(rc);
        o->low_watermark = log_start_offset(p->log);
    }
    pthread_mutex_unlock(&p->follow_mu);
    partition_put(p);
    return 0;
}

static const struct topic_partitions_shape delete_records_shape = TOPIC_PARTITIONS_SHAPE(
    struct kmsg_delete_records_request_delete_records_topic, name, partitions,
    struct kmsg_delete_records_response_delete_records_topic_result, name, partitions,
    kmsg_delete_records_response_delete_records_topic_result_init, delete_records_partition);

void handle_delete_records(struct broker_req *r)
{
    struct kmsg_delete_records_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_delete_records_request_decode, &req) != 0)
        return;
    struct kmsg_delete_records_response resp;
    kmsg_delete_records_response_init(&resp);
    if (topic_partitions_answer(r, &delete_records_shape, &req.topics, &resp.topics) < 0)
        return;
    broker_reply(r, (kproto_encode_fn)kmsg_delete_records_response_encode, &resp);
}
