/*
 * The ACL set of a metadata image (image.h): shared by reference between images, replaced as a
 * whole when an ACL record adds or removes a binding, so a published set never changes.
 *
 * Invariants: ids are unique within a set; every stored binding passed acl_binding_check (the
 * record decoder checks it), so readers never see an ANY or UNKNOWN code.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/image.h"

static void acls_free(struct metadata_acls *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free((char *)a->bindings[i].resource_name);
        free((char *)a->bindings[i].principal);
        free((char *)a->bindings[i].host);
    }
    free(a->bindings);
    free(a->ids);
    free(a);
}

void image_acls_release(struct metadata_acls *acls)
{
    if (acls != NULL && atomic_fetch_sub_explicit(&acls->refcount, 1, memory_order_acq_rel) == 1)
        acls_free(acls);
}

void image_acls_share(struct metadata_image *dst, const struct metadata_image *src)
{
    image_acls_release(dst->acls);
    dst->acls = src->acls;
    if (dst->acls != NULL)
        atomic_fetch_add_explicit(&dst->acls->refcount, 1, memory_order_relaxed);
}

const struct acl_binding *metadata_image_acls(const struct metadata_image *img, size_t *n)
{
    *n = img->acls ? img->acls->n : 0;
    return img->acls ? img->acls->bindings : NULL;
}

long metadata_image_acl_index(const struct metadata_image *img, const uint8_t id[METADATA_UUID_LEN])
{
    for (size_t i = 0; img->acls && i < img->acls->n; i++)
        if (memcmp(img->acls->ids[i], id, METADATA_UUID_LEN) == 0)
            return (long)i;
    return -1;
}

/* Copies binding `src` into `dst` with strings of its own; -ENOMEM leaves dst freeable. */
static int binding_copy(struct acl_binding *dst, const struct acl_binding *src)
{
    *dst = *src;
    dst->resource_name = strdup(src->resource_name);
    dst->principal = strdup(src->principal);
    dst->host = strdup(src->host);
    return dst->resource_name && dst->principal && dst->host ? 0 : -ENOMEM;
}

/* A new set: the old one without index `skip` (-1: none) plus `add` (NULL: none). */
static struct metadata_acls *acls_rebuild(const struct metadata_acls *old, long skip,
                                          const uint8_t *add_id, const struct acl_binding *add)
{
    size_t n_old = old ? old->n : 0;
    size_t cap = n_old + 1;
    struct metadata_acls *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    atomic_init(&a->refcount, 1);
    a->bindings = calloc(cap, sizeof(*a->bindings));
    a->ids = calloc(cap, sizeof(*a->ids));
    if (a->bindings == NULL || a->ids == NULL)
        goto err;
    for (size_t i = 0; i < n_old; i++) {
        if ((long)i == skip)
            continue;
        memcpy(a->ids[a->n], old->ids[i], METADATA_UUID_LEN);
        if (binding_copy(&a->bindings[a->n++], &old->bindings[i]) != 0)
            goto err;
    }
    if (add != NULL) {
        char msg[8];
        assert(acl_binding_check(add, msg, sizeof(msg)) == 0);
        memcpy(a->ids[a->n], add_id, METADATA_UUID_LEN);
        if (binding_copy(&a->bindings[a->n++], add) != 0)
            goto err;
    }
    return a;
err:
    acls_free(a);
    return NULL;
}

int image_acls_apply(struct metadata_image *img, const struct metadata_rec_acl *rec)
{
    long at = metadata_image_acl_index(img, rec->id);
    if ((rec->remove && at < 0) || (!rec->remove && at >= 0))
        return 1;
    struct metadata_acls *next = NULL;
    if (!rec->remove || img->acls->n > 1) {
        next = acls_rebuild(img->acls, rec->remove ? at : -1, rec->id,
                            rec->remove ? NULL : &rec->binding);
        if (next == NULL)
            return -ENOMEM;
    }
    size_t before = img->acls ? img->acls->n : 0;
    assert(next == NULL || (rec->remove ? next->n + 1 == before : next->n == before + 1));
    image_acls_release(img->acls);
    img->acls = next;
    assert(metadata_image_acl_index(img, rec->id) < 0 || !rec->remove); /* ids stay unique */
    return 0;
}

int image_acls_encode(const struct metadata_image *img, struct metadata_buf *out)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && img->acls && i < img->acls->n; i++) {
        struct metadata_record rec = {.type = METADATA_REC_ACL};
        memcpy(rec.acl.id, img->acls->ids[i], METADATA_UUID_LEN);
        rec.acl.binding = img->acls->bindings[i];
        rc = metadata_batch_append(out, &rec);
    }
    return rc;
}
