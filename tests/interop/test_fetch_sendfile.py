"""Fetched records go from the page cache to the socket with sendfile(2): strace (attached
to every broker thread, tracing only sendfile) watches while kcat consumes ~20 MB; the
sendfile calls must move at least half of the bytes in the log, and the consumer gets every
message."""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import SLOW, Broker, check, comment, run_tests, tail, test, wait_until  # noqa: E402

N = 20000
SIZE = 1000


def log_bytes(data_dir, topic):
    d = os.path.join(data_dir, topic + "-0")
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".log"))


@test
def test_fetch_uses_sendfile():
    """20,000 x 1 kB messages produced with kcat; strace -f -e trace=sendfile on the broker
    while kcat -C -e reads them: sendfile calls are seen and move >= 50% of the log bytes."""
    with Broker({"num.partitions": 1}) as b:
        inp = os.path.join(b.dir, "in.txt")
        with open(inp, "w") as f:
            for i in range(N):
                f.write("%08d%s\n" % (i, "x" * (SIZE - 8)))
        p = subprocess.run(["kcat", "-b", b.bootstrap, "-t", "sf", "-P", "-l", inp],
                           capture_output=True, timeout=120 * SLOW)
        check(p.returncode == 0, "kcat -P: %s" % p.stderr[-2000:])
        total = log_bytes(b.data_dir, "sf")
        check(total >= N * SIZE, "log holds %d bytes" % total)
        trace = os.path.join(b.dir, "strace.out")
        errf = os.path.join(b.dir, "strace.err")
        nthreads = len(os.listdir("/proc/%d/task" % b.pid))
        with open(errf, "w") as ef:
            st = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=sendfile", "-o", trace,
                                   "-p", str(b.pid)], stdout=subprocess.DEVNULL, stderr=ef,
                                  start_new_session=True)
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
                c = subprocess.run(["kcat", "-b", b.bootstrap, "-t", "sf", "-C", "-e", "-q",
                                    "-o", "beginning"], stdout=f, stderr=subprocess.PIPE,
                                   timeout=300 * SLOW)
            check(c.returncode == 0, "kcat -C: %s" % c.stderr[-2000:])
            with open(out) as f:
                lines = f.read().splitlines()
            check(len(lines) == N and lines[0][:8] == "00000000" and
                  lines[-1][:8] == "%08d" % (N - 1), "consumed %d messages" % len(lines))
        finally:
            if st.poll() is None:
                st.send_signal(signal.SIGINT)  # strace detaches cleanly on SIGINT
                try:
                    st.wait(20 * SLOW)
                except subprocess.TimeoutExpired:
                    os.killpg(st.pid, signal.SIGKILL)
                    st.wait()
        check(b.running(), "broker died under strace")
        calls = 0
        moved = 0
        with open(trace) as f:
            for line in f:
                m = re.search(r"sendfile(?:64)?\(.*\)\s+=\s+(-?\d+)", line)
                if m:
                    calls += 1
                    moved += max(0, int(m.group(1)))
        comment("sendfile calls=%d bytes=%d log_bytes=%d" % (calls, moved, total))
        check(calls > 0, "no sendfile calls while a consumer fetched %d bytes" % total)
        check(moved >= total // 2, "sendfile moved %d of %d log bytes" % (moved, total))


if __name__ == "__main__":
    run_tests()
