/*
 * The console's topic config change: POST /api/topics/T/configs?name=N&value=V sets one
 * override, DELETE /api/topics/T/configs?name=N removes it (back to the broker's default).
 *
 * Through the Kafka protocol on this broker's listener (console_admin.c), so the change gets
 * the broker's validation of names and values and the forwarding to the active controller.
 * Debian's librdkafka 2.0.2 has no IncrementalAlterConfigs (2.2+), so this sends AlterConfigs,
 * which replaces a topic's whole set of overrides: the set sent is the topic's current
 * overrides from this broker's metadata image with the one change applied. A change made by
 * another client between that read and this write is lost, as with AlterConfigs in Kafka.
 * Answers: 200 changed, 400 bad name or value (Kafka's message), 404 unknown topic, 503 when
 * the cluster cannot answer. HTTP thread only.
 */
#include <stdio.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "broker/console_admin.h"
#include "broker/console_api.h"
#include "broker/console_security.h"
#include "cluster/controller.h"
#include "console/json.h"

#define CONSOLE_CONFIG_NAME_MAX 255
#define CONSOLE_CONFIG_VALUE_MAX 4096

/* HTTP status for a Kafka error of AlterConfigs. */
static int console_configs_status(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return 404;
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return 400;
    default:
        return 503;
    }
}

/*
 * A ConfigResource for topic t carrying t's overrides with `name` set to `value` (value NULL:
 * name removed). NULL with a 400 written to e when librdkafka refuses an entry.
 */
static rd_kafka_ConfigResource_t *console_configs_resource(const struct metadata_topic *t,
                                                           const char *name, const char *value,
                                                           struct expo *e, int *status)
{
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, t->name);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (uint32_t i = 0; i < t->n_configs && !err; i++)
        if (strcmp(t->configs[i].name, name) != 0)
            err = rd_kafka_ConfigResource_set_config(res, t->configs[i].name, t->configs[i].value);
    if (!err && value != NULL)
        err = rd_kafka_ConfigResource_set_config(res, name, value);
    if (err) {
        rd_kafka_ConfigResource_destroy(res);
        *status = json_error(e, 400, "cannot change config '%s': %s", name, rd_kafka_err2str(err));
        return NULL;
    }
    return res;
}

/* Sends res with AlterConfigs and writes the answer. HTTP status. */
static int console_configs_send(struct broker *b, rd_kafka_ConfigResource_t *res, const char *topic,
                                const char *name, const char *value, struct expo *e)
{
    char err[512];
    rd_kafka_t *rk = console_admin_client(b, err, sizeof(err));
    if (rk == NULL)
        return json_error(e, 503, "cannot change topic '%s': %s", topic, err);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = console_admin_options(rk, RD_KAFKA_ADMIN_OP_ALTERCONFIGS);
    rd_kafka_AlterConfigs(rk, &res, 1, ao, q);
    rd_kafka_event_t *ev = console_admin_wait(q, err, sizeof(err));
    int status;
    if (ev == NULL) {
        status = json_error(e, 503, "cannot change topic '%s': %s", topic, err);
    } else {
        size_t n = 0;
        const rd_kafka_ConfigResource_t **rs =
            rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(ev), &n);
        rd_kafka_resp_err_t kerr =
            n == 1 ? rd_kafka_ConfigResource_error(rs[0]) : RD_KAFKA_RESP_ERR__BAD_MSG;
        if (kerr) {
            const char *msg = n == 1 ? rd_kafka_ConfigResource_error_string(rs[0]) : NULL;
            status = json_error(e, console_configs_status(kerr),
                                "cannot change config '%s' of topic '%s': %s (%s)", name, topic,
                                msg ? msg : "", rd_kafka_err2name(kerr));
        } else {
            status = 200;
            expo_printf(e, "{\"topic\":");
            json_string(e, topic);
            expo_printf(e, ",\"name\":");
            json_string(e, name);
            expo_printf(e, ",\"value\":");
            if (value)
                json_string(e, value);
            else
                expo_printf(e, "null");
            expo_printf(e, ",\"changed\":true}");
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return status;
}

/* Config names are printable ASCII without spaces; values printable, possibly empty. */
static bool console_configs_printable(const char *s, bool spaces)
{
    for (const char *c = s; *c; c++)
        if (*c < 0x20 || *c == 0x7f || (!spaces && *c == ' '))
            return false;
    return true;
}

int console_api_change_config(struct broker *b, const char *topic,
                              const struct console_request *req, struct expo *e)
{
    bool remove = strcmp(req->method, "DELETE") == 0;
    const char *name = req->arg(req, "name");
    const char *value = remove ? NULL : req->arg(req, "value");
    if (name == NULL || name[0] == '\0' || strlen(name) > CONSOLE_CONFIG_NAME_MAX ||
        !console_configs_printable(name, false))
        return json_error(e, 400, "name must be a config name such as retention.ms");
    if (!remove && (value == NULL || strlen(value) > CONSOLE_CONFIG_VALUE_MAX ||
                    !console_configs_printable(value, true)))
        return json_error(e, 400, "value must be given (at most %d printable characters)",
                          CONSOLE_CONFIG_VALUE_MAX);
    /* IncrementalAlterConfigs' and AlterConfigs' right, checked before the topic is looked up
     * (as Kafka: no answer tells a user without it whether the topic exists). */
    if (!console_allowed(b, req, NULL, ACL_RESOURCE_TOPIC, topic, ACL_OPERATION_ALTER_CONFIGS))
        return console_denied(e, req, "ALTER_CONFIGS", "topic", topic);
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    if (img == NULL)
        return json_error(e, 503, "the metadata image is not loaded yet");
    const struct metadata_topic *t = metadata_image_topic_by_name(img, topic);
    int status = 0;
    rd_kafka_ConfigResource_t *res = NULL;
    if (t == NULL)
        status = json_error(e, 404, "unknown topic '%.249s'", topic);
    else
        res = console_configs_resource(t, name, value, e, &status);
    metadata_image_release(img);
    if (res == NULL)
        return status;
    status = console_configs_send(b, res, topic, name, value, e);
    rd_kafka_ConfigResource_destroy(res);
    return status;
}
