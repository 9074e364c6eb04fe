/*
 * util.h — small helpers every module of the agent uses: container_of,
 * ARRAY_SIZE, bounded string copies, the clocks and the escaping of
 * text that came from outside.
 */
#ifndef CHOREO_UTIL_H
#define CHOREO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define container_of(ptr, type, member)                                        \
  ((type *)((char *)(ptr)-offsetof(type, member)))

/* Copy src into dst[size]; returns 0, or -1 if src did not fit (dst then
 * holds a truncated, NUL-terminated copy). */
static inline int strlcpy_checked(char *dst, const char *src, size_t size) {
  size_t n = strlen(src);
  if (n >= size) {
    memcpy(dst, src, size - 1);
    dst[size - 1] = '\0';
    return -1;
  }
  memcpy(dst, src, n + 1);
  return 0;
}

/* a + b, or UINT64_MAX where it would overflow (deadlines far away). */
static inline uint64_t util_add_sat(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* FNV-1a over len bytes, continuing from h (UTIL_FNV_OFFSET to start):
 * the digests' and the shares' hash, the same on every node. */
#define UTIL_FNV_OFFSET 0xcbf29ce484222325ULL
#define UTIL_FNV_PRIME 0x100000001b3ULL
static inline uint64_t util_fnv(uint64_t h, const void *buf, size_t len) {
  const unsigned char *b = buf;
  for (size_t i = 0; i < len; i++) {
    h ^= b[i];
    h *= UTIL_FNV_PRIME;
  }
  return h;
}

/* Wall-clock time in unix milliseconds: only for "since" and "time"
 * fields; everything that measures intervals uses the loop's monotonic
 * clock. */
int64_t util_wall_ms(void);

/* Whether a directory the agent keeps files in (state_dir, the control
 * socket's) can be trusted: 0 when it is missing (the agent makes it) or
 * is a directory owned by root or this process's user that neither group
 * nor others may write (a root-owned sticky one such as /tmp too, when
 * sticky_ok); else -ENOTDIR, CHOREO_EINVAL or a negated errno, with why
 * set ("DIR: ..."), ending with advice (e.g. "restrict it with chmod
 * 700"). */
int util_dir_trusted(const char *dir, bool sticky_ok, const char *advice,
                     char *why, size_t len);

/* Free a NULL-terminated vector of strings and the strings (NULL: none). */
void util_strv_free(char **v);

/* NULL if file is a regular file this process may execute, else why not
 * (a static string or strerror's). */
const char *util_exec_problem(const char *file);

/* NULL if execvp() would find and run command, else why not: a name with
 * a slash is a path; else each directory of $PATH is tried (an empty one
 * meaning the current directory; default_path when $PATH is unset). Used
 * wherever a command is checked before it is run (choreo check, run-in). */
const char *util_command_problem(const char *command, const char *default_path);

/* Text from outside (a peer, a script, a client) made safe for a terminal
 * or a log line: every C0 and C1 control character, DEL, and the bidi
 * embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are
 * written as escapes ("\n", "\t", "\r", "\x1b", "\u202e"), a byte that
 * is not UTF-8 as "\xNN"; the rest is copied. Writes out[len] (always
 * NUL-terminated when len > 0); returns false when it had to cut, at a
 * character, ending with "...". At most 4 bytes of out per byte of s. */
bool util_escape(const char *s, char *out, size_t len);

#endif
