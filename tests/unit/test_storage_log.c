/* Partition log: append/read round trips, rolls, indexes, timestamps, reopen, many segments. */
#include <errno.h>
#include <time.h>

#include "base/clock.h"
#include "record/byteorder.h"
#include "record/record_batch.h"
#include "storage/log.h"
#include "test.h"
#include "test_storage_util.h"

/* Reads the range of a read result and checks it holds whole valid batches starting at the
 * batch containing `offset`; returns the number of batches or -1. */
static int verify_range(const struct log_read_result *r, int64_t offset)
{
    uint8_t *buf = malloc((size_t)r->range.length);
    if (pread(r->range.fd, buf, (size_t)r->range.length, r->range.position) != r->range.length)
        return -1;
    int n = 0;
    size_t pos = 0;
    int64_t expect = -1;
    while (pos < (size_t)r->range.length) {
        struct record_batch_header h;
        if (record_batch_validate(buf + pos, (size_t)r->range.length - pos, RECORD_VALIDATE_STORED,
                                  0, &h) < 0)
            return -1;
        if (n == 0 && (h.base_offset > offset || record_batch_last_offset(&h) < offset))
            return -1;
        if (expect >= 0 && h.base_offset != expect)
            return -1;
        expect = record_batch_last_offset(&h) + 1;
        pos += record_batch_size(&h);
        n++;
    }
    free(buf);
    return expect == r->next_offset ? n : -1;
}

static struct log_config small_config(void)
{
    struct log_config c = log_config_defaults();
    c.segment_bytes = 64 * 1024;
    c.segment_index_bytes = 64 * 1024;
    return c;
}

TEST(test_log_append_read_round_trip_across_rolls)
{
    char *dir = tmpdir_make();
    struct log_config cfg = small_config();
    struct log *log;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    for (int i = 0; i < 300; i++)
        CHECK_EQ_INT(test_append(log, 10, 100, 1000 + i * 10), i * 10);
    CHECK_EQ_INT(log_end_offset(log), 3000);
    CHECK(log_segment_count(log) > 5);
    log_set_high_watermark(log, 3000);
    for (int64_t off = 0; off < 3000; off += 37) {
        struct log_read_result r;
        CHECK(log_read(log, off, 8192, log_high_watermark(log), false, &r) == 0);
        CHECK(r.range.length > 0 && r.range.length <= 8192);
        CHECK(verify_range(&r, off) > 0);
        log_read_release(&r);
    }
    char p[512];
    snprintf(p, sizeof(p), "%s/t-0/00000000000000000000.log", dir);
    CHECK(file_size(p) > 0 && file_size(p) <= 64 * 1024);
    snprintf(p, sizeof(p), "%s/t-0/00000000000000000000.index", dir);
    CHECK(file_size(p) % 8 == 0 && file_size(p) < 64 * 1024); /* trimmed on roll */
    log_close(log);
}

TEST(test_log_read_stops_below_max_offset_and_honours_max_bytes)
{
    char *dir = tmpdir_make();
    struct log *log;
    CHECK(log_open(dir, "t", 1, NULL, NULL, &log) == 0);
    for (int i = 0; i < 10; i++)
        CHECK(test_append(log, 5, 200, 1000) >= 0);
    struct log_read_result r;
    CHECK(log_read(log, 0, 1 << 20, 0, false, &r) == 0); /* HW 0: nothing visible */
    CHECK_EQ_INT(r.range.length, 0);
    log_read_release(&r);
    CHECK(log_read(log, 7, 1 << 20, 20, false, &r) == 0);
    CHECK_EQ_INT(r.first_offset, 5);
    CHECK_EQ_INT(r.next_offset, 20);
    CHECK_EQ_INT(verify_range(&r, 7), 3);
    log_read_release(&r);
    CHECK(log_read(log, 0, 10, INT64_MAX, false, &r) == 0); /* too small, no min_one */
    CHECK_EQ_INT(r.range.length, 0);
    log_read_release(&r);
    CHECK(log_read(log, 0, 10, INT64_MAX, true, &r) == 0); /* KIP-74 */
    CHECK_EQ_INT(verify_range(&r, 0), 1);
    log_read_release(&r);
    CHECK_EQ_INT(log_read(log, 51, 100, INT64_MAX, false, &r), LOG_ERR_OFFSET_OUT_OF_RANGE);
    log_read_release(&r);
    CHECK(log_read(log, 50, 100, INT64_MAX, false, &r) == 0); /* at the end: empty */
    CHECK_EQ_INT(r.range.length, 0);
    log_read_release(&r);
    CHECK_EQ_INT(log_read(log, -1, 100, INT64_MAX, false, &r), LOG_ERR_OFFSET_OUT_OF_RANGE);
    log_read_release(&r);
    log_close(log);
}

TEST(test_offset_index_is_sparse_and_lookup_finds_containing_batch)
{
    char *dir = tmpdir_make();
    struct log *log;
    CHECK(log_open(dir, "t", 0, NULL, NULL, &log) == 0);
    for (int i = 0; i < 400; i++) /* ~1.1 KiB batches: an entry every ~4 batches */
        CHECK(test_append(log, 1, 1000, 5000 + i) == i);
    log_close(log);
    char p[512];
    snprintf(p, sizeof(p), "%s/t-0/00000000000000000000.index", dir);
    size_t sz = file_size(p);
    CHECK(sz % 8 == 0);
    CHECK(sz / 8 >= 80 && sz / 8 <= 120); /* 400 * ~1.1 KiB / 4 KiB */
    snprintf(p, sizeof(p), "%s/t-0/00000000000000000000.timeindex", dir);
    CHECK(file_size(p) % 12 == 0 && file_size(p) > 0);
    struct log_open_state st = {
        .recovery_point = 400, .log_start_offset = 0, .clean_shutdown = true};
    CHECK(log_open(dir, "t", 0, NULL, &st, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), 400);
    for (int64_t off = 0; off < 400; off++) {
        struct log_read_result r;
        CHECK(log_read(log, off, 1, INT64_MAX, true, &r) == 0);
        CHECK_EQ_INT(r.first_offset, off);
        CHECK_EQ_INT(verify_range(&r, off), 1);
        log_read_release(&r);
    }
    log_close(log);
}

TEST(test_offset_for_timestamp_returns_first_record_at_or_after)
{
    char *dir = tmpdir_make();
    struct log_config cfg = small_config();
    struct log *log;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    /* Batch i has records with timestamps 10000 + 10*i + j, j < 10. */
    for (int i = 0; i < 300; i++)
        CHECK(test_append(log, 10, 100, 10000 + 10 * i) == 10 * i);
    int64_t off, ts;
    CHECK(log_offset_for_timestamp(log, 0, &off, &ts) == 0);
    CHECK_EQ_INT(off, 0);
    CHECK_EQ_INT(ts, 10000);
    for (int64_t t = 10000; t < 13000; t += 97) {
        CHECK(log_offset_for_timestamp(log, t, &off, &ts) == 0);
        CHECK_EQ_INT(off, t - 10000);
        CHECK_EQ_INT(ts, t);
    }
    CHECK_EQ_INT(log_offset_for_timestamp(log, 13000, &off, &ts), -ENOENT);
    CHECK(log_max_timestamp(log, &off, &ts) == 0);
    CHECK_EQ_INT(ts, 12999);
    CHECK_EQ_INT(off, 2999);
    log_close(log);
}

TEST(test_log_append_time_sets_timestamps_and_epoch_checkpoint)
{
    char *dir = tmpdir_make();
    struct log *log;
    CHECK(log_open(dir, "t", 0, NULL, NULL, &log) == 0);
    size_t len;
    uint8_t *b = test_batch(3, 10, 100, &len);
    struct log_append_info info;
    CHECK(log_append(log, b, len, 7, 555555, true, &info) == 0);
    CHECK_EQ_INT(info.log_append_time, 555555);
    struct record_batch_header h;
    CHECK(record_batch_validate(b, len, RECORD_VALIDATE_STORED, 0, &h) == 0);
    CHECK_EQ_INT(h.partition_leader_epoch, 7);
    CHECK_EQ_INT(h.max_timestamp, 555555);
    free(b);
    CHECK(test_append(log, 2, 10, 100) == 3); /* epoch 0 < 7: not recorded */
    int64_t end;
    int32_t ep;
    CHECK(log_end_offset_for_epoch(log, 7, &end, &ep) == 0);
    CHECK_EQ_INT(end, 5);
    CHECK_EQ_INT(ep, 7);
    log_close(log);
    char p[512];
    snprintf(p, sizeof(p), "%s/t-0/leader-epoch-checkpoint", dir);
    FILE *f = fopen(p, "r");
    CHECK(f);
    char text[64] = {0};
    CHECK(fread(text, 1, sizeof(text) - 1, f) > 0);
    fclose(f);
    CHECK(strcmp(text, "0\n1\n7 0\n") == 0);
}

/* Kafka's LeaderEpochFileCache.endOffsetFor, case by case. */
TEST(test_end_offset_for_epoch_follows_kafka)
{
    char *dir = tmpdir_make();
    struct log *log;
    CHECK(log_open(dir, "e", 0, NULL, NULL, &log) == 0);
    int32_t epochs[] = {2, 2, 5, 8};
    for (int i = 0; i < 4; i++) { /* epoch 2 at 0..5, 5 at 6..8, 8 at 9..11 */
        size_t len;
        uint8_t *b = test_batch(3, 10, 100, &len);
        struct log_append_info info;
        CHECK(log_append(log, b, len, epochs[i], 1000, false, &info) == 0);
        free(b);
    }
    int64_t end;
    int32_t ep;
    CHECK(log_end_offset_for_epoch(log, 8, &end, &ep) == 0);
    CHECK_EQ_INT(ep, 8);
    CHECK_EQ_INT(end, 12); /* the latest epoch ends at the log end */
    CHECK(log_end_offset_for_epoch(log, 5, &end, &ep) == 0);
    CHECK_EQ_INT(ep, 5);
    CHECK_EQ_INT(end, 9);
    CHECK(log_end_offset_for_epoch(log, 4, &end, &ep) == 0); /* unknown, between 2 and 5 */
    CHECK_EQ_INT(ep, 2);
    CHECK_EQ_INT(end, 6);
    CHECK(log_end_offset_for_epoch(log, 1, &end, &ep) == 0); /* before every known epoch */
    CHECK_EQ_INT(ep, 1);
    CHECK_EQ_INT(end, 0);
    CHECK(log_end_offset_for_epoch(log, 9, &end, &ep) == -ENOENT);
    CHECK(log_end_offset_for_epoch(log, -1, &end, &ep) == -ENOENT);
    log_close(log);
}

TEST(test_log_reopen_after_clean_close_keeps_offsets)
{
    char *dir = tmpdir_make();
    struct log_config cfg = small_config();
    struct log *log;
    CHECK(log_open(dir, "t", 3, &cfg, NULL, &log) == 0);
    for (int i = 0; i < 100; i++)
        CHECK(test_append(log, 10, 100, 1000) == i * 10);
    size_t nseg = log_segment_count(log);
    log_close(log);
    struct log_open_state st = {.recovery_point = 1000,
                                .log_start_offset = 0,
                                .high_watermark = 900,
                                .clean_shutdown = true};
    CHECK(log_open(dir, "t", 3, &cfg, &st, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), 1000);
    CHECK_EQ_INT(log_high_watermark(log), 900);
    CHECK_EQ_INT(log_segment_count(log), nseg);
    CHECK(test_append(log, 1, 10, 1000) == 1000);
    log_close(log);
    CHECK(log_open(dir, "t", 3, &cfg, NULL, &log) == 0); /* unclean: full recovery */
    CHECK_EQ_INT(log_end_offset(log), 1001);
    log_close(log);
}

TEST(test_segment_lookup_fast_with_10000_segments)
{
    char *dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    cfg.segment_bytes = 100; /* every batch rolls */
    cfg.segment_index_bytes = 4096;
    struct log *log;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    size_t len;
    uint8_t *b = test_batch(1, 50, 1000, &len);
    for (int i = 0; i < 10000; i++) {
        struct log_append_info info;
        CHECK(log_append(log, b, len, -1, 1000, false, &info) == 0);
    }
    free(b);
    CHECK_EQ_INT(log_segment_count(log), 10000);
    int64_t t0 = clock_mono_ns();
    unsigned seed = 1;
    for (int i = 0; i < 20000; i++) {
        int64_t off = rand_r(&seed) % 10000;
        struct log_read_result r;
        CHECK(log_read(log, off, 1 << 20, INT64_MAX, false, &r) == 0);
        CHECK_EQ_INT(r.first_offset, off);
        CHECK_EQ_INT(r.next_offset, off + 1); /* data from one segment */
        log_read_release(&r);
    }
    int64_t per_read_ns = (clock_mono_ns() - t0) / 20000;
    printf("  # %lld ns per read over 10000 segments (includes lazy opens)\n",
           (long long)per_read_ns);
    /* No time bound here (speed lives in bench/): the structural check is that random reads
     * over 10,000 segments keep only a bounded number of them open. */
    CHECK(log_close_idle_segments(log, INT64_MAX) <= 64);
    log_close(log);
}

TEST_MAIN
