/*
 * A partition's replicas as its leader sees them (Kafka's Partition): the assignment (AR), the
 * in-sync replicas (ISR; OSR = AR - ISR), each follower's log end offset and last caught-up
 * time, and the high watermark rule:
 *
 *   HW = min(log end of the leader, log end of every follower in the maximal ISR), never moved
 *   back, and not moved at all while the maximal ISR is smaller than min.insync.replicas.
 *
 * The maximal ISR is the ISR of the metadata (or of the last AlterPartition answer) plus the
 * members of an ISR change still in flight (Kafka's PendingExpandIsr/PendingShrinkIsr), so the
 * high watermark never counts a replica the controller might still refuse, nor stops counting
 * one it has not removed yet. One AlterPartition per partition is in flight at a time.
 *
 * A follower leaves the ISR when it has not caught up with the leader's log end for
 * replica.lag.time.max.ms; it rejoins once its log end reaches the high watermark and the
 * start offset of the leader's current epoch (Kafka's rules). Both go to the controller
 * (isr_sender.h); the result, or a newer metadata image, replaces the ISR here.
 *
 * acks=all waits here too: replica_set_wait_hw() parks a callback until the high watermark
 * passes an offset, or fails it (leadership lost: NOT_LEADER_OR_FOLLOWER; ISR shrank below
 * min.insync.replicas: NOT_ENOUGH_REPLICAS_AFTER_APPEND).
 *
 * With a single replica (the one-broker cluster) the high watermark is the log end after each
 * append and nothing ever waits.
 *
 * Locking: rs->mu guards every field; it is taken by appenders, fetch handlers, the image
 * listener and the ISR sender, held for microseconds, never across I/O, and callbacks run
 * after it is released. Lock order: the partition's follow_mu (image listener) before rs->mu;
 * the log's locks are never taken under rs->mu except for
 * atomic loads of published offsets.
 */
#ifndef GREGOR_BROKER_REPLICA_SET_H
#define GREGOR_BROKER_REPLICA_SET_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cluster/image.h"

/* Replicas per partition tracked here. A partition with more (Kafka has no such limit, but
 * a replication factor is at most the broker count) fails closed: its high watermark never
 * moves, so nothing is acknowledged or served that the untracked replicas might lack. */
#define REPLICA_MAX 16

struct partition;

struct replica_follower {
    int32_t id;
    int64_t leo;                   /* fetch offset of its last fetch; -1 unknown */
    int64_t durable;               /* what of it the follower has synced: counts for the HW */
    int64_t log_start;             /* log start offset its last fetch reported; -1 unknown */
    int64_t last_caught_up_ms;     /* monotonic */
    int64_t last_fetch_ms;         /* monotonic */
    int64_t last_fetch_leader_leo; /* the leader's log end at its last fetch */
};

/* A produce (or other delayed operation) waiting for the high watermark. */
struct hw_waiter {
    struct hw_waiter *next;
    int64_t offset;                                   /* wait until HW >= offset */
    void (*done)(struct hw_waiter *w, int16_t error); /* outside rs->mu, any thread */
    void *arg;
};

struct replica_set {
    pthread_mutex_t mu;
    int32_t self;
    bool leader; /* this node leads at leader_epoch per the newest image */
    int32_t leader_epoch;
    int32_t partition_epoch;
    int64_t epoch_start_offset; /* leader's log end when it took leader_epoch */
    int min_isr;                /* min.insync.replicas (partition config) */
    uint32_t n_replicas, n_isr, n_pending;
    int32_t replicas[REPLICA_MAX];
    int32_t isr[REPLICA_MAX];
    int32_t pending[REPLICA_MAX]; /* the ISR sent in the AlterPartition in flight */
    bool alter_in_flight;
    bool oversize; /* more than REPLICA_MAX replicas or ISR members: HW frozen, logged */
    struct replica_follower followers[REPLICA_MAX]; /* for replicas[] other than self */
    uint32_t n_followers;
    struct hw_waiter *waiters;
};

void replica_set_init(struct replica_set *rs, int32_t self);
/* Fails every waiter (NOT_LEADER_OR_FOLLOWER) and frees the state. */
void replica_set_destroy(struct replica_set *rs);

/*
 * The image listener's update of p (controller thread): replicas, leader, epochs, the ISR when
 * the image's partition epoch is not older than what an AlterPartition answer gave, and
 * min.insync.replicas. Becoming leader resets every follower's state (Kafka: ISR members count
 * as caught up now). Losing leadership fails the waiters. May advance the high watermark.
 */
void replica_set_on_image(struct partition *p, const struct metadata_partition *mp, int min_isr,
                          int64_t now_ms);

/* After a local append on the leader: recomputes the high watermark. */
void replica_set_on_append(struct partition *p);

/*
 * A follower fetched at fetch_offset (its log end), reporting log_start (its log start
 * offset, -1 unknown) and durable (a Gregor follower's synced log end, -1 when not reported:
 * then all of fetch_offset counts), at now_ms (monotonic). The high watermark counts
 * min(fetch_offset, durable); being caught up (ISR) counts fetch_offset. Updates its state and
 * advances the high watermark. Returns -1 when this node does not lead p or `id` is not an assigned
 * replica (Kafka answers NOT_LEADER_OR_FOLLOWER), 1 when the follower now qualifies for the ISR and
 * no change is in flight (kick the ISR sender), else 0.
 */
int replica_set_on_follower_fetch(struct partition *p, int32_t id, int64_t fetch_offset,
                                  int64_t log_start, int64_t durable, int64_t now_ms);

/*
 * KIP-392 on the leader (Kafka's ReplicaManager.findPreferredReadReplica with its
 * RackAwareReplicaSelector): the replica a consumer in rack `rack` (rack_len bytes, not
 * NUL-terminated) should fetch p from at fetch_offset. The candidates are this node and the
 * followers in the ISR whose broker is live in img and that hold fetch_offset (log start <=
 * fetch_offset <= log end). Among those in the client's rack: this node if it is one of
 * them, else the most caught-up follower (largest log end, then most recently caught up, then
 * highest id). Returns that follower's node id, or -1 when the consumer should read here
 * (this node leads and is chosen, no candidate is in the rack, or this node does not lead p).
 * Any thread; takes rs->mu.
 */
int32_t replica_set_preferred_read_replica(struct partition *p, const struct metadata_image *img,
                                           const char *rack, size_t rack_len, int64_t fetch_offset);

/*
 * Waits for HW >= w->offset. Returns 1 when it is there already (w is not registered, done is
 * not called), 0 when registered (done is called exactly once later, on any thread), or a
 * negative Kafka error code (-NOT_LEADER_OR_FOLLOWER when this node does not lead p).
 */
int replica_set_wait_hw(struct partition *p, struct hw_waiter *w);

/*
 * ISR maintenance (the ISR sender's thread): when p is led here, no change is in flight and
 * some ISR follower has not caught up for lag_ms (or an expansion is due), fills isr/n with
 * the ISR to send with the epochs, marks it in flight and returns true.
 */
bool replica_set_next_isr_change(struct partition *p, int64_t now_ms, int64_t lag_ms, int32_t *isr,
                                 uint32_t *n, int32_t *leader_epoch, int32_t *partition_epoch);

/*
 * The AlterPartition answer: error 0 with the new ISR and partition epoch (applied when the
 * epoch is newer), or an error (the change is dropped; the image will tell). Clears the
 * in-flight mark.
 */
void replica_set_on_isr_result(struct partition *p, int16_t error, const int32_t *isr, uint32_t n,
                               int32_t leader_epoch, int32_t partition_epoch);

#endif
