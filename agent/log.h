/*
 * log.h — the agent's log: one line per message on stderr, with a UTC
 * timestamp and a level, ready for journald or a file. Debug lines appear
 * only when CHOREO_DEBUG is set in the environment.
 */
#ifndef CHOREO_LOG_H
#define CHOREO_LOG_H

#if defined(__GNUC__)
#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LOG_PRINTF(a, b)
#endif

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);

#endif
