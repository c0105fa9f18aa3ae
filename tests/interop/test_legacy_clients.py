"""Old clients: Produce v0-2 carry legacy message sets (magic 0/1) that the broker converts to
magic-2 batches on append, and Fetch v0-3 answers are converted back to magic 0 (v0-1) or
magic 1 (v2-3). kafka-python pinned to api_version (0, 9) and (0, 10) speaks exactly those
versions, plain and gzip-compressed; every record comes back with its key, value and offset.
asan-smoke
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Broker, check, comment, run_tests, test  # noqa: E402


def roundtrip(b, api_version, compression, n=200):
    from kafka import KafkaConsumer, KafkaProducer
    topic = "legacy-%s-%s" % ("".join(map(str, api_version)), compression or "none")
    p = KafkaProducer(bootstrap_servers=b.bootstrap, api_version=api_version,
                      compression_type=compression, linger_ms=5)
    for i in range(n):
        p.send(topic, key=b"k%d" % i, value=b"value-%d" % i)
    p.flush(timeout=30 * SLOW)
    p.close()
    c = KafkaConsumer(topic, bootstrap_servers=b.bootstrap, api_version=api_version,
                      auto_offset_reset="earliest", consumer_timeout_ms=int(5000 * SLOW),
                      group_id=None)
    got = [(m.offset, m.key, m.value) for m in c]
    c.close()
    want = [(i, b"k%d" % i, b"value-%d" % i) for i in range(n)]
    check(got == want, "%s %s: got %d records, first %r" % (api_version, compression, len(got),
                                                           got[:3]))
    comment("%s %s: %d records round-tripped" % (api_version, compression, n))


@test
def test_magic0_produce_and_fetch():
    """api_version (0, 9): Produce v1 / Fetch v1, magic 0, plain and gzip."""
    with Broker() as b:
        roundtrip(b, (0, 9), None)
        roundtrip(b, (0, 9), "gzip")


@test
def test_magic1_produce_and_fetch():
    """api_version (0, 10, 0): Produce v2 / Fetch v2, magic 1 with timestamps, plain and gzip."""
    with Broker() as b:
        roundtrip(b, (0, 10, 0), None)
        roundtrip(b, (0, 10, 0), "gzip")


if __name__ == "__main__":
    run_tests()
