/*
 * Offset index (`.index`): sparse 8-byte big-endian entries (int32 offset - base offset,
 * int32 position in the .log), strictly increasing in both fields. Lookups are a binary
 * search over the mmapped entries and take no lock (see index_file.h).
 */
#ifndef GREGOR_STORAGE_OFFSET_INDEX_H
#define GREGOR_STORAGE_OFFSET_INDEX_H

#include "storage/index_file.h"

#define OFFSET_INDEX_ENTRY_SIZE 8

struct offset_position {
    int64_t offset;
    int64_t position;
};

/* Largest entry with offset <= target; (base_offset, 0) when there is none. */
struct offset_position offset_index_lookup(const struct index_file *ix, int64_t base_offset,
                                           int64_t target);

/* Appends (offset, position). Caller guarantees offset - base fits int32 and exceeds the last
 * entry. Negative errno on failure (index unchanged). */
int offset_index_append(struct index_file *ix, int64_t base_offset, int64_t offset,
                        int64_t position);

/* Last entry, or (base_offset, 0) when empty. */
struct offset_position offset_index_last(const struct index_file *ix, int64_t base_offset);

/* Checks entries increase and positions stay below log_size. 0 or -EBADMSG. */
int offset_index_sanity_check(const struct index_file *ix, int64_t log_size);

#endif
