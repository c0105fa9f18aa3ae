/*
 * The records of __transaction_state in Kafka's format (TransactionLog): key = int16 version (0)
 * + TransactionLogKey { transactional id }, value = int16 version (0 or 1) + TransactionLogValue
 * (producer id and epoch, timeout, status, partitions, timestamps; in version 1 also the
 * tagged previous/next producer id and client transaction version); a null value is a
 * tombstone.
 *
 * Pure functions, any thread. Encoded buffers are malloc'ed and owned by the caller.
 */
#ifndef GREGOR_TXN_STATE_RECORD_H
#define GREGOR_TXN_STATE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "proto/gen/transaction_log_value.h"

#define TXN_STATE_TOPIC "__transaction_state"

/* Kafka's TransactionState ids, as written in TransactionStatus. */
enum txn_status {
    TXN_EMPTY = 0,
    TXN_ONGOING = 1,
    TXN_PREPARE_COMMIT = 2,
    TXN_PREPARE_ABORT = 3,
    TXN_COMPLETE_COMMIT = 4,
    TXN_COMPLETE_ABORT = 5,
    TXN_DEAD = 6,
    TXN_PREPARE_EPOCH_FENCE = 7,
};

const char *txn_status_name(int status);

/* The value's version: 1 (flexible, Kafka 4.0's tagged PreviousProducerId, NextProducerId and
 * ClientTransactionVersion of KIP-890 part 2) when one of them is set, else 0, which every
 * Kafka reads; a record without them decodes to their defaults either way. */
int16_t txn_state_value_version(const struct kmsg_transaction_log_value *v);

/*
 * Builds one uncompressed batch with the record of transactional id `id` (value v, or a
 * tombstone when v is NULL), timestamp now_ms. 0 and *out (malloc'ed) or a negative error.
 */
int txn_state_record_build(const char *id, const struct kmsg_transaction_log_value *v,
                           int64_t now_ms, uint8_t **out, size_t *out_len);

/* Decodes one record: *id (into arena-free kstr pointing at key) and *v (strings/arrays in
 * arena); *tombstone when the value is null. 0 or -EBADMSG. */
int txn_state_record_decode(const uint8_t *key, int32_t key_len, const uint8_t *value,
                            int32_t value_len, struct arena *arena, struct kstr *id,
                            struct kmsg_transaction_log_value *v, bool *tombstone);

#endif
