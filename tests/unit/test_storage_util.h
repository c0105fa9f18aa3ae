/* Helpers shared by the storage unit tests: temporary directories and batch construction. */
#ifndef GREGOR_TEST_STORAGE_UTIL_H
#define GREGOR_TEST_STORAGE_UTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record/record_builder.h"
#include "storage/log.h"
#include "test.h"

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline void tmpdir_remove(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void tmpdir_cleanup(void *dir)
{
    tmpdir_remove(dir);
    free(dir);
}

/* A new temporary directory, removed (and the returned string freed) after the current test
 * case however it ends (test_defer). NULL if it cannot be made. */
static inline char *tmpdir_make(void)
{
    char *d = strdup("/tmp/gregor-storage-test.XXXXXX");
    if (d == NULL || mkdtemp(d) == NULL) {
        free(d);
        return NULL;
    }
    test_defer(tmpdir_cleanup, d);
    return d;
}

/* A batch of n records, each value `vsize` bytes, timestamps ts, ts+1, ... */
static inline uint8_t *test_batch(int n, int vsize, int64_t ts, size_t *len)
{
    struct record_builder b;
    record_builder_init(&b, 0);
    char *val = malloc((size_t)vsize + 1);
    for (int i = 0; i < n; i++) {
        memset(val, 'a' + i % 26, (size_t)vsize);
        char key[16];
        int kl = snprintf(key, sizeof(key), "k%d", i);
        record_builder_add(&b, ts + i, key, kl, val, vsize, NULL, 0);
    }
    free(val);
    uint8_t *out = NULL;
    record_builder_finish(&b, &out, len);
    record_builder_release(&b);
    return out;
}

/* Appends one batch of n records; returns its first offset or a negative error. */
static inline int64_t test_append(struct log *log, int n, int vsize, int64_t ts)
{
    size_t len;
    uint8_t *b = test_batch(n, vsize, ts, &len);
    struct log_append_info info;
    int rc = log_append(log, b, len, 0, ts, false, &info);
    free(b);
    return rc < 0 ? rc : info.first_offset;
}

static inline size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) < 0 ? (size_t)-1 : (size_t)st.st_size;
}

#endif
