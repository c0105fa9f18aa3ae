#!/usr/bin/python3
"""A checker in the spirit of Jepsen's Kafka queue workload (replication issue): three nodes, a
topic with replication factor 3 and min.insync.replicas=2, two idempotent acks=all producers
and a consumer group of two, all confluent-kafka, while a nemesis mixes faults one at a time:

  * kill: SIGKILL a node (the leader of a random partition, or any node), restart it later;
  * pause: SIGSTOP a node past the broker session timeout, then SIGCONT;
  * partition: cut one node off from the other two (clients still reach it), then heal —
    through the fault-injecting proxies of harness.Cluster(proxied=True) (faultproxy.py).

Each fault lasts 1.5-5 s; after it the nemesis waits for the cluster to form again. At the
end every fault is healed, the ISR must be whole again and every replica's segment files
byte-identical, and the whole log is read back. Checked and counted:
  - lost: an acknowledged record is not in the final log;
  - duplicate: a record is in the final log more than once;
  - moved: an acknowledged record is in the final log at another offset than acknowledged;
  - divergent: an offset a consumer read holds another record in the final log (an offset
    with two different values);
  - backwards: within one assignment (generation) of one consumer, an offset read is not
    above the previous one of its partition.
Every count must be 0. Unacknowledged records found in the log are reported, not errors.

Time: CHECKER_SECONDS of faults (default 40 in `make test`; `make checker` runs 600 and
prints the counts). Every wait is bounded.
"""
import glob
import os
import random
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from harness import (SLOW, Cluster, check, comment, fail, poll, run_tests,  # noqa: E402
                     sigstop_and_wait, test)

TOPIC = "jq"
PARTITIONS = 3
PROPS = {"replica.lag.time.max.ms": 2000, "offsets.topic.num.partitions": 3,
         "group.initial.rebalance.delay.ms": 0}


class Producers:
    """Two idempotent acks=all producers, each on its own thread, numbering their records."""

    def __init__(self, c):
        self.c = c
        self.acked = {}  # value -> (partition, offset)
        self.failed = 0
        self.errors = {}  # delivery error name -> count
        self.sent = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True)
                        for k in range(2)]

    def _cb(self, err, msg):
        with self.lock:
            if err is None:
                self.acked[msg.value()] = (msg.partition(), msg.offset())
            else:
                self.failed += 1
                self.errors[err.name()] = self.errors.get(err.name(), 0) + 1

    def _run(self, k):
        from confluent_kafka import Producer
        p = Producer({"bootstrap.servers": self.c.bootstrap, "acks": "all",
                      "enable.idempotence": True, "linger.ms": 5,
                      # Longer than any fault: a message that times out in librdkafka's queue
                      # makes it bump the producer epoch and resend what was in flight under
                      # new sequence numbers, duplicates no broker can detect (librdkafka's
                      # INTRODUCTION.md, "Message timeout considerations").
                      "message.timeout.ms": int(120000 * SLOW), "retry.backoff.ms": 50,
                      "reconnect.backoff.max.ms": 300, "topic.metadata.refresh.interval.ms": 500})
        n = 0
        while not self.stop.is_set():
            try:
                p.produce(TOPIC, value=b"p%d-%d" % (k, n), partition=n % PARTITIONS,
                          on_delivery=self._cb)
                n += 1
            except BufferError:
                pass
            p.poll(0.004)
        p.flush(60 * SLOW)
        with self.lock:
            self.sent += n

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(90 * SLOW)
            check(not t.is_alive(), "a producer did not finish flushing")


class Consumers:
    """Two group members on their own threads; each numbers its assignments (generations)."""

    def __init__(self, c):
        self.c = c
        self.reads = []  # (member, assignment number, partition, offset, value)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(k,), daemon=True)
                        for k in range(2)]

    def _run(self, k):
        from confluent_kafka import Consumer
        gen = [0]

        def assigned(cons, parts):
            gen[0] += 1
        try:
            cons = Consumer({"bootstrap.servers": self.c.bootstrap, "group.id": "jq-group",
                             "auto.offset.reset": "earliest", "enable.auto.commit": True,
                             "auto.commit.interval.ms": 500, "session.timeout.ms": 15000,
                             "heartbeat.interval.ms": 500, "reconnect.backoff.max.ms": 300,
                             "topic.metadata.refresh.interval.ms": 500})
            cons.subscribe([TOPIC], on_assign=assigned)
            while not self.stop.is_set():
                m = cons.poll(0.2)
                if m is not None and m.error() is None:
                    with self.lock:
                        self.reads.append((k, gen[0], m.partition(), m.offset(), m.value()))
            cons.close()
        except Exception as e:  # reported by finish()
            self.errors.append(repr(e))

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30 * SLOW)
        check(not self.errors, "consumer failed: %r" % self.errors)


class Nemesis:
    def __init__(self, c, rng):
        self.c = c
        self.rng = rng
        self.counts = {"kill": 0, "pause": 0, "partition": 0}

    def _victim(self):
        if self.rng.random() < 0.6:
            try:
                leaders = self.c.partition_leaders(TOPIC, timeout=5)
                live = [v for v in leaders.values() if v in self.c.live_ids()]
                if live:
                    return self.rng.choice(live)
            except Exception:
                pass
        return self.rng.choice(self.c.ids)

    def one(self):
        c = self.c
        net = getattr(c, "net", None)
        kind = self.rng.choice(["kill", "pause", "partition"] if net else ["kill", "pause"])
        victim = self._victim()
        hold = self.rng.uniform(1.5, 5.0)
        comment("nemesis: %s node %d for %.1fs" % (kind, victim, hold))
        if kind == "kill":
            c.kill(victim)
            time.sleep(hold)
            c.restart(victim)
        elif kind == "pause":
            sigstop_and_wait(c.node(victim).pid)
            time.sleep(hold)
            c.node(victim).send_signal(signal.SIGCONT)
        else:
            c.isolate(victim)
            time.sleep(hold)
            c.heal()
        self.counts[kind] += 1
        c.wait_formed(timeout=60 * SLOW)
        time.sleep(self.rng.uniform(0.5, 2.0))


def segment_files(c, node_id, part):
    d = os.path.join(c.node(node_id).data_dir, "%s-%d" % (TOPIC, part))
    return {os.path.basename(f): open(f, "rb").read() for f in glob.glob(d + "/*.log")}


def read_final(c):
    """{(partition, offset): value} of the whole topic, read from offset 0 to the end. In
    batches (consume), with time in proportion to the records: the reads cross the Python
    proxies, which share this process's interpreter."""
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": "jq-final",
                     "enable.auto.commit": False, "fetch.max.bytes": 8 << 20})
    out = {}
    try:
        ends = {p: cons.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1]
                for p in range(PARTITIONS)}
        cons.assign([TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)])
        deadline = time.monotonic() + (60 + sum(ends.values()) / 1000.0) * SLOW
        seen = {p: 0 for p in range(PARTITIONS)}
        done = lambda: all(seen[p] >= ends[p] for p in range(PARTITIONS))  # noqa: E731
        while not done() and time.monotonic() < deadline:
            for m in cons.consume(num_messages=10000, timeout=0.5):
                if m.error() is not None:
                    continue
                key = (m.partition(), m.offset())
                check(key not in out or out[key] == m.value(), "reread differs at %r" % (key,))
                if key not in out:
                    seen[key[0]] += 1
                out[key] = m.value()
        check(done(), "final read: %d records of %r" % (len(out), ends))
    finally:
        cons.close()
    return out


def check_history(prod, cons, final):
    where = {}
    dups = 0
    for key, v in final.items():
        if v in where:
            dups += 1
        where[v] = key
    lost = [v for v in prod.acked if v not in where]
    moved = [v for v, key in prod.acked.items() if v in where and where[v] != key]
    divergent = [(p, o, v) for _, _, p, o, v in cons.reads if final.get((p, o), v) != v]
    unknown = [(p, o, v) for _, _, p, o, v in cons.reads if (p, o) not in final]
    backwards = 0
    back_examples = []
    last = {}
    for member, gen, p, o, _ in cons.reads:
        k = (member, gen, p)
        if k in last and o <= last[k]:
            backwards += 1
            if len(back_examples) < 5:
                back_examples.append("member %d generation %d partition %d: %d after %d"
                                     % (member, gen, p, o, last[k]))
        last[k] = o
    if back_examples:
        comment("backwards reads: %s" % "; ".join(back_examples))
    unacked = len(final) - len([v for v in prod.acked if v in where])
    comment("history: %d sent, %d acknowledged, %d failed %r, %d in the log (%d unacknowledged), "
            "%d consumer reads" % (prod.sent, len(prod.acked), prod.failed, prod.errors,
                                   len(final), unacked, len(cons.reads)))
    comment("checker: lost %d, duplicate %d, moved %d, divergent %d, read-but-absent %d, "
            "backwards %d" % (len(lost), dups, len(moved), len(divergent), len(unknown),
                              backwards))
    check(not lost, "lost acknowledged records: %r" % lost[:10])
    check(dups == 0, "%d duplicates in the log" % dups)
    check(not moved, "acknowledged at one offset, in the log at another: %s" % "; ".join(
        "%r acked at %r, in the log at %r (the log holds %r there)"
        % (v, prod.acked[v], where[v], final.get(prod.acked[v])) for v in moved[:5]))
    check(not divergent, "offsets read with another value than the log's: %r" % divergent[:10])
    check(not unknown, "offsets read that the final log does not have: %r" % unknown[:10])
    check(backwards == 0, "%d reads went backwards within a generation" % backwards)


@test
def test_mixed_faults_lose_nothing():
    seconds = float(os.environ.get("CHECKER_SECONDS", "40"))
    seed = int(os.environ.get("CHECKER_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    proxied = os.environ.get("CHECKER_PROXY", "1") == "1"
    comment("seed %d, %.0f s of faults, partitions %s" % (seed, seconds,
                                                          "on" if proxied else "off"))
    with Cluster(3, PROPS, proxied=proxied) as c:
        check(c.create_topic(TOPIC, PARTITIONS, 3, config={"min.insync.replicas": "2"}) is None,
              "create %s" % TOPIC)
        c.wait_topic(TOPIC, PARTITIONS)
        prod, cons = Producers(c), Consumers(c)
        prod.start()
        cons.start()
        nem = Nemesis(c, rng)
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < seconds:
                nem.one()
        finally:
            if getattr(c, "net", None):
                c.heal()
            for i in c.ids:
                if c.node(i).running():
                    c.node(i).send_signal(signal.SIGCONT)
        comment("faults: %r in %.0f s" % (nem.counts, time.monotonic() - t0))
        prod.finish()
        time.sleep(3)
        cons.finish()
        def whole():
            return all(sorted(v["isr"]) == [1, 2, 3]
                       for i in c.ids for v in c.raw_partitions(TOPIC, i).values())
        poll(whole, 60 * SLOW, "the whole ISR back on every node")
        for p in range(PARTITIONS):
            def same(p=p):
                files = [segment_files(c, n, p) for n in c.ids]
                return files[0] and all(f == files[0] for f in files)
            poll(same, 30 * SLOW, "identical segment files of %s-%d" % (TOPIC, p))
        final = read_final(c)
        check_history(prod, cons, final)


if __name__ == "__main__":
    run_tests()
