"""Security (issue #15, first slice): named listeners with listener.security.protocol.map and
per-listener advertised addresses; SASL PLAIN and SCRAM-SHA-256/512 on SASL_PLAINTEXT and
SASL_SSL; TLS (SSL, SASL_SSL, mTLS with ssl.client.auth=required) with certificates made by
the openssl CLI in a temporary directory. Real clients: confluent-kafka, kafka-python, kcat.
Every refusal (wrong password, unknown user, unknown mechanism, a request before
authentication, plaintext on a TLS port, TLS on a plaintext port, garbage in the handshake,
an untrusted client certificate) must close only that connection: the broker keeps serving.

asan-smoke: the ASan flavour of tests/run.sh runs this file too.
"""
import base64
import hashlib
import hmac
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, KafkaRaw, ConnectionClosed, Reader, check,  # noqa: E402
                     comment, fail, free_port, nbytes, run_tests, start_expect_exit, string,
                     test)

from confluent_kafka import Consumer, KafkaException, Producer  # noqa: E402

SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'username="admin" password="admin-secret" user_alice="alice-secret" '
              'user_admin="admin-secret";')


# -- certificates -------------------------------------------------------------------------

class Certs:
    """A CA, a server certificate for 127.0.0.1 (SAN IP), a client certificate, and a client
    certificate from another CA (untrusted). The server keystore is one PEM file with the
    (AES-encrypted, password 'keypass') key and the certificate."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gregor-certs-")
        d = self.dir
        self.ca = self._ca("ca", "/CN=Gregor Test CA")
        self._ca("evil-ca", "/CN=Evil CA")
        self._leaf("server", "/CN=localhost", "ca", san="subjectAltName=IP:127.0.0.1,DNS:localhost")
        self._leaf("client", "/O=Gregor Test/CN=alice-client", "ca")
        self._leaf("evil", "/CN=mallory", "evil-ca")
        self._openssl(["pkey", "-in", self.p("server.key"), "-aes256", "-passout", "pass:keypass",
                       "-out", self.p("server-enc.key")])
        with open(self.p("server-keystore.pem"), "w") as f:
            f.write(open(self.p("server-enc.key")).read())
            f.write(open(self.p("server.crt")).read())

    def p(self, name):
        return os.path.join(self.dir, name)

    def _openssl(self, args):
        r = subprocess.run(["openssl"] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        if r.returncode != 0:
            fail("openssl %s failed: %s" % (" ".join(args), r.stderr.decode()[-500:]))

    def _key(self, name):
        self._openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                       "-out", self.p(name + ".key")])

    def _ca(self, name, subj):
        self._key(name)
        self._openssl(["req", "-x509", "-new", "-key", self.p(name + ".key"), "-subj", subj,
                       "-days", "2", "-out", self.p(name + ".crt")])
        return self.p(name + ".crt")

    def _leaf(self, name, subj, ca, san=None):
        self._key(name)
        self._openssl(["req", "-new", "-key", self.p(name + ".key"), "-subj", subj,
                       "-out", self.p(name + ".csr")])
        ext = self.p(name + ".ext")
        with open(ext, "w") as f:
            f.write((san or "basicConstraints=CA:FALSE") + "\n")
        self._openssl(["x509", "-req", "-in", self.p(name + ".csr"), "-CA", self.p(ca + ".crt"),
                       "-CAkey", self.p(ca + ".key"), "-CAcreateserial", "-days", "2",
                       "-extfile", ext, "-out", self.p(name + ".crt")])

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


CERTS = None


def certs():
    global CERTS
    if CERTS is None:
        CERTS = Certs()
    return CERTS


# -- a broker with every kind of listener ---------------------------------------------------

class SecureBroker(Broker):
    """PLAINTEXT, SASL_PLAINTEXT, SSL, SASL_SSL and MTLS (SSL with ssl.client.auth=required)
    listeners on free ports; users alice (JAAS, SASL_PLAINTEXT only) and bob (credentials
    file, every SASL listener)."""

    def __init__(self, extra=None, name="secure"):
        c = certs()
        self.ports = {n: free_port() for n in
                      ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL", "MTLS")}
        creds = os.path.join(c.dir, "users.properties")
        with open(creds, "w") as f:
            f.write("# Gregor credentials file\nbob=bob-secret\n")
        listeners = ",".join("%s://%s:%d" % (n, HOST, p) for n, p in self.ports.items())
        props = {
            "listeners": listeners,
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                              "SSL:SSL,SASL_SSL:SASL_SSL,MTLS:SSL",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS,
            "sasl.credentials.file": creds,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": c.p("server-keystore.pem"),
            "ssl.key.password": "keypass",
            "ssl.truststore.location": c.ca,
            # SASL_SSL takes its keystore inline (the other PEM form) and TLSv1.3 only.
            "listener.name.sasl_ssl.ssl.keystore.certificate.chain": open(c.p("server.crt")).read(),
            "listener.name.sasl_ssl.ssl.keystore.key": open(c.p("server.key")).read(),
            "listener.name.sasl_ssl.ssl.enabled.protocols": "TLSv1.3",
            "listener.name.mtls.ssl.client.auth": "required",
            "num.partitions": "1",
            "offsets.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update(extra or {})
        self.also_wait_ports = list(self.ports.values())  # started once all of them accept
        Broker.__init__(self, props, name=name, port=self.ports["PLAINTEXT"])

    def addr(self, listener):
        return "%s:%d" % (HOST, self.ports[listener])


def sasl_conf(b, listener, mech, user, password):
    conf = {"bootstrap.servers": b.addr(listener), "security.protocol": listener,
            "sasl.mechanisms": mech, "sasl.username": user, "sasl.password": password}
    if listener == "SASL_SSL":
        conf["ssl.ca.location"] = certs().ca
    return conf


def produce_consume(conf, topic, n=20, value_size=100):
    """Produces n records with confluent-kafka, consumes them back in a group; returns them."""
    p = Producer(dict(conf, **{"linger.ms": 5}))
    for i in range(n):
        p.produce(topic, key=b"k%d" % i, value=(b"%d:" % i) + b"x" * value_size)
    left = p.flush(15 * SLOW)
    check(left == 0, "%d records not delivered on %s" % (left, conf["bootstrap.servers"]))
    c = Consumer(dict(conf, **{"group.id": "g-" + topic, "auto.offset.reset": "earliest",
                               "enable.auto.commit": False}))
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + 20 * SLOW
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        check(not m.error(), "consumer error: %s" % m.error())
        got.append(m.value())
    c.close()
    check(len(got) == n, "consumed %d of %d records from %s" % (len(got), n, topic))
    check(sorted(got) == sorted((b"%d:" % i) + b"x" * value_size for i in range(n)),
          "records came back changed")
    return got


def metadata_brokers(conf):
    p = Producer(dict(conf))
    md = p.list_topics(timeout=10 * SLOW)
    return {b.id: (b.host, b.port) for b in md.brokers.values()}


def still_serving(b):
    """The broker answers ApiVersions and Metadata on its PLAINTEXT listener."""
    with KafkaRaw(HOST, b.ports["PLAINTEXT"]) as c:
        c.api_versions(3)
        md = c.metadata(1, topics=None)
        check(md is not None, "no Metadata answer")


# -- raw SASL helpers ----------------------------------------------------------------------

def raw_handshake(c, mech, version=1):
    """SaslHandshake; returns (error code, mechanisms)."""
    body = c.call(SASL_HANDSHAKE, version, string(mech))
    r = Reader(body)
    err = r.int16()
    mechs = [r.string() for _ in range(r.int32())]
    return err, mechs


def raw_authenticate(c, token, version=1):
    """SaslAuthenticate v0-1; returns (error code, message, auth bytes)."""
    body = c.call(SASL_AUTHENTICATE, version, nbytes(token))
    r = Reader(body)
    err = r.int16()
    msg = r.string()
    return err, msg, r.bytes_()


def scram_client_final(user, password, client_first_bare, server_first, hash_name="sha256"):
    """RFC 5802 client-final message for server_first (bytes)."""
    attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac(hash_name, password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hash_name).digest()
    stored = hashlib.new(hash_name, client_key).digest()
    without_proof = "c=biws,r=" + attrs["r"]
    auth = ",".join((client_first_bare, server_first.decode(), without_proof)).encode()
    sig = hmac.new(stored, auth, hash_name).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()


def expect_closed(c, what):
    check(c.wait_closed(5 * SLOW), "%s: the broker did not close the connection" % what)


# -- tests ---------------------------------------------------------------------------------

@test
def test_metadata_advertises_the_listener_the_client_connected_to():
    with SecureBroker() as b:
        plain = metadata_brokers({"bootstrap.servers": b.addr("PLAINTEXT")})
        check(plain == {1: (HOST, b.ports["PLAINTEXT"])}, "PLAINTEXT metadata: %r" % plain)
        sasl = metadata_brokers(sasl_conf(b, "SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"))
        check(sasl == {1: (HOST, b.ports["SASL_PLAINTEXT"])}, "SASL metadata: %r" % sasl)
        tls = metadata_brokers({"bootstrap.servers": b.addr("SSL"), "security.protocol": "SSL",
                                "ssl.ca.location": certs().ca})
        check(tls == {1: (HOST, b.ports["SSL"])}, "SSL metadata: %r" % tls)
    # advertised.listeners per listener: the SASL listener advertises another name and port.
    adv_port = free_port()
    with SecureBroker({"advertised.listeners": "SASL_PLAINTEXT://localhost:%d" % adv_port}) as b:
        plain = metadata_brokers({"bootstrap.servers": b.addr("PLAINTEXT")})
        check(plain == {1: (HOST, b.ports["PLAINTEXT"])}, "PLAINTEXT metadata: %r" % plain)
        with KafkaRaw(HOST, b.ports["SASL_PLAINTEXT"]) as c:
            check(raw_handshake(c, "PLAIN")[0] == 0, "handshake failed")
            check(raw_authenticate(c, b"\0alice\0alice-secret")[0] == 0, "PLAIN failed")
            md = c.metadata(1, topics=None)
            text = repr(md)
            check("localhost" in text and str(adv_port) in text,
                  "Metadata on SASL_PLAINTEXT does not advertise localhost:%d: %s"
                  % (adv_port, text[:300]))


@test
def test_confluent_kafka_sasl_plaintext_plain_and_scram():
    with SecureBroker() as b:
        produce_consume(sasl_conf(b, "SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"),
                        "plain-topic")
        produce_consume(sasl_conf(b, "SASL_PLAINTEXT", "SCRAM-SHA-256", "bob", "bob-secret"),
                        "scram256-topic")
        produce_consume(sasl_conf(b, "SASL_PLAINTEXT", "SCRAM-SHA-512", "alice", "alice-secret"),
                        "scram512-topic")


@test
def test_kafka_python_sasl_plaintext_plain_and_scram():
    from kafka import KafkaConsumer, KafkaProducer
    with SecureBroker() as b:
        for mech, user, pw in (("PLAIN", "alice", "alice-secret"),
                               ("SCRAM-SHA-256", "bob", "bob-secret"),
                               ("SCRAM-SHA-512", "alice", "alice-secret")):
            kw = dict(bootstrap_servers=b.addr("SASL_PLAINTEXT"),
                      security_protocol="SASL_PLAINTEXT", sasl_mechanism=mech,
                      sasl_plain_username=user, sasl_plain_password=pw)
            topic = "kp-" + mech.lower()
            p = KafkaProducer(**kw)
            for i in range(10):
                p.send(topic, b"v%d" % i)
            p.flush(15 * SLOW)
            p.close()
            c = KafkaConsumer(topic, auto_offset_reset="earliest", **kw)
            got = []
            deadline = time.monotonic() + 15 * SLOW
            while len(got) < 10 and time.monotonic() < deadline:
                for recs in c.poll(timeout_ms=200).values():
                    got += [m.value for m in recs]
            c.close()
            check(sorted(got) == sorted(b"v%d" % i for i in range(10)),
                  "kafka-python %s read back %r" % (mech, got))


def kcat(args, timeout=30, stdin=None):
    r = subprocess.run(["kcat"] + args, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout * SLOW)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


@test
def test_kcat_and_confluent_kafka_over_ssl_and_sasl_ssl():
    with SecureBroker() as b:
        ca = certs().ca
        ssl_x = ["-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + ca]
        sasl_x = ["-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + ca,
                  "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=bob",
                  "-X", "sasl.password=bob-secret"]
        for name, x in (("SSL", ssl_x), ("SASL_SSL", sasl_x)):
            topic = "kcat-" + name.lower()
            lines = b"".join(b"k%d:%s\n" % (i, b"y" * (200 + i * 97)) for i in range(50))
            rc, _, err = kcat(["-b", b.addr(name), "-t", topic, "-P", "-K:"] + x, stdin=lines)
            check(rc == 0, "kcat produce over %s failed: %s" % (name, err[-500:]))
            rc, out, err = kcat(["-b", b.addr(name), "-t", topic, "-C", "-e", "-o", "beginning",
                                 "-K:"] + x)
            check(rc == 0, "kcat consume over %s failed: %s" % (name, err[-500:]))
            check(out == lines, "kcat over %s read back %d bytes, wrote %d"
                  % (name, len(out), len(lines)))
        # Larger values exercise the TLS fetch path (pread into the staging buffer).
        produce_consume({"bootstrap.servers": b.addr("SSL"), "security.protocol": "SSL",
                         "ssl.ca.location": ca}, "ssl-big", n=200, value_size=5000)
        produce_consume(sasl_conf(b, "SASL_SSL", "SCRAM-SHA-512", "bob", "bob-secret"),
                        "sasl-ssl-topic", n=100, value_size=1000)


@test
def test_mtls_required_takes_the_certificate_subject_as_principal():
    c = certs()
    with SecureBroker({"log.level": "debug"}) as b:
        conf = {"bootstrap.servers": b.addr("MTLS"), "security.protocol": "SSL",
                "ssl.ca.location": c.ca, "ssl.certificate.location": c.p("client.crt"),
                "ssl.key.location": c.p("client.key")}
        produce_consume(conf, "mtls-topic", n=10)
        check("TLS principal User:CN=alice-client,O=Gregor Test" in b.log_text(),
              "the broker did not log the certificate principal")
        # No client certificate, or one from an untrusted CA: refused in the handshake.
        for what, extra in (("no certificate", {}),
                            ("untrusted certificate", {"ssl.certificate.location": c.p("evil.crt"),
                                                       "ssl.key.location": c.p("evil.key")})):
            ctx = ssl.create_default_context(cafile=c.ca)
            if extra:
                ctx.load_cert_chain(extra["ssl.certificate.location"],
                                    extra["ssl.key.location"])
            refused = False
            try:
                with socket.create_connection((HOST, b.ports["MTLS"]), timeout=5 * SLOW) as s:
                    with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                        t.sendall(b"\0\0\0\0")
                        refused = t.recv(1) == b""  # TLS 1.3: the alert arrives on read
            except (ssl.SSLError, ConnectionError, OSError):
                refused = True
            check(refused, "mTLS listener accepted a client with %s" % what)
            still_serving(b)
        log = b.log_text()
        check("TLS handshake with connection" in log, "refusals were not logged")


@test
def test_sasl_refusals_close_only_that_connection():
    with SecureBroker() as b:
        port = b.ports["SASL_PLAINTEXT"]
        # Wrong password and unknown user: SASL_AUTHENTICATION_FAILED with Kafka's message.
        for mech in ("PLAIN", "SCRAM-SHA-256"):
            for user, pw in (("alice", "wrong"), ("nobody", "x")):
                with KafkaRaw(HOST, port) as c:
                    check(raw_handshake(c, mech)[0] == 0, "handshake %s refused" % mech)
                    if mech == "PLAIN":
                        err, msg, _ = raw_authenticate(c, b"\0%s\0%s" % (user.encode(),
                                                                           pw.encode()))
                    else:
                        bare = "n=%s,r=abcdefghijklmnop" % user
                        err, msg, server_first = raw_authenticate(c, b"n,," + bare.encode())
                        if user != "nobody":
                            check(err == 0, "SCRAM client-first of alice: error %d" % err)
                            final = scram_client_final(user, pw, bare, server_first)
                            err, msg, _ = raw_authenticate(c, final)
                    check(err == 58, "%s %s: error %d, expected 58" % (mech, user, err))
                    check(msg == "Authentication failed during authentication due to invalid "
                          "credentials with SASL mechanism %s" % mech, "message %r" % msg)
                    expect_closed(c, "failed authentication")
        # The right password through the same raw path (SCRAM-SHA-256, bob from the file).
        with KafkaRaw(HOST, port) as c:
            check(raw_handshake(c, "SCRAM-SHA-256")[0] == 0, "handshake")
            bare = "n=bob,r=0123456789abcdef"
            err, _, server_first = raw_authenticate(c, b"n,," + bare.encode())
            err, _, server_final = raw_authenticate(
                c, scram_client_final("bob", "bob-secret", bare, server_first))
            check(err == 0 and server_final.startswith(b"v="), "bob: %d %r" % (err, server_final))
            c.metadata(1, topics=None)
        # confluent-kafka with a wrong password gets Kafka's error and no metadata.
        errors = []
        p = Producer(dict(sasl_conf(b, "SASL_PLAINTEXT", "SCRAM-SHA-512", "alice", "nope"),
                          error_cb=lambda e: errors.append(str(e))))
        try:
            p.list_topics(timeout=3 * SLOW)
            fail("metadata with a wrong password")
        except KafkaException:
            pass
        deadline = time.monotonic() + 5 * SLOW
        while not errors and time.monotonic() < deadline:
            p.poll(0.2)  # error_cb is served by poll
        check(any("invalid credentials" in e for e in errors),
              "librdkafka did not report the authentication failure: %r" % errors)
        # Unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled list, then close.
        with KafkaRaw(HOST, port) as c:
            err, mechs = raw_handshake(c, "GSSAPI")
            check(err == 33, "GSSAPI handshake: error %d, expected 33" % err)
            check(mechs == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], "mechanisms %r" % mechs)
            expect_closed(c, "unknown mechanism")
        # Produce (or Metadata) before authentication: the connection is closed.
        for api, body in ((3, b"\xff\xff\xff\xff"), (0, b"")):
            with KafkaRaw(HOST, port) as c:
                c.send_request(api, 1, body)
                expect_closed(c, "api %d before authentication" % api)
        # SaslAuthenticate before SaslHandshake: ILLEGAL_SASL_STATE, then close.
        with KafkaRaw(HOST, port) as c:
            err, _, _ = raw_authenticate(c, b"\0alice\0alice-secret")
            check(err == 34, "authenticate before handshake: error %d, expected 34" % err)
            expect_closed(c, "authenticate before handshake")
        # A frame above sasl.server.max.receive.size before authentication: closed.
        with KafkaRaw(HOST, port) as c:
            c.send_raw(b"\x00\x10\x00\x00" + b"\0" * 64)
            expect_closed(c, "oversized frame before authentication")
        # On a PLAINTEXT listener SaslHandshake is ILLEGAL_SASL_STATE, the connection stays.
        with KafkaRaw(HOST, b.ports["PLAINTEXT"]) as c:
            check(raw_handshake(c, "PLAIN")[0] == 34, "handshake on PLAINTEXT")
            c.api_versions(3)
        # After authentication: everything is served; a second handshake is refused.
        with KafkaRaw(HOST, port) as c:
            c.api_versions(3)
            check(raw_handshake(c, "PLAIN")[0] == 0, "handshake")
            check(raw_authenticate(c, b"\0alice\0alice-secret")[0] == 0, "PLAIN alice")
            c.metadata(1, topics=None)
        still_serving(b)
        check(b.log_text().count("[sasl]") >= 5, "refusals were not logged")


@test
def test_tls_refusals_close_only_that_connection():
    with SecureBroker() as b:
        # A plaintext Kafka client on a TLS port.
        for name in ("SSL", "SASL_SSL"):
            with KafkaRaw(HOST, b.ports[name]) as c:
                try:
                    c.send_request(18, 0, b"")
                except OSError:
                    pass
                expect_closed(c, "plaintext client on %s" % name)
        # Garbage in the middle of a handshake: a ClientHello-looking record header, then junk.
        with socket.create_connection((HOST, b.ports["SSL"]), timeout=5 * SLOW) as s:
            s.sendall(b"\x16\x03\x01\x00\x40" + os.urandom(64))
            s.settimeout(5 * SLOW)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
        # A TLS client on the PLAINTEXT port: its ClientHello is not a valid frame size.
        ctx = ssl.create_default_context(cafile=certs().ca)
        try:
            with socket.create_connection((HOST, b.ports["PLAINTEXT"]), timeout=5 * SLOW) as s:
                with ctx.wrap_socket(s, server_hostname="127.0.0.1"):
                    fail("TLS handshake succeeded on the PLAINTEXT port")
        except (ssl.SSLError, ConnectionError, OSError):
            pass
        # TLS 1.2 on the SASL_SSL listener, which allows only TLSv1.3.
        ctx12 = ssl.create_default_context(cafile=certs().ca)
        ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
        try:
            with socket.create_connection((HOST, b.ports["SASL_SSL"]), timeout=5 * SLOW) as s:
                with ctx12.wrap_socket(s, server_hostname="127.0.0.1"):
                    fail("TLS 1.2 accepted on a TLSv1.3-only listener")
        except (ssl.SSLError, ConnectionError, OSError):
            pass
        still_serving(b)
        with socket.create_connection((HOST, b.ports["SSL"]), timeout=5 * SLOW) as s:
            with ctx.wrap_socket(s, server_hostname="127.0.0.1") as t:
                t.sendall(b"\x00\x00\x00\x0a\x00\x12\x00\x00\x00\x00\x00\x07\xff\xff")
                check(len(t.recv(4)) == 4, "no ApiVersions answer over TLS after the refusals")
        log = b.log_text()
        check(log.count("TLS handshake with connection") >= 3,
              "TLS refusals were not logged:\n" + log[-2000:])


@test
def test_configuration_errors_name_the_property():
    c = certs()
    port = free_port()
    cases = [
        ({"listeners": "FOO://%s:%d" % (HOST, port)}, "listener 'FOO' has no security protocol"),
        ({"listeners": "SASL_PLAINTEXT://%s:%d" % (HOST, port)}, "has no SASL users"),
        ({"listeners": "SASL_PLAINTEXT://%s:%d" % (HOST, port), "sasl.enabled.mechanisms": "GSSAPI",
          "listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS}, "GSSAPI"),
        ({"listeners": "SSL://%s:%d" % (HOST, port)}, "ssl.keystore.location"),
        ({"listeners": "SSL://%s:%d" % (HOST, port), "ssl.keystore.location": c.p("server-keystore.pem"),
          "ssl.key.password": "wrong"}, "ssl.keystore.location"),
        ({"listeners": "SSL://%s:%d" % (HOST, port), "ssl.keystore.location": c.p("server-keystore.pem"),
          "ssl.key.password": "keypass", "ssl.client.auth": "sometimes"}, "ssl.client.auth"),
        ({"listeners": "PLAINTEXT://%s:%d" % (HOST, port),
          "listener.security.protocol.map": "PLAINTEXT:TLS"}, "listener.security.protocol.map"),
    ]
    for props, want in cases:
        rc, err, out = start_expect_exit(props, port=port)
        check(rc != 0, "gregor started with %r" % props)
        check(want in err + out, "error for %r does not mention %r: %s" % (props, want, err))


if __name__ == "__main__":
    t0 = time.monotonic()
    try:
        run_tests()
    finally:
        comment("test_security.py ran in %.1f s" % (time.monotonic() - t0))
        if CERTS is not None:
            CERTS.cleanup()
