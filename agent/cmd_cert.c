/*
 * cmd_cert.c — node identity on the command line: `choreo pubkey` (the
 * public half of a signing key), `choreo cert issue|show|revoke` (what an
 * operator does with their key, offline) and `choreo revoke` (hand a
 * revocation to the local agent). The cryptography is identity.c's; this
 * file reads the options and files and prints the results.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "identity.h"

#define DAY_S 86400
#define CERT_BACKDATE_S DAY_S /* default not_before: now less this */
/* --days: at most a century. */
#define DAYS_MAX 36500

static const char pubkey_usage[] =
    "Usage: choreo pubkey FILE\n"
    "\n"
    "Print the public key of the signing key in FILE (made with choreo\n"
    "keygen --signing): 44 characters of base64 on one line, what an\n"
    "operator gives to choreo cert issue --public and what a cluster lists\n"
    "in identity.operators. FILE must not be readable or writable by group\n"
    "or others (chmod 600).\n"
    "\n"
    "Exit status: 0 success; 2 usage error or unusable key file.\n";

static const char cert_usage[] =
    "Usage: choreo cert issue|show|revoke [OPTION]... [ARG]\n"
    "\n"
    "An operator's certificate says \"this public key is node NAME, in groups\n"
    "G...\", signed with the operator's key; agents that trust that operator\n"
    "key (identity.operators) accept the node's records only under it.\n"
    "\n"
    "  issue   sign a certificate for a node's public key\n"
    "  show    print a certificate and whether it is valid now\n"
    "  revoke  sign a revocation of a certificate (by serial or file)\n"
    "\n"
    "Run 'choreo cert COMMAND --help' for each one's options.\n";

static const char issue_usage[] =
    "Usage: choreo cert issue --operator-key FILE --node NAME --groups LIST\n"
    "                         --public KEY [--days N | --not-after T]\n"
    "                         [--not-before T]\n"
    "\n"
    "Print a certificate, one line of JSON, signed with the operator's key:\n"
    "the public key KEY is node NAME, which may claim the groups in LIST.\n"
    "\n"
    "Options:\n"
    "  -k, --operator-key FILE  the operator's signing key (mode 0600)\n"
    "  -n, --node NAME          the node's name (node.name)\n"
    "  -g, --groups LIST        its groups, comma-separated, at most 16; \"\"\n"
    "                           for none\n"
    "  -p, --public KEY         the node's public key as choreo pubkey\n"
    "                           prints it, or a file holding that line\n"
    "  -d, --days N             valid for N days from now (default 365)\n"
    "      --not-before T       valid from T (unix seconds; default a day\n"
    "                           ago, for receivers whose clocks lag)\n"
    "      --not-after T        valid until T (unix seconds), instead of\n"
    "                           --days\n"
    "  -h, --help               show this help\n"
    "\n"
    "Exit status: 0 success; 1 failure; 2 usage error or unusable key.\n";

static const char show_usage[] =
    "Usage: choreo cert show FILE [--json] [--operator KEY]...\n"
    "\n"
    "Print the certificate in FILE (node, groups, key, serial, validity in\n"
    "UTC, operator key) and, last, whether it is valid now: its signature,\n"
    "its validity period and, with --operator, whether one of the given\n"
    "operator keys signed it.\n"
    "\n"
    "Options:\n"
    "  -o, --operator KEY  an operator key to trust (base64 or a file\n"
    "                      holding it); up to 8\n"
    "  -j, --json          one JSON object: the certificate's fields,\n"
    "                      \"valid\": bool and \"problem\": string or null\n"
    "  -h, --help          show this help\n"
    "\n"
    "Exit status: 0 valid now (and trusted, when --operator is given); 1\n"
    "not valid; 2 usage error or not a certificate.\n";

static const char revoke_cert_usage[] =
    "Usage: choreo cert revoke --operator-key FILE SERIAL|CERT_FILE\n"
    "\n"
    "Print a revocation, one line of JSON, signed with the operator's key:\n"
    "the certificate with SERIAL (16 hex digits), or the one in CERT_FILE\n"
    "(its serial and node), is revoked from now on. Give it to an agent of\n"
    "the cluster with choreo revoke; agents pass it on to each other.\n"
    "\n"
    "Options:\n"
    "  -k, --operator-key FILE  the operator's signing key (mode 0600)\n"
    "  -h, --help               show this help\n"
    "\n"
    "Exit status: 0 success; 1 failure; 2 usage error or unusable key.\n";

static const char revoke_usage[] =
    "Usage: choreo revoke FILE [OPTION]...\n"
    "\n"
    "Hand the revocation in FILE (made with choreo cert revoke) to the local\n"
    "agent, which checks it against its trusted operator keys, keeps it and\n"
    "passes it on to its peers: the revoked certificate's node is refused\n"
    "from then on.\n"
    "\n"
    "Options:\n"
    "  -s, --socket PATH  the agent's control socket\n"
    "  -c, --config FILE  take the socket from FILE's control.socket\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 accepted; 1 refused by the agent; 2 usage error or not a\n"
    "revocation; 3 no agent.\n";

/* ---- shared helpers ---- */

/* Read path (at most max bytes) into buf[max + 1], NUL-terminated. */
static int read_small(const char *cmd, const char *path, char *buf, size_t max,
                      size_t *len) {
  FILE *f = fopen(path, "re");
  size_t n;

  if (f == NULL)
    return cli_error(EXIT_USAGE, cmd, "%s: cannot open: %s", path,
                     strerror(errno));
  n = fread(buf, 1, max + 1, f);
  if (ferror(f)) {
    fclose(f);
    return cli_error(EXIT_USAGE, cmd, "%s: cannot read", path);
  }
  fclose(f);
  if (n > max)
    return cli_error(EXIT_USAGE, cmd, "%s: larger than %zu bytes", path, max);
  buf[n] = '\0';
  *len = n;
  return EXIT_OK;
}

/* A public key given as base64 or as a file holding that line. */
static int public_arg(const char *cmd, const char *opt, const char *arg,
                      uint8_t pk[ID_PUBLIC_BYTES]) {
  char err[ID_ERR_MAX], buf[ID_KEY_FILE_MAX + 1], *s = buf;
  size_t len = 0;
  int rv;

  FILE *f;

  if (id_public_parse(arg, pk, err) == 0)
    return EXIT_OK;
  if ((f = fopen(arg, "re")) == NULL)
    return cli_usage_error(cmd,
                           "%s: '%s' is neither a public key (%d characters "
                           "of base64) nor a readable file",
                           opt, arg, ID_PUBLIC_B64);
  fclose(f);
  if ((rv = read_small(cmd, arg, buf, ID_KEY_FILE_MAX, &len)) != EXIT_OK)
    return rv;
  while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
    s++;
  while (len > 0 && strchr(" \t\r\n", buf[len - 1]) != NULL)
    buf[--len] = '\0';
  if (id_public_parse(s, pk, err) != 0)
    return cli_error(EXIT_USAGE, cmd, "%s: %s: %s", opt, arg, err);
  return EXIT_OK;
}

static int load_key(const char *cmd, const char *path, struct id_key *k) {
  char err[ID_ERR_MAX];
  if (id_key_load(path, k, err) != 0)
    return cli_error(EXIT_USAGE, cmd, "%s", err);
  return EXIT_OK;
}

/* A number of seconds (or days) in [0, max]. */
static bool parse_count(const char *s, int64_t max, int64_t *out) {
  char *end;
  long long v;

  if (s[0] < '0' || s[0] > '9')
    return false;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return false;
  *out = v;
  return true;
}

static void print_json_line(const char *cmd, json_t *j, int *status) {
  char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
  if (text == NULL) {
    *status = cli_fail(cmd, CHOREO_ENOMEM, NULL);
    return;
  }
  printf("%s\n", text);
  free(text);
  *status = EXIT_OK;
}

/* ---- pubkey ---- */

int cmd_pubkey(int argc, char **argv) {
  static const struct option opts[] = {
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  char b64[ID_PUBLIC_B64 + 1];
  struct id_key k;
  int ch, status = -1;

  while ((ch = cli_next_opt("pubkey", pubkey_usage, argc, argv, ":h", opts,
                            &status)) >= 0)
    ;
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind + 1 != argc)
    return cli_usage_error("pubkey", "give exactly one key FILE");
  if ((status = load_key("pubkey", argv[optind], &k)) != EXIT_OK)
    return status;
  id_public_format(k.pk, b64);
  id_key_wipe(&k);
  printf("%s\n", b64);
  return EXIT_OK;
}

/* ---- cert issue ---- */

struct issue_opts {
  const char *key_file, *node, *groups, *pub;
  const char *days, *not_before, *not_after;
};

/* Split list ("a,b", "" for none) into groups. */
static int parse_groups(const char *cmd, const char *list,
                        char (*groups)[CHOREO_NAME_MAX + 1], size_t *n) {
  const char *p = list;

  *n = 0;
  while (list[0] != '\0') {
    const char *comma = strchr(p, ',');
    size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
    if (*n == CHOREO_GROUPS_MAX)
      return cli_usage_error(cmd, "--groups: more than %d groups",
                             CHOREO_GROUPS_MAX);
    if (len > CHOREO_NAME_MAX)
      return cli_usage_error(cmd, "--groups: '%.*s' is longer than %d bytes",
                             (int)len, p, CHOREO_NAME_MAX);
    memcpy(groups[*n], p, len);
    groups[*n][len] = '\0';
    if (!choreo_valid_name(groups[*n]))
      return cli_usage_error(cmd, "--groups: '%s' is not a valid group name",
                             groups[*n]);
    for (size_t i = 0; i < *n; i++)
      if (strcmp(groups[i], groups[*n]) == 0)
        return cli_usage_error(cmd, "--groups: '%s' twice", groups[*n]);
    (*n)++;
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  return EXIT_OK;
}

/* The validity period from --days, --not-before and --not-after. */
static int issue_validity(const char *cmd, const struct issue_opts *o,
                          int64_t *nb, int64_t *na) {
  int64_t days = 365;

  if (o->days != NULL && o->not_after != NULL)
    return cli_usage_error(cmd, "give --days or --not-after, not both");
  if (o->days != NULL && !parse_count(o->days, DAYS_MAX, &days))
    return cli_usage_error(cmd,
                           "--days: '%s' is not a number of days (0 to %d)",
                           o->days, DAYS_MAX);
  int64_t now = (int64_t)time(NULL), from = now;

  /* Valid from a day ago by default: a receiver whose clock lags (up to
   * the day of skew the protocol tolerates elsewhere) still takes it. */
  *nb = now - CERT_BACKDATE_S;
  if (o->not_before != NULL) {
    if (!parse_count(o->not_before, INT64_MAX, nb))
      return cli_usage_error(cmd, "--not-before: '%s' is not unix seconds",
                             o->not_before);
    from = *nb;
  }
  if (o->not_after != NULL) {
    if (!parse_count(o->not_after, INT64_MAX, na))
      return cli_usage_error(cmd, "--not-after: '%s' is not unix seconds",
                             o->not_after);
  } else if (from > INT64_MAX - days * DAY_S) {
    return cli_usage_error(cmd, "--not-before: too far in the future");
  } else {
    *na = from + days * DAY_S;
  }
  if (*nb > *na)
    return cli_usage_error(cmd, "the certificate would end before it starts");
  return EXIT_OK;
}

static int issue_parse(int argc, char **argv, struct issue_opts *o) {
  static const struct option opts[] = {
      {"operator-key", required_argument, NULL, 'k'},
      {"node", required_argument, NULL, 'n'},
      {"groups", required_argument, NULL, 'g'},
      {"public", required_argument, NULL, 'p'},
      {"days", required_argument, NULL, 'd'},
      {"not-before", required_argument, NULL, 'B'},
      {"not-after", required_argument, NULL, 'A'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *cmd = "cert issue";
  int ch, status = -1;

  memset(o, 0, sizeof(*o));
  while ((ch = cli_next_opt(cmd, issue_usage, argc, argv, ":k:n:g:p:d:h", opts,
                            &status)) >= 0) {
    switch (ch) {
    case 'k':
      o->key_file = optarg;
      break;
    case 'n':
      o->node = optarg;
      break;
    case 'g':
      o->groups = optarg;
      break;
    case 'p':
      o->pub = optarg;
      break;
    case 'd':
      o->days = optarg;
      break;
    case 'B':
      o->not_before = optarg;
      break;
    default: /* 'A' */
      o->not_after = optarg;
    }
  }
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind < argc)
    return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
  if (o->key_file == NULL)
    return cli_usage_error(cmd, "--operator-key FILE is missing");
  if (o->node == NULL)
    return cli_usage_error(cmd, "--node NAME is missing");
  if (o->groups == NULL)
    return cli_usage_error(cmd, "--groups LIST is missing (\"\" for none)");
  if (o->pub == NULL)
    return cli_usage_error(cmd, "--public KEY is missing");
  if (!choreo_valid_name(o->node))
    return cli_usage_error(cmd, "--node: '%s' is not a valid node name",
                           o->node);
  return -1;
}

static int cert_issue(int argc, char **argv) {
  const char *cmd = "cert issue";
  char groups[CHOREO_GROUPS_MAX][CHOREO_NAME_MAX + 1], err[ID_ERR_MAX];
  uint8_t pk[ID_PUBLIC_BYTES];
  struct issue_opts o;
  struct id_key op;
  struct id_cert c;
  size_t ngroups = 0;
  int64_t nb = 0, na = 0;
  int rv = issue_parse(argc, argv, &o);
  json_t *j;

  if (rv >= 0)
    return rv;
  if ((rv = parse_groups(cmd, o.groups, groups, &ngroups)) != EXIT_OK ||
      (rv = public_arg(cmd, "--public", o.pub, pk)) != EXIT_OK ||
      (rv = issue_validity(cmd, &o, &nb, &na)) != EXIT_OK ||
      (rv = load_key(cmd, o.key_file, &op)) != EXIT_OK)
    return rv;
  rv = id_cert_issue(&op, o.node, ngroups,
                     (const char(*)[CHOREO_NAME_MAX + 1]) groups, pk, 0, nb, na,
                     &c, err);
  id_key_wipe(&op);
  if (rv != 0)
    return cli_error(EXIT_USAGE, cmd, "%s", err);
  j = id_cert_to_json(&c);
  print_json_line(cmd, j, &rv);
  json_decref(j);
  return rv;
}

/* ---- cert show ---- */

struct show_result {
  bool sig_ok;
  int trusted; /* -1 not asked, 0 no, 1 yes */
  enum id_cert_verdict time;
  const char *problem; /* NULL when valid */
};

static void check_cert(const struct id_cert *c,
                       const uint8_t (*ops)[ID_PUBLIC_BYTES], size_t nops,
                       int64_t now, struct show_result *r) {
  const uint8_t(*self)[ID_PUBLIC_BYTES] =
      (const uint8_t(*)[ID_PUBLIC_BYTES])c->operator_key;
  enum id_cert_verdict v = id_cert_verify(c, self, 1, now);

  r->sig_ok = v != ID_CERT_BAD_SIG;
  r->time = v;
  r->trusted = -1;
  if (nops > 0)
    r->trusted = id_cert_verify(c, ops, nops, now) != ID_CERT_UNTRUSTED;
  if (!r->sig_ok)
    r->problem = id_cert_verdict_name(ID_CERT_BAD_SIG);
  else if (r->trusted == 0)
    r->problem = id_cert_verdict_name(ID_CERT_UNTRUSTED);
  else if (v != ID_CERT_OK)
    r->problem = id_cert_verdict_name(v);
  else
    r->problem = NULL;
}

/* UTC ISO-8601, or the number when the calendar cannot hold it. */
static void iso_time(int64_t t, char *buf, size_t len) {
  time_t tt = (time_t)t;
  struct tm tm;

  if ((int64_t)tt != t || gmtime_r(&tt, &tm) == NULL ||
      strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(buf, len, "@%" PRId64, t);
}

static void show_text(const struct id_cert *c, const struct show_result *r) {
  char b64[ID_PUBLIC_B64 + 1], serial[17], from[40], to[40];

  iso_time(c->not_before, from, sizeof(from));
  iso_time(c->not_after, to, sizeof(to));
  printf("node:        %s\n", c->node);
  printf("groups:      ");
  for (size_t i = 0; i < c->ngroups; i++)
    printf("%s%s", i > 0 ? ", " : "", c->groups[i]);
  printf("%s\n", c->ngroups == 0 ? "(none)" : "");
  id_public_format(c->key, b64);
  printf("key:         %s\n", b64);
  id_serial_format(c->serial, serial);
  printf("serial:      %s\n", serial);
  printf("valid from:  %s\n", from);
  printf("valid until: %s\n", to);
  id_public_format(c->operator_key, b64);
  printf("operator:    %s\n", b64);
  if (r->problem == NULL)
    printf("status:      valid now: signature good, within its validity%s\n",
           r->trusted == 1 ? ", signed by a trusted operator key"
                           : " (trust not checked: no --operator)");
  else if (r->sig_ok && r->trusted == 0)
    printf("status:      NOT valid: signature good but by an operator key "
           "not given with --operator\n");
  else if (r->sig_ok)
    printf("status:      NOT valid: signature good but %s\n", r->problem);
  else
    printf("status:      NOT valid: bad signature (changed after signing, "
           "or not signed by the operator key it names)\n");
}

static int show_json(const struct id_cert *c, const struct show_result *r,
                     int *status) {
  json_t *j = id_cert_to_json(c);

  if (j != NULL) {
    json_object_set_new(j, "signature",
                        json_string(r->sig_ok ? "good" : "bad"));
    json_object_set_new(j, "trusted",
                        r->trusted < 0 ? json_null()
                                       : json_boolean(r->trusted == 1));
    json_object_set_new(j, "valid", json_boolean(r->problem == NULL));
    json_object_set_new(j, "problem",
                        r->problem != NULL ? json_string(r->problem)
                                           : json_null());
  }
  print_json_line("cert show", j, status);
  json_decref(j);
  return *status;
}

static int cert_show(int argc, char **argv) {
  static const struct option opts[] = {
      {"operator", required_argument, NULL, 'o'},
      {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *cmd = "cert show";
  uint8_t ops[ID_OPERATORS_MAX][ID_PUBLIC_BYTES];
  char err[ID_ERR_MAX];
  struct show_result r;
  struct id_cert c;
  size_t nops = 0;
  bool json = false;
  int ch, status = -1;

  while ((ch = cli_next_opt(cmd, show_usage, argc, argv, ":o:jh", opts,
                            &status)) >= 0) {
    if (ch == 'j') {
      json = true;
      continue;
    }
    if (nops == ID_OPERATORS_MAX)
      return cli_usage_error(cmd, "more than %d --operator keys",
                             ID_OPERATORS_MAX);
    if ((status = public_arg(cmd, "--operator", optarg, ops[nops])) != 0)
      return status;
    nops++;
  }
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind + 1 != argc)
    return cli_usage_error(cmd, "give exactly one certificate FILE");
  if (id_cert_load(argv[optind], &c, err) != 0)
    return cli_error(EXIT_USAGE, cmd, "%s", err);
  check_cert(&c, (const uint8_t(*)[ID_PUBLIC_BYTES])ops, nops,
             (int64_t)time(NULL), &r);
  if (json) {
    if (show_json(&c, &r, &status) != EXIT_OK)
      return status;
  } else {
    show_text(&c, &r);
  }
  return r.problem == NULL ? EXIT_OK : EXIT_FAILED;
}

/* ---- cert revoke ---- */

static int cert_revoke(int argc, char **argv) {
  static const struct option opts[] = {
      {"operator-key", required_argument, NULL, 'k'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  const char *cmd = "cert revoke", *key_file = NULL, *node = NULL;
  char err[ID_ERR_MAX];
  struct id_revocation rev;
  struct id_cert c;
  struct id_key op;
  uint64_t serial;
  int ch, rv, status = -1;
  json_t *j;

  while ((ch = cli_next_opt(cmd, revoke_cert_usage, argc, argv, ":k:h", opts,
                            &status)) >= 0)
    key_file = optarg;
  if (ch == CLI_OPT_STOP)
    return status;
  if (key_file == NULL)
    return cli_usage_error(cmd, "--operator-key FILE is missing");
  if (optind + 1 != argc)
    return cli_usage_error(cmd, "give exactly one SERIAL or certificate FILE");
  if (id_serial_parse(argv[optind], &serial) != 0) {
    if (id_cert_load(argv[optind], &c, err) != 0)
      return cli_usage_error(cmd,
                             "'%s' is neither a serial (16 hex digits) nor a "
                             "certificate file (%s)",
                             argv[optind], err);
    serial = c.serial;
    node = c.node;
  }
  if ((rv = load_key(cmd, key_file, &op)) != EXIT_OK)
    return rv;
  if (node != NULL && memcmp(c.operator_key, op.pk, ID_PUBLIC_BYTES) != 0)
    fprintf(stderr, "choreo %s: note: %s was issued by another operator key\n",
            cmd, argv[optind]);
  rv = id_revocation_issue(&op, serial, node, (int64_t)time(NULL), &rev, err);
  id_key_wipe(&op);
  if (rv != 0)
    return cli_error(EXIT_FAILED, cmd, "%s", err);
  j = id_revocation_to_json(&rev);
  print_json_line(cmd, j, &rv);
  json_decref(j);
  return rv;
}

int cmd_cert(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(int, char **);
  } subs[] = {
      {"issue", cert_issue}, {"show", cert_show}, {"revoke", cert_revoke}};

  if (argc < 2)
    return cli_usage_error("cert", "give a command: issue, show or revoke");
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
    fputs(cert_usage, stdout);
    return EXIT_OK;
  }
  for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
    if (strcmp(argv[1], subs[i].name) == 0)
      return subs[i].run(argc - 1, argv + 1);
  return cli_usage_error("cert", "unknown command '%s' (issue, show, revoke)",
                         argv[1]);
}

/* ---- revoke ---- */

static int revoke_answer(int rv, const char *node, bool fresh,
                         const struct id_revocation *r, char *error) {
  char serial[17];

  id_serial_format(r->serial, serial);
  if (rv == 0)
    printf("certificate %s%s%s revoked%s\n", serial,
           node[0] != '\0' ? " of node " : "", node,
           fresh ? "" : " (the agent knew it already)");
  else if (rv == CHOREO_EREFUSED)
    rv = cli_error(EXIT_FAILED, "revoke", "refused by the agent: %s",
                   error != NULL ? error : "refused");
  else
    rv = cli_fail("revoke", rv, NULL);
  return rv == 0 ? EXIT_OK : rv;
}

int cmd_revoke(int argc, char **argv) {
  static const struct option opts[] = {
      {"socket", required_argument, NULL, 's'},
      {"config", required_argument, NULL, 'c'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  struct cli_common common = {0};
  struct id_revocation r;
  choreo_client *c = NULL;
  char buf[ID_TEXT_MAX + 1], err[ID_ERR_MAX], *text, *node = NULL,
                                                     *error = NULL;
  size_t len = 0;
  bool fresh = false;
  int ch, rv, status = -1;
  json_t *j;

  while ((ch = cli_next_opt("revoke", revoke_usage, argc, argv, ":s:c:h", opts,
                            &status)) >= 0) {
    if (ch == 's')
      common.socket = optarg;
    else
      common.config = optarg;
  }
  if (ch == CLI_OPT_STOP)
    return status;
  if (optind + 1 != argc)
    return cli_usage_error("revoke", "give exactly one revocation FILE");
  if ((rv = read_small("revoke", argv[optind], buf, ID_TEXT_MAX, &len)) != 0)
    return rv;
  if (id_revocation_parse(buf, len, &r, err) != 0)
    return cli_error(EXIT_USAGE, "revoke", "%s: %s", argv[optind], err);
  /* What is sent is the parsed revocation written again: exactly the
   * fields that were checked. */
  j = id_revocation_to_json(&r);
  text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if (text == NULL)
    return cli_fail("revoke", CHOREO_ENOMEM, NULL);
  if ((rv = cli_connect("revoke", &common, &c)) == 0) {
    rv = choreo_revoke(c, text, &node, &fresh, &error);
    rv = revoke_answer(rv, node != NULL ? node : "", fresh, &r, error);
    choreo_close(c);
  }
  free(text);
  free(node);
  free(error);
  return rv;
}
