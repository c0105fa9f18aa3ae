/*
 * Broker configuration with Kafka's property names (server.properties / --override).
 *
 * The table in config.c lists every property Gregor understands, its type, default and valid
 * range; anything else is an error naming the property, as is a value that does not parse or
 * is out of range. The parsed struct is immutable after start-up and shared read-only by all
 * threads.
 */
#ifndef GREGOR_BROKER_CONFIG_H
#define GREGOR_BROKER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/properties.h"

#define CONFIG_MAX_LISTENERS 8
#define CONFIG_MAX_LISTENER_PROPS 24

/* process.roles as bits (config_validate sets broker_config.roles). */
#define CONFIG_ROLE_BROKER 1
#define CONFIG_ROLE_CONTROLLER 2

/* Security protocols (listener.security.protocol.map values). */
enum security_protocol {
    SECURITY_PLAINTEXT,
    SECURITY_SSL,
    SECURITY_SASL_PLAINTEXT,
    SECURITY_SASL_SSL,
};

struct listener_config {
    char name[32];  /* PLAINTEXT, CONTROLLER, ... */
    char host[256]; /* "" = all interfaces */
    int port;
    enum security_protocol protocol; /* set by config_validate from the protocol map */
};

/* A listener.name.NAME.PROPERTY override (ssl.*, sasl.enabled.mechanisms, MECH.sasl.jaas.config),
 * kept as given; looked up with config_listener_prop(). */
struct config_listener_prop {
    char key[192]; /* the whole property name */
    char value[8192];
};

struct broker_config {
    int32_t node_id;
    struct listener_config listeners[CONFIG_MAX_LISTENERS];
    int num_listeners;
    struct listener_config advertised[CONFIG_MAX_LISTENERS];
    int num_advertised;
    char log_dirs[1024];         /* first of log.dirs is used for metadata */
    char metadata_log_dir[1024]; /* metadata.log.dir; "" = the first of log.dirs */
    char process_roles[64];
    uint8_t roles; /* CONFIG_ROLE_* bits parsed from process_roles by config_validate */
    char controller_quorum_voters[1024];
    char controller_listener_names[64];
    /* controller.quorum.bootstrap.servers: the controllers' client listeners, host:port,...
     * (Kafka's KIP-853 name): where a broker-only node registers before it has metadata. */
    char controller_quorum_bootstrap_servers[1024];
    /* Gregor: host:port where a broker-only node's libraft standby transport listens. */
    char metadata_observer_listener[300];
    /* security (listeners.c in the broker turns these into TLS contexts and user stores) */
    char listener_security_protocol_map[512]; /* "" = Kafka's default: names map to themselves */
    char inter_broker_listener_name[32];      /* "" = first PLAINTEXT client listener */
    char sasl_enabled_mechanisms[128];        /* "" = PLAIN,SCRAM-SHA-256,SCRAM-SHA-512 */
    char sasl_mechanism_inter_broker[32];     /* "" = PLAIN (Kafka's GSSAPI is not offered) */
    int32_t sasl_server_max_receive_size;     /* 524288 */
    int64_t connections_max_reauth_ms;        /* 0: sessions never expire (KIP-368) */
    char sasl_credentials_file[1024];         /* Gregor: USER=PASSWORD lines */
    char ssl_keystore_type[16];
    char ssl_keystore_location[1024];
    char ssl_key_password[256];
    char ssl_keystore_certificate_chain[8192];
    char ssl_keystore_key[8192];
    char ssl_truststore_type[16];
    char ssl_truststore_location[1024];
    char ssl_truststore_certificates[8192];
    char ssl_client_auth[16];
    char ssl_enabled_protocols[64];
    char ssl_cipher_suites[1024];
    char ssl_principal_mapping_rules[2048]; /* security/principal_mapper.h */
    /* ACLs (broker/authorizer.c): "" = no authorizer, every request allowed */
    char authorizer_class_name[128];
    char super_users[2048]; /* "User:a;User:b" */
    bool allow_everyone_if_no_acl_found;
    char ssl_endpoint_identification_algorithm[32]; /* accepted; a server does not check it */
    struct config_listener_prop listener_props[CONFIG_MAX_LISTENER_PROPS];
    int num_listener_props;
    char cluster_id[64];
    int32_t num_partitions;
    int16_t default_replication_factor;
    bool auto_create_topics_enable;
    bool delete_topic_enable;
    int32_t socket_request_max_bytes;
    int32_t num_io_threads;      /* 0 = one per core */
    int32_t num_network_threads; /* accepted for compatibility; I/O workers do both */
    int64_t connections_max_idle_ms;
    int32_t max_connections;
    int32_t max_connections_per_ip;
    int32_t message_max_bytes;
    int32_t min_insync_replicas;
    char compression_type[16];
    char log_message_timestamp_type[16];
    int64_t log_message_timestamp_before_max_ms;
    int64_t log_message_timestamp_after_max_ms;
    /* storage */
    int64_t log_segment_bytes;
    int64_t log_roll_ms;
    int64_t log_retention_ms;
    int64_t log_retention_bytes;
    int64_t log_retention_check_interval_ms;
    int32_t log_index_interval_bytes;
    int32_t log_index_size_max_bytes;
    int64_t log_flush_interval_messages;
    int64_t log_flush_interval_ms;
    int64_t log_segment_delete_delay_ms;
    int64_t log_page_cache_max_bytes; /* -1: no bound (page_cache_budget.h) */
    int32_t num_recovery_threads_per_data_dir;
    char log_cleanup_policy[32];
    bool log_cleaner_enable;
    int64_t log_cleaner_delete_retention_ms;
    double log_cleaner_min_cleanable_ratio;
    int32_t log_cleaner_threads;                /* accepted; Gregor runs one cleaner thread */
    double log_cleaner_io_max_bytes_per_second; /* compaction I/O throttle */
    int64_t log_cleaner_dedupe_buffer_size;     /* accepted (no fixed-size dedupe map) */
    int32_t log_cleaner_io_buffer_size;         /* accepted */
    double log_cleaner_io_buffer_load_factor;   /* accepted */
    int64_t log_cleaner_backoff_ms;             /* how often the cleaner looks for work */
    /* groups and offsets */
    int32_t offsets_topic_num_partitions;
    int16_t offsets_topic_replication_factor;
    int32_t offsets_topic_segment_bytes;
    int64_t offsets_retention_minutes;
    int32_t group_initial_rebalance_delay_ms;
    int32_t group_min_session_timeout_ms;
    int32_t group_max_session_timeout_ms;
    char group_coordinator_rebalance_protocols[64];   /* "classic,consumer" */
    int32_t group_consumer_heartbeat_interval_ms;     /* 5000 (KIP-848) */
    int32_t group_consumer_min_heartbeat_interval_ms; /* 5000 */
    int32_t group_consumer_max_heartbeat_interval_ms; /* 15000 */
    int32_t group_consumer_session_timeout_ms;        /* 45000 */
    int32_t group_consumer_min_session_timeout_ms;    /* 45000 */
    int32_t group_consumer_max_session_timeout_ms;    /* 60000 */
    int32_t group_consumer_max_size;                  /* INT32_MAX */
    char group_consumer_assignors[64];                /* "uniform,range" */
    /* group.consumer.migration.policy: disabled, upgrade, downgrade or bidirectional (the
     * default), case-insensitive as Kafka's ConsumerGroupMigrationPolicy */
    char group_consumer_migration_policy[16];
    /* transactions (src/txn/) */
    int32_t transaction_state_log_num_partitions;     /* 50 */
    int16_t transaction_state_log_replication_factor; /* 3, capped by live brokers */
    int32_t transaction_state_log_min_isr;            /* 2, capped by the replication factor */
    int32_t transaction_state_log_segment_bytes;      /* 104857600 */
    int32_t transaction_max_timeout_ms;               /* 900000 */
    int32_t transaction_abort_cleanup_interval_ms;    /* 10000: the timeout sweep */
    /* producers and replication */
    int64_t transactional_id_expiration_ms;
    int64_t producer_id_expiration_ms;
    int64_t replica_lag_time_max_ms;
    int32_t num_replica_fetchers;             /* num.replica.fetchers, 1 (threads per leader) */
    int32_t replica_fetch_max_bytes;          /* replica.fetch.max.bytes, 1 MiB per partition */
    int32_t replica_fetch_wait_max_ms;        /* replica.fetch.wait.max.ms, 500 */
    int32_t replica_fetch_min_bytes;          /* replica.fetch.min.bytes, 1 */
    int32_t replica_fetch_response_max_bytes; /* replica.fetch.response.max.bytes, 10 MiB */
    int32_t replica_fetch_backoff_ms;         /* replica.fetch.backoff.ms, 1000 */
    bool acks_all_fsync; /* Gregor: acks=all waits for fdatasync on every in-sync replica */
    /* Gregor: fetched records go to clients on this host by pread + write, not sendfile */
    bool fetch_local_copy_enable;
    /* transaction.partition.verification.enable (true): KIP-890 part 1 (txn_verifier.h) */
    bool txn_partition_verification;
    bool unclean_leader_election_enable;
    /* cluster membership */
    char broker_rack[64];
    /* replica.selector.class: "" (Kafka's default: consumers fetch from leaders only) or Kafka's
     * RackAwareReplicaSelector (KIP-392); config_validate() sets rack_aware_selector from it. */
    char replica_selector_class[256];
    bool rack_aware_selector;
    int64_t broker_heartbeat_interval_ms;
    int64_t broker_session_timeout_ms;
    bool auto_leader_rebalance_enable;
    int64_t leader_imbalance_check_interval_seconds;
    /* client quotas (KIP-546): samples of the measured rates and their length */
    int32_t quota_window_num;          /* quota.window.num, 11 (Kafka's range is >= 1) */
    int32_t quota_window_size_seconds; /* quota.window.size.seconds, 1 */
    /* Gregor's quota.inactive.sensor.expiration.ms (Kafka: a fixed hour), 3600000 */
    int64_t quota_inactive_sensor_expiration_ms;
    /* operations */
    char metrics_listener[256];
    char console_listener[256]; /* Gregor: web console, http://HOST:PORT; "" = off */
    /* Gregor: how often the console samples group lag and topic traffic */
    int32_t console_sample_interval_ms;
    /* Gregor: how long a console login lasts (security on) */
    int64_t console_session_timeout_ms;
    char log_level[16];
};

/* Fills defaults. */
void config_defaults(struct broker_config *c);

/*
 * Applies every property to c. On error writes one line naming the property and the problem to
 * err (size errlen) and returns -EINVAL.
 */
int config_apply(struct broker_config *c, const struct properties *props, char *err, size_t errlen);

/* Checks cross-property rules and that listeners/log dirs are usable; same error contract. */
int config_validate(struct broker_config *c, char *err, size_t errlen);
/* group.consumer.migration.policy as CONFIG_MIGRATION_* bits (case-insensitive), -1 unknown. */
#define CONFIG_MIGRATION_UPGRADE 1
#define CONFIG_MIGRATION_DOWNGRADE 2
int config_migration_policy(const char *value);

/* Parses "NAME://host:port[,NAME://host:port...]". Returns count or -EINVAL. */
int config_parse_listeners(const char *s, struct listener_config *out, int max);

/*
 * The listener this node registers in the metadata log and its own tools connect to:
 * inter.broker.listener.name, else the first PLAINTEXT client listener, else the first client
 * (non-controller) listener.
 */
const struct listener_config *config_client_listener(const struct broker_config *c);

/* True for a controller listener (controller.listener.names, default CONTROLLER). */
bool config_is_controller_listener(const struct broker_config *c, const char *name);

/* listener.name.LISTENER.PROP (listener name matched case-insensitively), or NULL. */
const char *config_listener_prop(const struct broker_config *c, const char *listener,
                                 const char *prop);

/* The advertised.listeners entry named like l, or NULL. */
const struct listener_config *config_advertised_for(const struct broker_config *c,
                                                    const struct listener_config *l);

/* "PLAINTEXT", "SSL", "SASL_PLAINTEXT" or "SASL_SSL". */
const char *config_protocol_name(enum security_protocol p);

/* The controller listener (controller.listener.names, default CONTROLLER), or NULL. */
const struct listener_config *config_controller_listener(const struct broker_config *c);

/* The address advertised to clients for the client listener. */
const struct listener_config *config_advertised_listener(const struct broker_config *c);

/* Writes the property's current value as text, for DescribeConfigs of the broker; -EACCES for
 * a secret (ssl.key.password, ssl.keystore.key), which is never shown. */
int config_describe(const struct broker_config *c, const char *name, char *buf, size_t len);

/* Iterates over known property names; returns NULL past the end. */
const char *config_property_name(size_t i);

#endif
