/*
 * ssl.principal.mapping.rules, as Kafka's SslPrincipalMapper reads and applies them (see
 * principal_mapper.h). The rule text is split and parsed with Kafka's own two regular
 * expressions (RULE_SPLITTER, RULE_PARSER) run the way java.util.regex.Matcher.find() runs them,
 * so odd texts ("RULE:,RULE:,/,RULE:,\//U", empty rules between commas, trailing junk) split and
 * fail exactly as in Kafka. A rule's replacement is first passed through Kafka's
 * escapeLiteralBackReferences (a $N beyond the pattern's groups becomes a literal "$N") and then
 * expanded as Matcher.appendReplacement does, inside a replaceAll loop with Java's rule for
 * empty matches (the next search starts one character further).
 *
 * Invariant: every rule that is not DEFAULT has a compiled pattern.
 */
#include "security/principal_mapper.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <assert.h>
#include <errno.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Kafka's RULE_PATTERN and RULE_SPLITTER, character for character (Java and C string literals
 * escape alike). Groups: 1 DEFAULT, 2 pattern, 4 replacement, 6 L/U, 7 anything else. */
#define MAPPER_RULE_PATTERN                                                                        \
    "(DEFAULT)|RULE:((\\\\.|[^\\\\/])*)/((\\\\.|[^\\\\/])*)/([LU]?).*?|(.*?)"
#define MAPPER_RULE_SPLITTER "\\s*(" MAPPER_RULE_PATTERN ")\\s*(,\\s*|$)"

struct mapping_rule {
    bool is_default;
    bool lower, upper;
    char *pattern;     /* as written (describe), NULL for DEFAULT */
    char *replacement; /* as written */
    pcre2_code *re;
    uint32_t groups; /* capturing groups of re */
};

struct principal_mapper {
    int n;
    struct mapping_rule *rules;
};

/* Output with a fixed capacity; overflow is remembered, not written. */
struct sbuf {
    char *p;
    size_t len, cap;
    bool overflow;
};

static void sbuf_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->overflow || b->len + n >= b->cap) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static pcre2_code *mapper_compile(const char *pattern, size_t len, char *err, size_t errlen)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (cc == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* Java's '.' and '$' know every line terminator, not only \n. */
    pcre2_set_newline(cc, PCRE2_NEWLINE_ANY);
    int code;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF, &code, &off, cc);
    pcre2_compile_context_free(cc);
    if (re == NULL) {
        char msg[160];
        pcre2_get_error_message(code, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(err, errlen, "invalid pattern `%.*s`: %s near index %zu", (int)len, pattern, msg,
                 (size_t)off);
    }
    return re;
}

/* Java's Matcher.find() from `*last` after a match [*first, *last): the next search starts at
 * the end of the previous match, one character further when that match was empty. Returns the
 * match count (> 0) or a PCRE2 error / PCRE2_ERROR_NOMATCH. */
static int mapper_find(const pcre2_code *re, const char *s, size_t len, size_t *first, size_t *last,
                       pcre2_match_data *md)
{
    size_t from = *last;
    if (from == *first) {
        from++;
        while (from < len && ((unsigned char)s[from] & 0xC0) == 0x80)
            from++; /* one character, not one byte */
    }
    if (from > len)
        return PCRE2_ERROR_NOMATCH;
    int rc = pcre2_match(re, (PCRE2_SPTR)s, len, from, 0, md, NULL);
    if (rc > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        *first = ov[0];
        *last = ov[1];
    }
    return rc;
}

static bool ov_set(const PCRE2_SIZE *ov, int g)
{
    return ov[2 * g] != PCRE2_UNSET;
}

static char *dup_range(const char *s, size_t a, size_t b)
{
    char *d = malloc(b - a + 1);
    if (d != NULL) {
        memcpy(d, s + a, b - a);
        d[b - a] = '\0';
    }
    return d;
}

/* One rule's text (a group 1 of the splitter) into r. Returns 1 for a rule, 0 for an empty
 * (ignored) rule, -EINVAL with err set. */
static int mapper_parse_rule(const pcre2_code *parser, pcre2_match_data *md, const char *rule,
                             struct mapping_rule *r, char *err, size_t errlen)
{
    size_t len = strlen(rule);
    int rc = pcre2_match(parser, (PCRE2_SPTR)rule, len, 0, PCRE2_ANCHORED, md, NULL);
    if (rc <= 0) {
        snprintf(err, errlen, "Invalid rule: %s", rule);
        return -EINVAL;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    if (ov[1] != len) {
        snprintf(err, errlen, "Invalid rule: `%s`, unmatched substring: `%s`", rule, rule + ov[1]);
        return -EINVAL;
    }
    if (ov_set(ov, 1)) {
        r->is_default = true;
        return 1;
    }
    if (!ov_set(ov, 2))
        return 0; /* empty rules are ignored */
    r->pattern = dup_range(rule, ov[4], ov[5]);
    r->replacement = dup_range(rule, ov[8], ov[9]);
    if (r->pattern == NULL || r->replacement == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    r->lower = ov[13] > ov[12] && rule[ov[12]] == 'L';
    r->upper = ov[13] > ov[12] && rule[ov[12]] == 'U';
    r->re = mapper_compile(r->pattern, strlen(r->pattern), err, errlen);
    if (r->re == NULL)
        return -EINVAL;
    pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &r->groups);
    return 1;
}

static void mapper_rule_free(struct mapping_rule *r)
{
    free(r->pattern);
    free(r->replacement);
    pcre2_code_free(r->re);
}

/* Splits the trimmed text with RULE_SPLITTER and parses each piece into m. */
static int mapper_parse_all(struct principal_mapper *m, const char *text, size_t len, char *err,
                            size_t errlen)
{
    pcre2_code *splitter = mapper_compile(MAPPER_RULE_SPLITTER, PCRE2_ZERO_TERMINATED, err, errlen);
    pcre2_code *parser = mapper_compile(MAPPER_RULE_PATTERN, PCRE2_ZERO_TERMINATED, err, errlen);
    pcre2_match_data *md = splitter ? pcre2_match_data_create_from_pattern(splitter, NULL) : NULL;
    pcre2_match_data *pmd = parser ? pcre2_match_data_create_from_pattern(parser, NULL) : NULL;
    int rc = (md && pmd) ? 0 : -ENOMEM;
    size_t first = SIZE_MAX, last = 0;
    while (rc == 0 && mapper_find(splitter, text, len, &first, &last, md) > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        char *piece = dup_range(text, ov[2], ov[3]);
        struct mapping_rule *grown = realloc(m->rules, (size_t)(m->n + 1) * sizeof(*grown));
        if (piece == NULL || grown == NULL) {
            free(piece);
            rc = -ENOMEM;
            break;
        }
        m->rules = grown;
        m->rules[m->n] = (struct mapping_rule){0};
        int prc = mapper_parse_rule(parser, pmd, piece, &m->rules[m->n], err, errlen);
        free(piece);
        if (prc > 0) {
            m->n++;
        } else if (prc < 0) {
            mapper_rule_free(&m->rules[m->n]); /* what it had built before failing */
            rc = prc;
        }
    }
    pcre2_match_data_free(md);
    pcre2_match_data_free(pmd);
    pcre2_code_free(splitter);
    pcre2_code_free(parser);
    return rc;
}

int principal_mapper_parse(const char *rules, struct principal_mapper **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    /* String.trim(): every character up to U+0020 at either end. */
    size_t a = 0, b = strlen(rules);
    while (a < b && (unsigned char)rules[a] <= ' ')
        a++;
    while (b > a && (unsigned char)rules[b - 1] <= ' ')
        b--;
    struct principal_mapper *m = calloc(1, sizeof(*m));
    char *text = dup_range(rules, a, b);
    if (m == NULL || text == NULL) {
        free(m);
        free(text);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = mapper_parse_all(m, text, b - a, err, errlen);
    free(text);
    if (rc != 0) {
        principal_mapper_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void principal_mapper_free(struct principal_mapper *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < m->n; i++)
        mapper_rule_free(&m->rules[i]);
    free(m->rules);
    free(m);
}

/* Kafka's escapeLiteralBackReferences: each "$N" of the original replacement whose number (cut
 * down digit by digit while above the group count and >= 10) is still above the group count gets
 * a backslash before its '$'. As in Kafka the positions come from the original text and are
 * applied to the text being edited. Returns a malloc'd string, or NULL with *rc set. */
static char *mapper_escape_backrefs(const char *orig, uint32_t groups, int *rc)
{
    size_t olen = strlen(orig);
    char *v = malloc(2 * olen + 1);
    if (v == NULL) {
        *rc = -ENOMEM;
        return NULL;
    }
    memcpy(v, orig, olen + 1);
    if (groups == 0)
        return v;
    size_t vlen = olen;
    for (size_t i = 0; i < olen; i++) {
        if (orig[i] != '$' || orig[i + 1] < '0' || orig[i + 1] > '9')
            continue;
        size_t gs = i + 1, ge = gs;
        while (ge < olen && orig[ge] >= '0' && orig[ge] <= '9')
            ge++;
        i = ge - 1;
        if (orig[gs] == '0')
            continue;
        int64_t idx = 0;
        for (size_t k = gs; k < ge; k++) {
            idx = idx * 10 + (orig[k] - '0');
            if (idx > INT32_MAX) { /* Integer.parseInt throws */
                free(v);
                *rc = -EINVAL;
                return NULL;
            }
        }
        while (idx > groups && idx >= 10)
            idx /= 10;
        if (idx > groups) {
            assert(gs - 1 <= vlen);
            memmove(v + gs, v + gs - 1, vlen - (gs - 1) + 1);
            v[gs - 1] = '\\';
            vlen++;
        }
    }
    return v;
}

/* Length of the UTF-8 character at s (1 for a stray byte). */
static size_t utf8_len(const char *s)
{
    unsigned char c = (unsigned char)*s;
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    for (size_t k = 1; k < n; k++)
        if (s[k] == '\0')
            return k;
    return n;
}

/* Matcher.appendReplacement's expansion of `rep` for the match in ov: "\x" is x, "$N" the
 * largest group number that exists (its first digit always taken), "${name}" a named group; an
 * unset group adds nothing. Returns 0 or -EINVAL with err (Java's exception text). */
static int mapper_expand(const pcre2_code *re, uint32_t groups, const char *rep, const char *dn,
                         const PCRE2_SIZE *ov, struct sbuf *out, char *err, size_t errlen)
{
    for (size_t i = 0; rep[i] != '\0';) {
        if (rep[i] == '\\') {
            i++;
            if (rep[i] == '\0') {
                snprintf(err, errlen, "character to be escaped is missing");
                return -EINVAL;
            }
            size_t n = utf8_len(rep + i);
            sbuf_put(out, rep + i, n);
            i += n;
            continue;
        }
        if (rep[i] != '$') {
            size_t n = utf8_len(rep + i);
            sbuf_put(out, rep + i, n);
            i += n;
            continue;
        }
        i++;
        if (rep[i] == '\0') {
            snprintf(err, errlen, "Illegal group reference: group index is missing");
            return -EINVAL;
        }
        int64_t ref;
        if (rep[i] == '{') {
            size_t s = ++i;
            while ((rep[i] >= 'a' && rep[i] <= 'z') || (rep[i] >= 'A' && rep[i] <= 'Z') ||
                   (rep[i] >= '0' && rep[i] <= '9'))
                i++;
            if (i == s || rep[i] != '}' || (rep[s] >= '0' && rep[s] <= '9')) {
                snprintf(err, errlen, "illegal named capturing group reference in `%s`", rep);
                return -EINVAL;
            }
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(i - s), rep + s);
            int g = pcre2_substring_number_from_name(re, (PCRE2_SPTR)name);
            if (g < 0) {
                snprintf(err, errlen, "No group with name {%s}", name);
                return -EINVAL;
            }
            ref = g;
            i++;
        } else {
            if (rep[i] < '0' || rep[i] > '9') {
                snprintf(err, errlen, "Illegal group reference");
                return -EINVAL;
            }
            ref = rep[i++] - '0';
            while (rep[i] >= '0' && rep[i] <= '9' && ref * 10 + (rep[i] - '0') <= groups)
                ref = ref * 10 + (rep[i++] - '0');
            if (ref > groups) {
                snprintf(err, errlen, "No group %lld", (long long)ref);
                return -EINVAL;
            }
        }
        if (ov_set(ov, (int)ref))
            sbuf_put(out, dn + ov[2 * ref], ov[2 * ref + 1] - ov[2 * ref]);
    }
    return 0;
}

/* String.replaceAll(pattern, rep) on dn into out. */
static int mapper_replace_all(const struct mapping_rule *r, const char *rep, const char *dn,
                              size_t len, pcre2_match_data *md, struct sbuf *out, char *err,
                              size_t errlen)
{
    size_t first = SIZE_MAX, last = 0, appended = 0;
    int rc;
    while ((rc = mapper_find(r->re, dn, len, &first, &last, md)) > 0) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        sbuf_put(out, dn + appended, ov[0] - appended);
        int erc = mapper_expand(r->re, r->groups, rep, dn, ov, out, err, errlen);
        if (erc != 0)
            return erc;
        appended = ov[1];
    }
    if (rc != PCRE2_ERROR_NOMATCH) {
        snprintf(err, errlen, "pattern match failed (%d)", rc);
        return -EINVAL;
    }
    sbuf_put(out, dn + appended, len - appended);
    return 0;
}

/* One rule on dn: 1 when it applies (name in out), 0 when its pattern does not match the whole
 * subject, negative on an error. */
static int mapper_rule_apply(const struct mapping_rule *r, const char *dn, struct sbuf *out,
                             char *err, size_t errlen)
{
    size_t len = strlen(dn);
    if (r->is_default) {
        sbuf_put(out, dn, len);
        return 1;
    }
    assert(r->re != NULL);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->re, NULL);
    if (md == NULL)
        return -ENOMEM;
    int rc =
        pcre2_match(r->re, (PCRE2_SPTR)dn, len, 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, md, NULL);
    if (rc <= 0) {
        pcre2_match_data_free(md);
        return 0;
    }
    int erc = 0;
    char *rep = mapper_escape_backrefs(r->replacement, r->groups, &erc);
    if (rep == NULL) {
        pcre2_match_data_free(md);
        snprintf(err, errlen, "invalid group number in replacement `%s`", r->replacement);
        return erc;
    }
    rc = mapper_replace_all(r, rep, dn, len, md, out, err, errlen);
    free(rep);
    pcre2_match_data_free(md);
    if (rc != 0)
        return rc;
    /* toLowerCase/toUpperCase(Locale.ENGLISH); only ASCII letters change here. */
    for (size_t i = 0; i < out->len && (r->lower || r->upper); i++) {
        char c = out->p[i];
        if (r->lower && c >= 'A' && c <= 'Z')
            out->p[i] = (char)(c - 'A' + 'a');
        else if (r->upper && c >= 'a' && c <= 'z')
            out->p[i] = (char)(c - 'a' + 'A');
    }
    return 1;
}

int principal_mapper_map(const struct principal_mapper *m, const char *dn, char *out, size_t outlen,
                         char *err, size_t errlen)
{
    assert(outlen > 0);
    for (int i = 0; i < m->n; i++) {
        struct sbuf b = {.p = out, .cap = outlen};
        out[0] = '\0';
        int rc = mapper_rule_apply(&m->rules[i], dn, &b, err, errlen);
        if (rc < 0)
            return rc;
        if (rc == 0)
            continue;
        if (b.overflow) {
            snprintf(err, errlen, "mapped name longer than %zu bytes", outlen - 1);
            return -ENAMETOOLONG;
        }
        return 0;
    }
    char rules[512];
    principal_mapper_describe(m, rules, sizeof(rules));
    snprintf(err, errlen, "No rules apply to %s, rules %s", dn, rules);
    return -ENOENT;
}

void principal_mapper_describe(const struct principal_mapper *m, char *buf, size_t len)
{
    assert(len > 0);
    struct sbuf b = {.p = buf, .cap = len};
    buf[0] = '\0';
    sbuf_put(&b, "[", 1);
    for (int i = 0; i < m->n; i++) {
        const struct mapping_rule *r = &m->rules[i];
        if (i > 0)
            sbuf_put(&b, ", ", 2);
        if (r->is_default) {
            sbuf_put(&b, "DEFAULT", 7);
            continue;
        }
        sbuf_put(&b, "RULE:", 5);
        sbuf_put(&b, r->pattern, strlen(r->pattern));
        sbuf_put(&b, "/", 1);
        sbuf_put(&b, r->replacement, strlen(r->replacement));
        if (r->lower)
            sbuf_put(&b, "/L", 2);
        else if (r->upper)
            sbuf_put(&b, "/U", 2);
    }
    sbuf_put(&b, "]", 1);
}
