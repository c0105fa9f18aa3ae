/*
 * The shared topics -> partitions response loop (topic_partitions.h). Generated structs are
 * reached by offset and element size; the arrays are copied in and out with memcpy, since
 * each has its own struct type with the common layout checked below.
 */
#include "broker/topic_partitions.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "base/arena.h"

struct topic_partitions_array {
    int32_t n;
    void *v;
};

static_assert(sizeof(struct karray_int32) == sizeof(struct topic_partitions_array) &&
                  offsetof(struct karray_int32, n) == offsetof(struct topic_partitions_array, n) &&
                  offsetof(struct karray_int32, v) == offsetof(struct topic_partitions_array, v),
              "generated arrays are { int32_t n; T *v; }");

static struct topic_partitions_array array_at(const void *at)
{
    struct topic_partitions_array a;
    memcpy(&a, at, sizeof(a));
    return a;
}

/* A zeroed array of max(n, 0) elements (one spare, so never NULL when empty) stored at `at`. */
static int array_alloc(struct broker_req *r, int32_t n, size_t elem_size, void *at)
{
    struct topic_partitions_array a = {n > 0 ? n : 0, NULL};
    a.v = arena_calloc(r->arena, (size_t)a.n + 1, elem_size);
    memcpy(at, &a, sizeof(a));
    return a.v ? 0 : -ENOMEM;
}

static int answer_topic(struct broker_req *r, const struct topic_partitions_shape *s,
                        const uint8_t *rt, uint8_t *t)
{
    s->resp_topic_init(t);
    const struct kstr *name = (const struct kstr *)(rt + s->req_name);
    *(struct kstr *)(t + s->resp_name) = *name;
    struct topic_partitions_array in = array_at(rt + s->req_parts);
    int rc = array_alloc(r, in.n, s->resp_part_size, t + s->resp_parts);
    char *topic = broker_name(r, *name);
    if (rc < 0 || topic == NULL)
        return -ENOMEM;
    struct topic_partitions_array out = array_at(t + s->resp_parts);
    for (int32_t j = 0; j < out.n && rc == 0; j++)
        rc = s->fill(r, topic, (const uint8_t *)in.v + (size_t)j * s->req_part_size,
                     (uint8_t *)out.v + (size_t)j * s->resp_part_size);
    return rc;
}

int topic_partitions_answer(struct broker_req *r, const struct topic_partitions_shape *shape,
                            const void *req_topics, void *resp_topics)
{
    struct topic_partitions_array in = array_at(req_topics);
    int rc = array_alloc(r, in.n, shape->resp_topic_size, resp_topics);
    struct topic_partitions_array out = array_at(resp_topics);
    for (int32_t i = 0; i < out.n && rc == 0; i++)
        rc = answer_topic(r, shape, (const uint8_t *)in.v + (size_t)i * shape->req_topic_size,
                          (uint8_t *)out.v + (size_t)i * shape->resp_topic_size);
    if (rc < 0)
        broker_close(r, "out of memory");
    return rc;
}
