"""Three-node cluster basics (issue 13): three `gregor serve` processes, each a broker and a
controller voter, on free loopback ports.

DescribeCluster and Metadata list three brokers with one cluster id and one controller;
topics created through any broker appear on all; replication factor 3 gives three replicas
and an ISR of three, 4 is INVALID_REPLICATION_FACTOR; confluent-kafka produces and consumes
through the full bootstrap list; a broker that is not a partition's leader answers
NOT_LEADER_OR_FOLLOWER; raft-only APIs on the client port are refused without harm; a node
whose node.id is not among the voters, or whose cluster id differs, refuses to start/join.
"""
import os
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (DESCRIBE_QUORUM, HOST, SLOW, TAGS_NONE, Cluster,  # noqa: E402
                     ConnectionClosed, Reader, array, carray, check, comment, cstring,
                     distinct_free_ports, fail, i32, i64, poll, run_tests, start_expect_exit,
                     string, tail, test)
from kafka_records import fetch, parse_batches  # noqa: E402

NOT_LEADER_OR_FOLLOWER = 6
UNSUPPORTED_VERSION = 35
VOTE, BEGIN_QUORUM_EPOCH = 52, 53


@test
def test_three_brokers_one_cluster():
    """DescribeCluster (raw v0) from every node: error 0, brokers 1, 2, 3 at their own client
    ports, the same non-empty cluster id everywhere, a controller id that is one of the
    brokers (in Kafka's KRaft mode any live broker, which forwards); Metadata v7 from every
    node agrees; confluent-kafka's list_topics sees three brokers."""
    with Cluster(3) as c:
        want = {i: (HOST, c.node(i).port) for i in c.ids}
        seen_ids, seen_ctl = set(), {}
        for i in c.ids:
            d = c.describe_cluster(i)
            check(d["error_code"] == 0, "node %d DescribeCluster error %r" % (i, d))
            got = {b["node_id"]: (b["host"], b["port"]) for b in d["brokers"]}
            check(got == want, "node %d DescribeCluster brokers %r, want %r" % (i, got, want))
            check(d["cluster_id"], "node %d DescribeCluster has no cluster id" % i)
            md = c.metadata(i, topics=[])
            got = {b["node_id"]: (b["host"], b["port"]) for b in md["brokers"]}
            check(got == want, "node %d Metadata brokers %r, want %r" % (i, got, want))
            check(md["cluster_id"] == d["cluster_id"], "node %d: Metadata cluster id %r, "
                  "DescribeCluster %r" % (i, md["cluster_id"], d["cluster_id"]))
            check(md["controller_id"] in c.ids and d["controller_id"] in c.ids,
                  "node %d: controller id in Metadata %r, in DescribeCluster %r, want one of %r"
                  % (i, md["controller_id"], d["controller_id"], c.ids))
            seen_ids.add(d["cluster_id"])
            seen_ctl[i] = (md["controller_id"], d["controller_id"])
        check(len(seen_ids) == 1, "nodes report different cluster ids: %r" % seen_ids)
        comment("cluster id %s; controller ids (Metadata, DescribeCluster) per node %r; "
                "active controller %d" % (seen_ids.pop(), seen_ctl, c.wait_controller()))
        md = c.admin().list_topics(timeout=10 * SLOW)
        check(sorted(md.brokers) == c.ids, "confluent list_topics brokers %r" % md.brokers)
        check(md.controller_id in c.ids, "confluent list_topics controller %r" % md.controller_id)


@test
def test_describe_quorum():
    """DescribeQuorum (55, v0) sent to each broker (answered by it or forwarded to the
    controller): no error, every node names the same raft leader, the voters are 1, 2 and 3
    with no observers, the high watermark is past the brokers' registrations, and after a
    CreateTopics every voter's log end offset reaches the leader's (lag 0)."""
    with Cluster(3) as c:
        leaders = set()
        for i in c.ids:
            check(c.supports(i, DESCRIBE_QUORUM), "node %d does not advertise DescribeQuorum"
                  % i)
            top, p = c.describe_quorum(i)
            check(top == 0 and p["error_code"] == 0, "node %d DescribeQuorum errors %d/%d"
                  % (i, top, p["error_code"]))
            leaders.add(p["leader_id"])
            check(sorted(p["voters"]) == c.ids and not p["observers"],
                  "node %d: voters %r, observers %r" % (i, p["voters"], p["observers"]))
            check(p["high_watermark"] > 0 and p["leader_epoch"] > 0,
                  "node %d: high watermark %d, epoch %d" % (i, p["high_watermark"],
                                                           p["leader_epoch"]))
        check(len(leaders) == 1 and leaders <= set(c.ids), "quorum leaders named: %r" % leaders)
        hw0 = p["high_watermark"]
        r = c.create_topic("dq", 3, 3)
        check(r is None, "create dq: %s" % r)

        def caught_up():
            top, p = c.describe_quorum(1)
            leo = p["voters"].get(p["leader_id"], -1)
            check(p["high_watermark"] > hw0, "high watermark %d did not pass %d after "
                  "CreateTopics" % (p["high_watermark"], hw0))
            check(all(v == leo for v in p["voters"].values()), "voter log end offsets %r"
                  % p["voters"])
            return p
        p = poll(caught_up, 10, "every voter caught up with the quorum leader")
        comment("quorum leader %d epoch %d, high watermark %d, voters %r"
                % (p["leader_id"], p["leader_epoch"], p["high_watermark"], p["voters"]))


def topic_id(c, via, topic):
    md = c.metadata(via, topics=[topic], version=10)
    t = [x for x in md["topics"] if x["name"] == topic]
    check(t and t[0]["error_code"] == 0, "node %d Metadata v10 for %r: %r" % (via, topic, t))
    return t[0]["topic_id"]


@test
def test_topics_created_through_any_broker():
    """A topic is created through each of the three brokers twice: with an AdminClient
    bootstrapped from that broker only, and with a raw CreateTopics sent to that broker's
    port (librdkafka routes admin requests to the controller it learns from Metadata; the
    raw request makes a non-controller forward it). Every topic appears in the Metadata of
    all three with the same topic id and live leaders; creating one again through another
    broker answers TOPIC_ALREADY_EXISTS (raw: error 36)."""
    with Cluster(3) as c:
        ctl = c.wait_controller()
        comment("controller is node %d" % ctl)
        for i in c.ids:
            r = c.create_topic("via-%d" % i, 3, 1, via=i)
            check(r is None, "CreateTopics through node %d (controller %d): %s" % (i, ctl, r))
            err, msg = c.create_topic_raw("raw-%d" % i, 2, 1, via=i)
            check(err == 0, "raw CreateTopics to node %d (controller %d): error %d %r"
                  % (i, ctl, err, msg))
        for i in c.ids:
            c.wait_topic("raw-%d" % i, 2, timeout=10)
            other = i % 3 + 1
            err, msg = c.create_topic_raw("raw-%d" % i, 2, 1, via=other)
            check(err == 36, "raw CreateTopics of existing raw-%d to node %d: error %d %r, "
                  "want 36 (TOPIC_ALREADY_EXISTS)" % (i, other, err, msg))
        for i in c.ids:
            t = "via-%d" % i
            c.wait_topic(t, 3, timeout=10)
            ids = {j: topic_id(c, j, t) for j in c.ids}
            check(len(set(ids.values())) == 1 and ids[1] != b"\0" * 16,
                  "topic %s ids per node differ or are zero: %r" % (t, ids))
        for i in c.ids:
            other = i % 3 + 1
            r = c.create_topic("via-%d" % i, 3, 1, via=other)
            check(r == "TOPIC_ALREADY_EXISTS", "re-creating via-%d through node %d: %s"
                  % (i, other, r))


@test
def test_replication_factor_three_and_four():
    """RF 3 on three brokers: every partition has three distinct replicas and an ISR of
    three, its leader is the first (preferred) replica, and the first replicas are spread
    round-robin (three partitions, three different leaders); the same in confluent-kafka's
    view and in raw Metadata of each node. RF 4 answers INVALID_REPLICATION_FACTOR and
    creates nothing."""
    with Cluster(3) as c:
        r = c.create_topic("rf3", 3, 3)
        check(r is None, "create rf3: %s" % r)
        c.wait_topic("rf3", 3, timeout=10)
        for i in c.ids:
            ps = c.raw_partitions("rf3", i)
            for p, m in sorted(ps.items()):
                check(sorted(m["replicas"]) == [1, 2, 3], "node %d rf3-%d replicas %r"
                      % (i, p, m["replicas"]))
                check(sorted(m["isr"]) == [1, 2, 3], "node %d rf3-%d isr %r" % (i, p, m["isr"]))
                check(m["leader"] == m["replicas"][0], "node %d rf3-%d leader %d is not the "
                      "preferred replica %r" % (i, p, m["leader"], m["replicas"]))
                check(m["offline"] == [], "node %d rf3-%d offline %r" % (i, p, m["offline"]))
            firsts = sorted(m["replicas"][0] for m in ps.values())
            check(firsts == [1, 2, 3], "node %d: preferred leaders %r, want one per broker"
                  % (i, firsts))
        view = c.partition_leaders("rf3")
        for p, m in view.items():
            check(len(m["replicas"]) == 3 and len(m["isrs"]) == 3,
                  "confluent view of rf3-%d: %r" % (p, m))
        r = c.create_topic("rf4", 1, 4)
        check(r == "INVALID_REPLICATION_FACTOR", "create rf4 on 3 brokers: %s" % r)
        for i in c.ids:
            names = [t["name"] for t in c.metadata(i)["topics"]]
            check("rf4" not in names, "node %d lists rf4 after a refused create: %r" % (i, names))


@test
def test_produce_consume_across_brokers():
    """RF 1, 6 partitions: leaders spread over more than one broker; confluent-kafka
    (bootstrap = all three, acks=all) produces 600 messages to all six partitions, every
    delivery report succeeds, and a consumer assigned to all six partitions reads exactly
    those messages at the offsets the reports gave."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
    with Cluster(3) as c:
        r = c.create_topic("spread", 6, 1)
        check(r is None, "create spread: %s" % r)
        leaders = c.wait_topic("spread", 6, timeout=10)
        comment("leaders %r" % leaders)
        check(len(set(leaders.values())) > 1, "all six partitions led by one broker: %r"
              % leaders)
        p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5,
                      "message.timeout.ms": int(30000 * SLOW)})
        delivered, errors = {}, []

        def on_delivery(err, msg):
            if err is not None:
                errors.append((msg.partition(), err.name()))
            else:
                delivered[msg.value()] = (msg.partition(), msg.offset())
        n = 600
        for k in range(n):
            p.produce("spread", value=b"m-%d" % k, key=b"k-%d" % k, partition=k % 6,
                      on_delivery=on_delivery)
            p.poll(0)
        left = p.flush(30 * SLOW)
        check(left == 0, "%d messages not delivered after 30 s" % left)
        check(not errors, "failed deliveries: %r" % errors[:10])
        check(len(delivered) == n, "%d delivery reports, want %d" % (len(delivered), n))
        check({pt for pt, _ in delivered.values()} == set(range(6)),
              "deliveries reached partitions %r" % sorted({pt for pt, _ in delivered.values()}))
        cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "cluster-basic",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        try:
            cons.assign([TopicPartition("spread", i, OFFSET_BEGINNING) for i in range(6)])
            got = {}
            deadline = time.monotonic() + 30 * SLOW
            while len(got) < n and time.monotonic() < deadline:
                m = cons.poll(0.5)
                if m is None:
                    continue
                check(m.error() is None or m.error().code() == -191,  # _PARTITION_EOF
                      "consumer error %s" % m.error())
                if m.error() is None:
                    got[m.value()] = (m.partition(), m.offset())
        finally:
            cons.close()
        check(len(got) == n, "consumed %d of %d messages in 30 s" % (len(got), n))
        check(got == delivered, "consumed (partition, offset) differ from the delivery reports"
              ": %r" % [(k, got.get(k), v) for k, v in delivered.items() if got.get(k) != v][:5])


@test
def test_non_leader_refuses_produce_and_fetch():
    """Raw Produce v8 (acks=-1) and Fetch v11 for a partition sent to a broker that is not
    its leader answer NOT_LEADER_OR_FOLLOWER (6), for each partition and each non-leader
    (UNKNOWN_TOPIC_OR_PARTITION is retried for up to 5 s while the topic propagates);
    the same Produce to the leader succeeds, and afterwards each partition holds exactly the
    one batch its leader accepted."""
    with Cluster(3) as c:
        r = c.create_topic("nl", 3, 1)
        check(r is None, "create nl: %s" % r)
        leaders = c.wait_topic("nl", 3, timeout=10)
        comment("leaders %r" % leaders)
        for part, leader in sorted(leaders.items()):
            for other in c.ids:
                if other == leader:
                    continue
                # Retried while the node may not have applied the new topic yet.
                res = c.produce_raw(other, "nl", part, b"refused", retry_on=(3,))
                check(res["error_code"] == NOT_LEADER_OR_FOLLOWER,
                      "Produce nl-%d to node %d (leader %d): error %d, want 6"
                      % (part, other, leader, res["error_code"]))
                with c.raw(other) as conn:
                    f = fetch(conn, "nl", part, 0)
                    check(f["error_code"] == NOT_LEADER_OR_FOLLOWER,
                          "Fetch nl-%d from node %d (leader %d): error %d, want 6"
                          % (part, other, leader, f["error_code"]))
            res = c.produce_raw(leader, "nl", part, b"ok-%d" % part)
            check(res["error_code"] == 0, "Produce nl-%d to its leader %d: error %d"
                  % (part, leader, res["error_code"]))
            with c.raw(leader) as conn:
                f = fetch(conn, "nl", part, 0)
                check(f["error_code"] == 0 and f["high_watermark"] == 1,
                      "Fetch nl-%d from leader: error %d, high watermark %d (want 0, 1)"
                      % (part, f["error_code"], f["high_watermark"]))
                values = [rec["value"] for b in parse_batches(f["records"])
                          for rec in b["records"]]
                check(values == [b"ok-%d" % part], "nl-%d holds %r" % (part, values))


def vote_request_body(cluster_id, candidate_id):
    """Vote v0 (flexible): a candidate with a very high epoch asking for the vote."""
    part = i32(0) + i32(1000) + i32(candidate_id) + i32(999) + i64(1 << 40) + TAGS_NONE
    topic = cstring("__cluster_metadata") + carray([part]) + TAGS_NONE
    return cstring(cluster_id) + carray([topic]) + TAGS_NONE


def begin_quorum_epoch_body(cluster_id, leader_id):
    """BeginQuorumEpoch v0 (not flexible): leader_id claims epoch 1000."""
    part = i32(0) + i32(leader_id) + i32(1000)
    return string(cluster_id) + array([string("__cluster_metadata") + array([part])])


def expect_refused(c, via, api_key, body, flexible):
    """Sends one raft API request on a fresh client connection to node via; it must close
    the connection or answer UNSUPPORTED_VERSION. Returns a description of what happened."""
    with c.raw(via) as conn:
        corr = conn.send_request(api_key, 0, body, flexible=flexible)
        try:
            payload = conn.read_frame(timeout=5 * SLOW)
        except ConnectionClosed:
            return "connection closed"
        except socket.timeout:
            fail("node %d neither answered api %d nor closed the connection in 5 s"
                 % (via, api_key))
        r = Reader(payload)
        check(r.int32() == corr, "api %d: response correlation id mismatch" % api_key)
        # Error code right after the header: header v0 (no tags) or v1 (empty tag section).
        e_v0 = Reader(payload, 4).int16()
        e_v1 = Reader(payload, 5).int16() if payload[4:5] == b"\x00" else None
        check(UNSUPPORTED_VERSION in (e_v0, e_v1),
              "node %d answered api %d with %r (want UNSUPPORTED_VERSION or a closed "
              "connection)" % (via, api_key, payload[:16].hex()))
        return "UNSUPPORTED_VERSION"


@test
def test_raft_apis_on_client_port_refused():
    """Vote (52) and BeginQuorumEpoch (53), controller-to-controller APIs, sent to each
    broker's client port with a claim to a far higher epoch: the connection is closed or
    answered UNSUPPORTED_VERSION; ApiVersions on the client port does not advertise them;
    afterwards every node still answers Metadata, the controller is unchanged and
    CreateTopics still works."""
    with Cluster(3) as c:
        ctl = c.wait_controller()
        cid = c.describe_cluster(1)["cluster_id"]
        for i in c.ids:
            with c.raw(i) as conn:
                keys = conn.api_versions(3)["api_keys"]
            check(VOTE not in keys and BEGIN_QUORUM_EPOCH not in keys,
                  "node %d advertises raft APIs on its client port: %r"
                  % (i, {k: keys[k] for k in (VOTE, BEGIN_QUORUM_EPOCH) if k in keys}))
            other = i % 3 + 1
            how = expect_refused(c, i, VOTE, vote_request_body(cid, other), True)
            comment("node %d Vote: %s" % (i, how))
            how = expect_refused(c, i, BEGIN_QUORUM_EPOCH, begin_quorum_epoch_body(cid, other),
                                 False)
            comment("node %d BeginQuorumEpoch: %s" % (i, how))
        for i in c.ids:
            check(c.node(i).running(), "node %d died: %s" % (i, tail(c.node(i).log_path)))
            md = c.metadata(i, topics=[])
            check(sorted(b["node_id"] for b in md["brokers"]) == c.ids,
                  "node %d Metadata brokers after raft requests: %r" % (i, md["brokers"]))
        check(c.wait_controller() == ctl, "controller changed after the raft requests")
        r = c.create_topic("after-raft-apis", 1, 1)
        check(r is None, "CreateTopics after the raft requests: %s" % r)


@test
def test_node_not_in_voters_refuses_to_start():
    """process.roles=broker,controller with node.id 4 and a voter set of 1, 2, 3: the process
    exits non-zero by itself, and its last stderr line, the only one naming
    controller.quorum.voters, names it and node id 4."""
    ports = distinct_free_ports(5)
    voters = ",".join("%d@%s:%d" % (i, HOST, ports[i - 1]) for i in (1, 2, 3))
    t0 = time.monotonic()
    rc, err, out = start_expect_exit({
        "node.id": 4, "process.roles": "broker,controller",
        "listeners": "PLAINTEXT://%s:%d,CONTROLLER://%s:%d" % (HOST, ports[3], HOST, ports[4]),
        "controller.listener.names": "CONTROLLER", "controller.quorum.voters": voters,
        "broker.heartbeat.interval.ms": 500, "broker.session.timeout.ms": 3000})
    comment("exit %d after %.1fs, stderr: %s" % (rc, time.monotonic() - t0,
                                                 err.strip().replace("\n", " | ")[-600:]))
    check(rc != 0, "exit status 0, expected non-zero")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    named = [ln for ln in lines if "controller.quorum.voters" in ln]
    check(len(named) == 1, "want one stderr line naming controller.quorum.voters, got %d:\n%s"
          % (len(named), err[-2000:]))
    check(named[0] == lines[-1], "the line naming controller.quorum.voters is not the last "
          "one:\n%s" % err[-2000:])
    check("4" in named[0], "the error line does not name node id 4: %s" % named[0])


@test
def test_mismatched_cluster_id_refused():
    """Node 3 is stopped (SIGTERM; it leaves Metadata's broker list), its data is wiped and
    it is started again with cluster.id set to an id other than the cluster's: it does not
    join (never listed by nodes 1 and 2 over two session timeouts), its log has one line
    (not one per retry) naming INCONSISTENT_CLUSTER_ID or both cluster ids, and if it exits,
    it exits non-zero. The other two keep serving (CreateTopics works)."""
    with Cluster(3) as c:
        cid = c.describe_cluster(1)["cluster_id"]
        c.stop(3)

        def gone():
            seen = {i: sorted(b["node_id"] for b in c.metadata(i, topics=[])["brokers"])
                    for i in (1, 2)}
            check(all(3 not in ids for ids in seen.values()), "brokers listed: %r" % seen)
            return True
        poll(gone, 3.0 + 5, "stopped node 3 to leave Metadata's broker list on nodes 1 and 2")
        shutil.rmtree(c.node(3).data_dir)
        wrong = "AAAAAAAAAAAAAAAAAAAAAA" if cid != "AAAAAAAAAAAAAAAAAAAAAA" else "BBBBBBBBBBBBBBBBBBBBBB"
        c.node(3).props["cluster.id"] = wrong
        c.node(3).start(wait=False)

        deadline = time.monotonic() + 2 * 3.0 * SLOW
        while time.monotonic() < deadline:
            try:
                gone()
            except AssertionError as e:
                fail("node 3 with cluster.id %s was admitted (cluster id %s): %s"
                     % (wrong, cid, e))
            if not c.node(3).running():
                break
            time.sleep(0.2)
        log = c.node(3).log_text()
        lines = [ln for ln in log.splitlines()
                 if "INCONSISTENT_CLUSTER_ID" in ln or (wrong in ln and cid in ln)]
        check(len(lines) == 1, "want one line in node 3's log naming INCONSISTENT_CLUSTER_ID "
              "or both cluster ids (%s, the cluster's %s), got %d; tail:\n%s"
              % (wrong, cid, len(lines), tail(c.node(3).log_path)))
        comment("node 3: %s" % lines[0])
        if not c.node(3).running():
            rc = c.node(3).proc.returncode
            c.node(3)._reap()
            check(rc != 0, "node 3 exited with status 0 after refusing to join")
        else:
            c.node(3).kill()
        for i in (1, 2):
            check(c.node(i).running(), "node %d died" % i)
        r = c.create_topic("after-mismatch", 1, 1, via=1)
        check(r is None, "CreateTopics on the two remaining voters: %s" % r)


if __name__ == "__main__":
    run_tests()
