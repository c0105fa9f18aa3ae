/*
 * Logging to stderr. The only process-wide mutable setting is the level, written once at
 * start-up before any thread exists and read-only afterwards.
 */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum log_level log_threshold = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

enum log_level log_get_level(void)
{
    return log_threshold;
}

int log_parse_level(const char *s, enum log_level *out)
{
    static const struct {
        const char *name;
        enum log_level level;
    } names[] = {{"trace", LOG_LEVEL_DEBUG},  {"debug", LOG_LEVEL_DEBUG},
                 {"info", LOG_LEVEL_INFO},    {"warn", LOG_LEVEL_WARN},
                 {"warning", LOG_LEVEL_WARN}, {"error", LOG_LEVEL_ERROR},
                 {"fatal", LOG_LEVEL_ERROR},  {"off", LOG_LEVEL_OFF}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

void log_write(enum log_level level, const char *subsystem, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};
    if (level < log_threshold)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            tags[level], subsystem, msg);
}
