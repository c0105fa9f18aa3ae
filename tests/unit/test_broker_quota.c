/*
 * Client quotas: the ClientQuota record's round trip and strict decoding, the image's apply /
 * snapshot, Kafka's precedence order of quota entities, the sampled rate and the throttle
 * time formula (driven with a fake clock).
 */
#include <math.h>

#include "broker/quota.h"
#include "broker/quota_rate.h"
#include "cluster/commands.h"
#include "cluster/image.h"
#include "cluster/records.h"
#include "test.h"

static struct metadata_record quota_rec(uint8_t entity, const char *user, const char *client,
                                        const char *key, double value, int remove)
{
    struct metadata_record r = {.type = METADATA_REC_CLIENT_QUOTA};
    r.client_quota = (struct metadata_rec_client_quota){entity,      (char *)user, (char *)client,
                                                        (char *)key, value,        (uint8_t)remove};
    return r;
}

static void image_put(void *img)
{
    metadata_image_release(img);
}

static struct metadata_image *image_with(int *failed_)
{
    struct metadata_image *img = image_new();
    if (img != NULL)
        test_defer(image_put, img);
    return img;
}

#define U METADATA_QUOTA_USER
#define C METADATA_QUOTA_CLIENT_ID

TEST(test_quota_record_round_trip)
{
    struct metadata_record in[3] = {
        quota_rec(U | C, "alice", NULL, "producer_byte_rate", 1048576, 0),
        quota_rec(C, NULL, "app", "request_percentage", 12.5, 0),
        quota_rec(U, NULL, NULL, "consumer_byte_rate", 0, 1),
    };
    struct metadata_buf b = {0};
    metadata_batch_begin(&b);
    for (int i = 0; i < 3; i++)
        CHECK(metadata_batch_append(&b, &in[i]) == 0);
    CHECK(metadata_batch_finish(&b) == 0);
    struct metadata_batch out;
    int rc = metadata_batch_decode(b.data, b.len, &out);
    metadata_buf_free(&b);
    CHECK(rc == 0);
    CHECK_EQ_INT(out.n_records, 3);
    const struct metadata_rec_client_quota *q = &out.records[0].client_quota;
    CHECK(out.records[0].type == METADATA_REC_CLIENT_QUOTA);
    CHECK(q->entity == (U | C) && strcmp(q->user, "alice") == 0 && q->client_id == NULL);
    CHECK(strcmp(q->key, "producer_byte_rate") == 0 && q->value == 1048576 && !q->remove);
    q = &out.records[1].client_quota;
    CHECK(q->entity == C && q->user == NULL && strcmp(q->client_id, "app") == 0);
    CHECK(q->value == 12.5);
    q = &out.records[2].client_quota;
    CHECK(q->entity == U && q->user == NULL && q->remove);
    metadata_batch_free(&out);
}

TEST(test_quota_record_decoder_rejects_bad_flags_and_empty_key)
{
    struct metadata_record r = quota_rec(C, NULL, "x", "producer_byte_rate", 1, 0);
    struct metadata_buf b = {0};
    metadata_batch_begin(&b);
    CHECK(metadata_batch_append(&b, &r) == 0);
    CHECK(metadata_batch_finish(&b) == 0);
    /* batch header 6 bytes, type, version, body length, then the flags byte */
    size_t flags_at = 6 + 3;
    CHECK(b.data[flags_at] == C);
    struct metadata_batch out;
    uint8_t saved = b.data[flags_at];
    b.data[flags_at] = 0; /* no entity type */
    CHECK(metadata_batch_decode(b.data, b.len, &out) == -EBADMSG);
    b.data[flags_at] = 0x8 | C; /* unknown flag bit */
    CHECK(metadata_batch_decode(b.data, b.len, &out) == -EBADMSG);
    b.data[flags_at] = saved;
    CHECK(metadata_batch_decode(b.data, b.len, &out) == 0);
    metadata_batch_free(&out);
    metadata_buf_free(&b);
    r.client_quota.key = "";
    metadata_batch_begin(&b);
    CHECK(metadata_batch_append(&b, &r) == 0);
    CHECK(metadata_batch_finish(&b) == 0);
    CHECK(metadata_batch_decode(b.data, b.len, &out) == -EBADMSG);
    metadata_buf_free(&b);
}

TEST(test_quota_image_apply_remove_and_snapshot)
{
    struct metadata_image *img = image_with(failed_);
    CHECK(img != NULL);
    struct metadata_record r = quota_rec(C, NULL, "app", "producer_byte_rate", 1000, 0);
    CHECK(image_apply(img, &r) == 0);
    uint64_t v1 = img->quotas_version;
    CHECK(v1 > 0);
    r = quota_rec(C, NULL, "app", "consumer_byte_rate", 2000, 0);
    CHECK(image_apply(img, &r) == 0);
    r = quota_rec(U, "bob", NULL, "request_percentage", 50, 0);
    CHECK(image_apply(img, &r) == 0);
    CHECK_EQ_INT(img->n_client_quotas, 2);
    /* unknown key, removing an unset key, a zero value: skipped */
    r = quota_rec(U, "bob", NULL, "nope", 1, 0);
    CHECK(image_apply(img, &r) == 1);
    r = quota_rec(U, "bob", NULL, "producer_byte_rate", 0, 1);
    CHECK(image_apply(img, &r) == 1);
    r = quota_rec(U, "bob", NULL, "producer_byte_rate", 0, 0);
    CHECK(image_apply(img, &r) == 1);

    struct metadata_buf b = {0};
    CHECK(image_encode(img, &b) == 0);
    int err = 0;
    struct metadata_image *copy = image_decode(b.data, b.len, &err);
    metadata_buf_free(&b);
    CHECK(copy != NULL && err == 0);
    test_defer(image_put, copy);
    const struct metadata_client_quota *q = metadata_image_client_quota(copy, C, NULL, "app");
    CHECK(q != NULL && q->set == 3);
    CHECK(q->values[METADATA_QUOTA_PRODUCER_BYTE_RATE] == 1000);
    CHECK(q->values[METADATA_QUOTA_CONSUMER_BYTE_RATE] == 2000);
    CHECK(metadata_image_client_quota(copy, U, "bob", NULL) != NULL);
    CHECK(metadata_image_client_quota(copy, U | C, "bob", NULL) == NULL);

    /* removing the last key removes the entity */
    r = quota_rec(U, "bob", NULL, "request_percentage", 0, 1);
    CHECK(image_apply(img, &r) == 0);
    CHECK(metadata_image_client_quota(img, U, "bob", NULL) == NULL);
    CHECK_EQ_INT(img->n_client_quotas, 1);

    struct metadata_image *clone = image_clone(img);
    CHECK(clone != NULL);
    test_defer(image_put, clone);
    CHECK(clone->quotas_version == img->quotas_version);
    CHECK_EQ_INT(clone->n_client_quotas, 1);
}

/* Kafka's order: /users/u/clients/c, /users/u/clients/<default>, /users/u,
 * /users/<default>/clients/c, /users/<default>/clients/<default>, /users/<default>,
 * /clients/c, /clients/<default>. Adds them from last to first; each must win. */
TEST(test_quota_precedence_is_kafkas)
{
    struct metadata_image *img = image_with(failed_);
    CHECK(img != NULL);
    const struct {
        uint8_t entity;
        const char *user, *client;
    } order[] = {
        {C, NULL, NULL},    {C, NULL, "c"}, {U, NULL, NULL},    {U | C, NULL, NULL},
        {U | C, NULL, "c"}, {U, "u", NULL}, {U | C, "u", NULL}, {U | C, "u", "c"},
    };
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        struct metadata_record r = quota_rec(order[i].entity, order[i].user, order[i].client,
                                             "producer_byte_rate", (double)(i + 1), 0);
        CHECK(image_apply(img, &r) == 0);
        double bound = 0;
        uint8_t entity = 0;
        CHECK(quota_resolve(img, METADATA_QUOTA_PRODUCER_BYTE_RATE, "u", "c", &bound, &entity));
        CHECK_EQ_INT(bound, i + 1);
        CHECK_EQ_INT(entity, order[i].entity);
    }
    double bound = 0;
    uint8_t entity = 0;
    /* another user and client: the user default with client default wins */
    CHECK(quota_resolve(img, METADATA_QUOTA_PRODUCER_BYTE_RATE, "v", "d", &bound, &entity));
    CHECK_EQ_INT(bound, 4);
    CHECK(!quota_resolve(img, METADATA_QUOTA_CONSUMER_BYTE_RATE, "u", "c", &bound, &entity));
}

TEST(test_quota_throttle_formula_is_kafkas)
{
    /* X = (O - T) / T * W */
    CHECK_EQ_INT(quota_throttle_ms(2000, 1000, 10000, 0), 10000);
    CHECK_EQ_INT(quota_throttle_ms(1100, 1000, 10000, 0), 1000);
    CHECK_EQ_INT(quota_throttle_ms(1000, 1000, 10000, 0), 0);
    CHECK_EQ_INT(quota_throttle_ms(500, 1000, 10000, 0), 0);
    /* request quotas are bounded by one window */
    CHECK_EQ_INT(quota_throttle_ms(5000, 1000, 10000, 1000), 1000);
}

TEST(test_quota_rate_allows_the_first_windows_then_measures_elapsed_time)
{
    struct quota_rate r;
    quota_rate_init(&r, 11, 1000);
    /* A new sensor: the window counts as (samples - 1) full windows, 10 s. */
    quota_rate_record(&r, 10000, 0);
    CHECK_EQ_INT(quota_rate_window_ms(&r, 0), 10000);
    CHECK(fabs(quota_rate_measure(&r, 0) - 1000.0) < 1e-9);
    /* 20 s later every sample has expired. */
    CHECK(quota_rate_measure(&r, 20000) == 0);
    /* Steady 1000 per second over 15 s: the rate is the 11 newest samples over their span. */
    quota_rate_init(&r, 11, 1000);
    for (int64_t t = 0; t < 15000; t += 100)
        quota_rate_record(&r, 100, t);
    double rate = quota_rate_measure(&r, 14999);
    CHECK(rate > 950 && rate < 1050);
    CHECK(quota_rate_window_ms(&r, 14999) >= 10000 && quota_rate_window_ms(&r, 14999) <= 11000);
}

static void command_put(void *cmd)
{
    command_free(cmd);
}

static void buf_put(void *b)
{
    metadata_buf_free(b);
}

/* Controller-side validation (quota_commands.c): per entry, Kafka's INVALID_REQUEST cases; a
 * valid entry becomes one record per changed key, nothing for an unchanged value. */
TEST(test_quota_command_validates_each_entry)
{
    struct controller_quota_component client_c = {"client-id", "c"}, bad_type = {"group", "g"},
                                      empty_name = {"user", ""};
    struct controller_quota_component two_users[2] = {{"user", "a"}, {"user", "b"}};
    struct controller_quota_op set_p = {"producer_byte_rate", 1000, false},
                               frac = {"producer_byte_rate", 1.5, false},
                               neg = {"consumer_byte_rate", -1, false},
                               unknown = {"nope", 1, false},
                               set_r = {"request_percentage", 12.5, false};
    struct controller_quota_op dup[2] = {set_p, set_p};
    struct controller_quota_alter entries[] = {
        {1, &client_c, 1, &set_p}, /* ok: one record */
        {1, &bad_type, 1, &set_p},   {1, &empty_name, 1, &set_p}, {2, two_users, 1, &set_p},
        {0, NULL, 1, &set_p},        {1, &client_c, 1, &frac},    {1, &client_c, 1, &neg},
        {1, &client_c, 1, &unknown}, {1, &client_c, 2, dup},
    };
    size_t n = sizeof(entries) / sizeof(entries[0]);
    struct command *cmd = command_new_alter_client_quotas(entries, n, false);
    CHECK(cmd != NULL);
    test_defer(command_put, cmd);
    struct metadata_image *scratch = image_with(failed_);
    CHECK(scratch != NULL);
    struct command_defaults d = {0};
    static struct metadata_buf out; /* static: its cleanup runs after this function returns */
    memset(&out, 0, sizeof(out));
    test_defer(buf_put, &out);
    metadata_batch_begin(&out);
    CHECK_EQ_INT(command_validate(cmd, scratch, &d, &out), 1);
    CHECK_EQ_INT(cmd->results[0].error_code, 0);
    for (size_t i = 1; i < n; i++)
        CHECK_EQ_INT(cmd->results[i].error_code, 42); /* INVALID_REQUEST */
    CHECK(metadata_image_client_quota(scratch, C, NULL, "c") != NULL);

    /* the same value again writes nothing; validate_only writes nothing */
    struct controller_quota_alter again[2] = {{1, &client_c, 1, &set_p}, {1, &client_c, 1, &set_r}};
    struct command *c2 = command_new_alter_client_quotas(again, 1, false);
    CHECK(c2 != NULL);
    test_defer(command_put, c2);
    CHECK_EQ_INT(command_validate(c2, scratch, &d, &out), 0);
    struct command *c3 = command_new_alter_client_quotas(again + 1, 1, true);
    CHECK(c3 != NULL);
    test_defer(command_put, c3);
    CHECK_EQ_INT(command_validate(c3, scratch, &d, &out), 0);
    CHECK_EQ_INT(c3->results[0].error_code, 0);
    CHECK(metadata_image_client_quota(scratch, C, NULL, "c")->set == 1);
}

TEST_MAIN
