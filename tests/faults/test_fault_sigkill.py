"""Crash safety: SIGKILL the broker at random moments under acks=all load, restart it on the
same data directory each time, and check that no acknowledged message was lost.

A confluent-kafka producer (acks=all) writes numbered messages to 3 partitions for the whole
run while the broker is killed and restarted CYCLES times. The broker acknowledges acks=all
only after fdatasync (DESIGN.md), so after the last restart, for every delivery report the
message must be in the log at the reported partition and offset. Ordering: acknowledged
messages appear in production order per partition.

If the broker advertises InitProducerId (ApiVersions), the producer is idempotent and the test
also asserts no duplicates. Otherwise it uses plain acks=all with max.in.flight=1 (so retries
cannot reorder) and allows duplicates of messages whose acknowledgement was lost in a crash:
exactly-once across crashes needs the idempotent producer (the idempotence issue).

Prints "# cycles=N acknowledged=M lost=L duplicates=D" (L must be 0).
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
from harness import (ASAN, SLOW, Broker, KafkaRaw, check, comment, run_tests,  # noqa: E402
                     test)

TOPIC = "crash"
PARTITIONS = 3
CYCLES = 6 if ASAN else 10
INIT_PRODUCER_ID = 22


def consume_all(bootstrap, ends):
    """Reads every partition from offset 0 to ends[p]; returns {p: {offset: seq}}."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "sigkill-check",
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
    out = {p: {} for p in range(PARTITIONS)}
    done = set(p for p in range(PARTITIONS) if ends[p] == 0)
    deadline = time.monotonic() + 60 * SLOW
    while len(done) < PARTITIONS and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                if m.offset() >= ends[m.partition()]:
                    done.add(m.partition())
            continue
        out[m.partition()][m.offset()] = int(m.value().split(b":")[0])
        if m.offset() + 1 >= ends[m.partition()]:
            done.add(m.partition())
    c.close()
    return out


@test
def test_sigkill_under_acks_all_load_loses_no_acknowledged_message():
    from confluent_kafka import Producer, TopicPartition, Consumer
    from confluent_kafka.admin import AdminClient, NewTopic
    rng = random.Random(int(os.environ.get("SIGKILL_SEED", "4242")))
    with Broker({"num.partitions": PARTITIONS}) as b:
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)]).values():
            f.result(15 * SLOW)
        with KafkaRaw(b) as c:
            idempotent = INIT_PRODUCER_ID in c.api_versions(3)["api_keys"]
        comment("broker advertises InitProducerId: %s -> %s" % (
            idempotent, "idempotent producer" if idempotent else "plain acks=all"))
        conf = {"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5,
                "message.timeout.ms": int(120000 * SLOW), "retry.backoff.ms": 50,
                "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                "socket.timeout.ms": 5000}
        if idempotent:
            conf["enable.idempotence"] = True
        else:
            conf["max.in.flight.requests.per.connection"] = 1
        acked = []  # (partition, offset, seq) in delivery order
        failed = []
        lock = threading.Lock()

        def on_delivery(err, msg):
            with lock:
                if err is not None:
                    failed.append(str(err))
                else:
                    acked.append((msg.partition(), msg.offset(),
                                  int(msg.value().split(b":")[0])))

        p = Producer(conf)
        stop = threading.Event()
        produced = [0]

        def produce_loop():
            seq = 0
            while not stop.is_set():
                try:
                    p.produce(TOPIC, value=b"%d:" % seq + b"v" * (seq % 100),
                              partition=seq % PARTITIONS, on_delivery=on_delivery)
                    seq += 1
                except BufferError:
                    p.poll(0.05)
                    continue
                if seq % 50 == 0:
                    p.poll(0)
                    time.sleep(0.002)
            produced[0] = seq

        t = threading.Thread(target=produce_loop)
        t.start()
        cycles = 0
        try:
            for _ in range(CYCLES):
                time.sleep(rng.uniform(0.3, 2.0) * SLOW)
                with lock:
                    before = len(acked)
                b.kill()
                cycles += 1
                time.sleep(rng.uniform(0.0, 0.3))
                b.start()
                comment("cycle %d: killed with %d acknowledged so far" % (cycles, before))
            time.sleep(1.0 * SLOW)
        finally:
            stop.set()
            t.join()
        left = p.flush(150 * SLOW)
        check(left == 0, "%d messages still unacknowledged after flush" % left)
        comment("produced=%d acknowledged=%d failed=%d" % (produced[0], len(acked), len(failed)))
        check(len(acked) > 0, "nothing was acknowledged")

        # Everything the log holds, read back by a fresh client after the last restart.
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ends"})
        ends = {}
        for part in range(PARTITIONS):
            lo, hi = c.get_watermark_offsets(TopicPartition(TOPIC, part), timeout=10 * SLOW)
            ends[part] = hi
        c.close()
        log = consume_all(b.bootstrap, ends)
        lost = [(pt, off, seq) for pt, off, seq in acked if log[pt].get(off) != seq]
        seqs_in_log = {}
        for pt in range(PARTITIONS):
            for off, seq in log[pt].items():
                seqs_in_log[seq] = seqs_in_log.get(seq, 0) + 1
        dups = sum(n - 1 for n in seqs_in_log.values() if n > 1)
        comment("cycles=%d acknowledged=%d lost=%d duplicates=%d log_ends=%s"
                % (cycles, len(acked), len(lost), dups, ends))
        check(not lost, "%d acknowledged messages are not at their acknowledged offset, e.g. "
              "%s (log has %s)" % (len(lost), lost[:3],
                                   [log[pt].get(off) for pt, off, _ in lost[:3]]))
        for pt in range(PARTITIONS):
            mine = sorted((off, seq) for q, off, seq in acked if q == pt)
            seqs = [s for _, s in mine]
            check(seqs == sorted(seqs), "partition %d: acknowledged messages out of order" % pt)
        if idempotent:
            check(dups == 0, "%d duplicates with the idempotent producer" % dups)


if __name__ == "__main__":
    run_tests()
