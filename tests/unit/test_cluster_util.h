/*
 * Helpers for the cluster tests: wait synchronously for a controller command's completion
 * (which arrives on the controller thread), temporary directories, polling for leadership.
 * Header-only, static functions; include after test.h.
 */
#ifndef GREGOR_TEST_CLUSTER_UTIL_H
#define GREGOR_TEST_CLUSTER_UTIL_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/controller.h"

#define CW_MAX_TOPICS 64

struct cw_topic {
    char name[256];
    uint8_t topic_id[16];
    int16_t error_code;
    char msg[512];
    int32_t num_partitions;
};

#define CW_MAX_ISR 16

/* An AlterPartition outcome (controller_partition_result, copied). */
struct cw_partition {
    uint8_t topic_id[16];
    int32_t partition;
    int16_t error_code;
    int32_t leader_id, leader_epoch, partition_epoch;
    int8_t leader_recovery_state;
    uint32_t n_isr;
    int32_t isr[CW_MAX_ISR];
};

struct cw_result {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool done;
    int16_t error_code;
    char msg[512];
    size_t n_topics;
    struct cw_topic topics[CW_MAX_TOPICS];
    int64_t pid_start;
    int32_t pid_len;
    uint64_t version;
    int64_t broker_epoch;
    bool is_fenced, should_shut_down;
    size_t n_partitions;
    struct cw_partition partitions[CW_MAX_TOPICS];
};

static inline void cw_begin(struct cw_result *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->m, NULL);
    pthread_cond_init(&r->c, NULL);
}

/* controller_done_fn: copies the result (valid only during the call) and wakes the waiter. */
static inline void cw_done(void *arg, const struct controller_result *res)
{
    struct cw_result *r = arg;
    pthread_mutex_lock(&r->m);
    r->error_code = res->error_code;
    snprintf(r->msg, sizeof(r->msg), "%s", res->error_message ? res->error_message : "");
    r->n_topics = res->n_topics < CW_MAX_TOPICS ? res->n_topics : CW_MAX_TOPICS;
    for (size_t i = 0; i < r->n_topics; i++) {
        const struct controller_topic_result *t = &res->topics[i];
        snprintf(r->topics[i].name, sizeof(r->topics[i].name), "%s", t->name ? t->name : "");
        memcpy(r->topics[i].topic_id, t->topic_id, 16);
        r->topics[i].error_code = t->error_code;
        snprintf(r->topics[i].msg, sizeof(r->topics[i].msg), "%s",
                 t->error_message ? t->error_message : "");
        r->topics[i].num_partitions = t->num_partitions;
    }
    r->pid_start = res->producer_id_start;
    r->pid_len = res->producer_id_len;
    r->version = res->image_version;
    r->broker_epoch = res->broker_epoch;
    r->is_fenced = res->is_fenced;
    r->should_shut_down = res->should_shut_down;
    r->n_partitions = res->n_partitions < CW_MAX_TOPICS ? res->n_partitions : CW_MAX_TOPICS;
    for (size_t i = 0; i < r->n_partitions; i++) {
        const struct controller_partition_result *p = &res->partitions[i];
        struct cw_partition *d = &r->partitions[i];
        memcpy(d->topic_id, p->topic_id, 16);
        d->partition = p->partition;
        d->error_code = p->error_code;
        d->leader_id = p->leader_id;
        d->leader_epoch = p->leader_epoch;
        d->partition_epoch = p->partition_epoch;
        d->leader_recovery_state = p->leader_recovery_state;
        d->n_isr = p->n_isr < CW_MAX_ISR ? p->n_isr : CW_MAX_ISR;
        if (d->n_isr)
            memcpy(d->isr, p->isr, d->n_isr * sizeof(int32_t));
    }
    r->done = true;
    pthread_cond_signal(&r->c);
    pthread_mutex_unlock(&r->m);
}

static inline void cw_wait(struct cw_result *r)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&r->m);
    while (!r->done) {
        if (pthread_cond_timedwait(&r->c, &r->m, &deadline) != 0) {
            printf("  command did not complete within 30 s\n");
            abort();
        }
    }
    pthread_mutex_unlock(&r->m);
    pthread_mutex_destroy(&r->m);
    pthread_cond_destroy(&r->c);
}

/* A heartbeat from broker id; returns the error code (result in *r). */
static inline int cw_heartbeat(struct controller *ctl, int32_t id, int64_t epoch, int64_t offset,
                               bool want_shutdown, struct cw_result *r)
{
    cw_begin(r);
    if (controller_broker_heartbeat(ctl, id, epoch, offset, false, want_shutdown, cw_done, r) != 0)
        return -1;
    cw_wait(r);
    return r->error_code;
}

/*
 * Registers broker id (host 127.0.0.1, port base + id) and unfences it with a caught-up
 * heartbeat, as a broker's lifecycle does. Returns the first error code; *epoch_out if given.
 */
static inline int cw_register_broker(struct controller *ctl, int32_t id, int32_t base,
                                     int64_t *epoch_out)
{
    struct controller_broker_registration reg = {id, "127.0.0.1", base + id, NULL, {0}, NULL, 0};
    reg.incarnation[0] = (uint8_t)id;
    struct cw_result r;
    cw_begin(&r);
    if (controller_register_broker(ctl, &reg, cw_done, &r) != 0)
        return -1;
    cw_wait(&r);
    if (r.error_code != 0)
        return r.error_code;
    int64_t epoch = r.broker_epoch;
    if (epoch_out)
        *epoch_out = epoch;
    return cw_heartbeat(ctl, id, epoch, 0, false, &r);
}

static inline bool cw_wait_active(struct controller *ctl, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 5) {
        if (controller_is_active(ctl))
            return true;
        usleep(5000);
    }
    return false;
}

static inline int cw_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    return remove(path);
}

static inline void cw_rmrf(const char *dir)
{
    nftw(dir, cw_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void cw_rmrf_owned(void *dir)
{
    cw_rmrf(dir);
    free(dir);
}

/* Makes a temporary directory into out; it is removed after the current test case however
 * it ends (test_defer; removing it earlier with cw_rmrf is fine). */
static inline int cw_tempdir(char *out, size_t len)
{
    snprintf(out, len, "/tmp/gregor-cluster-XXXXXX");
    char *copy;
    if (mkdtemp(out) == NULL || (copy = strdup(out)) == NULL)
        return -1;
    test_defer(cw_rmrf_owned, copy);
    return 0;
}

#endif
