/* partition.metadata: Kafka's format (a Uuid as URL-safe base64 without padding), atomic
 * writes, strict reads. Expected strings are what Java's Uuid.toString gives for these ids
 * (Base64.getUrlEncoder().withoutPadding()). */
#include <errno.h>

#include "storage/partition_metadata.h"
#include "test.h"
#include "test_storage_util.h"

static int write_text(const char *dir, const char *text)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/partition.metadata", dir);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static const char *read_text(const char *dir)
{
    static char buf[256];
    char p[512];
    snprintf(p, sizeof(p), "%s/partition.metadata", dir);
    FILE *f = fopen(p, "r");
    if (!f)
        return NULL;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

TEST(test_partition_metadata_written_as_kafka_writes_it)
{
    char *dir = tmpdir_make();
    uint8_t id[16], back[16];
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)i;
    CHECK(partition_metadata_write(dir, id) == 0);
    CHECK(strcmp(read_text(dir), "version: 0\ntopic_id: AAECAwQFBgcICQoLDA0ODw") == 0);
    CHECK(partition_metadata_read(dir, back) == 0);
    CHECK(memcmp(id, back, 16) == 0);
    memset(id, 0xff, 16);
    CHECK(partition_metadata_write(dir, id) == 0); /* replaces the file */
    CHECK(strcmp(read_text(dir), "version: 0\ntopic_id: _____________________w") == 0);
    CHECK(partition_metadata_read(dir, back) == 0);
    CHECK(memcmp(id, back, 16) == 0);
}

TEST(test_partition_metadata_read_accepts_blanks_and_a_final_newline)
{
    char *dir = tmpdir_make();
    uint8_t id[16];
    CHECK(write_text(dir, "version:   0\ntopic_id:\tAAECAwQFBgcICQoLDA0ODw\n") == 0);
    CHECK(partition_metadata_read(dir, id) == 0);
    CHECK_EQ_INT(id[15], 15);
}

TEST(test_partition_metadata_read_refuses_what_kafka_refuses)
{
    char *dir = tmpdir_make();
    uint8_t id[16];
    CHECK_EQ_INT(partition_metadata_read(dir, id), -ENOENT);
    static const char *bad[] = {
        "",                                                   /* empty */
        "version: 0",                                         /* no id line */
        "version: 1\ntopic_id: AAECAwQFBgcICQoLDA0ODw",       /* unknown version */
        "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA",       /* the zero id */
        "version: 0\ntopic_id: AAECAwQFBgcICQoLDA0OD",        /* 21 characters */
        "version: 0\ntopic_id: AAECAwQFBgcICQoLDA0ODwA",      /* 23 characters */
        "version: 0\ntopic_id: AAECAwQFBgcICQoLDA0OD+",       /* not URL-safe base64 */
        "version: 0\ntopic_id: AAECAwQFBgcICQoLDA0ODx",       /* spare bits set */
        "version: 0\ntopic: AAECAwQFBgcICQoLDA0ODw",          /* wrong key */
        "version: 0\ntopic_id: AAECAwQFBgcICQoLDA0ODw\nmore", /* trailing text */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(write_text(dir, bad[i]) == 0);
        CHECK_EQ_INT(partition_metadata_read(dir, id), -EBADMSG);
    }
}

TEST(test_partition_metadata_write_into_a_missing_dir_fails)
{
    char *dir = tmpdir_make();
    char p[512];
    snprintf(p, sizeof(p), "%s/nodir", dir);
    uint8_t id[16] = {1};
    CHECK(partition_metadata_write(p, id) < 0);
}

TEST_MAIN
