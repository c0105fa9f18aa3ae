/*
 * DescribeTransactions (key 65) and ListTransactions (key 66): what the transaction
 * coordinator holds for the ids of the shards this broker leads (an admin client asks every
 * broker for ListTransactions and the id's coordinator for DescribeTransactions).
 */
#include <string.h>

#include "base/clock.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/transactions.h"
#include "proto/gen/describe_transactions.h"
#include "proto/gen/errors.h"
#include "proto/gen/list_transactions.h"
#include "txn/coordinator.h"
#include "txn/state_record.h"

static struct kstr arena_kstr(struct arena *a, const char *s)
{
    char *p = arena_strndup(a, s, strlen(s));
    return p ? (struct kstr){p, (int32_t)strlen(p)} : KSTR_LIT("");
}

struct describe_ctx {
    struct arena *arena;
    struct kmsg_describe_transactions_response_transaction_state *out;
};

/* Under the coordinator's lock: copies d into the response. */
static void describe_one(void *arg, const struct txn_description *d)
{
    struct describe_ctx *dc = arg;
    struct kmsg_describe_transactions_response_transaction_state *o = dc->out;
    o->transaction_state = KSTR_LIT("");
    o->transaction_state.ptr = txn_status_name(d->state);
    o->transaction_state.len = (int32_t)strlen(o->transaction_state.ptr);
    o->transaction_timeout_ms = d->timeout_ms;
    o->transaction_start_time_ms = d->start_ms;
    o->producer_id = d->producer_id;
    o->producer_epoch = d->producer_epoch;
    struct kmsg_describe_transactions_response_topic_data *ts =
        arena_calloc(dc->arena, d->nparts + 1, sizeof(*ts));
    int32_t nt = 0;
    for (size_t i = 0; ts && i < d->nparts; i++) {
        int32_t t = 0;
        while (t < nt && strcmp(ts[t].topic.ptr, d->parts[i].topic) != 0)
            t++;
        if (t == nt) {
            kmsg_describe_transactions_response_topic_data_init(&ts[nt]);
            ts[nt].topic = arena_kstr(dc->arena, d->parts[i].topic);
            ts[nt].partitions.v = arena_calloc(dc->arena, d->nparts, sizeof(int32_t));
            ts[nt].partitions.n = 0;
            nt++;
        }
        if (ts[t].partitions.v)
            ts[t].partitions.v[ts[t].partitions.n++] = d->parts[i].partition;
    }
    o->topics.v = ts;
    o->topics.n = ts ? nt : 0;
}

void handle_describe_transactions(struct broker_req *r)
{
    struct kmsg_describe_transactions_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_describe_transactions_request_decode, &req) != 0)
        return;
    struct kmsg_describe_transactions_response resp;
    kmsg_describe_transactions_response_init(&resp);
    int32_t n = req.transactional_ids.n > 0 ? req.transactional_ids.n : 0;
    resp.transaction_states.v =
        arena_calloc(r->arena, (size_t)n + 1, sizeof(*resp.transaction_states.v));
    resp.transaction_states.n = resp.transaction_states.v ? n : 0;
    struct txn_coordinator *tc = txn_coordinator_of(r->b);
    for (int32_t i = 0; i < resp.transaction_states.n; i++) {
        struct kmsg_describe_transactions_response_transaction_state *o =
            &resp.transaction_states.v[i];
        kmsg_describe_transactions_response_transaction_state_init(o);
        struct kstr kid = req.transactional_ids.v[i];
        o->transactional_id = kid;
        o->transaction_state = KSTR_LIT("");
        o->topics.n = 0;
        char *id = kid.len >= 0 ? arena_strndup(r->arena, kid.ptr, (size_t)kid.len) : NULL;
        struct describe_ctx dc = {r->arena, o};
        /* Kafka: DESCRIBE on the transactional id */
        if (id != NULL &&
            !broker_authorize(r, NULL, ACL_RESOURCE_TRANSACTIONAL_ID, id, ACL_OPERATION_DESCRIBE)) {
            o->error_code = KAFKA_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
            continue;
        }
        o->error_code = id == NULL ? KAFKA_ERR_INVALID_REQUEST
                                   : txn_coordinator_describe(tc, id, describe_one, &dc);
    }
    broker_reply(r, (kproto_encode_fn)kmsg_describe_transactions_response_encode, &resp);
}

struct list_ctx {
    struct broker_req *r;
    const struct kmsg_list_transactions_request *req;
    int64_t now_ms;
    struct kmsg_list_transactions_response_transaction_state *v;
    int32_t n, cap;
};

static bool list_matches(const struct list_ctx *lc, const struct txn_description *d)
{
    const struct kmsg_list_transactions_request *req = lc->req;
    const char *name = txn_status_name(d->state);
    bool state_ok = req->state_filters.n <= 0;
    for (int32_t i = 0; !state_ok && i < req->state_filters.n; i++)
        state_ok = (int32_t)strlen(name) == req->state_filters.v[i].len &&
                   memcmp(name, req->state_filters.v[i].ptr, strlen(name)) == 0;
    bool pid_ok = req->producer_id_filters.n <= 0;
    for (int32_t i = 0; !pid_ok && i < req->producer_id_filters.n; i++)
        pid_ok = req->producer_id_filters.v[i] == d->producer_id;
    /* v1: only transactions running longer than duration_filter ms (-1: all). */
    bool duration_ok = lc->r->hdr.api_version < 1 || req->duration_filter < 0 ||
                       (d->state == TXN_ONGOING && d->start_ms >= 0 &&
                        lc->now_ms - d->start_ms > req->duration_filter);
    return state_ok && pid_ok && duration_ok;
}

/* Under the coordinator's lock. */
static void list_one(void *arg, const struct txn_description *d)
{
    struct list_ctx *lc = arg;
    /* Kafka lists the transactional ids the principal may DESCRIBE */
    if (!list_matches(lc, d) || !broker_authorize(lc->r, NULL, ACL_RESOURCE_TRANSACTIONAL_ID, d->id,
                                                  ACL_OPERATION_DESCRIBE))
        return;
    if (lc->n == lc->cap) {
        int32_t cap = lc->cap ? lc->cap * 2 : 16;
        struct kmsg_list_transactions_response_transaction_state *v =
            arena_calloc(lc->r->arena, (size_t)cap, sizeof(*v));
        if (v == NULL)
            return;
        if (lc->n > 0)
            memcpy(v, lc->v, (size_t)lc->n * sizeof(*v));
        lc->v = v;
        lc->cap = cap;
    }
    struct kmsg_list_transactions_response_transaction_state *o = &lc->v[lc->n++];
    kmsg_list_transactions_response_transaction_state_init(o);
    o->transactional_id = arena_kstr(lc->r->arena, d->id);
    o->producer_id = d->producer_id;
    o->transaction_state = KSTR_LIT("");
    o->transaction_state.ptr = txn_status_name(d->state);
    o->transaction_state.len = (int32_t)strlen(o->transaction_state.ptr);
}

static bool state_name_known(struct kstr s)
{
    for (int i = 0; i < 8; i++) {
        const char *n = txn_status_name(i);
        if ((int32_t)strlen(n) == s.len && memcmp(n, s.ptr, (size_t)s.len) == 0)
            return true;
    }
    return false;
}

void handle_list_transactions(struct broker_req *r)
{
    struct kmsg_list_transactions_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_list_transactions_request_decode, &req) != 0)
        return;
    struct kmsg_list_transactions_response resp;
    kmsg_list_transactions_response_init(&resp);
    int32_t nf = req.state_filters.n > 0 ? req.state_filters.n : 0;
    resp.unknown_state_filters.v = arena_calloc(r->arena, (size_t)nf + 1, sizeof(struct kstr));
    resp.unknown_state_filters.n = 0;
    for (int32_t i = 0; resp.unknown_state_filters.v && i < nf; i++)
        if (!state_name_known(req.state_filters.v[i]))
            resp.unknown_state_filters.v[resp.unknown_state_filters.n++] = req.state_filters.v[i];
    struct list_ctx lc = {.r = r, .req = &req, .now_ms = clock_wall_ms()};
    txn_coordinator_list(txn_coordinator_of(r->b), list_one, &lc);
    resp.transaction_states.v = lc.v;
    resp.transaction_states.n = lc.n;
    broker_reply(r, (kproto_encode_fn)kmsg_list_transactions_response_encode, &resp);
}
