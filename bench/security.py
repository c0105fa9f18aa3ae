#!/usr/bin/python3
"""Cost of security (issue 15's benchmark): one Gregor broker with a PLAINTEXT and a SASL_SSL
(SCRAM-SHA-512, TLS with certificates made by the openssl CLI) listener, measured in the same
run with `gregor bench` (librdkafka): produce (acks=1) and consume throughput at 100 B and
1 KiB records on each listener, the SASL_SSL/PLAINTEXT ratios, and the handshake rate (new
connections per second that complete TCP + TLS (+ SASL) and get an ApiVersions answer, from
--clients Python threads).

  /usr/bin/python3 bench/security.py [--records 300000] [--sizes 100,1024] [--seconds 5]

GREGOR_BIN selects the broker binary (default build/gregor). The client shares the machine's
cores with the broker, so the numbers are relative to this machine, not absolute; each
throughput is the best of --repeat runs (the consume runs read the whole topic, which the
repeated produce runs made --repeat times larger). Also the TLS handshake rate against the
SSL listener: new connections per second, each a full handshake (the broker keeps no session
cache and issues no tickets; `openssl s_time -new` never resumes), for TLSv1.3 and TLSv1.2,
from --tls-procs `openssl s_time` processes side by side (C clients, summed). The load average
is printed before and after: the numbers are only comparable within one run.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "interop"))
from harness import GREGOR_BIN, HOST, Broker, free_port  # noqa: E402
from test_security import Certs  # noqa: E402


def bench(mode, addr, topic, size, records, extra):
    argv = [GREGOR_BIN, "bench", mode, "-b", addr, "-t", topic, "--json"]
    if mode == "produce":
        argv += ["-n", str(records), "-s", str(size), "-a", "1", "--partitions", "1"]
    for kv in extra:
        argv += ["-X", kv]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    if r.returncode != 0:
        sys.exit("gregor bench %s on %s failed: %s" % (mode, addr, r.stderr.decode()[-500:]))
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


def frame(api_key, version, corr, body=b""):
    hdr = api_key.to_bytes(2, "big") + version.to_bytes(2, "big") + corr.to_bytes(4, "big")
    payload = hdr + b"\xff\xff" + body  # null client id
    return len(payload).to_bytes(4, "big") + payload


def recv_frame(s):
    def exact(n):
        b = b""
        while len(b) < n:
            c = s.recv(n - len(b))
            if not c:
                raise ConnectionError("closed")
            b += c
        return b
    return exact(int.from_bytes(exact(4), "big"))


def scram_login(s, user, password):
    """SaslHandshake v1 + SaslAuthenticate v1 with SCRAM-SHA-512."""
    mech = b"SCRAM-SHA-512"
    s.sendall(frame(17, 1, 1, len(mech).to_bytes(2, "big") + mech))
    recv_frame(s)
    bare = "n=%s,r=%s" % (user, base64.b64encode(os.urandom(18)).decode())
    first = ("n,," + bare).encode()
    s.sendall(frame(36, 1, 2, len(first).to_bytes(4, "big") + first))
    resp = recv_frame(s)[4:]
    err = int.from_bytes(resp[0:2], "big")
    mlen = int.from_bytes(resp[2:4], "big", signed=True)
    off = 4 + max(mlen, 0)
    blen = int.from_bytes(resp[off:off + 4], "big")
    server_first = resp[off + 4:off + 4 + blen].decode()
    if err:
        raise RuntimeError("SCRAM client-first refused: %d" % err)
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    ck = hmac.new(salted, b"Client Key", "sha512").digest()
    stored = hashlib.sha512(ck).digest()
    wo = "c=biws,r=" + attrs["r"]
    sig = hmac.new(stored, ",".join((bare, server_first, wo)).encode(), "sha512").digest()
    final = (wo + ",p=" + base64.b64encode(bytes(a ^ b for a, b in zip(ck, sig))).decode()).encode()
    s.sendall(frame(36, 1, 3, len(final).to_bytes(4, "big") + final))
    if int.from_bytes(recv_frame(s)[4:6], "big") != 0:
        raise RuntimeError("SCRAM client-final refused")


def handshake_rate(port, ca, seconds, clients, sasl):
    """Connections per second completing TCP (+ TLS + SCRAM when sasl) + ApiVersions."""
    ctx = None
    if ca:
        ctx = ssl.create_default_context(cafile=ca)
    count = [0] * clients
    stop = time.monotonic() + seconds

    def run(i):
        while time.monotonic() < stop:
            s = socket.create_connection((HOST, port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait per step
            if ctx:
                s = ctx.wrap_socket(s, server_hostname="127.0.0.1")
            if sasl:
                scram_login(s, "bench", "bench-secret")
            s.sendall(frame(18, 0, 9))
            recv_frame(s)
            s.close()
            count[i] += 1

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(count) / (time.monotonic() - t0)


def s_time_rate(port, ca, seconds):
    """New TLS connections per (real) second from `openssl s_time -new` (one C client)."""
    r = subprocess.run(["openssl", "s_time", "-connect", "%s:%d" % (HOST, port), "-new",
                        "-time", str(int(max(1, seconds))), "-CAfile", ca],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=seconds + 30)
    for line in r.stdout.decode("utf-8", "replace").splitlines():
        words = line.split()
        if "real" in words and "connections" in words:  # "N connections in S real seconds"
            return int(words[0]) / float(words[3])
    return float("nan")


def s_time_parallel(port, ca, seconds, version, procs):
    """Full TLS handshakes per second from procs `openssl s_time -new -<version>` at once."""
    argv = ["openssl", "s_time", "-connect", "%s:%d" % (HOST, port), "-new", "-" + version,
            "-time", str(int(max(1, seconds))), "-CAfile", ca]
    ps = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
          for _ in range(procs)]
    total = 0.0
    for p in ps:
        out, _ = p.communicate(timeout=seconds + 30)
        for line in out.decode("utf-8", "replace").splitlines():
            words = line.split()
            if "real" in words and "connections" in words:
                total += int(words[0]) / float(words[3])
                break
        else:
            return float("nan")
    return total


def loadavg():
    return "load average %.2f %.2f %.2f on %d cores" % (os.getloadavg() + (os.cpu_count(),))


def best_of(n, fn):
    """The run with the most bytes per second of n (a shared machine is noisy)."""
    runs = [fn() for _ in range(n)]
    return max(runs, key=lambda r: r["bytes"] / r["seconds"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=300000)
    ap.add_argument("--sizes", default="100,1024")
    ap.add_argument("--seconds", type=float, default=5.0, help="per handshake measurement")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement, best kept")
    ap.add_argument("--tls-procs", type=int, default=2,
                    help="openssl s_time processes at once for the handshake rate")
    a = ap.parse_args()
    certs = Certs()
    ports = {"PLAINTEXT": free_port(), "SASL_SSL": free_port(), "SSL": free_port()}
    users = os.path.join(certs.dir, "users.properties")
    with open(users, "w") as f:
        f.write("bench=bench-secret\n")
    props = {
        "listeners": ",".join("%s://%s:%d" % (n, HOST, p) for n, p in ports.items()),
        "sasl.credentials.file": users,
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "ssl.keystore.location": certs.p("server-keystore.pem"),
        "ssl.key.password": "keypass",
    }
    sasl_x = ["security.protocol=SASL_SSL", "ssl.ca.location=" + certs.ca,
              "sasl.mechanisms=SCRAM-SHA-512", "sasl.username=bench",
              "sasl.password=bench-secret"]
    addr = {n: "%s:%d" % (HOST, p) for n, p in ports.items()}
    try:
        with Broker(props, name="bench-security", port=ports["PLAINTEXT"]):
            print("gregor %s, %d records per measurement, acks=1, 1 partition"
                  % (GREGOR_BIN, a.records))
            print("before: " + loadavg())
            print("%-8s %-6s %14s %14s %8s" % ("size", "what", "PLAINTEXT MB/s", "SASL_SSL MB/s",
                                               "ratio"))
            for size in [int(x) for x in a.sizes.split(",")]:
                res = {}
                for name, extra in (("PLAINTEXT", []), ("SASL_SSL", sasl_x)):
                    topic = "bench-%s-%d" % (name.lower(), size)
                    prod = best_of(a.repeat, lambda: bench("produce", addr[name], topic, size,
                                                           a.records, extra))
                    cons = best_of(a.repeat, lambda: bench("consume", addr[name], topic, size,
                                                           a.records, extra))
                    res[name] = (prod, cons)
                for i, what in ((0, "produce"), (1, "fetch")):
                    p, s = res["PLAINTEXT"][i], res["SASL_SSL"][i]
                    mb_p = p["bytes"] / p["seconds"] / 1e6
                    mb_s = s["bytes"] / s["seconds"] / 1e6
                    print("%-8s %-6s %14.1f %14.1f %8.2f" % ("%d B" % size, what, mb_p, mb_s,
                                                           mb_s / mb_p))
            plain = handshake_rate(ports["PLAINTEXT"], None, a.seconds, a.clients, False)
            tls = handshake_rate(ports["SSL"], certs.ca, a.seconds, a.clients, False)
            sasl = handshake_rate(ports["SASL_SSL"], certs.ca, a.seconds, a.clients, True)
            print("new connections/s (%d Python client threads, each connection answers one "
                  "ApiVersions): PLAINTEXT %.0f, SSL %.0f, SASL_SSL+SCRAM-SHA-512 %.0f"
                  % (a.clients, plain, tls, sasl))
            print("TLS handshakes/s (openssl s_time -new, one C client): %.0f"
                  % s_time_rate(ports["SSL"], certs.ca, a.seconds))
            for version in ("tls1_3", "tls1_2"):
                print("full TLS handshakes/s, %s (%d openssl s_time -new at once): %.0f"
                      % (version, a.tls_procs,
                         s_time_parallel(ports["SSL"], certs.ca, a.seconds, version,
                                         a.tls_procs)))
            print("after: " + loadavg())
    finally:
        certs.cleanup()


if __name__ == "__main__":
    main()
