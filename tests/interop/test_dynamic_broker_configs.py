"""Dynamic broker configs (KIP-226) on a three-node cluster through confluent-kafka's
AdminClient: AlterConfigs on BROKER resources ("" = the cluster-wide default, or one broker id)
is stored in the metadata log and applied by every broker at once.

What is tried:
- the cluster default log.retention.ms is described with source DYNAMIC_DEFAULT_BROKER_CONFIG
  on the "" resource, and a topic without an override inherits it (same source) on every node;
- a per-broker value for broker 2 wins there (DYNAMIC_BROKER_CONFIG) and only there;
- message.max.bytes lowered cluster-wide makes a 5000-byte record fail with
  MSG_SIZE_TOO_LARGE; removing it again lets the record through (the settings really apply);
- refused: a key that cannot change at run time (log.dirs), a bad value, a broker name that is
  no id, and describing another broker's id (INVALID_REQUEST, as Kafka);
- a restarted node still has the dynamic configs (they live in the metadata log);
- max.connections.per.ip and max.connections (not topic configs: Kafka's
  DynamicConnectionQuota) set on "" limit the next connections of a running broker, keep the
  open ones, refuse bad values, and lift when removed.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Broker, Cluster, ConnectionClosed, KafkaRaw, Reader,  # noqa: E402
                     array, boolean, check, comment, i8, poll, run_tests, string, test)

ALTER_CONFIGS, DESCRIBE_CONFIGS, BROKER_TYPE = 33, 32, 4


def admin(c, node=None):
    from confluent_kafka.admin import AdminClient
    bs = c.node(node).bootstrap if node else c.bootstrap
    return AdminClient({"bootstrap.servers": bs})


class RawError:
    """A raw answer's error, shaped like the KafkaError the AdminClient gives."""

    def __init__(self, code, msg):
        self._code, self.msg = code, msg

    def code(self):
        return self._code

    def __repr__(self):
        return "RawError(%d, %r)" % (self._code, self.msg)


def alter_default(c, configs, via=1):
    """AlterConfigs v0 of the cluster-default BROKER resource "" (the Python client refuses an
    empty resource name) -> None or a RawError. c: a Cluster, or a Broker (via unused)."""
    body = array([i8(BROKER_TYPE) + string("") + array(
        [string(k) + string(v) for k, v in configs.items()])]) + boolean(False)
    with (KafkaRaw(c) if isinstance(c, Broker) else c.raw(via)) as k:
        r = Reader(k.call(ALTER_CONFIGS, 0, body))
    r.int32()
    (err, msg, _, _), = r.array(lambda r: (r.int16(), r.string(), r.int8(), r.string()))
    return None if err == 0 else RawError(err, msg)


def describe_default(c, via=1, name=""):
    """DescribeConfigs v1 of a BROKER resource (default: "") -> {name: (value, source)}, or
    the RawError."""
    body = array([i8(BROKER_TYPE) + string(name) + (b"\xff\xff\xff\xff")]) + boolean(False)
    with (KafkaRaw(c) if isinstance(c, Broker) else c.raw(via)) as k:
        r = Reader(k.call(DESCRIBE_CONFIGS, 1, body))
    r.int32()

    def entry(r):
        name, value, _, source, _ = r.string(), r.string(), r.boolean(), r.int8(), r.boolean()
        r.array(lambda r: (r.string(), r.string(), r.int8()))
        return name, (value, source)

    def result(r):
        err, msg, _, _ = r.int16(), r.string(), r.int8(), r.string()
        entries = dict(r.array(entry))
        return entries if err == 0 else RawError(err, msg)
    return r.array(result)[0]


def alter(a, rtype, name, configs):
    """AlterConfigs (full replace) of one resource -> None or the KafkaError."""
    from confluent_kafka.admin import ConfigResource
    res = ConfigResource(rtype, name, set_config=configs)
    try:
        a.alter_configs([res])[res].result(timeout=15 * SLOW)
        return None
    except Exception as e:  # KafkaException carrying a KafkaError
        return e.args[0]


def describe(a, rtype, name):
    """{name: (value, source name)} of one resource, or the KafkaError."""
    from confluent_kafka.admin import ConfigResource
    res = ConfigResource(rtype, name)
    try:
        entries = a.describe_configs([res])[res].result(timeout=15 * SLOW)
    except Exception as e:
        return e.args[0]
    return {k: (v.value, v.source) for k, v in entries.items()}


@test
def test_dynamic_broker_configs_apply_everywhere_and_persist():
    from confluent_kafka import KafkaError, Producer
    from confluent_kafka.admin import ConfigResource, ConfigSource
    BROKER, TOPIC = ConfigResource.Type.BROKER, ConfigResource.Type.TOPIC
    with Cluster(3) as c:
        check(c.create_topic("dyn", 1, 3) is None, "create dyn")
        a = admin(c)
        check(alter_default(c, {"log.retention.ms": "3600000"}) is None,
              "cluster default refused")
        poll(lambda: describe_default(c).get("log.retention.ms") ==
             ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value), 10 * SLOW,
             "'' resource with log.retention.ms 3600000")
        for n in c.ids:
            def inherited(n=n):
                d = describe(admin(c, n), TOPIC, "dyn")
                return d.get("retention.ms") == (
                    "3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)
            poll(inherited, 10 * SLOW, "node %d: dyn inherits retention.ms 3600000" % n)
        check(alter(a, BROKER, "2", {"log.retention.ms": "7200000"}) is None,
              "broker 2 value refused")
        poll(lambda: describe(admin(c, 2), BROKER, "2").get("log.retention.ms") ==
             ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value), 10 * SLOW,
             "broker 2 describing its own log.retention.ms 7200000")
        poll(lambda: describe(admin(c, 2), TOPIC, "dyn").get("retention.ms") ==
             ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value), 10 * SLOW,
             "node 2: dyn's retention.ms from the broker 2 value")
        d1 = describe(admin(c, 1), TOPIC, "dyn").get("retention.ms")
        check(d1 == ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value),
              "node 1 must keep the cluster default: %r" % (d1,))
        comment("retention.ms of dyn: node 1 %s, node 2 from broker 2's value" % d1[0])

        # message.max.bytes really applies: a 5000-byte record is refused, then accepted
        check(alter_default(c, {"log.retention.ms": "3600000", "message.max.bytes": "2000"},
                            via=3) is None, "message.max.bytes")

        def produce_big():
            p = Producer({"bootstrap.servers": c.bootstrap, "message.timeout.ms": 5000,
                          "message.max.bytes": 100000})
            out = []
            p.produce("dyn", value=b"x" * 5000, on_delivery=lambda e, m: out.append(e))
            p.flush(10 * SLOW)
            return out[0] if out else "no delivery report"
        poll(lambda: getattr(produce_big(), "code", lambda: None)() ==
             KafkaError.MSG_SIZE_TOO_LARGE, 15 * SLOW, "MSG_SIZE_TOO_LARGE for 5000 bytes")
        check(alter_default(c, {"log.retention.ms": "3600000"}) is None,
              "removing message.max.bytes")
        poll(lambda: produce_big() is None, 15 * SLOW, "the 5000-byte record accepted again")

        # refusals
        e = alter_default(c, {"log.dirs": "/tmp/x"})
        check(e is not None and e.code() == KafkaError.INVALID_CONFIG,
              "log.dirs dynamically: %r" % (e,))
        e = alter_default(c, {"log.retention.ms": "abc"})
        check(e is not None and e.code() == KafkaError.INVALID_CONFIG, "bad value: %r" % (e,))
        e = alter(a, BROKER, "abc", {"log.retention.ms": "1000"})
        check(e is not None, "broker name 'abc' accepted")
        e = describe_default(c, via=1, name="3")
        check(isinstance(e, RawError) and e.code() == KafkaError.INVALID_REQUEST,
              "broker 1 asked for broker 3's configs: %r" % (e,))
        for n in c.ids:
            poll(lambda n=n: "message.max.bytes" not in describe_default(c, n) and
                 describe_default(c, n, str(n)).get("message.max.bytes", ("", 0))[1] ==
                 ConfigSource.STATIC_BROKER_CONFIG.value, 10 * SLOW,
                 "node %d: message.max.bytes back to its static value" % n)

        c.restart(1)
        c.wait_formed()
        got = poll(lambda: describe_default(c) or None, 10 * SLOW, "'' after a restart")
        check(got.get("log.retention.ms") ==
              ("3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value) and
              "message.max.bytes" not in got, "after a restart: %r" % (got,))


def admitted(b):
    """A new connection that got an ApiVersions answer, or None when it was closed."""
    k = KafkaRaw(b, timeout=5.0)
    try:
        k.api_versions()
        return k
    except (ConnectionClosed, ConnectionError, OSError):
        k.close()
        return None


def serves(b):
    k = admitted(b)
    if k is not None:
        k.close()
    return k is not None


def retried(fn):
    """fn() once a connection for it is admitted: the broker frees a closed connection's slot
    when its worker sees the close, a moment after the client's close()."""
    def attempt():
        try:
            return (fn(),)
        except (ConnectionClosed, ConnectionError, OSError):
            return None
    return poll(attempt, 10 * SLOW, "a connection admitted")[0]


@test
def test_connection_limits_change_at_run_time():
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import ConfigSource
    with Broker({"num.partitions": "1"}) as b:
        held = [admitted(b) for _ in range(2)]
        check(None not in held, "two connections")
        check(retried(lambda: alter_default(b, {"max.connections.per.ip": "3"})) is None,
              "set the per-ip limit")
        got = retried(lambda: describe_default(b))
        check(got.get("max.connections.per.ip") ==
              ("3", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value), "described: %r" % (got,))
        held.append(poll(lambda: admitted(b), 10 * SLOW, "a third connection"))
        check(poll(lambda: not serves(b), 10 * SLOW, "a fourth connection refused"),
              "over the per-ip limit")
        for k in held:
            k.api_versions()  # the open ones still work
        held.pop().close()  # a slot for the admin requests below
        for bad in ("-1", "abc"):
            e = retried(lambda: alter_default(b, {"max.connections.per.ip": bad}))
            check(e is not None and e.code() == KafkaError.INVALID_CONFIG,
                  "max.connections.per.ip=%s: %r" % (bad, e))
        check(retried(lambda: alter_default(b, {"max.connections": "2"})) is None,
              "a total limit instead of the per-ip one")
        check(poll(lambda: not serves(b), 10 * SLOW, "the total limit applies"), "max.connections")
        for k in held:
            k.close()
        check(retried(lambda: alter_default(b, {})) is None, "both removed")
        more = [poll(lambda: admitted(b), 10 * SLOW, "connection %d" % i) for i in range(4)]
        comment("%d connections served after the limits were removed" % len(more))
        for k in more:
            k.close()

if __name__ == "__main__":
    run_tests()
