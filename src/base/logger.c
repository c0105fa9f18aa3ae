/*
 * Logging to stderr. The only process-wide mutable setting is the level, written once at
 * start-up before any thread exists and read-only afterwards.
 */
#include "base/logger.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static enum logger_level log_threshold = LOGGER_LEVEL_INFO;

void logger_set_level(enum logger_level level)
{
    log_threshold = level;
}

enum logger_level logger_get_level(void)
{
    return log_threshold;
}

int logger_parse_level(const char *s, enum logger_level *out)
{
    static const struct {
        const char *name;
        enum logger_level level;
    } names[] = {{"trace", LOGGER_LEVEL_DEBUG},  {"debug", LOGGER_LEVEL_DEBUG},
                 {"info", LOGGER_LEVEL_INFO},    {"warn", LOGGER_LEVEL_WARN},
                 {"warning", LOGGER_LEVEL_WARN}, {"error", LOGGER_LEVEL_ERROR},
                 {"fatal", LOGGER_LEVEL_ERROR},  {"off", LOGGER_LEVEL_OFF}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

void logger_write(enum logger_level level, const char *subsystem, const char *fmt, ...)
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
