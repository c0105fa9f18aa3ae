/*
 * The credential store of a SASL listener and the two ways users get into it (see the
 * header). JAAS text is parsed as Kafka's JaasConfig reads it: a login module class, a
 * control flag, then KEY=VALUE options where a value is a token or a double-quoted string
 * with backslash escapes, ended by ';'. Only user_NAME options carry users; the others
 * (username/password: the broker's own client identity) are accepted and ignored.
 */
#include "security/credentials.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/properties.h"

void credential_store_init(struct credential_store *s)
{
    memset(s, 0, sizeof(*s));
}

void credential_store_free(struct credential_store *s)
{
    if (s->users)
        OPENSSL_cleanse(s->users, s->cap * sizeof(*s->users));
    free(s->users);
    memset(s, 0, sizeof(*s));
}

const struct credential_user *credential_store_find(const struct credential_store *s,
                                                    const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->users[i].name, name) == 0)
            return &s->users[i];
    return NULL;
}

int credential_store_add(struct credential_store *s, const char *name, const char *password)
{
    size_t nl = strlen(name);
    if (nl == 0 || nl >= sizeof(s->users[0].name))
        return -EINVAL;
    struct credential_user *u = (struct credential_user *)credential_store_find(s, name);
    if (u == NULL) {
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 8;
            struct credential_user *nu = realloc(s->users, cap * sizeof(*nu));
            if (nu == NULL)
                return -ENOMEM;
            s->users = nu;
            s->cap = cap;
        }
        u = &s->users[s->n++];
        memcpy(u->name, name, nl + 1);
    }
    int rc = scram_credential_derive(SCRAM_SHA_256, password, SCRAM_DEFAULT_ITERATIONS, &u->sha256);
    if (rc == 0)
        rc = scram_credential_derive(SCRAM_SHA_512, password, SCRAM_DEFAULT_ITERATIONS, &u->sha512);
    return rc;
}

static const char *jaas_skip_space(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

/* Reads a token (letters, digits, and . _ - $) into out; returns the end or NULL. */
static const char *jaas_token(const char *p, char *out, size_t cap)
{
    size_t k = 0;
    while (*p && (isalnum((unsigned char)*p) || strchr("._-$", *p))) {
        if (k + 1 >= cap)
            return NULL;
        out[k++] = *p++;
    }
    out[k] = '\0';
    return k > 0 ? p : NULL;
}

/* Reads a value: a double-quoted string (\" and \\ escapes) or a token. */
static const char *jaas_value(const char *p, char *out, size_t cap)
{
    if (*p != '"')
        return jaas_token(p, out, cap);
    p++;
    size_t k = 0;
    while (*p && *p != '"') {
        if (*p == '\\' && p[1])
            p++;
        if (k + 1 >= cap)
            return NULL;
        out[k++] = *p++;
    }
    if (*p != '"')
        return NULL;
    out[k] = '\0';
    return p + 1;
}

int credential_store_add_jaas(struct credential_store *s, const char *jaas, char *err,
                              size_t errlen)
{
    char module[256], flag[32], key[300], value[1024];
    const char *p = jaas_token(jaas_skip_space(jaas), module, sizeof(module));
    if (p != NULL)
        p = jaas_token(jaas_skip_space(p), flag, sizeof(flag));
    if (p == NULL) {
        snprintf(err, errlen, "expected 'LoginModuleClass required|requisite|sufficient|optional'");
        return -EINVAL;
    }
    for (p = jaas_skip_space(p); *p != ';'; p = jaas_skip_space(p)) {
        if (*p == '\0') {
            snprintf(err, errlen, "missing ';' at the end");
            return -EINVAL;
        }
        p = jaas_token(p, key, sizeof(key));
        if (p == NULL || *(p = jaas_skip_space(p)) != '=' ||
            (p = jaas_value(jaas_skip_space(p + 1), value, sizeof(value))) == NULL) {
            snprintf(err, errlen, "expected KEY=\"VALUE\" options after the control flag");
            return -EINVAL;
        }
        if (strncmp(key, "user_", 5) == 0) {
            int rc = credential_store_add(s, key + 5, value);
            OPENSSL_cleanse(value, sizeof(value));
            if (rc != 0) {
                snprintf(err, errlen, "cannot add user '%s': %s", key + 5, strerror(-rc));
                return rc;
            }
        }
    }
    return 0;
}

int credential_jaas_option(const char *jaas, const char *name, char *out, size_t cap)
{
    char module[256], flag[32], key[300];
    const char *p = jaas_token(jaas_skip_space(jaas), module, sizeof(module));
    if (p != NULL)
        p = jaas_token(jaas_skip_space(p), flag, sizeof(flag));
    for (p = p ? jaas_skip_space(p) : NULL; p && *p && *p != ';'; p = jaas_skip_space(p)) {
        p = jaas_token(p, key, sizeof(key));
        if (p == NULL || *(p = jaas_skip_space(p)) != '=' ||
            (p = jaas_value(jaas_skip_space(p + 1), out, cap)) == NULL)
            break;
        if (strcmp(key, name) == 0)
            return 0;
    }
    if (cap > 0)
        OPENSSL_cleanse(out, cap);
    return -ENOENT;
}

int credential_store_add_file(struct credential_store *s, const char *path, char *err,
                              size_t errlen)
{
    struct properties props;
    properties_init(&props);
    int bad_line = 0;
    int rc = properties_load(&props, path, &bad_line);
    if (rc == -EINVAL)
        snprintf(err, errlen, "%s:%d: expected USER=PASSWORD", path, bad_line);
    else if (rc != 0)
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(-rc));
    for (size_t i = 0; rc == 0 && i < props.n; i++) {
        rc = credential_store_add(s, props.items[i].key, props.items[i].value);
        if (rc != 0)
            snprintf(err, errlen, "%s: cannot add user '%s': %s", path, props.items[i].key,
                     strerror(-rc));
    }
    for (size_t i = 0; i < props.n; i++)
        OPENSSL_cleanse(props.items[i].value, strlen(props.items[i].value));
    properties_free(&props);
    return rc;
}
