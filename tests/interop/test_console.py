"""Web console (console.listener): JSON API and pages, driven by real clients and a browser.

A broker with console.listener=http://:0 (loopback, a free port read from its start-up line)
gets records from confluent-kafka producers: text records, a binary value with headers, and
150 lz4-compressed records. The JSON API must show the broker, the topic's partitions with the
right end offsets, and the records (the binary value in hex, compressed batches decoded,
pages capped at 100); a consumer group's members, committed offsets and lag; topic creation
and deletion only with the console's header and origin. Bad input (unknown topic or partition, negative/huge/non-numeric offset
or limit, offset past the end, unknown path, POST) gets a 4xx with a JSON message, never a 500
or a hang. A second broker (samples every 500 ms) checks the changes added for issue 21: a
topic config set and removed through the API is what AdminClient.describe_configs reports (bad
values 400); browsing by timestamp starts at the first record at or after it; a group's
offsets reset to earliest/latest/an offset/a timestamp only while the group is empty (409
otherwise), after which its consumer re-reads from the start; the lag history and the topic's
bytes-in rates show the samples. Then, when /usr/bin/chromium exists, headless Chromium loads each page, and its DOM
must show the brokers, partitions and records; a screenshot of each page (1280x800) is saved
in the test's temporary folder (copied to $GREGOR_CONSOLE_SCREENSHOTS when set). Without
Chromium the browser part is skipped and says so.
asan-smoke
"""
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, check, comment, fail, run_tests,  # noqa: E402
                     start_expect_exit, test, wait_until)

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
TOPIC = "console-demo"
BINARY = b"\x00\xff\xfe\x01gregor\x80"
TEXT_RECORDS = [("k%d" % i, "hello %d" % i) for i in range(5)]
LZ4_RECORDS = 150


def console_url(b):
    """The console's base URL from the broker's start-up line."""
    def found():
        m = re.search(r"web console on (http://[^/\s]+)/", open(b.log_path).read())
        return m.group(1) if m else None
    wait_until(lambda: found() is not None, 5 * SLOW, what="the console start-up line")
    return found()


def http(url, method="GET", headers=None):
    """(status, content type, body bytes); every request must answer within 10 s."""
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10 * SLOW) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def api(base, path):
    status, ctype, body = http(base + "/api" + path)
    check(status == 200, "GET /api%s: HTTP %d %r" % (path, status, body[:300]))
    check(ctype.startswith("application/json"), "GET /api%s: content type %r" % (path, ctype))
    return json.loads(body)


def produce_all(bootstrap):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, num_partitions=3, replication_factor=1)]).values():
        f.result(timeout=10 * SLOW)
    errors = []

    def cb(err, msg):
        if err is not None:
            errors.append(err)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for k, v in TEXT_RECORDS:
        p.produce(TOPIC, key=k.encode(), value=v.encode(), partition=0, on_delivery=cb)
    p.produce(TOPIC, key=b"bin", value=BINARY, partition=1,
              headers=[("trace", b"abc"), ("raw", b"\xff\x00")], on_delivery=cb)
    p.produce(TOPIC, key=b"json", value=b'{"order": 7, "items": ["a", "b"]}', partition=1,
              on_delivery=cb)
    check(p.flush(15 * SLOW) == 0, "producer did not deliver everything")
    z = Producer({"bootstrap.servers": bootstrap, "compression.type": "lz4", "linger.ms": 20})
    for i in range(LZ4_RECORDS):
        z.produce(TOPIC, key=b"z%d" % i, value=b"compressed value %d" % i, partition=2,
                  on_delivery=cb)
    check(z.flush(15 * SLOW) == 0, "lz4 producer did not deliver everything")
    check(not errors, "delivery errors: %r" % errors[:3])


GROUP = "console-group"


def console_broker():
    return Broker({"console.listener": "http://:0", "group.initial.rebalance.delay.ms": 0,
                   "console.sample.interval.ms": 500}, name="console")


def join_group(bootstrap):
    """A consumer in GROUP that owns every partition and committed 3 on p0 and 100 on p2
    (lags 2, -, 50). The caller closes it."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "client.id": "console-test"})
    c.subscribe([TOPIC])
    deadline = time.monotonic() + 20 * SLOW
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.2)
    check(len(c.assignment()) == 3, "consumer got %r" % c.assignment())
    c.commit(offsets=[TopicPartition(TOPIC, 0, 3), TopicPartition(TOPIC, 2, 100)],
             asynchronous=False)
    return c


def check_groups_api(base, bootstrap):
    c = join_group(bootstrap)
    try:
        gs = api(base, "/groups")["groups"]
        check(any(g["group_id"] == GROUP for g in gs), "groups %r" % gs)
        g = api(base, "/groups/" + GROUP)
        check(g["state"] == "Stable" and len(g["members"]) == 1
              and g["members"][0]["client_id"] == "console-test"
              and len(g["members"][0]["assignment"]) == 3, "group %r" % g)
        offs = {(o["topic"], o["partition"]): (o["committed"], o["lag"]) for o in g["offsets"]}
        check(offs == {(TOPIC, 0): (3, 2), (TOPIC, 2): (100, LZ4_RECORDS - 100)},
              "group offsets and lag %r" % offs)
    finally:
        c.close()
    g = api(base, "/groups/" + GROUP)
    check(g["state"] == "Empty" and g["members"] == [], "group after close %r" % g)
    status, _, body = http(base + "/api/groups/no-such-group")
    check(status == 404 and b"unknown consumer group" in body, "unknown group: %d %r"
          % (status, body[:200]))


def check_json_api(b, base):
    o = api(base, "/overview")
    check(len(o["brokers"]) == 1, "overview brokers: %r" % o["brokers"])
    br = o["brokers"][0]
    check(br["port"] == b.port and br["host"] == HOST and br["fenced"] is False
          and br["state"] == "alive", "overview broker: %r" % br)
    check(o["controller_id"] == br["id"], "controller %r, broker %r" % (o["controller_id"], br))
    check(o["cluster_id"] and o["topics"] >= 1 and o["partitions"] >= 3, "overview: %r" % o)
    check(o["under_replicated_partitions"] == 0 and o["offline_partitions"] == 0,
          "overview health: %r" % o)
    check(o["local"]["records_in"] >= len(TEXT_RECORDS) + 2 + LZ4_RECORDS, "traffic: %r" % o)

    topics = {t["name"]: t for t in api(base, "/topics")["topics"]}
    t = topics.get(TOPIC)
    check(t is not None and t["partitions"] == 3 and t["replication_factor"] == 1
          and t["local_size"] > 0, "topic list entry: %r" % t)

    d = api(base, "/topics/" + TOPIC)
    ends = [p["log_end_offset"] for p in d["partitions"]]
    check(ends == [len(TEXT_RECORDS), 2, LZ4_RECORDS], "end offsets %r" % ends)
    for p in d["partitions"]:
        check(p["leader"] == br["id"] and p["replicas"] == [br["id"]] and p["isr"] == [br["id"]]
              and p["osr"] == [] and p["hosted"] and p["log_start_offset"] == 0
              and p["high_watermark"] == p["log_end_offset"] and p["size"] > 0,
              "partition %r" % p)

    m = api(base, "/topics/%s/partitions/0/messages" % TOPIC)
    got = [(r["key"]["data"], r["value"]["data"]) for r in m["records"]]
    check(got == TEXT_RECORDS, "partition 0 records %r" % got)
    check([r["offset"] for r in m["records"]] == list(range(5)) and m["next_offset"] == 5,
          "offsets %r" % m)

    m = api(base, "/topics/%s/partitions/1/messages?offset=0&limit=10" % TOPIC)
    v = m["records"][0]["value"]
    check(v == {"encoding": "hex", "data": BINARY.hex(), "length": len(BINARY),
                "truncated": False}, "binary value %r" % v)
    hs = m["records"][0]["headers"]
    check(hs[0]["key"]["data"] == "trace" and hs[0]["value"]["data"] == "abc"
          and hs[1]["value"] == {"encoding": "hex", "data": "ff00", "length": 2,
                                 "truncated": False}, "headers %r" % hs)
    check(m["records"][1]["value"]["encoding"] == "text", "json value %r" % m["records"][1])

    m = api(base, "/topics/%s/partitions/2/messages?offset=0&limit=100" % TOPIC)
    check(m["count"] == 100 and m["next_offset"] == 100, "lz4 page 1: %d records, next %r"
          % (m["count"], m["next_offset"]))
    check(all(r["value"]["data"] == "compressed value %d" % r["offset"] for r in m["records"]),
          "lz4 values decoded")
    m = api(base, "/topics/%s/partitions/2/messages?offset=120&limit=100" % TOPIC)
    check([r["offset"] for r in m["records"]] == list(range(120, LZ4_RECORDS))
          and m["next_offset"] == LZ4_RECORDS, "lz4 page from the middle of a batch: %r"
          % [r["offset"] for r in m["records"]][:5])
    m = api(base, "/topics/%s/partitions/2/messages?offset=%d" % (TOPIC, LZ4_RECORDS))
    check(m["count"] == 0 and m["records"] == [], "page at the log end: %r" % m)


BAD_INPUT = [
    ("/api/topics/no-such-topic", 404, "unknown topic"),
    ("/api/topics/no-such-topic/partitions/0/messages", 404, "unknown topic"),
    ("/api/topics/%s/partitions/7/messages" % TOPIC, 404, "no partition 7"),
    ("/api/topics/%s/partitions/x/messages" % TOPIC, 400, "partition"),
    ("/api/topics/%s/partitions/99999999999/messages" % TOPIC, 400, "partition"),
    ("/api/topics/%s/partitions/0/messages?offset=-1" % TOPIC, 400, "offset"),
    ("/api/topics/%s/partitions/0/messages?offset=abc" % TOPIC, 400, "offset"),
    ("/api/topics/%s/partitions/0/messages?offset=%s" % (TOPIC, "9" * 40), 400, "offset"),
    ("/api/topics/%s/partitions/0/messages?offset=6" % TOPIC, 400, "past the log end"),
    ("/api/topics/%s/partitions/0/messages?limit=0" % TOPIC, 400, "limit"),
    ("/api/topics/%s/partitions/0/messages?limit=-5" % TOPIC, 400, "limit"),
    ("/api/topics/%s/partitions/0/messages?limit=1000000" % TOPIC, 400, "maximum page size"),
    ("/api/topics/%s/partitions/0/other" % TOPIC, 404, "no such API path"),
    ("/api/topics/" + "x" * 300, 400, "1 to 249"),
    ("/api/nothing-here", 404, "no such API path"),
    ("/api/groups/" + "g" * 2000, 400, "group id"),
    ("/no/such/page", 404, "no such page"),
]


def check_bad_input(base):
    for path, want, text in BAD_INPUT:
        t0 = time.monotonic()
        status, ctype, body = http(base + path)
        check(time.monotonic() - t0 < 5 * SLOW, "%s took too long" % path)
        check(status == want, "GET %s: HTTP %d (want %d) %r" % (path, status, want, body[:200]))
        err = json.loads(body).get("error", "")
        check(text in err, "GET %s: error %r does not mention %r" % (path, err, text))
    status, _, body = http(base + "/api/overview", method="POST")
    check(status == 403, "POST /api/overview without the console header: HTTP %d" % status)
    status, _, body = http(base + "/api/overview", "POST", {"X-Gregor-Console": "1"})
    check(status == 405, "POST /api/overview: HTTP %d" % status)
    status, _, body = http(base + "/topics", method="POST")
    check(status == 405, "POST to a page: HTTP %d" % status)
    for path in ("/", "/topics", "/topics/" + TOPIC, "/groups", "/groups/x", "/assets/app.js",
                 "/assets/style.css"):
        status, ctype, body = http(base + path)
        check(status == 200 and body, "GET %s: HTTP %d" % (path, status))


def check_topic_actions(base):
    mark = {"X-Gregor-Console": "1"}
    create = base + "/api/topics?name=console-new&partitions=2"
    status, _, body = http(create, "POST")
    check(status == 403, "POST without the console header: %d %r" % (status, body[:200]))
    status, _, _ = http(create, "POST", dict(mark, Origin="http://evil.example"))
    check(status == 403, "POST from another origin: %d" % status)
    status, _, body = http(create, "POST", mark)
    check(status == 201, "create: %d %r" % (status, body[:300]))
    wait_until(lambda: http(base + "/api/topics/console-new")[0] == 200, 5 * SLOW,
               what="the new topic in the console")
    check(len(api(base, "/topics/console-new")["partitions"]) == 2, "new topic partitions")
    for url, want in ((create, 409), (base + "/api/topics?name=bad/name", 400),
                      (base + "/api/topics?name=x&partitions=0", 400),
                      (base + "/api/topics?name=x&partitions=99999999", 400),
                      (base + "/api/topics?name=x&replication_factor=5", 400),
                      (base + "/api/topics", 400)):
        status, _, body = http(url, "POST", mark)
        check(status == want and json.loads(body)["error"],
              "POST %s: %d (want %d) %r" % (url, status, want, body[:200]))
    status, _, body = http(base + "/api/topics/console-new", "DELETE", mark)
    check(status == 200, "delete: %d %r" % (status, body[:300]))
    wait_until(lambda: http(base + "/api/topics/console-new")[0] == 404, 5 * SLOW,
               what="the deleted topic gone from the console")
    status, _, _ = http(base + "/api/topics/console-new", "DELETE", mark)
    check(status == 404, "delete again: %d" % status)
    status, _, _ = http(base + "/api/topics/" + TOPIC, "PUT", mark)
    check(status == 405, "PUT: %d" % status)


@test
def test_console_json_api_shows_cluster_topics_and_records():
    with console_broker() as b:
        base = console_url(b)
        log = open(b.log_path).read()
        check("loopback only; no security: console open to anyone on this host" in log,
              "start-up line says loopback only and no security")
        s = api(base, "/session")
        check(s == {"security": False, "loopback": True,
                    "notice": "no security: console open to anyone on this host"},
              "/api/session without security: %r" % s)
        produce_all(b.bootstrap)
        check_json_api(b, base)
        check_groups_api(base, b.bootstrap)
        check_bad_input(base)
        check_topic_actions(base)


MARK = {"X-Gregor-Console": "1"}
CFG_TOPIC = "console-cfg"
RESET_TOPIC = "console-reset"
RESET_GROUP = "console-reset-group"
T0 = 1700000000000
T1 = T0 + 10000


def described(admin, topic):
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    entries = admin.describe_configs([res])[res].result(timeout=10 * SLOW)
    return {k: (v.value, v.source) for k, v in entries.items()}


def check_config_change(base, admin):
    for f in admin.create_topics([NewTopic(CFG_TOPIC, 1, 1)]).values():
        f.result(timeout=10 * SLOW)
    url = base + "/api/topics/%s/configs?name=%%s&value=%%s" % CFG_TOPIC
    status, _, body = http(url % ("retention.ms", "3600000"), "POST")
    check(status == 403, "config change without the console header: %d" % status)
    for name, value in (("retention.ms", "3600000"), ("cleanup.policy", "compact")):
        status, _, body = http(url % (name, value), "POST", MARK)
        check(status == 200 and json.loads(body)["changed"], "set %s: %d %r" % (name, status, body))
    # AlterConfigs replaces the overrides: the first change must survive the second.
    wait_until(lambda: described(admin, CFG_TOPIC)["cleanup.policy"][0] == "compact", 5 * SLOW,
               what="cleanup.policy=compact in DescribeConfigs")
    d = described(admin, CFG_TOPIC)
    check(d["retention.ms"][0] == "3600000", "retention.ms after two changes: %r" % (d["retention.ms"],))
    for bad, want, text in ((url % ("retention.ms", "soon"), 400, "retention.ms"),
                            (url % ("no.such.config", "1"), 400, "no.such.config"),
                            (base + "/api/topics/%s/configs?name=retention.ms" % CFG_TOPIC, 400,
                             "value"),
                            (base + "/api/topics/no-such-topic/configs?name=retention.ms&value=1",
                             404, "unknown topic")):
        status, _, body = http(bad, "POST", MARK)
        check(status == want and text in json.loads(body)["error"],
              "POST %s: %d (want %d) %r" % (bad, status, want, body[:300]))
    check(described(admin, CFG_TOPIC)["retention.ms"][0] == "3600000", "bad values changed nothing")
    status, _, body = http(base + "/api/topics/%s/configs?name=cleanup.policy" % CFG_TOPIC,
                           "DELETE", MARK)
    check(status == 200, "remove an override: %d %r" % (status, body[:300]))
    wait_until(lambda: described(admin, CFG_TOPIC)["cleanup.policy"][0] == "delete", 5 * SLOW,
               what="cleanup.policy back to its default")
    check(described(admin, CFG_TOPIC)["retention.ms"][0] == "3600000", "other override kept")


def produce_timed(bootstrap):
    """Ten records on RESET_TOPIC: offsets 0-4 at T0, 5-9 at T1."""
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(10):
        p.produce(RESET_TOPIC, value=b"r%d" % i, partition=0, timestamp=T0 if i < 5 else T1)
        p.flush(10 * SLOW)
    check(p.flush(10 * SLOW) == 0, "timed records not delivered")


def check_timestamp_browsing(base):
    path = "/topics/%s/partitions/0/messages?timestamp=%%d" % RESET_TOPIC
    for ts, first in ((0, 0), (T0, 0), (T0 + 1, 5), (T1, 5)):
        m = api(base, path % ts)
        check(m["records"] and m["records"][0]["offset"] == first
              and m["records"][0]["timestamp"] >= ts, "timestamp %d: %r" % (ts, m["records"][:1]))
    m = api(base, path % (T1 + 1))
    check(m["count"] == 0, "timestamp after every record: %r" % m)
    status, _, body = http(base + "/api" + path % T0 + "&offset=1")
    check(status == 400, "offset and timestamp together: %d" % status)
    status, _, body = http(base + "/api/topics/%s/partitions/0/messages?timestamp=x" % RESET_TOPIC)
    check(status == 400 and b"timestamp" in body, "bad timestamp: %d %r" % (status, body))


def group_consumer(bootstrap):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": RESET_GROUP,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest"})


def first_offset_read(c):
    deadline = time.monotonic() + 20 * SLOW
    while time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is not None and m.error() is None:
            return m.offset()
    fail("the consumer read nothing")


def reset(base, args):
    status, _, body = http(base + "/api/groups/%s/offsets?%s" % (RESET_GROUP, args), "POST", MARK)
    return status, json.loads(body)


def lag_now(base):
    status, _, body = http(base + "/api/groups/%s/lag" % RESET_GROUP)
    if status != 200:
        return None
    pts = json.loads(body)["points"]
    return pts[-1]["lag"] if pts else None


def check_offset_reset(base, bootstrap):
    c = group_consumer(bootstrap)
    c.subscribe([RESET_TOPIC])
    check(first_offset_read(c) == 0, "first read")
    c.commit(offsets=[TopicPartition(RESET_TOPIC, 0, 10)], asynchronous=False)
    status, body = reset(base, "topic=%s&to=earliest" % RESET_TOPIC)
    check(status == 409 and "empty" in body["error"], "reset of an active group: %d %r"
          % (status, body))
    wait_until(lambda: lag_now(base) == 0, 10 * SLOW, what="lag 0 in the lag history")
    c.close()
    for args, want in (("topic=%s&to=timestamp&value=%d" % (RESET_TOPIC, T1), 5),
                       ("topic=%s&to=offset&value=999" % RESET_TOPIC, 10),
                       ("topic=%s&to=latest" % RESET_TOPIC, 10),
                       ("topic=%s&to=earliest&partition=0" % RESET_TOPIC, 0)):
        status, body = reset(base, args)
        check(status == 200 and body["offsets"] == [{"partition": 0, "offset": want}],
              "reset %s: %d %r" % (args, status, body))
    for args, want in (("topic=no-such-topic&to=earliest", 404), ("topic=%s&to=nowhere"
                       % RESET_TOPIC, 400), ("topic=%s&to=offset" % RESET_TOPIC, 400),
                       ("topic=%s&to=earliest&partition=3" % RESET_TOPIC, 404)):
        status, body = reset(base, args)
        check(status == want and body["error"], "reset %s: %d (want %d) %r"
              % (args, status, want, body))
    g = api(base, "/groups/" + RESET_GROUP)
    check([(o["partition"], o["committed"]) for o in g["offsets"]] == [(0, 0)],
          "committed after the reset: %r" % g["offsets"])
    wait_until(lambda: lag_now(base) == 10, 10 * SLOW, what="lag 10 in the lag history")
    c = group_consumer(bootstrap)
    try:
        c.subscribe([RESET_TOPIC])
        check(first_offset_read(c) == 0, "the group re-reads from the start after the reset")
    finally:
        c.close()
    h = api(base, "/groups/%s/lag" % RESET_GROUP)
    check(h["interval_ms"] == 500 and len(h["points"]) >= 2
          and all(p["time"] > T0 for p in h["points"]), "lag history %r" % h)
    status, _, _ = http(base + "/api/groups/never-seen-group/lag")
    check(status == 404, "lag of an unknown group: %d" % status)


def check_topic_rates(base):
    def rates():
        t = [t for t in api(base, "/topics")["topics"] if t["name"] == RESET_TOPIC]
        return t[0]["bytes_in_rate"] if t else []
    wait_until(lambda: any(r for r in rates() if r), 10 * SLOW,
               what="a positive bytes-in rate of %s" % RESET_TOPIC)
    check(len(rates()) <= 30, "at most 30 rates: %r" % rates())


@test
def test_console_config_change_offset_reset_timestamps_and_lag_history():
    with Broker({"console.listener": "http://:0", "group.initial.rebalance.delay.ms": 0,
                 "console.sample.interval.ms": 500}, name="console-actions") as b:
        base = console_url(b)
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        check_config_change(base, admin)
        for f in admin.create_topics([NewTopic(RESET_TOPIC, 1, 1)]).values():
            f.result(timeout=10 * SLOW)
        produce_timed(b.bootstrap)
        check_timestamp_browsing(base)
        check_topic_rates(base)
        check_offset_reset(base, b.bootstrap)


@test
def test_console_off_by_default_and_bad_listener_refused():
    with Broker(name="noconsole") as b:
        check("web console" not in open(b.log_path).read(), "console started without the property")
    rc, err, out = start_expect_exit({"console.listener": "127.0.0.1:80"})
    check(rc != 0 and "console.listener" in err + out, "bad value: rc %d %r" % (rc, err + out))


class TextCollector(html.parser.HTMLParser):
    """Text of the page's <main>, and table rows as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.rows, self.row, self.cell, self.text = [], None, None, []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


def browse(url, shot, workdir):
    """Loads url in headless Chromium; returns the parsed DOM after the page's scripts ran."""
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--user-data-dir=" + os.path.join(workdir, "chromium-profile"),
            "--virtual-time-budget=2000", "--window-size=1280,800",
            "--screenshot=" + shot, "--dump-dom", url]
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30 * SLOW, cwd=workdir)
    except subprocess.TimeoutExpired:
        fail("chromium did not finish loading %s" % url)
    dom = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0 and 'data-ready="true"' in dom,
          "chromium on %s: rc %d, page not ready; stderr %s" % (url, p.returncode,
                                                                p.stderr.decode()[-500:]))
    check(os.path.getsize(shot) > 1000, "screenshot %s is empty" % shot)
    t = TextCollector()
    t.feed(dom)
    t.dom = dom
    return t


@test
def test_console_pages_in_headless_chromium():
    if not os.path.exists(CHROMIUM):
        comment("SKIPPED the browser part: %s is not installed (apt-get install chromium); "
                "the JSON API is checked by the other tests" % CHROMIUM)
        return
    with console_broker() as b:
        base = console_url(b)
        produce_all(b.bootstrap)
        shots = os.path.join(b.dir, "screenshots")
        os.makedirs(shots)

        page = browse(base + "/", os.path.join(shots, "overview.png"), b.dir)
        check("no security: console open to anyone on this host" in "".join(page.text),
              "the header says the console is open: %r" % "".join(page.text)[:300])
        brokers = [r for r in page.rows if r and r[0].startswith("1")]
        check(brokers and brokers[0][1:5] == [HOST, str(b.port), "–", "alive"],
              "overview broker row: %r" % page.rows)

        page = browse(base + "/topics", os.path.join(shots, "topics.png"), b.dir)
        check(any(r[:3] == [TOPIC, "3", "1"] for r in page.rows), "topics rows %r" % page.rows)
        check(any(r[0] == TOPIC and r[7].endswith("/s") for r in page.rows)
              and 'class="spark"' in page.dom, "bytes-in sparkline of %s: %r" % (TOPIC, page.rows))
        check('id="create-topic"' in page.dom and "Create topic" in page.dom,
              "topics page has the create form")

        page = browse(base + "/topics/" + TOPIC, os.path.join(shots, "topic.png"), b.dir)
        check('id="delete-topic"' in page.dom, "topic page has the delete button")
        check('id="config-topic"' in page.dom, "topic page has the config form")
        parts = {r[0]: r for r in page.rows if r and r[0] in ("0", "1", "2")}
        ends = [parts.get(p, [None] * 8)[7] for p in ("0", "1", "2")]
        check(ends == [str(len(TEXT_RECORDS)), "2", str(LZ4_RECORDS)],
              "topic page log end column %r (rows %r)" % (ends, page.rows))

        page = browse(base + "/topics/%s/partitions/1/messages" % TOPIC,
                      os.path.join(shots, "messages.png"), b.dir)
        recs = [r for r in page.rows if r and r[0] in ("0", "1")]
        want_hex = " ".join("%02x" % c for c in BINARY)
        check(len(recs) == 2 and recs[0][2].startswith("bin") and want_hex in recs[0][3]
              and "trace: abc" in recs[0][4], "binary record row %r" % recs[:1])
        check('"order": 7' in recs[1][3] and "JSON" in recs[1][3], "json row %r" % recs[1:])

        page = browse(base + "/topics/%s/partitions/0/messages?timestamp=0&limit=2" % TOPIC,
                      os.path.join(shots, "messages-page.png"), b.dir)
        recs = [r for r in page.rows if r and r[0].isdigit()]
        check([r[3] for r in recs] == ["hello 0", "hello 1"], "paged rows %r" % recs)

        c = join_group(b.bootstrap)
        c.close()
        page = browse(base + "/groups", os.path.join(shots, "groups.png"), b.dir)
        check(any(r[:2] == [GROUP, "Empty"] for r in page.rows), "groups rows %r" % page.rows)
        page = browse(base + "/groups/" + GROUP, os.path.join(shots, "group.png"), b.dir)
        lags = [r for r in page.rows if r and r[0] == TOPIC]
        check([r[1:] for r in lags] == [["0", "3", "5", "2"], ["2", "100", "150", "50"]],
              "group page offset rows %r" % page.rows)
        check(re.search(r'<form[^>]*id="reset-offsets"', page.dom),
              "the empty group's page has the reset form")
        check(re.search(r'id="lag-chart"><svg[^>]*><polyline', page.dom),
              "group page draws the lag chart")

        page = browse(base + "/topics/no-such-topic", os.path.join(shots, "unknown.png"), b.dir)
        text = "".join(page.text)
        check("Error 404" in text and "unknown topic 'no-such-topic'" in text,
              "unknown topic page text %r" % text[-400:])

        page = browse(base + "/topics/%s/partitions/0/messages?limit=5000" % TOPIC,
                      os.path.join(shots, "bad-limit.png"), b.dir)
        check("Error 400" in "".join(page.text), "huge page size message")

        keep = os.environ.get("GREGOR_CONSOLE_SCREENSHOTS")
        if keep:
            os.makedirs(keep, exist_ok=True)
            for f in os.listdir(shots):
                shutil.copy(os.path.join(shots, f), keep)
        comment("screenshots: %s" % ", ".join(sorted(os.listdir(shots))))


if __name__ == "__main__":
    run_tests()
