/*
 * AlterPartitionReassignments (45) and ListPartitionReassignments (46). Alter runs on the
 * active controller (forwarded from other nodes); List reads the applied metadata image, which
 * every node has. See cluster/reassign_commands.c for the semantics.
 */
#include <string.h>

#include "broker/authorizer.h"
#include "broker/leadership.h"
#include "broker/async.h"
#include "broker/broker_internal.h"
#include "broker/forwarder.h"
#include "broker/handlers.h"
#include "proto/gen/alter_partition_reassignments.h"
#include "proto/gen/errors.h"
#include "proto/gen/list_partition_reassignments.h"

struct alter_state {
    struct kmsg_alter_partition_reassignments_request req;
};

static void alter_resume(struct broker_async *a)
{
    struct broker_req *r = a->r;
    struct alter_state *st = a->arg;
    struct kmsg_alter_partition_reassignments_response resp;
    kmsg_alter_partition_reassignments_response_init(&resp);
    resp.error_code = a->error_code;
    resp.error_message = a->error_code ? broker_kstr(r, a->error_message) : KSTR_NULL;
    int32_t nt = st->req.topics.n > 0 ? st->req.topics.n : 0;
    resp.responses.v = arena_calloc(r->arena, (size_t)nt + 1, sizeof(*resp.responses.v));
    if (resp.responses.v == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    resp.responses.n = nt;
    size_t k = 0;
    for (int32_t i = 0; i < nt; i++) {
        const struct kmsg_alter_partition_reassignments_request_reassignable_topic *t =
            &st->req.topics.v[i];
        struct kmsg_alter_partition_reassignments_response_reassignable_topic_response *o =
            &resp.responses.v[i];
        kmsg_alter_partition_reassignments_response_reassignable_topic_response_init(o);
        o->name = t->name;
        int32_t np = t->partitions.n > 0 ? t->partitions.n : 0;
        o->partitions.v = arena_calloc(r->arena, (size_t)np + 1, sizeof(*o->partitions.v));
        o->partitions.n = o->partitions.v ? np : 0;
        for (int32_t j = 0; j < o->partitions.n; j++, k++) {
            struct kmsg_alter_partition_reassignments_response_reassignable_partition_response *p =
                &o->partitions.v[j];
            kmsg_alter_partition_reassignments_response_reassignable_partition_response_init(p);
            p->partition_index = t->partitions.v[j].partition_index;
            const struct broker_async_topic *res = k < a->n_topics ? &a->topics[k] : NULL;
            p->error_code = res ? res->error_code : a->error_code;
            p->error_message =
                res && res->error_code ? broker_kstr(r, res->error_message) : KSTR_NULL;
        }
    }
    broker_reply(r, (kproto_encode_fn)kmsg_alter_partition_reassignments_response_encode, &resp);
}

void handle_alter_partition_reassignments(struct broker_req *r)
{
    /* Kafka: ALTER on the cluster, checked here as the relayed request is the broker's */
    if (!broker_authorize_cluster(r, ACL_OPERATION_ALTER)) {
        struct kmsg_alter_partition_reassignments_response resp;
        kmsg_alter_partition_reassignments_response_init(&resp);
        resp.error_code = KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.responses.n = 0;
        broker_reply(r, (kproto_encode_fn)kmsg_alter_partition_reassignments_response_encode,
                     &resp);
        return;
    }
    if (forwarder_relay(r))
        return;
    struct alter_state *st = arena_calloc(r->arena, 1, sizeof(*st));
    if (st == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    if (broker_decode(r, (kproto_decode_fn)kmsg_alter_partition_reassignments_request_decode,
                      &st->req) != 0)
        return;
    size_t n = 0;
    for (int32_t i = 0; i < st->req.topics.n; i++)
        n += st->req.topics.v[i].partitions.n > 0 ? (size_t)st->req.topics.v[i].partitions.n : 0;
    struct controller_reassignment *items = arena_calloc(r->arena, n + 1, sizeof(*items));
    if (items == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    size_t k = 0;
    for (int32_t i = 0; i < st->req.topics.n; i++) {
        const struct kmsg_alter_partition_reassignments_request_reassignable_topic *t =
            &st->req.topics.v[i];
        char *name = broker_name(r, t->name);
        for (int32_t j = 0; j < t->partitions.n; j++, k++) {
            const struct karray_int32 *reps = &t->partitions.v[j].replicas;
            items[k] = (struct controller_reassignment){
                name, t->partitions.v[j].partition_index, reps->n > 0 ? (uint32_t)reps->n : 0,
                reps->n >= 0 ? (reps->v ? reps->v : (const int32_t *)items) : NULL};
        }
    }
    struct broker_async *a = broker_async_new(r, alter_resume, st);
    if (a == NULL ||
        controller_alter_reassignments(r->b->ctl, items, n, broker_async_done, a) != 0) {
        broker_async_free(a);
        broker_close(r, "controller unavailable");
    }
}

static bool wanted(const struct kmsg_list_partition_reassignments_request *req, const char *topic,
                   int32_t partition)
{
    if (req->topics.n < 0)
        return true;
    for (int32_t i = 0; i < req->topics.n; i++) {
        const struct kmsg_list_partition_reassignments_request_list_partition_reassignments_topics
            *t = &req->topics.v[i];
        if ((size_t)t->name.len != strlen(topic) || memcmp(t->name.ptr, topic, t->name.len) != 0)
            continue;
        for (int32_t j = 0; j < t->partition_indexes.n; j++)
            if (t->partition_indexes.v[j] == partition)
                return true;
    }
    return false;
}

void handle_list_partition_reassignments(struct broker_req *r)
{
    struct kmsg_list_partition_reassignments_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_list_partition_reassignments_request_decode,
                      &req) != 0)
        return;
    struct kmsg_list_partition_reassignments_response resp;
    kmsg_list_partition_reassignments_response_init(&resp);
    if (!broker_authorize_cluster(r, ACL_OPERATION_DESCRIBE)) { /* Kafka: DESCRIBE on the cluster */
        resp.error_code = KAFKA_ERR_CLUSTER_AUTHORIZATION_FAILED;
        resp.topics.n = 0;
        broker_reply(r, (kproto_encode_fn)kmsg_list_partition_reassignments_response_encode, &resp);
        return;
    }
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    resp.topics.v = arena_calloc(r->arena, img->n_topics + 1, sizeof(*resp.topics.v));
    resp.topics.n = 0;
    for (size_t i = 0; resp.topics.v && i < img->n_topics; i++) {
        const struct metadata_topic *t = img->topics_by_name[i];
        struct kmsg_list_partition_reassignments_response_ongoing_topic_reassignment *o = NULL;
        for (uint32_t p = 0; p < t->n_partitions; p++) {
            const struct metadata_partition *mp = &t->partitions[p];
            if ((mp->n_adding == 0 && mp->n_removing == 0) || !wanted(&req, t->name, (int32_t)p))
                continue;
            if (o == NULL) {
                o = &resp.topics.v[resp.topics.n++];
                kmsg_list_partition_reassignments_response_ongoing_topic_reassignment_init(o);
                o->name = broker_kstr(r, t->name);
                o->partitions.v = arena_calloc(r->arena, t->n_partitions, sizeof(*o->partitions.v));
                o->partitions.n = 0;
                if (o->partitions.v == NULL)
                    break;
            }
            struct kmsg_list_partition_reassignments_response_ongoing_partition_reassignment *q =
                &o->partitions.v[o->partitions.n++];
            kmsg_list_partition_reassignments_response_ongoing_partition_reassignment_init(q);
            q->partition_index = (int32_t)p;
            q->replicas = broker_ids(r, mp->replicas, mp->n_replicas);
            q->adding_replicas = broker_ids(r, mp->adding, mp->n_adding);
            q->removing_replicas = broker_ids(r, mp->removing, mp->n_removing);
        }
    }
    metadata_image_release(img);
    broker_reply(r, (kproto_encode_fn)kmsg_list_partition_reassignments_response_encode, &resp);
}
