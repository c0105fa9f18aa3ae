/*
 * AlterPartition in a real single-voter controller with three registered, unfenced brokers:
 * a leader shrinking and expanding its ISR, Kafka's refusals (stale broker epoch, stale or
 * newer leader and partition epochs, a requester that is not the leader, an ISR without the
 * leader or with non-replicas, ineligible replicas), an unchanged ISR writing nothing, and an
 * ISR expansion completing an ongoing reassignment.
 */
#include "cluster/controller.h"
#include "test.h"
#include "test_cluster_util.h"

struct fixture {
    char dir[256];
    struct controller *ctl;
    int64_t epochs[4]; /* by broker id, 1..3 */
};

/* Stops the controller and frees the fixture (test_defer, after the case). */
static void fixture_free(void *arg)
{
    struct fixture *f = arg;
    if (f->ctl)
        controller_stop(f->ctl);
    free(f);
}

/* Starts the controller and registers brokers 1-3; NULL on failure. Freed after the case. */
static struct fixture *fixture_start(void)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    if (cw_tempdir(f->dir, sizeof(f->dir)) != 0) {
        free(f);
        return NULL;
    }
    test_defer(fixture_free, f); /* runs before the directory is removed */
    struct controller_config cfg = {
        .node_id = 1,
        .data_dir = f->dir,
        .default_num_partitions = 1,
        .default_replication_factor = 1,
        .election_timeout_ms = 200,
        .heartbeat_timeout_ms = 20,
        .broker_session_timeout_ms = 600000, /* no session expires during a test */
    };
    char err[256];
    if (controller_start(&cfg, &f->ctl, err, sizeof(err)) != 0) {
        f->ctl = NULL;
        return NULL;
    }
    if (!cw_wait_active(f->ctl, 10000))
        return NULL;
    for (int32_t id = 1; id <= 3; id++)
        if (cw_register_broker(f->ctl, id, 9090, &f->epochs[id]) != 0)
            return NULL;
    return f;
}

/* Creates `name` with one partition on `replicas` (the first is the leader); error code. */
static int create_on(struct controller *ctl, const char *name, const int32_t *replicas, uint32_t n)
{
    struct controller_replica_list a = {0, n, replicas};
    struct controller_new_topic t = {.name = name,
                                     .num_partitions = -1,
                                     .replication_factor = -1,
                                     .n_assignments = 1,
                                     .assignments = &a};
    struct cw_result r;
    cw_begin(&r);
    if (controller_create_topics(ctl, &t, 1, false, cw_done, &r) != 0)
        return -1;
    cw_wait(&r);
    return r.error_code ? r.error_code : r.topics[0].error_code;
}

/* A copy of partition 0 of `name` as the image has it now. */
struct snap {
    uint8_t id[16];
    int32_t leader, leader_epoch, partition_epoch;
    uint32_t n_isr, n_replicas, n_adding, n_removing;
    int32_t isr[CW_MAX_ISR], replicas[CW_MAX_ISR];
    uint64_t version;
};

static bool snapshot(struct controller *ctl, const char *name, struct snap *s)
{
    const struct metadata_image *img = metadata_image_acquire(ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, name);
    bool ok = t != NULL && t->n_partitions > 0;
    if (ok) {
        const struct metadata_partition *p = &t->partitions[0];
        memcpy(s->id, t->id, 16);
        s->leader = p->leader;
        s->leader_epoch = p->leader_epoch;
        s->partition_epoch = p->partition_epoch;
        s->n_isr = p->n_isr < CW_MAX_ISR ? p->n_isr : CW_MAX_ISR;
        memcpy(s->isr, p->isr, s->n_isr * sizeof(int32_t));
        s->n_replicas = p->n_replicas < CW_MAX_ISR ? p->n_replicas : CW_MAX_ISR;
        memcpy(s->replicas, p->replicas, s->n_replicas * sizeof(int32_t));
        s->n_adding = p->n_adding;
        s->n_removing = p->n_removing;
        s->version = img->version;
    }
    metadata_image_release(img);
    return ok;
}

static bool same_list(const int32_t *a, uint32_t na, const int32_t *b, uint32_t nb)
{
    return na == nb && memcmp(a, b, na * sizeof(int32_t)) == 0;
}

/* AlterPartition for partition 0 of the snapshot's topic, v2 (topic id), as `broker`. */
static struct controller_isr_change change_of(const struct snap *s, const int32_t *isr, uint32_t n)
{
    struct controller_isr_change c = {.partition = 0,
                                      .leader_epoch = s->leader_epoch,
                                      .partition_epoch = s->partition_epoch,
                                      .n_new_isr = n,
                                      .new_isr = isr};
    memcpy(c.topic_id, s->id, 16);
    return c;
}

/* Sends one change; returns the request-level error, else the partition's (-1 on no result). */
static int alter_v(struct fixture *f, int32_t broker, int64_t epoch, int16_t version,
                   const struct controller_isr_change *c, struct cw_result *r)
{
    struct controller_alter_partition req = {broker, epoch, version, 1, c};
    cw_begin(r);
    if (controller_alter_partition(f->ctl, &req, cw_done, r) != 0)
        return -1;
    cw_wait(r);
    if (r->error_code)
        return r->error_code;
    return r->n_partitions == 1 ? r->partitions[0].error_code : -1;
}

static int alter(struct fixture *f, int32_t broker, const struct controller_isr_change *c,
                 struct cw_result *r)
{
    return alter_v(f, broker, f->epochs[broker], 2, c, r);
}

static const int32_t R123[3] = {1, 2, 3};
static const int32_t R12[2] = {1, 2};

TEST(test_isr_shrink_writes_isr_and_bumps_partition_epoch_only)
{
    struct fixture *f = fixture_start();
    CHECK(f != NULL);
    CHECK_EQ_INT(create_on(f->ctl, "t", R123, 3), 0);
    struct snap before, after;
    CHECK(snapshot(f->ctl, "t", &before));
    CHECK_EQ_INT(before.leader, 1);
    CHECK(same_list(before.isr, before.n_isr, R123, 3));
    struct controller_isr_change c = change_of(&before, R12, 2);
    struct cw_result r;
    CHECK_EQ_INT(alter(f, 1, &c, &r), 0);
    const struct cw_partition *p = &r.partitions[0];
    CHECK_EQ_INT(p->partition, 0);
    CHECK(memcmp(p->topic_id, before.id, 16) == 0);
    CHECK_EQ_INT(p->leader_id, 1);
    CHECK_EQ_INT(p->leader_epoch, before.leader_epoch);
    CHECK_EQ_INT(p->partition_epoch, before.partition_epoch + 1);
    CHECK_EQ_INT(p->leader_recovery_state, 0);
    CHECK(same_list(p->isr, p->n_isr, R12, 2));
    /* committed: the image (and so every broker's metadata) has the new ISR */
    CHECK(snapshot(f->ctl, "t", &after));
    CHECK(same_list(after.isr, after.n_isr, R12, 2));
    CHECK(same_list(after.replicas, after.n_replicas, R123, 3));
    CHECK_EQ_INT(after.leader, 1);
    CHECK_EQ_INT(after.leader_epoch, before.leader_epoch);
    CHECK_EQ_INT(after.partition_epoch, before.partition_epoch + 1);
    CHECK(after.version > before.version);
    CHECK(r.version >= after.version);
}

TEST(test_isr_stale_and_newer_epochs_are_refused_with_kafkas_codes)
{
    struct fixture *f = fixture_start();
    CHECK(f != NULL);
    CHECK_EQ_INT(create_on(f->ctl, "t", R123, 3), 0);
    struct snap s;
    CHECK(snapshot(f->ctl, "t", &s));
    struct cw_result r;
    struct controller_isr_change c = change_of(&s, R12, 2);
    /* the partition epoch moves on; a leader still at the old one is refused */
    CHECK_EQ_INT(alter(f, 1, &c, &r), 0);
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_INVALID_UPDATE_VERSION);
    CHECK(snapshot(f->ctl, "t", &s));
    c = change_of(&s, R123, 3);
    c.leader_epoch = s.leader_epoch - 1;
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_FENCED_LEADER_EPOCH);
    /* epochs newer than the controller's: it is probably no longer the active one */
    c.leader_epoch = s.leader_epoch + 1;
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_NOT_CONTROLLER);
    c.leader_epoch = s.leader_epoch;
    c.partition_epoch = s.partition_epoch + 1;
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_NOT_CONTROLLER);
    /* nothing of that was written */
    struct snap after;
    CHECK(snapshot(f->ctl, "t", &after));
    CHECK_EQ_INT(after.partition_epoch, s.partition_epoch);
    CHECK(same_list(after.isr, after.n_isr, R12, 2));
}

TEST(test_isr_without_leader_with_non_replica_or_from_follower_is_invalid_request)
{
    struct fixture *f = fixture_start();
    CHECK(f != NULL);
    CHECK_EQ_INT(create_on(f->ctl, "t", R123, 3), 0);
    struct snap s;
    CHECK(snapshot(f->ctl, "t", &s));
    struct cw_result r;
    const int32_t no_leader[2] = {2, 3}, dup[3] = {1, 2, 2}, stranger[2] = {1, 4};
    struct controller_isr_change c = change_of(&s, no_leader, 2);
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_INVALID_REQUEST);
    c = change_of(&s, dup, 3);
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_INVALID_REQUEST);
    c = change_of(&s, stranger, 2);
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_INVALID_REQUEST);
    c = change_of(&s, NULL, 0);
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_INVALID_REQUEST);
    /* broker 2 is a replica but not the leader */
    c = change_of(&s, R12, 2);
    CHECK_EQ_INT(alter(f, 2, &c, &r), KAFKA_ERR_INVALID_REQUEST);
    /* RECOVERING cannot follow RECOVERED */
    const int32_t alone[1] = {1};
    c = change_of(&s, alone, 1);
    c.leader_recovery_state = 1;
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_INVALID_REQUEST);
    struct snap after;
    CHECK(snapshot(f->ctl, "t", &after));
    CHECK_EQ_INT(after.partition_epoch, s.partition_epoch);
    CHECK(same_list(after.isr, after.n_isr, R123, 3));
}

TEST(test_isr_expand_with_fenced_replica_is_ineligible_until_unfenced)
{
    struct fixture *f = fixture_start();
    CHECK(f != NULL);
    CHECK_EQ_INT(create_on(f->ctl, "t", R123, 3), 0);
    struct snap s;
    CHECK(snapshot(f->ctl, "t", &s));
    struct cw_result r;
    struct controller_isr_change c = change_of(&s, R12, 2);
    CHECK_EQ_INT(alter(f, 1, &c, &r), 0);
    /* broker 3 asks to be fenced */
    cw_begin(&r);
    CHECK(controller_broker_heartbeat(f->ctl, 3, f->epochs[3], 0, true, false, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.error_code, 0);
    CHECK(r.is_fenced);
    CHECK(snapshot(f->ctl, "t", &s));
    c = change_of(&s, R123, 3);
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_INELIGIBLE_REPLICA);
    /* before v2 (topics by name) Kafka answers OPERATION_NOT_ATTEMPTED */
    c.topic = "t";
    CHECK_EQ_INT(alter_v(f, 1, f->epochs[1], 1, &c, &r), KAFKA_ERR_OPERATION_NOT_ATTEMPTED);
    struct snap mid;
    CHECK(snapshot(f->ctl, "t", &mid));
    CHECK_EQ_INT(mid.partition_epoch, s.partition_epoch);
    CHECK(same_list(mid.isr, mid.n_isr, R12, 2));
    /* unfenced again, it may rejoin */
    CHECK_EQ_INT(cw_heartbeat(f->ctl, 3, f->epochs[3], 0, false, &r), 0);
    CHECK(!r.is_fenced);
    CHECK(snapshot(f->ctl, "t", &s));
    c = change_of(&s, R123, 3);
    CHECK_EQ_INT(alter(f, 1, &c, &r), 0);
    CHECK_EQ_INT(r.partitions[0].partition_epoch, s.partition_epoch + 1);
    CHECK(same_list(r.partitions[0].isr, r.partitions[0].n_isr, R123, 3));
    struct snap after;
    CHECK(snapshot(f->ctl, "t", &after));
    CHECK(same_list(after.isr, after.n_isr, R123, 3));
    CHECK_EQ_INT(after.partition_epoch, s.partition_epoch + 1);
}

TEST(test_isr_v3_member_with_another_broker_epoch_is_ineligible)
{
    struct fixture *f = fixture_start();
    CHECK(f != NULL);
    CHECK_EQ_INT(create_on(f->ctl, "t", R123, 3), 0);
    struct snap s;
    CHECK(snapshot(f->ctl, "t", &s));
    struct cw_result r;
    struct controller_isr_change c = change_of(&s, R12, 2);
    CHECK_EQ_INT(alter(f, 1, &c, &r), 0);
    CHECK(snapshot(f->ctl, "t", &s));
    int64_t epochs[3] = {f->epochs[1], -1, f->epochs[3] + 1};
    c = change_of(&s, R123, 3);
    c.new_isr_epochs = epochs;
    CHECK_EQ_INT(alter_v(f, 1, f->epochs[1], 3, &c, &r), KAFKA_ERR_INELIGIBLE_REPLICA);
    epochs[2] = f->epochs[3];
    CHECK_EQ_INT(alter_v(f, 1, f->epochs[1], 3, &c, &r), 0);
    CHECK(same_list(r.partitions[0].isr, r.partitions[0].n_isr, R123, 3));
}

TEST(test_isr_stale_broker_epoch_fails_the_request)
{
    struct fixture *f = fixture_start();
    CHECK(f != NULL);
    CHECK_EQ_INT(create_on(f->ctl, "t", R123, 3), 0);
    struct snap s;
    CHECK(snapshot(f->ctl, "t", &s));
    struct cw_result r;
    struct controller_isr_change c = change_of(&s, R12, 2);
    CHECK_EQ_INT(alter_v(f, 1, f->epochs[1] - 1, 2, &c, &r), KAFKA_ERR_STALE_BROKER_EPOCH);
    CHECK_EQ_INT(r.error_code, KAFKA_ERR_STALE_BROKER_EPOCH);
    CHECK_EQ_INT(alter_v(f, 9, 1, 2, &c, &r), KAFKA_ERR_STALE_BROKER_EPOCH);
    struct snap after;
    CHECK(snapshot(f->ctl, "t", &after));
    CHECK_EQ_INT(after.partition_epoch, s.partition_epoch);
    CHECK(same_list(after.isr, after.n_isr, R123, 3));
}

TEST(test_isr_unchanged_isr_answers_current_state_and_writes_nothing)
{
    struct fixture *f = fixture_start();
    CHECK(f != NULL);
    CHECK_EQ_INT(create_on(f->ctl, "t", R123, 3), 0);
    struct snap s;
    CHECK(snapshot(f->ctl, "t", &s));
    struct cw_result r;
    struct controller_isr_change c = change_of(&s, R123, 3);
    CHECK_EQ_INT(alter(f, 1, &c, &r), 0);
    CHECK_EQ_INT(r.partitions[0].partition_epoch, s.partition_epoch);
    CHECK_EQ_INT(r.partitions[0].leader_id, 1);
    CHECK(same_list(r.partitions[0].isr, r.partitions[0].n_isr, R123, 3));
    struct snap after;
    CHECK(snapshot(f->ctl, "t", &after));
    CHECK_EQ_INT(after.version, s.version);
    CHECK_EQ_INT(after.partition_epoch, s.partition_epoch);
    /* the same members in another order are a change (Kafka compares the lists) */
    const int32_t reordered[3] = {1, 3, 2};
    c = change_of(&s, reordered, 3);
    CHECK_EQ_INT(alter(f, 1, &c, &r), 0);
    CHECK(snapshot(f->ctl, "t", &after));
    CHECK(after.version > s.version);
    CHECK(same_list(after.isr, after.n_isr, reordered, 3));
}

TEST(test_isr_unknown_topic_and_partition_per_partition_results)
{
    struct fixture *f = fixture_start();
    CHECK(f != NULL);
    CHECK_EQ_INT(create_on(f->ctl, "t", R123, 3), 0);
    struct snap s;
    CHECK(snapshot(f->ctl, "t", &s));
    struct controller_isr_change c[4] = {change_of(&s, R12, 2), change_of(&s, R12, 2),
                                         change_of(&s, R12, 2), change_of(&s, R12, 2)};
    c[0].topic_id[0] ^= 0xff; /* no such id */
    c[1].partition = 1;       /* no such partition */
    c[3].topic = "nope";      /* only read by v0-1 */
    struct controller_alter_partition req = {1, f->epochs[1], 2, 3, c};
    struct cw_result r;
    cw_begin(&r);
    CHECK(controller_alter_partition(f->ctl, &req, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.error_code, 0);
    CHECK_EQ_INT(r.n_partitions, 3);
    CHECK_EQ_INT(r.partitions[0].error_code, KAFKA_ERR_UNKNOWN_TOPIC_ID);
    CHECK_EQ_INT(r.partitions[1].error_code, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    CHECK_EQ_INT(r.partitions[1].partition, 1);
    CHECK_EQ_INT(r.partitions[2].error_code, 0);
    CHECK_EQ_INT(r.partitions[2].partition_epoch, s.partition_epoch + 1);
    /* v0-1 name the topic */
    CHECK(snapshot(f->ctl, "t", &s));
    c[2] = change_of(&s, R123, 3);
    c[2].topic = "t";
    struct controller_alter_partition v1 = {1, f->epochs[1], 1, 2, &c[2]};
    cw_begin(&r);
    CHECK(controller_alter_partition(f->ctl, &v1, cw_done, &r) == 0);
    cw_wait(&r);
    CHECK_EQ_INT(r.n_partitions, 2);
    CHECK_EQ_INT(r.partitions[0].error_code, 0);
    CHECK(same_list(r.partitions[0].isr, r.partitions[0].n_isr, R123, 3));
    CHECK_EQ_INT(r.partitions[1].error_code, KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
}

static int reassign(struct controller *ctl, const char *topic, const int32_t *target, uint32_t n)
{
    struct controller_reassignment it = {topic, 0, n, target};
    struct cw_result r;
    cw_begin(&r);
    if (controller_alter_reassignments(ctl, &it, 1, cw_done, &r) != 0)
        return -1;
    cw_wait(&r);
    return r.error_code ? r.error_code : r.topics[0].error_code;
}

TEST(test_isr_expansion_completes_an_ongoing_reassignment)
{
    struct fixture *f = fixture_start();
    CHECK(f != NULL);
    CHECK_EQ_INT(create_on(f->ctl, "grow", R12, 2), 0);
    CHECK_EQ_INT(reassign(f->ctl, "grow", R123, 3), 0);
    struct snap s;
    CHECK(snapshot(f->ctl, "grow", &s));
    CHECK_EQ_INT(s.n_adding, 1); /* 3 is not in sync yet */
    CHECK(same_list(s.isr, s.n_isr, R12, 2));
    struct cw_result r;
    struct controller_isr_change c = change_of(&s, R123, 3);
    CHECK_EQ_INT(alter(f, 1, &c, &r), 0);
    struct snap after;
    CHECK(snapshot(f->ctl, "grow", &after));
    CHECK_EQ_INT(after.n_adding, 0);
    CHECK_EQ_INT(after.n_removing, 0);
    CHECK(same_list(after.replicas, after.n_replicas, R123, 3));
    CHECK(same_list(after.isr, after.n_isr, R123, 3));
    CHECK_EQ_INT(r.partitions[0].partition_epoch, after.partition_epoch);
    CHECK_EQ_INT(r.partitions[0].leader_id, 1);

    /* {1,2} -> {2,3} with only 1 in sync: completing it moves the leadership to 2 */
    const int32_t alone[1] = {1}, target[2] = {2, 3}, all[3] = {1, 2, 3};
    CHECK_EQ_INT(create_on(f->ctl, "move", R12, 2), 0);
    CHECK(snapshot(f->ctl, "move", &s));
    c = change_of(&s, alone, 1);
    CHECK_EQ_INT(alter(f, 1, &c, &r), 0);
    CHECK_EQ_INT(reassign(f->ctl, "move", target, 2), 0);
    CHECK(snapshot(f->ctl, "move", &s));
    CHECK_EQ_INT(s.n_removing, 1);
    c = change_of(&s, all, 3);
    CHECK_EQ_INT(alter(f, 1, &c, &r), KAFKA_ERR_NEW_LEADER_ELECTED);
    CHECK(snapshot(f->ctl, "move", &after));
    CHECK_EQ_INT(after.n_adding + after.n_removing, 0);
    CHECK(same_list(after.replicas, after.n_replicas, target, 2));
    CHECK(same_list(after.isr, after.n_isr, target, 2));
    CHECK_EQ_INT(after.leader, 2);
    CHECK_EQ_INT(after.leader_epoch, s.leader_epoch + 1);
}

TEST_MAIN
