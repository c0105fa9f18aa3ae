/* Produce-time topic policies; see produce_policy.h. */
#include "broker/produce_policy.h"

#include <stdbool.h>
#include <stdlib.h>

#include "proto/gen/errors.h"
#include "record/record_batch.h"
#include "record/record_builder.h"
#include "record/record_iter.h"

#define POLICY_MAX_DECOMPRESSED (256u << 20)

struct policy {
    bool need_keys;
    bool check_time;
    int64_t earliest, latest; /* allowed CreateTime range */
    int recompress;           /* target codec, or -1 */
};

static int16_t policy_check_record(const struct policy *pol, const struct record *rec)
{
    if (pol->need_keys && rec->key == NULL)
        return KAFKA_ERR_INVALID_RECORD;
    if (pol->check_time && (rec->timestamp < pol->earliest || rec->timestamp > pol->latest))
        return KAFKA_ERR_INVALID_TIMESTAMP;
    return KAFKA_ERR_NONE;
}

/* Walks the records, checking each and (with b) copying them into b. */
static int16_t policy_walk(const struct policy *pol, const struct krecords *rec,
                           const struct record_batch_header *h, struct record_builder *b)
{
    struct record_iter it;
    struct record r;
    int16_t err = KAFKA_ERR_NONE;
    int rc = record_iter_init(&it, rec->data, (size_t)rec->len, POLICY_MAX_DECOMPRESSED);
    while (err == KAFKA_ERR_NONE && rc == 0 && (rc = record_iter_next(&it, &r)) == 1) {
        rc = 0;
        err = policy_check_record(pol, &r);
        if (err == KAFKA_ERR_NONE && b != NULL && record_builder_copy_record(b, h, &r) != 0)
            err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    }
    record_iter_release(&it);
    if (err == KAFKA_ERR_NONE && rc < 0)
        err = (int16_t)record_error_to_kafka(rc);
    return err;
}

int16_t produce_policy_apply(struct partition *p, int64_t now_ms, struct krecords *rec,
                             uint8_t **rebuilt)
{
    struct record_batch_header h;
    if (record_batch_header_parse(rec->data, (size_t)rec->len, &h) != 0)
        return KAFKA_ERR_CORRUPT_MESSAGE;
    struct policy pol = {.need_keys = atomic_load(&p->compact), .recompress = -1};
    int64_t before = atomic_load(&p->ts_before_max_ms);
    int64_t after = atomic_load(&p->ts_after_max_ms);
    bool create_time = !(h.attributes & RECORD_ATTR_LOG_APPEND_TIME) &&
                       !atomic_load(&p->log_append_time);
    if (create_time && (before != INT64_MAX || after != INT64_MAX)) {
        pol.check_time = true;
        pol.earliest = before == INT64_MAX ? INT64_MIN : now_ms - before;
        pol.latest = after == INT64_MAX ? INT64_MAX : now_ms + after;
    }
    int codec = atomic_load(&p->compression_codec);
    if (codec >= 0 && codec != record_batch_compression(&h) && !(h.attributes & RECORD_ATTR_CONTROL))
        pol.recompress = codec;
    if (!pol.need_keys && !pol.check_time && pol.recompress < 0)
        return KAFKA_ERR_NONE;
    if (pol.recompress < 0)
        return policy_walk(&pol, rec, &h, NULL);
    struct record_builder b;
    record_builder_init_like(&b, &h, pol.recompress);
    int16_t err = policy_walk(&pol, rec, &h, &b);
    uint8_t *out = NULL;
    size_t len = 0;
    if (err == KAFKA_ERR_NONE && record_builder_finish(&b, &out, &len) != 0)
        err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    record_builder_release(&b);
    if (err != KAFKA_ERR_NONE)
        return err;
    if (len > INT32_MAX) {
        free(out);
        return KAFKA_ERR_MESSAGE_TOO_LARGE;
    }
    free(*rebuilt);
    *rebuilt = out;
    rec->data = out;
    rec->len = (int32_t)len;
    return KAFKA_ERR_NONE;
}
