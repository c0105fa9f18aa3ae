/* Transactions below the broker: the .txnindex file format and its in-memory index
 * (storage/txn_index.h), transaction markers (record/control_record.h), the producer state's
 * open transactions and snapshots (storage/producer_state.h), and __transaction_state records
 * (txn/state_record.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "record/control_record.h"
#include "record/record_iter.h"
#include "storage/producer_state.h"
#include "storage/txn_index.h"
#include "test.h"
#include "test_storage_util.h"
#include "txn/state_record.h"

TEST(test_txn_index_entry_is_kafkas_34_byte_layout)
{
    struct aborted_txn a = {0x0102030405060708LL, 10, 20, 21}, b;
    uint8_t buf[TXN_INDEX_ENTRY_SIZE];
    txn_index_entry_encode(&a, buf);
    static const uint8_t want[TXN_INDEX_ENTRY_SIZE] = {0, 0,  1, 2, 3, 4,  5, 6, 7, 8, 0, 0,
                                                       0, 0,  0, 0, 0, 10, 0, 0, 0, 0, 0, 0,
                                                       0, 20, 0, 0, 0, 0,  0, 0, 0, 21};
    CHECK_MEM(buf, want, sizeof(want));
    CHECK_EQ_INT(txn_index_entry_decode(buf, &b), 0);
    CHECK(b.producer_id == a.producer_id && b.first_offset == 10 && b.last_offset == 20 &&
          b.last_stable_offset == 21);
    buf[1] = 1; /* version 1 is not Kafka's */
    CHECK_EQ_INT(txn_index_entry_decode(buf, &b), -EINVAL);
}

TEST(test_txn_index_persists_collects_and_truncates)
{
    char *dir = tmpdir_make();
    CHECK(dir != NULL);
    struct txn_index *ti;
    CHECK_EQ_INT(txn_index_open(dir, &ti), 0);
    struct aborted_txn a1 = {7, 0, 5, 6}, a2 = {8, 3, 12, 13}, a3 = {7, 20, 30, 31};
    CHECK_EQ_INT(txn_index_append(ti, 0, &a1), 0);
    CHECK_EQ_INT(txn_index_append(ti, 10, &a2), 0);
    CHECK_EQ_INT(txn_index_append(ti, 10, &a3), 0);
    CHECK_EQ_INT(txn_index_append(ti, 10, &a2), 0); /* a replay: skipped */
    CHECK_EQ_INT((int)txn_index_count(ti), 3);
    struct aborted_txn out[4];
    /* Fetch [6, 25): a2 ends at 12 and starts below 25; a3 starts at 20 < 25; a1 ended. */
    CHECK_EQ_INT((int)txn_index_collect(ti, 6, 25, out, 4), 2);
    CHECK(out[0].producer_id == 8 && out[1].producer_id == 7 && out[1].first_offset == 20);
    CHECK_EQ_INT((int)txn_index_collect(ti, 0, 3, out, 4), 1); /* only a1 starts below 3 */
    txn_index_close(ti);
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/00000000000000000010.txnindex", dir);
    CHECK(stat(path, &st) == 0 && st.st_size == 2 * TXN_INDEX_ENTRY_SIZE);
    CHECK_EQ_INT(txn_index_open(dir, &ti), 0);
    CHECK_EQ_INT((int)txn_index_count(ti), 3);
    CHECK_EQ_INT(txn_index_truncate(ti, 30), 0); /* a3's marker goes */
    CHECK_EQ_INT((int)txn_index_count(ti), 2);
    txn_index_close(ti);
    CHECK(stat(path, &st) == 0 && st.st_size == TXN_INDEX_ENTRY_SIZE);
    CHECK_EQ_INT(txn_index_open(dir, &ti), 0);
    CHECK_EQ_INT(txn_index_truncate(ti, 0), 0);
    CHECK_EQ_INT((int)txn_index_count(ti), 0);
    txn_index_close(ti);
    CHECK(stat(path, &st) != 0);
}

TEST(test_control_marker_round_trip)
{
    struct control_marker m = {CONTROL_TYPE_COMMIT, 42}, back;
    uint8_t *batch;
    size_t len;
    CHECK_EQ_INT(control_marker_build(99, 3, &m, 1000, &batch, &len), 0);
    struct record_batch_header h;
    CHECK_EQ_INT(record_batch_header_parse(batch, len, &h), 0);
    CHECK(h.producer_id == 99 && h.producer_epoch == 3 && h.base_sequence == -1);
    CHECK((h.attributes & (RECORD_ATTR_CONTROL | RECORD_ATTR_TRANSACTIONAL)) ==
          (RECORD_ATTR_CONTROL | RECORD_ATTR_TRANSACTIONAL));
    CHECK_EQ_INT(record_batch_validate(batch, len, RECORD_VALIDATE_PRODUCE, 0, NULL), 0);
    CHECK_EQ_INT(control_marker_parse(batch + RECORD_BATCH_HEADER_SIZE,
                                      len - RECORD_BATCH_HEADER_SIZE, &back),
                 0);
    CHECK(back.type == CONTROL_TYPE_COMMIT && back.coordinator_epoch == 42);
    free(batch);
}

static struct record_batch_header txn_hdr(int64_t pid, int16_t epoch, int32_t seq, int64_t off,
                                          bool control)
{
    struct record_batch_header h = {0};
    h.producer_id = pid;
    h.producer_epoch = epoch;
    h.base_sequence = control ? -1 : seq;
    h.base_offset = off;
    h.record_count = 1;
    h.attributes = RECORD_ATTR_TRANSACTIONAL | (control ? RECORD_ATTR_CONTROL : 0);
    return h;
}

TEST(test_producer_state_tracks_open_transactions_and_snapshots_them)
{
    struct producer_state *ps = producer_state_new(1000000);
    CHECK(ps != NULL);
    CHECK(producer_state_first_open_offset(ps) == -1);
    struct record_batch_header h = txn_hdr(1, 0, 0, 10, false);
    CHECK_EQ_INT(producer_state_update(ps, &h, 1000), 0);
    h = txn_hdr(2, 0, 0, 11, false);
    CHECK_EQ_INT(producer_state_update(ps, &h, 1000), 0);
    h = txn_hdr(1, 0, 1, 12, false);
    CHECK_EQ_INT(producer_state_update(ps, &h, 1000), 0);
    CHECK(producer_state_first_open_offset(ps) == 10);
    /* A marker carries no sequence: appendable; an older epoch's is fenced. */
    struct record_batch_header m = txn_hdr(1, 0, 0, 13, true);
    struct producer_batch dup;
    CHECK_EQ_INT(producer_state_check(ps, &m, &dup), PRODUCER_CHECK_APPEND);
    struct control_marker abort_marker = {CONTROL_TYPE_ABORT, 5};
    struct aborted_txn a;
    CHECK_EQ_INT(producer_state_apply_marker(ps, &m, &abort_marker, 1000, &a), 1);
    CHECK(a.producer_id == 1 && a.first_offset == 10 && a.last_offset == 13 &&
          a.last_stable_offset == 11);
    CHECK(producer_state_first_open_offset(ps) == 11);
    struct record_batch_header old = txn_hdr(2, -1, 0, 14, true);
    CHECK_EQ_INT(producer_state_check(ps, &old, &dup), PRODUCER_CHECK_FENCED);
    /* The snapshot keeps producer 2's open transaction. */
    size_t len = producer_state_encode(ps, NULL, 0);
    uint8_t *buf = malloc(len);
    producer_state_encode(ps, buf, len);
    struct producer_state *back = producer_state_new(1000000);
    CHECK_EQ_INT(producer_state_decode(back, buf, len, 1000), 0);
    CHECK(producer_state_first_open_offset(back) == 11);
    struct record_batch_header c = txn_hdr(2, 0, 0, 15, true);
    struct control_marker commit = {CONTROL_TYPE_COMMIT, 5};
    CHECK_EQ_INT(producer_state_apply_marker(back, &c, &commit, 1000, &a), 0);
    CHECK(producer_state_first_open_offset(back) == -1);
    free(buf);
    producer_state_free(back);
    producer_state_free(ps);
}

TEST(test_transaction_state_record_round_trip)
{
    struct kmsg_transaction_log_value v;
    kmsg_transaction_log_value_init(&v);
    v.producer_id = 1000;
    v.producer_epoch = 4;
    v.transaction_timeout_ms = 60000;
    v.transaction_status = TXN_ONGOING;
    int32_t ids[2] = {0, 3};
    struct kmsg_transaction_log_value_partitions_schema ps;
    kmsg_transaction_log_value_partitions_schema_init(&ps);
    ps.topic = (struct kstr){"orders", 6};
    ps.partition_ids = (struct karray_int32){2, ids};
    v.transaction_partitions.v = &ps;
    v.transaction_partitions.n = 1;
    v.transaction_last_update_timestamp_ms = 5;
    v.transaction_start_timestamp_ms = 4;
    uint8_t *batch;
    size_t len;
    CHECK_EQ_INT(txn_state_record_build("tx-1", &v, 1000, &batch, &len), 0);
    struct record_iter it;
    CHECK_EQ_INT(record_iter_init(&it, batch, len, 1 << 20), 0);
    struct record rec;
    CHECK_EQ_INT(record_iter_next(&it, &rec), 1);
    CHECK(rec.key_len >= 2 && rec.key[0] == 0 && rec.key[1] == 0); /* key version 0 */
    struct arena a;
    arena_init(&a, 0);
    struct kstr id;
    struct kmsg_transaction_log_value back;
    bool tomb = true;
    CHECK_EQ_INT(txn_state_record_decode(rec.key, rec.key_len, rec.value, rec.value_len, &a, &id,
                                         &back, &tomb),
                 0);
    CHECK(!tomb && id.len == 4 && memcmp(id.ptr, "tx-1", 4) == 0);
    CHECK(back.producer_id == 1000 && back.producer_epoch == 4 &&
          back.transaction_status == TXN_ONGOING && back.transaction_partitions.n == 1 &&
          back.transaction_partitions.v[0].partition_ids.n == 2 &&
          back.transaction_partitions.v[0].partition_ids.v[1] == 3);
    arena_free(&a);
    record_iter_release(&it);
    free(batch);
}

TEST_MAIN
