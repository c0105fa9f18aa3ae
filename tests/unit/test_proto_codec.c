/*
 * Wire primitives: varints, compact and classic lengths, arrays, tagged sections, records with
 * file ranges, and how each rejects malformed input.
 */
#include "test.h"

#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "proto/codec.h"

/* Writes with fn into a chain and flattens into out; returns the length or -1 on error. */
struct wbuf {
    struct iochain ch;
    struct kwriter w;
    uint8_t out[256];
};

static void wbuf_begin(struct wbuf *b)
{
    iochain_init(&b->ch);
    kw_init(&b->w, &b->ch);
}

static long wbuf_end(struct wbuf *b)
{
    long n = b->w.err ? -1 : (long)b->ch.total;
    if (n > (long)sizeof(b->out) || (n >= 0 && iochain_flatten(&b->ch, b->out) != 0))
        n = -1;
    iochain_free(&b->ch);
    return n;
}

static const struct {
    uint32_t v;
    uint8_t bytes[5];
    int len;
} uvarints[] = {
    {0, {0x00}, 1},
    {1, {0x01}, 1},
    {127, {0x7f}, 1},
    {128, {0x80, 0x01}, 2},
    {300, {0xac, 0x02}, 2},
    {16383, {0xff, 0x7f}, 2},
    {16384, {0x80, 0x80, 0x01}, 3},
    {0x0fffffff, {0xff, 0xff, 0xff, 0x7f}, 4},
    {UINT32_MAX, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5},
};

TEST(test_proto_uvarint_encodes_and_decodes_known_values)
{
    for (size_t i = 0; i < sizeof(uvarints) / sizeof(uvarints[0]); i++) {
        struct wbuf b;
        wbuf_begin(&b);
        kw_uvarint(&b.w, uvarints[i].v);
        CHECK_EQ_INT(wbuf_end(&b), uvarints[i].len);
        CHECK_MEM(b.out, uvarints[i].bytes, (size_t)uvarints[i].len);
        CHECK_EQ_INT(kproto_uvarint_size(uvarints[i].v), uvarints[i].len);

        struct kreader r;
        kr_init(&r, uvarints[i].bytes, (size_t)uvarints[i].len, NULL);
        CHECK_EQ_INT(kr_uvarint(&r), uvarints[i].v);
        CHECK_EQ_INT(r.err, 0);
        CHECK(r.p == r.end);
    }
}

TEST(test_proto_uvarint_rejects_overlong_and_truncated)
{
    static const uint8_t six[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x00}; /* six bytes */
    static const uint8_t big[] = {0xff, 0xff, 0xff, 0xff, 0x1f};       /* > 32 bits */
    static const uint8_t cont[] = {0xff, 0xff, 0xff, 0xff, 0x8f};      /* sixth byte follows */
    static const uint8_t trunc[] = {0x80, 0x80};
    const struct {
        const uint8_t *p;
        size_t n;
    } bad[] = {{six, sizeof(six)},
               {big, sizeof(big)},
               {cont, sizeof(cont)},
               {trunc, sizeof(trunc)},
               {trunc, 0}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct kreader r;
        kr_init(&r, bad[i].p, bad[i].n, NULL);
        CHECK_EQ_INT(kr_uvarint(&r), 0);
        CHECK_EQ_INT(r.err, -EBADMSG);
        CHECK(r.p == r.end);
        /* errors are sticky */
        CHECK_EQ_INT(kr_int8(&r), 0);
        CHECK_EQ_INT(r.err, -EBADMSG);
    }
}

TEST(test_proto_zigzag_varint_and_varlong)
{
    const int64_t vals[] = {0, -1, 1, -2, 63, -64, 64, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct wbuf b;
        wbuf_begin(&b);
        kw_varlong(&b.w, vals[i]);
        if (vals[i] >= INT32_MIN && vals[i] <= INT32_MAX)
            kw_varint(&b.w, (int32_t)vals[i]);
        long n = wbuf_end(&b);
        CHECK(n > 0);
        struct kreader r;
        kr_init(&r, b.out, (size_t)n, NULL);
        CHECK(kr_varlong(&r) == vals[i]);
        if (vals[i] >= INT32_MIN && vals[i] <= INT32_MAX)
            CHECK_EQ_INT(kr_varint(&r), vals[i]);
        CHECK_EQ_INT(r.err, 0);
        CHECK(r.p == r.end);
    }
    /* zig-zag: -1 -> 1, 1 -> 2, -64 -> 127 */
    struct wbuf b;
    wbuf_begin(&b);
    kw_varint(&b.w, -1);
    kw_varint(&b.w, 1);
    kw_varint(&b.w, -64);
    CHECK_EQ_INT(wbuf_end(&b), 3);
    static const uint8_t want[] = {0x01, 0x02, 0x7f};
    CHECK_MEM(b.out, want, 3);
}

TEST(test_proto_fixed_width_big_endian)
{
    struct wbuf b;
    wbuf_begin(&b);
    kw_int16(&b.w, -2);
    kw_int32(&b.w, 0x01020304);
    kw_int64(&b.w, -3);
    kw_uint16(&b.w, 0xfffe);
    kw_uint32(&b.w, 0xfffffffdu);
    kw_float64(&b.w, 1.5);
    kw_bool(&b.w, true);
    CHECK_EQ_INT(wbuf_end(&b), 2 + 4 + 8 + 2 + 4 + 8 + 1);
    static const uint8_t want[] = {0xff, 0xfe, 1,    2,    3,    4,    0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xfd, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xfd,
                                   0x3f, 0xf8, 0,    0,    0,    0,    0,    0,    0x01};
    CHECK_MEM(b.out, want, sizeof(want));
    /* reads at odd offsets (unaligned) are fine */
    struct kreader r;
    kr_init(&r, b.out, sizeof(want), NULL);
    CHECK_EQ_INT(kr_int16(&r), -2);
    CHECK_EQ_INT(kr_int32(&r), 0x01020304);
    CHECK_EQ_INT(kr_int64(&r), -3);
    CHECK_EQ_INT(kr_uint16(&r), 0xfffe);
    CHECK(kr_uint32(&r) == 0xfffffffdu);
    CHECK(kr_float64(&r) == 1.5);
    CHECK(kr_bool(&r));
    CHECK(r.p == r.end && r.err == 0);
    CHECK_EQ_INT(kr_int32(&r), 0);
    CHECK_EQ_INT(r.err, -EBADMSG);
}

TEST(test_proto_compact_and_classic_strings)
{
    static const uint8_t compact[] = {0x00, 0x01, 0x04, 'a', 'b', 'c'};
    struct kreader r;
    kr_init(&r, compact, sizeof(compact), NULL);
    struct kstr s = kr_string(&r, true, true);
    CHECK_EQ_INT(s.len, -1);
    s = kr_string(&r, true, true);
    CHECK_EQ_INT(s.len, 0);
    s = kr_string(&r, true, false);
    CHECK(s.len == 3 && memcmp(s.ptr, "abc", 3) == 0);
    CHECK(s.ptr == (const char *)compact + 3); /* a slice, not a copy */
    CHECK(r.p == r.end && r.err == 0);

    struct wbuf b;
    wbuf_begin(&b);
    kw_string(&b.w, KSTR_NULL, true, true);
    kw_string(&b.w, KSTR_LIT(""), true, false);
    kw_string(&b.w, KSTR_LIT("abc"), true, false);
    kw_string(&b.w, KSTR_NULL, false, true);
    kw_string(&b.w, KSTR_LIT("abc"), false, false);
    CHECK_EQ_INT(wbuf_end(&b), 6 + 2 + 5);
    CHECK_MEM(b.out, compact, sizeof(compact));
    static const uint8_t classic[] = {0xff, 0xff, 0x00, 0x03, 'a', 'b', 'c'};
    CHECK_MEM(b.out + 6, classic, sizeof(classic));
}

TEST(test_proto_string_length_errors)
{
    static const uint8_t null_compact[] = {0x00};
    static const uint8_t null_classic[] = {0xff, 0xff};
    static const uint8_t minus2[] = {0xff, 0xfe, 'a', 'b'};
    static const uint8_t too_long[] = {0x00, 0x05, 'a', 'b'};
    static const uint8_t too_long_compact[] = {0x06, 'a', 'b'};
    static const uint8_t over_max[] = {0x81, 0x80, 0x02}; /* compact length 32768 */
    struct kreader r;
    kr_init(&r, null_compact, 1, NULL);
    kr_string(&r, true, false); /* null where not nullable */
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, null_classic, 2, NULL);
    kr_string(&r, false, false);
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, minus2, sizeof(minus2), NULL);
    kr_string(&r, false, true); /* only -1 means null */
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, too_long, sizeof(too_long), NULL);
    kr_string(&r, false, false);
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, too_long_compact, sizeof(too_long_compact), NULL);
    kr_string(&r, true, false);
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, over_max, sizeof(over_max), NULL);
    kr_string(&r, true, false);
    CHECK_EQ_INT(r.err, -EBADMSG);

    /* the writer refuses what the version cannot carry */
    struct wbuf b;
    wbuf_begin(&b);
    kw_string(&b.w, KSTR_NULL, true, false);
    CHECK_EQ_INT(b.w.err, -EINVAL);
    wbuf_end(&b);
    static char big[40000];
    wbuf_begin(&b);
    kw_string(&b.w, (struct kstr){big, (int32_t)sizeof(big)}, false, false);
    CHECK_EQ_INT(b.w.err, -EINVAL);
    wbuf_end(&b);
}

TEST(test_proto_bytes_negative_lengths)
{
    static const uint8_t minus1[] = {0xff, 0xff, 0xff, 0xff};
    static const uint8_t minus5[] = {0xff, 0xff, 0xff, 0xfb};
    static const uint8_t ok[] = {0x00, 0x00, 0x00, 0x02, 0xaa, 0xbb};
    struct kreader r;
    kr_init(&r, minus1, 4, NULL);
    CHECK_EQ_INT(kr_bytes(&r, false, true).len, -1);
    CHECK_EQ_INT(r.err, 0);
    kr_init(&r, minus1, 4, NULL);
    kr_bytes(&r, false, false);
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, minus5, 4, NULL);
    kr_bytes(&r, false, true);
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, ok, sizeof(ok), NULL);
    struct kbytes b = kr_bytes(&r, false, false);
    CHECK(b.len == 2 && b.ptr == ok + 4);
    kr_init(&r, ok, 5, NULL); /* one byte short */
    kr_bytes(&r, false, false);
    CHECK_EQ_INT(r.err, -EBADMSG);
}

TEST(test_proto_array_count_checked_before_allocation)
{
    struct arena a;
    arena_init(&a, 0);
    static const uint8_t huge_classic[] = {0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    static const uint8_t huge_compact[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00};
    static const uint8_t minus2[] = {0xff, 0xff, 0xff, 0xfe};
    static const uint8_t three_ints_short[] = {0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0};
    struct karray_int32 ai;
    struct karray_str as;
    struct kreader r;

    kr_init(&r, huge_classic, sizeof(huge_classic), &a);
    kr_array_int32(&r, false, false, &ai);
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, huge_compact, sizeof(huge_compact), &a);
    kr_array_str(&r, true, true, &as);
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, minus2, sizeof(minus2), &a);
    kr_array_int32(&r, false, true, &ai);
    CHECK_EQ_INT(r.err, -EBADMSG);
    /* 3 int32 need 12 bytes, only 10 left: rejected from the count alone */
    kr_init(&r, three_ints_short, sizeof(three_ints_short), &a);
    kr_array_int32(&r, false, false, &ai);
    CHECK_EQ_INT(r.err, -EBADMSG);
    CHECK_EQ_INT(a.total, 0); /* nothing was allocated */

    /* element size bound: 2 elements of at least 6 bytes in 8 bytes is impossible */
    static const uint8_t two[] = {0x03, 0, 0, 0, 0, 0, 0, 0, 0};
    kr_init(&r, two, sizeof(two), &a);
    CHECK_EQ_INT(kr_array_len(&r, true, false, 6), 0);
    CHECK_EQ_INT(r.err, -EBADMSG);
    kr_init(&r, two, sizeof(two), &a);
    CHECK_EQ_INT(kr_array_len(&r, true, false, 4), 2);

    static const uint8_t null_arr[] = {0x00};
    kr_init(&r, null_arr, 1, &a);
    kr_array_int32(&r, true, true, &ai);
    CHECK(r.err == 0 && ai.n == -1 && ai.v == NULL);
    kr_init(&r, null_arr, 1, &a);
    kr_array_int32(&r, true, false, &ai);
    CHECK_EQ_INT(r.err, -EBADMSG);

    static const uint8_t strs[] = {0x03, 0x02, 'a', 0x01};
    kr_init(&r, strs, sizeof(strs), &a);
    kr_array_str(&r, true, false, &as);
    CHECK(r.err == 0 && as.n == 2 && as.v[0].len == 1 && as.v[1].len == 0);
    arena_free(&a);
}

TEST(test_proto_tagged_section_skipping)
{
    static const uint8_t tags[] = {0x03, 0x00, 0x01, 0xaa, 0x90, 0x01,
                                   0x02, 0xbb, 0xcc, 0x05, 0x00, 0x42};
    struct kreader r;
    kr_init(&r, tags, sizeof(tags), NULL);
    kr_skip_tags(&r);
    CHECK_EQ_INT(r.err, 0);
    CHECK_EQ_INT(kr_int8(&r), 0x42);
    /* a value size beyond the frame */
    static const uint8_t bad[] = {0x01, 0x00, 0x05, 0xaa};
    kr_init(&r, bad, sizeof(bad), NULL);
    kr_skip_tags(&r);
    CHECK_EQ_INT(r.err, -EBADMSG);
    /* a count claiming more fields than present */
    static const uint8_t short_count[] = {0x02, 0x00, 0x00};
    kr_init(&r, short_count, sizeof(short_count), NULL);
    kr_skip_tags(&r);
    CHECK_EQ_INT(r.err, -EBADMSG);
    /* a huge count stops at the end of the frame, without looping 4 billion times */
    static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00};
    kr_init(&r, huge, sizeof(huge), NULL);
    kr_skip_tags(&r);
    CHECK_EQ_INT(r.err, -EBADMSG);
}

static void write_u32_value(struct kwriter *w, int16_t v, const void *obj)
{
    kw_uint32(w, *(const uint32_t *)obj);
    kw_string(w, KSTR_LIT("hi"), true, false);
}

TEST(test_proto_tagged_field_writes_tag_size_value)
{
    uint32_t val = 7;
    struct wbuf b;
    wbuf_begin(&b);
    kw_tagged(&b.w, 300, write_u32_value, 0, &val);
    CHECK_EQ_INT(wbuf_end(&b), 2 + 1 + 4 + 3);
    static const uint8_t want[] = {0xac, 0x02, 0x07, 0, 0, 0, 7, 0x03, 'h', 'i'};
    CHECK_MEM(b.out, want, sizeof(want));
}

static int released;

static void count_release(void *ctx)
{
    released += *(int *)ctx;
}

TEST(test_proto_records_with_file_ranges)
{
    char path[] = "/tmp/gregor-proto-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    CHECK(write(fd, "0123456789", 10) == 10);
    int one = 1;
    struct kfile_range files[2] = {{fd, 2, 3, count_release, &one},
                                   {fd, 7, 2, count_release, &one}};
    struct krecords rec = {NULL, 0, files, 2};

    /* counting mode: no release, right size */
    struct kwriter cw;
    kw_init(&cw, NULL);
    kw_records(&cw, &rec, false, true);
    CHECK_EQ_INT(cw.count, 4 + 5);
    kw_records(&cw, &rec, true, true);
    CHECK_EQ_INT(cw.count, 9 + 1 + 5);

    released = 0;
    struct iochain ch;
    iochain_init(&ch);
    struct kwriter w;
    kw_init(&w, &ch);
    kw_int8(&w, 0x11);
    kw_records(&w, &rec, false, true);
    kw_records(&w, &rec, true, true);
    kw_int8(&w, 0x22);
    CHECK_EQ_INT(w.err, 0);
    CHECK_EQ_INT(ch.total, 1 + 9 + 6 + 1);
    CHECK_EQ_INT(w.count, ch.total);
    uint8_t out[32];
    CHECK_EQ_INT(iochain_flatten(&ch, out), 0);
    static const uint8_t want[] = {0x11, 0,    0,   0,   5,   '2', '3', '4', '7',
                                   '8',  0x06, '2', '3', '4', '7', '8', 0x22};
    CHECK_MEM(out, want, sizeof(want));
    CHECK_EQ_INT(released, 0);
    iochain_free(&ch);
    CHECK_EQ_INT(released, 4); /* the chain released each range once */

    /* after an error the encoder releases the ranges itself */
    released = 0;
    iochain_init(&ch);
    kw_init(&w, &ch);
    kw_string(&w, KSTR_NULL, false, false);
    CHECK_EQ_INT(w.err, -EINVAL);
    kw_records(&w, &rec, false, true);
    CHECK_EQ_INT(released, 2);
    iochain_free(&ch);
    CHECK_EQ_INT(released, 2);

    /* a null records value (no files) */
    struct wbuf b;
    wbuf_begin(&b);
    struct krecords null_rec = {NULL, -1, NULL, 0};
    kw_records(&b.w, &null_rec, false, true);
    kw_records(&b.w, &null_rec, true, true);
    CHECK_EQ_INT(wbuf_end(&b), 5);
    static const uint8_t nulls[] = {0xff, 0xff, 0xff, 0xff, 0x00};
    CHECK_MEM(b.out, nulls, 5);
    close(fd);
}

TEST(test_proto_uuid_and_primitive_arrays_round_trip)
{
    struct arena a;
    arena_init(&a, 0);
    struct kuuid ids[2];
    for (int i = 0; i < 16; i++) {
        ids[0].b[i] = (uint8_t)i;
        ids[1].b[i] = (uint8_t)(0xf0 | i);
    }
    int64_t longs[3] = {INT64_MIN, 0, INT64_MAX};
    struct karray_uuid au = {2, ids};
    struct karray_int64 al = {3, longs};
    struct karray_int8 nul = {-1, NULL};
    struct wbuf b;
    wbuf_begin(&b);
    kw_array_uuid(&b.w, &au, true, false);
    kw_array_int64(&b.w, &al, false, false);
    kw_array_int8(&b.w, &nul, true, true);
    long n = wbuf_end(&b);
    CHECK_EQ_INT(n, 1 + 32 + 4 + 24 + 1);
    struct kreader r;
    kr_init(&r, b.out, (size_t)n, &a);
    struct karray_uuid ru;
    struct karray_int64 rl;
    struct karray_int8 rn;
    kr_array_uuid(&r, true, false, &ru);
    kr_array_int64(&r, false, false, &rl);
    kr_array_int8(&r, true, true, &rn);
    CHECK(r.err == 0 && r.p == r.end);
    CHECK(ru.n == 2 && memcmp(ru.v, ids, 32) == 0);
    CHECK(rl.n == 3 && rl.v[0] == INT64_MIN && rl.v[2] == INT64_MAX);
    CHECK_EQ_INT(rn.n, -1);
    CHECK(!kproto_uuid_is_zero(ru.v[0]));
    arena_free(&a);
}

TEST_MAIN
