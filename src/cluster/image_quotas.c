/*
 * Client quotas in the metadata image (KIP-546): the values set per user / client-id entity by
 * ClientQuota records, as Kafka's ClientQuotasImage holds them.
 *
 * Invariants: img->client_quotas is sorted by quota_entity_cmp with no duplicates; every entity
 * has at least one value set (removing its last value removes the entity); an entity names at
 * least one type; a name is non-NULL only when its type is present and is never "". Every
 * change sets quotas_version above any version a reader of an older image saw.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/image.h"

static const char *const quota_key_names[METADATA_QUOTA_KEYS] = {
    [METADATA_QUOTA_PRODUCER_BYTE_RATE] = "producer_byte_rate",
    [METADATA_QUOTA_CONSUMER_BYTE_RATE] = "consumer_byte_rate",
    [METADATA_QUOTA_REQUEST_PERCENTAGE] = "request_percentage",
    [METADATA_QUOTA_CONTROLLER_MUTATION_RATE] = "controller_mutation_rate",
};

const char *metadata_quota_key_name(enum metadata_quota_key k)
{
    assert(k < METADATA_QUOTA_KEYS);
    return quota_key_names[k];
}

int metadata_quota_key_lookup(const char *name)
{
    for (int k = 0; k < METADATA_QUOTA_KEYS; k++)
        if (name != NULL && strcmp(name, quota_key_names[k]) == 0)
            return k;
    return -1;
}

/* NULL (default) sorts before any name. */
static int name_cmp(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

static int quota_entity_cmp(uint8_t ea, const char *ua, const char *ca, uint8_t eb, const char *ub,
                            const char *cb)
{
    if (ea != eb)
        return ea < eb ? -1 : 1;
    int c = name_cmp(ua, ub);
    return c ? c : name_cmp(ca, cb);
}

/* Index of the entity, or of where it would be inserted (*found says which). */
static size_t quota_find(const struct metadata_image *img, uint8_t entity, const char *user,
                         const char *client_id, bool *found)
{
    size_t lo = 0, hi = img->n_client_quotas;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct metadata_client_quota *q = &img->client_quotas[mid];
        int c = quota_entity_cmp(q->entity, q->user, q->client_id, entity, user, client_id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const struct metadata_client_quota *metadata_image_client_quota(const struct metadata_image *img,
                                                                uint8_t entity, const char *user,
                                                                const char *client_id)
{
    bool found;
    size_t i = quota_find(img, entity, user, client_id, &found);
    return found ? &img->client_quotas[i] : NULL;
}

static void quota_free_names(struct metadata_client_quota *q)
{
    free(q->user);
    free(q->client_id);
}

void image_quotas_free(struct metadata_image *img)
{
    for (size_t i = 0; i < img->n_client_quotas; i++)
        quota_free_names(&img->client_quotas[i]);
    free(img->client_quotas);
    img->client_quotas = NULL;
    img->n_client_quotas = 0;
}

/* Copies the names of src into dst (values copied by the caller); -ENOMEM leaves dst's names
 * NULL or allocated, freed by quota_free_names. */
static int quota_copy_names(struct metadata_client_quota *dst, uint8_t entity, const char *user,
                            const char *client_id)
{
    dst->entity = entity;
    dst->user = user ? strdup(user) : NULL;
    dst->client_id = client_id ? strdup(client_id) : NULL;
    if ((user && dst->user == NULL) || (client_id && dst->client_id == NULL))
        return -ENOMEM;
    return 0;
}

int image_quotas_copy(struct metadata_image *dst, const struct metadata_image *src)
{
    dst->quotas_version = src->quotas_version;
    if (src->n_client_quotas == 0)
        return 0;
    dst->client_quotas = calloc(src->n_client_quotas, sizeof(*dst->client_quotas));
    if (dst->client_quotas == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < src->n_client_quotas; i++) {
        const struct metadata_client_quota *q = &src->client_quotas[i];
        struct metadata_client_quota *d = &dst->client_quotas[i];
        dst->n_client_quotas++;
        *d = *q;
        if (quota_copy_names(d, q->entity, q->user, q->client_id) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* Inserts an empty entity at index i; NULL on allocation failure. */
static struct metadata_client_quota *quota_insert(struct metadata_image *img, size_t i,
                                                  const struct metadata_rec_client_quota *r)
{
    struct metadata_client_quota *v =
        realloc(img->client_quotas, (img->n_client_quotas + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    img->client_quotas = v;
    struct metadata_client_quota q = {0};
    if (quota_copy_names(&q, r->entity, r->user, r->client_id) != 0) {
        quota_free_names(&q);
        return NULL;
    }
    memmove(&v[i + 1], &v[i], (img->n_client_quotas - i) * sizeof(*v));
    v[i] = q;
    img->n_client_quotas++;
    return &v[i];
}

static void quota_remove_at(struct metadata_image *img, size_t i)
{
    quota_free_names(&img->client_quotas[i]);
    memmove(&img->client_quotas[i], &img->client_quotas[i + 1],
            (img->n_client_quotas - i - 1) * sizeof(*img->client_quotas));
    img->n_client_quotas--;
}

/* True when the record names a well-formed entity (types present, names only with types). */
static bool quota_entity_ok(const struct metadata_rec_client_quota *r)
{
    if ((r->entity & 3u) == 0 || (r->entity & ~3u))
        return false;
    if ((r->user && !(r->entity & METADATA_QUOTA_USER)) || (r->user && r->user[0] == 0))
        return false;
    if ((r->client_id && !(r->entity & METADATA_QUOTA_CLIENT_ID)) ||
        (r->client_id && r->client_id[0] == 0))
        return false;
    return true;
}

/* The file's invariants, checked after every change. */
static bool quotas_well_formed(const struct metadata_image *img)
{
    for (size_t i = 0; i < img->n_client_quotas; i++) {
        const struct metadata_client_quota *q = &img->client_quotas[i];
        if (q->set == 0 || (q->entity & 3u) == 0 ||
            (q->user && !(q->entity & METADATA_QUOTA_USER)) ||
            (q->client_id && !(q->entity & METADATA_QUOTA_CLIENT_ID)))
            return false;
        const struct metadata_client_quota *p = i ? &img->client_quotas[i - 1] : NULL;
        if (p && quota_entity_cmp(p->entity, p->user, p->client_id, q->entity, q->user,
                                  q->client_id) >= 0)
            return false;
    }
    return true;
}

int image_apply_client_quota(struct metadata_image *img, const struct metadata_rec_client_quota *r)
{
    int k = metadata_quota_key_lookup(r->key);
    if (k < 0 || !quota_entity_ok(r) || (!r->remove && !(r->value > 0)))
        return 1;
    bool found;
    size_t i = quota_find(img, r->entity, r->user, r->client_id, &found);
    if (r->remove) {
        if (!found || !(img->client_quotas[i].set & (1u << k)))
            return 1;
        img->client_quotas[i].set &= (uint8_t) ~(1u << k);
        if (img->client_quotas[i].set == 0)
            quota_remove_at(img, i);
    } else {
        struct metadata_client_quota *q = found ? &img->client_quotas[i] : quota_insert(img, i, r);
        if (q == NULL)
            return -ENOMEM;
        q->set |= (uint8_t)(1u << k);
        q->values[k] = r->value;
    }
    img->quotas_version = img->version + 1;
    assert(quotas_well_formed(img));
    return 0;
}

int image_quotas_encode(const struct metadata_image *img, struct metadata_buf *out)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < img->n_client_quotas; i++) {
        const struct metadata_client_quota *q = &img->client_quotas[i];
        for (int k = 0; rc == 0 && k < METADATA_QUOTA_KEYS; k++) {
            if (!(q->set & (1u << k)))
                continue;
            struct metadata_record rec = {.type = METADATA_REC_CLIENT_QUOTA};
            rec.client_quota = (struct metadata_rec_client_quota){
                q->entity, q->user, q->client_id, (char *)quota_key_names[k], q->values[k], 0};
            rc = metadata_batch_append(out, &rec);
        }
    }
    return rc;
}
