/* Group coordinator shard loading: replaying __consumer_offsets into the shard's table. */
#include <stdio.h>
#include <stdlib.h>

#include "group/consumer_group.h"
#include "group/group_internal.h"
#include "record/control_record.h"
#include "record/record_builder.h"
#include "test.h"
#include "test_storage_util.h"

enum { NGROUPS = 100000, PER_BATCH = 1000 };

static void group_name(char *buf, size_t cap, int i)
{
    snprintf(buf, cap, "group-%06d", i);
}

/* Appends the n pairs as one batch and frees them. 0 or a negative error. */
static int append_kvs(struct log *log, struct offsets_kv *kvs, size_t n)
{
    uint8_t *batch;
    size_t len;
    int rc = offsets_build_batch(kvs, n, 1700000000000, &batch, &len);
    for (size_t i = 0; i < n; i++)
        offsets_kv_free(&kvs[i]);
    if (rc != 0)
        return rc;
    struct log_append_info info;
    rc = log_append(log, batch, len, 0, 1700000000000, false, &info);
    free(batch);
    if (rc == 0)
        log_set_high_watermark(log, info.last_offset + 1);
    return rc;
}

/*
 * Every group gets a metadata record and one offset commit; every tenth group's metadata is
 * then tombstoned (kept: it still has offsets), and every tenth from 5 has both tombstoned
 * (dropped: neither metadata nor offsets).
 */
static int write_groups(struct log *log)
{
    static struct offsets_kv kvs[PER_BATCH];
    struct kmsg_group_metadata_value gv;
    kmsg_group_metadata_value_init(&gv);
    gv.protocol_type = KSTR_LIT("consumer");
    gv.protocol = KSTR_LIT("range");
    gv.leader = KSTR_NULL;
    struct kmsg_offset_commit_value cv;
    kmsg_offset_commit_value_init(&cv);
    cv.metadata = KSTR_LIT("");
    char name[32];
    size_t n = 0;
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < NGROUPS; i++) {
            group_name(name, sizeof(name), i);
            cv.offset = i;
            int rc = 0;
            if (pass == 0)
                rc = offsets_encode_group(&kvs[n++], name, &gv);
            else if (pass == 1)
                rc = offsets_encode_commit(&kvs[n++], name, "orders", i % 7, &cv);
            else if (i % 10 == 0)
                rc = offsets_encode_group(&kvs[n++], name, NULL);
            else if (i % 10 == 5 && (rc = offsets_encode_group(&kvs[n++], name, NULL)) == 0)
                rc = offsets_encode_commit(&kvs[n++], name, "orders", i % 7, NULL);
            if (rc == 0 && n >= PER_BATCH - 2) {
                rc = append_kvs(log, kvs, n);
                n = 0;
            }
            if (rc != 0)
                return rc;
        }
    }
    return n ? append_kvs(log, kvs, n) : 0;
}

TEST(test_shard_load_replays_100k_groups)
{
    char *dir = tmpdir_make();
    struct log *log = NULL;
    struct shard s = {.index = 0};
    int rc = log_open(dir, OFFSETS_TOPIC, 0, NULL, NULL, &log);
    if (rc == 0)
        rc = write_groups(log);
    if (rc == 0)
        rc = shard_load(&s, log);
    int missing = 0, wrong = 0, kept_dropped = 0;
    char name[32];
    for (int i = 0; rc == 0 && i < NGROUPS; i++) {
        group_name(name, sizeof(name), i);
        struct group *g = group_find(&s, (struct kstr){name, (int32_t)strlen(name)});
        if (i % 10 == 5) {
            kept_dropped += g != NULL;
            continue;
        }
        if (g == NULL) {
            missing++;
            continue;
        }
        struct offset_entry *e = group_offset_find(g, "orders", 6, i % 7, false);
        bool has_meta = i % 10 != 0;
        if (e == NULL || e->offset != i || g->noffsets != 1 ||
            (g->protocol_type.len >= 0) != has_meta)
            wrong++;
    }
    size_t ngroups = s.ngroups;
    shard_free_groups(&s);
    if (log)
        log_close(log);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(kept_dropped, 0);
    CHECK_EQ_INT(ngroups, NGROUPS - NGROUPS / 10);
}

/* A transactional batch of producer pid with one offset commit (group, topic, partition). */
static int append_txn_commit(struct log *log, int64_t pid, const char *topic, int32_t part,
                             int64_t offset)
{
    struct kmsg_offset_commit_value v;
    kmsg_offset_commit_value_init(&v);
    v.offset = offset;
    v.leader_epoch = -1;
    v.metadata = KSTR_LIT("");
    struct offsets_kv kv;
    if (offsets_encode_commit(&kv, "g-txn", topic, part, &v) != 0)
        return -1;
    struct record_builder b;
    record_builder_init(&b, 0);
    b.attributes = RECORD_ATTR_TRANSACTIONAL;
    b.producer_id = pid;
    b.producer_epoch = 0;
    b.base_sequence = -1;
    record_builder_add(&b, 1700000000000, kv.key, kv.key_len, kv.value, kv.value_len, NULL, 0);
    offsets_kv_free(&kv);
    uint8_t *batch;
    size_t len;
    int rc = record_builder_finish(&b, &batch, &len);
    record_builder_release(&b);
    struct log_append_info info;
    if (rc == 0) {
        rc = log_append(log, batch, len, 0, 1700000000000, false, &info);
        free(batch);
    }
    return rc;
}

static int append_marker(struct log *log, int64_t pid, int16_t type)
{
    struct control_marker m = {type, 0};
    uint8_t *batch;
    size_t len;
    int rc = control_marker_build(pid, 0, &m, 1700000000000, &batch, &len);
    struct log_append_info info;
    if (rc == 0) {
        rc = log_append(log, batch, len, 0, 1700000000000, false, &info);
        free(batch);
    }
    return rc;
}

TEST(test_shard_load_applies_transactional_commits_at_their_commit_marker)
{
    char *dir = tmpdir_make();
    struct log *log = NULL;
    struct shard s = {.index = 0};
    CHECK_EQ_INT(log_open(dir, OFFSETS_TOPIC, 0, NULL, NULL, &log), 0);
    struct offsets_kv kv;
    struct kmsg_offset_commit_value v;
    kmsg_offset_commit_value_init(&v);
    v.offset = 5;
    v.metadata = KSTR_LIT("");
    CHECK_EQ_INT(offsets_encode_commit(&kv, "g-txn", "orders", 0, &v), 0);
    CHECK_EQ_INT(append_kvs(log, &kv, 1), 0);
    CHECK_EQ_INT(append_txn_commit(log, 9, "orders", 0, 10), 0); /* committed below */
    CHECK_EQ_INT(append_txn_commit(log, 8, "orders", 1, 20), 0); /* aborted below */
    CHECK_EQ_INT(append_txn_commit(log, 7, "orders", 2, 30), 0); /* still open */
    CHECK_EQ_INT(append_marker(log, 8, CONTROL_TYPE_ABORT), 0);
    CHECK_EQ_INT(append_marker(log, 9, CONTROL_TYPE_COMMIT), 0);
    CHECK_EQ_INT(shard_load(&s, log), 0);
    struct group *g = group_find(&s, KSTR_LIT("g-txn"));
    CHECK(g != NULL);
    struct offset_entry *e0 = group_offset_find(g, "orders", 6, 0, false);
    CHECK(e0 != NULL && e0->offset == 10);
    struct offset_entry *e1 = group_offset_find(g, "orders", 6, 1, false);
    CHECK(e1 == NULL || !e1->valid);
    struct offset_entry *e2 = group_offset_find(g, "orders", 6, 2, false);
    CHECK(e2 == NULL || !e2->valid);
    shard_free_groups(&s);
    log_close(log);
}

static void set_topics(struct cg_member *m, const char *topic)
{
    m->topics = calloc(1, sizeof(*m->topics));
    m->topics[0] = strdup(topic);
    m->ntopics = 1;
}

/* Appends r's records as one batch. */
static int append_records(struct log *log, struct cg_records *r)
{
    int rc = r->err != 0 ? r->err : append_kvs(log, r->v, r->n);
    if (rc == 0)
        r->n = 0; /* append_kvs freed the pairs */
    cg_records_free(r);
    return rc;
}

/*
 * A consumer group written as the heartbeat path writes it (Kafka's record types 3-8), then
 * member m2 removed with its tombstones and a second group deleted with the group's: the
 * replay restores epochs, subscriptions, the target and current assignments of m1 only, and
 * drops the deleted group. Bad input: a member record of an unknown value version is skipped.
 */
TEST(test_shard_load_replays_consumer_groups)
{
    char *dir = tmpdir_make();
    struct log *log = NULL;
    struct shard w = {.index = 0}, s = {.index = 0};
    CHECK_EQ_INT(log_open(dir, OFFSETS_TOPIC, 0, NULL, NULL, &log), 0);
    static const uint8_t tid[16] = {7, 7, 7};
    struct group *g = group_create(&w, KSTR_LIT("cg"));
    CHECK(g != NULL && (g->cg = cg_create()) != NULL);
    struct cgroup *cg = g->cg;
    cg->group_epoch = cg->assignment_epoch = 5;
    cg->topics = calloc(1, sizeof(*cg->topics));
    cg->topics[0] = (struct cg_topic){strdup("t1"), {7, 7, 7}, 3};
    cg->ntopics = 1;
    struct cg_member *m1 = cg_member_new(g, KSTR_LIT("m1"));
    struct cg_member *m2 = cg_member_new(g, KSTR_LIT("m2"));
    set_topics(m1, "t1");
    set_topics(m2, "t1");
    gstr_set(&m1->instance_id, "i1", 2);
    gstr_set(&m1->regex, "t.*", 3);
    gstr_set(&m1->assignor, "range", 5);
    m1->rebalance_timeout_ms = 1234;
    m1->epoch = 5;
    m1->previous_epoch = 4;
    m1->state = CGM_UNREVOKED;
    cg_tpset_add(&m1->assigned, tid, 0);
    cg_tpset_add(&m1->assigned, tid, 1);
    cg_tpset_add(&m1->revoking, tid, 2);
    cg_tpset_add(&m1->target, tid, 0);
    cg_tpset_add(&m1->target, tid, 1);
    cg_tpset_add(&m2->target, tid, 2);
    struct cg_records r = {0};
    for (struct cg_member *m = cg->members; m; m = m->next)
        cg_records_subscription(&r, g, m);
    cg_records_partition_metadata(&r, g);
    cg_records_epoch(&r, g);
    for (struct cg_member *m = cg->members; m; m = m->next)
        cg_records_target(&r, g, m);
    cg_records_target_epoch(&r, g);
    for (struct cg_member *m = cg->members; m; m = m->next)
        cg_records_current(&r, g, m);
    CHECK_EQ_INT(append_records(log, &r), 0);
    /* m2 leaves: its tombstones and the bumped epoch. */
    cg_records_member_tombstones(&r, g, &m2->id);
    cg->group_epoch = 6;
    cg_records_epoch(&r, g);
    CHECK_EQ_INT(append_records(log, &r), 0);
    /* A member record with value version 9: skipped. */
    static const uint8_t bad_key[] = {0, 5, 0, 2, 'c', 'g', 0, 2, 'm', '1'};
    static const uint8_t bad_value[] = {0, 9, 0xff};
    struct offsets_kv kv = {malloc(sizeof(bad_key)), sizeof(bad_key), malloc(sizeof(bad_value)),
                            sizeof(bad_value)};
    memcpy(kv.key, bad_key, sizeof(bad_key));
    memcpy(kv.value, bad_value, sizeof(bad_value));
    cg_records_push(&r, &kv);
    CHECK_EQ_INT(append_records(log, &r), 0);
    /* A second group, deleted. */
    struct group *d = group_create(&w, KSTR_LIT("gone"));
    CHECK(d != NULL && (d->cg = cg_create()) != NULL);
    struct cg_member *dm = cg_member_new(d, KSTR_LIT("x"));
    set_topics(dm, "t1");
    cg_records_subscription(&r, d, dm);
    cg_records_epoch(&r, d);
    cg_records_group_tombstones(&r, d);
    CHECK_EQ_INT(append_records(log, &r), 0);

    CHECK_EQ_INT(shard_load(&s, log), 0);
    struct group *lg = group_find(&s, KSTR_LIT("cg"));
    CHECK(lg != NULL && lg->cg != NULL);
    CHECK(group_find(&s, KSTR_LIT("gone")) == NULL);
    if (lg && lg->cg) {
        struct cgroup *c = lg->cg;
        CHECK_EQ_INT(c->group_epoch, 6);
        CHECK_EQ_INT(c->assignment_epoch, 5);
        CHECK_EQ_INT(c->nmembers, 1);
        CHECK(c->ntopics == 1 && strcmp(c->topics[0].name, "t1") == 0 && c->topics[0].nparts == 3 &&
              memcmp(c->topics[0].id, tid, 16) == 0);
        struct cg_member *m = cg_find_member(c, KSTR_LIT("m1"));
        CHECK(m != NULL && cg_find_member(c, KSTR_LIT("m2")) == NULL);
        if (m) {
            CHECK(m->epoch == 5 && m->previous_epoch == 4 && m->state == CGM_UNREVOKED);
            CHECK(cg_tpset_eq(&m->assigned, &m1->assigned));
            CHECK(cg_tpset_eq(&m->revoking, &m1->revoking));
            CHECK(cg_tpset_eq(&m->target, &m1->target));
            CHECK(m->ntopics == 1 && strcmp(m->topics[0], "t1") == 0);
            CHECK(m->re_valid && strcmp(m->regex.p, "t.*") == 0);
            CHECK(strcmp(m->instance_id.p, "i1") == 0 && strcmp(m->assignor.p, "range") == 0);
            CHECK_EQ_INT(m->rebalance_timeout_ms, 1234);
        }
    }
    shard_free_groups(&s);
    shard_free_groups(&w);
    log_close(log);
}

TEST_MAIN
