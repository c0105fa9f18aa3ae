/*
 * Table-driven option parsing for the client subcommands: each subcommand declares its options
 * once, in a table of struct cli_option, and cli_options_parse() runs getopt_long over that
 * table plus the common options (-b, -X, --debug, --timeout-ms, --help), stores each value in
 * the subcommand's options struct, and prints the --help text, whose option lines come from the
 * same tables. Main thread only (getopt keeps global state).
 */
#ifndef GREGOR_CLI_OPTIONS_H
#define GREGOR_CLI_OPTIONS_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct cli_common;

/* What an option does with its argument; the value lives at `target` in the options struct. */
enum cli_option_kind {
    CLI_OPT_HELP,    /* prints the command's help on stdout; parsing ends with exit status 0 */
    CLI_OPT_FLAG,    /* no argument: the int at target becomes 1 */
    CLI_OPT_STRING,  /* the const char * at target points at the argument (at least `min` long) */
    CLI_OPT_INT,     /* the int at target, parsed within [min, max] */
    CLI_OPT_INT64,   /* the int64_t at target, parsed within [min, max] */
    CLI_OPT_LIST,    /* appended to the const char *[max] at target; its int count at `count` */
    CLI_OPT_KV_LIST, /* CLI_OPT_LIST of KEY=VALUE arguments */
    CLI_OPT_CALL,    /* set(opts, common, arg) stores it, or prints why not */
};

/* Stores ARG (NULL for an option without one) in OPTS. Returns 0, or -1 after printing a usage
 * error. */
typedef int (*cli_option_set_fn)(void *opts, struct cli_common *c, const char *arg);

struct cli_option {
    const char *name; /* long name, without "--" */
    int letter;       /* short option character, 0 when there is none */
    int has_arg;      /* no_argument, required_argument or optional_argument (getopt.h) */
    enum cli_option_kind kind;
    size_t target;    /* offset of the value in the options struct (CLI_FIELD) */
    size_t count;     /* CLI_OPT_LIST, CLI_OPT_KV_LIST: offset of the int count */
    int64_t min, max; /* see enum cli_option_kind */
    cli_option_set_fn set;
    const char *expects; /* numbers and strings: what a bad argument is told ("a port") */
    const char *arg;     /* the argument's name in the help ("N", "[=CONTEXTS]") */
    const char *help;    /* the help text; each '\n' continues it in the help column */
};

/* offsetof(TYPE, FIELD), a compile error unless FIELD is a CTYPE. */
#define CLI_FIELD(type, field, ctype)                                                              \
    (offsetof(type, field) + 0 * sizeof((ctype *){0} = &((type *)0)->field))

/* A command's options and the help text around their lines. */
struct cli_command_options {
    const struct cli_option *options; /* ends with an entry whose name is NULL */
    const char *usage;                /* help text before the option lines */
    const char *epilog;               /* after the common options ("examples: ...") */
    int help_column;                  /* where the options' help text starts */
};

/* Parses argv[1..] of a command whose options struct is OPTS (argv[0] is the command or
 * action name). Returns -1 when the command should go on (optind is the first positional
 * argument), CLI_EXIT_OK after --help, or CLI_EXIT_USAGE after printing one usage line. */
int cli_options_parse(const struct cli_command_options *cmd, void *opts, struct cli_common *c,
                      int argc, char **argv);

/* Prints the command's whole help text to F. */
void cli_options_help(const struct cli_command_options *cmd, FILE *f);

/* For a command that takes an action first (topic create, bench produce): without one, prints
 * the help on stderr and returns CLI_EXIT_USAGE; for -h/--help, on stdout and returns
 * CLI_EXIT_OK; else returns -1 (argv[1] is the action). */
int cli_options_want_action(const struct cli_command_options *cmd, int argc, char **argv);

#endif
