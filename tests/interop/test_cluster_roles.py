#!/usr/bin/python3
"""process.roles on real gregor nodes:

  * start-up errors with one line naming the rule broken: a controller-only node outside
    controller.quorum.voters, without voters, without a controller listener or without a
    client listener; a broker-only node listed as a voter, with a controller listener, without
    controller.quorum.bootstrap.servers or without metadata.observer.listener; unknown roles;
  * a cluster of 3 controller-only voters (nodes 1-3) and 2 broker-only nodes (4, 5), which
    receive the metadata log as libraft standbys: Metadata lists only the two brokers,
    DescribeQuorum the 3 voters and the 2 brokers as observers; a controller-only node lists
    only controller APIs in ApiVersions and closes the connection on Metadata (as Kafka's
    controller listener does for an API it does not enable); brokers register and heartbeat
    with the active controller; topics created through a broker (forwarded) or through a
    controller node appear on both brokers, placed only on them; an idempotent confluent-kafka
    producer (producer ids allocated by the controller) writes RF=2 acks=all records that read
    back; SIGKILL of the active controller: another voter takes over and CreateTopics works
    again; a restarted broker-only node re-registers and serves;
  * DescribeCluster v1 (KIP-919): controllers from a controller node, MISMATCHED_ENDPOINT_TYPE
    for brokers asked of a controller or controllers asked of a broker;
  * all three kinds in one cluster (controller-only, combined, broker-only); one controller
    voter with two broker-only nodes.
Runs under ThreadSanitizer too (tsan-smoke): broker-only nodes forward requests to the
controller while they shut down (a race on the forwarder's memory was found this way).
"""
import time

from harness import (API_VERSIONS, CREATE_TOPICS, DESCRIBE_CLUSTER, DESCRIBE_QUORUM, FETCH,
                     METADATA, PRODUCE, SLOW, TAGS_NONE, Cluster, ConnectionClosed, boolean,
                     check, comment, free_port, i8, parse_describe_cluster, poll, run_tests,
                     start_expect_exit, test)

CONTROLLERS = (1, 2, 3)
BROKERS = (4, 5)
ROLES = dict([(i, "controller") for i in CONTROLLERS] + [(i, "broker") for i in BROKERS])
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
    refusal({"process.roles": "broker", "controller.quorum.voters": voters_self},
            "process.roles=broker", "node.id 1")
    refusal({"process.roles": "broker", "controller.quorum.voters": voters_other,
             "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d" % (p1, p2)},
            "process.roles=broker", "controller.listener.names")
    refusal({"process.roles": "broker", "controller.quorum.voters": voters_other},
            "process.roles=broker", "controller.quorum.bootstrap.servers")
    refusal({"process.roles": "broker", "controller.quorum.voters": voters_other,
             "controller.quorum.bootstrap.servers": "127.0.0.1:%d" % p2},
            "process.roles=broker", "metadata.observer.listener")
    refusal({"process.roles": "broker,broker"}, "process.roles")
    refusal({"process.roles": "observer"}, "process.roles")


def connection_closed(c, via, api_key, version, body):
    try:
        with c.raw(via) as conn:
            conn.call(api_key, version, body)
    except (ConnectionClosed, OSError):
        return True
    return False


def describe_cluster_v1(c, via, endpoint_type):
    with c.raw(via) as conn:
        body = conn.call(DESCRIBE_CLUSTER, 1, boolean(False) + i8(endpoint_type) + TAGS_NONE)
    return parse_describe_cluster(body, 1)


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
def test_controller_only_voters_with_broker_only_nodes():
    with Cluster(5, PROPS, roles=ROLES) as c:
        for via in BROKERS:
            md = c.metadata(via, topics=[])
            ids = sorted(b["node_id"] for b in md["brokers"])
            check(ids == list(BROKERS), "node %d Metadata brokers %r" % (via, ids))
        for via in (1, 4):
            top, q = c.describe_quorum(via)
            check(top == 0 and sorted(q["voters"]) == list(CONTROLLERS) and
                  sorted(q["observers"]) == list(BROKERS),
                  "DescribeQuorum via %d: %r %r" % (via, top, q))

        with c.raw(1) as conn:
            keys = set(conn.api_versions(3)["api_keys"])
        for k in (API_VERSIONS, CREATE_TOPICS, DESCRIBE_QUORUM, DESCRIBE_CLUSTER):
            check(k in keys, "controller-only ApiVersions lacks %d: %r" % (k, sorted(keys)))
        for k in (PRODUCE, FETCH, METADATA):
            check(k not in keys, "controller-only ApiVersions lists %d: %r" % (k, sorted(keys)))
        check(connection_closed(c, 2, METADATA, 1, b"\xff\xff\xff\xff"),
              "Metadata to a controller-only node was answered")

        active = c.wait_controller()
        check(active in CONTROLLERS, "active controller %r is not a controller node" % active)
        dc = describe_cluster_v1(c, 2, 2)  # KIP-919: controllers, from a controller
        check(dc["error_code"] == 0 and dc["controller_id"] == active and
              active in [b["node_id"] for b in dc["brokers"]],
              "DescribeCluster(controllers) via 2: %r" % dc)
        check(describe_cluster_v1(c, 2, 1)["error_code"] == 114, "brokers asked of a controller")
        check(describe_cluster_v1(c, 4, 2)["error_code"] == 114, "controllers asked of a broker")
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
        c.wait_controller()


@test
def test_mixed_roles_in_one_cluster():
    """Node 1 controller-only, 2 and 3 combined, 4 broker-only."""
    with Cluster(4, {"offsets.topic.replication.factor": 3},
                 roles={1: "controller", 4: "broker"}) as c:
        brokers = [2, 3, 4]
        for via in brokers:
            ids = sorted(b["node_id"] for b in c.metadata(via, topics=[])["brokers"])
            check(ids == brokers, "node %d Metadata brokers %r" % (via, ids))
        top, q = c.describe_quorum(4)
        check(top == 0 and sorted(q["voters"]) == [1, 2, 3] and sorted(q["observers"]) == [4],
              "DescribeQuorum via 4: %r" % (q,))
        err, msg = c.create_topic_raw("mixed", 3, 3, via=4)
        check(err == 0, "CreateTopics via broker-only node 4: %d %s" % (err, msg))
        leaders = c.wait_topic("mixed", 3, via=brokers)
        check(set(leaders.values()) <= set(brokers), "leaders %r" % leaders)
        for p, leader in leaders.items():
            res = c.produce_raw(leader, "mixed", p, b"v")
            check(res["error_code"] == 0, "produce to mixed-%d on %d: %r" % (p, leader, res))


@test
def test_one_controller_voter_and_broker_only_nodes():
    """A single voter: the brokers derive the same cluster id from it and observe its log."""
    with Cluster(3, {"offsets.topic.replication.factor": 2},
                 roles={1: "controller", 2: "broker", 3: "broker"}) as c:
        top, q = c.describe_quorum(2)
        check(top == 0 and sorted(q["voters"]) == [1] and sorted(q["observers"]) == [2, 3],
              "DescribeQuorum via 2: %r" % (q,))
        err, msg = c.create_topic_raw("solo", 2, 2, via=3)
        check(err == 0, "CreateTopics via 3: %d %s" % (err, msg))
        c.wait_topic("solo", 2, via=[2, 3])


if __name__ == "__main__":
    run_tests()
