/*
 * The cluster controller: cluster metadata replicated by libraft among the controller voters
 * (a single broker is a one-voter cluster), the metadata image readers use, and the admin
 * commands that change it.
 *
 * Threads. The controller owns one thread running a libuv loop with libraft (disk I/O in
 * <data_dir>/__cluster_metadata/, TCP transport between voters). Any thread may:
 *   - submit a command (controller_create_topics, ...): the request is copied, queued and the
 *     call returns at once; `done` is called exactly once, ON THE CONTROLLER THREAD, after the
 *     change is committed by a quorum and applied to the image (or on validation failure /
 *     NOT_CONTROLLER / shutdown). `done` must not block; an I/O worker posts the result back to
 *     its own loop. The result and everything it points to is valid only during the call.
 *   - read the image: metadata_image_acquire() never locks; release with
 *     metadata_image_release() from any thread.
 * The image listener is also called on the controller thread, after each publish.
 *
 * Commands are validated against the image including every earlier command (commands are
 * processed in submission order, one proposal batch at a time), so two concurrent creates of
 * one name cannot both succeed. Only the raft leader accepts commands; elsewhere they complete
 * with KAFKA_ERR_NOT_CONTROLLER (forwarding to the leader is the caller's business for now).
 */
#ifndef GREGOR_CLUSTER_CONTROLLER_H
#define GREGOR_CLUSTER_CONTROLLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/image.h"
#include "cluster/kafka_errors.h"

struct controller;

/* Called on the controller thread after `next` replaced `prev` (prev may be the empty image). */
typedef void (*controller_image_listener_fn)(void *arg, const struct metadata_image *prev,
                                             const struct metadata_image *next);

struct controller_config {
    int32_t node_id;      /* node.id, > 0 */
    const char *data_dir; /* first of log.dirs; raft files go in <data_dir>/__cluster_metadata */
    /*
     * controller.quorum.voters, "1@host:port,2@host:port". NULL or "" means this node is the
     * only voter, reachable at `listener`.
     */
    const char *quorum_voters;
    /*
     * A broker-only node: not one of quorum_voters. Its raft starts without a configuration
     * and never bootstraps; it receives the log once the active controller has made it a
     * standby (from the ObserverRegistration its BrokerRegistration wrote). `listener` is then
     * required: where the standby's raft transport listens.
     */
    bool observer;
    /*
     * IPv4 "host:port" the raft transport binds. NULL: this node's address in quorum_voters, or
     * "127.0.0.1:0" (any free port) for a single voter, which nobody needs to reach.
     */
    const char *listener;
    /*
     * Where this node answers the Kafka protocol (its advertised client listener): written to
     * the metadata log as a ControllerRegistration record whenever this node becomes active
     * and the image holds another endpoint for it, so brokers find the active controller even
     * when it is not a broker. NULL: never registered.
     */
    const char *endpoint_host;
    int32_t endpoint_port;
    int32_t default_num_partitions;     /* num.partitions, used for -1; 0 means 1 */
    int16_t default_replication_factor; /* default.replication.factor; 0 means 1 */
    bool unclean_leader_election;       /* unclean.leader.election.enable */
    unsigned broker_session_timeout_ms; /* broker.session.timeout.ms; 0 means 9000 */
    /* leader.imbalance.check.interval.seconds in ms (0: 300 s); only with auto_leader_rebalance */
    unsigned leader_imbalance_check_ms;
    bool auto_leader_rebalance; /* auto.leader.rebalance.enable */
    /* Raft tuning; 0 picks the defaults documented in controller.c. */
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    controller_image_listener_fn on_image; /* optional */
    void *on_image_arg;
};

/* Outcome for one topic (or config resource) of a command. */
struct controller_topic_result {
    const char *name;
    uint8_t topic_id[METADATA_UUID_LEN]; /* zero when unknown */
    int16_t error_code;
    const char *error_message; /* NULL when error_code == 0 */
    int32_t num_partitions;    /* create topics / partitions: resulting count */
    int16_t replication_factor;
};

/*
 * AlterPartition: the outcome for one partition, in request order. With error_code 0 the
 * partition's state once the change is applied (or the current state when nothing changed), so
 * the leader can go on without waiting for the metadata; otherwise only the identity is set.
 */
struct controller_partition_result {
    uint8_t topic_id[METADATA_UUID_LEN]; /* zero when the topic is unknown */
    int32_t partition;
    int16_t error_code;
    const char *error_message; /* NULL when error_code == 0 */
    int32_t leader_id;
    int32_t leader_epoch;
    int32_t partition_epoch;
    int8_t leader_recovery_state; /* 0 RECOVERED (Gregor records no RECOVERING state) */
    uint32_t n_isr;
    const int32_t *isr;
};

struct controller_result {
    int16_t error_code; /* request-level error (NOT_CONTROLLER, ...); 0 otherwise */
    const char *error_message;
    size_t n_topics; /* per-topic outcomes, in request order */
    const struct controller_topic_result *topics;
    int64_t producer_id_start; /* allocate_producer_ids */
    int32_t producer_id_len;
    uint64_t image_version; /* the image version that contains this change (0 if none) */
    /* register_broker / broker_heartbeat */
    int64_t broker_epoch;
    bool is_caught_up;
    bool is_fenced;
    bool should_shut_down;
    size_t n_partitions; /* alter_partition: per-partition outcomes, in request order */
    const struct controller_partition_result *partitions;
};

struct controller_broker_registration {
    int32_t broker_id;
    const char *host;
    int32_t port;
    const char *rack; /* NULL if none */
    uint8_t incarnation[METADATA_UUID_LEN];
    /* A broker-only node: where its libraft transport listens ("host:port" split), so the
     * active controller makes it a raft standby; NULL for a node that is a voter. */
    const char *observer_host;
    int32_t observer_port;
};

typedef void (*controller_done_fn)(void *arg, const struct controller_result *result);

struct controller_replica_list {
    int32_t partition; /* CreateTopics: partition index; CreatePartitions: unused (positional) */
    uint32_t n_replicas;
    const int32_t *replicas;
};

struct controller_new_topic {
    const char *name;
    int32_t num_partitions;     /* -1: default; ignored with assignments */
    int16_t replication_factor; /* -1: default; ignored with assignments */
    uint32_t n_assignments;     /* manual assignment: one list per partition, or 0 */
    const struct controller_replica_list *assignments;
    uint32_t n_configs;
    const struct metadata_config_entry *configs;
};

/* A topic named by id (when topic_id is non-NULL and not all zero) or else by name. */
struct controller_topic_ref {
    const char *name;
    const uint8_t *topic_id;
};

struct controller_partition_increase {
    const char *name;
    int32_t count;          /* new total partition count */
    uint32_t n_assignments; /* replicas for each new partition, or 0 for automatic */
    const struct controller_replica_list *assignments;
};

/* IncrementalAlterConfigs operation codes. */
enum controller_config_op {
    CONTROLLER_CONFIG_SET = 0,
    CONTROLLER_CONFIG_DELETE = 1,
    CONTROLLER_CONFIG_APPEND = 2,
    CONTROLLER_CONFIG_SUBTRACT = 3,
};

struct controller_config_change {
    const char *name;
    const char *value; /* NULL for DELETE */
    int8_t op;         /* enum controller_config_op; ignored by a full replace */
};

struct controller_config_alter {
    /* The topic's name, or with `broker` the broker id ("" for the cluster-wide default). */
    const char *topic;
    bool broker; /* a BROKER resource: dynamic broker configs (KIP-226) */
    uint32_t n_changes;
    const struct controller_config_change *changes;
};

/* One ACL change: a binding added under a new id, or the binding with `id` removed. */
struct controller_acl_change {
    uint8_t id[METADATA_UUID_LEN];
    bool remove;
    struct acl_binding binding; /* when !remove */
};

/*
 * Starts the controller thread and libraft, bootstrapping the voter configuration on first
 * start. Returns 0 and *out, or a negative errno with a reason in err. Blocks until raft has
 * loaded its log and snapshot (not until a leader is elected).
 */
int controller_start(const struct controller_config *cfg, struct controller **out, char *err,
                     size_t errlen);

/*
 * Stops the thread: queued and in-flight commands complete with an error, raft closes, every
 * handle is closed and the loop drained. Not from the controller thread (e.g. not from `done`).
 */
void controller_stop(struct controller *ctl);

/* True when this node is the raft leader and has applied everything committed before its term. */
bool controller_is_active(struct controller *ctl);
/* The current leader's node id, or -1 when unknown. */
int32_t controller_leader_id(struct controller *ctl);

/* Any thread: the current image (never NULL). */
const struct metadata_image *metadata_image_acquire(struct controller *ctl);

/*
 * Commands. Each returns 0 (done will be called) or -ESHUTDOWN / -ENOMEM / -EINVAL (done will
 * not be called). Request memory may be freed as soon as the call returns.
 */
int controller_create_topics(struct controller *ctl, const struct controller_new_topic *topics,
                             size_t n, bool validate_only, controller_done_fn done, void *arg);
int controller_delete_topics(struct controller *ctl, const struct controller_topic_ref *topics,
                             size_t n, controller_done_fn done, void *arg);
int controller_create_partitions(struct controller *ctl,
                                 const struct controller_partition_increase *topics, size_t n,
                                 bool validate_only, controller_done_fn done, void *arg);
/* incremental=false: AlterConfigs (the changes are the complete new set of overrides). */
int controller_alter_configs(struct controller *ctl, const struct controller_config_alter *topics,
                             size_t n, bool incremental, bool validate_only,
                             controller_done_fn done, void *arg);
/* One AlterClientQuotas entry (KIP-546): an entity and the quota keys to set or remove. */
struct controller_quota_component {
    const char *type; /* "user", "client-id" (anything else is refused) */
    const char *name; /* NULL: the default entity */
};
struct controller_quota_op {
    const char *key;
    double value;
    bool remove;
};
struct controller_quota_alter {
    uint32_t n_entity;
    const struct controller_quota_component *entity;
    uint32_t n_ops;
    const struct controller_quota_op *ops;
};
/* Results: one per entry (controller_topic_result error_code / error_message). */
int controller_alter_client_quotas(struct controller *ctl,
                                   const struct controller_quota_alter *entries, size_t n,
                                   bool validate_only, controller_done_fn done, void *arg);
/*
 * CreateAcls / DeleteAcls: applies the changes in one metadata-log entry. Adding a binding
 * equal to an existing one and removing an id no longer present are no-ops (Kafka's
 * AclControlManager); result.topics[i] is change i's outcome.
 */
int controller_alter_acls(struct controller *ctl, const struct controller_acl_change *changes,
                          size_t n, controller_done_fn done, void *arg);
/*
 * Broker lifecycle (Kafka's BrokerRegistration / BrokerHeartbeat semantics). A registration
 * starts fenced and yields a new broker epoch; a heartbeat with the current epoch keeps the
 * session, unfences once metadata_offset >= 0 (the broker has applied its registration), and
 * with want_shutdown moves the broker's leaderships away (should_shut_down once it leads
 * nothing). A stale epoch answers STALE_BROKER_EPOCH.
 */
int controller_register_broker(struct controller *ctl,
                               const struct controller_broker_registration *reg,
                               controller_done_fn done, void *arg);
int controller_broker_heartbeat(struct controller *ctl, int32_t broker_id, int64_t broker_epoch,
                                int64_t metadata_offset, bool want_fence, bool want_shutdown,
                                controller_done_fn done, void *arg);
struct controller_partition_ref {
    const char *topic;
    int32_t partition;
};

/*
 * ElectLeaders: type 0 preferred, 1 unclean, for the given partitions or (all) every
 * partition. One result per partition (name = topic, num_partitions = the partition index,
 * error_code); with `all`, only partitions that were elected or failed.
 */
int controller_elect_leaders(struct controller *ctl, int8_t type,
                             const struct controller_partition_ref *parts, size_t n, bool all,
                             controller_done_fn done, void *arg);

/* AlterUserScramCredentials (KIP-554): one deletion or upsertion. */
struct controller_scram_change {
    const char *name;
    int8_t mechanism; /* METADATA_SCRAM_SHA_256 / _512; anything else is refused */
    bool upsert;      /* false: delete name's credential for mechanism */
    int32_t iterations;
    const uint8_t *salt;
    size_t salt_len;
    const uint8_t *salted_password; /* Hi(password, salt, iterations), from the client */
    size_t salted_len;
};

/*
 * AlterUserScramCredentials with Kafka's ScramControlManager rules: a user named twice is
 * DUPLICATE_RESOURCE, an empty name or iterations outside 4096..16384 UNACCEPTABLE_CREDENTIAL,
 * an unknown mechanism UNSUPPORTED_SASL_MECHANISM, deleting a missing credential
 * RESOURCE_NOT_FOUND. The salted password is turned into StoredKey and ServerKey on the
 * caller's thread and not kept. One result per distinct user (name = user), deletions' users
 * first, each group in request order.
 */
int controller_alter_scram(struct controller *ctl, const struct controller_scram_change *changes,
                           size_t n, controller_done_fn done, void *arg);

/* One AlterPartitionReassignments item; replicas NULL cancels the ongoing reassignment. */
struct controller_reassignment {
    const char *topic;
    int32_t partition;
    uint32_t n_replicas;
    const int32_t *replicas;
};

/*
 * AlterPartitionReassignments. The target's new replicas are added to the replica set at
 * once (their brokers open the partition); the reassignment completes, dropping the removed
 * replicas, once every target replica is in the ISR (immediately when the target only removes
 * or reorders in-sync replicas). One result per item (name, num_partitions = partition).
 */
int controller_alter_reassignments(struct controller *ctl,
                                   const struct controller_reassignment *items, size_t n,
                                   controller_done_fn done, void *arg);

/* One partition of an AlterPartition request: the ISR its leader asks for. */
struct controller_isr_change {
    const char *topic; /* AlterPartition v0-1 name the topic; NULL from v2 (topic_id does) */
    uint8_t topic_id[METADATA_UUID_LEN];
    int32_t partition;
    int32_t leader_epoch;    /* the leader's view, must be current */
    int32_t partition_epoch; /* the leader's view, must be current */
    uint32_t n_new_isr;
    const int32_t *new_isr;
    /* v3 (KIP-903): each new ISR member's broker epoch, -1 to skip the check; NULL before */
    const int64_t *new_isr_epochs;
    int8_t leader_recovery_state; /* 0 RECOVERED, 1 RECOVERING */
};

struct controller_alter_partition {
    int32_t broker_id; /* the partition leader sending the request */
    int64_t broker_epoch;
    int16_t version; /* AlterPartition request version: picks Kafka's error codes */
    size_t n_partitions;
    const struct controller_isr_change *partitions;
};

/*
 * AlterPartition (Kafka's ReplicationControlManager.alterPartition): a partition leader
 * shrinks or expands its ISR. A broker epoch that is not the requester's current one fails the
 * whole request with STALE_BROKER_EPOCH; otherwise every partition is checked on its own, in
 * Kafka's order and with Kafka's codes: unknown topic (UNKNOWN_TOPIC_ID from v2, else
 * UNKNOWN_TOPIC_OR_PARTITION), unknown partition (UNKNOWN_TOPIC_OR_PARTITION), a leader or
 * partition epoch newer than the controller's (NOT_CONTROLLER), an older leader epoch
 * (FENCED_LEADER_EPOCH), a requester that is not the leader (INVALID_REQUEST), an older
 * partition epoch (INVALID_UPDATE_VERSION), an ISR with duplicates, non-replicas or without
 * the leader, or an impossible leader recovery state (INVALID_REQUEST), an ISR member that is
 * not registered, fenced, shutting down or (v3) of another broker epoch (INELIGIBLE_REPLICA
 * from v2, OPERATION_NOT_ATTEMPTED before). A valid new ISR is written as a PartitionChange
 * (partition epoch + 1); an unchanged one writes nothing. An ISR that now holds every target
 * replica of an ongoing reassignment completes it; if that moves the leadership away from the
 * requester the partition answers NEW_LEADER_ELECTED (v2+) or FENCED_LEADER_EPOCH.
 * Results in controller_result.partitions.
 */
int controller_alter_partition(struct controller *ctl, const struct controller_alter_partition *req,
                               controller_done_fn done, void *arg);

/* Preferred leader election (ElectLeaders type 0) for one partition or, topic NULL, all. */
int controller_elect_preferred(struct controller *ctl, const char *topic, int32_t partition,
                               controller_done_fn done, void *arg);
/* The raft voters and standbys (broker-only nodes) and, on the leader, how far each has
 * replicated (DescribeQuorum). */
#define CONTROLLER_MAX_QUORUM_MEMBERS 64
struct controller_voter_state {
    int32_t id;
    int64_t log_end_offset; /* -1 when unknown (only the leader knows its followers') */
    bool observer;          /* a standby: replicates the log without voting */
};
/* Fills up to `max` voters; returns the count. leader_epoch = raft term, high_watermark = commit.
 */
size_t controller_quorum_state(struct controller *ctl, struct controller_voter_state *out,
                               size_t max, int32_t *leader_id, int32_t *leader_epoch,
                               int64_t *high_watermark);
/* Hands out the next block of METADATA_PRODUCER_ID_BLOCK producer ids to `broker_id`. */
int controller_allocate_producer_ids(struct controller *ctl, int32_t broker_id,
                                     controller_done_fn done, void *arg);

#endif
