"""Frequent auto-commits stay cheap: __consumer_offsets is compacted.

A confluent-kafka consumer auto-commits every 100 ms while a producer keeps appending (so
every commit carries a new offset: librdkafka skips unchanged ones). With small
__consumer_offsets segments and a short cleaner interval, the partition holding the group
must stay bounded in size even though hundreds of commits were written, the committed offset
must be the latest one, and after a broker restart the group's committed offset is replayed
from the compacted partition.
asan-smoke
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ASAN, SLOW, Broker, check, comment, run_tests, test, wait_until  # noqa: E402

RUN_S = 8 if ASAN else 15


def log_bytes(d):
    if not os.path.isdir(d):
        return 0
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".log"))


@test
def test_auto_commit_every_100ms_stays_bounded_after_compaction():
    from confluent_kafka import Consumer, Producer, TopicPartition
    props = {"offsets.topic.num.partitions": 1, "offsets.topic.segment.bytes": 2048,
             "log.retention.check.interval.ms": 500, "group.initial.rebalance.delay.ms": 0}
    with Broker(props) as b:
        stop = threading.Event()
        produced = [0]

        def produce():
            p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0})
            while not stop.is_set():
                p.produce("ticks", value=b"tick %d" % produced[0])
                produced[0] += 1
                p.poll(0)
                time.sleep(0.01)
            p.flush(10)

        commits = [0]
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ticker",
                      "auto.offset.reset": "earliest", "enable.auto.commit": True,
                      "auto.commit.interval.ms": 100,
                      "on_commit": lambda err, parts: commits.__setitem__(0, commits[0] + 1)})
        c.subscribe(["ticks"])
        t = threading.Thread(target=produce)
        t.start()
        consumed = 0
        end = time.monotonic() + RUN_S
        while time.monotonic() < end:
            m = c.poll(0.1)
            if m is not None and not m.error():
                consumed += 1
        stop.set()
        t.join()
        deadline = time.monotonic() + 20 * SLOW
        while consumed < produced[0] and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                consumed += 1
        try:
            c.commit(asynchronous=False)
        except Exception as e:  # _NO_OFFSET: auto-commit already committed everything
            check("NO_OFFSET" in str(e), "final commit: %s" % e)
        committed = c.committed([TopicPartition("ticks", 0)], timeout=10)[0].offset
        c.close()
        check(consumed == produced[0], "consumed %d of %d" % (consumed, produced[0]))
        check(committed == produced[0], "committed %d, produced %d" % (committed, produced[0]))
        check(commits[0] > 50, "only %d commits happened" % commits[0])
        pdir = os.path.join(b.data_dir, "__consumer_offsets-0")
        # Each commit record is ~100 bytes: without compaction the partition would hold about
        # commits * 100 bytes; compacted, each closed 2 KiB segment keeps one record per key
        # and only the active segment (at most 2 KiB) is left as written.
        written = commits[0] * 100
        wait_until(lambda: log_bytes(pdir) < min(written / 2, 6 * 1024), 30 * SLOW,
                   interval=0.5, what="__consumer_offsets compacted")
        comment("%d commits (~%d bytes written); __consumer_offsets-0 now %d bytes" %
                (commits[0], written, log_bytes(pdir)))
        b.stop()
        b.start()
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ticker"})
        after = c.committed([TopicPartition("ticks", 0)], timeout=20 * SLOW)[0].offset
        c.close()
        check(after == committed, "after restart committed %d, before %d" % (after, committed))


if __name__ == "__main__":
    run_tests()
