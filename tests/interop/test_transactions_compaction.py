"""Compaction of a transactional topic (issue 16; Kafka's LogCleaner with transactions).

confluent-kafka's transactional producer writes four transactions to a compacted topic:
commit, abort, commit, abort, over ten keys. Then segment.ms drops to 100 (AlterConfigs) while
a plain producer keeps appending filler, so segments close and the cleaner (every 300 ms)
keeps running. The test reads the partition's files itself as the cleaner works on them and checks:
- the aborted values leave the .log files, and at that moment the ABORT markers are still
  there (a marker never goes before its transaction's data);
- the ABORT markers and the .txnindex entries go afterwards, the markers only once
  delete.retention.ms (1.5 s) passed after the pass that found their data gone; but the last
  aborted batch of the transactional producer stays, empty, with its ABORT marker and index
  entry, while that producer is active (Kafka's RETAIN_EMPTY: it holds the producer's last
  sequence), and goes once producer.id.expiration.ms (8 s here) expired it;
- the COMMIT markers stay while their transactions' values are the newest of some key, and go
  too once plain writes overwrite every key (again after the horizon);
- read_committed and read_uncommitted consumers both see, per key, exactly the newest
  committed value and never an aborted one;
- a restart on the same data directory brings nothing back (no aborted value, no marker).
Bad input tried: aborted values that would shadow committed ones if the cleaner kept them in
its key map, and readers of both isolation levels racing the cleaner.
asan-smoke tsan-smoke
"""
import os
import struct
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Broker, check, comment, run_tests, test,  # noqa: E402
                     wait_until)

TOPIC = "txcompact"
KEYS = 10
RETENTION_MS = 1500
T0 = [time.monotonic()]
PRODUCER_EXPIRATION_MS = int(8000 * SLOW)
PROPS = {"log.retention.check.interval.ms": "300", "num.partitions": "1",
         "transaction.state.log.replication.factor": "1",
         "producer.id.expiration.ms": str(PRODUCER_EXPIRATION_MS)}
TOPIC_CFG = {"cleanup.policy": "compact", "segment.ms": "100", "segment.bytes": "16384",
             "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": str(RETENTION_MS)}
# While the transactions are written everything stays in the active segment (never cleaned),
# so the test sees the log as written before the cleaner starts on it.
TOPIC_CFG_HOLD = dict(TOPIC_CFG, **{"segment.ms": "3600000"})


def scan_partition(pdir):
    """(control markers by type, data bytes of every .log file, .txnindex entries), read from
    the files as the broker leaves them (a torn tail batch is skipped)."""
    markers = {"abort": 0, "commit": 0}
    data = b""
    entries = 0
    for name in sorted(os.listdir(pdir)):
        path = os.path.join(pdir, name)
        try:
            with open(path, "rb") as f:
                buf = f.read()
        except FileNotFoundError:
            continue
        if name.endswith(".txnindex"):
            entries += len(buf) // 34
            continue
        if not name.endswith(".log"):
            continue
        data += buf
        pos = 0
        while pos + 61 <= len(buf):
            length = struct.unpack(">i", buf[pos + 8:pos + 12])[0]
            end = pos + 12 + length
            if length < 49 or end > len(buf):
                break
            attrs = struct.unpack(">h", buf[pos + 21:pos + 23])[0]
            count = struct.unpack(">i", buf[pos + 57:pos + 61])[0]
            if attrs & 0x20 and count > 0:  # control batch: key = version int16 + type int16
                # first record: length varint, attributes, ts delta, offset delta, key length
                # varint (4 -> 0x08), then the key
                rec = buf[pos + 61:end]
                i = rec.index(b"\x08", 1)  # key length 4, zigzag
                ctype = struct.unpack(">h", rec[i + 3:i + 5])[0]
                markers["abort" if ctype == 0 else "commit"] += 1
            pos = end
    return markers, data, entries


def empty_batches(pdir):
    """How many batches of the .log files hold no record (kept for an active producer)."""
    n = 0
    for name in sorted(os.listdir(pdir)):
        if not name.endswith(".log"):
            continue
        try:
            with open(os.path.join(pdir, name), "rb") as f:
                buf = f.read()
        except FileNotFoundError:
            continue
        pos = 0
        while pos + 61 <= len(buf):
            length = struct.unpack(">i", buf[pos + 8:pos + 12])[0]
            if length < 49 or pos + 12 + length > len(buf):
                break
            n += struct.unpack(">i", buf[pos + 57:pos + 61])[0] == 0
            pos += 12 + length
    return n


def consume_latest(bootstrap, isolation):
    """Every value read from the beginning up to the high watermark at the start (the filler
    keeps writing, so no end-of-partition comes), and the newest per key."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "isolation.level": isolation})
    tp = TopicPartition(TOPIC, 0, 0)
    _, hi = c.get_watermark_offsets(tp, timeout=10 * SLOW)
    c.assign([tp])
    seen, latest = [], {}
    deadline = time.monotonic() + 20 * SLOW
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            seen.append(m.value())
            latest[m.key()] = m.value()
        if c.position([TopicPartition(TOPIC, 0)])[0].offset >= hi:
            break
    else:
        check(False, "%s consumer did not reach offset %d" % (isolation, hi))
    c.close()
    return seen, latest


class Filler:
    """A plain producer appending to key "filler" every 150 ms, so segments keep closing."""

    def __init__(self, bootstrap):
        from confluent_kafka import Producer
        self.p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        self.stop_ev = threading.Event()
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop_ev.wait(0.15):
            self.p.produce(TOPIC, key=b"filler", value=b"f" * 64)
            self.p.poll(0)

    def stop(self):
        self.stop_ev.set()
        self.t.join(5)
        self.p.flush(10)


def expect_clean(bootstrap, want):
    for iso in ("read_committed", "read_uncommitted"):
        seen, latest = consume_latest(bootstrap, iso)
        bad = [v for v in seen if v.startswith(b"ABORTED")]
        check(not bad, "%s consumer read aborted values %r" % (iso, bad[:5]))
        for k, v in want.items():
            check(latest.get(k) == v, "%s: key %r newest %r, want %r" % (iso, k, latest.get(k), v))
        comment("%s: %d records read, newest values as committed (%.1f s)"
                % (iso, len(seen), time.monotonic() - T0[0]))


@test
def test_cleaner_removes_aborted_data_then_markers_after_delete_retention():
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
    with Broker(PROPS) as b:
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in a.create_topics([NewTopic(TOPIC, 1, 1, config=TOPIC_CFG_HOLD)]).values():
            f.result(timeout=15 * SLOW)
        pdir = os.path.join(b.data_dir, TOPIC + "-0")
        p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "tx-compact",
                      "linger.ms": 5})
        p.init_transactions(30 * SLOW)
        want = {}

        def txn(tag, keys, commit):
            p.begin_transaction()
            for k in keys:
                key = b"k%d" % k
                p.produce(TOPIC, key=key, value=b"%s-%d" % (tag, k))
                if commit:
                    want[key] = b"%s-%d" % (tag, k)
            p.flush(10 * SLOW)
            if commit:
                p.commit_transaction(30 * SLOW)
            else:
                p.abort_transaction(30 * SLOW)

        txn(b"COMMITTED1", range(KEYS), True)
        txn(b"ABORTED2", range(KEYS), False)
        txn(b"COMMITTED3", range(KEYS // 2), True)
        txn(b"ABORTED4", range(KEYS // 2, KEYS), False)
        txns_done = time.monotonic()  # the producer's last append: it expires after this
        markers, data, entries = scan_partition(pdir)
        check(markers == {"abort": 2, "commit": 2} and entries == 2 and b"ABORTED" in data,
              "before cleaning: markers %r, %d index entries" % (markers, entries))
        res = ConfigResource("topic", TOPIC, set_config=TOPIC_CFG)
        for f in a.alter_configs([res]).values():
            f.result(timeout=15 * SLOW)
        filler = Filler(b.bootstrap)
        try:
            # 1. The aborted data goes first; its markers are still there at that moment.
            wait_until(lambda: b"ABORTED" not in scan_partition(pdir)[1], 30 * SLOW,
                       interval=0.05, what="aborted values removed from the segments")
            gone_at = time.monotonic()
            markers, _, entries = scan_partition(pdir)
            check(markers["abort"] == 2, "ABORT markers went with their data: %r" % markers)
            comment("aborted values removed; markers then %r, %d index entries"
                    % (markers, entries))
            # 2. Then the first abort's index entry; the last one stays with the producer's
            # last batch, empty, until the producer expires.
            wait_until(lambda: scan_partition(pdir)[2] <= 1, 30 * SLOW, interval=0.05,
                       what="first .txnindex entry dropped")
            if time.monotonic() - txns_done < PRODUCER_EXPIRATION_MS / 1000.0:
                markers, _, entries = scan_partition(pdir)
                check(entries == 1 and markers["abort"] >= 1 and empty_batches(pdir) == 1,
                      "active producer: entries %d, markers %r, %d empty batches"
                      % (entries, markers, empty_batches(pdir)))
                comment("last aborted batch kept empty while its producer is active")
            wait_until(lambda: scan_partition(pdir)[2] == 0, 30 * SLOW, interval=0.05,
                       what=".txnindex entries dropped")
            check(empty_batches(pdir) == 0, "empty batch left after its producer expired")
            wait_until(lambda: scan_partition(pdir)[0]["abort"] == 0, 30 * SLOW, interval=0.05,
                       what="ABORT markers removed")
            waited = time.monotonic() - gone_at
            check(waited >= RETENTION_MS / 1000.0 * 0.9,
                  "ABORT markers removed %.2f s after their data, before delete.retention.ms"
                  % waited)
            comment("ABORT markers removed %.2f s after their data" % waited)
            markers, _, _ = scan_partition(pdir)
            check(markers["commit"] == 2, "COMMIT markers of live values went: %r" % markers)
            expect_clean(b.bootstrap, want)
            # 3. Plain writes overwrite every key: the COMMIT markers guard nothing and go.
            plain = Producer({"bootstrap.servers": b.bootstrap})
            for k in range(KEYS):
                key = b"k%d" % k
                plain.produce(TOPIC, key=key, value=b"plain-%d" % k)
                want[key] = b"plain-%d" % k
            plain.flush(10 * SLOW)
            wait_until(lambda: scan_partition(pdir)[0]["commit"] == 0, 30 * SLOW,
                       interval=0.1, what="COMMIT markers removed once their values are gone")
        finally:
            filler.stop()
        expect_clean(b.bootstrap, want)
        # 4. A restart brings nothing back.
        b.restart()
        markers, data, entries = scan_partition(pdir)
        check(markers == {"abort": 0, "commit": 0} and entries == 0 and b"ABORTED" not in data,
              "after restart: markers %r, %d index entries" % (markers, entries))
        expect_clean(b.bootstrap, want)
        # The transactional id still works on the cleaned log.
        p2 = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "tx-compact"})
        p2.init_transactions(30 * SLOW)
        p2.begin_transaction()
        p2.produce(TOPIC, key=b"k0", value=b"after-restart")
        p2.commit_transaction(30 * SLOW)
        want[b"k0"] = b"after-restart"
        expect_clean(b.bootstrap, want)


if __name__ == "__main__":
    run_tests()
