/*
 * The client subcommands' table-driven option parser (src/cli/options.c): every kind of option
 * stores its value where the table says, bad input is a usage error, and --help prints the
 * option lines from the same table, aligned and continued in the help column.
 */
#include "test.h"

#include <limits.h>

#include "cli/internal.h"

#define TOPTS_MAX_TAGS 2

struct topts {
    struct cli_common c;
    const char *name;
    int count;
    int64_t big;
    int verbose;
    const char *tags[TOPTS_MAX_TAGS];
    int ntags;
    const char *props[4];
    int nprops;
    int calls;
};

static int topts_call(void *opts, struct cli_common *c, const char *arg)
{
    struct topts *o = opts;
    o->calls++;
    return 0;
}

static const struct cli_option topts_options[] = {
    {.name = "name",
     .letter = 'n',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct topts, name, const char *),
     .min = 1,
     .expects = "a name",
     .arg = "NAME",
     .help = "the name"},
    {.name = "count",
     .letter = 'c',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct topts, count, int),
     .min = 1,
     .max = 10,
     .expects = "1 to 10",
     .arg = "N",
     .help = "how many,\nat most 10"},
    {.name = "big",
     .has_arg = required_argument,
     .kind = CLI_OPT_INT64,
     .target = CLI_FIELD(struct topts, big, int64_t),
     .max = INT64_MAX,
     .expects = "a number",
     .arg = "N",
     .help = "a large number"},
    {.name = "verbose",
     .letter = 'v',
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct topts, verbose, int),
     .help = "say more"},
    {.name = "tag",
     .has_arg = required_argument,
     .kind = CLI_OPT_LIST,
     .target = CLI_FIELD(struct topts, tags[0], const char *),
     .count = CLI_FIELD(struct topts, ntags, int),
     .max = TOPTS_MAX_TAGS,
     .arg = "TAG",
     .help = "a tag, may repeat"},
    {.name = "prop",
     .letter = 'P',
     .has_arg = required_argument,
     .kind = CLI_OPT_KV_LIST,
     .target = CLI_FIELD(struct topts, props[0], const char *),
     .count = CLI_FIELD(struct topts, nprops, int),
     .max = 4,
     .arg = "K=V",
     .help = "a property"},
    {.name = "poke", .has_arg = no_argument, .kind = CLI_OPT_CALL, .set = topts_call, .help = "x"},
    {.name = NULL},
};

static const struct cli_command_options topts_command = {
    .options = topts_options,
    .usage = "usage: t [options]\n\n",
    .epilog = "examples:\n  t -n x\n",
    .help_column = 24,
};

/* Parses the NULL-terminated arguments after the command name into a fresh *o. */
static int parse(struct topts *o, const char *const *args)
{
    static char *argv[32];
    int argc = 0;
    argv[argc++] = "t";
    while (*args && argc < 31)
        argv[argc++] = (char *)*args++;
    argv[argc] = NULL;
    memset(o, 0, sizeof(*o));
    cli_common_init(&o->c, "t");
    return cli_options_parse(&topts_command, o, &o->c, argc, argv);
}

TEST(test_every_kind_stores_where_the_table_says)
{
    struct topts o;
    const char *args[] = {"-n",           "alpha", "--count=3", "--big", "9000000000", "-v",
                          "--tag",        "a",     "--tag",     "b",     "-P",         "k=v",
                          "--poke",       "-b",    "h:1",       "-X",    "acks=all",   "--debug",
                          "--timeout-ms", "700",   "rest",      NULL};
    CHECK_EQ_INT(parse(&o, args), -1);
    CHECK(strcmp(o.name, "alpha") == 0);
    CHECK_EQ_INT(o.count, 3);
    CHECK_EQ_INT(o.big, 9000000000LL);
    CHECK_EQ_INT(o.verbose, 1);
    CHECK_EQ_INT(o.ntags, 2);
    CHECK(strcmp(o.tags[1], "b") == 0);
    CHECK_EQ_INT(o.nprops, 1);
    CHECK_EQ_INT(o.calls, 1);
    CHECK(strcmp(o.c.brokers, "h:1") == 0);
    CHECK_EQ_INT(o.c.nprops, 1);
    CHECK(strcmp(o.c.debug, "generic") == 0);
    CHECK_EQ_INT(o.c.timeout_ms, 700);
    CHECK_EQ_INT(optind, 21); /* the positional argument */
}

TEST(test_bad_arguments_are_usage_errors)
{
    struct topts o;
    CHECK_EQ_INT(parse(&o, (const char *[]){"-c", "11", NULL}), CLI_EXIT_USAGE);
    CHECK_EQ_INT(parse(&o, (const char *[]){"-c", "3x", NULL}), CLI_EXIT_USAGE);
    CHECK_EQ_INT(parse(&o, (const char *[]){"-n", "", NULL}), CLI_EXIT_USAGE);
    CHECK_EQ_INT(parse(&o, (const char *[]){"-P", "novalue", NULL}), CLI_EXIT_USAGE);
    CHECK_EQ_INT(parse(&o, (const char *[]){"--tag", "a", "--tag", "b", "--tag", "c", NULL}),
                 CLI_EXIT_USAGE);
    CHECK_EQ_INT(parse(&o, (const char *[]){"--no-such", NULL}), CLI_EXIT_USAGE);
    CHECK_EQ_INT(parse(&o, (const char *[]){"-Z", NULL}), CLI_EXIT_USAGE);
    CHECK_EQ_INT(parse(&o, (const char *[]){"--count", NULL}), CLI_EXIT_USAGE);
    CHECK_EQ_INT(parse(&o, (const char *[]){"--timeout-ms", "0", NULL}), CLI_EXIT_USAGE);
    /* parsing starts afresh each time */
    CHECK_EQ_INT(parse(&o, (const char *[]){"-c", "2", NULL}), -1);
    CHECK_EQ_INT(o.count, 2);
}

TEST(test_help_lines_come_from_the_table)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    cli_options_help(&topts_command, f);
    fclose(f);
    int ok = strstr(text, "usage: t [options]\n\n  -n, --name NAME       the name\n") != NULL &&
             strstr(text, "  -c, --count N         how many,\n"
                          "                        at most 10\n") != NULL &&
             strstr(text, "      --poke            x\n") != NULL &&
             strstr(text, "\ncommon options:\n  -b, --brokers HOST:PORT[,..]  bootstrap") != NULL &&
             strstr(text, "      --debug[=CONTEXTS]        show") != NULL &&
             strstr(text, "  -h, --help                    this text\n\nexamples:\n") != NULL;
    if (!ok)
        printf("%s", text);
    free(text);
    CHECK(ok);
    struct topts o;
    fflush(stdout);
    CHECK_EQ_INT(parse(&o, (const char *[]){"--help", NULL}), CLI_EXIT_OK);
}

TEST_MAIN
