/*
 * gregor topic create|list|describe|delete|alter.
 *
 * list/describe read one all-topics Metadata response (never a per-topic request, which could
 * auto-create the topic being described). Offsets come from ListOffsets (earliest = log start,
 * latest = high watermark), configs from DescribeConfigs.
 *
 * librdkafka 2.0.2 has no IncrementalAlterConfigs, and AlterConfigs replaces a topic's whole
 * set of dynamic configs, so alter reads the current dynamic configs first and sends the
 * merged set. Two concurrent alters of one topic can therefore lose one another's change.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli/internal.h"

#define TOPIC_MAX_CONFIGS 128

struct topic_opts {
    struct cli_common c;
    const char *action;
    int partitions;         /* -1: broker default (create) / unchanged (alter) */
    int replication_factor; /* -1: broker default */
    const char *set[TOPIC_MAX_CONFIGS];
    int nset;
    const char *del[TOPIC_MAX_CONFIGS];
    int ndel;
    int if_exists, if_not_exists, include_internal, no_configs, show_log_dirs;
    char **names;
    int nnames;
};

static const struct cli_option topic_options[] = {
    {.name = "partitions",
     .letter = 'p',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct topic_opts, partitions, int),
     .min = 1,
     .max = 1000000,
     .expects = "a positive number",
     .arg = "N",
     .help = "partition count (create), new total count (alter)"},
    {.name = "replication-factor",
     .letter = 'r',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct topic_opts, replication_factor, int),
     .min = 1,
     .max = 32767,
     .expects = "a positive number",
     .arg = "N",
     .help = "replicas per partition (create)"},
    {.name = "config",
     .letter = 'c',
     .has_arg = required_argument,
     .kind = CLI_OPT_KV_LIST,
     .target = CLI_FIELD(struct topic_opts, set[0], const char *),
     .count = CLI_FIELD(struct topic_opts, nset, int),
     .max = TOPIC_MAX_CONFIGS,
     .arg = "KEY=VALUE",
     .help = "topic config, may repeat"},
    {.name = "delete-config",
     .has_arg = required_argument,
     .kind = CLI_OPT_LIST,
     .target = CLI_FIELD(struct topic_opts, del[0], const char *),
     .count = CLI_FIELD(struct topic_opts, ndel, int),
     .max = TOPIC_MAX_CONFIGS,
     .arg = "KEY",
     .help = "revert a topic config to its default (alter)"},
    {.name = "if-exists",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct topic_opts, if_exists, int),
     .help = "delete: succeed quietly when a topic does not exist"},
    {.name = "if-not-exists",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct topic_opts, if_not_exists, int),
     .help = "create: succeed quietly when the topic exists"},
    {.name = "all",
     .letter = 'a',
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct topic_opts, include_internal, int),
     .help = "list: include internal topics (__consumer_offsets)"},
    {.name = "no-configs",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct topic_opts, no_configs, int),
     .help = "describe: skip the configs"},
    {.name = "log-dirs",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct topic_opts, show_log_dirs, int),
     .help = "describe: each broker's log directory (volume size and\n"
             "free space) and each replica's size and offset lag"},
    {.name = NULL},
};

static const struct cli_command_options topic_command = {
    .options = topic_options,
    .usage = "usage: gregor topic create TOPIC [--partitions N] [--replication-factor N]\n"
             "                           [--config KEY=VALUE]... [--if-not-exists]\n"
             "       gregor topic list [--all]\n"
             "       gregor topic describe [TOPIC...] [--no-configs] [--log-dirs]\n"
             "       gregor topic delete TOPIC... [--if-exists]\n"
             "       gregor topic alter TOPIC [--partitions N] [--config KEY=VALUE]...\n"
             "                          [--delete-config KEY]...\n"
             "\n",
    .epilog =
        "describe prints partitions with leader, replicas, ISR, log start and end offsets, and "
        "the\n"
        "topic's configs; '*' marks a config set on the topic rather than defaulted.\n"
        "\n"
        "examples:\n"
        "  gregor topic create orders --partitions 6 --config retention.ms=86400000\n"
        "  gregor topic describe orders\n"
        "  gregor topic alter orders --partitions 12 --config cleanup.policy=compact\n"
        "  gregor topic delete orders\n"
        "  GREGOR_BROKERS=10.0.0.5:9092 gregor topic list\n",
    .help_column = 32,
};

static int topic_parse(struct topic_opts *o, int argc, char **argv)
{
    o->partitions = -1;
    o->replication_factor = -1;
    int rc = cli_options_parse(&topic_command, o, &o->c, argc, argv);
    if (rc >= 0)
        return rc;
    o->names = argv + optind;
    o->nnames = argc - optind;
    return -1; /* parsed; go on */
}

/* Prints the per-topic results of a CreateTopics/DeleteTopics/CreatePartitions request.
 * IGNORE is an error code that counts as success (e.g. already exists with --if-not-exists).
 * Returns the number of failed topics. */
static int report_topic_results(struct topic_opts *o, const rd_kafka_topic_result_t **res, size_t n,
                                const char *done, rd_kafka_resp_err_t ignore)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
        const char *name = rd_kafka_topic_result_name(res[i]);
        if (!err) {
            printf("%s topic %s\n", done, name);
        } else if (err != ignore) {
            const char *es = rd_kafka_topic_result_error_string(res[i]);
            cli_error(&o->c, "topic %s: %s", name, es && *es ? es : rd_kafka_err2str(err));
            failed++;
        }
    }
    return failed;
}

static int topic_create(struct topic_opts *o, rd_kafka_t *rk)
{
    char errstr[512];
    if (o->nnames != 1)
        return cli_usage_error(&o->c, "create takes exactly one TOPIC");
    if (o->ndel)
        return cli_usage_error(&o->c, "--delete-config is for alter");
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(o->names[0], o->partitions,
                                                    o->replication_factor, errstr, sizeof(errstr));
    if (!nt) {
        cli_error(&o->c, "%s", errstr);
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < o->nset; i++) {
        size_t klen;
        const char *val;
        cli_split_kv(o->set[i], &klen, &val);
        char *key = strndup(o->set[i], klen);
        rd_kafka_NewTopic_set_config(nt, key, val);
        free(key);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = cli_admin_options(&o->c, rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = cli_admin_wait(&o->c, q, "create topic");
    int rc = CLI_EXIT_FAIL;
    if (ev) {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t ignore =
            o->if_not_exists ? RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS : RD_KAFKA_RESP_ERR_NO_ERROR;
        rc = report_topic_results(o, res, n, "created", ignore) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

static int topic_delete(struct topic_opts *o, rd_kafka_t *rk)
{
    if (o->nnames < 1)
        return cli_usage_error(&o->c, "delete needs at least one TOPIC");
    rd_kafka_DeleteTopic_t **dts = calloc((size_t)o->nnames, sizeof(*dts));
    for (int i = 0; i < o->nnames; i++)
        dts[i] = rd_kafka_DeleteTopic_new(o->names[i]);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = cli_admin_options(&o->c, rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(rk, dts, (size_t)o->nnames, ao, q);
    rd_kafka_event_t *ev = cli_admin_wait(&o->c, q, "delete topics");
    int rc = CLI_EXIT_FAIL;
    if (ev) {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        rd_kafka_resp_err_t ignore =
            o->if_exists ? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART : RD_KAFKA_RESP_ERR_NO_ERROR;
        rc = report_topic_results(o, res, n, "deleted", ignore) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteTopic_destroy_array(dts, (size_t)o->nnames);
    free(dts);
    return rc;
}

static int is_internal(const char *topic)
{
    return strncmp(topic, "__", 2) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int topic_list(struct topic_opts *o, rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md;
    int rc = cli_metadata(&o->c, rk, 1, &md);
    if (rc)
        return rc;
    const char **names = calloc((size_t)md->topic_cnt + 1, sizeof(*names));
    int n = 0;
    for (int i = 0; i < md->topic_cnt; i++)
        if (o->include_internal || !is_internal(md->topics[i].topic))
            names[n++] = md->topics[i].topic;
    qsort(names, (size_t)n, sizeof(*names), cmp_str);
    for (int i = 0; i < n; i++)
        printf("%s\n", names[i]);
    free(names);
    rd_kafka_metadata_destroy(md);
    return CLI_EXIT_OK;
}

/*
 * DescribeConfigs for one topic. Returns the result event (caller destroys) and sets *RESP to
 * the topic's resource, or NULL after printing the error.
 */
static rd_kafka_event_t *describe_configs(struct topic_opts *o, rd_kafka_t *rk, const char *topic,
                                          const rd_kafka_ConfigResource_t **resp)
{
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = cli_admin_options(&o->c, rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_DescribeConfigs(rk, &cr, 1, ao, q);
    rd_kafka_event_t *ev = cli_admin_wait(&o->c, q, "describe configs");
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
    if (!ev)
        return NULL;
    size_t n;
    const rd_kafka_ConfigResource_t **res =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
    if (n != 1 || rd_kafka_ConfigResource_error(res[0])) {
        cli_error(&o->c, "describe configs of %s failed: %s", topic,
                  n == 1 ? rd_kafka_ConfigResource_error_string(res[0]) : "no result");
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    *resp = res[0];
    return ev;
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(rd_kafka_ConfigEntry_name(*(const rd_kafka_ConfigEntry_t *const *)a),
                  rd_kafka_ConfigEntry_name(*(const rd_kafka_ConfigEntry_t *const *)b));
}

static int print_configs(struct topic_opts *o, rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_ConfigResource_t *res;
    rd_kafka_event_t *ev = describe_configs(o, rk, topic, &res);
    if (!ev)
        return -1;
    size_t n;
    const rd_kafka_ConfigEntry_t **src = rd_kafka_ConfigResource_configs(res, &n);
    const rd_kafka_ConfigEntry_t **entries = calloc(n + 1, sizeof(*entries));
    memcpy(entries, src, n * sizeof(*entries));
    qsort(entries, n, sizeof(*entries), cmp_entry);
    printf("  Configs ('*' = set on this topic):\n");
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_ConfigEntry_t *e = entries[i];
        const char *val = rd_kafka_ConfigEntry_value(e);
        int set_here =
            rd_kafka_ConfigEntry_source(e) == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG ||
            (!rd_kafka_ConfigEntry_is_default(e) &&
             rd_kafka_ConfigEntry_source(e) == RD_KAFKA_CONFIG_SOURCE_UNKNOWN_CONFIG);
        printf("  %c %s=%s\n", set_here ? '*' : ' ', rd_kafka_ConfigEntry_name(e),
               rd_kafka_ConfigEntry_is_sensitive(e) ? "(sensitive)"
               : val                                ? val
                                                    : "(null)");
    }
    free(entries);
    rd_kafka_event_destroy(ev);
    return 0;
}

static void format_ids(char *buf, size_t cap, const int32_t *ids, int n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? "," : "", ids[i]);
    if (n == 0)
        snprintf(buf, cap, "-");
}

/* Earliest and latest offsets of every partition of T; NULL lists when ListOffsets failed. */
static void describe_offsets(struct topic_opts *o, rd_kafka_t *rk,
                             const struct rd_kafka_metadata_topic *t,
                             rd_kafka_topic_partition_list_t **lowp,
                             rd_kafka_topic_partition_list_t **highp)
{
    rd_kafka_topic_partition_list_t *low = rd_kafka_topic_partition_list_new(t->partition_cnt);
    for (int i = 0; i < t->partition_cnt; i++)
        rd_kafka_topic_partition_list_add(low, t->topic, t->partitions[i].id);
    rd_kafka_topic_partition_list_t *high = rd_kafka_topic_partition_list_copy(low);
    if (t->partition_cnt == 0 || cli_list_offsets(&o->c, rk, low, CLI_OFFSETS_EARLIEST) < 0 ||
        cli_list_offsets(&o->c, rk, high, CLI_OFFSETS_LATEST) < 0) {
        rd_kafka_topic_partition_list_destroy(low);
        rd_kafka_topic_partition_list_destroy(high);
        *lowp = *highp = NULL;
        return;
    }
    *lowp = low;
    *highp = high;
}

static void format_offset(char *buf, size_t cap, rd_kafka_topic_partition_list_t *l,
                          const char *topic, int32_t part)
{
    rd_kafka_topic_partition_t *p = l ? rd_kafka_topic_partition_list_find(l, topic, part) : NULL;
    if (!p || p->err || p->offset < 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%lld", (long long)p->offset);
}

/* Out-of-sync replicas (AR = ISR + OSR): the replicas not in the ISR, or "-" when none. */
static void format_osr(char *buf, size_t cap, const struct rd_kafka_metadata_partition *p)
{
    int32_t osr[64];
    int n = 0;
    for (int i = 0; i < p->replica_cnt && n < 64; i++) {
        bool in_isr = false;
        for (int j = 0; j < p->isr_cnt; j++)
            in_isr |= p->isrs[j] == p->replicas[i];
        if (!in_isr)
            osr[n++] = p->replicas[i];
    }
    if (n == 0)
        snprintf(buf, cap, "-");
    else
        format_ids(buf, cap, osr, n);
}

/* Returns 0, or -1 if part of the description could not be fetched (already reported). */
static int describe_topic(struct topic_opts *o, rd_kafka_t *rk, const struct rd_kafka_metadata *md,
                          const struct rd_kafka_metadata_topic *t)
{
    int rc = 0;
    int rf = t->partition_cnt ? t->partitions[0].replica_cnt : 0;
    printf("Topic: %s  Partitions: %d  ReplicationFactor: %d\n", t->topic, t->partition_cnt, rf);
    rd_kafka_topic_partition_list_t *low, *high;
    describe_offsets(o, rk, t, &low, &high);
    if (!low && t->partition_cnt)
        rc = -1;
    printf("  %-9s %-7s %-12s %-12s %-8s %-12s %-12s %s\n", "PARTITION", "LEADER", "REPLICAS",
           "ISR", "OSR", "LOG-START", "LOG-END", "ERROR");
    for (int i = 0; i < t->partition_cnt; i++) {
        const struct rd_kafka_metadata_partition *p = &t->partitions[i];
        char replicas[256], isr[256], osr[256], start[32], end[32];
        format_ids(replicas, sizeof(replicas), p->replicas, p->replica_cnt);
        format_ids(isr, sizeof(isr), p->isrs, p->isr_cnt);
        format_osr(osr, sizeof(osr), p);
        format_offset(start, sizeof(start), low, t->topic, p->id);
        format_offset(end, sizeof(end), high, t->topic, p->id);
        printf("  %-9d %-7d %-12s %-12s %-8s %-12s %-12s %s\n", p->id, p->leader, replicas, isr,
               osr, start, end, p->err ? rd_kafka_err2name(p->err) : "-");
    }
    if (low)
        rd_kafka_topic_partition_list_destroy(low);
    if (high)
        rd_kafka_topic_partition_list_destroy(high);
    if (!o->no_configs && print_configs(o, rk, t->topic) < 0)
        rc = -1;
    if (o->show_log_dirs && cli_print_log_dirs(&o->c, md, t) < 0)
        rc = -1;
    return rc;
}

static int cmp_md_topic(const void *a, const void *b)
{
    return strcmp((*(const struct rd_kafka_metadata_topic *const *)a)->topic,
                  (*(const struct rd_kafka_metadata_topic *const *)b)->topic);
}

static int topic_describe(struct topic_opts *o, rd_kafka_t *rk)
{
    const struct rd_kafka_metadata *md;
    int rc = cli_metadata(&o->c, rk, 1, &md);
    if (rc)
        return rc;
    int failed = 0;
    if (o->nnames == 0) {
        const struct rd_kafka_metadata_topic **ts = calloc((size_t)md->topic_cnt + 1, sizeof(*ts));
        int n = 0;
        for (int i = 0; i < md->topic_cnt; i++)
            if (!is_internal(md->topics[i].topic))
                ts[n++] = &md->topics[i];
        qsort(ts, (size_t)n, sizeof(*ts), cmp_md_topic);
        for (int i = 0; i < n; i++)
            if (describe_topic(o, rk, md, ts[i]) < 0)
                failed = 1;
        free(ts);
    }
    for (int i = 0; i < o->nnames; i++) {
        const struct rd_kafka_metadata_topic *t = cli_md_topic(md, o->names[i]);
        if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            cli_error(&o->c, "topic %s does not exist", o->names[i]);
            failed = 1;
            continue;
        }
        if (describe_topic(o, rk, md, t) < 0)
            failed = 1;
    }
    rd_kafka_metadata_destroy(md);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int key_matches(const char *kv, const char *name)
{
    size_t klen;
    const char *val;
    if (cli_split_kv(kv, &klen, &val) < 0)
        return strcmp(kv, name) == 0;
    return strlen(name) == klen && strncmp(kv, name, klen) == 0;
}

/* Sends the topic's current dynamic configs merged with --config/--delete-config. */
static int alter_configs(struct topic_opts *o, rd_kafka_t *rk, const char *topic)
{
    const rd_kafka_ConfigResource_t *cur;
    rd_kafka_event_t *ev = describe_configs(o, rk, topic, &cur);
    if (!ev)
        return -1;
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    size_t n;
    const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(cur, &n);
    for (size_t i = 0; i < n; i++) {
        const char *name = rd_kafka_ConfigEntry_name(entries[i]);
        int overridden = 0;
        if (rd_kafka_ConfigEntry_source(entries[i]) != RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG)
            continue;
        for (int j = 0; j < o->nset && !overridden; j++)
            overridden = key_matches(o->set[j], name);
        for (int j = 0; j < o->ndel && !overridden; j++)
            overridden = key_matches(o->del[j], name);
        if (!overridden)
            rd_kafka_ConfigResource_set_config(cr, name, rd_kafka_ConfigEntry_value(entries[i]));
    }
    rd_kafka_event_destroy(ev);
    for (int j = 0; j < o->nset; j++) {
        size_t klen;
        const char *val;
        cli_split_kv(o->set[j], &klen, &val);
        char *key = strndup(o->set[j], klen);
        rd_kafka_ConfigResource_set_config(cr, key, val);
        free(key);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = cli_admin_options(&o->c, rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(rk, &cr, 1, ao, q);
    ev = cli_admin_wait(&o->c, q, "alter configs");
    int rc = -1;
    if (ev) {
        const rd_kafka_ConfigResource_t **res =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
        if (n == 1 && !rd_kafka_ConfigResource_error(res[0])) {
            printf("altered configs of topic %s\n", topic);
            rc = 0;
        } else {
            cli_error(&o->c, "alter configs of %s failed: %s", topic,
                      n == 1 ? rd_kafka_ConfigResource_error_string(res[0]) : "no result");
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_ConfigResource_destroy(cr);
    return rc;
}

static int alter_partitions(struct topic_opts *o, rd_kafka_t *rk, const char *topic)
{
    char errstr[512];
    rd_kafka_NewPartitions_t *np =
        rd_kafka_NewPartitions_new(topic, (size_t)o->partitions, errstr, sizeof(errstr));
    if (!np) {
        cli_error(&o->c, "%s", errstr);
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = cli_admin_options(&o->c, rk, RD_KAFKA_ADMIN_OP_CREATEPARTITIONS);
    rd_kafka_CreatePartitions(rk, &np, 1, ao, q);
    rd_kafka_event_t *ev = cli_admin_wait(&o->c, q, "create partitions");
    int rc = -1;
    if (ev) {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreatePartitions_result_topics(rd_kafka_event_CreatePartitions_result(ev), &n);
        char done[64];
        snprintf(done, sizeof(done), "now %d partitions in", o->partitions);
        rc = report_topic_results(o, res, n, done, RD_KAFKA_RESP_ERR_NO_ERROR) ? -1 : 0;
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewPartitions_destroy(np);
    return rc;
}

static int topic_alter(struct topic_opts *o, rd_kafka_t *rk)
{
    if (o->nnames != 1)
        return cli_usage_error(&o->c, "alter takes exactly one TOPIC");
    if (o->partitions < 0 && o->nset == 0 && o->ndel == 0)
        return cli_usage_error(&o->c, "alter needs --partitions, --config or --delete-config");
    if (o->replication_factor >= 0)
        return cli_usage_error(&o->c, "changing the replication factor is not supported");
    if (o->partitions > 0 && alter_partitions(o, rk, o->names[0]) < 0)
        return CLI_EXIT_FAIL;
    if ((o->nset || o->ndel) && alter_configs(o, rk, o->names[0]) < 0)
        return CLI_EXIT_FAIL;
    return CLI_EXIT_OK;
}

int cli_topic_main(int argc, char **argv)
{
    static const struct {
        const char *action;
        int (*run)(struct topic_opts *, rd_kafka_t *);
    } actions[] = {
        {"create", topic_create}, {"list", topic_list},   {"describe", topic_describe},
        {"delete", topic_delete}, {"alter", topic_alter},
    };
    struct topic_opts o;
    memset(&o, 0, sizeof(o));
    cli_common_init(&o.c, "gregor topic");
    int rc = cli_options_want_action(&topic_command, argc, argv);
    if (rc >= 0)
        return rc;
    int (*run)(struct topic_opts *, rd_kafka_t *) = NULL;
    static char name[64];
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(argv[1], actions[i].action) == 0)
            run = actions[i].run;
    if (!run)
        return cli_usage_error(&o.c, "unknown action '%s' (create, list, describe, delete, alter)",
                               argv[1]);
    snprintf(name, sizeof(name), "gregor topic %s", argv[1]);
    o.c.name = name;
    rc = topic_parse(&o, argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    rd_kafka_t *rk = cli_client_new(&o.c, RD_KAFKA_PRODUCER, NULL);
    if (!rk)
        return CLI_EXIT_FAIL;
    /* admin requests would otherwise wait for the full request timeout on a dead broker */
    rc = cli_metadata(&o.c, rk, 0, NULL);
    if (rc == CLI_EXIT_OK)
        rc = run(&o, rk);
    return cli_client_destroy(rk, rc);
}
