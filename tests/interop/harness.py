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

Environment: GREGOR_BIN (default <repo>/build/gregor), GREGOR_ASAN=1 when GREGOR_BIN is the
sanitizer build (timeouts are stretched and logs are checked for sanitizer reports).
"""
import atexit
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GREGOR_BIN = os.environ.get("GREGOR_BIN") or os.path.join(REPO_ROOT, "build", "gregor")
ASAN = os.environ.get("GREGOR_ASAN") == "1"
# Sanitizer builds start and run several times slower; a loaded 2-core CI box adds more.
SLOW = 3.0 if ASAN else 1.0
HOST = "127.0.0.1"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer",
                     "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer")


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


def free_port():
    """A loopback port that was free a moment ago (bind to port 0, read it, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


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
    unless given). The data directory survives restart() and kill(); it is removed when the
    context exits. env: extra environment variables for the process (e.g. LD_PRELOAD), on
    top of the test's own environment; None values remove a variable.
    """

    def __init__(self, props=None, name="broker", start_timeout=10.0, wait=True, env=None):
        self.props = dict(props or {})
        self.env = dict(env or {})
        self.name = name
        self.start_timeout = start_timeout * SLOW
        self.wait_ready = wait
        self.dir = tempfile.mkdtemp(prefix=name + "-", dir=_tmp_root())
        self.data_dir = self.props.get("log.dirs") or os.path.join(self.dir, "data")
        self.port = None
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

    def start(self):
        """Starts the process; with wait=True returns once the port accepts connections."""
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
            if not self.wait_ready:
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

    def _wait_accepting(self):
        deadline = time.monotonic() + self.start_timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                fail("%s exited with status %d before accepting connections; log tail:\n%s"
                     % (self.name, rc, tail(self.log_path)))
            try:
                s = socket.create_connection((HOST, self.port), timeout=1.0)
                s.close()
                return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                fail("%s did not accept connections on port %d within %.1fs; log tail:\n%s"
                     % (self.name, self.port, self.start_timeout, tail(self.log_path)))
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
                  36: 2, 37: 2,
                  42: 2, 44: 1, 47: 0, 48: 1, 49: 1, 50: 0, 51: 0, 60: 0, 61: 0, 75: 0}


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
