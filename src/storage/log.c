/*
 * Partition log: config, open/close, append and roll, published offsets, flush.
 *
 * Invariants: segs is non-empty and sorted by base offset; segs[nsegs-1] is the only active
 * segment; end_offset == active segment's next_offset once an append returns; start_offset <=
 * high_watermark <= end_offset; recovery_point <= end_offset. Every byte below a segment's
 * published size is a whole, offset-assigned batch.
 */
#include "storage/log_internal.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/lock.h"
#include "base/logger.h"
#include "record/record_batch.h"
#include "storage/flusher.h"

struct log_config log_config_defaults(void)
{
    return (struct log_config){
        .segment_bytes = 1LL << 30,
        .segment_ms = 7LL * 24 * 3600 * 1000,
        .index_interval_bytes = 4096,
        .segment_index_bytes = 10 * 1024 * 1024,
        .retention_ms = 7LL * 24 * 3600 * 1000,
        .retention_bytes = -1,
        .flush_interval_messages = INT64_MAX,
        .flush_interval_ms = INT64_MAX,
        .file_delete_delay_ms = 60000,
        .max_message_bytes = 1048588,
        .compact = false,
        .delete_retention = true,
        .segment_idle_close_ms = 60000,
        .delete_retention_ms = 86400000,
        .min_cleanable_dirty_ratio = 0.5,
        .min_compaction_lag_ms = 0,
    };
}

void log_mark_offline(struct log *log, const char *what, int err)
{
    if (!atomic_exchange(&log->offline, true))
        logger_error("storage", "%s-%d goes offline: %s failed: %s", log->topic, log->partition,
                     what, strerror(err < 0 ? -err : err));
}

size_t log_segment_index_locked(const struct log *log, int64_t offset)
{
    assert(lock_rwlock_held((pthread_rwlock_t *)&log->segments_lock));
    assert(log->nsegs > 0);
    size_t lo = 0, hi = log->nsegs - 1; /* invariant: answer in [lo, hi] */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (log->segs[mid]->base_offset <= offset)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

void log_segments_assert_sorted_locked(const struct log *log)
{
    assert(log->nsegs > 0);
    for (size_t i = 1; i < log->nsegs; i++)
        assert(log->segs[i - 1]->base_offset < log->segs[i]->base_offset);
}

int log_segments_push(struct log *log, struct segment *seg)
{
    pthread_rwlock_wrlock(&log->segments_lock);
    if (log->nsegs == log->segs_cap) {
        size_t cap = log->segs_cap ? log->segs_cap * 2 : 16;
        struct segment **s = realloc(log->segs, cap * sizeof(*s));
        if (!s) {
            pthread_rwlock_unlock(&log->segments_lock);
            return -ENOMEM;
        }
        log->segs = s;
        log->segs_cap = cap;
    }
    log->segs[log->nsegs++] = seg;
    log_segments_assert_sorted_locked(log);
    pthread_rwlock_unlock(&log->segments_lock);
    return 0;
}

static int make_partition_dir(const char *parent, const char *path)
{
    if (mkdir(parent, 0755) < 0 && errno != EEXIST)
        return -errno;
    if (mkdir(path, 0755) == 0)
        return checkpoint_sync_dir(parent);
    return errno == EEXIST ? 0 : -errno;
}

void log_free(struct log *log, bool purge)
{
    for (size_t i = 0; i < log->nsegs; i++)
        segment_unref(log->segs[i]);
    if (purge)
        log_purge_deleted(log, 0, true);
    else
        for (size_t i = 0; i < log->npending; i++)
            segment_unref(log->pending[i].seg);
    free(log->pending);
    free(log->segs);
    free(log->epochs);
    free(log->dir);
    free(log->topic);
    pthread_mutex_destroy(&log->append_lock);
    pthread_mutex_destroy(&log->flush_lock);
    pthread_mutex_destroy(&log->pending_lock);
    pthread_rwlock_destroy(&log->segments_lock);
    free(log);
}

int log_open(const char *dir, const char *topic, int32_t partition, const struct log_config *cfg,
             const struct log_open_state *state, struct log **out)
{
    struct log *log = calloc(1, sizeof(*log));
    if (!log)
        return -ENOMEM;
    size_t n = strlen(dir) + strlen(topic) + 16;
    log->dir = malloc(n);
    log->topic = strdup(topic);
    if (!log->dir || !log->topic) {
        free(log->dir);
        free(log->topic);
        free(log);
        return -ENOMEM;
    }
    snprintf(log->dir, n, "%s/%s-%d", dir, topic, partition);
    log->partition = partition;
    log->config = cfg ? *cfg : log_config_defaults();
    atomic_init(&log->flush_interval_ms, log->config.flush_interval_ms);
    pthread_mutex_init(&log->append_lock, NULL);
    pthread_mutex_init(&log->flush_lock, NULL);
    pthread_mutex_init(&log->pending_lock, NULL);
    pthread_rwlock_init(&log->segments_lock, NULL);
    atomic_init(&log->last_flush_ms, clock_mono_ms());
    int rc = make_partition_dir(dir, log->dir);
    if (rc == 0)
        rc = log_epoch_load(log);
    if (rc == 0)
        rc = log_load(log, state);
    if (rc < 0) {
        logger_error("storage", "cannot open log %s: %s", log->dir, strerror(-rc));
        log_free(log, true);
        return rc;
    }
    /* Only what is appended from now on goes on the page-cache budget. */
    struct segment *active = log->segs[log->nsegs - 1];
    log->written_base = active->base_offset;
    log->written_pos = segment_size(active);
    *out = log;
    return 0;
}

void log_close(struct log *log)
{
    if (!log)
        return;
    struct segment *active = log->segs[log->nsegs - 1];
    if (!atomic_load(&log->offline)) {
        int rc = log_flush(log, NULL);
        if (rc == 0)
            rc = segment_seal(active);
        if (rc == 0)
            rc = segment_sync_indexes(active);
        if (rc < 0)
            logger_warn("storage", "closing %s: %s", log->dir, strerror(-rc));
    }
    log_free(log, true);
}

void log_set_config(struct log *log, const struct log_config *cfg)
{
    pthread_mutex_lock(&log->append_lock);
    log->config = *cfg;
    atomic_store(&log->flush_interval_ms, cfg->flush_interval_ms);
    pthread_mutex_unlock(&log->append_lock);
}

struct log_config log_get_config(struct log *log)
{
    pthread_mutex_lock(&log->append_lock);
    struct log_config c = log->config;
    pthread_mutex_unlock(&log->append_lock);
    return c;
}

/* Sums a buffer of batches: total offsets spanned, records, the largest batch max timestamp,
 * and checks they tile len. */
static int scan_batches(const uint8_t *buf, size_t len, int64_t *span, int32_t *records,
                        int64_t *max_ts)
{
    size_t pos = 0;
    *span = 0;
    *records = 0;
    *max_ts = -1;
    if (len == 0)
        return LOG_ERR_CORRUPT;
    while (pos < len) {
        struct record_batch_header h;
        if (record_batch_header_parse(buf + pos, len - pos, &h) < 0 ||
            record_batch_size(&h) > len - pos || h.last_offset_delta < 0)
            return LOG_ERR_CORRUPT;
        *span += (int64_t)h.last_offset_delta + 1;
        *records += h.record_count;
        if (h.max_timestamp > *max_ts)
            *max_ts = h.max_timestamp;
        pos += record_batch_size(&h);
    }
    return 0;
}

/*
 * Kafka's LogSegment.shouldRoll: by size, by index space, by offset range (largest_offset must
 * fit the segment's 32-bit relative offsets), and by time: with a first batch timestamp in the
 * segment, the time waited is the incoming batch's timestamp minus it (so replayed old data
 * does not roll on every batch); otherwise the wall clock since the segment was created.
 */
static bool should_roll(struct log *log, struct segment *active, size_t len, int64_t largest_offset,
                        int64_t batch_ts, int64_t now_ms)
{
    int64_t size = segment_size(active);
    if (size == 0)
        return false;
    if (size + (int64_t)len > log->config.segment_bytes)
        return true;
    int64_t waited = active->rolling_timestamp >= 0 ? batch_ts - active->rolling_timestamp
                                                    : now_ms - active->created_ms;
    if (waited > log->config.segment_ms)
        return true;
    if (active->offset_index.max_entries - index_file_entries(&active->offset_index) < 2 ||
        active->time_index.max_entries - index_file_entries(&active->time_index) < 2)
        return true;
    return largest_offset - active->base_offset > INT32_MAX;
}

/* Creates the next segment, based at `base` (>= the log end), and makes it active (append_lock
 * held). */
static int log_roll_locked(struct log *log, int64_t base, int64_t now_ms)
{
    assert(lock_mutex_held(&log->append_lock));
    struct segment *old = log->segs[log->nsegs - 1];
    assert(base >= old->next_offset && base > old->base_offset);
    struct segment *seg;
    int rc =
        segment_create(log->dir, base, (size_t)log->config.segment_index_bytes,
                       log->config.index_interval_bytes, log->config.segment_bytes, now_ms, &seg);
    if (rc < 0)
        return rc;
    if ((rc = log_segments_push(log, seg)) < 0) {
        segment_unlink(seg);
        segment_unref(seg);
        return rc;
    }
    atomic_store(&log->dir_dirty, true);
    if ((rc = segment_seal(old)) < 0)
        logger_warn("storage", "%s: trimming indexes on roll: %s", old->path, strerror(-rc));
    /* Closed segments hold no fds until read again (lazy open): thousands of partitions
     * with many segments would otherwise run out of descriptors. */
    segment_close_idle(old, INT64_MAX, 0);
    return 0;
}

/* Assigns offsets, epoch and LogAppendTime in place; returns max timestamp and its offset. */
static void assign_offsets(uint8_t *buf, size_t len, int64_t next, int32_t epoch, int64_t now_ms,
                           bool lat, int64_t *max_ts, int64_t *max_ts_off)
{
    size_t pos = 0;
    *max_ts = -1;
    *max_ts_off = next;
    while (pos < len) {
        struct record_batch_header h;
        record_batch_header_parse(buf + pos, len - pos, &h); /* checked by scan_batches */
        record_batch_set_base_offset(buf + pos, next);
        if (epoch >= 0)
            record_batch_set_leader_epoch(buf + pos, epoch);
        if (lat)
            record_batch_set_log_append_time(buf + pos, now_ms);
        int64_t ts = lat ? now_ms : h.max_timestamp;
        int64_t last = next + h.last_offset_delta;
        if (ts > *max_ts) {
            *max_ts = ts;
            *max_ts_off = last;
        }
        next = last + 1;
        pos += record_batch_size(&h);
    }
}

/* What one segment write holds: offsets [first, last], the largest timestamp and its offset. */
struct append_span {
    int64_t first, last;
    int64_t max_ts, max_ts_off;
    int32_t records;
};

/* The write shared by log_append and log_append_replica: buf[0..len) (whole batches holding
 * the offsets of `s`) into the active segment with one pwrite, then publishes the new end and
 * fills *out. On error nothing is visible (a write that cannot be undone puts the log
 * offline). append_lock held. */
static int write_active_locked(struct log *log, const uint8_t *buf, size_t len,
                               const struct append_span *s, struct log_append_info *out)
{
    bool fatal;
    assert(lock_mutex_held(&log->append_lock));
    struct segment *active = log->segs[log->nsegs - 1];
    assert(s->first >= active->next_offset && s->last - active->base_offset <= INT32_MAX);
    int64_t position = segment_size(active);
    int rc = segment_append(active, buf, len, s->last, s->max_ts, s->max_ts_off,
                            log->config.index_interval_bytes, &fatal);
    if (rc < 0) {
        if (fatal)
            log_mark_offline(log, "append", rc);
        return fatal ? LOG_ERR_OFFLINE : rc;
    }
    atomic_store_explicit(&log->end_offset, s->last + 1, memory_order_release);
    assert(log_high_watermark(log) <= s->last + 1);
    out->first_offset = s->first;
    out->last_offset = s->last;
    out->log_append_time = -1;
    out->log_start_offset = atomic_load(&log->start_offset);
    out->segment_base = active->base_offset;
    out->position = position;
    out->record_count = s->records;
    return 0;
}

static int append_locked(struct log *log, uint8_t *buf, size_t len, int32_t leader_epoch,
                         int64_t now_ms, bool lat, struct log_append_info *out)
{
    int64_t span;
    struct append_span s;
    assert(lock_mutex_held(&log->append_lock));
    if (atomic_load(&log->offline))
        return LOG_ERR_OFFLINE;
    int64_t batch_ts;
    int rc = scan_batches(buf, len, &span, &s.records, &batch_ts);
    if (rc < 0)
        return rc;
    if (lat)
        batch_ts = now_ms;
    struct segment *active = log->segs[log->nsegs - 1];
    if (should_roll(log, active, len, active->next_offset + span - 1, batch_ts, now_ms)) {
        if ((rc = log_roll_locked(log, active->next_offset, now_ms)) < 0)
            return rc;
        active = log->segs[log->nsegs - 1];
    }
    s.first = active->next_offset;
    s.last = s.first + span - 1;
    if (leader_epoch >= 0 && (rc = log_epoch_assign_locked(log, leader_epoch, s.first)) < 0)
        return rc;
    assign_offsets(buf, len, s.first, leader_epoch, now_ms, lat, &s.max_ts, &s.max_ts_off);
    rc = write_active_locked(log, buf, len, &s, out);
    if (rc == 0 && lat)
        out->log_append_time = now_ms;
    return rc;
}

/* After an append of `records` records in `bytes`: counts them for flush.messages (pokes the
 * flusher) and for the writeback ahead. */
static void note_appended(struct log *log, int32_t records, size_t bytes, int64_t flush_every)
{
    int64_t unflushed = atomic_fetch_add(&log->unflushed_messages, records) + records;
    struct log_flusher *f = atomic_load(&log->flusher);
    if (f == NULL)
        return;
    if (unflushed >= flush_every)
        log_flusher_poke(f, log);
    int64_t n = (int64_t)bytes;
    int64_t unwritten = atomic_fetch_add(&log->unwritten_bytes, n) + n;
    if (unwritten >= LOG_WRITEBACK_BYTES && unwritten - n < LOG_WRITEBACK_BYTES)
        log_flusher_writeback(f, log); /* the append that crossed the mark asks, once */
}

int log_start_writeback(struct log *log)
{
    atomic_store(&log->unwritten_bytes, 0);
    pthread_rwlock_rdlock(&log->segments_lock);
    struct segment *active = log->segs[log->nsegs - 1];
    segment_ref(active);
    pthread_rwlock_unlock(&log->segments_lock);
    int rc = segment_acquire(active);
    if (rc >= 0) {
        rc = segment_start_writeback(active);
        segment_release(active);
    }
    segment_unref(active);
    return rc < 0 ? rc : 0;
}

/* Hands seg's bytes [from, to) to fn when there are any; whether it did. */
static bool hand_out_written(const struct segment *seg, int64_t from, int64_t to, log_written_fn fn,
                             void *arg)
{
    if (to <= from) /* nothing new, or truncated below what was taken: starts over */
        return false;
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s.log", seg->path);
    fn(arg, path, from, to);
    return true;
}

int log_take_written(struct log *log, log_written_fn fn, void *arg)
{
    int n = 0;
    pthread_rwlock_rdlock(&log->segments_lock);
    struct segment *active = log->segs[log->nsegs - 1];
    int64_t size = segment_size(active);
    if (active->base_offset == log->written_base && size >= log->written_pos &&
        size - log->written_pos < LOG_WRITEBACK_BYTES / 2) {
        /* Less than half a writeback round: taken with the next one. Half, because the round's
         * request counts bytes from when its writeback started, a little before this. */
        pthread_rwlock_unlock(&log->segments_lock);
        return 0;
    }
    /* From the segment the last call stopped in; if retention removed it, the first one after
     * it; if a truncation did, the active segment (an earlier one) from its start. */
    size_t i = log_segment_index_locked(log, log->written_base);
    if (log->segs[i]->base_offset < log->written_base && i + 1 < log->nsegs)
        i++;
    for (; i < log->nsegs; i++) {
        struct segment *seg = log->segs[i];
        int64_t from = seg->base_offset == log->written_base ? log->written_pos : 0;
        int64_t to = seg == active ? size : segment_size(seg);
        n += hand_out_written(seg, from, to, fn, arg);
    }
    log->written_base = active->base_offset;
    log->written_pos = size;
    pthread_rwlock_unlock(&log->segments_lock);
    return n;
}

int log_append(struct log *log, uint8_t *batches, size_t len, int32_t leader_epoch, int64_t now_ms,
               bool log_append_time, struct log_append_info *out)
{
    pthread_mutex_lock(&log->append_lock);
    int rc = append_locked(log, batches, len, leader_epoch, now_ms, log_append_time, out);
    int64_t flush_every = log->config.flush_interval_messages;
    pthread_mutex_unlock(&log->append_lock);
    if (rc == 0)
        note_appended(log, out->record_count, len, flush_every);
    return rc;
}

/*
 * Validates a follower's buffer before anything is written: whole magic-2 batches with valid
 * CRCs (RECORD_VALIDATE_STORED: the leader's log may be compacted), offsets strictly
 * increasing across batches. Returns the first batch's base offset through *first.
 */
static int validate_replica_batches(const uint8_t *buf, size_t len, int64_t *first)
{
    size_t pos = 0;
    int64_t prev_last = -1;
    if (len == 0)
        return LOG_ERR_CORRUPT;
    while (pos < len) {
        struct record_batch_header h;
        if (record_batch_validate(buf + pos, len - pos, RECORD_VALIDATE_STORED, 0, &h) < 0)
            return LOG_ERR_CORRUPT;
        if (h.base_offset < 0 || h.base_offset <= prev_last ||
            record_batch_last_offset(&h) < h.base_offset)
            return LOG_ERR_CORRUPT;
        if (pos == 0)
            *first = h.base_offset;
        prev_last = record_batch_last_offset(&h);
        pos += record_batch_size(&h);
    }
    return 0;
}

/* The longest run of batches from buf[0] whose offsets fit one segment's 32-bit relative
 * offsets from the run's first base offset; fills *s and returns its length in bytes. Also
 * returns the largest batch max timestamp (for the time-based roll). Buffer validated. */
static size_t replica_run(const uint8_t *buf, size_t len, struct append_span *s)
{
    size_t pos = 0;
    s->records = 0;
    s->max_ts = -1;
    while (pos < len) {
        struct record_batch_header h;
        record_batch_header_parse(buf + pos, len - pos, &h);
        if (pos == 0) {
            s->first = h.base_offset;
            s->max_ts_off = h.base_offset;
        } else if (record_batch_last_offset(&h) - s->first > INT32_MAX) {
            break;
        }
        s->last = record_batch_last_offset(&h);
        s->records += h.record_count;
        if (h.max_timestamp > s->max_ts) {
            s->max_ts = h.max_timestamp;
            s->max_ts_off = s->last;
        }
        pos += record_batch_size(&h);
    }
    return pos;
}

/* Kafka's follower epoch bookkeeping: each batch whose partitionLeaderEpoch is above the
 * latest known epoch starts that epoch at its base offset. *assigned tells whether any was. */
static int assign_replica_epochs(struct log *log, const uint8_t *buf, size_t len, bool *assigned)
{
    size_t pos = 0;
    while (pos < len) {
        struct record_batch_header h;
        record_batch_header_parse(buf + pos, len - pos, &h);
        int32_t latest = log->nepochs ? log->epochs[log->nepochs - 1].epoch : -1;
        if (h.partition_leader_epoch >= 0 && h.partition_leader_epoch > latest) {
            int rc = log_epoch_assign_locked(log, h.partition_leader_epoch, h.base_offset);
            if (rc < 0)
                return rc;
            *assigned = true;
        }
        pos += record_batch_size(&h);
    }
    return 0;
}

static int append_replica_locked(struct log *log, const uint8_t *buf, size_t len, int64_t now_ms,
                                 struct log_append_info *out)
{
    int64_t first;
    assert(lock_mutex_held(&log->append_lock));
    if (atomic_load(&log->offline))
        return LOG_ERR_OFFLINE;
    int rc = validate_replica_batches(buf, len, &first);
    if (rc < 0)
        return rc;
    if (first < log_end_offset(log))
        return LOG_ERR_OFFSET_OUT_OF_RANGE;
    bool first_run = true;
    while (len > 0) {
        struct append_span s;
        size_t n = replica_run(buf, len, &s);
        struct segment *active = log->segs[log->nsegs - 1];
        /* An empty active segment is not rolled by should_roll, but offsets far past its base
         * (a gap left by the leader's compaction) need a segment of their own (Kafka rolls
         * on offset overflow whatever the size). */
        bool overflow = s.last - active->base_offset > INT32_MAX;
        if (should_roll(log, active, n, s.last, s.max_ts, now_ms) || overflow) {
            if ((rc = log_roll_locked(log, s.first, now_ms)) < 0)
                return rc;
        }
        bool assigned = false;
        struct log_append_info info;
        rc = assign_replica_epochs(log, buf, n, &assigned);
        if (rc == 0)
            rc = write_active_locked(log, buf, n, &s, &info);
        if (rc < 0) {
            /* Nothing of this run is in the log: neither are its epochs. */
            if (assigned && !atomic_load(&log->offline))
                log_epoch_truncate_from_locked(log, s.first);
            return rc;
        }
        if (first_run)
            *out = info;
        out->last_offset = info.last_offset;
        out->record_count = first_run ? info.record_count : out->record_count + info.record_count;
        first_run = false;
        buf += n;
        len -= n;
    }
    return 0;
}

int log_append_replica(struct log *log, const uint8_t *batches, size_t len,
                       struct log_append_info *out)
{
    pthread_mutex_lock(&log->append_lock);
    int rc = append_replica_locked(log, batches, len, clock_wall_ms(), out);
    int64_t flush_every = log->config.flush_interval_messages;
    pthread_mutex_unlock(&log->append_lock);
    if (rc == 0)
        note_appended(log, out->record_count, len, flush_every);
    return rc;
}

uint32_t log_reader_enter(struct log *log)
{
    /* Re-checking the phase after counting closes the window where a reader counted itself
     * in a phase a waiter has already drained (it then counts again in the current one). */
    for (;;) {
        uint32_t p = atomic_load(&log->read_phase);
        atomic_fetch_add(&log->readers[p & 1], 1);
        if (atomic_load(&log->read_phase) == p)
            return p;
        atomic_fetch_sub(&log->readers[p & 1], 1);
    }
}

void log_reader_exit(struct log *log, uint32_t phase)
{
    int64_t left = atomic_fetch_sub(&log->readers[phase & 1], 1) - 1;
    assert(left >= 0);
    (void)left;
}

void log_wait_for_readers_locked(struct log *log)
{
    assert(lock_mutex_held(&log->append_lock));
    uint32_t old = atomic_fetch_add(&log->read_phase, 1);
    while (atomic_load(&log->readers[old & 1]) != 0) {
        struct timespec ts = {0, 50000}; /* readers hold the count for microseconds */
        nanosleep(&ts, NULL);
    }
}

int64_t log_start_offset(const struct log *log)
{
    return atomic_load_explicit(&log->start_offset, memory_order_acquire);
}

int64_t log_end_offset(const struct log *log)
{
    return atomic_load_explicit(&log->end_offset, memory_order_acquire);
}

int64_t log_high_watermark(const struct log *log)
{
    return atomic_load_explicit(&log->high_watermark, memory_order_acquire);
}

int64_t log_recovery_point(const struct log *log)
{
    return atomic_load_explicit(&log->recovery_point, memory_order_acquire);
}

bool log_is_offline(const struct log *log)
{
    return atomic_load(&log->offline);
}

void log_set_high_watermark(struct log *log, int64_t hw)
{
    int64_t start = log_start_offset(log), end = log_end_offset(log);
    if (hw < start)
        hw = start;
    if (hw > end)
        hw = end;
    assert(start <= hw && hw <= end);
    atomic_store_explicit(&log->high_watermark, hw, memory_order_release);
}

void log_set_first_unstable_offset(struct log *log, int64_t offset)
{
    assert(offset >= -1);
    atomic_store_explicit(&log->first_unstable, offset, memory_order_release);
}

int64_t log_first_unstable_offset(const struct log *log)
{
    return atomic_load_explicit(&log->first_unstable, memory_order_acquire);
}

int64_t log_last_stable_offset(const struct log *log)
{
    int64_t hw = log_high_watermark(log);
    int64_t first = log_first_unstable_offset(log);
    return first >= 0 && first < hw ? first : hw;
}

void log_set_txn_index(struct log *log, struct txn_index *ti)
{
    atomic_store_explicit(&log->txns, ti, memory_order_release);
}

bool log_move_start_offset(struct log *log, int64_t offset)
{
    /* Retention and DeleteRecords stay at or below the high watermark; a follower restarting
     * at its leader's log start (out of range) moves past it, and log_set_high_watermark
     * then clamps the high watermark up to the new start. */
    assert(offset <= log_end_offset(log));
    int64_t cur = atomic_load(&log->start_offset);
    while (offset > cur && !atomic_compare_exchange_weak(&log->start_offset, &cur, offset))
        ;
    return offset > cur;
}

void log_run_start_hook(struct log *log)
{
    /* Not asserted: lock_mutex_held cannot tell this thread's hold from an appender's. TSan's
     * lock-order check in the suite catches a caller under append_lock. */
    if (log->start_hook)
        log->start_hook(log, log->start_hook_arg);
}

void log_advance_start_offset(struct log *log, int64_t offset)
{
    if (log_move_start_offset(log, offset))
        log_run_start_hook(log);
}

void log_set_start_offset_hook(struct log *log, log_start_offset_hook hook, void *arg)
{
    log->start_hook = hook;
    log->start_hook_arg = arg;
}

void log_set_active_producers_hook(struct log *log, log_active_producers_fn fn, void *arg)
{
    log->producers_hook = fn;
    log->producers_hook_arg = arg;
}

/* Takes references to the segments holding [from, to) offsets. */
static size_t collect_unflushed(struct log *log, int64_t from, struct segment ***out)
{
    pthread_rwlock_rdlock(&log->segments_lock);
    size_t first = log_segment_index_locked(log, from);
    size_t n = log->nsegs - first;
    struct segment **v = malloc(n * sizeof(*v));
    if (v)
        for (size_t i = 0; i < n; i++) {
            v[i] = log->segs[first + i];
            segment_ref(v[i]);
        }
    pthread_rwlock_unlock(&log->segments_lock);
    *out = v;
    return v ? n : 0;
}

int log_flush(struct log *log, int64_t *flushed)
{
    pthread_mutex_lock(&log->flush_lock);
    int rc = 0;
    int64_t target = log_end_offset(log);
    int64_t rp = log_recovery_point(log);
    int64_t before = atomic_load(&log->unflushed_messages);
    if (atomic_load(&log->offline)) {
        rc = LOG_ERR_OFFLINE;
        goto out;
    }
    if (target > rp) {
        /* What this flush writes needs no writeback ahead: the next LOG_WRITEBACK_BYTES
         * appended ask for one again (without this, a log flushed for acks=all while its
         * writeback request waited never asked again). */
        atomic_store(&log->unwritten_bytes, 0);
        struct segment **segs;
        size_t n = collect_unflushed(log, rp, &segs);
        if (!segs) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            int opened = rc == 0 ? segment_acquire(segs[i]) : -1;
            if (rc == 0 && opened < 0)
                rc = opened;
            if (opened >= 0) {
                rc = segment_sync(segs[i]);
                segment_release(segs[i]);
                if (opened == 1) /* opened just to sync: don't keep its fds */
                    segment_close_idle(segs[i], INT64_MAX, 0);
            }
            segment_unref(segs[i]);
        }
        free(segs);
        if (rc == 0 && atomic_exchange(&log->dir_dirty, false))
            rc = checkpoint_sync_dir(log->dir);
        if (rc < 0) {
            log_mark_offline(log, "fdatasync", rc);
            rc = LOG_ERR_OFFLINE;
            goto out;
        }
        assert(target <= log_end_offset(log));
        atomic_store_explicit(&log->recovery_point, target, memory_order_release);
    }
    atomic_fetch_sub(&log->unflushed_messages, before);
    atomic_store(&log->last_flush_ms, clock_mono_ms());
out:
    if (flushed)
        *flushed = log_recovery_point(log);
    pthread_mutex_unlock(&log->flush_lock);
    return rc;
}

const char *log_topic(const struct log *log)
{
    return log->topic;
}

int32_t log_partition(const struct log *log)
{
    return log->partition;
}

const char *log_dir_path(const struct log *log)
{
    return log->dir;
}

size_t log_segment_count(struct log *log)
{
    pthread_rwlock_rdlock(&log->segments_lock);
    size_t n = log->nsegs;
    pthread_rwlock_unlock(&log->segments_lock);
    return n;
}

int64_t log_size_bytes(struct log *log)
{
    int64_t total = 0;
    pthread_rwlock_rdlock(&log->segments_lock);
    for (size_t i = 0; i < log->nsegs; i++)
        total += segment_size(log->segs[i]);
    pthread_rwlock_unlock(&log->segments_lock);
    return total;
}

struct log_flusher *log_get_flusher(struct log *log)
{
    return atomic_load(&log->flusher);
}
