"""Disk full: the broker's log.dirs on a small tmpfs that the test mounts (CI runs as root; a
failed mount fails the test).

Documented behaviour (src/storage/log.h, segment.c): a write that fails with ENOSPC is rolled
back (nothing of the append is visible), the log stays usable and readable, and the produce
is answered KAFKA_STORAGE_ERROR (partition_error_from_storage). Asserted:
  * producing acks=all (confluent-kafka, retries=0) until a delivery fails: every failure is
    KAFKA_STORAGE_ERROR, the broker is still running (no crash), and the acknowledged messages
    have consecutive offsets from 0;
  * while the disk is still full, a consumer reads every acknowledged message from the
    beginning, in order, and nothing else;
  * after a filler file (written before the broker started) is deleted, produces succeed
    again without a restart (the log stayed usable);
  * after a clean restart on the same data directory every acknowledged message is there
    exactly once, in order, and new produces succeed.
Prints "# " lines with the counts.

A second test writes to the metadata log (__cluster_metadata, on the same full disk) by
creating a topic while the disk is full, frees the space, and asserts a clean SIGTERM exit.
Found by this suite (open bug): once the disk holding __cluster_metadata has been full, the
broker often aborts at SIGTERM with "free(): double free detected" inside libraft 0.15
(ASan: raft->address, allocated by raft_init, freed twice on the controller thread inside
uv_run during close, i.e. libraft's I/O close callback fires twice - apparently the failed
background segment preparation on ENOSPC, cf. the libraft close defects described in
src/cluster/controller.c). Both tests here hit it at their clean stop() (about 3 runs in 5 for
the first, more often for the second) and fail until it is fixed or worked around.
Both tests also run against the ASan build (asan-smoke).
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
def test_disk_full_refuses_writes_keeps_reads_and_recovers():
    mnt = tempfile.mkdtemp(prefix="tmpfs-", dir=_tmp_root())
    mount_tmpfs(mnt, FS_MB)
    try:
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (FILLER_MB << 20))
        data = os.path.join(mnt, "data")
        # The metadata log lives off the full disk here (metadata.log.dir), so this test is
        # about the data path alone; test_fault_metadata_disk_full.py fills the metadata disk.
        meta = tempfile.mkdtemp(prefix="meta-", dir=_tmp_root())
        props = {"log.dirs": data, "metadata.log.dir": meta, "num.partitions": 1,
                 "log.segment.bytes": 1 << 20, "log.index.size.max.bytes": 16384}
        with Broker(props) as b:
            comment("tmpfs %d MB at %s, filler %d MB, %d kB free at start"
                    % (FS_MB, mnt, FILLER_MB, df_kb(mnt)))
            acked, failures = [], []
            seq = 0
            deadline = time.monotonic() + 30 * SLOW
            # Batches of ~500 kB until one fails, then single-message batches until one of
            # those fails too: then not even one message fits.
            for one in (False, True):
                failed_here = False
                while not failed_here and time.monotonic() < deadline:
                    n = 100 if one else 500
                    res = produce(b.bootstrap, seq, n, one_per_batch=one)
                    seq += n
                    for s, err, off in res:
                        if err is None:
                            check(not failed_here, "message %d acknowledged at offset %d after "
                                  "an earlier single-message batch failed" % (s, off)
                                  ) if one else None
                            acked.append((off, s))
                        else:
                            failed_here = True
                            failures.append((s, err))
                    check(b.running(), "broker died while the disk filled up; log:\n%s"
                          % b.log_text()[-3000:])
                check(failed_here, "no produce failed after %d messages (%d kB free)"
                      % (seq, df_kb(mnt)))
            acked.sort()
            codes = sorted(set((e.code(), e.name()) for _, e in failures))
            comment("acknowledged=%d failed=%d (of %d sent) free_kb=%d errors=%s"
                    % (len(acked), len(failures), seq, df_kb(mnt), codes))
            check(all(c == KAFKA_STORAGE_ERROR for c, _ in codes),
                  "produce on a full disk failed with %s, expected KAFKA_STORAGE_ERROR" % codes)
            check([o for o, _ in acked] == list(range(len(acked))),
                  "acknowledged offsets are not 0..%d" % (len(acked) - 1))
            check(len(acked) > 1000, "only %d messages fit before the disk was full"
                  % len(acked))

            # Still full: another attempt fails the same way, the broker stays up and reads.
            res = produce(b.bootstrap, seq, 20, one_per_batch=True)
            seq += 20
            check(all(e is not None and e.code() == KAFKA_STORAGE_ERROR for _, e, _ in res),
                  "produce on a still-full disk: %r" % [(s, e) for s, e, _ in res][:3])
            check_broker_healthy(b, "with the disk full")
            got = fetch_all_raw(b)
            check_exactly(got, acked, "reading back with the disk full")
            comment("read back %d acknowledged messages in order with the disk full"
                    % len(got))

            # Free space: the log stayed usable, so produces succeed without a restart.
            os.unlink(filler)
            res = produce(b.bootstrap, seq, 100)
            seq += 100
            errs = [(s, e) for s, e, _ in res if e is not None]
            check(not errs, "produce after freeing %d MB still fails: %r"
                  % (FILLER_MB, errs[:3]))
            check([o for _, _, o in res] == list(range(len(acked), len(acked) + 100)),
                  "offsets after freeing space do not continue the log: %r"
                  % [o for _, _, o in res][:5])
            acked += [(o, s) for s, _, o in res]
            comment("after deleting the filler: 100 produces acknowledged, free_kb=%d"
                    % df_kb(mnt))

            b.restart()
            got = consume_all(b.bootstrap)
            check_exactly(got, acked, "after restart")
            res = produce(b.bootstrap, seq, 50)
            errs = [(s, e) for s, e, _ in res if e is not None]
            check(not errs, "produce after restart fails: %r" % errs[:3])
            check([o for _, _, o in res] == list(range(len(acked), len(acked) + 50)),
                  "offsets after restart do not continue the log")
            comment("after restart: %d acknowledged messages present exactly once in order; "
                    "50 new produces acknowledged" % len(got))
    finally:
        umount(mnt)


# Regression: libraft 0.15 reported its I/O close twice after failing to prepare a segment on
# the full disk and double-freed its state at shutdown; the controller now lets that callback
# run once (src/cluster/controller.c, io_close). Here the metadata log shares the full disk.
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
