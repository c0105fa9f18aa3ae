/*
 * Forwarding to the active controller (Kafka's KIP-590 forwarding, without the Envelope): a
 * node that is not the active controller sends a metadata-changing request to the one that is,
 * over the Kafka protocol, and relays the answer. Client admin requests are relayed byte for
 * byte (the controller's response is the client's response); the broker's own requests
 * (auto-creating topics, __consumer_offsets, producer id blocks) are encoded here and decoded
 * back into a controller_result, so callers see the same completion as from a local controller.
 *
 * When no controller can be reached before the deadline, a relayed client request is handled
 * locally instead, where the controller answers NOT_CONTROLLER (retriable: clients refresh
 * their metadata and try again).
 *
 * Threads: one forwarder thread does the blocking I/O; completions run on it (client requests
 * are then posted back to their worker).
 */
#ifndef GREGOR_BROKER_FORWARDER_H
#define GREGOR_BROKER_FORWARDER_H

#include <stdbool.h>

#include "broker/request.h"
#include "cluster/controller.h"

struct broker;

int forwarder_start(struct broker *b);
/* Fails queued jobs (-ESHUTDOWN) and joins the thread; before the network stops. Workers may
 * still call in until then: what they submit fails with -ESHUTDOWN and is handled locally. */
void forwarder_stop(struct broker *b);
/* Frees the forwarder; after forwarder_stop and after the network's workers have stopped. */
void forwarder_free(struct broker *b);

/*
 * Worker thread, from a handler of a metadata-changing API: when this node is not the active
 * controller and another node is known to be, relays r there and returns true (r is answered
 * later). Returns false when the handler should go on locally.
 */
bool forwarder_relay(struct broker_req *r);

/*
 * The controller's answer to a relayed subset, on r's worker: err 0 and body positioned after
 * the response header (its bytes live in r's arena), or err < 0 when no controller answered or
 * the answer did not decode.
 */
typedef void (*forwarder_subset_fn)(struct broker_req *r, void *arg, int err, struct kreader *body);

/*
 * Worker thread, for an admin request of which the authorizer denied a part here: relays `msg`
 * (a request of r's API and version holding only the allowed part) to the active controller
 * under r's header, and calls done with the controller's answer, which the handler merges with
 * its *_AUTHORIZATION_FAILED results (Kafka authorizes per resource and forwards the rest).
 * Returns false, without calling done, when this node should handle r itself (it is the
 * active controller, none is known, or a relay of r already failed).
 */
bool forwarder_relay_subset(struct broker_req *r, const void *msg, forwarder_subset_fn done,
                            void *arg);

/* Any thread: CreateTopics through the active controller, local or remote. */
int broker_create_topics(struct broker *b, const struct controller_new_topic *topics, size_t n,
                         bool validate_only, controller_done_fn done, void *arg);
/* Any thread: a producer id block through the active controller, local or remote. */
int broker_allocate_producer_ids(struct broker *b, controller_done_fn done, void *arg);

#endif
