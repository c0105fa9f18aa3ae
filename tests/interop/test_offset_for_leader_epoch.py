"""OffsetForLeaderEpoch (KIP-101/KIP-320) with raw requests: where a leader epoch ends, from the
partition's leader-epoch history, as Kafka's Partition.lastOffsetForLeaderEpoch answers it.
asan-smoke
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Broker, KafkaRaw, Reader, TAGS_NONE, array, carray, check,  # noqa: E402
                     comment, cstring, i32, run_tests, string, test)
from kafka_records import LATEST, ensure_topic, list_offset, produce, record_batch  # noqa: E402

OFFSET_FOR_LEADER_EPOCH = 23
UNKNOWN_TOPIC_OR_PARTITION, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH = 3, 74, 75


def epoch_ends(k, version, topic, parts):
    """parts: [(partition, current_leader_epoch, leader_epoch)] ->
    {partition: (error, leader_epoch (v1+, else None), end_offset)}"""
    flex = version >= 4

    def part(p):
        pid, cur, ep = p
        return i32(pid) + (i32(cur) if version >= 2 else b"") + i32(ep) + \
            (TAGS_NONE if flex else b"")
    enc_t = (cstring(topic) + carray(parts, part) + TAGS_NONE) if flex else \
        (string(topic) + array(parts, part))
    body = (i32(-1) if version >= 3 else b"") + (carray([enc_t]) if flex else array([enc_t]))
    if flex:
        body += TAGS_NONE
    r = Reader(k.call(OFFSET_FOR_LEADER_EPOCH, version, body))
    if version >= 2:
        r.int32()  # throttle

    def one(r):
        err, pid = r.int16(), r.int32()
        ep = r.int32() if version >= 1 else None
        end = r.int64()
        if flex:
            r.tagged_fields()
        return pid, (err, ep, end)

    def topic_result(r):
        name = r.cstring() if flex else r.string()
        ps = r.carray(one) if flex else r.array(one)
        if flex:
            r.tagged_fields()
        return name, ps
    topics = r.carray(topic_result) if flex else r.array(topic_result)
    if flex:
        r.tagged_fields()
    r.end()
    check(len(topics) == 1 and topics[0][0] == topic, "topics %r" % (topics,))
    return dict(topics[0][1])


@test
def test_epoch_end_offsets_from_leader_epoch_history():
    """After 3 batches (6 records) in the current epoch E: epoch E ends at the log end (6, as
    ListOffsets says) in v0 (no epoch field), v2, v3 and flexible v4; an epoch below E that was
    never used ends where E starts (0, reported as asked, Kafka's rule for epochs before the
    history); E+1 and -1 are unknown (no error, -1/-1); current_leader_epoch E+1 is
    UNKNOWN_LEADER_EPOCH, a missing partition UNKNOWN_TOPIC_OR_PARTITION."""
    with Broker({"num.partitions": 1}) as b, KafkaRaw(b) as k:
        ensure_topic(k, "ep", 1)
        for i in range(3):
            r = produce(k, "ep", 0, record_batch([(b"k%d" % i, b"a"), (b"x", b"b")]))
            check(r["error_code"] == 0, "produce %r" % r)
        md = k.metadata(9, ["ep"])
        e = md["topics"][0]["partitions"][0]["leader_epoch"]
        comment("leader epoch %d" % e)
        check(e >= 0, "metadata leader epoch %d" % e)
        leo = list_offset(k, "ep", 0, LATEST)["offset"]
        check(leo == 6, "log end %d" % leo)
        check(epoch_ends(k, 0, "ep", [(0, -1, e)]) == {0: (0, None, 6)}, "v0")
        for v in (2, 3, 4):
            got = epoch_ends(k, v, "ep", [(0, -1, e), (0, e, e)] if v > 2 else [(0, e, e)])
            check(got == {0: (0, e, 6)}, "v%d current epoch: %r" % (v, got))
            got = epoch_ends(k, v, "ep", [(0, -1, e + 1)])
            check(got == {0: (0, -1, -1)}, "v%d future epoch: %r" % (v, got))
            got = epoch_ends(k, v, "ep", [(0, -1, -1)])
            check(got == {0: (0, -1, -1)}, "v%d undefined epoch: %r" % (v, got))
            got = epoch_ends(k, v, "ep", [(0, e + 1, e)])
            check(got == {0: (UNKNOWN_LEADER_EPOCH, -1, -1)}, "v%d current+1: %r" % (v, got))
            got = epoch_ends(k, v, "ep", [(5, -1, e)])
            check(got == {5: (UNKNOWN_TOPIC_OR_PARTITION, -1, -1)}, "v%d partition 5: %r"
                  % (v, got))
        if e > 0:
            got = epoch_ends(k, 3, "ep", [(0, -1, e - 1)])
            check(got == {0: (0, e - 1, 0)}, "older epoch: %r" % (got,))
            got = epoch_ends(k, 3, "ep", [(0, e - 1, e)])
            check(got == {0: (FENCED_LEADER_EPOCH, -1, -1)}, "fenced: %r" % (got,))


if __name__ == "__main__":
    run_tests()
