/*
 * The gregor client subcommands (topic, produce, consume, group, bench, cluster, version, help).
 *
 * They talk to a broker only through librdkafka, never through Gregor's own protocol code, so
 * they double as an interoperability check against a real, widely used client.
 */
#ifndef GREGOR_CLI_CLI_H
#define GREGOR_CLI_CLI_H

#include <stdio.h>

/*
 * Runs one client subcommand. argv[0] is the subcommand name ("topic", "produce", ...), the
 * rest are its arguments. Returns the process exit status: 0 on success, 1 when the operation
 * failed, 64 for a usage error (unknown subcommand or option), 69 when no broker answered.
 * Call from the main thread only; it installs SIGINT/SIGTERM handlers for its duration.
 */
int cli_main(int argc, char **argv);

/* Prints the list of client subcommands (for the top-level usage text). */
void cli_print_commands(FILE *f);

#endif
