/* ISR changes to the controller; see isr_sender.h. */
#include "broker/isr_sender.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/controller_client.h"
#include "broker/lifecycle.h"
#include "broker/partition.h"
#include "broker/partition_registry.h"
#include "proto/gen/alter_partition.h"
#include "proto/gen/errors.h"

#define ISR_CALL_TIMEOUT_MS 5000
#define ISR_BATCH_MAX 1024

struct isr_change {
    struct partition *p; /* referenced */
    int32_t isr[REPLICA_MAX];
    uint32_t n_isr;
    int32_t leader_epoch, partition_epoch;
};

struct isr_sender {
    struct broker *b;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* guards stop and kicked */
    pthread_cond_t cond;
    bool stop, kicked;
    struct controller_client client; /* the thread's own */
    struct isr_change *changes;      /* the thread's own: this round's changes */
    size_t n_changes;
};

struct isr_collect {
    struct isr_sender *s;
    int64_t now_ms;
};

/* Registry read lock held: short, no I/O. */
static void isr_collect_one(struct partition *p, void *arg)
{
    struct isr_collect *c = arg;
    struct isr_sender *s = c->s;
    if (s->n_changes >= ISR_BATCH_MAX || atomic_load(&p->deleted))
        return;
    struct isr_change *ch = &s->changes[s->n_changes];
    if (!replica_set_next_isr_change(p, c->now_ms, s->b->cfg.replica_lag_time_max_ms, ch->isr,
                                     &ch->n_isr, &ch->leader_epoch, &ch->partition_epoch))
        return;
    atomic_fetch_add(&p->refs, 1);
    ch->p = p;
    s->n_changes++;
}

static void isr_log_change(const struct isr_change *ch, int16_t err)
{
    char buf[128];
    size_t off = 0;
    for (uint32_t i = 0; i < ch->n_isr && off < sizeof(buf) - 12; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%d", i ? "," : "", ch->isr[i]);
    if (err == 0)
        logger_info("replica", "%s-%d: ISR -> [%s] (leader epoch %d)", ch->p->topic, ch->p->index,
                    buf, ch->leader_epoch);
    else
        logger_info("replica", "%s-%d: ISR change to [%s] refused: error %d", ch->p->topic,
                    ch->p->index, buf, err);
}

/* Applies one partition's answer. */
static void isr_apply(struct isr_change *ch,
                      const struct kmsg_alter_partition_response_partition_data *pd)
{
    int32_t isr[REPLICA_MAX];
    uint32_t n = 0;
    for (int32_t i = 0; i < pd->isr.n && n < REPLICA_MAX; i++)
        isr[n++] = pd->isr.v[i];
    replica_set_on_isr_result(ch->p, pd->error_code, isr, n, pd->leader_epoch, pd->partition_epoch);
    struct isr_change shown = *ch;
    if (pd->error_code == 0) {
        memcpy(shown.isr, isr, n * sizeof(*isr));
        shown.n_isr = n;
    }
    isr_log_change(&shown, pd->error_code);
}

static struct isr_change *isr_find(struct isr_sender *s, const uint8_t *topic_id, int32_t index)
{
    for (size_t i = 0; i < s->n_changes; i++) {
        struct isr_change *ch = &s->changes[i];
        if (ch->p && ch->p->index == index && memcmp(ch->p->topic_id, topic_id, 16) == 0)
            return ch;
    }
    return NULL;
}

/* Sends this round's changes; on any failure every change not answered is dropped (error). */
static void isr_send(struct isr_sender *s)
{
    struct broker *b = s->b;
    struct arena arena;
    arena_init(&arena, 0);
    struct kmsg_alter_partition_request req;
    kmsg_alter_partition_request_init(&req);
    req.broker_id = b->cfg.node_id;
    req.broker_epoch = lifecycle_broker_epoch(b);
    struct kmsg_alter_partition_request_topic_data *topics =
        arena_calloc(&arena, s->n_changes, sizeof(*topics));
    struct kmsg_alter_partition_request_partition_data *parts =
        arena_calloc(&arena, s->n_changes, sizeof(*parts));
    char host[256];
    int port;
    int rc = topics && parts ? lifecycle_controller_address(b, host, sizeof(host), &port) : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < s->n_changes; i++) {
        struct isr_change *ch = &s->changes[i];
        kmsg_alter_partition_request_topic_data_init(&topics[i]);
        memcpy(topics[i].topic_id.b, ch->p->topic_id, 16);
        kmsg_alter_partition_request_partition_data_init(&parts[i]);
        parts[i].partition_index = ch->p->index;
        parts[i].leader_epoch = ch->leader_epoch;
        parts[i].partition_epoch = ch->partition_epoch;
        parts[i].new_isr = (struct karray_int32){(int32_t)ch->n_isr, ch->isr};
        topics[i].partitions =
            (struct kmsg_alter_partition_request_partition_data_array){1, &parts[i]};
    }
    req.topics =
        (struct kmsg_alter_partition_request_topic_data_array){(int32_t)s->n_changes, topics};
    struct kmsg_alter_partition_response resp;
    uint8_t *buf = NULL;
    if (rc == 0)
        rc = controller_client_call(&s->client, host, port, KPROTO_API_ALTER_PARTITION, 2, &req,
                                    &resp, &buf, &arena, ISR_CALL_TIMEOUT_MS);
    if (rc == 0 && resp.error_code != 0) {
        logger_info("replica", "AlterPartition refused by the controller: error %d",
                    resp.error_code);
        rc = -EAGAIN;
    }
    for (int32_t t = 0; rc == 0 && t < resp.topics.n; t++) {
        const struct kmsg_alter_partition_response_topic_data *td = &resp.topics.v[t];
        for (int32_t j = 0; j < td->partitions.n; j++) {
            struct isr_change *ch =
                isr_find(s, td->topic_id.b, td->partitions.v[j].partition_index);
            if (ch == NULL)
                continue;
            isr_apply(ch, &td->partitions.v[j]);
            partition_put(ch->p);
            ch->p = NULL;
        }
    }
    if (rc != 0)
        logger_debug("replica", "AlterPartition not sent: %d", rc);
    for (size_t i = 0; i < s->n_changes; i++) {
        struct isr_change *ch = &s->changes[i];
        if (ch->p == NULL)
            continue;
        replica_set_on_isr_result(ch->p, KAFKA_ERR_REQUEST_TIMED_OUT, NULL, 0, -1, -1);
        partition_put(ch->p);
        ch->p = NULL;
    }
    free(buf);
    arena_free(&arena);
}

/* Waits for a kick, the next periodic round or stop; true when stopping. */
static bool isr_wait(struct isr_sender *s, int64_t ms)
{
    struct timespec ts = clock_mono_deadline(ms);
    pthread_mutex_lock(&s->mu);
    while (!s->stop && !s->kicked && pthread_cond_timedwait(&s->cond, &s->mu, &ts) == 0)
        ;
    s->kicked = false;
    bool stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

static void *isr_thread(void *arg)
{
    struct isr_sender *s = arg;
    int64_t period = s->b->cfg.replica_lag_time_max_ms / 2;
    if (period < 10)
        period = 10;
    while (!isr_wait(s, period)) {
        struct isr_collect c = {s, clock_mono_ms()};
        s->n_changes = 0;
        partition_registry_each(s->b->parts, isr_collect_one, &c);
        if (s->n_changes > 0)
            isr_send(s);
    }
    return NULL;
}

int isr_sender_start(struct broker *b)
{
    struct isr_sender *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    s->changes = calloc(ISR_BATCH_MAX, sizeof(*s->changes));
    if (s->changes == NULL || clock_cond_init_mono(&s->cond) != 0) {
        free(s->changes);
        free(s);
        return -ENOMEM;
    }
    s->b = b;
    pthread_mutex_init(&s->mu, NULL);
    controller_client_init(&s->client, b->cfg.node_id, &b->interbroker);
    b->isr = s;
    if (pthread_create(&s->thread, NULL, isr_thread, s) != 0) {
        isr_sender_stop(b);
        return -EAGAIN;
    }
    s->started = true;
    return 0;
}

void isr_sender_stop(struct broker *b)
{
    struct isr_sender *s = b->isr;
    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    controller_client_close(&s->client);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cond);
    free(s->changes);
    free(s);
    b->isr = NULL;
}

void isr_sender_kick(struct broker *b)
{
    struct isr_sender *s = b->isr;
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->kicked = true;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}
