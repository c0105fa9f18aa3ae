/*
 * Idempotent-producer state of one partition (Kafka's ProducerStateManager): for each producer
 * id its epoch and the sequence ranges and offsets of its last PRODUCER_STATE_BATCHES batches,
 * persisted in Kafka's `<base offset 20 digits>.snapshot` files in the partition directory and
 * rebuilt at open from the latest usable snapshot plus the batch headers after it.
 *
 * Threads. A struct producer_state has no lock of its own: its owner (the broker's partition)
 * serialises every call with one mutex, held across check + log_append + update so that the
 * check and the append are atomic. producer_state_load() runs before the state is shared.
 *
 * Kafka 3.9 semantics (ProducerAppendInfo / ProducerStateEntry), which producer_state_check()
 * implements:
 *   - same epoch and the exact sequence range of one of the last five batches: a duplicate
 *     (the caller answers with the original offsets and appends nothing);
 *   - unknown producer (or one whose entry expired): any sequence is accepted, as Kafka does
 *     since KIP-360 (it no longer answers UNKNOWN_PRODUCER_ID);
 *   - epoch older than the entry's: fenced (INVALID_PRODUCER_EPOCH for produce);
 *   - newer epoch: must start at sequence 0, else out of order;
 *   - same epoch: the first sequence must follow the last one (wrapping INT32_MAX -> 0);
 *   - a marker or a coordinator's transactional batch without sequence: only the epoch.
 */
#ifndef GREGOR_STORAGE_PRODUCER_STATE_H
#define GREGOR_STORAGE_PRODUCER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record/control_record.h"
#include "record/record_batch.h"
#include "storage/log.h"
#include "storage/txn_index.h"

#define PRODUCER_STATE_BATCHES 5
#define PRODUCER_SNAPSHOT_VERSION 1
#define PRODUCER_SNAPSHOT_SUFFIX ".snapshot"

/* One appended batch of a producer. */
struct producer_batch {
    int32_t first_seq;
    int32_t last_seq;
    int64_t first_offset;
    int64_t last_offset;
    int64_t timestamp; /* the batch's max timestamp */
};

/* What DescribeProducers reports of one producer. */
struct producer_info {
    int64_t producer_id;
    int16_t epoch;
    int32_t last_seq;
    int64_t last_timestamp;
    int32_t coordinator_epoch;
    int64_t txn_first_offset; /* first offset of its open transaction, -1 when none */
};

enum producer_check {
    PRODUCER_CHECK_APPEND = 0,        /* append it, then producer_state_update() */
    PRODUCER_CHECK_DUPLICATE = 1,     /* already in the log at the returned offsets */
    PRODUCER_CHECK_OUT_OF_ORDER = -1, /* -> OUT_OF_ORDER_SEQUENCE_NUMBER (45) */
    PRODUCER_CHECK_FENCED = -2,       /* older epoch -> INVALID_PRODUCER_EPOCH (47) */
    PRODUCER_CHECK_INVALID = -3,      /* producer id without a sequence -> INVALID_RECORD (87) */
};

struct producer_state;

/* Last sequence of a batch: base + lastOffsetDelta, wrapping past INT32_MAX to 0. */
int32_t producer_last_sequence(int32_t base_seq, int32_t delta);

/* An empty state. expiration_ms: producer.id.expiration.ms. NULL on ENOMEM. */
struct producer_state *producer_state_new(int64_t expiration_ms);
void producer_state_free(struct producer_state *ps);

/* Checks a producer's batch (h->producer_id >= 0) against the state; on
 * PRODUCER_CHECK_DUPLICATE *dup receives the original batch. */
enum producer_check producer_state_check(const struct producer_state *ps,
                                         const struct record_batch_header *h,
                                         struct producer_batch *dup);

/*
 * Records an appended batch: h with producer fields, h->base_offset = its first offset in the
 * log, h->last_offset_delta and h->max_timestamp as appended. now_ms (broker wall clock) keeps
 * the producer alive for expiration. 0 or -ENOMEM.
 */
int producer_state_update(struct producer_state *ps, const struct record_batch_header *h,
                          int64_t now_ms);

/* Drops producers idle for producer.id.expiration.ms. Returns how many were removed. */
size_t producer_state_expire(struct producer_state *ps, int64_t now_ms);

size_t producer_state_count(const struct producer_state *ps);

/* Copies up to max producers into out; returns how many were copied. */
size_t producer_state_list(const struct producer_state *ps, struct producer_info *out, size_t max);

/* Copies up to max producers into out as the cleaner needs them (last data offset: the last
 * offset of the newest batch kept at the current epoch, -1 none); returns how many. */
size_t producer_state_active(const struct producer_state *ps, struct log_active_producer *out,
                             size_t max);

/*
 * Writes the state, complete for every batch below `offset`, as dir/<offset>.snapshot (Kafka's
 * format v1: version int16, CRC-32C uint32 of the rest, int32 count, then per producer: id
 * int64, epoch int16, last sequence int32, last offset int64, offset delta int32, timestamp
 * int64, coordinator epoch int32, current txn first offset int64). Written to a .tmp file and
 * renamed; with sync, fsynced first. Keeps the two newest snapshots and removes older ones.
 * 0 or negative errno.
 */
int producer_state_snapshot(const struct producer_state *ps, const char *dir, int64_t offset,
                            bool sync);

/* Encodes / decodes the snapshot body (tests use them directly). encode returns the size
 * written (buf NULL: the size needed); decode returns 0 or -EINVAL (bad version, CRC, size). */
size_t producer_state_encode(const struct producer_state *ps, uint8_t *buf, size_t cap);
int producer_state_decode(struct producer_state *ps, const uint8_t *buf, size_t len,
                          int64_t now_ms);

/*
 * Builds the state of an opened log: loads the newest valid snapshot at or below the log end
 * (removing snapshots above it and corrupt ones), then replays the headers of the batches from
 * max(snapshot offset, log start) to the log end; aborts met on the way go into ti (may be NULL)
 * unless already there. Expired producers are dropped.
 * *snapshot_offset (may be NULL) receives the offset of the snapshot used, or -1. 0 or a
 * negative error.
 */
int producer_state_load(struct log *log, struct txn_index *ti, int64_t expiration_ms,
                        int64_t now_ms, struct producer_state **out, int64_t *snapshot_offset);

/*
 * Transactions (Kafka's ProducerStateEntry.currentTxnFirstOffset): producer_state_update() of a
 * transactional batch opens the producer's transaction at its first offset (kept in
 * snapshots); a marker (control batch h with marker m, appended at h->base_offset) ends it.
 * Returns 1 when it ended an open transaction with ABORT (*aborted describes it for the
 * transaction index), 0 otherwise, or -ENOMEM. A producer with an open transaction never
 * expires.
 */
int producer_state_apply_marker(struct producer_state *ps, const struct record_batch_header *h,
                                const struct control_marker *m, int64_t now_ms,
                                struct aborted_txn *aborted);

/* Kafka's checkCoordinatorEpoch: true when a marker written by transaction coordinator epoch
 * `coordinator_epoch` for producer pid must be refused (TRANSACTION_COORDINATOR_FENCED): a
 * newer coordinator already wrote one for it, so this one comes from a coordinator that lost
 * its shard (a stale marker must not end the producer's current transaction). */
bool producer_state_marker_fenced(const struct producer_state *ps, int64_t pid,
                                  int32_t coordinator_epoch);

/* The first offset of the oldest open transaction (first unstable offset), -1 when none. */
int64_t producer_state_first_open_offset(const struct producer_state *ps);

/* True when producer pid has an open transaction here at exactly this epoch (KIP-890: its
 * later batches need no verification with the coordinator). */
bool producer_state_in_txn(const struct producer_state *ps, int64_t pid, int16_t epoch);

#endif
