/* The single append entry point of a partition (see partition_append.h). */
#include "broker/partition_append.h"

#include <assert.h>
#include <string.h>

#include "broker/producer_append.h"
#include "proto/gen/errors.h"

static int partition_append_led(struct partition *p, uint8_t *batch, size_t len,
                                bool log_append_time, int64_t now_ms,
                                struct producer_txn_check *chk,
                                struct partition_append_result *res);

int partition_append_batch(struct partition *p, uint8_t *batch, size_t len, bool log_append_time,
                           int64_t now_ms, struct producer_txn_check *chk,
                           struct partition_append_result *res)
{
    memset(res, 0, sizeof(*res));
    /* Under follow_mu, which the image listener holds while it changes the leader: an append
     * admitted before this broker lost the leadership could otherwise land after it, stamped
     * with the new leader's epoch, in a log that now follows (a divergence no epoch shows). */
    pthread_mutex_lock(&p->follow_mu);
    if (atomic_load(&p->leader) != p->rs.self || atomic_load(&p->deleted)) {
        pthread_mutex_unlock(&p->follow_mu);
        res->kafka_error = KAFKA_ERR_NOT_LEADER_OR_FOLLOWER;
        return 0;
    }
    int rc = partition_append_led(p, batch, len, log_append_time, now_ms, chk, res);
    pthread_mutex_unlock(&p->follow_mu);
    return rc;
}

static int partition_append_led(struct partition *p, uint8_t *batch, size_t len,
                                bool log_append_time, int64_t now_ms,
                                struct producer_txn_check *chk, struct partition_append_result *res)
{
    int32_t epoch = atomic_load(&p->leader_epoch);
    int rc;
    if (producer_batch_is_idempotent(batch)) {
        /* Checked against the producer state atomically with the append (Kafka's
         * ProducerStateManager): a retried batch gets its original offsets. */
        rc = producer_append(p, batch, len, epoch, now_ms, log_append_time, &res->info,
                             &res->kafka_error, &res->duplicate, chk);
    } else {
        rc = log_append(p->log, batch, len, epoch, now_ms, log_append_time, &res->info);
        if (rc == 0)
            producer_note_append(p, &res->info);
    }
    if (rc != 0 || res->kafka_error != 0 || res->duplicate || (chk != NULL && chk->needed))
        return rc;
    /* The replica set owns the high watermark: with one in-sync replica it is the log end now;
     * with followers it moves when they fetch past the batch. Parked fetches (consumers and
     * followers) look again either way. */
    replica_set_on_append(p);
    partition_notify_waiters(p);
    return 0;
}
