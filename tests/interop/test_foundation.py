"""Foundation tests: a real gregor process spoken to with raw Kafka frames (asan-smoke: also
run against the ASan/UBSan build).

Covers ApiVersions (v0, flexible v3, unsupported version), Metadata v0..v12, request
pipelining, the malformed-input cases of the design (oversized / truncated frames, unknown
API key, lengths past the end of the frame, garbage, silent and non-reading clients), start-up
configuration errors, signal handling, start-up time and idle footprint.

Every bad-input test ends by checking that a fresh client on another connection still gets
correct answers: one bad connection must never hurt the others.
"""
import os
import random
import signal
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (API_VERSIONS, ASAN, HOST, METADATA, SLOW, TAGS_NONE, Broker,  # noqa: E402
                     ConnectionClosed, KafkaRaw, Reader, api_versions_body, array, carray,
                     check, check_broker_healthy, comment, cstring, fail, frame, i16, i32,
                     metadata_body, parse_api_versions, parse_metadata, request_frame,
                     request_header, run_tests, start_expect_exit, string, test, uvarint,
                     wait_until)

UNSUPPORTED_VERSION = 35
NODE_ID = 7  # not the default (1), so the tests see the configured id is reported


def broker(**extra):
    props = {"node.id": NODE_ID, "num.partitions": 1}
    props.update({k.replace("_", "."): v for k, v in extra.items()})
    return Broker(props)


# -- ApiVersions ---------------------------------------------------------------------------

def check_api_keys(keys, what):
    """The advertised ranges are sane and cover what Kafka 3.x clients need first."""
    for k, (lo, hi) in keys.items():
        check(0 <= lo <= hi, "%s: api key %d has range %d..%d" % (what, k, lo, hi))
    check(API_VERSIONS in keys, "%s: ApiVersions (18) not advertised" % what)
    check(keys[API_VERSIONS][0] == 0 and keys[API_VERSIONS][1] >= 3,
          "%s: ApiVersions range %r, want 0..>=3" % (what, keys[API_VERSIONS]))
    check(METADATA in keys, "%s: Metadata (3) not advertised" % what)
    check(keys[METADATA][0] == 0 and keys[METADATA][1] >= 12,
          "%s: Metadata range %r, want 0..>=12" % (what, keys[METADATA]))


@test
def test_api_versions_v0():
    """ApiVersions v0 (empty body, non-flexible): error 0 and the advertised API ranges."""
    with broker() as b, KafkaRaw(b) as c:
        av = parse_api_versions(c.call(API_VERSIONS, 0, b""), 0)
        check(av["error_code"] == 0, "error_code %d" % av["error_code"])
        check_api_keys(av["api_keys"], "v0")
        comment("advertised: " + " ".join("%d:%d-%d" % (k, lo, hi)
                                          for k, (lo, hi) in sorted(av["api_keys"].items())))


@test
def test_api_versions_v3_flexible_body_header_v0():
    """ApiVersions v3: request header v2 + compact body; the response body is flexible but
    the response header stays v0 (no tagged-field byte after the correlation id). The
    parser is strict: a stray header tag byte or trailing bytes fail the test. The key set
    must equal the v0 answer."""
    with broker() as b, KafkaRaw(b) as c:
        v0 = parse_api_versions(c.call(API_VERSIONS, 0, b""), 0)
        body = c.call(API_VERSIONS, 3, api_versions_body(3))
        # recv_response did not strip a tag section for ApiVersions: body starts at ErrorCode.
        check(body[:2] == b"\x00\x00",
              "v3 body does not start with ErrorCode 0 (header v1 used?): %s" % body[:8].hex())
        v3 = parse_api_versions(body, 3)
        check(v3["error_code"] == 0, "error_code %d" % v3["error_code"])
        check(v3["throttle_ms"] == 0, "throttle_ms %d" % v3["throttle_ms"])
        check_api_keys(v3["api_keys"], "v3")
        check(v3["api_keys"] == v0["api_keys"], "v3 key ranges differ from v0")


@test
def test_api_versions_v3_skips_unknown_tagged_fields():
    """Unknown tagged fields in the request header and body must be skipped (tags 5 and
    1000 with a few bytes each), not treated as errors."""
    with broker() as b, KafkaRaw(b) as c:
        unknown_tags = uvarint(2) + uvarint(5) + uvarint(3) + b"abc" + \
            uvarint(1000) + uvarint(1) + b"\x07"
        hdr = i16(API_VERSIONS) + i16(3) + i32(41) + string("tags") + unknown_tags
        body = cstring("gregor-test") + cstring("1.0") + unknown_tags
        c.pending.append((41, API_VERSIONS, 3))
        c.send_raw(frame(hdr + body))
        _, resp = c.recv_response()
        av = parse_api_versions(resp, 3)
        check(av["error_code"] == 0, "error_code %d" % av["error_code"])


@test
def test_api_versions_unsupported_version_answered_as_v0():
    """ApiVersions v99 (header v2, some body): Kafka does not decode the body and answers
    with a v0-encoded body: ErrorCode 35 UNSUPPORTED_VERSION and the supported range of key
    18 (so the client can retry). The connection stays usable for the retry."""
    with broker() as b, KafkaRaw(b) as c:
        body = c.call(API_VERSIONS, 99, api_versions_body(3), flexible=True)
        av = parse_api_versions(body, 0)  # strict v0 parse: no throttle, no tags, no trailer
        check(av["error_code"] == UNSUPPORTED_VERSION,
              "error_code %d, want 35 UNSUPPORTED_VERSION" % av["error_code"])
        check(API_VERSIONS in av["api_keys"], "key 18 range missing from the error answer")
        lo, hi = av["api_keys"][API_VERSIONS]
        check(lo == 0 and hi >= 3, "key 18 range %d..%d" % (lo, hi))
        retry = c.api_versions(hi)
        check(retry["error_code"] == 0, "retry with v%d: error %d" % (hi, retry["error_code"]))
        # A version just above the maximum is refused the same way.
        body = c.call(API_VERSIONS, hi + 1, api_versions_body(3), flexible=True)
        check(parse_api_versions(body, 0)["error_code"] == UNSUPPORTED_VERSION,
              "v%d not refused" % (hi + 1))


# -- Metadata ------------------------------------------------------------------------------

def check_metadata_broker_list(md, b, version):
    brokers = [(x["node_id"], x["host"], x["port"]) for x in md["brokers"]]
    check(brokers == [(NODE_ID, HOST, b.port)],
          "v%d brokers %r, want [(%d, %s, %d)]" % (version, brokers, NODE_ID, HOST, b.port))
    if version >= 1:
        check(md["brokers"][0]["rack"] is None, "v%d rack %r, want null" %
              (version, md["brokers"][0]["rack"]))
        check(md["controller_id"] == NODE_ID,
              "v%d controller_id %d, want %d" % (version, md["controller_id"], NODE_ID))
    if version >= 2:
        cid = md["cluster_id"]
        check(isinstance(cid, str) and len(cid) > 0, "v%d cluster_id %r" % (version, cid))
    if version >= 3:
        check(md["throttle_ms"] == 0, "v%d throttle %d" % (version, md["throttle_ms"]))


@test
def test_metadata_every_version_lists_broker():
    """Metadata v0..v12 on one connection (v0: empty list = all topics; v1+: null = all
    topics, and an explicit empty list = no topics): the broker with the configured node id,
    host and port; controller id (v1+), the same non-empty cluster id (v2+); a fresh broker
    has no topics. v9+ is flexible, v10+ has topic ids, v12 is the latest."""
    with broker() as b, KafkaRaw(b) as c:
        cluster_ids = set()
        for v in range(0, 13):
            for topics in ([()] if v == 0 else [None, ()]):
                md = c.metadata(v, topics=topics)
                check_metadata_broker_list(md, b, v)
                check(md["topics"] == [], "v%d topics=%r: topics %r on a fresh broker"
                      % (v, topics, md["topics"]))
                if v >= 2:
                    cluster_ids.add(md["cluster_id"])
        check(len(cluster_ids) == 1, "cluster id changes between requests: %r" % cluster_ids)
        comment("cluster_id=%s" % cluster_ids.pop())


@test
def test_metadata_cluster_id_survives_restart():
    """The cluster id is stored with the data: a restart on the same log dir keeps it."""
    with broker() as b:
        with KafkaRaw(b) as c:
            cid = c.metadata(2, topics=None)["cluster_id"]
        b.restart()
        with KafkaRaw(b) as c:
            cid2 = c.metadata(2, topics=None)["cluster_id"]
        check(cid == cid2, "cluster id %r became %r after restart" % (cid, cid2))


@test
def test_pipelined_requests_answered_in_order():
    """50 requests of mixed APIs and versions (ApiVersions v0/v3, Metadata v0/v1/v9/v12) in a
    single write; the 50 responses come back in request order (correlation ids) and each
    decodes for its own version."""
    with broker() as b, KafkaRaw(b) as c:
        kinds = [(API_VERSIONS, 0), (METADATA, 1), (API_VERSIONS, 3), (METADATA, 9),
                 (METADATA, 0), (METADATA, 12)]
        blob = b""
        sent = []
        for i in range(50):
            key, v = kinds[i % len(kinds)]
            body = api_versions_body(v) if key == API_VERSIONS else \
                metadata_body(v, topics=(() if v == 0 else None))
            corr, data = c.encode_request(key, v, body, correlation_id=1000 + i * 7)
            blob += data
            sent.append((corr, key, v))
        c.send_raw(blob)
        for corr, key, v in sent:
            got, body = c.recv_response()  # checks the correlation id order
            check(got == corr, "correlation %d != %d" % (got, corr))
            if key == API_VERSIONS:
                check(parse_api_versions(body, v)["error_code"] == 0, "ApiVersions error")
            else:
                check_metadata_broker_list(parse_metadata(body, v), b, v)


# -- bad input -----------------------------------------------------------------------------

def expect_closed(c, what, timeout=10.0):
    check(c.wait_closed(timeout * SLOW),
          "%s: broker did not close the connection within %.0fs" % (what, timeout * SLOW))


@test
def test_frame_over_socket_request_max_bytes_closes_connection():
    """socket.request.max.bytes=4096. A frame of exactly 4096 bytes (ApiVersions v3 with a
    long client name) is served; a header claiming 1 MB is refused by closing the connection
    without reading (or allocating for) the body; so is 4097 bytes."""
    with broker(socket_request_max_bytes=4096) as b:
        with KafkaRaw(b) as c:
            # header + [2-byte compact length + name] + cstring("1") (2 bytes) + tags (1 byte)
            name = "a" * (4096 - len(request_header(API_VERSIONS, 3, 1)) - 2 - 3)
            body = cstring(name) + cstring("1") + TAGS_NONE
            req = request_frame(API_VERSIONS, 3, 1, body)
            check(len(req) == 4 + 4096, "test bug: frame is %d bytes" % (len(req) - 4))
            c.pending.append((1, API_VERSIONS, 3))
            c.send_raw(req)
            _, resp = c.recv_response()
            check(parse_api_versions(resp, 3)["error_code"] == 0, "4096-byte frame refused")
        with KafkaRaw(b) as c:
            c.send_raw(i32(1 << 20) + request_header(API_VERSIONS, 0, 2) + b"\x00" * 1000)
            expect_closed(c, "1 MB frame header")
        with KafkaRaw(b) as c:
            body = cstring(name + "b") + cstring("1") + TAGS_NONE
            c.send_raw(request_frame(API_VERSIONS, 3, 3, body))
            expect_closed(c, "4097-byte frame")
        check_broker_healthy(b, "after oversized frames")


@test
def test_truncated_frame_then_close():
    """A client sends part of a frame (half of the size prefix; a size of 100 with 20
    bytes of it; a full header and half a body) and closes. The broker drops the connection
    state; other clients are unaffected."""
    with broker() as b:
        partials = [b"\x00\x00",
                    i32(100) + request_header(METADATA, 1, 5)[:20],
                    frame(request_header(METADATA, 1, 6) + metadata_body(1, ["t"] * 10))[:40]]
        for p in partials:
            with KafkaRaw(b) as c:
                c.send_raw(p)
            check_broker_healthy(b, "after a truncated frame %r" % p[:12])
        # The same, but the client half-closes and waits: the broker must close too.
        with KafkaRaw(b) as c:
            c.send_raw(i32(100) + b"\x00" * 20)
            c.sock.shutdown(socket.SHUT_WR)
            expect_closed(c, "truncated frame then EOF")
        check_broker_healthy(b, "after truncated frames")


@test
def test_unknown_api_key_closes_connection():
    """A well-formed header with api key 9999 (and, separately, key 3 at version 999, an
    unsupported Metadata version): Kafka cannot parse such a request and closes the
    connection; a request already answered on it is unaffected."""
    with broker() as b:
        with KafkaRaw(b) as c:
            check(c.api_versions(0)["error_code"] == 0, "ApiVersions before the bad request")
            c.send_raw(request_frame(9999, 0, 77, b"\x00" * 8))
            expect_closed(c, "api key 9999")
        with KafkaRaw(b) as c:
            c.send_raw(request_frame(METADATA, 999, 78, b"\x00" * 8, flexible=True))
            expect_closed(c, "Metadata v999")
        check_broker_healthy(b, "after unknown api key / version")


@test
def test_lengths_past_end_of_frame_close_connection():
    """Requests whose declared lengths exceed the bytes left in the frame: a topic string
    of length 1000 with 5 bytes present; an array count of 2^31-1 with no elements (must not
    allocate 2^31 entries); a compact (flexible) array count of 2^31-2 and a compact
    string of length 2^30; a client id of length 30000. Each: connection closed, broker
    memory unchanged, and other clients are still served."""
    with broker() as b:
        rss0 = b.rss_kb()
        bad = [
            ("string length 1000, 5 bytes",
             request_frame(METADATA, 1, 1, i32(1) + i16(1000) + b"abcde")),
            ("array count 2^31-1",
             request_frame(METADATA, 1, 2, i32(0x7FFFFFFF))),
            ("compact array count 2^31-2",
             request_frame(METADATA, 9, 3, uvarint(0x7FFFFFFF) + TAGS_NONE)),
            ("compact string 2^30",
             request_frame(API_VERSIONS, 3, 4, uvarint(1 << 30) + b"xx")),
            ("client id length 30000",
             frame(i16(METADATA) + i16(1) + i32(5) + i16(30000) + b"c" * 10)),
            ("negative string length -5",
             request_frame(METADATA, 1, 6, i32(1) + i16(-5) + b"abcde")),
            ("Metadata v1 array of 3 with 1 element",
             request_frame(METADATA, 1, 7, i32(3) + string("a"))),
        ]
        for what, data in bad:
            with KafkaRaw(b) as c:
                c.send_raw(data)
                expect_closed(c, what)
            check_broker_healthy(b, "after '%s'" % what)
        rss1 = b.rss_kb()
        comment("rss_kb before=%s after=%s" % (rss0, rss1))
        check(rss1 - rss0 < 50 * 1024 * (8 if ASAN else 1),
              "RSS grew by %d kB on bad lengths" % (rss1 - rss0))


@test
def test_garbage_bytes_close_connection():
    """Non-Kafka traffic: an HTTP request, a TLS ClientHello, a negative frame size, a zero
    frame size, and a frame of seeded random bytes with an unknown api key (0x7f7f). Each:
    the broker closes the connection (never a crash or hang) and keeps serving others."""
    rnd = random.Random(1234)
    junk = bytes(rnd.getrandbits(8) for _ in range(200))
    cases = [
        ("http", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        ("tls", bytes.fromhex("160301020001000200" + "03") + junk[:100]),
        ("negative size", b"\xff\xff\xff\xf0" + junk[:16]),
        ("zero size", b"\x00\x00\x00\x00" + junk[:16]),
        ("random frame", frame(b"\x7f\x7f" + junk)),
    ]
    with broker() as b:
        for what, data in cases:
            with KafkaRaw(b) as c:
                try:
                    c.send_raw(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                expect_closed(c, what)
            check_broker_healthy(b, "after garbage '%s'" % what)


@test
def test_silent_client_closed_after_connections_max_idle_ms():
    """connections.max.idle.ms=1000: a client that connects and sends nothing is closed
    after about a second (not before ~0.9 s), while a client sending a request every 300 ms
    stays open for the whole 3 s. While the silent connection is open others are served."""
    with broker(connections_max_idle_ms=1000) as b:
        silent = KafkaRaw(b)
        t0 = time.monotonic()
        check_broker_healthy(b, "while a silent connection is open")
        active = KafkaRaw(b)
        closed_at = None
        while time.monotonic() - t0 < 3.0:
            check(active.api_versions(0)["error_code"] == 0, "active client error")
            if closed_at is None:
                if silent.wait_closed(0.3):
                    closed_at = time.monotonic() - t0
            else:
                time.sleep(0.3)
        active.close()
        if closed_at is None:
            check(silent.wait_closed(10 * SLOW),
                  "silent connection still open %.0fs after connect (idle limit 1 s)"
                  % (time.monotonic() - t0))
            closed_at = time.monotonic() - t0
        silent.close()
        comment("silent connection closed after %.2fs" % closed_at)
        check(closed_at >= 0.9, "silent connection closed after %.2fs, before the 1 s idle "
              "limit" % closed_at)
        check_broker_healthy(b, "after the idle close")


@test
def test_client_not_reading_responses_memory_bounded():
    """A client with a tiny receive buffer pipelines ApiVersions v3 requests (small request,
    large response) as fast as it can and never reads: the broker must stop reading from
    that socket (back-pressure) instead of queueing responses without bound. VmRSS of the
    broker is sampled throughout; growth must stay under 50 MB (under ASan the allocator
    quarantine holds up to 256 MB of freed memory, so the bound there is 400 MB). Then the
    client goes away and others are still served."""
    with broker() as b:
        check_broker_healthy(b, "before the test")
        rss0 = b.rss_kb()
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, b.port))
        s.setblocking(False)
        one = b"".join(request_frame(API_VERSIONS, 3, i, api_versions_body(3))
                       for i in range(1000))
        sent = 0
        peak = rss0
        t0 = last_progress = time.monotonic()
        budget = 64 << 20
        limit_s = 60.0
        pending = memoryview(one)
        while sent < budget and time.monotonic() - t0 < limit_s:
            try:
                n = s.send(pending)
                sent += n
                pending = pending[n:]
                if not len(pending):
                    pending = memoryview(one)
                last_progress = time.monotonic()
            except BlockingIOError:
                if time.monotonic() - last_progress > 3.0:
                    break  # broker stopped reading: back-pressure works
                time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                break  # the broker may also drop such a client
            r = b.rss_kb()
            check(r is not None, "broker died while the client was not reading")
            peak = max(peak, r)
        stalled = time.monotonic() - last_progress > 3.0
        r = b.rss_kb()
        peak = max(peak, r or 0)
        comment("sent %.1f MB of requests in %.1fs, writes stalled=%s; rss_kb before=%d "
                "peak=%d" % (sent / 1e6, time.monotonic() - t0, stalled, rss0, peak))
        bound = (400 if ASAN else 50) * 1024
        check(peak - rss0 < bound, "broker RSS grew by %d kB (bound %d kB) for a client that "
              "does not read" % (peak - rss0, bound))
        s.close()
        check_broker_healthy(b, "after the non-reading client")


# -- configuration errors ------------------------------------------------------------------

def expect_config_error(props, needle, what):
    """Start-up must fail: non-zero exit, and the last thing on stderr is a line naming
    the culprit (earlier log lines may name it too; a config *parse* error is checked to be
    the only line by the callers)."""
    rc, err, out = start_expect_exit(props)
    comment("%s: exit %d, stderr: %s" % (what, rc, err.strip().replace("\n", " | ")))
    check(rc != 0, "%s: exit status 0, expected non-zero" % what)
    lines = [l for l in err.splitlines() if l.strip()]
    check(lines and needle in lines[-1], "%s: the last stderr line does not name %r; stderr:\n%s"
          % (what, needle, err))
    return lines


@test
def test_config_unknown_property_refused():
    """--override no.such.property=1: non-zero exit, one stderr line naming it."""
    lines = expect_config_error({"no.such.property": "1"}, "no.such.property",
                                "unknown property")
    check(len(lines) == 1, "want one stderr line for a config error, got:\n%s"
          % "\n".join(lines))


@test
def test_config_bad_value_refused():
    """num.partitions=abc (not a number), and num.partitions=0 (out of range): non-zero
    exit, one stderr line naming num.partitions."""
    for v in ("abc", "0"):
        lines = expect_config_error({"num.partitions": v}, "num.partitions",
                                    "num.partitions=" + v)
        check(len(lines) == 1, "want one stderr line for a config error, got:\n%s"
              % "\n".join(lines))


@test
def test_config_listener_port_in_use_refused():
    """The listener's port is already bound and listening by another socket: gregor must
    exit non-zero, its last stderr line naming the listener (its port), not run without a
    listener."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        s.listen(1)
        port = s.getsockname()[1]
        expect_config_error({"listeners": "PLAINTEXT://%s:%d" % (HOST, port)},
                            str(port), "listener in use")
    finally:
        s.close()


@test
def test_config_unusable_log_dir_refused():
    """log.dirs under a regular file (cannot be created): non-zero exit, the last stderr line
    naming the directory."""
    d = tempfile.mkdtemp(prefix="gregor-cfg-")
    try:
        f = os.path.join(d, "plainfile")
        with open(f, "w") as fh:
            fh.write("not a directory\n")
        bad = os.path.join(f, "data")
        expect_config_error({"log.dirs": bad}, bad, "log dir under a file")
    finally:
        import shutil
        shutil.rmtree(d, ignore_errors=True)


# -- process behaviour ---------------------------------------------------------------------

@test
def test_sigterm_exits_zero_quickly():
    """SIGTERM (with a client connected and idle) and SIGINT: exit status 0 within 5 s."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        with broker() as b:
            c = KafkaRaw(b)
            check(c.api_versions(3)["error_code"] == 0, "ApiVersions")
            t0 = time.monotonic()
            b.stop(timeout=5.0, sig=sig)
            comment("%s -> exit in %.0f ms" % (signal.Signals(sig).name,
                                               (time.monotonic() - t0) * 1000))
            check(c.wait_closed(5 * SLOW), "client connection not closed on shutdown")
            c.close()


@test
def test_sigterm_right_after_start():
    """SIGTERM as soon as the port accepts connections (start-up work such as controller
    election and broker registration may still be in flight), 30 times: always exit 0."""
    for i in range(30):
        b = broker()
        b.start()
        b.stop()


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


@test
def test_startup_time_and_idle_footprint():
    """Time from exec to accepting connections (bound 2 s), idle RSS and idle CPU (an idle
    broker sleeps: under 5% of a core over 3 s) are printed as # lines."""
    times = []
    for _ in range(3):
        with broker() as b:
            times.append(b.startup_ms)
            check_broker_healthy(b)
            time.sleep(0.5)
            rss = b.rss_kb()
            t0 = cpu_ticks(b.pid)
            time.sleep(3.0)
            ticks = cpu_ticks(b.pid) - t0
    hz = os.sysconf("SC_CLK_TCK")
    cpu_pct = 100.0 * ticks / hz / 3.0
    comment("startup_ms=%.0f (min of %s)" % (min(times), ", ".join("%.0f" % t for t in times)))
    comment("idle_rss_kb=%d" % rss)
    comment("idle_cpu_pct=%.1f" % cpu_pct)
    check(min(times) <= 2000 * SLOW, "start-up took %.0f ms" % min(times))
    check(cpu_pct < 5.0 * SLOW, "idle broker used %.1f%% CPU" % cpu_pct)


if __name__ == "__main__":
    run_tests()
