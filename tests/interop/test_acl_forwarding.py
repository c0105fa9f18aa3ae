"""Admin requests that mix allowed and denied resources, sent to a node that is not the active
controller (issue #15): as in Kafka, the denied resources are answered with
TOPIC_AUTHORIZATION_FAILED and the allowed ones are carried out by the controller (forwarded),
not answered NOT_CONTROLLER. Three nodes, each with a PLAINTEXT listener (between brokers;
User:ANONYMOUS is a super user) and a SASL_PLAINTEXT one (PLAIN users admin and alice) with the
StandardAuthorizer; alice may CREATE, DELETE, ALTER and ALTER_CONFIGS topics prefixed "ok-".

What is tried, each with one allowed and one denied topic, on raw connections to the
non-controller's SASL listener: CreateTopics, CreatePartitions, AlterConfigs,
IncrementalAlterConfigs, DeleteTopics; and that the allowed change really happened (topic
created, partitions added, configs set, topic deleted) and the denied one did not.
CreateAcls/DeleteAcls need ALTER on the cluster for the whole request, so they cannot mix.

tsan-smoke
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, SLOW, Cluster, KafkaRaw, Reader, array, boolean,  # noqa: E402
                     check, distinct_free_ports, i8, i16, i32, nbytes, run_tests, string, test,
                     wait_until)

from kafka.admin import (ACL, ACLOperation, ACLPermissionType,  # noqa: E402
                         ACLResourcePatternType, ConfigResource, ConfigResourceType,
                         KafkaAdminClient, NewTopic, ResourcePattern, ResourcePatternFilter,
                         ACLFilter, ResourceType)

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_alice="alice-secret";')
STANDARD = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
CREATE_TOPICS, DELETE_TOPICS, ALTER_CONFIGS, CREATE_PARTITIONS, INCREMENTAL_ALTER_CONFIGS = \
    19, 20, 33, 37, 44
TOPIC_AUTHORIZATION_FAILED, NOT_CONTROLLER = 29, 41
RESOURCE_TOPIC = 2


class SaslCluster(Cluster):
    """Cluster whose nodes also have a SASL_PLAINTEXT listener for clients."""

    def __init__(self, n, **kw):
        self.sasl_ports = []
        Cluster.__init__(self, n, **kw)

    def _assign_ports(self):
        Cluster._assign_ports(self)
        taken = set(self.client_ports) | set(self.raft_ports)
        self.sasl_ports = [p for p in distinct_free_ports(3 * self.n) if p not in taken][:self.n]

    def node_config(self, node_id):
        p = Cluster.node_config(self, node_id)
        sasl = "SASL_PLAINTEXT://%s:%d" % (HOST, self.sasl_ports[node_id - 1])
        p["listeners"] = p["listeners"].replace(",CONTROLLER://", "," + sasl + ",CONTROLLER://")
        p.update({
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                              "CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
            "sasl.enabled.mechanisms": "PLAIN",
            "authorizer.class.name": STANDARD,
            "super.users": "User:admin;User:ANONYMOUS",
        })
        return p

    def login(self, node_id, user):
        c = KafkaRaw(HOST, self.sasl_ports[node_id - 1], timeout=15 * SLOW)
        r = Reader(c.call(17, 1, string("PLAIN")))
        check(r.int16() == 0, "SaslHandshake on node %d" % node_id)
        token = b"\0" + user.encode() + b"\0" + (user + "-secret").encode()
        r = Reader(c.call(36, 0, nbytes(token)))
        check(r.int16() == 0, "SaslAuthenticate as %s on node %d" % (user, node_id))
        return c


def admin(c, node_id):
    return KafkaAdminClient(bootstrap_servers=c.node(node_id).bootstrap, api_version=(2, 5, 0),
                            request_timeout_ms=int(15000 * SLOW))


def results(body, with_message=True, configs=False):
    """{topic: error} of a CreateTopics v4 / DeleteTopics v3 / CreatePartitions v1 answer, or
    of an (Incremental)AlterConfigs answer (configs=True)."""
    r = Reader(body)
    r.int32()  # throttle
    if configs:
        rows = r.array(lambda x: (x.int16(), x.string(), x.int8(), x.string()))
        r.end()
        return {name: err for err, _, _, name in rows}
    rows = r.array(lambda x: (x.string(), x.int16(), x.string() if with_message else None))
    r.end()
    return {name: err for name, err, _ in rows}


def expect(got, ok, denied, what):
    check(got == {ok: 0, denied: TOPIC_AUTHORIZATION_FAILED},
          "%s on a non-controller: %r (want %s allowed and done, %s "
          "TOPIC_AUTHORIZATION_FAILED; %d would be NOT_CONTROLLER)"
          % (what, got, ok, denied, NOT_CONTROLLER))


def topic_config(c, via, topic, name):
    a = admin(c, via)
    try:
        res = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        a.close()
    for entry in res[0].resources[0][4]:
        if entry[0] == name:
            return entry[1]
    return None


@test
def test_mixed_admin_requests_on_a_non_controller_forward_the_allowed_part():
    with SaslCluster(3) as c:
        ctl = c.wait_controller()
        other = [i for i in c.ids if i != ctl][0]
        a = admin(c, other)
        try:
            a.create_topics([NewTopic("no-pre", 1, 1)])
            pat = ResourcePattern(ResourceType.TOPIC, "ok-", ACLResourcePatternType.PREFIXED)
            res = a.create_acls([ACL("User:alice", "*", op, ACLPermissionType.ALLOW, pat)
                                 for op in (ACLOperation.CREATE, ACLOperation.DELETE,
                                            ACLOperation.ALTER, ACLOperation.ALTER_CONFIGS)])
            check(len(res["succeeded"]) == 4, "CreateAcls: %r" % res)
            flt = ACLFilter("User:alice", None, ACLOperation.ANY, ACLPermissionType.ANY,
                            ResourcePatternFilter(ResourceType.ANY, None,
                                                  ACLResourcePatternType.ANY))
            wait_until(lambda: len(a.describe_acls(flt)[0]) == 4, 15 * SLOW,
                       what="node %d seeing alice's ACLs" % other)
        finally:
            a.close()
        c.wait_topic("no-pre", 1)
        k = c.login(other, "alice")
        try:
            # CreateTopics v4
            body = array([string(n) + i32(1) + i16(1) + array([]) + array([])
                          for n in ("ok-a", "no-a")]) + i32(10000) + boolean(False)
            expect(results(k.call(CREATE_TOPICS, 4, body)), "ok-a", "no-a", "CreateTopics")
            c.wait_topic("ok-a", 1)
            check(not c.metadata(ctl, ["no-a"])["topics"] or
                  c.metadata(ctl, ["no-a"])["topics"][0]["error_code"] != 0,
                  "no-a was created")
            # CreatePartitions v1: ok-a to 2 partitions, no-pre refused
            body = array([string(n) + i32(2) + i32(-1) for n in ("ok-a", "no-pre")])
            body += i32(10000) + boolean(False)
            expect(results(k.call(CREATE_PARTITIONS, 1, body)), "ok-a", "no-pre",
                   "CreatePartitions")
            c.wait_topic("ok-a", 2)
            # AlterConfigs v1
            body = array([i8(RESOURCE_TOPIC) + string(n) +
                          array([string("retention.ms") + string("123456")])
                          for n in ("ok-a", "no-pre")]) + boolean(False)
            expect(results(k.call(ALTER_CONFIGS, 1, body), configs=True), "ok-a", "no-pre",
                   "AlterConfigs")
            wait_until(lambda: topic_config(c, other, "ok-a", "retention.ms") == "123456",
                       10 * SLOW, what="AlterConfigs did not set ok-a's retention.ms")
            # IncrementalAlterConfigs v0 (op 0 = SET)
            body = array([i8(RESOURCE_TOPIC) + string(n) +
                          array([string("retention.ms") + i8(0) + string("654321")])
                          for n in ("ok-a", "no-pre")]) + boolean(False)
            expect(results(k.call(INCREMENTAL_ALTER_CONFIGS, 0, body), configs=True), "ok-a",
                   "no-pre", "IncrementalAlterConfigs")
            wait_until(lambda: topic_config(c, other, "ok-a", "retention.ms") == "654321",
                       10 * SLOW, what="IncrementalAlterConfigs did not set ok-a's retention.ms")
            check(topic_config(c, other, "no-pre", "retention.ms") != "654321",
                  "no-pre's config changed")
            # DeleteTopics v3
            body = array([string(n) for n in ("ok-a", "no-pre")]) + i32(10000)
            expect(results(k.call(DELETE_TOPICS, 3, body), with_message=False), "ok-a",
                   "no-pre", "DeleteTopics")
        finally:
            k.close()
        wait_until(lambda: not any(t["name"] == "ok-a" and t["error_code"] == 0
                                   for t in c.metadata(ctl)["topics"]),
                   10 * SLOW, what="ok-a was not deleted")
        check(any(t["name"] == "no-pre" and t["error_code"] == 0
                  for t in c.metadata(ctl)["topics"]), "no-pre was deleted")


if __name__ == "__main__":
    t0 = time.monotonic()
    run_tests()
