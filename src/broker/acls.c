/*
 * The ACL APIs: DescribeAcls (29), CreateAcls (30), DeleteAcls (31), with Kafka's checks:
 * SECURITY_DISABLED without an authorizer, DESCRIBE (describe) or ALTER (create, delete) on the
 * cluster, else CLUSTER_AUTHORIZATION_FAILED.
 *
 * Create and delete change the metadata log, so a node that is not the active controller
 * relays them there (forwarder.c) after checking the client's right here: the relayed request
 * reaches the controller as the broker's, whose principal is a super user (authorizer.h).
 * DeleteAcls resolves its filters against this node's image and removes the matching ids;
 * an ACL a concurrent request removed first is reported but not removed twice.
 */
#include <errno.h>
#include <string.h>

#include "broker/async.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/forwarder.h"
#include "broker/handlers.h"
#include "proto/gen/create_acls.h"
#include "proto/gen/delete_acls.h"
#include "proto/gen/describe_acls.h"
#include "proto/gen/errors.h"

#define ACLS_NO_AUTHORIZER "No Authorizer is configured."

/* 0 when r may go on, else the error every result carries. */
static int16_t acls_check(struct broker_req *r, int op)
{
    if (!broker_authorizer_on(r->b))
        return KAFKA_ERR_SECURITY_DISABLED;
    return broker_authorize_cluster(r, op) ? 0 : KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED;
}

static const char *acls_error_message(int16_t code)
{
    return code == KAFKA_ERR_SECURITY_DISABLED ? ACLS_NO_AUTHORIZER : NULL;
}

/* A filter of the request as security/acl.h's; strings in r's arena. */
static struct acl_filter acls_filter(struct broker_req *r, int8_t type, struct kstr name,
                                     int8_t pattern, struct kstr principal, struct kstr host,
                                     int8_t op, int8_t permission)
{
    return (struct acl_filter){type,
                               pattern,
                               op,
                               permission,
                               broker_str(r, name),
                               broker_str(r, principal),
                               broker_str(r, host)};
}

/* ---- DescribeAcls ---- */

static bool acls_same_resource(const struct acl_binding *a, const struct acl_binding *b)
{
    return a->resource_type == b->resource_type && a->pattern_type == b->pattern_type &&
           strcmp(a->resource_name, b->resource_name) == 0;
}

/* Adds acls[i] (a match) under its resource, which gets room for every later match of it. */
static int describe_acls_add(struct broker_req *r, struct kmsg_describe_acls_response *resp,
                             const struct acl_filter *f, const struct acl_binding *acls, size_t n,
                             size_t i, int32_t *resource_of)
{
    const struct acl_binding *b = &acls[i];
    int32_t at = -1;
    for (size_t j = 0; j < i && at < 0; j++)
        if (resource_of[j] >= 0 && acls_same_resource(&acls[j], b))
            at = resource_of[j];
    if (at < 0) {
        size_t room = 0;
        for (size_t j = i; j < n; j++)
            room += acls_same_resource(&acls[j], b) && acl_filter_matches(f, &acls[j]);
        at = resp->resources.n++;
        struct kmsg_describe_acls_response_describe_acls_resource *res = &resp->resources.v[at];
        kmsg_describe_acls_response_describe_acls_resource_init(res);
        res->resource_type = b->resource_type;
        res->pattern_type = b->pattern_type;
        res->resource_name = broker_kstr(r, b->resource_name);
        res->acls.v = arena_calloc(r->arena, room, sizeof(*res->acls.v));
        res->acls.n = 0;
        if (res->acls.v == NULL)
            return -ENOMEM;
    }
    resource_of[i] = at;
    struct kmsg_describe_acls_response_describe_acls_resource *res = &resp->resources.v[at];
    struct kmsg_describe_acls_response_acl_description *d = &res->acls.v[res->acls.n++];
    kmsg_describe_acls_response_acl_description_init(d);
    d->principal = broker_kstr(r, b->principal);
    d->host = broker_kstr(r, b->host);
    d->operation = b->operation;
    d->permission_type = b->permission;
    return 0;
}

void handle_describe_acls(struct broker_req *r)
{
    struct kmsg_describe_acls_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_acls_request_decode, &req) != 0)
        return;
    struct kmsg_describe_acls_response resp;
    kmsg_describe_acls_response_init(&resp);
    resp.error_code = acls_check(r, ACL_OPERATION_DESCRIBE);
    resp.error_message = broker_kstr(r, acls_error_message(resp.error_code));
    resp.resources.n = 0;
    if (resp.error_code != 0) {
        broker_reply(r, (kproto_encode_fn)kmsg_describe_acls_response_encode, &resp);
        return;
    }
    struct acl_filter f =
        acls_filter(r, req.resource_type_filter, req.resource_name_filter, req.pattern_type_filter,
                    req.principal_filter, req.host_filter, req.operation, req.permission_type);
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    size_t n;
    const struct acl_binding *acls = metadata_image_acls(img, &n);
    resp.resources.v = arena_calloc(r->arena, n + 1, sizeof(*resp.resources.v));
    int32_t *resource_of = arena_calloc(r->arena, n + 1, sizeof(*resource_of));
    int rc = resp.resources.v && resource_of ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        resource_of[i] = -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (acl_filter_matches(&f, &acls[i]))
            rc = describe_acls_add(r, &resp, &f, acls, n, i, resource_of);
    metadata_image_release(img);
    if (rc != 0) {
        broker_close(r, "out of memory");
        return;
    }
    broker_reply(r, (kproto_encode_fn)kmsg_describe_acls_response_encode, &resp);
}

/* ---- CreateAcls ---- */

struct create_acls_state {
    struct kmsg_create_acls_response resp;
    int32_t *change_of; /* creation i -> index in the submitted changes, or -1 */
};

static void create_acls_done(struct broker_async *a)
{
    struct create_acls_state *st = a->arg;
    for (int32_t i = 0; i < st->resp.results.n; i++) {
        struct kmsg_create_acls_response_acl_creation_result *o = &st->resp.results.v[i];
        int32_t k = st->change_of[i];
        if (k < 0)
            continue;
        const char *msg = a->error_code ? a->error_message : NULL;
        o->error_code = a->error_code;
        if (a->error_code == 0 && (size_t)k < a->n_topics) {
            o->error_code = a->topics[k].error_code;
            msg = a->topics[k].error_message;
        }
        o->error_message = broker_kstr(a->r, msg);
    }
    broker_reply(a->r, (kproto_encode_fn)kmsg_create_acls_response_encode, &st->resp);
}

/* Fills st->resp with one result per creation and `changes` with the valid ones; returns the
 * number of changes, or -ENOMEM. */
static int create_acls_prepare(struct broker_req *r, const struct kmsg_create_acls_request *req,
                               int16_t error, struct create_acls_state *st,
                               struct controller_acl_change *changes)
{
    int n = 0;
    for (int32_t i = 0; i < st->resp.results.n; i++) {
        const struct kmsg_create_acls_request_acl_creation *c = &req->creations.v[i];
        struct kmsg_create_acls_response_acl_creation_result *o = &st->resp.results.v[i];
        kmsg_create_acls_response_acl_creation_result_init(o);
        st->change_of[i] = -1;
        if (error != 0) {
            o->error_code = error;
            o->error_message = broker_kstr(r, acls_error_message(error));
            continue;
        }
        struct acl_binding b = {
            c->resource_type,      c->resource_pattern_type,        c->operation,
            c->permission_type,    broker_str(r, c->resource_name), broker_str(r, c->principal),
            broker_str(r, c->host)};
        char msg[256];
        o->error_code = (int16_t)acl_binding_check(&b, msg, sizeof(msg));
        if (o->error_code != 0) {
            o->error_message = broker_kstr(r, msg);
            continue;
        }
        if (image_generate_topic_id(changes[n].id) != 0)
            return -ENOMEM;
        changes[n].binding = b;
        st->change_of[i] = n++;
    }
    return n;
}

void handle_create_acls(struct broker_req *r)
{
    int16_t error = acls_check(r, ACL_OPERATION_ALTER);
    if (error == 0 && forwarder_relay(r))
        return;
    struct kmsg_create_acls_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_create_acls_request_decode, &req) != 0)
        return;
    size_t n = req.creations.n > 0 ? (size_t)req.creations.n : 0;
    struct create_acls_state *st = arena_calloc(r->arena, 1, sizeof(*st));
    struct controller_acl_change *changes = arena_calloc(r->arena, n + 1, sizeof(*changes));
    if (st != NULL) {
        kmsg_create_acls_response_init(&st->resp);
        st->resp.results.v = arena_calloc(r->arena, n + 1, sizeof(*st->resp.results.v));
        st->change_of = arena_calloc(r->arena, n + 1, sizeof(*st->change_of));
        st->resp.results.n = (int32_t)n;
    }
    if (st == NULL || changes == NULL || st->resp.results.v == NULL || st->change_of == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    int k = create_acls_prepare(r, &req, error, st, changes);
    if (k <= 0) {
        if (k < 0)
            r->failed = true;
        broker_reply(r, (kproto_encode_fn)kmsg_create_acls_response_encode, &st->resp);
        return;
    }
    struct broker_async *a = broker_async_new(r, create_acls_done, st);
    if (a == NULL ||
        controller_alter_acls(r->b->ctl, changes, (size_t)k, broker_async_done, a) != 0) {
        broker_async_free(a);
        broker_close(r, "cannot submit CreateAcls to the controller");
    }
}

/* ---- DeleteAcls ---- */

struct delete_acls_state {
    struct kmsg_delete_acls_response resp;
};

static void delete_acls_done(struct broker_async *a)
{
    struct delete_acls_state *st = a->arg;
    for (int32_t i = 0; a->error_code != 0 && i < st->resp.filter_results.n; i++) {
        st->resp.filter_results.v[i].error_code = a->error_code;
        st->resp.filter_results.v[i].error_message = broker_kstr(a->r, a->error_message);
        st->resp.filter_results.v[i].matching_acls.n = 0;
    }
    broker_reply(a->r, (kproto_encode_fn)kmsg_delete_acls_response_encode, &st->resp);
}

/* Resolves one filter against the image: its matches in o, their ids (once) in changes. */
static int delete_acls_resolve(struct broker_req *r, const struct metadata_image *img,
                               const struct acl_filter *f,
                               struct kmsg_delete_acls_response_delete_acls_filter_result *o,
                               struct controller_acl_change *changes, size_t *n_changes,
                               bool *taken)
{
    size_t n;
    const struct acl_binding *acls = metadata_image_acls(img, &n);
    o->matching_acls.v = arena_calloc(r->arena, n + 1, sizeof(*o->matching_acls.v));
    o->matching_acls.n = 0;
    if (o->matching_acls.v == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct acl_binding *b = &acls[i];
        if (!acl_filter_matches(f, b))
            continue;
        struct kmsg_delete_acls_response_delete_acls_matching_acl *m =
            &o->matching_acls.v[o->matching_acls.n++];
        kmsg_delete_acls_response_delete_acls_matching_acl_init(m);
        m->resource_type = b->resource_type;
        m->resource_name = broker_kstr(r, b->resource_name);
        m->pattern_type = b->pattern_type;
        m->principal = broker_kstr(r, b->principal);
        m->host = broker_kstr(r, b->host);
        m->operation = b->operation;
        m->permission_type = b->permission;
        if (taken[i])
            continue;
        taken[i] = true;
        changes[*n_changes].remove = true;
        memcpy(changes[*n_changes].id, img->acls->ids[i], METADATA_UUID_LEN);
        (*n_changes)++;
    }
    return 0;
}

void handle_delete_acls(struct broker_req *r)
{
    int16_t error = acls_check(r, ACL_OPERATION_ALTER);
    if (error == 0 && forwarder_relay(r))
        return;
    struct kmsg_delete_acls_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_delete_acls_request_decode, &req) != 0)
        return;
    size_t nf = req.filters.n > 0 ? (size_t)req.filters.n : 0;
    struct delete_acls_state *st = arena_calloc(r->arena, 1, sizeof(*st));
    if (st == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    kmsg_delete_acls_response_init(&st->resp);
    st->resp.filter_results.v = arena_calloc(r->arena, nf + 1, sizeof(*st->resp.filter_results.v));
    st->resp.filter_results.n = (int32_t)nf;
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    size_t n_acls;
    metadata_image_acls(img, &n_acls);
    struct controller_acl_change *changes = arena_calloc(r->arena, n_acls + 1, sizeof(*changes));
    bool *taken = arena_calloc(r->arena, n_acls + 1, sizeof(*taken));
    int rc = st->resp.filter_results.v && changes && taken ? 0 : -ENOMEM;
    size_t n_changes = 0;
    for (size_t i = 0; rc == 0 && i < nf; i++) {
        const struct kmsg_delete_acls_request_delete_acls_filter *q = &req.filters.v[i];
        struct kmsg_delete_acls_response_delete_acls_filter_result *o =
            &st->resp.filter_results.v[i];
        kmsg_delete_acls_response_delete_acls_filter_result_init(o);
        o->matching_acls.n = 0;
        if (error != 0) {
            o->error_code = error;
            o->error_message = broker_kstr(r, acls_error_message(error));
            continue;
        }
        struct acl_filter f =
            acls_filter(r, q->resource_type_filter, q->resource_name_filter, q->pattern_type_filter,
                        q->principal_filter, q->host_filter, q->operation, q->permission_type);
        rc = delete_acls_resolve(r, img, &f, o, changes, &n_changes, taken);
    }
    metadata_image_release(img);
    if (rc != 0) {
        broker_close(r, "out of memory");
        return;
    }
    if (n_changes == 0) {
        broker_reply(r, (kproto_encode_fn)kmsg_delete_acls_response_encode, &st->resp);
        return;
    }
    struct broker_async *a = broker_async_new(r, delete_acls_done, st);
    if (a == NULL ||
        controller_alter_acls(r->b->ctl, changes, n_changes, broker_async_done, a) != 0) {
        broker_async_free(a);
        broker_close(r, "cannot submit DeleteAcls to the controller");
    }
}
