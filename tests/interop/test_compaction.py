"""Log compaction of a user topic (cleanup.policy=compact) seen through real clients.

confluent-kafka produces many updates to 1,000 keys into a topic with small segments, and
tombstones for 100 of them; the log cleaner (log.retention.check.interval.ms is small here)
compacts the closed segments. Consuming from the beginning must then yield, for every live
key, exactly its newest value (the last update may sit in the active segment, which is never
compacted, so a key can appear twice only if one copy is in the active segment), the
tombstoned keys must be gone once delete.retention.ms has passed, offsets must still
increase, and the partition must have shrunk on disk.
asan-smoke
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ASAN, SLOW, Broker, check, comment, run_tests, test,  # noqa: E402
                     wait_until)

KEYS = 1000
ROUNDS = 5 if ASAN else 20


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
               if f.endswith(".log"))


def consume_all(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "compaction-check",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.monotonic() + 60 * SLOW
    while time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                break
            raise AssertionError("consume error %s" % m.error())
        out.append((m.offset(), m.key(), m.value()))
    c.close()
    return out


@test
def test_compacted_topic_keeps_newest_value_per_key_and_drops_tombstones():
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    with Broker({"log.retention.check.interval.ms": 300}) as b:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        cfg = {"cleanup.policy": "compact", "segment.bytes": "65536",
               "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "1000"}
        for f in a.create_topics([NewTopic("compacted", 1, 1, config=cfg)]).values():
            f.result(timeout=15)
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5, "acks": "all"})
        newest = {}
        for r in range(ROUNDS):
            for k in range(KEYS):
                key = b"key-%04d" % k
                val = b"round-%02d-value-%04d" % (r, k)
                p.produce("compacted", key=key, value=val)
                newest[key] = val
            p.flush(30)
        for k in range(0, KEYS, 10):  # tombstones for every 10th key
            key = b"key-%04d" % k
            p.produce("compacted", key=key, value=None)
            newest[key] = None
        p.flush(30)
        # Enough filler on another key to close the segment holding the tombstones.
        for i in range(3000):
            p.produce("compacted", key=b"filler", value=b"x" * 40)
        p.flush(30)
        newest[b"filler"] = b"x" * 40
        pdir = os.path.join(b.data_dir, "compacted-0")
        before = dir_bytes(pdir)
        time.sleep(1.5)  # let delete.retention.ms pass for the tombstones
        # Nudge: a further small append keeps the cleaner's dirty ratio above the minimum.
        p.produce("compacted", key=b"filler", value=b"x" * 40)
        p.flush(30)
        wait_until(lambda: dir_bytes(pdir) < before / 3, 60 * SLOW, interval=0.3,
                   what="compaction shrinking the partition")
        after = dir_bytes(pdir)
        comment("partition .log bytes: %d before, %d after compaction" % (before, after))
        # Wait for a pass that also ran after the tombstones expired.
        time.sleep(1.0)
        records = consume_all(b.bootstrap, "compacted")
        offsets = [o for o, _, _ in records]
        check(offsets == sorted(offsets) and len(set(offsets)) == len(offsets),
              "offsets not increasing")
        last = {}
        for _, k, v in records:
            last[k] = v
        for key, val in newest.items():
            if val is None:
                check(last.get(key) is None, "tombstoned %r still has value %r" % (key, last.get(key)))
            else:
                check(last.get(key) == val, "key %r: newest %r, consumed %r" % (key, val, last.get(key)))
        keyed = [k for _, k, _ in records if k != b"filler"]
        check(len(keyed) <= KEYS * 2, "%d keyed records survive for %d keys" % (len(keyed), KEYS))
        comment("%d records consumed after compaction (%d produced)" %
                (len(records), KEYS * ROUNDS + KEYS // 10 + 3001))


if __name__ == "__main__":
    run_tests()
