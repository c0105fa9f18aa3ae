/*
 * Stray replicas, Kafka's way (KAFKA-14616): a partition directory this node holds although
 * the metadata does not place that partition here, because its topic was deleted (or the
 * partition reassigned away) while this node was down, or because it belongs to an older
 * topic of the same name. Such a directory is never served: it is renamed
 * "<topic>-<N>.<32 hex digits>-stray" and left for the operator, as Kafka leaves it.
 *
 * Which topic a directory belongs to comes from its partition.metadata (the topic id, written
 * when the partition opens); a directory without one (written by a Gregor before the file
 * existed) belongs to the topic of its name.
 *
 * Threads: the controller thread (the partition registry's listener), before the registry
 * follows the image.
 */
#ifndef GREGOR_BROKER_STRAY_LOGS_H
#define GREGOR_BROKER_STRAY_LOGS_H

#include <stdbool.h>

#include "cluster/image.h"

struct partition_registry;
struct log;

/* Marks stray every log of the registry's log manager that IMG does not place on this node
 * and that no open partition uses. Returns how many were marked. */
int stray_logs_sweep(struct partition_registry *reg, const struct metadata_image *img);

/* True when LOG's partition.metadata names a topic other than T (an older topic of its name). */
bool stray_log_is_other_topic(struct log *log, const struct metadata_topic *t);

/* Takes (topic, index)'s log out of the log manager, closes it and marks its directory stray;
 * WHY goes to the warning. */
void stray_log_set_aside(struct partition_registry *reg, const char *topic, int32_t index,
                         const char *why);

#endif
