/*
 * The broker's answers to the web console's /api/ requests (src/console/ serves HTTP and the
 * pages; this is where cluster, topic, partition and record facts come from): the metadata
 * image for the cluster's view, the partition registry and the logs for what this broker
 * hosts. Runs on the console's HTTP thread; reads only published state (image reference,
 * partition references, atomic log offsets), takes no lock held by the data path for long.
 */
#ifndef GREGOR_BROKER_CONSOLE_API_H
#define GREGOR_BROKER_CONSOLE_API_H

#include <stdint.h>

#include "console/console.h"

struct broker;

/* The console source for broker b (valid until broker_stop). */
struct console_source broker_console_source(struct broker *b);

/*
 * GET /api/topics/<topic>/partitions/<partition>/messages?offset=N&limit=M: a bounded page of
 * records read from the local log (console_messages.c). Writes JSON, returns the HTTP status.
 */
int console_api_messages(struct broker *b, const char *topic, int32_t partition,
                         const struct console_request *req, struct expo *out);

/* GET /api/groups and /api/groups/<group> (console_groups.c): through a Kafka admin client on
 * this broker's own listener, since a group's coordinator may be another broker. */
int console_api_groups(struct broker *b, const struct console_request *req, struct expo *out);
int console_api_group(struct broker *b, const struct console_request *req, const char *group,
                      struct expo *out);

/* POST /api/topics?name=&partitions=&replication_factor= and DELETE /api/topics/<name>
 * (console_actions.c). */
int console_api_create_topic(struct broker *b, const struct console_request *req, struct expo *out);
int console_api_delete_topic(struct broker *b, const struct console_request *req, const char *name,
                             struct expo *out);

/* POST (set) and DELETE (remove) /api/topics/T/configs?name=N[&value=V] (console_configs.c). */
int console_api_change_config(struct broker *b, const char *topic,
                              const struct console_request *req, struct expo *out);

/* POST /api/groups/G/offsets?topic=T&to=earliest|latest|offset|timestamp[&value=N]
 * [&partition=P] (console_reset.c): 409 unless the group is empty. */
int console_api_reset_offsets(struct broker *b, const char *group,
                              const struct console_request *req, struct expo *out);

/* Parses a non-negative decimal integer (at most 18 digits); -1 when s is not one. */
int64_t console_api_parse_count(const char *s);

#endif
