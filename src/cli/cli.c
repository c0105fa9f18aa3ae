/*
 * Dispatch of the client subcommands, plus the two that need no broker: version and help.
 */
#include <string.h>

#include "broker/version.h"
#include "cli/cli.h"
#include "cli/internal.h"

struct cli_command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
};

static int help_main(int argc, char **argv);

static const struct cli_command commands[] = {
    {"topic", cli_topic_main, "create|list|describe|delete|alter topics"},
    {"produce", cli_produce_main, "write lines from stdin to a topic"},
    {"consume", cli_consume_main, "print records of a topic"},
    {"group", cli_group_main, "list|describe|delete|reset-offsets consumer groups"},
    {"bench", cli_bench_main, "produce|consume|e2e throughput and latency benchmark"},
    {"cluster", cli_cluster_main, "info: brokers, controller, topic and partition counts"},
    {"quota", cli_quota_main, "set|remove|list client quotas (KIP-546)"},
    {"user", cli_user_main, "add|list|delete SCRAM users (stored in the metadata log)"},
    {"acl", cli_acl_main, "add|list|remove ACLs (authorizer.class.name)"},
    {"version", cli_version_main, "print gregor's and librdkafka's versions"},
    {"help", help_main, "this list, or 'help COMMAND' for a command's options"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

void cli_print_commands(FILE *f)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

static const struct cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_usage(FILE *f)
{
    fprintf(f, "usage: gregor <command> [options]\n\nclient commands:\n");
    cli_print_commands(f);
    fprintf(f, "\nRun 'gregor <command> --help' for a command's options and examples.\n");
}

/* "help" alone lists the commands; "help topic" is "topic --help". */
static int help_main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    const struct cli_command *cmd = find_command(argv[1]);
    if (!cmd || cmd->main == help_main) {
        fprintf(stderr, "gregor help: unknown command '%s'\n", argv[1]);
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    char *sub[] = {argv[1], "--help", NULL};
    return cmd->main(2, sub);
}

int cli_version_main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: gregor version\n\nPrints gregor's version and the librdkafka it uses.\n");
        return CLI_EXIT_OK;
    }
    if (argc > 1) {
        fprintf(stderr, "gregor version: unexpected argument '%s'\n", argv[1]);
        return CLI_EXIT_USAGE;
    }
    printf("gregor %s (librdkafka %s)\n", GREGOR_VERSION, rd_kafka_version_str());
    return CLI_EXIT_OK;
}

int cli_main(int argc, char **argv)
{
    if (argc < 1 || !argv[0]) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const struct cli_command *cmd = find_command(argv[0]);
    if (!cmd) {
        fprintf(stderr, "gregor: unknown command '%s'\n", argv[0]);
        fprintf(stderr, "usage: gregor <command> [options]; commands: ");
        for (size_t i = 0; i < NCOMMANDS; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", commands[i].name);
        fprintf(stderr, "\n");
        return CLI_EXIT_USAGE;
    }
    cli_install_stop_signals();
    return cmd->main(argc, argv);
}
