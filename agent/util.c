/*
 * util.c — the wall clock, the execvp() lookup of a command and the
 * escaping of peer-supplied text; see util.h.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "choreo.h"
#include "util.h"

int64_t util_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int util_dir_trusted(const char *dir, bool sticky_ok, const char *advice,
                     char *why, size_t len) {
  struct stat st;

  why[0] = '\0';
  if (stat(dir, &st) != 0) {
    if (errno == ENOENT)
      return 0; /* the agent makes it, 0700 */
    snprintf(why, len, "%s: %s", dir, strerror(errno));
    return -errno;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(why, len, "%s: not a directory", dir);
    return -ENOTDIR;
  }
  if (st.st_uid != 0 && st.st_uid != geteuid()) {
    snprintf(why, len,
             "%s: owned by uid %u, neither root nor the agent's user (uid %u)",
             dir, (unsigned)st.st_uid, (unsigned)geteuid());
    return CHOREO_EINVAL;
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 &&
      !(sticky_ok && st.st_uid == 0 && (st.st_mode & S_ISVTX) != 0)) {
    snprintf(why, len, "%s: group or others may write to it (mode %04o)%s", dir,
             (unsigned)(st.st_mode & 07777), advice);
    return CHOREO_EINVAL;
  }
  return 0;
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

/* The length of the valid UTF-8 sequence at p (1-4), or 0. */
static size_t utf8_len(const unsigned char *p) {
  if (p[0] < 0x80)
    return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf)
    return (p[1] & 0xc0) == 0x80 ? 2 : 0;
  if (p[0] >= 0xe0 && p[0] <= 0xef) {
    unsigned char lo = p[0] == 0xe0 ? 0xa0 : 0x80;
    unsigned char hi = p[0] == 0xed ? 0x9f : 0xbf;
    return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
  }
  if (p[0] >= 0xf0 && p[0] <= 0xf4) {
    unsigned char lo = p[0] == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = p[0] == 0xf4 ? 0x8f : 0xbf;
    return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 &&
                   (p[3] & 0xc0) == 0x80
               ? 4
               : 0;
  }
  return 0;
}

/* The escape for the character at p (n bytes), or "" to copy it. */
static void escape_of(const unsigned char *p, size_t n, char *esc, size_t len) {
  unsigned cp = 0;
  esc[0] = '\0';
  if (n == 0) { /* not UTF-8: the byte itself */
    snprintf(esc, len, "\\x%02x", p[0]);
    return;
  }
  if (n == 1 && p[0] == '\n')
    snprintf(esc, len, "\\n");
  else if (n == 1 && p[0] == '\r')
    snprintf(esc, len, "\\r");
  else if (n == 1 && p[0] == '\t')
    snprintf(esc, len, "\\t");
  else if (n == 1 && (p[0] < 0x20 || p[0] == 0x7f))
    snprintf(esc, len, "\\x%02x", p[0]);
  if (n != 2 && n != 3)
    return;
  cp = n == 2 ? (p[0] & 0x1fu) << 6 | (p[1] & 0x3fu)
              : (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
  /* C1 controls, and the bidi embeddings, overrides and isolates that
   * would reorder what follows them on the line. */
  if ((cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) ||
      (cp >= 0x2066 && cp <= 0x2069))
    snprintf(esc, len, "\\u%04x", cp);
}

bool util_escape(const char *s, char *out, size_t len) {
  const unsigned char *p = (const unsigned char *)s;
  size_t used = 0;

  if (len == 0)
    return false;
  while (*p != '\0') {
    char esc[8];
    size_t n = utf8_len(p), k;
    escape_of(p, n, esc, sizeof(esc));
    k = esc[0] != '\0' ? strlen(esc) : n;
    if (used + k + 1 > len) {
      /* Cut at a character, and say so. */
      while (used > 0 && used + 4 > len)
        used--;
      while (used > 0 && ((unsigned char)out[used] & 0xc0) == 0x80)
        used--;
      snprintf(out + used, len - used, "...");
      return false;
    }
    memcpy(out + used, esc[0] != '\0' ? esc : (const char *)p, k);
    used += k;
    p += n != 0 ? n : 1;
  }
  out[used] = '\0';
  return true;
}
