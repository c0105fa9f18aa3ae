/*
 * The KIP-890 verification of a transaction's first batch on a partition; see txn_verifier.h.
 *
 * Invariant: a check is either answered at once (local coordinator, no coordinator), in the
 * queue, or in the thread's current pass, and is answered exactly once.
 */
#include "broker/txn_verifier.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/controller_client.h"
#include "broker/transactions.h"
#include "proto/gen/add_partitions_to_txn.h"
#include "proto/gen/errors.h"
#include "txn/coordinator.h"
#include "txn/state_record.h"

#define VERIFIER_CLIENTS 16
#define VERIFIER_TIMEOUT_MS 5000
#define VERIFIER_BATCH 256 /* checks per request at most */

struct verify_job {
    struct verify_job *next;
    char *txid;
    char *topic;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t partition;
    bool add;     /* add the partition to the transaction (TV2), not only verify */
    int32_t node; /* the coordinator's broker, resolved by the thread */
    void (*cb)(void *arg, int16_t err);
    void *arg;
};

struct txn_verifier {
    struct broker *b;
    pthread_t thread;
    pthread_mutex_t mu; /* guards stop, head */
    pthread_cond_t cv;
    bool stop;
    struct verify_job *head;
    struct controller_client clients[VERIFIER_CLIENTS];
    int32_t client_node[VERIFIER_CLIENTS];
};

static void job_answer(struct verify_job *j, int16_t err)
{
    j->cb(j->arg, err);
    free(j->txid);
    free(j->topic);
    free(j);
}

/* The broker leading txid's __transaction_state partition, -1 when none (yet). */
static int32_t coordinator_node(struct broker *b, const char *txid)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, TXN_STATE_TOPIC);
    int32_t shard = t ? txn_shard_of(txid, strlen(txid), (int32_t)t->n_partitions) : -1;
    int32_t node = shard >= 0 ? t->partitions[shard].leader : -1;
    metadata_image_release(img);
    return node;
}

static void add_done(void *arg, const struct txn_result *res)
{
    job_answer(arg, res->error);
}

static void verify_locally(struct broker *b, struct verify_job *j)
{
    struct txn_topic_partition tp = {j->topic, j->partition};
    int16_t err = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    struct txn_coordinator *tc = txn_coordinator_of(b);
    if (tc != NULL && j->add) { /* the coordinator copies tp; j lives until add_done */
        txn_add_partitions(tc, j->txid, j->producer_id, j->producer_epoch, &tp, 1, add_done, j);
        return;
    }
    if (tc != NULL)
        txn_verify_partitions(tc, j->txid, j->producer_id, j->producer_epoch, &tp, 1, &err);
    job_answer(j, err);
}

static struct controller_client *client_for(struct txn_verifier *v, int32_t node)
{
    int free_slot = -1;
    for (int i = 0; i < VERIFIER_CLIENTS; i++) {
        if (v->client_node[i] == node)
            return &v->clients[i];
        if (v->client_node[i] < 0 && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0) { /* more brokers than slots: reuse one (it reconnects) */
        free_slot = (int)((uint32_t)node % VERIFIER_CLIENTS);
        controller_client_close(&v->clients[free_slot]);
    }
    v->client_node[free_slot] = node;
    return &v->clients[free_slot];
}

static struct kstr kstr_of(const char *s)
{
    return (struct kstr){s, (int32_t)strlen(s)};
}

/* The error the response gives job j (its transaction is entry i), or -1 if it has none. */
static int16_t response_error(const struct kmsg_add_partitions_to_txn_response *resp,
                              const struct verify_job *j)
{
    if (resp->error_code != 0)
        return resp->error_code;
    for (int32_t i = 0; i < resp->results_by_transaction.n; i++) {
        const struct kmsg_add_partitions_to_txn_response_add_partitions_to_txn_result *t =
            &resp->results_by_transaction.v[i];
        if (t->transactional_id.len != (int32_t)strlen(j->txid) ||
            memcmp(t->transactional_id.ptr, j->txid, strlen(j->txid)) != 0)
            continue;
        for (int32_t k = 0; k < t->topic_results.n; k++) {
            const struct kmsg_add_partitions_to_txn_response_add_partitions_to_txn_topic_result
                *tr = &t->topic_results.v[k];
            if (tr->name.len != (int32_t)strlen(j->topic) ||
                memcmp(tr->name.ptr, j->topic, strlen(j->topic)) != 0)
                continue;
            for (int32_t p = 0; p < tr->results_by_partition.n; p++)
                if (tr->results_by_partition.v[p].partition_index == j->partition)
                    return tr->results_by_partition.v[p].partition_error_code;
        }
    }
    return -1;
}

/* One AddPartitionsToTxn v4 to `node` for the n checks of batch (distinct transactional ids;
 * verify_only for the checks, not for the additions of TV2); answers each. */
static void send_batch(struct txn_verifier *v, int32_t node, struct verify_job **batch, size_t n)
{
    struct broker *b = v->b;
    struct arena a;
    arena_init(&a, 0);
    struct kmsg_add_partitions_to_txn_request req;
    struct kmsg_add_partitions_to_txn_response resp;
    kmsg_add_partitions_to_txn_request_init(&req);
    kmsg_add_partitions_to_txn_response_init(&resp);
    struct kmsg_add_partitions_to_txn_request_add_partitions_to_txn_transaction *ts =
        arena_calloc(&a, n, sizeof(*ts));
    struct kmsg_add_partitions_to_txn_request_add_partitions_to_txn_topic *tops =
        arena_calloc(&a, n, sizeof(*tops));
    int rc = ts && tops ? 0 : -ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        kmsg_add_partitions_to_txn_request_add_partitions_to_txn_transaction_init(&ts[i]);
        kmsg_add_partitions_to_txn_request_add_partitions_to_txn_topic_init(&tops[i]);
        ts[i].transactional_id = kstr_of(batch[i]->txid);
        ts[i].producer_id = batch[i]->producer_id;
        ts[i].producer_epoch = batch[i]->producer_epoch;
        ts[i].verify_only = !batch[i]->add;
        tops[i].name = kstr_of(batch[i]->topic);
        tops[i].partitions = (struct karray_int32){1, &batch[i]->partition};
        ts[i].topics.v = &tops[i];
        ts[i].topics.n = 1;
    }
    req.transactions.v = ts;
    req.transactions.n = (int32_t)n;
    char host[256] = "";
    int port = -1;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_broker *mb = metadata_image_broker(img, node);
    if (mb != NULL && mb->host != NULL && strlen(mb->host) < sizeof(host)) {
        strcpy(host, mb->host);
        port = mb->port;
    }
    metadata_image_release(img);
    uint8_t *buf = NULL;
    if (rc == 0)
        rc = port < 0 ? -ENOENT
                      : controller_client_call(client_for(v, node), host, port,
                                               KPROTO_API_ADD_PARTITIONS_TO_TXN, 4, &req, &resp,
                                               &buf, &a, VERIFIER_TIMEOUT_MS);
    if (rc != 0)
        logger_warn("txn", "verifying with the coordinator on broker %d failed: %s", node,
                    strerror(-rc));
    for (size_t i = 0; i < n; i++) {
        int16_t err = rc == 0 ? response_error(&resp, batch[i]) : -1;
        job_answer(batch[i], err < 0 ? KAFKA_ERR_COORDINATOR_NOT_AVAILABLE : err);
    }
    free(buf);
    arena_free(&a);
}

/* The thread, without the mutex: answers every check of list. */
static void verifier_pass(struct txn_verifier *v, struct verify_job *list)
{
    struct broker *b = v->b;
    for (struct verify_job **pp = &list; *pp;) { /* local or unreachable: answered now */
        struct verify_job *j = *pp;
        j->node = coordinator_node(b, j->txid);
        if (j->node >= 0 && j->node != b->cfg.node_id) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        if (j->node < 0)
            job_answer(j, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
        else
            verify_locally(b, j);
    }
    struct verify_job *batch[VERIFIER_BATCH];
    while (list) { /* one request per coordinator, a transactional id once per request */
        int32_t node = list->node;
        size_t n = 0;
        for (struct verify_job **pp = &list; *pp && n < VERIFIER_BATCH;) {
            struct verify_job *j = *pp;
            bool dup = false;
            for (size_t k = 0; k < n && !dup; k++)
                dup = strcmp(batch[k]->txid, j->txid) == 0 || batch[k]->add != j->add;
            if (j->node != node || dup) {
                pp = &j->next;
                continue;
            }
            *pp = j->next;
            batch[n++] = j;
        }
        assert(n > 0); /* the list's head always qualifies */
        send_batch(v, node, batch, n);
    }
}

static void *verifier_main(void *arg)
{
    struct txn_verifier *v = arg;
    pthread_mutex_lock(&v->mu);
    while (!v->stop) {
        if (v->head == NULL) {
            pthread_cond_wait(&v->cv, &v->mu);
            continue;
        }
        struct verify_job *list = v->head;
        v->head = NULL;
        pthread_mutex_unlock(&v->mu);
        verifier_pass(v, list);
        pthread_mutex_lock(&v->mu);
    }
    pthread_mutex_unlock(&v->mu);
    return NULL;
}

int txn_verifier_start(struct broker *b)
{
    struct txn_verifier *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return -ENOMEM;
    v->b = b;
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cv, NULL);
    for (int i = 0; i < VERIFIER_CLIENTS; i++) {
        controller_client_init(&v->clients[i], b->cfg.node_id, &b->interbroker);
        v->client_node[i] = -1;
    }
    if (pthread_create(&v->thread, NULL, verifier_main, v) != 0) {
        pthread_cond_destroy(&v->cv);
        pthread_mutex_destroy(&v->mu);
        free(v);
        return -EAGAIN;
    }
    b->txn_verifier = v;
    return 0;
}

void txn_verifier_stop(struct broker *b)
{
    struct txn_verifier *v = b->txn_verifier;
    if (v == NULL)
        return;
    pthread_mutex_lock(&v->mu);
    v->stop = true;
    pthread_cond_signal(&v->cv);
    pthread_mutex_unlock(&v->mu);
    pthread_join(v->thread, NULL);
    while (v->head) {
        struct verify_job *j = v->head;
        v->head = j->next;
        job_answer(j, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
    }
    for (int i = 0; i < VERIFIER_CLIENTS; i++)
        controller_client_close(&v->clients[i]);
    pthread_cond_destroy(&v->cv);
    pthread_mutex_destroy(&v->mu);
    b->txn_verifier = NULL;
    free(v);
}

void txn_verifier_check(struct broker *b, const char *txid, int64_t producer_id,
                        int16_t producer_epoch, const char *topic, int32_t partition, bool add,
                        void (*cb)(void *arg, int16_t err), void *arg)
{
    struct verify_job *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        cb(arg, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    j->txid = strdup(txid);
    j->topic = strdup(topic);
    j->producer_id = producer_id;
    j->producer_epoch = producer_epoch;
    j->partition = partition;
    j->add = add;
    j->cb = cb;
    j->arg = arg;
    if (j->txid == NULL || j->topic == NULL) {
        job_answer(j, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    j->node = coordinator_node(b, txid);
    if (j->node == b->cfg.node_id) { /* this broker coordinates it: no hop */
        verify_locally(b, j);
        return;
    }
    if (j->node < 0) {
        job_answer(j, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
        return;
    }
    struct txn_verifier *v = b->txn_verifier;
    if (v != NULL) {
        pthread_mutex_lock(&v->mu);
        if (!v->stop) {
            j->next = v->head;
            v->head = j;
            pthread_cond_signal(&v->cv);
            j = NULL;
        }
        pthread_mutex_unlock(&v->mu);
    }
    if (j != NULL)
        job_answer(j, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
}
