"""Fetch from follower (KIP-392): three `gregor serve` nodes in racks rack-a, rack-b, rack-c
with replica.selector.class = Kafka's RackAwareReplicaSelector, a topic with replication
factor 3 led by the rack-a node.

What is tried:
- the leader answers a consumer's Fetch v11 that names rack-b with preferred_read_replica =
  the rack-b follower and no records; a rack it holds itself, a rack nobody is in, or no rack
  get the records from the leader (preferred_read_replica -1);
- the rack-b follower serves a consumer's Fetch v11 up to its high watermark (the leader's,
  as its replica fetches brought it), with the leader's log start; an offset past its log
  end is NOT_LEADER_OR_FOLLOWER (only the leader may say OFFSET_OUT_OF_RANGE: a client with
  stale metadata would otherwise reset its position); Fetch v10 there is still
  NOT_LEADER_OR_FOLLOWER;
- records the follower holds but the leader has not committed (a third replica stopped with
  SIGSTOP holds the high watermark back) are not served by the follower until they are;
- a confluent-kafka consumer with client.rack=rack-b reads everything produced with
  acks=all, and the per-topic records-out counters of /metrics show the rack-b follower served
  it (the rack-c follower served nothing);
- without replica.selector.class the leader never names a preferred read replica; an unknown
  selector class stops start-up with one line naming the property.
Runs under ASan too (about 7 s): the follower read and redirect paths are new.
asan-smoke
"""
import glob
import os
import re
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Cluster, TestFailure, array, check, comment,  # noqa: E402
                     free_port, i8, i32, i64, poll, run_tests, sigstop_and_wait,
                     start_expect_exit, string, test)
from harness import FETCH  # noqa: E402
from kafka_records import parse_batches, parse_fetch  # noqa: E402
from kafka_records import fetch as fetch_raw  # noqa: E402

RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
RACKS = {1: "rack-a", 2: "rack-b", 3: "rack-c"}
NOT_LEADER_OR_FOLLOWER = 6


def rack_cluster(selector=True, n=3):
    """n nodes, node i in RACKS[i], each with a metrics listener; returns (cluster,
    {node: metrics port}). A longer broker session than the harness's: a follower paused
    for a second or two stays registered (unfenced) and so in the ISR."""
    mports = {i: free_port() for i in range(1, n + 1)}
    node_props = {i: {"broker.rack": RACKS[i],
                      "metrics.listener": "http://%s:%d" % (HOST, mports[i])}
                  for i in range(1, n + 1)}
    props = {"broker.session.timeout.ms": 10000}
    if selector:
        props["replica.selector.class"] = RACK_AWARE
    return Cluster(n, props, node_props=node_props), mports


def create_led_by_1(c, name, n):
    """One partition, replicas [1..n] (node 1, rack-a, is the preferred leader)."""
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": c.live_bootstrap()})
    t = NewTopic(name, 1, replica_assignment=[list(range(1, n + 1))],
                 config={"min.insync.replicas": "2"})
    a.create_topics([t])[name].result(timeout=15 * SLOW)
    leaders = c.wait_topic(name, 1)
    check(leaders[0] == 1, "%s-0 is led by node %r, want 1 (rack-a)" % (name, leaders[0]))


def fetch_rack(conn, topic, partition, offset, rack, version=11, max_wait_ms=0):
    """A consumer's Fetch v11 (non-flexible) for one partition, naming rack_id."""
    body = i32(-1) + i32(max_wait_ms) + i32(1) + i32(50 << 20) + i8(0)
    body += i32(0) + i32(-1)  # no fetch session
    part = i32(partition) + i32(-1) + i64(offset) + i64(-1) + i32(10 << 20)
    body += array([string(topic) + array([part])]) + array([]) + string(rack)
    res, top = parse_fetch(conn.call(FETCH, version, body), version)
    check(top == 0, "fetch top-level error %d" % top)
    return res[(topic, partition)]


def offsets_of(f):
    return [r["offset"] for b in parse_batches(f["records"]) for r in b["records"]]


def records_out(mport, topic):
    """gregor_topic_records_out_total{topic=...} of one node (0 before the first fetch)."""
    url = "http://%s:%d/metrics" % (HOST, mport)
    with urllib.request.urlopen(url, timeout=10 * SLOW) as r:
        text = r.read().decode("utf-8")
    m = re.search(r'^gregor_topic_records_out_total\{topic="%s"\} (\d+)$' % re.escape(topic),
                  text, re.M)
    return int(m.group(1)) if m else 0


def produce(c, topic, n, prefix, acks="all", via=None):
    from confluent_kafka import Producer
    bootstrap = c.node(via).bootstrap if via else c.live_bootstrap()
    p = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5,
                  "message.timeout.ms": int(20000 * SLOW)})
    acked = []
    for i in range(n):
        p.produce(topic, value=b"%s-%d" % (prefix, i), partition=0,
                  on_delivery=lambda err, msg: acked.append(err is None))
    check(p.flush(20 * SLOW) == 0, "undelivered messages")
    check(len(acked) == n and all(acked), "acks: %d ok of %d" % (sum(acked), len(acked)))


def wait_follower_hw(c, node, topic, want):
    """Until node's Fetch v11 of topic-0 answers high watermark `want`; returns that answer."""
    def ok():
        with c.raw(node) as conn:
            f = fetch_rack(conn, topic, 0, 0, "")
        if f["error_code"] != 0 or f["high_watermark"] != want:
            raise TestFailure("node %d: error %d, high watermark %d"
                              % (node, f["error_code"], f["high_watermark"]))
        return f
    return poll(ok, 15, "node %d's high watermark of %s-0 to reach %d" % (node, topic, want))


def log_bytes(c, node, topic):
    return sum(os.path.getsize(f) for f in
               glob.glob(os.path.join(c.node(node).data_dir, "%s-0" % topic, "*.log")))


@test
def test_rack_b_consumer_is_served_by_the_rack_b_follower_up_to_its_high_watermark():
    topic, n = "ffr", 300
    c, mports = rack_cluster()
    with c:
        create_led_by_1(c, topic, 3)
        produce(c, topic, n, b"m")
        # The leader points a rack-b consumer to node 2, and serves the others itself.
        with c.raw(1) as conn:
            f = fetch_rack(conn, topic, 0, 0, "rack-b")
            check(f["error_code"] == 0 and f["preferred_read_replica"] == 2
                  and f["records"] in (None, b"") and f["high_watermark"] == n
                  and f["log_start_offset"] == 0,
                  "leader, rack-b: %r" % {k: v for k, v in f.items() if k != "records"})
            for rack in ("rack-a", "rack-z", ""):
                f = fetch_rack(conn, topic, 0, 0, rack)
                check(f["error_code"] == 0 and f["preferred_read_replica"] == -1
                      and offsets_of(f)[:1] == [0],
                      "leader, rack %r: error %d, preferred %d, offsets %r"
                      % (rack, f["error_code"], f["preferred_read_replica"],
                         offsets_of(f)[:3]))
        # The follower serves everything below its high watermark and nothing else.
        f = wait_follower_hw(c, 2, topic, n)
        with c.raw(2) as conn:
            got, offset = [], 0
            while offset < n:
                f = fetch_rack(conn, topic, 0, offset, "rack-b")
                check(f["error_code"] == 0 and f["preferred_read_replica"] == -1
                      and f["log_start_offset"] == 0 and f["last_stable_offset"] == n,
                      "follower at %d: %r" % (offset, {k: v for k, v in f.items()
                                                       if k != "records"}))
                offs = offsets_of(f)
                check(offs, "follower at %d below its high watermark %d returned nothing"
                      % (offset, n))
                got += [o for o in offs if o >= offset]
                offset = got[-1] + 1
            check(got == list(range(n)), "follower served offsets %r..." % got[:5])
            f = fetch_rack(conn, topic, 0, n, "rack-b")
            check(f["error_code"] == 0 and offsets_of(f) == [],
                  "follower at its high watermark: error %d, offsets %r"
                  % (f["error_code"], offsets_of(f)[:3]))
            f = fetch_rack(conn, topic, 0, n + 1000, "rack-b")
            check(f["error_code"] == NOT_LEADER_OR_FOLLOWER,
                  "follower past its log end: error %d, want 6" % f["error_code"])
            f = fetch_raw(conn, topic, 0, 0, version=10)
            check(f["error_code"] == NOT_LEADER_OR_FOLLOWER,
                  "follower, Fetch v10: error %d, want 6" % f["error_code"])

        # Node 3 stopped (still in the ISR): the leader's high watermark stays at n while
        # node 2 copies what the leader appends.
        before = log_bytes(c, 2, topic)
        sigstop_and_wait(c.node(3).proc.pid)
        try:
            produce(c, topic, 50, b"uncommitted", acks="1", via=1)
            poll(lambda: log_bytes(c, 2, topic) > before, 10,
                 "node 2 to copy the acks=1 records")
            time.sleep(0.6)  # a replica fetch round: node 2 hears the leader's high watermark
            with c.raw(2) as conn:
                f = fetch_rack(conn, topic, 0, n - 1, "rack-b")
                check(f["error_code"] == 0 and f["high_watermark"] == n
                      and [o for o in offsets_of(f) if o >= n] == [],
                      "follower holding uncommitted records: error %d, high watermark %d, "
                      "offsets %r" % (f["error_code"], f["high_watermark"], offsets_of(f)))
        finally:
            os.kill(c.node(3).proc.pid, signal.SIGCONT)
        f = wait_follower_hw(c, 2, topic, n + 50)

        # A real consumer in rack-b reads it all, served by node 2.
        from confluent_kafka import Consumer, TopicPartition
        out0 = {i: records_out(mports[i], topic) for i in (2, 3)}
        cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "ffr-b",
                         "client.rack": "rack-b", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
        values = []
        try:
            cons.assign([TopicPartition(topic, 0, 0)])
            deadline = time.monotonic() + 20 * SLOW
            while len(values) < n + 50 and time.monotonic() < deadline:
                m = cons.poll(0.5)
                if m is not None and m.error() is None:
                    values.append(m.value())
        finally:
            cons.close()
        want = [b"m-%d" % i for i in range(n)] + [b"uncommitted-%d" % i for i in range(50)]
        check(values == want, "consumer read %d records, want %d" % (len(values), len(want)))
        out = {i: records_out(mports[i], topic) - out0[i] for i in (2, 3)}
        comment("records out by the consumer's fetches: node 2 %d, node 3 %d" % (out[2], out[3]))
        check(out[2] >= n + 50, "node 2 (rack-b) served %d records, want >= %d"
              % (out[2], n + 50))
        check(out[3] == 0, "node 3 (rack-c) served %d records, want 0" % out[3])


@test
def test_without_selector_the_leader_serves_every_rack():
    topic = "nosel"
    c, _ = rack_cluster(selector=False, n=2)
    with c:
        create_led_by_1(c, topic, 2)
        produce(c, topic, 10, b"x")
        with c.raw(1) as conn:
            for rack in ("rack-b", ""):
                f = fetch_rack(conn, topic, 0, 0, rack)
                check(f["error_code"] == 0 and f["preferred_read_replica"] == -1
                      and offsets_of(f) == list(range(10)),
                      "leader without selector, rack %r: error %d, preferred %d, offsets %r"
                      % (rack, f["error_code"], f["preferred_read_replica"], offsets_of(f)))


@test
def test_unknown_replica_selector_refused():
    status, err, out = start_expect_exit({"replica.selector.class": "com.example.Nearest"})
    lines = [ln for ln in (err + out).splitlines() if "replica.selector.class" in ln]
    check(status != 0, "an unknown selector class started (status %r)" % status)
    check(len(lines) == 1 and "com.example.Nearest" in lines[0],
          "want one line naming replica.selector.class: %r" % (err + out)[-400:])


if __name__ == "__main__":
    run_tests()
