/*
 * How this broker connects to other brokers' Kafka listeners (follower fetches, AlterPartition,
 * registration and heartbeats, forwarded admin requests, transaction markers and
 * verifications): over the inter-broker listener's protocol (inter.broker.listener.name,
 * else the first PLAINTEXT client listener), with TLS (the listener's ssl.* truststore to
 * verify the peer, its keystore as client certificate) and SASL
 * (sasl.mechanism.inter.broker.protocol, PLAIN or SCRAM-SHA-256/512, with the username and
 * password options of listener.name.NAME.MECH.sasl.jaas.config), as Kafka's brokers do.
 *
 * Built by the controlling thread at start-up, read-only afterwards (any thread).
 */
#ifndef GREGOR_BROKER_INTERBROKER_H
#define GREGOR_BROKER_INTERBROKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct broker_config;

struct interbroker_security {
    bool sasl;
    void *tls;        /* SSL_CTX * client context, NULL without TLS */
    bool verify_host; /* ssl.endpoint.identification.algorithm=https */
    /* Held across each SSL_connect step (never across a wait): OpenSSL 3's verification
     * caches in the shared context are not safe for concurrent handshakes (ThreadSanitizer
     * saw two fetchers race in the certificate store). Handshakes are rare. */
    pthread_mutex_t handshake_mu;
    char mechanism[32]; /* PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 */
    char username[256];
    char password[256];
};

/* From the configuration; on error one line naming the property in err, -EINVAL. */
int interbroker_security_init(struct interbroker_security *s, const struct broker_config *c,
                              char *err, size_t errlen);
void interbroker_security_free(struct interbroker_security *s);

#endif
