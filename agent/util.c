/*
 * util.c — the wall clock; see util.h.
 */
#include <time.h>

#include "util.h"

int64_t util_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
