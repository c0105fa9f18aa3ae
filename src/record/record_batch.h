/*
 * Magic-2 record batches (Kafka message format v2): the 61-byte header, validation of batches
 * as received from a producer or read back from disk, and the in-place edits a broker makes on
 * append (base offset, partition leader epoch, LogAppendTime).
 *
 * Buffers are owned by the caller; nothing here allocates. All functions are pure and may be
 * called from any thread.
 */
#ifndef GREGOR_RECORD_RECORD_BATCH_H
#define GREGOR_RECORD_RECORD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RECORD_BATCH_HEADER_SIZE 61
#define RECORD_BATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength */
#define RECORD_BATCH_MAGIC_V2 2
/* batchLength counts from partitionLeaderEpoch: the smallest legal value. */
#define RECORD_BATCH_MIN_LENGTH (RECORD_BATCH_HEADER_SIZE - RECORD_BATCH_LOG_OVERHEAD)

/* Byte offsets of header fields (section 6.1 of the protocol notes). */
#define RB_OFF_BASE_OFFSET 0
#define RB_OFF_LENGTH 8
#define RB_OFF_LEADER_EPOCH 12
#define RB_OFF_MAGIC 16
#define RB_OFF_CRC 17
#define RB_OFF_ATTRIBUTES 21
#define RB_OFF_LAST_OFFSET_DELTA 23
#define RB_OFF_BASE_TIMESTAMP 27
#define RB_OFF_MAX_TIMESTAMP 35
#define RB_OFF_PRODUCER_ID 43
#define RB_OFF_PRODUCER_EPOCH 51
#define RB_OFF_BASE_SEQUENCE 53
#define RB_OFF_RECORD_COUNT 57

/* Attribute bits. */
#define RECORD_ATTR_COMPRESSION_MASK 0x07
#define RECORD_ATTR_LOG_APPEND_TIME 0x08
#define RECORD_ATTR_TRANSACTIONAL 0x10
#define RECORD_ATTR_CONTROL 0x20
#define RECORD_ATTR_DELETE_HORIZON 0x40

enum record_compression {
    RECORD_COMPRESSION_NONE = 0,
    RECORD_COMPRESSION_GZIP = 1,
    RECORD_COMPRESSION_SNAPPY = 2,
    RECORD_COMPRESSION_LZ4 = 3,
    RECORD_COMPRESSION_ZSTD = 4,
};

/*
 * Named errors of the record layer. Negative and far below errno values so both can travel in
 * the same int. record_error_to_kafka() maps them to Kafka error codes for responses.
 */
enum record_error {
    RECORD_ERR_CORRUPT = -1001,   /* structure broken: lengths, varints -> CORRUPT_MESSAGE */
    RECORD_ERR_CRC = -1002,       /* CRC-32C mismatch -> CORRUPT_MESSAGE */
    RECORD_ERR_INVALID = -1003,   /* well-formed but illegal (counts, deltas) -> INVALID_RECORD */
    RECORD_ERR_TOO_LARGE = -1004, /* over a size limit -> MESSAGE_TOO_LARGE */
    RECORD_ERR_MAGIC = -1005,     /* not magic 2 -> UNSUPPORTED_FOR_MESSAGE_FORMAT */
    RECORD_ERR_UNSUPPORTED_CODEC = -1006, /* compression 5..7 -> UNSUPPORTED_COMPRESSION_TYPE */
    RECORD_ERR_TRUNCATED = -1007,         /* buffer ends inside a batch -> CORRUPT_MESSAGE */
    RECORD_ERR_NOMEM = -1008,
};

/* Kafka error code (int16 in responses) for a record_error; -1 (UNKNOWN_SERVER_ERROR) else. */
int record_error_to_kafka(int err);
const char *record_error_name(int err);

/* Every header field, host byte order. */
struct record_batch_header {
    int64_t base_offset;
    int32_t batch_length;
    int32_t partition_leader_epoch;
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
};

static inline int record_batch_compression(const struct record_batch_header *h)
{
    return h->attributes & RECORD_ATTR_COMPRESSION_MASK;
}

static inline int64_t record_batch_last_offset(const struct record_batch_header *h)
{
    return h->base_offset + h->last_offset_delta;
}

static inline size_t record_batch_size(const struct record_batch_header *h)
{
    return (size_t)h->batch_length + RECORD_BATCH_LOG_OVERHEAD;
}

/* Decodes the 61-byte header at p (len bytes available). Checks only that the header fits,
 * magic == 2 and batchLength is at least the header. 0 or a record_error. */
int record_batch_header_parse(const uint8_t *p, size_t len, struct record_batch_header *out);

/*
 * Writes at out the empty batch Kafka's cleaner keeps for an active producer (MemoryRecords
 * filterTo with RETAIN_EMPTY, DefaultRecordBatch.writeEmptyHeader): h's base offset, last
 * offset delta, partition leader epoch, producer id, epoch, base sequence, timestamp type,
 * transactional and control flags; no compression, no delete horizon, base timestamp -1 and
 * max timestamp h->max_timestamp; record count 0, batchLength RECORD_BATCH_MIN_LENGTH, and the
 * CRC-32C over attributes..end.
 */
void record_batch_write_empty(const struct record_batch_header *h,
                              uint8_t out[RECORD_BATCH_HEADER_SIZE]);

/* Validation strictness. */
enum record_validate_mode {
    /* A producer's batch: recordCount > 0 and == lastOffsetDelta + 1, offset deltas 0..n-1. */
    RECORD_VALIDATE_PRODUCE,
    /* A batch read back from a log (recovery, follower fetch): compaction may have removed
     * records, so counts may be smaller and deltas sparse, but must increase. */
    RECORD_VALIDATE_STORED,
};

/*
 * Fully validates the single batch at p, which must span exactly record_batch_size() bytes
 * within len: header, CRC-32C, counts, and for uncompressed batches every record's lengths,
 * varints, offset deltas and header counts. `max_batch_bytes` (e.g. max.message.bytes) limits
 * the batch size; 0 = no limit. Fills *out (may be NULL). Returns 0 or a record_error.
 */
int record_batch_validate(const uint8_t *p, size_t len, enum record_validate_mode mode,
                          size_t max_batch_bytes, struct record_batch_header *out);

/*
 * Validates every batch in buf[0..len) (a produce request's records field). Returns the
 * number of batches (> 0), or a record_error; an empty buffer is RECORD_ERR_CORRUPT.
 */
int record_batches_validate(const uint8_t *buf, size_t len, enum record_validate_mode mode,
                            size_t max_batch_bytes);

/*
 * Walks the records of an uncompressed records region (the bytes after the 61-byte header),
 * checking that exactly `count` records fill it and each stays in bounds. Offset deltas must
 * increase and not exceed last_offset_delta; with `sequential`, they must be 0,1,2,...
 * Used for uncompressed batches and for decompressed payloads. 0 or a record_error.
 */
int record_region_validate(const uint8_t *p, size_t len, int32_t count, int32_t last_offset_delta,
                           bool sequential);

/* In-place edits. Base offset and leader epoch are not covered by the CRC. */
void record_batch_set_base_offset(uint8_t *batch, int64_t base_offset);
void record_batch_set_leader_epoch(uint8_t *batch, int32_t epoch);

/* Switches the batch to LogAppendTime with maxTimestamp = now_ms (as Kafka's
 * DefaultRecordBatch.setMaxTimestamp does) and recomputes the CRC. */
void record_batch_set_log_append_time(uint8_t *batch, int64_t now_ms);

/* Recomputes and stores the CRC of a whole batch (e.g. after building or editing). */
void record_batch_update_crc(uint8_t *batch);

#endif
