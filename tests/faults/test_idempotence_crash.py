#!/usr/bin/python3
"""Idempotent producer under crashes (asan-smoke): a raw-protocol producer sends batches with
acks=all while the broker is SIGKILLed several times at arbitrary moments. After each restart
the producer retries the batch whose answer it never got (which may or may not have reached
the log) and goes on. The producer state is rebuilt from the snapshots and the log tail, so
the retry must be recognised as a duplicate when it was appended: at the end the log holds
every sequence exactly once, in order.
"""
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "interop"))

from harness import (ASAN, Broker, ConnectionClosed, KafkaRaw, check, comment,  # noqa: E402
                     run_tests, test)
from kafka_records import produce_body  # noqa: E402
from test_idempotence import batch, ensure_topic, init_producer_id, log_values, send  # noqa: E402


@test
def test_retries_across_sigkill_never_duplicate():
    rnd = random.Random(int(os.environ.get("GREGOR_SEED", "7")))
    batches = 150 if ASAN else 600
    kills = sorted(rnd.sample(range(10, batches), 4))
    with Broker({"log.segment.bytes": 8192}) as b:
        with KafkaRaw(b) as c:
            ensure_topic(c, "crash")
            _, pid, ep = init_producer_id(c, 1)
        seq, i, dups = 0, 0, 0
        c = KafkaRaw(b)
        while i < batches:
            blob = batch(pid, ep, seq, n=4, tag="c")
            if kills and i == kills[0]:
                kills.pop(0)
                c.send_request(0, 8, produce_body({"crash": {0: blob}}, acks=-1))
                time.sleep(rnd.random() * 0.01)
                b.kill()
                c.close()
                b.start()
                c = KafkaRaw(b)
                ensure_topic(c, "crash")
                # The answer was lost: retry the same batch until it is acknowledged.
            try:
                r = send(c, "crash", blob)
            except (ConnectionClosed, OSError) as e:
                comment("retry after %s" % e)
                c.close()
                c = KafkaRaw(b)
                continue
            check(r["error_code"] == 0, "batch %d (seq %d): error %d" % (i, seq, r["error_code"]))
            seq += 4
            i += 1
        vals = log_values(c, "crash")
        c.close()
        check(vals == ["c-%d" % k for k in range(seq)],
              "log holds %d values for %d sent; first difference at %r" % (
                  len(vals), seq, next((k for k, v in enumerate(vals) if v != "c-%d" % k), None)))


if __name__ == "__main__":
    # Importing test_idempotence registered its tests too: run only this file's.
    run_tests([test_retries_across_sigkill_never_duplicate])
