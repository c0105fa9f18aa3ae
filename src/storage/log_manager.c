/*
 * Log directory management. Invariant: logs[] is sorted by (topic, partition) and holds each
 * partition at most once; it is written under the write lock only.
 */
#include "storage/log_manager.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/lock.h"
#include "base/logger.h"
#include "storage/checkpoint.h"

struct log_manager {
    char *dir;
    struct log_config defaults;
    pthread_rwlock_t lock; /* guards logs, n, cap */
    struct log **logs;
    size_t n, cap;
    pthread_mutex_t checkpoint_lock; /* serialises checkpoint file writers */
};

static int cmp_key(const char *topic, int32_t part, const struct log *log)
{
    int c = strcmp(topic, log_topic(log));
    if (c)
        return c;
    return part < log_partition(log) ? -1 : part > log_partition(log);
}

/* Index where (topic, part) is or would be inserted (lock held). */
static size_t find_slot(struct log_manager *m, const char *topic, int32_t part, bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = cmp_key(topic, part, m->logs[mid]);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

static int insert_locked(struct log_manager *m, struct log *log)
{
    assert(lock_rwlock_held(&m->lock));
    bool found;
    size_t at = find_slot(m, log_topic(log), log_partition(log), &found);
    if (found)
        return -EEXIST;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        struct log **v = realloc(m->logs, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        m->logs = v;
        m->cap = cap;
    }
    memmove(m->logs + at + 1, m->logs + at, (m->n - at) * sizeof(*m->logs));
    m->logs[at] = log;
    m->n++;
    return 0;
}

static void start_offset_changed(struct log *log, void *arg)
{
    int rc = log_manager_checkpoint(arg);
    if (rc < 0)
        logger_error("storage", "writing checkpoints for %s: %s", log_dir_path(log), strerror(-rc));
}

/* "<topic>-<N>" -> topic (malloc'ed) and N; false for anything else (incl. -delete dirs). */
static bool parse_partition_dir(const char *name, char **topic, int32_t *part)
{
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || !dash[1] || strlen(dash + 1) > 9)
        return false;
    for (const char *p = dash + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    *part = (int32_t)atol(dash + 1);
    *topic = strndup(name, (size_t)(dash - name));
    return *topic != NULL;
}

struct open_job {
    char *topic;
    int32_t partition;
    struct log *log;
    int rc;
};

struct open_ctx {
    struct log_manager *m;
    struct open_job *jobs;
    size_t njobs;
    _Atomic size_t next;
    struct checkpoint_entry *rp, *ls, *hw;
    size_t nrp, nls, nhw;
    bool clean;
};

static void *open_worker(void *arg)
{
    struct open_ctx *c = arg;
    size_t i;
    while ((i = atomic_fetch_add(&c->next, 1)) < c->njobs) {
        struct open_job *j = &c->jobs[i];
        struct log_open_state st = {
            .recovery_point = checkpoint_find(c->rp, c->nrp, j->topic, j->partition, 0),
            .log_start_offset = checkpoint_find(c->ls, c->nls, j->topic, j->partition, -1),
            .high_watermark = checkpoint_find(c->hw, c->nhw, j->topic, j->partition, 0),
            .clean_shutdown = c->clean,
        };
        j->rc = log_open(c->m->dir, j->topic, j->partition, &c->m->defaults, &st, &j->log);
    }
    return NULL;
}

/* "<topic>-<N>.<32 hex>-delete": a retired log (log_retire_dir) whose removal a crash cut off. */
static bool log_manager_is_trash(const char *name)
{
    size_t n = strlen(name), suffix = strlen("-delete");
    return n > suffix + 33 && strcmp(name + n - suffix, "-delete") == 0 &&
           name[n - suffix - 33] == '.';
}

static void log_manager_remove_trash(struct log_manager *m, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", m->dir, name);
    int rc = log_remove_tree(path);
    if (rc != 0)
        logger_warn("storage", "cannot remove %s: %s", path, strerror(-rc));
    else
        logger_info("storage", "removed %s (deleted before the last shutdown)", path);
}

static int list_partitions(struct log_manager *m, struct open_ctx *c)
{
    DIR *d = opendir(m->dir);
    if (!d)
        return -errno;
    size_t cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        char *topic;
        int32_t part;
        /* Hidden entries and "<topic>-<N>.<uuid>-delete|-future|-stray" never parse. */
        if (e->d_name[0] == '.')
            continue;
        if (log_manager_is_trash(e->d_name)) {
            log_manager_remove_trash(m, e->d_name);
            continue;
        }
        if (!parse_partition_dir(e->d_name, &topic, &part))
            continue;
        if (c->njobs == cap) {
            cap = cap ? cap * 2 : 64;
            struct open_job *v = realloc(c->jobs, cap * sizeof(*v));
            if (!v) {
                free(topic);
                rc = -ENOMEM;
                break;
            }
            c->jobs = v;
        }
        c->jobs[c->njobs++] = (struct open_job){topic, part, NULL, 0};
    }
    closedir(d);
    return rc;
}

/* Reads one offset checkpoint of the dir; a missing file is an empty one. */
static int read_ckpt(struct log_manager *m, const char *name, struct checkpoint_entry **e,
                     size_t *n)
{
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", m->dir, name);
    *e = NULL;
    *n = 0;
    int rc = checkpoint_read_offsets(p, e, n);
    if (rc == -EBADMSG)
        logger_warn("storage", "%s is malformed; ignoring it (full recovery)", p);
    return rc == -ENOENT || rc == -EBADMSG ? 0 : rc;
}

static int open_all(struct log_manager *m, int nthreads)
{
    struct open_ctx c = {.m = m};
    char marker[PATH_MAX];
    snprintf(marker, sizeof(marker), "%s/%s", m->dir, CLEAN_SHUTDOWN_MARKER);
    c.clean = access(marker, F_OK) == 0;
    int rc = list_partitions(m, &c);
    if (rc == 0)
        rc = read_ckpt(m, CHECKPOINT_RECOVERY_POINT, &c.rp, &c.nrp);
    if (rc == 0)
        rc = read_ckpt(m, CHECKPOINT_LOG_START, &c.ls, &c.nls);
    if (rc == 0)
        rc = read_ckpt(m, CHECKPOINT_REPLICATION, &c.hw, &c.nhw);
    if (nthreads < 1)
        nthreads = 1;
    pthread_t *th = calloc((size_t)nthreads, sizeof(*th));
    if (rc == 0 && !th)
        rc = -ENOMEM;
    int started = 0;
    for (; rc == 0 && started < nthreads; started++)
        if (pthread_create(&th[started], NULL, open_worker, &c) != 0)
            break;
    if (rc == 0 && started == 0)
        open_worker(&c);
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    for (size_t i = 0; i < c.njobs; i++) {
        struct open_job *j = &c.jobs[i];
        if (rc == 0 && j->rc < 0)
            rc = j->rc;
        if (j->log && rc == 0) {
            log_set_start_offset_hook(j->log, start_offset_changed, m);
            pthread_rwlock_wrlock(&m->lock); /* uncontended: for the _locked contract */
            rc = insert_locked(m, j->log);
            pthread_rwlock_unlock(&m->lock);
        } else if (j->log) {
            log_close(j->log);
        }
        free(j->topic);
    }
    free(c.jobs);
    checkpoint_free_offsets(c.rp, c.nrp);
    checkpoint_free_offsets(c.ls, c.nls);
    checkpoint_free_offsets(c.hw, c.nhw);
    if (rc == 0 && c.clean) {
        if (unlink(marker) < 0)
            rc = -errno;
        else
            rc = checkpoint_sync_dir(m->dir);
    }
    return rc;
}

int log_manager_open(const char *dir, const struct log_config *defaults, int recovery_threads,
                     struct log_manager **out)
{
    struct log_manager *m = calloc(1, sizeof(*m));
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return -ENOMEM;
    }
    m->defaults = defaults ? *defaults : log_config_defaults();
    pthread_rwlock_init(&m->lock, NULL);
    pthread_mutex_init(&m->checkpoint_lock, NULL);
    int rc = mkdir(dir, 0755) < 0 && errno != EEXIST ? -errno : 0;
    if (rc == 0)
        rc = open_all(m, recovery_threads);
    if (rc < 0) {
        logger_error("storage", "log dir %s: %s", dir, strerror(rc < -1000 ? EIO : -rc));
        for (size_t i = 0; i < m->n; i++)
            log_close(m->logs[i]);
        m->n = 0;
        log_manager_close(m);
        return rc;
    }
    *out = m;
    return 0;
}

struct log *log_manager_get(struct log_manager *m, const char *topic, int32_t partition)
{
    bool found;
    pthread_rwlock_rdlock(&m->lock);
    size_t i = find_slot(m, topic, partition, &found);
    struct log *log = found ? m->logs[i] : NULL;
    pthread_rwlock_unlock(&m->lock);
    return log;
}

struct log *log_manager_remove(struct log_manager *m, const char *topic, int32_t partition)
{
    bool found;
    pthread_rwlock_wrlock(&m->lock);
    size_t i = find_slot(m, topic, partition, &found);
    struct log *log = NULL;
    if (found) {
        log = m->logs[i];
        memmove(m->logs + i, m->logs + i + 1, (m->n - i - 1) * sizeof(*m->logs));
        m->n--;
        log_set_start_offset_hook(log, NULL, NULL);
    }
    pthread_rwlock_unlock(&m->lock);
    return log;
}

int log_manager_create(struct log_manager *m, const char *topic, int32_t partition,
                       const struct log_config *cfg, struct log **out)
{
    bool found;
    pthread_rwlock_wrlock(&m->lock);
    size_t i = find_slot(m, topic, partition, &found);
    int rc = 0;
    if (found) {
        *out = m->logs[i];
    } else {
        rc = log_open(m->dir, topic, partition, cfg ? cfg : &m->defaults, NULL, out);
        if (rc == 0) {
            log_set_start_offset_hook(*out, start_offset_changed, m);
            if ((rc = insert_locked(m, *out)) < 0)
                log_close(*out);
        }
    }
    pthread_rwlock_unlock(&m->lock);
    return rc;
}

static int write_ckpt(struct log_manager *m, const char *name, struct checkpoint_entry *e, size_t n,
                      int which)
{
    for (size_t i = 0; i < n; i++) {
        struct log *log = m->logs[i];
        e[i].topic = (char *)log_topic(log);
        e[i].partition = log_partition(log);
        e[i].offset = which == 0   ? log_recovery_point(log)
                      : which == 1 ? log_start_offset(log)
                                   : log_high_watermark(log);
    }
    char p[PATH_MAX];
    snprintf(p, sizeof(p), "%s/%s", m->dir, name);
    return checkpoint_write_offsets(p, e, n);
}

int log_manager_checkpoint(struct log_manager *m)
{
    pthread_mutex_lock(&m->checkpoint_lock);
    pthread_rwlock_rdlock(&m->lock);
    int rc = -ENOMEM;
    struct checkpoint_entry *e = malloc((m->n ? m->n : 1) * sizeof(*e));
    if (e) {
        rc = write_ckpt(m, CHECKPOINT_RECOVERY_POINT, e, m->n, 0);
        if (rc == 0)
            rc = write_ckpt(m, CHECKPOINT_LOG_START, e, m->n, 1);
        if (rc == 0)
            rc = write_ckpt(m, CHECKPOINT_REPLICATION, e, m->n, 2);
    }
    pthread_rwlock_unlock(&m->lock);
    pthread_mutex_unlock(&m->checkpoint_lock);
    free(e);
    return rc;
}

void log_manager_close(struct log_manager *m)
{
    if (!m)
        return;
    bool all_ok = m->n > 0 || access(m->dir, F_OK) == 0;
    for (size_t i = 0; i < m->n; i++) {
        log_flush(m->logs[i], NULL);
        all_ok = all_ok && !log_is_offline(m->logs[i]);
    }
    /* Checkpoint while the logs are still open (recovery point == end after the flush), then
     * close them (seal the active segments), then declare the shutdown clean. */
    int rc = m->n ? log_manager_checkpoint(m) : 0;
    for (size_t i = 0; i < m->n; i++)
        log_close(m->logs[i]);
    if (rc == 0 && all_ok && m->n > 0) {
        char marker[PATH_MAX];
        snprintf(marker, sizeof(marker), "%s/%s", m->dir, CLEAN_SHUTDOWN_MARKER);
        static const char body[] = "{\"version\":0,\"brokerEpoch\":-1}";
        rc = checkpoint_write_file_atomic(marker, body, sizeof(body) - 1);
        if (rc < 0)
            logger_error("storage", "writing %s: %s", marker, strerror(-rc));
    }
    pthread_rwlock_destroy(&m->lock);
    pthread_mutex_destroy(&m->checkpoint_lock);
    free(m->logs);
    free(m->dir);
    free(m);
}

void log_manager_for_each(struct log_manager *m, void (*fn)(struct log *, void *), void *arg)
{
    pthread_rwlock_rdlock(&m->lock);
    for (size_t i = 0; i < m->n; i++)
        fn(m->logs[i], arg);
    pthread_rwlock_unlock(&m->lock);
}

size_t log_manager_count(struct log_manager *m)
{
    pthread_rwlock_rdlock(&m->lock);
    size_t n = m->n;
    pthread_rwlock_unlock(&m->lock);
    return n;
}

const char *log_manager_dir(const struct log_manager *m)
{
    return m->dir;
}
