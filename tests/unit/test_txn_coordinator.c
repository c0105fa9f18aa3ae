/* The transaction coordinator's state machine (txn/coordinator.h) on a fake env: one shard,
 * appends kept in memory (durable at once), markers recorded and answered at once, producer
 * ids counted up. Replaying the kept records into a second coordinator checks that the state
 * is rebuilt from them and that a transaction caught in PrepareCommit is completed. */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "proto/gen/errors.h"
#include "record/record_iter.h"
#include "test.h"
#include "txn/coordinator.h"
#include "txn/state_record.h"

#define MAX_BATCHES 64

struct fake {
    uint8_t *batches[MAX_BATCHES];
    size_t lens[MAX_BATCHES];
    int nbatches;
    int64_t next_pid;
    int markers, commits;
    size_t marker_parts;
    int16_t marker_epoch;
    int64_t marker_pid;
    bool fail_markers; /* the sender gives up (this broker lost the shard) */
    bool fail_pid;     /* no producer id can be allocated */
};

static int32_t f_count(void *ctx)
{
    return 1;
}

static int32_t f_offsets(void *ctx)
{
    return 1;
}

static bool f_leader(void *ctx, int32_t shard, int32_t *epoch)
{
    *epoch = 7;
    return shard == 0;
}

static bool f_exists(void *ctx, const char *topic, int32_t partition)
{
    return true;
}

static int f_append(void *ctx, int32_t shard, uint8_t *batch, size_t len,
                    void (*cb)(void *arg, int err), void *arg)
{
    struct fake *f = ctx;
    if (f->nbatches == MAX_BATCHES)
        return -1;
    f->batches[f->nbatches] = malloc(len);
    memcpy(f->batches[f->nbatches], batch, len);
    f->lens[f->nbatches++] = len;
    cb(arg, 0);
    return 0;
}

static int f_replay(void *ctx, int32_t shard,
                    void (*fn)(void *, const uint8_t *, int32_t, const uint8_t *, int32_t),
                    void *arg)
{
    struct fake *f = ctx;
    for (int i = 0; i < f->nbatches; i++) {
        struct record_iter it;
        if (record_iter_init(&it, f->batches[i], f->lens[i], 1 << 20) != 0)
            return -1;
        struct record rec;
        while (record_iter_next(&it, &rec) == 1)
            fn(arg, rec.key, rec.key_len, rec.value, rec.value_len);
        record_iter_release(&it);
    }
    return 0;
}

static int f_pid(void *ctx, void (*cb)(void *arg, int16_t err, int64_t pid), void *arg)
{
    struct fake *f = ctx;
    if (f->fail_pid)
        return -1;
    cb(arg, 0, f->next_pid++);
    return 0;
}

static int f_markers(void *ctx, const struct txn_marker_job *job,
                     void (*cb)(void *arg, int16_t err), void *arg)
{
    struct fake *f = ctx;
    f->markers++;
    f->commits += job->commit;
    f->marker_parts = job->nparts;
    f->marker_epoch = job->producer_epoch;
    f->marker_pid = job->producer_id;
    cb(arg, f->fail_markers ? KAFKA_ERR_NOT_COORDINATOR : 0);
    return 0;
}

static struct txn_coordinator *make(struct fake *f)
{
    struct txn_env env = {f,        f_count,  f_offsets, f_leader, f_exists,
                          f_append, f_replay, f_pid,     f_markers};
    struct txn_config cfg = {.max_timeout_ms = 900000, .max_shards = 1};
    return txn_coordinator_create(&cfg, &env);
}

static void fake_free(struct fake *f)
{
    for (int i = 0; i < f->nbatches; i++)
        free(f->batches[i]);
}

static void keep(void *arg, const struct txn_result *res)
{
    *(struct txn_result *)arg = *res;
}

static void describe_state(void *arg, const struct txn_description *d)
{
    *(int8_t *)arg = d->state;
}

static int8_t state_of(struct txn_coordinator *tc, const char *id)
{
    int8_t s = -1;
    txn_coordinator_describe(tc, id, describe_state, &s);
    return s;
}

TEST(test_txn_coordinator_init_add_commit_and_fencing)
{
    struct fake f = {.next_pid = 1000};
    struct txn_coordinator *tc = make(&f);
    struct txn_result r;
    txn_init_producer_id(tc, "tx", 900001, -1, -1, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_INVALID_TRANSACTION_TIMEOUT);
    txn_init_producer_id(tc, "tx", 60000, -1, -1, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 1000 && r.producer_epoch == 0);
    CHECK_EQ_INT(state_of(tc, "tx"), TXN_EMPTY);
    struct txn_topic_partition parts[2] = {{"a", 0}, {"b", 1}};
    txn_add_partitions(tc, "tx", 1000, 1, parts, 2, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    txn_add_partitions(tc, "tx", 999, 0, parts, 2, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING);
    txn_end(tc, "tx", 1000, 0, true, false, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_INVALID_TXN_STATE);
    txn_add_partitions(tc, "tx", 1000, 0, parts, 2, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    CHECK_EQ_INT(state_of(tc, "tx"), TXN_ONGOING);
    txn_end(tc, "tx", 1000, 0, true, false, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    CHECK(f.markers == 1 && f.commits == 1 && f.marker_parts == 2);
    CHECK_EQ_INT(state_of(tc, "tx"), TXN_COMPLETE_COMMIT);
    txn_end(tc, "tx", 1000, 0, true, false, keep, &r); /* a retried EndTxn */
    CHECK_EQ_INT(r.error, 0);
    /* A new producer with the id while a transaction is open: abort with a bumped epoch. */
    txn_add_partitions(tc, "tx", 1000, 0, parts, 1, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    txn_init_producer_id(tc, "tx", 60000, -1, -1, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_CONCURRENT_TRANSACTIONS);
    CHECK(f.markers == 2 && f.commits == 1);
    CHECK_EQ_INT(state_of(tc, "tx"), TXN_COMPLETE_ABORT);
    txn_init_producer_id(tc, "tx", 60000, -1, -1, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 1000 && r.producer_epoch == 2);
    txn_end(tc, "tx", 1000, 1, false, false, keep, &r); /* the zombie */
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    txn_coordinator_destroy(tc);
    fake_free(&f);
}

/* KIP-890 part 2: EndTxn with bump_epoch (v5). Tried: a retry at the old epoch (same answer),
 * the other outcome at the old epoch, an old-epoch EndTxn and AddPartitionsToTxn in the next
 * transaction, a v4-style EndTxn (no bump) after a v5 one. */
TEST(test_txn_coordinator_end_v2_bumps_the_epoch_per_transaction)
{
    struct fake f = {.next_pid = 300};
    struct txn_coordinator *tc = make(&f);
    struct txn_result r;
    txn_init_producer_id(tc, "v2", 60000, -1, -1, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 300 && r.producer_epoch == 0);
    struct txn_topic_partition part = {"a", 0};
    txn_add_partitions(tc, "v2", 300, 0, &part, 1, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    txn_end(tc, "v2", 300, 0, true, true, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 300 && r.producer_epoch == 1);
    CHECK(f.markers == 1 && f.marker_epoch == 1); /* the markers fence epoch 0 */
    CHECK_EQ_INT(state_of(tc, "v2"), TXN_COMPLETE_COMMIT);
    txn_end(tc, "v2", 300, 0, true, true, keep, &r); /* retry: same answer */
    CHECK(r.error == 0 && r.producer_epoch == 1);
    CHECK_EQ_INT(f.markers, 1);
    txn_end(tc, "v2", 300, 0, false, true, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_INVALID_TXN_STATE);
    txn_end(tc, "v2", 300, 1, true, true, keep, &r);  /* no transaction at epoch 1 yet */
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED); /* as Kafka's TV2 check answers */
    txn_add_partitions(tc, "v2", 300, 0, &part, 1, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    txn_add_partitions(tc, "v2", 300, 1, &part, 1, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    txn_end(tc, "v2", 300, 0, false, true, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    txn_end(tc, "v2", 300, 1, false, true, keep, &r);
    CHECK(r.error == 0 && r.producer_epoch == 2 && f.marker_epoch == 2);
    /* An older client's EndTxn (v4) keeps the epoch. */
    txn_add_partitions(tc, "v2", 300, 2, &part, 1, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    txn_end(tc, "v2", 300, 2, true, false, keep, &r);
    CHECK(r.error == 0 && r.producer_epoch == 2 && f.marker_epoch == 2);
    txn_coordinator_destroy(tc);
    fake_free(&f);
}

/* KIP-890 part 2 across a reload: the records carry ClientTransactionVersion, so a new
 * coordinator still takes an EndTxn v5 at the epoch before the bump as a retry. Tried: the
 * retry after a reload (complete and caught in PrepareAbort), the other outcome, the bumped
 * epoch itself (no transaction open), the records' value version. */
TEST(test_txn_coordinator_end_v2_retry_survives_a_reload)
{
    struct fake f = {.next_pid = 500};
    struct txn_coordinator *tc = make(&f);
    struct txn_result r;
    txn_init_producer_id(tc, "re", 60000, -1, -1, keep, &r);
    struct txn_topic_partition part = {"a", 0};
    txn_add_partitions(tc, "re", 500, 0, &part, 1, keep, &r);
    txn_end(tc, "re", 500, 0, true, true, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 500 && r.producer_epoch == 1);
    /* The Complete record is version 1 with ClientTransactionVersion 2; the Empty one is 0. */
    struct arena a;
    arena_init(&a, 0);
    int versions[2] = {0, 0};
    for (int i = 0; i < f.nbatches; i++) {
        struct record_iter it;
        CHECK_EQ_INT(record_iter_init(&it, f.batches[i], f.lens[i], 1 << 20), 0);
        struct record rec;
        while (record_iter_next(&it, &rec) == 1) {
            struct kstr id;
            struct kmsg_transaction_log_value v;
            bool tomb;
            CHECK_EQ_INT(txn_state_record_decode(rec.key, rec.key_len, rec.value, rec.value_len, &a,
                                                 &id, &v, &tomb),
                         0);
            versions[(rec.value[0] << 8 | rec.value[1]) == 1]++;
            if (v.transaction_status == TXN_COMPLETE_COMMIT)
                CHECK(v.client_transaction_version == 2 && v.producer_epoch == 1 &&
                      v.previous_producer_id == 500 && v.next_producer_id == -1);
        }
        record_iter_release(&it);
    }
    arena_free(&a);
    CHECK(versions[0] == 2 && versions[1] == 2); /* Empty, Ongoing; PrepareCommit, Complete */
    txn_coordinator_destroy(tc);
    tc = make(&f); /* the failover: a new coordinator replays the records */
    txn_end(tc, "re", 500, 0, true, true, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 500 && r.producer_epoch == 1);
    CHECK_EQ_INT(f.markers, 1);
    txn_end(tc, "re", 500, 0, false, true, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_INVALID_TXN_STATE);
    txn_end(tc, "re", 500, 1, true, true, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    /* Caught in PrepareAbort: the retry waits for the markers the reload writes again. */
    txn_add_partitions(tc, "re", 500, 1, &part, 1, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    f.fail_markers = true;
    txn_end(tc, "re", 500, 1, false, true, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_NOT_COORDINATOR);
    txn_end(tc, "re", 500, 1, false, true, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_CONCURRENT_TRANSACTIONS);
    txn_end(tc, "re", 500, 1, true, true, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_INVALID_TXN_STATE);
    txn_coordinator_destroy(tc);
    f.fail_markers = false;
    tc = make(&f);
    CHECK_EQ_INT(txn_coordinator_prepare(tc, 0), 0);
    CHECK(f.markers == 3 && f.marker_epoch == 2);
    txn_end(tc, "re", 500, 1, false, true, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 500 && r.producer_epoch == 2);
    txn_coordinator_destroy(tc);
    fake_free(&f);
}

/* KIP-890 part 2 at the last usable epoch (Kafka's isProducerEpochExhausted: >= INT16_MAX - 1):
 * EndTxn v5 writes the markers with the old id at INT16_MAX and answers with a new producer id,
 * epoch 0. Tried: the retry with the old id and epoch (before and after a reload), the other
 * outcome, the old id in the next transaction, an allocation that fails. */
TEST(test_txn_coordinator_end_v2_moves_to_a_new_id_when_the_epoch_runs_out)
{
    struct fake f = {.next_pid = 900};
    struct kmsg_transaction_log_value v;
    kmsg_transaction_log_value_init(&v);
    v.producer_id = 77;
    v.producer_epoch = INT16_MAX - 2; /* a producer near the end of its epochs */
    v.transaction_timeout_ms = 60000;
    v.transaction_status = TXN_EMPTY;
    v.transaction_start_timestamp_ms = -1;
    CHECK_EQ_INT(txn_state_record_build("ov", &v, clock_wall_ms(), &f.batches[0], &f.lens[0]), 0);
    f.nbatches = 1;
    struct txn_coordinator *tc = make(&f);
    struct txn_result r;
    struct txn_topic_partition part = {"a", 0};
    txn_add_partitions(tc, "ov", 77, INT16_MAX - 2, &part, 1, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    txn_end(tc, "ov", 77, INT16_MAX - 2, true, true, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 77 && r.producer_epoch == INT16_MAX - 1);
    txn_add_partitions(tc, "ov", 77, INT16_MAX - 1, &part, 1, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    f.fail_pid = true; /* nothing written, the transaction stays open */
    txn_end(tc, "ov", 77, INT16_MAX - 1, true, true, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_COORDINATOR_LOAD_IN_PROGRESS);
    CHECK_EQ_INT(state_of(tc, "ov"), TXN_ONGOING);
    f.fail_pid = false;
    txn_end(tc, "ov", 77, INT16_MAX - 1, true, true, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 900 && r.producer_epoch == 0);
    CHECK(f.marker_pid == 77 && f.marker_epoch == INT16_MAX && f.commits == 2);
    for (int round = 0; round < 2; round++) { /* before and after a reload */
        txn_end(tc, "ov", 77, INT16_MAX - 1, true, true, keep, &r);
        CHECK(r.error == 0 && r.producer_id == 900 && r.producer_epoch == 0);
        txn_end(tc, "ov", 77, INT16_MAX - 1, false, true, keep, &r);
        CHECK_EQ_INT(r.error, KAFKA_ERR_INVALID_TXN_STATE);
        txn_end(tc, "ov", 77, INT16_MAX - 2, true, true, keep, &r);
        CHECK_EQ_INT(r.error, KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING);
        txn_coordinator_destroy(tc);
        tc = make(&f);
    }
    CHECK_EQ_INT(f.markers, 2);
    txn_add_partitions(tc, "ov", 77, INT16_MAX - 1, &part, 1, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING);
    txn_add_partitions(tc, "ov", 900, 0, &part, 1, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    txn_end(tc, "ov", 900, 0, false, true, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 900 && r.producer_epoch == 1);
    CHECK(f.marker_pid == 900 && f.marker_epoch == 1);
    /* KIP-360 with the previous id: only the epoch the markers carried (Kafka's in-memory
     * lastProducerEpoch) is a retry, and it gets the new id without a bump; not after a
     * reload, nor once the new id has ended a transaction (as here). */
    txn_init_producer_id(tc, "ov", 60000, 77, INT16_MAX, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    v.producer_id = 78;
    CHECK_EQ_INT(txn_state_record_build("ov2", &v, clock_wall_ms(), &f.batches[f.nbatches],
                                        &f.lens[f.nbatches]),
                 0);
    f.nbatches++;
    txn_coordinator_destroy(tc);
    tc = make(&f);
    txn_init_producer_id(tc, "ov2", 60000, 78, INT16_MAX - 2, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 78 && r.producer_epoch == INT16_MAX - 1);
    txn_add_partitions(tc, "ov2", 78, INT16_MAX - 1, &part, 1, keep, &r);
    txn_end(tc, "ov2", 78, INT16_MAX - 1, false, true, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 901 && r.producer_epoch == 0);
    txn_init_producer_id(tc, "ov2", 60000, 78, INT16_MAX - 1, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    txn_init_producer_id(tc, "ov2", 60000, 78, INT16_MAX, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 901 && r.producer_epoch == 0);
    txn_coordinator_destroy(tc);
    fake_free(&f);
}

/* KIP-360: InitProducerId naming the producer's id and epoch bumps it; a retry whose answer
 * was lost (the epoch before that bump) gets the current epoch again, without a bump, until a
 * reload (Kafka keeps lastProducerEpoch in memory only). Tried: an epoch older than that, the
 * retry after a reload, another producer id. */
TEST(test_txn_coordinator_init_producer_id_retry_gets_the_same_epoch)
{
    struct fake f = {.next_pid = 60};
    struct txn_coordinator *tc = make(&f);
    struct txn_result r;
    txn_init_producer_id(tc, "ri", 60000, -1, -1, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 60 && r.producer_epoch == 0);
    txn_init_producer_id(tc, "ri", 60000, 60, 0, keep, &r);
    CHECK(r.error == 0 && r.producer_id == 60 && r.producer_epoch == 1);
    txn_init_producer_id(tc, "ri", 60000, 60, 0, keep, &r); /* the retry */
    CHECK(r.error == 0 && r.producer_id == 60 && r.producer_epoch == 1);
    txn_init_producer_id(tc, "ri", 60000, 60, 1, keep, &r);
    CHECK(r.error == 0 && r.producer_epoch == 2);
    txn_init_producer_id(tc, "ri", 60000, 60, 0, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    txn_init_producer_id(tc, "ri", 60000, 61, 2, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    txn_coordinator_destroy(tc);
    tc = make(&f);
    txn_init_producer_id(tc, "ri", 60000, 60, 1, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    txn_init_producer_id(tc, "ri", 60000, 60, 2, keep, &r);
    CHECK(r.error == 0 && r.producer_epoch == 3);
    txn_coordinator_destroy(tc);
    fake_free(&f);
}

TEST(test_txn_coordinator_times_out_open_transactions)
{
    struct fake f = {.next_pid = 5};
    struct txn_coordinator *tc = make(&f);
    struct txn_result r;
    txn_init_producer_id(tc, "slow", 1000, -1, -1, keep, &r);
    struct txn_topic_partition p = {"t", 0};
    txn_add_partitions(tc, "slow", 5, 0, &p, 1, keep, &r);
    CHECK_EQ_INT(r.error, 0);
    CHECK_EQ_INT(txn_coordinator_expire(tc, clock_wall_ms()), 0);
    CHECK_EQ_INT(txn_coordinator_expire(tc, clock_wall_ms() + 5000), 1);
    CHECK(f.markers == 1 && f.commits == 0);
    CHECK_EQ_INT(state_of(tc, "slow"), TXN_COMPLETE_ABORT);
    txn_end(tc, "slow", 5, 0, true, false, keep, &r); /* fenced by the abort's epoch bump */
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    /* Nor may it re-initialise with its id and epoch (KIP-360): Kafka's fence forgets the
     * previous epoch (prepareFenceProducerEpoch: lastProducerEpoch = -1). */
    txn_init_producer_id(tc, "slow", 1000, 5, 0, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_PRODUCER_FENCED);
    /* transactional.id.expiration.ms */
    CHECK_EQ_INT(txn_coordinator_expire_ids(tc, clock_wall_ms(), 60000), 0);
    CHECK_EQ_INT(txn_coordinator_expire_ids(tc, clock_wall_ms() + 120000, 60000), 1);
    CHECK_EQ_INT(state_of(tc, "slow"), -1);
    txn_coordinator_destroy(tc);
    fake_free(&f);
}

TEST(test_txn_coordinator_reload_completes_a_prepared_commit)
{
    struct fake f = {.next_pid = 42};
    struct txn_coordinator *tc = make(&f);
    struct txn_result r;
    txn_init_producer_id(tc, "crash", 60000, -1, -1, keep, &r);
    struct txn_topic_partition parts[3] = {{"a", 0}, {"a", 1}, {"b", 0}};
    txn_add_partitions(tc, "crash", 42, 0, parts, 3, keep, &r);
    f.fail_markers = true; /* PrepareCommit is written, the markers are abandoned */
    txn_end(tc, "crash", 42, 0, true, false, keep, &r);
    CHECK_EQ_INT(r.error, KAFKA_ERR_NOT_COORDINATOR);
    CHECK_EQ_INT(state_of(tc, "crash"), TXN_PREPARE_COMMIT);
    txn_coordinator_destroy(tc);
    /* The next coordinator replays the records and writes the markers again. */
    f.fail_markers = false;
    f.markers = f.commits = 0;
    tc = make(&f);
    CHECK_EQ_INT(txn_coordinator_prepare(tc, 0), 0);
    CHECK(f.markers == 1 && f.commits == 1 && f.marker_parts == 3);
    CHECK_EQ_INT(state_of(tc, "crash"), TXN_COMPLETE_COMMIT);
    txn_init_producer_id(tc, "crash", 60000, 42, 0, keep, &r); /* KIP-360 from the producer */
    CHECK(r.error == 0 && r.producer_id == 42 && r.producer_epoch == 1);
    txn_coordinator_destroy(tc);
    fake_free(&f);
}

TEST_MAIN
