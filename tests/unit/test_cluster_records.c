/* Metadata record batches: round trips of every record type and rejection of bad input. */
#include "cluster/records.h"
#include "test.h"

#include <errno.h>

static const uint8_t ID_A[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static int build_sample(struct metadata_buf *b)
{
    int32_t replicas[3] = {1, 2, 3}, isr[2] = {1, 3};
    struct metadata_config_entry cfg[2] = {{"retention.ms", "1000"}, {"cleanup.policy", "compact"}};
    struct metadata_config_entry ops[2] = {{"retention.ms", "5"}, {"cleanup.policy", NULL}};
    struct metadata_record recs[] = {
        {.type = METADATA_REC_REGISTER_BROKER,
         .broker = {.broker_id = 7, .port = 9092, .host = "127.0.0.1", .rack = "r1"}},
        {.type = METADATA_REC_REGISTER_BROKER,
         .broker = {.broker_id = 8, .port = 9093, .host = "h", .rack = NULL}},
        {.type = METADATA_REC_TOPIC, .topic = {.name = "orders", .n_configs = 2, .configs = cfg}},
        {.type = METADATA_REC_PARTITION,
         .partition = {.partition = 4,
                       .leader = 1,
                       .leader_epoch = 2,
                       .partition_epoch = 3,
                       .n_replicas = 3,
                       .replicas = replicas,
                       .n_isr = 2,
                       .isr = isr}},
        {.type = METADATA_REC_PARTITION_CHANGE,
         .partition_change = {.partition = 4,
                              .has_leader = 1,
                              .leader = 3,
                              .has_isr = 1,
                              .n_isr = 1,
                              .isr = isr + 1}},
        {.type = METADATA_REC_REMOVE_TOPIC},
        {.type = METADATA_REC_CONFIG, .config = {.n_ops = 2, .ops = ops}},
        {.type = METADATA_REC_PRODUCER_IDS,
         .producer_ids = {.broker_id = 7, .next_block_start = 5000000000LL}},
        {.type = METADATA_REC_IMAGE_HEADER, .image_header = {.version = 99}},
        {.type = METADATA_REC_CONTROLLER_REGISTRATION,
         .endpoint = {.node_id = 3, .port = 19092, .host = "ctl-3"}},
        {.type = METADATA_REC_OBSERVER_REGISTRATION,
         .endpoint = {.node_id = 4, .port = 19193, .host = "b-4"}},
    };
    memcpy(recs[2].topic.topic_id, ID_A, 16);
    memcpy(recs[3].partition.topic_id, ID_A, 16);
    memcpy(recs[4].partition_change.topic_id, ID_A, 16);
    memcpy(recs[5].remove_topic.topic_id, ID_A, 16);
    memcpy(recs[6].config.topic_id, ID_A, 16);
    metadata_batch_begin(b);
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++)
        if (metadata_batch_append(b, &recs[i]) != 0)
            return -1;
    return metadata_batch_finish(b);
}

TEST(test_records_round_trip_every_type)
{
    struct metadata_buf b = {0};
    CHECK(build_sample(&b) == 0);
    struct metadata_batch batch;
    int rc = metadata_batch_decode(b.data, b.len, &batch);
    metadata_buf_free(&b);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(batch.n_records, 11);
    struct metadata_record *r = batch.records;
    CHECK_EQ_INT(r[0].type, METADATA_REC_REGISTER_BROKER);
    CHECK_EQ_INT(r[0].broker.broker_id, 7);
    CHECK_EQ_INT(r[0].broker.port, 9092);
    CHECK(strcmp(r[0].broker.host, "127.0.0.1") == 0);
    CHECK(strcmp(r[0].broker.rack, "r1") == 0);
    CHECK(r[1].broker.rack == NULL);
    CHECK(strcmp(r[2].topic.name, "orders") == 0);
    CHECK_MEM(r[2].topic.topic_id, ID_A, 16);
    CHECK_EQ_INT(r[2].topic.n_configs, 2);
    CHECK(strcmp(r[2].topic.configs[1].value, "compact") == 0);
    CHECK_EQ_INT(r[3].partition.partition, 4);
    CHECK_EQ_INT(r[3].partition.partition_epoch, 3);
    CHECK_EQ_INT(r[3].partition.n_replicas, 3);
    CHECK_EQ_INT(r[3].partition.replicas[2], 3);
    CHECK_EQ_INT(r[3].partition.isr[1], 3);
    CHECK(r[4].partition_change.has_leader && r[4].partition_change.has_isr);
    CHECK(!r[4].partition_change.has_replicas);
    CHECK_EQ_INT(r[4].partition_change.leader, 3);
    CHECK_EQ_INT(r[4].partition_change.isr[0], 3);
    CHECK_MEM(r[5].remove_topic.topic_id, ID_A, 16);
    CHECK(r[6].config.ops[1].value == NULL);
    CHECK_EQ_INT(r[7].producer_ids.next_block_start, 5000000000LL);
    CHECK_EQ_INT(r[8].image_header.version, 99);
    CHECK_EQ_INT(r[9].endpoint.node_id, 3);
    CHECK_EQ_INT(r[9].endpoint.port, 19092);
    CHECK(strcmp(r[9].endpoint.host, "ctl-3") == 0);
    CHECK_EQ_INT(r[10].type, METADATA_REC_OBSERVER_REGISTRATION);
    CHECK_EQ_INT(r[10].endpoint.node_id, 4);
    CHECK(strcmp(r[10].endpoint.host, "b-4") == 0);
    metadata_batch_free(&batch);
}

TEST(test_records_every_truncation_rejected)
{
    struct metadata_buf b = {0};
    CHECK(build_sample(&b) == 0);
    for (size_t n = 0; n < b.len; n++) {
        struct metadata_batch batch;
        int rc = metadata_batch_decode(b.data, n, &batch);
        if (rc != -EBADMSG) {
            metadata_buf_free(&b);
            CHECK(rc == -EBADMSG);
        }
    }
    metadata_buf_free(&b);
}

TEST(test_records_trailing_bytes_and_bad_header_rejected)
{
    struct metadata_buf b = {0};
    CHECK(build_sample(&b) == 0);
    struct metadata_batch batch;
    uint8_t *copy = malloc(b.len + 1);
    memcpy(copy, b.data, b.len);
    copy[b.len] = 0;
    int trailing = metadata_batch_decode(copy, b.len + 1, &batch);
    copy[0] = 'X';
    int magic = metadata_batch_decode(copy, b.len, &batch);
    copy[0] = b.data[0];
    copy[1] = 2;
    int format = metadata_batch_decode(copy, b.len, &batch);
    copy[1] = b.data[1];
    copy[6] = 200; /* first record type */
    int type = metadata_batch_decode(copy, b.len, &batch);
    copy[6] = b.data[6];
    copy[7] = 2; /* first record version */
    int version = metadata_batch_decode(copy, b.len, &batch);
    copy[7] = b.data[7];
    copy[5] = 0xff; /* count far above what fits */
    int count = metadata_batch_decode(copy, b.len, &batch);
    free(copy);
    metadata_buf_free(&b);
    CHECK_EQ_INT(trailing, -EBADMSG);
    CHECK_EQ_INT(magic, -EBADMSG);
    CHECK_EQ_INT(format, -EBADMSG);
    CHECK_EQ_INT(type, -EBADMSG);
    CHECK_EQ_INT(version, -EBADMSG);
    CHECK_EQ_INT(count, -EBADMSG);
}

TEST(test_records_huge_array_length_rejected_without_allocating)
{
    /* A partition record whose replicas count claims 2^31 entries in a tiny body. */
    /* clang-format off */
    uint8_t in[] = {METADATA_BATCH_MAGIC, 1, 0, 0, 0, 1, METADATA_REC_PARTITION, 1, 37,
                    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                    0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0,
                    0x80, 0x80, 0x80, 0x80, 0x08};
    /* clang-format on */
    struct metadata_batch batch;
    CHECK_EQ_INT(metadata_batch_decode(in, sizeof(in), &batch), -EBADMSG);
}

TEST(test_records_embedded_nul_in_string_rejected)
{
    /* clang-format off */
    uint8_t in[] = {METADATA_BATCH_MAGIC, 1, 0, 0, 0, 1, METADATA_REC_REMOVE_TOPIC, 1, 16,
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    /* clang-format on */
    struct metadata_batch batch;
    CHECK_EQ_INT(metadata_batch_decode(in, sizeof(in), &batch), 0);
    metadata_batch_free(&batch);
    /* clang-format off */
    uint8_t topic[] = {METADATA_BATCH_MAGIC, 1, 0, 0, 0, 1, METADATA_REC_TOPIC, 1, 20,
                       3, 'a', 0, 'b',
                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    /* clang-format on */
    CHECK(sizeof(topic) == 9 + 20);
    CHECK_EQ_INT(metadata_batch_decode(topic, sizeof(topic) - 1, &batch), -EBADMSG);
}

TEST(test_records_fuzzed_bytes_never_crash)
{
    struct metadata_buf b = {0};
    CHECK(build_sample(&b) == 0);
    unsigned seed = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t *copy = malloc(b.len);
        memcpy(copy, b.data, b.len);
        for (int k = 0; k < 3; k++) {
            seed = seed * 1103515245u + 12345u;
            copy[(seed >> 8) % b.len] = (uint8_t)(seed >> 20);
        }
        struct metadata_batch batch;
        if (metadata_batch_decode(copy, b.len, &batch) == 0)
            metadata_batch_free(&batch);
        free(copy);
    }
    metadata_buf_free(&b);
}

TEST_MAIN
