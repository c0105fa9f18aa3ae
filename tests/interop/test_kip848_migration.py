#!/usr/bin/env python3
"""KIP-848 online migration (Kafka's group.consumer.migration.policy) with real clients: a
classic confluent-kafka consumer (librdkafka 2.0.2, eager range) consumes a 6-partition topic in
group G; a consumer-protocol member (kafka-crab-js = librdkafka 2.12, group.protocol=consumer,
tests/interop/kip848_member.js) joins G, which upgrades G to a consumer group: the partitions
split between them while the classic member goes on through JoinGroup/SyncGroup/Heartbeat served
by the consumer group. The broker is SIGKILLed and restarted while G is a consumer group with a
classic member (the group type replays from __consumer_offsets). The consumer-protocol member
leaves: G is downgraded to a classic group and the classic member gets all 6 partitions back.
Both commit every record they consume: across the two conversions and the restart no record is
lost or consumed twice. The type is checked with ListGroups v5 after each step.
Also two classic members and one consumer-protocol member through both conversions.
Bad input: with the policy disabled (or upgrade only), the consumer-protocol member is refused
(GROUP_ID_NOT_FOUND, as Kafka) and the classic member keeps all partitions.
asan-smoke
"""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (SLOW, Broker, KafkaRaw, Reader, TAGS_NONE, carray, check,  # noqa: E402
                     comment, cstring, run_tests, test, wait_until)
from kafka_records import ensure_topic  # noqa: E402

from confluent_kafka import Consumer, KafkaException, Producer  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MEMBER = os.path.join(HERE, "kip848_member.js")
TOPIC = "mig"
GROUP = "G"
PROPS = {"num.partitions": 6, "group.initial.rebalance.delay.ms": 0,
         "offsets.topic.num.partitions": 10,
         "group.consumer.heartbeat.interval.ms": 500,
         "group.consumer.min.heartbeat.interval.ms": 100,
         # Sessions outlive librdkafka's reconnect backoff across the broker restart.
         "group.consumer.session.timeout.ms": 30000,
         "group.consumer.min.session.timeout.ms": 1000}
LIST_GROUPS = 16


def group_type(b, group):
    """(state, type) of group from ListGroups v5, or None."""
    with KafkaRaw(b) as k:
        r = Reader(k.call(LIST_GROUPS, 5, carray([]) + carray([]) + TAGS_NONE))
        r.int32()
        r.int16()
        gs = dict((g[0], (g[2], g[3])) for g in r.carray(
            lambda r: (r.cstring(), r.cstring(), r.cstring(), r.cstring(), r.uvarint())))
    return gs.get(group)


def produce(b, start, n):
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 5})
    for i in range(start, start + n):
        p.produce(TOPIC, partition=i % 6, value=("v%d" % i).encode())
    check(p.flush(30 * SLOW) == 0, "producer did not flush")


class ClassicMember:
    """A confluent-kafka classic consumer polling in a thread; commits every record (sync)."""

    def __init__(self, b):
        self.c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": GROUP,
                           "auto.offset.reset": "earliest", "enable.auto.commit": False,
                           "session.timeout.ms": 30000, "heartbeat.interval.ms": 500,
                           "topic.metadata.refresh.interval.ms": 1000,
                           "partition.assignment.strategy": "range"})
        self.values = []
        self.assignment = set()
        self.commit_errors = []
        self.running = True
        self.lock = threading.Lock()

        def on_assign(c, parts):
            with self.lock:
                self.assignment = set(p.partition for p in parts)

        def on_revoke(c, parts):
            with self.lock:
                self.assignment = set()

        self.c.subscribe([TOPIC], on_assign=on_assign, on_revoke=on_revoke)
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while self.running:
            m = self.c.poll(0.1)
            if m is None or m.error():
                continue
            with self.lock:
                self.values.append(m.value().decode())
            try:
                self.c.commit(message=m, asynchronous=False)
            except KafkaException as e:
                self.commit_errors.append(str(e))

    def close(self):
        self.running = False
        self.t.join(10)
        self.c.close()


class ProtocolMember:
    """kip848_member.js (group.protocol=consumer, commits every record) as a child process."""

    def __init__(self, b):
        self.p = subprocess.Popen(["node", MEMBER, b.bootstrap, GROUP, TOPIC, "consumer", "-", "0"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.values = []
        self.offsets = []
        self.assignment = []
        self.errors = []
        self.left = False
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()

    def read(self):
        for line in self.p.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            ev.setdefault("ev", "")
            if ev["ev"] == "msg":
                self.offsets.append((ev["p"], ev["off"]))
            elif ev["ev"] == "assign":
                self.assignment = ev["parts"]
            elif ev["ev"] in ("error", "commit_error"):
                self.errors.append(ev["msg"])
            elif ev["ev"] == "left":
                self.left = True

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(20 * SLOW)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.t.join(5)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def offsets_of_values(values):
    """'v<i>' was produced to partition i % 6 as its (i // 6)-th record."""
    return [(int(v[1:]) % 6, int(v[1:]) // 6) for v in values]


def state(classic, proto):
    return ("classic: %d records, partitions %r, commit errors %r; consumer-protocol: %d records, "
            "partitions %r, errors %r" % (len(classic.values), sorted(classic.assignment),
                                          classic.commit_errors[-3:],
                                          len(proto.offsets) if proto else 0,
                                          proto.assignment if proto else None,
                                          proto.errors[-3:] if proto else None))


def no_loss_no_dup(classic, proto, total):
    """(exactly once, duplicated, lost). Tests wait for nothing lost, then check duplicates: a
    duplicate fails at once instead of waiting out the timeout."""
    got = offsets_of_values(classic.values) + proto.offsets
    want = set((i % 6, i // 6) for i in range(total))
    dup = len(got) - len(set(got))
    return set(got) == want and dup == 0, dup, len(want - set(got))


@test
def test_upgrade_restart_downgrade_with_real_clients():
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, TOPIC, 6)
        produce(b, 0, 600)
        classic = ClassicMember(b)
        proto = None
        try:
            wait_until(lambda: len(classic.values) >= 600 and len(classic.assignment) == 6,
                       60 * SLOW, what="the classic member consumes the first 600 records")
            check(group_type(b, GROUP) == ("Stable", "classic"),
                  "a classic group first: %r" % (group_type(b, GROUP),))
            # The consumer-protocol member joins: G becomes a consumer group.
            proto = ProtocolMember(b)
            wait_until(lambda: (group_type(b, GROUP) or ("", ""))[1] == "consumer", 30 * SLOW,
                       what="the group upgraded to a consumer group")

            def split():
                with classic.lock:
                    mine = set(classic.assignment)
                theirs = set(int(tp.split(":")[1]) for tp in proto.assignment)
                return mine and theirs and not (mine & theirs) and len(mine | theirs) == 6
            wait_until(split, 60 * SLOW, what="the partitions split between the two members")
            comment("split: classic %r, consumer-protocol %r" % (sorted(classic.assignment),
                                                                 proto.assignment))
            produce(b, 600, 600)
            wait_until(lambda: no_loss_no_dup(classic, proto, 1200)[2] == 0, 60 * SLOW,
                       what="1200 records consumed by the two members")
            ok, dup, lost = no_loss_no_dup(classic, proto, 1200)
            check(ok, "after the upgrade: %d duplicated, %d lost" % (dup, lost))
            # A restart: the consumer group (with its classic member) replays.
            b.kill()
            b.start()
            wait_until(lambda: (group_type(b, GROUP) or ("", ""))[1] == "consumer", 30 * SLOW,
                       what="the consumer group replayed after the restart")
            produce(b, 1200, 600)
            wait_until(lambda: no_loss_no_dup(classic, proto, 1800)[2] == 0, 90 * SLOW,
                       what="1800 records consumed after the restart")
            ok, dup, lost = no_loss_no_dup(classic, proto, 1800)
            check(ok, "after the restart: %d duplicated, %d lost" % (dup, lost))
            # The consumer-protocol member leaves: G is downgraded, the classic member gets all 6.
            proto.stop()
            wait_until(lambda: (group_type(b, GROUP) or ("", ""))[1] == "classic", 30 * SLOW,
                       what="the group downgraded to a classic group")
            wait_until(lambda: len(classic.assignment) == 6, 60 * SLOW,
                       what="the classic member gets all 6 partitions")
            produce(b, 1800, 600)
            wait_until(lambda: no_loss_no_dup(classic, proto, 2400)[2] == 0, 60 * SLOW,
                       what="2400 records consumed after the downgrade")
            ok, dup, lost = no_loss_no_dup(classic, proto, 2400)
            check(ok, "after the downgrade: %d duplicated, %d lost" % (dup, lost))
            check(group_type(b, GROUP) == ("Stable", "classic"),
                  "a Stable classic group at the end: %r" % (group_type(b, GROUP),))
            check(not proto.errors, "consumer-protocol member errors: %r" % proto.errors[:3])
            comment("classic commit errors (retried by the next commit): %r"
                    % classic.commit_errors[:3])
        except Exception:
            comment(state(classic, proto))
            logs = os.path.dirname(b.log_path)
            for name in sorted(os.listdir(logs)):
                if name.endswith(".log"):
                    with open(os.path.join(logs, name), errors="replace") as f:
                        for line in f:
                            if "[group]" in line and "loaded 0" not in line:
                                comment(name + ": " + line.rstrip())
            raise
        finally:
            classic.close()
            if proto:
                proto.kill()


def all_offsets(classics, proto):
    got = [o for c in classics for o in offsets_of_values(c.values)] + (proto.offsets if proto
                                                                         else [])
    return got


def all_seen(classics, proto, total):
    """Every record up to total was consumed (duplicates are checked after this wait)."""
    return set(all_offsets(classics, proto)) >= set((i % 6, i // 6) for i in range(total))


def exactly_once(classics, proto, total):
    got = all_offsets(classics, proto)
    want = set((i % 6, i // 6) for i in range(total))
    return set(got) == want and len(got) == len(set(got))


@test
def test_two_classic_members_and_a_consumer_member():
    """Two classic members share G; a consumer-protocol member joins (upgrade): the three hold
    2 partitions each; it leaves (downgrade): the two classic members split the 6 again. Every
    record is consumed exactly once."""
    with Broker(PROPS) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, TOPIC, 6)
        produce(b, 0, 300)
        classics = [ClassicMember(b), ClassicMember(b)]
        proto = None

        def parts():
            out = []
            for c in classics:
                with c.lock:
                    out.append(set(c.assignment))
            if proto:
                out.append(set(int(tp.split(":")[1]) for tp in proto.assignment))
            return out
        try:
            wait_until(lambda: [len(p) for p in parts()] == [3, 3] and
                       exactly_once(classics, None, 300), 60 * SLOW,
                       what="two classic members with 3 partitions each consume 300 records")
            proto = ProtocolMember(b)
            wait_until(lambda: (group_type(b, GROUP) or ("", ""))[1] == "consumer", 30 * SLOW,
                       what="the upgrade")
            wait_until(lambda: [len(p) for p in parts()] == [2, 2, 2] and
                       len(set.union(*parts())) == 6, 60 * SLOW,
                       what="2 partitions each for the three members")
            produce(b, 300, 300)
            wait_until(lambda: all_seen(classics, proto, 600), 60 * SLOW,
                       what="600 records consumed")
            check(exactly_once(classics, proto, 600), "after the upgrade: not exactly once")
            proto.stop()
            wait_until(lambda: (group_type(b, GROUP) or ("", ""))[1] == "classic", 30 * SLOW,
                       what="the downgrade")
            wait_until(lambda: [len(p) for p in parts()[:2]] == [3, 3] and
                       len(parts()[0] | parts()[1]) == 6, 60 * SLOW,
                       what="the classic members split the 6 again")
            produce(b, 600, 300)
            wait_until(lambda: all_seen(classics, proto, 900), 60 * SLOW,
                       what="900 records consumed")
            check(exactly_once(classics, proto, 900), "after the downgrade: not exactly once")
        except Exception:
            comment("partitions %r; records %r" % (parts(), [len(c.values) for c in classics] +
                                                   [len(proto.offsets) if proto else 0]))
            raise
        finally:
            for c in classics:
                c.close()
            if proto:
                proto.kill()


def refused_upgrade(policy):
    with Broker(dict(PROPS, **{"group.consumer.migration.policy": policy})) as b:
        with KafkaRaw(b) as k:
            ensure_topic(k, TOPIC, 6)
        produce(b, 0, 60)
        classic = ClassicMember(b)
        proto = None
        try:
            wait_until(lambda: len(classic.values) >= 60 and len(classic.assignment) == 6,
                       60 * SLOW, what="the classic member consumes")
            proto = ProtocolMember(b)
            time.sleep(5 * SLOW)
            check(group_type(b, GROUP) == ("Stable", "classic"),
                  "policy %s: still classic: %r" % (policy, group_type(b, GROUP)))
            check(proto.assignment == [] and len(classic.assignment) == 6,
                  "policy %s: nothing moved: %r / %r" % (policy, proto.assignment,
                                                         classic.assignment))
        finally:
            classic.close()
            if proto:
                proto.kill()


@test
def test_policy_disabled_refuses_the_upgrade():
    refused_upgrade("disabled")


@test
def test_policy_downgrade_only_refuses_the_upgrade():
    refused_upgrade("DOWNGRADE")  # case-insensitive, as Kafka


if __name__ == "__main__":
    run_tests()
