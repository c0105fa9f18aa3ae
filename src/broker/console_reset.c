/*
 * The console's offset reset: POST /api/groups/G/offsets?topic=T&to=WHERE[&value=N][&partition=P]
 * moves group G's committed offsets of topic T (every partition, or P) to the earliest or
 * latest offset, a given offset (clamped to [earliest, latest], as kafka-consumer-groups
 * --reset-offsets --to-offset does) or the first offset at or after a timestamp in ms (the
 * latest when every record is older, as --to-datetime).
 *
 * As Kafka's tool, only while the group has no members (state Empty, or Dead for a group that
 * does not exist yet): a running consumer would overwrite the reset with its next commit.
 * Anything else is 409. Offsets are looked up with ListOffsets (librdkafka's offsets_for_times,
 * where -2 and -1 mean earliest and latest: 2.0.2 has no ListOffsets admin call) and written
 * with AlterConsumerGroupOffsets, both through this broker's listener (console_admin.c), so the
 * partition leaders and the group coordinator may be any broker. HTTP thread only.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "broker/console_admin.h"
#include "broker/console_api.h"
#include "broker/console_security.h"
#include "cluster/controller.h"
#include "console/json.h"

enum console_reset_to { RESET_EARLIEST, RESET_LATEST, RESET_OFFSET, RESET_TIMESTAMP };

struct console_reset {
    const char *group, *topic;
    enum console_reset_to to;
    int64_t value;     /* the offset or timestamp */
    int32_t partition; /* -1: every partition */
    uint32_t n_partitions;
};

static int console_reset_args(const struct console_request *req, struct console_reset *r,
                              struct expo *e)
{
    const char *to = req->arg(req, "to");
    const char *value = req->arg(req, "value");
    const char *part = req->arg(req, "partition");
    r->topic = req->arg(req, "topic");
    if (r->topic == NULL || r->topic[0] == '\0' || strlen(r->topic) > 249)
        return json_error(e, 400, "topic must name the topic whose offsets to reset");
    if (to == NULL)
        to = "";
    if (strcmp(to, "earliest") == 0)
        r->to = RESET_EARLIEST;
    else if (strcmp(to, "latest") == 0)
        r->to = RESET_LATEST;
    else if (strcmp(to, "offset") == 0)
        r->to = RESET_OFFSET;
    else if (strcmp(to, "timestamp") == 0)
        r->to = RESET_TIMESTAMP;
    else
        return json_error(e, 400, "to must be earliest, latest, offset or timestamp");
    r->value = -1;
    if (r->to == RESET_OFFSET || r->to == RESET_TIMESTAMP) {
        r->value = console_api_parse_count(value);
        if (r->value < 0)
            return json_error(e, 400, "value must be a non-negative %s",
                              r->to == RESET_OFFSET ? "offset" : "timestamp in ms");
    }
    r->partition = -1;
    if (part != NULL && part[0] != '\0') {
        int64_t p = console_api_parse_count(part);
        if (p < 0 || p > INT32_MAX)
            return json_error(e, 400, "partition must be a number from 0 to 2147483647");
        r->partition = (int32_t)p;
    }
    return 0;
}

/* Checks the topic and partition against the metadata image. 0 or a 404/503. */
static int console_reset_topic(struct broker *b, struct console_reset *r, struct expo *e)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    if (img == NULL)
        return json_error(e, 503, "the metadata image is not loaded yet");
    const struct metadata_topic *t = metadata_image_topic_by_name(img, r->topic);
    int rc = 0;
    if (t == NULL)
        rc = json_error(e, 404, "unknown topic '%.249s'", r->topic);
    else if (r->partition >= 0 && (uint32_t)r->partition >= t->n_partitions)
        rc = json_error(e, 404, "topic '%.249s' has no partition %d", r->topic, r->partition);
    else
        r->n_partitions = t->n_partitions;
    metadata_image_release(img);
    return rc;
}

/* 0 when the group has no members (Empty or Dead), else a 409 or 503 written to e. */
static int console_reset_check_empty(rd_kafka_t *rk, rd_kafka_queue_t *q, const char *group,
                                     struct expo *e)
{
    char err[512];
    rd_kafka_event_t *ev = console_admin_describe_group(rk, q, group, err, sizeof(err));
    if (ev == NULL)
        return json_error(e, 503, "cannot describe group '%.249s': %s", group, err);
    size_t n = 0;
    const rd_kafka_ConsumerGroupDescription_t **d = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(ev), &n);
    int rc = 0;
    if (n != 1 || rd_kafka_ConsumerGroupDescription_error(d[0])) {
        rc = json_error(e, 503, "cannot describe group '%.249s'", group);
    } else {
        rd_kafka_consumer_group_state_t st = rd_kafka_ConsumerGroupDescription_state(d[0]);
        if (st != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY && st != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD)
            rc = json_error(e, 409,
                            "group '%.249s' is %s with %zu member(s): offsets are reset only "
                            "while a group is empty (stop its consumers first)",
                            group, rd_kafka_consumer_group_state_name(st),
                            rd_kafka_ConsumerGroupDescription_member_count(d[0]));
    }
    rd_kafka_event_destroy(ev);
    return rc;
}

/* The reset's partitions, each with offset set to `ts` for a ListOffsets lookup. */
static rd_kafka_topic_partition_list_t *console_reset_list(const struct console_reset *r,
                                                           int64_t ts)
{
    rd_kafka_topic_partition_list_t *l =
        rd_kafka_topic_partition_list_new(r->partition >= 0 ? 1 : (int)r->n_partitions);
    for (uint32_t i = 0; i < r->n_partitions; i++)
        if (r->partition < 0 || (int32_t)i == r->partition)
            rd_kafka_topic_partition_list_add(l, r->topic, (int32_t)i)->offset = ts;
    return l;
}

/* ListOffsets for every partition of l (offset fields in: timestamps, out: offsets). */
static int console_reset_lookup(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *l, struct expo *e)
{
    rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(rk, l, CONSOLE_ADMIN_TIMEOUT_MS);
    for (int i = 0; !err && i < l->cnt; i++)
        err = l->elems[i].err;
    if (err)
        return json_error(e, 503, "cannot look up the offsets of '%.249s': %s", l->elems[0].topic,
                          rd_kafka_err2str(err));
    return 0;
}

/* Fills target[i].offset with where partition i's committed offset goes. 0 or an error. */
static int console_reset_targets(rd_kafka_t *rk, const struct console_reset *r,
                                 rd_kafka_topic_partition_list_t *target, struct expo *e)
{
    rd_kafka_topic_partition_list_t *lo = console_reset_list(r, RD_KAFKA_OFFSET_BEGINNING);
    rd_kafka_topic_partition_list_t *hi = console_reset_list(r, RD_KAFKA_OFFSET_END);
    int rc = console_reset_lookup(rk, lo, e);
    if (rc == 0)
        rc = console_reset_lookup(rk, hi, e);
    if (rc == 0 && r->to == RESET_TIMESTAMP)
        rc = console_reset_lookup(rk, target, e);
    for (int i = 0; rc == 0 && i < target->cnt; i++) {
        int64_t low = lo->elems[i].offset, high = hi->elems[i].offset,
                *o = &target->elems[i].offset;
        /* offsets_for_times answers in place, so the three lists stay in the same order. */
        assert(lo->elems[i].partition == target->elems[i].partition &&
               hi->elems[i].partition == target->elems[i].partition);
        if (r->to == RESET_EARLIEST)
            *o = low;
        else if (r->to == RESET_LATEST || (r->to == RESET_TIMESTAMP && *o < 0))
            *o = high;
        else if (r->to == RESET_OFFSET)
            *o = r->value < low ? low : r->value > high ? high : r->value;
    }
    rd_kafka_topic_partition_list_destroy(lo);
    rd_kafka_topic_partition_list_destroy(hi);
    return rc;
}

/* HTTP status for an error of AlterConsumerGroupOffsets. */
static int console_reset_status(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID:
    case RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION:
    case RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS:
        return 409; /* a consumer joined after the check */
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return 404;
    case RD_KAFKA_RESP_ERR_INVALID_GROUP_ID:
    case RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_COMMIT_OFFSET_SIZE:
        return 400;
    default:
        return 503;
    }
}

/* The first error of an AlterConsumerGroupOffsets answer (group or partition level). */
static rd_kafka_resp_err_t console_reset_result_error(rd_kafka_event_t *ev, const char **msg)
{
    size_t n = 0;
    const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
    *msg = "";
    if (n != 1)
        return RD_KAFKA_RESP_ERR__BAD_MSG;
    const rd_kafka_error_t *ge = rd_kafka_group_result_error(gr[0]);
    if (ge) {
        *msg = rd_kafka_error_string(ge);
        return rd_kafka_error_code(ge);
    }
    const rd_kafka_topic_partition_list_t *ps = rd_kafka_group_result_partitions(gr[0]);
    for (int i = 0; ps && i < ps->cnt; i++)
        if (ps->elems[i].err)
            return ps->elems[i].err;
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Commits target for the group and writes the answer. HTTP status. */
static int console_reset_commit(rd_kafka_t *rk, rd_kafka_queue_t *q, const struct console_reset *r,
                                const rd_kafka_topic_partition_list_t *target, struct expo *e)
{
    char err[512];
    rd_kafka_AlterConsumerGroupOffsets_t *alter =
        rd_kafka_AlterConsumerGroupOffsets_new(r->group, target);
    rd_kafka_AdminOptions_t *ao =
        console_admin_options(rk, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS);
    rd_kafka_AlterConsumerGroupOffsets(rk, &alter, 1, ao, q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_AlterConsumerGroupOffsets_destroy(alter);
    rd_kafka_event_t *ev = console_admin_wait(q, err, sizeof(err));
    if (ev == NULL)
        return json_error(e, 503, "cannot reset the offsets of group '%.249s': %s", r->group, err);
    const char *msg;
    rd_kafka_resp_err_t kerr = console_reset_result_error(ev, &msg);
    int status = 200;
    if (kerr) {
        status = json_error(e, console_reset_status(kerr),
                            "cannot reset the offsets of group '%.249s': %s%s%s", r->group,
                            rd_kafka_err2name(kerr), msg[0] ? ": " : "", msg);
    } else {
        expo_printf(e, "{\"group_id\":");
        json_string(e, r->group);
        expo_printf(e, ",\"topic\":");
        json_string(e, r->topic);
        expo_printf(e, ",\"offsets\":[");
        for (int i = 0; i < target->cnt; i++)
            expo_printf(e, "%s{\"partition\":%d,\"offset\":%lld}", i ? "," : "",
                        target->elems[i].partition, (long long)target->elems[i].offset);
        expo_printf(e, "]}");
    }
    rd_kafka_event_destroy(ev);
    return status;
}

int console_api_reset_offsets(struct broker *b, const char *group,
                              const struct console_request *req, struct expo *e)
{
    struct console_reset r = {.group = group};
    int rc = console_reset_args(req, &r, e);
    /* OffsetCommit's rights: READ on the group and on the topic. */
    if (rc == 0 && !console_allowed(b, req, NULL, ACL_RESOURCE_GROUP, group, ACL_OPERATION_READ))
        rc = console_denied(e, req, "READ", "group", group);
    if (rc == 0 && !console_allowed(b, req, NULL, ACL_RESOURCE_TOPIC, r.topic, ACL_OPERATION_READ))
        rc = console_denied(e, req, "READ", "topic", r.topic);
    if (rc == 0)
        rc = console_reset_topic(b, &r, e);
    if (rc != 0)
        return rc;
    char err[512];
    rd_kafka_t *rk = console_admin_client(b, err, sizeof(err));
    if (rk == NULL)
        return json_error(e, 503, "cannot reset the offsets of group '%.249s': %s", group, err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_topic_partition_list_t *target = console_reset_list(&r, r.value);
    rc = console_reset_check_empty(rk, q, group, e);
    if (rc == 0)
        rc = console_reset_targets(rk, &r, target, e);
    if (rc == 0)
        rc = console_reset_commit(rk, q, &r, target, e);
    rd_kafka_topic_partition_list_destroy(target);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return rc;
}
