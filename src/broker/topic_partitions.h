/*
 * The topics -> partitions loop that many responses share (ListOffsets, DeleteRecords,
 * DescribeProducers, OffsetForLeaderEpoch): the response lists the request's topics in order,
 * each with its name and one result per requested partition. A handler describes where the
 * generated structs keep the name and the partitions (TOPIC_PARTITIONS_SHAPE) and supplies the
 * per-partition function; the loop allocates every array in the request's arena.
 *
 * Every generated array is `struct { int32_t n; T *v; }` (n == -1 = null, answered as empty),
 * which topic_partitions.c checks against struct topic_partitions_array. Worker thread of the
 * request, like the handlers.
 */
#ifndef GREGOR_BROKER_TOPIC_PARTITIONS_H
#define GREGOR_BROKER_TOPIC_PARTITIONS_H

#include <stddef.h>

#include "broker/request.h"

/* Fills resp_partition (zeroed memory of the response partition type) for req_partition (an
 * element of the request topic's partitions array) of `topic`. 0, or -ENOMEM. */
typedef int (*topic_partitions_fill_fn)(struct broker_req *r, const char *topic,
                                        const void *req_partition, void *resp_partition);

struct topic_partitions_shape {
    size_t req_topic_size, req_name, req_parts, req_part_size; /* name: struct kstr */
    size_t resp_topic_size, resp_name, resp_parts, resp_part_size;
    void (*resp_topic_init)(void *topic);
    topic_partitions_fill_fn fill;
};

/* The shape of a request topic type ReqT (name field req_name, array req_parts) answered by a
 * response topic type RespT (resp_name, resp_parts) initialised by init. */
#define TOPIC_PARTITIONS_SHAPE(ReqT, req_name_, req_parts_, RespT, resp_name_, resp_parts_, init,  \
                               fill_)                                                              \
    {                                                                                              \
        .req_topic_size = sizeof(ReqT), .req_name = offsetof(ReqT, req_name_),                     \
        .req_parts = offsetof(ReqT, req_parts_),                                                   \
        .req_part_size = sizeof(*((ReqT *)0)->req_parts_.v), .resp_topic_size = sizeof(RespT),     \
        .resp_name = offsetof(RespT, resp_name_), .resp_parts = offsetof(RespT, resp_parts_),      \
        .resp_part_size = sizeof(*((RespT *)0)->resp_parts_.v),                                    \
        .resp_topic_init = (void (*)(void *))(init), .fill = (fill_),                              \
    }

/*
 * Builds *resp_topics (a generated topics array) answering *req_topics (the request's topics
 * array) as the shape says. 0; or, out of memory, closes the connection (r is completed) and
 * returns -ENOMEM. The arrays live in r's arena.
 */
int topic_partitions_answer(struct broker_req *r, const struct topic_partitions_shape *shape,
                            const void *req_topics, void *resp_topics);

#endif
