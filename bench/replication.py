#!/usr/bin/python3
"""Replication cost (issue 14's benchmark): one three-node Gregor cluster on this machine (all
three brokers and the client share its cores), a confluent-kafka producer with acks=all and
enable.idempotence, records of 100 B and 1 KiB, to an RF=3 topic (min.insync.replicas=2) and to
an RF=1 topic, measured in the same run. Prints throughput (records/s, MB/s), the RF=3/RF=1
ratio, and p50/p99 acknowledgement latency of each.

  /usr/bin/python3 bench/replication.py [--records 200000] [--sizes 100,1024]
Bounded: each measurement stops after --seconds (default 60) even if not done.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_failover import Cluster  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402


def measure(c, topic, size, records, seconds):
    p = Producer({"bootstrap.servers": c.bootstrap(), "acks": "all", "enable.idempotence": True,
                  "linger.ms": 5, "batch.size": 1 << 20, "queue.buffering.max.messages": 500000,
                  "log_level": 0})
    lat = []
    done = [0]
    value = b"x" * size

    def cb(err, msg, t0=None):
        if err is None:
            done[0] += 1

    t_start = time.monotonic()
    deadline = t_start + seconds
    sent = 0
    while sent < records and time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            p.produce(topic, value=value, on_delivery=lambda e, m, t0=t0: (
                cb(e, m), lat.append(time.monotonic() - t0) if e is None else None))
            sent += 1
        except BufferError:
            p.poll(0.01)
        if sent % 1000 == 0:
            p.poll(0)
    p.flush(max(1.0, deadline - time.monotonic()))
    elapsed = time.monotonic() - t_start
    lat.sort()
    q = (lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000) if lat else (lambda f: -1)
    return {"rate": done[0] / elapsed, "mb": done[0] * size / elapsed / 1e6,
            "p50": q(0.50), "p99": q(0.99), "acked": done[0]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=200000)
    ap.add_argument("--sizes", default="100,1024")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--session-ms", type=int, default=9000)
    ap.add_argument("--heartbeat-ms", type=int, default=2000)
    args = ap.parse_args()
    c = Cluster(args)
    try:
        a = c.admin(1)
        fs = a.create_topics([NewTopic("rf3", 3, 3, config={"min.insync.replicas": "2"}),
                              NewTopic("rf1", 3, 1)])
        for f in fs.values():
            f.result(timeout=30)
        time.sleep(1.0)
        print("%-6s %-4s %12s %8s %9s %9s" % ("size", "rf", "records/s", "MB/s", "p50 ms",
                                              "p99 ms"))
        for size in (int(s) for s in args.sizes.split(",")):
            res = {}
            for topic in ("rf1", "rf3"):
                res[topic] = r = measure(c, topic, size, args.records, args.seconds)
                print("%-6d %-4s %12.0f %8.1f %9.2f %9.2f" % (size, topic[2:], r["rate"],
                                                              r["mb"], r["p50"], r["p99"]))
            print("%-6d ratio RF=3/RF=1 throughput: %.2f" % (size, res["rf3"]["rate"] /
                                                              max(1.0, res["rf1"]["rate"])))
    finally:
        c.close()


if __name__ == "__main__":
    main()
