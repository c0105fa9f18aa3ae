/*
 * Fetch (key 1). Reads whole batches from each requested partition up to its high watermark,
 * within partition_max_bytes and the request's max_bytes (the first batch found is returned
 * even if larger, KIP-74), and answers with the records as file ranges that the network layer
 * sends with sendfile(2): record bytes never enter user space.
 *
 * Long poll: when fewer than min_bytes are available and max_wait_ms > 0, the fetch parks. It
 * registers a waiter on every partition it reads; an append on any of them posts a wake-up to
 * the fetch's worker, which reads again; a timer answers with whatever is there when
 * max_wait_ms has passed. Nothing polls, nothing sleeps.
 *
 * Transactions: a consumer's Fetch v4+ with isolation_level=1 (read_committed) reads below the
 * partition's last stable offset instead of the high watermark and gets the aborted
 * transactions overlapping what it read (storage/txn_index.h); the client drops their records.
 * read_uncommitted fetches pay one atomic load for the LSO they report.
 *
 * Fetch sessions (KIP-227): the broker answers every fetch as a full, sessionless fetch
 * (session id 0), which clients accept: Java clients then keep sending full fetches.
 *
 * Fetch from follower (KIP-392): a consumer's Fetch v11+ may read a partition this broker
 * follows, up to the high watermark the leader sent it (Kafka's fetchOnlyFromLeader=false);
 * older versions get NOT_LEADER_OR_FOLLOWER there. With replica.selector.class set to the
 * rack-aware selector, the leader answers a consumer that names its rack, for each partition
 * where a follower in that rack is chosen (replica_set_preferred_read_replica), with that
 * follower as preferred_read_replica and no records, at once; the client then fetches there.
 * Without the selector, or without a rack id, nothing of this costs the leader's fetch path
 * anything: no image is looked at.
 *
 * Lifetime: struct fetch_state is malloc'ed and reference-counted: the handler holds one
 * reference until the reply, and each posted wake-up holds one, because appenders on other
 * threads may post after the reply. Waiters are unlinked before the reply, under each
 * partition's lock, so no appender can see a waiter afterwards.
 *
 * Each attempt builds its response in st->scratch, reset at the next attempt: a parked fetch
 * woken by thousands of appends holds one response's worth of memory, not one per wake-up
 * (the request's arena lives until the reply). The encoder copies what it sends, so the
 * scratch arena is free to go once the reply is encoded.
 */
#include "proto/gen/fetch.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/isr_sender.h"
#include "broker/leadership.h"
#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/partition.h"
#include "broker/quota.h"
#include "broker/producer_append.h"
#include "metrics/metrics.h"
#include "proto/gen/errors.h"
#include "record/legacy.h"
#include "record/record_batch.h"
#include "storage/txn_index.h"

struct fetch_state;

struct fetch_part {
    struct fetch_state *st;
    struct partition *p; /* NULL: unknown partition */
    const struct kmsg_fetch_request_fetch_partition *rp;
    struct partition_waiter waiter;
    int16_t error;        /* fixed error (unknown partition, epoch) or 0 */
    int32_t preferred;    /* KIP-392: the follower the consumer should read from, or -1 */
    int64_t records_read; /* offsets at or past the fetch offset in the last read (metrics) */
};

struct fetch_state {
    struct broker_req *r;
    struct broker *b;
    struct partition_waiter stop_waiter; /* in the broker's parked list while parked */
    struct net_worker *worker;
    struct kmsg_fetch_request req;
    int nparts;
    struct fetch_part *parts;
    atomic_int refs;
    atomic_bool wake_pending;
    bool parked;
    struct net_timer timer;
    struct arena scratch; /* the response of the current attempt (worker thread only) */
    int32_t replica_id;   /* a follower's node id (replication), -1 for consumers */
};

static void fetch_state_put(struct fetch_state *st)
{
    if (atomic_fetch_sub(&st->refs, 1) == 1) {
        arena_free(&st->scratch);
        free(st->parts);
        free(st);
    }
}

static void fetch_release_read(void *ctx)
{
    struct log_read_result *res = ctx;
    log_read_release(res);
    free(res);
}

/*
 * Fetch v0-3 clients cannot read magic 2: the batches are read into memory and converted to
 * magic 0 (v0-1) or magic 1 (v2-3), as Kafka does. Returns the bytes added; releases res.
 */
static int64_t fetch_down_convert(struct broker_req *r, struct arena *arena,
                                  struct kmsg_fetch_response_partition_data *pd,
                                  struct log_read_result *res, int64_t fetch_offset)
{
    size_t len = (size_t)res->range.length;
    uint8_t *raw = malloc(len);
    size_t got = 0;
    while (raw && got < len) {
        ssize_t n = pread(res->range.fd, raw + got, len - got, res->range.position + (off_t)got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    fetch_release_read(res);
    uint8_t *conv = NULL;
    size_t conv_len = 0;
    int rc = raw && got == len ? legacy_from_v2(raw, len, r->hdr.api_version < 2 ? 0 : 1,
                                                fetch_offset, 64u << 20, &conv, &conv_len)
                               : RECORD_ERR_NOMEM;
    free(raw);
    uint8_t *copy = rc == 0 && conv_len ? arena_alloc(arena, conv_len) : NULL;
    if (rc != 0 || (conv_len && copy == NULL)) {
        free(conv);
        pd->error_code = KAFKA_ERR_KAFKA_STORAGE_ERROR;
        return 0;
    }
    if (conv_len)
        memcpy(copy, conv, conv_len);
    free(conv);
    pd->records = (struct krecords){copy, (int32_t)conv_len, NULL, 0};
    return (int64_t)conv_len;
}

/*
 * A follower's fetch (Kafka's Partition.fetchRecords for a replica): when the epoch of its last
 * batch ends below its fetch offset here, or is unknown here, answers the diverging epoch (the
 * largest epoch <= it and where that epoch ends) instead of records, and the follower truncates
 * (KIP-595's Fetch v12+ rule). Returns true when pd got a diverging epoch. A last fetched
 * epoch above every epoch here is answered with the newest one (endOffsetFor's rule).
 */
static bool fetch_check_divergence(struct fetch_state *st, struct fetch_part *fp,
                                   struct kmsg_fetch_response_partition_data *pd)
{
    int32_t last = st->r->hdr.api_version >= 12 ? fp->rp->last_fetched_epoch : -1;
    if (last < 0)
        return false;
    int64_t end = -1;
    int32_t end_epoch = -1;
    /* No epoch history here (an empty leader): the read answers OFFSET_OUT_OF_RANGE when
     * the follower is ahead, and it truncates to the high watermark. */
    if (log_end_offset_for_epoch(fp->p->log, last, &end, &end_epoch) != 0)
        return false;
    if (end >= fp->rp->fetch_offset && end_epoch >= last)
        return false;
    pd->diverging_epoch.epoch = end_epoch;
    pd->diverging_epoch.end_offset = end;
    return true;
}

/* After a follower's read at its fetch offset: its state on the leader moves on (the high
 * watermark may advance); a follower that qualifies for the ISR kicks the ISR sender. */
static int16_t fetch_note_follower(struct fetch_state *st, struct fetch_part *fp)
{
    int rc = replica_set_on_follower_fetch(fp->p, st->replica_id, fp->rp->fetch_offset,
                                           fp->rp->log_start_offset, fp->rp->gregor_durable_offset,
                                           clock_mono_ms());
    if (rc < 0)
        return KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    if (rc > 0)
        isr_sender_kick(st->b);
    return 0;
}

/*
 * The error of a failed read. A consumer's fetch served by a follower (KIP-392) at an offset
 * the follower does not hold gets NOT_LEADER_OR_FOLLOWER, never OFFSET_OUT_OF_RANGE: only the
 * leader knows whether the offset is out of range. A client that still takes this follower for
 * the leader (stale metadata, no KIP-320 epoch: librdkafka before 2.1 sends -1) would otherwise
 * reset its position to auto.offset.reset and read everything again (seen by the queue
 * checker after a restarted leader came back as a lagging follower); with NOT_LEADER it
 * refreshes its metadata and goes to the leader, as a redirected client does.
 */
static int16_t fetch_error_of_read(const struct fetch_state *st, const struct fetch_part *fp,
                                   int rc)
{
    if (rc == LOG_ERR_OFFSET_OUT_OF_RANGE && st->replica_id < 0 &&
        atomic_load(&fp->p->leader) != st->b->cfg.node_id)
        return KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    return partition_error_from_storage(rc);
}

/*
 * read_committed (Fetch v4+, isolation level 1): the aborted transactions that may touch the
 * records read, [fetch offset, next offset), as Kafka's collectAbortedTxns; the consumer drops
 * their records itself. An empty list when none.
 */
static void fetch_add_aborted(struct fetch_state *st, struct fetch_part *fp,
                              struct kmsg_fetch_response_partition_data *pd, int64_t upper)
{
    struct txn_index *ti = fp->p->txns;
    struct aborted_txn small[8], *v = small;
    size_t n = txn_index_collect(ti, fp->rp->fetch_offset, upper, small, 8);
    if (n > 8) {
        v = arena_calloc(&st->scratch, n, sizeof(*v));
        n = v ? txn_index_collect(ti, fp->rp->fetch_offset, upper, v, n) : 0;
    }
    pd->aborted_transactions.v =
        arena_calloc(&st->scratch, n + 1, sizeof(*pd->aborted_transactions.v));
    if (pd->aborted_transactions.v == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        pd->aborted_transactions.v[i].producer_id = v[i].producer_id;
        pd->aborted_transactions.v[i].first_offset = v[i].first_offset;
    }
    pd->aborted_transactions.n = (int32_t)n;
}

/* Reads one partition into pd. Returns the bytes of records added. */
static int64_t fetch_read_partition(struct fetch_state *st, struct fetch_part *fp,
                                    struct kmsg_fetch_response_partition_data *pd, int64_t budget,
                                    bool first)
{
    struct broker_req *r = st->r;
    kmsg_fetch_response_partition_data_init(pd);
    fp->records_read = 0;
    pd->partition_index = fp->rp->partition;
    pd->high_watermark = -1;
    pd->last_stable_offset = -1;
    pd->log_start_offset = -1;
    pd->preferred_read_replica = -1;
    pd->records = (struct krecords){NULL, 0, NULL, 0};
    if (fp->error) {
        pd->error_code = fp->error;
        return 0;
    }
    struct log *log = fp->p->log;
    if (fp->preferred >= 0) { /* Kafka reads nothing then: the offsets tell where the log is */
        pd->preferred_read_replica = fp->preferred;
        pd->high_watermark = log_high_watermark(log);
        pd->last_stable_offset = pd->high_watermark;
        pd->log_start_offset = log_start_offset(log);
        return 0;
    }
    int32_t max = fp->rp->partition_max_bytes;
    if (budget < max)
        max = (int32_t)(budget > 0 ? budget : 0);
    bool follower = st->replica_id >= 0;
    if (follower && fetch_check_divergence(st, fp, pd)) {
        pd->high_watermark = log_high_watermark(log);
        pd->last_stable_offset = pd->high_watermark;
        pd->log_start_offset = log_start_offset(log);
        return 0; /* nothing read: the follower truncates first */
    }
    struct log_read_result *res = malloc(sizeof(*res));
    if (res == NULL) {
        pd->error_code = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
        return 0;
    }
    /* Consumers read below the high watermark (read_committed ones below the last stable
     * offset), followers up to the log end. */
    int64_t hw = log_high_watermark(log);
    bool committed = !follower && st->req.isolation_level == 1 && r->hdr.api_version >= 4;
    int64_t lso = producer_last_stable_offset(fp->p);
    int64_t limit = follower ? INT64_MAX : committed ? lso : hw;
    int rc = log_read(log, fp->rp->fetch_offset, max, limit, first, res);
    if (rc == 0 && res->range.length > 0) {
        int64_t from =
            res->first_offset > fp->rp->fetch_offset ? res->first_offset : fp->rp->fetch_offset;
        fp->records_read = res->next_offset - from;
    }
    if (rc == 0 && follower) {
        int16_t ferr = fetch_note_follower(st, fp);
        if (ferr != 0) {
            pd->error_code = ferr;
            fetch_release_read(res);
            return 0;
        }
        hw = log_high_watermark(log);
    }
    pd->high_watermark = hw;
    pd->last_stable_offset = lso < hw ? lso : hw;
    pd->log_start_offset = log_start_offset(log);
    if (committed && rc == 0 && res->range.length > 0)
        fetch_add_aborted(st, fp, pd, res->next_offset);
    if (rc != 0 || res->range.length == 0) {
        if (rc != 0)
            pd->error_code = fetch_error_of_read(st, fp, rc);
        fetch_release_read(res);
        return 0;
    }
    if (r->hdr.api_version < 4)
        return fetch_down_convert(r, &st->scratch, pd, res, fp->rp->fetch_offset);
    struct kfile_range *fr = arena_calloc(&st->scratch, 1, sizeof(*fr));
    if (fr == NULL) {
        fetch_release_read(res);
        return 0;
    }
    *fr = (struct kfile_range){res->range.fd, res->range.position, (int32_t)res->range.length,
                               fetch_release_read, res};
    pd->records = (struct krecords){NULL, 0, fr, 1};
    return res->range.length;
}

/* Releases the file ranges a response holds (when it is not sent after all). */
static void fetch_release_response(struct kmsg_fetch_response *resp)
{
    for (int32_t i = 0; i < resp->responses.n; i++) {
        struct kmsg_fetch_response_fetchable_topic_response *t = &resp->responses.v[i];
        for (int32_t j = 0; j < t->partitions.n; j++) {
            struct krecords *rec = &t->partitions.v[j].records;
            for (int32_t k = 0; k < rec->nfiles; k++)
                rec->files[k].release(rec->files[k].ctx);
            rec->nfiles = 0;
            rec->files = NULL;
        }
    }
}

/*
 * Builds the response into *resp. Returns the record bytes found; *at_once tells whether any
 * partition has an error or a preferred read replica (which answer at once, as Kafka does).
 */
static int64_t fetch_build(struct fetch_state *st, struct kmsg_fetch_response *resp, bool *at_once)
{
    struct broker_req *r = st->r;
    const struct kmsg_fetch_request *req = &st->req;
    kmsg_fetch_response_init(resp);
    resp->session_id = 0;
    int32_t nt = req->topics.n > 0 ? req->topics.n : 0;
    resp->responses.v = arena_calloc(&st->scratch, (size_t)nt + 1, sizeof(*resp->responses.v));
    if (resp->responses.v == NULL)
        return -1;
    resp->responses.n = nt;
    int64_t budget = r->hdr.api_version >= 3 && req->max_bytes > 0 ? req->max_bytes : INT32_MAX;
    int64_t total = 0;
    int k = 0;
    *at_once = false;
    for (int32_t i = 0; i < nt; i++) {
        const struct kmsg_fetch_request_fetch_topic *rt = &req->topics.v[i];
        struct kmsg_fetch_response_fetchable_topic_response *t = &resp->responses.v[i];
        kmsg_fetch_response_fetchable_topic_response_init(t);
        t->topic = rt->topic;
        t->topic_id = rt->topic_id;
        int32_t np = rt->partitions.n > 0 ? rt->partitions.n : 0;
        t->partitions.v = arena_calloc(&st->scratch, (size_t)np + 1, sizeof(*t->partitions.v));
        if (t->partitions.v == NULL)
            return -1;
        t->partitions.n = np;
        for (int32_t j = 0; j < np; j++, k++) {
            struct kmsg_fetch_response_partition_data *pd = &t->partitions.v[j];
            int64_t got = fetch_read_partition(st, &st->parts[k], pd, budget - total, total == 0);
            total += got;
            if (pd->error_code != 0 || pd->preferred_read_replica >= 0)
                *at_once = true;
        }
    }
    return total;
}

static void fetch_unpark(struct fetch_state *st)
{
    if (!st->parked)
        return;
    for (int i = 0; i < st->nparts; i++)
        if (st->parts[i].p)
            partition_remove_waiter(st->parts[i].p, &st->parts[i].waiter);
    waiter_list_remove(&st->b->parked, &st->stop_waiter);
    net_timer_cancel(st->worker, &st->timer);
    st->parked = false;
    metrics_purgatory_add(st->r->b->metrics, METRICS_PURGATORY_FETCH, -1);
}

/* Metrics for the response about to be sent: bytes and records out per partition, partition
 * error codes (any marks the request failed). Parts and response partitions share one order. */
static void fetch_count_sent(struct fetch_state *st, const struct kmsg_fetch_response *resp)
{
    struct broker_req *r = st->r;
    int k = 0;
    for (int32_t i = 0; i < resp->responses.n; i++) {
        const struct kmsg_fetch_response_fetchable_topic_response *t = &resp->responses.v[i];
        for (int32_t j = 0; j < t->partitions.n && k < st->nparts; j++, k++) {
            const struct kmsg_fetch_response_partition_data *pd = &t->partitions.v[j];
            struct partition *p = st->parts[k].p;
            if (pd->error_code != 0) {
                metrics_count_partition_error(r->b->metrics, KPROTO_API_FETCH, pd->error_code);
                r->failed = true;
            }
            int64_t bytes = pd->records.len > 0 ? pd->records.len : 0;
            for (int32_t f = 0; f < pd->records.nfiles; f++)
                bytes += pd->records.files[f].len;
            if (p == NULL || bytes == 0)
                continue;
            atomic_fetch_add_explicit(&p->bytes_out, bytes, memory_order_relaxed);
            atomic_fetch_add_explicit(&p->records_out, st->parts[k].records_read,
                                      memory_order_relaxed);
        }
    }
}

/*
 * consumer_byte_rate (quota.c): a client fetch over its quota is answered, as Kafka answers
 * it, with throttle_time_ms and no partitions, and its bytes are not counted.
 */
static void fetch_apply_quota(struct fetch_state *st, struct kmsg_fetch_response *resp,
                              int64_t total)
{
    if (st->replica_id >= 0)
        return;
    resp->throttle_time_ms = quota_record_fetch(st->r, total);
    if (resp->throttle_time_ms > 0) {
        fetch_release_response(resp);
        resp->responses.n = 0;
    }
}

static void fetch_reply(struct fetch_state *st, struct kmsg_fetch_response *resp, int64_t total)
{
    fetch_apply_quota(st, resp, total);
    fetch_unpark(st);
    fetch_count_sent(st, resp);
    for (int i = 0; i < st->nparts; i++)
        partition_put(st->parts[i].p);
    struct broker_req *r = st->r;
    st->r = NULL;
    broker_reply(r, (kproto_encode_fn)kmsg_fetch_response_encode, resp);
    fetch_state_put(st);
}

/* Reads everything; answers if enough is there (or force), else keeps waiting. */
static void fetch_attempt(struct fetch_state *st, bool force)
{
    struct kmsg_fetch_response resp;
    bool at_once;
    arena_reset(&st->scratch); /* the previous attempt's response was released or sent */
    int64_t total = fetch_build(st, &resp, &at_once);
    if (total < 0) {
        fetch_release_response(&resp);
        fetch_unpark(st);
        for (int i = 0; i < st->nparts; i++)
            partition_put(st->parts[i].p);
        broker_close(st->r, "out of memory");
        st->r = NULL;
        fetch_state_put(st);
        return;
    }
    int32_t min_bytes = st->req.min_bytes > 0 ? st->req.min_bytes : 1;
    if (force || at_once || total >= min_bytes || st->req.max_wait_ms <= 0) {
        fetch_reply(st, &resp, total);
        return;
    }
    fetch_release_response(&resp);
}

static void fetch_woken(void *arg)
{
    struct fetch_state *st = arg;
    atomic_store(&st->wake_pending, false);
    if (st->r != NULL)
        fetch_attempt(st, atomic_load(&st->b->stopping));
    fetch_state_put(st);
}

/* Appender thread, under the partition's wait lock: post at most one wake-up at a time. */
static void fetch_wake(struct fetch_state *st);

static void fetch_notify(struct partition_waiter *w)
{
    struct fetch_part *fp = w->arg;
    fetch_wake(fp->st);
}

/* The broker is stopping. */
static void fetch_notify_stop(struct partition_waiter *w)
{
    fetch_wake(w->arg);
}

static void fetch_wake(struct fetch_state *st)
{
    if (atomic_exchange(&st->wake_pending, true))
        return;
    atomic_fetch_add(&st->refs, 1);
    if (net_worker_post(st->worker, fetch_woken, st) != 0) {
        atomic_fetch_sub(&st->refs, 1); /* shutting down; the timer or stop ends the fetch */
        atomic_store(&st->wake_pending, false);
    }
}

static void fetch_timed_out(struct net_timer *t)
{
    struct fetch_state *st = t->arg;
    if (st->r != NULL)
        fetch_attempt(st, true);
}

static void fetch_park(struct fetch_state *st)
{
    st->parked = true;
    metrics_purgatory_add(st->r->b->metrics, METRICS_PURGATORY_FETCH, 1);
    for (int i = 0; i < st->nparts; i++) {
        struct fetch_part *fp = &st->parts[i];
        if (fp->p == NULL)
            continue;
        fp->waiter.notify = fetch_notify;
        fp->waiter.arg = fp;
        partition_add_waiter(fp->p, &fp->waiter);
    }
    st->stop_waiter.notify = fetch_notify_stop;
    st->stop_waiter.arg = st;
    waiter_list_add(&st->b->parked, &st->stop_waiter);
    net_timer_start(st->worker, &st->timer, st->req.max_wait_ms, fetch_timed_out, st);
    /* Data may have arrived between the first read and registering: look once more. A
     * broker that began stopping meanwhile answers now (its wake-ups may have gone by). */
    fetch_attempt(st, atomic_load(&st->b->stopping));
}

/* A consumer's Fetch v11+ (Kafka's clientMetadata): it may read from followers (KIP-392). */
static bool fetch_from_consumer_v11(const struct fetch_state *st)
{
    return st->replica_id < 0 && st->r->hdr.api_version >= 11;
}

/*
 * KIP-392 on the leader: for each partition led here, the follower in the consumer's rack
 * it should read from (fp->preferred), when the rack-aware selector is configured and the
 * consumer sent a rack. One image reference for the whole request.
 */
static void fetch_select_replicas(struct fetch_state *st)
{
    struct broker *b = st->b;
    const struct kstr *rack = &st->req.rack_id;
    if (!b->cfg.rack_aware_selector || !fetch_from_consumer_v11(st) || rack->len <= 0)
        return;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    for (int i = 0; i < st->nparts; i++) {
        struct fetch_part *fp = &st->parts[i];
        if (fp->p != NULL && fp->error == 0)
            fp->preferred = replica_set_preferred_read_replica(
                fp->p, img, rack->ptr, (size_t)rack->len, fp->rp->fetch_offset);
    }
    metadata_image_release(img);
}

/*
 * Kafka's checks: a follower's fetch needs CLUSTER_ACTION on the cluster, a consumer's READ on
 * each topic (looked up by name, or from v13 by id in the image). 0 when allowed.
 */
static int16_t fetch_authorize(struct fetch_state *st, struct broker_req *r, const char *name,
                               const uint8_t *topic_id)
{
    if (!broker_authorizer_on(r->b))
        return 0;
    if (st->replica_id >= 0)
        return broker_authorize_cluster(r, ACL_OPERATION_CLUSTER_ACTION)
                   ? 0
                   : KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
    const struct metadata_image *img = metadata_image_acquire(r->b->ctl);
    if (name == NULL) {
        const struct metadata_topic *t = metadata_image_topic_by_id(img, topic_id);
        name = t ? t->name : NULL;
    }
    /* An unknown id stays UNKNOWN_TOPIC_ID: there is no name to authorize. */
    bool ok =
        name == NULL || broker_authorize(r, img, ACL_RESOURCE_TOPIC, name, ACL_OPERATION_READ);
    metadata_image_release(img);
    return ok ? 0 : KAFKA_ERR_TOPIC_AUTHORIZATION_FAILED;
}

/* Resolves every requested partition (reference held until the reply). */
static int fetch_resolve(struct fetch_state *st, struct broker_req *r)
{
    const struct kmsg_fetch_request *req = &st->req;
    int n = 0;
    for (int32_t i = 0; i < req->topics.n; i++)
        n += req->topics.v[i].partitions.n > 0 ? req->topics.v[i].partitions.n : 0;
    st->parts = calloc((size_t)n + 1, sizeof(*st->parts));
    if (st->parts == NULL)
        return -ENOMEM;
    st->nparts = n;
    int k = 0;
    bool by_id = r->hdr.api_version >= 13;
    bool any_replica = fetch_from_consumer_v11(st);
    for (int32_t i = 0; i < req->topics.n; i++) {
        const struct kmsg_fetch_request_fetch_topic *rt = &req->topics.v[i];
        char *name = by_id ? NULL : broker_name(r, rt->topic);
        int16_t denied = by_id || name ? fetch_authorize(st, r, name, rt->topic_id.b) : 0;
        for (int32_t j = 0; j < rt->partitions.n; j++, k++) {
            struct fetch_part *fp = &st->parts[k];
            fp->st = st;
            fp->rp = &rt->partitions.v[j];
            fp->preferred = -1;
            if (denied) {
                fp->error = denied;
                continue;
            }
            int16_t lerr =
                by_id ? KAFKA_ERR_UNKNOWN_TOPIC_ID : KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION;
            if (!by_id && name == NULL)
                fp->p = NULL;
            else if (any_replica)
                fp->p = partition_get_replica(r->b, name, rt->topic_id.b, fp->rp->partition, lerr,
                                              &lerr);
            else
                fp->p =
                    partition_get_led(r->b, name, rt->topic_id.b, fp->rp->partition, lerr, &lerr);
            if (fp->p == NULL) {
                fp->error = lerr;
                continue;
            }
            int32_t epoch = atomic_load(&fp->p->leader_epoch);
            int32_t want = fp->rp->current_leader_epoch;
            if (want >= 0 && want < epoch)
                fp->error = KAFKA_ERR_FENCED_LEADER_EPOCH;
            else if (want > epoch)
                fp->error = KAFKA_ERR_UNKNOWN_LEADER_EPOCH;
        }
    }
    fetch_select_replicas(st);
    return 0;
}

void handle_fetch(struct broker_req *r)
{
    struct fetch_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    atomic_init(&st->refs, 2); /* the reply's reference and this function's */
    st->r = r;
    st->b = r->b;
    st->worker = net_request_worker(r->nr);
    arena_init(&st->scratch, 0);
    if (broker_decode(r, (kproto_decode_fn)kmsg_fetch_request_decode, &st->req) != 0) {
        free(st);
        return;
    }
    st->replica_id =
        r->hdr.api_version >= 15 ? st->req.replica_state.replica_id : st->req.replica_id;
    if (fetch_resolve(st, r) != 0) {
        for (int i = 0; i < st->nparts; i++)
            partition_put(st->parts[i].p);
        free(st->parts);
        free(st);
        broker_close(r, "out of memory");
        return;
    }
    fetch_attempt(st, false);
    if (st->r != NULL)
        fetch_park(st);
    fetch_state_put(st);
}
