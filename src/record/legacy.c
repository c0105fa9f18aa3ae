/*
 * Legacy message-set conversion. A legacy entry is: offset int64, size int32, crc uint32
 * (CRC-32/IEEE of magic..end), magic int8, attributes int8, [timestamp int64 if magic 1],
 * key bytes (int32 length, -1 null), value bytes. A compressed entry's value holds an inner
 * message set.
 */
#include "record/legacy.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "record/byteorder.h"
#include "record/compression.h"
#include "record/record_batch.h"
#include "record/record_builder.h"
#include "record/record_iter.h"

#define LEGACY_HEADER 12 /* offset + size */
#define LEGACY_MIN_V0 14 /* crc magic attr keylen vallen */
#define LEGACY_NO_TIMESTAMP (-1)

struct legacy_msg {
    int magic;
    int codec;
    int64_t timestamp;
    const uint8_t *key;
    int32_t key_len;
    const uint8_t *value;
    int32_t value_len;
};

/* Parses one entry's message bytes m[0..size). 0 or a record_error. */
static int legacy_parse_msg(const uint8_t *m, size_t size, struct legacy_msg *out)
{
    if (size < LEGACY_MIN_V0)
        return RECORD_ERR_CORRUPT;
    uint32_t crc = be32_load(m);
    if ((uint32_t)crc32(0L, m + 4, (uInt)(size - 4)) != crc)
        return RECORD_ERR_CRC;
    out->magic = m[4];
    if (out->magic > 1)
        return RECORD_ERR_MAGIC;
    out->codec = m[5] & RECORD_ATTR_COMPRESSION_MASK;
    if (out->codec > RECORD_COMPRESSION_LZ4)
        return RECORD_ERR_UNSUPPORTED_CODEC;
    size_t at = 6;
    out->timestamp = LEGACY_NO_TIMESTAMP;
    if (out->magic == 1) {
        if (size < at + 8 + 8)
            return RECORD_ERR_CORRUPT;
        out->timestamp = (int64_t)be64_load(m + at);
        at += 8;
    }
    const uint8_t **ptrs[2] = {&out->key, &out->value};
    int32_t *lens[2] = {&out->key_len, &out->value_len};
    for (int i = 0; i < 2; i++) {
        if (size - at < 4)
            return RECORD_ERR_CORRUPT;
        int32_t l = (int32_t)be32_load(m + at);
        at += 4;
        if (l < -1 || (l > 0 && (size_t)l > size - at))
            return RECORD_ERR_CORRUPT;
        *lens[i] = l;
        *ptrs[i] = l >= 0 ? m + at : NULL;
        at += l > 0 ? (size_t)l : 0;
    }
    return at == size ? 0 : RECORD_ERR_CORRUPT;
}

/* Adds every message of the set in[0..len) to b; depth 0 may hold compressed wrappers. */
static int legacy_walk(struct record_builder *b, const uint8_t *in, size_t len, int depth,
                       size_t max_bytes, int *codec)
{
    size_t at = 0;
    int n = 0;
    while (at < len) {
        if (len - at < LEGACY_HEADER)
            return RECORD_ERR_TRUNCATED;
        int32_t size = (int32_t)be32_load(in + at + 8);
        if (size < LEGACY_MIN_V0 || (size_t)size > len - at - LEGACY_HEADER)
            return RECORD_ERR_TRUNCATED;
        struct legacy_msg m;
        int rc = legacy_parse_msg(in + at + LEGACY_HEADER, (size_t)size, &m);
        if (rc != 0)
            return rc;
        if (m.codec != RECORD_COMPRESSION_NONE) {
            if (depth > 0 || m.value_len < 0)
                return RECORD_ERR_CORRUPT;
            uint8_t *inner;
            size_t inner_len;
            rc = record_decompress(m.codec, m.value, (size_t)m.value_len, max_bytes, &inner,
                                   &inner_len);
            if (rc != 0)
                return rc;
            *codec = m.codec;
            rc = legacy_walk(b, inner, inner_len, depth + 1, max_bytes, codec);
            free(inner);
            if (rc < 0)
                return rc;
        } else {
            rc =
                record_builder_add(b, m.timestamp, m.key, m.key_len, m.value, m.value_len, NULL, 0);
            if (rc != 0)
                return rc;
        }
        n++;
        at += LEGACY_HEADER + (size_t)size;
    }
    return n;
}

int legacy_to_v2(const uint8_t *in, size_t len, size_t max_bytes, uint8_t **out, size_t *out_len)
{
    struct record_builder b;
    int codec = RECORD_COMPRESSION_NONE;
    record_builder_init(&b, RECORD_COMPRESSION_NONE);
    int rc = legacy_walk(&b, in, len, 0, max_bytes, &codec);
    if (rc == 0)
        rc = RECORD_ERR_CORRUPT; /* an empty message set */
    if (rc > 0) {
        b.codec = codec;
        rc = record_builder_finish(&b, out, out_len);
    }
    record_builder_release(&b);
    return rc;
}

/* Appends one legacy entry for rec to the growing buffer. */
static int legacy_emit(uint8_t **buf, size_t *len, size_t *cap, int magic, const struct record *rec)
{
    size_t klen = rec->key_len > 0 ? (size_t)rec->key_len : 0;
    size_t vlen = rec->value_len > 0 ? (size_t)rec->value_len : 0;
    size_t msg = 4 + 1 + 1 + (magic == 1 ? 8 : 0) + 4 + klen + 4 + vlen;
    size_t need = LEGACY_HEADER + msg;
    if (*cap - *len < need) {
        size_t ncap = *cap ? *cap * 2 : 4096;
        while (ncap - *len < need)
            ncap *= 2;
        uint8_t *nb = realloc(*buf, ncap);
        if (nb == NULL)
            return RECORD_ERR_NOMEM;
        *buf = nb;
        *cap = ncap;
    }
    uint8_t *p = *buf + *len;
    be64_store(p, (uint64_t)rec->offset);
    be32_store(p + 8, (uint32_t)msg);
    uint8_t *m = p + LEGACY_HEADER;
    size_t at = 4;
    m[at++] = (uint8_t)magic;
    m[at++] = 0;
    if (magic == 1) {
        be64_store(m + at, (uint64_t)rec->timestamp);
        at += 8;
    }
    be32_store(m + at, (uint32_t)rec->key_len);
    at += 4;
    if (klen)
        memcpy(m + at, rec->key, klen);
    at += klen;
    be32_store(m + at, (uint32_t)rec->value_len);
    at += 4;
    if (vlen)
        memcpy(m + at, rec->value, vlen);
    be32_store(m, (uint32_t)crc32(0L, m + 4, (uInt)(msg - 4)));
    *len += need;
    return 0;
}

int legacy_from_v2(const uint8_t *in, size_t len, int magic, int64_t min_offset, size_t max_bytes,
                   uint8_t **out, size_t *out_len)
{
    uint8_t *buf = NULL;
    size_t blen = 0, cap = 0;
    size_t at = 0;
    int rc = 0;
    while (rc == 0 && len - at >= RECORD_BATCH_HEADER_SIZE) {
        struct record_batch_header h;
        if (record_batch_header_parse(in + at, len - at, &h) != 0)
            break;
        size_t size = record_batch_size(&h);
        if (size > len - at)
            break; /* partial batch at the end of a fetch */
        struct record_iter it;
        rc = record_iter_init(&it, in + at, size, max_bytes);
        struct record rec;
        while (rc == 0 && (rc = record_iter_next(&it, &rec)) == 1) {
            rc = 0;
            if (rec.offset >= min_offset && !(h.attributes & RECORD_ATTR_CONTROL))
                rc = legacy_emit(&buf, &blen, &cap, magic, &rec);
        }
        record_iter_release(&it);
        at += size;
    }
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = blen;
    return 0;
}
