/*
 * The read side of a log: fetch ranges, ListOffsets by timestamp and MAX_TIMESTAMP. None of
 * this takes the append lock: offsets are loaded atomically first, then only bytes below the
 * loaded end are looked at, and segments are held by reference while in use. Each entry point
 * runs as a reader in flight (log_internal.h), so a truncation never cuts bytes under it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record/record_iter.h"
#include "storage/log_internal.h"

/* Pins the segment at index i (or the first with base > after_base when i is out of date).
 * Returns NULL when there is no such segment. */
static struct segment *acquire_segment_for(struct log *log, int64_t offset, int64_t after_base,
                                           int *err)
{
    struct segment *seg = NULL;
    pthread_rwlock_rdlock(&log->segments_lock);
    size_t i = log_segment_index_locked(log, offset);
    while (i < log->nsegs && log->segs[i]->base_offset <= after_base)
        i++;
    if (i < log->nsegs) {
        seg = log->segs[i];
        segment_ref(seg);
    }
    pthread_rwlock_unlock(&log->segments_lock);
    *err = 0;
    if (!seg)
        return NULL;
    /* Opening files happens outside segments_lock so a slow open never blocks a roll. */
    int rc = segment_acquire(seg);
    segment_unref(seg);
    if (rc < 0) {
        *err = rc;
        return NULL;
    }
    /* Bound the fds a log holds for closed segments: after every LOG_OPEN_SEGMENTS_TRIM lazy
     * opens, close every unpinned closed segment (random access over thousands of segments
     * must not exhaust descriptors; sequential consumers reopen rarely). */
    if (rc == 1 && atomic_fetch_add(&log->lazy_opens, 1) + 1 >= LOG_OPEN_SEGMENTS_TRIM) {
        atomic_store(&log->lazy_opens, 0);
        log_close_idle_segments(log, INT64_MAX);
    }
    return seg;
}

/* Extends the range over whole batches while they fit max_bytes and stay below max_offset.
 * `h` is the already-read header of the batch at pos, so the common one-batch case costs no
 * extra read; the next header is read only while budget is left. */
static int collect_batches(struct segment *seg, int64_t pos, struct record_batch_header h,
                           int64_t limit, int64_t max_offset, int64_t max_bytes, bool min_one,
                           struct log_read_result *out)
{
    int64_t start = pos;
    int rc = 0;
    for (;;) {
        int64_t size = (int64_t)record_batch_size(&h);
        if (record_batch_last_offset(&h) >= max_offset)
            break;
        if (pos - start + size > max_bytes && !(min_one && pos == start))
            break;
        if (pos == start)
            out->first_offset = h.base_offset;
        out->next_offset = record_batch_last_offset(&h) + 1;
        pos += size;
        if (pos - start + RECORD_BATCH_HEADER_SIZE > max_bytes || out->next_offset >= max_offset)
            break;
        if ((rc = segment_read_batch_header(seg, pos, limit, &h)) < 0)
            break;
    }
    if (rc < 0 && rc != -ENODATA)
        return rc;
    out->range.fd = seg->log_fd;
    out->range.position = start;
    out->range.length = pos - start;
    return 0;
}

static int read_range(struct log *log, int64_t offset, int32_t max_bytes, int64_t max_offset,
                      bool min_one_batch, struct log_read_result *out)
{
    memset(out, 0, sizeof(*out));
    out->range.fd = -1;
    int64_t end = log_end_offset(log);
    out->log_end_offset = end;
    out->high_watermark = log_high_watermark(log);
    out->log_start_offset = log_start_offset(log);
    out->first_offset = out->next_offset = offset;
    if (atomic_load(&log->offline))
        return LOG_ERR_OFFLINE;
    if (offset < out->log_start_offset || offset > end)
        return LOG_ERR_OFFSET_OUT_OF_RANGE;
    if (max_offset > end)
        max_offset = end;
    int64_t after_base = -1;
    while (offset < max_offset) {
        int rc;
        struct segment *seg = acquire_segment_for(log, offset, after_base, &rc);
        if (!seg)
            return rc;
        int64_t pos;
        struct record_batch_header h;
        int64_t limit = segment_size(seg);
        rc = segment_find_position(seg, offset, limit, &pos, &h);
        if (rc == 0)
            rc = collect_batches(seg, pos, h, limit, max_offset, max_bytes, min_one_batch, out);
        /* Batches that end below the offset asked for can only come from a corrupt segment
         * trusted after a clean shutdown (fuzz_storage): never serve them. */
        if (rc == 0 && out->range.length > 0 && out->next_offset <= offset)
            rc = LOG_ERR_CORRUPT;
        if (rc == 0 && out->range.length > 0) {
            out->segment = seg;
            return 0;
        }
        after_base = seg->base_offset; /* if nothing at/after offset here: try the next one */
        segment_release(seg);
        if (rc < 0 && rc != -ENODATA)
            return rc;
        if (rc == 0) /* a batch exists but does not fit (max_bytes) or reaches max_offset */
            break;
    }
    out->range.length = 0;
    out->next_offset = offset;
    return 0;
}

int log_read(struct log *log, int64_t offset, int32_t max_bytes, int64_t max_offset,
             bool min_one_batch, struct log_read_result *out)
{
    uint32_t phase = log_reader_enter(log);
    int rc = read_range(log, offset, max_bytes, max_offset, min_one_batch, out);
    log_reader_exit(log, phase);
    return rc;
}

void log_read_release(struct log_read_result *res)
{
    if (res->segment)
        segment_release(res->segment);
    res->segment = NULL;
    res->range.fd = -1;
}

/* Reads the whole batch at pos into a malloc'ed buffer. */
static int read_batch(struct segment *seg, int64_t pos, const struct record_batch_header *h,
                      uint8_t **out)
{
    size_t size = record_batch_size(h);
    uint8_t *buf = malloc(size);
    if (!buf)
        return -ENOMEM;
    ssize_t n = pread(seg->log_fd, buf, size, pos);
    if (n != (ssize_t)size) {
        free(buf);
        return n < 0 ? -errno : -EIO;
    }
    *out = buf;
    return 0;
}

/* First record in the batch with timestamp >= ts (match_equal: == ts). 1 found, 0 not. */
static int search_batch(struct segment *seg, int64_t pos, const struct record_batch_header *h,
                        int64_t ts, bool match_equal, int64_t *offset, int64_t *found)
{
    uint8_t *buf = NULL;
    int rc = read_batch(seg, pos, h, &buf);
    if (rc < 0)
        return rc;
    struct record_iter it;
    struct record rec;
    rc = record_iter_init(&it, buf, record_batch_size(h), 256u << 20);
    while (rc == 0 && (rc = record_iter_next(&it, &rec)) == 1) {
        if (match_equal ? rec.timestamp == ts : rec.timestamp >= ts) {
            *offset = rec.offset;
            *found = rec.timestamp;
            break;
        }
        rc = 0;
    }
    record_iter_release(&it);
    free(buf);
    return rc < 0 ? LOG_ERR_CORRUPT : rc;
}

/* Scans batches of a pinned segment from the time index hint; see log_offset_for_timestamp. */
static int segment_find_timestamp(struct segment *seg, int64_t ts, int64_t min_offset, int64_t end,
                                  bool match_equal, int64_t *offset, int64_t *found)
{
    struct timestamp_offset t = time_index_lookup(&seg->time_index, seg->base_offset, ts);
    int64_t from = t.offset > min_offset ? t.offset : min_offset;
    struct offset_position op = offset_index_lookup(&seg->offset_index, seg->base_offset, from);
    int64_t pos = op.position, limit = segment_size(seg);
    struct record_batch_header h;
    int rc;
    while ((rc = segment_read_batch_header(seg, pos, limit, &h)) == 0) {
        if (h.base_offset >= end)
            break;
        bool hit = match_equal ? h.max_timestamp == ts : h.max_timestamp >= ts;
        if (hit && record_batch_last_offset(&h) >= min_offset) {
            rc = search_batch(seg, pos, &h, ts, match_equal, offset, found);
            if (rc != 0)
                return rc;
        }
        pos += (int64_t)record_batch_size(&h);
    }
    return rc == -ENODATA ? 0 : rc;
}

/* Snapshot of the segment list with references (caller unrefs each and frees). */
static size_t snapshot_segments(struct log *log, struct segment ***out)
{
    pthread_rwlock_rdlock(&log->segments_lock);
    size_t n = log->nsegs;
    struct segment **v = malloc(n * sizeof(*v));
    for (size_t i = 0; v && i < n; i++) {
        v[i] = log->segs[i];
        segment_ref(v[i]);
    }
    pthread_rwlock_unlock(&log->segments_lock);
    *out = v;
    return v ? n : 0;
}

static void release_snapshot(struct segment **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        segment_unref(v[i]);
    free(v);
}

static int offset_for_timestamp(struct log *log, int64_t ts, int64_t *offset, int64_t *ts_found)
{
    if (atomic_load(&log->offline))
        return LOG_ERR_OFFLINE;
    int64_t start = log_start_offset(log), end = log_end_offset(log);
    struct segment **segs;
    size_t n = snapshot_segments(log, &segs);
    int rc = n ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i + 1 < n && segs[i + 1]->base_offset <= start)
            continue;
        int opened = segment_acquire(segs[i]);
        if (opened < 0) {
            rc = opened;
            break;
        }
        int64_t max_ts, max_off;
        segment_max_timestamp(segs[i], &max_ts, &max_off);
        if (max_ts >= ts) /* Kafka: the first segment whose largest timestamp >= ts */
            rc = segment_find_timestamp(segs[i], ts, start, end, false, offset, ts_found);
        segment_release(segs[i]);
        if (opened == 1)
            segment_close_idle(segs[i], INT64_MAX, 0);
    }
    release_snapshot(segs, n);
    if (rc == 1)
        return 0;
    return rc < 0 ? rc : -ENOENT;
}

static int max_timestamp(struct log *log, int64_t *offset, int64_t *ts)
{
    if (atomic_load(&log->offline))
        return LOG_ERR_OFFLINE;
    int64_t start = log_start_offset(log), end = log_end_offset(log);
    struct segment **segs;
    size_t n = snapshot_segments(log, &segs);
    struct segment *best = NULL;
    int64_t best_ts = -1;
    int rc = n ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i + 1 < n && segs[i + 1]->base_offset <= start)
            continue;
        int opened = segment_acquire(segs[i]);
        if (opened < 0) {
            rc = opened;
            break;
        }
        int64_t t, o;
        segment_max_timestamp(segs[i], &t, &o);
        if (t > best_ts) { /* strictly greater: the earliest segment wins a tie, like Kafka */
            if (best)
                segment_release(best);
            best = segs[i];
            best_ts = t;
        } else {
            segment_release(segs[i]);
            if (opened == 1)
                segment_close_idle(segs[i], INT64_MAX, 0);
        }
    }
    if (rc == 0 && best)
        rc = segment_find_timestamp(best, best_ts, start, end, true, offset, ts);
    if (best)
        segment_release(best);
    release_snapshot(segs, n);
    if (rc == 1)
        return 0;
    return rc < 0 ? rc : -ENOENT;
}

int log_offset_for_timestamp(struct log *log, int64_t ts, int64_t *offset, int64_t *ts_found)
{
    uint32_t phase = log_reader_enter(log);
    int rc = offset_for_timestamp(log, ts, offset, ts_found);
    log_reader_exit(log, phase);
    return rc;
}

int log_max_timestamp(struct log *log, int64_t *offset, int64_t *ts)
{
    uint32_t phase = log_reader_enter(log);
    int rc = max_timestamp(log, offset, ts);
    log_reader_exit(log, phase);
    return rc;
}
