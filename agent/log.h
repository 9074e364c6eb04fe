/*
 * log.h — the agent's log: one line per message on stderr, with a UTC
 * timestamp and a level, ready for journald or a file. Lines below the
 * level set by log_set_level() (the configuration's log.level; info by
 * default) are not written; CHOREO_DEBUG in the environment shows debug
 * lines whatever the level. When stderr is the journal (JOURNAL_STREAM
 * names stderr's device and inode, as systemd sets it for a service),
 * each line starts with its syslog priority instead of the timestamp,
 * "<3>error: ..." as sd-daemon(3) describes, and journald keeps the
 * priority.
 */
#ifndef CHOREO_LOG_H
#define CHOREO_LOG_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__GNUC__)
#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LOG_PRINTF(a, b)
#endif

/* The levels: enum name, the name in the configuration and the log line,
 * the syslog priority journald is given. */
#define LOG_LEVEL_MAP(X)                                                       \
  X(ERROR, "error", 3)                                                         \
  X(WARNING, "warning", 4)                                                     \
  X(INFO, "info", 6)                                                           \
  X(DEBUG, "debug", 7)

enum log_level {
#define X(e, name, prio) LOG_LEVEL_##e,
  LOG_LEVEL_MAP(X)
#undef X
};

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);

/* Write lines of this level and above (more severe) from now on. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* The level named s ("error", "warning", "info", "debug"); returns 0, or
 * CHOREO_EINVAL for any other text (*out unchanged). */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* Look at JOURNAL_STREAM ("DEV:INODE", decimal) and stderr: when they
 * match, lines carry syslog priorities from now on. Returns whether they
 * do. A malformed JOURNAL_STREAM is taken as not the journal. */
bool log_detect_journal(void);
/* Force the journal format on or off (tests). */
void log_set_journal(bool on);

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
