/*
 * Group coordinator core: the shard's table of groups, the group metadata record, appending
 * records durably, routing of calls to their owner worker, shutdown. Loading a shard from its
 * __consumer_offsets partition is in shard_load.c, following its leadership in
 * shard_leadership.c, the owned strings in gstr.c. The protocol logic is in join_group.c and
 * membership.c (JoinGroup/SyncGroup/Heartbeat/LeaveGroup), offsets.c (OffsetCommit/Fetch/
 * Delete, retention) and admin.c (Describe/List/DeleteGroups). See coordinator.h for the
 * thread model.
 */
#include "group/group_internal.h"
#include "group/consumer_group.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/logger.h"
#include "proto/gen/api_table.h"
#include "proto/gen/consumer_group_describe.h"
#include "proto/gen/consumer_group_heartbeat.h"
#include "proto/gen/delete_groups.h"
#include "proto/gen/describe_groups.h"
#include "proto/gen/errors.h"
#include "proto/gen/heartbeat.h"
#include "proto/gen/join_group.h"
#include "proto/gen/leave_group.h"
#include "proto/gen/offset_commit.h"
#include "proto/gen/offset_delete.h"
#include "proto/gen/offset_fetch.h"
#include "proto/gen/sync_group.h"
#include "proto/gen/txn_offset_commit.h"
#include "storage/flusher.h"

int64_t group_now_ms(void)
{
    return clock_wall_ms();
}

int32_t group_shard_of(const char *group, int32_t len, int32_t n)
{
    return offsets_partition_for(group ? group : "", len > 0 ? (size_t)len : 0, n);
}

/* ---- groups in a shard ---- */

/* FNV-1a of the group id. */
static uint32_t group_hash(struct kstr id)
{
    uint32_t h = 2166136261u;
    for (int32_t i = 0; i < id.len; i++)
        h = (h ^ (uint8_t)id.ptr[i]) * 16777619u;
    return h;
}

static size_t bucket_of(const struct shard *s, struct kstr id)
{
    assert(s->nbuckets > 0 && (s->nbuckets & (s->nbuckets - 1)) == 0);
    return group_hash(id) & (s->nbuckets - 1);
}

/* Doubles the shard's table (or creates it). 0 or -ENOMEM (the old table stays usable). */
static int shard_grow_table(struct shard *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : SHARD_MIN_BUCKETS;
    struct group **b = calloc(n, sizeof(*b));
    if (b == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < s->nbuckets; i++) {
        while (s->buckets[i]) {
            struct group *g = s->buckets[i];
            s->buckets[i] = g->next;
            size_t j = group_hash(gstr_kstr(&g->id)) & (n - 1);
            g->next = b[j];
            b[j] = g;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
    return 0;
}

struct group *group_find(struct shard *s, struct kstr id)
{
    if (id.len < 0 || s->nbuckets == 0)
        return NULL;
    for (struct group *g = s->buckets[bucket_of(s, id)]; g; g = g->next)
        if (gstr_eq(&g->id, id))
            return g;
    return NULL;
}

struct group *group_create(struct shard *s, struct kstr id)
{
    if (s->ngroups >= s->nbuckets && shard_grow_table(s) != 0 && s->nbuckets == 0)
        return NULL;
    struct group *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->s = s;
    g->id.len = g->protocol_type.len = g->protocol_name.len = g->leader.len = -1;
    gstr_from_kstr(&g->id, id);
    if (g->id.p == NULL) {
        free(g);
        return NULL;
    }
    g->state = GS_EMPTY;
    g->state_ts = group_now_ms();
    size_t b = bucket_of(s, id);
    g->next = s->buckets[b];
    s->buckets[b] = g;
    s->ngroups++;
    return g;
}

void group_free(struct group *g, bool on_owner)
{
    while (g->members) {
        struct member *m = g->members;
        g->members = m->next;
        if (on_owner && g->s->worker)
            net_timer_cancel(g->s->worker, &m->session_timer);
        member_free(m);
    }
    while (g->pending) {
        struct pending_member *p = g->pending;
        g->pending = p->next;
        free(p->id);
        free(p);
    }
    if (on_owner && g->s->worker)
        net_timer_cancel(g->s->worker, &g->join_timer);
    for (size_t i = 0; i < g->noffsets; i++) {
        free(g->offsets[i].topic);
        gstr_free(&g->offsets[i].metadata);
    }
    free(g->offsets);
    cg_free(g, on_owner);
    gstr_free(&g->id);
    gstr_free(&g->protocol_type);
    gstr_free(&g->protocol_name);
    gstr_free(&g->leader);
    free(g);
}

void group_remove(struct group *g)
{
    struct shard *s = g->s;
    struct group **pp = &s->buckets[bucket_of(s, gstr_kstr(&g->id))];
    while (*pp && *pp != g)
        pp = &(*pp)->next;
    assert(*pp == g); /* every group is in the bucket of its id */
    *pp = g->next;
    s->ngroups--;
    group_free(g, true);
}

struct member *group_find_member(struct group *g, struct kstr member_id)
{
    for (struct member *m = g->members; m; m = m->next)
        if (gstr_eq(&m->id, member_id))
            return m;
    return NULL;
}

struct member *group_member_by_instance(struct group *g, struct kstr instance_id)
{
    if (instance_id.len < 0)
        return NULL;
    for (struct member *m = g->members; m; m = m->next)
        if (gstr_eq(&m->instance_id, instance_id))
            return m;
    return NULL;
}

const char *group_state_name(enum group_state st)
{
    switch (st) {
    case GS_EMPTY:
        return "Empty";
    case GS_PREPARING:
        return "PreparingRebalance";
    case GS_COMPLETING:
        return "CompletingRebalance";
    case GS_STABLE:
        return "Stable";
    case GS_DEAD:
        return "Dead";
    }
    return "Dead";
}

/* ---- group metadata record ---- */

int group_encode_metadata(struct offsets_kv *kv, const struct group *g, const char *group_id)
{
    if (g == NULL)
        return offsets_encode_group(kv, group_id, NULL);
    struct kmsg_group_metadata_value v;
    kmsg_group_metadata_value_init(&v);
    v.protocol_type = g->protocol_type.len >= 0 ? gstr_kstr(&g->protocol_type) : KSTR_LIT("");
    v.generation = g->generation;
    v.protocol = gstr_kstr(&g->protocol_name);
    v.leader = gstr_kstr(&g->leader);
    v.current_state_timestamp = g->state_ts;
    struct kmsg_group_metadata_value_member_metadata *mm =
        calloc((size_t)g->nmembers + 1, sizeof(*mm));
    if (mm == NULL)
        return -ENOMEM;
    int32_t n = 0;
    for (struct member *m = g->members; m; m = m->next, n++) {
        kmsg_group_metadata_value_member_metadata_init(&mm[n]);
        mm[n].member_id = gstr_kstr(&m->id);
        mm[n].group_instance_id = gstr_kstr(&m->instance_id);
        mm[n].client_id = m->client_id.len >= 0 ? gstr_kstr(&m->client_id) : KSTR_LIT("");
        mm[n].client_host = m->client_host.len >= 0 ? gstr_kstr(&m->client_host) : KSTR_LIT("");
        mm[n].rebalance_timeout = m->rebalance_timeout;
        mm[n].session_timeout = m->session_timeout;
        mm[n].subscription = (struct kbytes){(const uint8_t *)"", 0};
        for (int32_t i = 0; i < m->nprotocols; i++)
            if (gstr_eq_str(&m->protocols[i].name, &g->protocol_name))
                mm[n].subscription = gstr_kbytes(&m->protocols[i].metadata);
        mm[n].assignment = m->assignment.len >= 0 ? gstr_kbytes(&m->assignment)
                                                  : (struct kbytes){(const uint8_t *)"", 0};
    }
    v.members.n = n;
    v.members.v = mm;
    int rc = offsets_encode_group(kv, group_id, &v);
    free(mm);
    return rc;
}

/* ---- durable appends ---- */

struct append_wait {
    struct shard *s;
    void (*cb)(void *arg, int err);
    void *arg;
    int err;
};

static void append_done_on_owner(void *arg)
{
    struct append_wait *w = arg;
    struct shard *s = w->s;
    w->cb(w->arg, w->err);
    free(w);
    assert(s->appends_in_flight > 0);
    s->appends_in_flight--;
    shard_unload_continue(s);
}

static void append_flushed(void *arg, int err)
{
    struct append_wait *w = arg;
    struct group_coordinator *gc = w->s->gc;
    w->err = err;
    pthread_mutex_lock(&gc->appends_mu);
    if (gc->closed || net_worker_post(w->s->worker, append_done_on_owner, w) != 0) {
        logger_warn("group", "dropping a commit completion during shutdown");
        free(w);
    }
    gc->appends_outstanding--;
    pthread_cond_broadcast(&gc->appends_cond);
    pthread_mutex_unlock(&gc->appends_mu);
}

int shard_append(struct shard *s, const struct offsets_kv *kvs, size_t n,
                 void (*cb)(void *arg, int err), void *arg)
{
    struct group_coordinator *gc = s->gc;
    uint8_t *batch = NULL;
    size_t len = 0;
    int rc = offsets_build_batch(kvs, n, group_now_ms(), &batch, &len);
    if (rc != 0)
        return rc;
    void *ref = NULL;
    struct log *log = gc->env.log_get(gc->env.ctx, s->index, &ref);
    if (log == NULL) {
        free(batch);
        return -ENOENT;
    }
    struct log_append_info info;
    rc = gc->env.log_append(ref, batch, len, &info);
    free(batch);
    if (rc == 0) {
        struct append_wait *w = calloc(1, sizeof(*w));
        if (w == NULL) {
            rc = -ENOMEM;
        } else {
            w->s = s;
            w->cb = cb;
            w->arg = arg;
            pthread_mutex_lock(&gc->appends_mu);
            gc->appends_outstanding++;
            pthread_mutex_unlock(&gc->appends_mu);
            s->appends_in_flight++;
            rc = gc->env.wait_committed
                     ? gc->env.wait_committed(ref, info.last_offset + 1, append_flushed, w)
                     : log_flush_request(log, info.last_offset + 1, append_flushed, w);
            if (rc != 0) {
                pthread_mutex_lock(&gc->appends_mu);
                gc->appends_outstanding--;
                pthread_mutex_unlock(&gc->appends_mu);
                s->appends_in_flight--;
                free(w);
            }
        }
    } else {
        logger_warn("group", "append to %s-%d failed: %d", OFFSETS_TOPIC, s->index, rc);
    }
    gc->env.log_put(ref);
    return rc;
}

/* ---- routing ---- */

void call_finish(struct group_call *c)
{
    c->done(c);
}

static struct kstr call_group_at(struct group_call *c, int32_t step, bool *multi, bool *end)
{
    *multi = false;
    *end = false;
    switch (c->api_key) {
    case KPROTO_API_JOIN_GROUP:
        return ((const struct kmsg_join_group_request *)c->req)->group_id;
    case KPROTO_API_SYNC_GROUP:
        return ((const struct kmsg_sync_group_request *)c->req)->group_id;
    case KPROTO_API_HEARTBEAT:
        return ((const struct kmsg_heartbeat_request *)c->req)->group_id;
    case KPROTO_API_LEAVE_GROUP:
        return ((const struct kmsg_leave_group_request *)c->req)->group_id;
    case KPROTO_API_OFFSET_COMMIT:
        return ((const struct kmsg_offset_commit_request *)c->req)->group_id;
    case KPROTO_API_OFFSET_DELETE:
        return ((const struct kmsg_offset_delete_request *)c->req)->group_id;
    case KPROTO_API_TXN_OFFSET_COMMIT:
        return ((const struct kmsg_txn_offset_commit_request *)c->req)->group_id;
    case KPROTO_API_CONSUMER_GROUP_HEARTBEAT:
        return ((const struct kmsg_consumer_group_heartbeat_request *)c->req)->group_id;
    case KPROTO_API_CONSUMER_GROUP_DESCRIBE: {
        const struct kmsg_consumer_group_describe_request *r = c->req;
        *multi = true;
        if (step >= r->group_ids.n) {
            *end = true;
            return KSTR_NULL;
        }
        return r->group_ids.v[step];
    }
    case KPROTO_API_OFFSET_FETCH: {
        const struct kmsg_offset_fetch_request *r = c->req;
        if (c->api_version < 8)
            return r->group_id;
        *multi = true;
        if (step >= r->groups.n) {
            *end = true;
            return KSTR_NULL;
        }
        return r->groups.v[step].group_id;
    }
    case KPROTO_API_DESCRIBE_GROUPS: {
        const struct kmsg_describe_groups_request *r = c->req;
        *multi = true;
        if (step >= r->groups.n) {
            *end = true;
            return KSTR_NULL;
        }
        return r->groups.v[step];
    }
    case KPROTO_API_DELETE_GROUPS: {
        const struct kmsg_delete_groups_request *r = c->req;
        *multi = true;
        if (step >= r->groups_names.n) {
            *end = true;
            return KSTR_NULL;
        }
        return r->groups_names.v[step];
    }
    default:
        *end = true;
        return KSTR_NULL;
    }
}

static void call_run(void *arg)
{
    struct group_call *c = arg;
    struct group_coordinator *gc = c->gc;
    struct shard *s = c->shard >= 0 && c->shard < gc->nshards ? &gc->shards[c->shard] : NULL;
    /* Leadership moved without the image listener telling us yet: stop using the state. */
    if (s && atomic_load(&s->state) == SHARD_LOADED && gc->env.is_leader &&
        !gc->env.is_leader(gc->env.ctx, s->index))
        shard_unload_begin(s);
    if (s)
        shard_ensure_loading(gc, s);
    switch (c->api_key) {
    case KPROTO_API_JOIN_GROUP:
        group_handle_join(s, c);
        break;
    case KPROTO_API_SYNC_GROUP:
        group_handle_sync(s, c);
        break;
    case KPROTO_API_HEARTBEAT:
        group_handle_heartbeat(s, c);
        break;
    case KPROTO_API_LEAVE_GROUP:
        group_handle_leave(s, c);
        break;
    case KPROTO_API_OFFSET_COMMIT:
        group_handle_offset_commit(s, c);
        break;
    case KPROTO_API_OFFSET_FETCH:
        group_handle_offset_fetch(s, c);
        break;
    case KPROTO_API_OFFSET_DELETE:
        group_handle_offset_delete(s, c);
        break;
    case KPROTO_API_TXN_OFFSET_COMMIT:
        group_handle_txn_commit_check(s, c);
        break;
    case KPROTO_API_DESCRIBE_GROUPS:
        group_handle_describe(s, c);
        break;
    case KPROTO_API_LIST_GROUPS:
        group_handle_list(s, c);
        break;
    case KPROTO_API_DELETE_GROUPS:
        group_handle_delete(s, c);
        break;
    case KPROTO_API_CONSUMER_GROUP_HEARTBEAT:
        group_handle_consumer_heartbeat(s, c);
        break;
    case KPROTO_API_CONSUMER_GROUP_DESCRIBE:
        group_handle_consumer_describe(s, c);
        break;
    default:
        call_finish(c);
        break;
    }
}

/* Runs the call's current step on the right worker (posting when that is another worker or
 * when we may be on a foreign thread). */
void call_continue(struct group_call *c)
{
    struct group_coordinator *gc = c->gc;
    int32_t n = gc->env.partition_count(gc->env.ctx);
    if (n > gc->nshards)
        n = gc->nshards;
    if (c->api_key == KPROTO_API_LIST_GROUPS) {
        if (c->step >= n) {
            if (c->step == 0) { /* no topic yet: no groups */
                c->shard = -1;
                call_run(c);
                return;
            }
            call_finish(c);
            return;
        }
        c->shard = c->step;
    } else {
        bool multi, end;
        struct kstr id = call_group_at(c, c->step, &multi, &end);
        if (end) {
            call_finish(c);
            return;
        }
        c->shard = n > 0 ? group_shard_of(id.ptr, id.len, n) : -1;
    }
    struct net_worker *w = c->shard >= 0 ? gc->env.worker_for(gc->env.ctx, c->shard) : NULL;
    if (w == NULL || net_worker_post(w, call_run, c) != 0) {
        c->shard = -1; /* answered as "no coordinator" */
        call_run(c);
    }
}

void group_coordinator_submit(struct group_coordinator *gc, struct group_call *c)
{
    c->gc = gc;
    c->step = 0;
    c->shard = -1;
    c->outstanding = 0;
    if (atomic_load(&gc->stopping)) {
        call_run(c); /* shard -1: every handler answers an error */
        return;
    }
    call_continue(c);
}

/* ---- lifecycle ---- */

struct group_coordinator *group_coordinator_create(const struct group_config *cfg,
                                                   const struct group_env *env)
{
    struct group_coordinator *gc = calloc(1, sizeof(*gc));
    if (gc == NULL)
        return NULL;
    gc->cfg = *cfg;
    if (gc->cfg.retention_check_interval_ms <= 0)
        gc->cfg.retention_check_interval_ms = 600000;
    if (gc->cfg.max_metadata_bytes <= 0)
        gc->cfg.max_metadata_bytes = 4096;
    gc->env = *env;
    gc->nshards = cfg->max_shards > 0 ? cfg->max_shards : 50;
    gc->shards = calloc((size_t)gc->nshards, sizeof(*gc->shards));
    /* destroy waits on appends_cond with a monotonic deadline */
    if (gc->shards == NULL || clock_cond_init_mono(&gc->appends_cond) != 0) {
        free(gc->shards);
        free(gc);
        return NULL;
    }
    pthread_mutex_init(&gc->load_mu, NULL);
    pthread_mutex_init(&gc->appends_mu, NULL);
    for (int32_t i = 0; i < gc->nshards; i++) {
        gc->shards[i].gc = gc;
        gc->shards[i].index = i;
        atomic_init(&gc->shards[i].state, SHARD_UNLOADED);
    }
    return gc;
}

void shard_quiesce(struct shard *s, int16_t err)
{
    net_timer_cancel(s->worker, &s->expiry_timer);
    for (size_t b = 0; b < s->nbuckets; b++)
        for (struct group *g = s->buckets[b]; g; g = g->next) {
            group_fail_parked(g, err);
            net_timer_cancel(s->worker, &g->join_timer);
            for (struct member *m = g->members; m; m = m->next)
                net_timer_cancel(s->worker, &m->session_timer);
            cg_cancel_timers(g);
        }
}

static void shard_shutdown(void *arg)
{
    shard_quiesce(arg, KAFKA_ERR_NOT_COORDINATOR);
}

/*
 * Waits (bounded) for the flusher to hand back the appends in flight while the workers still
 * run their completions, then closes: a later completion is dropped instead of posted, since
 * the network frees its workers next (posting to a freed worker was a use-after-free). Only
 * appends without a waiting caller can start after `stopping` (timer-driven group records),
 * so nothing that answers a client is dropped.
 */
static void appends_drain(struct group_coordinator *gc)
{
    pthread_mutex_lock(&gc->appends_mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (gc->appends_outstanding > 0 &&
           pthread_cond_timedwait(&gc->appends_cond, &gc->appends_mu, &until) == 0) {
    }
    gc->closed = true;
    pthread_mutex_unlock(&gc->appends_mu);
}

void group_coordinator_shutdown(struct group_coordinator *gc)
{
    if (gc == NULL)
        return;
    atomic_store(&gc->stopping, true);
    pthread_mutex_lock(&gc->load_mu);
    /* Loaders post to their worker: let them finish while the workers still run. */
    for (int32_t i = 0; i < gc->nshards; i++) {
        struct shard *s = &gc->shards[i];
        if (s->loader_started) {
            pthread_join(s->loader, NULL);
            s->loader_started = false;
        }
    }
    for (int32_t i = 0; i < gc->nshards; i++) {
        struct shard *s = &gc->shards[i];
        if (atomic_load(&s->state) != SHARD_UNLOADED && s->worker)
            net_worker_post(s->worker, shard_shutdown, s);
    }
    pthread_mutex_unlock(&gc->load_mu);
    appends_drain(gc);
}

void shard_free_groups(struct shard *s)
{
    for (size_t b = 0; b < s->nbuckets; b++) {
        while (s->buckets[b]) {
            struct group *g = s->buckets[b];
            s->buckets[b] = g->next;
            group_free(g, false);
        }
    }
    free(s->buckets);
    s->buckets = NULL;
    s->nbuckets = 0;
    s->ngroups = 0;
}

void group_coordinator_destroy(struct group_coordinator *gc)
{
    if (gc == NULL)
        return;
    atomic_store(&gc->stopping, true);
    /* The flusher still runs: wait (bounded) for it to hand back our appends. */
    pthread_mutex_lock(&gc->appends_mu);
    gc->closed = true;
    struct timespec until = clock_mono_deadline(10000);
    while (gc->appends_outstanding > 0 &&
           pthread_cond_timedwait(&gc->appends_cond, &gc->appends_mu, &until) == 0) {
    }
    int left = gc->appends_outstanding;
    pthread_mutex_unlock(&gc->appends_mu);
    if (left > 0) {
        logger_error("group", "%d appends still waiting for the flusher at shutdown; leaking",
                     left);
        return;
    }
    for (int32_t i = 0; i < gc->nshards; i++) {
        struct shard *s = &gc->shards[i];
        if (s->loader_started)
            pthread_join(s->loader, NULL);
        shard_free_groups(s);
    }
    pthread_mutex_destroy(&gc->load_mu);
    pthread_mutex_destroy(&gc->appends_mu);
    pthread_cond_destroy(&gc->appends_cond);
    free(gc->shards);
    free(gc);
}

bool group_coordinator_shard_loading(struct group_coordinator *gc, int32_t shard)
{
    if (shard < 0 || shard >= gc->nshards)
        return false;
    int st = atomic_load(&gc->shards[shard].state);
    return st == SHARD_LOADING || st == SHARD_UNLOADING;
}

bool group_coordinator_shard_loaded(struct group_coordinator *gc, int32_t shard)
{
    return shard >= 0 && shard < gc->nshards &&
           atomic_load(&gc->shards[shard].state) == SHARD_LOADED;
}

int16_t shard_error(struct shard *s)
{
    if (s == NULL || atomic_load(&s->gc->stopping))
        return KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    switch (atomic_load(&s->state)) {
    case SHARD_LOADED:
        /* Leadership moved away: clients must find the new coordinator. */
        if (s->gc->env.is_leader && !s->gc->env.is_leader(s->gc->env.ctx, s->index))
            return KAFKA_ERR_NOT_COORDINATOR;
        return KAFKA_ERR_NONE;
    case SHARD_LOADING:
        return KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS;
    case SHARD_UNLOADED:
    case SHARD_UNLOADING:
        return KAFKA_ERR_NOT_COORDINATOR;
    default:
        return KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    }
}
