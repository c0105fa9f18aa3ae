/* __consumer_offsets records: Java String.hashCode partitioning and the key/value codecs,
 * through a real batch (builder + iterator) and back. */
#include <stdlib.h>
#include <string.h>

#include "group/offsets_log.h"
#include "record/record_iter.h"
#include "test.h"

TEST(test_java_string_hash_matches_java)
{
    CHECK_EQ_INT(offsets_java_string_hash("", 0), 0);
    CHECK_EQ_INT(offsets_java_string_hash("a", 1), 97);
    CHECK_EQ_INT(offsets_java_string_hash("abc", 3), 96354);
    CHECK_EQ_INT(offsets_java_string_hash("hello", 5), 99162322);
    /* U+00E9 is one UTF-16 unit; U+1F600 is the surrogate pair D83D DE00. */
    CHECK_EQ_INT(offsets_java_string_hash("\xc3\xa9", 2), 233);
    CHECK_EQ_INT(offsets_java_string_hash("\xf0\x9f\x98\x80", 4), 0xD83D * 31 + 0xDE00);
    /* Overflow wraps like Java ints. */
    CHECK_EQ_INT(offsets_java_string_hash("polygenelubricants", 18), INT32_MIN);
}

TEST(test_partition_for_takes_abs_and_min_value_as_zero)
{
    CHECK_EQ_INT(offsets_partition_for("polygenelubricants", 18, 50), 0);
    CHECK_EQ_INT(offsets_partition_for("hello", 5, 50), 99162322 % 50);
    /* "Aa" and "BB" collide in Java: same partition. */
    CHECK_EQ_INT(offsets_partition_for("Aa", 2, 50), offsets_partition_for("BB", 2, 50));
    int32_t h = offsets_java_string_hash("consumer-group-negative-xyz", 27);
    int32_t want = h == INT32_MIN ? 0 : (h < 0 ? -h : h) % 50;
    CHECK_EQ_INT(offsets_partition_for("consumer-group-negative-xyz", 27, 50), want);
}

static int decode_all(const uint8_t *batch, size_t len, struct arena *a, struct offsets_record *out,
                      int max)
{
    struct record_iter it;
    if (record_iter_init(&it, batch, len, 1 << 20) != 0)
        return -1;
    struct record rec;
    int n = 0;
    while (n < max && record_iter_next(&it, &rec) == 1) {
        if (offsets_decode_record(rec.key, rec.key_len, rec.value, rec.value_len, a, &out[n]) != 0)
            break;
        n++;
    }
    record_iter_release(&it);
    return n;
}

/* Checks the three records the round-trip test encodes, as decoded (n of them). CHECK returns
 * from here only, so the caller still frees the batch the strings slice. */
static void check_round_trip_records(int *failed_, const struct offsets_record *out, int n)
{
    CHECK_EQ_INT(n, 3);
    CHECK(out[0].kind == OFFSETS_RECORD_COMMIT && !out[0].tombstone);
    CHECK(out[0].group.len == 2 && memcmp(out[0].group.ptr, "g1", 2) == 0);
    CHECK(out[0].topic.len == 6 && memcmp(out[0].topic.ptr, "orders", 6) == 0);
    CHECK_EQ_INT(out[0].partition, 3);
    CHECK(out[0].commit.offset == 42 && out[0].commit.leader_epoch == 7);
    CHECK(out[0].commit.commit_timestamp == 1700000000123);
    CHECK(out[0].commit.metadata.len == 4);
    CHECK(out[1].kind == OFFSETS_RECORD_GROUP && !out[1].tombstone);
    CHECK_EQ_INT(out[1].group_value.generation, 5);
    CHECK_EQ_INT(out[1].group_value.members.n, 1);
    CHECK(out[1].group_value.members.v[0].assignment.len == 2);
    CHECK(out[1].group_value.members.v[0].member_id.len == 3);
    CHECK(out[2].kind == OFFSETS_RECORD_COMMIT && out[2].tombstone);
    CHECK_EQ_INT(out[2].partition, 4);
}

TEST(test_commit_and_group_records_round_trip_through_a_batch)
{
    struct offsets_kv kv[3];
    struct kmsg_offset_commit_value v;
    kmsg_offset_commit_value_init(&v);
    v.offset = 42;
    v.leader_epoch = 7;
    v.metadata = KSTR_LIT("meta");
    v.commit_timestamp = 1700000000123;
    CHECK(offsets_encode_commit(&kv[0], "g1", "orders", 3, &v) == 0);
    CHECK_EQ_INT(kv[0].key[1], 1);   /* key type 1 */
    CHECK_EQ_INT(kv[0].value[1], 3); /* value version 3 */
    struct kmsg_group_metadata_value gv;
    kmsg_group_metadata_value_init(&gv);
    struct kmsg_group_metadata_value_member_metadata mm;
    kmsg_group_metadata_value_member_metadata_init(&mm);
    mm.member_id = KSTR_LIT("m-1");
    mm.client_id = KSTR_LIT("c");
    mm.client_host = KSTR_LIT("/127.0.0.1");
    mm.rebalance_timeout = 30000;
    mm.session_timeout = 10000;
    mm.subscription = (struct kbytes){(const uint8_t *)"sub", 3};
    mm.assignment = (struct kbytes){(const uint8_t *)"as", 2};
    gv.protocol_type = KSTR_LIT("consumer");
    gv.generation = 5;
    gv.protocol = KSTR_LIT("range");
    gv.leader = KSTR_LIT("m-1");
    gv.current_state_timestamp = 1700000000000;
    gv.members.n = 1;
    gv.members.v = &mm;
    CHECK(offsets_encode_group(&kv[1], "g1", &gv) == 0);
    CHECK(offsets_encode_commit(&kv[2], "g1", "orders", 4, NULL) == 0);
    CHECK_EQ_INT(kv[2].value_len, -1);
    uint8_t *batch;
    size_t len;
    CHECK(offsets_build_batch(kv, 3, 1700000000999, &batch, &len) == 0);
    for (int i = 0; i < 3; i++)
        offsets_kv_free(&kv[i]);
    struct arena a;
    arena_init(&a, 0);
    struct offsets_record out[3];
    int n = decode_all(batch, len, &a, out, 3);
    check_round_trip_records(failed_, out, n);
    arena_free(&a);
    free(batch); /* after the checks: decoded strings slice it */
}

TEST(test_decode_rejects_garbage_and_ignores_other_types)
{
    struct arena a;
    arena_init(&a, 0);
    struct offsets_record r;
    uint8_t short_key[1] = {0};
    CHECK(offsets_decode_record(short_key, 1, NULL, -1, &a, &r) != 0);
    uint8_t bad_commit[] = {0, 1, 0, 5, 'a'}; /* string length 5, 1 byte present */
    CHECK(offsets_decode_record(bad_commit, sizeof(bad_commit), NULL, -1, &a, &r) != 0);
    uint8_t other[] = {0, 9, 0, 0}; /* a share group record */
    CHECK(offsets_decode_record(other, sizeof(other), NULL, -1, &a, &r) == 0);
    CHECK(r.kind == OFFSETS_RECORD_OTHER);
    arena_free(&a);
}

TEST(test_decode_consumer_group_keys)
{
    struct arena a;
    arena_init(&a, 0);
    struct offsets_record r;
    /* type 3 (ConsumerGroupMetadata): the group id only; a tombstone */
    uint8_t epoch_key[] = {0, 3, 0, 2, 'g', '1'};
    CHECK(offsets_decode_record(epoch_key, sizeof(epoch_key), NULL, -1, &a, &r) == 0);
    CHECK(r.kind == OFFSETS_RECORD_CONSUMER && r.key_type == 3 && r.tombstone);
    CHECK(r.group.len == 2 && memcmp(r.group.ptr, "g1", 2) == 0);
    /* type 8 (ConsumerGroupCurrentMemberAssignment): group and member; value version 0 */
    uint8_t cur_key[] = {0, 8, 0, 1, 'g', 0, 2, 'm', '1'};
    uint8_t value[] = {0, 0, 0x11, 0x22};
    CHECK(offsets_decode_record(cur_key, sizeof(cur_key), value, sizeof(value), &a, &r) == 0);
    CHECK(r.kind == OFFSETS_RECORD_CONSUMER && r.key_type == 8 && !r.tombstone);
    CHECK(r.member_id.len == 2 && memcmp(r.member_id.ptr, "m1", 2) == 0);
    CHECK(r.value_version == 0 && r.value_len == 2 && r.value[0] == 0x11);
    /* bad input: a type 5 key without its member id, a value shorter than its version */
    uint8_t short_member[] = {0, 5, 0, 1, 'g'};
    CHECK(offsets_decode_record(short_member, sizeof(short_member), NULL, -1, &a, &r) != 0);
    uint8_t one_byte[] = {0};
    CHECK(offsets_decode_record(cur_key, sizeof(cur_key), one_byte, 1, &a, &r) != 0);
    arena_free(&a);
}

TEST_MAIN
