/*
 * Topic administration: CreateTopics (19), DeleteTopics (20), CreatePartitions (37).
 * Each request is validated and applied by the controller (a metadata-log change through
 * raft); the handler waits for the controller's completion without blocking its worker
 * (broker_async) and answers with the per-topic outcome. Data directories of deleted topics
 * are removed asynchronously, once the last reader lets go (partition.c).
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "broker/async.h"
#include "broker/authorizer.h"
#include "broker/forwarder.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "proto/gen/create_partitions.h"
#include "proto/gen/create_topics.h"
#include "proto/gen/delete_topics.h"
#include "proto/gen/errors.h"

/* ---- CreateTopics ---- */

struct create_topics_state {
    struct kmsg_create_topics_request req;
    struct kmsg_create_topics_response resp;
    bool *denied; /* per topic, answered TOPIC_AUTHORIZATION_FAILED and not submitted; or NULL */
};

/* A topic named by id only (DeleteTopics v6): its name in the current image, or "". */
static const char *admin_topic_name_of_id(struct broker_req *r, const uint8_t *id)
{
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_id(img, id);
    char *name = t ? arena_strndup(r->arena, t->name, strlen(t->name)) : NULL;
    metadata_image_release(img);
    return name ? name : "";
}

/*
 * With an authorizer: which topics of a request r's principal may not `op` (CreateTopics:
 * CREATE on the cluster or the topic; DeleteTopics: DELETE on the topic, which id_of names
 * when the request gives no name; CreatePartitions: ALTER), decoded from a copy
 * of the body so that r can still be relayed. NULL when every topic is allowed (or the body
 * does not decode: the handler's own decode answers that).
 */
static bool *
admin_topics_denied_by_id(struct broker_req *r, kproto_decode_fn dec, void *req,
                          struct kstr (*name_of)(const void *req, int32_t i, int16_t v),
                          const uint8_t *(*id_of)(const void *req, int32_t i, int16_t v),
                          int32_t (*count_of)(const void *req, int16_t v), int op)
{
    if (!broker_authorizer_on(r->b))
        return NULL;
    struct kreader copy = r->body;
    if (dec(&copy, r->hdr.api_version, req) != 0)
        return NULL;
    bool cluster = op == ACL_OPERATION_CREATE && broker_authorize_cluster(r, op);
    int32_t n = count_of(req, r->hdr.api_version);
    bool *denied = arena_calloc(r->arena, (size_t)n + 1, sizeof(*denied));
    bool any = false;
    for (int32_t i = 0; denied && !cluster && i < n; i++) {
        const char *name = broker_name(r, name_of(req, i, r->hdr.api_version));
        if (name != NULL && name[0] == 0 && id_of != NULL)
            name = admin_topic_name_of_id(r, id_of(req, i, r->hdr.api_version));
        denied[i] = name == NULL || !broker_authorize(r, NULL, ACL_RESOURCE_TOPIC, name, op);
        any |= denied[i];
    }
    return any ? denied : NULL;
}

/* admin_topics_denied_by_id for requests that name every topic. */
static bool *admin_topics_denied(struct broker_req *r, kproto_decode_fn dec, void *req,
                                 struct kstr (*name_of)(const void *req, int32_t i, int16_t v),
                                 int32_t (*count_of)(const void *req, int16_t v), int op)
{
    return admin_topics_denied_by_id(r, dec, req, name_of, NULL, count_of, op);
}

static struct kstr create_topics_name(const void *req, int32_t i, int16_t v)
{
    (void)v;
    return ((const struct kmsg_create_topics_request *)req)->topics.v[i].name;
}

static int32_t create_topics_count(const void *req, int16_t v)
{
    (void)v;
    int32_t n = ((const struct kmsg_create_topics_request *)req)->topics.n;
    return n > 0 ? n : 0;
}

static void create_topics_done(struct broker_async *a)
{
    struct broker_req *r = a->r;
    struct create_topics_state *st = a->arg;
    size_t k = 0; /* result index: denied topics were not submitted */
    for (int32_t i = 0; i < st->resp.topics.n; i++) {
        struct kmsg_create_topics_response_creatable_topic_result *o = &st->resp.topics.v[i];
        if (st->denied && st->denied[i])
            continue;
        if (a->error_code != 0) {
            o->error_code = a->error_code;
            o->error_message = broker_kstr(r, a->error_message);
            continue;
        }
        if (k >= a->n_topics)
            continue;
        const struct broker_async_topic *t = &a->topics[k++];
        o->error_code = t->error_code;
        o->error_message = broker_kstr(r, t->error_message);
        if (t->error_code == 0) {
            memcpy(o->topic_id.b, t->topic_id, 16);
            o->num_partitions = t->num_partitions;
            const struct kmsg_create_topics_request_creatable_topic *rt = &st->req.topics.v[i];
            o->replication_factor =
                rt->assignments.n > 0
                    ? (int16_t)rt->assignments.v[0].broker_ids.n
                    : (rt->replication_factor > 0 ? rt->replication_factor
                                                  : r->b->cfg.default_replication_factor);
        }
    }
    broker_reply(r, (kproto_encode_fn)kmsg_create_topics_response_encode, &st->resp);
}

/*
 * Merges the active controller's results for the allowed entries (a request holding only
 * those was relayed) into out, the n results of the whole request in request order, each
 * `size` bytes with its int16_t error code at err_off: the denied entries keep their answer,
 * the allowed ones take the controller's in order, or NOT_CONTROLLER when it did not answer
 * (err) or answered fewer.
 */
static void admin_merge_subset(void *out, int32_t n, size_t size, size_t err_off,
                               const bool *denied, const void *got, int32_t ngot, int err)
{
    assert(err_off + sizeof(int16_t) <= size);
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        if (denied[i])
            continue;
        uint8_t *o = (uint8_t *)out + (size_t)i * size;
        if (err == 0 && k < ngot) {
            memcpy(o, (const uint8_t *)got + (size_t)k++ * size, size);
        } else {
            int16_t code = KAFKA_ERR_NOT_CONTROLLER;
            memcpy(o + err_off, &code, sizeof(code));
        }
    }
}

/* The controller's results for the allowed topics, merged in request order with the denied. */
static void create_topics_subset_done(struct broker_req *r, void *arg, int err,
                                      struct kreader *body)
{
    struct create_topics_state *st = arg;
    struct kmsg_create_topics_response cr = {0};
    if (err == 0 && kmsg_create_topics_response_decode(body, r->hdr.api_version, &cr) != 0)
        err = -EBADMSG;
    admin_merge_subset(
        st->resp.topics.v, st->resp.topics.n, sizeof(*st->resp.topics.v),
        offsetof(struct kmsg_create_topics_response_creatable_topic_result, error_code), st->denied,
        cr.topics.v, cr.topics.n, err);
    if (err == 0)
        st->resp.throttle_time_ms = cr.throttle_time_ms;
    broker_reply(r, (kproto_encode_fn)kmsg_create_topics_response_encode, &st->resp);
}

/* Some topics denied, the others for the active controller elsewhere: relays those. */
static bool create_topics_relay_allowed(struct broker_req *r, struct create_topics_state *st,
                                        size_t k)
{
    struct kmsg_create_topics_request q = st->req;
    q.topics.v = arena_calloc(r->arena, k, sizeof(*q.topics.v));
    if (q.topics.v == NULL)
        return false;
    q.topics.n = 0;
    for (int32_t i = 0; i < st->req.topics.n; i++)
        if (!st->denied[i])
            q.topics.v[q.topics.n++] = st->req.topics.v[i];
    assert((size_t)q.topics.n == k);
    return forwarder_relay_subset(r, &q, create_topics_subset_done, st);
}

/* Converts one requested topic; returns 0 or -ENOMEM. */
static int create_topics_convert(struct broker_req *r,
                                 const struct kmsg_create_topics_request_creatable_topic *rt,
                                 struct controller_new_topic *nt)
{
    nt->name = broker_str(r, rt->name);
    nt->num_partitions = rt->num_partitions;
    nt->replication_factor = rt->replication_factor;
    if (nt->name == NULL)
        return -ENOMEM;
    if (rt->assignments.n > 0) {
        struct controller_replica_list *a =
            arena_calloc(r->arena, (size_t)rt->assignments.n, sizeof(*a));
        if (a == NULL)
            return -ENOMEM;
        for (int32_t i = 0; i < rt->assignments.n; i++) {
            a[i].partition = rt->assignments.v[i].partition_index;
            a[i].n_replicas =
                (uint32_t)(rt->assignments.v[i].broker_ids.n > 0 ? rt->assignments.v[i].broker_ids.n
                                                                 : 0);
            a[i].replicas = rt->assignments.v[i].broker_ids.v;
        }
        nt->assignments = a;
        nt->n_assignments = (uint32_t)rt->assignments.n;
    }
    if (rt->configs.n > 0) {
        struct metadata_config_entry *c = arena_calloc(r->arena, (size_t)rt->configs.n, sizeof(*c));
        if (c == NULL)
            return -ENOMEM;
        uint32_t k = 0;
        for (int32_t i = 0; i < rt->configs.n; i++) {
            if (rt->configs.v[i].value.len < 0)
                continue; /* null value: use the default */
            c[k].name = broker_str(r, rt->configs.v[i].name);
            c[k].value = broker_str(r, rt->configs.v[i].value);
            if (c[k].name == NULL || c[k].value == NULL)
                return -ENOMEM;
            k++;
        }
        nt->configs = c;
        nt->n_configs = k;
    }
    return 0;
}

void handle_create_topics(struct broker_req *r)
{
    if (!r->no_forward && mutation_quota_create_topics(r))
        return;
    struct create_topics_state *st = arena_calloc(r->arena, 1, sizeof(*st));
    if (st == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    st->denied =
        admin_topics_denied(r, (kproto_decode_fn)kmsg_create_topics_request_decode, &st->req,
                            create_topics_name, create_topics_count, ACL_OPERATION_CREATE);
    if (st->denied == NULL && forwarder_relay(r))
        return;
    if (broker_decode(r, (kproto_decode_fn)kmsg_create_topics_request_decode, &st->req) != 0)
        return;
    kmsg_create_topics_response_init(&st->resp);
    int32_t n = st->req.topics.n > 0 ? st->req.topics.n : 0;
    st->resp.topics.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*st->resp.topics.v));
    struct controller_new_topic *nt = arena_calloc(r->arena, (size_t)n + 1, sizeof(*nt));
    if (st->resp.topics.v == NULL || nt == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    st->resp.topics.n = n;
    size_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        struct kmsg_create_topics_response_creatable_topic_result *o = &st->resp.topics.v[i];
        kmsg_create_topics_response_creatable_topic_result_init(o);
        o->name = st->req.topics.v[i].name;
        o->num_partitions = -1;
        o->replication_factor = -1;
        o->configs.n = -1; /* not reported */
        if (st->denied && st->denied[i]) {
            o->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
            o->error_message = broker_kstr(r, "Authorization failed.");
            continue;
        }
        if (create_topics_convert(r, &st->req.topics.v[i], &nt[k++]) != 0) {
            broker_close(r, "out of memory");
            return;
        }
    }
    if (k == 0) {
        broker_reply(r, (kproto_encode_fn)kmsg_create_topics_response_encode, &st->resp);
        return;
    }
    if (st->denied != NULL && create_topics_relay_allowed(r, st, k))
        return;
    struct broker_async *a = broker_async_new(r, create_topics_done, st);
    if (a == NULL || controller_create_topics(r->b->ctl, nt, k, st->req.validate_only,
                                              broker_async_done, a) != 0) {
        broker_async_free(a);
        for (int32_t i = 0; i < n; i++)
            if (st->denied == NULL || !st->denied[i])
                st->resp.topics.v[i].error_code = KAFKA_ERR_NOT_CONTROLLER;
        broker_reply(r, (kproto_encode_fn)kmsg_create_topics_response_encode, &st->resp);
    }
}

/* ---- DeleteTopics ---- */

struct delete_topics_state {
    struct kmsg_delete_topics_request req;
    struct kmsg_delete_topics_response resp;
    bool *denied; /* as in create_topics_state */
};

static struct kstr delete_topics_name(const void *req, int32_t i, int16_t v)
{
    const struct kmsg_delete_topics_request *q = req;
    return v >= 6 ? q->topics.v[i].name : q->topic_names.v[i];
}

static const uint8_t *delete_topics_id(const void *req, int32_t i, int16_t v)
{
    const struct kmsg_delete_topics_request *q = req;
    static const uint8_t none[16];
    return v >= 6 ? q->topics.v[i].topic_id.b : none;
}

static int32_t delete_topics_count(const void *req, int16_t v)
{
    const struct kmsg_delete_topics_request *q = req;
    int32_t n = v >= 6 ? q->topics.n : q->topic_names.n;
    return n > 0 ? n : 0;
}

static void delete_topics_done(struct broker_async *a)
{
    struct delete_topics_state *st = a->arg;
    size_t k = 0;
    for (int32_t i = 0; i < st->resp.responses.n; i++) {
        struct kmsg_delete_topics_response_deletable_topic_result *o = &st->resp.responses.v[i];
        if (st->denied && st->denied[i])
            continue;
        if (a->error_code != 0) {
            o->error_code = a->error_code;
        } else if (k < a->n_topics) {
            o->error_code = a->topics[k].error_code;
            o->error_message = broker_kstr(a->r, a->topics[k].error_message);
            if (a->topics[k].error_code == 0)
                memcpy(o->topic_id.b, a->topics[k].topic_id, 16);
            k++;
        }
    }
    broker_reply(a->r, (kproto_encode_fn)kmsg_delete_topics_response_encode, &st->resp);
}

static void delete_topics_subset_done(struct broker_req *r, void *arg, int err,
                                      struct kreader *body)
{
    struct delete_topics_state *st = arg;
    struct kmsg_delete_topics_response cr = {0};
    if (err == 0 && kmsg_delete_topics_response_decode(body, r->hdr.api_version, &cr) != 0)
        err = -EBADMSG;
    admin_merge_subset(
        st->resp.responses.v, st->resp.responses.n, sizeof(*st->resp.responses.v),
        offsetof(struct kmsg_delete_topics_response_deletable_topic_result, error_code), st->denied,
        cr.responses.v, cr.responses.n, err);
    if (err == 0)
        st->resp.throttle_time_ms = cr.throttle_time_ms;
    broker_reply(r, (kproto_encode_fn)kmsg_delete_topics_response_encode, &st->resp);
}

static bool delete_topics_relay_allowed(struct broker_req *r, struct delete_topics_state *st,
                                        size_t k)
{
    struct kmsg_delete_topics_request q = st->req;
    bool v6 = r->hdr.api_version >= 6;
    if (v6) {
        q.topics.v = arena_calloc(r->arena, k, sizeof(*q.topics.v));
        if (q.topics.v == NULL)
            return false;
        q.topics.n = 0;
        for (int32_t i = 0; i < st->req.topics.n; i++)
            if (!st->denied[i])
                q.topics.v[q.topics.n++] = st->req.topics.v[i];
    } else {
        q.topic_names.v = arena_calloc(r->arena, k, sizeof(*q.topic_names.v));
        if (q.topic_names.v == NULL)
            return false;
        q.topic_names.n = 0;
        for (int32_t i = 0; i < st->req.topic_names.n; i++)
            if (!st->denied[i])
                q.topic_names.v[q.topic_names.n++] = st->req.topic_names.v[i];
    }
    return forwarder_relay_subset(r, &q, delete_topics_subset_done, st);
}

void handle_delete_topics(struct broker_req *r)
{
    if (!r->no_forward && mutation_quota_delete_topics(r))
        return;
    struct delete_topics_state *st = arena_calloc(r->arena, 1, sizeof(*st));
    if (st == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    st->denied = admin_topics_denied_by_id(r, (kproto_decode_fn)kmsg_delete_topics_request_decode,
                                           &st->req, delete_topics_name, delete_topics_id,
                                           delete_topics_count, ACL_OPERATION_DELETE);
    if (st->denied == NULL && forwarder_relay(r))
        return;
    if (broker_decode(r, (kproto_decode_fn)kmsg_delete_topics_request_decode, &st->req) != 0)
        return;
    const struct kmsg_delete_topics_request req = st->req;
    kmsg_delete_topics_response_init(&st->resp);
    bool v6 = r->hdr.api_version >= 6;
    int32_t n = v6 ? req.topics.n : req.topic_names.n;
    if (n < 0)
        n = 0;
    st->resp.responses.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*st->resp.responses.v));
    struct controller_topic_ref *refs = arena_calloc(r->arena, (size_t)n + 1, sizeof(*refs));
    if (st->resp.responses.v == NULL || refs == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    st->resp.responses.n = n;
    size_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        struct kmsg_delete_topics_response_deletable_topic_result *o = &st->resp.responses.v[i];
        kmsg_delete_topics_response_deletable_topic_result_init(o);
        struct kstr name = v6 ? req.topics.v[i].name : req.topic_names.v[i];
        o->name = name;
        if (v6)
            o->topic_id = req.topics.v[i].topic_id;
        if (st->denied && st->denied[i]) {
            o->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        refs[k].name = broker_str(r, name);
        if (v6)
            refs[k].topic_id = req.topics.v[i].topic_id.b;
        k++;
    }
    if (!r->b->cfg.delete_topic_enable) {
        for (int32_t i = 0; i < n; i++)
            st->resp.responses.v[i].error_code = KAFKA_ERR_TOPIC_DELETION_DISABLED;
        broker_reply(r, (kproto_encode_fn)kmsg_delete_topics_response_encode, &st->resp);
        return;
    }
    if (k > 0 && st->denied != NULL && delete_topics_relay_allowed(r, st, k))
        return;
    struct broker_async *a = k ? broker_async_new(r, delete_topics_done, st) : NULL;
    if (a == NULL || controller_delete_topics(r->b->ctl, refs, k, broker_async_done, a) != 0) {
        broker_async_free(a);
        for (int32_t i = 0; k && i < n; i++)
            if (st->denied == NULL || !st->denied[i])
                st->resp.responses.v[i].error_code = KAFKA_ERR_NOT_CONTROLLER;
        broker_reply(r, (kproto_encode_fn)kmsg_delete_topics_response_encode, &st->resp);
    }
}

/* ---- CreatePartitions ---- */

struct create_partitions_state {
    struct kmsg_create_partitions_request req;
    struct kmsg_create_partitions_response resp;
    bool *denied; /* as in create_topics_state */
};

static struct kstr create_partitions_name(const void *req, int32_t i, int16_t v)
{
    (void)v;
    return ((const struct kmsg_create_partitions_request *)req)->topics.v[i].name;
}

static int32_t create_partitions_count(const void *req, int16_t v)
{
    (void)v;
    int32_t n = ((const struct kmsg_create_partitions_request *)req)->topics.n;
    return n > 0 ? n : 0;
}

static void create_partitions_done(struct broker_async *a)
{
    struct create_partitions_state *st = a->arg;
    size_t k = 0;
    for (int32_t i = 0; i < st->resp.results.n; i++) {
        struct kmsg_create_partitions_response_create_partitions_topic_result *o =
            &st->resp.results.v[i];
        if (st->denied && st->denied[i])
            continue;
        if (a->error_code != 0) {
            o->error_code = a->error_code;
        } else if (k < a->n_topics) {
            o->error_code = a->topics[k].error_code;
            o->error_message = broker_kstr(a->r, a->topics[k].error_message);
            k++;
        }
    }
    broker_reply(a->r, (kproto_encode_fn)kmsg_create_partitions_response_encode, &st->resp);
}

static void create_partitions_subset_done(struct broker_req *r, void *arg, int err,
                                          struct kreader *body)
{
    struct create_partitions_state *st = arg;
    struct kmsg_create_partitions_response cr = {0};
    if (err == 0 && kmsg_create_partitions_response_decode(body, r->hdr.api_version, &cr) != 0)
        err = -EBADMSG;
    admin_merge_subset(
        st->resp.results.v, st->resp.results.n, sizeof(*st->resp.results.v),
        offsetof(struct kmsg_create_partitions_response_create_partitions_topic_result, error_code),
        st->denied, cr.results.v, cr.results.n, err);
    if (err == 0)
        st->resp.throttle_time_ms = cr.throttle_time_ms;
    broker_reply(r, (kproto_encode_fn)kmsg_create_partitions_response_encode, &st->resp);
}

static bool create_partitions_relay_allowed(struct broker_req *r,
                                            struct create_partitions_state *st, size_t k)
{
    struct kmsg_create_partitions_request q = st->req;
    q.topics.v = arena_calloc(r->arena, k, sizeof(*q.topics.v));
    if (q.topics.v == NULL)
        return false;
    q.topics.n = 0;
    for (int32_t i = 0; i < st->req.topics.n; i++)
        if (!st->denied[i])
            q.topics.v[q.topics.n++] = st->req.topics.v[i];
    return forwarder_relay_subset(r, &q, create_partitions_subset_done, st);
}

void handle_create_partitions(struct broker_req *r)
{
    if (!r->no_forward && mutation_quota_create_partitions(r))
        return;
    struct create_partitions_state *st = arena_calloc(r->arena, 1, sizeof(*st));
    if (st == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    /* Kafka: ALTER on the topic. */
    st->denied =
        admin_topics_denied(r, (kproto_decode_fn)kmsg_create_partitions_request_decode, &st->req,
                            create_partitions_name, create_partitions_count, ACL_OPERATION_ALTER);
    if (st->denied == NULL && forwarder_relay(r))
        return;
    if (broker_decode(r, (kproto_decode_fn)kmsg_create_partitions_request_decode, &st->req) != 0)
        return;
    const struct kmsg_create_partitions_request req = st->req;
    kmsg_create_partitions_response_init(&st->resp);
    int32_t n = req.topics.n > 0 ? req.topics.n : 0;
    st->resp.results.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*st->resp.results.v));
    struct controller_partition_increase *inc = arena_calloc(r->arena, (size_t)n + 1, sizeof(*inc));
    if (st->resp.results.v == NULL || inc == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    st->resp.results.n = n;
    size_t nk = 0; /* topics submitted */
    for (int32_t i = 0; i < n; i++) {
        const struct kmsg_create_partitions_request_create_partitions_topic *t = &req.topics.v[i];
        kmsg_create_partitions_response_create_partitions_topic_result_init(&st->resp.results.v[i]);
        st->resp.results.v[i].name = t->name;
        if (st->denied && st->denied[i]) {
            st->resp.results.v[i].error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
            continue;
        }
        int32_t k = (int32_t)nk++;
        inc[k].name = broker_str(r, t->name);
        inc[k].count = t->count;
        if (t->assignments.n > 0) {
            struct controller_replica_list *a =
                arena_calloc(r->arena, (size_t)t->assignments.n, sizeof(*a));
            if (a == NULL) {
                broker_close(r, "out of memory");
                return;
            }
            for (int32_t j = 0; j < t->assignments.n; j++) {
                a[j].partition = -1;
                a[j].n_replicas = (uint32_t)(t->assignments.v[j].broker_ids.n > 0
                                                 ? t->assignments.v[j].broker_ids.n
                                                 : 0);
                a[j].replicas = t->assignments.v[j].broker_ids.v;
            }
            inc[k].assignments = a;
            inc[k].n_assignments = (uint32_t)t->assignments.n;
        }
    }
    if (nk > 0 && st->denied != NULL && create_partitions_relay_allowed(r, st, nk))
        return;
    struct broker_async *a = nk ? broker_async_new(r, create_partitions_done, st) : NULL;
    if (a == NULL || controller_create_partitions(r->b->ctl, inc, nk, req.validate_only,
                                                  broker_async_done, a) != 0) {
        broker_async_free(a);
        for (int32_t i = 0; nk && i < n; i++)
            if (st->denied == NULL || !st->denied[i])
                st->resp.results.v[i].error_code = KAFKA_ERR_NOT_CONTROLLER;
        broker_reply(r, (kproto_encode_fn)kmsg_create_partitions_response_encode, &st->resp);
    }
}
