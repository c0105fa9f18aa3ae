/*
 * Group APIs: FindCoordinator (key 10) here, for groups and (key type 1) transactional ids;
 * JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, OffsetDelete,
 * DescribeGroups, ListGroups, DeleteGroups, ConsumerGroupHeartbeat and ConsumerGroupDescribe
 * (KIP-848) are decoded here and handed to the group coordinator
 * (src/group/coordinator.h), which runs them on the worker owning the group's shard and calls back;
 * the reply is then posted to the request's own worker. __consumer_offsets is created on the first
 * FindCoordinator.
 */
#include "broker/groups.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/group_acls.h"
#include "broker/forwarder.h"
#include "broker/partition_append.h"
#include "broker/commit_wait.h"
#include "broker/handlers.h"
#include "broker/partition.h"
#include "broker/partition_registry.h"
#include "broker/producer_append.h"
#include "broker/transactions.h"
#include "broker/txn_offset_commit.h"
#include "group/coordinator.h"
#include "group/offsets_log.h"
#include "txn/state_record.h"
#include "proto/gen/consumer_group_describe.h"
#include "proto/gen/consumer_group_heartbeat.h"
#include "proto/gen/delete_groups.h"
#include "proto/gen/describe_groups.h"
#include "proto/gen/errors.h"
#include "proto/gen/find_coordinator.h"
#include "proto/gen/heartbeat.h"
#include "proto/gen/join_group.h"
#include "proto/gen/leave_group.h"
#include "proto/gen/list_groups.h"
#include "proto/gen/offset_commit.h"
#include "proto/gen/offset_delete.h"
#include "proto/gen/offset_fetch.h"
#include "proto/gen/sync_group.h"
#include "storage/flusher.h"

struct broker_groups {
    struct group_coordinator *gc;
    atomic_bool creating; /* a create of __consumer_offsets is in flight */
};

/* ---- environment for the coordinator ---- */

static struct net_worker *env_worker_for(void *ctx, int32_t shard)
{
    struct broker *b = ctx;
    if (b->net == NULL)
        return NULL;
    int n = net_server_worker_count(b->net);
    return n > 0 ? net_server_worker(b->net, shard % n) : NULL;
}

static int32_t env_partition_count(void *ctx)
{
    struct broker *b = ctx;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, OFFSETS_TOPIC);
    int32_t n = t ? (int32_t)t->n_partitions : 0;
    metadata_image_release(img);
    return n;
}

static bool is_leader(struct broker *b, int32_t shard)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, OFFSETS_TOPIC);
    bool ok = t && shard >= 0 && (uint32_t)shard < t->n_partitions &&
              t->partitions[shard].leader == b->cfg.node_id;
    metadata_image_release(img);
    return ok;
}

static bool env_is_leader(void *ctx, int32_t shard)
{
    return is_leader(ctx, shard);
}

static struct log *env_log_get(void *ctx, int32_t shard, void **ref)
{
    struct broker *b = ctx;
    if (!is_leader(b, shard))
        return NULL;
    struct partition *p = partition_get(b->parts, OFFSETS_TOPIC, shard);
    if (p == NULL)
        return NULL;
    *ref = p;
    return p->log;
}

static void env_log_put(void *ref)
{
    partition_put(ref);
}

static int env_log_append(void *ref, uint8_t *batch, size_t len, struct log_append_info *info)
{
    struct partition *p = ref;
    struct partition_append_result ar;
    int rc = partition_append_batch(p, batch, len, false, clock_wall_ms(), NULL, &ar);
    *info = ar.info;
    if (rc == 0 && ar.kafka_error == KAFKA_ERR_NOT_LEADER_OR_FOLLOWER)
        return -ENOENT; /* the leadership moved since log_get: NOT_COORDINATOR */
    /* The coordinator's batches carry no producer id: no other refusal, no duplicate. */
    assert(rc != 0 || (ar.kafka_error == 0 && !ar.duplicate));
    return rc;
}

static int env_wait_committed(void *ref, int64_t end, void (*cb)(void *arg, int err), void *arg)
{
    return partition_wait_committed(ref, end, cb, arg);
}

static bool env_partition_exists(void *ctx, struct kstr topic, int32_t partition)
{
    struct broker *b = ctx;
    char name[256];
    if (topic.len <= 0 || (size_t)topic.len >= sizeof(name))
        return false; /* Kafka's topic names are at most 249 characters */
    memcpy(name, topic.ptr, (size_t)topic.len);
    name[topic.len] = '\0';
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, name);
    bool ok = t && partition >= 0 && (uint32_t)partition < t->n_partitions;
    metadata_image_release(img);
    return ok;
}

static void env_txn_pending(void *ctx, int32_t shard, int64_t pid, struct kstr group,
                            struct kstr topic, int32_t partition,
                            const struct kmsg_offset_commit_value *v)
{
    txn_offsets_restore(ctx, shard, pid, group, topic, partition, v->offset, v->leader_epoch,
                        v->metadata);
}

static void env_txn_pending_clear(void *ctx, int32_t shard)
{
    txn_offsets_forget_shard(ctx, shard);
}

static bool env_txn_offset_pending(void *ctx, struct kstr group, struct kstr topic,
                                   int32_t partition)
{
    return txn_offsets_pending(ctx, group, topic, partition);
}

static int32_t env_topic_lookup(void *ctx, const char *name, uint8_t id[16])
{
    struct broker *b = ctx;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, name);
    int32_t n = -1;
    if (t != NULL) {
        memcpy(id, t->id, 16);
        n = (int32_t)t->n_partitions;
    }
    metadata_image_release(img);
    return n;
}

static void env_topic_each(void *ctx, void (*cb)(void *arg, const char *name), void *arg)
{
    struct broker *b = ctx;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    for (size_t i = 0; i < img->n_topics; i++) {
        const char *name = img->topics_by_name[i]->name;
        if (strcmp(name, OFFSETS_TOPIC) != 0 && strcmp(name, TXN_STATE_TOPIC) != 0)
            cb(arg, name);
    }
    metadata_image_release(img);
}

int groups_start(struct broker *b)
{
    struct broker_groups *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -ENOMEM;
    struct group_config cfg = {
        .initial_rebalance_delay_ms = b->cfg.group_initial_rebalance_delay_ms,
        .min_session_timeout_ms = b->cfg.group_min_session_timeout_ms,
        .max_session_timeout_ms = b->cfg.group_max_session_timeout_ms,
        .offsets_retention_ms = b->cfg.offsets_retention_minutes * 60000,
        .retention_check_interval_ms = 600000,
        .max_metadata_bytes = 4096,
        .max_shards =
            b->cfg.offsets_topic_num_partitions > 1000 ? b->cfg.offsets_topic_num_partitions : 1000,
        .consumer_protocol_enabled =
            strstr(b->cfg.group_coordinator_rebalance_protocols, "consumer") != NULL,
        .consumer_heartbeat_interval_ms = b->cfg.group_consumer_heartbeat_interval_ms,
        .consumer_session_timeout_ms = b->cfg.group_consumer_session_timeout_ms,
        .consumer_max_size = b->cfg.group_consumer_max_size,
    };
    int policy = config_migration_policy(b->cfg.group_consumer_migration_policy);
    cfg.consumer_upgrade_enabled = policy > 0 && (policy & CONFIG_MIGRATION_UPGRADE);
    cfg.consumer_downgrade_enabled = policy > 0 && (policy & CONFIG_MIGRATION_DOWNGRADE);
    snprintf(cfg.consumer_assignors, sizeof(cfg.consumer_assignors), "%s",
             b->cfg.group_consumer_assignors);
    struct group_env env = {
        .ctx = b,
        .worker_for = env_worker_for,
        .partition_count = env_partition_count,
        .log_get = env_log_get,
        .log_put = env_log_put,
        .log_append = env_log_append,
        .wait_committed = env_wait_committed,
        .is_leader = env_is_leader,
        .partition_exists = env_partition_exists,
        .txn_pending = env_txn_pending,
        .txn_pending_clear = env_txn_pending_clear,
        .txn_offset_pending = env_txn_offset_pending,
        .topic_lookup = env_topic_lookup,
        .topic_each = env_topic_each,
    };
    g->gc = group_coordinator_create(&cfg, &env);
    if (g->gc == NULL) {
        free(g);
        return -ENOMEM;
    }
    __atomic_store_n(&b->groups, g, __ATOMIC_RELEASE); /* the image listener reads it */
    return 0;
}

void groups_on_leader_change(struct broker *b, int32_t partition, bool was_leader, bool is_leader)
{
    struct broker_groups *g = __atomic_load_n(&b->groups, __ATOMIC_ACQUIRE);
    if (g == NULL)
        return; /* not started yet: shards load when first needed */
    if (was_leader)
        group_coordinator_resign(g->gc, partition); /* replays afterwards if still leader */
    else if (is_leader)
        group_coordinator_prepare(g->gc, partition);
}

struct group_coordinator *groups_coordinator(struct broker *b)
{
    return b->groups->gc;
}

void groups_shutdown(struct broker *b)
{
    if (b->groups)
        group_coordinator_shutdown(b->groups->gc);
}

void groups_stop(struct broker *b)
{
    if (b->groups == NULL)
        return;
    group_coordinator_destroy(b->groups->gc);
    free(b->groups);
    b->groups = NULL;
}

/* ---- __consumer_offsets creation ---- */

static void offsets_topic_created(void *arg, const struct controller_result *res)
{
    struct broker *b = arg;
    int16_t err = res->error_code;
    if (err == 0 && res->n_topics > 0)
        err = res->topics[0].error_code;
    if (err != 0 && err != KAFKA_ERR_TOPIC_ALREADY_EXISTS)
        logger_warn("group", "cannot create %s: error %d", OFFSETS_TOPIC, err);
    else if (err == 0)
        logger_info("group", "created %s", OFFSETS_TOPIC);
    atomic_store(&b->groups->creating, false);
}

static void offsets_topic_create(struct broker *b, const struct metadata_image *img)
{
    if (atomic_exchange(&b->groups->creating, true))
        return;
    int16_t rf = b->cfg.offsets_topic_replication_factor;
    int16_t live = (int16_t)metadata_image_usable_brokers(img);
    if (rf > live && broker_is_multi_node(b)) {
        /* Kafka's behaviour: no __consumer_offsets until enough brokers are there
         * (FindCoordinator answers COORDINATOR_NOT_AVAILABLE meanwhile). */
        logger_warn("group", "%s needs %d brokers (offsets.topic.replication.factor), %d are up",
                    OFFSETS_TOPIC, rf, live);
        atomic_store(&b->groups->creating, false);
        return;
    }
    live = live > 0 ? live : 1;
    if (rf > live) {
        logger_warn("group",
                    "offsets.topic.replication.factor=%d but only %d brokers are alive: creating "
                    "%s with replication factor %d",
                    rf, live, OFFSETS_TOPIC, live);
        rf = live;
    }
    char segment_bytes[32];
    snprintf(segment_bytes, sizeof(segment_bytes), "%d", b->cfg.offsets_topic_segment_bytes);
    struct metadata_config_entry configs[] = {
        {"cleanup.policy", "compact"},
        {"compression.type", "producer"},
        {"segment.bytes", segment_bytes},
    };
    struct controller_new_topic nt = {
        .name = OFFSETS_TOPIC,
        .num_partitions = b->cfg.offsets_topic_num_partitions,
        .replication_factor = rf,
        .n_configs = 3,
        .configs = configs,
    };
    if (broker_create_topics(b, &nt, 1, false, offsets_topic_created, b) != 0)
        atomic_store(&b->groups->creating, false);
}

/* ---- FindCoordinator ---- */

struct coordinator_answer {
    int16_t error;
    struct kstr message; /* error_message (v1+), null when none */
    int32_t node_id;
    struct kstr host;
    int32_t port;
};

static void find_one(struct broker_req *r, const struct metadata_image *img,
                     const struct metadata_topic *t, int8_t key_type, struct kstr key,
                     struct coordinator_answer *out)
{
    struct broker *b = r->b;
    out->error = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    out->message = KSTR_NULL;
    out->node_id = -1;
    out->host = KSTR_LIT("");
    out->port = -1;
    if (key_type != 0 && key_type != 1) {
        out->error = KAFKA_ERR_INVALID_REQUEST;
        return;
    }
    /* Kafka: DESCRIBE on the group or the transactional id. */
    char *name = broker_authorizer_on(b) ? broker_name(r, key) : NULL;
    if (name != NULL &&
        !broker_authorize(r, img, key_type ? ACL_RESOURCE_TRANSACTIONAL_ID : ACL_RESOURCE_GROUP,
                          name, ACL_OPERATION_DESCRIBE)) {
        out->error = key_type ? KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                              : KAFKA_ERR_GROUP_AUTHORIZATION_FAILED;
        return;
    }
    if (key_type == 1) /* TRANSACTION: the leader of its __transaction_state partition */
        t = metadata_image_topic_by_name(img, TXN_STATE_TOPIC);
    if (t == NULL || t->n_partitions == 0)
        return;
    int32_t shard = group_shard_of(key.ptr, key.len, (int32_t)t->n_partitions);
    int32_t leader = t->partitions[shard].leader;
    if (leader < 0)
        return;
    if (leader == b->cfg.node_id) {
        struct partition *p = partition_get(b->parts, t->name, shard);
        if (p == NULL)
            return; /* not opened yet */
        partition_put(p);
        if (key_type == 1)
            txn_prepare_shard(b, shard);
        else
            group_coordinator_prepare(b->groups->gc, shard);
        out->node_id = b->cfg.node_id;
        out->host = broker_advertised_host(r); /* on the client's listener */
        out->port = broker_advertised_port(r);
        out->error = 0;
        return;
    }
    const struct metadata_broker *mb = metadata_image_broker(img, leader);
    if (mb == NULL)
        return;
    out->node_id = mb->id;
    char *host = arena_strndup(r->arena, mb->host, strlen(mb->host));
    out->host = host ? (struct kstr){host, (int32_t)strlen(host)} : KSTR_LIT("");
    out->port = mb->port;
    out->error = 0;
}

void handle_find_coordinator(struct broker_req *r)
{
    struct kmsg_find_coordinator_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_find_coordinator_request_decode, &req) != 0)
        return;
    struct kmsg_find_coordinator_response resp;
    kmsg_find_coordinator_response_init(&resp);
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    const struct metadata_topic *t = metadata_image_topic_by_name(img, OFFSETS_TOPIC);
    if (t == NULL && req.key_type == 0)
        offsets_topic_create(r->b, img);
    if (req.key_type == 1)
        txn_state_topic_ensure(r->b, img);
    /* Replay every partition this broker leads, so that ListGroups and the next groups find
     * their shards loaded (a no-op once they are). */
    for (uint32_t i = 0; t && i < t->n_partitions; i++)
        if (t->partitions[i].leader == r->b->cfg.node_id)
            group_coordinator_prepare(r->b->groups->gc, (int32_t)i);
    if (r->hdr.api_version < 4) {
        struct coordinator_answer a;
        find_one(r, img, t, req.key_type, req.key, &a);
        resp.error_code = a.error;
        resp.error_message = a.message;
        resp.node_id = a.node_id;
        resp.host = a.host;
        resp.port = a.port;
    } else {
        int32_t n = req.coordinator_keys.n > 0 ? req.coordinator_keys.n : 0;
        resp.coordinators.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp.coordinators.v));
        resp.coordinators.n = resp.coordinators.v ? n : 0;
        for (int32_t i = 0; i < resp.coordinators.n; i++) {
            struct kmsg_find_coordinator_response_coordinator *c = &resp.coordinators.v[i];
            kmsg_find_coordinator_response_coordinator_init(c);
            struct coordinator_answer a;
            find_one(r, img, t, req.key_type, req.coordinator_keys.v[i], &a);
            c->key = req.coordinator_keys.v[i];
            c->node_id = a.node_id;
            c->host = a.host;
            c->port = a.port;
            c->error_code = a.error;
            c->error_message = a.message;
        }
    }
    metadata_image_release(img);
    broker_reply(r, (kproto_encode_fn)kmsg_find_coordinator_response_encode, &resp);
}

/* ---- the calls handed to the coordinator ---- */

struct group_req {
    struct group_call call;
    struct broker_req *r;
    kproto_encode_fn enc;
    struct group_acl_state acl; /* what the ACL checks took out of the request */
};

static void group_req_reply(void *arg)
{
    struct group_req *gr = arg;
    if (broker_authorizer_on(gr->r->b))
        group_acl_after(gr->r, gr->call.req, gr->call.resp, &gr->acl);
    broker_reply(gr->r, gr->enc, gr->call.resp);
}

/* Coordinator thread: hand the finished call to the request's worker. */
static void group_req_done(struct group_call *c)
{
    struct group_req *gr = c->user;
    if (net_worker_post(net_request_worker(gr->r->nr), group_req_reply, gr) != 0)
        logger_warn("group", "dropping a group response during shutdown");
}

/* "/1.2.3.4" from "1.2.3.4:5678" or "[::1]:5678", as Kafka reports client hosts. */
static const char *client_host(struct broker_req *r)
{
    const char *peer = net_conn_peer(r->nr->conn);
    size_t len = strlen(peer);
    const char *colon = strrchr(peer, ':');
    if (colon)
        len = (size_t)(colon - peer);
    if (len >= 2 && peer[0] == '[' && peer[len - 1] == ']') {
        peer++;
        len -= 2;
    }
    char *out = arena_alloc(r->arena, len + 2);
    if (out == NULL)
        return "";
    out[0] = '/';
    memcpy(out + 1, peer, len);
    out[len + 1] = '\0';
    return out;
}

static void group_submit(struct broker_req *r, kproto_decode_fn dec, size_t req_size, void *resp,
                         kproto_encode_fn enc)
{
    void *req = arena_calloc(r->arena, 1, req_size);
    struct group_req *gr = arena_calloc(r->arena, 1, sizeof(*gr));
    if (req == NULL || gr == NULL || resp == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    if (broker_decode(r, dec, req) != 0)
        return;
    if (broker_authorizer_on(r->b) && group_acl_before(r, req, resp, &gr->acl)) {
        broker_reply(r, enc, resp);
        return;
    }
    gr->r = r;
    gr->enc = enc;
    gr->call.api_key = r->hdr.api_key;
    gr->call.api_version = r->hdr.api_version;
    gr->call.req = req;
    gr->call.resp = resp;
    gr->call.arena = r->arena;
    gr->call.client_id = r->hdr.client_id;
    gr->call.client_host = client_host(r);
    gr->call.done = group_req_done;
    gr->call.user = gr;
    group_coordinator_submit(r->b->groups->gc, &gr->call);
}

#define GROUP_HANDLER(fn, name)                                                                    \
    void fn(struct broker_req *r)                                                                  \
    {                                                                                              \
        struct kmsg_##name##_response *resp = arena_calloc(r->arena, 1, sizeof(*resp));            \
        if (resp)                                                                                  \
            kmsg_##name##_response_init(resp);                                                     \
        group_submit(r, (kproto_decode_fn)kmsg_##name##_request_decode,                            \
                     sizeof(struct kmsg_##name##_request), resp,                                   \
                     (kproto_encode_fn)kmsg_##name##_response_encode);                             \
    }

GROUP_HANDLER(handle_join_group, join_group)
GROUP_HANDLER(handle_sync_group, sync_group)
GROUP_HANDLER(handle_heartbeat, heartbeat)
GROUP_HANDLER(handle_leave_group, leave_group)
GROUP_HANDLER(handle_offset_commit, offset_commit)
GROUP_HANDLER(handle_offset_fetch, offset_fetch)
GROUP_HANDLER(handle_offset_delete, offset_delete)
GROUP_HANDLER(handle_describe_groups, describe_groups)
GROUP_HANDLER(handle_list_groups, list_groups)
GROUP_HANDLER(handle_delete_groups, delete_groups)
GROUP_HANDLER(handle_consumer_group_heartbeat, consumer_group_heartbeat)
GROUP_HANDLER(handle_consumer_group_describe, consumer_group_describe)
