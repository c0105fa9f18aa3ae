/*
 * ApiVersions (key 18). Lists every API and version range this node serves: a controller-only
 * node lists only the APIs Kafka's controller listener answers (dispatch.c). A request with a
 * version we do not serve is answered as Kafka does (KIP-511): a v0-encoded body with
 * UNSUPPORTED_VERSION and our range for ApiVersions only, so the client can retry with it.
 * The header of every ApiVersions response is v0 (proto/header.c knows the exception).
 *
 * Features (KIP-584): Gregor finalizes "transaction.version" at 2, as a Kafka 4.0 cluster
 * formatted today does; clients (Kafka's Java client from 4.0) then use KIP-890 part 2: EndTxn
 * v5 with an epoch bump per transaction, Produce v12 and TxnOffsetCommit v5 without
 * AddPartitionsToTxn / AddOffsetsToTxn. Older clients ignore it. Like Kafka (KIP-1022), the
 * supported range (min 0) is listed only from ApiVersions v4 on.
 */
#include "proto/gen/api_versions.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "proto/gen/errors.h"

static void api_versions_fill(struct broker_req *r, struct kmsg_api_versions_response *resp,
                              int only_self)
{
    int n;
    const struct broker_api *apis = broker_apis(&n);
    resp->api_keys.v = arena_calloc(r->arena, (size_t)n, sizeof(*resp->api_keys.v));
    resp->api_keys.n = 0;
    if (resp->api_keys.v == NULL)
        return;
    for (int i = 0; i < n; i++) {
        if (only_self && apis[i].key != KPROTO_API_API_VERSIONS)
            continue;
        if (!broker_api_in_roles(&apis[i], r->b->cfg.roles))
            continue;
        /* Kafka exposes the KIP-848 APIs only with the consumer protocol enabled. */
        if ((apis[i].key == KPROTO_API_CONSUMER_GROUP_HEARTBEAT ||
             apis[i].key == KPROTO_API_CONSUMER_GROUP_DESCRIBE) &&
            strstr(r->b->cfg.group_coordinator_rebalance_protocols, "consumer") == NULL)
            continue;
        struct kmsg_api_versions_response_api_version *v = &resp->api_keys.v[resp->api_keys.n++];
        v->api_key = apis[i].key;
        v->min_version = apis[i].min_version;
        v->max_version = apis[i].max_version;
    }
}

#define TRANSACTION_VERSION_FEATURE "transaction.version"
#define TRANSACTION_VERSION_MAX 2
/* The finalized features never change here: one epoch (>= 0: a client ignores -1). */
#define FINALIZED_FEATURES_EPOCH 1

static void api_versions_fill_features(struct broker_req *r,
                                       struct kmsg_api_versions_response *resp)
{
    struct kmsg_api_versions_response_supported_feature_key *sup =
        arena_calloc(r->arena, 1, sizeof(*sup));
    struct kmsg_api_versions_response_finalized_feature_key *fin =
        arena_calloc(r->arena, 1, sizeof(*fin));
    if (sup == NULL || fin == NULL)
        return;
    struct kstr name = KSTR_LIT(TRANSACTION_VERSION_FEATURE);
    *sup =
        (struct kmsg_api_versions_response_supported_feature_key){name, 0, TRANSACTION_VERSION_MAX};
    *fin = (struct kmsg_api_versions_response_finalized_feature_key){name, TRANSACTION_VERSION_MAX,
                                                                     TRANSACTION_VERSION_MAX};
    if (r->hdr.api_version >= 4) {
        resp->supported_features.v = sup;
        resp->supported_features.n = 1;
    }
    resp->finalized_features.v = fin;
    resp->finalized_features.n = 1;
    resp->finalized_features_epoch = FINALIZED_FEATURES_EPOCH;
}

void handle_api_versions(struct broker_req *r)
{
    const struct broker_api *self = broker_api_lookup(KPROTO_API_API_VERSIONS);
    struct kmsg_api_versions_response resp;
    kmsg_api_versions_response_init(&resp);
    if (r->hdr.api_version > self->max_version || r->hdr.api_version < self->min_version) {
        resp.error_code = KAFKA_ERR_UNSUPPORTED_VERSION;
        api_versions_fill(r, &resp, 1);
        broker_reply_version(r, 0, (kproto_encode_fn)kmsg_api_versions_response_encode, &resp);
        return;
    }
    struct kmsg_api_versions_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_api_versions_request_decode, &req) != 0)
        return;
    api_versions_fill(r, &resp, 0);
    api_versions_fill_features(r, &resp);
    broker_reply(r, (kproto_encode_fn)kmsg_api_versions_response_encode, &resp);
}

/*
 * The Markdown table README.md carries (tests/interop/test_readme_api_table.py checks it):
 * one row per advertised API, in key order, with the versions served and the range of Kafka's
 * schemas these codecs were generated from. Internal broker-to-controller APIs are not listed.
 */
void api_versions_print_table(FILE *f)
{
    int n;
    const struct broker_api *apis = broker_apis(&n);
    fprintf(f, "| Key | API | Versions served | Kafka's schema versions |\n"
               "| ---: | --- | --- | --- |\n");
    for (int i = 0; i < n; i++) {
        const struct kproto_api *k = kproto_api_lookup(apis[i].key);
        assert(k != NULL); /* the table serves only APIs the codecs know */
        fprintf(f, "| %d | %s | %d-%d | %d-%d |\n", apis[i].key, k->name, apis[i].min_version,
                apis[i].max_version, k->min_version, k->max_version);
    }
}
