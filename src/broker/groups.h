/*
 * The broker's side of the group coordinator (src/group/): its lifecycle with the broker and
 * the glue (worker per shard, __consumer_offsets partitions, appends) it needs.
 */
#ifndef GREGOR_BROKER_GROUPS_H
#define GREGOR_BROKER_GROUPS_H

#include <stdbool.h>
#include <stdint.h>

struct broker;

/* Creates the coordinator (before the network starts). 0 or -ENOMEM. */
int groups_start(struct broker *b);
/* The leader epoch of partition `partition` of __consumer_offsets changed, per the applied
 * image: the coordinator resigns the shard this broker led (and replays it if it still leads)
 * or loads the one it now leads. Controller thread (image listener). */
void groups_on_leader_change(struct broker *b, int32_t partition, bool was_leader, bool is_leader);
/* The group coordinator (internal offset commits of transactions). Any thread after start. */
struct group_coordinator *groups_coordinator(struct broker *b);
/* Answers parked group requests; before net_server_stop(). */
void groups_shutdown(struct broker *b);
/* Frees the coordinator; after net_server_stop(), before the partition registry closes. */
void groups_stop(struct broker *b);

#endif
