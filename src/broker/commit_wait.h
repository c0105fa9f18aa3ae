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

/*
 * The same, with cb always run on an I/O worker (posted), never inside the thread that moved
 * the high watermark or flushed: that thread may hold a partition's follow_mu, and a
 * continuation that appends elsewhere (the transaction coordinator's next record, markers)
 * must not nest partition locks. Runs cb inline only when no worker takes posts (shutdown).
 */
int partition_wait_committed_async(struct partition *p, int64_t end, void (*cb)(void *arg, int err),
                                   void *arg);

#endif
