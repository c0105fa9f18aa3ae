/*
 * Retention: deleting whole closed segments by time (each segment's largest timestamp), by
 * total size, and below the log start offset, never a segment holding offsets at or above the
 * high watermark; DeleteRecords; the delayed unlink of *.deleted
 * files; closing idle segments. The active segment is never deleted.
 *
 * A deleted segment leaves the segment array under the write lock, is renamed *.deleted, and
 * waits in `pending` until file.delete.delay.ms has passed; readers that still hold it keep
 * their fd (an unlinked file stays readable until closed).
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/lock.h"
#include "base/logger.h"
#include "storage/log_internal.h"

static int64_t segment_mtime_ms(const struct segment *seg)
{
    char p[PATH_MAX];
    struct stat st;
    snprintf(p, sizeof(p), "%s.log", seg->path);
    if (stat(p, &st) < 0)
        return INT64_MAX; /* unknown: never old enough */
    return (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
}

enum retention_reason { BY_TIME, BY_SIZE, BY_START_OFFSET };

/* Is segs[i] deletable for `reason`? *budget tracks retention.bytes overshoot. */
static bool breaches(struct log *log, const struct log_config *cfg, size_t i,
                     enum retention_reason reason, int64_t now_ms, int64_t *budget)
{
    struct segment *seg = log->segs[i];
    switch (reason) {
    case BY_TIME: {
        if (cfg->retention_ms < 0)
            return false;
        int64_t ts, off;
        int opened = segment_acquire(seg);
        if (opened < 0)
            return false;
        segment_max_timestamp(seg, &ts, &off); /* cached from now on */
        segment_release(seg);
        if (opened == 1) /* a pass over many idle logs must not leave all their fds open */
            segment_close_idle(seg, INT64_MAX, 0);
        if (ts < 0) /* no timestamps at all: Kafka falls back to the file's mtime */
            ts = segment_mtime_ms(seg);
        return now_ms - ts > cfg->retention_ms;
    }
    case BY_SIZE:
        if (cfg->retention_bytes < 0 || *budget - segment_size(seg) < 0)
            return false;
        *budget -= segment_size(seg);
        return true;
    case BY_START_OFFSET:
        return log->segs[i + 1]->base_offset <= log_start_offset(log);
    }
    return false;
}

static int queue_pending(struct log *log, struct segment *seg, int64_t due)
{
    pthread_mutex_lock(&log->pending_lock);
    if (log->npending == log->pending_cap) {
        size_t cap = log->pending_cap ? log->pending_cap * 2 : 8;
        struct pending_delete *p = realloc(log->pending, cap * sizeof(*p));
        if (!p) {
            pthread_mutex_unlock(&log->pending_lock);
            return -ENOMEM;
        }
        log->pending = p;
        log->pending_cap = cap;
    }
    log->pending[log->npending++] = (struct pending_delete){seg, due};
    pthread_mutex_unlock(&log->pending_lock);
    return 0;
}

/* Removes segs[0..n) from the log, renames their files, queues the unlink (append_lock held).
 * Sets *moved when the log start moved: the caller runs the start hook after unlocking. */
static int delete_prefix(struct log *log, size_t n, int64_t now_ms, int64_t delay_ms, bool *moved)
{
    assert(lock_mutex_held(&log->append_lock));
    struct segment **victims = malloc(n * sizeof(*victims));
    if (!victims)
        return -ENOMEM;
    pthread_rwlock_wrlock(&log->segments_lock);
    memcpy(victims, log->segs, n * sizeof(*victims));
    memmove(log->segs, log->segs + n, (log->nsegs - n) * sizeof(*log->segs));
    log->nsegs -= n;
    log_segments_assert_sorted_locked(log);
    int64_t new_first = log->segs[0]->base_offset;
    pthread_rwlock_unlock(&log->segments_lock);
    if (log_move_start_offset(log, new_first))
        *moved = true;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int r = segment_rename_deleted(victims[i]);
        log_forget_cached_segment(log, victims[i], 0);
        if (r < 0) {
            log_mark_offline(log, "rename to .deleted", r);
            rc = r;
        }
        if (queue_pending(log, victims[i], now_ms + delay_ms) < 0) {
            segment_unlink_deleted(victims[i]); /* no room to wait: remove now */
            segment_unref(victims[i]);
        }
    }
    free(victims);
    atomic_store(&log->dir_dirty, true);
    return rc < 0 ? rc : (int)n;
}

/* Counts the deletable prefix for one reason (append_lock held, so no roll meanwhile). */
static size_t deletable_prefix(struct log *log, const struct log_config *cfg,
                               enum retention_reason reason, int64_t now_ms)
{
    assert(lock_mutex_held(&log->append_lock));
    pthread_rwlock_rdlock(&log->segments_lock);
    size_t nsegs = log->nsegs;
    pthread_rwlock_unlock(&log->segments_lock);
    int64_t budget = log_size_bytes(log) - cfg->retention_bytes;
    /* Kafka's deletableSegments: a segment goes only once everything in it is below the high
     * watermark (the next segment starts at or below it), so a leader never deletes records
     * its followers may still have to fetch. */
    int64_t hw = log_high_watermark(log);
    size_t n = 0;
    /* Only this function and log_roll (both under append_lock) change segs, so reading it
     * without segments_lock here is safe. */
    while (n + 1 < nsegs && log->segs[n + 1]->base_offset <= hw &&
           breaches(log, cfg, n, reason, now_ms, &budget))
        n++;
    return n;
}

int log_apply_retention(struct log *log, int64_t now_ms)
{
    int total = 0;
    bool moved = false;
    pthread_mutex_lock(&log->append_lock);
    struct log_config cfg = log->config;
    enum retention_reason reasons[3] = {BY_TIME, BY_SIZE, BY_START_OFFSET};
    for (int r = 0; r < 3; r++) {
        if (r < 2 && !cfg.delete_retention)
            continue;
        size_t n = deletable_prefix(log, &cfg, reasons[r], now_ms);
        if (n == 0)
            continue;
        int rc = delete_prefix(log, n, now_ms, cfg.file_delete_delay_ms, &moved);
        if (rc < 0) {
            total = rc;
            break;
        }
        total += rc;
    }
    pthread_mutex_unlock(&log->append_lock);
    if (moved)
        log_run_start_hook(log);
    return total;
}

int log_delete_records(struct log *log, int64_t offset, int64_t now_ms)
{
    if (atomic_load(&log->offline))
        return LOG_ERR_OFFLINE;
    if (offset < 0 || offset > log_high_watermark(log))
        return LOG_ERR_OFFSET_OUT_OF_RANGE;
    log_advance_start_offset(log, offset);
    pthread_mutex_lock(&log->append_lock);
    struct log_config cfg = log->config;
    size_t n = deletable_prefix(log, &cfg, BY_START_OFFSET, now_ms);
    bool moved = false;
    int rc = n ? delete_prefix(log, n, now_ms, cfg.file_delete_delay_ms, &moved) : 0;
    pthread_mutex_unlock(&log->append_lock);
    if (moved)
        log_run_start_hook(log);
    return rc < 0 ? rc : 0;
}

void log_purge_deleted(struct log *log, int64_t now_ms, bool force)
{
    pthread_mutex_lock(&log->pending_lock);
    size_t kept = 0;
    for (size_t i = 0; i < log->npending; i++) {
        struct pending_delete *p = &log->pending[i];
        if (force || now_ms >= p->due_ms) {
            segment_unlink_deleted(p->seg);
            segment_unref(p->seg);
        } else {
            log->pending[kept++] = *p;
        }
    }
    log->npending = kept;
    pthread_mutex_unlock(&log->pending_lock);
}

int log_close_idle_segments(struct log *log, int64_t now_mono_ms)
{
    int closed = 0;
    int64_t idle = now_mono_ms == INT64_MAX ? 0 : log_get_config(log).segment_idle_close_ms;
    pthread_rwlock_rdlock(&log->segments_lock);
    for (size_t i = 0; i + 1 < log->nsegs; i++)
        closed += segment_close_idle(log->segs[i], now_mono_ms, idle);
    pthread_rwlock_unlock(&log->segments_lock);
    return closed;
}
