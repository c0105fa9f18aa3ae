/*
 * The leader's ISR changes (Kafka's AlterPartitionManager plus the ISR-shrink task): one thread
 * per broker that every replica.lag.time.max.ms / 2, or when kicked (a follower caught up),
 * asks every partition led here whether its ISR should change (replica_set.h), sends the
 * changes in one AlterPartition (v2, topic ids) to the active controller with this broker's
 * epoch, and applies the answers. A failed send drops the in-flight marks, so the next round
 * retries; a refusal (stale partition or leader epoch) waits for the metadata image.
 */
#ifndef GREGOR_BROKER_ISR_SENDER_H
#define GREGOR_BROKER_ISR_SENDER_H

struct broker;

int isr_sender_start(struct broker *b);
/* Stops and joins the thread; frees the state. Safe when never started. */
void isr_sender_stop(struct broker *b);
/* Wakes the thread for a round now. Any thread; never blocks on I/O. */
void isr_sender_kick(struct broker *b);

#endif
