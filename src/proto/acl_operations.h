/*
 * Kafka's ACL operation codes (org.apache.kafka.common.acl.AclOperation) and the operations each
 * resource type has (Kafka's AclEntry.supportedOperations), as the 32-bit fields of KIP-430's
 * authorized operations: bit n is set when the operation with code n is allowed.
 *
 * Kafka without an authorizer reports every operation of the resource, which is what Gregor
 * (no authorizer yet) answers when a request asks; a request that does not ask gets
 * ACL_OPERATIONS_NOT_REQUESTED, the schemas' default. Groups: Kafka 3.9+ also lists
 * DESCRIBE_CONFIGS and ALTER_CONFIGS, which come with group configs (KIP-848); Gregor serves no
 * group configs, so it reports the set of Kafka 2.3-3.8.
 */
#ifndef GREGOR_PROTO_ACL_OPERATIONS_H
#define GREGOR_PROTO_ACL_OPERATIONS_H

#include <stdint.h>

enum acl_operation {
    ACL_OPERATION_READ = 3,
    ACL_OPERATION_WRITE = 4,
    ACL_OPERATION_CREATE = 5,
    ACL_OPERATION_DELETE = 6,
    ACL_OPERATION_ALTER = 7,
    ACL_OPERATION_DESCRIBE = 8,
    ACL_OPERATION_CLUSTER_ACTION = 9,
    ACL_OPERATION_DESCRIBE_CONFIGS = 10,
    ACL_OPERATION_ALTER_CONFIGS = 11,
    ACL_OPERATION_IDEMPOTENT_WRITE = 12,
};

#define ACL_OPERATION_BIT(op) ((int32_t)1 << (op))

#define ACL_OPERATIONS_TOPIC                                                                       \
    (ACL_OPERATION_BIT(ACL_OPERATION_READ) | ACL_OPERATION_BIT(ACL_OPERATION_WRITE) |              \
     ACL_OPERATION_BIT(ACL_OPERATION_CREATE) | ACL_OPERATION_BIT(ACL_OPERATION_DELETE) |           \
     ACL_OPERATION_BIT(ACL_OPERATION_ALTER) | ACL_OPERATION_BIT(ACL_OPERATION_DESCRIBE) |          \
     ACL_OPERATION_BIT(ACL_OPERATION_DESCRIBE_CONFIGS) |                                           \
     ACL_OPERATION_BIT(ACL_OPERATION_ALTER_CONFIGS))

#define ACL_OPERATIONS_CLUSTER                                                                     \
    (ACL_OPERATION_BIT(ACL_OPERATION_CREATE) | ACL_OPERATION_BIT(ACL_OPERATION_ALTER) |            \
     ACL_OPERATION_BIT(ACL_OPERATION_DESCRIBE) | ACL_OPERATION_BIT(ACL_OPERATION_CLUSTER_ACTION) | \
     ACL_OPERATION_BIT(ACL_OPERATION_DESCRIBE_CONFIGS) |                                           \
     ACL_OPERATION_BIT(ACL_OPERATION_ALTER_CONFIGS) |                                              \
     ACL_OPERATION_BIT(ACL_OPERATION_IDEMPOTENT_WRITE))

#define ACL_OPERATIONS_GROUP                                                                       \
    (ACL_OPERATION_BIT(ACL_OPERATION_READ) | ACL_OPERATION_BIT(ACL_OPERATION_DELETE) |             \
     ACL_OPERATION_BIT(ACL_OPERATION_DESCRIBE))

/* The fields Kafka's AuthHelper.authorizedOperations builds (Utils.to32BitField of the codes). */
_Static_assert(ACL_OPERATIONS_TOPIC == 3576, "topic operations");
_Static_assert(ACL_OPERATIONS_CLUSTER == 8096, "cluster operations");
_Static_assert(ACL_OPERATIONS_GROUP == 328, "group operations");

/* The schemas' default for authorized operations nobody asked for. */
#define ACL_OPERATIONS_NOT_REQUESTED INT32_MIN

#endif
