/* Stray replicas (see stray_logs.h). */
#include "broker/stray_logs.h"

#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/partition.h"
#include "broker/partition_registry.h"
#include "storage/log_manager.h"
#include "storage/partition_metadata.h"

struct stray_candidate {
    char *topic;
    int32_t index;
    const char *why; /* static string */
};

struct stray_scan {
    struct partition_registry *reg;
    const struct metadata_image *img;
    struct stray_candidate *v;
    size_t n, cap;
    bool oom;
};

static bool placed_here(const struct metadata_topic *t, int32_t index, int32_t node)
{
    if (t == NULL || index < 0 || (uint32_t)index >= t->n_partitions)
        return false;
    const struct metadata_partition *mp = &t->partitions[index];
    for (uint32_t i = 0; i < mp->n_replicas; i++)
        if (mp->replicas[i] == node)
            return true;
    return false;
}

/* Why LOG is stray under IMG, or NULL when it is not. */
static const char *stray_reason(struct stray_scan *s, struct log *log)
{
    const char *topic = log_topic(log);
    int32_t index = log_partition(log);
    int32_t node = s->reg->b->cfg.node_id;
    uint8_t id[PARTITION_METADATA_ID_LEN];
    int rc = partition_metadata_read(log_dir_path(log), id);
    const struct metadata_topic *t = rc == 0 ? metadata_image_topic_by_id(s->img, id)
                                             : metadata_image_topic_by_name(s->img, topic);
    if (rc == 0 && t != NULL && strcmp(t->name, topic) != 0)
        return "its topic id belongs to a topic of another name";
    if (t == NULL)
        return rc == 0 ? "its topic id is not in the metadata (topic deleted)"
                       : "its topic is not in the metadata (topic deleted)";
    if (!placed_here(t, index, node))
        return "the metadata does not place this partition on this node";
    return NULL;
}

static void scan_one(struct log *log, void *arg)
{
    struct stray_scan *s = arg;
    const char *why = stray_reason(s, log);
    if (why == NULL || s->oom)
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        struct stray_candidate *v = realloc(s->v, cap * sizeof(*v));
        if (v == NULL) {
            s->oom = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    char *topic = strdup(log_topic(log));
    if (topic == NULL) {
        s->oom = true;
        return;
    }
    s->v[s->n++] = (struct stray_candidate){topic, log_partition(log), why};
}

bool stray_log_is_other_topic(struct log *log, const struct metadata_topic *t)
{
    uint8_t id[PARTITION_METADATA_ID_LEN];
    return partition_metadata_read(log_dir_path(log), id) == 0 &&
           memcmp(id, t->id, PARTITION_METADATA_ID_LEN) != 0;
}

void stray_log_set_aside(struct partition_registry *reg, const char *topic, int32_t index,
                         const char *why)
{
    struct log *log = log_manager_remove(reg->logs, topic, index);
    if (log == NULL)
        return;
    char *dir = strdup(log_dir_path(log));
    log_close(log);
    char *stray = dir ? log_dir_mark_stray(dir) : NULL;
    logger_warn("partition", "%s-%d: stray log (%s): %s%s", topic, index, why,
                stray ? "set aside as " : "could not be renamed; left at ",
                stray ? stray : (dir ? dir : "its directory"));
    free(stray);
    free(dir);
}

int stray_logs_sweep(struct partition_registry *reg, const struct metadata_image *img)
{
    struct stray_scan s = {.reg = reg, .img = img};
    log_manager_for_each(reg->logs, scan_one, &s);
    if (s.oom)
        logger_warn("partition", "out of memory looking for stray logs; some are kept");
    int marked = 0;
    for (size_t i = 0; i < s.n; i++) {
        struct partition *p = partition_get(reg, s.v[i].topic, s.v[i].index);
        if (p != NULL) {
            partition_put(p); /* open and served: the registry retires it if it must go */
        } else {
            stray_log_set_aside(reg, s.v[i].topic, s.v[i].index, s.v[i].why);
            marked++;
        }
        free(s.v[i].topic);
    }
    free(s.v);
    return marked;
}
