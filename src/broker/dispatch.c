/*
 * Dispatch: decode the request header, pick the handler by api key, check the version.
 *
 * Each API has a scope, as Kafka's schemas have "listeners": the APIs a broker serves to
 * clients, and those Kafka's controller listener answers (ApiVersions, the admin requests a
 * controller handles itself, DescribeQuorum, DescribeCluster, and the broker-to-controller
 * APIs). A node serves the APIs of its process.roles; a combined node serves both sets on one
 * listener. Outside its roles an API is treated as Kafka's SocketServer treats an API not
 * enabled on a listener: the connection is closed.
 *
 * Security: on a SASL listener a connection is served only the SASL exchange until it is
 * authenticated (sasl.c, session.h); after SaslHandshake v0 its frames are bare tokens without
 * a request header, handed to sasl.c before any header is decoded.
 *
 * What Kafka does with requests it cannot serve, and so do we: an unknown api key or an
 * unsupported version of any API but ApiVersions closes the connection (the body cannot be
 * parsed); ApiVersions with an unsupported version is answered with a v0 body carrying
 * UNSUPPORTED_VERSION and the supported range (see api_versions.c).
 */
#include "broker/dispatch.h"

#include <assert.h>
#include <stdio.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/gate.h"
#include "broker/handlers.h"
#include "broker/quota.h"
#include "broker/session.h"

/* The APIs this broker serves; versions within the generated schema range. */
static const struct broker_api broker_api_table[] = {
    {KPROTO_API_PRODUCE, 0, 12, handle_produce, API_SCOPE_BROKER},
    {KPROTO_API_FETCH, 0, 16, handle_fetch, API_SCOPE_BROKER},
    {KPROTO_API_LIST_OFFSETS, 0, 9, handle_list_offsets, API_SCOPE_BROKER},
    {KPROTO_API_METADATA, 0, 12, handle_metadata, API_SCOPE_BROKER},
    {KPROTO_API_OFFSET_COMMIT, 0, 9, handle_offset_commit, API_SCOPE_BROKER},
    {KPROTO_API_OFFSET_FETCH, 0, 9, handle_offset_fetch, API_SCOPE_BROKER},
    {KPROTO_API_FIND_COORDINATOR, 0, 4, handle_find_coordinator, API_SCOPE_BROKER},
    {KPROTO_API_JOIN_GROUP, 0, 9, handle_join_group, API_SCOPE_BROKER},
    {KPROTO_API_HEARTBEAT, 0, 4, handle_heartbeat, API_SCOPE_BROKER},
    {KPROTO_API_LEAVE_GROUP, 0, 5, handle_leave_group, API_SCOPE_BROKER},
    {KPROTO_API_SYNC_GROUP, 0, 5, handle_sync_group, API_SCOPE_BROKER},
    {KPROTO_API_DESCRIBE_GROUPS, 0, 5, handle_describe_groups, API_SCOPE_BROKER},
    {KPROTO_API_LIST_GROUPS, 0, 5, handle_list_groups, API_SCOPE_BROKER},
    {KPROTO_API_SASL_HANDSHAKE, 0, 1, handle_sasl_handshake,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_API_VERSIONS, 0, 4, handle_api_versions, API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_CREATE_TOPICS, 0, 7, handle_create_topics, API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_DELETE_TOPICS, 0, 6, handle_delete_topics, API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_DELETE_RECORDS, 0, 2, handle_delete_records, API_SCOPE_BROKER},
    {KPROTO_API_INIT_PRODUCER_ID, 0, 5, handle_init_producer_id, API_SCOPE_BROKER},
    {KPROTO_API_OFFSET_FOR_LEADER_EPOCH, 0, 4, handle_offset_for_leader_epoch, API_SCOPE_BROKER},
    {KPROTO_API_ADD_PARTITIONS_TO_TXN, 0, 5, handle_add_partitions_to_txn, API_SCOPE_BROKER},
    {KPROTO_API_ADD_OFFSETS_TO_TXN, 0, 4, handle_add_offsets_to_txn, API_SCOPE_BROKER},
    {KPROTO_API_END_TXN, 0, 5, handle_end_txn, API_SCOPE_BROKER},
    {KPROTO_API_WRITE_TXN_MARKERS, 0, 1, handle_write_txn_markers, API_SCOPE_BROKER},
    {KPROTO_API_TXN_OFFSET_COMMIT, 0, 5, handle_txn_offset_commit, API_SCOPE_BROKER},
    {KPROTO_API_DESCRIBE_CONFIGS, 0, 4, handle_describe_configs,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_ALTER_CONFIGS, 0, 2, handle_alter_configs, API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_DESCRIBE_ACLS, 0, 3, handle_describe_acls, API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_CREATE_ACLS, 0, 3, handle_create_acls, API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_DELETE_ACLS, 0, 3, handle_delete_acls, API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_DESCRIBE_LOG_DIRS, 0, 4, handle_describe_log_dirs, API_SCOPE_BROKER},
    {KPROTO_API_SASL_AUTHENTICATE, 0, 2, handle_sasl_authenticate,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_CREATE_PARTITIONS, 0, 3, handle_create_partitions,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_DELETE_GROUPS, 0, 2, handle_delete_groups, API_SCOPE_BROKER},
    {KPROTO_API_ELECT_LEADERS, 0, 2, handle_elect_leaders, API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_INCREMENTAL_ALTER_CONFIGS, 0, 1, handle_incremental_alter_configs,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_ALTER_PARTITION_REASSIGNMENTS, 0, 0, handle_alter_partition_reassignments,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_LIST_PARTITION_REASSIGNMENTS, 0, 0, handle_list_partition_reassignments,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_OFFSET_DELETE, 0, 0, handle_offset_delete, API_SCOPE_BROKER},
    {KPROTO_API_DESCRIBE_USER_SCRAM_CREDENTIALS, 0, 0, handle_describe_user_scram_credentials,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_ALTER_USER_SCRAM_CREDENTIALS, 0, 0, handle_alter_user_scram_credentials,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_DESCRIBE_QUORUM, 0, 1, handle_describe_quorum,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_DESCRIBE_CLUSTER, 0, 1, handle_describe_cluster,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_DESCRIBE_PRODUCERS, 0, 0, handle_describe_producers, API_SCOPE_BROKER},
    {KPROTO_API_DESCRIBE_TRANSACTIONS, 0, 0, handle_describe_transactions, API_SCOPE_BROKER},
    {KPROTO_API_LIST_TRANSACTIONS, 0, 1, handle_list_transactions, API_SCOPE_BROKER},
    {KPROTO_API_DESCRIBE_TOPIC_PARTITIONS, 0, 0, handle_describe_topic_partitions,
     API_SCOPE_BROKER},
    {KPROTO_API_DESCRIBE_CLIENT_QUOTAS, 0, 1, handle_describe_client_quotas,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_ALTER_CLIENT_QUOTAS, 0, 1, handle_alter_client_quotas,
     API_SCOPE_BROKER | API_SCOPE_CONTROLLER},
    {KPROTO_API_CONSUMER_GROUP_HEARTBEAT, 0, 1, handle_consumer_group_heartbeat, API_SCOPE_BROKER},
    {KPROTO_API_CONSUMER_GROUP_DESCRIBE, 0, 0, handle_consumer_group_describe, API_SCOPE_BROKER},
};

/* Broker-to-controller APIs: served by the active controller, not advertised in ApiVersions. */
static const struct broker_api broker_internal_api_table[] = {
    {KPROTO_API_BROKER_REGISTRATION, 0, 4, handle_broker_registration, API_SCOPE_CONTROLLER},
    {KPROTO_API_BROKER_HEARTBEAT, 0, 1, handle_broker_heartbeat, API_SCOPE_CONTROLLER},
    {KPROTO_API_ALLOCATE_PRODUCER_IDS, 0, 0, handle_allocate_producer_ids, API_SCOPE_CONTROLLER},
    {KPROTO_API_ALTER_PARTITION, 0, 3, handle_alter_partition, API_SCOPE_CONTROLLER},
};

const struct broker_api *broker_apis(int *n)
{
    *n = (int)(sizeof(broker_api_table) / sizeof(broker_api_table[0]));
    return broker_api_table;
}

const struct broker_api *broker_api_lookup(int16_t key)
{
    int n;
    const struct broker_api *t = broker_apis(&n);
    for (int i = 0; i < n; i++)
        if (t[i].key == key)
            return &t[i];
    n = (int)(sizeof(broker_internal_api_table) / sizeof(broker_internal_api_table[0]));
    for (int i = 0; i < n; i++)
        if (broker_internal_api_table[i].key == key)
            return &broker_internal_api_table[i];
    return NULL;
}

/*
 * The answers a client routes by (where partition leaders and coordinators are) are computed
 * as Kafka computes them: once the connection's earlier requests are answered. Computed on
 * arrival, one pipelined behind a parked acks=all produce left seconds later, stale, when the
 * leaders it names had moved (see net_request_run_in_order).
 */
static bool dispatch_routing_answer(int16_t api_key)
{
    return api_key == KPROTO_API_METADATA || api_key == KPROTO_API_FIND_COORDINATOR;
}

/* Runs the API's handler for the decoded, admitted request r. */
static void dispatch_handle(struct broker_req *r, const struct broker_api *api)
{
    /* Quotas: the handler's time is charged to request_percentage when it answers (so the
     * response carries the throttle), or when it returns with r still pending (r may be gone
     * once the handler returns: completing r clears `pending`). */
    bool pending = true;
    r->quota = quota_before_handler(r);
    r->handler_pending = &pending;
    api->handle(r);
    if (pending) {
        r->handler_pending = NULL;
        if (r->quota != NULL)
            quota_charge_request(r);
    }
}

/* An in-order API's turn came: every earlier request of the connection is answered. */
static void dispatch_in_order(struct net_request *nr, void *arg)
{
    struct broker_req *r = arg;
    assert(r->nr == nr);
    dispatch_handle(r, broker_api_lookup(r->hdr.api_key));
}

void broker_dispatch(struct broker *b, struct net_request *nr)
{
    if (broker_gate_hold(b, nr))
        return;
    struct broker_session *s = session_of(nr->conn);
    if (s != NULL && s->state == SESSION_RAW_TOKEN) {
        sasl_handle_raw_token(b, nr); /* no Kafka header: a bare SASL token */
        return;
    }
    if (s != NULL && !s->tls_principal_known && s->state == SESSION_AUTHENTICATED &&
        session_resolve_tls_principal(b, nr->conn) != 0) {
        net_request_close(nr); /* SSL: no mapping rule applies to the certificate's subject */
        return;
    }
    struct broker_req *r = arena_calloc(&nr->arena, 1, sizeof(*r));
    if (r == NULL) {
        net_request_close(nr);
        return;
    }
    r->b = b;
    r->nr = nr;
    r->arena = &nr->arena;
    r->start_ns = clock_mono_ns();
    kr_init(&r->body, nr->frame, nr->size, &nr->arena);
    if (kproto_request_header_decode(&r->body, &r->hdr) != 0 || r->body.err != 0) {
        r->hdr.api_key = -1; /* counted as api="unknown" */
        broker_close(r, "malformed request header");
        return;
    }
    if (s != NULL && s->state != SESSION_AUTHENTICATED && !sasl_request_allowed(r, s))
        return;
    if (s != NULL && s->state == SESSION_AUTHENTICATED && s->expires_ms != 0 &&
        !sasl_session_live(r, s))
        return;
    const struct broker_api *api = broker_api_lookup(r->hdr.api_key);
    if (api != NULL && !broker_api_in_roles(api, b->cfg.roles)) {
        broker_close(r, "api not enabled for this node's process.roles");
        return;
    }
    if (api == NULL) {
        broker_close(r, "unsupported api key");
        return;
    }
    if (r->hdr.api_version < api->min_version || r->hdr.api_version > api->max_version) {
        if (r->hdr.api_key == KPROTO_API_API_VERSIONS) {
            api->handle(r); /* answers UNSUPPORTED_VERSION itself */
            return;
        }
        broker_close(r, "unsupported api version");
        return;
    }
    if (dispatch_routing_answer(api->key))
        net_request_run_in_order(nr, dispatch_in_order, r);
    else
        dispatch_handle(r, api);
}
