/*
 * The console's changes: POST /api/topics?name=T&partitions=N&replication_factor=R creates a
 * topic, DELETE /api/topics/T deletes one. Both go through the Kafka protocol (CreateTopics,
 * DeleteTopics on this broker's listener, console_admin.c), so they get every check, policy
 * and the forwarding to the active controller that any admin client gets. The HTTP layer lets
 * them through only from the console's own pages (console_http.c); the pages ask for a
 * confirmation first. With security on the signed-in user needs what CreateTopics and
 * DeleteTopics need (CREATE on the cluster or the topic; DELETE on the topic), checked here
 * because the admin client itself connects as the broker. Answers: 201 created, 200 deleted,
 * 400 bad arguments, 403 not allowed, 404 unknown topic, 409 already exists, 503 when the
 * cluster cannot answer.
 */
#include <stdio.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "broker/console_admin.h"
#include "broker/console_api.h"
#include "broker/console_security.h"
#include "console/json.h"

#define CONSOLE_PARTITIONS_MAX 10000
#define CONSOLE_REPLICATION_MAX 100

/* Kafka's legal topic names: 1-249 of [a-zA-Z0-9._-], not "." or "..". */
static bool console_topic_name_legal(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            return false;
    return true;
}

/* HTTP status for a Kafka error of CreateTopics/DeleteTopics. */
static int console_action_status(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
        return 409;
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        return 404;
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_INVALID_REQUEST:
    case RD_KAFKA_RESP_ERR_POLICY_VIOLATION:
    case RD_KAFKA_RESP_ERR_TOPIC_DELETION_DISABLED:
        return 400;
    default:
        return 503;
    }
}

/* Parses an optional count argument into *out (default -1: the broker's default). */
static int console_action_count(const struct console_request *req, const char *name, int max,
                                int *out, struct expo *e)
{
    const char *s = req->arg(req, name);
    *out = -1;
    if (s == NULL || *s == '\0')
        return 0;
    int64_t v = console_api_parse_count(s);
    if (v < 1 || v > max)
        return json_error(e, 400, "%s must be a number from 1 to %d", name, max);
    *out = (int)v;
    return 0;
}

/* Runs one admin call already issued on q and reads its single topic result. */
static int console_action_finish(rd_kafka_queue_t *q, const char *topic, bool create,
                                 struct expo *e)
{
    char err[512];
    rd_kafka_event_t *ev = console_admin_wait(q, err, sizeof(err));
    if (ev == NULL)
        return json_error(e, 503, "cannot %s topic '%s': %s", create ? "create" : "delete", topic,
                          err);
    size_t n = 0;
    const rd_kafka_topic_result_t **res =
        create ? rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n)
               : rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    rd_kafka_resp_err_t kerr =
        n == 1 ? rd_kafka_topic_result_error(res[0]) : RD_KAFKA_RESP_ERR__BAD_MSG;
    int status;
    if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *msg = n == 1 ? rd_kafka_topic_result_error_string(res[0]) : NULL;
        status = json_error(e, console_action_status(kerr), "cannot %s topic '%s': %s (%s)",
                            create ? "create" : "delete", topic, msg ? msg : "",
                            rd_kafka_err2name(kerr));
    } else {
        status = create ? 201 : 200;
        expo_printf(e, "{\"topic\":");
        json_string(e, topic);
        expo_printf(e, ",\"%s\":true}", create ? "created" : "deleted");
    }
    rd_kafka_event_destroy(ev);
    return status;
}

int console_api_create_topic(struct broker *b, const struct console_request *req, struct expo *e)
{
    const char *name = req->arg(req, "name");
    if (name == NULL || !console_topic_name_legal(name))
        return json_error(e, 400,
                          "name must be 1 to 249 characters of a-z, A-Z, 0-9, '.', '_', '-'");
    /* CreateTopics' rule: CREATE on the cluster, else on the topic. */
    if (!console_allowed(b, req, NULL, ACL_RESOURCE_CLUSTER, ACL_CLUSTER_NAME,
                         ACL_OPERATION_CREATE) &&
        !console_allowed(b, req, NULL, ACL_RESOURCE_TOPIC, name, ACL_OPERATION_CREATE))
        return console_denied(e, req, "CREATE", "topic", name);
    int partitions, rf, rc;
    if ((rc = console_action_count(req, "partitions", CONSOLE_PARTITIONS_MAX, &partitions, e)) ||
        (rc = console_action_count(req, "replication_factor", CONSOLE_REPLICATION_MAX, &rf, e)))
        return rc;
    char err[512];
    rd_kafka_t *rk = console_admin_client(b, err, sizeof(err));
    if (rk == NULL)
        return json_error(e, 503, "cannot create topic '%s': %s", name, err);
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, partitions, rf, err, sizeof(err));
    if (nt == NULL) {
        rd_kafka_destroy(rk);
        return json_error(e, 400, "cannot create topic '%s': %s", name, err);
    }
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = console_admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    int status = console_action_finish(q, name, true, e);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return status;
}

int console_api_delete_topic(struct broker *b, const struct console_request *req, const char *name,
                             struct expo *e)
{
    if (!console_topic_name_legal(name))
        return json_error(e, 400, "'%.249s' is not a legal topic name", name);
    if (!console_allowed(b, req, NULL, ACL_RESOURCE_TOPIC, name, ACL_OPERATION_DELETE))
        return console_denied(e, req, "DELETE", "topic", name);
    char err[512];
    rd_kafka_t *rk = console_admin_client(b, err, sizeof(err));
    if (rk == NULL)
        return json_error(e, 503, "cannot delete topic '%s': %s", name, err);
    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = console_admin_options(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS);
    rd_kafka_DeleteTopics(rk, &dt, 1, ao, q);
    int status = console_action_finish(q, name, false, e);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return status;
}
