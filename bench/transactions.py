#!/usr/bin/env python3
"""Transactional throughput as a ratio to idempotent produce, and read_committed fetch as a
ratio to read_uncommitted, in one run (issue 16; on demand, not a test).

Starts a fresh broker (build/gregor, or $GREGOR_BIN) on a free port with a temporary data
directory, then with confluent-kafka (librdkafka), 100 B records, acks=all, linger.ms=5, each
run on a fresh 3-partition topic for --seconds:
  idempotent          enable.idempotence, no transactions (the baseline)
  txn-100, txn-1000   transactions of 100 / 1000 records: begin, produce, commit, repeat
then reads each txn-N topic (a marker in every partition the transaction touched every N
records) from the beginning with read_uncommitted and read_committed consumers, alternating,
--rounds times each (timed from the first batch received, so the consumer's start-up is left
out), and prints records/s and the ratios (medians). The client is one Python process, so the produce figures
include its per-record cost on both sides of each ratio.

Usage: bench/transactions.py [--seconds 5] [--rounds 3]
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GREGOR_BIN", os.path.join(ROOT, "build", "gregor"))
PARTS = 3
VALUE = b"v" * 100


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the broker did not start; see its log")


def produce_plain(bs, topic, seconds):
    p = Producer({"bootstrap.servers": bs, "enable.idempotence": True, "linger.ms": 5,
                  "queue.buffering.max.messages": 1000000})
    n, end = 0, time.monotonic() + seconds
    t0 = time.monotonic()
    while time.monotonic() < end:
        for _ in range(1000):
            try:
                p.produce(topic, VALUE)
            except BufferError:
                p.poll(0.01)
                continue
            n += 1
        p.poll(0)
    p.flush(60)
    return n, time.monotonic() - t0


def produce_txn(bs, topic, seconds, per_txn):
    p = Producer({"bootstrap.servers": bs, "transactional.id": "bench-%s" % topic,
                  "linger.ms": 5, "queue.buffering.max.messages": 1000000})
    p.init_transactions(30)
    n, end = 0, time.monotonic() + seconds
    t0 = time.monotonic()
    while time.monotonic() < end:
        p.begin_transaction()
        for _ in range(per_txn):
            p.produce(topic, VALUE)
        p.commit_transaction(60)
        n += per_txn
    return n, time.monotonic() - t0


def consume(bs, topic, isolation, expect):
    c = Consumer({"bootstrap.servers": bs, "group.id": "bench-read", "isolation.level":
                  isolation, "enable.auto.commit": False, "fetch.max.bytes": 52428800})
    c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(PARTS)])
    n, first_n, t0 = 0, 0, None
    deadline = time.monotonic() + 120
    while n < expect and time.monotonic() < deadline:
        n += sum(1 for m in c.consume(num_messages=10000, timeout=0.5) if m.error() is None)
        if n and t0 is None:  # timed from the first batch on: not the consumer's start-up
            t0, first_n = time.monotonic(), n
    rate = (n - first_n) / max(time.monotonic() - t0, 1e-6) if t0 else 0.0
    c.close()
    return n, rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="gregor-txn-bench.")
    port = free_port()
    bs = "127.0.0.1:%d" % port
    log = open(os.path.join(tmp, "broker.log"), "w")
    broker = subprocess.Popen([BIN, "serve", "--override", "listeners=PLAINTEXT://%s" % bs,
                               "--override", "log.dirs=%s" % os.path.join(tmp, "data"),
                               "--override", "num.partitions=%d" % PARTS],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        rows = []
        n, dt = produce_plain(bs, "bench-idem", args.seconds)
        base = n / dt
        rows.append(("idempotent", n, base, 1.0))
        counts = {}
        for per in (100, 1000):
            topic = "bench-txn-%d" % per
            n, dt = produce_txn(bs, topic, args.seconds, per)
            counts[topic] = n
            rows.append(("txn-%d" % per, n, n / dt, n / dt / base))
        print("%-22s %10s %12s %8s" % ("run", "records", "records/s", "ratio"))
        for name, n, rate, ratio in rows:
            print("%-22s %10d %12.0f %8.2f" % (name, n, rate, ratio))
        for per in (100, 1000):
            topic = "bench-txn-%d" % per
            rates = {"read_uncommitted": [], "read_committed": []}
            for _ in range(args.rounds):
                for iso in rates:
                    n, rate = consume(bs, topic, iso, counts[topic])
                    if n != counts[topic]:
                        raise SystemExit("%s read %d of %d records" % (iso, n, counts[topic]))
                    rates[iso].append(rate)
            ru = statistics.median(rates["read_uncommitted"])
            rc = statistics.median(rates["read_committed"])
            print("%-22s %10d %12.0f %8.2f" % ("fetch-%d uncommitted" % per, counts[topic], ru,
                                               1.0))
            print("%-22s %10d %12.0f %8.2f" % ("fetch-%d committed" % per, counts[topic], rc,
                                               rc / ru))
        print("(txn-N / idempotent produce; fetch-N: the txn-N topic read from the beginning, "
              "read_committed / read_uncommitted, medians of %d rounds, timed from the first "
              "batch)" % args.rounds)
    finally:
        broker.terminate()
        try:
            broker.wait(20)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
