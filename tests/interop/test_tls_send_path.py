"""How TLS responses are sent (issue #15): where the kernel offers kTLS (TCP_ULP "tls" in
/proc/sys/net/ipv4/tcp_available_ulp) OpenSSL's kTLS sends fetched file ranges with
SSL_sendfile; elsewhere the broker falls back to reading file ranges with pread and encrypting
with SSL_write. Which path each connection took is counted in gregor_tls_connections_total
{send_path="ktls"|"userspace"} on /metrics, and the first TLS connection logs it once.

This test expects the path the kernel allows (the machines Gregor is tested on have no kTLS,
so there it checks the fallback), and that Fetch over TLS returns exactly the bytes Fetch over
PLAINTEXT returns (raw record sets compared byte for byte, across segment rolls), also to
confluent-kafka and kcat consumers. Bad input tried: none beyond the kernel lacking kTLS.

asan-smoke tsan-smoke
"""
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, KafkaRaw, check, comment, fail, free_port,  # noqa: E402
                     run_tests, test)
from kafka_records import ensure_topic, fetch, produce, record_batch  # noqa: E402

from confluent_kafka import Consumer  # noqa: E402


def kernel_has_ktls():
    try:
        return "tls" in open("/proc/sys/net/ipv4/tcp_available_ulp").read().split()
    except OSError:
        return False


def make_certs(d):
    def run(*args):
        r = subprocess.run(("openssl",) + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        if r.returncode != 0:
            fail("openssl %s: %s" % (" ".join(args), r.stderr.decode()[-300:]))
    p = lambda n: os.path.join(d, n)  # noqa: E731
    for n in ("ca", "server"):
        run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
            p(n + ".key"))
    run("req", "-x509", "-new", "-key", p("ca.key"), "-subj", "/CN=send path CA", "-days", "2",
        "-out", p("ca.crt"))
    run("req", "-new", "-key", p("server.key"), "-subj", "/CN=localhost", "-out", p("s.csr"))
    with open(p("s.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", p("s.csr"), "-CA", p("ca.crt"), "-CAkey", p("ca.key"),
        "-CAcreateserial", "-days", "2", "-extfile", p("s.ext"), "-out", p("server.crt"))
    with open(p("server.pem"), "w") as f:
        f.write(open(p("server.key")).read() + open(p("server.crt")).read())
    return p("ca.crt"), p("server.pem")


def tls_raw(port, ca, version=None):
    k = KafkaRaw(HOST, port)
    ctx = ssl.create_default_context(cafile=ca)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    k.sock = ctx.wrap_socket(k.sock, server_hostname="127.0.0.1")
    return k


def metric(mport, name, labels):
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, mport), timeout=10 * SLOW) as r:
        text = r.read().decode()
    want = "%s{%s} " % (name, labels)
    for line in text.splitlines():
        if line.startswith(want):
            return int(float(line.split()[-1]))
    fail("no %s{%s} in /metrics" % (name, labels))


@test
def test_tls_fetch_is_byte_exact_and_the_send_path_is_observable():
    d = tempfile.mkdtemp(prefix="gregor-sendpath-")
    try:
        ca, keystore = make_certs(d)
        sport, mport = free_port(), free_port()
        pport = free_port()
        props = {"listeners": "PLAINTEXT://%s:%d,SSL://%s:%d" % (HOST, pport, HOST, sport),
                 "ssl.keystore.location": keystore, "metrics.listener":
                 "http://%s:%d" % (HOST, mport), "num.partitions": "1",
                 "log.segment.bytes": str(256 << 10), "offsets.topic.num.partitions": "1",
                 "group.initial.rebalance.delay.ms": "0"}
        with Broker(props, port=pport) as b:
            rnd = random.Random(15)
            topic = "tls-bytes"
            sent = []
            with KafkaRaw(b) as k:
                ensure_topic(k, topic)
                off = 0
                for i in range(60):  # ~1.2 MB over several 256 KiB segments
                    recs = [(b"k%d-%d" % (i, j), os.urandom(rnd.randrange(0, 2000)))
                            for j in range(20)]
                    res = produce(k, topic, 0, record_batch(recs))
                    check(res["error_code"] == 0, "produce: %r" % res)
                    sent += [v for _, v in recs]
                    off += len(recs)
            # raw fetches from offsets spread over the log: TLS bytes == PLAINTEXT bytes
            tls_conns = 0
            for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
                with KafkaRaw(b) as plain, tls_raw(sport, ca, version) as t:
                    tls_conns += 1
                    for start in (0, 1, 333, 600, 1111, off - 1):
                        a = fetch(plain, topic, 0, start, max_bytes=1 << 20)
                        c = fetch(t, topic, 0, start, max_bytes=1 << 20)
                        check(a["error_code"] == 0 and c["error_code"] == 0,
                              "fetch errors %d/%d" % (a["error_code"], c["error_code"]))
                        check(len(c["records"]) > 0 and c["records"] == a["records"],
                              "%s fetch at %d: %d bytes over TLS, %d over PLAINTEXT, equal=%s"
                              % (version.name, start, len(c["records"]), len(a["records"]),
                                 c["records"] == a["records"]))
            # confluent-kafka over TLS reads back every value exactly
            cons = Consumer({"bootstrap.servers": "%s:%d" % (HOST, sport),
                             "security.protocol": "SSL", "ssl.ca.location": ca,
                             "group.id": "sendpath", "auto.offset.reset": "earliest",
                             "max.partition.fetch.bytes": 300000})
            cons.subscribe([topic])
            got, deadline = [], time.monotonic() + 30 * SLOW
            while len(got) < len(sent) and time.monotonic() < deadline:
                m = cons.poll(0.2)
                if m is not None and not m.error():
                    got.append(m.value() or b"")
            cons.close()
            check(got == sent, "confluent-kafka over TLS: %d of %d values, equal=%s"
                  % (len(got), len(sent), got == sent))
            # kcat over TLS: the same bytes, as hex to keep binary values intact
            r = subprocess.run(["kcat", "-b", "%s:%d" % (HOST, sport), "-X",
                                "security.protocol=SSL", "-X", "ssl.ca.location=" + ca,
                                "-C", "-t", topic, "-e", "-o", "beginning", "-f", "%S %o\n"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=60 * SLOW)
            sizes = [int(x.split()[0]) for x in r.stdout.decode().split("\n") if x]
            check(r.returncode == 0 and sizes == [len(v) for v in sent],
                  "kcat over TLS read %d records (rc %d): %s"
                  % (len(sizes), r.returncode, r.stderr.decode()[-300:]))
            path = "ktls" if kernel_has_ktls() else "userspace"
            other = "userspace" if path == "ktls" else "ktls"
            n_path = metric(mport, "gregor_tls_connections_total", 'send_path="%s"' % path)
            n_other = metric(mport, "gregor_tls_connections_total", 'send_path="%s"' % other)
            comment("kernel kTLS: %s; TLS connections: %d %s, %d %s"
                    % (kernel_has_ktls(), n_path, path, n_other, other))
            # raw x2, the consumer's (bootstrap, broker, coordinator) and kcat's: at least 4
            check(n_path >= tls_conns + 2, "only %d TLS connections counted as %s"
                  % (n_path, path))
            if path == "userspace":
                check(n_other == 0, "%d connections counted as kTLS on a kernel without it"
                      % n_other)
                log = b.log_text()
                check(log.count("no kTLS (the kernel offers no TCP_ULP \"tls\")") == 1,
                      "the fallback was not logged exactly once: %d times"
                      % log.count("no kTLS (the kernel offers no TCP_ULP"))
                check("no kTLS in this kernel" in log, "start-up did not say there is no kTLS")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    run_tests()
