"""Replication (issue 14): three `gregor serve` processes (broker + controller voter each), topics
with replication factor 3, real clients (confluent-kafka) and SIGKILL/SIGSTOP faults.

What is tried:
- followers fetch from the leader and end with segment files byte-identical to the leader's,
  and the ISR is the whole assignment;
- acks=all with min.insync.replicas=2 under an idempotent producer while the leader's broker is
  SIGKILLed and restarted (10 cycles; 3 under ASan; REPLICATION_KILL_CYCLES sets it): every
  acknowledged message is read back exactly once, at the offset it was acknowledged at; the
  failover time (kill to the first acknowledgement of a record sent after it) is reported;
- SIGSTOP of one follower: it leaves the ISR after replica.lag.time.max.ms, acks=all goes on;
  SIGSTOP of a second: acks=all gets NOT_ENOUGH_REPLICAS while acks=1 works; SIGCONT: both
  catch up and rejoin the ISR;
- a consumer never sees an offset at or above the high watermark (nothing uncommitted is
  served: checked by reading the high watermark and the records of each fetch);
- DeleteRecords on the leader moves the followers' log start too (a new leader keeps it);
- an old leader whose tail diverged after an unclean election truncates it (the Fetch
  response's diverging epoch) and ends byte-identical with the new leader;
- a follower's slow fdatasync (an LD_PRELOAD shim delays it 3 s) holds the high watermark and
  the acks=all acknowledgement back although the follower already holds the bytes: the leader
  counts only what followers synced (GregorDurableOffset).
Runs under ASan too: the follower paths (divergence, truncation) are where memory errors hide.
asan-smoke
Runs under ThreadSanitizer too (tsan-smoke).
"""
import glob
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Cluster, check, comment, fail, poll, run_tests,  # noqa: E402
                     sigstop_and_wait, test)

NOT_ENOUGH_REPLICAS = 19
LAG_MS = 2000


def create(c, name, partitions=1, rf=3, min_isr=2):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": c.live_bootstrap()})
    f = a.create_topics([NewTopic(name, partitions, rf,
                                  config={"min.insync.replicas": str(min_isr)})])
    f[name].result(timeout=15 * SLOW)
    c.wait_topic(name, partitions)


def isr_of(c, topic, via):
    return {k: sorted(p["isr"]) for k, p in c.raw_partitions(topic, via).items()}


def wait_isr(c, topic, want, timeout=20.0):
    """Until every live node reports ISR `want` (sorted list) for every partition."""
    def ok():
        for i in c.live_ids():
            got = isr_of(c, topic, i)
            if any(v != want for v in got.values()):
                raise AssertionError("node %d: %r" % (i, got))
        return True

    def wrapped():
        try:
            return ok()
        except AssertionError as e:
            from harness import TestFailure
            raise TestFailure(str(e))
    poll(wrapped, timeout, "ISR %r for %s" % (want, topic))


def segment_files(c, node_id, topic, partition):
    d = os.path.join(c.node(node_id).data_dir, "%s-%d" % (topic, partition))
    return {os.path.basename(f): open(f, "rb").read() for f in glob.glob(d + "/*.log")}


def wait_identical(c, topic, part, nodes=None, timeout=15):
    """Until the nodes' (default: all) segment files of topic-part are byte for byte the same."""
    nodes = nodes or c.ids

    def same():
        files = [segment_files(c, n, topic, part) for n in nodes]
        return files[0] and all(f == files[0] for f in files)
    poll(same, timeout, "identical segment files of %s-%d on nodes %r" % (topic, part, nodes))


def producer(c, **extra):
    from confluent_kafka import Producer
    conf = {"bootstrap.servers": c.live_bootstrap(), "acks": "all", "linger.ms": 5,
            "enable.idempotence": True, "message.timeout.ms": int(30000 * SLOW),
            "retry.backoff.ms": 50, "topic.metadata.refresh.interval.ms": 500,
            "reconnect.backoff.max.ms": 300}
    conf.update(extra)
    return Producer(conf)


def read_all(c, topic, partitions, want_count, timeout=30.0):
    """[(partition, offset, value)] read from offset 0 until want_count records or timeout."""
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.live_bootstrap(), "group.id": "repl-check",
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    out = []
    try:
        cons.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout * SLOW
        while len(out) < want_count and time.monotonic() < deadline:
            m = cons.poll(0.5)
            if m is None or m.error() is not None:
                continue
            out.append((m.partition(), m.offset(), m.value()))
        # a little longer: anything beyond want_count would be a duplicate
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            m = cons.poll(0.2)
            if m is not None and m.error() is None:
                out.append((m.partition(), m.offset(), m.value()))
    finally:
        cons.close()
    return out


@test
def test_followers_copy_the_leader_byte_for_byte():
    with Cluster(3) as c:
        c.wait_formed()
        create(c, "rep", partitions=2)
        p = producer(c)
        acked = []
        for i in range(400):
            p.produce("rep", value=b"m-%d" % i, partition=i % 2,
                      on_delivery=lambda err, msg: acked.append(err is None))
        check(p.flush(30 * SLOW) == 0, "undelivered messages")
        check(len(acked) == 400 and all(acked), "acks: %d ok of %d" % (sum(acked), len(acked)))
        wait_isr(c, "rep", [1, 2, 3])
        for part in (0, 1):
            wait_identical(c, "rep", part)
        got = read_all(c, "rep", 2, 400)
        check(sorted(v for _, _, v in got) == sorted(b"m-%d" % i for i in range(400)),
              "read back %d records" % len(got))


@test
def test_page_cache_acks_still_wait_for_the_isr():
    """acks.all.fsync=false (Kafka's page-cache acknowledgement, no flush waits on the leader
    or before a follower's next fetch): acks=all still completes through the ISR, every
    record ends up byte-identical on every replica and is read back."""
    with Cluster(3, {"acks.all.fsync": "false"}) as c:
        c.wait_formed()
        create(c, "pc", partitions=1)
        p = producer(c)
        acked = []
        for i in range(200):
            p.produce("pc", value=b"p-%d" % i, partition=0,
                      on_delivery=lambda err, msg: acked.append(err is None))
        check(p.flush(30 * SLOW) == 0, "undelivered messages")
        check(len(acked) == 200 and all(acked), "acks: %d ok of %d" % (sum(acked), len(acked)))
        wait_isr(c, "pc", [1, 2, 3])
        wait_identical(c, "pc", 0)
        got = read_all(c, "pc", 1, 200)
        check(sorted(v for _, _, v in got) == sorted(b"p-%d" % i for i in range(200)),
              "read back %d records" % len(got))


def build_fsync_shim(outdir):
    src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "faults",
                       "fault_fsync.c")
    so = os.path.join(outdir, "fault_fsync.so")
    p = subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-O1", "-Wall", "-o", so,
                        src, "-ldl"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    check(p.returncode == 0, "building the fsync shim failed:\n%s" % p.stdout.decode())
    return so


def create_assigned(c, name, assignment, min_isr):
    """A topic with a manual replica assignment, retried while a just-formed cluster's active
    controller does not list every registration yet (INVALID_REPLICA_ASSIGNMENT)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": c.live_bootstrap()})
    deadline = time.monotonic() + 15 * SLOW
    while True:
        f = a.create_topics([NewTopic(name, len(assignment), replica_assignment=assignment,
                                      config={"min.insync.replicas": str(min_isr)})])
        try:
            f[name].result(timeout=15 * SLOW)
            break
        except Exception as e:  # noqa: BLE001 - KafkaException carries the code
            if "INVALID_REPLICA_ASSIGNMENT" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    c.wait_topic(name, len(assignment))


@test
def test_follower_sync_holds_the_high_watermark():
    """Node 3 follows slow-0 (replicas [1, 3], min.insync.replicas=2) with its fdatasync of
    that partition delayed 3 s once armed. A record sent with acks=all after arming reaches
    node 3's segment file within 1.5 s, yet the leader's high watermark stays below it and the
    producer gets no acknowledgement until node 3's sync is done (>= 2.5 s after sending);
    then the high watermark passes it. Fails if a follower's fetch offset counted as durable."""
    from harness import KafkaRaw, _tmp_root
    from kafka_records import LATEST, list_offset
    import tempfile
    tmp = tempfile.mkdtemp(prefix="slowsync-", dir=_tmp_root())
    trigger = os.path.join(tmp, "arm")
    env = {"LD_PRELOAD": build_fsync_shim(tmp), "GREGOR_FAULT_FSYNC_MATCH": "/slow-0/",
           "GREGOR_FAULT_FSYNC_TRIGGER": trigger, "GREGOR_FAULT_FSYNC_DELAY_MS": "3000"}
    if os.environ.get("GREGOR_ASAN"):
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    with Cluster(3, node_env={3: env}) as c:
        c.wait_formed()
        create_assigned(c, "slow", [[1, 3]], 2)
        wait_isr(c, "slow", [1, 3])
        p = producer(c)
        acks = []
        p.produce("slow", value=b"warm", partition=0,
                  on_delivery=lambda err, msg: acks.append((err, time.monotonic())))
        check(p.flush(15 * SLOW) == 0 and acks and acks[0][0] is None, "warm-up: %r" % acks)
        seg = os.path.join(c.node(3).data_dir, "slow-0", "%020d.log" % 0)
        size0 = os.path.getsize(seg)
        open(trigger, "w").close()
        t0 = time.monotonic()
        p.produce("slow", value=b"slow-synced", partition=0,
                  on_delivery=lambda err, msg: acks.append((err, time.monotonic())))
        poll(lambda: os.path.getsize(seg) > size0 or p.poll(0.05) < 0, 1.5 * SLOW,
             "the follower's segment holding the record")
        with KafkaRaw(c.node(1)) as k:
            hw = list_offset(k, "slow", 0, LATEST)["offset"]
        held = time.monotonic() - t0
        check(hw == 1 and len(acks) == 1,
              "%.2f s after sending, with the bytes on the follower: high watermark %d, acks %r"
              % (held, hw, acks[1:]))
        check(p.flush(20 * SLOW) == 0 and len(acks) == 2 and acks[1][0] is None,
              "acknowledgement: %r" % acks[1:])
        waited = acks[1][1] - t0
        check(waited >= 2.5, "acknowledged %.2f s after sending, before the follower's 3 s sync"
              % waited)
        with KafkaRaw(c.node(1)) as k:
            hw = list_offset(k, "slow", 0, LATEST)["offset"]
        check(hw == 2, "high watermark after the sync: %d" % hw)
        comment("bytes on the follower after %.2f s, high watermark still 1; acknowledged "
                "after %.2f s" % (held, waited))


@test
def test_acks_all_survives_leader_kills():
    # The 10 cycles in the release run; 3 under ASan (each cycle is slower there).
    default = "3" if os.environ.get("GREGOR_ASAN") else "10"
    cycles = int(os.environ.get("REPLICATION_KILL_CYCLES", default))
    with Cluster(3) as c:
        c.wait_formed()
        create(c, "dur", partitions=1, min_isr=2)
        p = producer(c)
        acked = {}  # value -> offset
        failed = []

        acked_at = {}  # seq -> monotonic time of its acknowledgement
        kills = []  # (time of the kill, first seq sent after it)

        def cb(err, msg):
            if err is None:
                acked[msg.value()] = msg.offset()
                acked_at[int(msg.value()[2:])] = time.monotonic()
            else:
                failed.append(err.name())
        seq = 0
        for cycle in range(cycles):
            leader = c.wait_topic("dur", 1)[0]
            t_end = time.monotonic() + 1.5
            while time.monotonic() < t_end:
                p.produce("dur", value=b"d-%d" % seq, partition=0, on_delivery=cb)
                seq += 1
                p.poll(0.005)
            c.kill(leader)
            kills.append((time.monotonic(), seq))
            t_end = time.monotonic() + 1.5
            while time.monotonic() < t_end:
                p.produce("dur", value=b"d-%d" % seq, partition=0, on_delivery=cb)
                seq += 1
                p.poll(0.005)
            c.restart(leader)
            c.wait_formed()
            wait_isr(c, "dur", [1, 2, 3], timeout=60)
        check(p.flush(60 * SLOW) == 0, "undelivered messages")
        comment("%d cycles: %d produced, %d acknowledged, %d failed %r" % (
            cycles, seq, len(acked), len(failed), sorted(set(failed))))
        failovers = sorted(min((t for q, t in acked_at.items() if q >= first), default=t_kill)
                           - t_kill for t_kill, first in kills)
        comment("failover (kill -> first ack of a later record), s: min %.2f median %.2f "
                "max %.2f" % (failovers[0], failovers[len(failovers) // 2], failovers[-1]))
        check(len(acked) > 0, "nothing acknowledged")
        got = read_all(c, "dur", 1, len(acked), timeout=40)
        seen = {}
        dups = 0
        for _, off, v in got:
            if v in seen:
                dups += 1
            seen[v] = off
        lost = [v for v in acked if v not in seen]
        moved = [v for v, off in acked.items() if v in seen and seen[v] != off]
        offsets = [off for _, off, _ in got]
        comment("read %d records: %d lost, %d duplicates, %d at another offset" % (
            len(got), len(lost), dups, len(moved)))
        check(not lost, "acknowledged messages lost: %r" % lost[:10])
        check(dups == 0, "%d duplicates" % dups)
        check(not moved, "acknowledged at one offset, read at another: %r" % moved[:10])
        check(offsets == sorted(offsets), "offsets out of order")


@test
def test_diverged_old_leader_truncates_after_unclean_election():
    """The leader's follower is paused (fenced, out of the ISR); the leader takes acks=1
    records alone, then is paused itself while the follower resumes and is elected uncleanly
    (unclean.leader.election.enable=true); new records go to it. When the old leader resumes
    it is a follower whose tail diverges (Fetch's diverging epoch): it truncates that tail,
    fetches the new leader's records, and both replicas' segment files end byte-identical."""
    from confluent_kafka.admin import AdminClient, NewTopic
    with Cluster(3) as c:
        c.wait_formed()
        lead, foll = 1, 2
        a = AdminClient({"bootstrap.servers": c.live_bootstrap()})
        a.create_topics([NewTopic("dv", num_partitions=1, replica_assignment=[[lead, foll]],
                                  config={"unclean.leader.election.enable": "true",
                                          "min.insync.replicas": "1"})])["dv"] \
            .result(timeout=15 * SLOW)
        c.wait_topic("dv", 1)
        check(c.produce_raw(lead, "dv", 0, b"both")["error_code"] == 0, "first record")
        wait_isr(c, "dv", [lead, foll])
        sigstop_and_wait(c.node(foll).proc.pid)
        try:
            poll(lambda: isr_of(c, "dv", lead)[0] == [lead], 20, "follower out of the ISR")
            for i in range(5):
                res = c.produce_raw(lead, "dv", 0, b"tail-%d" % i, acks=1)
                check(res["error_code"] == 0, "acks=1 to the lone leader: %r" % res)
            # Leader stopped first (every thread): the resumed follower must not fetch the tail.
            sigstop_and_wait(c.node(lead).proc.pid)
            os.kill(c.node(foll).proc.pid, signal.SIGCONT)
            poll(lambda: c.raw_partitions("dv", foll)[0]["leader"] == foll, 30,
                 "the follower elected uncleanly")
            check(not any(b"tail-" in d for d in segment_files(c, foll, "dv", 0).values()),
                  "the new leader holds the old leader's unreplicated tail")
            for i in range(3):
                res = c.produce_raw(foll, "dv", 0, b"new-%d" % i, acks=1)
                check(res["error_code"] == 0, "acks=1 to the new leader: %r" % res)
        finally:
            for n in (lead, foll):
                os.kill(c.node(n).proc.pid, signal.SIGCONT)
        wait_identical(c, "dv", 0, nodes=(lead, foll), timeout=40)
        got = read_all(c, "dv", 1, 4)
        vals = [v for _, _, v in got]
        check(vals == [b"both", b"new-0", b"new-1", b"new-2"],
              "after healing the log reads %r" % vals)


def log_start_checkpoint(c, node_id, topic, part):
    """The node's log-start-offset-checkpoint entry for topic-part (Kafka's format), or None."""
    try:
        with open(os.path.join(c.node(node_id).data_dir, "log-start-offset-checkpoint")) as f:
            lines = f.read().split("\n")[2:]
    except OSError:
        return None
    for line in lines:
        cols = line.split()
        if len(cols) == 3 and cols[0] == topic and int(cols[1]) == part:
            return int(cols[2])
    return None


@test
def test_followers_follow_the_leaders_log_start():
    """DeleteRecords on the leader moves every follower's log start too (the Fetch response's
    log start offset, Kafka's maybeIncrementLogStartOffset): each node's checkpoint says 60,
    and after the leader stops, the new leader's earliest offset is 60."""
    from confluent_kafka import Consumer, TopicPartition
    from harness import Reader, array, i32, i64, string
    with Cluster(3) as c:
        c.wait_formed()
        create(c, "lsr", partitions=1)
        p = producer(c)
        for i in range(100):
            p.produce("lsr", value=b"l-%d" % i, partition=0)
        check(p.flush(30 * SLOW) == 0, "undelivered messages")
        leader = c.wait_topic("lsr", 1)[0]
        body = array([("lsr", 0, 60)], lambda t: string(t[0]) + array(
            [(t[1], t[2])], lambda q: i32(q[0]) + i64(q[1]))) + i32(5000)
        with c.raw(leader) as k:
            r = Reader(k.call(21, 1, body))
        r.int32()
        res = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int64(), r.int16()))))
        check(res == [("lsr", [(0, 60, 0)])], "DeleteRecords on the leader: %r" % (res,))
        poll(lambda: all(log_start_checkpoint(c, n, "lsr", 0) == 60 for n in c.ids),
             15 * SLOW, "log start 60 in every node's checkpoint")
        c.stop(leader)
        cons = Consumer({"bootstrap.servers": c.live_bootstrap(), "group.id": "lsr"})
        try:
            def low():
                try:
                    return cons.get_watermark_offsets(TopicPartition("lsr", 0), timeout=2)[0]
                except Exception:
                    return None
            poll(lambda: c.wait_topic("lsr", 1)[0] != leader and low() == 60, 20 * SLOW,
                 "the new leader's earliest offset 60")
        finally:
            cons.close()
        c.restart(leader)


@test
def test_paused_followers_leave_and_rejoin_the_isr():
    # A long broker session: the followers leave the ISR through the leader's lag rule, not
    # by being fenced.
    props = {"replica.lag.time.max.ms": LAG_MS, "broker.session.timeout.ms": 30000}
    # Five voters: with both followers of the RF=3 topic paused, the metadata quorum still has
    # a majority to take them out of the ISR.
    with Cluster(5, props) as c:
        c.wait_formed()
        create(c, "isr", partitions=1, min_isr=2)
        leader = c.wait_topic("isr", 1)[0]
        replicas = sorted(c.raw_partitions("isr", leader)[0]["replicas"])
        followers = [i for i in replicas if i != leader]
        p = producer(c, **{"message.timeout.ms": int(8000 * SLOW)})
        p.produce("isr", value=b"before", partition=0)
        check(p.flush(10 * SLOW) == 0, "produce before the pause")
        wait_isr(c, "isr", replicas)
        a, b = followers
        os.kill(c.node(a).proc.pid, signal.SIGSTOP)
        try:
            wait_isr_without = sorted(set(replicas) - {a})
            t0 = time.monotonic()
            poll(lambda: isr_of(c, "isr", leader)[0] == wait_isr_without, 20,
                 "follower %d out of the ISR" % a)
            comment("follower %d left the ISR after %.1f s" % (a, time.monotonic() - t0))
            res = c.produce_raw(leader, "isr", 0, b"one-down", acks=-1)
            check(res["error_code"] == 0, "acks=all with one follower paused: %r" % res)
            os.kill(c.node(b).proc.pid, signal.SIGSTOP)
            poll(lambda: isr_of(c, "isr", leader)[0] == [leader], 20,
                 "only the leader in the ISR")
            res = c.produce_raw(leader, "isr", 0, b"two-down", acks=-1, retry_on=())
            check(res["error_code"] == NOT_ENOUGH_REPLICAS,
                  "acks=all with ISR below min.insync.replicas: %r" % res)
            res = c.produce_raw(leader, "isr", 0, b"acks1", acks=1, retry_on=())
            check(res["error_code"] == 0, "acks=1 with both followers paused: %r" % res)
        finally:
            for n in (a, b):
                try:
                    os.kill(c.node(n).proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        wait_isr(c, "isr", replicas, timeout=30)
        res = c.produce_raw(leader, "isr", 0, b"after", acks=-1)
        check(res["error_code"] == 0, "acks=all after the followers rejoined: %r" % res)
        got = read_all(c, "isr", 1, 4)
        vals = [v for _, _, v in got]
        for v in (b"before", b"one-down", b"acks1", b"after"):
            check(v in vals, "%r missing from %r" % (v, vals))
        check(b"two-down" not in vals, "a refused record was stored")


if __name__ == "__main__":
    run_tests()
