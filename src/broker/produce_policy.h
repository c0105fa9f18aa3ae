/*
 * Topic policies that must look inside a producer's (validated) batch, as Kafka's
 * LogValidator does: records of a compacted topic need keys (INVALID_RECORD); CreateTime
 * timestamps must lie within message.timestamp.before/after.max.ms of the broker's clock
 * (INVALID_TIMESTAMP); a topic whose compression.type names a codec gets its batches
 * re-compressed with it. Without any of these the batch is not touched (the common case
 * costs a few atomic loads). Worker thread.
 */
#ifndef GREGOR_BROKER_PRODUCE_POLICY_H
#define GREGOR_BROKER_PRODUCE_POLICY_H

#include <stdint.h>

#include "broker/partition.h"
#include "proto/codec.h"

/*
 * Applies p's policies to the single batch in *rec. When the batch is re-encoded, *rebuilt
 * receives a malloc'ed buffer that *rec then points to (the caller frees it; if *rebuilt
 * already held an earlier conversion it is freed here). Returns a Kafka error code.
 */
int16_t produce_policy_apply(struct partition *p, int64_t now_ms, struct krecords *rec,
                             uint8_t **rebuilt);

#endif
