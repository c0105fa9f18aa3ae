/*
 * The broker's side of Kafka's KRaft broker lifecycle: register with the active controller
 * (new incarnation id per process start), heartbeat every broker.heartbeat.interval.ms (every
 * 100 ms while fenced or unregistered), report whether this node has applied its own
 * registration (then the controller unfences it), re-register on STALE_BROKER_EPOCH, and at
 * shutdown ask for a controlled shutdown and wait until the controller has moved this broker's
 * leaderships away (bounded). When this node is the active controller the same commands go to
 * the local controller directly; otherwise over the Kafka protocol to the active controller's
 * listener (controller_client.h).
 *
 * Threads: one lifecycle thread. lifecycle_start/lifecycle_stop from the start-up thread;
 * lifecycle_wait_unfenced from the start-up thread; lifecycle_epoch from any thread.
 */
#ifndef GREGOR_BROKER_LIFECYCLE_H
#define GREGOR_BROKER_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct broker;

int lifecycle_start(struct broker *b);
/* Blocks until this broker is registered and unfenced, or timeout_ms passed; true if unfenced. */
bool lifecycle_wait_unfenced(struct broker *b, int timeout_ms);
/* This broker's epoch from its registration, -1 while unregistered. Any thread. */
int64_t lifecycle_broker_epoch(struct broker *b);
/* The BrokerRegistration listener naming a broker-only node's metadata.observer.listener. */
#define LIFECYCLE_OBSERVER_LISTENER "METADATA_OBSERVER"

/* Address of the active controller's broker listener; -EAGAIN when not known yet. Any thread. */
int lifecycle_controller_address(struct broker *b, char *host, size_t hostlen, int *port);
/* Controlled shutdown (bounded), then stops the thread. */
void lifecycle_stop(struct broker *b);
/* Frees the state; after controller_stop (late local completions still reach it). */
void lifecycle_free(struct broker *b);

#endif
