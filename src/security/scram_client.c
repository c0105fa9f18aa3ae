/* SCRAM client side; see scram_client.h. */
#include "security/scram_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define SCRAM_MIN_ITERATIONS 4096
#define SCRAM_MAX_ITERATIONS 16384

static const EVP_MD *client_md(enum scram_hash h)
{
    return h == SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
}

static int client_hmac(enum scram_hash h, const uint8_t *key, size_t klen, const void *data,
                       size_t len, uint8_t *out)
{
    unsigned int n = 0;
    return HMAC(client_md(h), key, (int)klen, data, len, out, &n) ? 0 : -EIO;
}

/* Appends src as saslname (',' -> =2C, '=' -> =3D) to out; -EINVAL when it does not fit. */
static int client_saslname(const char *src, char *out, size_t cap)
{
    size_t k = strlen(out);
    for (const char *p = src; *p; p++) {
        const char *rep = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
        size_t n = rep ? 3 : 1;
        if (k + n + 1 > cap)
            return -EINVAL;
        memcpy(out + k, rep ? rep : p, n);
        k += n;
    }
    out[k] = '\0';
    return 0;
}

int scram_client_first(struct scram_client *x, enum scram_hash h, const char *user, char *out,
                       size_t outlen)
{
    memset(x, 0, sizeof(*x));
    x->hash = h;
    uint8_t raw[SCRAM_NONCE_LEN];
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < sizeof(raw); i++)
        x->nonce[i] = alphabet[raw[i] & 63];
    strcpy(x->client_first_bare, "n=");
    if (client_saslname(user, x->client_first_bare, sizeof(x->client_first_bare)) != 0)
        return -EINVAL;
    size_t k = strlen(x->client_first_bare);
    int n = snprintf(x->client_first_bare + k, sizeof(x->client_first_bare) - k, ",r=%s", x->nonce);
    if (n < 0 || (size_t)n >= sizeof(x->client_first_bare) - k)
        return -EINVAL;
    n = snprintf(out, outlen, "n,,%s", x->client_first_bare);
    return n < 0 || (size_t)n >= outlen ? -EINVAL : 0;
}

/* The value of attribute `a` ("a=value") in the comma-separated msg, copied to out. */
static int client_attr(const char *msg, char a, char *out, size_t cap)
{
    for (const char *p = msg; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
        if (p[0] != a || p[1] != '=')
            continue;
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p - 2) : strlen(p + 2);
        if (n + 1 > cap)
            return -EINVAL;
        memcpy(out, p + 2, n);
        out[n] = '\0';
        return 0;
    }
    return -EINVAL;
}

int scram_client_final(struct scram_client *x, const char *password, const uint8_t *server_first,
                       size_t len, char *out, size_t outlen)
{
    char sf[SCRAM_MSG_MAX], nonce[SCRAM_MSG_MAX], salt64[SCRAM_MSG_MAX], iter[16];
    if (len == 0 || len >= sizeof(sf) || memchr(server_first, '\0', len) != NULL)
        return -EINVAL;
    memcpy(sf, server_first, len);
    sf[len] = '\0';
    if (client_attr(sf, 'r', nonce, sizeof(nonce)) != 0 ||
        client_attr(sf, 's', salt64, sizeof(salt64)) != 0 ||
        client_attr(sf, 'i', iter, sizeof(iter)) != 0)
        return -EINVAL;
    size_t ours = strlen(x->nonce);
    char *endp = NULL;
    long iterations = strtol(iter, &endp, 10);
    if (strncmp(nonce, x->nonce, ours) != 0 || strlen(nonce) <= ours || *endp != '\0' ||
        iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS)
        return -EINVAL;
    uint8_t salt[SCRAM_MSG_MAX];
    int slen = EVP_DecodeBlock(salt, (const unsigned char *)salt64, (int)strlen(salt64));
    if (slen <= 0)
        return -EINVAL;
    size_t pad = 0;
    for (size_t i = strlen(salt64); i > 0 && salt64[i - 1] == '='; i--)
        pad++;
    slen -= (int)pad;
    size_t hl = scram_hash_len(x->hash);
    uint8_t salted[SCRAM_MAX_HASH], ckey[SCRAM_MAX_HASH], stored[SCRAM_MAX_HASH],
        skey[SCRAM_MAX_HASH], csig[SCRAM_MAX_HASH], proof[SCRAM_MAX_HASH];
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, slen, (int)iterations,
                          client_md(x->hash), (int)hl, salted) != 1)
        return -EIO;
    char without_proof[SCRAM_MSG_MAX], auth[3 * SCRAM_MSG_MAX];
    int n = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%s", nonce);
    if (n < 0 || (size_t)n >= sizeof(without_proof))
        return -EINVAL;
    n = snprintf(auth, sizeof(auth), "%s,%s,%s", x->client_first_bare, sf, without_proof);
    if (n < 0 || (size_t)n >= sizeof(auth))
        return -EINVAL;
    unsigned int dl = 0;
    int rc = client_hmac(x->hash, salted, hl, "Client Key", 10, ckey);
    if (rc == 0 && EVP_Digest(ckey, hl, stored, &dl, client_md(x->hash), NULL) != 1)
        rc = -EIO;
    if (rc == 0)
        rc = client_hmac(x->hash, stored, hl, auth, strlen(auth), csig);
    if (rc == 0)
        rc = client_hmac(x->hash, salted, hl, "Server Key", 10, skey);
    if (rc == 0)
        rc = client_hmac(x->hash, skey, hl, auth, strlen(auth), x->server_signature);
    for (size_t i = 0; i < hl; i++)
        proof[i] = ckey[i] ^ csig[i];
    char proof64[2 * SCRAM_MAX_HASH + 4];
    EVP_EncodeBlock((unsigned char *)proof64, proof, (int)hl);
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(ckey, sizeof(ckey));
    if (rc != 0)
        return rc;
    n = snprintf(out, outlen, "%s,p=%s", without_proof, proof64);
    return n < 0 || (size_t)n >= outlen ? -EINVAL : 0;
}

int scram_client_verify(const struct scram_client *x, const uint8_t *server_final, size_t len)
{
    char msg[SCRAM_MSG_MAX], v64[SCRAM_MSG_MAX];
    if (len == 0 || len >= sizeof(msg) || memchr(server_final, '\0', len) != NULL)
        return -EACCES;
    memcpy(msg, server_final, len);
    msg[len] = '\0';
    if (client_attr(msg, 'v', v64, sizeof(v64)) != 0)
        return -EACCES;
    uint8_t v[SCRAM_MSG_MAX];
    size_t hl = scram_hash_len(x->hash);
    int n = EVP_DecodeBlock(v, (const unsigned char *)v64, (int)strlen(v64));
    if (n < (int)hl || CRYPTO_memcmp(v, x->server_signature, hl) != 0)
        return -EACCES;
    return 0;
}
