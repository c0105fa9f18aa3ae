/*
 * Full filesystem. As root (CI) a 1 MiB tmpfs is mounted over a temporary directory; otherwise
 * RLIMIT_FSIZE makes writes past a size fail with EFBIG, which the log treats the same way.
 */
#include <errno.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include "record/record_batch.h"
#include "storage/log.h"
#include "test.h"
#include "test_storage_util.h"

static bool mounted;

static char *small_fs(void)
{
    char *dir = tmpdir_make();
    if (geteuid() == 0 && mount("tmpfs", dir, "tmpfs", 0, "size=1m") == 0) {
        mounted = true;
        return dir;
    }
    /* Not root: a file size limit stands in for the full disk. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {900 * 1024, RLIM_INFINITY};
    setrlimit(RLIMIT_FSIZE, &rl);
    return dir;
}

static void small_fs_remove(char *dir)
{
    if (mounted)
        umount2(dir, MNT_DETACH);
    else {
        struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &rl);
    }
    mounted = false;
}

static bool is_full_error(int rc)
{
    return rc == -ENOSPC || rc == -EFBIG || rc == -EDQUOT;
}

/* Every offset below end reads back as valid batches and the file holds nothing more. */
static int verify_all(struct log *log)
{
    int64_t off = log_start_offset(log);
    while (off < log_end_offset(log)) {
        struct log_read_result r;
        if (log_read(log, off, 1 << 20, INT64_MAX, true, &r) < 0 || r.range.length == 0)
            return -1;
        uint8_t *buf = malloc((size_t)r.range.length);
        int ok =
            pread(r.range.fd, buf, (size_t)r.range.length, r.range.position) == r.range.length &&
            record_batches_validate(buf, (size_t)r.range.length, RECORD_VALIDATE_STORED, 0) > 0;
        free(buf);
        off = r.next_offset;
        log_read_release(&r);
        if (!ok)
            return -2;
    }
    return 0;
}

TEST(test_append_on_full_filesystem_fails_cleanly_and_reads_keep_working)
{
    char *dir = small_fs();
    char filler[600];
    snprintf(filler, sizeof(filler), "%s/filler", dir);
    FILE *f = fopen(filler, "w");
    CHECK(f);
    static char junk[128 * 1024];
    fwrite(junk, 1, sizeof(junk), f);
    fclose(f);
    struct log_config cfg = log_config_defaults();
    cfg.segment_index_bytes = 4096;
    struct log *log;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    int rc = 0;
    int64_t appended = 0;
    while (rc == 0 && appended < 10000) {
        int64_t r = test_append(log, 10, 1000, 1000);
        rc = r < 0 ? (int)r : 0;
        appended++;
    }
    CHECK(is_full_error(rc));
    CHECK(!log_is_offline(log));
    int64_t end = log_end_offset(log);
    CHECK(end > 100);
    char p[600];
    snprintf(p, sizeof(p), "%s/t-0/00000000000000000000.log", dir);
    size_t size_after_fail = file_size(p);
    CHECK(is_full_error((int)test_append(log, 10, 1000, 1000))); /* still full, still online */
    CHECK_EQ_INT(log_end_offset(log), end);
    CHECK_EQ_INT(file_size(p), size_after_fail); /* no partial batch left behind */
    CHECK_EQ_INT(verify_all(log), 0);
    CHECK(unlink(filler) == 0); /* space comes back: appends resume */
    CHECK_EQ_INT(test_append(log, 10, 1000, 1000), end);
    CHECK_EQ_INT(verify_all(log), 0);
    log_close(log);
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0); /* full recovery finds no damage */
    CHECK_EQ_INT(log_end_offset(log), end + 10);
    CHECK_EQ_INT(verify_all(log), 0);
    log_close(log);
    small_fs_remove(dir);
}

TEST(test_roll_on_full_filesystem_fails_cleanly)
{
    char *dir = small_fs();
    struct log_config cfg = log_config_defaults();
    cfg.segment_index_bytes = 4096;
    cfg.segment_bytes = 50 * 1024;
    struct log *log;
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    int rc = 0;
    for (int i = 0; i < 10000 && rc == 0; i++) {
        int64_t r = test_append(log, 10, 1000, 1000);
        rc = r < 0 ? (int)r : 0;
    }
    CHECK(is_full_error(rc));
    CHECK(!log_is_offline(log));
    CHECK(log_segment_count(log) > 2);
    CHECK_EQ_INT(verify_all(log), 0);
    int64_t end = log_end_offset(log);
    log_close(log);
    CHECK(log_open(dir, "t", 0, &cfg, NULL, &log) == 0);
    CHECK_EQ_INT(log_end_offset(log), end);
    CHECK_EQ_INT(verify_all(log), 0);
    log_close(log);
    small_fs_remove(dir);
}

TEST_MAIN
