/*
 * Kafka's ACL model and its authorization rule (StandardAuthorizer), as pure functions over an
 * array of bindings. Knows nothing of connections or the metadata log: the broker passes the
 * bindings of the current metadata image, the principal and the client's host.
 *
 * A binding is (resource type, resource name, pattern type, principal, host, operation,
 * permission) with Kafka's codes. A request (principal P from host H wants operation O on
 * resource R of type T) matches a binding when the types are equal; the pattern is LITERAL
 * with the name equal to R or "*", or PREFIXED with R starting with the name; the principal is
 * P or "User:*"; the host is H or "*". Then, as Kafka:
 *   - a super user is allowed everything;
 *   - a matching DENY for O (or ALL) denies: DENY wins over every ALLOW;
 *   - a matching ALLOW for O, ALL, or an operation implying O allows (READ, WRITE, DELETE and
 *     ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS);
 *   - otherwise, when no binding at all names the resource (allow.everyone.if.no.acl.found),
 *     allowed; else denied.
 * Deny is never implied: DENY READ does not deny DESCRIBE, as in Kafka.
 *
 * Thread-safety: every function here reads only its arguments; callers keep them alive.
 */
#ifndef GREGOR_SECURITY_ACL_H
#define GREGOR_SECURITY_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/acl_operations.h"

/* org.apache.kafka.common.resource.ResourceType */
enum acl_resource_type {
    ACL_RESOURCE_UNKNOWN = 0,
    ACL_RESOURCE_ANY = 1,
    ACL_RESOURCE_TOPIC = 2,
    ACL_RESOURCE_GROUP = 3,
    ACL_RESOURCE_CLUSTER = 4,
    ACL_RESOURCE_TRANSACTIONAL_ID = 5,
    ACL_RESOURCE_DELEGATION_TOKEN = 6,
    ACL_RESOURCE_USER = 7,
};

/* org.apache.kafka.common.resource.PatternType */
enum acl_pattern_type {
    ACL_PATTERN_UNKNOWN = 0,
    ACL_PATTERN_ANY = 1,
    ACL_PATTERN_MATCH = 2,
    ACL_PATTERN_LITERAL = 3,
    ACL_PATTERN_PREFIXED = 4,
};

/* org.apache.kafka.common.acl.AclPermissionType */
enum acl_permission {
    ACL_PERMISSION_UNKNOWN = 0,
    ACL_PERMISSION_ANY = 1,
    ACL_PERMISSION_DENY = 2,
    ACL_PERMISSION_ALLOW = 3,
};

/* The operation codes without a bit of their own in proto/acl_operations.h. */
#define ACL_OPERATION_UNKNOWN 0
#define ACL_OPERATION_ANY 1
#define ACL_OPERATION_ALL 2

/* Kafka's cluster resource is named "kafka-cluster". */
#define ACL_CLUSTER_NAME "kafka-cluster"
#define ACL_WILDCARD "*"
#define ACL_WILDCARD_PRINCIPAL "User:*"

struct acl_binding {
    int8_t resource_type; /* enum acl_resource_type, never ANY/UNKNOWN in a stored binding */
    int8_t pattern_type;  /* LITERAL or PREFIXED in a stored binding */
    int8_t operation;     /* enum acl_operation or ACL_OPERATION_ALL */
    int8_t permission;    /* ALLOW or DENY */
    const char *resource_name;
    const char *principal; /* "User:NAME" or "User:*" */
    const char *host;      /* an address or "*" */
};

/* A filter as DescribeAcls and DeleteAcls carry it: NULL strings and ANY codes match all. */
struct acl_filter {
    int8_t resource_type;
    int8_t pattern_type; /* ANY, MATCH (what would apply to the name), LITERAL, PREFIXED */
    int8_t operation;
    int8_t permission;
    const char *resource_name;
    const char *principal;
    const char *host;
};

/* Who asks and where from. super_users: principals allowed everything. */
struct acl_subject {
    const char *principal;
    const char *host;
};

struct acl_policy {
    const char *const *super_users;
    size_t n_super_users;
    bool allow_if_no_acl; /* allow.everyone.if.no.acl.found */
};

/* Returns true when `subject` may do `operation` on the resource, per the rule above. */
bool acl_authorize(const struct acl_policy *policy, const struct acl_binding *acls, size_t n,
                   const struct acl_subject *subject, int resource_type, const char *name,
                   int operation);

/*
 * Kafka's authorizeByResourceType: true when the subject may do `operation` on at least one
 * resource of the type (a super user, or an ALLOW that is not denied by a DENY on the same
 * or a wider pattern). Used for idempotent producers (WRITE on any topic).
 */
bool acl_authorize_any(const struct acl_policy *policy, const struct acl_binding *acls, size_t n,
                       const struct acl_subject *subject, int resource_type, int operation);

/* KIP-430: the bits of `supported` (ACL_OPERATIONS_*) the subject may do on the resource. */
int32_t acl_authorized_operations(const struct acl_policy *policy, const struct acl_binding *acls,
                                  size_t n, const struct acl_subject *subject, int resource_type,
                                  const char *name, int32_t supported);

/* True when binding b is selected by filter f (DescribeAcls, DeleteAcls). */
bool acl_filter_matches(const struct acl_filter *f, const struct acl_binding *b);

/*
 * Checks a binding to be created (CreateAcls): known codes, not ANY/MATCH/UNKNOWN, a
 * "User:"-style principal, a non-empty name, and the operation valid for the resource type.
 * Returns 0 or a Kafka error code (INVALID_REQUEST) with a message in msg.
 */
int acl_binding_check(const struct acl_binding *b, char *msg, size_t msglen);

/* Names for the CLI and logs ("TOPIC", "PREFIXED", "READ", "ALLOW"); "UNKNOWN" otherwise. */
const char *acl_resource_type_name(int code);
const char *acl_pattern_type_name(int code);
const char *acl_operation_name(int code);
const char *acl_permission_name(int code);
/* Codes of names (case-insensitive); -1 when unknown. */
int acl_resource_type_code(const char *name);
int acl_pattern_type_code(const char *name);
int acl_operation_code(const char *name);
int acl_permission_code(const char *name);

#endif
