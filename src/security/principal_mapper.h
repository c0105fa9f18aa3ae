/*
 * ssl.principal.mapping.rules (KIP-371): maps a client certificate's subject, in the RFC 2253
 * form Java's X500Principal.getName() prints, to the name of the principal User:NAME.
 *
 * Kafka's syntax and semantics: a comma-separated list of `DEFAULT` (the subject unchanged) and
 * `RULE:pattern/replacement/[LU]` (when the Java regex `pattern` matches the whole subject, the
 * subject with every match of `pattern` replaced by `replacement`, whose $N are groups and \x
 * is a literal x; L lower-cases, U upper-cases); the first rule that applies gives the name, and
 * a subject no rule applies to fails the connection. Patterns are compiled with PCRE2, whose
 * syntax and backtracking semantics match java.util.regex for everything Kafka's rules use
 * (lazy quantifiers, classes, \w \d \s, groups, anchors).
 *
 * A mapper is built once at start-up, read-only afterwards: any thread may map with it.
 */
#ifndef GREGOR_SECURITY_PRINCIPAL_MAPPER_H
#define GREGOR_SECURITY_PRINCIPAL_MAPPER_H

#include <stddef.h>

struct principal_mapper;

/* Parses `rules` (Kafka's text). Returns 0 and *out, or -EINVAL with the reason in err ("Invalid
 * rule: `X`, unmatched substring: `Y`", a pattern's compile error). The caller frees *out. */
int principal_mapper_parse(const char *rules, struct principal_mapper **out, char *err,
                           size_t errlen);

void principal_mapper_free(struct principal_mapper *m);

/* The name the rules give `dn` (RFC 2253), NUL-terminated in out. Returns 0; -ENOENT when no
 * rule applies; -EINVAL when a rule's replacement is invalid for the match (Java throws there
 * too, and Kafka closes the connection); -ENAMETOOLONG when out is too small. err says why. */
int principal_mapper_map(const struct principal_mapper *m, const char *dn, char *out, size_t outlen,
                         char *err, size_t errlen);

/* Kafka's toString() of the rules ("[RULE:^CN=(.*?),.*$/$1/L, DEFAULT]"), for logs and tests. */
void principal_mapper_describe(const struct principal_mapper *m, char *buf, size_t len);

#endif
