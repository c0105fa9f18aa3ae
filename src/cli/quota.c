/*
 * gregor quota set|remove|list: client quotas (KIP-546) per user and/or client id, or their
 * defaults. librdkafka has no call for them, so the first bootstrap broker is asked directly
 * with Gregor's codec (AlterClientQuotas v1, DescribeClientQuotas v1); a broker that is not
 * the active controller forwards the change.
 */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "broker/controller_client.h"
#include "cli/internal.h"
#include "proto/gen/alter_client_quotas.h"
#include "proto/gen/describe_client_quotas.h"
#include "proto/gen/errors.h"

#define QUOTA_API_VERSION 1
#define QUOTA_KEYS 4

static const char *const quota_keys[QUOTA_KEYS] = {
    "producer_byte_rate", "consumer_byte_rate", "request_percentage", "controller_mutation_rate"};

struct quota_opts {
    struct cli_common c;
    const char *user;
    const char *client_id;
    int default_user;
    int default_client_id;
    const char *values[QUOTA_KEYS]; /* set: the value given for each key, NULL if none */
    const char *remove_keys[QUOTA_KEYS];
    int n_remove_keys;
    int validate_only;
};

static const struct cli_option quota_options[] = {
    {.name = "user",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .min = 1,
     .target = CLI_FIELD(struct quota_opts, user, const char *),
     .expects = "a user name",
     .arg = "USER",
     .help = "the user (the SASL principal's name; ANONYMOUS without SASL)"},
    {.name = "default-user",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct quota_opts, default_user, int),
     .help = "the default user entity (<default>)"},
    {.name = "client-id",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .min = 1,
     .target = CLI_FIELD(struct quota_opts, client_id, const char *),
     .expects = "a client id",
     .arg = "ID",
     .help = "the client id"},
    {.name = "default-client-id",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct quota_opts, default_client_id, int),
     .help = "the default client-id entity (<default>)"},
    {.name = "producer-byte-rate",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .min = 1,
     .target = CLI_FIELD(struct quota_opts, values[0], const char *),
     .arg = "N",
     .help = "set: produced bytes per second"},
    {.name = "consumer-byte-rate",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .min = 1,
     .target = CLI_FIELD(struct quota_opts, values[1], const char *),
     .arg = "N",
     .help = "set: fetched bytes per second"},
    {.name = "request-percentage",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .min = 1,
     .target = CLI_FIELD(struct quota_opts, values[2], const char *),
     .arg = "P",
     .help = "set: % of one broker thread's time spent on requests"},
    {.name = "controller-mutation-rate",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .min = 1,
     .target = CLI_FIELD(struct quota_opts, values[3], const char *),
     .arg = "R",
     .help = "set: stored, not enforced by Gregor"},
    {.name = "key",
     .has_arg = required_argument,
     .kind = CLI_OPT_LIST,
     .target = CLI_FIELD(struct quota_opts, remove_keys[0], const char *),
     .count = CLI_FIELD(struct quota_opts, n_remove_keys, int),
     .max = QUOTA_KEYS,
     .arg = "KEY",
     .help = "remove: only this key (producer_byte_rate, ...), may repeat"},
    {.name = "validate-only",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct quota_opts, validate_only, int),
     .help = "set/remove: validate on the controller, change nothing"},
    {.name = NULL},
};

static const struct cli_command_options quota_command = {
    .options = quota_options,
    .usage = "usage: gregor quota set ENTITY [--producer-byte-rate N] [--consumer-byte-rate N]\n"
             "                         [--request-percentage P] [--validate-only]\n"
             "       gregor quota remove ENTITY [--key KEY]...\n"
             "       gregor quota list [ENTITY]\n"
             "\n"
             "ENTITY is --user USER or --default-user, and/or --client-id ID or\n"
             "--default-client-id. list without an entity prints every quota; with one, the\n"
             "quotas of entities that have those names (and possibly other types).\n"
             "\n",
    .epilog = "examples:\n"
              "  gregor quota set --client-id loader --producer-byte-rate 1048576\n"
              "  gregor quota set --default-user --consumer-byte-rate 10485760\n"
              "  gregor quota list\n"
              "  gregor quota remove --client-id loader\n",
    .help_column = 34,
};

/* The first bootstrap broker as host and port. */
static void quota_bootstrap(const struct cli_common *c, char *host, size_t len, int *port)
{
    snprintf(host, len, "%s", c->brokers ? c->brokers : CLI_DEFAULT_BROKERS);
    host[strcspn(host, ",")] = '\0';
    char *colon = strrchr(host, ':');
    *port = colon ? atoi(colon + 1) : 9092;
    if (colon)
        *colon = '\0';
}

/* One request to the bootstrap broker; 0, or -1 after printing the failure. */
static int quota_call(struct quota_opts *o, int16_t api_key, const void *req, void *resp,
                      uint8_t **buf, struct arena *arena)
{
    char host[256];
    int port;
    quota_bootstrap(&o->c, host, sizeof(host), &port);
    struct controller_client cc;
    controller_client_init(&cc, -1, NULL);
    snprintf(cc.client_id, sizeof(cc.client_id), "gregor-cli");
    int rc = controller_client_call(&cc, host, port, api_key, QUOTA_API_VERSION, req, resp, buf,
                                    arena, o->c.timeout_ms > 0 ? o->c.timeout_ms : 5000);
    controller_client_close(&cc);
    if (rc != 0) {
        cli_error(&o->c, "cannot reach %s:%d: %s", host, port, strerror(-rc));
        return -1;
    }
    return 0;
}

static struct kstr quota_kstr(const char *s)
{
    return s ? (struct kstr){s, (int32_t)strlen(s)} : KSTR_NULL;
}

/* The entity of the options; returns its component count (0: none given). */
static int quota_entity(const struct quota_opts *o,
                        struct kmsg_alter_client_quotas_request_entity_data e[2])
{
    int n = 0;
    if (o->user || o->default_user)
        e[n++] = (struct kmsg_alter_client_quotas_request_entity_data){KSTR_LIT("user"),
                                                                       quota_kstr(o->user)};
    if (o->client_id || o->default_client_id)
        e[n++] = (struct kmsg_alter_client_quotas_request_entity_data){KSTR_LIT("client-id"),
                                                                       quota_kstr(o->client_id)};
    return n;
}

static int quota_alter(struct quota_opts *o, bool remove)
{
    struct kmsg_alter_client_quotas_request_entity_data entity[2];
    int ne = quota_entity(o, entity);
    if (ne == 0)
        return cli_usage_error(&o->c, "give --user/--default-user and/or "
                                      "--client-id/--default-client-id");
    struct kmsg_alter_client_quotas_request_op_data ops[QUOTA_KEYS];
    int nops = 0;
    for (int k = 0; k < QUOTA_KEYS; k++) {
        bool listed = o->n_remove_keys == 0;
        for (int j = 0; j < o->n_remove_keys; j++)
            listed |= strcmp(o->remove_keys[j], quota_keys[k]) == 0;
        if (remove && listed) {
            ops[nops++] = (struct kmsg_alter_client_quotas_request_op_data){
                quota_kstr(quota_keys[k]), 0.0, true};
        } else if (!remove && o->values[k]) {
            char *end;
            double v = strtod(o->values[k], &end);
            if (*end != '\0' || !isfinite(v))
                return cli_usage_error(&o->c, "%s expects a number", quota_keys[k]);
            ops[nops++] = (struct kmsg_alter_client_quotas_request_op_data){
                quota_kstr(quota_keys[k]), v, false};
        }
    }
    for (int j = 0; j < o->n_remove_keys; j++) {
        bool known = false;
        for (int k = 0; k < QUOTA_KEYS; k++)
            known |= strcmp(o->remove_keys[j], quota_keys[k]) == 0;
        if (!known)
            return cli_usage_error(&o->c, "unknown quota key '%s'", o->remove_keys[j]);
    }
    if (nops == 0)
        return cli_usage_error(&o->c, "give at least one of --producer-byte-rate, "
                                      "--consumer-byte-rate, --request-percentage");
    struct kmsg_alter_client_quotas_request_entry_data entry = {{ne, entity}, {nops, ops}};
    struct kmsg_alter_client_quotas_request req = {{1, &entry}, o->validate_only != 0};
    struct kmsg_alter_client_quotas_response resp;
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    int rc = quota_call(o, KPROTO_API_ALTER_CLIENT_QUOTAS, &req, &resp, &buf, &arena) == 0
                 ? CLI_EXIT_OK
                 : CLI_EXIT_UNAVAILABLE;
    if (rc == CLI_EXIT_OK && resp.entries.n == 1 && resp.entries.v[0].error_code != 0) {
        const struct kmsg_alter_client_quotas_response_entry_data *e = &resp.entries.v[0];
        cli_error(&o->c, "%s: %.*s", kafka_error_name(e->error_code),
                  e->error_message.len > 0 ? e->error_message.len : 0,
                  e->error_message.len > 0 ? e->error_message.ptr : "");
        rc = CLI_EXIT_FAIL;
    } else if (rc == CLI_EXIT_OK) {
        printf("%s%s\n", remove ? "removed" : "set", o->validate_only ? " (validate only)" : "");
    }
    free(buf);
    arena_free(&arena);
    return rc;
}

static void quota_print_name(struct kstr type, struct kstr name)
{
    printf("%.*s=", type.len > 0 ? type.len : 0, type.len > 0 ? type.ptr : "");
    if (name.len < 0)
        printf("<default>");
    else
        printf("%.*s", name.len, name.ptr);
}

static void quota_print(const struct kmsg_describe_client_quotas_response *resp)
{
    for (int32_t i = 0; i < resp->entries.n; i++) {
        const struct kmsg_describe_client_quotas_response_entry_data *e = &resp->entries.v[i];
        for (int32_t j = 0; j < e->entity.n; j++) {
            printf(j ? " " : "");
            quota_print_name(e->entity.v[j].entity_type, e->entity.v[j].entity_name);
        }
        for (int32_t j = 0; j < e->values.n; j++) {
            const struct kmsg_describe_client_quotas_response_value_data *v = &e->values.v[j];
            printf("  %.*s=%.17g", v->key.len, v->key.ptr, v->value);
        }
        printf("\n");
    }
}

static int quota_list(struct quota_opts *o)
{
    struct kmsg_describe_client_quotas_request_component_data comp[2];
    int n = 0;
    if (o->user || o->default_user)
        comp[n++] = (struct kmsg_describe_client_quotas_request_component_data){
            KSTR_LIT("user"), (int8_t)(o->user ? 0 : 1), quota_kstr(o->user)};
    if (o->client_id || o->default_client_id)
        comp[n++] = (struct kmsg_describe_client_quotas_request_component_data){
            KSTR_LIT("client-id"), (int8_t)(o->client_id ? 0 : 1), quota_kstr(o->client_id)};
    struct kmsg_describe_client_quotas_request req = {{n, comp}, false};
    struct kmsg_describe_client_quotas_response resp;
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    int rc = quota_call(o, KPROTO_API_DESCRIBE_CLIENT_QUOTAS, &req, &resp, &buf, &arena) == 0
                 ? CLI_EXIT_OK
                 : CLI_EXIT_UNAVAILABLE;
    if (rc == CLI_EXIT_OK && resp.error_code != 0) {
        cli_error(&o->c, "%s", kafka_error_name(resp.error_code));
        rc = CLI_EXIT_FAIL;
    } else if (rc == CLI_EXIT_OK) {
        quota_print(&resp);
    }
    free(buf);
    arena_free(&arena);
    return rc;
}

int cli_quota_main(int argc, char **argv)
{
    static char name[64];
    struct quota_opts o;
    memset(&o, 0, sizeof(o));
    cli_common_init(&o.c, "gregor quota");
    int rc = cli_options_want_action(&quota_command, argc, argv);
    if (rc >= 0)
        return rc;
    const char *action = argv[1];
    if (strcmp(action, "set") != 0 && strcmp(action, "remove") != 0 && strcmp(action, "list") != 0)
        return cli_usage_error(&o.c, "unknown action '%s' (set, remove, list)", action);
    snprintf(name, sizeof(name), "gregor quota %s", action);
    o.c.name = name;
    rc = cli_options_parse(&quota_command, &o, &o.c, argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    if (optind < argc - 1)
        return cli_usage_error(&o.c, "unexpected argument '%s'", argv[1 + optind]);
    if ((o.user && o.default_user) || (o.client_id && o.default_client_id))
        return cli_usage_error(&o.c, "a name and its default cannot both be given");
    if (strcmp(action, "list") == 0)
        return quota_list(&o);
    return quota_alter(&o, strcmp(action, "remove") == 0);
}
