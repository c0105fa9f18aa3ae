/*
 * Aborted transactions of one partition (Kafka's TransactionIndex): for every transaction that
 * ended with an ABORT marker, the producer id, the offset of its first batch, the offset of the
 * marker and the last stable offset after it. Kept in memory for read_committed fetches and
 * persisted, per segment, in Kafka's `<segment base 20 digits>.txnindex` files: entries of 34
 * bytes, version int16 (0), producer id int64, first offset int64, last offset int64, last
 * stable offset int64, big-endian, appended in marker order.
 *
 * Invariants: entries are sorted by last_offset (markers are appended in offset order) and no
 * two share one; each entry's file is the one of segment_base, the segment of its marker.
 *
 * Threads: one mutex guards the entries and the files; any thread.
 */
#ifndef GREGOR_STORAGE_TXN_INDEX_H
#define GREGOR_STORAGE_TXN_INDEX_H

#include <stddef.h>
#include <stdint.h>

#define TXN_INDEX_SUFFIX ".txnindex"
#define TXN_INDEX_ENTRY_SIZE 34

struct aborted_txn {
    int64_t producer_id;
    int64_t first_offset;
    int64_t last_offset; /* the ABORT marker */
    int64_t last_stable_offset;
};

struct txn_index;

/* Loads every *.txnindex file of the partition directory `dir`. 0 or a negative errno. */
int txn_index_open(const char *dir, struct txn_index **out);
void txn_index_close(struct txn_index *ti);

/* Records an aborted transaction whose marker is in the segment at segment_base (written to
 * that segment's file). An entry at or below the newest last offset is already there (a replay
 * after a restart) and is skipped. 0 or a negative errno (the entry stays in memory). */
int txn_index_append(struct txn_index *ti, int64_t segment_base, const struct aborted_txn *a);

/* Drops entries whose marker is at or above `offset` (log truncation), rewriting their files. */
int txn_index_truncate(struct txn_index *ti, int64_t offset);

/*
 * The cleaner rewrote the segment at segment_base: of the entries recorded for it, keeps only
 * those whose marker offset (last_offset) is one of keep[0..nkeep) and rewrites that segment's
 * file when any went (Kafka's cleaned segment gets a fresh index with the retained entries).
 * Returns how many went, or a negative errno (memory is updated either way).
 */
int txn_index_retain_segment(struct txn_index *ti, int64_t segment_base, const int64_t *keep,
                             size_t nkeep);

/*
 * Kafka's collectAbortedTxns: copies into out (up to max) the aborted transactions that may
 * touch [fetch_offset, upper): last offset >= fetch_offset and first offset < upper. Returns
 * how many matched (may exceed max: call again with more room).
 */
size_t txn_index_collect(struct txn_index *ti, int64_t fetch_offset, int64_t upper,
                         struct aborted_txn *out, size_t max);

/* Count of entries in memory (tests, metrics). */
size_t txn_index_count(struct txn_index *ti);

/* Encodes / decodes one 34-byte entry (tests use them). decode returns 0 or -EINVAL. */
void txn_index_entry_encode(const struct aborted_txn *a, uint8_t *buf);
int txn_index_entry_decode(const uint8_t *buf, struct aborted_txn *a);

#endif
