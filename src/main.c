/*
 * gregor: one binary, subcommands. "serve" runs the broker; every other subcommand is a client
 * tool built on librdkafka (src/cli/).
 */
#include <stdio.h>
#include <string.h>

#include "broker/serve.h"
#include "broker/version.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gregor <command> [options]\n"
               "\n"
               "commands:\n"
               "  serve [-c server.properties] [--override KEY=VALUE]...   run a broker\n"
               "  version                                                  print the version\n"
               "\n"
               "Run 'gregor <command> --help' for a command's options.\n");
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
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("gregor %s\n", GREGOR_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "gregor: unknown command '%s'\n", cmd);
    usage(stderr);
    return 64;
}
