#!/usr/bin/env python3
"""SCRAM credential admin (KIP-554) and SASL re-authentication (KIP-368).

AlterUserScramCredentials / DescribeUserScramCredentials are sent raw (the Debian
confluent-kafka/librdkafka 2.0.2 and kafka-python have no admin call for them) and through
`gregor user`; the users created are then used by real clients (confluent-kafka over
SASL_PLAINTEXT). Covers Kafka's error codes, persistence across SIGKILL, and a 3-node cluster
where a user created through one node logs in on another.
"""
import base64
import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (GREGOR_BIN, HOST, SLOW, Broker, Cluster, KafkaRaw, Reader, check,  # noqa: E402
                     TAGS_NONE, carray, cbytes, cstring, free_port, i8, i32, nbytes, run_tests,
                     string, test, wait_until)

from confluent_kafka import Producer  # noqa: E402

DESCRIBE_SCRAM, ALTER_SCRAM = 50, 51
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
SHA256, SHA512 = 1, 2
HASHES = {SHA256: "sha256", SHA512: "sha512"}
MECH_NAMES = {SHA256: "SCRAM-SHA-256", SHA512: "SCRAM-SHA-512"}
NONE, UNSUPPORTED_SASL_MECHANISM, RESOURCE_NOT_FOUND = 0, 33, 91
DUPLICATE_RESOURCE, UNACCEPTABLE_CREDENTIAL = 92, 93
SASL_AUTHENTICATION_FAILED, ILLEGAL_SASL_STATE = 58, 34
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_admin="admin-secret";')


def upsertion(name, password, mech=SHA512, iterations=4096, salt=None):
    salt = salt if salt is not None else os.urandom(24)
    salted = hashlib.pbkdf2_hmac(HASHES.get(mech, "sha256"), password.encode(), salt,
                                 iterations) if password is not None else b""
    return (name, mech, iterations, salt, salted)


def alter(c, deletions=(), upsertions=()):
    """AlterUserScramCredentials v0; returns {user: (error code, message)} and the list."""
    body = (carray(list(deletions), lambda d: cstring(d[0]) + i8(d[1]) + TAGS_NONE) +
            carray(list(upsertions), lambda u: cstring(u[0]) + i8(u[1]) + i32(u[2]) +
                   cbytes(u[3]) + cbytes(u[4]) + TAGS_NONE) + TAGS_NONE)
    r = Reader(c.call(ALTER_SCRAM, 0, body))
    r.int32()  # throttle

    def result(rr):
        user, code, msg = rr.cstring(), rr.int16(), rr.cstring()
        rr.tagged_fields()
        return (user, code, msg)

    results = r.carray(result)
    r.tagged_fields()
    r.end()
    return {u: (code, msg) for u, code, msg in results}, results


def describe(c, users=None):
    """DescribeUserScramCredentials v0; returns {user: (error, [(mechanism, iterations)])}."""
    body = carray(None if users is None else list(users),
                  lambda u: cstring(u) + TAGS_NONE) + TAGS_NONE
    r = Reader(c.call(DESCRIBE_SCRAM, 0, body))
    r.int32()
    top = r.int16()
    r.cstring()
    check(top == 0, "DescribeUserScramCredentials top-level error %d" % top)

    def info(rr):
        m, it = rr.int8(), rr.int32()
        rr.tagged_fields()
        return (m, it)

    def result(rr):
        user, code = rr.cstring(), rr.int16()
        rr.cstring()  # error message
        infos = rr.carray(info)
        rr.tagged_fields()
        return (user, code, sorted(infos))

    results = r.carray(result)
    r.tagged_fields()
    r.end()
    return {u: (code, infos) for u, code, infos in results}


def broker_props(extra=None):
    """PLAINTEXT for admin, SASL_PLAINTEXT with SCRAM only and no static SCRAM users except
    admin's PLAIN one (users come from the metadata log)."""
    props = {
        "listeners": "PLAINTEXT://%s:%d,SASL_PLAINTEXT://%s:%d" % (HOST, free_port(), HOST,
                                                                  free_port()),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
    }
    props.update(extra or {})
    return props


def sasl_port(b):
    return int(b.props["listeners"].split(",")[1].rsplit(":", 1)[1])


def can_produce(port, mech, user, password, topic="scram-t"):
    """True when confluent-kafka authenticates as user and a produce is acknowledged."""
    conf = {"bootstrap.servers": "%s:%d" % (HOST, port), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": mech, "sasl.username": user, "sasl.password": password,
            "message.timeout.ms": int(6000 * SLOW), "socket.timeout.ms": int(6000 * SLOW)}
    p = Producer(conf)
    delivered = []
    p.produce(topic, b"v", on_delivery=lambda err, m: delivered.append(err))
    p.flush(8 * SLOW)
    return delivered == [None]


def wait_accepting(port):
    def accepts():
        try:
            socket.create_connection((HOST, port), timeout=1.0).close()
            return True
        except OSError:
            return False
    wait_until(accepts, 10 * SLOW, what="port %d accepting" % port)


def scram_login(port, mech, user, password):
    """Raw SCRAM exchange over SaslHandshake v1 + SaslAuthenticate v1; returns error code."""
    with KafkaRaw(HOST, port) as c:
        return scram_exchange(c, mech, user, password)[0]


def scram_exchange(c, mech, user, password):
    """On an open connection; returns (error code, session_lifetime_ms)."""
    hname = HASHES[mech]
    body = c.call(SASL_HANDSHAKE, 1, string(MECH_NAMES[mech]))
    err = Reader(body).int16()
    if err:
        return err, 0
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = "n=%s,r=%s" % (user, nonce)
    r = Reader(c.call(SASL_AUTHENTICATE, 1, nbytes(("n,," + first_bare).encode())))
    err = r.int16()
    r.string()  # error message
    server_first = r.bytes_()
    r.int64()  # session lifetime
    if err:
        return err, 0
    attrs = dict(kv.split("=", 1) for kv in server_first.decode().split(","))
    salted = hashlib.pbkdf2_hmac(hname, password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hname).digest()
    stored = hashlib.new(hname, client_key).digest()
    without_proof = "c=biws,r=" + attrs["r"]
    auth = ",".join((first_bare, server_first.decode(), without_proof)).encode()
    proof = bytes(a ^ b for a, b in zip(client_key, hmac.new(stored, auth, hname).digest()))
    final = (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()
    r = Reader(c.call(SASL_AUTHENTICATE, 1, nbytes(final)))
    err = r.int16()
    r.string()
    r.bytes_()  # server-final (its signature is checked by real clients)
    life = r.int64()
    return err, life


# -- tests ---------------------------------------------------------------------------------

@test
def test_alter_and_describe_follow_kafkas_rules():
    with Broker(broker_props(), name="scram-rules") as b, KafkaRaw(b) as c:
        res, lst = alter(c, upsertions=[upsertion("alice", "pw-a", SHA512, 8192),
                                        upsertion("alice2", "pw", SHA256)])
        check(res == {"alice": (NONE, None), "alice2": (NONE, None)}, "upsert: %r" % res)
        d = describe(c, ["alice", "nobody"])
        check(d["alice"] == (NONE, [(SHA512, 8192)]), "describe alice: %r" % d)
        check(d["nobody"][0] == RESOURCE_NOT_FOUND, "unknown user: %r" % d)
        check(describe(c) == {"alice": (NONE, [(SHA512, 8192)]), "alice2": (NONE, [(SHA256, 4096)])},
              "describe all: %r" % describe(c))
        check(describe(c, ["alice", "alice"])["alice"][0] == DUPLICATE_RESOURCE,
              "describe twice")
        res, _ = alter(c, deletions=[("ghost", SHA256), ("alice2", SHA256)],
                       upsertions=[upsertion("", "pw"), upsertion("weird", "pw", mech=7),
                                   upsertion("few", "pw", iterations=4095),
                                   upsertion("many", "pw", iterations=16385),
                                   upsertion("alice2", "pw"), upsertion("twice", "pw"),
                                   upsertion("twice", "pw", SHA256),
                                   upsertion("nosalt", "pw", salt=b"")])
        # A user refused by an earlier change keeps that error (Kafka's userToError).
        want = {"ghost": RESOURCE_NOT_FOUND, "alice2": DUPLICATE_RESOURCE,
                "": UNACCEPTABLE_CREDENTIAL, "weird": UNSUPPORTED_SASL_MECHANISM,
                "few": UNACCEPTABLE_CREDENTIAL, "many": UNACCEPTABLE_CREDENTIAL,
                "twice": DUPLICATE_RESOURCE, "nosalt": UNACCEPTABLE_CREDENTIAL}
        check({u: code for u, (code, _m) in res.items()} == want, "errors: %r" % res)
        check(res["few"][1] == "Too few iterations" and res["many"][1] == "Too many iterations",
              "iteration messages: %r" % res)
        check(set(describe(c)) == {"alice", "alice2"}, "a refused change was applied")
        res, _ = alter(c, deletions=[("alice2", SHA256)])
        check(res == {"alice2": (NONE, None)}, "delete: %r" % res)
        check(describe(c, ["alice2"])["alice2"][0] == RESOURCE_NOT_FOUND, "not deleted")
        res, _ = alter(c, deletions=[("alice", SHA256)])
        check(res["alice"][0] == RESOURCE_NOT_FOUND, "wrong mechanism delete: %r" % res)


@test
def test_created_user_authenticates_and_survives_sigkill():
    with Broker(broker_props({"listener.name.sasl_plaintext.plain.sasl.jaas.config": PLAIN_JAAS}),
                name="scram-auth") as b:
        port = sasl_port(b)
        wait_accepting(port)
        with KafkaRaw(b) as c:
            res, _ = alter(c, upsertions=[upsertion("carol", "carol-pw", SHA512)])
            check(res == {"carol": (NONE, None)}, "upsert: %r" % res)
        check(can_produce(port, "SCRAM-SHA-512", "carol", "carol-pw"),
              "confluent-kafka could not produce as carol (SCRAM-SHA-512)")
        check(scram_login(port, SHA512, "carol", "wrong") == SASL_AUTHENTICATION_FAILED,
              "wrong password accepted")
        check(scram_login(port, SHA256, "carol", "carol-pw") == SASL_AUTHENTICATION_FAILED,
              "a mechanism without a credential accepted")
        b.kill()
        b.start()
        wait_accepting(port)  # start() waited for the first (PLAINTEXT) listener only
        check(scram_login(port, SHA512, "carol", "carol-pw") == NONE,
              "carol lost after SIGKILL")
        with KafkaRaw(b) as c:
            res, _ = alter(c, deletions=[("carol", SHA512)])
            check(res == {"carol": (NONE, None)}, "delete: %r" % res)
        check(scram_login(port, SHA512, "carol", "carol-pw") == SASL_AUTHENTICATION_FAILED,
              "carol still logs in after delete")


REAUTH_MS = 1500


@test
def test_reauthentication_on_the_same_connection_and_expiry():
    props = broker_props({"connections.max.reauth.ms": str(REAUTH_MS), "log.level": "debug"})
    with Broker(props, name="scram-reauth") as b:
        port = sasl_port(b)
        wait_accepting(port)
        with KafkaRaw(b) as c:
            res, _ = alter(c, upsertions=[upsertion("gina", "gina-pw", SHA512),
                                          upsertion("hal", "hal-pw", SHA512)])
            check(res == {"gina": (NONE, None), "hal": (NONE, None)}, "upsert: %r" % res)
        with KafkaRaw(HOST, port) as c:
            err, life = scram_exchange(c, SHA512, "gina", "gina-pw")
            check(err == NONE and life == REAUTH_MS, "first login: %d, lifetime %d" % (err, life))
            check(c.metadata(1, topics=None) is not None, "Metadata after login")
            time.sleep(REAUTH_MS / 1000 + 0.2)
            # Expired: a SaslHandshake re-authenticates on the same connection.
            err, life = scram_exchange(c, SHA512, "gina", "gina-pw")
            check(err == NONE and life == REAUTH_MS, "re-auth: %d, lifetime %d" % (err, life))
            check(c.metadata(1, topics=None) is not None, "Metadata after re-authentication")
            # Before expiry a re-authentication is accepted too (KIP-368 clients start early).
            err, _ = scram_exchange(c, SHA512, "gina", "gina-pw")
            check(err == NONE, "early re-auth: %d" % err)
            time.sleep(REAUTH_MS / 1000 + 0.2)
            c.send_request(3, 1, b"\xff\xff\xff\xff")  # Metadata v1, all topics
            check(c.wait_closed(5 * SLOW), "an expired session was served a Metadata request")
        # Another user cannot take over the session; the connection is closed.
        with KafkaRaw(HOST, port) as c:
            check(scram_exchange(c, SHA512, "gina", "gina-pw")[0] == NONE, "login")
            err, _ = scram_exchange(c, SHA512, "hal", "hal-pw")
            check(err == SASL_AUTHENTICATION_FAILED, "re-auth as another user: %d" % err)
            check(c.wait_closed(5 * SLOW), "connection open after a refused re-authentication")
        # During a re-authentication frames are bounded by sasl.server.max.receive.size again.
        with KafkaRaw(HOST, port) as c:
            check(scram_exchange(c, SHA512, "gina", "gina-pw")[0] == NONE, "login")
            check(c.metadata(1, topics=None) is not None, "Metadata after login")
            body = c.call(SASL_HANDSHAKE, 1, string("SCRAM-SHA-512"))
            check(Reader(body).int16() == NONE, "re-auth handshake")
            c.send_raw(b"\x00\x10\x00\x00" + b"\0" * 64)  # 1 MiB > 524288 announced
            check(c.wait_closed(5 * SLOW), "an oversized frame during re-authentication was read")
        # Nor change mechanism (gina has no SHA-256 credential; the handshake already refuses).
        with KafkaRaw(HOST, port) as c:
            check(scram_exchange(c, SHA512, "gina", "gina-pw")[0] == NONE, "login")
            err, _ = scram_exchange(c, SHA256, "gina", "gina-pw")
            check(err == UNSUPPORTED_SASL_MECHANISM, "re-auth with another mechanism: %d" % err)
        log = b.log_text()
        check(log.count("re-authenticated as User:gina") >= 2, "re-authentications not logged")
        check("expired (connections.max.reauth.ms)" in log, "the expiry close was not logged")
        # librdkafka 2.0.2 has no KIP-368: its connection is closed at expiry and it reconnects,
        # so a producer keeps delivering across several session lifetimes.
        p = Producer({"bootstrap.servers": "%s:%d" % (HOST, port),
                      "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-512",
                      "sasl.username": "gina", "sasl.password": "gina-pw"})
        delivered = []
        for i in range(4):
            p.produce("reauth-t", b"%d" % i, on_delivery=lambda err, m: delivered.append(err))
            p.flush(10 * SLOW)
            time.sleep(REAUTH_MS / 1000 * 0.8)
        check(delivered == [None] * 4, "deliveries across session expiry: %r" % delivered)


def gregor_user(b, *args, stdin=None, bootstrap=None):
    p = subprocess.run([GREGOR_BIN, "user"] + list(args) + ["-b", bootstrap or b.bootstrap],
                       input=stdin, capture_output=True, text=True, timeout=30 * SLOW)
    return p.returncode, p.stdout, p.stderr


@test
def test_gregor_user_cli_adds_lists_and_deletes():
    with Broker(broker_props(), name="scram-cli") as b:
        port = sasl_port(b)
        wait_accepting(port)
        rc, out, err = gregor_user(b, "add", "dave", "--password", "dave-pw", "--iterations", "5000")
        check(rc == 0 and "dave" in out, "add: rc %d %r %r" % (rc, out, err))
        rc, out, err = gregor_user(b, "add", "dave", "--mechanism", "SCRAM-SHA-256", stdin="pw2\n")
        check(rc == 0, "add from stdin: rc %d %r" % (rc, err))
        rc, out, err = gregor_user(b, "list")
        check(rc == 0 and out.strip() == "dave  SCRAM-SHA-256 (4096 iterations), "
              "SCRAM-SHA-512 (5000 iterations)", "list: %r %r" % (out, err))
        check(scram_login(port, SHA512, "dave", "dave-pw") == NONE, "dave cannot log in (512)")
        check(scram_login(port, SHA256, "dave", "pw2") == NONE, "dave cannot log in (256)")
        check(can_produce(port, "SCRAM-SHA-256", "dave", "pw2"),
              "confluent-kafka could not produce as dave (SCRAM-SHA-256)")
        rc, out, err = gregor_user(b, "add", "eve", "--password", "x", "--iterations", "100")
        check(rc == 64, "100 iterations accepted: rc %d %r" % (rc, err))
        rc, out, err = gregor_user(b, "list", "nobody")
        check(rc == 1 and "no such user" in err, "list nobody: rc %d %r" % (rc, err))
        rc, out, err = gregor_user(b, "delete", "dave", "--mechanism", "SCRAM-SHA-256")
        check(rc == 0, "delete 256: rc %d %r" % (rc, err))
        check(scram_login(port, SHA256, "dave", "pw2") == SASL_AUTHENTICATION_FAILED,
              "deleted SHA-256 credential still accepted")
        check(scram_login(port, SHA512, "dave", "dave-pw") == NONE, "SHA-512 went with it")
        rc, out, err = gregor_user(b, "delete", "dave")
        check(rc == 0, "delete all: rc %d %r" % (rc, err))
        rc, out, err = gregor_user(b, "delete", "dave")
        check(rc == 1 and "no such user" in err, "second delete: rc %d %r" % (rc, err))
        check(scram_login(port, SHA512, "dave", "dave-pw") == SASL_AUTHENTICATION_FAILED,
              "deleted user still accepted")
        # Over the SASL listener, authenticated as a metadata-log user (SCRAM client side).
        rc, out, err = gregor_user(b, "add", "root", "--password", "root-pw")
        check(rc == 0, "add root: %r" % err)
        sasl = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-512",
                "-X", "sasl.username=root"]
        rc, out, err = gregor_user(b, "add", "zed", "--password", "zed-pw",
                                   *(sasl + ["-X", "sasl.password=root-pw"]),
                                   bootstrap="%s:%d" % (HOST, port))
        check(rc == 0, "add over SASL_PLAINTEXT: rc %d %r" % (rc, err))
        check(scram_login(port, SHA512, "zed", "zed-pw") == NONE, "zed cannot log in")
        rc, out, err = gregor_user(b, "list", *(sasl + ["-X", "sasl.password=nope"]),
                                   bootstrap="%s:%d" % (HOST, port))
        check(rc != 0 and "SASL_AUTHENTICATION_FAILED" in err, "wrong password: rc %d %r" % (rc, err))


class SaslCluster(Cluster):
    """A Cluster whose nodes also have a SCRAM-only SASL_PLAINTEXT listener."""

    def __init__(self, n, **kw):
        super().__init__(n, **kw)
        self.sasl_ports = {i: free_port() for i in self.ids}

    def node_config(self, node_id):
        p = super().node_config(node_id)
        p["listeners"] += ",SASL_PLAINTEXT://%s:%d" % (HOST, self.sasl_ports[node_id])
        p["listener.security.protocol.map"] = ("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
                                               "SASL_PLAINTEXT:SASL_PLAINTEXT")
        p["sasl.enabled.mechanisms"] = "SCRAM-SHA-256,SCRAM-SHA-512"
        return p


@test
def test_user_created_through_one_node_logs_in_on_every_node():
    with SaslCluster(3) as c:
        ctl = c.wait_controller()
        via = next(i for i in c.ids if i != ctl)  # forwarded to the active controller
        with KafkaRaw(c.node(via)) as k:
            res, _ = alter(k, upsertions=[upsertion("frank", "frank-pw", SHA256)])
            check(res == {"frank": (NONE, None)}, "upsert via node %d: %r" % (via, res))
        for i in c.ids:
            port = c.sasl_ports[i]
            wait_until(lambda: scram_login(port, SHA256, "frank", "frank-pw") == NONE,
                       10 * SLOW, what="frank logs in on node %d" % i)
            check(scram_login(port, SHA256, "frank", "nope") == SASL_AUTHENTICATION_FAILED,
                  "wrong password accepted on node %d" % i)
            with KafkaRaw(c.node(i)) as k:
                d = describe(k, ["frank"])
                check(d == {"frank": (NONE, [(SHA256, 4096)])}, "node %d: %r" % (i, d))
        # A real client too. Only Metadata: in a cluster the image holds one endpoint per broker
        # (the PLAINTEXT one), so produce to a leader elsewhere would not reach its SASL port.
        for i in c.ids:
            p = Producer({"bootstrap.servers": "%s:%d" % (HOST, c.sasl_ports[i]),
                          "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "SCRAM-SHA-256",
                          "sasl.username": "frank", "sasl.password": "frank-pw"})
            md = p.list_topics(timeout=10 * SLOW)
            check(len(md.brokers) == 3, "node %d: Metadata as frank: %r" % (i, md.brokers))


if __name__ == "__main__":
    run_tests()
