/*
 * Controller commands (private to src/cluster/): a copy of an admin request, its validation
 * against a scratch image, and the metadata records it turns into.
 *
 * A command is created on the caller's thread (everything copied into its arena) and from then
 * on touched only by the controller thread.
 */
#ifndef GREGOR_CLUSTER_COMMANDS_H
#define GREGOR_CLUSTER_COMMANDS_H

#include <raft.h>
#include <stdarg.h>

#include "base/arena.h"
#include "cluster/controller.h"
#include "cluster/image.h"
#include "cluster/records.h"

enum command_type {
    COMMAND_CREATE_TOPICS,
    COMMAND_DELETE_TOPICS,
    COMMAND_CREATE_PARTITIONS,
    COMMAND_ALTER_CONFIGS,
    COMMAND_INCREMENTAL_ALTER_CONFIGS,
    COMMAND_REGISTER_BROKER,
    COMMAND_ALLOCATE_PRODUCER_IDS,
    COMMAND_BROKER_HEARTBEAT,
    COMMAND_FENCE_BROKER,        /* internal: a broker's session expired */
    COMMAND_ELECT_PREFERRED,     /* internal rebalance */
    COMMAND_ELECT_LEADERS,       /* ElectLeaders */
    COMMAND_REASSIGN,            /* AlterPartitionReassignments */
    COMMAND_ALTER_PARTITION,     /* AlterPartition (a leader's ISR change) */
    COMMAND_REGISTER_CONTROLLER, /* internal: the active controller's own endpoint */
    COMMAND_ALTER_CLIENT_QUOTAS, /* AlterClientQuotas (quota_commands.c) */
    COMMAND_ALTER_SCRAM,         /* AlterUserScramCredentials (scram_commands.c) */
    COMMAND_ALTER_ACLS,          /* CreateAcls / DeleteAcls (acl_commands.c) */
};

struct liveness;

/* What validation may consult besides the scratch image (controller thread only). */
struct command_defaults {
    int32_t num_partitions;
    int16_t replication_factor;
    bool unclean_leader_election; /* unclean.leader.election.enable */
    struct liveness *live;        /* broker sessions; NULL in unit tests */
    uint64_t now_ms;              /* monotonic time of this validation pass */
};

struct command_heartbeat {
    int32_t broker_id;
    int64_t broker_epoch;
    int64_t metadata_offset; /* -1: the broker has not caught up with its registration */
    bool want_fence;
    bool want_shutdown;
};

struct command_elect {
    const char *topic; /* NULL: every topic */
    int32_t partition; /* -1: every partition */
    int max_changes;
    /* ElectLeaders: type and partitions (n_parts == 0 with all_partitions: every partition) */
    int8_t election_type;
    bool all_partitions;
    size_t n_parts;
    struct controller_partition_ref *parts;
};

struct command {
    struct command *next;
    struct controller *ctl;
    enum command_type type;
    bool validate_only;
    struct arena arena; /* request copy, results, messages */
    size_t n;           /* number of request items = number of results */
    union {
        struct controller_new_topic *create;
        struct controller_topic_ref *remove;
        struct controller_partition_increase *partitions;
        struct controller_config_alter *alter;
        struct metadata_rec_broker broker;
        int32_t producer_broker_id;
        struct command_heartbeat heartbeat;
        int32_t fence_broker_id;
        struct command_elect elect;
        struct controller_reassignment *reassign;
        struct controller_alter_partition alter_partition;
        struct metadata_rec_endpoint controller;
        struct controller_quota_alter *quotas;
        struct command_scram *scram; /* n entries */
        struct controller_acl_change *acls;
    };
    struct metadata_rec_endpoint observer; /* register_broker: host NULL unless broker-only */
    struct controller_topic_result *results;
    struct controller_partition_result *partition_results; /* AlterPartition, one per item */
    struct controller_result result;
    controller_done_fn done;
    void *done_arg;
    struct raft_apply apply;
};

/* One AlterUserScramCredentials change, keys already derived (scram_commands.c). */
struct command_scram {
    struct metadata_rec_scram_credential rec; /* remove = !upsert */
    bool derived; /* upsert: stored/server keys could be derived (mechanism known) */
};

/* Constructors copy the request; NULL on allocation failure. */
struct command *command_new_create_topics(const struct controller_new_topic *t, size_t n,
                                          bool validate_only);
struct command *command_new_delete_topics(const struct controller_topic_ref *t, size_t n);
struct command *command_new_create_partitions(const struct controller_partition_increase *t,
                                              size_t n, bool validate_only);
struct command *command_new_alter_configs(const struct controller_config_alter *t, size_t n,
                                          bool incremental, bool validate_only);
struct command *command_new_register_broker(const struct controller_broker_registration *reg);
struct command *command_new_broker_heartbeat(const struct command_heartbeat *hb);
struct command *command_new_fence_broker(int32_t broker_id);
struct command *command_new_elect_preferred(const char *topic, int32_t partition, int max_changes);
struct command *command_new_reassign(const struct controller_reassignment *items, size_t n);
struct command *command_new_elect_leaders(int8_t type, const struct controller_partition_ref *p,
                                          size_t n, bool all);
struct command *command_new_allocate_producer_ids(int32_t broker_id);
struct command *command_new_alter_partition(const struct controller_alter_partition *req);
struct command *command_new_register_controller(int32_t id, const char *host, int32_t port);
struct command *command_new_alter_client_quotas(const struct controller_quota_alter *e, size_t n,
                                                bool validate_only);
struct command *command_new_alter_scram(const struct controller_scram_change *c, size_t n);
struct command *command_new_alter_acls(const struct controller_acl_change *changes, size_t n);
void command_free(struct command *cmd);
/* An empty command of `type` with n results; NULL on allocation failure. */
struct command *command_alloc(enum command_type type, size_t n);

/*
 * Validates the command against `scratch`, fills its results, and for what is valid (and not
 * validate_only) appends records to `out` and applies them to `scratch`, so that the next
 * command sees them. Returns the number of records appended, or -ENOMEM.
 */
int command_validate(struct command *cmd, struct metadata_image *scratch,
                     const struct command_defaults *defaults, struct metadata_buf *out);

/* Sets a request-level error on every result (and the request) of a command. */
void command_fail(struct command *cmd, int16_t code, const char *message);

/* ---- helpers shared by the command files ---- */

/* Appends `rec` to `out` and applies it to `scratch`. Returns 0 or -ENOMEM. */
int command_emit(struct metadata_image *scratch, struct metadata_buf *out,
                 const struct metadata_record *rec);
/* Sets a result's error with a printf-style message allocated in the command's arena. */
void command_set_error(struct command *cmd, struct controller_topic_result *r, int16_t code,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
char *command_strdup(struct command *cmd, const char *s);
/* A vprintf-formatted message (at most 511 bytes) in the command's arena; NULL on ENOMEM. */
char *command_vformat(struct command *cmd, const char *fmt, va_list ap);

/* Validators, one per family (topic_commands.c, config_commands.c). Return as command_validate. */
int command_validate_create_topics(struct command *cmd, struct metadata_image *scratch,
                                   const struct command_defaults *defaults,
                                   struct metadata_buf *out);
int command_validate_delete_topics(struct command *cmd, struct metadata_image *scratch,
                                   struct metadata_buf *out);
int command_validate_create_partitions(struct command *cmd, struct metadata_image *scratch,
                                       struct metadata_buf *out);
int command_validate_alter_configs(struct command *cmd, struct metadata_image *scratch,
                                   struct metadata_buf *out);

/* Broker lifecycle (broker_commands.c). Return as command_validate. */
int command_validate_register_broker(struct command *cmd, struct metadata_image *scratch,
                                     const struct command_defaults *d, struct metadata_buf *out);
int command_validate_heartbeat(struct command *cmd, struct metadata_image *scratch,
                               const struct command_defaults *d, struct metadata_buf *out);
int command_validate_fence_broker(struct command *cmd, struct metadata_image *scratch,
                                  const struct command_defaults *d, struct metadata_buf *out);
int command_validate_register_controller(struct command *cmd, struct metadata_image *scratch,
                                         struct metadata_buf *out);
int command_validate_elect_preferred(struct command *cmd, struct metadata_image *scratch,
                                     struct metadata_buf *out);
int command_validate_elect_leaders(struct command *cmd, struct metadata_image *scratch,
                                   struct metadata_buf *out);
int command_validate_reassign(struct command *cmd, struct metadata_image *scratch,
                              const struct command_defaults *d, struct metadata_buf *out);
/* AlterClientQuotas (quota_commands.c). Returns as command_validate. */
int command_validate_alter_client_quotas(struct command *cmd, struct metadata_image *scratch,
                                         struct metadata_buf *out);
/* AlterUserScramCredentials (scram_commands.c). Returns as command_validate. */
int command_validate_alter_scram(struct command *cmd, struct metadata_image *scratch,
                                 struct metadata_buf *out);
/* CreateAcls / DeleteAcls (acl_commands.c). Returns as command_validate. */
int command_validate_alter_acls(struct command *cmd, struct metadata_image *scratch,
                                struct metadata_buf *out);
/* AlterPartition (isr_commands.c). Returns as command_validate. */
int command_validate_alter_partition(struct command *cmd, struct metadata_image *scratch,
                                     struct metadata_buf *out);

/*
 * Completes the ongoing reassignment of a partition once every target replica is in its ISR
 * (KIP-455): replicas become the target, the ISR is kept within it and a leader outside it
 * hands over (reassign_commands.c). Returns the number of records emitted (0 when no
 * reassignment is in progress or a target replica is still out of sync), or -ENOMEM.
 */
int reassign_complete_if_in_sync(struct metadata_image *scratch, struct metadata_buf *out,
                                 const uint8_t *topic_id, int32_t partition);

/* Leader election (elections.c): each returns the number of records emitted, or -ENOMEM. */
int elect_away_from(struct metadata_image *scratch, struct metadata_buf *out, int32_t broker,
                    bool unclean_default);
int elect_leaderless(struct metadata_image *scratch, struct metadata_buf *out,
                     bool unclean_default);
int elect_preferred(struct metadata_image *scratch, struct metadata_buf *out,
                    const char *only_topic, int32_t only_partition, int max_changes);
size_t elect_count_led_by(const struct metadata_image *img, int32_t broker);
/*
 * ElectLeaders for one partition (topic index ti in topics_by_name): type 0 preferred, 1
 * unclean. Returns the Kafka error for the partition (0 elected, ELECTION_NOT_NEEDED,
 * PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE) or -ENOMEM.
 */
int elect_partition(struct metadata_image *scratch, struct metadata_buf *out, size_t ti,
                    uint32_t pi, int8_t type);

/* Kafka's topic name rule; returns 0 or KAFKA_ERR_INVALID_TOPIC_EXCEPTION with a message. */
int command_check_topic_name(const char *name, char *msg, size_t msglen);

#endif
