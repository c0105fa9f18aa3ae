/*
 * The broker context as handlers see it. Only src/broker/ includes this file.
 *
 * Everything here is created in broker_start() before the network starts and destroyed in
 * broker_stop() after it stopped, so handlers may use every pointer without checks. The
 * configuration is read-only after start.
 */
#ifndef GREGOR_BROKER_BROKER_INTERNAL_H
#define GREGOR_BROKER_BROKER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/config.h"
#include "broker/interbroker.h"
#include "broker/listeners.h"
#include "broker/partition.h"
#include "cluster/controller.h"
#include "net/net.h"

struct partition_registry;
struct gate_entry;

/* Requests held until start-up completes (gate.c). */
struct broker_gate {
    pthread_mutex_t mu; /* guards held and the transition of ready */
    atomic_bool ready;
    struct gate_entry *held;
};

/* Producer ids reserved through the metadata log and not handed out yet (InitProducerId). */
struct producer_id_pool {
    pthread_mutex_t mu; /* guards next, end */
    int64_t next, end;  /* ids [next, end) are free */
};
struct metrics;
struct console;
struct console_history;
struct broker_groups;
struct broker_txn;
struct txn_offsets;
struct txn_marker_sender;
struct txn_verifier;
struct broker_authorizer;

struct broker {
    struct broker_config cfg;
    char cluster_id[64];       /* from meta.properties, generated on first start */
    char advertised_host[256]; /* of the listener registered in the metadata log */
    int advertised_port;
    struct broker_listener listeners[NET_MAX_LISTENERS]; /* net listener i = listeners[i] */
    int n_listeners;
    struct controller *ctl;
    struct partition_registry *parts;
    struct net_server *net;
    struct producer_id_pool pid_pool;
    struct broker_gate gate;
    atomic_bool stopping;            /* set first in broker_stop: parked fetches answer at once */
    struct waiter_list parked;       /* every parked fetch, woken by broker_stop */
    struct metrics *metrics;         /* counters always exist; HTTP only with metrics.listener */
    struct console *console;         /* web console (console.listener), or NULL */
    struct broker_groups *groups;    /* group coordinator glue (groups.c) */
    struct broker_txn *txn;          /* transaction coordinator glue (transactions.c) */
    struct txn_offsets *txn_offsets; /* pending transactional offsets (txn_offset_commit.c) */
    struct txn_marker_sender *marker_sender; /* markers for other leaders (txn_marker_sender.c) */
    struct txn_verifier *txn_verifier; /* KIP-890 checks with other coordinators (txn_verifier.c) */
    struct interbroker_security interbroker; /* how this broker reaches the others (TLS, SASL) */
    struct broker_lifecycle *life;           /* registration and heartbeats (lifecycle.c) */
    struct broker_forwarder *fwd;            /* requests to the active controller (forwarder.c) */
    struct replica_fetchers *fetchers;       /* follower fetch threads (replica_fetcher.c) */
    struct isr_sender *isr;                  /* ISR changes to the controller (isr_sender.c) */
    struct quota_manager *quotas;            /* client quota sensors (quota.c) */
    struct broker_authorizer *authz;         /* ACLs (authorizer.c); NULL: no authorizer */
    struct console_history *console_history; /* the console's samples (console_history.c) */
    uint8_t incarnation[16]; /* random per process start; sent with every BrokerRegistration */
    /* Controller thread only: the partition registry follows the metadata image (set once the
     * image holds this process's own registration; see broker_on_image). */
    bool image_followed;
};

/* True for process.roles=broker or broker,controller: registers, hosts partitions, serves
 * clients. A controller-only node runs the same subsystems but never registers as a broker, so
 * no partition is ever placed on it, and serves only the controller APIs (dispatch.c). */
static inline bool broker_has_broker_role(const struct broker *b)
{
    return (b->cfg.roles & CONFIG_ROLE_BROKER) != 0;
}

/*
 * True when the metadata quorum has more than one voter, or this node has only one of the two
 * roles (then another node has the other): a real cluster, where Kafka's rules for
 * replication factors apply without the single-node allowances.
 */
static inline bool broker_is_multi_node(const struct broker *b)
{
    return strchr(b->cfg.controller_quorum_voters, ',') != NULL ||
           b->cfg.roles != (CONFIG_ROLE_BROKER | CONFIG_ROLE_CONTROLLER);
}

#endif
