/*
 * DescribeUserScramCredentials (50) and AlterUserScramCredentials (51), KIP-554.
 *
 * Alter is a metadata change: the active controller validates it and writes the credentials to
 * the metadata log (cluster/scram_commands.c); another node forwards the request there. The
 * salted password a client sends is turned into StoredKey/ServerKey before anything is queued.
 *
 * Describe reads this node's metadata image, as Kafka's brokers answer it from their metadata
 * cache (ScramImage.describe): mechanism and iterations per user, never salts or keys. No user
 * list (null or empty) describes every user; an asked-for user without credentials is
 * RESOURCE_NOT_FOUND, a user asked for twice DUPLICATE_RESOURCE.
 */
#include <string.h>

#include "broker/async.h"
#include "broker/broker_internal.h"
#include "broker/forwarder.h"
#include "broker/authorizer.h"
#include "broker/handlers.h"
#include "cluster/image_scram.h"
#include "proto/gen/alter_user_scram_credentials.h"
#include "proto/gen/describe_user_scram_credentials.h"
#include "proto/gen/errors.h"

/* ---------- Describe ---------- */

typedef struct kmsg_describe_user_scram_credentials_response_describe_user_scram_credentials_result
    scram_describe_result;
typedef struct kmsg_describe_user_scram_credentials_response_credential_info scram_info;

/* Fills res for user `name` from img (credential_infos or RESOURCE_NOT_FOUND). */
static int scram_describe_user(struct broker_req *r, const struct metadata_image *img,
                               const char *name, scram_describe_result *res)
{
    kmsg_describe_user_scram_credentials_response_describe_user_scram_credentials_result_init(res);
    res->user = broker_kstr(r, name);
    size_t i = metadata_image_scram_first(img, name), n = metadata_image_scram_count(img);
    scram_info *infos = arena_calloc(r->arena, 2, sizeof(*infos));
    if (infos == NULL)
        return -1;
    int32_t k = 0;
    for (; i < n && k < 2; i++) {
        const struct metadata_scram_credential *c = metadata_image_scram_at(img, i);
        if (strcmp(c->name, name) != 0)
            break;
        kmsg_describe_user_scram_credentials_response_credential_info_init(&infos[k]);
        infos[k].mechanism = (int8_t)c->mechanism;
        infos[k++].iterations = c->iterations;
    }
    res->credential_infos.v = infos;
    res->credential_infos.n = k;
    if (k == 0) {
        char msg[320];
        snprintf(msg, sizeof(msg), "attemptToDescribeUserThatDoesNotExist: %s", name);
        res->error_code = KAFKA_ERR_RESOURCE_NOT_FOUND;
        res->error_message = broker_kstr(r, msg);
    }
    return 0;
}

/* Every user with a credential, in name order. */
static int scram_describe_all(struct broker_req *r, const struct metadata_image *img,
                              scram_describe_result **out, int32_t *n_out)
{
    size_t n = metadata_image_scram_count(img);
    scram_describe_result *v = arena_calloc(r->arena, n + 1, sizeof(*v));
    if (v == NULL)
        return -1;
    int32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *name = metadata_image_scram_at(img, i)->name;
        if (i > 0 && strcmp(metadata_image_scram_at(img, i - 1)->name, name) == 0)
            continue;
        if (scram_describe_user(r, img, name, &v[k++]) != 0)
            return -1;
    }
    *out = v;
    *n_out = k;
    return 0;
}

/* The users asked for, duplicates answered once with DUPLICATE_RESOURCE. */
static int scram_describe_some(struct broker_req *r, const struct metadata_image *img,
                               const struct kmsg_describe_user_scram_credentials_request *req,
                               scram_describe_result **out, int32_t *n_out)
{
    int32_t n = req->users.n;
    scram_describe_result *v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*v));
    char **names = arena_calloc(r->arena, (size_t)n + 1, sizeof(char *));
    if (v == NULL || names == NULL)
        return -1;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        char *name = broker_name(r, req->users.v[i].name);
        if (name == NULL)
            return -1;
        int32_t j = 0;
        while (j < k && strcmp(names[j], name) != 0)
            j++;
        if (j < k) {
            v[j].error_code = KAFKA_ERR_DUPLICATE_RESOURCE;
            v[j].credential_infos.n = 0;
            char msg[360];
            snprintf(msg, sizeof(msg),
                     "Cannot describe SCRAM credentials for the same user twice in a single "
                     "request: %s",
                     name);
            v[j].error_message = broker_kstr(r, msg);
            continue;
        }
        names[k] = name;
        if (scram_describe_user(r, img, name, &v[k++]) != 0)
            return -1;
    }
    *out = v;
    *n_out = k;
    return 0;
}

void handle_describe_user_scram_credentials(struct broker_req *r)
{
    struct kmsg_describe_user_scram_credentials_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_user_scram_credentials_request_decode,
                      &req) != 0)
        return;
    struct kmsg_describe_user_scram_credentials_response resp;
    kmsg_describe_user_scram_credentials_response_init(&resp);
    if (broker_authorizer_on(r->b) && !broker_authorize_cluster(r, ACL_OPERATION_DESCRIBE)) {
        resp.error_code = KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED; /* Kafka: DESCRIBE on CLUSTER */
        r->failed = true;
        broker_reply(r, (kproto_encode_fn)kmsg_describe_user_scram_credentials_response_encode,
                     &resp);
        return;
    }
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    int rc = req.users.n > 0 ? scram_describe_some(r, img, &req, &resp.results.v, &resp.results.n)
                             : scram_describe_all(r, img, &resp.results.v, &resp.results.n);
    metadata_image_release(img);
    if (rc != 0) {
        broker_close(r, "out of memory");
        return;
    }
    broker_reply(r, (kproto_encode_fn)kmsg_describe_user_scram_credentials_response_encode, &resp);
}

/* ---------- Alter ---------- */

typedef struct kmsg_alter_user_scram_credentials_response_alter_user_scram_credentials_result
    scram_alter_result;

static void scram_alter_resume(struct broker_async *a)
{
    struct broker_req *r = a->r;
    struct kmsg_alter_user_scram_credentials_response resp;
    kmsg_alter_user_scram_credentials_response_init(&resp);
    scram_alter_result *v = arena_calloc(r->arena, a->n_topics + 1, sizeof(*v));
    if (v == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    for (size_t i = 0; i < a->n_topics; i++) {
        kmsg_alter_user_scram_credentials_response_alter_user_scram_credentials_result_init(&v[i]);
        v[i].user = broker_kstr(r, a->topics[i].name ? a->topics[i].name : "");
        v[i].error_code = a->topics[i].error_code;
        v[i].error_message = a->topics[i].error_code && a->topics[i].error_message
                                 ? broker_kstr(r, a->topics[i].error_message)
                                 : KSTR_NULL;
    }
    resp.results.v = v;
    resp.results.n = (int32_t)a->n_topics;
    broker_reply(r, (kproto_encode_fn)kmsg_alter_user_scram_credentials_response_encode, &resp);
}

/* The command could not be queued: every change's user gets `code`. */
static void scram_alter_refuse(struct broker_req *r, const struct controller_scram_change *c,
                               size_t n, int16_t code)
{
    struct kmsg_alter_user_scram_credentials_response resp;
    kmsg_alter_user_scram_credentials_response_init(&resp);
    scram_alter_result *v = arena_calloc(r->arena, n + 1, sizeof(*v));
    if (v == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        kmsg_alter_user_scram_credentials_response_alter_user_scram_credentials_result_init(&v[i]);
        v[i].user = broker_kstr(r, c[i].name);
        v[i].error_code = code;
    }
    resp.results.v = v;
    resp.results.n = (int32_t)n;
    broker_reply(r, (kproto_encode_fn)kmsg_alter_user_scram_credentials_response_encode, &resp);
}

void handle_alter_user_scram_credentials(struct broker_req *r)
{
    struct kmsg_alter_user_scram_credentials_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_alter_user_scram_credentials_request_decode,
                      &req) != 0)
        return;
    size_t nd = req.deletions.n > 0 ? (size_t)req.deletions.n : 0;
    size_t nu = req.upsertions.n > 0 ? (size_t)req.upsertions.n : 0;
    struct controller_scram_change *c = arena_calloc(r->arena, nd + nu + 1, sizeof(*c));
    if (c == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    for (size_t i = 0; i < nd; i++)
        c[i] = (struct controller_scram_change){.name = broker_name(r, req.deletions.v[i].name),
                                                .mechanism = req.deletions.v[i].mechanism};
    for (size_t i = 0; i < nu; i++) {
        const struct kmsg_alter_user_scram_credentials_request_scram_credential_upsertion *u =
            &req.upsertions.v[i];
        c[nd + i] = (struct controller_scram_change){
            .name = broker_name(r, u->name),
            .mechanism = u->mechanism,
            .upsert = true,
            .iterations = u->iterations,
            .salt = u->salt.ptr,
            .salt_len = u->salt.len > 0 ? (size_t)u->salt.len : 0,
            .salted_password = u->salted_password.ptr,
            .salted_len = u->salted_password.len > 0 ? (size_t)u->salted_password.len : 0};
    }
    for (size_t i = 0; i < nd + nu; i++)
        if (c[i].name == NULL) {
            broker_close(r, "out of memory");
            return;
        }
    if (broker_authorizer_on(r->b) && !broker_authorize_cluster(r, ACL_OPERATION_ALTER)) {
        scram_alter_refuse(r, c, nd + nu, KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED);
        return;
    }
    if (forwarder_relay(r)) /* checked here: the controller sees this broker's principal */
        return;
    struct broker_async *a = broker_async_new(r, scram_alter_resume, NULL);
    if (a == NULL || controller_alter_scram(r->b->ctl, c, nd + nu, broker_async_done, a) != 0) {
        broker_async_free(a);
        scram_alter_refuse(r, c, nd + nu, KAFKA_ERR_NOT_CONTROLLER);
    }
}
