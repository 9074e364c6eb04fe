/*
 * cmd_set.c — the commands that change what the agent holds: this
 * node's declared state (`choreo set`, `choreo run-in`) and, for a dead
 * member, its place in the view (`choreo force-leave`).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

static const char set_usage[] =
    "Usage: choreo set STATE [--reason TEXT] [--data KEY=VALUE]... "
    "[OPTION]...\n"
    "\n"
    "Declare this node's state. Every peer learns it within milliseconds,\n"
    "and their behaviours react. The state is persisted in state_dir and\n"
    "survives agent restarts. A declared state other than 'ready' always\n"
    "wins over the states claimed by checks and behaviours.\n"
    "\n"
    "STATE is 1-32 characters of a-z 0-9 _ -; 'lost' and 'left' are\n"
    "assigned by observers and can't be set.\n"
    "\n"
    "Options:\n"
    "  -r, --reason TEXT    why (up to 256 bytes), shown by status and\n"
    "                       given to scripts as CHOREO_PEER_REASON\n"
    "  -d, --data KEY=VALUE merge KEY into this node's data (keys: 1-64 of\n"
    "                       a-z 0-9 _ . -; values up to 1024 bytes);\n"
    "                       KEY= removes KEY. Repeatable, at most 32.\n"
    "      --for DURATION   for a while (250ms, 30s, 2h; up to a year):\n"
    "                       then the state declared before returns, unless\n"
    "                       set again (another --for renews it; a set\n"
    "                       without --for keeps the new state for good).\n"
    "                       Kept across agent restarts.\n"
    "  -s, --socket PATH    the agent's control socket\n"
    "  -c, --config FILE    take the socket from FILE's control.socket\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit status: 0 success; 1 refused by the agent; 2 usage error; 3 no\n"
    "agent.\n";

static const char run_in_usage[] =
    "Usage: choreo run-in STATE [--reason TEXT] [OPTION]... -- COMMAND "
    "[ARG]...\n"
    "\n"
    "Set STATE, run COMMAND, then restore the state declared before, even\n"
    "if COMMAND fails or this command is interrupted (SIGINT, SIGTERM and\n"
    "SIGHUP are passed on to COMMAND, and the state is restored once it\n"
    "ends). For example, a schema migration with the webservers showing\n"
    "their holding page:\n"
    "\n"
    "  choreo run-in maintenance --reason 'schema 42' -- psql -f 42.sql\n"
    "\n"
    "Options:\n"
    "  -r, --reason TEXT    why, as for choreo set\n"
    "  -s, --socket PATH    the agent's control socket\n"
    "  -c, --config FILE    take the socket from FILE's control.socket\n"
    "  -h, --help           show this help\n"
    "\n"
    "COMMAND is looked up as execvp(3) does (a name without a slash in\n"
    "$PATH) before anything is set: a command that is missing or not\n"
    "executable exits 127 without changing the state.\n"
    "\n"
    "Exit status: COMMAND's status (128+N if killed by signal N); 1 if the\n"
    "state could not be set or restored; 2 usage error; 3 no agent; 127 if\n"
    "COMMAND could not be found or run.\n";

/* --for, long only. */
enum { SET_OPT_FOR = 1000 };

static const struct option set_options[] = {
    {"reason", required_argument, NULL, 'r'},
    {"data", required_argument, NULL, 'd'},
    {"for", required_argument, NULL, SET_OPT_FOR},
    {"socket", required_argument, NULL, 's'},
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct set_args {
  struct cli_common common;
  const char *state;
  const char *reason;
  choreo_kv data[CHOREO_DATA_KEYS_MAX];
  size_t ndata;
  uint64_t for_ms; /* set --for; 0: none */
  char **command;  /* run-in: after "--" */
};

static int add_data(const char *cmd, struct set_args *s, char *arg) {
  char *eq = strchr(arg, '=');
  if (eq == NULL)
    return cli_usage_error(cmd, "--data takes KEY=VALUE, not '%s'", arg);
  if (s->ndata == CHOREO_DATA_KEYS_MAX)
    return cli_usage_error(cmd, "at most %d --data options",
                           CHOREO_DATA_KEYS_MAX);
  *eq = '\0';
  if (!choreo_valid_data_key(arg))
    return cli_usage_error(cmd,
                           "data key '%s' is not 1-64 characters of "
                           "a-z 0-9 _ . -",
                           arg);
  if (!choreo_valid_text(eq + 1, CHOREO_DATA_VALUE_MAX))
    return cli_usage_error(cmd,
                           "data value of '%s' is not UTF-8 text of at "
                           "most %d bytes",
                           arg, CHOREO_DATA_VALUE_MAX);
  s->data[s->ndata].key = arg;
  s->data[s->ndata].value = eq + 1;
  s->ndata++;
  return -1;
}

static int check_state(const char *cmd, const char *state) {
  if (!choreo_valid_state(state))
    return cli_usage_error(cmd,
                           "'%s' is not a valid state (1-32 characters "
                           "of a-z 0-9 _ -)",
                           state);
  if (!choreo_valid_settable_state(state))
    return cli_usage_error(cmd,
                           "'%s' is assigned by observers and can't be "
                           "set",
                           state);
  return -1;
}

static int parse(const char *cmd, const char *usage, bool run_in, int argc,
                 char **argv, struct set_args *s) {
  int ch, rv, nopts = argc, status = -1;
  memset(s, 0, sizeof(*s));
  /* run-in: everything after "--" is COMMAND's, options included. */
  for (int i = 1; run_in && i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) {
      nopts = i;
      s->command = argv + i + 1;
      break;
    }
  }
  while ((ch = cli_next_opt(cmd, usage, nopts, argv,
                            run_in ? ":r:s:c:h" : ":r:d:s:c:h", set_options,
                            &status)) >= 0) {
    switch (ch) {
    case 'r':
      s->reason = optarg;
      break;
    case 's':
      s->common.socket = optarg;
      break;
    case 'c':
      s->common.config = optarg;
      break;
    case 'd':
      if ((rv = add_data(cmd, s, optarg)) >= 0)
        return rv;
      break;
    case SET_OPT_FOR:
      if (run_in)
        return cli_usage_error(cmd, "unknown option '--for'");
      if (choreo_parse_duration(optarg, &s->for_ms) != 0 || s->for_ms == 0 ||
          s->for_ms > 31536000000ULL)
        return cli_usage_error(cmd,
                               "--for: '%s' is not a duration from 1ms to "
                               "a year (250ms, 30s, 2h)",
                               optarg);
      break;
    }
  }
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind >= nopts)
    return cli_usage_error(cmd, "missing STATE");
  s->state = argv[optind++];
  if (optind < nopts)
    return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if ((rv = check_state(cmd, s->state)) >= 0)
    return rv;
  if (s->reason != NULL && !choreo_valid_text(s->reason, CHOREO_REASON_MAX))
    return cli_usage_error(cmd,
                           "the reason must be UTF-8 text of at most %d "
                           "bytes",
                           CHOREO_REASON_MAX);
  if (run_in && (s->command == NULL || s->command[0] == NULL))
    return cli_usage_error(cmd, "missing -- COMMAND");
  return -1;
}

static int do_set(const char *cmd, choreo_client *c, const char *state,
                  const char *reason, const choreo_kv *data, size_t ndata,
                  uint64_t for_ms) {
  char *error = NULL;
  int rv = choreo_set_for(c, state, reason, data, ndata, for_ms, &error);
  if (rv == CHOREO_EREFUSED)
    rv = cli_error(EXIT_FAILED, cmd, "%s", error ? error : "refused");
  else if (rv != 0)
    rv = cli_fail(cmd, rv, NULL);
  free(error);
  return rv;
}

int cmd_set(int argc, char **argv) {
  struct set_args s;
  choreo_client *c = NULL;
  int rv = parse("set", set_usage, false, argc, argv, &s);
  if (rv >= 0)
    return rv;
  if ((rv = cli_connect("set", &s.common, &c)) != 0)
    return rv;
  rv = do_set("set", c, s.state, s.reason, s.data, s.ndata, s.for_ms);
  choreo_close(c);
  return rv;
}

/* ---- run-in ---- */

/* The state declared before run-in, to restore. The agent reports it in
 * the "declared" object of the status reply. */
static int declared_state(choreo_client *c, char *state, size_t slen,
                          char *reason, size_t rlen) {
  char *text = NULL;
  json_t *reply, *d;
  const char *st, *re;
  int rv = choreo_request(c, "{\"cmd\":\"status\"}", &text);
  if (rv != 0)
    return rv;
  reply = json_loads(text, 0, NULL);
  free(text);
  d = json_object_get(reply, "declared");
  st = json_string_value(json_object_get(d, "state"));
  re = json_string_value(json_object_get(d, "reason"));
  if (st == NULL) {
    json_decref(reply);
    return CHOREO_EPROTO;
  }
  snprintf(state, slen, "%s", st);
  snprintf(reason, rlen, "%s", re != NULL ? re : "");
  json_decref(reply);
  return 0;
}

/* glibc's execvp() searches this when $PATH is unset. */
#define EXECVP_DEFAULT_PATH "/bin:/usr/bin"

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig) {
  if (child_pid > 0)
    kill((pid_t)child_pid, sig);
}

static int run_command(char **command) {
  struct sigaction sa = {.sa_handler = forward_signal};
  int status;
  pid_t pid, w;

  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
  pid = fork();
  if (pid < 0)
    return cli_error(EXIT_FAILED, "run-in", "fork: %s", strerror(errno));
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    execvp(command[0], command);
    fprintf(stderr, "choreo run-in: %s: %s\n", command[0], strerror(errno));
    _exit(127);
  }
  child_pid = pid;
  do
    w = waitpid(pid, &status, 0);
  while (w < 0 && errno == EINTR);
  child_pid = 0;
  if (w < 0)
    return EXIT_FAILED;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int cmd_run_in(int argc, char **argv) {
  char prev[CHOREO_STATE_MAX + 1], prev_reason[CHOREO_REASON_MAX + 1];
  struct set_args s;
  choreo_client *c = NULL;
  int rv = parse("run-in", run_in_usage, true, argc, argv, &s), status;

  const char *why;

  if (rv >= 0)
    return rv;
  if ((why = util_command_problem(s.command[0], EXECVP_DEFAULT_PATH)) != NULL)
    return cli_error(127, "run-in", "%s: %s; the state was not changed",
                     s.command[0], why);
  if ((rv = cli_connect("run-in", &s.common, &c)) != 0)
    return rv;
  rv = declared_state(c, prev, sizeof(prev), prev_reason, sizeof(prev_reason));
  if (rv != 0) {
    choreo_close(c);
    return cli_fail("run-in", rv, "reading the current state");
  }
  if ((rv = do_set("run-in", c, s.state, s.reason, NULL, 0, 0)) != 0) {
    choreo_close(c);
    return rv;
  }
  /* The connection may time out while COMMAND runs: use a fresh one to
   * restore. */
  choreo_close(c);
  status = run_command(s.command);
  if ((rv = cli_connect("run-in", &s.common, &c)) != 0)
    return rv;
  rv = do_set("run-in", c, prev, prev_reason, NULL, 0, 0);
  choreo_close(c);
  if (rv != 0)
    return cli_error(EXIT_FAILED, "run-in", "could not restore state '%s'",
                     prev);
  return status;
}

/* ---- force-leave ---- */

static const char force_leave_usage[] =
    "Usage: choreo force-leave NODE [--force] [OPTION]...\n"
    "\n"
    "Mark member NODE left in this agent's view now, for a node that is\n"
    "gone for good, instead of keeping it 'lost' until network.reap_after.\n"
    "Behaviours here see it leave (on: [left]; conditions stop counting\n"
    "it). Only this agent's view changes: a node's departure is its own to\n"
    "announce, so no other agent is told; run it on each agent that should\n"
    "forget the node. If the node comes back (a restart, a new state), it\n"
    "joins again.\n"
    "\n"
    "Options:\n"
    "  -f, --force          also for a member that is alive (heard within\n"
    "                       network.lost_after); it stays left here until\n"
    "                       its record changes\n"
    "  -s, --socket PATH    the agent's control socket\n"
    "  -c, --config FILE    take the socket from FILE's control.socket\n"
    "  -h, --help           show this help\n"
    "\n"
    "Exit status: 0 success; 1 refused (not a member, left already, or\n"
    "alive without --force); 2 usage error; 3 no agent.\n";

static const struct option force_leave_options[] = {
    {"force", no_argument, NULL, 'f'},
    {"socket", required_argument, NULL, 's'},
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

int cmd_force_leave(int argc, char **argv) {
  struct cli_common common = {0};
  choreo_client *c = NULL;
  char *error = NULL;
  bool force = false;
  int ch, rv, status = -1;

  while ((ch = cli_next_opt("force-leave", force_leave_usage, argc, argv,
                            ":fs:c:h", force_leave_options, &status)) >= 0) {
    if (ch == 'f')
      force = true;
    else if (ch == 's')
      common.socket = optarg;
    else if (ch == 'c')
      common.config = optarg;
  }
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind + 1 != argc)
    return cli_usage_error("force-leave", "give exactly one NODE");
  if (!choreo_valid_name(argv[optind]))
    return cli_usage_error("force-leave", "'%s' is not a valid name",
                           argv[optind]);
  if ((rv = cli_connect("force-leave", &common, &c)) != 0)
    return rv;
  rv = choreo_force_leave(c, argv[optind], force, &error);
  if (rv == CHOREO_EREFUSED)
    rv = cli_error(EXIT_FAILED, "force-leave", "%s", error ? error : "refused");
  else if (rv != 0)
    rv = cli_fail("force-leave", rv, NULL);
  free(error);
  choreo_close(c);
  return rv;
}
