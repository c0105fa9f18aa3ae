/*
 * Owned strings of the group coordinator (struct gstr: a malloc'ed, NUL-terminated copy of a
 * Kafka string or bytes field, len -1 = null) and the copies between them and the request's
 * arena (struct kstr / kbytes, borrowed). Pure functions, any thread.
 */
#include "group/group_internal.h"

#include <stdlib.h>
#include <string.h>

void gstr_set(struct gstr *g, const void *p, int32_t len)
{
    gstr_free(g);
    if (len < 0) {
        g->p = NULL;
        g->len = -1;
        return;
    }
    g->p = malloc((size_t)len + 1);
    if (g->p == NULL) {
        g->len = -1;
        return;
    }
    if (len > 0)
        memcpy(g->p, p, (size_t)len);
    g->p[len] = '\0';
    g->len = len;
}

void gstr_free(struct gstr *g)
{
    free(g->p);
    g->p = NULL;
    g->len = -1;
}

bool gstr_eq(const struct gstr *g, struct kstr k)
{
    if (g->len < 0 || k.len < 0)
        return g->len < 0 && k.len < 0;
    return g->len == k.len && (k.len == 0 || memcmp(g->p, k.ptr, (size_t)k.len) == 0);
}

bool gstr_eq_str(const struct gstr *a, const struct gstr *b)
{
    return gstr_eq(a, gstr_kstr(b));
}

struct kstr gstr_kstr(const struct gstr *g)
{
    return g->len < 0 ? KSTR_NULL : (struct kstr){g->p, g->len};
}

struct kbytes gstr_kbytes(const struct gstr *g)
{
    return g->len < 0 ? KBYTES_NULL : (struct kbytes){(const uint8_t *)g->p, g->len};
}

struct kstr arena_kstr_of(struct arena *a, struct kstr k)
{
    if (k.len < 0)
        return KSTR_NULL;
    char *p = arena_strndup(a, k.ptr ? k.ptr : "", (size_t)k.len);
    return p ? (struct kstr){p, k.len} : (struct kstr){"", 0};
}

struct kstr arena_kstr(struct arena *a, const struct gstr *g)
{
    return arena_kstr_of(a, gstr_kstr(g));
}

struct kbytes arena_kbytes(struct arena *a, const struct gstr *g)
{
    struct kstr k = arena_kstr(a, g);
    return k.len < 0 ? KBYTES_NULL : (struct kbytes){(const uint8_t *)k.ptr, k.len};
}

char *kstr_strdup(struct kstr k)
{
    size_t n = k.len > 0 ? (size_t)k.len : 0;
    char *p = malloc(n + 1);
    if (p) {
        if (n)
            memcpy(p, k.ptr, n);
        p[n] = '\0';
    }
    return p;
}
