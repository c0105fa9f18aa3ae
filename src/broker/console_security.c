/*
 * The console's login check and ACL checks (console_security.h).
 */
#include "broker/console_security.h"

#include <errno.h>
#include <string.h>

#include "broker/authorizer.h"
#include "broker/broker_internal.h"
#include "broker/listeners.h"
#include "cluster/image_scram.h"
#include "console/json.h"
#include "security/credentials.h"
#include "security/scram.h"

#define SASL_MECH_SCRAM (SASL_MECH_SCRAM_SHA_256 | SASL_MECH_SCRAM_SHA_512)

bool console_security_on(const struct broker *b)
{
    for (int i = 0; i < b->n_listeners; i++)
        if (broker_listener_is_sasl(&b->listeners[i]))
            return true;
    return broker_authorizer_on(b);
}

bool console_security_has_users(const struct broker *b)
{
    for (int i = 0; i < b->n_listeners; i++) {
        const struct broker_listener *l = &b->listeners[i];
        if (broker_listener_is_sasl(l) && (l->users.n > 0 || (l->mechanisms & SASL_MECH_SCRAM)))
            return true;
    }
    return false;
}

/* password against one SCRAM credential of the metadata image. */
static bool console_check_image_credential(const struct metadata_scram_credential *c,
                                           const char *password)
{
    struct scram_credential cred;
    memset(&cred, 0, sizeof(cred));
    cred.hash = c->mechanism == METADATA_SCRAM_SHA_512 ? SCRAM_SHA_512 : SCRAM_SHA_256;
    cred.iterations = c->iterations;
    cred.salt_len = c->salt_len <= SCRAM_SALT_MAX ? c->salt_len : SCRAM_SALT_MAX;
    memcpy(cred.salt, c->salt, cred.salt_len);
    size_t klen = c->key_len <= SCRAM_MAX_HASH ? c->key_len : SCRAM_MAX_HASH;
    memcpy(cred.stored_key, c->stored_key, klen);
    return klen == scram_hash_len(cred.hash) && scram_credential_check_password(&cred, password);
}

/* Whether any SASL listener enables SCRAM; the users of the metadata log count only then. */
static bool console_scram_enabled(const struct broker *b)
{
    for (int i = 0; i < b->n_listeners; i++)
        if (broker_listener_is_sasl(&b->listeners[i]) &&
            (b->listeners[i].mechanisms & SASL_MECH_SCRAM))
            return true;
    return false;
}

int console_security_login(void *ctx, const char *user, const char *password)
{
    struct broker *b = ctx;
    bool known = false, ok = false;
    for (int i = 0; i < b->n_listeners; i++) {
        const struct broker_listener *l = &b->listeners[i];
        if (!broker_listener_is_sasl(l))
            continue;
        const struct credential_user *u = credential_store_find(&l->users, user);
        if (u != NULL) {
            known = true;
            ok = scram_credential_check_password(&u->sha512, password) || ok;
        }
    }
    if (console_scram_enabled(b)) {
        const struct metadata_image *img = metadata_image_acquire(b->ctl);
        static const uint8_t mechs[] = {METADATA_SCRAM_SHA_512, METADATA_SCRAM_SHA_256};
        for (size_t i = 0; img != NULL && i < sizeof(mechs); i++) {
            const struct metadata_scram_credential *c = metadata_image_scram(img, user, mechs[i]);
            if (c != NULL) {
                known = true;
                ok = console_check_image_credential(c, password) || ok;
            }
        }
        metadata_image_release(img);
    }
    if (!known) { /* spend what a known user costs: the answer's time tells nothing */
        struct scram_credential dummy;
        memset(&dummy, 0, sizeof(dummy));
        dummy.hash = SCRAM_SHA_512;
        dummy.iterations = SCRAM_DEFAULT_ITERATIONS;
        dummy.salt_len = SCRAM_SALT_LEN;
        (void)scram_credential_check_password(&dummy, password);
    }
    return ok ? 0 : -EACCES;
}

bool console_allowed(struct broker *b, const struct console_request *req,
                     const struct metadata_image *img, int resource_type, const char *name, int op)
{
    if (req->principal == NULL)
        return true;
    return broker_authorize_subject(b, req->principal, req->host ? req->host : "", img,
                                    resource_type, name, op);
}

int console_denied(struct expo *e, const struct console_request *req, const char *op,
                   const char *what, const char *name)
{
    return json_error(e, 403, "%s may not %s %s '%.249s' (the broker's ACLs)",
                      req->principal ? req->principal : "this user", op, what, name);
}
