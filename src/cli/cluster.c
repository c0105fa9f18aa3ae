/*
 * gregor cluster info: cluster id, brokers with their leader counts and topic/partition counts
 * from one Metadata request; the active controller and the quorum from DescribeQuorum (sent
 * raw: librdkafka has no call for it).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "broker/controller_client.h"
#include "cli/internal.h"
#include "cluster/controller.h"
#include "proto/gen/describe_quorum.h"

struct cluster_opts {
    struct cli_common c;
    int json;
};

static const struct cli_option cluster_options[] = {
    {.name = "json",
     .has_arg = no_argument,
     .kind = CLI_OPT_FLAG,
     .target = CLI_FIELD(struct cluster_opts, json, int),
     .help = "one JSON object instead of text"},
    {.name = NULL},
};

static const struct cli_command_options cluster_command = {
    .options = cluster_options,
    .usage = "usage: gregor cluster info [options]\n"
             "\n"
             "Prints the cluster id, the active controller, every live broker with the number of\n"
             "partitions it leads, the metadata quorum (leader, epoch, each voter's log end and "
             "lag)\n"
             "and the topic and partition counts.\n"
             "\n",
    .epilog = "examples:\n"
              "  gregor cluster info\n"
              "  gregor cluster info -b 10.0.0.5:9092 --json\n",
    .help_column = 28,
};

static int cmp_broker(const void *a, const void *b)
{
    const struct rd_kafka_metadata_broker *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

/* The metadata quorum as DescribeQuorum reports it (leader -1 when it could not be asked). */
struct quorum_view {
    int32_t leader, epoch;
    int64_t high_watermark;
    int n;
    struct controller_voter_state voters[16];
};

/* Asks the first bootstrap broker (which forwards to the active controller). */
static void fetch_quorum(struct cli_common *c, struct quorum_view *q)
{
    q->leader = -1;
    q->n = 0;
    char host[256];
    snprintf(host, sizeof(host), "%s", c->brokers ? c->brokers : "127.0.0.1:9092");
    host[strcspn(host, ",")] = '\0';
    char *colon = strrchr(host, ':');
    int port = colon ? atoi(colon + 1) : 9092;
    if (colon)
        *colon = '\0';
    struct controller_client cc;
    controller_client_init(&cc, -1, NULL);
    snprintf(cc.client_id, sizeof(cc.client_id), "gregor-cli");
    struct kmsg_describe_quorum_request_partition_data part = {0};
    struct kmsg_describe_quorum_request_topic_data topic = {KSTR_LIT("__cluster_metadata"),
                                                            {1, &part}};
    struct kmsg_describe_quorum_request req = {{1, &topic}};
    struct kmsg_describe_quorum_response resp;
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    int rc = controller_client_call(&cc, host, port, KPROTO_API_DESCRIBE_QUORUM, 1, &req, &resp,
                                    &buf, &arena, c->timeout_ms > 0 ? c->timeout_ms : 5000);
    if (rc == 0 && resp.error_code == 0 && resp.topics.n == 1 &&
        resp.topics.v[0].partitions.n == 1) {
        const struct kmsg_describe_quorum_response_partition_data *pd =
            &resp.topics.v[0].partitions.v[0];
        q->leader = pd->leader_id;
        q->epoch = pd->leader_epoch;
        q->high_watermark = pd->high_watermark;
        for (int32_t i = 0; i < pd->current_voters.n && q->n < 16; i++)
            q->voters[q->n++] = (struct controller_voter_state){
                pd->current_voters.v[i].replica_id, pd->current_voters.v[i].log_end_offset, false};
    }
    free(buf);
    arena_free(&arena);
    controller_client_close(&cc);
}

static int leaders_of(const struct rd_kafka_metadata *md, int32_t id)
{
    int n = 0;
    for (int i = 0; i < md->topic_cnt; i++)
        for (int j = 0; j < md->topics[i].partition_cnt; j++)
            n += md->topics[i].partitions[j].leader == id;
    return n;
}

static bool is_broker(const struct rd_kafka_metadata *md, int32_t id)
{
    for (int i = 0; i < md->broker_cnt; i++)
        if (md->brokers[i].id == id)
            return true;
    return false;
}

static void print_json(const struct rd_kafka_metadata *md, const char *cluster_id,
                       int32_t controller, const struct quorum_view *q, int topics, int internal,
                       int partitions)
{
    fputs("{\"cluster_id\":", stdout);
    cli_json_string(stdout, cluster_id, cluster_id ? strlen(cluster_id) : 0);
    printf(",\"controller\":%d,\"brokers\":[", controller);
    for (int i = 0; i < md->broker_cnt; i++) {
        printf("%s{\"id\":%d,\"host\":", i ? "," : "", md->brokers[i].id);
        cli_json_string(stdout, md->brokers[i].host, strlen(md->brokers[i].host));
        printf(",\"port\":%d,\"leaders\":%d}", md->brokers[i].port,
               leaders_of(md, md->brokers[i].id));
    }
    printf("],\"quorum\":{\"leader\":%d,\"epoch\":%d,\"high_watermark\":%lld,\"voters\":[",
           q->leader, q->leader >= 0 ? q->epoch : -1,
           (long long)(q->leader >= 0 ? q->high_watermark : -1));
    for (int i = 0; i < q->n; i++)
        printf("%s{\"id\":%d,\"log_end_offset\":%lld,\"broker_alive\":%s}", i ? "," : "",
               q->voters[i].id, (long long)q->voters[i].log_end_offset,
               is_broker(md, q->voters[i].id) ? "true" : "false");
    printf("]},\"topics\":%d,\"internal_topics\":%d,\"partitions\":%d}\n", topics, internal,
           partitions);
}

static void print_info(const struct rd_kafka_metadata *md, const char *cluster_id,
                       int32_t controller, const struct quorum_view *q, int json)
{
    int topics = 0, internal = 0, partitions = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strncmp(md->topics[i].topic, "__", 2) == 0)
            internal++;
        else
            topics++;
        partitions += md->topics[i].partition_cnt;
    }
    if (json) {
        print_json(md, cluster_id, controller, q, topics, internal, partitions);
        return;
    }
    printf("Cluster id: %s\n", cluster_id ? cluster_id : "(none)");
    printf("Controller: %d\n", controller);
    printf("Brokers: %d\n", md->broker_cnt);
    for (int i = 0; i < md->broker_cnt; i++)
        printf("  %d  %s:%d  leaders %d%s\n", md->brokers[i].id, md->brokers[i].host,
               md->brokers[i].port, leaders_of(md, md->brokers[i].id),
               md->brokers[i].id == controller ? "  (controller)" : "");
    if (q->leader >= 0) {
        printf("Quorum: leader %d, epoch %d, high watermark %lld\n", q->leader, q->epoch,
               (long long)q->high_watermark);
        for (int i = 0; i < q->n; i++) {
            const struct controller_voter_state *v = &q->voters[i];
            printf("  voter %d  log end %lld  lag %lld%s\n", v->id, (long long)v->log_end_offset,
                   v->log_end_offset < 0 ? -1LL
                   : v->log_end_offset >= q->high_watermark
                       ? 0LL
                       : (long long)(q->high_watermark - v->log_end_offset),
                   is_broker(md, v->id) ? "" : "  (broker fenced or down)");
        }
    } else {
        printf("Quorum: unknown (no active controller answered DescribeQuorum)\n");
    }
    printf("Topics: %d (+%d internal)\n", topics, internal);
    printf("Partitions: %d\n", partitions);
}

int cli_cluster_main(int argc, char **argv)
{
    struct cluster_opts o;
    memset(&o, 0, sizeof(o));
    struct cli_common *c = &o.c;
    cli_common_init(c, "gregor cluster info");
    int rc = cli_options_want_action(&cluster_command, argc, argv);
    if (rc >= 0)
        return rc;
    if (strcmp(argv[1], "info") != 0)
        return cli_usage_error(c, "unknown action '%s' (info)", argv[1]);
    rc = cli_options_parse(&cluster_command, &o, c, argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    if (optind < argc - 1)
        return cli_usage_error(c, "unexpected argument '%s'", argv[1 + optind]);
    rd_kafka_t *rk = cli_client_new(c, RD_KAFKA_PRODUCER, NULL);
    if (!rk)
        return CLI_EXIT_USAGE;
    const struct rd_kafka_metadata *md;
    rc = cli_metadata(c, rk, 1, &md);
    if (rc == CLI_EXIT_OK) {
        /* both are answered from the metadata just fetched, so a short wait suffices */
        char *cluster_id = rd_kafka_clusterid(rk, 1000);
        struct quorum_view q;
        fetch_quorum(c, &q);
        /* The active controller is the quorum leader; Metadata names a broker that forwards. */
        int32_t controller = q.leader >= 0 ? q.leader : rd_kafka_controllerid(rk, 1000);
        struct rd_kafka_metadata sorted = *md;
        struct rd_kafka_metadata_broker *brokers =
            calloc((size_t)md->broker_cnt + 1, sizeof(*brokers));
        memcpy(brokers, md->brokers, (size_t)md->broker_cnt * sizeof(*brokers));
        qsort(brokers, (size_t)md->broker_cnt, sizeof(*brokers), cmp_broker);
        sorted.brokers = brokers;
        print_info(&sorted, cluster_id, controller, &q, o.json);
        free(brokers);
        if (cluster_id)
            rd_kafka_mem_free(rk, cluster_id);
        rd_kafka_metadata_destroy(md);
    }
    return cli_client_destroy(rk, rc);
}
