/*
 * JSON output helpers for the console API. Everything is appended to an expo buffer, so one
 * check of `oom` at the end of a response covers every write.
 */
#include "console/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void json_string_n(struct expo *e, const char *s, size_t len)
{
    expo_printf(e, "\"");
    /* Invalid UTF-8 (a decoded URL, say) is shown byte by byte as Latin-1 code points. */
    bool latin1 = !json_utf8_valid((const uint8_t *)s, len);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != 0x7f && !(latin1 && ch >= 0x80))
            continue;
        if (i > run)
            expo_printf(e, "%.*s", (int)(i - run), s + run);
        if (ch == '"' || ch == '\\')
            expo_printf(e, "\\%c", ch);
        else if (ch == '\n')
            expo_printf(e, "\\n");
        else
            expo_printf(e, "\\u%04x", ch);
        run = i + 1;
    }
    if (len > run)
        expo_printf(e, "%.*s", (int)(len - run), s + run);
    expo_printf(e, "\"");
}

void json_string(struct expo *e, const char *s)
{
    json_string_n(e, s ? s : "", s ? strlen(s) : 0);
}

/* Length of the UTF-8 sequence starting at p (at most n bytes), or 0 when invalid. */
static size_t json_utf8_seq(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (len == 0 || c > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if (c == 0xe0 && p[1] < 0xa0) /* overlong */
        return 0;
    if (c == 0xed && p[1] >= 0xa0) /* surrogate */
        return 0;
    if (c == 0xf0 && p[1] < 0x90) /* overlong */
        return 0;
    if (c == 0xf4 && p[1] >= 0x90) /* above U+10FFFF */
        return 0;
    return len;
}

bool json_utf8_valid(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = json_utf8_seq(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Text worth showing as text: valid UTF-8 without control characters other than tab, newline
 * and carriage return (binary data often is valid UTF-8 by accident: small integers). */
static bool json_text_printable(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') || p[i] == 0x7f)
            return false;
    return json_utf8_valid(p, len);
}

/* Cuts n down to max without splitting a UTF-8 sequence. */
static size_t json_utf8_cut(const uint8_t *p, size_t n, size_t max)
{
    if (n <= max)
        return n;
    size_t cut = max;
    while (cut > 0 && (p[cut] & 0xc0) == 0x80)
        cut--;
    return cut;
}

void json_bytes_field(struct expo *e, const char *name, const uint8_t *p, int64_t len, size_t max)
{
    expo_printf(e, "\"%s\":{", name);
    if (p == NULL || len < 0) {
        expo_printf(e, "\"encoding\":\"null\",\"data\":null,\"length\":-1,\"truncated\":false}");
        return;
    }
    size_t n = (size_t)len;
    if (json_text_printable(p, n)) {
        size_t shown = json_utf8_cut(p, n, max);
        expo_printf(e, "\"encoding\":\"text\",\"data\":");
        json_string_n(e, (const char *)p, shown);
        expo_printf(e, ",\"length\":%zu,\"truncated\":%s}", n, shown < n ? "true" : "false");
        return;
    }
    size_t shown = n < max / 2 ? n : max / 2;
    expo_printf(e, "\"encoding\":\"hex\",\"data\":\"");
    char hex[129];
    for (size_t i = 0; i < shown;) {
        size_t k = 0;
        for (; k < 64 && i < shown; k++, i++)
            snprintf(hex + 2 * k, 3, "%02x", p[i]);
        expo_printf(e, "%.*s", (int)(2 * k), hex);
    }
    expo_printf(e, "\",\"length\":%zu,\"truncated\":%s}", n, shown < n ? "true" : "false");
}

int json_error(struct expo *e, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    expo_printf(e, "{\"error\":");
    json_string(e, msg);
    expo_printf(e, ",\"status\":%d}", status);
    return status;
}
