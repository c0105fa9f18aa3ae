/*
 * What the CLI's files share: the common options' state (-b, -X, --debug, --timeout-ms; parsed
 * by options.h), librdkafka client set-up that keeps librdkafka's own logging quiet, error
 * reporting, and small parsing/output helpers. Every function here runs on the main thread unless
 * noted.
 */
#ifndef GREGOR_CLI_INTERNAL_H
#define GREGOR_CLI_INTERNAL_H

#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "cli/options.h"

enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAIL = 1,
    CLI_EXIT_USAGE = 64,
    CLI_EXIT_UNAVAILABLE = 69,
};

#define CLI_DEFAULT_BROKERS "127.0.0.1:9092"
#define CLI_DEFAULT_TIMEOUT_MS 5000
#define CLI_MAX_PROPS 64

/* State every subcommand carries: its name for messages, the common options, the last error
 * librdkafka reported (written by the error callback, which runs on whichever thread polls). */
struct cli_common {
    const char *name; /* "gregor topic create", used as the prefix of every message */
    const char *brokers;
    const char *debug; /* NULL unless --debug */
    int timeout_ms;
    const char *props[CLI_MAX_PROPS];
    int nprops;
    char last_error[512];
    void *ctx; /* the subcommand's own state, for callbacks that only get the handle's opaque */
    int all_brokers_down; /* librdkafka said so (set by the error callback) */
    int queue_redirected; /* cli_consumer_redirect() ran: rd_kafka_poll must not be used */
};

/* Set by SIGINT/SIGTERM once cli_install_stop_signals() ran. */
extern volatile sig_atomic_t cli_stop;
void cli_install_stop_signals(void);

/* Fills defaults: brokers from $GREGOR_BROKERS or 127.0.0.1:9092, 5 s timeout. */
void cli_common_init(struct cli_common *c, const char *name);

/* "NAME: message" on stderr, one line. */
void cli_error(const struct cli_common *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints "usage: ...; try --help" and returns CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli_common *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Creates a client. CONF (may be NULL; ownership always passes to this function) carries the
 * subcommand's own settings; the common ones and then -X properties are applied on top.
 * librdkafka's log lines are swallowed unless --debug; errors are kept in c->last_error.
 * Returns NULL after printing one message.
 */
rd_kafka_t *cli_client_new(struct cli_common *c, rd_kafka_type_t type, rd_kafka_conf_t *conf);

/* Destroys RK, bounded by CLI_DESTROY_TIMEOUT_S (then exits the process with RC); returns RC.
 * Flushes stdout/stderr first. */
#define CLI_DESTROY_TIMEOUT_S 5
int cli_client_destroy(rd_kafka_t *rk, int rc);

/* Sets KEY=VALUE on CONF; prints the error and returns -1 if librdkafka rejects it. */
int cli_conf_set(struct cli_common *c, rd_kafka_conf_t *conf, const char *key, const char *val);

/*
 * Fetches metadata (all topics when ALL_TOPICS, else only brokers) within c->timeout_ms (or
 * ~1 s once every broker refused), so a missing broker becomes one clear line and
 * CLI_EXIT_UNAVAILABLE instead of a hang. On success
 * stores the metadata in *MDP (caller frees with rd_kafka_metadata_destroy) when MDP is non-NULL.
 */
int cli_metadata(struct cli_common *c, rd_kafka_t *rk, int all_topics,
                 const struct rd_kafka_metadata **mdp);

/* rd_kafka_poll_set_consumer, remembered so cli_metadata stops polling the main queue. */
void cli_consumer_redirect(struct cli_common *c, rd_kafka_t *rk);

/* The topic named NAME in MD, or NULL. */
const struct rd_kafka_metadata_topic *cli_md_topic(const struct rd_kafka_metadata *md,
                                                   const char *name);

/* Admin options with request and operation timeouts from c->timeout_ms. */
rd_kafka_AdminOptions_t *cli_admin_options(struct cli_common *c, rd_kafka_t *rk,
                                           rd_kafka_admin_op_t op);

/* Waits for an admin result on Q. Returns the event (caller destroys it) or NULL after
 * printing one message naming WHAT and the error. */
rd_kafka_event_t *cli_admin_wait(struct cli_common *c, rd_kafka_queue_t *q, const char *what);

/* Offset specs for cli_list_offsets (Kafka's ListOffsets timestamps). */
#define CLI_OFFSETS_LATEST (-1)
#define CLI_OFFSETS_EARLIEST (-2)

/*
 * Asks the partition leaders for the offset matching SPEC (CLI_OFFSETS_EARLIEST, _LATEST or a
 * timestamp in ms) for every partition in PARTS and stores it in each element's offset (and
 * err). Returns 0, or -1 after printing the error.
 */
int cli_list_offsets(struct cli_common *c, rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                     int64_t spec);

/* Strict number parsing: the whole string must be a number in range. 0 or -1. */
int cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
int cli_parse_int(const char *s, int min, int max, int *out);

/* Splits "key=value" without copying: *KEYLEN is the key's length, *VAL points after '='.
 * Returns -1 if there is no '=' or the key is empty. */
int cli_split_kv(const char *s, size_t *keylen, const char **val);

/* Parses an epoch in ms, or an ISO-8601 date-time "YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM]"
 * (local time when no zone is given). 0 or -1. */
int cli_parse_datetime(const char *s, int64_t *ms);

/* Writes S[0..LEN) as a JSON string (invalid UTF-8 bytes become U+FFFD); NULL writes null. */
void cli_json_string(FILE *f, const char *s, size_t len);

/* Monotonic and wall clocks. */
int64_t cli_now_us(void);
int64_t cli_wall_ms(void);

/* Subcommand entry points; argv[0] is the subcommand name. */
int cli_topic_main(int argc, char **argv);
int cli_produce_main(int argc, char **argv);
int cli_consume_main(int argc, char **argv);
int cli_group_main(int argc, char **argv);
int cli_bench_main(int argc, char **argv);
int cli_cluster_main(int argc, char **argv);
int cli_quota_main(int argc, char **argv);
int cli_user_main(int argc, char **argv);
int cli_acl_main(int argc, char **argv);
int cli_version_main(int argc, char **argv);

/* `topic describe --log-dirs`: asks every broker in MD with DescribeLogDirs for T's
 * partitions and prints log directory, volume sizes and per replica size and offset lag.
 * Returns 0, or -1 after printing the failures (the other brokers are still printed). */
int cli_print_log_dirs(struct cli_common *c, const struct rd_kafka_metadata *md,
                       const struct rd_kafka_metadata_topic *t);

#endif
