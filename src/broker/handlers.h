/*
 * The request handlers, one file per API family, and the table of what this broker
 * advertises in ApiVersions. All run on the connection's worker thread.
 */
#ifndef GREGOR_BROKER_HANDLERS_H
#define GREGOR_BROKER_HANDLERS_H

#include <stdio.h>

#include "broker/request.h"

/* Which process.roles serve an API (same bits as CONFIG_ROLE_BROKER / CONFIG_ROLE_CONTROLLER). */
#define API_SCOPE_BROKER 1
#define API_SCOPE_CONTROLLER 2

struct broker_api {
    int16_t key;
    int16_t min_version;
    int16_t max_version;
    broker_handler_fn handle;
    uint8_t scope; /* API_SCOPE_* bits */
};

/* True when a node with `roles` (CONFIG_ROLE_* bits) serves `api`. */
static inline bool broker_api_in_roles(const struct broker_api *api, uint8_t roles)
{
    return (api->scope & roles) != 0;
}

/* The supported APIs in key order; count in *n. */
const struct broker_api *broker_apis(int *n);
/* The entry for key, or NULL when the broker does not serve that API. */
const struct broker_api *broker_api_lookup(int16_t key);
/* Writes the advertised APIs as a Markdown table (key, name, versions served, Kafka's schema
 * versions), as README.md shows it. Any thread. */
void api_versions_print_table(FILE *f);

void handle_api_versions(struct broker_req *r);
void handle_metadata(struct broker_req *r);
void handle_produce(struct broker_req *r);
void handle_fetch(struct broker_req *r);
void handle_list_offsets(struct broker_req *r);
void handle_create_topics(struct broker_req *r);
void handle_delete_topics(struct broker_req *r);
void handle_describe_acls(struct broker_req *r);
void handle_create_acls(struct broker_req *r);
void handle_delete_acls(struct broker_req *r);
void handle_create_partitions(struct broker_req *r);

/* controller_mutation_rate for the three (mutation_quota.c): records the request's partition
 * mutations, or answers r (THROTTLING_QUOTA_EXCEEDED) and returns true when it is refused. */
bool mutation_quota_create_topics(struct broker_req *r);
bool mutation_quota_delete_topics(struct broker_req *r);
bool mutation_quota_create_partitions(struct broker_req *r);
void handle_delete_records(struct broker_req *r);
void handle_describe_configs(struct broker_req *r);
void handle_alter_configs(struct broker_req *r);
void handle_describe_log_dirs(struct broker_req *r);
void handle_incremental_alter_configs(struct broker_req *r);
/* client_quotas.c */
void handle_describe_client_quotas(struct broker_req *r);
void handle_alter_client_quotas(struct broker_req *r);
void handle_describe_cluster(struct broker_req *r);
void handle_describe_quorum(struct broker_req *r);
void handle_elect_leaders(struct broker_req *r);
void handle_describe_user_scram_credentials(struct broker_req *r);
void handle_alter_user_scram_credentials(struct broker_req *r);
void handle_alter_partition_reassignments(struct broker_req *r);
void handle_list_partition_reassignments(struct broker_req *r);
void handle_broker_registration(struct broker_req *r);
void handle_broker_heartbeat(struct broker_req *r);
void handle_allocate_producer_ids(struct broker_req *r);
void handle_alter_partition(struct broker_req *r);
void handle_init_producer_id(struct broker_req *r);
void handle_sasl_handshake(struct broker_req *r);
void handle_sasl_authenticate(struct broker_req *r);

struct broker_session;
/* sasl.c: a bare SASL token frame (after SaslHandshake v0); completes nr. */
void sasl_handle_raw_token(struct broker *b, struct net_request *nr);
/* sasl.c: before authentication, true if r may be served now; else closes it (logged). */
bool sasl_request_allowed(struct broker_req *r, struct broker_session *s);
/*
 * After authentication: false (and the connection closed) when the session expired
 * (connections.max.reauth.ms, KIP-368) and r is not the SaslHandshake that re-authenticates.
 */
bool sasl_session_live(struct broker_req *r, struct broker_session *s);
void handle_offset_for_leader_epoch(struct broker_req *r);
void handle_describe_producers(struct broker_req *r);
void handle_describe_topic_partitions(struct broker_req *r);
void handle_find_coordinator(struct broker_req *r);
void handle_join_group(struct broker_req *r);
void handle_sync_group(struct broker_req *r);
void handle_heartbeat(struct broker_req *r);
void handle_leave_group(struct broker_req *r);
void handle_offset_commit(struct broker_req *r);
void handle_offset_fetch(struct broker_req *r);
void handle_offset_delete(struct broker_req *r);
void handle_describe_groups(struct broker_req *r);
void handle_list_groups(struct broker_req *r);
void handle_delete_groups(struct broker_req *r);
void handle_consumer_group_heartbeat(struct broker_req *r);
void handle_consumer_group_describe(struct broker_req *r);
void handle_add_partitions_to_txn(struct broker_req *r);
/* v4-5, the brokers' batched form (add_partitions_batched.c). */
void handle_add_partitions_to_txn_batched(struct broker_req *r);
void handle_add_offsets_to_txn(struct broker_req *r);
void handle_end_txn(struct broker_req *r);
void handle_write_txn_markers(struct broker_req *r);
void handle_txn_offset_commit(struct broker_req *r);
void handle_describe_transactions(struct broker_req *r);
void handle_list_transactions(struct broker_req *r);

#endif
