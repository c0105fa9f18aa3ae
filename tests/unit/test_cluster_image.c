/* Metadata image: applying records, copy-on-write isolation, snapshots, lock-free publication. */
#include "cluster/image.h"
#include "cluster/image_cell.h"
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>

static void make_id(uint8_t id[16], int n)
{
    memset(id, 0, 16);
    id[0] = 0xA0;
    id[14] = (uint8_t)(n >> 8);
    id[15] = (uint8_t)n;
}

static int add_topic(struct metadata_image *img, const char *name, int idn, int parts)
{
    struct metadata_record r = {.type = METADATA_REC_TOPIC};
    r.topic.name = (char *)name;
    make_id(r.topic.topic_id, idn);
    int rc = image_apply(img, &r);
    for (int p = 0; rc == 0 && p < parts; p++) {
        int32_t reps[2] = {1, 2};
        struct metadata_record pr = {.type = METADATA_REC_PARTITION};
        make_id(pr.partition.topic_id, idn);
        pr.partition.partition = p;
        pr.partition.leader = 1;
        pr.partition.n_replicas = pr.partition.n_isr = 2;
        pr.partition.replicas = pr.partition.isr = reps;
        rc = image_apply(img, &pr);
    }
    return rc;
}

TEST(test_image_apply_topic_partitions_and_lookup)
{
    struct metadata_image *img = image_new();
    CHECK(add_topic(img, "b", 2, 3) == 0);
    CHECK(add_topic(img, "a", 1, 1) == 0);
    CHECK_EQ_INT(img->n_topics, 2);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, "b");
    CHECK(t != NULL);
    CHECK_EQ_INT(t->n_partitions, 3);
    CHECK_EQ_INT(t->partitions[2].partition, 2);
    uint8_t id[16];
    make_id(id, 1);
    CHECK(metadata_image_topic_by_id(img, id) == metadata_image_topic_by_name(img, "a"));
    CHECK(metadata_image_topic_by_name(img, "c") == NULL);
    /* duplicate name or id is skipped deterministically */
    CHECK_EQ_INT(add_topic(img, "a", 9, 0), 1);
    CHECK_EQ_INT(add_topic(img, "z", 2, 0), 1);
    CHECK_EQ_INT(img->n_topics, 2);
    metadata_image_release(img);
}

TEST(test_image_clone_is_isolated_from_mutation)
{
    struct metadata_image *a = image_new();
    CHECK(add_topic(a, "t", 1, 2) == 0);
    struct metadata_image *b = image_clone(a);
    CHECK(b != NULL);
    CHECK(metadata_image_topic_by_name(a, "t") == metadata_image_topic_by_name(b, "t"));
    struct metadata_record ch = {.type = METADATA_REC_PARTITION_CHANGE};
    make_id(ch.partition_change.topic_id, 1);
    ch.partition_change.partition = 1;
    ch.partition_change.has_leader = 1;
    ch.partition_change.leader = 2;
    CHECK(image_apply(b, &ch) == 0);
    struct metadata_config_entry ops[1] = {{"retention.ms", "5"}};
    struct metadata_record cfg = {.type = METADATA_REC_CONFIG};
    make_id(cfg.config.topic_id, 1);
    cfg.config.n_ops = 1;
    cfg.config.ops = ops;
    CHECK(image_apply(b, &cfg) == 0);
    const struct metadata_topic *ta = metadata_image_topic_by_name(a, "t");
    const struct metadata_topic *tb = metadata_image_topic_by_name(b, "t");
    CHECK(ta != tb);
    CHECK_EQ_INT(ta->partitions[1].leader, 1);
    CHECK_EQ_INT(tb->partitions[1].leader, 2);
    CHECK_EQ_INT(tb->partitions[1].leader_epoch, 1);
    CHECK_EQ_INT(tb->partitions[1].partition_epoch, 1);
    CHECK(metadata_topic_config(ta, "retention.ms") == NULL);
    CHECK(strcmp(metadata_topic_config(tb, "retention.ms"), "5") == 0);
    struct metadata_record rm = {.type = METADATA_REC_REMOVE_TOPIC};
    make_id(rm.remove_topic.topic_id, 1);
    CHECK(image_apply(b, &rm) == 0);
    CHECK_EQ_INT(b->n_topics, 0);
    CHECK_EQ_INT(a->n_topics, 1);
    metadata_image_release(a);
    metadata_image_release(b);
}

TEST(test_image_config_set_and_delete)
{
    struct metadata_image *img = image_new();
    CHECK(add_topic(img, "t", 1, 0) == 0);
    struct metadata_config_entry ops[4] = {{"segment.ms", "10"},
                                           {"cleanup.policy", "compact"},
                                           {"segment.ms", "20"},
                                           {"cleanup.policy", NULL}};
    struct metadata_record cfg = {.type = METADATA_REC_CONFIG};
    make_id(cfg.config.topic_id, 1);
    cfg.config.n_ops = 4;
    cfg.config.ops = ops;
    CHECK(image_apply(img, &cfg) == 0);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, "t");
    CHECK_EQ_INT(t->n_configs, 1);
    CHECK(strcmp(metadata_topic_config(t, "segment.ms"), "20") == 0);
    make_id(cfg.config.topic_id, 7);
    CHECK_EQ_INT(image_apply(img, &cfg), 1);
    metadata_image_release(img);
}

TEST(test_image_brokers_and_producer_ids)
{
    struct metadata_image *img = image_new();
    struct metadata_record b = {.type = METADATA_REC_REGISTER_BROKER};
    b.broker = (struct metadata_rec_broker){3, 9092, "h3", NULL, 0, {0}, 0};
    CHECK(image_apply(img, &b) == 0);
    b.broker = (struct metadata_rec_broker){1, 9093, "h1", "rack-a", 0, {0}, 0};
    CHECK(image_apply(img, &b) == 0);
    b.broker = (struct metadata_rec_broker){3, 9094, "h3b", NULL, 0, {0}, 0};
    CHECK(image_apply(img, &b) == 0);
    CHECK_EQ_INT(img->n_brokers, 2);
    CHECK_EQ_INT(img->brokers[0].id, 1);
    CHECK_EQ_INT(metadata_image_broker(img, 3)->port, 9094);
    CHECK(metadata_image_broker(img, 2) == NULL);
    struct metadata_record p = {.type = METADATA_REC_PRODUCER_IDS};
    p.producer_ids.next_block_start = 1000;
    CHECK(image_apply(img, &p) == 0);
    CHECK_EQ_INT(img->next_producer_id, 1000);
    CHECK_EQ_INT(image_apply(img, &p), 1); /* never goes backwards */
    metadata_image_release(img);
}

TEST(test_image_snapshot_round_trip)
{
    struct metadata_image *img = image_new();
    struct metadata_record b = {.type = METADATA_REC_REGISTER_BROKER};
    b.broker = (struct metadata_rec_broker){1, 9092, "localhost", "r", 0, {0}, 0};
    CHECK(image_apply(img, &b) == 0);
    for (int i = 0; i < 50; i++) {
        char name[32];
        snprintf(name, sizeof(name), "topic-%d", i);
        CHECK(add_topic(img, name, i + 1, i % 4 + 1) == 0);
    }
    struct metadata_config_entry ops[1] = {{"retention.ms", "77"}};
    struct metadata_record cfg = {.type = METADATA_REC_CONFIG};
    make_id(cfg.config.topic_id, 5);
    cfg.config.n_ops = 1;
    cfg.config.ops = ops;
    CHECK(image_apply(img, &cfg) == 0);
    img->version = 1234;
    img->next_producer_id = 3000;
    struct metadata_buf buf = {0};
    CHECK(image_encode(img, &buf) == 0);
    int err = 0;
    struct metadata_image *back = image_decode(buf.data, buf.len, &err);
    struct metadata_buf again = {0};
    int rc = back ? image_encode(back, &again) : -1;
    int same = rc == 0 && again.len == buf.len && memcmp(again.data, buf.data, buf.len) == 0;
    metadata_buf_free(&buf);
    metadata_buf_free(&again);
    CHECK(back != NULL);
    CHECK(same);
    CHECK_EQ_INT(back->version, 1234);
    CHECK_EQ_INT(back->next_producer_id, 3000);
    CHECK_EQ_INT(back->n_topics, 50);
    CHECK(strcmp(metadata_image_broker(back, 1)->rack, "r") == 0);
    uint8_t id[16];
    make_id(id, 5);
    CHECK(strcmp(metadata_topic_config(metadata_image_topic_by_id(back, id), "retention.ms"),
                 "77") == 0);
    metadata_image_release(back);
    metadata_image_release(img);
}

static int broker_config_op(struct metadata_image *img, int32_t broker, const char *name,
                            const char *value)
{
    struct metadata_config_entry op = {(char *)name, (char *)value};
    struct metadata_record r = {.type = METADATA_REC_BROKER_CONFIG};
    r.broker_config = (struct metadata_rec_broker_config){broker, 1, &op};
    return image_apply(img, &r);
}

TEST(test_image_dynamic_broker_configs_apply_clone_and_snapshot)
{
    struct metadata_image *img = image_new();
    CHECK(broker_config_op(img, -1, "log.retention.ms", "1000") == 0);
    CHECK(broker_config_op(img, 2, "message.max.bytes", "2048") == 0);
    CHECK(broker_config_op(img, 2, "log.retention.ms", "3000") == 0);
    CHECK(broker_config_op(img, -2, "x", "y") == 1); /* not a broker resource: skipped */
    CHECK_EQ_INT(img->n_broker_configs, 2);
    CHECK(strcmp(metadata_image_broker_config(img, -1, "log.retention.ms"), "1000") == 0);
    CHECK(strcmp(metadata_image_broker_config(img, 2, "log.retention.ms"), "3000") == 0);
    CHECK(metadata_image_broker_config(img, 1, "log.retention.ms") == NULL);
    struct metadata_image *c = image_clone(img);
    CHECK(c && metadata_image_broker_configs_equal(img, c));
    CHECK(broker_config_op(c, 2, "message.max.bytes", NULL) == 0);
    CHECK(!metadata_image_broker_configs_equal(img, c));
    CHECK(strcmp(metadata_image_broker_config(img, 2, "message.max.bytes"), "2048") == 0);
    CHECK(metadata_image_broker_config(c, 2, "message.max.bytes") == NULL);
    CHECK(broker_config_op(c, 2, "log.retention.ms", NULL) == 0); /* set empty: gone */
    CHECK_EQ_INT(c->n_broker_configs, 1);
    struct metadata_buf buf = {0};
    CHECK(image_encode(img, &buf) == 0);
    int err = 0;
    struct metadata_image *back = image_decode(buf.data, buf.len, &err);
    CHECK(back && metadata_image_broker_configs_equal(img, back));
    metadata_buf_free(&buf);
    metadata_image_release(back);
    metadata_image_release(c);
    metadata_image_release(img);
}

/* Controller and observer endpoints: replaced by a new registration, kept by clones and
 * snapshots, in separate lists. */
TEST(test_image_endpoints_replace_clone_and_snapshot)
{
    struct metadata_image *img = image_new();
    struct metadata_record r = {.type = METADATA_REC_CONTROLLER_REGISTRATION};
    r.endpoint = (struct metadata_rec_endpoint){1, 9092, "h1"};
    CHECK_EQ_INT(image_apply(img, &r), 0);
    r.endpoint = (struct metadata_rec_endpoint){2, 9093, "h2"};
    CHECK_EQ_INT(image_apply(img, &r), 0);
    r.endpoint = (struct metadata_rec_endpoint){1, 9094, "h1b"};
    CHECK_EQ_INT(image_apply(img, &r), 0);
    CHECK_EQ_INT(img->n_controllers, 2);
    CHECK(metadata_image_broker(img, 1) == NULL);
    struct metadata_record o = {.type = METADATA_REC_OBSERVER_REGISTRATION};
    o.endpoint = (struct metadata_rec_endpoint){4, 9200, "b4"};
    CHECK_EQ_INT(image_apply(img, &o), 0);
    CHECK(metadata_image_controller(img, 4) == NULL);
    struct metadata_image *copy = image_clone(img);
    struct metadata_buf out = {0};
    CHECK_EQ_INT(image_encode(copy, &out), 0);
    metadata_image_release(copy);
    int err = 0;
    struct metadata_image *back = image_decode(out.data, out.len, &err);
    metadata_buf_free(&out);
    CHECK(back != NULL);
    const struct metadata_endpoint *c1 = metadata_image_controller(back, 1);
    CHECK(c1 != NULL && c1->port == 9094 && strcmp(c1->host, "h1b") == 0);
    CHECK(metadata_image_controller(back, 2) != NULL);
    CHECK(metadata_image_controller(back, 3) == NULL);
    const struct metadata_endpoint *o4 = metadata_image_observer(back, 4);
    CHECK(o4 != NULL && o4->port == 9200 && strcmp(o4->host, "b4") == 0);
    metadata_image_release(back);
    metadata_image_release(img);
}

TEST(test_image_ten_thousand_topics_lookup)
{
    struct metadata_image *img = image_new();
    for (int i = 0; i < 10000; i++) {
        char name[32];
        snprintf(name, sizeof(name), "t%05d", (i * 7919) % 10000);
        CHECK(add_topic(img, name, i + 1, 1) == 0);
    }
    CHECK_EQ_INT(img->n_topics, 10000);
    for (int i = 0; i < 10000; i += 97) {
        char name[32];
        snprintf(name, sizeof(name), "t%05d", i);
        CHECK(metadata_image_topic_by_name(img, name) != NULL);
    }
    for (size_t i = 1; i < img->n_topics; i++)
        CHECK(strcmp(img->topics_by_name[i - 1]->name, img->topics_by_name[i]->name) < 0);
    metadata_image_release(img);
}

TEST(test_image_topic_id_format_and_generation)
{
    uint8_t id[16] = {0};
    char s[23];
    metadata_topic_id_format(id, s);
    CHECK(strcmp(s, "AAAAAAAAAAAAAAAAAAAAAA") == 0);
    CHECK(image_generate_topic_id(id) == 0);
    CHECK_EQ_INT(id[6] >> 4, 4);
    metadata_topic_id_format(id, s);
    CHECK_EQ_INT(strlen(s), 22);
}

struct reader_arg {
    struct image_cell *cell;
    atomic_int *stop;
    long reads;
    int bad;
};

static void *reader_main(void *p)
{
    struct reader_arg *a = p;
    uint64_t last = 0;
    while (!atomic_load(a->stop)) {
        const struct metadata_image *img = image_cell_acquire(a->cell);
        if (img->version < last || img->n_topics != img->version)
            a->bad = 1;
        last = img->version;
        metadata_image_release(img);
        a->reads++;
    }
    return NULL;
}

TEST(test_image_cell_concurrent_readers_see_consistent_images)
{
    struct image_cell cell;
    image_cell_init(&cell, image_new());
    atomic_int stop = 0;
    struct reader_arg args[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (struct reader_arg){&cell, &stop, 0, 0};
        pthread_create(&th[i], NULL, reader_main, &args[i]);
    }
    struct metadata_image *cur = image_new();
    for (int v = 1; v <= 2000; v++) {
        struct metadata_image *next = image_clone(cur);
        char name[32];
        snprintf(name, sizeof(name), "t%d", v);
        add_topic(next, name, v, 1);
        next->version = (uint64_t)v;
        metadata_image_release(cur);
        cur = next;
        image_cell_publish(&cell, metadata_image_ref(next));
    }
    atomic_store(&stop, 1);
    int bad = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        bad |= args[i].bad;
    }
    metadata_image_release(cur);
    image_cell_destroy(&cell);
    CHECK(!bad);
}

TEST_MAIN
