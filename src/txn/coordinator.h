/*
 * The transaction coordinator (Kafka's TransactionCoordinator + TransactionStateManager).
 *
 * Transactional id T lives in shard abs(javaStringHash(T)) % N, N = partition count of
 * __transaction_state; shard s is partition s of that topic and this broker coordinates T
 * while it leads that partition. Every state change is a record of that partition
 * (txn/state_record.h) written before it takes effect: the in-memory table is rebuilt from the
 * partition when a shard loads (on first use after this broker became its leader), and dropped
 * when the leadership moves away (txn_coordinator_resign).
 *
 * State machine (Kafka's): Empty -> Ongoing (AddPartitionsToTxn / AddOffsetsToTxn) ->
 * PrepareCommit | PrepareAbort (EndTxn, timeout, InitProducerId fencing an open transaction)
 * -> markers written to every partition of the transaction (env->write_markers, the same path
 * a WriteTxnMarkers request takes) -> CompleteCommit | CompleteAbort -> Ongoing again with the
 * next AddPartitionsToTxn. While a state record or the markers are in flight the id is busy:
 * other calls on it get CONCURRENT_TRANSACTIONS (clients retry).
 *
 * THREADS. One mutex guards the whole table; calls come from any worker, completions of
 * appends and markers from any thread. The mutex is never held while calling into env.
 * Every public call answers through done(arg, result) exactly once, from any thread.
 */
#ifndef GREGOR_TXN_COORDINATOR_H
#define GREGOR_TXN_COORDINATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/log.h"

struct txn_coordinator;

/* A partition of a transaction. */
struct txn_topic_partition {
    const char *topic;
    int32_t partition;
};

/* What writing the markers of one transaction needs (the env copies what it keeps). */
struct txn_marker_job {
    int32_t shard; /* the transaction's __transaction_state partition */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t coordinator_epoch;
    bool commit;
    size_t nparts;
    const struct txn_topic_partition *parts;
};

struct txn_env {
    void *ctx;
    /* Partition count of __transaction_state; 0 when it does not exist (created then). */
    int32_t (*partition_count)(void *ctx);
    /* Partition count of __consumer_offsets (AddOffsetsToTxn), 0 when none. */
    int32_t (*offsets_partition_count)(void *ctx);
    /* True while this broker leads partition s of __transaction_state; *epoch its leader
     * epoch (the coordinator epoch). */
    bool (*is_leader)(void *ctx, int32_t shard, int32_t *epoch);
    /* True if the cluster has the partition (AddPartitionsToTxn). */
    bool (*partition_exists)(void *ctx, const char *topic, int32_t partition);
    /* Appends batch to partition s of __transaction_state as its leader and calls cb(arg,
     * err) once it is committed and durable; 0 (cb will come, maybe at once) or < 0 (it will
     * not). Takes ownership of nothing. */
    int (*append)(void *ctx, int32_t shard, uint8_t *batch, size_t len,
                  void (*cb)(void *arg, int err), void *arg);
    /* Calls fn(arg, key, key_len, value, value_len) for every record of partition s of
     * __transaction_state, in offset order. 0 or < 0 (not the leader, I/O). */
    int (*replay)(void *ctx, int32_t shard,
                  void (*fn)(void *arg, const uint8_t *key, int32_t key_len, const uint8_t *value,
                             int32_t value_len),
                  void *arg);
    /* A new producer id: cb(arg, kafka error, id), maybe at once. 0, or < 0 (no cb). */
    int (*allocate_pid)(void *ctx, void (*cb)(void *arg, int16_t err, int64_t pid), void *arg);
    /* Writes the markers; cb(arg, kafka error of the first partition that failed or 0) once
     * every partition answered. 0 (cb will come) or < 0 (it will not). */
    int (*write_markers)(void *ctx, const struct txn_marker_job *job,
                         void (*cb)(void *arg, int16_t err), void *arg);
};

struct txn_config {
    int32_t max_timeout_ms; /* transaction.max.timeout.ms (900000) */
    int32_t max_shards;     /* transaction.state.log.num.partitions (table size) */
};

struct txn_result {
    int16_t error;
    int64_t producer_id;
    int16_t producer_epoch;
};

typedef void (*txn_done_fn)(void *arg, const struct txn_result *res);

struct txn_coordinator *txn_coordinator_create(const struct txn_config *cfg,
                                               const struct txn_env *env);
/* Refuses new calls (COORDINATOR_NOT_AVAILABLE), ends the ops in flight at their next step
 * and waits (bounded, 5 s) until none is left. Any thread but one the ops need. */
void txn_coordinator_shutdown(struct txn_coordinator *tc);
void txn_coordinator_destroy(struct txn_coordinator *tc);

/* Shard of a transactional id given the partition count (0 -> -1). */
int32_t txn_shard_of(const char *id, size_t len, int32_t n);

/* Is shard s served here (leader, loaded or loadable)? Loads it if needed. Kafka error. */
int16_t txn_coordinator_prepare(struct txn_coordinator *tc, int32_t shard);

/* InitProducerId with a transactional id. producer_id/epoch: -1 or the client's (KIP-360:
 * its current epoch is bumped; the epoch before the last bump, a retry, gets the current one). */
void txn_init_producer_id(struct txn_coordinator *tc, const char *id, int32_t timeout_ms,
                          int64_t producer_id, int16_t producer_epoch, txn_done_fn done, void *arg);

/* AddPartitionsToTxn / AddOffsetsToTxn (parts = the group's __consumer_offsets partition). */
void txn_add_partitions(struct txn_coordinator *tc, const char *id, int64_t producer_id,
                        int16_t producer_epoch, const struct txn_topic_partition *parts,
                        size_t nparts, txn_done_fn done, void *arg);

/*
 * AddPartitionsToTxn v4+ with verify_only (KIP-890 part 1, Kafka's
 * handleVerifyPartitionsInTransaction): errs[i] = 0 when parts[i] is in id's ongoing
 * transaction of producer_id/epoch, TRANSACTION_ABORTABLE when it is not; one error for every
 * partition when the id does not match (INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED), ends a
 * transaction (CONCURRENT_TRANSACTIONS) or is not served here. Answers at once; any thread.
 */
void txn_verify_partitions(struct txn_coordinator *tc, const char *id, int64_t producer_id,
                           int16_t producer_epoch, const struct txn_topic_partition *parts,
                           size_t nparts, int16_t *errs);

/*
 * EndTxn: answers once the markers are written and the Complete state is durable. With
 * bump_epoch (EndTxn v5, KIP-890 part 2 / TransactionVersion 2) the transaction ends with the
 * producer's epoch bumped: the markers carry epoch + 1, the answer gives it to the producer for
 * its next transaction, and a retry with the old epoch is recognised (Kafka's
 * endTxnEpochBumped) and answered with the new one, also after a reload. At the last usable
 * epoch (INT16_MAX - 1) the markers carry INT16_MAX and the answer a new producer id, epoch 0
 * (a retry with the old id and epoch gets it too).
 */
void txn_end(struct txn_coordinator *tc, const char *id, int64_t producer_id,
             int16_t producer_epoch, bool commit, bool bump_epoch, txn_done_fn done, void *arg);

/* What DescribeTransactions / ListTransactions report of one id. Strings and the partitions
 * live in the coordinator: valid only inside the visitor. */
struct txn_description {
    const char *id;
    int8_t state; /* enum txn_status */
    int32_t timeout_ms;
    int64_t start_ms; /* -1 when no transaction started */
    int64_t producer_id;
    int16_t producer_epoch;
    const struct txn_topic_partition *parts;
    size_t nparts;
};

/* Calls fn(arg, d) for id under the coordinator's lock (fn copies what it keeps and calls
 * nothing back). 0, NOT_COORDINATOR / COORDINATOR_* when its shard is not served here, or
 * TRANSACTIONAL_ID_NOT_FOUND. */
int16_t txn_coordinator_describe(struct txn_coordinator *tc, const char *id,
                                 void (*fn)(void *arg, const struct txn_description *d), void *arg);
/* Calls fn for every id of the shards loaded here, under the lock. */
void txn_coordinator_list(struct txn_coordinator *tc,
                          void (*fn)(void *arg, const struct txn_description *d), void *arg);

/* Aborts open transactions older than their timeout (Kafka's abortTimedOutTransactions).
 * Any thread; returns how many aborts it started. */
int txn_coordinator_expire(struct txn_coordinator *tc, int64_t now_ms);

/* Removes ids (a tombstone in __transaction_state) without an open transaction and unused for
 * expiration_ms (Kafka's transactional.id.expiration.ms). Returns how many it started. */
int txn_coordinator_expire_ids(struct txn_coordinator *tc, int64_t now_ms, int64_t expiration_ms);

/* Leadership of partition s moved away or changed epoch: the shard is dropped (reloaded on
 * next use). Any thread. */
void txn_coordinator_resign(struct txn_coordinator *tc, int32_t shard);

#endif
