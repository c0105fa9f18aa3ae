/*
 * The console's consumer groups: GET /api/groups and /api/groups/<group>.
 *
 * A group's coordinator may be any broker of the cluster, so the console asks through the
 * Kafka protocol, as any admin tool would: a short-lived librdkafka admin client on this
 * broker's own client listener (ListConsumerGroups, DescribeConsumerGroups,
 * ListConsumerGroupOffsets; console_admin.c), each call bounded in time. Lag is the
 * high watermark minus the committed offset where this broker hosts the partition.
 * Runs on the console's HTTP thread; the client lives for one request.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "broker/console_admin.h"
#include "broker/console_api.h"
#include "broker/console_security.h"
#include "broker/partition.h"
#include "console/json.h"
#include "net/net.h"

static int console_groups_cmp(const void *a, const void *b)
{
    return strcmp(rd_kafka_ConsumerGroupListing_group_id(*(const void *const *)a),
                  rd_kafka_ConsumerGroupListing_group_id(*(const void *const *)b));
}

/* The groups, sorted, leaving out those the user may not DESCRIBE. */
static void console_groups_write_list(struct broker *b, const struct console_request *req,
                                      const rd_kafka_ListConsumerGroups_result_t *res,
                                      struct expo *e)
{
    size_t n;
    const rd_kafka_ConsumerGroupListing_t **src = rd_kafka_ListConsumerGroups_result_valid(res, &n);
    const rd_kafka_ConsumerGroupListing_t **gs = calloc(n + 1, sizeof(*gs));
    if (gs == NULL) {
        e->oom = true;
        return;
    }
    if (n > 0) { /* src is NULL for none */
        memcpy(gs, src, n * sizeof(*gs));
        qsort(gs, n, sizeof(*gs), console_groups_cmp);
    }
    expo_printf(e, "{\"groups\":[");
    size_t shown = 0;
    for (size_t i = 0; i < n; i++) {
        if (!console_allowed(b, req, NULL, ACL_RESOURCE_GROUP,
                             rd_kafka_ConsumerGroupListing_group_id(gs[i]), ACL_OPERATION_DESCRIBE))
            continue;
        expo_printf(e, "%s{\"group_id\":", shown++ ? "," : "");
        json_string(e, rd_kafka_ConsumerGroupListing_group_id(gs[i]));
        expo_printf(e, ",\"state\":");
        json_string(e,
                    rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupListing_state(gs[i])));
        expo_printf(e, ",\"simple\":%s}",
                    rd_kafka_ConsumerGroupListing_is_simple_consumer_group(gs[i]) ? "true"
                                                                                  : "false");
    }
    expo_printf(e, "]}");
    free(gs);
}

int console_api_groups(struct broker *b, const struct console_request *req, struct expo *e)
{
    char err[512];
    rd_kafka_t *rk = console_admin_client(b, err, sizeof(err));
    if (rk == NULL)
        return json_error(e, 503, "cannot ask for the groups: %s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = console_admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS);
    rd_kafka_ListConsumerGroups(rk, ao, q);
    rd_kafka_event_t *ev = console_admin_wait(q, err, sizeof(err));
    int status = 200;
    if (ev == NULL)
        status = json_error(e, 503, "cannot list the groups: %s", err);
    else
        console_groups_write_list(b, req, rd_kafka_event_ListConsumerGroups_result(ev), e);
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return status;
}

static void console_groups_write_members(const rd_kafka_ConsumerGroupDescription_t *d,
                                         struct expo *e)
{
    size_t n = rd_kafka_ConsumerGroupDescription_member_count(d);
    expo_printf(e, "\"members\":[");
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_MemberDescription_t *m = rd_kafka_ConsumerGroupDescription_member(d, i);
        expo_printf(e, "%s{\"member_id\":", i ? "," : "");
        json_string(e, rd_kafka_MemberDescription_consumer_id(m));
        expo_printf(e, ",\"client_id\":");
        json_string(e, rd_kafka_MemberDescription_client_id(m));
        expo_printf(e, ",\"host\":");
        json_string(e, rd_kafka_MemberDescription_host(m));
        expo_printf(e, ",\"assignment\":[");
        const rd_kafka_topic_partition_list_t *a =
            rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(m));
        for (int j = 0; a && j < a->cnt; j++) {
            expo_printf(e, "%s{\"topic\":", j ? "," : "");
            json_string(e, a->elems[j].topic);
            expo_printf(e, ",\"partition\":%d}", a->elems[j].partition);
        }
        expo_printf(e, "]}");
    }
    expo_printf(e, "]");
}

static int console_groups_tp_cmp(const void *a, const void *b)
{
    const rd_kafka_topic_partition_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* Committed offsets with the high watermark and lag where this broker hosts the partition;
 * as OffsetFetch, only of topics the user may DESCRIBE. */
static void console_groups_write_offsets(struct broker *b, const struct console_request *req,
                                         rd_kafka_topic_partition_list_t *parts, struct expo *e)
{
    qsort(parts->elems, (size_t)parts->cnt, sizeof(*parts->elems), console_groups_tp_cmp);
    expo_printf(e, "\"offsets\":[");
    int n = 0;
    for (int i = 0; i < parts->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &parts->elems[i];
        if (tp->offset < 0 ||
            !console_allowed(b, req, NULL, ACL_RESOURCE_TOPIC, tp->topic, ACL_OPERATION_DESCRIBE))
            continue;
        expo_printf(e, "%s{\"topic\":", n++ ? "," : "");
        json_string(e, tp->topic);
        expo_printf(e, ",\"partition\":%d,\"committed\":%lld", tp->partition,
                    (long long)tp->offset);
        struct partition *p = partition_get(b->parts, tp->topic, tp->partition);
        if (p == NULL) {
            expo_printf(e, ",\"high_watermark\":null,\"lag\":null}");
            continue;
        }
        int64_t hw = log_high_watermark(p->log);
        partition_put(p);
        expo_printf(e, ",\"high_watermark\":%lld,\"lag\":%lld}", (long long)hw,
                    (long long)(hw > tp->offset ? hw - tp->offset : 0));
    }
    expo_printf(e, "]");
}

/* DescribeConsumerGroups + ListConsumerGroupOffsets of one group into e. HTTP status. */
static int console_groups_describe(struct broker *b, const struct console_request *req,
                                   rd_kafka_t *rk, rd_kafka_queue_t *q, const char *group,
                                   struct expo *e)
{
    char err[512];
    rd_kafka_event_t *dev = console_admin_describe_group(rk, q, group, err, sizeof(err));
    if (dev == NULL)
        return json_error(e, 503, "cannot describe group '%.249s': %s", group, err);
    size_t n;
    const rd_kafka_ConsumerGroupDescription_t **d = rd_kafka_DescribeConsumerGroups_result_groups(
        rd_kafka_event_DescribeConsumerGroups_result(dev), &n);
    rd_kafka_ListConsumerGroupOffsets_t *lo = rd_kafka_ListConsumerGroupOffsets_new(group, NULL);
    rd_kafka_AdminOptions_t *ao =
        console_admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
    rd_kafka_ListConsumerGroupOffsets(rk, &lo, 1, ao, q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_ListConsumerGroupOffsets_destroy(lo);
    rd_kafka_event_t *oev = console_admin_wait(q, err, sizeof(err));
    size_t no = 0;
    const rd_kafka_group_result_t **res =
        oev ? rd_kafka_ListConsumerGroupOffsets_result_groups(
                  rd_kafka_event_ListConsumerGroupOffsets_result(oev), &no)
            : NULL;
    const rd_kafka_topic_partition_list_t *committed =
        no == 1 && !rd_kafka_group_result_error(res[0]) ? rd_kafka_group_result_partitions(res[0])
                                                        : NULL;
    int status = 200;
    if (n != 1 || rd_kafka_ConsumerGroupDescription_error(d[0])) {
        status =
            json_error(e, 503, "cannot describe group '%.249s': %s", group,
                       n == 1 ? rd_kafka_error_string(rd_kafka_ConsumerGroupDescription_error(d[0]))
                              : "no answer");
    } else if (rd_kafka_ConsumerGroupDescription_state(d[0]) ==
                   RD_KAFKA_CONSUMER_GROUP_STATE_DEAD &&
               (committed == NULL || committed->cnt == 0)) {
        status = json_error(e, 404, "unknown consumer group '%.249s'", group);
    } else {
        const rd_kafka_Node_t *coord = rd_kafka_ConsumerGroupDescription_coordinator(d[0]);
        expo_printf(e, "{\"group_id\":");
        json_string(e, group);
        expo_printf(e, ",\"state\":");
        json_string(
            e, rd_kafka_consumer_group_state_name(rd_kafka_ConsumerGroupDescription_state(d[0])));
        expo_printf(
            e, ",\"coordinator\":%d,\"partition_assignor\":", coord ? rd_kafka_Node_id(coord) : -1);
        json_string(e, rd_kafka_ConsumerGroupDescription_partition_assignor(d[0]));
        expo_printf(e, ",");
        console_groups_write_members(d[0], e);
        expo_printf(e, ",");
        rd_kafka_topic_partition_list_t *parts = committed
                                                     ? rd_kafka_topic_partition_list_copy(committed)
                                                     : rd_kafka_topic_partition_list_new(0);
        console_groups_write_offsets(b, req, parts, e);
        rd_kafka_topic_partition_list_destroy(parts);
        expo_printf(e, "}");
    }
    if (oev)
        rd_kafka_event_destroy(oev);
    rd_kafka_event_destroy(dev);
    return status;
}

int console_api_group(struct broker *b, const struct console_request *req, const char *group,
                      struct expo *e)
{
    char err[512];
    rd_kafka_t *rk = console_admin_client(b, err, sizeof(err));
    if (rk == NULL)
        return json_error(e, 503, "cannot ask for the group: %s", err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int status = console_groups_describe(b, req, rk, q, group, e);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return status;
}
