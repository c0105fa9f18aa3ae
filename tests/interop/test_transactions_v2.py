"""Transactions version 2 (KIP-890 part 2, issue 16), driven with raw Kafka frames the way
Kafka's Java client 4.x drives a TV2 transaction.

- ApiVersions finalizes the feature "transaction.version" at level 2 with an epoch >= 0 (a
  client ignores features under epoch -1), lists its supported range 0-2 only from v4 on (as
  Kafka, KIP-1022), and serves EndTxn v5, Produce v12, TxnOffsetCommit v5.
- InitProducerId, then Produce v12 without AddPartitionsToTxn: the leader adds the partition
  (while Produce v11 without it is still refused, KIP-890 part 1); EndTxn v5 answers with the
  producer id and the epoch bumped; the same EndTxn retried with the old epoch gets the same
  answer; the next transaction runs at the new epoch; a produce and an EndTxn at the old epoch
  are fenced; an abort bumps again; read_committed readers see the commit, not the abort.
- TxnOffsetCommit v5 without AddOffsetsToTxn: the offsets partition joins the transaction and
  the offsets become visible at the commit.
- An EndTxn v5 whose answer is lost, retried at the old epoch after the coordinator restarted
  (one broker) or moved (SIGKILL of its broker in a 3-node cluster): the new coordinator
  rebuilt the TV2 state from __transaction_state and answers as Kafka does, with the bumped
  epoch (before, it answered PRODUCER_FENCED).
- The last usable epoch: an id's __transaction_state record at epoch 32765 (written as Kafka's
  admin client may, with client id "__admin_client", then loaded by a restart); the next
  EndTxn v5 bumps to 32766, the one after moves the producer to a new producer id at epoch 0
  (markers with the old id at 32767), its retry with the old id and epoch gets the same answer,
  the new id runs the next transaction, the old id is fenced on the partition, and
  read_committed readers see the three commits.
- KIP-360: InitProducerId v3 naming the producer's id and epoch bumps the epoch; the same
  request retried (its answer lost) gets the same epoch, not a second bump.
Bad input tried: old epochs after the bump (produce, EndTxn), an EndTxn retry of the other
outcome (also after the failover), a v11 produce skipping AddPartitionsToTxn, InitProducerId
with an epoch older than the last two.
asan-smoke tsan-smoke
"""
import os
import struct
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, TAGS_NONE, Broker, Cluster, KafkaRaw, Reader, boolean, carray,  # noqa: E402
                     cbytes, check, comment, cstring, i16, i32, i64, is_flexible, run_tests, string,
                     test)
from kafka_records import (LIST_OFFSETS, ensure_topic, list_offsets_body,  # noqa: E402
                           parse_list_offsets, record_batch)

PRODUCE, INIT_PRODUCER_ID, END_TXN, TXN_OFFSET_COMMIT, API_VERSIONS = 0, 22, 26, 28, 18
FIND_COORDINATOR = 10
INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, PRODUCER_FENCED = 47, 48, 90
TRANSACTION_ABORTABLE = 120
ATTR_TRANSACTIONAL = 0x10
PROPS = {"num.partitions": "1", "group.initial.rebalance.delay.ms": "0"}


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


def flex_call(k, api_key, version, body):
    """A flexible request; the response body after its header's tagged fields (which the
    harness leaves in place for APIs missing from its FIRST_FLEXIBLE table)."""
    r = Reader(k.call(api_key, version, body, flexible=True))
    if not is_flexible(api_key, version):
        r.tagged_fields()
    return r


def end_txn_v5(k, txid, pid, epoch, commit):
    """EndTxn v5 -> (error, producer id, producer epoch)."""
    body = cstring(txid) + i64(pid) + i16(epoch) + boolean(commit) + TAGS_NONE
    r = flex_call(k, END_TXN, 5, body)
    r.int32()
    out = (r.int16(), r.int64(), r.int16())
    r.tagged_fields()
    r.end()
    return out


def produce(k, version, txid, topic, pid, epoch, seq, value, partition=0):
    """Produce (v11/v12, acks=-1) of one transactional batch -> error code."""
    batch = record_batch([(None, value)], attributes=ATTR_TRANSACTIONAL, producer_id=pid,
                         producer_epoch=epoch, base_sequence=seq)
    part = i32(partition) + cbytes(batch) + TAGS_NONE
    body = (cstring(txid) + i16(-1) + i32(30000) +
            carray([cstring(topic) + carray([part]) + TAGS_NONE]) + TAGS_NONE)
    r = flex_call(k, PRODUCE, version, body)
    r.uvarint()
    r.cstring()
    r.uvarint()
    r.int32()
    return r.int16()


def lso_and_end(k, topic):
    out = []
    for iso in (1, 0):
        body = list_offsets_body({topic: {0: -1}}, 5, isolation_level=iso)
        out.append(parse_list_offsets(k.call(LIST_OFFSETS, 5, body), 5)[(topic, 0)]["offset"])
    return tuple(out)


def read_values(b, topic, isolation):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "isolation.level": isolation,
                  "enable.partition.eof": True})
    c.assign([TopicPartition(topic, 0, 0)])
    out = []
    deadline = time.monotonic() + 15 * SLOW
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:
                break
            continue
        out.append(m.value())
    c.close()
    return out


@test
def test_api_versions_finalizes_transaction_version_2():
    with Broker(PROPS) as b, KafkaRaw(b) as k:
        for version in (3, 4):
            body = k.call(API_VERSIONS, version, cstring("t") + cstring("1") + TAGS_NONE)
            r = Reader(body)
            check(r.int16() == 0, "ApiVersions v%d error" % version)
            keys = {}
            for _ in range(r.uvarint() - 1):
                key, lo, hi = r.int16(), r.int16(), r.int16()
                r.tagged_fields()
                keys[key] = (lo, hi)
            r.int32()
            tags = r.tagged_fields()
            r.end()
            for key, hi in ((END_TXN, 5), (PRODUCE, 12), (TXN_OFFSET_COMMIT, 5)):
                check(keys[key][1] == hi, "v%d: api %d max %r" % (version, key, keys[key]))
            check(1 in tags and struct.unpack(">q", tags[1])[0] >= 0,
                  "v%d: finalized features epoch %r" % (version, tags.get(1)))
            fr = Reader(tags[2])
            fin = {}
            for _ in range(fr.uvarint() - 1):
                name, hi, lo = fr.cstring(), fr.int16(), fr.int16()
                fr.tagged_fields()
                fin[name] = (lo, hi)
            check(fin.get("transaction.version") == (2, 2), "v%d finalized %r" % (version, fin))
            sup = {}
            if 0 in tags:
                sr = Reader(tags[0])
                for _ in range(sr.uvarint() - 1):
                    name, lo, hi = sr.cstring(), sr.int16(), sr.int16()
                    sr.tagged_fields()
                    sup[name] = (lo, hi)
            want = (0, 2) if version >= 4 else None
            check(sup.get("transaction.version") == want, "v%d supported %r" % (version, sup))
        comment("transaction.version finalized at 2; EndTxn v5, Produce v12, TxnOffsetCommit v5")


@test
def test_tv2_transaction_bumps_epoch_per_transaction_and_fences_the_old_one():
    with Broker(PROPS) as b, KafkaRaw(b) as k:
        ensure_topic(k, "tv2", 1)
        ensure_topic(k, "tv1", 1)
        err, pid, e0 = raw_init(k, "tx-v2")
        check(err == 0, "InitProducerId: %d" % err)
        # KIP-890 part 1 still holds for v11: no AddPartitionsToTxn, no write.
        err = produce(k, 11, "tx-v2", "tv1", pid, e0, 0, b"v11-unadded")
        check(err == TRANSACTION_ABORTABLE, "Produce v11 without AddPartitionsToTxn: %d" % err)
        # v12: the leader adds the partition itself.
        err = produce(k, 12, "tx-v2", "tv2", pid, e0, 0, b"committed-1")
        check(err == 0, "Produce v12 without AddPartitionsToTxn: %d" % err)
        lso, end = lso_and_end(k, "tv2")
        check(lso < end, "an open transaction holds the LSO: %d / %d" % (lso, end))
        err, rpid, e1 = end_txn_v5(k, "tx-v2", pid, e0, True)
        check((err, rpid, e1) == (0, pid, e0 + 1), "EndTxn v5: %r (epoch was %d)"
              % ((err, rpid, e1), e0))
        # A retry (its answer was lost) with the old epoch: the same answer.
        retry = end_txn_v5(k, "tx-v2", pid, e0, True)
        check(retry == (0, pid, e1), "EndTxn v5 retry: %r" % (retry,))
        # The other outcome with the old epoch is no retry.
        other = end_txn_v5(k, "tx-v2", pid, e0, False)
        check(other[0] == INVALID_TXN_STATE, "abort retried after a commit: %r" % (other,))
        lso, end = lso_and_end(k, "tv2")
        check(lso == end, "committed: LSO %d, end %d" % (lso, end))
        # Next transaction at the new epoch (sequence starts again at 0).
        err = produce(k, 12, "tx-v2", "tv2", pid, e1, 0, b"aborted-2")
        check(err == 0, "Produce v12 at the bumped epoch: %d" % err)
        # The old epoch is fenced on the partition and at the coordinator.
        err = produce(k, 12, "tx-v2", "tv2", pid, e0, 1, b"zombie")
        check(err in (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED), "old-epoch produce: %d" % err)
        stale = end_txn_v5(k, "tx-v2", pid, e0, True)
        check(stale[0] == PRODUCER_FENCED, "old-epoch EndTxn: %r" % (stale,))
        err, rpid, e2 = end_txn_v5(k, "tx-v2", pid, e1, False)
        check((err, rpid, e2) == (0, pid, e1 + 1), "abort: %r" % ((err, rpid, e2),))
        comment("epochs %d -> %d -> %d over two transactions" % (e0, e1, e2))
        committed = read_values(b, "tv2", "read_committed")
        check(committed == [b"committed-1"], "read_committed saw %r" % committed)
        uncommitted = read_values(b, "tv2", "read_uncommitted")
        check(uncommitted == [b"committed-1", b"aborted-2"], "read_uncommitted saw %r"
              % uncommitted)


def txn_offset_commit_v5(k, txid, group, pid, epoch, topic, offset):
    part = i32(0) + i64(offset) + i32(-1) + cstring("") + TAGS_NONE
    body = (cstring(txid) + cstring(group) + i64(pid) + i16(epoch) + i32(-1) + cstring("") +
            b"\x00" + carray([cstring(topic) + carray([part]) + TAGS_NONE]) + TAGS_NONE)
    r = flex_call(k, TXN_OFFSET_COMMIT, 5, body)
    r.int32()
    errs = []
    for _ in range(r.uvarint() - 1):
        r.cstring()
        for _ in range(r.uvarint() - 1):
            r.int32()
            errs.append(r.int16())
            r.tagged_fields()
        r.tagged_fields()
    return errs


@test
def test_tv2_txn_offset_commit_v5_adds_the_offsets_partition():
    from confluent_kafka import Consumer, TopicPartition
    with Broker(PROPS) as b, KafkaRaw(b) as k:
        ensure_topic(k, "tv2o", 1)
        err, pid, e0 = raw_init(k, "tx-v2o")
        check(err == 0, "InitProducerId: %d" % err)
        check(produce(k, 12, "tx-v2o", "tv2o", pid, e0, 0, b"out") == 0, "produce")
        deadline = time.monotonic() + 15 * SLOW
        while True:  # FindCoordinator creates __consumer_offsets, as a client's would
            r = Reader(k.call(FIND_COORDINATOR, 1, string("g-tv2") + b"\x00"))
            r.int32()
            if r.int16() == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        while True:  # the group coordinator may still be loading __consumer_offsets
            errs = txn_offset_commit_v5(k, "tx-v2o", "g-tv2", pid, e0, "tv2o", 7)
            if errs != [14] and errs != [15] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        check(errs == [0], "TxnOffsetCommit v5 without AddOffsetsToTxn: %r" % errs)
        stale = txn_offset_commit_v5(k, "tx-v2o", "g-tv2", pid, e0 - 1 if e0 > 0 else 999,
                                     "tv2o", 8)
        check(stale and stale[0] in (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH),
              "TxnOffsetCommit v5 at a wrong epoch: %r" % stale)
        err, _, e1 = end_txn_v5(k, "tx-v2o", pid, e0, True)
        check(err == 0 and e1 == e0 + 1, "EndTxn v5: %d, epoch %d" % (err, e1))
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g-tv2",
                      "enable.auto.commit": False})
        got = None
        deadline = time.monotonic() + 15 * SLOW
        while time.monotonic() < deadline:
            got = c.committed([TopicPartition("tv2o", 0)], timeout=5 * SLOW)[0].offset
            if got == 7:
                break
            time.sleep(0.2)
        c.close()
        check(got == 7, "offset after the commit: %r" % got)


def java_string_hash(s):
    h = 0
    for ch in s.encode("utf-16-be").decode("utf-16-be"):
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


@test
def test_tv2_produce_v12_on_a_leader_away_from_the_coordinator():
    """Across brokers: the partition's leader is not the coordinator, so it adds the partition
    with AddPartitionsToTxn (verify_only false) to the coordinator's broker; the commit's
    markers then reach that partition at the bumped epoch."""
    with Cluster(3, {"group.initial.rebalance.delay.ms": "0"}) as c:
        check(c.create_topic("cv2", 6, 3) is None, "create cv2")
        c.wait_topic("cv2", 6)
        with c.raw(c.live_ids()[0]) as k0:
            raw_init(k0, "tx-warmup")  # creates __transaction_state
        c.wait_topic("__transaction_state", 50)
        shard = abs(java_string_hash("tx-v2c")) % 50
        coord = c.partition_leaders("__transaction_state")[shard]["leader"]
        leaders = c.partition_leaders("cv2")
        part = [i for i in range(6) if leaders[i]["leader"] not in (coord, -1)]
        check(part, "a partition led away from the coordinator: %r" % leaders)
        with c.raw(coord) as kc, c.raw(leaders[part[0]]["leader"]) as kl:
            err, pid, e0 = raw_init(kc, "tx-v2c")
            check(err == 0, "init: %d" % err)
            err = produce(kl, 12, "tx-v2c", "cv2", pid, e0, 0, b"remote-1", part[0])
            check(err == 0, "Produce v12 on a remote leader: %d" % err)
            err, _, e1 = end_txn_v5(kc, "tx-v2c", pid, e0, True)
            check(err == 0 and e1 == e0 + 1, "EndTxn v5: %d epoch %d" % (err, e1))
            err = produce(kl, 12, "tx-v2c", "cv2", pid, e0, 1, b"zombie", part[0])
            check(err in (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED), "old epoch there: %d" % err)
            err = produce(kl, 12, "tx-v2c", "cv2", pid, e1, 0, b"remote-2", part[0])
            check(err == 0, "next transaction on the remote leader: %d" % err)
            err, _, e2 = end_txn_v5(kc, "tx-v2c", pid, e1, True)
            check(err == 0 and e2 == e1 + 1, "second EndTxn v5: %d epoch %d" % (err, e2))
            body = list_offsets_body({"cv2": {part[0]: -1}}, 5, isolation_level=1)
            deadline = time.monotonic() + 10 * SLOW
            while True:  # the last marker reaches the followers, then the high watermark
                lso = parse_list_offsets(kl.call(LIST_OFFSETS, 5, body), 5)[("cv2", part[0])]
                if lso["offset"] == 4 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            check(lso["offset"] == 4, "LSO after two committed transactions: %r" % lso)


def end_txn_v5_retrying(k, txid, pid, epoch, commit):
    """EndTxn v5, retried while the coordinator is (re)loading or not there yet."""
    deadline = time.monotonic() + 20 * SLOW
    while True:
        out = end_txn_v5(k, txid, pid, epoch, commit)
        if out[0] not in (14, 15, 16) or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


@test
def test_tv2_end_txn_retry_after_a_coordinator_restart():
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "tv2r", 1)
            err, pid, e0 = raw_init(k, "tx-v2r")
            check(err == 0, "InitProducerId: %d" % err)
            check(produce(k, 12, "tx-v2r", "tv2r", pid, e0, 0, b"kept") == 0, "produce")
            err, rpid, e1 = end_txn_v5(k, "tx-v2r", pid, e0, True)  # its answer is "lost"
            check((err, rpid, e1) == (0, pid, e0 + 1), "EndTxn v5: %r" % ((err, rpid, e1),))
        b.restart()
        with KafkaRaw(b) as k:
            retry = end_txn_v5_retrying(k, "tx-v2r", pid, e0, True)
            check(retry == (0, pid, e1), "EndTxn v5 retry after a restart: %r" % (retry,))
            other = end_txn_v5(k, "tx-v2r", pid, e0, False)
            check(other[0] == INVALID_TXN_STATE, "abort at the old epoch: %r" % (other,))
            stale = end_txn_v5(k, "tx-v2r", pid, e1, True)  # no transaction at e1 yet
            check(stale[0] == PRODUCER_FENCED, "EndTxn at the bumped epoch: %r" % (stale,))
            check(produce(k, 12, "tx-v2r", "tv2r", pid, e1, 0, b"next") == 0, "next produce")
            nxt = end_txn_v5(k, "tx-v2r", pid, e1, True)
            check(nxt == (0, pid, e1 + 1), "next EndTxn v5: %r" % (nxt,))
            comment("retry at epoch %d after the restart answered epoch %d" % (e0, e1))
        check(read_values(b, "tv2r", "read_committed") == [b"kept", b"next"], "committed data")


@test
def test_tv2_end_txn_retry_after_the_coordinator_moves():
    with Cluster(3, {"group.initial.rebalance.delay.ms": "0"}) as c:
        check(c.create_topic("mv2", 1, 3) is None, "create mv2")
        c.wait_topic("mv2", 1)
        with c.raw(c.live_ids()[0]) as k0:
            raw_init(k0, "tx-warmup")  # creates __transaction_state
        c.wait_topic("__transaction_state", 50)
        txid = "tx-v2m"
        shard = abs(java_string_hash(txid)) % 50
        coord = c.partition_leaders("__transaction_state")[shard]["leader"]
        leader = c.partition_leaders("mv2")[0]["leader"]
        with c.raw(coord) as kc, c.raw(leader) as kl:
            err, pid, e0 = raw_init(kc, txid)
            check(err == 0, "init: %d" % err)
            check(produce(kl, 12, txid, "mv2", pid, e0, 0, b"moved") == 0, "produce")
            err, _, e1 = end_txn_v5(kc, txid, pid, e0, True)  # its answer is "lost"
            check(err == 0 and e1 == e0 + 1, "EndTxn v5: %d epoch %d" % (err, e1))
        c.kill(coord)
        deadline = time.monotonic() + 30 * SLOW
        new = -1
        while time.monotonic() < deadline:
            new = c.partition_leaders("__transaction_state", via=c.live_ids()[0])[shard]["leader"]
            if new not in (coord, -1):
                break
            time.sleep(0.2)
        check(new not in (coord, -1), "a new coordinator for shard %d: %d" % (shard, new))
        with c.raw(new) as kn:
            retry = end_txn_v5_retrying(kn, txid, pid, e0, True)
            check(retry == (0, pid, e1), "EndTxn v5 retry at the new coordinator: %r" % (retry,))
            other = end_txn_v5(kn, txid, pid, e0, False)
            check(other[0] == INVALID_TXN_STATE, "abort at the old epoch: %r" % (other,))
        comment("coordinator %d -> %d; retry at epoch %d answered epoch %d" % (coord, new, e0, e1))


def produce_plain(k, topic, partition, batch, acks=1):
    """Produce v9 of one batch without a transactional id -> error code."""
    part = i32(partition) + cbytes(batch) + TAGS_NONE
    body = (cstring(None) + i16(acks) + i32(30000) +
            carray([cstring(topic) + carray([part]) + TAGS_NONE]) + TAGS_NONE)
    r = Reader(k.call(PRODUCE, 9, body, flexible=True))
    r.uvarint()
    r.cstring()
    r.uvarint()
    r.int32()
    return r.int16()


def txn_state_record(txid, pid, epoch, timeout_ms=60000):
    """Kafka's TransactionLog record (key v0, value v0) of an Empty id."""
    key = i16(0) + string(txid)
    value = (i16(0) + i64(pid) + i16(epoch) + i32(timeout_ms) + b"\x00" + i32(-1) +
             i64(int(time.time() * 1000)) + i64(-1))
    return record_batch([(key, value)])


@test
def test_tv2_end_txn_at_the_last_epoch_moves_to_a_new_producer_id():
    txid, last = "tx-v2ov", 32766
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "tv2ov", 1)
            err, pid, _ = raw_init(k, txid)
            check(err == 0, "InitProducerId: %d" % err)
        with KafkaRaw(b, client_id="__admin_client") as k:
            shard = abs(java_string_hash(txid)) % 50
            err = produce_plain(k, "__transaction_state", shard,
                                txn_state_record(txid, pid, last - 1))
            check(err == 0, "writing the id's record at epoch %d: %d" % (last - 1, err))
        b.restart()
        with KafkaRaw(b) as k:
            deadline = time.monotonic() + 20 * SLOW
            while True:  # the coordinator loads the shard on first use
                err = produce(k, 12, txid, "tv2ov", pid, last - 1, 0, b"one")
                if err not in (14, 15, 16) or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            check(err == 0, "produce at epoch %d: %d" % (last - 1, err))
            first = end_txn_v5(k, txid, pid, last - 1, True)
            check(first == (0, pid, last), "EndTxn v5 to the last epoch: %r" % (first,))
            check(produce(k, 12, txid, "tv2ov", pid, last, 0, b"two") == 0, "produce at 32766")
            err, pid2, e = end_txn_v5(k, txid, pid, last, True)
            check(err == 0 and pid2 != pid and e == 0,
                  "EndTxn v5 at the last epoch: %r (old id %d)" % ((err, pid2, e), pid))
            retry = end_txn_v5(k, txid, pid, last, True)
            check(retry == (0, pid2, 0), "its retry with the old id: %r" % (retry,))
            other = end_txn_v5(k, txid, pid, last, False)
            check(other[0] == INVALID_TXN_STATE, "the other outcome: %r" % (other,))
            err = produce(k, 12, txid, "tv2ov", pid, last, 1, b"zombie")
            # The coordinator knows the id no more (INVALID_PRODUCER_ID_MAPPING, 49); the
            # partition has the old id's epoch 32767 marker.
            check(err in (49, INVALID_PRODUCER_EPOCH, PRODUCER_FENCED),
                  "the old id after the move: %d" % err)
            check(produce(k, 12, txid, "tv2ov", pid2, 0, 0, b"three") == 0, "the new id")
            nxt = end_txn_v5(k, txid, pid2, 0, True)
            check(nxt == (0, pid2, 1), "the new id's EndTxn v5: %r" % (nxt,))
            comment("producer %d epoch %d -> producer %d epoch 0" % (pid, last, pid2))
        got = read_values(b, "tv2ov", "read_committed")
        check(got == [b"one", b"two", b"three"], "read_committed saw %r" % got)


def init_v3(k, txid, pid, epoch):
    """InitProducerId v3 (KIP-360: the producer's id and epoch) -> (error, id, epoch)."""
    body = cstring(txid) + i32(60000) + i64(pid) + i16(epoch) + TAGS_NONE
    r = flex_call(k, INIT_PRODUCER_ID, 3, body)
    r.int32()
    out = (r.int16(), r.int64(), r.int16())
    r.tagged_fields()
    r.end()
    return out


@test
def test_kip360_init_producer_id_retry_gets_the_same_epoch():
    with Broker(PROPS) as b, KafkaRaw(b) as k:
        err, pid, e0 = raw_init(k, "tx-360")
        check(err == 0, "InitProducerId: %d" % err)
        first = init_v3(k, "tx-360", pid, e0)
        check(first == (0, pid, e0 + 1), "InitProducerId v3 with the id and epoch: %r" % (first,))
        retry = init_v3(k, "tx-360", pid, e0)
        check(retry == first, "the same request retried: %r" % (retry,))
        second = init_v3(k, "tx-360", pid, e0 + 1)
        check(second == (0, pid, e0 + 2), "the next one: %r" % (second,))
        stale = init_v3(k, "tx-360", pid, e0)
        # PRODUCER_FENCED, which InitProducerId below v4 carries as INVALID_PRODUCER_EPOCH.
        check(stale[0] == INVALID_PRODUCER_EPOCH, "an epoch older than the last two: %r"
              % (stale,))
        comment("epochs %d -> %d (retried) -> %d" % (e0, e0 + 1, e0 + 2))


if __name__ == "__main__":
    run_tests()
