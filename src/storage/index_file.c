/*
 * Memory-mapped index files. Invariants: entries <= max_entries; entries * entry_size <=
 * map_len; bytes of entries [0, entries) are complete on disk or in the page cache.
 */
#include "storage/index_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int map_file(struct index_file *ix, size_t len)
{
    ix->map = NULL;
    ix->map_len = 0;
    if (len == 0)
        return 0;
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, ix->fd, 0);
    if (m == MAP_FAILED)
        return -errno;
    ix->map = m;
    ix->map_len = len;
    return 0;
}

int index_file_open(struct index_file *ix, const char *path, size_t entry_size, size_t max_bytes,
                    bool writable)
{
    struct stat st;
    int rc;
    ix->entry_size = entry_size;
    ix->writable = writable;
    ix->map = NULL;
    ix->map_len = 0;
    ix->fd = open(path, writable ? O_RDWR | O_CREAT | O_CLOEXEC : O_RDONLY | O_CLOEXEC, 0644);
    if (ix->fd < 0)
        return -errno;
    if (fstat(ix->fd, &st) < 0) {
        rc = -errno;
        goto err;
    }
    if ((size_t)st.st_size % entry_size != 0) {
        rc = -EBADMSG;
        goto err;
    }
    uint32_t entries = (uint32_t)((size_t)st.st_size / entry_size);
    size_t len = (size_t)st.st_size;
    if (writable) {
        size_t cap = max_bytes / entry_size * entry_size;
        if (cap < len)
            cap = len;
        if (cap != len && ftruncate(ix->fd, (off_t)cap) < 0) {
            rc = -errno;
            goto err;
        }
        len = cap;
    }
    if ((rc = map_file(ix, len)) < 0)
        goto err;
    ix->max_entries = (uint32_t)(len / entry_size);
    atomic_store_explicit(&ix->entries, entries, memory_order_release);
    return 0;
err:
    close(ix->fd);
    ix->fd = -1;
    return rc;
}

int index_file_append(struct index_file *ix, const void *entry)
{
    uint32_t n = atomic_load_explicit(&ix->entries, memory_order_relaxed);
    if (n >= ix->max_entries)
        return -ENOSPC;
    off_t pos = (off_t)n * (off_t)ix->entry_size;
    ssize_t w = pwrite(ix->fd, entry, ix->entry_size, pos);
    if (w < 0)
        return -errno;
    if ((size_t)w != ix->entry_size)
        return -EIO;
    atomic_store_explicit(&ix->entries, n + 1, memory_order_release);
    return 0;
}

void index_file_truncate_entries(struct index_file *ix, uint32_t n)
{
    if (n < atomic_load_explicit(&ix->entries, memory_order_relaxed))
        atomic_store_explicit(&ix->entries, n, memory_order_release);
}

int index_file_trim(struct index_file *ix)
{
    uint32_t n = index_file_entries(ix);
    /* The mapping is kept: concurrent readers may be inside it, and they never touch bytes
     * past `entries`, which all stay inside the shortened file. */
    if (ftruncate(ix->fd, (off_t)n * (off_t)ix->entry_size) < 0)
        return -errno;
    ix->max_entries = n;
    return 0;
}

int index_file_sync(struct index_file *ix)
{
    return fdatasync(ix->fd) < 0 ? -errno : 0;
}

void index_file_close(struct index_file *ix)
{
    if (ix->map)
        munmap(ix->map, ix->map_len);
    if (ix->fd >= 0)
        close(ix->fd);
    ix->map = NULL;
    ix->map_len = 0;
    ix->fd = -1;
}
