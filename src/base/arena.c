/*
 * Arena allocator. Invariant: head points to the newest chunk; used <= size in every chunk.
 */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_chunk {
    struct arena_chunk *next;
    size_t size;
    size_t used;
    _Alignas(16) unsigned char data[];
};

void arena_init(struct arena *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 16 * 1024;
    a->total = 0;
}

static struct arena_chunk *arena_chunk_new(struct arena *a, size_t size)
{
    struct arena_chunk *c = malloc(sizeof(*c) + size);
    if (c == NULL)
        return NULL;
    c->size = size;
    c->used = 0;
    c->next = a->head;
    a->head = c;
    a->total += size;
    return c;
}

void *arena_alloc(struct arena *a, size_t n)
{
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n)
        return NULL;
    struct arena_chunk *c = a->head;
    if (c == NULL || c->size - c->used < need) {
        if (need > a->chunk_size / 2) {
            /* Big allocation: its own chunk, inserted behind head so the head keeps its space. */
            struct arena_chunk *big = malloc(sizeof(*big) + need);
            if (big == NULL)
                return NULL;
            big->size = need;
            big->used = need;
            a->total += need;
            if (c == NULL) {
                big->next = NULL;
                a->head = big;
            } else {
                big->next = c->next;
                c->next = big;
            }
            return big->data;
        }
        c = arena_chunk_new(a, a->chunk_size);
        if (c == NULL)
            return NULL;
    }
    void *p = c->data + c->used;
    c->used += need;
    return p;
}

void *arena_calloc(struct arena *a, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    void *p = arena_alloc(a, n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t len)
{
    char *p = arena_alloc(a, len + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

void arena_reset(struct arena *a)
{
    struct arena_chunk *c = a->head;
    if (c == NULL)
        return;
    /* Keep the oldest ordinary-sized chunk: it is the last in the list. */
    struct arena_chunk *keep = NULL;
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        if (next == NULL && c->size == a->chunk_size) {
            keep = c;
            break;
        }
        free(c);
        c = next;
    }
    a->head = keep;
    a->total = keep ? keep->size : 0;
    if (keep)
        keep->used = 0;
}

void arena_free(struct arena *a)
{
    struct arena_chunk *c = a->head;
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
    a->total = 0;
}
