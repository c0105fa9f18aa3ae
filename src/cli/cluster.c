/*
 * gregor cluster info: cluster id, controller, brokers, and topic/partition counts, from one
 * Metadata request (controller and cluster id come from the same cached response).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/internal.h"

static const char cluster_help[] =
    "usage: gregor cluster info [options]\n"
    "\n"
    "Prints the cluster id, the controller, every broker and the topic and partition counts.\n"
    "\n"
    "      --json                one JSON object instead of text\n"
    "\n" CLI_COMMON_HELP "\n"
    "examples:\n"
    "  gregor cluster info\n"
    "  gregor cluster info -b 10.0.0.5:9092 --json\n";

enum { OPT_JSON = CLI_OPT_FIRST_LOCAL };

static int cmp_broker(const void *a, const void *b)
{
    const struct rd_kafka_metadata_broker *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static void print_info(const struct rd_kafka_metadata *md, const char *cluster_id,
                       int32_t controller, int json)
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
        fputs("{\"cluster_id\":", stdout);
        cli_json_string(stdout, cluster_id, cluster_id ? strlen(cluster_id) : 0);
        printf(",\"controller\":%d,\"brokers\":[", controller);
        for (int i = 0; i < md->broker_cnt; i++) {
            printf("%s{\"id\":%d,\"host\":", i ? "," : "", md->brokers[i].id);
            cli_json_string(stdout, md->brokers[i].host, strlen(md->brokers[i].host));
            printf(",\"port\":%d}", md->brokers[i].port);
        }
        printf("],\"topics\":%d,\"internal_topics\":%d,\"partitions\":%d}\n", topics, internal,
               partitions);
        return;
    }
    printf("Cluster id: %s\n", cluster_id ? cluster_id : "(none)");
    printf("Controller: %d\n", controller);
    printf("Brokers: %d\n", md->broker_cnt);
    for (int i = 0; i < md->broker_cnt; i++)
        printf("  %d  %s:%d%s\n", md->brokers[i].id, md->brokers[i].host, md->brokers[i].port,
               md->brokers[i].id == controller ? "  (controller)" : "");
    printf("Topics: %d (+%d internal)\n", topics, internal);
    printf("Partitions: %d\n", partitions);
}

int cli_cluster_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        CLI_COMMON_LONGOPTS,
    };
    struct cli_common c;
    int opt, json = 0;
    cli_common_init(&c, "gregor cluster info");
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(cluster_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "info") != 0)
        return cli_usage_error(&c, "unknown action '%s' (info)", argv[1]);
    argc--, argv++;
    cli_getopt_reset();
    while ((opt = getopt_long(argc, argv, CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        int r = cli_common_option(&c, opt, optarg);
        if (r < 0)
            return CLI_EXIT_USAGE;
        if (r > 0)
            continue;
        if (opt == 'h') {
            fputs(cluster_help, stdout);
            return CLI_EXIT_OK;
        }
        if (opt != OPT_JSON)
            return cli_bad_option(&c, argv);
        json = 1;
    }
    if (optind < argc)
        return cli_usage_error(&c, "unexpected argument '%s'", argv[optind]);
    rd_kafka_t *rk = cli_client_new(&c, RD_KAFKA_PRODUCER, NULL);
    if (!rk)
        return CLI_EXIT_USAGE;
    const struct rd_kafka_metadata *md;
    int rc = cli_metadata(&c, rk, 1, &md);
    if (rc == CLI_EXIT_OK) {
        /* both are answered from the metadata just fetched, so a short wait suffices */
        char *cluster_id = rd_kafka_clusterid(rk, 1000);
        int32_t controller = rd_kafka_controllerid(rk, 1000);
        struct rd_kafka_metadata sorted = *md;
        struct rd_kafka_metadata_broker *brokers =
            calloc((size_t)md->broker_cnt + 1, sizeof(*brokers));
        memcpy(brokers, md->brokers, (size_t)md->broker_cnt * sizeof(*brokers));
        qsort(brokers, (size_t)md->broker_cnt, sizeof(*brokers), cmp_broker);
        sorted.brokers = brokers;
        print_info(&sorted, cluster_id, controller, json);
        free(brokers);
        if (cluster_id)
            rd_kafka_mem_free(rk, cluster_id);
        rd_kafka_metadata_destroy(md);
    }
    return cli_client_destroy(rk, rc);
}
