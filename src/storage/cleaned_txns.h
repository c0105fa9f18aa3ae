/*
 * Transaction state carried by one compaction pass over a log, in offset order (Kafka's
 * CleanedTransactionMetadata). It tells the cleaner which data batches belong to aborted
 * transactions (discarded), and when a transaction marker no longer guards anything:
 *   - an ABORT marker guards its transaction's data: while some batch of that transaction was
 *     seen in this pass the marker stays, and so does its .txnindex entry; once none is seen
 *     the entry goes and the marker may go after the delete horizon;
 *   - a COMMIT marker may go once no batch of its transaction is seen before it.
 * The aborted transactions come from the partition's .txnindex (first offset .. marker).
 *
 * Invariant: batches are fed in increasing offset order, from the start of the cleaned range.
 * Threads: one pass, one thread.
 */
#ifndef GREGOR_STORAGE_CLEANED_TXNS_H
#define GREGOR_STORAGE_CLEANED_TXNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/record_batch.h"
#include "storage/txn_index.h"

struct cleaned_txn_slot; /* per producer id, see cleaned_txns.c */

struct cleaned_txns {
    struct aborted_txn *aborted; /* sorted by first offset; [next, n) not yet reached */
    size_t naborted, next;
    struct cleaned_txn_slot *slots; /* open addressing by producer id */
    size_t cap, used;
};

/* Copies the n aborted transactions. 0 or -ENOMEM. */
int cleaned_txns_init(struct cleaned_txns *t, const struct aborted_txn *aborted, size_t n);
void cleaned_txns_free(struct cleaned_txns *t);

/* A data batch was read. Returns true when it belongs to an aborted transaction (discard it). */
bool cleaned_txns_on_batch(struct cleaned_txns *t, const struct record_batch_header *h);

/*
 * A control batch was read whose first record has control type `type` (CONTROL_TYPE_*, or -1
 * for a batch with no record left). Returns true when the marker guards nothing any more (it
 * may go once its delete horizon passed). For an ABORT marker that still guards data,
 * *keep_entry receives the transaction's index entry (the cleaned .txnindex keeps it) and the
 * function returns false; otherwise keep_entry->last_offset is set to -1.
 */
bool cleaned_txns_on_marker(struct cleaned_txns *t, const struct record_batch_header *h, int type,
                            struct aborted_txn *keep_entry);

#endif
