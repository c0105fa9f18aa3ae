/*
 * Log compaction; see compactor.h. Two passes over the cleanable segments: the first builds the
 * key map (128-bit fingerprint of each key -> its newest offset), the second rewrites each
 * segment that has something to drop. Invariants: offsets of surviving records never change;
 * a segment is replaced only while it is still in the log (checked under the segment list's
 * write lock, so retention or DeleteRecords cannot race with the swap); every cleaned segment
 * lies wholly below the last stable offset read at the start of the pass, so an open
 * transaction's records neither enter the key map nor lose anything to it.
 */
#include "storage/compactor.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/logger.h"
#include "record/record_builder.h"
#include "record/record_iter.h"
#include "storage/log_internal.h"
#include "storage/txn_index.h"

#define COMPACT_MAX_DECOMPRESSED (256u << 20)

/* ---- key map ---- */

struct keymap {
    uint64_t *h1, *h2;
    int64_t *offset; /* -1 = empty slot */
    size_t cap;      /* power of two */
};

static void key_hash(const uint8_t *k, int32_t len, uint64_t *h1, uint64_t *h2)
{
    uint64_t a = 1469598103934665603ULL, b = 0x9e3779b97f4a7c15ULL ^ (uint64_t)len;
    for (int32_t i = 0; i < len; i++) {
        a = (a ^ k[i]) * 1099511628211ULL;
        b = (b ^ k[i]) * 0xff51afd7ed558ccdULL;
        b ^= b >> 29;
    }
    *h1 = a;
    *h2 = b | 1; /* never 0: distinguishes a real fingerprint */
}

static int keymap_init(struct keymap *m, size_t records)
{
    size_t cap = 64;
    while (cap < records * 2)
        cap <<= 1;
    m->cap = cap;
    m->h1 = calloc(cap, sizeof(uint64_t));
    m->h2 = calloc(cap, sizeof(uint64_t));
    m->offset = malloc(cap * sizeof(int64_t));
    if (!m->h1 || !m->h2 || !m->offset)
        return -ENOMEM;
    for (size_t i = 0; i < cap; i++)
        m->offset[i] = -1;
    return 0;
}

static void keymap_free(struct keymap *m)
{
    free(m->h1);
    free(m->h2);
    free(m->offset);
}

static size_t keymap_slot(const struct keymap *m, uint64_t h1, uint64_t h2)
{
    size_t i = (size_t)(h1 ^ (h2 >> 7)) & (m->cap - 1);
    while (m->offset[i] >= 0 && !(m->h1[i] == h1 && m->h2[i] == h2))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void keymap_put(struct keymap *m, const uint8_t *k, int32_t len, int64_t offset)
{
    uint64_t h1, h2;
    key_hash(k, len, &h1, &h2);
    size_t i = keymap_slot(m, h1, h2);
    m->h1[i] = h1;
    m->h2[i] = h2;
    m->offset[i] = offset;
}

static int64_t keymap_get(const struct keymap *m, const uint8_t *k, int32_t len)
{
    uint64_t h1, h2;
    key_hash(k, len, &h1, &h2);
    return m->offset[keymap_slot(m, h1, h2)];
}

/* ---- segment access ---- */

/* The bytes of a pinned closed segment: its read-only mapping, or a pread copy (*owned). */
static int compact_bytes(struct segment *seg, const uint8_t **data, int64_t *len, uint8_t **owned)
{
    int64_t size = segment_size(seg);
    *owned = NULL;
    *len = size;
    if (seg->log_map != NULL && (int64_t)seg->log_map_len >= size) {
        *data = seg->log_map;
        return 0;
    }
    uint8_t *buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL)
        return -ENOMEM;
    int64_t got = 0;
    while (got < size) {
        ssize_t n = pread(seg->log_fd, buf + got, (size_t)(size - got), got);
        if (n <= 0) {
            free(buf);
            return n < 0 ? -errno : -EIO;
        }
        got += n;
    }
    *data = *owned = buf;
    return 0;
}

typedef int (*compact_batch_fn)(void *arg, const uint8_t *batch, size_t size,
                                const struct record_batch_header *h);

/* Calls fn for every whole batch of a pinned segment. */
static int compact_each_batch(struct segment *seg, compact_batch_fn fn, void *arg)
{
    const uint8_t *data = NULL;
    int64_t len = 0;
    uint8_t *owned = NULL;
    int rc = compact_bytes(seg, &data, &len, &owned);
    int64_t pos = 0;
    while (rc == 0 && len - pos >= RECORD_BATCH_HEADER_SIZE) {
        struct record_batch_header h;
        rc = record_batch_header_parse(data + pos, (size_t)(len - pos), &h);
        size_t size = rc == 0 ? record_batch_size(&h) : 0;
        if (rc != 0 || size > (size_t)(len - pos))
            return free(owned), LOG_ERR_CORRUPT;
        rc = fn(arg, data + pos, size, &h);
        pos += (int64_t)size;
    }
    free(owned);
    return rc;
}

/* ---- pass 1: the map ---- */

static int count_batch(void *arg, const uint8_t *batch, size_t size,
                       const struct record_batch_header *h)
{
    *(size_t *)arg += h->record_count > 0 ? (size_t)h->record_count : 0;
    return 0;
}

/* ---- aborted transactions ---- */

/* The partition's aborted transactions (its .txnindex files), read once per pass. */
struct aborted_set {
    struct aborted_txn *v;
    size_t n;
};

static void aborted_load(const char *dir, struct aborted_set *a)
{
    struct txn_index *ti;
    a->v = NULL;
    a->n = 0;
    if (txn_index_open(dir, &ti) != 0)
        return;
    size_t n = txn_index_count(ti);
    a->v = n ? calloc(n, sizeof(*a->v)) : NULL;
    if (a->v != NULL)
        a->n = txn_index_collect(ti, INT64_MIN, INT64_MAX, a->v, n);
    txn_index_close(ti);
}

/* True for a data batch of an aborted transaction (Kafka's cleaner discards those and keeps
 * them out of the key map, so they never shadow a committed value). A producer has one open
 * transaction at a time: its batches between the first offset and the ABORT marker are it. */
static bool aborted_batch(const struct aborted_set *a, const struct record_batch_header *h)
{
    if (!(h->attributes & RECORD_ATTR_TRANSACTIONAL) || (h->attributes & RECORD_ATTR_CONTROL))
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->v[i].producer_id == h->producer_id && a->v[i].first_offset <= h->base_offset &&
            h->base_offset < a->v[i].last_offset)
            return true;
    return false;
}

struct map_pass {
    struct keymap *map;
    const struct aborted_set *aborted;
};

static int map_batch(void *arg, const uint8_t *batch, size_t size,
                     const struct record_batch_header *h)
{
    struct map_pass *mp = arg;
    struct keymap *m = mp->map;
    if ((h->attributes & RECORD_ATTR_CONTROL) || aborted_batch(mp->aborted, h))
        return 0;
    struct record_iter it;
    struct record rec;
    int rc = record_iter_init(&it, batch, size, COMPACT_MAX_DECOMPRESSED);
    while (rc == 0 && (rc = record_iter_next(&it, &rec)) == 1) {
        rc = 0;
        if (rec.key != NULL)
            keymap_put(m, rec.key, rec.key_len, rec.offset);
    }
    record_iter_release(&it);
    return rc < 0 ? LOG_ERR_CORRUPT : 0;
}

/* ---- pass 2: rewriting one segment ---- */

struct rewrite {
    const struct keymap *map;
    const struct aborted_set *aborted;
    int64_t tombstone_horizon; /* tombstones with timestamp below this are dropped */
    uint8_t *out;
    size_t len, cap;
    int64_t removed;
};

static int rewrite_emit(struct rewrite *w, const uint8_t *bytes, size_t n)
{
    if (w->cap - w->len < n) {
        size_t ncap = w->cap ? w->cap * 2 : 1 << 16;
        while (ncap - w->len < n)
            ncap *= 2;
        uint8_t *nb = realloc(w->out, ncap);
        if (nb == NULL)
            return -ENOMEM;
        w->out = nb;
        w->cap = ncap;
    }
    memcpy(w->out + w->len, bytes, n);
    w->len += n;
    return 0;
}

static bool rewrite_keep(const struct rewrite *w, const struct record *rec)
{
    if (rec->key == NULL)
        return false; /* a compacted topic's records need keys; Kafka drops these too */
    if (keymap_get(w->map, rec->key, rec->key_len) != rec->offset)
        return false;
    return rec->value != NULL || rec->timestamp >= w->tombstone_horizon;
}

static int rewrite_batch(void *arg, const uint8_t *batch, size_t size,
                         const struct record_batch_header *h)
{
    struct rewrite *w = arg;
    if (h->attributes & RECORD_ATTR_CONTROL)
        return rewrite_emit(w, batch, size);
    if (aborted_batch(w->aborted, h)) {
        w->removed += h->record_count;
        return 0;
    }
    struct record_builder b;
    record_builder_init_like(&b, h, record_batch_compression(h));
    struct record_iter it;
    struct record rec;
    int32_t total = 0, kept = 0;
    int rc = record_iter_init(&it, batch, size, COMPACT_MAX_DECOMPRESSED);
    while (rc == 0 && (rc = record_iter_next(&it, &rec)) == 1) {
        rc = 0;
        total++;
        if (rewrite_keep(w, &rec)) {
            kept++;
            rc = record_builder_copy_record(&b, h, &rec);
        }
    }
    record_iter_release(&it);
    if (rc < 0) {
        record_builder_release(&b);
        return rc == -ENOMEM ? rc : LOG_ERR_CORRUPT;
    }
    w->removed += total - kept;
    if (kept == total) {
        rc = rewrite_emit(w, batch, size);
    } else if (kept > 0) {
        uint8_t *nb;
        size_t nlen;
        rc = record_builder_finish(&b, &nb, &nlen);
        if (rc == 0) {
            rc = rewrite_emit(w, nb, nlen);
            free(nb);
        }
    }
    record_builder_release(&b);
    return rc;
}

/* Writes buf to path durably. */
static int write_file(const char *path, const uint8_t *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = n < 0 ? -errno : -EIO;
            close(fd);
            unlink(path);
            return err;
        }
        done += (size_t)n;
    }
    int rc = fdatasync(fd) == 0 ? 0 : -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        unlink(path);
    return rc;
}

/* Replaces seg (still at index i of the log) with the cleaned file. */
static int compact_swap(struct log *log, struct segment *seg, const char *cleaned, int64_t size)
{
    char path[4096];
    struct segment *ns = NULL;
    int rc = segment_init_closed(log->dir, seg->base_offset, size, seg->index_max_bytes,
                                 seg->index_interval_bytes, &ns);
    if (rc != 0)
        return rc;
    pthread_rwlock_wrlock(&log->segments_lock);
    size_t i = log_segment_index_locked(log, seg->base_offset);
    if (i + 1 >= log->nsegs || log->segs[i] != seg || seg->deleted || seg->replaced) {
        /* Deleted by retention/DeleteRecords or truncation meanwhile, or became active: drop
         * the result. */
        pthread_rwlock_unlock(&log->segments_lock);
        segment_unref(ns);
        unlink(cleaned);
        return 0;
    }
    segment_file_name(path, sizeof(path), log->dir, seg->base_offset, ".index");
    unlink(path);
    segment_file_name(path, sizeof(path), log->dir, seg->base_offset, ".timeindex");
    unlink(path);
    segment_file_name(path, sizeof(path), log->dir, seg->base_offset, ".log");
    if (rename(cleaned, path) != 0) {
        rc = -errno;
        pthread_rwlock_unlock(&log->segments_lock);
        segment_unref(ns);
        unlink(cleaned);
        return rc;
    }
    log->segs[i] = ns;
    log_segments_assert_sorted_locked(log);
    pthread_rwlock_unlock(&log->segments_lock);
    checkpoint_sync_dir(log->dir);
    segment_unref(seg); /* the array's reference; pinned readers keep the old file open */
    return 1;
}

/* Cleans one pinned segment; returns 1 if replaced, 0 if nothing to drop, or an error. */
static int compact_segment(struct log *log, struct segment *seg, struct rewrite *w,
                           struct log_compact_stats *st)
{
    w->len = 0;
    w->removed = 0;
    int rc = compact_each_batch(seg, rewrite_batch, w);
    if (rc != 0 || w->removed == 0)
        return rc;
    char cleaned[4096];
    segment_file_name(cleaned, sizeof(cleaned), log->dir, seg->base_offset, ".log.cleaned");
    rc = write_file(cleaned, w->out, w->len);
    if (rc != 0)
        return rc;
    int64_t before = segment_size(seg);
    rc = compact_swap(log, seg, cleaned, (int64_t)w->len);
    if (rc == 1) {
        st->segments_cleaned++;
        st->bytes_before += before;
        st->bytes_after += (int64_t)w->len;
        st->records_removed += w->removed;
    }
    return rc;
}

/*
 * Pins the cleanable segments: the closed ones whose records all lie below `bound`, the last
 * stable offset (Kafka's firstUncleanableDirtyOffset: an open transaction's records, and
 * everything after its first one, wait until it is decided; nothing above the high watermark
 * is touched either). Returns the count; *out is malloc'ed.
 */
static size_t compact_snapshot(struct log *log, int64_t bound, struct segment ***out)
{
    pthread_rwlock_rdlock(&log->segments_lock);
    size_t n = 0;
    while (n + 1 < log->nsegs && log->segs[n + 1]->base_offset <= bound)
        n++;
    assert(n == 0 || log->segs[n]->base_offset <= bound);
    struct segment **segs = calloc(n + 1, sizeof(*segs));
    for (size_t i = 0; segs && i < n; i++) {
        segs[i] = log->segs[i];
        segment_ref(segs[i]);
    }
    pthread_rwlock_unlock(&log->segments_lock);
    *out = segs;
    return segs ? n : 0;
}

static bool compact_dirty_enough(struct log *log, struct segment **segs, size_t n, double ratio)
{
    int64_t total = 0, dirty = 0;
    for (size_t i = 0; i < n; i++) {
        total += segment_size(segs[i]);
        if (segs[i]->base_offset >= log->cleaned_offset)
            dirty += segment_size(segs[i]);
    }
    return total > 0 && dirty > 0 && (double)dirty / (double)total >= ratio;
}

int log_compact(struct log *log, int64_t now_ms, bool force, struct log_compact_stats *stats)
{
    struct log_compact_stats local = {0};
    struct log_config cfg = log_get_config(log);
    struct segment **segs;
    /* The pass reads segment bytes through their mappings: a reader in flight, so a follower's
     * truncation waits for it rather than cut a file under it. */
    uint32_t phase = log_reader_enter(log);
    /* Read before the snapshot: a transaction opened later starts above the bound. */
    size_t n = compact_snapshot(log, log_last_stable_offset(log), &segs);
    int rc = 0;
    size_t pinned = 0;
    while (pinned < n && rc >= 0) {
        rc = segment_acquire(segs[pinned]);
        if (rc >= 0)
            pinned++;
    }
    if (rc < 0 || n == 0 ||
        (!force && !compact_dirty_enough(log, segs, n, cfg.min_cleanable_dirty_ratio)))
        goto out;
    size_t records = 0;
    for (size_t i = 0; i < n; i++)
        compact_each_batch(segs[i], count_batch, &records);
    struct keymap map;
    struct aborted_set aborted;
    aborted_load(log->dir, &aborted);
    rc = keymap_init(&map, records);
    struct map_pass mp = {&map, &aborted};
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = compact_each_batch(segs[i], map_batch, &mp);
    struct rewrite w = {
        .map = &map, .aborted = &aborted, .tombstone_horizon = now_ms - cfg.delete_retention_ms};
    for (size_t i = 0; rc >= 0 && i < n; i++)
        rc = compact_segment(log, segs[i], &w, &local);
    free(w.out);
    free(aborted.v);
    keymap_free(&map);
    if (rc >= 0) {
        log->cleaned_offset = segs[n - 1]->base_offset + 1;
        rc = 0;
        if (local.segments_cleaned)
            logger_info("cleaner",
                        "%s: compacted %d segment(s), %lld -> %lld bytes, %lld records "
                        "removed",
                        log->dir, local.segments_cleaned, (long long)local.bytes_before,
                        (long long)local.bytes_after, (long long)local.records_removed);
    }
out:
    for (size_t i = 0; i < pinned; i++)
        segment_release(segs[i]);
    for (size_t i = 0; i < n; i++)
        segment_unref(segs[i]);
    free(segs);
    log_reader_exit(log, phase);
    if (stats)
        *stats = local;
    return rc;
}

int log_compact_hook(struct log *log, int64_t now_ms, void *arg)
{
    return log_compact(log, now_ms, false, NULL);
}
