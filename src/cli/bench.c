/*
 * gregor bench produce|consume|e2e: throughput and latency through librdkafka.
 *
 * produce: sends --num-records records as fast as librdkafka accepts them; latency is send to
 *   delivery report (the broker's acknowledgement), carried in each message's opaque.
 * consume: reads the topic from the beginning (no group) until --num-records or the end
 *   offsets seen at start; throughput only.
 * e2e: a consumer thread assigned at the current log end, and the producer sending at --rate;
 *   latency is send to receipt, from a send timestamp written into each record's first bytes
 *   (one process, so one monotonic clock). Needs two librdkafka handles, one of each kind.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/bench_stats.h"
#include "cli/internal.h"

#define E2E_HEADER_BYTES 16 /* send time (µs) + run id */
#define BENCH_IDLE_TIMEOUT_US (10 * 1000000LL)

struct bench_opts {
    struct cli_common c;
    const char *mode;
    const char *topic;
    int64_t num_records; /* -1: mode default */
    int record_size;
    const char *acks;
    int64_t linger_ms, batch_size; /* -1: librdkafka default */
    const char *compression;
    int partitions; /* >0: create the topic with this many partitions */
    int64_t rate;   /* e2e records/s */
    int json;
};

static const struct cli_option bench_options[] = {
    {.name = "topic",
     .letter = 't',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct bench_opts, topic, const char *),
     .arg = "TOPIC",
     .help = "topic (default gregor-bench)"},
    {.name = "num-records",
     .letter = 'n',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT64,
     .target = CLI_FIELD(struct bench_opts, num_records, int64_t),
     .min = 1,
     .max = INT32_MAX,
     .expects = "a positive number",
     .arg = "N",
     .help = "records (default 1000000; e2e 10 s worth at --rate;\n"
             "consume: what the topic held at start)"},
    {.name = "record-size",
     .letter = 's',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct bench_opts, record_size, int),
     .max = 100 * 1024 * 1024,
     .expects = "a size in bytes",
     .arg = "BYTES",
     .help = "value size (default 100; e2e at least 16)"},
    {.name = "acks",
     .letter = 'a',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct bench_opts, acks, const char *),
     .arg = "ACKS",
     .help = "0, 1, all (default all)"},
    {.name = "linger-ms",
     .has_arg = required_argument,
     .kind = CLI_OPT_INT64,
     .target = CLI_FIELD(struct bench_opts, linger_ms, int64_t),
     .max = 900000,
     .expects = "a number of ms",
     .arg = "MS",
     .help = "producer linger.ms (default librdkafka's, 5)"},
    {.name = "batch-size",
     .has_arg = required_argument,
     .kind = CLI_OPT_INT64,
     .target = CLI_FIELD(struct bench_opts, batch_size, int64_t),
     .min = 1,
     .max = INT32_MAX,
     .expects = "a size in bytes",
     .arg = "BYTES",
     .help = "producer batch.size (default librdkafka's)"},
    {.name = "compression",
     .letter = 'z',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct bench_opts, compression, const char *),
     .arg = "CODEC",
     .help = "none, gzip, snappy, lz4, zstd (default none)"},
    {.name = "partitions",
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct bench_opts, partitions, int),
     .min = 1,
     .max = 100000,
     .expects = "a positive number",
     .arg = "N",
     .help = "create the topic with N partitions first (if missing)"},
    {.name = "rate",
     .has_arg = required_argument,
     .kind = CLI_OPT_INT64,
     .target = CLI_FIELD(struct bench_opts, rate, int64_t),
     .min = 1,
     .max = 100000000,
     .expects = "records per second",
     .arg = "N",
     .help = "e2e: records per second (default 10000)"},
    {.name = "json",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct bench_opts, json, int),
     .help = "print one JSON object instead of the text summary"},
    {.name = NULL},
};

static const struct cli_command_options bench_command = {
    .options = bench_options,
    .usage = "usage: gregor bench produce|consume|e2e [options]\n"
             "\n"
             "  produce   send records as fast as possible; latency = send to acknowledgement\n"
             "  consume   read the topic from the beginning; throughput only\n"
             "  e2e       produce at --rate while consuming; latency = send to receipt\n"
             "\n",
    .epilog =
        "A progress line is printed once a second when stderr is a terminal. Latency percentiles\n"
        "are exact (every sample is kept). Records carry incompressible random bytes.\n"
        "\n"
        "examples:\n"
        "  gregor bench produce --partitions 6 --num-records 2000000 --record-size 100 --acks 1\n"
        "  gregor bench produce -s 1024 -a all -z lz4 -X queue.buffering.max.kbytes=1048576\n"
        "  gregor bench consume -t gregor-bench --json\n"
        "  gregor bench e2e --rate 5000 --num-records 50000 --partitions 1\n",
    .help_column = 29,
};

static int bench_parse(struct bench_opts *o, int argc, char **argv)
{
    o->topic = "gregor-bench";
    o->num_records = -1;
    o->record_size = 100;
    o->acks = "all";
    o->linger_ms = o->batch_size = -1;
    o->compression = "none";
    o->rate = 10000;
    int rc = cli_options_parse(&bench_command, o, &o->c, argc, argv);
    if (rc >= 0)
        return rc;
    if (optind < argc)
        return cli_usage_error(&o->c, "unexpected argument '%s'", argv[optind]);
    if (strcmp(o->mode, "e2e") == 0 && o->record_size < E2E_HEADER_BYTES)
        return cli_usage_error(&o->c, "e2e needs --record-size >= %d", E2E_HEADER_BYTES);
    if (o->num_records < 0 && strcmp(o->mode, "produce") == 0)
        o->num_records = 1000000;
    if (o->num_records < 0 && strcmp(o->mode, "e2e") == 0)
        o->num_records = o->rate * 10;
    return -1;
}

static void report(struct bench_opts *o, struct bench_stats *s)
{
    int e2e = strcmp(o->mode, "e2e") == 0;
    struct bench_report_params p = {
        .mode = o->mode,
        .topic = o->topic,
        .acks = strcmp(o->mode, "consume") ? o->acks : NULL,
        .compression = strcmp(o->mode, "consume") ? o->compression : NULL,
        .record_size = strcmp(o->mode, "consume") == 0 && s->records ? (int)(s->bytes / s->records)
                                                                     : o->record_size,
        .partitions = o->partitions,
        .linger_ms = o->linger_ms,
        .batch_size = o->batch_size,
        .rate = e2e ? o->rate : -1,
    };
    bench_stats_report(s, &p, o->json);
}

/* Incompressible filler: the record value of every produce-mode record. Caller frees. */
static char *random_payload(size_t size)
{
    char *p = malloc(size ? size : 1);
    uint64_t x = 0x9E3779B97F4A7C15ull ^ (uint64_t)cli_now_us();
    for (size_t i = 0; i < size; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        p[i] = (char)(x >> 24);
    }
    return p;
}

static rd_kafka_conf_t *producer_conf(struct bench_opts *o)
{
    char num[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (cli_conf_set(&o->c, conf, "acks", o->acks) < 0 ||
        cli_conf_set(&o->c, conf, "compression.codec", o->compression) < 0)
        goto err;
    if (o->linger_ms >= 0) {
        snprintf(num, sizeof(num), "%ld", o->linger_ms);
        if (cli_conf_set(&o->c, conf, "linger.ms", num) < 0)
            goto err;
    }
    if (o->batch_size > 0) {
        snprintf(num, sizeof(num), "%ld", o->batch_size);
        if (cli_conf_set(&o->c, conf, "batch.size", num) < 0)
            goto err;
    }
    return conf;
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Creates the topic when --partitions is given; an existing topic is fine. */
static int ensure_topic(struct bench_opts *o, rd_kafka_t *rk)
{
    char errstr[512];
    if (o->partitions <= 0)
        return 0;
    rd_kafka_NewTopic_t *nt =
        rd_kafka_NewTopic_new(o->topic, o->partitions, -1, errstr, sizeof(errstr));
    if (!nt) {
        cli_error(&o->c, "%s", errstr);
        return -1;
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = cli_admin_options(&o->c, rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = cli_admin_wait(&o->c, q, "create topic");
    int rc = -1;
    if (ev) {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        rd_kafka_resp_err_t err = n == 1 ? rd_kafka_topic_result_error(res[0]) : 0;
        if (!err || err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            rc = 0;
        else
            cli_error(&o->c, "create topic %s: %s", o->topic, rd_kafka_err2str(err));
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/*
 * Fetches the topic's metadata into the producer's cache until every partition has a leader,
 * so the measured interval does not include the first-request metadata round trips (or the
 * moments after --partitions created the topic). Returns the topic handle to keep until the
 * end (NULL on timeout, after reporting).
 */
static rd_kafka_topic_t *warm_topic(struct bench_opts *o, rd_kafka_t *rk)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    int64_t deadline = cli_now_us() + (int64_t)o->c.timeout_ms * 1000;
    while (rkt && cli_now_us() < deadline && !cli_stop) {
        const struct rd_kafka_metadata *md;
        if (rd_kafka_metadata(rk, 0, rkt, &md, o->c.timeout_ms) == 0) {
            int ready = md->topic_cnt == 1 && !md->topics[0].err && md->topics[0].partition_cnt > 0;
            for (int i = 0; ready && i < md->topics[0].partition_cnt; i++)
                ready = md->topics[0].partitions[i].leader >= 0;
            rd_kafka_metadata_destroy(md);
            if (ready)
                return rkt;
        }
        usleep(100000);
    }
    cli_error(&o->c, "topic %s has no leaders after %d ms", o->topic, o->c.timeout_ms);
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    return NULL;
}

/* Produce mode: the delivery callback runs on the main thread inside poll/flush. */
static void on_bench_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    struct bench_stats *s = ((struct cli_common *)opaque)->ctx;
    if (m->err) {
        s->errors++;
        return;
    }
    bench_stats_record(s, (int64_t)m->len, cli_now_us() - (int64_t)(intptr_t)m->_private);
}

static int bench_produce(struct bench_opts *o)
{
    struct bench_stats s;
    rd_kafka_conf_t *conf = producer_conf(o);
    if (!conf)
        return CLI_EXIT_USAGE;
    rd_kafka_conf_set_dr_msg_cb(conf, on_bench_delivery);
    bench_stats_init(&s, (size_t)o->num_records, isatty(STDERR_FILENO));
    o->c.ctx = &s;
    rd_kafka_t *rk = cli_client_new(&o->c, RD_KAFKA_PRODUCER, conf);
    if (!rk) {
        bench_stats_free(&s);
        return CLI_EXIT_USAGE;
    }
    int rc = cli_metadata(&o->c, rk, 0, NULL);
    if (rc)
        goto out;
    rd_kafka_topic_t *rkt = NULL;
    if (ensure_topic(o, rk) < 0 || !(rkt = warm_topic(o, rk))) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    char *payload = random_payload((size_t)o->record_size);
    bench_stats_start(&s);
    for (long i = 0; i < o->num_records && !cli_stop;) {
        /* the payload is shared and outlives every message, so no copy (no MSG_F_COPY) */
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_VALUE(payload, (size_t)o->record_size),
            RD_KAFKA_V_OPAQUE((void *)(intptr_t)cli_now_us()), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 1);
        } else if (err) {
            cli_error(&o->c, "produce failed: %s", rd_kafka_err2str(err));
            break;
        } else if (++i % 1024 == 0) {
            rd_kafka_poll(rk, 0);
        }
        bench_stats_tick(&s, "produce");
    }
    while (rd_kafka_outq_len(rk) > 0 && !cli_stop) {
        rd_kafka_poll(rk, 100);
        bench_stats_tick(&s, "produce");
    }
    bench_stats_end_progress(&s);
    s.errors += rd_kafka_outq_len(rk);
    report(o, &s);
    rc = s.errors || s.records < o->num_records ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    free(payload);
    rd_kafka_topic_destroy(rkt);
out:
    rc = cli_client_destroy(rk, rc);
    bench_stats_free(&s);
    return rc;
}

/* Every partition of the topic, or NULL after reporting (missing topic, no broker). */
static rd_kafka_topic_partition_list_t *topic_partitions(struct bench_opts *o, struct cli_common *c,
                                                         rd_kafka_t *rk, int *rc)
{
    const struct rd_kafka_metadata *md;
    *rc = cli_metadata(c, rk, 1, &md);
    if (*rc)
        return NULL;
    const struct rd_kafka_metadata_topic *t = cli_md_topic(md, o->topic);
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (!t || t->err || t->partition_cnt == 0) {
        cli_error(&o->c, "topic %s does not exist", o->topic);
        *rc = CLI_EXIT_FAIL;
    } else {
        parts = rd_kafka_topic_partition_list_new(t->partition_cnt);
        for (int i = 0; i < t->partition_cnt; i++)
            rd_kafka_topic_partition_list_add(parts, o->topic, t->partitions[i].id);
    }
    rd_kafka_metadata_destroy(md);
    return parts;
}

/* A consumer reporting through C (its own struct cli_common when another handle's callbacks
 * may run concurrently on another thread). */
static rd_kafka_t *new_consumer(struct bench_opts *o, struct cli_common *c)
{
    char gid[64];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(gid, sizeof(gid), "gregor-bench-%d", (int)getpid());
    if (cli_conf_set(c, conf, "group.id", gid) < 0 ||
        cli_conf_set(c, conf, "enable.auto.commit", "false") < 0 ||
        cli_conf_set(c, conf, "enable.partition.eof", "false") < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return cli_client_new(c, RD_KAFKA_CONSUMER, conf);
}

/* Records between log start and log end at this moment, summed over PARTS. */
static int64_t available_records(struct bench_opts *o, rd_kafka_t *rk,
                                 const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *lo = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_topic_partition_list_t *hi = rd_kafka_topic_partition_list_copy(parts);
    int64_t n = -1;
    if (cli_list_offsets(&o->c, rk, lo, CLI_OFFSETS_EARLIEST) == 0 &&
        cli_list_offsets(&o->c, rk, hi, CLI_OFFSETS_LATEST) == 0) {
        n = 0;
        for (int i = 0; i < lo->cnt; i++)
            if (hi->elems[i].offset > lo->elems[i].offset && lo->elems[i].offset >= 0)
                n += hi->elems[i].offset - lo->elems[i].offset;
    }
    rd_kafka_topic_partition_list_destroy(lo);
    rd_kafka_topic_partition_list_destroy(hi);
    return n;
}

static int bench_consume(struct bench_opts *o)
{
    struct bench_stats s;
    int rc;
    rd_kafka_t *rk = new_consumer(o, &o->c);
    if (!rk)
        return CLI_EXIT_USAGE;
    bench_stats_init(&s, 1, isatty(STDERR_FILENO));
    rd_kafka_topic_partition_list_t *parts = topic_partitions(o, &o->c, rk, &rc);
    if (!parts)
        goto out;
    int64_t target = available_records(o, rk, parts);
    rc = CLI_EXIT_FAIL;
    if (target < 0)
        goto out;
    if (target == 0) {
        cli_error(&o->c, "topic %s is empty; run 'gregor bench produce' first", o->topic);
        goto out;
    }
    if (o->num_records > 0 && o->num_records < target)
        target = o->num_records;
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = RD_KAFKA_OFFSET_BEGINNING;
    cli_consumer_redirect(&o->c, rk);
    rd_kafka_assign(rk, parts);
    bench_stats_start(&s);
    int64_t last = cli_now_us();
    while (s.records < target && !cli_stop && cli_now_us() - last < BENCH_IDLE_TIMEOUT_US) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m && !m->err) {
            bench_stats_record(&s, (int64_t)m->len, -1);
            last = cli_now_us();
        }
        if (m)
            rd_kafka_message_destroy(m);
        bench_stats_tick(&s, "consume");
    }
    bench_stats_end_progress(&s);
    if (s.records < target)
        cli_error(&o->c, "stopped after %lld of %lld records%s", (long long)s.records,
                  (long long)target, cli_stop ? "" : " (nothing received for 10 s)");
    report(o, &s);
    rc = s.records < target ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    rd_kafka_consumer_close(rk);
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    rc = cli_client_destroy(rk, rc);
    bench_stats_free(&s);
    return rc;
}

/* Shared between the e2e producer (main thread) and the consumer thread. */
struct e2e {
    struct bench_opts *o;
    struct cli_common cc; /* the consumer's: its callbacks run on the consumer thread */
    rd_kafka_t *consumer;
    struct bench_stats stats; /* consumer thread only, until joined */
    uint64_t run_id;
    atomic_int done;      /* set by main: stop consuming */
    atomic_long sent;     /* records handed to the producer */
    atomic_long received; /* copy of stats.records for the main thread */
};

static void put_u64(char *p, uint64_t v)
{
    memcpy(p, &v, sizeof(v)); /* same process reads it back, so host order is fine */
}

static uint64_t get_u64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static void *e2e_consume_thread(void *arg)
{
    struct e2e *e = arg;
    while (!atomic_load(&e->done) && e->stats.records < e->o->num_records) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(e->consumer, 100);
        if (m && !m->err && m->len >= E2E_HEADER_BYTES &&
            get_u64((const char *)m->payload + 8) == e->run_id)
            bench_stats_record(&e->stats, (int64_t)m->len,
                               cli_now_us() - (int64_t)get_u64(m->payload));
        if (m)
            rd_kafka_message_destroy(m);
        atomic_store(&e->received, (long)e->stats.records);
        bench_stats_tick(&e->stats, "e2e");
    }
    return NULL;
}

/* Assigns the consumer at the current end of every partition, resolved now so that no record
 * produced after this call is missed. */
static int e2e_assign(struct e2e *e, int *rc)
{
    rd_kafka_topic_partition_list_t *parts = topic_partitions(e->o, &e->cc, e->consumer, rc);
    if (!parts)
        return -1;
    int r = cli_list_offsets(&e->cc, e->consumer, parts, CLI_OFFSETS_LATEST);
    if (r == 0) {
        cli_consumer_redirect(&e->cc, e->consumer);
        rd_kafka_assign(e->consumer, parts);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    *rc = r ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    return r;
}

/* Sends --num-records records at --rate, stamping each with its send time. */
static void e2e_produce(struct e2e *e, rd_kafka_t *prod)
{
    struct bench_opts *o = e->o;
    char *buf = random_payload((size_t)o->record_size);
    put_u64(buf + 8, e->run_id);
    int64_t start = cli_now_us();
    for (long i = 0; i < o->num_records && !cli_stop;) {
        int64_t due = start + (int64_t)((double)i * 1e6 / (double)o->rate), now = cli_now_us();
        if (now < due) {
            rd_kafka_poll(prod, 0);
            int64_t wait = due - now;
            struct timespec ts = {wait / 1000000, (wait % 1000000) * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        put_u64(buf, (uint64_t)cli_now_us());
        rd_kafka_resp_err_t err = rd_kafka_producev(
            prod, RD_KAFKA_V_TOPIC(o->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(buf, (size_t)o->record_size), RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(prod, 1);
            continue;
        }
        if (err) {
            cli_error(&o->c, "produce failed: %s", rd_kafka_err2str(err));
            break;
        }
        atomic_store(&e->sent, ++i);
        rd_kafka_poll(prod, 0);
    }
    rd_kafka_flush(prod, 30000);
    free(buf);
}

static int bench_e2e(struct bench_opts *o)
{
    struct e2e e = {.o = o};
    rd_kafka_topic_t *rkt = NULL;
    int rc = CLI_EXIT_USAGE;
    e.run_id = (uint64_t)cli_now_us() ^ ((uint64_t)getpid() << 32);
    rd_kafka_conf_t *conf = producer_conf(o);
    if (!conf)
        return CLI_EXIT_USAGE;
    rd_kafka_t *prod = cli_client_new(&o->c, RD_KAFKA_PRODUCER, conf);
    if (!prod)
        return CLI_EXIT_USAGE;
    bench_stats_init(&e.stats, (size_t)o->num_records, isatty(STDERR_FILENO));
    e.cc = o->c;
    e.consumer = new_consumer(o, &e.cc);
    if (!e.consumer)
        goto out;
    if ((rc = cli_metadata(&o->c, prod, 0, NULL)) != 0)
        goto out;
    rc = CLI_EXIT_FAIL;
    if (ensure_topic(o, prod) < 0 || !(rkt = warm_topic(o, prod)) || e2e_assign(&e, &rc) < 0) {
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    pthread_t th;
    bench_stats_start(&e.stats);
    pthread_create(&th, NULL, e2e_consume_thread, &e);
    e2e_produce(&e, prod);
    /* give the consumer until it has everything, or 10 s of silence */
    int64_t last = cli_now_us();
    long seen = -1;
    while (!cli_stop && cli_now_us() - last < BENCH_IDLE_TIMEOUT_US) {
        long r = atomic_load(&e.received);
        if (r >= atomic_load(&e.sent))
            break;
        if (r != seen)
            seen = r, last = cli_now_us();
        usleep(10000);
    }
    atomic_store(&e.done, 1);
    pthread_join(th, NULL);
    bench_stats_end_progress(&e.stats);
    e.stats.errors = atomic_load(&e.sent) - e.stats.records;
    report(o, &e.stats);
    rc = e.stats.errors || e.stats.records < o->num_records ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    rd_kafka_consumer_close(e.consumer);
out:
    if (rkt)
        rd_kafka_topic_destroy(rkt);
    if (e.consumer)
        rc = cli_client_destroy(e.consumer, rc);
    rc = cli_client_destroy(prod, rc);
    bench_stats_free(&e.stats);
    return rc;
}

int cli_bench_main(int argc, char **argv)
{
    static char name[64];
    struct bench_opts o;
    memset(&o, 0, sizeof(o));
    cli_common_init(&o.c, "gregor bench");
    int rc = cli_options_want_action(&bench_command, argc, argv);
    if (rc >= 0)
        return rc;
    o.mode = argv[1];
    int (*run)(struct bench_opts *) = strcmp(o.mode, "produce") == 0   ? bench_produce
                                      : strcmp(o.mode, "consume") == 0 ? bench_consume
                                      : strcmp(o.mode, "e2e") == 0     ? bench_e2e
                                                                       : NULL;
    if (!run)
        return cli_usage_error(&o.c, "unknown mode '%s' (produce, consume, e2e)", o.mode);
    snprintf(name, sizeof(name), "gregor bench %s", o.mode);
    o.c.name = name;
    rc = bench_parse(&o, argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    return run(&o);
}
