/*
 * Logging: one line per event on stderr, "TIME LEVEL [subsystem] message".
 *
 * The level is process-wide (set once at start from log.level, before threads start) so any
 * module can log without carrying a context; writes are a single fprintf and therefore atomic
 * per line for lines under PIPE_BUF.
 */
#ifndef GREGOR_BASE_LOG_H
#define GREGOR_BASE_LOG_H

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR, LOG_LEVEL_OFF };

/* Sets the threshold; call before starting threads. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* Parses "debug", "info", "warn"/"warning", "error", "off" (also Kafka's TRACE/DEBUG/INFO...). */
int log_parse_level(const char *s, enum log_level *out);

void log_write(enum log_level level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(sub, ...)                                                                        \
    do {                                                                                           \
        if (log_get_level() <= LOG_LEVEL_DEBUG)                                                    \
            log_write(LOG_LEVEL_DEBUG, sub, __VA_ARGS__);                                          \
    } while (0)
#define log_info(sub, ...) log_write(LOG_LEVEL_INFO, sub, __VA_ARGS__)
#define log_warn(sub, ...) log_write(LOG_LEVEL_WARN, sub, __VA_ARGS__)
#define log_error(sub, ...) log_write(LOG_LEVEL_ERROR, sub, __VA_ARGS__)

#endif
