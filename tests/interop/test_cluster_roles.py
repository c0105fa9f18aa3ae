#!/usr/bin/python3
"""process.roles on real gregor nodes:

  * start-up errors with one line naming the rule broken: a controller-only node outside
    controller.quorum.voters, without voters, without a controller listener or without a
    client listener; a broker-only node (still refused: not supported yet) listed as a voter;
    an unknown role;
  * a cluster of 3 controller-only voters (nodes 1-3) and 2 broker,controller nodes (4, 5):
    Metadata lists only the two brokers, DescribeQuorum all 5 voters; a controller-only node
    lists only controller APIs in ApiVersions and closes the connection on Metadata/Produce
    (as Kafka's controller listener does for an API it does not enable); with a
    controller-only node as the active controller, brokers register and heartbeat with it,
    topics created through a broker (forwarded) or the controller node itself appear on both
    brokers, an idempotent confluent-kafka producer (producer ids allocated by the controller)
    writes RF=2 acks=all records that read back; SIGKILL of the active controller: another
    voter takes over and CreateTopics works again; a restarted broker re-registers and serves.
"""
import time

from harness import (API_VERSIONS, CREATE_TOPICS, DESCRIBE_CLUSTER, DESCRIBE_QUORUM, FETCH,
                     METADATA, PRODUCE, SLOW, Cluster, ConnectionClosed, check, comment,
                     free_port, poll, run_tests, start_expect_exit, test)

CONTROLLERS = (1, 2, 3)
BROKERS = (4, 5)
ROLES = {i: "controller" for i in CONTROLLERS}
PROPS = {"offsets.topic.replication.factor": 2, "default.replication.factor": 2}


def refusal(props, *words):
    status, err, out = start_expect_exit(props)
    text = err + out
    check(status != 0, "%r started (status %r)" % (props, status))
    lines = [ln for ln in text.splitlines() if all(w in ln for w in words)]
    check(len(lines) == 1, "want one line naming %r: %r" % (words, text[-600:]))


@test
def test_role_config_errors_name_the_rule():
    p1, p2 = free_port(), free_port()
    voters_other = "2@127.0.0.1:%d" % p2
    voters_self = "1@127.0.0.1:%d" % p1
    refusal({"process.roles": "controller"}, "process.roles=controller",
            "controller.quorum.voters")
    refusal({"process.roles": "controller", "controller.quorum.voters": voters_other},
            "node.id 1", "controller.quorum.voters")
    refusal({"process.roles": "controller", "controller.quorum.voters": voters_self},
            "controller.listener.names")
    refusal({"process.roles": "controller", "controller.quorum.voters": voters_self,
             "listeners": "CONTROLLER://127.0.0.1:%d" % p1}, "client listener")
    refusal({"process.roles": "broker"}, "process.roles=broker", "controller.quorum.voters")
    refusal({"process.roles": "broker", "controller.quorum.voters": voters_other},
            "process.roles=broker", "not supported yet")
    refusal({"process.roles": "broker,broker"}, "process.roles")
    refusal({"process.roles": "observer"}, "process.roles")


def connection_closed(c, via, api_key, version, body):
    try:
        with c.raw(via) as conn:
            conn.call(api_key, version, body)
    except (ConnectionClosed, OSError):
        return True
    return False


def make_controller_only_active(c):
    """Restarts broker nodes that hold the leadership until a controller-only node does."""
    active = c.wait_controller()
    for _ in range(6):
        if active in CONTROLLERS:
            return active
        comment("active controller is broker node %d: restarting it" % active)
        c.restart(active)
        active = c.wait_controller(exclude=(active,))
    check(active in CONTROLLERS, "no controller-only node became active (last %r)" % active)
    return active


def produce_and_read(c, topic, partitions, count):
    from confluent_kafka import Consumer, Producer, TopicPartition
    p = Producer({"bootstrap.servers": c.live_bootstrap(), "acks": "all",
                  "enable.idempotence": True, "message.timeout.ms": int(30000 * SLOW),
                  "retry.backoff.ms": 50, "topic.metadata.refresh.interval.ms": 500})
    acked = []
    for i in range(count):
        p.produce(topic, value=b"r-%d" % i, partition=i % partitions,
                  on_delivery=lambda err, msg: acked.append(err))
    check(p.flush(30 * SLOW) == 0, "undelivered messages")
    check(len(acked) == count and not any(acked), "acks: %r" % acked[:5])
    cons = Consumer({"bootstrap.servers": c.live_bootstrap(), "group.id": "roles",
                     "enable.auto.commit": False})
    got = []
    try:
        cons.assign([TopicPartition(topic, i, 0) for i in range(partitions)])
        deadline = time.monotonic() + 20 * SLOW
        while len(got) < count and time.monotonic() < deadline:
            m = cons.poll(0.5)
            if m is not None and m.error() is None:
                got.append(m.value())
    finally:
        cons.close()
    check(sorted(got) == sorted(b"r-%d" % i for i in range(count)),
          "read back %d of %d records" % (len(got), count))


def check_topic_on_brokers(c, topic, partitions):
    c.wait_topic(topic, partitions, via=list(c.live_broker_ids()))
    for via in c.live_broker_ids():
        for pnum, part in c.raw_partitions(topic, via).items():
            check(sorted(part["replicas"]) == list(BROKERS),
                  "node %d: %s-%d replicas %r (controller-only nodes host nothing)"
                  % (via, topic, pnum, part["replicas"]))


@test
def test_controller_only_voters_with_broker_nodes():
    with Cluster(5, PROPS, roles=ROLES) as c:
        for via in BROKERS:
            md = c.metadata(via, topics=[])
            ids = sorted(b["node_id"] for b in md["brokers"])
            check(ids == list(BROKERS), "node %d Metadata brokers %r" % (via, ids))
        for via in (1, 4):
            top, q = c.describe_quorum(via)
            check(top == 0 and sorted(q["voters"]) == [1, 2, 3, 4, 5],
                  "DescribeQuorum via %d: %r %r" % (via, top, q))

        with c.raw(1) as conn:
            keys = set(conn.api_versions(3)["api_keys"])
        for k in (API_VERSIONS, CREATE_TOPICS, DESCRIBE_QUORUM, DESCRIBE_CLUSTER):
            check(k in keys, "controller-only ApiVersions lacks %d: %r" % (k, sorted(keys)))
        for k in (PRODUCE, FETCH, METADATA):
            check(k not in keys, "controller-only ApiVersions lists %d: %r" % (k, sorted(keys)))
        check(connection_closed(c, 2, METADATA, 1, b"\xff\xff\xff\xff"),
              "Metadata to a controller-only node was answered")

        active = make_controller_only_active(c)
        comment("controller-only node %d is the active controller" % active)
        via = BROKERS[0]
        err, msg = c.create_topic_raw("roles-a", 3, 2, via=via)
        check(err == 0, "CreateTopics via broker %d: %d %s" % (via, err, msg))
        check_topic_on_brokers(c, "roles-a", 3)
        other = [i for i in CONTROLLERS if i != active][0]
        err, msg = c.create_topic_raw("roles-b", 1, 2, via=other)
        check(err == 0, "CreateTopics via controller %d: %d %s" % (other, err, msg))
        check_topic_on_brokers(c, "roles-b", 1)
        produce_and_read(c, "roles-a", 3, 300)

        c.kill(active)
        new = c.wait_controller(exclude=(active,))
        comment("SIGKILL of controller %d: node %d took over" % (active, new))
        err, msg = c.create_topic_raw("roles-c", 2, 2, via=BROKERS[1], read_timeout=30.0)
        check(err == 0, "CreateTopics after the failover: %d %s" % (err, msg))
        check_topic_on_brokers(c, "roles-c", 2)

        c.restart(BROKERS[1])
        c.wait_formed()
        check_topic_on_brokers(c, "roles-a", 3)

        def served():
            res = c.produce_raw(BROKERS[1], "roles-c", 0, b"after-restart")
            if res["error_code"] == 6:  # NOT_LEADER_OR_FOLLOWER: ask the leader instead
                leader = c.raw_partitions("roles-c", BROKERS[0])[0]["leader"]
                res = c.produce_raw(leader, "roles-c", 0, b"after-restart")
            return res["error_code"] == 0
        poll(served, 15, "a produce to roles-c-0 after the broker restart")
        c.restart(active)  # the killed controller rejoins the quorum
        top, q = c.describe_quorum(BROKERS[0])
        check(top == 0 and sorted(q["voters"]) == [1, 2, 3, 4, 5], "DescribeQuorum %r" % (q,))


if __name__ == "__main__":
    run_tests()
