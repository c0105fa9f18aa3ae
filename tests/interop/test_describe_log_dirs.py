"""DescribeLogDirs (35) with raw requests, as Kafka's ReplicaManager.describeLogDirs answers:
the log directory's absolute path, each hosted partition's size and offset lag, and (v4) the
volume's total and usable bytes. Client libraries here do not expose the call.
asan-smoke
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Broker, KafkaRaw, Reader, TAGS_NONE, array, carray, check,  # noqa: E402
                     cstring, i32, run_tests, string, test, uvarint)
from kafka_records import ensure_topic, produce, record_batch  # noqa: E402

DESCRIBE_LOG_DIRS = 35


def describe_log_dirs(k, version, topics):
    """topics: {topic: [partitions]} or None (all) -> (top error, [result dicts])."""
    flex = version >= 2
    if topics is None:
        body = uvarint(0) if flex else i32(-1)
    elif flex:
        body = carray([cstring(t) + carray([i32(p) for p in ps]) + TAGS_NONE
                       for t, ps in topics.items()])
    else:
        body = array([string(t) + array([i32(p) for p in ps]) for t, ps in topics.items()])
    if flex:
        body += TAGS_NONE
    r = Reader(k.call(DESCRIBE_LOG_DIRS, version, body))
    r.int32()  # throttle
    top = r.int16() if version >= 3 else 0
    s = r.cstring if flex else r.string
    arr = r.carray if flex else r.array

    def part(rr):
        p = (rr.int32(), rr.int64(), rr.int64(), rr.boolean())
        if flex:
            rr.tagged_fields()
        return p

    def topic(rr):
        name = s()
        ps = arr(part)
        if flex:
            rr.tagged_fields()
        return name, ps

    def result(rr):
        d = {"error": rr.int16(), "dir": s(), "topics": dict(arr(topic))}
        if version >= 4:
            d["total"], d["usable"] = rr.int64(), rr.int64()
        if flex:
            rr.tagged_fields()
        return d
    results = arr(result)
    if flex:
        r.tagged_fields()
    r.end()
    return top, results


@test
def test_describe_log_dirs_sizes_and_filter():
    """v1 and v4 (flexible): one result, no error, for the absolute data directory. Asking for
    all topics lists both partitions of 'ld'; partition 0, which holds a batch, has a size
    equal to the bytes of its segment files' batches (> 0) and lag 0. Asking for ld-0, ld-7
    and a missing topic lists only ld-0. v4 reports total >= usable > 0 bytes."""
    with Broker({"num.partitions": 2}) as b, KafkaRaw(b) as k:
        ensure_topic(k, "ld", 2)
        batch = record_batch([(b"k", b"v" * 1000)])
        check(produce(k, "ld", 0, batch)["error_code"] == 0, "produce")
        want_dir = os.path.realpath(b.data_dir)
        seg = os.path.join(b.data_dir, "ld-0", "00000000000000000000.log")
        for v in (1, 4):
            top, res = describe_log_dirs(k, v, None)
            check(top == 0 and len(res) == 1 and res[0]["error"] == 0 and
                  res[0]["dir"] == want_dir, "v%d result %r" % (v, res))
            parts = {p[0]: p for p in res[0]["topics"].get("ld", [])}
            check(sorted(parts) == [0, 1], "v%d ld partitions %r" % (v, parts))
            check(parts[0][1] == os.path.getsize(seg) == len(batch) and parts[0][2] == 0 and
                  not parts[0][3], "v%d ld-0 %r (segment %d bytes)"
                  % (v, parts[0], os.path.getsize(seg)))
            top, res = describe_log_dirs(k, v, {"ld": [0, 7], "missing": [0]})
            got = {t: [p[0] for p in ps] for t, ps in res[0]["topics"].items()}
            check(got == {"ld": [0]}, "v%d filtered %r" % (v, got))
            if v >= 4:
                check(res[0]["total"] >= res[0]["usable"] > 0, "v4 bytes %r" % res[0])


if __name__ == "__main__":
    run_tests()
