/*
 * cmd_agent.c — `choreo agent` (run the daemon) and `choreo check`
 * (validate a configuration without running it).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "cli.h"
#include "config.h"

static const char agent_usage[] =
    "Usage: choreo agent -c FILE\n"
    "\n"
    "Run the agent in the foreground with the configuration FILE (see\n"
    "choreo.yaml(5)). It joins the cluster through any reachable address of\n"
    "network.join, publishes this node's state, learns every peer's, and\n"
    "runs the behaviours whose conditions or events fire. With\n"
    "network.relay it also forwards its leaves' messages to every member;\n"
    "with network.relays it is a leaf that talks to those relays only.\n"
    "Logs go to stderr, one line per message, ready for journald.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  the configuration file (required)\n"
    "  -h, --help         show this help\n"
    "\n"
    "Signals: SIGHUP reloads the configuration (a bad file is logged and the\n"
    "running configuration stays); SIGTERM and SIGINT announce a graceful\n"
    "leave to every peer, then stop.\n"
    "\n"
    "Exit status: 0 after a leave or signal; 1 when the agent could not\n"
    "start (address in use, another agent on the socket, state_dir not\n"
    "writable); 2 when the configuration is invalid (what choreo check\n"
    "reports, an unusable network.key_file included).\n";

static const char check_usage[] =
    "Usage: choreo check -c FILE\n"
    "\n"
    "Validate the configuration FILE and every file it includes without\n"
    "running anything. Each problem is printed on stderr as\n"
    "FILE:LINE:COL: message. Unknown and duplicate keys, bad durations,\n"
    "states, names and addresses, missing or non-executable scripts, a\n"
    "network.key_file that can't be read or holds no valid key, and include\n"
    "variables without a value or without a use are all problems: check\n"
    "refuses what the agent would refuse.\n"
    "\n"
    "Options:\n"
    "  -c, --config FILE  the configuration file (required)\n"
    "  -q, --quiet        print nothing when the file is valid\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 valid; 2 invalid, or a usage error.\n";

static const struct option config_options[] = {
    {"config", required_argument, NULL, 'c'},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Parse -c FILE [-q]; returns -1 to go on, else an exit status. */
static int parse(const char *cmd, const char *usage, int argc, char **argv,
                 const char **file, bool *quiet) {
  int ch, status = -1;
  while ((ch = cli_next_opt(cmd, usage, argc, argv, ":c:qh", config_options,
                            &status)) >= 0) {
    if (ch == 'c')
      *file = optarg;
    else if (ch == 'q')
      *quiet = true;
  }
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind < argc)
    return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (*file == NULL)
    return cli_usage_error(cmd, "-c FILE is required");
  if (cli_check_path(cmd, *file) != EXIT_OK)
    return EXIT_USAGE;
  return -1;
}

int cmd_agent(int argc, char **argv) {
  const char *file = NULL;
  bool quiet = false;
  int rv = parse("agent", agent_usage, argc, argv, &file, &quiet);
  if (rv >= 0)
    return rv;
  return agent_run(file);
}

int cmd_check(int argc, char **argv) {
  struct config_errors errs = {0};
  struct config *cfg = NULL;
  const char *file = NULL;
  bool quiet = false;
  int rv = parse("check", check_usage, argc, argv, &file, &quiet);

  if (rv >= 0)
    return rv;
  if (config_load(file, &cfg, &errs) != 0) {
    for (size_t i = 0; i < errs.n; i++)
      fprintf(stderr, "%s\n", errs.msg[i]);
    if (errs.more > 0)
      fprintf(stderr, "(%zu more problems not shown)\n", errs.more);
    fprintf(stderr, "%s: %zu problem%s\n", file, errs.n + errs.more,
            errs.n + errs.more == 1 ? "" : "s");
    config_errors_free(&errs);
    return EXIT_USAGE;
  }
  if (!quiet)
    printf("%s: ok (node %s, cluster %s, %zu behaviour%s, %zu check%s)\n", file,
           cfg->name, cfg->cluster, cfg->nbehaviours,
           cfg->nbehaviours == 1 ? "" : "s", cfg->nchecks,
           cfg->nchecks == 1 ? "" : "s");
  config_free(cfg);
  return EXIT_OK;
}
