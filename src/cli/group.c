/*
 * gregor group list|describe|delete|reset-offsets, modelled on kafka-consumer-groups.sh.
 *
 * describe joins three answers: DescribeGroups (state, members and their assignments),
 * OffsetFetch (committed offsets) and ListOffsets latest (log end), giving lag per partition.
 * reset-offsets computes new offsets from ListOffsets and commits them with OffsetCommit
 * (AlterConsumerGroupOffsets); like Kafka it refuses while the group has live members, since
 * their next commit would overwrite the reset.
 *
 * A group of the consumer protocol (KIP-848) is Dead to DescribeGroups; describe then asks its
 * coordinator with ConsumerGroupDescribe, sent raw (librdkafka 2.0.2 has no call for it), and
 * prints the group and assignment epochs, the assignor and each member's epoch, subscription
 * and assignment.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/arena.h"
#include "broker/controller_client.h"
#include "cli/internal.h"
#include "proto/gen/api_table.h"
#include "proto/gen/consumer_group_describe.h"

#define GROUP_MAX_TOPICS 64

enum reset_to { RESET_NONE, RESET_EARLIEST, RESET_LATEST, RESET_OFFSET, RESET_DATETIME };

struct group_opts {
    struct cli_common c;
    const char *group;
    char **names; /* positional arguments */
    int nnames;
    const char *topics[GROUP_MAX_TOPICS];
    int ntopics;
    int32_t partition; /* -1: all */
    enum reset_to to;
    int64_t to_value; /* offset or timestamp ms */
    int dry_run;
};

/* --to-earliest, --to-latest, --to-offset N, --to-datetime T: only one of them. */
static int set_reset(struct group_opts *o, enum reset_to to)
{
    if (o->to != RESET_NONE) {
        cli_usage_error(&o->c, "use only one --to-* option");
        return -1;
    }
    o->to = to;
    return 0;
}

static int set_to_earliest(void *opts, struct cli_common *c, const char *arg)
{
    return set_reset(opts, RESET_EARLIEST);
}

static int set_to_latest(void *opts, struct cli_common *c, const char *arg)
{
    return set_reset(opts, RESET_LATEST);
}

static int set_to_offset(void *opts, struct cli_common *c, const char *arg)
{
    struct group_opts *o = opts;
    if (set_reset(o, RESET_OFFSET) < 0)
        return -1;
    if (cli_parse_i64(arg, 0, INT64_MAX, &o->to_value) < 0) {
        cli_usage_error(c, "--to-offset expects an offset >= 0");
        return -1;
    }
    return 0;
}

static int set_to_datetime(void *opts, struct cli_common *c, const char *arg)
{
    struct group_opts *o = opts;
    if (set_reset(o, RESET_DATETIME) < 0)
        return -1;
    if (cli_parse_datetime(arg, &o->to_value) < 0) {
        cli_usage_error(c, "--to-datetime expects epoch ms or ISO-8601");
        return -1;
    }
    return 0;
}

static const struct cli_option group_options[] = {
    {.name = "group",
     .letter = 'g',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct group_opts, group, const char *),
     .arg = "GROUP",
     .help = "the group (instead of the positional GROUP)"},
    {.name = "topic",
     .letter = 't',
     .has_arg = required_argument,
     .kind = CLI_OPT_LIST,
     .target = CLI_FIELD(struct group_opts, topics[0], const char *),
     .count = CLI_FIELD(struct group_opts, ntopics, int),
     .max = GROUP_MAX_TOPICS,
     .arg = "TOPIC",
     .help = "reset this topic's partitions, may repeat (default: every\n"
             "partition the group has committed offsets for)"},
    {.name = "partition",
     .letter = 'p',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct group_opts, partition, int32_t),
     .max = INT32_MAX,
     .expects = "a partition number",
     .arg = "N",
     .help = "only partition N of the topic(s)"},
    {.name = "to-earliest",
     .has_arg = no_argument,
     .kind = CLI_OPT_CALL,
     .set = set_to_earliest,
     .help = "reset to each partition's log start"},
    {.name = "to-latest",
     .has_arg = no_argument,
     .kind = CLI_OPT_CALL,
     .set = set_to_latest,
     .help = "reset to each partition's log end"},
    {.name = "to-offset",
     .has_arg = required_argument,
     .kind = CLI_OPT_CALL,
     .set = set_to_offset,
     .arg = "N",
     .help = "reset to N (clamped to the partition's offsets)"},
    {.name = "to-datetime",
     .has_arg = required_argument,
     .kind = CLI_OPT_CALL,
     .set = set_to_datetime,
     .arg = "T",
     .help = "reset to the first record at or after T (epoch ms or\n"
             "2024-05-01T12:00:00Z)"},
    {.name = "dry-run",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct group_opts, dry_run, int),
     .help = "print the new offsets without committing them"},
    {.name = NULL},
};

static const struct cli_command_options group_command = {
    .options = group_options,
    .usage = "usage: gregor group list\n"
             "       gregor group describe GROUP...\n"
             "       gregor group delete GROUP...\n"
             "       gregor group reset-offsets GROUP --topic TOPIC [--partition N]\n"
             "                  (--to-earliest | --to-latest | --to-offset N | --to-datetime T) "
             "[--dry-run]\n"
             "\n",
    .epilog =
        "describe prints, per partition, the committed offset, the log end offset, the lag, and "
        "the\n"
        "member that owns the partition. reset-offsets refuses while the group has members.\n"
        "\n"
        "examples:\n"
        "  gregor group list\n"
        "  gregor group describe billing\n"
        "  gregor group reset-offsets billing --topic invoices --to-earliest --dry-run\n"
        "  gregor group reset-offsets billing -t invoices --to-datetime 2024-05-01T00:00:00Z\n"
        "  gregor group delete billing\n",
    .help_column = 28,
};

static int group_parse(struct group_opts *o, int argc, char **argv)
{
    o->partition = -1;
    int rc = cli_options_parse(&group_command, o, &o->c, argc, argv);
    if (rc >= 0)
        return rc;
    o->names = argv + optind;
    o->nnames = argc - optind;
    return -1;
}

/*
 * Issues CALL_EXPR, which names the admin options `ao` and the result queue `q` this macro
 * provides, and waits for its result: *EVP is the event (caller destroys) or NULL (reported).
 */
#define ADMIN_CALL(o, rk, op, what, call_expr, evp)                                                \
    do {                                                                                           \
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);                                              \
        rd_kafka_AdminOptions_t *ao = cli_admin_options(&(o)->c, rk, op);                          \
        call_expr;                                                                                 \
        *(evp) = cli_admin_wait(&(o)->c, q, what);                                                 \
        rd_kafka_AdminOptions_destroy(ao);                                                         \
        rd_kafka_queue_destroy(q);                                                                 \
    } while (0)

static int cmp_listing(const void *a, const void *b)
{
    return strcmp(rd_kafka_ConsumerGroupListing_group_id(*(const void *const *)a),
                  rd_kafka_ConsumerGroupListing_group_id(*(const void *const *)b));
}

static int group_list(struct group_opts *o, rd_kafka_t *rk)
{
    rd_kafka_event_t *ev;
    ADMIN_CALL(o, rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, "list groups",
               rd_kafka_ListConsumerGroups(rk, ao, q), &ev);
    if (!ev)
        return CLI_EXIT_FAIL;
    const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
    size_t n, nerr;
    const rd_kafka_ConsumerGroupListing_t **src = rd_kafka_ListConsumerGroups_result_valid(res, &n);
    const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
    const rd_kafka_ConsumerGroupListing_t **gs = calloc(n + 1, sizeof(*gs));
    memcpy(gs, src, n * sizeof(*gs));
    qsort(gs, n, sizeof(*gs), cmp_listing);
    if (n)
        printf("%-40s %s\n", "GROUP", "STATE");
    for (size_t i = 0; i < n; i++)
        printf("%-40s %s\n", rd_kafka_ConsumerGroupListing_group_id(gs[i]),
               rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(gs[i])));
    if (nerr)
        cli_error(&o->c, "%zu broker(s) did not list their groups: %s", nerr,
                  rd_kafka_error_string(errs[0]));
    free(gs);
    rd_kafka_event_destroy(ev);
    return nerr ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

static int group_delete(struct group_opts *o, rd_kafka_t *rk)
{
    if (o->group) {
        o->names = &(char *){(char *)o->group};
        o->nnames = 1;
    }
    if (o->nnames < 1)
        return cli_usage_error(&o->c, "delete needs at least one GROUP");
    rd_kafka_DeleteGroup_t **dg = calloc((size_t)o->nnames, sizeof(*dg));
    for (int i = 0; i < o->nnames; i++)
        dg[i] = rd_kafka_DeleteGroup_new(o->names[i]);
    rd_kafka_event_t *ev;
    ADMIN_CALL(o, rk, RD_KAFKA_ADMIN_OP_DELETEGROUPS, "delete groups",
               rd_kafka_DeleteGroups(rk, dg, (size_t)o->nnames, ao, q), &ev);
    rd_kafka_DeleteGroup_destroy_array(dg, (size_t)o->nnames);
    free(dg);
    if (!ev)
        return CLI_EXIT_FAIL;
    size_t n;
    const rd_kafka_group_result_t **res =
        rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(ev), &n);
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_error_t *err = rd_kafka_group_result_error(res[i]);
        if (err) {
            cli_error(&o->c, "group %s: %s", rd_kafka_group_result_name(res[i]),
                      rd_kafka_error_string(err));
            failed++;
        } else {
            printf("deleted group %s\n", rd_kafka_group_result_name(res[i]));
        }
    }
    rd_kafka_event_destroy(ev);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* DescribeConsumerGroups for one group: returns the event (caller destroys) and *DESCP. */
static rd_kafka_event_t *describe_group(struct group_opts *o, rd_kafka_t *rk, const char *group,
                                        const rd_kafka_ConsumerGroupDescription_t **descp)
{
    rd_kafka_event_t *ev;
    const char *groups[1] = {group};
    ADMIN_CALL(o, rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, "describe group",
               rd_kafka_DescribeConsumerGroups(rk, groups, 1, ao, q), &ev);
    if (!ev)
        return NULL;
    size_t n;
    const rd_kafka_ConsumerGroupDescription_t **d = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    if (n != 1 || rd_kafka_ConsumerGroupDescription_error(d[0])) {
        cli_error(&o->c, "describe group %s failed: %s", group,
                  n == 1 ? rd_kafka_error_string(rd_kafka_ConsumerGroupDescription_error(d[0]))
                         : "no result");
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    *descp = d[0];
    return ev;
}

/* Committed offsets of GROUP (all partitions); a copy the caller destroys, or NULL. */
static rd_kafka_topic_partition_list_t *committed_offsets(struct group_opts *o, rd_kafka_t *rk,
                                                          const char *group)
{
    rd_kafka_ListConsumerGroupOffsets_t *req = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_event_t *ev;
    ADMIN_CALL(o, rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, "list group offsets",
               rd_kafka_ListConsumerGroupOffsets(rk, &req, 1, ao, q), &ev);
    rd_kafka_ListConsumerGroupOffsets_destroy(req);
    if (!ev)
        return NULL;
    size_t n;
    const rd_kafka_group_result_t **res = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (n != 1 || rd_kafka_group_result_error(res[0]))
        cli_error(&o->c, "offsets of group %s: %s", group,
                  n == 1 ? rd_kafka_error_string(rd_kafka_group_result_error(res[0]))
                         : "no result");
    else
        parts = rd_kafka_topic_partition_list_copy(rd_kafka_group_result_partitions(res[0]));
    rd_kafka_event_destroy(ev);
    return parts;
}

static int cmp_tp(const void *a, const void *b)
{
    const rd_kafka_topic_partition_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* The member owning TOPIC/PARTITION, or NULL. */
static const rd_kafka_MemberDescription_t *owner_of(const rd_kafka_ConsumerGroupDescription_t *d,
                                                    const char *topic, int32_t partition)
{
    size_t n = rd_kafka_ConsumerGroupDescription_member_count(d);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        const rd_kafka_topic_partition_list_t *a =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
        for (int j = 0; a && j < a->cnt; j++)
            if (a->elems[j].partition == partition && strcmp(a->elems[j].topic, topic) == 0)
                return m;
    }
    return NULL;
}

/* Committed partitions plus any assigned but never committed, sorted; offsets -1001 if none. */
static rd_kafka_topic_partition_list_t *
lag_partitions(const rd_kafka_ConsumerGroupDescription_t *d,
               const rd_kafka_topic_partition_list_t *committed)
{
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_copy(committed);
    size_t n = rd_kafka_ConsumerGroupDescription_member_count(d);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_topic_partition_list_t *a = rd_kafka_MemberAssignment_partitions(
            rd_kafka_MemberDescription_assignment(rd_kafka_ConsumerGroupDescription_member(d, i)));
        for (int j = 0; a && j < a->cnt; j++)
            if (!rd_kafka_topic_partition_list_find(all, a->elems[j].topic, a->elems[j].partition))
                rd_kafka_topic_partition_list_add(all, a->elems[j].topic, a->elems[j].partition)
                    ->offset = RD_KAFKA_OFFSET_INVALID;
    }
    qsort(all->elems, (size_t)all->cnt, sizeof(*all->elems), cmp_tp);
    return all;
}

/* A partition's owner as the lag table shows it. */
struct owner {
    const char *id, *host, *client;
};

/* The owner from a consumer-protocol description (NULL if none): strings in the arena. */
static bool cg_owner_of(const struct kmsg_consumer_group_describe_response_described_group *g,
                        struct arena *a, const char *topic, int32_t partition, struct owner *out)
{
    for (int32_t i = 0; g && i < g->members.n; i++) {
        const struct kmsg_consumer_group_describe_response_member *m = &g->members.v[i];
        const struct kmsg_consumer_group_describe_response_topic_partitions_array *tp =
            &m->assignment.topic_partitions;
        for (int32_t t = 0; t < tp->n; t++) {
            if ((int32_t)strlen(topic) != tp->v[t].topic_name.len ||
                memcmp(topic, tp->v[t].topic_name.ptr, (size_t)tp->v[t].topic_name.len) != 0)
                continue;
            for (int32_t j = 0; j < tp->v[t].partitions.n; j++) {
                if (tp->v[t].partitions.v[j] != partition)
                    continue;
                out->id = arena_strndup(a, m->member_id.ptr, (size_t)m->member_id.len);
                out->host = arena_strndup(a, m->client_host.ptr, (size_t)m->client_host.len);
                out->client = arena_strndup(a, m->client_id.ptr, (size_t)m->client_id.len);
                return out->id && out->host && out->client;
            }
        }
    }
    return false;
}

static void print_lag_table(const char *group, const rd_kafka_ConsumerGroupDescription_t *d,
                            const struct kmsg_consumer_group_describe_response_described_group *cg,
                            struct arena *a, const rd_kafka_topic_partition_list_t *parts,
                            const rd_kafka_topic_partition_list_t *ends)
{
    printf("%-24s %-24s %-9s %-14s %-14s %-8s %-30s %-16s %s\n", "GROUP", "TOPIC", "PARTITION",
           "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID");
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        const rd_kafka_topic_partition_t *e =
            ends ? rd_kafka_topic_partition_list_find(ends, p->topic, p->partition) : NULL;
        int64_t end = e && !e->err ? e->offset : -1;
        char cur[24] = "-", endbuf[24] = "-", lag[24] = "-";
        if (p->offset >= 0)
            snprintf(cur, sizeof(cur), "%lld", (long long)p->offset);
        if (end >= 0)
            snprintf(endbuf, sizeof(endbuf), "%lld", (long long)end);
        if (end >= 0 && p->offset >= 0)
            snprintf(lag, sizeof(lag), "%lld", (long long)(end - p->offset));
        const rd_kafka_MemberDescription_t *m = cg ? NULL : owner_of(d, p->topic, p->partition);
        struct owner ow = {"-", "-", "-"};
        if (m)
            ow = (struct owner){rd_kafka_MemberDescription_consumer_id(m),
                                rd_kafka_MemberDescription_host(m),
                                rd_kafka_MemberDescription_client_id(m)};
        else if (cg && !cg_owner_of(cg, a, p->topic, p->partition, &ow))
            ow = (struct owner){"-", "-", "-"};
        printf("%-24s %-24s %-9d %-14s %-14s %-8s %-30s %-16s %s\n", group, p->topic, p->partition,
               cur, endbuf, lag, ow.id, ow.host, ow.client);
    }
}

/* ConsumerGroupDescribe v0 of GROUP at its coordinator: 0 and *out (slices into *buf and
 * arena), or -1 after reporting. */
static int cg_describe(struct group_opts *o, const rd_kafka_Node_t *coord, const char *group,
                       uint8_t **buf, struct arena *arena,
                       const struct kmsg_consumer_group_describe_response_described_group **out)
{
    if (coord == NULL || rd_kafka_Node_host(coord) == NULL) {
        cli_error(&o->c, "group %s: no coordinator to ask", group);
        return -1;
    }
    struct controller_client cc;
    controller_client_init(&cc, -1, NULL);
    snprintf(cc.client_id, sizeof(cc.client_id), "gregor-cli");
    struct kstr id = {group, (int32_t)strlen(group)};
    struct kmsg_consumer_group_describe_request req = {{1, &id}, false};
    struct kmsg_consumer_group_describe_response *resp = arena_calloc(arena, 1, sizeof(*resp));
    int rc = -1;
    /* A coordinator still loading its partition answers COORDINATOR_LOAD_IN_PROGRESS (14):
     * asked again for up to 5 s. */
    for (int attempt = 0; resp && attempt < 50; attempt++) {
        free(*buf);
        *buf = NULL;
        rc = controller_client_call(&cc, rd_kafka_Node_host(coord), rd_kafka_Node_port(coord),
                                    KPROTO_API_CONSUMER_GROUP_DESCRIBE, 0, &req, resp, buf, arena,
                                    o->c.timeout_ms > 0 ? o->c.timeout_ms : 5000);
        if (rc != 0 || resp->groups.n != 1 || resp->groups.v[0].error_code != 14)
            break;
        usleep(100000);
    }
    controller_client_close(&cc);
    if (rc != 0 || resp->groups.n != 1) {
        cli_error(&o->c, "group %s: ConsumerGroupDescribe failed (%d)", group, rc);
        return -1;
    }
    const struct kmsg_consumer_group_describe_response_described_group *g = &resp->groups.v[0];
    if (g->error_code == 69 /* GROUP_ID_NOT_FOUND */) {
        cli_error(&o->c, "group %s does not exist", group);
        return -1;
    }
    if (g->error_code != 0) {
        cli_error(&o->c, "group %s: ConsumerGroupDescribe error %d%s%.*s", group, g->error_code,
                  g->error_message.len > 0 ? ": " : "",
                  g->error_message.len > 0 ? (int)g->error_message.len : 0,
                  g->error_message.len > 0 ? g->error_message.ptr : "");
        return -1;
    }
    *out = g;
    return 0;
}

/* topic[p,p,...] per topic of an assignment, space-separated; "-" when empty. */
static void print_cg_assignment(const struct kmsg_consumer_group_describe_response_assignment *a)
{
    if (a->topic_partitions.n <= 0) {
        printf("-");
        return;
    }
    for (int32_t t = 0; t < a->topic_partitions.n; t++) {
        const struct kmsg_consumer_group_describe_response_topic_partitions *tp =
            &a->topic_partitions.v[t];
        printf("%s%.*s[", t ? " " : "", (int)tp->topic_name.len, tp->topic_name.ptr);
        for (int32_t j = 0; j < tp->partitions.n; j++)
            printf("%s%d", j ? "," : "", tp->partitions.v[j]);
        printf("]");
    }
}

static void print_cg_group(const char *group, int32_t coord,
                           const struct kmsg_consumer_group_describe_response_described_group *g)
{
    printf("Group %s: protocol consumer, state %.*s, %d member(s), coordinator %d, "
           "group epoch %d, assignment epoch %d, assignor %.*s\n",
           group, (int)g->group_state.len, g->group_state.ptr, g->members.n, coord, g->group_epoch,
           g->assignment_epoch, g->assignor_name.len > 0 ? (int)g->assignor_name.len : 1,
           g->assignor_name.len > 0 ? g->assignor_name.ptr : "-");
    for (int32_t i = 0; i < g->members.n; i++) {
        const struct kmsg_consumer_group_describe_response_member *m = &g->members.v[i];
        printf("  Member %.*s instance=%.*s client=%.*s host=%.*s epoch=%d subscription=",
               (int)m->member_id.len, m->member_id.ptr,
               m->instance_id.len > 0 ? (int)m->instance_id.len : 1,
               m->instance_id.len > 0 ? m->instance_id.ptr : "-", (int)m->client_id.len,
               m->client_id.ptr, (int)m->client_host.len, m->client_host.ptr, m->member_epoch);
        for (int32_t j = 0; j < m->subscribed_topic_names.n; j++)
            printf("%s%.*s", j ? "," : "", (int)m->subscribed_topic_names.v[j].len,
                   m->subscribed_topic_names.v[j].ptr);
        if (m->subscribed_topic_regex.len > 0)
            printf("%s/%.*s/", m->subscribed_topic_names.n > 0 ? "," : "",
                   (int)m->subscribed_topic_regex.len, m->subscribed_topic_regex.ptr);
        printf(" assigned=");
        print_cg_assignment(&m->assignment);
        printf(" target=");
        print_cg_assignment(&m->target_assignment);
        printf("\n");
    }
}

/* Adds the partitions a consumer group's members own but never committed (offset -1001),
 * keeping parts sorted. */
static void cg_add_assigned(const struct kmsg_consumer_group_describe_response_described_group *g,
                            rd_kafka_topic_partition_list_t *parts)
{
    for (int32_t i = 0; g && i < g->members.n; i++) {
        const struct kmsg_consumer_group_describe_response_topic_partitions_array *tp =
            &g->members.v[i].assignment.topic_partitions;
        for (int32_t t = 0; t < tp->n; t++) {
            char topic[256];
            snprintf(topic, sizeof(topic), "%.*s", (int)tp->v[t].topic_name.len,
                     tp->v[t].topic_name.ptr);
            for (int32_t j = 0; j < tp->v[t].partitions.n; j++)
                if (!rd_kafka_topic_partition_list_find(parts, topic, tp->v[t].partitions.v[j]))
                    rd_kafka_topic_partition_list_add(parts, topic, tp->v[t].partitions.v[j])
                        ->offset = RD_KAFKA_OFFSET_INVALID;
        }
    }
    qsort(parts->elems, (size_t)parts->cnt, sizeof(*parts->elems), cmp_tp);
}

static int describe_one(struct group_opts *o, rd_kafka_t *rk, const char *group)
{
    const rd_kafka_ConsumerGroupDescription_t *d;
    rd_kafka_event_t *ev = describe_group(o, rk, group, &d);
    if (!ev)
        return -1;
    rd_kafka_consumer_group_state_t state = rd_kafka_ConsumerGroupDescription_state(d);
    const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(d);
    size_t members = rd_kafka_ConsumerGroupDescription_member_count(d);
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    const struct kmsg_consumer_group_describe_response_described_group *cg = NULL;
    int rc = -1;
    if (state == RD_KAFKA_CONSUMER_GROUP_STATE_DEAD) {
        /* Dead to DescribeGroups: unknown, or a group of the consumer protocol. */
        if (cg_describe(o, coord, group, &buf, &arena, &cg) != 0)
            goto out;
        print_cg_group(group, coord ? rd_kafka_Node_id(coord) : -1, cg);
    } else {
        printf("Group %s: protocol classic, state %s, %zu member(s), coordinator %d, assignor %s\n",
               group, rd_kafka_consumer_group_state_name(state), members,
               coord ? rd_kafka_Node_id(coord) : -1,
               rd_kafka_ConsumerGroupDescription_partition_assignor(d)
                   ? rd_kafka_ConsumerGroupDescription_partition_assignor(d)
                   : "-");
    }
    rd_kafka_topic_partition_list_t *committed = committed_offsets(o, rk, group);
    if (committed) {
        rd_kafka_topic_partition_list_t *parts = lag_partitions(d, committed);
        cg_add_assigned(cg, parts);
        rd_kafka_topic_partition_list_t *ends = rd_kafka_topic_partition_list_copy(parts);
        rc = 0;
        if (ends->cnt && cli_list_offsets(&o->c, rk, ends, CLI_OFFSETS_LATEST) < 0) {
            rd_kafka_topic_partition_list_destroy(ends);
            ends = NULL;
            rc = -1;
        }
        print_lag_table(group, d, cg, &arena, parts, ends);
        if (ends)
            rd_kafka_topic_partition_list_destroy(ends);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_topic_partition_list_destroy(committed);
    }
out:
    free(buf);
    arena_free(&arena);
    rd_kafka_event_destroy(ev);
    return rc;
}

static int group_describe(struct group_opts *o, rd_kafka_t *rk)
{
    if (o->group) {
        o->names = &(char *){(char *)o->group};
        o->nnames = 1;
    }
    if (o->nnames < 1)
        return cli_usage_error(&o->c, "describe needs at least one GROUP");
    int failed = 0;
    for (int i = 0; i < o->nnames; i++) {
        if (i)
            printf("\n");
        failed |= describe_one(o, rk, o->names[i]) < 0;
    }
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* The partitions to reset: every partition of --topic (or just --partition), or everything
 * the group has committed when no topic is given. NULL after reporting. */
static rd_kafka_topic_partition_list_t *reset_targets(struct group_opts *o, rd_kafka_t *rk,
                                                      const rd_kafka_topic_partition_list_t *cm)
{
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    if (o->ntopics == 0) {
        for (int i = 0; i < cm->cnt; i++)
            if (o->partition < 0 || cm->elems[i].partition == o->partition)
                rd_kafka_topic_partition_list_add(parts, cm->elems[i].topic,
                                                  cm->elems[i].partition);
        return parts;
    }
    const struct rd_kafka_metadata *md;
    if (cli_metadata(&o->c, rk, 1, &md)) {
        rd_kafka_topic_partition_list_destroy(parts);
        return NULL;
    }
    for (int i = 0; i < o->ntopics; i++) {
        const struct rd_kafka_metadata_topic *t = cli_md_topic(md, o->topics[i]);
        if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
            cli_error(&o->c, "topic %s does not exist", o->topics[i]);
            rd_kafka_topic_partition_list_destroy(parts);
            parts = NULL;
            break;
        }
        for (int j = 0; j < t->partition_cnt; j++)
            if (o->partition < 0 || t->partitions[j].id == o->partition)
                rd_kafka_topic_partition_list_add(parts, t->topic, t->partitions[j].id);
    }
    rd_kafka_metadata_destroy(md);
    return parts;
}

/* Fills PARTS' offsets with the reset target, clamped to [log start, log end]. */
static int compute_reset(struct group_opts *o, rd_kafka_t *rk,
                         rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *low = rd_kafka_topic_partition_list_copy(parts);
    rd_kafka_topic_partition_list_t *high = rd_kafka_topic_partition_list_copy(parts);
    int rc = -1;
    if (cli_list_offsets(&o->c, rk, low, CLI_OFFSETS_EARLIEST) < 0 ||
        cli_list_offsets(&o->c, rk, high, CLI_OFFSETS_LATEST) < 0)
        goto out;
    if (o->to == RESET_DATETIME && cli_list_offsets(&o->c, rk, parts, o->to_value) < 0)
        goto out;
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo = low->elems[i].offset, hi = high->elems[i].offset, v;
        if (low->elems[i].err || high->elems[i].err) {
            cli_error(&o->c, "%s/%d: %s", parts->elems[i].topic, parts->elems[i].partition,
                      rd_kafka_err2str(low->elems[i].err ? low->elems[i].err : high->elems[i].err));
            goto out;
        }
        switch (o->to) {
        case RESET_EARLIEST:
            v = lo;
            break;
        case RESET_LATEST:
            v = hi;
            break;
        case RESET_OFFSET:
            v = o->to_value;
            break;
        default: /* datetime: -1 means no record at or after it */
            v = parts->elems[i].offset < 0 ? hi : parts->elems[i].offset;
        }
        parts->elems[i].offset = v < lo ? lo : v > hi ? hi : v;
    }
    rc = 0;
out:
    rd_kafka_topic_partition_list_destroy(low);
    rd_kafka_topic_partition_list_destroy(high);
    return rc;
}

static int commit_reset(struct group_opts *o, rd_kafka_t *rk, const char *group,
                        const rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_AlterConsumerGroupOffsets_t *req =
        rd_kafka_AlterConsumerGroupOffsets_new(group, parts);
    rd_kafka_event_t *ev;
    ADMIN_CALL(o, rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, "commit offsets",
               rd_kafka_AlterConsumerGroupOffsets(rk, &req, 1, ao, q), &ev);
    rd_kafka_AlterConsumerGroupOffsets_destroy(req);
    if (!ev)
        return -1;
    size_t n;
    const rd_kafka_group_result_t **res = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
    int failed = n != 1;
    if (n == 1 && rd_kafka_group_result_error(res[0])) {
        cli_error(&o->c, "commit failed: %s",
                  rd_kafka_error_string(rd_kafka_group_result_error(res[0])));
        failed = 1;
    }
    const rd_kafka_topic_partition_list_t *r =
        n == 1 ? rd_kafka_group_result_partitions(res[0]) : 0;
    for (int i = 0; r && i < r->cnt; i++)
        if (r->elems[i].err) {
            cli_error(&o->c, "commit of %s/%d failed: %s", r->elems[i].topic, r->elems[i].partition,
                      rd_kafka_err2str(r->elems[i].err));
            failed = 1;
        }
    rd_kafka_event_destroy(ev);
    return failed ? -1 : 0;
}

static int group_reset(struct group_opts *o, rd_kafka_t *rk)
{
    const char *group = o->group ? o->group : o->nnames == 1 ? o->names[0] : NULL;
    if (!group || (o->group && o->nnames))
        return cli_usage_error(&o->c, "reset-offsets takes exactly one GROUP");
    if (o->to == RESET_NONE)
        return cli_usage_error(&o->c, "say where to: --to-earliest, --to-latest, --to-offset N "
                                      "or --to-datetime T");
    const rd_kafka_ConsumerGroupDescription_t *d;
    rd_kafka_event_t *ev = describe_group(o, rk, group, &d);
    if (!ev)
        return CLI_EXIT_FAIL;
    size_t members = rd_kafka_ConsumerGroupDescription_member_count(d);
    const char *state =
        rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(d));
    char state_copy[32];
    snprintf(state_copy, sizeof(state_copy), "%s", state);
    rd_kafka_event_destroy(ev);
    if (members > 0 && !o->dry_run) {
        cli_error(&o->c, "group %s has %zu active member(s) (state %s); stop them first", group,
                  members, state_copy);
        return CLI_EXIT_FAIL;
    }
    rd_kafka_topic_partition_list_t *cm = committed_offsets(o, rk, group);
    if (!cm)
        return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_FAIL;
    rd_kafka_topic_partition_list_t *parts = reset_targets(o, rk, cm);
    if (!parts)
        goto out;
    if (parts->cnt == 0) {
        cli_error(&o->c, "nothing to reset: group %s has no committed offsets; name --topic",
                  group);
        goto out;
    }
    if (compute_reset(o, rk, parts) < 0)
        goto out;
    qsort(parts->elems, (size_t)parts->cnt, sizeof(*parts->elems), cmp_tp);
    printf("%-24s %-24s %-9s %-14s %s\n", "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET",
           "NEW-OFFSET");
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *p = &parts->elems[i];
        const rd_kafka_topic_partition_t *c =
            rd_kafka_topic_partition_list_find(cm, p->topic, p->partition);
        char cur[24] = "-";
        if (c && c->offset >= 0)
            snprintf(cur, sizeof(cur), "%lld", (long long)c->offset);
        printf("%-24s %-24s %-9d %-14s %lld\n", group, p->topic, p->partition, cur,
               (long long)p->offset);
    }
    if (o->dry_run) {
        printf("(dry run: nothing committed)\n");
        rc = CLI_EXIT_OK;
    } else if (commit_reset(o, rk, group, parts) == 0) {
        rc = CLI_EXIT_OK;
    }
out:
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_topic_partition_list_destroy(cm);
    return rc;
}

int cli_group_main(int argc, char **argv)
{
    static const struct {
        const char *action;
        int (*run)(struct group_opts *, rd_kafka_t *);
    } actions[] = {
        {"list", group_list},
        {"describe", group_describe},
        {"delete", group_delete},
        {"reset-offsets", group_reset},
    };
    static char name[64];
    struct group_opts o;
    memset(&o, 0, sizeof(o));
    cli_common_init(&o.c, "gregor group");
    int rc = cli_options_want_action(&group_command, argc, argv);
    if (rc >= 0)
        return rc;
    int (*run)(struct group_opts *, rd_kafka_t *) = NULL;
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(argv[1], actions[i].action) == 0)
            run = actions[i].run;
    if (!run)
        return cli_usage_error(&o.c,
                               "unknown action '%s' (list, describe, delete, "
                               "reset-offsets)",
                               argv[1]);
    snprintf(name, sizeof(name), "gregor group %s", argv[1]);
    o.c.name = name;
    rc = group_parse(&o, argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    if (run != group_reset && (o.ntopics || o.partition >= 0 || o.to != RESET_NONE || o.dry_run))
        return cli_usage_error(&o.c, "--topic, --partition, --to-* and --dry-run are for "
                                     "reset-offsets");
    if (run == group_list && o.nnames)
        return cli_usage_error(&o.c, "list takes no arguments");
    rd_kafka_t *rk = cli_client_new(&o.c, RD_KAFKA_PRODUCER, NULL);
    if (!rk)
        return CLI_EXIT_USAGE;
    rc = cli_metadata(&o.c, rk, 0, NULL);
    if (rc == CLI_EXIT_OK)
        rc = run(&o, rk);
    return cli_client_destroy(rk, rc);
}
