/*
 * The coordinator's marker channel for what the local path could not write (Kafka's
 * TransactionMarkerChannelManager): partitions led by other brokers get WriteTxnMarkers
 * requests (one per leader), partitions that failed (leader moving, ISR too small) are retried
 * every TXN_MARKER_RETRY_MS until written, and a job is abandoned once this broker no longer
 * coordinates the transaction (the new coordinator writes the markers again when it loads).
 * A partition of a deleted topic is dropped, as Kafka does.
 *
 * One thread with its own connections to the other brokers; jobs come from any thread.
 */
#ifndef GREGOR_BROKER_TXN_MARKER_SENDER_H
#define GREGOR_BROKER_TXN_MARKER_SENDER_H

#include "txn/coordinator.h"

#define TXN_MARKER_RETRY_MS 200

struct broker;

int txn_marker_sender_start(struct broker *b);
/* Stops the thread; queued jobs answer COORDINATOR_NOT_AVAILABLE. Before the network stops. */
void txn_marker_sender_stop(struct broker *b);

/* Queues the markers of job (copied) for its partitions; cb(arg, 0) once all are written, or
 * an error when abandoned; on the sender thread (or at once when stopped). */
void txn_marker_sender_submit(struct broker *b, const struct txn_marker_job *job,
                              void (*cb)(void *arg, int16_t err), void *arg);

#endif
