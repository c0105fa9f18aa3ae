/*
 * TxnOffsetCommit (key 28) on the group coordinator's broker: a transaction's offsets are held
 * here, per producer id, and become committed offsets of the group only when the transaction
 * commits (the COMMIT marker for the group's __consumer_offsets partition, write_txn_markers.c);
 * an ABORT drops them. Kafka writes them to __consumer_offsets as transactional records at once;
 * here they stay in memory until the commit (a broker crash before the marker loses them,
 * which the transaction's abort would have done anyway, or after a PrepareCommit: see README).
 */
#ifndef GREGOR_BROKER_TXN_OFFSET_COMMIT_H
#define GREGOR_BROKER_TXN_OFFSET_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

struct broker;

int txn_offsets_start(struct broker *b);
void txn_offsets_stop(struct broker *b);

/* The marker for producer pid reached partition `shard` of __consumer_offsets: commit (store
 * in their groups) or drop its pending offsets of groups in that shard. cb(arg, kafka error)
 * once stored, on any thread, maybe at once. */
void txn_offsets_complete(struct broker *b, int64_t pid, int32_t shard, bool commit,
                          void (*cb)(void *arg, int16_t err), void *arg);

#endif
