/*
 * Java-properties-style "key=value" text, as in Kafka's server.properties: one entry per line,
 * '#' or '!' comments, '=' or ':' separator, surrounding whitespace trimmed, a trailing
 * backslash continues the line. Later entries override earlier ones with the same key.
 */
#ifndef GREGOR_BASE_PROPERTIES_H
#define GREGOR_BASE_PROPERTIES_H

#include <stddef.h>

struct property {
    char *key;
    char *value;
    int line; /* 1-based line in the file, 0 for --override */
};

struct properties {
    struct property *items;
    size_t n;
    size_t cap;
};

void properties_init(struct properties *p);
void properties_free(struct properties *p);

/* Sets key to value (copies both), replacing an earlier value. Returns 0 or -ENOMEM. */
int properties_set(struct properties *p, const char *key, const char *value, int line);

/* Parses text; on a malformed line returns -EINVAL and writes its number to *bad_line. */
int properties_parse(struct properties *p, const char *text, int *bad_line);

/* Reads and parses a file. Returns 0, -errno from reading, or -EINVAL (see *bad_line). */
int properties_load(struct properties *p, const char *path, int *bad_line);

/* Parses "KEY=VALUE" as given to --override. Returns 0 or -EINVAL. */
int properties_set_override(struct properties *p, const char *kv);

const char *properties_get(const struct properties *p, const char *key);

#endif
