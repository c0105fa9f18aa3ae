"""Transactions (issue 16): confluent-kafka's transactional producer against Gregor's
transaction coordinator, with read_committed and read_uncommitted consumers.
asan-smoke
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Broker, check, comment, run_tests, test  # noqa: E402

# A quick sweep so the timeout test does not wait 10 s; short group delays.
PROPS = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
    "group.initial.rebalance.delay.ms": "0",
    "num.partitions": "1",
}


def producer(b, txid, **extra):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": b.bootstrap, "transactional.id": txid, "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30 * SLOW)
    return p


def consume_all(b, topic, isolation, expect=None, timeout=10.0, group=None):
    """Values read from topic (one partition) from the beginning until `expect` values were
    seen or nothing new came for a while; with expect=None reads until idle."""
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": group or "g-" + uuid.uuid4().hex,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": isolation})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout * SLOW
    idle_since = time.monotonic()
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None:
            if expect is None and out and time.monotonic() - idle_since > 2.0 * SLOW:
                break
            if expect is not None and len(out) >= expect:
                break
            continue
        if m.error():
            continue
        out.append(m.value().decode())
        idle_since = time.monotonic()
        if expect is not None and len(out) >= expect:
            break
    c.close()
    return out


@test
def test_commit_visible_to_read_committed_abort_invisible():
    """A committed transaction's records reach a read_committed consumer once, in order; an
    aborted one's never do, though a read_uncommitted consumer sees both (and no markers)."""
    with Broker(PROPS) as b:
        p = producer(b, "tx-commit")
        p.begin_transaction()
        for i in range(5):
            p.produce("t1", ("c%d" % i).encode())
        p.commit_transaction(30 * SLOW)
        p.begin_transaction()
        for i in range(3):
            p.produce("t1", ("a%d" % i).encode())
        p.flush(10)
        p.abort_transaction(30 * SLOW)
        p.begin_transaction()
        p.produce("t1", b"c5")
        p.commit_transaction(30 * SLOW)
        rc = consume_all(b, "t1", "read_committed", expect=6)
        check(rc == ["c0", "c1", "c2", "c3", "c4", "c5"], "read_committed saw %r" % rc)
        ru = consume_all(b, "t1", "read_uncommitted", expect=9)
        check(ru == ["c0", "c1", "c2", "c3", "c4", "a0", "a1", "a2", "c5"],
              "read_uncommitted saw %r" % ru)


if __name__ == "__main__":
    run_tests()
