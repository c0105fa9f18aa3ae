/*
 * Loading a partition directory at open: list segment files, drop leftovers of interrupted
 * operations, recover from the recovery point after an unclean shutdown, and open the active
 * segment. Runs before the log is visible to any other thread, so it takes no locks.
 */
#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "storage/log_internal.h"
#include "storage/recovery.h"

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "<20 digits>.log" -> base offset; -1 if the name is anything else. */
static int64_t parse_segment_name(const char *name)
{
    if (strlen(name) != SEGMENT_NAME_DIGITS + 4 || !has_suffix(name, ".log"))
        return -1;
    int64_t v = 0;
    for (int i = 0; i < SEGMENT_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9')
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Removes leftovers and returns the sorted base offsets of the .log files. */
static int list_segments(struct log *log, int64_t **out, size_t *n)
{
    DIR *d = opendir(log->dir);
    if (!d)
        return -errno;
    int64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    char p[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        /* Kafka's transient suffixes: a .deleted file was already dropped from the log, a
         * .cleaned/.swap file is an unfinished compaction (never swapped in here), .tmp an
         * unfinished checkpoint. */
        if (has_suffix(e->d_name, ".deleted") || has_suffix(e->d_name, ".cleaned") ||
            has_suffix(e->d_name, ".swap") || has_suffix(e->d_name, ".tmp")) {
            snprintf(p, sizeof(p), "%s/%s", log->dir, e->d_name);
            if (unlink(p) < 0 && errno != ENOENT)
                logger_warn("storage", "unlink %s: %s", p, strerror(errno));
            continue;
        }
        int64_t base = parse_segment_name(e->d_name);
        if (base < 0)
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            int64_t *nv = realloc(v, cap * sizeof(*nv));
            if (!nv) {
                rc = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[cnt++] = base;
    }
    closedir(d);
    if (rc < 0) {
        free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof(*v), cmp_i64);
    *out = v;
    *n = cnt;
    return 0;
}

static int init_segments(struct log *log, const int64_t *bases, size_t n)
{
    char p[PATH_MAX];
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        struct segment *seg;
        segment_file_name(p, sizeof(p), log->dir, bases[i], ".log");
        if (stat(p, &st) < 0)
            return -errno;
        int rc = segment_init_closed(log->dir, bases[i], st.st_size,
                                     (size_t)log->config.segment_index_bytes,
                                     log->config.index_interval_bytes, &seg);
        if (rc == 0)
            rc = log_segments_push(log, seg);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Drops segments[from..] from the log and disk (after a truncation in an earlier one). */
static void drop_segments_from(struct log *log, size_t from)
{
    for (size_t i = from; i < log->nsegs; i++) {
        logger_warn("storage", "%s.log: removed, it follows a truncated segment",
                    log->segs[i]->path);
        segment_unlink(log->segs[i]);
        segment_unref(log->segs[i]);
    }
    log->nsegs = from;
}

/* Recovers one segment with its files open for writing; seals and closes it unless last. */
static int recover_one(struct log *log, struct segment *seg, bool last,
                       struct segment_recovery_result *r)
{
    int rc = segment_open_active(
        seg, log->config.segment_bytes); /* writable .log and preallocated indexes */
    if (rc == -EBADMSG) {                /* index size not a multiple of its entry size */
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s.index", seg->path);
        unlink(p);
        snprintf(p, sizeof(p), "%s.timeindex", seg->path);
        unlink(p);
        rc = segment_open_active(seg, log->config.segment_bytes);
    }
    if (rc < 0)
        return rc;
    if ((rc = segment_recover(seg, r)) < 0)
        return rc;
    if (r->truncated_bytes > 0)
        logger_warn("storage", "%s.log: recovery truncated %lld invalid bytes at position %lld",
                    seg->path, (long long)r->truncated_bytes, (long long)r->valid_bytes);
    /* What recovery read may have come from the page cache of a killed process: make it
     * durable before the recovery point moves past it. */
    if ((rc = segment_sync(seg)) < 0)
        return rc;
    seg->verified = true;
    if (!last) {
        rc = segment_seal(seg);
        pthread_mutex_lock(&seg->lock);
        index_file_close(&seg->offset_index);
        index_file_close(&seg->time_index);
        close(seg->log_fd);
        seg->log_fd = -1;
        pthread_mutex_unlock(&seg->lock);
    }
    return rc;
}

/* Unclean shutdown: recover every segment from the one holding the recovery point. */
static int recover_from(struct log *log, int64_t recovery_point)
{
    /* Private to this thread; the lock only satisfies log_segment_index_locked's check. */
    pthread_rwlock_rdlock(&log->segments_lock);
    size_t first = log_segment_index_locked(log, recovery_point);
    pthread_rwlock_unlock(&log->segments_lock);
    for (size_t i = first; i < log->nsegs; i++) {
        struct segment_recovery_result r;
        bool last = i + 1 == log->nsegs;
        int rc = recover_one(log, log->segs[i], last, &r);
        if (rc < 0)
            return rc;
        if (!last && (r.truncated_bytes > 0 || log->segs[i + 1]->base_offset < r.next_offset)) {
            drop_segments_from(log, i + 1);
            /* The truncated segment becomes the active one: reopen it writable. */
            if ((rc = segment_open_active(log->segs[i], log->config.segment_bytes)) < 0)
                return rc;
            log->segs[i]->next_offset = r.next_offset;
            break;
        }
    }
    return 0;
}

/* Clean shutdown: only the active segment is opened, to find the log end. */
static int open_active_clean(struct log *log)
{
    struct segment *seg = log->segs[log->nsegs - 1];
    int rc = segment_open_active(seg, log->config.segment_bytes);
    if (rc == 0)
        rc = segment_scan_next_offset(seg, &seg->next_offset);
    if (rc == -EBADMSG) {
        logger_warn("storage", "%s: clean shutdown marker but bad tail; recovering", seg->path);
        return recover_from(log, seg->base_offset);
    }
    if (rc == 0)
        seg->verified = true;
    return rc;
}

static int create_first_segment(struct log *log, int64_t base)
{
    struct segment *seg;
    int rc = segment_create(log->dir, base, (size_t)log->config.segment_index_bytes,
                            log->config.index_interval_bytes, log->config.segment_bytes,
                            clock_wall_ms(), &seg);
    if (rc < 0)
        return rc;
    if ((rc = log_segments_push(log, seg)) < 0)
        segment_unref(seg);
    return rc;
}

int log_load(struct log *log, const struct log_open_state *state)
{
    int64_t *bases = NULL;
    size_t n = 0;
    int64_t start_ckpt = state ? state->log_start_offset : -1;
    int rc = list_segments(log, &bases, &n);
    if (rc == 0)
        rc = init_segments(log, bases, n);
    free(bases);
    if (rc < 0)
        return rc;
    if (log->nsegs == 0) {
        rc = create_first_segment(log, start_ckpt > 0 ? start_ckpt : 0);
    } else if (state && state->clean_shutdown) {
        rc = open_active_clean(log);
    } else {
        rc = recover_from(log, state ? state->recovery_point : 0);
    }
    if (rc < 0)
        return rc;
    struct segment *active = log->segs[log->nsegs - 1];
    active->created_ms = clock_wall_ms();
    int64_t end = active->next_offset;
    int64_t start = log->segs[0]->base_offset;
    if (start_ckpt > start)
        start = start_ckpt < end ? start_ckpt : end;
    if (start > end) /* a corrupt directory (a segment's base above the log end): refuse it */
        return -EBADMSG;
    int64_t hw = state ? state->high_watermark : 0;
    hw = hw < start ? start : hw > end ? end : hw;
    log_segments_assert_sorted_locked(log);
    assert(start <= hw && hw <= end);
    atomic_store(&log->end_offset, end);
    atomic_store(&log->start_offset, start);
    atomic_store(&log->high_watermark, hw);
    atomic_store(&log->first_unstable, -1);  /* the partition's producer state publishes it */
    atomic_store(&log->recovery_point, end); /* clean, or everything recovered was synced */
    pthread_mutex_lock(&log->append_lock);   /* uncontended: for the _locked contract */
    rc = log_epoch_truncate_from_locked(log, end + 1); /* keeps an epoch starting at the end */
    pthread_mutex_unlock(&log->append_lock);
    return rc;
}
