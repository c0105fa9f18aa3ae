/*
 * Builds magic-2 batches: used by the broker where it must write its own records (control
 * batches, legacy conversion, compaction output) and by tests. The builder owns a growing
 * buffer of uncompressed records; record_builder_finish() produces a complete batch with
 * correct lengths, counts and CRC. Not thread-safe per builder.
 */
#ifndef GREGOR_RECORD_RECORD_BUILDER_H
#define GREGOR_RECORD_RECORD_BUILDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/record_iter.h"

struct record_builder {
    uint8_t *records; /* encoded records, uncompressed */
    size_t len, cap;
    int32_t count;
    int32_t last_offset_delta;
    int64_t base_timestamp, max_timestamp;
    int codec;
    int16_t attributes; /* extra attribute bits (transactional, control, timestamp type) */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t partition_leader_epoch;
    int64_t base_offset;
    bool fixed_base_timestamp; /* base_timestamp holds a delete horizon, not the first record's */
};

/* Defaults: base offset 0, no producer id (-1), leader epoch -1, CreateTime. */
void record_builder_init(struct record_builder *b, int codec);

/* Appends a record with offset delta = count (or `offset_delta` >= previous with _delta).
 * key/value may be NULL (null). headers: n pairs, value NULL = null. 0 or RECORD_ERR_NOMEM. */
int record_builder_add(struct record_builder *b, int64_t timestamp, const void *key,
                       int32_t key_len, const void *value, int32_t value_len,
                       const struct record_header *headers, int32_t nheaders);
int record_builder_add_delta(struct record_builder *b, int32_t offset_delta, int64_t timestamp,
                             const void *key, int32_t key_len, const void *value, int32_t value_len,
                             const struct record_header *headers, int32_t nheaders);

/* Copies rec (read from a batch with header h) with its offset delta, timestamp and headers:
 * what re-encoding a batch (compaction, re-compression) needs. 0 or a record_error. */
int record_builder_copy_record(struct record_builder *b, const struct record_batch_header *h,
                               const struct record *rec);

/* Starts a builder for re-encoding the batch with header h with `codec`: same base offset,
 * producer id/epoch/base sequence, leader epoch and attribute bits other than compression. */
void record_builder_init_like(struct record_builder *b, const struct record_batch_header *h,
                              int codec);

/* KIP-534: marks the batch with a delete horizon (attribute bit 6); its base timestamp then
 * holds horizon_ms and record timestamps are deltas from it. Call before adding records.
 * record_builder_init_like keeps the horizon of a batch that has one. */
void record_builder_set_delete_horizon(struct record_builder *b, int64_t horizon_ms);

/* Produces the batch in a malloc'ed buffer (*out, caller frees). The builder may be reused
 * only after record_builder_release. 0 or a record_error. */
int record_builder_finish(struct record_builder *b, uint8_t **out, size_t *out_len);

void record_builder_release(struct record_builder *b);

#endif
