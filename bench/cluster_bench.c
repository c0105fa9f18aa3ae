/*
 * Controller benchmark: create N topics x P partitions through a single-voter controller
 * (each topic its own CreateTopics command, all submitted at once, as many admin clients
 * would), then report the time, the commit throughput and the size of a snapshot of the
 * resulting image. Not part of `make test`; run bench/cluster_bench.sh.
 *
 *   cluster_bench [topics=1000] [partitions=10] [dir=/tmp]
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../tests/unit/test.h"
#include "../tests/unit/test_cluster_util.h"
#include "base/logger.h"

struct test_case test_cases[TEST_MAX];
int test_count;

static atomic_int remaining;
static atomic_int failures;

static void on_done(void *arg, const struct controller_result *r)
{
    if (r->error_code || r->topics[0].error_code)
        atomic_fetch_add(&failures, 1);
    atomic_fetch_sub(&remaining, 1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int topics = argc > 1 ? atoi(argv[1]) : 1000;
    int parts = argc > 2 ? atoi(argv[2]) : 10;
    char dir[256];
    snprintf(dir, sizeof(dir), "%s/gregor-cluster-bench-XXXXXX", argc > 3 ? argv[3] : "/tmp");
    if (mkdtemp(dir) == NULL)
        return 1;
    logger_set_level(LOGGER_LEVEL_WARN);
    struct controller_config cfg = {
        .node_id = 1, .data_dir = dir, .election_timeout_ms = 200, .heartbeat_timeout_ms = 20};
    struct controller *ctl;
    char err[256];
    if (controller_start(&cfg, &ctl, err, sizeof(err)) != 0 || !cw_wait_active(ctl, 10000)) {
        fprintf(stderr, "start failed: %s\n", err);
        return 1;
    }
    struct cw_result r;
    cw_begin(&r);
    controller_register_broker(ctl, 1, "127.0.0.1", 9092, NULL, cw_done, &r);
    cw_wait(&r);

    atomic_store(&remaining, topics);
    double t0 = now_s();
    for (int i = 0; i < topics; i++) {
        char name[64];
        snprintf(name, sizeof(name), "bench-topic-%05d", i);
        struct controller_new_topic t = {
            .name = name, .num_partitions = parts, .replication_factor = 1};
        controller_create_topics(ctl, &t, 1, false, on_done, NULL);
    }
    while (atomic_load(&remaining) > 0)
        usleep(200);
    double elapsed = now_s() - t0;

    /* one-by-one latency: each command waits for the previous commit */
    const int serial = 100;
    double t1 = now_s();
    for (int i = 0; i < serial; i++) {
        char name[64];
        snprintf(name, sizeof(name), "serial-%05d", i);
        struct controller_new_topic t = {
            .name = name, .num_partitions = parts, .replication_factor = 1};
        cw_begin(&r);
        controller_create_topics(ctl, &t, 1, false, cw_done, &r);
        cw_wait(&r);
    }
    double serial_s = now_s() - t1;

    const struct metadata_image *img = metadata_image_acquire(ctl);
    struct metadata_buf snap = {0};
    double t2 = now_s();
    image_encode(img, &snap);
    double encode_s = now_s() - t2;
    int decode_err = 0;
    t2 = now_s();
    struct metadata_image *back = image_decode(snap.data, snap.len, &decode_err);
    double decode_s = now_s() - t2;
    printf("created %d topics x %d partitions in %.3f s (%.0f topics/s, %d failed)\n", topics,
           parts, elapsed, topics / elapsed, atomic_load(&failures));
    printf("sequential create (one in flight): %.2f ms per topic\n", serial_s * 1000 / serial);
    printf("image: %zu topics, snapshot %zu bytes (%.1f bytes/partition), encode %.1f ms, "
           "decode %.1f ms\n",
           img->n_topics, snap.len, (double)snap.len / ((topics + serial) * (double)parts),
           encode_s * 1000, decode_s * 1000);
    metadata_image_release(back);
    metadata_buf_free(&snap);
    metadata_image_release(img);
    double t3 = now_s();
    controller_stop(ctl);
    double stop_s = now_s() - t3;
    t3 = now_s();
    if (controller_start(&cfg, &ctl, err, sizeof(err)) != 0 || !cw_wait_active(ctl, 30000))
        return 1;
    img = metadata_image_acquire(ctl);
    printf("restart (replay of the raft log / snapshot): %.3f s, %zu topics; stop took %.3f s\n",
           now_s() - t3, img->n_topics, stop_s);
    metadata_image_release(img);
    controller_stop(ctl);
    cw_rmrf(dir);
    return 0;
}
