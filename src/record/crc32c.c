/*
 * CRC-32C. Two implementations with identical results: the SSE4.2 crc32 instruction (8 bytes
 * per step) and slicing-by-8 tables. The tables are computed once through pthread_once and are
 * read-only afterwards, so they are not mutable shared state in any useful sense.
 */
#include "record/crc32c.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t crc32c_update_portable(uint32_t crc, const void *buf, size_t len)
{
    pthread_once(&crc_table_once, crc_table_init);
    const uint8_t *p = buf;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc; /* little-endian host assumed (x86-64 / aarch64) */
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
              crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
              crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/*
 * The crc32 instruction has a latency of 3 cycles but a throughput of 1 per cycle, so one
 * dependent chain runs at a third of the possible speed. Long inputs are cut into three
 * interleaved streams whose CRCs are combined by "shifting" one over the length of the next
 * (multiplying by x^(8*len) mod P, done with 4 x 256 tables built once). This is Mark Adler's
 * well-known scheme (crc32c.c, zlib licence) rewritten for this file.
 */
#define CRC_LONG 8192
#define CRC_SHORT 256

static uint32_t crc_long[4][256], crc_short[4][256];
static pthread_once_t crc_shift_once = PTHREAD_ONCE_INIT;

static uint32_t gf2_matrix_times(const uint32_t *mat, uint32_t vec)
{
    uint32_t sum = 0;
    while (vec) {
        if (vec & 1)
            sum ^= *mat;
        vec >>= 1;
        mat++;
    }
    return sum;
}

static void gf2_matrix_square(uint32_t *square, const uint32_t *mat)
{
    for (int n = 0; n < 32; n++)
        square[n] = gf2_matrix_times(mat, mat[n]);
}

/* Operator that appends len (a power of two) zero bytes to a CRC. */
static void crc_zeros_op(uint32_t *even, size_t len)
{
    uint32_t odd[32], row = 1;
    odd[0] = CRC32C_POLY; /* one zero bit */
    for (int n = 1; n < 32; n++, row <<= 1)
        odd[n] = row;
    gf2_matrix_square(even, odd); /* two zero bits */
    gf2_matrix_square(odd, even); /* four zero bits */
    do {
        gf2_matrix_square(even, odd);
        len >>= 1;
        if (len == 0)
            return;
        gf2_matrix_square(odd, even);
        len >>= 1;
    } while (len);
    memcpy(even, odd, sizeof(odd));
}

static void crc_zeros_table(uint32_t zeros[4][256], size_t len)
{
    uint32_t op[32];
    crc_zeros_op(op, len);
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 0; k < 4; k++)
            zeros[k][n] = gf2_matrix_times(op, n << (8 * k));
}

static void crc_shift_init(void)
{
    crc_zeros_table(crc_long, CRC_LONG);
    crc_zeros_table(crc_short, CRC_SHORT);
}

static inline uint32_t crc_shift(uint32_t zeros[4][256], uint32_t crc)
{
    return zeros[0][crc & 0xff] ^ zeros[1][(crc >> 8) & 0xff] ^ zeros[2][(crc >> 16) & 0xff] ^
           zeros[3][crc >> 24];
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Three interleaved streams of `block` bytes each, while at least 3 blocks remain. */
__attribute__((target("sse4.2"))) static uint64_t
crc_triple(uint64_t c0, const uint8_t **pp, size_t *lenp, size_t block, uint32_t zeros[4][256])
{
    const uint8_t *p = *pp;
    size_t len = *lenp;
    while (len >= 3 * block) {
        uint64_t c1 = 0, c2 = 0;
        const uint8_t *end = p + block;
        do {
            c0 = _mm_crc32_u64(c0, load64(p));
            c1 = _mm_crc32_u64(c1, load64(p + block));
            c2 = _mm_crc32_u64(c2, load64(p + 2 * block));
            p += 8;
        } while (p < end);
        c0 = crc_shift(zeros, (uint32_t)c0) ^ c1;
        c0 = crc_shift(zeros, (uint32_t)c0) ^ c2;
        p += 2 * block;
        len -= 3 * block;
    }
    *pp = p;
    *lenp = len;
    return c0;
}

/* The crc32 instruction over the last len bytes from state c; returns the final CRC. */
__attribute__((target("sse4.2"))) static uint32_t crc_finish_sse42(uint64_t c, const uint8_t *p,
                                                                   size_t len)
{
    while (len >= 8) {
        c = _mm_crc32_u64(c, load64(p));
        p += 8;
        len -= 8;
    }
    while (len--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

__attribute__((target("sse4.2"))) static uint32_t crc32c_update_sse42(uint32_t crc, const void *buf,
                                                                      size_t len)
{
    const uint8_t *p = buf;
    uint64_t c = ~crc;
    while (len && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    if (len >= 3 * CRC_SHORT) {
        pthread_once(&crc_shift_once, crc_shift_init);
        c = crc_triple(c, &p, &len, CRC_LONG, crc_long);
        c = crc_triple(c, &p, &len, CRC_SHORT, crc_short);
    }
    return crc_finish_sse42(c, p, len);
}

/*
 * Folding with carry-less multiplication (VPCLMULQDQ on 512-bit registers: four 128-bit lanes
 * per instruction), the method of Intel's "Fast CRC Computation for Generic Polynomials Using
 * PCLMULQDQ", derived here for this file. A register lane holds 16 message bytes loaded little
 * endian: its bit t is the coefficient of x^(127-t) of the chunk's polynomial C = LO*x^64 + HI.
 * Moving C forward by D bits of message keeps the CRC when it is replaced by C*x^D mod P,
 * computed as LO*(x^(D+64) mod P) + HI*(x^D mod P) (degree < 96) and XORed into the chunk D
 * bits later. A constant for x^e is stored as x*(x^(e-1) mod P), bit-reversed into 64 bits, so
 * that the product of a lane half and the constant lands in lane order with no shift. The last
 * folded 16 bytes, fed to the crc32 instruction from state 0, give the CRC of all bytes before
 * them (the initial state was XORed into the first four bytes), and the tail follows.
 */
#define CRC_FOLD_MIN 256 /* shorter inputs take the crc32 instruction path */
#define CRC_POLY_NORMAL 0x11EDC6F41ull

/* Folding distances in bits: 256 bytes (four registers), 64 bytes, and lanes 3, 2, 1 apart. */
enum { FOLD_256B, FOLD_64B, FOLD_48B, FOLD_32B, FOLD_16B, FOLD_N };
static const unsigned crc_fold_bits[FOLD_N] = {2048, 512, 384, 256, 128};
/* [d][0] multiplies the low half (x^(D+64)), [d][1] the high half (x^D). */
static uint64_t crc_fold_k[FOLD_N][2];
static pthread_once_t crc_fold_once = PTHREAD_ONCE_INIT;

/* x*(x^(e-1) mod P), bit-reversed into 64 bits (see above). */
static uint64_t crc_fold_const(unsigned e)
{
    uint64_t r = 1;
    for (unsigned i = 0; i < e - 1; i++) {
        r <<= 1;
        if (r >> 32 & 1)
            r ^= CRC_POLY_NORMAL;
    }
    uint64_t out = 0;
    for (int b = 0; b < 64; b++)
        if (r >> b & 1)
            out |= 1ull << (63 - b);
    return out;
}

static void crc_fold_init(void)
{
    for (int d = 0; d < FOLD_N; d++) {
        crc_fold_k[d][0] = crc_fold_const(crc_fold_bits[d] + 64);
        crc_fold_k[d][1] = crc_fold_const(crc_fold_bits[d]);
    }
}

#include <immintrin.h>

#define CRC_FOLD_TARGET __attribute__((target("avx512f,avx512vl,vpclmulqdq,pclmul,sse4.2")))

/* Every lane of a's 128-bit lanes moved forward by the constants' distance, XOR next. */
CRC_FOLD_TARGET static inline __m512i crc_fold512(__m512i a, __m512i k, __m512i next)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(a, k, 0x00),
                                     _mm512_clmulepi64_epi128(a, k, 0x11), next, 0x96);
}

CRC_FOLD_TARGET static inline __m128i crc_fold128(__m128i a, __m128i k, __m128i next)
{
    return _mm_xor_si128(
        _mm_xor_si128(_mm_clmulepi64_si128(a, k, 0x00), _mm_clmulepi64_si128(a, k, 0x11)), next);
}

CRC_FOLD_TARGET static inline __m512i crc_k512(int d)
{
    return _mm512_broadcast_i32x4(
        _mm_set_epi64x((long long)crc_fold_k[d][1], (long long)crc_fold_k[d][0]));
}

/* len >= CRC_FOLD_MIN. */
CRC_FOLD_TARGET static uint32_t crc32c_update_fold(uint32_t crc, const uint8_t *p, size_t len)
{
    assert(len >= CRC_FOLD_MIN);
    pthread_once(&crc_fold_once, crc_fold_init);
    /* The initial state into the first four bytes; the other 60 XOR zero (zext, not cast:
     * a cast leaves the upper lanes undefined). */
    __m512i a0 = _mm512_xor_si512(_mm512_loadu_si512(p),
                                  _mm512_zextsi128_si512(_mm_cvtsi32_si128((int)~crc)));
    __m512i a1 = _mm512_loadu_si512(p + 64);
    __m512i a2 = _mm512_loadu_si512(p + 128);
    __m512i a3 = _mm512_loadu_si512(p + 192);
    p += 256;
    len -= 256;
    __m512i k = crc_k512(FOLD_256B);
    while (len >= 256) {
        a0 = crc_fold512(a0, k, _mm512_loadu_si512(p));
        a1 = crc_fold512(a1, k, _mm512_loadu_si512(p + 64));
        a2 = crc_fold512(a2, k, _mm512_loadu_si512(p + 128));
        a3 = crc_fold512(a3, k, _mm512_loadu_si512(p + 192));
        p += 256;
        len -= 256;
    }
    k = crc_k512(FOLD_64B);
    a1 = crc_fold512(a0, k, a1);
    a2 = crc_fold512(a1, k, a2);
    a3 = crc_fold512(a2, k, a3);
    while (len >= 64) {
        a3 = crc_fold512(a3, k, _mm512_loadu_si512(p));
        p += 64;
        len -= 64;
    }
    /* The four lanes into the last one: lane i moves (3 - i) * 16 bytes forward. */
    __m512i kl = _mm512_set_epi64(
        0, 0, (long long)crc_fold_k[FOLD_16B][1], (long long)crc_fold_k[FOLD_16B][0],
        (long long)crc_fold_k[FOLD_32B][1], (long long)crc_fold_k[FOLD_32B][0],
        (long long)crc_fold_k[FOLD_48B][1], (long long)crc_fold_k[FOLD_48B][0]);
    __m512i moved = _mm512_xor_si512(_mm512_clmulepi64_epi128(a3, kl, 0x00),
                                     _mm512_clmulepi64_epi128(a3, kl, 0x11));
    __m128i x = _mm_xor_si128(
        _mm_xor_si128(_mm512_extracti32x4_epi32(moved, 0), _mm512_extracti32x4_epi32(moved, 1)),
        _mm_xor_si128(_mm512_extracti32x4_epi32(moved, 2), _mm512_extracti32x4_epi32(a3, 3)));
    __m128i k16 =
        _mm_set_epi64x((long long)crc_fold_k[FOLD_16B][1], (long long)crc_fold_k[FOLD_16B][0]);
    while (len >= 16) {
        x = crc_fold128(x, k16, _mm_loadu_si128((const __m128i *)(const void *)p));
        p += 16;
        len -= 16;
    }
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(x));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(x, 1));
    return crc_finish_sse42(c, p, len);
}

/* Folding needs AVX-512 (F, VL), VPCLMULQDQ and PCLMULQDQ; the crc32 instruction SSE4.2. */
static bool crc_cpu_folds(void)
{
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul") &&
           __builtin_cpu_supports("sse4.2");
}

uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
    if (len >= CRC_FOLD_MIN && crc_cpu_folds())
        return crc32c_update_fold(crc, buf, len);
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_update_sse42(crc, buf, len);
    return crc32c_update_portable(crc, buf, len);
}

/* The crc32-instruction path alone, for tests and benchmarks. */
uint32_t crc32c_update_sse42_only(uint32_t crc, const void *buf, size_t len)
{
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_update_sse42(crc, buf, len);
    return crc32c_update_portable(crc, buf, len);
}
#else
uint32_t crc32c_update(uint32_t crc, const void *buf, size_t len)
{
    return crc32c_update_portable(crc, buf, len);
}

uint32_t crc32c_update_sse42_only(uint32_t crc, const void *buf, size_t len)
{
    return crc32c_update_portable(crc, buf, len);
}
#endif
