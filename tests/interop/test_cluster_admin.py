#!/usr/bin/python3
"""Cluster admin APIs and cluster-wide services on three real gregor nodes:

  * ElectLeaders (raw v1, sent to a broker that is not the active controller, so it is
    forwarded): preferred election after a reassignment reorders the replicas, unclean
    election of a partition without a live in-sync replica, and the per-partition errors
    (ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION);
  * AlterPartitionReassignments / ListPartitionReassignments (raw v0): a reorder of in-sync
    replicas completes at once; adding a broker stays listed with adding/removing replicas
    (no data replication yet) until cancelled; bad targets get INVALID_REPLICA_ASSIGNMENT,
    a cancel without one NO_REASSIGNMENT_IN_PROGRESS;
  * a replica reassigned away is deleted from its old broker (renamed "...-delete", then
    removed) while its other partitions stay; moved back, it is copied again from the leader
    and ends byte-identical; a topic deleted and at once re-created starts empty (the old
    directory was renamed away before the new one was made);
  * `gregor cluster info --json` names the quorum leader and every voter;
  * an idempotent confluent-kafka producer bootstrapped on a non-controller broker (its
    producer id block is allocated through the active controller) delivers in order;
  * a consumer group on the cluster: __consumer_offsets is created with
    offsets.topic.replication.factor = 3 replicas, and committed offsets are read back;
"""
import json
import os
import signal
import subprocess
import time

from harness import (Cluster, SLOW, check, comment, cstring, carray, i8, i16, i32, is_flexible,
                     run_tests,
                     test, wait_until, Reader, GREGOR_BIN)

ELECT_LEADERS = 43
ALTER_REASSIGN = 45
LIST_REASSIGN = 46
TAGS = b"\x00"


def elect(c, via, etype, parts):
    """parts: {topic: [partitions]} or None (all) -> {(topic, partition): error code}."""
    if parts is None:
        tp = i32(-1)
    else:
        tp = i32(len(parts)) + b"".join(
            i16(len(t)) + t.encode() + i32(len(ps)) + b"".join(i32(p) for p in ps)
            for t, ps in parts.items())
    body = i8(etype) + tp + i32(10000)
    with c.raw(via) as conn:
        r = Reader(conn.call(ELECT_LEADERS, 1, body))
    r.int32()  # throttle
    top = r.int16()
    check(top == 0, "ElectLeaders top-level error %d" % top)
    out = {}
    for _ in range(r.int32()):
        topic = r.string()
        for _ in range(r.int32()):
            p = r.int32()
            err = r.int16()
            r.string()
            out[(topic, p)] = err
    return out


def alter_reassign(c, via, topic, partition, replicas):
    """replicas None cancels -> the partition's error code."""
    reps = carray([i32(x) for x in replicas]) if replicas is not None else b"\x00"
    body = i32(10000) + carray([cstring(topic) + carray([i32(partition) + reps + TAGS]) + TAGS])
    body += TAGS
    with c.raw(via) as conn:
        r = Reader(conn.call(ALTER_REASSIGN, 0, body, flexible=True))
    if not is_flexible(ALTER_REASSIGN, 0):
        r.tagged_fields()  # response header tags (flexible from v0)
    r.int32()
    top = r.int16()
    r.cstring()
    check(top == 0, "AlterPartitionReassignments top-level error %d" % top)
    errs = []

    def part(rr):
        rr.int32()
        errs.append(rr.int16())
        rr.cstring()
        rr.tagged_fields()

    def tp(rr):
        rr.cstring()
        rr.carray(part)
        rr.tagged_fields()
    r.carray(tp)
    return errs[0]


def list_reassign(c, via):
    """-> {(topic, partition): (replicas, adding, removing)} of ongoing reassignments."""
    body = i32(10000) + b"\x00" + TAGS  # topics null: all
    with c.raw(via) as conn:
        r = Reader(conn.call(LIST_REASSIGN, 0, body, flexible=True))
    if not is_flexible(LIST_REASSIGN, 0):
        r.tagged_fields()
    r.int32()
    check(r.int16() == 0, "ListPartitionReassignments error")
    r.cstring()
    out = {}

    def ints(rr):
        return rr.int32()

    def part(rr, topic):
        p = rr.int32()
        out[(topic, p)] = (rr.carray(ints), rr.carray(ints), rr.carray(ints))
        rr.tagged_fields()

    def tp(rr):
        name = rr.cstring()
        rr.carray(lambda x: part(x, name))
        rr.tagged_fields()
    r.carray(tp)
    return out


def non_controller(c):
    ctl = c.wait_controller()
    return ctl, next(i for i in c.live_ids() if i != ctl)


@test
def test_elect_leaders_preferred_and_unclean():
    with Cluster(3) as c:
        ctl, via = non_controller(c)
        check(c.create_topic("el", 1, 3, via=via) is None, "create el")
        c.wait_topic("el", 1)
        parts = c.raw_partitions("el", via)
        reps = parts[0]["replicas"]
        check(elect(c, via, 0, {"el": [0]}) == {("el", 0): 84}, "ELECTION_NOT_NEEDED expected")
        check(elect(c, via, 0, {"nope": [0]}) == {("nope", 0): 3}, "UNKNOWN_TOPIC_OR_PARTITION")
        # reorder: the second replica becomes preferred, then a preferred election moves it
        new = [reps[1], reps[0], reps[2]]
        check(alter_reassign(c, via, "el", 0, new) == 0, "reorder refused")
        wait_until(lambda: c.raw_partitions("el", via)[0]["replicas"] == new, 10 * SLOW,
                   what="reordered replicas %r" % new)
        check(c.raw_partitions("el", via)[0]["leader"] == reps[0], "leader moved too early")
        check(elect(c, via, 0, {"el": [0]}) == {("el", 0): 0}, "preferred election failed")
        wait_until(lambda: c.raw_partitions("el", via)[0]["leader"] == new[0], 10 * SLOW,
                   what="preferred leader %d" % new[0])
        # all partitions: nothing left to do, so an empty answer
        check(elect(c, via, 0, None) == {}, "election for all partitions not empty")
        # unclean: RF 2 on two brokers; one shuts down (leaves the ISR), comes back out of
        # sync, then the other dies: no in-sync replica is alive
        # the two replicas are the non-controller nodes, so the quorum survives
        from confluent_kafka.admin import NewTopic
        a, b = [i for i in c.live_ids() if i != ctl]
        admin = c.admin(via)
        fut = admin.create_topics([NewTopic("uc", 1, replica_assignment=[[a, b]])],
                                  operation_timeout=10 * SLOW)["uc"]
        fut.result(20 * SLOW)
        c.wait_topic("uc", 1)
        check(c.raw_partitions("uc", via)[0]["replicas"] == [a, b], "uc assignment")
        c.stop(b)
        wait_until(lambda: c.raw_partitions("uc", ctl)[0]["isr"] == [a], 15 * SLOW,
                   what="ISR [%d] after %d stopped" % (a, b))
        c.restart(b)
        c.kill(a)
        wait_until(lambda: c.raw_partitions("uc", ctl)[0]["leader"] == -1, 20 * SLOW,
                   what="uc offline after %d died" % a)
        check(elect(c, ctl, 0, {"uc": [0]}) == {("uc", 0): 80},
              "PREFERRED_LEADER_NOT_AVAILABLE expected")
        check(elect(c, b, 1, {"uc": [0]}) == {("uc", 0): 0}, "unclean election failed")
        wait_until(lambda: c.raw_partitions("uc", ctl)[0]["leader"] == b, 10 * SLOW,
                   what="unclean leader %d" % b)
        check(c.raw_partitions("uc", ctl)[0]["isr"] == [b], "ISR after unclean election")


@test
def test_auto_leader_rebalance_moves_leadership_to_preferred():
    """auto.leader.rebalance.enable with leader.imbalance.check.interval.seconds=1: once a
    reorder makes another in-sync replica the preferred one, the controller moves leadership
    to it by itself (no ElectLeaders)."""
    with Cluster(3, {"leader.imbalance.check.interval.seconds": 1,
                     "auto.leader.rebalance.enable": "true"}) as c:
        ctl, via = non_controller(c)
        check(c.create_topic("rb", 3, 3, via=via) is None, "create rb")
        c.wait_topic("rb", 3)
        before = c.raw_partitions("rb", via)
        for p, info in before.items():
            reps = info["replicas"]
            check(info["leader"] == reps[0], "leader of %d is not preferred: %r" % (p, info))
            check(alter_reassign(c, via, "rb", p, reps[1:] + reps[:1]) == 0, "reorder %d" % p)
        t0 = time.monotonic()

        def rebalanced():
            now = c.raw_partitions("rb", via)
            return all(q["leader"] == q["replicas"][0] == before[p]["replicas"][1]
                       for p, q in now.items())
        wait_until(rebalanced, 10 * SLOW, what="leaders moved to the new preferred replicas")
        comment("leaders moved to preferred replicas %.1fs after the reorder"
                % (time.monotonic() - t0))


@test
def test_partition_reassignments_recorded_listed_cancelled():
    with Cluster(3) as c:
        from confluent_kafka.admin import AdminClient, NewTopic
        ctl, via = non_controller(c)
        # Partition 0 on `via` and the controller: the node added later (paused for a while)
        # is neither the controller nor the node the requests go to.
        a = AdminClient({"bootstrap.servers": c.node(via).bootstrap})
        a.create_topics([NewTopic("ra", num_partitions=2, replica_assignment=[[via, ctl], [ctl, via]])])["ra"] \
            .result(timeout=15 * SLOW)
        c.wait_topic("ra", 2)
        reps = c.raw_partitions("ra", via)[0]["replicas"]
        check(reps == [via, ctl], "replicas of ra-0: %r" % reps)
        outsider = ({1, 2, 3} - set(reps)).pop()
        # Paused, the added replica cannot catch up, so the reassignment stays pending.
        os.kill(c.node(outsider).proc.pid, signal.SIGSTOP)
        try:
            reassign_then_cancel(c, via, reps, outsider)
        finally:
            os.kill(c.node(outsider).proc.pid, signal.SIGCONT)
        # Running, it fetches the partition, joins the ISR, and the reassignment completes
        # (KIP-455): the target becomes the replica set.
        c.wait_formed()
        check(alter_reassign(c, via, "ra", 0, [outsider, reps[0]]) == 0, "reassign refused")
        wait_until(lambda: c.raw_partitions("ra", via)[0]["replicas"] == [outsider, reps[0]]
                   and ("ra", 0) not in list_reassign(c, via), 20 * SLOW,
                   what="reassignment completed")


def partition_dirs(c, node, topic):
    return sorted(e for e in os.listdir(c.node(node).data_dir) if e.startswith(topic + "-"))


def segments(c, node, topic, part):
    d = os.path.join(c.node(node).data_dir, "%s-%d" % (topic, part))
    if not os.path.isdir(d):
        return None
    return {f: open(os.path.join(d, f), "rb").read() for f in os.listdir(d) if f.endswith(".log")}


def produce_n(c, topic, part, prefix, n):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": c.live_bootstrap(), "acks": "all", "linger.ms": 5})
    errs = []
    for i in range(n):
        p.produce(topic, value=b"%s-%d" % (prefix, i), partition=part,
                  on_delivery=lambda e, m: errs.append(e))
    check(p.flush(30 * SLOW) == 0 and len(errs) == n and not any(errs),
          "produce to %s-%d: %r" % (topic, part, [e for e in errs if e][:3]))


@test
def test_replica_moved_away_is_deleted_and_can_come_back():
    with Cluster(3) as c:
        from confluent_kafka.admin import AdminClient, NewTopic
        c.wait_formed()
        a = AdminClient({"bootstrap.servers": c.live_bootstrap()})
        a.create_topics([NewTopic("mv", num_partitions=2, replica_assignment=[[1, 2], [1, 2]])])[
            "mv"].result(timeout=15 * SLOW)
        c.wait_topic("mv", 2)
        for part in (0, 1):
            produce_n(c, "mv", part, b"a", 100)
        check(partition_dirs(c, 2, "mv") == ["mv-0", "mv-1"], partition_dirs(c, 2, "mv"))
        check(alter_reassign(c, 1, "mv", 0, [1, 3]) == 0, "reassign refused")
        wait_until(lambda: c.raw_partitions("mv", 1)[0]["replicas"] == [1, 3]
                   and ("mv", 0) not in list_reassign(c, 1), 20 * SLOW,
                   what="mv-0 moved to [1, 3]")
        wait_until(lambda: partition_dirs(c, 2, "mv") == ["mv-1"], 10 * SLOW,
                   what="node 2 deleting mv-0 (dirs: %r)" % partition_dirs(c, 2, "mv"))
        check(segments(c, 3, "mv", 0) is not None, "node 3 holds mv-0")
        # Back to node 2: it starts from an empty log and copies everything again.
        check(alter_reassign(c, 1, "mv", 0, [1, 2]) == 0, "reassign back refused")
        wait_until(lambda: c.raw_partitions("mv", 1)[0]["replicas"] == [1, 2]
                   and ("mv", 0) not in list_reassign(c, 1), 20 * SLOW,
                   what="mv-0 moved back to [1, 2]")
        produce_n(c, "mv", 0, b"b", 10)
        wait_until(lambda: segments(c, 2, "mv", 0) and
                   segments(c, 2, "mv", 0) == segments(c, 1, "mv", 0), 15 * SLOW,
                   what="node 2's mv-0 byte-identical with the leader's")
        wait_until(lambda: partition_dirs(c, 3, "mv") == [], 10 * SLOW,
                   what="node 3 deleting mv-0")
        # Deleted and re-created at once: the new topic starts empty on every replica.
        a.delete_topics(["mv"])["mv"].result(timeout=15 * SLOW)
        deadline = time.monotonic() + 15 * SLOW
        while True:
            try:
                a.create_topics([NewTopic("mv", num_partitions=1,
                                          replica_assignment=[[1, 2]])])["mv"].result(
                    timeout=15 * SLOW)
                break
            except Exception as e:  # noqa: BLE001 - TOPIC_ALREADY_EXISTS while deleting
                check(time.monotonic() < deadline, "re-create: %s" % e)
                time.sleep(0.2)
        c.wait_topic("mv", 1)
        produce_n(c, "mv", 0, b"new", 1)
        for node in (1, 2):
            wait_until(lambda: segments(c, node, "mv", 0) is not None and
                       b"a-0" not in b"".join(segments(c, node, "mv", 0).values()) and
                       b"new-0" in b"".join(segments(c, node, "mv", 0).values()), 10 * SLOW,
                       what="node %d: re-created mv-0 holds only the new record" % node)


def reassign_then_cancel(c, via, reps, outsider):
    check(alter_reassign(c, via, "ra", 0, [outsider, reps[0]]) == 0, "reassign refused")
    ongoing = wait_until(lambda: list_reassign(c, via).get(("ra", 0)), 10 * SLOW,
                         what="ongoing reassignment listed")
    replicas, adding, removing = ongoing
    check(adding == [outsider] and removing == [reps[1]], "adding/removing %r" % (ongoing,))
    check(sorted(replicas) == [1, 2, 3] and replicas[:2] == [outsider, reps[0]],
          "replicas during reassignment %r" % replicas)
    check(alter_reassign(c, via, "ra", 0, [1, 1]) == 39, "duplicate target accepted")
    check(alter_reassign(c, via, "ra", 0, [7]) == 39, "unknown broker accepted")
    check(alter_reassign(c, via, "nope", 0, [1]) == 3, "unknown topic accepted")
    check(alter_reassign(c, via, "ra", 0, None) == 0, "cancel refused")
    wait_until(lambda: ("ra", 0) not in list_reassign(c, via), 10 * SLOW,
               what="reassignment gone after cancel")
    check(c.raw_partitions("ra", via)[0]["replicas"] == reps, "replicas after cancel")
    check(alter_reassign(c, via, "ra", 0, None) == 85, "NO_REASSIGNMENT_IN_PROGRESS expected")


@test
def test_cli_cluster_info_shows_quorum():
    with Cluster(3) as c:
        ctl = c.wait_controller()
        via = next(i for i in c.live_ids() if i != ctl)
        out = subprocess.run([GREGOR_BIN, "cluster", "info", "--json", "-b",
                              c.node(via).bootstrap], capture_output=True, text=True,
                             timeout=30)
        check(out.returncode == 0, "cluster info: %s" % out.stderr)
        info = json.loads(out.stdout)
        check(info["controller"] == ctl and info["quorum"]["leader"] == ctl, info)
        check(sorted(v["id"] for v in info["quorum"]["voters"]) == [1, 2, 3], info)
        check(sorted(b["id"] for b in info["brokers"]) == [1, 2, 3], info)


@test
def test_idempotent_producer_and_group_on_the_cluster():
    from confluent_kafka import Consumer, Producer
    with Cluster(3) as c:
        ctl, via = non_controller(c)
        check(c.create_topic("ip", 3, 3, via=via) is None, "create ip")
        c.wait_topic("ip", 3)
        p = Producer({"bootstrap.servers": c.node(via).bootstrap, "enable.idempotence": True,
                      "acks": "all", "log_level": 0})
        errors = []
        for i in range(300):
            p.produce("ip", b"%d" % i, partition=i % 3,
                      on_delivery=lambda e, m: errors.append(e) if e else None)
        check(p.flush(30 * SLOW) == 0 and not errors, "idempotent delivery: %r" % errors[:3])
        cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "g-cluster",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "log_level": 0})
        cons.subscribe(["ip"])
        seen = []
        deadline = time.monotonic() + 60 * SLOW
        while len(seen) < 300 and time.monotonic() < deadline:
            m = cons.poll(0.5)
            if m is not None and m.error() is None:
                seen.append((m.partition(), int(m.value())))
        check(len(seen) == 300, "consumed %d of 300" % len(seen))
        for part in range(3):
            vals = [v for q, v in seen if q == part]
            check(vals == sorted(vals), "partition %d out of order" % part)
        cons.commit(asynchronous=False)
        committed = cons.committed([__import__("confluent_kafka").TopicPartition("ip", q)
                                    for q in range(3)], timeout=10)
        check(sorted(tp.offset for tp in committed) == [100, 100, 100],
              "committed %r" % [(tp.partition, tp.offset) for tp in committed])
        cons.close()
        parts = c.raw_partitions("__consumer_offsets", via)
        check(len(parts) == 50 and all(len(q["replicas"]) == 3 for q in parts.values()),
              "__consumer_offsets replicas: %r" % {k: v["replicas"] for k, v in
                                                   list(parts.items())[:3]})


if __name__ == "__main__":
    run_tests()
