/*
 * cmd_misc.c — `choreo keygen` (cluster keys and, with --signing, signing
 * keys), `choreo leave`, `choreo reload` and `choreo version`: the
 * commands that take no arguments.
 */
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>

#include "cli.h"
#include "identity.h"
#include "statefiles.h"
#include "wire.h"

static const char keygen_usage[] =
    "Usage: choreo keygen [--signing]\n"
    "\n"
    "Print a new random cluster key: 32 bytes from the system's secure\n"
    "random source, base64-encoded, on one line. Put it in the file named\n"
    "by network.key_file on every node (mode 0600). A key file may hold\n"
    "several keys, one per line: the first encrypts, all decrypt, which\n"
    "allows rotating keys without downtime (see docs/OPERATIONS.md).\n"
    "\n"
    "  --signing  print a new Ed25519 signing key instead (88 characters of\n"
    "             base64): a node's identity key or an operator's key.\n"
    "             Keep it in a file of mode 0600, e.g.\n"
    "             (umask 077; choreo keygen --signing > node.key);\n"
    "             choreo pubkey prints its public half.\n"
    "\n"
    "Exit status: 0 success; 1 failure; 2 usage error.\n";

static const char leave_usage[] =
    "Usage: choreo leave [OPTION]...\n"
    "\n"
    "Announce a graceful leave to every peer (they show this node as\n"
    "'left', not 'lost'), then stop the agent.\n"
    "\n"
    "Options:\n"
    "  -s, --socket PATH  the agent's control socket\n"
    "  -c, --config FILE  take the socket from FILE's control.socket\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 success; 1 failure; 2 usage error; 3 no agent.\n";

static const char reload_usage[] =
    "Usage: choreo reload [OPTION]...\n"
    "\n"
    "Ask the agent to read its configuration file and its key file again,\n"
    "as SIGHUP does, and print the outcome. A reload is all or nothing:\n"
    "either the whole new configuration (and key ring) is in effect, or\n"
    "nothing changed and every problem is printed as FILE:LINE:COL: message.\n"
    "Settings that need a restart (node.name, network.listen, ...) are kept\n"
    "as they were; the summary names those that changed.\n"
    "\n"
    "Options:\n"
    "  -s, --socket PATH  the agent's control socket\n"
    "  -c, --config FILE  take the socket from FILE's control.socket\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 applied; 1 refused (or failed); 2 usage error; 3 no\n"
    "agent.\n";

static const char version_usage[] =
    "Usage: choreo version [--json]\n"
    "\n"
    "Print choreo's version, the protocol versions it speaks (major.minor,\n"
    "lowest to highest), the format of its state_dir files, and the\n"
    "versions of the libraries it runs on.\n"
    "\n"
    "  --json   one JSON object: {\"version\", \"proto\": {\"major\", "
    "\"min\",\n"
    "           \"max\"}, \"state_format\", \"libraries\": {...}}\n";

/* Commands that take no arguments but --help (and, for leave, the socket
 * options). Returns -1 to go on, else an exit status. */
static int parse_simple(const char *cmd, const char *usage, bool socket_opts,
                        int argc, char **argv, struct cli_common *o) {
  static const struct option opts[] = {
      {"socket", required_argument, NULL, 's'},
      {"config", required_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int ch, status = -1;
  memset(o, 0, sizeof(*o));
  while ((ch = cli_next_opt(cmd, usage, argc, argv, ":s:c:h", opts, &status)) >=
         0) {
    if (!socket_opts)
      return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
    if (ch == 's')
      o->socket = optarg;
    else
      o->config = optarg;
  }
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind < argc)
    return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  return -1;
}

static int keygen_signing(void) {
  char b64[ID_SECRET_B64 + 1];
  struct id_key k;

  if (id_key_generate(&k) != 0)
    return cli_error(EXIT_FAILED, "keygen", "libsodium failed to start");
  id_key_format(&k, b64);
  id_key_wipe(&k);
  printf("%s\n", b64);
  sodium_memzero(b64, sizeof(b64));
  return EXIT_OK;
}

int cmd_keygen(int argc, char **argv) {
  static const struct option opts[] = {
      {"signing", no_argument, NULL, 'S'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  unsigned char key[32];
  char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
  bool signing = false;
  int ch, status = -1;

  while ((ch = cli_next_opt("keygen", keygen_usage, argc, argv, ":h", opts,
                            &status)) >= 0)
    signing = true;
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind < argc)
    return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
  if (signing)
    return keygen_signing();
  if (sodium_init() < 0)
    return cli_error(EXIT_FAILED, "keygen", "libsodium failed to start");
  randombytes_buf(key, sizeof(key));
  sodium_bin2base64(b64, sizeof(b64), key, sizeof(key),
                    sodium_base64_VARIANT_ORIGINAL);
  sodium_memzero(key, sizeof(key));
  printf("%s\n", b64);
  return EXIT_OK;
}

static void print_escaped(FILE *f, const char *prefix, const char *s) {
  char buf[4 * 1024 + 4];
  (void)cli_escape(s, buf, sizeof(buf));
  fprintf(f, "%s%s\n", prefix, buf);
}

int cmd_leave(int argc, char **argv) {
  struct cli_common o;
  choreo_client *c = NULL;
  char *reply = NULL;
  int rv = parse_simple("leave", leave_usage, true, argc, argv, &o);
  if (rv >= 0)
    return rv;
  if ((rv = cli_connect("leave", &o, &c)) != 0)
    return rv;
  rv = choreo_request(c, "{\"cmd\":\"leave\"}", &reply);
  choreo_close(c);
  if (rv == CHOREO_EREFUSED && reply != NULL) {
    /* The agent's reason (e.g. permission denied), escaped. */
    json_t *r = json_loads(reply, 0, NULL);
    const char *why = json_string_value(json_object_get(r, "error"));
    if (why != NULL)
      print_escaped(stderr, "choreo leave: ", why);
    json_decref(r);
  }
  free(reply);
  return rv == 0                 ? EXIT_OK
         : rv == CHOREO_EREFUSED ? EXIT_FAILED
                                 : cli_fail("leave", rv, NULL);
}

static void print_applied(const choreo_reload_result *r) {
  printf("reload applied: %zu behaviour%s, %zu check%s", r->nbehaviours,
         r->nbehaviours == 1 ? "" : "s", r->nchecks,
         r->nchecks == 1 ? "" : "s");
  if (r->nkept > 0) {
    printf("; changed but kept until a restart:");
    for (size_t i = 0; i < r->nkept; i++)
      printf("%s %s", i > 0 ? "," : "", r->kept[i]);
  }
  printf("\n");
}

int cmd_reload(int argc, char **argv) {
  struct cli_common o;
  choreo_client *c = NULL;
  choreo_reload_result *r = NULL;
  int rv = parse_simple("reload", reload_usage, true, argc, argv, &o);
  if (rv >= 0)
    return rv;
  if ((rv = cli_connect("reload", &o, &c)) != 0)
    return rv;
  rv = choreo_reload(c, &r);
  choreo_close(c);
  if (rv == 0) {
    print_applied(r);
  } else if (rv == CHOREO_EREFUSED && r != NULL) {
    fprintf(stderr, "choreo reload: configuration refused; the previous one "
                    "stays\n");
    for (size_t i = 0; i < r->nerrors; i++)
      print_escaped(stderr, "", r->errors[i]);
  }
  choreo_reload_free(r);
  if (rv == CHOREO_EREFUSED)
    return EXIT_FAILED;
  return rv == 0 ? EXIT_OK : cli_fail("reload", rv, NULL);
}

static int version_json(void) {
  json_t *o = json_pack(
      "{s:s, s:{s:i, s:i, s:i}, s:i, s:{s:s, s:s, s:s, s:s, s:s}}", "version",
      choreo_version(), "proto", "major", WIRE_VERSION, "min", WIRE_PROTO_MIN,
      "max", WIRE_PROTO_MAX, "state_format", STATEFILES_VERSION, "libraries",
      "libuv", uv_version_string(), "nanomsg", CHOREO_NANOMSG_VERSION,
      "libyaml", yaml_get_version_string(), "jansson", jansson_version_str(),
      "libsodium", sodium_version_string());
  char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

  json_decref(o);
  if (text == NULL)
    return cli_fail("version", CHOREO_ENOMEM, NULL);
  printf("%s\n", text);
  free(text);
  return EXIT_OK;
}

int cmd_version(int argc, char **argv) {
  static const struct option opts[] = {
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  bool json = false;
  int ch, status = -1;

  while ((ch = cli_next_opt("version", version_usage, argc, argv, ":jh", opts,
                            &status)) >= 0)
    json = true;
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind < argc)
    return cli_usage_error("version", "unexpected argument '%s'", argv[optind]);
  if (json)
    return version_json();
  printf("choreo %s\n", choreo_version());
  printf("protocol %d.%d-%d.%d\n", WIRE_VERSION, WIRE_PROTO_MIN, WIRE_VERSION,
         WIRE_PROTO_MAX);
  printf("state_dir format %d\n", STATEFILES_VERSION);
  printf("libuv %s\n", uv_version_string());
  /* nanomsg has no run-time version call; this is the one built with. */
  printf("nanomsg %s\n", CHOREO_NANOMSG_VERSION);
  printf("libyaml %s\n", yaml_get_version_string());
  printf("jansson %s\n", jansson_version_str());
  printf("libsodium %s\n", sodium_version_string());
  return EXIT_OK;
}
