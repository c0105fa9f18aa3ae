/*
 * Iteration over the records of one magic-2 batch: offset, timestamp, key, value, headers.
 * Compressed batches are decompressed into a buffer the iterator owns (bounded by the caller's
 * limit) and freed by record_iter_release(). Key/value/header pointers point into the batch or
 * that buffer and stay valid until release. Not thread-safe per iterator; no shared state.
 */
#ifndef GREGOR_RECORD_RECORD_ITER_H
#define GREGOR_RECORD_RECORD_ITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/record_batch.h"

struct record {
    int64_t offset;
    int64_t timestamp; /* batch maxTimestamp for LogAppendTime batches */
    int8_t attributes;
    const uint8_t *key; /* NULL when key_len == -1 */
    int32_t key_len;
    const uint8_t *value; /* NULL when value_len == -1 (tombstone) */
    int32_t value_len;
    int32_t header_count;
    const uint8_t *headers; /* header_count encoded headers; walk with record_header_next */
    const uint8_t *headers_end;
};

struct record_header {
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value; /* NULL when value_len == -1 */
    int32_t value_len;
};

struct record_iter {
    struct record_batch_header batch;
    const uint8_t *p, *end;
    int32_t remaining;
    uint8_t *owned; /* decompressed records, or NULL */
};

/*
 * Starts iterating the batch at batch[0..len) (one whole batch, header included; the CRC is
 * not re-checked here). max_decompressed bounds the decompressed size. 0 or a record_error;
 * release the iterator in every case.
 */
int record_iter_init(struct record_iter *it, const uint8_t *batch, size_t len,
                     size_t max_decompressed);

/* Same, over an already decompressed records region for a batch whose header is known. */
void record_iter_init_region(struct record_iter *it, const struct record_batch_header *h,
                             const uint8_t *records, size_t len);

/* 1 and *out filled, 0 at the end, or RECORD_ERR_CORRUPT. */
int record_iter_next(struct record_iter *it, struct record *out);

void record_iter_release(struct record_iter *it);

/* Walks a record's headers: *pp starts at rec->headers. 1, 0 at end, or RECORD_ERR_CORRUPT. */
int record_header_next(const uint8_t **pp, const uint8_t *end, struct record_header *out);

#endif
