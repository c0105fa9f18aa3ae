/*
 * A memory-mapped, fixed-entry-size index file: the common part of the offset index (8-byte
 * entries) and the time index (12-byte entries).
 *
 * A writable index is preallocated (ftruncate, sparse) to its maximum size and mapped whole;
 * entries are written with pwrite, not through the mapping, so a full filesystem shows up as
 * -ENOSPC from pwrite instead of SIGBUS on a store. On Linux the page cache is shared, so the
 * mapping sees every pwrite at once. A read-only index is mapped at its exact size.
 *
 * Concurrency: one writer (the log's appender, holding the log's append lock); any number of
 * readers. `entries` is published with release ordering after the entry bytes are written, so
 * a reader that loads it with acquire ordering only looks at complete entries.
 */
#ifndef GREGOR_STORAGE_INDEX_FILE_H
#define GREGOR_STORAGE_INDEX_FILE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct index_file {
    int fd;
    uint8_t *map;   /* NULL when nothing is mapped */
    size_t map_len; /* bytes mapped */
    size_t entry_size;
    uint32_t max_entries; /* capacity of the mapping */
    _Atomic uint32_t entries;
    bool writable;
};

/*
 * Opens (creating when writable) the index at path. Existing entries = file size / entry
 * size; a size that is not a multiple of the entry size is -EBADMSG (corrupt). A writable
 * index is grown to max_bytes (rounded down to whole entries). Negative errno on failure.
 */
int index_file_open(struct index_file *ix, const char *path, size_t entry_size, size_t max_bytes,
                    bool writable);

/* Appends one entry (entry_size bytes) with pwrite and publishes it. -ENOSPC when the index is
 * full or the filesystem is, other negative errno on I/O errors; the entry is then not
 * visible. */
int index_file_append(struct index_file *ix, const void *entry);

/* Forgets every entry from `n` on (used when rebuilding). */
void index_file_truncate_entries(struct index_file *ix, uint32_t n);

/* Shrinks the file to its entries (segment roll, clean close); no more appends fit. The
 * mapping stays valid for lookups. Negative errno on failure. */
int index_file_trim(struct index_file *ix);

/* Writes dirty pages to disk (fsync of the index file). */
int index_file_sync(struct index_file *ix);

void index_file_close(struct index_file *ix);

static inline uint32_t index_file_entries(const struct index_file *ix)
{
    return atomic_load_explicit(&ix->entries, memory_order_acquire);
}

static inline const uint8_t *index_file_entry(const struct index_file *ix, uint32_t i)
{
    return ix->map + (size_t)i * ix->entry_size;
}

static inline bool index_file_full(const struct index_file *ix)
{
    return atomic_load_explicit(&ix->entries, memory_order_relaxed) >= ix->max_entries;
}

#endif
