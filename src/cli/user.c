/*
 * gregor user add|list|delete: SCRAM credentials in the metadata log (KIP-554), as Kafka's
 * `kafka-configs.sh --alter --add-config 'SCRAM-SHA-512=[iterations=N,password=P]'
 * --entity-type users` manages them.
 *
 * Like kafka-configs.sh the CLI computes the salt and SaltedPassword = Hi(password, salt,
 * iterations) itself, so the password never leaves this process; the broker derives and stores
 * StoredKey and ServerKey. librdkafka 2.0.2 has no call for these APIs, so the requests go with
 * Gregor's own codec and blocking client to the first bootstrap broker, which forwards
 * AlterUserScramCredentials to the active controller. That client speaks PLAINTEXT, and
 * SASL_PLAINTEXT with the librdkafka-style properties -X security.protocol=SASL_PLAINTEXT
 * -X sasl.mechanisms=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 -X sasl.username=... -X
 * sasl.password=... (it verifies a SCRAM server's signature); not TLS.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/arena.h"
#include "broker/controller_client.h"
#include "cli/internal.h"
#include "proto/gen/alter_user_scram_credentials.h"
#include "proto/gen/describe_user_scram_credentials.h"
#include "proto/gen/errors.h"
#include "proto/gen/sasl_authenticate.h"
#include "proto/gen/sasl_handshake.h"
#include "security/scram.h"
#include "security/scram_client.h"

#define USER_SALT_LEN 32
#define USER_MECH_SHA256 1 /* Kafka's ScramMechanism type codes */
#define USER_MECH_SHA512 2

struct user_opts {
    struct cli_common c;
    struct controller_client cc; /* one connection for the whole command */
    char host[256];
    int port;
    int connected; /* the connection is open and (SASL) authenticated */
    const char *password;
    const char *mechanism;
    int iterations;
    char **names;
    int nnames;
};

static const struct cli_option user_options[] = {
    {.name = "password",
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct user_opts, password, const char *),
     .min = 1,
     .expects = "a password",
     .arg = "PASSWORD",
     .help = "the new password (add); without it one line is read from stdin"},
    {.name = "mechanism",
     .letter = 'm',
     .has_arg = required_argument,
     .kind = CLI_OPT_STRING,
     .target = CLI_FIELD(struct user_opts, mechanism, const char *),
     .min = 1,
     .expects = "SCRAM-SHA-256 or SCRAM-SHA-512",
     .arg = "MECH",
     .help = "SCRAM-SHA-256 or SCRAM-SHA-512 (add: default SCRAM-SHA-512;\ndelete: default "
             "every mechanism the user has)"},
    {.name = "iterations",
     .letter = 'i',
     .has_arg = required_argument,
     .kind = CLI_OPT_INT,
     .target = CLI_FIELD(struct user_opts, iterations, int),
     .min = SCRAM_MIN_ITERATIONS,
     .max = SCRAM_MAX_ITERATIONS,
     .expects = "a number from 4096 to 16384",
     .arg = "N",
     .help = "PBKDF2 iterations (add; default 4096)"},
    {.name = NULL},
};

static const struct cli_command_options user_command = {
    .options = user_options,
    .usage =
        "usage: gregor user add NAME [--password PASSWORD] [--mechanism MECH] "
        "[--iterations N]\n"
        "       gregor user list [NAME...]\n"
        "       gregor user delete NAME [--mechanism MECH]\n"
        "\n"
        "SCRAM users stored in the cluster's metadata log: every broker accepts them on "
        "its\n"
        "SCRAM-SHA-256/512 SASL listeners. -b names a PLAINTEXT listener, or a SASL_PLAINTEXT\n"
        "one with -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=MECH\n"
        "-X sasl.username=USER -X sasl.password=PASSWORD.\n"
        "\n",
    .epilog = "examples:\n"
              "  gregor user add alice --password s3cret --mechanism SCRAM-SHA-256\n"
              "  gregor user list\n"
              "  gregor user delete alice\n",
    .help_column = 28,
};

static const char *user_mech_name(int8_t m)
{
    return m == USER_MECH_SHA256 ? "SCRAM-SHA-256" : m == USER_MECH_SHA512 ? "SCRAM-SHA-512" : "?";
}

/* 1 or 2 for a mechanism name, 0 when unknown. */
static int8_t user_mech_of(const char *name)
{
    if (strcmp(name, "SCRAM-SHA-256") == 0)
        return USER_MECH_SHA256;
    if (strcmp(name, "SCRAM-SHA-512") == 0)
        return USER_MECH_SHA512;
    return 0;
}

/* The value of -X KEY=VALUE, or NULL. */
static const char *user_prop(const struct user_opts *o, const char *key)
{
    const char *v = NULL;
    for (int i = 0; i < o->c.nprops; i++) {
        size_t kl;
        const char *val;
        if (cli_split_kv(o->c.props[i], &kl, &val) == 0 && strlen(key) == kl &&
            strncmp(o->c.props[i], key, kl) == 0)
            v = val;
    }
    return v;
}

/* One raw request on o's connection. 0 or a negative errno. */
static int user_raw(struct user_opts *o, int16_t api_key, int16_t version, const void *req,
                    void *resp, uint8_t **buf, struct arena *arena)
{
    return controller_client_call(&o->cc, o->host, o->port, api_key, version, req, resp, buf, arena,
                                  o->c.timeout_ms > 0 ? o->c.timeout_ms : 5000);
}

/* One SaslAuthenticate v1 round: token in, the server's token copied to out. 0 or -1. */
static int user_sasl_round(struct user_opts *o, const void *token, size_t len, char *out,
                           size_t outlen, size_t *n_out)
{
    struct kmsg_sasl_authenticate_request req = {{token, (int32_t)len}};
    struct kmsg_sasl_authenticate_response resp;
    kmsg_sasl_authenticate_response_init(&resp);
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    int rc = user_raw(o, KPROTO_API_SASL_AUTHENTICATE, 1, &req, &resp, &buf, &arena);
    if (rc == 0 && resp.error_code == 0 && resp.auth_bytes.len >= 0 &&
        (size_t)resp.auth_bytes.len < outlen) {
        memcpy(out, resp.auth_bytes.ptr, (size_t)resp.auth_bytes.len);
        *n_out = (size_t)resp.auth_bytes.len;
    } else if (rc == 0) {
        cli_error(&o->c, "SASL authentication failed: %s%s%.*s", kafka_error_name(resp.error_code),
                  resp.error_message.len > 0 ? ": " : "",
                  resp.error_message.len > 0 ? resp.error_message.len : 0,
                  resp.error_message.len > 0 ? resp.error_message.ptr : "");
        rc = -1;
    } else {
        cli_error(&o->c, "SASL authentication: %s", strerror(-rc));
    }
    free(buf);
    arena_free(&arena);
    return rc == 0 ? 0 : -1;
}

/* SaslHandshake v1 then PLAIN or SCRAM over SaslAuthenticate v1. 0 or -1 after printing why. */
static int user_sasl(struct user_opts *o, const char *mech, const char *user, const char *pass)
{
    struct kmsg_sasl_handshake_request hreq = {{mech, (int32_t)strlen(mech)}};
    struct kmsg_sasl_handshake_response hresp;
    kmsg_sasl_handshake_response_init(&hresp);
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    int rc = user_raw(o, KPROTO_API_SASL_HANDSHAKE, 1, &hreq, &hresp, &buf, &arena);
    int16_t err = rc == 0 ? hresp.error_code : 0;
    free(buf);
    arena_free(&arena);
    if (rc != 0 || err != 0) {
        cli_error(&o->c, "SaslHandshake %s: %s", mech, rc ? strerror(-rc) : kafka_error_name(err));
        return -1;
    }
    char out[SCRAM_MSG_MAX], in[SCRAM_MSG_MAX];
    size_t n = 0;
    if (strcmp(mech, "PLAIN") == 0) {
        int len = snprintf(out, sizeof(out), "%c%s%c%s", 0, user, 0, pass);
        rc = len > 0 && (size_t)len < sizeof(out)
                 ? user_sasl_round(o, out, (size_t)len, in, sizeof(in), &n)
                 : -1;
        OPENSSL_cleanse(out, sizeof(out));
        return rc;
    }
    struct scram_client x;
    enum scram_hash h = strcmp(mech, "SCRAM-SHA-512") == 0 ? SCRAM_SHA_512 : SCRAM_SHA_256;
    if (scram_client_first(&x, h, user, out, sizeof(out)) != 0 ||
        user_sasl_round(o, out, strlen(out), in, sizeof(in), &n) != 0)
        return -1;
    if (scram_client_final(&x, pass, (const uint8_t *)in, n, out, sizeof(out)) != 0) {
        cli_error(&o->c, "SCRAM: the server's first message is malformed");
        return -1;
    }
    if (user_sasl_round(o, out, strlen(out), in, sizeof(in), &n) != 0)
        return -1;
    if (scram_client_verify(&x, (const uint8_t *)in, n) != 0) {
        cli_error(&o->c, "SCRAM: the server's signature is wrong (it does not know the user)");
        return -1;
    }
    return 0;
}

/* Connects to the first bootstrap broker and authenticates when -X asks for SASL. 0 or -1. */
static int user_connect(struct user_opts *o)
{
    snprintf(o->host, sizeof(o->host), "%s", o->c.brokers ? o->c.brokers : CLI_DEFAULT_BROKERS);
    o->host[strcspn(o->host, ",")] = '\0';
    char *colon = strrchr(o->host, ':');
    o->port = colon ? atoi(colon + 1) : 9092;
    if (colon)
        *colon = '\0';
    controller_client_init(&o->cc, -1, NULL);
    snprintf(o->cc.client_id, sizeof(o->cc.client_id), "gregor-cli");
    const char *proto = user_prop(o, "security.protocol");
    if (proto == NULL || strcasecmp(proto, "PLAINTEXT") == 0)
        return 0;
    if (strcasecmp(proto, "SASL_PLAINTEXT") != 0) {
        cli_error(&o->c, "security.protocol %s: gregor user speaks PLAINTEXT and SASL_PLAINTEXT",
                  proto);
        return -1;
    }
    const char *mech = user_prop(o, "sasl.mechanisms");
    mech = mech ? mech : user_prop(o, "sasl.mechanism");
    const char *user = user_prop(o, "sasl.username"), *pass = user_prop(o, "sasl.password");
    if (mech == NULL || user == NULL || pass == NULL ||
        (strcmp(mech, "PLAIN") != 0 && user_mech_of(mech) == 0)) {
        cli_error(&o->c, "SASL_PLAINTEXT needs -X sasl.mechanisms=PLAIN|SCRAM-SHA-256|"
                         "SCRAM-SHA-512, -X sasl.username and -X sasl.password");
        return -1;
    }
    return user_sasl(o, mech, user, pass);
}

/* One request to the first bootstrap broker. 0, or -1 after printing why. */
static int user_call(struct user_opts *o, int16_t api_key, const void *req, void *resp,
                     uint8_t **buf, struct arena *arena)
{
    if (!o->connected) {
        if (user_connect(o) != 0)
            return -1;
        o->connected = 1;
    }
    int rc = user_raw(o, api_key, 0, req, resp, buf, arena);
    if (rc != 0) {
        cli_error(&o->c, "no answer from %s:%d: %s", o->host, o->port, strerror(-rc));
        return -1;
    }
    return 0;
}

/* Sends the changes; prints one line per user. Returns the exit status. */
static int user_alter(struct user_opts *o, struct kmsg_alter_user_scram_credentials_request *req,
                      const char *done)
{
    struct kmsg_alter_user_scram_credentials_response resp;
    kmsg_alter_user_scram_credentials_response_init(&resp);
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    int rc = CLI_EXIT_UNAVAILABLE;
    if (user_call(o, KPROTO_API_ALTER_USER_SCRAM_CREDENTIALS, req, &resp, &buf, &arena) == 0) {
        rc = CLI_EXIT_OK;
        for (int32_t i = 0; i < resp.results.n; i++) {
            const struct
                kmsg_alter_user_scram_credentials_response_alter_user_scram_credentials_result *r =
                    &resp.results.v[i];
            if (r->error_code == 0) {
                printf("%s user %.*s\n", done, r->user.len, r->user.ptr);
                continue;
            }
            cli_error(&o->c, "%.*s: %s%s%.*s", r->user.len, r->user.ptr,
                      kafka_error_name(r->error_code), r->error_message.len > 0 ? ": " : "",
                      r->error_message.len > 0 ? r->error_message.len : 0,
                      r->error_message.len > 0 ? r->error_message.ptr : "");
            rc = CLI_EXIT_FAIL;
        }
    }
    free(buf);
    arena_free(&arena);
    return rc;
}

/* The password from --password or one line of stdin, into out. 0 or -1. */
static int user_password(struct user_opts *o, char *out, size_t cap)
{
    if (o->password) {
        snprintf(out, cap, "%s", o->password);
        return 0;
    }
    if (fgets(out, (int)cap, stdin) == NULL) {
        cli_error(&o->c, "no --password and nothing on stdin");
        return -1;
    }
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0') {
        cli_error(&o->c, "empty password");
        return -1;
    }
    return 0;
}

static int user_add(struct user_opts *o)
{
    if (o->nnames != 1)
        return cli_usage_error(&o->c, "add takes one user NAME");
    int8_t mech = user_mech_of(o->mechanism ? o->mechanism : "SCRAM-SHA-512");
    if (mech == 0)
        return cli_usage_error(&o->c, "unknown mechanism '%s' (SCRAM-SHA-256, SCRAM-SHA-512)",
                               o->mechanism);
    char password[1024];
    if (user_password(o, password, sizeof(password)) != 0)
        return CLI_EXIT_USAGE;
    enum scram_hash h = mech == USER_MECH_SHA512 ? SCRAM_SHA_512 : SCRAM_SHA_256;
    int iterations = o->iterations ? o->iterations : SCRAM_DEFAULT_ITERATIONS;
    uint8_t salt[USER_SALT_LEN], salted[SCRAM_MAX_HASH];
    int ok = RAND_bytes(salt, sizeof(salt)) == 1 &&
             scram_salted_password(h, password, salt, sizeof(salt), iterations, salted) == 0;
    OPENSSL_cleanse(password, sizeof(password));
    if (!ok) {
        cli_error(&o->c, "cannot compute the salted password (libcrypto)");
        return CLI_EXIT_FAIL;
    }
    struct kmsg_alter_user_scram_credentials_request_scram_credential_upsertion up;
    kmsg_alter_user_scram_credentials_request_scram_credential_upsertion_init(&up);
    up.name = (struct kstr){o->names[0], (int32_t)strlen(o->names[0])};
    up.mechanism = mech;
    up.iterations = iterations;
    up.salt = (struct kbytes){salt, (int32_t)sizeof(salt)};
    up.salted_password = (struct kbytes){salted, (int32_t)scram_hash_len(h)};
    struct kmsg_alter_user_scram_credentials_request req;
    kmsg_alter_user_scram_credentials_request_init(&req);
    req.upsertions.n = 1;
    req.upsertions.v = &up;
    char done[64];
    snprintf(done, sizeof(done), "set %s (%d iterations) for", user_mech_name(mech), iterations);
    int rc = user_alter(o, &req, done);
    OPENSSL_cleanse(salted, sizeof(salted));
    return rc;
}

/* Describes the users named (all when none); prints them, or with `mechs` returns the
 * mechanisms of names[0] as bits (1 << mechanism) instead. Returns the exit status. */
static int user_describe(struct user_opts *o, unsigned *mechs)
{
    struct kmsg_describe_user_scram_credentials_request_user_name *names =
        calloc((size_t)o->nnames + 1, sizeof(*names));
    if (names == NULL)
        return CLI_EXIT_FAIL;
    for (int i = 0; i < o->nnames; i++)
        names[i].name = (struct kstr){o->names[i], (int32_t)strlen(o->names[i])};
    struct kmsg_describe_user_scram_credentials_request req;
    kmsg_describe_user_scram_credentials_request_init(&req);
    req.users.n = o->nnames > 0 ? o->nnames : -1;
    req.users.v = names;
    struct kmsg_describe_user_scram_credentials_response resp;
    kmsg_describe_user_scram_credentials_response_init(&resp);
    struct arena arena;
    arena_init(&arena, 0);
    uint8_t *buf = NULL;
    int rc = CLI_EXIT_UNAVAILABLE;
    if (user_call(o, KPROTO_API_DESCRIBE_USER_SCRAM_CREDENTIALS, &req, &resp, &buf, &arena) == 0) {
        rc = resp.error_code ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        if (resp.error_code)
            cli_error(&o->c, "%s", kafka_error_name(resp.error_code));
        for (int32_t i = 0; rc == CLI_EXIT_OK && i < resp.results.n; i++) {
            const struct
                kmsg_describe_user_scram_credentials_response_describe_user_scram_credentials_result
                    *r = &resp.results.v[i];
            if (r->error_code != 0) {
                cli_error(&o->c, "%.*s: %s", r->user.len, r->user.ptr,
                          r->error_code == KAFKA_ERR_RESOURCE_NOT_FOUND
                              ? "no such user"
                              : kafka_error_name(r->error_code));
                rc = CLI_EXIT_FAIL;
                continue;
            }
            if (mechs == NULL)
                printf("%.*s", r->user.len, r->user.ptr);
            for (int32_t j = 0; j < r->credential_infos.n; j++) {
                int8_t m = r->credential_infos.v[j].mechanism;
                if (mechs != NULL && m >= 0 && m < 8)
                    *mechs |= 1u << m;
                else if (mechs == NULL)
                    printf("%s%s (%d iterations)", j ? ", " : "  ", user_mech_name(m),
                           r->credential_infos.v[j].iterations);
            }
            if (mechs == NULL)
                printf("\n");
        }
    }
    free(buf);
    free(names);
    arena_free(&arena);
    return rc;
}

static int user_delete(struct user_opts *o)
{
    if (o->nnames != 1)
        return cli_usage_error(&o->c, "delete takes one user NAME");
    unsigned mechs = 0;
    if (o->mechanism) {
        int8_t m = user_mech_of(o->mechanism);
        if (m == 0)
            return cli_usage_error(&o->c, "unknown mechanism '%s' (SCRAM-SHA-256, SCRAM-SHA-512)",
                                   o->mechanism);
        mechs = 1u << m;
    } else {
        int rc = user_describe(o, &mechs);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    /* Kafka refuses one user twice in a request, so one request per mechanism. */
    int rc = CLI_EXIT_OK;
    for (int8_t m = USER_MECH_SHA256; m <= USER_MECH_SHA512 && rc == CLI_EXIT_OK; m++) {
        if (!(mechs & (1u << m)))
            continue;
        struct kmsg_alter_user_scram_credentials_request_scram_credential_deletion del = {
            {o->names[0], (int32_t)strlen(o->names[0])}, m};
        struct kmsg_alter_user_scram_credentials_request req;
        kmsg_alter_user_scram_credentials_request_init(&req);
        req.deletions.n = 1;
        req.deletions.v = &del;
        char done[64];
        snprintf(done, sizeof(done), "deleted %s of", user_mech_name(m));
        rc = user_alter(o, &req, done);
    }
    return rc;
}

static int user_list(struct user_opts *o)
{
    return user_describe(o, NULL);
}

int cli_user_main(int argc, char **argv)
{
    static const struct {
        const char *action;
        int (*run)(struct user_opts *);
    } actions[] = {{"add", user_add}, {"list", user_list}, {"delete", user_delete}};
    struct user_opts o;
    memset(&o, 0, sizeof(o));
    cli_common_init(&o.c, "gregor user");
    int rc = cli_options_want_action(&user_command, argc, argv);
    if (rc >= 0)
        return rc;
    int (*run)(struct user_opts *) = NULL;
    static char name[64];
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        if (strcmp(argv[1], actions[i].action) == 0)
            run = actions[i].run;
    if (!run)
        return cli_usage_error(&o.c, "unknown action '%s' (add, list, delete)", argv[1]);
    snprintf(name, sizeof(name), "gregor user %s", argv[1]);
    o.c.name = name;
    rc = cli_options_parse(&user_command, &o, &o.c, argc - 1, argv + 1);
    if (rc >= 0)
        return rc;
    o.names = argv + 1 + optind;
    o.nnames = argc - 1 - optind;
    rc = run(&o);
    if (o.connected)
        controller_client_close(&o.cc);
    return rc;
}
