/*
 * log.c — one line per message on stderr: "2026-11-25T09:00:00.123Z level:
 * message". A message is written with a single write() so that lines from
 * several sources never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

LOG_PRINTF(2, 0)
static void vlog(const char *level, const char *fmt, va_list ap) {
  char line[2048];
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
  k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
  if (k < 0)
    k = 0;
  if ((size_t)k >= sizeof(line) - n - 1) {
    /* Truncated: say so rather than cut silently. */
    static const char more[] = " [...]";
    n = sizeof(line) - sizeof(more) - 1;
    for (size_t i = 0; i < sizeof(more) - 1; i++)
      line[n++] = more[i];
  } else {
    n += (size_t)k;
  }
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
