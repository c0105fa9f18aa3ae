/*
 * Round trip of every version of every generated message: fill with non-default values,
 * encode, decode, encode again and compare bytes. Also: every truncation of a valid encoding
 * fails to decode, random corruption never crashes, and the counting writer agrees with the
 * real one.
 */
#include "test.h"

#include <stdint.h>

#include "proto/codec.h"
#include "proto/gen/api_table.h"
#include "gen/fill/fill.h"

/* Encodes msg into a fresh heap buffer; returns its length or -1. */
static long encode_flat(const struct kproto_codec *c, int16_t v, const void *msg, uint8_t **out)
{
    struct iochain ch;
    struct kwriter w;
    iochain_init(&ch);
    kw_init(&w, &ch);
    int rc = c->encode(&w, v, msg);
    long len = -1;
    if (rc == 0 && w.count == ch.total) {
        *out = malloc(ch.total + 1);
        if (*out && iochain_flatten(&ch, *out) == 0)
            len = (long)ch.total;
    }
    iochain_free(&ch);
    return len;
}

struct rt_stats {
    long messages;
    long bytes;
    long truncations;
};

/*
 * One round trip; returns NULL on success or a description of the first failure.
 * Truncation is checked at every byte for messages up to 4 KiB, sampled above.
 */
static const char *roundtrip_one(const struct kproto_codec *c, kproto_fill_fn fill, int16_t v,
                                 uint32_t seed, int nulls, int minimal_depth, struct rt_stats *st)
{
    static char why[256];
    const char *fail = NULL;
    struct arena a;
    arena_init(&a, 0);
    void *m1 = arena_calloc(&a, 1, c->size);
    void *m2 = arena_calloc(&a, 1, c->size);
    struct kproto_fill f;
    kproto_fill_init(&f, &a, seed, nulls);
    f.minimal_depth = minimal_depth;
    fill(&f, v, m1);

    uint8_t *b1 = NULL, *b2 = NULL;
    long n1 = encode_flat(c, v, m1, &b1);
    if (n1 < 0) {
        fail = "first encode failed";
        goto out;
    }
    struct kwriter counter;
    kw_init(&counter, NULL);
    if (c->encode(&counter, v, m1) != 0 || counter.count != (size_t)n1) {
        fail = "counting writer disagrees";
        goto out;
    }
    struct kreader r;
    kr_init(&r, b1, (size_t)n1, &a);
    if (c->decode(&r, v, m2) != 0) {
        snprintf(why, sizeof(why), "decode failed: %d", r.err);
        fail = why;
        goto out;
    }
    if (r.p != r.end) {
        fail = "decode left bytes";
        goto out;
    }
    long n2 = encode_flat(c, v, m2, &b2);
    if (n2 != n1 || memcmp(b1, b2, (size_t)n1) != 0) {
        fail = "re-encode differs";
        goto out;
    }
    long step = minimal_depth ? n1 + 1 : n1 <= 4096 ? 1 : n1 / 1024;
    for (long k = 0; k < n1; k += step) {
        struct arena ta;
        arena_init(&ta, 0);
        void *m3 = arena_calloc(&ta, 1, c->size);
        uint8_t *copy = malloc((size_t)k + 1); /* exact size, so ASan sees over-reads */
        memcpy(copy, b1, (size_t)k);
        kr_init(&r, copy, (size_t)k, &ta);
        int rc = c->decode(&r, v, m3);
        free(copy);
        arena_free(&ta);
        st->truncations++;
        if (rc == 0) {
            snprintf(why, sizeof(why), "truncated to %ld of %ld bytes decoded fine", k, n1);
            fail = why;
            goto out;
        }
    }
    st->messages++;
    st->bytes += n1;
out:
    free(b1);
    free(b2);
    arena_free(&a);
    return fail;
}

static int roundtrip_codec(const struct kproto_codec *c, kproto_fill_fn fill, int16_t lo,
                           int16_t hi, struct rt_stats *st)
{
    int bad = 0;
    for (int16_t v = lo; v <= hi; v++) {
        for (int nulls = 0; nulls <= 1; nulls++) {
            const char *why = roundtrip_one(c, fill, v, 1000u * (uint32_t)v + 17u, nulls, 0, st);
            if (why) {
                printf("  %s v%d (nulls=%d): %s\n", c->name, v, nulls, why);
                bad++;
            }
        }
        /* arrays of many default (smallest possible) elements at each depth */
        for (int depth = 1; depth <= 3; depth++) {
            const char *why = roundtrip_one(c, fill, v, 5u, 0, depth, st);
            if (why) {
                printf("  %s v%d (minimal elements at depth %d): %s\n", c->name, v, depth, why);
                bad++;
            }
        }
    }
    return bad;
}

TEST(test_proto_roundtrip_every_api_request_and_response)
{
    struct rt_stats st = {0, 0, 0};
    int bad = 0;
    for (int i = 0; i < kproto_api_count; i++) {
        const struct kproto_api *api = &kproto_apis[i];
        bad += roundtrip_codec(&api->request, kproto_fill_requests[i], api->min_version,
                               api->max_version, &st);
        bad += roundtrip_codec(&api->response, kproto_fill_responses[i], api->min_version,
                               api->max_version, &st);
    }
    printf("  %ld messages, %ld bytes, %ld truncations checked\n", st.messages, st.bytes,
           st.truncations);
    CHECK_EQ_INT(bad, 0);
    CHECK(kproto_api_count >= 88);
}

TEST(test_proto_roundtrip_every_data_schema)
{
    struct rt_stats st = {0, 0, 0};
    int bad = 0;
    for (int i = 0; i < kproto_data_schema_count; i++) {
        const struct kproto_data_schema *d = &kproto_data_schemas[i];
        bad += roundtrip_codec(&d->codec, kproto_fill_data[i], d->min_version, d->max_version, &st);
    }
    CHECK_EQ_INT(bad, 0);
}

/* Default-initialised messages (what a handler starts from) encode and decode too. */
TEST(test_proto_roundtrip_defaults)
{
    int bad = 0;
    for (int i = 0; i < kproto_api_count; i++) {
        const struct kproto_api *api = &kproto_apis[i];
        const struct kproto_codec *cs[2] = {&api->request, &api->response};
        for (int k = 0; k < 2; k++) {
            for (int16_t v = api->min_version; v <= api->max_version; v++) {
                struct arena a;
                arena_init(&a, 0);
                void *m = arena_calloc(&a, 1, cs[k]->size);
                void *m2 = arena_calloc(&a, 1, cs[k]->size);
                cs[k]->init(m);
                uint8_t *b = NULL;
                long n = encode_flat(cs[k], v, m, &b);
                struct kreader r;
                kr_init(&r, b, n < 0 ? 0 : (size_t)n, &a);
                if (n < 0 || cs[k]->decode(&r, v, m2) != 0 || r.p != r.end) {
                    printf("  %s v%d: default message does not round-trip\n", cs[k]->name, v);
                    bad++;
                }
                free(b);
                arena_free(&a);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/*
 * Corrupts valid encodings at random (byte flips, varint-ish garbage, length fields set to
 * huge values) and decodes them: decoding may fail or succeed, but must never crash, read out
 * of bounds (ASan) or allocate far more than the input size.
 */
TEST(test_proto_decode_random_corruption_never_crashes)
{
    uint32_t rng = 0x9e3779b9u;
    long decoded_ok = 0, rejected = 0;
    for (int i = 0; i < kproto_api_count; i++) {
        const struct kproto_api *api = &kproto_apis[i];
        for (int k = 0; k < 2; k++) {
            const struct kproto_codec *c = k ? &api->response : &api->request;
            kproto_fill_fn fill = k ? kproto_fill_responses[i] : kproto_fill_requests[i];
            for (int16_t v = api->min_version; v <= api->max_version; v++) {
                struct arena a;
                arena_init(&a, 0);
                void *m = arena_calloc(&a, 1, c->size);
                struct kproto_fill f;
                kproto_fill_init(&f, &a, (uint32_t)v, 1);
                fill(&f, v, m);
                uint8_t *b = NULL;
                long n = encode_flat(c, v, m, &b);
                CHECK(n >= 0);
                for (int iter = 0; iter < 40 && n > 0; iter++) {
                    uint8_t *copy = malloc((size_t)n);
                    memcpy(copy, b, (size_t)n);
                    int flips = 1 + (int)(xorshift(&rng) % 4);
                    for (int j = 0; j < flips; j++) {
                        uint32_t pos = xorshift(&rng) % (uint32_t)n;
                        uint32_t what = xorshift(&rng) % 4;
                        copy[pos] = what == 0   ? (uint8_t)xorshift(&rng)
                                    : what == 1 ? 0xff
                                    : what == 2 ? 0x7f
                                                : 0x80;
                    }
                    struct arena da;
                    arena_init(&da, 0);
                    void *out = arena_calloc(&da, 1, c->size);
                    struct kreader r;
                    kr_init(&r, copy, (size_t)n, &da);
                    if (c->decode(&r, v, out) == 0)
                        decoded_ok++;
                    else
                        rejected++;
                    /* arrays are bounded by the bytes left: allow generous slack per byte */
                    CHECK(da.total <= 64 * 1024 + (size_t)n * 512);
                    arena_free(&da);
                    free(copy);
                }
                free(b);
                arena_free(&a);
            }
        }
    }
    printf("  corrupted inputs: %ld decoded, %ld rejected\n", decoded_ok, rejected);
    CHECK(rejected > 0);
}

TEST(test_proto_unknown_version_is_enotsup)
{
    const struct kproto_api *api = kproto_api_lookup(KPROTO_API_METADATA);
    CHECK(api != NULL);
    struct arena a;
    arena_init(&a, 0);
    void *m = arena_calloc(&a, 1, api->request.size);
    uint8_t buf[64] = {0};
    struct kreader r;
    kr_init(&r, buf, sizeof(buf), &a);
    CHECK_EQ_INT(api->request.decode(&r, (int16_t)(api->max_version + 1), m), -ENOTSUP);
    struct iochain ch;
    iochain_init(&ch);
    struct kwriter w;
    kw_init(&w, &ch);
    api->request.init(m);
    CHECK_EQ_INT(api->request.encode(&w, -1, m), -ENOTSUP);
    iochain_free(&ch);
    arena_free(&a);
    CHECK(kproto_api_lookup(-1) == NULL);
    CHECK(kproto_api_lookup(1000) == NULL);
}

TEST_MAIN
