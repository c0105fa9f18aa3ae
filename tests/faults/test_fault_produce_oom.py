"""Out of memory part-way through an acks=all Produce (asan-smoke).

The first topic's batch is appended and its flush queued; the response array for the second
topic (100,000 partitions, 7.2 MB) cannot be allocated, so the broker closes the connection.
The queued flush still completes afterwards and its completion must find the produce state
alive (it was freed while the completion still pointed at it: a use-after-free).

The allocation failure is injected with ASan's max_allocation_size_mb (every allocation above
5 MB returns NULL; the request's own 100,000-entry array is 4 MB), so the test only bites under
GREGOR_ASAN=1, where stop() also fails on any sanitizer report in the broker log. The release
build cannot fail the allocation: there the same request is simply answered.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
from harness import (ASAN, PRODUCE, Broker, ConnectionClosed, KafkaRaw, check,  # noqa: E402
                     check_broker_healthy, comment, run_tests, test)
from kafka_records import ensure_topic, produce_body, record_batch  # noqa: E402

WIDE = 100000  # partitions of the second topic in the request


@test
def test_produce_closed_out_of_memory_after_a_queued_flush():
    """acks=-1 Produce of a batch to t-0 plus 100,000 partitions of a missing topic, with
    allocations above 5 MB failing: the connection is closed, the queued flush completes
    without touching freed memory (ASan-clean log), and the broker keeps serving."""
    env = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") +
           ":max_allocation_size_mb=5:allocator_may_return_null=1"}
    with Broker({"num.partitions": 1}, env=env) as b:
        with KafkaRaw(b) as c:
            ensure_topic(c, "t", 1)
        body = produce_body({"t": {0: record_batch([(None, b"v")])},
                             "missing": {p: None for p in range(WIDE)}}, acks=-1)
        with KafkaRaw(b) as c:
            c.send_request(PRODUCE, 8, body)
            try:
                c.recv_response(timeout=30)
                closed = False
            except (ConnectionClosed, OSError):
                closed = True
        comment("connection %s" % ("closed (allocation failed)" if closed else "answered"))
        check(closed or not ASAN, "the produce was answered although its response array "
              "could not be allocated")
        time.sleep(0.5)  # the flush completion runs on the worker after the close
        check_broker_healthy(b, "after the out-of-memory produce")
        b.stop()


if __name__ == "__main__":
    run_tests()
