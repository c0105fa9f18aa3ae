/*
 * Zig-zag varint (int32, at most 5 bytes) and varlong (int64, at most 10 bytes) as used inside
 * magic-2 records, plus the unsigned forms. Readers never read past `end` and reject encodings
 * longer than the maximum; they return the number of bytes consumed, or 0 when the input is
 * truncated or over-long.
 */
#ifndef GREGOR_RECORD_VARINT_H
#define GREGOR_RECORD_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define VARINT_MAX_BYTES 5
#define VARLONG_MAX_BYTES 10

/* Unsigned LEB128 of at most max_bytes bytes. Returns bytes read, 0 on error. */
static inline size_t uvarint_read(const uint8_t *p, const uint8_t *end, int max_bytes,
                                  uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (p + i >= end)
            return 0;
        uint8_t b = p[i];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return (size_t)i + 1;
        }
    }
    return 0;
}

static inline size_t varint_read(const uint8_t *p, const uint8_t *end, int32_t *out)
{
    uint64_t u;
    size_t n = uvarint_read(p, end, VARINT_MAX_BYTES, &u);
    if (n == 0 || u > UINT32_MAX)
        return 0;
    uint32_t z = (uint32_t)u;
    *out = (int32_t)((z >> 1) ^ (~(z & 1) + 1));
    return n;
}

static inline size_t varlong_read(const uint8_t *p, const uint8_t *end, int64_t *out)
{
    uint64_t u;
    size_t n = uvarint_read(p, end, VARLONG_MAX_BYTES, &u);
    if (n == 0)
        return 0;
    *out = (int64_t)((u >> 1) ^ (~(u & 1) + 1));
    return n;
}

/* Writes into p (room for VARLONG_MAX_BYTES needed); returns bytes written. */
static inline size_t uvarint_write(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static inline size_t varint_write(uint8_t *p, int32_t v)
{
    return uvarint_write(p, (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}

static inline size_t varlong_write(uint8_t *p, int64_t v)
{
    return uvarint_write(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static inline size_t varint_size(int32_t v)
{
    uint8_t tmp[VARLONG_MAX_BYTES];
    return varint_write(tmp, v);
}

#endif
