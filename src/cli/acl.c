/*
 * `gregor acl add|list|remove`: CreateAcls, DescribeAcls and DeleteAcls through librdkafka's
 * admin API, in Kafka's model (kafka-acls.sh): a resource (--topic, --group or --cluster,
 * LITERAL or with --prefixed PREFIXED), a principal (User:NAME), a host, operations and
 * ALLOW (default) or --deny. list and remove take the same options as a filter, where an
 * option left out matches everything.
 *
 * librdkafka 2.0 knows the TOPIC, GROUP and CLUSTER (its "BROKER", code 4) resource types
 * only, so TRANSACTIONAL_ID and DELEGATION_TOKEN ACLs are managed with another admin client.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/internal.h"
#include "security/acl.h"

#define ACL_MAX_OPERATIONS 16

struct acl_opts {
    struct cli_common c;
    const char *topic, *group;
    int cluster, prefixed, deny, allow;
    const char *principal, *host;
    const char *ops[ACL_MAX_OPERATIONS];
    int nops;
};

static const struct cli_option acl_options[] = {
    {.name = "topic",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct acl_opts, topic, const char *),
     .min = 1,
     .arg = "NAME",
     .help = "the TOPIC resource (\"*\": every topic)"},
    {.name = "group",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct acl_opts, group, const char *),
     .min = 1,
     .arg = "NAME",
     .help = "the GROUP resource (\"*\": every group)"},
    {.name = "cluster",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct acl_opts, cluster, int),
     .help = "the CLUSTER resource (kafka-cluster)"},
    {.name = "prefixed",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct acl_opts, prefixed, int),
     .help = "the name is a prefix (PREFIXED pattern), else LITERAL"},
    {.name = "principal",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct acl_opts, principal, const char *),
     .min = 1,
     .arg = "User:NAME",
     .help = "who (\"User:*\": everyone)"},
    {.name = "host",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct acl_opts, host, const char *),
     .min = 1,
     .arg = "ADDR",
     .help = "from where (default \"*\": any host)"},
    {.name = "operation",
     .has_arg = required_argument,
     .kind = CLI_OPT_LIST,
     .target = CLI_FIELD(struct acl_opts, ops[0], const char *),
     .count = CLI_FIELD(struct acl_opts, nops, int),
     .max = ACL_MAX_OPERATIONS,
     .arg = "OP",
     .help = "READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION,\n"
             "DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE or ALL; may repeat"},
    {.name = "deny",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct acl_opts, deny, int),
     .help = "a DENY ACL (add), only DENY ACLs (list, remove)"},
    {.name = "allow",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct acl_opts, allow, int),
     .help = "an ALLOW ACL (add: the default), only ALLOW ACLs (list, remove)"},
    {.name = NULL},
};

static const struct cli_command_options acl_command = {
    .options = acl_options,
    .usage = "usage: gregor acl add (--topic NAME|--group NAME|--cluster) [--prefixed]\n"
             "                      --principal User:NAME --operation OP... [--host ADDR] "
             "[--deny]\n"
             "       gregor acl list [FILTER OPTIONS]\n"
             "       gregor acl remove [FILTER OPTIONS]\n"
             "\n",
    .epilog =
        "The broker needs authorizer.class.name; the caller needs ALTER (add, remove) or\n"
        "DESCRIBE (list) on the cluster, or to be in super.users.\n"
        "\n"
        "examples:\n"
        "  gregor acl add --topic orders- --prefixed --principal User:alice --operation READ\n"
        "  gregor acl add --group billing --principal User:alice --operation READ\n"
        "  gregor acl list --principal User:alice\n"
        "  gregor acl remove --topic orders- --prefixed\n"
        "  gregor acl list -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=PLAIN \\\n"
        "      -X sasl.username=admin -X sasl.password=secret\n",
    .help_column = 30,
};

/* The resource of the options: type, name (NULL in a filter without one) and pattern. */
static int acl_resource(struct acl_opts *o, bool filter, rd_kafka_ResourceType_t *type,
                        const char **name, rd_kafka_ResourcePatternType_t *pattern)
{
    int n = (o->topic != NULL) + (o->group != NULL) + (o->cluster != 0);
    if (n > 1)
        return cli_usage_error(&o->c, "give one of --topic, --group and --cluster");
    if (n == 0 && !filter)
        return cli_usage_error(&o->c, "add needs --topic, --group or --cluster");
    *type = o->topic     ? RD_KAFKA_RESOURCE_TOPIC
            : o->group   ? RD_KAFKA_RESOURCE_GROUP
            : o->cluster ? (rd_kafka_ResourceType_t)ACL_RESOURCE_CLUSTER
                         : RD_KAFKA_RESOURCE_ANY;
    *name = o->topic ? o->topic : o->group ? o->group : o->cluster ? ACL_CLUSTER_NAME : NULL;
    *pattern = o->prefixed        ? RD_KAFKA_RESOURCE_PATTERN_PREFIXED
               : filter && !*name ? RD_KAFKA_RESOURCE_PATTERN_ANY
                                  : RD_KAFKA_RESOURCE_PATTERN_LITERAL;
    return -1;
}

static int acl_operation(struct acl_opts *o, int i, rd_kafka_AclOperation_t *op)
{
    int code = acl_operation_code(o->ops[i]);
    if (code <= ACL_OPERATION_ANY || code > ACL_OPERATION_IDEMPOTENT_WRITE)
        return cli_usage_error(&o->c, "unknown operation '%s'", o->ops[i]);
    *op = (rd_kafka_AclOperation_t)code;
    return -1;
}

static void acl_print(const rd_kafka_AclBinding_t *b)
{
    printf("%s:%s:%s\t%s\t%s\t%s\t%s\n",
           acl_resource_type_name((int)rd_kafka_AclBinding_restype(b)),
           acl_pattern_type_name((int)rd_kafka_AclBinding_resource_pattern_type(b)),
           rd_kafka_AclBinding_name(b), rd_kafka_AclBinding_principal(b),
           rd_kafka_AclBinding_host(b), acl_operation_name((int)rd_kafka_AclBinding_operation(b)),
           acl_permission_name((int)rd_kafka_AclBinding_permission_type(b)));
}

static int acl_add(struct acl_opts *o, rd_kafka_t *rk)
{
    rd_kafka_ResourceType_t type;
    const char *name;
    rd_kafka_ResourcePatternType_t pattern;
    int rc = acl_resource(o, false, &type, &name, &pattern);
    if (rc >= 0)
        return rc;
    if (o->principal == NULL || o->nops == 0)
        return cli_usage_error(&o->c, "add needs --principal and --operation");
    rd_kafka_AclBinding_t *acls[ACL_MAX_OPERATIONS];
    int n = 0;
    char errstr[256];
    for (int i = 0; i < o->nops; i++) {
        rd_kafka_AclOperation_t op = RD_KAFKA_ACL_OPERATION_UNKNOWN;
        if ((rc = acl_operation(o, i, &op)) >= 0)
            goto out;
        acls[n] = rd_kafka_AclBinding_new(
            type, name, pattern, o->principal, o->host ? o->host : "*", op,
            o->deny ? RD_KAFKA_ACL_PERMISSION_TYPE_DENY : RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW,
            errstr, sizeof(errstr));
        if (acls[n] == NULL) {
            rc = cli_usage_error(&o->c, "%s", errstr);
            goto out;
        }
        n++;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = cli_admin_options(&o->c, rk, RD_KAFKA_ADMIN_OP_CREATEACLS);
    rd_kafka_CreateAcls(rk, acls, (size_t)n, ao, q);
    rd_kafka_event_t *ev = cli_admin_wait(&o->c, q, "create ACLs");
    rc = CLI_EXIT_FAIL;
    if (ev) {
        size_t cnt;
        const rd_kafka_acl_result_t **res =
            rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(ev), &cnt);
        rc = CLI_EXIT_OK;
        for (size_t i = 0; i < cnt; i++) {
            const rd_kafka_error_t *e = rd_kafka_acl_result_error(res[i]);
            if (e != NULL) {
                cli_error(&o->c, "%s: %s", rd_kafka_error_name(e), rd_kafka_error_string(e));
                rc = CLI_EXIT_FAIL;
            } else if (i < (size_t)n) {
                printf("added ");
                acl_print(acls[i]);
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
out:
    rd_kafka_AclBinding_destroy_array(acls, (size_t)n);
    return rc;
}

/* The filter of the options (one operation at most); NULL after printing why not. */
static rd_kafka_AclBindingFilter_t *acl_filter(struct acl_opts *o, int *rc)
{
    rd_kafka_ResourceType_t type;
    const char *name;
    rd_kafka_ResourcePatternType_t pattern;
    rd_kafka_AclOperation_t op = RD_KAFKA_ACL_OPERATION_ANY;
    if ((*rc = acl_resource(o, true, &type, &name, &pattern)) >= 0)
        return NULL;
    if (o->nops > 1) {
        *rc = cli_usage_error(&o->c, "a filter takes one --operation");
        return NULL;
    }
    if (o->nops == 1 && (*rc = acl_operation(o, 0, &op)) >= 0)
        return NULL;
    char errstr[256];
    rd_kafka_AclBindingFilter_t *f =
        rd_kafka_AclBindingFilter_new(type, name, pattern, o->principal, o->host, op,
                                      o->deny    ? RD_KAFKA_ACL_PERMISSION_TYPE_DENY
                                      : o->allow ? RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW
                                                 : RD_KAFKA_ACL_PERMISSION_TYPE_ANY,
                                      errstr, sizeof(errstr));
    if (f == NULL)
        *rc = cli_usage_error(&o->c, "%s", errstr);
    return f;
}

static int acl_list(struct acl_opts *o, rd_kafka_t *rk)
{
    int rc;
    rd_kafka_AclBindingFilter_t *f = acl_filter(o, &rc);
    if (f == NULL)
        return rc;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = cli_admin_options(&o->c, rk, RD_KAFKA_ADMIN_OP_DESCRIBEACLS);
    rd_kafka_DescribeAcls(rk, f, ao, q);
    rd_kafka_event_t *ev = cli_admin_wait(&o->c, q, "describe ACLs");
    rc = CLI_EXIT_FAIL;
    if (ev) {
        size_t n;
        const rd_kafka_AclBinding_t **acls =
            rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(ev), &n);
        for (size_t i = 0; i < n; i++)
            acl_print(acls[i]);
        rc = CLI_EXIT_OK;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_AclBinding_destroy(f);
    return rc;
}

static int acl_remove(struct acl_opts *o, rd_kafka_t *rk)
{
    int rc;
    rd_kafka_AclBindingFilter_t *f = acl_filter(o, &rc);
    if (f == NULL)
        return rc;
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = cli_admin_options(&o->c, rk, RD_KAFKA_ADMIN_OP_DELETEACLS);
    rd_kafka_DeleteAcls(rk, &f, 1, ao, q);
    rd_kafka_event_t *ev = cli_admin_wait(&o->c, q, "delete ACLs");
    rc = CLI_EXIT_FAIL;
    if (ev) {
        size_t n;
        const rd_kafka_DeleteAcls_result_response_t **res =
            rd_kafka_DeleteAcls_result_responses(rd_kafka_event_DeleteAcls_result(ev), &n);
        rc = CLI_EXIT_OK;
        for (size_t i = 0; i < n; i++) {
            const rd_kafka_error_t *e = rd_kafka_DeleteAcls_result_response_error(res[i]);
            if (e != NULL) {
                cli_error(&o->c, "%s: %s", rd_kafka_error_name(e), rd_kafka_error_string(e));
                rc = CLI_EXIT_FAIL;
                continue;
            }
            size_t m;
            const rd_kafka_AclBinding_t **acls =
                rd_kafka_DeleteAcls_result_response_matching_acls(res[i], &m);
            for (size_t j = 0; j < m; j++) {
                printf("removed ");
                acl_print(acls[j]);
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_AclBinding_destroy(f);
    return rc;
}

int cli_acl_main(int argc, char **argv)
{
    static const struct {
        const char *action;
        int (*run)(struct acl_opts *, rd_kafka_t *);
    } actions[] = {{"add", acl_add}, {"list", acl_list}, {"remove", acl_remove}};
    struct acl_opts o;
    memset(&o, 0, sizeof(o));
    cli_common_init(&o.c, "gregor acl");
    int rc = cli_options_want_action(&acl_command, argc, argv);
    if (rc >= 0)
        return rc;
    int (*run)(struct acl_opts *, rd_kafka_t *) = NULL;
    static char name[64];
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(argv[1], actions[i].action) == 0)
            run = actions[i].run;
    if (!run)
        return cli_usage_error(&o.c, "unknown action '%s' (add, list, remove)", argv[1]);
    snprintf(name, sizeof(name), "gregor acl %s", argv[1]);
    o.c.name = name;
    rc = cli_options_parse(&acl_command, &o, &o.c, argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    if (optind < argc - 1)
        return cli_usage_error(&o.c, "unexpected argument '%s'", argv[1 + optind]);
    rd_kafka_t *rk = cli_client_new(&o.c, RD_KAFKA_PRODUCER, NULL);
    if (!rk)
        return CLI_EXIT_FAIL;
    rc = cli_metadata(&o.c, rk, 0, NULL);
    if (rc == CLI_EXIT_OK)
        rc = run(&o, rk);
    return cli_client_destroy(rk, rc);
}
