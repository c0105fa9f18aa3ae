/*
 * Kafka wire-protocol primitives (see codec.h for the error and ownership rules).
 *
 * Everything here validates before it trusts: lengths against the bytes left, counts against
 * the bytes left times the smallest possible element, varints against 32/64 bits.
 */
#include "proto/codec.h"

#include <limits.h>

/* ---- reading ---------------------------------------------------------------------------- */

uint64_t kr_uvarlong(struct kreader *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            break;
        uint8_t b = *r->p++;
        if (i == 9 && b > 0x01)
            break; /* more than 64 bits */
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0)
            return v;
    }
    kr_fail(r, -EBADMSG);
    return 0;
}

uint32_t kr_uvarint(struct kreader *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 5; i++) {
        if (r->p >= r->end)
            break;
        uint8_t b = *r->p++;
        if (i == 4 && b > 0x0f)
            break; /* more than 32 bits, or a sixth byte would follow */
        v |= (uint32_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0)
            return v;
    }
    kr_fail(r, -EBADMSG);
    return 0;
}

int32_t kr_varint(struct kreader *r)
{
    uint32_t u = kr_uvarint(r);
    return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

int64_t kr_varlong(struct kreader *r)
{
    uint64_t u = kr_uvarlong(r);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

/*
 * Reads a length prefix: compact uvarint N+1, or classic int16/int32. Returns N, -1 for null;
 * anything below -1 is returned as is for the caller to reject.
 */
static int64_t kr_length(struct kreader *r, bool flex, bool wide)
{
    if (flex)
        return (int64_t)kr_uvarint(r) - 1;
    return wide ? kr_int32(r) : kr_int16(r);
}

/* Checks a decoded length; returns the slice start or NULL (null value or error). */
static const uint8_t *kr_slice(struct kreader *r, int64_t len, bool nullable, int64_t max)
{
    if (r->err)
        return NULL;
    if (len < 0) {
        if (len != -1 || !nullable)
            kr_fail(r, -EBADMSG);
        return NULL;
    }
    if (len > max) {
        kr_fail(r, -EBADMSG);
        return NULL;
    }
    return kr_take(r, (size_t)len);
}

struct kstr kr_string(struct kreader *r, bool flex, bool nullable)
{
    int64_t len = kr_length(r, flex, false);
    const uint8_t *p = kr_slice(r, len, nullable, KPROTO_MAX_STRING);
    if (p == NULL)
        return r->err ? (struct kstr){"", 0} : KSTR_NULL;
    return (struct kstr){(const char *)p, (int32_t)len};
}

struct kbytes kr_bytes(struct kreader *r, bool flex, bool nullable)
{
    int64_t len = kr_length(r, flex, true);
    const uint8_t *p = kr_slice(r, len, nullable, INT32_MAX);
    if (p == NULL)
        return r->err ? (struct kbytes){(const uint8_t *)"", 0} : KBYTES_NULL;
    return (struct kbytes){p, (int32_t)len};
}

struct krecords kr_records(struct kreader *r, bool flex, bool nullable)
{
    struct kbytes b = kr_bytes(r, flex, nullable);
    return (struct krecords){b.ptr, b.len, NULL, 0};
}

int32_t kr_array_len(struct kreader *r, bool flex, bool nullable, size_t min_elem_size)
{
    int64_t n = kr_length(r, flex, true);
    if (r->err)
        return 0;
    if (n < 0) {
        if (n != -1 || !nullable) {
            kr_fail(r, -EBADMSG);
            return 0;
        }
        return -1;
    }
    if (min_elem_size == 0)
        min_elem_size = 1;
    if ((uint64_t)n > kr_remaining(r) / min_elem_size) {
        kr_fail(r, -EBADMSG);
        return 0;
    }
    return (int32_t)n;
}

void *kr_alloc(struct kreader *r, size_t n, size_t size)
{
    void *p = r->arena ? arena_calloc(r->arena, n, size) : NULL;
    if (p == NULL)
        kr_fail(r, -ENOMEM);
    return p;
}

void *kr_alloc_array(struct kreader *r, int32_t n, size_t size)
{
    return n > 0 ? kr_alloc(r, (size_t)n, size) : NULL;
}

/* Defines kr_array_<name>: count, one arena allocation, then the elements. */
#define KR_ARRAY(name, type, elem_size, read_elem)                                                 \
    void kr_array_##name(struct kreader *r, bool flex, bool nullable, struct karray_##name *out)   \
    {                                                                                              \
        out->v = NULL;                                                                             \
        out->n = kr_array_len(r, flex, nullable, elem_size);                                       \
        if (out->n <= 0)                                                                           \
            return;                                                                                \
        out->v = kr_alloc(r, (size_t)out->n, sizeof(type));                                        \
        for (int32_t i = 0; i < out->n && !r->err; i++)                                            \
            out->v[i] = read_elem;                                                                 \
    }

KR_ARRAY(bool, bool, 1, kr_bool(r))
KR_ARRAY(int8, int8_t, 1, kr_int8(r))
KR_ARRAY(int16, int16_t, 2, kr_int16(r))
KR_ARRAY(int32, int32_t, 4, kr_int32(r))
KR_ARRAY(int64, int64_t, 8, kr_int64(r))
KR_ARRAY(uint16, uint16_t, 2, kr_uint16(r))
KR_ARRAY(uint32, uint32_t, 4, kr_uint32(r))
KR_ARRAY(float64, double, 8, kr_float64(r))
KR_ARRAY(uuid, struct kuuid, 16, kr_uuid(r))
KR_ARRAY(str, struct kstr, 1, kr_string(r, flex, false))
KR_ARRAY(bytes, struct kbytes, 1, kr_bytes(r, flex, false))

uint32_t kr_tag_begin(struct kreader *r, struct kreader *val)
{
    uint32_t tag = kr_uvarint(r);
    uint32_t size = kr_uvarint(r);
    const uint8_t *p = r->err ? NULL : kr_take(r, size);
    val->p = p ? p : r->end;
    val->end = p ? p + size : r->end;
    val->err = r->err;
    val->arena = r->arena;
    return tag;
}

void kr_tag_end(struct kreader *r, const struct kreader *val)
{
    if (val->err)
        kr_fail(r, val->err);
}

void kr_skip_tags(struct kreader *r)
{
    uint32_t n = kr_uvarint(r);
    for (uint32_t i = 0; i < n && !r->err; i++) {
        struct kreader val;
        kr_tag_begin(r, &val);
    }
}

/* ---- writing ---------------------------------------------------------------------------- */

void kw_raw(struct kwriter *w, const void *data, size_t len)
{
    if (len == 0)
        return;
    uint8_t *p = kw_space(w, len);
    if (p)
        memcpy(p, data, len);
}

size_t kproto_uvarint_size(uint32_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void kw_uvarlong(struct kwriter *w, uint64_t v)
{
    uint8_t buf[10];
    size_t n = 0;
    while (v >= 0x80) {
        buf[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    buf[n++] = (uint8_t)v;
    kw_raw(w, buf, n);
}

void kw_uvarint(struct kwriter *w, uint32_t v)
{
    if (v < 0x80) {
        kw_int8(w, (int8_t)v);
        return;
    }
    kw_uvarlong(w, v);
}

void kw_varint(struct kwriter *w, int32_t v)
{
    kw_uvarint(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void kw_varlong(struct kwriter *w, int64_t v)
{
    kw_uvarlong(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/*
 * Writes a length prefix for len (-1 = null). Returns false (and sets err) when the value
 * cannot be written: null where not nullable, or too long for the prefix.
 */
static bool kw_length(struct kwriter *w, int64_t len, bool flex, bool wide, bool nullable)
{
    if (len < -1 || (len == -1 && !nullable) || len > (wide ? INT32_MAX - 1 : KPROTO_MAX_STRING)) {
        kw_fail(w, -EINVAL);
        return false;
    }
    if (flex)
        kw_uvarint(w, (uint32_t)(len + 1));
    else if (wide)
        kw_int32(w, (int32_t)len);
    else
        kw_int16(w, (int16_t)len);
    return len > 0;
}

void kw_string(struct kwriter *w, struct kstr s, bool flex, bool nullable)
{
    if (kw_length(w, s.len, flex, false, nullable))
        kw_raw(w, s.ptr, (size_t)s.len);
}

void kw_bytes(struct kwriter *w, struct kbytes b, bool flex, bool nullable)
{
    if (kw_length(w, b.len, flex, true, nullable))
        kw_raw(w, b.ptr, (size_t)b.len);
}

static void kw_release_files(const struct krecords *rec)
{
    for (int32_t i = 0; i < rec->nfiles; i++)
        if (rec->files[i].release)
            rec->files[i].release(rec->files[i].ctx);
}

void kw_records(struct kwriter *w, const struct krecords *rec, bool flex, bool nullable)
{
    if (rec->files == NULL) {
        kw_bytes(w, (struct kbytes){rec->data, rec->len}, flex, nullable);
        return;
    }
    int64_t total = 0;
    for (int32_t i = 0; i < rec->nfiles; i++)
        total += rec->files[i].len < 0 ? INT64_MAX / 4 : rec->files[i].len;
    kw_length(w, total, flex, true, nullable);
    if (w->chain == NULL) {
        w->count += (size_t)total;
        return;
    }
    /* From here the ranges belong to the chain, or are released now if we cannot append. */
    if (w->err) {
        kw_release_files(rec);
        return;
    }
    for (int32_t i = 0; i < rec->nfiles; i++) {
        const struct kfile_range *f = &rec->files[i];
        w->count += (size_t)f->len;
        if (w->err) {
            if (f->release)
                f->release(f->ctx);
        } else if (iochain_append_file(w->chain, f->fd, (off_t)f->off, (size_t)f->len, f->release,
                                       f->ctx) != 0) {
            kw_fail(w, -ENOMEM);
        }
    }
}

void kw_array_len(struct kwriter *w, int32_t n, bool flex, bool nullable)
{
    kw_length(w, n, flex, true, nullable);
}

#define KW_ARRAY(name, write_elem)                                                                 \
    void kw_array_##name(struct kwriter *w, const struct karray_##name *a, bool flex,              \
                         bool nullable)                                                            \
    {                                                                                              \
        kw_array_len(w, a->n, flex, nullable);                                                     \
        for (int32_t i = 0; i < a->n; i++)                                                         \
            write_elem;                                                                            \
    }

KW_ARRAY(bool, kw_bool(w, a->v[i]))
KW_ARRAY(int8, kw_int8(w, a->v[i]))
KW_ARRAY(int16, kw_int16(w, a->v[i]))
KW_ARRAY(int32, kw_int32(w, a->v[i]))
KW_ARRAY(int64, kw_int64(w, a->v[i]))
KW_ARRAY(uint16, kw_uint16(w, a->v[i]))
KW_ARRAY(uint32, kw_uint32(w, a->v[i]))
KW_ARRAY(float64, kw_float64(w, a->v[i]))
KW_ARRAY(uuid, kw_uuid(w, a->v[i]))
KW_ARRAY(str, kw_string(w, a->v[i], flex, false))
KW_ARRAY(bytes, kw_bytes(w, a->v[i], flex, false))

void kw_tagged(struct kwriter *w, uint32_t tag, kw_value_fn fn, int16_t version, const void *obj)
{
    struct kwriter sizer = {NULL, 0, 0};
    fn(&sizer, version, obj);
    if (sizer.err) {
        kw_fail(w, sizer.err);
        return;
    }
    if (sizer.count > UINT32_MAX) {
        kw_fail(w, -EINVAL);
        return;
    }
    kw_uvarint(w, tag);
    kw_uvarint(w, (uint32_t)sizer.count);
    fn(w, version, obj);
}
