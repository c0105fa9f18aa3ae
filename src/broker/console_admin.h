/*
 * A librdkafka admin client on this broker's own listener, for the console (console_admin.c).
 * Console HTTP thread only.
 */
#ifndef GREGOR_BROKER_CONSOLE_ADMIN_H
#define GREGOR_BROKER_CONSOLE_ADMIN_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#define CONSOLE_ADMIN_TIMEOUT_MS 5000

struct broker;

/* A new client (destroy with rd_kafka_destroy), or NULL with the reason in err. */
rd_kafka_t *console_admin_client(struct broker *b, char *err, size_t errlen);

/* Options for op with the request timeout set; destroy with rd_kafka_AdminOptions_destroy. */
rd_kafka_AdminOptions_t *console_admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op);

/* The next result event on q (caller destroys), or NULL with err on timeout or error. */
rd_kafka_event_t *console_admin_wait(rd_kafka_queue_t *q, char *err, size_t errlen);

/* DescribeConsumerGroups of one group: its result event (caller destroys), or NULL with err. */
rd_kafka_event_t *console_admin_describe_group(rd_kafka_t *rk, rd_kafka_queue_t *q,
                                               const char *group, char *err, size_t errlen);

#endif
