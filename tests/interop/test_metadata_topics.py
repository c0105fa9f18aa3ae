"""Topic auto-creation through Metadata (raw frames): partitions, leaders, replicas, ISR,
leader epoch, topic ids; what survives a restart; when a topic must not be created."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Broker, KafkaRaw, check, run_tests, test  # noqa: E402
from kafka_records import ensure_topic  # noqa: E402

NODE_ID = 7
UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5
INVALID_TOPIC_EXCEPTION = 17
ZERO_UUID = b"\x00" * 16


def topic_md(c, version, name, allow=True):
    md = c.metadata(version, topics=[name], allow_auto_create=allow)
    ts = [t for t in md["topics"] if t["name"] == name]
    check(len(ts) == 1, "v%d: metadata for %s lists %r" % (version, name,
                                                           [t["name"] for t in md["topics"]]))
    return ts[0]


@test
def test_metadata_auto_creates_topic_with_num_partitions():
    """num.partitions=3: Metadata for a new topic creates it (the first answer may be 5
    LEADER_NOT_AVAILABLE, as in Kafka); then every version v1..v12 shows partitions 0..2,
    leader = this node, replicas = ISR = [node], no offline replicas, leader epoch >= 0
    (v7+), one non-zero topic id (v10+), not internal; all-topics requests list it."""
    with Broker({"node.id": NODE_ID, "num.partitions": 3}) as b, KafkaRaw(b) as c:
        first = topic_md(c, 4, "auto")
        check(first["error_code"] in (0, LEADER_NOT_AVAILABLE), "first answer error %d"
              % first["error_code"])
        ensure_topic(c, "auto", 3)
        ids = set()
        for v in range(1, 13):
            t = topic_md(c, v, "auto")
            check(t["error_code"] == 0, "v%d error %d" % (v, t["error_code"]))
            check(t["is_internal"] is False, "v%d is_internal" % v)
            parts = sorted(t["partitions"], key=lambda p: p["partition"])
            check([p["partition"] for p in parts] == [0, 1, 2], "v%d partitions %r"
                  % (v, [p["partition"] for p in parts]))
            for p in parts:
                check(p["error_code"] == 0 and p["leader"] == NODE_ID and
                      p["replicas"] == [NODE_ID] and p["isr"] == [NODE_ID],
                      "v%d partition %r" % (v, p))
                if v >= 5:
                    check(p["offline"] == [], "v%d offline %r" % (v, p["offline"]))
                if v >= 7:
                    check(p["leader_epoch"] >= 0, "v%d leader epoch %d" % (v, p["leader_epoch"]))
            if v >= 10:
                check(t["topic_id"] != ZERO_UUID, "v%d zero topic id" % v)
                ids.add(t["topic_id"])
        check(len(ids) == 1, "topic id changes: %r" % ids)
        for v in (0, 1, 9, 12):
            md = c.metadata(v, topics=(() if v == 0 else None))
            check([t["name"] for t in md["topics"]] == ["auto"], "v%d all topics: %r"
                  % (v, [t["name"] for t in md["topics"]]))


@test
def test_metadata_topics_survive_restart():
    """Topics with 1 and 4 partitions, then a clean restart: same partitions, same topic
    ids, no extra topics; after SIGKILL and start again, the same."""
    with Broker({"node.id": NODE_ID, "num.partitions": 1}) as b:
        with KafkaRaw(b) as c:
            ensure_topic(c, "t1", 1)
        b.props["num.partitions"] = 4
        b.restart()
        with KafkaRaw(b) as c:
            ensure_topic(c, "t4", 4)
            before = {t["name"]: (t["topic_id"], len(t["partitions"]))
                      for t in c.metadata(12, topics=None)["topics"]}
        check(sorted(before) == ["t1", "t4"], "topics %r" % sorted(before))
        for how in ("restart", "kill"):
            if how == "restart":
                b.restart()
            else:
                b.kill()
                b.start()
            with KafkaRaw(b) as c:
                deadline = time.monotonic() + 10 * SLOW
                while True:
                    md = c.metadata(12, topics=None)
                    after = {t["name"]: (t["topic_id"], len(t["partitions"]))
                             for t in md["topics"]}
                    if after == before or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                check(after == before, "after %s: %r, before %r" % (how, after, before))
                for t in md["topics"]:
                    for p in t["partitions"]:
                        check(p["leader"] == NODE_ID, "after %s: %s-%d leader %d"
                              % (how, t["name"], p["partition"], p["leader"]))


@test
def test_metadata_does_not_create_when_not_allowed():
    """Metadata v4+ with AllowAutoTopicCreation=false, and any Metadata with
    auto.create.topics.enable=false: the topic answers 3 UNKNOWN_TOPIC_OR_PARTITION and is
    not created (an all-topics request stays empty)."""
    with Broker({"node.id": NODE_ID}) as b, KafkaRaw(b) as c:
        for v in (4, 9, 12):
            t = topic_md(c, v, "nocreate%d" % v, allow=False)
            check(t["error_code"] == UNKNOWN_TOPIC_OR_PARTITION, "v%d allow=false: error %d"
                  % (v, t["error_code"]))
        check(c.metadata(12, topics=None)["topics"] == [], "topics were created")
    with Broker({"node.id": NODE_ID, "auto.create.topics.enable": "false"}) as b, \
            KafkaRaw(b) as c:
        for v in (1, 4, 12):
            t = topic_md(c, v, "nocreate", allow=True)
            check(t["error_code"] == UNKNOWN_TOPIC_OR_PARTITION, "v%d disabled: error %d"
                  % (v, t["error_code"]))
        check(c.metadata(12, topics=None)["topics"] == [], "topics were created")


@test
def test_metadata_invalid_topic_names_refused():
    """Names Kafka refuses: 'bad/name', 'sp ace', '..', '.', 250 characters, '' -> 17
    INVALID_TOPIC_EXCEPTION, never created; the connection stays usable."""
    with Broker({"node.id": NODE_ID}) as b, KafkaRaw(b) as c:
        for name in ("bad/name", "sp ace", "..", ".", "x" * 250, ""):
            md = c.metadata(4, topics=[name], allow_auto_create=True)
            got = [(t["name"], t["error_code"]) for t in md["topics"]]
            check(got == [(name, INVALID_TOPIC_EXCEPTION)], "%r: %r" % (name[:20], got))
        check(c.metadata(12, topics=None)["topics"] == [], "invalid topics were created")
        ensure_topic(c, "ok.name-1_x", 1)


if __name__ == "__main__":
    run_tests()
