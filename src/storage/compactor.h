/*
 * Log compaction for topics with cleanup.policy=compact (Kafka's LogCleaner, simplified):
 * keeps, among the closed segments below the last stable offset (log_last_stable_offset), only
 * the newest record of every key, drops keyless records and aborted transactions' data, and
 * never touches the active segment nor any segment holding offsets at or above the last stable
 * offset (an open transaction's records and everything after its first one stay as written
 * until it is decided, as in Kafka's LogCleaner).
 *
 * Tombstones and transaction markers go in two passes (KIP-534): a tombstone that is its key's
 * newest record, and a marker whose transaction has no data left in the log (cleaned_txns.h),
 * get a delete horizon (now + delete.retention.ms) stamped on their batch by the first pass
 * that keeps them; a pass after that horizon removes them. The .txnindex entry of an aborted
 * transaction goes in the pass that finds none of its data left (before its marker can go).
 * A pass also runs, dirty or not, once the earliest horizon stamped has passed.
 *
 * Producers (Kafka's RETAIN_EMPTY): the batch holding the last data offset of a producer still
 * active in the partition's producer state (log_set_active_producers_hook; for a producer with
 * no data batch at its epoch, a marker of that epoch) stays even when none of its records does,
 * as an empty batch (record_batch_write_empty: header, record count 0), so a producer state
 * rebuilt from the log without .snapshot files still knows its epoch and last sequence. Once
 * the producer is no longer in the state, a pass removes the empty batch like any other.
 *
 * A pass runs when the closed segments not yet cleaned hold at least min.cleanable.dirty.ratio
 * of the closed bytes. Offsets never change: surviving records keep their offsets, batches
 * keep their base offset, producer id, epoch, base sequence and attributes; a batch whose
 * records all survive is copied byte for byte, others are re-encoded (same codec).
 *
 * Crash safety: each segment is rewritten to <base>.log.cleaned (fsync'ed), its index files
 * are removed, and the cleaned file is renamed over <base>.log (atomic). A crash leaves the old
 * segment or the new one, never a mix; a missing index is rebuilt on open; a leftover
 * .cleaned file is deleted on open.
 *
 * Runs on the cleaner thread (log_compact_fn). Readers keep reading the old file through the
 * segment they pinned; new readers see the new segment.
 */
#ifndef GREGOR_STORAGE_COMPACTOR_H
#define GREGOR_STORAGE_COMPACTOR_H

#include <stdbool.h>
#include <stdint.h>

struct log;

struct log_compact_stats {
    int segments_cleaned;
    int64_t bytes_before;
    int64_t bytes_after;
    int64_t records_removed;     /* data records and transaction markers */
    int64_t txn_entries_removed; /* .txnindex entries of aborted data no longer in the log */
};

/* One compaction pass over log (if dirty enough, or always when force). 0 or negative error. */
int log_compact(struct log *log, int64_t now_ms, bool force, struct log_compact_stats *stats);

/* log_compact_fn for the cleaner: log_compact(log, now_ms, false, NULL). */
int log_compact_hook(struct log *log, int64_t now_ms, void *arg);

#endif
