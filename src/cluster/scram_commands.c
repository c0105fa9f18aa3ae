/*
 * AlterUserScramCredentials on the controller (KIP-554), with the rules and error codes of
 * Kafka's ScramControlManager.
 *
 * The constructor runs on the caller's thread: it copies names and turns each client-computed
 * SaltedPassword into StoredKey and ServerKey right away, so the command (and the metadata log)
 * never holds anything a client could log in with. Validation then works per distinct user:
 * a user named by two changes of one request is DUPLICATE_RESOURCE and nothing is done for it;
 * every other user's change is checked on its own and, when valid, emitted as one
 * METADATA_REC_SCRAM_CREDENTIAL record. Results come one per distinct user, the users of
 * deletions first (Kafka lists them in hash order; clients match results by user name).
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>

#include "cluster/commands.h"
#include "cluster/image_scram.h"
#include "security/scram.h"

_Static_assert(METADATA_SCRAM_SALT_MAX == SCRAM_SALT_MAX, "one salt bound");
_Static_assert(METADATA_SCRAM_KEY_MAX == SCRAM_MAX_HASH, "one key bound");

#define SCRAM_NAME_MAX 255 /* the SASL exchange keeps user names in 256-byte buffers */

static bool scram_mechanism_known(int8_t m)
{
    return m == METADATA_SCRAM_SHA_256 || m == METADATA_SCRAM_SHA_512;
}

/* Derives the keys of an upsertion into cs (arena memory of cmd). False only on ENOMEM. */
static bool scram_derive(struct command *cmd, struct command_scram *cs,
                         const struct controller_scram_change *c)
{
    struct scram_credential cred;
    enum scram_hash h = c->mechanism == METADATA_SCRAM_SHA_512 ? SCRAM_SHA_512 : SCRAM_SHA_256;
    if (!scram_mechanism_known(c->mechanism) || c->salt_len == 0 || c->salted_len == 0 ||
        scram_credential_from_salted_password(h, c->salted_password, c->salted_len, c->salt,
                                              c->salt_len, c->iterations, &cred) != 0)
        return true; /* refused by validation */
    size_t kl = scram_hash_len(h);
    cs->rec.salt = arena_alloc(&cmd->arena, c->salt_len);
    cs->rec.stored_key = arena_alloc(&cmd->arena, kl);
    cs->rec.server_key = arena_alloc(&cmd->arena, kl);
    if (cs->rec.salt == NULL || cs->rec.stored_key == NULL || cs->rec.server_key == NULL) {
        OPENSSL_cleanse(&cred, sizeof(cred));
        return false;
    }
    memcpy(cs->rec.salt, c->salt, c->salt_len);
    memcpy(cs->rec.stored_key, cred.stored_key, kl);
    memcpy(cs->rec.server_key, cred.server_key, kl);
    cs->rec.salt_len = (uint32_t)c->salt_len;
    cs->rec.key_len = (uint32_t)kl;
    cs->derived = true;
    OPENSSL_cleanse(&cred, sizeof(cred));
    return true;
}

struct command *command_new_alter_scram(const struct controller_scram_change *c, size_t n)
{
    struct command *cmd = command_alloc(COMMAND_ALTER_SCRAM, n);
    if (cmd == NULL)
        return NULL;
    cmd->scram = arena_calloc(&cmd->arena, n ? n : 1, sizeof(*cmd->scram));
    if (cmd->scram == NULL)
        goto err;
    for (size_t i = 0; i < n; i++) {
        struct command_scram *cs = &cmd->scram[i];
        cs->rec.name = command_strdup(cmd, c[i].name ? c[i].name : "");
        cs->rec.mechanism = (uint8_t)c[i].mechanism;
        cs->rec.remove = !c[i].upsert;
        cs->rec.iterations = c[i].iterations;
        cmd->results[i].name = cs->rec.name; /* until validation groups them by user */
        if (cs->rec.name == NULL || (c[i].upsert && !scram_derive(cmd, cs, &c[i])))
            goto err;
    }
    return cmd;
err:
    command_free(cmd);
    return NULL;
}

/* Kafka's validateScramUsernameAndMechanism, then the change's own checks. 0 or an error. */
static int16_t scram_check(const struct command_scram *cs, const struct metadata_image *scratch,
                           const char **msg)
{
    const struct metadata_rec_scram_credential *r = &cs->rec;
    if (r->name[0] == '\0') {
        *msg = "Username must not be empty";
        return KAFKA_ERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (!scram_mechanism_known((int8_t)r->mechanism)) {
        *msg = "Unknown SCRAM mechanism";
        return KAFKA_ERR_UNSUPPORTED_SASL_MECHANISM;
    }
    if (strlen(r->name) > SCRAM_NAME_MAX) {
        *msg = "Username must not be longer than 255 bytes";
        return KAFKA_ERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (r->remove) {
        if (metadata_image_scram(scratch, r->name, r->mechanism) != NULL)
            return 0;
        *msg = "Attempt to delete a user credential that does not exist";
        return KAFKA_ERR_RESOURCE_NOT_FOUND;
    }
    if (r->iterations < SCRAM_MIN_ITERATIONS) {
        *msg = "Too few iterations";
        return KAFKA_ERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (r->iterations > SCRAM_MAX_ITERATIONS) {
        *msg = "Too many iterations";
        return KAFKA_ERR_UNACCEPTABLE_CREDENTIAL;
    }
    if (!cs->derived) {
        *msg = "Salt (1 to 128 bytes) and salted password must not be empty";
        return KAFKA_ERR_UNACCEPTABLE_CREDENTIAL;
    }
    return 0;
}

/* The result slot of user `name` among the first *n_users, or a new one. */
static struct controller_topic_result *scram_result_of(struct command *cmd, const char *name,
                                                       size_t *n_users, size_t *first_change,
                                                       size_t change, bool *dup)
{
    for (size_t u = 0; u < *n_users; u++)
        if (strcmp(cmd->results[u].name, name) == 0) {
            *dup = true;
            return &cmd->results[u];
        }
    *dup = false;
    first_change[*n_users] = change;
    cmd->results[*n_users].name = name;
    return &cmd->results[(*n_users)++];
}

int command_validate_alter_scram(struct command *cmd, struct metadata_image *scratch,
                                 struct metadata_buf *out)
{
    size_t *first_change = arena_calloc(&cmd->arena, cmd->n + 1, sizeof(size_t));
    if (first_change == NULL)
        return -ENOMEM;
    size_t n_users = 0;
    /* Deletions first, as Kafka walks them: that fixes which users' results come first. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < cmd->n; i++) {
            struct command_scram *cs = &cmd->scram[i];
            if (cs->rec.remove != (pass == 0))
                continue;
            bool dup;
            struct controller_topic_result *res =
                scram_result_of(cmd, cs->rec.name, &n_users, first_change, i, &dup);
            const char *msg = NULL;
            int16_t code = dup ? KAFKA_ERR_DUPLICATE_RESOURCE : scram_check(cs, scratch, &msg);
            if (dup && res->error_code == 0)
                msg = "A user credential cannot be altered twice in the same request";
            if (code != 0 && res->error_code == 0)
                command_set_error(cmd, res, code, "%s", msg);
        }
    cmd->result.n_topics = n_users;
    int emitted = 0;
    for (size_t u = 0; u < n_users && !cmd->validate_only; u++) {
        if (cmd->results[u].error_code != 0)
            continue;
        struct metadata_record rec = {.type = METADATA_REC_SCRAM_CREDENTIAL};
        rec.scram = cmd->scram[first_change[u]].rec;
        int rc = command_emit(scratch, out, &rec);
        if (rc < 0)
            return rc;
        emitted++;
    }
    return emitted;
}
