/*
 * A client connection's security session: who it is (the principal Kafka's ACLs will match,
 * "User:NAME") and, on a SASL listener, where its authentication stands.
 *
 * A PLAINTEXT connection has no session object (principal User:ANONYMOUS, nothing to check),
 * so the plaintext path costs nothing. SSL and SASL connections get one in on_open, freed in
 * on_close; only the connection's worker touches it.
 *
 * SASL states (Kafka's SaslServerAuthenticator): HANDSHAKE (ApiVersions and SaslHandshake
 * only), then AUTHENTICATE (SaslAuthenticate only, after handshake v1) or RAW_TOKEN (frames
 * are bare SASL tokens, after handshake v0), then AUTHENTICATED. Anything out of order is
 * ILLEGAL_SASL_STATE and closes the connection; a failed authentication closes it too.
 */
#ifndef GREGOR_BROKER_SESSION_H
#define GREGOR_BROKER_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "net/net.h"
#include "security/scram.h"

struct broker;
struct credential_user;

enum session_state {
    SESSION_HANDSHAKE,
    SESSION_AUTHENTICATE,
    SESSION_RAW_TOKEN,
    SESSION_AUTHENTICATED,
};

struct broker_session {
    enum session_state state;
    unsigned mechanism;           /* SASL_MECH_* chosen by SaslHandshake */
    bool tls_principal_known;     /* SSL: principal read from the peer certificate */
    int scram_step;               /* 0: expect client-first, 1: expect client-final */
    struct scram_exchange *scram; /* during a SCRAM exchange */
    const struct credential_user *user;
    /* KIP-368: monotonic ms at which the authenticated session expires (0: never); after it
     * only a SaslHandshake, re-authenticating with the same mechanism and user, is served. */
    int64_t expires_ms;
    bool reauthenticating; /* a re-authentication of an authenticated session is under way */
    char principal[320];   /* "User:NAME", "User:CN=...", "User:ANONYMOUS" */
};

/* net_handler callbacks (broker.c installs them). */
int session_on_open(void *ctx, struct net_conn *c);
void session_on_close(void *ctx, struct net_conn *c);

/* The session of a connection, or NULL on a PLAINTEXT listener. Owning worker. */
struct broker_session *session_of(const struct net_conn *c);

/* The connection's principal ("User:ANONYMOUS" when there is nothing else). Owning worker. */
const char *session_principal(const struct net_conn *c);

/* SSL: sets the principal of c's authenticated session from the peer certificate's subject
 * (RFC 2253, as Java prints it) through the listener's ssl.principal.mapping.rules; no
 * certificate leaves User:ANONYMOUS. Called once, before the first request is handled. Returns
 * -1 (logged) when no rule applies or a rule fails: the caller closes the connection, as Kafka
 * does. Owning worker. */
int session_resolve_tls_principal(struct broker *b, struct net_conn *c);

/* Marks s authenticated as user `name` (principal User:NAME) and lifts the frame limit. */
void session_authenticated(struct broker_session *s, struct net_conn *c, const char *name);

#endif
