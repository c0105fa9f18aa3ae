/*
 * ACLs: Kafka's authorization rule (security/acl.c), the ACL metadata record (records.c) and
 * the image's ACL set (image_acls.c) through apply, removal and a snapshot round trip.
 */
#include "cluster/image.h"
#include "proto/gen/errors.h"
#include "security/acl.h"
#include "test.h"

#include <errno.h>

static const struct acl_policy NO_SUPERS = {NULL, 0, false};

#define B(type, name, pattern, principal, host, op, perm)                                          \
    (struct acl_binding)                                                                           \
    {                                                                                              \
        ACL_RESOURCE_##type, ACL_PATTERN_##pattern, op, ACL_PERMISSION_##perm, name, principal,    \
            host                                                                                   \
    }

static bool allowed(const struct acl_policy *p, const struct acl_binding *v, size_t n,
                    const char *principal, const char *host, int type, const char *name, int op)
{
    struct acl_subject s = {principal, host};
    return acl_authorize(p, v, n, &s, type, name, op);
}

TEST(test_acl_prefixed_read_implies_describe_only)
{
    struct acl_binding v[] = {
        B(TOPIC, "orders-", PREFIXED, "User:alice", "*", ACL_OPERATION_READ, ALLOW),
    };
    CHECK(allowed(&NO_SUPERS, v, 1, "User:alice", "1.2.3.4", ACL_RESOURCE_TOPIC, "orders-eu",
                  ACL_OPERATION_READ));
    CHECK(allowed(&NO_SUPERS, v, 1, "User:alice", "1.2.3.4", ACL_RESOURCE_TOPIC, "orders-eu",
                  ACL_OPERATION_DESCRIBE));
    CHECK(!allowed(&NO_SUPERS, v, 1, "User:alice", "1.2.3.4", ACL_RESOURCE_TOPIC, "orders-eu",
                   ACL_OPERATION_WRITE));
    CHECK(!allowed(&NO_SUPERS, v, 1, "User:alice", "1.2.3.4", ACL_RESOURCE_TOPIC, "order",
                   ACL_OPERATION_READ));
    CHECK(!allowed(&NO_SUPERS, v, 1, "User:bob", "1.2.3.4", ACL_RESOURCE_TOPIC, "orders-eu",
                   ACL_OPERATION_READ));
    CHECK(!allowed(&NO_SUPERS, v, 1, "User:alice", "1.2.3.4", ACL_RESOURCE_GROUP, "orders-eu",
                   ACL_OPERATION_READ));
}

TEST(test_acl_deny_wins_and_is_not_implied)
{
    struct acl_binding v[] = {
        B(TOPIC, "*", LITERAL, "User:*", "*", ACL_OPERATION_ALL, ALLOW),
        B(TOPIC, "t", LITERAL, "User:alice", "*", ACL_OPERATION_READ, DENY),
        B(TOPIC, "t", LITERAL, "User:alice", "10.0.0.1", ACL_OPERATION_WRITE, DENY),
    };
    CHECK(!allowed(&NO_SUPERS, v, 3, "User:alice", "1.1.1.1", ACL_RESOURCE_TOPIC, "t",
                   ACL_OPERATION_READ));
    /* DENY READ does not deny DESCRIBE, which ALL allows */
    CHECK(allowed(&NO_SUPERS, v, 3, "User:alice", "1.1.1.1", ACL_RESOURCE_TOPIC, "t",
                  ACL_OPERATION_DESCRIBE));
    /* the host-bound DENY applies only from that host */
    CHECK(allowed(&NO_SUPERS, v, 3, "User:alice", "1.1.1.1", ACL_RESOURCE_TOPIC, "t",
                  ACL_OPERATION_WRITE));
    CHECK(!allowed(&NO_SUPERS, v, 3, "User:alice", "10.0.0.1", ACL_RESOURCE_TOPIC, "t",
                   ACL_OPERATION_WRITE));
    CHECK(allowed(&NO_SUPERS, v, 3, "User:bob", "1.1.1.1", ACL_RESOURCE_TOPIC, "t",
                  ACL_OPERATION_READ));
}

TEST(test_acl_super_users_and_no_acl_found)
{
    const char *supers[] = {"User:admin"};
    struct acl_policy p = {supers, 1, false};
    struct acl_binding v[] = {
        B(TOPIC, "*", LITERAL, "User:*", "*", ACL_OPERATION_ALL, DENY),
    };
    CHECK(allowed(&p, v, 1, "User:admin", "h", ACL_RESOURCE_TOPIC, "t", ACL_OPERATION_WRITE));
    CHECK(!allowed(&p, v, 1, "User:other", "h", ACL_RESOURCE_TOPIC, "t", ACL_OPERATION_WRITE));
    /* no ACL names the resource: allow.everyone.if.no.acl.found decides */
    CHECK(!allowed(&p, v, 0, "User:other", "h", ACL_RESOURCE_GROUP, "g", ACL_OPERATION_READ));
    p.allow_if_no_acl = true;
    CHECK(allowed(&p, v, 1, "User:other", "h", ACL_RESOURCE_GROUP, "g", ACL_OPERATION_READ));
    CHECK(!allowed(&p, v, 1, "User:other", "h", ACL_RESOURCE_TOPIC, "t", ACL_OPERATION_READ));
}

TEST(test_acl_alter_configs_implies_describe_configs_and_operations_field)
{
    struct acl_binding v[] = {
        B(CLUSTER, ACL_CLUSTER_NAME, LITERAL, "User:ops", "*", ACL_OPERATION_ALTER_CONFIGS, ALLOW),
        B(CLUSTER, ACL_CLUSTER_NAME, LITERAL, "User:ops", "*", ACL_OPERATION_ALTER, ALLOW),
    };
    struct acl_subject s = {"User:ops", "h"};
    int32_t ops = acl_authorized_operations(&NO_SUPERS, v, 2, &s, ACL_RESOURCE_CLUSTER,
                                            ACL_CLUSTER_NAME, ACL_OPERATIONS_CLUSTER);
    CHECK(ops ==
          (ACL_OPERATION_BIT(ACL_OPERATION_ALTER_CONFIGS) |
           ACL_OPERATION_BIT(ACL_OPERATION_DESCRIBE_CONFIGS) |
           ACL_OPERATION_BIT(ACL_OPERATION_ALTER) | ACL_OPERATION_BIT(ACL_OPERATION_DESCRIBE)));
}

TEST(test_acl_authorize_any_respects_wider_deny)
{
    struct acl_binding v[] = {
        B(TOPIC, "a-", PREFIXED, "User:p", "*", ACL_OPERATION_WRITE, ALLOW),
        B(TOPIC, "a", PREFIXED, "User:p", "*", ACL_OPERATION_WRITE, DENY),
    };
    struct acl_subject s = {"User:p", "h"};
    CHECK(acl_authorize_any(&NO_SUPERS, v, 1, &s, ACL_RESOURCE_TOPIC, ACL_OPERATION_WRITE));
    CHECK(!acl_authorize_any(&NO_SUPERS, v, 2, &s, ACL_RESOURCE_TOPIC, ACL_OPERATION_WRITE));
}

TEST(test_acl_filters_match_like_kafka)
{
    struct acl_binding lit = B(TOPIC, "orders", LITERAL, "User:a", "*", ACL_OPERATION_READ, ALLOW);
    struct acl_binding pre = B(TOPIC, "ord", PREFIXED, "User:a", "*", ACL_OPERATION_READ, ALLOW);
    struct acl_filter any = {
        ACL_RESOURCE_ANY, ACL_PATTERN_ANY, ACL_OPERATION_ANY, ACL_PERMISSION_ANY, NULL, NULL, NULL};
    CHECK(acl_filter_matches(&any, &lit) && acl_filter_matches(&any, &pre));
    struct acl_filter match = any;
    match.pattern_type = ACL_PATTERN_MATCH;
    match.resource_name = "orders";
    CHECK(acl_filter_matches(&match, &lit) && acl_filter_matches(&match, &pre));
    struct acl_filter exact = any;
    exact.resource_name = "orders";
    CHECK(acl_filter_matches(&exact, &lit) && !acl_filter_matches(&exact, &pre));
    struct acl_filter deny = any;
    deny.permission = ACL_PERMISSION_DENY;
    CHECK(!acl_filter_matches(&deny, &lit));
}

TEST(test_acl_binding_check_refuses_what_kafka_refuses)
{
    char msg[256];
    struct acl_binding ok = B(TOPIC, "t", LITERAL, "User:a", "*", ACL_OPERATION_READ, ALLOW);
    CHECK(acl_binding_check(&ok, msg, sizeof(msg)) == 0);
    struct acl_binding bad = ok;
    bad.pattern_type = ACL_PATTERN_MATCH;
    CHECK(acl_binding_check(&bad, msg, sizeof(msg)) == KAFKA_ERR_INVALID_REQUEST);
    bad = ok;
    bad.principal = "alice";
    CHECK(acl_binding_check(&bad, msg, sizeof(msg)) == KAFKA_ERR_INVALID_REQUEST);
    bad = ok;
    bad.operation = ACL_OPERATION_ANY;
    CHECK(acl_binding_check(&bad, msg, sizeof(msg)) == KAFKA_ERR_INVALID_REQUEST);
    bad = ok;
    bad.resource_type = ACL_RESOURCE_CLUSTER;
    CHECK(acl_binding_check(&bad, msg, sizeof(msg)) == KAFKA_ERR_INVALID_REQUEST);
    CHECK(strstr(msg, "kafka-cluster") != NULL);
}

static int apply_one(struct metadata_image *img, const uint8_t id[16], int remove,
                     const struct acl_binding *b)
{
    struct metadata_record rec = {.type = METADATA_REC_ACL};
    memcpy(rec.acl.id, id, 16);
    rec.acl.remove = (uint8_t)remove;
    if (b)
        rec.acl.binding = *b;
    /* through the codec, as the metadata log carries it */
    struct metadata_buf buf = {0};
    metadata_batch_begin(&buf);
    int rc = metadata_batch_append(&buf, &rec);
    if (rc == 0)
        rc = metadata_batch_finish(&buf);
    struct metadata_batch batch;
    if (rc == 0)
        rc = metadata_batch_decode(buf.data, buf.len, &batch);
    metadata_buf_free(&buf);
    if (rc != 0)
        return rc;
    rc = batch.n_records == 1 ? image_apply(img, &batch.records[0]) : -EBADMSG;
    metadata_batch_free(&batch);
    return rc;
}

TEST(test_acl_records_apply_remove_and_survive_a_snapshot)
{
    static const uint8_t id1[16] = {1}, id2[16] = {2};
    struct acl_binding b1 = B(TOPIC, "orders-", PREFIXED, "User:a", "*", ACL_OPERATION_READ, ALLOW);
    struct acl_binding b2 = B(GROUP, "g", LITERAL, "User:a", "10.0.0.1", ACL_OPERATION_ALL, DENY);
    struct metadata_image *img = image_new();
    CHECK(img != NULL);
    CHECK(apply_one(img, id1, 0, &b1) == 0);
    struct metadata_image *before = image_clone(img);
    CHECK(before != NULL);
    CHECK(apply_one(img, id2, 0, &b2) == 0);
    CHECK(apply_one(img, id2, 0, &b2) == 1); /* the same id twice: skipped */
    size_t n;
    metadata_image_acls(before, &n);
    CHECK(n == 1); /* the clone kept the set it shared */
    const struct acl_binding *v = metadata_image_acls(img, &n);
    CHECK(n == 2 && strcmp(v[1].host, "10.0.0.1") == 0 && v[1].permission == ACL_PERMISSION_DENY);
    struct metadata_buf snap = {0};
    CHECK(image_encode(img, &snap) == 0);
    int err = 0;
    struct metadata_image *restored = image_decode(snap.data, snap.len, &err);
    metadata_buf_free(&snap);
    CHECK(restored != NULL && err == 0);
    v = metadata_image_acls(restored, &n);
    CHECK(n == 2 && strcmp(v[0].resource_name, "orders-") == 0 &&
          v[0].pattern_type == ACL_PATTERN_PREFIXED &&
          metadata_image_acl_index(restored, id2) == 1);
    CHECK(apply_one(restored, id1, 1, NULL) == 0);
    CHECK(apply_one(restored, id1, 1, NULL) == 1); /* already gone */
    v = metadata_image_acls(restored, &n);
    CHECK(n == 1 && v[0].resource_type == ACL_RESOURCE_GROUP);
    metadata_image_release(restored);
    metadata_image_release(before);
    metadata_image_release(img);
}

TEST(test_acl_record_with_an_invalid_binding_is_refused)
{
    struct metadata_record rec = {.type = METADATA_REC_ACL};
    rec.acl.binding = B(TOPIC, "t", ANY, "User:a", "*", ACL_OPERATION_READ, ALLOW);
    struct metadata_buf buf = {0};
    metadata_batch_begin(&buf);
    CHECK(metadata_batch_append(&buf, &rec) == 0 && metadata_batch_finish(&buf) == 0);
    struct metadata_batch batch;
    CHECK(metadata_batch_decode(buf.data, buf.len, &batch) == -EBADMSG);
    metadata_buf_free(&buf);
}
TEST_MAIN
