/*
 * Transaction markers on the partition side (Kafka's WriteTxnMarkers, key 27): for each
 * marker, a COMMIT or ABORT control batch appended to every listed partition this broker
 * leads (ending the producer's transaction there, recording aborts in the transaction index),
 * answered once committed (replicated and durable). For __consumer_offsets partitions the
 * group side applies or drops the transaction's pending offsets instead (txn_offset_commit.h).
 *
 * The coordinator's own markers (txn_markers_send) take the same path as a WriteTxnMarkers
 * request (txn_markers_apply).
 */
#ifndef GREGOR_BROKER_WRITE_TXN_MARKERS_H
#define GREGOR_BROKER_WRITE_TXN_MARKERS_H

#include "base/arena.h"
#include "proto/gen/write_txn_markers.h"
#include "txn/coordinator.h"

struct broker;

/* Applies every marker of req, filling resp (arrays in arena, which must live until done);
 * done(arg) once every partition answered, on any thread, maybe before returning. */
void txn_markers_apply(struct broker *b, const struct kmsg_write_txn_markers_request *req,
                       struct kmsg_write_txn_markers_response *resp, struct arena *arena,
                       void (*done)(void *arg), void *arg);

/*
 * The coordinator's markers for one transaction. Partitions led by this broker are written
 * here; sending WriteTxnMarkers to other leaders is not built yet (those partitions answer
 * NOT_LEADER_OR_FOLLOWER). cb(arg, first error or 0) on any thread. 0 or -ENOMEM (no cb).
 */
int txn_markers_send(struct broker *b, const struct txn_marker_job *job,
                     void (*cb)(void *arg, int16_t err), void *arg);

#endif
