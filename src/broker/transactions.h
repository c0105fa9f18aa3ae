/*
 * The broker's side of the transaction coordinator (src/txn/): its lifecycle, the glue it
 * needs (the __transaction_state partitions, appends, producer ids, markers), the timeout
 * sweep, and the client APIs handed to it: InitProducerId with a transactional id,
 * AddPartitionsToTxn, AddOffsetsToTxn and EndTxn (txn_apis.c).
 */
#ifndef GREGOR_BROKER_TRANSACTIONS_H
#define GREGOR_BROKER_TRANSACTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "broker/request.h"
#include "cluster/image.h"
#include "proto/gen/init_producer_id.h"

struct broker;
struct txn_coordinator;

/* Creates the coordinator and arms the timeout sweep (after the network started). 0 or < 0. */
int txn_start(struct broker *b);
/* Refuses new coordinator work and waits (bounded) for what is in flight; before the
 * network stops. */
void txn_shutdown(struct broker *b);
/* Frees it; after net_server_free() (the sweep's timer lives in it). */
void txn_stop(struct broker *b);
/* The coordinator, or NULL before txn_start. Any thread. */
struct txn_coordinator *txn_coordinator_of(struct broker *b);

/* Creates __transaction_state when it does not exist yet (FindCoordinator, InitProducerId):
 * partitions transaction.state.log.num.partitions, replication factor capped by the live
 * brokers, compacted. Any worker. */
void txn_state_topic_ensure(struct broker *b, const struct metadata_image *img);
/* Loads shard s if this broker leads it (FindCoordinator). Any worker. */
void txn_prepare_shard(struct broker *b, int32_t shard);
/* The leader epoch of partition s of __transaction_state changed (image listener). */
void txn_on_leader_change(struct broker *b, int32_t partition, bool was_leader, bool is_leader);

/* A producer id for the coordinator from the broker's pool (init_producer_id.c): cb(arg, err,
 * id), maybe at once, on any thread. 0 or < 0 (no cb). */
int broker_producer_id_next(struct broker *b, void (*cb)(void *arg, int16_t err, int64_t pid),
                            void *arg);

/* InitProducerId with a transactional id (init_producer_id.c hands it over). */
void txn_handle_init_producer_id(struct broker_req *r,
                                 const struct kmsg_init_producer_id_request *req);

#endif
