/*
 * The console's JSON API: routing of /api/ paths and the cluster, topic and partition views.
 *
 *   /api/overview                 cluster id, controller, brokers, topic/partition health,
 *                                 traffic totals of this broker (the page derives rates)
 *   /api/topics                   every topic: partitions, replication factor, local size
 *   /api/topics/<t>               per partition: leader, epoch, replicas, ISR, OSR, and the
 *                                 log offsets and size where this broker hosts it; configs
 *   /api/topics/<t>/partitions/<p>/messages   console_messages.c
 *   /api/groups, /api/groups/<g>  console_groups.c
 *   /api/groups/<g>/lag           the group's lag samples (console_history.c)
 *   POST /api/topics, DELETE /api/topics/<t>   console_actions.c
 *   POST, DELETE /api/topics/<t>/configs       console_configs.c
 *   POST /api/groups/<g>/offsets               console_reset.c
 *
 * Every answer reads one metadata image reference, so it is consistent within itself. Work per
 * request is bounded by the cluster's size (topics x partitions), never by the data.
 *
 * With security on (console_security.h) each read is checked as the Kafka API checks it, for
 * the signed-in user: topics without DESCRIBE are left out of lists and counts (403 when
 * named), messages need READ on the topic, groups without DESCRIBE are left out (403 when
 * named), and a group's offsets show only topics with DESCRIBE. Changes are checked in their
 * own files.
 */
#include "broker/console_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "broker/console_history.h"
#include "broker/console_security.h"
#include "broker/partition.h"
#include "cluster/controller.h"
#include "cluster/records.h"
#include "console/json.h"

#define CONSOLE_TOPIC_NAME_MAX 249
#define CONSOLE_GROUP_ID_MAX 1024

int64_t console_api_parse_count(const char *s)
{
    if (s == NULL || *s == '\0' || strlen(s) > 18)
        return -1;
    int64_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        v = v * 10 + (*c - '0');
    }
    return v;
}

static const char *console_broker_state(uint8_t state)
{
    switch (state) {
    case METADATA_BROKER_UNFENCED:
        return "alive";
    case METADATA_BROKER_FENCED:
        return "fenced";
    case METADATA_BROKER_SHUTTING_DOWN:
        return "shutting_down";
    default:
        return "unknown";
    }
}

struct console_traffic {
    int64_t bytes_in, bytes_out, records_in, records_out, size;
    int64_t hosted;
    struct broker *b;
    const struct console_request *req;
    const struct metadata_image *img;
};

/* Registry read lock held: atomic loads only (and the ACL check, which reads the image). */
static void console_sum_traffic(struct partition *p, void *arg)
{
    struct console_traffic *t = arg;
    if (!console_allowed(t->b, t->req, t->img, ACL_RESOURCE_TOPIC, p->topic,
                         ACL_OPERATION_DESCRIBE))
        return;
    t->bytes_in += atomic_load_explicit(&p->bytes_in, memory_order_relaxed);
    t->bytes_out += atomic_load_explicit(&p->bytes_out, memory_order_relaxed);
    t->records_in += atomic_load_explicit(&p->records_in, memory_order_relaxed);
    t->records_out += atomic_load_explicit(&p->records_out, memory_order_relaxed);
    t->hosted++;
}

static void console_write_ids(struct expo *e, const char *name, const int32_t *v, uint32_t n)
{
    expo_printf(e, "\"%s\":[", name);
    for (uint32_t i = 0; i < n; i++)
        expo_printf(e, "%s%d", i ? "," : "", v[i]);
    expo_printf(e, "]");
}

static void console_write_brokers(struct broker *b, const struct metadata_image *img,
                                  struct expo *e)
{
    expo_printf(e, "\"brokers\":[");
    for (size_t i = 0; i < img->n_brokers; i++) {
        const struct metadata_broker *mb = &img->brokers[i];
        expo_printf(e, "%s{\"id\":%d,\"host\":", i ? "," : "", mb->id);
        json_string(e, mb->host);
        expo_printf(e, ",\"port\":%d,\"rack\":", mb->port);
        if (mb->rack)
            json_string(e, mb->rack);
        else
            expo_printf(e, "null");
        expo_printf(e, ",\"state\":\"%s\",\"fenced\":%s,\"epoch\":%lld,\"self\":%s}",
                    console_broker_state(mb->state),
                    mb->state == METADATA_BROKER_FENCED ? "true" : "false", (long long)mb->epoch,
                    mb->id == b->cfg.node_id ? "true" : "false");
    }
    expo_printf(e, "]");
}

static int console_api_overview(struct broker *b, const struct console_request *req, struct expo *e)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    if (img == NULL)
        return json_error(e, 503, "the metadata image is not loaded yet");
    int64_t partitions = 0, under = 0, offline = 0;
    size_t topics = 0;
    for (size_t i = 0; i < img->n_topics; i++) {
        const struct metadata_topic *t = img->topics_by_name[i];
        if (!console_allowed(b, req, img, ACL_RESOURCE_TOPIC, t->name, ACL_OPERATION_DESCRIBE))
            continue;
        topics++;
        for (uint32_t j = 0; j < t->n_partitions; j++) {
            const struct metadata_partition *mp = &t->partitions[j];
            partitions++;
            if (mp->leader < 0)
                offline++;
            else if (mp->n_isr < mp->n_replicas)
                under++;
        }
    }
    struct console_traffic tr = {.b = b, .req = req, .img = img};
    partition_registry_each(b->parts, console_sum_traffic, &tr);
    expo_printf(e, "{\"cluster_id\":");
    json_string(e, b->cluster_id);
    expo_printf(e, ",\"node_id\":%d,\"controller_id\":%d,\"metadata_version\":%llu,",
                b->cfg.node_id, controller_leader_id(b->ctl), (unsigned long long)img->version);
    console_write_brokers(b, img, e);
    expo_printf(e,
                ",\"topics\":%zu,\"partitions\":%lld,\"under_replicated_partitions\":%lld,"
                "\"offline_partitions\":%lld,\"local\":{\"partitions\":%lld,\"bytes_in\":%lld,"
                "\"bytes_out\":%lld,\"records_in\":%lld,\"records_out\":%lld}}",
                topics, (long long)partitions, (long long)under, (long long)offline,
                (long long)tr.hosted, (long long)tr.bytes_in, (long long)tr.bytes_out,
                (long long)tr.records_in, (long long)tr.records_out);
    metadata_image_release(img);
    return 200;
}

static const char *console_topic_config(const struct metadata_topic *t, const char *name)
{
    for (uint32_t i = 0; i < t->n_configs; i++)
        if (strcmp(t->configs[i].name, name) == 0)
            return t->configs[i].value;
    return NULL;
}

/* Sum of the sizes of t's partitions hosted here; -1 when none is. */
static int64_t console_topic_local_size(struct broker *b, const struct metadata_topic *t)
{
    int64_t size = -1;
    for (uint32_t j = 0; j < t->n_partitions; j++) {
        struct partition *p = partition_get(b->parts, t->name, (int32_t)j);
        if (p == NULL)
            continue;
        size = (size < 0 ? 0 : size) + log_size_bytes(p->log);
        partition_put(p);
    }
    return size;
}

static void console_write_topic_summary(struct broker *b, const struct metadata_topic *t,
                                        struct expo *e)
{
    int rf = t->n_partitions ? (int)t->partitions[0].n_replicas : 0;
    int under = 0, offline = 0;
    for (uint32_t j = 0; j < t->n_partitions; j++) {
        offline += t->partitions[j].leader < 0;
        under +=
            t->partitions[j].leader >= 0 && t->partitions[j].n_isr < t->partitions[j].n_replicas;
    }
    const char *ret = console_topic_config(t, "retention.ms");
    char retbuf[32];
    if (ret == NULL) {
        snprintf(retbuf, sizeof(retbuf), "%lld", (long long)b->cfg.log_retention_ms);
        ret = retbuf;
    }
    int64_t size = console_topic_local_size(b, t);
    expo_printf(e, "{\"name\":");
    json_string(e, t->name);
    expo_printf(e,
                ",\"partitions\":%u,\"replication_factor\":%d,\"under_replicated\":%d,"
                "\"offline\":%d,\"retention_ms\":",
                t->n_partitions, rf, under, offline);
    json_string(e, ret);
    if (size < 0)
        expo_printf(e, ",\"local_size\":null,");
    else
        expo_printf(e, ",\"local_size\":%lld,", (long long)size);
    console_history_write_rates(b->console_history, t->name, e);
    expo_printf(e, "}");
}

static int console_api_topics(struct broker *b, const struct console_request *req, struct expo *e)
{
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    if (img == NULL)
        return json_error(e, 503, "the metadata image is not loaded yet");
    expo_printf(e, "{\"topics\":[");
    size_t n = 0;
    for (size_t i = 0; i < img->n_topics; i++) {
        const struct metadata_topic *t = img->topics_by_name[i];
        if (!console_allowed(b, req, img, ACL_RESOURCE_TOPIC, t->name, ACL_OPERATION_DESCRIBE))
            continue;
        if (n++)
            expo_printf(e, ",");
        console_write_topic_summary(b, t, e);
    }
    expo_printf(e, "]}");
    metadata_image_release(img);
    return 200;
}

/* Replicas not in the ISR (Kafka's OSR). */
static void console_write_osr(struct expo *e, const struct metadata_partition *mp)
{
    expo_printf(e, "\"osr\":[");
    int n = 0;
    for (uint32_t i = 0; i < mp->n_replicas; i++)
        if (!metadata_ids_contain(mp->isr, mp->n_isr, mp->replicas[i]))
            expo_printf(e, "%s%d", n++ ? "," : "", mp->replicas[i]);
    expo_printf(e, "]");
}

static void console_write_partition(struct broker *b, const struct metadata_topic *t,
                                    const struct metadata_partition *mp, struct expo *e)
{
    expo_printf(e, "{\"partition\":%d,\"leader\":%d,\"leader_epoch\":%d,", mp->partition,
                mp->leader, mp->leader_epoch);
    console_write_ids(e, "replicas", mp->replicas, mp->n_replicas);
    expo_printf(e, ",");
    console_write_ids(e, "isr", mp->isr, mp->n_isr);
    expo_printf(e, ",");
    console_write_osr(e, mp);
    struct partition *p = partition_get(b->parts, t->name, mp->partition);
    if (p == NULL) {
        expo_printf(e, ",\"hosted\":false}");
        return;
    }
    expo_printf(e,
                ",\"hosted\":true,\"log_start_offset\":%lld,\"log_end_offset\":%lld,"
                "\"high_watermark\":%lld,\"size\":%lld,\"offline\":%s}",
                (long long)log_start_offset(p->log), (long long)log_end_offset(p->log),
                (long long)log_high_watermark(p->log), (long long)log_size_bytes(p->log),
                log_is_offline(p->log) ? "true" : "false");
    partition_put(p);
}

static void console_write_configs(const struct metadata_topic *t, struct expo *e)
{
    expo_printf(e, "\"configs\":[");
    for (uint32_t i = 0; i < t->n_configs; i++) {
        expo_printf(e, "%s{\"name\":", i ? "," : "");
        json_string(e, t->configs[i].name);
        expo_printf(e, ",\"value\":");
        json_string(e, t->configs[i].value);
        expo_printf(e, "}");
    }
    expo_printf(e, "]");
}

static int console_api_topic(struct broker *b, const struct console_request *req, const char *name,
                             struct expo *e)
{
    /* Before the lookup, as Kafka: a user without DESCRIBE learns nothing, not even whether
     * the topic exists. */
    if (!console_allowed(b, req, NULL, ACL_RESOURCE_TOPIC, name, ACL_OPERATION_DESCRIBE))
        return console_denied(e, req, "DESCRIBE", "topic", name);
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    if (img == NULL)
        return json_error(e, 503, "the metadata image is not loaded yet");
    const struct metadata_topic *t = metadata_image_topic_by_name(img, name);
    if (t == NULL) {
        metadata_image_release(img);
        return json_error(e, 404, "unknown topic '%.249s'", name);
    }
    expo_printf(e, "{\"topic\":");
    console_write_topic_summary(b, t, e);
    expo_printf(e, ",\"node_id\":%d,\"partitions\":[", b->cfg.node_id);
    for (uint32_t j = 0; j < t->n_partitions; j++) {
        if (j)
            expo_printf(e, ",");
        console_write_partition(b, t, &t->partitions[j], e);
    }
    expo_printf(e, "],");
    if (console_allowed(b, req, img, ACL_RESOURCE_TOPIC, name, ACL_OPERATION_DESCRIBE_CONFIGS))
        console_write_configs(t, e);
    else
        expo_printf(e, "\"configs\":null");
    expo_printf(e, "}");
    metadata_image_release(img);
    return 200;
}

/* Splits "/topics/<name>[/rest]": copies the name into name[] and returns rest ("" or "/..."),
 * or NULL when the name is empty or too long. */
static const char *console_split_topic(const char *path, char *name, size_t cap)
{
    const char *s = path + strlen("/topics/");
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(name, s, n);
    name[n] = '\0';
    return slash ? slash : "";
}

static int console_api_partition_route(struct broker *b, const char *topic, const char *rest,
                                       const struct console_request *req, struct expo *e)
{
    const char *s = rest + strlen("/partitions/");
    const char *slash = strchr(s, '/');
    if (slash == NULL || strcmp(slash, "/messages") != 0)
        return json_error(e, 404, "no such API path: try /api/topics/%.249s/partitions/N/messages",
                          topic);
    char num[16];
    size_t n = (size_t)(slash - s);
    if (n == 0 || n >= sizeof(num))
        return json_error(e, 400, "partition must be a number from 0 to 2147483647");
    memcpy(num, s, n);
    num[n] = '\0';
    int64_t p = console_api_parse_count(num);
    if (p < 0 || p > INT32_MAX)
        return json_error(e, 400, "partition '%s' is not a number from 0 to 2147483647", num);
    if (!console_allowed(b, req, NULL, ACL_RESOURCE_TOPIC, topic, ACL_OPERATION_READ))
        return console_denied(e, req, "READ", "topic", topic);
    return console_api_messages(b, topic, (int32_t)p, req, e);
}

/* "/groups/<g><tail>" → g copied into group[]; false for any other path. */
static bool console_split_group_tail(const char *path, const char *tail, char *group, size_t cap)
{
    if (strncmp(path, "/groups/", 8) != 0)
        return false;
    const char *g = path + strlen("/groups/");
    const char *slash = strchr(g, '/');
    if (slash == NULL || strcmp(slash, tail) != 0)
        return false;
    size_t n = (size_t)(slash - g);
    if (n == 0 || n >= cap)
        return false;
    memcpy(group, g, n);
    group[n] = '\0';
    return true;
}

/* POST and DELETE: the changes the console makes. */
static int console_api_route_change(struct broker *b, const struct console_request *req,
                                    struct expo *e)
{
    const char *path = req->path;
    bool post = strcmp(req->method, "POST") == 0;
    char name[CONSOLE_GROUP_ID_MAX + 1];
    if (post && strcmp(path, "/topics") == 0)
        return console_api_create_topic(b, req, e);
    if (!post && strncmp(path, "/topics/", 8) == 0 && strchr(path + 8, '/') == NULL)
        return console_api_delete_topic(b, req, path + 8, e);
    if (strncmp(path, "/topics/", 8) == 0) {
        const char *rest = console_split_topic(path, name, CONSOLE_TOPIC_NAME_MAX + 1);
        if (rest != NULL && strcmp(rest, "/configs") == 0)
            return console_api_change_config(b, name, req, e);
    }
    if (post && console_split_group_tail(path, "/offsets", name, sizeof(name)))
        return console_api_reset_offsets(b, name, req, e);
    return json_error(e, 405,
                      "%s %.200s is not a change the console makes: POST /api/topics?name=... "
                      "creates a topic, DELETE /api/topics/NAME deletes one, POST or DELETE "
                      "/api/topics/NAME/configs?name=... changes a config, POST "
                      "/api/groups/GROUP/offsets?topic=...&to=... resets offsets",
                      req->method, path);
}

static int console_api_route(void *ctx, const struct console_request *req, struct expo *e)
{
    struct broker *b = ctx;
    const char *path = req->path;
    if (strcmp(req->method, "GET") != 0)
        return console_api_route_change(b, req, e);
    if (strcmp(path, "/overview") == 0)
        return console_api_overview(b, req, e);
    if (strcmp(path, "/topics") == 0 || strcmp(path, "/topics/") == 0)
        return console_api_topics(b, req, e);
    if (strncmp(path, "/topics/", 8) == 0) {
        char name[CONSOLE_TOPIC_NAME_MAX + 1];
        const char *rest = console_split_topic(path, name, sizeof(name));
        if (rest == NULL)
            return json_error(e, 400, "a topic name has 1 to 249 characters");
        if (rest[0] == '\0' || strcmp(rest, "/") == 0)
            return console_api_topic(b, req, name, e);
        if (strncmp(rest, "/partitions/", 12) == 0)
            return console_api_partition_route(b, name, rest, req, e);
    }
    if (strcmp(path, "/groups") == 0 || strcmp(path, "/groups/") == 0)
        return console_api_groups(b, req, e);
    char group[CONSOLE_GROUP_ID_MAX + 1];
    if (console_split_group_tail(path, "/lag", group, sizeof(group))) {
        if (!console_allowed(b, req, NULL, ACL_RESOURCE_GROUP, group, ACL_OPERATION_DESCRIBE))
            return console_denied(e, req, "DESCRIBE", "group", group);
        return console_history_write_lag(b->console_history, group, e);
    }
    if (strncmp(path, "/groups/", 8) == 0) {
        const char *g = path + 8;
        if (strlen(g) > CONSOLE_GROUP_ID_MAX || strchr(g, '/') != NULL)
            return json_error(e, 400, "a group id here has 1 to %d characters and no '/'",
                              CONSOLE_GROUP_ID_MAX);
        if (!console_allowed(b, req, NULL, ACL_RESOURCE_GROUP, g, ACL_OPERATION_DESCRIBE))
            return console_denied(e, req, "DESCRIBE", "group", g);
        return console_api_group(b, req, g, e);
    }
    return json_error(e, 404,
                      "no such API path '%.200s': try /api/overview, /api/topics, "
                      "/api/topics/NAME, /api/topics/NAME/partitions/N/messages, /api/groups "
                      "or /api/groups/GROUP",
                      path);
}

struct console_source broker_console_source(struct broker *b)
{
    struct console_source src = {.handle = console_api_route, .ctx = b};
    if (console_security_on(b)) {
        src.login = console_security_login;
        src.session_ms = b->cfg.console_session_timeout_ms;
    }
    return src;
}
