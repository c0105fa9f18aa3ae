/*
 * The one way records enter a partition's log (DESIGN.md "One append path"): a client's
 * Produce and the group coordinator's records today, a replica fetcher's batches and
 * transaction markers later. It checks producer state for idempotent batches (atomically with
 * the append), stamps the partition's current leader epoch, appends, advances the high
 * watermark (the partition is its only owner) and wakes parked fetches. Durability (acks=all,
 * the coordinator's commits) is the caller's log_flush_request on the returned offsets.
 *
 * High watermark: owned by the partition's replica set (broker/replica_set.h): with a single
 * in-sync replica it is the log end after every append; with followers the minimum log end
 * over the maximal ISR.
 *
 * Any thread; the log's own lock orders concurrent appends.
 */
#ifndef GREGOR_BROKER_PARTITION_APPEND_H
#define GREGOR_BROKER_PARTITION_APPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker/partition.h"
#include "storage/log.h"

struct producer_txn_check;

struct partition_append_result {
    struct log_append_info info; /* offsets (the original ones for a duplicate) */
    bool duplicate;              /* an idempotent retry: nothing was appended */
    /* Refusal, nothing appended: producer state (sequence, epoch), or NOT_LEADER_OR_FOLLOWER
     * when this broker does not lead the partition (checked under follow_mu). */
    int16_t kafka_error;
};

/*
 * Appends the validated batch bytes (offsets and, with log_append_time, timestamps are written
 * in place). chk: a client's Produce asks for the KIP-890 transaction check
 * (broker/producer_append.h), NULL otherwise. Returns 0 (see *res for a refusal or a
 * duplicate; chk->needed: nothing appended) or a negative storage error.
 */
int partition_append_batch(struct partition *p, uint8_t *batch, size_t len, bool log_append_time,
                           int64_t now_ms, struct producer_txn_check *chk,
                           struct partition_append_result *res);

#endif
