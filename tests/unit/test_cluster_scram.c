/*
 * SCRAM credentials in the metadata log (KIP-554): the record's round trip and strict
 * decoding, the image's copy-on-write credential set and its snapshot round trip, and the
 * controller's AlterUserScramCredentials validation with Kafka's error codes.
 */
#include "cluster/commands.h"
#include "cluster/image.h"
#include "cluster/image_scram.h"
#include "cluster/records.h"
#include "proto/gen/errors.h"
#include "security/scram.h"
#include "test.h"
#include "test_cluster_util.h"

#include <dirent.h>
#include <errno.h>
#include <string.h>

static uint8_t SALT[20] = "salt-salt-salt-salt";
static uint8_t KEY_A[64] = {1, 2, 3};
static uint8_t KEY_B[64] = {4, 5, 6};

static struct metadata_record scram_rec(const char *name, uint8_t mech, int32_t iterations)
{
    struct metadata_record r = {.type = METADATA_REC_SCRAM_CREDENTIAL};
    r.scram = (struct metadata_rec_scram_credential){
        .name = (char *)name,
        .mechanism = mech,
        .iterations = iterations,
        .salt_len = sizeof(SALT),
        .key_len = mech == METADATA_SCRAM_SHA_512 ? 64 : 32,
        .salt = SALT,
        .stored_key = KEY_A,
        .server_key = KEY_B,
    };
    return r;
}

static struct metadata_record scram_removal(const char *name, uint8_t mech)
{
    struct metadata_record r = {.type = METADATA_REC_SCRAM_CREDENTIAL};
    r.scram = (struct metadata_rec_scram_credential){
        .name = (char *)name, .mechanism = mech, .remove = 1};
    return r;
}

static int encode_one(const struct metadata_record *r, struct metadata_buf *b)
{
    metadata_batch_begin(b);
    int rc = metadata_batch_append(b, r);
    return rc ? rc : metadata_batch_finish(b);
}

TEST(test_scram_record_round_trip_upsert_and_removal)
{
    struct metadata_buf b = {0};
    struct metadata_record recs[2] = {scram_rec("alice", METADATA_SCRAM_SHA_512, 8192),
                                      scram_removal("bob", METADATA_SCRAM_SHA_256)};
    metadata_batch_begin(&b);
    CHECK_EQ_INT(metadata_batch_append(&b, &recs[0]), 0);
    CHECK_EQ_INT(metadata_batch_append(&b, &recs[1]), 0);
    struct metadata_batch batch;
    CHECK_EQ_INT(metadata_batch_decode(b.data, b.len, &batch), 0);
    CHECK_EQ_INT(batch.n_records, 2);
    const struct metadata_rec_scram_credential *a = &batch.records[0].scram;
    CHECK(strcmp(a->name, "alice") == 0);
    CHECK_EQ_INT(a->mechanism, METADATA_SCRAM_SHA_512);
    CHECK_EQ_INT(a->remove, 0);
    CHECK_EQ_INT(a->iterations, 8192);
    CHECK_EQ_INT(a->salt_len, sizeof(SALT));
    CHECK_MEM(a->salt, SALT, sizeof(SALT));
    CHECK_EQ_INT(a->key_len, 64);
    CHECK_MEM(a->stored_key, KEY_A, 64);
    CHECK_MEM(a->server_key, KEY_B, 64);
    const struct metadata_rec_scram_credential *r = &batch.records[1].scram;
    CHECK(strcmp(r->name, "bob") == 0 && r->remove == 1 && r->mechanism == 1);
    CHECK(strcmp(metadata_record_type_name(METADATA_REC_SCRAM_CREDENTIAL), "UserScramCredential") ==
          0);
    metadata_batch_free(&batch);
    /* Every truncation is refused. */
    for (size_t len = 0; len < b.len; len++)
        CHECK_EQ_INT(metadata_batch_decode(b.data, len, &batch), -EBADMSG);
    metadata_buf_free(&b);
}

TEST(test_scram_record_decoder_rejects_what_no_validator_writes)
{
    struct metadata_record bad[5] = {
        scram_rec("", METADATA_SCRAM_SHA_256, 4096), scram_rec("x", 3, 4096),
        scram_rec("x", METADATA_SCRAM_SHA_256, 0), scram_rec("x", METADATA_SCRAM_SHA_256, 4096),
        scram_rec("x", METADATA_SCRAM_SHA_256, 4096)};
    bad[3].scram.key_len = 64; /* SHA-256 keys are 32 bytes */
    bad[4].scram.salt_len = 0;
    for (size_t i = 0; i < 5; i++) {
        struct metadata_buf b = {0};
        CHECK_EQ_INT(encode_one(&bad[i], &b), 0);
        struct metadata_batch batch;
        CHECK_EQ_INT(metadata_batch_decode(b.data, b.len, &batch), -EBADMSG);
        metadata_buf_free(&b);
    }
}

TEST(test_scram_image_is_copy_on_write_and_survives_a_snapshot)
{
    struct metadata_image *img = image_new();
    struct metadata_record r1 = scram_rec("bob", METADATA_SCRAM_SHA_256, 4096);
    struct metadata_record r2 = scram_rec("alice", METADATA_SCRAM_SHA_512, 8192);
    struct metadata_record r3 = scram_rec("alice", METADATA_SCRAM_SHA_256, 5000);
    CHECK_EQ_INT(image_apply(img, &r1), 0);
    CHECK_EQ_INT(image_apply(img, &r2), 0);
    CHECK_EQ_INT(image_apply(img, &r3), 0);
    CHECK_EQ_INT(metadata_image_scram_count(img), 3);
    /* Sorted by (name, mechanism). */
    CHECK(strcmp(metadata_image_scram_at(img, 0)->name, "alice") == 0);
    CHECK_EQ_INT(metadata_image_scram_at(img, 0)->mechanism, METADATA_SCRAM_SHA_256);
    CHECK_EQ_INT(metadata_image_scram_at(img, 1)->iterations, 8192);
    CHECK_EQ_INT(metadata_image_scram_first(img, "bob"), 2);

    struct metadata_image *next = image_clone(img);
    CHECK(next->scram == img->scram); /* shared until changed */
    struct metadata_record rm = scram_removal("alice", METADATA_SCRAM_SHA_512);
    CHECK_EQ_INT(image_apply(next, &rm), 0);
    CHECK(next->scram != img->scram);
    CHECK(metadata_image_scram(next, "alice", METADATA_SCRAM_SHA_512) == NULL);
    CHECK(metadata_image_scram(img, "alice", METADATA_SCRAM_SHA_512) != NULL);
    CHECK_EQ_INT(image_apply(next, &rm), 1); /* removing what is not there: skipped */

    struct metadata_buf buf = {0};
    CHECK_EQ_INT(image_encode(next, &buf), 0);
    int err = 0;
    struct metadata_image *back = image_decode(buf.data, buf.len, &err);
    CHECK(back != NULL);
    CHECK_EQ_INT(metadata_image_scram_count(back), 2);
    const struct metadata_scram_credential *c = metadata_image_scram(back, "bob", 1);
    CHECK(c != NULL && c->iterations == 4096 && c->key_len == 32);
    CHECK_MEM(c->stored_key, KEY_A, 32);
    metadata_buf_free(&buf);
    metadata_image_release(back);
    metadata_image_release(next);
    metadata_image_release(img);
}

/* Runs AlterUserScramCredentials against scratch; returns the number of records. */
static int run_alter(struct metadata_image *scratch, const struct controller_scram_change *c,
                     size_t n, struct command **out)
{
    struct command *cmd = command_new_alter_scram(c, n);
    *out = cmd;
    if (cmd == NULL)
        return -ENOMEM;
    struct metadata_buf buf = {0};
    metadata_batch_begin(&buf);
    struct command_defaults d = {0};
    int rc = command_validate(cmd, scratch, &d, &buf);
    metadata_buf_free(&buf);
    return rc;
}

static int16_t result_of(const struct command *cmd, const char *user)
{
    for (size_t i = 0; i < cmd->result.n_topics; i++)
        if (strcmp(cmd->result.topics[i].name, user) == 0)
            return cmd->result.topics[i].error_code;
    return -100;
}

TEST(test_scram_alter_validation_uses_kafkas_codes_and_stores_derived_keys)
{
    uint8_t salted[64];
    CHECK_EQ_INT(scram_salted_password(SCRAM_SHA_512, "pw", SALT, sizeof(SALT), 4096, salted), 0);
    struct controller_scram_change ok = {.name = "alice",
                                         .mechanism = METADATA_SCRAM_SHA_512,
                                         .upsert = true,
                                         .iterations = 4096,
                                         .salt = SALT,
                                         .salt_len = sizeof(SALT),
                                         .salted_password = salted,
                                         .salted_len = 64};
    struct metadata_image *scratch = image_new();
    struct command *cmd;
    CHECK_EQ_INT(run_alter(scratch, &ok, 1, &cmd), 1);
    CHECK_EQ_INT(result_of(cmd, "alice"), 0);
    command_free(cmd);
    /* The stored credential is what a password check derives, not the salted password. */
    const struct metadata_scram_credential *c = metadata_image_scram(scratch, "alice", 2);
    CHECK(c != NULL);
    struct scram_credential cred = {.hash = SCRAM_SHA_512, .iterations = 4096};
    cred.salt_len = c->salt_len;
    memcpy(cred.salt, c->salt, c->salt_len);
    memcpy(cred.stored_key, c->stored_key, 64);
    memcpy(cred.server_key, c->server_key, 64);
    CHECK(scram_credential_check_password(&cred, "pw"));
    CHECK(!scram_credential_check_password(&cred, "other"));
    CHECK(memcmp(c->stored_key, salted, 64) != 0 && memcmp(c->server_key, salted, 64) != 0);

    struct controller_scram_change bad[7] = {ok, ok, ok, ok, ok, ok, ok};
    bad[0].name = "";
    bad[1].name = "m", bad[1].mechanism = 3;
    bad[2].name = "few", bad[2].iterations = 4095;
    bad[3].name = "many", bad[3].iterations = 16385;
    bad[4].name = "ghost", bad[4].upsert = false;
    bad[5].name = "twice";
    bad[6].name = "twice", bad[6].mechanism = METADATA_SCRAM_SHA_256;
    CHECK_EQ_INT(run_alter(scratch, bad, 7, &cmd), 0);
    CHECK_EQ_INT(cmd->result.n_topics, 6);
    CHECK_EQ_INT(result_of(cmd, ""), KAFKA_ERR_UNACCEPTABLE_CREDENTIAL);
    CHECK_EQ_INT(result_of(cmd, "m"), KAFKA_ERR_UNSUPPORTED_SASL_MECHANISM);
    CHECK_EQ_INT(result_of(cmd, "few"), KAFKA_ERR_UNACCEPTABLE_CREDENTIAL);
    CHECK_EQ_INT(result_of(cmd, "many"), KAFKA_ERR_UNACCEPTABLE_CREDENTIAL);
    CHECK_EQ_INT(result_of(cmd, "ghost"), KAFKA_ERR_RESOURCE_NOT_FOUND);
    CHECK_EQ_INT(result_of(cmd, "twice"), KAFKA_ERR_DUPLICATE_RESOURCE);
    CHECK(strcmp(cmd->result.topics[0].name, "ghost") == 0); /* deletions' users first */
    command_free(cmd);

    struct controller_scram_change del = {.name = "alice", .mechanism = 2};
    CHECK_EQ_INT(run_alter(scratch, &del, 1, &cmd), 1);
    CHECK_EQ_INT(result_of(cmd, "alice"), 0);
    CHECK(metadata_image_scram(scratch, "alice", 2) == NULL);
    command_free(cmd);
    metadata_image_release(scratch);
}

static struct controller *scram_start_controller(const char *dir)
{
    struct controller_config cfg = {
        .node_id = 1,
        .data_dir = dir,
        .election_timeout_ms = 200,
        .heartbeat_timeout_ms = 20,
        .snapshot_threshold = 8,
        .snapshot_trailing = 2,
    };
    struct controller *ctl = NULL;
    char err[256];
    if (controller_start(&cfg, &ctl, err, sizeof(err)) != 0)
        return NULL;
    if (!cw_wait_active(ctl, 10000)) {
        controller_stop(ctl);
        return NULL;
    }
    return ctl;
}

/* One AlterUserScramCredentials upsertion of user NAME (password "pw-NAME"); its error. */
static int scram_add_user(struct controller *ctl, const char *name, int iterations)
{
    char password[64];
    snprintf(password, sizeof(password), "pw-%s", name);
    uint8_t salted[32];
    if (scram_salted_password(SCRAM_SHA_256, password, SALT, sizeof(SALT), iterations, salted))
        return -1;
    struct controller_scram_change c = {.name = name,
                                        .mechanism = METADATA_SCRAM_SHA_256,
                                        .upsert = true,
                                        .iterations = iterations,
                                        .salt = SALT,
                                        .salt_len = sizeof(SALT),
                                        .salted_password = salted,
                                        .salted_len = sizeof(salted)};
    struct cw_result r;
    cw_begin(&r);
    if (controller_alter_scram(ctl, &c, 1, cw_done, &r) != 0)
        return -1;
    cw_wait(&r);
    return r.n_topics == 1 ? r.topics[0].error_code : -1;
}

/* True when the image holds name's SHA-256 credential for password "pw-NAME". */
static bool scram_user_checks(const struct metadata_image *img, const char *name)
{
    const struct metadata_scram_credential *c = metadata_image_scram(img, name, 1);
    if (c == NULL)
        return false;
    struct scram_credential cred = {.hash = SCRAM_SHA_256, .iterations = c->iterations};
    cred.salt_len = c->salt_len;
    memcpy(cred.salt, c->salt, c->salt_len);
    memcpy(cred.stored_key, c->stored_key, 32);
    memcpy(cred.server_key, c->server_key, 32);
    char password[64];
    snprintf(password, sizeof(password), "pw-%s", name);
    return scram_credential_check_password(&cred, password);
}

TEST(test_scram_users_survive_a_controller_restart_from_a_snapshot)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = scram_start_controller(dir);
    CHECK(ctl != NULL);
    int failed = 0;
    for (int i = 0; i < 24; i++) {
        char name[16];
        snprintf(name, sizeof(name), "user%02d", i);
        failed += scram_add_user(ctl, name, 4096 + i) != 0;
    }
    controller_stop(ctl);
    char path[512];
    snprintf(path, sizeof(path), "%s/__cluster_metadata", dir);
    int snapshots = 0;
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d)) != NULL;)
        snapshots += strncmp(e->d_name, "snapshot-", 9) == 0 && !strstr(e->d_name, ".meta");
    if (d)
        closedir(d);
    CHECK(snapshots >= 1);
    ctl = scram_start_controller(dir);
    CHECK(ctl != NULL);
    const struct metadata_image *img = metadata_image_acquire(ctl);
    size_t n = metadata_image_scram_count(img);
    bool first = scram_user_checks(img, "user00"), last = scram_user_checks(img, "user23");
    const struct metadata_scram_credential *c = metadata_image_scram(img, "user23", 1);
    int32_t iterations = c ? c->iterations : 0;
    metadata_image_release(img);
    controller_stop(ctl);
    CHECK_EQ_INT(failed, 0);
    CHECK_EQ_INT(n, 24);
    CHECK(first && last);
    CHECK_EQ_INT(iterations, 4096 + 23);
}

TEST_MAIN
