"""num.io.threads changed at run time (KIP-226's DynamicThreadPool) on a running broker with
live traffic: the I/O worker pool grows and shrinks (gregor_io_workers / gregor_io_worker_threads
on /metrics), a producer and a consumer keep going through every change and lose nothing.

What is tried:
- grow 2 -> 4 (new workers accept connections), shrink 4 -> 2 (the removed workers close their
  connections and their threads exit), shrink below the start-up count 2 -> 1 (the start-up
  workers keep an idle thread), grow again 1 -> 2 -> 4 (exited threads restart in their slots);
- refused with INVALID_REQUEST as Kafka does (checked against the broker's current count):
  more than double (4 -> 9), less than half (4 -> 1), 0 and -1; refused with INVALID_CONFIG by
  the controller: a value that is no integer; the pool keeps its size after each refusal;
- num.network.threads is accepted with the same rule and described;
- DescribeConfigs shows num.io.threads with source DYNAMIC_DEFAULT_BROKER_CONFIG, and the
  per-broker value (DYNAMIC_BROKER_CONFIG) wins over the default; removing both restores the
  static count.
asan-smoke tsan-smoke
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, check, comment, free_port, poll,  # noqa: E402
                     run_tests, test)
from dynamic_configs import (INVALID_CONFIG, INVALID_REQUEST, alter_default,  # noqa: E402
                             describe_default, metric)


def pool(mport):
    return int(metric(mport, "gregor_io_workers")), int(metric(mport, "gregor_io_worker_threads"))


class Traffic:
    """A producer and a consumer on their own threads until stop(); every record produced must
    be delivered and consumed."""

    def __init__(self, bootstrap, topic):
        from confluent_kafka import Consumer, Producer
        self.topic, self.stopped = topic, threading.Event()
        self.sent = self.failed = self.got = 0
        self.errors = []
        self.p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5,
                           "enable.idempotence": True})
        self.c = Consumer({"bootstrap.servers": bootstrap, "group.id": "dyn-threads",
                           "auto.offset.reset": "earliest", "enable.auto.commit": False})
        self.c.subscribe([topic])
        self.threads = [threading.Thread(target=self.produce), threading.Thread(target=self.consume)]
        for t in self.threads:
            t.start()

    def report(self, err, msg):
        if err is None:
            self.sent += 1
        else:
            self.failed += 1
            self.errors.append(str(err))

    def produce(self):
        i = 0
        while not self.stopped.is_set():
            try:
                self.p.produce(self.topic, value=b"v%d" % i, on_delivery=self.report)
                i += 1
            except BufferError:
                pass
            self.p.poll(0.002)
        self.p.flush(30 * SLOW)

    def consume(self):
        while not self.stopped.is_set() or self.got < self.sent:
            m = self.c.poll(0.2)
            if m is not None and m.error() is None:
                self.got += 1
            if self.stopped.is_set() and time.time() > self.deadline:
                break
        self.c.close()

    def stop(self):
        self.deadline = time.time() + 30 * SLOW
        self.stopped.set()
        for t in self.threads:
            t.join()


@test
def test_io_thread_pool_resizes_under_traffic():
    mport = free_port()
    with Broker({"num.io.threads": "2", "num.partitions": "2",
                 "metrics.listener": "http://%s:%d" % (HOST, mport)}) as b:
        poll(lambda: pool(mport) == (2, 2), 10 * SLOW, "2 workers at start")
        tr = Traffic(b.bootstrap, "dyn-threads")
        try:
            poll(lambda: tr.sent > 200, 20 * SLOW, "traffic flowing")

            def step(n, workers, threads):
                check(alter_default(b, {"num.io.threads": str(n)}) is None, "set %d" % n)
                poll(lambda: pool(mport) == (workers, threads), 15 * SLOW,
                     "pool (workers, threads) = (%d, %d)" % (workers, threads))
                before = tr.sent
                poll(lambda: tr.sent > before + 50, 20 * SLOW, "traffic after resizing to %d" % n)
                comment("num.io.threads=%d: pool %r, %d delivered" % (n, pool(mport), tr.sent))

            step(4, 4, 4)
            for bad, code in (("9", INVALID_REQUEST), ("1", INVALID_REQUEST),
                              ("0", INVALID_REQUEST), ("-1", INVALID_REQUEST),
                              ("abc", INVALID_CONFIG)):
                e = alter_default(b, {"num.io.threads": bad})
                check(e is not None and e.code() == code,
                      "num.io.threads=%s from 4: %r (want %d)" % (bad, e, code))
                comment("num.io.threads=%s refused: %s" % (bad, e.msg))
            check(pool(mport) == (4, 4), "pool unchanged after refusals: %r" % (pool(mport),))
            got = describe_default(b, name="1")
            check(got.get("num.io.threads") == ("4", 3), "described on broker 1: %r"
                  % (got.get("num.io.threads"),))
            step(2, 2, 2)
            step(1, 1, 2)  # the start-up workers keep their thread
            step(2, 2, 2)
            step(4, 4, 4)  # slots 2 and 3 restart their exited threads
            e = alter_default(b, {"num.io.threads": "4", "num.network.threads": "7"})
            check(e is not None and e.code() == INVALID_REQUEST,
                  "num.network.threads 3 -> 7: %r" % (e,))
            check(alter_default(b, {"num.io.threads": "4", "num.network.threads": "6"}) is None,
                  "num.network.threads=6")
            got = describe_default(b, name="1")
            check(got.get("num.network.threads") == ("6", 3), "network threads described: %r"
                  % (got.get("num.network.threads"),))
            check(alter_default(b, {}) is None, "dynamic values removed")
            poll(lambda: pool(mport) == (2, 2), 15 * SLOW, "back to the static 2 workers")
        finally:
            tr.stop()
        comment("delivered %d, failed %d, consumed %d" % (tr.sent, tr.failed, tr.got))
        check(tr.failed == 0, "deliveries failed: %r" % (tr.errors[:5],))
        check(tr.got >= tr.sent, "consumed %d of %d" % (tr.got, tr.sent))


if __name__ == "__main__":
    run_tests()
