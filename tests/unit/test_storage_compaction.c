/*
 * Log compaction: the newest record of every key survives with its offset, older ones and
 * keyless records go, tombstones stay until their delete horizon, the active segment is not
 * touched, a reader that pinned a segment before the swap keeps reading the old bytes, and the
 * result survives a close and reopen (indexes rebuilt).
 */
#include <unistd.h>

#include "record/record_iter.h"
#include "storage/compactor.h"
#include "storage/log.h"
#include "storage/txn_index.h"
#include "test.h"
#include "test_storage_util.h"

#define KEYS 50
#define ROUNDS 20

/* Appends one single-record batch with key "k<key>" (NULL key when key < 0) and value v. */
static int64_t append_kv(struct log *log, int key, const char *v, int64_t ts)
{
    struct record_builder b;
    record_builder_init(&b, 0);
    char k[16];
    int kl = snprintf(k, sizeof(k), "k%d", key);
    record_builder_add(&b, ts, key < 0 ? NULL : k, key < 0 ? -1 : kl, v,
                       v ? (int32_t)strlen(v) : -1, NULL, 0);
    uint8_t *buf;
    size_t len;
    record_builder_finish(&b, &buf, &len);
    record_builder_release(&b);
    struct log_append_info info;
    int rc = log_append(log, buf, len, 0, ts, false, &info);
    free(buf);
    return rc < 0 ? rc : info.first_offset;
}

struct seen {
    int64_t offset[KEYS];
    char value[KEYS][32];
    int present[KEYS];
    int total;
    int keyless;
};

/* Reads the log from offset `from` and records, per key, the last value and offset seen. */
static int read_from(struct log *log, int64_t from, struct seen *s)
{
    memset(s, 0, sizeof(*s));
    int64_t off = from;
    while (off < log_end_offset(log)) {
        struct log_read_result res;
        int rc = log_read(log, off, 1 << 20, INT64_MAX, true, &res);
        if (rc != 0)
            return rc;
        if (res.range.length == 0) {
            log_read_release(&res);
            return -1;
        }
        uint8_t *buf = malloc((size_t)res.range.length);
        if (pread(res.range.fd, buf, (size_t)res.range.length, res.range.position) !=
            res.range.length)
            return -2;
        size_t at = 0;
        while (at + RECORD_BATCH_HEADER_SIZE <= (size_t)res.range.length) {
            struct record_batch_header h;
            record_batch_header_parse(buf + at, (size_t)res.range.length - at, &h);
            struct record_iter it;
            struct record rec;
            record_iter_init(&it, buf + at, record_batch_size(&h), 1 << 20);
            while (record_iter_next(&it, &rec) == 1) {
                if (rec.offset < off)
                    continue;
                s->total++;
                if (rec.key == NULL) {
                    s->keyless++;
                    continue;
                }
                int k = atoi((const char *)rec.key + 1);
                s->present[k] = rec.value ? 1 : 2;
                s->offset[k] = rec.offset;
                snprintf(s->value[k], sizeof(s->value[k]), "%.*s",
                         rec.value_len > 0 ? rec.value_len : 0,
                         rec.value ? (const char *)rec.value : "");
            }
            record_iter_release(&it);
            at += record_batch_size(&h);
        }
        off = res.next_offset;
        free(buf);
        log_read_release(&res);
    }
    return 0;
}

static int read_all(struct log *log, struct seen *s)
{
    return read_from(log, log_start_offset(log), s);
}

/* A forced pass with everything replicated (the cleaner stops at the high watermark). */
static int compact_all(struct log *log, int64_t now, struct log_compact_stats *st)
{
    log_set_high_watermark(log, log_end_offset(log));
    return log_compact(log, now, true, st);
}

static struct log *open_small(const char *dir)
{
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 2048; /* many small segments */
    cfg.compact = true;
    cfg.delete_retention_ms = 1000;
    struct log *log = NULL;
    return log_open(dir, "compacted", 0, &cfg, NULL, &log) == 0 ? log : NULL;
}

TEST(test_compaction_keeps_newest_value_of_every_key)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    int64_t now = 1700000000000LL;
    int64_t last[KEYS];
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < KEYS; k++) {
            char v[32];
            snprintf(v, sizeof(v), "r%d-k%d", r, k);
            last[k] = append_kv(log, k, v, now);
            CHECK(last[k] >= 0);
        }
    CHECK(append_kv(log, -1, "keyless", now) >= 0);
    /* Tombstones stay one delete.retention.ms after the pass that first keeps them (KIP-534),
     * however old their timestamp: both are kept now; the horizon rule has its own tests
     * (test_storage_compaction_txn.c). */
    CHECK(append_kv(log, 3, NULL, now - 5000) >= 0);
    CHECK(append_kv(log, 4, NULL, now) >= 0);
    for (int k = 10; k < 12; k++) /* fill so the tombstones are closed */
        CHECK(append_kv(log, k, "final-padding-value-to-roll-the-segment-over-soon", now) >= 0);
    for (int i = 0; i < 40; i++)
        CHECK(append_kv(log, 20, "filler-filler-filler-filler-filler-filler", now) >= 0);
    int64_t end = log_end_offset(log);
    size_t before_segments = log_segment_count(log);
    int64_t before_bytes = log_size_bytes(log);
    struct log_compact_stats st;
    CHECK_EQ_INT(compact_all(log, now, &st), 0);
    CHECK(st.segments_cleaned > 0);
    CHECK(log_size_bytes(log) < before_bytes / 4);
    CHECK_EQ_INT(log_end_offset(log), end);
    CHECK_EQ_INT(log_segment_count(log), before_segments);
    struct seen s;
    CHECK_EQ_INT(read_all(log, &s), 0);
    for (int k = 0; k < KEYS; k++) {
        if (k == 3 || k == 4) {
            CHECK_EQ_INT(s.present[k], 2);
            continue;
        }
        CHECK(s.present[k] == 1);
        if (k < 10) {
            char want[32];
            snprintf(want, sizeof(want), "r%d-k%d", ROUNDS - 1, k);
            CHECK(strcmp(s.value[k], want) == 0);
            CHECK_EQ_INT(s.offset[k], last[k]);
        }
    }
    CHECK_EQ_INT(s.keyless, 0);
    CHECK(s.total < KEYS * 3);
    /* Reopen: the swapped segments and their rebuilt indexes load cleanly. */
    log_close(log);
    log = open_small(dir);
    CHECK(log != NULL);
    CHECK_EQ_INT(log_end_offset(log), end);
    struct seen s2;
    CHECK_EQ_INT(read_all(log, &s2), 0);
    CHECK_EQ_INT(s2.total, s.total);
    CHECK(memcmp(s2.offset, s.offset, sizeof(s.offset)) == 0);
    log_close(log);
}

TEST(test_compaction_skips_clean_log_and_never_touches_active_segment)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    for (int k = 0; k < KEYS; k++)
        CHECK(append_kv(log, k, "only-version", 1700000000000LL) >= 0);
    struct log_compact_stats st;
    CHECK_EQ_INT(compact_all(log, 1700000000000LL, &st), 0);
    CHECK_EQ_INT(st.segments_cleaned, 0); /* nothing to drop: no rewrite */
    /* Updates only in the active segment are not compacted yet. */
    int64_t a = append_kv(log, 0, "v2", 1700000000000LL);
    CHECK(a >= 0);
    CHECK_EQ_INT(compact_all(log, 1700000000000LL, &st), 0);
    struct seen s;
    CHECK_EQ_INT(read_all(log, &s), 0);
    CHECK(strcmp(s.value[0], "v2") == 0);
    log_close(log);
}

TEST(test_compaction_reader_pinned_before_swap_keeps_old_bytes)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    for (int r = 0; r < 10; r++)
        for (int k = 0; k < 5; k++)
            CHECK(append_kv(log, k, "value-value-value-value", 1700000000000LL) >= 0);
    struct log_read_result res;
    CHECK_EQ_INT(log_read(log, 0, 1 << 20, INT64_MAX, true, &res), 0);
    CHECK(res.range.length > 0);
    uint8_t *before = malloc((size_t)res.range.length);
    CHECK(pread(res.range.fd, before, (size_t)res.range.length, res.range.position) ==
          res.range.length);
    CHECK_EQ_INT(compact_all(log, 1700000000000LL, NULL), 0);
    uint8_t *after = malloc((size_t)res.range.length);
    CHECK(pread(res.range.fd, after, (size_t)res.range.length, res.range.position) ==
          res.range.length);
    CHECK_MEM(before, after, (size_t)res.range.length);
    log_read_release(&res);
    free(before);
    free(after);
    log_close(log);
}

/* Appends a transactional single-record batch of producer pid with key "k<key>". */
static int64_t append_txn_kv(struct log *log, int64_t pid, int key, const char *v, int64_t ts)
{
    struct record_builder b;
    record_builder_init(&b, 0);
    b.attributes = RECORD_ATTR_TRANSACTIONAL;
    b.producer_id = pid;
    b.producer_epoch = 0;
    b.base_sequence = 0;
    char k[16];
    int kl = snprintf(k, sizeof(k), "k%d", key);
    record_builder_add(&b, ts, k, kl, v, (int32_t)strlen(v), NULL, 0);
    uint8_t *buf;
    size_t len;
    record_builder_finish(&b, &buf, &len);
    record_builder_release(&b);
    struct log_append_info info;
    int rc = log_append(log, buf, len, 0, ts, false, &info);
    free(buf);
    return rc < 0 ? rc : info.first_offset;
}

TEST(test_compaction_drops_aborted_transactions_and_keeps_committed_values)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    int64_t now = 1700000000000LL;
    CHECK(append_kv(log, 1, "committed", now) >= 0);
    int64_t first = append_txn_kv(log, 77, 1, "aborted", now);
    CHECK(first >= 0);
    /* The ABORT marker's offset; the marker itself is a control batch the test need not
     * write: the cleaner learns of the abort from the .txnindex. */
    int64_t marker = append_kv(log, 2, "other", now);
    struct txn_index *ti;
    CHECK_EQ_INT(txn_index_open(log_dir_path(log), &ti), 0);
    struct aborted_txn a = {77, first, marker, marker + 1};
    CHECK_EQ_INT(txn_index_append(ti, 0, &a), 0);
    txn_index_close(ti);
    for (int i = 0; i < 40; i++) /* roll, so the records above are in closed segments */
        CHECK(append_kv(log, 20, "filler-filler-filler-filler-filler-filler", now) >= 0);
    struct log_compact_stats st;
    CHECK_EQ_INT(compact_all(log, now, &st), 0);
    struct seen s;
    CHECK_EQ_INT(read_all(log, &s), 0);
    CHECK(s.present[1] == 1 && strcmp(s.value[1], "committed") == 0);
    log_close(log);
}

TEST(test_compaction_stops_at_the_first_unstable_offset)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    int64_t now = 1700000000000LL;
    for (int r = 0; r < 3; r++) /* several closed segments of updates before the transaction */
        for (int k = 0; k < 10; k++)
            CHECK(append_kv(log, k, r == 2 ? "before-txn" : "old-value-old-value", now) >= 0);
    int64_t first = append_txn_kv(log, 88, 1, "open-txn", now);
    CHECK(first >= 0);
    log_set_first_unstable_offset(log, first);
    for (int r = 0; r < 3; r++) /* more updates of the same keys, past the open transaction */
        for (int k = 0; k < 10; k++)
            CHECK(append_kv(log, k, "after-txn-after-txn", now) >= 0);
    for (int i = 0; i < 40; i++) /* roll, so every record above is in a closed segment */
        CHECK(append_kv(log, 20, "filler-filler-filler-filler-filler-filler", now) >= 0);
    struct seen above;
    CHECK_EQ_INT(read_from(log, first, &above), 0);
    int64_t end = log_end_offset(log);
    struct log_compact_stats st;
    CHECK_EQ_INT(compact_all(log, now, &st), 0);
    CHECK(st.segments_cleaned > 0); /* the updates below the transaction were compacted */
    CHECK_EQ_INT(log_last_stable_offset(log), first);
    /* The open transaction's record and everything after its first offset: untouched. */
    struct seen after;
    CHECK_EQ_INT(read_from(log, first, &after), 0);
    CHECK_EQ_INT(after.total, above.total);
    CHECK(memcmp(after.offset, above.offset, sizeof(after.offset)) == 0);
    /* Below it (whole segments: the one holding the bound stays as written), each key's newest
     * value below the bound survived, the later updates not being in the key map; most older
     * rounds went. */
    struct seen all;
    CHECK_EQ_INT(read_all(log, &all), 0);
    CHECK(all.total - above.total >= 10 && all.total - above.total < 30);
    CHECK_EQ_INT(log_end_offset(log), end);
    /* Once decided (committed: no open transaction), the rest is cleanable. */
    log_set_first_unstable_offset(log, -1);
    CHECK_EQ_INT(compact_all(log, now, &st), 0);
    CHECK(st.segments_cleaned > 0);
    CHECK_EQ_INT(read_all(log, &all), 0);
    CHECK(all.total < above.total);
    CHECK(all.present[1] == 1 && strcmp(all.value[1], "after-txn-after-txn") == 0);
    log_close(log);
}

TEST_MAIN
