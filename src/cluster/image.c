/*
 * Metadata image: lookups, copy-on-write application of records, and (de)serialization for
 * raft snapshots.
 *
 * Invariants:
 *  - topics_by_name and topics_by_id hold the same n_topics pointers, each array sorted by its
 *    key with no duplicates; each pointer is one reference owned by the image (counted once).
 *  - A topic with refcount 1 belongs to exactly one unpublished image and may be mutated in
 *    place; a shared topic is copied before mutation (topic_make_private).
 *  - partitions[i].partition == i; configs sorted by name, unique names, non-NULL values.
 *  - brokers sorted by id, unique, deep-copied per image (there are few of them); controller
 *    and observer endpoints likewise unique by id and deep-copied, in registration order.
 */
#include "cluster/image.h"

#include "cluster/image_scram.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* ---------- topics ---------- */

static void partition_free_arrays(struct metadata_partition *p)
{
    free(p->replicas);
    free(p->isr);
    free(p->adding);
    free(p->removing);
}

static void topic_free(struct metadata_topic *t)
{
    for (uint32_t i = 0; i < t->n_partitions; i++)
        partition_free_arrays(&t->partitions[i]);
    free(t->partitions);
    for (uint32_t i = 0; i < t->n_configs; i++) {
        free(t->configs[i].name);
        free(t->configs[i].value);
    }
    free(t->configs);
    free(t->name);
    free(t);
}

static void topic_unref(struct metadata_topic *t)
{
    if (atomic_fetch_sub_explicit(&t->refcount, 1, memory_order_acq_rel) == 1)
        topic_free(t);
}

static int32_t *int_array_dup(const int32_t *v, uint32_t n)
{
    int32_t *copy = malloc(n ? n * sizeof(int32_t) : 1);
    if (copy != NULL && n)
        memcpy(copy, v, n * sizeof(int32_t));
    return copy;
}

static int partition_copy(struct metadata_partition *dst, const struct metadata_partition *src)
{
    *dst = *src;
    dst->replicas = int_array_dup(src->replicas, src->n_replicas);
    dst->isr = int_array_dup(src->isr, src->n_isr);
    dst->adding = src->n_adding ? int_array_dup(src->adding, src->n_adding) : NULL;
    dst->removing = src->n_removing ? int_array_dup(src->removing, src->n_removing) : NULL;
    if (dst->replicas == NULL || dst->isr == NULL || (src->n_adding && dst->adding == NULL) ||
        (src->n_removing && dst->removing == NULL)) {
        partition_free_arrays(dst);
        return -ENOMEM;
    }
    return 0;
}

/* A deep copy with refcount 1, or NULL. */
static struct metadata_topic *topic_copy(const struct metadata_topic *src)
{
    struct metadata_topic *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    atomic_init(&t->refcount, 1);
    memcpy(t->id, src->id, METADATA_UUID_LEN);
    t->name = strdup(src->name);
    t->partitions = calloc(src->n_partitions ? src->n_partitions : 1, sizeof(*t->partitions));
    t->configs = calloc(src->n_configs ? src->n_configs : 1, sizeof(*t->configs));
    if (t->name == NULL || t->partitions == NULL || t->configs == NULL)
        goto err;
    for (uint32_t i = 0; i < src->n_partitions; i++, t->n_partitions++)
        if (partition_copy(&t->partitions[i], &src->partitions[i]) != 0)
            goto err;
    for (uint32_t i = 0; i < src->n_configs; i++, t->n_configs++) {
        t->configs[i].name = strdup(src->configs[i].name);
        t->configs[i].value = strdup(src->configs[i].value);
        if (t->configs[i].name == NULL || t->configs[i].value == NULL) {
            t->n_configs++;
            goto err;
        }
    }
    return t;
err:
    topic_free(t);
    return NULL;
}

/* ---------- lookups ---------- */

/* Index of the first topic whose name is >= name (insertion point). */
static size_t name_lower_bound(const struct metadata_image *img, const char *name)
{
    size_t lo = 0, hi = img->n_topics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(img->topics_by_name[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t id_lower_bound(const struct metadata_image *img, const uint8_t *id)
{
    size_t lo = 0, hi = img->n_topics;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (memcmp(img->topics_by_id[mid]->id, id, METADATA_UUID_LEN) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct metadata_topic *metadata_image_topic_by_name(const struct metadata_image *img,
                                                          const char *name)
{
    size_t i = name_lower_bound(img, name);
    if (i < img->n_topics && strcmp(img->topics_by_name[i]->name, name) == 0)
        return img->topics_by_name[i];
    return NULL;
}

const struct metadata_topic *metadata_image_topic_by_id(const struct metadata_image *img,
                                                        const uint8_t id[METADATA_UUID_LEN])
{
    size_t i = id_lower_bound(img, id);
    if (i < img->n_topics && memcmp(img->topics_by_id[i]->id, id, METADATA_UUID_LEN) == 0)
        return img->topics_by_id[i];
    return NULL;
}

static size_t broker_lower_bound(const struct metadata_image *img, int32_t id)
{
    size_t lo = 0, hi = img->n_brokers;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (img->brokers[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const struct metadata_broker *metadata_image_broker(const struct metadata_image *img, int32_t id)
{
    size_t i = broker_lower_bound(img, id);
    return i < img->n_brokers && img->brokers[i].id == id ? &img->brokers[i] : NULL;
}

static size_t config_lower_bound(const struct metadata_config_entry *e, uint32_t n,
                                 const char *name)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(e[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static const char *config_find(const struct metadata_config_entry *e, uint32_t n, const char *name)
{
    size_t i = config_lower_bound(e, n, name);
    return i < n && strcmp(e[i].name, name) == 0 ? e[i].value : NULL;
}

const char *metadata_topic_config(const struct metadata_topic *t, const char *name)
{
    return config_find(t->configs, t->n_configs, name);
}

const struct metadata_broker_configs *
metadata_image_broker_configs(const struct metadata_image *img, int32_t broker_id)
{
    for (size_t i = 0; i < img->n_broker_configs; i++)
        if (img->broker_configs[i].broker_id == broker_id)
            return &img->broker_configs[i];
    return NULL;
}

bool metadata_image_broker_configs_equal(const struct metadata_image *a,
                                         const struct metadata_image *b)
{
    if (a->n_broker_configs != b->n_broker_configs)
        return false;
    for (size_t i = 0; i < a->n_broker_configs; i++) {
        const struct metadata_broker_configs *x = &a->broker_configs[i], *y = &b->broker_configs[i];
        if (x->broker_id != y->broker_id || x->n_configs != y->n_configs)
            return false;
        for (uint32_t j = 0; j < x->n_configs; j++)
            if (strcmp(x->configs[j].name, y->configs[j].name) != 0 ||
                strcmp(x->configs[j].value, y->configs[j].value) != 0)
                return false;
    }
    return true;
}

const char *metadata_image_broker_config(const struct metadata_image *img, int32_t broker_id,
                                         const char *name)
{
    const struct metadata_broker_configs *bc = metadata_image_broker_configs(img, broker_id);
    return bc ? config_find(bc->configs, bc->n_configs, name) : NULL;
}

/* ---------- image lifetime ---------- */

static struct metadata_broker_configs *broker_configs_get(struct metadata_image *img,
                                                          int32_t broker_id);
static void broker_configs_free_entries(struct metadata_broker_configs *bc);
static int config_apply_ops(struct metadata_config_entry **e, uint32_t *n,
                            const struct metadata_config_entry *ops, uint32_t n_ops);

struct metadata_image *image_new(void)
{
    struct metadata_image *img = calloc(1, sizeof(*img));
    if (img == NULL)
        return NULL;
    atomic_init(&img->refcount, 1);
    return img;
}

static void brokers_free(struct metadata_broker *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(b[i].host);
        free(b[i].rack);
    }
    free(b);
}

static void endpoints_free(struct metadata_endpoint *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(c[i].host);
    free(c);
}

static void image_free(struct metadata_image *img)
{
    endpoints_free(img->controllers, img->n_controllers);
    endpoints_free(img->observers, img->n_observers);
    for (size_t i = 0; i < img->n_topics; i++)
        topic_unref(img->topics_by_name[i]);
    free(img->topics_by_name);
    free(img->topics_by_id);
    brokers_free(img->brokers, img->n_brokers);
    for (size_t i = 0; i < img->n_broker_configs; i++)
        broker_configs_free_entries(&img->broker_configs[i]);
    free(img->broker_configs);
    image_quotas_free(img);
    image_scram_release(img);
    image_acls_release(img->acls);
    free(img);
}

const struct metadata_image *metadata_image_ref(const struct metadata_image *img)
{
    struct metadata_image *m = (struct metadata_image *)img;
    atomic_fetch_add_explicit(&m->refcount, 1, memory_order_relaxed);
    return img;
}

void metadata_image_release(const struct metadata_image *img)
{
    if (img == NULL)
        return;
    struct metadata_image *m = (struct metadata_image *)img;
    if (atomic_fetch_sub_explicit(&m->refcount, 1, memory_order_acq_rel) == 1)
        image_free(m);
}

static int brokers_copy(struct metadata_image *dst, const struct metadata_image *src)
{
    dst->brokers = calloc(src->n_brokers ? src->n_brokers : 1, sizeof(*dst->brokers));
    if (dst->brokers == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < src->n_brokers; i++) {
        const struct metadata_broker *b = &src->brokers[i];
        dst->brokers[i] = *b;
        dst->brokers[i].host = strdup(b->host);
        dst->brokers[i].rack = b->rack ? strdup(b->rack) : NULL;
        dst->n_brokers++;
        if (dst->brokers[i].host == NULL || (b->rack && dst->brokers[i].rack == NULL))
            return -ENOMEM;
    }
    return 0;
}

static int broker_configs_copy(struct metadata_image *dst, const struct metadata_image *src)
{
    for (size_t i = 0; i < src->n_broker_configs; i++) {
        const struct metadata_broker_configs *bc = &src->broker_configs[i];
        struct metadata_broker_configs *d = broker_configs_get(dst, bc->broker_id);
        if (d == NULL ||
            config_apply_ops(&d->configs, &d->n_configs, bc->configs, bc->n_configs) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* Deep-copies an endpoint list (controllers or observers); *n_dst counts what was copied. */
static int endpoints_copy(struct metadata_endpoint **dst, size_t *n_dst,
                          const struct metadata_endpoint *src, size_t n)
{
    *dst = calloc(n ? n : 1, sizeof(**dst));
    if (*dst == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        (*dst)[i] = src[i];
        (*dst)[i].host = strdup(src[i].host);
        (*n_dst)++;
        if ((*dst)[i].host == NULL)
            return -ENOMEM;
    }
    return 0;
}

struct metadata_image *image_clone(const struct metadata_image *src)
{
    struct metadata_image *img = image_new();
    if (img == NULL)
        return NULL;
    img->version = src->version;
    img->next_producer_id = src->next_producer_id;
    image_scram_share(img, src);
    image_acls_share(img, src);
    size_t n = src->n_topics;
    img->topics_by_name = malloc((n ? n : 1) * sizeof(*img->topics_by_name));
    img->topics_by_id = malloc((n ? n : 1) * sizeof(*img->topics_by_id));
    if (img->topics_by_name == NULL || img->topics_by_id == NULL || brokers_copy(img, src) != 0 ||
        broker_configs_copy(img, src) != 0 || image_quotas_copy(img, src) != 0 ||
        endpoints_copy(&img->controllers, &img->n_controllers, src->controllers,
                       src->n_controllers) != 0 ||
        endpoints_copy(&img->observers, &img->n_observers, src->observers, src->n_observers) != 0)
        goto err;
    if (n) {
        memcpy(img->topics_by_name, src->topics_by_name, n * sizeof(*img->topics_by_name));
        memcpy(img->topics_by_id, src->topics_by_id, n * sizeof(*img->topics_by_id));
    }
    for (size_t i = 0; i < n; i++)
        atomic_fetch_add_explicit(&img->topics_by_name[i]->refcount, 1, memory_order_relaxed);
    img->n_topics = n;
    return img;
err:
    image_free(img);
    return NULL;
}

/* ---------- topic set mutation ---------- */

static int topics_insert(struct metadata_image *img, struct metadata_topic *t)
{
    size_t n = img->n_topics;
    struct metadata_topic **by_name = realloc(img->topics_by_name, (n + 1) * sizeof(*by_name));
    if (by_name == NULL)
        return -ENOMEM;
    img->topics_by_name = by_name;
    struct metadata_topic **by_id = realloc(img->topics_by_id, (n + 1) * sizeof(*by_id));
    if (by_id == NULL)
        return -ENOMEM;
    img->topics_by_id = by_id;
    size_t i = name_lower_bound(img, t->name);
    memmove(&by_name[i + 1], &by_name[i], (n - i) * sizeof(*by_name));
    by_name[i] = t;
    size_t j = id_lower_bound(img, t->id);
    memmove(&by_id[j + 1], &by_id[j], (n - j) * sizeof(*by_id));
    by_id[j] = t;
    img->n_topics = n + 1;
    return 0;
}

static void topics_remove(struct metadata_image *img, const struct metadata_topic *t)
{
    size_t n = img->n_topics;
    size_t i = name_lower_bound(img, t->name);
    size_t j = id_lower_bound(img, t->id);
    memmove(&img->topics_by_name[i], &img->topics_by_name[i + 1],
            (n - i - 1) * sizeof(*img->topics_by_name));
    memmove(&img->topics_by_id[j], &img->topics_by_id[j + 1],
            (n - j - 1) * sizeof(*img->topics_by_id));
    img->n_topics = n - 1;
}

/*
 * Returns a topic with this id that the image owns exclusively, copying a shared one and
 * swapping the copy into both arrays. NULL with *err = 0 if there is no such topic.
 */
static struct metadata_topic *topic_make_private(struct metadata_image *img, const uint8_t *id,
                                                 int *err)
{
    *err = 0;
    size_t j = id_lower_bound(img, id);
    if (j >= img->n_topics || memcmp(img->topics_by_id[j]->id, id, METADATA_UUID_LEN) != 0)
        return NULL;
    struct metadata_topic *t = img->topics_by_id[j];
    if (atomic_load_explicit(&t->refcount, memory_order_acquire) == 1)
        return t;
    struct metadata_topic *copy = topic_copy(t);
    if (copy == NULL) {
        *err = -ENOMEM;
        return NULL;
    }
    img->topics_by_id[j] = copy;
    img->topics_by_name[name_lower_bound(img, t->name)] = copy;
    topic_unref(t);
    return copy;
}

/* ---------- configs ---------- */

static int config_set(struct metadata_config_entry **entries, uint32_t *n, const char *name,
                      const char *value)
{
    size_t i = config_lower_bound(*entries, *n, name);
    char *v = strdup(value);
    if (v == NULL)
        return -ENOMEM;
    if (i < *n && strcmp((*entries)[i].name, name) == 0) {
        free((*entries)[i].value);
        (*entries)[i].value = v;
        return 0;
    }
    char *k = strdup(name);
    struct metadata_config_entry *e = realloc(*entries, (*n + 1) * sizeof(*e));
    if (k == NULL || e == NULL) {
        free(k);
        free(v);
        if (e)
            *entries = e;
        return -ENOMEM;
    }
    *entries = e;
    memmove(&e[i + 1], &e[i], (*n - i) * sizeof(*e));
    e[i].name = k;
    e[i].value = v;
    (*n)++;
    return 0;
}

static void config_delete(struct metadata_config_entry *e, uint32_t *n, const char *name)
{
    size_t i = config_lower_bound(e, *n, name);
    if (i >= *n || strcmp(e[i].name, name) != 0)
        return;
    free(e[i].name);
    free(e[i].value);
    memmove(&e[i], &e[i + 1], (*n - i - 1) * sizeof(*e));
    (*n)--;
}

/* Applies set/delete operations to a config list; 0 or -ENOMEM. */
static int config_apply_ops(struct metadata_config_entry **e, uint32_t *n,
                            const struct metadata_config_entry *ops, uint32_t n_ops)
{
    for (uint32_t i = 0; i < n_ops; i++) {
        if (ops[i].value == NULL)
            config_delete(*e, n, ops[i].name);
        else if (config_set(e, n, ops[i].name, ops[i].value) != 0)
            return -ENOMEM;
    }
    return 0;
}

/* ---------- apply ---------- */

static int apply_broker(struct metadata_image *img, const struct metadata_rec_broker *r)
{
    char *host = strdup(r->host);
    char *rack = r->rack ? strdup(r->rack) : NULL;
    if (host == NULL || (r->rack && rack == NULL)) {
        free(host);
        free(rack);
        return -ENOMEM;
    }
    size_t i = broker_lower_bound(img, r->broker_id);
    if (i < img->n_brokers && img->brokers[i].id == r->broker_id) {
        free(img->brokers[i].host);
        free(img->brokers[i].rack);
    } else {
        struct metadata_broker *b = realloc(img->brokers, (img->n_brokers + 1) * sizeof(*b));
        if (b == NULL) {
            free(host);
            free(rack);
            return -ENOMEM;
        }
        img->brokers = b;
        memmove(&b[i + 1], &b[i], (img->n_brokers - i) * sizeof(*b));
        img->n_brokers++;
    }
    img->brokers[i] =
        (struct metadata_broker){r->broker_id,
                                 r->port,
                                 host,
                                 rack,
                                 r->epoch,
                                 {0},
                                 r->fenced ? METADATA_BROKER_FENCED : METADATA_BROKER_UNFENCED};
    memcpy(img->brokers[i].incarnation, r->incarnation, METADATA_UUID_LEN);
    return 0;
}

static const struct metadata_endpoint *endpoint_find(const struct metadata_endpoint *v, size_t n,
                                                     int32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].id == id)
            return &v[i];
    return NULL;
}

const struct metadata_endpoint *metadata_image_controller(const struct metadata_image *img,
                                                          int32_t id)
{
    return endpoint_find(img->controllers, img->n_controllers, id);
}

const struct metadata_endpoint *metadata_image_observer(const struct metadata_image *img,
                                                        int32_t id)
{
    return endpoint_find(img->observers, img->n_observers, id);
}

/* Sets node r->node_id's endpoint in the list (appended when new). */
static int apply_endpoint(struct metadata_endpoint **v, size_t *n,
                          const struct metadata_rec_endpoint *r)
{
    char *host = strdup(r->host);
    if (host == NULL)
        return -ENOMEM;
    struct metadata_endpoint *e = (struct metadata_endpoint *)endpoint_find(*v, *n, r->node_id);
    if (e == NULL) {
        e = realloc(*v, (*n + 1) * sizeof(*e));
        if (e == NULL) {
            free(host);
            return -ENOMEM;
        }
        *v = e;
        e = &e[(*n)++];
    } else {
        free(e->host);
    }
    *e = (struct metadata_endpoint){r->node_id, r->port, host};
    return 0;
}

static int apply_broker_fence(struct metadata_image *img, const struct metadata_rec_broker_fence *r)
{
    size_t i = broker_lower_bound(img, r->broker_id);
    if (i >= img->n_brokers || img->brokers[i].id != r->broker_id ||
        img->brokers[i].epoch != r->epoch)
        return 1;
    img->brokers[i].state = r->state;
    return 0;
}

size_t metadata_image_usable_brokers(const struct metadata_image *img)
{
    size_t n = 0;
    for (size_t i = 0; i < img->n_brokers; i++)
        n += metadata_broker_usable(&img->brokers[i]);
    return n;
}

static int apply_topic(struct metadata_image *img, const struct metadata_rec_topic *r)
{
    if (metadata_image_topic_by_name(img, r->name) || metadata_image_topic_by_id(img, r->topic_id))
        return 1;
    struct metadata_topic *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -ENOMEM;
    atomic_init(&t->refcount, 1);
    memcpy(t->id, r->topic_id, METADATA_UUID_LEN);
    t->name = strdup(r->name);
    if (t->name == NULL)
        goto err;
    for (uint32_t i = 0; i < r->n_configs; i++)
        if (config_set(&t->configs, &t->n_configs, r->configs[i].name, r->configs[i].value) != 0)
            goto err;
    if (topics_insert(img, t) != 0)
        goto err;
    return 0;
err:
    topic_free(t);
    return -ENOMEM;
}

static int apply_partition(struct metadata_image *img, const struct metadata_rec_partition *r)
{
    int err;
    struct metadata_topic *t = topic_make_private(img, r->topic_id, &err);
    if (t == NULL)
        return err ? err : 1;
    if (r->partition < 0 || (uint32_t)r->partition > t->n_partitions)
        return 1;
    struct metadata_partition p = {
        .partition = r->partition,
        .leader = r->leader,
        .leader_epoch = r->leader_epoch,
        .partition_epoch = r->partition_epoch,
        .n_replicas = r->n_replicas,
        .n_isr = r->n_isr,
        .replicas = (int32_t *)r->replicas,
        .isr = (int32_t *)r->isr,
    };
    struct metadata_partition copy;
    if (partition_copy(&copy, &p) != 0)
        return -ENOMEM;
    if ((uint32_t)r->partition == t->n_partitions) {
        struct metadata_partition *parts =
            realloc(t->partitions, (t->n_partitions + 1) * sizeof(*parts));
        if (parts == NULL) {
            partition_free_arrays(&copy);
            return -ENOMEM;
        }
        t->partitions = parts;
        t->n_partitions++;
    } else {
        partition_free_arrays(&t->partitions[r->partition]);
    }
    t->partitions[r->partition] = copy;
    return 0;
}

static int replace_array(int32_t **dst, uint32_t *n_dst, const int32_t *src, uint32_t n)
{
    int32_t *v = int_array_dup(src, n);
    if (v == NULL)
        return -ENOMEM;
    free(*dst);
    *dst = v;
    *n_dst = n;
    return 0;
}

static int apply_partition_change(struct metadata_image *img,
                                  const struct metadata_rec_partition_change *r)
{
    int err;
    struct metadata_topic *t = topic_make_private(img, r->topic_id, &err);
    if (t == NULL)
        return err ? err : 1;
    if (r->partition < 0 || (uint32_t)r->partition >= t->n_partitions)
        return 1;
    struct metadata_partition *p = &t->partitions[r->partition];
    if (r->has_isr && replace_array(&p->isr, &p->n_isr, r->isr, r->n_isr) != 0)
        return -ENOMEM;
    if (r->has_replicas &&
        replace_array(&p->replicas, &p->n_replicas, r->replicas, r->n_replicas) != 0)
        return -ENOMEM;
    if (r->has_leader && r->leader != p->leader) {
        p->leader = r->leader;
        p->leader_epoch++;
    }
    p->partition_epoch++;
    return 0;
}

static int apply_reassignment(struct metadata_image *img, const struct metadata_rec_reassignment *r)
{
    int err;
    struct metadata_topic *t = topic_make_private(img, r->topic_id, &err);
    if (t == NULL)
        return err ? err : 1;
    if (r->partition < 0 || (uint32_t)r->partition >= t->n_partitions || r->n_replicas == 0)
        return 1;
    struct metadata_partition *p = &t->partitions[r->partition];
    if (replace_array(&p->replicas, &p->n_replicas, r->replicas, r->n_replicas) != 0 ||
        replace_array(&p->adding, &p->n_adding, r->adding, r->n_adding) != 0 ||
        replace_array(&p->removing, &p->n_removing, r->removing, r->n_removing) != 0)
        return -ENOMEM;
    p->partition_epoch++;
    return 0;
}

static int apply_remove_topic(struct metadata_image *img, const struct metadata_rec_remove_topic *r)
{
    const struct metadata_topic *t = metadata_image_topic_by_id(img, r->topic_id);
    if (t == NULL)
        return 1;
    topics_remove(img, t);
    topic_unref((struct metadata_topic *)t);
    return 0;
}

static int apply_config(struct metadata_image *img, const struct metadata_rec_config *r)
{
    int err;
    struct metadata_topic *t = topic_make_private(img, r->topic_id, &err);
    if (t == NULL)
        return err ? err : 1;
    return config_apply_ops(&t->configs, &t->n_configs, r->ops, r->n_ops);
}

/* The dynamic config set of a broker (or -1), inserted in id order when missing; NULL on
 * allocation failure. */
static struct metadata_broker_configs *broker_configs_get(struct metadata_image *img,
                                                          int32_t broker_id)
{
    size_t i = 0;
    while (i < img->n_broker_configs && img->broker_configs[i].broker_id < broker_id)
        i++;
    if (i < img->n_broker_configs && img->broker_configs[i].broker_id == broker_id)
        return &img->broker_configs[i];
    struct metadata_broker_configs *v =
        realloc(img->broker_configs, (img->n_broker_configs + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    img->broker_configs = v;
    memmove(&v[i + 1], &v[i], (img->n_broker_configs - i) * sizeof(*v));
    v[i] = (struct metadata_broker_configs){.broker_id = broker_id};
    img->n_broker_configs++;
    return &v[i];
}

static void broker_configs_free_entries(struct metadata_broker_configs *bc)
{
    for (uint32_t i = 0; i < bc->n_configs; i++) {
        free(bc->configs[i].name);
        free(bc->configs[i].value);
    }
    free(bc->configs);
}

static int apply_broker_config(struct metadata_image *img,
                               const struct metadata_rec_broker_config *r)
{
    if (r->broker_id < -1)
        return 1;
    struct metadata_broker_configs *bc = broker_configs_get(img, r->broker_id);
    if (bc == NULL)
        return -ENOMEM;
    int rc = config_apply_ops(&bc->configs, &bc->n_configs, r->ops, r->n_ops);
    if (bc->n_configs == 0) { /* no empty sets: the array stays what readers expect */
        broker_configs_free_entries(bc);
        size_t i = (size_t)(bc - img->broker_configs);
        memmove(bc, bc + 1, (img->n_broker_configs - i - 1) * sizeof(*bc));
        img->n_broker_configs--;
    }
    return rc;
}

int image_apply(struct metadata_image *img, const struct metadata_record *rec)
{
    switch (rec->type) {
    case METADATA_REC_REGISTER_BROKER:
    case METADATA_REC_BROKER_REGISTRATION:
        return apply_broker(img, &rec->broker);
    case METADATA_REC_BROKER_FENCE:
        return apply_broker_fence(img, &rec->broker_fence);
    case METADATA_REC_CONTROLLER_REGISTRATION:
        return apply_endpoint(&img->controllers, &img->n_controllers, &rec->endpoint);
    case METADATA_REC_OBSERVER_REGISTRATION:
        return apply_endpoint(&img->observers, &img->n_observers, &rec->endpoint);
    case METADATA_REC_REASSIGNMENT:
        return apply_reassignment(img, &rec->reassignment);
    case METADATA_REC_TOPIC:
        return apply_topic(img, &rec->topic);
    case METADATA_REC_PARTITION:
        return apply_partition(img, &rec->partition);
    case METADATA_REC_PARTITION_CHANGE:
        return apply_partition_change(img, &rec->partition_change);
    case METADATA_REC_REMOVE_TOPIC:
        return apply_remove_topic(img, &rec->remove_topic);
    case METADATA_REC_CONFIG:
        return apply_config(img, &rec->config);
    case METADATA_REC_BROKER_CONFIG:
        return apply_broker_config(img, &rec->broker_config);
    case METADATA_REC_PRODUCER_IDS:
        if (rec->producer_ids.next_block_start <= img->next_producer_id)
            return 1;
        img->next_producer_id = rec->producer_ids.next_block_start;
        return 0;
    case METADATA_REC_IMAGE_HEADER:
        img->version = rec->image_header.version;
        return 0;
    case METADATA_REC_CLIENT_QUOTA:
        return image_apply_client_quota(img, &rec->client_quota);
    case METADATA_REC_SCRAM_CREDENTIAL:
        return image_scram_apply(img, &rec->scram);
    case METADATA_REC_ACL:
        return image_acls_apply(img, &rec->acl);
    }
    return 1;
}

/* ---------- snapshot encoding ---------- */

static int encode_topic(const struct metadata_topic *t, struct metadata_buf *out)
{
    struct metadata_record rec = {.type = METADATA_REC_TOPIC};
    rec.topic.name = t->name;
    memcpy(rec.topic.topic_id, t->id, METADATA_UUID_LEN);
    rec.topic.n_configs = t->n_configs;
    rec.topic.configs = t->configs;
    int rc = metadata_batch_append(out, &rec);
    for (uint32_t i = 0; rc == 0 && i < t->n_partitions; i++) {
        const struct metadata_partition *p = &t->partitions[i];
        struct metadata_record pr = {.type = METADATA_REC_PARTITION};
        memcpy(pr.partition.topic_id, t->id, METADATA_UUID_LEN);
        pr.partition.partition = p->partition;
        pr.partition.leader = p->leader;
        pr.partition.leader_epoch = p->leader_epoch;
        pr.partition.partition_epoch = p->partition_epoch;
        pr.partition.n_replicas = p->n_replicas;
        pr.partition.replicas = p->replicas;
        pr.partition.n_isr = p->n_isr;
        pr.partition.isr = p->isr;
        rc = metadata_batch_append(out, &pr);
        if (rc == 0 && (p->n_adding || p->n_removing)) {
            struct metadata_record ra = {.type = METADATA_REC_REASSIGNMENT};
            memcpy(ra.reassignment.topic_id, t->id, METADATA_UUID_LEN);
            ra.reassignment = (struct metadata_rec_reassignment){
                {0},           p->partition, p->n_replicas, p->n_adding,
                p->n_removing, p->replicas,  p->adding,     p->removing};
            memcpy(ra.reassignment.topic_id, t->id, METADATA_UUID_LEN);
            rc = metadata_batch_append(out, &ra);
        }
    }
    return rc;
}

int image_encode(const struct metadata_image *img, struct metadata_buf *out)
{
    metadata_batch_begin(out);
    struct metadata_record rec = {.type = METADATA_REC_IMAGE_HEADER};
    rec.image_header.version = img->version;
    int rc = metadata_batch_append(out, &rec);
    for (size_t i = 0; rc == 0 && i < img->n_brokers; i++) {
        const struct metadata_broker *b = &img->brokers[i];
        struct metadata_record br = {.type = METADATA_REC_BROKER_REGISTRATION};
        br.broker =
            (struct metadata_rec_broker){b->id, b->port, b->host, b->rack, b->epoch, {0}, 1};
        memcpy(br.broker.incarnation, b->incarnation, METADATA_UUID_LEN);
        rc = metadata_batch_append(out, &br);
        if (rc == 0 && b->state != METADATA_BROKER_FENCED) {
            struct metadata_record fr = {.type = METADATA_REC_BROKER_FENCE};
            fr.broker_fence = (struct metadata_rec_broker_fence){b->id, b->epoch, b->state};
            rc = metadata_batch_append(out, &fr);
        }
    }
    for (size_t i = 0; rc == 0 && i < img->n_controllers + img->n_observers; i++) {
        bool ctl = i < img->n_controllers;
        const struct metadata_endpoint *c =
            ctl ? &img->controllers[i] : &img->observers[i - img->n_controllers];
        struct metadata_record cr = {.type = ctl ? METADATA_REC_CONTROLLER_REGISTRATION
                                                 : METADATA_REC_OBSERVER_REGISTRATION};
        cr.endpoint = (struct metadata_rec_endpoint){c->id, c->port, c->host};
        rc = metadata_batch_append(out, &cr);
    }
    if (rc == 0 && img->next_producer_id > 0) {
        struct metadata_record pr = {.type = METADATA_REC_PRODUCER_IDS};
        pr.producer_ids.broker_id = -1;
        pr.producer_ids.next_block_start = img->next_producer_id;
        rc = metadata_batch_append(out, &pr);
    }
    for (size_t i = 0; rc == 0 && i < img->n_topics; i++)
        rc = encode_topic(img->topics_by_name[i], out);
    for (size_t i = 0; rc == 0 && i < img->n_broker_configs; i++) {
        const struct metadata_broker_configs *bc = &img->broker_configs[i];
        struct metadata_record cr = {.type = METADATA_REC_BROKER_CONFIG};
        cr.broker_config =
            (struct metadata_rec_broker_config){bc->broker_id, bc->n_configs, bc->configs};
        rc = metadata_batch_append(out, &cr);
    }
    if (rc == 0)
        rc = image_quotas_encode(img, out);
    if (rc == 0)
        rc = image_scram_encode(img, out);
    if (rc == 0)
        rc = image_acls_encode(img, out);
    return rc ? rc : metadata_batch_finish(out);
}

struct metadata_image *image_decode(const uint8_t *data, size_t len, int *err)
{
    struct metadata_batch batch;
    *err = metadata_batch_decode(data, len, &batch);
    if (*err)
        return NULL;
    struct metadata_image *img = image_new();
    if (img == NULL)
        *err = -ENOMEM;
    for (size_t i = 0; img && i < batch.n_records; i++) {
        int rc = image_apply(img, &batch.records[i]);
        if (rc != 0) {
            /* A snapshot we wrote never contains a record that does not fit. */
            *err = rc < 0 ? rc : -EBADMSG;
            metadata_image_release(img);
            img = NULL;
        }
    }
    metadata_batch_free(&batch);
    return img;
}

/* ---------- topic ids ---------- */

int image_generate_topic_id(uint8_t id[METADATA_UUID_LEN])
{
    static const uint8_t zero[METADATA_UUID_LEN];
    do {
        size_t got = 0;
        while (got < METADATA_UUID_LEN) {
            ssize_t n = getrandom(id + got, METADATA_UUID_LEN - got, 0);
            if (n < 0 && errno != EINTR)
                return -errno;
            if (n > 0)
                got += (size_t)n;
        }
        /* Kafka's Uuid.randomUuid is a version 4 UUID. */
        id[6] = (uint8_t)((id[6] & 0x0f) | 0x40);
        id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
    } while (memcmp(id, zero, METADATA_UUID_LEN) == 0);
    return 0;
}

void metadata_topic_id_format(const uint8_t id[METADATA_UUID_LEN], char out[23])
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < METADATA_UUID_LEN; i += 3) {
        uint32_t v = (uint32_t)id[i] << 16;
        size_t n = METADATA_UUID_LEN - i;
        if (n > 1)
            v |= (uint32_t)id[i + 1] << 8;
        if (n > 2)
            v |= id[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (n > 1)
            out[o++] = alphabet[(v >> 6) & 63];
        if (n > 2)
            out[o++] = alphabet[v & 63];
    }
    out[o] = 0;
}
