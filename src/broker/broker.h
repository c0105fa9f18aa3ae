/*
 * The broker context: everything a running broker owns — configuration, network server,
 * cluster controller, partition logs, background threads. It is the only place process state
 * lives; handlers reach everything through it.
 */
#ifndef GREGOR_BROKER_BROKER_H
#define GREGOR_BROKER_BROKER_H

#include <stddef.h>

#include "broker/config.h"

struct broker;

/* Starts a broker with cfg (copied). On failure writes one line to err and returns < 0. */
int broker_start(const struct broker_config *cfg, struct broker **out, char *err, size_t errlen);

/* Stops every thread, closes files and frees the broker. */
void broker_stop(struct broker *b);

#endif
