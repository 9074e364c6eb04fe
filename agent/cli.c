/*
 * cli.c — helpers shared by the subcommands; see cli.h.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"

static void vreport(const char *cmd, const char *fmt, va_list ap) {
  fprintf(stderr, "choreo%s%s: ", cmd ? " " : "", cmd ? cmd : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(cmd, fmt, ap);
  va_end(ap);
  fprintf(stderr, "Try 'choreo %s --help'.\n", cmd ? cmd : "");
  return EXIT_USAGE;
}

int cli_error(int status, const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vreport(cmd, fmt, ap);
  va_end(ap);
  return status;
}

int cli_fail(const char *cmd, int err, const char *detail) {
  int status = err == CHOREO_ENOAGENT ? EXIT_NOAGENT : EXIT_FAILED;
  if (detail != NULL)
    return cli_error(status, cmd, "%s: %s", choreo_strerror(err), detail);
  return cli_error(status, cmd, "%s", choreo_strerror(err));
}

int cli_check_path(const char *cmd, const char *file) {
  if (strlen(file) >= CONFIG_PATH_MAX)
    return cli_usage_error(cmd,
                           "the configuration path is longer than %d bytes "
                           "(CONFIG_PATH_MAX)",
                           CONFIG_PATH_MAX - 1);
  return EXIT_OK;
}

/* Only control.socket is read: a configuration the agent would refuse for
 * another reason (a missing script, say) must not keep the operator from
 * reaching the agent that runs with it. */
static int socket_from_config(const char *cmd, const char *file, char *out,
                              size_t len) {
  struct config_errors errs = {0};
  int rv;

  if ((rv = cli_check_path(cmd, file)) != EXIT_OK)
    return rv;
  if ((rv = config_socket_path(file, out, len, &errs)) != 0) {
    for (size_t i = 0; i < errs.n; i++)
      fprintf(stderr, "%s\n", errs.msg[i]);
    config_errors_free(&errs);
    if (rv == CHOREO_ENOMEM)
      return cli_fail(cmd, rv, file);
    return cli_error(EXIT_USAGE, cmd, "%s: no usable control.socket", file);
  }
  return EXIT_OK;
}

int cli_connect(const char *cmd, const struct cli_common *o,
                choreo_client **out) {
  char path[CONFIG_SOCKET_MAX + 1];
  const char *env = getenv("CHOREO_SOCKET");
  int rv;

  if (o->socket != NULL)
    snprintf(path, sizeof(path), "%s", o->socket);
  else if (env != NULL && env[0] != '\0')
    snprintf(path, sizeof(path), "%s", env);
  else if (o->config != NULL) {
    if ((rv = socket_from_config(cmd, o->config, path, sizeof(path))) != 0)
      return rv;
  } else
    snprintf(path, sizeof(path), "%s", CHOREO_DEFAULT_SOCKET);
  rv = choreo_connect(path, CLI_TIMEOUT_MS, out);
  if (rv == CHOREO_EPEERCRED)
    return cli_error(EXIT_FAILED, cmd,
                     "%s: refused: the process behind this socket runs as "
                     "neither root nor this user",
                     path);
  if (rv != 0)
    return cli_fail(cmd, rv, path);
  return EXIT_OK;
}

/* ---- Escaping ---- */

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

bool cli_escape(const char *s, char *out, size_t len) {
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

size_t cli_width(const char *s) {
  size_t w = 0;
  for (; *s != '\0'; s++)
    w += ((unsigned char)*s & 0xc0) != 0x80;
  return w;
}

void cli_pad(FILE *f, const char *s, size_t width) {
  fputs(s, f);
  for (size_t w = cli_width(s); w < width; w++)
    fputc(' ', f);
}

void cli_age(int64_t ms, char *buf, size_t len) {
  static const struct {
    int64_t ms;
    const char *unit;
  } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
  if (ms < 0) {
    snprintf(buf, len, "-");
    return;
  }
  for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
    if (ms >= units[i].ms) {
      snprintf(buf, len, "%lld%s ago", (long long)(ms / units[i].ms),
               units[i].unit);
      return;
    }
  }
  snprintf(buf, len, "%lldms ago", (long long)ms);
}

bool cli_colour(FILE *f) {
  const char *no = getenv("NO_COLOR");
  return isatty(fileno(f)) && (no == NULL || no[0] == '\0');
}

const char *cli_state_colour(const char *state, bool colour) {
  if (!colour)
    return "";
  if (strcmp(state, "ready") == 0)
    return "\033[32m";
  if (strcmp(state, "lost") == 0 || strcmp(state, "failed") == 0)
    return "\033[31m";
  if (strcmp(state, "left") == 0)
    return "\033[2m";
  return "\033[33m";
}

int cli_next_opt(const char *cmd, const char *usage, int argc, char **argv,
                 const char *shortopts, const struct option *longopts,
                 int *status) {
  int ch;
  if (*status == -1) {
    optind = 1;
    opterr = 0;
    *status = EXIT_OK;
  }
  ch = getopt_long(argc, argv, shortopts, longopts, NULL);
  switch (ch) {
  case 'h':
    fputs(usage, stdout);
    *status = EXIT_OK;
    return CLI_OPT_STOP;
  case ':':
    *status =
        cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
    return CLI_OPT_STOP;
  case '?':
    *status = cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
    return CLI_OPT_STOP;
  default:
    return ch;
  }
}
