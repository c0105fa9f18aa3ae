/* Retention by time, size and log start offset; DeleteRecords; delayed removal of .deleted. */
#include <dirent.h>
#include <errno.h>

#include "storage/cleaner.h"
#include "storage/log.h"
#include "test.h"
#include "test_storage_util.h"

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), m = strlen(suffix);
        n += l > m && strcmp(e->d_name + l - m, suffix) == 0;
    }
    if (d)
        closedir(d);
    return n;
}

/* A log with 10 segments of 10 batches each; batch i has timestamp 1000 * i. */
static struct log *make_log(const char *dir, struct log_config *cfg)
{
    struct log *log;
    if (log_open(dir, "t", 0, cfg, NULL, &log) < 0)
        return NULL;
    size_t len;
    free(test_batch(1, 100, 0, &len));
    cfg->segment_bytes = (int64_t)len * 10;
    log_set_config(log, cfg);
    for (int i = 0; i < 100; i++)
        test_append(log, 1, 100, 1000 * i);
    log_set_high_watermark(log, 100);
    return log;
}

TEST(test_retention_by_time_uses_segment_largest_timestamp)
{
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    cfg.retention_ms = 50000;
    cfg.file_delete_delay_ms = 1000;
    struct log *log = make_log(dir, &cfg);
    CHECK(log);
    CHECK_EQ_INT(log_segment_count(log), 10);
    /* now = 100000: segments whose largest timestamp < 50000 go: 0..4 (max 9000..49000). */
    CHECK_EQ_INT(log_apply_retention(log, 100000), 5);
    CHECK_EQ_INT(log_segment_count(log), 5);
    CHECK_EQ_INT(log_start_offset(log), 50);
    char pdir[512];
    snprintf(pdir, sizeof(pdir), "%s/t-0", dir);
    CHECK_EQ_INT(count_files(pdir, ".log.deleted"), 5);
    CHECK_EQ_INT(count_files(pdir, ".index.deleted"), 5);
    struct log_read_result r;
    CHECK_EQ_INT(log_read(log, 10, 100, INT64_MAX, true, &r), LOG_ERR_OFFSET_OUT_OF_RANGE);
    log_read_release(&r);
    log_purge_deleted(log, 100500, false); /* delay not over */
    CHECK_EQ_INT(count_files(pdir, ".deleted"), 15);
    log_purge_deleted(log, 101000, false);
    CHECK_EQ_INT(count_files(pdir, ".deleted"), 0);
    /* Far in the future everything is old, but the active segment stays. */
    CHECK_EQ_INT(log_apply_retention(log, 1LL << 40), 4);
    CHECK_EQ_INT(log_segment_count(log), 1);
    CHECK_EQ_INT(log_start_offset(log), 90);
    log_close(log);
}

TEST(test_retention_keeps_segments_at_or_above_the_high_watermark)
{
    /* Everything is old enough, but only offsets below the high watermark (35) are
     * replicated: segments 0..2 (offsets 0..29, the next one starting at 30 <= 35) go,
     * segment 3 (30..39) stays although it is past retention.ms. */
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    cfg.retention_ms = 1;
    struct log *log = make_log(dir, &cfg);
    CHECK(log);
    log_set_high_watermark(log, 35);
    CHECK_EQ_INT(log_apply_retention(log, 1000000), 3);
    CHECK_EQ_INT(log_start_offset(log), 30);
    log_set_high_watermark(log, 100);
    CHECK_EQ_INT(log_apply_retention(log, 1000000), 6); /* the active segment stays */
    CHECK_EQ_INT(log_start_offset(log), 90);
    log_close(log);
    tmpdir_remove(dir);
}

TEST(test_retention_by_bytes_keeps_at_most_limit)
{
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    struct log *log = make_log(dir, &cfg);
    CHECK(log);
    int64_t seg = log_size_bytes(log) / 10;
    cfg.retention_bytes = seg * 3 + seg / 2;
    log_set_config(log, &cfg);
    CHECK_EQ_INT(log_apply_retention(log, 0), 6); /* 10 segments -> 4 (3.5 allowed, whole only) */
    CHECK(log_size_bytes(log) <= seg * 4);
    CHECK_EQ_INT(log_start_offset(log), 60);
    log_close(log);
}

TEST(test_delete_records_moves_start_and_deletes_whole_segments_below)
{
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    cfg.retention_ms = -1;
    struct log *log = make_log(dir, &cfg);
    CHECK(log);
    CHECK_EQ_INT(log_delete_records(log, 101, 0), LOG_ERR_OFFSET_OUT_OF_RANGE);
    CHECK(log_delete_records(log, 35, 0) == 0);
    CHECK_EQ_INT(log_start_offset(log), 35);
    CHECK_EQ_INT(log_segment_count(log), 7); /* 0-9, 10-19, 20-29 gone; 30-39 kept */
    struct log_read_result r;
    CHECK_EQ_INT(log_read(log, 34, 100, INT64_MAX, true, &r), LOG_ERR_OFFSET_OUT_OF_RANGE);
    log_read_release(&r);
    CHECK(log_read(log, 35, 100, INT64_MAX, true, &r) == 0);
    CHECK_EQ_INT(r.first_offset, 35);
    log_read_release(&r);
    CHECK(log_delete_records(log, 20, 0) == 0); /* never moves back */
    CHECK_EQ_INT(log_start_offset(log), 35);
    log_close(log);
}

TEST(test_reader_keeps_deleted_segment_readable_until_release)
{
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    cfg.retention_ms = 1;
    cfg.file_delete_delay_ms = 0;
    struct log *log = make_log(dir, &cfg);
    CHECK(log);
    struct log_read_result r;
    CHECK(log_read(log, 0, 1 << 20, INT64_MAX, false, &r) == 0);
    CHECK(r.range.length > 0);
    CHECK(log_apply_retention(log, 1LL << 40) == 9);
    log_purge_deleted(log, 1LL << 40, false); /* unlinked while the reader holds the fd */
    uint8_t buf[64];
    CHECK(pread(r.range.fd, buf, sizeof(buf), r.range.position) == (ssize_t)sizeof(buf));
    CHECK_EQ_INT(buf[16], 2); /* still a magic-2 batch */
    log_read_release(&r);
    log_close(log);
}

static int compactions;

static int count_compaction(struct log *log, int64_t now, void *arg)
{
    (void)log;
    (void)now;
    (void)arg;
    compactions++;
    return 0;
}

TEST(test_cleaner_pass_applies_retention_and_compaction_hook)
{
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    cfg.retention_ms = 50000;
    cfg.compact = true;
    struct log *log = make_log(dir, &cfg);
    CHECK(log);
    struct log_cleaner_config cc = log_cleaner_config_defaults();
    cc.compact = count_compaction;
    struct log_cleaner *c;
    CHECK(log_cleaner_create(&cc, &c) == 0);
    CHECK(log_cleaner_add(c, log) == 0);
    CHECK_EQ_INT(log_cleaner_run_once(c, 100000), 5);
    CHECK_EQ_INT(compactions, 1);
    log_cleaner_remove(c, log);
    log_cleaner_destroy(c);
    log_close(log);
}

TEST_MAIN
