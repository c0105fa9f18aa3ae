/*
 * Shared plumbing for the client subcommands: option handling, creating librdkafka clients
 * that stay quiet, turning "no broker" into one line within the timeout, admin-request waits,
 * ListOffsets, and parsing/JSON helpers.
 *
 * librdkafka logs connection failures from its own threads and retries forever; a CLI must
 * instead fail fast with one message. So every client gets a log callback that drops lines
 * (unless --debug), an error callback that remembers the last error for the final message, a
 * short connection set-up timeout, and every blocking call is bounded by --timeout-ms.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/internal.h"

volatile sig_atomic_t cli_stop;

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

/* No SA_RESTART: a blocking read of stdin returns EINTR so produce can stop and flush.
 * SA_RESETHAND: the first Ctrl-C asks for a clean stop, a second one kills. */
void cli_install_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_common_init(struct cli_common *c, const char *name)
{
    memset(c, 0, sizeof(*c));
    c->name = name;
    const char *env = getenv("GREGOR_BROKERS");
    c->brokers = env && *env ? env : CLI_DEFAULT_BROKERS;
    c->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
}

void cli_error(const struct cli_common *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", c->name, msg);
}

int cli_usage_error(const struct cli_common *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s (try '%s --help')\n", c->name, msg, c->name);
    return CLI_EXIT_USAGE;
}

/* librdkafka calls this from its internal threads; lines are dropped unless --debug. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const struct cli_common *c = rd_kafka_opaque(rk);
    if (c && c->debug)
        fprintf(stderr, "%s: rdkafka %d %s: %s\n", c->name, level, fac, buf);
}

/* Runs on the thread that polls the handle; keeps the last error for the final message. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct cli_common *c = opaque;
    if (!c)
        return;
    /* "all brokers down" says less than the connect error that preceded it */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        c->all_brokers_down = 1;
        if (c->last_error[0])
            return;
    }
    /* "host:port/bootstrap: Connect to ... failed: refused (after 0ms in state CONNECT)" reads
     * better without librdkafka's broker prefix and retry bookkeeping */
    const char *p = strstr(reason, "/bootstrap: ");
    if (p)
        reason = p + strlen("/bootstrap: ");
    const char *after = strstr(reason, " (after ");
    int len = after ? (int)(after - reason) : (int)strlen(reason);
    snprintf(c->last_error, sizeof(c->last_error), "%.*s", len, reason);
    if (c->debug)
        fprintf(stderr, "%s: rdkafka error: %s: %s\n", c->name,
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

int cli_conf_set(struct cli_common *c, rd_kafka_conf_t *conf, const char *key, const char *val)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, key, val, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        cli_error(c, "%s", errstr);
        return -1;
    }
    return 0;
}

rd_kafka_t *cli_client_new(struct cli_common *c, rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char errstr[512], num[32];
    if (!conf)
        conf = rd_kafka_conf_new();
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    snprintf(num, sizeof(num), "%d", c->timeout_ms < 3000 ? c->timeout_ms : 3000);
    if (cli_conf_set(c, conf, "bootstrap.servers", c->brokers) < 0 ||
        cli_conf_set(c, conf, "socket.connection.setup.timeout.ms", num) < 0 ||
        cli_conf_set(c, conf, "client.id", "gregor-cli") < 0 ||
        (c->debug && strcmp(c->debug, "generic") != 0 &&
         cli_conf_set(c, conf, "debug", c->debug) < 0))
        goto err;
    for (int i = 0; i < c->nprops; i++) {
        size_t klen = 0;
        const char *val = "";
        char key[256];
        cli_split_kv(c->props[i], &klen, &val);
        if (klen >= sizeof(key)) {
            cli_error(c, "-X property name too long");
            goto err;
        }
        memcpy(key, c->props[i], klen);
        key[klen] = '\0';
        if (cli_conf_set(c, conf, key, val) < 0)
            goto err;
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        cli_error(c, "cannot create client: %s", errstr);
        goto err;
    }
    return rk; /* conf now belongs to rk */
err:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static volatile sig_atomic_t destroy_exit_status;

static void on_destroy_timeout(int sig)
{
    (void)sig;
    _exit(destroy_exit_status);
}

/*
 * librdkafka 2.0.2 can hang forever in rd_kafka_destroy (seen after DescribeConsumerGroups
 * fails with "feature not supported"). The command's result is already known and printed by
 * then, so after CLI_DESTROY_TIMEOUT_S we exit with it instead of hanging the caller.
 */
int cli_client_destroy(rd_kafka_t *rk, int rc)
{
    struct sigaction sa, old;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_destroy_timeout;
    sigemptyset(&sa.sa_mask);
    fflush(stdout);
    fflush(stderr);
    destroy_exit_status = rc;
    sigaction(SIGALRM, &sa, &old);
    alarm(CLI_DESTROY_TIMEOUT_S);
    rd_kafka_destroy(rk);
    alarm(0);
    sigaction(SIGALRM, &old, NULL);
    return rc;
}

/*
 * Asks in short slices so that, when every bootstrap broker has refused the connection for a
 * second (librdkafka's "all brokers down"), the command fails then instead of waiting out the
 * whole timeout. That needs the error events, which only arrive by polling the main queue, so
 * a consumer whose queue is already redirected just waits for the timeout.
 */
int cli_metadata(struct cli_common *c, rd_kafka_t *rk, int all_topics,
                 const struct rd_kafka_metadata **mdp)
{
    const struct rd_kafka_metadata *md = NULL;
    int64_t start = cli_now_us(), deadline = start + (int64_t)c->timeout_ms * 1000;
    rd_kafka_resp_err_t err;
    for (;;) {
        int64_t left_ms = (deadline - cli_now_us()) / 1000;
        int slice = left_ms < 250 ? (int)(left_ms > 1 ? left_ms : 1) : 250;
        err = rd_kafka_metadata(rk, all_topics, NULL, &md,
                                c->queue_redirected ? c->timeout_ms : slice);
        if (!err || (err != RD_KAFKA_RESP_ERR__TIMED_OUT && err != RD_KAFKA_RESP_ERR__TRANSPORT))
            break;
        if (!c->queue_redirected)
            rd_kafka_poll(rk, 0); /* runs on_error */
        if (cli_now_us() >= deadline || c->queue_redirected ||
            (c->all_brokers_down && cli_now_us() - start >= 1000000))
            break;
    }
    if (err) {
        if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT) {
            if (c->last_error[0])
                cli_error(c, "cannot reach a broker at %s (%s)", c->brokers, c->last_error);
            else
                cli_error(c, "cannot reach a broker at %s within %d ms", c->brokers, c->timeout_ms);
        } else {
            cli_error(c, "metadata request to %s failed: %s", c->brokers, rd_kafka_err2str(err));
        }
        return CLI_EXIT_UNAVAILABLE;
    }
    if (mdp)
        *mdp = md;
    else
        rd_kafka_metadata_destroy(md);
    return CLI_EXIT_OK;
}

void cli_consumer_redirect(struct cli_common *c, rd_kafka_t *rk)
{
    rd_kafka_poll_set_consumer(rk);
    c->queue_redirected = 1;
}

const struct rd_kafka_metadata_topic *cli_md_topic(const struct rd_kafka_metadata *md,
                                                   const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, name) == 0)
            return &md->topics[i];
    return NULL;
}

rd_kafka_AdminOptions_t *cli_admin_options(struct cli_common *c, rd_kafka_t *rk,
                                           rd_kafka_admin_op_t op)
{
    char errstr[256];
    rd_kafka_AdminOptions_t *o = rd_kafka_AdminOptions_new(rk, op);
    rd_kafka_AdminOptions_set_request_timeout(o, c->timeout_ms, errstr, sizeof(errstr));
    /* only some requests take an operation timeout; others reject it, which is harmless */
    rd_kafka_AdminOptions_set_operation_timeout(o, c->timeout_ms, errstr, sizeof(errstr));
    return o;
}

rd_kafka_event_t *cli_admin_wait(struct cli_common *c, rd_kafka_queue_t *q, const char *what)
{
    /* the request times out on its own after timeout_ms; the margin covers queueing */
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, c->timeout_ms + 2000);
    if (!ev) {
        cli_error(c, "%s: no answer within %d ms", what, c->timeout_ms);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        cli_error(c, "%s failed: %s", what, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

int cli_list_offsets(struct cli_common *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                     int64_t spec)
{
    for (int i = 0; i < parts->cnt; i++)
        parts->elems[i].offset = spec;
    /* offsets_for_times sends the offset field as ListOffsets' timestamp, and Kafka defines
     * timestamps -1 and -2 as "latest" and "earliest", so one call serves all three cases */
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, parts, c->timeout_ms);
    if (err) {
        cli_error(c, "listing offsets failed: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

int cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_int(const char *s, int min, int max, int *out)
{
    int64_t v;
    if (cli_parse_i64(s, min, max, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

int cli_split_kv(const char *s, size_t *keylen, const char **val)
{
    const char *eq = s ? strchr(s, '=') : NULL;
    if (!eq || eq == s)
        return -1;
    *keylen = (size_t)(eq - s);
    *val = eq + 1;
    return 0;
}

int cli_parse_datetime(const char *s, int64_t *ms)
{
    if (cli_parse_i64(s, 0, INT64_MAX, ms) == 0)
        return 0;
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t frac = 0;
    if (*p == '.') {
        int digits = 0;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++)
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
        for (; digits < 3; digits++)
            frac *= 10;
    }
    time_t t;
    if (*p == '\0') {
        tm.tm_isdst = -1;
        t = mktime(&tm);
    } else if (strcmp(p, "Z") == 0) {
        t = timegm(&tm);
    } else if ((p[0] == '+' || p[0] == '-') && strlen(p) == 6 && p[3] == ':') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        int off = (hh * 60 + mm) * 60;
        t = timegm(&tm) - (p[0] == '+' ? off : -off);
    } else {
        return -1;
    }
    if (t == (time_t)-1)
        return -1;
    *ms = (int64_t)t * 1000 + frac;
    return 0;
}

/* Length of the valid UTF-8 sequence at S (at most N bytes), or 0 if it is not valid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xE0) == 0xC0)
        len = 2, cp = s[0] & 0x1F;
    else if ((s[0] & 0xF0) == 0xE0)
        len = 3, cp = s[0] & 0x0F;
    else if ((s[0] & 0xF8) == 0xF0)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* reject overlong forms, surrogates and values past U+10FFFF */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return len;
}

void cli_json_string(FILE *f, const char *s, size_t len)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    const unsigned char *u = (const unsigned char *)s;
    fputc('"', f);
    for (size_t i = 0; i < len;) {
        unsigned char ch = u[i];
        if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
            i++;
        } else if (ch == '\n') {
            fputs("\\n", f), i++;
        } else if (ch == '\t') {
            fputs("\\t", f), i++;
        } else if (ch == '\r') {
            fputs("\\r", f), i++;
        } else if (ch < 0x20 || ch == 0x7F) {
            fprintf(f, "\\u%04x", ch), i++;
        } else {
            size_t n = utf8_seq_len(u + i, len - i);
            if (n == 0) {
                fputs("\\ufffd", f);
                i++;
            } else {
                fwrite(u + i, 1, n, f);
                i += n;
            }
        }
    }
    fputc('"', f);
}

int64_t cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cli_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
