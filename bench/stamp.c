/*
 * stamp.c — the cheapest possible behaviour script, for benchmarks: appends
 * "EVENT NANOSECONDS" (wall clock) to the file named by argv[1] with one
 * write(), so a benchmark can tell when a script started without paying
 * for a shell.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
  struct timespec ts;
  char line[128];
  const char *event = getenv("CHOREO_EVENT");
  int fd, n;

  clock_gettime(CLOCK_REALTIME, &ts);
  if (argc < 2)
    return 2;
  n = snprintf(line, sizeof(line), "%s %lld\n", event ? event : "-",
               (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  fd = open(argv[1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, line, (size_t)n) != n)
    return 1;
  return close(fd) == 0 ? 0 : 1;
}
