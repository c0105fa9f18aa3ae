/*
 * DescribeLogDirs (key 35), as Kafka's ReplicaManager.describeLogDirs: for the log directory
 * (Gregor has one, log.dirs), its absolute path, the volume's total and usable bytes (v4+), and
 * per requested partition hosted there its size in bytes and offset lag (max(0, high watermark
 * - log end), 0 on a leader). A null topic list asks for every partition; requested partitions
 * not hosted here are left out, and topics left without partitions too. A directory whose
 * volume cannot be examined is answered KAFKA_STORAGE_ERROR.
 *
 * The partitions are sampled under the registry's read lock (nothing slow happens under it)
 * into the request's arena, sorted by (topic, partition), then filtered and grouped.
 */
#include "proto/gen/describe_log_dirs.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "base/logger.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/partition.h"
#include "proto/gen/errors.h"

struct log_dir_sample {
    const char *topic;
    int32_t index;
    int64_t size;
    int64_t lag;
    bool wanted;
};

struct log_dir_samples {
    struct arena *arena;
    struct log_dir_sample *v;
    size_t n, cap;
    bool oom;
};

/* Registry read lock held: copies what the answer needs. */
static void log_dirs_collect(struct partition *p, void *arg)
{
    struct log_dir_samples *s = arg;
    if (s->oom)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct log_dir_sample *v = arena_calloc(s->arena, cap, sizeof(*v));
        if (v == NULL) {
            s->oom = true;
            return;
        }
        if (s->n)
            memcpy(v, s->v, s->n * sizeof(*v));
        s->v = v;
        s->cap = cap;
    }
    struct log_dir_sample *x = &s->v[s->n];
    x->topic = arena_strndup(s->arena, p->topic, strlen(p->topic));
    if (x->topic == NULL) {
        s->oom = true;
        return;
    }
    x->index = p->index;
    x->size = log_size_bytes(p->log);
    int64_t lag = log_high_watermark(p->log) - log_end_offset(p->log);
    x->lag = lag > 0 ? lag : 0;
    x->wanted = false;
    s->n++;
}

static int sample_cmp_key(const char *topic, int32_t index, const struct log_dir_sample *x)
{
    int c = strcmp(topic, x->topic);
    return c ? c : (index > x->index) - (index < x->index);
}

static int sample_cmp(const void *a, const void *b)
{
    const struct log_dir_sample *x = a, *y = b;
    return sample_cmp_key(x->topic, x->index, y);
}

/* Marks the samples the request names (all of them for a null topic list). */
static void log_dirs_mark_wanted(struct broker_req *r, struct log_dir_samples *s,
                                 const struct kmsg_describe_log_dirs_request *req)
{
    if (req->topics.n < 0) {
        for (size_t i = 0; i < s->n; i++)
            s->v[i].wanted = true;
        return;
    }
    for (int32_t t = 0; t < req->topics.n; t++) {
        const struct kmsg_describe_log_dirs_request_describable_log_dir_topic *rt =
            &req->topics.v[t];
        char *topic = broker_name(r, rt->topic);
        for (int32_t j = 0; topic && j < rt->partitions.n; j++) {
            struct log_dir_sample key = {.topic = topic, .index = rt->partitions.v[j]};
            struct log_dir_sample *x = bsearch(&key, s->v, s->n, sizeof(*s->v), sample_cmp);
            if (x)
                x->wanted = true;
        }
    }
}

/* Builds the topics of the result from the wanted samples (sorted, so grouped by topic).
 * Returns 0 or -ENOMEM. */
static int log_dirs_fill_topics(struct broker_req *r, const struct log_dir_samples *s,
                                struct kmsg_describe_log_dirs_response_describe_log_dirs_result *o)
{
    size_t ntopics = 0;
    const char *last = NULL;
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i].wanted && (last == NULL || strcmp(last, s->v[i].topic) != 0)) {
            ntopics++;
            last = s->v[i].topic;
        }
    }
    o->topics.v = arena_calloc(r->arena, ntopics + 1, sizeof(*o->topics.v));
    struct kmsg_describe_log_dirs_response_describe_log_dirs_partition *parts =
        arena_calloc(r->arena, s->n + 1, sizeof(*parts));
    if (o->topics.v == NULL || parts == NULL)
        return -ENOMEM;
    o->topics.n = 0;
    struct kmsg_describe_log_dirs_response_describe_log_dirs_topic *t = NULL;
    for (size_t i = 0; i < s->n; i++) {
        const struct log_dir_sample *x = &s->v[i];
        if (!x->wanted)
            continue;
        if (t == NULL || strcmp(t->name.ptr, x->topic) != 0) {
            t = &o->topics.v[o->topics.n++];
            kmsg_describe_log_dirs_response_describe_log_dirs_topic_init(t);
            t->name = (struct kstr){x->topic, (int32_t)strlen(x->topic)};
            t->partitions.v = parts;
            t->partitions.n = 0;
        }
        struct kmsg_describe_log_dirs_response_describe_log_dirs_partition *p =
            &t->partitions.v[t->partitions.n++];
        kmsg_describe_log_dirs_response_describe_log_dirs_partition_init(p);
        p->partition_index = x->index;
        p->partition_size = x->size;
        p->offset_lag = x->lag;
        p->is_future_key = false;
        parts++;
    }
    assert((size_t)o->topics.n == ntopics); /* one entry per distinct wanted topic */
    return 0;
}

/* The directory's absolute path and its volume's sizes; KAFKA_STORAGE_ERROR if unreadable. */
static int16_t log_dirs_volume(struct broker_req *r,
                               struct kmsg_describe_log_dirs_response_describe_log_dirs_result *o)
{
    char path[PATH_MAX];
    const char *dir = r->b->cfg.log_dirs;
    if (realpath(dir, path) != NULL)
        dir = path;
    char *copy = arena_strndup(r->arena, dir, strlen(dir));
    o->log_dir = copy ? (struct kstr){copy, (int32_t)strlen(copy)} : KSTR_LIT("");
    struct statvfs vfs;
    if (statvfs(dir, &vfs) != 0) {
        logger_warn("broker", "log dir %s: statvfs: %s", dir, strerror(errno));
        return KAFKA_ERR_KAFKA_STORAGE_ERROR;
    }
    o->total_bytes = (int64_t)((uint64_t)vfs.f_blocks * vfs.f_frsize);
    o->usable_bytes = (int64_t)((uint64_t)vfs.f_bavail * vfs.f_frsize);
    return KAFKA_ERR_NONE;
}

void handle_describe_log_dirs(struct broker_req *r)
{
    struct kmsg_describe_log_dirs_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_log_dirs_request_decode, &req) != 0)
        return;
    struct kmsg_describe_log_dirs_response resp;
    kmsg_describe_log_dirs_response_init(&resp);
    if (!broker_authorize_cluster(r, ACL_OPERATION_DESCRIBE)) {
        /* Kafka: DESCRIBE on the cluster; v3+ carries the error, older versions no dirs */
        resp.error_code = KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.results.n = 0;
        broker_reply(r, (kproto_encode_fn)kmsg_describe_log_dirs_response_encode, &resp);
        return;
    }
    resp.results.v = arena_calloc(r->arena, 1, sizeof(*resp.results.v));
    if (resp.results.v == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    resp.results.n = 1;
    struct kmsg_describe_log_dirs_response_describe_log_dirs_result *o = &resp.results.v[0];
    kmsg_describe_log_dirs_response_describe_log_dirs_result_init(o);
    o->topics.n = 0;
    o->error_code = log_dirs_volume(r, o);
    if (o->error_code == KAFKA_ERR_NONE) {
        struct log_dir_samples s = {.arena = r->arena};
        partition_registry_each(r->b->parts, log_dirs_collect, &s);
        if (s.oom) {
            broker_close(r, "out of memory");
            return;
        }
        if (s.n)
            qsort(s.v, s.n, sizeof(*s.v), sample_cmp);
        log_dirs_mark_wanted(r, &s, &req);
        if (log_dirs_fill_topics(r, &s, o) != 0) {
            broker_close(r, "out of memory");
            return;
        }
    }
    broker_reply(r, (kproto_encode_fn)kmsg_describe_log_dirs_response_encode, &resp);
}
