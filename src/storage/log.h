/*
 * A partition's log: the directory <log dir>/<topic>-<partition>/ holding segments named by
 * base offset (segment.h), Kafka's layout byte for byte.
 *
 * CONCURRENCY CONTRACT
 *  - Appends: one appender at a time per log. log_append() takes the log's own append lock only
 *    to assign offsets, write the bytes (one pwrite) and update the indexes; it may be called
 *    from any thread, and concurrent callers serialise on that lock. log_append_replica() and
 *    the truncations serialise on the same lock.
 *  - Reads never take the append lock. They load the published end offset / high watermark
 *    (C11 atomics, release/acquire) and then read file bytes below them. The segment list is
 *    guarded by a separate reader-writer lock held only for the binary search and reference
 *    grab (microseconds), and written only on roll and segment deletion.
 *  - A read hands out a referenced, pinned segment (fd) in struct log_read_result. The fd stays
 *    valid, even if retention deletes the segment, until log_read_release() is called, so the
 *    network layer may sendfile from it after log_read() returned, on any thread.
 *  - log_close() requires that no other thread uses the log any more (remove it from the
 *    flusher and cleaner first); outstanding log_read_results may still be released after it.
 *
 * Errors: negative errno for I/O (-ENOSPC on a full filesystem: nothing of the append is
 * visible and the log stays usable; reads keep working), or the named LOG_ERR_* codes below.
 * A failed disk write that cannot be undone puts the log offline: every later append and read
 * returns LOG_ERR_OFFLINE, and the reason is logged (produce/fetch map it to
 * KAFKA_STORAGE_ERROR).
 */
#ifndef GREGOR_STORAGE_LOG_H
#define GREGOR_STORAGE_LOG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Storage's own errors, next to negative errno values (the broker maps both to Kafka codes). */
enum log_error {
    LOG_ERR_OFFSET_OUT_OF_RANGE = -2001, /* offset below the log start or past the log end */
    LOG_ERR_OFFLINE = -2002,             /* the log went offline after a failed write */
    LOG_ERR_CORRUPT = -2003,             /* bytes in the buffer or on disk are not batches */
};

/* Topic-level settings; Kafka's names and defaults. -1 = unlimited where Kafka allows it. */
struct log_config {
    int64_t segment_bytes;            /* segment.bytes, 1 GiB */
    int64_t segment_ms;               /* segment.ms, 7 days */
    int32_t index_interval_bytes;     /* index.interval.bytes, 4096 */
    int32_t segment_index_bytes;      /* segment.index.bytes, 10 MiB */
    int64_t retention_ms;             /* retention.ms, 7 days; -1 = forever */
    int64_t retention_bytes;          /* retention.bytes, -1 = unlimited */
    int64_t flush_interval_messages;  /* flush.messages, INT64_MAX */
    int64_t flush_interval_ms;        /* flush.ms, INT64_MAX */
    int64_t file_delete_delay_ms;     /* file.delete.delay.ms, 60 s */
    int32_t max_message_bytes;        /* max.message.bytes, 1048588 */
    bool compact;                     /* cleanup.policy contains "compact" */
    bool delete_retention;            /* cleanup.policy contains "delete" (default) */
    int64_t segment_idle_close_ms;    /* Gregor: close fds of segments unused this long, 60 s */
    int64_t delete_retention_ms;      /* delete.retention.ms: tombstones kept this long, 1 day */
    double min_cleanable_dirty_ratio; /* min.cleanable.dirty.ratio, 0.5 */
    int64_t min_compaction_lag_ms;    /* min.compaction.lag.ms, 0 */
};

struct log_config log_config_defaults(void);

/* What the caller knows from the log dir's checkpoint files; NULL = nothing (recover every
 * segment from the start, log start = first segment's base). */
struct log_open_state {
    int64_t recovery_point;   /* recovery-point-offset-checkpoint, or 0 */
    int64_t log_start_offset; /* log-start-offset-checkpoint, or -1 */
    int64_t high_watermark;   /* replication-offset-checkpoint, or 0 */
    bool clean_shutdown;      /* .kafka_cleanshutdown was present */
};

struct log;
struct txn_index;

/*
 * Opens (creating it if needed) the partition directory dir/topic-partition and loads its
 * segments: removes leftovers (*.deleted, *.cleaned, *.swap, *.tmp), recovers segments from the
 * recovery point on unless the shutdown was clean, rebuilds bad indexes, truncates torn tails.
 * Closed segments stay unopened until used. The config is copied. Any thread; the log is
 * private to the caller until it publishes it. 0 or negative error.
 */
int log_open(const char *dir, const char *topic, int32_t partition, const struct log_config *cfg,
             const struct log_open_state *state, struct log **out);

/* Seals the active segment (trims its indexes), fsyncs, closes. See the contract above. */
void log_close(struct log *log);

/*
 * Retiring a log whose partition leaves this broker (its topic was deleted, or the broker is no
 * longer one of its replicas), Kafka's way: log_retire_dir() renames the partition directory
 * to "<topic>-<N>.<32 hex digits>-delete" at once, so that a partition of the same name
 * created later starts from an empty directory, and returns the new path (malloc'ed; NULL when
 * the rename failed: then the old path is the one to remove). The caller must have stopped
 * every writer first (appends, truncation, flusher, cleaner). Readers holding segment file
 * descriptors keep reading. log_discard() frees the log without writing anything (the
 * directory goes away); log_remove_tree() removes a directory and everything in it.
 * "-delete" directories left by a crash are removed when the log manager opens the log dir.
 */
char *log_retire_dir(struct log *log);
/* A closed log's directory DIR that this node should not hold (Kafka's stray replica): renamed
 * "<topic>-<N>.<32 hex digits>-stray", which the log manager never loads or removes; kept for
 * the operator, as Kafka keeps it. The new path (malloc'ed), or NULL when the rename failed. */
char *log_dir_mark_stray(const char *dir);
void log_discard(struct log *log);
int log_remove_tree(const char *path);

/* Replaces the topic config (AlterConfigs). Any thread. */
void log_set_config(struct log *log, const struct log_config *cfg);
struct log_config log_get_config(struct log *log);

struct log_append_info {
    int64_t first_offset;
    int64_t last_offset;
    int64_t log_append_time;  /* now_ms when log_append_time was requested, else -1 */
    int64_t log_start_offset; /* for the produce response */
    int64_t segment_base;     /* where the bytes went: segment and file position */
    int64_t position;
    int32_t record_count;
};

/*
 * Appends batches[0..len): one or more magic-2 batches already validated by the produce path
 * (record_batches_validate). In place, it sets each batch's base offset (consecutive from the
 * log end) and partitionLeaderEpoch (when leader_epoch >= 0), and with log_append_time switches
 * them to LogAppendTime = now_ms (recomputing CRCs); then rolls the segment if needed and writes
 * everything with one pwrite. The buffer stays owned by the caller. 0 or negative error;
 * on error nothing is visible to readers. Any thread (serialised by the append lock).
 */
int log_append(struct log *log, uint8_t *batches, size_t len, int32_t leader_epoch, int64_t now_ms,
               bool log_append_time, struct log_append_info *out);

/*
 * Follower append (Kafka's UnifiedLog.appendAsFollower): batches[0..len) are one or more
 * magic-2 batches exactly as the leader stored them, written unchanged (base offsets, leader
 * epochs, timestamps, CRCs). Checks whole batches, magic, lengths and CRC-32C
 * (LOG_ERR_CORRUPT), offsets strictly increasing across batches (LOG_ERR_CORRUPT; gaps left
 * by a compacted leader are fine), and the first base offset >= the log end
 * (LOG_ERR_OFFSET_OUT_OF_RANGE); nothing is written then. Rolls segments as log_append does
 * (segment.bytes, segment.ms by the batches' timestamps, index space, and 32-bit relative
 * offsets: a gap too wide for the active segment starts a new one at the batch's base).
 * Each batch whose partitionLeaderEpoch is above the latest cached epoch starts that epoch at
 * its base offset (leader-epoch-checkpoint). Afterwards the log end = last offset + 1; the
 * high watermark is not touched (log_set_high_watermark). *out as for log_append, with
 * log_append_time -1. The buffer stays owned by the caller. 0 or negative error; on error
 * nothing is visible to readers, with one exception: when the offsets span more than 2^31
 * (parts written into different segments), the parts before the failing one stay appended.
 * Any thread (serialised by the append lock); meant for the partition's replica fetcher.
 */
int log_append_replica(struct log *log, const uint8_t *batches, size_t len,
                       struct log_append_info *out);

/*
 * Follower truncation after divergence (Kafka's UnifiedLog.truncateTo): removes every batch
 * whose last offset >= offset (a batch containing `offset` goes whole). The new log end is
 * min(offset, base offset of the first removed batch); offset >= log end is a no-op. Segments
 * wholly past the cut are deleted; the one holding the cut is cut at the batch boundary
 * (indexes keep their entries below the new end) and becomes the active segment. When nothing
 * is left below the first segment's base, the log restarts empty at the new end. The epoch
 * cache drops entries starting at/after the new end; high watermark, recovery point and (if
 * above) the log start come down to the new end (the start-offset hook is called when the
 * start moved). Durable on return (directory, .log and epoch checkpoint fsynced).
 * Concurrent reads stay safe: the new end is published first, and bytes are cut only once the
 * reads that began before have returned; a read result still pinned over the removed bytes
 * (sendfile) then comes up short, which the sender reports as an I/O error. Waits for a
 * running compaction pass. Errors: -EINVAL for a negative offset; LOG_ERR_OFFLINE, also when
 * an I/O error after the new end was published put the log offline; negative errno or
 * LOG_ERR_CORRUPT before that (nothing changed). Any thread, but must not race with
 * log_delete_records on the same log (the replica fetcher does both).
 */
int log_truncate_to(struct log *log, int64_t offset);

/*
 * Kafka's truncateFullyAndStartAt (a follower whose fetch offset fell below the leader's log
 * start): deletes every segment and restarts the log empty with start = end = high watermark
 * = recovery point = offset, which may lie above or below the old end. Clears the epoch cache;
 * calls the start-offset hook when the start changed. Concurrency, durability and errors as
 * log_truncate_to.
 */
int log_truncate_fully_and_start_at(struct log *log, int64_t offset);

/* A byte range of a segment file that holds whole batches. */
struct log_file_range {
    int fd;
    int64_t position;
    int64_t length;
};

struct log_read_result {
    struct log_file_range range; /* length 0 = no data */
    int64_t first_offset;        /* base offset of the first batch returned */
    int64_t next_offset;         /* offset after the last batch returned */
    int64_t high_watermark;      /* as loaded for this read */
    int64_t log_start_offset;
    int64_t log_end_offset;
    struct segment *segment; /* pinned until log_read_release(); NULL when no data */
};

/*
 * Reads whole batches starting with the one containing `offset`, up to max_bytes, never
 * including a batch with any offset >= max_offset (pass the high watermark for consumers, or
 * INT64_MAX for followers; it is clamped to the log end). With min_one_batch the first batch is
 * returned even if larger than max_bytes (KIP-74). Data comes from one segment. Errors:
 * LOG_ERR_OFFSET_OUT_OF_RANGE when offset < log start or > log end; LOG_ERR_OFFLINE.
 * offset == log end gives an empty result. Any thread; never takes the append lock. Release
 * the result with log_read_release() (also after errors and empty results).
 */
int log_read(struct log *log, int64_t offset, int32_t max_bytes, int64_t max_offset,
             bool min_one_batch, struct log_read_result *out);
void log_read_release(struct log_read_result *res);

/* Published offsets (atomic loads, any thread). */
int64_t log_start_offset(const struct log *log);
int64_t log_end_offset(const struct log *log);
int64_t log_high_watermark(const struct log *log);
int64_t log_recovery_point(const struct log *log);
bool log_is_offline(const struct log *log);
/* Sets the high watermark (clamped to [log start, log end]); any thread. */
void log_set_high_watermark(struct log *log, int64_t hw);
/*
 * The first offset of the oldest open transaction, -1 when none is open, as the partition's
 * producer state knows it (Kafka's firstUnstableOffset). The log does not read it except to
 * bound compaction: the cleaner never cleans at or above the last stable offset
 * (log_last_stable_offset). Any thread.
 */
void log_set_first_unstable_offset(struct log *log, int64_t offset);
int64_t log_first_unstable_offset(const struct log *log);
/* min(high watermark, first unstable offset when one is set). Any thread. */
int64_t log_last_stable_offset(const struct log *log);
/*
 * The partition's aborted-transaction index (owned by the caller, which keeps it alive until
 * the log is out of the cleaner, then sets NULL). Compaction reads it and drops the entries
 * of transactions whose data it removed, in memory and in the .txnindex files, so fetches
 * never list an aborted transaction whose marker may go. Unset: compaction uses the files.
 */
void log_set_txn_index(struct log *log, struct txn_index *ti);

/*
 * ListOffsets by timestamp: the first offset whose record timestamp >= ts, with that record's
 * timestamp. -ENOENT when every record is older (Kafka answers offset -1). Any thread.
 */
int log_offset_for_timestamp(struct log *log, int64_t ts, int64_t *offset, int64_t *ts_found);

/* ListOffsets -3 (MAX_TIMESTAMP): offset and timestamp of the record with the largest
 * timestamp. -ENOENT on an empty log. Any thread. */
int log_max_timestamp(struct log *log, int64_t *offset, int64_t *ts);

/*
 * DeleteRecords: moves the log start offset to `offset` (<= high watermark, else
 * LOG_ERR_OFFSET_OUT_OF_RANGE), persists it through the log's checkpoint hook, and deletes
 * whole segments below it (renamed *.deleted, removed after file.delete.delay.ms by the
 * cleaner). Returns 0; the new start is log_start_offset(). Any thread.
 */
int log_delete_records(struct log *log, int64_t offset, int64_t now_ms);

/* Leader epoch cache (leader-epoch-checkpoint): end offset for an epoch (OffsetForLeaderEpoch),
 * as Kafka's LeaderEpochFileCache.endOffsetFor: for the latest epoch the log end; otherwise the
 * start offset of the first epoch > `epoch`, with *end_epoch the largest known epoch <= epoch
 * (or `epoch` itself when it predates every known epoch). -ENOENT (Kafka's undefined epoch and
 * offset) for a negative epoch, an empty history, or an epoch above every known one. */
int log_end_offset_for_epoch(struct log *log, int32_t epoch, int64_t *end_offset,
                             int32_t *end_epoch);
int32_t log_latest_epoch(struct log *log);

/* Flushes (fdatasync) every segment holding offsets below the current end, records the new
 * recovery point and returns it via *flushed (may be NULL). A failure puts the log offline.
 * Called by the flusher thread; safe from any thread. */
int log_flush(struct log *log, int64_t *flushed);

/*
 * Writeback ahead: every LOG_WRITEBACK_BYTES appended, the flusher starts the kernel's
 * writeback of the active segment (sync_file_range, no wait), so dirty pages never pile up
 * and a later fdatasync - of this log or, through the journal, of another - finds little
 * left to write. Called by the flusher thread; safe from any thread.
 */
#define LOG_WRITEBACK_BYTES (4 << 20)
int log_start_writeback(struct log *log);

/*
 * The .log byte ranges appended since the last call that took any, one per segment: the end
 * of the segment the last call stopped in, every segment rolled since then whole, and the
 * active segment; fn(arg, path, from, to) for each, in offset order, for the page-cache budget.
 * Nothing until LOG_WRITEBACK_BYTES / 2 were appended or the segment rolled, so each call is
 * about a writeback round. Segments deleted meanwhile are skipped. Returns how many ranges.
 * fn runs under the log's segments lock: it must take none of the log's locks. Called by the
 * flusher thread that holds the log (never two threads for one log at once), after a writeback
 * or a flush.
 */
typedef void (*log_written_fn)(void *arg, const char *path, int64_t from, int64_t to);
int log_take_written(struct log *log, log_written_fn fn, void *arg);

/* Accessors. */
const char *log_topic(const struct log *log);
int32_t log_partition(const struct log *log);
const char *log_dir_path(const struct log *log); /* the partition directory */
size_t log_segment_count(struct log *log);
int64_t log_size_bytes(struct log *log);

/* Retention (called by the cleaner thread; any thread is safe). Deletes closed segments
 * breaching retention.ms (by each segment's largest timestamp), retention.bytes, or wholly
 * below the log start offset; never the active segment. Files are renamed *.deleted and
 * queued; returns the number of segments deleted or a negative error. */
int log_apply_retention(struct log *log, int64_t now_ms);
/* Unlinks queued *.deleted files older than file.delete.delay.ms. force = all of them. */
void log_purge_deleted(struct log *log, int64_t now_ms, bool force);
/* Closes fds/maps of segments idle longer than segment_idle_close_ms. Returns count closed. */
int log_close_idle_segments(struct log *log, int64_t now_mono_ms);

/* Hook called (on the thread that moved it) after the log start offset advanced, so the owner
 * can write log-start-offset-checkpoint. Set before the log is shared. */
typedef void (*log_start_offset_hook)(struct log *log, void *arg);
void log_set_start_offset_hook(struct log *log, log_start_offset_hook hook, void *arg);

/*
 * A producer still active in the partition's producer state, as the cleaner needs it (Kafka's
 * UnifiedLog.lastRecordsOfActiveProducers): the last offset of its newest data batch (-1 when
 * it has none at its current epoch) and its epoch.
 */
struct log_active_producer {
    int64_t producer_id;
    int64_t last_data_offset;
    int16_t epoch;
};

/* Fills *out (malloc'ed, the caller frees; NULL when *n is 0) with the active producers.
 * 0 or -ENOMEM. Called on the cleaner thread. */
typedef int (*log_active_producers_fn)(void *arg, struct log_active_producer **out, size_t *n);
/* Set by the log's owner before the log is given to the cleaner and cleared after it left the
 * cleaner. Without one the cleaner keeps no batch for producers. */
void log_set_active_producers_hook(struct log *log, log_active_producers_fn fn, void *arg);

/* Opaque slots the flusher/cleaner use to find their per-log state (owned by them). */
struct log_flusher;
struct log_flusher *log_get_flusher(struct log *log);

#endif
