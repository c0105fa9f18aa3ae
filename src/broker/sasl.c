/*
 * SASL on SASL_PLAINTEXT and SASL_SSL listeners (KIP-43, KIP-152): SaslHandshake v0-1
 * (keys 17), SaslAuthenticate v0-2 (key 36), and the bare-token frames a client sends after a
 * v0 handshake. Mechanisms PLAIN (RFC 4616) and SCRAM-SHA-256/512 (security/scram.c).
 *
 * Where users come from: SCRAM credentials in the metadata log (KIP-554, AlterUserScramCredentials
 * and `gregor user`; the only source Kafka has) win; the listener's static users (JAAS
 * user_NAME options, sasl.credentials.file; listeners.c) are the fallback for SCRAM and the
 * only source for PLAIN, as in Kafka, where PLAIN never reads the metadata log. A SCRAM
 * exchange copies the credential at its first step, so a change in between does not matter.
 *
 * Re-authentication (KIP-368): with connections.max.reauth.ms > 0 a successful
 * SaslAuthenticate (v1+) tells the client its session_lifetime_ms, and every SASL session
 * (whatever the client's versions) expires that long after authentication. An expired
 * session is closed at its next request unless that is a SaslHandshake v1, which starts a
 * re-authentication on the same connection: same mechanism, and the same user, or the
 * connection is closed (Kafka's rules). Kafka always accepts a re-authentication; Gregor
 * only with connections.max.reauth.ms > 0 (otherwise a second SaslHandshake is
 * ILLEGAL_SASL_STATE, as before).
 *
 * What Kafka does, and so do we: until a connection is authenticated only ApiVersions,
 * SaslHandshake and SaslAuthenticate are served, each in its state (session.h); anything else
 * is ILLEGAL_SASL_STATE and the connection is closed. A mechanism that is not enabled is
 * UNSUPPORTED_SASL_MECHANISM (with the enabled list), then close. A failed authentication is
 * SASL_AUTHENTICATION_FAILED with Kafka's message, then close; after a v0 handshake there is
 * no way to carry an error, so the connection just closes. Each refusal is logged once with the
 * peer. On a listener without SASL, or after authentication, both APIs answer
 * ILLEGAL_SASL_STATE and the connection stays open (Kafka's KafkaApis does the same).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/handlers.h"
#include "broker/listeners.h"
#include "broker/session.h"
#include "cluster/image_scram.h"
#include "proto/gen/errors.h"
#include "proto/gen/sasl_authenticate.h"
#include "proto/gen/sasl_handshake.h"

#define SASL_LOG "sasl"
#define SASL_OUT_MAX 512

enum sasl_step_result { SASL_CONTINUE, SASL_DONE, SASL_FAILED };

/* PLAIN: "authzid NUL authcid NUL password"; an authzid must equal the user (Kafka's rule). */
static enum sasl_step_result sasl_plain(const struct broker_listener *l, struct broker_session *s,
                                        const uint8_t *in, size_t len, const char **why)
{
    char msg[1024];
    if (len == 0 || len >= sizeof(msg)) {
        *why = "malformed PLAIN message";
        return SASL_FAILED;
    }
    memcpy(msg, in, len);
    msg[len] = '\0';
    const char *authzid = msg;
    const char *user = memchr(msg, '\0', len) ? msg + strlen(msg) + 1 : NULL;
    const char *pass = user && user < msg + len ? user + strlen(user) + 1 : NULL;
    if (pass == NULL || pass > msg + len || user[0] == '\0') {
        *why = "malformed PLAIN message";
        return SASL_FAILED;
    }
    if (authzid[0] != '\0' && strcmp(authzid, user) != 0) {
        *why = "authorization id differs from the user name";
        return SASL_FAILED;
    }
    const struct credential_user *u = credential_store_find(&l->users, user);
    bool ok = u != NULL && scram_credential_check_password(&u->sha512, pass);
    memset(msg, 0, sizeof(msg));
    if (!ok) {
        *why = u ? "wrong password" : "unknown user";
        return SASL_FAILED;
    }
    s->user = u;
    return SASL_DONE;
}

static const struct scram_credential *sasl_scram_credential(const struct credential_user *u,
                                                            unsigned mech)
{
    return mech == SASL_MECH_SCRAM_SHA_512 ? &u->sha512 : &u->sha256;
}

/*
 * The SCRAM credential of `user` for mechanism `mech` into out: the metadata log's first, then
 * the listener's static user (*static_user set). False when neither has one.
 */
static bool sasl_scram_lookup(struct broker *b, const struct broker_listener *l, const char *user,
                              unsigned mech, struct scram_credential *out,
                              const struct credential_user **static_user)
{
    uint8_t m = mech == SASL_MECH_SCRAM_SHA_512 ? METADATA_SCRAM_SHA_512 : METADATA_SCRAM_SHA_256;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_scram_credential *c = metadata_image_scram(img, user, m);
    if (c != NULL) {
        memset(out, 0, sizeof(*out));
        out->hash = m == METADATA_SCRAM_SHA_512 ? SCRAM_SHA_512 : SCRAM_SHA_256;
        out->iterations = c->iterations;
        out->salt_len = c->salt_len;
        memcpy(out->salt, c->salt, c->salt_len);
        memcpy(out->stored_key, c->stored_key, c->key_len);
        memcpy(out->server_key, c->server_key, c->key_len);
    }
    metadata_image_release(img);
    *static_user = NULL;
    if (c != NULL)
        return true;
    *static_user = credential_store_find(&l->users, user);
    if (*static_user != NULL)
        *out = *sasl_scram_credential(*static_user, mech);
    return *static_user != NULL;
}

/* SCRAM: client-first -> server-first (out), client-final -> server-final (out). */
static enum sasl_step_result sasl_scram(struct broker *b, const struct broker_listener *l,
                                        struct broker_session *s, const uint8_t *in, size_t len,
                                        char *out, size_t *outlen, const char **why)
{
    enum scram_hash h = s->mechanism == SASL_MECH_SCRAM_SHA_512 ? SCRAM_SHA_512 : SCRAM_SHA_256;
    if (s->scram_step == 0) {
        if (s->scram == NULL && (s->scram = calloc(1, sizeof(*s->scram))) == NULL) {
            *why = "out of memory";
            return SASL_FAILED;
        }
        if (scram_parse_client_first(s->scram, h, in, len) != 0) {
            *why = "malformed or unsupported SCRAM client-first message";
            return SASL_FAILED;
        }
        if (!sasl_scram_lookup(b, l, s->scram->user, s->mechanism, &s->scram->cred, &s->user)) {
            *why = "unknown user";
            return SASL_FAILED;
        }
        if (scram_server_first(s->scram, &s->scram->cred) != 0) {
            *why = "cannot build the SCRAM server-first message";
            return SASL_FAILED;
        }
        *outlen = strlen(s->scram->server_first);
        memcpy(out, s->scram->server_first, *outlen);
        s->scram_step = 1;
        return SASL_CONTINUE;
    }
    int rc = scram_server_final(s->scram, &s->scram->cred, in, len, out, SASL_OUT_MAX);
    if (rc != 0) {
        *why = rc == -EACCES ? "wrong password" : "malformed SCRAM client-final message";
        return SASL_FAILED;
    }
    *outlen = strlen(out);
    return SASL_DONE;
}

/* True when "User:name" is the session's principal (re-authentication keeps the user). */
static bool sasl_same_principal(const struct broker_session *s, const char *name)
{
    return strncmp(s->principal, "User:", 5) == 0 && strcmp(s->principal + 5, name) == 0;
}

/* One authentication step with the mechanism chosen by the handshake. */
static enum sasl_step_result sasl_step(struct broker *b, struct net_conn *c,
                                       struct broker_session *s, const uint8_t *in, size_t len,
                                       char *out, size_t *outlen)
{
    const struct broker_listener *l = broker_listener_of(b, c);
    const char *why = NULL;
    *outlen = 0;
    enum sasl_step_result res = s->mechanism == SASL_MECH_PLAIN
                                    ? sasl_plain(l, s, in, len, &why)
                                    : sasl_scram(b, l, s, in, len, out, outlen, &why);
    if (res == SASL_FAILED) {
        const char *user = s->user ? s->user->name : (s->scram ? s->scram->user : "?");
        logger_warn(SASL_LOG,
                    "authentication of connection from %s on listener %s failed: %s (%s, "
                    "user '%s')",
                    net_conn_peer(c), l->cfg->name, why, sasl_mechanism_name(s->mechanism), user);
    } else if (res == SASL_DONE) {
        const char *name = s->user ? s->user->name : s->scram->user;
        if (s->reauthenticating && !sasl_same_principal(s, name)) {
            logger_warn(SASL_LOG,
                        "re-authentication of connection from %s failed: user '%s' is not the "
                        "session's %s",
                        net_conn_peer(c), name, s->principal);
            return SASL_FAILED;
        }
        if (s->reauthenticating)
            logger_debug(SASL_LOG, "connection from %s re-authenticated as %s", net_conn_peer(c),
                         s->principal);
        session_authenticated(s, c, name);
        s->reauthenticating = false;
        int64_t life = b->cfg.connections_max_reauth_ms;
        s->expires_ms = life > 0 ? clock_mono_ms() + life : 0;
        logger_debug(SASL_LOG, "connection from %s authenticated as %s (%s)", net_conn_peer(c),
                     s->principal, sasl_mechanism_name(s->mechanism));
    }
    return res;
}

/* The enabled mechanisms of r's listener as the response array. */
static struct karray_str sasl_enabled_list(struct broker_req *r)
{
    const struct broker_listener *l = broker_listener_of(r->b, r->nr->conn);
    unsigned mechs = broker_listener_is_sasl(l) ? l->mechanisms : 0;
    struct karray_str a = {0, arena_calloc(r->arena, 3, sizeof(struct kstr))};
    if (a.v == NULL)
        return (struct karray_str){0, NULL};
    for (unsigned bit = 1; bit <= SASL_MECH_SCRAM_SHA_512; bit <<= 1)
        if (mechs & bit) {
            const char *n = sasl_mechanism_name(bit);
            a.v[a.n++] = (struct kstr){n, (int32_t)strlen(n)};
        }
    return a;
}

void handle_sasl_handshake(struct broker_req *r)
{
    struct kmsg_sasl_handshake_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_sasl_handshake_request_decode, &req) != 0)
        return;
    struct kmsg_sasl_handshake_response resp;
    kmsg_sasl_handshake_response_init(&resp);
    resp.mechanisms = sasl_enabled_list(r);
    struct broker_session *s = session_of(r->nr->conn);
    const struct broker_listener *l = broker_listener_of(r->b, r->nr->conn);
    bool reauth = s != NULL && s->state == SESSION_AUTHENTICATED && s->mechanism != 0 &&
                  r->b->cfg.connections_max_reauth_ms > 0 && r->hdr.api_version >= 1;
    if (s == NULL || !broker_listener_is_sasl(l) || (s->state != SESSION_HANDSHAKE && !reauth)) {
        resp.error_code = KAFKA_ERR_ILLEGAL_SASL_STATE;
        r->close_after = s != NULL && s->state != SESSION_AUTHENTICATED;
        if (r->close_after)
            logger_warn(SASL_LOG,
                        "closing connection from %s: ILLEGAL_SASL_STATE (a second "
                        "SaslHandshake)",
                        net_conn_peer(r->nr->conn));
        broker_reply(r, (kproto_encode_fn)kmsg_sasl_handshake_response_encode, &resp);
        return;
    }
    unsigned bit = req.mechanism.len > 0
                       ? sasl_mechanism_bit(req.mechanism.ptr, (size_t)req.mechanism.len)
                       : 0;
    if (bit == 0 || (l->mechanisms & bit) == 0 || (reauth && bit != s->mechanism)) {
        logger_warn(SASL_LOG,
                    "closing connection from %s: SASL mechanism '%.*s' is not enabled on "
                    "listener %s%s",
                    net_conn_peer(r->nr->conn), req.mechanism.len > 0 ? (int)req.mechanism.len : 0,
                    req.mechanism.len > 0 ? req.mechanism.ptr : "", l->cfg->name,
                    reauth ? " or not the mechanism of the session being re-authenticated" : "");
        resp.error_code = KAFKA_ERR_UNSUPPORTED_SASL_MECHANISM;
        r->close_after = true;
        broker_reply(r, (kproto_encode_fn)kmsg_sasl_handshake_response_encode, &resp);
        return;
    }
    s->mechanism = bit;
    s->state = r->hdr.api_version == 0 ? SESSION_RAW_TOKEN : SESSION_AUTHENTICATE;
    s->scram_step = 0;
    s->reauthenticating = reauth;
    if (reauth) /* the exchange is unauthenticated input again, bounded as the first one was */
        net_conn_set_max_frame(r->nr->conn, r->b->cfg.sasl_server_max_receive_size);
    broker_reply(r, (kproto_encode_fn)kmsg_sasl_handshake_response_encode, &resp);
}

static void sasl_authenticate_refuse(struct broker_req *r, int16_t error, const char *msg,
                                     bool close)
{
    struct kmsg_sasl_authenticate_response resp;
    kmsg_sasl_authenticate_response_init(&resp);
    resp.error_code = error;
    resp.error_message = broker_kstr(r, msg);
    r->close_after = close;
    r->failed = true;
    broker_reply(r, (kproto_encode_fn)kmsg_sasl_authenticate_response_encode, &resp);
}

void handle_sasl_authenticate(struct broker_req *r)
{
    struct kmsg_sasl_authenticate_request req;
    if (broker_decode(r, (kproto_decode_fn)kmsg_sasl_authenticate_request_decode, &req) != 0)
        return;
    struct broker_session *s = session_of(r->nr->conn);
    const struct broker_listener *l = broker_listener_of(r->b, r->nr->conn);
    if (s == NULL || !broker_listener_is_sasl(l) || s->state == SESSION_AUTHENTICATED) {
        sasl_authenticate_refuse(r, KAFKA_ERR_ILLEGAL_SASL_STATE,
                                 "SaslAuthenticate request received after successful "
                                 "authentication or on a listener without SASL",
                                 false);
        return;
    }
    if (s->state != SESSION_AUTHENTICATE) {
        logger_warn(SASL_LOG,
                    "closing connection from %s: ILLEGAL_SASL_STATE (SaslAuthenticate "
                    "before SaslHandshake)",
                    net_conn_peer(r->nr->conn));
        sasl_authenticate_refuse(r, KAFKA_ERR_ILLEGAL_SASL_STATE,
                                 "Unexpected Kafka request of type SASL_AUTHENTICATE during SASL "
                                 "handshake.",
                                 true);
        return;
    }
    char out[SASL_OUT_MAX];
    size_t outlen = 0;
    enum sasl_step_result res =
        sasl_step(r->b, r->nr->conn, s, req.auth_bytes.ptr,
                  req.auth_bytes.len > 0 ? (size_t)req.auth_bytes.len : 0, out, &outlen);
    if (res == SASL_FAILED) {
        char msg[200];
        snprintf(msg, sizeof(msg),
                 "Authentication failed during authentication due to invalid credentials with "
                 "SASL mechanism %s",
                 sasl_mechanism_name(s->mechanism));
        sasl_authenticate_refuse(r, KAFKA_ERR_SASL_AUTHENTICATION_FAILED, msg, true);
        return;
    }
    struct kmsg_sasl_authenticate_response resp;
    kmsg_sasl_authenticate_response_init(&resp);
    uint8_t *copy = arena_alloc(r->arena, outlen + 1);
    if (copy == NULL) {
        broker_close(r, "out of memory");
        return;
    }
    memcpy(copy, out, outlen);
    resp.auth_bytes = (struct kbytes){copy, (int32_t)outlen};
    resp.session_lifetime_ms =
        r->b->cfg.connections_max_reauth_ms > 0 ? r->b->cfg.connections_max_reauth_ms : 0;
    broker_reply(r, (kproto_encode_fn)kmsg_sasl_authenticate_response_encode, &resp);
}

/* After a v0 handshake: the frame is a bare token; the answer a bare (size-prefixed) token. */
void sasl_handle_raw_token(struct broker *b, struct net_request *nr)
{
    struct broker_session *s = session_of(nr->conn);
    char out[SASL_OUT_MAX];
    size_t outlen = 0;
    enum sasl_step_result res = sasl_step(b, nr->conn, s, nr->frame, nr->size, out, &outlen);
    if (res == SASL_FAILED) {
        net_request_close(nr);
        return;
    }
    struct iochain chain;
    iochain_init(&chain);
    uint8_t size[4] = {(uint8_t)(outlen >> 24), (uint8_t)(outlen >> 16), (uint8_t)(outlen >> 8),
                       (uint8_t)outlen};
    iochain_append(&chain, size, 4);
    if (outlen > 0)
        iochain_append(&chain, out, outlen);
    net_request_reply(nr, &chain);
}

/*
 * Before authentication: true if r may be served in the session's state; otherwise closes the
 * connection (ILLEGAL_SASL_STATE, logged) and returns false.
 */
bool sasl_request_allowed(struct broker_req *r, struct broker_session *s)
{
    int16_t k = r->hdr.api_key;
    bool ok = s->state == SESSION_HANDSHAKE
                  ? k == KPROTO_API_API_VERSIONS || k == KPROTO_API_SASL_HANDSHAKE ||
                        k == KPROTO_API_SASL_AUTHENTICATE
                  : k == KPROTO_API_SASL_AUTHENTICATE || k == KPROTO_API_SASL_HANDSHAKE;
    if (ok)
        return true;
    const struct kproto_api *api = kproto_api_lookup(k);
    char why[160];
    snprintf(why, sizeof(why),
             "ILLEGAL_SASL_STATE: unexpected Kafka request of type %s during SASL %s",
             api ? api->name : "unknown",
             s->state == SESSION_HANDSHAKE ? "handshake" : "authentication");
    broker_close(r, why);
    return false;
}

bool sasl_session_live(struct broker_req *r, struct broker_session *s)
{
    assert(s->state == SESSION_AUTHENTICATED && s->expires_ms != 0);
    if (r->hdr.api_key == KPROTO_API_SASL_HANDSHAKE || clock_mono_ms() < s->expires_ms)
        return true;
    const struct kproto_api *api = kproto_api_lookup(r->hdr.api_key);
    char why[512];
    snprintf(why, sizeof(why),
             "SASL session of %s expired (connections.max.reauth.ms) before a %s request",
             s->principal, api ? api->name : "unknown");
    broker_close(r, why);
    return false;
}
