/*
 * Client listeners: turns listeners, listener.security.protocol.map, advertised.listeners,
 * the ssl.* and sasl.* properties (each may be given per listener as
 * listener.name.NAME.PROPERTY, which wins over the plain property, as in Kafka) into the table
 * of struct broker_listener the network server and the handlers share.
 */
#include "broker/listeners.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/request.h"
#include "security/principal_mapper.h"
#include "security/tls_context.h"

static const struct {
    unsigned bit;
    const char *name;
} sasl_mechanisms[] = {
    {SASL_MECH_PLAIN, "PLAIN"},
    {SASL_MECH_SCRAM_SHA_256, "SCRAM-SHA-256"},
    {SASL_MECH_SCRAM_SHA_512, "SCRAM-SHA-512"},
};
#define SASL_MECH_COUNT (sizeof(sasl_mechanisms) / sizeof(sasl_mechanisms[0]))

unsigned sasl_mechanism_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < SASL_MECH_COUNT; i++)
        if (strlen(sasl_mechanisms[i].name) == len &&
            memcmp(sasl_mechanisms[i].name, name, len) == 0)
            return sasl_mechanisms[i].bit;
    return 0;
}

const char *sasl_mechanism_name(unsigned bit)
{
    for (size_t i = 0; i < SASL_MECH_COUNT; i++)
        if (sasl_mechanisms[i].bit == bit)
            return sasl_mechanisms[i].name;
    return "?";
}

/* listener.name.NAME.PROP if set, else the plain property's value. */
static const char *listener_prop(const struct broker_config *c, const struct listener_config *l,
                                 const char *prop, const char *global)
{
    const char *v = config_listener_prop(c, l->name, prop);
    return v ? v : global;
}

static void listener_set_advertised(const struct broker_config *c, struct broker_listener *bl)
{
    const struct listener_config *adv = config_advertised_for(c, bl->cfg);
    const struct listener_config *src = adv ? adv : bl->cfg;
    if (src->host[0] == '\0' || strcmp(src->host, "0.0.0.0") == 0) {
        if (gethostname(bl->adv_host, sizeof(bl->adv_host)) != 0)
            snprintf(bl->adv_host, sizeof(bl->adv_host), "localhost");
    } else {
        snprintf(bl->adv_host, sizeof(bl->adv_host), "%s", src->host);
    }
    bl->adv_port = src->port;
}

void broker_listener_tls_settings(const struct broker_config *c, const struct listener_config *l,
                                  struct tls_settings *ts)
{
    *ts = (struct tls_settings){
        .keystore_type = listener_prop(c, l, "ssl.keystore.type", c->ssl_keystore_type),
        .keystore_location = listener_prop(c, l, "ssl.keystore.location", c->ssl_keystore_location),
        .key_password = listener_prop(c, l, "ssl.key.password", c->ssl_key_password),
        .keystore_certificate_chain = listener_prop(c, l, "ssl.keystore.certificate.chain",
                                                    c->ssl_keystore_certificate_chain),
        .keystore_key = listener_prop(c, l, "ssl.keystore.key", c->ssl_keystore_key),
        .truststore_type = listener_prop(c, l, "ssl.truststore.type", c->ssl_truststore_type),
        .truststore_location =
            listener_prop(c, l, "ssl.truststore.location", c->ssl_truststore_location),
        .truststore_certificates =
            listener_prop(c, l, "ssl.truststore.certificates", c->ssl_truststore_certificates),
        .client_auth = listener_prop(c, l, "ssl.client.auth", c->ssl_client_auth),
        .enabled_protocols = listener_prop(c, l, "ssl.enabled.protocols", c->ssl_enabled_protocols),
        .cipher_suites = listener_prop(c, l, "ssl.cipher.suites", c->ssl_cipher_suites),
    };
}

static int listener_open_tls(const struct broker_config *c, struct broker_listener *bl, char *err,
                             size_t errlen)
{
    const struct listener_config *l = bl->cfg;
    struct tls_settings ts;
    broker_listener_tls_settings(c, l, &ts);
    const char *rules =
        listener_prop(c, l, "ssl.principal.mapping.rules", c->ssl_principal_mapping_rules);
    char why[400];
    if (principal_mapper_parse(rules, &bl->mapper, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "listener %s: ssl.principal.mapping.rules: %s", l->name, why);
        return -EINVAL;
    }
    char desc[300];
    principal_mapper_describe(bl->mapper, desc, sizeof(desc));
    logger_info("broker", "listener %s: SSL principal mapping rules %s", l->name, desc);
    int rc = tls_context_create(&ts, &bl->tls, why, sizeof(why));
    if (rc != 0)
        snprintf(err, errlen, "listener %s: %s", l->name, why);
    return rc;
}

/* sasl.enabled.mechanisms of the listener ("" = every mechanism Gregor has). */
static int listener_parse_mechanisms(const struct broker_config *c, struct broker_listener *bl,
                                     char *err, size_t errlen)
{
    const char *v =
        listener_prop(c, bl->cfg, "sasl.enabled.mechanisms", c->sasl_enabled_mechanisms);
    bl->mechanisms = 0;
    for (const char *p = v; *p;) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 0)
            break;
        unsigned bit = sasl_mechanism_bit(p, n);
        if (bit == 0) {
            snprintf(err, errlen,
                     "listener %s: SASL mechanism '%.*s' in sasl.enabled.mechanisms is not "
                     "supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)",
                     bl->cfg->name, (int)n, p);
            return -EINVAL;
        }
        bl->mechanisms |= bit;
        p += n;
    }
    if (bl->mechanisms == 0)
        bl->mechanisms = SASL_MECH_PLAIN | SASL_MECH_SCRAM_SHA_256 | SASL_MECH_SCRAM_SHA_512;
    return 0;
}

/* Users: sasl.credentials.file, then listener.name.NAME.MECH.sasl.jaas.config of each mechanism. */
static int listener_load_users(const struct broker_config *c, struct broker_listener *bl, char *err,
                               size_t errlen)
{
    char why[300];
    if (c->sasl_credentials_file[0] &&
        credential_store_add_file(&bl->users, c->sasl_credentials_file, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "sasl.credentials.file: %s", why);
        return -EINVAL;
    }
    for (size_t i = 0; i < SASL_MECH_COUNT; i++) {
        char prop[64];
        snprintf(prop, sizeof(prop), "%s.sasl.jaas.config", sasl_mechanisms[i].name);
        const char *jaas = config_listener_prop(c, bl->cfg->name, prop);
        if (jaas && credential_store_add_jaas(&bl->users, jaas, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "listener.name.%s.%s: %s", bl->cfg->name, prop, why);
            return -EINVAL;
        }
    }
    /* PLAIN reads only static users; SCRAM also those of the metadata log (gregor user add). */
    if (bl->users.n == 0 && (bl->mechanisms & SASL_MECH_PLAIN)) {
        snprintf(err, errlen,
                 "listener %s (%s) has no SASL users: set sasl.credentials.file or "
                 "listener.name.%s.plain.sasl.jaas.config with user_NAME=\"PASSWORD\" options "
                 "(or enable only SCRAM mechanisms and add users with 'gregor user add')",
                 bl->cfg->name, config_protocol_name(bl->protocol), bl->cfg->name);
        return -EINVAL;
    }
    return 0;
}

static int listener_open_one(const struct broker_config *c, struct broker_listener *bl, char *err,
                             size_t errlen)
{
    bl->protocol = bl->cfg->protocol;
    credential_store_init(&bl->users);
    listener_set_advertised(c, bl);
    int rc = 0;
    if (bl->protocol == SECURITY_SSL || bl->protocol == SECURITY_SASL_SSL)
        rc = listener_open_tls(c, bl, err, errlen);
    if (rc == 0 && broker_listener_is_sasl(bl)) {
        rc = listener_parse_mechanisms(c, bl, err, errlen);
        if (rc == 0)
            rc = listener_load_users(c, bl, err, errlen);
    }
    return rc;
}

int broker_listeners_open(struct broker *b, struct net_config *nc, char *err, size_t errlen)
{
    const struct broker_config *c = &b->cfg;
    bool any_tls = false;
    b->n_listeners = 0;
    for (int i = 0; i < c->num_listeners; i++) {
        const struct listener_config *l = &c->listeners[i];
        if (config_is_controller_listener(c, l->name))
            continue;
        if (b->n_listeners == NET_MAX_LISTENERS) {
            snprintf(err, errlen, "more than %d client listeners", NET_MAX_LISTENERS);
            return -EINVAL;
        }
        struct broker_listener *bl = &b->listeners[b->n_listeners++];
        bl->cfg = l;
        int rc = listener_open_one(c, bl, err, errlen);
        if (rc != 0)
            return rc;
        nc->listeners[nc->num_listeners++] =
            (struct net_listener_config){.host = l->host, .port = l->port, .tls = bl->tls};
        any_tls |= bl->tls != NULL;
        logger_info("broker", "listener %s://%s:%d: %s, advertised %s:%d", l->name,
                    l->host[0] ? l->host : "*", l->port, config_protocol_name(bl->protocol),
                    bl->adv_host, bl->adv_port);
    }
    if (any_tls)
        logger_info("broker", "%s",
                    tls_ktls_available()
                        ? "the kernel offers kTLS: TLS connections whose cipher it supports send "
                          "fetched file ranges with SSL_sendfile (gregor_tls_connections_total "
                          "counts each send path)"
                        : "no kTLS in this kernel (tcp_available_ulp lacks tls): TLS fetches are "
                          "read with pread and encrypted by OpenSSL");
    return 0;
}

void broker_listeners_bound(struct broker *b)
{
    for (int i = 0; i < b->n_listeners; i++) {
        struct broker_listener *bl = &b->listeners[i];
        if (bl->adv_port == 0)
            bl->adv_port = net_server_listener_port(b->net, i);
    }
}

void broker_listeners_close(struct broker *b)
{
    for (int i = 0; i < b->n_listeners; i++) {
        tls_context_free(b->listeners[i].tls);
        b->listeners[i].tls = NULL;
        principal_mapper_free(b->listeners[i].mapper);
        b->listeners[i].mapper = NULL;
        credential_store_free(&b->listeners[i].users);
    }
    b->n_listeners = 0;
}

int broker_registered_listener(const struct broker *b)
{
    const struct listener_config *l = config_client_listener(&b->cfg);
    for (int i = 0; i < b->n_listeners; i++)
        if (b->listeners[i].cfg == l)
            return i;
    return 0;
}

const struct broker_listener *broker_listener_of(const struct broker *b, const struct net_conn *c)
{
    int i = net_conn_listener(c);
    return i >= 0 && i < b->n_listeners ? &b->listeners[i] : &b->listeners[0];
}

struct kstr broker_advertised_host(const struct broker_req *r)
{
    const struct broker_listener *l = broker_listener_of(r->b, r->nr->conn);
    return (struct kstr){l->adv_host, (int32_t)strlen(l->adv_host)};
}

int32_t broker_advertised_port(const struct broker_req *r)
{
    return broker_listener_of(r->b, r->nr->conn)->adv_port;
}
