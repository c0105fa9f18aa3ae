/*
 * DescribeClientQuotas and AlterClientQuotas (KIP-546).
 *
 * Describe is answered from this node's metadata image with Kafka's filter rules
 * (ClientQuotasImage.describe): a component names an entity type once; match type 0 (exact)
 * needs a name, 1 (default) and 2 (any specified) none; "user" and "client-id" are the types
 * Gregor knows ("ip" is refused as unsupported). An entity matches when it has every filtered
 * type with the asked name (exact/default) or any name (specified); strict also requires it to
 * have no other type. A bad filter is a request-level error.
 *
 * Alter goes to the active controller (forwarded like every metadata change); the controller
 * validates each entry (quota_commands.c) and answers per entry.
 */
#include <string.h>

#include "broker/async.h"
#include "broker/broker_internal.h"
#include "broker/forwarder.h"
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "cluster/kafka_errors.h"
#include "proto/gen/alter_client_quotas.h"
#include "proto/gen/describe_client_quotas.h"

#define MATCH_EXACT 0
#define MATCH_DEFAULT 1
#define MATCH_SPECIFIED 2

/* A parsed filter: for each type, whether it is filtered, how, and the name. */
struct quota_filter {
    uint8_t types;     /* METADATA_QUOTA_* filtered */
    uint8_t specified; /* of those, matched by type only */
    const char *user;  /* exact name (NULL: the default) */
    const char *client_id;
    bool strict;
};

/* Parses the components; returns 0 or a Kafka error with *why. */
static int16_t quota_filter_parse(struct broker_req *r,
                                  const struct kmsg_describe_client_quotas_request *req,
                                  struct quota_filter *f, const char **why)
{
    memset(f, 0, sizeof(*f));
    f->strict = req->strict;
    for (int32_t i = 0; i < req->components.n; i++) {
        const struct kmsg_describe_client_quotas_request_component_data *c = &req->components.v[i];
        uint8_t bit = kproto_str_eq(c->entity_type, "user", 4)        ? METADATA_QUOTA_USER
                      : kproto_str_eq(c->entity_type, "client-id", 9) ? METADATA_QUOTA_CLIENT_ID
                                                                      : 0;
        if (c->entity_type.len <= 0) {
            *why = "Invalid empty entity type.";
            return KAFKA_ERR_INVALID_REQUEST;
        }
        if (bit == 0) {
            *why = "Unsupported entity type";
            return KAFKA_ERR_UNSUPPORTED_VERSION;
        }
        if (f->types & bit) {
            *why = "Entity type cannot appear more than once in the filter.";
            return KAFKA_ERR_INVALID_REQUEST;
        }
        bool has_match = c->match.len >= 0;
        if (c->match_type == MATCH_EXACT && !has_match) {
            *why = "Request specified MATCH_TYPE_EXACT, but set match string to null.";
            return KAFKA_ERR_INVALID_REQUEST;
        }
        if (c->match_type != MATCH_EXACT && has_match) {
            *why = "Request specified a match string with a match type that takes none.";
            return KAFKA_ERR_INVALID_REQUEST;
        }
        if (c->match_type < MATCH_EXACT || c->match_type > MATCH_SPECIFIED) {
            *why = "Unknown match type";
            return KAFKA_ERR_INVALID_REQUEST;
        }
        f->types |= bit;
        if (c->match_type == MATCH_SPECIFIED)
            f->specified |= bit;
        const char *name = c->match_type == MATCH_EXACT ? broker_name(r, c->match) : NULL;
        if (bit == METADATA_QUOTA_USER)
            f->user = name;
        else
            f->client_id = name;
    }
    return 0;
}

static bool name_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static bool quota_filter_match(const struct quota_filter *f, const struct metadata_client_quota *q)
{
    if (f->strict && q->entity != f->types)
        return false;
    if ((q->entity & f->types) != f->types)
        return false;
    if ((f->types & ~f->specified & METADATA_QUOTA_USER) && !name_eq(f->user, q->user))
        return false;
    if ((f->types & ~f->specified & METADATA_QUOTA_CLIENT_ID) &&
        !name_eq(f->client_id, q->client_id))
        return false;
    return true;
}

/* Fills one response entry from an image entity (strings copied into r's arena). */
static void describe_entry(struct broker_req *r, const struct metadata_client_quota *q,
                           struct kmsg_describe_client_quotas_response_entry_data *e)
{
    kmsg_describe_client_quotas_response_entry_data_init(e);
    e->entity.v = arena_calloc(r->arena, 2, sizeof(*e->entity.v));
    e->values.v = arena_calloc(r->arena, METADATA_QUOTA_KEYS, sizeof(*e->values.v));
    e->entity.n = e->values.n = 0;
    if (e->entity.v == NULL || e->values.v == NULL)
        return;
    if (q->entity & METADATA_QUOTA_USER)
        e->entity.v[e->entity.n++] = (struct kmsg_describe_client_quotas_response_entity_data){
            KSTR_LIT("user"), broker_kstr(r, q->user)};
    if (q->entity & METADATA_QUOTA_CLIENT_ID)
        e->entity.v[e->entity.n++] = (struct kmsg_describe_client_quotas_response_entity_data){
            KSTR_LIT("client-id"), broker_kstr(r, q->client_id)};
    for (int k = 0; k < METADATA_QUOTA_KEYS; k++)
        if (q->set & (1u << k))
            e->values.v[e->values.n++] = (struct kmsg_describe_client_quotas_response_value_data){
                broker_kstr(r, metadata_quota_key_name((enum metadata_quota_key)k)), q->values[k]};
}

void handle_describe_client_quotas(struct broker_req *r)
{
    struct kmsg_describe_client_quotas_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_client_quotas_request_decode, &req))
        return;
    struct kmsg_describe_client_quotas_response resp;
    kmsg_describe_client_quotas_response_init(&resp);
    struct quota_filter f;
    const char *why = NULL;
    resp.error_code = quota_filter_parse(r, &req, &f, &why);
    if (resp.error_code == 0 && broker_authorizer_on(r->b) &&
        !broker_authorize_cluster(r, ACL_OPERATION_DESCRIBE_CONFIGS)) {
        resp.error_code = KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED; /* Kafka: DESCRIBE_CONFIGS */
        why = "Cluster authorization failed.";
    }
    if (resp.error_code != 0) {
        resp.error_message = broker_kstr(r, why);
        resp.entries = (struct kmsg_describe_client_quotas_response_entry_data_array){-1, NULL};
        r->failed = true;
        broker_reply(r, (kproto_encode_fn)kmsg_describe_client_quotas_response_encode, &resp);
        return;
    }
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    resp.entries.n = 0;
    resp.entries.v = arena_calloc(r->arena, img->n_client_quotas + 1, sizeof(*resp.entries.v));
    for (size_t i = 0; resp.entries.v && i < img->n_client_quotas; i++)
        if (quota_filter_match(&f, &img->client_quotas[i]))
            describe_entry(r, &img->client_quotas[i], &resp.entries.v[resp.entries.n++]);
    metadata_image_release(img);
    if (resp.entries.v == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    broker_reply(r, (kproto_encode_fn)kmsg_describe_client_quotas_response_encode, &resp);
}

/* The response with every entry's entity echoed; errors filled in by the caller. */
static struct kmsg_alter_client_quotas_response *
alter_response_new(struct broker_req *r, const struct kmsg_alter_client_quotas_request *req)
{
    struct kmsg_alter_client_quotas_response *resp = arena_calloc(r->arena, 1, sizeof(*resp));
    int32_t n = req->entries.n > 0 ? req->entries.n : 0;
    if (resp == NULL)
        return NULL;
    kmsg_alter_client_quotas_response_init(resp);
    resp->entries.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp->entries.v));
    if (resp->entries.v == NULL)
        return NULL;
    resp->entries.n = n;
    for (int32_t i = 0; i < n; i++) {
        struct kmsg_alter_client_quotas_response_entry_data *e = &resp->entries.v[i];
        const struct kmsg_alter_client_quotas_request_entry_data *q = &req->entries.v[i];
        kmsg_alter_client_quotas_response_entry_data_init(e);
        int32_t ne = q->entity.n > 0 ? q->entity.n : 0;
        e->entity.v = arena_calloc(r->arena, (size_t)ne + 1, sizeof(*e->entity.v));
        if (e->entity.v == NULL)
            return NULL;
        e->entity.n = ne;
        for (int32_t j = 0; j < ne; j++)
            e->entity.v[j] = (struct kmsg_alter_client_quotas_response_entity_data){
                q->entity.v[j].entity_type, q->entity.v[j].entity_name};
    }
    return resp;
}

static void alter_quotas_done(struct broker_async *a)
{
    struct kmsg_alter_client_quotas_response *resp = a->arg;
    for (int32_t i = 0; i < resp->entries.n; i++) {
        struct kmsg_alter_client_quotas_response_entry_data *e = &resp->entries.v[i];
        const struct broker_async_topic *t = (size_t)i < a->n_topics ? &a->topics[i] : NULL;
        e->error_code = a->error_code ? a->error_code : t ? t->error_code : 0;
        e->error_message = broker_kstr(a->r, a->error_code ? a->error_message
                                             : t           ? t->error_message
                                                           : NULL);
        if (e->error_code)
            a->r->failed = true;
    }
    broker_reply(a->r, (kproto_encode_fn)kmsg_alter_client_quotas_response_encode, resp);
}

/* Copies the request into the controller's form (strings NUL-terminated in r's arena). */
static struct controller_quota_alter *
alter_entries(struct broker_req *r, const struct kmsg_alter_client_quotas_request *req)
{
    int32_t n = req->entries.n > 0 ? req->entries.n : 0;
    struct controller_quota_alter *v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*v));
    for (int32_t i = 0; v && i < n; i++) {
        const struct kmsg_alter_client_quotas_request_entry_data *q = &req->entries.v[i];
        uint32_t ne = q->entity.n > 0 ? (uint32_t)q->entity.n : 0;
        uint32_t no = q->ops.n > 0 ? (uint32_t)q->ops.n : 0;
        struct controller_quota_component *c = arena_calloc(r->arena, ne + 1, sizeof(*c));
        struct controller_quota_op *o = arena_calloc(r->arena, no + 1, sizeof(*o));
        if (c == NULL || o == NULL)
            return NULL;
        for (uint32_t j = 0; j < ne; j++)
            c[j] = (struct controller_quota_component){broker_name(r, q->entity.v[j].entity_type),
                                                       broker_str(r, q->entity.v[j].entity_name)};
        for (uint32_t j = 0; j < no; j++)
            o[j] = (struct controller_quota_op){broker_name(r, q->ops.v[j].key), q->ops.v[j].value,
                                                q->ops.v[j].remove};
        v[i] = (struct controller_quota_alter){ne, c, no, o};
    }
    return v;
}

/* Every entry of resp gets code; the reply goes now. */
static void alter_quotas_refuse(struct broker_req *r,
                                struct kmsg_alter_client_quotas_response *resp, int16_t code)
{
    for (int32_t i = 0; i < resp->entries.n; i++) {
        resp->entries.v[i].error_code = code;
        r->failed = true;
    }
    broker_reply(r, (kproto_encode_fn)kmsg_alter_client_quotas_response_encode, resp);
}

void handle_alter_client_quotas(struct broker_req *r)
{
    struct kmsg_alter_client_quotas_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_alter_client_quotas_request_decode, &req))
        return;
    struct kmsg_alter_client_quotas_response *resp = alter_response_new(r, &req);
    if (resp != NULL && broker_authorizer_on(r->b) &&
        !broker_authorize_cluster(r, ACL_OPERATION_ALTER_CONFIGS)) {
        alter_quotas_refuse(r, resp, KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED); /* Kafka's check */
        return;
    }
    if (forwarder_relay(r)) /* checked here: the controller sees this broker's principal */
        return;
    struct controller_quota_alter *entries = resp ? alter_entries(r, &req) : NULL;
    if (entries == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    size_t n = (size_t)resp->entries.n;
    struct broker_async *a = broker_async_new(r, alter_quotas_done, resp);
    if (a == NULL || controller_alter_client_quotas(r->b->ctl, entries, n, req.validate_only,
                                                    broker_async_done, a) != 0) {
        broker_async_free(a);
        alter_quotas_refuse(r, resp, KAFKA_ERR_NOT_CONTROLLER);
    }
}
