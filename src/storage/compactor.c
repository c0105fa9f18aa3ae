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
#include "record/control_record.h"
#include "storage/cleaned_txns.h"
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

/* ---- transactions ---- */

/* The partition's aborted transactions, read once per pass from its transaction index. */
struct aborted_set {
    struct aborted_txn *v;
    size_t n;
};

static void aborted_load(struct txn_index *ti, struct aborted_set *a)
{
    a->v = NULL;
    a->n = 0;
    size_t n = txn_index_count(ti);
    a->v = n ? calloc(n, sizeof(*a->v)) : NULL;
    if (a->v != NULL)
        a->n = txn_index_collect(ti, INT64_MIN, INT64_MAX, a->v, n);
    if (a->n > n)
        a->n = n; /* an append meanwhile (above the cleaned range: irrelevant) */
}

#define MARKER_TYPE_UNKNOWN 0x7fff

/* The control type of a marker batch: CONTROL_TYPE_*, -1 when it holds no record, or
 * MARKER_TYPE_UNKNOWN when it cannot be read (kept as written). */
static int marker_type(const uint8_t *batch, size_t size, const struct record_batch_header *h)
{
    struct control_marker m;
    if (h->record_count == 0)
        return -1;
    if (record_batch_compression(h) != RECORD_COMPRESSION_NONE ||
        control_marker_parse(batch + RECORD_BATCH_HEADER_SIZE, size - RECORD_BATCH_HEADER_SIZE,
                             &m) != 0)
        return MARKER_TYPE_UNKNOWN;
    return m.type;
}

struct map_pass {
    struct keymap *map;
    struct cleaned_txns txns;
};

static int map_batch(void *arg, const uint8_t *batch, size_t size,
                     const struct record_batch_header *h)
{
    struct map_pass *mp = arg;
    struct keymap *m = mp->map;
    if (h->attributes & RECORD_ATTR_CONTROL) {
        struct aborted_txn unused;
        cleaned_txns_on_marker(&mp->txns, h, marker_type(batch, size, h), &unused);
        return 0;
    }
    /* Aborted data stays out of the map: it never shadows a committed value. */
    if (cleaned_txns_on_batch(&mp->txns, h))
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
    struct cleaned_txns txns; /* carried from segment to segment */
    int64_t now_ms;
    int64_t delete_retention_ms;
    int64_t next_horizon_ms; /* earliest delete horizon still ahead, INT64_MAX: none */
    uint8_t *out;
    size_t len, cap;
    int64_t removed;
    bool changed;  /* the segment's bytes differ from what was read */
    int64_t *keep; /* marker offsets of the segment's .txnindex entries that stay */
    size_t nkeep, keep_cap;
    const struct log_active_producer *active; /* sorted by producer id */
    size_t nactive;
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

static int rewrite_keep_entry(struct rewrite *w, int64_t last_offset)
{
    if (w->nkeep == w->keep_cap) {
        size_t cap = w->keep_cap ? w->keep_cap * 2 : 16;
        int64_t *v = realloc(w->keep, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        w->keep = v;
        w->keep_cap = cap;
    }
    w->keep[w->nkeep++] = last_offset;
    return 0;
}

static void rewrite_note_horizon(struct rewrite *w, int64_t horizon_ms)
{
    if (horizon_ms < w->next_horizon_ms)
        w->next_horizon_ms = horizon_ms;
}

static int active_cmp(const void *a, const void *b)
{
    int64_t x = ((const struct log_active_producer *)a)->producer_id;
    int64_t y = ((const struct log_active_producer *)b)->producer_id;
    return (x > y) - (x < y);
}

/*
 * True when the batch must stay, empty if none of its records does (Kafka's cleanInto,
 * isBatchLastRecordOfProducer): its producer is still active and this is the batch of its last
 * data offset (it holds the producer's last sequence), or, for a producer with no data batch at
 * its epoch, a marker of that epoch (it holds the epoch that fences).
 */
static bool rewrite_retain_empty(const struct rewrite *w, const struct record_batch_header *h)
{
    if (h->producer_id < 0 || w->nactive == 0)
        return false;
    struct log_active_producer key = {.producer_id = h->producer_id};
    const struct log_active_producer *a =
        bsearch(&key, w->active, w->nactive, sizeof(key), active_cmp);
    if (a == NULL)
        return false;
    if (a->last_data_offset >= 0)
        return record_batch_last_offset(h) == a->last_data_offset;
    return (h->attributes & RECORD_ATTR_CONTROL) && h->producer_epoch == a->epoch;
}

/* Keeps the batch as an empty batch (its header only; one already empty is copied). */
static int rewrite_emit_empty(struct rewrite *w, const uint8_t *batch, size_t size,
                              const struct record_batch_header *h)
{
    uint8_t empty[RECORD_BATCH_HEADER_SIZE];
    record_batch_write_empty(h, empty);
    if (size != sizeof(empty) || memcmp(batch, empty, sizeof(empty)) != 0)
        w->changed = true;
    return rewrite_emit(w, empty, sizeof(empty));
}

/* True when a tombstone of a batch with (has_horizon, horizon) must stay: KIP-534, a tombstone
 * stays until the horizon stamped on its batch by an earlier pass has passed. */
static bool rewrite_keep_tombstone(const struct rewrite *w, bool has_horizon, int64_t horizon)
{
    return !has_horizon || w->now_ms < horizon;
}

static bool rewrite_keep(const struct rewrite *w, const struct record *rec, bool has_horizon,
                         int64_t horizon)
{
    if (rec->key == NULL)
        return false; /* a compacted topic's records need keys; Kafka drops these too */
    if (keymap_get(w->map, rec->key, rec->key_len) != rec->offset)
        return false;
    return rec->value != NULL || rewrite_keep_tombstone(w, has_horizon, horizon);
}

/* Re-encodes the batch with the records rewrite_keep keeps (all of a control batch), stamping
 * the delete horizon now + delete.retention.ms when stamp is set. */
static int rewrite_reencode(struct rewrite *w, const uint8_t *batch, size_t size,
                            const struct record_batch_header *h, bool stamp)
{
    bool control = h->attributes & RECORD_ATTR_CONTROL;
    bool has_horizon = h->attributes & RECORD_ATTR_DELETE_HORIZON;
    struct record_builder b;
    record_builder_init_like(&b, h, record_batch_compression(h));
    if (stamp)
        record_builder_set_delete_horizon(&b, w->now_ms + w->delete_retention_ms);
    struct record_iter it;
    struct record rec;
    int rc = record_iter_init(&it, batch, size, COMPACT_MAX_DECOMPRESSED);
    while (rc == 0 && (rc = record_iter_next(&it, &rec)) == 1) {
        rc = 0;
        if (control || rewrite_keep(w, &rec, has_horizon, h->base_timestamp))
            rc = record_builder_copy_record(&b, h, &rec);
    }
    record_iter_release(&it);
    uint8_t *nb = NULL;
    size_t nlen = 0;
    if (rc == 0)
        rc = record_builder_finish(&b, &nb, &nlen);
    record_builder_release(&b);
    if (rc < 0)
        return rc == RECORD_ERR_NOMEM ? -ENOMEM : LOG_ERR_CORRUPT;
    rc = rewrite_emit(w, nb, nlen);
    free(nb);
    w->changed = true;
    return rc;
}

/*
 * A transaction marker (Kafka's cleanInto for control batches): it stays while its transaction
 * still has data in the log; once it guards nothing, the first pass stamps it with a delete
 * horizon (like a tombstone) and a pass after the horizon removes it, so a consumer that was
 * reading the transaction when its data went still sees the marker.
 */
static int rewrite_marker(struct rewrite *w, const uint8_t *batch, size_t size,
                          const struct record_batch_header *h)
{
    struct aborted_txn keep;
    bool discardable = cleaned_txns_on_marker(&w->txns, h, marker_type(batch, size, h), &keep);
    if (keep.last_offset >= 0 && rewrite_keep_entry(w, keep.last_offset) != 0)
        return -ENOMEM;
    if (h->record_count == 0) { /* a marker emptied by an earlier pass: kept as it is, or gone */
        if (rewrite_retain_empty(w, h))
            return rewrite_emit(w, batch, size);
        w->changed = true;
        return 0;
    }
    bool has_horizon = h->attributes & RECORD_ATTR_DELETE_HORIZON;
    if (discardable && has_horizon && h->base_timestamp <= w->now_ms) {
        w->removed += h->record_count;
        if (rewrite_retain_empty(w, h))
            return rewrite_emit_empty(w, batch, size, h);
        w->changed = true;
        return 0;
    }
    if (discardable && !has_horizon) {
        rewrite_note_horizon(w, w->now_ms + w->delete_retention_ms);
        return rewrite_reencode(w, batch, size, h, true);
    }
    if (discardable)
        rewrite_note_horizon(w, h->base_timestamp);
    return rewrite_emit(w, batch, size);
}

static int rewrite_batch(void *arg, const uint8_t *batch, size_t size,
                         const struct record_batch_header *h)
{
    struct rewrite *w = arg;
    if (h->attributes & RECORD_ATTR_CONTROL)
        return rewrite_marker(w, batch, size, h);
    if (cleaned_txns_on_batch(&w->txns, h)) { /* an aborted transaction's data */
        w->removed += h->record_count;
        if (rewrite_retain_empty(w, h))
            return rewrite_emit_empty(w, batch, size, h);
        w->changed = true;
        return 0;
    }
    bool has_horizon = h->attributes & RECORD_ATTR_DELETE_HORIZON;
    struct record_iter it;
    struct record rec;
    int32_t total = 0, kept = 0, tombstones = 0;
    int rc = record_iter_init(&it, batch, size, COMPACT_MAX_DECOMPRESSED);
    while (rc == 0 && (rc = record_iter_next(&it, &rec)) == 1) {
        rc = 0;
        total++;
        if (rewrite_keep(w, &rec, has_horizon, h->base_timestamp)) {
            kept++;
            tombstones += rec.value == NULL;
        }
    }
    record_iter_release(&it);
    if (rc < 0)
        return rc == RECORD_ERR_NOMEM ? -ENOMEM : LOG_ERR_CORRUPT;
    w->removed += total - kept;
    bool stamp = tombstones > 0 && !has_horizon;
    if (tombstones > 0)
        rewrite_note_horizon(w,
                             has_horizon ? h->base_timestamp : w->now_ms + w->delete_retention_ms);
    if (kept == 0 && rewrite_retain_empty(w, h))
        return rewrite_emit_empty(w, batch, size, h);
    if (kept == 0) { /* also an empty batch kept for a producer no longer active */
        w->changed = true;
        return 0;
    }
    if (kept == total && !stamp)
        return rewrite_emit(w, batch, size);
    return rewrite_reencode(w, batch, size, h, stamp);
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

/* Replaces seg (still at index i of the log) with the cleaned file: 1, 2 when seg left the
 * log meanwhile (the result is dropped), or an error. */
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
        return 2;
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
    /* The recorded ranges were of the file the cleaned copy replaced. */
    log_forget_cached_segment(log, seg, 0);
    checkpoint_sync_dir(log->dir);
    segment_unref(seg); /* the array's reference; pinned readers keep the old file open */
    return 1;
}

/*
 * Cleans one pinned segment and then its .txnindex (after the .log swap: a crash between the
 * two leaves entries whose data is gone, which readers ignore, never data without its entry).
 * Returns 1 if replaced, 0 if unchanged or dropped, or an error.
 */
static int compact_segment(struct log *log, struct segment *seg, struct txn_index *ti,
                           struct rewrite *w, struct log_compact_stats *st)
{
    w->len = 0;
    w->removed = 0;
    w->changed = false;
    w->nkeep = 0;
    int rc = compact_each_batch(seg, rewrite_batch, w);
    if (rc == 0 && w->changed) {
        char cleaned[4096];
        segment_file_name(cleaned, sizeof(cleaned), log->dir, seg->base_offset, ".log.cleaned");
        rc = write_file(cleaned, w->out, w->len);
        int64_t before = segment_size(seg);
        if (rc == 0)
            rc = compact_swap(log, seg, cleaned, (int64_t)w->len);
        if (rc == 2)
            return 0;
        if (rc == 1) {
            st->segments_cleaned++;
            st->bytes_before += before;
            st->bytes_after += (int64_t)w->len;
            st->records_removed += w->removed;
        }
    }
    if (rc >= 0 && ti != NULL) {
        int dropped = txn_index_retain_segment(ti, seg->base_offset, w->keep, w->nkeep);
        if (dropped > 0)
            st->txn_entries_removed += dropped;
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

/* The active producers from the log's owner, sorted by producer id (none without a hook). */
static int compact_active_producers(struct log *log, struct log_active_producer **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (log->producers_hook == NULL)
        return 0;
    int rc = log->producers_hook(log->producers_hook_arg, out, n);
    if (rc == 0 && *n > 1)
        qsort(*out, *n, sizeof(**out), active_cmp);
    return rc;
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
    /* Asked before the pass becomes a reader: the owner's hook takes its producer lock, which
     * a truncation holds while it waits for readers to drain. */
    struct log_active_producer *active = NULL;
    size_t nactive = 0;
    if (compact_active_producers(log, &active, &nactive) != 0)
        return -ENOMEM;
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
    /* A horizon stamped by an earlier pass has passed: its tombstones and markers may go. */
    bool horizon_due = log->next_horizon_ms > 0 && now_ms >= log->next_horizon_ms;
    if (rc < 0 || n == 0 ||
        (!force && !horizon_due &&
         !compact_dirty_enough(log, segs, n, cfg.min_cleanable_dirty_ratio)))
        goto out;
    size_t records = 0;
    for (size_t i = 0; i < n; i++)
        compact_each_batch(segs[i], count_batch, &records);
    struct txn_index *ti = atomic_load_explicit(&log->txns, memory_order_acquire);
    struct txn_index *own = NULL;
    if (ti == NULL && txn_index_open(log->dir, &own) == 0)
        ti = own;
    struct aborted_set aborted = {0};
    if (ti != NULL)
        aborted_load(ti, &aborted);
    struct keymap map = {0};
    struct map_pass mp = {.map = &map};
    struct rewrite w = {.map = &map,
                        .now_ms = now_ms,
                        .delete_retention_ms = cfg.delete_retention_ms,
                        .next_horizon_ms = INT64_MAX,
                        .active = active,
                        .nactive = nactive};
    rc = keymap_init(&map, records);
    if (rc == 0)
        rc = cleaned_txns_init(&mp.txns, aborted.v, aborted.n);
    if (rc == 0)
        rc = cleaned_txns_init(&w.txns, aborted.v, aborted.n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = compact_each_batch(segs[i], map_batch, &mp);
    for (size_t i = 0; rc >= 0 && i < n; i++)
        rc = compact_segment(log, segs[i], ti, &w, &local);
    free(w.out);
    free(w.keep);
    cleaned_txns_free(&w.txns);
    cleaned_txns_free(&mp.txns);
    free(aborted.v);
    keymap_free(&map);
    txn_index_close(own);
    if (rc >= 0)
        log->next_horizon_ms = w.next_horizon_ms == INT64_MAX ? 0 : w.next_horizon_ms;
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
    free(active);
    log_reader_exit(log, phase);
    if (stats)
        *stats = local;
    return rc;
}

int log_compact_hook(struct log *log, int64_t now_ms, void *arg)
{
    return log_compact(log, now_ms, false, NULL);
}
