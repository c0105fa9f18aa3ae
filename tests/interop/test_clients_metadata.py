"""Real clients' first contact with Gregor: bootstrap, ApiVersions negotiation and cluster
metadata, as done by librdkafka (confluent-kafka 1.7 on librdkafka 2.0.2, and kcat) and
kafka-python 2.0.2. Each test starts its own broker with a non-default node id."""
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Broker, check, comment, free_port, run_tests,  # noqa: E402
                     test)

NODE_ID = 7


def broker(**extra):
    props = {"node.id": NODE_ID}
    props.update(extra)
    return Broker(props)


@test
def test_confluent_admin_list_topics():
    """confluent_kafka AdminClient.list_topics(): the brokers map is {7: 127.0.0.1:PORT},
    controller id 7, a cluster id, no topics on a fresh broker, and librdkafka reported no
    error (error_cb) while negotiating ApiVersions and fetching metadata."""
    from confluent_kafka.admin import AdminClient
    errors = []
    with broker() as b:
        a = AdminClient({"bootstrap.servers": b.bootstrap, "error_cb": errors.append,
                         "socket.timeout.ms": int(10000 * SLOW)})
        md = a.list_topics(timeout=10 * SLOW)
        brokers = {k: "%s:%d" % (v.host, v.port) for k, v in md.brokers.items()}
        check(brokers == {NODE_ID: b.bootstrap}, "brokers %r" % brokers)
        check(md.controller_id == NODE_ID, "controller_id %r" % md.controller_id)
        check(md.orig_broker_id == NODE_ID, "orig_broker_id %r" % md.orig_broker_id)
        check(isinstance(md.cluster_id, str) and md.cluster_id, "cluster_id %r" % md.cluster_id)
        check(md.topics == {}, "topics %r on a fresh broker" % list(md.topics))
        # A second call on the established connection.
        md2 = a.list_topics(timeout=10 * SLOW)
        check(md2.cluster_id == md.cluster_id, "cluster id changed")
        check(not errors, "librdkafka errors: %r" % [str(e) for e in errors])
        comment("cluster_id=%s" % md.cluster_id)


@test
def test_confluent_api_version_negotiated():
    """librdkafka opens with ApiVersions v3; with debug=protocol its log must show the v3
    response accepted (no 'failed ... retrying with v0' fallback) and the protocol features
    enabled from it, including MsgVer2 (record batches: Produce v3+, Fetch v4+)."""
    from confluent_kafka.admin import AdminClient
    import logging
    lines = []

    class H(logging.Handler):
        def emit(self, rec):
            lines.append(rec.getMessage())

    log = logging.getLogger("rdkafka-test")
    log.setLevel(logging.DEBUG)
    log.addHandler(H())
    log.propagate = False
    with broker() as b:
        a = AdminClient({"bootstrap.servers": b.bootstrap, "debug": "protocol,broker",
                         "logger": log})
        a.list_topics(timeout=10 * SLOW)
        a.poll(0.1)  # serve queued logs
        # Logs go through the main queue; give it a moment to drain.
        deadline = time.monotonic() + 5 * SLOW
        while time.monotonic() < deadline and not any(
                "Updated enabled protocol features to" in l for l in lines):
            a.poll(0.1)
        text = "\n".join(lines)
        api = "\n".join(l for l in lines if "ApiVersion" in l or "FEATURE" in l
                        or "protocol features" in l)
        comment(api[:2000])
        check("Received ApiVersionResponse (v3" in text,
              "no ApiVersions v3 response in librdkafka's log:\n%s" % api)
        check(not re.search(r"ApiVersionRequest v\d+ failed|retrying with v0|"
                            r"ApiVersionRequest failed", text),
              "ApiVersions negotiation fell back:\n%s" % api)
        feats = [l for l in lines if "Updated enabled protocol features to" in l]
        check(feats, "librdkafka never enabled protocol features:\n%s" % api)
        check("MsgVer2" in feats[-1], "MsgVer2 (record batches) not enabled: %s" % feats[-1])


@test
def test_kafka_python_client_negotiates_and_reads_cluster():
    """kafka-python KafkaClient with api_version=None probes the broker (ApiVersions v0)
    and infers a broker version (must be >= 1.0, i.e. Metadata v5 is there); its cluster
    metadata lists the broker with host/port and the controller."""
    from kafka import KafkaClient
    with broker() as b:
        c = KafkaClient(bootstrap_servers=b.bootstrap, api_version_auto_timeout_ms=int(
            10000 * SLOW), request_timeout_ms=int(15000 * SLOW))
        try:
            ver = c.config["api_version"]
            comment("kafka-python inferred api_version=%s" % (ver,))
            check(ver >= (1, 0, 0), "inferred broker version %r < (1, 0, 0)" % (ver,))
            fut = c.cluster.request_update()
            deadline = time.monotonic() + 10 * SLOW
            while not fut.is_done and time.monotonic() < deadline:
                c.poll(future=fut, timeout_ms=500)
            check(fut.succeeded(), "metadata update failed: %r" % (fut.exception,))
            brokers = sorted((x.nodeId, x.host, x.port) for x in c.cluster.brokers())
            check(brokers == [(NODE_ID, HOST, b.port)], "brokers %r" % brokers)
            check(c.cluster.controller is not None and c.cluster.controller.nodeId == NODE_ID,
                  "controller %r" % (c.cluster.controller,))
            check(c.cluster.topics() == set(), "topics %r" % c.cluster.topics())
        finally:
            c.close()


@test
def test_kafka_python_admin_describe_cluster():
    """KafkaAdminClient (auto version, and forced old api_version=(0, 10, 1) which uses
    Metadata v2): describe_cluster() gives the broker, controller id and cluster id;
    list_topics() is empty."""
    from kafka import KafkaAdminClient
    with broker() as b:
        for forced in (None, (0, 10, 1)):
            kw = {"api_version": forced} if forced else {}
            a = KafkaAdminClient(bootstrap_servers=b.bootstrap,
                                 api_version_auto_timeout_ms=int(10000 * SLOW),
                                 request_timeout_ms=int(15000 * SLOW), **kw)
            try:
                d = a.describe_cluster()
                brokers = [(x["node_id"], x["host"], x["port"]) for x in d["brokers"]]
                check(brokers == [(NODE_ID, HOST, b.port)], "%s: brokers %r" % (forced, brokers))
                check(d["controller_id"] == NODE_ID, "%s: controller_id %r"
                      % (forced, d["controller_id"]))
                check(d.get("cluster_id"), "%s: no cluster_id in %r" % (forced, d))
                check(a.list_topics() == [], "%s: topics %r" % (forced, a.list_topics()))
            finally:
                a.close()


def kcat(*args, timeout=60):
    p = subprocess.run(["kcat", "-m", str(int(10 * SLOW))] + list(args), capture_output=True,
                       timeout=timeout * SLOW, text=True)
    return p.returncode, p.stdout, p.stderr


@test
def test_kcat_list_metadata():
    """kcat -L prints the broker as 'broker 7 at 127.0.0.1:PORT (controller)' and 0 topics;
    kcat -L -J gives the same as JSON (brokers, controllerid, no topics)."""
    with broker() as b:
        rc, out, err = kcat("-b", b.bootstrap, "-L")
        check(rc == 0, "kcat -L exit %d: %s" % (rc, err))
        check("broker %d at %s" % (NODE_ID, b.bootstrap) in out,
              "kcat -L does not show the broker:\n%s" % out)
        check("(controller)" in out, "kcat -L shows no controller:\n%s" % out)
        check(" 1 brokers:" in out and " 0 topics:" in out, "kcat -L counts:\n%s" % out)
        rc, out, err = kcat("-b", b.bootstrap, "-L", "-J")
        check(rc == 0, "kcat -L -J exit %d: %s" % (rc, err))
        j = json.loads(out)
        check(j["brokers"] == [{"id": NODE_ID, "name": b.bootstrap}], "brokers %r" % j["brokers"])
        check(j["controllerid"] == NODE_ID, "controllerid %r" % j["controllerid"])
        check(j["originating_broker"]["id"] == NODE_ID, "originating %r"
              % j["originating_broker"])
        check(j["topics"] == [], "topics %r" % j["topics"])


@test
def test_advertised_listener_in_metadata():
    """advertised.listeners=PLAINTEXT://localhost:PORT: clients are told 'localhost', not
    the bind address (kcat -L -J)."""
    port = free_port()
    b = Broker({"node.id": NODE_ID, "listeners": "PLAINTEXT://%s:%d" % (HOST, port),
                "advertised.listeners": "PLAINTEXT://localhost:%d" % port})
    b.port = port
    with b:
        rc, out, err = kcat("-b", b.bootstrap, "-L", "-J")
        check(rc == 0, "kcat -L -J exit %d: %s" % (rc, err))
        j = json.loads(out)
        check(j["brokers"] == [{"id": NODE_ID, "name": "localhost:%d" % b.port}],
              "brokers %r" % j["brokers"])


if __name__ == "__main__":
    run_tests()
