#!/usr/bin/python3
"""Failover times of a three-node Gregor cluster (issue 13's closing measurements).

Per run, on a fresh cluster each (three `gregor serve` nodes, each broker + controller voter,
free loopback ports, temporary data directories):
  leader   SIGKILL the broker leading partition 0 of an RF=3 topic (not the active controller)
           while a confluent-kafka producer (acks=all) sends to that partition; time from the
           kill to the first delivery acknowledged by the new leader.
  control  SIGKILL the active controller (the metadata quorum leader, from DescribeQuorum);
           time until another voter is quorum leader, and until CreateTopics sent to a
           surviving broker succeeds.
Prints every run and the medians. Broker timings are Kafka's defaults unless overridden:
  /usr/bin/python3 bench/cluster_failover.py [--runs 5] [--session-ms 9000] [--heartbeat-ms 2000]
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("GREGOR_BIN") or os.path.join(ROOT, "build", "gregor")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def uvarint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def read_uvarint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7


def quorum_leader(port, timeout=2.0):
    """The metadata quorum leader per DescribeQuorum v1 sent to 127.0.0.1:port, or -1."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return -1
    try:
        cid = b"bench"
        body = (uvarint(2) + uvarint(len("__cluster_metadata") + 1) + b"__cluster_metadata" +
                uvarint(2) + struct.pack(">i", 0) + b"\0" + b"\0" + b"\0")
        hdr = struct.pack(">hhih", 55, 1, 7, len(cid)) + cid + b"\0"
        msg = hdr + body
        s.sendall(struct.pack(">i", len(msg)) + msg)
        data = b""
        while len(data) < 4:
            chunk = s.recv(4 - len(data))
            if not chunk:
                return -1
            data += chunk
        n = struct.unpack(">i", data)[0]
        payload = b""
        while len(payload) < n:
            chunk = s.recv(n - len(payload))
            if not chunk:
                return -1
            payload += chunk
        i = 4 + 1  # correlation id, header tags
        err = struct.unpack(">h", payload[i:i + 2])[0]
        i += 2
        if err:
            return -1
        _, i = read_uvarint(payload, i)           # topics count
        ln, i = read_uvarint(payload, i)          # topic name
        i += ln - 1
        _, i = read_uvarint(payload, i)           # partitions count
        i += 4 + 2                                # partition index, error code
        return struct.unpack(">i", payload[i:i + 4])[0]
    except (OSError, IndexError, struct.error):
        return -1
    finally:
        s.close()


class Cluster:
    def __init__(self, args):
        self.dir = tempfile.mkdtemp(prefix="gregor-failover-")
        self.client = {i: free_port() for i in (1, 2, 3)}
        self.raft = {i: free_port() for i in (1, 2, 3)}
        voters = ",".join("%d@127.0.0.1:%d" % (i, self.raft[i]) for i in (1, 2, 3))
        self.procs = {}
        for i in (1, 2, 3):
            props = {
                "node.id": i, "process.roles": "broker,controller",
                "listeners": "PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d"
                             % (self.client[i], self.raft[i]),
                "controller.listener.names": "CONTROLLER", "controller.quorum.voters": voters,
                "log.dirs": os.path.join(self.dir, "n%d" % i),
                "broker.session.timeout.ms": args.session_ms,
                "broker.heartbeat.interval.ms": args.heartbeat_ms,
                "offsets.topic.replication.factor": 3,
            }
            argv = [BIN, "serve"]
            for k, v in props.items():
                argv += ["--override", "%s=%s" % (k, v)]
            log = open(os.path.join(self.dir, "n%d.log" % i), "wb")
            self.procs[i] = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            md = self.admin(1).list_topics(timeout=2)
            if len(md.brokers) == 3 and quorum_leader(self.client[1]) > 0:
                return
            time.sleep(0.1)
        raise RuntimeError("cluster did not form")

    def bootstrap(self, ids=(1, 2, 3)):
        return ",".join("127.0.0.1:%d" % self.client[i] for i in ids)

    def admin(self, via):
        return AdminClient({"bootstrap.servers": self.bootstrap([via]), "log_level": 0})

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def create(admin, name, parts, rf, timeout=15):
    f = admin.create_topics([NewTopic(name, parts, rf)], operation_timeout=10)[name]
    f.result(timeout)


def leader_failover(args):
    c = Cluster(args)
    try:
        create(c.admin(1), "fo", 3, 3)
        ctl = quorum_leader(c.client[1])
        deadline = time.time() + 10
        while True:  # the other nodes apply the new topic a moment after the controller
            md = c.admin(1).list_topics(timeout=5)
            if "fo" in md.topics and all(p.leader >= 0 for p in md.topics["fo"].partitions.values()):
                break
            if time.time() > deadline:
                raise RuntimeError("topic fo not visible")
            time.sleep(0.05)
        # a partition led by a broker that is not the active controller
        part = next(p for p, pm in md.topics["fo"].partitions.items() if pm.leader != ctl)
        victim = md.topics["fo"].partitions[part].leader
        survivors = [i for i in (1, 2, 3) if i != victim]
        acked = []
        prod = Producer({"bootstrap.servers": c.bootstrap(survivors + [victim]), "acks": "all",
                         "linger.ms": 0, "message.timeout.ms": 60000, "log_level": 0,
                         "retry.backoff.ms": 20, "topic.metadata.refresh.interval.ms": 1000})

        def cb(err, msg):
            if err is None:
                acked.append(time.monotonic())
        prod.produce("fo", b"warm", partition=part, on_delivery=cb)
        prod.flush(10)
        t0 = time.monotonic()
        c.kill(victim)
        acked.clear()
        while not acked and time.monotonic() - t0 < 60:
            prod.produce("fo", b"x", partition=part, on_delivery=cb)
            prod.poll(0.01)
        prod.flush(5)
        if not acked:
            raise RuntimeError("no delivery after the kill")
        return acked[0] - t0
    finally:
        c.close()


def controller_failover(args):
    c = Cluster(args)
    try:
        ctl = quorum_leader(c.client[1])
        survivor = next(i for i in (1, 2, 3) if i != ctl)
        admin = c.admin(survivor)
        create(admin, "warm", 1, 1)
        t0 = time.monotonic()
        c.kill(ctl)
        elected = None
        while elected is None and time.monotonic() - t0 < 60:
            q = quorum_leader(c.client[survivor], timeout=0.5)
            if q > 0 and q != ctl:
                elected = time.monotonic() - t0
            else:
                time.sleep(0.01)
        n = 0
        while elected is not None and time.monotonic() - t0 < 60:
            try:
                n += 1
                create(admin, "after-%d" % n, 1, 1, timeout=5)
                return elected, time.monotonic() - t0
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("CreateTopics never succeeded after the controller was killed")
    finally:
        c.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--session-ms", type=int, default=9000)
    ap.add_argument("--heartbeat-ms", type=int, default=2000)
    args = ap.parse_args()
    lead, elect, create_t = [], [], []
    for r in range(args.runs):
        t = leader_failover(args)
        lead.append(t)
        e, ct = controller_failover(args)
        elect.append(e)
        create_t.append(ct)
        print("run %d: leader kill -> produce acked %.2f s; controller kill -> new quorum "
              "leader %.2f s, CreateTopics ok %.2f s" % (r + 1, t, e, ct), flush=True)
    print("median over %d runs (broker.session.timeout.ms=%d, broker.heartbeat.interval.ms=%d):"
          % (args.runs, args.session_ms, args.heartbeat_ms))
    print("  SIGKILL of a partition leader's broker -> first acked produce: %.2f s"
          % statistics.median(lead))
    print("  SIGKILL of the active controller -> new quorum leader: %.2f s, CreateTopics ok: "
          "%.2f s" % (statistics.median(elect), statistics.median(create_t)))


if __name__ == "__main__":
    sys.exit(main())
