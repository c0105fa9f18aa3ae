/*
 * The metadata image: the state obtained by applying every committed metadata record, in the
 * shape readers need it — brokers, topics by name and by id, partitions, topic config
 * overrides, the next producer id block.
 *
 * A published image is immutable and reference-counted; any thread may read it after
 * metadata_image_acquire() (controller.h) until metadata_image_release(). The controller
 * builds the next image copy-on-write: image_clone() copies the sorted pointer arrays and
 * shares every topic (topics are refcounted too), and a mutation replaces only the topics it
 * touches. So applying one entry costs O(topics) pointer copies plus the touched topics, and a
 * lookup is a binary search, O(log n).
 *
 * Functions that mutate (image_apply_*, image_clone, image_restore) are for the controller
 * thread only, on an image nobody else can see yet.
 */
#ifndef GREGOR_CLUSTER_IMAGE_H
#define GREGOR_CLUSTER_IMAGE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/records.h"

struct metadata_broker {
    int32_t id;
    int32_t port;
    char *host;
    char *rack;    /* NULL if none */
    int64_t epoch; /* of the current registration */
    uint8_t incarnation[METADATA_UUID_LEN];
    uint8_t state; /* enum metadata_broker_state */
};

/* True when the broker may lead and be placed on: registered, unfenced, not shutting down. */
static inline bool metadata_broker_usable(const struct metadata_broker *b)
{
    return b != NULL && b->state == METADATA_BROKER_UNFENCED;
}

/* A node's endpoint: a controller's Kafka-protocol one, or a broker-only node's raft address. */
struct metadata_endpoint {
    int32_t id;
    int32_t port;
    char *host;
};

struct metadata_partition {
    int32_t partition;
    int32_t leader; /* -1 if none */
    int32_t leader_epoch;
    int32_t partition_epoch;
    uint32_t n_replicas;
    uint32_t n_isr;
    int32_t *replicas;
    int32_t *isr;
    /* An ongoing reassignment (both empty when none): replicas = target + removing. */
    uint32_t n_adding, n_removing;
    int32_t *adding, *removing;
};

/* True when id is one of v[0..n) (replica lists, ISRs). */
static inline bool metadata_ids_contain(const int32_t *v, uint32_t n, int32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

struct metadata_topic {
    atomic_uint refcount;
    char *name;
    uint8_t id[METADATA_UUID_LEN];
    uint32_t n_partitions;
    struct metadata_partition *partitions; /* index i holds partition i */
    uint32_t n_configs;
    struct metadata_config_entry *configs; /* overrides, sorted by name, values non-NULL */
};

/* Dynamic broker configs (KIP-226) of one broker, or the cluster default (broker_id -1). */
struct metadata_broker_configs {
    int32_t broker_id;
    uint32_t n_configs;
    struct metadata_config_entry *configs; /* sorted by name, values non-NULL */
};

/* The client quota keys Gregor knows (Kafka's QuotaConfig user and client-id configs). */
enum metadata_quota_key {
    METADATA_QUOTA_PRODUCER_BYTE_RATE,       /* producer_byte_rate, bytes/s (a LONG) */
    METADATA_QUOTA_CONSUMER_BYTE_RATE,       /* consumer_byte_rate, bytes/s (a LONG) */
    METADATA_QUOTA_REQUEST_PERCENTAGE,       /* request_percentage, % of one thread (a DOUBLE) */
    METADATA_QUOTA_CONTROLLER_MUTATION_RATE, /* controller_mutation_rate (stored, not enforced) */
    METADATA_QUOTA_KEYS,
};

/* The quota values of one entity (image_quotas.c). Entities with no value are not kept. */
struct metadata_client_quota {
    uint8_t entity;  /* METADATA_QUOTA_USER | METADATA_QUOTA_CLIENT_ID bits, at least one */
    char *user;      /* NULL: the default user (or no user type, see entity) */
    char *client_id; /* NULL: the default client-id (or no client-id type) */
    uint8_t set;     /* bit k: values[k] is set */
    double values[METADATA_QUOTA_KEYS];
};

/*
 * The ACLs of the cluster, immutable once published and shared by every image until an ACL
 * record changes them (the change builds a new set). bindings[i] has id ids[i]; the strings
 * belong to the set. A new set means a new pointer, so a reader may cache a decision keyed by
 * the set's address while it holds the image.
 */
struct metadata_acls {
    atomic_uint refcount;
    size_t n;
    uint8_t (*ids)[METADATA_UUID_LEN];
    struct acl_binding *bindings;
};

struct metadata_image {
    atomic_uint refcount;
    /* Raft index of the last command applied; grows monotonically, equal on every node. */
    uint64_t version;
    int64_t next_producer_id; /* start of the next producer id block to hand out */
    size_t n_brokers;
    struct metadata_broker *brokers; /* sorted by id, owned by this image */
    size_t n_controllers;
    struct metadata_endpoint *controllers; /* in registration order, owned by this image */
    size_t n_observers;
    struct metadata_endpoint *observers; /* broker-only nodes' raft addresses, likewise */
    size_t n_topics;
    struct metadata_topic **topics_by_name; /* sorted by name */
    struct metadata_topic **topics_by_id;   /* same topics, sorted by id bytes */
    size_t n_broker_configs;
    struct metadata_broker_configs *broker_configs; /* sorted by broker id, none empty */
    size_t n_client_quotas;
    struct metadata_client_quota *client_quotas; /* sorted by entity (quota_entity_cmp) */
    /* One more than the image version the client quotas last changed at (0: no quota record
     * applied since the image was built or restored). Every change sets it above any earlier
     * value, so a reader's cache keyed on it is invalidated by any change. */
    uint64_t quotas_version;
    struct metadata_scram_set *scram; /* SCRAM credentials (image_scram.h); NULL when none */
    struct metadata_acls *acls;       /* NULL when there are none */
};

/* ---- reading (any thread holding a reference) ---- */

const struct metadata_topic *metadata_image_topic_by_name(const struct metadata_image *img,
                                                          const char *name);
const struct metadata_topic *metadata_image_topic_by_id(const struct metadata_image *img,
                                                        const uint8_t id[METADATA_UUID_LEN]);
const struct metadata_broker *metadata_image_broker(const struct metadata_image *img, int32_t id);
/* The registered Kafka-protocol endpoint of controller `id`, or NULL. */
const struct metadata_endpoint *metadata_image_controller(const struct metadata_image *img,
                                                          int32_t id);
/* The raft (standby) address registered by broker-only node `id`, or NULL. */
const struct metadata_endpoint *metadata_image_observer(const struct metadata_image *img,
                                                        int32_t id);
/* Number of brokers that are metadata_broker_usable. */
size_t metadata_image_usable_brokers(const struct metadata_image *img);
/* The override for `name`, or NULL when the topic uses the broker/default value. */
const char *metadata_topic_config(const struct metadata_topic *t, const char *name);
/* The dynamic broker configs of broker_id (-1: the cluster default), or NULL if none. */
const struct metadata_broker_configs *
metadata_image_broker_configs(const struct metadata_image *img, int32_t broker_id);
/* True when both images hold the same dynamic broker configs. */
bool metadata_image_broker_configs_equal(const struct metadata_image *a,
                                         const struct metadata_image *b);
/* A dynamic broker config value of broker_id (-1: the cluster default), or NULL. */
const char *metadata_image_broker_config(const struct metadata_image *img, int32_t broker_id,
                                         const char *name);

/* Kafka's name of a quota key ("producer_byte_rate"), and back (-1 when unknown). */
const char *metadata_quota_key_name(enum metadata_quota_key k);
int metadata_quota_key_lookup(const char *name);
/* The quota values of exactly this entity (names NULL = default), or NULL. */
const struct metadata_client_quota *metadata_image_client_quota(const struct metadata_image *img,
                                                                uint8_t entity, const char *user,
                                                                const char *client_id);
/* The ACL bindings of the image (none: *n = 0) and the index of the binding with `id` (-1). */
const struct acl_binding *metadata_image_acls(const struct metadata_image *img, size_t *n);
long metadata_image_acl_index(const struct metadata_image *img,
                              const uint8_t id[METADATA_UUID_LEN]);

/* Takes another reference on an image the caller already holds. */
const struct metadata_image *metadata_image_ref(const struct metadata_image *img);
/* Drops a reference; the last one frees the image and any topics only it held. */
void metadata_image_release(const struct metadata_image *img);

/* ---- building (controller thread) ---- */

/* Client quotas (image_quotas.c): deep copy, free, apply a ClientQuota record, and the
 * records that recreate them in a snapshot. Return 0 / -ENOMEM (apply: 1 when skipped). */
int image_quotas_copy(struct metadata_image *dst, const struct metadata_image *src);
void image_quotas_free(struct metadata_image *img);
int image_apply_client_quota(struct metadata_image *img, const struct metadata_rec_client_quota *r);
int image_quotas_encode(const struct metadata_image *img, struct metadata_buf *out);

/* A new empty image with refcount 1; NULL on allocation failure. */
struct metadata_image *image_new(void);
/* A private copy sharing all topics with `img`, refcount 1; NULL on allocation failure. */
struct metadata_image *image_clone(const struct metadata_image *img);

/*
 * Applies one record. Records that do not fit the image (unknown topic id, duplicate name,
 * partition out of range) are skipped and counted as 1 in the return so the caller can log;
 * the outcome is deterministic, so every node skips the same records. Returns 0 applied,
 * 1 skipped, -ENOMEM.
 */
int image_apply(struct metadata_image *img, const struct metadata_record *rec);

/*
 * Serializes the whole image as a record batch (header, brokers, controllers, topics with their
 * configs, partitions, producer ids) into `out`. Returns 0 or -ENOMEM.
 */
int image_encode(const struct metadata_image *img, struct metadata_buf *out);

/* Builds an image from a batch made by image_encode. NULL + *err (-EBADMSG/-ENOMEM). */
struct metadata_image *image_decode(const uint8_t *data, size_t len, int *err);

/* ACLs of an image (image_acls.c): the clone shares the set; apply adds (a new id) or removes
 * (a known id), else returns 1 (skipped); encode appends one record per ACL. */
void image_acls_share(struct metadata_image *dst, const struct metadata_image *src);
void image_acls_release(struct metadata_acls *acls);
int image_acls_apply(struct metadata_image *img, const struct metadata_rec_acl *rec);
int image_acls_encode(const struct metadata_image *img, struct metadata_buf *out);

/* Generates a random non-zero topic id (getrandom); returns 0 or -errno. */
int image_generate_topic_id(uint8_t id[METADATA_UUID_LEN]);

/* Formats a topic id the way Kafka prints it: URL-safe base64 without padding (22 chars). */
void metadata_topic_id_format(const uint8_t id[METADATA_UUID_LEN], char out[23]);

#endif
