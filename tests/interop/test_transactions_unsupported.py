"""Transactional clients fail fast while Gregor has no transaction coordinator.

COORDINATOR_NOT_AVAILABLE (what a transaction FindCoordinator used to get) is retriable, so
librdkafka's init_transactions() spun for its whole timeout. Gregor now answers a transactional
id as a Kafka broker whose authorizer denies every transactional id does:
TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53) from FindCoordinator (key_type 1, with an
error_message saying transactions are not supported) and from InitProducerId. Clients treat that
as fatal at once. Group coordinators and the idempotent producer are unaffected.
asan-smoke
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Broker, KafkaRaw, Reader, TAGS_NONE, carray, check,  # noqa: E402
                     comment, cstring, i8, run_tests, string, test)

FIND_COORDINATOR = 10
TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53


def find_coordinator_v1(k, key, key_type):
    r = Reader(k.call(FIND_COORDINATOR, 1, string(key) + i8(key_type)))
    r.int32()  # throttle
    err, msg = r.int16(), r.string()
    return err, msg, r.int32()


def find_coordinator_v4(k, keys, key_type):
    r = Reader(k.call(FIND_COORDINATOR, 4, i8(key_type) + carray([cstring(x) for x in keys]) +
                      TAGS_NONE))
    r.int32()

    def one(r):
        key, node, _host, _port = r.cstring(), r.int32(), r.cstring(), r.int32()
        err, msg = r.int16(), r.cstring()
        r.tagged_fields()
        return key, err, msg, node
    return r.carray(one)


@test
def test_find_transaction_coordinator_is_refused_with_a_reason():
    """FindCoordinator v1 and v4 for a transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    no node, and an error_message naming the missing transaction support; a group key on the
    same connection still gets this broker as coordinator."""
    with Broker() as b, KafkaRaw(b) as k:
        err, msg, node = find_coordinator_v1(k, "tx-a", 1)
        check(err == TRANSACTIONAL_ID_AUTHORIZATION_FAILED and node == -1,
              "v1 transaction key: %r" % ((err, msg, node),))
        check(msg and "transaction" in msg, "v1 error_message %r" % msg)
        res = find_coordinator_v4(k, ["tx-a", "tx-b"], 1)
        check([(x[0], x[1], x[3]) for x in res] ==
              [("tx-a", TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1),
               ("tx-b", TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1)], "v4: %r" % (res,))
        check(all(x[2] and "transaction" in x[2] for x in res), "v4 messages %r" % (res,))
        deadline = time.monotonic() + 15 * SLOW
        while True:
            err, msg, node = find_coordinator_v1(k, "a-group", 0)
            if err == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        check(err == 0 and node == 1, "group key: %r" % ((err, msg, node),))


@test
def test_confluent_init_transactions_fails_fast():
    """confluent-kafka: init_transactions(10) raises within 2 s (it used to take the whole
    10 s timeout) with a fatal, non-retriable TRANSACTIONAL_ID_AUTHORIZATION_FAILED whose text
    carries the broker's reason. An idempotent producer on the same broker still delivers."""
    from confluent_kafka import KafkaException, Producer
    with Broker() as b:
        p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "tx-client"})
        t0 = time.monotonic()
        err = None
        try:
            p.init_transactions(10)
        except KafkaException as e:
            err = e.args[0]
        took = time.monotonic() - t0
        check(err is not None, "init_transactions() succeeded")
        comment("init_transactions raised after %.2f s: %s" % (took, err.str()))
        check(took < 2.0 * SLOW, "init_transactions took %.1f s" % took)
        check(err.name() == "TRANSACTIONAL_ID_AUTHORIZATION_FAILED" and err.fatal() and
              not err.retriable(), "error %s fatal=%s retriable=%s" %
              (err.name(), err.fatal(), err.retriable()))
        check("transactions are not supported" in err.str(), "reason missing: %r" % err.str())
        q = Producer({"bootstrap.servers": b.bootstrap, "enable.idempotence": True})
        errors = []
        q.produce("idem", b"v", on_delivery=lambda e, m: errors.append(e))
        check(q.flush(15 * SLOW) == 0 and errors == [None], "idempotent produce: %r" % errors)


if __name__ == "__main__":
    run_tests()
