#!/usr/bin/python3
"""Idempotent producer, raw protocol (asan-smoke, tsan-smoke): InitProducerId, duplicate batches answered
with their original offsets and appended once, sequence gaps and old epochs rejected, sequence
wrap, and the producer state surviving a clean restart (snapshot) and a SIGKILL (rebuilt
from the log).

Batches are built by hand (kafka_records.record_batch: header + CRC-32C + records), so each
case sends exactly the bytes a retrying producer would.
"""
import os
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import (SLOW, Broker, KafkaRaw, Reader, TAGS_NONE, carray, check, comment, cstring,
                     i16, i32, i64, run_tests, string, test, wait_until)
from kafka_records import fetch, list_offset, parse_batches, produce, record_batch

INIT_PRODUCER_ID, DESCRIBE_PRODUCERS = 22, 61
NONE, OUT_OF_ORDER, INVALID_EPOCH, UNSUPPORTED_VERSION, INVALID_REQUEST = 0, 45, 47, 35, 42
INT32_MAX = 2 ** 31 - 1


def init_producer_id(c, version=1, transactional_id=None, producer_id=-1, epoch=-1):
    """-> (error, producer id, epoch)."""
    flex = version >= 2
    body = (cstring(transactional_id) if flex else string(transactional_id)) + i32(60000)
    if version >= 3:
        body += i64(producer_id) + i16(epoch)
    if flex:
        body += TAGS_NONE
    r = Reader(c.call(INIT_PRODUCER_ID, version, body))
    r.int32()
    out = (r.int16(), r.int64(), r.int16())
    if flex:
        r.tagged_fields()
    r.end()
    return out


def describe_producers(c, topic, partition):
    """-> (partition error, [{producer_id, epoch, last_sequence, ...}])."""
    body = carray([cstring(topic) + carray([i32(partition)]) + TAGS_NONE]) + TAGS_NONE
    r = Reader(c.call(DESCRIBE_PRODUCERS, 0, body))
    r.int32()

    def prod(x):
        p = {"producer_id": x.int64(), "epoch": x.int32(), "last_sequence": x.int32(),
             "last_timestamp": x.int64(), "coordinator_epoch": x.int32(),
             "txn_start": x.int64()}
        x.tagged_fields()
        return p

    def part(x):
        p = {"partition": x.int32(), "error_code": x.int16(), "error_message": x.cstring(),
             "producers": x.carray(prod)}
        x.tagged_fields()
        return p

    def top(x):
        t = {"name": x.cstring(), "partitions": x.carray(part)}
        x.tagged_fields()
        return t

    topics = r.carray(top)
    r.tagged_fields()
    r.end()
    p = topics[0]["partitions"][0]
    return p["error_code"], p["producers"]


def batch(pid, epoch, seq, n=3, tag="m"):
    now = int(time.time() * 1000)
    recs = [(None, ("%s-%d" % (tag, seq + i)).encode()) for i in range(n)]
    return record_batch(recs, base_timestamp=now, producer_id=pid, producer_epoch=epoch,
                        base_sequence=seq)


def ensure_topic(c, topic):
    c.metadata(4, topics=[topic], allow_auto_create=True)

    def ready():
        md = c.metadata(4, topics=[topic], allow_auto_create=True)
        t = md["topics"][0]
        return t["error_code"] == 0 and t["partitions"] and t["partitions"][0]["leader"] >= 0
    wait_until(ready, 10 * SLOW, what="topic %s" % topic)


def send(c, topic, blob, acks=-1):
    """Produce with a few retries while the partition is being opened."""
    for _ in range(50):
        res = produce(c, topic, 0, blob, acks=acks)
        if res["error_code"] != 3:
            return res
        time.sleep(0.1)
    return res


def log_values(c, topic):
    out, off = [], 0
    while True:
        p = fetch(c, topic, 0, off)
        check(p["error_code"] == 0, "fetch error %d" % p["error_code"])
        bs = parse_batches(p["records"])
        if not bs:
            return out
        for b in bs:
            for r in b["records"]:
                out.append(r["value"].decode())
            off = b["base_offset"] + b["last_offset_delta"] + 1


@test
def test_init_producer_id_allocates_ids_and_bumps_epochs():
    with Broker() as b, KafkaRaw(b) as c:
        e1, pid1, ep1 = init_producer_id(c, 1)
        e2, pid2, ep2 = init_producer_id(c, 4)
        check(e1 == 0 and e2 == 0, "errors %d %d" % (e1, e2))
        check(pid1 >= 0 and pid2 >= 0 and pid1 != pid2, "ids %d %d" % (pid1, pid2))
        check(ep1 == 0 and ep2 == 0, "epochs %d %d" % (ep1, ep2))
        e, pid, ep = init_producer_id(c, 4, producer_id=pid1, epoch=0)
        check((e, pid, ep) == (0, pid1, 1), "KIP-360 bump: %r" % ((e, pid, ep),))
        e, pid, ep = init_producer_id(c, 3, producer_id=pid1, epoch=32766)
        check(e == 0 and pid not in (pid1, pid2) and ep == 0, "epoch overflow: %r" % ((e, pid, ep),))
        e, _, _ = init_producer_id(c, 4, producer_id=pid1, epoch=-1)
        check(e == INVALID_REQUEST, "id without epoch: error %d" % e)
        # A transactional id goes to the transaction coordinator (test_transactions.py); the
        # first calls may find __transaction_state still being created (retriable errors).
        deadline = time.monotonic() + 15 * SLOW
        while True:
            e, tpid, ep = init_producer_id(c, 4, transactional_id="txn-1")
            if e == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(e == 0 and tpid not in (pid1, pid2) and ep == 0,
              "transactional id: %r" % ((e, tpid, ep),))
        ids = set(init_producer_id(c, 0)[1] for _ in range(1500))  # crosses a block
        check(len(ids) == 1500, "ids not unique across blocks")
        b.restart()
        with KafkaRaw(b) as c2:
            e, pid, _ = init_producer_id(c2, 1)
            check(e == 0 and pid not in ids and pid not in (pid1, pid2),
                  "id %d reused after restart" % pid)


@test
def test_duplicate_batch_answered_with_original_offset_and_appended_once():
    with Broker() as b, KafkaRaw(b) as c:
        ensure_topic(c, "idem")
        _, pid, ep = init_producer_id(c, 1)
        first = send(c, "idem", batch(pid, ep, 0))
        check(first["error_code"] == 0, "first produce error %d" % first["error_code"])
        again = send(c, "idem", batch(pid, ep, 0))
        check(again["error_code"] == 0, "duplicate answered with error %d" % again["error_code"])
        check(again["base_offset"] == first["base_offset"],
              "duplicate base offset %d, original %d" % (again["base_offset"], first["base_offset"]))
        nxt = send(c, "idem", batch(pid, ep, 3))
        check(nxt["error_code"] == 0 and nxt["base_offset"] == first["base_offset"] + 3,
              "next batch: %r" % nxt)
        # A retry of an older batch among the last five is still a duplicate.
        old = send(c, "idem", batch(pid, ep, 0))
        check(old["error_code"] == 0 and old["base_offset"] == first["base_offset"], "%r" % old)
        vals = log_values(c, "idem")
        check(vals == ["m-%d" % i for i in range(6)], "log holds %r" % vals)
        err, prods = describe_producers(c, "idem", 0)
        check(err == 0 and len(prods) == 1, "DescribeProducers: %d %r" % (err, prods))
        check(prods[0]["producer_id"] == pid and prods[0]["epoch"] == ep and
              prods[0]["last_sequence"] == 5, "DescribeProducers: %r" % prods)


@test
def test_sequence_gap_is_out_of_order():
    with Broker() as b, KafkaRaw(b) as c:
        ensure_topic(c, "gap")
        _, pid, ep = init_producer_id(c, 1)
        check(send(c, "gap", batch(pid, ep, 0))["error_code"] == 0, "first batch")
        r = send(c, "gap", batch(pid, ep, 10))
        check(r["error_code"] == OUT_OF_ORDER, "gap answered with %d" % r["error_code"])
        # Overlapping but not identical to a previous batch: also out of order.
        r = send(c, "gap", batch(pid, ep, 1, n=3))
        check(r["error_code"] == OUT_OF_ORDER, "overlap answered with %d" % r["error_code"])
        check(send(c, "gap", batch(pid, ep, 3))["error_code"] == 0, "in-order batch after gap")
        check(len(log_values(c, "gap")) == 6, "rejected batches were appended")


@test
def test_old_epoch_is_fenced_and_new_epoch_starts_at_zero():
    with Broker() as b, KafkaRaw(b) as c:
        ensure_topic(c, "fence")
        _, pid, ep = init_producer_id(c, 1)
        check(send(c, "fence", batch(pid, ep, 0))["error_code"] == 0, "epoch 0 batch")
        _, pid2, ep2 = init_producer_id(c, 4, producer_id=pid, epoch=ep)
        check(pid2 == pid and ep2 == ep + 1, "bump")
        r = send(c, "fence", batch(pid, ep2, 5))
        check(r["error_code"] == OUT_OF_ORDER, "new epoch at seq 5: %d" % r["error_code"])
        check(send(c, "fence", batch(pid, ep2, 0, tag="e1"))["error_code"] == 0, "new epoch seq 0")
        r = send(c, "fence", batch(pid, ep, 3))
        check(r["error_code"] == INVALID_EPOCH, "old epoch answered with %d" % r["error_code"])
        check(len(log_values(c, "fence")) == 6, "fenced batch was appended")
        err, prods = describe_producers(c, "fence", 0)
        check(prods and prods[0]["epoch"] == ep2, "DescribeProducers: %r" % prods)


@test
def test_sequence_wraps_at_int32_max():
    with Broker() as b, KafkaRaw(b) as c:
        ensure_topic(c, "wrap")
        _, pid, ep = init_producer_id(c, 1)
        # An unknown producer may start anywhere (Kafka 3.x); this batch spans MAX-1..0.
        r = send(c, "wrap", batch(pid, ep, INT32_MAX - 1, n=3))
        check(r["error_code"] == 0, "batch across the wrap: %d" % r["error_code"])
        dup = send(c, "wrap", batch(pid, ep, INT32_MAX - 1, n=3))
        check(dup["error_code"] == 0 and dup["base_offset"] == r["base_offset"], "dup %r" % dup)
        r2 = send(c, "wrap", batch(pid, ep, 1))
        check(r2["error_code"] == 0 and r2["base_offset"] == r["base_offset"] + 3,
              "batch after the wrap: %r" % r2)


def check_dedup_after_restart(kill):
    with Broker({"log.segment.bytes": 4096}) as b:
        with KafkaRaw(b) as c:
            ensure_topic(c, "persist")
            _, pid, ep = init_producer_id(c, 1)
            seq, offsets = 0, {}
            for i in range(40):  # several segment rolls: snapshots at roll
                r = send(c, "persist", batch(pid, ep, seq, n=5, tag="p"))
                check(r["error_code"] == 0, "produce %d: %d" % (i, r["error_code"]))
                offsets[seq] = r["base_offset"]
                seq += 5
        snaps = [f for f in os.listdir(os.path.join(b.data_dir, "persist-0"))
                 if f.endswith(".snapshot")]
        comment("snapshots before restart: %s" % sorted(snaps))
        check(snaps, "no producer snapshot written at segment roll")
        if kill:
            b.kill()
            b.start()
        else:
            b.restart()
        with KafkaRaw(b) as c:
            last = seq - 5
            r = send(c, "persist", batch(pid, ep, last, n=5, tag="p"))
            check(r["error_code"] == 0 and r["base_offset"] == offsets[last],
                  "retry of the last batch after restart: %r (original %d)" % (r, offsets[last]))
            r = send(c, "persist", batch(pid, ep, seq + 5, n=5, tag="p"))
            check(r["error_code"] == OUT_OF_ORDER, "gap after restart: %d" % r["error_code"])
            r = send(c, "persist", batch(pid, ep, seq, n=5, tag="p"))
            check(r["error_code"] == 0, "next batch after restart: %d" % r["error_code"])
            vals = log_values(c, "persist")
            check(vals == ["p-%d" % i for i in range(seq + 5)], "log after restart: %d values"
                  % len(vals))
            err, prods = describe_producers(c, "persist", 0)
            check(prods and prods[0]["last_sequence"] == seq + 4, "state: %r" % prods)


@test
def test_producer_state_survives_clean_restart():
    check_dedup_after_restart(kill=False)


@test
def test_producer_state_rebuilt_after_sigkill():
    check_dedup_after_restart(kill=True)


def keyed_batch(pid, epoch, seq, keys, tag):
    now = int(time.time() * 1000)
    recs = [(("k%d" % k).encode(), ("%s-%d" % (tag, k)).encode()) for k in keys]
    return record_batch(recs, base_timestamp=now, producer_id=pid, producer_epoch=epoch,
                        base_sequence=seq)


def producer_batches_on_disk(pdir, pid):
    """[(base offset, record count, size, base sequence, last offset delta)] of pid's batches
    in the partition's .log files, and whether any of its values is still there."""
    out, values = [], False
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
            base, length = struct.unpack_from(">qi", buf, pos)
            end = pos + 12 + length
            if length < 49 or end > len(buf):
                break
            delta, = struct.unpack_from(">i", buf, pos + 23)
            bpid, = struct.unpack_from(">q", buf, pos + 43)
            seq, count = struct.unpack_from(">ii", buf, pos + 53)
            if bpid == pid:
                out.append((base, count, end - pos, seq, delta))
                values = values or b"first-" in buf[pos:end]
            pos = end
    return out, values


@test
def test_compacted_away_producer_known_after_restart_without_snapshots():
    """Producer A's records are all shadowed by producer B's later keys on a compacted topic:
    the cleaner keeps A's last batch as an empty batch (Kafka's RETAIN_EMPTY), so after a
    SIGKILL and the removal of every .snapshot file the state rebuilt from the log still knows
    A's last sequence. Bad input: A's retry of its last batch (must be answered as a duplicate
    with its original offset, not appended again) and a sequence gap (must be OUT_OF_ORDER)."""
    props = {"log.cleanup.policy": "compact", "log.segment.bytes": 1024,
             "log.retention.check.interval.ms": 300, "log.cleaner.backoff.ms": 300,
             "log.cleaner.min.cleanable.ratio": 0.01}
    with Broker(props) as b:
        with KafkaRaw(b) as c:
            ensure_topic(c, "retain")
            _, pa, ea = init_producer_id(c, 1)
            _, pb, eb = init_producer_id(c, 1)
            r = send(c, "retain", keyed_batch(pa, ea, 0, range(0, 3), "first"))
            check(r["error_code"] == 0, "A's first batch: %r" % r)
            last = send(c, "retain", keyed_batch(pa, ea, 3, range(3, 5), "first"))
            check(last["error_code"] == 0, "A's last batch: %r" % last)
            r = send(c, "retain", keyed_batch(pb, eb, 0, range(0, 5), "second"))
            check(r["error_code"] == 0, "B's batch: %r" % r)
            for i in range(30):  # plain filler: A's and B's batches end up in closed segments
                r = send(c, "retain", record_batch([(b"filler", b"f" * 64)]))
                check(r["error_code"] == 0, "filler %d: %r" % (i, r))
            pdir = os.path.join(b.data_dir, "retain-0")

            def kept_empty():
                bs, values = producer_batches_on_disk(pdir, pa)
                return not values and len(bs) == 1 and bs[0][1] == 0

            wait_until(kept_empty, 30 * SLOW, interval=0.1,
                       what="A's records compacted away, its last batch kept empty")
            bs, _ = producer_batches_on_disk(pdir, pa)
            check(bs[0] == (last["base_offset"], 0, 61, 3, 1), "A's empty batch: %r" % (bs,))
            comment("A's batches on disk after cleaning: %r" % (bs,))
            vals = log_values(c, "retain")  # a fetch reads through the empty batch
            check(vals[:5] == ["second-%d" % k for k in range(5)], "log holds %r" % vals[:6])
            end = list_offset(c, "retain", 0)["offset"]
            # librdkafka reads through the empty batch to the end.
            from confluent_kafka import Consumer, TopicPartition
            cons = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "retain",
                             "enable.auto.commit": False})
            cons.assign([TopicPartition("retain", 0, 0)])
            got, deadline = [], time.monotonic() + 20 * SLOW
            while (time.monotonic() < deadline and
                   cons.position([TopicPartition("retain", 0)])[0].offset < end):
                m = cons.poll(0.2)
                if m is not None and not m.error():
                    got.append(m.value())
            pos = cons.position([TopicPartition("retain", 0)])[0].offset
            cons.close()
            check(pos >= end and b"second-0" in got and not [v for v in got if b"first" in v],
                  "librdkafka consumer: position %d of %d, values %r" % (pos, end, got[:6]))
        b.kill()
        for f in os.listdir(pdir):
            if f.endswith(".snapshot"):
                os.unlink(os.path.join(pdir, f))
        b.start()
        with KafkaRaw(b) as c:
            r = send(c, "retain", keyed_batch(pa, ea, 3, range(3, 5), "first"))
            check(r["error_code"] == 0 and r["base_offset"] == last["base_offset"],
                  "retry of A's last batch after restart: %r (original %d)"
                  % (r, last["base_offset"]))
            check(list_offset(c, "retain", 0)["offset"] == end, "the retry was appended")
            r = send(c, "retain", keyed_batch(pa, ea, 6, [7], "first"))
            check(r["error_code"] == OUT_OF_ORDER, "gap after restart: %d" % r["error_code"])
            err, prods = describe_producers(c, "retain", 0)
            mine = [p for p in prods if p["producer_id"] == pa]
            check(err == 0 and mine and mine[0]["last_sequence"] == 4 and
                  mine[0]["epoch"] == ea, "DescribeProducers after restart: %r" % prods)
            r = send(c, "retain", keyed_batch(pa, ea, 5, [5], "third"))
            check(r["error_code"] == 0 and r["base_offset"] == end, "next batch: %r" % r)


if __name__ == "__main__":
    run_tests()
