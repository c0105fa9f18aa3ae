/*
 * Transaction markers on the partition side (Kafka's WriteTxnMarkers, key 27): for each
 * marker, a COMMIT or ABORT control batch appended to every listed partition this broker
 * leads (ending the producer's transaction there, recording aborts in the transaction index),
 * answered once committed (replicated and durable). On a group's __consumer_offsets partition
 * the group side then applies or drops the transaction's offsets (txn_offset_commit.h).
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
 * The coordinator's markers for one transaction: partitions led by this broker are written at
 * once; the others (and failures) go to the marker sender (txn_marker_sender.h), which sends
 * WriteTxnMarkers to their leaders and retries. cb(arg, 0) once every partition has its marker,
 * or an error when abandoned; on any thread. 0 or -ENOMEM (no cb).
 */
int txn_markers_send(struct broker *b, const struct txn_marker_job *job,
                     void (*cb)(void *arg, int16_t err), void *arg);

/* The WriteTxnMarkers request of job (one marker), arrays in a. 0 or -ENOMEM. */
int txn_markers_request_build(struct arena *a, const struct txn_marker_job *job,
                              struct kmsg_write_txn_markers_request *req);

/* The partitions of resp with an error, as a list in a (*out; NULL on ENOMEM). Returns the
 * count. */
size_t txn_markers_failed(const struct kmsg_write_txn_markers_response *resp, struct arena *a,
                          struct txn_topic_partition **out);

#endif
