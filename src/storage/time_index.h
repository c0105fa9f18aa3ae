/*
 * Time index (`.timeindex`): 12-byte big-endian entries (int64 timestamp, int32 offset - base
 * offset). Entry (T, O): T is the largest timestamp seen in the segment up to offset O.
 * Timestamps and offsets never decrease; an entry is added only when T grows.
 */
#ifndef GREGOR_STORAGE_TIME_INDEX_H
#define GREGOR_STORAGE_TIME_INDEX_H

#include "storage/index_file.h"

#define TIME_INDEX_ENTRY_SIZE 12

struct timestamp_offset {
    int64_t timestamp;
    int64_t offset;
};

/* Last entry with timestamp <= target; (-1, base_offset) when none. */
struct timestamp_offset time_index_lookup(const struct index_file *ix, int64_t base_offset,
                                          int64_t target);

/* Appends (timestamp, offset) if timestamp is larger than the last entry's (Kafka's
 * maybeAppend). Negative errno when the index or the filesystem is full. */
int time_index_maybe_append(struct index_file *ix, int64_t base_offset, int64_t timestamp,
                            int64_t offset);

/* Last entry, or (-1, base_offset) when empty. */
struct timestamp_offset time_index_last(const struct index_file *ix, int64_t base_offset);

/* Checks timestamps and offsets never decrease and offsets are >= 0. 0 or -EBADMSG. */
int time_index_sanity_check(const struct index_file *ix);

#endif
