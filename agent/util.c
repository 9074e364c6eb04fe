/*
 * util.c — the wall clock and the execvp() lookup of a command; see util.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int64_t util_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_strv_free(char **v) {
  if (v == NULL)
    return;
  for (size_t i = 0; v[i] != NULL; i++)
    free(v[i]);
  free(v);
}

const char *util_exec_problem(const char *file) {
  struct stat st;
  if (stat(file, &st) != 0)
    return errno == ENOENT || errno == ENOTDIR ? "no such file"
                                               : strerror(errno);
  if (S_ISDIR(st.st_mode))
    return "is a directory";
  if (!S_ISREG(st.st_mode))
    return "is not a regular file";
  if (access(file, X_OK) != 0)
    return "is not executable";
  return NULL;
}

const char *util_command_problem(const char *command,
                                 const char *default_path) {
  const char *p = getenv("PATH"), *end;
  char file[4096];
  int n;

  if (command[0] == '\0')
    return "the command is empty";
  if (strchr(command, '/') != NULL)
    return util_exec_problem(command);
  if (p == NULL)
    p = default_path;
  for (;; p = end + 1) {
    size_t len;
    end = strchr(p, ':');
    len = end != NULL ? (size_t)(end - p) : strlen(p);
    n = len == 0
            ? snprintf(file, sizeof(file), "%s", command)
            : snprintf(file, sizeof(file), "%.*s/%s", (int)len, p, command);
    if (n > 0 && (size_t)n < sizeof(file) && util_exec_problem(file) == NULL)
      return NULL;
    if (end == NULL)
      return "not found in PATH";
  }
}
