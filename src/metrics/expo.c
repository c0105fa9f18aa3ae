/* Prometheus text exposition writer; see expo.h. */
#include "metrics/expo.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void expo_init(struct expo *e)
{
    memset(e, 0, sizeof(*e));
}

void expo_free(struct expo *e)
{
    free(e->buf);
    expo_init(e);
}

char *expo_take(struct expo *e, size_t *len)
{
    char *b = e->buf;
    *len = e->len;
    expo_init(e);
    return b;
}

static bool expo_reserve(struct expo *e, size_t more)
{
    if (e->oom)
        return false;
    if (e->len + more + 1 <= e->cap)
        return true;
    size_t cap = e->cap ? e->cap : 4096;
    while (cap < e->len + more + 1)
        cap *= 2;
    char *b = realloc(e->buf, cap);
    if (b == NULL) {
        e->oom = true;
        return false;
    }
    e->buf = b;
    e->cap = cap;
    return true;
}

void expo_printf(struct expo *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0 || !expo_reserve(e, (size_t)n))
        return;
    if ((size_t)n < sizeof(small)) {
        memcpy(e->buf + e->len, small, (size_t)n + 1);
    } else {
        va_start(ap, fmt);
        vsnprintf(e->buf + e->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    e->len += (size_t)n;
}

void expo_family(struct expo *e, const char *name, const char *type, const char *help)
{
    expo_printf(e, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void expo_name(struct expo *e, const char *name, const char *labels)
{
    if (labels && labels[0])
        expo_printf(e, "%s{%s} ", name, labels);
    else
        expo_printf(e, "%s ", name);
}

void expo_int(struct expo *e, const char *name, const char *labels, int64_t v)
{
    expo_name(e, name, labels);
    expo_printf(e, "%" PRId64 "\n", v);
}

void expo_double(struct expo *e, const char *name, const char *labels, double v)
{
    expo_name(e, name, labels);
    expo_printf(e, "%.15g\n", v);
}

void expo_histogram(struct expo *e, const char *name, const char *labels, const int64_t *bounds_ns,
                    int nb, const uint64_t *counts, uint64_t sum_ns)
{
    const char *sep = labels && labels[0] ? "," : "";
    const char *lab = labels ? labels : "";
    uint64_t cum = 0;
    for (int i = 0; i < nb; i++) {
        cum += counts[i];
        expo_printf(e, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, lab, sep,
                    (double)bounds_ns[i] / 1e9, cum);
    }
    cum += counts[nb];
    expo_printf(e, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, lab, sep, cum);
    char n2[160];
    snprintf(n2, sizeof(n2), "%s_sum", name);
    expo_double(e, n2, labels, (double)sum_ns / 1e9);
    snprintf(n2, sizeof(n2), "%s_count", name);
    expo_int(e, n2, labels, (int64_t)cum);
}

int expo_labels(char *out, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    size_t len = 0;
    const char *k;
    int ok = n > 0;
    if (ok)
        out[0] = '\0';
    while (ok && (k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        int w = snprintf(out + len, n - len, "%s%s=\"", len ? "," : "", k);
        if (w < 0 || (size_t)w >= n - len) {
            ok = 0;
            break;
        }
        len += (size_t)w;
        for (const char *s = v ? v : ""; *s && ok; s++) {
            const char *esc = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
            size_t need = esc ? 2 : 1;
            if (len + need + 2 >= n) {
                ok = 0;
                break;
            }
            if (esc)
                memcpy(out + len, esc, 2);
            else
                out[len] = *s;
            len += need;
        }
        if (!ok || len + 2 >= n) {
            ok = 0;
            break;
        }
        out[len++] = '"';
        out[len] = '\0';
    }
    va_end(ap);
    return ok ? (int)len : -1;
}
