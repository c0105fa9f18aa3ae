/*
 * The classic group state machine driven through the coordinator's public API, as Kafka's
 * GroupCoordinatorTest does: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, session and rebalance
 * timeouts, static membership, OffsetCommit/OffsetFetch and a shard reloaded from its log.
 *
 * The environment (struct group_env) is a fake broker with real parts: one net worker owns the
 * only shard, __consumer_offsets-0 is a real log in a temporary directory whose appends become
 * durable through a real flusher, and leadership is a flag the test flips. Calls are submitted
 * on the worker, as the broker does, and the test thread waits (bounded) for each answer.
 * Timeouts are short (hundreds of milliseconds) so the whole program runs in a few seconds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "group/coordinator.h"
#include "group/offsets_log.h"
#include "proto/gen/api_table.h"
#include "proto/gen/errors.h"
#include "proto/gen/heartbeat.h"
#include "proto/gen/join_group.h"
#include "proto/gen/leave_group.h"
#include "proto/gen/offset_commit.h"
#include "proto/gen/offset_fetch.h"
#include "proto/gen/sync_group.h"
#include "storage/flusher.h"
#include "test.h"
#include "test_storage_util.h"

enum {
    WAIT_MS = 10000,        /* bound on every wait for an answer */
    SESSION_MS = 3000,      /* session timeout of members that must not expire during a case */
    REBALANCE_MS = 2000,    /* their rebalance timeout */
    INITIAL_DELAY_MS = 300, /* group.initial.rebalance.delay.ms: the first members join together */
    MAX_CALLS = 2048,
};

/* ---- the fake broker ---- */

struct fixture {
    char *dir;
    struct log *log;
    struct log_flusher *flusher;
    struct net_server *srv;
    struct group_coordinator *gc;
    atomic_bool leader;
    struct tcall *calls[MAX_CALLS]; /* freed at teardown, after the coordinator */
    int ncalls;
};

static void srv_on_request(void *ctx, struct net_request *req)
{
    net_request_close(req); /* nobody connects */
}

static struct net_worker *env_worker_for(void *ctx, int32_t shard)
{
    struct fixture *fx = ctx;
    return net_server_worker(fx->srv, 0);
}

static int32_t env_partition_count(void *ctx)
{
    return 1;
}

static struct log *env_log_get(void *ctx, int32_t shard, void **ref)
{
    struct fixture *fx = ctx;
    if (shard != 0 || !atomic_load(&fx->leader))
        return NULL;
    *ref = fx;
    return fx->log;
}

static void env_log_put(void *ref)
{
}

static int env_log_append(void *ref, uint8_t *batch, size_t len, struct log_append_info *info)
{
    struct fixture *fx = ref;
    int rc = log_append(fx->log, batch, len, 0, clock_wall_ms(), false, info);
    if (rc == 0)
        log_set_high_watermark(fx->log, info->last_offset + 1);
    return rc;
}

static bool env_is_leader(void *ctx, int32_t shard)
{
    struct fixture *fx = ctx;
    return atomic_load(&fx->leader);
}

/* The cluster has topic "orders" with partitions 0-3. */
static bool env_partition_exists(void *ctx, struct kstr topic, int32_t partition)
{
    return topic.len == 6 && memcmp(topic.ptr, "orders", 6) == 0 && partition >= 0 && partition < 4;
}

static void fixture_teardown(void *arg);

/* Starts the fake broker and the coordinator; NULL when something could not start. The
 * fixture is torn down after the current case however it ends. */
static struct fixture *fixture_start(void)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return NULL;
    atomic_init(&fx->leader, true);
    fx->dir = tmpdir_make();
    test_defer(fixture_teardown, fx);
    if (fx->dir == NULL || log_open(fx->dir, OFFSETS_TOPIC, 0, NULL, NULL, &fx->log) != 0)
        return NULL;
    if (log_flusher_create(&fx->flusher) != 0)
        return NULL;
    if (log_flusher_add(fx->flusher, fx->log) != 0) {
        log_flusher_destroy(fx->flusher);
        fx->flusher = NULL;
        return NULL;
    }
    struct net_config ncfg = {.host = "127.0.0.1", .port = 0, .num_workers = 1};
    struct net_handler h = {.on_request = srv_on_request, .ctx = fx};
    if (net_server_start(&ncfg, &h, &fx->srv) != 0)
        return NULL;
    struct group_config cfg = {
        .initial_rebalance_delay_ms = INITIAL_DELAY_MS,
        .min_session_timeout_ms = 100,
        .max_session_timeout_ms = 30000,
        .offsets_retention_ms = 7 * 24 * 3600 * 1000LL,
        .retention_check_interval_ms = 600000,
        .max_metadata_bytes = 4096,
        .max_shards = 1,
    };
    struct group_env env = {
        .ctx = fx,
        .worker_for = env_worker_for,
        .partition_count = env_partition_count,
        .log_get = env_log_get,
        .log_put = env_log_put,
        .log_append = env_log_append,
        .is_leader = env_is_leader,
        .partition_exists = env_partition_exists,
    };
    fx->gc = group_coordinator_create(&cfg, &env);
    return fx->gc ? fx : NULL;
}

/* ---- calls ---- */

struct tcall {
    struct group_call c;
    struct fixture *fx;
    struct arena arena;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    union {
        struct kmsg_join_group_request join;
        struct kmsg_sync_group_request sync;
        struct kmsg_heartbeat_request heartbeat;
        struct kmsg_leave_group_request leave;
        struct kmsg_offset_commit_request commit;
        struct kmsg_offset_fetch_request fetch;
    } req;
    union {
        struct kmsg_join_group_response join;
        struct kmsg_sync_group_response sync;
        struct kmsg_heartbeat_response heartbeat;
        struct kmsg_leave_group_response leave;
        struct kmsg_offset_commit_response commit;
        struct kmsg_offset_fetch_response fetch;
    } resp;
};

static void tcall_free(struct tcall *t)
{
    arena_free(&t->arena);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

static void fixture_teardown(void *arg)
{
    struct fixture *fx = arg;
    if (fx->gc)
        group_coordinator_shutdown(fx->gc);
    if (fx->srv)
        net_server_stop(fx->srv);
    group_coordinator_destroy(fx->gc);
    net_server_free(fx->srv);
    if (fx->flusher) {
        log_flusher_remove(fx->flusher, fx->log);
        log_flusher_destroy(fx->flusher);
    }
    if (fx->log)
        log_close(fx->log);
    for (int i = 0; i < fx->ncalls; i++)
        tcall_free(fx->calls[i]);
    free(fx);
}

/* The coordinator's completion, on the shard's worker: hands the answer to the test thread. */
static void tcall_done(struct group_call *c)
{
    struct tcall *t = c->user;
    pthread_mutex_lock(&t->mu);
    t->done = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* A new call of the fixture (freed at teardown); aborts when out of memory or slots. */
static struct tcall *tcall_new(struct fixture *fx, int16_t api_key, int16_t version)
{
    struct tcall *t = calloc(1, sizeof(*t));
    if (t == NULL || fx->ncalls == MAX_CALLS) {
        printf("  tcall_new: out of calls\n");
        abort();
    }
    fx->calls[fx->ncalls++] = t;
    t->fx = fx;
    arena_init(&t->arena, 0);
    pthread_mutex_init(&t->mu, NULL);
    if (clock_cond_init_mono(&t->cv) != 0) {
        printf("  tcall_new: no monotonic condition variable\n");
        abort();
    }
    t->c.api_key = api_key;
    t->c.api_version = version;
    t->c.req = &t->req;
    t->c.resp = &t->resp;
    t->c.arena = &t->arena;
    t->c.client_id = KSTR_LIT("test-client");
    t->c.client_host = "/127.0.0.1";
    t->c.done = tcall_done;
    t->c.user = t;
    return t;
}

/* A copy of s in the call's arena (requests borrow their strings). NULL s = null string. */
static struct kstr tcall_str(struct tcall *t, const char *s)
{
    if (s == NULL)
        return KSTR_NULL;
    char *p = arena_strndup(&t->arena, s, strlen(s));
    return p ? (struct kstr){p, (int32_t)strlen(p)} : KSTR_NULL;
}

static void tcall_submit_on_worker(void *arg)
{
    struct tcall *t = arg;
    group_coordinator_submit(t->fx->gc, &t->c);
}

/* Submits the call on the shard's worker, as the broker does. */
static void tcall_submit(struct tcall *t)
{
    if (net_worker_post(net_server_worker(t->fx->srv, 0), tcall_submit_on_worker, t) != 0) {
        printf("  tcall_submit: cannot post to the worker\n");
        abort();
    }
}

/* Waits up to ms for the answer; true when it came. */
static bool tcall_wait(struct tcall *t, int ms)
{
    struct timespec until = clock_mono_deadline(ms);
    pthread_mutex_lock(&t->mu);
    while (!t->done && pthread_cond_timedwait(&t->cv, &t->mu, &until) == 0) {
    }
    bool done = t->done;
    pthread_mutex_unlock(&t->mu);
    return done;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- members and requests ---- */

struct tmember {
    char id[400];         /* "" until the coordinator gave one */
    const char *instance; /* group.instance.id; NULL = dynamic member */
    const char *metadata; /* the subscription of its one protocol, "range" */
    int32_t session_ms, rebalance_ms;
    int32_t generation; /* of its last successful JoinGroup, else -1 */
    char leader[400];
    int32_t nmembers; /* members in its last JoinGroup response (the leader's) */
};

static void member_init(struct tmember *m, const char *metadata)
{
    memset(m, 0, sizeof(*m));
    m->metadata = metadata;
    m->session_ms = SESSION_MS;
    m->rebalance_ms = REBALANCE_MS;
    m->generation = -1;
}

static void copy_kstr(char *dst, size_t cap, struct kstr k)
{
    size_t n = k.len > 0 ? (size_t)k.len : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(dst, k.ptr, n);
    dst[n] = '\0';
}

/* Starts m's JoinGroup (version 7, or 4 for v < 5 tests) with m's current id. */
static struct tcall *join_start(struct fixture *fx, const char *group, const struct tmember *m,
                                int16_t version)
{
    struct tcall *t = tcall_new(fx, KPROTO_API_JOIN_GROUP, version);
    struct kmsg_join_group_request *r = &t->req.join;
    kmsg_join_group_request_init(r);
    kmsg_join_group_response_init(&t->resp.join);
    r->group_id = tcall_str(t, group);
    r->session_timeout_ms = m->session_ms;
    r->rebalance_timeout_ms = m->rebalance_ms;
    r->member_id = tcall_str(t, m->id);
    r->group_instance_id = tcall_str(t, m->instance);
    r->protocol_type = tcall_str(t, "consumer");
    struct kmsg_join_group_request_protocol *p = arena_calloc(&t->arena, 1, sizeof(*p));
    kmsg_join_group_request_protocol_init(p);
    p->name = tcall_str(t, "range");
    struct kstr md = tcall_str(t, m->metadata);
    p->metadata = (struct kbytes){(const uint8_t *)md.ptr, md.len};
    r->protocols.n = 1;
    r->protocols.v = p;
    tcall_submit(t);
    return t;
}

/* Takes m's answer to a JoinGroup: its id, generation, leader. Returns the error code, or -1
 * when no answer came in time. */
static int join_finish(struct tcall *t, struct tmember *m)
{
    if (!tcall_wait(t, WAIT_MS))
        return -1;
    const struct kmsg_join_group_response *r = &t->resp.join;
    if (r->member_id.len > 0)
        copy_kstr(m->id, sizeof(m->id), r->member_id);
    if (r->error_code == 0) {
        m->generation = r->generation_id;
        copy_kstr(m->leader, sizeof(m->leader), r->leader);
        m->nmembers = r->members.n;
    }
    return r->error_code;
}

static int join_sync(struct fixture *fx, const char *group, struct tmember *m, int16_t version)
{
    return join_finish(join_start(fx, group, m, version), m);
}

/* A SyncGroup of m; the leader passes n assignments (member, bytes). */
static struct tcall *sync_start(struct fixture *fx, const char *group, const struct tmember *m,
                                int32_t generation, int n, const struct tmember *const *to,
                                const char *const *assignment)
{
    struct tcall *t = tcall_new(fx, KPROTO_API_SYNC_GROUP, 5);
    struct kmsg_sync_group_request *r = &t->req.sync;
    kmsg_sync_group_request_init(r);
    kmsg_sync_group_response_init(&t->resp.sync);
    r->group_id = tcall_str(t, group);
    r->generation_id = generation;
    r->member_id = tcall_str(t, m->id);
    r->group_instance_id = tcall_str(t, m->instance);
    r->protocol_type = tcall_str(t, "consumer");
    r->protocol_name = tcall_str(t, "range");
    r->assignments.n = n;
    r->assignments.v = arena_calloc(&t->arena, (size_t)n + 1, sizeof(*r->assignments.v));
    for (int i = 0; i < n; i++) {
        kmsg_sync_group_request_assignment_init(&r->assignments.v[i]);
        r->assignments.v[i].member_id = tcall_str(t, to[i]->id);
        struct kstr a = tcall_str(t, assignment[i]);
        r->assignments.v[i].assignment = (struct kbytes){(const uint8_t *)a.ptr, a.len};
    }
    tcall_submit(t);
    return t;
}

/* True when the SyncGroup answer came with no error and exactly the assignment `want`. */
static bool sync_got(struct tcall *t, const char *want)
{
    if (!tcall_wait(t, WAIT_MS) || t->resp.sync.error_code != 0)
        return false;
    struct kbytes a = t->resp.sync.assignment;
    return a.len == (int32_t)strlen(want) && memcmp(a.ptr, want, strlen(want)) == 0;
}

static int16_t sync_error(struct tcall *t)
{
    return tcall_wait(t, WAIT_MS) ? t->resp.sync.error_code : -1;
}

/* A Heartbeat of member id `id` (instance may be NULL) in generation gen; its error code or -1
 * when no answer came. */
static int heartbeat_as(struct fixture *fx, const char *group, const char *id, const char *instance,
                        int32_t gen)
{
    struct tcall *t = tcall_new(fx, KPROTO_API_HEARTBEAT, 4);
    kmsg_heartbeat_request_init(&t->req.heartbeat);
    kmsg_heartbeat_response_init(&t->resp.heartbeat);
    t->req.heartbeat.group_id = tcall_str(t, group);
    t->req.heartbeat.generation_id = gen;
    t->req.heartbeat.member_id = tcall_str(t, id);
    t->req.heartbeat.group_instance_id = tcall_str(t, instance);
    tcall_submit(t);
    return tcall_wait(t, WAIT_MS) ? t->resp.heartbeat.error_code : -1;
}

static int heartbeat(struct fixture *fx, const char *group, const struct tmember *m)
{
    return heartbeat_as(fx, group, m->id, m->instance, m->generation);
}

/* Heartbeats m until the answer is `want` (true) or WAIT_MS passed (false). */
static bool heartbeat_until(struct fixture *fx, const char *group, const struct tmember *m,
                            int want)
{
    int64_t end = clock_mono_ms() + WAIT_MS;
    while (clock_mono_ms() < end) {
        if (heartbeat(fx, group, m) == want)
            return true;
        sleep_ms(50);
    }
    return false;
}

/* Waits until the shard answers (not loading, not NOT_COORDINATOR): a heartbeat of an unknown
 * group then says UNKNOWN_MEMBER_ID. */
static bool shard_wait_loaded(struct fixture *fx)
{
    int64_t end = clock_mono_ms() + WAIT_MS;
    while (clock_mono_ms() < end) {
        if (heartbeat_as(fx, "no-such-group", "x", NULL, 1) == KAFKA_ERR_UNKNOWN_MEMBER_ID)
            return true;
        sleep_ms(20);
    }
    return false;
}

/* A LeaveGroup v3 of one member; the member's own error code, or -1. */
static int leave(struct fixture *fx, const char *group, const struct tmember *m)
{
    struct tcall *t = tcall_new(fx, KPROTO_API_LEAVE_GROUP, 3);
    struct kmsg_leave_group_request *r = &t->req.leave;
    kmsg_leave_group_request_init(r);
    kmsg_leave_group_response_init(&t->resp.leave);
    r->group_id = tcall_str(t, group);
    r->members.n = 1;
    r->members.v = arena_calloc(&t->arena, 1, sizeof(*r->members.v));
    kmsg_leave_group_request_member_identity_init(r->members.v);
    r->members.v[0].member_id = tcall_str(t, m->id);
    r->members.v[0].group_instance_id = tcall_str(t, m->instance);
    tcall_submit(t);
    if (!tcall_wait(t, WAIT_MS))
        return -1;
    const struct kmsg_leave_group_response *resp = &t->resp.leave;
    if (resp->error_code != 0 || resp->members.n != 1)
        return resp->error_code ? resp->error_code : -2;
    return resp->members.v[0].error_code;
}

/* An OffsetCommit v7 of orders-<partition> at `offset` by member id (may be "") in gen; the
 * partition's error code, or -1. */
static int commit(struct fixture *fx, const char *group, const char *member, int32_t gen,
                  int32_t partition, int64_t offset)
{
    struct tcall *t = tcall_new(fx, KPROTO_API_OFFSET_COMMIT, 7);
    struct kmsg_offset_commit_request *r = &t->req.commit;
    kmsg_offset_commit_request_init(r);
    kmsg_offset_commit_response_init(&t->resp.commit);
    r->group_id = tcall_str(t, group);
    r->generation_id_or_member_epoch = gen;
    r->member_id = tcall_str(t, member);
    r->group_instance_id = KSTR_NULL;
    r->topics.n = 1;
    r->topics.v = arena_calloc(&t->arena, 1, sizeof(*r->topics.v));
    kmsg_offset_commit_request_topic_init(r->topics.v);
    r->topics.v[0].name = tcall_str(t, "orders");
    r->topics.v[0].partitions.n = 1;
    r->topics.v[0].partitions.v = arena_calloc(&t->arena, 1, sizeof(*r->topics.v[0].partitions.v));
    struct kmsg_offset_commit_request_partition *p = r->topics.v[0].partitions.v;
    kmsg_offset_commit_request_partition_init(p);
    p->partition_index = partition;
    p->committed_offset = offset;
    p->committed_leader_epoch = 3;
    p->committed_metadata = tcall_str(t, "md");
    tcall_submit(t);
    if (!tcall_wait(t, WAIT_MS))
        return -1;
    const struct kmsg_offset_commit_response *resp = &t->resp.commit;
    if (resp->topics.n != 1 || resp->topics.v[0].partitions.n != 1)
        return -2;
    return resp->topics.v[0].partitions.v[0].error_code;
}

/* The committed offset of orders-<partition> by OffsetFetch v7: *offset (-1 = none) and the
 * error code (top level or the partition's), or -1 when no answer came. */
static int fetch(struct fixture *fx, const char *group, int32_t partition, int64_t *offset)
{
    struct tcall *t = tcall_new(fx, KPROTO_API_OFFSET_FETCH, 7);
    struct kmsg_offset_fetch_request *r = &t->req.fetch;
    kmsg_offset_fetch_request_init(r);
    kmsg_offset_fetch_response_init(&t->resp.fetch);
    r->group_id = tcall_str(t, group);
    r->topics.n = 1;
    r->topics.v = arena_calloc(&t->arena, 1, sizeof(*r->topics.v));
    kmsg_offset_fetch_request_topic_init(r->topics.v);
    r->topics.v[0].name = tcall_str(t, "orders");
    r->topics.v[0].partition_indexes.n = 1;
    r->topics.v[0].partition_indexes.v = arena_calloc(&t->arena, 1, sizeof(int32_t));
    r->topics.v[0].partition_indexes.v[0] = partition;
    tcall_submit(t);
    *offset = -2;
    if (!tcall_wait(t, WAIT_MS))
        return -1;
    const struct kmsg_offset_fetch_response *resp = &t->resp.fetch;
    if (resp->error_code != 0)
        return resp->error_code;
    if (resp->topics.n != 1 || resp->topics.v[0].partitions.n != 1)
        return -2;
    const struct kmsg_offset_fetch_response_partition *p = &resp->topics.v[0].partitions.v[0];
    if (p->partition_index != partition)
        return -3;
    *offset = p->committed_offset;
    return p->error_code;
}

/* ---- scenarios shared by the cases ---- */

/* First join of a dynamic member (v4+): MEMBER_ID_REQUIRED with the id to join with. */
static int member_get_id(struct fixture *fx, const char *group, struct tmember *m)
{
    return join_sync(fx, group, m, 7);
}

/*
 * a and b join one generation of a new group (a leads: it joined first) and sync: a gets
 * "assign-a", b "assign-b". 0, or the line of the first step that failed.
 */
static int group_form_pair(struct fixture *fx, const char *group, struct tmember *a,
                           struct tmember *b)
{
    if (a->instance == NULL && member_get_id(fx, group, a) != KAFKA_ERR_MEMBER_ID_REQUIRED)
        return __LINE__;
    if (b->instance == NULL && member_get_id(fx, group, b) != KAFKA_ERR_MEMBER_ID_REQUIRED)
        return __LINE__;
    struct tcall *ja = join_start(fx, group, a, 7);
    struct tcall *jb = join_start(fx, group, b, 7);
    if (join_finish(ja, a) != 0 || join_finish(jb, b) != 0)
        return __LINE__;
    if (a->generation != b->generation || strcmp(a->leader, a->id) != 0 ||
        strcmp(b->leader, a->id) != 0 || a->nmembers != 2 || b->nmembers != 0)
        return __LINE__;
    const struct tmember *to[] = {a, b};
    const char *assignment[] = {"assign-a", "assign-b"};
    struct tcall *sb = sync_start(fx, group, b, b->generation, 0, NULL, NULL);
    struct tcall *sa = sync_start(fx, group, a, a->generation, 2, to, assignment);
    if (!sync_got(sa, "assign-a") || !sync_got(sb, "assign-b"))
        return __LINE__;
    return 0;
}

#define FIXTURE(fx)                                                                                \
    struct fixture *fx = fixture_start();                                                          \
    CHECK(fx != NULL);                                                                             \
    CHECK(shard_wait_loaded(fx))

/* ---- cases ---- */

TEST(test_join_unknown_member_gets_member_id_required_then_joins)
{
    FIXTURE(fx);
    struct tmember a;
    member_init(&a, "sub-a");
    CHECK_EQ_INT(join_sync(fx, "g1", &a, 7), KAFKA_ERR_MEMBER_ID_REQUIRED);
    CHECK(strncmp(a.id, "test-client-", 12) == 0);
    CHECK_EQ_INT(join_sync(fx, "g1", &a, 7), 0);
    CHECK_EQ_INT(a.generation, 1);
    CHECK(strcmp(a.leader, a.id) == 0);
    CHECK_EQ_INT(a.nmembers, 1);
    /* An id the coordinator never handed out is refused. */
    struct tmember x;
    member_init(&x, "sub-x");
    strcpy(x.id, "made-up-id");
    CHECK_EQ_INT(join_sync(fx, "g1", &x, 7), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    /* Before v4 a member without an id joins at once. */
    struct tmember old;
    member_init(&old, "sub-old");
    CHECK_EQ_INT(join_sync(fx, "g-v3", &old, 3), 0);
    CHECK(old.id[0] != '\0');
    CHECK_EQ_INT(old.generation, 1);
}

TEST(test_join_rejects_bad_session_timeout_and_protocol)
{
    FIXTURE(fx);
    struct tmember a;
    member_init(&a, "sub-a");
    a.session_ms = 50; /* below group.min.session.timeout.ms */
    CHECK_EQ_INT(join_sync(fx, "g1", &a, 7), KAFKA_ERR_INVALID_SESSION_TIMEOUT);
    a.session_ms = SESSION_MS;
    CHECK_EQ_INT(join_sync(fx, "", &a, 7), KAFKA_ERR_INVALID_GROUP_ID);
    CHECK_EQ_INT(join_sync(fx, "g1", &a, 3), 0);
    /* A member whose protocol type differs cannot join the group. */
    struct tcall *t = tcall_new(fx, KPROTO_API_JOIN_GROUP, 3);
    struct kmsg_join_group_request *r = &t->req.join;
    kmsg_join_group_request_init(r);
    kmsg_join_group_response_init(&t->resp.join);
    r->group_id = tcall_str(t, "g1");
    r->session_timeout_ms = SESSION_MS;
    r->member_id = tcall_str(t, "");
    r->protocol_type = tcall_str(t, "connect");
    r->protocols.n = 1;
    r->protocols.v = arena_calloc(&t->arena, 1, sizeof(*r->protocols.v));
    r->protocols.v[0].name = tcall_str(t, "range");
    tcall_submit(t);
    CHECK(tcall_wait(t, WAIT_MS));
    CHECK_EQ_INT(t->resp.join.error_code, KAFKA_ERR_INCONSISTENT_GROUP_PROTOCOL);
}

/*
 * The coordinator keeps at most 1000 ids handed out with MEMBER_ID_REQUIRED that were not used
 * yet. When clients that never came back fill that list, the oldest id must make room, not the
 * one just handed out: a new member must be able to join with its id although another new
 * member got an id after it.
 */
TEST(test_pending_member_ids_evict_the_oldest)
{
    FIXTURE(fx);
    enum { STALE = 1000 };
    static struct tmember stale[STALE];
    struct tcall *t[STALE];
    for (int i = 0; i < STALE; i++) {
        member_init(&stale[i], "sub-stale");
        t[i] = join_start(fx, "g-pending", &stale[i], 7);
    }
    for (int i = 0; i < STALE; i++)
        CHECK_EQ_INT(join_finish(t[i], &stale[i]), KAFKA_ERR_MEMBER_ID_REQUIRED);
    struct tmember x, y;
    member_init(&x, "sub-x");
    member_init(&y, "sub-y");
    CHECK_EQ_INT(member_get_id(fx, "g-pending", &x), KAFKA_ERR_MEMBER_ID_REQUIRED);
    CHECK_EQ_INT(member_get_id(fx, "g-pending", &y), KAFKA_ERR_MEMBER_ID_REQUIRED);
    struct tcall *jx = join_start(fx, "g-pending", &x, 7);
    struct tcall *jy = join_start(fx, "g-pending", &y, 7);
    CHECK_EQ_INT(join_finish(jx, &x), 0);
    CHECK_EQ_INT(join_finish(jy, &y), 0);
    CHECK_EQ_INT(x.generation, 1);
    CHECK_EQ_INT(y.generation, 1);
    /* The oldest ids made room. */
    CHECK_EQ_INT(join_sync(fx, "g-pending", &stale[0], 7), KAFKA_ERR_UNKNOWN_MEMBER_ID);
}

TEST(test_two_members_join_one_generation_leader_gets_members)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    CHECK_EQ_INT(member_get_id(fx, "g2", &a), KAFKA_ERR_MEMBER_ID_REQUIRED);
    CHECK_EQ_INT(member_get_id(fx, "g2", &b), KAFKA_ERR_MEMBER_ID_REQUIRED);
    CHECK(strcmp(a.id, b.id) != 0);
    struct tcall *ja = join_start(fx, "g2", &a, 7);
    struct tcall *jb = join_start(fx, "g2", &b, 7);
    CHECK_EQ_INT(join_finish(ja, &a), 0);
    CHECK_EQ_INT(join_finish(jb, &b), 0);
    CHECK_EQ_INT(a.generation, 1);
    CHECK_EQ_INT(b.generation, 1);
    CHECK(strcmp(a.leader, a.id) == 0 && strcmp(b.leader, a.id) == 0);
    /* The leader gets both members with their subscriptions, the follower none. */
    const struct kmsg_join_group_response *ra = &ja->resp.join;
    CHECK_EQ_INT(ra->members.n, 2);
    CHECK_EQ_INT(jb->resp.join.members.n, 0);
    CHECK(ra->protocol_name.len == 5 && memcmp(ra->protocol_name.ptr, "range", 5) == 0);
    bool saw_b = false;
    for (int32_t i = 0; i < ra->members.n; i++) {
        struct kstr id = ra->members.v[i].member_id;
        struct kbytes md = ra->members.v[i].metadata;
        if (id.len == (int32_t)strlen(b.id) && memcmp(id.ptr, b.id, strlen(b.id)) == 0)
            saw_b = md.len == 5 && memcmp(md.ptr, "sub-b", 5) == 0;
    }
    CHECK(saw_b);
}

TEST(test_sync_distributes_leader_assignment)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    CHECK_EQ_INT(member_get_id(fx, "g3", &a), KAFKA_ERR_MEMBER_ID_REQUIRED);
    CHECK_EQ_INT(member_get_id(fx, "g3", &b), KAFKA_ERR_MEMBER_ID_REQUIRED);
    struct tcall *ja = join_start(fx, "g3", &a, 7);
    struct tcall *jb = join_start(fx, "g3", &b, 7);
    CHECK_EQ_INT(join_finish(ja, &a), 0);
    CHECK_EQ_INT(join_finish(jb, &b), 0);
    /* The follower's SyncGroup waits for the leader's. */
    struct tcall *sb = sync_start(fx, "g3", &b, b.generation, 0, NULL, NULL);
    CHECK(!tcall_wait(sb, 300));
    /* A wrong generation or an unknown member is refused meanwhile. */
    CHECK_EQ_INT(sync_error(sync_start(fx, "g3", &a, a.generation + 1, 0, NULL, NULL)),
                 KAFKA_ERR_ILLEGAL_GENERATION);
    struct tmember x;
    member_init(&x, "sub-x");
    strcpy(x.id, "nobody");
    CHECK_EQ_INT(sync_error(sync_start(fx, "g3", &x, a.generation, 0, NULL, NULL)),
                 KAFKA_ERR_UNKNOWN_MEMBER_ID);
    const struct tmember *to[] = {&a, &b};
    const char *assignment[] = {"assign-a", "assign-b"};
    struct tcall *sa = sync_start(fx, "g3", &a, a.generation, 2, to, assignment);
    CHECK(sync_got(sa, "assign-a"));
    CHECK(sync_got(sb, "assign-b"));
    /* Stable: a later SyncGroup gets the stored assignment at once. */
    CHECK(sync_got(sync_start(fx, "g3", &b, b.generation, 0, NULL, NULL), "assign-b"));
}

TEST(test_heartbeat_errors_follow_group_state)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    CHECK_EQ_INT(group_form_pair(fx, "g4", &a, &b), 0);
    CHECK_EQ_INT(heartbeat(fx, "g4", &a), 0);
    CHECK_EQ_INT(heartbeat(fx, "g4", &b), 0);
    CHECK_EQ_INT(heartbeat_as(fx, "g4", "nobody", NULL, a.generation), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(heartbeat_as(fx, "g4", b.id, NULL, b.generation + 1),
                 KAFKA_ERR_ILLEGAL_GENERATION);
    CHECK_EQ_INT(heartbeat_as(fx, "no-group", b.id, NULL, 1), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    /* A follower rejoining with the same subscription changes nothing. */
    struct tmember b2 = b;
    CHECK_EQ_INT(join_sync(fx, "g4", &b2, 7), 0);
    CHECK_EQ_INT(b2.generation, b.generation);
    CHECK_EQ_INT(heartbeat(fx, "g4", &b), 0);
    /* The leader rejoining starts a rebalance: the others learn it from their heartbeat. */
    struct tcall *ja = join_start(fx, "g4", &a, 7);
    CHECK(!tcall_wait(ja, 200)); /* parked until b rejoins */
    CHECK_EQ_INT(heartbeat(fx, "g4", &b), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ_INT(sync_error(sync_start(fx, "g4", &b, b.generation, 0, NULL, NULL)),
                 KAFKA_ERR_REBALANCE_IN_PROGRESS);
    struct tcall *jb = join_start(fx, "g4", &b, 7);
    CHECK_EQ_INT(join_finish(ja, &a), 0);
    CHECK_EQ_INT(join_finish(jb, &b), 0);
    CHECK_EQ_INT(a.generation, 2);
    CHECK_EQ_INT(b.generation, 2);
    /* CompletingRebalance: the old generation is illegal, the new one fine. */
    CHECK_EQ_INT(heartbeat_as(fx, "g4", b.id, NULL, 1), KAFKA_ERR_ILLEGAL_GENERATION);
    CHECK_EQ_INT(heartbeat(fx, "g4", &b), 0);
}

TEST(test_rejoin_while_completing_rebalance)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    CHECK_EQ_INT(member_get_id(fx, "g11", &a), KAFKA_ERR_MEMBER_ID_REQUIRED);
    CHECK_EQ_INT(member_get_id(fx, "g11", &b), KAFKA_ERR_MEMBER_ID_REQUIRED);
    struct tcall *ja = join_start(fx, "g11", &a, 7);
    struct tcall *jb = join_start(fx, "g11", &b, 7);
    CHECK_EQ_INT(join_finish(ja, &a), 0);
    CHECK_EQ_INT(join_finish(jb, &b), 0);
    /* CompletingRebalance (no SyncGroup yet): an unchanged rejoin gets the same generation
     * again, the leader with the members. */
    struct tmember b2 = b, a2 = a;
    CHECK_EQ_INT(join_sync(fx, "g11", &b2, 7), 0);
    CHECK_EQ_INT(b2.generation, 1);
    CHECK(strcmp(b2.leader, a.id) == 0);
    CHECK_EQ_INT(join_sync(fx, "g11", &a2, 7), 0);
    CHECK_EQ_INT(a2.generation, 1);
    CHECK_EQ_INT(a2.nmembers, 2);
    /* A changed subscription starts a new rebalance. */
    b.metadata = "sub-b-changed";
    jb = join_start(fx, "g11", &b, 7);
    CHECK(!tcall_wait(jb, 200));
    CHECK_EQ_INT(heartbeat(fx, "g11", &a), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ_INT(join_sync(fx, "g11", &a, 7), 0);
    CHECK_EQ_INT(join_finish(jb, &b), 0);
    CHECK_EQ_INT(a.generation, 2);
    CHECK_EQ_INT(b.generation, 2);
}

TEST(test_session_expiry_removes_member_and_rebalances)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    b.session_ms = 400;
    /* Taken before the group forms: b's last heartbeat is later, so its session cannot expire
     * before start + 400 ms however long forming took on a loaded machine. */
    int64_t start = clock_mono_ms();
    CHECK_EQ_INT(group_form_pair(fx, "g5", &a, &b), 0);
    /* b goes silent: once its session expires the group rebalances without it. */
    CHECK(heartbeat_until(fx, "g5", &a, KAFKA_ERR_REBALANCE_IN_PROGRESS));
    CHECK(clock_mono_ms() - start >= 300);
    CHECK_EQ_INT(join_sync(fx, "g5", &a, 7), 0);
    CHECK_EQ_INT(a.generation, 2);
    CHECK_EQ_INT(a.nmembers, 1);
    CHECK_EQ_INT(heartbeat(fx, "g5", &b), KAFKA_ERR_UNKNOWN_MEMBER_ID);
}

TEST(test_rebalance_timeout_removes_members_that_did_not_rejoin)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    a.rebalance_ms = 500;
    b.rebalance_ms = 500;
    b.session_ms = 5000; /* outlives the rebalance: only the rebalance timeout removes it */
    CHECK_EQ_INT(group_form_pair(fx, "g6", &a, &b), 0);
    /* a rejoins (it leads: a rebalance), b never does. */
    int64_t start = clock_mono_ms();
    struct tcall *ja = join_start(fx, "g6", &a, 7);
    CHECK(!tcall_wait(ja, 200));
    CHECK_EQ_INT(join_finish(ja, &a), 0);
    CHECK(clock_mono_ms() - start >= 400);
    CHECK_EQ_INT(a.generation, 2);
    CHECK_EQ_INT(a.nmembers, 1);
    CHECK_EQ_INT(heartbeat(fx, "g6", &b), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(heartbeat(fx, "g6", &a), 0);
}

TEST(test_static_member_rejoin_keeps_assignment_and_fences_old_id)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    a.instance = "instance-a";
    CHECK_EQ_INT(group_form_pair(fx, "g7", &a, &b), 0);
    /* A static member gets its id at once, no MEMBER_ID_REQUIRED. */
    CHECK(a.id[0] != '\0');
    int32_t gen = a.generation;
    /* a restarts: unknown member id, same instance id and subscription. */
    struct tmember a2 = a;
    a2.id[0] = '\0';
    CHECK_EQ_INT(join_sync(fx, "g7", &a2, 7), 0);
    CHECK(strcmp(a2.id, a.id) != 0);
    CHECK_EQ_INT(a2.generation, gen);    /* no rebalance */
    CHECK(strcmp(a2.leader, a.id) == 0); /* before v9: the leader id the group had */
    CHECK_EQ_INT(heartbeat(fx, "g7", &b), 0);
    CHECK(sync_got(sync_start(fx, "g7", &a2, gen, 0, NULL, NULL), "assign-a"));
    CHECK_EQ_INT(heartbeat(fx, "g7", &a2), 0);
    /* The old id is fenced. */
    CHECK_EQ_INT(heartbeat(fx, "g7", &a), KAFKA_ERR_FENCED_INSTANCE_ID);
    CHECK_EQ_INT(sync_error(sync_start(fx, "g7", &a, gen, 0, NULL, NULL)),
                 KAFKA_ERR_FENCED_INSTANCE_ID);
    CHECK_EQ_INT(join_sync(fx, "g7", &a, 7), KAFKA_ERR_FENCED_INSTANCE_ID);
    CHECK_EQ_INT(heartbeat(fx, "g7", &b), 0); /* still no rebalance */
}

TEST(test_leave_group_rebalances_the_rest)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    CHECK_EQ_INT(group_form_pair(fx, "g8", &a, &b), 0);
    CHECK_EQ_INT(leave(fx, "g8", &b), 0);
    CHECK_EQ_INT(leave(fx, "g8", &b), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(heartbeat(fx, "g8", &a), KAFKA_ERR_REBALANCE_IN_PROGRESS);
    CHECK_EQ_INT(join_sync(fx, "g8", &a, 7), 0);
    CHECK_EQ_INT(a.generation, 2);
    CHECK_EQ_INT(a.nmembers, 1);
    /* The last member leaving empties the group. */
    CHECK_EQ_INT(leave(fx, "g8", &a), 0);
    CHECK_EQ_INT(heartbeat(fx, "g8", &a), KAFKA_ERR_UNKNOWN_MEMBER_ID);
}

TEST(test_offset_commit_checks_generation_and_member)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    CHECK_EQ_INT(group_form_pair(fx, "g9", &a, &b), 0);
    int32_t gen = a.generation;
    CHECK_EQ_INT(commit(fx, "g9", a.id, gen, 0, 42), 0);
    CHECK_EQ_INT(commit(fx, "g9", b.id, gen, 1, 7), 0);
    CHECK_EQ_INT(commit(fx, "g9", a.id, gen + 1, 0, 43), KAFKA_ERR_ILLEGAL_GENERATION);
    CHECK_EQ_INT(commit(fx, "g9", "nobody", gen, 0, 44), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    /* A standalone commit (generation -1) into a group with members is refused. */
    CHECK_EQ_INT(commit(fx, "g9", "", -1, 0, 45), KAFKA_ERR_UNKNOWN_MEMBER_ID);
    CHECK_EQ_INT(commit(fx, "g9", a.id, gen, 99, 1), KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION);
    int64_t off;
    CHECK_EQ_INT(fetch(fx, "g9", 0, &off), 0);
    CHECK_EQ_INT(off, 42);
    CHECK_EQ_INT(fetch(fx, "g9", 1, &off), 0);
    CHECK_EQ_INT(off, 7);
    CHECK_EQ_INT(fetch(fx, "g9", 2, &off), 0);
    CHECK_EQ_INT(off, -1);
    /* A generation given for a group that does not exist is illegal. */
    CHECK_EQ_INT(commit(fx, "no-such-group", "m", 1, 0, 1), KAFKA_ERR_ILLEGAL_GENERATION);
}

TEST(test_standalone_commits_and_fetch)
{
    FIXTURE(fx);
    CHECK_EQ_INT(commit(fx, "solo", "", -1, 0, 100), 0);
    CHECK_EQ_INT(commit(fx, "solo", "", -1, 3, 300), 0);
    CHECK_EQ_INT(commit(fx, "solo", "", -1, 0, 101), 0);
    int64_t off;
    CHECK_EQ_INT(fetch(fx, "solo", 0, &off), 0);
    CHECK_EQ_INT(off, 101);
    CHECK_EQ_INT(fetch(fx, "solo", 3, &off), 0);
    CHECK_EQ_INT(off, 300);
    CHECK_EQ_INT(fetch(fx, "unknown-group", 0, &off), 0);
    CHECK_EQ_INT(off, -1);
    /* An Empty group with commits still takes members. */
    struct tmember a;
    member_init(&a, "sub-a");
    CHECK_EQ_INT(member_get_id(fx, "solo", &a), KAFKA_ERR_MEMBER_ID_REQUIRED);
    CHECK_EQ_INT(join_sync(fx, "solo", &a, 7), 0);
    CHECK_EQ_INT(a.generation, 1);
}

/* OffsetFetch of every topic (topics null) by v7: the response, or NULL when none came. */
static const struct kmsg_offset_fetch_response *fetch_all_v7(struct fixture *fx, const char *group)
{
    struct tcall *t = tcall_new(fx, KPROTO_API_OFFSET_FETCH, 7);
    kmsg_offset_fetch_request_init(&t->req.fetch);
    kmsg_offset_fetch_response_init(&t->resp.fetch);
    t->req.fetch.group_id = tcall_str(t, group);
    t->req.fetch.topics.n = -1;
    tcall_submit(t);
    return tcall_wait(t, WAIT_MS) ? &t->resp.fetch : NULL;
}

/* OffsetFetch v8 for two groups: `all` with topics null, `listed` for orders-1 and orders-2. */
static const struct kmsg_offset_fetch_response *
fetch_two_groups_v8(struct fixture *fx, const char *all, const char *listed)
{
    struct tcall *t = tcall_new(fx, KPROTO_API_OFFSET_FETCH, 8);
    struct kmsg_offset_fetch_request *r = &t->req.fetch;
    kmsg_offset_fetch_request_init(r);
    kmsg_offset_fetch_response_init(&t->resp.fetch);
    r->groups.n = 2;
    r->groups.v = arena_calloc(&t->arena, 2, sizeof(*r->groups.v));
    kmsg_offset_fetch_request_group_init(&r->groups.v[0]);
    r->groups.v[0].group_id = tcall_str(t, all);
    r->groups.v[0].topics.n = -1;
    kmsg_offset_fetch_request_group_init(&r->groups.v[1]);
    r->groups.v[1].group_id = tcall_str(t, listed);
    r->groups.v[1].topics.n = 1;
    r->groups.v[1].topics.v = arena_calloc(&t->arena, 1, sizeof(*r->groups.v[1].topics.v));
    struct kmsg_offset_fetch_request_topics *topic = r->groups.v[1].topics.v;
    kmsg_offset_fetch_request_topics_init(topic);
    topic->name = tcall_str(t, "orders");
    topic->partition_indexes.n = 2;
    topic->partition_indexes.v = arena_calloc(&t->arena, 2, sizeof(int32_t));
    topic->partition_indexes.v[0] = 1;
    topic->partition_indexes.v[1] = 2;
    tcall_submit(t);
    return tcall_wait(t, WAIT_MS) ? &t->resp.fetch : NULL;
}

TEST(test_offset_fetch_v7_all_topics_and_v8_groups_answer_alike)
{
    FIXTURE(fx);
    CHECK_EQ_INT(commit(fx, "solo", "", -1, 0, 100), 0);
    CHECK_EQ_INT(commit(fx, "solo", "", -1, 3, 300), 0);
    CHECK_EQ_INT(commit(fx, "other", "", -1, 1, 11), 0);
    const struct kmsg_offset_fetch_response *v7 = fetch_all_v7(fx, "solo");
    CHECK(v7 != NULL);
    CHECK_EQ_INT(v7->error_code, 0);
    CHECK_EQ_INT(v7->topics.n, 1);
    CHECK_EQ_INT(v7->topics.v[0].partitions.n, 2);
    CHECK_EQ_INT(v7->topics.v[0].partitions.v[0].partition_index, 0);
    CHECK_EQ_INT(v7->topics.v[0].partitions.v[0].committed_offset, 100);
    CHECK_EQ_INT(v7->topics.v[0].partitions.v[1].partition_index, 3);
    CHECK_EQ_INT(v7->topics.v[0].partitions.v[1].committed_offset, 300);
    CHECK_EQ_INT(v7->topics.v[0].partitions.v[1].committed_leader_epoch, 3);
    const struct kmsg_offset_fetch_response *v8 = fetch_two_groups_v8(fx, "solo", "other");
    CHECK(v8 != NULL);
    CHECK_EQ_INT(v8->groups.n, 2);
    const struct kmsg_offset_fetch_response_group *g0 = &v8->groups.v[0], *g1 = &v8->groups.v[1];
    /* the all-topics group of the v8 answer is the v7 answer in the v8 layout */
    CHECK_EQ_INT(g0->error_code, 0);
    CHECK_EQ_INT(g0->topics.n, 1);
    CHECK_EQ_INT(g0->topics.v[0].partitions.n, 2);
    for (int32_t j = 0; j < 2; j++) {
        const struct kmsg_offset_fetch_response_partition *a = &v7->topics.v[0].partitions.v[j];
        const struct kmsg_offset_fetch_response_partitions *b = &g0->topics.v[0].partitions.v[j];
        CHECK_EQ_INT(b->partition_index, a->partition_index);
        CHECK_EQ_INT(b->committed_offset, a->committed_offset);
        CHECK_EQ_INT(b->committed_leader_epoch, a->committed_leader_epoch);
        CHECK_EQ_INT(b->error_code, a->error_code);
    }
    CHECK_EQ_INT(g1->error_code, 0);
    CHECK_EQ_INT(g1->topics.n, 1);
    CHECK_EQ_INT(g1->topics.v[0].partitions.n, 2);
    CHECK_EQ_INT(g1->topics.v[0].partitions.v[0].partition_index, 1);
    CHECK_EQ_INT(g1->topics.v[0].partitions.v[0].committed_offset, 11);
    CHECK_EQ_INT(g1->topics.v[0].partitions.v[1].partition_index, 2);
    CHECK_EQ_INT(g1->topics.v[0].partitions.v[1].committed_offset, -1);
}

TEST(test_shard_reload_keeps_offsets_and_members)
{
    FIXTURE(fx);
    struct tmember a, b;
    member_init(&a, "sub-a");
    member_init(&b, "sub-b");
    b.instance = "instance-b";
    CHECK_EQ_INT(group_form_pair(fx, "g10", &a, &b), 0);
    CHECK_EQ_INT(commit(fx, "g10", a.id, a.generation, 2, 555), 0);
    CHECK_EQ_INT(commit(fx, "solo", "", -1, 1, 77), 0);
    /* Leadership moves away: the shard unloads and answers NOT_COORDINATOR. */
    atomic_store(&fx->leader, false);
    group_coordinator_resign(fx->gc, 0);
    CHECK(heartbeat_until(fx, "g10", &a, KAFKA_ERR_NOT_COORDINATOR));
    int64_t off;
    CHECK_EQ_INT(fetch(fx, "g10", 2, &off), KAFKA_ERR_NOT_COORDINATOR);
    /* It comes back: the shard replays its log. */
    atomic_store(&fx->leader, true);
    group_coordinator_prepare(fx->gc, 0);
    CHECK(shard_wait_loaded(fx));
    CHECK_EQ_INT(fetch(fx, "g10", 2, &off), 0);
    CHECK_EQ_INT(off, 555);
    CHECK_EQ_INT(fetch(fx, "solo", 1, &off), 0);
    CHECK_EQ_INT(off, 77);
    /* The members, their generation and assignments came back with the group record. */
    CHECK_EQ_INT(heartbeat(fx, "g10", &a), 0);
    CHECK_EQ_INT(heartbeat(fx, "g10", &b), 0);
    CHECK(sync_got(sync_start(fx, "g10", &b, b.generation, 0, NULL, NULL), "assign-b"));
    CHECK_EQ_INT(commit(fx, "g10", b.id, b.generation, 2, 556), 0);
    CHECK_EQ_INT(fetch(fx, "g10", 2, &off), 0);
    CHECK_EQ_INT(off, 556);
}

TEST_MAIN
