/*
 * Kafka's authorization rule over ACL bindings (acl.h). Matching is a linear scan of the
 * bindings without allocation; a broker holds few ACLs compared with the requests it serves,
 * and the scan stops at the first DENY.
 */
#include "security/acl.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proto/gen/errors.h"

static bool acl_is_super_user(const struct acl_policy *policy, const char *principal)
{
    for (size_t i = 0; i < policy->n_super_users; i++)
        if (strcmp(policy->super_users[i], principal) == 0)
            return true;
    return false;
}

/* True when the binding's resource pattern covers the resource (type, name). */
static bool acl_pattern_covers(const struct acl_binding *b, int resource_type, const char *name)
{
    if (b->resource_type != resource_type)
        return false;
    if (b->pattern_type == ACL_PATTERN_LITERAL)
        return strcmp(b->resource_name, name) == 0 || strcmp(b->resource_name, ACL_WILDCARD) == 0;
    if (b->pattern_type == ACL_PATTERN_PREFIXED)
        return strncmp(name, b->resource_name, strlen(b->resource_name)) == 0;
    return false;
}

static bool acl_subject_matches(const struct acl_binding *b, const struct acl_subject *s)
{
    return (strcmp(b->principal, ACL_WILDCARD_PRINCIPAL) == 0 ||
            strcmp(b->principal, s->principal) == 0) &&
           (strcmp(b->host, ACL_WILDCARD) == 0 || strcmp(b->host, s->host) == 0);
}

/* Kafka's StandardAuthorizerData: an ALLOW of `granted` also allows these operations. */
static bool acl_allow_implies(int granted, int wanted)
{
    if (granted == ACL_OPERATION_ALL || granted == wanted)
        return true;
    if (wanted == ACL_OPERATION_DESCRIBE)
        return granted == ACL_OPERATION_READ || granted == ACL_OPERATION_WRITE ||
               granted == ACL_OPERATION_DELETE || granted == ACL_OPERATION_ALTER;
    if (wanted == ACL_OPERATION_DESCRIBE_CONFIGS)
        return granted == ACL_OPERATION_ALTER_CONFIGS;
    return false;
}

bool acl_authorize(const struct acl_policy *policy, const struct acl_binding *acls, size_t n,
                   const struct acl_subject *subject, int resource_type, const char *name,
                   int operation)
{
    assert(operation != ACL_OPERATION_ALL && operation != ACL_OPERATION_ANY);
    if (acl_is_super_user(policy, subject->principal))
        return true;
    bool any_acl = false, allowed = false;
    for (size_t i = 0; i < n; i++) {
        const struct acl_binding *b = &acls[i];
        if (!acl_pattern_covers(b, resource_type, name))
            continue;
        any_acl = true;
        if (!acl_subject_matches(b, subject))
            continue;
        if (b->permission == ACL_PERMISSION_DENY &&
            (b->operation == ACL_OPERATION_ALL || b->operation == operation))
            return false;
        if (b->permission == ACL_PERMISSION_ALLOW && acl_allow_implies(b->operation, operation))
            allowed = true;
    }
    return allowed || (!any_acl && policy->allow_if_no_acl);
}

/* True when a DENY of the subject for `operation` covers every resource that `allow` covers. */
static bool acl_deny_covers(const struct acl_binding *deny, const struct acl_binding *allow)
{
    if (deny->resource_type != allow->resource_type)
        return false;
    if (deny->pattern_type == ACL_PATTERN_LITERAL && strcmp(deny->resource_name, ACL_WILDCARD) == 0)
        return true;
    if (deny->pattern_type == ACL_PATTERN_PREFIXED)
        return strncmp(allow->resource_name, deny->resource_name, strlen(deny->resource_name)) == 0;
    return allow->pattern_type == ACL_PATTERN_LITERAL &&
           strcmp(deny->resource_name, allow->resource_name) == 0;
}

bool acl_authorize_any(const struct acl_policy *policy, const struct acl_binding *acls, size_t n,
                       const struct acl_subject *subject, int resource_type, int operation)
{
    if (acl_is_super_user(policy, subject->principal))
        return true;
    for (size_t i = 0; i < n; i++) {
        const struct acl_binding *a = &acls[i];
        if (a->resource_type != resource_type || a->permission != ACL_PERMISSION_ALLOW ||
            !acl_allow_implies(a->operation, operation) || !acl_subject_matches(a, subject))
            continue;
        bool denied = false;
        for (size_t j = 0; j < n && !denied; j++) {
            const struct acl_binding *d = &acls[j];
            denied = d->permission == ACL_PERMISSION_DENY &&
                     (d->operation == ACL_OPERATION_ALL || d->operation == operation) &&
                     acl_subject_matches(d, subject) && acl_deny_covers(d, a);
        }
        if (!denied)
            return true;
    }
    return false;
}

int32_t acl_authorized_operations(const struct acl_policy *policy, const struct acl_binding *acls,
                                  size_t n, const struct acl_subject *subject, int resource_type,
                                  const char *name, int32_t supported)
{
    int32_t out = 0;
    for (int op = ACL_OPERATION_READ; op <= ACL_OPERATION_IDEMPOTENT_WRITE; op++)
        if ((supported & ACL_OPERATION_BIT(op)) &&
            acl_authorize(policy, acls, n, subject, resource_type, name, op))
            out |= ACL_OPERATION_BIT(op);
    return out;
}

/* Kafka's ResourcePatternFilter.matches. */
static bool acl_filter_matches_pattern(const struct acl_filter *f, const struct acl_binding *b)
{
    if (f->resource_type != ACL_RESOURCE_ANY && f->resource_type != b->resource_type)
        return false;
    if (f->pattern_type != ACL_PATTERN_ANY && f->pattern_type != ACL_PATTERN_MATCH &&
        f->pattern_type != b->pattern_type)
        return false;
    if (f->resource_name == NULL)
        return true;
    if (f->pattern_type == ACL_PATTERN_ANY || f->pattern_type == b->pattern_type)
        return strcmp(f->resource_name, b->resource_name) == 0;
    if (b->pattern_type == ACL_PATTERN_LITERAL)
        return strcmp(f->resource_name, b->resource_name) == 0 ||
               strcmp(b->resource_name, ACL_WILDCARD) == 0;
    return strncmp(f->resource_name, b->resource_name, strlen(b->resource_name)) == 0;
}

bool acl_filter_matches(const struct acl_filter *f, const struct acl_binding *b)
{
    return acl_filter_matches_pattern(f, b) &&
           (f->principal == NULL || strcmp(f->principal, b->principal) == 0) &&
           (f->host == NULL || strcmp(f->host, b->host) == 0) &&
           (f->operation == ACL_OPERATION_ANY || f->operation == b->operation) &&
           (f->permission == ACL_PERMISSION_ANY || f->permission == b->permission);
}

/* ---------- validation and names ---------- */

static const char *const acl_resource_names[] = {
    "UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER",
};
static const char *const acl_pattern_names[] = {"UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"};
static const char *const acl_operation_names[] = {
    "UNKNOWN",
    "ANY",
    "ALL",
    "READ",
    "WRITE",
    "CREATE",
    "DELETE",
    "ALTER",
    "DESCRIBE",
    "CLUSTER_ACTION",
    "DESCRIBE_CONFIGS",
    "ALTER_CONFIGS",
    "IDEMPOTENT_WRITE",
    "CREATE_TOKENS",
    "DESCRIBE_TOKENS",
};
static const char *const acl_permission_names[] = {"UNKNOWN", "ANY", "DENY", "ALLOW"};

#define ACL_COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *acl_name_of(const char *const *names, int n, int code)
{
    return code >= 0 && code < n ? names[code] : "UNKNOWN";
}

static int acl_code_of(const char *const *names, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcasecmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *acl_resource_type_name(int code)
{
    return acl_name_of(acl_resource_names, ACL_COUNT(acl_resource_names), code);
}
const char *acl_pattern_type_name(int code)
{
    return acl_name_of(acl_pattern_names, ACL_COUNT(acl_pattern_names), code);
}
const char *acl_operation_name(int code)
{
    return acl_name_of(acl_operation_names, ACL_COUNT(acl_operation_names), code);
}
const char *acl_permission_name(int code)
{
    return acl_name_of(acl_permission_names, ACL_COUNT(acl_permission_names), code);
}
int acl_resource_type_code(const char *name)
{
    return acl_code_of(acl_resource_names, ACL_COUNT(acl_resource_names), name);
}
int acl_pattern_type_code(const char *name)
{
    return acl_code_of(acl_pattern_names, ACL_COUNT(acl_pattern_names), name);
}
int acl_operation_code(const char *name)
{
    return acl_code_of(acl_operation_names, ACL_COUNT(acl_operation_names), name);
}
int acl_permission_code(const char *name)
{
    return acl_code_of(acl_permission_names, ACL_COUNT(acl_permission_names), name);
}

int acl_binding_check(const struct acl_binding *b, char *msg, size_t msglen)
{
    if (b->resource_type <= ACL_RESOURCE_ANY || b->resource_type > ACL_RESOURCE_USER) {
        snprintf(msg, msglen, "Invalid resourceType %s", acl_resource_type_name(b->resource_type));
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (b->pattern_type != ACL_PATTERN_LITERAL && b->pattern_type != ACL_PATTERN_PREFIXED) {
        snprintf(msg, msglen, "Invalid patternType %s", acl_pattern_type_name(b->pattern_type));
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (b->operation <= ACL_OPERATION_ANY || b->operation >= ACL_COUNT(acl_operation_names)) {
        snprintf(msg, msglen, "Invalid operation %s", acl_operation_name(b->operation));
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (b->permission != ACL_PERMISSION_ALLOW && b->permission != ACL_PERMISSION_DENY) {
        snprintf(msg, msglen, "Invalid permissionType %s", acl_permission_name(b->permission));
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (b->resource_name == NULL || b->resource_name[0] == 0) {
        snprintf(msg, msglen, "Resource name should not be empty");
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (b->principal == NULL || strchr(b->principal, ':') == NULL) {
        snprintf(msg, msglen,
                 "Could not parse principal from `%.200s` (no colon is present separating the "
                 "principal type from the principal name)",
                 b->principal ? b->principal : "null");
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (b->host == NULL || b->host[0] == 0) {
        snprintf(msg, msglen, "Invalid host");
        return KAFKA_ERR_INVALID_REQUEST;
    }
    if (b->resource_type == ACL_RESOURCE_CLUSTER && strcmp(b->resource_name, ACL_CLUSTER_NAME)) {
        snprintf(msg, msglen, "The only valid name for the CLUSTER resource is %s",
                 ACL_CLUSTER_NAME);
        return KAFKA_ERR_INVALID_REQUEST;
    }
    return 0;
}
