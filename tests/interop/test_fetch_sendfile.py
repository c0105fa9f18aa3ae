"""How fetched records leave the broker: strace (attached to every broker thread, tracing
sendfile and pread64) watches while kcat consumes ~20 MB over 127.0.0.1 from 3 partitions, and
the consumer must get every message byte for byte.

- fetch.local.copy.enable=false: sendfile(2) from the page cache to the socket, as for any
  remote client; the sendfile calls move at least half of the log's bytes.
- default (true): kcat is on this host, so the records go by pread + write through the
  worker's 256 KiB buffer, which over loopback is faster than sendfile (bench/fetch_vs_iperf.sh);
  the preads move at least half of the log's bytes, no sendfile is made, and the metric
  gregor_network_copied_bytes_total counts them.

What is tried: the two send paths for the same consumer."""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, check, comment, free_port, metric,  # noqa: E402
                     metrics_port, run_tests, tail, test, wait_until)

N = 20000
PARTITIONS = 3  # a fetch response carries several file ranges
SIZE = 1000


def log_bytes(data_dir, topic):
    total = 0
    for p in range(PARTITIONS):
        d = os.path.join(data_dir, "%s-%d" % (topic, p))
        total += sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
                     if f.endswith(".log"))
    return total


def syscall_bytes(trace, name):
    """(calls, bytes moved) of the successful name() calls in an strace -o file."""
    calls = moved = 0
    with open(trace) as f:
        for line in f:
            m = re.search(name + r"\(.*\)\s+=\s+(-?\d+)", line)
            if m:
                calls += 1
                moved += max(0, int(m.group(1)))
    return calls, moved


def consume_under_strace(props, host=None):
    """Produces N records with kcat into a broker with props, consumes them with kcat (through
    host, the broker's advertised address, when given) while strace traces sendfile and
    pread64 in the broker; returns (log bytes, strace output path,
    gregor_network_copied_bytes_total after the consume)."""
    with Broker(dict({"num.partitions": PARTITIONS, "metrics.listener": "http://%s:0" % HOST},
                     **props)) as b:
        bootstrap = "%s:%d" % (host, b.port) if host else b.bootstrap
        inp = os.path.join(b.dir, "in.txt")
        with open(inp, "w") as f:
            for i in range(N):
                f.write("%08d%s\n" % (i, chr(97 + i % 26) * (SIZE - 8)))
        p = subprocess.run(["kcat", "-b", bootstrap, "-t", "sf", "-P", "-l", inp],
                           capture_output=True, timeout=120 * SLOW)
        check(p.returncode == 0, "kcat -P: %s" % p.stderr[-2000:])
        total = log_bytes(b.data_dir, "sf")
        check(total >= N * SIZE, "log holds %d bytes" % total)
        trace = os.path.join(b.dir, "strace.out")
        errf = os.path.join(b.dir, "strace.err")
        nthreads = len(os.listdir("/proc/%d/task" % b.pid))
        with open(errf, "w") as ef:
            st = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=sendfile,pread64", "-o",
                                   trace, "-p", str(b.pid)], stdout=subprocess.DEVNULL,
                                  stderr=ef, start_new_session=True)
        try:
            # Without -qq strace would say "attached"; with it, poll the tracer status of
            # every broker thread instead.
            def attached():
                tids = os.listdir("/proc/%d/task" % b.pid)
                for t in tids:
                    with open("/proc/%d/task/%s/status" % (b.pid, t)) as f:
                        tp = [l for l in f if l.startswith("TracerPid:")]
                    if not tp or int(tp[0].split()[1]) != st.pid:
                        return False
                return True
            wait_until(attached, 20 * SLOW, 0.05, "strace to attach to %d broker threads; "
                       "strace stderr: %s" % (nthreads, tail(errf)))
            out = os.path.join(b.dir, "out.txt")
            with open(out, "wb") as f:
                c = subprocess.run(["kcat", "-b", bootstrap, "-t", "sf", "-C", "-e", "-q",
                                    "-o", "beginning"], stdout=f, stderr=subprocess.PIPE,
                                   timeout=300 * SLOW)
            check(c.returncode == 0, "kcat -C: %s" % c.stderr[-2000:])
            with open(out, "rb") as f, open(inp, "rb") as g:
                got, want = f.read(), g.read()
            # partitions interleave: the same lines, each exactly once
            check(sorted(got.splitlines()) == sorted(want.splitlines()),
                  "consumed %d bytes, %d lines; produced %d bytes"
                  % (len(got), got.count(b"\n"), len(want)))
        finally:
            if st.poll() is None:
                st.send_signal(signal.SIGINT)  # strace detaches cleanly on SIGINT
                try:
                    st.wait(20 * SLOW)
                except subprocess.TimeoutExpired:
                    os.killpg(st.pid, signal.SIGKILL)
                    st.wait()
        check(b.running(), "broker died under strace")
        return total, trace, metric(metrics_port(b), "gregor_network_copied_bytes_total")


@test
def test_fetch_uses_sendfile_when_local_copy_is_off():
    """fetch.local.copy.enable=false: kcat -C reads 20,000 x 1 kB messages; sendfile calls
    are seen and move >= 50% of the log bytes, and nothing is counted as copied."""
    total, trace, copied = consume_under_strace({"fetch.local.copy.enable": "false"})
    calls, moved = syscall_bytes(trace, "sendfile(?:64)?")
    comment("sendfile calls=%d bytes=%d log_bytes=%d" % (calls, moved, total))
    check(calls > 0, "no sendfile calls while a consumer fetched %d bytes" % total)
    check(moved >= total // 2, "sendfile moved %d of %d log bytes" % (moved, total))
    check(copied == 0, "copied bytes counted with the copy path off")


def own_global_ipv4():
    """A non-loopback IPv4 address of this host, or None."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    return m.group(1) if m else None


@test
def test_fetch_to_a_client_on_the_hosts_own_address_copies_too():
    """kcat connects to the broker through the host's own non-loopback address (the peer
    address is then the socket's own, and the bytes still go over the loopback device): no
    sendfile call, and the copy counter counts >= 50% of the log bytes. Skipped (a comment)
    on a host with no such address."""
    ip = own_global_ipv4()
    if ip is None:
        comment("no non-loopback IPv4 address on this host: nothing to try")
        return
    port = free_port()
    total, trace, copied = consume_under_strace(
        {"listeners": "PLAINTEXT://0.0.0.0:%d" % port,
         "advertised.listeners": "PLAINTEXT://%s:%d" % (ip, port)}, host=ip)
    sf_calls, _ = syscall_bytes(trace, "sendfile(?:64)?")
    comment("via %s: copied=%d log_bytes=%d sendfile calls=%d" % (ip, copied, total, sf_calls))
    check(sf_calls == 0, "%d sendfile calls to a client on %s" % (sf_calls, ip))
    check(copied >= total // 2, "copied metric %d of %d log bytes" % (copied, total))


@test
def test_fetch_to_a_local_client_copies_through_a_buffer():
    """Default: kcat -C on 127.0.0.1 reads 20,000 x 1 kB messages; no sendfile call, the
    preads (at most 256 KiB each) move >= 50% of the log bytes, and
    gregor_network_copied_bytes_total counts at least that many."""
    total, trace, copied = consume_under_strace({})
    sf_calls, _ = syscall_bytes(trace, "sendfile(?:64)?")
    calls, moved = syscall_bytes(trace, "pread64")
    comment("pread calls=%d bytes=%d copied=%d log_bytes=%d sendfile calls=%d"
            % (calls, moved, copied, total, sf_calls))
    check(sf_calls == 0, "%d sendfile calls to a client on 127.0.0.1" % sf_calls)
    check(moved >= total // 2, "pread moved %d of %d log bytes" % (moved, total))
    check(copied >= total // 2, "copied metric %d of %d log bytes" % (copied, total))


if __name__ == "__main__":
    run_tests()
