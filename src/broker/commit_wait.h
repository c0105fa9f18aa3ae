/*
 * Commit wait for records a broker component appended itself (coordinator records, markers).
 */
#ifndef GREGOR_BROKER_COMMIT_WAIT_H
#define GREGOR_BROKER_COMMIT_WAIT_H

#include <stdint.h>

#include "broker/partition.h"

/* Calls cb(arg, err) once p's records below `end` are committed (high watermark) and, with
 * acks.all.fsync, flushed; on any thread, maybe before returning. 0 when registered (cb will
 * come) or -ENOMEM (it will not). */
int partition_wait_committed(struct partition *p, int64_t end, void (*cb)(void *arg, int err),
                             void *arg);

#endif
