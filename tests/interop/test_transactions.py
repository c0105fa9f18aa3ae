"""Transactions (issue 16): confluent-kafka's transactional producer against Gregor's
transaction coordinator, with read_committed and read_uncommitted consumers.
asan-smoke
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, TAGS_NONE, Broker, Cluster, KafkaRaw, Reader, array,  # noqa: E402
                     boolean, carray, cbytes, check, comment, cstring, i16, i32, i64,
                     is_flexible, run_tests, string, test)
from kafka_records import (LIST_OFFSETS, ensure_topic, list_offsets_body,  # noqa: E402
                           parse_list_offsets, parse_produce, produce_body, record_batch)

INIT_PRODUCER_ID, ADD_PARTITIONS_TO_TXN, END_TXN = 22, 24, 26
DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 65, 66
UNKNOWN_TOPIC_OR_PARTITION, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE = 3, 47, 48
INVALID_PRODUCER_ID_MAPPING, INVALID_TRANSACTION_TIMEOUT, PRODUCER_FENCED = 49, 50, 90
OPERATION_NOT_ATTEMPTED = 55
PRODUCE, NOT_ENOUGH_REPLICAS, TRANSACTION_ABORTABLE = 0, 19, 120
ATTR_TRANSACTIONAL = 0x10

# A quick sweep so the timeout test does not wait 10 s; short group delays.
PROPS = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
    "group.initial.rebalance.delay.ms": "0",
    "num.partitions": "1",
}


def txn_shard(txid, n=50):
    """Kafka's partitionFor: abs(javaStringHash(id)) % n."""
    h = 0
    for ch in txid.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= (1 << 31) else h
    return (0 if h == -(1 << 31) else abs(h)) % n


def flex_reader(body, api_key):
    """A flexible response body: the harness leaves the response header's tagged fields in
    place for APIs missing from its FIRST_FLEXIBLE table."""
    r = Reader(body)
    if not is_flexible(api_key, 0):
        r.tagged_fields()
    return r


def describe_transactions(k, ids):
    """DescribeTransactions v0 -> [(error, id, state, pid, epoch, {topic: [partitions]})]."""
    r = flex_reader(k.call(DESCRIBE_TRANSACTIONS, 0,
                           carray([cstring(x) for x in ids]) + TAGS_NONE, flexible=True),
                    DESCRIBE_TRANSACTIONS)
    r.int32()

    def topic(r):
        t = r.cstring()
        ps = r.carray(lambda r: r.int32())
        r.tagged_fields()
        return t, ps

    def one(r):
        err, txid, state = r.int16(), r.cstring(), r.cstring()
        r.int32()  # timeout
        r.int64()  # start
        pid, epoch = r.int64(), r.int16()
        topics = dict(r.carray(topic))
        r.tagged_fields()
        return err, txid, state, pid, epoch, topics
    return r.carray(one)


def list_transactions(k, states=()):
    """ListTransactions v0 -> (error, unknown filters, [(id, pid, state)])."""
    body = carray([cstring(x) for x in states]) + carray([]) + TAGS_NONE
    r = flex_reader(k.call(LIST_TRANSACTIONS, 0, body, flexible=True), LIST_TRANSACTIONS)
    r.int32()
    err = r.int16()
    unknown = r.carray(lambda r: r.cstring())

    def one(r):
        out = (r.cstring(), r.int64(), r.cstring())
        r.tagged_fields()
        return out
    return err, unknown, r.carray(one)


def producer(b, txid, **extra):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": b.bootstrap, "transactional.id": txid, "linger.ms": 5}
    conf.update(extra)
    p = Producer(conf)
    p.init_transactions(30 * SLOW)
    return p


def consume_all(b, topic, isolation, expect=None, timeout=10.0, partitions=1):
    """Values read from the topic's partitions (assigned, no group) from the beginning until
    `expect` values were seen; with expect=None until nothing new came for 2 s."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "isolation.level": isolation})
    c.assign([TopicPartition(topic, i, OFFSET_BEGINNING) for i in range(partitions)])
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


@test
def test_open_transaction_holds_back_read_committed_until_commit():
    """The last stable offset: while a transaction is open, a read_committed consumer sees
    nothing from its first record on (not even later non-transactional records) and
    ListOffsets(read_committed) answers the LSO; DescribeTransactions and ListTransactions show
    it Ongoing; the commit releases everything, in order."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    with Broker(PROPS) as b:
        plain = Producer({"bootstrap.servers": b.bootstrap})
        plain.produce("t2", b"before")
        plain.flush(10)
        p = producer(b, "tx-open")
        p.begin_transaction()
        p.produce("t2", b"txn0")
        p.produce("t2", b"txn1")
        p.flush(10)
        plain.produce("t2", b"after")
        plain.flush(10)
        rc = consume_all(b, "t2", "read_committed", timeout=10.0)
        check(rc == ["before"], "read_committed during the transaction saw %r" % rc)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "lso",
                      "isolation.level": "read_committed"})
        lo, hi = c.get_watermark_offsets(TopicPartition("t2", 0), timeout=10, cached=False)
        c.close()
        check(hi == 1, "read_committed high offset (LSO) %d, want 1" % hi)
        ru = consume_all(b, "t2", "read_uncommitted", expect=4)
        check(ru == ["before", "txn0", "txn1", "after"], "read_uncommitted saw %r" % ru)
        with KafkaRaw(b) as k:
            d = describe_transactions(k, ["tx-open", "tx-unknown"])
            check(d[0][0] == 0 and d[0][2] == "Ongoing" and d[0][5] == {"t2": [0]},
                  "DescribeTransactions: %r" % (d,))
            check(d[1][0] == 105, "unknown id: %r" % (d[1],))  # TRANSACTIONAL_ID_NOT_FOUND
            err, unknown, ts = list_transactions(k, ["Ongoing", "Bogus"])
            check(err == 0 and unknown == ["Bogus"] and
                  [(t[0], t[2]) for t in ts] == [("tx-open", "Ongoing")],
                  "ListTransactions: %r" % ((err, unknown, ts),))
        p.commit_transaction(30 * SLOW)
        rc = consume_all(b, "t2", "read_committed", expect=4)
        check(rc == ["before", "txn0", "txn1", "after"], "after commit %r" % rc)


@test
def test_second_producer_fences_the_first():
    """Zombie fencing: a second producer with the same transactional.id gets a bumped epoch
    (the first one's open transaction is aborted); the first fails with a fatal fencing
    error on its next transactional call; the second commits normally."""
    from confluent_kafka import KafkaException
    with Broker(PROPS) as b:
        p1 = producer(b, "tx-zombie")
        p1.begin_transaction()
        p1.produce("t3", b"zombie")
        p1.flush(10)
        p2 = producer(b, "tx-zombie")
        p2.begin_transaction()
        p2.produce("t3", b"fresh")
        p2.commit_transaction(30 * SLOW)
        err = None
        try:
            p1.produce("t3", b"zombie2")
            p1.commit_transaction(15 * SLOW)
        except KafkaException as e:
            err = e.args[0]
        check(err is not None, "the fenced producer committed")
        comment("fenced producer: %s" % err.str())
        check(err.fatal() or err.name() in ("PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH",
                                            "_FENCED"), "error %s" % err.name())
        rc = consume_all(b, "t3", "read_committed", expect=1, timeout=10.0)
        check(rc == ["fresh"], "read_committed saw %r" % rc)


@test
def test_send_offsets_visible_only_after_commit():
    """Consume-transform-produce: offsets sent with send_offsets_to_transaction are not the
    group's committed offsets until the transaction commits (a require_stable OffsetFetch is
    not answered meanwhile); an aborted transaction's offsets never are."""
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
    with Broker(PROPS) as b:
        src = Producer({"bootstrap.servers": b.bootstrap})
        for i in range(10):
            src.produce("in", ("m%d" % i).encode())
        src.flush(10)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ctp",
                      "auto.offset.reset": "earliest", "enable.auto.commit": False,
                      "isolation.level": "read_committed"})
        c.subscribe(["in"])
        msgs = []
        deadline = time.monotonic() + 15 * SLOW
        while len(msgs) < 10 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                msgs.append(m)
        check(len(msgs) == 10, "consumed %d of 10" % len(msgs))
        p = producer(b, "tx-ctp")

        # OffsetFetch without require_stable (read_uncommitted): the committed offset as is.
        ru = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ctp",
                       "isolation.level": "read_uncommitted"})

        def committed():
            tp = ru.committed([TopicPartition("in", 0)], timeout=10)
            return tp[0].offset

        p.begin_transaction()
        for m in msgs[:4]:
            p.produce("out", m.value().upper())
        p.send_offsets_to_transaction([TopicPartition("in", 0, 4)],
                                      c.consumer_group_metadata(), 15 * SLOW)
        p.abort_transaction(30 * SLOW)
        check(committed() < 0, "aborted offsets committed: %r" % committed())
        p.begin_transaction()
        for m in msgs:
            p.produce("out", m.value().upper())
        p.send_offsets_to_transaction([TopicPartition("in", 0, 10)],
                                      c.consumer_group_metadata(), 15 * SLOW)
        p.flush(10)
        check(committed() < 0, "offsets visible before the commit: %r" % committed())
        # A read_committed consumer asks with require_stable (KIP-447): not answered while the
        # transaction holds an offset (UNSTABLE_OFFSET_COMMIT, retried by librdkafka).
        err = None
        try:
            c.committed([TopicPartition("in", 0)], timeout=1.5)
        except KafkaException as e:
            err = e.args[0]
        check(err is not None, "require_stable fetch answered during the transaction")
        comment("require_stable during the transaction: %s" % err.name())
        p.commit_transaction(30 * SLOW)
        check(committed() == 10, "offsets after the commit: %r" % committed())
        check(c.committed([TopicPartition("in", 0)], timeout=10)[0].offset == 10,
              "require_stable after the commit")
        ru.close()
        c.close()
        out = consume_all(b, "out", "read_committed", expect=10)
        check(out == ["M%d" % i for i in range(10)], "output %r" % out)


@test
def test_timed_out_transaction_is_aborted():
    """A transaction left open past transaction.timeout.ms is aborted by the coordinator:
    the LSO moves on (read_committed readers see later records, never the aborted ones) and
    the producer's commit fails."""
    from confluent_kafka import KafkaException, Producer
    with Broker(PROPS) as b:
        p = producer(b, "tx-timeout", **{"transaction.timeout.ms": 2000})
        p.begin_transaction()
        p.produce("t4", b"expired")
        p.flush(10)
        plain = Producer({"bootstrap.servers": b.bootstrap})
        plain.produce("t4", b"later")
        plain.flush(10)
        rc = consume_all(b, "t4", "read_committed", expect=1, timeout=10.0)
        check(rc == ["later"], "read_committed saw %r" % rc)
        err = None
        try:
            p.commit_transaction(10 * SLOW)
        except KafkaException as e:
            err = e.args[0]
        check(err is not None, "commit of a timed-out transaction succeeded")
        comment("commit after the timeout: %s" % err.str())
        check("aborting a transaction open longer than its timeout" in b.log_text(),
              "no timeout abort in the log")


@test
def test_state_survives_sigkill():
    """After SIGKILL and restart: committed records stay visible and aborted ones hidden for
    read_committed (.txnindex, producer snapshot, log replay); the open transaction still holds
    the LSO, its TxnOffsetCommit records (written to __consumer_offsets before the commit, as
    Kafka does) are replayed as pending, and the same producer's commit then makes records and
    offsets visible, also after a second restart."""
    from confluent_kafka import Consumer, Producer, TopicPartition
    with Broker(PROPS) as b:
        src = Producer({"bootstrap.servers": b.bootstrap})
        src.produce("in5", b"input")
        src.flush(10)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ctp5",
                      "isolation.level": "read_uncommitted"})  # OffsetFetch, not require_stable
        meta = c.consumer_group_metadata()
        p = producer(b, "tx-crash")
        p.begin_transaction()
        p.produce("t5", b"c0")
        p.commit_transaction(30 * SLOW)
        p.begin_transaction()
        p.produce("t5", b"a0")
        p.flush(10)
        p.abort_transaction(30 * SLOW)
        p.begin_transaction()
        p.produce("t5", b"c1")
        p.commit_transaction(30 * SLOW)
        p.begin_transaction()
        p.produce("t5", b"open")
        p.send_offsets_to_transaction([TopicPartition("in5", 0, 1)], meta, 15 * SLOW)
        p.flush(10)
        b.kill()
        b.start()
        rc = consume_all(b, "t5", "read_committed", expect=2, timeout=15.0)
        check(rc == ["c0", "c1"], "read_committed after restart saw %r" % rc)
        ru = consume_all(b, "t5", "read_uncommitted", expect=4)
        check(ru == ["c0", "a0", "c1", "open"], "read_uncommitted saw %r" % ru)

        def committed():
            return c.committed([TopicPartition("in5", 0)], timeout=15 * SLOW)[0].offset

        check(committed() < 0, "offsets of the open transaction visible: %r" % committed())
        p.commit_transaction(60 * SLOW)
        check(committed() == 1, "offsets after the commit: %r" % committed())
        b.kill()
        b.start()
        rc = consume_all(b, "t5", "read_committed", expect=3)
        check(rc == ["c0", "c1", "open"], "after the commit and a restart %r" % rc)
        check(committed() == 1, "offsets after a second restart: %r" % committed())
        c.close()

@test
def test_cluster_markers_reach_every_leader_and_the_coordinator_fails_over():
    """Three brokers: a transaction over partitions led by every broker gets its markers on
    all of them (WriteTxnMarkers to the other leaders); after SIGKILL of the coordinator's
    broker, the new leader of its __transaction_state partition replays the state, aborts
    the transaction left open, and a new producer with the id commits."""
    with Cluster(3, {"group.initial.rebalance.delay.ms": "0"}) as c:
        err = c.create_topic("ct", 6, 3)
        check(err is None, "create ct: %s" % err)
        leaders = c.wait_topic("ct", 6)
        check(len(set(leaders.values())) > 1, "one leader for every partition: %r" % leaders)
        p = producer(c, "tx-cluster")
        p.begin_transaction()
        for i in range(6):
            p.produce("ct", ("c-%d" % i).encode(), partition=i)
        p.commit_transaction(30 * SLOW)
        p.begin_transaction()
        for i in range(6):
            p.produce("ct", ("a-%d" % i).encode(), partition=i)
        p.flush(10)
        p.abort_transaction(30 * SLOW)
        rc = sorted(consume_all(c, "ct", "read_committed", expect=6, partitions=6))
        check(rc == ["c-%d" % i for i in range(6)], "read_committed saw %r" % rc)
        shard = txn_shard("tx-cluster")
        coord = c.partition_leaders("__transaction_state")[shard]["leader"]
        comment("coordinator of tx-cluster: broker %d (partition %d)" % (coord, shard))
        p.begin_transaction()
        for i in range(6):
            p.produce("ct", ("o-%d" % i).encode(), partition=i)
        p.flush(10)
        c.kill(coord)
        q = producer(c, "tx-cluster")
        q.begin_transaction()
        for i in range(6):
            q.produce("ct", ("d-%d" % i).encode(), partition=i)
        q.commit_transaction(60 * SLOW)
        rc = sorted(consume_all(c, "ct", "read_committed", expect=12, timeout=20.0,
                                partitions=6))
        check(rc == sorted(["c-%d" % i for i in range(6)] + ["d-%d" % i for i in range(6)]),
              "read_committed after the failover saw %r" % rc)
        # KIP-890 across brokers: a leader that does not coordinate the id asks the
        # coordinator's broker (AddPartitionsToTxn v4 verify-only) before a first batch.
        live = c.live_ids()
        coord = c.partition_leaders("__transaction_state")[txn_shard("tx-stray")]["leader"]
        leaders = c.partition_leaders("ct")
        part = [i for i in range(6) if leaders[i]["leader"] not in (coord, -1)]
        check(coord in live and part, "a partition led away from the coordinator: %r" % leaders)
        with c.raw(coord) as kc, c.raw(leaders[part[0]]["leader"]) as kl:
            err, pid, epoch = raw_init(kc, "tx-stray")
            check(err == 0, "init on the coordinator: %d" % err)
            stray = txn_batch(pid, epoch, 0, b"stray")
            err, _ = raw_produce_to(kl, 8, "tx-stray", "ct", part[0], stray)
            check(err == INVALID_TXN_STATE, "stray batch on a remote leader: %d" % err)
            res = raw_add_partitions(kc, "tx-stray", pid, epoch, [("ct", [part[0]])])
            check(res == [("ct", [(part[0], 0)])], "added: %r" % res)
            err, _ = raw_produce_to(kl, 8, "tx-stray", "ct", part[0], stray)
            check(err == 0, "after the add, on the remote leader: %d" % err)
            check(raw_end(kc, 1, "tx-stray", pid, epoch, True) == 0, "commit")


def raw_init(k, txid, timeout_ms=60000):
    """InitProducerId v1, retried while __transaction_state is being created."""
    deadline = time.monotonic() + 15 * SLOW
    while True:
        r = Reader(k.call(INIT_PRODUCER_ID, 1, string(txid) + i32(timeout_ms)))
        r.int32()
        err, pid, epoch = r.int16(), r.int64(), r.int16()
        if err not in (15, 14, 16, 51) or time.monotonic() > deadline:
            return err, pid, epoch
        time.sleep(0.1)


def raw_end(k, version, txid, pid, epoch, commit):
    body = string(txid) + i64(pid) + i16(epoch) + boolean(commit)
    r = Reader(k.call(END_TXN, version, body))
    r.int32()
    return r.int16()


def raw_add_partitions(k, txid, pid, epoch, topics):
    body = string(txid) + i64(pid) + i16(epoch)
    body += array([string(t) + array([i32(p) for p in ps]) for t, ps in topics])
    r = Reader(k.call(ADD_PARTITIONS_TO_TXN, 1, body))
    r.int32()
    return r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16()))))


def log_end(k, topic, committed=False):
    """ListOffsets v5 latest of partition 0: the log end, or the LSO with read_committed."""
    body = list_offsets_body({topic: {0: -1}}, 5, isolation_level=1 if committed else 0)
    return parse_list_offsets(k.call(LIST_OFFSETS, 5, body), 5)[(topic, 0)]["offset"]


def txn_batch(pid, epoch, seq, value):
    return record_batch([(None, value)], attributes=ATTR_TRANSACTIONAL, producer_id=pid,
                        producer_epoch=epoch, base_sequence=seq)


def raw_produce(k, version, txid, topic, batch):
    return raw_produce_to(k, version, txid, topic, 0, batch)


def raw_produce_to(k, version, txid, topic, partition, batch):
    """Produce acks=-1 of one transactional batch -> (error code, base offset). v8 or v11."""
    if version <= 8:
        body = produce_body({topic: {partition: batch}}, acks=-1, version=version,
                            transactional_id=txid)
        res, _ = parse_produce(k.call(PRODUCE, version, body), version)
        return res[(topic, partition)]["error_code"], res[(topic, partition)]["base_offset"]
    part = i32(partition) + cbytes(batch) + TAGS_NONE
    body = (cstring(txid) + i16(-1) + i32(30000) +
            carray([cstring(topic) + carray([part]) + TAGS_NONE]) + TAGS_NONE)
    r = Reader(k.call(PRODUCE, version, body))
    r.uvarint()  # responses (one topic)
    r.cstring()
    r.uvarint()  # partitions (one)
    r.int32()
    return r.int16(), r.int64()


def raw_verify(k, txid, pid, epoch, topic, partitions):
    """AddPartitionsToTxn v4 verify-only (the brokers' form) -> {partition: error}."""
    t = (cstring(txid) + i64(pid) + i16(epoch) + boolean(True) +
         carray([cstring(topic) + carray([i32(p) for p in partitions]) + TAGS_NONE]) + TAGS_NONE)
    r = flex_reader(k.call(ADD_PARTITIONS_TO_TXN, 4, carray([t]) + TAGS_NONE, flexible=True),
                    ADD_PARTITIONS_TO_TXN)
    r.int32()
    top = r.int16()
    out = {}
    for _ in range(r.uvarint() - 1):
        r.cstring()
        for _ in range(r.uvarint() - 1):
            r.cstring()
            for _ in range(r.uvarint() - 1):
                p, e = r.int32(), r.int16()
                r.tagged_fields()
                out[p] = e if top == 0 else top
            r.tagged_fields()
        r.tagged_fields()
    return out


@test
def test_produce_outside_the_transaction_is_refused():
    """KIP-890 part 1: a transactional batch for a partition the producer never added to its
    transaction (or sent after the transaction ended) is not appended: INVALID_TXN_STATE for
    Produce up to v10, TRANSACTION_ABORTABLE for v11, and the log end does not move, so no
    transaction is left open that nobody ends (read_committed would stop there for good).
    AddPartitionsToTxn v4 verify-only (what a leader asks a remote coordinator) answers the
    same from the coordinator. With transaction.partition.verification.enable=false the stray
    batch is appended, as Kafka without verification does."""
    for verify in (True, False):
        props = dict(PROPS, **{"transaction.partition.verification.enable": str(verify).lower(),
                               "num.partitions": "2"})
        with Broker(props) as b, KafkaRaw(b) as k:
            ensure_topic(k, "v", 2)
            err, pid, epoch = raw_init(k, "tx-v")
            check(err == 0, "init: %d" % err)
            end0 = log_end(k, "v")
            err, _ = raw_produce(k, 8, "tx-v", "v", txn_batch(pid, epoch, 0, b"stray"))
            if not verify:
                check(err == 0, "without verification the stray batch is appended: %d" % err)
                check(log_end(k, "v") == end0 + 1, "appended")
                continue
            check(err == INVALID_TXN_STATE, "v8, partition not in the transaction: %d" % err)
            err, _ = raw_produce(k, 11, "tx-v", "v", txn_batch(pid, epoch, 0, b"stray"))
            check(err == TRANSACTION_ABORTABLE, "v11, partition not in the transaction: %d" % err)
            check(log_end(k, "v") == end0, "nothing appended")
            res = raw_add_partitions(k, "tx-v", pid, epoch, [("v", [0])])
            check(res == [("v", [(0, 0)])], "added: %r" % res)
            check(raw_verify(k, "tx-v", pid, epoch, "v", [0, 1]) ==
                  {0: 0, 1: TRANSACTION_ABORTABLE}, "verify-only after the add")
            check(raw_verify(k, "tx-v", pid, epoch + 1, "v", [0]) == {0: PRODUCER_FENCED},
                  "verify-only, wrong epoch")
            check(raw_verify(k, "tx-v", pid + 1, epoch, "v", [0]) ==
                  {0: INVALID_PRODUCER_ID_MAPPING}, "verify-only, wrong producer id")
            err, off = raw_produce(k, 8, "tx-v", "v", txn_batch(pid, epoch, 0, b"in"))
            check(err == 0 and off == end0, "in the transaction: %d at %d" % (err, off))
            err, _ = raw_produce(k, 11, "tx-v", "v", txn_batch(pid, epoch, 1, b"in2"))
            check(err == 0, "a later batch of the same transaction: %d" % err)
            check(raw_end(k, 1, "tx-v", pid, epoch, False) == 0, "abort")
            end1 = log_end(k, "v")
            # A batch that arrives after its transaction ended (a late retry) opens nothing.
            err, _ = raw_produce(k, 8, "tx-v", "v", txn_batch(pid, epoch, 2, b"late"))
            check(err == INVALID_TXN_STATE, "after the abort: %d" % err)
            check(log_end(k, "v") == end1, "the late batch was not appended")
            lso = log_end(k, "v", committed=True)
            check(lso == end1, "the last stable offset is the log end: %d vs %d" % (lso, end1))


@test
def test_bad_transactional_requests_get_kafkas_errors():
    """Kafka's answers to bad input, nothing written: EndTxn for an unknown id
    (INVALID_PRODUCER_ID_MAPPING), with a wrong epoch (INVALID_PRODUCER_EPOCH before v2,
    PRODUCER_FENCED after), outside a transaction (INVALID_TXN_STATE); InitProducerId with a
    timeout above transaction.max.timeout.ms (INVALID_TRANSACTION_TIMEOUT); AddPartitionsToTxn
    with an unknown topic (UNKNOWN_TOPIC_OR_PARTITION, the rest OPERATION_NOT_ATTEMPTED). Then
    the id, unused for transactional.id.expiration.ms, is removed."""
    props = dict(PROPS, **{"auto.create.topics.enable": "false",
                           "transactional.id.expiration.ms": "1500"})
    with Broker(props) as b, KafkaRaw(b) as k:
        err, _, _ = raw_init(k, "tx-bad", timeout_ms=900001)
        check(err == INVALID_TRANSACTION_TIMEOUT, "timeout above the max: %d" % err)
        err, pid, epoch = raw_init(k, "tx-bad")
        check(err == 0 and pid >= 0 and epoch == 0, "init: %r" % ((err, pid, epoch),))
        check(raw_end(k, 1, "tx-nobody", pid, epoch, True) == INVALID_PRODUCER_ID_MAPPING,
              "unknown id")
        check(raw_end(k, 1, "tx-bad", pid + 1, epoch, True) == INVALID_PRODUCER_ID_MAPPING,
              "wrong producer id")
        check(raw_end(k, 1, "tx-bad", pid, epoch + 1, True) == INVALID_PRODUCER_EPOCH,
              "wrong epoch, v1")
        check(raw_end(k, 2, "tx-bad", pid, epoch + 1, True) == PRODUCER_FENCED, "wrong epoch, v2")
        check(raw_end(k, 1, "tx-bad", pid, epoch, True) == INVALID_TXN_STATE, "no transaction")
        res = raw_add_partitions(k, "tx-bad", pid, epoch, [("no-such-topic", [0]),
                                                           ("__transaction_state", [0])])
        errs = dict((t, [e for _, e in ps]) for t, ps in res)
        check(errs.get("no-such-topic") == [UNKNOWN_TOPIC_OR_PARTITION], "unknown: %r" % res)
        check(errs.get("__transaction_state") == [OPERATION_NOT_ATTEMPTED],
              "the rest: %r" % res)
        check(raw_end(k, 1, "tx-bad", pid, epoch, False) == INVALID_TXN_STATE,
              "abort after the refused add")
        # transactional.id.expiration.ms: an unused id is forgotten (a tombstone), so the next
        # InitProducerId gets a new producer id.
        deadline = time.monotonic() + 10 * SLOW
        while "transactional id expired" not in b.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        err, pid2, epoch2 = raw_init(k, "tx-bad")
        check(err == 0 and pid2 != pid and epoch2 == 0, "after expiry: %r" % ((err, pid2, epoch2),))


if __name__ == "__main__":
    run_tests()
