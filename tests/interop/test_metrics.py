"""Prometheus metrics and health endpoint (metrics.listener), and log.level.

A broker with metrics.listener serves GET /metrics in Prometheus text format 0.0.4 and
GET /health. Every scrape is parsed strictly: each line is a HELP/TYPE comment or a sample that
parses, every sample belongs to a family with one TYPE line (families contiguous, no duplicate
series), counters end in _total, histogram buckets are cumulative and non-decreasing in le
order with le="+Inf" equal to _count. Traffic from real clients (confluent-kafka producing,
kafka-python fetching) must show in the per-topic and per-API counters. With more than 1,024
descriptors open in the broker (1,100 idle Kafka connections) scrapes still answer (epoll).
asan-smoke
"""
import math
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, check, comment, fail, free_port,  # noqa: E402
                     run_tests, start_expect_exit, test, wait_until)

NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_value(s, line):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    try:
        return float(s)
    except ValueError:
        fail("bad sample value %r in line %r" % (s, line))


def parse_labels(s, i, line):
    """Parses {a="b",...} starting after '{'; returns (tuple of (k, v), index after '}')."""
    labels = []
    while True:
        if s[i] == "}":
            return tuple(labels), i + 1
        m = LABEL_NAME_RE.match(s, i)
        check(m is not None, "bad label name in %r" % line)
        name = m.group(0)
        i = m.end()
        check(s[i:i + 2] == '="', "label %s without =\" in %r" % (name, line))
        i += 2
        val = []
        while True:
            check(i < len(s), "unterminated label value in %r" % line)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                check(nxt in ("\\", '"', "n"), "bad escape in %r" % line)
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            else:
                val.append(c)
                i += 1
        check(name not in [k for k, _ in labels], "duplicate label %s in %r" % (name, line))
        labels.append((name, "".join(val)))
        if s[i] == ",":
            i += 1
        else:
            check(s[i] == "}", "expected , or } in %r" % line)


def family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and types.get(name[:-len(suffix)]) in ("histogram", "summary"):
            return name[:-len(suffix)]
    return None


def parse_exposition(text):
    """Strict parse. Returns {"types": {family: type}, "samples": {(name, labels): value}}."""
    check(text.endswith("\n"), "exposition does not end with a newline")
    types, helps, samples = {}, {}, {}
    order = []  # families in order of first sample
    for line in text.split("\n")[:-1]:
        check(line != "" and line == line.strip(), "blank or padded line %r" % line)
        if line.startswith("#"):
            parts = line.split(" ", 3)
            check(len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"),
                  "unexpected comment line %r" % line)
            name = parts[2]
            check(NAME_RE.fullmatch(name) is not None, "bad metric name in %r" % line)
            if parts[1] == "TYPE":
                check(len(parts) == 4 and parts[3] in TYPES, "bad TYPE line %r" % line)
                check(name not in types, "second TYPE for %s" % name)
                check(name not in order, "TYPE for %s after its samples" % name)
                types[name] = parts[3]
            else:
                check(name not in helps, "second HELP for %s" % name)
                helps[name] = parts[3] if len(parts) == 4 else ""
            continue
        m = NAME_RE.match(line)
        check(m is not None, "sample line does not start with a metric name: %r" % line)
        name = m.group(0)
        i = m.end()
        labels = ()
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i + 1, line)
        check(i < len(line) and line[i] == " ", "no space before the value in %r" % line)
        rest = line[i + 1:].split(" ")
        check(1 <= len(rest) <= 2, "bad sample line %r" % line)
        value = parse_value(rest[0], line)
        if len(rest) == 2:
            check(re.fullmatch(r"-?\d+", rest[1]) is not None, "bad timestamp in %r" % line)
        fam = family_of(name, types)
        check(fam is not None, "sample %s has no TYPE line before it" % name)
        if order and order[-1] != fam:
            check(fam not in order, "samples of %s are not contiguous" % fam)
        if not order or order[-1] != fam:
            order.append(fam)
        if types[fam] == "counter":
            check(name.endswith("_total"), "counter %s does not end in _total" % name)
            check(value >= 0, "negative counter %r" % line)
        key = (name, labels)
        check(key not in samples, "duplicate series %r" % line)
        samples[key] = value
    for fam, t in types.items():
        if t == "histogram":
            check_histogram(fam, samples)
    return {"types": types, "samples": samples}


def check_histogram(fam, samples):
    series = {}
    for (name, labels), v in samples.items():
        if name == fam + "_bucket":
            le = dict(labels).get("le")
            check(le is not None, "%s bucket without le" % fam)
            rest = tuple(kv for kv in labels if kv[0] != "le")
            series.setdefault(rest, []).append((parse_value(le, le), v))
    for rest, buckets in series.items():
        les = [le for le, _ in buckets]
        check(les == sorted(les), "%s%r: le out of order %r" % (fam, rest, les))
        check(les[-1] == math.inf, "%s%r: no +Inf bucket" % (fam, rest))
        counts = [v for _, v in buckets]
        check(all(a <= b for a, b in zip(counts, counts[1:])),
              "%s%r: buckets not cumulative %r" % (fam, rest, counts))
        count = samples.get((fam + "_count", rest))
        check(count is not None and (fam + "_sum", rest) in samples,
              "%s%r: missing _count or _sum" % (fam, rest))
        check(count == counts[-1], "%s%r: +Inf bucket %r != _count %r" % (fam, rest, counts[-1],
                                                                        count))


def http_get(port, path, method="GET"):
    """(status, content type, body text)."""
    req = urllib.request.Request("http://%s:%d%s" % (HOST, port, path), method=method)
    try:
        with urllib.request.urlopen(req, timeout=10 * SLOW) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode("utf-8")


def scrape(port):
    status, ctype, body = http_get(port, "/metrics")
    check(status == 200, "/metrics status %d" % status)
    check(ctype.startswith("text/plain") and "version=0.0.4" in ctype,
          "/metrics content type %r" % ctype)
    return parse_exposition(body)


def value(m, name, **labels):
    """The sample's value, 0 when absent (a series appears with its first event)."""
    for (n, ls), v in m["samples"].items():
        if n == name and dict(ls) == labels:
            return v
    return 0


def metrics_broker(extra=None):
    mport = free_port()
    props = {"metrics.listener": "http://%s:%d" % (HOST, mport)}
    props.update(extra or {})
    return Broker(props), mport


def wait_healthy(mport):
    def ok():
        try:
            return http_get(mport, "/health")[0] == 200
        except OSError:
            return False
    wait_until(ok, 15 * SLOW, what="/health to answer 200")


@test
def test_metrics_scrape_parses_and_counts_traffic():
    """Scrape, produce N records with confluent-kafka (acks=all) to a 2-partition topic, fetch
    them with kafka-python, scrape again: the topic's bytes/records in and out rose by at least
    what was sent, Produce and Fetch request counters and latency histograms rose, the
    flusher's fsync histogram counted flushes, log sizes cover the data, every scrape parses."""
    from confluent_kafka import Producer
    from kafka import KafkaConsumer, TopicPartition
    n, size, topic = 400, 100, "metrics-traffic"
    b, mport = metrics_broker({"num.partitions": "2"})
    with b:
        wait_healthy(mport)
        m0 = scrape(mport)
        for fam in ("gregor_requests_total", "gregor_request_duration_seconds",
                    "gregor_uptime_seconds", "gregor_open_fds", "gregor_partitions",
                    "gregor_under_replicated_partitions", "gregor_produce_purgatory_size",
                    "gregor_fetch_purgatory_size", "gregor_log_flush_duration_seconds",
                    "gregor_connections_open", "gregor_network_received_bytes_total",
                    "gregor_topic_bytes_in_total", "gregor_log_size_bytes"):
            check(fam in m0["types"], "family %s missing from /metrics" % fam)
        check(m0["types"]["gregor_request_duration_seconds"] == "histogram", "latency type")
        check(value(m0, "gregor_open_fds") > 0, "open fds %r" % value(m0, "gregor_open_fds"))

        p = Producer({"bootstrap.servers": b.bootstrap, "acks": "all", "linger.ms": 5})
        for i in range(n):
            p.produce(topic, value=b"v" * size, key=str(i).encode())
        left = p.flush(30 * SLOW)
        check(left == 0, "%d records not delivered" % left)

        c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=None,
                          enable_auto_commit=False, consumer_timeout_ms=int(10000 * SLOW))
        tps = [TopicPartition(topic, i) for i in range(2)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got = 0
        deadline = time.monotonic() + 30 * SLOW
        while got < n and time.monotonic() < deadline:
            for recs in c.poll(timeout_ms=1000).values():
                got += len(recs)
        c.close()
        check(got == n, "fetched %d of %d records" % (got, n))

        m1 = scrape(mport)
        for name, least in (("gregor_topic_records_in_total", n),
                            ("gregor_topic_bytes_in_total", n * size),
                            ("gregor_topic_records_out_total", n),
                            ("gregor_topic_bytes_out_total", n * size)):
            d = value(m1, name, topic=topic) - value(m0, name, topic=topic)
            comment("%s{topic=%s} rose by %d" % (name, topic, d))
            check(d >= least, "%s for %s rose by %d, want >= %d" % (name, topic, d, least))
        for api in ("Produce", "Fetch", "Metadata"):
            d = value(m1, "gregor_requests_total", api=api) - value(m0, "gregor_requests_total",
                                                                   api=api)
            check(d >= 1, "gregor_requests_total{api=%s} rose by %d" % (api, d))
            dc = (value(m1, "gregor_request_duration_seconds_count", api=api)
                  - value(m0, "gregor_request_duration_seconds_count", api=api))
            check(dc >= 1, "latency histogram count for %s rose by %d" % (api, dc))
        check(value(m1, "gregor_requests_total", api="Produce")
              == value(m1, "gregor_request_duration_seconds_count", api="Produce"),
              "Produce requests_total != latency _count")
        check(value(m1, "gregor_log_flush_duration_seconds_count") >
              value(m0, "gregor_log_flush_duration_seconds_count"),
              "acks=all produce did not count any fsync")
        size_sum = sum(value(m1, "gregor_log_size_bytes", topic=topic, partition=str(i))
                       for i in range(2))
        check(size_sum >= n * size, "log size of %s is %d" % (topic, size_sum))
        check(value(m1, "gregor_partitions") >= 2, "partitions %r" % value(m1, "gregor_partitions"))
        check(value(m1, "gregor_under_replicated_partitions") == 0, "under-replicated on 1 node")
        check(value(m1, "gregor_produce_purgatory_size") == 0, "produce purgatory not empty")
        check(value(m1, "gregor_network_received_bytes_total") >
              value(m0, "gregor_network_received_bytes_total"), "network bytes in did not rise")
        check(value(m1, "gregor_connections_accepted_total") >= 2, "connections accepted")
        check(value(m1, "gregor_controller_active") == 1, "single node is the active controller")


@test
def test_metrics_fetch_purgatory_gauge_counts_parked_fetch():
    """A fetch long-polling an empty partition (max.wait 3 s) shows as 1 in
    gregor_fetch_purgatory_size while it waits and 0 after it was answered."""
    from kafka import KafkaConsumer, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic
    b, mport = metrics_broker()
    with b:
        wait_healthy(mport)
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        for f in a.create_topics([NewTopic("idle", 1, 1)]).values():
            f.result(timeout=15 * SLOW)
        c = KafkaConsumer(bootstrap_servers=b.bootstrap, group_id=None,
                          fetch_max_wait_ms=3000, enable_auto_commit=False)
        c.assign([TopicPartition("idle", 0)])
        c.seek_to_end()
        import threading
        t = threading.Thread(target=lambda: c.poll(timeout_ms=2500))
        t.start()
        wait_until(lambda: value(scrape(mport), "gregor_fetch_purgatory_size") >= 1,
                   10 * SLOW, interval=0.1, what="a parked fetch in the purgatory gauge")
        t.join()
        c.close()
        wait_until(lambda: value(scrape(mport), "gregor_fetch_purgatory_size") == 0,
                   10 * SLOW, interval=0.1, what="the fetch purgatory gauge back to 0")


@test
def test_metrics_health_and_http_errors():
    """/health answers 200 "ok" naming the controller; an unknown path is 404, POST 405."""
    b, mport = metrics_broker()
    with b:
        wait_healthy(mport)
        status, _, body = http_get(mport, "/health")
        check(status == 200 and body.startswith("ok") and "controller" in body,
              "/health: %d %r" % (status, body))
        check(http_get(mport, "/nothing-here")[0] == 404, "unknown path not 404")
        check(http_get(mport, "/metrics", method="POST")[0] == 405, "POST not 405")
        check(any("serving /metrics" in l and str(mport) in l
                  for l in b.log_text().splitlines()), "no start-up line naming the endpoint")


def raise_fd_limit(want):
    """Raises this process's soft RLIMIT_NOFILE (the broker inherits it) to at least want;
    False when the hard limit is lower."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        return False
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return True


def broker_fd_count(b):
    return len(os.listdir("/proc/%d/fd" % b.proc.pid))


@test
def test_metrics_scrape_with_more_than_1024_descriptors_open():
    """1,100 idle Kafka connections push the broker's descriptors past FD_SETSIZE (1024), so
    the scrape's connection gets a descriptor numbered above 1024, which a select()-based
    server cannot watch (it refused such connections: the scrape hung or was reset). Bad input
    tried: none; the load is the descriptor count. Every scrape must answer and parse."""
    n = 1100
    if not raise_fd_limit(n + 1024):
        comment("SKIPPED: the hard descriptor limit is below %d" % (n + 1024))
        return
    b, mport = metrics_broker({"max.connections": "100000"})
    with b:
        wait_healthy(mport)
        socks = []
        try:
            for _ in range(n):
                socks.append(socket.create_connection((HOST, b.port), timeout=10 * SLOW))
            wait_until(lambda: broker_fd_count(b) > 1024 + 50, 20 * SLOW, interval=0.2,
                       what="the broker holding more than 1,074 descriptors")
            comment("broker descriptors open: %d" % broker_fd_count(b))
            for _ in range(3):
                t0 = time.monotonic()
                fams = scrape(mport)
                check(time.monotonic() - t0 < 5 * SLOW, "scrape took too long")
                check(any(f.startswith("gregor_") for f in fams["types"]), "scrape has no gregor_ family")
            status, _, body = http_get(mport, "/health")
            check(status == 200 and body.startswith("ok"), "/health: %d %r" % (status, body))
        finally:
            for s in socks:
                s.close()


def expect_one_line_error(props, needle, what):
    rc, err, out = start_expect_exit(props)
    comment("%s: exit %d, stderr: %s" % (what, rc, err.strip().replace("\n", " | ")))
    check(rc != 0, "%s: exit status 0, expected non-zero" % what)
    lines = [l for l in err.splitlines() if l.strip()]
    check(lines and needle in lines[-1], "%s: the last stderr line does not name %r; stderr:\n%s"
          % (what, needle, err))
    return lines


@test
def test_metrics_bad_listener_refused():
    """metrics.listener values that are not http://HOST:PORT stop start-up with one stderr
    line naming metrics.listener."""
    for v in ("nonsense", "http://127.0.0.1", "http://127.0.0.1:99999", "tcp://127.0.0.1:9644",
              "http://127.0.0.1:12ab", "http://[::1:9644"):
        lines = expect_one_line_error({"metrics.listener": v}, "metrics.listener", v)
        check(len(lines) == 1, "want one stderr line for %r, got:\n%s" % (v, "\n".join(lines)))


@test
def test_metrics_listener_port_in_use_refused():
    """The metrics port is taken: start-up fails, the last stderr line names metrics.listener."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        s.listen(1)
        port = s.getsockname()[1]
        expect_one_line_error({"metrics.listener": "http://%s:%d" % (HOST, port)},
                              "metrics.listener", "metrics port in use")
    finally:
        s.close()


def mapped_libraries(pid):
    """The shared objects mapped into process pid (from /proc/PID/maps)."""
    with open("/proc/%d/maps" % pid) as f:
        return {line.split()[-1].rsplit("/", 1)[-1] for line in f if ".so" in line}


@test
def test_metrics_off_without_listener():
    """Without metrics.listener no HTTP endpoint is started (no start-up line for it), and the
    HTTP library is not even loaded: libmicrohttpd (and the GnuTLS it initialises) and libsnappy
    (and its libstdc++) are loaded on first use only (base/dynlib.h), so an idle broker does not
    carry them. With metrics.listener, libmicrohttpd is loaded and serves."""
    with Broker() as b:
        libs = mapped_libraries(b.pid)
        check(any(l.startswith("libc.so") for l in libs), "maps not read: %r" % sorted(libs))
        # The sanitizer runtimes of the ASan/TSan builds bring libstdc++ themselves.
        sanitized = any(l.startswith(("libasan", "libtsan")) for l in libs)
        names = ("libmicrohttpd", "libgnutls", "libsnappy") + (() if sanitized else ("libstdc++",))
        for name in names:
            check(not any(l.startswith(name) for l in libs),
                  "%s loaded by an idle broker without HTTP listeners" % name)
    b2, mport = metrics_broker({})
    with b2:
        wait_healthy(mport)
        check(any(l.startswith("libmicrohttpd") for l in mapped_libraries(b2.pid)),
              "metrics.listener serves but libmicrohttpd is not mapped")
    check(not any("[metrics]" in l for l in b.log_text().splitlines()),
          "metrics endpoint mentioned without metrics.listener")


LOG_LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO |WARN |ERROR) "
                         r"\[[a-z_-]+\] \S")


@test
def test_log_lines_have_time_level_subsystem_and_log_level_is_honoured():
    """Default log.level=info: every log line is "TIME LEVEL [subsystem] message" and INFO
    lines appear; log.level=warn: a start and clean stop write no INFO line."""
    with Broker() as b:
        pass
    lines = [l for l in b.log_text().splitlines() if l.strip()]
    check(lines, "no log lines")
    bad = [l for l in lines if not LOG_LINE_RE.match(l)]
    check(not bad, "log lines not in TIME LEVEL [subsystem] form: %r" % bad[:3])
    check(any(" INFO  [" in l for l in lines), "no INFO line at the default level")
    with Broker({"log.level": "warn"}) as b2:
        pass
    info = [l for l in b2.log_text().splitlines() if " INFO " in l or " DEBUG " in l]
    check(not info, "log.level=warn still logs: %r" % info[:3])


if __name__ == "__main__":
    run_tests()
