/*
 * Compaction and transactions (Kafka's LogCleaner with CleanedTransactionMetadata, KIP-534):
 * crafted segments with committed and aborted transactions, their COMMIT/ABORT markers and
 * the .txnindex entry of the abort, cleaned pass by pass. Tried: aborted data shadowing a
 * committed value (must not), a marker removed while its transaction still has data (must
 * not), a marker or tombstone removed before its delete horizon (must not), an index entry
 * kept after its data went (must not, in memory and on disk), a horizon stamp that changes
 * record timestamps (must not), and a log reopened after all of it.
 */
#include <unistd.h>

#include "record/control_record.h"
#include "record/record_iter.h"
#include "storage/compactor.h"
#include "storage/log.h"
#include "storage/txn_index.h"
#include "test.h"
#include "test_storage_util.h"

#define CHECK_STR(a, b) CHECK(strcmp((a), (b)) == 0)
#define NOW 1700000000000LL
#define RETENTION 1000

static struct log *open_small(const char *dir)
{
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 1024; /* many small segments */
    cfg.compact = true;
    cfg.delete_retention_ms = RETENTION;
    struct log *log = NULL;
    return log_open(dir, "compacted", 0, &cfg, NULL, &log) == 0 ? log : NULL;
}

static int64_t append_batch(struct log *log, struct record_builder *b, int64_t *segment_base)
{
    uint8_t *buf;
    size_t len;
    int rc = record_builder_finish(b, &buf, &len);
    record_builder_release(b);
    if (rc != 0)
        return rc;
    struct log_append_info info;
    rc = log_append(log, buf, len, 0, NOW, false, &info);
    free(buf);
    if (segment_base)
        *segment_base = info.segment_base;
    return rc < 0 ? rc : info.first_offset;
}

/* One record "k<key>" = v (NULL: tombstone); pid >= 0 makes it transactional data of pid. */
static int64_t append_kv(struct log *log, int64_t pid, int key, const char *v, int64_t ts)
{
    struct record_builder b;
    record_builder_init(&b, 0);
    if (pid >= 0) {
        b.attributes = RECORD_ATTR_TRANSACTIONAL;
        b.producer_id = pid;
        b.producer_epoch = 0;
        b.base_sequence = 0;
    }
    char k[16];
    int kl = snprintf(k, sizeof(k), "k%d", key);
    record_builder_add(&b, ts, k, kl, v, v ? (int32_t)strlen(v) : -1, NULL, 0);
    return append_batch(log, &b, NULL);
}

static int64_t append_marker(struct log *log, int64_t pid, int16_t type, int64_t *segment_base)
{
    struct control_marker m = {.type = type, .coordinator_epoch = 0};
    uint8_t *buf;
    size_t len;
    if (control_marker_build(pid, 0, &m, NOW, &buf, &len) != 0)
        return -1;
    struct log_append_info info;
    int rc = log_append(log, buf, len, 0, NOW, false, &info);
    free(buf);
    *segment_base = info.segment_base;
    return rc < 0 ? rc : info.first_offset;
}

static void fill(struct log *log, int n)
{
    for (int i = 0; i < n; i++)
        append_kv(log, -1, 99, "filler-filler-filler-filler-filler-filler", NOW);
}

struct scan {
    int markers, aborts, commits, stamped_markers;
    int64_t marker_horizon;
    int records;
    char value[8][32]; /* newest value of k0..k7, "" none, "<null>" tombstone */
    int64_t ts[8];
    int stamped_data;
    int bad; /* unreadable batches */
};

/* Reads every batch of the log; returns how many could not be read (0 expected). */
static int scan_log(struct log *log, struct scan *s)
{
    memset(s, 0, sizeof(*s));
    int64_t off = log_start_offset(log);
    while (off < log_end_offset(log)) {
        struct log_read_result res;
        if (log_read(log, off, 1 << 20, INT64_MAX, true, &res) != 0 || res.range.length == 0) {
            if (res.range.length == 0)
                log_read_release(&res);
            s->bad++;
            break;
        }
        uint8_t *buf = malloc((size_t)res.range.length);
        s->bad += pread(res.range.fd, buf, (size_t)res.range.length, res.range.position) !=
                  res.range.length;
        size_t at = 0;
        while (at + RECORD_BATCH_HEADER_SIZE <= (size_t)res.range.length) {
            struct record_batch_header h;
            s->bad += record_batch_header_parse(buf + at, (size_t)res.range.length - at, &h) != 0;
            bool stamped = h.attributes & RECORD_ATTR_DELETE_HORIZON;
            if (h.base_offset >= off && (h.attributes & RECORD_ATTR_CONTROL)) {
                struct control_marker m;
                s->bad +=
                    control_marker_parse(buf + at + RECORD_BATCH_HEADER_SIZE,
                                         record_batch_size(&h) - RECORD_BATCH_HEADER_SIZE, &m) != 0;
                s->markers++;
                s->aborts += m.type == CONTROL_TYPE_ABORT;
                s->commits += m.type == CONTROL_TYPE_COMMIT;
                if (stamped) {
                    s->stamped_markers++;
                    s->marker_horizon = h.base_timestamp;
                }
            } else if (h.base_offset >= off) {
                s->stamped_data += stamped;
                struct record_iter it;
                struct record rec;
                record_iter_init(&it, buf + at, record_batch_size(&h), 1 << 20);
                while (record_iter_next(&it, &rec) == 1) {
                    s->records++;
                    int k = atoi((const char *)rec.key + 1);
                    if (k < 0 || k >= 8)
                        continue;
                    snprintf(s->value[k], sizeof(s->value[k]), "%.*s",
                             rec.value ? rec.value_len : 6,
                             rec.value ? (const char *)rec.value : "<null>");
                    s->ts[k] = rec.timestamp;
                }
                record_iter_release(&it);
            }
            at += record_batch_size(&h);
        }
        off = res.next_offset;
        free(buf);
        log_read_release(&res);
    }
    return s->bad;
}

static int pass(struct log *log, int64_t now, struct log_compact_stats *st)
{
    log_set_high_watermark(log, log_end_offset(log));
    return log_compact(log, now, true, st);
}

static size_t index_entries_on_disk(const char *dir)
{
    struct txn_index *ti;
    if (txn_index_open(dir, &ti) != 0)
        return (size_t)-1;
    size_t n = txn_index_count(ti);
    txn_index_close(ti);
    return n;
}

TEST(test_cleaner_removes_aborted_data_then_index_entry_then_marker_after_horizon)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    struct txn_index *ti; /* the partition's index, as producer_append.c hands it over */
    CHECK_EQ_INT(txn_index_open(log_dir_path(log), &ti), 0);
    log_set_txn_index(log, ti);

    CHECK(append_kv(log, -1, 1, "committed-plain", NOW) >= 0);
    /* Producer 7 writes k1 and k3 in a transaction that aborts: k1's aborted value comes
     * after the committed one and must not shadow it. */
    int64_t first = append_kv(log, 7, 1, "aborted-1", NOW);
    CHECK(append_kv(log, 7, 3, "aborted-3", NOW) >= 0);
    /* Producer 8's transaction commits k2 meanwhile. */
    CHECK(append_kv(log, 8, 2, "committed-txn", NOW - 5000) >= 0);
    int64_t abort_seg;
    int64_t abort_at = append_marker(log, 7, CONTROL_TYPE_ABORT, &abort_seg);
    struct aborted_txn a = {7, first, abort_at, abort_at + 1};
    CHECK_EQ_INT(txn_index_append(ti, abort_seg, &a), 0);
    int64_t commit_seg;
    CHECK(append_marker(log, 8, CONTROL_TYPE_COMMIT, &commit_seg) >= 0);
    fill(log, 30); /* roll: everything above is in closed segments */
    int64_t end = log_end_offset(log);

    /* Pass 1: the aborted data goes; both markers still guard data seen in this pass. */
    struct log_compact_stats st;
    CHECK_EQ_INT(pass(log, NOW, &st), 0);
    struct scan s;
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_STR(s.value[1], "committed-plain");
    CHECK_STR(s.value[3], "");
    CHECK_STR(s.value[2], "committed-txn");
    CHECK_EQ_INT(s.ts[2], NOW - 5000);
    CHECK_EQ_INT(s.aborts, 1);
    CHECK_EQ_INT(s.commits, 1);
    CHECK_EQ_INT(s.stamped_markers, 0);
    CHECK_EQ_INT(txn_index_count(ti), 1);
    CHECK_EQ_INT(index_entries_on_disk(log_dir_path(log)), 1);

    /* Pass 2: no data of the aborted transaction is left: its entry goes (memory and file);
     * its marker gets a delete horizon but stays. The commit still guards k2. */
    CHECK_EQ_INT(pass(log, NOW + 10, &st), 0);
    CHECK_EQ_INT(st.txn_entries_removed, 1);
    CHECK_EQ_INT(txn_index_count(ti), 0);
    struct aborted_txn out[2];
    CHECK_EQ_INT(txn_index_collect(ti, 0, INT64_MAX, out, 2), 0);
    CHECK_EQ_INT(index_entries_on_disk(log_dir_path(log)), 0);
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.aborts, 1);
    CHECK_EQ_INT(s.commits, 1);
    CHECK_EQ_INT(s.stamped_markers, 1);
    CHECK_EQ_INT(s.marker_horizon, NOW + 10 + RETENTION);

    /* Before the horizon: nothing more goes. */
    CHECK_EQ_INT(pass(log, NOW + 10 + RETENTION - 1, &st), 0);
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.aborts, 1);

    /* After it: the abort marker goes; the commit marker stays while k2's value is there. */
    CHECK_EQ_INT(pass(log, NOW + 10 + RETENTION, &st), 0);
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.aborts, 0);
    CHECK_EQ_INT(s.commits, 1);
    CHECK_STR(s.value[2], "committed-txn");

    /* k2 overwritten outside the transaction: the committed data goes, then the marker. */
    CHECK(append_kv(log, -1, 2, "later-plain", NOW) >= 0);
    fill(log, 30);
    int64_t t = NOW + 5 * RETENTION;
    CHECK_EQ_INT(pass(log, t, &st), 0); /* data goes; marker saw it in this pass */
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.commits, 1);
    CHECK_EQ_INT(s.stamped_markers, 0);
    CHECK_EQ_INT(pass(log, t + 1, &st), 0); /* stamped */
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.stamped_markers, 1);
    /* Not forced and not dirty: the horizon passing alone brings the pass that removes it. */
    CHECK_EQ_INT(log_compact(log, t + 1 + RETENTION, false, &st), 0);
    CHECK(st.records_removed >= 1);
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.markers, 0);
    CHECK_STR(s.value[1], "committed-plain");
    CHECK_STR(s.value[2], "later-plain");
    int64_t end2 = log_end_offset(log);
    CHECK(end2 > end);

    /* Reopen: the cleaned segments and indexes load, nothing comes back. */
    log_set_txn_index(log, NULL);
    txn_index_close(ti);
    log_close(log);
    log = open_small(dir);
    CHECK(log != NULL);
    CHECK_EQ_INT(log_end_offset(log), end2);
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.markers, 0);
    CHECK_STR(s.value[1], "committed-plain");
    CHECK_EQ_INT(index_entries_on_disk(log_dir_path(log)), 0);
    log_close(log);
}

TEST(test_cleaner_keeps_abort_marker_and_entry_while_its_data_is_seen)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    /* No partition index handed over: the cleaner works on the .txnindex files. */
    struct txn_index *ti;
    CHECK_EQ_INT(txn_index_open(log_dir_path(log), &ti), 0);
    int64_t first = append_kv(log, 9, 4, "aborted-4", NOW);
    int64_t seg;
    int64_t at = append_marker(log, 9, CONTROL_TYPE_ABORT, &seg);
    struct aborted_txn a = {9, first, at, at + 1};
    CHECK_EQ_INT(txn_index_append(ti, seg, &a), 0);
    txn_index_close(ti);
    fill(log, 30);
    struct log_compact_stats st;
    CHECK_EQ_INT(pass(log, NOW, &st), 0);
    CHECK_EQ_INT(index_entries_on_disk(log_dir_path(log)), 1); /* its data was seen in this pass */
    struct scan s;
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.aborts, 1);
    CHECK_STR(s.value[4], "");
    /* Long past any horizon but never stamped: a pass stamps first, never removes at once. */
    CHECK_EQ_INT(pass(log, NOW + 100 * RETENTION, &st), 0);
    CHECK_EQ_INT(index_entries_on_disk(log_dir_path(log)), 0);
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.aborts, 1);
    CHECK_EQ_INT(s.stamped_markers, 1);
    CHECK_EQ_INT(pass(log, NOW + 102 * RETENTION, &st), 0);
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_EQ_INT(s.aborts, 0);
    log_close(log);
}

TEST(test_cleaner_tombstone_goes_one_horizon_after_the_pass_that_stamps_it)
{
    char *dir = tmpdir_make();
    struct log *log = open_small(dir);
    CHECK(log != NULL);
    CHECK(append_kv(log, -1, 5, "value", NOW - 100000) >= 0);
    CHECK(append_kv(log, -1, 5, NULL, NOW - 50000) >= 0); /* written long ago */
    fill(log, 30);
    struct log_compact_stats st;
    CHECK_EQ_INT(pass(log, NOW, &st), 0);
    struct scan s;
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_STR(s.value[5], "<null>");    /* kept: consumers get one horizon to see it */
    CHECK_EQ_INT(s.ts[5], NOW - 50000); /* the stamp does not change the record's time */
    CHECK(s.stamped_data >= 1);
    CHECK_EQ_INT(pass(log, NOW + RETENTION - 1, &st), 0);
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_STR(s.value[5], "<null>");
    CHECK_EQ_INT(pass(log, NOW + RETENTION, &st), 0);
    CHECK_EQ_INT(scan_log(log, &s), 0);
    CHECK_STR(s.value[5], "");
    log_close(log);
}

TEST_MAIN
