/*
 * What the transaction coordinator's files share (coordinator.c: the API; txn_table.c: ids and
 * partition lists; txn_op.c: state changes written to __transaction_state; coordinator_load.c:
 * replay and leadership). Only src/txn/ includes this file.
 *
 * Invariants: a txn_meta is in the table iff !orphan; busy is set iff exactly one txn_op owns
 * the id; the partitions of an id are distinct. tc->mu guards the table, the shards and every
 * txn_meta; it is never held while calling into env.
 */
#ifndef GREGOR_TXN_TXN_INTERNAL_H
#define GREGOR_TXN_TXN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "txn/coordinator.h"

#define TXN_BUCKETS 256

struct txn_meta {
    struct txn_meta *next; /* bucket chain */
    char *id;
    int32_t shard;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    int8_t state;
    struct txn_topic_partition *parts; /* topic strings owned */
    size_t nparts;
    int64_t start_ms, update_ms;
    bool busy;
    bool orphan; /* removed from the table while busy: its op frees it */
    /* KIP-890 part 2, kept as Kafka keeps them and written in TransactionLogValue v1's tagged
     * fields, so they survive a reload. client_tv: the transaction version of the request that
     * made the current state (2: an EndTxn v5, which bumped the epoch, so in Prepare* or Complete*
     * producer_epoch - 1 may retry it; 0 otherwise, also for the coordinator's own aborts).
     * next_producer_id: the id a TV2 producer whose epoch ran out moves to once the markers of
     * its transaction (old id, last epoch) are written, -1 otherwise. prev_producer_id: the id
     * before that move, so the EndTxn may be retried with it (-1: none). */
    int16_t client_tv;
    int64_t prev_producer_id, next_producer_id;
    /* Kafka's lastProducerEpoch, in memory only as in Kafka (-1 after a load): the epoch a
     * producer had before the last InitProducerId that named it (KIP-360), or before a TV2
     * EndTxn, so a retried InitProducerId with it gets the current epoch; -1 after a fence. */
    int16_t last_epoch;
};

struct txn_table {
    struct txn_meta *buckets[TXN_BUCKETS];
};

struct txn_shard {
    bool loaded;
    int32_t epoch; /* coordinator epoch: the partition's leader epoch when loaded */
};

struct txn_coordinator {
    pthread_mutex_t mu; /* guards table, shards and every txn_meta */
    struct txn_config cfg;
    struct txn_env env;
    struct txn_table table;
    struct txn_shard *shards;
    int32_t nshards;
    atomic_bool stopping; /* txn_coordinator_shutdown: ops end at their next step */
    atomic_int ops;       /* txn_ops alive */
};

enum txn_op_kind {
    OP_SIMPLE,   /* record durable -> answer */
    OP_PREPARE,  /* Prepare* durable -> markers -> Complete* */
    OP_COMPLETE, /* Complete* durable -> answer */
    OP_REMOVE,   /* tombstone durable -> the id is gone (transactional.id.expiration.ms) */
};

struct txn_op {
    struct txn_coordinator *tc;
    struct txn_meta *m;
    enum txn_op_kind kind;
    /* The state to write and apply. */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t timeout_ms;
    int8_t state;
    struct txn_topic_partition *parts; /* owned; moves into m when applied */
    size_t nparts;
    int64_t start_ms;
    int32_t coordinator_epoch;
    int16_t client_tv; /* see txn_meta */
    int64_t prev_producer_id, next_producer_id;
    int16_t last_epoch;
    txn_done_fn done; /* NULL: nobody waits (timeouts, fencing, load) */
    void *arg;
    struct txn_result res;
};

/* ---- txn_table.c ---- */
struct txn_meta *txn_table_find(struct txn_table *t, const char *id);
void txn_table_insert(struct txn_table *t, struct txn_meta *m);
void txn_table_remove(struct txn_table *t, struct txn_meta *m);
void txn_table_free_all(struct txn_table *t);
void txn_parts_free(struct txn_topic_partition *parts, size_t n);
void txn_meta_free(struct txn_meta *m);
/* Copies parts[0..n) and adds[0..nadd) not already there; NULL on ENOMEM. */
struct txn_topic_partition *txn_parts_union(const struct txn_topic_partition *parts, size_t n,
                                            const struct txn_topic_partition *adds, size_t nadd,
                                            size_t *out_n);

/* ---- txn_op.c ---- */
/* Mutex held: a new op on m (its current state copied), or NULL on ENOMEM. */
struct txn_op *txn_op_new(struct txn_coordinator *tc, struct txn_meta *m, enum txn_op_kind kind,
                          txn_done_fn done, void *arg);
/* Without the mutex: writes op's state record, then goes on by op->kind. */
void txn_op_write(struct txn_op *op);
/* Without the mutex: allocates op's next_producer_id (a TV2 producer whose epoch ran out),
 * then txn_op_write; an allocation error ends op with it. */
void txn_op_write_next_pid(struct txn_op *op);
/* Without the mutex: markers for op's Prepare* state, then Complete*. */
void txn_op_send_markers(struct txn_op *op);
void txn_answer(txn_done_fn done, void *arg, int16_t err, int64_t pid, int16_t epoch);
int16_t txn_check_producer_locked(const struct txn_meta *m, int64_t pid, int16_t epoch);
struct txn_op *txn_abort_start_locked(struct txn_coordinator *tc, struct txn_meta *m);

/* ---- coordinator_load.c ---- */
void txn_shard_unload_locked(struct txn_coordinator *tc, int32_t shard);

#endif
