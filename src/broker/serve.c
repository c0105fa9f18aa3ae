/*
 * "gregor serve": the same shape as kafka-server-start.sh — an optional properties file and
 * --override KEY=VALUE pairs applied on top. Configuration errors end the process with status 1
 * and one line naming the property. SIGINT/SIGTERM stop the broker cleanly (status 0).
 */
#include "broker/serve.h"

#include <errno.h>
#include <pthread.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/logger.h"
#include "base/properties.h"
#include "broker/broker.h"
#include "broker/config.h"
#include "broker/handlers.h"

static void serve_usage(FILE *f)
{
    fprintf(f, "usage: gregor serve [-c server.properties] [--override KEY=VALUE]...\n"
               "       gregor serve --api-versions\n"
               "\n"
               "Runs a broker. Properties use Kafka's names, e.g.\n"
               "  gregor serve --override listeners=PLAINTEXT://127.0.0.1:9092 \\\n"
               "               --override log.dirs=./data --override num.partitions=3\n"
               "--api-versions prints the APIs and versions a broker serves (a Markdown table,\n"
               "as in README.md) and exits.\n");
}

/* Reads -c FILE and --override K=V into props. Returns 0, 1 (usage error), 2 (--help) or 3
 * (--api-versions). */
static int serve_parse_args(int argc, char **argv, struct properties *props)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
            return 2;
        if (strcmp(a, "--api-versions") == 0)
            return 3;
        int is_file = strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0;
        int is_override = strcmp(a, "--override") == 0;
        if (!is_file && !is_override && i == 1 && a[0] != '-')
            is_file = 1, i--; /* kafka-server-start.sh style: properties file as first arg */
        if (!is_file && !is_override) {
            fprintf(stderr, "gregor serve: unknown argument '%s'\n", a);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "gregor serve: '%s' needs a value\n", a);
            return 1;
        }
        const char *v = argv[++i];
        if (is_override) {
            if (properties_set_override(props, v) != 0) {
                fprintf(stderr, "gregor serve: --override expects KEY=VALUE, got '%s'\n", v);
                return 1;
            }
            continue;
        }
        int bad_line = 0;
        int rc = properties_load(props, v, &bad_line);
        if (rc == -EINVAL) {
            fprintf(stderr, "gregor serve: %s:%d: malformed property line\n", v, bad_line);
            return 1;
        }
        if (rc != 0) {
            fprintf(stderr, "gregor serve: cannot read config file '%s': %s\n", v, strerror(-rc));
            return 1;
        }
    }
    return 0;
}

/* Blocks SIGINT/SIGTERM in every thread created after this, so sigwait() here gets them. */
static void serve_block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/*
 * Buffers allocated per request (frames under 64 KiB, response chains, frames over the network
 * layer's largest pooled size: large frames come from the workers' pools, net/bufpool.c).
 * glibc's defaults serve large ones with a fresh mmap, or return freed heap tops to the kernel,
 * so their bytes were copied into pages faulted in on the spot. Kept in the heap instead, freed
 * buffers are reused warm.
 */
static void serve_tune_malloc(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 128 << 20);
}

int broker_serve_main(int argc, char **argv)
{
    struct properties props;
    properties_init(&props);
    int prc = serve_parse_args(argc, argv, &props);
    if (prc == 3) {
        properties_free(&props);
        api_versions_print_table(stdout);
        return 0;
    }
    if (prc != 0) {
        properties_free(&props);
        serve_usage(prc == 2 ? stdout : stderr);
        return prc == 2 ? 0 : 1;
    }
    struct broker_config cfg;
    char err[512];
    config_defaults(&cfg);
    int rc = config_apply(&cfg, &props, err, sizeof(err));
    properties_free(&props);
    if (rc == 0)
        rc = config_validate(&cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "gregor serve: %s\n", err);
        return 1;
    }
    enum logger_level level;
    if (logger_parse_level(cfg.log_level, &level) != 0) {
        fprintf(stderr, "gregor serve: invalid value '%s' for configuration property 'log.level'\n",
                cfg.log_level);
        return 1;
    }
    logger_set_level(level);
    serve_tune_malloc();

    sigset_t set;
    serve_block_signals(&set);
    struct broker *b = NULL;
    rc = broker_start(&cfg, &b, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "gregor serve: %s\n", err);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    logger_info("broker", "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    broker_stop(b);
    logger_info("broker", "stopped");
    return 0;
}
