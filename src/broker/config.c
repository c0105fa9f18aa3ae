/*
 * Broker configuration table. Each entry maps a Kafka property name to a field of
 * struct broker_config with its type and range; config_apply() walks the given properties and
 * rejects anything not in the table. Synonyms (Kafka's older names, e.g. log.retention.hours)
 * convert units into the canonical field.
 */
#include "broker/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/quorum.h"
#include "console/console.h"
#include "metrics/metrics.h"

enum config_type { CT_INT32, CT_INT16, CT_INT64, CT_BOOL, CT_STRING, CT_DOUBLE, CT_LISTENERS };

struct config_entry {
    const char *name;
    enum config_type type;
    size_t offset;
    size_t size;      /* for strings: buffer size */
    int64_t min, max; /* for integers */
    int64_t scale;    /* multiply the parsed integer (hours -> ms), 0 = 1 */
};

#define F(field) offsetof(struct broker_config, field), sizeof(((struct broker_config *)0)->field)
#define NOLIM INT64_MIN, INT64_MAX

static const struct config_entry config_table[] = {
    {"node.id", CT_INT32, F(node_id), 0, INT32_MAX, 0},
    {"broker.id", CT_INT32, F(node_id), 0, INT32_MAX, 0},
    {"listeners", CT_LISTENERS, F(listeners), 0, 0, 0},
    {"advertised.listeners", CT_LISTENERS, F(advertised), 0, 0, 0},
    {"log.dirs", CT_STRING, F(log_dirs), 0, 0, 0},
    {"log.dir", CT_STRING, F(log_dirs), 0, 0, 0},
    {"metadata.log.dir", CT_STRING, F(metadata_log_dir), 0, 0, 0},
    {"process.roles", CT_STRING, F(process_roles), 0, 0, 0},
    {"controller.quorum.voters", CT_STRING, F(controller_quorum_voters), 0, 0, 0},
    {"controller.listener.names", CT_STRING, F(controller_listener_names), 0, 0, 0},
    {"controller.quorum.bootstrap.servers", CT_STRING, F(controller_quorum_bootstrap_servers), 0, 0,
     0},
    {"metadata.observer.listener", CT_STRING, F(metadata_observer_listener), 0, 0, 0},
    {"listener.security.protocol.map", CT_STRING, F(listener_security_protocol_map), 0, 0, 0},
    {"inter.broker.listener.name", CT_STRING, F(inter_broker_listener_name), 0, 0, 0},
    {"sasl.enabled.mechanisms", CT_STRING, F(sasl_enabled_mechanisms), 0, 0, 0},
    {"sasl.mechanism.inter.broker.protocol", CT_STRING, F(sasl_mechanism_inter_broker), 0, 0, 0},
    {"sasl.server.max.receive.size", CT_INT32, F(sasl_server_max_receive_size), 1, INT32_MAX, 0},
    {"connections.max.reauth.ms", CT_INT64, F(connections_max_reauth_ms), 0, INT64_MAX, 0},
    {"sasl.credentials.file", CT_STRING, F(sasl_credentials_file), 0, 0, 0},
    {"ssl.keystore.type", CT_STRING, F(ssl_keystore_type), 0, 0, 0},
    {"ssl.keystore.location", CT_STRING, F(ssl_keystore_location), 0, 0, 0},
    {"ssl.key.password", CT_STRING, F(ssl_key_password), 0, 0, 0},
    {"ssl.keystore.certificate.chain", CT_STRING, F(ssl_keystore_certificate_chain), 0, 0, 0},
    {"ssl.keystore.key", CT_STRING, F(ssl_keystore_key), 0, 0, 0},
    {"ssl.truststore.type", CT_STRING, F(ssl_truststore_type), 0, 0, 0},
    {"ssl.truststore.location", CT_STRING, F(ssl_truststore_location), 0, 0, 0},
    {"ssl.truststore.certificates", CT_STRING, F(ssl_truststore_certificates), 0, 0, 0},
    {"ssl.client.auth", CT_STRING, F(ssl_client_auth), 0, 0, 0},
    {"ssl.enabled.protocols", CT_STRING, F(ssl_enabled_protocols), 0, 0, 0},
    {"ssl.cipher.suites", CT_STRING, F(ssl_cipher_suites), 0, 0, 0},
    {"ssl.principal.mapping.rules", CT_STRING, F(ssl_principal_mapping_rules), 0, 0, 0},
    {"authorizer.class.name", CT_STRING, F(authorizer_class_name), 0, 0, 0},
    {"super.users", CT_STRING, F(super_users), 0, 0, 0},
    {"allow.everyone.if.no.acl.found", CT_BOOL, F(allow_everyone_if_no_acl_found), 0, 0, 0},
    {"ssl.endpoint.identification.algorithm", CT_STRING, F(ssl_endpoint_identification_algorithm),
     0, 0, 0},
    {"cluster.id", CT_STRING, F(cluster_id), 0, 0, 0},
    {"num.partitions", CT_INT32, F(num_partitions), 1, 1000000, 0},
    {"default.replication.factor", CT_INT16, F(default_replication_factor), 1, INT16_MAX, 0},
    {"auto.create.topics.enable", CT_BOOL, F(auto_create_topics_enable), 0, 0, 0},
    {"delete.topic.enable", CT_BOOL, F(delete_topic_enable), 0, 0, 0},
    {"socket.request.max.bytes", CT_INT32, F(socket_request_max_bytes), 1024, INT32_MAX, 0},
    {"num.io.threads", CT_INT32, F(num_io_threads), 0, 256, 0},
    {"num.network.threads", CT_INT32, F(num_network_threads), 1, 256, 0},
    {"connections.max.idle.ms", CT_INT64, F(connections_max_idle_ms), -1, INT64_MAX, 0},
    {"max.connections", CT_INT32, F(max_connections), 0, INT32_MAX, 0},
    {"max.connections.per.ip", CT_INT32, F(max_connections_per_ip), 0, INT32_MAX, 0},
    {"message.max.bytes", CT_INT32, F(message_max_bytes), 0, INT32_MAX, 0},
    {"min.insync.replicas", CT_INT32, F(min_insync_replicas), 1, INT32_MAX, 0},
    {"compression.type", CT_STRING, F(compression_type), 0, 0, 0},
    {"log.message.timestamp.type", CT_STRING, F(log_message_timestamp_type), 0, 0, 0},
    {"log.message.timestamp.before.max.ms", CT_INT64, F(log_message_timestamp_before_max_ms), 0,
     INT64_MAX, 0},
    {"log.message.timestamp.after.max.ms", CT_INT64, F(log_message_timestamp_after_max_ms), 0,
     INT64_MAX, 0},
    {"log.message.timestamp.difference.max.ms", CT_INT64, F(log_message_timestamp_before_max_ms), 0,
     INT64_MAX, 0},
    {"log.segment.bytes", CT_INT64, F(log_segment_bytes), 14, INT32_MAX, 0},
    {"log.roll.ms", CT_INT64, F(log_roll_ms), 1, INT64_MAX, 0},
    {"log.roll.hours", CT_INT64, F(log_roll_ms), 1, INT32_MAX, 3600000},
    {"log.retention.ms", CT_INT64, F(log_retention_ms), -1, INT64_MAX, 0},
    {"log.retention.minutes", CT_INT64, F(log_retention_ms), -1, INT32_MAX, 60000},
    {"log.retention.hours", CT_INT64, F(log_retention_ms), -1, INT32_MAX, 3600000},
    {"log.retention.bytes", CT_INT64, F(log_retention_bytes), -1, INT64_MAX, 0},
    {"log.retention.check.interval.ms", CT_INT64, F(log_retention_check_interval_ms), 1, INT64_MAX,
     0},
    {"log.index.interval.bytes", CT_INT32, F(log_index_interval_bytes), 0, INT32_MAX, 0},
    {"log.index.size.max.bytes", CT_INT32, F(log_index_size_max_bytes), 4, INT32_MAX, 0},
    {"log.flush.interval.messages", CT_INT64, F(log_flush_interval_messages), 1, INT64_MAX, 0},
    {"log.flush.interval.ms", CT_INT64, F(log_flush_interval_ms), 0, INT64_MAX, 0},
    {"log.segment.delete.delay.ms", CT_INT64, F(log_segment_delete_delay_ms), 0, INT64_MAX, 0},
    {"file.delete.delay.ms", CT_INT64, F(log_segment_delete_delay_ms), 0, INT64_MAX, 0},
    {"log.page.cache.max.bytes", CT_INT64, F(log_page_cache_max_bytes), -1, INT64_MAX, 0},
    {"num.recovery.threads.per.data.dir", CT_INT32, F(num_recovery_threads_per_data_dir), 1, 256,
     0},
    {"log.cleanup.policy", CT_STRING, F(log_cleanup_policy), 0, 0, 0},
    {"log.cleaner.enable", CT_BOOL, F(log_cleaner_enable), 0, 0, 0},
    {"log.cleaner.delete.retention.ms", CT_INT64, F(log_cleaner_delete_retention_ms), 0, INT64_MAX,
     0},
    {"log.cleaner.min.cleanable.ratio", CT_DOUBLE, F(log_cleaner_min_cleanable_ratio), 0, 1, 0},
    {"log.cleaner.threads", CT_INT32, F(log_cleaner_threads), 0, INT32_MAX, 0},
    {"log.cleaner.io.max.bytes.per.second", CT_DOUBLE, F(log_cleaner_io_max_bytes_per_second),
     NOLIM, 0},
    {"log.cleaner.dedupe.buffer.size", CT_INT64, F(log_cleaner_dedupe_buffer_size), NOLIM, 0},
    {"log.cleaner.io.buffer.size", CT_INT32, F(log_cleaner_io_buffer_size), 0, INT32_MAX, 0},
    {"log.cleaner.io.buffer.load.factor", CT_DOUBLE, F(log_cleaner_io_buffer_load_factor), NOLIM,
     0},
    {"log.cleaner.backoff.ms", CT_INT64, F(log_cleaner_backoff_ms), 0, INT64_MAX, 0},
    {"offsets.topic.num.partitions", CT_INT32, F(offsets_topic_num_partitions), 1, 100000, 0},
    {"offsets.topic.replication.factor", CT_INT16, F(offsets_topic_replication_factor), 1,
     INT16_MAX, 0},
    {"offsets.topic.segment.bytes", CT_INT32, F(offsets_topic_segment_bytes), 1, INT32_MAX, 0},
    {"offsets.retention.minutes", CT_INT64, F(offsets_retention_minutes), 1, INT32_MAX, 0},
    {"group.initial.rebalance.delay.ms", CT_INT32, F(group_initial_rebalance_delay_ms), 0,
     INT32_MAX, 0},
    {"group.min.session.timeout.ms", CT_INT32, F(group_min_session_timeout_ms), 0, INT32_MAX, 0},
    {"group.max.session.timeout.ms", CT_INT32, F(group_max_session_timeout_ms), 0, INT32_MAX, 0},
    {"group.coordinator.rebalance.protocols", CT_STRING, F(group_coordinator_rebalance_protocols),
     0, 0, 0},
    {"group.consumer.heartbeat.interval.ms", CT_INT32, F(group_consumer_heartbeat_interval_ms), 1,
     INT32_MAX, 0},
    {"group.consumer.min.heartbeat.interval.ms", CT_INT32,
     F(group_consumer_min_heartbeat_interval_ms), 1, INT32_MAX, 0},
    {"group.consumer.max.heartbeat.interval.ms", CT_INT32,
     F(group_consumer_max_heartbeat_interval_ms), 1, INT32_MAX, 0},
    {"group.consumer.session.timeout.ms", CT_INT32, F(group_consumer_session_timeout_ms), 1,
     INT32_MAX, 0},
    {"group.consumer.min.session.timeout.ms", CT_INT32, F(group_consumer_min_session_timeout_ms), 1,
     INT32_MAX, 0},
    {"group.consumer.max.session.timeout.ms", CT_INT32, F(group_consumer_max_session_timeout_ms), 1,
     INT32_MAX, 0},
    {"group.consumer.max.size", CT_INT32, F(group_consumer_max_size), 1, INT32_MAX, 0},
    {"group.consumer.assignors", CT_STRING, F(group_consumer_assignors), 0, 0, 0},
    {"group.consumer.migration.policy", CT_STRING, F(group_consumer_migration_policy), 0, 0, 0},
    {"transaction.state.log.num.partitions", CT_INT32, F(transaction_state_log_num_partitions), 1,
     100000, 0},
    {"transaction.state.log.replication.factor", CT_INT16,
     F(transaction_state_log_replication_factor), 1, INT16_MAX, 0},
    {"transaction.state.log.min.isr", CT_INT32, F(transaction_state_log_min_isr), 1, INT32_MAX, 0},
    {"transaction.state.log.segment.bytes", CT_INT32, F(transaction_state_log_segment_bytes), 1,
     INT32_MAX, 0},
    {"transaction.max.timeout.ms", CT_INT32, F(transaction_max_timeout_ms), 1, INT32_MAX, 0},
    {"transaction.abort.timed.out.transaction.cleanup.interval.ms", CT_INT32,
     F(transaction_abort_cleanup_interval_ms), 1, INT32_MAX, 0},
    {"transactional.id.expiration.ms", CT_INT64, F(transactional_id_expiration_ms), 1, INT32_MAX,
     0},
    {"producer.id.expiration.ms", CT_INT64, F(producer_id_expiration_ms), 1, INT32_MAX, 0},
    {"replica.lag.time.max.ms", CT_INT64, F(replica_lag_time_max_ms), 1, INT64_MAX, 0},
    {"num.replica.fetchers", CT_INT32, F(num_replica_fetchers), 1, 64, 0},
    {"replica.fetch.max.bytes", CT_INT32, F(replica_fetch_max_bytes), 0, INT32_MAX, 0},
    {"replica.fetch.wait.max.ms", CT_INT32, F(replica_fetch_wait_max_ms), 0, INT32_MAX, 0},
    {"replica.fetch.min.bytes", CT_INT32, F(replica_fetch_min_bytes), 1, INT32_MAX, 0},
    {"replica.fetch.response.max.bytes", CT_INT32, F(replica_fetch_response_max_bytes), 0,
     INT32_MAX, 0},
    {"replica.fetch.backoff.ms", CT_INT32, F(replica_fetch_backoff_ms), 0, INT32_MAX, 0},
    {"acks.all.fsync", CT_BOOL, F(acks_all_fsync), 0, 0, 0},
    {"fetch.local.copy.enable", CT_BOOL, F(fetch_local_copy_enable), 0, 0, 0},
    {"transaction.partition.verification.enable", CT_BOOL, F(txn_partition_verification), 0, 0, 0},
    {"unclean.leader.election.enable", CT_BOOL, F(unclean_leader_election_enable), 0, 0, 0},
    {"broker.rack", CT_STRING, F(broker_rack), 0, 0, 0},
    {"replica.selector.class", CT_STRING, F(replica_selector_class), 0, 0, 0},
    {"broker.heartbeat.interval.ms", CT_INT64, F(broker_heartbeat_interval_ms), 1, 3600000, 0},
    {"broker.session.timeout.ms", CT_INT64, F(broker_session_timeout_ms), 1, 3600000, 0},
    {"auto.leader.rebalance.enable", CT_BOOL, F(auto_leader_rebalance_enable), 0, 0, 0},
    {"leader.imbalance.check.interval.seconds", CT_INT64,
     F(leader_imbalance_check_interval_seconds), 1, 86400, 0},
    {"quota.window.num", CT_INT32, F(quota_window_num), 2, 64, 0},
    {"quota.window.size.seconds", CT_INT32, F(quota_window_size_seconds), 1, 3600, 0},
    {"quota.inactive.sensor.expiration.ms", CT_INT64, F(quota_inactive_sensor_expiration_ms), 1,
     INT64_MAX, 0},
    {"metrics.listener", CT_STRING, F(metrics_listener), 0, 0, 0},
    {"console.listener", CT_STRING, F(console_listener), 0, 0, 0},
    {"console.sample.interval.ms", CT_INT32, F(console_sample_interval_ms), 100, 3600000, 0},
    {"console.session.timeout.ms", CT_INT64, F(console_session_timeout_ms), 1000, 604800000, 0},
    {"log.level", CT_STRING, F(log_level), 0, 0, 0},
};

#define CONFIG_COUNT (sizeof(config_table) / sizeof(config_table[0]))

void config_defaults(struct broker_config *c)
{
    memset(c, 0, sizeof(*c));
    c->node_id = 1;
    config_parse_listeners("PLAINTEXT://:9092", c->listeners, CONFIG_MAX_LISTENERS);
    c->num_listeners = 1;
    snprintf(c->log_dirs, sizeof(c->log_dirs), "/tmp/gregor-logs");
    snprintf(c->process_roles, sizeof(c->process_roles), "broker,controller");
    c->roles = CONFIG_ROLE_BROKER | CONFIG_ROLE_CONTROLLER;
    c->num_partitions = 1;
    c->default_replication_factor = 1;
    c->auto_create_topics_enable = true;
    c->delete_topic_enable = true;
    c->socket_request_max_bytes = 104857600;
    c->num_io_threads = 0;
    c->num_network_threads = 3;
    c->connections_max_idle_ms = 600000;
    c->max_connections = INT32_MAX;
    c->max_connections_per_ip = INT32_MAX;
    c->message_max_bytes = 1048588;
    c->min_insync_replicas = 1;
    snprintf(c->compression_type, sizeof(c->compression_type), "producer");
    snprintf(c->log_message_timestamp_type, sizeof(c->log_message_timestamp_type), "CreateTime");
    c->log_message_timestamp_before_max_ms = INT64_MAX;
    c->log_message_timestamp_after_max_ms = INT64_MAX;
    c->log_segment_bytes = 1073741824;
    c->log_roll_ms = 7LL * 24 * 3600 * 1000;
    c->log_retention_ms = 7LL * 24 * 3600 * 1000;
    c->log_retention_bytes = -1;
    c->log_retention_check_interval_ms = 300000;
    c->log_index_interval_bytes = 4096;
    c->log_index_size_max_bytes = 10485760;
    c->log_flush_interval_messages = INT64_MAX;
    c->log_flush_interval_ms = INT64_MAX;
    c->log_segment_delete_delay_ms = 60000;
    c->log_page_cache_max_bytes = 1LL << 30;
    c->num_recovery_threads_per_data_dir = 2;
    snprintf(c->log_cleanup_policy, sizeof(c->log_cleanup_policy), "delete");
    c->log_cleaner_enable = true;
    c->log_cleaner_delete_retention_ms = 86400000;
    c->log_cleaner_min_cleanable_ratio = 0.5;
    c->log_cleaner_threads = 1;
    c->log_cleaner_io_max_bytes_per_second = 1.7976931348623157e308; /* Double.MaxValue */
    c->log_cleaner_dedupe_buffer_size = 128 << 20;
    c->log_cleaner_io_buffer_size = 512 << 10;
    c->log_cleaner_io_buffer_load_factor = 0.9;
    c->log_cleaner_backoff_ms = 15000;
    c->offsets_topic_num_partitions = 50;
    c->offsets_topic_replication_factor = 3;
    c->offsets_topic_segment_bytes = 104857600;
    c->offsets_retention_minutes = 10080;
    c->group_initial_rebalance_delay_ms = 3000;
    c->console_sample_interval_ms = 10000;
    c->console_session_timeout_ms = 3600000;
    c->group_min_session_timeout_ms = 6000;
    c->group_max_session_timeout_ms = 1800000;
    snprintf(c->group_coordinator_rebalance_protocols,
             sizeof(c->group_coordinator_rebalance_protocols), "classic,consumer");
    c->group_consumer_heartbeat_interval_ms = 5000;
    c->group_consumer_min_heartbeat_interval_ms = 5000;
    c->group_consumer_max_heartbeat_interval_ms = 15000;
    c->group_consumer_session_timeout_ms = 45000;
    c->group_consumer_min_session_timeout_ms = 45000;
    c->group_consumer_max_session_timeout_ms = 60000;
    c->group_consumer_max_size = INT32_MAX;
    snprintf(c->group_consumer_assignors, sizeof(c->group_consumer_assignors), "uniform,range");
    snprintf(c->group_consumer_migration_policy, sizeof(c->group_consumer_migration_policy),
             "bidirectional");
    c->transactional_id_expiration_ms = 604800000;
    c->transaction_state_log_num_partitions = 50;
    c->transaction_state_log_replication_factor = 3;
    c->transaction_state_log_min_isr = 2;
    c->transaction_state_log_segment_bytes = 104857600;
    c->transaction_max_timeout_ms = 900000;
    c->transaction_abort_cleanup_interval_ms = 10000;
    c->producer_id_expiration_ms = 86400000;
    c->replica_lag_time_max_ms = 30000;
    c->num_replica_fetchers = 1;
    c->replica_fetch_max_bytes = 1048576;
    c->replica_fetch_wait_max_ms = 500;
    c->replica_fetch_min_bytes = 1;
    c->replica_fetch_response_max_bytes = 10485760;
    c->replica_fetch_backoff_ms = 1000;
    c->acks_all_fsync = true;
    c->fetch_local_copy_enable = true;
    c->txn_partition_verification = true;
    c->unclean_leader_election_enable = false;
    c->broker_heartbeat_interval_ms = 2000;
    c->broker_session_timeout_ms = 9000;
    c->auto_leader_rebalance_enable = true;
    c->leader_imbalance_check_interval_seconds = 300;
    c->quota_window_num = 11;
    c->quota_window_size_seconds = 1;
    c->quota_inactive_sensor_expiration_ms = 3600000;
    c->sasl_server_max_receive_size = 524288;
    snprintf(c->ssl_keystore_type, sizeof(c->ssl_keystore_type), "PEM");
    snprintf(c->ssl_truststore_type, sizeof(c->ssl_truststore_type), "PEM");
    snprintf(c->ssl_client_auth, sizeof(c->ssl_client_auth), "none");
    snprintf(c->ssl_enabled_protocols, sizeof(c->ssl_enabled_protocols), "TLSv1.2,TLSv1.3");
    snprintf(c->ssl_principal_mapping_rules, sizeof(c->ssl_principal_mapping_rules), "DEFAULT");
    snprintf(c->ssl_endpoint_identification_algorithm,
             sizeof(c->ssl_endpoint_identification_algorithm), "https");
    snprintf(c->log_level, sizeof(c->log_level), "info");
}

static const struct config_entry *config_find(const char *name)
{
    for (size_t i = 0; i < CONFIG_COUNT; i++)
        if (strcmp(config_table[i].name, name) == 0)
            return &config_table[i];
    return NULL;
}

const char *config_property_name(size_t i)
{
    return i < CONFIG_COUNT ? config_table[i].name : NULL;
}

static int parse_int64(const char *s, int64_t *out)
{
    if (*s == '\0')
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -EINVAL;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    if (strcasecmp(s, "true") == 0)
        *out = true;
    else if (strcasecmp(s, "false") == 0)
        *out = false;
    else
        return -EINVAL;
    return 0;
}

int config_parse_listeners(const char *s, struct listener_config *out, int max)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[512];
        if (len == 0 || len >= sizeof(item) || n == max)
            return -EINVAL;
        memcpy(item, p, len);
        item[len] = '\0';
        char *sep = strstr(item, "://");
        if (sep == NULL || sep == item || (size_t)(sep - item) >= sizeof(out[n].name))
            return -EINVAL;
        *sep = '\0';
        char *hostport = sep + 3;
        char *colon = strrchr(hostport, ':');
        if (colon == NULL)
            return -EINVAL;
        *colon = '\0';
        char *host = hostport;
        if (host[0] == '[') { /* [::1] */
            size_t hl = strlen(host);
            if (hl < 2 || host[hl - 1] != ']')
                return -EINVAL;
            host[hl - 1] = '\0';
            host++;
        }
        int64_t port;
        if (parse_int64(colon + 1, &port) != 0 || port < 0 || port > 65535 ||
            strlen(host) >= sizeof(out[n].host))
            return -EINVAL;
        memcpy(out[n].name, item, strlen(item) + 1);
        memcpy(out[n].host, host, strlen(host) + 1);
        out[n].port = (int)port;
        n++;
        p += len;
        if (*p == ',')
            p++;
    }
    return n;
}

static int config_set_one(struct broker_config *c, const struct config_entry *e, const char *v)
{
    void *field = (char *)c + e->offset;
    int64_t iv;
    switch (e->type) {
    case CT_INT16:
    case CT_INT32:
    case CT_INT64:
        if (parse_int64(v, &iv) != 0 || iv < e->min || iv > e->max)
            return -EINVAL;
        if (e->scale && iv > 0)
            iv = iv > INT64_MAX / e->scale ? INT64_MAX : iv * e->scale;
        if (e->type == CT_INT16)
            *(int16_t *)field = (int16_t)iv;
        else if (e->type == CT_INT32)
            *(int32_t *)field = (int32_t)iv;
        else
            *(int64_t *)field = iv;
        return 0;
    case CT_BOOL:
        return parse_bool(v, (bool *)field);
    case CT_DOUBLE: {
        char *end;
        double d = strtod(v, &end);
        /* NaN compares false with everything: refuse it explicitly (found by fuzz_config) */
        if (*v == '\0' || *end != '\0' || isnan(d) || d < (double)e->min || d > (double)e->max)
            return -EINVAL;
        *(double *)field = d;
        return 0;
    }
    case CT_STRING:
        if (strlen(v) >= e->size)
            return -EINVAL;
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case CT_LISTENERS: {
        int n = config_parse_listeners(v, (struct listener_config *)field, CONFIG_MAX_LISTENERS);
        if (n <= 0)
            return -EINVAL;
        if (field == (void *)c->listeners)
            c->num_listeners = n;
        else
            c->num_advertised = n;
        return 0;
    }
    }
    return -EINVAL;
}

#define CONFIG_LISTENER_PREFIX "listener.name."

/* Stores a listener.name.NAME.PROP override (a later one replaces an earlier one). */
static int config_set_listener_prop(struct broker_config *c, const char *key, const char *value)
{
    const char *rest = key + strlen(CONFIG_LISTENER_PREFIX);
    const char *dot = strchr(rest, '.');
    if (dot == NULL || dot == rest || dot[1] == '\0' ||
        strlen(key) >= sizeof(c->listener_props[0].key) ||
        strlen(value) >= sizeof(c->listener_props[0].value))
        return -EINVAL;
    int i = 0;
    while (i < c->num_listener_props && strcasecmp(c->listener_props[i].key, key) != 0)
        i++;
    if (i == CONFIG_MAX_LISTENER_PROPS)
        return -EINVAL;
    if (i == c->num_listener_props)
        c->num_listener_props++;
    snprintf(c->listener_props[i].key, sizeof(c->listener_props[i].key), "%s", key);
    snprintf(c->listener_props[i].value, sizeof(c->listener_props[i].value), "%s", value);
    return 0;
}

const char *config_listener_prop(const struct broker_config *c, const char *listener,
                                 const char *prop)
{
    size_t pl = strlen(CONFIG_LISTENER_PREFIX), nl = strlen(listener);
    for (int i = 0; i < c->num_listener_props; i++) {
        const char *k = c->listener_props[i].key;
        if (strncasecmp(k + pl, listener, nl) == 0 && k[pl + nl] == '.' &&
            strcasecmp(k + pl + nl + 1, prop) == 0)
            return c->listener_props[i].value;
    }
    return NULL;
}

int config_apply(struct broker_config *c, const struct properties *props, char *err, size_t errlen)
{
    for (size_t i = 0; i < props->n; i++) {
        const struct property *p = &props->items[i];
        if (strncmp(p->key, CONFIG_LISTENER_PREFIX, strlen(CONFIG_LISTENER_PREFIX)) == 0) {
            if (config_set_listener_prop(c, p->key, p->value) != 0) {
                snprintf(err, errlen,
                         "invalid configuration property '%s' (expected "
                         "listener.name.NAME.PROPERTY, at most %d of them)",
                         p->key, CONFIG_MAX_LISTENER_PROPS);
                return -EINVAL;
            }
            continue;
        }
        const struct config_entry *e = config_find(p->key);
        if (e == NULL) {
            snprintf(err, errlen, "unknown configuration property '%s'", p->key);
            return -EINVAL;
        }
        if (config_set_one(c, e, p->value) != 0) {
            snprintf(err, errlen, "invalid value '%s' for configuration property '%s'", p->value,
                     p->key);
            return -EINVAL;
        }
    }
    return 0;
}

bool config_is_controller_listener(const struct broker_config *c, const char *name)
{
    if (c->controller_listener_names[0] == '\0')
        return strcmp(name, "CONTROLLER") == 0;
    char names[sizeof(c->controller_listener_names)];
    snprintf(names, sizeof(names), "%s", c->controller_listener_names);
    char *save = NULL;
    for (char *t = strtok_r(names, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strcmp(t, name) == 0)
            return true;
    return false;
}

const struct listener_config *config_client_listener(const struct broker_config *c)
{
    const struct listener_config *first = NULL, *plain = NULL;
    for (int i = 0; i < c->num_listeners; i++) {
        const struct listener_config *l = &c->listeners[i];
        if (config_is_controller_listener(c, l->name))
            continue;
        if (c->inter_broker_listener_name[0] && strcmp(l->name, c->inter_broker_listener_name) == 0)
            return l;
        if (first == NULL)
            first = l;
        if (plain == NULL && l->protocol == SECURITY_PLAINTEXT)
            plain = l;
    }
    return plain ? plain : first;
}

const struct listener_config *config_controller_listener(const struct broker_config *c)
{
    for (int i = 0; i < c->num_listeners; i++)
        if (config_is_controller_listener(c, c->listeners[i].name))
            return &c->listeners[i];
    return NULL;
}

const struct listener_config *config_advertised_for(const struct broker_config *c,
                                                    const struct listener_config *l)
{
    for (int i = 0; l && i < c->num_advertised; i++)
        if (strcmp(c->advertised[i].name, l->name) == 0)
            return &c->advertised[i];
    return NULL;
}

const struct listener_config *config_advertised_listener(const struct broker_config *c)
{
    const struct listener_config *l = config_client_listener(c);
    const struct listener_config *adv = config_advertised_for(c, l);
    return adv ? adv : l;
}

const char *config_protocol_name(enum security_protocol p)
{
    switch (p) {
    case SECURITY_PLAINTEXT:
        return "PLAINTEXT";
    case SECURITY_SSL:
        return "SSL";
    case SECURITY_SASL_PLAINTEXT:
        return "SASL_PLAINTEXT";
    case SECURITY_SASL_SSL:
        return "SASL_SSL";
    }
    return "?";
}

static int config_parse_protocol(const char *s, enum security_protocol *out)
{
    for (int p = SECURITY_PLAINTEXT; p <= SECURITY_SASL_SSL; p++)
        if (strcmp(s, config_protocol_name((enum security_protocol)p)) == 0) {
            *out = (enum security_protocol)p;
            return 0;
        }
    return -EINVAL;
}

/*
 * The protocol of listener `name`: listener.security.protocol.map (NAME:PROTOCOL,...), or, when
 * that is empty, Kafka's default map, where the four protocol names map to themselves. A
 * controller listener the map does not name is PLAINTEXT (Kafka's KRaft default).
 */
static int config_listener_protocol(const struct broker_config *c, const char *name,
                                    enum security_protocol *out, char *err, size_t errlen)
{
    bool controller = config_is_controller_listener(c, name);
    if (c->listener_security_protocol_map[0] == '\0') {
        if (config_parse_protocol(name, out) == 0)
            return 0;
        if (controller) { /* as Kafka in KRaft mode without an explicit map */
            *out = SECURITY_PLAINTEXT;
            return 0;
        }
        snprintf(err, errlen,
                 "listener '%s' has no security protocol: name it PLAINTEXT, SSL, "
                 "SASL_PLAINTEXT or SASL_SSL, or map it in listener.security.protocol.map",
                 name);
        return -EINVAL;
    }
    char map[sizeof(c->listener_security_protocol_map)];
    snprintf(map, sizeof(map), "%s", c->listener_security_protocol_map);
    char *save = NULL;
    for (char *t = strtok_r(map, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        char *colon = strchr(t, ':');
        if (colon == NULL || config_parse_protocol(colon + 1, out) != 0) {
            snprintf(err, errlen,
                     "invalid entry '%s' in listener.security.protocol.map (expected "
                     "NAME:PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)",
                     t);
            return -EINVAL;
        }
        *colon = '\0';
        if (strcmp(t, name) == 0)
            return 0;
    }
    if (controller) { /* Gregor's controller listener is libraft's: PLAINTEXT */
        *out = SECURITY_PLAINTEXT;
        return 0;
    }
    snprintf(err, errlen, "listener '%s' is not in listener.security.protocol.map", name);
    return -EINVAL;
}

/* Protocols of every listener, advertised names, and what Gregor does not build yet. */
static int config_validate_listeners(struct broker_config *c, char *err, size_t errlen)
{
    for (int i = 0; i < c->num_listeners; i++) {
        struct listener_config *l = &c->listeners[i];
        for (int j = 0; j < i; j++)
            if (strcmp(c->listeners[j].name, l->name) == 0) {
                snprintf(err, errlen, "listener name '%s' appears twice in 'listeners'", l->name);
                return -EINVAL;
            }
        int rc = config_listener_protocol(c, l->name, &l->protocol, err, errlen);
        if (rc != 0)
            return rc;
        if (config_is_controller_listener(c, l->name) && l->protocol != SECURITY_PLAINTEXT) {
            snprintf(err, errlen,
                     "controller listener '%s' maps to %s: Gregor's controller listener carries "
                     "the raft transport, which has no TLS or SASL yet (use PLAINTEXT)",
                     l->name, config_protocol_name(l->protocol));
            return -EINVAL;
        }
    }
    for (int i = 0; i < c->num_advertised; i++) {
        int j = 0;
        while (j < c->num_listeners && strcmp(c->listeners[j].name, c->advertised[i].name) != 0)
            j++;
        if (j == c->num_listeners) {
            snprintf(err, errlen, "advertised.listeners names '%s', which is not in 'listeners'",
                     c->advertised[i].name);
            return -EINVAL;
        }
        c->advertised[i].protocol = c->listeners[j].protocol;
    }
    if (c->inter_broker_listener_name[0]) {
        const struct listener_config *l = config_client_listener(c);
        if (l == NULL || strcmp(l->name, c->inter_broker_listener_name) != 0) {
            snprintf(err, errlen, "inter.broker.listener.name '%s' is not a client listener",
                     c->inter_broker_listener_name);
            return -EINVAL;
        }
    }
    return 0;
}

/* Creates dir (and parents) if needed and checks it is a writable directory. */
static int ensure_dir(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(tmp, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode))
        return -ENOTDIR;
    if (access(tmp, W_OK | X_OK) != 0)
        return -errno;
    return 0;
}

/* replica.selector.class names a Java class in Kafka; Gregor knows the one Kafka ships. */
#define CONFIG_RACK_AWARE_SELECTOR "org.apache.kafka.common.replica.RackAwareReplicaSelector"

static int config_validate_replica_selector(struct broker_config *c, char *err, size_t errlen)
{
    c->rack_aware_selector = strcmp(c->replica_selector_class, CONFIG_RACK_AWARE_SELECTOR) == 0;
    if (c->replica_selector_class[0] == '\0' || c->rack_aware_selector)
        return 0;
    snprintf(err, errlen,
             "invalid value '%s' for configuration property 'replica.selector.class' "
             "(supported: " CONFIG_RACK_AWARE_SELECTOR ")",
             c->replica_selector_class);
    return -EINVAL;
}

/* Parses process.roles into c->roles: "broker", "controller" or both, in any order. */
static int config_parse_roles(struct broker_config *c, char *err, size_t errlen)
{
    char roles[sizeof(c->process_roles)];
    snprintf(roles, sizeof(roles), "%s", c->process_roles);
    c->roles = 0;
    char *save = NULL;
    for (char *t = strtok_r(roles, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t n = strlen(t);
        while (n > 0 && t[n - 1] == ' ')
            t[--n] = '\0';
        uint8_t bit = strcmp(t, "broker") == 0       ? CONFIG_ROLE_BROKER
                      : strcmp(t, "controller") == 0 ? CONFIG_ROLE_CONTROLLER
                                                     : 0;
        if (bit == 0 || (c->roles & bit)) {
            c->roles = 0;
            break;
        }
        c->roles |= bit;
    }
    if (c->roles != 0)
        return 0;
    snprintf(err, errlen,
             "invalid value '%s' for configuration property 'process.roles' (expected broker, "
             "controller or broker,controller)",
             c->process_roles);
    return -EINVAL;
}

/*
 * A broker-only node registers with the controllers named in
 * controller.quorum.bootstrap.servers (their client listeners) and receives the metadata log
 * as a libraft standby on metadata.observer.listener (controller.c explains why).
 */
static int config_validate_observer(struct broker_config *c, char *err, size_t errlen)
{
    if (c->controller_quorum_bootstrap_servers[0] == '\0') {
        snprintf(err, errlen,
                 "process.roles=broker needs controller.quorum.bootstrap.servers: the "
                 "controllers' client listeners (host:port,...), where it registers");
        return -EINVAL;
    }
    const char *colon = strrchr(c->metadata_observer_listener, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (colon == NULL || colon == c->metadata_observer_listener || port <= 0 || port > 65535) {
        snprintf(err, errlen,
                 "process.roles=broker needs metadata.observer.listener=host:port (is '%s'): "
                 "where this node receives the metadata log from the controllers",
                 c->metadata_observer_listener);
        return -EINVAL;
    }
    return 0;
}

/*
 * Kafka's rules for process.roles (KafkaConfig): a controller is one of
 * controller.quorum.voters and has a controller listener; a broker-only node is not a voter
 * and has no controller listener. Gregor's CONTROLLER listener carries libraft's transport, not
 * the Kafka protocol, so a controller-only node also needs a client listener: brokers send it
 * BrokerRegistration, BrokerHeartbeat, AlterPartition and forwarded admin requests there.
 */
static int config_validate_roles(struct broker_config *c, char *err, size_t errlen)
{
    int rc = config_parse_roles(c, err, errlen);
    if (rc != 0)
        return rc;
    struct quorum q;
    rc = quorum_parse(c->controller_quorum_voters, &q, err, errlen);
    if (rc != 0)
        return rc;
    bool voter = quorum_find(&q, c->node_id) != NULL;
    if (c->roles == CONFIG_ROLE_CONTROLLER && q.n == 0) {
        snprintf(err, errlen,
                 "process.roles=controller needs controller.quorum.voters (the metadata quorum "
                 "this node votes in)");
        return -EINVAL;
    }
    if ((c->roles & CONFIG_ROLE_CONTROLLER) && q.n > 0 && !voter) {
        snprintf(err, errlen,
                 "process.roles=%s contains controller, so node.id %d must be one of "
                 "controller.quorum.voters=%s",
                 c->process_roles, c->node_id, c->controller_quorum_voters);
        return -EINVAL;
    }
    if (c->roles == CONFIG_ROLE_CONTROLLER && config_controller_listener(c) == NULL) {
        snprintf(err, errlen,
                 "process.roles=controller: controller.listener.names (%s) must name a listener "
                 "in 'listeners' (where the raft transport binds)",
                 c->controller_listener_names[0] ? c->controller_listener_names : "CONTROLLER");
        return -EINVAL;
    }
    if (c->roles == CONFIG_ROLE_BROKER) {
        if (q.n == 0 || voter) {
            snprintf(err, errlen,
                     "process.roles=broker: node.id %d must not be one of "
                     "controller.quorum.voters, which must name the controllers (is '%s')",
                     c->node_id, c->controller_quorum_voters);
            return -EINVAL;
        }
        if (config_controller_listener(c) != NULL) {
            snprintf(err, errlen,
                     "process.roles=broker: controller.listener.names must not name a listener "
                     "in 'listeners' (a broker-only node runs no controller)");
            return -EINVAL;
        }
        return config_validate_observer(c, err, errlen);
    }
    return 0;
}

/* "" (no authorizer) or one of Kafka's ACL authorizers, all served by broker/authorizer.c. */
static bool config_authorizer_known(const char *name)
{
    return name[0] == 0 ||
           strcmp(name, "org.apache.kafka.metadata.authorizer.StandardAuthorizer") == 0 ||
           strcmp(name, "kafka.security.authorizer.AclAuthorizer") == 0;
}

/* Kafka's GroupCoordinatorConfig checks of the KIP-848 properties. */
static int config_validate_consumer_groups(struct broker_config *c, char *err, size_t errlen)
{
    const char *p = c->group_coordinator_rebalance_protocols;
    if (strstr(p, "classic") == NULL) {
        snprintf(err, errlen, "group.coordinator.rebalance.protocols must contain classic");
        return -EINVAL;
    }
    if (c->group_consumer_min_heartbeat_interval_ms > c->group_consumer_heartbeat_interval_ms ||
        c->group_consumer_heartbeat_interval_ms > c->group_consumer_max_heartbeat_interval_ms) {
        snprintf(err, errlen,
                 "group.consumer.heartbeat.interval.ms must be between "
                 "group.consumer.min.heartbeat.interval.ms and "
                 "group.consumer.max.heartbeat.interval.ms");
        return -EINVAL;
    }
    if (c->group_consumer_min_session_timeout_ms > c->group_consumer_session_timeout_ms ||
        c->group_consumer_session_timeout_ms > c->group_consumer_max_session_timeout_ms) {
        snprintf(err, errlen,
                 "group.consumer.session.timeout.ms must be between "
                 "group.consumer.min.session.timeout.ms and group.consumer.max.session.timeout.ms");
        return -EINVAL;
    }
    if (c->group_consumer_heartbeat_interval_ms >= c->group_consumer_session_timeout_ms) {
        snprintf(err, errlen,
                 "group.consumer.heartbeat.interval.ms must be less than "
                 "group.consumer.session.timeout.ms");
        return -EINVAL;
    }
    for (const char *a = c->group_consumer_assignors; *a;) {
        size_t n = strcspn(a, ", ");
        if (n > 0 && !(n == 7 && strncmp(a, "uniform", 7) == 0) &&
            !(n == 5 && strncmp(a, "range", 5) == 0)) {
            snprintf(err, errlen,
                     "group.consumer.assignors: unknown assignor '%.*s' (uniform and range are "
                     "built in)",
                     (int)n, a);
            return -EINVAL;
        }
        a += n + (a[n] != '\0');
    }
    if (config_migration_policy(c->group_consumer_migration_policy) < 0) {
        snprintf(err, errlen,
                 "group.consumer.migration.policy: '%s' is not one of disabled, upgrade, "
                 "downgrade, bidirectional",
                 c->group_consumer_migration_policy);
        return -EINVAL;
    }
    return 0;
}

int config_migration_policy(const char *value)
{
    if (strcasecmp(value, "bidirectional") == 0)
        return CONFIG_MIGRATION_UPGRADE | CONFIG_MIGRATION_DOWNGRADE;
    if (strcasecmp(value, "upgrade") == 0)
        return CONFIG_MIGRATION_UPGRADE;
    if (strcasecmp(value, "downgrade") == 0)
        return CONFIG_MIGRATION_DOWNGRADE;
    if (strcasecmp(value, "disabled") == 0)
        return 0;
    return -1;
}

int config_validate(struct broker_config *c, char *err, size_t errlen)
{
    int rc = config_validate_consumer_groups(c, err, errlen);
    if (rc != 0)
        return rc;
    rc = config_validate_listeners(c, err, errlen);
    if (rc != 0)
        return rc;
    const struct listener_config *l = config_client_listener(c);
    if (l == NULL) {
        snprintf(err, errlen, "configuration property 'listeners' names no client listener%s",
                 strcmp(c->process_roles, "controller") == 0
                     ? " (a controller-only node also needs one: Gregor's controller listener "
                       "carries the raft transport, the client listener the Kafka protocol)"
                     : "");
        return -EINVAL;
    }
    rc = config_validate_roles(c, err, errlen);
    if (rc == 0 && !config_authorizer_known(c->authorizer_class_name)) {
        snprintf(err, errlen,
                 "configuration property 'authorizer.class.name': unknown authorizer '%s' (Gregor "
                 "implements org.apache.kafka.metadata.authorizer.StandardAuthorizer and accepts "
                 "kafka.security.authorizer.AclAuthorizer for it)",
                 c->authorizer_class_name);
        return -EINVAL;
    }
    if (rc != 0)
        return rc;
    if (c->log_dirs[0] == '\0') {
        snprintf(err, errlen, "configuration property 'log.dirs' is empty");
        return -EINVAL;
    }
    if (strchr(c->log_dirs, ',') != NULL) {
        snprintf(err, errlen, "configuration property 'log.dirs': only one directory is supported");
        return -EINVAL;
    }
    rc = ensure_dir(c->log_dirs);
    if (rc != 0) {
        snprintf(err, errlen, "log.dirs '%s' is not a usable directory: %s", c->log_dirs,
                 strerror(-rc));
        return -EINVAL;
    }
    if (c->metadata_log_dir[0] != '\0' && (rc = ensure_dir(c->metadata_log_dir)) != 0) {
        snprintf(err, errlen, "metadata.log.dir '%s' is not a usable directory: %s",
                 c->metadata_log_dir, strerror(-rc));
        return -EINVAL;
    }
    if (c->metrics_listener[0] != '\0' &&
        metrics_parse_listener(c->metrics_listener, NULL, 0, NULL) != 0) {
        snprintf(err, errlen,
                 "invalid value '%s' for configuration property 'metrics.listener' "
                 "(expected http://HOST:PORT)",
                 c->metrics_listener);
        return -EINVAL;
    }
    if (c->console_listener[0] != '\0' &&
        console_parse_listener(c->console_listener, NULL, 0, NULL) != 0) {
        snprintf(err, errlen,
                 "invalid value '%s' for configuration property 'console.listener' "
                 "(expected http://HOST:PORT; an empty HOST means 127.0.0.1)",
                 c->console_listener);
        return -EINVAL;
    }
    int console_port = 0;
    console_parse_listener(c->console_listener, NULL, 0, &console_port);
    if (console_port != 0 && strcmp(c->console_listener, c->metrics_listener) == 0) {
        snprintf(err, errlen,
                 "configuration property 'console.listener' %s is also metrics.listener: give "
                 "the console its own port",
                 c->console_listener);
        return -EINVAL;
    }
    if (strcmp(c->log_message_timestamp_type, "CreateTime") != 0 &&
        strcmp(c->log_message_timestamp_type, "LogAppendTime") != 0) {
        snprintf(err, errlen,
                 "invalid value '%s' for configuration property "
                 "'log.message.timestamp.type'",
                 c->log_message_timestamp_type);
        return -EINVAL;
    }
    static const char *codecs[] = {"producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"};
    bool codec_ok = false;
    for (size_t i = 0; i < sizeof(codecs) / sizeof(codecs[0]); i++)
        codec_ok |= strcmp(c->compression_type, codecs[i]) == 0;
    if (!codec_ok) {
        snprintf(err, errlen, "invalid value '%s' for configuration property 'compression.type'",
                 c->compression_type);
        return -EINVAL;
    }
    return config_validate_replica_selector(c, err, errlen);
}

/* Secrets (Kafka's PASSWORD type) are never described: DescribeConfigs leaves them out. */
static bool config_is_sensitive(const char *name)
{
    return strcmp(name, "ssl.key.password") == 0 || strcmp(name, "ssl.keystore.key") == 0;
}

int config_describe(const struct broker_config *c, const char *name, char *buf, size_t len)
{
    const struct config_entry *e = config_find(name);
    if (e == NULL)
        return -ENOENT;
    if (config_is_sensitive(name)) {
        if (len > 0)
            buf[0] = '\0';
        return -EACCES;
    }
    const void *field = (const char *)c + e->offset;
    switch (e->type) {
    case CT_INT16:
        snprintf(buf, len, "%d", *(const int16_t *)field);
        break;
    case CT_INT32:
        snprintf(buf, len, "%d", *(const int32_t *)field);
        break;
    case CT_INT64: {
        int64_t v = *(const int64_t *)field;
        if (e->scale && v > 0)
            v /= e->scale;
        snprintf(buf, len, "%lld", (long long)v);
        break;
    }
    case CT_BOOL:
        snprintf(buf, len, "%s", *(const bool *)field ? "true" : "false");
        break;
    case CT_DOUBLE:
        snprintf(buf, len, "%g", *(const double *)field);
        break;
    case CT_STRING:
        snprintf(buf, len, "%s", (const char *)field);
        break;
    case CT_LISTENERS: {
        const struct listener_config *ls = field;
        int n = ls == c->listeners ? c->num_listeners : c->num_advertised;
        size_t at = 0;
        buf[0] = '\0';
        for (int i = 0; i < n && at < len; i++)
            at += (size_t)snprintf(buf + at, len - at, "%s%s://%s:%d", i ? "," : "", ls[i].name,
                                   ls[i].host, ls[i].port);
        break;
    }
    }
    return 0;
}
