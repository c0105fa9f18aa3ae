/* Leadership checks for client requests (see leadership.h). */
#include "broker/leadership.h"

#include "broker/broker_internal.h"
#include "broker/partition.h"
#include "broker/request.h"
#include "proto/gen/errors.h"

static bool partition_exists(struct broker *b, const char *topic, const uint8_t *topic_id,
                             int32_t index)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const struct metadata_topic *t = topic ? metadata_image_topic_by_name(img, topic)
                                           : metadata_image_topic_by_id(img, topic_id);
    bool exists = t != NULL && index >= 0 && (uint32_t)index < t->n_partitions;
    metadata_image_release(img);
    return exists;
}

struct partition *partition_get_led(struct broker *b, const char *topic, const uint8_t *topic_id,
                                    int32_t index, int16_t unknown_err, int16_t *err)
{
    struct partition *p = topic ? partition_get(b->parts, topic, index)
                                : partition_get_by_id(b->parts, topic_id, index);
    if (p != NULL && atomic_load(&p->leader) == b->cfg.node_id) {
        *err = KAFKA_ERR_NONE;
        return p;
    }
    if (p != NULL)
        partition_put(p);
    *err = partition_exists(b, topic, topic_id, index) ? KAFKA_ERR_NOT_LEADER_OR_FOLLOWER
                                                       : unknown_err;
    return NULL;
}

struct partition *partition_get_replica(struct broker *b, const char *topic,
                                        const uint8_t *topic_id, int32_t index, int16_t unknown_err,
                                        int16_t *err)
{
    struct partition *p = topic ? partition_get(b->parts, topic, index)
                                : partition_get_by_id(b->parts, topic_id, index);
    if (p != NULL && !atomic_load(&p->deleted)) {
        *err = KAFKA_ERR_NONE;
        return p;
    }
    if (p != NULL)
        partition_put(p);
    *err = partition_exists(b, topic, topic_id, index) ? KAFKA_ERR_NOT_LEADER_OR_FOLLOWER
                                                       : unknown_err;
    return NULL;
}

struct karray_int32 broker_offline_replicas(struct broker_req *r, const struct metadata_image *img,
                                            const struct metadata_partition *mp)
{
    int32_t off[mp->n_replicas ? mp->n_replicas : 1];
    uint32_t n = 0;
    for (uint32_t i = 0; i < mp->n_replicas; i++) {
        const struct metadata_broker *mb = metadata_image_broker(img, mp->replicas[i]);
        if (mb == NULL || mb->state == METADATA_BROKER_FENCED)
            off[n++] = mp->replicas[i];
    }
    return broker_ids(r, off, n);
}
