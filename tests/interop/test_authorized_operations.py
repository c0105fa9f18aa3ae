"""KIP-430 authorized operations with raw requests (clients here cannot show the bitfields).

Gregor has no authorizer, so, as Kafka without one, a request that asks gets every operation
of the resource as a 32-bit field (bit n = Kafka's AclOperation code n): topic READ, WRITE,
CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (3576); cluster CREATE,
ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE (8096);
group READ, DESCRIBE, DELETE (328). A request that does not ask gets INT32_MIN.
asan-smoke
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Broker, KafkaRaw, Reader, TAGS_NONE, array, boolean,  # noqa: E402
                     check, i8, i32, metadata_body, nbytes, parse_metadata, run_tests, string,
                     test)
from kafka_records import ensure_topic  # noqa: E402

METADATA, FIND_COORDINATOR, DESCRIBE_GROUPS, DESCRIBE_CLUSTER = 3, 10, 15, 60
NOT_REQUESTED = -2147483648
# Kafka's AclOperation codes.
READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE = 3, 4, 5, 6, 7, 8
CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE = 9, 10, 11, 12


def bits(*ops):
    return sum(1 << op for op in ops)


TOPIC_OPS = bits(READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS)
CLUSTER_OPS = bits(CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS,
                   IDEMPOTENT_WRITE)
GROUP_OPS = bits(READ, DESCRIBE, DELETE)


def metadata(k, version, topics, **kw):
    return parse_metadata(k.call(METADATA, version, metadata_body(version, topics, False, **kw)),
                          version)


@test
def test_metadata_authorized_operations():
    """Metadata v8 and v10 (cluster and topic fields), v12 (topic only; the cluster field is
    gone from v11): asked, every topic, existing or not, gets TOPIC_OPS and the cluster
    CLUSTER_OPS; not asked, both are INT32_MIN."""
    with Broker() as b, KafkaRaw(b) as k:
        ensure_topic(k, "ops", 1)
        for v in (8, 10):
            md = metadata(k, v, ["ops", "absent"], cluster_ops=True, topic_ops=True)
            got = {t["name"]: (t["error_code"], t["authorized_ops"]) for t in md["topics"]}
            check(got == {"ops": (0, TOPIC_OPS), "absent": (3, TOPIC_OPS)},
                  "v%d topics %r" % (v, got))
            check(md["cluster_authorized_ops"] == CLUSTER_OPS,
                  "v%d cluster %r" % (v, md["cluster_authorized_ops"]))
            md = metadata(k, v, ["ops"])
            check(md["topics"][0]["authorized_ops"] == NOT_REQUESTED and
                  md["cluster_authorized_ops"] == NOT_REQUESTED, "v%d not asked: %r" % (v, md))
            md = metadata(k, v, ["ops"], cluster_ops=True)
            check(md["topics"][0]["authorized_ops"] == NOT_REQUESTED and
                  md["cluster_authorized_ops"] == CLUSTER_OPS, "v%d cluster only: %r" % (v, md))
        md = metadata(k, 12, None, topic_ops=True)
        got = {t["name"]: t["authorized_ops"] for t in md["topics"]}
        check(got.get("ops") == TOPIC_OPS, "v12 all topics %r" % got)
        md = metadata(k, 12, None)
        check(all(t["authorized_ops"] == NOT_REQUESTED for t in md["topics"]), "v12 not asked")


def describe_cluster(k, include):
    r = Reader(k.call(DESCRIBE_CLUSTER, 1, boolean(include) + i8(1) + TAGS_NONE))
    r.int32()  # throttle
    err, _msg, _etype, _cluster, _ctl = r.int16(), r.cstring(), r.int8(), r.cstring(), r.int32()
    r.carray(lambda r: (r.int32(), r.cstring(), r.int32(), r.cstring(), r.tagged_fields()))
    ops = r.int32()
    r.tagged_fields()
    return err, ops


@test
def test_describe_cluster_authorized_operations():
    """DescribeCluster v1: asked, CLUSTER_OPS; not asked, INT32_MIN."""
    with Broker() as b, KafkaRaw(b) as k:
        check(describe_cluster(k, True) == (0, CLUSTER_OPS), "asked")
        check(describe_cluster(k, False) == (0, NOT_REQUESTED), "not asked")


def describe_groups_v3(k, groups, include):
    r = Reader(k.call(DESCRIBE_GROUPS, 3, array([string(g) for g in groups]) + boolean(include)))
    r.int32()

    def group(r):
        err, gid, state, _ptype, _pdata = r.int16(), r.string(), r.string(), r.string(), r.string()
        r.array(lambda r: (r.string(), r.string(), r.string(), r.bytes_(), r.bytes_()))
        return gid, err, state, r.int32()
    return r.array(group)


@test
def test_describe_groups_authorized_operations():
    """DescribeGroups v3 for a group with a member and one that does not exist (Dead, no
    error): asked, GROUP_OPS for both; not asked, INT32_MIN. (kafka-python 2.0.2's
    describe_consumer_groups(include_authorized_operations=True) drops the field: None.)"""
    with Broker({"group.initial.rebalance.delay.ms": 0}) as b, KafkaRaw(b) as k:
        deadline = time.monotonic() + 15 * SLOW
        while True:
            r = Reader(k.call(FIND_COORDINATOR, 0, string("g-ops")))
            if r.int16() == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        join = (string("g-ops") + i32(6000) + string("") + string("consumer") +
                array([string("range") + nbytes(b"")]))
        while True:  # the group's shard may still be loading (COORDINATOR_LOAD_IN_PROGRESS)
            err = Reader(k.call(11, 0, join, timeout=20)).int16()
            if err != 14 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        check(err == 0, "join: error %d" % err)
        while True:  # g-none's shard may still be loading too (COORDINATOR_LOAD_IN_PROGRESS)
            got = describe_groups_v3(k, ["g-ops", "g-none"], True)
            if all(e != 14 for _, e, _, _ in got) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        check([(g, e, o) for g, e, _, o in got] ==
              [("g-ops", 0, GROUP_OPS), ("g-none", 0, GROUP_OPS)], "asked: %r" % got)
        got = describe_groups_v3(k, ["g-ops"], False)
        check(got[0][1] == 0 and got[0][3] == NOT_REQUESTED, "not asked: %r" % got)


if __name__ == "__main__":
    run_tests()
