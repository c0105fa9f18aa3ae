"""kafka-python 2.0.2 data path against Gregor: KafkaProducer (none and gzip, acks 1 and
all) into a 3-partition topic, KafkaConsumer without a group (assign + seek) reading it all
back; beginning/end offsets and offsets_for_times; and a client pinned to api_version
0.10.1 (message format v1 on the wire) reading what a modern client wrote and vice versa."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Broker, check, comment, fail, run_tests, test  # noqa: E402

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

PARTS = 3


def producer(b, **kw):
    kw.setdefault("request_timeout_ms", int(30000 * SLOW))
    kw.setdefault("api_version_auto_timeout_ms", int(10000 * SLOW))
    return KafkaProducer(bootstrap_servers=b.bootstrap, **kw)


def consumer(b, **kw):
    kw.setdefault("request_timeout_ms", int(40000 * SLOW))
    kw.setdefault("api_version_auto_timeout_ms", int(10000 * SLOW))
    return KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=None, enable_auto_commit=False,
                         **kw)


def send_all(p, topic, msgs):
    """msgs: [(key, value, timestamp_ms or None)] -> [(partition, offset)] in send order."""
    futs = [p.send(topic, key=k, value=v, timestamp_ms=ts) for k, v, ts in msgs]
    p.flush(timeout=60 * SLOW)
    out = []
    for f in futs:
        md = f.get(timeout=60 * SLOW)
        out.append((md.partition, md.offset))
    return out


def read_all(c, topic, n, partitions=PARTS, timeout=60.0):
    tps = [TopicPartition(topic, i) for i in range(partitions)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got = []
    deadline = time.monotonic() + timeout * SLOW
    while len(got) < n:
        if time.monotonic() > deadline:
            fail("read %d of %d records" % (len(got), n))
        for tp, recs in c.poll(timeout_ms=500).items():
            got += recs
    return got


def check_roundtrip(sent_msgs, placed, got, what):
    """Per partition the consumer saw the produced messages in send order at offsets
    0..n-1; each key went to one partition."""
    want = {}
    keypart = {}
    for (k, v, _), (part, off) in zip(sent_msgs, placed):
        want.setdefault(part, []).append((off, k, v))
        check(keypart.setdefault(k, part) == part, "%s: key %r in two partitions" % (what, k))
    for part, lst in want.items():
        check([o for o, _, _ in lst] == list(range(len(lst))),
              "%s: partition %d offsets not 0..n-1 in send order" % (what, part))
    have = {}
    for r in got:
        have.setdefault(r.partition, []).append((r.offset, r.key, r.value))
    check(have == want, "%s: consumed records differ from produced (%s)" % (
        what, {p: len(v) for p, v in have.items()}))


@test
def test_produce_consume_codecs_and_acks():
    """3000 keyed messages for each of (none, acks=1), (gzip, acks=all): offsets per
    partition 0..n-1 in send order, and a group-less consumer reads exactly them back."""
    with Broker({"num.partitions": PARTS}) as b:
        for codec, acks in ((None, 1), ("gzip", "all")):
            topic = "kp-%s" % (codec or "none")
            msgs = [(b"key%d" % (i % 50), b"%s-%d" % (topic.encode(), i) * 3, None)
                    for i in range(3000)]
            p = producer(b, compression_type=codec, acks=acks, linger_ms=5)
            try:
                placed = send_all(p, topic, msgs)
            finally:
                p.close(timeout=10 * SLOW)
            c = consumer(b)
            try:
                comment("%s: consumer api_version %s" % (topic, c.config["api_version"],))
                check_roundtrip(msgs, placed, read_all(c, topic, len(msgs)), topic)
            finally:
                c.close()


@test
def test_offsets_queries():
    """beginning_offsets / end_offsets per partition, and offsets_for_times with CreateTime
    t0 + i*1000 on one partition."""
    with Broker({"num.partitions": 1}) as b:
        t0 = int(time.time() * 1000) - 100000
        p = producer(b)
        try:
            send_all(p, "kp-times", [(None, b"v%d" % i, t0 + i * 1000) for i in range(50)])
        finally:
            p.close(timeout=10 * SLOW)
        c = consumer(b)
        try:
            tp = TopicPartition("kp-times", 0)
            check(c.beginning_offsets([tp]) == {tp: 0}, "beginning %r" % c.beginning_offsets([tp]))
            check(c.end_offsets([tp]) == {tp: 50}, "end %r" % c.end_offsets([tp]))
            r = c.offsets_for_times({tp: t0 + 20500})
            check(r[tp] is not None and r[tp].offset == 21 and r[tp].timestamp == t0 + 21000,
                  "offsets_for_times(t0+20500) = %r" % (r[tp],))
            r = c.offsets_for_times({tp: t0 + 60000})
            check(r[tp] is None, "offsets_for_times after the end = %r" % (r[tp],))
        finally:
            c.close()


@test
def test_old_message_format_client_interoperates():
    """A producer pinned to api_version=(0, 10, 1) (Produce v2, message format v1) and one
    on auto (record batches) write to the same topic; a consumer pinned to (0, 10, 1)
    (Fetch v3, expects magic 0/1) and an auto consumer both read all 400 records intact."""
    with Broker({"num.partitions": 1}) as b:
        msgs_old = [(b"o%d" % i, b"old-%d" % i, None) for i in range(200)]
        msgs_new = [(b"n%d" % i, b"new-%d" % i, None) for i in range(200)]
        p_old = producer(b, api_version=(0, 10, 1))
        p_new = producer(b)
        try:
            send_all(p_old, "kp-legacy", msgs_old)
            send_all(p_new, "kp-legacy", msgs_new)
        finally:
            p_old.close(timeout=10 * SLOW)
            p_new.close(timeout=10 * SLOW)
        want = [(i, k, v) for i, (k, v, _) in enumerate(msgs_old + msgs_new)]
        for pinned in ((0, 10, 1), None):
            kw = {"api_version": pinned} if pinned else {}
            c = consumer(b, **kw)
            try:
                got = read_all(c, "kp-legacy", 400, partitions=1)
                check([(r.offset, r.key, r.value) for r in got] == want,
                      "consumer %s: records differ" % (pinned,))
            finally:
                c.close()


if __name__ == "__main__":
    run_tests()
