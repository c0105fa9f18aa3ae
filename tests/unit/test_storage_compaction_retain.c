/*
 * Compaction keeps the batch of an active producer's last data offset (Kafka's LogCleaner
 * RETAIN_EMPTY): when all its records are shadowed by another producer's later keys, the batch
 * stays as an empty batch (header only, record count 0, valid CRC-32C), so a producer state
 * rebuilt from the log without .snapshot files still knows the producer's epoch and last
 * sequence. Tried: a producer whose every record is shadowed (must keep an empty batch, only
 * its last one), a producer no longer in the state (must lose everything), a reload without
 * snapshots (duplicate, out-of-order and fenced checks must answer as before compaction), the
 * empty batch when its producer left the state (must go), an aborted transaction's last batch
 * of an active producer (kept empty), a fence marker of a producer with no data at its epoch
 * (kept empty, then left alone by later passes), a follower replicating the empty batch and
 * rebuilding its indexes and producer state from it, and offsets (must not move).
 */
#include <dirent.h>
#include <unistd.h>

#include "record/control_record.h"
#include "storage/compactor.h"
#include "storage/log.h"
#include "storage/producer_state.h"
#include "storage/txn_index.h"
#include "test.h"
#include "test_storage_util.h"

#define NOW 1700000000000LL
#define EXPIRATION (7LL * 24 * 3600 * 1000)

static struct log *open_small(const char *dir)
{
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 1024; /* many small segments */
    cfg.compact = true;
    cfg.delete_retention_ms = 1000;
    struct log *log = NULL;
    return log_open(dir, "compacted", 0, &cfg, NULL, &log) == 0 ? log : NULL;
}

/* The hook the broker's partition installs, over a test-owned state (NULL: no producers). */
static int hook(void *arg, struct log_active_producer **out, size_t *n)
{
    struct producer_state *ps = *(struct producer_state **)arg;
    size_t count = ps ? producer_state_count(ps) : 0;
    *out = count ? malloc(count * sizeof(**out)) : NULL;
    *n = count ? producer_state_active(ps, *out, count) : 0;
    return 0;
}

/*
 * Appends one batch of keys [k_from, k_to] from producer pid (epoch, base sequence seq; pid < 0:
 * none), records it in ps (may be NULL) as the broker does, returns its base offset.
 */
static int64_t append_keys(struct log *log, struct producer_state *ps, int64_t pid, int16_t epoch,
                           int32_t seq, int k_from, int k_to, bool txn)
{
    struct record_builder b;
    record_builder_init(&b, 0);
    if (pid >= 0) {
        b.producer_id = pid;
        b.producer_epoch = epoch;
        b.base_sequence = seq;
        b.attributes = txn ? RECORD_ATTR_TRANSACTIONAL : 0;
    }
    for (int k = k_from; k <= k_to; k++) {
        char key[16], val[32];
        int kl = snprintf(key, sizeof(key), "k%d", k);
        int vl = snprintf(val, sizeof(val), "p%lld-value-%d", (long long)pid, k);
        record_builder_add(&b, NOW, key, kl, val, vl, NULL, 0);
    }
    uint8_t *buf;
    size_t len;
    if (record_builder_finish(&b, &buf, &len) != 0)
        return -1;
    record_builder_release(&b);
    struct log_append_info info;
    int rc = log_append(log, buf, len, 0, NOW, false, &info);
    struct record_batch_header h;
    record_batch_header_parse(buf, len, &h);
    h.base_offset = info.first_offset;
    free(buf);
    if (rc < 0)
        return rc;
    if (ps != NULL && pid >= 0 && producer_state_update(ps, &h, NOW) != 0)
        return -1;
    return info.first_offset;
}

/* An ABORT marker, recorded in ps and (as the broker does) in the transaction index ti. */
/* A marker of type, recorded in ps and, for an abort that ended a transaction, in the
 * transaction index ti (as the broker does). */
static int64_t append_marker(struct log *log, struct producer_state *ps, struct txn_index *ti,
                             int64_t pid, int16_t epoch, int16_t type)
{
    struct control_marker m = {.type = type, .coordinator_epoch = 0};
    uint8_t *buf;
    size_t len;
    if (control_marker_build(pid, epoch, &m, NOW, &buf, &len) != 0)
        return -1;
    struct log_append_info info;
    int rc = log_append(log, buf, len, 0, NOW, false, &info);
    struct record_batch_header h;
    record_batch_header_parse(buf, len, &h);
    h.base_offset = info.first_offset;
    free(buf);
    struct aborted_txn a;
    if (rc < 0 || (rc = producer_state_apply_marker(ps, &h, &m, NOW, &a)) < 0)
        return -1;
    if (rc == 1 && txn_index_append(ti, info.segment_base, &a) != 0)
        return -1;
    return info.first_offset;
}

static void fill(struct log *log, int n)
{
    for (int i = 0; i < n; i++)
        append_keys(log, NULL, -1, 0, 0, 99, 99, false);
}

/* What one producer has in the log: its batches, and the last one's header and bytes. */
struct found {
    int batches, records, bad;
    struct record_batch_header last;
    size_t last_size;
    bool last_valid;   /* passes record_batch_validate (CRC, counts) */
    int64_t prev_last; /* offsets across the whole log strictly increase */
    int non_monotonic;
};

static void find_producer(struct log *log, int64_t pid, struct found *f)
{
    memset(f, 0, sizeof(*f));
    f->prev_last = -1;
    int64_t off = log_start_offset(log);
    while (off < log_end_offset(log)) {
        struct log_read_result res;
        if (log_read(log, off, 1 << 20, INT64_MAX, true, &res) != 0 || res.range.length == 0) {
            if (res.range.length == 0)
                log_read_release(&res);
            f->bad++;
            return;
        }
        uint8_t *buf = malloc((size_t)res.range.length);
        f->bad += pread(res.range.fd, buf, (size_t)res.range.length, res.range.position) !=
                  res.range.length;
        size_t at = 0;
        while (at + RECORD_BATCH_HEADER_SIZE <= (size_t)res.range.length) {
            struct record_batch_header h;
            if (record_batch_header_parse(buf + at, (size_t)res.range.length - at, &h) != 0) {
                f->bad++;
                break;
            }
            size_t size = record_batch_size(&h);
            if (h.base_offset >= off) {
                f->non_monotonic += h.base_offset <= f->prev_last;
                f->prev_last = record_batch_last_offset(&h);
                if (h.producer_id == pid) {
                    f->batches++;
                    f->records += h.record_count;
                    f->last = h;
                    f->last_size = size;
                    f->last_valid =
                        at + size <= (size_t)res.range.length &&
                        record_batch_validate(buf + at, size, RECORD_VALIDATE_STORED, 0, NULL) == 0;
                }
            }
            at += size;
        }
        off = res.next_offset > off ? res.next_offset : log_end_offset(log);
        free(buf);
        log_read_release(&res);
    }
}

/* One forced pass at now; returns the segments it rewrote, or the error. */
static int compact_at(struct log *log, int64_t now)
{
    log_set_high_watermark(log, log_end_offset(log));
    struct log_compact_stats st;
    int rc = log_compact(log, now, true, &st);
    return rc < 0 ? rc : st.segments_cleaned;
}

static int compact(struct log *log)
{
    return compact_at(log, NOW) < 0 ? -1 : 0;
}

/* Removes dir's files whose names end with suffix. */
static void remove_files(const char *dir, const char *suffix)
{
    size_t sl = strlen(suffix);
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[4096];
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > sl && strcmp(e->d_name + n - sl, suffix) == 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (d)
        closedir(d);
}

/* Replicates src into dst as a follower does (log_append_replica of the bytes read). */
static int copy_as_follower(struct log *src, struct log *dst)
{
    int64_t off = log_start_offset(src);
    while (off < log_end_offset(src)) {
        struct log_read_result res;
        if (log_read(src, off, 1 << 20, INT64_MAX, true, &res) != 0 || res.range.length == 0) {
            if (res.range.length == 0)
                log_read_release(&res);
            return -1;
        }
        uint8_t *buf = malloc((size_t)res.range.length);
        struct log_append_info info;
        int rc = pread(res.range.fd, buf, (size_t)res.range.length, res.range.position) ==
                         res.range.length
                     ? log_append_replica(dst, buf, (size_t)res.range.length, &info)
                     : -1;
        off = res.next_offset > off ? res.next_offset : log_end_offset(src);
        free(buf);
        log_read_release(&res);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* A batch header of pid/epoch with sequences [seq, seq + n). */
static struct record_batch_header probe(int64_t pid, int16_t epoch, int32_t seq, int32_t n)
{
    return (struct record_batch_header){.producer_id = pid,
                                        .producer_epoch = epoch,
                                        .base_sequence = seq,
                                        .last_offset_delta = n - 1,
                                        .record_count = n,
                                        .magic = 2};
}

static int check(const struct producer_state *ps, int64_t pid, int16_t epoch, int32_t seq,
                 int32_t n)
{
    struct record_batch_header h = probe(pid, epoch, seq, n);
    struct producer_batch dup;
    return producer_state_check(ps, &h, &dup);
}

TEST(test_cleaner_keeps_last_batch_of_active_producer_empty_and_reload_knows_it)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    struct producer_state *ps = producer_state_new(EXPIRATION);
    log_set_active_producers_hook(log, hook, &ps);
    CHECK(append_keys(log, ps, 7, 3, 0, 0, 2, false) >= 0);     /* seq 0..2 */
    int64_t last7 = append_keys(log, ps, 7, 3, 3, 3, 4, false); /* seq 3..4: its last */
    CHECK(last7 >= 0);
    CHECK(append_keys(log, NULL, 9, 0, 0, 5, 5, false) >= 0); /* pid 9: not in the state */
    CHECK(append_keys(log, ps, 8, 0, 0, 0, 5, false) >= 0);   /* shadows all of 7 and 9 */
    fill(log, 30);
    int64_t end = log_end_offset(log);
    /* What the live state answers, before compaction. */
    CHECK_EQ_INT(check(ps, 7, 3, 3, 2), PRODUCER_CHECK_DUPLICATE);
    CHECK_EQ_INT(check(ps, 7, 3, 6, 1), PRODUCER_CHECK_OUT_OF_ORDER);
    CHECK_EQ_INT(check(ps, 7, 3, 5, 1), PRODUCER_CHECK_APPEND);
    CHECK_EQ_INT(check(ps, 7, 2, 5, 1), PRODUCER_CHECK_FENCED);
    CHECK_EQ_INT(compact(log), 0);

    struct found f;
    find_producer(log, 7, &f);
    CHECK_EQ_INT(f.bad, 0);
    CHECK_EQ_INT(f.non_monotonic, 0);
    CHECK_EQ_INT(f.batches, 1); /* only the last batch, empty */
    CHECK_EQ_INT(f.records, 0);
    CHECK_EQ_INT(f.last.base_offset, last7);
    CHECK_EQ_INT(f.last.last_offset_delta, 1);
    CHECK_EQ_INT(f.last.base_sequence, 3);
    CHECK_EQ_INT(f.last.producer_epoch, 3);
    CHECK_EQ_INT(f.last.base_timestamp, -1);
    CHECK_EQ_INT(f.last.max_timestamp, NOW);
    CHECK_EQ_INT(f.last_size, RECORD_BATCH_HEADER_SIZE);
    CHECK(f.last_valid);
    find_producer(log, 9, &f);
    CHECK_EQ_INT(f.batches, 0); /* not active: nothing kept */
    find_producer(log, 8, &f);
    CHECK_EQ_INT(f.records, 6);
    CHECK_EQ_INT(log_end_offset(log), end);

    /* A second pass keeps the empty batch as it is. */
    CHECK_EQ_INT(compact(log), 0);
    find_producer(log, 7, &f);
    CHECK_EQ_INT(f.batches, 1);
    CHECK(f.last_valid);

    /* Rebuilt from the log alone: the producer's epoch and last sequence come back. */
    CHECK_EQ_INT(producer_state_snapshot(ps, dir, log_end_offset(log), true), 0);
    log_set_active_producers_hook(log, NULL, NULL);
    log_close(log);
    remove_files(dir, ".snapshot");
    log = open_small(dir);
    CHECK(log != NULL);
    CHECK_EQ_INT(log_end_offset(log), end);
    struct producer_state *reloaded = NULL;
    int64_t snap = 0;
    CHECK_EQ_INT(producer_state_load(log, NULL, EXPIRATION, NOW, &reloaded, &snap), 0);
    CHECK_EQ_INT(snap, -1);
    CHECK_EQ_INT(check(reloaded, 7, 3, 3, 2), PRODUCER_CHECK_DUPLICATE);
    CHECK_EQ_INT(check(reloaded, 7, 3, 6, 1), PRODUCER_CHECK_OUT_OF_ORDER);
    CHECK_EQ_INT(check(reloaded, 7, 3, 5, 1), PRODUCER_CHECK_APPEND);
    CHECK_EQ_INT(check(reloaded, 7, 2, 5, 1), PRODUCER_CHECK_FENCED);
    CHECK_EQ_INT(check(reloaded, 8, 0, 0, 6), PRODUCER_CHECK_DUPLICATE);

    /* A follower takes the empty batch as it is and rebuilds the same state from it. */
    char *fdir = tmpdir_make();
    struct log *follower = open_small(fdir);
    CHECK(follower != NULL);
    CHECK_EQ_INT(copy_as_follower(log, follower), 0);
    CHECK_EQ_INT(log_end_offset(follower), end);
    find_producer(follower, 7, &f);
    CHECK_EQ_INT(f.batches, 1);
    CHECK_EQ_INT(f.records, 0);
    CHECK(f.last_valid);
    log_close(follower);
    remove_files(fdir, ".index"); /* rebuilt on open: the rebuild reads the empty batch */
    remove_files(fdir, ".timeindex");
    follower = open_small(fdir);
    CHECK(follower != NULL);
    CHECK_EQ_INT(log_end_offset(follower), end);
    struct producer_state *fps = NULL;
    CHECK_EQ_INT(producer_state_load(follower, NULL, EXPIRATION, NOW, &fps, NULL), 0);
    CHECK_EQ_INT(check(fps, 7, 3, 3, 2), PRODUCER_CHECK_DUPLICATE);
    CHECK_EQ_INT(check(fps, 7, 3, 6, 1), PRODUCER_CHECK_OUT_OF_ORDER);
    producer_state_free(fps);
    log_close(follower);

    /* Producer 7 leaves the state (expired): the next pass removes its empty batch. */
    producer_state_free(ps);
    ps = producer_state_new(EXPIRATION);
    log_set_active_producers_hook(log, hook, &ps);
    CHECK_EQ_INT(compact(log), 0);
    find_producer(log, 7, &f);
    CHECK_EQ_INT(f.bad, 0);
    CHECK_EQ_INT(f.batches, 0);
    CHECK_EQ_INT(f.non_monotonic, 0);
    CHECK_EQ_INT(log_end_offset(log), end);
    log_set_active_producers_hook(log, NULL, NULL);
    log_close(log);
    producer_state_free(ps);
    producer_state_free(reloaded);
}

TEST(test_cleaner_keeps_aborted_last_batch_of_active_producer_empty)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    struct producer_state *ps = producer_state_new(EXPIRATION);
    log_set_active_producers_hook(log, hook, &ps);
    struct txn_index *ti;
    CHECK_EQ_INT(txn_index_open(log_dir_path(log), &ti), 0);
    log_set_txn_index(log, ti);
    int64_t data = append_keys(log, ps, 11, 2, 0, 0, 1, true); /* transactional seq 0..1 */
    CHECK(data >= 0);
    CHECK(append_marker(log, ps, ti, 11, 2, CONTROL_TYPE_ABORT) > data);
    fill(log, 30);
    CHECK_EQ_INT(compact(log), 0);
    struct found f;
    find_producer(log, 11, &f);
    CHECK_EQ_INT(f.bad, 0);
    CHECK_EQ_INT(f.non_monotonic, 0);
    /* The aborted records are gone, the batch stays empty; its marker is still there. */
    CHECK_EQ_INT(f.batches, 2);
    CHECK_EQ_INT(f.records, 1); /* the marker's record */
    log_set_active_producers_hook(log, NULL, NULL);
    log_set_txn_index(log, NULL);
    txn_index_close(ti);
    log_close(log);
    producer_state_free(ps);
    remove_files(dir, ".snapshot");
    log = open_small(dir);
    CHECK(log != NULL);
    struct producer_state *reloaded = NULL;
    CHECK_EQ_INT(producer_state_load(log, NULL, EXPIRATION, NOW, &reloaded, NULL), 0);
    CHECK_EQ_INT(check(reloaded, 11, 2, 0, 2), PRODUCER_CHECK_DUPLICATE);
    CHECK_EQ_INT(check(reloaded, 11, 1, 2, 1), PRODUCER_CHECK_FENCED);
    CHECK_EQ_INT(producer_state_first_open_offset(reloaded), -1);
    producer_state_free(reloaded);
    log_close(log);
}

TEST(test_cleaner_keeps_marker_of_active_producer_without_data_empty)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    struct producer_state *ps = producer_state_new(EXPIRATION);
    log_set_active_producers_hook(log, hook, &ps);
    struct txn_index *ti;
    CHECK_EQ_INT(txn_index_open(log_dir_path(log), &ti), 0);
    log_set_txn_index(log, ti);
    /* Producer 12 commits k0 at epoch 0; a marker at epoch 1 (a fence, nothing open) leaves it
     * with no data batch at its epoch: only that marker holds its epoch now. */
    CHECK(append_keys(log, ps, 12, 0, 0, 0, 0, true) >= 0);
    CHECK(append_marker(log, ps, ti, 12, 0, CONTROL_TYPE_COMMIT) >= 0);
    int64_t fence = append_marker(log, ps, ti, 12, 1, CONTROL_TYPE_ABORT);
    CHECK(fence >= 0);
    CHECK(append_keys(log, NULL, -1, 0, 0, 0, 0, false) >= 0); /* shadows k0 */
    fill(log, 30);
    int64_t end = log_end_offset(log);
    /* Pass by pass: stamps, then the horizon passes; the fence marker stays as an empty
     * control batch, the commit marker goes. */
    for (int i = 0; i < 4; i++)
        CHECK(compact_at(log, NOW + i * 1000) >= 0);
    struct found f;
    find_producer(log, 12, &f);
    CHECK_EQ_INT(f.bad, 0);
    CHECK_EQ_INT(f.non_monotonic, 0);
    CHECK_EQ_INT(f.batches, 1);
    CHECK_EQ_INT(f.records, 0);
    CHECK_EQ_INT(f.last.base_offset, fence);
    CHECK_EQ_INT(f.last.producer_epoch, 1);
    CHECK(f.last.attributes & RECORD_ATTR_CONTROL);
    CHECK(!(f.last.attributes & RECORD_ATTR_DELETE_HORIZON));
    CHECK(f.last_valid);
    /* Stable: a later pass leaves it alone (no rewrite back and forth). */
    CHECK_EQ_INT(compact_at(log, NOW + 10000), 0);
    CHECK_EQ_INT(log_end_offset(log), end);
    /* The producer leaves the state: the empty marker goes. */
    producer_state_free(ps);
    ps = NULL;
    CHECK_EQ_INT(compact_at(log, NOW + 11000), 1);
    find_producer(log, 12, &f);
    CHECK_EQ_INT(f.batches, 0);
    log_set_active_producers_hook(log, NULL, NULL);
    log_set_txn_index(log, NULL);
    txn_index_close(ti);
    log_close(log);
}

TEST_MAIN
