"""Cluster failover (issue 13): three `gregor serve` processes (broker + controller voter
each) with broker.heartbeat.interval.ms=500 and broker.session.timeout.ms=3000.

SIGKILL of the active controller (another voter takes over, CreateTopics works again: the
failover time is printed); SIGKILL of a broker leading partitions (new leaders from the ISR
within the session timeout, RF 1 partitions offline, a producer and a consumer carry on:
time to the first produce acknowledged by a new leader is printed); restart of that broker
(re-registers, RF 1 partitions and preferred leaders come back); two of three voters down
(metadata changes fail, the survivor keeps serving produce and fetch); SIGTERM of a broker
(controlled shutdown: its leaderships move before it exits, producers see no failure).
"""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SESSION_TIMEOUT_S, SLOW, Cluster, TestFailure, check,  # noqa: E402
                     comment, fail, poll, run_tests, tail, test)
from kafka_records import fetch, parse_batches  # noqa: E402

LEADER_NOT_AVAILABLE = 5
# How long after the session timeout a fenced broker's partitions may take to move.
SLACK_S = 5.0


class ProduceLoop:
    """A confluent-kafka producer (acks=all, retries) in a thread, producing one message to
    each given partition every `interval` seconds. Every message's send time, completion
    time, partition, offset and error are recorded."""

    def __init__(self, bootstrap, topic, partitions, interval=0.02):
        from confluent_kafka import Producer
        self.topic = topic
        self.partitions = list(partitions)
        self.interval = interval
        self.errors = []  # error_cb: (time, name, text, fatal)
        self.results = []  # (seq, partition, t_sent, t_done, error name or None, offset)
        self.lock = threading.Lock()
        self.p = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0,
            "message.timeout.ms": int(20000 * SLOW), "retry.backoff.ms": 50,
            "topic.metadata.refresh.interval.ms": 1000, "reconnect.backoff.max.ms": 500,
            "error_cb": self._on_error})
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.seq = 0
        self.crash = None

    def _on_error(self, err):
        self.errors.append((time.monotonic(), err.name(), err.str(), err.fatal()))

    def _run(self):
        try:
            self._produce()
        except BaseException as e:  # reported by wait_success_each and stop
            self.crash = "%s: %s" % (type(e).__name__, e)

    def _produce(self):
        while not self.stopping.is_set():
            for part in self.partitions:
                seq, sent = self.seq, time.monotonic()
                self.seq += 1

                def cb(err, msg, seq=seq, sent=sent, part=part):
                    with self.lock:
                        self.results.append((seq, part, sent, time.monotonic(),
                                             err.name() if err else None,
                                             None if err else msg.offset()))
                try:
                    self.p.produce(self.topic, value=b"v-%d" % seq, partition=part,
                                   on_delivery=cb)
                except BufferError:
                    pass
            tick = time.monotonic() + self.interval
            while not self.stopping.is_set() and time.monotonic() < tick:
                self.p.poll(max(0.0, tick - time.monotonic()))

    def start(self):
        self.thread.start()
        return self

    def successes(self, since=None, partitions=None):
        with self.lock:
            return [r for r in self.results if r[4] is None
                    and (since is None or r[2] >= since)
                    and (partitions is None or r[1] in partitions)]

    def failures(self):
        with self.lock:
            return [r for r in self.results if r[4] is not None]

    def wait_success_each(self, partitions, since=None, timeout=10.0, what=""):
        """Until every partition has a success sent at/after `since`. Returns
        {partition: first such result}."""
        def done():
            first = {}
            for r in sorted(self.successes(since, partitions), key=lambda r: r[3]):
                first.setdefault(r[1], r)
            return first if set(first) >= set(partitions) else None
        try:
            return poll(done, timeout, "acknowledged produce to partitions %r %s"
                        % (sorted(partitions), what))
        except TestFailure as e:
            fail("%s; producer failures so far: %r%s" % (e, self.failures()[:5], (
                "; producer thread died: " + self.crash) if self.crash else ""))

    def stop(self, strict=True, flush_timeout=25.0):
        """Stops producing and flushes; strict: fails if the producer thread died or messages
        are still undelivered (not strict: while another failure is being reported)."""
        self.stopping.set()
        self.thread.join(10)
        left = self.p.flush((flush_timeout if strict else 1.0) * SLOW)
        if strict:
            check(self.crash is None, "producer thread died: %s" % self.crash)
            check(left == 0, "%d messages still undelivered %.0f s after the producer stopped"
                  % (left, flush_timeout * SLOW))


def pick_victim(c, ctl, *leader_maps):
    """A node other than the controller that leads at least one partition in every map."""
    for i in c.ids:
        if i != ctl and all(i in m.values() for m in leader_maps):
            return i
    fail("no non-controller node leads partitions of every topic (controller %d, leaders %r)"
         % (ctl, leader_maps))


def consume_until(c, topic, want, timeout=20.0):
    """A consumer assigned to each partition of want {partition: set of (offset, value)}
    from its lowest offset reads until it has seen every wanted message or timeout passes.
    Returns {partition: set of (offset, value) read}."""
    from confluent_kafka import Consumer, TopicPartition
    cons = Consumer({"bootstrap.servers": c.live_bootstrap(), "group.id": "failover-check",
                     "enable.auto.commit": False})
    got = {p: set() for p in want}
    try:
        cons.assign([TopicPartition(topic, p, min(o for o, _ in w)) for p, w in want.items()])
        deadline = time.monotonic() + timeout * SLOW
        while any(not w <= got[p] for p, w in want.items()) and time.monotonic() < deadline:
            m = cons.poll(0.5)
            if m is None or m.error() is not None:
                continue
            got[m.partition()].add((m.offset(), m.value()))
    finally:
        cons.close()
    return got


@test
def test_controller_sigkill_failover():
    """SIGKILL of the active controller: the two other voters agree on a new controller,
    CreateTopics (through the surviving brokers) succeeds again within a few seconds (the
    time is printed), the topic created before the kill is still there with its three
    partitions and the new one is on both survivors."""
    with Cluster(3) as c:
        ctl = c.wait_controller()
        r = c.create_topic("before", 3, 3)
        check(r is None, "create before the kill: %s" % r)
        c.wait_topic("before", 3, timeout=10)
        t_kill = c.kill(ctl)
        new = c.wait_controller(exclude=(ctl,))
        elected = time.monotonic() - t_kill
        attempt, last = 0, None
        while True:
            attempt += 1
            last = c.create_topic("after-%d" % attempt, 1, 1, timeout=1.0)
            if last is None:
                break
            check(time.monotonic() - t_kill < 15 * SLOW, "CreateTopics still failing %.1fs "
                  "after SIGKILL of controller %d (last error %s, %d attempts)"
                  % (time.monotonic() - t_kill, ctl, last, attempt))
            time.sleep(0.05)
        took = time.monotonic() - t_kill
        comment("controller failover: %.2fs from SIGKILL of node %d to a CreateTopics answered "
                "(new active controller %d agreed on after %.2fs; %d CreateTopics attempts "
                "of at most 1 s)" % (took, ctl, new, elected, attempt))
        check(c.wait_controller() == new, "controller changed again")
        check(took < 10 * SLOW, "controller failover took %.1fs" % took)
        c.wait_topic("before", 3, timeout=10)
        # Created before the dead broker was fenced, its one replica may be on that broker.
        c.wait_topic("after-%d" % attempt, 1, timeout=10, live_leaders=False)


def sigkill_leader_setup(c):
    """Creates r3 (6 partitions, RF 3) and r1 (6 partitions, RF 1); picks a victim that is
    not the controller and leads partitions of both. Returns (controller, victim, r3 leaders,
    r1 leaders, r3 partitions as the controller's node sees them)."""
    ctl = c.wait_controller()
    for name, rf in (("r3", 3), ("r1", 1)):
        r = c.create_topic(name, 6, rf)
        check(r is None, "create %s (6 partitions, RF %d): %s" % (name, rf, r))
    l3 = c.wait_topic("r3", 6, timeout=10)
    l1 = c.wait_topic("r1", 6, timeout=10)
    victim = pick_victim(c, ctl, l3, l1)
    comment("controller %d, victim %d, r3 leaders %r, r1 leaders %r" % (ctl, victim, l3, l1))
    return ctl, victim, l3, l1, c.raw_partitions("r3", ctl)


def wait_fenced(c, victim, l1, views, timeout):
    """Until every node in views no longer lists victim as a broker and shows r1's
    partitions on it offline (leader -1, LEADER_NOT_AVAILABLE, victim among the offline
    replicas) while r1's other partitions keep their leader."""
    def fenced():
        for v in views:
            md = c.metadata(v, topics=["r1"])
            brokers = sorted(b["node_id"] for b in md["brokers"])
            if victim in brokers:
                raise TestFailure("node %d still lists broker %d: %r" % (v, victim, brokers))
            ps = {p["partition"]: p for p in md["topics"][0]["partitions"]}
            for part, leader in l1.items():
                p = ps[part]
                if leader == victim:
                    if not (p["leader"] == -1 and p["error_code"] == LEADER_NOT_AVAILABLE
                            and victim in p["offline"]):
                        raise TestFailure("node %d: r1-%d (on %d) is %r, want leader -1, "
                                             "error 5, %d offline" % (v, part, victim, p, victim))
                else:
                    check(p["leader"] == leader and p["error_code"] == 0,
                          "node %d: r1-%d lost its leader %d: %r" % (v, part, leader, p))
        return True
    return poll(fenced, timeout, "broker %d fenced and its RF 1 partitions offline" % victim)


@test
def test_leader_sigkill_failover():
    """SIGKILL of a non-controller broker leading partitions of r3 (RF 3) and r1 (RF 1),
    while a confluent-kafka producer (acks=all) writes to every r3 partition: within the
    session timeout plus a few seconds every r3 partition it led has a new live leader from
    the ISR with a higher leader epoch, it is out of every ISR and listed offline, the other
    partitions keep their leaders, it is gone from Metadata's brokers and its r1 partitions
    show leader -1 (LEADER_NOT_AVAILABLE); the producer gets an acknowledgement for every
    partition it led (the time from SIGKILL is printed) and no message fails; a consumer
    reads every message acknowledged after the kill from the new leaders."""
    with Cluster(3) as c:
        ctl, victim, l3, l1, before = sigkill_leader_setup(c)
        led3 = sorted(p for p, l in l3.items() if l == victim)
        loop = ProduceLoop(c.bootstrap, "r3", range(6)).start()
        try:
            loop.wait_success_each(range(6), timeout=10, what="before the kill")
            t_kill = c.kill(victim)
            live = [i for i in c.ids if i != victim]

            def moved():
                for v in live:
                    ps = c.raw_partitions("r3", v)
                    for part, p in ps.items():
                        if part in led3:
                            if not (p["leader"] in live and
                                    p["leader_epoch"] > before[part]["leader_epoch"]):
                                raise TestFailure("node %d: r3-%d %r (was led by %d, epoch "
                                                     "%d)" % (v, part, p, victim,
                                                              before[part]["leader_epoch"]))
                        else:
                            check(p["leader"] == l3[part], "node %d: r3-%d moved from %d to "
                                  "%d though %d did not lead it" % (v, part, l3[part],
                                                                    p["leader"], victim))
                return True
            poll(moved, SESSION_TIMEOUT_S + SLACK_S, "new leaders for r3 partitions %r" % led3)
            comment("r3 partitions %r have new leaders %.2fs after SIGKILL of node %d"
                    % (led3, time.monotonic() - t_kill, victim))
            for v in live:
                for part, p in c.raw_partitions("r3", v).items():
                    check(victim not in p["isr"], "node %d: r3-%d ISR %r still has dead %d"
                          % (v, part, p["isr"], victim))
                    check(p["leader"] in p["isr"], "node %d: r3-%d leader %d not in ISR %r"
                          % (v, part, p["leader"], p["isr"]))
                    check(victim in p["offline"], "node %d: r3-%d offline replicas %r lack %d"
                          % (v, part, p["offline"], victim))
            wait_fenced(c, victim, l1, live, SLACK_S)
            first = loop.wait_success_each(led3, since=t_kill, timeout=SESSION_TIMEOUT_S + 15,
                                           what="after the kill")
            times = {p: r[3] - t_kill for p, r in first.items()}
            comment("leader failover: SIGKILL of node %d to first produce acknowledged by the "
                    "new leader: %.2fs (slowest partition %.2fs) %r"
                    % (victim, min(times.values()), max(times.values()),
                       {p: round(t, 2) for p, t in times.items()}))
            time.sleep(0.5)
        except BaseException:
            loop.stop(strict=False)
            raise
        loop.stop()
        check(not loop.failures(), "%d failed deliveries, first %r"
              % (len(loop.failures()), loop.failures()[:5]))
        fatal = [e for e in loop.errors if e[3]]
        check(not fatal, "fatal producer errors %r" % fatal)
        after = {}
        for r in loop.successes(since=t_kill, partitions=led3):
            after.setdefault(r[1], set()).add((r[5], b"v-%d" % r[0]))
        got = consume_until(c, "r3", after)
        for p, want in sorted(after.items()):
            check(want <= got[p], "r3-%d: consumer read %d of the %d messages acknowledged "
                  "after the kill (missing e.g. %r)"
                  % (p, len(want & got[p]), len(want), sorted(want - got[p])[:3]))
        comment("consumer read all %d messages acknowledged by the new leaders"
                % sum(len(w) for w in after.values()))


@test
def test_killed_broker_restarts_and_rejoins():
    """A broker leading r1 (RF 1) partitions, holding data there, is SIGKILLed and fenced
    (gone from Metadata, its partitions offline), then restarted: it is listed again by
    DescribeCluster and Metadata on every node, its r1 partitions get it back as leader
    with the data written before the kill, and produce to them works again."""
    with Cluster(3) as c:
        ctl, victim, l3, l1, _ = sigkill_leader_setup(c)
        led1 = sorted(p for p, l in l1.items() if l == victim)
        for part in led1:
            res = c.produce_raw(victim, "r1", part, b"before-%d" % part)
            check(res["error_code"] == 0, "produce r1-%d: %r" % (part, res))
        c.kill(victim)
        live = [i for i in c.ids if i != victim]
        wait_fenced(c, victim, l1, live, SESSION_TIMEOUT_S + SLACK_S)
        t0 = time.monotonic()
        c.restart(victim)

        def rejoined():
            for v in c.ids:
                d = c.describe_cluster(v)
                ids = sorted(b["node_id"] for b in d["brokers"])
                md = c.metadata(v, topics=["r1"])
                mids = sorted(b["node_id"] for b in md["brokers"])
                if ids != c.ids or mids != c.ids:
                    raise TestFailure("node %d lists DescribeCluster %r, Metadata %r"
                                          % (v, ids, mids))
                ps = {p["partition"]: p for p in md["topics"][0]["partitions"]}
                for part in led1:
                    if ps[part]["leader"] != victim or ps[part]["error_code"] != 0:
                        raise TestFailure("node %d: r1-%d is %r" % (v, part, ps[part]))
            return True
        poll(rejoined, 20, "node %d re-registered and leading r1 %r again" % (victim, led1))
        comment("node %d rejoined and leads r1 %r again %.2fs after restart"
                % (victim, led1, time.monotonic() - t0))
        for part in led1:
            res = c.produce_raw(victim, "r1", part, b"after")
            check(res["error_code"] == 0 and res["base_offset"] == 1,
                  "produce r1-%d after restart: %r (want offset 1, after the record written "
                  "before the kill)" % (part, res))
            with c.raw(victim) as conn:
                f = fetch(conn, "r1", part, 0)
            vals = [r["value"] for b in parse_batches(f["records"]) for r in b["records"]]
            check(f["error_code"] == 0 and vals == [b"before-%d" % part, b"after"],
                  "r1-%d after restart: error %d, values %r" % (part, f["error_code"], vals))


# A restarted replica rejoins the ISR once it caught up by fetching from the leader, and a
# preferred leader returns only from the ISR (auto leader rebalance itself is also tested in
# test_cluster_admin.py, with a reassignment that reorders the replicas).
@test
def test_preferred_leaders_return_after_restart():
    """With leader.imbalance.check.interval.seconds=1: after the SIGKILLed broker restarts
    and is unfenced, every r3 (RF 3) partition whose preferred (first) replica it is gets it
    back as leader, on every node's Metadata, within a few seconds."""
    with Cluster(3, {"leader.imbalance.check.interval.seconds": 1,
                     "auto.leader.rebalance.enable": "true"}) as c:
        ctl, victim, l3, l1, before = sigkill_leader_setup(c)
        preferred = sorted(p for p, m in before.items() if m["replicas"][0] == victim)
        check(preferred, "node %d is no r3 partition's preferred leader: %r" % (victim, before))
        c.kill(victim)
        live = [i for i in c.ids if i != victim]
        wait_fenced(c, victim, l1, live, SESSION_TIMEOUT_S + SLACK_S)
        for part in preferred:
            p = c.raw_partitions("r3", live[0])[part]
            check(p["leader"] in live, "r3-%d while %d is down: %r" % (part, victim, p))
        t0 = time.monotonic()
        c.restart(victim)

        def back():
            for v in c.ids:
                ps = c.raw_partitions("r3", v)
                for part in preferred:
                    if ps[part]["leader"] != victim:
                        raise TestFailure("node %d: r3-%d %r" % (v, part, ps[part]))
            return True
        poll(back, 12, "node %d leading its preferred r3 partitions %r again"
                  % (victim, preferred))
        comment("preferred leaders back %.2fs after restart" % (time.monotonic() - t0))


@test
def test_two_voters_down():
    """Two of three voters SIGKILLed (the controller and one more; the survivor leads r1
    partitions): CreateTopics through the survivor, by an AdminClient and raw (timeout_ms
    3000), does not succeed (an error or a client timeout; the answer is printed) and
    creates nothing, while raw Produce (acks=-1) and Fetch on the
    survivor's own r1 partitions keep working, also after a session timeout has passed, and
    a confluent-kafka producer bootstrapped from the survivor delivers to them."""
    from confluent_kafka import Producer
    with Cluster(3) as c:
        ctl = c.wait_controller()
        r = c.create_topic("r1", 6, 1)
        check(r is None, "create r1: %s" % r)
        l1 = c.wait_topic("r1", 6, timeout=10)
        survivor = pick_victim(c, ctl, l1)
        mine = sorted(p for p, l in l1.items() if l == survivor)
        comment("controller %d, survivor %d leads r1 %r" % (ctl, survivor, mine))

        def produce_round(label, want_offset):
            for part in mine:
                res = c.produce_raw(survivor, "r1", part, label)
                check(res["error_code"] == 0 and res["base_offset"] == want_offset,
                      "produce %s to r1-%d on survivor %d: %r" % (label, part, survivor, res))
                with c.raw(survivor) as conn:
                    f = fetch(conn, "r1", part, 0)
                    vals = [r["value"] for b in parse_batches(f["records"]) for r in b["records"]]
                    check(f["error_code"] == 0 and len(vals) == want_offset + 1
                          and vals[-1] == label, "fetch r1-%d on survivor after %s: error %d, "
                          "values %r" % (part, label, f["error_code"], vals))
        produce_round(b"quorum", 0)
        t_kill = time.monotonic()
        for i in c.ids:
            if i != survivor:
                c.kill(i)
        produce_round(b"no-quorum-1", 1)
        t0 = time.monotonic()
        r = c.create_topic("no-quorum", 1, 1, via=survivor, timeout=8.0)
        took = time.monotonic() - t0
        comment("CreateTopics without a quorum: %s after %.1fs" % (r, took))
        check(r is not None, "CreateTopics succeeded through node %d with two of three voters "
              "down" % survivor)
        check(took < 30 * SLOW, "CreateTopics took %.1fs to fail" % took)
        t0 = time.monotonic()
        try:
            err, msg = c.create_topic_raw("no-quorum-raw", 1, 1, via=survivor, timeout_ms=3000,
                                          read_timeout=8.0)
            raw = "error %d %r" % (err, msg)
            check(err != 0, "raw CreateTopics (timeout_ms 3000) succeeded through node %d with "
                  "two of three voters down" % survivor)
        except socket.timeout:
            raw = "no answer"
        comment("raw CreateTopics (timeout_ms 3000) without a quorum: %s after %.1fs"
                % (raw, time.monotonic() - t0))
        names = [t["name"] for t in c.metadata(survivor)["topics"]]
        check("no-quorum" not in names and "no-quorum-raw" not in names,
              "survivor lists a topic whose creation failed: %r" % names)
        wait = SESSION_TIMEOUT_S + 1.0 - (time.monotonic() - t_kill)
        if wait > 0:
            time.sleep(wait)
        produce_round(b"no-quorum-2", 2)
        p = Producer({"bootstrap.servers": c.node(survivor).bootstrap, "acks": "all",
                      "message.timeout.ms": int(15000 * SLOW)})
        done = []
        for part in mine:
            for k in range(5):
                p.produce("r1", value=b"ck-%d" % k, partition=part,
                          on_delivery=lambda err, msg: done.append(err.name() if err else None))
        left = p.flush(20 * SLOW)
        check(left == 0 and done == [None] * (5 * len(mine)),
              "confluent producer to the survivor: %d undelivered, results %r" % (left, done))
        check(c.node(survivor).running(), "survivor died: %s" % tail(c.node(survivor).log_path))
        # Without a quorum no controlled shutdown can complete; not this test's subject.
        c.kill(survivor)


@test
def test_sigterm_moves_leadership_first():
    """SIGTERM of a non-controller broker leading r3 (RF 3) partitions while a producer
    (acks=all) writes to all of them: the process exits 0, and Metadata from another broker
    queried right after the exit shows none of its partitions led by it (leaderships moved
    before exit, not after a session timeout); the new leaders are live, in the ISR, with a
    higher leader epoch; the producer has no failed delivery and no fatal error, and gets
    acknowledgements on the moved partitions after the exit."""
    with Cluster(3) as c:
        ctl = c.wait_controller()
        r = c.create_topic("r3", 6, 3)
        check(r is None, "create r3: %s" % r)
        l3 = c.wait_topic("r3", 6, timeout=10)
        victim = pick_victim(c, ctl, l3)
        led3 = sorted(p for p, l in l3.items() if l == victim)
        before = c.raw_partitions("r3", ctl)
        comment("controller %d, victim %d leads r3 %r" % (ctl, victim, led3))
        loop = ProduceLoop(c.bootstrap, "r3", range(6)).start()
        b = c.node(victim)
        try:
            loop.wait_success_each(range(6), timeout=10, what="before SIGTERM")
            t_term = time.monotonic()
            b.proc.send_signal(signal.SIGTERM)
            try:
                rc = b.proc.wait(15 * SLOW)
            except subprocess.TimeoutExpired:
                fail("node %d did not exit within %.0fs of SIGTERM; log tail:\n%s"
                     % (victim, 15 * SLOW, tail(b.log_path)))
            t_exit = time.monotonic()
            ps = c.raw_partitions("r3", ctl)
            t_seen = time.monotonic()
            b._reap()
            comment("SIGTERM to exit %.2fs; Metadata read %.0f ms after exit"
                    % (t_exit - t_term, (t_seen - t_exit) * 1000))
            check(rc == 0, "node %d exited with status %d after SIGTERM; log tail:\n%s"
                  % (victim, rc, tail(b.log_path)))
            b.check_log_clean()
            still = sorted(p for p, m in ps.items() if m["leader"] == victim)
            check(not still, "right after node %d exited, node %d's Metadata still shows it "
                  "leading r3 %r (leaderships not moved before exit)" % (victim, ctl, still))
            live = [i for i in c.ids if i != victim]
            for part in led3:
                m = ps[part]
                check(m["leader"] in live and m["leader"] in m["isr"]
                      and m["leader_epoch"] > before[part]["leader_epoch"],
                      "r3-%d after controlled shutdown: %r (before %r)" % (part, m, before[part]))
            loop.wait_success_each(led3, since=t_exit, timeout=10, what="after the exit")
            time.sleep(0.3)
        except BaseException:
            loop.stop(strict=False)
            raise
        loop.stop()
        check(not loop.failures(), "%d failed deliveries, first %r"
              % (len(loop.failures()), loop.failures()[:5]))
        fatal = [e for e in loop.errors if e[3]]
        check(not fatal, "fatal producer errors %r" % fatal)
        if loop.errors:
            comment("producer error_cb (non-fatal): %r" % sorted({e[1] for e in loop.errors}))


if __name__ == "__main__":
    run_tests()
