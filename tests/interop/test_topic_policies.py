"""Topic policies applied on produce, as Kafka's LogValidator does, through confluent-kafka:
- a compacted topic refuses records without a key (INVALID_RECORD) and appends nothing;
- message.timestamp.before.max.ms / after.max.ms refuse CreateTime timestamps too far from the
  broker's clock (INVALID_TIMESTAMP);
- compression.type=zstd (or gzip) on a topic re-compresses an uncompressed producer's batches:
  the stored batches carry that codec (read from the segment file) and consumers get the same
  records back.
asan-smoke
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Broker, check, comment, run_tests, test  # noqa: E402


def create(b, name, config):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic(name, 1, 1, config=config)]).values():
        f.result(timeout=15 * SLOW)


def produce(b, topic, records, **conf):
    """Produces [(key, value, timestamp_ms or None)]; returns the delivery error names."""
    from confluent_kafka import Producer
    errors = []
    cfg = {"bootstrap.servers": b.bootstrap, "linger.ms": 5, "retries": 0,
           "compression.type": "none"}
    cfg.update(conf)
    p = Producer(cfg)
    for key, value, ts in records:
        kw = {"timestamp": ts} if ts is not None else {}
        p.produce(topic, key=key, value=value,
                  on_delivery=lambda err, msg: errors.append(err.name() if err else None), **kw)
    p.flush(30 * SLOW)
    return errors


def consume(b, topic, n):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "policy",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.monotonic() + 30 * SLOW
    while len(out) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            out.append((m.key(), m.value()))
    c.close()
    return out


def stored_codecs(path):
    """Compression codec of every batch in a .log file."""
    data = open(path, "rb").read()
    codecs, at = [], 0
    while at + 61 <= len(data):
        length = struct.unpack(">i", data[at + 8:at + 12])[0]
        attrs = struct.unpack(">h", data[at + 21:at + 23])[0]
        codecs.append(attrs & 7)
        at += 12 + length
    return codecs


@test
def test_compacted_topic_refuses_keyless_records():
    with Broker() as b:
        create(b, "cmp", {"cleanup.policy": "compact"})
        errs = produce(b, "cmp", [(None, b"no key", None)])
        check(errs == ["INVALID_RECORD"], "keyless record: %r" % errs)
        errs = produce(b, "cmp", [(b"k", b"keyed", None)])
        check(errs == [None], "keyed record: %r" % errs)
        check(consume(b, "cmp", 1) == [(b"k", b"keyed")], "only the keyed record is stored")


@test
def test_timestamp_limits():
    with Broker() as b:
        create(b, "ts", {"message.timestamp.before.max.ms": "60000",
                         "message.timestamp.after.max.ms": "60000"})
        now = int(time.time() * 1000)
        errs = produce(b, "ts", [(b"a", b"old", now - 3600 * 1000)])
        check(errs == ["INVALID_TIMESTAMP"], "hour-old timestamp: %r" % errs)
        errs = produce(b, "ts", [(b"b", b"future", now + 3600 * 1000)])
        check(errs == ["INVALID_TIMESTAMP"], "hour-ahead timestamp: %r" % errs)
        errs = produce(b, "ts", [(b"c", b"now", now)])
        check(errs == [None], "current timestamp: %r" % errs)


@test
def test_topic_compression_type_recompresses():
    with Broker() as b:
        for codec, num in (("zstd", 4), ("gzip", 1)):
            topic = "z-" + codec
            create(b, topic, {"compression.type": codec})
            recs = [(b"k%d" % i, b"value %d " % i * 20, None) for i in range(500)]
            errs = produce(b, topic, recs)
            check(errs == [None] * 500, "produce errors %r" % set(errs))
            got = consume(b, topic, 500)
            check(got == [(k, v) for k, v, _ in recs], "%s: consumed records differ" % codec)
            codecs = stored_codecs(os.path.join(b.data_dir, topic + "-0",
                                                "00000000000000000000.log"))
            check(codecs and set(codecs) == {num}, "%s: stored codecs %r" % (codec, codecs))
            comment("%s: %d batches stored with codec %d" % (codec, len(codecs), num))


if __name__ == "__main__":
    run_tests()
