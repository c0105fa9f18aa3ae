#!/usr/bin/python3
"""A broker paused with SIGSTOP beyond broker.session.timeout.ms, on a three-node cluster:

  * while it is stopped, the active controller fences it: it leaves the broker list and every
    ISR, its RF=3 partitions get new leaders (higher leader epoch) and its RF=1 partitions go
    offline (leader -1); a confluent-kafka producer (acks=all) keeps delivering to the RF=3
    topic through the other brokers;
  * after SIGCONT it heartbeats again with its old epoch and is unfenced: it is listed again,
    its RF=1 partitions are led by it again, and a Produce sent to it for a partition it led
    before the pause is refused with NOT_LEADER_OR_FOLLOWER (it learnt the new leaders from
    the metadata log: no zombie leader once it has caught up);
  * it still stops cleanly (exit 0 on SIGTERM).
Bounded: each wait is a few seconds beyond the 3 s session the harness sets.
"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from harness import Cluster, SESSION_TIMEOUT_S, SLOW, check, comment, run_tests, test, wait_until


def led_by(c, topic, node, via):
    return sorted(p for p, q in c.raw_partitions(topic, via).items() if q["leader"] == node)


def brokers_seen(c, via):
    return sorted(b["node_id"] for b in c.metadata(via)["brokers"])


@test
def test_paused_broker_is_fenced_and_rejoins_without_zombie_leadership():
    from confluent_kafka import Producer
    with Cluster(3) as c:
        ctl = c.wait_controller()
        victim = next(i for i in c.live_ids() if i != ctl)
        others = [i for i in c.live_ids() if i != victim]
        check(c.create_topic("pz3", 6, 3) is None, "create pz3")
        check(c.create_topic("pz1", 6, 1) is None, "create pz1")
        c.wait_topic("pz3", 6)
        c.wait_topic("pz1", 6)
        led3 = led_by(c, "pz3", victim, ctl)
        led1 = led_by(c, "pz1", victim, ctl)
        check(led3 and led1, "victim %d leads pz3 %r, pz1 %r" % (victim, led3, led1))
        epochs = {p: q["leader_epoch"] for p, q in c.raw_partitions("pz3", ctl).items()}
        c.node(victim).send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        try:
            wait_until(lambda: victim not in brokers_seen(c, ctl), (SESSION_TIMEOUT_S + 5) * SLOW,
                       what="node %d fenced" % victim)
            comment("node %d fenced %.1fs after SIGSTOP" % (victim, time.monotonic() - t0))

            def moved():
                parts = c.raw_partitions("pz3", ctl)
                return all(parts[p]["leader"] in others and
                           parts[p]["leader_epoch"] > epochs[p] and
                           victim not in parts[p]["isr"] for p in led3)
            wait_until(moved, 5 * SLOW, what="pz3 leaders moved off node %d" % victim)
            parts1 = c.raw_partitions("pz1", ctl)
            check(all(parts1[p]["leader"] == -1 and parts1[p]["offline"] == [victim]
                      for p in led1), "pz1 partitions of the paused node not offline: %r"
                  % {p: parts1[p] for p in led1})
            errors = []
            prod = Producer({"bootstrap.servers": ",".join(c.node(i).bootstrap for i in others),
                             "acks": "all", "log_level": 0, "message.timeout.ms": 20000})
            for i in range(60):
                prod.produce("pz3", b"%d" % i, partition=led3[i % len(led3)],
                             on_delivery=lambda e, m: errors.append(e) if e else None)
            check(prod.flush(25 * SLOW) == 0 and not errors, "produce while paused: %r" % errors[:3])
        finally:
            c.node(victim).send_signal(signal.SIGCONT)
        t1 = time.monotonic()
        wait_until(lambda: victim in brokers_seen(c, ctl), (SESSION_TIMEOUT_S + 5) * SLOW,
                   what="node %d unfenced after SIGCONT" % victim)
        comment("node %d unfenced %.1fs after SIGCONT" % (victim, time.monotonic() - t1))
        wait_until(lambda: led_by(c, "pz1", victim, ctl) == led1, 5 * SLOW,
                   what="pz1 partitions led by node %d again" % victim)
        res = c.produce_raw(victim, "pz3", led3[0], b"zombie?", retry_on=(), timeout=5)
        check(res["error_code"] == 6, "paused node answered Produce for pz3-%d with %r"
              % (led3[0], res))
        res = c.produce_raw(victim, "pz1", led1[0], b"back", timeout=10)
        check(res["error_code"] == 0, "produce to its own RF=1 partition again: %r" % res)


if __name__ == "__main__":
    run_tests()
