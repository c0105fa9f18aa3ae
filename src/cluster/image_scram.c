/*
 * SCRAM credentials in the metadata image (see image_scram.h).
 *
 * Invariants: a set's credentials are sorted by (name, mechanism) with no duplicates; a set
 * with refcount > 1 is shared by published images and is never mutated (image_scram_private
 * copies it first); credential material is wiped before it is freed.
 */
#include "cluster/image_scram.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/image.h"

static int scram_cmp(const struct metadata_scram_credential *c, const char *name, uint8_t mech)
{
    int d = strcmp(c->name, name);
    return d != 0 ? d : (int)c->mechanism - (int)mech;
}

/* Index of the first credential not below (name, mech). */
static size_t scram_lower_bound(const struct metadata_scram_set *s, const char *name, uint8_t mech)
{
    size_t lo = 0, hi = s ? s->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (scram_cmp(&s->v[mid], name, mech) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct metadata_scram_credential *metadata_image_scram(const struct metadata_image *img,
                                                             const char *name, uint8_t mechanism)
{
    const struct metadata_scram_set *s = img->scram;
    size_t i = scram_lower_bound(s, name, mechanism);
    return s && i < s->n && scram_cmp(&s->v[i], name, mechanism) == 0 ? &s->v[i] : NULL;
}

size_t metadata_image_scram_first(const struct metadata_image *img, const char *name)
{
    return scram_lower_bound(img->scram, name, 0);
}

size_t metadata_image_scram_count(const struct metadata_image *img)
{
    return img->scram ? img->scram->n : 0;
}

const struct metadata_scram_credential *metadata_image_scram_at(const struct metadata_image *img,
                                                                size_t i)
{
    assert(img->scram != NULL && i < img->scram->n);
    return &img->scram->v[i];
}

static void scram_set_free(struct metadata_scram_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].name);
    if (s->v)
        OPENSSL_cleanse(s->v, s->n * sizeof(*s->v));
    free(s->v);
    free(s);
}

void image_scram_share(struct metadata_image *dst, const struct metadata_image *src)
{
    assert(dst->scram == NULL);
    dst->scram = src->scram;
    if (dst->scram)
        atomic_fetch_add_explicit(&dst->scram->refcount, 1, memory_order_relaxed);
}

void image_scram_release(struct metadata_image *img)
{
    struct metadata_scram_set *s = img->scram;
    img->scram = NULL;
    if (s && atomic_fetch_sub_explicit(&s->refcount, 1, memory_order_acq_rel) == 1)
        scram_set_free(s);
}

/* Makes img's set private (refcount 1) with room for one more credential. 0 or -ENOMEM. */
static int image_scram_private(struct metadata_image *img)
{
    struct metadata_scram_set *old = img->scram;
    if (old && atomic_load_explicit(&old->refcount, memory_order_acquire) == 1) {
        struct metadata_scram_credential *v = realloc(old->v, (old->n + 1) * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        old->v = v;
        return 0;
    }
    struct metadata_scram_set *s = calloc(1, sizeof(*s));
    size_t n = old ? old->n : 0;
    if (s == NULL || (s->v = calloc(n + 1, sizeof(*s->v))) == NULL) {
        free(s);
        return -ENOMEM;
    }
    atomic_init(&s->refcount, 1);
    for (; s->n < n; s->n++) {
        s->v[s->n] = old->v[s->n];
        if ((s->v[s->n].name = strdup(old->v[s->n].name)) == NULL) {
            scram_set_free(s);
            return -ENOMEM;
        }
    }
    image_scram_release(img);
    img->scram = s;
    return 0;
}

/* The set's order invariant (checked by assert after every change). */
static bool scram_set_sorted(const struct metadata_scram_set *s)
{
    for (size_t i = 1; i < s->n; i++)
        if (scram_cmp(&s->v[i - 1], s->v[i].name, s->v[i].mechanism) >= 0)
            return false;
    return true;
}

static void scram_fill(struct metadata_scram_credential *c,
                       const struct metadata_rec_scram_credential *r)
{
    assert(r->salt_len <= METADATA_SCRAM_SALT_MAX && r->key_len <= METADATA_SCRAM_KEY_MAX);
    c->mechanism = r->mechanism;
    c->iterations = r->iterations;
    c->salt_len = r->salt_len;
    c->key_len = r->key_len;
    memcpy(c->salt, r->salt, r->salt_len);
    memcpy(c->stored_key, r->stored_key, r->key_len);
    memcpy(c->server_key, r->server_key, r->key_len);
}

int image_scram_apply(struct metadata_image *img, const struct metadata_rec_scram_credential *r)
{
    const struct metadata_scram_credential *cur = metadata_image_scram(img, r->name, r->mechanism);
    if (r->remove && cur == NULL)
        return 1;
    if (image_scram_private(img) != 0)
        return -ENOMEM;
    struct metadata_scram_set *s = img->scram;
    size_t i = scram_lower_bound(s, r->name, r->mechanism);
    if (r->remove) {
        free(s->v[i].name);
        OPENSSL_cleanse(&s->v[i], sizeof(s->v[i]));
        memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof(s->v[0]));
        s->n--;
        assert(scram_set_sorted(s));
        return 0;
    }
    if (cur == NULL) {
        char *name = strdup(r->name);
        if (name == NULL)
            return -ENOMEM;
        memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(s->v[0]));
        memset(&s->v[i], 0, sizeof(s->v[i]));
        s->v[i].name = name;
        s->n++;
    }
    scram_fill(&s->v[i], r);
    assert(scram_set_sorted(s));
    return 0;
}

int image_scram_encode(const struct metadata_image *img, struct metadata_buf *out)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < metadata_image_scram_count(img); i++) {
        struct metadata_scram_credential *c = &img->scram->v[i];
        struct metadata_record rec = {.type = METADATA_REC_SCRAM_CREDENTIAL};
        rec.scram = (struct metadata_rec_scram_credential){
            c->name,       c->mechanism, 0, c->iterations, c->salt_len, c->key_len, c->salt,
            c->stored_key, c->server_key};
        rc = metadata_batch_append(out, &rec);
    }
    return rc;
}
