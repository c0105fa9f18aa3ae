/* Properties parser: see properties.h. Keys are unique in items[]; order is insertion order. */
#include "base/properties.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void properties_init(struct properties *p)
{
    memset(p, 0, sizeof(*p));
}

void properties_free(struct properties *p)
{
    for (size_t i = 0; i < p->n; i++) {
        free(p->items[i].key);
        free(p->items[i].value);
    }
    free(p->items);
    memset(p, 0, sizeof(*p));
}

const char *properties_get(const struct properties *p, const char *key)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->items[i].key, key) == 0)
            return p->items[i].value;
    return NULL;
}

int properties_set(struct properties *p, const char *key, const char *value, int line)
{
    char *v = strdup(value);
    if (v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->items[i].key, key) == 0) {
            free(p->items[i].value);
            p->items[i].value = v;
            p->items[i].line = line;
            return 0;
        }
    }
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        struct property *ni = realloc(p->items, ncap * sizeof(*ni));
        if (ni == NULL) {
            free(v);
            return -ENOMEM;
        }
        p->items = ni;
        p->cap = ncap;
    }
    char *k = strdup(key);
    if (k == NULL) {
        free(v);
        return -ENOMEM;
    }
    p->items[p->n++] = (struct property){k, v, line};
    return 0;
}

/* Trims whitespace at both ends of [s, s+len) in place; returns the new start. */
static char *trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* Parses one logical line (continuations already joined). */
static int parse_line(struct properties *p, char *line, int lineno)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#' || *s == '!')
        return 0;
    char *sep = strpbrk(s, "=:");
    if (sep == NULL)
        return -EINVAL;
    *sep = '\0';
    char *key = trim(s);
    char *value = trim(sep + 1);
    if (*key == '\0')
        return -EINVAL;
    return properties_set(p, key, value, lineno);
}

int properties_parse(struct properties *p, const char *text, int *bad_line)
{
    char *copy = strdup(text);
    if (copy == NULL)
        return -ENOMEM;
    int rc = 0, lineno = 0, start_line = 1;
    char *logical = copy, *w = copy;
    for (const char *r = copy;; r++) {
        if (*r == '\n' || *r == '\0') {
            lineno++;
            int cont = w > logical && w[-1] == '\\';
            if (cont) {
                w--;
                if (*r == '\0')
                    cont = 0;
            }
            if (!cont) {
                char end = *r;
                *w = '\0';
                rc = parse_line(p, logical, start_line);
                if (rc != 0) {
                    if (bad_line)
                        *bad_line = start_line;
                    break;
                }
                if (end == '\0')
                    break;
                logical = w = (char *)r + 1;
                start_line = lineno + 1;
            }
            continue;
        }
        *w++ = *r;
    }
    free(copy);
    return rc;
}

int properties_load(struct properties *p, const char *path, int *bad_line)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -errno;
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (mem == NULL) {
        fclose(f);
        return -ENOMEM;
    }
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        fwrite(chunk, 1, got, mem);
    int err = ferror(f) ? -EIO : 0;
    fclose(f);
    fclose(mem);
    int rc = err ? err : properties_parse(p, buf, bad_line);
    free(buf);
    return rc;
}

int properties_set_override(struct properties *p, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv)
        return -EINVAL;
    char key[256];
    size_t klen = (size_t)(eq - kv);
    if (klen >= sizeof(key))
        return -EINVAL;
    memcpy(key, kv, klen);
    key[klen] = '\0';
    return properties_set(p, key, eq + 1, 0);
}
