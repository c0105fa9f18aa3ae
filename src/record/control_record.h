/*
 * Transaction markers (Kafka's EndTransactionMarker): a control batch (attributes transactional
 * + control, producer id and epoch of the transaction, base sequence -1) holding one record
 * whose key is version int16 (0) + type int16 (ABORT 0, COMMIT 1) and whose value is version
 * int16 (0) + coordinator epoch int32. Pure functions, any thread.
 */
#ifndef GREGOR_RECORD_CONTROL_RECORD_H
#define GREGOR_RECORD_CONTROL_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define CONTROL_TYPE_ABORT 0
#define CONTROL_TYPE_COMMIT 1

struct control_marker {
    int16_t type; /* CONTROL_TYPE_* */
    int32_t coordinator_epoch;
};

/*
 * Reads the marker of the control batch whose records (after the 61-byte header) start at p,
 * len bytes available (the first record suffices). 0 or RECORD_ERR_CORRUPT.
 */
int control_marker_parse(const uint8_t *p, size_t len, struct control_marker *out);

/*
 * Builds a marker batch for producer (pid, epoch), timestamp now_ms, in a malloc'ed buffer
 * (*out, caller frees). 0 or a record_error.
 */
int control_marker_build(int64_t pid, int16_t epoch, const struct control_marker *m, int64_t now_ms,
                         uint8_t **out, size_t *out_len);

#endif
