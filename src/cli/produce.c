/*
 * gregor produce TOPIC: one record per line of stdin.
 *
 * Records are handed to librdkafka asynchronously; the delivery report callback (run by
 * rd_kafka_poll/flush on this thread) counts failures, and the exit status is non-zero if any
 * record was not acknowledged. Ctrl-C stops reading stdin but still flushes what was read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/internal.h"

#define PRODUCE_MAX_HEADERS 64
#define PRODUCE_MAX_REPORTED_ERRORS 5

struct produce_opts {
    struct cli_common c;
    const char *topic;
    const char *key_sep;
    int32_t partition;
    const char *compression;
    const char *acks;
    int linger_ms;
    int delivery_timeout_ms;
    const char *headers[PRODUCE_MAX_HEADERS];
    int nheaders;
    int verbose;
};

/* Delivery counters; touched only by the delivery report callback on the main thread. */
struct produce_stats {
    struct cli_common *c;
    long delivered, failed, reported;
};

static const struct cli_option produce_options[] = {
    {.name = "key-separator",
     .letter = 'K',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct produce_opts, key_sep, const char *),
     .min = 1,
     .expects = "a separator",
     .arg = "SEP",
     .help = "split each line at the first SEP into key and value"},
    {.name = "partition",
     .letter = 'p',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct produce_opts, partition, int32_t),
     .max = INT32_MAX,
     .expects = "a partition number",
     .arg = "N",
     .help = "send every record to partition N (default: partitioner)"},
    {.name = "compression",
     .letter = 'z',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct produce_opts, compression, const char *),
     .arg = "CODEC",
     .help = "none, gzip, snappy, lz4, zstd (default none)"},
    {.name = "acks",
     .letter = 'a',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct produce_opts, acks, const char *),
     .arg = "ACKS",
     .help = "0, 1, all (default all)"},
    {.name = "header",
     .letter = 'H',
     .has_arg = required_argument,
     .kind = CLI_OPT_KV_LIST,
     .target = CLI_FIELD(struct produce_opts, headers[0], const char *),
     .count = CLI_FIELD(struct produce_opts, nheaders, int),
     .max = PRODUCE_MAX_HEADERS,
     .arg = "KEY=VALUE",
     .help = "header added to every record, may repeat"},
    {.name = "linger-ms",
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct produce_opts, linger_ms, int),
     .max = 900000,
     .expects = "a number of ms",
     .arg = "MS",
     .help = "batching delay (default 5)"},
    {.name = "delivery-timeout-ms",
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct produce_opts, delivery_timeout_ms, int),
     .min = 1,
     .max = 900000,
     .expects = "a number of ms",
     .arg = "MS",
     .help = "fail a record not acknowledged within MS (default 30000)"},
    {.name = "verbose",
     .letter = 'v',
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct produce_opts, verbose, int),
     .help = "print the delivered count on stderr at the end"},
    {.name = NULL},
};

static const struct cli_command_options produce_command = {
    .options = produce_options,
    .usage = "usage: gregor produce TOPIC [options] < lines\n"
             "\n"
             "Sends each line of stdin as one record (without the newline).\n"
             "\n",
    .epilog = "Exits 1 if any record could not be delivered (each distinct error is printed "
              "once).\n"
              "\n"
              "examples:\n"
              "  printf 'hello\\nworld\\n' | gregor produce greetings\n"
              "  printf 'user1:clicked\\n' | gregor produce events -K : -H source=web -a 1\n"
              "  seq 1000 | gregor produce numbers -z zstd --partition 0\n",
    .help_column = 30,
};

static int produce_parse(struct produce_opts *o, int argc, char **argv)
{
    o->partition = RD_KAFKA_PARTITION_UA;
    o->acks = "all";
    o->compression = "none";
    o->linger_ms = 5;
    o->delivery_timeout_ms = 30000;
    int rc = cli_options_parse(&produce_command, o, &o->c, argc, argv);
    if (rc >= 0)
        return rc;
    if (argc - optind != 1)
        return cli_usage_error(&o->c, "expected exactly one TOPIC");
    o->topic = argv[optind];
    return -1;
}

/* Runs inside rd_kafka_poll/flush on the main thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct produce_stats *st = ((struct cli_common *)opaque)->ctx;
    if (!m->err) {
        st->delivered++;
        return;
    }
    st->failed++;
    if (st->reported < PRODUCE_MAX_REPORTED_ERRORS) {
        cli_error(st->c, "delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                  rd_kafka_err2str(m->err));
        st->reported++;
    }
}

static rd_kafka_conf_t *produce_conf(struct produce_opts *o)
{
    char num[32], linger[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    snprintf(num, sizeof(num), "%d", o->delivery_timeout_ms);
    snprintf(linger, sizeof(linger), "%d", o->linger_ms);
    if (cli_conf_set(&o->c, conf, "acks", o->acks) < 0 ||
        cli_conf_set(&o->c, conf, "compression.codec", o->compression) < 0 ||
        cli_conf_set(&o->c, conf, "linger.ms", linger) < 0 ||
        cli_conf_set(&o->c, conf, "message.timeout.ms", num) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

static rd_kafka_headers_t *build_headers(struct produce_opts *o)
{
    if (!o->nheaders)
        return NULL;
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new((size_t)o->nheaders);
    for (int i = 0; i < o->nheaders; i++) {
        size_t klen;
        const char *val;
        cli_split_kv(o->headers[i], &klen, &val);
        rd_kafka_header_add(hdrs, o->headers[i], (ssize_t)klen, val, -1);
    }
    return hdrs;
}

/* Hands one record to librdkafka, waiting while its queue is full. Returns 0 or -1. */
static int produce_one(struct produce_opts *o, rd_kafka_t *rk, const char *key, size_t klen,
                       const char *val, size_t vlen, const rd_kafka_headers_t *tmpl)
{
    for (;;) {
        rd_kafka_headers_t *h = tmpl ? rd_kafka_headers_copy(tmpl) : NULL;
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_PARTITION(o->partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (!err)
            return 0; /* h now belongs to the message */
        if (h)
            rd_kafka_headers_destroy(h);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || cli_stop) {
            cli_error(&o->c, "cannot produce to %s: %s", o->topic, rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_poll(rk, 50);
    }
}

/* Reads stdin to EOF (or Ctrl-C). Returns the number of lines that could not be queued. */
static long produce_lines(struct produce_opts *o, rd_kafka_t *rk)
{
    rd_kafka_headers_t *tmpl = build_headers(o);
    char *line = NULL;
    size_t cap = 0, seplen = o->key_sep ? strlen(o->key_sep) : 0;
    long lineno = 0, bad = 0;
    ssize_t len;
    while (!cli_stop && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        const char *key = NULL, *val = line;
        size_t klen = 0, vlen = (size_t)len;
        if (o->key_sep) {
            char *sep = memmem(line, (size_t)len, o->key_sep, seplen);
            if (!sep) {
                cli_error(&o->c, "line %ld has no key separator '%s'; skipped", lineno, o->key_sep);
                bad++;
                continue;
            }
            key = line;
            klen = (size_t)(sep - line);
            val = sep + seplen;
            vlen = (size_t)len - klen - seplen;
        }
        if (produce_one(o, rk, key, klen, val, vlen, tmpl) < 0) {
            bad++;
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    if (ferror(stdin) && errno != EINTR)
        cli_error(&o->c, "reading stdin: %s", strerror(errno));
    free(line);
    if (tmpl)
        rd_kafka_headers_destroy(tmpl);
    return bad;
}

int cli_produce_main(int argc, char **argv)
{
    struct produce_opts o;
    memset(&o, 0, sizeof(o));
    cli_common_init(&o.c, "gregor produce");
    int rc = produce_parse(&o, argc, argv);
    if (rc >= 0)
        return rc;
    struct produce_stats st = {.c = &o.c};
    o.c.ctx = &st;
    rd_kafka_conf_t *conf = produce_conf(&o);
    if (!conf)
        return CLI_EXIT_USAGE;
    rd_kafka_t *rk = cli_client_new(&o.c, RD_KAFKA_PRODUCER, conf);
    if (!rk)
        return CLI_EXIT_USAGE;
    rc = cli_metadata(&o.c, rk, 0, NULL);
    if (rc)
        return cli_client_destroy(rk, rc);
    long bad = produce_lines(&o, rk);
    rd_kafka_flush(rk, o.delivery_timeout_ms + 5000);
    long stuck = rd_kafka_outq_len(rk);
    if (stuck)
        cli_error(&o.c, "%ld records still unacknowledged at exit", stuck);
    if (st.failed > st.reported)
        cli_error(&o.c, "%ld records failed in total", st.failed);
    if (o.verbose)
        fprintf(stderr, "%s: %ld records delivered to %s\n", o.c.name, st.delivered, o.topic);
    return cli_client_destroy(rk, bad || stuck || st.failed ? CLI_EXIT_FAIL : CLI_EXIT_OK);
}
