#!/usr/bin/python3
"""Broker-level crash tests (asan-smoke: also run against the ASan build, with less data).

1. kill -9 under load: a confluent-kafka producer (acks=all) keeps writing to 3 partitions
   with small segments while the broker is SIGKILLed and restarted three times. Every
   message whose delivery was acknowledged must afterwards be in the log at exactly the
   offset the acknowledgement named, and every batch served must pass the consumer's CRC
   check.
2. torn tail: with the broker killed, the end of the active segment is cut in the middle of
   the last batch, or junk bytes are appended after it. After restart the broker serves an
   intact prefix (never a partial or corrupt batch), ListOffsets agrees with what is served,
   and a new produce continues right after it.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))

from harness import (ASAN, SLOW, Broker, KafkaRaw, check, comment, fail,  # noqa: E402
                     run_tests, test)
from kafka_records import (LATEST, ensure_topic, fetch_all, list_offset, produce,  # noqa: E402
                           record_batch)

PARTS = 3


@test
def test_kill9_under_load_keeps_every_acknowledged_message():
    """3 SIGKILL/restart cycles while producing with acks=all; then every acknowledged
    message is found at its acknowledged offset (duplicates from retries are allowed, loss
    and moved records are not); the consumer (check.crcs=true) sees no error."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
    per_phase = 1500 if ASAN else 8000
    with Broker({"num.partitions": PARTS, "log.segment.bytes": 1 << 20}) as b:
        acked = {}  # value -> (partition, offset)
        failed = []

        def dr(err, m):
            if err is None:
                acked[m.value()] = (m.partition(), m.offset())
            else:
                failed.append(err)

        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5,
                      "message.timeout.ms": int(120000 * SLOW), "retry.backoff.ms": 50,
                      "reconnect.backoff.max.ms": 200})
        seq = 0
        for phase in range(4):
            target = len(acked) + per_phase
            deadline = time.monotonic() + 120 * SLOW
            while len(acked) < target:
                if time.monotonic() > deadline:
                    fail("phase %d: only %d of %d acknowledged" % (phase, len(acked), target))
                for _ in range(200):
                    try:
                        p.produce("crash", key=b"k%d" % (seq % 97), value=b"m%09d" % seq,
                                  on_delivery=dr)
                        seq += 1
                    except BufferError:
                        break
                p.poll(0.01)
            if phase < 3:
                b.kill()  # in-flight requests are cut off mid-way
                p.poll(0.2)
                b.start()
                comment("phase %d: %d acknowledged, %d sent; broker restarted"
                        % (phase, len(acked), seq))
        left = p.flush(120 * SLOW)
        check(left == 0, "%d messages undelivered after flush" % left)
        comment("sent %d, acknowledged %d, failed %d" % (seq, len(acked), len(failed)))
        check(len(acked) >= seq * 0.9, "only %d of %d acknowledged" % (len(acked), seq))

        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "crash-check",
                      "enable.auto.commit": False, "check.crcs": True,
                      "enable.partition.eof": True})
        try:
            c.assign([TopicPartition("crash", i, OFFSET_BEGINNING) for i in range(PARTS)])
            log = {}
            eof = set()
            deadline = time.monotonic() + 180 * SLOW
            while len(eof) < PARTS:
                if time.monotonic() > deadline:
                    fail("consumer did not reach the end of every partition (eof %r)" % eof)
                m = c.poll(0.2)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        eof.add(m.partition())
                        continue
                    fail("consumer error: %s" % m.error())
                eof.discard(m.partition())
                log[(m.partition(), m.offset())] = m.value()
        finally:
            c.close()
        missing = [(v, po) for v, po in acked.items() if log.get(po) != v]
        check(not missing, "%d acknowledged messages not at their offsets, e.g. %r (log has %r)"
              % (len(missing), missing[:3], [log.get(po) for _, po in missing[:3]]))
        comment("log holds %d records (%d duplicates from retries)"
                % (len(log), len(log) - len(set(log.values()))))


def segment_files(b, topic):
    d = os.path.join(b.data_dir, topic + "-0")
    return d, sorted(f for f in os.listdir(d) if f.endswith(".log"))


def write_batches(c, topic, nbatches, per_batch=5):
    for i in range(nbatches):
        recs = [(b"k", b"b%02d-r%d" % (i, j)) for j in range(per_batch)]
        r = produce(c, topic, 0, record_batch(recs))
        check(r["error_code"] == 0 and r["base_offset"] == i * per_batch, "produce %r" % r)


def served(c, topic):
    batches, f = fetch_all(c, topic, 0, 0)  # CRC-checked, partial batches refused
    recs = [(r["offset"], r["value"]) for x in batches for r in x["records"]]
    return recs, f


@test
def test_torn_tail_truncated_on_restart():
    """10 batches of 5 records; broker SIGKILLed; the segment loses its last 7 bytes (the
    last batch is torn). After restart exactly the 9 whole batches (45 records) are served,
    all CRC-valid; ListOffsets end is 45; the next produce gets offset 45 and is readable."""
    with Broker({"num.partitions": 1}) as b:
        with KafkaRaw(b) as c:
            ensure_topic(c, "torn", 1)
            write_batches(c, "torn", 10)
        b.kill()
        d, logs = segment_files(b, "torn")
        path = os.path.join(d, logs[-1])
        size = os.path.getsize(path)
        with open(path, "r+b") as f:
            f.truncate(size - 7)
        b.start()
        with KafkaRaw(b) as c:
            ensure_topic(c, "torn", 1)
            recs, _ = served(c, "torn")
            want = [(i * 5 + j, b"b%02d-r%d" % (i, j)) for i in range(10) for j in range(5)]
            check(recs == want[:45], "after tearing the last batch the log serves %d records "
                  "(%r...), want the first 45" % (len(recs), recs[-2:]))
            end = list_offset(c, "torn", 0, LATEST)["offset"]
            check(end == 45, "log end offset %d after recovery, want 45" % end)
            r = produce(c, "torn", 0, record_batch([(b"k", b"after")]))
            check(r["error_code"] == 0 and r["base_offset"] == 45, "produce after recovery %r"
                  % r)
            recs, _ = served(c, "torn")
            check(recs == want[:45] + [(45, b"after")], "log after new produce: %r" % recs[-3:])


@test
def test_junk_after_last_batch_ignored_on_restart():
    """As above, but 100 junk bytes (zeros, then 0xff) are appended after the last complete
    batch: all 50 records are still served, nothing of the junk; log end 50; the next
    produce lands at 50."""
    for junk in (b"\x00" * 100, b"\xff" * 100):
        with Broker({"num.partitions": 1}) as b:
            with KafkaRaw(b) as c:
                ensure_topic(c, "junk", 1)
                write_batches(c, "junk", 10)
            b.kill()
            d, logs = segment_files(b, "junk")
            with open(os.path.join(d, logs[-1]), "ab") as f:
                f.write(junk)
            b.start()
            with KafkaRaw(b) as c:
                ensure_topic(c, "junk", 1)
                recs, _ = served(c, "junk")
                check(len(recs) == 50 and recs[-1] == (49, b"b09-r4"),
                      "junk %r: %d records served" % (junk[:1], len(recs)))
                end = list_offset(c, "junk", 0, LATEST)["offset"]
                check(end == 50, "junk %r: log end %d" % (junk[:1], end))
                r = produce(c, "junk", 0, record_batch([(b"k", b"after")]))
                check(r["error_code"] == 0 and r["base_offset"] == 50, "produce %r" % r)
                recs, _ = served(c, "junk")
                check(recs[-1] == (50, b"after") and len(recs) == 51, "log tail %r" % recs[-2:])


if __name__ == "__main__":
    run_tests()
