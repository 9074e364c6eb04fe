/*
 * cli.h — what every `choreo` subcommand shares: finding the control
 * socket, connecting, reporting errors with the exit codes of choreo(1), and
 * formatting for humans (ages, aligned columns, colour on terminals).
 */
#ifndef CHOREO_CLI_H
#define CHOREO_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "choreo.h"

/* Exit statuses (choreo(1), EXIT STATUS). */
enum {
  EXIT_OK = 0,
  EXIT_FAILED = 1,  /* the operation failed or timed out */
  EXIT_USAGE = 2,   /* usage error or invalid configuration */
  EXIT_NOAGENT = 3, /* no agent answers on the control socket */
};

/* How long a request may wait for the agent's answer. */
#define CLI_TIMEOUT_MS 5000

/* Options every client command accepts. */
struct cli_common {
  const char *socket; /* --socket */
  const char *config; /* -c, --config */
  bool json;          /* --json */
};

/* One subcommand. */
struct cli_command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
};

/* Print "choreo CMD: message" on stderr and return the exit status. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int cli_error(int status, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Connect as choreo(1) says: --socket, $CHOREO_SOCKET, control.socket of the
 * -c file, then the default. Returns EXIT_OK with *out, or the exit status
 * to use (its message already printed). */
int cli_connect(const char *cmd, const struct cli_common *o,
                choreo_client **out);
/* EXIT_OK when file fits CONFIG_PATH_MAX, else the usage error printed. */
int cli_check_path(const char *cmd, const char *file);
/* Map a library error to an exit status, printing it. */
int cli_fail(const char *cmd, int err, const char *detail);

/* "3s ago", "2m ago", "1h ago", "4d ago"; "-" for negative. */
void cli_age(int64_t ms, char *buf, size_t len);
/* Colour escape for a state, or "" when colour is off. */
const char *cli_state_colour(const char *state, bool colour);
bool cli_colour(FILE *f);

/* Peer-supplied text made safe for a terminal: util_escape() (util.h),
 * which the agent's log uses too. Writes out[len] (always NUL-terminated
 * when len > 0); returns false when it had to cut, ending with "...". At
 * most 4 bytes of out per byte of s. */
bool cli_escape(const char *s, char *out, size_t len);
/* Columns that the UTF-8 text s takes: its characters. */
size_t cli_width(const char *s);
/* Print s and pad it with spaces to width columns. */
void cli_pad(FILE *f, const char *s, size_t width);
/* The next option of a subcommand's command line, with what every command
 * does the same way handled here: -h/--help prints usage, a missing value
 * or an unknown option is a usage error. Returns the option (>= 0), -1 at
 * the end of the options, or CLI_OPT_STOP with *status the exit status to
 * return. shortopts must start with ':' and include "h". Call it first
 * with *status == -1 (it resets getopt then). */
#define CLI_OPT_STOP (-2)
struct option;
int cli_next_opt(const char *cmd, const char *usage, int argc, char **argv,
                 const char *shortopts, const struct option *longopts,
                 int *status);

/* Subcommands, one group per file. */
int cmd_agent(int argc, char **argv); /* cmd_agent.c */
int cmd_check(int argc, char **argv);
int cmd_status(int argc, char **argv); /* cmd_query.c */
int cmd_peers(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_set(int argc, char **argv); /* cmd_set.c */
int cmd_run_in(int argc, char **argv);
int cmd_force_leave(int argc, char **argv);
int cmd_keygen(int argc, char **argv); /* cmd_misc.c */
int cmd_leave(int argc, char **argv);
int cmd_reload(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_pubkey(int argc, char **argv); /* cmd_cert.c */
int cmd_cert(int argc, char **argv);
int cmd_revoke(int argc, char **argv);

#endif
