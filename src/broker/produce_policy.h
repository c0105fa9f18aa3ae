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

#include "base/arena.h"
#include "broker/partition.h"
#include "proto/codec.h"

/* One rejected record (KIP-467): its index in the batch and why. */
struct produce_record_error {
    int32_t batch_index;
    const char *message;
};

/*
 * What a rejected batch reports besides its error code: every bad record (Kafka lists them
 * all) and the partition's error message. Everything is allocated in `arena` (the request's).
 */
struct produce_policy_report {
    struct arena *arena;
    size_t n_errors;
    size_t cap;
    struct produce_record_error *errors;
    const char *message; /* NULL when the batch was not rejected record by record */
};

/*
 * Applies p's policies to the single batch in *rec. When the batch is re-encoded, *rebuilt
 * receives a malloc'ed buffer that *rec then points to (the caller frees it; if *rebuilt
 * already held an earlier conversion it is freed here). Records that break a policy are all
 * listed in *report (as Kafka's LogValidator does) and the batch is refused: INVALID_TIMESTAMP
 * if any record's timestamp is out of range, else INVALID_RECORD. Returns a Kafka error code.
 */
int16_t produce_policy_apply(struct partition *p, int64_t now_ms, struct krecords *rec,
                             uint8_t **rebuilt, struct produce_policy_report *report);

#endif
