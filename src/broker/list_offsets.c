/*
 * ListOffsets (key 2): per partition, the earliest (-2) or latest (-1) offset, the record with
 * the largest timestamp (-3, KIP-734), or the first offset whose timestamp is >= T (time index
 * binary search plus a short scan). Latest is the high watermark (read_uncommitted) or the last
 * stable offset (read_committed), which are equal without transactions. v0 answers with the
 * old-style offsets array.
 */
#include "proto/gen/list_offsets.h"

#include <string.h>

#include "broker/authorizer.h"
#include "broker/leadership.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/partition.h"
#include "broker/producer_append.h"
#include "broker/topic_partitions.h"
#include "proto/gen/errors.h"

#define LIST_OFFSETS_LATEST (-1)
#define LIST_OFFSETS_EARLIEST (-2)
#define LIST_OFFSETS_MAX_TIMESTAMP (-3)

static void
list_offsets_lookup(struct partition *p, int64_t ts, bool committed,
                    struct kmsg_list_offsets_response_list_offsets_partition_response *o)
{
    struct log *log = p->log;
    o->timestamp = -1;
    o->leader_epoch = atomic_load(&p->leader_epoch);
    if (ts == LIST_OFFSETS_EARLIEST) {
        o->offset = log_start_offset(log);
    } else if (ts == LIST_OFFSETS_LATEST) {
        /* read_committed (v2+): the last stable offset, as Kafka. */
        o->offset = committed ? producer_last_stable_offset(p) : log_high_watermark(log);
    } else if (ts == LIST_OFFSETS_MAX_TIMESTAMP) {
        int64_t off, t;
        if (log_max_timestamp(log, &off, &t) == 0) {
            o->offset = off;
            o->timestamp = t;
        } else {
            o->offset = -1;
        }
    } else if (ts < 0) {
        o->error_code = KAFKA_ERR_INVALID_REQUEST;
        o->offset = -1;
    } else {
        int64_t off, t;
        int rc = log_offset_for_timestamp(log, ts, &off, &t);
        if (rc == 0 && off < log_high_watermark(log)) {
            o->offset = off;
            o->timestamp = t;
        } else if (rc == 0 || rc == -ENOENT) {
            o->offset = -1;
        } else {
            o->error_code = partition_error_from_storage(rc);
            o->offset = -1;
        }
    }
}

static bool isolation_committed(const struct broker_req *r)
{
    const struct kmsg_list_offsets_request *req = r->decoded;
    return r->hdr.api_version >= 2 && req != NULL && req->isolation_level == 1;
}

static int list_offsets_partition(struct broker_req *r, const char *topic, const void *req_part,
                                  void *resp_part)
{
    const struct kmsg_list_offsets_request_list_offsets_partition *rp = req_part;
    struct kmsg_list_offsets_response_list_offsets_partition_response *o = resp_part;
    kmsg_list_offsets_response_list_offsets_partition_response_init(o);
    o->partition_index = rp->partition_index;
    o->offset = -1;
    o->timestamp = -1;
    if (!broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, topic, ACL_OPERATION_DESCRIBE)) {
        o->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
        return 0;
    }
    int16_t lerr;
    struct partition *p = partition_get_led(r->b, topic, NULL, rp->partition_index,
                                            KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION, &lerr);
    if (p == NULL) {
        o->error_code = lerr;
        return 0;
    }
    int32_t epoch = atomic_load(&p->leader_epoch);
    if (rp->current_leader_epoch >= 0 && rp->current_leader_epoch < epoch)
        o->error_code = KAFKA_ERR_FENCED_LEADER_EPOCH;
    else if (rp->current_leader_epoch > epoch)
        o->error_code = KAFKA_ERR_UNKNOWN_LEADER_EPOCH;
    else
        list_offsets_lookup(p, rp->timestamp, isolation_committed(r), o);
    if (r->hdr.api_version == 0 && o->error_code == 0 && o->offset >= 0) {
        o->old_style_offsets.v = arena_alloc(r->arena, sizeof(int64_t));
        if (o->old_style_offsets.v) {
            o->old_style_offsets.v[0] = o->offset;
            o->old_style_offsets.n = 1;
        }
    }
    partition_put(p);
    return 0;
}

static const struct topic_partitions_shape list_offsets_shape = TOPIC_PARTITIONS_SHAPE(
    struct kmsg_list_offsets_request_list_offsets_topic, name, partitions,
    struct kmsg_list_offsets_response_list_offsets_topic_response, name, partitions,
    kmsg_list_offsets_response_list_offsets_topic_response_init, list_offsets_partition);

void handle_list_offsets(struct broker_req *r)
{
    struct kmsg_list_offsets_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_list_offsets_request_decode, &req) != 0)
        return;
    struct kmsg_list_offsets_response resp;
    kmsg_list_offsets_response_init(&resp);
    r->decoded = &req; /* for isolation_committed(); this frame only */
    int rc = topic_partitions_answer(r, &list_offsets_shape, &req.topics, &resp.topics);
    r->decoded = NULL;
    if (rc < 0)
        return;
    broker_reply(r, (kproto_encode_fn)kmsg_list_offsets_response_encode, &resp);
}
