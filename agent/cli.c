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
#include "util.h"

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

bool cli_escape(const char *s, char *out, size_t len) {
  return util_escape(s, out, len);
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
