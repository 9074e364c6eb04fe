/*
 * log.h — the agent's log: one line per message on stderr, with a UTC
 * timestamp and a level, ready for journald or a file. Debug lines appear
 * only when CHOREO_DEBUG is set in the environment.
 */
#ifndef CHOREO_LOG_H
#define CHOREO_LOG_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__GNUC__)
#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LOG_PRINTF(a, b)

/* Warnings about what one peer did are rate-limited: at most one per key
 * (say "conflict:db1") per LOG_LIMIT_MS, and at most 60 such lines a
 * minute in all, so that an attacker can't grow the log faster than a
 * bounded rate; what was held back is counted and said once a minute.
 * Returns whether the caller may log now (now_ms: any clock). */
#define LOG_LIMIT_MS 60000
bool log_allow(const char *key, int64_t now_ms);
/* Lines held back by log_allow() in the current minute. */
unsigned long long log_suppressed(void);

#endif

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);

/* Warnings about what one peer did are rate-limited: at most one per key
 * (say "conflict:db1") per LOG_LIMIT_MS, and at most 60 such lines a
 * minute in all, so that an attacker can't grow the log faster than a
 * bounded rate; what was held back is counted and said once a minute.
 * Returns whether the caller may log now (now_ms: any clock). */
#define LOG_LIMIT_MS 60000
bool log_allow(const char *key, int64_t now_ms);
/* Lines held back by log_allow() in the current minute. */
unsigned long long log_suppressed(void);

#endif
