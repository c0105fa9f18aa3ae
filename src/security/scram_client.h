/*
 * SCRAM-SHA-256/512 (RFC 5802, RFC 7677), client side: what a broker sends when it
 * authenticates to another broker over SASL (sasl.mechanism.inter.broker.protocol).
 *
 * Fixed-size state; zero-initialise, then scram_client_first(), scram_client_final() with the
 * server-first message, and scram_client_verify() with the server-final message. Pure
 * functions plus libcrypto; any thread.
 */
#ifndef GREGOR_SECURITY_SCRAM_CLIENT_H
#define GREGOR_SECURITY_SCRAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "security/scram.h"

struct scram_client {
    enum scram_hash hash;
    char client_first_bare[SCRAM_MSG_MAX];
    char nonce[SCRAM_NONCE_LEN * 2 + 1];
    uint8_t server_signature[SCRAM_MAX_HASH]; /* expected in server-final */
};

/* Writes the client-first message ("n,,n=USER,r=NONCE") for user to out. 0, -EINVAL (a user
 * that does not fit) or -EIO. */
int scram_client_first(struct scram_client *x, enum scram_hash h, const char *user, char *out,
                       size_t outlen);

/* Parses server-first (salt, iterations, nonce extending ours) and writes client-final with
 * the proof for password to out. 0, -EINVAL (malformed, a nonce that does not start with
 * ours, iterations below 4096 or above 16384... as Kafka's client checks) or -EIO. */
int scram_client_final(struct scram_client *x, const char *password, const uint8_t *server_first,
                       size_t len, char *out, size_t outlen);

/* Checks server-final ("v=SIGNATURE"): 0, or -EACCES (an error or a wrong signature: the
 * server does not know the password either). */
int scram_client_verify(const struct scram_client *x, const uint8_t *server_final, size_t len);

#endif
