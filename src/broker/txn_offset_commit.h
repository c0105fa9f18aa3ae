/*
 * TxnOffsetCommit (key 28) on the group coordinator's broker, as Kafka: a v3+ request naming a
 * generation, member or static instance is first checked against the group (KIP-447,
 * group/txn_commit_check.c); then the transaction's offsets
 * are written at once to the group's __consumer_offsets partition as a transactional batch (the
 * producer's id and epoch), answered once durable, and held here per producer id; they become
 * the group's committed offsets when the COMMIT marker reaches that partition
 * (write_txn_markers.c), and an ABORT drops them. The group loader replays them the same way
 * (group/shard_load.c) and hands back those whose marker has not come yet
 * (txn_offsets_restore).
 */
#ifndef GREGOR_BROKER_TXN_OFFSET_COMMIT_H
#define GREGOR_BROKER_TXN_OFFSET_COMMIT_H

#include <stdbool.h>
#include <stdint.h>

struct broker;

#include "proto/codec.h"

int txn_offsets_start(struct broker *b);

/* A pending offset found in __consumer_offsets by the group loader (an open transaction's
 * TxnOffsetCommit record). Any thread. */
void txn_offsets_restore(struct broker *b, int32_t shard, int64_t pid, struct kstr group,
                         struct kstr topic, int32_t partition, int64_t offset, int32_t leader_epoch,
                         struct kstr metadata);
void txn_offsets_stop(struct broker *b);

/* The group loader is about to replay partition `shard` of __consumer_offsets: drops the
 * pending offsets held for it (the replay restores those still open). Any thread. */
void txn_offsets_forget_shard(struct broker *b, int32_t shard);

/* True while an open transaction holds an offset of (group, topic, partition). Any thread. */
bool txn_offsets_pending(struct broker *b, struct kstr group, struct kstr topic, int32_t partition);

/* The marker for producer pid reached partition `shard` of __consumer_offsets: commit (store
 * in their groups) or drop its pending offsets of groups in that shard. cb(arg, kafka error)
 * once stored, on any thread, maybe at once. */
void txn_offsets_complete(struct broker *b, int64_t pid, int32_t shard, bool commit,
                          void (*cb)(void *arg, int16_t err), void *arg);

#endif
