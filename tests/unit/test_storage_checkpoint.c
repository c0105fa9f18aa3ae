/* Checkpoint files: Kafka's text format, atomic replacement, strict parsing. */
#include <errno.h>

#include "storage/checkpoint.h"
#include "test.h"
#include "test_storage_util.h"

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static char *read_text(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

TEST(test_checkpoint_offsets_written_in_kafka_format)
{
    char *dir = tmpdir_make();
    char p[512];
    snprintf(p, sizeof(p), "%s/recovery-point-offset-checkpoint", dir);
    struct checkpoint_entry e[2] = {{"orders", 3, 88120}, {"a.b_c-d", 0, 0}};
    CHECK(checkpoint_write_offsets(p, e, 2) == 0);
    CHECK(strcmp(read_text(p), "0\n2\norders 3 88120\na.b_c-d 0 0\n") == 0);
    snprintf(p, sizeof(p), "%s/recovery-point-offset-checkpoint.tmp", dir);
    CHECK(access(p, F_OK) != 0); /* renamed away */
}

TEST(test_checkpoint_round_trip_and_whitespace_tolerant_read)
{
    char *dir = tmpdir_make();
    char p[512];
    snprintf(p, sizeof(p), "%s/ck", dir);
    CHECK(write_text(p, "0\n3\nt 0 5\n  t\t1   6\nu 2 -1\n") == 0);
    struct checkpoint_entry *e;
    size_t n;
    CHECK(checkpoint_read_offsets(p, &e, &n) == 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(checkpoint_find(e, n, "t", 1, 0), 6);
    CHECK_EQ_INT(checkpoint_find(e, n, "u", 2, 0), -1);
    CHECK_EQ_INT(checkpoint_find(e, n, "v", 2, 42), 42);
    checkpoint_free_offsets(e, n);
    struct epoch_entry ep[2] = {{0, 0}, {5, 1042}};
    CHECK(checkpoint_write_epochs(p, ep, 2) == 0);
    CHECK(strcmp(read_text(p), "0\n2\n0 0\n5 1042\n") == 0);
    struct epoch_entry *r;
    CHECK(checkpoint_read_epochs(p, &r, &n) == 0);
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(r[1].epoch, 5);
    CHECK_EQ_INT(r[1].start_offset, 1042);
    free(r);
}

TEST(test_checkpoint_rejects_bad_version_and_count_mismatch)
{
    char *dir = tmpdir_make();
    char p[512];
    snprintf(p, sizeof(p), "%s/ck", dir);
    const char *bad[] = {"1\n0\n", "0\n2\nt 0 5\n",    "0\n1\nt 0 5\nt 1 6\n", "0\n1\nt x 5\n",
                         "",       "0\n99999999999\n", "0\n1\nt 0\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(write_text(p, bad[i]) == 0);
        struct checkpoint_entry *e;
        size_t n;
        CHECK_EQ_INT(checkpoint_read_offsets(p, &e, &n), -EBADMSG);
    }
    struct checkpoint_entry *e;
    size_t n;
    snprintf(p, sizeof(p), "%s/missing", dir);
    CHECK_EQ_INT(checkpoint_read_offsets(p, &e, &n), -ENOENT);
}

/* The epoch reader shares the offsets reader's checks: version, count, and whole entries. */
TEST(test_checkpoint_epochs_reject_bad_entries_and_count_mismatch)
{
    char *dir = tmpdir_make();
    char p[512];
    snprintf(p, sizeof(p), "%s/leader-epoch-checkpoint", dir);
    const char *bad[] = {"1\n0\n",      "0\n2\n0 0\n",          "0\n1\n0 0\n1 5\n", "0\n1\n-1 5\n",
                         "0\n1\nx 5\n", "0\n1\n2147483648 0\n", "0\n1\n5\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(write_text(p, bad[i]) == 0);
        struct epoch_entry *e;
        size_t n;
        CHECK_EQ_INT(checkpoint_read_epochs(p, &e, &n), -EBADMSG);
    }
    CHECK(write_text(p, "0\n0\n") == 0);
    struct epoch_entry *e;
    size_t n;
    CHECK_EQ_INT(checkpoint_read_epochs(p, &e, &n), 0);
    CHECK_EQ_INT(n, 0);
    free(e);
}

TEST(test_checkpoint_atomic_write_keeps_old_file_when_interrupted)
{
    char *dir = tmpdir_make();
    char p[512], tmp[600];
    snprintf(p, sizeof(p), "%s/ck", dir);
    struct checkpoint_entry e[1] = {{"t", 0, 7}};
    CHECK(checkpoint_write_offsets(p, e, 1) == 0);
    /* A crash between writing the .tmp and the rename leaves a partial .tmp behind: the
     * checkpoint itself must still read as the old, complete content. */
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    CHECK(write_text(tmp, "0\n5\nt 0") == 0);
    struct checkpoint_entry *r;
    size_t n;
    CHECK(checkpoint_read_offsets(p, &r, &n) == 0);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(r[0].offset, 7);
    checkpoint_free_offsets(r, n);
    e[0].offset = 8; /* the next write replaces both */
    CHECK(checkpoint_write_offsets(p, e, 1) == 0);
    CHECK(strcmp(read_text(p), "0\n1\nt 0 8\n") == 0);
    CHECK(access(tmp, F_OK) != 0);
    /* Writing into a directory that does not exist fails and creates nothing. */
    snprintf(p, sizeof(p), "%s/nodir/ck", dir);
    CHECK(checkpoint_write_offsets(p, e, 1) < 0);
}

TEST_MAIN
