"""DeleteRecords (key 21) with raw requests: every requested topic is answered in request order
with every requested partition, each with its own result: the new low watermark, -1 meaning the
high watermark, OFFSET_OUT_OF_RANGE past it, UNKNOWN_TOPIC_OR_PARTITION for a partition or
topic the broker does not have; ListOffsets over several topics then agrees.
asan-smoke
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (LIST_OFFSETS, Broker, KafkaRaw, Reader, array, check, i32,  # noqa: E402
                     i64, run_tests, string, test)
from kafka_records import (EARLIEST, LATEST, ensure_topic, list_offsets_body,  # noqa: E402
                           parse_list_offsets, produce, record_batch)

DELETE_RECORDS = 21
OFFSET_OUT_OF_RANGE, UNKNOWN_TOPIC_OR_PARTITION = 1, 3


def delete_records(k, topics, version=1):
    """topics: [(name, [(partition, offset)])] -> [(name, [(partition, low_watermark, error)])]"""
    body = array(topics, lambda t: string(t[0]) +
                 array(t[1], lambda p: i32(p[0]) + i64(p[1]))) + i32(5000)
    r = Reader(k.call(DELETE_RECORDS, version, body))
    r.int32()  # throttle
    out = r.array(lambda r: (r.string(), r.array(lambda r: (r.int32(), r.int64(), r.int16()))))
    r.end()
    return out


@test
def test_delete_records_answers_every_topic_and_partition_in_order():
    """dr-a/0 holds 4 records, dr-a/1 2, dr-b/0 none. Deleting dr-a/0 below 2 and dr-a/1 below
    its high watermark (-1) moves both low watermarks to 2; partition 7, offset 5 of the empty
    dr-b and a topic never created each get their error and low watermark -1; no topics at all
    is an empty answer."""
    with Broker({"num.partitions": 2}) as b, KafkaRaw(b) as k:
        ensure_topic(k, "dr-a", 2)
        ensure_topic(k, "dr-b", 2)
        for part, n in ((0, 4), (1, 2)):
            r = produce(k, "dr-a", part, record_batch([(b"k", b"v")] * n))
            check(r["error_code"] == 0, "produce %r" % r)
        got = delete_records(k, [("dr-a", [(0, 2), (1, -1), (7, 0)]), ("dr-b", [(0, 5)]),
                                 ("dr-none", [(0, 0)])])
        want = [("dr-a", [(0, 2, 0), (1, 2, 0), (7, -1, UNKNOWN_TOPIC_OR_PARTITION)]),
                ("dr-b", [(0, -1, OFFSET_OUT_OF_RANGE)]),
                ("dr-none", [(0, -1, UNKNOWN_TOPIC_OR_PARTITION)])]
        check(got == want, "DeleteRecords %r" % (got,))
        check(delete_records(k, []) == [], "no topics")
        check(delete_records(k, [("dr-b", [])]) == [("dr-b", [])], "no partitions")
        res = parse_list_offsets(k.call(LIST_OFFSETS, 5, list_offsets_body(
            {"dr-a": {0: EARLIEST, 1: LATEST}, "dr-b": {1: EARLIEST}})))
        offsets = {tp: (p["error_code"], p["offset"]) for tp, p in res.items()}
        check(offsets == {("dr-a", 0): (0, 2), ("dr-a", 1): (0, 2), ("dr-b", 1): (0, 0)},
              "ListOffsets %r" % (offsets,))


if __name__ == "__main__":
    run_tests()
