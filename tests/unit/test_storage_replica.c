/* Follower storage: log_append_replica, log_truncate_to, log_truncate_fully_and_start_at. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>

#include "record/record_batch.h"
#include "storage/log.h"
#include "test.h"
#include "test_storage_util.h"

static struct log_config small_segments(void)
{
    struct log_config c = log_config_defaults();
    c.segment_bytes = 4096;
    c.segment_index_bytes = 4096;
    c.index_interval_bytes = 512;
    return c;
}

/* Appends one leader batch of n records with the given epoch; returns its first offset. */
static int64_t append_epoch(struct log *log, int n, int vsize, int64_t ts, int32_t epoch)
{
    size_t len;
    uint8_t *b = test_batch(n, vsize, ts, &len);
    struct log_append_info info;
    int rc = log_append(log, b, len, epoch, ts, false, &info);
    free(b);
    return rc < 0 ? rc : info.first_offset;
}

/* Every batch from `from` to the log end, as stored (malloc'ed; *len bytes). NULL on error. */
static uint8_t *read_all(struct log *log, int64_t from, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *out = malloc(cap);
    int64_t off = from;
    while (out && off < log_end_offset(log)) {
        struct log_read_result r;
        if (log_read(log, off, 1 << 20, INT64_MAX, true, &r) < 0 || r.range.length == 0) {
            log_read_release(&r);
            free(out);
            return NULL;
        }
        while (n + (size_t)r.range.length > cap)
            out = realloc(out, cap *= 2);
        if (pread(r.range.fd, out + n, (size_t)r.range.length, r.range.position) !=
            r.range.length) {
            log_read_release(&r);
            free(out);
            return NULL;
        }
        n += (size_t)r.range.length;
        off = r.next_offset;
        log_read_release(&r);
    }
    *len = n;
    return out;
}

static uint8_t *file_bytes(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Size of the first k batches of buf (or all of it). */
static size_t batches_prefix(const uint8_t *buf, size_t len, int k)
{
    size_t pos = 0;
    for (int i = 0; i < k && pos < len; i++) {
        struct record_batch_header h;
        if (record_batch_header_parse(buf + pos, len - pos, &h) < 0)
            return 0;
        pos += record_batch_size(&h);
    }
    return pos;
}

/* Feeds buf to the follower `chunk` batches at a time. */
static int replicate(struct log *follower, const uint8_t *buf, size_t len, int chunk)
{
    size_t pos = 0;
    while (pos < len) {
        size_t n = batches_prefix(buf + pos, len - pos, chunk);
        struct log_append_info info;
        int rc = log_append_replica(follower, buf + pos, n, &info);
        if (rc < 0)
            return rc;
        pos += n;
    }
    return 0;
}

static bool same_epochs(struct log *a, struct log *b, int32_t max_epoch)
{
    if (log_latest_epoch(a) != log_latest_epoch(b))
        return false;
    for (int32_t e = 0; e <= max_epoch; e++) {
        int64_t oa = -7, ob = -7;
        int32_t ea = -7, eb = -7;
        int ra = log_end_offset_for_epoch(a, e, &oa, &ea);
        int rb = log_end_offset_for_epoch(b, e, &ob, &eb);
        if (ra != rb || oa != ob || ea != eb)
            return false;
    }
    return true;
}

static void read_text(const char *dir, const char *topic, const char *file, char *out, size_t cap)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s-0/%s", dir, topic, file);
    memset(out, 0, cap);
    FILE *f = fopen(p, "r");
    if (f) {
        if (fread(out, 1, cap - 1, f) == 0)
            out[0] = 0;
        fclose(f);
    }
}

/* A leader log with epochs 1 (offsets 0..14), 3 (15..29) and 4 (30..49), 5 records a batch. */
static void fill_leader(struct log *leader)
{
    int32_t epochs[10] = {1, 1, 1, 3, 3, 3, 4, 4, 4, 4};
    for (int i = 0; i < 10; i++)
        append_epoch(leader, 5, 100, 1000 + i * 5, epochs[i]);
}

TEST(test_replica_append_copies_leader_bytes_and_epochs)
{
    char *dir = tmpdir_make();
    struct log *leader, *follower;
    CHECK(log_open(dir, "lead", 0, NULL, NULL, &leader) == 0);
    CHECK(log_open(dir, "foll", 0, NULL, NULL, &follower) == 0);
    fill_leader(leader);
    CHECK_EQ_INT(log_end_offset(leader), 50);
    size_t len;
    uint8_t *all = read_all(leader, 0, &len);
    CHECK(all != NULL);
    CHECK(replicate(follower, all, len, 3) == 0); /* 3 batches per fetch */
    free(all);
    CHECK_EQ_INT(log_end_offset(follower), 50);
    CHECK_EQ_INT(log_high_watermark(follower), 0); /* the caller's job */
    CHECK(same_epochs(leader, follower, 6));
    CHECK_EQ_INT(log_latest_epoch(follower), 4);
    log_close(leader);
    log_close(follower);
    char p[600], q[600];
    snprintf(p, sizeof(p), "%s/lead-0/00000000000000000000.log", dir);
    snprintf(q, sizeof(q), "%s/foll-0/00000000000000000000.log", dir);
    size_t la, lb;
    uint8_t *a = file_bytes(p, &la), *b = file_bytes(q, &lb);
    CHECK(a && b);
    CHECK_EQ_INT(la, lb);
    CHECK_MEM(a, b, la);
    free(a);
    free(b);
    char ta[128], tb[128];
    read_text(dir, "lead", "leader-epoch-checkpoint", ta, sizeof(ta));
    read_text(dir, "foll", "leader-epoch-checkpoint", tb, sizeof(tb));
    CHECK(strcmp(ta, "0\n3\n1 0\n3 15\n4 30\n") == 0);
    CHECK(strcmp(ta, tb) == 0);
}

TEST(test_replica_append_rolls_segments_and_reads_back)
{
    char *dir = tmpdir_make();
    struct log_config cfg = small_segments();
    struct log *leader, *follower;
    CHECK(log_open(dir, "lead", 0, &cfg, NULL, &leader) == 0);
    CHECK(log_open(dir, "foll", 0, &cfg, NULL, &follower) == 0);
    for (int i = 0; i < 60; i++)
        CHECK(append_epoch(leader, 3, 200, 1000 + i, 2) == i * 3);
    size_t len, len2;
    uint8_t *all = read_all(leader, 0, &len);
    CHECK(all != NULL);
    CHECK(replicate(follower, all, len, 1) == 0);
    CHECK(log_segment_count(follower) > 5);
    uint8_t *back = read_all(follower, 0, &len2);
    CHECK(back != NULL);
    CHECK_EQ_INT(len2, len);
    CHECK_MEM(all, back, len);
    free(back);
    log_close(follower); /* clean reopen and unclean (full recovery) keep it all */
    struct log_open_state st = {.recovery_point = 180, .log_start_offset = 0, .clean_shutdown = 1};
    CHECK(log_open(dir, "foll", 0, &cfg, &st, &follower) == 0);
    CHECK_EQ_INT(log_end_offset(follower), 180);
    log_close(follower);
    CHECK(log_open(dir, "foll", 0, &cfg, NULL, &follower) == 0);
    CHECK_EQ_INT(log_end_offset(follower), 180);
    back = read_all(follower, 0, &len2);
    CHECK(back != NULL && len2 == len);
    CHECK_MEM(all, back, len);
    free(back);
    free(all);
    log_close(leader);
    log_close(follower);
}

/* One batch of n records with base offset `base` and leader epoch `epoch` (CRC unaffected). */
static uint8_t *stored_batch(int n, int64_t base, int32_t epoch, size_t *len)
{
    uint8_t *b = test_batch(n, 20, 5000, len);
    record_batch_set_base_offset(b, base);
    record_batch_set_leader_epoch(b, epoch);
    return b;
}

TEST(test_replica_append_refuses_bad_offsets_and_bytes)
{
    char *dir = tmpdir_make();
    struct log *log;
    CHECK(log_open(dir, "f", 0, NULL, NULL, &log) == 0);
    size_t la, lb;
    uint8_t *a = stored_batch(3, 0, 1, &la);
    struct log_append_info info;
    CHECK(log_append_replica(log, a, la, &info) == 0);
    CHECK_EQ_INT(info.first_offset, 0);
    CHECK_EQ_INT(info.last_offset, 2);
    CHECK_EQ_INT(info.record_count, 3);
    CHECK_EQ_INT(info.log_append_time, -1);
    CHECK_EQ_INT(info.position, 0);
    /* Below the log end: refused, nothing written. */
    CHECK_EQ_INT(log_append_replica(log, a, la, &info), LOG_ERR_OFFSET_OUT_OF_RANGE);
    record_batch_set_base_offset(a, 2); /* overlaps the last offset */
    CHECK_EQ_INT(log_append_replica(log, a, la, &info), LOG_ERR_OFFSET_OUT_OF_RANGE);
    /* Offsets not increasing across batches (10..12 then 12..14). */
    uint8_t *b = stored_batch(3, 12, 1, &lb);
    record_batch_set_base_offset(a, 10);
    uint8_t *two = malloc(la + lb);
    memcpy(two, a, la);
    memcpy(two + la, b, lb);
    CHECK_EQ_INT(log_append_replica(log, two, la + lb, &info), LOG_ERR_CORRUPT);
    /* A flipped byte fails the CRC; a torn buffer fails the framing. */
    record_batch_set_base_offset(two + la, 13);
    two[la + lb - 2] ^= 0x40;
    CHECK_EQ_INT(log_append_replica(log, two, la + lb, &info), LOG_ERR_CORRUPT);
    two[la + lb - 2] ^= 0x40;
    CHECK_EQ_INT(log_append_replica(log, two, la + lb - 1, &info), LOG_ERR_CORRUPT);
    CHECK_EQ_INT(log_end_offset(log), 3);
    /* Gaps (a compacted leader) are fine: 10..12 then 13..15 after the end 3. */
    CHECK(log_append_replica(log, two, la + lb, &info) == 0);
    CHECK_EQ_INT(info.first_offset, 10);
    CHECK_EQ_INT(info.last_offset, 15);
    CHECK_EQ_INT(info.record_count, 6);
    CHECK_EQ_INT(log_end_offset(log), 16);
    struct log_read_result r;
    CHECK(log_read(log, 5, 1 << 20, INT64_MAX, false, &r) == 0); /* in the gap: next batch */
    CHECK_EQ_INT(r.first_offset, 10);
    CHECK_EQ_INT(r.next_offset, 16);
    log_read_release(&r);
    /* A gap wider than a segment's 32-bit relative offsets starts a new segment. */
    int64_t far = 16 + (1LL << 32);
    record_batch_set_base_offset(a, far);
    CHECK(log_append_replica(log, a, la, &info) == 0);
    CHECK_EQ_INT(info.segment_base, far);
    CHECK_EQ_INT(log_segment_count(log), 2);
    CHECK_EQ_INT(log_end_offset(log), far + 3);
    free(a);
    free(b);
    free(two);
    log_close(log);
    CHECK(log_open(dir, "f", 0, NULL, NULL, &log) == 0); /* unclean: recovers both */
    CHECK_EQ_INT(log_end_offset(log), far + 3);
    log_close(log);
}

/* The leader's bytes from 0 up to (not including) offset `end`, a batch boundary. */
static uint8_t *leader_prefix(struct log *leader, int64_t end, size_t *len)
{
    size_t n;
    uint8_t *all = read_all(leader, 0, &n);
    size_t pos = 0;
    while (all && pos < n) {
        struct record_batch_header h;
        record_batch_header_parse(all + pos, n - pos, &h);
        if (h.base_offset >= end)
            break;
        pos += record_batch_size(&h);
    }
    *len = pos;
    return all;
}

/* The follower holds exactly the leader's batches below `end`. */
static bool holds_prefix(struct log *follower, struct log *leader, int64_t end)
{
    size_t lp, lf;
    uint8_t *p = leader_prefix(leader, end, &lp);
    uint8_t *f = read_all(follower, log_start_offset(follower), &lf);
    bool ok = p && f && lp == lf && memcmp(p, f, lp) == 0 && log_end_offset(follower) == end;
    free(p);
    free(f);
    return ok;
}

TEST(test_truncate_inside_batch_at_boundary_then_append_and_reopen)
{
    char *dir = tmpdir_make();
    struct log *leader, *log;
    CHECK(log_open(dir, "lead", 0, NULL, NULL, &leader) == 0);
    CHECK(log_open(dir, "foll", 0, NULL, NULL, &log) == 0);
    fill_leader(leader);
    size_t len;
    uint8_t *all = read_all(leader, 0, &len);
    CHECK(replicate(log, all, len, 4) == 0);
    log_set_high_watermark(log, 50);
    CHECK(log_truncate_to(log, 50) == 0); /* at the end: no-op */
    CHECK(log_truncate_to(log, 99) == 0);
    CHECK_EQ_INT(log_end_offset(log), 50);
    CHECK(log_truncate_to(log, 42) == 0); /* inside batch 40..44: the batch goes */
    CHECK_EQ_INT(log_end_offset(log), 40);
    CHECK_EQ_INT(log_high_watermark(log), 40);
    CHECK(log_recovery_point(log) <= 40);
    CHECK(holds_prefix(log, leader, 40));
    CHECK(log_truncate_to(log, 35) == 0); /* at a batch boundary */
    CHECK(holds_prefix(log, leader, 35));
    CHECK_EQ_INT(log_latest_epoch(log), 4);
    CHECK(log_truncate_to(log, 30) == 0); /* epoch 4 started at 30: gone */
    CHECK(holds_prefix(log, leader, 30));
    CHECK_EQ_INT(log_latest_epoch(log), 3);
    int64_t eo;
    int32_t ee;
    CHECK(log_end_offset_for_epoch(log, 3, &eo, &ee) == 0);
    CHECK_EQ_INT(eo, 30);
    /* Appending again: the leader's batches from 30 on, then a leader-style append. */
    size_t from = batches_prefix(all, len, 6);
    CHECK(replicate(log, all + from, len - from, 2) == 0);
    CHECK(holds_prefix(log, leader, 50));
    CHECK(same_epochs(leader, log, 6));
    CHECK(log_truncate_to(log, 33) == 0);
    CHECK(holds_prefix(log, leader, 30));
    CHECK_EQ_INT(append_epoch(log, 2, 10, 9000, 7), 30);
    CHECK_EQ_INT(log_end_offset(log), 32);
    log_close(log);
    char text[128];
    read_text(dir, "foll", "leader-epoch-checkpoint", text, sizeof(text));
    CHECK(strcmp(text, "0\n3\n1 0\n3 15\n7 30\n") == 0);
    struct log_open_state st = {.recovery_point = 32, .high_watermark = 30, .clean_shutdown = 1};
    CHECK(log_open(dir, "foll", 0, NULL, &st, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), 32);
    CHECK_EQ_INT(log_latest_epoch(log), 7);
    log_close(log);
    CHECK(log_open(dir, "foll", 0, NULL, NULL, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), 32);
    size_t n;
    uint8_t *back = read_all(log, 0, &n);
    CHECK(back != NULL);
    CHECK(record_batches_validate(back, n, RECORD_VALIDATE_STORED, 0) == 7);
    CHECK_MEM(back, all, batches_prefix(all, len, 6));
    free(back);
    free(all);
    log_close(log);
    log_close(leader);
}

static bool segment_exists(const char *dir, const char *topic, int64_t base)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/%s-0/%020lld.log", dir, topic, (long long)base);
    return access(p, F_OK) == 0;
}

static int count_files(const char *dir, const char *topic, const char *suffix)
{
    char p[600];
    int n = 0;
    for (int64_t base = 0; base < 400; base++) {
        snprintf(p, sizeof(p), "%s/%s-0/%020lld%s", dir, topic, (long long)base, suffix);
        n += access(p, F_OK) == 0;
    }
    return n;
}

TEST(test_truncate_across_segments_then_append_and_reopen)
{
    char *dir = tmpdir_make();
    struct log_config cfg = small_segments();
    struct log *leader, *log;
    CHECK(log_open(dir, "lead", 0, &cfg, NULL, &leader) == 0);
    CHECK(log_open(dir, "foll", 0, &cfg, NULL, &log) == 0);
    for (int i = 0; i < 80; i++)
        CHECK(append_epoch(leader, 3, 200, 1000 + i, 1 + i / 20) == i * 3);
    size_t len;
    uint8_t *all = read_all(leader, 0, &len);
    CHECK(replicate(log, all, len, 2) == 0);
    size_t segs = log_segment_count(log);
    CHECK(segs > 10);
    CHECK(log_truncate_to(log, 100) == 0); /* inside batch 99..101, some segments back */
    CHECK(holds_prefix(log, leader, 99));
    CHECK(log_segment_count(log) < segs);
    CHECK_EQ_INT(count_files(dir, "foll", ".log"), (int)log_segment_count(log));
    CHECK_EQ_INT(count_files(dir, "foll", ".log.deleted"), 0);
    CHECK_EQ_INT(log_latest_epoch(log), 2); /* epoch 2 starts at 60, 3 at 120 */
    /* Timestamps stay right for the part kept (ListOffsets by time, MAX_TIMESTAMP). */
    int64_t off, ts;
    CHECK(log_max_timestamp(log, &off, &ts) == 0);
    CHECK_EQ_INT(ts, 1000 + 32 + 2);
    CHECK_EQ_INT(off, 98);
    CHECK(log_offset_for_timestamp(log, 1000 + 20, &off, &ts) == 0);
    CHECK_EQ_INT(off, 56); /* batch 18 holds timestamps 1018..1020 at offsets 54..56 */
    /* The same leader bytes again, from 99 on: the logs match in full. */
    size_t from = batches_prefix(all, len, 33);
    CHECK(replicate(log, all + from, len - from, 3) == 0);
    CHECK(holds_prefix(log, leader, 240));
    CHECK(same_epochs(leader, log, 6));
    /* Cut exactly at a segment's base: that segment goes too; the previous one is active. */
    int64_t base = -1;
    for (int64_t b = 121; b < 180; b++) /* inside epoch 3 (120..179) */
        if (segment_exists(dir, "foll", b))
            base = b;
    CHECK(base > 120);
    CHECK(log_truncate_to(log, base) == 0);
    CHECK(holds_prefix(log, leader, base));
    CHECK(!segment_exists(dir, "foll", base));
    size_t nseg = log_segment_count(log);
    CHECK_EQ_INT(count_files(dir, "foll", ".log"), (int)nseg);
    log_close(log);
    struct log_open_state st = {.recovery_point = base, .high_watermark = 0, .clean_shutdown = 1};
    CHECK(log_open(dir, "foll", 0, &cfg, &st, &log) == 0);
    CHECK(holds_prefix(log, leader, base));
    CHECK_EQ_INT(log_segment_count(log), nseg);
    log_close(log);
    CHECK(log_open(dir, "foll", 0, &cfg, NULL, &log) == 0); /* unclean: full recovery */
    CHECK(holds_prefix(log, leader, base));
    CHECK_EQ_INT(log_latest_epoch(log), 3);
    int64_t eo;
    int32_t ee;
    CHECK(log_end_offset_for_epoch(log, 2, &eo, &ee) == 0 && eo == 120 && ee == 2);
    CHECK(log_end_offset_for_epoch(log, 3, &eo, &ee) == 0 && eo == base && ee == 3);
    free(all);
    log_close(log);
    log_close(leader);
}

/* Every .log file of topic-0 under dir with a base below 400 is the same (name and bytes)
 * under dir2/topic2. */
static bool same_segment_files(const char *dir, const char *topic, const char *topic2)
{
    int n = 0;
    for (int64_t base = 0; base < 400; base++) {
        bool a = segment_exists(dir, topic, base), b = segment_exists(dir, topic2, base);
        if (a != b)
            return false;
        if (!a)
            continue;
        char pa[600], pb[600];
        snprintf(pa, sizeof(pa), "%s/%s-0/%020lld.log", dir, topic, (long long)base);
        snprintf(pb, sizeof(pb), "%s/%s-0/%020lld.log", dir, topic2, (long long)base);
        size_t la, lb;
        uint8_t *fa = file_bytes(pa, &la), *fb = file_bytes(pb, &lb);
        bool same = fa && fb && la == lb && memcmp(fa, fb, la) == 0;
        free(fa);
        free(fb);
        if (!same)
            return false;
        n++;
    }
    return n > 0;
}

/*
 * A deposed leader rolled a segment for a batch of its own (its unreplicated tail) that the
 * new leader never had; the new leader's next batch at that offset fitted its current
 * segment. Truncating to the segment's base drops the whole segment, so that refetching the
 * leader's batches rebuilds the leader's segment files byte for byte.
 */
TEST(test_truncate_at_own_roll_keeps_the_leaders_segment_layout)
{
    char *dir = tmpdir_make();
    struct log_config cfg = small_segments();
    struct log *leader, *log;
    CHECK(log_open(dir, "lead", 0, &cfg, NULL, &leader) == 0);
    CHECK(log_open(dir, "foll", 0, &cfg, NULL, &log) == 0);
    for (int i = 0; i < 5; i++) /* ~3.4 KiB of the 4 KiB segment */
        CHECK(append_epoch(leader, 1, 600, 1000 + i, 1) == i);
    size_t len;
    uint8_t *all = read_all(leader, 0, &len);
    CHECK(replicate(log, all, len, 1) == 0);
    free(all);
    CHECK(same_segment_files(dir, "lead", "foll"));
    /* The old leader's own tail: a batch too big for the segment rolls one at 5. */
    CHECK(append_epoch(log, 1, 1500, 2000, 1) == 5);
    CHECK(append_epoch(log, 2, 100, 2001, 1) == 6);
    CHECK(segment_exists(dir, "foll", 5));
    /* The new leader's batches from 5 on: the first small ones still fit segment 0. */
    for (int i = 0; i < 30; i++)
        CHECK(append_epoch(leader, 1, 300 + 37 * (i % 7), 3000 + i, 2) == 5 + i);
    CHECK(!segment_exists(dir, "lead", 5));
    CHECK(log_segment_count(leader) > 2);
    CHECK(log_truncate_to(log, 5) == 0); /* where the diverging epoch ends */
    CHECK(holds_prefix(log, leader, 5));
    CHECK_EQ_INT(log_segment_count(log), 1);
    CHECK(!segment_exists(dir, "foll", 5));
    CHECK_EQ_INT(log_latest_epoch(log), 1);
    /* Refetch, one leader segment's batches at a time as Fetch serves them. */
    uint8_t *rest = read_all(leader, 5, &len);
    CHECK(rest != NULL);
    CHECK(replicate(log, rest, len, 1) == 0);
    free(rest);
    CHECK(holds_prefix(log, leader, 35));
    CHECK_EQ_INT(log_segment_count(log), log_segment_count(leader));
    CHECK(same_segment_files(dir, "lead", "foll"));
    CHECK(same_epochs(leader, log, 3));
    /* A cut inside the first segment at its base restarts it empty, as before. */
    CHECK(log_truncate_to(log, 0) == 0);
    CHECK_EQ_INT(log_end_offset(log), 0);
    CHECK(segment_exists(dir, "foll", 0));
    log_close(log);
    log_close(leader);
}

static int hook_calls;
static void count_hook(struct log *log, void *arg)
{
    (void)log;
    (void)arg;
    hook_calls++;
}

TEST(test_truncate_fully_and_start_at_restarts_empty)
{
    char *dir = tmpdir_make();
    struct log_config cfg = small_segments();
    struct log *log;
    CHECK(log_open(dir, "f", 0, &cfg, NULL, &log) == 0);
    log_set_start_offset_hook(log, count_hook, NULL);
    hook_calls = 0;
    for (int i = 0; i < 40; i++)
        CHECK(append_epoch(log, 3, 200, 1000 + i, 2) == i * 3);
    log_set_high_watermark(log, 100);
    CHECK(log_truncate_fully_and_start_at(log, 5000) == 0); /* past the end */
    CHECK_EQ_INT(hook_calls, 1);
    CHECK_EQ_INT(log_start_offset(log), 5000);
    CHECK_EQ_INT(log_end_offset(log), 5000);
    CHECK_EQ_INT(log_high_watermark(log), 5000);
    CHECK_EQ_INT(log_recovery_point(log), 5000);
    CHECK_EQ_INT(log_segment_count(log), 1);
    CHECK_EQ_INT(log_latest_epoch(log), -1);
    CHECK_EQ_INT(count_files(dir, "f", ".log"), 0); /* every old segment is gone */
    struct log_read_result r;
    CHECK_EQ_INT(log_read(log, 10, 1000, INT64_MAX, true, &r), LOG_ERR_OFFSET_OUT_OF_RANGE);
    log_read_release(&r);
    size_t la;
    uint8_t *a = stored_batch(4, 5000, 9, &la);
    struct log_append_info info;
    CHECK(log_append_replica(log, a, la, &info) == 0);
    CHECK_EQ_INT(info.segment_base, 5000);
    CHECK_EQ_INT(info.log_start_offset, 5000);
    CHECK_EQ_INT(log_latest_epoch(log), 9);
    /* Below the end and at the segment's own base (its file name is reused). */
    CHECK(log_truncate_fully_and_start_at(log, 5000) == 0);
    CHECK_EQ_INT(log_end_offset(log), 5000);
    CHECK_EQ_INT(hook_calls, 1); /* the start did not move */
    CHECK(log_append_replica(log, a, la, &info) == 0);
    CHECK_EQ_INT(append_epoch(log, 2, 10, 2000, 10), 5004);
    /* truncate_to below the first segment's base restarts the log there (Kafka). */
    CHECK(log_truncate_to(log, 4000) == 0);
    CHECK_EQ_INT(log_start_offset(log), 4000);
    CHECK_EQ_INT(log_end_offset(log), 4000);
    CHECK_EQ_INT(hook_calls, 2);
    record_batch_set_base_offset(a, 4000);
    CHECK(log_append_replica(log, a, la, &info) == 0);
    free(a);
    log_close(log);
    struct log_open_state st = {.recovery_point = 4004,
                                .log_start_offset = 4000,
                                .high_watermark = 4004,
                                .clean_shutdown = 1};
    CHECK(log_open(dir, "f", 0, &cfg, &st, &log) == 0);
    CHECK_EQ_INT(log_start_offset(log), 4000);
    CHECK_EQ_INT(log_end_offset(log), 4004);
    CHECK_EQ_INT(log_latest_epoch(log), 9);
    log_close(log);
    st.clean_shutdown = 0;
    st.recovery_point = 0;
    CHECK(log_open(dir, "f", 0, &cfg, &st, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), 4004);
    log_close(log);
}

struct reader_arg {
    struct log *log;
    _Atomic bool stop;
    _Atomic long reads, bad;
};

/* Reads random offsets and checks every byte it could read is whole, valid batches. */
static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    unsigned seed = 7;
    uint8_t *buf = malloc(1 << 16);
    while (!atomic_load(&a->stop)) {
        int64_t end = log_end_offset(a->log);
        int64_t off = end > 0 ? rand_r(&seed) % end : 0;
        struct log_read_result r;
        int rc = log_read(a->log, off, 1 << 15, INT64_MAX, true, &r);
        if (rc == 0 && r.range.length > 0) {
            ssize_t n = pread(r.range.fd, buf, (size_t)r.range.length, r.range.position);
            /* A range cut after log_read returned comes up short; what is read is valid. */
            if (n == r.range.length &&
                record_batches_validate(buf, (size_t)n, RECORD_VALIDATE_STORED, 0) < 0)
                atomic_fetch_add(&a->bad, 1);
        } else if (rc < 0 && rc != LOG_ERR_OFFSET_OUT_OF_RANGE) {
            atomic_fetch_add(&a->bad, 1);
        }
        log_read_release(&r);
        atomic_fetch_add(&a->reads, 1);
    }
    free(buf);
    return NULL;
}

TEST(test_truncate_with_concurrent_readers)
{
    char *dir = tmpdir_make();
    struct log_config cfg = small_segments();
    struct log *leader, *log;
    CHECK(log_open(dir, "lead", 0, &cfg, NULL, &leader) == 0);
    CHECK(log_open(dir, "foll", 0, &cfg, NULL, &log) == 0);
    for (int i = 0; i < 200; i++)
        CHECK(append_epoch(leader, 3, 200, 1000 + i, 1 + i / 50) == i * 3);
    size_t len;
    uint8_t *all = read_all(leader, 0, &len);
    struct reader_arg a = {.log = log};
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        pthread_create(&t[k], NULL, reader_main, &a);
    for (int round = 0; round < 20; round++) {
        CHECK(replicate(log, all, len, 5) == 0);
        for (int64_t cut = 590; cut > 0; cut -= 37) /* downwards: pinned ranges only shrink */
            CHECK(log_truncate_to(log, cut) == 0);
        CHECK(log_truncate_fully_and_start_at(log, 0) == 0);
    }
    atomic_store(&a.stop, true);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    printf("  # %ld concurrent reads\n", (long)atomic_load(&a.reads));
    CHECK_EQ_INT(atomic_load(&a.bad), 0);
    CHECK(replicate(log, all, len, 7) == 0);
    CHECK(holds_prefix(log, leader, 600));
    free(all);
    log_close(log);
    log_close(leader);
}

TEST_MAIN
