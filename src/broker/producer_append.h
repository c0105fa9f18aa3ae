/*
 * The idempotent producer on the produce path: per-partition producer state (storage/
 * producer_state.h) checked and updated atomically with the log append, snapshots at segment
 * roll and at close.
 *
 * Locking: struct partition's producer_mu guards p->producers. An idempotent append holds it
 * across check + log_append + update, so two copies of one batch can never both be appended
 * and the state always covers every producer batch below the log end while the mutex is held.
 * Batches without a producer id never take it (one atomic load to notice a segment roll).
 *
 * Transactions: a transactional batch opens its producer's transaction; a marker (control
 * batch, written by the transaction coordinator through the same path) ends it and records an
 * abort in the partition's transaction index (p->txns). p->first_unstable, published after
 * each transactional append, gives the last stable offset without taking producer_mu.
 * Lock order: producer_mu before the log's append lock.
 */
#ifndef GREGOR_BROKER_PRODUCER_APPEND_H
#define GREGOR_BROKER_PRODUCER_APPEND_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/partition.h"
#include "record/byteorder.h"
#include "record/record_batch.h"
#include "storage/log.h"

/* True when the (validated) batch at data carries a producer id. */
static inline bool producer_batch_is_idempotent(const uint8_t *data)
{
    return (int64_t)be64_load(data + RB_OFF_PRODUCER_ID) >= 0;
}

/* Last stable offset (Kafka's LSO): the high watermark, or the first offset of the oldest open
 * transaction when that is lower. What read_committed consumers may read. Any thread. */
static inline int64_t producer_last_stable_offset(struct partition *p)
{
    int64_t hw = log_high_watermark(p->log);
    int64_t first = atomic_load(&p->first_unstable);
    return first >= 0 && first < hw ? first : hw;
}

/* Builds p->producers from the log's snapshots and tail. Before p is published. 0 or < 0. */
int producer_partition_open(struct partition *p, int64_t expiration_ms);

/* Writes a synced snapshot at the log end (unless the partition is deleted) and frees the
 * state. Last reference only, before the log is closed. */
void producer_partition_close(struct partition *p);

/*
 * KIP-890 part 1, for a client's Produce (Kafka's verification guard): a transactional batch
 * whose producer has no open transaction in this partition is appended only once the
 * coordinator confirmed the partition is in the producer's transaction, and only if no marker
 * reached the partition since the verification started (a marker in between may have ended
 * that transaction: appending would open a transaction nobody will ever end).
 */
struct producer_txn_check {
    bool verified;   /* in: the coordinator confirmed it, asked at marker count `ticket` */
    uint64_t ticket; /* in with verified; out with needed: the marker count to ask at */
    bool needed;     /* out: nothing was appended, verify (again) first */
    int attempts;    /* the caller's count of verifications made */
};

/*
 * Appends one producer batch (validated, producer id >= 0) like log_append, after checking it
 * against the producer state. Returns 0 or a log error (as log_append). With *kafka_err != 0
 * nothing was appended (sequence or epoch error). With *duplicate the batch was already in the
 * log: info->first_offset/last_offset are the original's and nothing was appended. chk: NULL
 * (no transaction check) or see struct producer_txn_check. Any thread.
 */
int producer_append(struct partition *p, uint8_t *batch, size_t len, int32_t leader_epoch,
                    int64_t now_ms, bool log_append_time, struct log_append_info *info,
                    int16_t *kafka_err, bool *duplicate, struct producer_txn_check *chk);

/*
 * A follower's append (the replica fetcher): log_append_replica of the leader's batches,
 * unchanged, and the producer state updated from every producer batch among them, so that
 * this replica de-duplicates retries if it becomes leader. 0 or a log error.
 */
int producer_append_replica(struct partition *p, const uint8_t *batches, size_t len,
                            struct log_append_info *info);

/*
 * Truncates the log (log_truncate_to, or with `fully` log_truncate_fully_and_start_at) and
 * rebuilds the producer state from the snapshots and batches that remain. 0 or a log error.
 */
int producer_partition_truncate(struct partition *p, int64_t offset, bool fully,
                                int64_t expiration_ms);

/* After a log_append of a batch without producer id: snapshots when the segment rolled. */
void producer_note_append(struct partition *p, const struct log_append_info *info);

#endif
