/*
 * One getopt_long loop for every client subcommand, driven by its table of struct cli_option
 * and the common options' table; the --help text's option lines come from the same tables.
 * getopt_long needs one struct option array and one short-option string: both are built per
 * call from the two tables. A long-only option's getopt value is CLI_OPT_VALUE_BASE plus its
 * index in the combined list, so it never collides with a short option character.
 */
#include <assert.h>
#include <getopt.h>
#include <limits.h>
#include <string.h>

#include "cli/internal.h"
#include "cli/options.h"

#define CLI_MAX_OPTIONS 40
#define CLI_OPT_VALUE_BASE 0x100
#define COMMON_HELP_COLUMN 32

static int common_set_debug(void *opts, struct cli_common *c, const char *arg)
{
    (void)opts;
    c->debug = arg ? arg : "generic";
    return 0;
}

static const struct cli_option common_options[] = {
    {.name = "brokers",
     .letter = 'b',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct cli_common, brokers, const char *),
     .min = 1,
     .expects = "HOST:PORT",
     .arg = "HOST:PORT[,..]",
     .help = "bootstrap brokers (default $GREGOR_BROKERS or 127.0.0.1:9092)"},
    {.name = "property",
     .letter = 'X',
     .has_arg = required_argument,
     .kind = CLI_OPT_KV_LIST,
     .target = CLI_FIELD(struct cli_common, props[0], const char *),
     .count = CLI_FIELD(struct cli_common, nprops, int),
     .max = CLI_MAX_PROPS,
     .arg = "KEY=VALUE",
     .help = "librdkafka property, may repeat"},
    {.name = "timeout-ms",
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct cli_common, timeout_ms, int),
     .min = 1,
     .max = INT_MAX,
     .expects = "a positive number",
     .arg = "MS",
     .help = "give up on the broker after MS (default 5000)"},
    {.name = "debug",
     .has_arg = optional_argument,
     .kind = CLI_OPT_CALL,
     .set = common_set_debug,
     .arg = "[=CONTEXTS]",
     .help = "show librdkafka's log (debug contexts, default generic)"},
    {.name = "help",
     .letter = 'h',
     .has_arg = no_argument,
     .kind = CLI_OPT_HELP,
     .help = "this text"},
    {.name = NULL},
};

/* GNU getopt starts afresh at optind 0, so each subcommand parses from a clean state; opterr 0:
 * the one-line message is ours (option_unknown). */
static void options_getopt_reset(void)
{
    optind = 0;
    opterr = 0;
}

/* An unknown option or a missing argument, in one line; returns CLI_EXIT_USAGE. */
static int option_unknown(const struct cli_common *c, char *const *argv)
{
    const char *bad = argv[optind - 1];
    if (optopt && optopt < 0x100)
        return cli_usage_error(c, "option '-%c' is unknown or needs a value", optopt);
    return cli_usage_error(c, "option '%s' is unknown or needs a value", bad ? bad : "?");
}

/* An option of the combined list and the struct its target is in. */
struct option_slot {
    const struct cli_option *opt;
    void *base;
};

static int option_bad(const struct cli_option *o, struct cli_common *c, const char *arg)
{
    return cli_usage_error(c, "--%s expects %s, got '%s'", o->name, o->expects, arg);
}

static int option_append(const struct cli_option *o, char *base, struct cli_common *c,
                         const char *arg)
{
    int *count = (int *)(base + o->count);
    const char **list = (const char **)(base + o->target);
    if (o->kind == CLI_OPT_KV_LIST && cli_split_kv(arg, &(size_t){0}, &(const char *){NULL}) < 0)
        return cli_usage_error(c, "--%s expects KEY=VALUE, got '%s'", o->name, arg);
    if (*count >= o->max)
        return cli_usage_error(c, "too many --%s options (at most %d)", o->name, (int)o->max);
    list[(*count)++] = arg;
    return 0;
}

/* Stores ARG as O says. Returns 0, or CLI_EXIT_USAGE after printing why not. */
static int option_apply(const struct option_slot *s, struct cli_common *c, const char *arg)
{
    const struct cli_option *o = s->opt;
    char *target = (char *)s->base + o->target;
    int64_t v;
    switch (o->kind) {
    case CLI_OPT_FLAG:
        *(int *)target = 1;
        return 0;
    case CLI_OPT_STRING:
        if ((int64_t)strlen(arg) < o->min)
            return option_bad(o, c, arg);
        *(const char **)target = arg;
        return 0;
    case CLI_OPT_INT:
    case CLI_OPT_INT64:
        if (cli_parse_i64(arg, o->min, o->max, &v) < 0)
            return option_bad(o, c, arg);
        if (o->kind == CLI_OPT_INT)
            *(int *)target = (int)v;
        else
            *(int64_t *)target = v;
        return 0;
    case CLI_OPT_LIST:
    case CLI_OPT_KV_LIST:
        return option_append(o, s->base, c, arg);
    case CLI_OPT_CALL:
        return o->set(s->base, c, arg) < 0 ? CLI_EXIT_USAGE : 0;
    case CLI_OPT_HELP:
        return 0;
    }
    return 0;
}

/* Appends TABLE's options to SLOTS, LONGOPTS and SHORTOPTS; returns the new count. */
static size_t options_add(const struct cli_option *table, void *base, struct option_slot *slots,
                          struct option *longopts, char *shortopts, size_t n)
{
    for (const struct cli_option *o = table; o->name; o++) {
        assert(n < CLI_MAX_OPTIONS);
        slots[n] = (struct option_slot){o, base};
        int val = o->letter ? o->letter : CLI_OPT_VALUE_BASE + (int)n;
        longopts[n] = (struct option){o->name, o->has_arg, NULL, val};
        if (o->letter) {
            size_t len = strlen(shortopts);
            shortopts[len++] = (char)o->letter;
            if (o->has_arg != no_argument)
                shortopts[len++] = ':';
            if (o->has_arg == optional_argument)
                shortopts[len++] = ':';
            shortopts[len] = '\0';
        }
        n++;
    }
    return n;
}

/* The slot getopt_long's return value VAL stands for, or NULL ('?': unknown or no value). */
static const struct option_slot *options_find(const struct option_slot *slots, size_t n, int val)
{
    if (val >= CLI_OPT_VALUE_BASE)
        return (size_t)(val - CLI_OPT_VALUE_BASE) < n ? &slots[val - CLI_OPT_VALUE_BASE] : NULL;
    for (size_t i = 0; i < n; i++)
        if (slots[i].opt->letter == val)
            return &slots[i];
    return NULL;
}

int cli_options_parse(const struct cli_command_options *cmd, void *opts, struct cli_common *c,
                      int argc, char **argv)
{
    struct option_slot slots[CLI_MAX_OPTIONS];
    struct option longopts[CLI_MAX_OPTIONS + 1];
    char shortopts[3 * CLI_MAX_OPTIONS + 1] = "";
    size_t n = options_add(cmd->options, opts, slots, longopts, shortopts, 0);
    n = options_add(common_options, c, slots, longopts, shortopts, n);
    longopts[n] = (struct option){NULL, 0, NULL, 0};
    options_getopt_reset();
    int val;
    while ((val = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const struct option_slot *s = options_find(slots, n, val);
        if (s == NULL)
            return option_unknown(c, argv);
        if (s->opt->kind == CLI_OPT_HELP) {
            cli_options_help(cmd, stdout);
            return CLI_EXIT_OK;
        }
        if (option_apply(s, c, optarg) != 0)
            return CLI_EXIT_USAGE;
    }
    return -1;
}

/* "  -p, --partition N" or "      --json", then the help text from COLUMN on. */
static void option_print(const struct cli_option *o, int column, FILE *f)
{
    char left[128];
    int len = snprintf(left, sizeof(left), "  %c%c%c --%s%s%s", o->letter ? '-' : ' ',
                       o->letter ? o->letter : ' ', o->letter ? ',' : ' ', o->name,
                       o->arg && o->arg[0] != '[' ? " " : "", o->arg ? o->arg : "");
    fprintf(f, "%s%*s", left, len + 2 <= column ? column - len : 2, "");
    for (const char *h = o->help; *h;) {
        const char *nl = strchr(h, '\n');
        int hl = nl ? (int)(nl - h) : (int)strlen(h);
        fprintf(f, "%.*s\n", hl, h);
        if (!nl)
            break;
        h = nl + 1;
        fprintf(f, "%*s", column, "");
    }
}

static void options_print(const struct cli_option *table, int column, FILE *f)
{
    for (const struct cli_option *o = table; o->name; o++)
        option_print(o, column, f);
}

void cli_options_help(const struct cli_command_options *cmd, FILE *f)
{
    fputs(cmd->usage, f);
    options_print(cmd->options, cmd->help_column, f);
    fputs("\ncommon options:\n", f);
    options_print(common_options, COMMON_HELP_COLUMN, f);
    fputs("\n", f);
    fputs(cmd->epilog, f);
}

int cli_options_want_action(const struct cli_command_options *cmd, int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0)
        return -1;
    cli_options_help(cmd, argc < 2 ? stderr : stdout);
    return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
}
