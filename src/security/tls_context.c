/*
 * Server SSL_CTX from Kafka's ssl.* properties (see the header for which). Every failure
 * names the property it came from and carries OpenSSL's reason, so a wrong path or a key that
 * does not match its certificate is one clear line at start-up.
 */
#include "security/tls_context.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool tls_set(const char *v)
{
    return v != NULL && v[0] != '\0';
}

/* Writes "what: OpenSSL reason" to err; returns -EINVAL. */
static int tls_error(char *err, size_t errlen, const char *what)
{
    char why[256] = "unknown error";
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, why, sizeof(why));
    ERR_clear_error();
    snprintf(err, errlen, "%s: %s", what, why);
    return -EINVAL;
}

static int tls_password_cb(char *buf, int size, int rwflag, void *u)
{
    const char *pw = u;
    int n = pw ? (int)strlen(pw) : 0;
    if (n >= size)
        return -1;
    memcpy(buf, pw ? pw : "", (size_t)n);
    return n;
}

/* Inline PEM: the first certificate is the leaf, the others its chain. */
static int tls_use_inline_chain(SSL_CTX *ctx, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL)
        return -1;
    X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    int ok = leaf != NULL && SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    X509 *extra;
    while (ok && (extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
            X509_free(extra);
            ok = 0;
        }
    ERR_clear_error(); /* the end of the PEM data reads as an error */
    BIO_free(bio);
    return ok ? 0 : -1;
}

static int tls_use_inline_key(SSL_CTX *ctx, const char *pem, const char *password)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL)
        return -1;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, tls_password_cb, (void *)password);
    int ok = key != NULL && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    EVP_PKEY_free(key);
    BIO_free(bio);
    return ok ? 0 : -1;
}

static int tls_load_keystore(SSL_CTX *ctx, const struct tls_settings *s, char *err, size_t errlen)
{
    if (tls_set(s->keystore_type) && strcasecmp(s->keystore_type, "PEM") != 0) {
        snprintf(err, errlen,
                 "ssl.keystore.type '%s' is not supported (only PEM: convert a JKS or PKCS12 "
                 "keystore with keytool/openssl)",
                 s->keystore_type);
        return -EINVAL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, tls_password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)s->key_password);
    if (tls_set(s->keystore_location)) {
        if (SSL_CTX_use_certificate_chain_file(ctx, s->keystore_location) != 1)
            return tls_error(err, errlen, "ssl.keystore.location: no certificate");
        if (SSL_CTX_use_PrivateKey_file(ctx, s->keystore_location, SSL_FILETYPE_PEM) != 1)
            return tls_error(err, errlen,
                             "ssl.keystore.location: no usable private key (ssl.key.password?)");
    } else if (tls_set(s->keystore_certificate_chain) && tls_set(s->keystore_key)) {
        if (tls_use_inline_chain(ctx, s->keystore_certificate_chain) != 0)
            return tls_error(err, errlen, "ssl.keystore.certificate.chain");
        if (tls_use_inline_key(ctx, s->keystore_key, s->key_password) != 0)
            return tls_error(err, errlen, "ssl.keystore.key (ssl.key.password?)");
    } else {
        snprintf(err, errlen,
                 "a TLS listener needs ssl.keystore.location (PEM with key and certificate) or "
                 "ssl.keystore.certificate.chain and ssl.keystore.key");
        return -EINVAL;
    }
    if (SSL_CTX_check_private_key(ctx) != 1)
        return tls_error(err, errlen,
                         "ssl.keystore: the private key does not match the certificate");
    return 0;
}

static int tls_load_inline_trust(SSL_CTX *ctx, const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL)
        return -1;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    X509 *c;
    while ((c = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (X509_STORE_add_cert(store, c) == 1)
            n++;
        X509_free(c);
    }
    ERR_clear_error();
    BIO_free(bio);
    return n > 0 ? 0 : -1;
}

static int tls_load_truststore(SSL_CTX *ctx, const struct tls_settings *s, char *err, size_t errlen)
{
    if (tls_set(s->truststore_type) && strcasecmp(s->truststore_type, "PEM") != 0) {
        snprintf(err, errlen, "ssl.truststore.type '%s' is not supported (only PEM)",
                 s->truststore_type);
        return -EINVAL;
    }
    if (tls_set(s->truststore_location)) {
        if (SSL_CTX_load_verify_locations(ctx, s->truststore_location, NULL) != 1)
            return tls_error(err, errlen, "ssl.truststore.location");
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(s->truststore_location);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
    } else if (tls_set(s->truststore_certificates) &&
               tls_load_inline_trust(ctx, s->truststore_certificates) != 0) {
        return tls_error(err, errlen, "ssl.truststore.certificates");
    }
    return 0;
}

static int tls_set_client_auth(SSL_CTX *ctx, const struct tls_settings *s, char *err, size_t errlen)
{
    const char *ca = tls_set(s->client_auth) ? s->client_auth : "none";
    int mode;
    if (strcasecmp(ca, "none") == 0)
        mode = SSL_VERIFY_NONE;
    else if (strcasecmp(ca, "requested") == 0)
        mode = SSL_VERIFY_PEER;
    else if (strcasecmp(ca, "required") == 0)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else {
        snprintf(err, errlen,
                 "invalid value '%s' for ssl.client.auth (expected none, requested or required)",
                 ca);
        return -EINVAL;
    }
    if (mode != SSL_VERIFY_NONE && !tls_set(s->truststore_location) &&
        !tls_set(s->truststore_certificates)) {
        snprintf(err, errlen, "ssl.client.auth=%s needs ssl.truststore.location (PEM CA file)", ca);
        return -EINVAL;
    }
    SSL_CTX_set_verify(ctx, mode, NULL);
    return 0;
}

/* ssl.enabled.protocols as a min..max range of TLSv1.2 and TLSv1.3. */
static int tls_set_protocols(SSL_CTX *ctx, const struct tls_settings *s, char *err, size_t errlen)
{
    const char *v = tls_set(s->enabled_protocols) ? s->enabled_protocols : "TLSv1.2,TLSv1.3";
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", v);
    int lo = 0, hi = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int ver = strcmp(t, "TLSv1.2") == 0   ? TLS1_2_VERSION
                  : strcmp(t, "TLSv1.3") == 0 ? TLS1_3_VERSION
                                              : 0;
        if (ver == 0) {
            snprintf(err, errlen, "ssl.enabled.protocols: '%s' is not supported (TLSv1.2, TLSv1.3)",
                     t);
            return -EINVAL;
        }
        lo = lo == 0 || ver < lo ? ver : lo;
        hi = ver > hi ? ver : hi;
    }
    if (lo == 0 || SSL_CTX_set_min_proto_version(ctx, lo) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, hi) != 1) {
        snprintf(err, errlen, "ssl.enabled.protocols: '%s' names no protocol", v);
        return -EINVAL;
    }
    if (tls_set(s->cipher_suites) && SSL_CTX_set_cipher_list(ctx, s->cipher_suites) != 1)
        return tls_error(err, errlen, "ssl.cipher.suites");
    return 0;
}

int tls_context_create(const struct tls_settings *s, void **out, char *err, size_t errlen)
{
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return tls_error(err, errlen, "cannot create a TLS context");
    /* A client that closes without close_notify (most Kafka clients) is a plain close, not an
     * error to log. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    /* kTLS where the kernel has it (OpenSSL then moves each connection's send side into the
     * kernel after the handshake, cipher permitting; net/tls.c checks which way it went). Not
     * asked for otherwise: OpenSSL would try TCP_ULP on every connection in vain. */
    if (tls_ktls_available())
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    int rc = tls_set_protocols(ctx, s, err, errlen);
    if (rc == 0)
        rc = tls_load_keystore(ctx, s, err, errlen);
    if (rc == 0)
        rc = tls_load_truststore(ctx, s, err, errlen);
    if (rc == 0)
        rc = tls_set_client_auth(ctx, s, err, errlen);
    if (rc != 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

int tls_client_context_create(const struct tls_settings *s, void **out, char *err, size_t errlen)
{
    *out = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return tls_error(err, errlen, "cannot create a TLS client context");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    int rc = tls_set_protocols(ctx, s, err, errlen);
    if (rc == 0 && (tls_set(s->keystore_location) ||
                    (tls_set(s->keystore_certificate_chain) && tls_set(s->keystore_key))))
        rc = tls_load_keystore(ctx, s, err, errlen); /* presented when the peer asks (mTLS) */
    if (rc == 0 && !tls_set(s->truststore_location) && !tls_set(s->truststore_certificates)) {
        snprintf(err, errlen,
                 "brokers connecting to each other over TLS need ssl.truststore.location (the "
                 "CA that signed the brokers' certificates)");
        rc = -EINVAL;
    }
    if (rc == 0)
        rc = tls_load_truststore(ctx, s, err, errlen);
    if (rc != 0) {
        SSL_CTX_free(ctx);
        return rc;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    *out = ctx;
    return 0;
}

void tls_context_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

bool tls_ktls_available(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
    if (f == NULL)
        return false;
    char line[256] = "";
    bool found = false;
    if (fgets(line, sizeof(line), f) != NULL) {
        char *save = NULL;
        for (char *t = strtok_r(line, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
            found |= strcmp(t, "tls") == 0;
    }
    fclose(f);
    return found;
}
