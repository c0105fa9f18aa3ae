/*
 * Broker lifecycle in a real single-voter controller: registration epochs and fencing,
 * session expiry fencing a silent broker and electing new leaders from the ISR, a partition
 * with no other ISR member going offline and coming back when its broker is unfenced,
 * controlled shutdown moving every leadership away first, stale epochs, duplicate
 * registrations, unclean election, and placement only on usable brokers.
 */
#include "cluster/controller.h"
#include "test.h"
#include "test_cluster_util.h"

#include <unistd.h>

#define SESSION_MS 400

static struct controller *start_full(const char *dir, bool unclean, unsigned session_ms,
                                     unsigned snapshot_threshold)
{
    struct controller_config cfg = {
        .node_id = 1,
        .data_dir = dir,
        .default_num_partitions = 1,
        .default_replication_factor = 1,
        .election_timeout_ms = 200,
        .heartbeat_timeout_ms = 20,
        .broker_session_timeout_ms = session_ms,
        .unclean_leader_election = unclean,
        .snapshot_threshold = snapshot_threshold,
        .snapshot_trailing = snapshot_threshold ? 2 : 0,
    };
    struct controller *ctl = NULL;
    char err[256];
    if (controller_start(&cfg, &ctl, err, sizeof(err)) != 0)
        return NULL;
    if (!cw_wait_active(ctl, 10000)) {
        controller_stop(ctl);
        return NULL;
    }
    return ctl;
}

static struct controller *start_with(const char *dir, bool unclean, unsigned session_ms)
{
    return start_full(dir, unclean, session_ms, 0);
}

static struct controller *start(const char *dir, bool unclean)
{
    return start_with(dir, unclean, SESSION_MS);
}

static int create(struct controller *ctl, const char *name, int32_t parts, int16_t rf)
{
    struct controller_new_topic t = {
        .name = name, .num_partitions = parts, .replication_factor = rf};
    struct cw_result r;
    cw_begin(&r);
    if (controller_create_topics(ctl, &t, 1, false, cw_done, &r) != 0)
        return -1;
    cw_wait(&r);
    return r.error_code ? r.error_code : r.topics[0].error_code;
}

/* Heartbeats brokers ids[0..n) (epochs in epochs[]) for ms milliseconds. */
static void keep_alive(struct controller *ctl, const int32_t *ids, const int64_t *epochs, int n,
                       int ms)
{
    for (int waited = 0; waited < ms; waited += 50) {
        struct cw_result r;
        for (int i = 0; i < n; i++)
            cw_heartbeat(ctl, ids[i], epochs[i], 0, false, &r);
        usleep(50000);
    }
}

static size_t led_by(const struct metadata_image *img, int32_t id)
{
    size_t n = 0;
    for (size_t i = 0; i < img->n_topics; i++)
        for (uint32_t p = 0; p < img->topics_by_name[i]->n_partitions; p++)
            n += img->topics_by_name[i]->partitions[p].leader == id;
    return n;
}

static bool in_isr(const struct metadata_partition *mp, int32_t id)
{
    for (uint32_t i = 0; i < mp->n_isr; i++)
        if (mp->isr[i] == id)
            return true;
    return false;
}

TEST(test_lifecycle_registration_starts_fenced_and_heartbeat_unfences)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start(dir, false);
    CHECK(ctl != NULL);
    struct controller_broker_registration reg = {1, "127.0.0.1", 9092, NULL, {1}, NULL, 0};
    struct cw_result r;
    cw_begin(&r);
    CHECK(controller_register_broker(ctl, &reg, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.error_code, 0);
    CHECK(r.is_fenced);
    int64_t epoch = r.broker_epoch;
    CHECK(epoch > 0);
    /* fenced: nothing can be placed on it */
    CHECK_EQ_INT(create(ctl, "early", 1, 1), KAFKA_ERR_INVALID_REPLICATION_FACTOR);
    /* not caught up yet: stays fenced */
    CHECK_EQ_INT(cw_heartbeat(ctl, 1, epoch, -1, false, &r), 0);
    CHECK(r.is_fenced);
    CHECK_EQ_INT(cw_heartbeat(ctl, 1, epoch, 0, false, &r), 0);
    CHECK(!r.is_fenced);
    CHECK_EQ_INT(create(ctl, "later", 1, 1), 0);
    /* a wrong epoch is stale */
    CHECK_EQ_INT(cw_heartbeat(ctl, 1, epoch + 100, 0, false, &r), KAFKA_ERR_STALE_BROKER_EPOCH);
    CHECK_EQ_INT(cw_heartbeat(ctl, 7, 1, 0, false, &r), KAFKA_ERR_STALE_BROKER_EPOCH);
    /* another incarnation while this one is alive and heard from is a duplicate */
    struct controller_broker_registration other = {1, "127.0.0.1", 9093, NULL, {9}, NULL, 0};
    cw_begin(&r);
    CHECK(controller_register_broker(ctl, &other, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.error_code, KAFKA_ERR_DUPLICATE_BROKER_REGISTRATION);
    /* once its session expired it may register, with a larger epoch */
    usleep((SESSION_MS + 300) * 1000);
    cw_begin(&r);
    CHECK(controller_register_broker(ctl, &other, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.error_code, 0);
    CHECK(r.broker_epoch > epoch);
    controller_stop(ctl);
    cw_rmrf(dir);
}

/* A broker-only node's registration records where its raft standby listens, once. */
TEST(test_lifecycle_registration_records_the_observer_endpoint)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start(dir, false);
    CHECK(ctl != NULL);
    struct controller_broker_registration reg = {4, "127.0.0.1", 9092, NULL, {4}, "127.0.0.1", 1};
    struct cw_result r;
    cw_begin(&r);
    CHECK(controller_register_broker(ctl, &reg, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.error_code, 0);
    const struct metadata_image *img = metadata_image_acquire(ctl);
    const struct metadata_endpoint *o = metadata_image_observer(img, 4);
    CHECK(o != NULL && o->port == 1 && strcmp(o->host, "127.0.0.1") == 0);
    CHECK(metadata_image_observer(img, 1) == NULL);
    uint64_t version = img->version;
    metadata_image_release(img);
    /* the same incarnation again: a new registration record, no second observer record */
    cw_begin(&r);
    CHECK(controller_register_broker(ctl, &reg, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.error_code, 0);
    img = metadata_image_acquire(ctl);
    CHECK_EQ_INT(img->n_observers, 1);
    CHECK(img->version > version);
    metadata_image_release(img);
    controller_stop(ctl);
    cw_rmrf(dir);
}

TEST(test_lifecycle_session_expiry_fences_and_elects_from_isr)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start(dir, false);
    CHECK(ctl != NULL);
    int32_t ids[3] = {1, 2, 3};
    int64_t epochs[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(cw_register_broker(ctl, ids[i], 9090, &epochs[i]), 0);
    CHECK_EQ_INT(create(ctl, "rf3", 6, 3), 0);
    CHECK_EQ_INT(create(ctl, "rf1", 3, 1), 0);
    const struct metadata_image *img = metadata_image_acquire(ctl);
    size_t led_before = led_by(img, 1);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, "rf1");
    int32_t rf1_on_1 = -1;
    for (uint32_t p = 0; t && p < t->n_partitions; p++)
        if (t->partitions[p].leader == 1)
            rf1_on_1 = (int32_t)p;
    int32_t epoch_before = rf1_on_1 >= 0 ? t->partitions[rf1_on_1].leader_epoch : -1;
    metadata_image_release(img);
    CHECK(led_before >= 2);
    CHECK(rf1_on_1 >= 0);
    /* broker 1 goes silent; 2 and 3 keep heartbeating past its session */
    keep_alive(ctl, ids + 1, epochs + 1, 2, SESSION_MS * 3);
    img = metadata_image_acquire(ctl);
    const struct metadata_broker *b1 = metadata_image_broker(img, 1);
    bool fenced = b1 && b1->state == METADATA_BROKER_FENCED;
    size_t led_after = led_by(img, 1);
    t = metadata_image_topic_by_name(img, "rf3");
    bool isr_ok = t != NULL;
    for (uint32_t p = 0; t && p < t->n_partitions; p++)
        isr_ok &= !in_isr(&t->partitions[p], 1) && t->partitions[p].n_isr == 2 &&
                  in_isr(&t->partitions[p], t->partitions[p].leader);
    t = metadata_image_topic_by_name(img, "rf1");
    const struct metadata_partition *off = t ? &t->partitions[rf1_on_1] : NULL;
    bool offline = off && off->leader == -1 && off->n_isr == 1 && off->isr[0] == 1 &&
                   off->leader_epoch == epoch_before + 1;
    bool usable2 = metadata_broker_usable(metadata_image_broker(img, 2));
    metadata_image_release(img);
    CHECK(fenced);
    CHECK(usable2);
    CHECK_EQ_INT(led_after, 0);
    CHECK(isr_ok);
    CHECK(offline);
    /* broker 1 comes back: re-registers, unfences, and its offline partition has a leader */
    int64_t e1;
    CHECK_EQ_INT(cw_register_broker(ctl, 1, 9090, &e1), 0);
    CHECK(e1 > epochs[0]);
    img = metadata_image_acquire(ctl);
    t = metadata_image_topic_by_name(img, "rf1");
    bool back = t && t->partitions[rf1_on_1].leader == 1;
    metadata_image_release(img);
    CHECK(back);
    controller_stop(ctl);
    cw_rmrf(dir);
}

TEST(test_lifecycle_controlled_shutdown_moves_leadership_first)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start(dir, false);
    CHECK(ctl != NULL);
    int64_t epochs[3];
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(cw_register_broker(ctl, i + 1, 9090, &epochs[i]), 0);
    CHECK_EQ_INT(create(ctl, "cs", 6, 3), 0);
    struct cw_result r;
    CHECK_EQ_INT(cw_heartbeat(ctl, 2, epochs[1], 0, true, &r), 0);
    CHECK(r.should_shut_down);
    CHECK(r.is_fenced);
    const struct metadata_image *img = metadata_image_acquire(ctl);
    size_t led2 = led_by(img, 2);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, "cs");
    bool none_in_isr = t != NULL;
    for (uint32_t p = 0; t && p < t->n_partitions; p++)
        none_in_isr &= !in_isr(&t->partitions[p], 2) && t->partitions[p].leader != -1;
    bool fenced = metadata_image_broker(img, 2)->state == METADATA_BROKER_FENCED;
    metadata_image_release(img);
    CHECK_EQ_INT(led2, 0);
    CHECK(none_in_isr);
    CHECK(fenced);
    /* new topics avoid the broker that shut down */
    CHECK_EQ_INT(create(ctl, "three", 1, 3), KAFKA_ERR_INVALID_REPLICATION_FACTOR);
    CHECK_EQ_INT(create(ctl, "two", 4, 2), 0);
    img = metadata_image_acquire(ctl);
    t = metadata_image_topic_by_name(img, "two");
    bool avoided = t != NULL;
    for (uint32_t p = 0; t && p < t->n_partitions; p++)
        for (uint32_t k = 0; k < t->partitions[p].n_replicas; k++)
            avoided &= t->partitions[p].replicas[k] != 2;
    metadata_image_release(img);
    CHECK(avoided);
    controller_stop(ctl);
    cw_rmrf(dir);
}

TEST(test_lifecycle_unclean_election_only_when_enabled)
{
    for (int unclean = 0; unclean <= 1; unclean++) {
        char dir[256];
        CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
        struct controller *ctl = start(dir, unclean);
        CHECK(ctl != NULL);
        int32_t ids[2] = {1, 2};
        int64_t epochs[2];
        CHECK_EQ_INT(cw_register_broker(ctl, 1, 9090, &epochs[0]), 0);
        CHECK_EQ_INT(cw_register_broker(ctl, 2, 9090, &epochs[1]), 0);
        CHECK_EQ_INT(create(ctl, "u", 2, 2), 0);
        /* 2 leaves (ISR shrinks to {1}), then 1 dies: only the out-of-sync 2 is left */
        struct cw_result r;
        CHECK_EQ_INT(cw_heartbeat(ctl, 2, epochs[1], 0, true, &r), 0);
        CHECK_EQ_INT(cw_register_broker(ctl, 2, 9090, &epochs[1]), 0);
        keep_alive(ctl, ids + 1, epochs + 1, 1, SESSION_MS * 3);
        const struct metadata_image *img = metadata_image_acquire(ctl);
        const struct metadata_topic *t = metadata_image_topic_by_name(img, "u");
        int32_t leader = t ? t->partitions[0].leader : -2;
        metadata_image_release(img);
        CHECK_EQ_INT(leader, unclean ? 2 : -1);
        controller_stop(ctl);
        cw_rmrf(dir);
    }
}

static int elect(struct controller *ctl, int8_t type, const char *topic, int32_t partition)
{
    struct controller_partition_ref ref = {topic, partition};
    struct cw_result r;
    cw_begin(&r);
    if (controller_elect_leaders(ctl, type, &ref, 1, false, cw_done, &r) != 0)
        return -1;
    cw_wait(&r);
    return r.error_code ? r.error_code : r.topics[0].error_code;
}

static int reassign(struct controller *ctl, const char *topic, int32_t partition,
                    const int32_t *replicas, uint32_t n)
{
    struct controller_reassignment it = {topic, partition, n, replicas};
    struct cw_result r;
    cw_begin(&r);
    if (controller_alter_reassignments(ctl, &it, 1, cw_done, &r) != 0)
        return -1;
    cw_wait(&r);
    return r.error_code ? r.error_code : r.topics[0].error_code;
}

/* Copies partition p of topic into *out (arrays not kept); false if absent. */
static bool partition_of(struct controller *ctl, const char *topic, uint32_t p,
                         struct metadata_partition *out, int32_t rep[8], int32_t add[8])
{
    const struct metadata_image *img = metadata_image_acquire(ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, topic);
    bool ok = t && p < t->n_partitions;
    if (ok) {
        *out = t->partitions[p];
        memcpy(rep, out->replicas, out->n_replicas * sizeof(int32_t));
        if (out->n_adding)
            memcpy(add, out->adding, out->n_adding * sizeof(int32_t));
    }
    metadata_image_release(img);
    return ok;
}

TEST(test_reassignment_reorder_completes_and_preferred_election_follows)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start_with(dir, false, 60000); /* no expiry during the test */
    CHECK(ctl != NULL);
    for (int i = 1; i <= 4; i++)
        CHECK_EQ_INT(cw_register_broker(ctl, i, 9090, NULL), 0);
    struct controller_new_topic t = {
        .name = "re",
        .num_partitions = -1,
        .replication_factor = -1,
        .n_assignments = 1,
        .assignments = &(struct controller_replica_list){0, 3, (const int32_t[]){1, 2, 3}}};
    struct cw_result r;
    cw_begin(&r);
    CHECK(controller_create_topics(ctl, &t, 1, false, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.topics[0].error_code, 0);
    CHECK_EQ_INT(elect(ctl, 0, "re", 0), KAFKA_ERR_ELECTION_NOT_NEEDED);
    CHECK_EQ_INT(elect(ctl, 0, "nope", 0), KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    /* a reorder of in-sync replicas completes at once; the leader stays */
    CHECK_EQ_INT(reassign(ctl, "re", 0, (const int32_t[]){2, 1, 3}, 3), 0);
    struct metadata_partition mp;
    int32_t rep[8], add[8];
    CHECK(partition_of(ctl, "re", 0, &mp, rep, add));
    CHECK_EQ_INT(rep[0], 2);
    CHECK_EQ_INT(mp.leader, 1);
    CHECK_EQ_INT(mp.n_adding + mp.n_removing, 0);
    /* now the preferred replica (2) is in sync and not leading: a preferred election moves it */
    CHECK_EQ_INT(elect(ctl, 0, "re", 0), 0);
    CHECK(partition_of(ctl, "re", 0, &mp, rep, add));
    CHECK_EQ_INT(mp.leader, 2);
    /* adding broker 4 cannot complete without replication: recorded, then cancelled */
    CHECK_EQ_INT(reassign(ctl, "re", 0, (const int32_t[]){4, 2, 1}, 3), 0);
    CHECK(partition_of(ctl, "re", 0, &mp, rep, add));
    CHECK_EQ_INT(mp.n_adding, 1);
    CHECK_EQ_INT(add[0], 4);
    CHECK_EQ_INT(mp.n_removing, 1);
    CHECK_EQ_INT(mp.n_replicas, 4); /* target 4,2,1 + removing 3 */
    CHECK_EQ_INT(reassign(ctl, "re", 0, (const int32_t[]){1, 1}, 2),
                 KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK_EQ_INT(reassign(ctl, "re", 0, (const int32_t[]){9}, 1),
                 KAFKA_ERR_INVALID_REPLICA_ASSIGNMENT);
    CHECK_EQ_INT(reassign(ctl, "re", 0, NULL, 0), 0);
    CHECK(partition_of(ctl, "re", 0, &mp, rep, add));
    CHECK_EQ_INT(mp.n_adding + mp.n_removing, 0);
    CHECK_EQ_INT(mp.n_replicas, 3);
    CHECK_EQ_INT(rep[0], 2);
    CHECK_EQ_INT(reassign(ctl, "re", 0, NULL, 0), KAFKA_ERR_NO_REASSIGNMENT_IN_PROGRESS);
    controller_stop(ctl);
    cw_rmrf(dir);
}

TEST(test_elect_leaders_unclean_on_request)
{
    char dir[256];
    CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
    struct controller *ctl = start(dir, false);
    CHECK(ctl != NULL);
    int32_t ids[2] = {1, 2};
    int64_t epochs[2];
    CHECK_EQ_INT(cw_register_broker(ctl, 1, 9090, &epochs[0]), 0);
    CHECK_EQ_INT(cw_register_broker(ctl, 2, 9090, &epochs[1]), 0);
    CHECK_EQ_INT(create(ctl, "uc", 1, 2), 0);
    struct cw_result r;
    CHECK_EQ_INT(cw_heartbeat(ctl, 2, epochs[1], 0, true, &r), 0);
    CHECK_EQ_INT(cw_register_broker(ctl, 2, 9090, &epochs[1]), 0);
    keep_alive(ctl, ids + 1, epochs + 1, 1, SESSION_MS * 3);
    struct metadata_partition mp;
    int32_t rep[8], add[8];
    CHECK(partition_of(ctl, "uc", 0, &mp, rep, add));
    CHECK_EQ_INT(mp.leader, -1);
    CHECK_EQ_INT(elect(ctl, 0, "uc", 0), KAFKA_ERR_PREFERRED_LEADER_NOT_AVAILABLE);
    CHECK_EQ_INT(elect(ctl, 1, "uc", 0), 0);
    CHECK(partition_of(ctl, "uc", 0, &mp, rep, add));
    CHECK_EQ_INT(mp.leader, 2);
    CHECK_EQ_INT(mp.n_isr, 1);
    CHECK_EQ_INT(elect(ctl, 1, "uc", 0), KAFKA_ERR_ELECTION_NOT_NEEDED);
    controller_stop(ctl);
    cw_rmrf(dir);
}

/* Broker states and an ongoing reassignment survive a restart from the log and a snapshot. */
TEST(test_lifecycle_state_survives_restart_and_snapshot)
{
    for (unsigned snap = 0; snap <= 2; snap += 2) {
        char dir[256];
        CHECK(cw_tempdir(dir, sizeof(dir)) == 0);
        struct controller *ctl = start_full(dir, false, 60000, snap);
        CHECK(ctl != NULL);
        int64_t epochs[3];
        for (int i = 0; i < 3; i++)
            CHECK_EQ_INT(cw_register_broker(ctl, i + 1, 9090, &epochs[i]), 0);
        CHECK_EQ_INT(create(ctl, "keep", 1, 2), 0);
        struct metadata_partition mp;
        int32_t rep[8], add[8];
        CHECK(partition_of(ctl, "keep", 0, &mp, rep, add));
        int32_t outsider = 6 - rep[0] - rep[1];
        CHECK_EQ_INT(reassign(ctl, "keep", 0, (const int32_t[]){outsider, rep[0]}, 2), 0);
        struct cw_result r;
        CHECK_EQ_INT(cw_heartbeat(ctl, 3, epochs[2], 0, true, &r), 0);
        for (int i = 0; i < 6; i++) /* a few more entries, so a snapshot is due */
            CHECK_EQ_INT(cw_heartbeat(ctl, 1, epochs[0], 0, i % 2 == 0, &r), 0);
        controller_stop(ctl);
        ctl = start_full(dir, false, 60000, snap);
        CHECK(ctl != NULL);
        const struct metadata_image *img = metadata_image_acquire(ctl);
        const struct metadata_broker *b3 = metadata_image_broker(img, 3);
        const struct metadata_broker *b2 = metadata_image_broker(img, 2);
        bool states = b3 && b3->state == METADATA_BROKER_FENCED && b3->epoch == epochs[2] && b2 &&
                      b2->state == METADATA_BROKER_UNFENCED && b2->epoch == epochs[1];
        metadata_image_release(img);
        CHECK(states);
        CHECK(partition_of(ctl, "keep", 0, &mp, rep, add));
        CHECK_EQ_INT(mp.n_adding, 1);
        CHECK_EQ_INT(add[0], outsider);
        controller_stop(ctl);
        cw_rmrf(dir);
    }
}

TEST_MAIN
