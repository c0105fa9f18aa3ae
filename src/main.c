/*
 * gregor: one binary, subcommands. "serve" runs the broker; every other subcommand is a client
 * tool built on librdkafka (src/cli/).
 */
#include <stdio.h>
#include <string.h>

#include "broker/serve.h"
#include "cli/cli.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gregor <command> [options]\n"
               "\n"
               "broker:\n"
               "  serve      run a broker: serve [-c server.properties] [--override KEY=VALUE]...\n"
               "\n"
               "client commands:\n");
    cli_print_commands(f);
    fprintf(f, "\nRun 'gregor <command> --help' for a command's options and examples.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 64;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return broker_serve_main(argc - 1, argv + 1);
    if ((strcmp(cmd, "help") == 0 && argc == 2) || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0)
        argv[1] = "version";
    return cli_main(argc - 1, argv + 1);
}
