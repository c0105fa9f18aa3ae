/*
 * Client quota enforcement (see quota.h): entity resolution, the sensor table, the
 * per-connection cache and the throttle decision.
 *
 * Invariants: a sensor, once in the table, is never freed before the manager, so a connection
 * cache may keep pointers to sensors across quota changes; a sensor's rate is touched only
 * under its lock; the table's chains only under the manager's lock. A connection cache is
 * valid for its `version` (the image's quotas_version), its client id and its user only.
 */
#include "broker/quota.h"

#include <assert.h>
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
/* The keys enforced (controller_mutation_rate is stored but not enforced). */
#define QUOTA_ENFORCED 3

struct quota_sensor {
    struct quota_sensor *next; /* hash chain */
    uint8_t key;
    char *user;           /* "" when the matched entity has no user type */
    char *client_id;      /* "" when it has no client-id type */
    pthread_mutex_t lock; /* guards rate */
    struct quota_rate rate;
};

struct quota_manager {
    atomic_bool active;
    _Atomic uint64_t version;
    int samples;
    int64_t window_ms;
    pthread_mutex_t lock; /* guards buckets */
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

struct quota_manager *quota_manager_new(int samples, int64_t window_ms)
{
    struct quota_manager *qm = calloc(1, sizeof(*qm));
    if (qm == NULL)
        return NULL;
    qm->samples = samples;
    qm->window_ms = window_ms;
    pthread_mutex_init(&qm->lock, NULL);
    return qm;
}

void quota_manager_free(struct quota_manager *qm)
{
    if (qm == NULL)
        return;
    for (int i = 0; i < QUOTA_BUCKETS; i++) {
        while (qm->buckets[i]) {
            struct quota_sensor *s = qm->buckets[i];
            qm->buckets[i] = s->next;
            pthread_mutex_destroy(&s->lock);
            free(s->user);
            free(s->client_id);
            free(s);
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

/* The sensor for (key, user tag, client-id tag), created on first use; NULL on ENOMEM. */
static struct quota_sensor *sensor_get(struct quota_manager *qm, uint8_t key, const char *user,
                                       const char *client_id)
{
    uint32_t h = sensor_hash(key, user, client_id);
    pthread_mutex_lock(&qm->lock);
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
            s->next = qm->buckets[h];
            qm->buckets[h] = s;
        }
    }
    pthread_mutex_unlock(&qm->lock);
    return s;
}

/* Records v and returns the throttle time against bound (max_ms > 0 bounds it). */
static int64_t sensor_record(struct quota_sensor *s, double v, double bound, int64_t max_ms)
{
    pthread_mutex_lock(&s->lock);
    int64_t now = clock_mono_ms();
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

void quota_after_handler(struct quota_conn *qc, struct net_conn *conn, int64_t start_ns)
{
    struct quota_sensor *s = qc->sensor[METADATA_QUOTA_REQUEST_PERCENTAGE];
    if (s == NULL)
        return;
    int64_t ns = clock_mono_ns() - start_ns;
    /* Kafka's nanosToPercentage: 100% is one thread busy for the whole second. */
    double percent = (double)ns * 100.0 / 1e9;
    int64_t t =
        sensor_record(s, percent, qc->bound[METADATA_QUOTA_REQUEST_PERCENTAGE], qc->qm->window_ms);
    net_conn_mute(conn, t);
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
    return t > INT32_MAX ? INT32_MAX : (int32_t)t;
}
