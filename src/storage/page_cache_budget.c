/*
 * Page-cache budget (see page_cache_budget.h): a FIFO ring of written ranges under one mutex.
 * A record is one writeback round of one segment (about LOG_WRITEBACK_BYTES, less for segments
 * smaller than that, one record each), so the ring holds about max_bytes / 4 MiB records, and
 * whole records are dropped.
 */
#include "storage/page_cache_budget.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cached_range {
    char *path; /* owned */
    int64_t from, to;
};

struct page_cache_budget {
    int64_t max_bytes;
    _Atomic int64_t dropped;
    pthread_mutex_t lock; /* guards everything below */
    struct cached_range *ring;
    size_t head, count, cap;
    int64_t total;
};

/* Ranges dropped per pass with the lock released. */
#define DROP_BATCH 8

int page_cache_budget_create(int64_t max_bytes, struct page_cache_budget **out)
{
    assert(max_bytes >= 0);
    struct page_cache_budget *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    b->max_bytes = max_bytes;
    pthread_mutex_init(&b->lock, NULL);
    *out = b;
    return 0;
}

void page_cache_budget_destroy(struct page_cache_budget *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->count; i++)
        free(b->ring[(b->head + i) % b->cap].path);
    free(b->ring);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

/* Lock held: makes room for one more record (the ring unrolled into a larger array). */
static int grow(struct page_cache_budget *b)
{
    size_t cap = b->cap ? b->cap * 2 : 64;
    struct cached_range *ring = malloc(cap * sizeof(*ring));
    if (ring == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < b->count; i++)
        ring[i] = b->ring[(b->head + i) % b->cap];
    free(b->ring);
    b->ring = ring;
    b->cap = cap;
    b->head = 0;
    return 0;
}

/* Lock held: appends [from, to) of path. Out of memory: not recorded. */
static void record(struct page_cache_budget *b, const char *path, int64_t from, int64_t to)
{
    char *copy = strdup(path);
    if (copy == NULL || (b->count == b->cap && grow(b) < 0)) {
        free(copy);
        return;
    }
    b->ring[(b->head + b->count++) % b->cap] = (struct cached_range){copy, from, to};
    b->total += to - from;
}

/* Lock held: takes up to DROP_BATCH of the oldest records while the total is over the budget.
 * Returns how many were taken (their paths now owned by the caller). */
static size_t take_excess(struct page_cache_budget *b, struct cached_range *out)
{
    size_t n = 0;
    while (n < DROP_BATCH && b->total > b->max_bytes) {
        assert(b->count > 0);
        struct cached_range *r = &b->ring[b->head];
        out[n++] = *r;
        b->total -= r->to - r->from;
        b->head = (b->head + 1) % b->cap;
        b->count--;
    }
    assert(b->total >= 0 && (b->count > 0 || b->total == 0));
    return n;
}

/* Waits for the range's writeback, then frees its pages. A file gone is nothing to do, nor is
 * a forgotten (empty) record: a length of 0 would mean "to the end of the file" to both calls,
 * and the path may by now name a new partition's file. */
static int64_t drop_range(const struct cached_range *r)
{
    if (r->to <= r->from)
        return 0;
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int64_t len = r->to - r->from;
    /* Only clean pages can be dropped: DONTNEED skips dirty and in-flight ones. */
    int rc = sync_file_range(fd, r->from, len,
                             SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                 SYNC_FILE_RANGE_WAIT_AFTER);
    if (rc == 0)
        rc = posix_fadvise(fd, r->from, len, POSIX_FADV_DONTNEED);
    close(fd);
    return rc == 0 ? len : 0;
}

void page_cache_budget_note(struct page_cache_budget *b, const char *path, int64_t from, int64_t to)
{
    assert(from >= 0 && from <= to);
    if (from == to)
        return;
    pthread_mutex_lock(&b->lock);
    record(b, path, from, to);
    pthread_mutex_unlock(&b->lock);
}

void page_cache_budget_trim(struct page_cache_budget *b)
{
    struct cached_range excess[DROP_BATCH];
    pthread_mutex_lock(&b->lock);
    for (;;) {
        size_t n = take_excess(b, excess);
        assert(n > 0 || b->total <= b->max_bytes);
        pthread_mutex_unlock(&b->lock);
        if (n == 0)
            return;
        for (size_t i = 0; i < n; i++) {
            atomic_fetch_add(&b->dropped, drop_range(&excess[i]));
            free(excess[i].path);
        }
        pthread_mutex_lock(&b->lock);
    }
}

/* Whether `path` names a file under the directory `dir` (dir_len bytes, no trailing '/'). */
static bool path_under(const char *path, const char *dir, size_t dir_len)
{
    return strncmp(path, dir, dir_len) == 0 && path[dir_len] == '/';
}

/* Cuts the records whose path `match` accepts back to bytes below `end` (0: empties them): the
 * bytes cut stop counting toward the total, and a trim past an emptied record drops nothing
 * (drop_range). The header's invariant is asserted after. */
static void cut_matching(struct page_cache_budget *b,
                         bool (*match)(const char *path, const char *key, size_t key_len),
                         const char *key, size_t key_len, int64_t end)
{
    assert(end >= 0);
    int64_t left = 0; /* what the records still add up to: the header's invariant */
    pthread_mutex_lock(&b->lock);
    for (size_t i = 0; i < b->count; i++) {
        struct cached_range *r = &b->ring[(b->head + i) % b->cap];
        if (r->to > end && r->to > r->from && match(r->path, key, key_len)) {
            int64_t to = r->from >= end ? r->from : end;
            b->total -= r->to - to;
            r->to = to;
        }
        left += r->to - r->from;
    }
    assert(b->total == left);
    (void)left;
    pthread_mutex_unlock(&b->lock);
}

void page_cache_budget_forget_dir(struct page_cache_budget *b, const char *dir)
{
    size_t dir_len = strlen(dir);
    while (dir_len > 1 && dir[dir_len - 1] == '/')
        dir_len--;
    cut_matching(b, path_under, dir, dir_len, 0);
}

/* Whether `path` is the file `file` (file_len bytes). */
static bool path_is(const char *path, const char *file, size_t file_len)
{
    return strncmp(path, file, file_len) == 0 && path[file_len] == '\0';
}

void page_cache_budget_forget_file(struct page_cache_budget *b, const char *path, int64_t from)
{
    cut_matching(b, path_is, path, strlen(path), from);
}

bool page_cache_budget_over(struct page_cache_budget *b)
{
    pthread_mutex_lock(&b->lock);
    bool over = b->total > b->max_bytes;
    pthread_mutex_unlock(&b->lock);
    return over;
}

int64_t page_cache_budget_cached_bytes(struct page_cache_budget *b)
{
    pthread_mutex_lock(&b->lock);
    int64_t total = b->total;
    pthread_mutex_unlock(&b->lock);
    return total;
}

int64_t page_cache_budget_dropped_bytes(struct page_cache_budget *b)
{
    return atomic_load(&b->dropped);
}
