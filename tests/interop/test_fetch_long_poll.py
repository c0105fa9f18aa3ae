"""A long-polling Fetch woken again and again by appends: the broker's memory stays bounded
while it is parked (each wake-up rebuilds the response, which must not accumulate until the
reply), and the fetch still answers with the data once min_bytes is reached. A Metadata request
pipelined behind a parked Fetch is answered as of the fetch's answer, as Kafka handles one
request of a connection at a time.
Runs under ThreadSanitizer too (tsan-smoke).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ASAN, FETCH, METADATA, Broker, KafkaRaw, check, comment,  # noqa: E402
                     metadata_body, parse_metadata, run_tests, test)
from kafka_records import (LATEST, ensure_topic, fetch_body, list_offset,  # noqa: E402
                           parse_batches, parse_fetch, produce, record_batch)

PARTITIONS = 100
APPENDS = 3000
MIN_BYTES = 1 << 20


def small_batch(i):
    return record_batch([(None, b"v%06d" % i)])


@test
def test_parked_fetch_rss_bounded_while_appends_wake_it():
    """A fetch of 100 partitions (min_bytes 1 MiB, max_wait 20 s) parks; 3,000 small appends
    to partition 0 wake it each time. Broker RSS grows < 8 MB meanwhile (it grew by ~15 kB
    per wake-up when every rebuild stayed in the request's arena); a ~1 MiB batch then
    completes the fetch with every record."""
    with Broker({"num.partitions": PARTITIONS}) as b, KafkaRaw(b) as fc, KafkaRaw(b) as pc:
        ensure_topic(pc, "lp", PARTITIONS)
        # Warm up the same produce path so its allocations are in the baseline.
        for i in range(APPENDS):
            check(produce(pc, "lp", 0, small_batch(i))["error_code"] == 0, "warm-up produce")
        start = list_offset(pc, "lp", 0, LATEST)["offset"]
        offsets = {p: (start if p == 0 else 0) for p in range(PARTITIONS)}
        body = fetch_body({"lp": offsets}, max_wait_ms=20000, min_bytes=MIN_BYTES,
                          max_bytes=50 << 20, partition_max_bytes=10 << 20)
        before = b.rss_kb()
        fc.send_request(FETCH, 11, body)
        for i in range(APPENDS):
            check(produce(pc, "lp", 0, small_batch(i))["error_code"] == 0, "produce %d" % i)
        after = b.rss_kb()
        comment("broker RSS %d kB before the parked fetch, %d kB after %d waking appends"
                % (before, after, APPENDS))
        # ASan's quarantine keeps freed memory resident: the bound means nothing there.
        check(ASAN or after - before < 8 * 1024,
              "broker RSS grew by %d kB while one fetch was parked" % (after - before))
        big = record_batch([(None, b"x" * (MIN_BYTES - 4096))])  # under message.max.bytes
        check(produce(pc, "lp", 0, big)["error_code"] == 0, "produce of the ~1 MiB batch")
        _, resp = fc.recv_response(timeout=30)
        res, top = parse_fetch(resp)
        check(top == 0, "fetch top-level error %d" % top)
        got = res[("lp", 0)]
        check(got["error_code"] == 0, "fetch error %d" % got["error_code"])
        n = sum(len(bt["records"]) for bt in parse_batches(got["records"]))
        check(n == APPENDS + 1, "fetch returned %d records, want %d" % (n, APPENDS + 1))


@test
def test_metadata_behind_a_parked_fetch_is_computed_after_it():
    """On one connection: a Fetch that parks for 3 s (min_bytes 1 MiB of an empty partition),
    then at once a Metadata v4 for topic "late" (no auto-creation). While the fetch is parked,
    "late" is created through another connection. The Metadata answer, which leaves after the
    fetch's, must list "late" with its partition: Kafka computes it only after the fetch is
    answered. Computed on arrival (as Gregor did) it said UNKNOWN_TOPIC_OR_PARTITION and reached
    the client 3 s stale; with partition leaders that moved meanwhile, librdkafka 2.0.2 then
    sent a partition's messages to a dead broker until they timed out."""
    with Broker() as b, KafkaRaw(b) as c, KafkaRaw(b) as admin:
        ensure_topic(admin, "quiet", 1)
        sent = time.monotonic()
        c.send_request(FETCH, 11, fetch_body({"quiet": {0: 0}}, max_wait_ms=3000,
                                             min_bytes=MIN_BYTES))
        c.send_request(METADATA, 4, metadata_body(4, ["late"], allow_auto_create=False))
        time.sleep(0.2)
        ensure_topic(admin, "late", 1)
        created = time.monotonic() - sent
        _, resp = c.recv_response(timeout=30)
        fetched = time.monotonic() - sent
        res, top = parse_fetch(resp)
        check(top == 0 and res[("quiet", 0)]["error_code"] == 0,
              "parked fetch: top-level error %d, partition %r" % (top, res.get(("quiet", 0))))
        check(created < fetched, "setup too slow: \"late\" was created %.2fs after the fetch "
              "was sent, it was answered after %.2fs" % (created, fetched))
        _, resp = c.recv_response(timeout=30)
        md = parse_metadata(resp, 4)
        late = [t for t in md["topics"] if t["name"] == "late"]
        check(len(late) == 1 and late[0]["error_code"] == 0 and len(late[0]["partitions"]) == 1,
              "Metadata sent behind the parked fetch, answered after it (%.2fs), lists \"late\" "
              "as %r: it was computed before the fetch was answered" % (fetched, late))
        comment("\"late\" created after %.2fs; the fetch answered after %.2fs; the Metadata "
                "behind it lists \"late\"" % (created, fetched))


if __name__ == "__main__":
    run_tests()
