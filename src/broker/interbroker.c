/* The broker's client side towards other brokers; see interbroker.h. */
#include "broker/interbroker.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "broker/config.h"
#include "broker/listeners.h"
#include "security/credentials.h"
#include "security/tls_context.h"

/* The mechanism brokers use; "" = PLAIN. */
static int interbroker_mechanism(const struct broker_config *c, struct interbroker_security *s,
                                 char *err, size_t errlen)
{
    const char *m = c->sasl_mechanism_inter_broker[0] ? c->sasl_mechanism_inter_broker : "PLAIN";
    if (sasl_mechanism_bit(m, strlen(m)) == 0) {
        snprintf(err, errlen,
                 "sasl.mechanism.inter.broker.protocol '%s' is not supported (PLAIN, "
                 "SCRAM-SHA-256, SCRAM-SHA-512)",
                 m);
        return -EINVAL;
    }
    snprintf(s->mechanism, sizeof(s->mechanism), "%s", m);
    return 0;
}

/* username and password of listener.name.NAME.MECH.sasl.jaas.config. */
static int interbroker_identity(const struct broker_config *c, const struct listener_config *l,
                                struct interbroker_security *s, char *err, size_t errlen)
{
    char prop[96];
    size_t k = 0;
    for (const char *p = s->mechanism; *p && k + 1 < sizeof(prop); p++)
        prop[k++] = (char)tolower((unsigned char)*p);
    snprintf(prop + k, sizeof(prop) - k, ".sasl.jaas.config");
    const char *jaas = config_listener_prop(c, l->name, prop);
    if (jaas == NULL ||
        credential_jaas_option(jaas, "username", s->username, sizeof(s->username)) != 0 ||
        credential_jaas_option(jaas, "password", s->password, sizeof(s->password)) != 0) {
        snprintf(err, errlen,
                 "inter-broker listener %s uses SASL: listener.name.%s.%s needs username=\"...\" "
                 "and password=\"...\" (this broker's own identity towards the others)",
                 l->name, l->name, prop);
        return -EINVAL;
    }
    return 0;
}

int interbroker_security_init(struct interbroker_security *s, const struct broker_config *c,
                              char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->handshake_mu, NULL);
    const struct listener_config *l = config_client_listener(c);
    if (l == NULL)
        return 0;
    s->sasl = l->protocol == SECURITY_SASL_PLAINTEXT || l->protocol == SECURITY_SASL_SSL;
    /* A single combined node never connects to another broker: it needs no identity (and its
     * listener may have no SASL users at all). */
    bool alone = strchr(c->controller_quorum_voters, ',') == NULL &&
                 c->roles == (CONFIG_ROLE_BROKER | CONFIG_ROLE_CONTROLLER);
    int rc = 0;
    if (s->sasl) {
        rc = interbroker_mechanism(c, s, err, errlen);
        if (rc == 0 && !alone)
            rc = interbroker_identity(c, l, s, err, errlen);
    }
    if (rc == 0 && !alone && (l->protocol == SECURITY_SSL || l->protocol == SECURITY_SASL_SSL)) {
        struct tls_settings ts;
        broker_listener_tls_settings(c, l, &ts);
        char why[400];
        rc = tls_client_context_create(&ts, &s->tls, why, sizeof(why));
        const char *alg = config_listener_prop(c, l->name, "ssl.endpoint.identification.algorithm");
        alg = alg ? alg : c->ssl_endpoint_identification_algorithm;
        s->verify_host = strcasecmp(alg, "https") == 0;
        if (rc != 0)
            snprintf(err, errlen, "inter-broker listener %s: %s", l->name, why);
    }
    if (rc != 0)
        interbroker_security_free(s);
    return rc;
}

void interbroker_security_free(struct interbroker_security *s)
{
    if (s->tls != NULL)
        tls_context_free(s->tls);
    OPENSSL_cleanse(s->password, sizeof(s->password));
    pthread_mutex_destroy(&s->handshake_mu);
    memset(s, 0, sizeof(*s));
}
