/*
 * Leader epoch cache: (epoch, start offset) pairs, strictly increasing in both, persisted in
 * the partition's leader-epoch-checkpoint whenever they change. Guarded by append_lock.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/lock.h"
#include "base/logger.h"
#include "storage/log_internal.h"

static int epochs_write(struct log *log)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", log->dir, CHECKPOINT_LEADER_EPOCH);
    return checkpoint_write_epochs(path, log->epochs, log->nepochs);
}

/* The invariant at the top of this file. */
static void epochs_assert_sorted(const struct log *log)
{
    for (size_t i = 1; i < log->nepochs; i++) {
        assert(log->epochs[i - 1].epoch < log->epochs[i].epoch);
        assert(log->epochs[i - 1].start_offset < log->epochs[i].start_offset);
    }
}

int log_epoch_load(struct log *log)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", log->dir, CHECKPOINT_LEADER_EPOCH);
    struct epoch_entry *e;
    size_t n;
    int rc = checkpoint_read_epochs(path, &e, &n);
    if (rc == -ENOENT)
        return 0;
    if (rc == -EBADMSG) {
        /* Kafka fails the log dir here; the cache is only an optimisation for truncation, so
         * start empty and say so rather than refuse to serve the partition. */
        logger_warn("storage", "%s: malformed, ignored", path);
        return 0;
    }
    if (rc < 0)
        return rc;
    log->epochs = e;
    log->nepochs = log->epochs_cap = n;
    for (size_t i = 1; i < n; i++) /* breaks the cache's invariant: a damaged file */
        if (e[i - 1].epoch >= e[i].epoch || e[i - 1].start_offset >= e[i].start_offset) {
            logger_warn("storage", "%s: epochs not increasing, ignored", path);
            log->nepochs = 0;
            break;
        }
    epochs_assert_sorted(log);
    return 0;
}

int log_epoch_assign_locked(struct log *log, int32_t epoch, int64_t start_offset)
{
    assert(lock_mutex_held(&log->append_lock));
    if (log->nepochs > 0 && log->epochs[log->nepochs - 1].epoch >= epoch)
        return 0;
    if (log->nepochs == log->epochs_cap) {
        size_t cap = log->epochs_cap ? log->epochs_cap * 2 : 8;
        struct epoch_entry *e = realloc(log->epochs, cap * sizeof(*e));
        if (!e)
            return -ENOMEM;
        log->epochs = e;
        log->epochs_cap = cap;
    }
    /* An older epoch that starts at/after the new one holds no data (an append that failed
     * after assigning it): the new epoch replaces it, as Kafka's assign does. */
    size_t old_n = log->nepochs, n = old_n;
    while (n > 0 && log->epochs[n - 1].start_offset >= start_offset)
        n--;
    struct epoch_entry overwritten = n < old_n ? log->epochs[n] : (struct epoch_entry){0};
    log->epochs[n] = (struct epoch_entry){epoch, start_offset};
    log->nepochs = n + 1;
    epochs_assert_sorted(log);
    int rc = epochs_write(log);
    if (rc < 0) { /* the append fails cleanly; the cache stays as on disk */
        log->epochs[n] = overwritten;
        log->nepochs = old_n;
    }
    return rc;
}

int log_epoch_truncate_from_locked(struct log *log, int64_t offset)
{
    assert(lock_mutex_held(&log->append_lock));
    size_t n = log->nepochs;
    while (n > 0 && log->epochs[n - 1].start_offset >= offset)
        n--;
    if (n == log->nepochs)
        return 0;
    log->nepochs = n;
    epochs_assert_sorted(log);
    return epochs_write(log);
}

int log_epoch_clear_locked(struct log *log)
{
    assert(lock_mutex_held(&log->append_lock));
    log->nepochs = 0;
    return epochs_write(log);
}

int log_end_offset_for_epoch(struct log *log, int32_t epoch, int64_t *end_offset,
                             int32_t *end_epoch)
{
    int rc = -ENOENT;
    pthread_mutex_lock(&log->append_lock);
    size_t n = log->nepochs;
    /* First entry with an epoch above the requested one (entries are sorted by epoch). */
    size_t higher = 0;
    while (higher < n && log->epochs[higher].epoch <= epoch)
        higher++;
    if (epoch < 0 || n == 0) {
        /* undefined epoch, or no history: nothing to answer */
    } else if (log->epochs[n - 1].epoch == epoch) {
        /* The epoch being written to ends at the log end. */
        *end_epoch = epoch;
        *end_offset = log_end_offset(log);
        rc = 0;
    } else if (higher < n) {
        /* The epoch ends where the next known one starts. Below the first known epoch the
         * requested epoch itself is reported: its data was removed from the log. */
        *end_epoch = higher > 0 ? log->epochs[higher - 1].epoch : epoch;
        *end_offset = log->epochs[higher].start_offset;
        rc = 0;
    }
    pthread_mutex_unlock(&log->append_lock);
    return rc;
}

int32_t log_latest_epoch(struct log *log)
{
    pthread_mutex_lock(&log->append_lock);
    int32_t e = log->nepochs ? log->epochs[log->nepochs - 1].epoch : -1;
    pthread_mutex_unlock(&log->append_lock);
    return e;
}
