#!/usr/bin/env python3
"""KIP-848 consumer groups over the raw protocol: ConsumerGroupHeartbeat (key 68) and
ConsumerGroupDescribe (key 69) against a real gregor, checking Kafka's error codes for bad input:
a stale/ahead member epoch (FENCED_MEMBER_EPOCH), an unknown member (UNKNOWN_MEMBER_ID), an
unknown server assignor (UNSUPPORTED_ASSIGNOR), a first heartbeat without subscription
(INVALID_REQUEST), a bad regex (INVALID_REGULAR_EXPRESSION), a group id held by a classic group
(GROUP_ID_NOT_FOUND: it is completing a rebalance) and the reverse (a classic JoinGroup served by
the consumer group; another protocol type: INCONSISTENT_GROUP_PROTOCOL),
OffsetCommit v9 with a stale epoch (STALE_MEMBER_EPOCH). Also reconciliation: a partition moves
to a new member only after its old owner stops reporting it; ListGroups v5 group types;
DescribeGroups answers Dead for a consumer group (Kafka before v6); session expiry; static
members (-2, UNRELEASED_INSTANCE_ID, FENCED_INSTANCE_ID); grown partition counts reaching the
assignment; group.consumer.max.size (GROUP_MAX_SIZE_REACHED); the consumer protocol switched
off (not advertised, UNSUPPORTED_VERSION); bad settings refused at start-up. Persistence in
__consumer_offsets (Kafka's record types 3-8 read back from the partition): the group survives a
SIGKILL and restart and a coordinator move in a 3-node cluster with its members' ids, epochs and
assignments; a member that leaves writes its tombstones, a deleted group the group's, and
compaction removes a left member's records; a group changing protocol while empty does not
come back as the old type. `gregor group describe` of a consumer group.
Online migration (group.consumer.migration.policy): a Stable classic group upgraded by a
consumer-protocol join, its classic member served by the consumer group (Heartbeat
REBALANCE_IN_PROGRESS / ILLEGAL_GENERATION, SyncGroup REBALANCE_IN_PROGRESS before it rejoins,
JoinGroup with its new epoch, SyncGroup with its partitions, unsupported protocols
INCONSISTENT_GROUP_PROTOCOL, OffsetCommit v2 checked against its epoch), downgraded when the
consumer-protocol member leaves, replayed as classic after a restart; the policy disabled
(GROUP_ID_NOT_FOUND) or upgrade-only (no downgrade); an unknown policy refused at start-up.
asan-smoke
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Broker, KafkaRaw, Reader, TAGS_NONE, array, carray,  # noqa: E402
                     check, comment, cstring, fail, i8, i16, i32, i64, nbytes, run_tests,
                     string, test, wait_until)
from kafka_records import ensure_topic  # noqa: E402

PROPS = {"num.partitions": 6, "group.initial.rebalance.delay.ms": 0,
         "offsets.topic.num.partitions": 10,
         "group.consumer.heartbeat.interval.ms": 500,
         "group.consumer.min.heartbeat.interval.ms": 100,
         "group.consumer.session.timeout.ms": 4000,
         "group.consumer.min.session.timeout.ms": 1000}

FIND_COORDINATOR, JOIN_GROUP, OFFSET_COMMIT, LIST_GROUPS, DESCRIBE_GROUPS = 10, 11, 8, 16, 15
OFFSET_FETCH = 9
CG_HEARTBEAT, CG_DESCRIBE = 68, 69

NONE, INVALID_REQUEST, UNKNOWN_MEMBER_ID, GROUP_ID_NOT_FOUND = 0, 42, 25, 69
INCONSISTENT_GROUP_PROTOCOL, FENCED_MEMBER_EPOCH, UNSUPPORTED_ASSIGNOR = 23, 110, 112
STALE_MEMBER_EPOCH, INVALID_REGULAR_EXPRESSION, LOAD_IN_PROGRESS = 113, 128, 14
UNKNOWN_SERVER_ERROR = -1


def coordinator_ready(k, group):
    deadline = time.monotonic() + 15 * SLOW
    while True:
        r = Reader(k.call(FIND_COORDINATOR, 0, string(group)))
        if r.int16() == 0:
            return
        if time.monotonic() > deadline:
            fail("no coordinator for %s" % group)
        time.sleep(0.1)


def owned_enc(owned):
    if owned is None:
        return carray(None)
    return carray([tid + carray([i32(p) for p in parts]) + TAGS_NONE
                   for tid, parts in sorted(owned.items())])


def heartbeat(k, group, member, epoch, topics=None, owned=None, assignor=None, instance=None,
              rebalance_ms=-1, regex=None, version=1):
    body = (cstring(group) + cstring(member) + i32(epoch) + cstring(instance) + cstring(None) +
            i32(rebalance_ms) +
            (carray(None) if topics is None else carray([cstring(t) for t in topics])))
    if version >= 1:
        body += cstring(regex)
    body += cstring(assignor) + owned_enc(owned) + TAGS_NONE
    deadline = time.monotonic() + 10 * SLOW
    while True:
        r = Reader(k.call(CG_HEARTBEAT, version, body, flexible=True))
        r.int32()
        err, msg, mid, mepoch, interval = r.int16(), r.cstring(), r.cstring(), r.int32(), r.int32()
        assignment = None
        if r.int8() >= 0:
            assignment = {}
            for tid, parts in r.carray(lambda r: (r.uuid(), r.carray(lambda r: r.int32()),
                                                   r.uvarint())[:2]):
                assignment[tid] = sorted(parts)
            r.uvarint()
        if err != LOAD_IN_PROGRESS or time.monotonic() > deadline:
            return {"err": err, "msg": msg, "member": mid, "epoch": mepoch,
                    "interval": interval, "assignment": assignment}
        time.sleep(0.05)


def join(k, group, member, topics, **kw):
    return heartbeat(k, group, member, 0, topics=topics, owned={}, rebalance_ms=30000, **kw)


def count(assignment):
    return sum(len(p) for p in (assignment or {}).values())


def uuid_bytes(u):
    """Reader.uuid's value back to the 16 wire bytes."""
    if isinstance(u, bytes):
        return u
    import uuid as _uuid
    return _uuid.UUID(str(u)).bytes


def owned_of(assignment):
    return {uuid_bytes(t): p for t, p in (assignment or {}).items()}


@test
def test_raw_join_reconcile_and_fence():
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-raw", 6)
            coordinator_ready(k, "cg1")
            a = join(k, "cg1", "member-a", ["cg-raw"])
            check(a["err"] == NONE and a["epoch"] == 1, "first join: %r" % a)
            check(a["interval"] == 500, "heartbeat interval %r" % a["interval"])
            check(count(a["assignment"]) == 6, "a alone owns all 6: %r" % a["assignment"])
            owned_a = owned_of(a["assignment"])
            # b joins: epoch 2; a must give up 3 partitions before b gets them.
            bb = join(k, "cg1", "member-b", ["cg-raw"])
            check(bb["err"] == NONE and bb["epoch"] == 2, "b joins: %r" % bb)
            check(count(bb["assignment"]) == 0, "b gets nothing while a owns everything: %r" % bb)
            a2 = heartbeat(k, "cg1", "member-a", 1, owned=owned_a)
            check(a2["err"] == NONE and a2["epoch"] == 1 and count(a2["assignment"]) == 3,
                  "a is asked to revoke (keeps 3, epoch stays 1): %r" % a2)
            b2 = heartbeat(k, "cg1", "member-b", 2, owned={})
            check(b2["err"] == NONE and count(b2["assignment"]) == 0,
                  "b still waits while a has not revoked: %r" % b2)
            # a acknowledges: reports only its 3.
            a3 = heartbeat(k, "cg1", "member-a", 1, owned=owned_of(a2["assignment"]))
            check(a3["err"] == NONE and a3["epoch"] == 2, "a reaches epoch 2: %r" % a3)
            b3 = heartbeat(k, "cg1", "member-b", 2, owned={})
            check(b3["err"] == NONE and count(b3["assignment"]) == 3, "b gets 3: %r" % b3)
            mine = set((t, p) for t, ps in owned_of(a2["assignment"]).items() for p in ps)
            theirs = set((t, p) for t, ps in owned_of(b3["assignment"]).items() for p in ps)
            check(not (mine & theirs), "a partition owned twice")
            # Bad epochs.
            check(heartbeat(k, "cg1", "member-a", 7)["err"] == FENCED_MEMBER_EPOCH,
                  "epoch ahead: FENCED_MEMBER_EPOCH")
            check(heartbeat(k, "cg1", "member-b", 1, owned=owned_of(b3["assignment"]))["err"]
                  == FENCED_MEMBER_EPOCH, "stale epoch not matching: FENCED_MEMBER_EPOCH")
            check(heartbeat(k, "cg1", "nobody", 2)["err"] == UNKNOWN_MEMBER_ID, "unknown member")
            # An unknown group: GROUP_ID_NOT_FOUND, as Kafka's getOrMaybeCreateConsumerGroup,
            # for a heartbeat and for a leave.
            check(heartbeat(k, "nogroup", "x", 3)["err"] == GROUP_ID_NOT_FOUND, "unknown group")
            check(heartbeat(k, "nogroup", "x", -1)["err"] == GROUP_ID_NOT_FOUND,
                  "leave of an unknown group")
            # OffsetCommit v9: member epoch checks.
            def commit(epoch, member="member-a"):
                body = (cstring("cg1") + i32(epoch) + cstring(member) + cstring(None) +
                        carray([cstring("cg-raw") + carray([i32(0) + i64(5) + i32(-1) +
                                                            cstring("") + TAGS_NONE]) +
                                TAGS_NONE]) + TAGS_NONE)
                r = Reader(k.call(OFFSET_COMMIT, 9, body))
                r.int32()
                return r.carray(lambda r: (r.cstring(), r.carray(
                    lambda r: (r.int32(), r.int16(), r.uvarint())), r.uvarint()))[0][1][0][1]
            check(commit(2) == NONE, "commit with the current epoch")
            check(commit(1) == STALE_MEMBER_EPOCH, "commit with an old epoch: STALE_MEMBER_EPOCH")
            check(commit(2, "nobody") == UNKNOWN_MEMBER_ID, "commit from an unknown member")
            # Describe.
            body = carray([cstring("cg1"), cstring("nogroup")]) + i8(0) + TAGS_NONE
            r = Reader(k.call(CG_DESCRIBE, 0, body, flexible=True))
            r.int32()

            def member(r):
                mid, inst, rack, ep = r.cstring(), r.cstring(), r.cstring(), r.int32()
                r.cstring(), r.cstring()
                subs = r.carray(lambda r: r.cstring())
                r.cstring()

                def assignment(r):
                    tps = r.carray(lambda r: (r.uuid(), r.cstring(),
                                              r.carray(lambda r: r.int32()), r.uvarint()))
                    r.uvarint()
                    return tps
                cur, tgt = assignment(r), assignment(r)
                r.uvarint()
                return mid, ep, subs, cur, tgt

            def group(r):
                err, msg, gid, st, gep, aep, asg = (r.int16(), r.cstring(), r.cstring(),
                                                    r.cstring(), r.int32(), r.int32(), r.cstring())
                ms = r.carray(member)
                r.int32()
                r.uvarint()
                return err, gid, st, gep, aep, asg, ms
            groups = r.carray(group)
            comment("describe: %r" % (groups[0][:6],))
            err, gid, st, gep, aep, asg, ms = groups[0]
            check(err == 0 and st == "Stable" and gep == 2 and aep == 2 and asg == "uniform",
                  "described group: %r" % (groups[0][:6],))
            check(sorted(m[0] for m in ms) == ["member-a", "member-b"], "members")
            for m in ms:
                check(m[2] == ["cg-raw"] and sum(len(t[2]) for t in m[3]) == 3 and
                      m[3][0][1] == "cg-raw", "member %r" % (m,))
            check(groups[1][0] == GROUP_ID_NOT_FOUND, "unknown group: %r" % (groups[1],))
            # Leave: -1; the remaining member gets everything.
            lv = heartbeat(k, "cg1", "member-b", -1)
            check(lv["err"] == NONE and lv["epoch"] == -1, "leave: %r" % lv)
            a4 = heartbeat(k, "cg1", "member-a", 2, owned=owned_of(a2["assignment"]))
            check(a4["epoch"] == 3 and count(a4["assignment"]) == 6, "a takes all: %r" % a4)


@test
def test_raw_bad_input_error_codes():
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-bad", 6)
            coordinator_ready(k, "cg2")
            r = join(k, "cg2", "m1", ["cg-bad"], assignor="nosuch")
            check(r["err"] == UNSUPPORTED_ASSIGNOR, "unknown assignor: %r" % r)
            r = join(k, "cg2", "m1", ["cg-bad"], assignor="range")
            check(r["err"] == NONE and count(r["assignment"]) == 6, "range assignor: %r" % r)
            r = heartbeat(k, "cg2", "m2", 0, topics=None, owned={}, rebalance_ms=30000)
            check(r["err"] == INVALID_REQUEST, "first heartbeat without subscription: %r" % r)
            r = heartbeat(k, "cg2", "", 0, topics=["cg-bad"], owned={}, rebalance_ms=30000)
            check(r["err"] == INVALID_REQUEST, "v1 with an empty member id: %r" % r)
            r = heartbeat(k, "cg2", "m3", 0, topics=["cg-bad"], owned={}, rebalance_ms=-1)
            check(r["err"] == INVALID_REQUEST, "join without rebalance timeout: %r" % r)
            r = heartbeat(k, "cg2", "m3", 0, topics=None, owned={}, rebalance_ms=30000,
                          regex="(unclosed")
            check(r["err"] == INVALID_REGULAR_EXPRESSION, "bad regex: %r" % r)
            r = heartbeat(k, "cg2", "m3", -3)
            check(r["err"] == INVALID_REQUEST, "member epoch -3: %r" % r)
            r = heartbeat(k, "cg2", "", 0, topics=["cg-bad"], owned={}, rebalance_ms=30000,
                          version=0)
            check(r["err"] == NONE and r["member"] and len(r["member"]) == 22,
                  "v0: the coordinator makes the member id: %r" % r)
            # A classic group holds "classic-g": a consumer-protocol join is refused.
            body = (string("classic-g") + i32(6000) + string("") + string("consumer") +
                    array([string("range") + nbytes(b"\x00\x00\x00\x00\x00\x00\x00\x00")]))
            jr = Reader(k.call(JOIN_GROUP, 0, body, timeout=20))
            check(jr.int16() == 0, "classic join")
            r = join(k, "classic-g", "m1", ["cg-bad"])
            check(r["err"] == GROUP_ID_NOT_FOUND, "consumer join into a classic group: %r" % r)
            # A classic join into the (non-empty) consumer group cg2 is served by it (Kafka's
            # classicGroupJoinToConsumerGroup): the member's epoch is its generation.
            body = (string("cg2") + i32(6000) + string("") + string("consumer") +
                    array([string("range") + nbytes(subscription(["cg-bad"]))]))
            jr = Reader(k.call(JOIN_GROUP, 0, body, timeout=20))
            check(jr.int16() == NONE and jr.int32() > 0, "classic join into a consumer group")
            # A truncated embedded subscription: Kafka fails it (IllegalStateException).
            body = (string("cg2") + i32(6000) + string("") + string("consumer") +
                    array([string("range") + nbytes(b"\x00\x00\x00\x00\x00\x00\x00\x00")]))
            jr = Reader(k.call(JOIN_GROUP, 0, body, timeout=20))
            check(jr.int16() == UNKNOWN_SERVER_ERROR, "truncated subscription")
            # ... but not with another protocol type.
            body = (string("cg2") + i32(6000) + string("") + string("connect") +
                    array([string("range") + nbytes(b"\x00\x00\x00\x00\x00\x00\x00\x00")]))
            jr = Reader(k.call(JOIN_GROUP, 0, body, timeout=20))
            check(jr.int16() == INCONSISTENT_GROUP_PROTOCOL, "protocol type connect")
            # ListGroups v5: types and type filter.
            def list_groups(types):
                body = carray([]) + carray([cstring(t) for t in types]) + TAGS_NONE
                r = Reader(k.call(LIST_GROUPS, 5, body))
                r.int32()
                r.int16()
                return dict((g[0], (g[2], g[3])) for g in r.carray(
                    lambda r: (r.cstring(), r.cstring(), r.cstring(), r.cstring(), r.uvarint())))
            every = list_groups([])
            comment("ListGroups v5: %r" % every)
            check(every.get("cg2", (None, None))[1] == "consumer" and
                  every.get("classic-g", (None, None))[1] == "classic", "group types")
            check(set(list_groups(["consumer"])) == {"cg2"}, "type filter consumer")
            check("cg2" not in list_groups(["classic"]), "type filter classic")
            # DescribeGroups (v5) on a consumer group: Dead, as Kafka before v6.
            r = Reader(k.call(DESCRIBE_GROUPS, 0, array([string("cg2")])))
            gs = r.array(lambda r: (r.int16(), r.string(), r.string()))
            check(gs[0][0] == 0 and gs[0][2] == "Dead", "DescribeGroups on a consumer group: %r"
                  % (gs,))


@test
def test_raw_session_timeout_moves_partitions():
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-st", 6)
            coordinator_ready(k, "cg3")
            a = join(k, "cg3", "a", ["cg-st"])
            check(count(a["assignment"]) == 6, "a owns 6")
            b1 = join(k, "cg3", "b", ["cg-st"])
            a2 = heartbeat(k, "cg3", "a", 1, owned=owned_of(a["assignment"]))
            a3 = heartbeat(k, "cg3", "a", 1, owned=owned_of(a2["assignment"]))
            b2 = heartbeat(k, "cg3", "b", b1["epoch"], owned={})
            check(count(b2["assignment"]) == 3 and a3["epoch"] == 2, "3/3: %r %r" % (a3, b2))
            # b goes silent; a keeps heartbeating and gets b's partitions after the session
            # timeout (4 s) and not before.
            t0 = time.monotonic()
            owned = owned_of(a2["assignment"])
            epoch = a3["epoch"]
            while True:
                r = heartbeat(k, "cg3", "a", epoch, owned=owned)
                check(r["err"] == NONE, "heartbeat: %r" % r)
                epoch = r["epoch"]
                if r["assignment"] is not None:
                    owned = owned_of(r["assignment"])
                if count(owned) == 6:
                    break
                check(time.monotonic() - t0 < 15 * SLOW, "b's partitions never moved")
                time.sleep(0.2)
            took = time.monotonic() - t0
            comment("b's partitions moved after %.1fs" % took)
            check(took >= 3.0, "moved after %.1fs, before the 4 s session timeout" % took)
            check(heartbeat(k, "cg3", "b", b2["epoch"])["err"] == UNKNOWN_MEMBER_ID,
                  "the expired member is unknown")


@test
def test_raw_static_member_leave_and_rejoin():
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-static", 6)
            coordinator_ready(k, "cg4")
            a = join(k, "cg4", "a1", ["cg-static"], instance="inst-a")
            check(a["err"] == NONE and count(a["assignment"]) == 6, "static join: %r" % a)
            r = join(k, "cg4", "a2", ["cg-static"], instance="inst-a")
            check(r["err"] == 111, "instance still in use: UNRELEASED_INSTANCE_ID: %r" % r)
            lv = heartbeat(k, "cg4", "a1", -2, instance="inst-a")
            check(lv["err"] == NONE and lv["epoch"] == -2, "static leave: %r" % lv)
            r = join(k, "cg4", "a2", ["cg-static"], instance="inst-a")
            check(r["err"] == NONE and count(r["assignment"]) == 6,
                  "the new instance takes over the assignment: %r" % r)
            check(heartbeat(k, "cg4", "a1", 1, instance="inst-a")["err"] == 82,
                  "the old member id is fenced: FENCED_INSTANCE_ID")


@test
def test_raw_static_member_left_temporarily_survives_a_restart():
    """A static member that left with epoch -2 keeps its partitions reserved across a SIGKILL
    and restart (its current assignment record says epoch -2): the new instance under a new
    member id takes over the same partitions, the other member's are untouched, and the old
    member id's records are tombstoned."""
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-st2", 6)
            coordinator_ready(k, "cg4r")
            a = join(k, "cg4r", "a1", ["cg-st2"], instance="inst-a")
            bb = join(k, "cg4r", "b1", ["cg-st2"])
            a2 = heartbeat(k, "cg4r", "a1", a["epoch"], owned=owned_of(a["assignment"]),
                           instance="inst-a")
            a3 = heartbeat(k, "cg4r", "a1", a2["epoch"], owned=owned_of(a2["assignment"]),
                           instance="inst-a")
            b3 = heartbeat(k, "cg4r", "b1", bb["epoch"], owned={})
            check(count(a3["assignment"] or a2["assignment"]) == 3 and
                  count(b3["assignment"]) == 3, "3/3: %r %r" % (a3, b3))
            mine = owned_of(a3["assignment"] or a2["assignment"])
            lv = heartbeat(k, "cg4r", "a1", -2, instance="inst-a")
            check(lv["err"] == NONE and lv["epoch"] == -2, "static leave: %r" % lv)
            before = describe_group(k, "cg4r")
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            coordinator_ready(k, "cg4r")
            d = describe_group(k, "cg4r")
            check(d[5].get("a1", (None,))[0] == -2 and d[2] == before[2],
                  "a1 replayed as left temporarily, same group epoch: %r" % (d,))
            r = join(k, "cg4r", "a2", ["cg-st2"], instance="inst-a")
            check(r["err"] == NONE and owned_of(r["assignment"]) == mine,
                  "the new instance takes over a1's partitions: %r" % r)
            rb = heartbeat(k, "cg4r", "b1", b3["epoch"], owned=owned_of(b3["assignment"]))
            check(rb["err"] == NONE and rb["assignment"] is None, "b1 untouched: %r" % rb)
            tail = [(t, m, v is None) for t, m, v in offsets_records(k, "cg4r")]
            check((8, "a1", True) in tail and (5, "a1", True) in tail,
                  "the old member id tombstoned: %r" % tail[-8:])


@test
def test_raw_partition_count_change_reaches_the_assignment():
    from confluent_kafka.admin import AdminClient, NewPartitions
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-grow", 6)
            coordinator_ready(k, "cg5")
            a = join(k, "cg5", "a", ["cg-grow"])
            check(count(a["assignment"]) == 6, "a owns 6")
            admin = AdminClient({"bootstrap.servers": b.bootstrap})
            fs = admin.create_partitions([NewPartitions("cg-grow", 8)])
            for f in fs.values():
                f.result(timeout=15 * SLOW)
            owned, epoch = owned_of(a["assignment"]), a["epoch"]
            deadline = time.monotonic() + 15 * SLOW
            while count(owned) != 8:
                check(time.monotonic() < deadline, "the 2 new partitions never reached the member")
                r = heartbeat(k, "cg5", "a", epoch, owned=owned)
                check(r["err"] == NONE, "heartbeat: %r" % r)
                epoch = r["epoch"]
                if r["assignment"] is not None:
                    owned = owned_of(r["assignment"])
                time.sleep(0.1)
            check(epoch == 2, "one group epoch bump for the new partitions: %d" % epoch)


@test
def test_raw_group_max_size_and_protocol_disabled():
    with Broker(dict(PROPS, **{"group.consumer.max.size": 1})) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-max", 6)
            coordinator_ready(k, "cg6")
            check(join(k, "cg6", "a", ["cg-max"])["err"] == NONE, "first member")
            r = join(k, "cg6", "b", ["cg-max"])
            check(r["err"] == 81, "second member over group.consumer.max.size: %r" % r)
    with Broker(dict(PROPS, **{"group.coordinator.rebalance.protocols": "classic"})) as b:
        with KafkaRaw(b) as k:
            keys = k.api_versions()["api_keys"]
            check(CG_HEARTBEAT not in keys and CG_DESCRIBE not in keys,
                  "KIP-848 APIs advertised with the consumer protocol disabled")
            ensure_topic(k, "cg-off", 6)
            coordinator_ready(k, "cg7")
            r = join(k, "cg7", "a", ["cg-off"])
            check(r["err"] == 35, "heartbeat with the consumer protocol disabled: %r" % r)


def describe_group(k, group):
    """ConsumerGroupDescribe v0 of one group -> (err, state, group epoch, assignment epoch,
    assignor, {member id: (epoch, subscribed topics, {topic: partitions})})."""
    body = carray([cstring(group)]) + i8(0) + TAGS_NONE

    def member(r):
        mid, inst, rack, ep = r.cstring(), r.cstring(), r.cstring(), r.int32()
        r.cstring(), r.cstring()
        subs = r.carray(lambda r: r.cstring())
        r.cstring()

        def assignment(r):
            tps = r.carray(lambda r: (r.uuid(), r.cstring(), r.carray(lambda r: r.int32()),
                                      r.uvarint()))
            r.uvarint()
            return {t[1]: sorted(t[2]) for t in tps}
        cur = assignment(r)
        assignment(r)
        r.uvarint()
        return mid, (ep, subs, cur)

    def grp(r):
        err, _msg, _gid, st, gep, aep, asg = (r.int16(), r.cstring(), r.cstring(), r.cstring(),
                                              r.int32(), r.int32(), r.cstring())
        ms = dict(r.carray(member))
        r.int32()
        r.uvarint()
        return err, st, gep, aep, asg, ms
    deadline = time.monotonic() + 10 * SLOW
    while True:
        r = Reader(k.call(CG_DESCRIBE, 0, body, flexible=True))
        r.int32()
        g = r.carray(grp)[0]
        if g[0] != LOAD_IN_PROGRESS or time.monotonic() > deadline:
            return g
        time.sleep(0.05)


def java_hash(s):
    h = 0
    for ch in s:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def offsets_records(k, group, nparts=10):
    """Every record of the group's __consumer_offsets partition whose key names the group:
    [(key type, member id or None, value or None)] in log order."""
    from kafka_records import fetch_all
    h = java_hash(group)
    part = (0 if h == -(1 << 31) else abs(h)) % nparts
    batches, _ = fetch_all(k, "__consumer_offsets", part)
    out = []
    for b in batches:
        if b["attributes"] & 0x20:  # control batch
            continue
        for rec in b["records"]:
            r = Reader(rec["key"])
            kt = r.int16()
            if kt not in (3, 4, 5, 6, 7, 8):
                continue
            g = r.string()
            mid = r.string() if kt in (5, 7, 8) else None
            check(r.remaining() == 0, "key type %d: bytes after the key" % kt)
            if g == group:
                out.append((kt, mid, rec["value"]))
    return out


def commit_v9(k, group, member, epoch, topic, partition, offset):
    body = (cstring(group) + i32(epoch) + cstring(member) + cstring(None) +
            carray([cstring(topic) + carray([i32(partition) + i64(offset) + i32(-1) +
                                            cstring("") + TAGS_NONE]) + TAGS_NONE]) + TAGS_NONE)
    r = Reader(k.call(OFFSET_COMMIT, 9, body))
    r.int32()
    return r.carray(lambda r: (r.cstring(), r.carray(
        lambda r: (r.int32(), r.int16(), r.uvarint())), r.uvarint()))[0][1][0][1]


def fetch_v9(k, group, member, epoch, topic, partition):
    body = (carray([cstring(group) + cstring(member) + i32(epoch) +
                    carray([cstring(topic) + carray([i32(partition)]) + TAGS_NONE]) +
                    TAGS_NONE]) + i8(0) + TAGS_NONE)
    f = Reader(k.call(OFFSET_FETCH, 9, body))
    f.int32()
    groups = f.carray(lambda r: (r.cstring(), r.carray(lambda r: (
        r.cstring(), r.carray(lambda r: (r.int32(), r.int64(), r.int32(), r.cstring(),
                                         r.int16(), r.uvarint())), r.uvarint())),
        r.int16(), r.uvarint()))
    return groups[0][2], groups[0][1][0][1][0][1]


def two_members_reconciled(k, group, topic):
    """a joins alone, b joins, a revokes: both at epoch 2 with 3 partitions each."""
    a = join(k, group, "a", [topic])
    check(a["epoch"] == 1 and count(a["assignment"]) == 6, "a joins: %r" % a)
    b = join(k, group, "b", [topic])
    check(b["epoch"] == 2, "b joins: %r" % b)
    a2 = heartbeat(k, group, "a", 1, owned=owned_of(a["assignment"]))
    a3 = heartbeat(k, group, "a", 1, owned=owned_of(a2["assignment"]))
    check(a3["epoch"] == 2, "a reaches epoch 2: %r" % a3)
    b3 = heartbeat(k, group, "b", 2, owned={})
    check(count(b3["assignment"]) == 3, "b gets 3: %r" % b3)
    return owned_of(a2["assignment"]), owned_of(b3["assignment"])


def full_heartbeat(k, group, member, epoch, topic, owned):
    """Every field set (Kafka's full request): the answer carries the assignment."""
    return heartbeat(k, group, member, epoch, topics=[topic], owned=owned, rebalance_ms=30000)


@test
def test_raw_group_survives_coordinator_sigkill():
    """The consumer group's records in __consumer_offsets (types 3-8, Kafka's key versions) are
    replayed after a SIGKILL and restart: members go on with their member id, epoch and
    assignment (no new epoch, no rebalance), the group and assignment epochs are the same, an
    epoch from before the crash that is not current is still fenced, OffsetCommit v9 checks
    the replayed epochs. A member that leaves writes tombstones (current assignment, target,
    subscription) and stays gone after another restart."""
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-restart", 6)
            coordinator_ready(k, "cg8")
            owned_a, owned_b = two_members_reconciled(k, "cg8", "cg-restart")
            check(commit_v9(k, "cg8", "a", 2, "cg-restart", 2, 42) == NONE, "commit")
            before = describe_group(k, "cg8")
            check(before[0] == NONE and before[2] == 2 and before[3] == 2, "before: %r"
                  % (before,))
            types = [r[0] for r in offsets_records(k, "cg8")]
            check(all(t in types for t in (3, 4, 5, 6, 7, 8)), "record types written: %r"
                  % types)
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            coordinator_ready(k, "cg8")
            after = describe_group(k, "cg8")
            comment("after the restart: %r" % (after,))
            check(after[0] == NONE and after[1:5] == before[1:5], "group replayed: %r vs %r"
                  % (after[:5], before[:5]))
            check(after[5] == before[5], "members replayed: %r vs %r" % (after[5], before[5]))
            ra = full_heartbeat(k, "cg8", "a", 2, "cg-restart", owned_a)
            check(ra["err"] == NONE and ra["epoch"] == 2 and owned_of(ra["assignment"]) ==
                  owned_a, "a goes on at epoch 2 with its partitions: %r" % ra)
            rb = heartbeat(k, "cg8", "b", 2, owned=owned_b)
            check(rb["err"] == NONE and rb["epoch"] == 2 and rb["assignment"] is None,
                  "b goes on at epoch 2, nothing to change: %r" % rb)
            check(heartbeat(k, "cg8", "b", 1, owned=owned_b)["err"] == FENCED_MEMBER_EPOCH,
                  "an older epoch than the replayed one is fenced")
            check(commit_v9(k, "cg8", "a", 1, "cg-restart", 2, 43) == STALE_MEMBER_EPOCH,
                  "commit with an old epoch after the restart")
            err, off = fetch_v9(k, "cg8", "a", 2, "cg-restart", 2)
            check(err == NONE and off == 42, "offset after the restart: %d %d" % (err, off))
            check(describe_group(k, "cg8")[2] == 2, "no new group epoch")
            # a leaves: its tombstones follow in the log; b gets everything at epoch 3.
            lv = heartbeat(k, "cg8", "a", -1)
            check(lv["err"] == NONE, "leave: %r" % lv)
            recs = offsets_records(k, "cg8")
            tail = [(t, m, v is None) for t, m, v in recs[-4:]]
            check(tail == [(8, "a", True), (7, "a", True), (5, "a", True), (3, None, False)],
                  "tombstones of a, then the group epoch: %r" % tail)
            rb = heartbeat(k, "cg8", "b", 2, owned=owned_b)
            check(rb["epoch"] == 3 and count(rb["assignment"]) == 6, "b takes all: %r" % rb)
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            coordinator_ready(k, "cg8")
            d = describe_group(k, "cg8")
            check(sorted(d[5]) == ["b"] and d[5]["b"][0] == 3 and d[2] == 3,
                  "after the second restart only b, at epoch 3: %r" % (d,))
            check(heartbeat(k, "cg8", "a", 2, owned=owned_a)["err"] == UNKNOWN_MEMBER_ID,
                  "the member that left is gone")
            rb = heartbeat(k, "cg8", "b", 3, owned=owned_of(rb["assignment"]))
            check(rb["err"] == NONE and rb["epoch"] == 3, "b goes on: %r" % rb)


def delete_groups(k, groups):
    """DeleteGroups v2 -> {group: error}."""
    r = Reader(k.call(42, 2, carray([cstring(g) for g in groups]) + TAGS_NONE, flexible=True))
    r.int32()
    return dict(r.carray(lambda r: (r.cstring(), r.int16(), r.uvarint())[:2]))


@test
def test_raw_delete_group_writes_its_tombstones():
    """DeleteGroups of a consumer group writes Kafka's createGroupTombstoneRecords (target
    assignment epoch, subscription metadata, group epoch; the members' records were tombstoned
    when they left) after its offsets' tombstones; after a restart the group is gone. Bad
    input: deleting it while a member is in it is NON_EMPTY_GROUP."""
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-del", 6)
            coordinator_ready(k, "cgd")
            a = join(k, "cgd", "a", ["cg-del"])
            check(a["err"] == NONE and a["epoch"] == 1, "join: %r" % a)
            check(commit_v9(k, "cgd", "a", 1, "cg-del", 0, 5) == NONE, "commit")
            check(delete_groups(k, ["cgd"]) == {"cgd": 68}, "delete with a member: NON_EMPTY_GROUP")
            check(heartbeat(k, "cgd", "a", -1)["err"] == NONE, "leave")
            check(delete_groups(k, ["cgd"]) == {"cgd": NONE}, "delete")
            tail = [(t, m, v is None) for t, m, v in offsets_records(k, "cgd")[-6:]]
            check(tail[-3:] == [(6, None, True), (4, None, True), (3, None, True)],
                  "group tombstones at the end: %r" % tail)
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            coordinator_ready(k, "cgd")
            d = describe_group(k, "cgd")
            check(d[0] == GROUP_ID_NOT_FOUND, "deleted group after the restart: %r" % (d,))
            check(heartbeat(k, "cgd", "a", 1)["err"] == GROUP_ID_NOT_FOUND,
                  "its member's group is gone (Kafka: GROUP_ID_NOT_FOUND)")


@test
def test_raw_compaction_removes_members_that_left():
    """Sixty members join and leave a consumer group beside one that stays, with small
    __consumer_offsets segments, a short cleaner interval and tombstones kept 0 ms: once
    offset commits have rolled the segments, compaction leaves no record of the members that
    left (their tombstones removed them, then went themselves), the partition stays small, and
    after a restart the replayed group holds only the member that stayed, at its epoch."""
    props = dict(PROPS)
    props.update({"offsets.topic.num.partitions": 1, "offsets.topic.segment.bytes": 2048,
                  "log.retention.check.interval.ms": 500,
                  "log.cleaner.delete.retention.ms": 0})
    with Broker(props) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-cmp", 6)
            coordinator_ready(k, "cgc")
            keep = join(k, "cgc", "keep", ["cg-cmp"])
            check(keep["err"] == NONE, "join: %r" % keep)
            owned = owned_of(keep["assignment"])
            epoch = keep["epoch"]
            for i in range(60):
                m = join(k, "cgc", "m%d" % i, ["cg-cmp"])
                check(m["err"] == NONE, "join m%d: %r" % (i, m))
                r = heartbeat(k, "cgc", "keep", epoch, owned=owned)
                check(r["err"] == NONE, "keep: %r" % r)
                if r["assignment"] is not None:
                    owned = owned_of(r["assignment"])
                check(heartbeat(k, "cgc", "m%d" % i, -1)["err"] == NONE, "m%d leaves" % i)
                r = heartbeat(k, "cgc", "keep", r["epoch"], owned=owned)
                if r["assignment"] is not None:
                    owned = owned_of(r["assignment"])
                epoch = r["epoch"]
            # Roll the segments holding the members' records with offset commits.
            for n in range(60):
                check(commit_v9(k, "cgc", "keep", epoch, "cg-cmp", 0, n) == NONE, "commit")
            written = len(offsets_records(k, "cgc", nparts=1))
            comment("%d consumer group records written" % written)

            def left_gone():
                recs = offsets_records(k, "cgc", nparts=1)
                return not any(m and m.startswith("m") for _, m, _ in recs) and recs
            recs = wait_until(left_gone, 30 * SLOW, interval=0.5,
                              what="the records of the members that left compacted away")
            comment("after compaction: %d records: %r" % (len(recs), [r[:2] for r in recs]))
            check(len(recs) < written / 4, "compacted: %d of %d" % (len(recs), written))
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            coordinator_ready(k, "cgc")
            d = describe_group(k, "cgc")
            check(d[0] == NONE and sorted(d[5]) == ["keep"] and d[5]["keep"][0] == epoch,
                  "replayed after compaction: %r" % (d,))
            r = heartbeat(k, "cgc", "keep", epoch, owned=owned)
            check(r["err"] == NONE and r["epoch"] == epoch, "keep goes on: %r" % r)


def classic_join(k, group):
    """JoinGroup v0 of a classic member (alone: the generation completes at once) -> (error,
    member id). While the coordinator still loads its partition (a fresh or restarted broker,
    slower under ASan) it answers COORDINATOR_LOAD_IN_PROGRESS; asks again, as clients do."""
    body = (string(group) + i32(6000) + string("") + string("consumer") +
            array([string("range") + nbytes(b"\x00\x00\x00\x00\x00\x00\x00\x00")]))
    deadline = time.monotonic() + 10 * SLOW
    while True:
        jr = Reader(k.call(JOIN_GROUP, 0, body, timeout=20))
        err, _gen, _proto, _leader, member = (jr.int16(), jr.int32(), jr.string(), jr.string(),
                                              jr.string())
        if err != LOAD_IN_PROGRESS or time.monotonic() > deadline:
            return err, member
        time.sleep(0.05)


@test
def test_raw_group_changes_protocol_when_empty_and_stays_changed_after_restart():
    """An empty classic group taken over by a consumer-protocol member leaves a tombstone of its
    classic metadata, an empty consumer group taken back by a classic member leaves the
    consumer group's tombstones (Kafka's maybeDeleteEmptyClassicGroup /
    maybeDeleteEmptyConsumerGroup): after a restart neither comes back as the other type."""
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-conv", 6)
            coordinator_ready(k, "cgv")
            err, member = classic_join(k, "cgv")
            check(err == NONE, "classic join: %d" % err)
            lr = Reader(k.call(13, 0, string("cgv") + string(member)))
            check(lr.int16() == NONE, "classic leave")
            a = join(k, "cgv", "a", ["cg-conv"])
            check(a["err"] == NONE and a["epoch"] == 1, "consumer join into the empty classic "
                  "group: %r" % a)
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            coordinator_ready(k, "cgv")
            d = describe_group(k, "cgv")
            check(d[0] == NONE and sorted(d[5]) == ["a"], "a consumer group after the restart: %r"
                  % (d,))
            r = Reader(k.call(DESCRIBE_GROUPS, 0, array([string("cgv")])))
            gs = r.array(lambda r: (r.int16(), r.string(), r.string()))
            check(gs[0][2] == "Dead", "DescribeGroups: not a classic group: %r" % (gs,))
            check(heartbeat(k, "cgv", "a", -1)["err"] == NONE, "leave")
            err, member = classic_join(k, "cgv")
            check(err == NONE, "classic join into the empty consumer group: %d" % err)
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            coordinator_ready(k, "cgv")
            d = describe_group(k, "cgv")
            check(d[0] == GROUP_ID_NOT_FOUND, "the consumer group stays gone: %r" % (d,))


def find_coordinator(k, group):
    """FindCoordinator v0 -> (error, node id)."""
    r = Reader(k.call(FIND_COORDINATOR, 0, string(group)))
    err, node = r.int16(), r.int32()
    return err, node


@test
def test_raw_group_follows_its_coordinator_to_another_node():
    """Three nodes, __consumer_offsets replicated 3 ways: the coordinator of a consumer group
    is SIGKILLed; the new leader of the group's __consumer_offsets partition replays the
    group, and the members heartbeat there with their member id and epoch and keep their
    assignment (no new group epoch)."""
    from harness import Cluster
    props = dict(PROPS)
    props["offsets.topic.replication.factor"] = 3
    with Cluster(3, props=props) as c:
        with KafkaRaw(c.node(1)) as k:
            ensure_topic(k, "cg-move", 6)
            deadline = time.monotonic() + 30 * SLOW
            while True:
                err, coord = find_coordinator(k, "cgm")
                if err == NONE or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            check(err == NONE, "FindCoordinator: %d" % err)
        comment("coordinator of cgm: node %d" % coord)
        with KafkaRaw(c.node(coord)) as k:
            owned_a, owned_b = two_members_reconciled(k, "cgm", "cg-move")
            before = describe_group(k, "cgm")
        c.kill(coord)
        other = [i for i in c.live_ids()][0]
        deadline = time.monotonic() + 60 * SLOW
        moved = None
        while moved is None:
            check(time.monotonic() < deadline, "the group found no new coordinator")
            try:
                with KafkaRaw(c.node(other)) as k:
                    err, node = find_coordinator(k, "cgm")
                if err == NONE and node != coord and node in c.live_ids():
                    with KafkaRaw(c.node(node)) as k:
                        ra = full_heartbeat(k, "cgm", "a", 2, "cg-move", owned_a)
                        if ra["err"] in (14, 15, 16):  # loading / not available / not coordinator
                            raise OSError("coordinator not ready: %d" % ra["err"])
                        rb = heartbeat(k, "cgm", "b", 2, owned=owned_b)
                        after = describe_group(k, "cgm")
                        moved = node
            except (OSError, ConnectionError):
                time.sleep(0.2)
        comment("new coordinator: node %d" % moved)
        check(ra["err"] == NONE and ra["epoch"] == 2 and owned_of(ra["assignment"]) == owned_a,
              "a goes on at the new coordinator: %r" % ra)
        check(rb["err"] == NONE and rb["epoch"] == 2, "b goes on: %r" % rb)
        check(after[:5] == before[:5] and after[5] == before[5],
              "the same group at the new coordinator: %r vs %r" % (after, before))


@test
def test_cli_group_describe_consumer_group():
    """gregor group describe on a consumer-protocol group (DescribeGroups says Dead; the CLI
    asks ConsumerGroupDescribe raw): protocol, state, group and assignment epochs, assignor,
    each member's id, client, epoch, subscription and assigned partitions, and the lag table
    naming the owners. An unknown group still fails; a classic group says protocol classic."""
    import subprocess
    from harness import GREGOR_BIN
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "cg-cli", 6)
            coordinator_ready(k, "cg9")
            owned_a, owned_b = two_members_reconciled(k, "cg9", "cg-cli")
            check(commit_v9(k, "cg9", "a", 2, "cg-cli", 1, 7) == NONE, "commit")
            p = subprocess.run([GREGOR_BIN, "group", "describe", "cg9", "-b", b.bootstrap],
                               capture_output=True, text=True, timeout=60 * SLOW)
            comment(p.stdout)
            check(p.returncode == 0, "describe: exit %d: %s" % (p.returncode, p.stderr))
            lines = p.stdout.splitlines()
            check(lines[0].startswith("Group cg9: protocol consumer, state Stable, 2 member(s)")
                  and "group epoch 2, assignment epoch 2, assignor uniform" in lines[0],
                  "header: %r" % lines[0])
            members = {ln.split()[1]: ln for ln in lines if ln.startswith("  Member ")}
            check(sorted(members) == ["a", "b"], "member lines: %r" % members)
            for mid, owned in (("a", owned_a), ("b", owned_b)):
                parts = ",".join(str(x) for x in sorted(next(iter(owned.values()))))
                check("epoch=2 subscription=cg-cli assigned=cg-cli[%s] target=cg-cli[%s]"
                      % (parts, parts) in members[mid] and "client=gregor-test" in members[mid],
                      "member %s: %r" % (mid, members[mid]))
            rows = {int(f[2]): f for f in (ln.split() for ln in lines if ln.startswith("cg9 "))}
            check(sorted(rows) == list(range(6)), "a row per assigned partition: %r" % rows)
            check(rows[1][3] == "7" and all(rows[q][3] == "-" for q in rows if q != 1),
                  "committed offsets: %r" % rows)
            parts_a = next(iter(owned_a.values()))
            for q, f in rows.items():
                check(f[6] == ("a" if q in parts_a else "b"), "owner of cg-cli/%d: %r" % (q, f))
            p = subprocess.run([GREGOR_BIN, "group", "describe", "nosuchgroup", "-b",
                                b.bootstrap], capture_output=True, text=True, timeout=60 * SLOW)
            check(p.returncode != 0 and "does not exist" in p.stderr,
                  "unknown group: exit %d %r" % (p.returncode, p.stderr))


@test
def test_config_refuses_bad_consumer_group_settings():
    from harness import start_expect_exit
    for props, word in [({"group.consumer.assignors": "uniform,sticky"}, "sticky"),
                        ({"group.consumer.heartbeat.interval.ms": 50000}, "heartbeat"),
                        ({"group.consumer.session.timeout.ms": 1000}, "session"),
                        ({"group.coordinator.rebalance.protocols": "consumer"}, "classic"),
                        ({"group.consumer.migration.policy": "sideways"}, "migration")]:
        rc, err, out = start_expect_exit(props)
        check(rc != 0 and word in (err + out), "%r: exit %d, %s" % (props, rc, (err + out)[-300:]))


# ---- online migration between classic and consumer groups ----

SYNC_GROUP, HEARTBEAT, LEAVE_GROUP = 14, 12, 13
ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS = 22, 27


def subscription(topics):
    """ConsumerProtocolSubscription v0."""
    return i16(0) + array([string(t) for t in topics]) + nbytes(b"")


def assignment_bytes(parts):
    """ConsumerProtocolAssignment v0 of {topic: [partitions]}."""
    return i16(0) + array([string(t) + array([i32(p) for p in ps])
                           for t, ps in sorted(parts.items())]) + nbytes(b"")


def parse_assignment(raw):
    r = Reader(raw)
    r.int16()
    parts = r.array(lambda r: (r.string(), r.array(lambda r: r.int32())))
    return {t: sorted(ps) for t, ps in parts}


def classic_join_v3(k, group, member, topics, protocols=("range",), ptype="consumer",
                    session_ms=10000):
    """JoinGroup v3 -> (error, generation, protocol, leader, member id, members)."""
    body = (string(group) + i32(session_ms) + i32(30000) + string(member) + string(ptype) +
            array([string(p) + nbytes(subscription(topics)) for p in protocols]))
    deadline = time.monotonic() + 10 * SLOW
    while True:
        r = Reader(k.call(JOIN_GROUP, 3, body, timeout=40))
        r.int32()
        out = (r.int16(), r.int32(), r.string(), r.string(), r.string(),
               r.array(lambda r: (r.string(), r.bytes_())))
        if out[0] != LOAD_IN_PROGRESS or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def classic_sync_v1(k, group, gen, member, assignments=None):
    """SyncGroup v1 -> (error, assignment bytes)."""
    body = (string(group) + i32(gen) + string(member) +
            array([string(m) + nbytes(a) for m, a in (assignments or {}).items()]))
    r = Reader(k.call(SYNC_GROUP, 1, body, timeout=40))
    r.int32()
    return r.int16(), r.bytes_()


def classic_heartbeat_v1(k, group, gen, member):
    r = Reader(k.call(HEARTBEAT, 1, string(group) + i32(gen) + string(member)))
    r.int32()
    return r.int16()


def commit_v2(k, group, gen, member, topic, partition, offset):
    body = (string(group) + i32(gen) + string(member) + i64(-1) +
            array([string(topic) + array([i32(partition) + i64(offset) + string("")])]))
    r = Reader(k.call(OFFSET_COMMIT, 2, body))
    return r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int16()))))[0][1][0][1]


def cli_describe(b, group):
    import subprocess
    from harness import GREGOR_BIN
    p = subprocess.run([GREGOR_BIN, "group", "describe", group, "-b", b.bootstrap],
                       capture_output=True, text=True, timeout=60 * SLOW)
    comment(p.stdout)
    check(p.returncode == 0, "describe %s: exit %d: %s" % (group, p.returncode, p.stderr))
    return p.stdout


def list_types(k):
    """ListGroups v5: {group: (state, type)}. While a coordinator shard is loading (after a
    restart) the broker answers COORDINATOR_LOAD_IN_PROGRESS; asks again until it does not."""
    deadline = time.monotonic() + 15 * SLOW
    while True:
        r = Reader(k.call(LIST_GROUPS, 5, carray([]) + carray([]) + TAGS_NONE))
        r.int32()
        err = r.int16()
        groups = dict((g[0], (g[2], g[3])) for g in r.carray(
            lambda r: (r.cstring(), r.cstring(), r.cstring(), r.cstring(), r.uvarint())))
        if err != LOAD_IN_PROGRESS:
            check(err == NONE, "ListGroups error %d" % err)
            return groups
        if time.monotonic() > deadline:
            fail("ListGroups still COORDINATOR_LOAD_IN_PROGRESS after %.0fs" % (15 * SLOW))
        time.sleep(0.05)


def stable_classic_group(k, group, topic, session_ms=10000):
    """One classic member (JoinGroup v3 + SyncGroup v1 as leader, all 6 partitions) -> id."""
    err, gen, proto, leader, member, members = classic_join_v3(k, group, "", [topic],
                                                               session_ms=session_ms)
    check(err == NONE and gen == 1 and leader == member and len(members) == 1,
          "classic join: %r" % ((err, gen, proto, leader, member),))
    err, a = classic_sync_v1(k, group, 1, member,
                             {member: assignment_bytes({topic: list(range(6))})})
    check(err == NONE and parse_assignment(a) == {topic: list(range(6))}, "sync: %r" % err)
    check(list_types(k).get(group) == ("Stable", "classic"), "a Stable classic group")
    return member


@test
def test_raw_classic_group_upgrade_and_downgrade():
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "mig-raw", 6)
            coordinator_ready(k, "mg")
            c1 = stable_classic_group(k, "mg", "mig-raw")
            # A consumer-protocol member joins: the group is upgraded; c1 keeps its 6
            # partitions (its epoch is the generation, 1) until it rejoins.
            p1 = join(k, "mg", "p1", ["mig-raw"])
            check(p1["err"] == NONE and p1["epoch"] == 2 and count(p1["assignment"]) == 0,
                  "consumer join upgrades the group: %r" % p1)
            check(list_types(k).get("mg", ("", ""))[1] == "consumer", "type consumer")
            subs = [v for kt, m, v in offsets_records(k, "mg") if kt == 5 and m == c1]
            check(subs and subs[-1] and b"range" in subs[-1],
                  "c1's subscription record carries its ClassicMemberMetadata")
            check(cli_describe(b, "mg").startswith("Group mg: protocol consumer"),
                  "gregor group describe after the upgrade")
            d = describe_group(k, "mg")
            check(d[0] == NONE and d[2] == 2 and sorted(d[5]) == sorted(["p1", c1]) and
                  d[5][c1][0] == 1 and d[5][c1][1] == ["mig-raw"] and
                  d[5][c1][2] == {"mig-raw": list(range(6))},
                  "the classic member inside the consumer group: %r" % (d,))
            check(classic_heartbeat_v1(k, "mg", 1, c1) == REBALANCE_IN_PROGRESS,
                  "heartbeat: it must rejoin")
            check(classic_heartbeat_v1(k, "mg", 7, c1) == ILLEGAL_GENERATION, "wrong generation")
            check(classic_heartbeat_v1(k, "mg", 1, "nosuch") == UNKNOWN_MEMBER_ID, "unknown")
            check(classic_heartbeat_v1(k, "mg", 2, "p1") == UNKNOWN_MEMBER_ID,
                  "a consumer-protocol member is not a classic member")
            check(classic_sync_v1(k, "mg", 1, c1)[0] == REBALANCE_IN_PROGRESS,
                  "sync before rejoining")
            check(commit_v2(k, "mg", 1, c1, "mig-raw", 0, 5) == NONE, "commit at its epoch")
            check(commit_v2(k, "mg", 9, c1, "mig-raw", 0, 5) == ILLEGAL_GENERATION,
                  "commit at another generation")
            check(classic_join_v3(k, "mg", c1, ["mig-raw"], ptype="connect")[0] ==
                  INCONSISTENT_GROUP_PROTOCOL, "another protocol type")
            check(classic_join_v3(k, "mg", "", ["mig-raw"], protocols=("roundrobin",))[0] ==
                  INCONSISTENT_GROUP_PROTOCOL, "a protocol c1 does not support")
            # A static member with a member id the group does not know (JoinGroup v5).
            body = (string("mg") + i32(10000) + i32(30000) + string("bogus") + string("i1") +
                    string("consumer") +
                    array([string("range") + nbytes(subscription(["mig-raw"]))]))
            jr = Reader(k.call(JOIN_GROUP, 5, body, timeout=40))
            jr.int32()
            check(jr.int16() == UNKNOWN_MEMBER_ID, "unknown static member")
            # c1 rejoins (owning nothing: eager): its epoch moves to 2, half the partitions.
            err, gen, proto, leader, member, members = classic_join_v3(k, "mg", c1, ["mig-raw"])
            check(err == NONE and gen == 2 and proto == "range" and member == c1 and
                  leader == "" and members == [], "rejoin: %r" % ((err, gen, proto, leader),))
            err, a = classic_sync_v1(k, "mg", 2, c1)
            mine = parse_assignment(a).get("mig-raw", [])
            check(err == NONE and len(mine) == 3, "sync after the rejoin: %r %r" % (err, mine))
            check(classic_heartbeat_v1(k, "mg", 2, c1) == NONE, "reconciled")
            p1 = heartbeat(k, "mg", "p1", 2, topics=["mig-raw"], owned={}, rebalance_ms=30000)
            check(p1["err"] == NONE and count(p1["assignment"]) == 3, "p1 gets the other 3: %r"
                  % p1)
            # p1 leaves: the group is downgraded and rebalances with c1 alone.
            check(heartbeat(k, "mg", "p1", -1)["err"] == NONE, "p1 leaves")
            check(list_types(k).get("mg") == ("PreparingRebalance", "classic"),
                  "downgraded: %r" % (list_types(k).get("mg"),))
            check(classic_heartbeat_v1(k, "mg", 2, c1) == REBALANCE_IN_PROGRESS,
                  "the classic group rebalances")
            err, gen, proto, leader, member, members = classic_join_v3(k, "mg", c1, ["mig-raw"])
            check(err == NONE and gen == 3 and leader == c1 and len(members) == 1,
                  "rejoin the classic group: %r" % ((err, gen, leader),))
            err, a = classic_sync_v1(k, "mg", 3, c1,
                                     {c1: assignment_bytes({"mig-raw": list(range(6))})})
            check(err == NONE, "sync in the classic group")
            check(describe_group(k, "mg")[0] == GROUP_ID_NOT_FOUND,
                  "not a consumer group any more")
            check("protocol classic" in cli_describe(b, "mg").splitlines()[0],
                  "gregor group describe after the downgrade")
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            coordinator_ready(k, "mg")
            check(list_types(k).get("mg") == ("Stable", "classic"),
                  "a classic group after the restart: %r" % (list_types(k).get("mg"),))
            check(classic_heartbeat_v1(k, "mg", 3, c1) == NONE, "c1 at generation 3")


@test
def test_raw_migration_policy_disabled_and_upgrade_only():
    with Broker(dict(PROPS, **{"group.consumer.migration.policy": "disabled"})) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "mig-raw", 6)
            coordinator_ready(k, "md")
            stable_classic_group(k, "md", "mig-raw")
            r = join(k, "md", "p1", ["mig-raw"])
            check(r["err"] == GROUP_ID_NOT_FOUND, "policy disabled: %r" % r)
            check(list_types(k).get("md") == ("Stable", "classic"), "still classic")
    with Broker(dict(PROPS, **{"group.consumer.migration.policy": "upgrade"})) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "mig-raw", 6)
            coordinator_ready(k, "mu")
            c1 = stable_classic_group(k, "mu", "mig-raw")
            check(join(k, "mu", "p1", ["mig-raw"])["err"] == NONE, "upgrade allowed")
            check(heartbeat(k, "mu", "p1", -1)["err"] == NONE, "p1 leaves")
            check(list_types(k).get("mu", ("", ""))[1] == "consumer",
                  "upgrade only: no downgrade: %r" % (list_types(k).get("mu"),))
            d = describe_group(k, "mu")
            check(d[0] == NONE and sorted(d[5]) == [c1], "c1 stays a member: %r" % (d,))


@test
def test_raw_new_target_writes_only_changed_members():
    """Kafka's TargetAssignmentBuilder writes the target-assignment record
    (ConsumerGroupTargetAssignmentMember, key type 7) only of the members whose target changed:
    a member joining with another topic leaves the others' records alone."""
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "tg-a", 6)
            ensure_topic(k, "tg-b", 6)
            coordinator_ready(k, "tg")
            check(join(k, "tg", "a", ["tg-a"])["err"] == NONE, "a joins")
            check(join(k, "tg", "b", ["tg-a"])["err"] == NONE, "b joins")
            before = [m for kt, m, _ in offsets_records(k, "tg") if kt == 7]
            comment("target records before: %r" % before)
            check(sorted(before) == ["a", "a", "b"], "a twice (alone, then split), b once")
            check(join(k, "tg", "c", ["tg-b"])["err"] == NONE, "c joins with another topic")
            after = [m for kt, m, _ in offsets_records(k, "tg") if kt == 7][len(before):]
            check(after == ["c"], "only c's target record: %r" % after)
            d = describe_group(k, "tg")
            check(d[0] == NONE and d[2] == 3 and d[3] == 3, "epochs 3/3: %r" % (d,))
        b.kill()
        b.start()
        with KafkaRaw(b) as k:
            coordinator_ready(k, "tg")
            d = describe_group(k, "tg")
            check(d[0] == NONE and sorted(d[5]) == ["a", "b", "c"] and d[3] == 3,
                  "the replay has every member's target: %r" % (d,))


@test
def test_raw_classic_member_session_expires_inside_a_consumer_group():
    """A classic member of an upgraded group that stops heartbeating is removed after its own
    (classic) session timeout, and its partitions go to the consumer-protocol member."""
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "mig-exp", 6)
            coordinator_ready(k, "mx")
            c1 = stable_classic_group(k, "mx", "mig-exp", session_ms=6000)
            p1 = join(k, "mx", "p1", ["mig-exp"])
            check(p1["err"] == NONE and count(p1["assignment"]) == 0, "upgrade: %r" % p1)
            epoch, owned = p1["epoch"], {}
            deadline = time.monotonic() + 20 * SLOW
            while time.monotonic() < deadline:
                r = heartbeat(k, "mx", "p1", epoch, owned=owned)
                check(r["err"] == NONE, "p1 heartbeat: %r" % r)
                epoch = r["epoch"]
                if r["assignment"] is not None:
                    owned = owned_of(r["assignment"])
                if count(owned) == 6:
                    break
                time.sleep(0.5)
            check(count(owned) == 6, "p1 gets all 6 once c1 expired: %r" % owned)
            d = describe_group(k, "mx")
            check(sorted(d[5]) == ["p1"], "c1 %s expired: %r" % (c1, d))


def leave_v3(k, group, members):
    """LeaveGroup v3 of [(member id, instance id or None)] -> (error, [(member id, error)])."""
    body = string(group) + array([string(m) + string(i) for m, i in members])
    r = Reader(k.call(LEAVE_GROUP, 3, body))
    r.int32()
    err = r.int16()
    return err, r.array(lambda r: (r.string(), r.string(), r.int16()))


@test
def test_raw_batch_leave_of_classic_members():
    """LeaveGroup v3 with a member list (Kafka's removeMembersFromConsumerGroup) answers each
    member on its own: in an upgraded group, the classic member leaves (NONE) while an unknown id
    and the consumer-protocol member (not a classic member) get UNKNOWN_MEMBER_ID, and the
    consumer-protocol member then gets all 6 partitions; in a classic group, the same request
    shape removes the member and empties the group."""
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "mig-lv", 6)
            coordinator_ready(k, "ml")
            c1 = stable_classic_group(k, "ml", "mig-lv")
            p1 = join(k, "ml", "p1", ["mig-lv"])
            check(p1["err"] == NONE, "upgrade: %r" % p1)
            err, got = leave_v3(k, "ml", [(c1, None), ("nobody", None), ("p1", None)])
            check(err == NONE and [(m, e) for m, _, e in got] ==
                  [(c1, NONE), ("nobody", UNKNOWN_MEMBER_ID), ("p1", UNKNOWN_MEMBER_ID)],
                  "per-member answers: %r" % ((err, got),))
            epoch, owned = p1["epoch"], {}
            deadline = time.monotonic() + 20 * SLOW
            while time.monotonic() < deadline and count(owned) < 6:
                r = heartbeat(k, "ml", "p1", epoch, owned=owned)
                check(r["err"] == NONE, "p1 heartbeat: %r" % r)
                epoch = r["epoch"]
                if r["assignment"] is not None:
                    owned = owned_of(r["assignment"])
                time.sleep(0.2)
            check(count(owned) == 6, "p1 gets the classic member's partitions: %r" % owned)
            coordinator_ready(k, "cl")
            c2 = stable_classic_group(k, "cl", "mig-lv")
            err, got = leave_v3(k, "cl", [(c2, None), ("nobody", None)])
            check(err == NONE and [(m, e) for m, _, e in got] ==
                  [(c2, NONE), ("nobody", UNKNOWN_MEMBER_ID)], "classic group: %r" % ((err, got),))
            check(list_types(k).get("cl", ("", ""))[0] == "Empty", "classic group empty")


@test
def test_raw_upgrade_refused_while_a_new_member_joins():
    """A classic group rebalancing for a member that has no assignment yet cannot be upgraded
    (Kafka cannot decode its empty assignment): GROUP_ID_NOT_FOUND, and the group stays
    classic."""
    import threading
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k, KafkaRaw(b) as k2:
            ensure_topic(k, "mig-rb", 6)
            coordinator_ready(k, "mr")
            stable_classic_group(k, "mr", "mig-rb")
            def second_member():
                try:
                    classic_join_v3(k2, "mr", "", ["mig-rb"])
                except Exception:
                    pass  # the connection closes under it at the end of the test
            t = threading.Thread(target=second_member, daemon=True)
            t.start()  # parks: c1 has to rejoin first
            wait_until(lambda: list_types(k).get("mr", ("",))[0] == "PreparingRebalance",
                       10 * SLOW, what="the group rebalancing")
            r = join(k, "mr", "p1", ["mig-rb"])
            check(r["err"] == GROUP_ID_NOT_FOUND, "upgrade during the rebalance: %r" % r)
            check(list_types(k).get("mr") == ("PreparingRebalance", "classic"), "still classic")


@test
def test_raw_static_classic_member_replacing_the_last_consumer_member_downgrades():
    """Kafka's validateOnlineDowngradeWithReplacedMemberId: a classic static member taking the
    instance id of the group's only consumer-protocol member turns the group classic at once
    (no rebalance); it keeps that member's partitions."""
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "mig-st", 6)
            coordinator_ready(k, "ms")
            c1 = stable_classic_group(k, "ms", "mig-st")
            p1 = join(k, "ms", "p1", ["mig-st"], instance="inst")
            check(p1["err"] == NONE, "static consumer-protocol member upgrades: %r" % p1)
            body = (string("ms") + i32(10000) + i32(30000) + string("") + string("inst") +
                    string("consumer") +
                    array([string("range") + nbytes(subscription(["mig-st"]))]))
            jr = Reader(k.call(JOIN_GROUP, 5, body, timeout=40))
            jr.int32()
            err, gen, proto, leader, member = (jr.int16(), jr.int32(), jr.string(), jr.string(),
                                               jr.string())
            check(err == NONE and member not in ("", "p1", c1) and proto == "range",
                  "the classic static member replaces p1: %r" % ((err, gen, proto, member),))
            check(list_types(k).get("ms") == ("Stable", "classic"),
                  "downgraded without a rebalance: %r" % (list_types(k).get("ms"),))
            r = Reader(k.call(DESCRIBE_GROUPS, 0, array([string("ms")])))
            gs = r.array(lambda r: (r.int16(), r.string(), r.string(), r.string(), r.string(),
                                    r.array(lambda r: (r.string(), r.string(), r.string(),
                                                       r.bytes_(), r.bytes_()))))
            check(sorted(m[0] for m in gs[0][5]) == sorted([c1, member]),
                  "classic members c1 and the new one: %r" % (gs,))
            err, a = classic_sync_v1(k, "ms", gen, member)
            check(err == NONE and len(parse_assignment(a).get("mig-st", [])) == 3,
                  "it has p1's target (3 partitions): %r" % ((err, parse_assignment(a)),))


if __name__ == "__main__":
    run_tests()
