"""Client quota limits beyond byte rates (Kafka's ClientQuotaManager, ClientRequestQuotaManager
and ControllerMutationQuotaManager), through the raw protocol and confluent-kafka's AdminClient.

What is tried:
- idle rate trackers expire: 60 client ids each open a connection under a default client-id
  quota (one sensor each, gregor_quota_sensors counts them); the ones still connected keep
  theirs, and once every connection closed and quota.inactive.sensor.expiration.ms passed,
  the count drops back (bounded memory with many client ids);
- request_percentage: a client id limited to 0.01% of a thread sending Metadata requests gets
  a response with throttle_time_ms > 0 (like a byte-rate throttle), another client id beside
  it gets none;
- controller_mutation_rate (KIP-599, 2 partitions/s, burst 4): a CreateTopics of 10
  partitions is accepted and leaves the client in debt; then, while in debt, a CreateTopics v7,
  a CreatePartitions v3 and a DeleteTopics v6 are refused per topic with
  THROTTLING_QUOTA_EXCEEDED and a throttle time, the topics untouched; an old CreateTopics v4
  is accepted but throttled (throttle_time_ms > 0); confluent-kafka's AdminClient (its
  CreateTopics v4) creates topics while throttled; after the debt is paid back a strict
  request passes again; a client id without the quota is never throttled.
asan-smoke tsan-smoke
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, TAGS_NONE, Broker, KafkaRaw, Reader, array,  # noqa: E402
                     boolean, carray, check, comment, cstring, free_port, i16, i32, poll,
                     run_tests, string, test)
from dynamic_configs import metric, set_quota  # noqa: E402

METADATA, CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 3, 19, 20, 37
THROTTLING_QUOTA_EXCEEDED = 89


def metadata_throttle(b, client_id, n, stop_when_throttled=False):
    """The largest throttle_time_ms of n Metadata v4 requests on one connection (or the first
    one above 0, when stop_when_throttled: a throttled channel is muted for that long, and a
    sanitizer build's slower requests make each throttle longer)."""
    worst = 0
    with KafkaRaw(b, client_id=client_id) as k:
        for _ in range(n):
            r = Reader(k.call(METADATA, 4, i32(-1) + boolean(False)))
            worst = max(worst, r.int32())
            if stop_when_throttled and worst > 0:
                break
    return worst


@test
def test_idle_quota_sensors_expire():
    mport = free_port()
    with Broker({"quota.inactive.sensor.expiration.ms": "1500",
                 "metrics.listener": "http://%s:%d" % (HOST, mport)}) as b:
        set_quota(b, [("client-id", None)], producer_byte_rate=1e9)
        base = metric(mport, "gregor_quota_sensors")
        conns = []
        for i in range(60):
            k = KafkaRaw(b, client_id="many-%d" % i)
            k.metadata(version=1)
            conns.append(k)
        n = metric(mport, "gregor_quota_sensors")
        check(n >= base + 60, "sensors with 60 client ids: %r (before %r)" % (n, base))
        for k in conns[10:]:
            k.close()
        time.sleep(2.5)
        kept = metric(mport, "gregor_quota_sensors")
        check(kept >= base + 10, "the 10 connected client ids keep their sensors: %r" % kept)
        check(kept <= base + 12, "the idle ones expired: %r" % kept)
        for k in conns[:10]:
            k.close()
        low, = poll(lambda: (lambda v: (v,) if v <= base + 1 else None)(
            metric(mport, "gregor_quota_sensors")), 10 * SLOW, "every idle sensor expired")
        comment("quota sensors: %d with 60 client ids, %d with 10 connected, %d after" % (
            n, kept, low))


@test
def test_request_percentage_reports_throttle_time():
    with Broker({"quota.window.num": "2"}) as b:
        set_quota(b, [("client-id", "busy")], request_percentage=0.01)
        # The broker applies the quota when it replays the controller's record, which may come
        # a moment after AlterClientQuotas is answered (as in Kafka): until the deadline, rounds
        # of 300 Metadata requests stop at the first throttled answer.
        deadline = time.monotonic() + 10 * SLOW
        t = 0
        while t == 0 and time.monotonic() < deadline:
            t = metadata_throttle(b, "busy", 300, stop_when_throttled=True)
        comment("request_percentage=0.01: largest throttle_time_ms %d" % t)
        check(t > 0, "no throttle_time_ms for a client over request_percentage")
        check(metadata_throttle(b, "idle", 300) == 0, "another client id throttled")


def create_topics(b, client_id, version, topics):
    """CreateTopics (v4 or v7) -> (throttle_time_ms, [(name, error_code)])."""
    flex = version >= 5
    if flex:
        body = carray([cstring(n) + i32(p) + i16(1) + carray([]) + carray([]) + TAGS_NONE
                       for n, p in topics]) + i32(10000) + boolean(False) + TAGS_NONE
    else:
        body = array([string(n) + i32(p) + i16(1) + array([]) + array([]) for n, p in topics]) + \
            i32(10000) + boolean(False)
    with KafkaRaw(b, client_id=client_id) as k:
        r = Reader(k.call(CREATE_TOPICS, version, body))
    throttle = r.int32()

    def topic(r):
        if not flex:
            return r.string(), r.int16(), r.string()
        name = r.cstring()
        r.take(16)
        code, _ = r.int16(), r.cstring()
        r.int32(), r.int16()
        r.carray(lambda r: (r.cstring(), r.cstring(), r.boolean(), r.int8(),
                                   r.boolean(), r.tagged_fields()))
        r.tagged_fields()
        return name, code, None
    out = r.carray(topic) if flex else r.array(topic)
    return throttle, [(n, c) for n, c, _ in out]


def create_partitions(b, client_id, topic, count):
    """CreatePartitions v3 (flexible) -> (throttle_time_ms, [(name, error_code)])."""
    body = carray([cstring(topic) + i32(count) + b"\x00" + TAGS_NONE]) + i32(10000) + \
        boolean(False) + TAGS_NONE
    with KafkaRaw(b, client_id=client_id) as k:
        r = Reader(k.call(CREATE_PARTITIONS, 3, body))
    throttle = r.int32()
    out = r.carray(lambda r: (r.cstring(), r.int16(), r.cstring(), r.tagged_fields()))
    return throttle, [(n, c) for n, c, _, _ in out]


def delete_topics(b, client_id, topic):
    """DeleteTopics v6 by name -> (throttle_time_ms, [(name, error_code)])."""
    body = carray([cstring(topic) + b"\x00" * 16 + TAGS_NONE]) + i32(10000) + TAGS_NONE
    with KafkaRaw(b, client_id=client_id) as k:
        r = Reader(k.call(DELETE_TOPICS, 6, body))
    throttle = r.int32()
    out = r.carray(lambda r: (r.cstring(), r.take(16), r.int16(),
                                     r.cstring(), r.tagged_fields()))
    return throttle, [(o[0], o[2]) for o in out]


@test
def test_controller_mutation_rate_throttles_topic_changes():
    from confluent_kafka.admin import AdminClient, NewTopic
    with Broker({"quota.window.num": "2", "num.partitions": "1"}) as b:
        set_quota(b, [("client-id", "mut")], controller_mutation_rate=2)
        t, res = create_topics(b, "mut", 7, [("m-big", 10)])
        check(res == [("m-big", 0)], "first CreateTopics: %r" % (res,))
        comment("10 partitions at 2/s (burst 4): throttle_time_ms %d" % t)
        check(2000 <= t <= 4000, "throttle after going 6 partitions into debt: %d" % t)

        t, res = create_topics(b, "mut", 7, [("m-refused", 1), ("m-refused2", 2)])
        check(res == [("m-refused", THROTTLING_QUOTA_EXCEEDED),
                      ("m-refused2", THROTTLING_QUOTA_EXCEEDED)] and t > 0,
              "CreateTopics v7 while in debt: %r, throttle %d" % (res, t))
        t, res = create_partitions(b, "mut", "m-big", 12)
        check(res == [("m-big", THROTTLING_QUOTA_EXCEEDED)] and t > 0,
              "CreatePartitions v3 while in debt: %r, throttle %d" % (res, t))
        t, res = delete_topics(b, "mut", "m-big")
        check(res == [("m-big", THROTTLING_QUOTA_EXCEEDED)] and t > 0,
              "DeleteTopics v6 while in debt: %r, throttle %d" % (res, t))
        with KafkaRaw(b) as k:
            md = k.metadata(version=4, topics=["m-big", "m-refused"], allow_auto_create=False)
        parts = {t["name"]: (t["error_code"], len(t["partitions"])) for t in md["topics"]}
        check(parts == {"m-big": (0, 10), "m-refused": (3, 0)},
              "topics untouched by the refused requests: %r" % (parts,))

        t, res = create_topics(b, "mut", 4, [("m-old", 2)])
        check(res == [("m-old", 0)] and t > 0,
              "CreateTopics v4 while in debt: accepted and throttled: %r, %d" % (res, t))
        a = AdminClient({"bootstrap.servers": b.bootstrap, "client.id": "mut"})
        for f in a.create_topics([NewTopic("m-admin", 2, 1)]).values():
            f.result(timeout=30 * SLOW)
        comment("AdminClient (CreateTopics v4) created m-admin while throttled")

        t, res = create_topics(b, "other", 7, [("m-other", 8)])
        check(res == [("m-other", 0)] and t == 0, "another client id: %r, %d" % (res, t))

        def paid_back():
            t, res = create_topics(b, "mut", 7, [("m-later", 1)])
            return (t, res) if res == [("m-later", 0)] else None
        t, res = poll(paid_back, 20 * SLOW, "a strict CreateTopics once the debt is paid")
        comment("accepted again after the debt was paid (throttle %d)" % t)


if __name__ == "__main__":
    run_tests()
