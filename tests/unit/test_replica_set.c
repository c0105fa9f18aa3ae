/*
 * The leader's replica set (broker/replica_set.h) on a real log: the high watermark is the
 * minimum log end over the maximal ISR and stays put below min.insync.replicas; acks=all
 * waiters fire when it passes them, fail with NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR
 * shrinks below the minimum and with NOT_LEADER_OR_FOLLOWER when leadership moves; lagging
 * followers are proposed out of the ISR and caught-up ones back in (Kafka's rules); the
 * rack-aware preferred read replica (KIP-392) is Kafka's RackAwareReplicaSelector's choice.
 */
#include <string.h>

#include "broker/partition.h"
#include "broker/replica_set.h"
#include "proto/gen/errors.h"
#include "storage/log.h"
#include "test.h"
#include "test_storage_util.h"

struct fired {
    int calls;
    int16_t error;
};

static void on_done(struct hw_waiter *w, int16_t error)
{
    struct fired *f = w->arg;
    f->calls++;
    f->error = error;
}

struct fixture {
    struct partition p;
    char *dir;
};

static void fixture_close(void *arg)
{
    struct fixture *fx = arg;
    replica_set_destroy(&fx->p.rs);
    waiter_list_destroy(&fx->p.waiters);
    log_close(fx->p.log);
    free(fx); /* tmpdir_make's own cleanup removes the directory */
}

/* Node 1 leads t-0 with replicas {1,2,3}, ISR `isr`, min.insync.replicas `min_isr`, 10 records. */
static struct fixture *fixture_open(const int32_t *isr, uint32_t n_isr, int min_isr)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    fx->dir = tmpdir_make();
    struct log_config cfg = log_config_defaults();
    if (log_open(fx->dir, "t", 0, &cfg, NULL, &fx->p.log) != 0)
        return NULL;
    waiter_list_init(&fx->p.waiters);
    replica_set_init(&fx->p.rs, 1);
    test_defer(fixture_close, fx);
    int32_t replicas[] = {1, 2, 3};
    struct metadata_partition mp = {.partition = 0,
                                    .leader = 1,
                                    .leader_epoch = 0,
                                    .partition_epoch = 0,
                                    .n_replicas = 3,
                                    .n_isr = n_isr,
                                    .replicas = replicas,
                                    .isr = (int32_t *)isr};
    replica_set_on_image(&fx->p, &mp, min_isr, 1000);
    for (int i = 0; i < 10; i++)
        test_append(fx->p.log, 1, 10, i);
    replica_set_on_append(&fx->p);
    return fx;
}

TEST(test_hw_is_min_over_isr)
{
    int32_t isr[] = {1, 2, 3};
    struct fixture *fx = fixture_open(isr, 3, 2);
    CHECK(fx != NULL);
    struct partition *p = &fx->p;
    CHECK_EQ_INT(log_end_offset(p->log), 10);
    CHECK_EQ_INT(log_high_watermark(p->log), 0); /* no follower has fetched yet */
    CHECK_EQ_INT(replica_set_on_follower_fetch(p, 2, 10, 0, -1, 1100), 0);
    CHECK_EQ_INT(log_high_watermark(p->log), 0); /* follower 3 still unknown */
    CHECK_EQ_INT(replica_set_on_follower_fetch(p, 3, 4, 0, -1, 1100), 0);
    CHECK_EQ_INT(log_high_watermark(p->log), 4);
    struct fired f = {0, -1};
    struct hw_waiter w = {.offset = 10, .done = on_done, .arg = &f};
    CHECK_EQ_INT(replica_set_wait_hw(p, &w), 0);
    CHECK_EQ_INT(f.calls, 0);
    CHECK_EQ_INT(replica_set_on_follower_fetch(p, 3, 10, 0, -1, 1200), 0);
    CHECK_EQ_INT(log_high_watermark(p->log), 10);
    CHECK_EQ_INT(f.calls, 1);
    CHECK_EQ_INT(f.error, 0);
    struct hw_waiter w2 = {.offset = 5, .done = on_done, .arg = &f};
    CHECK_EQ_INT(replica_set_wait_hw(p, &w2), 1);                           /* already committed */
    CHECK_EQ_INT(replica_set_on_follower_fetch(p, 9, 10, 0, -1, 1200), -1); /* not a replica */
}

/* A Gregor follower reports its synced log end next to its fetch offset: the high watermark
 * counts only what it synced, while being caught up counts the fetch offset. A durable offset
 * above the fetch offset (stale, after a truncation) counts as the fetch offset. */
TEST(test_hw_counts_only_what_followers_synced)
{
    int32_t isr[] = {1, 2};
    struct fixture *fx = fixture_open(isr, 2, 2);
    CHECK(fx != NULL);
    struct partition *p = &fx->p;
    CHECK_EQ_INT(replica_set_on_follower_fetch(p, 2, 10, 0, 6, 1100), 0);
    CHECK_EQ_INT(log_high_watermark(p->log), 6);
    CHECK_EQ_INT(replica_set_on_follower_fetch(p, 3, 10, 0, 0, 1100), 1); /* caught up: joins */
    CHECK_EQ_INT(log_high_watermark(p->log), 6);
    CHECK_EQ_INT(replica_set_on_follower_fetch(p, 2, 8, 0, 12, 1200), 0);
    CHECK_EQ_INT(log_high_watermark(p->log), 8);
    CHECK_EQ_INT(replica_set_on_follower_fetch(p, 2, 10, 0, 10, 1300), 0);
    CHECK_EQ_INT(log_high_watermark(p->log), 10);
}

TEST(test_lagging_follower_leaves_and_rejoins)
{
    int32_t isr[] = {1, 2, 3};
    struct fixture *fx = fixture_open(isr, 3, 2);
    CHECK(fx != NULL);
    struct partition *p = &fx->p;
    replica_set_on_follower_fetch(p, 2, 10, 0, -1, 1500);
    replica_set_on_follower_fetch(p, 3, 3, 0, -1, 1500);
    int32_t next[REPLICA_MAX];
    uint32_t n = 0;
    int32_t le = -1, pe = -1;
    /* Within the lag time nothing changes. */
    CHECK(!replica_set_next_isr_change(p, 1900, 1000, next, &n, &le, &pe));
    /* Follower 3 has not caught up since the reset at 1000: out after 1000 ms of lag;
     * follower 2 keeps fetching at the log end. */
    replica_set_on_follower_fetch(p, 2, 10, 0, -1, 2500);
    CHECK(replica_set_next_isr_change(p, 2600, 1000, next, &n, &le, &pe));
    CHECK_EQ_INT(n, 2);
    CHECK(next[0] == 1 && next[1] == 2);
    CHECK_EQ_INT(le, 0);
    CHECK_EQ_INT(pe, 0);
    /* One change in flight at a time. */
    CHECK(!replica_set_next_isr_change(p, 2600, 1000, next, &n, &le, &pe));
    /* While in flight, the maximal ISR still holds 3: the HW waits for it. */
    CHECK_EQ_INT(log_high_watermark(p->log), 3);
    replica_set_on_isr_result(p, 0, next, n, 0, 1);
    CHECK_EQ_INT(log_high_watermark(p->log), 10); /* min over {1, 2} */
    CHECK_EQ_INT(atomic_load(&p->isr_size), 2);
    /* 3 catches up: it qualifies again. */
    CHECK_EQ_INT(replica_set_on_follower_fetch(p, 3, 10, 0, -1, 2700), 1);
    CHECK(replica_set_next_isr_change(p, 2700, 1000, next, &n, &le, &pe));
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(pe, 1);
    /* A stale answer (older partition epoch) changes nothing but clears the flight. */
    replica_set_on_isr_result(p, KAFKA_ERR_INVALID_UPDATE_VERSION, NULL, 0, -1, -1);
    CHECK_EQ_INT(atomic_load(&p->isr_size), 2);
}

TEST(test_waiters_fail_below_min_isr_and_on_leadership_loss)
{
    int32_t isr[] = {1, 2};
    struct fixture *fx = fixture_open(isr, 2, 2);
    CHECK(fx != NULL);
    struct partition *p = &fx->p;
    struct fired f1 = {0, -1}, f2 = {0, -1};
    struct hw_waiter w1 = {.offset = 10, .done = on_done, .arg = &f1};
    CHECK_EQ_INT(replica_set_wait_hw(p, &w1), 0);
    int32_t only_me[] = {1};
    replica_set_on_isr_result(p, 0, only_me, 1, 0, 1);
    CHECK_EQ_INT(f1.calls, 1);
    CHECK_EQ_INT(f1.error, KAFKA_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    /* Below min.insync.replicas the HW does not move, even with every ISR member there. */
    replica_set_on_append(p);
    CHECK_EQ_INT(log_high_watermark(p->log), 0);
    struct hw_waiter w2 = {.offset = 10, .done = on_done, .arg = &f2};
    CHECK_EQ_INT(replica_set_wait_hw(p, &w2), -KAFKA_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    /* Back to two: registered; then node 2 takes over and the waiter fails. */
    int32_t two[] = {1, 2};
    replica_set_on_isr_result(p, 0, two, 2, 0, 2);
    CHECK_EQ_INT(replica_set_wait_hw(p, &w2), 0);
    int32_t replicas[] = {1, 2, 3};
    struct metadata_partition mp = {.partition = 0,
                                    .leader = 2,
                                    .leader_epoch = 1,
                                    .partition_epoch = 3,
                                    .n_replicas = 3,
                                    .n_isr = 2,
                                    .replicas = replicas,
                                    .isr = two};
    replica_set_on_image(p, &mp, 2, 3000);
    CHECK_EQ_INT(f2.calls, 1);
    CHECK_EQ_INT(f2.error, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    CHECK_EQ_INT(replica_set_wait_hw(p, &w2), -KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
}

TEST(test_single_replica_hw_is_log_end)
{
    int32_t isr[] = {1};
    struct fixture *fx = fixture_open(isr, 1, 1);
    CHECK(fx != NULL);
    /* fixture_open's replica set has three replicas; make it a one-replica partition. */
    int32_t one[] = {1};
    struct metadata_partition mp = {.partition = 0,
                                    .leader = 1,
                                    .leader_epoch = 0,
                                    .partition_epoch = 1,
                                    .n_replicas = 1,
                                    .n_isr = 1,
                                    .replicas = one,
                                    .isr = one};
    replica_set_on_image(&fx->p, &mp, 1, 2000);
    CHECK_EQ_INT(log_high_watermark(fx->p.log), 10);
    test_append(fx->p.log, 1, 10, 11);
    replica_set_on_append(&fx->p);
    CHECK_EQ_INT(log_high_watermark(fx->p.log), 11);
}

/* A three-broker image: node 1 in rack-a, nodes 2 and 3 in racks[1], racks[2]; fenced[i]. */
static void image_with_racks(struct metadata_image *img, struct metadata_broker *brokers,
                             char **racks, const bool *fenced)
{
    for (int i = 0; i < 3; i++)
        brokers[i] = (struct metadata_broker){.id = i + 1,
                                              .host = "127.0.0.1",
                                              .rack = racks[i],
                                              .state = fenced[i] ? METADATA_BROKER_FENCED
                                                                 : METADATA_BROKER_UNFENCED};
    *img = (struct metadata_image){.n_brokers = 3, .brokers = brokers};
}

static int32_t preferred(struct partition *p, const struct metadata_image *img, const char *rack,
                         int64_t offset)
{
    return replica_set_preferred_read_replica(p, img, rack, strlen(rack), offset);
}

TEST(test_preferred_read_replica_is_the_in_sync_follower_in_the_clients_rack)
{
    int32_t isr[] = {1, 2, 3};
    struct fixture *fx = fixture_open(isr, 3, 1);
    CHECK(fx != NULL);
    struct partition *p = &fx->p;
    struct metadata_image img;
    struct metadata_broker brokers[3];
    char *racks[] = {"rack-a", "rack-b", "rack-c"};
    bool fenced[] = {false, false, false};
    image_with_racks(&img, brokers, racks, fenced);
    replica_set_on_follower_fetch(p, 2, 10, 0, -1, 1100);
    replica_set_on_follower_fetch(p, 3, 10, 0, -1, 1100);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 5), 2);
    CHECK_EQ_INT(preferred(p, &img, "rack-c", 10), 3);
    CHECK_EQ_INT(preferred(p, &img, "rack-a", 5), -1); /* the leader's rack: the leader */
    CHECK_EQ_INT(preferred(p, &img, "rack-z", 5), -1); /* no replica there: the leader */
    CHECK_EQ_INT(preferred(p, &img, "rack", 5), -1);   /* a prefix is another rack */
    CHECK_EQ_INT(preferred(p, &img, "", 5), -1);       /* no client rack */
    /* The follower must hold the fetch offset: not past its log end, not below its start. */
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 11), -1);
    replica_set_on_follower_fetch(p, 2, 10, 6, -1, 1200);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 5), -1);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 6), 2);
    /* A fenced broker is not live: not chosen. */
    fenced[1] = true;
    image_with_racks(&img, brokers, racks, fenced);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 8), -1);
    fenced[1] = false;
    image_with_racks(&img, brokers, racks, fenced);
    /* Out of the (committed) ISR: not chosen, however caught up. */
    int32_t two[] = {1, 3};
    replica_set_on_isr_result(p, 0, two, 2, 0, 1);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 8), -1);
    CHECK_EQ_INT(preferred(p, &img, "rack-c", 8), 3);
}

TEST(test_preferred_read_replica_prefers_the_most_caught_up_and_only_on_the_leader)
{
    int32_t isr[] = {1, 2, 3};
    struct fixture *fx = fixture_open(isr, 3, 1);
    CHECK(fx != NULL);
    struct partition *p = &fx->p;
    struct metadata_image img;
    struct metadata_broker brokers[3];
    char *racks[] = {"rack-a", "rack-b", "rack-b"};
    bool fenced[] = {false, false, false};
    image_with_racks(&img, brokers, racks, fenced);
    replica_set_on_follower_fetch(p, 2, 10, 0, -1, 1100);
    replica_set_on_follower_fetch(p, 3, 8, 0, -1, 1100);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 5), 2); /* larger log end */
    replica_set_on_follower_fetch(p, 3, 10, 0, -1, 1300);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 5), 3); /* same end, caught up more recently */
    replica_set_on_follower_fetch(p, 2, 10, 0, -1, 1300);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 5), 3); /* a tie: the highest id */
    /* The leader in the client's rack is chosen over any follower there. */
    char *racks2[] = {"rack-b", "rack-b", "rack-b"};
    image_with_racks(&img, brokers, racks2, fenced);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 5), -1);
    /* A node that does not lead redirects nobody. */
    image_with_racks(&img, brokers, racks, fenced);
    int32_t replicas[] = {1, 2, 3};
    struct metadata_partition mp = {.partition = 0,
                                    .leader = 2,
                                    .leader_epoch = 1,
                                    .partition_epoch = 3,
                                    .n_replicas = 3,
                                    .n_isr = 3,
                                    .replicas = replicas,
                                    .isr = isr};
    replica_set_on_image(p, &mp, 1, 3000);
    CHECK_EQ_INT(preferred(p, &img, "rack-b", 5), -1);
}

TEST_MAIN
