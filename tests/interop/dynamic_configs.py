"""Raw-protocol helpers for the dynamic broker config tests (test_dynamic_threads.py,
test_dynamic_cleaner.py, test_quota_limits.py): AlterConfigs/DescribeConfigs of a BROKER
resource, AlterClientQuotas, and one /metrics sample."""
import struct
import urllib.request

from harness import HOST, SLOW, KafkaRaw, Reader, array, boolean, check, i8, string

INVALID_REQUEST, INVALID_CONFIG = 42, 40
ALTER_CONFIGS, DESCRIBE_CONFIGS, BROKER_TYPE = 33, 32, 4


class RawError:
    def __init__(self, code, msg):
        self._code, self.msg = code, msg

    def code(self):
        return self._code

    def __repr__(self):
        return "RawError(%d, %r)" % (self._code, self.msg)


def alter_default(b, configs, name=""):
    """AlterConfigs v0 of a BROKER resource ("" = the cluster default) -> None or RawError."""
    body = array([i8(BROKER_TYPE) + string(name) + array(
        [string(k) + string(v) for k, v in configs.items()])]) + boolean(False)
    with KafkaRaw(b) as k:
        r = Reader(k.call(ALTER_CONFIGS, 0, body))
    r.int32()
    (err, msg, _, _), = r.array(lambda r: (r.int16(), r.string(), r.int8(), r.string()))
    return None if err == 0 else RawError(err, msg)


def describe_default(b, name=""):
    """DescribeConfigs v1 of a BROKER resource -> {name: (value, source)} or RawError."""
    body = array([i8(BROKER_TYPE) + string(name) + (b"\xff\xff\xff\xff")]) + boolean(False)
    with KafkaRaw(b) as k:
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


def metric(mport, name):
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, mport), timeout=10 * SLOW) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


def set_quota(broker, entity, **values):
    """AlterClientQuotas v0 of one entity ([(type, name or None)]), each key set; checked."""
    body = array([array([string(t) + string(n) for t, n in entity]) +
                  array([string(k) + struct.pack(">d", v) + boolean(False)
                         for k, v in values.items()])]) + boolean(False)
    with KafkaRaw(broker) as k:
        r = Reader(k.call(49, 0, body))
    r.int32()
    out = r.array(lambda r: (r.int16(), r.string(), r.array(lambda r: (r.string(), r.string()))))
    check([(c, m) for c, m, _ in out] == [(0, None)],
          "AlterClientQuotas %r %r: %r" % (entity, values, out))
