/* A partition's replicas, ISR and high watermark on its leader; see replica_set.h. */
#include "broker/replica_set.h"

#include <assert.h>
#include <string.h>

#include "base/lock.h"
#include "base/logger.h"
#include "broker/partition.h"
#include "proto/gen/errors.h"

static struct replica_follower *rs_follower(struct replica_set *rs, int32_t id)
{
    for (uint32_t i = 0; i < rs->n_followers; i++)
        if (rs->followers[i].id == id)
            return &rs->followers[i];
    return NULL;
}

void replica_set_init(struct replica_set *rs, int32_t self)
{
    memset(rs, 0, sizeof(*rs));
    pthread_mutex_init(&rs->mu, NULL);
    rs->self = self;
    rs->leader_epoch = -1;
    rs->partition_epoch = -1;
    rs->min_isr = 1;
}

/* Calls done on every waiter of the detached list `w`. */
static void rs_fire(struct hw_waiter *w, int16_t error)
{
    while (w) {
        struct hw_waiter *next = w->next;
        w->done(w, error);
        w = next;
    }
}

void replica_set_destroy(struct replica_set *rs)
{
    struct hw_waiter *w = rs->waiters;
    rs->waiters = NULL;
    rs_fire(w, KAFKA_ERR_NOT_LEADER_OR_FOLLOWER);
    pthread_mutex_destroy(&rs->mu);
}

/* The maximal ISR: the ISR plus the members of a change in flight. */
static uint32_t rs_maximal_isr(const struct replica_set *rs, int32_t *out)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < rs->n_isr; i++)
        out[n++] = rs->isr[i];
    for (uint32_t i = 0; rs->alter_in_flight && i < rs->n_pending; i++)
        if (!metadata_ids_contain(out, n, rs->pending[i]) && n < REPLICA_MAX)
            out[n++] = rs->pending[i];
    return n;
}

/* rs->mu held: the high watermark the rule allows now, or -1 when it may not move. */
static int64_t rs_compute_hw(struct replica_set *rs, struct partition *p)
{
    assert(lock_mutex_held(&rs->mu));
    if (!rs->leader || rs->oversize)
        return -1;
    int32_t isr[REPLICA_MAX];
    uint32_t n = rs_maximal_isr(rs, isr);
    if ((int)n < rs->min_isr)
        return -1;
    int64_t hw = log_end_offset(p->log);
    for (uint32_t i = 0; i < n; i++) {
        if (isr[i] == rs->self)
            continue;
        const struct replica_follower *f = rs_follower(rs, isr[i]);
        int64_t leo = f ? f->durable : -1;
        if (leo < hw)
            hw = leo;
    }
    return hw;
}

/* rs->mu held: detaches the waiters the high watermark `hw` satisfies. */
static struct hw_waiter *rs_take_satisfied(struct replica_set *rs, int64_t hw)
{
    assert(lock_mutex_held(&rs->mu));
    struct hw_waiter *done = NULL, **pp = &rs->waiters;
    while (*pp) {
        struct hw_waiter *w = *pp;
        if (w->offset <= hw) {
            *pp = w->next;
            w->next = done;
            done = w;
        } else {
            pp = &w->next;
        }
    }
    return done;
}

/* rs->mu held: recomputes and publishes the high watermark; returns the waiters it satisfied
 * (fire them after unlocking) and sets *moved when it advanced. */
static struct hw_waiter *rs_advance(struct replica_set *rs, struct partition *p, bool *moved)
{
    int64_t hw = rs_compute_hw(rs, p);
    int64_t old = log_high_watermark(p->log);
    *moved = false;
    if (hw > old) {
        log_set_high_watermark(p->log, hw);
        *moved = true;
    }
    assert(log_high_watermark(p->log) >= old && "the high watermark never moves back");
    assert(log_high_watermark(p->log) <= log_end_offset(p->log));
    return rs->waiters ? rs_take_satisfied(rs, log_high_watermark(p->log)) : NULL;
}

static void rs_reset_followers(struct replica_set *rs, int64_t now_ms, int64_t leo)
{
    rs->n_followers = 0;
    for (uint32_t i = 0; i < rs->n_replicas; i++) {
        if (rs->replicas[i] == rs->self)
            continue;
        bool in_isr = metadata_ids_contain(rs->isr, rs->n_isr, rs->replicas[i]);
        rs->followers[rs->n_followers++] = (struct replica_follower){
            .id = rs->replicas[i],
            .leo = -1,
            .durable = -1,
            .log_start = -1,
            .last_caught_up_ms = in_isr ? now_ms : 0,
            .last_fetch_ms = 0,
            .last_fetch_leader_leo = leo,
        };
    }
}

/* Keeps follower states across an assignment change; adds new ones, drops removed ones. */
static void rs_sync_followers(struct replica_set *rs, int64_t leo)
{
    struct replica_follower keep[REPLICA_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < rs->n_replicas; i++) {
        if (rs->replicas[i] == rs->self)
            continue;
        struct replica_follower *f = rs_follower(rs, rs->replicas[i]);
        keep[n++] = f ? *f
                      : (struct replica_follower){.id = rs->replicas[i],
                                                  .leo = -1,
                                                  .durable = -1,
                                                  .log_start = -1,
                                                  .last_fetch_leader_leo = leo};
    }
    memcpy(rs->followers, keep, n * sizeof(keep[0]));
    rs->n_followers = n;
}

/* Copies at most REPLICA_MAX ids; more mark the set oversize (see REPLICA_MAX). */
static uint32_t copy_ids(struct replica_set *rs, int32_t *dst, const int32_t *src, uint32_t n)
{
    if (n > REPLICA_MAX) {
        if (!rs->oversize)
            logger_error("replica",
                         "%u replicas: more than %d are not tracked; the high watermark "
                         "of this partition will not move",
                         n, REPLICA_MAX);
        rs->oversize = true;
        n = REPLICA_MAX;
    }
    memcpy(dst, src, n * sizeof(*src));
    return n;
}

void replica_set_on_image(struct partition *p, const struct metadata_partition *mp, int min_isr,
                          int64_t now_ms)
{
    struct replica_set *rs = &p->rs;
    pthread_mutex_lock(&rs->mu);
    bool was_leader = rs->leader;
    int32_t old_epoch = rs->leader_epoch;
    rs->n_replicas = copy_ids(rs, rs->replicas, mp->replicas, mp->n_replicas);
    rs->min_isr = min_isr > 0 ? min_isr : 1;
    if (mp->partition_epoch >= rs->partition_epoch || mp->leader_epoch != rs->leader_epoch) {
        /* A newer partition state than the one an ISR change in flight was based on: its
         * answer can only be a refusal now. */
        if (mp->partition_epoch > rs->partition_epoch || mp->leader_epoch != rs->leader_epoch)
            rs->alter_in_flight = false;
        rs->n_isr = copy_ids(rs, rs->isr, mp->isr, mp->n_isr);
        rs->partition_epoch = mp->partition_epoch;
    }
    rs->leader = mp->leader == rs->self;
    rs->leader_epoch = mp->leader_epoch;
    int64_t leo = log_end_offset(p->log);
    if (rs->leader && (!was_leader || old_epoch != mp->leader_epoch)) {
        rs->epoch_start_offset = leo;
        rs_reset_followers(rs, now_ms, leo);
    } else {
        rs_sync_followers(rs, leo);
    }
    struct hw_waiter *fail = NULL, *ok = NULL;
    int16_t fail_err = 0;
    bool moved = false;
    if (!rs->leader) {
        fail = rs->waiters;
        rs->waiters = NULL;
        fail_err = KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    } else {
        ok = rs_advance(rs, p, &moved);
        if ((int)rs->n_isr < rs->min_isr) {
            fail = rs->waiters;
            rs->waiters = NULL;
            fail_err = KAFKA_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
        }
    }
    atomic_store(&p->isr_size, (int)rs->n_isr);
    pthread_mutex_unlock(&rs->mu);
    rs_fire(ok, 0);
    rs_fire(fail, fail_err);
    if (moved)
        partition_notify_waiters(p);
}

void replica_set_on_append(struct partition *p)
{
    struct replica_set *rs = &p->rs;
    pthread_mutex_lock(&rs->mu);
    bool moved = false;
    struct hw_waiter *ok = rs_advance(rs, p, &moved);
    pthread_mutex_unlock(&rs->mu);
    rs_fire(ok, 0);
}

/* Kafka's Replica.updateFetchState: caught up when the fetch reached the leader's end now, or
 * the end the leader had at the follower's previous fetch. */
static void rs_update_follower(struct replica_follower *f, int64_t fetch_offset, int64_t leo,
                               int64_t now_ms)
{
    if (fetch_offset >= leo) {
        if (now_ms > f->last_caught_up_ms)
            f->last_caught_up_ms = now_ms;
    } else if (fetch_offset >= f->last_fetch_leader_leo) {
        if (f->last_fetch_ms > f->last_caught_up_ms)
            f->last_caught_up_ms = f->last_fetch_ms;
    }
    f->leo = fetch_offset;
    f->last_fetch_leader_leo = leo;
    f->last_fetch_ms = now_ms;
}

int replica_set_on_follower_fetch(struct partition *p, int32_t id, int64_t fetch_offset,
                                  int64_t log_start, int64_t durable, int64_t now_ms)
{
    struct replica_set *rs = &p->rs;
    pthread_mutex_lock(&rs->mu);
    struct replica_follower *f = rs->leader ? rs_follower(rs, id) : NULL;
    if (f == NULL) {
        pthread_mutex_unlock(&rs->mu);
        return -1;
    }
    int64_t leo = log_end_offset(p->log);
    rs_update_follower(f, fetch_offset, leo, now_ms);
    f->durable = durable >= 0 && durable < fetch_offset ? durable : fetch_offset;
    assert(f->durable <= f->leo);
    f->log_start = log_start;
    bool moved = false;
    struct hw_waiter *ok = rs_advance(rs, p, &moved);
    int64_t hw = log_high_watermark(p->log);
    int expand = !rs->alter_in_flight && !metadata_ids_contain(rs->isr, rs->n_isr, id) &&
                 fetch_offset >= hw && fetch_offset >= rs->epoch_start_offset;
    pthread_mutex_unlock(&rs->mu);
    rs_fire(ok, 0);
    if (moved)
        partition_notify_waiters(p);
    return expand;
}

int replica_set_wait_hw(struct partition *p, struct hw_waiter *w)
{
    struct replica_set *rs = &p->rs;
    pthread_mutex_lock(&rs->mu);
    int rc;
    if (!rs->leader) {
        rc = -KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
    } else if (log_high_watermark(p->log) >= w->offset) {
        rc = 1;
    } else if ((int)rs->n_isr < rs->min_isr) {
        rc = -KAFKA_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND;
    } else {
        w->next = rs->waiters;
        rs->waiters = w;
        rc = 0;
    }
    pthread_mutex_unlock(&rs->mu);
    return rc;
}

bool replica_set_next_isr_change(struct partition *p, int64_t now_ms, int64_t lag_ms, int32_t *isr,
                                 uint32_t *n, int32_t *leader_epoch, int32_t *partition_epoch)
{
    struct replica_set *rs = &p->rs;
    pthread_mutex_lock(&rs->mu);
    bool change = false;
    if (rs->leader && !rs->alter_in_flight) { /* one ISR change in flight at a time */
        int64_t hw = log_high_watermark(p->log);
        uint32_t k = 0;
        /* Shrink: ISR followers not caught up for lag_ms leave. */
        for (uint32_t i = 0; i < rs->n_isr; i++) {
            const struct replica_follower *f = rs_follower(rs, rs->isr[i]);
            bool lagging =
                rs->isr[i] != rs->self && (f == NULL || now_ms - f->last_caught_up_ms > lag_ms);
            if (lagging)
                change = true;
            else
                isr[k++] = rs->isr[i];
        }
        /* Expand: followers outside the ISR that reached the HW and this epoch's start. */
        for (uint32_t i = 0; i < rs->n_followers; i++) {
            const struct replica_follower *f = &rs->followers[i];
            if (!metadata_ids_contain(rs->isr, rs->n_isr, f->id) && f->leo >= 0 && f->leo >= hw &&
                f->leo >= rs->epoch_start_offset && k < REPLICA_MAX) {
                isr[k++] = f->id;
                change = true;
            }
        }
        assert(metadata_ids_contain(isr, k, rs->self) && "the leader never leaves its own ISR");
        if (change) {
            memcpy(rs->pending, isr, k * sizeof(*isr));
            rs->n_pending = k;
            rs->alter_in_flight = true;
            *n = k;
            *leader_epoch = rs->leader_epoch;
            *partition_epoch = rs->partition_epoch;
        }
    }
    pthread_mutex_unlock(&rs->mu);
    return change;
}

/* rs->mu held, an ISR change refused: followers it would have added must fetch again before
 * they are proposed again (Kafka proposes an expansion on a follower's fetch only: a dead or
 * fenced follower, refused as INELIGIBLE_REPLICA, is not proposed every round). */
static void rs_forget_proposed(struct replica_set *rs)
{
    for (uint32_t i = 0; i < rs->n_pending; i++) {
        struct replica_follower *f = rs_follower(rs, rs->pending[i]);
        if (f != NULL && !metadata_ids_contain(rs->isr, rs->n_isr, f->id))
            f->leo = -1;
    }
}

void replica_set_on_isr_result(struct partition *p, int16_t error, const int32_t *isr, uint32_t n,
                               int32_t leader_epoch, int32_t partition_epoch)
{
    struct replica_set *rs = &p->rs;
    pthread_mutex_lock(&rs->mu);
    rs->alter_in_flight = false;
    if (error != 0)
        rs_forget_proposed(rs);
    struct hw_waiter *ok = NULL, *fail = NULL;
    bool moved = false;
    if (error == 0 && leader_epoch == rs->leader_epoch && partition_epoch > rs->partition_epoch) {
        rs->n_isr = copy_ids(rs, rs->isr, isr, n);
        rs->partition_epoch = partition_epoch;
        atomic_store(&p->isr_size, (int)rs->n_isr);
        ok = rs_advance(rs, p, &moved);
        if ((int)rs->n_isr < rs->min_isr) {
            fail = rs->waiters;
            rs->waiters = NULL;
        }
    }
    pthread_mutex_unlock(&rs->mu);
    rs_fire(ok, 0);
    rs_fire(fail, KAFKA_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND);
    if (moved)
        partition_notify_waiters(p);
}

/* True when broker `id` is live in img and its rack is the client's. */
static bool rs_in_rack(const struct metadata_image *img, int32_t id, const char *rack,
                       size_t rack_len)
{
    const struct metadata_broker *mb = metadata_image_broker(img, id);
    return metadata_broker_usable(mb) && mb->rack != NULL && strlen(mb->rack) == rack_len &&
           memcmp(mb->rack, rack, rack_len) == 0;
}

/* Kafka's ReplicaView.comparator(): is a more caught up than b? (Its shorter time since the
 * last catch-up is the later last_caught_up_ms.) */
static bool rs_more_caught_up(const struct replica_follower *a, const struct replica_follower *b)
{
    if (a->leo != b->leo)
        return a->leo > b->leo;
    if (a->last_caught_up_ms != b->last_caught_up_ms)
        return a->last_caught_up_ms > b->last_caught_up_ms;
    return a->id > b->id;
}

int32_t replica_set_preferred_read_replica(struct partition *p, const struct metadata_image *img,
                                           const char *rack, size_t rack_len, int64_t fetch_offset)
{
    struct replica_set *rs = &p->rs;
    if (rack_len == 0)
        return -1;
    pthread_mutex_lock(&rs->mu);
    const struct replica_follower *best = NULL;
    if (rs->leader && !rs_in_rack(img, rs->self, rack, rack_len)) {
        for (uint32_t i = 0; i < rs->n_followers; i++) {
            const struct replica_follower *f = &rs->followers[i];
            /* The committed ISR, as Kafka's inSyncReplicaIds: a follower outside it may lag. */
            if (!metadata_ids_contain(rs->isr, rs->n_isr, f->id) || f->leo < fetch_offset ||
                f->log_start > fetch_offset || !rs_in_rack(img, f->id, rack, rack_len))
                continue;
            if (best == NULL || rs_more_caught_up(f, best))
                best = f;
        }
    }
    int32_t id = best ? best->id : -1;
    pthread_mutex_unlock(&rs->mu);
    return id;
}
