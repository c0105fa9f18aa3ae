/*
 * SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side, and the salted
 * credentials both SCRAM and PLAIN verify against (a password is never kept in clear).
 *
 * Pure functions over caller-owned memory plus OpenSSL's libcrypto (PBKDF2, HMAC, hashes,
 * RAND_bytes for salts and nonces); any thread.
 */
#ifndef GREGOR_SECURITY_SCRAM_H
#define GREGOR_SECURITY_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCRAM_MAX_HASH 64             /* SHA-512 */
#define SCRAM_SALT_LEN 16             /* salts Gregor generates */
#define SCRAM_SALT_MAX 128            /* longest salt accepted from AlterUserScramCredentials */
#define SCRAM_MIN_ITERATIONS 4096     /* Kafka's ScramMechanism.minIterations */
#define SCRAM_MAX_ITERATIONS 16384    /* Kafka's ScramControlManager.MAX_ITERATIONS */
#define SCRAM_DEFAULT_ITERATIONS 4096 /* Kafka's default */
#define SCRAM_NONCE_LEN 24            /* random bytes, sent base64url-free as printable chars */

enum scram_hash { SCRAM_SHA_256, SCRAM_SHA_512 };

/* What the server stores for one user and hash (RFC 5802 section 3). */
struct scram_credential {
    enum scram_hash hash;
    int iterations;
    size_t salt_len; /* <= SCRAM_SALT_MAX */
    uint8_t salt[SCRAM_SALT_MAX];
    uint8_t stored_key[SCRAM_MAX_HASH]; /* H(HMAC(SaltedPassword, "Client Key")) */
    uint8_t server_key[SCRAM_MAX_HASH]; /* HMAC(SaltedPassword, "Server Key") */
};

/* Digest length of the hash (32 or 64). */
size_t scram_hash_len(enum scram_hash h);

/* Derives a credential from a password with a fresh random salt. 0 or -EIO (libcrypto). */
int scram_credential_derive(enum scram_hash h, const char *password, int iterations,
                            struct scram_credential *out);

/* The same with a given salt (test vectors). 0 or -EIO. */
int scram_credential_from_salt(enum scram_hash h, const char *password,
                               const uint8_t salt[SCRAM_SALT_LEN], int iterations,
                               struct scram_credential *out);

/*
 * The credential for a SaltedPassword computed by a client (KIP-554: AlterUserScramCredentials
 * carries Hi(password, salt, iterations), never the password): derives StoredKey and ServerKey.
 * 0, -EINVAL (salt longer than SCRAM_SALT_MAX) or -EIO.
 */
int scram_credential_from_salted_password(enum scram_hash h, const uint8_t *salted_password,
                                          size_t salted_len, const uint8_t *salt, size_t salt_len,
                                          int iterations, struct scram_credential *out);

/* SaltedPassword = Hi(password, salt, iterations) into out (scram_hash_len(h) bytes): the
 * client side of KIP-554 (gregor user add). 0 or -EIO. */
int scram_salted_password(enum scram_hash h, const char *password, const uint8_t *salt,
                          size_t salt_len, int iterations, uint8_t *out);

/* True when password matches cred (PLAIN over a SCRAM credential); constant-time compare. */
bool scram_credential_check_password(const struct scram_credential *cred, const char *password);

/*
 * One server-side exchange: client-first -> server-first, client-final -> server-final.
 * Fixed-size; zero-initialise, then call scram_server_first() and scram_server_final().
 */
#define SCRAM_MSG_MAX 512
struct scram_exchange {
    enum scram_hash hash;
    char user[256];                        /* decoded saslname of the client-first message */
    char client_first_bare[SCRAM_MSG_MAX]; /* for AuthMessage */
    char server_first[SCRAM_MSG_MAX];
    char gs2_header[64];           /* "n,," or "n,a=...," (channel binding is not supported) */
    char nonce[SCRAM_MSG_MAX / 2]; /* client nonce + server nonce */
    struct scram_credential cred;  /* the user's, copied when the exchange starts */
};

/*
 * Parses the client-first message (msg, len) into x (user, nonce, header). Returns 0, or
 * -EINVAL when the message is malformed or asks for what is not supported (channel binding,
 * extensions such as delegation tokens).
 */
int scram_parse_client_first(struct scram_exchange *x, enum scram_hash h, const uint8_t *msg,
                             size_t len);

/* Builds the server-first message for cred into x->server_first. 0 or -EIO. */
int scram_server_first(struct scram_exchange *x, const struct scram_credential *cred);

/*
 * Verifies the client-final message against cred and writes the server-final message
 * ("v=...") to out (NUL-terminated, size outlen). Returns 0, -EINVAL (malformed, wrong
 * nonce or channel binding) or -EACCES (wrong proof: wrong password).
 */
int scram_server_final(struct scram_exchange *x, const struct scram_credential *cred,
                       const uint8_t *msg, size_t len, char *out, size_t outlen);

#endif
