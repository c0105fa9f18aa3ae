/*
 * Follower truncation, Kafka's UnifiedLog.truncateTo and truncateFullyAndStartAt: cutting a
 * log back to a batch boundary after its leader's history diverged, or restarting it empty at
 * an offset.
 *
 * Order, for concurrent readers and for crashes:
 *  1. What can fail without changing the log: finding the cut, allocations.
 *  2. Publish the new offsets (start <= high watermark <= end at every instant) and lower the
 *     cut segment's size: readers that start now never look past them.
 *  3. Wait for the readers in flight (log_internal.h); none of them is inside a byte being cut.
 *  4. Swap the segment list; rename the dropped segments *.deleted, the last first, so a crash
 *     leaves a prefix of the log; fsync the directory; then cut the .log and fsync it. Dropped
 *     files are unlinked at once (a pinned reader keeps its fd).
 *  5. Epoch cache, persisted.
 * A failure after step 2 puts the log offline: its files no longer match what was published.
 *
 * Invariants on return: the active segment's next_offset == the end offset; start <= high
 * watermark <= end; recovery point <= end; no cached epoch starts at/after the end.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/lock.h"
#include "base/logger.h"
#include "record/byteorder.h"
#include "storage/log_internal.h"

/* Moves the published offsets so that start <= high watermark <= end holds at every instant
 * for a reader that loads them one by one. append_lock and flush_lock held. */
static void publish_offsets(struct log *log, int64_t start, int64_t hw, int64_t end)
{
    assert(start <= hw && hw <= end);
    if (end > log_end_offset(log))
        atomic_store(&log->end_offset, end);
    if (start < log_start_offset(log))
        atomic_store(&log->start_offset, start);
    atomic_store(&log->high_watermark, hw);
    atomic_store(&log->start_offset, start);
    atomic_store(&log->end_offset, end);
}

static void assert_published_locked(struct log *log)
{
    assert(log->nsegs > 0);
    assert(log->segs[log->nsegs - 1]->next_offset == log_end_offset(log));
    assert(log_start_offset(log) <= log_high_watermark(log));
    assert(log_high_watermark(log) <= log_end_offset(log));
    assert(log_recovery_point(log) <= log_end_offset(log));
    assert(log->nepochs == 0 || log->epochs[log->nepochs - 1].start_offset < log_end_offset(log));
}

static int fail_offline(struct log *log, const char *what, int rc)
{
    log_mark_offline(log, what, rc);
    return LOG_ERR_OFFLINE;
}

/* Renames the files of v[0..n) to *.deleted, the last segment first; they leave the
 * page-cache budget. */
static int rename_dropped(struct log *log, struct segment **v, size_t n)
{
    for (size_t i = n; i-- > 0;) {
        int rc = segment_rename_deleted(v[i]);
        log_forget_cached_segment(log, v[i], 0);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* After rename_dropped and the list swap: directory fsync, unlink, one reference each. */
static int finish_dropped(struct log *log, struct segment **v, size_t n)
{
    int rc = checkpoint_sync_dir(log->dir);
    for (size_t i = 0; i < n; i++) {
        segment_unlink_deleted(v[i]);
        segment_unref(v[i]);
    }
    return rc;
}

/* Takes segs[from..] out of reach of compaction and copies them to *out (malloc'ed; the
 * array's references come with them at the swap). -EAGAIN when segs[from] is no longer
 * `expect` (compaction swapped it meanwhile). append_lock held, so nothing else changes segs. */
static int claim_segments(struct log *log, size_t from, const struct segment *expect,
                          struct segment ***out, size_t *n)
{
    pthread_rwlock_wrlock(&log->segments_lock);
    size_t k = log->nsegs - from;
    struct segment **v = malloc(k * sizeof(*v));
    int rc = v ? 0 : -ENOMEM;
    if (rc == 0 && expect && log->segs[from] != expect)
        rc = -EAGAIN;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        v[i] = log->segs[from + i];
        v[i]->replaced = true;
    }
    pthread_rwlock_unlock(&log->segments_lock);
    if (rc < 0) {
        free(v);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

/* Kafka's truncateFullyAndStartAt with both locks held: the epoch cache is cleared, or with
 * keep_epochs only trimmed from the new end (truncate_to's path). *start_moved for the hook. */
static int truncate_fully_locked(struct log *log, int64_t offset, bool keep_epochs,
                                 bool *start_moved)
{
    assert(lock_mutex_held(&log->append_lock) && lock_mutex_held(&log->flush_lock));
    struct segment **old;
    size_t n;
    int rc = claim_segments(log, 0, NULL, &old, &n);
    if (rc < 0)
        return rc;
    *start_moved = log_start_offset(log) != offset;
    publish_offsets(log, offset, offset, offset);
    atomic_store(&log->recovery_point, offset); /* flush_lock held: log_flush cannot race */
    log_wait_for_readers_locked(log);

    /* The old files go first: one of them may carry the new segment's name. */
    struct segment *seg = NULL;
    rc = rename_dropped(log, old, n);
    if (rc == 0)
        rc = segment_create(log->dir, offset, (size_t)log->config.segment_index_bytes,
                            log->config.index_interval_bytes, log->config.segment_bytes,
                            clock_wall_ms(), &seg);
    if (rc < 0) {
        free(old);
        return fail_offline(log, "truncate fully", rc);
    }
    pthread_rwlock_wrlock(&log->segments_lock);
    assert(log->nsegs == n && log->segs[0] == old[0]);
    log->segs[0] = seg;
    log->nsegs = 1;
    log_segments_assert_sorted_locked(log);
    pthread_rwlock_unlock(&log->segments_lock);
    rc = finish_dropped(log, old, n);
    free(old);
    if (rc == 0)
        rc =
            keep_epochs ? log_epoch_truncate_from_locked(log, offset) : log_epoch_clear_locked(log);
    if (rc < 0)
        return fail_offline(log, "truncate fully", rc);
    assert_published_locked(log);
    return 0;
}

/* Index entries of ix (mapped, `n` of them valid) whose offset is below `end`: a prefix. */
static uint32_t offset_entries_below(const struct index_file *ix, uint32_t n, int64_t base,
                                     int64_t end)
{
    uint32_t k = 0;
    while (k < n && base + (int64_t)be32_load(index_file_entry(ix, k)) < end)
        k++;
    return k;
}

static uint32_t time_entries_below(const struct index_file *ix, uint32_t n, int64_t base,
                                   int64_t end)
{
    uint32_t k = 0;
    while (k < n && base + (int64_t)be32_load(index_file_entry(ix, k) + 8) < end)
        k++;
    return k;
}

/*
 * Makes `ns` (a fresh struct for the files of the pinned segment `old`, cut at cut_pos with
 * its batches ending below `end`) the writable active segment: opens it, keeps the index
 * entries below `end`, and restores the appender's fields as recovery would.
 */
static int open_cut_segment(struct log *log, struct segment *old, struct segment *ns,
                            int64_t cut_pos, int64_t end)
{
    uint32_t oi = offset_entries_below(&old->offset_index, index_file_entries(&old->offset_index),
                                       old->base_offset, end);
    uint32_t ti = time_entries_below(&old->time_index, index_file_entries(&old->time_index),
                                     old->base_offset, end);
    int rc = segment_open_active(ns, log->config.segment_bytes);
    if (rc < 0)
        return rc;
    index_file_truncate_entries(&ns->offset_index, oi);
    index_file_truncate_entries(&ns->time_index, ti);
    struct offset_position last_entry = offset_index_last(&ns->offset_index, ns->base_offset);
    /* The time index's last entry holds the largest timestamp up to its offset; batches after
     * it are read to complete the segment's maximum. */
    struct timestamp_offset t = time_index_last(&ns->time_index, ns->base_offset);
    int64_t max_ts = t.timestamp, max_off = t.offset;
    struct record_batch_header h;
    int64_t pos = offset_index_lookup(&ns->offset_index, ns->base_offset, t.offset).position;
    while ((rc = segment_read_batch_header(ns, pos, cut_pos, &h)) == 0) {
        if (h.max_timestamp > max_ts) {
            max_ts = h.max_timestamp;
            max_off = record_batch_last_offset(&h);
        }
        pos += (int64_t)record_batch_size(&h);
    }
    if (rc != -ENODATA)
        return rc;
    if (pos != cut_pos) /* the kept part is not whole batches: cannot happen for a cut found by
                           segment_find_position */
        return -EBADMSG;
    atomic_store(&ns->max_timestamp, max_ts);
    atomic_store(&ns->offset_of_max_timestamp, max_off);
    atomic_store(&ns->max_timestamp_known, true);
    ns->rolling_timestamp = -1;
    if (cut_pos > 0 && (rc = segment_read_batch_header(ns, 0, cut_pos, &h)) < 0)
        return rc;
    if (cut_pos > 0)
        ns->rolling_timestamp = h.max_timestamp;
    ns->bytes_since_index = cut_pos - last_entry.position;
    ns->next_offset = end;
    ns->created_ms = clock_wall_ms();
    ns->verified = true;
    return 0;
}

/* The cut: segs[i] keeps its bytes below cut_pos (whole batches ending below new_end) and
 * becomes the active segment; later segments go. Both locks held; `old` is segs[i], pinned.
 * -EAGAIN (nothing changed) when compaction replaced `old` since it was found. */
static int truncate_at_locked(struct log *log, size_t i, struct segment *old, int64_t cut_pos,
                              int64_t new_end, bool *start_moved)
{
    struct segment *ns, **gone;
    size_t n;
    int rc = segment_init_closed(log->dir, old->base_offset, cut_pos, old->index_max_bytes,
                                 old->index_interval_bytes, &ns);
    if (rc < 0)
        return rc;
    if ((rc = claim_segments(log, i, old, &gone, &n)) < 0) {
        segment_unref(ns);
        return rc;
    }
    int64_t start = log_start_offset(log);
    int64_t hw = log_high_watermark(log);
    *start_moved = start > new_end;
    start = start < new_end ? start : new_end;
    publish_offsets(log, start, hw < new_end ? hw : new_end, new_end);
    if (log_recovery_point(log) > new_end)
        atomic_store(&log->recovery_point, new_end);
    atomic_store(&old->size, cut_pos);
    log_wait_for_readers_locked(log);

    /* Nothing reads past the cut any more. */
    rc = open_cut_segment(log, old, ns, cut_pos, new_end);
    if (rc == 0)
        rc = rename_dropped(log, gone + 1, n - 1);
    if (rc < 0) {
        segment_unref(ns);
        free(gone);
        return fail_offline(log, "truncate", rc);
    }
    pthread_rwlock_wrlock(&log->segments_lock);
    assert(log->nsegs == i + n && log->segs[i] == old);
    log->segs[i] = ns;
    log->nsegs = i + 1;
    log_segments_assert_sorted_locked(log);
    pthread_rwlock_unlock(&log->segments_lock);
    segment_unref(old); /* the array's reference; pinned readers keep its fds */
    rc = finish_dropped(log, gone + 1, n - 1);
    free(gone);
    if (rc == 0 && ftruncate(ns->log_fd, cut_pos) < 0)
        rc = -errno;
    if (rc == 0)
        log_forget_cached_segment(log, ns, cut_pos);
    if (rc == 0)
        rc = segment_sync(ns);
    if (rc == 0)
        rc = log_epoch_truncate_from_locked(log, new_end);
    if (rc < 0)
        return fail_offline(log, "truncate", rc);
    assert_published_locked(log);
    return 0;
}

/* The segment holding offset (the last one based at or below it), pinned, and its index. */
static int pin_segment_for(struct log *log, int64_t offset, size_t *idx, struct segment **out)
{
    pthread_rwlock_rdlock(&log->segments_lock);
    size_t i = log_segment_index_locked(log, offset);
    struct segment *s = log->segs[i];
    segment_ref(s);
    pthread_rwlock_unlock(&log->segments_lock);
    int rc = segment_acquire(s);
    segment_unref(s);
    if (rc < 0)
        return rc;
    *idx = i;
    *out = s;
    return 0;
}

/*
 * Finds the first batch with last offset >= offset: segment index, its pinned segment, the
 * batch's position (the segment's size when it has none) and the new end.
 *
 * A cut at the very start of a segment other than the first goes to the end of the previous
 * segment instead, dropping the whole segment (Kafka keeps it, empty, as the active segment).
 * Replicas roll by the same rule (should_roll) on the same bytes, so a follower whose log is a
 * prefix of its leader's, segment for segment, stays one; an empty segment at the cut would
 * take the leader's next batches even where the leader appended them to its previous
 * segment (this follower had rolled for a batch of its own that the cut removed), and the
 * replicas' segment files would differ for good.
 */
static int find_cut(struct log *log, int64_t offset, size_t *idx, struct segment **seg,
                    int64_t *cut_pos, int64_t *new_end)
{
    size_t i;
    struct segment *s;
    int rc = pin_segment_for(log, offset, &i, &s);
    if (rc < 0)
        return rc;
    struct record_batch_header h;
    int64_t pos, size = segment_size(s);
    rc = segment_find_position(s, offset, size, &pos, &h);
    if (rc == 0) {
        *cut_pos = pos;
        *new_end = h.base_offset < offset ? h.base_offset : offset;
    } else if (rc == -ENODATA) { /* offset in a gap after this segment's last batch */
        *cut_pos = size;
        *new_end = offset;
        rc = 0;
    } else {
        segment_release(s);
        return rc < -1000 ? LOG_ERR_CORRUPT : rc; /* a record_error: a bad header on disk */
    }
    if (i > 0 && *cut_pos == 0 && *new_end == s->base_offset) {
        size_t pi;
        struct segment *prev;
        if ((rc = pin_segment_for(log, s->base_offset - 1, &pi, &prev)) < 0) {
            segment_release(s);
            return rc;
        }
        if (prev->base_offset < s->base_offset) { /* else retention took the segments below */
            segment_release(s);
            s = prev;
            i = pi;
            *cut_pos = segment_size(prev);
        } else {
            segment_release(prev);
        }
    }
    *idx = i;
    *seg = s;
    return 0;
}

int log_truncate_to(struct log *log, int64_t offset)
{
    if (offset < 0)
        return -EINVAL;
    bool start_moved = false;
    int rc = 0;
    pthread_mutex_lock(&log->append_lock);
    pthread_mutex_lock(&log->flush_lock);
    if (atomic_load(&log->offline)) {
        rc = LOG_ERR_OFFLINE;
        goto out;
    }
    if (offset >= log_end_offset(log))
        goto out;
    do { /* again if compaction swapped the segment holding the cut meanwhile */
        size_t i = 0;
        struct segment *seg = NULL;
        int64_t cut_pos = 0, new_end = 0;
        if ((rc = find_cut(log, offset, &i, &seg, &cut_pos, &new_end)) < 0)
            goto out;
        assert(new_end <= offset && new_end < log_end_offset(log));
        pthread_rwlock_rdlock(&log->segments_lock);
        int64_t first_base = log->segs[0]->base_offset;
        pthread_rwlock_unlock(&log->segments_lock);
        if (new_end <= first_base) {
            /* Nothing below the cut is left (Kafka: the first segment starts after the target):
             * the log restarts empty at new_end. */
            segment_release(seg);
            rc = truncate_fully_locked(log, new_end, true, &start_moved);
        } else {
            assert(new_end >= seg->base_offset);
            rc = truncate_at_locked(log, i, seg, cut_pos, new_end, &start_moved);
            segment_release(seg);
        }
    } while (rc == -EAGAIN);
out:
    pthread_mutex_unlock(&log->flush_lock);
    pthread_mutex_unlock(&log->append_lock);
    if (rc == 0 && start_moved)
        log_run_start_hook(log);
    return rc;
}

int log_truncate_fully_and_start_at(struct log *log, int64_t offset)
{
    if (offset < 0)
        return -EINVAL;
    bool start_moved = false;
    int rc;
    pthread_mutex_lock(&log->append_lock);
    pthread_mutex_lock(&log->flush_lock);
    rc = atomic_load(&log->offline) ? LOG_ERR_OFFLINE
                                    : truncate_fully_locked(log, offset, false, &start_moved);
    pthread_mutex_unlock(&log->flush_lock);
    pthread_mutex_unlock(&log->append_lock);
    if (rc == 0 && start_moved)
        log_run_start_hook(log);
    return rc;
}
