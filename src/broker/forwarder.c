/*
 * Forwarder thread (see forwarder.h). Jobs are queued under `mu`; each carries a complete
 * request frame (header + body, no size prefix) and a completion. The thread finds the active
 * controller's broker address in the metadata image, waiting in FWD_RETRY_MS steps until the
 * job's deadline while none is known (an election in progress), and does one blocking
 * round trip per job.
 */
#include "broker/forwarder.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/controller_client.h"
#include "broker/dispatch.h"
#include "broker/handlers.h"
#include "broker/lifecycle.h"
#include "proto/gen/allocate_producer_ids.h"
#include "proto/gen/create_topics.h"
#include "proto/header.h"

#define FWD_TIMEOUT_MS 5000
#define FWD_RETRY_MS 50

typedef void (*fwd_done_fn)(void *arg, int err, uint8_t *resp, size_t len);

struct fwd_job {
    struct fwd_job *next;
    uint8_t *frame; /* owned */
    size_t len;
    int64_t deadline_ms;
    fwd_done_fn done; /* called once on the forwarder thread; resp owned by the job */
    void *arg;
};

struct broker_forwarder {
    struct broker *b;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards head, tail, stopping */
    pthread_cond_t cond;
    struct fwd_job *head, *tail;
    bool stopping;
    struct controller_client client; /* forwarder thread only */
};

static int fwd_submit(struct broker *b, uint8_t *frame, size_t len, fwd_done_fn done, void *arg)
{
    struct broker_forwarder *f = b->fwd;
    struct fwd_job *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return -ENOMEM;
    *j = (struct fwd_job){NULL, frame, len, clock_mono_ms() + FWD_TIMEOUT_MS, done, arg};
    pthread_mutex_lock(&f->mu);
    if (f->stopping) {
        pthread_mutex_unlock(&f->mu);
        free(j);
        return -ESHUTDOWN;
    }
    if (f->tail)
        f->tail->next = j;
    else
        f->head = j;
    f->tail = j;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

/* The active controller's address, or -EAGAIN; -ELOOP when it is this node. */
static int fwd_target(struct broker *b, char *host, size_t hostlen, int *port)
{
    if (controller_is_active(b->ctl))
        return -ELOOP;
    if (controller_leader_id(b->ctl) == b->cfg.node_id)
        return -EAGAIN;
    return lifecycle_controller_address(b, host, hostlen, port);
}

static void fwd_run(struct broker_forwarder *f, struct fwd_job *j)
{
    char host[256];
    int port = 0;
    int rc;
    for (;;) {
        rc = fwd_target(f->b, host, sizeof(host), &port);
        if (rc == 0) {
            uint8_t *resp = NULL;
            size_t len = 0;
            int left = (int)(j->deadline_ms - clock_mono_ms());
            rc = controller_client_roundtrip(&f->client, host, port, j->frame, j->len, &resp, &len,
                                             left > 100 ? left : 100);
            if (rc == 0) {
                j->done(j->arg, 0, resp, len);
                free(resp);
                return;
            }
        }
        if (rc == -ELOOP || clock_mono_ms() + FWD_RETRY_MS >= j->deadline_ms)
            break;
        struct timespec ts = {0, FWD_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&f->mu);
        bool stopping = f->stopping;
        pthread_mutex_unlock(&f->mu);
        if (stopping) {
            rc = -ESHUTDOWN;
            break;
        }
    }
    j->done(j->arg, rc, NULL, 0);
}

static void *fwd_main(void *arg)
{
    struct broker_forwarder *f = arg;
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (f->head == NULL && !f->stopping)
            pthread_cond_wait(&f->cond, &f->mu);
        struct fwd_job *j = f->head;
        if (j == NULL)
            break;
        f->head = j->next;
        if (f->head == NULL)
            f->tail = NULL;
        bool stopping = f->stopping;
        pthread_mutex_unlock(&f->mu);
        if (stopping)
            j->done(j->arg, -ESHUTDOWN, NULL, 0);
        else
            fwd_run(f, j);
        free(j->frame);
        free(j);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    controller_client_close(&f->client);
    return NULL;
}

int forwarder_start(struct broker *b)
{
    struct broker_forwarder *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->b = b;
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    controller_client_init(&f->client, b->cfg.node_id, &b->interbroker);
    b->fwd = f;
    if (pthread_create(&f->thread, NULL, fwd_main, f) != 0)
        return -EAGAIN;
    f->started = true;
    return 0;
}

void forwarder_stop(struct broker *b)
{
    struct broker_forwarder *f = b->fwd;
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = true;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
    if (f->started)
        pthread_join(f->thread, NULL);
    f->started = false;
}

void forwarder_free(struct broker *b)
{
    struct broker_forwarder *f = b->fwd;
    if (f == NULL)
        return;
    assert(!f->started && f->head == NULL); /* stopped: the thread drained the queue */
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cond);
    free(f);
    b->fwd = NULL;
}

/* ---------- relaying client requests ---------- */

struct relay {
    struct broker_req *r;
    int err;
    uint8_t *resp;
    size_t len;
};

/* Worker thread: answers with the controller's bytes, or handles the request locally. */
static void relay_resume(void *arg)
{
    struct relay *rl = arg;
    struct broker_req *r = rl->r;
    if (rl->err == 0) {
        broker_reply_raw(r, rl->resp, rl->len);
    } else {
        r->no_forward = true;
        kr_init(&r->body, r->nr->frame, r->nr->size, r->arena);
        struct kproto_request_header h;
        kproto_request_header_decode(&r->body, &h);
        broker_api_lookup(r->hdr.api_key)->handle(r);
    }
    free(rl->resp);
    free(rl);
}

static void relay_done(void *arg, int err, uint8_t *resp, size_t len)
{
    struct relay *rl = arg;
    rl->err = err;
    if (err == 0) {
        rl->resp = malloc(len);
        if (rl->resp == NULL)
            rl->err = -ENOMEM;
        else
            memcpy(rl->resp, resp, len);
        rl->len = len;
    }
    if (net_worker_post(net_request_worker(rl->r->nr), relay_resume, rl) != 0) {
        logger_warn("forwarder", "dropping a forwarded response during shutdown");
        free(rl->resp);
        free(rl);
    }
}

bool forwarder_relay(struct broker_req *r)
{
    struct broker *b = r->b;
    if (r->no_forward || b->fwd == NULL || controller_is_active(b->ctl))
        return false;
    int32_t leader = controller_leader_id(b->ctl);
    if (leader == b->cfg.node_id)
        return false;
    struct relay *rl = calloc(1, sizeof(*rl));
    uint8_t *frame = rl ? malloc(r->nr->size) : NULL;
    if (frame == NULL) {
        free(rl);
        return false;
    }
    memcpy(frame, r->nr->frame, r->nr->size);
    rl->r = r;
    if (fwd_submit(b, frame, r->nr->size, relay_done, rl) != 0) {
        free(frame);
        free(rl);
        return false;
    }
    return true;
}

/* ---------- relaying the allowed part of a client request ---------- */

struct relay_subset {
    struct broker_req *r;
    forwarder_subset_fn done;
    void *arg;
    int err;
    uint8_t *resp;
    size_t len;
};

/* Worker thread: the answer into r's arena, its header skipped, then the handler's merge. */
static void relay_subset_resume(void *arg)
{
    struct relay_subset *rs = arg;
    struct broker_req *r = rs->r;
    struct kreader body = {0};
    int err = rs->err;
    uint8_t *copy = err == 0 ? arena_alloc(r->arena, rs->len + 1) : NULL;
    if (err == 0 && copy == NULL)
        err = -ENOMEM;
    if (err == 0) {
        memcpy(copy, rs->resp, rs->len);
        kr_init(&body, copy, rs->len, r->arena);
        int32_t corr;
        if (kproto_response_header_decode(
                &body, kproto_response_header_version(r->hdr.api_key, r->hdr.api_version), &corr) !=
            0)
            err = -EBADMSG;
    }
    free(rs->resp);
    forwarder_subset_fn done = rs->done;
    void *darg = rs->arg;
    free(rs);
    done(r, darg, err, &body);
}

static void relay_subset_done(void *arg, int err, uint8_t *resp, size_t len)
{
    struct relay_subset *rs = arg;
    rs->err = err;
    if (err == 0) {
        rs->resp = malloc(len + 1);
        if (rs->resp == NULL)
            rs->err = -ENOMEM;
        else
            memcpy(rs->resp, resp, len);
        rs->len = len;
    }
    if (net_worker_post(net_request_worker(rs->r->nr), relay_subset_resume, rs) != 0) {
        logger_warn("forwarder", "dropping a forwarded response during shutdown");
        free(rs->resp);
        free(rs);
    }
}

static uint8_t *frame_encode(const struct kproto_request_header *h, const void *msg, size_t *len);

bool forwarder_relay_subset(struct broker_req *r, const void *msg, forwarder_subset_fn done,
                            void *arg)
{
    struct broker *b = r->b;
    if (r->no_forward || b->fwd == NULL || controller_is_active(b->ctl) ||
        controller_leader_id(b->ctl) == b->cfg.node_id)
        return false;
    struct relay_subset *rs = calloc(1, sizeof(*rs));
    size_t len = 0;
    uint8_t *frame = rs ? frame_encode(&r->hdr, msg, &len) : NULL;
    if (frame == NULL) {
        free(rs);
        return false;
    }
    *rs = (struct relay_subset){.r = r, .done = done, .arg = arg};
    if (fwd_submit(b, frame, len, relay_subset_done, rs) != 0) {
        free(frame);
        free(rs);
        return false;
    }
    return true;
}

/* ---------- the broker's own requests ---------- */

struct own_call {
    struct broker *b;
    int16_t api_key, version;
    controller_done_fn done;
    void *arg;
};

/* Encodes h + msg (a request of h's API and version) into a malloc'd frame. */
static uint8_t *frame_encode(const struct kproto_request_header *h, const void *msg, size_t *len)
{
    const struct kproto_api *api = kproto_api_lookup(h->api_key);
    struct iochain chain;
    iochain_init(&chain);
    struct kwriter w;
    kw_init(&w, &chain);
    int rc = kproto_request_header_encode(&w, h);
    if (rc == 0)
        rc = api->request.encode(&w, h->api_version, msg);
    uint8_t *frame = rc == 0 && !chain.oom ? malloc(chain.total) : NULL;
    if (frame)
        iochain_flatten(&chain, frame);
    *len = chain.total;
    iochain_free(&chain);
    return frame;
}

/* The broker's own request: header with client id gregor-broker-N. */
static uint8_t *own_frame(struct broker *b, int16_t api_key, int16_t version, const void *msg,
                          size_t *len)
{
    char client_id[32];
    snprintf(client_id, sizeof(client_id), "gregor-broker-%d", b->cfg.node_id);
    struct kproto_request_header h = {api_key,
                                      version,
                                      0,
                                      {client_id, (int32_t)strlen(client_id)},
                                      (int16_t)kproto_request_header_version(api_key, version)};
    return frame_encode(&h, msg, len);
}

/* Encodes msg and queues it for the active controller; on_response completes `done`. */
static int own_submit(struct broker *b, int16_t api_key, int16_t version, const void *msg,
                      fwd_done_fn on_response, controller_done_fn done, void *arg)
{
    struct own_call *c = malloc(sizeof(*c));
    size_t len = 0;
    uint8_t *frame = c ? own_frame(b, api_key, version, msg, &len) : NULL;
    if (frame == NULL) {
        free(c);
        return -ENOMEM;
    }
    *c = (struct own_call){b, api_key, version, done, arg};
    int rc = fwd_submit(b, frame, len, on_response, c);
    if (rc != 0) {
        free(frame);
        free(c);
    }
    return rc;
}

/* Decodes resp into out with its response header skipped; 0 or a negative errno. */
static int own_decode(const struct own_call *c, const uint8_t *resp, size_t len, void *out,
                      struct arena *arena)
{
    struct kreader r;
    kr_init(&r, resp, len, arena);
    int32_t corr;
    int rc = kproto_response_header_decode(
        &r, kproto_response_header_version(c->api_key, c->version), &corr);
    if (rc == 0)
        rc = kproto_api_lookup(c->api_key)->response.decode(&r, c->version, out);
    return rc;
}

static void own_fail(const struct own_call *c, int err)
{
    struct controller_result res = {0};
    res.error_code = err == -ETIMEDOUT || err == -EAGAIN ? KAFKA_ERR_REQUEST_TIMED_OUT
                                                         : KAFKA_ERR_NOT_CONTROLLER;
    res.error_message = "The active controller could not be reached";
    c->done(c->arg, &res);
}

/* Turns a decoded response into the caller's controller_result (arena: scratch for it). */
typedef void (*own_convert_fn)(const struct own_call *c, const void *out, struct arena *arena);

/* Decodes the controller's answer into out and completes the call, or fails it; frees c. */
static void own_complete(struct own_call *c, int err, const uint8_t *resp, size_t len, void *out,
                         own_convert_fn convert)
{
    struct arena arena;
    arena_init(&arena, 0);
    if (err == 0)
        err = own_decode(c, resp, len, out, &arena);
    if (err != 0)
        own_fail(c, err);
    else
        convert(c, out, &arena);
    arena_free(&arena);
    free(c);
}

static void create_topics_result(const struct own_call *c, const void *msg, struct arena *arena)
{
    const struct kmsg_create_topics_response *out = msg;
    size_t n = out->topics.n > 0 ? (size_t)out->topics.n : 0;
    struct controller_topic_result *t = arena_calloc(arena, n + 1, sizeof(*t));
    for (size_t i = 0; t && i < n; i++) {
        const struct kmsg_create_topics_response_creatable_topic_result *o = &out->topics.v[i];
        t[i].name = arena_strndup(arena, o->name.ptr, o->name.len > 0 ? (size_t)o->name.len : 0);
        memcpy(t[i].topic_id, o->topic_id.b, sizeof(t[i].topic_id));
        t[i].error_code = o->error_code;
        t[i].error_message = o->error_message.len >= 0 ? arena_strndup(arena, o->error_message.ptr,
                                                                       (size_t)o->error_message.len)
                                                       : NULL;
        t[i].num_partitions = o->num_partitions;
        t[i].replication_factor = o->replication_factor;
    }
    struct controller_result res = {0};
    res.n_topics = t ? n : 0;
    res.topics = t;
    if (t == NULL)
        res.error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    c->done(c->arg, &res);
}

static void create_topics_done(void *arg, int err, uint8_t *resp, size_t len)
{
    struct kmsg_create_topics_response out;
    own_complete(arg, err, resp, len, &out, create_topics_result);
}

static int create_topics_remote(struct broker *b, const struct controller_new_topic *topics,
                                size_t n, bool validate_only, controller_done_fn done, void *arg)
{
    struct arena arena;
    arena_init(&arena, 0);
    struct kmsg_create_topics_request req;
    kmsg_create_topics_request_init(&req);
    req.timeout_ms = FWD_TIMEOUT_MS;
    req.validate_only = validate_only;
    req.topics.n = (int32_t)n;
    req.topics.v = arena_calloc(&arena, n + 1, sizeof(*req.topics.v));
    for (size_t i = 0; req.topics.v && i < n; i++) {
        const struct controller_new_topic *t = &topics[i];
        struct kmsg_create_topics_request_creatable_topic *o = &req.topics.v[i];
        kmsg_create_topics_request_creatable_topic_init(o);
        o->name = (struct kstr){t->name, (int32_t)strlen(t->name)};
        o->num_partitions = t->n_assignments ? -1 : t->num_partitions;
        o->replication_factor = t->n_assignments ? -1 : t->replication_factor;
        o->assignments.n = (int32_t)t->n_assignments;
        o->assignments.v = arena_calloc(&arena, t->n_assignments + 1, sizeof(*o->assignments.v));
        for (uint32_t k = 0; o->assignments.v && k < t->n_assignments; k++)
            o->assignments.v[k] = (struct kmsg_create_topics_request_creatable_replica_assignment){
                t->assignments[k].partition,
                {(int32_t)t->assignments[k].n_replicas, (int32_t *)t->assignments[k].replicas}};
        o->configs.n = (int32_t)t->n_configs;
        o->configs.v = arena_calloc(&arena, t->n_configs + 1, sizeof(*o->configs.v));
        for (uint32_t k = 0; o->configs.v && k < t->n_configs; k++) {
            const struct metadata_config_entry *e = &t->configs[k];
            o->configs.v[k].name = (struct kstr){e->name, (int32_t)strlen(e->name)};
            o->configs.v[k].value =
                e->value ? (struct kstr){e->value, (int32_t)strlen(e->value)} : KSTR_NULL;
        }
        if (o->assignments.v == NULL || o->configs.v == NULL)
            req.topics.v = NULL;
    }
    int rc = req.topics.v
                 ? own_submit(b, KPROTO_API_CREATE_TOPICS, 7, &req, create_topics_done, done, arg)
                 : -ENOMEM;
    arena_free(&arena);
    return rc;
}

/* true when the request should go to the local controller (it is active, or no other is known) */
static bool own_local(struct broker *b)
{
    int32_t leader = controller_leader_id(b->ctl);
    return controller_is_active(b->ctl) || leader < 0 || leader == b->cfg.node_id || b->fwd == NULL;
}

int broker_create_topics(struct broker *b, const struct controller_new_topic *topics, size_t n,
                         bool validate_only, controller_done_fn done, void *arg)
{
    if (own_local(b))
        return controller_create_topics(b->ctl, topics, n, validate_only, done, arg);
    return create_topics_remote(b, topics, n, validate_only, done, arg);
}

static void producer_ids_result(const struct own_call *c, const void *msg, struct arena *arena)
{
    const struct kmsg_allocate_producer_ids_response *out = msg;
    (void)arena;
    struct controller_result res = {0};
    res.error_code = out->error_code;
    res.producer_id_start = out->producer_id_start;
    res.producer_id_len = out->producer_id_len;
    c->done(c->arg, &res);
}

static void producer_ids_done(void *arg, int err, uint8_t *resp, size_t len)
{
    struct kmsg_allocate_producer_ids_response out;
    own_complete(arg, err, resp, len, &out, producer_ids_result);
}

int broker_allocate_producer_ids(struct broker *b, controller_done_fn done, void *arg)
{
    if (own_local(b))
        return controller_allocate_producer_ids(b->ctl, b->cfg.node_id, done, arg);
    struct kmsg_allocate_producer_ids_request req;
    kmsg_allocate_producer_ids_request_init(&req);
    req.broker_id = b->cfg.node_id;
    req.broker_epoch = -1;
    return own_submit(b, KPROTO_API_ALLOCATE_PRODUCER_IDS, 0, &req, producer_ids_done, done, arg);
}
