/*
 * Group-commit flusher threads. Requests queue under `lock`; a free thread takes every queued
 * request of the first queued log that no other thread is flushing, flushes that log once, and
 * completes them, so each log's waiters share one fdatasync and different logs sync in parallel
 * (the disk and the journal batch concurrent syncs). Requests of a log arriving while it is
 * being flushed wait for the next round of that log (one fdatasync for all of them): a slow log
 * (a large backlog, a slow device) occupies one thread at most, and the others serve every other
 * log, so it never holds their acknowledgements. Thread 0 also flushes registered logs when
 * their flush.ms interval passes. With no requests and no finite interval the threads sleep on
 * the condition variable (idle = asleep).
 */
#include "storage/flusher.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"
#include "storage/log_internal.h"
#include "storage/page_cache_budget.h"

struct flush_req {
    struct log *log;
    int64_t offset;
    log_flush_cb cb; /* NULL: a poke or a writeback */
    void *arg;
    bool writeback; /* only start writeback (log_start_writeback), no sync */
    struct flush_req *next;
};

/* Concurrent fdatasyncs: a few cover what one SSD's queue and the journal's batching gain. */
#define FLUSHER_THREADS 4

struct flusher_thread {
    struct log_flusher *f;
    pthread_t thread;
    bool intervals;      /* this thread runs the flush.ms intervals */
    struct log *current; /* the log it flushes with the lock dropped, or NULL */
    bool in_intervals;   /* it flushes due intervals with the lock dropped */
};

struct log_flusher {
    struct flusher_thread threads[FLUSHER_THREADS];
    int nthreads;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake, round_done;
    bool stop;
    struct flush_req *head, **tail;
    struct log **logs;
    size_t nlogs, cap;
    struct log_flush_observer observer; /* copied by the thread under the lock each round */
    struct page_cache_budget *budget;   /* NULL: no bound; set before any log is added */
};

/* log_flush() timed for the observer, if any. */
static int observed_flush(const struct log_flush_observer *obs, struct log *log, int64_t *flushed)
{
    if (obs == NULL || obs->fn == NULL)
        return log_flush(log, flushed);
    int64_t t0 = clock_mono_ns();
    int rc = log_flush(log, flushed);
    obs->fn(obs->arg, clock_mono_ns() - t0);
    return rc;
}

/* Earliest monotonic deadline of a flush.ms interval, INT64_MAX if none (lock held). */
static int64_t next_deadline(struct log_flusher *f)
{
    int64_t best = INT64_MAX;
    for (size_t i = 0; i < f->nlogs; i++) {
        int64_t iv = atomic_load(&f->logs[i]->flush_interval_ms);
        if (iv == INT64_MAX || iv < 0)
            continue;
        int64_t d = atomic_load(&f->logs[i]->last_flush_ms) + iv;
        if (d < best)
            best = d;
    }
    return best;
}

/* Lock held: whether a thread is flushing `log` (or writing it back) with the lock dropped. */
static bool flusher_busy_with(const struct log_flusher *f, const struct log *log)
{
    for (int i = 0; i < f->nthreads; i++)
        if (f->threads[i].current == log)
            return true;
    return false;
}

/* Lock held: the first queued request whose log no thread is flushing, or NULL. */
static struct flush_req *first_free_request(const struct log_flusher *f)
{
    for (struct flush_req *r = f->head; r; r = r->next)
        if (!flusher_busy_with(f, r->log))
            return r;
    return NULL;
}

/* Lock held: waits until a request can be taken, a flush.ms deadline passes (intervals), or
 * the flusher stops with nothing queued. */
static void wait_for_work(struct log_flusher *f, bool intervals)
{
    while (!(f->stop && !f->head) && !first_free_request(f)) {
        int64_t deadline = intervals ? next_deadline(f) : INT64_MAX;
        if (deadline == INT64_MAX) {
            pthread_cond_wait(&f->wake, &f->lock);
            continue;
        }
        int64_t now = clock_mono_ms();
        if (deadline <= now)
            return;
        struct timespec ts = clock_mono_deadline(deadline - now);
        pthread_cond_timedwait(&f->wake, &f->lock, &ts);
    }
}

/* Flushes each distinct log of the list once, then completes its requests. */
static bool only_writebacks(const struct flush_req *list, const struct log *log)
{
    for (const struct flush_req *r = list; r; r = r->next)
        if (r->log == log && !r->writeback)
            return false;
    return true;
}

static void note_range(void *budget, const char *path, int64_t from, int64_t to)
{
    page_cache_budget_note(budget, path, from, to);
}

/* After a writeback (or a flush) of `log`: what it wrote goes on the page-cache budget (whose
 * lock is a leaf: taking it under the log's segments lock is safe). */
static void note_written(struct page_cache_budget *budget, struct log *log)
{
    log_take_written(log, note_range, budget);
}

static void complete_requests(struct flush_req *list, const struct log_flush_observer *obs,
                              struct page_cache_budget *budget)
{
    while (list) {
        struct log *log = list->log;
        int64_t flushed = 0;
        int rc = only_writebacks(list, log) ? log_start_writeback(log)
                                            : observed_flush(obs, log, &flushed);
        struct flush_req **pp = &list;
        while (*pp) {
            struct flush_req *r = *pp;
            if (r->log != log) {
                pp = &r->next;
                continue;
            }
            *pp = r->next;
            if (r->cb)
                r->cb(r->arg, rc < 0 ? rc : 0);
            free(r);
        }
        if (budget && rc >= 0)
            note_written(budget, log); /* dropped by the thread once it lets go of the log */
    }
}

/* Lock held: detaches the queued requests of `log` (in order) and repairs the tail. */
static struct flush_req *take_log_requests(struct log_flusher *f, const struct log *log)
{
    struct flush_req *mine = NULL, **mt = &mine, **pp = &f->head;
    while (*pp) {
        struct flush_req *r = *pp;
        if (r->log == log) {
            *pp = r->next;
            r->next = NULL;
            *mt = r;
            mt = &r->next;
        } else {
            pp = &r->next;
        }
    }
    f->tail = pp;
    return mine;
}

/* Lock held: detaches the queued requests of the first log no other thread is flushing. */
static struct flush_req *take_free_log(struct log_flusher *f)
{
    struct flush_req *r = first_free_request(f);
    return r ? take_log_requests(f, r->log) : NULL;
}

/* Lock held, about to drop it for long: a queued request some thread could take wakes one. */
static void hand_over(struct log_flusher *f)
{
    if (first_free_request(f))
        pthread_cond_signal(&f->wake);
}

/* Flushes registered logs whose flush.ms passed. Called with the lock held and in_intervals
 * set; the lock is dropped around the fdatasyncs (in_intervals keeps remove() from freeing a
 * log meanwhile). */
static void flush_intervals(struct log_flusher *f)
{
    int64_t now = clock_mono_ms();
    size_t n = 0;
    struct log **due = malloc((f->nlogs ? f->nlogs : 1) * sizeof(*due));
    if (!due)
        return;
    for (size_t i = 0; i < f->nlogs; i++) {
        struct log *log = f->logs[i];
        int64_t iv = atomic_load(&log->flush_interval_ms);
        if (iv == INT64_MAX || iv < 0 || atomic_load(&log->last_flush_ms) + iv > now)
            continue;
        if (log_end_offset(log) == log_recovery_point(log))
            atomic_store(&log->last_flush_ms, now);
        else
            due[n++] = log;
    }
    struct log_flush_observer obs = f->observer;
    if (n > 0)
        hand_over(f);
    pthread_mutex_unlock(&f->lock);
    for (size_t i = 0; i < n; i++)
        observed_flush(&obs, due[i], NULL);
    free(due);
    pthread_mutex_lock(&f->lock);
}

static void *flusher_main(void *arg)
{
    struct flusher_thread *t = arg;
    struct log_flusher *f = t->f;
    pthread_mutex_lock(&f->lock);
    for (;;) {
        wait_for_work(f, t->intervals);
        struct flush_req *list = take_free_log(f);
        assert(list == NULL || !flusher_busy_with(f, list->log));
        t->current = list ? list->log : NULL;
        if (first_free_request(f))
            pthread_cond_signal(&f->wake); /* another log waits: another thread takes it */
        bool stop = f->stop;
        struct log_flush_observer obs = f->observer;
        struct page_cache_budget *budget = f->budget;
        pthread_mutex_unlock(&f->lock);
        complete_requests(list, &obs, budget);
        pthread_mutex_lock(&f->lock);
        /* Requests of this log that arrived during its flush woke no thread (enqueue): this
         * thread takes them when it loops, or wakes one before it drops the lock again. */
        t->current = NULL;
        if (t->intervals) {
            t->in_intervals = true;
            flush_intervals(f);
            t->in_intervals = false;
        }
        pthread_cond_broadcast(&f->round_done);
        if (stop && !f->head)
            break;
        if (budget != NULL && page_cache_budget_over(budget)) {
            /* Holding no log: waiting for an old range's writeback delays no flush. */
            hand_over(f);
            pthread_mutex_unlock(&f->lock);
            page_cache_budget_trim(budget);
            pthread_mutex_lock(&f->lock);
        }
    }
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

/* Stops and joins the running threads (destroy, or a failed create). */
static void flusher_join(struct log_flusher *f)
{
    pthread_mutex_lock(&f->lock);
    f->stop = true;
    pthread_cond_broadcast(&f->wake);
    pthread_mutex_unlock(&f->lock);
    for (int i = 0; i < f->nthreads; i++)
        pthread_join(f->threads[i].thread, NULL);
    f->nthreads = 0;
}

int log_flusher_create(struct log_flusher **out)
{
    struct log_flusher *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    int rc = clock_cond_init_mono(&f->wake);
    if (rc != 0) {
        free(f);
        return -rc;
    }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->round_done, NULL);
    f->tail = &f->head;
    for (int i = 0; i < FLUSHER_THREADS && rc == 0; i++) {
        f->threads[i] = (struct flusher_thread){.f = f, .intervals = i == 0};
        rc = pthread_create(&f->threads[i].thread, NULL, flusher_main, &f->threads[i]);
        if (rc == 0)
            f->nthreads++;
    }
    if (rc != 0) {
        flusher_join(f);
        pthread_cond_destroy(&f->wake);
        pthread_cond_destroy(&f->round_done);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return -rc;
    }
    *out = f;
    return 0;
}

void log_flusher_destroy(struct log_flusher *f)
{
    if (!f)
        return;
    flusher_join(f);
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->wake);
    pthread_cond_destroy(&f->round_done);
    page_cache_budget_destroy(f->budget);
    free(f->logs);
    free(f);
}

int log_flusher_limit_page_cache(struct log_flusher *f, int64_t max_bytes)
{
    struct page_cache_budget *b;
    int rc = page_cache_budget_create(max_bytes, &b);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&f->lock);
    assert(f->nlogs == 0 && f->budget == NULL); /* before any log: threads read it unlocked */
    f->budget = b;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

struct page_cache_budget *log_flusher_page_cache_budget(struct log_flusher *f)
{
    return f->budget;
}

void log_forget_cached_segment(struct log *log, const struct segment *seg, int64_t from)
{
    assert(from >= 0);
    struct log_flusher *f = atomic_load(&log->flusher);
    if (f == NULL || f->budget == NULL)
        return;
    char path[PATH_MAX];
    /* The name log_take_written hands out (hand_out_written in log.c). */
    snprintf(path, sizeof(path), "%s.log", seg->path);
    page_cache_budget_forget_file(f->budget, path, from);
}

int log_flusher_add(struct log_flusher *f, struct log *log)
{
    pthread_mutex_lock(&f->lock);
    if (f->nlogs == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        struct log **v = realloc(f->logs, cap * sizeof(*v));
        if (!v) {
            pthread_mutex_unlock(&f->lock);
            return -ENOMEM;
        }
        f->logs = v;
        f->cap = cap;
    }
    f->logs[f->nlogs++] = log;
    atomic_store(&log->flusher, f);
    pthread_cond_broadcast(&f->wake); /* its interval may be the new earliest deadline */
    pthread_mutex_unlock(&f->lock);
    return 0;
}

/* Lock held: whether a thread may be flushing `log` with the lock dropped. */
static bool flusher_uses(const struct log_flusher *f, const struct log *log)
{
    for (int i = 0; i < f->nthreads; i++)
        if (f->threads[i].current == log || f->threads[i].in_intervals)
            return true;
    return false;
}

void log_flusher_remove(struct log_flusher *f, struct log *log)
{
    pthread_mutex_lock(&f->lock);
    while (flusher_uses(f, log)) /* a thread may be flushing this log right now */
        pthread_cond_wait(&f->round_done, &f->lock);
    for (size_t i = 0; i < f->nlogs; i++)
        if (f->logs[i] == log) {
            f->logs[i] = f->logs[--f->nlogs];
            break;
        }
    struct flush_req *mine = take_log_requests(f, log);
    atomic_store(&log->flusher, NULL);
    pthread_mutex_unlock(&f->lock);
    complete_requests(mine, NULL, NULL);
}

/* Lock held: whether a request of `log` is queued. */
static bool log_queued(const struct log_flusher *f, const struct log *log)
{
    for (const struct flush_req *r = f->head; r; r = r->next)
        if (r->log == log)
            return true;
    return false;
}

/*
 * Queues a copy of `req` and wakes one thread, or all of them (wake_all: a poke, after which
 * thread 0 must re-read the flush.ms deadlines even if another thread takes the request). A
 * request of a log being flushed wakes nobody: the flushing thread takes it when it is done
 * (flusher_main). Nor does one whose log already has a request queued: a thread was woken for
 * that one. Under acks=all on a few partitions most requests arrive during their log's flush,
 * and waking a thread that finds nothing to take costs two context switches each.
 */
static int enqueue(struct log_flusher *f, struct flush_req req, bool wake_all)
{
    struct flush_req *r = malloc(sizeof(*r));
    if (!r)
        return -ENOMEM;
    *r = req;
    r->next = NULL;
    pthread_mutex_lock(&f->lock);
    bool wake = !flusher_busy_with(f, r->log) && !log_queued(f, r->log);
    *f->tail = r;
    f->tail = &r->next;
    if (wake_all)
        pthread_cond_broadcast(&f->wake);
    else if (wake)
        pthread_cond_signal(&f->wake);
    pthread_mutex_unlock(&f->lock);
    return 0;
}

int log_flush_request(struct log *log, int64_t offset, log_flush_cb cb, void *arg)
{
    if (log_recovery_point(log) >= offset) {
        if (cb)
            cb(arg, 0);
        return 0;
    }
    struct log_flusher *f = atomic_load(&log->flusher);
    if (!f) {
        int rc = log_flush(log, NULL);
        if (cb)
            cb(arg, rc);
        return 0;
    }
    return enqueue(f, (struct flush_req){.log = log, .offset = offset, .cb = cb, .arg = arg},
                   false);
}

void log_flusher_poke(struct log_flusher *f, struct log *log)
{
    enqueue(f, (struct flush_req){.log = log, .offset = log_end_offset(log)}, true);
}

void log_flusher_writeback(struct log_flusher *f, struct log *log)
{
    /* Dropped without memory: only an optimisation, the next fdatasync writes it all. */
    enqueue(f, (struct flush_req){.log = log, .writeback = true}, false);
}

void log_flusher_set_observer(struct log_flusher *f, const struct log_flush_observer *obs)
{
    pthread_mutex_lock(&f->lock);
    f->observer = obs ? *obs : (struct log_flush_observer){NULL, NULL};
    pthread_mutex_unlock(&f->lock);
}
