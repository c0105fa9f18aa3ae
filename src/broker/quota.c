/*
 * Client quota enforcement (see quota.h): entity resolution, the sensor table, the
 * per-connection cache and the throttle decision.
 *
 * Invariants: a connection cache holds a reference on every sensor it points to (taken under the
 * manager's lock by sensor_get, dropped on re-resolving and on close); a sensor is freed only
 * with no reference left and unused for expire_ms (Kafka drops a quota sensor after an hour
 * without use), by a sweep under the manager's lock, so no thread can be using it. A sensor's
 * rate and token bucket are touched only under its lock; the table's chains and the
 * references only under the manager's lock. A connection cache is
 * valid for its `version` (the image's quotas_version), its client id and its user only.
 */
#include "broker/quota.h"

#include <assert.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "broker/broker_internal.h"
#include "broker/quota_rate.h"
#include "broker/request.h"
#include "broker/session.h"

#define QUOTA_BUCKETS 256
#define QUOTA_CLIENT_ID_MAX 256
#define QUOTA_USER_MAX 320
/* The keys enforced: every key (controller_mutation_rate by the admin topic handlers). */
#define QUOTA_ENFORCED 4
#define QUOTA_SWEEP_EVERY_MS 30000

struct quota_sensor {
    struct quota_sensor *next; /* hash chain */
    uint8_t key;
    char *user;              /* "" when the matched entity has no user type */
    char *client_id;         /* "" when it has no client-id type */
    int refs;                /* connection caches pointing here; guarded by the manager */
    _Atomic int64_t last_ms; /* clock_mono_ms() of the last record */
    pthread_mutex_t lock;    /* guards rate, tokens, tokens_ms */
    struct quota_rate rate;  /* byte rates and request_percentage */
    double tokens;           /* controller_mutation_rate: Kafka's TokenBucket credits */
    int64_t tokens_ms;       /* when tokens were last refilled; 0 = full bucket */
};

struct quota_manager {
    atomic_bool active;
    _Atomic uint64_t version;
    int samples;
    int64_t window_ms;
    int64_t expire_ms;    /* an unreferenced sensor unused this long is dropped */
    pthread_mutex_t lock; /* guards buckets, nsensors, last_sweep_ms and the sensors' refs */
    int64_t nsensors;
    int64_t last_sweep_ms;
    struct quota_sensor *buckets[QUOTA_BUCKETS];
};

/* A connection's resolved quotas, one allocation owned by the connection (net_conn_cache). */
struct quota_conn {
    struct quota_manager *qm;
    uint64_t version; /* 0: not resolved */
    int32_t client_id_len;
    char client_id[QUOTA_CLIENT_ID_MAX];
    char user[QUOTA_USER_MAX];                   /* the principal's name it was resolved for */
    struct quota_sensor *sensor[QUOTA_ENFORCED]; /* NULL: no quota for the key */
    double bound[QUOTA_ENFORCED];
};

struct quota_manager *quota_manager_new(int samples, int64_t window_ms, int64_t expire_ms)
{
    struct quota_manager *qm = calloc(1, sizeof(*qm));
    if (qm == NULL)
        return NULL;
    qm->samples = samples;
    qm->window_ms = window_ms;
    qm->expire_ms = expire_ms > 0 ? expire_ms : 3600000;
    qm->last_sweep_ms = clock_mono_ms();
    pthread_mutex_init(&qm->lock, NULL);
    return qm;
}

static void sensor_free(struct quota_sensor *s)
{
    pthread_mutex_destroy(&s->lock);
    free(s->user);
    free(s->client_id);
    free(s);
}

void quota_manager_free(struct quota_manager *qm)
{
    if (qm == NULL)
        return;
    for (int i = 0; i < QUOTA_BUCKETS; i++) {
        while (qm->buckets[i]) {
            struct quota_sensor *s = qm->buckets[i];
            qm->buckets[i] = s->next;
            sensor_free(s);
        }
    }
    pthread_mutex_destroy(&qm->lock);
    free(qm);
}

void quota_on_image(struct quota_manager *qm, const struct metadata_image *next)
{
    if (qm == NULL)
        return;
    atomic_store_explicit(&qm->version, next->quotas_version, memory_order_release);
    atomic_store_explicit(&qm->active, next->n_client_quotas > 0, memory_order_release);
}

bool quota_active(const struct quota_manager *qm)
{
    return qm != NULL && atomic_load_explicit(&qm->active, memory_order_relaxed);
}

bool quota_resolve(const struct metadata_image *img, enum metadata_quota_key key, const char *user,
                   const char *client_id, double *bound, uint8_t *entity)
{
    const uint8_t U = METADATA_QUOTA_USER, C = METADATA_QUOTA_CLIENT_ID;
    const struct {
        uint8_t entity;
        const char *user, *client_id;
    } order[] = {
        {U | C, user, client_id}, {U | C, user, NULL}, {U, user, NULL},
        {U | C, NULL, client_id}, {U | C, NULL, NULL}, {U, NULL, NULL},
        {C, NULL, client_id},     {C, NULL, NULL},
    };
    if (img->n_client_quotas == 0)
        return false;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const struct metadata_client_quota *q =
            metadata_image_client_quota(img, order[i].entity, order[i].user, order[i].client_id);
        if (q != NULL && (q->set & (1u << key))) {
            *bound = q->values[key];
            *entity = order[i].entity;
            return true;
        }
    }
    return false;
}

static uint32_t sensor_hash(uint8_t key, const char *user, const char *client_id)
{
    uint32_t h = 2166136261u ^ key;
    for (const char *p = user; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (const char *p = client_id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h % QUOTA_BUCKETS;
}

/* Drops the sensors no connection points at that were unused for expire_ms (lock held). */
static void sensor_sweep(struct quota_manager *qm, int64_t now)
{
    qm->last_sweep_ms = now;
    for (int i = 0; i < QUOTA_BUCKETS; i++) {
        struct quota_sensor **pp = &qm->buckets[i];
        while (*pp) {
            struct quota_sensor *s = *pp;
            int64_t last = atomic_load_explicit(&s->last_ms, memory_order_relaxed);
            if (s->refs == 0 && now - last >= qm->expire_ms) {
                *pp = s->next;
                sensor_free(s);
                qm->nsensors--;
                continue;
            }
            pp = &s->next;
        }
    }
}

/* Sweeps when due: every QUOTA_SWEEP_EVERY_MS (or expire_ms if shorter). Lock held. */
static void sensor_maybe_sweep(struct quota_manager *qm, int64_t now)
{
    int64_t every = qm->expire_ms < QUOTA_SWEEP_EVERY_MS ? qm->expire_ms : QUOTA_SWEEP_EVERY_MS;
    if (now - qm->last_sweep_ms >= every)
        sensor_sweep(qm, now);
}

int64_t quota_sensor_count(struct quota_manager *qm)
{
    if (qm == NULL)
        return 0;
    pthread_mutex_lock(&qm->lock);
    sensor_maybe_sweep(qm, clock_mono_ms());
    int64_t n = qm->nsensors;
    pthread_mutex_unlock(&qm->lock);
    return n;
}

/* Drops a connection cache's reference. */
static void sensor_put(struct quota_manager *qm, struct quota_sensor *s)
{
    pthread_mutex_lock(&qm->lock);
    assert(s->refs > 0);
    s->refs--;
    pthread_mutex_unlock(&qm->lock);
}

/* The sensor for (key, user tag, client-id tag), created on first use, with a reference for
 * the caller; NULL on ENOMEM. */
static struct quota_sensor *sensor_get(struct quota_manager *qm, uint8_t key, const char *user,
                                       const char *client_id)
{
    uint32_t h = sensor_hash(key, user, client_id);
    int64_t now = clock_mono_ms();
    pthread_mutex_lock(&qm->lock);
    sensor_maybe_sweep(qm, now);
    struct quota_sensor *s = qm->buckets[h];
    while (s && (s->key != key || strcmp(s->user, user) || strcmp(s->client_id, client_id)))
        s = s->next;
    if (s == NULL && (s = calloc(1, sizeof(*s))) != NULL) {
        s->key = key;
        s->user = strdup(user);
        s->client_id = strdup(client_id);
        if (s->user == NULL || s->client_id == NULL) {
            free(s->user);
            free(s->client_id);
            free(s);
            s = NULL;
        } else {
            pthread_mutex_init(&s->lock, NULL);
            quota_rate_init(&s->rate, qm->samples, qm->window_ms);
            atomic_store_explicit(&s->last_ms, now, memory_order_relaxed);
            s->next = qm->buckets[h];
            qm->buckets[h] = s;
            qm->nsensors++;
        }
    }
    if (s != NULL)
        s->refs++;
    pthread_mutex_unlock(&qm->lock);
    return s;
}

/* Records v and returns the throttle time against bound (max_ms > 0 bounds it). */
static int64_t sensor_record(struct quota_sensor *s, double v, double bound, int64_t max_ms)
{
    pthread_mutex_lock(&s->lock);
    int64_t now = clock_mono_ms();
    atomic_store_explicit(&s->last_ms, now, memory_order_relaxed);
    quota_rate_record(&s->rate, v, now);
    double rate = quota_rate_measure(&s->rate, now);
    int64_t window = quota_rate_window_ms(&s->rate, now);
    pthread_mutex_unlock(&s->lock);
    return quota_throttle_ms(rate, bound, window, max_ms);
}

/* Kafka's unrecordQuotaSensor: takes back what a throttled fetch did not send. */
static void sensor_unrecord(struct quota_sensor *s, double v)
{
    pthread_mutex_lock(&s->lock);
    quota_rate_record(&s->rate, -v, clock_mono_ms());
    pthread_mutex_unlock(&s->lock);
}

/* The principal's name without Kafka's "User:" type prefix. */
static const char *quota_user(struct broker_req *r)
{
    const char *p = session_principal(r->nr->conn);
    return strncmp(p, "User:", 5) == 0 ? p + 5 : p;
}

static void quota_conn_resolve(struct quota_conn *qc, struct broker_req *r, const char *user,
                               const char *client_id)
{
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    for (int k = 0; k < QUOTA_ENFORCED; k++) {
        double bound;
        uint8_t entity;
        if (qc->sensor[k] != NULL)
            sensor_put(qc->qm, qc->sensor[k]);
        qc->sensor[k] = NULL;
        if (!quota_resolve(img, (enum metadata_quota_key)k, user, client_id, &bound, &entity))
            continue;
        qc->bound[k] = bound;
        qc->sensor[k] = sensor_get(qc->qm, (uint8_t)k, entity & METADATA_QUOTA_USER ? user : "",
                                   entity & METADATA_QUOTA_CLIENT_ID ? client_id : "");
    }
    qc->version = img->quotas_version;
    metadata_image_release(img);
}

/* r's connection cache, resolved for the current quotas; NULL on allocation failure. */
static struct quota_conn *quota_conn_get(struct broker_req *r)
{
    struct net_conn *c = r->nr->conn;
    struct quota_conn *qc = net_conn_cache(c);
    if (qc == NULL) {
        if ((qc = calloc(1, sizeof(*qc))) == NULL)
            return NULL;
        qc->qm = r->b->quotas;
        net_conn_set_cache(c, qc);
    }
    struct kstr id = r->hdr.client_id;
    int32_t len = id.len > 0 ? id.len : 0;
    const char *user = quota_user(r);
    uint64_t version = atomic_load_explicit(&qc->qm->version, memory_order_acquire);
    if (qc->version != 0 && qc->version == version && len == qc->client_id_len &&
        memcmp(qc->client_id, id.ptr, (size_t)len) == 0 && strcmp(qc->user, user) == 0)
        return qc;
    const char *client_id = broker_name(r, id);
    if (client_id == NULL)
        return NULL;
    quota_conn_resolve(qc, r, user, client_id);
    if (len < QUOTA_CLIENT_ID_MAX && strlen(user) < QUOTA_USER_MAX) {
        memcpy(qc->client_id, client_id, (size_t)len);
        qc->client_id_len = len;
        strcpy(qc->user, user);
    } else {
        qc->version = 0; /* too long to cache: resolved for every request */
    }
    return qc;
}

/*
 * Requests between brokers are not throttled (Kafka exempts ClusterAction requests): the
 * broker-to-controller APIs, transaction markers and follower fetches (a replica id >= 0,
 * the first field of Fetch before v15; Gregor's followers send v12).
 */
static bool quota_exempt(const struct broker_req *r)
{
    switch (r->hdr.api_key) {
    case KPROTO_API_BROKER_REGISTRATION:
    case KPROTO_API_BROKER_HEARTBEAT:
    case KPROTO_API_ALLOCATE_PRODUCER_IDS:
    case KPROTO_API_ALTER_PARTITION:
    case KPROTO_API_WRITE_TXN_MARKERS:
        return true;
    case KPROTO_API_FETCH:
        if (r->hdr.api_version < 15 && r->body.end - r->body.p >= 4)
            return (r->body.p[0] & 0x80) == 0; /* replica_id >= 0 */
        return false;
    default:
        return false;
    }
}

struct quota_conn *quota_before_handler(struct broker_req *r)
{
    if (!quota_active(r->b->quotas))
        return NULL;
    /* The SASL exchange is not subject to quotas (Kafka handles it before KafkaApis). */
    const struct broker_session *sess = session_of(r->nr->conn);
    if ((sess != NULL && sess->state != SESSION_AUTHENTICATED) || quota_exempt(r))
        return NULL;
    struct quota_conn *qc = quota_conn_get(r);
    if (qc == NULL)
        return NULL;
    struct quota_sensor *s = qc->sensor[METADATA_QUOTA_PRODUCER_BYTE_RATE];
    if (s != NULL && r->hdr.api_key == KPROTO_API_PRODUCE) {
        int64_t t =
            sensor_record(s, (double)r->nr->size, qc->bound[METADATA_QUOTA_PRODUCER_BYTE_RATE], 0);
        r->throttle_ms = t > INT32_MAX ? INT32_MAX : (int32_t)t;
        net_conn_mute(r->nr->conn, t);
    }
    return qc;
}

void quota_charge_request(struct broker_req *r)
{
    struct quota_conn *qc = r->quota;
    r->quota = NULL;
    struct quota_sensor *s = qc ? qc->sensor[METADATA_QUOTA_REQUEST_PERCENTAGE] : NULL;
    if (s == NULL)
        return;
    int64_t ns = clock_mono_ns() - r->start_ns;
    /* Kafka's nanosToPercentage: 100% is one thread busy for the whole second. */
    double percent = (double)ns * 100.0 / 1e9;
    int64_t t =
        sensor_record(s, percent, qc->bound[METADATA_QUOTA_REQUEST_PERCENTAGE], qc->qm->window_ms);
    if (t <= 0)
        return;
    net_conn_mute(r->nr->conn, t);
    if (t > r->throttle_ms)
        r->throttle_ms = t > INT32_MAX ? INT32_MAX : (int32_t)t;
}

int32_t quota_record_fetch(struct broker_req *r, int64_t bytes)
{
    if (!quota_active(r->b->quotas))
        return 0;
    struct quota_conn *qc = quota_conn_get(r);
    struct quota_sensor *s = qc ? qc->sensor[METADATA_QUOTA_CONSUMER_BYTE_RATE] : NULL;
    if (s == NULL)
        return 0;
    int64_t t = sensor_record(s, (double)bytes, qc->bound[METADATA_QUOTA_CONSUMER_BYTE_RATE], 0);
    if (t <= 0)
        return 0;
    sensor_unrecord(s, (double)bytes);
    net_conn_mute(r->nr->conn, t);
    int32_t t32 = t > INT32_MAX ? INT32_MAX : (int32_t)t;
    if (t32 > r->throttle_ms)
        r->throttle_ms = t32;
    return t32;
}

void quota_conn_close(struct quota_conn *qc)
{
    if (qc == NULL)
        return;
    for (int k = 0; k < QUOTA_ENFORCED; k++)
        if (qc->sensor[k] != NULL) {
            sensor_put(qc->qm, qc->sensor[k]);
            qc->sensor[k] = NULL;
        }
    qc->version = 0;
}

/* ---- controller_mutation_rate (KIP-599): Kafka's TokenBucket ---- */

/* Refills s's bucket (lock held): quota credits per second up to the burst of
 * samples * window * quota; a new bucket starts full. */
static void bucket_refill(struct quota_sensor *s, double quota, int samples, int64_t window_ms,
                          int64_t now)
{
    double burst = quota * samples * (double)window_ms / 1000.0;
    if (s->tokens_ms == 0)
        s->tokens = burst;
    else
        s->tokens += quota * (double)(now - s->tokens_ms) / 1000.0;
    if (s->tokens > burst)
        s->tokens = burst;
    s->tokens_ms = now;
}

/* Time until the bucket is back to zero credits, Kafka's throttle time for it (lock held). */
static int64_t bucket_throttle_ms(const struct quota_sensor *s, double quota)
{
    if (s->tokens >= 0 || quota <= 0)
        return 0;
    double ms = -s->tokens / quota * 1000.0;
    return ms > INT32_MAX ? INT32_MAX : (int64_t)(ms + 0.5);
}

static struct quota_sensor *mutation_sensor(struct broker_req *r, double *quota)
{
    if (!quota_active(r->b->quotas))
        return NULL;
    struct quota_conn *qc = quota_conn_get(r);
    if (qc == NULL || qc->sensor[METADATA_QUOTA_CONTROLLER_MUTATION_RATE] == NULL)
        return NULL;
    *quota = qc->bound[METADATA_QUOTA_CONTROLLER_MUTATION_RATE];
    return qc->sensor[METADATA_QUOTA_CONTROLLER_MUTATION_RATE];
}

int32_t quota_mutation_throttle(struct broker_req *r)
{
    double quota;
    struct quota_sensor *s = mutation_sensor(r, &quota);
    if (s == NULL)
        return 0;
    struct quota_manager *qm = r->b->quotas;
    pthread_mutex_lock(&s->lock);
    bucket_refill(s, quota, qm->samples, qm->window_ms, clock_mono_ms());
    int64_t t = bucket_throttle_ms(s, quota);
    pthread_mutex_unlock(&s->lock);
    return (int32_t)t;
}

void quota_mutation_record(struct broker_req *r, double mutations)
{
    double quota;
    struct quota_sensor *s = mutation_sensor(r, &quota);
    if (s == NULL || mutations <= 0)
        return;
    struct quota_manager *qm = r->b->quotas;
    pthread_mutex_lock(&s->lock);
    int64_t now = clock_mono_ms();
    atomic_store_explicit(&s->last_ms, now, memory_order_relaxed);
    bucket_refill(s, quota, qm->samples, qm->window_ms, now);
    s->tokens -= mutations;
    int64_t t = bucket_throttle_ms(s, quota);
    pthread_mutex_unlock(&s->lock);
    if (t <= 0)
        return;
    net_conn_mute(r->nr->conn, t);
    if (t > r->throttle_ms)
        r->throttle_ms = (int32_t)t;
}
