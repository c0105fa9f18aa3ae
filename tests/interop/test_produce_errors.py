"""Produce/Fetch/ListOffsets with raw frames: the happy path byte for byte, and the error
answers Kafka gives for bad batches and bad positions. After every refused request the test
checks that nothing was appended (ListOffsets and Fetch) and that the same connection still
serves a good request. (asan-smoke)"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Broker, KafkaRaw, Reader, check, i8, i32, poll, run_tests,  # noqa: E402
                     string, test)
from kafka_records import (EARLIEST, LATEST, ensure_topic, fetch, fetch_all,  # noqa: E402
                           fix_crc, list_offset, parse_batches, produce, record_batch)

NONE = 0
OFFSET_OUT_OF_RANGE = 1
CORRUPT_MESSAGE = 2
UNKNOWN_TOPIC_OR_PARTITION = 3
MESSAGE_TOO_LARGE = 10
INVALID_TOPIC_EXCEPTION = 17
INVALID_RECORD = 87
FIND_COORDINATOR = 10


def fetched_records(c, topic, partition, offset=0):
    batches, f = fetch_all(c, topic, partition, offset)
    recs = [r for b in batches for r in b["records"] if r["offset"] >= offset]
    return f, recs


def check_log(c, topic, expect_values):
    """The partition holds exactly these values (offsets 0..n-1) and nothing else."""
    end = list_offset(c, topic, 0, LATEST)
    check(end["error_code"] == NONE, "ListOffsets error %d" % end["error_code"])
    check(end["offset"] == len(expect_values), "log end offset %d, want %d"
          % (end["offset"], len(expect_values)))
    f, recs = fetched_records(c, topic, 0)
    check(f["high_watermark"] == len(expect_values), "high watermark %d" % f["high_watermark"])
    got = [(r["offset"], r["value"]) for r in recs]
    want = list(enumerate(expect_values))
    check(got == want, "log holds %r, want %r" % (got[:10], want[:10]))


@test
def test_produce_fetch_roundtrip_stored_as_sent():
    """Two batches (3 records with keys, a null value, headers; then 2 more) with acks=1:
    base offsets 0 and 3, LogAppendTime -1 (CreateTime topic), log start 0. ListOffsets gives
    0 / 5. Fetch returns both batches with valid CRCs and every byte from attributes on
    identical to what was sent (the broker only writes base offset and leader epoch).
    Fetching loops like a consumer (Kafka answers from one segment per fetch).
    A fetch from offset 4 starts with the batch containing offset 4."""
    with Broker({"num.partitions": 1}) as b, KafkaRaw(b) as c:
        ensure_topic(c, "rt", 1)
        b1 = record_batch([(b"k1", b"v1"), (None, None, [("h1", b"x")]), (b"k3", b"v3" * 100)])
        b2 = record_batch([(b"k4", b"v4"), (b"k5", b"")], base_timestamp=1700000001000)
        r1 = produce(c, "rt", 0, b1)
        check(r1["error_code"] == NONE, "produce error %d" % r1["error_code"])
        check(r1["base_offset"] == 0, "first base offset %d" % r1["base_offset"])
        check(r1["log_append_time"] == -1, "log_append_time %d" % r1["log_append_time"])
        check(r1["log_start_offset"] == 0, "log_start_offset %d" % r1["log_start_offset"])
        r2 = produce(c, "rt", 0, b2)
        check(r2["error_code"] == NONE and r2["base_offset"] == 3, "second produce %r" % r2)
        check(list_offset(c, "rt", 0, EARLIEST)["offset"] == 0, "earliest offset")
        check(list_offset(c, "rt", 0, LATEST)["offset"] == 5, "latest offset")
        batches, f = fetch_all(c, "rt", 0, 0)
        check(f["high_watermark"] == 5 and f["last_stable_offset"] == 5 and
              f["log_start_offset"] == 0, "fetch offsets %r" % {k: v for k, v in f.items()
                                                               if k != "records"})
        check([x["base_offset"] for x in batches] == [0, 3], "batch bases %r"
              % [x["base_offset"] for x in batches])
        for got, sent in zip(batches, (b1, b2)):
            check(got["raw"][21:] == sent[21:], "batch at %d differs from what was sent"
                  % got["base_offset"])
        recs = [r for x in batches for r in x["records"]]
        check([(r["offset"], r["key"], r["value"]) for r in recs] ==
              [(0, b"k1", b"v1"), (1, None, None), (2, b"k3", b"v3" * 100), (3, b"k4", b"v4"),
               (4, b"k5", b"")], "records %r" % recs)
        check(recs[1]["headers"] == [(b"h1", b"x")], "headers %r" % recs[1]["headers"])
        f4 = fetch(c, "rt", 0, 4)
        bs = parse_batches(f4["records"])
        check(bs and bs[0]["base_offset"] <= 4 <= bs[0]["base_offset"] +
              bs[0]["last_offset_delta"], "fetch from 4 starts with %r"
              % [x["base_offset"] for x in bs])


@test
def test_old_create_times_do_not_roll_segments():
    """Kafka rolls a segment on time when the new batch's max timestamp minus the
    segment's first timestamp exceeds log.roll.ms, not when the records are old relative to
    the wall clock. 20 batches with CreateTime in 2023, 10 ms apart: one segment file."""
    with Broker({"num.partitions": 1}) as b, KafkaRaw(b) as c:
        ensure_topic(c, "oldts", 1)
        for i in range(20):
            r = produce(c, "oldts", 0, record_batch([(b"k", b"v%d" % i)],
                                                    base_timestamp=1700000000000 + 10 * i))
            check(r["error_code"] == NONE, "produce error %d" % r["error_code"])
        logs = sorted(f for f in os.listdir(os.path.join(b.data_dir, "oldts-0"))
                      if f.endswith(".log"))
        check(logs == ["00000000000000000000.log"], "segments %r" % logs)


@test
def test_bad_crc_refused_with_corrupt_message():
    """A batch whose payload was altered after the CRC was computed, and a batch with a
    wrong CRC field: error 2 CORRUPT_MESSAGE, nothing appended, the connection keeps
    working (a good batch afterwards gets offset 1)."""
    with Broker({"num.partitions": 1}) as b, KafkaRaw(b) as c:
        ensure_topic(c, "crc", 1)
        check(produce(c, "crc", 0, record_batch([(b"k", b"good0")]))["base_offset"] == 0,
              "good produce")
        bad = bytearray(record_batch([(b"k", b"evil!")]))
        bad[-3] ^= 0x20
        r = produce(c, "crc", 0, bytes(bad))
        check(r["error_code"] == CORRUPT_MESSAGE, "payload flip: error %d, want 2"
              % r["error_code"])
        bad = bytearray(record_batch([(b"k", b"evil2")]))
        bad[17:21] = i32(0x12345678)
        r = produce(c, "crc", 0, bytes(bad))
        check(r["error_code"] == CORRUPT_MESSAGE, "wrong CRC: error %d, want 2"
              % r["error_code"])
        check_log(c, "crc", [b"good0"])
        r = produce(c, "crc", 0, record_batch([(b"k", b"good1")]))
        check(r["error_code"] == NONE and r["base_offset"] == 1, "produce after errors %r" % r)
        check_log(c, "crc", [b"good0", b"good1"])


@test
def test_malformed_batch_structure_refused():
    """CRC-valid but inconsistent batches: a record count of 5 with 1 record; a batch
    length larger than the bytes sent; magic 7; two batches for one partition (Produce v3+
    allows exactly one). Each is refused (CORRUPT_MESSAGE 2 or
    INVALID_RECORD 87, as Kafka does); nothing is appended."""
    with Broker({"num.partitions": 1}) as b, KafkaRaw(b) as c:
        ensure_topic(c, "mal", 1)
        good = record_batch([(b"k", b"v")])
        cases = []
        x = bytearray(good)
        x[57:61] = i32(5)  # records count
        cases.append(("count 5 with 1 record", fix_crc(bytes(x))))
        x = bytearray(good)
        x[8:12] = i32(len(good) - 12 + 40)  # batch length past the end
        cases.append(("batch length past the data", bytes(x)))
        x = bytearray(good)
        x[16] = 7  # magic
        cases.append(("magic 7", bytes(x)))
        # Produce v3+ carries exactly one batch per partition (Kafka: INVALID_RECORD).
        cases.append(("two batches in one partition",
                      good + record_batch([(b"k2", b"v2")], base_offset=1)))
        wrong = []
        for what, data in cases:
            r = produce(c, "mal", 0, data)
            if r["error_code"] not in (CORRUPT_MESSAGE, INVALID_RECORD):
                wrong.append("%s: error %d" % (what, r["error_code"]))
        check(not wrong, "want 2 or 87; got " + "; ".join(wrong))
        check_log(c, "mal", [])
        check(produce(c, "mal", 0, good)["error_code"] == NONE, "good batch after errors")


@test
def test_oversized_batch_refused_with_message_too_large():
    """message.max.bytes=10000: a 20 kB batch gets 10 MESSAGE_TOO_LARGE and is not stored;
    a 5 kB batch is accepted."""
    with Broker({"num.partitions": 1, "message.max.bytes": 10000}) as b, KafkaRaw(b) as c:
        ensure_topic(c, "big", 1)
        r = produce(c, "big", 0, record_batch([(b"k", b"x" * 20000)]))
        check(r["error_code"] == MESSAGE_TOO_LARGE, "20 kB batch: error %d, want 10"
              % r["error_code"])
        check_log(c, "big", [])
        r = produce(c, "big", 0, record_batch([(b"k", b"y" * 5000)]))
        check(r["error_code"] == NONE and r["base_offset"] == 0, "5 kB batch: %r" % r)
        check_log(c, "big", [b"y" * 5000])


@test
def test_missing_partition_and_topic():
    """Topic with 1 partition: Produce, Fetch and ListOffsets on partition 5 answer
    3 UNKNOWN_TOPIC_OR_PARTITION. With auto.create.topics.enable=false, Produce to an unknown
    topic answers 3 and does not create it (Metadata still says 3)."""
    with Broker({"num.partitions": 1}) as b, KafkaRaw(b) as c:
        ensure_topic(c, "one", 1)
        r = produce(c, "one", 5, record_batch([(b"k", b"v")]))
        check(r["error_code"] == UNKNOWN_TOPIC_OR_PARTITION, "produce p5: error %d"
              % r["error_code"])
        check(fetch(c, "one", 5, 0)["error_code"] == UNKNOWN_TOPIC_OR_PARTITION, "fetch p5")
        check(list_offset(c, "one", 5)["error_code"] == UNKNOWN_TOPIC_OR_PARTITION,
              "ListOffsets p5")
        check_log(c, "one", [])
    with Broker({"num.partitions": 1, "auto.create.topics.enable": "false"}) as b, \
            KafkaRaw(b) as c:
        r = produce(c, "nosuch", 0, record_batch([(b"k", b"v")]))
        check(r["error_code"] == UNKNOWN_TOPIC_OR_PARTITION, "produce to unknown topic: %d"
              % r["error_code"])
        md = c.metadata(4, topics=["nosuch"], allow_auto_create=True)
        check([(t["name"], t["error_code"]) for t in md["topics"]] ==
              [("nosuch", UNKNOWN_TOPIC_OR_PARTITION)], "metadata %r" % md["topics"])


@test
def test_clients_cannot_append_to_internal_topics():
    """Kafka's ReplicaManager: Produce to __consumer_offsets or __transaction_state from an
    ordinary client id answers 17 INVALID_TOPIC_EXCEPTION and appends nothing (a client could
    otherwise plant records the coordinators replay); Kafka's tools' client id
    "__admin_client" may. Tried: a batch of garbage-valued records into __consumer_offsets-0."""
    with Broker({"offsets.topic.num.partitions": 1, "offsets.topic.replication.factor": 1}) as b, \
            KafkaRaw(b) as c:
        def coordinator_ready():
            r = Reader(c.call(FIND_COORDINATOR, 1, string("g") + i8(0)))
            r.int32()
            return (True,) if r.int16() == NONE else None
        poll(coordinator_ready, 10, "__consumer_offsets created")
        before = list_offset(c, "__consumer_offsets", 0)["offset"]
        bad = record_batch([(b"\x00\x05garbage", b"\xff" * 16)])
        for topic in ("__consumer_offsets", "__transaction_state"):
            r = produce(c, topic, 0, bad)
            check(r["error_code"] == INVALID_TOPIC_EXCEPTION, "produce to %s: error %d"
                  % (topic, r["error_code"]))
        after = list_offset(c, "__consumer_offsets", 0)["offset"]
        check(after == before, "__consumer_offsets-0 end moved %d -> %d" % (before, after))
        ensure_topic(c, "plain", 1)
        check(produce(c, "plain", 0, bad)["error_code"] == NONE, "the connection still serves")
        with KafkaRaw(b, client_id="__admin_client") as admin:
            r = produce(admin, "__consumer_offsets", 0, bad)
            check(r["error_code"] == NONE, "__admin_client produce: error %d" % r["error_code"])
        # The admin's malformed record (a ConsumerGroupMemberMetadata key version with a
        # garbage body) is replayed when the shard loads again: skipped, never a crash.
        b.restart()
        with KafkaRaw(b) as c2:
            poll(lambda: (True,) if Reader(c2.call(FIND_COORDINATOR, 1, string("g") + i8(0)))
                 .take(6)[4:] == b"\x00\x00" else None, 10,
                 "the coordinator loads past the malformed record")
            end = list_offset(c2, "__consumer_offsets", 0)["offset"]
            check(end == after + 1, "the admin's record is kept: end %d, before it %d"
                  % (end, after))


@test
def test_fetch_outside_log_offset_out_of_range():
    """Log with 2 records: Fetch at 2 (the end) is not an error and returns no records;
    Fetch at 3, at 1000 and at -5 answer 1 OFFSET_OUT_OF_RANGE; the connection still serves
    a good fetch."""
    with Broker({"num.partitions": 1}) as b, KafkaRaw(b) as c:
        ensure_topic(c, "oor", 1)
        produce(c, "oor", 0, record_batch([(b"a", b"0"), (b"b", b"1")]))
        f = fetch(c, "oor", 0, 2)
        check(f["error_code"] == NONE, "fetch at end: error %d" % f["error_code"])
        check(not parse_batches(f["records"]), "fetch at end returned records")
        for off in (3, 1000, -5):
            f = fetch(c, "oor", 0, off)
            check(f["error_code"] == OFFSET_OUT_OF_RANGE, "fetch at %d: error %d, want 1"
                  % (off, f["error_code"]))
        check_log(c, "oor", [b"0", b"1"])


if __name__ == "__main__":
    run_tests()
