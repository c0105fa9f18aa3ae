"""Resource limits: many idle connections, connection churn, a slow reader, and the
max.connections / max.connections.per.ip limits. Broker RSS must stay bounded under each load
(printed as "# rss_kb=..." lines) and a fresh client must still be served.

The test raises its own soft RLIMIT_NOFILE (the broker inherits it) to hold IDLE connections.
"""
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
from harness import (ASAN, HOST, SLOW, Broker, ConnectionClosed, KafkaRaw, check,  # noqa: E402
                     check_broker_healthy, comment, metadata_body, api_versions_body,
                     request_frame, run_tests, test)
import kafka_records as kr  # noqa: E402

IDLE = 2000
# Per-connection cost allowed (kB) and fixed slack; ASan's quarantine and shadow need more.
PER_CONN_KB = 64 if ASAN else 32
SLACK_KB = (256 if ASAN else 48) * 1024


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def api_versions_ok(sock, timeout=3.0):
    """Sends ApiVersions v0 on a raw socket; True if a response arrives, False if closed or
    no answer within timeout."""
    try:
        sock.settimeout(timeout * SLOW)
        sock.sendall(request_frame(18, 0, 1, api_versions_body(0)))
        hdr = b""
        while len(hdr) < 4:
            chunk = sock.recv(4 - len(hdr))
            if not chunk:
                return False
            hdr += chunk
        return True
    except (OSError, socket.timeout):
        return False


def connect_from(src_ip, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src_ip, 0))
    s.connect((HOST, port))
    return s


@test
def test_idle_connections_and_churn_keep_rss_bounded():
    limit = raise_nofile(IDLE + 1000)
    n_idle = min(IDLE, limit - 200)
    with Broker({"max.connections": 100000, "max.connections.per.ip": 0}) as b:
        check_broker_healthy(b, "at start")
        rss0, fds0 = b.rss_kb(), fd_count(b.pid)
        socks = []
        for i in range(n_idle):
            s = socket.create_connection((HOST, b.port), timeout=10 * SLOW)
            if i % 10 == 0:  # some of them have spoken once
                check(api_versions_ok(s), "idle connection %d got no ApiVersions answer" % i)
            socks.append(s)
        wait = time.monotonic() + 10 * SLOW
        while fd_count(b.pid) < fds0 + n_idle and time.monotonic() < wait:
            time.sleep(0.1)
        rss1 = b.rss_kb()
        comment("rss_kb=%d idle_connections=%d (before %d, broker fds %d)"
                % (rss1, n_idle, rss0, fd_count(b.pid)))
        check_broker_healthy(b, "while %d connections are idle" % n_idle)
        check(rss1 - rss0 <= n_idle * PER_CONN_KB + SLACK_KB,
              "RSS grew %d kB for %d idle connections" % (rss1 - rss0, n_idle))
        for s in socks:
            s.close()
        wait_fds = time.monotonic() + 15 * SLOW
        while fd_count(b.pid) > fds0 + 5 and time.monotonic() < wait_fds:
            time.sleep(0.1)
        check(fd_count(b.pid) <= fds0 + 5, "broker holds %d fds after the idle connections "
              "closed (%d before)" % (fd_count(b.pid), fds0))

        # Churn: open, ask, close, as fast as one client can, for a few seconds.
        t_end = time.monotonic() + 8 * SLOW
        n = 0
        while time.monotonic() < t_end:
            with KafkaRaw(b) as c:
                c.api_versions(3 if n % 2 else 0)
                if n % 5 == 0:
                    c.metadata(1, topics=None)
            n += 1
        time.sleep(0.5)
        rss2, fds2 = b.rss_kb(), fd_count(b.pid)
        comment("rss_kb=%d after churn of %d connections (broker fds %d, before %d)"
                % (rss2, n, fds2, fds0))
        check(fds2 <= fds0 + 5, "fd leak: %d fds after churn, %d before" % (fds2, fds0))
        check(rss2 - rss0 <= SLACK_KB + n_idle * PER_CONN_KB,
              "RSS grew %d kB over churn" % (rss2 - rss0))
        check_broker_healthy(b, "after churn")


@test
def test_slow_reader_is_bounded():
    with Broker({"num.partitions": 1}) as b:
        with KafkaRaw(b) as c:
            kr.ensure_topic(c, "slow", partitions=1)
            batch = kr.record_batch([(None, b"x" * 1000) for _ in range(100)])
            for _ in range(50):  # ~5 MB
                kr.produce(c, "slow", 0, batch, acks=1)
        rss0 = b.rss_kb()
        # Pipeline requests whose responses total ~GBs and never read them.
        s = socket.create_connection((HOST, b.port), timeout=10)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        fetch = request_frame(1, 11, 7, kr.fetch_body({"slow": {0: 0}}, version=11,
                                                       partition_max_bytes=8 << 20))
        meta = request_frame(3, 1, 8, metadata_body(1, None))
        s.setblocking(False)
        sent = 0
        t_end = time.monotonic() + 6 * SLOW
        pending = b""
        while time.monotonic() < t_end and sent < 200000:
            if not pending:
                pending = fetch if sent % 2 else meta
            try:
                k = s.send(pending)
                pending = pending[k:]
                if not pending:
                    sent += 1
            except BlockingIOError:
                time.sleep(0.01)  # the broker stopped reading us: backpressure works
            except OSError:
                break
        rss1 = b.rss_kb()
        comment("rss_kb=%d slow reader: %d requests pipelined unread (before %d)"
                % (rss1, sent, rss0))
        check_broker_healthy(b, "while a slow reader is connected")
        check(rss1 - rss0 <= SLACK_KB + 64 * 1024,
              "RSS grew %d kB for a slow reader" % (rss1 - rss0))
        s.close()
        time.sleep(0.5)
        check_broker_healthy(b, "after the slow reader left")


@test
def test_max_connections_per_ip_and_total_enforced():
    per_ip, total = 20, 50
    with Broker({"max.connections.per.ip": per_ip, "max.connections": total}) as b:
        # Per IP: 30 from 127.0.0.2, only per_ip served.
        socks = [connect_from("127.0.0.2", b.port) for _ in range(per_ip + 10)]
        ok = sum(api_versions_ok(s, 2.0) for s in socks)
        comment("per-ip: %d of %d connections from 127.0.0.2 served (limit %d), rss_kb=%d"
                % (ok, len(socks), per_ip, b.rss_kb()))
        check(ok == per_ip, "%d connections from one IP served, max.connections.per.ip=%d"
              % (ok, per_ip))
        # Another address is not affected by the first one's limit.
        other = connect_from("127.0.0.3", b.port)
        check(api_versions_ok(other), "127.0.0.3 refused while 127.0.0.2 is at its limit")
        other.close()
        for s in socks:
            s.close()
        time.sleep(0.5 * SLOW)
        again = connect_from("127.0.0.2", b.port)
        check(api_versions_ok(again), "127.0.0.2 still refused after its connections closed")
        again.close()
        time.sleep(0.3 * SLOW)

        # Total: 15 from each of 4 addresses = 60 > total.
        socks = []
        for ip in ("127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"):
            socks += [connect_from(ip, b.port) for _ in range(15)]
        ok = sum(api_versions_ok(s, 2.0) for s in socks)
        comment("total: %d of %d connections served (max.connections=%d), rss_kb=%d"
                % (ok, len(socks), total, b.rss_kb()))
        check(ok == total, "%d connections served, max.connections=%d" % (ok, total))
        for s in socks:
            s.close()
        time.sleep(0.5 * SLOW)
        check_broker_healthy(b, "after the limits were hit")


if __name__ == "__main__":
    run_tests()
