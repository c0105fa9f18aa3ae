#!/usr/bin/python3
"""acks=all tail latency right after a bulk load (issue 18, item 3): one `gregor serve`, then
`gregor bench e2e` (1 KiB records at --rate per second, acks=all, the consumer with librdkafka's
default fetch.wait.max.ms) for --seconds, first in isolation, then again at once after
`gregor bench produce` loaded --bulk-gib GiB of 1 KiB records with acks=1 into another topic
(4 partitions), which leaves that much for the kernel to write back. Prints p50/p99/max of
each and the ratio of the p99s (1.0 = the bulk load costs acks=all nothing).

  /usr/bin/python3 bench/e2e_after_bulk.py [--bulk-gib 3] [--rate 10000] [--seconds 10]
Bounded: every step is killed after a timeout; the broker and its data dir go at the end.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GREGOR_BIN") or os.path.join(ROOT, "build", "gregor")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_broker(d):
    port = free_port()
    log = open(os.path.join(d, "broker.log"), "wb")
    p = subprocess.Popen([BIN, "serve", "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % port,
                          "--override", "log.dirs=%s" % os.path.join(d, "data")],
                         stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 15
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p, "127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit("broker did not start")


def bench(args, timeout):
    out = subprocess.run([BIN, "bench"] + args + ["--json"], capture_output=True, text=True,
                         timeout=timeout)
    if out.returncode != 0:
        sys.exit("gregor bench %s failed: %s" % (" ".join(args), out.stderr.strip()))
    return json.loads(out.stdout.strip().splitlines()[-1])


def e2e(brokers, topic, a):
    n = int(a.rate * a.seconds)
    j = bench(["e2e", "-b", brokers, "-t", topic, "-s", "1024", "-a", "all", "--rate",
               str(a.rate), "-n", str(n), "--partitions", "1"], a.seconds * 4 + 60)
    lat = j["latency_ms"] or {}
    return lat.get("p50", -1), lat.get("p99", -1), lat.get("max", -1), j["records"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bulk-gib", type=float, default=3.0)
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    d = tempfile.mkdtemp(prefix="gregor-e2e-bulk-")
    broker = None
    try:
        os.sync()
        broker, brokers = start_broker(d)
        iso = e2e(brokers, "lat-isolated", a)
        n = int(a.bulk_gib * (1 << 30) / 1024)
        t0 = time.monotonic()
        j = bench(["produce", "-b", brokers, "-t", "bulk", "-s", "1024", "-a", "1", "-n", str(n),
                   "--partitions", "4"], 900)
        secs = time.monotonic() - t0
        after = e2e(brokers, "lat-after-bulk", a)
        print("bulk load: %.2f GiB acks=1 in %.1f s (%.0f MiB/s)" % (
            j["bytes"] / (1 << 30), secs, j["mib_per_sec"]))
        print("%-26s %9s %9s %9s %9s" % ("e2e 1 KiB acks=all", "p50 ms", "p99 ms", "max ms",
                                         "records"))
        for name, r in (("in isolation", iso), ("right after the bulk load", after)):
            print("%-26s %9.2f %9.2f %9.2f %9d" % ((name,) + r))
        print("ratio p99 after/isolated: %.2f" % (after[1] / max(0.001, iso[1])))
    finally:
        if broker is not None:
            broker.send_signal(signal.SIGTERM)
            try:
                broker.wait(30)
            except subprocess.TimeoutExpired:
                broker.kill()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
