/*
 * The marker sender thread; see txn_marker_sender.h.
 *
 * A job holds the partitions still without their marker. Each pass groups them by their
 * current leader (from the metadata image): this broker's are written through
 * txn_markers_apply (waiting for the answer), every other leader gets one WriteTxnMarkers
 * request on the thread's connection to it. What failed waits TXN_MARKER_RETRY_MS and goes
 * again. Invariant: a job is either in the queue, being processed by the thread, or answered
 * (exactly once).
 */
#include "broker/txn_marker_sender.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/controller_client.h"
#include "broker/write_txn_markers.h"
#include "proto/gen/errors.h"
#include "txn/state_record.h"

#define SENDER_CLIENTS 16
#define SENDER_TIMEOUT_MS 5000

struct marker_job {
    struct marker_job *next;
    int64_t due_ms; /* clock_mono_ms() before which it waits */
    int attempts;
    struct txn_marker_job job;
    struct txn_topic_partition *parts; /* owned (topic strings too): job.parts */
    void (*cb)(void *arg, int16_t err);
    void *arg;
};

struct txn_marker_sender {
    struct broker *b;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop, head */
    pthread_cond_t cv;
    bool stop;
    struct marker_job *head;
    /* The thread's own connections, one per other broker. */
    struct controller_client clients[SENDER_CLIENTS];
    int32_t client_node[SENDER_CLIENTS];
};

static void job_free(struct marker_job *j)
{
    for (size_t i = 0; i < j->job.nparts; i++)
        free((char *)j->parts[i].topic);
    free(j->parts);
    free(j);
}

static void job_answer(struct marker_job *j, int16_t err)
{
    j->cb(j->arg, err);
    job_free(j);
}

/* Drops the partitions whose marker is written (ok[i]) from the job. */
static void job_keep_failed(struct marker_job *j, const bool *ok)
{
    size_t k = 0;
    for (size_t i = 0; i < j->job.nparts; i++) {
        if (ok[i]) {
            free((char *)j->parts[i].topic);
            continue;
        }
        j->parts[k++] = j->parts[i];
    }
    j->job.nparts = k;
}

/* True while this broker still coordinates the job's transaction (same coordinator epoch). */
static bool still_coordinator(struct broker *b, const struct marker_job *j)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, TXN_STATE_TOPIC);
    bool ok = t && j->job.shard >= 0 && (uint32_t)j->job.shard < t->n_partitions &&
              t->partitions[j->job.shard].leader == b->cfg.node_id &&
              t->partitions[j->job.shard].leader_epoch == j->job.coordinator_epoch;
    metadata_image_release(img);
    return ok;
}

/*
 * A local write waited for by the thread, at most SENDER_TIMEOUT_MS: past that (a high
 * watermark that does not move) the thread gives up this pass and the late answer frees the
 * state. refs: the thread's and the answer's; the last one frees arena, request, response.
 */
struct local_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int refs; /* guarded by mu */
    struct arena arena;
    struct kmsg_write_txn_markers_request req;
    struct kmsg_write_txn_markers_response resp;
};

static void local_wait_put(struct local_wait *w)
{
    pthread_mutex_lock(&w->mu);
    bool last = --w->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (!last)
        return;
    arena_free(&w->arena);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static void local_done(void *arg)
{
    struct local_wait *w = arg;
    pthread_mutex_lock(&w->mu);
    w->done = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    local_wait_put(w);
}

/* Writes job part's markers here through txn_markers_apply; true and *w (the caller puts it)
 * once answered within the timeout, false otherwise. */
static bool local_write(struct broker *b, const struct txn_marker_job *part,
                        struct local_wait **out)
{
    struct local_wait *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return false;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    arena_init(&w->arena, 0);
    w->refs = 2;
    kmsg_write_txn_markers_response_init(&w->resp);
    if (txn_markers_request_build(&w->arena, part, &w->req) != 0) {
        w->refs = 1;
        local_wait_put(w);
        return false;
    }
    txn_markers_apply(b, &w->req, &w->resp, &w->arena, local_done, w);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += SENDER_TIMEOUT_MS / 1000;
    pthread_mutex_lock(&w->mu);
    while (!w->done && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0)
        ;
    bool done = w->done;
    pthread_mutex_unlock(&w->mu);
    if (!done) {
        local_wait_put(w);
        return false;
    }
    *out = w;
    return true;
}

/* Marks ok[i] for the job's partitions of `sub` (leader's share) the response answered 0. */
static void mark_written(struct marker_job *j, const struct kmsg_write_txn_markers_response *resp,
                         bool *ok)
{
    for (int32_t m = 0; m < resp->markers.n; m++)
        for (int32_t t = 0; t < resp->markers.v[m].topics.n; t++) {
            const struct kmsg_write_txn_markers_response_writable_txn_marker_topic_result *tr =
                &resp->markers.v[m].topics.v[t];
            for (int32_t p = 0; p < tr->partitions.n; p++) {
                if (tr->partitions.v[p].error_code != 0)
                    continue;
                for (size_t i = 0; i < j->job.nparts; i++)
                    if (j->parts[i].partition == tr->partitions.v[p].partition_index &&
                        (int32_t)strlen(j->parts[i].topic) == tr->name.len &&
                        memcmp(j->parts[i].topic, tr->name.ptr, (size_t)tr->name.len) == 0)
                        ok[i] = true;
            }
        }
}

static struct controller_client *client_for(struct txn_marker_sender *s, int32_t node)
{
    int free_slot = -1;
    for (int i = 0; i < SENDER_CLIENTS; i++) {
        if (s->client_node[i] == node)
            return &s->clients[i];
        if (s->client_node[i] < 0 && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0) { /* more brokers than slots: reuse one (it reconnects) */
        free_slot = (int)((uint32_t)node % SENDER_CLIENTS);
        controller_client_close(&s->clients[free_slot]);
    }
    s->client_node[free_slot] = node;
    return &s->clients[free_slot];
}

/* Sends the partitions of `sub` (all led by `leader`) and marks what was written. */
static void send_to_leader(struct txn_marker_sender *s, struct marker_job *j, int32_t leader,
                           const struct txn_topic_partition *sub, size_t n, bool *ok)
{
    struct broker *b = s->b;
    struct arena a;
    arena_init(&a, 0);
    struct txn_marker_job part = j->job;
    part.parts = sub;
    part.nparts = n;
    struct kmsg_write_txn_markers_request req;
    struct kmsg_write_txn_markers_response resp;
    kmsg_write_txn_markers_response_init(&resp);
    if (txn_markers_request_build(&a, &part, &req) != 0) {
        arena_free(&a);
        return;
    }
    if (leader == b->cfg.node_id) {
        struct local_wait *w = NULL;
        if (local_write(b, &part, &w)) {
            mark_written(j, &w->resp, ok);
            local_wait_put(w);
        }
        arena_free(&a);
        return;
    }
    char host[256] = "";
    int port = -1;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_broker *mb = metadata_image_broker(img, leader);
    if (mb != NULL && mb->host != NULL && strlen(mb->host) < sizeof(host)) {
        strcpy(host, mb->host);
        port = mb->port;
    }
    metadata_image_release(img);
    uint8_t *buf = NULL;
    int rc = port < 0 ? -ENOENT
                      : controller_client_call(client_for(s, leader), host, port,
                                               KPROTO_API_WRITE_TXN_MARKERS, 1, &req, &resp, &buf,
                                               &a, SENDER_TIMEOUT_MS);
    if (rc == 0)
        mark_written(j, &resp, ok);
    else if (j->attempts % 25 == 1)
        logger_warn("txn", "WriteTxnMarkers to broker %d failed: %s (retrying)", leader,
                    strerror(-rc));
    free(buf);
    arena_free(&a);
}

/* One pass over a job: every partition to its leader. */
static void job_pass(struct txn_marker_sender *s, struct marker_job *j)
{
    struct broker *b = s->b;
    size_t n = j->job.nparts;
    bool *ok = calloc(n + 1, sizeof(*ok));
    int32_t *leader = calloc(n + 1, sizeof(*leader));
    struct txn_topic_partition *sub = calloc(n + 1, sizeof(*sub));
    if (ok == NULL || leader == NULL || sub == NULL)
        goto out;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    for (size_t i = 0; i < n; i++) {
        const struct metadata_topic *t = metadata_image_topic_by_name(img, j->parts[i].topic);
        int32_t p = j->parts[i].partition;
        if (t == NULL || p < 0 || (uint32_t)p >= t->n_partitions) {
            ok[i] = true; /* a deleted topic or partition: no marker to write (Kafka) */
            leader[i] = -1;
            continue;
        }
        leader[i] = t->partitions[p].leader;
    }
    metadata_image_release(img);
    for (size_t i = 0; i < n; i++) {
        if (ok[i] || leader[i] < 0)
            continue;
        bool seen = false; /* once per distinct leader */
        for (size_t k = 0; k < i && !seen; k++)
            seen = !ok[k] && leader[k] == leader[i];
        if (seen)
            continue;
        size_t m = 0;
        for (size_t k = i; k < n; k++)
            if (!ok[k] && leader[k] == leader[i])
                sub[m++] = j->parts[k];
        send_to_leader(s, j, leader[i], sub, m, ok);
    }
    job_keep_failed(j, ok);
out:
    free(ok);
    free(leader);
    free(sub);
}

/* The thread, without the mutex: one pass over j. Returns true when it must go again (it
 * was not answered). */
static bool sender_process(struct txn_marker_sender *s, struct marker_job *j)
{
    j->attempts++;
    if (!still_coordinator(s->b, j)) {
        job_answer(j, KAFKA_ERR_NOT_COORDINATOR);
        return false;
    }
    job_pass(s, j);
    if (j->job.nparts == 0) {
        job_answer(j, 0);
        return false;
    }
    return true;
}

static void *sender_main(void *arg)
{
    struct txn_marker_sender *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int64_t now = clock_mono_ms();
        struct marker_job **pp = &s->head, *j = NULL;
        int64_t next_due = INT64_MAX;
        for (; *pp; pp = &(*pp)->next) {
            if ((*pp)->due_ms <= now) {
                j = *pp;
                *pp = j->next;
                break;
            }
            next_due = (*pp)->due_ms < next_due ? (*pp)->due_ms : next_due;
        }
        if (j == NULL) {
            if (next_due == INT64_MAX) {
                pthread_cond_wait(&s->cv, &s->mu);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t wait_ms = next_due - now;
                ts.tv_sec += wait_ms / 1000;
                ts.tv_nsec += (wait_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            }
            continue;
        }
        pthread_mutex_unlock(&s->mu);
        bool requeue = sender_process(s, j);
        pthread_mutex_lock(&s->mu);
        if (requeue) {
            j->due_ms = clock_mono_ms() + TXN_MARKER_RETRY_MS;
            j->next = s->head;
            s->head = j;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int txn_marker_sender_start(struct broker *b)
{
    struct txn_marker_sender *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->b = b;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    for (int i = 0; i < SENDER_CLIENTS; i++) {
        controller_client_init(&s->clients[i], b->cfg.node_id, &b->interbroker);
        s->client_node[i] = -1;
    }
    if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        return -EAGAIN;
    }
    b->marker_sender = s;
    return 0;
}

void txn_marker_sender_stop(struct broker *b)
{
    struct txn_marker_sender *s = b->marker_sender;
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    while (s->head) {
        struct marker_job *j = s->head;
        s->head = j->next;
        job_answer(j, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    }
    for (int i = 0; i < SENDER_CLIENTS; i++)
        controller_client_close(&s->clients[i]);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    b->marker_sender = NULL;
    free(s);
}

void txn_marker_sender_submit(struct broker *b, const struct txn_marker_job *job,
                              void (*cb)(void *arg, int16_t err), void *arg)
{
    struct txn_marker_sender *s = b->marker_sender;
    struct marker_job *j = calloc(1, sizeof(*j));
    if (j != NULL) {
        j->job = *job;
        j->parts = calloc(job->nparts + 1, sizeof(*j->parts));
        j->job.nparts = 0;
        for (size_t i = 0; j->parts && i < job->nparts; i++) {
            char *t = strdup(job->parts[i].topic);
            if (t == NULL)
                break;
            j->parts[j->job.nparts++] = (struct txn_topic_partition){t, job->parts[i].partition};
        }
        j->job.parts = j->parts;
        j->cb = cb;
        j->arg = arg;
    }
    if (j == NULL || j->parts == NULL || j->job.nparts != job->nparts) {
        if (j != NULL)
            job_free(j);
        cb(arg, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    if (s != NULL) {
        pthread_mutex_lock(&s->mu);
        if (!s->stop) {
            j->due_ms = clock_mono_ms();
            j->next = s->head;
            s->head = j;
            pthread_cond_signal(&s->cv);
            j = NULL;
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (j != NULL)
        job_answer(j, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
}
