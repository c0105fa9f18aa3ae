/*
 * SCRAM server (RFC 5802 with the SHA-2 hashes of RFC 7677), in the shape Kafka's clients
 * speak it: gs2 header "n,," (or "y,,"; an authzid must equal the user name), no channel
 * binding, extensions after the nonce ignored except tokenauth (delegation tokens, refused),
 * and, as Kafka's ScramSaslServer, a client-final nonce that only ends with the server's.
 *
 * The messages are small text; every length is checked against the fixed buffers of
 * struct scram_exchange before copying, and a malformed message is -EINVAL, never a crash.
 */
#include "security/scram.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

static const EVP_MD *scram_md(enum scram_hash h)
{
    return h == SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
}

size_t scram_hash_len(enum scram_hash h)
{
    return h == SCRAM_SHA_512 ? 64 : 32;
}

static int scram_hmac(enum scram_hash h, const uint8_t *key, size_t klen, const void *data,
                      size_t len, uint8_t *out)
{
    unsigned n = 0;
    return HMAC(scram_md(h), key, (int)klen, data, len, out, &n) ? 0 : -EIO;
}

static int scram_digest(enum scram_hash h, const uint8_t *data, size_t len, uint8_t *out)
{
    return EVP_Digest(data, len, out, NULL, scram_md(h), NULL) == 1 ? 0 : -EIO;
}

int scram_salted_password(enum scram_hash h, const char *password, const uint8_t *salt,
                          size_t salt_len, int iterations, uint8_t *out)
{
    return PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iterations,
                             scram_md(h), (int)scram_hash_len(h), out) == 1
               ? 0
               : -EIO;
}

/* The stored and server keys of cred from a SaltedPassword of salted_len bytes. */
static int scram_keys_from_salted(struct scram_credential *cred, const uint8_t *salted,
                                  size_t salted_len)
{
    enum scram_hash h = cred->hash;
    size_t hl = scram_hash_len(h);
    uint8_t client_key[SCRAM_MAX_HASH];
    int rc = -EIO;
    if (scram_hmac(h, salted, salted_len, "Client Key", 10, client_key) == 0 &&
        scram_digest(h, client_key, hl, cred->stored_key) == 0 &&
        scram_hmac(h, salted, salted_len, "Server Key", 10, cred->server_key) == 0)
        rc = 0;
    OPENSSL_cleanse(client_key, sizeof(client_key));
    return rc;
}

/* SaltedPassword, then the stored and server keys of cred (salt and iterations set). */
static int scram_keys(struct scram_credential *cred, const char *password)
{
    uint8_t salted[SCRAM_MAX_HASH];
    int rc = scram_salted_password(cred->hash, password, cred->salt, cred->salt_len,
                                   cred->iterations, salted);
    if (rc == 0)
        rc = scram_keys_from_salted(cred, salted, scram_hash_len(cred->hash));
    OPENSSL_cleanse(salted, sizeof(salted));
    return rc;
}

int scram_credential_from_salted_password(enum scram_hash h, const uint8_t *salted_password,
                                          size_t salted_len, const uint8_t *salt, size_t salt_len,
                                          int iterations, struct scram_credential *out)
{
    memset(out, 0, sizeof(*out));
    if (salt_len > SCRAM_SALT_MAX)
        return -EINVAL;
    out->hash = h;
    out->iterations = iterations;
    out->salt_len = salt_len;
    if (salt_len)
        memcpy(out->salt, salt, salt_len);
    return scram_keys_from_salted(out, salted_password, salted_len);
}

int scram_credential_derive(enum scram_hash h, const char *password, int iterations,
                            struct scram_credential *out)
{
    memset(out, 0, sizeof(*out));
    out->hash = h;
    out->iterations = iterations;
    out->salt_len = SCRAM_SALT_LEN;
    if (RAND_bytes(out->salt, SCRAM_SALT_LEN) != 1)
        return -EIO;
    return scram_keys(out, password);
}

int scram_credential_from_salt(enum scram_hash h, const char *password,
                               const uint8_t salt[SCRAM_SALT_LEN], int iterations,
                               struct scram_credential *out)
{
    memset(out, 0, sizeof(*out));
    out->hash = h;
    out->iterations = iterations;
    out->salt_len = SCRAM_SALT_LEN;
    memcpy(out->salt, salt, SCRAM_SALT_LEN);
    return scram_keys(out, password);
}

bool scram_credential_check_password(const struct scram_credential *cred, const char *password)
{
    struct scram_credential probe = *cred;
    if (scram_keys(&probe, password) != 0)
        return false;
    bool ok = CRYPTO_memcmp(probe.stored_key, cred->stored_key, scram_hash_len(cred->hash)) == 0;
    OPENSSL_cleanse(&probe, sizeof(probe));
    return ok;
}

/* Standard base64 of n bytes into out (size >= 4 * ceil(n / 3) + 1). */
static void scram_b64(const uint8_t *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* Decodes standard base64 (with padding); returns the byte count or -EINVAL. */
static int scram_unb64(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > cap)
        return -EINVAL;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0)
        return -EINVAL;
    if (in[len - 1] == '=')
        n--;
    if (in[len - 2] == '=')
        n--;
    return n;
}

/* Decodes a saslname ("=2C" is ',', "=3D" is '='). 0 or -EINVAL. */
static int scram_decode_name(const char *s, size_t len, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '=') {
            if (i + 3 <= len && memcmp(s + i, "=2C", 3) == 0)
                ch = ',';
            else if (i + 3 <= len && memcmp(s + i, "=3D", 3) == 0)
                ch = '=';
            else
                return -EINVAL;
            i += 2;
        }
        if (ch == '\0' || k + 1 >= cap)
            return -EINVAL;
        out[k++] = ch;
    }
    out[k] = '\0';
    return k > 0 ? 0 : -EINVAL;
}

/* The attribute "X=" at s (len bytes, up to the next ',') or NULL; *vlen its value length. */
static const char *scram_attr(const char *s, size_t len, char name, size_t *vlen)
{
    if (len < 2 || s[0] != name || s[1] != '=')
        return NULL;
    const char *comma = memchr(s, ',', len);
    *vlen = (size_t)((comma ? comma : s + len) - s) - 2;
    return s + 2;
}

/* Splits off the gs2 header ("n,," / "y,," / "n,a=NAME,"); returns the bare message offset. */
static int scram_parse_gs2(struct scram_exchange *x, const char *m, size_t len, char *authzid,
                           size_t authzid_cap)
{
    if (len < 3 || (m[0] != 'n' && m[0] != 'y') || m[1] != ',')
        return -EINVAL; /* 'p' = channel binding: not supported */
    const char *second = memchr(m + 2, ',', len - 2);
    if (second == NULL)
        return -EINVAL;
    size_t alen = (size_t)(second - (m + 2));
    authzid[0] = '\0';
    if (alen > 0) {
        if (alen < 3 || m[2] != 'a' || m[3] != '=' ||
            scram_decode_name(m + 4, alen - 2, authzid, authzid_cap) != 0)
            return -EINVAL;
    }
    size_t hlen = (size_t)(second - m) + 1;
    if (hlen >= sizeof(x->gs2_header))
        return -EINVAL;
    memcpy(x->gs2_header, m, hlen);
    x->gs2_header[hlen] = '\0';
    return (int)hlen;
}

int scram_parse_client_first(struct scram_exchange *x, enum scram_hash h, const uint8_t *msg,
                             size_t len)
{
    memset(x, 0, sizeof(*x));
    x->hash = h;
    const char *m = (const char *)msg;
    char authzid[256];
    int off = scram_parse_gs2(x, m, len, authzid, sizeof(authzid));
    if (off < 0)
        return off;
    const char *bare = m + off;
    size_t blen = len - (size_t)off;
    if (blen >= sizeof(x->client_first_bare) || memchr(bare, '\0', blen) != NULL)
        return -EINVAL;
    memcpy(x->client_first_bare, bare, blen);
    x->client_first_bare[blen] = '\0';
    size_t vlen;
    const char *name = scram_attr(bare, blen, 'n', &vlen);
    if (name == NULL || scram_decode_name(name, vlen, x->user, sizeof(x->user)) != 0)
        return -EINVAL;
    const char *rest = name + vlen + 1;
    if (rest >= bare + blen)
        return -EINVAL;
    size_t rlen = (size_t)(bare + blen - rest);
    const char *nonce = scram_attr(rest, rlen, 'r', &vlen);
    if (nonce == NULL || vlen == 0 || vlen + SCRAM_NONCE_LEN * 2 >= sizeof(x->nonce))
        return -EINVAL;
    memcpy(x->nonce, nonce, vlen);
    x->nonce[vlen] = '\0';
    const char *ext = nonce + vlen;
    if (memmem(ext, (size_t)(bare + blen - ext), "tokenauth=true", 14) != NULL)
        return -EINVAL; /* delegation tokens are not supported */
    if (authzid[0] != '\0' && strcmp(authzid, x->user) != 0)
        return -EINVAL;
    return 0;
}

int scram_server_first(struct scram_exchange *x, const struct scram_credential *cred)
{
    uint8_t rnd[SCRAM_NONCE_LEN / 4 * 3];
    char snonce[SCRAM_NONCE_LEN + 1];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return -EIO;
    scram_b64(rnd, sizeof(rnd), snonce);
    size_t cl = strlen(x->nonce);
    memcpy(x->nonce + cl, snonce, SCRAM_NONCE_LEN + 1);
    char salt[(SCRAM_SALT_MAX + 2) / 3 * 4 + 1];
    scram_b64(cred->salt, cred->salt_len, salt);
    int n = snprintf(x->server_first, sizeof(x->server_first), "r=%s,s=%s,i=%d", x->nonce, salt,
                     cred->iterations);
    return n > 0 && (size_t)n < sizeof(x->server_first) ? 0 : -EINVAL;
}

/* Checks "c=" (the base64 gs2 header) and "r=" (the combined nonce) of client-final. */
static int scram_check_final_attrs(const struct scram_exchange *x, const char *m, size_t len,
                                   size_t *proof_at)
{
    size_t vlen;
    const char *cb = scram_attr(m, len, 'c', &vlen);
    char want[sizeof(x->gs2_header) * 2];
    scram_b64((const uint8_t *)x->gs2_header, strlen(x->gs2_header), want);
    if (cb == NULL || vlen != strlen(want) || memcmp(cb, want, vlen) != 0)
        return -EINVAL;
    const char *r = cb + vlen + 1;
    if (r >= m + len)
        return -EINVAL;
    /* Kafka checks that the nonce ends with the server-first one (librdkafka sends its client
     * nonce in front of it once more), so accept that too. */
    const char *nonce = scram_attr(r, (size_t)(m + len - r), 'r', &vlen);
    size_t want_len = strlen(x->nonce);
    if (nonce == NULL || vlen < want_len ||
        memcmp(nonce + vlen - want_len, x->nonce, want_len) != 0)
        return -EINVAL;
    const char *p = NULL;
    for (const char *s = m; s + 3 <= m + len; s++)
        if (memcmp(s, ",p=", 3) == 0)
            p = s;
    if (p == NULL || p < nonce + vlen)
        return -EINVAL;
    *proof_at = (size_t)(p - m);
    return 0;
}

int scram_server_final(struct scram_exchange *x, const struct scram_credential *cred,
                       const uint8_t *msg, size_t len, char *out, size_t outlen)
{
    const char *m = (const char *)msg;
    size_t proof_at;
    if (len >= SCRAM_MSG_MAX || scram_check_final_attrs(x, m, len, &proof_at) != 0)
        return -EINVAL;
    enum scram_hash h = cred->hash;
    size_t hl = scram_hash_len(h);
    uint8_t proof[SCRAM_MAX_HASH + 3];
    int plen = scram_unb64(m + proof_at + 3, len - proof_at - 3, proof, sizeof(proof));
    if (plen != (int)hl)
        return -EINVAL;
    char auth[SCRAM_MSG_MAX * 3];
    int alen = snprintf(auth, sizeof(auth), "%s,%s,%.*s", x->client_first_bare, x->server_first,
                        (int)proof_at, m);
    if (alen <= 0 || (size_t)alen >= sizeof(auth))
        return -EINVAL;
    uint8_t sig[SCRAM_MAX_HASH], client_key[SCRAM_MAX_HASH], stored[SCRAM_MAX_HASH];
    if (scram_hmac(h, cred->stored_key, hl, auth, (size_t)alen, sig) != 0)
        return -EIO;
    for (size_t i = 0; i < hl; i++)
        client_key[i] = proof[i] ^ sig[i];
    if (scram_digest(h, client_key, hl, stored) != 0)
        return -EIO;
    if (CRYPTO_memcmp(stored, cred->stored_key, hl) != 0)
        return -EACCES;
    uint8_t server_sig[SCRAM_MAX_HASH];
    if (scram_hmac(h, cred->server_key, hl, auth, (size_t)alen, server_sig) != 0)
        return -EIO;
    char b64[SCRAM_MAX_HASH * 2];
    scram_b64(server_sig, hl, b64);
    int n = snprintf(out, outlen, "v=%s", b64);
    return n > 0 && (size_t)n < outlen ? 0 : -EINVAL;
}
