/*
 * Thread counts changed at run time (KIP-226's DynamicThreadPool): num.io.threads resizes the
 * I/O worker pool; num.network.threads is accepted and stored (Gregor's I/O workers do the
 * network work too). Kafka's rule, checked by the broker that receives the change against its
 * own current count before the change goes to the controller: the new count is at least 1,
 * at least half the current one and at most double it; otherwise INVALID_REQUEST.
 */
#ifndef GREGOR_BROKER_DYNAMIC_THREADS_H
#define GREGOR_BROKER_DYNAMIC_THREADS_H

#include <stdbool.h>
#include <stddef.h>

struct broker;
struct metadata_image;

/* This broker's value of a dynamic property: its own, else the cluster default's; NULL if
 * neither is set. Any thread (the image is the caller's). */
const char *broker_dynamic_value(const struct broker *b, const struct metadata_image *img,
                                 const char *name);

/* Applies num.io.threads from the image (or the static property when not set dynamically).
 * Controller thread, after each publish. */
void dynamic_threads_apply(struct broker *b, const struct metadata_image *img);

/* The current count of a thread property this broker runs with (see broker_dynamic.h). */
int dynamic_threads_current(struct broker *b, const char *name);

/*
 * Kafka's half/double rule for setting thread property `name` to `value` (other names and
 * values that are no integer pass: the controller refuses them). Returns true and a message
 * (Kafka's wording) when refused. Any thread.
 */
bool dynamic_threads_refuse(struct broker *b, const char *name, const char *value, char *msg,
                            size_t len);

#endif
