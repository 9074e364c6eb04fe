/*
 * main.c — the `choreo` command: finds the subcommand and runs it.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct cli_command commands[] = {
    {"agent", cmd_agent, "run the agent in the foreground"},
    {"check", cmd_check, "validate a configuration and its includes"},
    {"set", cmd_set, "declare this node's state"},
    {"status", cmd_status, "this node and every known peer"},
    {"peers", cmd_peers, "the peer table only"},
    {"watch", cmd_watch, "stream peer events as they happen"},
    {"wait", cmd_wait, "block until peers reach a state"},
    {"run-in", cmd_run_in, "run a command in a state, then restore"},
    {"keygen", cmd_keygen, "print a new cluster key or signing key"},
    {"pubkey", cmd_pubkey, "print the public key of a signing key"},
    {"cert", cmd_cert, "issue, show or revoke node certificates"},
    {"revoke", cmd_revoke, "hand a certificate revocation to the agent"},
    {"leave", cmd_leave, "leave the cluster and stop the agent"},
    {"force-leave", cmd_force_leave, "mark a dead member left in this view"},
    {"reload", cmd_reload, "reload the configuration: all or nothing"},
    {"metrics", cmd_metrics, "counters and gauges (Prometheus text)"},
    {"version", cmd_version, "versions of choreo and its libraries"},
};

static const char usage_head[] =
    "Usage: choreo COMMAND [OPTION]...\n"
    "\n"
    "choreo is a choreography agent. One agent runs on every node: it\n"
    "publishes the node's workflow state (ready, maintenance, draining, ...)\n"
    "and a few key/value facts, learns the state of every peer, and runs the\n"
    "behaviour scripts declared in its YAML configuration when the peers it\n"
    "depends on change state. There is no central server.\n"
    "\n"
    "Commands:\n";

static const char usage_tail[] =
    "\n"
    "Client commands find the agent's control socket from, in order:\n"
    "--socket PATH, $CHOREO_SOCKET, control.socket of the file given with\n"
    "-c FILE (only that key is read), then " CHOREO_DEFAULT_SOCKET ".\n"
    "Text that peers wrote is shown with control characters and bidi\n"
    "overrides escaped (\\x1b, \\n, \\u202e); --json keeps it exact.\n"
    "\n"
    "Exit status: 0 success; 1 the operation failed or timed out; 2 usage\n"
    "error or invalid configuration; 3 no agent answers on the control\n"
    "socket.\n"
    "\n"
    "Run 'choreo COMMAND --help' for a command's options. See choreo(1) and\n"
    "choreo.yaml(5).\n";

static void usage(FILE *f) {
  fputs(usage_head, f);
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
  fputs(usage_tail, f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return EXIT_USAGE;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
    return cmd_version(1, argv + 1);
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "choreo: unknown command '%s'\n", argv[1]);
  fprintf(stderr, "Try 'choreo --help'.\n");
  return EXIT_USAGE;
}
