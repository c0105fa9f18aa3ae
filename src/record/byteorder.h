/*
 * Big-endian loads and stores for Kafka's on-wire and on-disk integers. Unaligned access is
 * fine: everything goes through memcpy, which compilers turn into a load plus bswap.
 */
#ifndef GREGOR_RECORD_BYTEORDER_H
#define GREGOR_RECORD_BYTEORDER_H

#include <stdint.h>
#include <string.h>

static inline uint16_t be16_load(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return __builtin_bswap16(v);
}

static inline uint32_t be32_load(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}

static inline uint64_t be64_load(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static inline void be16_store(uint8_t *p, uint16_t v)
{
    v = __builtin_bswap16(v);
    memcpy(p, &v, 2);
}

static inline void be32_store(uint8_t *p, uint32_t v)
{
    v = __builtin_bswap32(v);
    memcpy(p, &v, 4);
}

static inline void be64_store(uint8_t *p, uint64_t v)
{
    v = __builtin_bswap64(v);
    memcpy(p, &v, 8);
}

#endif
