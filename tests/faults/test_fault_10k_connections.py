"""10,000 idle connections: the broker holds them (each process needs one descriptor per
connection, so the test raises RLIMIT_NOFILE; the broker inherits it), a normal client still
gets metadata (confluent-kafka) and the broker's RSS stays below a bound printed as
"# rss_kb=... bound_kb=...".

The hard limit is raised as well when the process may (root); if it stays below what 10,000
connections plus slack need, the test holds as many as fit and says so in a "# " line.
"""
import os
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "interop"))
from harness import (ASAN, HOST, SLOW, Broker, check, check_broker_healthy,  # noqa: E402
                     comment, run_tests, test)

WANT = 10000
SLACK_FDS = 500
PER_CONN_KB = 64 if ASAN else 16
FIXED_KB = (256 if ASAN else 64) * 1024


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))  # needs CAP_SYS_RESOURCE
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def metadata_ok(bootstrap):
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap})
    md = a.list_topics(timeout=15 * SLOW)
    return len(md.brokers) == 1


@test
def test_10k_idle_connections_metadata_and_rss():
    soft, hard = raise_nofile(WANT + SLACK_FDS + 1000)
    n = min(WANT, soft - SLACK_FDS)
    if n < WANT:
        comment("RLIMIT_NOFILE soft=%d hard=%d: holding %d idle connections instead of %d"
                % (soft, hard, n, WANT))
    else:
        comment("RLIMIT_NOFILE soft=%d hard=%d (test and broker each hold one fd per "
                "connection)" % (soft, hard))
    with Broker({"max.connections": 100000, "max.connections.per.ip": 0}) as b:
        check_broker_healthy(b, "at start")
        check(metadata_ok(b.bootstrap), "no metadata before the idle connections")
        time.sleep(0.2)
        rss0, fds0 = b.rss_kb(), fd_count(b.pid)
        socks = []
        t0 = time.monotonic()
        # Spread over several loopback source addresses (the ephemeral port range of one
        # address toward one port is enough too, but this keeps TIME_WAIT reuse out of it).
        srcs = ["127.0.0.%d" % i for i in range(2, 12)]
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.bind((srcs[i % len(srcs)], 0))
                s.settimeout(10 * SLOW)
                s.connect((HOST, b.port))
                socks.append(s)
            t_open = time.monotonic() - t0
            deadline = time.monotonic() + 20 * SLOW
            while fd_count(b.pid) < fds0 + n and time.monotonic() < deadline:
                time.sleep(0.1)
            fds1 = fd_count(b.pid)
            check(fds1 >= fds0 + n, "broker holds %d fds, expected >= %d (%d idle connections)"
                  % (fds1, fds0 + n, n))
            t1 = time.monotonic()
            check(metadata_ok(b.bootstrap), "confluent-kafka got no metadata while %d "
                  "connections are idle" % n)
            t_md = time.monotonic() - t1
            check_broker_healthy(b, "while %d connections are idle" % n)
            rss1 = b.rss_kb()
            bound = rss0 + n * PER_CONN_KB + FIXED_KB
            comment("rss_kb=%d bound_kb=%d idle_connections=%d (rss before %d kB, %.1f kB per "
                    "connection; broker fds %d; opened in %.1fs; metadata in %.2fs)"
                    % (rss1, bound, n, rss0, (rss1 - rss0) / float(n), fds1, t_open, t_md))
            check(rss1 <= bound, "broker RSS %d kB exceeds the bound %d kB with %d idle "
                  "connections" % (rss1, bound, n))
        finally:
            for s in socks:
                s.close()
        deadline = time.monotonic() + 20 * SLOW
        while fd_count(b.pid) > fds0 + 5 and time.monotonic() < deadline:
            time.sleep(0.1)
        check(fd_count(b.pid) <= fds0 + 5, "broker holds %d fds after the idle connections "
              "closed (%d before)" % (fd_count(b.pid), fds0))
        check(metadata_ok(b.bootstrap), "no metadata after the idle connections closed")


if __name__ == "__main__":
    run_tests()
