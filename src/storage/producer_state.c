/*
 * Per-partition idempotent-producer state: a hash table from producer id to an entry holding
 * the epoch and a ring of the last PRODUCER_STATE_BATCHES batches, plus Kafka-format snapshot
 * files. See producer_state.h for the semantics and the threading contract.
 *
 * Invariants: an entry's batches all carry its current epoch (a new epoch empties the ring);
 * batches[(head + i) % N] for i < n are in append order, oldest first; every entry is in
 * exactly one bucket chain; nbuckets is a power of two.
 */
#include "storage/producer_state.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/logger.h"
#include "record/byteorder.h"
#include "record/crc32c.h"
#include "storage/segment.h"

#define SNAPSHOT_HEADER 10 /* version int16 + crc uint32 + count int32 */
#define SNAPSHOT_ENTRY 46
#define SNAPSHOTS_KEPT 2

/* Kafka's ProducerStateManager layout: header version(2) crc(4) count(4); entry pid(8)
 * epoch(2) last seq(4) last offset(8) offset delta(4) timestamp(8) coordinator epoch(4)
 * current txn first offset(8). */
static_assert(SNAPSHOT_HEADER == 2 + 4 + 4, "snapshot header size");
static_assert(SNAPSHOT_ENTRY == 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8, "snapshot entry size");
#define SCAN_READ_BYTES (8 << 20)

struct producer_entry {
    struct producer_entry *next;
    int64_t producer_id;
    int16_t epoch;
    int32_t coordinator_epoch;
    int64_t last_timestamp;   /* max timestamp of the newest batch */
    int64_t last_seen_ms;     /* broker clock of the last append (or of loading) */
    int64_t txn_first_offset; /* first offset of its open transaction, -1 when none */
    int head, n;
    struct producer_batch batches[PRODUCER_STATE_BATCHES];
};

struct producer_state {
    struct producer_entry **buckets;
    size_t nbuckets;
    size_t count;
    size_t open_txns; /* entries with txn_first_offset >= 0 */
    int64_t expiration_ms;
    int64_t last_expire_ms; /* broker clock of the last expiration sweep */
};

#define EXPIRE_CHECK_INTERVAL_MS 60000

int32_t producer_last_sequence(int32_t base_seq, int32_t delta)
{
    if (base_seq > INT32_MAX - delta)
        return delta - (INT32_MAX - base_seq) - 1;
    return base_seq + delta;
}

static bool in_sequence(int32_t last_seq, int32_t next_seq)
{
    return (int64_t)next_seq == (int64_t)last_seq + 1 || (next_seq == 0 && last_seq == INT32_MAX);
}

static size_t pid_hash(int64_t pid)
{
    uint64_t h = (uint64_t)pid * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h ^ (h >> 29));
}

struct producer_state *producer_state_new(int64_t expiration_ms)
{
    struct producer_state *ps = calloc(1, sizeof(*ps));
    if (ps == NULL)
        return NULL;
    ps->nbuckets = 16;
    ps->buckets = calloc(ps->nbuckets, sizeof(*ps->buckets));
    if (ps->buckets == NULL) {
        free(ps);
        return NULL;
    }
    ps->expiration_ms = expiration_ms;
    return ps;
}

void producer_state_free(struct producer_state *ps)
{
    if (ps == NULL)
        return;
    for (size_t i = 0; i < ps->nbuckets; i++) {
        struct producer_entry *e = ps->buckets[i];
        while (e) {
            struct producer_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(ps->buckets);
    free(ps);
}

static struct producer_entry *find(const struct producer_state *ps, int64_t pid)
{
    for (struct producer_entry *e = ps->buckets[pid_hash(pid) & (ps->nbuckets - 1)]; e; e = e->next)
        if (e->producer_id == pid)
            return e;
    return NULL;
}

bool producer_state_in_txn(const struct producer_state *ps, int64_t pid, int16_t epoch)
{
    const struct producer_entry *e = find(ps, pid);
    return e != NULL && e->epoch == epoch && e->txn_first_offset >= 0;
}

static void grow(struct producer_state *ps)
{
    size_t nb = ps->nbuckets * 2;
    struct producer_entry **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < ps->nbuckets; i++) {
        struct producer_entry *e = ps->buckets[i];
        while (e) {
            struct producer_entry *next = e->next;
            size_t h = pid_hash(e->producer_id) & (nb - 1);
            e->next = b[h];
            b[h] = e;
            e = next;
        }
    }
    free(ps->buckets);
    ps->buckets = b;
    ps->nbuckets = nb;
}

static struct producer_entry *find_or_add(struct producer_state *ps, int64_t pid)
{
    struct producer_entry *e = find(ps, pid);
    if (e != NULL)
        return e;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->producer_id = pid;
    e->epoch = -1;
    e->coordinator_epoch = -1;
    e->last_timestamp = -1;
    e->txn_first_offset = -1;
    if (ps->count >= ps->nbuckets)
        grow(ps);
    size_t h = pid_hash(pid) & (ps->nbuckets - 1);
    e->next = ps->buckets[h];
    ps->buckets[h] = e;
    ps->count++;
    return e;
}

static const struct producer_batch *entry_batch(const struct producer_entry *e, int i)
{
    return &e->batches[(e->head + i) % PRODUCER_STATE_BATCHES];
}

static void entry_push(struct producer_entry *e, const struct producer_batch *b)
{
    if (e->n == PRODUCER_STATE_BATCHES) {
        e->batches[e->head] = *b;
        e->head = (e->head + 1) % PRODUCER_STATE_BATCHES;
    } else {
        e->batches[(e->head + e->n) % PRODUCER_STATE_BATCHES] = *b;
        e->n++;
    }
    e->last_timestamp = b->timestamp;
}

enum producer_check producer_state_check(const struct producer_state *ps,
                                         const struct record_batch_header *h,
                                         struct producer_batch *dup)
{
    if ((h->attributes & RECORD_ATTR_CONTROL) ||
        ((h->attributes & RECORD_ATTR_TRANSACTIONAL) && h->base_sequence < 0)) {
        /* A transaction marker, or a coordinator's transactional batch (TxnOffsetCommit
         * records in __consumer_offsets), carries no sequence: only an older epoch is
         * refused (Kafka's AppendOrigin.COORDINATOR). Clients cannot send these (produce.c). */
        const struct producer_entry *c = find(ps, h->producer_id);
        return c && h->producer_epoch < c->epoch ? PRODUCER_CHECK_FENCED : PRODUCER_CHECK_APPEND;
    }
    if (h->base_sequence < 0)
        return PRODUCER_CHECK_INVALID;
    const struct producer_entry *e = find(ps, h->producer_id);
    if (e == NULL || e->epoch < 0)
        return PRODUCER_CHECK_APPEND;
    int32_t last = producer_last_sequence(h->base_sequence, h->last_offset_delta);
    if (h->producer_epoch == e->epoch) {
        for (int i = 0; i < e->n; i++) {
            const struct producer_batch *b = entry_batch(e, i);
            if (b->first_seq == h->base_sequence && b->last_seq == last) {
                *dup = *b;
                return PRODUCER_CHECK_DUPLICATE;
            }
        }
    }
    if (h->producer_epoch < e->epoch)
        return PRODUCER_CHECK_FENCED;
    if (h->producer_epoch != e->epoch)
        return h->base_sequence == 0 ? PRODUCER_CHECK_APPEND : PRODUCER_CHECK_OUT_OF_ORDER;
    if (e->n == 0)
        return PRODUCER_CHECK_APPEND;
    int32_t cur = entry_batch(e, e->n - 1)->last_seq;
    return in_sequence(cur, h->base_sequence) ? PRODUCER_CHECK_APPEND : PRODUCER_CHECK_OUT_OF_ORDER;
}

int producer_state_update(struct producer_state *ps, const struct record_batch_header *h,
                          int64_t now_ms)
{
    if (now_ms - ps->last_expire_ms >= EXPIRE_CHECK_INTERVAL_MS) {
        ps->last_expire_ms = now_ms;
        producer_state_expire(ps, now_ms);
    }
    struct producer_entry *e = find_or_add(ps, h->producer_id);
    if (e == NULL)
        return -ENOMEM;
    if (h->producer_epoch != e->epoch) {
        e->epoch = h->producer_epoch;
        e->n = 0;
        e->head = 0;
    }
    if ((h->attributes & RECORD_ATTR_TRANSACTIONAL) && e->txn_first_offset < 0) {
        e->txn_first_offset = h->base_offset;
        ps->open_txns++;
    }
    struct producer_batch b = {
        .first_seq = h->base_sequence,
        .last_seq = producer_last_sequence(h->base_sequence, h->last_offset_delta),
        .first_offset = h->base_offset,
        .last_offset = h->base_offset + h->last_offset_delta,
        .timestamp = h->max_timestamp,
    };
    entry_push(e, &b);
    e->last_seen_ms = now_ms;
    return 0;
}

int64_t producer_state_first_open_offset(const struct producer_state *ps)
{
    if (ps->open_txns == 0)
        return -1;
    int64_t first = -1;
    for (size_t i = 0; i < ps->nbuckets; i++)
        for (const struct producer_entry *e = ps->buckets[i]; e; e = e->next)
            if (e->txn_first_offset >= 0 && (first < 0 || e->txn_first_offset < first))
                first = e->txn_first_offset;
    return first;
}

bool producer_state_marker_fenced(const struct producer_state *ps, int64_t pid,
                                  int32_t coordinator_epoch)
{
    const struct producer_entry *e = find(ps, pid);
    return e != NULL && coordinator_epoch < e->coordinator_epoch;
}

int producer_state_apply_marker(struct producer_state *ps, const struct record_batch_header *h,
                                const struct control_marker *m, int64_t now_ms,
                                struct aborted_txn *aborted)
{
    struct producer_entry *e = find_or_add(ps, h->producer_id);
    if (e == NULL)
        return -ENOMEM;
    if (h->producer_epoch > e->epoch) {
        e->epoch = h->producer_epoch;
        e->n = 0;
        e->head = 0;
    }
    e->coordinator_epoch = m->coordinator_epoch;
    e->last_seen_ms = now_ms;
    if (e->txn_first_offset < 0)
        return 0; /* nothing open (a marker written again after a coordinator failover) */
    int64_t first = e->txn_first_offset;
    e->txn_first_offset = -1;
    assert(ps->open_txns > 0);
    ps->open_txns--;
    if (m->type != CONTROL_TYPE_ABORT)
        return 0;
    int64_t lso = producer_state_first_open_offset(ps);
    *aborted = (struct aborted_txn){
        .producer_id = h->producer_id,
        .first_offset = first,
        .last_offset = h->base_offset,
        .last_stable_offset = lso >= 0 ? lso : h->base_offset + 1,
    };
    return 1;
}

static bool expired(const struct producer_state *ps, const struct producer_entry *e, int64_t now_ms)
{
    if (e->txn_first_offset >= 0)
        return false; /* Kafka never expires a producer with an open transaction */
    int64_t last = e->last_timestamp > e->last_seen_ms ? e->last_timestamp : e->last_seen_ms;
    return now_ms - last >= ps->expiration_ms;
}

size_t producer_state_expire(struct producer_state *ps, int64_t now_ms)
{
    size_t removed = 0;
    for (size_t i = 0; i < ps->nbuckets; i++) {
        struct producer_entry **pp = &ps->buckets[i];
        while (*pp) {
            struct producer_entry *e = *pp;
            if (expired(ps, e, now_ms)) {
                *pp = e->next;
                free(e);
                ps->count--;
                removed++;
            } else {
                pp = &e->next;
            }
        }
    }
    return removed;
}

size_t producer_state_count(const struct producer_state *ps)
{
    return ps->count;
}

size_t producer_state_list(const struct producer_state *ps, struct producer_info *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < ps->nbuckets && k < max; i++)
        for (const struct producer_entry *e = ps->buckets[i]; e && k < max; e = e->next) {
            out[k].producer_id = e->producer_id;
            out[k].epoch = e->epoch;
            out[k].last_seq = e->n ? entry_batch(e, e->n - 1)->last_seq : -1;
            out[k].last_timestamp = e->last_timestamp;
            out[k].coordinator_epoch = e->coordinator_epoch;
            out[k].txn_first_offset = e->txn_first_offset;
            k++;
        }
    return k;
}

size_t producer_state_active(const struct producer_state *ps, struct log_active_producer *out,
                             size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < ps->nbuckets && k < max; i++)
        for (const struct producer_entry *e = ps->buckets[i]; e && k < max; e = e->next) {
            out[k].producer_id = e->producer_id;
            out[k].epoch = e->epoch;
            out[k].last_data_offset = e->n ? entry_batch(e, e->n - 1)->last_offset : -1;
            k++;
        }
    return k;
}

/* ---- snapshots ---- */

size_t producer_state_encode(const struct producer_state *ps, uint8_t *buf, size_t cap)
{
    size_t need = SNAPSHOT_HEADER + ps->count * SNAPSHOT_ENTRY;
    if (buf == NULL || cap < need)
        return need;
    be16_store(buf, PRODUCER_SNAPSHOT_VERSION);
    be32_store(buf + 6, (uint32_t)ps->count);
    uint8_t *p = buf + SNAPSHOT_HEADER;
    for (size_t i = 0; i < ps->nbuckets; i++)
        for (const struct producer_entry *e = ps->buckets[i]; e; e = e->next) {
            const struct producer_batch *b =
                e->n ? entry_batch(e, e->n - 1) : &(struct producer_batch){-1, -1, -1, -1, -1};
            be64_store(p, (uint64_t)e->producer_id);
            be16_store(p + 8, (uint16_t)e->epoch);
            be32_store(p + 10, (uint32_t)b->last_seq);
            be64_store(p + 14, (uint64_t)b->last_offset);
            be32_store(p + 22, (uint32_t)(b->last_offset - b->first_offset));
            be64_store(p + 26, (uint64_t)e->last_timestamp);
            be32_store(p + 34, (uint32_t)e->coordinator_epoch);
            be64_store(p + 38, (uint64_t)e->txn_first_offset);
            p += SNAPSHOT_ENTRY;
        }
    be32_store(buf + 2, crc32c(buf + 6, need - 6));
    return need;
}

int producer_state_decode(struct producer_state *ps, const uint8_t *buf, size_t len, int64_t now_ms)
{
    if (len < SNAPSHOT_HEADER || (int16_t)be16_load(buf) != PRODUCER_SNAPSHOT_VERSION)
        return -EINVAL;
    if (be32_load(buf + 2) != crc32c(buf + 6, len - 6))
        return -EINVAL;
    int32_t n = (int32_t)be32_load(buf + 6);
    if (n < 0 || (size_t)n != (len - SNAPSHOT_HEADER) / SNAPSHOT_ENTRY ||
        (len - SNAPSHOT_HEADER) % SNAPSHOT_ENTRY != 0)
        return -EINVAL;
    const uint8_t *p = buf + SNAPSHOT_HEADER;
    for (int32_t i = 0; i < n; i++, p += SNAPSHOT_ENTRY) {
        struct producer_entry *e = find_or_add(ps, (int64_t)be64_load(p));
        if (e == NULL)
            return -ENOMEM;
        e->epoch = (int16_t)be16_load(p + 8);
        int32_t last_seq = (int32_t)be32_load(p + 10);
        int64_t last_offset = (int64_t)be64_load(p + 14);
        int32_t delta = (int32_t)be32_load(p + 22);
        e->n = 0;
        e->head = 0;
        if (last_seq >= 0 && delta >= 0) {
            struct producer_batch b = {
                .first_seq =
                    last_seq - delta < 0 ? last_seq - delta + INT32_MAX + 1 : last_seq - delta,
                .last_seq = last_seq,
                .first_offset = last_offset - delta,
                .last_offset = last_offset,
                .timestamp = (int64_t)be64_load(p + 26),
            };
            entry_push(e, &b);
        }
        e->last_timestamp = (int64_t)be64_load(p + 26);
        e->coordinator_epoch = (int32_t)be32_load(p + 34);
        int64_t txn_first = (int64_t)be64_load(p + 38);
        if (txn_first >= 0 && e->txn_first_offset < 0)
            ps->open_txns++;
        else if (txn_first < 0 && e->txn_first_offset >= 0)
            ps->open_txns--;
        e->txn_first_offset = txn_first >= 0 ? txn_first : -1;
        e->last_seen_ms = now_ms;
    }
    return 0;
}

static void snapshot_path(char *out, size_t len, const char *dir, int64_t offset, const char *ext)
{
    snprintf(out, len, "%s/%020" PRId64 "%s%s", dir, offset, PRODUCER_SNAPSHOT_SUFFIX, ext);
}

/* Parses "<20 digits>.snapshot"; -1 when name is something else. */
static int64_t snapshot_name_offset(const char *name)
{
    size_t sl = strlen(PRODUCER_SNAPSHOT_SUFFIX);
    if (strlen(name) != 20 + sl || strcmp(name + 20, PRODUCER_SNAPSHOT_SUFFIX) != 0)
        return -1;
    int64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9' || v > (INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (name[i] - '0');
    }
    return v;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Offsets of dir's snapshot files, newest first; *n count. Caller frees. */
static int64_t *snapshot_list(const char *dir, size_t *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return NULL;
    size_t cap = 8;
    int64_t *v = malloc(cap * sizeof(*v));
    struct dirent *de;
    while (v && (de = readdir(d)) != NULL) {
        int64_t off = snapshot_name_offset(de->d_name);
        if (off < 0)
            continue;
        if (*n == cap) {
            int64_t *nv = realloc(v, 2 * cap * sizeof(*v));
            if (nv == NULL)
                break;
            v = nv;
            cap *= 2;
        }
        v[(*n)++] = off;
    }
    closedir(d);
    if (v)
        qsort(v, *n, sizeof(*v), cmp_desc);
    return v;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int producer_state_snapshot(const struct producer_state *ps, const char *dir, int64_t offset,
                            bool sync)
{
    size_t len = producer_state_encode(ps, NULL, 0);
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return -ENOMEM;
    producer_state_encode(ps, buf, len);
    char tmp[4096], path[4096];
    snapshot_path(tmp, sizeof(tmp), dir, offset, ".tmp");
    snapshot_path(path, sizeof(path), dir, offset, "");
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    rc = write_all(fd, buf, len);
    if (rc == 0 && sync && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        unlink(tmp);
        goto out;
    }
    size_t n;
    int64_t *offs = snapshot_list(dir, &n);
    for (size_t i = 0, kept = 0; offs && i < n; i++) {
        if (offs[i] > offset)
            continue; /* newer than ours: left for the loader to judge */
        if (kept++ < SNAPSHOTS_KEPT)
            continue;
        snapshot_path(path, sizeof(path), dir, offs[i], "");
        unlink(path);
    }
    free(offs);
out:
    free(buf);
    if (rc != 0)
        logger_warn("producer", "%s: cannot write producer snapshot at %" PRId64 ": %s", dir,
                    offset, strerror(-rc));
    return rc;
}

/* Reads a whole small file; NULL on error. */
static uint8_t *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t *buf = size >= 0 && size < (1 << 30) ? malloc((size_t)size + 1) : NULL;
    size_t got = 0;
    while (buf && got < (size_t)size) {
        ssize_t r = pread(fd, buf + got, (size_t)size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            buf = NULL;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

/* A transaction marker met in the replay: ends its transaction, records an abort in ti. */
static int replay_marker(struct producer_state *ps, struct txn_index *ti, int fd, int64_t pos,
                         const struct record_batch_header *h, int64_t segment_base, int64_t now_ms)
{
    uint8_t rec[64];
    size_t want = record_batch_size(h) - RECORD_BATCH_HEADER_SIZE;
    want = want < sizeof(rec) ? want : sizeof(rec);
    ssize_t r = pread(fd, rec, want, pos + RECORD_BATCH_HEADER_SIZE);
    struct control_marker m;
    if (r <= 0 || control_marker_parse(rec, (size_t)r, &m) != 0)
        return 0; /* not a transaction marker Gregor knows: ignored, as Kafka does */
    struct aborted_txn a;
    int rc = producer_state_apply_marker(ps, h, &m, now_ms, &a);
    if (rc == 1 && ti != NULL)
        txn_index_append(ti, segment_base, &a);
    return rc < 0 ? rc : 0;
}

/* Replays producer batches in [from, log end) from their headers. */
static int replay(struct producer_state *ps, struct txn_index *ti, struct log *log, int64_t from,
                  int64_t now_ms)
{
    int64_t off = from;
    while (off < log_end_offset(log)) {
        struct log_read_result res;
        int rc = log_read(log, off, SCAN_READ_BYTES, INT64_MAX, true, &res);
        if (rc != 0 || res.range.length == 0) {
            log_read_release(&res);
            return rc != 0 ? rc : 0;
        }
        int64_t pos = res.range.position, end = pos + res.range.length;
        while (rc == 0 && pos + RECORD_BATCH_HEADER_SIZE <= end) {
            uint8_t hb[RECORD_BATCH_HEADER_SIZE];
            ssize_t r = pread(res.range.fd, hb, sizeof(hb), pos);
            struct record_batch_header h;
            if (r != (ssize_t)sizeof(hb)) {
                rc = r < 0 ? -errno : LOG_ERR_CORRUPT;
                break;
            }
            if (record_batch_header_parse(hb, sizeof(hb), &h) != 0) {
                rc = LOG_ERR_CORRUPT;
                break;
            }
            if (h.producer_id >= 0 && h.base_offset >= off && (h.attributes & RECORD_ATTR_CONTROL))
                rc = replay_marker(ps, ti, res.range.fd, pos, &h, res.segment->base_offset, now_ms);
            else if (h.producer_id >= 0 && h.base_sequence >= 0 && h.base_offset >= off)
                rc = producer_state_update(ps, &h, now_ms);
            pos += (int64_t)record_batch_size(&h);
        }
        int64_t next = res.next_offset;
        log_read_release(&res);
        if (rc != 0)
            return rc;
        if (next <= off)
            break;
        off = next;
    }
    return 0;
}

int producer_state_load(struct log *log, struct txn_index *ti, int64_t expiration_ms,
                        int64_t now_ms, struct producer_state **out, int64_t *snapshot_offset)
{
    const char *dir = log_dir_path(log);
    struct producer_state *ps = producer_state_new(expiration_ms);
    if (ps == NULL)
        return -ENOMEM;
    int64_t end = log_end_offset(log), used = -1;
    size_t n;
    int64_t *offs = snapshot_list(dir, &n);
    char path[4096];
    for (size_t i = 0; offs && i < n; i++) {
        snapshot_path(path, sizeof(path), dir, offs[i], "");
        if (offs[i] > end) {
            /* State of offsets the log no longer has (lost with an unflushed tail). */
            logger_info("producer", "%s: removing snapshot above the log end %" PRId64, path, end);
            unlink(path);
            continue;
        }
        size_t len;
        uint8_t *buf = read_file(path, &len);
        int rc = buf ? producer_state_decode(ps, buf, len, now_ms) : -EIO;
        free(buf);
        if (rc == -ENOMEM) {
            free(offs);
            producer_state_free(ps);
            return rc;
        }
        if (rc == 0) {
            used = offs[i];
            break;
        }
        logger_warn("producer", "%s: corrupt producer snapshot removed", path);
        unlink(path);
        producer_state_free(ps);
        if ((ps = producer_state_new(expiration_ms)) == NULL) {
            free(offs);
            return -ENOMEM;
        }
    }
    free(offs);
    int64_t from = used > log_start_offset(log) ? used : log_start_offset(log);
    int rc = replay(ps, ti, log, from, now_ms);
    if (rc == -ENOMEM) {
        producer_state_free(ps);
        return rc;
    }
    if (rc != 0) /* serve the partition anyway; dedup covers what could be read */
        logger_warn("producer", "%s: cannot replay producer batches from %" PRId64 ": %d", dir,
                    from, rc);
    producer_state_expire(ps, now_ms);
    if (snapshot_offset)
        *snapshot_offset = used;
    *out = ps;
    return 0;
}
