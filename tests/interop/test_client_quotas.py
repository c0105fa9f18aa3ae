"""Client quotas (KIP-546) and Kafka's throttling (KIP-219), issue #17.

What is tried:
- a confluent-kafka producer whose client id is limited to 1 MB/s (producer_byte_rate, set with
  `gregor quota set`) is held to within 10% of that, while a second producer with another
  client id beside it runs far faster; librdkafka's statistics show the first was throttled
  and the second never. The broker runs with quota.window.num=2 (samples of 1 s): Kafka lets a
  new sensor burst (quota.window.num - 1) windows' worth before throttling, and with the
  default 11 that burst (10 MB) would take longer than this test to pay back. The steady
  rate is measured after the first 2 s.
- a consumer limited by consumer_byte_rate reads no faster than its quota (plus the burst);
- raw Produce answers carry throttle_time_ms per Kafka's precedence order:
  /users/ANONYMOUS/clients/fast beats /clients/<default>;
- AlterClientQuotas refuses (INVALID_REQUEST, per entry) an unknown entity type, an unknown
  key, a value <= 0, a fractional byte rate, an empty entity, a duplicate key, a repeated
  entity type, an empty name; validate_only stores nothing; remove deletes;
- DescribeClientQuotas filters (exact, default, any specified, strict) as Kafka's
  ClientQuotasImage does and refuses a bad filter;
- quotas live in the metadata log: they survive SIGKILL and restart, and one set through a
  node that is not the active controller (forwarded) is described by every node;
- a user quota applies to the SASL principal (PLAIN alice), not to other users or ANONYMOUS;
- request_percentage mutes a client over it (one window per request), not another client;
- telemetry (KIP-714, GetTelemetrySubscriptions 71 / PushTelemetry 72) is not advertised, so
  clients that probe for it do without.
asan-smoke
"""
import json
import os
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (GREGOR_BIN, HOST, Broker, Cluster, KafkaRaw, Reader, array,  # noqa: E402
                     boolean, check, comment, free_port, i8, run_tests, string, test,
                     wait_until)
from harness import nbytes as nbytes_  # noqa: E402
from kafka_records import ensure_topic, parse_produce, produce_body, record_batch  # noqa: E402

DESCRIBE_CLIENT_QUOTAS, ALTER_CLIENT_QUOTAS, PRODUCE = 48, 49, 0
SASL_HANDSHAKE, SASL_AUTHENTICATE, METADATA = 17, 36, 3
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="admin-secret" user_alice="alice-secret" '
              'user_bob="bob-secret";')
INVALID_REQUEST = 42
MB = 1000 * 1000


def cli(broker, *args):
    p = subprocess.run([GREGOR_BIN, "quota"] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, GREGOR_BROKERS=broker.bootstrap))
    return p.returncode, p.stdout, p.stderr


def alter(broker, entries, validate_only=False):
    """entries: [([(type, name)], [(key, value, remove)])] -> [(error_code, message)]."""
    def entity(e):
        return string(e[0]) + string(e[1])

    def op(o):
        return string(o[0]) + struct.pack(">d", o[1]) + boolean(o[2])
    body = array([array(ent, entity) + array(ops, op) for ent, ops in entries]) + \
        boolean(validate_only)
    with KafkaRaw(broker) as k:
        r = Reader(k.call(ALTER_CLIENT_QUOTAS, 0, body))
    r.int32()
    out = r.array(lambda r: (r.int16(), r.string(),
                             r.array(lambda r: (r.string(), r.string()))))
    r.end()
    return [(code, msg) for code, msg, _ in out]


def describe(broker, components=(), strict=False):
    """components: [(type, match_type, match)] -> (error_code, {entity: {key: value}}), the
    entity a sorted tuple of (type, name)."""
    body = array([string(t) + i8(m) + string(n) for t, m, n in components]) + boolean(strict)
    with KafkaRaw(broker) as k:
        r = Reader(k.call(DESCRIBE_CLIENT_QUOTAS, 0, body))
    r.int32()
    code, _ = r.int16(), r.string()
    entries = r.array(lambda r: (r.array(lambda r: (r.string(), r.string())),
                                 r.array(lambda r: (r.string(), struct.unpack(">d", r.take(8))[0]))))
    r.end()
    return code, {tuple(sorted(e)): dict(v) for e, v in (entries or [])}


def set_quota(broker, entity, **values):
    errs = alter(broker, [(entity, [(k, v, False) for k, v in values.items()])])
    check(errs == [(0, None)], "AlterClientQuotas %r %r: %r" % (entity, values, errs))


class Client:
    """One confluent-kafka producer in a thread, producing 1000-byte values for `seconds`;
    records (time, acked bytes) each 0.5 s and the largest throttle librdkafka reported."""

    def __init__(self, bootstrap, topic, client_id, seconds):
        self.bootstrap, self.topic, self.client_id, self.seconds = \
            bootstrap, topic, client_id, seconds
        self.acked, self.timeline, self.throttle_max, self.errors = 0, [], 0, []
        self.thread = threading.Thread(target=self.run)

    def on_stats(self, js):
        for b in json.loads(js)["brokers"].values():
            if b.get("nodeid", -1) >= 0:
                self.throttle_max = max(self.throttle_max, b["throttle"]["max"])

    def on_delivery(self, err, msg):
        if err is None:
            self.acked += len(msg.value())
        else:
            self.errors.append(err)

    def run(self):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.bootstrap, "client.id": self.client_id,
                      "linger.ms": 5, "batch.size": 65536, "queue.buffering.max.kbytes": 1024,
                      "statistics.interval.ms": 500, "stats_cb": self.on_stats,
                      "on_delivery": self.on_delivery})
        value = b"x" * 1000
        t0 = time.monotonic()
        next_mark = t0
        while True:
            now = time.monotonic()
            if now >= next_mark:
                self.timeline.append((now - t0, self.acked))
                next_mark += 0.5
            if now - t0 >= self.seconds:
                break
            try:
                p.produce(self.topic, value)
            except BufferError:
                p.poll(0.005)
            p.poll(0)
        p.flush(20)
        p.poll(0.6)  # one more statistics callback

    def rate_between(self, t_from, t_to):
        """Acked bytes per second between the marks nearest t_from and t_to."""
        a = min(self.timeline, key=lambda m: abs(m[0] - t_from))
        b = min(self.timeline, key=lambda m: abs(m[0] - t_to))
        return (b[1] - a[1]) / (b[0] - a[0])


@test
def test_producer_limited_to_1mb_per_s_is_throttled_to_it_and_its_neighbour_is_not():
    with Broker({"quota.window.num": 2, "num.partitions": 1}) as b:
        rc, out, err = cli(b, "set", "--client-id", "limited", "--producer-byte-rate", MB)
        check(rc == 0 and out.strip() == "set", "gregor quota set: %d %r %r" % (rc, out, err))
        with KafkaRaw(b) as k:
            ensure_topic(k, "quota-produce")
        limited = Client(b.bootstrap, "quota-produce", "limited", 8.0)
        free = Client(b.bootstrap, "quota-produce", "free", 8.0)
        for c in (limited, free):
            c.thread.start()
        for c in (limited, free):
            c.thread.join(60)
        check(not limited.errors and not free.errors,
              "delivery errors: %r %r" % (limited.errors[:3], free.errors[:3]))
        steady = limited.rate_between(2.0, 8.0)
        free_rate = free.rate_between(2.0, 8.0)
        comment("limited: %.3f MB/s steady (2-8 s), throttle max %d ms; free: %.2f MB/s, "
                "throttle max %d ms" % (steady / MB, limited.throttle_max, free_rate / MB,
                                        free.throttle_max))
        check(0.9 * MB <= steady <= 1.1 * MB,
              "limited producer ran at %.3f MB/s, not within 10%% of 1 MB/s" % (steady / MB))
        check(free_rate > 3 * MB, "unlimited producer only reached %.2f MB/s" % (free_rate / MB))
        check(limited.throttle_max > 0, "librdkafka saw no throttle time for the limited client")
        check(free.throttle_max == 0, "the unlimited client was throttled %d ms"
              % free.throttle_max)


@test
def test_consumer_byte_rate_limits_fetched_bytes():
    from confluent_kafka import Consumer, Producer
    with Broker({"quota.window.num": 2, "num.partitions": 1}) as b:
        # Small batches: a fetch returns whole batches, so they set the throttle's granularity.
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 20, "batch.size": 16384})
        for _ in range(8000):
            p.produce("quota-fetch", b"y" * 1000)
            p.poll(0)
        check(p.flush(30) == 0, "could not produce the test data")
        p = None  # its connections close before the broker stops
        set_quota(b, [("client-id", "slow-reader")], consumer_byte_rate=1.0 * MB)
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "g", "client.id":
                      "slow-reader", "auto.offset.reset": "earliest",
                      "max.partition.fetch.bytes": 65536})
        c.subscribe(["quota-fetch"])
        got, t_first = 0, None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            if t_first is None:
                t_first = time.monotonic()
            got += len(m.value())
            if time.monotonic() - t_first >= 5.0:
                break
        c.close()
        check(t_first is not None, "the consumer read nothing")
        # 5 s at 1 MB/s plus the first window's burst allowance, with 10% slack.
        comment("consumer read %.2f MB in 5 s" % (got / MB))
        check(got <= 1.1 * 6 * MB, "consumer read %.2f MB in 5 s at 1 MB/s" % (got / MB))
        check(got >= 0.9 * 4 * MB, "consumer read only %.2f MB in 5 s" % (got / MB))


def produce_throttle(broker, client_id, nbytes, port=None, user=None):
    """One raw Produce v8 of nbytes of values from client_id -> its throttle_time_ms; with
    user, over the SASL_PLAINTEXT port after SASL PLAIN as that user."""
    recs = [(None, b"z" * 1000) for _ in range(nbytes // 1000)]
    body = produce_body({"quota-raw": {0: record_batch(recs)}})
    with KafkaRaw(HOST, port or broker.port, client_id=client_id) as k:
        if user:
            check(Reader(k.call(SASL_HANDSHAKE, 1, string("PLAIN"))).int16() == 0, "handshake")
            token = ("\0%s\0%s-secret" % (user, user)).encode()
            check(Reader(k.call(SASL_AUTHENTICATE, 1, nbytes_(token))).int16() == 0,
                  "PLAIN %s" % user)
        res, throttle = parse_produce(k.call(PRODUCE, 8, body))
    check(res[("quota-raw", 0)]["error_code"] == 0, "produce failed: %r" % res)
    return throttle


@test
def test_throttle_time_follows_kafkas_precedence_order():
    with Broker({"num.partitions": 1}) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "quota-raw")
        check(produce_throttle(b, "anyone", 200000) == 0, "throttled without any quota")
        set_quota(b, [("client-id", None)], producer_byte_rate=1000)
        set_quota(b, [("user", "ANONYMOUS"), ("client-id", "fast")], producer_byte_rate=1e9)
        t_other = produce_throttle(b, "other", 200000)
        t_fast = produce_throttle(b, "fast", 200000)
        comment("throttle: other %d ms, fast %d ms" % (t_other, t_fast))
        # 200 kB over the 10 s minimum window at 1000 B/s: (20000 - 1000) / 1000 * 10 s.
        check(t_other > 100000, "the /clients/<default> quota did not throttle: %d" % t_other)
        check(t_fast == 0, "/users/ANONYMOUS/clients/fast should win: throttled %d" % t_fast)


@test
def test_user_quotas_apply_to_the_sasl_principal():
    plain, sasl = free_port(), free_port()
    props = {"listeners": "PLAINTEXT://%s:%d,SASL_PLAINTEXT://%s:%d" % (HOST, plain, HOST, sasl),
             "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
             "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
             "num.partitions": 1}
    with Broker(props) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, "quota-raw")
        set_quota(b, [("user", "alice")], producer_byte_rate=1000)
        t_alice = produce_throttle(b, "app", 100000, sasl, "alice")
        t_bob = produce_throttle(b, "app", 100000, sasl, "bob")
        t_anonymous = produce_throttle(b, "app", 100000)
        comment("throttle: alice %d ms, bob %d ms, ANONYMOUS %d ms" % (t_alice, t_bob,
                                                                       t_anonymous))
        check(t_alice > 10000, "alice's /users/alice quota did not throttle: %d" % t_alice)
        check(t_bob == 0 and t_anonymous == 0, "others throttled: bob %d, ANONYMOUS %d"
              % (t_bob, t_anonymous))


@test
def test_request_percentage_mutes_a_busy_client():
    """request_percentage: a client over it gets its connection muted (bounded by one window,
    1 s), so back-to-back requests slow down; another client id does not."""
    with Broker() as b:
        set_quota(b, [("client-id", "busy")], request_percentage=1e-9)

        def three_requests(client_id):
            with KafkaRaw(b, client_id=client_id) as k:
                t0 = time.monotonic()
                for _ in range(3):
                    k.call(METADATA, 1, array([]))
                return time.monotonic() - t0
        busy, idle = three_requests("busy"), three_requests("idle")
        comment("three Metadata requests: busy %.2f s, idle %.2f s" % (busy, idle))
        check(busy >= 1.8, "the busy client was not muted: %.2f s" % busy)
        check(busy <= 4.0, "muted longer than one window per request: %.2f s" % busy)
        check(idle < 0.5, "the idle client was slowed down: %.2f s" % idle)


@test
def test_alter_client_quotas_refuses_what_kafka_refuses():
    with Broker() as b:
        bad = [
            ([("group", "g")], [("producer_byte_rate", 100, False)]),
            ([("client-id", "c")], [("bytes_per_fortnight", 100, False)]),
            ([("client-id", "c")], [("producer_byte_rate", -5, False)]),
            ([("client-id", "c")], [("producer_byte_rate", 0, False)]),
            ([("client-id", "c")], [("producer_byte_rate", 10.5, False)]),
            ([], [("producer_byte_rate", 100, False)]),
            ([("client-id", "c")], [("producer_byte_rate", 1, False),
                                    ("producer_byte_rate", 2, False)]),
            ([("user", "u"), ("user", "v")], [("producer_byte_rate", 100, False)]),
            ([("user", "")], [("producer_byte_rate", 100, False)]),
            ([("client-id", "c")], [("request_percentage", float("nan"), False)]),
        ]
        res = alter(b, bad)
        for (entry, (code, msg)) in zip(bad, res):
            check(code == INVALID_REQUEST and msg, "%r: %r, wanted INVALID_REQUEST" % (entry,
                                                                                     (code, msg)))
        check(describe(b) == (0, {}), "refused entries stored something: %r" % (describe(b),))
        ok = alter(b, [([("client-id", "c")], [("request_percentage", 12.5, False)])], True)
        check(ok == [(0, None)], "validate_only: %r" % ok)
        check(describe(b) == (0, {}), "validate_only stored: %r" % (describe(b),))
        set_quota(b, [("client-id", "c")], request_percentage=12.5, producer_byte_rate=1024)
        check(describe(b)[1] == {(("client-id", "c"),): {"request_percentage": 12.5,
                                                          "producer_byte_rate": 1024.0}},
              "after set: %r" % (describe(b),))
        check(alter(b, [([("client-id", "c")], [("request_percentage", 0, True)])]) ==
              [(0, None)], "remove failed")
        check(describe(b)[1] == {(("client-id", "c"),): {"producer_byte_rate": 1024.0}},
              "after remove: %r" % (describe(b),))
        rc, out, err = cli(b, "remove", "--client-id", "c")
        check(rc == 0 and describe(b) == (0, {}), "gregor quota remove: %d %r %r %r"
              % (rc, out, err, describe(b)))
        rc, out, err = cli(b, "set", "--client-id", "c", "--producer-byte-rate", "-1")
        check(rc == 1 and "INVALID_REQUEST" in err, "CLI with a bad value: %d %r" % (rc, err))


@test
def test_describe_client_quotas_filters_like_kafka():
    with Broker() as b:
        set_quota(b, [("user", "alice")], producer_byte_rate=1000)
        set_quota(b, [("user", None)], producer_byte_rate=2000)
        set_quota(b, [("user", "alice"), ("client-id", "app")], consumer_byte_rate=3000)
        set_quota(b, [("client-id", "app")], request_percentage=50)
        set_quota(b, [("client-id", None)], consumer_byte_rate=4000)
        alice, default_user = (("user", "alice"),), (("user", None),)
        alice_app = (("client-id", "app"), ("user", "alice"))
        app, default_client = (("client-id", "app"),), (("client-id", None),)
        cases = [
            ([], False, {alice, default_user, alice_app, app, default_client}),
            ([("user", 0, "alice")], False, {alice, alice_app}),
            ([("user", 0, "alice")], True, {alice}),
            ([("user", 1, None)], False, {default_user}),
            ([("user", 2, None)], False, {alice, default_user, alice_app}),
            ([("client-id", 2, None)], True, {app, default_client}),
            ([("user", 2, None), ("client-id", 0, "app")], False, {alice_app}),
            ([("client-id", 1, None)], False, {default_client}),
        ]
        for comps, strict, want in cases:
            code, got = describe(b, comps, strict)
            check(code == 0 and set(got) == want, "filter %r strict=%r: %r, wanted %r"
                  % (comps, strict, sorted(got, key=repr), sorted(want, key=repr)))
        check(describe(b)[1][alice_app] == {"consumer_byte_rate": 3000.0}, "values of alice/app")
        for comps in ([("user", 0, None)], [("user", 1, "x")], [("user", 2, None),
                                                                ("user", 1, None)],
                      [("", 2, None)]):
            code, _ = describe(b, comps)
            check(code == INVALID_REQUEST, "bad filter %r answered %d" % (comps, code))
        rc, out, _ = cli(b, "list", "--user", "alice")
        check(rc == 0 and "user=alice  producer_byte_rate=1000" in out
              and "client-id=app" in out, "gregor quota list --user alice: %r" % out)


@test
def test_quotas_survive_sigkill_and_restart():
    with Broker() as b:
        set_quota(b, [("client-id", "kept")], producer_byte_rate=5000)
        set_quota(b, [("user", None), ("client-id", None)], request_percentage=25)
        before = describe(b)
        b.kill()
        b.start()
        after = describe(b)
        check(after == before and len(after[1]) == 2, "after restart: %r, before %r"
              % (after, before))


@test
def test_a_quota_set_through_a_follower_reaches_every_node():
    with Cluster(3) as c:
        ctl = c.wait_controller()
        via = next(i for i in (1, 2, 3) if i != ctl)
        set_quota(c.node(via), [("client-id", "everywhere")], producer_byte_rate=4096)
        want = {(("client-id", "everywhere"),): {"producer_byte_rate": 4096.0}}
        for i in (1, 2, 3):
            wait_until(lambda: describe(c.node(i)) == (0, want), 10,
                       what="node %d to describe the quota set through node %d" % (i, via))


@test
def test_quota_cli_help_and_errors():
    p = subprocess.run([GREGOR_BIN, "quota", "--help"], capture_output=True, text=True)
    check(p.returncode == 0 and "examples:" in p.stdout and "--producer-byte-rate" in p.stdout,
          "quota --help: %d %r" % (p.returncode, p.stdout))
    addr = "127.0.0.1:%d" % free_port()
    for args in (["list"], ["set", "--client-id", "x", "--producer-byte-rate", "5"]):
        p = subprocess.run([GREGOR_BIN, "quota"] + args + ["-b", addr], capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == 69 and p.stderr.count("\n") == 1 and addr in p.stderr,
              "%r without a broker: %d %r" % (args, p.returncode, p.stderr))
    for args in (["set"], ["set", "--client-id", "x"], ["frob"],
                 ["set", "--user", "u", "--default-user", "--producer-byte-rate", "1"]):
        p = subprocess.run([GREGOR_BIN, "quota"] + args + ["-b", addr], capture_output=True,
                           text=True, timeout=30)
        check(p.returncode == 64, "%r: exit %d, wanted 64" % (args, p.returncode))


@test
def test_telemetry_apis_are_not_advertised():
    with Broker() as b, KafkaRaw(b) as k:
        keys = k.api_versions(3)["api_keys"]
        check(71 not in keys and 72 not in keys, "telemetry advertised: %r" % sorted(keys))
        check(keys.get(48) == (0, 1) and keys.get(49) == (0, 1),
              "client quota APIs advertised as %r %r" % (keys.get(48), keys.get(49)))


if __name__ == "__main__":
    run_tests()
