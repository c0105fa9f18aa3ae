/* Producer state (storage/producer_state.h): Kafka 3.9 sequence/epoch rules, the five-batch
 * duplicate window, sequence wrap, expiration, and the snapshot format round trip. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/byteorder.h"
#include "record/control_record.h"
#include "record/crc32c.h"
#include "storage/producer_state.h"
#include "test.h"

static struct record_batch_header hdr(int64_t pid, int16_t epoch, int32_t seq, int32_t n,
                                      int64_t offset)
{
    struct record_batch_header h = {0};
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_sequence = seq;
    h.last_offset_delta = n - 1;
    h.record_count = n;
    h.base_offset = offset;
    h.max_timestamp = 1000;
    return h;
}

/* Checks and, when appendable, records the batch at *next_offset. */
static enum producer_check put(struct producer_state *ps, int64_t pid, int16_t epoch, int32_t seq,
                               int32_t n, int64_t *next_offset, struct producer_batch *dup)
{
    struct record_batch_header h = hdr(pid, epoch, seq, n, *next_offset);
    enum producer_check c = producer_state_check(ps, &h, dup);
    if (c == PRODUCER_CHECK_APPEND) {
        producer_state_update(ps, &h, 1000);
        *next_offset += n;
    }
    return c;
}

TEST(test_producer_duplicate_within_last_five_batches_returns_original_offsets)
{
    struct producer_state *ps = producer_state_new(86400000);
    int64_t off = 0;
    struct producer_batch dup;
    for (int i = 0; i < 6; i++)
        CHECK_EQ_INT(put(ps, 7, 0, i * 2, 2, &off, &dup), PRODUCER_CHECK_APPEND);
    /* batches seq 2..11 are the last five; seq 0-1 fell out of the window */
    CHECK_EQ_INT(put(ps, 7, 0, 4, 2, &off, &dup), PRODUCER_CHECK_DUPLICATE);
    CHECK_EQ_INT(dup.first_offset, 4);
    CHECK_EQ_INT(dup.last_offset, 5);
    CHECK_EQ_INT(put(ps, 7, 0, 10, 2, &off, &dup), PRODUCER_CHECK_DUPLICATE);
    CHECK_EQ_INT(dup.first_offset, 10);
    CHECK_EQ_INT(put(ps, 7, 0, 0, 2, &off, &dup), PRODUCER_CHECK_OUT_OF_ORDER);
    CHECK_EQ_INT(put(ps, 7, 0, 4, 1, &off, &dup), PRODUCER_CHECK_OUT_OF_ORDER);
    CHECK_EQ_INT(off, 12);
    producer_state_free(ps);
}

TEST(test_producer_epoch_rules_follow_kafka)
{
    struct producer_state *ps = producer_state_new(86400000);
    int64_t off = 0;
    struct producer_batch dup;
    /* unknown producer: any sequence (Kafka 3.x, KIP-360) */
    CHECK_EQ_INT(put(ps, 1, 3, 42, 1, &off, &dup), PRODUCER_CHECK_APPEND);
    CHECK_EQ_INT(put(ps, 1, 3, 44, 1, &off, &dup), PRODUCER_CHECK_OUT_OF_ORDER);
    CHECK_EQ_INT(put(ps, 1, 2, 43, 1, &off, &dup), PRODUCER_CHECK_FENCED);
    CHECK_EQ_INT(put(ps, 1, 4, 1, 1, &off, &dup), PRODUCER_CHECK_OUT_OF_ORDER);
    CHECK_EQ_INT(put(ps, 1, 4, 0, 1, &off, &dup), PRODUCER_CHECK_APPEND);
    /* the old epoch's batches are no duplicates any more: fenced */
    CHECK_EQ_INT(put(ps, 1, 3, 42, 1, &off, &dup), PRODUCER_CHECK_FENCED);
    CHECK_EQ_INT(put(ps, 1, 4, -1, 1, &off, &dup), PRODUCER_CHECK_INVALID);
    producer_state_free(ps);
}

TEST(test_producer_sequence_wraps_at_int32_max)
{
    CHECK_EQ_INT(producer_last_sequence(INT32_MAX - 1, 2), 0);
    CHECK_EQ_INT(producer_last_sequence(INT32_MAX, 0), INT32_MAX);
    CHECK_EQ_INT(producer_last_sequence(5, 3), 8);
    struct producer_state *ps = producer_state_new(86400000);
    int64_t off = 0;
    struct producer_batch dup;
    CHECK_EQ_INT(put(ps, 9, 0, INT32_MAX - 1, 2, &off, &dup), PRODUCER_CHECK_APPEND);
    CHECK_EQ_INT(put(ps, 9, 0, 0, 3, &off, &dup), PRODUCER_CHECK_APPEND);
    CHECK_EQ_INT(put(ps, 9, 0, 3, 1, &off, &dup), PRODUCER_CHECK_APPEND);
    CHECK_EQ_INT(put(ps, 9, 0, INT32_MAX - 1, 2, &off, &dup), PRODUCER_CHECK_DUPLICATE);
    producer_state_free(ps);
}

TEST(test_producer_expiration_drops_idle_producers)
{
    struct producer_state *ps = producer_state_new(5000);
    struct record_batch_header h = hdr(1, 0, 0, 1, 0);
    producer_state_update(ps, &h, 1000);
    h = hdr(2, 0, 0, 1, 1);
    h.max_timestamp = 9000;
    producer_state_update(ps, &h, 9000);
    CHECK_EQ_INT(producer_state_expire(ps, 10000), 1);
    CHECK_EQ_INT(producer_state_count(ps), 1);
    struct producer_info info;
    CHECK_EQ_INT(producer_state_list(ps, &info, 1), 1);
    CHECK_EQ_INT(info.producer_id, 2);
    producer_state_free(ps);
}

TEST(test_producer_snapshot_round_trip_in_kafka_format)
{
    struct producer_state *ps = producer_state_new(86400000);
    int64_t off = 100;
    struct producer_batch dup;
    put(ps, 77, 2, 0, 3, &off, &dup);
    put(ps, 77, 2, 3, 4, &off, &dup); /* last: seq 3..6 at offsets 103..106 */
    size_t len = producer_state_encode(ps, NULL, 0);
    CHECK_EQ_INT(len, 10 + 46);
    uint8_t buf[128];
    CHECK_EQ_INT(producer_state_encode(ps, buf, sizeof(buf)), len);
    CHECK_EQ_INT(be16_load(buf), 1);
    CHECK_EQ_INT(be32_load(buf + 2), crc32c(buf + 6, len - 6));
    CHECK_EQ_INT(be32_load(buf + 6), 1);
    CHECK_EQ_INT((int64_t)be64_load(buf + 10), 77);
    CHECK_EQ_INT((int16_t)be16_load(buf + 18), 2);
    CHECK_EQ_INT((int32_t)be32_load(buf + 20), 6);
    CHECK_EQ_INT((int64_t)be64_load(buf + 24), 106);
    CHECK_EQ_INT((int32_t)be32_load(buf + 32), 3);
    struct producer_state *back = producer_state_new(86400000);
    CHECK_EQ_INT(producer_state_decode(back, buf, len, 1000), 0);
    struct record_batch_header h = hdr(77, 2, 3, 4, 0);
    CHECK_EQ_INT(producer_state_check(back, &h, &dup), PRODUCER_CHECK_DUPLICATE);
    CHECK_EQ_INT(dup.first_offset, 103);
    h = hdr(77, 2, 7, 1, 0);
    CHECK_EQ_INT(producer_state_check(back, &h, &dup), PRODUCER_CHECK_APPEND);
    buf[len - 1] ^= 1;
    struct producer_state *bad = producer_state_new(86400000);
    CHECK_EQ_INT(producer_state_decode(bad, buf, len, 1000), -EINVAL);
    CHECK_EQ_INT(producer_state_decode(bad, buf, 5, 1000), -EINVAL);
    producer_state_free(bad);
    producer_state_free(back);
    producer_state_free(ps);
}

TEST(test_producer_marker_from_older_coordinator_epoch_is_fenced)
{
    struct producer_state *ps = producer_state_new(86400000);
    int64_t off = 0;
    struct producer_batch dup;
    CHECK(!producer_state_marker_fenced(ps, 9, 0)); /* unknown producer */
    struct record_batch_header h = hdr(9, 0, 0, 1, off);
    h.attributes = RECORD_ATTR_TRANSACTIONAL;
    CHECK_EQ_INT(producer_state_check(ps, &h, &dup), PRODUCER_CHECK_APPEND);
    CHECK_EQ_INT(producer_state_update(ps, &h, 1000), 0);
    CHECK_EQ_INT(producer_state_first_open_offset(ps), 0);
    struct record_batch_header mh = hdr(9, 0, -1, 1, 1);
    mh.attributes = RECORD_ATTR_TRANSACTIONAL | RECORD_ATTR_CONTROL;
    struct control_marker m = {CONTROL_TYPE_COMMIT, 5};
    struct aborted_txn a;
    CHECK(!producer_state_marker_fenced(ps, 9, 5));
    CHECK_EQ_INT(producer_state_apply_marker(ps, &mh, &m, 1000, &a), 0);
    CHECK_EQ_INT(producer_state_first_open_offset(ps), -1);
    /* the coordinator of epoch 5 wrote it: a marker of epoch 4 comes from a deposed one */
    CHECK(producer_state_marker_fenced(ps, 9, 4));
    CHECK(!producer_state_marker_fenced(ps, 9, 5));
    CHECK(!producer_state_marker_fenced(ps, 9, 6));
    CHECK(!producer_state_marker_fenced(ps, 10, 0));
    producer_state_free(ps);
}

TEST_MAIN
