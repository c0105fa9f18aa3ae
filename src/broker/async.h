/*
 * Waiting for the controller from a request handler without blocking the worker: the
 * controller calls back on its own thread; we copy the outcome and post it to the request's
 * worker, where `resume` continues the handler.
 */
#ifndef GREGOR_BROKER_ASYNC_H
#define GREGOR_BROKER_ASYNC_H

#include "broker/request.h"
#include "cluster/controller.h"

struct broker_async_topic {
    char *name; /* NULL when the result has none */
    int16_t error_code;
    char *error_message; /* NULL when none */
    uint8_t topic_id[16];
    int32_t num_partitions;
};

/* AlterPartition: one partition's outcome (controller_partition_result, copied). */
struct broker_async_partition {
    uint8_t topic_id[16];
    int32_t partition;
    int16_t error_code;
    int32_t leader_id, leader_epoch, partition_epoch;
    int8_t leader_recovery_state;
    uint32_t n_isr;
    int32_t *isr; /* NULL when n_isr == 0 */
};

struct broker_async {
    struct broker_req *r;
    void (*resume)(struct broker_async *a);
    void *arg;          /* the handler's state */
    int16_t error_code; /* request-level */
    char *error_message;
    size_t n_topics;
    struct broker_async_topic *topics;
    int64_t producer_id_start;
    int32_t producer_id_len;
    int64_t broker_epoch; /* register / heartbeat */
    bool is_caught_up, is_fenced, should_shut_down;
    size_t n_partitions; /* alter_partition, in request order */
    struct broker_async_partition *partitions;
};

/*
 * Allocates the waiting state for r. Pass broker_async_done and the result as the controller
 * command's callback and argument. After resume() returns the state is freed.
 */
struct broker_async *broker_async_new(struct broker_req *r, void (*resume)(struct broker_async *),
                                      void *arg);

/* The controller_done_fn for commands started with a broker_async. */
void broker_async_done(void *arg, const struct controller_result *res);

/* Frees a state whose command could not be submitted (done will never be called). */
void broker_async_free(struct broker_async *a);

#endif
