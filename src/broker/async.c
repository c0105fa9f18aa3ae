/* Controller completions carried back to the request's worker thread. */
#include "broker/async.h"

#include <stdlib.h>
#include <string.h>

#include "base/logger.h"

struct broker_async *broker_async_new(struct broker_req *r, void (*resume)(struct broker_async *),
                                      void *arg)
{
    struct broker_async *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->r = r;
    a->resume = resume;
    a->arg = arg;
    return a;
}

void broker_async_free(struct broker_async *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n_topics; i++) {
        free(a->topics[i].error_message);
        free(a->topics[i].name);
    }
    free(a->topics);
    for (size_t i = 0; i < a->n_partitions; i++)
        free(a->partitions[i].isr);
    free(a->partitions);
    free(a->error_message);
    free(a);
}

static void broker_async_resume(void *arg)
{
    struct broker_async *a = arg;
    a->resume(a);
    broker_async_free(a);
}

/* The per-partition results of alter_partition; false on allocation failure. */
static bool copy_partitions(struct broker_async *a, const struct controller_result *res)
{
    if (res->n_partitions == 0)
        return true;
    a->partitions = calloc(res->n_partitions, sizeof(*a->partitions));
    if (a->partitions == NULL)
        return false;
    a->n_partitions = res->n_partitions;
    for (size_t i = 0; i < res->n_partitions; i++) {
        const struct controller_partition_result *p = &res->partitions[i];
        struct broker_async_partition *d = &a->partitions[i];
        memcpy(d->topic_id, p->topic_id, sizeof(d->topic_id));
        d->partition = p->partition;
        d->error_code = p->error_code;
        d->leader_id = p->leader_id;
        d->leader_epoch = p->leader_epoch;
        d->partition_epoch = p->partition_epoch;
        d->leader_recovery_state = p->leader_recovery_state;
        if (p->n_isr == 0)
            continue;
        d->isr = malloc(p->n_isr * sizeof(*d->isr));
        if (d->isr == NULL)
            return false;
        memcpy(d->isr, p->isr, p->n_isr * sizeof(*d->isr));
        d->n_isr = p->n_isr;
    }
    return true;
}

/* Copies what the handler needs out of res, which is only valid during this call. */
static void broker_async_copy(struct broker_async *a, const struct controller_result *res)
{
    a->error_code = res->error_code;
    a->error_message = res->error_message ? strdup(res->error_message) : NULL;
    a->producer_id_start = res->producer_id_start;
    a->producer_id_len = res->producer_id_len;
    a->broker_epoch = res->broker_epoch;
    a->is_caught_up = res->is_caught_up;
    a->is_fenced = res->is_fenced;
    a->should_shut_down = res->should_shut_down;
    if (!copy_partitions(a, res))
        a->error_code = -1; /* UNKNOWN_SERVER_ERROR */
    if (res->n_topics == 0)
        return;
    a->topics = calloc(res->n_topics, sizeof(*a->topics));
    if (a->topics == NULL) {
        a->error_code = -1; /* UNKNOWN_SERVER_ERROR */
        return;
    }
    a->n_topics = res->n_topics;
    for (size_t i = 0; i < res->n_topics; i++) {
        const struct controller_topic_result *t = &res->topics[i];
        a->topics[i].error_code = t->error_code;
        a->topics[i].error_message = t->error_message ? strdup(t->error_message) : NULL;
        a->topics[i].name = t->name ? strdup(t->name) : NULL;
        memcpy(a->topics[i].topic_id, t->topic_id, sizeof(a->topics[i].topic_id));
        a->topics[i].num_partitions = t->num_partitions;
    }
}

void broker_async_done(void *arg, const struct controller_result *res)
{
    struct broker_async *a = arg;
    broker_async_copy(a, res);
    if (net_worker_post(net_request_worker(a->r->nr), broker_async_resume, a) != 0) {
        /* The worker is gone (shutdown): the request dies with it. */
        logger_warn("broker", "dropping a controller completion during shutdown");
        broker_async_free(a);
    }
}
