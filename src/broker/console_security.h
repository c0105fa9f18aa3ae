/*
 * Who may use the web console and what they see (console_security.c). Security is on when a
 * client listener uses SASL (SASL_PLAINTEXT, SASL_SSL) or an authorizer is configured; then
 * the console needs a login, checked against the same users the Kafka API accepts, and every
 * read and change is checked with the Kafka API's authorizer for principal User:NAME. Without
 * security every check allows (Kafka without an authorizer allows everything too).
 *
 * Threads: the console's HTTP thread (any thread may call them; they read only the
 * configuration, the listeners' user stores and published metadata images).
 */
#ifndef GREGOR_BROKER_CONSOLE_SECURITY_H
#define GREGOR_BROKER_CONSOLE_SECURITY_H

#include <stdbool.h>

#include "cluster/image.h"
#include "console/console.h"

struct broker;

/* True when a client listener uses SASL or authorizer.class.name is set. */
bool console_security_on(const struct broker *b);

/* True when at least one user could sign in (a SASL listener with static users, or SCRAM
 * enabled so that users of the metadata log count). */
bool console_security_has_users(const struct broker *b);

/*
 * console_source.login: 0 when password is user's on the Kafka API, -EACCES otherwise. Checks
 * the SCRAM credentials of the metadata log (when a SASL listener enables SCRAM) by deriving
 * SaltedPassword with the stored salt and iterations and comparing StoredKey in constant time,
 * and the static users of every SASL listener (JAAS user_NAME options, sasl.credentials.file),
 * which is where PLAIN users come from. An unknown user costs one derivation too, so the time
 * of an answer does not tell whether the user exists.
 */
int console_security_login(void *ctx, const char *user, const char *password);

/* May the request's user do op (ACL_OPERATION_*) on the resource? img: the caller's image or
 * NULL. Always true without security, and for super.users. */
bool console_allowed(struct broker *b, const struct console_request *req,
                     const struct metadata_image *img, int resource_type, const char *name, int op);

/* Writes the 403 answer for a refused check ("User:bob may not READ topic 'x'"); returns 403. */
int console_denied(struct expo *e, const struct console_request *req, const char *op,
                   const char *what, const char *name);

#endif
