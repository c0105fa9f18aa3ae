/* Recovery: torn tails, flipped bytes, zero-filled tails, bad indexes, parallel dir loading. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "record/record_batch.h"
#include "storage/log.h"
#include "storage/checkpoint.h"
#include "storage/log_manager.h"
#include "test.h"
#include "test_storage_util.h"

static char seg_path[512];

static const char *seg_file(const char *dir, const char *part, int64_t base, const char *suffix)
{
    snprintf(seg_path, sizeof(seg_path), "%s/%s/%020lld%s", dir, part, (long long)base, suffix);
    return seg_path;
}

/* Writes 100 batches of 5 records (offsets 0..499) to t-0 and closes the log uncleanly
 * (log_close still runs, but reopening without state means a full recovery). */
static char *make_log(struct log_config *cfg, size_t *batch_len)
{
    char *dir = tmpdir_make();
    struct log *log;
    if (log_open(dir, "t", 0, cfg, NULL, &log) < 0)
        return NULL;
    for (int i = 0; i < 100; i++)
        test_append(log, 5, 100, 1000 + i);
    size_t len;
    free(test_batch(5, 100, 0, &len));
    *batch_len = len;
    log_close(log);
    return dir;
}

/* Reads every offset of the log and checks each returned batch is valid. */
static int64_t readable_end(struct log *log)
{
    int64_t off = log_start_offset(log);
    while (off < log_end_offset(log)) {
        struct log_read_result r;
        if (log_read(log, off, 1 << 20, INT64_MAX, true, &r) < 0 || r.range.length == 0)
            break;
        uint8_t *buf = malloc((size_t)r.range.length);
        pread(r.range.fd, buf, (size_t)r.range.length, r.range.position);
        if (record_batches_validate(buf, (size_t)r.range.length, RECORD_VALIDATE_STORED, 0) < 0)
            off = -1;
        else
            off = r.next_offset;
        free(buf);
        log_read_release(&r);
        if (off < 0)
            return -1;
    }
    return off;
}

static int truncate_file(const char *p, off_t size)
{
    return truncate(p, size);
}

TEST(test_recovery_truncates_torn_tail)
{
    size_t bl;
    char *dir = make_log(NULL, &bl);
    CHECK(dir);
    const char *p = seg_file(dir, "t-0", 0, ".log");
    size_t full = file_size(p);
    CHECK_EQ_INT(full, 100 * bl);
    CHECK(truncate_file(p, (off_t)(full - bl / 2)) == 0); /* half of the last batch */
    struct log *log;
    CHECK(log_open(dir, "t", 0, NULL, NULL, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), 495);
    CHECK_EQ_INT(file_size(seg_file(dir, "t-0", 0, ".log")), 99 * bl);
    CHECK_EQ_INT(readable_end(log), 495);
    CHECK(test_append(log, 5, 100, 5000) == 495); /* appends continue after the cut */
    CHECK_EQ_INT(readable_end(log), 500);
    log_close(log);
}

TEST(test_recovery_truncates_at_flipped_byte_and_never_serves_it)
{
    size_t bl;
    char *dir = make_log(NULL, &bl);
    CHECK(dir);
    const char *p = seg_file(dir, "t-0", 0, ".log");
    int fd = open(p, O_RDWR);
    uint8_t b;
    off_t where = (off_t)(50 * bl + 70); /* inside batch 50's records */
    CHECK(pread(fd, &b, 1, where) == 1);
    b ^= 0x10;
    CHECK(pwrite(fd, &b, 1, where) == 1);
    close(fd);
    struct log *log;
    CHECK(log_open(dir, "t", 0, NULL, NULL, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), 250);
    CHECK_EQ_INT(readable_end(log), 250);
    struct log_read_result r;
    CHECK_EQ_INT(log_read(log, 251, 100, INT64_MAX, true, &r), LOG_ERR_OFFSET_OUT_OF_RANGE);
    log_read_release(&r);
    log_close(log);
}

TEST(test_recovery_truncates_zero_filled_tail)
{
    size_t bl;
    char *dir = make_log(NULL, &bl);
    CHECK(dir);
    const char *p = seg_file(dir, "t-0", 0, ".log");
    size_t full = file_size(p);
    CHECK(truncate_file(p, (off_t)(full + 8192)) == 0); /* preallocated-looking zeros */
    struct log *log;
    CHECK(log_open(dir, "t", 0, NULL, NULL, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), 500);
    CHECK_EQ_INT(file_size(seg_file(dir, "t-0", 0, ".log")), full);
    log_close(log);
}

TEST(test_recovery_drops_segments_after_a_truncated_one)
{
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 8 * 1024;
    size_t bl;
    char *dir = make_log(&cfg, &bl);
    CHECK(dir);
    const char *p = seg_file(dir, "t-0", 0, ".log");
    size_t first = file_size(p);
    CHECK(truncate_file(p, (off_t)(first - 10)) == 0);
    struct log *log;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    CHECK_EQ_INT(log_segment_count(log), 1);
    CHECK_EQ_INT(log_end_offset(log), (first / bl - 1) * 5);
    CHECK_EQ_INT(readable_end(log), log_end_offset(log));
    log_close(log);
}

/* Damages the index of the first (closed) segment, reopens as after a clean shutdown (no
 * recovery), and checks reads over that segment still find every offset. */
static int check_index_damage(void (*damage)(const char *path))
{
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 32 * 1024;
    size_t bl;
    char *dir = make_log(&cfg, &bl);
    if (!dir)
        return -1;
    damage(seg_file(dir, "t-0", 0, ".index"));
    struct log_open_state st = {
        .recovery_point = 500, .log_start_offset = 0, .clean_shutdown = true};
    struct log *log;
    int rc = log_open(dir, "t", 0, &cfg, &st, &log);
    if (rc < 0)
        return -2;
    rc = log_segment_count(log) > 1 ? 0 : -3;
    for (int64_t off = 0; rc == 0 && off < 500; off += 3) {
        struct log_read_result r;
        if (log_read(log, off, 1, INT64_MAX, true, &r) < 0 || r.first_offset > off ||
            r.next_offset <= off)
            rc = -4;
        log_read_release(&r);
    }
    if (rc == 0 && readable_end(log) != 500)
        rc = -5;
    log_close(log);
    size_t isz = file_size(seg_file(dir, "t-0", 0, ".index"));
    if (rc == 0 && (isz == (size_t)-1 || isz % 8 != 0 || isz == 0))
        rc = -6; /* rebuilt and trimmed */
    return rc;
}

static void damage_remove(const char *p)
{
    unlink(p);
}

static void damage_empty(const char *p)
{
    truncate(p, 0);
}

static void damage_past_log(const char *p)
{
    int fd = open(p, O_WRONLY | O_APPEND);
    uint8_t e[8] = {0, 0, 0x7f, 0, 0x7f, 0, 0, 0}; /* huge offset, position past the log */
    write(fd, e, 8);
    close(fd);
}

static void damage_odd_size(const char *p)
{
    int fd = open(p, O_WRONLY | O_APPEND);
    write(fd, "abc", 3);
    close(fd);
}

TEST(test_index_missing_is_rebuilt)
{
    CHECK_EQ_INT(check_index_damage(damage_remove), 0);
}

TEST(test_index_empty_is_rebuilt)
{
    CHECK_EQ_INT(check_index_damage(damage_empty), 0);
}

TEST(test_index_pointing_past_log_is_rebuilt)
{
    CHECK_EQ_INT(check_index_damage(damage_past_log), 0);
}

TEST(test_index_with_non_multiple_size_is_rebuilt)
{
    CHECK_EQ_INT(check_index_damage(damage_odd_size), 0);
}

TEST(test_recovery_point_skips_earlier_segments)
{
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 16 * 1024;
    size_t bl;
    char *dir = make_log(&cfg, &bl);
    CHECK(dir);
    /* Flip a byte in the first segment: below the recovery point, so it is not scanned at
     * open (a full scan would truncate there and drop every later segment). */
    const char *p = seg_file(dir, "t-0", 0, ".log");
    int fd = open(p, O_RDWR);
    CHECK(pwrite(fd, "X", 1, 100) == 1);
    close(fd);
    struct log_open_state st = {.recovery_point = 400, .log_start_offset = 0};
    struct log *log;
    CHECK(log_open(dir, "t", 0, &cfg, &st, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), 500);
    CHECK_EQ_INT(log_recovery_point(log), 500);
    log_close(log);
}

TEST(test_log_manager_opens_dir_in_parallel_and_uses_clean_marker)
{
    char *dir = tmpdir_make();
    struct log_manager *m;
    CHECK(log_manager_open(dir, NULL, 4, &m) == 0);
    for (int p = 0; p < 20; p++) {
        struct log *log;
        CHECK(log_manager_create(m, p % 2 ? "orders" : "a.b-c", p, NULL, &log) == 0);
        for (int i = 0; i < p; i++)
            CHECK(test_append(log, 2, 10, 1000) == 2 * i);
        log_set_high_watermark(log, p);
    }
    CHECK(log_manager_get(m, "orders", 3) != NULL);
    CHECK(log_manager_get(m, "orders", 4) == NULL);
    log_manager_close(m);
    char p[512];
    snprintf(p, sizeof(p), "%s/.kafka_cleanshutdown", dir);
    CHECK(access(p, F_OK) == 0);
    snprintf(p, sizeof(p), "%s/recovery-point-offset-checkpoint", dir);
    struct checkpoint_entry *e;
    size_t n;
    CHECK(checkpoint_read_offsets(p, &e, &n) == 0);
    CHECK_EQ_INT(n, 20);
    CHECK_EQ_INT(checkpoint_find(e, n, "orders", 7, -1), 14);
    checkpoint_free_offsets(e, n);
    CHECK(log_manager_open(dir, NULL, 3, &m) == 0);
    snprintf(p, sizeof(p), "%s/.kafka_cleanshutdown", dir);
    CHECK(access(p, F_OK) != 0); /* removed at start: a crash now is unclean */
    CHECK_EQ_INT(log_manager_count(m), 20);
    for (int part = 0; part < 20; part++) {
        struct log *log = log_manager_get(m, part % 2 ? "orders" : "a.b-c", part);
        CHECK(log);
        CHECK_EQ_INT(log_end_offset(log), 2 * part);
        CHECK_EQ_INT(log_high_watermark(log), part);
    }
    log_manager_close(m);
}

/* log_retire_dir renames a partition directory "-delete" at once (a partition of the same name
 * created next starts empty); log_discard writes nothing into it; a "-delete" directory left
 * by a crash is removed when the log manager opens the dir, and is never loaded as a log. */
TEST(test_retired_log_dir_is_renamed_and_removed)
{
    char *dir = tmpdir_make();
    struct log_manager *m;
    CHECK(log_manager_open(dir, NULL, 2, &m) == 0);
    struct log *log;
    CHECK(log_manager_create(m, "gone", 0, NULL, &log) == 0);
    CHECK(test_append(log, 3, 10, 1000) == 0);
    CHECK(log_manager_remove(m, "gone", 0) == log);
    char *trash = log_retire_dir(log);
    CHECK(trash != NULL);
    char p[512];
    snprintf(p, sizeof(p), "%s/gone-0", dir);
    CHECK(access(p, F_OK) != 0);
    CHECK(strncmp(trash, p, strlen(p)) == 0 && strcmp(trash + strlen(trash) - 7, "-delete") == 0);
    struct log *fresh;
    CHECK(log_manager_create(m, "gone", 0, NULL, &fresh) == 0);
    CHECK_EQ_INT(log_end_offset(fresh), 0); /* the new partition starts empty */
    log_discard(log);
    CHECK(access(trash, F_OK) == 0); /* still there: a crash here leaves it to the next start */
    log_manager_close(m);
    CHECK(log_manager_open(dir, NULL, 2, &m) == 0);
    CHECK(access(trash, F_OK) != 0);
    CHECK_EQ_INT(log_manager_count(m), 1);
    CHECK_EQ_INT(log_end_offset(log_manager_get(m, "gone", 0)), 0);
    log_manager_close(m);
    free(trash);
}

TEST_MAIN
