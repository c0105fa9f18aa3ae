/* Produce-time topic policies; see produce_policy.h. */
#include "broker/produce_policy.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/gen/errors.h"
#include "record/record_batch.h"
#include "record/record_builder.h"
#include "record/record_iter.h"

#define POLICY_MAX_DECOMPRESSED (256u << 20)

struct policy {
    bool need_keys;
    const char *key_message; /* Kafka's text for a keyless record, in the report's arena */
    bool check_time;
    int64_t earliest, latest; /* allowed CreateTime range */
    int recompress;           /* target codec, or -1 */
};

/* Kafka's messages, so that clients and operators see the same text. */
#define POLICY_KEY_MESSAGE                                                                         \
    "Compacted topic cannot accept message without key in topic partition %s-%d"
#define POLICY_TIMESTAMP_MESSAGE                                                                   \
    "Timestamp %lld of message with offset %lld is out of range. The timestamp should be within "  \
    "[%lld, %lld]"
#define POLICY_SHOWN_ERRORS 3

/* Appends one record error to the report (arena-allocated, grown by doubling). 0 or -ENOMEM. */
static int report_add(struct produce_policy_report *rep, int32_t index, const char *message)
{
    if (rep->n_errors == rep->cap) {
        size_t cap = rep->cap ? rep->cap * 2 : 8;
        struct produce_record_error *v = arena_calloc(rep->arena, cap, sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        if (rep->n_errors)
            memcpy(v, rep->errors, rep->n_errors * sizeof(*v));
        rep->errors = v;
        rep->cap = cap;
    }
    rep->errors[rep->n_errors++] = (struct produce_record_error){index, message};
    return 0;
}

/* The partition's error message for a batch refused record by record, as Kafka words it. */
static const char *report_summary(struct produce_policy_report *rep, bool timestamp)
{
    if (timestamp)
        return "One or more records have been rejected due to invalid timestamp";
    size_t shown = rep->n_errors < POLICY_SHOWN_ERRORS ? rep->n_errors : POLICY_SHOWN_ERRORS;
    size_t len = 160;
    for (size_t i = 0; i < shown; i++)
        len += strlen(rep->errors[i].message) + 48;
    char *out = arena_alloc(rep->arena, len);
    if (out == NULL)
        return NULL;
    size_t at = (size_t)snprintf(out, len,
                                 "One or more records have been rejected due to %zu record errors "
                                 "in total, and only showing the first three errors at most: [",
                                 rep->n_errors);
    for (size_t i = 0; i < shown && at < len; i++)
        at += (size_t)snprintf(out + at, len - at, "%sRecordError(batchIndex=%d, message='%s')",
                               i ? ", " : "", rep->errors[i].batch_index, rep->errors[i].message);
    if (at < len)
        snprintf(out + at, len - at, "]");
    return out;
}

/* Checks one record (key first, then timestamp, as Kafka); records a rejection in rep.
 * Returns the record's Kafka error code. */
static int16_t policy_check_record(const struct policy *pol, const struct record *rec,
                                   int32_t index, struct produce_policy_report *rep)
{
    const char *msg = NULL;
    int16_t err = KAFKA_ERR_NONE;
    if (pol->need_keys && rec->key == NULL) {
        err = KAFKA_ERR_INVALID_RECORD;
        msg = pol->key_message;
    } else if (pol->check_time &&
               (rec->timestamp < pol->earliest || rec->timestamp > pol->latest)) {
        err = KAFKA_ERR_INVALID_TIMESTAMP;
        char buf[256];
        snprintf(buf, sizeof(buf), POLICY_TIMESTAMP_MESSAGE, (long long)rec->timestamp,
                 (long long)rec->offset, (long long)pol->earliest, (long long)pol->latest);
        msg = arena_strndup(rep->arena, buf, strlen(buf));
    }
    if (err != KAFKA_ERR_NONE && (msg == NULL || report_add(rep, index, msg) != 0))
        return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    return err;
}

/*
 * Walks every record, checking each and (with b, while none was refused) copying them into b.
 * Returns the batch's Kafka error code: the iteration's if the batch cannot be read, else
 * INVALID_TIMESTAMP if any record had one, else INVALID_RECORD if any record was refused.
 */
static int16_t policy_walk(const struct policy *pol, const struct krecords *rec,
                           const struct record_batch_header *h, struct record_builder *b,
                           struct produce_policy_report *rep)
{
    struct record_iter it;
    struct record r;
    int16_t err = KAFKA_ERR_NONE;
    bool refused = false, timestamp = false;
    int32_t index = 0;
    int rc = record_iter_init(&it, rec->data, (size_t)rec->len, POLICY_MAX_DECOMPRESSED);
    while (err == KAFKA_ERR_NONE && rc == 0 && (rc = record_iter_next(&it, &r)) == 1) {
        rc = 0;
        int16_t e = policy_check_record(pol, &r, index++, rep);
        if (e == KAFKA_ERR_UNKNOWN_SERVER_ERROR)
            err = e;
        timestamp |= e == KAFKA_ERR_INVALID_TIMESTAMP;
        refused |= e != KAFKA_ERR_NONE;
        if (!refused && b != NULL && record_builder_copy_record(b, h, &r) != 0)
            err = KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    }
    record_iter_release(&it);
    if (rc < 0)
        return (int16_t)record_error_to_kafka(rc);
    if (err != KAFKA_ERR_NONE || !refused)
        return err;
    assert(rep->n_errors > 0); /* a refused batch always names its records */
    rep->message = report_summary(rep, timestamp);
    return timestamp ? KAFKA_ERR_INVALID_TIMESTAMP : KAFKA_ERR_INVALID_RECORD;
}

/* Kafka's message for a keyless record, shared by every such record of the batch. */
static const char *policy_key_message(struct partition *p, struct arena *arena)
{
    int len = snprintf(NULL, 0, POLICY_KEY_MESSAGE, p->topic, p->index);
    char *out = len > 0 ? arena_alloc(arena, (size_t)len + 1) : NULL;
    if (out)
        snprintf(out, (size_t)len + 1, POLICY_KEY_MESSAGE, p->topic, p->index);
    return out;
}

int16_t produce_policy_apply(struct partition *p, int64_t now_ms, struct krecords *rec,
                             uint8_t **rebuilt, struct produce_policy_report *report)
{
    struct record_batch_header h;
    if (record_batch_header_parse(rec->data, (size_t)rec->len, &h) != 0)
        return KAFKA_ERR_CORRUPT_MESSAGE;
    struct policy pol = {.need_keys = atomic_load(&p->compact), .recompress = -1};
    int64_t before = atomic_load(&p->ts_before_max_ms);
    int64_t after = atomic_load(&p->ts_after_max_ms);
    bool create_time =
        !(h.attributes & RECORD_ATTR_LOG_APPEND_TIME) && !atomic_load(&p->log_append_time);
    if (create_time && (before != INT64_MAX || after != INT64_MAX)) {
        pol.check_time = true;
        pol.earliest = before == INT64_MAX ? INT64_MIN : now_ms - before;
        pol.latest = after == INT64_MAX ? INT64_MAX : now_ms + after;
    }
    int codec = atomic_load(&p->compression_codec);
    if (codec >= 0 && codec != record_batch_compression(&h) &&
        !(h.attributes & RECORD_ATTR_CONTROL))
        pol.recompress = codec;
    if (!pol.need_keys && !pol.check_time && pol.recompress < 0)
        return KAFKA_ERR_NONE;
    if (pol.need_keys && (pol.key_message = policy_key_message(p, report->arena)) == NULL)
        return KAFKA_ERR_UNKNOWN_SERVER_ERROR;
    if (pol.recompress < 0)
        return policy_walk(&pol, rec, &h, NULL, report);
    struct record_builder b;
    record_builder_init_like(&b, &h, pol.recompress);
    int16_t err = policy_walk(&pol, rec, &h, &b, report);
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
