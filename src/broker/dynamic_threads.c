/*
 * num.io.threads / num.network.threads at run time; see dynamic_threads.h.
 */
#include "broker/dynamic_threads.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/logger.h"
#include "broker/broker_internal.h"
#include "cluster/broker_dynamic.h"

const char *broker_dynamic_value(const struct broker *b, const struct metadata_image *img,
                                 const char *name)
{
    const char *v = metadata_image_broker_config(img, b->cfg.node_id, name);
    return v ? v : metadata_image_broker_config(img, -1, name);
}

void dynamic_threads_apply(struct broker *b, const struct metadata_image *img)
{
    if (b->net == NULL)
        return;
    const char *v = broker_dynamic_value(b, img, "num.io.threads");
    long n = v ? strtol(v, NULL, 10) : b->cfg.num_io_threads;
    if (n <= 0)
        n = net_server_worker_count(b->net); /* the static default: one per core */
    if (n == net_server_pool_size(b->net))
        return;
    logger_info("broker", "num.io.threads: %d -> %ld", net_server_pool_size(b->net), n);
    int rc = net_server_resize(b->net, (int)n);
    if (rc < 0 && rc != -ESHUTDOWN)
        logger_error("broker", "cannot resize the I/O worker pool to %ld: %s (now %d)", n,
                     strerror(-rc), net_server_pool_size(b->net));
}

int dynamic_threads_current(struct broker *b, const char *name)
{
    if (strcmp(name, "num.io.threads") == 0)
        return b->net ? net_server_pool_size(b->net) : 1;
    const struct metadata_image *img = metadata_image_acquire(b->ctl);
    const char *v = broker_dynamic_value(b, img, name);
    long n = v ? strtol(v, NULL, 10) : -1;
    metadata_image_release(img);
    if (n > 0)
        return (int)n;
    if (strcmp(name, "num.network.threads") == 0)
        return b->cfg.num_network_threads;
    return b->cfg.log_cleaner_threads;
}

bool dynamic_threads_refuse(struct broker *b, const char *name, const char *value, char *msg,
                            size_t len)
{
    if (value == NULL || !broker_dynamic_is_thread_count(name))
        return false;
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (end == value || *end != '\0' || errno != 0 || v > INT32_MAX || v < INT32_MIN)
        return false;
    int cur = dynamic_threads_current(b, name);
    if (v == cur)
        return false;
    const char *why = NULL;
    char bound[96];
    if (v <= 0)
        why = "value should be at least 1";
    else if (v < cur / 2)
        why = bound,
        snprintf(bound, sizeof(bound), "value should be at least half the current value %d", cur);
    else if (v > (long)cur * 2)
        why = bound, snprintf(bound, sizeof(bound),
                              "value should not be greater than double the current value %d", cur);
    if (why == NULL)
        return false;
    snprintf(msg, len, "Dynamic thread count update validation failed for %s=%s, %s", name, value,
             why);
    return true;
}
