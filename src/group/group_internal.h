/* Internal state of the group coordinator (src/group/ only). See coordinator.h for the thread
 * model: everything below a shard is touched only on the shard's owner worker, except while the
 * shard is LOADING, when only its loader thread touches it. */
#ifndef GREGOR_GROUP_GROUP_INTERNAL_H
#define GREGOR_GROUP_GROUP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "group/coordinator.h"
#include "group/offsets_log.h"

/* An owned copy of a string or byte field; len -1 = null (p NULL). NUL-terminated. */
struct gstr {
    char *p;
    int32_t len;
};

enum group_state { GS_EMPTY, GS_PREPARING, GS_COMPLETING, GS_STABLE, GS_DEAD };
/* UNLOADED -> LOADING (loader thread) -> LOADED -> UNLOADING (leadership lost: appends in flight
 * drain) -> UNLOADED. FAILED: the replay failed; the shard answers COORDINATOR_NOT_AVAILABLE. */
enum shard_state { SHARD_UNLOADED, SHARD_LOADING, SHARD_LOADED, SHARD_FAILED, SHARD_UNLOADING };

struct gprotocol {
    struct gstr name;
    struct gstr metadata;
};

struct member {
    struct member *next;
    struct group *g;
    struct gstr id, instance_id, client_id, client_host, protocol_type;
    int32_t session_timeout, rebalance_timeout;
    int32_t nprotocols;
    struct gprotocol *protocols;
    struct gstr assignment;
    struct group_call *join_call; /* parked JoinGroup */
    struct group_call *sync_call; /* parked SyncGroup */
    struct net_timer session_timer;
};

struct offset_entry {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    struct gstr metadata;
    int64_t commit_ts;
    int pending; /* commits appended, not yet durable */
    bool valid;  /* a durable commit exists (else only pending) */
};

struct pending_member {
    struct pending_member *next;
    char *id;
};

struct group {
    struct group *next; /* shard hash chain */
    struct shard *s;
    struct gstr id;
    enum group_state state;
    struct gstr protocol_type; /* null when none */
    struct gstr protocol_name; /* null when none */
    int32_t generation;
    struct gstr leader; /* null when none */
    struct member *members;
    int32_t nmembers;
    struct pending_member *pending;
    struct net_timer join_timer;
    bool initial_delay;
    bool new_member_added;
    int64_t join_deadline_ms;
    int64_t state_ts;             /* wall clock of the last state change */
    struct offset_entry *offsets; /* sorted by (topic, partition) */
    size_t noffsets, offsets_cap;
    bool load_meta; /* loading only: the newest group metadata record is not a tombstone */
    /* A consumer group (KIP-848, consumer_group.h); NULL for a classic group. A consumer group
     * has no classic members and stays in the classic state Empty. */
    struct cgroup *cg;
};

#define SHARD_MIN_BUCKETS 64

struct shard {
    struct group_coordinator *gc;
    int32_t index;
    _Atomic int state;
    /* Hash table of the shard's groups by id, chained through group.next. nbuckets is 0 or a
     * power of two >= SHARD_MIN_BUCKETS; the table doubles when ngroups exceeds it. */
    struct group **buckets;
    size_t nbuckets;
    size_t ngroups;
    pthread_t loader;
    bool loader_started;
    struct net_timer expiry_timer;
    struct net_worker *worker; /* owner, set when loaded */
    int appends_in_flight;     /* shard_append waits not completed yet (owner worker) */
};

struct group_coordinator {
    struct group_config cfg;
    struct group_env env;
    atomic_bool stopping;
    /* Appends waiting for the flusher: destroy waits for them, so a late flush completion
     * never posts to a worker that is gone. Guarded by appends_mu. */
    pthread_mutex_t appends_mu;
    pthread_cond_t appends_cond;
    int appends_outstanding;
    bool closed;             /* the network stopped: completions are dropped */
    pthread_mutex_t load_mu; /* guards shard state transitions out of UNLOADED */
    int32_t nshards;
    struct shard *shards;
};

/* ---- strings (gstr.c) ---- */
void gstr_set(struct gstr *g, const void *p, int32_t len);
static inline void gstr_from_kstr(struct gstr *g, struct kstr k)
{
    gstr_set(g, k.ptr, k.len);
}
static inline void gstr_from_kbytes(struct gstr *g, struct kbytes k)
{
    gstr_set(g, k.ptr, k.len);
}
void gstr_free(struct gstr *g);
bool gstr_eq(const struct gstr *g, struct kstr k);
bool gstr_eq_str(const struct gstr *a, const struct gstr *b);
struct kstr gstr_kstr(const struct gstr *g); /* borrowed view */
struct kbytes gstr_kbytes(const struct gstr *g);
struct kstr arena_kstr(struct arena *a, const struct gstr *g); /* copy into the arena */
struct kbytes arena_kbytes(struct arena *a, const struct gstr *g);
struct kstr arena_kstr_of(struct arena *a, struct kstr k);
char *kstr_strdup(struct kstr k); /* malloc'ed NUL-terminated copy ("" for null) */

/* ---- loading (shard_load.c) ---- */
/* Replays the shard's log into its (empty) table: O(records). Loader thread; 0 or a negative
 * error. Exposed for unit tests. */
int shard_load(struct shard *s, struct log *log);
/* Starts loading s (a loader thread) if it is UNLOADED; returns its state afterwards. Any
 * thread. */
int shard_ensure_loading(struct group_coordinator *gc, struct shard *s);

/* ---- shard and groups (coordinator.c) ---- */
/* Frees every group of the shard and its table (no timers may be armed). */
void shard_free_groups(struct shard *s);
/* Answers every parked call of the shard with err and cancels its timers. Owner worker. */
void shard_quiesce(struct shard *s, int16_t err);
struct group *group_find(struct shard *s, struct kstr id);
struct group *group_create(struct shard *s, struct kstr id);
void group_remove(struct group *g); /* unlinks and frees (members must have no parked calls) */
/* Frees g, not linked in its shard's table any more; on_owner: cancel its timers (owner
 * worker), else none may be armed (loader thread, destroy). */
void group_free(struct group *g, bool on_owner);
struct member *group_find_member(struct group *g, struct kstr member_id);
struct member *group_member_by_instance(struct group *g, struct kstr instance_id);
const char *group_state_name(enum group_state st);
void call_finish(struct group_call *c);
int64_t group_now_ms(void);

/* Appends kvs as one batch to the shard's log and calls cb(arg, err) on the owner worker once
 * durable (err != 0: the append or flush failed). Takes ownership of nothing; kvs may be freed
 * on return. Returns 0 when cb will be called, else a negative error (cb not called). */
int shard_append(struct shard *s, const struct offsets_kv *kvs, size_t n,
                 void (*cb)(void *arg, int err), void *arg);
/* The group metadata value of g as Kafka writes it, encoded into kv (tombstone if g is NULL). */
int group_encode_metadata(struct offsets_kv *kv, const struct group *g, const char *group_id);

/* ---- leadership (shard_leadership.c) ---- */
/* Owner worker: this broker no longer leads the shard's partition; the shard stops answering
 * (NOT_COORDINATOR) and frees its groups once its appends in flight completed. */
void shard_unload_begin(struct shard *s);
/* Owner worker, after an append completion: finishes an unload waiting for it. */
void shard_unload_continue(struct shard *s);

/* ---- join_group.c ---- */
void group_handle_join(struct shard *s, struct group_call *c);
/* Removes id from the ids handed out with MEMBER_ID_REQUIRED that did not join yet; true if it
 * was one. */
bool group_take_pending(struct group *g, struct kstr id);

/* ---- membership.c ---- */
/* Answers a JoinGroup with err (member_id echoed back when not null). */
void join_reply_error(struct group_call *c, int16_t err, struct kstr member_id);
/* Answers m's JoinGroup with the group's generation naming `leader`; the member list when
 * with_members; skip_assignment for a v9+ static leader rejoining a Stable group. */
void join_reply_as(struct group *g, struct member *m, struct group_call *c,
                   const struct gstr *leader, bool with_members, bool skip_assignment);
/* Answers m's JoinGroup with the current generation (the members if m leads). */
void join_reply_member(struct group *g, struct member *m, struct group_call *c);
/* Answers a SyncGroup: err, or g's protocol and the assignment. */
void sync_reply(struct group_call *c, int16_t err, const struct group *g,
                const struct gstr *assignment);
/* A member joined or changed: Stable/CompletingRebalance/Empty start a rebalance, a rebalance
 * in progress may now complete. */
void group_maybe_prepare_rebalance(struct group *g);
/* Kafka's protocol selection among the members' protocols; NULL when they share none. */
const struct gstr *group_select_protocol(struct group *g);
void group_handle_sync(struct shard *s, struct group_call *c);
void group_handle_heartbeat(struct shard *s, struct group_call *c);
void group_handle_leave(struct shard *s, struct group_call *c);
/* One member of a LeaveGroup v3+ request leaves: its error code (0 when it left). */
typedef int16_t (*group_leave_fn)(struct group *g, struct kstr member_id, struct kstr instance,
                                  void *arg);
/* LeaveGroup v3+: resp->members answers req->members one by one with leave_one; returns how
 * many left, or -ENOMEM. Owner worker. */
int group_leave_each(struct group *g, struct group_call *c, group_leave_fn leave_one, void *arg);
void member_free(struct member *m);
void group_arm_loaded_members(struct group *g); /* after load: session timers */
void group_fail_parked(struct group *g, int16_t err);
void group_remove_member_and_update(struct group *g, struct member *m);
void member_schedule(struct member *m); /* (re)starts the session timer */

/* ---- offsets.c ---- */
void group_handle_offset_commit(struct shard *s, struct group_call *c);
/* OffsetFetch: one group (step i for v8+). */
void group_handle_offset_fetch(struct shard *s, struct group_call *c);
void group_handle_offset_delete(struct shard *s, struct group_call *c);
struct offset_entry *group_offset_find(struct group *g, const char *topic, size_t tlen,
                                       int32_t partition, bool create);
void group_offset_remove(struct group *g, struct offset_entry *e);
void shard_expire_offsets(struct shard *s);

/* ---- txn_commit_check.c ---- */
/* TxnOffsetCommit v3+ (c->req a kmsg_txn_offset_commit_request, c->resp an int16_t): the
 * member check only; *resp is 0 or the Kafka error. */
void group_handle_txn_commit_check(struct shard *s, struct group_call *c);

/* ---- consumer groups (consumer_heartbeat.c; the rest in consumer_group.h) ---- */
void cg_free(struct group *g, bool on_owner);
void cg_cancel_timers(struct group *g);
/* Members of a consumer group; 0 for a classic group. */
int32_t group_consumer_members(const struct group *g);

/* ---- admin.c ---- */
void group_handle_describe(struct shard *s, struct group_call *c);
void group_handle_list(struct shard *s, struct group_call *c);
void group_handle_delete(struct shard *s, struct group_call *c);

/* Continues a multi-group call with its next step (posts to the next owner). */
void call_continue(struct group_call *c);

/* Error for calls on shard s: 0 when loaded, else LOAD_IN_PROGRESS / NOT_COORDINATOR /
 * COORDINATOR_NOT_AVAILABLE (coordinator.c). */
int16_t shard_error(struct shard *s);

#endif
