/*
 * CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of magic-2 record
 * batches and producer-state snapshots. Inputs of 256 bytes or more fold with VPCLMULQDQ on
 * AVX-512 CPUs; otherwise the SSE4.2 crc32 instruction when the CPU has it (checked at run
 * time) and a slicing-by-8 table without. Thread-safe; no state.
 */
#ifndef GREGOR_RECORD_CRC32C_H
#define GREGOR_RECORD_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC: crc32c_update(0, buf, len) is the CRC-32C of buf. Chainable:
 * crc32c_update(crc32c_update(0, a, n), b, m) == CRC of a||b. */
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len);

static inline uint32_t crc32c(const void *buf, size_t len)
{
    return crc32c_update(0, buf, len);
}

/* The portable slicing-by-8 path, exposed so tests can compare the implementations. */
uint32_t crc32c_update_portable(uint32_t crc, const void *buf, size_t len);
/* The crc32-instruction path without folding (portable without SSE4.2): tests, benchmarks. */
uint32_t crc32c_update_sse42_only(uint32_t crc, const void *buf, size_t len);

#endif
