/*
 * Which partitions this broker may serve to clients: those it leads, per the metadata image it
 * has applied (Kafka's NOT_LEADER_OR_FOLLOWER rule), and for consumers' Fetch v11+ (KIP-392)
 * also those it follows. Any worker thread.
 */
#ifndef GREGOR_BROKER_LEADERSHIP_H
#define GREGOR_BROKER_LEADERSHIP_H

#include <stdint.h>

#include "cluster/image.h"
#include "proto/codec.h"

struct broker;
struct broker_req;
struct partition;

/*
 * The hosted partition (topic by name, or by id when topic is NULL) with a reference the caller
 * drops with partition_put(), if this broker is its leader. Otherwise NULL and *err:
 * NOT_LEADER_OR_FOLLOWER when the partition exists in the cluster (another broker leads it, or
 * none does right now), else `unknown_err` (UNKNOWN_TOPIC_OR_PARTITION or UNKNOWN_TOPIC_ID).
 */
struct partition *partition_get_led(struct broker *b, const char *topic, const uint8_t *topic_id,
                                    int32_t index, int16_t unknown_err, int16_t *err);

/*
 * As partition_get_led, but a partition this broker hosts as a follower is returned too
 * (Kafka's localLogWithEpochOrThrow with fetchOnlyFromLeader=false: a consumer's Fetch v11+
 * may read a follower up to its high watermark). NOT_LEADER_OR_FOLLOWER when the partition
 * exists in the cluster but has no replica here.
 */
struct partition *partition_get_replica(struct broker *b, const char *topic,
                                        const uint8_t *topic_id, int32_t index, int16_t unknown_err,
                                        int16_t *err);

/*
 * The replicas of mp whose broker is fenced or unknown (Metadata's and
 * DescribeTopicPartitions' offline_replicas), in r's arena.
 */
struct karray_int32 broker_offline_replicas(struct broker_req *r, const struct metadata_image *img,
                                            const struct metadata_partition *mp);

#endif
