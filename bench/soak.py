"""Soak: produce + consume + consumer-group churn against one broker for N minutes, then check
the data and the broker's memory. Run with `make soak` (SOAK_MINUTES, default 10); not part of
make test.

  * a producer (acks=all; idempotent when the broker advertises InitProducerId) writes
    numbered messages to 6 partitions at a steady ~2,000 msg/s;
  * an assign()-based tail consumer follows the log continuously;
  * group churn: every CHURN_S seconds a new group consumer joins (subscribe) and the oldest
    of up to 3 leaves, so the group rebalances all the time; each commits offsets;
  * a metadata/ApiVersions client reconnects in a loop.
At the end every acknowledged message must be in the log at its acknowledged offset, and RSS
(sampled every 5 s) must not trend upwards: the mean of the last quarter of samples may exceed
the mean of the second quarter by at most 25% + 32 MiB. Prints "ok soak" or "not ok soak: ...".
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests", "interop"))
from harness import Broker, KafkaRaw, comment, rss_kb  # noqa: E402

MINUTES = float(os.environ.get("SOAK_MINUTES", "10"))
TOPIC, PARTS, CHURN_S = "soak", 6, 15


def main():
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    problems = []
    with Broker({"num.partitions": PARTS, "log.segment.bytes": 16 << 20}, name="soak") as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in admin.create_topics([NewTopic(TOPIC, PARTS, 1)]).values():
            f.result(15)
        with KafkaRaw(b) as c:
            idem = 22 in c.api_versions(3)["api_keys"]
        conf = {"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5}
        if idem:
            conf["enable.idempotence"] = True
        acked, failed, lock = [], [], threading.Lock()

        def dr(err, msg):
            with lock:
                (failed.append(str(err)) if err else
                 acked.append((msg.partition(), msg.offset(), msg.value()[:12])))

        stop = threading.Event()
        deadline = time.monotonic() + MINUTES * 60
        stats = {"tail": 0, "group_msgs": 0, "joins": 0, "meta": 0}

        def producer():
            p = Producer(conf)
            seq = 0
            while not stop.is_set():
                try:
                    p.produce(TOPIC, value=b"%011d:" % seq + b"s" * 200, partition=seq % PARTS,
                              on_delivery=dr)
                    seq += 1
                except BufferError:
                    pass
                if seq % 100 == 0:  # ~2,000 msg/s: 10 minutes stay under ~300 MB of log
                    p.poll(0)
                    time.sleep(0.05)
            p.flush(60)

        def tail():
            c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "soak-tail",
                          "enable.auto.commit": False})
            c.assign([TopicPartition(TOPIC, i, 0) for i in range(PARTS)])
            while not stop.is_set():
                m = c.poll(0.2)
                if m is not None and not m.error():
                    stats["tail"] += 1
            c.close()

        def churn():
            members = []
            last = 0
            while not stop.is_set():
                if time.monotonic() - last > CHURN_S:
                    last = time.monotonic()
                    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "soak-group",
                                  "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
                    c.subscribe([TOPIC])
                    members.append(c)
                    stats["joins"] += 1
                    if len(members) > 3:
                        members.pop(0).close()
                for c in members:
                    m = c.poll(0.05)
                    if m is not None and not m.error():
                        stats["group_msgs"] += 1
            for c in members:
                c.close()

        def meta():
            while not stop.is_set():
                try:
                    with KafkaRaw(b) as c:
                        c.api_versions(3)
                        c.metadata(1, topics=None)
                    stats["meta"] += 1
                except Exception as e:  # noqa: BLE001 - recorded, checked at the end
                    problems.append("metadata client: %r" % e)
                    time.sleep(1)
                time.sleep(0.05)

        threads = [threading.Thread(target=f) for f in (producer, tail, churn, meta)]
        for t in threads:
            t.start()
        samples = []
        while time.monotonic() < deadline:
            time.sleep(5)
            r = rss_kb(b.pid)
            if r is None:
                problems.append("broker died")
                break
            samples.append(r)
            comment("t=%4.0fs rss_kb=%d acked=%d tail=%d group_msgs=%d joins=%d meta=%d" % (
                MINUTES * 60 - (deadline - time.monotonic()), r, len(acked), stats["tail"],
                stats["group_msgs"], stats["joins"], stats["meta"]))
        stop.set()
        for t in threads:
            t.join(120)

        # Data check: every acknowledged message at its offset.
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "soak-verify",
                      "enable.auto.commit": False})
        want = {}
        for pt, off, v in acked:
            want.setdefault(pt, {})[off] = v
        ends = {i: c.get_watermark_offsets(TopicPartition(TOPIC, i), timeout=10)[1]
                for i in range(PARTS)}
        c.assign([TopicPartition(TOPIC, i, 0) for i in range(PARTS)])
        seen = {i: {} for i in range(PARTS)}
        n, total = 0, sum(ends.values())
        t_end = time.monotonic() + 300
        while n < total and time.monotonic() < t_end:
            m = c.poll(0.5)
            if m is not None and not m.error():
                seen[m.partition()][m.offset()] = m.value()[:12]
                n += 1
        c.close()
        lost = sum(1 for pt, offs in want.items() for off, v in offs.items()
                   if seen[pt].get(off) != v)
        comment("acknowledged=%d failed=%d lost=%d log_total=%d idempotent=%s"
                % (len(acked), len(failed), lost, total, idem))
        if lost:
            problems.append("%d acknowledged messages lost" % lost)
        if stats["joins"] and not stats["group_msgs"]:
            problems.append("group consumers never received a message")
        if len(samples) >= 8:
            q = len(samples) // 4
            mid = sum(samples[q:2 * q]) / q
            last = sum(samples[-q:]) / q
            comment("rss_kb second quarter mean=%.0f last quarter mean=%.0f" % (mid, last))
            if last > mid * 1.25 + 32 * 1024:
                problems.append("RSS trends up: %.0f -> %.0f kB" % (mid, last))
    if problems:
        print("not ok soak: %s" % "; ".join(problems[:5]))
        sys.exit(1)
    print("ok soak (%.1f min)" % MINUTES)


if __name__ == "__main__":
    main()
