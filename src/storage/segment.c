/*
 * Segments: file naming, lazy opening, appends and index maintenance.
 *
 * Invariants: bytes [0, size) of the .log are whole batches with increasing offsets; every
 * offset-index entry points at a batch start below size; time-index entries never decrease.
 * A pinned segment's fds and mappings stay valid until the matching segment_release().
 */
#include "storage/segment.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "record/byteorder.h"
#include "storage/recovery.h"

static const char *SUFFIXES[4] = {".log", ".index", ".timeindex", ".txnindex"};

void segment_file_name(char *out, size_t cap, const char *dir, int64_t base, const char *suffix)
{
    snprintf(out, cap, "%s/%020lld%s", dir, (long long)base, suffix);
}

static void file_name(const struct segment *seg, const char *suffix, char *out)
{
    snprintf(out, PATH_MAX, "%s%s", seg->path, suffix);
}

static struct segment *segment_alloc(const char *dir, int64_t base, size_t index_max_bytes,
                                     int32_t index_interval_bytes)
{
    struct segment *seg = calloc(1, sizeof(*seg));
    if (!seg)
        return NULL;
    size_t n = strlen(dir) + SEGMENT_NAME_DIGITS + 2;
    seg->path = malloc(n);
    if (!seg->path) {
        free(seg);
        return NULL;
    }
    snprintf(seg->path, n, "%s/%020lld", dir, (long long)base);
    seg->base_offset = base;
    atomic_init(&seg->refs, 1);
    atomic_init(&seg->size, 0);
    atomic_init(&seg->max_timestamp, -1);
    atomic_init(&seg->offset_of_max_timestamp, base);
    atomic_init(&seg->max_timestamp_known, false);
    atomic_init(&seg->last_used_ms, clock_mono_ms());
    pthread_mutex_init(&seg->lock, NULL);
    seg->log_fd = -1;
    seg->offset_index.fd = seg->time_index.fd = -1;
    seg->index_max_bytes = index_max_bytes;
    seg->index_interval_bytes = index_interval_bytes;
    seg->next_offset = base;
    seg->rolling_timestamp = -1;
    return seg;
}

static void close_files(struct segment *seg)
{
    seg->was_open = false;
    if (seg->log_map)
        munmap((void *)seg->log_map, seg->log_map_len);
    seg->log_map = NULL;
    seg->log_map_len = 0;
    index_file_close(&seg->offset_index);
    index_file_close(&seg->time_index);
    if (seg->log_fd >= 0)
        close(seg->log_fd);
    seg->log_fd = -1;
}

/* Opens the indexes, writable (preallocated) or read-only at their exact size. */
static int open_indexes(struct segment *seg, bool writable)
{
    char p[PATH_MAX];
    file_name(seg, ".index", p);
    int rc = index_file_open(&seg->offset_index, p, OFFSET_INDEX_ENTRY_SIZE, seg->index_max_bytes,
                             writable);
    if (rc < 0)
        return rc;
    file_name(seg, ".timeindex", p);
    rc =
        index_file_open(&seg->time_index, p, TIME_INDEX_ENTRY_SIZE, seg->index_max_bytes, writable);
    if (rc < 0)
        index_file_close(&seg->offset_index);
    return rc;
}

static int open_log_fd(struct segment *seg, int flags)
{
    char p[PATH_MAX];
    file_name(seg, ".log", p);
    seg->log_fd = open(p, O_RDWR | O_CLOEXEC | flags, 0644);
    return seg->log_fd < 0 ? -errno : 0;
}

/* Maps the .log for header parsing. A failure only costs speed (pread is used instead). */
static void map_log(struct segment *seg, int64_t len)
{
    if (len <= 0)
        return;
    void *m = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, seg->log_fd, 0);
    if (m == MAP_FAILED)
        return;
    seg->log_map = m;
    seg->log_map_len = (size_t)len;
}

static void cache_max_timestamp(struct segment *seg)
{
    struct timestamp_offset last = time_index_last(&seg->time_index, seg->base_offset);
    atomic_store(&seg->max_timestamp, last.timestamp);
    atomic_store(&seg->offset_of_max_timestamp, last.offset);
    atomic_store(&seg->max_timestamp_known, true);
}

int segment_create(const char *dir, int64_t base_offset, size_t index_max_bytes,
                   int32_t index_interval_bytes, int64_t map_bytes, int64_t now_ms,
                   struct segment **out)
{
    struct segment *seg = segment_alloc(dir, base_offset, index_max_bytes, index_interval_bytes);
    if (!seg)
        return -ENOMEM;
    struct stat st;
    int rc = open_log_fd(seg, O_CREAT);
    if (rc < 0)
        goto err;
    if (fstat(seg->log_fd, &st) < 0) {
        rc = -errno;
        goto err;
    }
    if (st.st_size != 0) {
        rc = -EEXIST;
        goto err;
    }
    /* Stale indexes of an empty segment are meaningless: start them afresh. */
    for (int i = 1; i < 3; i++) {
        char p[PATH_MAX];
        file_name(seg, SUFFIXES[i], p);
        if (unlink(p) < 0 && errno != ENOENT) {
            rc = -errno;
            goto err;
        }
    }
    if ((rc = open_indexes(seg, true)) < 0)
        goto err;
    seg->map_hint = map_bytes;
    map_log(seg, map_bytes);
    seg->active = true;
    seg->verified = true;
    seg->created_ms = now_ms;
    atomic_store(&seg->max_timestamp_known, true);
    *out = seg;
    return 0;
err:
    segment_unref(seg);
    return rc;
}

int segment_init_closed(const char *dir, int64_t base_offset, int64_t size, size_t index_max_bytes,
                        int32_t index_interval_bytes, struct segment **out)
{
    struct segment *seg = segment_alloc(dir, base_offset, index_max_bytes, index_interval_bytes);
    if (!seg)
        return -ENOMEM;
    atomic_store(&seg->size, size);
    *out = seg;
    return 0;
}

void segment_ref(struct segment *seg)
{
    atomic_fetch_add_explicit(&seg->refs, 1, memory_order_relaxed);
}

void segment_unref(struct segment *seg)
{
    if (!seg || atomic_fetch_sub_explicit(&seg->refs, 1, memory_order_acq_rel) != 1)
        return;
    close_files(seg);
    pthread_mutex_destroy(&seg->lock);
    free(seg->path);
    free(seg);
}

/* Checks the indexes of a closed segment against its .log; false when they must be rebuilt. */
static bool indexes_look_valid(struct segment *seg)
{
    int64_t size = segment_size(seg);
    if (offset_index_sanity_check(&seg->offset_index, size) < 0 ||
        time_index_sanity_check(&seg->time_index) < 0)
        return false;
    /* A log longer than one index interval always has an index entry (Kafka's rule adds one
     * once more than index.interval.bytes were appended), so an empty index is a lost one. */
    if (index_file_entries(&seg->offset_index) == 0 &&
        size > 2 * (int64_t)seg->index_interval_bytes)
        return false;
    struct timestamp_offset t = time_index_last(&seg->time_index, seg->base_offset);
    return t.offset >= seg->base_offset;
}

/* Rebuilds the indexes of a closed segment in place (lock held, no pins). */
static int rebuild_closed(struct segment *seg)
{
    struct segment_recovery_result r;
    index_file_close(&seg->offset_index);
    index_file_close(&seg->time_index);
    char p[PATH_MAX];
    for (int i = 1; i < 3; i++) { /* a corrupt index may have a bad size: start over */
        file_name(seg, SUFFIXES[i], p);
        if (unlink(p) < 0 && errno != ENOENT)
            return -errno;
    }
    int rc = open_indexes(seg, true);
    if (rc < 0)
        return rc;
    if ((rc = segment_recover(seg, &r)) < 0)
        return rc;
    if (r.truncated_bytes > 0)
        logger_warn("storage", "%s.log: truncated %lld invalid bytes while rebuilding its index",
                    seg->path, (long long)r.truncated_bytes);
    index_file_trim(&seg->offset_index);
    index_file_trim(&seg->time_index);
    return 0;
}

/* Opens a closed segment's files (lock held). */
static int open_closed(struct segment *seg)
{
    int rc = open_log_fd(seg, 0);
    if (rc < 0)
        return rc;
    rc = open_indexes(seg, false);
    if (rc == -EBADMSG || (rc == 0 && !seg->verified && !indexes_look_valid(seg))) {
        logger_warn("storage", "%s: index missing or corrupt, rebuilding from the log", seg->path);
        rc = rebuild_closed(seg);
    } else if (rc == -ENOENT) {
        rc = rebuild_closed(seg);
    }
    if (rc < 0) {
        close_files(seg);
        return rc;
    }
    seg->verified = true;
    map_log(seg, segment_size(seg));
    if (!atomic_load(&seg->max_timestamp_known))
        cache_max_timestamp(seg);
    return 0;
}

int segment_acquire(struct segment *seg)
{
    segment_ref(seg);
    pthread_mutex_lock(&seg->lock);
    int rc = seg->log_fd >= 0 ? 0 : open_closed(seg);
    bool opened = rc == 0 && seg->pins == 0 && !seg->active && !seg->was_open;
    if (rc == 0) {
        seg->pins++;
        seg->was_open = true;
    }
    pthread_mutex_unlock(&seg->lock);
    if (rc < 0)
        segment_unref(seg);
    return rc < 0 ? rc : opened;
}

void segment_release(struct segment *seg)
{
    atomic_store_explicit(&seg->last_used_ms, clock_mono_ms(), memory_order_relaxed);
    pthread_mutex_lock(&seg->lock);
    seg->pins--;
    pthread_mutex_unlock(&seg->lock);
    segment_unref(seg);
}

int segment_open_active(struct segment *seg, int64_t map_bytes)
{
    pthread_mutex_lock(&seg->lock);
    close_files(seg);
    int rc = open_log_fd(seg, 0);
    if (rc == 0 && (rc = open_indexes(seg, true)) < 0)
        close_files(seg);
    if (rc == 0) {
        int64_t size = segment_size(seg);
        seg->map_hint = map_bytes;
        map_log(seg, map_bytes > size ? map_bytes : size);
        seg->active = true;
        if (!atomic_load(&seg->max_timestamp_known))
            cache_max_timestamp(seg);
    }
    pthread_mutex_unlock(&seg->lock);
    return rc;
}

bool segment_close_idle(struct segment *seg, int64_t now_ms, int64_t idle_ms)
{
    bool closed = false;
    pthread_mutex_lock(&seg->lock);
    if (seg->log_fd >= 0 && seg->pins == 0 && !seg->active &&
        now_ms - atomic_load(&seg->last_used_ms) >= idle_ms) {
        close_files(seg);
        closed = true;
    }
    pthread_mutex_unlock(&seg->lock);
    return closed;
}

int segment_read_batch_header(struct segment *seg, int64_t pos, int64_t limit,
                              struct record_batch_header *h)
{
    uint8_t buf[RECORD_BATCH_HEADER_SIZE];
    const uint8_t *p = buf;
    if (pos < 0 || pos + RECORD_BATCH_HEADER_SIZE > limit) /* pos may come from a bad index */
        return -ENODATA;
    if (pos + RECORD_BATCH_HEADER_SIZE <= (int64_t)seg->log_map_len) {
        p = seg->log_map + pos; /* below limit <= size: inside the file, no fault */
    } else {
        ssize_t n = pread(seg->log_fd, buf, sizeof(buf), pos);
        if (n < 0)
            return -errno;
        if (n != (ssize_t)sizeof(buf))
            return -ENODATA;
    }
    int rc = record_batch_header_parse(p, RECORD_BATCH_HEADER_SIZE, h);
    if (rc < 0)
        return rc;
    if (pos + (int64_t)record_batch_size(h) > limit)
        return -ENODATA;
    return 0;
}

int segment_find_position(struct segment *seg, int64_t offset, int64_t limit, int64_t *pos,
                          struct record_batch_header *h)
{
    struct offset_position start =
        offset_index_lookup(&seg->offset_index, seg->base_offset, offset);
    int64_t p = start.position;
    for (;;) {
        int rc = segment_read_batch_header(seg, p, limit, h);
        if (rc < 0)
            return rc;
        if (record_batch_last_offset(h) >= offset) {
            *pos = p;
            return 0;
        }
        p += (int64_t)record_batch_size(h);
    }
}

/* Writes all of buf at pos, retrying short writes. */
static int pwrite_all(int fd, const uint8_t *buf, size_t len, int64_t pos)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, pos);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
        pos += n;
    }
    return 0;
}

/* Undoes a failed append: the .log back to old_size, index entries back to their counts. */
static int append_rollback(struct segment *seg, int64_t old_size, uint32_t oi_n, uint32_t ti_n)
{
    index_file_truncate_entries(&seg->offset_index, oi_n);
    index_file_truncate_entries(&seg->time_index, ti_n);
    return ftruncate(seg->log_fd, old_size) < 0 ? -errno : 0;
}

int segment_append(struct segment *seg, const uint8_t *buf, size_t len, int64_t largest_offset,
                   int64_t max_timestamp, int64_t offset_of_max_timestamp,
                   int32_t index_interval_bytes, bool *fatal)
{
    int64_t pos = atomic_load_explicit(&seg->size, memory_order_relaxed);
    uint32_t oi_n = index_file_entries(&seg->offset_index);
    uint32_t ti_n = index_file_entries(&seg->time_index);
    int64_t old_max = atomic_load(&seg->max_timestamp);
    *fatal = false;

    int rc = pwrite_all(seg->log_fd, buf, len, pos);
    if (rc == 0 && seg->bytes_since_index > index_interval_bytes) {
        int64_t ts = max_timestamp > old_max ? max_timestamp : old_max;
        int64_t ts_off = max_timestamp > old_max ? offset_of_max_timestamp
                                                 : atomic_load(&seg->offset_of_max_timestamp);
        rc = offset_index_append(&seg->offset_index, seg->base_offset, largest_offset, pos);
        if (rc == 0)
            rc = time_index_maybe_append(&seg->time_index, seg->base_offset, ts, ts_off);
        if (rc == 0)
            seg->bytes_since_index = 0;
    }
    if (rc < 0) {
        int rb = append_rollback(seg, pos, oi_n, ti_n);
        *fatal = rb < 0 || (rc != -ENOSPC && rc != -EDQUOT && rc != -EFBIG);
        return rc;
    }
    seg->bytes_since_index += (int64_t)len;
    if (max_timestamp > old_max) {
        atomic_store(&seg->max_timestamp, max_timestamp);
        atomic_store(&seg->offset_of_max_timestamp, offset_of_max_timestamp);
    }
    if (seg->rolling_timestamp < 0)
        seg->rolling_timestamp = max_timestamp;
    seg->next_offset = largest_offset + 1;
    atomic_store_explicit(&seg->size, pos + (int64_t)len, memory_order_release);
    return 0;
}

int segment_seal(struct segment *seg)
{
    pthread_mutex_lock(&seg->lock);
    int rc = 0;
    if (seg->active && seg->log_fd >= 0) {
        /* Kafka's onBecomeInactiveSegment: the last time-index entry holds the segment's
         * largest timestamp, so retention and ListOffsets(-3) can read it from the index. */
        int64_t ts = atomic_load(&seg->max_timestamp);
        if (ts >= 0)
            rc = time_index_maybe_append(&seg->time_index, seg->base_offset, ts,
                                         atomic_load(&seg->offset_of_max_timestamp));
        int rc2 = index_file_trim(&seg->offset_index);
        int rc3 = index_file_trim(&seg->time_index);
        rc = rc < 0 ? rc : rc2 < 0 ? rc2 : rc3;
    }
    seg->active = false;
    pthread_mutex_unlock(&seg->lock);
    return rc;
}

int segment_start_writeback(struct segment *seg)
{
    if (sync_file_range(seg->log_fd, 0, 0, SYNC_FILE_RANGE_WRITE) < 0)
        return -errno;
    return 0;
}

int segment_sync(struct segment *seg)
{
    if (fdatasync(seg->log_fd) < 0)
        return -errno;
    return 0;
}

void segment_max_timestamp(struct segment *seg, int64_t *ts, int64_t *offset)
{
    if (!atomic_load(&seg->max_timestamp_known)) {
        pthread_mutex_lock(&seg->lock);
        if (!atomic_load(&seg->max_timestamp_known) && seg->log_fd >= 0)
            cache_max_timestamp(seg);
        pthread_mutex_unlock(&seg->lock);
    }
    *ts = atomic_load(&seg->max_timestamp);
    *offset = atomic_load(&seg->offset_of_max_timestamp);
}

int segment_rename_deleted(struct segment *seg)
{
    char from[PATH_MAX], to[PATH_MAX + 8];
    for (int i = 0; i < 4; i++) {
        file_name(seg, SUFFIXES[i], from);
        snprintf(to, sizeof(to), "%s.deleted", from);
        if (rename(from, to) < 0 && errno != ENOENT)
            return -errno;
    }
    seg->deleted = true;
    return 0;
}

void segment_unlink_deleted(struct segment *seg)
{
    char p[PATH_MAX], d[PATH_MAX + 8];
    for (int i = 0; i < 4; i++) {
        file_name(seg, SUFFIXES[i], p);
        snprintf(d, sizeof(d), "%s.deleted", p);
        if (unlink(d) < 0 && errno != ENOENT)
            logger_warn("storage", "unlink %s: %s", d, strerror(errno));
    }
}

void segment_unlink(struct segment *seg)
{
    char p[PATH_MAX];
    for (int i = 0; i < 4; i++) {
        file_name(seg, SUFFIXES[i], p);
        if (unlink(p) < 0 && errno != ENOENT)
            logger_warn("storage", "unlink %s: %s", p, strerror(errno));
    }
}

int segment_sync_indexes(struct segment *seg)
{
    int rc = index_file_sync(&seg->offset_index);
    int rc2 = index_file_sync(&seg->time_index);
    return rc < 0 ? rc : rc2;
}
