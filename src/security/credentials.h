/*
 * SASL user credentials of one listener: for each user a salted SCRAM-SHA-256 and a
 * SCRAM-SHA-512 credential (RFC 5802), derived once at start-up from the configured password,
 * which is not kept. PLAIN checks a password against the SHA-512 credential.
 *
 * Sources: Kafka's JAAS option form (user_NAME="password", as PlainLoginModule takes them)
 * and Gregor's credentials file (one USER=PASSWORD per line, properties syntax).
 *
 * Built by the controlling thread before the network starts, read-only afterwards (any
 * thread).
 */
#ifndef GREGOR_SECURITY_CREDENTIALS_H
#define GREGOR_SECURITY_CREDENTIALS_H

#include <stddef.h>

#include "security/scram.h"

struct credential_user {
    char name[256];
    struct scram_credential sha256;
    struct scram_credential sha512;
};

struct credential_store {
    struct credential_user *users;
    size_t n, cap;
};

void credential_store_init(struct credential_store *s);
void credential_store_free(struct credential_store *s);

/* Adds (or replaces) a user. 0, -EINVAL (empty or too long name), -ENOMEM or -EIO. */
int credential_store_add(struct credential_store *s, const char *name, const char *password);

/* The user called name, or NULL. */
const struct credential_user *credential_store_find(const struct credential_store *s,
                                                    const char *name);

/*
 * Adds every user_NAME="password" option of a JAAS configuration text
 * ("org...PlainLoginModule required user_alice=\"pw\";"). On a syntax error writes the reason
 * to err and returns -EINVAL.
 */
int credential_store_add_jaas(struct credential_store *s, const char *jaas, char *err,
                              size_t errlen);

/* The value of option `name` (e.g. username, password: the broker's own identity towards
 * other brokers) of a JAAS configuration text, into out. 0, or -ENOENT (absent, malformed or
 * longer than cap). */
int credential_jaas_option(const char *jaas, const char *name, char *out, size_t cap);

/* Adds every USER=PASSWORD line of a properties file. Same error contract, -errno on I/O. */
int credential_store_add_file(struct credential_store *s, const char *path, char *err,
                              size_t errlen);

#endif
