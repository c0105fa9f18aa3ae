/*
 * Test support for the generated codecs: a source of deterministic, non-default field values.
 * The generated kmsg_*_fill functions (tests/gen/fill/, written by tools/genproto.py) use it
 * to build messages in which every field present in a version carries something other than
 * its default, so that an encode -> decode -> encode round trip exercises every field, tagged
 * ones included.
 * Memory comes from the arena; strings are made up of printable ASCII.
 */
#ifndef GREGOR_TESTS_SUPPORT_PROTO_FILL_H
#define GREGOR_TESTS_SUPPORT_PROTO_FILL_H

#include "proto/codec.h"

struct kproto_fill {
    struct arena *arena;
    uint32_t counter; /* advances with every value handed out */
    int depth;        /* array nesting depth, keeps nested arrays small */
    int nulls;        /* when non-zero, nullable fields are sometimes null */
    /*
     * When non-zero: array elements at this depth are left at their defaults (the smallest
     * encoding an element can have) and arrays holding them get many elements, which checks
     * the decoder's minimum-element-size bound against real encodings.
     */
    int minimal_depth;
};

void kproto_fill_init(struct kproto_fill *f, struct arena *arena, uint32_t seed, int nulls);

/* A value in [lo, hi] that differs from dflt. */
int64_t kproto_fill_int(struct kproto_fill *f, int64_t dflt, int64_t lo, int64_t hi);
double kproto_fill_float(struct kproto_fill *f);
struct kuuid kproto_fill_uuid(struct kproto_fill *f);
struct kstr kproto_fill_str(struct kproto_fill *f);
struct kbytes kproto_fill_bytes(struct kproto_fill *f);
struct krecords kproto_fill_records(struct kproto_fill *f);
/* True now and then (when f->nulls): the caller then leaves a nullable field null. */
bool kproto_fill_null(struct kproto_fill *f);
/* Element count for an array whose elements will be at depth f->depth + 1. */
int32_t kproto_fill_count(struct kproto_fill *f);
/* True when a struct being filled should keep its defaults (see minimal_depth). */
bool kproto_fill_keep_defaults(const struct kproto_fill *f);
/* Zeroed memory from the arena; aborts on exhaustion (tests only). */
void *kproto_fill_alloc(struct kproto_fill *f, size_t n, size_t size);

#endif
