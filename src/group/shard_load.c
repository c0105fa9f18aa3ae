/*
 * Loading a shard: replaying its __consumer_offsets partition into the shard's table (Kafka's
 * GroupMetadataManager.loadGroupsAndOffsets). The first call that needs an unloaded shard
 * starts a short-lived loader thread (shard_ensure_loading); while it runs only the loader
 * touches the shard's table and calls get COORDINATOR_LOAD_IN_PROGRESS. The loader posts the
 * result to the owner worker (load_finished), which arms the members' session timers and the
 * offsets expiry timer and marks the shard LOADED.
 *
 * Replay: the newest group metadata record of a group wins (a tombstone empties it), offset
 * commits apply in log order (a tombstone removes the partition's commit); groups with neither
 * metadata nor offsets at the end are dropped. Consumer groups (KIP-848) are rebuilt from their
 * own records (consumer_records.c); their members' session timers restart once loaded.
 *
 * Transactional offset commits (TxnOffsetCommit: batches with the transactional bit and the
 * producer's id) are held per producer until its marker: COMMIT applies them at the marker's
 * place in the log, ABORT drops them; those still open at the end go to env->txn_pending (the
 * broker keeps them for the marker still to come).
 */
#include "group/consumer_group.h"
#include "group/group_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/logger.h"
#include "record/control_record.h"
#include "record/record_batch.h"
#include "record/record_iter.h"

static void load_apply_group(struct shard *s, const struct offsets_record *rec)
{
    struct group *g = group_find(s, rec->group);
    if (g == NULL && rec->tombstone)
        return;
    if (g == NULL && (g = group_create(s, rec->group)) == NULL)
        return;
    /* Reset membership; the newest record wins. */
    while (g->members) {
        struct member *m = g->members;
        g->members = m->next;
        member_free(m);
    }
    g->nmembers = 0;
    gstr_free(&g->protocol_type);
    gstr_free(&g->protocol_name);
    gstr_free(&g->leader);
    g->generation = 0;
    g->state = GS_EMPTY;
    g->load_meta = !rec->tombstone;
    if (rec->tombstone)
        return;
    const struct kmsg_group_metadata_value *v = &rec->group_value;
    if (v->protocol_type.len > 0)
        gstr_from_kstr(&g->protocol_type, v->protocol_type);
    gstr_from_kstr(&g->protocol_name, v->protocol);
    gstr_from_kstr(&g->leader, v->leader);
    g->generation = v->generation;
    g->state_ts = v->current_state_timestamp > 0 ? v->current_state_timestamp : group_now_ms();
    struct member **tail = &g->members;
    for (int32_t i = 0; i < v->members.n; i++) {
        const struct kmsg_group_metadata_value_member_metadata *mm = &v->members.v[i];
        struct member *m = calloc(1, sizeof(*m));
        if (m == NULL)
            break;
        m->g = g;
        m->id.len = m->instance_id.len = m->client_id.len = m->client_host.len = -1;
        m->protocol_type.len = m->assignment.len = -1;
        gstr_from_kstr(&m->id, mm->member_id);
        gstr_from_kstr(&m->instance_id, mm->group_instance_id);
        gstr_from_kstr(&m->client_id, mm->client_id);
        gstr_from_kstr(&m->client_host, mm->client_host);
        gstr_from_kstr(&m->protocol_type, v->protocol_type);
        m->session_timeout = mm->session_timeout;
        m->rebalance_timeout =
            mm->rebalance_timeout > 0 ? mm->rebalance_timeout : mm->session_timeout;
        m->protocols = calloc(1, sizeof(*m->protocols));
        if (m->protocols) {
            m->nprotocols = 1;
            m->protocols[0].name.len = m->protocols[0].metadata.len = -1;
            gstr_from_kstr(&m->protocols[0].name,
                           v->protocol.len >= 0 ? v->protocol : KSTR_LIT(""));
            gstr_from_kbytes(&m->protocols[0].metadata, mm->subscription);
        }
        gstr_from_kbytes(&m->assignment, mm->assignment);
        *tail = m;
        tail = &m->next;
        g->nmembers++;
    }
    g->state = g->nmembers > 0 ? GS_STABLE : GS_EMPTY;
}

static void load_apply_commit(struct shard *s, const struct offsets_record *rec)
{
    if (rec->kind == OFFSETS_RECORD_COMMIT) {
        struct group *g = group_find(s, rec->group);
        if (g == NULL) {
            if (rec->tombstone)
                return;
            if ((g = group_create(s, rec->group)) == NULL)
                return;
        }
        struct offset_entry *e = group_offset_find(g, rec->topic.ptr, (size_t)rec->topic.len,
                                                   rec->partition, !rec->tombstone);
        if (e == NULL)
            return;
        if (rec->tombstone) {
            group_offset_remove(g, e);
            return;
        }
        e->offset = rec->commit.offset;
        e->leader_epoch = rec->commit.leader_epoch;
        gstr_from_kstr(&e->metadata,
                       rec->commit.metadata.len >= 0 ? rec->commit.metadata : KSTR_LIT(""));
        e->commit_ts = rec->commit.commit_timestamp;
        e->valid = true;
    }
}

/* Transactional batches of __consumer_offsets waiting for their producer's marker. */
struct load_txn_batch {
    struct load_txn_batch *next;
    int64_t producer_id;
    size_t len;
    uint8_t bytes[];
};

static int load_records(struct shard *s, const uint8_t *p, size_t len,
                        const struct record_batch_header *h, int64_t pending_pid);

static int load_batch(struct shard *s, const uint8_t *p, size_t len, struct load_txn_batch **txns)
{
    struct record_batch_header h;
    int rc = record_batch_header_parse(p, len, &h);
    if (rc != 0)
        return rc;
    if (h.attributes & RECORD_ATTR_CONTROL) {
        struct control_marker m;
        if (h.producer_id < 0 || len <= RECORD_BATCH_HEADER_SIZE ||
            control_marker_parse(p + RECORD_BATCH_HEADER_SIZE, len - RECORD_BATCH_HEADER_SIZE,
                                 &m) != 0)
            return 0;
        /* The producer's held batches, oldest first: applied on COMMIT, dropped on ABORT. */
        struct load_txn_batch *mine = NULL, **tail = &mine;
        for (struct load_txn_batch **pp = txns; *pp;) {
            struct load_txn_batch *t = *pp;
            if (t->producer_id == h.producer_id) {
                *pp = t->next;
                t->next = NULL;
                *tail = t;
                tail = &t->next;
            } else {
                pp = &t->next;
            }
        }
        while (mine) {
            struct load_txn_batch *t = mine;
            mine = t->next;
            struct record_batch_header th;
            if (m.type == CONTROL_TYPE_COMMIT &&
                record_batch_header_parse(t->bytes, t->len, &th) == 0)
                load_records(s, t->bytes, t->len, &th, -1);
            free(t);
        }
        return 0;
    }
    if ((h.attributes & RECORD_ATTR_TRANSACTIONAL) && h.producer_id >= 0) {
        struct load_txn_batch *t = malloc(sizeof(*t) + len);
        if (t == NULL)
            return -ENOMEM;
        t->producer_id = h.producer_id;
        t->len = len;
        memcpy(t->bytes, p, len);
        /* Appended at the tail: a producer's batches stay in log order. */
        struct load_txn_batch **pp = txns;
        while (*pp)
            pp = &(*pp)->next;
        t->next = NULL;
        *pp = t;
        return 0;
    }
    return load_records(s, p, len, &h, -1);
}

/* Applies the records of one batch (pending_pid < 0), or hands them to env->txn_pending as
 * producer pending_pid's open transaction. */
static int load_records(struct shard *s, const uint8_t *p, size_t len,
                        const struct record_batch_header *hp, int64_t pending_pid)
{
    struct record_batch_header h = *hp;
    int rc;
    struct record_iter it;
    rc = record_iter_init(&it, p, record_batch_size(&h), (size_t)64 << 20);
    struct arena scratch;
    arena_init(&scratch, 0);
    struct record rec;
    while (rc == 0 && (rc = record_iter_next(&it, &rec)) == 1) {
        struct offsets_record orec;
        rc = offsets_decode_record(rec.key, rec.key_len, rec.value, rec.value_len, &scratch, &orec);
        if (rc != 0) {
            logger_warn("group", "%s-%d: skipping an undecodable record at offset %lld",
                        OFFSETS_TOPIC, s->index, (long long)rec.offset);
            rc = 0;
            continue;
        }
        if (pending_pid >= 0) {
            const struct group_env *env = s->gc ? &s->gc->env : NULL;
            if (orec.kind == OFFSETS_RECORD_COMMIT && !orec.tombstone && env && env->txn_pending)
                env->txn_pending(env->ctx, s->index, pending_pid, orec.group, orec.topic,
                                 orec.partition, &orec.commit);
        } else if (orec.kind == OFFSETS_RECORD_GROUP) {
            load_apply_group(s, &orec);
        } else if (orec.kind == OFFSETS_RECORD_CONSUMER) {
            cg_replay(s, &orec, &scratch);
        } else {
            load_apply_commit(s, &orec);
        }
        arena_reset(&scratch);
    }
    arena_free(&scratch);
    record_iter_release(&it);
    return rc < 0 ? rc : 0;
}

int shard_load(struct shard *s, struct log *log)
{
    const struct group_env *env = s->gc ? &s->gc->env : NULL;
    if (env && env->txn_pending_clear) /* before the end is read: the replay restores them */
        env->txn_pending_clear(env->ctx, s->index);
    int64_t off = log_start_offset(log);
    /* To the log end, as Kafka's GroupMetadataManager (FetchLogEnd): a new leader's high
     * watermark can lag what it holds (it learns the HW on its fetches), and as the leader
     * everything it holds is what the followers will hold. */
    int64_t end = log_end_offset(log);
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    struct load_txn_batch *txns = NULL;
    while (off < end && rc == 0) {
        struct log_read_result res;
        rc = log_read(log, off, 1 << 20, end, true, &res);
        if (rc == 0 && res.range.length > 0) {
            size_t len = (size_t)res.range.length;
            if (len > cap) {
                uint8_t *nb = realloc(buf, len);
                if (nb == NULL)
                    rc = -ENOMEM;
                else {
                    buf = nb;
                    cap = len;
                }
            }
            size_t got = 0;
            while (rc == 0 && got < len) {
                ssize_t n = pread(res.range.fd, buf + got, len - got,
                                  (off_t)(res.range.position + (int64_t)got));
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    rc = n < 0 ? -errno : -EIO;
                else
                    got += (size_t)n;
            }
            size_t pos = 0;
            while (rc == 0 && pos + RECORD_BATCH_HEADER_SIZE <= len) {
                struct record_batch_header h;
                if (record_batch_header_parse(buf + pos, len - pos, &h) != 0 ||
                    record_batch_size(&h) > len - pos)
                    break;
                rc = load_batch(s, buf + pos, record_batch_size(&h), &txns);
                pos += record_batch_size(&h);
            }
            off = res.next_offset > off ? res.next_offset : end;
        } else if (rc == 0) {
            off = end;
        }
        log_read_release(&res);
    }
    free(buf);
    /* Transactions still open: the broker holds their offsets until the marker. */
    while (txns) {
        struct load_txn_batch *t = txns;
        txns = t->next;
        struct record_batch_header th;
        if (rc == 0 && record_batch_header_parse(t->bytes, t->len, &th) == 0)
            load_records(s, t->bytes, t->len, &th, t->producer_id);
        free(t);
    }
    /* Drop groups that have neither metadata nor offsets (tombstoned). */
    for (size_t b = 0; b < s->nbuckets; b++) {
        struct group **pp = &s->buckets[b];
        while (*pp) {
            struct group *g = *pp;
            cg_replay_finish(g);
            if (g->noffsets == 0 && !g->load_meta) {
                *pp = g->next;
                s->ngroups--;
                group_free(g, false);
            } else {
                pp = &g->next;
            }
        }
    }
    return rc;
}

struct load_job {
    struct shard *s;
    struct log *log;
    void *ref;
    int rc;
    int64_t start_ms;
};

/* The offsets retention check (offsets.retention.check.interval.ms), armed once loaded. */
static void shard_expiry_fired(struct net_timer *t)
{
    struct shard *s = t->arg;
    if (atomic_load(&s->gc->stopping))
        return;
    shard_expire_offsets(s);
    net_timer_start(s->worker, &s->expiry_timer, s->gc->cfg.retention_check_interval_ms,
                    shard_expiry_fired, s);
}

static void load_finished(void *arg)
{
    struct load_job *j = arg;
    struct shard *s = j->s;
    if (j->rc != 0) {
        logger_error("group", "loading %s-%d failed: %d", OFFSETS_TOPIC, s->index, j->rc);
        atomic_store(&s->state, SHARD_FAILED);
    } else {
        for (size_t b = 0; b < s->nbuckets; b++)
            for (struct group *g = s->buckets[b]; g; g = g->next) {
                group_arm_loaded_members(g);
                cg_after_load(g);
            }
        atomic_store(&s->state, SHARD_LOADED);
        int64_t iv = s->gc->cfg.retention_check_interval_ms;
        net_timer_start(s->worker, &s->expiry_timer, iv, shard_expiry_fired, s);
        logger_info("group", "loaded %zu groups from %s-%d in %lld ms", s->ngroups, OFFSETS_TOPIC,
                    s->index, (long long)(clock_mono_ms() - j->start_ms));
        /* Leadership may have moved while the loader read: what it read may be stale. */
        if (s->gc->env.is_leader && !s->gc->env.is_leader(s->gc->env.ctx, s->index))
            shard_unload_begin(s);
    }
    free(j);
}

static void *load_thread(void *arg)
{
    struct load_job *j = arg;
    struct group_coordinator *gc = j->s->gc;
    j->rc = shard_load(j->s, j->log);
    gc->env.log_put(j->ref);
    if (net_worker_post(j->s->worker, load_finished, j) != 0)
        free(j); /* shutting down; destroy frees the groups */
    return NULL;
}

int shard_ensure_loading(struct group_coordinator *gc, struct shard *s)
{
    int st = atomic_load(&s->state);
    if (st != SHARD_UNLOADED)
        return st;
    pthread_mutex_lock(&gc->load_mu);
    st = atomic_load(&s->state);
    if (st == SHARD_UNLOADED && !atomic_load(&gc->stopping)) {
        struct load_job *j = calloc(1, sizeof(*j));
        struct net_worker *w = gc->env.worker_for(gc->env.ctx, s->index);
        if (j && w) {
            j->s = s;
            j->start_ms = clock_mono_ms();
            j->log = gc->env.log_get(gc->env.ctx, s->index, &j->ref);
        }
        if (j && w && j->log) {
            if (s->loader_started) { /* a load before an unload: that thread has finished */
                pthread_join(s->loader, NULL);
                s->loader_started = false;
            }
            s->worker = w;
            atomic_store(&s->state, SHARD_LOADING);
            if (pthread_create(&s->loader, NULL, load_thread, j) == 0) {
                s->loader_started = true;
            } else {
                gc->env.log_put(j->ref);
                free(j);
                atomic_store(&s->state, SHARD_UNLOADED);
            }
        } else {
            if (j && j->log)
                gc->env.log_put(j->ref);
            free(j);
        }
        st = atomic_load(&s->state);
    }
    pthread_mutex_unlock(&gc->load_mu);
    return st;
}

void group_coordinator_prepare(struct group_coordinator *gc, int32_t shard)
{
    if (gc && shard >= 0 && shard < gc->nshards)
        shard_ensure_loading(gc, &gc->shards[shard]);
}
