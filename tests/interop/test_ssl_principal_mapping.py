"""ssl.principal.mapping.rules (issue #15): Kafka's RULE:pattern/replacement/[LU] and DEFAULT
applied to the client certificate's subject in RFC 2253 form; the mapped User:NAME is what
ACLs see. Client certificates are made by the openssl CLI in the test; the clients are
confluent-kafka and kcat over mTLS (ssl.client.auth=required).

Bad input tried: a certificate whose subject no rule maps (the connection is closed and the
refusal logged, other connections unaffected); rule texts Kafka refuses (a flag other than L/U,
DEFAULT with a flag, a missing slash, a pattern that does not compile) at start-up, which must
exit non-zero naming the property.

asan-smoke tsan-smoke: the sanitizer flavours of tests/run.sh run this file too.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, KafkaRaw, check, comment, fail, free_port,  # noqa: E402
                     run_tests, start_expect_exit, test, wait_until)

from confluent_kafka import KafkaError, KafkaException, Producer, Consumer  # noqa: E402
from kafka.admin import (ACL, ACLOperation as AclOperation, ACLPermissionType,  # noqa: E402
                         ACLResourcePatternType, KafkaAdminClient, ResourcePattern,
                         ResourceType)

STANDARD = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
RULES = ("RULE:^CN=(.*?),OU=ServiceUsers,.*$/$1/L, "
         "RULE:^CN=([^,]+),OU=Humans,O=([^,]+)$/$1@$2/U")


class Certs:
    """A CA, a server certificate for 127.0.0.1 and three client certificates."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gregor-map-certs-")
        self._key("ca")
        self._run(["req", "-x509", "-new", "-key", self.p("ca.key"), "-subj", "/CN=Map Test CA",
                   "-days", "2", "-out", self.p("ca.crt")])
        self.leaf("server", "/CN=localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost")
        # subjects (RFC 2253): CN=Alice,OU=ServiceUsers,O=Gregor Test -> alice
        #                      CN=bob,OU=Humans,O=acme -> BOB@ACME
        #                      CN=mallory,O=Elsewhere -> no rule
        self.leaf("alice", "/O=Gregor Test/OU=ServiceUsers/CN=Alice")
        self.leaf("bob", "/O=acme/OU=Humans/CN=bob")
        self.leaf("mallory", "/O=Elsewhere/CN=mallory")

    def p(self, name):
        return os.path.join(self.dir, name)

    def _run(self, args):
        r = subprocess.run(["openssl"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        if r.returncode != 0:
            fail("openssl %s failed: %s" % (" ".join(args), r.stderr.decode()[-500:]))

    def _key(self, name):
        self._run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-out", self.p(name + ".key")])

    def leaf(self, name, subj, ext="basicConstraints=CA:FALSE"):
        self._key(name)
        self._run(["req", "-new", "-key", self.p(name + ".key"), "-subj", subj,
                   "-out", self.p(name + ".csr")])
        with open(self.p(name + ".ext"), "w") as f:
            f.write(ext + "\n")
        self._run(["x509", "-req", "-in", self.p(name + ".csr"), "-CA", self.p("ca.crt"),
                   "-CAkey", self.p("ca.key"), "-CAcreateserial", "-days", "2",
                   "-extfile", self.p(name + ".ext"), "-out", self.p(name + ".crt")])

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


CERTS = None


def certs():
    global CERTS
    if CERTS is None:
        CERTS = Certs()
    return CERTS


class MappingBroker(Broker):
    """A PLAINTEXT listener (User:ANONYMOUS, a super user: the test's admin) and an MTLS
    listener (SSL, client certificate required) with RULES and the StandardAuthorizer."""

    def __init__(self, rules=RULES):
        c = certs()
        self.ports = {"PLAINTEXT": free_port(), "MTLS": free_port()}
        props = {
            "listeners": ",".join("%s://%s:%d" % (n, HOST, p) for n, p in self.ports.items()),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,MTLS:SSL",
            "ssl.keystore.location": c.p("server.pem"),
            "ssl.truststore.location": c.p("ca.crt"),
            "ssl.client.auth": "required",
            "ssl.principal.mapping.rules": rules,
            "authorizer.class.name": STANDARD,
            "super.users": "User:ANONYMOUS",
            "num.partitions": "1",
            "offsets.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.level": "debug",
        }
        with open(c.p("server.pem"), "w") as f:
            f.write(open(c.p("server.key")).read() + open(c.p("server.crt")).read())
        Broker.__init__(self, props, name="map", port=self.ports["PLAINTEXT"])

    def mtls(self, who, **extra):
        c = certs()
        conf = {"bootstrap.servers": "%s:%d" % (HOST, self.ports["MTLS"]),
                "security.protocol": "SSL", "ssl.ca.location": c.p("ca.crt"),
                "ssl.certificate.location": c.p(who + ".crt"),
                "ssl.key.location": c.p(who + ".key")}
        conf.update(extra)
        return conf

    def kcat_x(self, who):
        c = certs()
        return ["-b", "%s:%d" % (HOST, self.ports["MTLS"]), "-X", "security.protocol=SSL",
                "-X", "ssl.ca.location=" + c.p("ca.crt"),
                "-X", "ssl.certificate.location=" + c.p(who + ".crt"),
                "-X", "ssl.key.location=" + c.p(who + ".key")]


def admin_create_acls(b, bindings):
    a = KafkaAdminClient(bootstrap_servers="%s:%d" % (HOST, b.ports["PLAINTEXT"]),
                         request_timeout_ms=int(15000 * SLOW), api_version=(2, 5, 0))
    try:
        res = a.create_acls(bindings)
    finally:
        a.close()
    check(len(res["succeeded"]) == len(bindings) and not res["failed"],
          "CreateAcls failed: %s" % res["failed"])


def allow(principal, rtype, name, op, pattern=ACLResourcePatternType.PREFIXED):
    return ACL(principal, "*", op, ACLPermissionType.ALLOW, ResourcePattern(rtype, name, pattern))


def produce(conf, topic, n):
    """Returns (delivered, first error)."""
    errs = []
    p = Producer(dict(conf, **{"linger.ms": 5, "message.timeout.ms": int(8000 * SLOW),
                               "retries": 0}))
    for i in range(n):
        p.produce(topic, value=b"v%d" % i,
                  on_delivery=lambda e, m: errs.append(e) if e else None)
    p.flush(15 * SLOW)
    return n - len(errs), (errs[0] if errs else None)


def kcat(args, stdin=None, timeout=30):
    r = subprocess.run(["kcat"] + args, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout * SLOW)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


@test
def test_mapped_principal_is_what_acls_decide_on():
    with MappingBroker() as b:
        admin_create_acls(b, [
            allow("User:alice", ResourceType.TOPIC, "svc-", AclOperation.WRITE),
            allow("User:alice", ResourceType.TOPIC, "svc-", AclOperation.READ),
            allow("User:alice", ResourceType.TOPIC, "svc-", AclOperation.CREATE),
            allow("User:alice", ResourceType.GROUP, "svc-", AclOperation.READ),
            allow("User:BOB@ACME", ResourceType.TOPIC, "svc-", AclOperation.DESCRIBE),
            # an ACL on the unmapped subject must not count: the principal is the mapped name
            allow("User:CN=bob,OU=Humans,O=acme", ResourceType.TOPIC, "svc-",
                  AclOperation.WRITE),
        ])
        # alice (rule 1, lower-cased): produce and consume with confluent-kafka
        conf = b.mtls("alice")
        sent, err = produce(conf, "svc-orders", 20)
        check(sent == 20, "alice could not produce: %s" % err)
        c = Consumer(dict(conf, **{"group.id": "svc-g", "auto.offset.reset": "earliest"}))
        c.subscribe(["svc-orders"])
        got, deadline = [], time.monotonic() + 20 * SLOW
        while len(got) < 20 and time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None:
                check(not m.error(), "alice's consumer: %s" % m.error())
                got.append(m.value())
        c.close()
        check(sorted(got) == sorted(b"v%d" % i for i in range(20)),
              "alice consumed %d of 20 records" % len(got))
        log = b.log_text()
        check("TLS principal User:alice (subject 'CN=Alice,OU=ServiceUsers,O=Gregor Test')"
              in log, "the broker did not log alice's mapped principal")

        # bob (rule 2, upper-cased, two groups): DESCRIBE only, so producing is refused
        sent, err = produce(b.mtls("bob"), "svc-orders", 3)
        check(sent == 0 and err is not None and
              err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED,
              "bob produced %d records (error %s); his ACL allows only DESCRIBE" % (sent, err))
        check("TLS principal User:BOB@ACME" in b.log_text(), "bob's principal not logged")

        # kcat: alice writes and reads back, bob is refused
        lines = b"".join(b"line-%d\n" % i for i in range(30))
        rc, _, err = kcat(b.kcat_x("alice") + ["-t", "svc-kcat", "-P"], stdin=lines)
        check(rc == 0, "kcat produce as alice failed: %s" % err[-400:])
        rc, out, err = kcat(b.kcat_x("alice") + ["-t", "svc-kcat", "-C", "-e", "-o",
                                                 "beginning"])
        check(rc == 0 and out == lines, "kcat consume as alice: rc %d, %d bytes: %s"
              % (rc, len(out), err[-400:]))
        rc, _, err = kcat(b.kcat_x("bob") + ["-t", "svc-kcat", "-P", "-X",
                                             "message.timeout.ms=5000"], stdin=b"x\n")
        check(rc != 0 or "authoriz" in err.lower(),
              "kcat produce as bob succeeded: %s" % err[-400:])


@test
def test_subject_no_rule_maps_is_closed_and_others_go_on():
    with MappingBroker() as b:
        p = Producer(dict(b.mtls("mallory"), **{"socket.timeout.ms": 3000}))
        try:
            p.list_topics(timeout=4 * SLOW)
            fail("a client whose subject no rule maps got Metadata")
        except KafkaException:
            pass
        wait_until(lambda: "No rules apply to CN=mallory,O=Elsewhere" in b.log_text(),
                   10 * SLOW, what="the refusal was not logged")
        log = b.log_text()
        check("failed to map name for 'CN=mallory,O=Elsewhere'" in log,
              "the log does not name the subject")
        # the broker goes on serving: the plaintext listener and alice over mTLS
        with KafkaRaw(HOST, b.ports["PLAINTEXT"]) as c:
            c.api_versions(3)
        Producer(b.mtls("alice")).list_topics(timeout=10 * SLOW)


@test
def test_default_rule_keeps_the_subject_and_bad_rules_stop_start_up():
    with MappingBroker(rules="RULE:^CN=nobody$/x/, DEFAULT") as b:
        Producer(b.mtls("bob")).list_topics(timeout=10 * SLOW)
        wait_until(lambda: "TLS principal User:CN=bob,OU=Humans,O=acme" in b.log_text(),
                   10 * SLOW, what="DEFAULT did not keep the RFC 2253 subject")
    c = certs()
    for rules, want in (("RULE:^CN=(.*?)$/$1/X", "unmatched substring: `X`"),
                        ("DEFAULT/L", "Invalid rule"),
                        ("RULE:^CN=(.*?)$/$1", "Invalid rule"),
                        ("RULE:^CN=((.*$/$1/", "invalid pattern")):
        port = free_port()
        rc, err, out = start_expect_exit({
            "listeners": "SSL://%s:%d" % (HOST, port),
            "ssl.keystore.location": c.p("server.pem"),
            "ssl.principal.mapping.rules": rules}, port=port)
        text = err + out
        check(rc != 0, "gregor started with ssl.principal.mapping.rules=%s" % rules)
        check("ssl.principal.mapping.rules" in text and want in text,
              "error for %r does not say %r: %s" % (rules, want, text[-400:]))


if __name__ == "__main__":
    t0 = time.monotonic()
    try:
        run_tests()
    finally:
        comment("test_ssl_principal_mapping.py ran in %.1f s" % (time.monotonic() - t0))
        if CERTS is not None:
            CERTS.cleanup()
