/*
 * The group coordinator (classic and KIP-848 consumer group protocols) and the committed offsets of
 * consumer groups.
 *
 * Group G lives in shard abs(javaStringHash(G)) % N, N = partition count of __consumer_offsets;
 * shard s is partition s of that topic. Group metadata and offset commits are records of that
 * partition in Kafka's format (group/offsets_log.h); the in-memory state is rebuilt from it.
 *
 * THREAD MODEL. Every shard is owned by one I/O worker (env->worker_for(s), a fixed mapping).
 * All state of the shard's groups — members, parked JoinGroup/SyncGroup calls, timers
 * (session, rebalance, initial delay, offsets expiry), committed offsets — is touched only on
 * that worker, so it needs no lock. group_coordinator_submit() may be called on any worker: it
 * posts the call to the owner. A call spanning several groups (DescribeGroups, DeleteGroups,
 * OffsetFetch v8+, ListGroups) visits the groups' owners one after the other. Completion is
 * call->done(call) on the owner worker; the caller must hand it back to the request's own worker
 * (net_worker_post) before replying. The response is built in call->arena (the request's arena,
 * which nobody else touches while the call is with the coordinator).
 *
 * LOADING. A shard is replayed from its log by a short-lived loader thread the first time a
 * call (or FindCoordinator, via group_coordinator_prepare) needs it; calls meanwhile get
 * COORDINATOR_LOAD_IN_PROGRESS. The loader fills the shard's table privately and posts the
 * result to the owner, which arms the members' session timers.
 *
 * DURABILITY. Offset commits, group metadata and tombstones are appended to the shard's log and
 * the call completes only after the flusher made them durable (like produce with acks=all); the
 * in-memory table changes at that point, so OffsetFetch never returns a commit that could be
 * lost in a crash. OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for a
 * partition with a commit still waiting for the disk.
 */
#ifndef GREGOR_GROUP_COORDINATOR_H
#define GREGOR_GROUP_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "net/net.h"
#include "proto/codec.h"
#include "proto/gen/offset_commit_value.h"
#include "storage/log.h"

struct group_coordinator;

/* What the coordinator needs from the broker. Every function may be called from any thread. */
struct group_env {
    void *ctx;
    /* Worker owning shard s; NULL when the network is not running. */
    struct net_worker *(*worker_for)(void *ctx, int32_t shard);
    /* Partition count of __consumer_offsets, or 0 when the topic does not exist yet. */
    int32_t (*partition_count)(void *ctx);
    /* The log of partition s of __consumer_offsets, referenced (*ref), or NULL when this broker
     * does not lead it. */
    struct log *(*log_get)(void *ctx, int32_t shard, void **ref);
    void (*log_put)(void *ref);
    /* Appends validated batch bytes (in place) to the referenced partition as its leader:
     * leader epoch, high watermark, waking fetches. 0 or a negative error. */
    int (*log_append)(void *ref, uint8_t *batch, size_t len, struct log_append_info *info);
    /* Calls cb(arg, err) once the referenced partition's records below `end` are committed
     * (replicated to the ISR) and durable, on any thread; 0 when registered (cb will come) or
     * a negative error (cb will not). Optional: without it, the log's flush alone counts. */
    int (*wait_committed)(void *ref, int64_t end, void (*cb)(void *arg, int err), void *arg);
    /* True while this broker leads partition s of __consumer_offsets (optional). */
    bool (*is_leader)(void *ctx, int32_t shard);
    /* True if the cluster has partition `partition` of topic `topic` (OffsetCommit refuses
     * offsets for anything else, as Kafka does). Any worker. */
    bool (*partition_exists)(void *ctx, struct kstr topic, int32_t partition);
    /* Loading: an offset commit of producer pid's transaction still open at the log end (no
     * marker yet); the broker holds it until the marker comes (optional). Loader thread. */
    void (*txn_pending)(void *ctx, int32_t shard, int64_t pid, struct kstr group, struct kstr topic,
                        int32_t partition, const struct kmsg_offset_commit_value *v);
    /* Loading, before the replay: forget what the broker holds for shard s from an earlier
     * load (the replay hands back what is still open; a stale entry would later be committed
     * over newer offsets). Optional. Loader thread. */
    void (*txn_pending_clear)(void *ctx, int32_t shard);
    /* True while an open transaction holds an offset for the group's partition (OffsetFetch
     * with require_stable answers UNSTABLE_OFFSET_COMMIT then, KIP-447). Optional; owner
     * worker. */
    bool (*txn_offset_pending)(void *ctx, struct kstr group, struct kstr topic, int32_t partition);
    /* Consumer groups: the partition count of topic `name` and its id (into id), or -1 when
     * the cluster has no such topic. Any worker. */
    int32_t (*topic_lookup)(void *ctx, const char *name, uint8_t id[16]);
    /* Consumer groups: calls cb(arg, name) for every topic of the cluster but the internal
     * ones, for regex subscriptions. Any worker. */
    void (*topic_each)(void *ctx, void (*cb)(void *arg, const char *name), void *arg);
};

struct group_config {
    int32_t initial_rebalance_delay_ms;  /* group.initial.rebalance.delay.ms */
    int32_t min_session_timeout_ms;      /* group.min.session.timeout.ms */
    int32_t max_session_timeout_ms;      /* group.max.session.timeout.ms */
    int64_t offsets_retention_ms;        /* offsets.retention.minutes */
    int64_t retention_check_interval_ms; /* offsets.retention.check.interval.ms */
    int32_t max_metadata_bytes;          /* offset.metadata.max.bytes */
    int32_t max_shards;                  /* offsets.topic.num.partitions (table size) */
    /* KIP-848 consumer groups */
    bool consumer_protocol_enabled;         /* group.coordinator.rebalance.protocols has it */
    int32_t consumer_heartbeat_interval_ms; /* group.consumer.heartbeat.interval.ms */
    int32_t consumer_session_timeout_ms;    /* group.consumer.session.timeout.ms */
    int32_t consumer_max_size;              /* group.consumer.max.size */
    char consumer_assignors[64];            /* group.consumer.assignors, in preference order */
    bool consumer_upgrade_enabled;   /* group.consumer.migration.policy: classic -> consumer */
    bool consumer_downgrade_enabled; /* group.consumer.migration.policy: consumer -> classic */
};

/* One request handed to the coordinator. The caller fills the public part. A
 * KPROTO_API_TXN_OFFSET_COMMIT call only checks the sender's membership (KIP-447): resp is an
 * int16_t that receives 0 or the Kafka error; the caller writes the offsets. */
struct group_call {
    int16_t api_key;
    int16_t api_version;
    const void *req;     /* decoded kmsg_*_request */
    void *resp;          /* kmsg_*_response, initialised by the caller */
    struct arena *arena; /* where response strings and arrays go */
    struct kstr client_id;
    const char *client_host;            /* "/1.2.3.4" as Kafka reports it */
    void (*done)(struct group_call *c); /* on the owner worker; must hand over */
    void *user;
    /* OffsetCommit only: a committed transaction's offsets (TxnOffsetCommit, checked when they
     * were sent), stored without the member and generation checks. */
    bool trusted;
    /* Private to the coordinator. */
    struct group_coordinator *gc;
    int32_t step;
    int32_t shard;
    int outstanding; /* appends waiting for the flusher */
    void *state;
    struct group_call *next; /* parked lists */
};

struct group_coordinator *group_coordinator_create(const struct group_config *cfg,
                                                   const struct group_env *env);
/* Answers every parked call (NOT_COORDINATOR), refuses new ones and waits (bounded) for the
 * appends in flight to complete; later completions are dropped. Any thread but a worker; call
 * before the network stops so the answers still go out and no completion is posted to a
 * stopped worker. */
void group_coordinator_shutdown(struct group_coordinator *gc);
/* Joins loader threads and frees everything. After the network stopped (no worker runs). */
void group_coordinator_destroy(struct group_coordinator *gc);

/* Routes the call to its shard's owner. Any worker. */
void group_coordinator_submit(struct group_coordinator *gc, struct group_call *c);

/* Starts loading shard s if it is not loaded (FindCoordinator, or this broker became the
 * leader of its partition). Any thread. */
void group_coordinator_prepare(struct group_coordinator *gc, int32_t shard);
/* This broker stopped leading partition s of __consumer_offsets, or leads it in a new leader
 * epoch: the shard unloads (NOT_COORDINATOR meanwhile), then replays if it leads again. Any
 * thread. */
void group_coordinator_resign(struct group_coordinator *gc, int32_t shard);

/* True while shard s is being replayed from its log (or unloading). A transaction marker
 * that reached its partition meanwhile may be past what the replay reads, so the replay may
 * still hand back that transaction's offsets as pending: the caller retries the completion
 * once the shard is loaded. Any thread. */
bool group_coordinator_shard_loading(struct group_coordinator *gc, int32_t shard);
/* True while shard s is loaded (its groups in memory). Any thread. */
bool group_coordinator_shard_loaded(struct group_coordinator *gc, int32_t shard);

/* Shard of a group id, given the partition count. */
int32_t group_shard_of(const char *group, int32_t len, int32_t n);

#endif
