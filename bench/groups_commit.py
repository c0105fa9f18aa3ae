#!/usr/bin/env python3
"""OffsetCommit rate and __consumer_offsets size before/after compaction (on demand, not a test).

Starts a fresh broker (build/gregor by default, or $GREGOR_BIN) with small __consumer_offsets
segments, then:
  1. one consumer committing synchronously in a loop (each commit durable before the answer);
  2. C consumers in parallel threads doing the same (group commit shares fdatasyncs);
prints commits/s for both, and the size of __consumer_offsets on disk right after the run
and after the log cleaner compacted it. Usage: bench/groups_commit.py [SECONDS] [CONSUMERS]
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10
CONSUMERS = int(sys.argv[2]) if len(sys.argv) > 2 else 8


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def offsets_bytes(data):
    total = 0
    for d in os.listdir(data):
        if d.startswith("__consumer_offsets-"):
            p = os.path.join(data, d)
            total += sum(os.path.getsize(os.path.join(p, f)) for f in os.listdir(p)
                         if f.endswith(".log"))
    return total


def committer(bs, group, seconds, out):
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "enable.auto.commit": False})
    n, offset, end = 0, 1, time.monotonic() + seconds
    while time.monotonic() < end:
        c.commit(offsets=[TopicPartition("bench", 0, offset)], asynchronous=False)
        n += 1
        offset += 1
    c.close()
    out.append(n)


def main():
    tmp = tempfile.mkdtemp(prefix="gregor-commit-bench.")
    data = os.path.join(tmp, "data")
    port = free_port()
    bs = "127.0.0.1:%d" % port
    broker = subprocess.Popen([BIN, "serve", "--override", "listeners=PLAINTEXT://%s" % bs,
                               "--override", "log.dirs=%s" % data,
                               "--override", "offsets.topic.segment.bytes=65536",
                               "--override", "log.retention.check.interval.ms=1000",
                               "--override", "group.initial.rebalance.delay.ms=0"],
                              stderr=open(os.path.join(tmp, "broker.log"), "w"))
    try:
        time.sleep(0.3)
        p = Producer({"bootstrap.servers": bs})
        p.produce("bench", value=b"x")
        p.flush(10)
        for label, n in (("1 consumer", 1), ("%d consumers" % CONSUMERS, CONSUMERS)):
            counts, threads = [], []
            start = time.monotonic()
            for i in range(n):
                t = threading.Thread(target=committer,
                                     args=(bs, "bench-%s-%d" % (label[0], i), SECONDS, counts))
                t.start()
                threads.append(t)
            for t in threads:
                t.join()
            elapsed = time.monotonic() - start
            print("OffsetCommit (synchronous, durable) %-13s %8.0f commits/s  (%d in %.1f s)" %
                  (label + ":", sum(counts) / elapsed, sum(counts), elapsed))
        before = offsets_bytes(data)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and offsets_bytes(data) > before / 4:
            time.sleep(1)
        print("__consumer_offsets on disk: %d bytes after the run, %d bytes after compaction" %
              (before, offsets_bytes(data)))
    finally:
        broker.send_signal(signal.SIGTERM)
        broker.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
