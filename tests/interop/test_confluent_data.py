"""confluent-kafka (librdkafka 2.0.2) data path against Gregor: acks 0/1/all, tiny and
large batches (checked on the wire with raw fetches), consuming from the beginning and from
the end, offsets_for_times / watermarks, headers, null and large values. Consumers use
assign() (no consumer group), so this file does not depend on the group coordinator."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Broker, KafkaRaw, check, comment, fail, run_tests, test  # noqa: E402
from kafka_records import ensure_topic, fetch_all  # noqa: E402

from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, TIMESTAMP_CREATE_TIME,  # noqa: E402
                             Consumer, KafkaError, Producer, TopicPartition)


def conf_key(k):
    return k if k.endswith("_cb") else k.replace("_", ".")


def producer(b, **conf):
    c = {"bootstrap.servers": b.bootstrap, "message.timeout.ms": int(60000 * SLOW),
         "socket.timeout.ms": int(30000 * SLOW)}
    c.update({conf_key(k): v for k, v in conf.items()})
    return Producer(c)


def consumer(b, **conf):
    c = {"bootstrap.servers": b.bootstrap, "group.id": "gregor-test-assign",
         "enable.auto.commit": False, "enable.partition.eof": False,
         "socket.timeout.ms": int(30000 * SLOW)}
    c.update({conf_key(k): v for k, v in conf.items()})
    return Consumer(c)


def produce_all(p, topic, msgs, partition=0):
    """msgs: list of dicts for Producer.produce; returns delivery reports in order."""
    reports = []

    def dr(err, m):
        reports.append((err, m.offset() if m is not None else None))

    for m in msgs:
        while True:
            try:
                p.produce(topic, partition=partition, on_delivery=dr, **m)
                break
            except BufferError:
                p.poll(0.05)
    left = p.flush(60 * SLOW)
    check(left == 0, "%d messages still undelivered after flush" % left)
    check(len(reports) == len(msgs), "%d delivery reports for %d messages"
          % (len(reports), len(msgs)))
    errs = [e for e, _ in reports if e is not None]
    check(not errs, "delivery errors: %r" % errs[:5])
    return reports


def consume_n(c, n, timeout=60.0):
    out = []
    deadline = time.monotonic() + timeout * SLOW
    while len(out) < n:
        if time.monotonic() > deadline:
            fail("consumed %d of %d messages within %.0fs" % (len(out), n, timeout * SLOW))
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            fail("consumer error: %s" % m.error())
        out.append(m)
    return out


def consume_quiet(c, seconds):
    """Polls for a while and returns whatever arrives (used to prove nothing extra does)."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        m = c.poll(0.1)
        if m is not None and not m.error():
            out.append(m)
    return out


@test
def test_acks_0_1_all_roundtrip():
    """2000 keyed messages per acks setting (0, 1, all) to partition 0: every delivery
    report succeeds, for acks 1/all with offsets 0..1999 in order; a consumer assigned from
    the beginning reads exactly those messages, in order, with offsets 0..1999."""
    with Broker({"num.partitions": 1}) as b:
        for acks in ("0", "1", "all"):
            topic = "acks-" + acks
            msgs = [{"key": b"k%d" % (i % 17), "value": b"acks%s-%d" % (acks.encode(), i)}
                    for i in range(2000)]
            reports = produce_all(producer(b, acks=acks, linger_ms=5), topic, msgs)
            if acks != "0":
                check([o for _, o in reports] == list(range(2000)),
                      "acks=%s: delivery offsets %r..." % (acks, [o for _, o in reports][:5]))
            c = consumer(b)
            try:
                c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
                got = consume_n(c, 2000)
                check([(m.offset(), m.key(), m.value()) for m in got] ==
                      [(i, m["key"], m["value"]) for i, m in enumerate(msgs)],
                      "acks=%s: consumed messages differ" % acks)
                check(not consume_quiet(c, 0.5), "acks=%s: extra messages" % acks)
            finally:
                c.close()


def count_batches(b, topic):
    with KafkaRaw(b) as raw:
        batches, _ = fetch_all(raw, topic, 0, 0)
    return len(batches), sum(x["count"] for x in batches)


@test
def test_tiny_and_large_batches():
    """The same 5000 messages sent one record per batch (linger.ms=0,
    batch.num.messages=1) and in large batches (linger.ms=200, batch.size=1 MB): both read
    back intact; a raw fetch shows 5000 batches for the first and at most 50 for the second
    (the broker stores batches as the producer made them)."""
    with Broker({"num.partitions": 1}) as b:
        msgs = [{"key": None, "value": (b"%06d" % i) * 16} for i in range(5000)]
        for name, conf, check_batches in (
                ("tiny", {"linger_ms": 0, "batch_num_messages": 1}, lambda n: n == 5000),
                ("large", {"linger_ms": 200, "batch_num_messages": 100000,
                           "batch_size": 1000000}, lambda n: n <= 50)):
            topic = "batch-" + name
            produce_all(producer(b, **conf), topic, msgs)
            c = consumer(b)
            try:
                c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
                got = consume_n(c, len(msgs))
                check([m.value() for m in got] == [m["value"] for m in msgs],
                      "%s: consumed values differ" % name)
            finally:
                c.close()
            nb, nrec = count_batches(b, topic)
            comment("%s: %d batches for %d records" % (name, nb, nrec))
            check(nrec == len(msgs), "%s: %d records in the log" % (name, nrec))
            check(check_batches(nb), "%s: %d batches" % (name, nb))


def wait_fetch_active(c, topic, partition, timeout=30.0):
    """Polls the consumer until librdkafka's statistics show the partition fetching from a
    resolved offset (so a consumer started at OFFSET_END has looked up the end)."""
    state = {}

    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        m = c.poll(0.1)
        check(m is None or m.error(), "message before any was produced: %r" % (m,))
        st = STATS.get(id(c))
        if st:
            p = st.get("topics", {}).get(topic, {}).get("partitions", {}).get(str(partition))
            if p:
                state = {k: p.get(k) for k in ("fetch_state", "next_offset", "hi_offset")}
                if p.get("fetch_state") == "active" and p.get("next_offset", -1) >= 0:
                    return p["next_offset"]
    fail("consumer never became active on %s-%d: %r" % (topic, partition, state))


STATS = {}


@test
def test_consume_from_end_sees_only_new_messages():
    """100 old messages; a consumer assigned at OFFSET_END, once librdkafka reports the
    partition active at offset 100, gets exactly the 10 messages produced afterwards
    (offsets 100..109) and none of the old ones."""
    with Broker({"num.partitions": 1}) as b:
        p = producer(b, linger_ms=1)
        produce_all(p, "end", [{"value": b"old%d" % i} for i in range(100)])
        holder = {}

        def stats_cb(js):
            STATS[id(holder["c"])] = json.loads(js)

        c = consumer(b, statistics_interval_ms=100, stats_cb=stats_cb)
        holder["c"] = c
        try:
            c.assign([TopicPartition("end", 0, OFFSET_END)])
            start = wait_fetch_active(c, "end", 0)
            check(start == 100, "consumer at OFFSET_END starts at %d, want 100" % start)
            produce_all(p, "end", [{"value": b"new%d" % i} for i in range(10)])
            got = consume_n(c, 10)
            check([(m.offset(), m.value()) for m in got] ==
                  [(100 + i, b"new%d" % i) for i in range(10)],
                  "from end: %r" % [(m.offset(), m.value()) for m in got])
            check(not consume_quiet(c, 0.5), "extra messages after the new ones")
        finally:
            c.close()
            STATS.clear()


@test
def test_offsets_for_times_and_watermarks():
    """100 messages with CreateTime t0 + i*1000 ms: offsets_for_times(t0) = 0,
    (t0 + 50500) = 51, (t0 + 99000) = 99, (after the last) = -1 (end); watermarks (0, 100);
    consumed messages keep their CreateTime."""
    with Broker({"num.partitions": 1}) as b:
        t0 = int(time.time() * 1000) - 200000
        produce_all(producer(b), "times", [{"value": b"t%d" % i, "timestamp": t0 + i * 1000}
                                           for i in range(100)])
        c = consumer(b)
        try:
            lo, hi = c.get_watermark_offsets(TopicPartition("times", 0), timeout=10 * SLOW)
            check((lo, hi) == (0, 100), "watermarks %r" % ((lo, hi),))
            for ts, want in ((t0 - 5, 0), (t0, 0), (t0 + 50500, 51), (t0 + 99000, 99),
                             (t0 + 99001, -1)):
                r = c.offsets_for_times([TopicPartition("times", 0, ts)], timeout=10 * SLOW)
                check(r[0].error is None, "offsets_for_times(%d): %s" % (ts - t0, r[0].error))
                check(r[0].offset == want, "offsets_for_times(t0%+d) = %d, want %d"
                      % (ts - t0, r[0].offset, want))
            c.assign([TopicPartition("times", 0, 51)])
            got = consume_n(c, 49)
            check([m.timestamp() for m in got] ==
                  [(TIMESTAMP_CREATE_TIME, t0 + i * 1000) for i in range(51, 100)],
                  "timestamps %r" % [m.timestamp() for m in got[:3]])
        finally:
            c.close()


@test
def test_headers_nulls_and_large_values():
    """Headers (several, repeated key, null header value), null key, null value (tombstone),
    empty value, and a 900 kB value (below message.max.bytes) all read back unchanged."""
    with Broker({"num.partitions": 1}) as b:
        big = bytes(range(256)) * 3600
        msgs = [
            {"key": b"h", "value": b"v", "headers": [("a", b"1"), ("b", b"2"), ("a", b"3")]},
            {"key": b"hn", "value": b"v", "headers": [("n", None)]},
            {"key": None, "value": b"nokey"},
            {"key": b"tomb", "value": None},
            {"key": b"empty", "value": b""},
            {"key": b"big", "value": big},
        ]
        produce_all(producer(b), "misc", msgs)
        c = consumer(b)
        try:
            c.assign([TopicPartition("misc", 0, OFFSET_BEGINNING)])
            got = consume_n(c, len(msgs))
            for m, want in zip(got, msgs):
                check(m.key() == want["key"], "key %r != %r" % (m.key(), want["key"]))
                check(m.value() == want["value"], "value of %r differs (len %s vs %s)"
                      % (want["key"], len(m.value() or b""), len(want["value"] or b"")))
                check((m.headers() or []) == want.get("headers", []),
                      "headers %r != %r" % (m.headers(), want.get("headers")))
        finally:
            c.close()


if __name__ == "__main__":
    run_tests()
