/* security/scram_client.c: RFC 7677's SCRAM-SHA-256 example from the client's side, a round
 * trip against the server side for both hashes, and the refusals. */
#include <errno.h>
#include <string.h>

#include "security/scram.h"
#include "security/scram_client.h"
#include "test.h"

#define M(s) (const uint8_t *)(s), strlen(s)

/* RFC 7677 section 3: user "user", password "pencil". */
static const char rfc_server_first[] =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char rfc_client_final[] =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char rfc_server_final[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

TEST(test_scram_client_reproduces_the_rfc7677_example)
{
    struct scram_client x;
    char out[SCRAM_MSG_MAX];
    CHECK_EQ_INT(scram_client_first(&x, SCRAM_SHA_256, "user", out, sizeof(out)), 0);
    CHECK(strncmp(out, "n,,n=user,r=", 12) == 0);
    /* The example's nonce instead of a random one. */
    strcpy(x.nonce, "rOprNGfwEbeRWgbNEkqO");
    strcpy(x.client_first_bare, "n=user,r=rOprNGfwEbeRWgbNEkqO");
    CHECK_EQ_INT(scram_client_final(&x, "pencil", M(rfc_server_first), out, sizeof(out)), 0);
    CHECK(strcmp(out, rfc_client_final) == 0);
    CHECK_EQ_INT(scram_client_verify(&x, M(rfc_server_final)), 0);
    CHECK_EQ_INT(scram_client_verify(&x, M("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")),
                 -EACCES);
    CHECK_EQ_INT(scram_client_verify(&x, M("e=invalid-proof")), -EACCES);
}

/* One exchange with the server side; returns the server's verdict on the proof. */
static int round_trip(enum scram_hash h, const char *user, const char *stored_pw,
                      const char *client_pw, int *client_verdict)
{
    struct scram_credential cred;
    if (scram_credential_derive(h, stored_pw, 4096, &cred) != 0)
        return -EIO;
    struct scram_client c;
    struct scram_exchange s;
    memset(&s, 0, sizeof(s));
    char cf[SCRAM_MSG_MAX], cfin[SCRAM_MSG_MAX], sfin[SCRAM_MSG_MAX];
    if (scram_client_first(&c, h, user, cf, sizeof(cf)) != 0 ||
        scram_parse_client_first(&s, h, M(cf)) != 0 || strcmp(s.user, user) != 0 ||
        scram_server_first(&s, &cred) != 0 ||
        scram_client_final(&c, client_pw, M(s.server_first), cfin, sizeof(cfin)) != 0)
        return -EINVAL;
    int rc = scram_server_final(&s, &cred, M(cfin), sfin, sizeof(sfin));
    *client_verdict = rc == 0 ? scram_client_verify(&c, M(sfin)) : -1;
    return rc;
}

TEST(test_scram_client_round_trips_with_the_server_for_both_hashes)
{
    int verdict = -1;
    CHECK_EQ_INT(round_trip(SCRAM_SHA_256, "broker", "s3cret", "s3cret", &verdict), 0);
    CHECK_EQ_INT(verdict, 0);
    CHECK_EQ_INT(round_trip(SCRAM_SHA_512, "a,b=c", "pw", "pw", &verdict), 0);
    CHECK_EQ_INT(verdict, 0);
    CHECK_EQ_INT(round_trip(SCRAM_SHA_512, "broker", "s3cret", "wrong", &verdict), -EACCES);
}

TEST(test_scram_client_refuses_a_bad_server_first)
{
    struct scram_client x;
    char out[SCRAM_MSG_MAX];
    CHECK_EQ_INT(scram_client_first(&x, SCRAM_SHA_256, "user", out, sizeof(out)), 0);
    /* A nonce that does not extend ours, too few iterations, missing salt, garbage. */
    CHECK_EQ_INT(scram_client_final(&x, "pw", M("r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
                                    out, sizeof(out)),
                 -EINVAL);
    char msg[SCRAM_MSG_MAX];
    snprintf(msg, sizeof(msg), "r=%sxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1", x.nonce);
    CHECK_EQ_INT(scram_client_final(&x, "pw", M(msg), out, sizeof(out)), -EINVAL);
    snprintf(msg, sizeof(msg), "r=%sxyz,i=4096", x.nonce);
    CHECK_EQ_INT(scram_client_final(&x, "pw", M(msg), out, sizeof(out)), -EINVAL);
    CHECK_EQ_INT(scram_client_final(&x, "pw", M("\x01\x02garbage"), out, sizeof(out)), -EINVAL);
}

TEST_MAIN
