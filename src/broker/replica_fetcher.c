/* Follower fetch threads; see replica_fetcher.h. */
#include "broker/replica_fetcher.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/arena.h"
#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/controller_client.h"
#include "broker/partition.h"
#include "broker/partition_registry.h"
#include "broker/producer_append.h"
#include "proto/gen/errors.h"
#include "proto/gen/fetch.h"
#include "storage/flusher.h"

#define FETCHER_VERSION 12
#define FETCHER_ERROR_BACKOFF_MS 100 /* a partition error: wait for the metadata to move on */
#define FETCHER_SYNC_WAIT_MS 5000    /* bound on waiting for our own flushes */

struct fetcher {
    struct replica_fetchers *all;
    int32_t leader;
    int fetcher_id;
    pthread_t thread;
    struct controller_client client;
    /* This round's partitions (referenced) and the leader epoch each was sent with. */
    struct partition **parts;
    int32_t *epochs;
    size_t n, cap;
    /* The last round's outcome, logged when it changes: 0 fine, -1 the fetch failed, else
     * the first partition error code, with how many partitions had one. */
    int16_t last_error;
    size_t last_errors;
    /* acks.all.fsync: flushes of appended data asked of the flusher and not completed yet.
     * The next fetch goes out meanwhile (the leader counts only our synced log end, sent as
     * GregorDurableOffset, towards its high watermark), so the sync overlaps the transfer. */
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cond;
    int syncs_pending;
};

struct replica_fetchers {
    struct broker *b;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cond;
    bool stop;
    uint64_t image_seq;
    struct fetcher **list;
    size_t n, cap;
};

static int fetcher_slot(const struct partition *p, int n)
{
    uint32_t h = 2166136261u;
    for (const char *c = p->topic; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    return (int)((h + (uint32_t)p->index) % (uint32_t)n);
}

/* Sleeps ms or until the image changes or the fetchers stop; true when stopping. */
static bool fetcher_sleep(struct replica_fetchers *all, int64_t ms)
{
    struct timespec ts = clock_mono_deadline(ms);
    pthread_mutex_lock(&all->mu);
    uint64_t seq = all->image_seq;
    while (!all->stop && all->image_seq == seq &&
           pthread_cond_timedwait(&all->cond, &all->mu, &ts) == 0)
        ;
    bool stop = all->stop;
    pthread_mutex_unlock(&all->mu);
    return stop;
}

static bool fetcher_stopping(struct replica_fetchers *all)
{
    pthread_mutex_lock(&all->mu);
    bool stop = all->stop;
    pthread_mutex_unlock(&all->mu);
    return stop;
}

/* Registry read lock held: picks the partitions this fetcher follows now. */
static void fetcher_collect_one(struct partition *p, void *arg)
{
    struct fetcher *f = arg;
    struct broker *b = f->all->b;
    if (atomic_load(&p->deleted) || atomic_load(&p->leader) != f->leader ||
        fetcher_slot(p, b->cfg.num_replica_fetchers) != f->fetcher_id)
        return;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        struct partition **parts = realloc(f->parts, cap * sizeof(*parts));
        if (parts == NULL)
            return;
        f->parts = parts;
        int32_t *epochs = realloc(f->epochs, cap * sizeof(*epochs));
        if (epochs == NULL)
            return;
        f->epochs = epochs;
        f->cap = cap;
    }
    atomic_fetch_add(&p->refs, 1);
    f->epochs[f->n] = atomic_load(&p->leader_epoch);
    f->parts[f->n++] = p;
}

static void fetcher_release(struct fetcher *f)
{
    for (size_t i = 0; i < f->n; i++)
        partition_put(f->parts[i]);
    f->n = 0;
}

/* The leader's address from the image; -EAGAIN when it is unknown or fenced. */
static int fetcher_leader_address(struct fetcher *f, char *host, size_t len, int *port)
{
    const struct metadata_image *img = metadata_image_acquire(f->all->b->ctl);
    const struct metadata_broker *mb = metadata_image_broker(img, f->leader);
    int rc = mb && mb->host ? 0 : -EAGAIN;
    if (rc == 0) {
        snprintf(host, len, "%s", mb->host);
        *port = mb->port;
    }
    metadata_image_release(img);
    return rc;
}

/* The flusher's completion of one of our flush requests (flusher thread, or ours at once). */
static void fetcher_on_synced(void *arg, int err)
{
    struct fetcher *f = arg;
    (void)err; /* a failed flush puts the log offline; its recovery point does not move */
    pthread_mutex_lock(&f->sync_mu);
    assert(f->syncs_pending > 0);
    f->syncs_pending--;
    pthread_cond_broadcast(&f->sync_cond);
    pthread_mutex_unlock(&f->sync_mu);
}

static int fetcher_syncs_pending(struct fetcher *f)
{
    pthread_mutex_lock(&f->sync_mu);
    int n = f->syncs_pending;
    pthread_mutex_unlock(&f->sync_mu);
    return n;
}

/* Waits (bounded) until every flush this fetcher asked for has completed. */
static void fetcher_wait_synced(struct fetcher *f)
{
    struct timespec ts = clock_mono_deadline(FETCHER_SYNC_WAIT_MS);
    pthread_mutex_lock(&f->sync_mu);
    while (f->syncs_pending > 0 && pthread_cond_timedwait(&f->sync_cond, &f->sync_mu, &ts) == 0)
        ;
    pthread_mutex_unlock(&f->sync_mu);
}

/* After an append: makes it durable in the background (acks.all.fsync). */
static void fetcher_request_sync(struct fetcher *f, struct partition *p)
{
    pthread_mutex_lock(&f->sync_mu);
    f->syncs_pending++;
    pthread_mutex_unlock(&f->sync_mu);
    if (log_flush_request(p->log, log_end_offset(p->log), fetcher_on_synced, f) != 0) {
        log_flush(p->log, NULL); /* no memory for the request: sync here */
        fetcher_on_synced(f, 0);
    }
}

static int fetcher_build(struct fetcher *f, struct arena *a, struct kmsg_fetch_request *req)
{
    const struct broker_config *cfg = &f->all->b->cfg;
    kmsg_fetch_request_init(req);
    req->replica_id = cfg->node_id;
    /* With a sync in flight, do not park at the leader: the next fetch reports it done. */
    req->max_wait_ms = fetcher_syncs_pending(f) > 0 ? 0 : cfg->replica_fetch_wait_max_ms;
    req->min_bytes = cfg->replica_fetch_min_bytes;
    req->max_bytes = cfg->replica_fetch_response_max_bytes;
    req->session_id = 0;
    req->session_epoch = -1; /* a full fetch without a session (KIP-227) */
    struct kmsg_fetch_request_fetch_topic *t = arena_calloc(a, f->n, sizeof(*t));
    struct kmsg_fetch_request_fetch_partition *pp = arena_calloc(a, f->n, sizeof(*pp));
    if (t == NULL || pp == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < f->n; i++) {
        struct partition *p = f->parts[i];
        kmsg_fetch_request_fetch_topic_init(&t[i]);
        t[i].topic = (struct kstr){p->topic, (int32_t)strlen(p->topic)};
        kmsg_fetch_request_fetch_partition_init(&pp[i]);
        pp[i].partition = p->index;
        pp[i].current_leader_epoch = f->epochs[i];
        pp[i].fetch_offset = log_end_offset(p->log);
        pp[i].last_fetched_epoch = log_latest_epoch(p->log);
        pp[i].log_start_offset = log_start_offset(p->log);
        pp[i].partition_max_bytes = cfg->replica_fetch_max_bytes;
        /* Read after the fetch offset: what is synced is never above what is reported held. */
        pp[i].gregor_durable_offset = cfg->acks_all_fsync ? log_recovery_point(p->log) : -1;
        t[i].partitions = (struct kmsg_fetch_request_fetch_partition_array){1, &pp[i]};
    }
    req->topics = (struct kmsg_fetch_request_fetch_topic_array){(int32_t)f->n, t};
    return 0;
}

/* follow_mu held: truncation for a diverging epoch (Kafka's getOffsetTruncationState). */
static void fetcher_truncate_diverging(struct partition *p,
                                       const struct kmsg_fetch_response_epoch_end_offset *d,
                                       int64_t expiration_ms)
{
    int64_t leo = log_end_offset(p->log);
    int64_t target = d->end_offset < leo ? d->end_offset : leo;
    int64_t mine = -1;
    int32_t mine_epoch = -1;
    if (log_end_offset_for_epoch(p->log, d->epoch, &mine, &mine_epoch) == 0 && mine < target)
        target = mine;
    if (target < 0)
        target = 0;
    if (target >= leo)
        return;
    int rc = producer_partition_truncate(p, target, false, expiration_ms);
    logger_info("replica",
                "%s-%d: truncated from %" PRId64 " to %" PRId64
                " (diverging epoch %d ends at %" PRId64 " on the leader): %d",
                p->topic, p->index, leo, target, d->epoch, d->end_offset, rc);
}

/* follow_mu held: the leader does not have our fetch offset. */
static void fetcher_out_of_range(struct partition *p,
                                 const struct kmsg_fetch_response_partition_data *pd,
                                 int64_t expiration_ms)
{
    int64_t leo = log_end_offset(p->log);
    int rc = 0;
    if (pd->log_start_offset >= 0 && leo < pd->log_start_offset) {
        rc = producer_partition_truncate(p, pd->log_start_offset, true, expiration_ms);
        logger_info("replica", "%s-%d: behind the leader's log start: restarted at %" PRId64 ": %d",
                    p->topic, p->index, pd->log_start_offset, rc);
    } else if (pd->high_watermark >= 0 && pd->high_watermark < leo) {
        /* Ahead of the leader (it was elected uncleanly, or lost an unflushed tail): what is
         * above its high watermark here was never committed. */
        rc = producer_partition_truncate(p, pd->high_watermark, false, expiration_ms);
        logger_warn("replica",
                    "%s-%d: ahead of the leader: truncated from %" PRId64 " to %" PRId64 ": %d",
                    p->topic, p->index, leo, pd->high_watermark, rc);
    }
}

/* follow_mu held: appends the leader's batches; returns true when bytes were appended. */
static bool fetcher_append(struct partition *p, const struct kmsg_fetch_response_partition_data *pd)
{
    if (pd->records.data == NULL || pd->records.len <= 0)
        return false;
    struct log_append_info info;
    int rc = producer_append_replica(p, pd->records.data, (size_t)pd->records.len, &info);
    if (rc != 0) {
        logger_warn("replica", "%s-%d: cannot append %d bytes at %" PRId64 ": %d", p->topic,
                    p->index, pd->records.len, log_end_offset(p->log), rc);
        return false;
    }
    return true;
}

/* follow_mu held: the leader's log start moved (DeleteRecords, retention): ours follows, up to
 * our high watermark (Kafka's maybeIncrementLogStartOffset on a follower), so a consumer or a
 * new leader never shows records the leader already deleted. */
static void fetcher_follow_log_start(struct partition *p, int64_t leader_start)
{
    int64_t hw = log_high_watermark(p->log);
    int64_t target = leader_start < hw ? leader_start : hw;
    if (target <= log_start_offset(p->log))
        return;
    int rc = log_delete_records(p->log, target, clock_wall_ms());
    if (rc != 0)
        logger_warn("replica", "%s-%d: cannot move the log start to the leader's %" PRId64 ": %d",
                    p->topic, p->index, target, rc);
}

/* One partition's answer. Returns 1 when data was appended, -1 on a partition error. */
static int fetcher_handle(struct fetcher *f, size_t i,
                          const struct kmsg_fetch_response_partition_data *pd)
{
    struct partition *p = f->parts[i];
    int64_t expiration = f->all->b->cfg.producer_id_expiration_ms;
    int result = 0;
    bool hw_moved = false;
    pthread_mutex_lock(&p->follow_mu);
    if (atomic_load(&p->leader) != f->leader || atomic_load(&p->leader_epoch) != f->epochs[i] ||
        atomic_load(&p->deleted)) {
        pthread_mutex_unlock(&p->follow_mu); /* leadership moved meanwhile: drop the answer */
        return 0;
    }
    if (pd->error_code == KAFKA_ERR_OFFSET_OUT_OF_RANGE) {
        fetcher_out_of_range(p, pd, expiration);
    } else if (pd->error_code != 0) {
        result = -1;
    } else if (pd->diverging_epoch.epoch >= 0) {
        fetcher_truncate_diverging(p, &pd->diverging_epoch, expiration);
    } else {
        result = fetcher_append(p, pd) ? 1 : 0;
        /* The leader's high watermark, never above our own log end: consumers reading from
         * this follower (KIP-392) see nothing the leader has not committed. */
        int64_t leo = log_end_offset(p->log);
        int64_t hw = pd->high_watermark < leo ? pd->high_watermark : leo;
        if (hw > log_high_watermark(p->log)) {
            log_set_high_watermark(p->log, hw);
            hw_moved = true;
        }
        fetcher_follow_log_start(p, pd->log_start_offset);
    }
    pthread_mutex_unlock(&p->follow_mu);
    /* Fetches parked here read up to the high watermark: wake them when it moves too. */
    if (result == 1 || hw_moved)
        partition_notify_waiters(p);
    return result;
}

/* One Fetch round trip; returns the time to wait before the next (0: at once). */
static int64_t fetcher_round(struct fetcher *f)
{
    struct broker *b = f->all->b;
    char host[256];
    int port;
    if (fetcher_leader_address(f, host, sizeof(host), &port) != 0)
        return b->cfg.replica_fetch_backoff_ms;
    struct arena arena;
    arena_init(&arena, 0);
    struct kmsg_fetch_request req;
    struct kmsg_fetch_response resp;
    uint8_t *buf = NULL;
    int rc = fetcher_build(f, &arena, &req);
    if (rc == 0)
        rc = controller_client_call(&f->client, host, port, KPROTO_API_FETCH, FETCHER_VERSION, &req,
                                    &resp, &buf, &arena, b->cfg.replica_fetch_wait_max_ms + 3000);
    int64_t wait = 0;
    if (rc == 0 && resp.error_code != 0)
        rc = -EPROTO;
    if (rc != 0) {
        if (f->last_error != -1)
            logger_info("replica", "fetch from leader %d at %s:%d failed: %d", f->leader, host,
                        port, rc);
        f->last_error = -1;
        wait = b->cfg.replica_fetch_backoff_ms;
    }
    bool appended = false;
    size_t errors = 0;
    int16_t first_error = 0;
    const struct partition *first_failed = NULL;
    for (int32_t t = 0; rc == 0 && t < resp.responses.n && (size_t)t < f->n; t++) {
        const struct kmsg_fetch_response_fetchable_topic_response *tr = &resp.responses.v[t];
        if (tr->partitions.n != 1 || tr->partitions.v[0].partition_index != f->parts[t]->index)
            continue;
        int r = fetcher_handle(f, (size_t)t, &tr->partitions.v[0]);
        appended |= r > 0;
        if (r < 0 && errors++ == 0) {
            first_error = tr->partitions.v[0].error_code;
            first_failed = f->parts[t];
        }
        if (r > 0 && b->cfg.acks_all_fsync)
            fetcher_request_sync(f, f->parts[t]);
    }
    /* Nothing new arrived while a sync is in flight: wait for it rather than spin with
     * max_wait 0; the next fetch then reports it and parks at the leader as usual. */
    if (!appended && fetcher_syncs_pending(f) > 0)
        fetcher_wait_synced(f);
    if (rc == 0) {
        if (errors > 0 && (first_error != f->last_error || errors != f->last_errors))
            logger_info("replica", "fetch from leader %d: error %d for %zu partition(s) (%s-%d...)",
                        f->leader, first_error, errors, first_failed->topic, first_failed->index);
        f->last_error = first_error;
        f->last_errors = errors;
        if (errors > 0 && !appended)
            wait = FETCHER_ERROR_BACKOFF_MS;
    }
    free(buf);
    arena_free(&arena);
    return wait;
}

static void *fetcher_thread(void *arg)
{
    struct fetcher *f = arg;
    struct replica_fetchers *all = f->all;
    controller_client_init(&f->client, all->b->cfg.node_id, &all->b->interbroker);
    while (!fetcher_stopping(all)) {
        f->n = 0;
        partition_registry_each(all->b->parts, fetcher_collect_one, f);
        if (f->n == 0) {
            controller_client_close(&f->client); /* nothing to follow here for now */
            fetcher_sleep(all, 1000);
            continue;
        }
        int64_t wait = fetcher_round(f);
        fetcher_release(f);
        if (wait > 0)
            fetcher_sleep(all, wait);
    }
    fetcher_wait_synced(f);
    assert(fetcher_syncs_pending(f) == 0 && "no flush callback may outlive the fetcher");
    fetcher_release(f);
    controller_client_close(&f->client);
    return NULL;
}

int replica_fetchers_create(struct broker *b)
{
    struct replica_fetchers *all = calloc(1, sizeof(*all));
    if (all == NULL || clock_cond_init_mono(&all->cond) != 0) {
        free(all);
        return -ENOMEM;
    }
    all->b = b;
    pthread_mutex_init(&all->mu, NULL);
    b->fetchers = all;
    return 0;
}

static bool fetchers_have(struct replica_fetchers *all, int32_t leader)
{
    for (size_t i = 0; i < all->n; i++)
        if (all->list[i]->leader == leader)
            return true;
    return false;
}

static void fetcher_free(struct fetcher *f)
{
    free(f->parts);
    free(f->epochs);
    pthread_mutex_destroy(&f->sync_mu);
    pthread_cond_destroy(&f->sync_cond);
    free(f);
}

/* all->mu held: starts num.replica.fetchers threads for `leader`. */
static void fetchers_start_for(struct replica_fetchers *all, int32_t leader)
{
    int n = all->b->cfg.num_replica_fetchers;
    for (int id = 0; id < n; id++) {
        if (all->n == all->cap) {
            size_t cap = all->cap ? all->cap * 2 : 8;
            struct fetcher **list = realloc(all->list, cap * sizeof(*list));
            if (list == NULL)
                return;
            all->list = list;
            all->cap = cap;
        }
        struct fetcher *f = calloc(1, sizeof(*f));
        if (f == NULL)
            return;
        f->all = all;
        f->leader = leader;
        f->fetcher_id = id;
        pthread_mutex_init(&f->sync_mu, NULL);
        if (clock_cond_init_mono(&f->sync_cond) != 0 ||
            pthread_create(&f->thread, NULL, fetcher_thread, f) != 0) {
            logger_error("replica", "cannot start a fetcher thread for leader %d", leader);
            fetcher_free(f);
            return;
        }
        all->list[all->n++] = f;
        logger_info("replica", "fetcher %d for leader %d started", id, leader);
    }
}

struct leader_scan {
    int32_t self;
    int32_t leaders[64];
    size_t n;
};

static void fetchers_scan_one(struct partition *p, void *arg)
{
    struct leader_scan *s = arg;
    int32_t leader = atomic_load(&p->leader);
    if (leader < 0 || leader == s->self || atomic_load(&p->deleted))
        return;
    for (size_t i = 0; i < s->n; i++)
        if (s->leaders[i] == leader)
            return;
    if (s->n < sizeof(s->leaders) / sizeof(s->leaders[0]))
        s->leaders[s->n++] = leader;
}

void replica_fetchers_on_image(struct broker *b)
{
    struct replica_fetchers *all = b->fetchers;
    if (all == NULL || b->parts == NULL)
        return;
    struct leader_scan scan = {.self = b->cfg.node_id};
    partition_registry_each(b->parts, fetchers_scan_one, &scan);
    pthread_mutex_lock(&all->mu);
    if (!all->stop) {
        for (size_t i = 0; i < scan.n; i++)
            if (!fetchers_have(all, scan.leaders[i]))
                fetchers_start_for(all, scan.leaders[i]);
        all->image_seq++;
        pthread_cond_broadcast(&all->cond);
    }
    pthread_mutex_unlock(&all->mu);
}

void replica_fetchers_stop(struct broker *b)
{
    struct replica_fetchers *all = b->fetchers;
    if (all == NULL)
        return;
    pthread_mutex_lock(&all->mu);
    all->stop = true;
    pthread_cond_broadcast(&all->cond);
    pthread_mutex_unlock(&all->mu);
    /* No thread is added once stop is set. */
    for (size_t i = 0; i < all->n; i++) {
        pthread_join(all->list[i]->thread, NULL);
        fetcher_free(all->list[i]);
    }
    all->n = 0;
}

void replica_fetchers_free(struct broker *b)
{
    struct replica_fetchers *all = b->fetchers;
    if (all == NULL)
        return;
    replica_fetchers_stop(b);
    free(all->list);
    pthread_mutex_destroy(&all->mu);
    pthread_cond_destroy(&all->cond);
    free(all);
    b->fetchers = NULL;
}
