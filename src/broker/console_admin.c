/*
 * The console's Kafka admin client: what the console asks of the cluster rather than of this
 * broker (groups, whose coordinator may be another broker; topic creation and deletion, which
 * go through the active controller with every check CreateTopics/DeleteTopics make) goes
 * through the Kafka protocol on this broker's own client listener, as any admin tool would.
 * One short-lived client per HTTP request; every call waits at most CONSOLE_ADMIN_TIMEOUT_MS
 * (+1 s), so a request never hangs. The client connects as the broker itself (PLAINTEXT, or
 * SASL_PLAINTEXT with the inter-broker identity), so with security on the console checks the
 * signed-in user's ACLs before it asks (console_security.h). HTTP thread only.
 */
#include "broker/console_admin.h"

#include <stdio.h>
#include <string.h>

#include "broker/broker_internal.h"
#include "net/net.h"

/* An admin client on this broker's client listener, or NULL (message in err). */
rd_kafka_t *console_admin_client(struct broker *b, char *err, size_t errlen)
{
    const struct listener_config *l = config_client_listener(&b->cfg);
    const char *host = l->host[0] && strcmp(l->host, "0.0.0.0") != 0 ? l->host : "127.0.0.1";
    char bootstrap[300], port[16];
    snprintf(bootstrap, sizeof(bootstrap), "%s:%d", host,
             net_server_listener_port(b->net, broker_registered_listener(b)));
    snprintf(port, sizeof(port), "%d", CONSOLE_ADMIN_TIMEOUT_MS);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "gregor-console", err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "0", err, errlen) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "socket.timeout.ms", port, err, errlen) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    /* On a SASL_PLAINTEXT registered listener the client signs in as this broker does
     * towards the others; the signed-in console user's rights were checked before. */
    const struct interbroker_security *ib = &b->interbroker;
    if (l->protocol == SECURITY_SASL_PLAINTEXT && ib->sasl && ib->username[0] != '\0' &&
        (rd_kafka_conf_set(conf, "security.protocol", "SASL_PLAINTEXT", err, errlen) !=
             RD_KAFKA_CONF_OK ||
         rd_kafka_conf_set(conf, "sasl.mechanisms", ib->mechanism, err, errlen) !=
             RD_KAFKA_CONF_OK ||
         rd_kafka_conf_set(conf, "sasl.username", ib->username, err, errlen) != RD_KAFKA_CONF_OK ||
         rd_kafka_conf_set(conf, "sasl.password", ib->password, err, errlen) != RD_KAFKA_CONF_OK)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (rk == NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}

rd_kafka_AdminOptions_t *console_admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op)
{
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, op);
    char e[128];
    rd_kafka_AdminOptions_set_request_timeout(ao, CONSOLE_ADMIN_TIMEOUT_MS, e, sizeof(e));
    return ao;
}

/* The result event of an admin call on q (caller destroys), or NULL on timeout or error. */
rd_kafka_event_t *console_admin_wait(rd_kafka_queue_t *q, char *err, size_t errlen)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, CONSOLE_ADMIN_TIMEOUT_MS + 1000);
    if (ev == NULL) {
        snprintf(err, errlen, "no answer within %d ms", CONSOLE_ADMIN_TIMEOUT_MS + 1000);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "%s", rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

rd_kafka_event_t *console_admin_describe_group(rd_kafka_t *rk, rd_kafka_queue_t *q,
                                               const char *group, char *err, size_t errlen)
{
    const char *groups[1] = {group};
    rd_kafka_AdminOptions_t *ao =
        console_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
    rd_kafka_DescribeConsumerGroups(rk, groups, 1, ao, q);
    rd_kafka_AdminOptions_destroy(ao);
    return console_admin_wait(q, err, errlen);
}
