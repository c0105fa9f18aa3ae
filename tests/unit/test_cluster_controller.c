/*
 * A real single-voter controller in a temporary directory: commands, errors, configs, producer
 * ids, restart from disk and from a snapshot. The multi-voter test is test_cluster_quorum.c.
 */
#include "cluster/controller.h"
#include "cluster/quorum.h"
#include "cluster/topic_config.h"
#include "test.h"
#include "test_cluster_util.h"

#include <dirent.h>
#include <errno.h>

static struct controller *start_single(const char *dir, unsigned snapshot_threshold)
{
    struct controller_config cfg = {
        .node_id = 1,
        .data_dir = dir,
        .default_num_partitions = 1,
        .default_replication_factor = 1,
        .election_timeout_ms = 200,
        .heartbeat_timeout_ms = 20,
        .snapshot_threshold = snapshot_threshold,
        .snapshot_trailing = snapshot_threshold ? 2 : 0,
    };
    struct controller *ctl = NULL;
    char err[256];
    if (controller_start(&cfg, &ctl, err, sizeof(err)) != 0) {
        printf("  start failed: %s\n", err);
        return NULL;
    }
    if (!cw_wait_active(ctl, 10000)) {
        controller_stop(ctl);
        return NULL;
    }
    return ctl;
}

static int register_broker(struct controller *ctl, int32_t id)
{
    return cw_register_broker(ctl, id, 9092, NULL);
}

static int create_simple(struct controller *ctl, const char *name, int32_t parts, int16_t rf,
                         struct cw_result *r)
{
    struct controller_new_topic t = {
        .name = name, .num_partitions = parts, .replication_factor = rf};
    cw_begin(r);
    if (controller_create_topics(ctl, &t, 1, false, cw_done, r) != 0)
        return -1;
    cw_wait(r);
    return r->topics[0].error_code;
}

TEST(test_quorum_parse_voters)
{
    struct quorum q;
    char err[256];
    CHECK_EQ_INT(quorum_parse("1@127.0.0.1:9093, 2@host-b:9094,3@[::1]:9095", &q, err, sizeof(err)),
                 0);
    CHECK_EQ_INT(q.n, 3);
    CHECK(strcmp(q.voters[1].address, "host-b:9094") == 0);
    CHECK(quorum_find(&q, 3) != NULL);
    CHECK_EQ_INT(quorum_parse("", &q, err, sizeof(err)), 0);
    CHECK_EQ_INT(q.n, 0);
    CHECK_EQ_INT(quorum_parse("x@h:1", &q, err, sizeof(err)), -EINVAL);
    CHECK_EQ_INT(quorum_parse("1@h", &q, err, sizeof(err)), -EINVAL);
    CHECK_EQ_INT(quorum_parse("1@h:0", &q, err, sizeof(err)), -EINVAL);
    CHECK_EQ_INT(quorum_parse("1@h:1,1@g:2", &q, err, sizeof(err)), -EINVAL);
}

TEST(test_topic_config_table_sorted_and_defaults_valid)
{
    char msg[256];
    for (size_t i = 0; i < topic_config_count(); i++) {
        const struct topic_config_def *d = topic_config_at(i);
        if (i > 0)
            CHECK(strcmp(topic_config_at(i - 1)->name, d->name) < 0);
        CHECK_EQ_INT(topic_config_validate(d->name, d->default_value, msg, sizeof(msg)), 0);
        CHECK(topic_config_find(d->name) == d);
    }
    CHECK(topic_config_find("retention.ms") != NULL);
    CHECK(strcmp(topic_config_find("max.message.bytes")->broker_synonym, "message.max.bytes") == 0);
    CHECK_EQ_INT(topic_config_validate("retention.ms", "abc", msg, sizeof(msg)),
                 KAFKA_ERR_INVALID_CONFIG);
    CHECK(strstr(msg, "retention.ms") != NULL);
    CHECK_EQ_INT(topic_config_validate("retention.ms", "-2", msg, sizeof(msg)),
                 KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(topic_config_validate("no.such", "1", msg, sizeof(msg)), KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(topic_config_validate("cleanup.policy", "compact, delete", msg, sizeof(msg)), 0);
    CHECK_EQ_INT(topic_config_validate("cleanup.policy", "compact,bogus", msg, sizeof(msg)),
                 KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(topic_config_validate("min.cleanable.dirty.ratio", "1.5", msg, sizeof(msg)),
                 KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(topic_config_validate("preallocate", "TRUE", msg, sizeof(msg)), 0);
    CHECK_EQ_INT(topic_config_validate("segment.bytes", "13", msg, sizeof(msg)),
                 KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(topic_config_validate("segment.bytes", "3000000000", msg, sizeof(msg)),
                 KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(topic_config_validate("compression.type", "brotli", msg, sizeof(msg)),
                 KAFKA_ERR_INVALID_CONFIG);
}

/* log.retention.ms: static 1000; with arg non-NULL also a cluster default 2000 and a
 * per-broker 3000 (dynamic configs, KIP-226). */
static const char *broker_lookup(void *arg, const char *property, enum topic_config_source source)
{
    if (strcmp(property, "log.retention.ms") != 0)
        return NULL;
    switch (source) {
    case TOPIC_CONFIG_SOURCE_STATIC_BROKER:
        return "1000";
    case TOPIC_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER:
        return arg ? "2000" : NULL;
    case TOPIC_CONFIG_SOURCE_DYNAMIC_BROKER:
        return arg ? "3000" : NULL;
    default:
        return NULL;
    }
}

TEST(test_topic_config_resolve_sources_and_synonyms)
{
    struct topic_config_value v;
    const struct topic_config_def *d = topic_config_find("retention.ms");
    topic_config_resolve(d, "5", broker_lookup, NULL, &v);
    CHECK(strcmp(v.value, "5") == 0);
    CHECK_EQ_INT(v.source, TOPIC_CONFIG_SOURCE_TOPIC);
    CHECK_EQ_INT(v.n_synonyms, 3);
    CHECK_EQ_INT(v.synonyms[1].source, TOPIC_CONFIG_SOURCE_STATIC_BROKER);
    topic_config_resolve(d, NULL, broker_lookup, NULL, &v);
    CHECK(strcmp(v.value, "1000") == 0);
    CHECK_EQ_INT(v.source, TOPIC_CONFIG_SOURCE_STATIC_BROKER);
    topic_config_resolve(d, NULL, NULL, NULL, &v);
    CHECK(v.is_default);
    CHECK(strcmp(v.value, "604800000") == 0);
    CHECK(strcmp(v.synonyms[0].name, "log.retention.ms") == 0);
    /* Dynamic configs win over the static property, the per-broker one over the default,
     * and every level is a synonym, most specific first (Kafka's order). */
    int dynamic = 1;
    topic_config_resolve(d, NULL, broker_lookup, &dynamic, &v);
    CHECK(strcmp(v.value, "3000") == 0);
    CHECK_EQ_INT(v.source, TOPIC_CONFIG_SOURCE_DYNAMIC_BROKER);
    CHECK_EQ_INT(v.n_synonyms, 4);
    CHECK_EQ_INT(v.synonyms[1].source, TOPIC_CONFIG_SOURCE_DYNAMIC_DEFAULT_BROKER);
    CHECK_EQ_INT(v.synonyms[2].source, TOPIC_CONFIG_SOURCE_STATIC_BROKER);
    CHECK_EQ_INT(v.synonyms[3].source, TOPIC_CONFIG_SOURCE_DEFAULT);
    CHECK(!v.is_default);
}

TEST(test_controller_creates_topics_and_reports_errors)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start_single(dir, 0);
    CHECK(ctl != NULL);
    struct cw_result r;
    /* no broker registered yet */
    CHECK_EQ_INT(create_simple(ctl, "early", 1, 1, &r), KAFKA_ERR_INVALID_REPLICATION_FACTOR);
    CHECK_EQ_INT(register_broker(ctl, 1), 0);
    CHECK_EQ_INT(create_simple(ctl, "orders", 3, 1, &r), 0);
    CHECK_EQ_INT(r.topics[0].num_partitions, 3);
    CHECK(r.version > 0);
    CHECK_EQ_INT(create_simple(ctl, "orders", 3, 1, &r), KAFKA_ERR_TOPIC_ALREADY_EXISTS);
    CHECK_EQ_INT(create_simple(ctl, "bad/name", 1, 1, &r), KAFKA_ERR_INVALID_TOPIC_EXCEPTION);
    CHECK_EQ_INT(create_simple(ctl, "..", 1, 1, &r), KAFKA_ERR_INVALID_TOPIC_EXCEPTION);
    char longname[300];
    memset(longname, 'a', 250);
    longname[250] = 0;
    CHECK_EQ_INT(create_simple(ctl, longname, 1, 1, &r), KAFKA_ERR_INVALID_TOPIC_EXCEPTION);
    longname[249] = 0;
    CHECK_EQ_INT(create_simple(ctl, longname, 1, 1, &r), 0);
    CHECK_EQ_INT(create_simple(ctl, "zero", 0, 1, &r), KAFKA_ERR_INVALID_PARTITIONS);
    CHECK_EQ_INT(create_simple(ctl, "rf2", 1, 2, &r), KAFKA_ERR_INVALID_REPLICATION_FACTOR);
    CHECK(strstr(r.topics[0].msg, "only 1 broker") != NULL);
    CHECK_EQ_INT(create_simple(ctl, "rf0", 1, 0, &r), KAFKA_ERR_INVALID_REPLICATION_FACTOR);
    CHECK_EQ_INT(create_simple(ctl, "defaults", -1, -1, &r), 0);
    CHECK_EQ_INT(create_simple(ctl, "a.b", 1, 1, &r), 0);
    CHECK_EQ_INT(create_simple(ctl, "a_b", 1, 1, &r), KAFKA_ERR_INVALID_TOPIC_EXCEPTION);

    /* several topics in one request: per-topic outcomes, duplicates rejected */
    struct metadata_config_entry good_cfg[1] = {{"retention.ms", "1000"}};
    struct metadata_config_entry bad_cfg[1] = {{"retention.ms", "soon"}};
    struct metadata_config_entry unknown_cfg[1] = {{"no.such.config", "1"}};
    int32_t reps[1] = {1};
    struct controller_replica_list manual[2] = {{0, 1, reps}, {1, 1, reps}};
    struct controller_replica_list gap[1] = {{1, 1, reps}};
    struct controller_new_topic many[] = {
        {.name = "m1",
         .num_partitions = 2,
         .replication_factor = 1,
         .n_configs = 1,
         .configs = good_cfg},
        {.name = "m2",
         .num_partitions = 2,
         .replication_factor = 1,
         .n_configs = 1,
         .configs = bad_cfg},
        {.name = "m3",
         .num_partitions = 2,
         .replication_factor = 1,
         .n_configs = 1,
         .configs = unknown_cfg},
        {.name = "dup", .num_partitions = 1, .replication_factor = 1},
        {.name = "dup", .num_partitions = 1, .replication_factor = 1},
        {.name = "manual",
         .num_partitions = -1,
         .replication_factor = -1,
         .n_assignments = 2,
         .assignments = manual},
        {.name = "gap",
         .num_partitions = -1,
         .replication_factor = -1,
         .n_assignments = 1,
         .assignments = gap},
        {.name = "both",
         .num_partitions = 2,
         .replication_factor = -1,
         .n_assignments = 2,
         .assignments = manual},
    };
    cw_begin(&r);
    CHECK(controller_create_topics(ctl, many, 8, false, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.n_topics, 8);
    CHECK_EQ_INT(r.topics[0].error_code, 0);
    CHECK_EQ_INT(r.topics[1].error_code, KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(r.topics[2].error_code, KAFKA_ERR_INVALID_CONFIG);
    CHECK_EQ_INT(r.topics[3].error_code, KAFKA_ERR_INVALID_REQUEST);
    CHECK_EQ_INT(r.topics[4].error_code, KAFKA_ERR_INVALID_REQUEST);
    CHECK_EQ_INT(r.topics[5].error_code, 0);
    CHECK_EQ_INT(r.topics[6].error_code, KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK_EQ_INT(r.topics[7].error_code, KAFKA_ERR_INVALID_REQUEST);

    /* validate_only changes nothing */
    struct controller_new_topic vo = {.name = "vo", .num_partitions = 1, .replication_factor = 1};
    cw_begin(&r);
    CHECK(controller_create_topics(ctl, &vo, 1, true, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.topics[0].error_code, 0);

    const struct metadata_image *img = metadata_image_acquire(ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, "m1");
    int ok = t && t->n_partitions == 2 && metadata_topic_config(t, "retention.ms") &&
             t->partitions[1].leader == 1 && t->partitions[1].n_isr == 1;
    int absent = !metadata_image_topic_by_name(img, "vo") &&
                 !metadata_image_topic_by_name(img, "m2") &&
                 !metadata_image_topic_by_name(img, "dup");
    size_t n_topics = img->n_topics;
    metadata_image_release(img);
    controller_stop(ctl);
    cw_rmrf(dir);
    CHECK(ok);
    CHECK(absent);
    CHECK_EQ_INT(n_topics, 6); /* orders, aaa..., defaults, a.b, m1, manual */
}

TEST(test_controller_concurrent_creates_of_one_name_only_one_wins)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start_single(dir, 0);
    CHECK(ctl != NULL);
    CHECK_EQ_INT(register_broker(ctl, 1), 0);
    struct cw_result r[20];
    struct controller_new_topic t = {.name = "race", .num_partitions = 1, .replication_factor = 1};
    for (int i = 0; i < 20; i++) {
        cw_begin(&r[i]);
        CHECK(controller_create_topics(ctl, &t, 1, false, cw_done, &r[i]) == 0);
    }
    int wins = 0, exists = 0;
    for (int i = 0; i < 20; i++) {
        cw_wait(&r[i]);
        wins += r[i].topics[0].error_code == 0;
        exists += r[i].topics[0].error_code == KAFKA_ERR_TOPIC_ALREADY_EXISTS;
    }
    controller_stop(ctl);
    cw_rmrf(dir);
    CHECK_EQ_INT(wins, 1);
    CHECK_EQ_INT(exists, 19);
}

static int alter(struct controller *ctl, const char *topic, bool incremental,
                 const struct controller_config_change *c, uint32_t n, struct cw_result *r)
{
    struct controller_config_alter a = {.topic = topic, .n_changes = n, .changes = c};
    cw_begin(r);
    if (controller_alter_configs(ctl, &a, 1, incremental, false, cw_done, r) != 0)
        return -1;
    cw_wait(r);
    return r->topics[0].error_code;
}

static int config_is(struct controller *ctl, const char *topic, const char *name, const char *want)
{
    const struct metadata_image *img = metadata_image_acquire(ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, topic);
    const char *v = t ? metadata_topic_config(t, name) : NULL;
    int same = (v == NULL && want == NULL) || (v && want && strcmp(v, want) == 0);
    metadata_image_release(img);
    return same;
}

TEST(test_controller_alter_and_incremental_alter_configs)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start_single(dir, 0);
    CHECK(ctl != NULL);
    CHECK_EQ_INT(register_broker(ctl, 1), 0);
    struct cw_result r;
    CHECK_EQ_INT(create_simple(ctl, "t", 1, 1, &r), 0);
    struct controller_config_change set[] = {{"retention.ms", "100", CONTROLLER_CONFIG_SET},
                                             {"segment.ms", "200", CONTROLLER_CONFIG_SET}};
    CHECK_EQ_INT(alter(ctl, "t", true, set, 2, &r), 0);
    CHECK(config_is(ctl, "t", "retention.ms", "100"));
    CHECK(config_is(ctl, "t", "segment.ms", "200"));
    struct controller_config_change del[] = {{"segment.ms", NULL, CONTROLLER_CONFIG_DELETE}};
    CHECK_EQ_INT(alter(ctl, "t", true, del, 1, &r), 0);
    CHECK(config_is(ctl, "t", "segment.ms", NULL));
    CHECK(config_is(ctl, "t", "retention.ms", "100"));
    struct controller_config_change app[] = {
        {"cleanup.policy", "compact", CONTROLLER_CONFIG_APPEND}};
    CHECK_EQ_INT(alter(ctl, "t", true, app, 1, &r), 0);
    CHECK(config_is(ctl, "t", "cleanup.policy", "delete,compact"));
    struct controller_config_change sub[] = {
        {"cleanup.policy", "delete", CONTROLLER_CONFIG_SUBTRACT}};
    CHECK_EQ_INT(alter(ctl, "t", true, sub, 1, &r), 0);
    CHECK(config_is(ctl, "t", "cleanup.policy", "compact"));
    struct controller_config_change bad_append[] = {
        {"retention.ms", "1", CONTROLLER_CONFIG_APPEND}};
    CHECK_EQ_INT(alter(ctl, "t", true, bad_append, 1, &r), KAFKA_ERR_INVALID_CONFIG);
    struct controller_config_change bad_value[] = {{"retention.ms", "x", CONTROLLER_CONFIG_SET},
                                                   {"segment.ms", "5", CONTROLLER_CONFIG_SET}};
    CHECK_EQ_INT(alter(ctl, "t", true, bad_value, 2, &r), KAFKA_ERR_INVALID_CONFIG);
    CHECK(config_is(ctl, "t", "segment.ms", NULL)); /* nothing of a failed resource applies */
    struct controller_config_change unknown[] = {{"bogus", "1", CONTROLLER_CONFIG_SET}};
    CHECK_EQ_INT(alter(ctl, "t", true, unknown, 1, &r), KAFKA_ERR_INVALID_CONFIG);
    struct controller_config_change dup[] = {{"segment.ms", "5", CONTROLLER_CONFIG_SET},
                                             {"segment.ms", "6", CONTROLLER_CONFIG_SET}};
    CHECK_EQ_INT(alter(ctl, "t", true, dup, 2, &r), KAFKA_ERR_INVALID_REQUEST);
    CHECK_EQ_INT(alter(ctl, "nope", true, set, 1, &r), KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    /* full replace drops everything not named */
    struct controller_config_change full[] = {{"max.message.bytes", "2000", 0}};
    CHECK_EQ_INT(alter(ctl, "t", false, full, 1, &r), 0);
    CHECK(config_is(ctl, "t", "max.message.bytes", "2000"));
    CHECK(config_is(ctl, "t", "retention.ms", NULL));
    CHECK(config_is(ctl, "t", "cleanup.policy", NULL));
    controller_stop(ctl);
    cw_rmrf(dir);
}

TEST(test_controller_delete_topics_and_create_partitions)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start_single(dir, 0);
    CHECK(ctl != NULL);
    CHECK_EQ_INT(register_broker(ctl, 1), 0);
    CHECK_EQ_INT(register_broker(ctl, 2), 0);
    CHECK_EQ_INT(register_broker(ctl, 3), 0);
    struct cw_result r;
    CHECK_EQ_INT(create_simple(ctl, "p", 2, 3, &r), 0);
    CHECK_EQ_INT(create_simple(ctl, "gone", 1, 2, &r), 0);
    uint8_t gone_id[16];
    memcpy(gone_id, r.topics[0].topic_id, 16);

    struct controller_partition_increase inc[] = {
        {.name = "p", .count = 5}, {.name = "gone", .count = 1}, {.name = "missing", .count = 3}};
    cw_begin(&r);
    CHECK(controller_create_partitions(ctl, inc, 3, false, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.topics[0].error_code, 0);
    CHECK_EQ_INT(r.topics[1].error_code, KAFKA_ERR_INVALID_PARTITIONS);
    CHECK_EQ_INT(r.topics[2].error_code, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    struct controller_partition_increase shrink = {.name = "p", .count = 2};
    cw_begin(&r);
    CHECK(controller_create_partitions(ctl, &shrink, 1, false, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.topics[0].error_code, KAFKA_ERR_INVALID_PARTITIONS);

    const struct metadata_image *img = metadata_image_acquire(ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, "p");
    int parts_ok = t && t->n_partitions == 5;
    int spread = 1;
    for (uint32_t i = 0; parts_ok && i < 5; i++) {
        const struct metadata_partition *p = &t->partitions[i];
        spread &= p->n_replicas == 3 && p->replicas[0] != p->replicas[1] &&
                  p->replicas[1] != p->replicas[2] && p->replicas[0] != p->replicas[2];
    }
    /* leaders rotate over the brokers */
    int leaders_differ = parts_ok && t->partitions[0].leader != t->partitions[1].leader;
    metadata_image_release(img);
    CHECK(parts_ok);
    CHECK(spread);
    CHECK(leaders_differ);

    struct controller_topic_ref refs[] = {
        {.name = "ignored", .topic_id = gone_id}, {.name = "missing"}, {.name = "p"}};
    cw_begin(&r);
    CHECK(controller_delete_topics(ctl, refs, 3, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.topics[0].error_code, 0);
    CHECK(strcmp(r.topics[0].name, "gone") == 0);
    CHECK_EQ_INT(r.topics[1].error_code, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(r.topics[2].error_code, 0);
    cw_begin(&r);
    CHECK(controller_delete_topics(ctl, refs, 1, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.topics[0].error_code, KAFKA_ERR_UNKNOWN_TOPIC_ID);
    img = metadata_image_acquire(ctl);
    size_t n = img->n_topics;
    metadata_image_release(img);
    controller_stop(ctl);
    cw_rmrf(dir);
    CHECK_EQ_INT(n, 0);
}

TEST(test_controller_producer_id_blocks_are_disjoint)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start_single(dir, 0);
    CHECK(ctl != NULL);
    struct cw_result r[3];
    for (int i = 0; i < 3; i++) {
        cw_begin(&r[i]);
        CHECK(controller_allocate_producer_ids(ctl, 1, cw_done, &r[i]) == 0);
    }
    for (int i = 0; i < 3; i++)
        cw_wait(&r[i]);
    controller_stop(ctl);
    /* restart: the next block continues after the last one handed out */
    ctl = start_single(dir, 0);
    CHECK(ctl != NULL);
    struct cw_result after;
    cw_begin(&after);
    CHECK(controller_allocate_producer_ids(ctl, 1, cw_done, &after) == 0);
    cw_wait(&after);
    controller_stop(ctl);
    cw_rmrf(dir);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(r[i].error_code, 0);
        CHECK_EQ_INT(r[i].pid_start, i * 1000);
        CHECK_EQ_INT(r[i].pid_len, 1000);
    }
    CHECK_EQ_INT(after.pid_start, 3000);
}

/* Fingerprint of an image's content (names, ids, partitions, configs, brokers). */
static uint64_t image_fingerprint(struct controller *ctl, size_t *n_topics)
{
    const struct metadata_image *img = metadata_image_acquire(ctl);
    struct metadata_buf b = {0};
    uint64_t h = 1469598103934665603ull;
    struct metadata_image *copy = image_clone(img);
    copy->version = 0; /* the raft index differs by the barrier after restart */
    if (image_encode(copy, &b) == 0)
        for (size_t i = 0; i < b.len; i++)
            h = (h ^ b.data[i]) * 1099511628211ull;
    *n_topics = img->n_topics;
    metadata_buf_free(&b);
    metadata_image_release(copy);
    metadata_image_release(img);
    return h;
}

static int populate(struct controller *ctl, int topics)
{
    if (register_broker(ctl, 1) != 0)
        return -1;
    for (int i = 0; i < topics; i++) {
        char name[32];
        snprintf(name, sizeof(name), "topic-%03d", i);
        struct cw_result r;
        if (create_simple(ctl, name, 1 + i % 3, 1, &r) != 0)
            return -1;
        if (i % 5 == 0) {
            struct controller_config_change c = {"retention.ms", "12345", 0};
            if (alter(ctl, name, true, &c, 1, &r) != 0)
                return -1;
        }
    }
    struct controller_topic_ref del = {.name = "topic-001"};
    struct cw_result r;
    cw_begin(&r);
    controller_delete_topics(ctl, &del, 1, cw_done, &r);
    cw_wait(&r);
    return r.topics[0].error_code;
}

TEST(test_controller_restart_from_log_keeps_state)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start_single(dir, 0);
    CHECK(ctl != NULL);
    CHECK_EQ_INT(populate(ctl, 30), 0);
    size_t n1, n2;
    uint64_t before = image_fingerprint(ctl, &n1);
    controller_stop(ctl);
    ctl = start_single(dir, 0);
    CHECK(ctl != NULL);
    uint64_t after = image_fingerprint(ctl, &n2);
    struct cw_result r;
    int again = create_simple(ctl, "topic-000", 1, 1, &r);
    controller_stop(ctl);
    cw_rmrf(dir);
    CHECK_EQ_INT(n1, 29);
    CHECK_EQ_INT(n2, 29);
    CHECK(before == after);
    CHECK_EQ_INT(again, KAFKA_ERR_TOPIC_ALREADY_EXISTS);
}

static int count_snapshots(const char *dir)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/__cluster_metadata", dir);
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, "snapshot-", 9) == 0 && strstr(e->d_name, ".meta") == NULL;
    if (d)
        closedir(d);
    return n;
}

TEST(test_controller_snapshot_taken_and_restored)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start_single(dir, 8);
    CHECK(ctl != NULL);
    CHECK_EQ_INT(populate(ctl, 40), 0);
    size_t n1, n2;
    uint64_t before = image_fingerprint(ctl, &n1);
    controller_stop(ctl);
    int snapshots = count_snapshots(dir);
    ctl = start_single(dir, 8);
    CHECK(ctl != NULL);
    uint64_t after = image_fingerprint(ctl, &n2);
    struct cw_result r;
    int created = create_simple(ctl, "after-restore", 2, 1, &r);
    controller_stop(ctl);
    cw_rmrf(dir);
    CHECK(snapshots >= 1);
    CHECK_EQ_INT(n1, 39);
    CHECK(before == after);
    CHECK_EQ_INT(created, 0);
}

static atomic_int listener_calls;
static void on_image(void *arg, const struct metadata_image *prev,
                     const struct metadata_image *next)
{
    if (next->version > prev->version || next->n_topics != prev->n_topics)
        atomic_fetch_add(&listener_calls, 1);
}

TEST(test_controller_listener_and_shutdown_with_queued_commands)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller_config cfg = {.node_id = 7,
                                    .data_dir = dir,
                                    .election_timeout_ms = 200,
                                    .heartbeat_timeout_ms = 20,
                                    .on_image = on_image};
    struct controller *ctl = NULL;
    char err[256];
    CHECK(controller_start(&cfg, &ctl, err, sizeof(err)) == 0);
    CHECK(cw_wait_active(ctl, 10000));
    CHECK_EQ_INT(controller_leader_id(ctl), 7);
    CHECK_EQ_INT(register_broker(ctl, 7), 0);
    CHECK(atomic_load(&listener_calls) > 0);
    struct cw_result r[50];
    for (int i = 0; i < 50; i++) {
        char name[32];
        snprintf(name, sizeof(name), "q%d", i);
        struct controller_new_topic t = {
            .name = name, .num_partitions = 1, .replication_factor = 1};
        cw_begin(&r[i]);
        CHECK(controller_create_topics(ctl, &t, 1, false, cw_done, &r[i]) == 0);
    }
    controller_stop(ctl); /* every accepted command still completes exactly once */
    for (int i = 0; i < 50; i++)
        cw_wait(&r[i]);
    cw_rmrf(dir);
}

TEST(test_controller_rejects_bad_config)
{
    char err[256];
    struct controller *ctl = NULL;
    struct controller_config cfg = {
        .node_id = 1, .data_dir = "/tmp", .quorum_voters = "2@127.0.0.1:1"};
    CHECK_EQ_INT(controller_start(&cfg, &ctl, err, sizeof(err)), -EINVAL);
    CHECK(strstr(err, "not in controller.quorum.voters") != NULL);
    cfg.quorum_voters = "1@nonsense";
    CHECK_EQ_INT(controller_start(&cfg, &ctl, err, sizeof(err)), -EINVAL);
    cfg.quorum_voters = NULL;
    cfg.node_id = 0;
    CHECK_EQ_INT(controller_start(&cfg, &ctl, err, sizeof(err)), -EINVAL);
}

TEST_MAIN
