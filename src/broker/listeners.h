/*
 * The broker's client listeners (every listener but the controller's): for each, its
 * security protocol, the address Metadata advertises on it, its TLS context (SSL, SASL_SSL)
 * and its SASL mechanisms and users (SASL_PLAINTEXT, SASL_SSL).
 *
 * Listener i of the table is listening socket i of the network server, so a connection's
 * net_conn_listener() indexes it. Built by broker_start() before the network starts, read-only
 * until broker_stop() frees it after the network stopped; any thread may read it.
 */
#ifndef GREGOR_BROKER_LISTENERS_H
#define GREGOR_BROKER_LISTENERS_H

#include <stdint.h>

#include "broker/config.h"
#include "net/net.h"
#include "proto/codec.h"
#include "security/credentials.h"
#include "security/tls_context.h"

struct broker;
struct principal_mapper;
struct broker_req;

/* SASL mechanisms as bits. */
#define SASL_MECH_PLAIN 1u
#define SASL_MECH_SCRAM_SHA_256 2u
#define SASL_MECH_SCRAM_SHA_512 4u

struct broker_listener {
    const struct listener_config *cfg; /* in broker->cfg.listeners */
    enum security_protocol protocol;
    char adv_host[256]; /* advertised (advertised.listeners, else the bound address) */
    int adv_port;
    void *tls;                       /* SSL_CTX * for SSL / SASL_SSL, else NULL */
    struct principal_mapper *mapper; /* ssl.principal.mapping.rules (SSL / SASL_SSL) */
    unsigned mechanisms;             /* SASL_MECH_* enabled (SASL listeners) */
    struct credential_store users;   /* SASL listeners */
};

/* Fills b->listeners from the configuration and nc->listeners to match. Logs and writes to err
 * what is wrong (a TLS keystore, a JAAS text, no users). Controlling thread. */
int broker_listeners_open(struct broker *b, struct net_config *nc, char *err, size_t errlen);

/* After the network started: an advertised port 0 becomes the bound port. */
void broker_listeners_bound(struct broker *b);

/* Frees TLS contexts and user stores. Controlling thread, after the network stopped. */
void broker_listeners_close(struct broker *b);

/* Index in b->listeners (and the network server) of config_client_listener(): the listener
 * this node registers and its own tools (the console's admin client) use. */
int broker_registered_listener(const struct broker *b);

/* The listener that accepted c. */
const struct broker_listener *broker_listener_of(const struct broker *b, const struct net_conn *c);

/* True for SASL_PLAINTEXT and SASL_SSL. */
static inline bool broker_listener_is_sasl(const struct broker_listener *l)
{
    return l->protocol == SECURITY_SASL_PLAINTEXT || l->protocol == SECURITY_SASL_SSL;
}

/* The host and port this broker advertises to the client of r (its connection's listener). */
struct kstr broker_advertised_host(const struct broker_req *r);
int32_t broker_advertised_port(const struct broker_req *r);

/* Mechanism bit of a name ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"), 0 if unknown. */
unsigned sasl_mechanism_bit(const char *name, size_t len);
/* The name of one mechanism bit. */
const char *sasl_mechanism_name(unsigned bit);

/* The ssl.* settings of listener l (listener.name.NAME.ssl.* over the plain properties); the
 * strings are c's. */
void broker_listener_tls_settings(const struct broker_config *c, const struct listener_config *l,
                                  struct tls_settings *ts);

#endif
