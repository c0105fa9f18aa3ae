/*
 * Three controllers in one process on loopback ports form a 3-voter quorum: a leader is
 * elected, commands submitted to it are applied on every node, a command sent to a follower
 * gets NOT_CONTROLLER, and after the leader stops the other two elect a new one.
 */
#include "cluster/controller.h"
#include "test.h"
#include "test_cluster_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* A currently free loopback port (closed again before raft binds it). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static struct controller *find_leader(struct controller **ctl, int n, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        for (int i = 0; i < n; i++)
            if (ctl[i] && controller_is_active(ctl[i]))
                return ctl[i];
        usleep(10000);
    }
    return NULL;
}

static bool wait_topic_everywhere(struct controller **ctl, int n, const char *name, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int have = 0, live = 0;
        for (int i = 0; i < n; i++) {
            if (ctl[i] == NULL)
                continue;
            live++;
            const struct metadata_image *img = metadata_image_acquire(ctl[i]);
            have += metadata_image_topic_by_name(img, name) != NULL;
            metadata_image_release(img);
        }
        if (have == live)
            return true;
        usleep(10000);
    }
    return false;
}

static int create(struct controller *ctl, const char *name)
{
    struct controller_new_topic t = {.name = name, .num_partitions = 3, .replication_factor = 3};
    struct cw_result r;
    cw_begin(&r);
    if (controller_create_topics(ctl, &t, 1, false, cw_done, &r) != 0)
        return -1;
    cw_wait(&r);
    return r.topics[0].error_code;
}

TEST(test_quorum_three_voters_elect_replicate_and_fail_over)
{
    char dirs[3][256], voters[256];
    int ports[3];
    for (int i = 0; i < 3; i++) {
        CHECK(cw_tempdir(dirs[i], sizeof(dirs[i])) == 0);
        ports[i] = free_port();
        CHECK(ports[i] > 0);
    }
    snprintf(voters, sizeof(voters), "1@127.0.0.1:%d,2@127.0.0.1:%d,3@127.0.0.1:%d", ports[0],
             ports[1], ports[2]);
    struct controller *ctl[3] = {0};
    for (int i = 0; i < 3; i++) {
        struct controller_config cfg = {.node_id = i + 1,
                                        .data_dir = dirs[i],
                                        .quorum_voters = voters,
                                        .election_timeout_ms = 300,
                                        .heartbeat_timeout_ms = 50};
        char err[256];
        CHECK(controller_start(&cfg, &ctl[i], err, sizeof(err)) == 0);
    }
    struct controller *leader = find_leader(ctl, 3, 15000);
    CHECK(leader != NULL);
    for (int id = 1; id <= 3; id++) {
        CHECK_EQ_INT(cw_register_broker(leader, id, 9090, NULL), 0);
    }
    CHECK_EQ_INT(create(leader, "replicated"), 0);
    CHECK(wait_topic_everywhere(ctl, 3, "replicated", 5000));

    /* a follower refuses and names the leader */
    int follower = -1, leader_idx = -1;
    for (int i = 0; i < 3; i++) {
        if (ctl[i] == leader)
            leader_idx = i;
        else
            follower = i;
    }
    CHECK(wait_topic_everywhere(ctl, 3, "replicated", 100));
    struct controller_new_topic t = {.name = "nope", .num_partitions = 1, .replication_factor = 1};
    struct cw_result r;
    cw_begin(&r);
    CHECK(controller_create_topics(ctl[follower], &t, 1, false, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.topics[0].error_code, KAFKA_ERR_NOT_CONTROLLER);
    CHECK_EQ_INT(controller_leader_id(ctl[follower]), leader_idx + 1);

    /* leader goes away; the remaining two elect a new one that has the data */
    controller_stop(leader);
    ctl[leader_idx] = NULL;
    struct controller *next = find_leader(ctl, 3, 15000);
    CHECK(next != NULL);
    CHECK_EQ_INT(create(next, "after-failover"), 0);
    CHECK_EQ_INT(create(next, "replicated"), KAFKA_ERR_TOPIC_ALREADY_EXISTS);
    CHECK(wait_topic_everywhere(ctl, 3, "after-failover", 5000));
    for (int i = 0; i < 3; i++)
        if (ctl[i])
            controller_stop(ctl[i]);
    for (int i = 0; i < 3; i++)
        cw_rmrf(dirs[i]);
}

TEST_MAIN
