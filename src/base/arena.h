/*
 * Arena allocator: many small allocations freed in one go.
 *
 * A request's decoded form lives in one arena that is freed after its response is sent, so
 * decoders never free anything individually. Memory comes from a chain of chunks; an allocation
 * larger than the chunk size gets a chunk of its own. Not thread-safe: an arena belongs to
 * whichever thread is handling its request.
 */
#ifndef GREGOR_BASE_ARENA_H
#define GREGOR_BASE_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
    struct arena_chunk *head; /* chunk currently allocated from */
    size_t chunk_size;        /* size of ordinary chunks */
    size_t total;             /* bytes obtained from malloc, for limits and metrics */
};

/* Prepares an arena whose chunks are chunk_size bytes (0 = 16 KiB). Allocates nothing yet. */
void arena_init(struct arena *a, size_t chunk_size);

/* Returns n bytes aligned to 16, or NULL when malloc fails. Memory is not zeroed. */
void *arena_alloc(struct arena *a, size_t n);

/* Like arena_alloc but zeroed; n*size overflow returns NULL. */
void *arena_calloc(struct arena *a, size_t n, size_t size);

/* Copies len bytes of s and a terminating NUL into the arena. */
char *arena_strndup(struct arena *a, const char *s, size_t len);

/* Frees every chunk but the first; the arena can be reused. */
void arena_reset(struct arena *a);

/* Frees everything; the arena must be arena_init'ed again before reuse. */
void arena_free(struct arena *a);

#endif
