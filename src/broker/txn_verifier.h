/*
 * KIP-890 part 1 on the partition leader (Kafka's AddPartitionsToTxnManager): before a
 * transactional producer's first batch of a transaction enters a partition, the leader asks
 * the transaction coordinator whether the partition is in that producer's ongoing
 * transaction. Without it a late or stray batch (a producer that never called
 * AddPartitionsToTxn, or a retry arriving after the transaction ended) would open a
 * transaction no marker ever ends, and the last stable offset would stop there for good.
 *
 * With transactions version 2 (KIP-890 part 2) the client no longer sends AddPartitionsToTxn:
 * the same path adds the partition instead of verifying it.
 *
 * When this broker coordinates the transactional id the answer comes from its own
 * coordinator at once. Otherwise one thread sends AddPartitionsToTxn v4 with verify_only to
 * the coordinator's broker, several waiting checks per request (one transaction entry each,
 * a transactional id at most once per request).
 */
#ifndef GREGOR_BROKER_TXN_VERIFIER_H
#define GREGOR_BROKER_TXN_VERIFIER_H

#include <stdbool.h>
#include <stdint.h>

struct broker;

int txn_verifier_start(struct broker *b);
/* Stops the thread; waiting checks answer COORDINATOR_NOT_AVAILABLE. Before the network stops. */
void txn_verifier_stop(struct broker *b);

/*
 * Is (topic, partition) in the ongoing transaction of txid at producer_id/epoch? cb(arg, err)
 * exactly once, on any thread, maybe at once: 0, or the coordinator's answer
 * (TRANSACTION_ABORTABLE: not in it; PRODUCER_FENCED, INVALID_PRODUCER_ID_MAPPING,
 * CONCURRENT_TRANSACTIONS, COORDINATOR_*, NOT_COORDINATOR), COORDINATOR_NOT_AVAILABLE when it
 * cannot be reached. With add (Produce v12 / TxnOffsetCommit v5: KIP-890 part 2, Kafka's
 * addPartition operation) the partition is added to the transaction instead, starting one
 * when none is open, as AddPartitionsToTxn would (verify_only false); the answer is the same.
 */
void txn_verifier_check(struct broker *b, const char *txid, int64_t producer_id,
                        int16_t producer_epoch, const char *topic, int32_t partition, bool add,
                        void (*cb)(void *arg, int16_t err), void *arg);

#endif
