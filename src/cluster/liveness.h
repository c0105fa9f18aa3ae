/*
 * Broker liveness as the active controller sees it (Kafka's BrokerHeartbeatManager): the time
 * of each broker's last heartbeat, kept in memory only. A controller that becomes active gives
 * every registered broker a fresh session (Kafka does the same), so a failover never fences a
 * live broker. Controller thread only.
 */
#ifndef GREGOR_CLUSTER_LIVENESS_H
#define GREGOR_CLUSTER_LIVENESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIVENESS_MAX_BROKERS 1024

struct liveness_entry {
    int32_t id;
    uint64_t last_ms; /* monotonic ms of the last heartbeat (or of the session's start) */
    bool heard;       /* this controller has received a heartbeat (not only assumed one) */
};

struct liveness {
    uint64_t session_timeout_ms; /* broker.session.timeout.ms */
    size_t n;
    struct liveness_entry v[LIVENESS_MAX_BROKERS];
};

void liveness_init(struct liveness *l, uint64_t session_timeout_ms);
/* Records a heartbeat of broker id at now_ms. */
void liveness_touch(struct liveness *l, int32_t id, uint64_t now_ms);
/* Starts an assumed session for broker id at now_ms (controller failover). */
void liveness_assume(struct liveness *l, int32_t id, uint64_t now_ms);
/* Forgets every broker; the next touch starts a session. */
void liveness_clear(struct liveness *l);
/* True when broker id has a session that has not expired at now_ms. */
bool liveness_alive(const struct liveness *l, int32_t id, uint64_t now_ms);
/* As liveness_alive, and the session is backed by a heartbeat this controller received. */
bool liveness_heard(const struct liveness *l, int32_t id, uint64_t now_ms);

#endif
