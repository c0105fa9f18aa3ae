/*
 * Fuzz target: SASL messages a client sends before it is authenticated, the broker's only
 * input from an unauthenticated peer besides frame sizes: SCRAM client-first and client-final
 * (security/scram.c), and JAAS text (security/credentials.c, start-up input).
 *
 * The first input byte picks the hash; the rest is split at the first NUL into a client-first
 * and a client-final message. Properties: no crash or sanitizer report; a client-first that
 * parses yields a NUL-terminated user name and nonce; a client-final is accepted only with the
 * right proof, which random bytes never carry (so acceptance would mean a broken check).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "security/credentials.h"
#include "security/scram.h"

static struct scram_credential creds[2];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const uint8_t salt[SCRAM_SALT_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    scram_credential_from_salt(SCRAM_SHA_256, "pencil", salt, 16, &creds[0]);
    scram_credential_from_salt(SCRAM_SHA_512, "pencil", salt, 16, &creds[1]);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    int h = data[0] & 1;
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    const uint8_t *nul = memchr(msg, '\0', len);
    size_t first_len = nul ? (size_t)(nul - msg) : len;
    struct scram_exchange x;
    if (scram_parse_client_first(&x, h ? SCRAM_SHA_512 : SCRAM_SHA_256, msg, first_len) == 0) {
        FUZZ_CHECK(memchr(x.user, '\0', sizeof(x.user)) && memchr(x.nonce, '\0', sizeof(x.nonce)),
                   "unterminated user or nonce");
        if (scram_server_first(&x, &creds[h]) == 0 && nul) {
            char out[SCRAM_MSG_MAX];
            int rc =
                scram_server_final(&x, &creds[h], nul + 1, len - first_len - 1, out, sizeof(out));
            FUZZ_CHECK(rc != 0, "a random client-final was accepted");
        }
    }
    /* The same bytes as JAAS text. */
    char text[4097];
    memcpy(text, msg, len);
    text[len] = '\0';
    struct credential_store s;
    credential_store_init(&s);
    char err[128];
    memset(err, 'x', sizeof(err));
    if (len < 256 && credential_store_add_jaas(&s, text, err, sizeof(err)) != 0)
        FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL, "error not terminated");
    credential_store_free(&s);
    return 0;
}
