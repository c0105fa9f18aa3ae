/* Broker lifecycle: start and stop the subsystems in dependency order. */
#include "broker/broker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"

struct broker {
    struct broker_config cfg;
};

int broker_start(const struct broker_config *cfg, struct broker **out, char *err, size_t errlen)
{
    struct broker *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    b->cfg = *cfg;
    *out = b;
    log_info("broker", "node %d started", cfg->node_id);
    return 0;
}

void broker_stop(struct broker *b)
{
    free(b);
}
