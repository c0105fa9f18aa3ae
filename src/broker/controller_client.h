/*
 * A blocking Kafka-protocol client connection from this broker to the active controller's
 * broker listener, for the requests a broker sends the controller (BrokerRegistration,
 * BrokerHeartbeat, AllocateProducerIds) and for forwarding admin requests. One request at a
 * time; every call bounds its time with a deadline. Used by one thread at a time (the
 * lifecycle thread, or the forwarder thread), each with its own client.
 */
#ifndef GREGOR_BROKER_CONTROLLER_CLIENT_H
#define GREGOR_BROKER_CONTROLLER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "proto/gen/api_table.h"

struct interbroker_security;

struct controller_client {
    int fd;    /* -1 when not connected */
    void *ssl; /* SSL * over fd with a TLS inter-broker listener, else NULL */
    struct interbroker_security *sec; /* NULL: plaintext, no SASL (the CLI) */
    char host[256];
    int port;
    int32_t next_correlation_id;
    char client_id[64];
};

/* sec: how to reach other brokers (TLS, SASL; broker/interbroker.h), NULL for plaintext;
 * it must outlive c. */
void controller_client_init(struct controller_client *c, int32_t node_id,
                            struct interbroker_security *sec);
void controller_client_close(struct controller_client *c);

/*
 * Sends one request frame (header + body, no size prefix; its correlation id is rewritten) to
 * host:port, reconnecting if the target changed, and waits for the response. On success
 * *resp (malloc, the caller frees) holds the response frame without size prefix, its
 * correlation id rewritten back to the one the request frame carried. Returns 0 or a negative
 * errno (-ETIMEDOUT, -ECONNREFUSED, -EPROTO...); on error the connection is closed.
 */
int controller_client_roundtrip(struct controller_client *c, const char *host, int port,
                                uint8_t *frame, size_t len, uint8_t **resp, size_t *resp_len,
                                int timeout_ms);

/*
 * Encodes `msg` as request api_key/version, sends it and decodes the response body into
 * `out` (slices point into *buf, which the caller frees; arrays in `arena`). Returns 0 or a
 * negative errno.
 */
struct arena;
int controller_client_call(struct controller_client *c, const char *host, int port, int16_t api_key,
                           int16_t version, const void *msg, void *out, uint8_t **buf,
                           struct arena *arena, int timeout_ms);

#endif
