"""The group coordinator follows the leadership of its __consumer_offsets partition (replication
issue, "internal state follows leadership"): three `gregor serve` processes,
offsets.topic.replication.factor=3, real clients (confluent-kafka) and raw requests.

What is tried:
- a consumer group of two confluent-kafka consumers commits, then the broker leading the
  group's __consumer_offsets partition is SIGKILLed: the group keeps its committed offsets (read
  back from the new coordinator) and its membership (same member ids, no new assignment), and
  consumes the rest of the topic — every record at least once, none before the committed
  offsets again;
- the coordinator is paused (SIGSTOP) until it is fenced and its partition moves; a commit goes
  to the new coordinator; the old one resumes, catches up and is elected leader again
  (preferred-leader ElectLeaders): it must answer the newer commit, i.e. it replayed the
  partition instead of reusing the state it had before it lost the leadership; while it is not
  the leader it answers NOT_COORDINATOR.
Runs under ASan too (asan-smoke): unloading frees a shard's groups while completions are due.
Runs under ThreadSanitizer too (tsan-smoke).
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Cluster, Reader, array, check, comment, fail, i8, i16,  # noqa: E402
                     i32, i64, poll, run_tests, sigstop_and_wait, string, test)

FIND_COORDINATOR, OFFSET_COMMIT, OFFSET_FETCH, DESCRIBE_GROUPS, ELECT_LEADERS = 10, 8, 9, 15, 43
NOT_COORDINATOR, LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE = 16, 14, 15
PROPS = {"offsets.topic.num.partitions": 3, "group.initial.rebalance.delay.ms": 0,
         "replica.lag.time.max.ms": 2000}


def find_coordinator(c, via, group, timeout=20.0):
    """Node id of the group's coordinator as node `via` answers FindCoordinator v0."""
    out = {}

    def found():
        try:
            with c.raw(via) as k:
                r = Reader(k.call(FIND_COORDINATOR, 0, string(group)))
        except OSError:
            return False
        err = r.int16()
        if err != 0:
            return False
        out["node"] = r.int32()
        return True
    poll(found, timeout, "FindCoordinator(%s) via node %d" % (group, via))
    return out["node"]


def commit_raw(c, node, group, topic, part, offset):
    """Standalone OffsetCommit v2 (generation -1) to `node` -> error code."""
    body = (string(group) + i32(-1) + string("") + i64(-1) +
            array([string(topic) + array([i32(part) + i64(offset) + string("")])]))
    with c.raw(node) as k:
        r = Reader(k.call(OFFSET_COMMIT, 2, body))
    return r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16()))))[0][1][0][1]


def fetch_raw(c, node, group, topic, part):
    """OffsetFetch v1 from `node` -> (offset, error code)."""
    body = string(group) + array([string(topic) + array([i32(part)])])
    with c.raw(node) as k:
        r = Reader(k.call(OFFSET_FETCH, 1, body))
    t = r.array(lambda r: (r.string(), r.array(
        lambda r: (r.int32(), r.int64(), r.string(), r.int16()))))
    return t[0][1][0][1], t[0][1][0][3]


def describe_members(c, node, group):
    """DescribeGroups v0 from `node` -> (error, state, sorted member ids)."""
    with c.raw(node) as k:
        r = Reader(k.call(DESCRIBE_GROUPS, 0, array([string(group)])))

    def grp(r):
        err, _, state, _, _ = r.int16(), r.string(), r.string(), r.string(), r.string()
        members = r.array(lambda r: (r.string(), r.string(), r.string(), r.bytes_(), r.bytes_()))
        return err, state, sorted(m[0] for m in members)
    return r.array(grp)[0]


def elect_preferred(c, via, topic, part):
    body = i8(0) + i32(1) + i16(len(topic)) + topic.encode() + i32(1) + i32(part) + i32(10000)
    with c.raw(via) as k:
        r = Reader(k.call(ELECT_LEADERS, 1, body))
    r.int32()
    check(r.int16() == 0, "ElectLeaders top-level error")
    r.int32()
    r.string()
    r.int32()
    r.int32()
    return r.int16()


def offsets_partition_of(c, group):
    """__consumer_offsets partition of the group (Kafka's abs(hash) % partitions)."""
    h = 0
    for ch in group:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return abs(h) % PROPS["offsets.topic.num.partitions"]


def create(c, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": c.live_bootstrap()})
    f = a.create_topics([NewTopic(name, partitions, 3, config={"min.insync.replicas": "2"})])
    f[name].result(timeout=15 * SLOW)
    c.wait_topic(name, partitions)


def produce(c, topic, n, partitions):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": c.live_bootstrap(), "acks": "all", "linger.ms": 5})
    for i in range(n):
        p.produce(topic, value=b"v-%d" % i, partition=i % partitions)
    check(p.flush(30 * SLOW) == 0, "undelivered messages")


class Member:
    """A confluent-kafka consumer in the group, counting the assignments it is given."""

    def __init__(self, c, group, topic):
        from confluent_kafka import Consumer
        self.assignments = 0
        self.nparts = 0
        self.got = []
        self.cons = Consumer({
            "bootstrap.servers": c.live_bootstrap(), "group.id": group,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 20000, "heartbeat.interval.ms": 500,
            "reconnect.backoff.max.ms": 300, "topic.metadata.refresh.interval.ms": 500})
        self.cons.subscribe([topic], on_assign=self._assigned)

    def _assigned(self, cons, parts):
        self.assignments += 1
        self.nparts = len(parts)

    def poll(self):
        m = self.cons.poll(0.1)
        if m is not None and m.error() is None:
            self.got.append((m.partition(), m.offset()))

    def commit(self):
        """Synchronous commit of the positions; retried while the coordinator moves."""
        from confluent_kafka import KafkaException
        deadline = time.monotonic() + 30 * SLOW
        while True:
            try:
                self.cons.commit(asynchronous=False)
                return
            except KafkaException as e:
                code = e.args[0].code()
                if code == -168:  # _NO_OFFSET: nothing consumed since the last commit
                    return
                if time.monotonic() > deadline:
                    fail("commit kept failing: %s" % e)
                for _ in range(3):
                    self.poll()


def poll_all(members, until, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    while not until():
        if time.monotonic() > deadline:
            fail("timed out waiting for %s (consumed %s)" % (
                what, [len(m.got) for m in members]))
        for m in members:
            m.poll()


@test
def test_group_survives_coordinator_kill():
    with Cluster(3, PROPS) as c:
        create(c, "gf", 4)
        group = "gf-group"
        # the group forms first (two partitions each), so no record is read twice by a rebalance
        members = [Member(c, group, "gf"), Member(c, group, "gf")]
        poll_all(members, lambda: all(m.nparts == 2 for m in members), 40,
                 "two partitions assigned to each member")
        produce(c, "gf", 400, 4)
        poll_all(members, lambda: sum(len(m.got) for m in members) >= 150, 40,
                 "both members consuming")
        for m in members:
            m.commit()
        coord = find_coordinator(c, 1, group)
        ids_before = describe_members(c, coord, group)
        check(ids_before[0] == 0 and ids_before[1] == "Stable" and len(ids_before[2]) == 2,
              "group before the kill: %r" % (ids_before,))
        assigned_before = [m.assignments for m in members]
        committed = {}
        for p in range(4):
            off, err = fetch_raw(c, coord, group, "gf", p)
            check(err == 0, "OffsetFetch error %d" % err)
            committed[p] = off
        check(sum(max(0, o) for o in committed.values()) >= 100,
              "committed before the kill: %r" % committed)
        comment("coordinator is node %d (partition %d of __consumer_offsets); committed %r"
                % (coord, offsets_partition_of(c, group), committed))
        t0 = time.monotonic()
        c.kill(coord)
        other = [i for i in c.ids if i != coord][0]
        new = {}

        def moved():
            new["node"] = find_coordinator(c, other, group, timeout=2)
            return new["node"] != coord
        poll(moved, 30 * SLOW, "a new coordinator for %s" % group)
        comment("new coordinator node %d after %.2fs" % (new["node"], time.monotonic() - t0))

        def offsets_back():
            for p in range(4):
                off, err = fetch_raw(c, new["node"], group, "gf", p)
                if err in (NOT_COORDINATOR, LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE):
                    return False
                check(err == 0 and off == committed[p],
                      "partition %d: committed %d before the kill, new coordinator answers "
                      "%d (error %d)" % (p, committed[p], off, err))
            return True
        poll(offsets_back, 20 * SLOW, "the new coordinator's committed offsets")
        # consume the rest through the new coordinator, committing again
        poll_all(members, lambda: sum(len(m.got) for m in members) >= 400, 60,
                 "the rest of the topic")
        for m in members:
            m.commit()
        after = describe_members(c, new["node"], group)
        check(after[2] == ids_before[2],
              "members before the kill %r, after %r" % (ids_before[2], after[2]))
        check([m.assignments for m in members] == assigned_before,
              "a rebalance happened: assignments %r -> %r"
              % (assigned_before, [m.assignments for m in members]))
        got = [x for m in members for x in m.got]
        check(len(set(got)) == 400 and len(got) == 400,
              "consumed %d records, %d distinct (want 400 exactly once)"
              % (len(got), len(set(got))))
        for p in range(4):
            off, err = fetch_raw(c, new["node"], group, "gf", p)
            check(err == 0 and off == 100, "partition %d committed %d at the end" % (p, off))
        for m in members:
            m.cons.close()
        c.restart(coord)


@test
def test_old_coordinator_replays_after_regaining_leadership():
    with Cluster(3, PROPS) as c:
        create(c, "gs", 1)
        group = "gs-group"
        a = find_coordinator(c, 1, group)
        part = offsets_partition_of(c, group)
        poll(lambda: commit_raw(c, a, group, "gs", 0, 10) == 0, 15 * SLOW, "first commit")
        check(fetch_raw(c, a, group, "gs", 0) == (10, 0), "read back on node %d" % a)
        comment("coordinator node %d, __consumer_offsets-%d" % (a, part))
        sigstop_and_wait(c.node(a).pid)
        try:
            other = [i for i in c.ids if i != a][0]
            new = {}

            def moved():
                new["node"] = find_coordinator(c, other, group, timeout=2)
                return new["node"] != a
            poll(moved, 30 * SLOW, "the coordinator to move off paused node %d" % a)
            b = new["node"]
            poll(lambda: commit_raw(c, b, group, "gs", 0, 20) == 0, 20 * SLOW,
                 "commit to the new coordinator %d" % b)
        finally:
            c.node(a).send_signal(signal.SIGCONT)

        # the old coordinator: not the leader, so NOT_COORDINATOR (never its stale 10)
        def stepped_down():
            off, err = fetch_raw(c, a, group, "gs", 0)
            check(off != 10 or err != 0, "node %d answered its stale offset 10" % a)
            return err == NOT_COORDINATOR
        poll(stepped_down, 20 * SLOW, "NOT_COORDINATOR from resumed node %d" % a)

        def in_isr():
            parts = c.raw_partitions("__consumer_offsets", b)
            return a in parts[part]["isr"]
        poll(in_isr, 30 * SLOW, "node %d back in the ISR of __consumer_offsets-%d" % (a, part))

        def elected():
            elect_preferred(c, b, "__consumer_offsets", part)
            return find_coordinator(c, b, group, timeout=2) == a
        poll(elected, 30 * SLOW, "node %d leading __consumer_offsets-%d again" % (a, part))

        def replayed():
            off, err = fetch_raw(c, a, group, "gs", 0)
            if err in (NOT_COORDINATOR, LOAD_IN_PROGRESS):
                return False
            check((off, err) == (20, 0),
                  "node %d leads again and answers %r, want the newer commit 20" % (a, (off, err)))
            return True
        poll(replayed, 20 * SLOW, "node %d answering the newer commit" % a)
        log = c.node(a).log_text()
        check("unloaded" in log, "node %d's log does not say it unloaded the shard" % a)


if __name__ == "__main__":
    run_tests()
