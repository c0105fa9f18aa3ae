/*
 * Cleaner thread. The registered-log list is guarded by `lock`; a pass copies it and runs with
 * `busy` set and the lock dropped, and remove() waits for the pass to end, so a log is never
 * used by a pass after its removal returned.
 */
#include "storage/cleaner.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/logger.h"
#include "storage/log.h"

struct log_cleaner {
    struct log_cleaner_config cfg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake, pass_done;
    bool stop, busy;
    bool retune;                      /* tuning changed: cut the current wait short */
    struct log_cleaner_tuning tuning; /* guarded by lock */
    int64_t io_bytes, throttled_ms;   /* guarded by lock */
    struct log **logs;
    size_t nlogs, cap;
};

struct log_cleaner_config log_cleaner_config_defaults(void)
{
    return (struct log_cleaner_config){.check_interval_ms = 300000,
                                       .tuning = {.backoff_ms = 15000}};
}

/* Kafka's Throttler, per log: after `bytes` of compaction I/O, sleep until they fit under the
 * rate (the stop flag and a new tuning end the pause). Cleaner thread, lock not held. */
static void throttle_io(struct log_cleaner *c, int64_t bytes, int64_t started_ms)
{
    pthread_mutex_lock(&c->lock);
    c->io_bytes += bytes;
    double rate = c->tuning.io_max_bytes_per_second;
    if (rate > 0 && rate < 1e15) {
        int64_t due = started_ms + (int64_t)((double)bytes * 1000.0 / rate);
        int64_t t0 = clock_mono_ms();
        c->retune = false;
        while (!c->stop && !c->retune && clock_mono_ms() < due) {
            struct timespec ts = clock_mono_deadline(due - clock_mono_ms());
            pthread_cond_timedwait(&c->wake, &c->lock, &ts);
        }
        c->throttled_ms += clock_mono_ms() - t0;
    }
    pthread_mutex_unlock(&c->lock);
}

static int pass_over(struct log_cleaner *c, struct log **logs, size_t n, int64_t now,
                     bool retention)
{
    int deleted = 0;
    for (size_t i = 0; i < n; i++) {
        struct log *log = logs[i];
        int rc = retention ? log_apply_retention(log, now) : 0;
        if (rc > 0)
            deleted += rc;
        struct log_config cfg = log_get_config(log);
        int64_t started = clock_mono_ms();
        if (cfg.compact && c->cfg.compact &&
            (rc = c->cfg.compact(log, now, c->cfg.compact_arg)) < 0)
            logger_warn("storage", "compaction of %s failed: %d", log_dir_path(log), rc);
        else if (cfg.compact && c->cfg.compact && rc > 0)
            throttle_io(c, rc, started);
        log_purge_deleted(log, now, false);
        log_close_idle_segments(log, clock_mono_ms());
    }
    return deleted;
}

/* Copies the list and marks a pass in progress (lock held). */
static struct log **begin_pass(struct log_cleaner *c, size_t *n)
{
    struct log **v = malloc((c->nlogs ? c->nlogs : 1) * sizeof(*v));
    *n = 0;
    if (!v)
        return NULL;
    if (c->nlogs > 0)
        memcpy(v, c->logs, c->nlogs * sizeof(*v));
    *n = c->nlogs;
    c->busy = true;
    return v;
}

static void end_pass(struct log_cleaner *c, struct log **v)
{
    free(v);
    c->busy = false;
    pthread_cond_broadcast(&c->pass_done);
}

int log_cleaner_run_once(struct log_cleaner *c, int64_t now_wall_ms)
{
    size_t n;
    pthread_mutex_lock(&c->lock);
    while (c->busy)
        pthread_cond_wait(&c->pass_done, &c->lock);
    struct log **v = begin_pass(c, &n);
    pthread_mutex_unlock(&c->lock);
    int deleted = v ? pass_over(c, v, n, now_wall_ms, true) : -ENOMEM;
    pthread_mutex_lock(&c->lock);
    end_pass(c, v);
    pthread_mutex_unlock(&c->lock);
    return deleted;
}

static void *cleaner_main(void *arg)
{
    struct log_cleaner *c = arg;
    pthread_mutex_lock(&c->lock);
    int64_t next_retention = clock_mono_ms() + c->cfg.check_interval_ms;
    while (!c->stop) {
        /* Retention every check interval; compaction also every backoff (Kafka's cleaner
         * threads look for a log to clean, then back off). */
        int64_t wait = next_retention - clock_mono_ms();
        if (c->cfg.compact && c->tuning.backoff_ms < wait)
            wait = c->tuning.backoff_ms;
        c->retune = false;
        if (wait > 0) {
            struct timespec ts = clock_mono_deadline(wait);
            pthread_cond_timedwait(&c->wake, &c->lock, &ts);
        }
        if (c->stop)
            break;
        if (c->retune)
            continue;
        while (c->busy)
            pthread_cond_wait(&c->pass_done, &c->lock);
        bool retention = clock_mono_ms() >= next_retention;
        if (retention)
            next_retention = clock_mono_ms() + c->cfg.check_interval_ms;
        size_t n;
        struct log **v = begin_pass(c, &n);
        pthread_mutex_unlock(&c->lock);
        if (v)
            pass_over(c, v, n, clock_wall_ms(), retention);
        pthread_mutex_lock(&c->lock);
        end_pass(c, v);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int log_cleaner_create(const struct log_cleaner_config *cfg, struct log_cleaner **out)
{
    struct log_cleaner *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->cfg = cfg ? *cfg : log_cleaner_config_defaults();
    if (c->cfg.check_interval_ms <= 0)
        c->cfg.check_interval_ms = 300000;
    c->tuning = c->cfg.tuning;
    int rc = clock_cond_init_mono(&c->wake);
    if (rc != 0) {
        free(c);
        return -rc;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->pass_done, NULL);
    rc = pthread_create(&c->thread, NULL, cleaner_main, c);
    if (rc != 0) {
        pthread_cond_destroy(&c->wake);
        pthread_cond_destroy(&c->pass_done);
        pthread_mutex_destroy(&c->lock);
        free(c);
        return -rc;
    }
    *out = c;
    return 0;
}

void log_cleaner_destroy(struct log_cleaner *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->stop = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->wake);
    pthread_cond_destroy(&c->pass_done);
    free(c->logs);
    free(c);
}

int log_cleaner_add(struct log_cleaner *c, struct log *log)
{
    pthread_mutex_lock(&c->lock);
    if (c->nlogs == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct log **v = realloc(c->logs, cap * sizeof(*v));
        if (!v) {
            pthread_mutex_unlock(&c->lock);
            return -ENOMEM;
        }
        c->logs = v;
        c->cap = cap;
    }
    c->logs[c->nlogs++] = log;
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void log_cleaner_remove(struct log_cleaner *c, struct log *log)
{
    pthread_mutex_lock(&c->lock);
    while (c->busy)
        pthread_cond_wait(&c->pass_done, &c->lock);
    for (size_t i = 0; i < c->nlogs; i++)
        if (c->logs[i] == log) {
            c->logs[i] = c->logs[--c->nlogs];
            break;
        }
    pthread_mutex_unlock(&c->lock);
}

void log_cleaner_set_tuning(struct log_cleaner *c, const struct log_cleaner_tuning *t)
{
    pthread_mutex_lock(&c->lock);
    c->tuning = *t;
    c->retune = true;
    pthread_cond_signal(&c->wake);
    pthread_mutex_unlock(&c->lock);
}

void log_cleaner_stats(struct log_cleaner *c, int64_t *io_bytes, int64_t *throttled_ms)
{
    pthread_mutex_lock(&c->lock);
    *io_bytes = c->io_bytes;
    *throttled_ms = c->throttled_ms;
    pthread_mutex_unlock(&c->lock);
}
