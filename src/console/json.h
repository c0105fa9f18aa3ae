/*
 * JSON writing into an expo buffer (the growing text buffer of metrics/expo.h): strings with
 * escaping, and byte strings rendered as text when they are valid UTF-8, else as hex.
 * Out of memory sets the buffer's oom flag like every expo writer.
 */
#ifndef GREGOR_CONSOLE_JSON_H
#define GREGOR_CONSOLE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/expo.h"

/* A quoted, escaped JSON string of s[0..len). s must be valid UTF-8 (see json_utf8_valid). */
void json_string_n(struct expo *e, const char *s, size_t len);
void json_string(struct expo *e, const char *s);

/* True when p[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool json_utf8_valid(const uint8_t *p, size_t len);

/*
 * Writes `"name":{"encoding":"text"|"hex"|"null","data":...,"length":N,"truncated":B}` for the
 * bytes p[0..len) (p NULL = null), showing at most max bytes (max / 2 as hex). Text when the
 * bytes are valid UTF-8 without control characters other than tab, newline and CR.
 */
void json_bytes_field(struct expo *e, const char *name, const uint8_t *p, int64_t len, size_t max);

/* {"error":"msg"} and returns status, for handlers' error paths. */
int json_error(struct expo *e, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
