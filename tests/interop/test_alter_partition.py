"""AlterPartition (56), the broker-to-controller API a partition leader uses to change its ISR,
against a three-node cluster with raw frames: not advertised in ApiVersions; a node that is
not the active controller answers NOT_CONTROLLER; a stale broker epoch is STALE_BROKER_EPOCH;
the leader shrinks its ISR with v1 (topic names), the response carries the new ISR and
partition epoch and every node's Metadata shows it; v3 (topic ids, ISR members with broker
epochs) expands it back; an unchanged ISR (v0) answers the current state.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (TAGS_NONE, Cluster, Reader, carray, check, comment, cstring,  # noqa: E402
                     i8, i16, i32, i64, poll, run_tests, test)

ALTER_PARTITION = 56
NOT_CONTROLLER, STALE_BROKER_EPOCH = 41, 77


def alter_body(version, broker, epoch, topic, partition, leader_epoch, partition_epoch, isr,
               isr_epochs=None):
    """AlterPartitionRequest (flexible from v0): one topic (name before v2, id from v2), one
    partition; v3 sends the ISR as (broker id, broker epoch) pairs."""
    def part(_):
        b = i32(partition) + i32(leader_epoch)
        if version >= 3:
            b += carray(list(zip(isr, isr_epochs)), lambda m: i32(m[0]) + i64(m[1]) + TAGS_NONE)
        else:
            b += carray(isr, i32)
        if version >= 1:
            b += i8(0)  # LeaderRecoveryState RECOVERED
        return b + i32(partition_epoch) + TAGS_NONE

    def tdata(_):
        head = topic if version >= 2 else cstring(topic)
        return head + carray([0], part) + TAGS_NONE
    return i32(broker) + i64(epoch) + carray([0], tdata) + TAGS_NONE


def parse_alter(body, version):
    r = Reader(body)
    out = {"throttle_ms": r.int32(), "error_code": r.int16()}

    def part(rr):
        p = {"partition": rr.int32(), "error_code": rr.int16(), "leader": rr.int32(),
             "leader_epoch": rr.int32(), "isr": rr.carray(lambda x: x.int32())}
        if version >= 1:
            p["leader_recovery_state"] = rr.int8()
        p["partition_epoch"] = rr.int32()
        rr.tagged_fields()
        return p

    def topic(rr):
        t = {"topic": rr.uuid() if version >= 2 else rr.cstring()}
        t["partitions"] = rr.carray(part)
        rr.tagged_fields()
        return t
    out["topics"] = r.carray(topic)
    r.tagged_fields()
    r.end()
    return out


def call(c, via, version, body):
    with c.raw(via) as k:
        return parse_alter(k.call(ALTER_PARTITION, version, body, flexible=True), version)


def broker_epoch(c, node_id):
    """The node's current broker epoch, from its lifecycle log line."""
    found = re.findall(r"broker %d epoch (\d+) unfenced" % node_id, c.node(node_id).log_text())
    check(found, "node %d logged no unfenced broker epoch" % node_id)
    return int(found[-1])


@test
def test_leader_shrinks_and_expands_isr_through_the_controller():
    with Cluster(3) as c:
        active = c.wait_controller()
        with c.raw(active) as k:
            keys = k.api_versions(3)["api_keys"]
        check(ALTER_PARTITION not in keys, "AlterPartition is advertised in ApiVersions")
        c.create_topic_raw("isr", 1, 3, via=active)
        c.wait_topic("isr", 1)
        md = c.metadata(active, topics=["isr"], version=10)
        t = md["topics"][0]
        p = t["partitions"][0]
        leader, le, isr = p["leader"], p["leader_epoch"], p["isr"]
        check(sorted(isr) == [1, 2, 3], "initial ISR %r" % isr)
        epoch = poll(lambda: broker_epoch(c, leader), 10, "leader's broker epoch")
        comment("leader %d epoch %d, leader epoch %d, active controller %d"
                % (leader, epoch, le, active))

        other = [i for i in c.ids if i != active][0]
        r = call(c, other, 2, alter_body(2, leader, epoch, t["topic_id"], 0, le, 0, isr))
        check(r["error_code"] == NOT_CONTROLLER and r["topics"] == [],
              "node %d (not the controller): %r" % (other, r))

        r = call(c, active, 1, alter_body(1, leader, epoch + 1000, "isr", 0, le, 0, isr))
        check(r["error_code"] == STALE_BROKER_EPOCH and r["topics"] == [],
              "stale broker epoch: %r" % r)

        shrunk = [leader] + [i for i in isr if i != leader][:1]
        r = call(c, active, 1, alter_body(1, leader, epoch, "isr", 0, le, 0, shrunk))
        check(r["error_code"] == 0 and len(r["topics"]) == 1 and r["topics"][0]["topic"] == "isr",
              "shrink: %r" % r)
        got = r["topics"][0]["partitions"][0]
        check(got["error_code"] == 0 and got["isr"] == shrunk and got["leader"] == leader and
              got["leader_epoch"] == le and got["partition_epoch"] == 1 and
              got["leader_recovery_state"] == 0, "shrink result %r, want ISR %r" % (got, shrunk))

        def shows(want):
            for i in c.ids:
                seen = c.raw_partitions("isr", i)[0]["isr"]
                check(seen == want, "node %d Metadata ISR %r, want %r" % (i, seen, want))
            return True
        poll(lambda: shows(shrunk), 10, "every node's Metadata shows the shrunk ISR")

        epochs = [broker_epoch(c, i) for i in isr]
        r = call(c, active, 3, alter_body(3, leader, epoch, t["topic_id"], 0, le, 1, isr, epochs))
        got = r["topics"][0]["partitions"][0] if r["topics"] else r
        check(r["error_code"] == 0 and r["topics"][0]["topic"] == t["topic_id"] and
              got["error_code"] == 0 and got["isr"] == isr and got["partition_epoch"] == 2,
              "expand (v3): %r" % r)
        poll(lambda: shows(isr), 10, "every node's Metadata shows the full ISR again")

        r = call(c, active, 0, alter_body(0, leader, epoch, "isr", 0, le, 2, isr))
        got = r["topics"][0]["partitions"][0] if r["topics"] else r
        check(got.get("error_code") == 0 and got["isr"] == isr and got["partition_epoch"] == 2,
              "unchanged ISR (v0): %r" % r)


if __name__ == "__main__":
    run_tests()
