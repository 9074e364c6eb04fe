/*
 * log.c — one line per message on stderr: "2026-11-25T09:00:00.123Z level:
 * message". A message is written with a single write() so that lines from
 * several sources never interleave. Messages quote what peers, scripts and
 * clients sent (reasons, data values, addresses): each is escaped
 * (util_escape) so that no control character, newline or bidi override
 * reaches the log as such. Warnings about what a peer did go through
 * log_allow(), at most one per peer and kind a minute.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/* A formatted message, and the same escaped (4 bytes per byte at most). */
#define LOG_MSG_MAX 2048
#define LOG_LINE_MAX (64 + 4 * LOG_MSG_MAX)

LOG_PRINTF(2, 0)
static void vlog(const char *level, const char *fmt, va_list ap) {
  char msg[LOG_MSG_MAX], line[LOG_LINE_MAX];
  struct timespec ts;
  struct tm tm;
  size_t n;
  int k;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
  k = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s: ", ts.tv_nsec / 1000000,
               level);
  n += (size_t)k;
  k = vsnprintf(msg, sizeof(msg), fmt, ap);
  if (k >= 0 && (size_t)k >= sizeof(msg)) {
    /* Truncated: say so rather than cut silently. */
    static const char more[] = " [...]";
    memcpy(msg + sizeof(msg) - sizeof(more), more, sizeof(more));
  }
  if (k < 0)
    msg[0] = '\0';
  (void)util_escape(msg, line + n, sizeof(line) - n - 1);
  n += strlen(line + n);
  line[n++] = '\n';
  /* Nothing sensible can be done when stderr fails. */
  if (write(STDERR_FILENO, line, n) < 0)
    return;
}

#define LOG_FN(fn, level)                                                      \
  void fn(const char *fmt, ...) {                                              \
    va_list ap;                                                                \
    va_start(ap, fmt);                                                         \
    vlog(level, fmt, ap);                                                      \
    va_end(ap);                                                                \
  }

LOG_FN(log_info, "info")
LOG_FN(log_warn, "warning")
LOG_FN(log_error, "error")

void log_debug(const char *fmt, ...) {
  va_list ap;
  if (getenv("CHOREO_DEBUG") == NULL)
    return;
  va_start(ap, fmt);
  vlog("debug", fmt, ap);
  va_end(ap);
}

/* ---- rate limit ---- */

/* Keys remembered (a key hashes to one slot; another key in the same
 * slot takes it over), and lines allowed in all per interval whatever
 * the keys: an attacker with many names gets no more than that. */
#define LOG_LIMIT_SLOTS 256
#define LOG_LIMIT_TOTAL 60

static struct {
  uint64_t hash[LOG_LIMIT_SLOTS];
  int64_t at[LOG_LIMIT_SLOTS];
  int64_t window_at;
  unsigned in_window;
  unsigned long long suppressed;
} limit;

static uint64_t hash_key(const char *key) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (; *key != '\0'; key++) {
    h ^= (unsigned char)*key;
    h *= 0x100000001b3ULL;
  }
  return h | 1; /* 0 marks an empty slot */
}

bool log_allow(const char *key, int64_t now_ms) {
  uint64_t h = hash_key(key);
  size_t slot = (size_t)(h % LOG_LIMIT_SLOTS);
  bool known = limit.hash[slot] == h;

  if (known && now_ms - limit.at[slot] < LOG_LIMIT_MS &&
      now_ms >= limit.at[slot]) {
    limit.suppressed++;
    return false;
  }
  if (now_ms - limit.window_at >= LOG_LIMIT_MS || now_ms < limit.window_at) {
    if (limit.suppressed > 0)
      log_warn("%llu repeated warnings about peers were not logged in the "
               "last minute",
               limit.suppressed);
    limit.window_at = now_ms;
    limit.in_window = 0;
    limit.suppressed = 0;
  }
  if (limit.in_window >= LOG_LIMIT_TOTAL) {
    limit.suppressed++;
    return false;
  }
  limit.in_window++;
  limit.hash[slot] = h;
  limit.at[slot] = now_ms;
  return true;
}

unsigned long long log_suppressed(void) {
  return limit.suppressed;
}
