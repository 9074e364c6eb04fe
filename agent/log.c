/*
 * log.c — one line per message on stderr: "2026-11-25T09:00:00.123Z level:
 * message". A message is written with a single write() so that lines from
 * several sources never interleave. Messages quote what peers, scripts and
 * clients sent (reasons, data values, addresses): each is escaped
 * (util_escape) so that no control character, newline or bidi override
 * reaches the log as such. Warnings about what a peer did go through
 * log_allow(), at most one per peer and kind a minute. Under journald
 * (log_detect_journal) the timestamp gives way to the syslog priority,
 * "<4>warning: message": journald stamps the time itself.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "choreo.h"
#include "util.h"

/* A formatted message, and the same escaped (4 bytes per byte at most). */
#define LOG_MSG_MAX 2048
#define LOG_LINE_MAX (64 + 4 * LOG_MSG_MAX)

static const struct {
  const char *name;
  int prio;
} levels[] = {
#define X(e, name, prio) {name, prio},
    LOG_LEVEL_MAP(X)
#undef X
};

static enum log_level threshold = LOG_LEVEL_INFO;
static bool journal;

void log_set_level(enum log_level level) {
  threshold = level;
}

enum log_level log_get_level(void) {
  return threshold;
}

int log_level_parse(const char *s, enum log_level *out) {
  for (size_t i = 0; i < ARRAY_SIZE(levels); i++) {
    if (strcmp(s, levels[i].name) == 0) {
      *out = (enum log_level)i;
      return 0;
    }
  }
  return CHOREO_EINVAL;
}

const char *log_level_name(enum log_level level) {
  return (size_t)level < ARRAY_SIZE(levels) ? levels[level].name : "?";
}

void log_set_journal(bool on) {
  journal = on;
}

bool log_detect_journal(void) {
  const char *env = getenv("JOURNAL_STREAM");
  uintmax_t dev, ino;
  struct stat st;
  int used = 0;

  journal = false;
  /* systemd writes "%lu:%lu" (st_dev, st_ino); anything else is not it. */
  if (env == NULL ||
      sscanf(env, "%" SCNuMAX ":%" SCNuMAX "%n", &dev, &ino, &used) != 2 ||
      env[used] != '\0' || fstat(STDERR_FILENO, &st) != 0)
    return false;
  journal = (uintmax_t)st.st_dev == dev && (uintmax_t)st.st_ino == ino;
  return journal;
}

/* The line's head: "<PRIO>level: " for journald, else the UTC time and
 * the level. Returns its length. */
static size_t head(enum log_level level, char *line, size_t size) {
  struct timespec ts;
  struct tm tm;
  size_t n;
  int k;

  if (journal) {
    k = snprintf(line, size, "<%d>%s: ", levels[level].prio,
                 levels[level].name);
    return k > 0 ? (size_t)k : 0;
  }
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  n = strftime(line, size, "%Y-%m-%dT%H:%M:%S", &tm);
  k = snprintf(line + n, size - n, ".%03ldZ %s: ", ts.tv_nsec / 1000000,
               levels[level].name);
  return n + (k > 0 ? (size_t)k : 0);
}

LOG_PRINTF(2, 0)
static void vlog(enum log_level level, const char *fmt, va_list ap) {
  char msg[LOG_MSG_MAX], line[LOG_LINE_MAX];
  size_t n;
  int k;

  n = head(level, line, sizeof(line));
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

static bool enabled(enum log_level level) {
  if (level == LOG_LEVEL_DEBUG && getenv("CHOREO_DEBUG") != NULL)
    return true;
  return level <= threshold;
}

#define LOG_FN(fn, level)                                                      \
  void fn(const char *fmt, ...) {                                              \
    va_list ap;                                                                \
    if (!enabled(level))                                                       \
      return;                                                                  \
    va_start(ap, fmt);                                                         \
    vlog(level, fmt, ap);                                                      \
    va_end(ap);                                                                \
  }

LOG_FN(log_debug, LOG_LEVEL_DEBUG)
LOG_FN(log_info, LOG_LEVEL_INFO)
LOG_FN(log_warn, LOG_LEVEL_WARNING)
LOG_FN(log_error, LOG_LEVEL_ERROR)

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
  /* A slot held by another key said within the minute keeps it: the keys
   * said first (a budget, a conflict) stay limited however many others
   * (forged names) pass through; those go by the total alone. */
  if (known || limit.hash[slot] == 0 ||
      now_ms - limit.at[slot] >= LOG_LIMIT_MS || now_ms < limit.at[slot]) {
    limit.hash[slot] = h;
    limit.at[slot] = now_ms;
  }
  return true;
}

unsigned long long log_suppressed(void) {
  return limit.suppressed;
}
