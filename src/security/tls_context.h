/*
 * The OpenSSL server context of a TLS listener (SSL or SASL_SSL), built from Kafka's ssl.*
 * properties: a PEM keystore (ssl.keystore.location holding key and certificate chain, with
 * ssl.key.password for an encrypted key, or the inline ssl.keystore.certificate.chain +
 * ssl.keystore.key), a PEM truststore for client certificates (ssl.truststore.location or the
 * inline ssl.truststore.certificates), ssl.client.auth, ssl.enabled.protocols and
 * ssl.cipher.suites.
 *
 * Created by the controlling thread at start-up; the context is then shared read-only by the
 * workers (OpenSSL contexts are safe to use from several threads once configured).
 */
#ifndef GREGOR_SECURITY_TLS_CONTEXT_H
#define GREGOR_SECURITY_TLS_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>

/* Property values; NULL or "" = not set. */
struct tls_settings {
    const char *keystore_type;              /* only PEM */
    const char *keystore_location;          /* PEM file: private key and certificate chain */
    const char *key_password;               /* for an encrypted private key */
    const char *keystore_certificate_chain; /* inline PEM */
    const char *keystore_key;               /* inline PEM */
    const char *truststore_type;            /* only PEM */
    const char *truststore_location;        /* PEM file of trusted CA certificates */
    const char *truststore_certificates;    /* inline PEM */
    const char *client_auth;                /* none (default), requested, required */
    const char *enabled_protocols;          /* default TLSv1.2,TLSv1.3 */
    const char *cipher_suites;              /* OpenSSL names, TLS 1.2 cipher list */
};

/*
 * Builds the context (an SSL_CTX *, as net_listener_config.tls takes it). On error writes one
 * line naming the property and OpenSSL's reason to err and returns -EINVAL.
 */
int tls_context_create(const struct tls_settings *s, void **out, char *err, size_t errlen);
/*
 * The client context a broker uses towards other brokers' TLS listeners: the same protocols
 * and ciphers, the truststore (required: the peer's certificate is verified), and the keystore
 * as client certificate when one is set. Same error contract.
 */
int tls_client_context_create(const struct tls_settings *s, void **out, char *err, size_t errlen);
void tls_context_free(void *ctx);

/* True when the kernel offers kTLS (TCP_ULP "tls" in tcp_available_ulp). */
bool tls_ktls_available(void);

#endif
