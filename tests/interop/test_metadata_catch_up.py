"""A restarting node follows the metadata only once it has caught up, and never serves a
partition directory the metadata does not give it (three `gregor serve` processes, each a
broker and a controller voter).

What is tried:
- restarted_node_never_acts_on_old_leadership: a node leading partitions is SIGKILLed; while
  it is down the controller moves its leaderships away and the new leaders take writes. On
  restart the node replays its own metadata log first, in which it still leads them. Its
  partitions must open only from the image holding its new registration: its log may show no
  "leader <it> -> <other>" change (which means it had taken a stale image as current), and it
  must not answer a produce as leader for a partition it no longer leads.
- deleted_topic_dir_is_set_aside: a topic is deleted and created again under the same name,
  on other nodes, while a replica of the old one is down. The restarted node must not keep or
  serve the old directory: it renames it "<topic>-0.<hex>-stray" (Kafka's stray replica) and
  keeps its data there for the operator.
- same_name_topic_starts_empty: as above, but the new topic has a replica on the node that
  was down. The old directory (its partition.metadata names the old topic id) is set aside
  and the node opens an empty log that replicates the new topic's records only.
- partition_metadata_names_the_topic_id: every partition directory has Kafka's
  partition.metadata ("version: 0", "topic_id: <base64url id>"), naming the id Metadata v12
  reports.
"""
import base64
import glob
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SESSION_TIMEOUT_S, Cluster, TestFailure, check, comment,  # noqa: E402
                     poll, run_tests, test)

CAUGHT_UP = "caught up with the metadata log"


def b64url(uuid_bytes):
    return base64.urlsafe_b64encode(uuid_bytes).decode().rstrip("=")


def topic_id(c, via, topic):
    md = c.metadata(via, topics=[topic], version=12)
    ts = [t for t in md["topics"] if t["name"] == topic]
    check(ts and ts[0]["error_code"] == 0, "Metadata v12 for %r: %r" % (topic, ts))
    return ts[0]["topic_id"]


def partition_metadata(path):
    with open(os.path.join(path, "partition.metadata")) as f:
        return f.read()


def current_log(b):
    """The log of the node's current start only (Broker.log_text joins every start's)."""
    with open(b.log_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def wait_caught_up(c, node, timeout=20.0):
    b = c.node(node)
    poll(lambda: CAUGHT_UP in current_log(b), timeout,
         "node %d to catch up with the metadata log" % node)


def produce_some(c, topic, partition, values, via=None):
    """Produces values to one partition through via (default: its leader as the live nodes
    report it); asserts each is acknowledged (acks=all)."""
    for v in values:
        leader = via or c.partition_leaders(topic)[partition]["leader"]
        res = c.produce_raw(leader, topic, partition, v, acks=-1, timeout=15.0)
        check(res["error_code"] == 0, "produce %r to %s-%d via node %d: %r"
              % (v, topic, partition, leader, res))


def leaders_without(c, topic, gone, via):
    ps = c.raw_partitions(topic, via)
    if any(p["leader"] == gone or p["leader"] < 0 for p in ps.values()):
        raise TestFailure("node %d sees %r" % (via, {k: p["leader"] for k, p in ps.items()}))
    return {k: p["leader"] for k, p in ps.items()}


def log_values(part_dir):
    """The record values in a partition directory's .log files (uncompressed batches)."""
    from kafka_records import parse_batches
    out = []
    for seg in sorted(glob.glob(os.path.join(part_dir, "*.log"))):
        with open(seg, "rb") as f:
            for b in parse_batches(f.read()):
                out.extend(r["value"] for r in b["records"])
    return out


@test
def restarted_node_never_acts_on_old_leadership():
    with Cluster(3) as c:
        c.wait_controller()
        check(c.create_topic("moved", 6, 3) is None, "create moved")
        leaders = c.wait_topic("moved", 6)
        victim = leaders[0]
        led = sorted(p for p, l in leaders.items() if l == victim)
        for p in range(6):
            produce_some(c, "moved", p, [b"before-%d" % p])
        others = [i for i in c.ids if i != victim]
        c.kill(victim)
        moved = poll(lambda: leaders_without(c, "moved", victim, others[0]),
                     SESSION_TIMEOUT_S + 10, "leaderships to leave node %d" % victim)
        for p in led:
            produce_some(c, "moved", p, [b"while-away-%d" % p], via=moved[p])
        c.node(victim).start(wait=True)
        wait_caught_up(c, victim)
        c.wait_topic("moved", 6)
        text = current_log(c.node(victim))
        stale = re.findall(r"moved-\d+: leader %d -> \d+ \(epoch \d+\)" % victim, text)
        check(not stale, "node %d took old images as current after its restart: %r"
              % (victim, stale))
        # Right after catching up it leads none of the partitions it led before the kill
        # (the preferred-leader rebalance runs every 300 s by default): a produce to it
        # must be refused, never appended at an old epoch.
        now = c.raw_partitions("moved", victim)
        for p in led:
            if now[p]["leader"] == victim:
                continue
            res = c.produce_raw(victim, "moved", p, b"stale", acks=1, retry_on=(), timeout=2.0)
            check(res["error_code"] == 6, "moved-%d produced to node %d, which no longer "
                  "leads it: %r" % (p, victim, res))
        comment("node %d led %r before the kill; after its restart: %r" % (victim, led, {
            p: now[p]["leader"] for p in led}))


@test
def deleted_topic_dir_is_set_aside():
    with Cluster(3) as c:
        c.wait_controller()
        check(c.create_topic("gone", 1, 3) is None, "create gone")
        c.wait_topic("gone", 1)
        produce_some(c, "gone", 0, [b"old-%d" % i for i in range(5)])
        old_id = topic_id(c, 1, "gone")
        d3 = c.node(3).data_dir
        poll(lambda: log_values(os.path.join(d3, "gone-0")) == [b"old-%d" % i for i in range(5)],
             10, "node 3 to replicate gone-0")
        c.kill(3)
        from confluent_kafka.admin import NewTopic
        a = c.admin(1)
        a.delete_topics(["gone"], operation_timeout=15)["gone"].result(timeout=20)
        poll(lambda: "gone" not in c.admin(1).list_topics(timeout=5).topics, 15,
             "gone to be deleted")
        a.create_topics([NewTopic("gone", 1, replica_assignment=[[1, 2]])],
                        operation_timeout=15)["gone"].result(timeout=20)
        c.wait_topic("gone", 1, via=[1, 2])
        produce_some(c, "gone", 0, [b"new-%d" % i for i in range(3)])
        new_id = topic_id(c, 1, "gone")
        check(new_id != old_id, "the new topic has a new id")
        c.node(3).start(wait=True)
        wait_caught_up(c, 3)
        check(not os.path.exists(os.path.join(d3, "gone-0")),
              "node 3 kept gone-0 although the new topic has no replica there")
        strays = glob.glob(os.path.join(d3, "gone-0.*-stray"))
        check(len(strays) == 1 and re.search(r"gone-0\.[0-9a-f]{32}-stray$", strays[0]),
              "node 3's stray directories: %r" % strays)
        check(b64url(old_id) in partition_metadata(strays[0]), "stray dir names the old id")
        check(log_values(strays[0]) == [b"old-%d" % i for i in range(5)],
              "the stray directory keeps the old data")
        check("stray log" in current_log(c.node(3)), "node 3 logged the stray log")
        # Still set aside after another restart, and never loaded as a partition.
        c.restart(3)
        wait_caught_up(c, 3)
        check(not os.path.exists(os.path.join(d3, "gone-0")) and
              len(glob.glob(os.path.join(d3, "gone-0.*-stray"))) == 1,
              "after a second restart: %r" % sorted(os.listdir(d3)))


@test
def same_name_topic_starts_empty():
    with Cluster(3) as c:
        c.wait_controller()
        check(c.create_topic("again", 1, 3) is None, "create again")
        c.wait_topic("again", 1)
        produce_some(c, "again", 0, [b"old-%d" % i for i in range(5)])
        d3 = c.node(3).data_dir
        poll(lambda: len(log_values(os.path.join(d3, "again-0"))) == 5, 10,
             "node 3 to replicate again-0")
        c.kill(3)
        from confluent_kafka.admin import NewTopic
        a = c.admin(1)
        a.delete_topics(["again"], operation_timeout=15)["again"].result(timeout=20)
        poll(lambda: "again" not in c.admin(1).list_topics(timeout=5).topics, 15,
             "again to be deleted")
        a.create_topics([NewTopic("again", 1, replica_assignment=[[1, 2, 3]])],
                        operation_timeout=15)["again"].result(timeout=20)
        leader = c.wait_topic("again", 1, via=[1, 2])[0]
        produce_some(c, "again", 0, [b"new-%d" % i for i in range(3)], via=leader)
        new_id = topic_id(c, 1, "again")
        c.node(3).start(wait=True)
        wait_caught_up(c, 3)
        live = os.path.join(d3, "again-0")
        poll(lambda: log_values(live) == [b"new-%d" % i for i in range(3)], 15,
             "node 3 to hold exactly the new topic's records")
        check(b64url(new_id) in partition_metadata(live), "again-0 names the new id")
        strays = glob.glob(os.path.join(d3, "again-0.*-stray"))
        check(len(strays) == 1 and len(log_values(strays[0])) == 5,
              "the old directory is set aside with its 5 records: %r" % strays)


@test
def partition_metadata_names_the_topic_id():
    with Cluster(3) as c:
        c.wait_controller()
        check(c.create_topic("ids", 2, 3) is None, "create ids")
        c.wait_topic("ids", 2)
        tid = topic_id(c, 2, "ids")
        for i in c.ids:
            for p in range(2):
                path = os.path.join(c.node(i).data_dir, "ids-%d" % p)
                poll(lambda: os.path.exists(os.path.join(path, "partition.metadata")), 10,
                     "partition.metadata in %s" % path)
                text = partition_metadata(path)
                check(text == "version: 0\ntopic_id: %s" % b64url(tid),
                      "node %d %s: %r (topic id %s)" % (i, path, text, b64url(tid)))


if __name__ == "__main__":
    run_tests()
