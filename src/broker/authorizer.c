/*
 * The broker's authorizer (authorizer.h): super.users parsed at start, checks against the ACLs
 * of the metadata image.
 */
#include "broker/authorizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "broker/session.h"

struct broker_authorizer {
    struct acl_policy policy;
    char *users_buf;    /* super.users, split in place */
    const char **users; /* into users_buf */
};

int broker_authorizer_start(struct broker *b, char *err, size_t errlen)
{
    if (b->cfg.authorizer_class_name[0] == 0)
        return 0;
    struct broker_authorizer *a = calloc(1, sizeof(*a));
    size_t max = 1;
    for (const char *p = b->cfg.super_users; *p; p++)
        max += *p == ';';
    if (a != NULL) {
        a->users_buf = strdup(b->cfg.super_users);
        a->users = calloc(max, sizeof(*a->users));
    }
    if (a == NULL || a->users_buf == NULL || a->users == NULL)
        goto nomem;
    size_t n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(a->users_buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ')
            tok++;
        char *end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = 0;
        if (*tok)
            a->users[n++] = tok;
    }
    a->policy = (struct acl_policy){a->users, n, b->cfg.allow_everyone_if_no_acl_found};
    b->authz = a;
    return 0;
nomem:
    if (a != NULL) {
        free(a->users_buf);
        free(a->users);
        free(a);
    }
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

void broker_authorizer_stop(struct broker *b)
{
    if (b->authz == NULL)
        return;
    free(b->authz->users_buf);
    free(b->authz->users);
    free(b->authz);
    b->authz = NULL;
}

bool broker_authorizer_on(const struct broker *b)
{
    return b->authz != NULL;
}

/* The client's address without the port: "1.2.3.4:5678" -> "1.2.3.4", "[::1]:5" -> "::1". */
static void authorizer_host(const struct broker_req *r, char *out, size_t len)
{
    const char *peer = net_conn_peer(r->nr->conn);
    const char *colon = strrchr(peer, ':');
    size_t n = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n >= 2 && peer[0] == '[' && peer[n - 1] == ']') {
        peer++;
        n -= 2;
    }
    if (n >= len)
        n = len - 1;
    memcpy(out, peer, n);
    out[n] = 0;
}

/* What one check needs: the principal and host of r's connection and the ACLs of img (or of
 * the current image, held until authz_check_end). */
struct authz_check {
    char host[64];
    struct acl_subject subject;
    const struct metadata_image *own;
    const struct acl_binding *acls;
    size_t n;
};

static void authz_check_begin(struct broker_req *r, const struct metadata_image *img,
                              struct authz_check *c)
{
    authorizer_host(r, c->host, sizeof(c->host));
    c->subject = (struct acl_subject){session_principal(r->nr->conn), c->host};
    c->own = img ? NULL : metadata_image_acquire(r->b->ctl);
    c->acls = metadata_image_acls(img ? img : c->own, &c->n);
}

static void authz_check_end(struct authz_check *c)
{
    metadata_image_release(c->own);
}

bool broker_authorize(struct broker_req *r, const struct metadata_image *img, int resource_type,
                      const char *name, int op)
{
    const struct broker_authorizer *a = r->b->authz;
    if (a == NULL)
        return true;
    struct authz_check c;
    authz_check_begin(r, img, &c);
    bool ok = acl_authorize(&a->policy, c.acls, c.n, &c.subject, resource_type, name, op);
    authz_check_end(&c);
    return ok;
}

bool broker_authorize_subject(struct broker *b, const char *principal, const char *host,
                              const struct metadata_image *img, int resource_type, const char *name,
                              int op)
{
    const struct broker_authorizer *a = b->authz;
    if (a == NULL)
        return true;
    const struct metadata_image *own = img ? NULL : metadata_image_acquire(b->ctl);
    size_t n;
    const struct acl_binding *acls = metadata_image_acls(img ? img : own, &n);
    struct acl_subject subject = {principal, host};
    bool ok = acl_authorize(&a->policy, acls, n, &subject, resource_type, name, op);
    metadata_image_release(own);
    return ok;
}

bool broker_authorize_cluster(struct broker_req *r, int op)
{
    return broker_authorize(r, NULL, ACL_RESOURCE_CLUSTER, ACL_CLUSTER_NAME, op);
}

bool broker_authorize_any(struct broker_req *r, int resource_type, int op)
{
    const struct broker_authorizer *a = r->b->authz;
    if (a == NULL)
        return true;
    struct authz_check c;
    authz_check_begin(r, NULL, &c);
    bool ok = acl_authorize_any(&a->policy, c.acls, c.n, &c.subject, resource_type, op);
    authz_check_end(&c);
    return ok;
}

int32_t broker_authorized_operations(struct broker_req *r, const struct metadata_image *img,
                                     int resource_type, const char *name, int32_t supported)
{
    const struct broker_authorizer *a = r->b->authz;
    if (a == NULL)
        return supported;
    struct authz_check c;
    authz_check_begin(r, img, &c);
    int32_t ops = acl_authorized_operations(&a->policy, c.acls, c.n, &c.subject, resource_type,
                                            name, supported);
    authz_check_end(&c);
    return ops;
}
