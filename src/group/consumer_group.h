/*
 * Consumer groups of the next-generation protocol (KIP-848), internal to src/group/.
 *
 * A group of type "consumer" hangs a struct cgroup off its struct group (g->cg); its classic
 * fields stay empty (no classic members, state Empty). Members heartbeat with
 * ConsumerGroupHeartbeat; the coordinator assigns partitions itself (consumer_assignor.c).
 *
 * EPOCHS. group_epoch grows whenever membership, a subscription or the subscribed topics'
 * metadata change. assignment_epoch is the group epoch the target assignment (each member's
 * `target`) was computed for; it is recomputed lazily on the next heartbeat when
 * group_epoch > assignment_epoch. A member's epoch reaches assignment_epoch through
 * reconciliation: partitions it must give up are first reported as revoked (state UNREVOKED,
 * epoch unchanged); only when its heartbeats stop listing them among the owned partitions does
 * it move on. A partition goes to its new owner only while no other member holds it in
 * `assigned` or `revoking` (state UNRELEASED while waiting).
 *
 * INVARIANTS. Each tpset is sorted by (topic id, partition) without duplicates. A partition is
 * in at most one member's `assigned` or `revoking` (asserted by cg_check_owners in debug
 * builds). member->epoch <= cg->assignment_epoch <= cg->group_epoch.
 *
 * CLASSIC MEMBERS (Kafka's online migration, consumer_classic.c). A member with `classic` set
 * joined with JoinGroup (or came from a classic group upgraded when a consumer-protocol member
 * joined it): it keeps Kafka's ClassicMemberMetadata (session timeout, supported protocols),
 * rejoins when its heartbeat answers REBALANCE_IN_PROGRESS and reads its assignment with
 * SyncGroup. When the last consumer-protocol member leaves a group of classic members, the
 * group becomes classic again (group.consumer.migration.policy).
 *
 * THREADS. Owner worker of the shard only, like the rest of the group (coordinator.h).
 */
#ifndef GREGOR_GROUP_CONSUMER_GROUP_H
#define GREGOR_GROUP_CONSUMER_GROUP_H

#include <regex.h>

#include "group/group_internal.h"
#include "proto/gen/consumer_group_heartbeat.h"

struct cg_records;

#define CG_LEAVE_EPOCH (-1)
#define CG_LEAVE_STATIC_EPOCH (-2)

struct cg_tp {
    uint8_t topic_id[16];
    int32_t partition;
};

/* A set of topic partitions, sorted; v malloc'ed. */
struct cg_tpset {
    struct cg_tp *v;
    int32_t n, cap;
};

/* One subscribed topic as the cluster has it: the group's subscription metadata. */
struct cg_topic {
    char *name;
    uint8_t id[16];
    int32_t nparts; /* -1: the topic does not exist */
};

enum cg_member_state { CGM_STABLE, CGM_UNREVOKED, CGM_UNRELEASED };

struct cg_member {
    struct cg_member *next;
    struct group *g;
    struct gstr id, instance_id, rack_id, client_id, client_host, assignor;
    int32_t epoch, previous_epoch;
    int32_t rebalance_timeout_ms;
    enum cg_member_state state;
    char **topics; /* subscribed topic names (SubscribedTopicNames), sorted */
    int32_t ntopics;
    /* SubscribedTopicRegex (v1): the pattern as sent, and compiled as POSIX ERE anchored at
     * both ends (Kafka matches whole names with RE2/J syntax; the common subset agrees). */
    struct gstr regex;
    regex_t re;
    bool re_valid;
    char **subs; /* effective subscription: topics plus the regex's matches, sorted */
    int32_t nsubs;
    struct cg_tpset assigned; /* owned now (or being handed over to it) */
    struct cg_tpset revoking; /* to give up; still owned until its heartbeat drops them */
    struct cg_tpset target;   /* target assignment at cg->assignment_epoch */
    struct net_timer session_timer;
    struct net_timer revoke_timer; /* rebalance timeout while UNREVOKED */
    bool loaded_subscription;      /* loading only: its ConsumerGroupMemberMetadata was read */
    /* Classic protocol members only (ClassicMemberMetadata). */
    bool classic;
    int32_t classic_session_ms;
    struct gprotocol *classic_protocols; /* as sent in its JoinGroup, in order */
    int32_t nclassic_protocols;
    struct net_timer join_timer; /* it must rejoin within its rebalance timeout */
    struct net_timer sync_timer; /* it must SyncGroup within its rebalance timeout */
};

struct cgroup {
    int32_t group_epoch;
    int32_t assignment_epoch;
    struct cg_member *members;
    int32_t nmembers;
    struct cg_topic *topics; /* subscription metadata, sorted by name */
    int32_t ntopics;
    char assignor[32]; /* the assignor of the last target assignment */
};

/* ---- sets (consumer_tpset.c) ---- */
int cg_tpset_add(struct cg_tpset *s, const uint8_t id[16], int32_t partition);
bool cg_tpset_has(const struct cg_tpset *s, const uint8_t id[16], int32_t partition);
void cg_tpset_clear(struct cg_tpset *s);
void cg_tpset_free(struct cg_tpset *s);
int cg_tpset_copy(struct cg_tpset *dst, const struct cg_tpset *src);
bool cg_tpset_eq(const struct cg_tpset *a, const struct cg_tpset *b);
int cg_tp_cmp(const struct cg_tp *a, const struct cg_tp *b);

/* ---- assignors (consumer_assignor.c) ---- */
/* True if `name` is one of the assignors this broker runs (group.consumer.assignors). */
bool cg_assignor_known(const struct group_config *cfg, struct kstr name);
/* The assignor most members name, else the first configured one, into out. */
void cg_assignor_select(const struct cgroup *cg, const struct group_config *cfg, char *out,
                        size_t cap);
/* Recomputes every member's target for the group's subscription metadata with the assignor
 * most members name (else the first configured one). 0 or -ENOMEM (targets unchanged). */
int cg_assign(struct cgroup *cg, const struct group_config *cfg);

/* ---- the group (consumer_heartbeat.c) ---- */
/* A member's reconciliation state, to tell whether its current assignment record changed. */
struct member_snapshot {
    int32_t epoch, previous_epoch;
    enum cg_member_state state;
    struct cg_tpset assigned, revoking;
};
int cg_snapshot_take(struct member_snapshot *sn, const struct cg_member *m);
void cg_snapshot_free(struct member_snapshot *sn);
/* Kafka's heartbeat steps after the member was updated (created: it is new; replaced: a static
 * member took over an old id; changed: its subscription changed): subscription record,
 * subscription metadata, group epoch, target assignment (records of the changed targets),
 * reconciliation towards the target with the partitions it reports owning, current-assignment
 * record when it moved. 0 or -ENOMEM. */
int cg_member_settle(
    struct group *g, struct cg_member *m, bool created, bool replaced, int changed,
    const struct kmsg_consumer_group_heartbeat_request_topic_partitions_array *owned,
    const struct member_snapshot *sn, struct cg_records *r);
/* Sets m's subscribed topic names (sorted, deduplicated); 1 if they changed, 0, -ENOMEM. */
int cg_member_set_topics(struct cg_member *m, const struct karray_str *names);
/* A static member rejoins under a new member id: it takes over the old member's assignment
 * (the old id's tombstones go to r). NULL when out of memory. */
struct cg_member *cg_static_replace(struct group *g, struct cg_member *old, struct kstr id,
                                    struct cg_records *r);
struct cg_member *cg_find_static(struct cgroup *cg, struct kstr instance_id);
/* (Re)starts m's session timer (its classic session timeout for a classic member). */
void cg_member_schedule_session(struct group *g, struct cg_member *m);
/* Kafka's Uuid.randomUuid().toString() as a member id. */
void cg_new_member_id(char out[23]);
/* Unlinks and frees m (its tombstones, and the bumped epoch when bump, go to r). */
void cg_remove_member(struct group *g, struct cg_member *m, bool bump, const char *why,
                      struct cg_records *r);
/* Kafka's consumerGroupFenceMember: m leaves; when only classic members stay and the policy
 * allows, the group becomes classic (g->cg is NULL on return). Records go to r. */
void cg_fence_member(struct group *g, struct cg_member *m, const char *why, struct cg_records *r);
struct cgroup *cg_create(void);
/* Frees the consumer state; on_owner: cancel timers first. */
void cg_free(struct group *g, bool on_owner);
const char *cg_state_name(const struct cgroup *cg);
struct cg_member *cg_find_member(struct cgroup *cg, struct kstr id);
void group_handle_consumer_heartbeat(struct shard *s, struct group_call *c);
/* OffsetCommit (v9+ semantics) / OffsetFetch member checks: 0 or a Kafka error. */
int16_t cg_check_commit(struct group *g, struct kstr member_id, int32_t epoch, bool trusted,
                        int16_t api_version);
int16_t cg_check_fetch(struct group *g, struct kstr member_id, int32_t epoch);

/* A new member with id (a generated one when empty), linked first in the group. */
struct cg_member *cg_member_new(struct group *g, struct kstr id);
/* Frees m, unlinked, its timers not armed. */
void cg_member_free(struct cg_member *m);
/* Owner worker, once the group was replayed: effective subscriptions from the cluster's
 * topics, session timers (and rebalance timers of members revoking), as Kafka's onLoaded. */
void cg_after_load(struct group *g);

/* ---- the embedded consumer protocol (consumer_protocol.c) ---- */
struct kmsg_consumer_protocol_subscription;
struct kmsg_consumer_protocol_assignment;
struct kmsg_consumer_protocol_assignment_topic_partition_array;
/* The version prefix of an embedded message, -1 when it is too short. */
int16_t cg_protocol_version(const uint8_t *p, int32_t len);
/* A classic member's subscription; a newer version than ours reads as our newest (Kafka's
 * ConsumerProtocol does the same: fields are only appended). 0 or -EINVAL. */
int cg_protocol_decode_subscription(const uint8_t *p, int32_t len, struct arena *a,
                                    struct kmsg_consumer_protocol_subscription *out);
/* A classic member's assignment; an empty one (a member that has not synced yet) does not
 * decode, as in Kafka. 0 or -EINVAL. */
int cg_protocol_decode_assignment(const uint8_t *p, int32_t len, struct arena *a,
                                  struct kmsg_consumer_protocol_assignment *out);
/* Kafka's ConsumerProtocol.serializeAssignment of set at `version` into out (partitions of
 * topics gone from the subscription metadata left out). 0 or -ENOMEM. */
int cg_protocol_encode_assignment(const struct cgroup *cg, const struct cg_tpset *set,
                                  int16_t version, struct gstr *out);
/* Topic names and partitions into set (unknown topics left out: Kafka's toTopicPartitionMap).
 * 0 or -ENOMEM. */
int cg_protocol_tpset_from_names(
    const struct group_env *env, struct cg_tpset *set,
    const struct kmsg_consumer_protocol_assignment_topic_partition_array *a);
/* The owned partitions of a classic subscription as a heartbeat's (in arena a); none listed (an
 * eager member, or v0) reads as owning nothing. 0 or -ENOMEM. */
int cg_protocol_owned_partitions(
    const struct group_env *env, struct arena *a,
    const struct kmsg_consumer_protocol_subscription *sub,
    struct kmsg_consumer_group_heartbeat_request_topic_partitions_array *out);

/* ---- online upgrade and downgrade (consumer_migration.c) ---- */
/* Kafka's validateOnlineUpgrade + convertToConsumerGroup: the non-empty classic group g becomes a
 * consumer group (its records go to r). 0, or GROUP_ID_NOT_FOUND with *msg when refused. */
int16_t cg_upgrade(struct group *g, struct cg_records *r, const char **msg);
/* Kafka's validateOnlineDowngradeWithFencedMember. */
bool cg_downgrade_allowed(const struct group *g, const struct cg_member *leaving);
/* Kafka's validateOnlineDowngradeWithReplacedMemberId, once the replaced member (a
 * consumer-protocol one) is gone: every member left uses the classic protocol. */
bool cg_downgrade_after_replace(const struct group *g);
/* Kafka's convertToClassicGroup: g becomes classic without `leaving` (NULL: a static member was
 * replaced by a classic one, which keeps its assignment) and, when a member left, rebalances. */
void cg_downgrade(struct group *g, struct cg_member *leaving, struct cg_records *r);

/* ---- classic members of a consumer group (consumer_classic.c) ---- */
/* Sets m's ClassicMemberMetadata from n protocols (names and metadata); 0 or -ENOMEM. */
int cg_member_set_classic(struct cg_member *m, int32_t session_ms, const struct kstr *names,
                          const struct kbytes *metadata, int32_t n);
void cg_classic_join(struct group *g, struct group_call *c);
void cg_classic_sync(struct group *g, struct group_call *c);
void cg_classic_heartbeat(struct group *g, struct group_call *c);
void cg_classic_leave(struct group *g, struct group_call *c);
/* Frees a classic member's ClassicMemberMetadata. */
void cg_member_classic_clear(struct cg_member *m);
/* A classic member's timers (join, sync) stop. */
void cg_member_cancel_classic_timers(struct cg_member *m);

/* ---- records in __consumer_offsets (consumer_records.c) ----
 * Kafka's GroupCoordinatorRecordHelpers: key types 3 ConsumerGroupMetadata (the group epoch),
 * 4 ConsumerGroupPartitionMetadata (the subscription metadata), 5 ConsumerGroupMemberMetadata
 * (a member's subscription), 6 ConsumerGroupTargetAssignmentMetadata (the assignment epoch),
 * 7 ConsumerGroupTargetAssignmentMember, 8 ConsumerGroupCurrentMemberAssignment; values at
 * version 0; a removed member or group leaves tombstones so compaction drops its records. */
struct cg_records {
    struct offsets_kv *v;
    size_t n, cap;
    int err; /* the first encoding failure; the batch must not be written then */
};
void cg_records_push(struct cg_records *r, struct offsets_kv *kv); /* takes kv's buffers */
void cg_records_epoch(struct cg_records *r, const struct group *g);
void cg_records_partition_metadata(struct cg_records *r, const struct group *g);
void cg_records_subscription(struct cg_records *r, const struct group *g,
                             const struct cg_member *m);
void cg_records_target_epoch(struct cg_records *r, const struct group *g);
void cg_records_target(struct cg_records *r, const struct group *g, const struct cg_member *m);
void cg_records_current(struct cg_records *r, const struct group *g, const struct cg_member *m);
/* Kafka's removeMember: tombstones of the member's current assignment, target, subscription. */
void cg_records_member_tombstones(struct cg_records *r, const struct group *g,
                                  const struct gstr *member_id);
/* Kafka's ConsumerGroup.createGroupTombstoneRecords. */
void cg_records_group_tombstones(struct cg_records *r, const struct group *g);
void cg_records_free(struct cg_records *r);
/* Writes the records without waiting (timers); frees them. */
void cg_records_persist(struct group *g, struct cg_records *r);
/* Loader thread: applies one consumer group record (kind OFFSETS_RECORD_CONSUMER). */
void cg_replay(struct shard *s, const struct offsets_record *rec, struct arena *arena);
/* Loader thread, after the replay: drops members whose subscription record is missing. */
void cg_replay_finish(struct group *g);

/* ---- ConsumerGroupDescribe (consumer_describe.c) ---- */
void group_handle_consumer_describe(struct shard *s, struct group_call *c);

#endif
