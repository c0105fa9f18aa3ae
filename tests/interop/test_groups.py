"""Consumer groups against Gregor's group coordinator with real clients (confluent-kafka,
kafka-python) and raw requests for the error codes clients hide: assignment across members,
rebalance on leave, exactly-once consumption with commit-after-processing, resume from the
committed offset, independent groups, persistence of committed offsets across a broker
SIGKILL, Describe/List/DeleteGroups.

asan-smoke: the whole file runs in well under a minute.
Runs under ThreadSanitizer too (tsan-smoke).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Broker, KafkaRaw, Reader, TAGS_NONE, array, carray,  # noqa: E402
                     cbytes, check, comment, cstring, fail, i16, i32, i64, nbytes, run_tests,
                     string, test, wait_until)
from kafka_records import ensure_topic  # noqa: E402

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

PROPS = {"num.partitions": 6, "group.initial.rebalance.delay.ms": 0,
         "offsets.topic.num.partitions": 10, "group.min.session.timeout.ms": 1000}

FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP = 10, 11, 12, 13, 14
OFFSET_COMMIT, OFFSET_FETCH = 8, 9


def make_topic(b, topic, partitions=6):
    with KafkaRaw(b) as k:
        ensure_topic(k, topic, partitions)


def produce(b, topic, n, prefix="m"):
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    for i in range(n):
        p.produce(topic, key=("%s%d" % (prefix, i)).encode(), value=("%s%d" % (prefix, i)).encode())
    check(p.flush(30 * SLOW) == 0, "producer did not flush")


def consumer(b, group, **extra):
    conf = {"bootstrap.servers": b.bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False,
            "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
            "topic.metadata.refresh.interval.ms": 1000}
    conf.update(extra)
    return Consumer(conf)


def poll_some(consumers, seen, until, timeout=30.0, commit=True):
    """Polls every consumer round-robin, recording (consumer index, partition, offset, value)
    and committing each message after processing, until until() or timeout."""
    deadline = time.monotonic() + timeout * SLOW
    while not until() and time.monotonic() < deadline:
        for i, c in enumerate(consumers):
            m = c.poll(0.05)
            if m is None or m.error():
                continue
            seen.append((i, m.partition(), m.offset(), m.value()))
            if commit:
                c.commit(message=m, asynchronous=False)
    return until()


def assignments(consumers):
    return [sorted(tp.partition for tp in c.assignment()) for c in consumers]


@test
def test_three_consumers_split_six_partitions_and_rebalance_on_leave():
    with Broker(PROPS) as b:
        make_topic(b, "orders")
        produce(b, "orders", 300)
        cs = [consumer(b, "g-three") for _ in range(3)]
        for c in cs:
            c.subscribe(["orders"])
        seen = []

        def balanced():
            a = assignments(cs)
            return all(len(x) == 2 for x in a) and sorted(sum(a, [])) == list(range(6))
        ok = poll_some(cs, seen, balanced, timeout=40)
        check(ok, "assignment never became 2/2/2: %s" % assignments(cs))
        comment("assignments %s" % assignments(cs))
        poll_some(cs, seen, lambda: len(seen) >= 300, timeout=30)
        leaver = cs.pop(1)
        leaver.close()
        produce(b, "orders", 300, prefix="n")

        def two_way():
            a = assignments(cs)
            return sorted(sum(a, [])) == list(range(6)) and all(len(x) == 3 for x in a)
        ok = poll_some(cs, seen, lambda: two_way() and len(seen) >= 600, timeout=40)
        check(two_way(), "after a leave the two consumers hold %s" % assignments(cs))
        values = [v for (_, _, _, v) in seen]
        check(len(values) == 600, "consumed %d messages, expected 600" % len(values))
        check(len(set(values)) == 600, "duplicates: %d distinct of %d" % (len(set(values)),
                                                                            len(values)))
        for c in cs:
            c.close()


@test
def test_restarted_consumer_resumes_from_committed_offset():
    with Broker(PROPS) as b:
        make_topic(b, "resume")
        produce(b, "resume", 100)
        c = consumer(b, "g-resume")
        c.subscribe(["resume"])
        seen = []
        poll_some([c], seen, lambda: len(seen) >= 40, timeout=30)
        c.close()
        first = {v for (_, _, _, v) in seen}
        c = consumer(b, "g-resume")
        c.subscribe(["resume"])
        seen2 = []
        poll_some([c], seen2, lambda: len(seen2) >= 100 - len(first), timeout=30)
        time.sleep(0.5)
        poll_some([c], seen2, lambda: False, timeout=0.5)
        c.close()
        second = [v for (_, _, _, v) in seen2]
        check(not (first & set(second)), "re-consumed %d committed messages"
              % len(first & set(second)))
        check(len(first) + len(second) == 100, "%d + %d != 100" % (len(first), len(second)))


@test
def test_two_groups_each_read_everything():
    with Broker(PROPS) as b:
        make_topic(b, "shared")
        produce(b, "shared", 120)
        for g in ("g-a", "g-b"):
            c = consumer(b, g)
            c.subscribe(["shared"])
            seen = []
            poll_some([c], seen, lambda: len(seen) >= 120, timeout=30)
            c.close()
            check(len({v for (_, _, _, v) in seen}) == 120, "group %s read %d of 120"
                  % (g, len(seen)))


@test
def test_committed_offsets_survive_broker_sigkill():
    with Broker(PROPS) as b:
        make_topic(b, "durable")
        produce(b, "durable", 60)
        c = consumer(b, "g-durable")
        c.subscribe(["durable"])
        seen = []
        poll_some([c], seen, lambda: len(seen) >= 60, timeout=30)
        committed = {tp.partition: tp.offset for tp in
                     c.committed([TopicPartition("durable", p) for p in range(6)], timeout=10)}
        c.close()
        check(sum(committed.values()) == 60, "committed %s" % committed)
        b.kill()
        b.start()
        c = consumer(b, "g-durable")
        deadline = time.monotonic() + 20 * SLOW
        got = None
        while time.monotonic() < deadline:
            try:
                got = {tp.partition: tp.offset for tp in
                       c.committed([TopicPartition("durable", p) for p in range(6)], timeout=5)}
                if got == committed:
                    break
            except Exception as e:  # coordinator loading: retry
                comment("committed(): %s" % e)
            time.sleep(0.2)
        check(got == committed, "after SIGKILL committed %s, expected %s" % (got, committed))
        c.subscribe(["durable"])
        produce(b, "durable", 6, prefix="after")
        seen2 = []
        poll_some([c], seen2, lambda: len(seen2) >= 6, timeout=30)
        c.close()
        check(sorted(v for (_, _, _, v) in seen2) == sorted(b"after%d" % i for i in range(6)),
              "after restart consumed %s" % [v for (_, _, _, v) in seen2])


@test
def test_kafka_python_group_consume_commit_resume():
    from kafka import KafkaConsumer
    with Broker(PROPS) as b:
        make_topic(b, "kp")
        produce(b, "kp", 50)

        def kc():
            return KafkaConsumer("kp", bootstrap_servers=b.bootstrap, group_id="g-kp",
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 consumer_timeout_ms=int(3000 * SLOW), api_version=(2, 0, 0))
        c = kc()
        got = []
        deadline = time.monotonic() + 30 * SLOW
        while len(got) < 30 and time.monotonic() < deadline:
            for tp, msgs in c.poll(timeout_ms=500, max_records=30 - len(got)).items():
                got += [m.value for m in msgs]
        c.commit()
        c.close()
        check(len(got) == 30, "kafka-python consumed %d of the first 30" % len(got))
        c = kc()
        rest = [m.value for m in c]
        c.close()
        check(len(rest) == 20 and not (set(got) & set(rest)),
              "resume: %d more, %d overlapping" % (len(rest), len(set(got) & set(rest))))


# ---- raw protocol ----

def find_coordinator(k, group):
    deadline = time.monotonic() + 15 * SLOW
    while True:
        r = Reader(k.call(FIND_COORDINATOR, 0, string(group)))
        err = r.int16()
        if err == 0:
            return r.int32(), r.string(), r.int32()
        if time.monotonic() > deadline:
            fail("FindCoordinator error %d" % err)
        time.sleep(0.1)


def join_v0(k, group, member_id=""):
    body = (string(group) + i32(6000) + string(member_id) + string("consumer") +
            array([string("range") + nbytes(b"\x00\x00\x00\x00\x00\x00\x00\x00")]))
    r = Reader(k.call(JOIN_GROUP, 0, body, timeout=20))
    err, gen, proto, leader, member = r.int16(), r.int32(), r.string(), r.string(), r.string()
    return err, gen, member, leader


def heartbeat_v0(k, group, gen, member):
    deadline = time.monotonic() + 10 * SLOW
    while True:
        err = Reader(k.call(HEARTBEAT, 0, string(group) + i32(gen) + string(member))).int16()
        if err != 14 or time.monotonic() > deadline:  # COORDINATOR_LOAD_IN_PROGRESS
            return err
        time.sleep(0.05)


def commit_v2(k, group, gen, member, topic, part, offset):
    body = (string(group) + i32(gen) + string(member) + i64(-1) +
            array([string(topic) + array([i32(part) + i64(offset) + string("")])]))
    r = Reader(k.call(OFFSET_COMMIT, 2, body))
    topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16()))))
    return topics[0][1][0][1]


def fetch_v1(k, group, topic, part):
    body = string(group) + array([string(topic) + array([i32(part)])])
    r = Reader(k.call(OFFSET_FETCH, 1, body))
    topics = r.array(lambda r: (r.string(), r.array(
        lambda r: (r.int32(), r.int64(), r.string(), r.int16()))))
    return topics[0][1][0][1], topics[0][1][0][3]


@test
def test_raw_error_codes():
    with Broker(PROPS) as b:
        make_topic(b, "raw")
        with KafkaRaw(b) as k:
            node, host, port = find_coordinator(k, "g-raw")
            check(port == b.port, "coordinator port %d" % port)
            check(heartbeat_v0(k, "g-raw", 1, "nobody") == 25, "heartbeat unknown group")
            err, gen, member, leader = join_v0(k, "g-raw")
            check(err == 0 and gen == 1 and member == leader, "join: %s" % ((err, gen, member),))
            sync = string("g-raw") + i32(gen) + string(member) + array(
                [string(member) + nbytes(b"assignment")])
            r = Reader(k.call(SYNC_GROUP, 0, sync))
            check(r.int16() == 0 and r.bytes_() == b"assignment", "sync")
            check(heartbeat_v0(k, "g-raw", gen, member) == 0, "heartbeat ok")
            check(heartbeat_v0(k, "g-raw", gen, "nobody") == 25, "heartbeat unknown member")
            check(heartbeat_v0(k, "g-raw", gen + 1, member) == 22, "heartbeat bad generation")
            check(commit_v2(k, "g-raw", gen + 1, member, "raw", 0, 5) == 22,
                  "commit with a wrong generation")
            check(commit_v2(k, "g-raw", gen, "nobody", "raw", 0, 5) == 25,
                  "commit with an unknown member")
            check(commit_v2(k, "g-raw", gen, member, "raw", 0, 7) == 0, "commit")
            check(fetch_v1(k, "g-raw", "raw", 0) == (7, 0), "fetch committed")
            check(fetch_v1(k, "g-raw", "raw", 1) == (-1, 0), "fetch uncommitted")
            check(commit_v2(k, "g-none", 3, "x", "raw", 0, 5) == 22,
                  "commit to a missing group with a generation")
            rc = commit_v2(k, "g-standalone", -1, "", "raw", 2, 11)
            check(rc == 0, "standalone commit: error %d" % rc)
            check(fetch_v1(k, "g-standalone", "raw", 2) == (11, 0), "standalone fetch")
            r = Reader(k.call(LEAVE_GROUP, 0, string("g-raw") + string(member)))
            check(r.int16() == 0, "leave")
            check(heartbeat_v0(k, "g-raw", gen, member) == 25, "heartbeat after leave")


def commit_v2_many(k, group, gen, member, offsets):
    """OffsetCommit v2 of {topic: {partition: offset}}; returns {(topic, partition): error}."""
    body = (string(group) + i32(gen) + string(member) + i64(-1) +
            array([string(t) + array([i32(p) + i64(o) + string("") for p, o in parts.items()])
                   for t, parts in offsets.items()]))
    deadline = time.monotonic() + 15 * SLOW
    while True:  # the group's shard may still be loading (COORDINATOR_LOAD_IN_PROGRESS, 14)
        r = Reader(k.call(OFFSET_COMMIT, 2, body))
        topics = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16()))))
        got = {(t, p): e for t, parts in topics for p, e in parts}
        if 14 not in got.values() or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


@test
def test_commit_to_unknown_topic_or_partition():
    """OffsetCommit answers UNKNOWN_TOPIC_OR_PARTITION (3) for a topic or partition the cluster
    does not have and stores nothing for it, while the known partitions in the same request are
    committed; a request with only unknown partitions does not create the group. Then through
    confluent-kafka: Consumer.commit() of a missing topic's offset reports the same error."""
    props = dict(PROPS, **{"num.partitions": 2})
    with Broker(props) as b:
        make_topic(b, "known", 2)
        with KafkaRaw(b) as k:
            find_coordinator(k, "g-unk")
            got = commit_v2_many(k, "g-unk", -1, "", {"known": {0: 4, 1: 5, 2: 6},
                                                      "nosuch": {0: 7}})
            want = {("known", 0): 0, ("known", 1): 0, ("known", 2): 3, ("nosuch", 0): 3}
            check(got == want, "commit errors %r" % got)
            check(fetch_v1(k, "g-unk", "known", 0) == (4, 0), "known partition committed")
            check(fetch_v1(k, "g-unk", "known", 2)[0] == -1, "unknown partition stored")
            check(fetch_v1(k, "g-unk", "nosuch", 0)[0] == -1, "unknown topic stored")
            got = commit_v2_many(k, "g-only-unknown", -1, "", {"nosuch": {0: 1}})
            check(got == {("nosuch", 0): 3}, "only unknown: %r" % got)
            r = Reader(k.call(15, 0, array([string("g-only-unknown")])))  # DescribeGroups v0
            grp = r.array(lambda r: (r.int16(), r.string(), r.string()))
            check(grp[0][0] == 0 and grp[0][2] == "Dead", "group created: %r" % (grp,))
        c = consumer(b, "g-unk-client")
        try:
            res = None
            try:
                res = c.commit(offsets=[TopicPartition("nosuch", 0, 9),
                                        TopicPartition("known", 1, 8)], asynchronous=False)
                errs = {(tp.topic, tp.partition): tp.error for tp in res}
                e = errs[("nosuch", 0)]
                check(e is not None and e.name() == "UNKNOWN_TOPIC_OR_PART", "client: %r" % errs)
                check(errs[("known", 1)] is None, "known partition failed: %r" % errs)
            except Exception as e:  # librdkafka may raise the first partition error instead
                err = e.args[0] if e.args else e
                check(getattr(err, "name", lambda: str(err))() == "UNKNOWN_TOPIC_OR_PART",
                      "client commit raised %r" % (e,))
            got = c.committed([TopicPartition("known", 1), TopicPartition("nosuch", 0)],
                              timeout=10 * SLOW)
            offs = {(tp.topic, tp.partition): tp.offset for tp in got}
            check(offs[("known", 1)] == 8 and offs[("nosuch", 0)] < 0, "committed %r" % offs)
        finally:
            c.close()


@test
def test_admin_list_describe_delete():
    from confluent_kafka.admin import AdminClient
    with Broker(PROPS) as b:
        make_topic(b, "adm")
        produce(b, "adm", 10)
        c = consumer(b, "g-adm")
        c.subscribe(["adm"])
        seen = []
        poll_some([c], seen, lambda: len(seen) >= 10, timeout=30)
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        groups = {g.id: g for g in a.list_groups(timeout=10)}
        check("g-adm" in groups, "list_groups: %s" % list(groups))
        g = groups["g-adm"]
        check(g.state == "Stable" and g.protocol_type == "consumer" and len(g.members) == 1,
              "describe: state %s type %s members %d" % (g.state, g.protocol_type, len(g.members)))
        c.close()
        wait_until(lambda: {x.id: x for x in a.list_groups(timeout=10)}["g-adm"].state == "Empty",
                   10 * SLOW, what="group Empty after close")
        with KafkaRaw(b) as k:
            r = Reader(k.call(42, 0, array([string("g-adm"), string("g-missing")])))
            r.int32()
            res = r.array(lambda r: (r.string(), r.int16()))
            check(res == [("g-adm", 0), ("g-missing", 69)], "delete groups: %s" % res)
            check(fetch_v1(k, "g-adm", "adm", 0) == (-1, 0), "offsets gone after delete")
        check("g-adm" not in {x.id for x in a.list_groups(timeout=10)}, "deleted group listed")


def static_consumer(b, group, instance, events, name):
    """A confluent-kafka consumer with group.instance.id; events gets (name, 'assign'|'revoke',
    partitions) for every rebalance callback."""
    c = consumer(b, group, **{"group.instance.id": instance, "session.timeout.ms": 10000})

    def on_assign(cons, parts):
        events.append((name, "assign", sorted(p.partition for p in parts)))

    def on_revoke(cons, parts):
        events.append((name, "revoke", sorted(p.partition for p in parts)))
    c.subscribe(["static"], on_assign=on_assign, on_revoke=on_revoke)
    return c


@test
def test_static_member_restart_keeps_assignment_without_rebalance():
    """KIP-345 with confluent-kafka: two static members (group.instance.id a and b) share 6
    partitions. Member a closes (a static member sends no LeaveGroup) and a new consumer with
    instance id a starts within the session timeout: it gets a new member id (DescribeGroups
    shows one id replaced) but the old assignment, and b sees no revoke or assign. The broker
    logs no new rebalance."""
    with Broker(PROPS) as b:
        make_topic(b, "static")
        events = []
        a = static_consumer(b, "g-static-c", "a", events, "a")
        bb = static_consumer(b, "g-static-c", "b", events, "b")
        seen = []

        def split():
            x = assignments([a, bb])
            return all(len(p) == 3 for p in x) and sorted(sum(x, [])) == list(range(6))
        check(poll_some([a, bb], seen, split, timeout=40), "never split 3/3: %s"
              % assignments([a, bb]))
        poll_some([a, bb], seen, lambda: False, timeout=1.0)  # let callbacks settle
        before_a = assignments([a])[0]
        with KafkaRaw(b) as k:
            ids_before = sorted(m[0] for m in describe_v0(k, "g-static-c")[5])
        rebalances = b.log_text().count("group g-static-c: preparing rebalance")
        settled = len(events)
        comment("events before restart: %r" % events)
        a.close()
        a2 = static_consumer(b, "g-static-c", "a", events, "a2")
        ok = poll_some([a2, bb], seen, lambda: assignments([a2])[0] == before_a, timeout=20)
        check(ok, "restarted static member got %s, had %s" % (assignments([a2])[0], before_a))
        poll_some([a2, bb], seen, lambda: False, timeout=2.0)
        later = events[settled:]
        comment("events after restart: %r" % later)
        check(not [e for e in later if e[0] == "b"], "b saw a rebalance: %r" % later)
        check([e for e in later if e[0] == "a2"] == [("a2", "assign", before_a)],
              "restarted member events %r" % later)
        with KafkaRaw(b) as k:
            d = describe_v0(k, "g-static-c")
            ids_after = sorted(m[0] for m in d[5])
            check(d[2] == "Stable" and len(ids_after) == 2 and
                  len(set(ids_before) & set(ids_after)) == 1,
                  "members before %r, after %r (%s)" % (ids_before, ids_after, d[2]))
        after = b.log_text().count("group g-static-c: preparing rebalance")
        check(after == rebalances, "the broker rebalanced %d more time(s)" % (after - rebalances))
        a2.close()
        bb.close()


def join_v5(k, group, member_id="", instance=None, session_ms=6000):
    body = (string(group) + i32(session_ms) + i32(10000) + string(member_id) + string(instance) +
            string("consumer") + array([string("range") + nbytes(b"\x00\x01meta")]))
    deadline = time.monotonic() + 10 * SLOW
    while True:
        r = Reader(k.call(JOIN_GROUP, 5, body, timeout=20))
        r.int32()
        err, gen, proto, leader, member = r.int16(), r.int32(), r.string(), r.string(), r.string()
        if err != 14 or time.monotonic() > deadline:
            return err, gen, member, leader
        time.sleep(0.05)


def describe_v0(k, group):
    r = Reader(k.call(15, 0, array([string(group)])))
    groups = r.array(lambda r: (r.int16(), r.string(), r.string(), r.string(), r.string(),
                                r.array(lambda r: (r.string(), r.string(), r.string(),
                                                   r.bytes_(), r.bytes_()))))
    return groups[0]


def join_v9(k, group, instance):
    """JoinGroup v9 (flexible) with an unknown member id -> (error, generation, skip_assignment,
    leader, member id, [(member id, instance id, metadata)])."""
    body = (cstring(group) + i32(6000) + i32(10000) + cstring("") + cstring(instance) +
            cstring("consumer") + carray([cstring("range") + cbytes(b"\x00\x01meta") + TAGS_NONE]) +
            cstring(None) + TAGS_NONE)
    r = Reader(k.call(JOIN_GROUP, 9, body, timeout=20))
    r.int32()
    err, gen, _ptype, _pname = r.int16(), r.int32(), r.cstring(), r.cstring()
    leader, skip, member = r.cstring(), r.boolean(), r.cstring()

    def one(r):
        m = (r.cstring(), r.cstring(), r.cbytes())
        r.tagged_fields()
        return m
    members = r.carray(one)
    r.tagged_fields()
    return err, gen, skip, leader, member, members


@test
def test_raw_static_leader_rejoins_stable_group():
    """KIP-345, raw JoinGroup v5: the static leader of a Stable two-member group rejoins with an
    unknown member id. Kafka's answer before v9: same generation, a new member id, the OLD
    leader id as leader (so the client does not reassign) and no member list; SyncGroup with the
    new id returns the old assignment at once; the old id is fenced (FENCED_INSTANCE_ID) and the
    other member's heartbeat sees no rebalance. With JoinGroup v9 the restarted leader gets its
    new id as leader, the members and skip_assignment, still without a rebalance."""
    def join_full(k, group, member_id="", instance=None):
        body = (string(group) + i32(6000) + i32(10000) + string(member_id) + string(instance) +
                string("consumer") + array([string("range") + nbytes(b"\x00\x01meta")]))
        deadline = time.monotonic() + 10 * SLOW
        while True:  # the group's shard may still be loading (COORDINATOR_LOAD_IN_PROGRESS)
            r = Reader(k.call(JOIN_GROUP, 5, body, timeout=20))
            r.int32()
            out = (r.int16(), r.int32(), r.string(), r.string(), r.string())
            if out[0] != 14 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        members = r.array(lambda r: (r.string(), r.string(), r.bytes_()))
        return out + (members,)

    def sync(k, gen, member, instance, assignments=()):
        body = (string("g-sl") + i32(gen) + string(member) + string(instance) +
                array([string(m) + nbytes(a) for m, a in assignments]))
        r = Reader(k.call(SYNC_GROUP, 3, body, timeout=20))
        r.int32()
        return r.int16(), r.bytes_()

    def heartbeat(k, gen, member, instance):
        r = Reader(k.call(HEARTBEAT, 3, string("g-sl") + i32(gen) + string(member) +
                          string(instance)))
        r.int32()
        return r.int16()

    with Broker(PROPS) as b:
        make_topic(b, "sl")
        with KafkaRaw(b) as k1, KafkaRaw(b) as k2, KafkaRaw(b) as k3:
            find_coordinator(k1, "g-sl")
            err, gen1, _, leader, lid, _ = join_full(k1, "g-sl", instance="L")
            check(err == 0 and leader == lid, "leader join: %d" % err)
            check(sync(k1, gen1, lid, "L", [(lid, b"solo")]) == (0, b"solo"), "first sync")
            # The second member triggers a rebalance; the leader rejoins with its id.
            k2.send_request(JOIN_GROUP, 5, string("g-sl") + i32(6000) + i32(10000) + string("") +
                            string("F") + string("consumer") +
                            array([string("range") + nbytes(b"\x00\x01meta")]))
            time.sleep(0.2)
            err, gen, _, leader, lid2, members = join_full(k1, "g-sl", lid, "L")
            r = Reader(k2.recv_response(timeout=20)[1])
            r.int32()
            ferr, fgen, _, _, fid = r.int16(), r.int32(), r.string(), r.string(), r.string()
            check(err == 0 and ferr == 0 and gen == fgen == gen1 + 1 and len(members) == 2,
                  "rebalance: %r %r" % ((err, gen, len(members)), (ferr, fgen)))
            k2.send_request(SYNC_GROUP, 3, string("g-sl") + i32(gen) + string(fid) +
                            string("F") + array([]))
            check(sync(k1, gen, lid, "L", [(lid, b"for-L"), (fid, b"for-F")]) == (0, b"for-L"),
                  "leader sync")
            r = Reader(k2.recv_response(timeout=20)[1])
            r.int32()
            check((r.int16(), r.bytes_()) == (0, b"for-F"), "follower sync")
            # The leader restarts: unknown member id, same instance id.
            err, gen3, _, leader3, new_id, members3 = join_full(k3, "g-sl", instance="L")
            check(err == 0 and gen3 == gen and new_id != lid and leader3 == lid and
                  members3 == [], "static leader rejoin: %r" %
                  ((err, gen3, new_id, leader3, len(members3)),))
            check(sync(k3, gen3, new_id, "L") == (0, b"for-L"), "old assignment kept")
            check(heartbeat(k1, gen, lid, "L") == 82, "old id not fenced")
            check(heartbeat(k2, gen, fid, "F") == 0, "follower sees a rebalance")
            check(heartbeat(k3, gen, new_id, "L") == 0, "new id heartbeat")
            # Restarted again with JoinGroup v9: the leader is told it leads (its new id, all
            # members) but to skip the assignment; the generation and assignment stay.
            with KafkaRaw(b) as k4:
                err, gen4, skip, leader4, id4, members4 = join_v9(k4, "g-sl", "L")
                check(err == 0 and gen4 == gen and skip and leader4 == id4 and
                      id4 not in (lid, new_id) and sorted(m[0] for m in members4) ==
                      sorted([id4, fid]), "v9 static leader rejoin: %r" %
                      ((err, gen4, skip, leader4, id4, members4),))
                check(sync(k4, gen4, id4, "L") == (0, b"for-L"), "v9: old assignment kept")
                check(heartbeat(k2, gen, fid, "F") == 0, "follower sees a rebalance after v9")


@test
def test_raw_member_id_required_static_fencing_and_metadata_replay():
    with Broker(PROPS) as b:
        make_topic(b, "st")
        with KafkaRaw(b) as k:
            find_coordinator(k, "g-st")
            err, gen, member, _ = join_v5(k, "g-st")
            check(err == 79 and member, "JoinGroup v4+ without id: %d %r" % (err, member))
            err, gen, member2, leader = join_v5(k, "g-st", member_id=member)
            check(err == 0 and member2 == member and leader == member, "join with the given id")
            r = Reader(k.call(SYNC_GROUP, 0, string("g-st") + i32(gen) + string(member) +
                              array([string(member) + nbytes(b"as-1")])))
            check(r.int16() == 0, "sync")
            # A static member: no MEMBER_ID_REQUIRED; a restart with the same instance id
            # fences the old member id.
            with KafkaRaw(b) as k2:
                err, gen_s, static1, _ = join_v5(k2, "g-static", instance="inst-1")
                check(err == 0, "static join: %d" % err)
            with KafkaRaw(b) as k3:
                err, _, static2, _ = join_v5(k3, "g-static", instance="inst-1")
                check(err == 0 and static2 != static1, "static rejoin: %d" % err)
            body = string("g-static") + i32(gen_s) + string(static1) + string("inst-1")
            r = Reader(k.call(HEARTBEAT, 3, body))
            r.int32()
            check(r.int16() == 82, "old static member id is fenced")
            d = describe_v0(k, "g-st")
            check(d[0] == 0 and d[2] == "Stable" and d[4] == "range", "describe: %s" % (d[:5],))
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            find_coordinator(k, "g-st")
            deadline = time.monotonic() + 10 * SLOW
            while True:
                d = describe_v0(k, "g-st")
                if d[0] != 14 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            check(d[2] == "Stable" and len(d[5]) == 1 and d[5][0][0] == member and
                  d[5][0][4] == b"as-1", "group metadata after restart: %s" % (d,))
            # The replayed member keeps its generation: a heartbeat with it is accepted.
            check(heartbeat_v0(k, "g-st", gen, member) == 0, "heartbeat after restart")


if __name__ == "__main__":
    run_tests()
