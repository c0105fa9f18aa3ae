"""DescribeTopicPartitions (75, KIP-966) with raw requests, as Kafka's
DescribeTopicPartitionsRequestHandler answers: topics in name order, a page of at most
ResponsePartitionLimit partitions, and a NextCursor (topic, first partition left out) to ask for
the next page. The clients here do not send this API (Kafka's 3.8+ Java admin client does).
asan-smoke
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Broker, Cluster, KafkaRaw, Reader, TAGS_NONE, carray, check,  # noqa: E402
                     cstring, i8, i32, parse_metadata, metadata_body, poll, run_tests, test)
from kafka_records import ensure_topic  # noqa: E402

DESCRIBE_TOPIC_PARTITIONS, METADATA = 75, 3
UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION, INVALID_REQUEST = 3, 17, 42
# READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (KIP-430).
TOPIC_OPS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))
ZERO_UUID = bytes(16)
TOPICS = {"dtp-a": 3, "dtp-b": 2, "dtp-c": 1}


def describe(k, topics, limit, cursor=None):
    """topics: names ([] = all); cursor: (topic, partition) or None -> (topics, next cursor)."""
    body = carray([cstring(t) + TAGS_NONE for t in topics]) + i32(limit)
    body += i8(-1) if cursor is None else i8(1) + cstring(cursor[0]) + i32(cursor[1]) + TAGS_NONE
    r = Reader(k.call(DESCRIBE_TOPIC_PARTITIONS, 0, body + TAGS_NONE))
    r.int32()  # throttle

    def ints(rr):
        return rr.int32()

    def partition(rr):
        p = {"error": rr.int16(), "index": rr.int32(), "leader": rr.int32(),
             "epoch": rr.int32(), "replicas": rr.carray(ints), "isr": rr.carray(ints),
             "elr": rr.carray(ints), "last_known_elr": rr.carray(ints),
             "offline": rr.carray(ints)}
        rr.tagged_fields()
        return p

    def topic(rr):
        t = {"error": rr.int16(), "name": rr.cstring(), "id": rr.uuid(),
             "internal": rr.boolean(), "partitions": rr.carray(partition), "ops": rr.int32()}
        rr.tagged_fields()
        return t
    out = r.carray(topic)
    nxt = None
    if r.int8() >= 0:
        nxt = (r.cstring(), r.int32())
        r.tagged_fields()
    r.tagged_fields()
    r.end()
    return out, nxt


def make_topics(b, k):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in a.create_topics([NewTopic(t, n, 1) for t, n in TOPICS.items()]).values():
        f.result(15)
    for t, n in TOPICS.items():
        ensure_topic(k, t, n)
    md = parse_metadata(k.call(METADATA, 12, metadata_body(12, list(TOPICS), False)), 12)
    return {t["name"]: t for t in md["topics"]}


def page_shape(page):
    topics, nxt = page
    return [(t["name"], [p["index"] for p in t["partitions"]]) for t in topics], nxt


@test
def test_describe_topic_partitions_pages_all_topics_with_cursor():
    """All topics (empty list), 2 partitions a page: dtp-a 0-1 then cursor (dtp-a, 2); dtp-a 2
    and dtp-b 0, cursor (dtp-b, 1); dtp-b 1 and dtp-c 0, the page full at the last topic's end,
    no cursor. Each partition as Metadata v12 has it (leader, epoch, replicas, ISR), no offline
    replicas, empty (not null) ELR lists; topic ids as Metadata's, every topic operation."""
    with Broker() as b, KafkaRaw(b) as k:
        md = make_topics(b, k)
        pages, cursor = [], None
        for _ in range(5):
            page = describe(k, [], 2, cursor)
            pages.append(page)
            cursor = page[1]
            if cursor is None:
                break
        got = [page_shape(p) for p in pages]
        want = [([("dtp-a", [0, 1])], ("dtp-a", 2)),
                ([("dtp-a", [2]), ("dtp-b", [0])], ("dtp-b", 1)),
                ([("dtp-b", [1]), ("dtp-c", [0])], None)]
        check(got == want, "pages %r" % got)
        for topics, _ in pages:
            for t in topics:
                m = md[t["name"]]
                check(t["error"] == 0 and t["id"] == m["topic_id"] and not t["internal"] and
                      t["ops"] == TOPIC_OPS, "topic %r vs metadata %r" % (t, m))
                mp = {p["partition"]: p for p in m["partitions"]}
                for p in t["partitions"]:
                    q = mp[p["index"]]
                    check(p["error"] == 0 and p["leader"] == q["leader"] >= 0 and
                          p["epoch"] == q["leader_epoch"] and p["replicas"] == q["replicas"] and
                          p["isr"] == q["isr"] and p["offline"] == [] and p["elr"] == [] and
                          p["last_known_elr"] == [], "partition %r vs %r" % (p, q))
        one, nxt = describe(k, [], 2000)
        check(page_shape((one, nxt)) ==
              ([("dtp-a", [0, 1, 2]), ("dtp-b", [0, 1]), ("dtp-c", [0])], None),
              "one page %r" % (page_shape((one, nxt)),))
        got = page_shape(describe(k, [], 0))
        check(got == ([("dtp-a", [0])], ("dtp-a", 1)), "limit 0 counts as 1: %r" % (got,))


@test
def test_describe_topic_partitions_listed_and_unknown_topics():
    """Listed topics come back sorted and once each; a missing topic answers
    UNKNOWN_TOPIC_OR_PARTITION and an illegal name INVALID_TOPIC_EXCEPTION (zero id, no
    partitions). A page full exactly at dtp-a's end points the cursor at the next listed topic
    even when it does not exist; the next page starts there. With a cursor, listed topics
    before it are left out."""
    with Broker() as b, KafkaRaw(b) as k:
        make_topics(b, k)
        topics, nxt = describe(k, ["dtp-c", "missing", "dtp-a", "dtp-a", "bad/name"], 2000)
        got = [(t["name"], t["error"], len(t["partitions"])) for t in topics]
        check(got == [("bad/name", INVALID_TOPIC_EXCEPTION, 0), ("dtp-a", 0, 3),
                      ("dtp-c", 0, 1), ("missing", UNKNOWN_TOPIC_OR_PARTITION, 0)] and
              nxt is None, "listed %r cursor %r" % (got, nxt))
        for t in topics:
            if t["error"]:
                check(t["id"] == ZERO_UUID and t["ops"] == TOPIC_OPS and not t["internal"],
                      "unknown topic %r" % t)
        got = page_shape(describe(k, ["zzz", "dtp-a"], 3))
        check(got == ([("dtp-a", [0, 1, 2])], ("zzz", 0)), "full at topic end %r" % (got,))
        topics, nxt = describe(k, ["zzz", "dtp-a"], 3, ("zzz", 0))
        check([(t["name"], t["error"]) for t in topics] == [("zzz", UNKNOWN_TOPIC_OR_PARTITION)]
              and nxt is None, "page at zzz %r %r" % (topics, nxt))
        got = page_shape(describe(k, ["dtp-a", "dtp-b", "dtp-c"], 1, ("dtp-b", 1)))
        check(got == ([("dtp-b", [1])], ("dtp-c", 0)), "from dtp-b 1: %r" % (got,))
        got = page_shape(describe(k, [], 10, ("dtp-a", 7)))
        check(got == ([("dtp-a", []), ("dtp-b", [0, 1]), ("dtp-c", [0])], None),
              "cursor past dtp-a's partitions %r" % (got,))


@test
def test_describe_topic_partitions_invalid_cursor():
    """A cursor naming a topic that is not in the listed topics, or a negative partition, is an
    invalid request: each listed topic answers INVALID_REQUEST, without partitions or cursor."""
    with Broker() as b, KafkaRaw(b) as k:
        make_topics(b, k)
        for cursor in (("dtp-b", 0), ("dtp-a", -1)):
            topics, nxt = describe(k, ["dtp-c", "dtp-a"], 10, cursor)
            got = [(t["name"], t["error"], t["partitions"]) for t in topics]
            check(got == [("dtp-c", INVALID_REQUEST, []), ("dtp-a", INVALID_REQUEST, [])] and
                  nxt is None, "cursor %r: %r %r" % (cursor, got, nxt))
        check(describe(k, [], 10, ("dtp-a", -1)) == ([], None), "all topics, negative cursor")


@test
def test_describe_topic_partitions_offline_replicas_in_cluster():
    """3 nodes, RF=3: once a non-controller node is killed and fenced, every partition lists it
    as an offline replica, as Metadata does, while it stays in the replicas."""
    with Cluster(3) as c:
        ctl = c.wait_controller()
        check(c.create_topic("dtp-r", 2, 3) is None, "create dtp-r")
        c.wait_topic("dtp-r", 2)
        victim = [i for i in c.ids if i != ctl][0]
        c.kill(victim)

        def offline():
            with c.raw(ctl) as k:
                topics, _ = describe(k, ["dtp-r"], 10)
            ps = topics[0]["partitions"]
            if all(p["offline"] == [victim] for p in ps):
                return ps
            return None
        ps = poll(offline, 15, "dtp-r offline replicas = [%d]" % victim)
        md = c.raw_partitions("dtp-r", ctl)
        for p in ps:
            check(victim in p["replicas"] and md[p["index"]]["offline"] == [victim] and
                  p["leader"] == md[p["index"]]["leader"] != victim, "partition %r vs %r"
                  % (p, md[p["index"]]))


if __name__ == "__main__":
    run_tests()
