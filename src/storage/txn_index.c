/*
 * Aborted-transaction index of a partition; see txn_index.h. The whole index is in memory (a
 * sorted array: aborts are rare next to data), the files are its durable copy: an append
 * writes one entry with O_APPEND (no fsync: a lost entry is found again when the producer
 * state replays the marker after a crash), a truncation rewrites the files it touches.
 */
#include "storage/txn_index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/logger.h"
#include "record/byteorder.h"

struct txn_entry {
    struct aborted_txn a;
    int64_t segment_base;
};

struct txn_index {
    pthread_mutex_t mu; /* guards everything below and the files */
    char *dir;
    struct txn_entry *v;
    size_t n, cap;
};

void txn_index_entry_encode(const struct aborted_txn *a, uint8_t *buf)
{
    be16_store(buf, 0);
    be64_store(buf + 2, (uint64_t)a->producer_id);
    be64_store(buf + 10, (uint64_t)a->first_offset);
    be64_store(buf + 18, (uint64_t)a->last_offset);
    be64_store(buf + 26, (uint64_t)a->last_stable_offset);
}

int txn_index_entry_decode(const uint8_t *buf, struct aborted_txn *a)
{
    if (be16_load(buf) != 0)
        return -EINVAL;
    a->producer_id = (int64_t)be64_load(buf + 2);
    a->first_offset = (int64_t)be64_load(buf + 10);
    a->last_offset = (int64_t)be64_load(buf + 18);
    a->last_stable_offset = (int64_t)be64_load(buf + 26);
    return a->first_offset <= a->last_offset ? 0 : -EINVAL;
}

static void file_path(const struct txn_index *ti, int64_t base, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%020" PRId64 "%s", ti->dir, base, TXN_INDEX_SUFFIX);
}

static int push(struct txn_index *ti, const struct aborted_txn *a, int64_t base)
{
    if (ti->n == ti->cap) {
        size_t cap = ti->cap ? ti->cap * 2 : 8;
        struct txn_entry *v = realloc(ti->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        ti->v = v;
        ti->cap = cap;
    }
    ti->v[ti->n++] = (struct txn_entry){*a, base};
    return 0;
}

/* Parses "<20 digits>.txnindex"; -1 otherwise. */
static int64_t name_base(const char *name)
{
    size_t sl = strlen(TXN_INDEX_SUFFIX);
    if (strlen(name) != 20 + sl || strcmp(name + 20, TXN_INDEX_SUFFIX) != 0)
        return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

/* Reads one file's entries; a torn last entry is ignored. */
static int load_file(struct txn_index *ti, int64_t base)
{
    char path[PATH_MAX];
    file_path(ti, base, path, sizeof(path));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    uint8_t buf[TXN_INDEX_ENTRY_SIZE];
    int rc = 0;
    for (off_t pos = 0;; pos += TXN_INDEX_ENTRY_SIZE) {
        ssize_t r = pread(fd, buf, sizeof(buf), pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r != (ssize_t)sizeof(buf))
            break;
        struct aborted_txn a;
        if (txn_index_entry_decode(buf, &a) != 0) {
            logger_warn("storage", "%s: corrupt entry at %lld, rest ignored", path, (long long)pos);
            break;
        }
        if ((rc = push(ti, &a, base)) != 0)
            break;
    }
    close(fd);
    return rc;
}

static int cmp_last(const void *x, const void *y)
{
    const struct txn_entry *a = x, *b = y;
    return a->a.last_offset < b->a.last_offset ? -1 : a->a.last_offset > b->a.last_offset;
}

int txn_index_open(const char *dir, struct txn_index **out)
{
    struct txn_index *ti = calloc(1, sizeof(*ti));
    if (ti == NULL || (ti->dir = strdup(dir)) == NULL) {
        free(ti);
        return -ENOMEM;
    }
    pthread_mutex_init(&ti->mu, NULL);
    DIR *d = opendir(dir);
    int rc = d ? 0 : -errno;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        int64_t base = name_base(de->d_name);
        if (base >= 0)
            rc = load_file(ti, base);
    }
    if (d)
        closedir(d);
    if (rc != 0) {
        txn_index_close(ti);
        return rc;
    }
    if (ti->n > 1)
        qsort(ti->v, ti->n, sizeof(*ti->v), cmp_last);
    *out = ti;
    return 0;
}

void txn_index_close(struct txn_index *ti)
{
    if (ti == NULL)
        return;
    pthread_mutex_destroy(&ti->mu);
    free(ti->v);
    free(ti->dir);
    free(ti);
}

static int write_entries(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

int txn_index_append(struct txn_index *ti, int64_t segment_base, const struct aborted_txn *a)
{
    pthread_mutex_lock(&ti->mu);
    if (ti->n > 0 && a->last_offset <= ti->v[ti->n - 1].a.last_offset) {
        pthread_mutex_unlock(&ti->mu);
        return 0; /* already recorded */
    }
    int rc = push(ti, a, segment_base);
    if (rc == 0) {
        char path[PATH_MAX];
        file_path(ti, segment_base, path, sizeof(path));
        uint8_t buf[TXN_INDEX_ENTRY_SIZE];
        txn_index_entry_encode(a, buf);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        rc = fd < 0 ? -errno : write_entries(fd, buf, sizeof(buf));
        if (fd >= 0)
            close(fd);
        if (rc != 0)
            logger_warn("storage", "%s: cannot record an aborted transaction: %s", path,
                        strerror(-rc));
    }
    pthread_mutex_unlock(&ti->mu);
    return rc;
}

/* Rewrites the file of segment `base` with its remaining entries (removes it when none). */
static int rewrite_file(struct txn_index *ti, int64_t base)
{
    char path[PATH_MAX], tmp[PATH_MAX + 4];
    file_path(ti, base, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    size_t k = 0;
    uint8_t *buf = malloc(ti->n * TXN_INDEX_ENTRY_SIZE + 1);
    if (buf == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < ti->n; i++)
        if (ti->v[i].segment_base == base)
            txn_index_entry_encode(&ti->v[i].a, buf + TXN_INDEX_ENTRY_SIZE * k++);
    int rc = 0;
    if (k == 0) {
        rc = unlink(path) < 0 && errno != ENOENT ? -errno : 0;
    } else {
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        rc = fd < 0 ? -errno : write_entries(fd, buf, k * TXN_INDEX_ENTRY_SIZE);
        if (fd >= 0 && close(fd) != 0 && rc == 0)
            rc = -errno;
        if (rc == 0 && rename(tmp, path) != 0)
            rc = -errno;
    }
    free(buf);
    return rc;
}

int txn_index_truncate(struct txn_index *ti, int64_t offset)
{
    pthread_mutex_lock(&ti->mu);
    size_t keep = ti->n;
    while (keep > 0 && ti->v[keep - 1].a.last_offset >= offset)
        keep--;
    int rc = 0;
    if (keep < ti->n) {
        size_t nd = ti->n - keep;
        int64_t *bases = malloc(nd * sizeof(*bases));
        for (size_t i = 0; bases && i < nd; i++)
            bases[i] = ti->v[keep + i].segment_base;
        ti->n = keep;
        for (size_t i = 0; bases && i < nd; i++)
            if (i == 0 || bases[i] != bases[i - 1]) {
                int r = rewrite_file(ti, bases[i]);
                rc = rc ? rc : r;
            }
        rc = bases ? rc : -ENOMEM;
        free(bases);
    }
    pthread_mutex_unlock(&ti->mu);
    return rc;
}

static bool offset_in(int64_t v, const int64_t *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == v)
            return true;
    return false;
}

int txn_index_retain_segment(struct txn_index *ti, int64_t segment_base, const int64_t *keep,
                             size_t nkeep)
{
    pthread_mutex_lock(&ti->mu);
    size_t k = 0;
    for (size_t i = 0; i < ti->n; i++) {
        const struct txn_entry *e = &ti->v[i];
        if (e->segment_base != segment_base || offset_in(e->a.last_offset, keep, nkeep))
            ti->v[k++] = *e;
    }
    int dropped = (int)(ti->n - k);
    ti->n = k; /* a subsequence of a sorted array stays sorted */
    int rc = dropped > 0 ? rewrite_file(ti, segment_base) : 0;
    pthread_mutex_unlock(&ti->mu);
    if (rc != 0)
        logger_warn("storage", "%s: cannot rewrite the transaction index of %lld: %s", ti->dir,
                    (long long)segment_base, strerror(-rc));
    return rc != 0 ? rc : dropped;
}

size_t txn_index_collect(struct txn_index *ti, int64_t fetch_offset, int64_t upper,
                         struct aborted_txn *out, size_t max)
{
    size_t k = 0;
    pthread_mutex_lock(&ti->mu);
    /* First entry whose marker is at or past the fetch offset (sorted by last offset). */
    size_t lo = 0, hi = ti->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ti->v[mid].a.last_offset < fetch_offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < ti->n; i++) {
        if (ti->v[i].a.first_offset >= upper)
            continue;
        if (k < max)
            out[k] = ti->v[i].a;
        k++;
    }
    pthread_mutex_unlock(&ti->mu);
    return k;
}

size_t txn_index_count(struct txn_index *ti)
{
    pthread_mutex_lock(&ti->mu);
    size_t n = ti->n;
    pthread_mutex_unlock(&ti->mu);
    return n;
}
