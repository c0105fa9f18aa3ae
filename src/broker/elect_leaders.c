/*
 * ElectLeaders (43): preferred (0) or unclean (1) leader election, run by the active
 * controller (a node that is not forwards the request there). A null topic list means every
 * partition, and then only partitions whose leader changed or could not be elected are listed,
 * as Kafka does. v0 has no top-level error code and no election type (preferred).
 */
#include <string.h>

#include "broker/authorizer.h"
#include "broker/async.h"
#include "broker/broker_internal.h"
#include "broker/forwarder.h"
#include "broker/handlers.h"
#include "proto/gen/elect_leaders.h"
#include "proto/gen/errors.h"

static void elect_reply_error(struct broker_req *r, int16_t code)
{
    struct kmsg_elect_leaders_response resp;
    kmsg_elect_leaders_response_init(&resp);
    resp.error_code = code;
    resp.replica_election_results.n = 0;
    broker_reply(r, (kproto_encode_fn)kmsg_elect_leaders_response_encode, &resp);
}

/* Groups the per-partition results by topic, in result order. */
static void elect_resume(struct broker_async *a)
{
    struct broker_req *r = a->r;
    if (a->error_code != 0) {
        elect_reply_error(r, a->error_code);
        return;
    }
    struct kmsg_elect_leaders_response resp;
    kmsg_elect_leaders_response_init(&resp);
    resp.replica_election_results.v =
        arena_calloc(r->arena, a->n_topics + 1, sizeof(*resp.replica_election_results.v));
    struct kmsg_elect_leaders_response_partition_result *parts =
        arena_calloc(r->arena, a->n_topics + 1, sizeof(*parts));
    if (resp.replica_election_results.v == NULL || parts == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    resp.replica_election_results.n = 0;
    struct kmsg_elect_leaders_response_replica_election_result *cur = NULL;
    for (size_t i = 0; i < a->n_topics; i++) {
        const char *name = a->topics[i].name ? a->topics[i].name : "";
        if (cur == NULL || strcmp(cur->topic.ptr, name) != 0 ||
            (size_t)cur->topic.len != strlen(name)) {
            cur = &resp.replica_election_results.v[resp.replica_election_results.n++];
            kmsg_elect_leaders_response_replica_election_result_init(cur);
            cur->topic = broker_kstr(r, name);
            cur->partition_result =
                (struct kmsg_elect_leaders_response_partition_result_array){0, &parts[i]};
        }
        struct kmsg_elect_leaders_response_partition_result *p = &parts[i];
        kmsg_elect_leaders_response_partition_result_init(p);
        p->partition_id = a->topics[i].num_partitions;
        p->error_code = a->topics[i].error_code;
        p->error_message =
            a->topics[i].error_code ? broker_kstr(r, a->topics[i].error_message) : KSTR_NULL;
        cur->partition_result.n++;
    }
    broker_reply(r, (kproto_encode_fn)kmsg_elect_leaders_response_encode, &resp);
}

void handle_elect_leaders(struct broker_req *r)
{
    /* Kafka: ALTER on the cluster, checked here as the relayed request is the broker's */
    if (!broker_authorize_cluster(r, ACL_OPERATION_ALTER)) {
        elect_reply_error(r, KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED);
        return;
    }
    if (forwarder_relay(r))
        return;
    struct kmsg_elect_leaders_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_elect_leaders_request_decode, &req) != 0)
        return;
    int8_t type = r->hdr.api_version >= 1 ? req.election_type : 0;
    bool all = req.topic_partitions.n < 0;
    size_t n = 0;
    for (int32_t i = 0; !all && i < req.topic_partitions.n; i++)
        n += req.topic_partitions.v[i].partitions.n > 0
                 ? (size_t)req.topic_partitions.v[i].partitions.n
                 : 0;
    struct controller_partition_ref *refs = arena_calloc(r->arena, n + 1, sizeof(*refs));
    if (refs == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    size_t k = 0;
    for (int32_t i = 0; !all && i < req.topic_partitions.n; i++) {
        const struct kmsg_elect_leaders_request_topic_partitions *tp = &req.topic_partitions.v[i];
        char *name = broker_name(r, tp->topic);
        for (int32_t j = 0; j < tp->partitions.n; j++, k++) {
            refs[k] = (struct controller_partition_ref){name, tp->partitions.v[j]};
        }
    }
    struct broker_async *a = broker_async_new(r, elect_resume, NULL);
    if (a == NULL ||
        controller_elect_leaders(r->b->ctl, type, refs, n, all, broker_async_done, a) != 0) {
        broker_async_free(a);
        elect_reply_error(r, KAFKA_ERR_NOT_CONTROLLER);
    }
}
