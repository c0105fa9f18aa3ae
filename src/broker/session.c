/*
 * Per-connection security sessions (see session.h): created on accept for SSL and SASL
 * listeners, freed on close. Before a SASL connection is authenticated its frames are limited
 * to sasl.server.max.receive.size, so an unauthenticated peer cannot make the broker allocate
 * socket.request.max.bytes.
 */
#include "broker/session.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/quota.h"
#include "broker/listeners.h"
#include "security/principal_mapper.h"
#include "security/x509_name.h"

#define SESSION_ANONYMOUS "User:ANONYMOUS"

int session_on_open(void *ctx, struct net_conn *c)
{
    struct broker *b = ctx;
    const struct broker_listener *l = broker_listener_of(b, c);
    if (l->protocol == SECURITY_PLAINTEXT)
        return 0;
    struct broker_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -1;
    snprintf(s->principal, sizeof(s->principal), SESSION_ANONYMOUS);
    if (broker_listener_is_sasl(l)) {
        s->state = SESSION_HANDSHAKE;
        net_conn_set_max_frame(c, b->cfg.sasl_server_max_receive_size);
    } else {
        s->state = SESSION_AUTHENTICATED;
    }
    net_conn_set_user(c, s);
    return 0;
}

void session_on_close(void *ctx, struct net_conn *c)
{
    quota_conn_close(net_conn_cache(c));
    struct broker_session *s = net_conn_user(c);
    if (s == NULL)
        return;
    free(s->scram);
    free(s);
    net_conn_set_user(c, NULL);
}

struct broker_session *session_of(const struct net_conn *c)
{
    return net_conn_user(c);
}

const char *session_principal(const struct net_conn *c)
{
    struct broker_session *s = net_conn_user(c);
    return s != NULL ? s->principal : SESSION_ANONYMOUS;
}

int session_resolve_tls_principal(struct broker *b, struct net_conn *c)
{
    struct broker_session *s = net_conn_user(c);
    assert(s != NULL && s->state == SESSION_AUTHENTICATED && !s->tls_principal_known);
    s->tls_principal_known = true;
    const void *name = net_conn_tls_peer_name(c);
    if (s->user != NULL || name == NULL)
        return 0; /* no client certificate: User:ANONYMOUS, as Kafka */
    char dn[1024], mapped[sizeof(s->principal) - 5], why[700];
    int rc = x509_name_rfc2253(name, dn, sizeof(dn));
    if (rc == 0) {
        const struct broker_listener *l = broker_listener_of(b, c);
        rc = principal_mapper_map(l->mapper, dn, mapped, sizeof(mapped), why, sizeof(why));
    } else {
        snprintf(why, sizeof(why), "the subject is longer than %zu bytes", sizeof(dn) - 1);
    }
    if (rc != 0) {
        logger_warn("broker",
                    "connection from %s closed: failed to map name for '%s' based on SSL "
                    "principal mapping rules: %s",
                    net_conn_peer(c), dn, why);
        return -1;
    }
    snprintf(s->principal, sizeof(s->principal), "User:%s", mapped);
    logger_debug("broker", "connection from %s: TLS principal %s (subject '%s')", net_conn_peer(c),
                 s->principal, dn);
    return 0;
}

void session_authenticated(struct broker_session *s, struct net_conn *c, const char *name)
{
    s->state = SESSION_AUTHENTICATED;
    snprintf(s->principal, sizeof(s->principal), "User:%s", name);
    s->tls_principal_known = true; /* SASL_SSL: the SASL user is the principal */
    free(s->scram);
    s->scram = NULL;
    net_conn_set_max_frame(c, 0);
}
