/*
 * gregor consume TOPIC: prints records, one per line (or per --format / --json).
 *
 * Without --group the partitions are assigned directly (no group membership, no commits) at
 * the start position asked for; with --group the consumer joins the group, starts at the
 * committed offsets (or earliest/latest when there are none) and commits as it goes. Ends
 * after --count records, after --idle-exit-ms without a record, or on Ctrl-C.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/internal.h"

struct consume_opts {
    struct cli_common c;
    const char *topic;
    const char *group;
    int from_beginning;
    const char *offset;    /* --offset as given */
    const char *timestamp; /* --timestamp as given */
    int32_t partition;     /* -1: all */
    int64_t count;         /* 0: unlimited */
    const char *format;
    int json;
    int idle_exit_ms; /* 0: never */
};

static const struct cli_option consume_options[] = {
    {.name = "group",
     .letter = 'g',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct consume_opts, group, const char *),
     .arg = "GROUP",
     .help = "consume as a member of GROUP (commits offsets)"},
    {.name = "from-beginning",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct consume_opts, from_beginning, int),
     .help = "start at the earliest offset (with a group: when it has none)"},
    {.name = "offset",
     .letter = 'o',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct consume_opts, offset, const char *),
     .arg = "N",
     .help = "start at offset N; also 'beginning', 'end', or -N for the\n"
             "last N records of each partition (no --group)"},
    {.name = "timestamp",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct consume_opts, timestamp, const char *),
     .arg = "T",
     .help = "start at the first record at or after T (epoch ms or\n"
             "2024-05-01T12:00:00Z) (no --group)"},
    {.name = "partition",
     .letter = 'p',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct consume_opts, partition, int32_t),
     .max = INT32_MAX,
     .expects = "a partition number",
     .arg = "N",
     .help = "only partition N (no --group)"},
    {.name = "count",
     .letter = 'c',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT64,
     .target = CLI_FIELD(struct consume_opts, count, int64_t),
     .min = 1,
     .max = INT64_MAX,
     .expects = "a positive number",
     .arg = "N",
     .help = "exit after N records"},
    {.name = "format",
     .letter = 'f',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct consume_opts, format, const char *),
     .arg = "FMT",
     .help = "output format; %k key, %v value, %p partition, %o offset,\n"
             "%t timestamp (ms), %h headers (k=v,..), %T topic, %% a '%';\n"
             "\\n \\t \\\\ are escapes (default '%v\\n')"},
    {.name = "json",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct consume_opts, json, int),
     .help = "one JSON object per record: topic, partition, offset,\n"
             "timestamp, key, value, headers"},
    {.name = "idle-exit-ms",
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct consume_opts, idle_exit_ms, int),
     .min = 1,
     .max = INT32_MAX,
     .expects = "a positive number",
     .arg = "MS",
     .help = "exit once no record arrived for MS"},
    {.name = NULL},
};

static const struct cli_command_options consume_command = {
    .options = consume_options,
    .usage = "usage: gregor consume TOPIC [options]\n"
             "\n",
    .epilog = "Without --from-beginning/--offset/--timestamp, only new records are printed.\n"
              "\n"
              "examples:\n"
              "  gregor consume greetings --from-beginning --count 10\n"
              "  gregor consume events -g audit --format '%p/%o %k=%v %h\\n'\n"
              "  gregor consume events --offset -5 --json --idle-exit-ms 2000\n"
              "  gregor consume events --timestamp 2024-05-01T00:00:00Z -p 0\n",
    .help_column = 28,
};

static int consume_parse(struct consume_opts *o, int argc, char **argv)
{
    o->partition = -1;
    o->format = "%v\\n";
    int rc = cli_options_parse(&consume_command, o, &o->c, argc, argv);
    if (rc >= 0)
        return rc;
    if (argc - optind != 1)
        return cli_usage_error(&o->c, "expected exactly one TOPIC");
    o->topic = argv[optind];
    if (o->group && (o->offset || o->timestamp || o->partition >= 0))
        return cli_usage_error(&o->c, "--offset, --timestamp and --partition need no --group");
    if ((o->from_beginning != 0) + (o->offset != NULL) + (o->timestamp != NULL) > 1)
        return cli_usage_error(&o->c, "use only one of --from-beginning, --offset, --timestamp");
    return -1;
}

/* Start offset for the no-group case, from --offset/--from-beginning (not --timestamp). */
static int start_offset(struct consume_opts *o, int64_t *out)
{
    int64_t n;
    if (o->from_beginning || (o->offset && strcmp(o->offset, "beginning") == 0))
        *out = RD_KAFKA_OFFSET_BEGINNING;
    else if (!o->offset || strcmp(o->offset, "end") == 0)
        *out = RD_KAFKA_OFFSET_END;
    else if (cli_parse_i64(o->offset, 0, INT64_MAX, &n) == 0)
        *out = n;
    else if (o->offset[0] == '-' && cli_parse_i64(o->offset + 1, 1, INT32_MAX, &n) == 0)
        *out = RD_KAFKA_OFFSET_TAIL(n);
    else
        return cli_usage_error(&o->c, "--offset expects N, -N, 'beginning' or 'end'");
    return 0;
}

/* The partitions to assign, with their start offsets; NULL after printing the error. */
static rd_kafka_topic_partition_list_t *build_assignment(struct consume_opts *o, rd_kafka_t *rk,
                                                         int *rc)
{
    const struct rd_kafka_metadata *md;
    *rc = cli_metadata(&o->c, rk, 1, &md);
    if (*rc)
        return NULL;
    *rc = CLI_EXIT_FAIL;
    const struct rd_kafka_metadata_topic *t = cli_md_topic(md, o->topic);
    rd_kafka_topic_partition_list_t *parts = NULL;
    int64_t start = 0, ts = 0;
    if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        cli_error(&o->c, "topic %s does not exist", o->topic);
        goto out;
    }
    if (o->timestamp && cli_parse_datetime(o->timestamp, &ts) < 0) {
        *rc = cli_usage_error(&o->c, "--timestamp expects epoch ms or an ISO-8601 date-time");
        goto out;
    }
    if (!o->timestamp && start_offset(o, &start) != 0) {
        *rc = CLI_EXIT_USAGE;
        goto out;
    }
    parts = rd_kafka_topic_partition_list_new(t->partition_cnt);
    for (int i = 0; i < t->partition_cnt; i++)
        if (o->partition < 0 || t->partitions[i].id == o->partition)
            rd_kafka_topic_partition_list_add(parts, o->topic, t->partitions[i].id)->offset = start;
    if (parts->cnt == 0) {
        cli_error(&o->c, "topic %s has no partition %d", o->topic, o->partition);
        goto fail;
    }
    if (o->timestamp) {
        if (cli_list_offsets(&o->c, rk, parts, ts) < 0)
            goto fail;
        for (int i = 0; i < parts->cnt; i++)
            if (parts->elems[i].offset < 0) /* no record at or after ts */
                parts->elems[i].offset = RD_KAFKA_OFFSET_END;
    }
    *rc = CLI_EXIT_OK;
    goto out;
fail:
    rd_kafka_topic_partition_list_destroy(parts);
    parts = NULL;
out:
    rd_kafka_metadata_destroy(md);
    return parts;
}

static void write_bytes(const char *s, size_t len)
{
    fwrite(s, 1, len, stdout);
}

static void print_headers(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs;
    const char *name;
    const void *val;
    size_t size;
    if (rd_kafka_message_headers(m, &hdrs))
        return;
    for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &size); i++) {
        printf("%s%s=", i ? "," : "", name);
        if (val)
            fwrite(val, 1, size, stdout);
    }
}

/* Writes M according to the --format template. */
static void print_formatted(const char *fmt, const rd_kafka_message_t *m)
{
    for (const char *p = fmt; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            putchar(*p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p);
            continue;
        }
        if (*p != '%' || !p[1]) {
            putchar(*p);
            continue;
        }
        switch (*++p) {
        case 'k':
            if (m->key)
                write_bytes(m->key, m->key_len);
            break;
        case 'v':
            if (m->payload)
                write_bytes(m->payload, m->len);
            break;
        case 'p':
            printf("%d", (int)m->partition);
            break;
        case 'o':
            printf("%lld", (long long)m->offset);
            break;
        case 't':
            printf("%lld", (long long)rd_kafka_message_timestamp(m, NULL));
            break;
        case 'h':
            print_headers(m);
            break;
        case 'T':
            fputs(rd_kafka_topic_name(m->rkt), stdout);
            break;
        case '%':
            putchar('%');
            break;
        default:
            putchar('%');
            putchar(*p);
        }
    }
}

static void print_json(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs;
    const char *name;
    const void *val;
    size_t size;
    fputs("{\"topic\":", stdout);
    cli_json_string(stdout, rd_kafka_topic_name(m->rkt), strlen(rd_kafka_topic_name(m->rkt)));
    printf(",\"partition\":%d,\"offset\":%lld,\"timestamp\":%lld,\"key\":", (int)m->partition,
           (long long)m->offset, (long long)rd_kafka_message_timestamp(m, NULL));
    cli_json_string(stdout, m->key, m->key_len);
    fputs(",\"value\":", stdout);
    cli_json_string(stdout, m->payload, m->len);
    fputs(",\"headers\":{", stdout);
    if (!rd_kafka_message_headers(m, &hdrs)) {
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &size); i++) {
            if (i)
                putchar(',');
            cli_json_string(stdout, name, strlen(name));
            putchar(':');
            cli_json_string(stdout, val, size);
        }
    }
    fputs("}}\n", stdout);
}

/* Returns 1 if the consumer error ends the run (already reported), 0 if it is transient. */
static int consume_error(struct consume_opts *o, const rd_kafka_message_t *m)
{
    switch (m->err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        return 0;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        if (o->group)
            return 0; /* the group waits for the topic to appear, as Kafka's consumer does */
        /* fall through */
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__FATAL:
        cli_error(&o->c, "%s", rd_kafka_message_errstr(m));
        return 1;
    default:
        snprintf(o->c.last_error, sizeof(o->c.last_error), "%s", rd_kafka_message_errstr(m));
        if (o->c.debug)
            cli_error(&o->c, "consumer error: %s", rd_kafka_message_errstr(m));
        return 0;
    }
}

/* With --group, says once on stderr if no partition was assigned after a while: a broker
 * without group support otherwise leaves the user looking at a silent terminal. */
static void warn_if_unassigned(struct consume_opts *o, rd_kafka_t *rk, int64_t start, int *warned)
{
    rd_kafka_topic_partition_list_t *a;
    if (!o->group || *warned || cli_now_us() - start < 2LL * o->c.timeout_ms * 1000)
        return;
    *warned = 1;
    if (rd_kafka_assignment(rk, &a))
        return;
    if (a->cnt == 0)
        cli_error(&o->c, "still waiting to join group %s%s%s", o->group,
                  o->c.last_error[0] ? ": " : "", o->c.last_error);
    rd_kafka_topic_partition_list_destroy(a);
}

/* Polls and prints until --count, --idle-exit-ms, Ctrl-C or a fatal error. */
static int consume_loop(struct consume_opts *o, rd_kafka_t *rk)
{
    long seen = 0;
    int64_t start = cli_now_us(), last = start;
    int warned = 0;
    while (!cli_stop && (!o->count || seen < o->count)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (!m) {
            warn_if_unassigned(o, rk, start, &warned);
            fflush(stdout);
            if (o->idle_exit_ms && cli_now_us() - last >= (int64_t)o->idle_exit_ms * 1000)
                break;
            continue;
        }
        if (m->err) {
            int fatal = consume_error(o, m);
            rd_kafka_message_destroy(m);
            if (fatal)
                return CLI_EXIT_FAIL;
            continue;
        }
        last = cli_now_us();
        if (o->json)
            print_json(m);
        else
            print_formatted(o->format, m);
        seen++;
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    return CLI_EXIT_OK;
}

static rd_kafka_conf_t *consume_conf(struct consume_opts *o)
{
    char gid[64];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(gid, sizeof(gid), "gregor-cli-%d", (int)getpid());
    /* librdkafka only assigns partitions with a group id; without --group nothing is
     * committed and the group is never joined */
    if (cli_conf_set(&o->c, conf, "group.id", o->group ? o->group : gid) < 0 ||
        cli_conf_set(&o->c, conf, "enable.auto.commit", o->group ? "true" : "false") < 0 ||
        cli_conf_set(&o->c, conf, "auto.offset.reset", o->from_beginning ? "earliest" : "latest") <
            0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int cli_consume_main(int argc, char **argv)
{
    struct consume_opts o;
    memset(&o, 0, sizeof(o));
    cli_common_init(&o.c, "gregor consume");
    int rc = consume_parse(&o, argc, argv);
    if (rc >= 0)
        return rc;
    rd_kafka_conf_t *conf = consume_conf(&o);
    if (!conf)
        return CLI_EXIT_USAGE;
    rd_kafka_t *rk = cli_client_new(&o.c, RD_KAFKA_CONSUMER, conf);
    if (!rk)
        return CLI_EXIT_USAGE;
    if (o.group) {
        rc = cli_metadata(&o.c, rk, 0, NULL);
        if (rc == CLI_EXIT_OK) {
            cli_consumer_redirect(&o.c, rk);
            rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
            rd_kafka_topic_partition_list_add(sub, o.topic, RD_KAFKA_PARTITION_UA);
            rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, sub);
            rd_kafka_topic_partition_list_destroy(sub);
            if (err) {
                cli_error(&o.c, "subscribe failed: %s", rd_kafka_err2str(err));
                rc = CLI_EXIT_FAIL;
            }
        }
    } else {
        rd_kafka_topic_partition_list_t *parts = build_assignment(&o, rk, &rc);
        if (parts) {
            cli_consumer_redirect(&o.c, rk);
            rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);
            if (err) {
                cli_error(&o.c, "assign failed: %s", rd_kafka_err2str(err));
                rc = CLI_EXIT_FAIL;
            }
            rd_kafka_topic_partition_list_destroy(parts);
        }
    }
    if (rc == CLI_EXIT_OK)
        rc = consume_loop(&o, rk);
    rd_kafka_consumer_close(rk);
    return cli_client_destroy(rk, rc);
}
