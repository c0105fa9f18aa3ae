/*
 * Kafka wire-protocol primitives: the reader and writer every generated codec is built on.
 *
 * Reading: a struct kreader walks one frame [p, end). Errors are sticky: the first failure stores
 * a negative errno in err (-EBADMSG malformed or truncated input, -ENOMEM arena exhausted,
 * -ENOTSUP unknown version) and moves p to end, so every later read fails too and returns a
 * zero value. Callers check err once at the end instead of after every field.
 *
 * Invariants the reader keeps, because its input is hostile:
 *   - never reads outside [p, end);
 *   - strings and byte fields are slices into the frame, never copied (the frame must outlive
 *     the decoded message);
 *   - a length or array count is checked against the bytes left in the frame before anything
 *     is allocated (an element takes at least one byte), so garbage cannot make it allocate
 *     more than a small multiple of the frame size;
 *   - negative lengths other than -1 (null) are errors, as is null where the schema does not
 *     allow it.
 *
 * Writing: a struct kwriter appends to an iochain. Errors are sticky the same way (-ENOMEM, or
 * -EINVAL for a value the version cannot carry, such as null in a non-nullable field). With
 * chain == NULL the writer only counts bytes (count), which is how tagged-field sizes are
 * computed. count is advanced in both modes.
 *
 * Not thread-safe; a reader or writer belongs to the thread handling its request.
 *
 * The message codecs built on this live in src/proto/gen/ (one <api>.h per API, kmsg.h for
 * all, api_table.h for dispatch). They are generated from Kafka's JSON schemas and committed;
 * after changing tools/genproto.py, regenerate from the repository root with
 *     python3 tools/genproto.py ../shared/kafka-protocol src/proto/gen
 */
#ifndef GREGOR_PROTO_CODEC_H
#define GREGOR_PROTO_CODEC_H

#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/arena.h"
#include "base/iochain.h"

/* A string slice; len == -1 means null (ptr is then NULL). Not NUL-terminated. */
struct kstr {
    const char *ptr;
    int32_t len;
};

/* A byte slice; len == -1 means null. */
struct kbytes {
    const uint8_t *ptr;
    int32_t len;
};

/* 16 raw bytes in wire order (most significant half first). All zero = no id. */
struct kuuid {
    uint8_t b[16];
};

/*
 * A range of a file to be sent with sendfile(2). When encoded, release(ctx) is called exactly
 * once: by the iochain when it is freed, or by the encoder if encoding failed before the range
 * was appended. Counting-mode writers (chain == NULL) never call it.
 */
struct kfile_range {
    int fd;
    int64_t off;
    int32_t len;
    void (*release)(void *ctx);
    void *ctx;
};

/*
 * A `records` field. Decoded: data/len slice the frame (len -1 = null), files is NULL.
 * For encoding, either in-memory bytes (files == NULL) or, when files != NULL, the
 * concatenation of nfiles file ranges (data/len ignored).
 */
struct krecords {
    const uint8_t *data;
    int32_t len;
    const struct kfile_range *files;
    int32_t nfiles;
};

/* Arrays of primitives: n == -1 means null; v points into the decode arena. One line per
 * type, a table. */
/* clang-format off */
struct karray_bool { int32_t n; bool *v; };
struct karray_int8 { int32_t n; int8_t *v; };
struct karray_int16 { int32_t n; int16_t *v; };
struct karray_int32 { int32_t n; int32_t *v; };
struct karray_int64 { int32_t n; int64_t *v; };
struct karray_uint16 { int32_t n; uint16_t *v; };
struct karray_uint32 { int32_t n; uint32_t *v; };
struct karray_float64 { int32_t n; double *v; };
struct karray_uuid { int32_t n; struct kuuid *v; };
struct karray_str { int32_t n; struct kstr *v; };
struct karray_bytes { int32_t n; struct kbytes *v; };
/* clang-format on */

struct kreader {
    const uint8_t *p, *end;
    int err;             /* 0 or the first negative errno */
    struct arena *arena; /* where arrays and nullable structs are allocated */
};

struct kwriter {
    struct iochain *chain; /* NULL: count bytes only */
    int err;               /* 0 or the first negative errno */
    size_t count;          /* bytes written (or that would have been written) */
};

#define KSTR_NULL ((struct kstr){NULL, -1})
#define KSTR_LIT(s) ((struct kstr){(s), (int32_t)(sizeof(s) - 1)})
#define KBYTES_NULL ((struct kbytes){NULL, -1})

/* Longest string the protocol can carry (int16 length, also enforced for compact strings). */
#define KPROTO_MAX_STRING 0x7fff

static inline void kr_init(struct kreader *r, const void *buf, size_t len, struct arena *arena)
{
    r->p = buf;
    r->end = r->p + len;
    r->err = 0;
    r->arena = arena;
}

static inline void kw_init(struct kwriter *w, struct iochain *chain)
{
    w->chain = chain;
    w->err = 0;
    w->count = 0;
}

static inline size_t kr_remaining(const struct kreader *r)
{
    return (size_t)(r->end - r->p);
}

/* Records the first error and stops all further reading. */
static inline void kr_fail(struct kreader *r, int err)
{
    if (r->err == 0)
        r->err = err;
    r->p = r->end;
}

static inline void kw_fail(struct kwriter *w, int err)
{
    if (w->err == 0)
        w->err = err;
}

/* Returns the next n bytes and advances, or NULL (err set) when fewer are left. */
static inline const uint8_t *kr_take(struct kreader *r, size_t n)
{
    if (kr_remaining(r) < n) {
        kr_fail(r, -EBADMSG);
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    return p;
}

static inline int8_t kr_int8(struct kreader *r)
{
    const uint8_t *p = kr_take(r, 1);
    return p ? (int8_t)p[0] : 0;
}

static inline bool kr_bool(struct kreader *r)
{
    return kr_int8(r) != 0;
}

static inline uint16_t kr_uint16(struct kreader *r)
{
    uint16_t v;
    const uint8_t *p = kr_take(r, 2);
    if (p == NULL)
        return 0;
    memcpy(&v, p, 2);
    return be16toh(v);
}

static inline int16_t kr_int16(struct kreader *r)
{
    return (int16_t)kr_uint16(r);
}

static inline uint32_t kr_uint32(struct kreader *r)
{
    uint32_t v;
    const uint8_t *p = kr_take(r, 4);
    if (p == NULL)
        return 0;
    memcpy(&v, p, 4);
    return be32toh(v);
}

static inline int32_t kr_int32(struct kreader *r)
{
    return (int32_t)kr_uint32(r);
}

static inline int64_t kr_int64(struct kreader *r)
{
    uint64_t v;
    const uint8_t *p = kr_take(r, 8);
    if (p == NULL)
        return 0;
    memcpy(&v, p, 8);
    return (int64_t)be64toh(v);
}

static inline double kr_float64(struct kreader *r)
{
    uint64_t u = (uint64_t)kr_int64(r);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static inline struct kuuid kr_uuid(struct kreader *r)
{
    struct kuuid u;
    const uint8_t *p = kr_take(r, 16);
    if (p)
        memcpy(u.b, p, 16);
    else
        memset(u.b, 0, 16);
    return u;
}

/* Unsigned LEB128, at most 5 bytes and 32 bits. */
uint32_t kr_uvarint(struct kreader *r);
/* Zig-zag signed varint (5 bytes max) and varlong (10 bytes max), as in record batches. */
int32_t kr_varint(struct kreader *r);
int64_t kr_varlong(struct kreader *r);
/* Unsigned LEB128 up to 64 bits (10 bytes). */
uint64_t kr_uvarlong(struct kreader *r);

/*
 * Variable-length fields. flex selects the compact encoding (uvarint N+1) over the classic
 * one (int16 for strings, int32 otherwise); nullable says whether null is allowed here.
 */
struct kstr kr_string(struct kreader *r, bool flex, bool nullable);
struct kbytes kr_bytes(struct kreader *r, bool flex, bool nullable);
struct krecords kr_records(struct kreader *r, bool flex, bool nullable);

/*
 * Reads an array count: returns -1 for null (when allowed), else a count checked so that
 * count * min_elem_size <= bytes left. On error returns 0 with err set.
 */
int32_t kr_array_len(struct kreader *r, bool flex, bool nullable, size_t min_elem_size);

/* Allocates n zero-filled elements of size from the reader's arena; NULL + -ENOMEM on failure. */
void *kr_alloc(struct kreader *r, size_t n, size_t size);

/* n elements of size for an array just counted: NULL for n <= 0 (no error), else kr_alloc. */
void *kr_alloc_array(struct kreader *r, int32_t n, size_t size);

/* Arrays of primitives (count, then elements). */
void kr_array_bool(struct kreader *r, bool flex, bool nullable, struct karray_bool *out);
void kr_array_int8(struct kreader *r, bool flex, bool nullable, struct karray_int8 *out);
void kr_array_int16(struct kreader *r, bool flex, bool nullable, struct karray_int16 *out);
void kr_array_int32(struct kreader *r, bool flex, bool nullable, struct karray_int32 *out);
void kr_array_int64(struct kreader *r, bool flex, bool nullable, struct karray_int64 *out);
void kr_array_uint16(struct kreader *r, bool flex, bool nullable, struct karray_uint16 *out);
void kr_array_uint32(struct kreader *r, bool flex, bool nullable, struct karray_uint32 *out);
void kr_array_float64(struct kreader *r, bool flex, bool nullable, struct karray_float64 *out);
void kr_array_uuid(struct kreader *r, bool flex, bool nullable, struct karray_uuid *out);
void kr_array_str(struct kreader *r, bool flex, bool nullable, struct karray_str *out);
void kr_array_bytes(struct kreader *r, bool flex, bool nullable, struct karray_bytes *out);

/*
 * Tagged-field section helpers. kr_tag_begin reads a tag and its size, points *val at the
 * value's bytes (a reader bounded to them) and moves r past them; kr_tag_end carries an error
 * found while decoding the value back to r. Unknown tags need nothing more: they are skipped.
 */
uint32_t kr_tag_begin(struct kreader *r, struct kreader *val);
void kr_tag_end(struct kreader *r, const struct kreader *val);
/* Skips a whole tagged-field section (a struct with no known tags in this version). */
void kr_skip_tags(struct kreader *r);

/*
 * Returns a pointer to n bytes to fill, or NULL when counting or after an error (the bytes
 * are still counted).
 */
static inline uint8_t *kw_space(struct kwriter *w, size_t n)
{
    w->count += n;
    if (w->chain == NULL || w->err)
        return NULL;
    uint8_t *p = iochain_reserve(w->chain, n);
    if (p == NULL)
        kw_fail(w, -ENOMEM);
    return p;
}

static inline void kw_int8(struct kwriter *w, int8_t v)
{
    uint8_t *p = kw_space(w, 1);
    if (p)
        p[0] = (uint8_t)v;
}

static inline void kw_bool(struct kwriter *w, bool v)
{
    kw_int8(w, v ? 1 : 0);
}

static inline void kw_uint16(struct kwriter *w, uint16_t v)
{
    uint8_t *p = kw_space(w, 2);
    if (p) {
        v = htobe16(v);
        memcpy(p, &v, 2);
    }
}

static inline void kw_int16(struct kwriter *w, int16_t v)
{
    kw_uint16(w, (uint16_t)v);
}

static inline void kw_uint32(struct kwriter *w, uint32_t v)
{
    uint8_t *p = kw_space(w, 4);
    if (p) {
        v = htobe32(v);
        memcpy(p, &v, 4);
    }
}

static inline void kw_int32(struct kwriter *w, int32_t v)
{
    kw_uint32(w, (uint32_t)v);
}

static inline void kw_int64(struct kwriter *w, int64_t v)
{
    uint8_t *p = kw_space(w, 8);
    if (p) {
        uint64_t u = htobe64((uint64_t)v);
        memcpy(p, &u, 8);
    }
}

static inline void kw_float64(struct kwriter *w, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    kw_int64(w, (int64_t)u);
}

static inline void kw_uuid(struct kwriter *w, struct kuuid u)
{
    uint8_t *p = kw_space(w, 16);
    if (p)
        memcpy(p, u.b, 16);
}

/* Raw bytes, no length prefix. */
void kw_raw(struct kwriter *w, const void *data, size_t len);
void kw_uvarint(struct kwriter *w, uint32_t v);
void kw_uvarlong(struct kwriter *w, uint64_t v);
void kw_varint(struct kwriter *w, int32_t v);
void kw_varlong(struct kwriter *w, int64_t v);
/* Bytes an unsigned varint of v takes. */
size_t kproto_uvarint_size(uint32_t v);

/* Variable-length fields; a null where !nullable sets -EINVAL. */
void kw_string(struct kwriter *w, struct kstr s, bool flex, bool nullable);
void kw_bytes(struct kwriter *w, struct kbytes b, bool flex, bool nullable);
void kw_records(struct kwriter *w, const struct krecords *rec, bool flex, bool nullable);

/* Writes an array count (n == -1 null). Elements follow, written by the caller. */
void kw_array_len(struct kwriter *w, int32_t n, bool flex, bool nullable);

void kw_array_bool(struct kwriter *w, const struct karray_bool *a, bool flex, bool nullable);
void kw_array_int8(struct kwriter *w, const struct karray_int8 *a, bool flex, bool nullable);
void kw_array_int16(struct kwriter *w, const struct karray_int16 *a, bool flex, bool nullable);
void kw_array_int32(struct kwriter *w, const struct karray_int32 *a, bool flex, bool nullable);
void kw_array_int64(struct kwriter *w, const struct karray_int64 *a, bool flex, bool nullable);
void kw_array_uint16(struct kwriter *w, const struct karray_uint16 *a, bool flex, bool nullable);
void kw_array_uint32(struct kwriter *w, const struct karray_uint32 *a, bool flex, bool nullable);
void kw_array_float64(struct kwriter *w, const struct karray_float64 *a, bool flex, bool nullable);
void kw_array_uuid(struct kwriter *w, const struct karray_uuid *a, bool flex, bool nullable);
void kw_array_str(struct kwriter *w, const struct karray_str *a, bool flex, bool nullable);
void kw_array_bytes(struct kwriter *w, const struct karray_bytes *a, bool flex, bool nullable);

/* Writes one value of a tagged field: fn(w, version, obj) encodes the value. */
typedef void (*kw_value_fn)(struct kwriter *w, int16_t version, const void *obj);

/*
 * Writes a tagged field: the tag, the value's size (found by running fn on a counting writer),
 * then the value.
 */
void kw_tagged(struct kwriter *w, uint32_t tag, kw_value_fn fn, int16_t version, const void *obj);

/* Helpers used by generated code to decide whether a tagged field differs from its default. */
static inline bool kproto_str_eq(struct kstr a, const char *lit, int32_t litlen)
{
    return a.len == litlen && (litlen <= 0 || memcmp(a.ptr, lit, (size_t)litlen) == 0);
}

static inline bool kproto_uuid_is_zero(struct kuuid u)
{
    static const uint8_t zero[16];
    return memcmp(u.b, zero, 16) == 0;
}

#endif
