/*
 * The struct behind struct log, shared by the files that implement it (log.c, log_load.c,
 * log_read.c, log_truncate.c, retention.c, log_epoch.c, flusher.c, compactor.c). Not for other
 * layers.
 *
 * Locks, and what each guards (never take them in another order than listed):
 *   append_lock    appender state: active segment's append fields, config, epochs
 *   flush_lock     serialises log_flush and truncation (both move the recovery point)
 *   segments_lock  (rwlock) segs / nsegs / segs_cap
 *   pending_lock   pending (segments renamed *.deleted awaiting unlink)
 * Published values (end_offset, high_watermark, start_offset, recovery_point, offline) are
 * atomics: written with release under append_lock (or flush_lock), read with acquire by anyone.
 *
 * Readers in flight: whatever looks at segment bytes or index entries without the append lock
 * (log_read, the timestamp lookups, a compaction pass) runs between log_reader_enter() and
 * log_reader_exit(). Truncation publishes the new end and segment sizes, then waits with
 * log_wait_for_readers_locked() for the readers that may have loaded the old values before it
 * cuts bytes: a reader never touches a mapped page past the end of a file (SIGBUS). A read
 * result pinned after log_read returned (sendfile) is not waited for: a cut under it only
 * makes the transfer short, which the network layer reports as an I/O error.
 */
#ifndef GREGOR_STORAGE_LOG_INTERNAL_H
#define GREGOR_STORAGE_LOG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "storage/checkpoint.h"
#include "storage/log.h"
#include "storage/segment.h"

#define LOG_OPEN_SEGMENTS_TRIM 64

struct pending_delete {
    struct segment *seg;
    int64_t due_ms;
};

struct log {
    char *dir; /* partition directory */
    char *topic;
    int32_t partition;

    pthread_mutex_t append_lock;
    struct log_config config;
    struct epoch_entry *epochs;
    size_t nepochs, epochs_cap;

    pthread_rwlock_t segments_lock;
    struct segment **segs; /* sorted by base offset; the last one is active */
    size_t nsegs, segs_cap;

    _Atomic int64_t end_offset;
    _Atomic int64_t high_watermark;
    _Atomic int64_t first_unstable; /* oldest open transaction's first offset, -1: none */
    _Atomic int64_t start_offset;
    _Atomic int64_t recovery_point;
    _Atomic bool offline;
    _Atomic int64_t unflushed_messages;
    _Atomic int64_t unwritten_bytes; /* appended since the last writeback was started */
    /* Flusher-owned (one flusher thread per log at a time): where log_take_written stopped,
     * as the segment's base offset and the byte position in its .log. */
    int64_t written_base, written_pos;
    _Atomic int64_t last_flush_ms; /* monotonic */
    _Atomic bool dir_dirty;        /* segment files created since the last flush */
    _Atomic int lazy_opens;
    _Atomic int64_t flush_interval_ms;
    /* copy of config.flush_interval_ms for the flusher */ /* closed segments opened by reads
                                                              since the last trim */

    pthread_mutex_t flush_lock;

    /* Readers in flight, counted per phase; truncation flips the phase and waits for the old
     * phase's count to drain (see above). */
    _Atomic uint32_t read_phase;
    _Atomic int64_t readers[2];

    pthread_mutex_t pending_lock;
    struct pending_delete *pending;
    size_t npending, pending_cap;

    /* Compaction: every closed segment below this offset has been cleaned (in memory; a
     * restart cleans again from the start, which is correct, only slower). Cleaner thread. */
    int64_t cleaned_offset;
    /* Earliest delete horizon (KIP-534) stamped on a tombstone or marker batch the last pass
     * kept. Once it passes, a pass runs even if the log is not dirty enough,
     * so expired tombstones and markers go without waiting for new writes. 0: none. Cleaner
     * thread. */
    int64_t next_horizon_ms;
    _Atomic(struct txn_index *) txns; /* log_set_txn_index; NULL: none */

    log_active_producers_fn producers_hook; /* see log_set_active_producers_hook */
    void *producers_hook_arg;
    log_start_offset_hook start_hook;
    void *start_hook_arg;
    /* Set and cleared by log_flusher_add/remove under the flusher's lock; read without it by
     * appenders and flush requests, hence atomic. */
    _Atomic(struct log_flusher *) flusher;
};

/* Puts the log offline for good and logs why. */
void log_mark_offline(struct log *log, const char *what, int err);

/* Index of the segment with the largest base <= offset (0 if offset precedes all);
 * segments_lock held (read or write). */
size_t log_segment_index_locked(const struct log *log, int64_t offset);

/* Asserts segs is non-empty with strictly increasing base offsets (so no two segments
 * overlap: each holds [its base, the next one's base)); segments_lock held, or the log private
 * to the caller. */
void log_segments_assert_sorted_locked(const struct log *log);

/* Inserts seg at the end (roll) under the write lock. */
int log_segments_push(struct log *log, struct segment *seg);

/* Grace period for truncation (see the top of this file). enter returns the phase to pass to
 * exit. Any thread; a reader must not take append_lock or flush_lock between the two. */
uint32_t log_reader_enter(struct log *log);
void log_reader_exit(struct log *log, uint32_t phase);
/* Returns once every reader that entered before the call has exited. append_lock held (one
 * waiter at a time); must not hold segments_lock. */
void log_wait_for_readers_locked(struct log *log);

/* Loads segments from disk (log_load.c); called by log_open before the log is shared. */
int log_load(struct log *log, const struct log_open_state *state);

/* Epoch cache (log_epoch.c); append_lock held. assign ignores an epoch not above the latest;
 * otherwise it drops entries starting at/after start_offset (Kafka's assign) and appends.
 * truncate_from drops entries whose start offset >= offset (Kafka's truncateFromEnd); clear
 * drops them all. Each persists leader-epoch-checkpoint when it changed something. */
int log_epoch_assign_locked(struct log *log, int32_t epoch, int64_t start_offset);
int log_epoch_load(struct log *log);
int log_epoch_truncate_from_locked(struct log *log, int64_t offset);
int log_epoch_clear_locked(struct log *log);

/* Moves the start offset forward (never back); whether it moved. Calls no hook: the caller
 * runs log_run_start_hook once it holds none of the log's locks. */
bool log_move_start_offset(struct log *log, int64_t offset);
/* Calls the start-offset hook (the log manager's checkpoint write: files, fsync, the manager's
 * locks). Never under append_lock: a log being opened under the manager's lock takes its
 * append_lock, so the opposite order could deadlock, and a checkpoint's fsyncs would stall
 * the partition's appends. */
void log_run_start_hook(struct log *log);
/* Both: moves the start offset forward and, if it moved, calls the hook. No log lock held. */
void log_advance_start_offset(struct log *log, int64_t offset);

/* The segment's .log bytes from `from` on left the log: 0 when the file did (renamed .deleted,
 * or replaced by its compacted copy), the cut position when a truncation shortened it. They
 * leave the page-cache budget of the log's flusher, if it has one (flusher.c). Any thread that
 * holds the log. */
void log_forget_cached_segment(struct log *log, const struct segment *seg, int64_t from);

/* Frees the log's memory and descriptors (log.c); with purge, first unlinks the segments
 * awaiting deletion (by path: never for a retired directory). Writes nothing else. */
void log_free(struct log *log, bool purge);

#endif
