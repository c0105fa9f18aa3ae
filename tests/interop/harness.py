"""Shared harness for Gregor's interop and fault tests (python3 standard library only).

What it owns:
  * Broker: a real `gregor serve` process on a free loopback port with a temporary data
    directory. Used as a context manager; it always ends its process and removes its
    directories, also when the test fails. stop() insists on a clean SIGTERM exit (status 0)
    and, under GREGOR_ASAN=1, on a sanitizer-clean log.
  * A tiny test registry: @test and run_tests(), printing "ok NAME" / "not ok NAME: reason"
    lines (the format tests/run.sh counts). A failure also prints the traceback and the tail
    of every broker log of that test as "# " comment lines.
  * KafkaRaw: a raw Kafka protocol client (framing, request headers v1/v2, primitive and
    compact encodings, a response Reader) for protocol and bad-input tests.
  * Cluster: n Broker processes forming one cluster (each broker + controller voter, a
    PLAINTEXT and a CONTROLLER port per node), with kill/stop/restart per node id and views
    of the cluster (wait_controller, partition_leaders, raw Metadata/DescribeCluster).

Environment: GREGOR_BIN (default <repo>/build/gregor), GREGOR_ASAN=1 when GREGOR_BIN is the
sanitizer build (timeouts are stretched and logs are checked for sanitizer reports).
"""
import atexit
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GREGOR_BIN = os.environ.get("GREGOR_BIN") or os.path.join(REPO_ROOT, "build", "gregor")
ASAN = os.environ.get("GREGOR_ASAN") == "1"
# Sanitizer builds start and run several times slower; a loaded 2-core CI box adds more.
SLOW = 3.0 if ASAN else 1.0
HOST = "127.0.0.1"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
                     "WARNING: ThreadSanitizer", "SUMMARY: ThreadSanitizer")


class TestFailure(AssertionError):
    pass


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it returns a truthy value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            fail("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# Test programs run side by side (tests/run.sh), and a port picked here stays unbound until
# the broker binds it: another program could be handed the same port meanwhile. So every port
# picked is also reserved for this process with a lock file (its pid inside), which other
# test processes skip; a file whose process is gone is taken over. Removed at exit.
PORT_LOCK_DIR = "/tmp/gregor-test-ports"
_RESERVED = []


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _reserve_port(port):
    """True when port is now reserved by this process (or already was)."""
    os.makedirs(PORT_LOCK_DIR, exist_ok=True)
    path = os.path.join(PORT_LOCK_DIR, str(port))
    if path in _RESERVED:
        return True
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read().strip() or "0")
            except (OSError, ValueError):
                owner = 0
            if owner == os.getpid():
                return True
            if owner and _pid_alive(owner):
                return False
            try:
                os.unlink(path)  # a finished program's: take it over
            except OSError:
                pass
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        if not _RESERVED:
            atexit.register(_release_ports)
        _RESERVED.append(path)
        return True
    return False


def _release_ports():
    for path in _RESERVED:
        try:
            os.unlink(path)
        except OSError:
            pass


def _ports_outside_ephemeral_range():
    """(first, last) of the ports below the kernel's ephemeral range (ip_local_port_range), from
    20000: the kernel never hands these out to an outgoing connection or a bind to port 0, so a
    port picked there stays free until the broker binds it (a port of the ephemeral range can
    become a client connection's local port meanwhile: CI hit that as "Address already in
    use"). None when that range is too small."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return (20000, low - 1) if low - 20000 >= 2000 else None


def _bind_free(port):
    """port (0: the kernel's pick) if it can be bound on HOST right now, else 0."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return s.getsockname()[1]
    except OSError:
        return 0
    finally:
        s.close()


def free_port():
    """A loopback port that was free a moment ago, below the ephemeral range when there is one
    (else the kernel's pick for port 0), reserved for this process against the other test
    programs."""
    span = _ports_outside_ephemeral_range()
    for _ in range(100):
        port = _bind_free(random.randint(*span) if span else 0)
        if port and _reserve_port(port):
            return port
    fail("no free loopback port could be reserved")


def rss_kb(pid):
    """VmRSS of a process in kB, or None if it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def sigstop_and_wait(pid, timeout=5.0):
    """SIGSTOP pid and wait until every one of its threads is stopped (kill() returns before
    the signal has reached threads running on another core)."""
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout

    def state(task):
        with open("/proc/%d/task/%s/stat" % (pid, task)) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    while True:
        try:
            if all(state(t) in ("T", "t") for t in os.listdir("/proc/%d/task" % pid)):
                return
        except OSError:
            pass  # a thread went away while listing
        if time.monotonic() > deadline:
            fail("process %d did not stop within %.1fs after SIGSTOP" % (pid, timeout))
        time.sleep(0.001)


def tail(path, n=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "<no log: %s>" % e
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-n:])


# Every Broker ever started in this process, so that failures can print logs and exit paths
# can kill stragglers.
_LIVE_BROKERS = set()
_TEST_BROKERS = []
_TMP_ROOT = None


def _tmp_root():
    global _TMP_ROOT
    if _TMP_ROOT is None:
        _TMP_ROOT = tempfile.mkdtemp(prefix="gregor-interop-")
    return _TMP_ROOT


def _cleanup_all():
    for b in list(_LIVE_BROKERS):
        b._hard_kill()
    if _TMP_ROOT is not None:
        shutil.rmtree(_TMP_ROOT, ignore_errors=True)


atexit.register(_cleanup_all)


def _on_term(signum, frame):
    # tests/run.sh uses `timeout`, which sends SIGTERM: leave no broker behind.
    _cleanup_all()
    os._exit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)


class Broker:
    """A gregor process. Usage:

        with Broker({"num.partitions": 3}) as b:
            b.bootstrap  -> "127.0.0.1:PORT"

    props: extra --override KEY=VALUE pairs (listeners and log.dirs are set by the harness
    unless given). A caller that supplies "listeners" (e.g. a PLAINTEXT and a CONTROLLER
    listener) gets the client port read from it: the first listener not named in
    controller.listener.names (default CONTROLLER); port= overrides that. The data directory
    survives restart() and kill(); it is removed when the context exits. env: extra
    environment variables for the process (e.g. LD_PRELOAD), on top of the test's own
    environment; None values remove a variable.
    """

    def __init__(self, props=None, name="broker", start_timeout=10.0, wait=True, env=None,
                 port=None):
        self.props = dict(props or {})
        self.env = dict(env or {})
        self.name = name
        self.start_timeout = start_timeout * SLOW
        self.wait_ready = wait
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=_tmp_root())
        self.data_dir = self.props.get("log.dirs") or os.path.join(self.dir, "data")
        self.port = port
        if self.port is None and "listeners" in self.props:
            self.port = client_port_of(self.props["listeners"],
                                       self.props.get("controller.listener.names"))
        self.proc = None
        self.log_path = None
        self.starts = 0
        self.startup_ms = None
        _TEST_BROKERS.append(self)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def host(self):
        return HOST

    @property
    def bootstrap(self):
        return "%s:%d" % (HOST, self.port)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self):
        props = {"listeners": "PLAINTEXT://%s:%d" % (HOST, self.port), "log.dirs": self.data_dir}
        props.update(self.props)
        argv = [GREGOR_BIN, "serve"]
        for k, v in props.items():
            argv += ["--override", "%s=%s" % (k, v)]
        return argv

    def start(self, wait=None):
        """Starts the process; with wait=True (default: the constructor's wait) returns once
        the port accepts connections. wait=False: call wait_accepting() later."""
        if wait is None:
            wait = self.wait_ready
        check(self.proc is None, "broker already running")
        if not os.path.exists(GREGOR_BIN):
            fail("broker binary %s does not exist (build it with make)" % GREGOR_BIN)
        attempts = 3 if self.port is None and "listeners" not in self.props else 1
        for attempt in range(attempts):
            if self.port is None or attempt > 0:
                self.port = free_port()
            self.starts += 1
            self.log_path = os.path.join(self.dir, "broker.%d.log" % self.starts)
            logf = open(self.log_path, "wb")
            t0 = time.monotonic()
            env = None
            if self.env:
                env = dict(os.environ)
                for k, v in self.env.items():
                    if v is None:
                        env.pop(k, None)
                    else:
                        env[k] = str(v)
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True,
                                         env=env)
            logf.close()
            _LIVE_BROKERS.add(self)
            self._t0 = t0
            if not wait:
                return self
            try:
                self._wait_accepting()
            except TestFailure:
                # Another process may have taken the port between free_port() and bind.
                if (self.proc.poll() is not None and attempt + 1 < attempts
                        and "in use" in tail(self.log_path, 5).lower()):
                    self._reap()
                    continue
                raise
            self.startup_ms = (time.monotonic() - t0) * 1000.0
            return self
        return self

    def wait_accepting(self):
        """After start(wait=False): returns once the port accepts connections (fails if the
        process exits first or start_timeout passes); sets startup_ms."""
        self._wait_accepting()
        self.startup_ms = (time.monotonic() - self._t0) * 1000.0
        return self

    def _ports_to_wait_for(self):
        ports = [self.port]
        listeners = self.props.get("listeners")
        if listeners:
            ports += client_ports_of(listeners, self.props.get("controller.listener.names"),
                                     hosts=(HOST, "0.0.0.0", ""))
        ports += list(getattr(self, "also_wait_ports", ()))
        return list(dict.fromkeys(p for p in ports if p))

    def _wait_accepting(self):
        deadline = time.monotonic() + self.start_timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                fail("%s exited with status %d before accepting connections; log tail:\n%s"
                     % (self.name, rc, tail(self.log_path)))
            # The client port, then every other client listener on this host and any port a
            # subclass names (listeners are bound one after another: the first may accept
            # before the last is bound).
            port = self.port
            try:
                for port in self._ports_to_wait_for():
                    s = socket.create_connection((HOST, port), timeout=1.0)
                    s.close()
                return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                fail("%s did not accept connections on port %d within %.1fs; log tail:\n%s"
                     % (self.name, port, self.start_timeout, tail(self.log_path)))
            time.sleep(0.01)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig):
        check(self.running(), "%s is not running" % self.name)
        self.proc.send_signal(sig)

    def stop(self, timeout=10.0, sig=signal.SIGTERM):
        """SIGTERM; asserts exit status 0 within timeout and (ASan) a clean log."""
        check(self.proc is not None, "%s is not running" % self.name)
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self._hard_kill()
            fail("%s did not exit within %.1fs of %s; log tail:\n%s"
                 % (self.name, timeout * SLOW, signal.Signals(sig).name, tail(self.log_path)))
        self._reap()
        self.check_log_clean()
        check(rc == 0, "%s exited with status %d after %s (expected 0); log tail:\n%s"
              % (self.name, rc, signal.Signals(sig).name, tail(self.log_path)))
        return rc

    def kill(self):
        """SIGKILL (crash simulation); the data directory stays."""
        if self.proc is not None:
            self._hard_kill()
            self.check_log_clean()

    def restart(self):
        """Clean stop (asserted) then start on the same port with the same data dir."""
        if self.running():
            self.stop()
        elif self.proc is not None:
            self._reap()
        return self.start()

    def _hard_kill(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self._reap()

    def _reap(self):
        _LIVE_BROKERS.discard(self)
        self.proc = None

    def log_text(self):
        out = []
        for i in range(1, self.starts + 1):
            p = os.path.join(self.dir, "broker.%d.log" % i)
            try:
                with open(p, "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
            except OSError:
                pass
        return "".join(out)

    def check_log_clean(self):
        """Under GREGOR_ASAN=1, fails if any sanitizer report is in the log."""
        if not ASAN or not self.log_path:
            return
        text = self.log_text()
        for m in SANITIZER_MARKERS:
            i = text.find(m)
            if i >= 0:
                fail("%s log has a sanitizer report (%r):\n%s"
                     % (self.name, m, text[max(0, i - 200):i + 3000]))

    def rss_kb(self):
        return rss_kb(self.pid) if self.running() else None

    def cleanup(self):
        self._hard_kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self._hard_kill()
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None and self.proc is not None:
                self.stop()
        finally:
            self._hard_kill()
            # Logs stay until the test's outcome is printed; run_tests removes the dir.
            if exc_type is None:
                shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)
        return False


def metrics_port(b):
    """The metrics listener's port: bound to port 0 by the broker, read from its log (a port
    picked in advance can be taken by a client's connection before the broker binds it)."""
    found = []

    def logged():
        m = re.search(r"serving /metrics and /health on http://[0-9.]+:(\d+)", b.log_text())
        found[:] = [int(m.group(1))] if m else []
        return bool(found)
    wait_until(logged, 10 * SLOW, what="metrics listener line")
    return found[0]


def metric(port, name):
    with urllib.request.urlopen("http://%s:%d/metrics" % (HOST, port), timeout=10 * SLOW) as r:
        m = re.search(r"^%s (\d+)$" % name, r.read().decode(), re.M)
    return int(m.group(1)) if m else None


def client_ports_of(listeners, controller_names=None, hosts=None):
    """The ports of every listener in a `listeners` value that is not a controller listener
    (controller.listener.names, default CONTROLLER), only those bound to one of `hosts` when
    given; listeners without a numeric port are left out."""
    ctl = set((controller_names or "CONTROLLER").split(","))
    ports = []
    for item in listeners.split(","):
        name, sep, rest = item.strip().partition("://")
        if not sep or name in ctl:
            continue
        host, _, port = rest.rpartition(":")
        if hosts is not None and host not in hosts:
            continue
        try:
            ports.append(int(port))
        except ValueError:
            pass
    return ports


def client_port_of(listeners, controller_names=None):
    """The port of the first listener in a `listeners` value that is not a controller
    listener (controller.listener.names, default CONTROLLER); None if there is none."""
    ctl = set((controller_names or "CONTROLLER").split(","))
    for item in listeners.split(","):
        name, sep, rest = item.strip().partition("://")
        if not sep or name in ctl:
            continue
        try:
            return int(rest.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return None
    return None


def start_expect_exit(props, timeout=10.0, port=None):
    """Runs gregor serve with the overrides and expects it to exit by itself.
    Returns (exit status, stderr+stdout text). Fails if it is still running after timeout.
    props may contain listeners/log.dirs; missing ones get harness defaults."""
    d = tempfile.mkdtemp(prefix="cfg-", dir=_tmp_root())
    try:
        p = dict(props)
        p.setdefault("listeners", "PLAINTEXT://%s:%d" % (HOST, port or free_port()))
        p.setdefault("log.dirs", os.path.join(d, "data"))
        argv = [GREGOR_BIN, "serve"]
        for k, v in p.items():
            argv += ["--override", "%s=%s" % (k, v)]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout * SLOW)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            timed_out = True
        if timed_out:
            fail("gregor %s was still running after %.1fs (expected it to refuse to start); "
                 "output:\n%s" % (" ".join(argv[1:]), timeout * SLOW,
                                  (out + err).decode("utf-8", "replace")[-3000:]))
        return proc.returncode, err.decode("utf-8", "replace"), out.decode("utf-8", "replace")
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- test registry -------------------------------------------------------------------------

_TESTS = []


def test(fn):
    """Registers a test function; its name (without a leading test_) is the reported name."""
    _TESTS.append(fn)
    return fn


def comment(msg):
    """A '# ' line: ignored by the runner, useful in logs (measurements, context)."""
    for line in str(msg).splitlines() or [""]:
        print("# " + line)
    sys.stdout.flush()


def test_name(fn):
    n = fn.__name__
    return n[5:] if n.startswith("test_") else n


def run_tests(tests=None):
    """Runs the registered tests (or only those named on the command line), prints one
    ok/not ok line each, exits 1 if any failed."""
    tests = tests if tests is not None else _TESTS
    wanted = [a for a in sys.argv[1:] if not a.startswith("-")]
    if wanted:
        tests = [t for t in tests if test_name(t) in wanted or t.__name__ in wanted]
    failed = 0
    for fn in tests:
        name = test_name(fn)
        del _TEST_BROKERS[:]
        t0 = time.monotonic()
        try:
            fn()
            for b in _TEST_BROKERS:
                b.check_log_clean()
            print("ok %s" % name)
        except BaseException as e:  # noqa: B036 - report everything, then continue
            if isinstance(e, KeyboardInterrupt):
                raise
            failed += 1
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            print("not ok %s: %s: %s" % (name, type(e).__name__, reason[:300]))
            comment(traceback.format_exc())
            for b in _TEST_BROKERS:
                comment("--- %s log (%s) tail ---" % (b.name, b.log_path))
                comment(tail(b.log_path, 40) if b.log_path else "<never started>")
        finally:
            for b in _TEST_BROKERS:
                b.cleanup()
            del _TEST_BROKERS[:]
        comment("%s took %.1fs" % (name, time.monotonic() - t0))
        sys.stdout.flush()
    sys.exit(1 if failed else 0)


# -- raw Kafka protocol --------------------------------------------------------------------

def i8(v):
    return struct.pack(">b", v)


def i16(v):
    return struct.pack(">h", v)


def i32(v):
    return struct.pack(">i", v)


def i64(v):
    return struct.pack(">q", v)


def u32(v):
    return struct.pack(">I", v)


def boolean(v):
    return b"\x01" if v else b"\x00"


def uvarint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def varint(v):
    """Zig-zag signed varint (record fields)."""
    return uvarint((v << 1) ^ (v >> 63))


def string(s):
    """Non-flexible nullable string: int16 length (-1 = null)."""
    if s is None:
        return i16(-1)
    b = s.encode() if isinstance(s, str) else s
    return i16(len(b)) + b


def nbytes(b):
    """Non-flexible nullable bytes: int32 length (-1 = null)."""
    if b is None:
        return i32(-1)
    return i32(len(b)) + b


def array(items, enc=None):
    """Non-flexible array: int32 count (-1 = null); enc encodes one item (default: bytes)."""
    if items is None:
        return i32(-1)
    return i32(len(items)) + b"".join(enc(x) if enc else x for x in items)


def cstring(s):
    """Compact nullable string: uvarint N+1 (0 = null)."""
    if s is None:
        return uvarint(0)
    b = s.encode() if isinstance(s, str) else s
    return uvarint(len(b) + 1) + b


def cbytes(b):
    if b is None:
        return uvarint(0)
    return uvarint(len(b) + 1) + b


def carray(items, enc=None):
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(enc(x) if enc else x for x in items)


TAGS_NONE = b"\x00"  # an empty tagged-field section


class Reader:
    """Decodes a response body; every read is bounds-checked (a short body fails the test)."""

    def __init__(self, data, pos=0):
        self.data = bytes(data)
        self.pos = pos

    def remaining(self):
        return len(self.data) - self.pos

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            fail("response truncated: need %d bytes at offset %d of %d"
                 % (n, self.pos, len(self.data)))
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def _u(self, fmt, n):
        return struct.unpack(fmt, self.take(n))[0]

    def int8(self):
        return self._u(">b", 1)

    def int16(self):
        return self._u(">h", 2)

    def int32(self):
        return self._u(">i", 4)

    def int64(self):
        return self._u(">q", 8)

    def uint32(self):
        return self._u(">I", 4)

    def boolean(self):
        return self.int8() != 0

    def uuid(self):
        return self.take(16)

    def uvarint(self):
        shift = 0
        v = 0
        while True:
            b = self.take(1)[0]
            v |= (b & 0x7F) << shift
            if not b & 0x80:
                return v
            shift += 7
            if shift > 63:
                fail("uvarint too long")

    def varint(self):
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def string(self):
        n = self.int16()
        return None if n == -1 else self.take(n).decode("utf-8")

    def bytes_(self):
        n = self.int32()
        return None if n == -1 else self.take(n)

    def cstring(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1).decode("utf-8")

    def cbytes(self):
        n = self.uvarint()
        return None if n == 0 else self.take(n - 1)

    def array(self, fn):
        n = self.int32()
        if n == -1:
            return None
        check(n <= self.remaining(), "array count %d exceeds remaining bytes" % n)
        return [fn(self) for _ in range(n)]

    def carray(self, fn):
        n = self.uvarint()
        if n == 0:
            return None
        check(n - 1 <= self.remaining(), "compact array count %d exceeds remaining bytes" % (n - 1))
        return [fn(self) for _ in range(n - 1)]

    def tagged_fields(self):
        """Reads a tagged-field section; returns {tag: raw bytes}."""
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            size = self.uvarint()
            out[tag] = self.take(size)
        return out

    def end(self):
        check(self.remaining() == 0, "%d unexpected trailing bytes in response" % self.remaining())


class ConnectionClosed(Exception):
    pass


# API keys used by the tests.
PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
API_VERSIONS, CREATE_TOPICS = 18, 19
# Versions from which each API uses flexible encoding (request header v2, response header v1).
FIRST_FLEXIBLE = {0: 9, 1: 12, 2: 6, 3: 9, 8: 8, 9: 6, 10: 3, 11: 6, 12: 4, 13: 4, 14: 4,
                  15: 5, 16: 3, 18: 3, 19: 5, 20: 4, 21: 2, 22: 2, 23: 4, 32: 4, 33: 2, 35: 2,
                  36: 2, 37: 2, 42: 2, 43: 2, 44: 1, 45: 0, 46: 0, 47: 0, 48: 1, 49: 1, 50: 0,
                  51: 0, 52: 0, 53: 1, 54: 1, 55: 0, 56: 0, 60: 0, 61: 0, 68: 0, 69: 0, 75: 0}


def is_flexible(api_key, version):
    first = FIRST_FLEXIBLE.get(api_key)
    return first is not None and version >= first


def request_header(api_key, version, correlation_id, client_id="gregor-test", flexible=None):
    """Request header v1 (v2 when flexible): ClientId always uses the int16 length."""
    if flexible is None:
        flexible = is_flexible(api_key, version)
    h = i16(api_key) + i16(version) + i32(correlation_id) + string(client_id)
    return h + (TAGS_NONE if flexible else b"")


def frame(payload):
    return i32(len(payload)) + payload


def request_frame(api_key, version, correlation_id, body, client_id="gregor-test",
                  flexible=None):
    return frame(request_header(api_key, version, correlation_id, client_id, flexible) + body)


# Request bodies.
def api_versions_body(version, software_name="gregor-test", software_version="1.0"):
    if version >= 3:
        return cstring(software_name) + cstring(software_version) + TAGS_NONE
    return b""


def metadata_body(version, topics=(), allow_auto_create=True, cluster_ops=False, topic_ops=False):
    """Metadata request body. topics=None asks for all topics (v1+); v0 has no null, so
    an empty list there means all topics. cluster_ops/topic_ops ask for KIP-430's authorized
    operations (v8-10 / v8+)."""
    flex = version >= 9
    if topics is None:
        check(version >= 1, "Metadata v0 cannot ask for null topics")
        out = uvarint(0) if flex else i32(-1)
    else:
        def enc_topic(t):
            b = b""
            if version >= 10:
                b += b"\x00" * 16  # TopicId: zero uuid, we ask by name
            b += cstring(t) if flex else string(t)
            return b + (TAGS_NONE if flex else b"")
        out = carray(list(topics), enc_topic) if flex else array(list(topics), enc_topic)
    if version >= 4:
        out += boolean(allow_auto_create)
    if 8 <= version <= 10:
        out += boolean(cluster_ops)  # IncludeClusterAuthorizedOperations
    if version >= 8:
        out += boolean(topic_ops)  # IncludeTopicAuthorizedOperations
    if flex:
        out += TAGS_NONE
    return out


# Response bodies.
def parse_api_versions(body, version):
    """ApiVersions response body -> dict(error_code, api_keys={key: (min, max)}, throttle_ms,
    tags). For error 35 the body is v0 whatever version was asked: pass version=0."""
    r = Reader(body)
    out = {"error_code": r.int16()}
    flex = version >= 3

    def entry(rr):
        k, lo, hi = rr.int16(), rr.int16(), rr.int16()
        if flex:
            rr.tagged_fields()
        return (k, lo, hi)

    entries = r.carray(entry) if flex else r.array(entry)
    check(entries is not None, "ApiVersions ApiKeys is null")
    keys = {}
    for k, lo, hi in entries:
        check(k not in keys, "api key %d listed twice in ApiVersions" % k)
        keys[k] = (lo, hi)
    out["api_keys"] = keys
    if version >= 1:
        out["throttle_ms"] = r.int32()
    if flex:
        out["tags"] = r.tagged_fields()
    r.end()
    return out


def parse_metadata(body, version):
    """Metadata response body -> dict."""
    r = Reader(body)
    flex = version >= 9
    s = r.cstring if flex else r.string
    arr = r.carray if flex else r.array
    out = {}
    if version >= 3:
        out["throttle_ms"] = r.int32()

    def broker(rr):
        b = {"node_id": rr.int32(), "host": s(), "port": rr.int32()}
        if version >= 1:
            b["rack"] = s()
        if flex:
            rr.tagged_fields()
        return b

    out["brokers"] = arr(broker)
    if version >= 2:
        out["cluster_id"] = s()
    if version >= 1:
        out["controller_id"] = r.int32()

    def int32s(rr):
        return arr(lambda x: x.int32())

    def partition(rr):
        p = {"error_code": rr.int16(), "partition": rr.int32(), "leader": rr.int32()}
        if version >= 7:
            p["leader_epoch"] = rr.int32()
        p["replicas"] = int32s(rr)
        p["isr"] = int32s(rr)
        if version >= 5:
            p["offline"] = int32s(rr)
        if flex:
            rr.tagged_fields()
        return p

    def topic(rr):
        t = {"error_code": rr.int16(), "name": s()}
        if version >= 10:
            t["topic_id"] = rr.uuid()
        if version >= 1:
            t["is_internal"] = rr.boolean()
        t["partitions"] = arr(partition)
        if version >= 8:
            t["authorized_ops"] = rr.int32()
        if flex:
            rr.tagged_fields()
        return t

    out["topics"] = arr(topic)
    if 8 <= version <= 10:
        out["cluster_authorized_ops"] = r.int32()
    if flex:
        out["tags"] = r.tagged_fields()
    r.end()
    return out


class KafkaRaw:
    """One TCP connection speaking raw Kafka frames.

    send_request() returns the correlation id; recv_response() reads one frame and splits
    off the response header (v0, or v1 for flexible versions except ApiVersions)."""

    def __init__(self, host_or_broker, port=None, timeout=10.0, client_id="gregor-test"):
        if isinstance(host_or_broker, Broker):
            host, port = HOST, host_or_broker.port
        else:
            host = host_or_broker
        self.timeout = timeout * SLOW
        self.client_id = client_id
        self.sock = socket.create_connection((host, port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_corr = 1
        self.pending = []  # (corr, api_key, version) in send order

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()
        return False

    def send_raw(self, data):
        self.sock.sendall(data)

    def encode_request(self, api_key, version, body, correlation_id=None, flexible=None):
        if correlation_id is None:
            correlation_id = self.next_corr
            self.next_corr += 1
        self.pending.append((correlation_id, api_key, version))
        return correlation_id, request_frame(api_key, version, correlation_id, body,
                                             self.client_id, flexible)

    def send_request(self, api_key, version, body, correlation_id=None, flexible=None):
        corr, data = self.encode_request(api_key, version, body, correlation_id, flexible)
        self.send_raw(data)
        return corr

    def _recv_exact(self, n, deadline):
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out reading %d bytes (got %d)" % (n, len(buf)))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(n - len(buf))
            except ConnectionResetError:
                raise ConnectionClosed("connection reset by broker")
            if not chunk:
                raise ConnectionClosed("connection closed by broker after %d of %d bytes"
                                       % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def read_frame(self, timeout=None):
        """One response frame's payload (without the size). Raises ConnectionClosed on EOF,
        socket.timeout on timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        (n,) = struct.unpack(">i", self._recv_exact(4, deadline))
        check(0 <= n <= 512 * 1024 * 1024, "bad response frame size %d" % n)
        return self._recv_exact(n, deadline)

    def recv_response(self, timeout=None):
        """Reads the next response; checks it answers the oldest pending request.
        Returns (correlation id, body bytes)."""
        payload = self.read_frame(timeout)
        check(self.pending, "response received with no request pending")
        corr, api_key, version = self.pending.pop(0)
        r = Reader(payload)
        got = r.int32()
        check(got == corr, "response correlation id %d, expected %d (api %d v%d)"
              % (got, corr, api_key, version))
        if api_key != API_VERSIONS and is_flexible(api_key, version):
            r.tagged_fields()
        return got, payload[r.pos:]

    def call(self, api_key, version, body, timeout=None, flexible=None):
        self.send_request(api_key, version, body, flexible=flexible)
        return self.recv_response(timeout)[1]

    def api_versions(self, version=3):
        """ApiVersions request; returns the parsed response."""
        body = self.call(API_VERSIONS, version, api_versions_body(version))
        if Reader(body).int16() == 35:
            # UNSUPPORTED_VERSION: the broker answers with a v0 body (KIP-511).
            return parse_api_versions(body, 0)
        return parse_api_versions(body, version)

    def metadata(self, version=1, topics=(), allow_auto_create=True):
        body = self.call(METADATA, version, metadata_body(version, topics, allow_auto_create))
        return parse_metadata(body, version)

    def wait_closed(self, timeout=None):
        """Waits until the broker closes the connection, discarding any bytes it sends.
        Returns True if closed (EOF or reset), False on timeout."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True


def check_broker_healthy(broker, what="after the previous test step"):
    """A fresh client gets correct ApiVersions and Metadata answers."""
    check(broker.running(), "broker process died %s; log tail:\n%s"
          % (what, tail(broker.log_path)))
    with KafkaRaw(broker) as c:
        av = c.api_versions(3)
        check(av["error_code"] == 0, "ApiVersions error %d %s" % (av["error_code"], what))
        check(API_VERSIONS in av["api_keys"] and METADATA in av["api_keys"],
              "ApiVersions lacks keys 18/3 %s" % what)
        md = c.metadata(1, topics=None)
        check(any(b["host"] == HOST and b["port"] == broker.port for b in md["brokers"]),
              "Metadata brokers %r do not include %s %s" % (md["brokers"], broker.bootstrap, what))


# -- cluster -------------------------------------------------------------------------------

DESCRIBE_QUORUM, DESCRIBE_CLUSTER = 55, 60

# Broker liveness timings the cluster tests run with (Kafka's defaults: 2000 / 9000 ms).
CLUSTER_TIMINGS = {"broker.heartbeat.interval.ms": 500, "broker.session.timeout.ms": 3000}
SESSION_TIMEOUT_S = CLUSTER_TIMINGS["broker.session.timeout.ms"] / 1000.0


def describe_cluster_body(version=0):
    check(version in (0, 1), "describe_cluster_body supports v0 and v1")
    body = boolean(False)  # IncludeClusterAuthorizedOperations
    if version >= 1:
        body += i8(1)  # EndpointType: brokers
    return body + TAGS_NONE


def parse_describe_cluster(body, version=0):
    """DescribeCluster response body -> dict(error_code, error_message, cluster_id,
    controller_id, brokers=[{node_id, host, port, rack}])."""
    r = Reader(body)
    out = {"throttle_ms": r.int32(), "error_code": r.int16(), "error_message": r.cstring()}
    if version >= 1:
        out["endpoint_type"] = r.int8()
    out["cluster_id"] = r.cstring()
    out["controller_id"] = r.int32()

    def broker(rr):
        b = {"node_id": rr.int32(), "host": rr.cstring(), "port": rr.int32(),
             "rack": rr.cstring()}
        rr.tagged_fields()
        return b

    out["brokers"] = r.carray(broker)
    out["cluster_authorized_ops"] = r.int32()
    out["tags"] = r.tagged_fields()
    r.end()
    return out


def distinct_free_ports(n):
    """n different loopback ports that were free a moment ago (all bound at once, so no
    two are the same), reserved like free_port's."""
    socks, ports = [], []
    try:
        for _ in range(100 * n):
            if len(ports) == n:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
            if _reserve_port(s.getsockname()[1]):
                ports.append(s.getsockname()[1])
        check(len(ports) == n, "no %d free loopback ports could be reserved" % n)
        return ports
    finally:
        for s in socks:
            s.close()


def poll(fn, timeout, what, interval=0.05):
    """Like wait_until, but fn may raise (connection refused, a half-started node, a parse
    error): that counts as "not yet". The failure message names the last value or error
    seen, so a timeout says what the cluster looked like."""
    deadline = time.monotonic() + timeout * SLOW
    last = "nothing yet"
    while True:
        try:
            v = fn()
            if v:
                return v
            last = "last value: %r" % (v,)
        except (OSError, ConnectionClosed, TestFailure, struct.error) as e:
            last = "last error: %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e)
                                           else "")
        if time.monotonic() >= deadline:
            fail("timed out after %.1fs waiting for %s (%s)" % (timeout * SLOW, what, last[:600]))
        time.sleep(interval)


class Cluster:
    """n gregor processes, each a broker and a controller voter (process.roles=
    broker,controller), on free loopback ports: a client (PLAINTEXT) and a raft (CONTROLLER)
    port per node. Usage:

        with Cluster(3, {"num.partitions": 6}) as c:
            c.bootstrap            -> "127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3"
            c.node(2).bootstrap    -> node.id 2 alone (c.nodes[1])
            c.wait_controller()    -> the active controller's node id
            c.kill(2); c.restart(2)

    props: --override pairs for every node, on top of CLUSTER_TIMINGS (pass None as a value
    to drop a default). node_props: {node_id: {...}} for single nodes. roles: {node_id:
    process.roles} for nodes that are not broker,controller (e.g. {1: "controller", 4:
    "broker"}): nodes with the controller role are the voters, a broker-only node gets its
    raft port as metadata.observer.listener and the controllers' client ports as
    controller.quorum.bootstrap.servers, and only broker nodes are expected in Metadata. Start: all processes
    are started, then every client port is waited for; with wait_formed (default) also until
    every node's Metadata lists all n brokers and they agree on a live controller. Exit
    without an exception: SIGTERM to every running node at once, each must exit 0 (that is
    what Ctrl-C of `make cluster` does). Nodes are Broker objects, so a failing test prints
    every node's log tail and removes their directories.

    proxied=True routes every inter-node link through fault-injecting proxies
    (faultproxy.Netsplit, as c.net): each node's controller.quorum.voters entries name proxy
    ports in front of the nodes' CONTROLLER (raft) ports, and each node advertises
    PLAINTEXT://127.0.0.1:<proxy in front of its client port>, so follower fetches and
    broker->controller RPCs (found through the advertised endpoints in the metadata image)
    cross the proxies too. c.node(i).port stays the real client port; c.proxy_client_ports
    are the advertised ones. Cut links with c.net.cut(a, b) / c.isolate(x) / c.heal().
    """

    def __init__(self, n=3, props=None, node_props=None, start_timeout=15.0,
                 form_timeout=20.0, wait_formed=True, stop_timeout=15.0, proxied=False,
                 roles=None, node_env=None):
        check(n >= 1, "a cluster has at least one node")
        self.node_env = {int(k): dict(v) for k, v in (node_env or {}).items()}
        self.n = n
        self.roles = {int(k): v for k, v in (roles or {}).items()}
        self.props = dict(CLUSTER_TIMINGS)
        self.props.update(props or {})
        self.props = {k: v for k, v in self.props.items() if v is not None}
        self.node_props = {int(k): dict(v) for k, v in (node_props or {}).items()}
        self.start_timeout = start_timeout
        self.form_timeout = form_timeout
        self.wait_formed_on_start = wait_formed
        self.stop_timeout = stop_timeout
        self.nodes = []
        self.client_ports = []
        self.raft_ports = []
        self.voters = ""
        self.proxied = proxied
        self.net = None
        self.proxy_client_ports = []
        self.proxy_raft_ports = []

    # -- configuration ---------------------------------------------------------------------
    @property
    def ids(self):
        return list(range(1, self.n + 1))

    def is_broker(self, node_id):
        return "broker" in self.roles.get(node_id, "broker,controller")

    def is_controller(self, node_id):
        return "controller" in self.roles.get(node_id, "broker,controller")

    def live_broker_ids(self):
        return [i for i in self.live_ids() if self.is_broker(i)]

    def _assign_ports(self):
        ports = distinct_free_ports(2 * self.n)
        self.client_ports = ports[:self.n]
        self.raft_ports = ports[self.n:]
        voter_ports = self.raft_ports
        if self.proxied:
            from faultproxy import Netsplit
            if self.net is not None:
                self.net.stop()
            self.net = Netsplit(self.node_pids)
            self.proxy_client_ports = [self.net.add_proxy(i, self.client_ports[i - 1])
                                       for i in self.ids]
            self.proxy_raft_ports = [self.net.add_proxy(i, self.raft_ports[i - 1])
                                     for i in self.ids]
            self.net.start()
            voter_ports = self.proxy_raft_ports
        self.voters = ",".join("%d@%s:%d" % (i, HOST, voter_ports[i - 1]) for i in self.ids
                               if self.is_controller(i))

    def node_pids(self):
        """{pid: node id} of the running nodes (the proxies ask on every accept, so a
        restarted node is known by its new pid)."""
        return {b.proc.pid: i for i, b in zip(self.ids, self.nodes) if b.proc is not None}

    # -- network faults (proxied=True) -----------------------------------------------------
    def isolate(self, node_id):
        """Cuts every link between node_id and the other nodes (clients still reach it)."""
        check(self.net is not None, "isolate needs Cluster(proxied=True)")
        self.net.isolate(node_id, self.ids)

    def cut(self, a, b):
        check(self.net is not None, "cut needs Cluster(proxied=True)")
        self.net.cut(a, b)

    def heal(self):
        check(self.net is not None, "heal needs Cluster(proxied=True)")
        self.net.heal()

    def node_config(self, node_id):
        """The --override set of one node (without log.dirs: Broker adds its own)."""
        p = {
            "node.id": node_id,
            "process.roles": self.roles.get(node_id, "broker,controller"),
            "listeners": "PLAINTEXT://%s:%d,CONTROLLER://%s:%d" % (
                HOST, self.client_ports[node_id - 1], HOST, self.raft_ports[node_id - 1]),
            "controller.listener.names": "CONTROLLER",
            "controller.quorum.voters": self.voters,
        }
        if self.proxied:
            p["advertised.listeners"] = "PLAINTEXT://%s:%d" % (
                HOST, self.proxy_client_ports[node_id - 1])
        if not self.is_controller(node_id):
            p["listeners"] = "PLAINTEXT://%s:%d" % (HOST, self.client_ports[node_id - 1])
            p["metadata.observer.listener"] = "%s:%d" % (HOST, self.raft_ports[node_id - 1])
            p["controller.quorum.bootstrap.servers"] = ",".join(
                "%s:%d" % (HOST, self.client_ports[i - 1]) for i in self.ids
                if self.is_controller(i))
        p.update(self.props)
        p.update(self.node_props.get(node_id, {}))
        return {k: v for k, v in p.items() if v is not None}

    # -- lifecycle -------------------------------------------------------------------------
    def start(self):
        attempts = 3
        for attempt in range(attempts):
            self._assign_ports()
            if not self.nodes:
                self.nodes = [Broker(self.node_config(i), name="node-%d" % i,
                                     start_timeout=self.start_timeout, wait=True,
                                     env=self.node_env.get(i))
                              for i in self.ids]
            else:  # a retry after a port clash: fresh ports, fresh data
                for b in self.nodes:
                    b._hard_kill()
                    shutil.rmtree(b.data_dir, ignore_errors=True)
                    b.props = self.node_config(int(b.props["node.id"]))
                    b.port = self.client_ports[int(b.props["node.id"]) - 1]
            for b in self.nodes:
                b.start(wait=False)
            try:
                for b in self.nodes:
                    b.wait_accepting()
                break
            except TestFailure:
                clash = any(not b.running() and "in use" in tail(b.log_path, 5).lower()
                            for b in self.nodes)
                if clash and attempt + 1 < attempts:
                    continue
                raise
        if self.wait_formed_on_start:
            self.wait_formed()
        return self

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            for b in self.nodes:
                b._hard_kill()
            if self.net is not None:
                self.net.stop()
            raise

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                if self.net is not None:
                    # Shutdown goes through the controller: no cut may hold it up.
                    self.net.heal()
                self.stop_all()
                if self.net is not None and self.net.error is not None:
                    fail("the fault proxy's loop failed: %r" % (self.net.error,))
        finally:
            for b in self.nodes:
                b._hard_kill()
                if exc_type is None:
                    shutil.rmtree(b.data_dir, ignore_errors=True)
            if self.net is not None:
                self.net.stop()
        return False

    def stop_all(self, timeout=None):
        """SIGTERM to every running node at once; asserts each exits 0 within timeout, and
        that no node the test did not kill or stop has exited."""
        timeout = (timeout or self.stop_timeout) * SLOW
        # A node the test neither killed nor stopped must still be running.
        problems = ["%s exited by itself (status %d) during the test; log tail:\n%s"
                    % (b.name, b.proc.returncode, tail(b.log_path))
                    for b in self.nodes if b.proc is not None and b.proc.poll() is not None]
        running = [b for b in self.nodes if b.running()]
        t0 = time.monotonic()
        for b in running:
            b.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for b in running:
            try:
                rc = b.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                b._hard_kill()
                problems.append("%s did not exit within %.1fs of SIGTERM (all nodes stopped "
                                "together); log tail:\n%s" % (b.name, timeout, tail(b.log_path)))
                continue
            b._reap()
            if rc != 0:
                problems.append("%s exited with status %d after SIGTERM (all nodes stopped "
                                "together); log tail:\n%s" % (b.name, rc, tail(b.log_path)))
        for b in running:
            b.check_log_clean()
        if problems:
            fail("\n".join(problems))
        if running:
            comment("SIGTERM to nodes %s: all exited 0 within %.2fs"
                    % (",".join(b.name[5:] for b in running), time.monotonic() - t0))

    def node(self, node_id):
        check(1 <= node_id <= self.n, "no node %r in a %d-node cluster" % (node_id, self.n))
        return self.nodes[node_id - 1]

    def live_ids(self):
        return [i for i in self.ids if self.node(i).running()]

    @property
    def bootstrap(self):
        """Every broker's client address, comma-separated (dead ones included)."""
        return ",".join("%s:%d" % (HOST, self.client_ports[i - 1]) for i in self.ids
                        if self.is_broker(i))

    def live_bootstrap(self):
        return ",".join(self.node(i).bootstrap for i in self.live_broker_ids())

    def check_running(self, node_id):
        """Fails (with exit status and log tail) if the node's process has exited."""
        b = self.node(node_id)
        if b.proc is None:
            fail("%s is not running (the test stopped or killed it)" % b.name)
        rc = b.proc.poll()
        if rc is not None:
            fail("%s exited by itself with status %d; log tail:\n%s"
                 % (b.name, rc, tail(b.log_path)))

    def kill(self, node_id):
        """SIGKILL (crash); the data directory stays. Returns the monotonic time of the kill."""
        b = self.node(node_id)
        self.check_running(node_id)
        t = time.monotonic()
        b.kill()
        return t

    def stop(self, node_id, timeout=15.0):
        """SIGTERM; asserts a clean exit (status 0) within timeout."""
        return self.node(node_id).stop(timeout=timeout)

    def restart(self, node_id):
        """Clean stop if running (asserted), then start on the same ports and data dir and
        wait for the client port."""
        b = self.node(node_id)
        if b.running():
            b.stop()
        elif b.proc is not None:
            b._reap()
        return b.start(wait=True)

    # -- views -----------------------------------------------------------------------------
    def raw(self, node_id, timeout=5.0):
        return KafkaRaw(HOST, self.node(node_id).port, timeout=timeout)

    def metadata(self, via, topics=None, version=7, timeout=5.0):
        """Raw Metadata (v7: leader epochs, offline replicas) from one node.
        topics=None: all topics."""
        with self.raw(via, timeout) as c:
            return c.metadata(version, topics=topics, allow_auto_create=False)

    def describe_cluster(self, via, version=0, timeout=5.0):
        with self.raw(via, timeout) as c:
            return parse_describe_cluster(
                c.call(DESCRIBE_CLUSTER, version, describe_cluster_body(version)), version)

    def wait_formed(self, timeout=None):
        """Until every running broker's Metadata lists exactly the running brokers (naming
        a running broker as controller) and the running nodes agree on an active controller
        (wait_controller). Returns the active controller's id."""
        t0 = time.monotonic()
        timeout = timeout or self.form_timeout

        def formed():
            live = self.live_broker_ids()
            seen = {}
            for i in live:
                md = self.metadata(i, topics=[])
                seen[i] = (sorted(b["node_id"] for b in md["brokers"]), md["controller_id"])
            if all(ids == live and ctl in live for ids, ctl in seen.values()):
                return True
            raise TestFailure("per node (brokers listed, controller id): %r" % seen)
        poll(formed, timeout, "the cluster to form (every broker lists brokers %r)"
             % self.live_broker_ids())
        return self.wait_controller(max(1.0, timeout - (time.monotonic() - t0)))

    def describe_quorum(self, via, timeout=5.0):
        """Raw DescribeQuorum v0 for __cluster_metadata-0 sent to node via (a broker answers
        it or forwards it to the active controller) -> (top-level error code, partition dict
        with error_code, leader_id, leader_epoch, high_watermark, voters {id: log end
        offset}, observers {id: log end offset})."""
        body = carray([cstring("__cluster_metadata") + carray([i32(0) + TAGS_NONE]) + TAGS_NONE])
        body += TAGS_NONE
        with self.raw(via, timeout) as conn:
            r = Reader(conn.call(DESCRIBE_QUORUM, 0, body))
        top = r.int16()

        def replica(rr):
            out = (rr.int32(), rr.int64())
            rr.tagged_fields()
            return out

        def partition(rr):
            p = {"partition": rr.int32(), "error_code": rr.int16(), "leader_id": rr.int32(),
                 "leader_epoch": rr.int32(), "high_watermark": rr.int64()}
            p["voters"] = dict(rr.carray(replica) or [])
            p["observers"] = dict(rr.carray(replica) or [])
            rr.tagged_fields()
            return p

        def topic(rr):
            t = (rr.cstring(), rr.carray(partition))
            rr.tagged_fields()
            return t
        topics = r.carray(topic)
        r.tagged_fields()
        r.end()
        check(topics and topics[0][0] == "__cluster_metadata" and len(topics[0][1]) == 1,
              "node %d DescribeQuorum topics %r" % (via, topics))
        return top, topics[0][1][0]

    def supports(self, via, api_key):
        with self.raw(via) as c:
            return api_key in c.api_versions(3)["api_keys"]

    def wait_controller(self, timeout=15.0, exclude=()):
        """The active controller's node id: waits until every running node names the same
        one, a running node not in exclude. Asked with DescribeQuorum (the raft leader of
        __cluster_metadata), since Metadata's controller_id is, as in Kafka's KRaft mode, any
        live broker (the one answering), which forwards; Metadata's controller_id is used
        only if DescribeQuorum is not supported."""
        mode = {}

        def leader_seen_by(i):
            if "quorum" not in mode:
                mode["quorum"] = self.supports(i, DESCRIBE_QUORUM)
            if mode["quorum"]:
                top, p = self.describe_quorum(i)
                return p["leader_id"] if top == 0 and p["error_code"] == 0 else \
                    "error %d/%d" % (top, p["error_code"])
            return self.metadata(i, topics=[])["controller_id"]

        def agreed():
            live = self.live_ids()
            seen = {i: leader_seen_by(i) for i in live}
            ids = set(seen.values())
            if len(ids) == 1:
                c = ids.pop()
                if c in live and c not in exclude:
                    return c
            raise TestFailure("active controller per node (%s): %r" % (
                "DescribeQuorum leader" if mode.get("quorum") else "Metadata controller_id",
                seen))
        return poll(agreed, timeout, "one live active controller" +
                    (" other than %r" % list(exclude) if exclude else ""))

    def admin(self, via=None, timeout_ms=10000):
        """A confluent-kafka AdminClient bootstrapped from one node (via) or all live ones."""
        from confluent_kafka.admin import AdminClient
        bs = self.node(via).bootstrap if via else self.live_bootstrap()
        return AdminClient({"bootstrap.servers": bs, "socket.timeout.ms": int(timeout_ms * SLOW),
                            "topic.metadata.refresh.interval.ms": 1000})

    def create_topic(self, name, partitions, rf, via=None, config=None, timeout=15.0):
        """CreateTopics through an AdminClient (one node or all live ones). Returns None on
        success, else the error's name (e.g. INVALID_REPLICATION_FACTOR)."""
        from confluent_kafka.admin import NewTopic
        a = self.admin(via)
        t = timeout * SLOW
        fut = a.create_topics([NewTopic(name, partitions, rf, config=dict(config or {}))],
                              request_timeout=t, operation_timeout=t)[name]
        try:
            fut.result(timeout=t + 5)
            return None
        except Exception as e:  # KafkaException wraps KafkaError; futures may time out too
            err = e.args[0] if e.args else e
            return err.name() if hasattr(err, "name") else "%s: %s" % (type(e).__name__, e)

    def create_topic_raw(self, name, partitions, rf, via, timeout_ms=10000, read_timeout=15.0):
        """CreateTopics v4 sent straight to node via (no client-side routing to the
        controller, so a non-controller must forward it). Returns (error code, error
        message); raises socket.timeout if no answer arrives within read_timeout."""
        body = array([string(name) + i32(partitions) + i16(rf) + array([]) + array([])])
        body += i32(timeout_ms) + boolean(False)
        with self.raw(via, timeout=read_timeout) as c:
            r = Reader(c.call(CREATE_TOPICS, 4, body))
        r.int32()  # throttle
        topics = r.array(lambda x: (x.string(), x.int16(), x.string()))
        r.end()
        check(topics and topics[0][0] == name, "CreateTopics response topics %r" % topics)
        return topics[0][1], topics[0][2]

    def produce_raw(self, via, topic, partition, value, acks=-1, retry_on=(3, 5, 6),
                    timeout=5.0):
        """One record produced with raw Produce v8 to node via. Errors in retry_on
        (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER: a broker
        whose Metadata already shows a change its partitions have not applied yet, which a
        client retries too) are retried for up to timeout seconds. Returns the partition's
        result dict (error_code, base_offset, ...) of the last attempt."""
        from kafka_records import produce, record_batch
        deadline = time.monotonic() + timeout * SLOW
        while True:
            with self.raw(via) as conn:
                res = produce(conn, topic, partition, record_batch([(b"k", value)]), acks=acks)
            if res["error_code"] not in retry_on or time.monotonic() >= deadline:
                return res
            time.sleep(0.05)

    def partition_leaders(self, topic, via=None, timeout=10.0):
        """{partition: {"leader", "replicas", "isrs", "error"}} from AdminClient.list_topics
        (one node or all live ones). error is None or the KafkaError's name."""
        md = self.admin(via).list_topics(topic, timeout=timeout * SLOW)
        t = md.topics.get(topic)
        check(t is not None, "list_topics has no %r" % topic)
        check(t.error is None, "list_topics %r: %s" % (topic, t.error))
        return {p.id: {"leader": p.leader, "replicas": list(p.replicas), "isrs": list(p.isrs),
                       "error": p.error.name() if p.error else None}
                for p in t.partitions.values()}

    def raw_partitions(self, topic, via):
        """{partition: raw Metadata v7 partition dict (leader, leader_epoch, replicas, isr,
        offline, error_code)} as node `via` sees it; fails if the topic is unknown there."""
        md = self.metadata(via, topics=[topic])
        ts = [t for t in md["topics"] if t["name"] == topic]
        check(ts and ts[0]["error_code"] == 0, "node %d: Metadata for %r: %r"
              % (via, topic, ts[0] if ts else md["topics"]))
        return {p["partition"]: p for p in ts[0]["partitions"]}

    def wait_topic(self, topic, partitions, timeout=15.0, via=None, live_leaders=True):
        """Until each node in via (default: every running node) knows topic with that many
        partitions, each with a live leader (unless live_leaders=False). Returns {partition:
        leader} as the first of those nodes sees it."""
        vias = [via] if isinstance(via, int) else list(via or self.live_ids())

        def ready():
            out = None
            for i in vias:
                ps = self.raw_partitions(topic, i)
                live = self.live_ids()
                if len(ps) != partitions or (live_leaders and
                                             any(p["leader"] not in live for p in ps.values())):
                    raise TestFailure("node %d sees %r" % (i, {k: (p["leader"], p["error_code"])
                                                                for k, p in ps.items()}))
                if out is None:
                    out = {k: p["leader"] for k, p in ps.items()}
            return out
        return poll(ready, timeout, "topic %r with %d partitions led by live nodes on nodes %r"
                    % (topic, partitions, vias))
