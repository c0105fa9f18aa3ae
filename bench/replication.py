#!/usr/bin/python3
"""Replication cost (issue 14's benchmark): one three-node Gregor cluster on this machine (all
three brokers and the client share its cores). The client is `gregor bench produce` (C,
librdkafka, idempotent, acks=all), so that the client's own CPU does not decide the ratio.
Records of 100 B and 1 KiB go to an RF=3 topic (min.insync.replicas=2) and to an RF=1 topic,
3 partitions each, measured in the same run, alternating RF=1 and RF=3 --rounds times on a
fresh topic each time (deleted after its run), each run after a sync(2) so that none pays
for the previous one's writeback or page cache. Prints every run, then the medians: records/s, MB/s, p50/p99 ack latency,
the brokers' CPU-seconds per run, and the RF=3/RF=1 ratio of median throughputs.

  /usr/bin/python3 bench/replication.py [--records 300000] [--sizes 100,1024] [--rounds 3]
Bounded: each run is killed after --seconds (default 60).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_failover import BIN, Cluster  # noqa: E402
from confluent_kafka.admin import NewTopic  # noqa: E402


def cpu_seconds(pids):
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def create_topic(a, topic, rf):
    config = {"min.insync.replicas": "2"} if rf == 3 else {}
    a.create_topics([NewTopic(topic, 3, rf, config=config)])[topic].result(timeout=30)
    time.sleep(1.0)


def delete_topic(a, topic):
    """Each run's data goes with its topic, so that the page cache does not fill up over the
    rounds: with memory full, every later page costs a reclaim, charged to whichever run comes
    later (seen: the same run's broker CPU doubling by the fifth round)."""
    a.delete_topics([topic])[topic].result(timeout=30)
    time.sleep(2.0)


def measure(c, topic, size, records, seconds):
    os.sync()  # every run starts without the previous runs' dirty pages to write back
    time.sleep(0.5)
    pids = [p.pid for p in c.procs.values()]
    cpu0 = cpu_seconds(pids)
    out = subprocess.run([BIN, "bench", "produce", "-b", c.bootstrap(), "-t", topic,
                          "-n", str(records), "-s", str(size), "-a", "all", "--json"],
                         capture_output=True, text=True, timeout=seconds)
    cpu = cpu_seconds(pids) - cpu0
    if out.returncode != 0:
        raise RuntimeError("bench produce failed: %s" % out.stderr.strip())
    j = json.loads(out.stdout.strip().splitlines()[-1])
    if j["errors"]:
        raise RuntimeError("bench produce: %d delivery errors" % j["errors"])
    lat = j["latency_ms"] or {"p50": -1, "p99": -1}
    return {"rate": j["records_per_sec"], "mb": j["bytes"] / j["seconds"] / 1e6,
            "p50_ms": lat["p50"], "p99_ms": lat["p99"], "cpu": cpu}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=300000)
    ap.add_argument("--sizes", default="100,1024")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--session-ms", type=int, default=9000)
    ap.add_argument("--heartbeat-ms", type=int, default=2000)
    args = ap.parse_args()
    c = Cluster(args)
    try:
        a = c.admin(1)
        sizes = [int(s) for s in args.sizes.split(",")]
        print("%-6s %-4s %12s %8s %9s %9s %8s" % ("size", "rf", "records/s", "MB/s", "p50 ms",
                                                  "p99 ms", "cpu s"))
        for size in sizes:
            res = {"rf1": [], "rf3": []}
            for n in range(args.rounds):
                for rf in ("rf1", "rf3"):
                    topic = "%s-%d-%d" % (rf, size, n)
                    create_topic(a, topic, 3 if rf == "rf3" else 1)
                    r = measure(c, topic, size, args.records, args.seconds)
                    delete_topic(a, topic)
                    res[rf].append(r)
                    print("%-6d %-4s %12.0f %8.1f %9.2f %9.2f %8.2f" % (
                        size, rf[2:], r["rate"], r["mb"], r["p50_ms"], r["p99_ms"], r["cpu"]), flush=True)
            med = {rf: statistics.median(r["rate"] for r in rs)
                   for rf, rs in res.items()}
            for rf, rs in res.items():
                print("%-6d %-4s median %9.0f rec/s  p50 %.2f ms  p99 %.2f ms  cpu %.2f s" % (
                    size, rf[2:], med[rf], statistics.median(r["p50_ms"] for r in rs),
                    statistics.median(r["p99_ms"] for r in rs),
                    statistics.median(r["cpu"] for r in rs)))
            print("%-6d ratio RF=3/RF=1 throughput (medians): %.2f" % (
                size, med["rf3"] / max(1.0, med["rf1"])), flush=True)
    finally:
        c.close()


if __name__ == "__main__":
    main()
