/* Entry point from the network layer: one call per request frame, on its worker thread. */
#ifndef GREGOR_BROKER_DISPATCH_H
#define GREGOR_BROKER_DISPATCH_H

#include "net/net.h"

struct broker;

void broker_dispatch(struct broker *b, struct net_request *nr);

#endif
