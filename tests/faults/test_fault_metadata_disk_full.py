"""The metadata log (libraft) on a disk that fills up: with log.dirs and the metadata log on a
small tmpfs, produce until the disk is full, auto-create a topic while it is full, free the
space, check the broker still serves, then SIGTERM must exit 0 with a clean log (the ASan run
fails on any sanitizer report). Regression test: libraft 0.15 reported its I/O close twice
after failing to prepare a segment on the full disk and double-freed its state; the
controller now lets that callback run once (src/cluster/controller.c, io_close).
asan-smoke
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
from harness import (SLOW, Broker, KafkaRaw, _tmp_root, check,  # noqa: E402
                     check_broker_healthy, comment, fail, run_tests, test)
import kafka_records as kr  # noqa: E402

TOPIC = "full"
FS_MB = 8
FILLER_MB = 2
MSG_BYTES = 1000
KAFKA_STORAGE_ERROR = 56


def mount_tmpfs(d, mb):
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm" % mb, "tmpfs", d],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        fail("mount -t tmpfs -o size=%dm tmpfs %s failed (exit %d): %s (this test needs root)"
             % (mb, d, p.returncode, p.stdout.decode().strip()))


def umount(d):
    if subprocess.run(["umount", d], stderr=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["umount", "-l", d], stderr=subprocess.DEVNULL)


def df_kb(d):
    st = os.statvfs(d)
    return st.f_bavail * st.f_frsize // 1024


def make_value(i):
    head = b"m-%08d:" % i
    return head + b"x" * (MSG_BYTES - len(head))


def seq_of(value):
    return int(value[2:10])


def produce(bootstrap, first, count, timeout_s=10.0, one_per_batch=False):
    """acks=all, no retries; returns [(seq, err or None, offset)] in delivery order."""
    from confluent_kafka import Producer
    cfg = {"bootstrap.servers": bootstrap, "acks": "all", "retries": 0,
           "linger.ms": 5, "max.in.flight.requests.per.connection": 1,
           "message.timeout.ms": int(timeout_s * 1000 * SLOW)}
    if one_per_batch:
        cfg.update({"batch.num.messages": 1, "linger.ms": 0})
    p = Producer(cfg)
    out = []

    def cb(err, m):
        out.append((seq_of(m.value()), err, m.offset() if err is None else None))
    for i in range(first, first + count):
        p.produce(TOPIC, value=make_value(i), partition=0, on_delivery=cb)
        p.poll(0)
    left = p.flush(timeout_s * SLOW + 10)
    check(left == 0, "%d messages still undelivered after flush" % left)
    return out


def consume_all(bootstrap, timeout_s=30.0):
    """Every message of partition 0 from offset 0 to the end: [(offset, seq)]."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "disk-full-check",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "fetch.message.max.bytes": 1 << 20})
    try:
        c.assign([TopicPartition(TOPIC, 0, 0)])
        out = []
        deadline = time.monotonic() + timeout_s * SLOW
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    return out
                fail("consumer error at offset %s: %s" % (m.offset(), m.error()))
            out.append((m.offset(), seq_of(m.value())))
        fail("consumer did not reach the end within %.0fs (%d messages read)"
             % (timeout_s * SLOW, len(out)))
    finally:
        c.close()


def fetch_all_raw(b):
    """Every message of partition 0 through raw Fetch requests (no consumer group, so nothing
    is written to the metadata log): [(offset, seq)]."""
    with KafkaRaw(b, timeout=30 * SLOW) as c:
        batches, _ = kr.fetch_all(c, TOPIC, 0)
    return [(r["offset"], seq_of(r["value"])) for bt in batches for r in bt["records"]]


def check_exactly(got, acked, what):
    """got [(offset, seq)] must be the acknowledged messages exactly, in order."""
    if got == acked:
        return
    gs = [s for _, s in got]
    dup = len(gs) - len(set(gs))
    missing = sorted(set(s for _, s in acked) - set(gs))
    fail("%s: read %d messages, %d acknowledged; %d duplicates, %d missing (first %r), "
         "first difference at index %d"
         % (what, len(got), len(acked), dup, len(missing), missing[:5],
            next((i for i, (a, b) in enumerate(zip(got, acked)) if a != b),
                 min(len(got), len(acked)))))


@test
def test_metadata_write_on_full_disk_then_clean_shutdown():
    mnt = tempfile.mkdtemp(prefix="tmpfs-", dir=_tmp_root())
    mount_tmpfs(mnt, FS_MB)
    try:
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (FILLER_MB << 20))
        props = {"log.dirs": os.path.join(mnt, "data"), "num.partitions": 1,
                 "log.segment.bytes": 1 << 20, "log.index.size.max.bytes": 16384}
        with Broker(props) as b:
            seq, acked = 0, 0
            for one in (False, True):
                failed = False
                while not failed and seq < 20000:
                    res = produce(b.bootstrap, seq, 100 if one else 500, one_per_batch=one)
                    seq += len(res)
                    acked += sum(1 for _, e, _ in res if e is None)
                    failed = any(e is not None for _, e, _ in res)
            comment("disk full after %d acknowledged messages, free_kb=%d" % (acked, df_kb(mnt)))
            with KafkaRaw(b, timeout=30 * SLOW) as c:
                md = c.metadata(4, topics=["created-while-full"], allow_auto_create=True)
            comment("auto-create of a topic with the disk full: %r"
                    % [(t["name"], t["error_code"]) for t in md["topics"]])
            check(b.running(), "broker died creating a topic with the disk full")
            time.sleep(0.5 * SLOW)
            os.unlink(filler)
            check_broker_healthy(b, "after freeing space")
            b.stop()  # asserts exit status 0 (the double free aborts with SIGABRT)
    finally:
        umount(mnt)


if __name__ == "__main__":
    run_tests()
