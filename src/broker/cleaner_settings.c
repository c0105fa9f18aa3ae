/*
 * log.cleaner.* at run time; see cleaner_settings.h.
 */
#include "broker/cleaner_settings.h"

#include <limits.h>
#include <stdlib.h>

#include "base/logger.h"
#include "broker/broker_internal.h"
#include "broker/dynamic_threads.h"
#include "broker/partition_registry.h"
#include "storage/compactor.h"

struct log_cleaner_tuning cleaner_settings_static(const struct broker_config *cfg)
{
    return (struct log_cleaner_tuning){cfg->log_cleaner_backoff_ms,
                                       cfg->log_cleaner_io_max_bytes_per_second};
}

void cleaner_settings_apply(struct broker *b, const struct metadata_image *img)
{
    if (b->parts == NULL || b->parts->cleaner == NULL)
        return;
    struct log_cleaner_tuning t = cleaner_settings_static(&b->cfg);
    const char *v = broker_dynamic_value(b, img, "log.cleaner.backoff.ms");
    if (v != NULL)
        t.backoff_ms = strtoll(v, NULL, 10);
    if ((v = broker_dynamic_value(b, img, "log.cleaner.io.max.bytes.per.second")) != NULL)
        t.io_max_bytes_per_second = strtod(v, NULL);
    logger_debug("broker", "log cleaner: backoff %lld ms, I/O limit %g bytes/s",
                 (long long)t.backoff_ms, t.io_max_bytes_per_second);
    log_cleaner_set_tuning(b->parts->cleaner, &t);
}

int cleaner_settings_compact(struct log *log, int64_t now_ms, void *arg)
{
    struct log_compact_stats st = {0};
    int rc = log_compact(log, now_ms, false, &st);
    if (rc < 0)
        return rc;
    int64_t io = st.bytes_before + st.bytes_after;
    return io > INT_MAX ? INT_MAX : (int)io;
}
