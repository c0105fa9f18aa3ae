"""Brokers talking to brokers over TLS and SASL (issue 15, inter.broker.listener.name,
sasl.mechanism.inter.broker.protocol). Three nodes, each with a PLAINTEXT listener for the
test's own requests and an INTERNAL listener mapped to SASL_SSL that the nodes use between
themselves (registration and heartbeats, follower fetches, AlterPartition, forwarded admin
requests), authenticating with SCRAM-SHA-512 as user `broker`, certificates made by the test
with the openssl CLI (a CA and a server certificate for 127.0.0.1). What is tried: replication
and acks=all across the secured links; then one node restarted with a wrong inter-broker
password: the others refuse it (logged) and it drops out of the ISR, while the rest keep
serving. The controller quorum's own transport (libraft) stays plaintext.
asan-smoke tsan-smoke
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Cluster, check, comment, distinct_free_ports,  # noqa: E402
                     fail, run_tests, test)

JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
        'username="broker" password="%s" user_broker="broker-secret";')


def openssl(*args):
    r = subprocess.run(("openssl",) + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    if r.returncode != 0:
        fail("openssl %s: %s" % (" ".join(args), r.stderr.decode()[-400:]))


def make_ca_and_server_cert(d):
    """ca.crt and server.pem (key + certificate for 127.0.0.1) in directory d."""
    p = lambda n: os.path.join(d, n)  # noqa: E731
    for name in ("ca", "server"):
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-out", p(name + ".key"))
    openssl("req", "-x509", "-new", "-key", p("ca.key"), "-subj", "/CN=Gregor inter-broker CA",
            "-days", "2", "-out", p("ca.crt"))
    openssl("req", "-new", "-key", p("server.key"), "-subj", "/CN=localhost", "-out", p("s.csr"))
    with open(p("s.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", p("s.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
            "-CAcreateserial", "-days", "2", "-extfile", p("s.ext"), "-out", p("server.crt"))
    with open(p("server.pem"), "w") as f:
        f.write(open(p("server.key")).read() + open(p("server.crt")).read())
    return p("ca.crt"), p("server.pem")


class SecureCluster(Cluster):
    """Cluster whose nodes reach each other on an INTERNAL SASL_SSL listener."""

    def __init__(self, n, ca, keystore, **kw):
        self.internal_ports = []
        self.ca, self.keystore = ca, keystore
        Cluster.__init__(self, n, **kw)

    def _assign_ports(self):
        """The INTERNAL ports are picked with the others, distinct from them, each time the
        cluster (re)assigns ports (a start retried after a port was taken meanwhile)."""
        Cluster._assign_ports(self)
        taken = set(self.client_ports) | set(self.raft_ports)
        self.internal_ports = [p for p in distinct_free_ports(3 * self.n) if p not in taken][
            :self.n]

    def node_config(self, node_id):
        p = Cluster.node_config(self, node_id)
        internal = "INTERNAL://%s:%d" % (HOST, self.internal_ports[node_id - 1])
        p["listeners"] = p["listeners"].replace(",CONTROLLER://", "," + internal + ",CONTROLLER://")
        p.update({
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL,"
                                              "CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
            "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
            "listener.name.internal.sasl.enabled.mechanisms": "SCRAM-SHA-512",
            "listener.name.internal.scram-sha-512.sasl.jaas.config": JAAS % "broker-secret",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": self.keystore,
            "ssl.truststore.location": self.ca,
        })
        return p


def isr_of(c, topic, via):
    return {i: sorted(p["isr"]) for i, p in c.raw_partitions(topic, via).items()}


@test
def test_replication_runs_over_sasl_ssl_between_brokers():
    d = tempfile.mkdtemp(prefix="gregor-ib-certs-")
    try:
        ca, keystore = make_ca_and_server_cert(d)
        with SecureCluster(3, ca, keystore, props={"replica.lag.time.max.ms": "2000"}) as c:
            log1 = open(c.node(1).log_path).read()
            check("INTERNAL" in log1 and "SASL_SSL" in log1,
                  "node 1 names its SASL_SSL INTERNAL listener at start-up")
            err, msg = c.create_topic_raw("ib", 3, 3, via=1)
            check(err == 0, "CreateTopics (forwarded over SASL_SSL if 1 is not the controller): "
                  "%d %s" % (err, msg))
            c.wait_topic("ib", 3)
            deadline = time.monotonic() + 20 * SLOW
            while time.monotonic() < deadline and any(
                    len(v) != 3 for v in isr_of(c, "ib", 1).values()):
                time.sleep(0.2)
            check(all(v == [1, 2, 3] for v in isr_of(c, "ib", 1).values()),
                  "every follower caught up over SASL_SSL: %r" % isr_of(c, "ib", 1))
            parts = c.raw_partitions("ib", 1)
            for i, p in parts.items():
                res = c.produce_raw(p["leader"], "ib", i, b"acks-all-%d" % i, acks=-1)
                check(res["error_code"] == 0, "acks=all on partition %d: %r" % (i, res))
            # One node whose inter-broker password is wrong: its connections are refused.
            bad = 3
            c.node(bad).stop()
            c.node(bad).props["listener.name.internal.scram-sha-512.sasl.jaas.config"] = \
                JAAS % "not-the-password"
            c.node(bad).start(wait=True)
            others = [i for i in c.ids if i != bad]
            deadline = time.monotonic() + 20 * SLOW
            refused = False
            while time.monotonic() < deadline and not refused:
                refused = any("user 'broker'" in open(c.node(i).log_path).read() and
                              "authentication of connection" in open(c.node(i).log_path).read()
                              for i in others)
                time.sleep(0.2)
            check(refused, "the other nodes log the refused inter-broker authentication")
            deadline = time.monotonic() + 20 * SLOW
            while time.monotonic() < deadline and any(
                    bad in v for v in isr_of(c, "ib", others[0]).values()):
                time.sleep(0.2)
            isr = isr_of(c, "ib", others[0])
            check(all(bad not in v for v in isr.values()),
                  "node %d cannot follow without authenticating: ISR %r" % (bad, isr))
            p = c.raw_partitions("ib", others[0])
            led = [i for i, x in p.items() if x["leader"] in others]
            check(led, "a partition led by a healthy node: %r" % p)
            res = c.produce_raw(p[led[0]]["leader"], "ib", led[0], b"still-serving", acks=-1)
            check(res["error_code"] == 0, "the rest keep serving acks=all: %r" % res)
            comment("ISR without node %d: %r" % (bad, isr))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_tests()
