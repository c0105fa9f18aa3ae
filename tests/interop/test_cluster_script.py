"""scripts/cluster.sh, what `make cluster` runs (issue 13): three nodes form one cluster,
every output line carries its node's "[node-N] " prefix, and SIGINT (Ctrl-C) stops all
three cleanly. Run on free ports and a temporary data directory (the script's
GREGOR_CLUSTER_* variables) so it does not collide with a developer's cluster.
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (GREGOR_BIN, HOST, REPO_ROOT, SLOW, KafkaRaw, check, comment,  # noqa: E402
                     fail, poll, run_tests, test)

SCRIPT = os.path.join(REPO_ROOT, "scripts", "cluster.sh")


def node_pids(data):
    """Pids of gregor processes whose command line names this data directory."""
    out = subprocess.run(["pgrep", "-f", "serve .*log.dirs=%s/node-" % data],
                         capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def consecutive_free_ports(n, avoid=()):
    """The first of n consecutive loopback ports that are all free right now."""
    rnd = random.Random(os.getpid() ^ int(time.time()))
    for _ in range(200):
        base = rnd.randrange(20000, 30000)
        if any(base + i in avoid for i in range(n)):
            continue
        socks = []
        try:
            for i in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind((HOST, base + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    fail("found no %d consecutive free ports" % n)


@test
def test_cluster_script_starts_three_and_ctrl_c_stops_all():
    """cluster.sh with free ports: each node's client port answers Metadata listing the
    three brokers at the script's ports (and a controller among them); data lands in
    <data>/node-1..3; every line the nodes print is prefixed [node-N] (all three prefixes
    seen); SIGINT to the script stops the three gregor processes within 20 s, each logging
    a clean stop, and the script exits."""
    if not os.path.exists(GREGOR_BIN):
        fail("broker binary %s does not exist (build it with make)" % GREGOR_BIN)
    client = consecutive_free_ports(3)
    raft = consecutive_free_ports(3, avoid=(client, client + 1, client + 2))
    root = tempfile.mkdtemp(prefix="gregor-cluster-sh-")
    data = os.path.join(root, "data")
    env = dict(os.environ, GREGOR_BIN=GREGOR_BIN, GREGOR_CLUSTER_DATA=data,
               GREGOR_CLUSTER_PORT=str(client), GREGOR_CLUSTER_RAFT_PORT=str(raft),
               GREGOR_CLUSTER_CONSOLE_PORT="0")
    proc = subprocess.Popen(["bash", SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(
        ln.decode("utf-8", "replace").rstrip("\n") for ln in proc.stdout), daemon=True)
    reader.start()
    try:
        want = sorted((HOST, client + i) for i in range(3))

        def formed():
            for i in range(3):
                with KafkaRaw(HOST, client + i, timeout=3) as c:
                    md = c.metadata(1, topics=[])
                got = sorted((b["host"], b["port"]) for b in md["brokers"])
                check(got == want, "node on port %d lists %r" % (client + i, got))
                check(md["controller_id"] in (1, 2, 3), "node on port %d names controller %d"
                      % (client + i, md["controller_id"]))
            return True
        try:
            poll(formed, 30, "the script's three nodes to form one cluster")
        except AssertionError as e:
            fail("%s\nscript output (last 30 lines):\n%s" % (e, "\n".join(lines[-30:])))
        for n in (1, 2, 3):
            check(os.path.exists(os.path.join(data, "node-%d" % n, "meta.properties")),
                  "no meta.properties in %s/node-%d" % (data, n))
        pids = node_pids(data)
        check(len(pids) == 3, "want 3 gregor processes for %s, found %r" % (data, pids))
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGINT)
        try:
            rc = proc.wait(20 * SLOW)
        except subprocess.TimeoutExpired:
            fail("cluster.sh still running 20 s after SIGINT; last output:\n%s"
                 % "\n".join(lines[-20:]))
        reader.join(5)
        comment("script exited %d %.1fs after SIGINT" % (rc, time.monotonic() - t0))
        left = node_pids(data)
        check(not left, "gregor processes left after the script exited: %r" % left)
        node_lines = [ln for ln in lines if not ln.startswith("[cluster]")]
        bad = [ln for ln in node_lines if not ln.startswith(("[node-1] ", "[node-2] ",
                                                             "[node-3] "))]
        check(not bad, "unprefixed output lines: %r" % bad[:5])
        for n in (1, 2, 3):
            mine = [ln for ln in lines if ln.startswith("[node-%d] " % n)]
            check(mine, "no output from node %d" % n)
            check(any("stopped" in ln for ln in mine[-5:]),
                  "node %d did not log a clean stop; its last lines:\n%s"
                  % (n, "\n".join(mine[-5:])))
    finally:
        if proc.poll() is None:  # a failed check: let the script stop its nodes, else kill
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20 * SLOW)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        for pid in node_pids(data):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    run_tests()
