/*
 * A log directory (one entry of log.dirs): every partition log under it, Kafka's per-dir
 * checkpoint files and the clean-shutdown marker.
 *
 * Open: reads recovery-point-offset-checkpoint, log-start-offset-checkpoint,
 * replication-offset-checkpoint and .kafka_cleanshutdown once, opens every <topic>-<N>
 * directory with `recovery_threads` threads (num.recovery.threads.per.data.dir), then removes
 * the marker so a crash from now on is seen as unclean.
 * Close: closes every log (flush + trim indexes), writes the checkpoints, then the marker.
 *
 * Threads: get/create/checkpoint may be called from any thread (a rwlock guards the sorted
 * log table; lookups are O(log n)). close must be the last call.
 */
#ifndef GREGOR_STORAGE_LOG_MANAGER_H
#define GREGOR_STORAGE_LOG_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "storage/log.h"

struct log_manager;

/* defaults: config for logs without a topic override (copied). recovery_threads >= 1. */
int log_manager_open(const char *dir, const struct log_config *defaults, int recovery_threads,
                     struct log_manager **out);

/* Closes every log, checkpoints, writes the clean-shutdown marker, frees. Remove the logs from
 * the flusher and cleaner first. */
void log_manager_close(struct log_manager *m);

/* The log of (topic, partition), or NULL. The pointer stays valid until close/delete. */
struct log *log_manager_get(struct log_manager *m, const char *topic, int32_t partition);

/* Returns the existing log or creates it with cfg (NULL = defaults). 0 or negative error. */
int log_manager_create(struct log_manager *m, const char *topic, int32_t partition,
                       const struct log_config *cfg, struct log **out);

/* Takes the log of (topic, partition) out of the table (topic deleted) and returns it, or NULL.
 * The caller closes it and removes its directory; checkpoints no longer mention it. */
struct log *log_manager_remove(struct log_manager *m, const char *topic, int32_t partition);

/* Writes the three offset checkpoints from the logs' current values (recovery point, log
 * start, high watermark). Kafka does this every log.flush.offset.checkpoint.interval.ms.
 * Any thread; serialised internally. */
int log_manager_checkpoint(struct log_manager *m);

/* Calls fn for every log (under the table's read lock: fn must not create logs). */
void log_manager_for_each(struct log_manager *m, void (*fn)(struct log *, void *), void *arg);
size_t log_manager_count(struct log_manager *m);
const char *log_manager_dir(const struct log_manager *m);

#endif
