/*
 * The records of KIP-848 consumer groups in __consumer_offsets (consumer_group.h): encoding them
 * as Kafka's GroupCoordinatorRecordHelpers writes them, and replaying them at load as Kafka's
 * GroupMetadataManager.replay does. The newest record of a key wins; a tombstone removes what
 * its key names (a member's subscription tombstone removes the member, the epoch tombstone the
 * group).
 */
#include <assert.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "group/consumer_group.h"
#include "proto/gen/consumer_group_current_member_assignment_key.h"
#include "proto/gen/consumer_group_current_member_assignment_value.h"
#include "proto/gen/consumer_group_member_metadata_key.h"
#include "proto/gen/consumer_group_member_metadata_value.h"
#include "proto/gen/consumer_group_metadata_key.h"
#include "proto/gen/consumer_group_metadata_value.h"
#include "proto/gen/consumer_group_partition_metadata_key.h"
#include "proto/gen/consumer_group_partition_metadata_value.h"
#include "proto/gen/consumer_group_target_assignment_member_key.h"
#include "proto/gen/consumer_group_target_assignment_member_value.h"
#include "proto/gen/consumer_group_target_assignment_metadata_key.h"
#include "proto/gen/consumer_group_target_assignment_metadata_value.h"

/* Key types (the key's version) as Kafka writes them. */
enum {
    CGR_GROUP_EPOCH = 3,
    CGR_PARTITION_METADATA = 4,
    CGR_MEMBER_SUBSCRIPTION = 5,
    CGR_TARGET_EPOCH = 6,
    CGR_TARGET_MEMBER = 7,
    CGR_CURRENT_ASSIGNMENT = 8,
};

/* ConsumerGroupMember.MemberState values in ConsumerGroupCurrentMemberAssignmentValue.State. */
enum { CGR_STATE_STABLE = 0, CGR_STATE_UNREVOKED = 1, CGR_STATE_UNRELEASED = 2 };

/* ---- gathering ---- */

void cg_records_push(struct cg_records *r, struct offsets_kv *kv)
{
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 8;
        struct offsets_kv *nv = realloc(r->v, ncap * sizeof(*nv));
        if (nv == NULL) {
            offsets_kv_free(kv);
            r->err = -ENOMEM;
            return;
        }
        r->v = nv;
        r->cap = ncap;
    }
    r->v[r->n++] = *kv;
}

static void records_add(struct cg_records *r, int16_t key_type, kproto_encode_fn key_enc,
                        const void *key, kproto_encode_fn value_enc, const void *value)
{
    struct offsets_kv kv;
    int rc = offsets_encode_kv(&kv, key_type, key_enc, key, 0, value_enc, value);
    if (rc != 0)
        r->err = rc;
    else
        cg_records_push(r, &kv);
}

void cg_records_free(struct cg_records *r)
{
    for (size_t i = 0; i < r->n; i++)
        offsets_kv_free(&r->v[i]);
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static void persist_done(void *arg, int err)
{
    (void)arg;
    if (err != 0)
        logger_warn("group", "cannot persist consumer group records: %d", err);
}

void cg_records_persist(struct group *g, struct cg_records *r)
{
    if (r->n > 0 && (r->err != 0 || shard_append(g->s, r->v, r->n, persist_done, NULL) != 0))
        logger_warn("group", "cannot persist consumer group %s", g->id.p);
    cg_records_free(r);
}

/* ---- encoding ---- */

/* A tpset grouped by topic (it is sorted by topic id first), in the arena. Kafka's two
 * TopicPartition(s) structs share this layout; each caller copies into its own. */
struct tp_topic {
    struct kuuid id;
    struct karray_int32 parts;
};

static int32_t tpset_by_topic(struct arena *a, const struct cg_tpset *s, struct tp_topic **out)
{
    struct tp_topic *t = arena_calloc(a, (size_t)s->n + 1, sizeof(*t));
    int32_t *parts = arena_calloc(a, (size_t)s->n + 1, sizeof(*parts));
    if (t == NULL || parts == NULL)
        return -1;
    int32_t k = -1;
    for (int32_t i = 0; i < s->n; i++) {
        if (i == 0 || memcmp(s->v[i].topic_id, s->v[i - 1].topic_id, 16) != 0) {
            k++;
            memcpy(t[k].id.b, s->v[i].topic_id, 16);
            t[k].parts.v = &parts[i];
        }
        parts[i] = s->v[i].partition;
        t[k].parts.n++;
    }
    *out = t;
    return k + 1;
}

void cg_records_epoch(struct cg_records *r, const struct group *g)
{
    struct kmsg_consumer_group_metadata_key k = {gstr_kstr(&g->id)};
    struct kmsg_consumer_group_metadata_value v;
    kmsg_consumer_group_metadata_value_init(&v);
    v.epoch = g->cg->group_epoch;
    records_add(r, CGR_GROUP_EPOCH, (kproto_encode_fn)kmsg_consumer_group_metadata_key_encode, &k,
                (kproto_encode_fn)kmsg_consumer_group_metadata_value_encode, &v);
}

void cg_records_partition_metadata(struct cg_records *r, const struct group *g)
{
    const struct cgroup *cg = g->cg;
    struct kmsg_consumer_group_partition_metadata_key k = {gstr_kstr(&g->id)};
    struct kmsg_consumer_group_partition_metadata_value v;
    kmsg_consumer_group_partition_metadata_value_init(&v);
    struct kmsg_consumer_group_partition_metadata_value_topic_metadata *t =
        calloc((size_t)cg->ntopics + 1, sizeof(*t));
    if (t == NULL) {
        r->err = -ENOMEM;
        return;
    }
    int32_t n = 0;
    for (int32_t i = 0; i < cg->ntopics; i++) {
        if (cg->topics[i].nparts < 0) /* Kafka's metadata lists the existing topics only */
            continue;
        kmsg_consumer_group_partition_metadata_value_topic_metadata_init(&t[n]);
        memcpy(t[n].topic_id.b, cg->topics[i].id, 16);
        t[n].topic_name = (struct kstr){cg->topics[i].name, (int32_t)strlen(cg->topics[i].name)};
        t[n].num_partitions = cg->topics[i].nparts;
        t[n].partition_metadata.n = 0; /* no rack information */
        n++;
    }
    v.topics.n = n;
    v.topics.v = t;
    records_add(r, CGR_PARTITION_METADATA,
                (kproto_encode_fn)kmsg_consumer_group_partition_metadata_key_encode, &k,
                (kproto_encode_fn)kmsg_consumer_group_partition_metadata_value_encode, &v);
    free(t);
}

void cg_records_subscription(struct cg_records *r, const struct group *g, const struct cg_member *m)
{
    struct kmsg_consumer_group_member_metadata_key k = {gstr_kstr(&g->id), gstr_kstr(&m->id)};
    struct kmsg_consumer_group_member_metadata_value v;
    kmsg_consumer_group_member_metadata_value_init(&v);
    struct kstr *names = calloc((size_t)m->ntopics + 1, sizeof(*names));
    if (names == NULL) {
        r->err = -ENOMEM;
        return;
    }
    for (int32_t i = 0; i < m->ntopics; i++) /* sorted, as Kafka writes them */
        names[i] = (struct kstr){m->topics[i], (int32_t)strlen(m->topics[i])};
    v.instance_id = gstr_kstr(&m->instance_id);
    v.rack_id = gstr_kstr(&m->rack_id);
    v.client_id = m->client_id.len >= 0 ? gstr_kstr(&m->client_id) : KSTR_LIT("");
    v.client_host = m->client_host.len >= 0 ? gstr_kstr(&m->client_host) : KSTR_LIT("");
    v.subscribed_topic_names = (struct karray_str){m->ntopics, names};
    v.subscribed_topic_regex = m->regex.len > 0 ? gstr_kstr(&m->regex) : KSTR_NULL;
    v.rebalance_timeout_ms = m->rebalance_timeout_ms;
    v.server_assignor = m->assignor.len > 0 ? gstr_kstr(&m->assignor) : KSTR_NULL;
    v.classic_member_metadata = NULL;
    struct kmsg_consumer_group_member_metadata_value_classic_member_metadata cm;
    struct kmsg_consumer_group_member_metadata_value_classic_protocol *cp = NULL;
    if (m->classic) {
        kmsg_consumer_group_member_metadata_value_classic_member_metadata_init(&cm);
        cp = calloc((size_t)m->nclassic_protocols + 1, sizeof(*cp));
        if (cp == NULL) {
            free(names);
            r->err = -ENOMEM;
            return;
        }
        for (int32_t i = 0; i < m->nclassic_protocols; i++) {
            kmsg_consumer_group_member_metadata_value_classic_protocol_init(&cp[i]);
            cp[i].name = gstr_kstr(&m->classic_protocols[i].name);
            cp[i].metadata = m->classic_protocols[i].metadata.len >= 0
                                 ? gstr_kbytes(&m->classic_protocols[i].metadata)
                                 : (struct kbytes){(const uint8_t *)"", 0};
        }
        cm.session_timeout_ms = m->classic_session_ms;
        cm.supported_protocols.n = m->nclassic_protocols;
        cm.supported_protocols.v = cp;
        v.classic_member_metadata = &cm;
    }
    records_add(r, CGR_MEMBER_SUBSCRIPTION,
                (kproto_encode_fn)kmsg_consumer_group_member_metadata_key_encode, &k,
                (kproto_encode_fn)kmsg_consumer_group_member_metadata_value_encode, &v);
    free(cp);
    free(names);
}

void cg_records_target_epoch(struct cg_records *r, const struct group *g)
{
    struct kmsg_consumer_group_target_assignment_metadata_key k = {gstr_kstr(&g->id)};
    struct kmsg_consumer_group_target_assignment_metadata_value v;
    kmsg_consumer_group_target_assignment_metadata_value_init(&v);
    v.assignment_epoch = g->cg->assignment_epoch;
    records_add(r, CGR_TARGET_EPOCH,
                (kproto_encode_fn)kmsg_consumer_group_target_assignment_metadata_key_encode, &k,
                (kproto_encode_fn)kmsg_consumer_group_target_assignment_metadata_value_encode, &v);
}

void cg_records_target(struct cg_records *r, const struct group *g, const struct cg_member *m)
{
    struct kmsg_consumer_group_target_assignment_member_key k = {gstr_kstr(&g->id),
                                                                 gstr_kstr(&m->id)};
    struct kmsg_consumer_group_target_assignment_member_value v;
    kmsg_consumer_group_target_assignment_member_value_init(&v);
    struct arena a;
    arena_init(&a, 0);
    struct tp_topic *t = NULL;
    int32_t n = tpset_by_topic(&a, &m->target, &t);
    struct kmsg_consumer_group_target_assignment_member_value_topic_partition *tp =
        n >= 0 ? arena_calloc(&a, (size_t)n + 1, sizeof(*tp)) : NULL;
    if (tp == NULL) {
        arena_free(&a);
        r->err = -ENOMEM;
        return;
    }
    for (int32_t i = 0; i < n; i++) {
        tp[i].topic_id = t[i].id;
        tp[i].partitions = t[i].parts;
    }
    v.topic_partitions.n = n;
    v.topic_partitions.v = tp;
    records_add(r, CGR_TARGET_MEMBER,
                (kproto_encode_fn)kmsg_consumer_group_target_assignment_member_key_encode, &k,
                (kproto_encode_fn)kmsg_consumer_group_target_assignment_member_value_encode, &v);
    arena_free(&a);
}

static int8_t state_value(enum cg_member_state st)
{
    switch (st) {
    case CGM_STABLE:
        return CGR_STATE_STABLE;
    case CGM_UNREVOKED:
        return CGR_STATE_UNREVOKED;
    case CGM_UNRELEASED:
        return CGR_STATE_UNRELEASED;
    }
    return CGR_STATE_STABLE;
}

/* Copies grouped partitions into the current-assignment value's array (arena). */
static int current_parts(
    struct arena *a, const struct cg_tpset *s,
    struct kmsg_consumer_group_current_member_assignment_value_topic_partitions_array *out)
{
    struct tp_topic *t = NULL;
    int32_t n = tpset_by_topic(a, s, &t);
    out->v = n >= 0 ? arena_calloc(a, (size_t)n + 1, sizeof(*out->v)) : NULL;
    if (out->v == NULL)
        return -ENOMEM;
    for (int32_t i = 0; i < n; i++) {
        out->v[i].topic_id = t[i].id;
        out->v[i].partitions = t[i].parts;
    }
    out->n = n;
    return 0;
}

void cg_records_current(struct cg_records *r, const struct group *g, const struct cg_member *m)
{
    struct kmsg_consumer_group_current_member_assignment_key k = {gstr_kstr(&g->id),
                                                                  gstr_kstr(&m->id)};
    struct kmsg_consumer_group_current_member_assignment_value v;
    kmsg_consumer_group_current_member_assignment_value_init(&v);
    v.member_epoch = m->epoch;
    v.previous_member_epoch = m->previous_epoch;
    v.state = state_value(m->state);
    struct arena a;
    arena_init(&a, 0);
    if (current_parts(&a, &m->assigned, &v.assigned_partitions) != 0 ||
        current_parts(&a, &m->revoking, &v.partitions_pending_revocation) != 0) {
        arena_free(&a);
        r->err = -ENOMEM;
        return;
    }
    records_add(r, CGR_CURRENT_ASSIGNMENT,
                (kproto_encode_fn)kmsg_consumer_group_current_member_assignment_key_encode, &k,
                (kproto_encode_fn)kmsg_consumer_group_current_member_assignment_value_encode, &v);
    arena_free(&a);
}

void cg_records_member_tombstones(struct cg_records *r, const struct group *g,
                                  const struct gstr *member_id)
{
    struct kmsg_consumer_group_current_member_assignment_key ck = {gstr_kstr(&g->id),
                                                                   gstr_kstr(member_id)};
    records_add(r, CGR_CURRENT_ASSIGNMENT,
                (kproto_encode_fn)kmsg_consumer_group_current_member_assignment_key_encode, &ck,
                NULL, NULL);
    struct kmsg_consumer_group_target_assignment_member_key tk = {gstr_kstr(&g->id),
                                                                  gstr_kstr(member_id)};
    records_add(r, CGR_TARGET_MEMBER,
                (kproto_encode_fn)kmsg_consumer_group_target_assignment_member_key_encode, &tk,
                NULL, NULL);
    struct kmsg_consumer_group_member_metadata_key mk = {gstr_kstr(&g->id), gstr_kstr(member_id)};
    records_add(r, CGR_MEMBER_SUBSCRIPTION,
                (kproto_encode_fn)kmsg_consumer_group_member_metadata_key_encode, &mk, NULL, NULL);
}

void cg_records_group_tombstones(struct cg_records *r, const struct group *g)
{
    const struct cgroup *cg = g->cg;
    struct kstr gid = gstr_kstr(&g->id);
    for (const struct cg_member *m = cg->members; m; m = m->next) {
        struct kmsg_consumer_group_current_member_assignment_key k = {gid, gstr_kstr(&m->id)};
        records_add(r, CGR_CURRENT_ASSIGNMENT,
                    (kproto_encode_fn)kmsg_consumer_group_current_member_assignment_key_encode, &k,
                    NULL, NULL);
    }
    for (const struct cg_member *m = cg->members; m; m = m->next) {
        struct kmsg_consumer_group_target_assignment_member_key k = {gid, gstr_kstr(&m->id)};
        records_add(r, CGR_TARGET_MEMBER,
                    (kproto_encode_fn)kmsg_consumer_group_target_assignment_member_key_encode, &k,
                    NULL, NULL);
    }
    struct kmsg_consumer_group_target_assignment_metadata_key tk = {gid};
    records_add(r, CGR_TARGET_EPOCH,
                (kproto_encode_fn)kmsg_consumer_group_target_assignment_metadata_key_encode, &tk,
                NULL, NULL);
    for (const struct cg_member *m = cg->members; m; m = m->next) {
        struct kmsg_consumer_group_member_metadata_key k = {gid, gstr_kstr(&m->id)};
        records_add(r, CGR_MEMBER_SUBSCRIPTION,
                    (kproto_encode_fn)kmsg_consumer_group_member_metadata_key_encode, &k, NULL,
                    NULL);
    }
    struct kmsg_consumer_group_partition_metadata_key pk = {gid};
    records_add(r, CGR_PARTITION_METADATA,
                (kproto_encode_fn)kmsg_consumer_group_partition_metadata_key_encode, &pk, NULL,
                NULL);
    struct kmsg_consumer_group_metadata_key ek = {gid};
    records_add(r, CGR_GROUP_EPOCH, (kproto_encode_fn)kmsg_consumer_group_metadata_key_encode, &ek,
                NULL, NULL);
}

/* ---- replay (loader thread) ---- */

/* Adds one topic's partitions to s. */
static int tpset_add_topic(struct cg_tpset *s, const struct kuuid *id,
                           const struct karray_int32 *parts)
{
    for (int32_t j = 0; j < parts->n; j++)
        if (cg_tpset_add(s, id->b, parts->v[j]) != 0)
            return -ENOMEM;
    return 0;
}

static void replay_topics(struct cgroup *cg,
                          const struct kmsg_consumer_group_partition_metadata_value *v)
{
    int32_t n = v ? v->topics.n : 0;
    struct cg_topic *t = calloc((size_t)n + 1, sizeof(*t));
    if (t == NULL)
        return;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        const struct kmsg_consumer_group_partition_metadata_value_topic_metadata *tm =
            &v->topics.v[i];
        if ((t[k].name = kstr_strdup(tm->topic_name)) == NULL)
            continue;
        memcpy(t[k].id, tm->topic_id.b, 16);
        t[k].nparts = tm->num_partitions;
        k++;
    }
    /* cg->topics is sorted by name (cg_refresh_topics compares it element by element). */
    for (int32_t i = 1; i < k; i++)
        for (int32_t j = i; j > 0 && strcmp(t[j - 1].name, t[j].name) > 0; j--) {
            struct cg_topic x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    for (int32_t i = 0; i < cg->ntopics; i++)
        free(cg->topics[i].name);
    free(cg->topics);
    cg->topics = t;
    cg->ntopics = k;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void replay_subscription(struct cg_member *m,
                                const struct kmsg_consumer_group_member_metadata_value *v)
{
    gstr_from_kstr(&m->instance_id, v->instance_id);
    gstr_from_kstr(&m->rack_id, v->rack_id);
    gstr_from_kstr(&m->client_id, v->client_id);
    gstr_from_kstr(&m->client_host, v->client_host);
    gstr_from_kstr(&m->assignor, v->server_assignor);
    m->rebalance_timeout_ms = v->rebalance_timeout_ms;
    for (int32_t i = 0; i < m->ntopics; i++)
        free(m->topics[i]);
    free(m->topics);
    int32_t n = v->subscribed_topic_names.n > 0 ? v->subscribed_topic_names.n : 0;
    m->topics = calloc((size_t)n + 1, sizeof(*m->topics));
    m->ntopics = 0;
    for (int32_t i = 0; m->topics && i < n; i++)
        if ((m->topics[m->ntopics] = kstr_strdup(v->subscribed_topic_names.v[i])) != NULL)
            m->ntopics++;
    if (m->topics)
        qsort(m->topics, (size_t)m->ntopics, sizeof(*m->topics), cmp_str);
    if (m->re_valid)
        regfree(&m->re);
    m->re_valid = false;
    gstr_from_kstr(&m->regex, v->subscribed_topic_regex);
    if (m->regex.len > 0) {
        char *buf = malloc((size_t)m->regex.len + 5);
        if (buf) {
            snprintf(buf, (size_t)m->regex.len + 5, "^(%s)$", m->regex.p);
            m->re_valid = regcomp(&m->re, buf, REG_EXTENDED | REG_NOSUB) == 0;
            free(buf);
        }
    }
    cg_member_classic_clear(m);
    const struct kmsg_consumer_group_member_metadata_value_classic_member_metadata *cm =
        v->classic_member_metadata;
    if (cm != NULL) {
        int32_t n = cm->supported_protocols.n > 0 ? cm->supported_protocols.n : 0;
        m->classic_protocols = calloc((size_t)n + 1, sizeof(*m->classic_protocols));
        if (m->classic_protocols != NULL) {
            m->classic = true;
            m->classic_session_ms = cm->session_timeout_ms;
            m->nclassic_protocols = n;
            for (int32_t i = 0; i < n; i++) {
                gstr_from_kstr(&m->classic_protocols[i].name, cm->supported_protocols.v[i].name);
                gstr_from_kbytes(&m->classic_protocols[i].metadata,
                                 cm->supported_protocols.v[i].metadata);
            }
        }
    }
    m->loaded_subscription = true;
}

static void replay_current(struct cg_member *m,
                           const struct kmsg_consumer_group_current_member_assignment_value *v)
{
    m->epoch = v->member_epoch;
    m->previous_epoch = v->previous_member_epoch;
    m->state = v->state == CGR_STATE_UNREVOKED    ? CGM_UNREVOKED
               : v->state == CGR_STATE_UNRELEASED ? CGM_UNRELEASED
                                                  : CGM_STABLE;
    cg_tpset_clear(&m->assigned);
    cg_tpset_clear(&m->revoking);
    for (int32_t i = 0; i < v->assigned_partitions.n; i++)
        tpset_add_topic(&m->assigned, &v->assigned_partitions.v[i].topic_id,
                        &v->assigned_partitions.v[i].partitions);
    for (int32_t i = 0; i < v->partitions_pending_revocation.n; i++)
        tpset_add_topic(&m->revoking, &v->partitions_pending_revocation.v[i].topic_id,
                        &v->partitions_pending_revocation.v[i].partitions);
}

/* Unlinks and frees the member (no timers are armed while loading). */
static void replay_drop_member(struct cgroup *cg, struct cg_member *m)
{
    struct cg_member **pp = &cg->members;
    while (*pp && *pp != m)
        pp = &(*pp)->next;
    assert(*pp == m); /* m is in the group's list */
    *pp = m->next;
    cg->nmembers--;
    cg_member_free(m);
}

/* Decodes the value of rec into out with dec; false (logged) if it does not decode. */
static bool replay_decode(const struct offsets_record *rec, struct arena *arena,
                          int (*dec)(struct kreader *, int16_t, void *), void *out)
{
    struct kreader r;
    kr_init(&r, rec->value, (size_t)rec->value_len, arena);
    if (rec->value_version != 0 || dec(&r, 0, out) != 0 || r.err != 0) {
        logger_warn("group", "consumer group %.*s: skipping an undecodable record of type %d",
                    (int)rec->group.len, rec->group.ptr, rec->key_type);
        return false;
    }
    return true;
}

typedef int (*replay_dec_fn)(struct kreader *, int16_t, void *);

void cg_replay(struct shard *s, const struct offsets_record *rec, struct arena *arena)
{
    struct group *g = group_find(s, rec->group);
    if (g == NULL && rec->tombstone)
        return;
    if (g == NULL && (g = group_create(s, rec->group)) == NULL)
        return;
    if (g->cg == NULL) {
        if (rec->tombstone || (g->cg = cg_create()) == NULL)
            return;
        gstr_free(&g->protocol_type);
        gstr_set(&g->protocol_type, "consumer", 8);
    }
    struct cgroup *cg = g->cg;
    g->load_meta = true;
    struct cg_member *m = NULL;
    if (rec->key_type == CGR_MEMBER_SUBSCRIPTION || rec->key_type == CGR_TARGET_MEMBER ||
        rec->key_type == CGR_CURRENT_ASSIGNMENT) {
        m = cg_find_member(cg, rec->member_id);
        if (m == NULL && rec->tombstone)
            return;
        if (m == NULL && (m = cg_member_new(g, rec->member_id)) == NULL)
            return;
    }
    switch (rec->key_type) {
    case CGR_GROUP_EPOCH: {
        if (rec->tombstone) { /* the group is deleted; its offsets are records of their own */
            cg_free(g, false);
            gstr_free(&g->protocol_type);
            g->load_meta = false;
            return;
        }
        struct kmsg_consumer_group_metadata_value v;
        if (replay_decode(rec, arena, (replay_dec_fn)kmsg_consumer_group_metadata_value_decode, &v))
            cg->group_epoch = v.epoch;
        return;
    }
    case CGR_PARTITION_METADATA: {
        struct kmsg_consumer_group_partition_metadata_value v;
        if (rec->tombstone)
            replay_topics(cg, NULL);
        else if (replay_decode(rec, arena,
                               (replay_dec_fn)kmsg_consumer_group_partition_metadata_value_decode,
                               &v))
            replay_topics(cg, &v);
        return;
    }
    case CGR_MEMBER_SUBSCRIPTION: {
        struct kmsg_consumer_group_member_metadata_value v;
        if (rec->tombstone)
            replay_drop_member(cg, m);
        else if (replay_decode(rec, arena,
                               (replay_dec_fn)kmsg_consumer_group_member_metadata_value_decode, &v))
            replay_subscription(m, &v);
        return;
    }
    case CGR_TARGET_EPOCH: {
        struct kmsg_consumer_group_target_assignment_metadata_value v;
        if (rec->tombstone)
            cg->assignment_epoch = 0;
        else if (replay_decode(
                     rec, arena,
                     (replay_dec_fn)kmsg_consumer_group_target_assignment_metadata_value_decode,
                     &v))
            cg->assignment_epoch = v.assignment_epoch;
        return;
    }
    case CGR_TARGET_MEMBER: {
        struct kmsg_consumer_group_target_assignment_member_value v;
        if (rec->tombstone) {
            cg_tpset_clear(&m->target);
        } else if (replay_decode(
                       rec, arena,
                       (replay_dec_fn)kmsg_consumer_group_target_assignment_member_value_decode,
                       &v)) {
            cg_tpset_clear(&m->target);
            for (int32_t i = 0; i < v.topic_partitions.n; i++)
                tpset_add_topic(&m->target, &v.topic_partitions.v[i].topic_id,
                                &v.topic_partitions.v[i].partitions);
        }
        return;
    }
    case CGR_CURRENT_ASSIGNMENT: {
        struct kmsg_consumer_group_current_member_assignment_value v;
        if (rec->tombstone) {
            m->epoch = m->previous_epoch = 0;
            m->state = CGM_STABLE;
            cg_tpset_clear(&m->assigned);
            cg_tpset_clear(&m->revoking);
        } else if (replay_decode(
                       rec, arena,
                       (replay_dec_fn)kmsg_consumer_group_current_member_assignment_value_decode,
                       &v)) {
            replay_current(m, &v);
        }
        return;
    }
    }
}

void cg_replay_finish(struct group *g)
{
    struct cgroup *cg = g->cg;
    if (cg == NULL)
        return;
    for (struct cg_member *m = cg->members, *next; m; m = next) {
        next = m->next;
        if (!m->loaded_subscription) {
            logger_warn("group", "consumer group %s: member %s has no subscription record", g->id.p,
                        m->id.p);
            replay_drop_member(cg, m);
        }
    }
    for (struct cg_member *m = cg->members; m; m = m->next)
        m->loaded_subscription = false;
    if (cg->assignment_epoch > cg->group_epoch) /* a torn history: keep the invariant */
        cg->group_epoch = cg->assignment_epoch;
    assert(cg->assignment_epoch <= cg->group_epoch);
}
