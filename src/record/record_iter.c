/*
 * Record iterator. Invariant: it->p never passes it->end, and every length read from the data
 * is checked against the bytes left before a pointer is formed from it.
 */
#include "record/record_iter.h"

#include <stdlib.h>

#include "record/compression.h"
#include "record/varint.h"

void record_iter_init_region(struct record_iter *it, const struct record_batch_header *h,
                             const uint8_t *records, size_t len)
{
    it->batch = *h;
    it->p = records;
    it->end = records + len;
    it->remaining = h->record_count;
    it->owned = NULL;
}

int record_iter_init(struct record_iter *it, const uint8_t *batch, size_t len,
                     size_t max_decompressed)
{
    struct record_batch_header h;
    it->owned = NULL;
    it->p = it->end = batch;
    it->remaining = 0;
    int rc = record_batch_header_parse(batch, len, &h);
    if (rc < 0)
        return rc;
    if (record_batch_size(&h) > len)
        return RECORD_ERR_TRUNCATED;
    const uint8_t *region = batch + RECORD_BATCH_HEADER_SIZE;
    size_t region_len = record_batch_size(&h) - RECORD_BATCH_HEADER_SIZE;
    int codec = record_batch_compression(&h);
    if (codec == RECORD_COMPRESSION_NONE) {
        record_iter_init_region(it, &h, region, region_len);
        return 0;
    }
    uint8_t *plain;
    size_t plain_len;
    rc = record_decompress(codec, region, region_len, max_decompressed, &plain, &plain_len);
    if (rc < 0)
        return rc;
    record_iter_init_region(it, &h, plain, plain_len);
    it->owned = plain;
    return 0;
}

void record_iter_release(struct record_iter *it)
{
    free(it->owned);
    it->owned = NULL;
}

static int read_sized(const uint8_t **pp, const uint8_t *end, int32_t min, const uint8_t **data,
                      int32_t *len)
{
    size_t n = varint_read(*pp, end, len);
    if (n == 0 || *len < min)
        return RECORD_ERR_CORRUPT;
    *pp += n;
    *data = NULL;
    if (*len >= 0) {
        if ((size_t)(end - *pp) < (size_t)*len)
            return RECORD_ERR_CORRUPT;
        *data = *pp;
        *pp += *len;
    }
    return 0;
}

int record_header_next(const uint8_t **pp, const uint8_t *end, struct record_header *out)
{
    if (*pp >= end)
        return 0;
    if (read_sized(pp, end, 0, &out->key, &out->key_len) < 0 ||
        read_sized(pp, end, -1, &out->value, &out->value_len) < 0)
        return RECORD_ERR_CORRUPT;
    return 1;
}

int record_iter_next(struct record_iter *it, struct record *out)
{
    if (it->remaining <= 0)
        return 0;
    int32_t rec_len, delta;
    int64_t ts_delta;
    size_t n = varint_read(it->p, it->end, &rec_len);
    if (n == 0 || rec_len < 1 || (size_t)(it->end - it->p - n) < (size_t)rec_len)
        return RECORD_ERR_CORRUPT;
    const uint8_t *p = it->p + n, *end = p + rec_len;
    out->attributes = (int8_t)*p++;
    if ((n = varlong_read(p, end, &ts_delta)) == 0)
        return RECORD_ERR_CORRUPT;
    p += n;
    if ((n = varint_read(p, end, &delta)) == 0)
        return RECORD_ERR_CORRUPT;
    p += n;
    if (read_sized(&p, end, -1, &out->key, &out->key_len) < 0 ||
        read_sized(&p, end, -1, &out->value, &out->value_len) < 0)
        return RECORD_ERR_CORRUPT;
    if ((n = varint_read(p, end, &out->header_count)) == 0 || out->header_count < 0)
        return RECORD_ERR_CORRUPT;
    out->headers = p + n;
    out->headers_end = end;
    out->offset = it->batch.base_offset + delta;
    if (it->batch.attributes & RECORD_ATTR_LOG_APPEND_TIME)
        out->timestamp = it->batch.max_timestamp;
    else
        out->timestamp = (int64_t)((uint64_t)it->batch.base_timestamp + (uint64_t)ts_delta);
    it->p = end;
    it->remaining--;
    return 1;
}
