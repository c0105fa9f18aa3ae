#!/usr/bin/python3
"""Web console costs (issue 21's closing note), on demand, not part of make test.

1. Topic list with many topics: one broker with console.listener, --topics topics of one
   partition (default 1000) created with an AdminClient; then the median wall time of
   GET /api/topics (--rounds requests, default 5) and its size, and the time headless Chromium
   (one browser, driven over the DevTools pipe, cache warm) takes from navigating to /topics
   until the page's script has drawn all the rows, next to /groups with no groups.
2. Memory of the console on an idle broker: VmRSS of a fresh, empty broker with
   console.listener on and of one with it off, each after --idle seconds (default 15), and of
   the console broker again after the 1000-topic list was served.

  GREGOR_BIN=build/gregor /usr/bin/python3 bench/console.py [--topics 1000] [--rounds 5]
"""
import argparse
import fcntl
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "interop"))
from harness import Broker, wait_until  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def console_url(b):
    def found():
        m = re.search(r"web console on (http://[^/\s]+)/", open(b.log_path).read())
        return m.group(1) if m else None
    wait_until(lambda: found() is not None, 10, what="the console start-up line")
    return found()


def create_topics(bootstrap, n):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = ["bench-topic-%04d" % i for i in range(n)]
    for i in range(0, n, 100):
        fs = admin.create_topics([NewTopic(t, 1, 1) for t in names[i:i + 100]])
        for f in fs.values():
            f.result(timeout=60)


def time_api(base, rounds):
    times, size = [], 0
    for _ in range(rounds):
        t0 = time.monotonic()
        with urllib.request.urlopen(base + "/api/topics", timeout=60) as r:
            size = len(r.read())
        times.append(time.monotonic() - t0)
    return statistics.median(times), min(times), size


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe (DevTools protocol as NUL-ended
    JSON on fds 3 and 4), so a page is timed from navigation until its script marks it drawn,
    without a WebSocket library and without headless virtual time."""

    def __init__(self, workdir):
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()

        def child_fds():  # the pipe ends onto 3 and 4, via fds above both
            hi_r, hi_w = fcntl.fcntl(to_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_w, fcntl.F_DUPFD, 10)
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--user-data-dir=" + os.path.join(workdir, "profile"), "about:blank"],
            close_fds=False, preexec_fn=child_fds, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self.buf, self.next_id = b"", 0
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget",
                                 {"targetId": target, "flatten": True})["sessionId"]

    def call(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                chunk = os.read(self.from_r, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\0", 1)
            r = json.loads(line)
            if r.get("id") == self.next_id:
                return r.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                      self.session)
        return r.get("result", {}).get("value")

    def load(self, url, ready_expr, timeout=60):
        """Wall seconds from navigation until ready_expr is true, and the page's own
        data-ready-ms (performance.now at drawn)."""
        t0 = time.monotonic()
        self.call("Page.navigate", {"url": url}, self.session)
        while time.monotonic() - t0 < timeout:
            if self.eval(ready_expr):
                return time.monotonic() - t0, self.eval("document.body.dataset.readyMs")
            time.sleep(0.005)
        raise RuntimeError("%s not ready within %d s: %r" % (url, timeout, self.eval(
            "location.href + ' ready=' + document.body.dataset.ready + ' ' + "
            "document.getElementById('error').textContent")))

    def close(self):
        self.proc.kill()
        self.proc.wait()
        os.close(self.to_w)
        os.close(self.from_r)


def dump_dom(url, workdir):
    """Fallback: one headless Chromium process with --dump-dom; (wall seconds incl. browser
    start, the page's data-ready-ms or None when the dump came before the page was drawn)."""
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--user-data-dir=" + os.path.join(workdir, "dump-profile"),
            "--virtual-time-budget=10000", "--dump-dom", url]
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    m = re.search(r'data-ready-ms="(\d+)"', p.stdout.decode("utf-8", "replace"))
    return time.monotonic() - t0, int(m.group(1)) if m else None


def time_pages(base, topics, rounds):
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:
        c = Chromium(d)
        try:
            last = "bench-topic-%04d" % (topics - 1)
            ready = ("document.body && document.body.dataset.ready === 'true' && "
                     "document.body.textContent.includes('%s')" % last)
            c.load(base + "/topics", ready)  # warm: cache the script and stylesheet
            runs = [c.load(base + "/topics", ready) for _ in range(rounds)]
            empty = [c.load(base + "/groups", "document.body && document.body.dataset.ready "
                            "=== 'true'") for _ in range(rounds)]
        finally:
            c.close()
    return runs, empty


def idle_rss(props, idle):
    with Broker(props, name="bench-rss") as b:
        time.sleep(idle)
        return rss_kib(b.pid)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--topics", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--idle", type=float, default=15)
    a = ap.parse_args()

    on = idle_rss({"console.listener": "http://:0"}, a.idle)
    off = idle_rss({}, a.idle)
    print("idle RSS, console on: %d KiB, off: %d KiB, difference %d KiB" % (on, off, on - off))

    b = Broker({"console.listener": "http://:0"}, name="bench-console")
    b.start()
    try:
        base = console_url(b)
        t0 = time.monotonic()
        create_topics(b.bootstrap, a.topics)
        print("created %d topics in %.1f s" % (a.topics, time.monotonic() - t0))
        med, best, size = time_api(base, a.rounds)
        print("GET /api/topics with %d topics: median %.1f ms, best %.1f ms, %d bytes"
              % (a.topics, med * 1000, best * 1000, size))
        if os.path.exists(CHROMIUM):
            try:
                runs, small = time_pages(base, a.topics, a.rounds)
            except RuntimeError as e:
                # Seen on this machine under load: Chromium loads app.js but never runs it
                # with 1,000 topics (not understood yet); the API numbers above still hold.
                print("headless Chromium timing over the DevTools pipe failed: %s" % e)
                runs = None
                with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as d:
                    static = dump_dom(base + "/assets/style.css", d)[0]
                    dumps = [dump_dom(base + "/topics", d) for _ in range(a.rounds)]
                print("fallback, one Chromium --dump-dom process per load: /topics wall %s ms "
                      "(a static file: %.0f ms), page's own navigation-to-drawn %s ms (virtual "
                      "time; '-' = dumped before drawn)"
                      % ("/".join("%.0f" % (t * 1000) for t, _ in dumps), static * 1000,
                         "/".join("-" if ms is None else str(ms) for _, ms in dumps)))
        if os.path.exists(CHROMIUM) and runs:
            print("headless Chromium /topics with %d topics, navigation to drawn table: median "
                  "%.0f ms wall (page's own performance.now: %s ms); /groups (no groups) for "
                  "comparison: median %.0f ms" % (
                      a.topics, statistics.median(t for t, _ in runs) * 1000,
                      "/".join(str(m) for _, m in runs),
                      statistics.median(t for t, _ in small) * 1000))
        elif not os.path.exists(CHROMIUM):
            print("no %s: the browser timing is skipped" % CHROMIUM)
        print("RSS of the console broker after serving the list: %d KiB" % rss_kib(b.pid))
    finally:
        b.stop(timeout=120)  # stopping 1,000 partitions takes more than the usual 10 s


if __name__ == "__main__":
    main()
