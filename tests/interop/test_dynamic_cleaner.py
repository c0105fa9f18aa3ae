"""Dynamic log.cleaner.* settings (Kafka's LogCleaner.ReconfigurableConfigs, KIP-226) applied
by the running cleaner of a live broker, seen through /metrics and a consumer.

What is tried:
- log.cleaner.backoff.ms: with a 60 s static backoff (and the 300 s retention check) a dirty
  compacted topic stays uncompacted; setting the cluster default to 200 ms makes the running
  cleaner compact it within seconds (fewer records from the beginning, cleaner I/O counted);
- log.cleaner.io.max.bytes.per.second: lowered to 20000 bytes/s, the next compaction pauses
  the cleaner (gregor_log_cleaner_throttled_ms_total grows by about its I/O over the rate);
  raised again, a compaction adds no pause;
- DescribeConfigs on the broker: DYNAMIC_DEFAULT_BROKER_CONFIG for the default, and a
  per-broker value (DYNAMIC_BROKER_CONFIG) winning over it;
- refused as Kafka refuses: log.cleaner.threads 1 -> 3 (more than double) and 0 with
  INVALID_REQUEST; a negative backoff, a non-number throttle and a negative io.buffer.size
  with INVALID_CONFIG; the other buffer settings (dedupe.buffer.size, io.buffer.size,
  io.buffer.load.factor) and threads=2 accepted.
asan-smoke
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, check, comment, free_port, poll,  # noqa: E402
                     run_tests, test)
from dynamic_configs import (INVALID_CONFIG, INVALID_REQUEST, alter_default,  # noqa: E402
                             describe_default, metric)

TOPIC = "dyn-compact"


def produce(bootstrap, rounds, keys=20):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    for r in range(rounds):
        for k in range(keys):
            p.produce(TOPIC, key=b"k%02d" % k, value=b"r%04d-" % r + b"v" * 100)
        p.flush(30 * SLOW)


def count_from_start(bootstrap):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dyn-cleaner",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(TOPIC, 0, 0)])
    n, deadline = 0, time.monotonic() + 30 * SLOW
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                break
            raise AssertionError("consume error %s" % m.error())
        n += 1
    c.close()
    return n


@test
def test_cleaner_settings_change_running_cleaner():
    from confluent_kafka.admin import AdminClient, NewTopic
    mport = free_port()
    with Broker({"log.cleaner.backoff.ms": "60000", "log.retention.check.interval.ms": "300000",
                 "metrics.listener": "http://%s:%d" % (HOST, mport)}) as b:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        cfg = {"cleanup.policy": "compact", "segment.bytes": "8192",
               "min.cleanable.dirty.ratio": "0.01"}
        for f in a.create_topics([NewTopic(TOPIC, 1, 1, config=cfg)]).values():
            f.result(timeout=15 * SLOW)
        produce(b.bootstrap, 30)
        time.sleep(3 * SLOW)
        n0 = count_from_start(b.bootstrap)
        check(n0 == 600, "compacted before the backoff changed: %d of 600 records" % n0)
        check(metric(mport, "gregor_log_cleaner_io_bytes_total") == 0, "cleaner I/O before")

        t0 = time.monotonic()
        check(alter_default(b, {"log.cleaner.backoff.ms": "200"}) is None, "backoff 200 ms")
        n1 = poll(lambda: (lambda n: n if n < n0 else None)(count_from_start(b.bootstrap)),
                  20 * SLOW, "compaction after log.cleaner.backoff.ms=200")
        comment("backoff 60 s -> 200 ms: %d -> %d records from the start in %.1fs"
                % (n0, n1, time.monotonic() - t0))
        io1 = metric(mport, "gregor_log_cleaner_io_bytes_total")
        check(io1 > 0, "cleaner I/O counted: %r" % io1)
        got = describe_default(b, name="1")
        check(got.get("log.cleaner.backoff.ms") == ("200", 3), "described: %r"
              % (got.get("log.cleaner.backoff.ms"),))

        # The throttle: the next compaction's I/O at 20000 bytes/s means a pause of
        # about io / 20000 s.
        th0 = metric(mport, "gregor_log_cleaner_throttled_ms_total")
        check(alter_default(b, {"log.cleaner.backoff.ms": "200",
                                "log.cleaner.io.max.bytes.per.second": "20000"}) is None,
              "throttle 20000 bytes/s")
        produce(b.bootstrap, 30)
        poll(lambda: metric(mport, "gregor_log_cleaner_io_bytes_total") > io1, 20 * SLOW,
             "the next compaction")
        io2 = metric(mport, "gregor_log_cleaner_io_bytes_total")
        expect_ms = (io2 - io1) * 1000 / 20000
        th1 = poll(lambda: (lambda t: t if t - th0 >= 0.8 * expect_ms else None)(
            metric(mport, "gregor_log_cleaner_throttled_ms_total")), 30 * SLOW,
            "a throttle pause of ~%d ms" % expect_ms)
        comment("throttled %d ms for %d bytes of cleaner I/O at 20000 bytes/s (expected ~%d ms)"
                % (th1 - th0, io2 - io1, expect_ms))
        check(alter_default(b, {"log.cleaner.backoff.ms": "200"}) is None, "throttle removed")
        time.sleep(1 * SLOW)
        th2 = metric(mport, "gregor_log_cleaner_throttled_ms_total")
        produce(b.bootstrap, 30)
        poll(lambda: metric(mport, "gregor_log_cleaner_io_bytes_total") > io2, 20 * SLOW,
             "a compaction without the throttle")
        time.sleep(0.5 * SLOW)
        th3 = metric(mport, "gregor_log_cleaner_throttled_ms_total")
        check(th3 - th2 < 200, "no pause once the throttle is removed: %d ms" % (th3 - th2))

        # per-broker value wins over the default
        check(alter_default(b, {"log.cleaner.backoff.ms": "300"}, name="1") is None,
              "broker 1's backoff")
        got = describe_default(b, name="1")
        check(got.get("log.cleaner.backoff.ms") == ("300", 2), "per-broker: %r"
              % (got.get("log.cleaner.backoff.ms"),))

        for k, v, code in (("log.cleaner.threads", "3", INVALID_REQUEST),
                           ("log.cleaner.threads", "0", INVALID_REQUEST),
                           ("log.cleaner.backoff.ms", "-1", INVALID_CONFIG),
                           ("log.cleaner.io.max.bytes.per.second", "fast", INVALID_CONFIG),
                           ("log.cleaner.io.buffer.size", "-1", INVALID_CONFIG)):
            e = alter_default(b, {"log.cleaner.backoff.ms": "200", k: v})
            check(e is not None and e.code() == code, "%s=%s: %r (want %d)" % (k, v, e, code))
            comment("%s=%s refused: %s" % (k, v, e.msg))
        ok = {"log.cleaner.backoff.ms": "200", "log.cleaner.threads": "2",
              "log.cleaner.dedupe.buffer.size": "67108864", "log.cleaner.io.buffer.size": "1048576",
              "log.cleaner.io.buffer.load.factor": "0.8"}
        check(alter_default(b, ok) is None, "buffer settings and threads=2 accepted")
        got = describe_default(b)
        for k, v in ok.items():
            check(got.get(k) == (v, 3), "%s described: %r" % (k, got.get(k)))


if __name__ == "__main__":
    run_tests()
