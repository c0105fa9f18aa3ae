/*
 * DescribeTopicPartitions (key 75, KIP-966): the partitions of the requested topics (all topics
 * when the request lists none), read from the local metadata image, a page at a time. As
 * Kafka's DescribeTopicPartitionsRequestHandler and KRaftMetadataCache.describeTopicResponse:
 *
 * - the topics are the requested names (deduplicated) or every topic, keeping those whose name
 *   sorts at or after the cursor's topic, in name order;
 * - a page holds at most min(ResponsePartitionLimit, 2000) partitions (at least 1); the cursor's
 *   topic starts at the cursor's partition, every other topic at 0;
 * - when a topic does not fit, the page ends with it and NextCursor names that topic and its
 *   first partition left out; when the page is full exactly at a topic's end, NextCursor names
 *   the next topic (partition 0), whether or not it exists;
 * - a requested topic that does not exist answers UNKNOWN_TOPIC_OR_PARTITION
 *   (INVALID_TOPIC_EXCEPTION for a name Kafka would not accept);
 * - a cursor with a negative partition, or (topics listed) naming a topic not in the list, is an
 *   invalid request: every requested topic answers INVALID_REQUEST.
 *
 * Replicas and ISR are the image's; offline replicas are those on fenced or unknown brokers (as
 * Metadata); Gregor has no eligible leader replicas (KIP-966 ELR), so both ELR lists are empty.
 * Without an authorizer every topic operation is authorized (KIP-430).
 */
#include "proto/gen/describe_topic_partitions.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/leadership.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "cluster/commands.h"
#include "cluster/controller.h"
#include "proto/acl_operations.h"
#include "proto/gen/errors.h"

/* Kafka's max.request.partition.size.limit default: the most partitions one page holds. */
#define DESCRIBE_TOPIC_PARTITIONS_MAX 2000

struct dtp_page {
    struct broker_req *r;
    const struct metadata_image *img;
    const struct kmsg_describe_topic_partitions_request_cursor *cursor; /* NULL if none */
    char *cursor_topic;                                                 /* "" without a cursor */
    bool all_topics;
    int32_t remaining; /* partitions the page may still hold */
    struct kmsg_describe_topic_partitions_response resp;
};

static bool dtp_is_internal(const char *name)
{
    return strcmp(name, "__consumer_offsets") == 0 || strcmp(name, "__transaction_state") == 0;
}

static int dtp_compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The topics this page considers, sorted and without duplicates, in *out (r's arena); count in
 * *n. Returns 0, KAFKA_ERR_INVALID_REQUEST for a cursor outside the requested topics, or
 * -ENOMEM.
 */
static int dtp_collect_names(struct dtp_page *pg,
                             const struct kmsg_describe_topic_partitions_request *req, char ***out,
                             size_t *n)
{
    size_t cap = pg->all_topics ? pg->img->n_topics : (size_t)req->topics.n;
    char **names = arena_calloc(pg->r->arena, cap + 1, sizeof(char *));
    if (names == NULL)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < cap; i++) {
        char *name = pg->all_topics ? pg->img->topics_by_name[i]->name
                                    : broker_name(pg->r, req->topics.v[i].name);
        if (name == NULL)
            return -ENOMEM;
        if (strcmp(name, pg->cursor_topic) >= 0)
            names[k++] = name;
    }
    if (!pg->all_topics)
        qsort(names, k, sizeof(char *), dtp_compare_names);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
            names[u++] = names[i];
    *out = names;
    *n = u;
    if (pg->cursor != NULL && !pg->all_topics &&
        (u == 0 || strcmp(names[0], pg->cursor_topic) != 0))
        return KAFKA_ERR_INVALID_REQUEST;
    return 0;
}

/* Kafka names a leader only when its broker is registered (fenced or not). */
static int32_t dtp_leader(const struct dtp_page *pg, const struct metadata_partition *mp)
{
    if (mp->leader < 0 || mp->leader == pg->r->b->cfg.node_id)
        return mp->leader;
    return metadata_image_broker(pg->img, mp->leader) != NULL ? mp->leader : -1;
}

static void dtp_fill_partition(struct dtp_page *pg, const struct metadata_partition *mp,
                               struct kmsg_describe_topic_partitions_response_partition *p)
{
    kmsg_describe_topic_partitions_response_partition_init(p);
    p->error_code = KAFKA_ERR_NONE;
    p->partition_index = mp->partition;
    p->leader_id = dtp_leader(pg, mp);
    p->leader_epoch = mp->leader_epoch;
    p->replica_nodes = broker_ids(pg->r, mp->replicas, mp->n_replicas);
    p->isr_nodes = broker_ids(pg->r, mp->isr, mp->n_isr);
    p->eligible_leader_replicas = (struct karray_int32){0, NULL};
    p->last_known_elr = (struct karray_int32){0, NULL};
    p->offline_replicas = broker_offline_replicas(pg->r, pg->img, mp);
}

static void dtp_set_next_cursor(struct dtp_page *pg, const char *topic, int32_t partition)
{
    struct kmsg_describe_topic_partitions_response_cursor *c =
        arena_calloc(pg->r->arena, 1, sizeof(*c));
    if (c == NULL)
        return;
    kmsg_describe_topic_partitions_response_cursor_init(c);
    c->topic_name = (struct kstr){topic, (int32_t)strlen(topic)};
    c->partition_index = partition;
    pg->resp.next_cursor = c;
}

/*
 * Adds topic t from partition `start` on, as many partitions as the page has room for; returns
 * true when the page is full before t's last partition (NextCursor then points into t).
 */
static bool dtp_add_topic(struct dtp_page *pg, const struct metadata_topic *t, int32_t start,
                          struct kmsg_describe_topic_partitions_response_topic *o)
{
    int64_t end = (int64_t)start + pg->remaining;
    uint32_t upper = end < (int64_t)t->n_partitions ? (uint32_t)end : t->n_partitions;
    uint32_t first = (uint32_t)start < upper ? (uint32_t)start : upper;
    o->error_code = KAFKA_ERR_NONE;
    o->name = (struct kstr){t->name, (int32_t)strlen(t->name)};
    memcpy(o->topic_id.b, t->id, sizeof(o->topic_id.b));
    o->is_internal = dtp_is_internal(t->name);
    o->partitions.v = arena_calloc(pg->r->arena, upper - first + 1, sizeof(*o->partitions.v));
    o->partitions.n = 0;
    for (uint32_t i = first; o->partitions.v != NULL && i < upper; i++)
        dtp_fill_partition(pg, &t->partitions[i], &o->partitions.v[o->partitions.n++]);
    pg->remaining -= o->partitions.n;
    if (upper < t->n_partitions) {
        dtp_set_next_cursor(pg, t->name, (int32_t)upper);
        return true;
    }
    return false;
}

static void dtp_add_missing(char *name, struct kmsg_describe_topic_partitions_response_topic *o)
{
    char msg[160];
    o->error_code = command_check_topic_name(name, msg, sizeof(msg)) != 0
                        ? KAFKA_ERR_INVALID_TOPIC_EXCEPTION
                        : KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
    o->name = (struct kstr){name, (int32_t)strlen(name)};
    o->is_internal = dtp_is_internal(name);
    o->partitions.n = 0;
}

/* Fills pg->resp with the page for the sorted, distinct `names`. */
static void dtp_fill_page(struct dtp_page *pg, char **names, size_t n)
{
    pg->resp.topics.v = arena_calloc(pg->r->arena, n + 1, sizeof(*pg->resp.topics.v));
    pg->resp.topics.n = 0;
    for (size_t i = 0; pg->resp.topics.v != NULL && i < n; i++) {
        if (pg->remaining == 0) {
            /* Full exactly at the previous topic's end: the next page starts here. */
            dtp_set_next_cursor(pg, names[i], 0);
            break;
        }
        const struct metadata_topic *t = metadata_image_topic_by_name(pg->img, names[i]);
        if (t == NULL && pg->all_topics)
            continue;
        /* Kafka: DESCRIBE on the topic; a listing leaves the others out */
        bool visible =
            broker_authorize(pg->r, pg->img, ACL_RESOURCE_TOPIC, names[i], ACL_OPERATION_DESCRIBE);
        if (!visible && pg->all_topics)
            continue;
        struct kmsg_describe_topic_partitions_response_topic *o =
            &pg->resp.topics.v[pg->resp.topics.n++];
        kmsg_describe_topic_partitions_response_topic_init(o);
        o->topic_authorized_operations = broker_authorized_operations(
            pg->r, pg->img, ACL_RESOURCE_TOPIC, names[i], ACL_OPERATIONS_TOPIC);
        if (!visible) {
            o->error_code = KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
            o->name = (struct kstr){names[i], (int32_t)strlen(names[i])};
            o->partitions.n = 0;
            continue;
        }
        if (t == NULL) {
            dtp_add_missing(names[i], o);
            continue;
        }
        bool at_cursor = pg->cursor != NULL && strcmp(names[i], pg->cursor_topic) == 0;
        if (dtp_add_topic(pg, t, at_cursor ? pg->cursor->partition_index : 0, o))
            break;
    }
}

/* Kafka's answer to an invalid request: each requested topic with the error, nothing else. */
static void dtp_reply_error(struct broker_req *r,
                            const struct kmsg_describe_topic_partitions_request *req, int16_t error)
{
    struct kmsg_describe_topic_partitions_response resp;
    kmsg_describe_topic_partitions_response_init(&resp);
    int32_t n = req->topics.n > 0 ? req->topics.n : 0;
    resp.topics.v = arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp.topics.v));
    resp.topics.n = 0;
    for (int32_t i = 0; resp.topics.v != NULL && i < n; i++) {
        struct kmsg_describe_topic_partitions_response_topic *o = &resp.topics.v[resp.topics.n++];
        kmsg_describe_topic_partitions_response_topic_init(o);
        o->error_code = error;
        o->name = req->topics.v[i].name;
        o->partitions.n = 0;
    }
    broker_reply(r, (kproto_encode_fn)kmsg_describe_topic_partitions_response_encode, &resp);
}

void handle_describe_topic_partitions(struct broker_req *r)
{
    struct kmsg_describe_topic_partitions_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_topic_partitions_request_decode, &req) !=
        0)
        return;
    struct dtp_page *pg = arena_calloc(r->arena, 1, sizeof(*pg));
    if (pg == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    pg->r = r;
    pg->cursor = req.cursor;
    pg->cursor_topic = req.cursor != NULL ? broker_name(r, req.cursor->topic_name) : "";
    pg->all_topics = req.topics.n <= 0;
    int32_t limit = req.response_partition_limit;
    pg->remaining = limit < 1                               ? 1
                    : limit > DESCRIBE_TOPIC_PARTITIONS_MAX ? DESCRIBE_TOPIC_PARTITIONS_MAX
                                                            : limit;
    kmsg_describe_topic_partitions_response_init(&pg->resp);
    if (pg->cursor_topic == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    if (req.cursor != NULL && req.cursor->partition_index < 0) {
        dtp_reply_error(r, &req, KAFKA_ERR_INVALID_REQUEST);
        return;
    }
    pg->img = metadata_image_acquire(r->b->ctl);
    char **names = NULL;
    size_t n = 0;
    int rc = dtp_collect_names(pg, &req, &names, &n);
    if (rc == 0)
        dtp_fill_page(pg, names, n);
    if (rc == 0)
        broker_reply(r, (kproto_encode_fn)kmsg_describe_topic_partitions_response_encode,
                     &pg->resp);
    else if (rc > 0)
        dtp_reply_error(r, &req, (int16_t)rc);
    else
        broker_close(r, "out of memory");
    metadata_image_release(pg->img);
}
