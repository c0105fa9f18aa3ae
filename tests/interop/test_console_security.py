"""Web console with security on (issue 21): login against the broker's SASL users, the Kafka
API's ACLs on every read and action, sessions, CSRF, and bad input.

The broker has a PLAINTEXT listener (inter-broker; User:ANONYMOUS is a super user, as Kafka
requires of the broker principal) and a SASL_PLAINTEXT one with PLAIN users admin (super
user), alice and bob from JAAS, plus carol, a SCRAM user added to the metadata log with
`gregor user add`; StandardAuthorizer with ACLs: alice may READ topics prefixed "alice-" and
group "alice-g", carol may CREATE the topic "carol-new", bob has nothing.

Checked: without a session /api/ is 401 and pages redirect to /login; a wrong password is
refused (401) and repeated failures lock the address out (429 with Retry-After, even with the
right password); alice sees only her topics and groups (403 for the others, also for records
of a topic she may not READ), cannot create a topic (403, and kcat confirms nothing was
created), cannot change configs; carol (SCRAM, metadata log) creates the one topic her ACL
allows; admin (super user) creates and deletes; changes need the session's CSRF token; logout
ends the session; sessions expire (console.session.timeout.ms). Bad input tried: oversized
login body (declared and chunked), missing and undecodable fields, forged and malformed
cookies, a login form posted from another origin, an off-site `next`, a logout without the
token: each a 4xx within seconds, never a 500 or a hang. Headless Chromium (DevTools over a
pipe, cdp.py) signs in through the form, sees only alice's topic, and signs out; screenshots
go to the test's temporary folder (copied to $GREGOR_CONSOLE_SCREENSHOTS when set).
asan-smoke
Not in the ThreadSanitizer list, like test_console.py: the console's in-process librdkafka admin
client (groups, topic changes, the lag sampler) crashes TSan's race reporter (a broken shadow
stack in an rdk:broker thread, seen without any security configured too).
"""
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (GREGOR_BIN, HOST, SLOW, Broker, check, comment, fail,  # noqa: E402
                     free_port, run_tests, test, wait_until)

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402
from kafka.admin import (ACL, ACLOperation, ACLPermissionType,  # noqa: E402
                         ACLResourcePatternType, KafkaAdminClient, ResourcePattern, ResourceType)

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";')
STANDARD = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
MARK = {"X-Gregor-Console": "1"}


class SecureBroker(Broker):
    def __init__(self, extra=None, name="console-sec", console="http://:0"):
        self.ports = {"PLAINTEXT": free_port(), "SASL_PLAINTEXT": free_port()}
        props = {
            "listeners": ",".join("%s://%s:%d" % (n, HOST, p) for n, p in self.ports.items()),
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "authorizer.class.name": STANDARD,
            "super.users": "User:admin;User:ANONYMOUS",
            "num.partitions": "1",
            "offsets.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            "console.listener": console,
        }
        props.update(extra or {})
        Broker.__init__(self, props, name=name, port=self.ports["PLAINTEXT"])

    def admin(self):
        return KafkaAdminClient(bootstrap_servers="%s:%d" % (HOST, self.ports["SASL_PLAINTEXT"]),
                                security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                                sasl_plain_username="admin", sasl_plain_password="admin-secret",
                                request_timeout_ms=int(15000 * SLOW), api_version=(2, 5, 0))


def console_addr(b):
    def found():
        m = re.search(r"web console on http://([^/\s:]+):(\d+)/", open(b.log_path).read())
        return (m.group(1), int(m.group(2))) if m else None
    wait_until(lambda: found() is not None, 5 * SLOW, what="the console start-up line")
    return found()


class Http:
    """One console address; requests never follow redirects and must answer within 10 s."""

    def __init__(self, addr):
        self.host, self.port = addr
        self.base = "http://%s:%d" % addr

    def req(self, method, path, body=None, headers=None, cookie=None):
        h = dict(headers or {})
        if cookie:
            h["Cookie"] = "gregor_session=" + cookie
        if body is not None and "Content-Type" not in h:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        t0 = time.monotonic()
        c = http.client.HTTPConnection(self.host, self.port, timeout=10 * SLOW)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
        finally:
            c.close()
        check(time.monotonic() - t0 < 8 * SLOW, "%s %s took too long" % (method, path))
        check(r.status < 500, "%s %s: HTTP %d %r" % (method, path, r.status, data[:300]))
        return r.status, r.headers, data

    def json(self, path, cookie, want=200):
        status, _, body = self.req("GET", "/api" + path, cookie=cookie)
        check(status == want, "GET /api%s: HTTP %d (want %d) %r" % (path, status, want,
                                                                     body[:300]))
        return json.loads(body)

    def login(self, user, password, want=303, headers=None, extra=""):
        body = "user=%s&password=%s%s" % (user, password, extra)
        status, h, data = self.req("POST", "/login", body, headers)
        check(status == want, "login %s: HTTP %d (want %d) %r" % (user, status, want, data[:300]))
        if status != 303:
            return None, h, data
        m = re.match(r"gregor_session=([0-9a-f]{32}); ", h.get("Set-Cookie", ""))
        check(m is not None, "login %s: cookie %r" % (user, h.get("Set-Cookie")))
        return m.group(1), h, data

    def session(self, cookie):
        return self.json("/session", cookie)

    def change(self, method, path, cookie, csrf, want):
        hdrs = dict(MARK)
        if csrf is not None:
            hdrs["X-Gregor-CSRF"] = csrf
        status, _, body = self.req(method, "/api" + path, headers=hdrs, cookie=cookie)
        check(status == want, "%s /api%s: HTTP %d (want %d) %r" % (method, path, status, want,
                                                                    body[:300]))
        return json.loads(body) if body else None


def add_acls(b):
    a = b.admin()
    try:
        def acl(rtype, name, pattern, who, op):
            return ACL(who, "*", op, ACLPermissionType.ALLOW, ResourcePattern(rtype, name, pattern))
        res = a.create_acls([
            acl(ResourceType.TOPIC, "alice-", ACLResourcePatternType.PREFIXED, "User:alice",
                ACLOperation.READ),
            acl(ResourceType.GROUP, "alice-g", ACLResourcePatternType.LITERAL, "User:alice",
                ACLOperation.READ),
            acl(ResourceType.TOPIC, "carol-new", ACLResourcePatternType.LITERAL, "User:carol",
                ACLOperation.CREATE),
        ])
    finally:
        a.close()
    check(len(res["succeeded"]) == 3 and not res["failed"], "create_acls %r" % res)


def add_scram_user(b, user, password):
    p = subprocess.run([GREGOR_BIN, "user", "add", user, "--password", password, "-b",
                        b.bootstrap], capture_output=True, text=True, timeout=30 * SLOW)
    check(p.returncode == 0, "gregor user add %s: %r %r" % (user, p.stdout, p.stderr))


def setup_data(b):
    """Topics alice-orders (3 records), secret (1 record), carol-data; groups alice-g and
    other-g with committed offsets (over PLAINTEXT, as the super user ANONYMOUS)."""
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in
                                  ("alice-orders", "secret", "carol-data")]).values():
        f.result(timeout=10 * SLOW)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(3):
        p.produce("alice-orders", key=b"k%d" % i, value=b"order %d" % i)
    p.produce("secret", value=b"top secret")
    check(p.flush(15 * SLOW) == 0, "records not delivered")
    for g, t in (("alice-g", "alice-orders"), ("other-g", "secret")):
        c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": g})
        c.commit(offsets=[TopicPartition(t, 0, 1)], asynchronous=False)
        c.close()


def kcat_topics(b):
    out = subprocess.run(["kcat", "-b", b.bootstrap, "-L", "-J"], capture_output=True,
                         text=True, timeout=30 * SLOW).stdout
    return {t["topic"] for t in json.loads(out)["topics"]}


def check_no_session(h):
    for path in ("/api/overview", "/api/topics", "/api/session", "/api/groups",
                 "/api/topics/alice-orders/partitions/0/messages"):
        status, _, body = h.req("GET", path)
        check(status == 401 and "sign in" in json.loads(body)["error"],
              "GET %s without a session: %d %r" % (path, status, body[:200]))
    status, _, _ = h.req("POST", "/api/topics?name=x", headers=MARK)
    check(status == 401, "POST /api/topics without a session: %d" % status)
    for page in ("/", "/topics", "/groups/alice-g"):
        status, hdrs, _ = h.req("GET", page)
        check(status == 303 and hdrs["Location"] == "/login?next=" + page,
              "GET %s without a session: %d %r" % (page, status, hdrs.get("Location")))
    status, _, body = h.req("GET", "/login")
    check(status == 200 and b'id="login-form"' in body and b'method="post"' in body,
          "login page: %d" % status)
    status, _, _ = h.req("GET", "/assets/style.css")
    check(status == 200, "the stylesheet needs no session: %d" % status)


def check_alice(h, b):
    alice, hdrs, _ = h.login("alice", "alice-secret")
    cookie = hdrs["Set-Cookie"]
    check("HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
          and re.search(r"Max-Age=\d+", cookie), "cookie attributes %r" % cookie)
    check(hdrs["Location"] == "/", "after login: %r" % hdrs["Location"])
    s = h.session(alice)
    check(s["security"] and s["user"] == "alice" and s["principal"] == "User:alice"
          and re.fullmatch(r"[0-9a-f]{32}", s["csrf"]), "session %r" % s)
    names = [t["name"] for t in h.json("/topics", alice)["topics"]]
    check(names == ["alice-orders"], "alice's topics %r" % names)
    check(h.json("/overview", alice)["topics"] == 1, "overview counts only alice's topics")
    h.json("/topics/alice-orders", alice)
    for path in ("/topics/secret", "/topics/no-such", "/topics/secret/partitions/0/messages",
                 "/groups/other-g", "/groups/other-g/lag"):
        err = h.json(path, alice, want=403)["error"]
        check("User:alice may not" in err, "%s: %r" % (path, err))
    m = h.json("/topics/alice-orders/partitions/0/messages", alice)
    check([r["value"]["data"] for r in m["records"]] == ["order 0", "order 1", "order 2"],
          "alice reads her topic: %r" % m["records"])
    groups = [g["group_id"] for g in h.json("/groups", alice)["groups"]]
    check(groups == ["alice-g"], "alice's groups %r" % groups)
    g = h.json("/groups/alice-g", alice)
    check([o["topic"] for o in g["offsets"]] == ["alice-orders"], "alice-g offsets %r" % g)
    return alice, s["csrf"]


def check_alice_changes(h, b, alice, csrf):
    h.change("POST", "/topics?name=alice-new", alice, None, 403)  # no CSRF token
    h.change("POST", "/topics?name=alice-new", alice, "0" * 32, 403)  # wrong token
    err = h.change("POST", "/topics?name=alice-new", alice, csrf, 403)["error"]
    check("CREATE" in err, "create refused: %r" % err)
    check("alice-new" not in kcat_topics(b), "kcat sees a topic alice could not create")
    h.change("DELETE", "/topics/alice-orders", alice, csrf, 403)
    h.change("POST", "/topics/alice-orders/configs?name=retention.ms&value=1000", alice, csrf,
             403)
    h.change("POST", "/groups/alice-g/offsets?topic=secret&to=earliest", alice, csrf, 403)
    r = h.change("POST", "/groups/alice-g/offsets?topic=alice-orders&to=earliest", alice, csrf,
                 200)
    check(r["offsets"] == [{"partition": 0, "offset": 0}], "alice's reset %r" % r)


def check_carol_and_admin(h, b):
    h.login("carol", "alice-secret", want=401)
    carol, _, _ = h.login("carol", "carol-pw")  # SCRAM, from the metadata log
    csrf = h.session(carol)["csrf"]
    check(h.json("/topics", carol)["topics"] == [], "carol sees no topic")
    h.change("POST", "/topics?name=carol-other", carol, csrf, 403)
    h.change("POST", "/topics?name=carol-new", carol, csrf, 201)
    wait_until(lambda: "carol-new" in kcat_topics(b), 10 * SLOW, what="carol-new in kcat -L")
    check("carol-other" not in kcat_topics(b), "carol-other exists")
    admin, _, _ = h.login("admin", "admin-secret")
    csrf = h.session(admin)["csrf"]
    names = {t["name"] for t in h.json("/topics", admin)["topics"]}
    check({"alice-orders", "secret", "carol-data", "carol-new"} <= names, "admin sees %r" % names)
    h.change("POST", "/topics?name=admin-made&partitions=2", admin, csrf, 201)
    wait_until(lambda: "admin-made" in kcat_topics(b), 10 * SLOW, what="admin-made in kcat -L")
    h.change("DELETE", "/topics/admin-made", admin, csrf, 200)
    groups = {g["group_id"] for g in h.json("/groups", admin)["groups"]}
    check({"alice-g", "other-g"} <= groups, "admin's groups %r" % groups)


def check_logout(h, alice, csrf):
    status, _, _ = h.req("POST", "/logout", "csrf=" + "1" * 32, cookie=alice)
    check(status == 403, "logout with a wrong token: %d" % status)
    h.json("/topics", alice)  # still signed in
    status, hdrs, _ = h.req("POST", "/logout", "csrf=" + csrf, cookie=alice)
    check(status == 303 and hdrs["Location"] == "/login?signed_out=1"
          and "Max-Age=0" in hdrs.get("Set-Cookie", ""), "logout: %d %r" % (status, dict(hdrs)))
    status, _, _ = h.req("GET", "/api/topics", cookie=alice)
    check(status == 401, "the old cookie after logout: %d" % status)
    status, hdrs, _ = h.req("GET", "/", cookie=alice)
    check(status == 303, "a page with the old cookie: %d" % status)


def check_bad_input(h):
    status, _, body = h.req("POST", "/login", "user=alice&password=" + "x" * 10000)
    check(status == 413, "oversized login body: %d" % status)
    c = http.client.HTTPConnection(h.host, h.port, timeout=10 * SLOW)
    c.putrequest("POST", "/login")
    c.putheader("Transfer-Encoding", "chunked")
    c.putheader("Content-Type", "application/x-www-form-urlencoded")
    c.endheaders()
    for _ in range(10):
        chunk = b"a" * 1000
        c.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    c.send(b"0\r\n\r\n")
    r = c.getresponse()
    r.read()
    c.close()
    check(r.status == 413, "oversized chunked login body: %d" % r.status)
    for body in ("", "user=alice", "password=alice-secret", "user=&password=x",
                 "user=al%00ice&password=x", "user=alice&password=%zz", "garbage"):
        status, _, data = h.req("POST", "/login", body)
        check(status == 400 and b"Give a user name" in data, "login body %r: %d" % (body, status))
    h.login("alice", "alice-secret", want=403, headers={"Origin": "http://evil.example"})
    _, hdrs, _ = h.login("alice", "alice-secret", extra="&next=//evil.example/")
    check(hdrs["Location"] == "/", "off-site next: %r" % hdrs["Location"])
    _, hdrs, _ = h.login("alice", "alice-secret", extra="&next=/topics/alice-orders")
    check(hdrs["Location"] == "/topics/alice-orders", "next: %r" % hdrs["Location"])
    for cookie in ("0" * 32, "f" * 32, "zz" * 16, "0" * 31, "x" * 3000, ""):
        status, _, _ = h.req("GET", "/api/topics", cookie=cookie)
        check(status == 401, "forged cookie %r: %d" % (cookie[:40], status))
    status, _, _ = h.req("GET", "/api/topics", headers={"Cookie": "a=b; gregor_session"})
    check(status == 401, "malformed cookie header: %d" % status)
    status, _, _ = h.req("POST", "/logout", "csrf=x")
    check(status == 303, "logout without a session: %d" % status)
    status, _, _ = h.req("PUT", "/login", "x")
    check(status == 405, "PUT /login: %d" % status)


def check_throttle(h):
    for i in range(3):
        h.login("bob", "wrong-%d" % i, want=401)
    status, hdrs, body = h.req("POST", "/login", "user=bob&password=bob-secret")
    check(status == 429 and int(hdrs["Retry-After"]) >= 1 and b"Too many failed logins" in body,
          "login after 3 failures: %d %r" % (status, dict(hdrs)))
    time.sleep(int(hdrs["Retry-After"]) + 0.2)
    h.login("bob", "bob-secret")
    h.login("bob", "wrong", want=401)  # the success cleared the count


@test
def test_console_login_acls_csrf_logout_and_bad_input():
    with SecureBroker() as b:
        addr = console_addr(b)
        log = open(b.log_path).read()
        check("login required" in log and addr[0] == "127.0.0.1",
              "start-up line: loopback, login required")
        add_acls(b)
        add_scram_user(b, "carol", "carol-pw")
        setup_data(b)
        h = Http(addr)
        check_no_session(h)
        h.login("alice", "wrong-password", want=401)
        h.login("nobody", "alice-secret", want=401)
        alice, csrf = check_alice(h, b)
        check_alice_changes(h, b, alice, csrf)
        check_carol_and_admin(h, b)
        check_bad_input(h)
        check_logout(h, alice, csrf)
        check_throttle(h)
        check("failed login as 'alice' from 127.0.0.1" in b.log_text(), "failures are logged")


@test
def test_console_session_expires_and_plain_http_warning():
    with SecureBroker({"console.session.timeout.ms": "1500"}, name="console-exp",
                      console="http://0.0.0.0:0") as b:
        # The info line and the warning are two log writes: wait for the second one.
        wait_until(lambda: "serves plain HTTP" in b.log_text(), 5 * SLOW,
                   what="console warning line")
        log = b.log_text()
        check("not a loopback address and serves plain HTTP" in log,
              "warning for passwords over plain HTTP on 0.0.0.0: %s" % log[-2000:])
        h = Http(("127.0.0.1", int(re.search(r"web console on http://0.0.0.0:(\d+)/",
                                             log).group(1))))
        cookie, hdrs, _ = h.login("admin", "admin-secret")
        check("Max-Age=1;" in hdrs["Set-Cookie"], "cookie lifetime %r" % hdrs["Set-Cookie"])
        h.json("/overview", cookie)
        time.sleep(1.7)
        status, _, _ = h.req("GET", "/api/overview", cookie=cookie)
        check(status == 401, "an expired session: %d" % status)


@test
def test_console_without_security_says_so():
    with Broker({"console.listener": "http://0.0.0.0:0"}, name="console-open") as b:
        # The info line and the warning are two log writes: wait for the second one.
        wait_until(lambda: "reachable from the network" in b.log_text(), 5 * SLOW,
                   what="console warning line")
        log = b.log_text()
        check("open to anyone who can reach this address" in log
              and "reachable from the network and there is no security" in log,
              "warning for an open console on 0.0.0.0: %s" % log[-1500:])
        port = int(re.search(r"web console on http://0.0.0.0:(\d+)/", log).group(1))
        h = Http(("127.0.0.1", port))
        s = h.json("/session", None)
        check(s == {"security": False, "loopback": False,
                    "notice": "no security: console open to anyone who can reach this address"},
              "session without security %r" % s)
        status, hdrs, _ = h.req("GET", "/login")
        check(status == 303 and hdrs["Location"] == "/", "no login page without security")


@test
def test_console_login_in_headless_chromium():
    import cdp
    if not os.path.exists(cdp.CHROMIUM):
        comment("SKIPPED: %s is not installed (apt-get install chromium)" % cdp.CHROMIUM)
        return
    with SecureBroker(name="console-sec-ui") as b:
        host, port = console_addr(b)
        base = "http://%s:%d" % (host, port)
        add_acls(b)
        setup_data(b)
        shots = os.path.join(b.dir, "screenshots")
        os.makedirs(shots)
        with cdp.Browser(b.dir, slow=SLOW) as br:
            br.goto(base + "/topics")
            check(br.url() == base + "/login?next=/topics", "redirected to %s" % br.url())
            br.screenshot(os.path.join(shots, "login.png"))
            br.type_into("user", "alice")
            br.type_into("password", "wrong")
            br.click("sign-in")
            br.wait_load()
            check("Wrong user name or password" in br.text(), "wrong password page: %r"
                  % br.text()[:300])
            br.screenshot(os.path.join(shots, "login-failed.png"))
            br.type_into("user", "alice")
            br.type_into("password", "alice-secret")
            br.click("sign-in")
            br.wait_load()
            br.wait_ready()
            check(br.url() == base + "/topics", "after sign-in: %s" % br.url())
            text = br.text()
            check("alice-orders" in text and "secret" not in text and "carol-data" not in text,
                  "alice's topic list: %r" % text[:600])
            check("Signed in as alice" in text, "header names the user: %r" % text[:300])
            cookie = br.eval("document.cookie")
            check("gregor_session" not in cookie, "the session cookie is visible to scripts")
            br.screenshot(os.path.join(shots, "topics-alice.png"))
            br.goto(base + "/topics/secret")
            br.wait_ready()
            check("Error 403" in br.text(), "secret topic page: %r" % br.text()[:400])
            br.screenshot(os.path.join(shots, "topic-denied.png"))
            br.goto(base + "/topics/alice-orders/partitions/0/messages")
            br.wait_ready()
            check("order 2" in br.text(), "alice's messages: %r" % br.text()[:600])
            br.screenshot(os.path.join(shots, "messages-alice.png"))
            br.click("logout")
            br.wait_load()
            check(br.url() == base + "/login?signed_out=1" and "You are signed out" in br.text(),
                  "after sign-out: %s %r" % (br.url(), br.text()[:200]))
            br.screenshot(os.path.join(shots, "signed-out.png"))
            br.goto(base + "/")
            check(br.url().startswith(base + "/login"), "after sign-out / goes to %s" % br.url())
        keep = os.environ.get("GREGOR_CONSOLE_SCREENSHOTS")
        if keep:
            os.makedirs(keep, exist_ok=True)
            for f in os.listdir(shots):
                shutil.copy(os.path.join(shots, f), keep)
        comment("screenshots in %s: %s" % (shots, ", ".join(sorted(os.listdir(shots)))))


if __name__ == "__main__":
    run_tests()
