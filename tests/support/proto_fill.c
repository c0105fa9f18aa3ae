/*
 * Deterministic value source for codec round-trip tests (see proto_fill.h). Linked into the unit
 * tests only, not into the broker's library.
 */
#include "support/proto_fill.h"

#include <stdio.h>
#include <stdlib.h>

void kproto_fill_init(struct kproto_fill *f, struct arena *arena, uint32_t seed, int nulls)
{
    f->arena = arena;
    f->counter = seed;
    f->depth = 0;
    f->nulls = nulls;
    f->minimal_depth = 0;
}

static uint32_t kproto_fill_next(struct kproto_fill *f)
{
    return ++f->counter;
}

void *kproto_fill_alloc(struct kproto_fill *f, size_t n, size_t size)
{
    void *p = arena_calloc(f->arena, n ? n : 1, size);
    if (p == NULL)
        abort();
    return p;
}

int64_t kproto_fill_int(struct kproto_fill *f, int64_t dflt, int64_t lo, int64_t hi)
{
    /* small positive values most of the time, sometimes the extremes of the type */
    uint32_t c = kproto_fill_next(f);
    int64_t v;
    if (c % 7 == 0)
        v = hi;
    else if (c % 11 == 0)
        v = lo;
    else
        v = (int64_t)(c % 100) + 1; /* every integer type holds 1..100 */
    if (v > hi)
        v = hi;
    if (v == dflt)
        v = v == hi ? v - 1 : v + 1;
    return v;
}

double kproto_fill_float(struct kproto_fill *f)
{
    return kproto_fill_next(f) + 0.25;
}

struct kuuid kproto_fill_uuid(struct kproto_fill *f)
{
    struct kuuid u;
    uint32_t c = kproto_fill_next(f);
    for (int i = 0; i < 16; i++)
        u.b[i] = (uint8_t)(c * 31u + (uint32_t)i * 7u + 1u);
    return u;
}

struct kstr kproto_fill_str(struct kproto_fill *f)
{
    uint32_t c = kproto_fill_next(f);
    char *s = kproto_fill_alloc(f, 16, 1);
    int n = snprintf(s, 16, "s%u", c);
    return (struct kstr){s, n};
}

struct kbytes kproto_fill_bytes(struct kproto_fill *f)
{
    uint32_t c = kproto_fill_next(f);
    int32_t n = (int32_t)(c % 5) + 1;
    uint8_t *b = kproto_fill_alloc(f, (size_t)n, 1);
    for (int32_t i = 0; i < n; i++)
        b[i] = (uint8_t)(c + (uint32_t)i * 13u);
    return (struct kbytes){b, n};
}

struct krecords kproto_fill_records(struct kproto_fill *f)
{
    struct kbytes b = kproto_fill_bytes(f);
    return (struct krecords){b.ptr, b.len, NULL, 0};
}

bool kproto_fill_null(struct kproto_fill *f)
{
    return f->nulls && kproto_fill_next(f) % 4 == 0;
}

int32_t kproto_fill_count(struct kproto_fill *f)
{
    if (f->minimal_depth)
        return f->depth + 1 == f->minimal_depth ? 64 : 1;
    return f->depth < 2 ? 2 : 1;
}

bool kproto_fill_keep_defaults(const struct kproto_fill *f)
{
    return f->minimal_depth && f->depth >= f->minimal_depth;
}
