#!/usr/bin/python3
"""Throughput cost of the idempotent producer: confluent-kafka (librdkafka) producers with and
without enable.idempotence against one gregor broker, alternating in the same run, acks=all.
Prints msgs/s for each round and the ratio idempotent / plain (target >= 0.95).

    GREGOR_BIN=build/gregor /usr/bin/python3 bench/idempotence.py [MESSAGES] [VALUE_BYTES]
"""
import multiprocessing
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "interop"))

from harness import Broker  # noqa: E402

PRODUCERS = 2
ROUNDS = 3


def run_producer(args):
    bootstrap, topic, n, size, idem = args
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": idem, "acks": "all",
                  "linger.ms": 5, "queue.buffering.max.messages": 500000,
                  "max.in.flight.requests.per.connection": 5})
    value = b"x" * size
    failed = [0]

    def dr(err, msg):
        if err is not None:
            failed[0] += 1
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=value, on_delivery=dr)
                break
            except BufferError:
                p.poll(0.01)
        if i % 5000 == 0:
            p.poll(0)
    p.flush(120)
    return failed[0]


def round_(pool, bootstrap, topic, n, size, idem):
    t0 = time.monotonic()
    failed = sum(pool.map(run_producer, [(bootstrap, topic, n, size, idem)] * PRODUCERS))
    dt = time.monotonic() - t0
    if failed:
        raise SystemExit("%d delivery failures" % failed)
    return PRODUCERS * n / dt


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 500000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    with Broker({"num.partitions": 6}, name="bench") as b, multiprocessing.Pool(PRODUCERS) as pool:
        round_(pool, b.bootstrap, "warmup", 20000, size, True)
        plain, idem = [], []
        for r in range(ROUNDS):
            plain.append(round_(pool, b.bootstrap, "plain-%d" % r, n, size, False))
            idem.append(round_(pool, b.bootstrap, "idem-%d" % r, n, size, True))
            print("round %d: plain %.0f msg/s, idempotent %.0f msg/s" % (r, plain[-1], idem[-1]))
            sys.stdout.flush()
        mp, mi = statistics.median(plain), statistics.median(idem)
        print("median: plain %.0f msg/s, idempotent %.0f msg/s, ratio %.3f (target >= 0.95)"
              % (mp, mi, mi / mp))


if __name__ == "__main__":
    main()
