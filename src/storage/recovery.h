/*
 * Segment recovery: scan a segment's .log from the start, validate each batch (length, magic,
 * CRC-32C, counts, offsets increasing and not below the segment base), rebuild both indexes
 * from the valid batches, and truncate the .log at the first invalid byte (torn tail, flipped
 * byte, zero-filled tail). Nothing past that byte is ever served.
 *
 * Called while the segment is not visible to readers (log load) or under the segment's lock
 * with no pins (rebuild of a bad index on lazy open).
 */
#ifndef GREGOR_STORAGE_RECOVERY_H
#define GREGOR_STORAGE_RECOVERY_H

#include <stdint.h>

#include "storage/segment.h"

struct segment_recovery_result {
    int64_t next_offset;     /* offset after the last valid batch; base_offset if none */
    int64_t valid_bytes;     /* new .log size */
    int64_t truncated_bytes; /* bytes cut off the tail */
    int batches;
};

/* seg->log_fd must be open read-write and its indexes open writable (preallocated). Returns 0
 * or a negative errno (I/O failure; the segment is then left as it was). */
int segment_recover(struct segment *seg, struct segment_recovery_result *out);

/* Scans headers from the last offset-index entry to the end to find the next offset of a
 * segment that needs no recovery (clean shutdown). Stops early at an invalid header. */
int segment_scan_next_offset(struct segment *seg, int64_t *next_offset);

#endif
