/*
 * Logging: one line per event on stderr, "TIME LEVEL [subsystem] message".
 *
 * The level is process-wide (set once at start from log.level, before threads start) so any
 * module can log without carrying a context; writes are a single fprintf and therefore atomic
 * per line for lines under PIPE_BUF.
 */
#ifndef GREGOR_BASE_LOGGER_H
#define GREGOR_BASE_LOGGER_H

enum logger_level {
    LOGGER_LEVEL_DEBUG,
    LOGGER_LEVEL_INFO,
    LOGGER_LEVEL_WARN,
    LOGGER_LEVEL_ERROR,
    LOGGER_LEVEL_OFF
};

/* Sets the threshold; call before starting threads. */
void logger_set_level(enum logger_level level);
enum logger_level logger_get_level(void);

/* Parses "debug", "info", "warn"/"warning", "error", "off" (also Kafka's TRACE/DEBUG/INFO...). */
int logger_parse_level(const char *s, enum logger_level *out);

void logger_write(enum logger_level level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define logger_debug(sub, ...)                                                                     \
    do {                                                                                           \
        if (logger_get_level() <= LOGGER_LEVEL_DEBUG)                                              \
            logger_write(LOGGER_LEVEL_DEBUG, sub, __VA_ARGS__);                                    \
    } while (0)
#define logger_info(sub, ...) logger_write(LOGGER_LEVEL_INFO, sub, __VA_ARGS__)
#define logger_warn(sub, ...) logger_write(LOGGER_LEVEL_WARN, sub, __VA_ARGS__)
#define logger_error(sub, ...) logger_write(LOGGER_LEVEL_ERROR, sub, __VA_ARGS__)

#endif
