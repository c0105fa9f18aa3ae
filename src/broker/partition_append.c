/* The single append entry point of a partition (see partition_append.h). */
#include "broker/partition_append.h"

#include <assert.h>
#include <string.h>

#include "broker/producer_append.h"

void partition_advance_high_watermark(struct partition *p, int64_t offset)
{
    /* log_set_high_watermark never moves it back and keeps log start <= hw <= log end. */
    log_set_high_watermark(p->log, offset);
    assert(log_high_watermark(p->log) <= log_end_offset(p->log));
    partition_notify_waiters(p);
}

int partition_append_batch(struct partition *p, uint8_t *batch, size_t len, bool log_append_time,
                           int64_t now_ms, struct partition_append_result *res)
{
    memset(res, 0, sizeof(*res));
    int32_t epoch = atomic_load(&p->leader_epoch);
    int rc;
    if (producer_batch_is_idempotent(batch)) {
        /* Checked against the producer state atomically with the append (Kafka's
         * ProducerStateManager): a retried batch gets its original offsets. */
        rc = producer_append(p, batch, len, epoch, now_ms, log_append_time, &res->info,
                             &res->kafka_error, &res->duplicate);
    } else {
        rc = log_append(p->log, batch, len, epoch, now_ms, log_append_time, &res->info);
        if (rc == 0)
            producer_note_append(p, &res->info);
    }
    if (rc != 0 || res->kafka_error != 0 || res->duplicate)
        return rc;
    /* One in-sync replica: everything appended is committed (replication: issue 14). */
    partition_advance_high_watermark(p, res->info.last_offset + 1);
    return 0;
}
