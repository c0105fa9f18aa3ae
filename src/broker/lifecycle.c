/*
 * Broker lifecycle thread (see lifecycle.h).
 *
 * Local completions: a command submitted to the local controller completes on the controller
 * thread, possibly after the lifecycle thread stopped waiting for it. Each call therefore
 * carries a sequence number; a completion for an older call is dropped, and the state outlives
 * the controller (lifecycle_free runs after controller_stop).
 */
#include "broker/lifecycle.h"

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
#include "proto/gen/broker_heartbeat.h"
#include "proto/gen/broker_registration.h"

#define LOG_SUB "lifecycle"
#define FAST_RETRY_MS 100
#define CALL_TIMEOUT_MS 3000
#define SHUTDOWN_WAIT_MAX_MS 5000
/* Without any controller answering for this long, controlled shutdown gives up. */
#define SHUTDOWN_NO_CONTROLLER_MS 1000

struct lc_reply {
    int16_t error_code;
    int64_t broker_epoch;
    bool is_fenced;
    bool should_shut_down;
};

struct broker_lifecycle {
    struct broker *b;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    bool stopping;
    bool unfenced;
    int64_t epoch; /* -1: not registered */
    uint64_t seq;  /* of the current local call */
    bool reply_ready;
    struct lc_reply reply;
    struct controller_client client; /* lifecycle thread only */
    int16_t last_refusal;            /* lifecycle thread only: logged once per code */
    unsigned boot_idx; /* lifecycle thread only: controller.quorum.bootstrap.servers entry */
};

static const char *lc_refusal_reason(int16_t code)
{
    switch (code) {
    case KAFKA_ERR_INCONSISTENT_CLUSTER_ID:
        return "INCONSISTENT_CLUSTER_ID: this node's cluster id (cluster.id, or the one derived "
               "from controller.quorum.voters) is not the cluster's";
    case KAFKA_ERR_DUPLICATE_BROKER_REGISTRATION:
        return "DUPLICATE_BROKER_REGISTRATION: another live broker has this node.id (retrying "
               "until its session expires)";
    default:
        return "error from the controller (retrying)";
    }
}

struct lc_token {
    struct broker_lifecycle *lc;
    uint64_t seq;
};

static void lc_local_done(void *arg, const struct controller_result *res)
{
    struct lc_token *t = arg;
    struct broker_lifecycle *lc = t->lc;
    pthread_mutex_lock(&lc->mu);
    if (t->seq == lc->seq) {
        lc->reply = (struct lc_reply){res->error_code, res->broker_epoch, res->is_fenced,
                                      res->should_shut_down};
        lc->reply_ready = true;
        pthread_cond_broadcast(&lc->cond);
    }
    pthread_mutex_unlock(&lc->mu);
    free(t);
}

/* Waits for the local completion of call `seq`; -ETIMEDOUT if it does not come in time. */
static int lc_local_wait(struct broker_lifecycle *lc, struct lc_reply *out)
{
    struct timespec ts = clock_mono_deadline(CALL_TIMEOUT_MS);
    pthread_mutex_lock(&lc->mu);
    int rc = 0;
    while (!lc->reply_ready && rc == 0)
        rc = pthread_cond_timedwait(&lc->cond, &lc->mu, &ts);
    bool ok = lc->reply_ready;
    if (ok)
        *out = lc->reply;
    lc->seq++; /* a late completion of this call is dropped */
    lc->reply_ready = false;
    pthread_mutex_unlock(&lc->mu);
    return ok ? 0 : -ETIMEDOUT;
}

static struct lc_token *lc_token_new(struct broker_lifecycle *lc)
{
    struct lc_token *t = malloc(sizeof(*t));
    if (t == NULL)
        return NULL;
    pthread_mutex_lock(&lc->mu);
    t->lc = lc;
    t->seq = lc->seq;
    lc->reply_ready = false;
    pthread_mutex_unlock(&lc->mu);
    return t;
}

/*
 * The active controller's Kafka-protocol endpoint: its ControllerRegistration (every
 * controller writes one on becoming active; a controller-only node has no other), else its
 * broker registration (a combined node, before its controller registration is applied).
 */
int lifecycle_controller_address(struct broker *b, char *host, size_t hostlen, int *port)
{
    int32_t leader = controller_leader_id(b->ctl);
    if (leader < 0)
        return -EAGAIN;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_endpoint *mc = metadata_image_controller(img, leader);
    const struct metadata_broker *mb = mc ? NULL : metadata_image_broker(img, leader);
    int rc = mc || mb ? 0 : -EAGAIN;
    if (rc == 0) {
        snprintf(host, hostlen, "%s", mc ? mc->host : mb->host);
        *port = mc ? mc->port : mb->port;
    }
    metadata_image_release(img);
    return rc;
}

/* Entry i (modulo their count) of a "host:port,host:port" list; -EINVAL when there is none. */
static int lc_bootstrap_entry(const char *list, unsigned i, char *host, size_t hostlen, int *port)
{
    unsigned n = 0;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    n++;
    const char *e = list;
    for (unsigned k = i % n; k > 0; k--)
        e = strchr(e, ',') + 1;
    size_t len = strcspn(e, ",");
    const char *colon = memrchr(e, ':', len);
    if (colon == NULL || colon == e || (size_t)(colon - e) >= hostlen)
        return -EINVAL;
    snprintf(host, hostlen, "%.*s", (int)(colon - e), e);
    *port = atoi(colon + 1);
    return *port > 0 && *port <= 65535 ? 0 : -EINVAL;
}

/*
 * Where to send the next registration or heartbeat: the active controller as the metadata log
 * names it; until this node has the log (a broker-only node before the active controller made
 * it a raft standby), the current controller.quorum.bootstrap.servers entry, moved on by
 * lc_step whenever it fails or is not the active controller.
 */
static int lc_target(struct broker_lifecycle *lc, char *host, size_t hostlen, int *port)
{
    struct broker *b = lc->b;
    int rc = lifecycle_controller_address(b, host, hostlen, port);
    if (rc == 0 || b->cfg.controller_quorum_bootstrap_servers[0] == '\0')
        return rc;
    return lc_bootstrap_entry(b->cfg.controller_quorum_bootstrap_servers, lc->boot_idx, host,
                              hostlen, port);
}

/* metadata.observer.listener as a registration listener (broker-only nodes); false if none. */
static bool lc_observer_listener(struct broker *b,
                                 struct kmsg_broker_registration_request_listener *l, char *host,
                                 size_t hostlen)
{
    const char *spec = b->cfg.metadata_observer_listener;
    if ((b->cfg.roles & CONFIG_ROLE_CONTROLLER) || spec[0] == '\0')
        return false;
    int port = 0;
    if (lc_bootstrap_entry(spec, 0, host, hostlen, &port) != 0)
        return false;
    if (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0)
        snprintf(host, hostlen, "%s", b->advertised_host);
    *l = (struct kmsg_broker_registration_request_listener){
        KSTR_LIT(LIFECYCLE_OBSERVER_LISTENER), {host, (int32_t)strlen(host)}, (uint16_t)port, 0};
    return true;
}

static int lc_register_remote(struct broker_lifecycle *lc, struct lc_reply *out)
{
    struct broker *b = lc->b;
    char host[256];
    int port;
    int rc = lc_target(lc, host, sizeof(host), &port);
    if (rc)
        return rc;
    struct kmsg_broker_registration_request req;
    kmsg_broker_registration_request_init(&req);
    req.broker_id = b->cfg.node_id;
    req.cluster_id = (struct kstr){b->cluster_id, (int32_t)strlen(b->cluster_id)};
    memcpy(req.incarnation_id.b, b->incarnation, 16);
    struct kmsg_broker_registration_request_listener l[2] = {
        {KSTR_LIT("PLAINTEXT"),
         {b->advertised_host, (int32_t)strlen(b->advertised_host)},
         (uint16_t)b->advertised_port,
         0}};
    char ob_host[256];
    bool ob = lc_observer_listener(b, &l[1], ob_host, sizeof(ob_host));
    req.listeners = (struct kmsg_broker_registration_request_listener_array){ob ? 2 : 1, l};
    req.features.n = 0;
    req.rack = b->cfg.broker_rack[0]
                   ? (struct kstr){b->cfg.broker_rack, (int32_t)strlen(b->cfg.broker_rack)}
                   : KSTR_NULL;
    struct kmsg_broker_registration_response resp;
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    rc = controller_client_call(&lc->client, host, port, KPROTO_API_BROKER_REGISTRATION, 1, &req,
                                &resp, &buf, &arena, CALL_TIMEOUT_MS);
    if (rc == 0)
        *out = (struct lc_reply){resp.error_code, resp.broker_epoch, true, false};
    free(buf);
    arena_free(&arena);
    return rc;
}

static int lc_register(struct broker_lifecycle *lc, struct lc_reply *out)
{
    struct broker *b = lc->b;
    if (!controller_is_active(b->ctl))
        return lc_register_remote(lc, out);
    struct controller_broker_registration reg = {b->cfg.node_id,
                                                 b->advertised_host,
                                                 b->advertised_port,
                                                 b->cfg.broker_rack[0] ? b->cfg.broker_rack : NULL,
                                                 {0},
                                                 NULL,
                                                 0};
    memcpy(reg.incarnation, b->incarnation, 16);
    struct lc_token *t = lc_token_new(lc);
    if (t == NULL)
        return -ENOMEM;
    if (controller_register_broker(b->ctl, &reg, lc_local_done, t) != 0) {
        free(t);
        return -ESHUTDOWN;
    }
    return lc_local_wait(lc, out);
}

/* The image version if this node has applied its current registration, else -1. */
static int64_t lc_metadata_offset(struct broker_lifecycle *lc, int64_t epoch)
{
    const struct metadata_image *img = metadata_image_acquire(lc->b->ctl);
    const struct metadata_broker *mb = metadata_image_broker(img, lc->b->cfg.node_id);
    int64_t off = mb && mb->epoch == epoch ? (int64_t)img->version : -1;
    metadata_image_release(img);
    return off;
}

static int lc_heartbeat(struct broker_lifecycle *lc, int64_t epoch, bool want_shutdown,
                        struct lc_reply *out)
{
    struct broker *b = lc->b;
    int64_t offset = lc_metadata_offset(lc, epoch);
    if (controller_is_active(b->ctl)) {
        struct lc_token *t = lc_token_new(lc);
        if (t == NULL)
            return -ENOMEM;
        if (controller_broker_heartbeat(b->ctl, b->cfg.node_id, epoch, offset, false, want_shutdown,
                                        lc_local_done, t) != 0) {
            free(t);
            return -ESHUTDOWN;
        }
        return lc_local_wait(lc, out);
    }
    char host[256];
    int port;
    int rc = lc_target(lc, host, sizeof(host), &port);
    if (rc)
        return rc;
    struct kmsg_broker_heartbeat_request req;
    kmsg_broker_heartbeat_request_init(&req);
    req.broker_id = b->cfg.node_id;
    req.broker_epoch = epoch;
    req.current_metadata_offset = offset;
    req.want_shut_down = want_shutdown;
    struct kmsg_broker_heartbeat_response resp;
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    rc = controller_client_call(&lc->client, host, port, KPROTO_API_BROKER_HEARTBEAT, 0, &req,
                                &resp, &buf, &arena, CALL_TIMEOUT_MS);
    if (rc == 0)
        *out = (struct lc_reply){resp.error_code, epoch, resp.is_fenced, resp.should_shut_down};
    free(buf);
    arena_free(&arena);
    return rc;
}

/* Sleeps until ms from now or until stopping; returns true if stopping. */
static bool lc_sleep(struct broker_lifecycle *lc, int ms)
{
    struct timespec ts = clock_mono_deadline(ms);
    pthread_mutex_lock(&lc->mu);
    while (!lc->stopping && pthread_cond_timedwait(&lc->cond, &lc->mu, &ts) == 0)
        ;
    bool stopping = lc->stopping;
    pthread_mutex_unlock(&lc->mu);
    return stopping;
}

static void lc_set_state(struct broker_lifecycle *lc, int64_t epoch, bool unfenced)
{
    pthread_mutex_lock(&lc->mu);
    if (lc->unfenced != unfenced || lc->epoch != epoch)
        logger_info(LOG_SUB, "broker %d epoch %lld %s", lc->b->cfg.node_id, (long long)epoch,
                    epoch < 0  ? "unregistered"
                    : unfenced ? "unfenced"
                               : "fenced");
    lc->epoch = epoch;
    lc->unfenced = unfenced;
    pthread_cond_broadcast(&lc->cond);
    pthread_mutex_unlock(&lc->mu);
}

/* One step of the registered/unregistered loop; returns the delay before the next step. */
static int lc_step(struct broker_lifecycle *lc)
{
    struct broker *b = lc->b;
    struct lc_reply rep;
    int64_t epoch = lc->epoch;
    if (epoch < 0) {
        int rc = lc_register(lc, &rep);
        if (rc == 0 && rep.error_code == 0) {
            lc_set_state(lc, rep.broker_epoch, false);
            return 0; /* heartbeat at once: caught up is likely */
        }
        if (rc == 0 && rep.error_code != KAFKA_ERR_NOT_CONTROLLER &&
            rep.error_code != lc->last_refusal)
            logger_error(LOG_SUB, "the active controller refuses to register broker %d: %s",
                         b->cfg.node_id, lc_refusal_reason(rep.error_code));
        if (rc == 0)
            lc->last_refusal = rep.error_code;
        if (rc != 0 || rep.error_code == KAFKA_ERR_NOT_CONTROLLER)
            lc->boot_idx++;
        return rc == 0 && rep.error_code != KAFKA_ERR_NOT_CONTROLLER ? 1000 : FAST_RETRY_MS;
    }
    int rc = lc_heartbeat(lc, epoch, false, &rep);
    if (rc != 0 || rep.error_code == KAFKA_ERR_NOT_CONTROLLER) {
        lc->boot_idx++;
        return FAST_RETRY_MS;
    }
    if (rep.error_code == KAFKA_ERR_STALE_BROKER_EPOCH) {
        logger_warn(LOG_SUB, "broker %d epoch %lld is stale: registering again", b->cfg.node_id,
                    (long long)epoch);
        lc_set_state(lc, -1, false);
        return 0;
    }
    if (rep.error_code != 0)
        return FAST_RETRY_MS;
    lc_set_state(lc, epoch, !rep.is_fenced);
    return rep.is_fenced ? FAST_RETRY_MS : (int)b->cfg.broker_heartbeat_interval_ms;
}

static void lc_controlled_shutdown(struct broker_lifecycle *lc)
{
    struct broker *b = lc->b;
    int64_t epoch = lc->epoch;
    if (epoch < 0)
        return;
    int64_t wait = b->cfg.broker_session_timeout_ms < SHUTDOWN_WAIT_MAX_MS
                       ? b->cfg.broker_session_timeout_ms
                       : SHUTDOWN_WAIT_MAX_MS;
    int64_t deadline = clock_mono_ms() + wait;
    int64_t last_answer = clock_mono_ms();
    while (clock_mono_ms() < deadline) {
        struct lc_reply rep;
        int rc = lc_heartbeat(lc, epoch, true, &rep);
        if (rc == 0 && rep.error_code == 0 && rep.should_shut_down) {
            logger_info(LOG_SUB, "controlled shutdown of broker %d complete", b->cfg.node_id);
            return;
        }
        if (rc == 0 && rep.error_code == 0)
            last_answer = clock_mono_ms();
        else if (clock_mono_ms() - last_answer >= SHUTDOWN_NO_CONTROLLER_MS)
            break; /* the whole cluster is going down, or this node is cut off */
        struct timespec ts = {0, FAST_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    logger_warn(LOG_SUB,
                "controlled shutdown of broker %d did not complete (no controller "
                "answered, or not within %lld ms)",
                b->cfg.node_id, (long long)wait);
}

static void *lc_main(void *arg)
{
    struct broker_lifecycle *lc = arg;
    int delay = 0;
    while (!lc_sleep(lc, delay))
        delay = lc_step(lc);
    lc_controlled_shutdown(lc);
    controller_client_close(&lc->client);
    return NULL;
}

int lifecycle_start(struct broker *b)
{
    struct broker_lifecycle *lc = calloc(1, sizeof(*lc));
    if (lc == NULL)
        return -ENOMEM;
    lc->b = b;
    lc->epoch = -1;
    /* lc_local_wait and lc_sleep wait on cond with monotonic deadlines. */
    int rc = clock_cond_init_mono(&lc->cond);
    if (rc != 0) {
        free(lc);
        return -rc;
    }
    pthread_mutex_init(&lc->mu, NULL);
    controller_client_init(&lc->client, b->cfg.node_id, &b->interbroker);
    b->life = lc;
    if (pthread_create(&lc->thread, NULL, lc_main, lc) != 0)
        return -EAGAIN;
    lc->started = true;
    return 0;
}

bool lifecycle_wait_unfenced(struct broker *b, int timeout_ms)
{
    struct broker_lifecycle *lc = b->life;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    pthread_mutex_lock(&lc->mu);
    while (!lc->unfenced && clock_mono_ms() < deadline) {
        pthread_mutex_unlock(&lc->mu);
        lc_sleep(lc, 10);
        pthread_mutex_lock(&lc->mu);
    }
    bool unfenced = lc->unfenced;
    pthread_mutex_unlock(&lc->mu);
    return unfenced;
}

void lifecycle_stop(struct broker *b)
{
    struct broker_lifecycle *lc = b->life;
    if (lc == NULL || !lc->started)
        return;
    pthread_mutex_lock(&lc->mu);
    lc->stopping = true;
    pthread_cond_broadcast(&lc->cond);
    pthread_mutex_unlock(&lc->mu);
    pthread_join(lc->thread, NULL);
    lc->started = false;
}

void lifecycle_free(struct broker *b)
{
    struct broker_lifecycle *lc = b->life;
    if (lc == NULL)
        return;
    pthread_mutex_destroy(&lc->mu);
    pthread_cond_destroy(&lc->cond);
    free(lc);
    b->life = NULL;
}

int64_t lifecycle_broker_epoch(struct broker *b)
{
    struct broker_lifecycle *lc = b->life;
    if (lc == NULL)
        return -1;
    pthread_mutex_lock(&lc->mu);
    int64_t epoch = lc->epoch;
    pthread_mutex_unlock(&lc->mu);
    return epoch;
}
