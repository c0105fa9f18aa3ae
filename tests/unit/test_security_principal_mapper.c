/*
 * ssl.principal.mapping.rules (security/principal_mapper.c) against the cases Kafka's own
 * SslPrincipalMapper is specified by: valid and invalid rule texts, how a text splits into rules
 * (empty rules, whitespace, escapes, "RULE:" inside patterns), the mapping of subjects through
 * L/U, $N and escaped commas; plus what Java's replacement syntax refuses, and the RFC 2253 form
 * of certificate subjects (security/x509_name.c) as Java prints it.
 * Bad input tried: misspelt DEFAULT, missing or extra slashes, flags other than L/U, a pattern
 * that does not compile, "$" at the end of a replacement, a group that does not exist.
 */
#include <errno.h>
#include <openssl/x509.h>
#include <stdbool.h>

#include "security/principal_mapper.h"
#include "security/x509_name.h"
#include "test.h"

static bool valid(const char *rules)
{
    struct principal_mapper *m;
    char err[300];
    int rc = principal_mapper_parse(rules, &m, err, sizeof(err));
    principal_mapper_free(m);
    return rc == 0;
}

static bool splits_to(const char *rules, const char *expected)
{
    struct principal_mapper *m;
    char err[300], desc[600];
    if (principal_mapper_parse(rules, &m, err, sizeof(err)) != 0) {
        printf("  '%s': %s\n", rules, err);
        return false;
    }
    principal_mapper_describe(m, desc, sizeof(desc));
    principal_mapper_free(m);
    if (strcmp(desc, expected) != 0)
        printf("  '%s' split to %s, expected %s\n", rules, desc, expected);
    return strcmp(desc, expected) == 0;
}

/* The name rules give dn, or "!<errno>" */
static const char *mapped(const char *rules, const char *dn)
{
    static char out[300];
    struct principal_mapper *m;
    char err[600];
    if (principal_mapper_parse(rules, &m, err, sizeof(err)) != 0)
        return "!parse";
    int rc = principal_mapper_map(m, dn, out, sizeof(out), err, sizeof(err));
    principal_mapper_free(m);
    if (rc != 0)
        snprintf(out, sizeof(out), "!%d", -rc);
    return out;
}

TEST(test_principal_rules_kafka_accepts)
{
    CHECK(valid("DEFAULT"));
    CHECK(valid("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/"));
    CHECK(valid("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, DEFAULT"));
    CHECK(valid("RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/"));
    CHECK(valid("RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L"));
    CHECK(valid("RULE:^cn=(.?),ou=(.?),dc=(.?),dc=(.?)$/$1@$2/U"));
    CHECK(valid("RULE:^CN=([^,ADEFLTU,]+)(,.*|$)/$1/"));
    CHECK(valid("RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/"));
    CHECK(valid(""));
}

TEST(test_principal_rules_kafka_refuses)
{
    const char *bad[] = {"default",
                         "DEFAUL",
                         "DEFAULT/L",
                         "DEFAULT/U",
                         "RULE:CN=(.*?),OU=ServiceUsers.*/$1",
                         "rule:^CN=(.*?),OU=ServiceUsers.*$/$1/",
                         "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U",
                         "RULE:^CN=(.*?),OU=ServiceUsers.*$/L",
                         "RULE:^CN=(.*?),OU=ServiceUsers.*$/U",
                         "RULE:^CN=(.*?),OU=ServiceUsers.*$/LU",
                         "RULE:^CN=((.*$/$1/", /* does not compile */
                         "DEFAULT, RULE:x/y/X"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (valid(bad[i]))
            printf("  accepted '%s'\n", bad[i]);
        CHECK(!valid(bad[i]));
    }
    struct principal_mapper *m;
    char err[300];
    CHECK(principal_mapper_parse("RULE:^CN=(.*?)$/$1/LU", &m, err, sizeof(err)) == -EINVAL);
    CHECK(strstr(err, "unmatched substring: `U`") != NULL);
}

TEST(test_principal_rules_split_as_kafka)
{
    CHECK(splits_to("", "[]"));
    CHECK(splits_to("DEFAULT", "[DEFAULT]"));
    CHECK(splits_to("RULE://", "[RULE:/]"));
    CHECK(splits_to("RULE:/.*/", "[RULE:/.*]"));
    CHECK(splits_to("RULE:/.*/L", "[RULE:/.*/L]"));
    CHECK(splits_to("RULE://,DEFAULT", "[RULE:/, DEFAULT]"));
    CHECK(splits_to("  RULE:// ,  DEFAULT  ", "[RULE:/, DEFAULT]"));
    CHECK(splits_to("  RULE:   /     / ,  DEFAULT  ", "[RULE:   /     , DEFAULT]"));
    CHECK(splits_to("  RULE:  /     /U   ,DEFAULT  ", "[RULE:  /     /U, DEFAULT]"));
    CHECK(splits_to("  RULE:([A-Z]*)/$1/U   ,RULE:([a-z]+)/$1/,   DEFAULT  ",
                    "[RULE:([A-Z]*)/$1/U, RULE:([a-z]+)/$1, DEFAULT]"));
    CHECK(splits_to(",   , , ,      , , ,   ", "[]"));
    CHECK(splits_to(",,RULE://,,,DEFAULT,,", "[RULE:/, DEFAULT]"));
    CHECK(splits_to(",  , RULE: /   /    ,,,   DEFAULT, ,   ", "[RULE: /   , DEFAULT]"));
    CHECK(splits_to("     ,  , RULE:   /  /U    ,,  ,DEFAULT, ,", "[RULE:   /  /U, DEFAULT]"));
    CHECK(splits_to("RULE:\\/\\\\\\(\\)\\n\\t/\\/\\//", "[RULE:\\/\\\\\\(\\)\\n\\t/\\/\\/]"));
    CHECK(
        splits_to("RULE:\\**\\/+/*/L,RULE:\\/*\\**/**/", "[RULE:\\**\\/+/*/L, RULE:\\/*\\**/**]"));
    CHECK(splits_to("RULE:,RULE:,/,RULE:,\\//U,RULE:,/RULE:,/,RULE:,RULE:,/L,RULE:,/L,RULE:, "
                    "DEFAULT, /DEFAULT/,DEFAULT",
                    "[RULE:,RULE:,/,RULE:,\\//U, RULE:,/RULE:,, RULE:,RULE:,/L,RULE:,/L, RULE:, "
                    "DEFAULT, /DEFAULT, DEFAULT]"));
}

TEST(test_principal_rules_map_subjects_as_kafka)
{
    const char *rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, "
                        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, "
                        "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, "
                        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT";
    CHECK(strcmp(mapped(rules, "CN=Duke,OU=ServiceUsers,O=Org,C=US"), "duke") == 0);
    CHECK(strcmp(mapped(rules, "CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US"), "duke@sme") == 0);
    CHECK(strcmp(mapped(rules, "cn=duke,ou=sme,dc=mycp,dc=com"), "DUKE@SME") == 0);
    CHECK(strcmp(mapped(rules, "cN=duke,OU=JavaSoft,O=Sun Microsystems"), "DUKE") == 0);
    CHECK(strcmp(mapped(rules, "OU=JavaSoft,O=Sun Microsystems,C=US"),
                 "OU=JavaSoft,O=Sun Microsystems,C=US") == 0);
    CHECK(strcmp(mapped("RULE:^CN=((\\\\, *|\\w)+)(,.*|$)/$1/,DEFAULT",
                        "CN=Tkac\\, Adam,OU=ITZ,DC=geodis,DC=cz"),
                 "Tkac\\, Adam") == 0);
}

TEST(test_principal_rules_java_replacement_semantics)
{
    /* replaceAll replaces every match: (.*) also matches the empty end */
    CHECK(strcmp(mapped("RULE:(.*)/x$1/", "abc"), "xabcx") == 0);
    /* $N beyond the groups is a literal (Kafka escapes it); $12 with one group is $1 then 2 */
    CHECK(strcmp(mapped("RULE:^CN=(\\w+)$/$1@$4/", "CN=ann"), "ann@$4") == 0);
    CHECK(strcmp(mapped("RULE:^CN=(\\w+)$/$12/", "CN=ann"), "ann2") == 0);
    CHECK(strcmp(mapped("RULE:^CN=(?<who>\\w+)$/${who}!/", "CN=ann"), "ann!") == 0);
    CHECK(strcmp(mapped("RULE:^CN=(\\w+)(,OU=x)?$/$1[$2]/", "CN=ann"), "ann[]") == 0);
    /* no groups: "$1" is a reference to a missing group, which Java refuses */
    CHECK(strcmp(mapped("RULE:^CN=\\w+$/$1/", "CN=ann"), "!22") == 0);
    /* a subject no rule matches fails the connection */
    CHECK(strcmp(mapped("RULE:^CN=(\\w+),OU=a$/$1/", "CN=ann"), "!2") == 0);
    CHECK(strcmp(mapped("", "CN=ann"), "!2") == 0);
}

static X509_NAME *name_of(const char *const *kv, int n, int multi_from)
{
    X509_NAME *nm = X509_NAME_new();
    for (int i = 0; i < n; i++)
        X509_NAME_add_entry_by_txt(nm, kv[2 * i], MBSTRING_UTF8,
                                   (const unsigned char *)kv[2 * i + 1], -1, -1,
                                   i >= multi_from && i > 0 ? -1 : 0);
    return nm;
}

TEST(test_subject_rfc2253_as_java_prints_it)
{
    const char *kv[] = {"C", "US", "O", "Acme, Inc.", "OU", " ops ", "CN", "svc=1#a+b"};
    X509_NAME *nm = name_of(kv, 4, 99);
    char buf[300];
    CHECK(x509_name_rfc2253(nm, buf, sizeof(buf)) == 0);
    X509_NAME_free(nm);
    CHECK(strcmp(buf, "CN=svc\\=1\\#a\\+b,OU=\\ ops\\ ,O=Acme\\, Inc.,C=US") == 0);

    /* emailAddress has no RFC 2253 keyword in Java: dotted OID and DER in hex (IA5String) */
    const char *kv2[] = {"CN", "alice", "emailAddress", "a@b"};
    nm = name_of(kv2, 2, 99);
    CHECK(x509_name_rfc2253(nm, buf, sizeof(buf)) == 0);
    CHECK(strcmp(buf, "1.2.840.113549.1.9.1=#1603614062,CN=alice") == 0);
    CHECK(x509_name_rfc2253(nm, buf, 8) == -ENAMETOOLONG);
    X509_NAME_free(nm);

    /* a multi-valued RDN: values joined by '+' in their encoded order */
    const char *kv3[] = {"O", "org", "CN", "bob", "UID", "42"};
    nm = name_of(kv3, 3, 2);
    CHECK(x509_name_rfc2253(nm, buf, sizeof(buf)) == 0);
    X509_NAME_free(nm);
    CHECK(strcmp(buf, "CN=bob+UID=42,O=org") == 0);
}
TEST_MAIN
