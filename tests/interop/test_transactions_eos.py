"""Exactly-once consume-transform-produce under SIGKILL (issue 16), and KIP-447's member checks
in TxnOffsetCommit.

A loop in a subprocess (this file run with --eos-worker) reads topic A in a group with a
read_committed consumer and writes each record, transformed, to topic B in transactions that
carry the consumed offsets (send_offsets_to_transaction), as a real EOS application does: an
abortable error aborts and rewinds the consumer to the committed offsets; a fatal error (or
anything unexpected) ends the process, and the test starts it again. Meanwhile the test SIGKILLs
the broker (single node), or the node leading the transaction coordinator's shard or B's
leader (3 nodes), and restarts it. At the end a read_committed reader of B sees every input
exactly once.

GREGOR_EOS_CYCLES sets the number of kills per case (default 3);
GREGOR_EOS_RECORDS the input size (default 3000). The long version (GREGOR_EOS_CYCLES=8) is the
one that found stale pending transactional offsets being committed over newer ones after
coordinator moves (the worker then never sees its group's committed offsets reach the input's
end): run it after changing the transaction or group coordinators.
"""
import collections
import json
import os
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, TAGS_NONE, Broker, Cluster, KafkaRaw, Reader, array,  # noqa: E402
                     carray, check, comment, cstring, i8, i16, i32, i64, nbytes, run_tests, string,
                     test)

RECORDS = int(os.environ.get("GREGOR_EOS_RECORDS", "3000"))
CYCLES = os.environ.get("GREGOR_EOS_CYCLES")
PROPS = {
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
    "group.initial.rebalance.delay.ms": "0",
}
SRC, DST, PARTS = "eos-in", "eos-out", 3


def txn_shard(txid, n=50):
    """Kafka's partitionFor: abs(javaStringHash(id)) % n."""
    h = 0
    for ch in txid:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    h = h - (1 << 32) if h >= (1 << 31) else h
    return (0 if h == -(1 << 31) else abs(h)) % n


# -- the application under test (runs in its own process) ---------------------------------

def eos_worker(bootstrap, txid, group, total):
    """The consume-transform-produce loop. Prints one JSON line per event: {"committed": n}
    after each commit (n = sum of the group's committed positions, as this process knows
    them), {"error": ...} for every error handled. Exit 0 once the group committed `total`;
    exit 3 on a fatal error (the test restarts it)."""
    from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaException, Producer,
                                 TopicPartition)

    def say(**kw):
        print(json.dumps(kw), flush=True)

    def new_producer():
        p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txid, "linger.ms": 5,
                      "transaction.timeout.ms": 20000, "socket.connection.setup.timeout.ms":
                      3000, "reconnect.backoff.max.ms": 500, "log_level": 2})
        deadline = time.monotonic() + 60
        while True:
            try:
                p.init_transactions(20)
                return p
            except KafkaException as e:
                err = e.args[0]
                say(error="init_transactions: " + err.str())
                if not err.retriable() or time.monotonic() > deadline:
                    raise
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                  "heartbeat.interval.ms": 500, "reconnect.backoff.max.ms": 500,
                  "log_level": 2})
    c.subscribe([SRC])
    p = new_producer()
    all_tps = [TopicPartition(SRC, i) for i in range(PARTS)]

    def committed_total(timeout=20):
        tps = c.committed(all_tps, timeout=timeout)
        return sum(max(tp.offset, 0) for tp in tps)

    def rewind():
        """After an abort: back to the committed positions (what the aborted transaction
        consumed is consumed again)."""
        asg = c.assignment()
        if not asg:
            return
        for tp in c.committed(asg, timeout=30):
            c.seek(TopicPartition(tp.topic, tp.partition,
                                  tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))

    idle_since = time.monotonic()
    while True:
        msgs = [m for m in c.consume(num_messages=50, timeout=0.5) if m.error() is None]
        if not msgs:
            if time.monotonic() - idle_since > 1.0:
                idle_since = time.monotonic()
                try:
                    n = committed_total()
                except KafkaException as e:
                    say(error="committed: " + e.args[0].str())
                    continue
                say(committed=n)
                if n >= total:
                    c.close()
                    return 0
            continue
        idle_since = time.monotonic()
        positions = {}
        try:
            p.begin_transaction()
            for m in msgs:
                p.produce(DST, key=m.value(), value=b"out-" + m.value())
                positions[m.partition()] = m.offset() + 1
            p.send_offsets_to_transaction(
                [TopicPartition(SRC, k, v) for k, v in positions.items()],
                c.consumer_group_metadata(), 30)
            say(offsets_sent=len(msgs))
            deadline = time.monotonic() + 60
            while True:
                try:
                    p.commit_transaction(20)
                    break
                except KafkaException as e:
                    err = e.args[0]
                    if not err.retriable() or time.monotonic() > deadline:
                        raise
                    say(error="commit (retried): " + err.str())
            say(committed=sum(positions.values()), batch=len(msgs))
        except KafkaException as e:
            err = e.args[0]
            say(error=err.str(), fatal=err.fatal(), abortable=err.txn_requires_abort())
            if err.fatal():
                return 3
            try:
                p.abort_transaction(30)
            except KafkaException as e2:
                say(error="abort: " + e2.args[0].str())
                return 3
            rewind()


# -- the test side ---------------------------------------------------------------------------

class Worker:
    """Runs eos_worker in a subprocess, restarting it when it exits with an error; tracks the
    committed progress it reports."""

    def __init__(self, bootstrap_fn, txid, group, total):
        self.bootstrap_fn, self.txid, self.group, self.total = bootstrap_fn, txid, group, total
        self.progress = 0
        self.last_events = collections.deque(maxlen=12)  # for the failure report
        self.offsets_sent = 0  # transactions that got as far as their offsets
        self.errors = collections.Counter()
        self.starts = 0
        self.done = False
        self.proc = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.stopping = False

    def start(self):
        self.thread.start()

    def _run(self):
        while not self.stopping:
            self.starts += 1
            self.proc = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__), "--eos-worker", self.bootstrap_fn(),
                 self.txid, self.group, str(self.total)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
            for line in self.proc.stdout:
                try:
                    ev = json.loads(line)
                except ValueError:
                    comment("worker: " + line.decode(errors="replace").rstrip())
                    continue
                with self.lock:
                    self.last_events.append((round(time.monotonic(), 1), ev))
                    if "offsets_sent" in ev:
                        self.offsets_sent += 1
                    if "error" in ev:
                        self.errors[ev["error"][:80]] += 1
                    if "batch" not in ev and "committed" in ev:
                        self.progress = max(self.progress, ev["committed"])
                    elif "batch" in ev:
                        self.progress += ev["batch"]
            rc = self.proc.wait()
            if rc == 0:
                self.done = True
                return
            comment("worker exited with status %d; starting it again" % rc)
            time.sleep(0.2)

    def wait_mid_transaction(self, timeout=10.0):
        """Until the next transaction has written records and sent its offsets (its commit is
        next)."""
        with self.lock:
            n = self.offsets_sent
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline and not self.done:
            with self.lock:
                if self.offsets_sent > n:
                    return
            time.sleep(0.001)

    def kill_app(self):
        """SIGKILL of the application (its open transaction stays behind); it is started
        again, and its InitProducerId fences and aborts what the old one left open."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def stop(self):
        self.stopping = True
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
        self.thread.join(10)

    def wait_progress(self, n, timeout):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline and not self.done:
            with self.lock:
                if self.progress >= n:
                    return True
            time.sleep(0.02)
        if not self.done:
            comment("the worker's last events: %r" % list(self.last_events))
        return self.done

    def wait_done(self, timeout):
        self.thread.join(timeout * SLOW)
        if not self.done:
            comment("the worker's last events: %r" % list(self.last_events))
        check(self.done, "the worker did not finish within %.0fs (progress %d of %d, errors %r)"
              % (timeout * SLOW, self.progress, self.total, dict(self.errors)))


def fill_input(bootstrap, n):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})
    for i in range(n):
        p.produce(SRC, value=b"v%06d" % i, partition=i % PARTS)
    check(p.flush(30 * SLOW) == 0, "input not fully written")


def read_output(bootstrap, isolation, timeout=30.0):
    """Every value of B from the beginning up to its end for `isolation` (the LSO for
    read_committed), once the LSO caught up with the high watermark."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "rd-" + uuid.uuid4().hex,
                  "enable.auto.commit": False, "isolation.level": isolation})
    ru = Consumer({"bootstrap.servers": bootstrap, "group.id": "rd-" + uuid.uuid4().hex,
                   "isolation.level": "read_uncommitted"})
    deadline = time.monotonic() + timeout * SLOW
    ends = {}
    for i in range(PARTS):
        tp = TopicPartition(DST, i)
        while True:
            hi = c.get_watermark_offsets(tp, timeout=10, cached=False)[1]
            hw = ru.get_watermark_offsets(tp, timeout=10, cached=False)[1]
            if hi == hw or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(hi == hw, "%s-%d: end offset %d for %s, high watermark %d (an open transaction?)"
              % (DST, i, hi, isolation, hw))
        ends[i] = hi
    ru.close()
    c.assign([TopicPartition(DST, i, OFFSET_BEGINNING) for i in range(PARTS)])
    out = []
    # The position passes markers and (read_committed) aborted data without a message.
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and not m.error():
            out.append(m.value().decode())
        ps = c.position([TopicPartition(DST, i) for i in range(PARTS)])
        if all(tp.offset >= ends[tp.partition] for tp in ps):
            break
    c.close()
    return out


def check_exactly_once(bootstrap, total):
    rc = read_output(bootstrap, "read_committed")
    counts = collections.Counter(rc)
    want = set("out-v%06d" % i for i in range(total))
    missing = sorted(want - set(counts))
    dups = sorted(v for v, k in counts.items() if k > 1)
    extra = sorted(set(counts) - want)
    ru = read_output(bootstrap, "read_uncommitted")
    comment("read_committed: %d records (%d distinct); read_uncommitted: %d records "
            "(%d duplicates from aborted transactions)"
            % (len(rc), len(counts), len(ru), len(ru) - len(set(ru))))
    check(not missing, "%d inputs missing from B, e.g. %r" % (len(missing), missing[:5]))
    check(not dups, "%d inputs duplicated in B, e.g. %r" % (len(dups), dups[:5]))
    check(not extra, "unexpected values %r" % extra[:5])
    check(len(ru) >= len(rc), "read_uncommitted saw fewer records than read_committed")


@test
def test_exactly_once_through_broker_sigkills():
    """Single broker: SIGKILL + restart CYCLES times while the loop runs; B then holds every
    input exactly once for read_committed."""
    cycles = int(CYCLES or 3)
    with Broker(dict(PROPS, **{"num.partitions": PARTS})) as b:
        fill_input(b.bootstrap, RECORDS)
        w = Worker(lambda: b.bootstrap, "eos-single", "eos-g1", RECORDS)
        t0 = time.monotonic()
        w.start()
        try:
            for k in range(1, cycles + 1):
                check(w.wait_progress(RECORDS * k // (cycles + 1), 60),
                      "no progress to %d (at %d)" % (RECORDS * k // (cycles + 1), w.progress))
                if w.done:
                    break
                w.wait_mid_transaction()
                comment("%.1fs: kill %d at progress %d%s" % (time.monotonic() - t0, k, w.progress,
                                                          ", the application too" if k == 2
                                                          else ""))
                if k == 2:  # the application dies with records of a transaction written
                    w.kill_app()
                    time.sleep(0.5)
                b.kill()
                time.sleep(0.3)
                b.start()
                comment("%.1fs: restarted" % (time.monotonic() - t0))
            w.wait_done(90)
            comment("%.1fs: the loop finished" % (time.monotonic() - t0))
        finally:
            w.stop()
        comment("worker starts %d, errors %r" % (w.starts, dict(w.errors)))
        check(b.starts > 1, "the broker was never killed (the loop finished first)")
        check_exactly_once(b.bootstrap, RECORDS)


@test
def test_exactly_once_through_coordinator_and_leader_sigkills():
    """Three nodes, rf 3: the node leading the transaction coordinator's shard (odd kills) or
    B's partition 0 (even kills) is SIGKILLed and restarted while the loop runs; B then holds
    every input exactly once for read_committed."""
    cycles = int(CYCLES or 3)
    txid = "eos-cluster"
    with Cluster(3, dict(PROPS, **{"min.insync.replicas": "2"})) as c:
        for t in (SRC, DST):
            err = c.create_topic(t, PARTS, 3)
            check(err is None, "create %s: %s" % (t, err))
            c.wait_topic(t, PARTS)
        fill_input(c.bootstrap, RECORDS)
        w = Worker(lambda: c.bootstrap, txid, "eos-g3", RECORDS)
        t0 = time.monotonic()
        w.start()
        killed = []
        try:
            for k in range(1, cycles + 1):
                check(w.wait_progress(RECORDS * k // (cycles + 1), 90),
                      "no progress to %d (at %d)" % (RECORDS * k // (cycles + 1), w.progress))
                if w.done:
                    break
                if k % 2 == 1:
                    what = "transaction coordinator"
                    victim = c.partition_leaders("__transaction_state")[txn_shard(txid)]["leader"]
                else:
                    what = "leader of %s-0" % DST
                    victim = c.partition_leaders(DST)[0]["leader"]
                w.wait_mid_transaction()
                comment("%.1fs: kill %d: node %d (%s) at progress %d"
                        % (time.monotonic() - t0, k, victim, what, w.progress))
                c.kill(victim)
                killed.append(victim)
                time.sleep(1.0)
                c.restart(victim)
                c.wait_formed()
                comment("%.1fs: restarted" % (time.monotonic() - t0))
            w.wait_done(120)
            comment("%.1fs: the loop finished" % (time.monotonic() - t0))
        finally:
            w.stop()
        comment("worker starts %d, errors %r" % (w.starts, dict(w.errors)))
        check(killed, "no node was killed (the loop finished first)")
        check_exactly_once(c.bootstrap, RECORDS)


# -- KIP-447: TxnOffsetCommit checks the member ------------------------------------------------

FIND_COORDINATOR, JOIN_GROUP, INIT_PRODUCER_ID, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 10, 11, 22, 25, 26, 28
ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, MEMBER_ID_REQUIRED, FENCED_INSTANCE_ID = 22, 25, 79, 82
RETRIABLE = (14, 15, 16)  # load in progress, coordinator not available, not coordinator


def retried(fn, what):
    deadline = time.monotonic() + 15 * SLOW
    while True:
        out = fn()
        if out[0] not in RETRIABLE or time.monotonic() > deadline:
            check(out[0] == 0, "%s: error %d" % (what, out[0]))
            return out
        time.sleep(0.1)


def raw_find_coordinator(k, key, key_type=0):
    """FindCoordinator v1 (creates __consumer_offsets / __transaction_state) -> (error,)."""
    r = Reader(k.call(FIND_COORDINATOR, 1, string(key) + i8(key_type)))
    r.int32()
    return (r.int16(),)


def raw_join(k, group, instance=None, member=""):
    """JoinGroup v5 (a static member when instance is given) -> (error, generation, member);
    MEMBER_ID_REQUIRED is answered by joining again with the id given."""
    body = string(group) + i32(10000) + i32(10000) + string(member) + string(instance)
    body += string("consumer") + array([string("range") + nbytes(b"")])
    r = Reader(k.call(JOIN_GROUP, 5, body))
    r.int32()
    err, gen = r.int16(), r.int32()
    r.string()
    r.string()
    member = r.string()
    if err == MEMBER_ID_REQUIRED:
        return raw_join(k, group, instance, member)
    return err, gen, member


def raw_txn_offset_commit(k, txid, group, pid, epoch, gen, member, instance, version=3):
    """TxnOffsetCommit of kip447-0 at offset 1 -> the partition's error code."""
    if version >= 3:
        part = i32(0) + i64(1) + i32(-1) + cstring("") + TAGS_NONE
        body = cstring(txid) + cstring(group) + i64(pid) + i16(epoch) + i32(gen)
        body += cstring(member) + cstring(instance)
        body += carray([cstring("kip447") + carray([part]) + TAGS_NONE]) + TAGS_NONE
        r = Reader(k.call(TXN_OFFSET_COMMIT, version, body, flexible=True))
        r.tagged_fields()  # the response header's (the harness leaves them for this API)
        r.int32()
        topics = r.carray(lambda r: (r.cstring(), r.carray(lambda r: (r.int32(), r.int16(),
                                                                       r.tagged_fields())[1])))
    else:
        body = string(txid) + string(group) + i64(pid) + i16(epoch)
        body += array([string("kip447") + array([i32(0) + i64(1) + i32(-1) + string("")])])
        r = Reader(k.call(TXN_OFFSET_COMMIT, version, body))
        r.int32()
        topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16())[1])))
    check(len(topics) == 1 and len(topics[0][1]) == 1, "TxnOffsetCommit answer %r" % topics)
    return topics[0][1][0]


@test
def test_txn_offset_commit_checks_member_and_generation():
    """KIP-447: a TxnOffsetCommit (v3+) naming a generation, member or static instance is
    checked like an OffsetCommit: a stale generation gets ILLEGAL_GENERATION, an unknown member
    UNKNOWN_MEMBER_ID, a static instance held by another member FENCED_INSTANCE_ID; the current
    member and generation, or none named (older clients, v2), commit."""
    from confluent_kafka import Producer
    with Broker(dict(PROPS, **{"num.partitions": "1"})) as b, KafkaRaw(b) as k:
        p = Producer({"bootstrap.servers": b.bootstrap})
        p.produce("kip447", b"x")
        check(p.flush(10 * SLOW) == 0, "produce kip447")
        for g in ("kip447-g", "kip447-s"):
            retried(lambda: raw_find_coordinator(k, g), "FindCoordinator")
        retried(lambda: raw_find_coordinator(k, "kip447-tx", 1), "FindCoordinator (txn)")
        _, gen, member = retried(lambda: raw_join(k, "kip447-g"), "JoinGroup")
        _, sgen, smember = retried(lambda: raw_join(k, "kip447-s", "inst-1"), "static JoinGroup")
        comment("member %s generation %d; static member %s generation %d"
                % (member, gen, smember, sgen))

        def init():
            r = Reader(k.call(INIT_PRODUCER_ID, 1, string("kip447-tx") + i32(60000)))
            r.int32()
            return r.int16(), r.int64(), r.int16()
        _, pid, epoch = retried(init, "InitProducerId")

        def add_offsets(group):
            r = Reader(k.call(ADD_OFFSETS_TO_TXN, 1, string("kip447-tx") + i64(pid) + i16(epoch)
                              + string(group)))
            r.int32()
            return (r.int16(),)
        retried(lambda: add_offsets("kip447-g"), "AddOffsetsToTxn")
        retried(lambda: add_offsets("kip447-s"), "AddOffsetsToTxn (static group)")

        def commit(group, gen, member, instance=None, version=3):
            return raw_txn_offset_commit(k, "kip447-tx", group, pid, epoch, gen, member,
                                         instance, version)
        check(commit("kip447-g", gen + 1, member) == ILLEGAL_GENERATION, "stale generation")
        check(commit("kip447-g", gen, "nobody") == UNKNOWN_MEMBER_ID, "unknown member")
        check(commit("kip447-g", -1, "nobody") == UNKNOWN_MEMBER_ID, "unknown member, no gen")
        check(commit("kip447-s", sgen, "other", "inst-1") == FENCED_INSTANCE_ID,
              "static instance held by another member")
        check(commit("kip447-s", sgen, smember, "inst-2") == UNKNOWN_MEMBER_ID,
              "unknown static instance")
        check(commit("kip447-nogroup", 3, "m") == ILLEGAL_GENERATION, "no such group")
        check(commit("kip447-g", gen, member) == 0, "current member and generation")
        check(commit("kip447-s", sgen, smember, "inst-1") == 0, "current static member")
        check(commit("kip447-g", -1, "") == 0, "nobody named (pre-KIP-447 v3)")
        check(commit("kip447-g", -1, "", version=2) == 0, "v2")
        r = Reader(k.call(END_TXN, 1, string("kip447-tx") + i64(pid) + i16(epoch) + b"\x00"))
        r.int32()
        check(r.int16() == 0, "abort")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--eos-worker":
        sys.exit(eos_worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
    run_tests()
