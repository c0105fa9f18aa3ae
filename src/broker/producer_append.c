/*
 * Produce-path glue for idempotent producers; see producer_append.h for the locking.
 *
 * Snapshots: Kafka writes one at each segment roll, named by the new segment's base offset.
 * Here a roll is noticed after the append that caused it (info->segment_base grew), and the
 * snapshot is named by the log end read under producer_mu, which is exactly the offset below
 * which the state is complete. Roll snapshots are not fsynced (a torn one fails its CRC and is
 * ignored at load); the one at close is.
 */
#include "broker/producer_append.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "base/clock.h"
#include "base/lock.h"
#include "base/logger.h"
#include "proto/gen/errors.h"
#include "record/control_record.h"
#include "storage/producer_state.h"
#include "storage/txn_index.h"

/* The last stable offset's input, for the fetch path (p->first_unstable) and for the cleaner,
 * which must not compact an open transaction (the log's copy). producer_mu held or p not yet
 * published. */
static void publish_first_unstable(struct partition *p, int64_t first)
{
    atomic_store(&p->first_unstable, first);
    log_set_first_unstable_offset(p->log, first);
}

/* log_active_producers_fn for the cleaner: the producers left after expiring idle ones (a
 * producer no longer here loses the batch kept for it). */
static int active_producers(void *arg, struct log_active_producer **out, size_t *n)
{
    struct partition *p = arg;
    pthread_mutex_lock(&p->producer_mu);
    producer_state_expire(p->producers, clock_wall_ms());
    size_t count = producer_state_count(p->producers);
    struct log_active_producer *v = count ? malloc(count * sizeof(*v)) : NULL;
    *n = v ? producer_state_active(p->producers, v, count) : 0;
    pthread_mutex_unlock(&p->producer_mu);
    *out = v;
    return count && v == NULL ? -ENOMEM : 0;
}

int producer_partition_open(struct partition *p, int64_t expiration_ms)
{
    pthread_mutex_init(&p->producer_mu, NULL);
    atomic_init(&p->producer_segment_base, -1);
    atomic_init(&p->first_unstable, -1);
    int64_t snap = -1;
    int rc = txn_index_open(log_dir_path(p->log), &p->txns);
    if (rc == 0) /* entries of markers lost with a torn tail; the replay finds the rest */
        txn_index_truncate(p->txns, log_end_offset(p->log));
    if (rc == 0)
        rc = producer_state_load(p->log, p->txns, expiration_ms, clock_wall_ms(), &p->producers,
                                 &snap);
    if (rc != 0) {
        logger_error("producer", "%s-%d: cannot load producer state: %d", p->topic, p->index, rc);
        txn_index_close(p->txns);
        p->txns = NULL;
        pthread_mutex_destroy(&p->producer_mu);
        return rc;
    }
    publish_first_unstable(p, producer_state_first_open_offset(p->producers));
    log_set_txn_index(p->log, p->txns); /* the cleaner drops entries of data it removed */
    log_set_active_producers_hook(p->log, active_producers, p); /* before the cleaner has it */
    if (producer_state_count(p->producers) > 0)
        logger_info(
            "producer", "%s-%d: %zu producer(s) loaded (snapshot %" PRId64 ", log end %" PRId64 ")",
            p->topic, p->index, producer_state_count(p->producers), snap, log_end_offset(p->log));
    return 0;
}

void producer_partition_close(struct partition *p)
{
    if (p->producers == NULL)
        return;
    if (!atomic_load(&p->deleted) && !log_is_offline(p->log))
        producer_state_snapshot(p->producers, log_dir_path(p->log), log_end_offset(p->log), true);
    producer_state_free(p->producers);
    p->producers = NULL;
    log_set_txn_index(p->log, NULL); /* out of the cleaner already (partition.c) */
    log_set_active_producers_hook(p->log, NULL, NULL);
    txn_index_close(p->txns);
    p->txns = NULL;
    pthread_mutex_destroy(&p->producer_mu);
}

/* producer_mu held: snapshot if the append at segment_base moved to a newer segment. */
static void maybe_snapshot_locked(struct partition *p, int64_t segment_base)
{
    assert(lock_mutex_held(&p->producer_mu));
    int64_t prev = atomic_load(&p->producer_segment_base);
    if (segment_base <= prev)
        return;
    atomic_store(&p->producer_segment_base, segment_base);
    if (prev >= 0)
        producer_state_snapshot(p->producers, log_dir_path(p->log), log_end_offset(p->log), false);
}

/*
 * producer_mu held: records the appended batch h (its bytes at batch) in the producer state: a
 * data batch, or a transaction marker that ends its producer's transaction (an abort goes to
 * the transaction index). Then publishes the first unstable offset.
 */
static void record_batch_locked(struct partition *p, const struct record_batch_header *h,
                                const uint8_t *batch, size_t len, int64_t segment_base,
                                int64_t now_ms)
{
    assert(lock_mutex_held(&p->producer_mu));
    int rc = 0;
    if (h->attributes & RECORD_ATTR_CONTROL) {
        struct control_marker m;
        struct aborted_txn a;
        if (len > RECORD_BATCH_HEADER_SIZE &&
            control_marker_parse(batch + RECORD_BATCH_HEADER_SIZE, len - RECORD_BATCH_HEADER_SIZE,
                                 &m) == 0) {
            p->txn_markers++;
            rc = producer_state_apply_marker(p->producers, h, &m, now_ms, &a);
            if (rc == 1) /* a failed write is logged; the entry stays in memory */
                rc = txn_index_append(p->txns, segment_base, &a) > 0;
        }
    } else {
        rc = producer_state_update(p->producers, h, now_ms);
    }
    if (rc < 0)
        logger_warn("producer", "%s-%d: out of memory recording producer %" PRId64, p->topic,
                    p->index, h->producer_id);
    if (h->attributes & RECORD_ATTR_TRANSACTIONAL)
        publish_first_unstable(p, producer_state_first_open_offset(p->producers));
}

static int16_t check_to_kafka(enum producer_check c)
{
    switch (c) {
    case PRODUCER_CHECK_OUT_OF_ORDER:
        return KAFKA_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER;
    case PRODUCER_CHECK_FENCED:
        return KAFKA_ERR_INVALID_PRODUCER_EPOCH;
    case PRODUCER_CHECK_INVALID:
        return KAFKA_ERR_INVALID_RECORD;
    default:
        return KAFKA_ERR_NONE;
    }
}

/* producer_mu held: a marker batch from an older transaction coordinator epoch than the last
 * marker of its producer (Kafka's TRANSACTION_COORDINATOR_FENCED). */
static bool marker_fenced_locked(struct partition *p, const struct record_batch_header *h,
                                 const uint8_t *batch, size_t len)
{
    assert(lock_mutex_held(&p->producer_mu));
    struct control_marker m;
    return (h->attributes & RECORD_ATTR_CONTROL) && len > RECORD_BATCH_HEADER_SIZE &&
           control_marker_parse(batch + RECORD_BATCH_HEADER_SIZE, len - RECORD_BATCH_HEADER_SIZE,
                                &m) == 0 &&
           producer_state_marker_fenced(p->producers, h->producer_id, m.coordinator_epoch);
}

int producer_append(struct partition *p, uint8_t *batch, size_t len, int32_t leader_epoch,
                    int64_t now_ms, bool log_append_time, struct log_append_info *info,
                    int16_t *kafka_err, bool *duplicate, struct producer_txn_check *chk)
{
    struct record_batch_header h;
    *kafka_err = 0;
    *duplicate = false;
    int rc = record_batch_header_parse(batch, len, &h);
    if (rc != 0) {
        *kafka_err = (int16_t)record_error_to_kafka(rc);
        return 0;
    }
    pthread_mutex_lock(&p->producer_mu);
    if (chk != NULL && (h.attributes & RECORD_ATTR_TRANSACTIONAL) &&
        !(h.attributes & RECORD_ATTR_CONTROL) &&
        !producer_state_in_txn(p->producers, h.producer_id, h.producer_epoch) &&
        !(chk->verified && chk->ticket == p->txn_markers)) {
        chk->needed = true;
        chk->ticket = p->txn_markers;
        pthread_mutex_unlock(&p->producer_mu);
        return 0;
    }
    struct producer_batch dup;
    enum producer_check c = producer_state_check(p->producers, &h, &dup);
    if (c == PRODUCER_CHECK_APPEND && marker_fenced_locked(p, &h, batch, len)) {
        *kafka_err = KAFKA_ERR_TRANSACTION_COORDINATOR_FENCED;
    } else if (c == PRODUCER_CHECK_DUPLICATE) {
        info->first_offset = dup.first_offset;
        info->last_offset = dup.last_offset;
        info->log_append_time = -1;
        info->log_start_offset = log_start_offset(p->log);
        info->record_count = 0;
        *duplicate = true;
    } else if (c != PRODUCER_CHECK_APPEND) {
        *kafka_err = check_to_kafka(c);
    } else {
        rc = log_append(p->log, batch, len, leader_epoch, now_ms, log_append_time, info);
        if (rc == 0) {
            /* The log wrote the offsets (and maybe LogAppendTime) into the batch in place. */
            h.base_offset = info->first_offset;
            if (log_append_time)
                h.max_timestamp = now_ms;
            record_batch_locked(p, &h, batch, len, info->segment_base, now_ms);
            maybe_snapshot_locked(p, info->segment_base);
        }
    }
    pthread_mutex_unlock(&p->producer_mu);
    return rc;
}

void producer_note_append(struct partition *p, const struct log_append_info *info)
{
    if (info->segment_base <= atomic_load_explicit(&p->producer_segment_base, memory_order_relaxed))
        return;
    pthread_mutex_lock(&p->producer_mu);
    maybe_snapshot_locked(p, info->segment_base);
    pthread_mutex_unlock(&p->producer_mu);
}

int producer_append_replica(struct partition *p, const uint8_t *batches, size_t len,
                            struct log_append_info *info)
{
    int64_t now_ms = clock_wall_ms();
    pthread_mutex_lock(&p->producer_mu);
    int rc = log_append_replica(p->log, batches, len, info);
    for (size_t off = 0; rc == 0 && off + RECORD_BATCH_HEADER_SIZE <= len;) {
        struct record_batch_header h;
        if (record_batch_header_parse(batches + off, len - off, &h) != 0)
            break; /* the log validated the framing; nothing else to learn */
        if (h.producer_id >= 0)
            record_batch_locked(p, &h, batches + off, record_batch_size(&h), info->segment_base,
                                now_ms);
        off += (size_t)h.batch_length + RECORD_BATCH_LOG_OVERHEAD;
    }
    if (rc == 0)
        maybe_snapshot_locked(p, info->segment_base);
    pthread_mutex_unlock(&p->producer_mu);
    return rc;
}

int producer_partition_truncate(struct partition *p, int64_t offset, bool fully,
                                int64_t expiration_ms)
{
    pthread_mutex_lock(&p->producer_mu);
    int rc =
        fully ? log_truncate_fully_and_start_at(p->log, offset) : log_truncate_to(p->log, offset);
    if (rc == 0)
        txn_index_truncate(p->txns, fully ? INT64_MIN : offset);
    if (rc == 0) {
        /* Snapshots above the new end describe batches that are gone: the load removes them
         * and rebuilds the state from what the log holds now (Kafka's truncateAndReload). */
        struct producer_state *ps = NULL;
        int64_t snap = -1;
        int lrc = producer_state_load(p->log, p->txns, expiration_ms, clock_wall_ms(), &ps, &snap);
        if (lrc == 0) {
            producer_state_free(p->producers);
            p->producers = ps;
            publish_first_unstable(p, producer_state_first_open_offset(ps));
        } else {
            logger_warn("producer", "%s-%d: cannot reload producer state after truncation: %d",
                        p->topic, p->index, lrc);
        }
        atomic_store(&p->producer_segment_base, -1);
    }
    pthread_mutex_unlock(&p->producer_mu);
    return rc;
}
