/*
 * Magic-2 batch header decoding, validation and in-place edits.
 *
 * Invariant of every function here: no byte outside [p, p + len) is read, whatever the input;
 * lengths from the buffer are checked against what is left before they are used.
 */
#include "record/record_batch.h"

#include <assert.h>
#include <stdbool.h>

#include "record/byteorder.h"
#include "record/crc32c.h"
#include "record/varint.h"

/* The v2 header ends with the 4-byte record count; the log overhead is baseOffset(8) +
 * batchLength(4). */
static_assert(RECORD_BATCH_HEADER_SIZE == RB_OFF_RECORD_COUNT + 4, "record batch header size");
static_assert(RECORD_BATCH_LOG_OVERHEAD == 8 + 4, "record batch log overhead");

/* Bytes checksummed before the records in them are validated: inside a 32 KiB L1 data cache,
 * and one round of crc32c.c's three 8 KiB streams. */
#define RECORD_CRC_CHUNK ((size_t)24 << 10)

int record_error_to_kafka(int err)
{
    switch (err) {
    case 0:
        return 0;
    case RECORD_ERR_CORRUPT:
    case RECORD_ERR_CRC:
    case RECORD_ERR_TRUNCATED:
        return 2; /* CORRUPT_MESSAGE */
    case RECORD_ERR_INVALID:
        return 87; /* INVALID_RECORD */
    case RECORD_ERR_TOO_LARGE:
        return 10; /* MESSAGE_TOO_LARGE */
    case RECORD_ERR_MAGIC:
        return 43; /* UNSUPPORTED_FOR_MESSAGE_FORMAT */
    case RECORD_ERR_UNSUPPORTED_CODEC:
        return 76; /* UNSUPPORTED_COMPRESSION_TYPE */
    default:
        return -1; /* UNKNOWN_SERVER_ERROR */
    }
}

const char *record_error_name(int err)
{
    switch (err) {
    case RECORD_ERR_CORRUPT:
        return "corrupt record batch";
    case RECORD_ERR_CRC:
        return "record batch CRC mismatch";
    case RECORD_ERR_INVALID:
        return "invalid record";
    case RECORD_ERR_TOO_LARGE:
        return "record batch too large";
    case RECORD_ERR_MAGIC:
        return "unsupported magic";
    case RECORD_ERR_UNSUPPORTED_CODEC:
        return "unsupported compression";
    case RECORD_ERR_TRUNCATED:
        return "truncated record batch";
    case RECORD_ERR_NOMEM:
        return "out of memory";
    default:
        return "unknown record error";
    }
}

int record_batch_header_parse(const uint8_t *p, size_t len, struct record_batch_header *out)
{
    if (len < RECORD_BATCH_HEADER_SIZE)
        return RECORD_ERR_TRUNCATED;
    out->base_offset = (int64_t)be64_load(p + RB_OFF_BASE_OFFSET);
    out->batch_length = (int32_t)be32_load(p + RB_OFF_LENGTH);
    out->partition_leader_epoch = (int32_t)be32_load(p + RB_OFF_LEADER_EPOCH);
    out->magic = (int8_t)p[RB_OFF_MAGIC];
    out->crc = be32_load(p + RB_OFF_CRC);
    out->attributes = (int16_t)be16_load(p + RB_OFF_ATTRIBUTES);
    out->last_offset_delta = (int32_t)be32_load(p + RB_OFF_LAST_OFFSET_DELTA);
    out->base_timestamp = (int64_t)be64_load(p + RB_OFF_BASE_TIMESTAMP);
    out->max_timestamp = (int64_t)be64_load(p + RB_OFF_MAX_TIMESTAMP);
    out->producer_id = (int64_t)be64_load(p + RB_OFF_PRODUCER_ID);
    out->producer_epoch = (int16_t)be16_load(p + RB_OFF_PRODUCER_EPOCH);
    out->base_sequence = (int32_t)be32_load(p + RB_OFF_BASE_SEQUENCE);
    out->record_count = (int32_t)be32_load(p + RB_OFF_RECORD_COUNT);
    if (out->magic != RECORD_BATCH_MAGIC_V2)
        return RECORD_ERR_MAGIC;
    if (out->batch_length < RECORD_BATCH_MIN_LENGTH)
        return RECORD_ERR_CORRUPT;
    return 0;
}

/* Reads a varint length >= min (-1 for nullable) and skips that many bytes, staying below end. */
static int skip_sized(const uint8_t **pp, const uint8_t *end, int32_t min)
{
    int32_t n;
    size_t used = varint_read(*pp, end, &n);
    if (used == 0 || n < min)
        return RECORD_ERR_CORRUPT;
    *pp += used;
    if (n > 0) {
        if ((size_t)(end - *pp) < (size_t)n)
            return RECORD_ERR_CORRUPT;
        *pp += n;
    }
    return 0;
}

/* Validates one record's body [p, end) (after its length varint); returns its offset delta
 * through *delta. */
static int record_body_validate(const uint8_t *p, const uint8_t *end, int32_t *delta)
{
    int64_t ts_delta;
    int32_t header_count;
    size_t n;
    int rc;

    if (p >= end)
        return RECORD_ERR_CORRUPT;
    p++; /* attributes */
    if ((n = varlong_read(p, end, &ts_delta)) == 0)
        return RECORD_ERR_CORRUPT;
    p += n;
    if ((n = varint_read(p, end, delta)) == 0)
        return RECORD_ERR_CORRUPT;
    p += n;
    if ((rc = skip_sized(&p, end, -1)) < 0) /* key */
        return rc;
    if ((rc = skip_sized(&p, end, -1)) < 0) /* value */
        return rc;
    if ((n = varint_read(p, end, &header_count)) == 0 || header_count < 0)
        return RECORD_ERR_CORRUPT;
    p += n;
    for (int32_t i = 0; i < header_count; i++) {
        if ((rc = skip_sized(&p, end, 0)) < 0) /* header key: never null */
            return rc;
        if ((rc = skip_sized(&p, end, -1)) < 0)
            return rc;
    }
    return p == end ? 0 : RECORD_ERR_CORRUPT;
}

/* A walk over the records of a batch, resumable so it can trail the CRC chunk by chunk. */
struct region_walk {
    const uint8_t *p, *end;
    int32_t i, count, last_offset_delta;
    int64_t prev_delta;
    bool sequential;
};

/* Validates the records of w that start before `limit` (all of them when limit is w->end). */
static int region_walk_until(struct region_walk *w, const uint8_t *limit)
{
    while (w->i < w->count && w->p < limit) {
        int32_t rec_len, delta;
        size_t n = varint_read(w->p, w->end, &rec_len);
        if (n == 0 || rec_len < 0 || (size_t)(w->end - w->p - n) < (size_t)rec_len)
            return RECORD_ERR_CORRUPT;
        w->p += n;
        int rc = record_body_validate(w->p, w->p + rec_len, &delta);
        if (rc < 0)
            return rc;
        if (delta <= w->prev_delta || delta > w->last_offset_delta)
            return RECORD_ERR_INVALID;
        if (w->sequential && delta != w->i)
            return RECORD_ERR_INVALID;
        w->prev_delta = delta;
        w->p += rec_len;
        w->i++;
    }
    return 0;
}

static int region_walk_finish(struct region_walk *w)
{
    int rc = region_walk_until(w, w->end);
    if (rc < 0)
        return rc;
    if (w->i < w->count)
        return RECORD_ERR_CORRUPT; /* (only reached when p == end: the records ran out) */
    return w->p == w->end ? 0 : RECORD_ERR_CORRUPT;
}

int record_region_validate(const uint8_t *p, size_t len, int32_t count, int32_t last_offset_delta,
                           bool sequential)
{
    struct region_walk w = {.p = p,
                            .end = p + len,
                            .count = count,
                            .last_offset_delta = last_offset_delta,
                            .prev_delta = -1,
                            .sequential = sequential};
    return region_walk_finish(&w);
}

void record_batch_write_empty(const struct record_batch_header *h,
                              uint8_t out[RECORD_BATCH_HEADER_SIZE])
{
    assert(h->magic == RECORD_BATCH_MAGIC_V2 && h->last_offset_delta >= 0); /* Kafka: v2 only */
    int16_t attrs = h->attributes &
                    (RECORD_ATTR_LOG_APPEND_TIME | RECORD_ATTR_TRANSACTIONAL | RECORD_ATTR_CONTROL);
    be64_store(out + RB_OFF_BASE_OFFSET, (uint64_t)h->base_offset);
    be32_store(out + RB_OFF_LENGTH, (uint32_t)RECORD_BATCH_MIN_LENGTH);
    be32_store(out + RB_OFF_LEADER_EPOCH, (uint32_t)h->partition_leader_epoch);
    out[RB_OFF_MAGIC] = RECORD_BATCH_MAGIC_V2;
    be16_store(out + RB_OFF_ATTRIBUTES, (uint16_t)attrs);
    be32_store(out + RB_OFF_LAST_OFFSET_DELTA, (uint32_t)h->last_offset_delta);
    be64_store(out + RB_OFF_BASE_TIMESTAMP, (uint64_t)(int64_t)-1);
    be64_store(out + RB_OFF_MAX_TIMESTAMP, (uint64_t)h->max_timestamp);
    be64_store(out + RB_OFF_PRODUCER_ID, (uint64_t)h->producer_id);
    be16_store(out + RB_OFF_PRODUCER_EPOCH, (uint16_t)h->producer_epoch);
    be32_store(out + RB_OFF_BASE_SEQUENCE, (uint32_t)h->base_sequence);
    be32_store(out + RB_OFF_RECORD_COUNT, 0);
    be32_store(out + RB_OFF_CRC,
               crc32c(out + RB_OFF_ATTRIBUTES, RECORD_BATCH_HEADER_SIZE - RB_OFF_ATTRIBUTES));
}

static int header_counts_validate(const struct record_batch_header *h,
                                  enum record_validate_mode mode)
{
    if (h->last_offset_delta < 0 || h->record_count < 0)
        return RECORD_ERR_INVALID;
    if (mode == RECORD_VALIDATE_PRODUCE) {
        if (h->record_count == 0 || (int64_t)h->last_offset_delta + 1 != h->record_count)
            return RECORD_ERR_INVALID;
    } else if ((int64_t)h->record_count > (int64_t)h->last_offset_delta + 1) {
        return RECORD_ERR_INVALID;
    }
    return 0;
}

int record_batch_validate(const uint8_t *p, size_t len, enum record_validate_mode mode,
                          size_t max_batch_bytes, struct record_batch_header *out)
{
    struct record_batch_header h;
    int rc = record_batch_header_parse(p, len, &h);
    if (rc < 0)
        return rc;
    size_t size = record_batch_size(&h);
    if (size > len)
        return RECORD_ERR_TRUNCATED;
    if (max_batch_bytes && size > max_batch_bytes)
        return RECORD_ERR_TOO_LARGE;
    int counts_rc = header_counts_validate(&h, mode);
    int codec = record_batch_compression(&h);
    /* Uncompressed records are walked right behind the CRC, a chunk at a time, while the
     * chunk is still in the L1 cache (one pass over the batch instead of two). The errors keep
     * their order: CRC, counts, codec, then the records. */
    struct region_walk w = {.p = p + RECORD_BATCH_HEADER_SIZE,
                            .end = p + size,
                            .count = h.record_count,
                            .last_offset_delta = h.last_offset_delta,
                            .prev_delta = -1,
                            .sequential = mode == RECORD_VALIDATE_PRODUCE};
    bool walk = counts_rc == 0 && codec == RECORD_COMPRESSION_NONE;
    int walk_rc = 0;
    uint32_t crc = 0;
    for (const uint8_t *c = p + RB_OFF_ATTRIBUTES, *end = p + size; c < end;) {
        size_t k = (size_t)(end - c) < RECORD_CRC_CHUNK ? (size_t)(end - c) : RECORD_CRC_CHUNK;
        crc = crc32c_update(crc, c, k);
        c += k;
        if (walk && walk_rc == 0)
            walk_rc = region_walk_until(&w, c);
    }
    if (crc != h.crc)
        return RECORD_ERR_CRC;
    if (counts_rc < 0)
        return counts_rc;
    if (codec > RECORD_COMPRESSION_ZSTD)
        return RECORD_ERR_UNSUPPORTED_CODEC;
    if (walk && (rc = walk_rc < 0 ? walk_rc : region_walk_finish(&w)) < 0)
        return rc;
    if (out)
        *out = h;
    return 0;
}

int record_batches_validate(const uint8_t *buf, size_t len, enum record_validate_mode mode,
                            size_t max_batch_bytes)
{
    int count = 0;
    size_t pos = 0;
    if (len == 0)
        return RECORD_ERR_CORRUPT;
    while (pos < len) {
        struct record_batch_header h;
        int rc = record_batch_validate(buf + pos, len - pos, mode, max_batch_bytes, &h);
        if (rc < 0)
            return rc;
        pos += record_batch_size(&h);
        count++;
    }
    return count;
}

void record_batch_set_base_offset(uint8_t *batch, int64_t base_offset)
{
    be64_store(batch + RB_OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void record_batch_set_leader_epoch(uint8_t *batch, int32_t epoch)
{
    be32_store(batch + RB_OFF_LEADER_EPOCH, (uint32_t)epoch);
}

void record_batch_update_crc(uint8_t *batch)
{
    size_t size = (size_t)(int32_t)be32_load(batch + RB_OFF_LENGTH) + RECORD_BATCH_LOG_OVERHEAD;
    be32_store(batch + RB_OFF_CRC, crc32c(batch + RB_OFF_ATTRIBUTES, size - RB_OFF_ATTRIBUTES));
}

void record_batch_set_log_append_time(uint8_t *batch, int64_t now_ms)
{
    uint16_t attrs = be16_load(batch + RB_OFF_ATTRIBUTES);
    be16_store(batch + RB_OFF_ATTRIBUTES, attrs | RECORD_ATTR_LOG_APPEND_TIME);
    be64_store(batch + RB_OFF_MAX_TIMESTAMP, (uint64_t)now_ms);
    record_batch_update_crc(batch);
}
