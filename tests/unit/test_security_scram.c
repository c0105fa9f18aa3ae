/* security/scram.c and security/credentials.c: RFC 7677's SCRAM-SHA-256 example exchange,
 * the refusals, and Kafka's JAAS option syntax. */
#include <errno.h>
#include <string.h>

#include "security/credentials.h"
#include "security/scram.h"
#include "test.h"

#define M(s) (const uint8_t *)(s), strlen(s)

/* RFC 7677 section 3: user "user", password "pencil". */
static const char rfc_client_first[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char rfc_nonce[] = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char rfc_server_first[] =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char rfc_client_final[] =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char rfc_server_final[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
static const uint8_t rfc_salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                     0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};

/* The exchange as the server would be after sending the RFC's server-first message. */
static int rfc_exchange(struct scram_exchange *x, struct scram_credential *cred,
                        const char *password)
{
    int rc = scram_credential_from_salt(SCRAM_SHA_256, password, rfc_salt, 4096, cred);
    if (rc == 0)
        rc = scram_parse_client_first(x, SCRAM_SHA_256, M(rfc_client_first));
    snprintf(x->nonce, sizeof(x->nonce), "%s", rfc_nonce);
    snprintf(x->server_first, sizeof(x->server_first), "%s", rfc_server_first);
    return rc;
}

TEST(test_scram_sha256_rfc7677_example_verifies)
{
    struct scram_exchange x;
    struct scram_credential cred;
    CHECK_EQ_INT(rfc_exchange(&x, &cred, "pencil"), 0);
    CHECK(strcmp(x.user, "user") == 0);
    char out[SCRAM_MSG_MAX];
    CHECK_EQ_INT(scram_server_final(&x, &cred, M(rfc_client_final), out, sizeof(out)), 0);
    CHECK(strcmp(out, rfc_server_final) == 0);
}

TEST(test_scram_wrong_password_is_eacces)
{
    struct scram_exchange x;
    struct scram_credential cred;
    CHECK_EQ_INT(rfc_exchange(&x, &cred, "pencil2"), 0);
    char out[SCRAM_MSG_MAX];
    CHECK_EQ_INT(scram_server_final(&x, &cred, M(rfc_client_final), out, sizeof(out)), -EACCES);
}

TEST(test_scram_refuses_wrong_nonce_and_channel_binding)
{
    struct scram_exchange x;
    struct scram_credential cred;
    CHECK_EQ_INT(rfc_exchange(&x, &cred, "pencil"), 0);
    char out[SCRAM_MSG_MAX];
    const char *bad_nonce = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
                            "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    CHECK_EQ_INT(scram_server_final(&x, &cred, M(bad_nonce), out, sizeof(out)), -EINVAL);
    const char *bad_cb = "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                         "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    CHECK_EQ_INT(scram_server_final(&x, &cred, M(bad_cb), out, sizeof(out)), -EINVAL);
    CHECK_EQ_INT(scram_server_final(&x, &cred, M("c=biws"), out, sizeof(out)), -EINVAL);
}

TEST(test_scram_client_first_parsing)
{
    struct scram_exchange x;
    CHECK_EQ_INT(scram_parse_client_first(&x, SCRAM_SHA_512, M("n,,n=a=2Cb=3Dc,r=xyz")), 0);
    CHECK(strcmp(x.user, "a,b=c") == 0);
    CHECK(strcmp(x.gs2_header, "n,,") == 0);
    CHECK_EQ_INT(scram_parse_client_first(&x, SCRAM_SHA_512, M("n,a=bob,n=bob,r=xyz")), 0);
    CHECK_EQ_INT(scram_parse_client_first(&x, SCRAM_SHA_512, M("n,a=eve,n=bob,r=xyz")), -EINVAL);
    CHECK_EQ_INT(scram_parse_client_first(&x, SCRAM_SHA_512, M("p=tls-unique,,n=bob,r=xyz")),
                 -EINVAL);
    CHECK_EQ_INT(scram_parse_client_first(&x, SCRAM_SHA_512, M("n,,n=bob,r=x,tokenauth=true")),
                 -EINVAL);
    CHECK_EQ_INT(scram_parse_client_first(&x, SCRAM_SHA_512, M("n,,n=b=2,r=x")), -EINVAL);
    CHECK_EQ_INT(scram_parse_client_first(&x, SCRAM_SHA_512, M("n,,r=x")), -EINVAL);
    CHECK_EQ_INT(scram_parse_client_first(&x, SCRAM_SHA_512, M("")), -EINVAL);
}

TEST(test_credentials_from_jaas_check_passwords)
{
    struct credential_store s;
    credential_store_init(&s);
    char err[200];
    const char *jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required\n"
                       "  username=\"admin\" password=\"admin-secret\"\n"
                       "  user_admin=\"admin-secret\" user_alice=\"al\\\"ice\";";
    CHECK_EQ_INT(credential_store_add_jaas(&s, jaas, err, sizeof(err)), 0);
    CHECK(s.n == 2);
    const struct credential_user *u = credential_store_find(&s, "alice");
    CHECK(u != NULL);
    CHECK(scram_credential_check_password(&u->sha512, "al\"ice"));
    CHECK(!scram_credential_check_password(&u->sha512, "alice"));
    CHECK(credential_store_find(&s, "username") == NULL);
    CHECK_EQ_INT(credential_store_add_jaas(&s, "Module required user_x=\"y\"", err, sizeof(err)),
                 -EINVAL); /* no ';' */
    CHECK_EQ_INT(credential_store_add_jaas(&s, "Module user_x=\"y\";", err, sizeof(err)), -EINVAL);
    credential_store_free(&s);
}
TEST_MAIN
