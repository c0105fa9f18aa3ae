/*
 * Batch builder. Records are encoded as they are added; the header is written last because
 * it holds counts, timestamps and the CRC over the (possibly compressed) payload.
 */
#include "record/record_builder.h"

#include <stdlib.h>
#include <string.h>

#include "record/byteorder.h"
#include "record/compression.h"
#include "record/crc32c.h"
#include "record/varint.h"

void record_builder_init(struct record_builder *b, int codec)
{
    memset(b, 0, sizeof(*b));
    b->codec = codec;
    b->last_offset_delta = -1;
    b->base_timestamp = -1;
    b->max_timestamp = -1;
    b->producer_id = -1;
    b->producer_epoch = -1;
    b->base_sequence = -1;
    b->partition_leader_epoch = -1;
}

static int reserve(struct record_builder *b, size_t n)
{
    if (b->cap - b->len >= n)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *d = realloc(b->records, cap);
    if (!d)
        return RECORD_ERR_NOMEM;
    b->records = d;
    b->cap = cap;
    return 0;
}

static size_t put_sized(uint8_t *p, const void *data, int32_t len)
{
    if (!data)
        return varint_write(p, -1);
    size_t n = varint_write(p, len);
    memcpy(p + n, data, (size_t)len);
    return n + (size_t)len;
}

int record_builder_add_delta(struct record_builder *b, int32_t offset_delta, int64_t timestamp,
                             const void *key, int32_t key_len, const void *value, int32_t value_len,
                             const struct record_header *headers, int32_t nheaders)
{
    if (b->count == 0 && !b->fixed_base_timestamp)
        b->base_timestamp = timestamp;
    size_t body_max =
        1 + 10 + 5 + 5 + (key ? (size_t)key_len : 0) + 5 + (value ? (size_t)value_len : 0) + 5;
    for (int32_t i = 0; i < nheaders; i++)
        body_max +=
            10 + (size_t)headers[i].key_len + (headers[i].value ? (size_t)headers[i].value_len : 0);
    if (reserve(b, body_max + 5) < 0)
        return RECORD_ERR_NOMEM;
    uint8_t *body = malloc(body_max);
    if (!body)
        return RECORD_ERR_NOMEM;
    size_t n = 0;
    body[n++] = 0;
    n += varlong_write(body + n, timestamp - b->base_timestamp);
    n += varint_write(body + n, offset_delta);
    n += put_sized(body + n, key, key_len);
    n += put_sized(body + n, value, value_len);
    n += varint_write(body + n, nheaders);
    for (int32_t i = 0; i < nheaders; i++) {
        n += put_sized(body + n, headers[i].key, headers[i].key_len);
        n += put_sized(body + n, headers[i].value, headers[i].value_len);
    }
    b->len += varint_write(b->records + b->len, (int32_t)n);
    memcpy(b->records + b->len, body, n);
    b->len += n;
    free(body);
    b->count++;
    b->last_offset_delta = offset_delta;
    if (timestamp > b->max_timestamp)
        b->max_timestamp = timestamp;
    return 0;
}

int record_builder_add(struct record_builder *b, int64_t timestamp, const void *key,
                       int32_t key_len, const void *value, int32_t value_len,
                       const struct record_header *headers, int32_t nheaders)
{
    return record_builder_add_delta(b, b->last_offset_delta + 1, timestamp, key, key_len, value,
                                    value_len, headers, nheaders);
}

int record_builder_finish(struct record_builder *b, uint8_t **out, size_t *out_len)
{
    const uint8_t *payload = b->records;
    size_t payload_len = b->len;
    uint8_t *compressed = NULL;
    if (b->codec != 0) {
        int rc = record_compress(b->codec, b->records, b->len, &compressed, &payload_len);
        if (rc < 0)
            return rc;
        payload = compressed;
    }
    size_t size = RECORD_BATCH_HEADER_SIZE + payload_len;
    uint8_t *p = malloc(size);
    if (!p) {
        free(compressed);
        return RECORD_ERR_NOMEM;
    }
    be64_store(p + RB_OFF_BASE_OFFSET, (uint64_t)b->base_offset);
    be32_store(p + RB_OFF_LENGTH, (uint32_t)(size - RECORD_BATCH_LOG_OVERHEAD));
    be32_store(p + RB_OFF_LEADER_EPOCH, (uint32_t)b->partition_leader_epoch);
    p[RB_OFF_MAGIC] = RECORD_BATCH_MAGIC_V2;
    be16_store(p + RB_OFF_ATTRIBUTES,
               (uint16_t)((b->attributes & ~RECORD_ATTR_COMPRESSION_MASK) | b->codec));
    be32_store(p + RB_OFF_LAST_OFFSET_DELTA, (uint32_t)(b->count ? b->last_offset_delta : 0));
    be64_store(p + RB_OFF_BASE_TIMESTAMP, (uint64_t)b->base_timestamp);
    be64_store(p + RB_OFF_MAX_TIMESTAMP, (uint64_t)b->max_timestamp);
    be64_store(p + RB_OFF_PRODUCER_ID, (uint64_t)b->producer_id);
    be16_store(p + RB_OFF_PRODUCER_EPOCH, (uint16_t)b->producer_epoch);
    be32_store(p + RB_OFF_BASE_SEQUENCE, (uint32_t)b->base_sequence);
    be32_store(p + RB_OFF_RECORD_COUNT, (uint32_t)b->count);
    memcpy(p + RECORD_BATCH_HEADER_SIZE, payload, payload_len);
    free(compressed);
    be32_store(p + RB_OFF_CRC, crc32c(p + RB_OFF_ATTRIBUTES, size - RB_OFF_ATTRIBUTES));
    *out = p;
    *out_len = size;
    return 0;
}

void record_builder_release(struct record_builder *b)
{
    free(b->records);
    b->records = NULL;
    b->len = b->cap = 0;
}

int record_builder_copy_record(struct record_builder *b, const struct record_batch_header *h,
                               const struct record *rec)
{
    struct record_header hdrs[64];
    struct record_header *hp =
        rec->header_count <= 64 ? hdrs : malloc((size_t)rec->header_count * sizeof(*hp));
    if (hp == NULL)
        return RECORD_ERR_NOMEM;
    const uint8_t *p = rec->headers;
    int32_t n = 0;
    while (n < rec->header_count && record_header_next(&p, rec->headers_end, &hp[n]) == 1)
        n++;
    int rc = record_builder_add_delta(b, (int32_t)(rec->offset - h->base_offset), rec->timestamp,
                                      rec->key, rec->key_len, rec->value, rec->value_len, hp, n);
    if (hp != hdrs)
        free(hp);
    return rc;
}

void record_builder_init_like(struct record_builder *b, const struct record_batch_header *h,
                              int codec)
{
    record_builder_init(b, codec);
    b->attributes = h->attributes & ~RECORD_ATTR_COMPRESSION_MASK;
    b->producer_id = h->producer_id;
    b->producer_epoch = h->producer_epoch;
    b->base_sequence = h->base_sequence;
    b->partition_leader_epoch = h->partition_leader_epoch;
    b->base_offset = h->base_offset;
    if (h->attributes & RECORD_ATTR_DELETE_HORIZON)
        record_builder_set_delete_horizon(b, h->base_timestamp);
}

void record_builder_set_delete_horizon(struct record_builder *b, int64_t horizon_ms)
{
    b->attributes |= RECORD_ATTR_DELETE_HORIZON;
    b->base_timestamp = horizon_ms;
    b->fixed_base_timestamp = true;
}
