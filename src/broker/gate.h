/*
 * The start-up gate. The broker listens as soon as its identity is known, so clients can
 * connect within milliseconds, while the logs are recovered and the metadata log is loaded.
 * Requests arriving meanwhile are held (not read, not answered) and dispatched on their own
 * worker once the broker is ready; if start-up fails their connections are closed.
 */
#ifndef GREGOR_BROKER_GATE_H
#define GREGOR_BROKER_GATE_H

#include <stdbool.h>

#include "net/net.h"

struct broker;

/* Worker thread: holds nr if the broker is not ready yet (returns true), else returns false. */
bool broker_gate_hold(struct broker *b, struct net_request *nr);

/* Start-up thread: the broker is ready; held requests are dispatched on their workers. */
void broker_gate_open(struct broker *b);

/* Start-up thread: start-up failed; held requests close their connections. */
void broker_gate_fail(struct broker *b);

#endif
