"""Network partition (replication issue): three `gregor serve` processes (broker + controller
voter each) whose every inter-node link (raft, follower fetches, broker->controller RPCs) goes
through fault-injecting TCP proxies (faultproxy.Netsplit via Cluster(proxied=True)); clients
reach every node directly and are never cut.

What is tried, for a topic with replication factor 3 and min.insync.replicas=2:
- acks=all writes to the partition leader L with every replica in sync;
- L is isolated from the other two nodes (both directions black-holed, no RST): an acks=all
  Produce sent straight to L is never acknowledged (it times out or errs), while acks=1
  Produce to L may succeed: those records are L's unreplicated tail;
- the majority side fences L, elects a new leader from the ISR (seen in its Metadata), and
  acks=all writes through the new leader succeed;
- after healing, L comes back as a follower, truncates its unreplicated tail (its log says so),
  rejoins the ISR, and all three replicas' segment files end byte-identical; every acknowledged
  acks=all record is read back exactly once at its acknowledged offset, and none of L's
  isolated writes (acks=1 tail, unacknowledged acks=all) is.
Variants: L a plain broker; L the active controller (which also loses the raft quorum); only
the link between L and the active controller cut (L is fenced while the third node can still
fetch from it until it learns of the new leader, so it may copy part of L's tail: kept, at the
same offsets, if that node becomes the leader, as in Kafka; truncated by it otherwise; L then
truncates to where the new leader's epoch starts).
With an idempotent confluent-kafka producer writing throughout (it also hears an isolated
node's stale Metadata): across one isolation of the leader, and across six seeded random cuts
and heals (NETSPLIT_SEED); nothing acknowledged is lost, duplicated or moved.
And the proxy itself: a cut link moves no bytes until healed, a client link is never cut, a
restarted node's links are attributed to it again.
"""
import glob
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SESSION_TIMEOUT_S, SLOW, Cluster, KafkaRaw, TestFailure,  # noqa: E402
                     check, comment, poll, run_tests, test)
from kafka_records import fetch_all, produce, record_batch  # noqa: E402

LAG_MS = 2000
TOPIC = "ns"


def isr_of(c, via):
    return sorted(c.raw_partitions(TOPIC, via)[0]["isr"])


def wait_isr(c, want, vias, timeout=30.0):
    def ok():
        got = {i: isr_of(c, i) for i in vias}
        if all(v == want for v in got.values()):
            return True
        raise TestFailure("ISR per node: %r" % got)
    poll(ok, timeout, "ISR %r on nodes %r" % (want, vias))


def segment_files(c, node_id):
    d = os.path.join(c.node(node_id).data_dir, "%s-0" % TOPIC)
    out = {}
    for f in glob.glob(d + "/*.log"):
        with open(f, "rb") as fh:
            out[os.path.basename(f)] = fh.read()
    return out


def wait_identical(c, timeout=30.0):
    def same():
        files = [segment_files(c, n) for n in c.ids]
        if files[0] and all(f == files[0] for f in files):
            return True
        names = sorted(set().union(*files))
        diff = ["%s: %s" % (name, "/".join(str(len(f[name])) if name in f else "-"
                                          for f in files))
                for name in names if len(set(f.get(name) for f in files)) > 1]
        raise TestFailure("segments differing (bytes on nodes %r): %s" % (
            c.ids, ", ".join(diff)))
    poll(same, timeout, "byte-identical segment files of %s-0 on every node" % TOPIC)


def produce_one(c, via, value, acks, timeout_ms=30000, read_timeout=10.0):
    """One record to node via's real port -> the partition result, or the exception's name
    when no answer arrived within read_timeout."""
    try:
        with KafkaRaw("127.0.0.1", c.node(via).port, timeout=read_timeout) as conn:
            return produce(conn, TOPIC, 0, record_batch([(b"k", value)]), acks=acks,
                           timeout_ms=timeout_ms)
    except (OSError, socket.timeout) as e:
        return type(e).__name__


def create_topic(c, replicas):
    """Creates the topic on `replicas`. Retried while the active controller does not list one
    of them yet (INVALID_REPLICA_ASSIGNMENT right after the cluster formed: the nodes' Metadata
    agreed before the controller's image had every registration; seen once in CI)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": c.live_bootstrap()})
    deadline = time.monotonic() + 15 * SLOW
    while True:
        try:
            a.create_topics([NewTopic(TOPIC, num_partitions=1, replica_assignment=[replicas],
                                      config={"min.insync.replicas": "2"})])[TOPIC] \
                .result(timeout=15 * SLOW)
            break
        except KafkaException as e:
            if e.args[0].code() != 39 or time.monotonic() > deadline:  # INVALID_REPLICA_ASSIGNMENT
                raise
            time.sleep(0.2)
    c.wait_topic(TOPIC, 1)


def read_back(c, via):
    """[(offset, value)] of the partition as node via serves it (up to its high watermark)."""
    with KafkaRaw("127.0.0.1", c.node(via).port, timeout=10.0) as conn:
        batches, _ = fetch_all(conn, TOPIC, 0)
    return [(r["offset"], r["value"]) for b in batches for r in b["records"]]


def partition_heals(leader_is_controller, only_from_controller=False):
    """The scenario of the module docstring. only_from_controller: cut only the link between
    L and the active controller (L still reaches the third node, which goes on fetching from
    L until it learns of the new leader and may copy part of L's tail)."""
    check(not (leader_is_controller and only_from_controller), "L cannot be cut from itself")
    props = {"replica.lag.time.max.ms": LAG_MS}
    with Cluster(3, props, proxied=True) as c:
        ctl = c.wait_formed()
        lead = ctl if leader_is_controller else min(i for i in c.ids if i != ctl)
        others = [i for i in c.ids if i != lead]
        # Elections take the first live ISR member in assignment order: with only the
        # controller link cut, the third node (which can still fetch from L) comes first so
        # that it is the one elected, holding whatever of L's tail it copied.
        create_topic(c, [lead] + sorted(others, key=lambda i: (i == ctl, i)))
        poll(lambda: all(c.raw_partitions(TOPIC, i)[0]["leader"] == lead for i in c.ids), 15,
             "node %d leading %s-0 everywhere" % (lead, TOPIC))
        old_epoch = c.raw_partitions(TOPIC, lead)[0]["leader_epoch"]
        comment("active controller %d, partition leader %d (epoch %d), followers %r"
                % (ctl, lead, old_epoch, others))

        acked = {}  # value -> acknowledged offset
        for i in range(10):
            v = b"before-%d" % i
            res = c.produce_raw(lead, TOPIC, 0, v, acks=-1)
            check(res["error_code"] == 0, "acks=all to %d before the cut: %r" % (lead, res))
            acked[v] = res["base_offset"]
        wait_isr(c, [1, 2, 3], c.ids)
        wait_identical(c)
        end_before = max(acked.values()) + 1

        # -- isolate the leader ------------------------------------------------------------
        t_cut = time.monotonic()
        if only_from_controller:
            c.cut(lead, ctl)
        else:
            c.isolate(lead)
        isolated_values = []
        # acks=1 to L: may succeed (L still believes it leads); that is its unreplicated tail.
        tail_ok = 0
        tail_offsets = {}  # acks=1 record -> offset in L's log
        for i in range(3):
            v = b"tail-%d" % i
            isolated_values.append(v)
            res = produce_one(c, lead, v, acks=1, timeout_ms=3000, read_timeout=6.0)
            if isinstance(res, dict) and res["error_code"] == 0:
                tail_ok += 1
                tail_offsets[v] = res["base_offset"]
        comment("acks=1 to isolated leader %d: %d of 3 acknowledged" % (lead, tail_ok))

        # acks=all to L, once right after the cut (before L is fenced) in the background and
        # once after the majority has moved on: neither may be acknowledged.
        early = {}

        def send_early():
            early["res"] = produce_one(c, lead, b"isolated-all-0", acks=-1, timeout_ms=4000,
                                       read_timeout=8.0)
        isolated_values.append(b"isolated-all-0")
        th = threading.Thread(target=send_early, daemon=True)
        th.start()

        def new_leader():
            views = [c.raw_partitions(TOPIC, i)[0] for i in others]
            if all(p["leader"] in others and p["leader_epoch"] > old_epoch and
                   lead not in p["isr"] for p in views) and \
                    len(set(p["leader"] for p in views)) == 1:
                return views[0]["leader"]
            raise TestFailure("majority side sees %r" % [
                (p["leader"], p["leader_epoch"], p["isr"]) for p in views])
        new = poll(new_leader, 10 * SESSION_TIMEOUT_S, "a new leader elected on the majority side")
        comment("majority side elected leader %d %.1fs after the cut (session timeout %.1fs)"
                % (new, time.monotonic() - t_cut, SESSION_TIMEOUT_S))
        th.join(12 * SLOW)
        check(not th.is_alive(), "the early acks=all Produce to the isolated leader never ended")
        res = early["res"]
        check(not (isinstance(res, dict) and res["error_code"] == 0),
              "acks=all acknowledged by the isolated leader %d: %r" % (lead, res))
        comment("early acks=all to isolated leader: %r" % (
            res if not isinstance(res, dict) else "error %d" % res["error_code"]))

        for i in range(10):
            v = b"during-%d" % i
            res = c.produce_raw(new, TOPIC, 0, v, acks=-1, timeout=10)
            check(res["error_code"] == 0, "acks=all to the new leader %d: %r" % (new, res))
            acked[v] = res["base_offset"]

        isolated_values.append(b"isolated-all-1")
        res = produce_one(c, lead, b"isolated-all-1", acks=-1, timeout_ms=2000, read_timeout=6.0)
        check(not (isinstance(res, dict) and res["error_code"] == 0),
              "acks=all acknowledged by the isolated leader %d after the election: %r"
              % (lead, res))
        comment("late acks=all to isolated leader: %r" % (
            res if not isinstance(res, dict) else "error %d" % res["error_code"]))
        seen_by_l = c.raw_partitions(TOPIC, lead)[0]
        comment("isolated node %d still sees leader %d epoch %d isr %r" % (
            lead, seen_by_l["leader"], seen_by_l["leader_epoch"], seen_by_l["isr"]))
        counters = c.net.counters()
        check(counters["held"] > 0, "no inter-node connection held by the cut: %r" % counters)
        l_files = segment_files(c, lead)
        l_bytes = sum(len(v) for v in l_files.values())
        comment("held connections %d; isolated leader's segment bytes %d" % (
            counters["held"], l_bytes))

        # -- heal --------------------------------------------------------------------------
        t_heal = time.monotonic()
        c.heal()
        wait_isr(c, [1, 2, 3], c.ids, timeout=40)
        comment("ISR whole again %.1fs after healing" % (time.monotonic() - t_heal))
        wait_identical(c, timeout=40)
        comment("segment files identical %.1fs after healing" % (time.monotonic() - t_heal))
        text = c.node(lead).log_text()
        trunc = re.findall(r"%s-0: (?:ahead of the leader: )?truncated from (\d+) to (\d+)"
                           % TOPIC, text)
        comment("truncations per node: %r" % {
            i: re.findall(r"%s-0: (?:ahead of the leader: )?truncated from (\d+) to (\d+)"
                          % TOPIC, c.node(i).log_text()) for i in c.ids})
        # The new leader's epoch starts where its log ended when it was elected: at L's
        # last acknowledged offset when L was isolated; when L could still reach the third
        # node, that node may have copied part of L's tail first (as Kafka allows: an
        # uncommitted record on the new leader becomes committed).
        new_start = acked[b"during-0"]
        if not only_from_controller:
            check(new_start == end_before, "the new leader's first record is at %d, L's "
                  "acknowledged log ended at %d" % (new_start, end_before))
        if tail_ok:
            check(trunc, "node %d held an unreplicated tail but its log reports no truncation"
                  % lead)
            check(any(int(a) > int(b) and int(b) == new_start for a, b in trunc),
                  "node %d's truncations %r do not cut back to %d, where the new leader's "
                  "epoch starts" % (lead, trunc, new_start))

        got = read_back(c, new)
        offsets = [o for o, _ in got]
        check(offsets == list(range(len(got))), "offsets are not 0..n-1: %r" % offsets)
        by_value = {}
        for o, v in got:
            by_value.setdefault(v, []).append(o)
        for v, off in acked.items():
            check(by_value.get(v) == [off], "acknowledged %r at %d, read at %r"
                  % (v, off, by_value.get(v)))
        for v in isolated_values:
            if not only_from_controller:
                check(v not in by_value, "isolated write %r survived at %r"
                      % (v, by_value.get(v)))
            elif v in by_value:
                offs = by_value[v]
                check(len(offs) == 1 and offs[0] < new_start and
                      tail_offsets.get(v, offs[0]) == offs[0],
                      "L's write %r read at %r (L had it at %r; new epoch starts at %d)"
                      % (v, offs, tail_offsets.get(v), new_start))
        comment("L's isolated writes kept: %r" % [v for v in isolated_values if v in by_value])
        kept = sum(1 for v in isolated_values if v in by_value)
        check(len(got) == len(acked) + kept, "read %d records, %d acknowledged, %d of L's "
              "unacknowledged writes kept" % (len(got), len(acked), kept))
        for i in c.ids:
            c.check_running(i)


@test
def test_isolated_leader_truncates_unreplicated_tail():
    partition_heals(leader_is_controller=False)


@test
def test_isolated_controller_leader_truncates_unreplicated_tail():
    partition_heals(leader_is_controller=True)


@test
def test_leader_cut_from_controller_only_truncates_unreplicated_tail():
    partition_heals(leader_is_controller=False, only_from_controller=True)


class Writer:
    """An idempotent acks=all confluent-kafka producer bootstrapped from every node (so it
    also hears an isolated node's stale Metadata); acked: value -> acknowledged offset."""

    def __init__(self, c, prefix):
        from confluent_kafka import Producer
        self.p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5,
                           "enable.idempotence": True, "message.timeout.ms": int(60000 * SLOW),
                           "request.timeout.ms": 3000, "retry.backoff.ms": 100,
                           "topic.metadata.refresh.interval.ms": 500,
                           "reconnect.backoff.max.ms": 300})
        self.prefix = prefix
        self.seq = 0
        self.acked = {}
        self.failed = []

    def _cb(self, err, msg):
        if err is None:
            self.acked[msg.value()] = msg.offset()
        else:
            self.failed.append(err.name())

    def run(self, seconds):
        """Produces one message after another (serving callbacks) for seconds."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.p.produce(TOPIC, value=b"%s-%d" % (self.prefix, self.seq), partition=0,
                           on_delivery=self._cb)
            self.seq += 1
            self.p.poll(0.01)

    def finish(self):
        """Flushes (every message must be delivered), then drops the client so that nothing
        reconnects while the cluster stops."""
        left = self.p.flush(60 * SLOW)
        self.p = None
        check(left == 0, "%d messages undelivered after 60 s" % left)
        comment("%d produced, %d acknowledged, %d failed %r" % (
            self.seq, len(self.acked), len(self.failed), sorted(set(self.failed))))


def check_read_back(c, acked):
    """Every acknowledged value (-> offset) is read back exactly once at its offset.
    Returns [(offset, value)] as the leader serves it."""
    leader = c.raw_partitions(TOPIC, c.wait_controller())[0]["leader"]
    got = read_back(c, leader)
    by_value = {}
    for o, v in got:
        by_value.setdefault(v, []).append(o)
    lost = [v for v in acked if v not in by_value]
    dups = [v for v, offs in by_value.items() if len(offs) > 1]
    moved = [v for v, off in acked.items() if v in by_value and by_value[v] != [off]]
    comment("read %d records: %d lost, %d duplicated, %d at another offset" % (
        len(got), len(lost), len(dups), len(moved)))
    check(acked, "nothing acknowledged")
    check(not lost, "acknowledged messages lost: %r" % lost[:10])
    check(not dups, "duplicates: %r" % dups[:10])
    check(not moved, "acknowledged at one offset, read at another: %r" % moved[:10])
    return got


@test
def test_idempotent_producer_across_partition_and_heal():
    """A confluent-kafka idempotent acks=all producer (bootstrapped from every node, so it
    also hears the isolated leader's stale Metadata) writes before, during and after the
    leader's isolation, while 1 KiB segments make L's acks=1 tail span several segment files.
    After healing, L truncates whole segments, and the preferred-leader check (every second)
    gives the partition back to L, whose producer state must match its truncated log: every
    acknowledged message is read back exactly once at the offset it was acknowledged at, the
    tail is gone, and the replicas' segment files (names and bytes) end identical."""
    props = {"replica.lag.time.max.ms": LAG_MS, "log.segment.bytes": 1024,
             "leader.imbalance.check.interval.seconds": 1}
    with Cluster(3, props, proxied=True) as c:
        ctl = c.wait_formed()
        lead = min(i for i in c.ids if i != ctl)
        create_topic(c, [lead] + [i for i in c.ids if i != lead])
        w = Writer(c, b"m")
        w.run(1.5)
        c.isolate(lead)
        segs_before = len(segment_files(c, lead))
        tail_ok = 0
        for i in range(40):
            # The first tail record fills most of a segment: L rolls a new segment exactly
            # where its tail starts, while the new leader's next (small) batch at that offset
            # still fits its current segment. L must end with the same segment boundaries.
            pad = 900 if i == 0 else 100
            res = produce_one(c, lead, b"tail-%03d-" % i + b"x" * pad, acks=1, timeout_ms=2000,
                              read_timeout=4.0)
            tail_ok += isinstance(res, dict) and res["error_code"] == 0
        comment("acks=1 tail on isolated leader %d: %d of 40 acknowledged, segments %d -> %d"
                % (lead, tail_ok, segs_before, len(segment_files(c, lead))))
        w.run(2 * SESSION_TIMEOUT_S + 2)
        c.heal()
        w.run(1.5)
        poll(lambda: all(c.raw_partitions(TOPIC, i)[0]["leader"] == lead for i in c.ids), 20,
             "the preferred leader %d leading again" % lead)
        w.run(1.5)
        w.finish()
        wait_isr(c, [1, 2, 3], c.ids, timeout=40)
        wait_identical(c, timeout=40)
        comment("%d segment files per replica" % len(segment_files(c, lead)))
        got = check_read_back(c, w.acked)
        check(not any(v.startswith(b"tail-") for _, v in got), "L's acks=1 tail survived")


@test
def test_flapping_partitions_lose_nothing():
    """Six random cuts (one node isolated, or one link cut) of 0.5-5 s with short heals in
    between (seeded: NETSPLIT_SEED, default 1) while an idempotent acks=all producer writes:
    nothing acknowledged is lost, duplicated or moved, and the replicas end byte-identical."""
    import random
    seed = int(os.environ.get("NETSPLIT_SEED", "1"))
    rnd = random.Random(seed)
    with Cluster(3, {"replica.lag.time.max.ms": LAG_MS}, proxied=True) as c:
        c.wait_formed()
        create_topic(c, [1, 2, 3])
        w = Writer(c, b"f")
        w.run(1.0)
        steps = []
        for _ in range(6):
            x = rnd.choice(c.ids)
            if rnd.random() < 0.5:
                c.isolate(x)
                what = "isolate %d" % x
            else:
                y = rnd.choice([i for i in c.ids if i != x])
                c.cut(x, y)
                what = "cut %d-%d" % (x, y)
            d = rnd.choice([0.5, 1.5, 3.5, 5.0])
            steps.append("%s %.1fs" % (what, d))
            w.run(d)
            c.heal()
            w.run(rnd.choice([0.5, 1.0, 2.0]))
        comment("seed %d: %s" % (seed, ", ".join(steps)))
        w.finish()
        wait_isr(c, [1, 2, 3], c.ids, timeout=40)
        wait_identical(c, timeout=40)
        check_read_back(c, w.acked)


@test
def test_proxy_holds_cut_links_and_resumes_after_heal():
    """The proxy alone: a connection from a node over a cut link delivers nothing until
    healed, then the cluster forms again; a client connection (the test) is never cut; a
    restarted node (new pid) is recognised again."""
    with Cluster(3, proxied=True) as c:
        c.wait_formed()
        check(c.net.counters()["unidentified"] == 0, "unidentified connections %r"
              % c.net.counters())
        links = c.net.links()
        check(any(s is not None and s != d for s, d in links), "no inter-node link: %r" % links)
        c.isolate(1)
        with KafkaRaw("127.0.0.1", c.proxy_client_ports[0], timeout=5.0) as conn:
            check(conn.metadata(4, topics=[])["brokers"], "a client through node 1's proxy")
        time.sleep(2 * SESSION_TIMEOUT_S)
        held = c.net.counters()["held"]
        check(held > 0, "nothing held while node 1 is isolated")
        b0 = c.net.counters()["bytes"]
        time.sleep(0.5)
        b1 = c.net.counters()["bytes"]
        moved = {k: b1.get(k, 0) - b0.get(k, 0) for k in b1
                 if 1 in k and None not in k and k[0] != k[1] and b1.get(k, 0) != b0.get(k, 0)}
        check(not moved, "bytes crossed a cut link: %r" % moved)
        c.heal()
        c.wait_formed(timeout=30)
        comment("held %d connections; cluster formed again after healing" % held)
        # A restarted node has a new pid: its new links are still attributed to it, and
        # cutting it still cuts them.
        before = dict(c.net.counters()["accepted"])
        c.restart(2)
        c.wait_formed(timeout=30)
        after = c.net.counters()
        check(after["unidentified"] == 0, "unidentified connections %r" % after)
        new_from_2 = {k: v - before.get(k, 0) for k, v in after["accepted"].items()
                      if k[0] == 2 and k[1] != 2 and v > before.get(k, 0)}
        check(new_from_2, "no new link from the restarted node 2: %r" % after["accepted"])
        c.isolate(2)
        poll(lambda: c.net.counters()["held"] > 0, 10, "node 2's new links held by the cut")
        c.heal()
        c.wait_formed(timeout=30)


if __name__ == "__main__":
    run_tests()
