#!/usr/bin/python3
"""Idempotent producer with a real client: confluent-kafka (librdkafka) with
enable.idempotence=true produces N messages through a loopback TCP proxy that drops produce
responses (it forwards a Produce request to the broker, then closes the client's connection
before the answer can come back), forcing retries of batches the broker already appended. The
consumed log must hold every message exactly once, each partition in send order. A second test
SIGKILLs the broker mid-run and restarts it: no acknowledged message may be lost or
duplicated.

N = 1,000,000 * GREGOR_SCALE (default 1.0); at most 50,000 under GREGOR_ASAN=1.
"""
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import ASAN, HOST, SLOW, Broker, check, comment, fail, free_port, run_tests, test

try:
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
except ImportError:  # pragma: no cover
    Producer = None

PARTITIONS = 3


def message_count():
    n = int(1_000_000 * float(os.environ.get("GREGOR_SCALE", "1")))
    if ASAN:
        n = min(n, 50_000)
    return max(n, 1000)


class DroppingProxy:
    """Forwards 127.0.0.1:port -> broker. Every `drop_every`-th Produce request (up to
    max_drops) is forwarded and then the client's side is closed, so its response is lost;
    the broker side stays open a moment so the broker really handles the request."""

    def __init__(self, target_port, drop_every=100, max_drops=30):
        self.target_port = target_port
        self.drop_every = drop_every
        self.max_drops = max_drops
        self.produce_seen = 0
        self.drops = 0
        self.lock = threading.Lock()
        self.port = free_port()
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((HOST, self.port))
        self.ls.listen(64)
        self.stopped = False
        self.socks = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopped = True
        try:
            self.ls.close()
        except OSError:
            pass
        for s in list(self.socks):
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection((HOST, self.target_port), timeout=5)
            except OSError:
                c.close()
                continue
            for s in (c, b):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.settimeout(None)
                self.socks.add(s)
            threading.Thread(target=self._up, args=(c, b), daemon=True).start()
            threading.Thread(target=self._down, args=(b, c), daemon=True).start()

    @staticmethod
    def _read(s, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    def _shut(self, *socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
            self.socks.discard(s)

    def _up(self, c, b):
        try:
            while True:
                hdr = self._read(c, 4)
                (n,) = struct.unpack(">i", hdr)
                payload = self._read(c, n)
                b.sendall(hdr + payload)
                api_key = struct.unpack(">h", payload[:2])[0]
                if api_key != 0:
                    continue
                with self.lock:
                    self.produce_seen += 1
                    drop = (self.produce_seen % self.drop_every == 0
                            and self.drops < self.max_drops)
                    if drop:
                        self.drops += 1
                if drop:
                    self._shut(c)
                    time.sleep(1.0)
                    self._shut(b)
                    return
        except (OSError, EOFError):
            pass
        self._shut(c, b)

    def _down(self, b, c):
        try:
            while True:
                data = b.recv(65536)
                if not data:
                    break
                c.sendall(data)
        except OSError:
            pass
        self._shut(b, c)


def broker_with_proxy(props=None):
    """A Broker whose advertised listener is a proxy port (the proxy is started by caller)."""
    proxy_port = free_port()
    p = {"num.partitions": PARTITIONS, "advertised.listeners":
         "PLAINTEXT://%s:%d" % (HOST, proxy_port)}
    p.update(props or {})
    return Broker(p), proxy_port


def start_proxy(broker, proxy_port, **kw):
    # DroppingProxy picks its own port; bind the advertised one explicitly.
    px = DroppingProxy.__new__(DroppingProxy)
    px.target_port = broker.port
    px.drop_every = kw.get("drop_every", 100)
    px.max_drops = kw.get("max_drops", 30)
    px.produce_seen = 0
    px.drops = 0
    px.lock = threading.Lock()
    px.port = proxy_port
    px.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    px.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    px.ls.bind((HOST, proxy_port))
    px.ls.listen(64)
    px.stopped = False
    px.socks = set()
    threading.Thread(target=px._accept, daemon=True).start()
    return px


def produce_all(bootstrap, topic, n, on_progress=None, batch_messages=2000):
    """Produces n messages, value = str(i), partition i % PARTITIONS; returns (acked set,
    delivery errors)."""
    acked = set()
    errors = []

    def dr(err, msg):
        if err is not None:
            errors.append(str(err))
        else:
            acked.add(int(msg.value()))

    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                  "linger.ms": 5, "batch.num.messages": batch_messages, "reconnect.backoff.ms": 10,
                  "reconnect.backoff.max.ms": 200, "message.timeout.ms": int(300000 * SLOW),
                  "socket.timeout.ms": 10000, "queue.buffering.max.messages": 200000})
    for i in range(n):
        while True:
            try:
                p.produce(topic, value=b"%d" % i, partition=i % PARTITIONS, on_delivery=dr)
                break
            except BufferError:
                p.poll(0.05)
        if i % 1000 == 0:
            p.poll(0)
            if on_progress:
                on_progress(i)
    left = p.flush(float(300 * SLOW))
    check(left == 0, "%d messages still undelivered after flush" % left)
    return acked, errors


def consume_all(bootstrap, topic, expect_per_partition):
    """Reads every partition from the start until it holds at least the expected count (or
    stops growing); returns {partition: [int values]}."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "idem-check",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "fetch.max.bytes": 50 << 20, "enable.partition.eof": True})
    c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    out = {p: [] for p in range(PARTITIONS)}
    eof = set()
    deadline = time.monotonic() + 120 * SLOW
    last_growth = time.monotonic()
    while time.monotonic() < deadline:
        msgs = c.consume(10000, 0.5)
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                    continue
                fail("consume error %s" % m.error())
            out[m.partition()].append(int(m.value()))
            last_growth = time.monotonic()
        if all(len(out[p]) >= expect_per_partition[p] for p in out) and len(eof) == PARTITIONS:
            break
        if eof and len(eof) == PARTITIONS and time.monotonic() - last_growth > 5:
            break
    c.close()
    return out


def check_output(out, acked, n, all_acked):
    total = 0
    for p, vals in out.items():
        total += len(vals)
        check(len(vals) == len(set(vals)),
              "partition %d holds %d duplicate(s)" % (p, len(vals) - len(set(vals))))
        check(vals == sorted(vals), "partition %d is out of send order" % p)
        check(all(v % PARTITIONS == p for v in vals), "partition %d holds foreign values" % p)
    got = set(v for vals in out.values() for v in vals)
    missing = acked - got
    check(not missing, "%d acknowledged message(s) lost, e.g. %r" % (len(missing),
                                                                    sorted(missing)[:5]))
    if all_acked:
        check(len(acked) == n and total == n, "acked %d, consumed %d of %d" % (len(acked), total, n))


@test
def test_confluent_idempotent_producer_through_dropping_proxy():
    if Producer is None:
        fail("confluent_kafka not installed")
    n = message_count()
    b, proxy_port = broker_with_proxy()
    with b:
        px = start_proxy(b, proxy_port, drop_every=5, max_drops=30)
        try:
            t0 = time.monotonic()
            acked, errors = produce_all("%s:%d" % (HOST, proxy_port), "idem-proxy", n,
                                        batch_messages=200)
            dt = time.monotonic() - t0
            comment("produced %d in %.1fs (%.0f msg/s), %d produce requests, %d responses dropped"
                    % (n, dt, n / dt, px.produce_seen, px.drops))
            check(not errors, "delivery errors: %r" % errors[:5])
            check(px.drops > 0, "the proxy dropped no response (%d produce requests)"
                  % px.produce_seen)
            expect = {p: len([i for i in range(p, n, PARTITIONS)]) for p in range(PARTITIONS)}
            out = consume_all("%s:%d" % (HOST, proxy_port), "idem-proxy", expect)
            check_output(out, acked, n, all_acked=True)
        finally:
            px.close()


@test
def test_confluent_idempotent_producer_across_broker_sigkill():
    if Producer is None:
        fail("confluent_kafka not installed")
    n = message_count()
    b, proxy_port = broker_with_proxy()
    with b:
        px = start_proxy(b, proxy_port, drop_every=80, max_drops=10)
        killed = []

        def progress(i):
            if not killed and i >= n // 2:
                killed.append(i)
                b.kill()
                b.start()

        try:
            acked, errors = produce_all("%s:%d" % (HOST, proxy_port), "idem-kill", n, progress)
            comment("killed at message %r; acked %d of %d; %d delivery errors; %d drops"
                    % (killed, len(acked), n, len(errors), px.drops))
            check(killed, "broker was never killed")
            check(not errors, "delivery errors: %r" % errors[:5])
            expect = {p: len([i for i in range(p, n, PARTITIONS)]) for p in range(PARTITIONS)}
            out = consume_all("%s:%d" % (HOST, proxy_port), "idem-kill", expect)
            check_output(out, acked, n, all_acked=True)
        finally:
            px.close()


if __name__ == "__main__":
    run_tests()
