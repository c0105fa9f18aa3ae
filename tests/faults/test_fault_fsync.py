"""fsync error injection: an fdatasync/fsync that fails with EIO must never be acknowledged.

The test compiles tests/faults/fault_fsync.c into an LD_PRELOAD shim and starts the broker
with it. The shim fails fsync/fdatasync with EIO for file descriptors whose path contains
GREGOR_FAULT_FSYNC_MATCH ("/victim-0/") once the file GREGOR_FAULT_FSYNC_TRIGGER exists; the
test creates that file after the broker is up and both topics hold acknowledged data.

Asserted (log.h: a failed disk write puts the log offline -> KAFKA_STORAGE_ERROR):
  * an acks=all produce to victim-0 after the fault is armed is answered KAFKA_STORAGE_ERROR
    (raw Produce v8), never success; a confluent-kafka acks=all producer gets a delivery
    failure, never a delivery report with an offset;
  * later produces to victim-0 keep failing (the partition is offline) without a new fsync;
  * produces (acks=all) to the other topic, healthy-0, still succeed;
  * a Fetch of victim-0 either returns the acknowledged messages (in order) or
    KAFKA_STORAGE_ERROR (the documented offline behaviour) - never other data; the test
    prints which;
  * the broker exits cleanly on SIGTERM, and after a restart without the fault every
    acknowledged victim message is there exactly once, in order, and victim-0 accepts
    produces again.
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
from harness import (ASAN, SLOW, Broker, KafkaRaw, _tmp_root, check, comment,  # noqa: E402
                     run_tests, test)
import kafka_records as kr  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
KAFKA_STORAGE_ERROR = 56
N_BEFORE = 20


def build_shim(outdir):
    so = os.path.join(outdir, "fault_fsync.so")
    cc = os.environ.get("CC", "cc")
    p = subprocess.run([cc, "-shared", "-fPIC", "-O1", "-Wall", "-o", so,
                        os.path.join(HERE, "fault_fsync.c"), "-ldl"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(p.returncode == 0, "building the fsync shim failed:\n%s" % p.stdout.decode())
    return so


def values(batches):
    return [(r["offset"], r["value"]) for b in batches for r in b["records"]]


def produce_confluent(bootstrap, topic, msgs, timeout_s=15.0, **conf):
    """acks=all; returns [(value, err or None, offset)] in production order."""
    from confluent_kafka import Producer
    cfg = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
           "max.in.flight.requests.per.connection": 1,
           "message.timeout.ms": int(timeout_s * 1000 * SLOW)}
    cfg.update(conf)
    p = Producer(cfg)
    out = []

    def cb(err, m):
        out.append((m.value(), err, m.offset() if err is None else None))
    for v in msgs:
        p.produce(topic, value=v, partition=0, on_delivery=cb)
        p.poll(0)
    left = p.flush(timeout_s * SLOW + 10)
    check(left == 0, "%d messages still undelivered after flush" % left)
    return out


@test
def test_fsync_eio_is_never_acknowledged_and_takes_the_partition_offline():
    tmp = tempfile.mkdtemp(prefix="fsync-shim-", dir=_tmp_root())  # removed at exit
    so = build_shim(tmp)
    trigger = os.path.join(tmp, "arm")
    env = {"GREGOR_FAULT_FSYNC_MATCH": "/victim-0/", "GREGOR_FAULT_FSYNC_TRIGGER": trigger,
           "LD_PRELOAD": so}
    if ASAN:  # the shim is not the ASan runtime; it must come after it, so don't insist
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    props = {"num.partitions": 1, "auto.create.topics.enable": "true"}
    with Broker(props, env=env) as b:
        with KafkaRaw(b) as c:
            kr.ensure_topic(c, "victim", partitions=1)
            kr.ensure_topic(c, "healthy", partitions=1)
        acked = {}
        for topic in ("victim", "healthy"):
            msgs = [b"%s-%d" % (topic.encode(), i) for i in range(N_BEFORE)]
            res = produce_confluent(b.bootstrap, topic, msgs)
            errs = [e for _, e, _ in res if e is not None]
            check(not errs, "%s: acks=all produce failed before the fault: %s" % (topic, errs[:3]))
            acked[topic] = [(o, v) for v, _, o in res]
            check([o for o, _ in acked[topic]] == list(range(N_BEFORE)),
                  "%s: offsets %r" % (topic, [o for o, _ in acked[topic]]))
        comment("before the fault: %d acknowledged messages in each of victim-0, healthy-0"
                % N_BEFORE)

        # Arm: fsync/fdatasync of anything under victim-0/ now fails with EIO.
        open(trigger, "w").close()
        with KafkaRaw(b, timeout=30 * SLOW) as c:
            batch = kr.record_batch([(None, b"victim-after-fault-raw")])
            r = kr.produce(c, "victim", 0, batch, acks=-1, timeout_ms=int(15000 * SLOW))
            injected = _count_lines(trigger + ".log")
            comment("raw acks=all produce to victim-0 after arming: error_code=%d "
                    "base_offset=%d; injected fsync failures so far: %d"
                    % (r["error_code"], r["base_offset"], injected))
            check(injected >= 1, "the shim injected no fsync failure: the produce was answered "
                  "without an fsync of victim-0 (error_code %d)" % r["error_code"])
            check(r["error_code"] != 0, "BUG: acks=all produce acknowledged at offset %d although "
                  "fdatasync of victim-0 failed with EIO" % r["base_offset"])
            check(r["error_code"] == KAFKA_STORAGE_ERROR,
                  "acks=all produce after fsync EIO answered error %d, expected "
                  "KAFKA_STORAGE_ERROR (56)" % r["error_code"])

            # Offline now: every later produce fails at once, acks=1 as well.
            for acks in (-1, 1):
                r2 = kr.produce(c, "victim", 0, kr.record_batch([(None, b"again")]), acks=acks,
                                timeout_ms=int(10000 * SLOW))
                check(r2["error_code"] == KAFKA_STORAGE_ERROR,
                      "produce acks=%d to offline victim-0 answered %d, expected 56"
                      % (acks, r2["error_code"]))

            # The other partition is unaffected.
            r3 = kr.produce(c, "healthy", 0, kr.record_batch([(None, b"healthy-raw")]),
                            acks=-1, timeout_ms=int(10000 * SLOW))
            check(r3["error_code"] == 0, "acks=all produce to healthy-0 failed with %d while "
                  "only victim-0 has failing fsyncs" % r3["error_code"])
            check(r3["base_offset"] == N_BEFORE, "healthy-0 base offset %d" % r3["base_offset"])

            # Reads of victim-0: the acknowledged data, or the documented storage error.
            f = kr.fetch(c, "victim", 0, 0)
            if f["error_code"] == 0:
                got = values(kr.parse_batches(f["records"]))
                check(got[:N_BEFORE] == acked["victim"],
                      "fetch of offline victim-0 returned wrong data: %r" % got[:5])
                comment("fetch of offline victim-0: the %d acknowledged messages are still "
                        "readable" % N_BEFORE)
            else:
                check(f["error_code"] == KAFKA_STORAGE_ERROR,
                      "fetch of offline victim-0 answered %d" % f["error_code"])
                comment("fetch of offline victim-0 answers KAFKA_STORAGE_ERROR (log.h: an "
                        "offline log refuses reads as well, as Kafka does)")
            hf, _ = kr.fetch_all(c, "healthy", 0)
            check(values(hf) == acked["healthy"] + [(N_BEFORE, b"healthy-raw")],
                  "healthy-0 content wrong after the victim fault")

        # A real client: acks=all to victim gets a delivery failure, never an offset.
        res = produce_confluent(b.bootstrap, "victim", [b"victim-confluent-%d" % i
                                                        for i in range(3)],
                                timeout_s=8.0, retries=0)
        bad = [(v, o) for v, e, o in res if e is None]
        check(not bad, "BUG: confluent-kafka got successful delivery reports %r from offline "
              "victim-0" % bad)
        comment("confluent-kafka acks=all to victim-0: %d delivery failures (%s)"
                % (len(res), sorted(set(e.name() for _, e, _ in res))))
        res = produce_confluent(b.bootstrap, "healthy", [b"healthy-confluent"])
        check(res[0][1] is None, "confluent acks=all to healthy-0 failed: %s" % res[0][1])
        check("goes offline" in b.log_text(), "broker log does not say victim-0 went offline")

        # Disarm and restart: acknowledged victim data is there, exactly once, in order.
        os.unlink(trigger)
        injected = _count_lines(trigger + ".log")
        b.restart()
        with KafkaRaw(b, timeout=30 * SLOW) as c:
            kr.ensure_topic(c, "victim", partitions=1)
            vb, _ = kr.fetch_all(c, "victim", 0)
            got = values(vb)
            check(got[:N_BEFORE] == acked["victim"],
                  "after restart victim-0 starts with %r, expected the %d acknowledged messages"
                  % (got[:3], N_BEFORE))
            extra = [v for _, v in got[N_BEFORE:]]
            check(all(v == b"victim-after-fault-raw" for v in extra),
                  "after restart victim-0 holds unexpected records %r" % extra)
            r = kr.produce(c, "victim", 0, kr.record_batch([(None, b"victim-after-restart")]),
                           acks=-1)
            check(r["error_code"] == 0, "produce to victim-0 after restart failed: %d"
                  % r["error_code"])
            comment("after restart: %d acknowledged victim messages intact, %d unacknowledged "
                    "record(s) from the failed fsync kept, %d fsync failures injected in all"
                    % (N_BEFORE, len(extra), injected))


def _count_lines(path):
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


if __name__ == "__main__":
    run_tests()
