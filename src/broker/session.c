/*
 * Per-connection security sessions (see session.h): created on accept for SSL and SASL
 * listeners, freed on close. Before a SASL connection is authenticated its frames are limited
 * to sasl.server.max.receive.size, so an unauthenticated peer cannot make the broker allocate
 * socket.request.max.bytes.
 */
#include "broker/session.h"

#include "broker/quota.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/quota.h"
#include "broker/listeners.h"

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
    if (s == NULL)
        return SESSION_ANONYMOUS;
    if (!s->tls_principal_known && s->state == SESSION_AUTHENTICATED && s->user == NULL) {
        /* SSL: Kafka's default principal is the certificate subject (RFC 2253). */
        char subject[300];
        if (net_conn_tls_peer_subject(c, subject, sizeof(subject)))
            snprintf(s->principal, sizeof(s->principal), "User:%s", subject);
        s->tls_principal_known = true;
        logger_debug("broker", "connection from %s: TLS principal %s", net_conn_peer(c),
                     s->principal);
    }
    return s->principal;
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
