/*
 * A log segment: `<base>.log` + `<base>.index` + `<base>.timeindex`, base offset zero-padded
 * to 20 digits. Holds every batch with offsets in [base_offset, next segment's base).
 *
 * Lifetime and open state are separate:
 *  - `refs` keeps the struct alive. The log's segment array holds one reference; readers take
 *    another while they use the segment (a network writer may sendfile from its fd after
 *    log_read returned), so a segment removed by retention lives until the last reader lets go.
 *  - Files are opened lazily: a closed segment of a log that was loaded from disk has no fd and
 *    no mapping until the first segment_acquire(); segment_close_idle() closes them again when
 *    nobody has them pinned, so 10,000 mostly idle partitions do not hold 30,000 fds.
 *
 * Threads: `size` is written only by the log's appender (or recovery, before the log is
 * published) and read by anyone with acquire ordering; bytes below `size` are immutable while
 * the segment is pinned. `lock` guards fds, mappings and `pins`.
 */
#ifndef GREGOR_STORAGE_SEGMENT_H
#define GREGOR_STORAGE_SEGMENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "record/record_batch.h"
#include "storage/index_file.h"
#include "storage/offset_index.h"
#include "storage/time_index.h"

#define SEGMENT_NAME_DIGITS 20

struct segment {
    int64_t base_offset;
    char *path; /* "<partition dir>/<20-digit base>", no suffix */
    _Atomic int refs;
    _Atomic int64_t size; /* published log bytes */
    _Atomic int64_t last_used_ms;
    /* Largest timestamp in the segment and the offset recorded with it; valid once
     * max_timestamp_known (loaded from the time index on first open, or maintained on append). */
    _Atomic int64_t max_timestamp;
    _Atomic int64_t offset_of_max_timestamp;
    _Atomic bool max_timestamp_known;

    pthread_mutex_t lock; /* guards the fields below */
    int pins;
    int log_fd; /* -1 while closed */
    /* Read-only mapping of the .log used to parse batch headers without a syscall; covers
     * [0, log_map_len). Bytes are looked at only below `size`, so the mapping may extend past
     * the end of the file (active segment) without ever faulting. */
    const uint8_t *log_map;
    size_t log_map_len;
    int64_t map_hint; /* bytes to map for an active segment (segment.bytes) */
    struct index_file offset_index, time_index;
    bool active;   /* the log's last segment: opened writable, indexes preallocated */
    bool verified; /* indexes checked against the log since load */
    bool deleted;  /* renamed to .deleted */
    /* Being taken out of the log by a truncation (set under the log's segments write lock):
     * compaction must not swap it. */
    bool replaced;
    bool was_open; /* files opened by segment_acquire and not closed since */
    size_t index_max_bytes;
    int32_t index_interval_bytes; /* used when an index is rebuilt on lazy open */

    /* Appender-only state (under the log's append lock). */
    int64_t next_offset;       /* offset after the last batch; valid for the active segment */
    int64_t bytes_since_index; /* log bytes appended since the last offset-index entry */
    int64_t rolling_timestamp; /* maxTimestamp of the first batch, -1 if none */
    int64_t created_ms;
};

/* Formats "<dir>/<20 digits><suffix>" into out (PATH_MAX). */
void segment_file_name(char *out, size_t cap, const char *dir, int64_t base, const char *suffix);

/* Creates a new, empty, active segment and its preallocated indexes. Fails with -EEXIST if a
 * non-empty .log already exists. *out has one reference. */
int segment_create(const char *dir, int64_t base_offset, size_t index_max_bytes,
                   int32_t index_interval_bytes, int64_t map_bytes, int64_t now_ms,
                   struct segment **out);

/* Describes an existing segment without opening it (lazy). size = current .log size. */
int segment_init_closed(const char *dir, int64_t base_offset, int64_t size, size_t index_max_bytes,
                        int32_t index_interval_bytes, struct segment **out);

void segment_ref(struct segment *seg);
/* Drops a reference; the last one closes files and frees. */
void segment_unref(struct segment *seg);

/* Takes a reference and pins the files open (opening them on first use; an index failing its
 * sanity check is rebuilt from the .log). Release with segment_release. Returns 1 when this
 * call opened the files of a closed segment, 0 when they were open, or negative errno. */
int segment_acquire(struct segment *seg);
void segment_release(struct segment *seg);

/* Opens the segment for appending: writable log fd, indexes preallocated, the .log mapped for
 * up to map_bytes (segment.bytes). Caller holds the log's append lock (or has the log to
 * itself). */
int segment_open_active(struct segment *seg, int64_t map_bytes);

/* Closes fds and mappings if nobody pins the segment, it is not active, and it has been idle
 * for idle_ms. Returns true when it closed them. */
bool segment_close_idle(struct segment *seg, int64_t now_ms, int64_t idle_ms);

/* Reads the 61-byte header of the batch at pos (segment pinned). 0, -ENODATA at/after
 * `limit`, or a record_error / negative errno. */
int segment_read_batch_header(struct segment *seg, int64_t pos, int64_t limit,
                              struct record_batch_header *h);

/* Position of the first batch whose last offset >= offset, scanning from the index entry;
 * -ENODATA when no such batch lies below `limit`. Segment pinned. */
int segment_find_position(struct segment *seg, int64_t offset, int64_t limit, int64_t *pos,
                          struct record_batch_header *h);

/*
 * Appends len bytes (whole batches, offsets assigned) at the end of the active segment:
 * one pwrite loop, then the index entries, then publishes size. On any failure the .log is
 * truncated back and nothing is visible; returns -ENOSPC, or another negative errno (and then
 * *fatal is set when the segment could not be restored: the log must go offline).
 */
int segment_append(struct segment *seg, const uint8_t *buf, size_t len, int64_t largest_offset,
                   int64_t max_timestamp, int64_t offset_of_max_timestamp,
                   int32_t index_interval_bytes, bool *fatal);

/* Marks the segment inactive on roll or close: final time-index entry, trims both indexes. */
int segment_seal(struct segment *seg);

/* fdatasync of the .log. Indexes are not synced here: after an unclean stop they are rebuilt
 * from the .log. Segment pinned. */
int segment_sync(struct segment *seg);
/* Starts writeback of the .log's dirty pages (sync_file_range WRITE: no wait, no metadata). */
int segment_start_writeback(struct segment *seg);
/* fdatasync of both indexes (clean close, so the next start can trust them). */
int segment_sync_indexes(struct segment *seg);

/* Loads (or returns the cached) largest timestamp; segment must be pinned. */
void segment_max_timestamp(struct segment *seg, int64_t *ts, int64_t *offset);

/* Renames the three files to *.deleted (retention). Negative errno. */
int segment_rename_deleted(struct segment *seg);
/* Unlinks the *.deleted files. */
void segment_unlink_deleted(struct segment *seg);
/* Unlinks the live files (a segment dropped by recovery). */
void segment_unlink(struct segment *seg);

static inline int64_t segment_size(const struct segment *seg)
{
    return atomic_load_explicit(&seg->size, memory_order_acquire);
}

#endif
