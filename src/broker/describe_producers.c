/*
 * DescribeProducers (key 61): the idempotent-producer state of hosted partitions, copied under
 * each partition's producer_mu into the request arena. Gregor has no transactions, so
 * CoordinatorEpoch and CurrentTxnStartOffset are always -1. A partition this broker does not
 * host answers UNKNOWN_TOPIC_OR_PARTITION (a single-node broker leads all it hosts).
 */
#include "proto/gen/describe_producers.h"

#include <errno.h>
#include <stdlib.h>

#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/partition.h"
#include "broker/topic_partitions.h"
#include "proto/gen/errors.h"
#include "storage/producer_state.h"

static int describe_partition(struct broker_req *r, const char *topic, const void *req_part,
                              void *resp_part)
{
    int32_t index = *(const int32_t *)req_part;
    struct kmsg_describe_producers_response_partition_response *o = resp_part;
    kmsg_describe_producers_response_partition_response_init(o);
    o->partition_index = index;
    o->active_producers.n = 0;
    if (!broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, topic, ACL_OPERATION_READ)) {
        o->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED; /* Kafka: READ on the topic */
        return 0;
    }
    struct partition *p = partition_get(r->b->parts, topic, index);
    if (p == NULL) {
        o->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
        return 0;
    }
    pthread_mutex_lock(&p->producer_mu);
    size_t n = producer_state_count(p->producers);
    struct producer_info *info = malloc((n + 1) * sizeof(*info));
    if (info)
        n = producer_state_list(p->producers, info, n);
    pthread_mutex_unlock(&p->producer_mu);
    partition_put(p);
    if (info == NULL)
        return -ENOMEM;
    o->active_producers.v = arena_calloc(r->arena, n + 1, sizeof(*o->active_producers.v));
    if (o->active_producers.v == NULL) {
        free(info);
        return -ENOMEM;
    }
    o->active_producers.n = (int32_t)n;
    for (size_t i = 0; i < n; i++) {
        struct kmsg_describe_producers_response_producer_state *s = &o->active_producers.v[i];
        kmsg_describe_producers_response_producer_state_init(s);
        s->producer_id = info[i].producer_id;
        s->producer_epoch = info[i].epoch;
        s->last_sequence = info[i].last_seq;
        s->last_timestamp = info[i].last_timestamp;
        s->coordinator_epoch = info[i].coordinator_epoch;
        s->current_txn_start_offset = info[i].txn_first_offset;
    }
    free(info);
    return 0;
}

static const struct topic_partitions_shape describe_producers_shape = TOPIC_PARTITIONS_SHAPE(
    struct kmsg_describe_producers_request_topic_request, name, partition_indexes,
    struct kmsg_describe_producers_response_topic_response, name, partitions,
    kmsg_describe_producers_response_topic_response_init, describe_partition);

void handle_describe_producers(struct broker_req *r)
{
    struct kmsg_describe_producers_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_producers_request_decode, &req) != 0)
        return;
    struct kmsg_describe_producers_response resp;
    kmsg_describe_producers_response_init(&resp);
    if (topic_partitions_answer(r, &describe_producers_shape, &req.topics, &resp.topics) < 0)
        return;
    broker_reply(r, (kproto_encode_fn)kmsg_describe_producers_response_encode, &resp);
}
