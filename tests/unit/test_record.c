/* Record layer: CRC-32C, varints, batch validation, in-place edits, codecs, iteration. */
#include <stdint.h>
#include <stdlib.h>

#include "record/byteorder.h"
#include "record/compression.h"
#include "record/crc32c.h"
#include "record/record_batch.h"
#include "record/record_builder.h"
#include "record/record_iter.h"
#include "record/varint.h"
#include "test.h"

static uint8_t *make_batch(int codec, int n, size_t *len)
{
    struct record_builder b;
    record_builder_init(&b, codec);
    char key[32], val[64];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(key, sizeof(key), "key-%d", i);
        int vl = snprintf(val, sizeof(val), "value-%d-abcdefghijabcdefghij", i);
        struct record_header h = {(const uint8_t *)"h", 1, (const uint8_t *)"v", 1};
        if (record_builder_add(&b, 1000 + i, key, kl, val, vl, &h, i % 2) < 0)
            return NULL;
    }
    uint8_t *out;
    if (record_builder_finish(&b, &out, len) < 0)
        out = NULL;
    record_builder_release(&b);
    return out;
}

TEST(test_crc32c_known_vector)
{
    CHECK_EQ_INT(crc32c("123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(crc32c_update_portable(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(crc32c("", 0), 0);
}

TEST(test_crc32c_hw_matches_portable_and_chains)
{
    uint8_t buf[1000];
    for (int i = 0; i < 1000; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    for (size_t off = 0; off < 9; off++)
        for (size_t len = 0; len < 990; len += 37)
            CHECK_EQ_INT(crc32c(buf + off, len), crc32c_update_portable(0, buf + off, len));
    CHECK_EQ_INT(crc32c_update(crc32c(buf, 400), buf + 400, 600), crc32c(buf, 1000));
}

TEST(test_crc32c_interleaved_long_inputs_match_portable)
{
    size_t n = 3 * 8192 * 4 + 3 * 256 * 3 + 77;
    uint8_t *buf = malloc(n);
    unsigned seed = 7;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)rand_r(&seed);
    size_t lens[] = {767, 768, 769, 3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, n - 9, n - 3};
    for (size_t off = 0; off < 3; off++)
        for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
            CHECK_EQ_INT(crc32c_update(0x12345678, buf + off, lens[i]),
                         crc32c_update_portable(0x12345678, buf + off, lens[i]));
    free(buf);
}

/* The folding path (inputs of 256 bytes or more on AVX-512 CPUs) against the portable one:
 * every length around its block sizes (256, 64 and 16 bytes), every start alignment within a
 * 64-byte line, any initial CRC, and a 1 MiB input as produce batches come. */
TEST(test_crc32c_folding_matches_portable_at_every_length_and_alignment)
{
    size_t n = (1 << 20) + 64 + 13;
    uint8_t *buf = malloc(n);
    CHECK(buf != NULL);
    unsigned seed = 11;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)rand_r(&seed);
    for (size_t len = 240; len <= 1100; len++) {
        size_t off = len % 64;
        uint32_t init = (uint32_t)rand_r(&seed);
        uint32_t want = crc32c_update_portable(init, buf + off, len);
        CHECK_EQ_INT(crc32c_update(init, buf + off, len), want);
        CHECK_EQ_INT(crc32c_update_sse42_only(init, buf + off, len), want);
    }
    for (size_t off = 0; off < 64; off++)
        CHECK_EQ_INT(crc32c_update(~0u, buf + off, 1 << 20),
                     crc32c_update_portable(~0u, buf + off, 1 << 20));
    CHECK_EQ_INT(crc32c_update(crc32c(buf, 300), buf + 300, n - 300), crc32c(buf, n));
    CHECK_EQ_INT(crc32c(buf, n), crc32c_update_portable(0, buf, n));
    free(buf);
}

TEST(test_varint_zigzag_round_trip)
{
    int32_t v32[] = {0, 1, -1, 63, -64, 64, 300, INT32_MAX, INT32_MIN};
    int64_t v64[] = {0, -1, 1, INT64_MAX, INT64_MIN, 1LL << 40, -(1LL << 40)};
    uint8_t buf[16];
    for (size_t i = 0; i < sizeof(v32) / sizeof(v32[0]); i++) {
        size_t n = varint_write(buf, v32[i]);
        int32_t r = 0;
        CHECK(n <= 5);
        CHECK_EQ_INT(varint_read(buf, buf + n, &r), n);
        CHECK_EQ_INT(r, v32[i]);
        CHECK_EQ_INT(varint_read(buf, buf + n - 1, &r), 0); /* truncated */
    }
    for (size_t i = 0; i < sizeof(v64) / sizeof(v64[0]); i++) {
        size_t n = varlong_write(buf, v64[i]);
        int64_t r = 0;
        CHECK(n <= 10);
        CHECK_EQ_INT(varlong_read(buf, buf + n, &r), n);
        CHECK(r == v64[i]);
    }
    /* Known encodings: zig-zag(-1) = 1, zig-zag(150) = 300 = AC 02. */
    CHECK_EQ_INT(varint_write(buf, -1), 1);
    CHECK_EQ_INT(buf[0], 1);
    CHECK_EQ_INT(varint_write(buf, 150), 2);
    CHECK_EQ_INT(buf[0], 0xAC);
    CHECK_EQ_INT(buf[1], 0x02);
    uint8_t overlong[6] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    int32_t r = 0;
    CHECK_EQ_INT(varint_read(overlong, overlong + 6, &r), 0);
}

TEST(test_batch_header_parse_all_fields)
{
    struct record_builder b;
    record_builder_init(&b, 0);
    b.producer_id = 77;
    b.producer_epoch = 3;
    b.base_sequence = 9;
    b.attributes = RECORD_ATTR_TRANSACTIONAL;
    CHECK(record_builder_add(&b, 5000, "k", 1, "v", 1, NULL, 0) == 0);
    CHECK(record_builder_add(&b, 5007, "k", 1, "v", 1, NULL, 0) == 0);
    uint8_t *p;
    size_t len;
    CHECK(record_builder_finish(&b, &p, &len) == 0);
    record_builder_release(&b);
    struct record_batch_header h;
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, &h), 0);
    CHECK_EQ_INT(h.batch_length + 12, len);
    CHECK_EQ_INT(h.magic, 2);
    CHECK_EQ_INT(h.partition_leader_epoch, -1);
    CHECK_EQ_INT(h.attributes, RECORD_ATTR_TRANSACTIONAL);
    CHECK_EQ_INT(h.last_offset_delta, 1);
    CHECK_EQ_INT(h.base_timestamp, 5000);
    CHECK_EQ_INT(h.max_timestamp, 5007);
    CHECK_EQ_INT(h.producer_id, 77);
    CHECK_EQ_INT(h.producer_epoch, 3);
    CHECK_EQ_INT(h.base_sequence, 9);
    CHECK_EQ_INT(h.record_count, 2);
    free(p);
}

TEST(test_validate_rejects_truncations_without_crash)
{
    size_t len;
    uint8_t *p = make_batch(0, 10, &len);
    CHECK(p);
    CHECK_EQ_INT(record_batches_validate(p, len, RECORD_VALIDATE_PRODUCE, 0), 1);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1); /* exact-size copy: ASan catches overreads */
        memcpy(copy, p, cut);
        CHECK(record_batches_validate(copy, cut, RECORD_VALIDATE_PRODUCE, 0) < 0);
        free(copy);
    }
    free(p);
}

TEST(test_validate_rejects_bad_crc_and_every_flipped_byte)
{
    size_t len;
    uint8_t *p = make_batch(0, 5, &len);
    CHECK(p);
    for (size_t i = 0; i < len; i++) {
        if (i < 16 && i != RB_OFF_LENGTH + 3)
            continue; /* baseOffset/epoch are not covered by the CRC */
        p[i] ^= 0x40;
        CHECK(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL) < 0);
        p[i] ^= 0x40;
    }
    p[len - 1] ^= 1;
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL), RECORD_ERR_CRC);
    CHECK_EQ_INT(record_error_to_kafka(RECORD_ERR_CRC), 2);
    free(p);
}

TEST(test_validate_rejects_huge_lengths_and_bad_counts)
{
    size_t len;
    uint8_t *p = make_batch(0, 3, &len);
    CHECK(p);
    be32_store(p + RB_OFF_LENGTH, 0x7fffffff);
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL),
                 RECORD_ERR_TRUNCATED);
    be32_store(p + RB_OFF_LENGTH, (uint32_t)(len - 12));
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, len - 1, NULL),
                 RECORD_ERR_TOO_LARGE);
    be32_store(p + RB_OFF_RECORD_COUNT, 4);
    record_batch_update_crc(p);
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL),
                 RECORD_ERR_INVALID);
    be32_store(p + RB_OFF_RECORD_COUNT, (uint32_t)-1);
    record_batch_update_crc(p);
    CHECK(record_batch_validate(p, len, RECORD_VALIDATE_STORED, 0, NULL) < 0);
    be32_store(p + RB_OFF_RECORD_COUNT, 3);
    p[RB_OFF_MAGIC] = 1;
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL), RECORD_ERR_MAGIC);
    p[RB_OFF_MAGIC] = 2;
    /* First record claims a huge length: zig-zag varint 0x7fffffff. */
    uint8_t *r = p + RECORD_BATCH_HEADER_SIZE;
    r[0] = 0xfe;
    r[1] = 0xff;
    record_batch_update_crc(p);
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL),
                 RECORD_ERR_CORRUPT);
    free(p);
}

/* A batch spanning many CRC chunks (the records are validated right behind the CRC, chunk by
 * chunk): bad input deep inside it still gets the error it got when the CRC and the record walk
 * were two passes - a CRC mismatch first, then a broken record, then records that run out. */
TEST(test_validate_batch_over_many_crc_chunks_reports_errors_in_order)
{
    size_t len;
    uint8_t *p = make_batch(0, 3000, &len);
    CHECK(p && len > 100000);
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL), 0);
    /* Find record 2000 (past several 24 KiB chunks) by its length varints. */
    const uint8_t *r = p + RECORD_BATCH_HEADER_SIZE, *end = p + len;
    for (int i = 0; i < 2000; i++) {
        int32_t rl;
        size_t n = varint_read(r, end, &rl);
        CHECK(n > 0 && rl > 0);
        r += n + (size_t)rl;
    }
    CHECK(r - p > 3 * 24 * 1024);
    uint8_t *rec = (uint8_t *)r;
    uint8_t saved = rec[0];
    rec[0] = (uint8_t)(saved + 2); /* zig-zag length one more: the record overruns */
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL), RECORD_ERR_CRC);
    record_batch_update_crc(p);
    int fused = record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL);
    CHECK(fused == RECORD_ERR_CORRUPT || fused == RECORD_ERR_INVALID);
    CHECK_EQ_INT(fused, record_region_validate(p + RECORD_BATCH_HEADER_SIZE,
                                               len - RECORD_BATCH_HEADER_SIZE, 3000, 2999, true));
    rec[0] = saved;
    /* One record more announced than present: the walk runs out of bytes at the very end. */
    be32_store(p + RB_OFF_RECORD_COUNT, 3001);
    be32_store(p + RB_OFF_LAST_OFFSET_DELTA, 3000);
    record_batch_update_crc(p);
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL),
                 RECORD_ERR_CORRUPT);
    be32_store(p + RB_OFF_RECORD_COUNT, 3000);
    be32_store(p + RB_OFF_LAST_OFFSET_DELTA, 2999);
    record_batch_update_crc(p);
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, NULL), 0);
    free(p);
}

TEST(test_set_offset_epoch_keep_crc_and_log_append_time_recomputes)
{
    size_t len;
    uint8_t *p = make_batch(0, 3, &len);
    CHECK(p);
    record_batch_set_base_offset(p, 123456789);
    record_batch_set_leader_epoch(p, 7);
    struct record_batch_header h;
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, &h), 0);
    CHECK_EQ_INT(h.base_offset, 123456789);
    CHECK_EQ_INT(h.partition_leader_epoch, 7);
    record_batch_set_log_append_time(p, 99999);
    CHECK_EQ_INT(record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, &h), 0);
    CHECK(h.attributes & RECORD_ATTR_LOG_APPEND_TIME);
    CHECK_EQ_INT(h.max_timestamp, 99999);
    struct record_iter it;
    struct record rec;
    CHECK(record_iter_init(&it, p, len, 1 << 20) == 0);
    CHECK_EQ_INT(record_iter_next(&it, &rec), 1);
    CHECK_EQ_INT(rec.timestamp, 99999);
    CHECK_EQ_INT(rec.offset, 123456789);
    record_iter_release(&it);
    free(p);
}

static int check_codec(int codec)
{
    size_t len;
    uint8_t *p = make_batch(codec, 500, &len);
    if (!p)
        return -1;
    struct record_batch_header h;
    int rc = record_batch_validate(p, len, RECORD_VALIDATE_PRODUCE, 0, &h);
    if (rc < 0 || record_batch_compression(&h) != codec)
        return -2;
    struct record_iter it;
    struct record rec;
    if (record_iter_init(&it, p, len, 1 << 20) < 0)
        return -3;
    int n = 0;
    while ((rc = record_iter_next(&it, &rec)) == 1) {
        char val[64];
        int vl = snprintf(val, sizeof(val), "value-%d-abcdefghijabcdefghij", n);
        if (rec.offset != n || rec.timestamp != 1000 + n || rec.value_len != vl ||
            memcmp(rec.value, val, (size_t)vl) != 0 || rec.header_count != n % 2)
            return -4;
        const uint8_t *hp = rec.headers;
        struct record_header hdr;
        for (int i = 0; i < rec.header_count; i++)
            if (record_header_next(&hp, rec.headers_end, &hdr) != 1 || hdr.key_len != 1)
                return -5;
        n++;
    }
    record_iter_release(&it);
    free(p);
    return rc == 0 && n == 500 ? 0 : -6;
}

TEST(test_codec_round_trip_gzip)
{
    CHECK_EQ_INT(check_codec(RECORD_COMPRESSION_GZIP), 0);
}

TEST(test_codec_round_trip_snappy)
{
    CHECK_EQ_INT(check_codec(RECORD_COMPRESSION_SNAPPY), 0);
}

TEST(test_codec_round_trip_lz4)
{
    CHECK_EQ_INT(check_codec(RECORD_COMPRESSION_LZ4), 0);
}

TEST(test_codec_round_trip_zstd)
{
    CHECK_EQ_INT(check_codec(RECORD_COMPRESSION_ZSTD), 0);
}

TEST(test_snappy_accepts_xerial_and_raw_block)
{
    uint8_t in[100000];
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i % 251 < 100 ? 'a' : i % 13);
    uint8_t *x, *raw, *out;
    size_t xl, rl, ol;
    CHECK(record_compress(RECORD_COMPRESSION_SNAPPY, in, sizeof(in), &x, &xl) == 0);
    CHECK(memcmp(x, "\x82SNAPPY\0", 8) == 0);
    CHECK(be32_load(x + 8) == 1 && be32_load(x + 12) == 1);
    CHECK(record_decompress(RECORD_COMPRESSION_SNAPPY, x, xl, 1 << 20, &out, &ol) == 0);
    CHECK(ol == sizeof(in) && memcmp(out, in, ol) == 0);
    free(out);
    CHECK(snappy_raw_compress(in, sizeof(in), &raw, &rl) == 0);
    CHECK(record_decompress(RECORD_COMPRESSION_SNAPPY, raw, rl, 1 << 20, &out, &ol) == 0);
    CHECK(ol == sizeof(in) && memcmp(out, in, ol) == 0);
    free(out);
    /* Two concatenated xerial streams decode to both halves. */
    uint8_t *cat = malloc(2 * xl);
    memcpy(cat, x, xl);
    memcpy(cat + xl, x, xl);
    CHECK(record_decompress(RECORD_COMPRESSION_SNAPPY, cat, 2 * xl, 1 << 20, &out, &ol) == 0);
    CHECK_EQ_INT(ol, 2 * sizeof(in));
    free(out);
    free(cat);
    free(x);
    free(raw);
}

TEST(test_decompress_enforces_output_limit_and_rejects_garbage)
{
    static uint8_t zeros[1 << 20];
    int codecs[] = {1, 2, 3, 4};
    for (int i = 0; i < 4; i++) {
        uint8_t *c, *out;
        size_t cl, ol;
        CHECK(record_compress(codecs[i], zeros, sizeof(zeros), &c, &cl) == 0);
        CHECK(cl < sizeof(zeros) / 10);
        CHECK_EQ_INT(record_decompress(codecs[i], c, cl, 64 * 1024, &out, &ol),
                     RECORD_ERR_TOO_LARGE);
        CHECK(out == NULL);
        CHECK(record_decompress(codecs[i], c, cl, sizeof(zeros), &out, &ol) == 0);
        CHECK_EQ_INT(ol, sizeof(zeros));
        free(out);
        for (size_t cut = 0; cut < cl; cut += cl / 7 + 1) {
            int rc = record_decompress(codecs[i], c, cut, sizeof(zeros), &out, &ol);
            CHECK(rc < 0 || ol < sizeof(zeros)); /* never more than the whole */
            free(out);
        }
        free(c);
        uint8_t junk[64];
        for (int j = 0; j < 64; j++)
            junk[j] = (uint8_t)(j * 37 + 11);
        int rc = record_decompress(codecs[i], junk, sizeof(junk), 1 << 20, &out, &ol);
        CHECK(rc < 0 || out != NULL);
        free(out);
    }
    uint8_t *out;
    size_t ol;
    CHECK_EQ_INT(record_decompress(6, zeros, 10, 100, &out, &ol), RECORD_ERR_UNSUPPORTED_CODEC);
}

TEST(test_compressed_batch_with_corrupt_payload_fails_iteration_not_crash)
{
    size_t len;
    uint8_t *p = make_batch(RECORD_COMPRESSION_LZ4, 50, &len);
    CHECK(p);
    for (size_t i = RECORD_BATCH_HEADER_SIZE; i < len; i += 3) {
        p[i] ^= 0x55;
        struct record_iter it;
        struct record rec;
        if (record_iter_init(&it, p, len, 1 << 16) == 0)
            while (record_iter_next(&it, &rec) == 1)
                ;
        record_iter_release(&it);
        p[i] ^= 0x55;
    }
    free(p);
}

TEST_MAIN
