/*
 * Log cleaner thread: every log.retention.check.interval.ms it applies retention to each
 * registered log (log_apply_retention), runs the compaction hook for logs with
 * cleanup.policy=compact, unlinks *.deleted files whose file.delete.delay.ms passed, and closes
 * segments idle longer than segment_idle_close_ms. Idle = asleep on a timed wait.
 */
#ifndef GREGOR_STORAGE_CLEANER_H
#define GREGOR_STORAGE_CLEANER_H

#include <stdint.h>

struct log;
struct log_cleaner;

/* Compaction hook: called on the cleaner thread for each log whose config has compact set.
 * Returns the bytes it read and wrote (>= 0; counted against io_max_bytes_per_second) or a
 * negative error (logged, not fatal). */
typedef int (*log_compact_fn)(struct log *log, int64_t now_ms, void *arg);

/* Settings that change at run time (Kafka's dynamic log.cleaner.*). */
struct log_cleaner_tuning {
    int64_t backoff_ms;             /* log.cleaner.backoff.ms: compaction looks for work this
                                       often (retention keeps check_interval_ms), 15000 */
    double io_max_bytes_per_second; /* log.cleaner.io.max.bytes.per.second: after compacting a
                                       log the cleaner pauses until its average I/O rate is
                                       back under this; <= 0 or huge = no throttle */
};

struct log_cleaner_config {
    int64_t check_interval_ms; /* log.retention.check.interval.ms, 300000 */
    struct log_cleaner_tuning tuning;
    log_compact_fn compact; /* NULL: compaction not available */
    void *compact_arg;
};

struct log_cleaner_config log_cleaner_config_defaults(void);

int log_cleaner_create(const struct log_cleaner_config *cfg, struct log_cleaner **out);
/* Stops the thread; logs still registered are left alone. */
void log_cleaner_destroy(struct log_cleaner *c);

int log_cleaner_add(struct log_cleaner *c, struct log *log);
/* Unregisters; when it returns the cleaner no longer touches the log. */
void log_cleaner_remove(struct log_cleaner *c, struct log *log);

/* New tuning, applied from the cleaner's next wait (a wait or throttle pause in progress is
 * cut short). Any thread. */
void log_cleaner_set_tuning(struct log_cleaner *c, const struct log_cleaner_tuning *t);
/* Compaction I/O bytes and throttle pauses so far (for metrics and tests). Any thread. */
void log_cleaner_stats(struct log_cleaner *c, int64_t *io_bytes, int64_t *throttled_ms);

/* Runs one pass now on the calling thread (tests, shutdown). Returns segments deleted. */
int log_cleaner_run_once(struct log_cleaner *c, int64_t now_wall_ms);

#endif
