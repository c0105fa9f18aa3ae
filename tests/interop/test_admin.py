"""Topic administration with real admin clients (issue: cluster metadata on libraft).

confluent-kafka's AdminClient and kafka-python's KafkaAdminClient create, describe, alter and
delete topics against a real broker; kcat -L sees the result; every Kafka error case the
controller produces is asserted through a real client; and a SIGKILL right after CreateTopics
returns does not lose the topic (it is in the raft log, so it is back after restart).
asan-smoke
"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Broker, check, comment, run_tests, test, wait_until  # noqa: E402


def confluent_admin(b):
    from confluent_kafka.admin import AdminClient
    return AdminClient({"bootstrap.servers": b.bootstrap, "socket.timeout.ms": int(10000 * SLOW)})


def results(futures):
    """Maps each future of an admin call to None (success) or the KafkaError code name."""
    out = {}
    for k, f in futures.items():
        try:
            f.result(timeout=15 * SLOW)
            out[k] = None
        except Exception as e:  # KafkaException wraps KafkaError
            err = e.args[0] if e.args else e
            out[k] = err.name() if hasattr(err, "name") else str(err)
    return out


@test
def test_confluent_create_describe_alter_delete():
    """Create a 3-partition topic with a config override, see it in metadata and kcat -L,
    describe its configs (override reported with TOPIC source, others default), alter
    retention.ms, grow it to 5 partitions, delete it: it disappears from metadata and its
    partition directories are removed from log.dirs."""
    from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic
    with Broker() as b:
        a = confluent_admin(b)
        r = results(a.create_topics([NewTopic("orders", 3, 1, config={"retention.ms": "3600000"})]))
        check(r == {"orders": None}, "create: %r" % r)
        md = a.list_topics(timeout=10)
        check(len(md.topics["orders"].partitions) == 3, "partitions %r" % md.topics["orders"])
        out = subprocess.run(["kcat", "-b", b.bootstrap, "-L", "-t", "orders"],
                             capture_output=True, text=True, timeout=30).stdout
        check('topic "orders" with 3 partitions' in out, "kcat -L: %s" % out)
        cfg = list(a.describe_configs([ConfigResource("topic", "orders")]).values())[0].result()
        check(cfg["retention.ms"].value == "3600000", "retention.ms %r" % cfg["retention.ms"])
        check(not cfg["retention.ms"].is_default, "override reported as default")
        check(cfg["cleanup.policy"].value == "delete", "cleanup.policy %r" % cfg["cleanup.policy"])
        r = results(a.alter_configs([ConfigResource("topic", "orders",
                                                    set_config={"retention.ms": "60000"})]))
        check(list(r.values()) == [None], "alter: %r" % r)
        cfg = list(a.describe_configs([ConfigResource("topic", "orders")]).values())[0].result()
        check(cfg["retention.ms"].value == "60000", "after alter %r" % cfg["retention.ms"])
        r = results(a.create_partitions([NewPartitions("orders", 5)]))
        check(r == {"orders": None}, "create_partitions: %r" % r)
        wait_until(lambda: len(a.list_topics(timeout=10).topics["orders"].partitions) == 5, 10,
                   what="5 partitions")
        dirs = [d for d in os.listdir(b.data_dir) if d.startswith("orders-")]
        check(len(dirs) == 5, "partition dirs %r" % dirs)
        r = results(a.delete_topics(["orders"]))
        check(r == {"orders": None}, "delete: %r" % r)
        wait_until(lambda: "orders" not in a.list_topics(timeout=10).topics, 10, what="gone")
        wait_until(lambda: not [d for d in os.listdir(b.data_dir) if d.startswith("orders-")],
                   15, what="partition directories removed")


@test
def test_confluent_error_codes():
    """Each error the Kafka protocol defines for topic admin, through a real client:
    TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION (bad characters, '..', 250 chars),
    INVALID_PARTITIONS (0 partitions; shrinking), INVALID_REPLICATION_FACTOR (more replicas than
    brokers), INVALID_CONFIG (unknown name, bad value), UNKNOWN_TOPIC_OR_PARTITION (delete or
    describe a missing topic). Nothing is created by the failing calls."""
    from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic
    with Broker() as b:
        a = confluent_admin(b)
        check(results(a.create_topics([NewTopic("dup", 1, 1)])) == {"dup": None}, "first create")
        cases = [
            (NewTopic("dup", 1, 1), "TOPIC_ALREADY_EXISTS"),
            (NewTopic("bad name", 1, 1), "TOPIC_EXCEPTION"),
            (NewTopic("..", 1, 1), "TOPIC_EXCEPTION"),
            (NewTopic("x" * 250, 1, 1), "TOPIC_EXCEPTION"),
            (NewTopic("zero", 0, 1), "INVALID_PARTITIONS"),
            (NewTopic("rf", 1, 3), "INVALID_REPLICATION_FACTOR"),
            (NewTopic("cfg1", 1, 1, config={"no.such.config": "1"}), "INVALID_CONFIG"),
            (NewTopic("cfg2", 1, 1, config={"retention.ms": "soon"}), "INVALID_CONFIG"),
        ]
        for nt, want in cases:
            got = results(a.create_topics([nt]))
            check(list(got.values()) == [want], "%s: want %s got %r" % (nt.topic[:20], want, got))
        topics = set(a.list_topics(timeout=10).topics)
        check(topics == {"dup"}, "failed creates left topics behind: %r" % topics)
        r = results(a.create_partitions([NewPartitions("dup", 1)]))
        check(list(r.values()) == ["INVALID_PARTITIONS"], "same count: %r" % r)
        r = results(a.delete_topics(["missing"]))
        check(list(r.values()) == ["UNKNOWN_TOPIC_OR_PART"], "delete missing: %r" % r)
        r = results(a.describe_configs([ConfigResource("topic", "missing")]))
        check(list(r.values()) == ["UNKNOWN_TOPIC_OR_PART"], "describe missing: %r" % r)


@test
def test_create_partitions_with_replica_assignment():
    """CreatePartitions with an explicit replica assignment lists only the new partitions (as in
    Kafka): growing 1 -> 3 with [[1], [1]] succeeds and metadata shows 3 partitions led by broker
    1; an assignment whose length differs from the number of new partitions, that names an
    unregistered broker, or that names a broker twice is INVALID_REPLICA_ASSIGNMENT and adds
    nothing."""
    from confluent_kafka.admin import NewPartitions, NewTopic
    with Broker() as b:
        a = confluent_admin(b)
        check(results(a.create_topics([NewTopic("t", 1, 1)])) == {"t": None}, "create")
        r = results(a.create_partitions([NewPartitions("t", 3, replica_assignment=[[1], [1]])]))
        check(r == {"t": None}, "create_partitions with assignment: %r" % r)
        md = a.list_topics(topic="t", timeout=10).topics["t"]
        check(sorted(md.partitions) == [0, 1, 2], "partitions %r" % sorted(md.partitions))
        check(all(p.leader == 1 and p.replicas == [1] for p in md.partitions.values()),
              "replicas %r" % [(p.id, p.leader, p.replicas) for p in md.partitions.values()])
        bad = [
            NewPartitions("t", 5, replica_assignment=[[1]]),
            NewPartitions("t", 4, replica_assignment=[[7]]),
            NewPartitions("t", 4, replica_assignment=[[1, 1]]),
        ]
        for np in bad:
            r = results(a.create_partitions([np]))
            check(list(r.values()) == ["INVALID_REPLICA_ASSIGNMENT"],
                  "%r: %r" % (np.replica_assignment, r))
        n = len(a.list_topics(topic="t", timeout=10).topics["t"].partitions)
        check(n == 3, "failed calls changed the partition count to %d" % n)


@test
def test_kafka_python_admin():
    """kafka-python's KafkaAdminClient: create (with validate_only first: nothing created),
    list, describe configs, delete."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
    with Broker() as b:
        a = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=int(15000 * SLOW))
        try:
            a.create_topics([NewTopic("kp", 2, 1)], validate_only=True)
            check("kp" not in a.list_topics(), "validate_only created the topic")
            a.create_topics([NewTopic("kp", 2, 1, topic_configs={"cleanup.policy": "compact"})])
            check("kp" in a.list_topics(), "topics %r" % a.list_topics())
            res = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp")])
            entries = {c[0]: c[1] for c in res[0].resources[0][4]}
            check(entries.get("cleanup.policy") == "compact", "configs %r" % entries)
            a.delete_topics(["kp"])
            wait_until(lambda: "kp" not in a.list_topics(), 10, what="kp deleted")
        finally:
            a.close()


@test
def test_topic_survives_sigkill_right_after_create():
    """CreateTopics returns only after the metadata change is committed to the raft log, so a
    SIGKILL immediately afterwards cannot lose the topic: after restart it is listed with the
    same partition count and the same topic id."""
    from confluent_kafka.admin import NewTopic
    with Broker() as b:
        a = confluent_admin(b)
        r = results(a.create_topics([NewTopic("durable", 4, 1)]))
        check(r == {"durable": None}, "create %r" % r)
        b.kill()
        b.restart()
        a = confluent_admin(b)
        md = a.list_topics(timeout=10)
        check("durable" in md.topics and len(md.topics["durable"].partitions) == 4,
              "after restart: %r" % {k: len(v.partitions) for k, v in md.topics.items()})


@test
def test_auto_create_on_metadata():
    """Metadata for a missing topic creates it with num.partitions (auto.create.topics.enable
    defaults to true); with auto.create.topics.enable=false the topic is reported missing."""
    with Broker({"num.partitions": 3}) as b:
        out = subprocess.run(["kcat", "-b", b.bootstrap, "-L", "-t", "auto1"], capture_output=True,
                             text=True, timeout=30).stdout
        check('topic "auto1" with 3 partitions' in out, "kcat: %s" % out)
    with Broker({"auto.create.topics.enable": "false"}) as b:
        a = confluent_admin(b)
        md = a.list_topics(topic="nope", timeout=10)
        check(md.topics["nope"].error is not None, "topic created although disabled")


if __name__ == "__main__":
    run_tests()
