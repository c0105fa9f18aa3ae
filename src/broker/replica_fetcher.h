/*
 * Replica fetchers (Kafka's ReplicaFetcherThread): for every leader broker this node follows
 * partitions of, num.replica.fetchers threads send Fetch requests as a follower (v12: replica
 * id, current leader epoch, last fetched epoch) and append what comes back unchanged
 * (producer_append_replica: offsets, epochs, CRCs, producer ids), then carry the leader's high
 * watermark. A partition goes to fetcher (hash(topic) + partition) % num.replica.fetchers.
 *
 * Divergence (KIP-101/595): a response with a diverging epoch truncates the log to where that
 * epoch ends on both sides before fetching on; OFFSET_OUT_OF_RANGE truncates to the leader's
 * high watermark (a follower ahead of an unclean leader) or restarts the log at the leader's
 * log start (a follower behind it).
 *
 * Durability (acks.all.fsync, default true): what a round appended is fdatasync'ed before the
 * next fetch reports the new log end to the leader, so the leader's high watermark only counts
 * bytes on disk on every in-sync replica.
 *
 * Threads: replica_fetchers_on_image runs on the controller thread (image listener) and starts
 * fetcher threads for new leaders; fetchers find their partitions by scanning the registry
 * every round. An append or truncation holds the partition's follow_mu and happens only while
 * the partition's leader and leader epoch are still those the fetch was sent for.
 */
#ifndef GREGOR_BROKER_REPLICA_FETCHER_H
#define GREGOR_BROKER_REPLICA_FETCHER_H

struct broker;

int replica_fetchers_create(struct broker *b);
/* Starts fetchers for every leader this node follows partitions of; wakes idle ones. */
void replica_fetchers_on_image(struct broker *b);
/* Stops and joins every fetcher thread; later on_image calls do nothing. */
void replica_fetchers_stop(struct broker *b);
void replica_fetchers_free(struct broker *b);

#endif
