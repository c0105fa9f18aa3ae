/*
 * Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete and offsets.retention.minutes
 * expiry. Each group keeps its offsets in an array sorted by (topic, partition). An entry is
 * `valid` once a commit for it is durable; `pending` counts commits appended but not yet
 * flushed (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT for those).
 * Owner worker only (coordinator.h).
 */
#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "group/consumer_group.h"
#include "group/group_internal.h"
#include "proto/gen/consumer_protocol_subscription.h"
#include "proto/gen/errors.h"
#include "proto/gen/offset_commit.h"
#include "proto/gen/offset_delete.h"
#include "proto/gen/offset_fetch.h"

/* A response array of n zeroed elements of `size` in arena a (n < 0, a null request array,
 * counts as 0): *count = n, or NULL and 0. */
static void *response_array_new(struct arena *a, int32_t n, size_t size, int32_t *count)
{
    size_t k = n > 0 ? (size_t)n : 0;
    void *v = arena_calloc(a, k + 1, size);
    *count = v ? (int32_t)k : 0;
    return v;
}

static int entry_cmp(const struct offset_entry *e, const char *topic, size_t tlen, int32_t part)
{
    size_t el = strlen(e->topic);
    int c = memcmp(e->topic, topic, el < tlen ? el : tlen);
    if (c == 0 && el != tlen)
        c = el < tlen ? -1 : 1;
    if (c == 0)
        c = e->partition < part ? -1 : (e->partition > part ? 1 : 0);
    return c;
}

struct offset_entry *group_offset_find(struct group *g, const char *topic, size_t tlen,
                                       int32_t partition, bool create)
{
    size_t lo = 0, hi = g->noffsets;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = entry_cmp(&g->offsets[mid], topic, tlen, partition);
        if (c == 0)
            return &g->offsets[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!create)
        return NULL;
    if (g->noffsets == g->offsets_cap) {
        size_t cap = g->offsets_cap ? g->offsets_cap * 2 : 8;
        struct offset_entry *n = realloc(g->offsets, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        g->offsets = n;
        g->offsets_cap = cap;
    }
    char *t = kstr_strdup((struct kstr){topic, (int32_t)tlen});
    if (t == NULL)
        return NULL;
    memmove(&g->offsets[lo + 1], &g->offsets[lo], (g->noffsets - lo) * sizeof(*g->offsets));
    g->noffsets++;
    struct offset_entry *e = &g->offsets[lo];
    memset(e, 0, sizeof(*e));
    e->topic = t;
    e->partition = partition;
    e->offset = -1;
    e->leader_epoch = -1;
    e->metadata.len = -1;
    return e;
}

void group_offset_remove(struct group *g, struct offset_entry *e)
{
    size_t i = (size_t)(e - g->offsets);
    free(e->topic);
    gstr_free(&e->metadata);
    memmove(&g->offsets[i], &g->offsets[i + 1], (g->noffsets - i - 1) * sizeof(*g->offsets));
    g->noffsets--;
}

/* ---- OffsetCommit ---- */

struct commit_item {
    char *topic;
    int32_t partition;
    int64_t offset;
    int32_t leader_epoch;
    struct gstr metadata;
    int64_t ts;
    struct kmsg_offset_commit_response_partition *pr;
};

struct commit_state {
    struct group_call *c;
    struct shard *s;
    char *group;
    size_t n;
    struct commit_item *items;
};

static void commit_state_free(struct commit_state *st)
{
    for (size_t i = 0; i < st->n; i++) {
        free(st->items[i].topic);
        gstr_free(&st->items[i].metadata);
    }
    free(st->items);
    free(st->group);
    free(st);
}

/* Kafka's GroupMetadataManager mapping of a failed append: the partition's leadership moved
 * (not leader, or lost while waiting for the ISR) -> NOT_COORDINATOR, so the client looks the
 * coordinator up again; anything else -> COORDINATOR_NOT_AVAILABLE. */
static int16_t commit_error_of(int err)
{
    return err == -ENOENT || err == -ENOTCONN ? KAFKA_ERR_NOT_COORDINATOR
                                              : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
}

static void commit_durable(void *arg, int err)
{
    struct commit_state *st = arg;
    struct group *g = group_find(st->s, (struct kstr){st->group, (int32_t)strlen(st->group)});
    if (g == NULL && err == 0)
        g = group_create(st->s, (struct kstr){st->group, (int32_t)strlen(st->group)});
    for (size_t i = 0; i < st->n; i++) {
        struct commit_item *it = &st->items[i];
        struct offset_entry *e =
            g ? group_offset_find(g, it->topic, strlen(it->topic), it->partition, err == 0) : NULL;
        if (e && e->pending > 0)
            e->pending--;
        if (err != 0) {
            it->pr->error_code = commit_error_of(err);
            if (e && !e->valid && e->pending == 0)
                group_offset_remove(g, e);
            continue;
        }
        if (e == NULL)
            continue;
        e->offset = it->offset;
        e->leader_epoch = it->leader_epoch;
        gstr_set(&e->metadata, it->metadata.p, it->metadata.len);
        e->commit_ts = it->ts;
        e->valid = true;
    }
    if (err != 0)
        logger_warn("group", "offset commit for group %s failed: %d", st->group, err);
    struct group_call *c = st->c;
    commit_state_free(st);
    call_finish(c);
}

/* Kafka's broker answers UNKNOWN_TOPIC_OR_PARTITION for partitions its metadata lacks before
 * the coordinator sees the commit. */
static bool commit_partition_exists(struct group_call *c, struct kstr topic, int32_t partition)
{
    const struct group_env *env = &c->gc->env;
    return env->partition_exists == NULL || env->partition_exists(env->ctx, topic, partition);
}

/* Kafka's doCommitOffsets checks, in its order. */
static int16_t commit_check(struct shard *s, struct group_call *c, struct group **gp)
{
    const struct kmsg_offset_commit_request *req = c->req;
    int32_t gen = c->api_version >= 1 ? req->generation_id_or_member_epoch : -1;
    struct kstr member = c->api_version >= 1 ? req->member_id : KSTR_LIT("");
    struct kstr instance = c->api_version >= 7 ? req->group_instance_id : KSTR_NULL;
    struct group *g = group_find(s, req->group_id);
    *gp = NULL;
    if (c->trusted && g != NULL && g->state != GS_DEAD) {
        *gp = g;
        return 0;
    }
    if (g == NULL) {
        if (gen >= 0 && !c->trusted)
            return KAFKA_ERR_ILLEGAL_GENERATION;
        g = group_create(s, req->group_id);
        if (g == NULL)
            return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        *gp = g;
        return 0;
    }
    if (g->state == GS_DEAD)
        return KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    if (g->cg != NULL) { /* a consumer group (KIP-848): member epochs */
        int16_t err = cg_check_commit(g, member, gen, false, c->api_version);
        *gp = err ? NULL : g;
        return err;
    }
    if (instance.len >= 0) {
        struct member *bi = group_member_by_instance(g, instance);
        if (bi == NULL)
            return KAFKA_ERR_UNKNOWN_MEMBER_ID;
        if (!gstr_eq(&bi->id, member))
            return KAFKA_ERR_FENCED_INSTANCE_ID;
    }
    if (gen < 0 && g->state == GS_EMPTY) {
        *gp = g;
        return 0;
    }
    if (g->state == GS_COMPLETING)
        return KAFKA_ERR_REBALANCE_IN_PROGRESS;
    struct member *m = group_find_member(g, member);
    if (m == NULL)
        return KAFKA_ERR_UNKNOWN_MEMBER_ID;
    if (gen != g->generation)
        return KAFKA_ERR_ILLEGAL_GENERATION;
    member_schedule(m);
    *gp = g;
    return 0;
}

void group_handle_offset_commit(struct shard *s, struct group_call *c)
{
    const struct kmsg_offset_commit_request *req = c->req;
    struct kmsg_offset_commit_response *resp = c->resp;
    resp->topics.v =
        response_array_new(c->arena, req->topics.n, sizeof(*resp->topics.v), &resp->topics.n);
    if (resp->topics.v == NULL) {
        call_finish(c); /* the caller closes on an empty response? answer with nothing */
        return;
    }
    int32_t nt = resp->topics.n;
    size_t total = 0;
    for (int32_t i = 0; i < nt; i++) {
        const struct kmsg_offset_commit_request_topic *t = &req->topics.v[i];
        struct kmsg_offset_commit_response_topic *rt = &resp->topics.v[i];
        kmsg_offset_commit_response_topic_init(rt);
        rt->name = t->name;
        rt->partitions.v = response_array_new(c->arena, t->partitions.n, sizeof(*rt->partitions.v),
                                              &rt->partitions.n);
        for (int32_t j = 0; j < rt->partitions.n; j++) {
            struct kmsg_offset_commit_response_partition *pr = &rt->partitions.v[j];
            kmsg_offset_commit_response_partition_init(pr);
            pr->partition_index = t->partitions.v[j].partition_index;
            if (!commit_partition_exists(c, t->name, pr->partition_index))
                pr->error_code = KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            else
                total++;
        }
    }
    if (total == 0) {
        /* As Kafka: nothing left to commit once unknown partitions are answered, so the
         * group is neither checked nor created. */
        call_finish(c);
        return;
    }
    int16_t err = shard_error(s);
    struct group *g = NULL;
    if (err == 0)
        err = commit_check(s, c, &g);
    struct commit_state *st = NULL;
    if (err == 0 && total > 0) {
        st = calloc(1, sizeof(*st));
        if (st)
            st->items = calloc(total, sizeof(*st->items));
        if (st == NULL || st->items == NULL || (st->group = strdup(g->id.p)) == NULL) {
            if (st)
                commit_state_free(st);
            st = NULL;
            err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        }
    }
    if (err != 0) {
        for (int32_t i = 0; i < resp->topics.n; i++)
            for (int32_t j = 0; j < resp->topics.v[i].partitions.n; j++)
                if (resp->topics.v[i].partitions.v[j].error_code == 0)
                    resp->topics.v[i].partitions.v[j].error_code = err;
        call_finish(c);
        return;
    }
    if (st == NULL) {
        call_finish(c);
        return;
    }
    st->c = c;
    st->s = s;
    int64_t now = group_now_ms();
    struct offsets_kv *kvs = calloc(total, sizeof(*kvs));
    size_t nkv = 0;
    for (int32_t i = 0; kvs && i < nt; i++) {
        const struct kmsg_offset_commit_request_topic *t = &req->topics.v[i];
        char *topic = kstr_strdup(t->name);
        for (int32_t j = 0; topic && j < resp->topics.v[i].partitions.n; j++) {
            const struct kmsg_offset_commit_request_partition *p = &t->partitions.v[j];
            struct kmsg_offset_commit_response_partition *pr = &resp->topics.v[i].partitions.v[j];
            struct kstr md = p->committed_metadata.len >= 0 ? p->committed_metadata : KSTR_LIT("");
            if (pr->error_code != 0)
                continue; /* unknown topic or partition: nothing stored */
            if (md.len > c->gc->cfg.max_metadata_bytes) {
                pr->error_code = KAFKA_ERR_OFFSET_METADATA_TOO_LARGE;
                continue;
            }
            struct commit_item *it = &st->items[st->n];
            it->topic = strdup(topic);
            it->partition = p->partition_index;
            it->offset = p->committed_offset;
            it->leader_epoch = c->api_version >= 6 ? p->committed_leader_epoch : -1;
            it->metadata.len = -1;
            gstr_from_kstr(&it->metadata, md);
            it->ts = now;
            it->pr = pr;
            if (it->topic == NULL)
                continue;
            struct kmsg_offset_commit_value v;
            kmsg_offset_commit_value_init(&v);
            v.offset = it->offset;
            v.leader_epoch = it->leader_epoch;
            v.metadata = md;
            v.commit_timestamp = now;
            if (offsets_encode_commit(&kvs[nkv], g->id.p, topic, it->partition, &v) != 0) {
                free(it->topic);
                gstr_free(&it->metadata);
                pr->error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
                continue;
            }
            nkv++;
            st->n++;
            struct offset_entry *e =
                group_offset_find(g, topic, strlen(topic), it->partition, true);
            if (e)
                e->pending++;
        }
        free(topic);
    }
    int rc = nkv > 0 ? shard_append(s, kvs, nkv, commit_durable, st) : -ENODATA;
    for (size_t i = 0; i < nkv; i++)
        offsets_kv_free(&kvs[i]);
    free(kvs);
    if (rc != 0) {
        if (rc != -ENODATA)
            commit_durable(st, rc); /* answers with errors, undoes pending */
        else {
            commit_state_free(st);
            call_finish(c);
        }
    }
}

/* ---- OffsetFetch ----
 * Both forms answer through fetch_fill_group: v8+ once per group of its groups array, v0-7 for
 * its single group, whose request and response fetch_legacy converts to and from the v8+
 * layout (the same fields under other struct names). */

/* Answers one partition of topic: its durable commit, -1 when there is none, or `err`. */
static void fetch_one(struct group_call *c, struct group *g, struct kstr topic, int32_t part,
                      bool require_stable, int16_t err,
                      struct kmsg_offset_fetch_response_partitions *p)
{
    kmsg_offset_fetch_response_partitions_init(p);
    p->partition_index = part;
    p->committed_offset = -1;
    p->committed_leader_epoch = -1;
    p->metadata = KSTR_LIT("");
    p->error_code = err;
    if (err || g == NULL)
        return;
    const struct group_env *env = &c->gc->env;
    if (require_stable && env->txn_offset_pending &&
        env->txn_offset_pending(env->ctx, gstr_kstr(&g->id), topic, part)) {
        p->error_code = KAFKA_ERR_UNSTABLE_OFFSET_COMMIT;
        return;
    }
    struct offset_entry *e = group_offset_find(g, topic.ptr ? topic.ptr : "",
                                               topic.len > 0 ? (size_t)topic.len : 0, part, false);
    if (e == NULL)
        return;
    if (require_stable && e->pending > 0) {
        p->error_code = KAFKA_ERR_UNSTABLE_OFFSET_COMMIT;
        return;
    }
    if (!e->valid)
        return;
    p->committed_offset = e->offset;
    p->committed_leader_epoch = e->leader_epoch;
    p->metadata = arena_kstr(c->arena, &e->metadata);
    if (p->metadata.len < 0)
        p->metadata = KSTR_LIT("");
}

/* Topics of g with a durable commit (runs of one topic name in the sorted offsets). */
static size_t fetch_count_topics(struct group *g)
{
    size_t n = 0;
    const char *prev = NULL;
    for (size_t i = 0; g && i < g->noffsets; i++) {
        if (!g->offsets[i].valid)
            continue;
        if (prev == NULL || strcmp(prev, g->offsets[i].topic) != 0)
            n++;
        prev = g->offsets[i].topic;
    }
    return n;
}

/* Fills rt with the durable commits of g's offsets [from, to), all of one topic. */
static void fetch_fill_topic_run(struct group_call *c, struct group *g, size_t from, size_t to,
                                 bool stable, struct kmsg_offset_fetch_response_topics *rt)
{
    size_t np = 0;
    for (size_t k = from; k < to; k++)
        np += g->offsets[k].valid ? 1 : 0;
    const char *topic = g->offsets[from].topic;
    kmsg_offset_fetch_response_topics_init(rt);
    rt->name = arena_kstr_of(c->arena, (struct kstr){topic, (int32_t)strlen(topic)});
    rt->partitions.v = arena_calloc(c->arena, np + 1, sizeof(*rt->partitions.v));
    rt->partitions.n = 0;
    for (size_t k = from; rt->partitions.v && k < to; k++)
        if (g->offsets[k].valid)
            fetch_one(c, g, rt->name, g->offsets[k].partition, stable, 0,
                      &rt->partitions.v[rt->partitions.n++]);
}

/* Fills out with every topic and partition of g (may be NULL) that has a durable commit. */
static void fetch_fill_all(struct group_call *c, struct group *g, bool stable,
                           struct kmsg_offset_fetch_response_topics_array *out)
{
    out->n = 0;
    out->v = arena_calloc(c->arena, fetch_count_topics(g) + 1, sizeof(*out->v));
    size_t i = 0;
    while (out->v && g && i < g->noffsets) {
        if (!g->offsets[i].valid) {
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < g->noffsets && strcmp(g->offsets[j].topic, g->offsets[i].topic) == 0)
            j++;
        fetch_fill_topic_run(c, g, i, j, stable, &out->v[out->n++]);
        i = j;
    }
}

/* Fills out with the partitions `topics` names, in its order, each answered `err` if set. */
static void fetch_fill_listed(struct group_call *c, struct group *g,
                              const struct kmsg_offset_fetch_request_topics_array *topics,
                              bool stable, int16_t err,
                              struct kmsg_offset_fetch_response_topics_array *out)
{
    out->v = response_array_new(c->arena, topics->n, sizeof(*out->v), &out->n);
    for (int32_t i = 0; i < out->n; i++) {
        const struct kmsg_offset_fetch_request_topics *t = &topics->v[i];
        struct kmsg_offset_fetch_response_topics *rt = &out->v[i];
        kmsg_offset_fetch_response_topics_init(rt);
        rt->name = t->name;
        rt->partitions.v = response_array_new(c->arena, t->partition_indexes.n,
                                              sizeof(*rt->partitions.v), &rt->partitions.n);
        for (int32_t j = 0; j < rt->partitions.n; j++)
            fetch_one(c, g, t->name, t->partition_indexes.v[j], stable, err, &rt->partitions.v[j]);
    }
}

/* Fills og with group_id's committed offsets for `topics` (n < 0: every topic with one). */
static void fetch_fill_group(struct shard *s, struct group_call *c, struct kstr group_id,
                             const struct kmsg_offset_fetch_request_topics_array *topics,
                             bool stable, const struct kmsg_offset_fetch_request_group *rg,
                             struct kmsg_offset_fetch_response_group *og)
{
    kmsg_offset_fetch_response_group_init(og);
    og->group_id = group_id;
    int16_t err = shard_error(s);
    struct group *g = err ? NULL : group_find(s, group_id);
    /* v9+ from a consumer group member (KIP-848): its member id and epoch are checked. */
    if (g != NULL && g->cg != NULL && rg != NULL && c->api_version >= 9 &&
        (err = cg_check_fetch(g, rg->member_id, rg->member_epoch)) != 0)
        g = NULL;
    og->error_code = err;
    if (topics->n < 0)
        fetch_fill_all(c, g, stable, &og->topics);
    else
        fetch_fill_listed(c, g, topics, stable, err, &og->topics);
}

/* The v0-7 topic list in the v8+ layout (names and partition arrays shared, not copied). */
static struct kmsg_offset_fetch_request_topics_array
fetch_topics_from_legacy(struct arena *a, const struct kmsg_offset_fetch_request_topic_array *in)
{
    struct kmsg_offset_fetch_request_topics_array out = {in->n, NULL};
    if (in->n <= 0)
        return out;
    out.v = arena_calloc(a, (size_t)in->n, sizeof(*out.v));
    if (out.v == NULL) {
        out.n = 0;
        return out;
    }
    for (int32_t i = 0; i < in->n; i++) {
        kmsg_offset_fetch_request_topics_init(&out.v[i]);
        out.v[i].name = in->v[i].name;
        out.v[i].partition_indexes = in->v[i].partition_indexes;
    }
    return out;
}

/* Copies the v8+ per-topic answer into the v0-7 layout (arrays in arena a). */
static void fetch_topics_to_legacy(struct arena *a,
                                   const struct kmsg_offset_fetch_response_topics_array *in,
                                   struct kmsg_offset_fetch_response_topic_array *out)
{
    out->v = response_array_new(a, in->n, sizeof(*out->v), &out->n);
    for (int32_t i = 0; i < out->n; i++) {
        const struct kmsg_offset_fetch_response_topics *t = &in->v[i];
        struct kmsg_offset_fetch_response_topic *rt = &out->v[i];
        kmsg_offset_fetch_response_topic_init(rt);
        rt->name = t->name;
        rt->partitions.v =
            response_array_new(a, t->partitions.n, sizeof(*rt->partitions.v), &rt->partitions.n);
        for (int32_t j = 0; j < rt->partitions.n; j++) {
            const struct kmsg_offset_fetch_response_partitions *p = &t->partitions.v[j];
            struct kmsg_offset_fetch_response_partition *rp = &rt->partitions.v[j];
            kmsg_offset_fetch_response_partition_init(rp);
            rp->partition_index = p->partition_index;
            rp->committed_offset = p->committed_offset;
            rp->committed_leader_epoch = p->committed_leader_epoch;
            rp->metadata = p->metadata;
            rp->error_code = p->error_code;
        }
    }
}

/* Answers v0-7: the one-group case of the v8+ answer. */
static void fetch_legacy(struct shard *s, struct group_call *c)
{
    const struct kmsg_offset_fetch_request *req = c->req;
    struct kmsg_offset_fetch_response *resp = c->resp;
    struct kmsg_offset_fetch_request_topics_array topics =
        fetch_topics_from_legacy(c->arena, &req->topics);
    struct kmsg_offset_fetch_response_group og;
    fetch_fill_group(s, c, req->group_id, &topics, c->api_version >= 7 && req->require_stable, NULL,
                     &og);
    if (c->api_version >= 2)
        resp->error_code = og.error_code;
    fetch_topics_to_legacy(c->arena, &og.topics, &resp->topics);
    call_finish(c);
}

/* Answers group `c->step` of a v8+ request, then moves on to the next group's owner. */
static void fetch_group(struct shard *s, struct group_call *c)
{
    const struct kmsg_offset_fetch_request *req = c->req;
    struct kmsg_offset_fetch_response *resp = c->resp;
    if (c->step == 0) {
        resp->groups.v =
            response_array_new(c->arena, req->groups.n, sizeof(*resp->groups.v), &resp->groups.n);
        if (resp->groups.n == 0) {
            call_finish(c);
            return;
        }
    }
    const struct kmsg_offset_fetch_request_group *rg = &req->groups.v[c->step];
    fetch_fill_group(s, c, rg->group_id, &rg->topics, req->require_stable, rg,
                     &resp->groups.v[c->step]);
    c->step++;
    call_continue(c);
}

void group_handle_offset_fetch(struct shard *s, struct group_call *c)
{
    if (c->api_version < 8)
        fetch_legacy(s, c);
    else
        fetch_group(s, c);
}

/* ---- OffsetDelete ---- */

/* True when a member of consumer group g subscribes to topic (its subscription metadata for the
 * selected protocol lists it). */
static bool group_subscribed(struct group *g, struct kstr topic, struct arena *scratch)
{
    if (!gstr_eq(&g->protocol_type, KSTR_LIT("consumer")))
        return false;
    for (struct member *m = g->members; m; m = m->next) {
        for (int32_t i = 0; i < m->nprotocols; i++) {
            if (!gstr_eq_str(&m->protocols[i].name, &g->protocol_name))
                continue;
            const struct gstr *md = &m->protocols[i].metadata;
            if (md->len < 2)
                continue;
            int16_t ver = (int16_t)(((uint8_t)md->p[0] << 8) | (uint8_t)md->p[1]);
            if (ver > KMSG_CONSUMER_PROTOCOL_SUBSCRIPTION_MAX_VERSION)
                ver = KMSG_CONSUMER_PROTOCOL_SUBSCRIPTION_MAX_VERSION;
            struct kreader r;
            kr_init(&r, md->p + 2, (size_t)md->len - 2, scratch);
            struct kmsg_consumer_protocol_subscription sub;
            kmsg_consumer_protocol_subscription_init(&sub);
            if (ver < 0 || kmsg_consumer_protocol_subscription_decode(&r, ver, &sub) != 0)
                continue;
            for (int32_t k = 0; k < sub.topics.n; k++)
                if (sub.topics.v[k].len == topic.len &&
                    memcmp(sub.topics.v[k].ptr, topic.ptr, (size_t)topic.len) == 0)
                    return true;
        }
    }
    return false;
}

struct delete_state {
    struct group_call *c;
    struct shard *s;
    char *group;
    size_t n;
    struct {
        char *topic;
        int32_t partition;
    } * items;
};

static void offset_delete_durable(void *arg, int err)
{
    struct delete_state *st = arg;
    struct kmsg_offset_delete_response *resp = st->c->resp;
    struct group *g = group_find(st->s, (struct kstr){st->group, (int32_t)strlen(st->group)});
    for (size_t i = 0; i < st->n; i++) {
        if (err == 0 && g) {
            struct offset_entry *e = group_offset_find(
                g, st->items[i].topic, strlen(st->items[i].topic), st->items[i].partition, false);
            if (e)
                group_offset_remove(g, e);
        }
        free(st->items[i].topic);
    }
    if (err != 0)
        resp->error_code = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
    struct group_call *c = st->c;
    free(st->items);
    free(st->group);
    free(st);
    call_finish(c);
}

void group_handle_offset_delete(struct shard *s, struct group_call *c)
{
    const struct kmsg_offset_delete_request *req = c->req;
    struct kmsg_offset_delete_response *resp = c->resp;
    int16_t err = shard_error(s);
    struct group *g = err ? NULL : group_find(s, req->group_id);
    if (err == 0 && (g == NULL || g->state == GS_DEAD))
        err = KAFKA_ERR_GROUP_ID_NOT_FOUND;
    if (err == 0 && g->nmembers > 0 && !gstr_eq(&g->protocol_type, KSTR_LIT("consumer")))
        err = KAFKA_ERR_NON_EMPTY_GROUP;
    resp->error_code = err;
    resp->topics.n = 0;
    if (err) {
        call_finish(c);
        return;
    }
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->topics.v = response_array_new(c->arena, nt, sizeof(*resp->topics.v), &resp->topics.n);
    size_t total = 0;
    for (int32_t i = 0; i < nt; i++)
        total += req->topics.v[i].partitions.n > 0 ? (size_t)req->topics.v[i].partitions.n : 0;
    struct delete_state *st = calloc(1, sizeof(*st));
    struct offsets_kv *kvs = calloc(total + 1, sizeof(*kvs));
    if (st)
        st->items = calloc(total + 1, sizeof(*st->items));
    if (st == NULL || kvs == NULL || st->items == NULL || (st->group = strdup(g->id.p)) == NULL) {
        if (st)
            free(st->items);
        free(st);
        free(kvs);
        resp->error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        call_finish(c);
        return;
    }
    struct arena scratch;
    arena_init(&scratch, 0);
    for (int32_t i = 0; i < resp->topics.n; i++) {
        const struct kmsg_offset_delete_request_topic *t = &req->topics.v[i];
        struct kmsg_offset_delete_response_topic *rt = &resp->topics.v[i];
        kmsg_offset_delete_response_topic_init(rt);
        rt->name = t->name;
        rt->partitions.v = response_array_new(c->arena, t->partitions.n, sizeof(*rt->partitions.v),
                                              &rt->partitions.n);
        bool subscribed = group_subscribed(g, t->name, &scratch);
        for (int32_t j = 0; j < rt->partitions.n; j++) {
            struct kmsg_offset_delete_response_partition *p = &rt->partitions.v[j];
            kmsg_offset_delete_response_partition_init(p);
            p->partition_index = t->partitions.v[j].partition_index;
            if (subscribed) {
                p->error_code = KAFKA_ERR_GROUP_SUBSCRIBED_TO_TOPIC;
                continue;
            }
            struct offset_entry *e = group_offset_find(g, t->name.ptr ? t->name.ptr : "",
                                                       t->name.len > 0 ? (size_t)t->name.len : 0,
                                                       p->partition_index, false);
            if (e == NULL || !e->valid)
                continue;
            if (offsets_encode_commit(&kvs[st->n], g->id.p, e->topic, e->partition, NULL) != 0)
                continue;
            st->items[st->n].topic = strdup(e->topic);
            st->items[st->n].partition = e->partition;
            st->n++;
        }
    }
    arena_free(&scratch);
    st->c = c;
    st->s = s;
    int rc = st->n > 0 ? shard_append(s, kvs, st->n, offset_delete_durable, st) : -ENODATA;
    for (size_t i = 0; i < st->n; i++)
        offsets_kv_free(&kvs[i]);
    free(kvs);
    if (rc != 0)
        offset_delete_durable(st, rc == -ENODATA ? 0 : rc);
}

/* ---- retention ---- */

static void expire_noop(void *arg, int err)
{
    (void)arg;
    if (err)
        logger_warn("group", "writing offset expiry tombstones failed: %d", err);
}

/* offsets.retention.minutes: offsets of a group without members expire `retention` after the
 * group became empty (or, for standalone commits, after the commit); an empty group left
 * without offsets is deleted. Tombstones go to the log; compaction removes the old records. */
void shard_expire_offsets(struct shard *s)
{
    int64_t now = group_now_ms();
    int64_t ret = s->gc->cfg.offsets_retention_ms;
    for (size_t b = 0; b < s->nbuckets; b++) {
        for (struct group *g = s->buckets[b], *next; g; g = next) {
            next = g->next;
            if (g->state != GS_EMPTY || group_consumer_members(g) > 0)
                continue;
            size_t n = 0;
            struct offsets_kv *kvs = calloc(g->noffsets + 1, sizeof(*kvs));
            if (kvs == NULL)
                continue;
            for (size_t i = 0; i < g->noffsets;) {
                struct offset_entry *e = &g->offsets[i];
                int64_t base = g->protocol_type.len >= 0 && g->state_ts > e->commit_ts
                                   ? g->state_ts
                                   : e->commit_ts;
                if (e->valid && e->pending == 0 && base + ret <= now &&
                    offsets_encode_commit(&kvs[n], g->id.p, e->topic, e->partition, NULL) == 0) {
                    n++;
                    group_offset_remove(g, e);
                    continue;
                }
                i++;
            }
            bool drop = g->noffsets == 0 && g->state_ts + ret <= now;
            size_t nexpired = n;
            struct cg_records r = {.v = kvs, .n = n, .cap = g->noffsets + 1};
            struct offsets_kv kv;
            if (drop && g->cg != NULL)
                cg_records_group_tombstones(&r, g);
            else if (drop && group_encode_metadata(&kv, NULL, g->id.p) == 0)
                cg_records_push(&r, &kv);
            if (r.n > 0 && r.err == 0) {
                logger_info("group", "group %s: expired %zu offsets%s", g->id.p, nexpired,
                            drop ? " and the group" : "");
                shard_append(s, r.v, r.n, expire_noop, NULL);
            }
            cg_records_free(&r);
            if (drop)
                group_remove(g);
        }
    }
}
