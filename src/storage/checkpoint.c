/*
 * Checkpoint files. Writes build the whole text in memory, then go through
 * checkpoint_write_file_atomic(); reads parse the whole file and fail on any inconsistency
 * rather than return a partial list.
 */
#include "storage/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int checkpoint_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int dir_of(const char *path, char *out)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(out, ".");
        return 0;
    }
    size_t n = (size_t)(slash - path);
    if (n >= PATH_MAX)
        return -ENAMETOOLONG;
    memcpy(out, path, n ? n : 1);
    out[n ? n : 1] = 0;
    return 0;
}

int checkpoint_write_file_atomic(const char *path, const void *data, size_t len)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int rc = dir_of(path, dir);
    if (rc < 0)
        return rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? -errno : -EIO;
            goto err;
        }
        p += n;
        left -= (size_t)n;
    }
    if (fsync(fd) < 0) {
        rc = -errno;
        goto err;
    }
    if (close(fd) < 0) {
        fd = -1;
        rc = -errno;
        goto err;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto err;
    }
    return checkpoint_sync_dir(dir);
err:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

/* A growable text buffer for building checkpoint contents. */
struct text {
    char *s;
    size_t len, cap;
};

static int text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int text_printf(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -EINVAL;
        if (t->s && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return 0;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *s = realloc(t->s, cap);
        if (!s)
            return -ENOMEM;
        t->s = s;
        t->cap = cap;
    }
}

int checkpoint_write_offsets(const char *path, const struct checkpoint_entry *entries, size_t n)
{
    struct text t = {0};
    int rc = text_printf(&t, "0\n%zu\n", n);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = text_printf(&t, "%s %d %lld\n", entries[i].topic, entries[i].partition,
                         (long long)entries[i].offset);
    if (rc == 0)
        rc = checkpoint_write_file_atomic(path, t.s, t.len);
    free(t.s);
    return rc;
}

int checkpoint_write_epochs(const char *path, const struct epoch_entry *entries, size_t n)
{
    struct text t = {0};
    int rc = text_printf(&t, "0\n%zu\n", n);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = text_printf(&t, "%d %lld\n", entries[i].epoch, (long long)entries[i].start_offset);
    if (rc == 0)
        rc = checkpoint_write_file_atomic(path, t.s, t.len);
    free(t.s);
    return rc;
}

/* Reads a whole file into a NUL-terminated malloc'ed buffer. */
static int read_all(const char *path, char **out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    struct text t = {0};
    char buf[8192];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0 && rc == 0)
        rc = text_printf(&t, "%.*s", (int)n, buf);
    if (ferror(f))
        rc = -EIO;
    fclose(f);
    if (rc == 0 && !t.s)
        rc = text_printf(&t, "%s", "");
    if (rc < 0) {
        free(t.s);
        return rc;
    }
    *out = t.s;
    return 0;
}

/* Parses "0\nCOUNT\n"; leaves *pp after it. */
static int parse_preamble(char **pp, long *count)
{
    char *end;
    long version = strtol(*pp, &end, 10);
    if (end == *pp || version != 0)
        return -EBADMSG;
    char *p = end;
    *count = strtol(p, &end, 10);
    /* Every entry needs at least a few bytes, so a count beyond the file's length is a lie. */
    if (end == p || *count < 0 || (size_t)*count > strlen(end))
        return -EBADMSG;
    *pp = end;
    return 0;
}

static char *next_token(char **pp)
{
    return strtok_r(NULL, " \t\r\n", pp);
}

static int parse_i64(const char *s, int64_t *out)
{
    if (!s)
        return -EBADMSG;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno)
        return -EBADMSG;
    *out = v;
    return 0;
}

/* Parses one line's entry, given its first token (the rest follow from *save). 0, -EBADMSG or
 * -ENOMEM (then nothing of the entry is left to free). */
typedef int (*entry_parse_fn)(char *first, char **save, void *entry);

/*
 * The reader both checkpoint kinds share: preamble, then exactly `count` entries of
 * entry_size bytes, each parsed by parse. *out is malloc'ed (count + 1 entries, zeroed past
 * the last). On failure release(entries, parsed) frees what the parsed entries own (when
 * given) and the array is freed.
 */
static int read_entries(const char *path, size_t entry_size, entry_parse_fn parse,
                        void (*release)(void *entries, size_t n), void **out, size_t *n)
{
    char *text, *p, *save;
    long count;
    int rc = read_all(path, &text);
    if (rc < 0)
        return rc;
    p = text;
    uint8_t *e = NULL;
    size_t got = 0;
    if ((rc = parse_preamble(&p, &count)) < 0)
        goto done;
    e = calloc((size_t)count + 1, entry_size);
    if (!e) {
        rc = -ENOMEM;
        goto done;
    }
    save = p;
    char *tok = strtok_r(p, " \t\r\n", &save);
    while (tok) {
        if ((long)got == count) {
            rc = -EBADMSG;
            goto done;
        }
        if ((rc = parse(tok, &save, e + got * entry_size)) < 0)
            goto done;
        got++;
        tok = next_token(&save);
    }
    if ((long)got != count)
        rc = -EBADMSG;
done:
    free(text);
    if (rc < 0) {
        if (e && release)
            release(e, got);
        free(e);
        return rc;
    }
    *out = e;
    *n = got;
    return 0;
}

/* "TOPIC PARTITION OFFSET" */
static int parse_offset_entry(char *first, char **save, void *entry)
{
    struct checkpoint_entry *e = entry;
    int64_t part, off;
    if (parse_i64(next_token(save), &part) < 0 || parse_i64(next_token(save), &off) < 0 ||
        part < 0 || part > INT32_MAX)
        return -EBADMSG;
    if (!(e->topic = strdup(first)))
        return -ENOMEM;
    e->partition = (int32_t)part;
    e->offset = off;
    return 0;
}

static void release_topics(void *entries, size_t n)
{
    struct checkpoint_entry *e = entries;
    for (size_t i = 0; i < n; i++)
        free(e[i].topic);
}

void checkpoint_free_offsets(struct checkpoint_entry *entries, size_t n)
{
    release_topics(entries, n);
    free(entries);
}

int checkpoint_read_offsets(const char *path, struct checkpoint_entry **out, size_t *n)
{
    void *e;
    int rc = read_entries(path, sizeof(**out), parse_offset_entry, release_topics, &e, n);
    if (rc == 0)
        *out = e;
    return rc;
}

int64_t checkpoint_find(const struct checkpoint_entry *entries, size_t n, const char *topic,
                        int32_t partition, int64_t dflt)
{
    for (size_t i = 0; i < n; i++)
        if (entries[i].partition == partition && strcmp(entries[i].topic, topic) == 0)
            return entries[i].offset;
    return dflt;
}

/* "EPOCH START_OFFSET" */
static int parse_epoch_entry(char *first, char **save, void *entry)
{
    struct epoch_entry *e = entry;
    int64_t epoch, off;
    if (parse_i64(first, &epoch) < 0 || parse_i64(next_token(save), &off) < 0 || epoch < 0 ||
        epoch > INT32_MAX)
        return -EBADMSG;
    e->epoch = (int32_t)epoch;
    e->start_offset = off;
    return 0;
}

int checkpoint_read_epochs(const char *path, struct epoch_entry **out, size_t *n)
{
    void *e;
    int rc = read_entries(path, sizeof(**out), parse_epoch_entry, NULL, &e, n);
    if (rc == 0)
        *out = e;
    return rc;
}
