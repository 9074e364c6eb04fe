/*
 * cmd_query.c — the commands that read the agent: status, peers, watch,
 * wait and metrics.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cli.h"

#define COMMON_OPTIONS                                                         \
  "  -s, --socket PATH  the agent's control socket\n"                          \
  "  -c, --config FILE  take the socket from FILE's control.socket\n"          \
  "  -h, --help         show this help\n"

static const char status_usage[] =
    "Usage: choreo status [--json] [OPTION]...\n"
    "\n"
    "Show this node and every known peer: name, groups, state, reason, how\n"
    "long it has been in that state, when it was last heard from, its\n"
    "advertised address (ADDR) and its data. This node is marked with '*'.\n"
    "Peers that are silent for network.lost_after show as 'lost'; those\n"
    "that left, as 'left'. When this node shows another state than the one\n"
    "declared (choreo set), because a check or a behaviour claims one, a\n"
    "line under the table says so.\n"
    "\n"
    "Options:\n"
    "      --json         one JSON document: {\"node\": PEER, \"peers\": "
    "[PEER...],\n"
    "                     \"declared\": {state, reason}} where PEER is {name,\n"
    "                     groups, state, reason, since (unix ms), "
    "last_seen_ms\n"
    "                     (ms ago; 0 for this node), data, addr, and for\n"
    "                     peers clock_offset_ms (its clock minus ours) and,\n"
    "                     once heard, version (its release, \"unversioned\"\n"
    "                     for 0.1.0), proto (the protocol minor both speak)\n"
    "                     and proto_range} "
    "(docs/schema/status.json)\n" COMMON_OPTIONS "\n"
    "Exit status: 0 success; 1 failure; 2 usage error; 3 no agent.\n";

static const char peers_usage[] =
    "Usage: choreo peers [--group G] [--json] [OPTION]...\n"
    "\n"
    "Show the peer table only (this node excluded), optionally only the\n"
    "members of group G. CLOCK is how far a peer's clock is from this\n"
    "node's (\"-\": within a second), estimated from its latest message.\n"
    "VERSION is its release and the protocol both agents speak\n"
    "(\"0.2.0/1.1\"), \"unversioned\" for a 0.1.0 agent, \"-\" until heard.\n"
    "\n"
    "Options:\n"
    "  -g, --group G      only peers in group G\n"
    "      --json         a JSON array of PEER objects (see status "
    "--help)\n" COMMON_OPTIONS "\n"
    "Exit status: 0 success; 1 failure; 2 usage error; 3 no agent.\n";

static const char watch_usage[] =
    "Usage: choreo watch [--node N] [--group G] [--event E[,E...]]\n"
    "                    [--snapshot] [--json] [OPTION]...\n"
    "\n"
    "Stream every peer event as it happens, one line each, until\n"
    "interrupted. Events: joined, state, data, left, lost.\n"
    "\n"
    "Options:\n"
    "  -n, --node N       only events of node N\n"
    "  -g, --group G      only events of members of group G\n"
    "  -e, --event LIST   only these events (comma-separated)\n"
    "      --snapshot     first print every node's current state as a\n"
    "                     \"snapshot\" event (filters apply), then stream\n"
    "      --json         one JSON object per line: {event, peer, state,\n"
    "                     previous, reason, time (unix ms), groups}\n"
    "                     (docs/schema/event.json)\n" COMMON_OPTIONS "\n"
    "Exit status: 0 when interrupted; 1 when the agent closed the stream;\n"
    "2 usage error; 3 no agent.\n";

static const char wait_usage[] =
    "Usage: choreo wait (--node N | --group G) (--any | --all)\n"
    "                   (STATE | --state S1,S2...) [--timeout DURATION]\n"
    "                   [OPTION]...\n"
    "\n"
    "Block until the condition holds: node N (or any/all members of group\n"
    "G, this node included when it is one) in STATE, or in any of the\n"
    "states of a comma-separated list (at most 16). --all needs at least\n"
    "one member; members that left don't count.\n"
    "\n"
    "Options:\n"
    "  -n, --node N         watch the node named N\n"
    "  -g, --group G        watch the members of group G\n"
    "      --any            one watched node in STATE is enough\n"
    "      --all            every watched node must be in STATE\n"
    "      --state LIST     any of these states (comma-separated)\n"
    "  -t, --timeout DUR    give up after DUR (250ms, 5s, 2m, 1h); default: "
    "never\n" COMMON_OPTIONS "\n"
    "Exit status: 0 the condition holds; 1 timed out or failed; 2 usage\n"
    "error; 3 no agent.\n";

static const char metrics_usage[] =
    "Usage: choreo metrics [OPTION]...\n"
    "\n"
    "Print the agent's counters and gauges in the Prometheus text format:\n"
    "messages received, accepted, sent and dropped (by reason), peer\n"
    "events, script runs, failures, retries, timeouts, dropped output,\n"
    "peers by status, and a histogram of the reaction latency (message\n"
    "received to script started).\n"
    "\n"
    "Options:\n" COMMON_OPTIONS "\n"
    "Exit status: 0 success; 1 failure; 2 usage error; 3 no agent.\n";

/* Long-only options; in the `allowed` strings of parse() they are written
 * 'A', 'B', 'C', 'D', 'E' (OPT_JSON, OPT_ANY, OPT_ALL, OPT_SNAPSHOT,
 * OPT_STATE). */
enum { OPT_JSON = 1000, OPT_ANY, OPT_ALL, OPT_SNAPSHOT, OPT_STATE };

static const struct option query_options[] = {
    {"socket", required_argument, NULL, 's'},
    {"config", required_argument, NULL, 'c'},
    {"json", no_argument, NULL, OPT_JSON},
    {"group", required_argument, NULL, 'g'},
    {"node", required_argument, NULL, 'n'},
    {"any", no_argument, NULL, OPT_ANY},
    {"all", no_argument, NULL, OPT_ALL},
    {"timeout", required_argument, NULL, 't'},
    {"event", required_argument, NULL, 'e'},
    {"snapshot", no_argument, NULL, OPT_SNAPSHOT},
    {"state", required_argument, NULL, OPT_STATE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct query_args {
  struct cli_common common;
  const char *group, *node, *timeout, *events, *states;
  bool any, all, snapshot;
  int npositional;
  char **positional;
};

/* Parse options; `allowed` lists the short names and OPT_* codes this
 * command takes. Returns -1 to go on, else an exit status. */
static int parse(const char *cmd, const char *usage, const char *allowed,
                 int argc, char **argv, struct query_args *q) {
  int ch, status = -1;
  memset(q, 0, sizeof(*q));
  while ((ch = cli_next_opt(cmd, usage, argc, argv, ":s:c:g:n:t:e:h",
                            query_options, &status)) >= 0) {
    if (strchr(allowed, ch < 256 ? ch : 'A' + (ch - OPT_JSON)) == NULL)
      return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
    switch (ch) {
    case 's':
      q->common.socket = optarg;
      break;
    case 'c':
      q->common.config = optarg;
      break;
    case 'g':
      q->group = optarg;
      break;
    case 'n':
      q->node = optarg;
      break;
    case 't':
      q->timeout = optarg;
      break;
    case OPT_JSON:
      q->common.json = true;
      break;
    case OPT_ANY:
      q->any = true;
      break;
    case OPT_ALL:
      q->all = true;
      break;
    case 'e':
      q->events = optarg;
      break;
    case OPT_SNAPSHOT:
      q->snapshot = true;
      break;
    case OPT_STATE:
      q->states = optarg;
      break;
    }
  }
  if (ch == CLI_OPT_STOP)
    return status;
  q->npositional = argc - optind;
  q->positional = argv + optind;
  return -1;
}

static int no_positional(const char *cmd, const struct query_args *q) {
  if (q->npositional > 0)
    return cli_usage_error(cmd, "unexpected argument '%s'", q->positional[0]);
  return -1;
}

/* ---- tables ---- */

/* Everything a row shows comes from peers (through the agent): it is
 * escaped (cli_escape()) before it reaches the terminal. */
#define ESC_MAX(n) (4 * (n) + 1)

static void data_text(const choreo_peer *p, char *buf, size_t len) {
  char key[ESC_MAX(CHOREO_DATA_KEY_MAX)], value[ESC_MAX(CHOREO_DATA_VALUE_MAX)];
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < p->ndata && used < len; i++) {
    int n;
    cli_escape(p->data[i].key, key, sizeof(key));
    cli_escape(p->data[i].value, value, sizeof(value));
    n = snprintf(buf + used, len - used, "%s%s=%s", i ? " " : "", key, value);
    if (n < 0 || (size_t)n >= len - used) {
      size_t cut = len > 4 ? len - 4 : 0;
      while (cut > 0 && ((unsigned char)buf[cut] & 0xc0) == 0x80)
        cut--; /* at a character, not inside one */
      snprintf(buf + cut, len - cut, "...");
      return;
    }
    used += (size_t)n;
  }
}

static void groups_text(const choreo_peer *p, char *buf, size_t len) {
  char g[ESC_MAX(CHOREO_NAME_MAX)];
  size_t used = 0;
  snprintf(buf, len, "-");
  for (size_t i = 0; i < p->ngroups; i++) {
    int n;
    cli_escape(p->groups[i], g, sizeof(g));
    n = snprintf(buf + used, len - used, "%s%s", i ? "," : "", g);
    if (n < 0 || (size_t)n >= len - used)
      return;
    used += (size_t)n;
  }
}

enum {
  COL_NAME,
  COL_GROUPS,
  COL_STATE,
  COL_SINCE,
  COL_SEEN,
  COL_REASON,
  COL_CLOCK,
  COL_VERSION,
  COL_ADDR,
  COLS
};

struct row {
  char name[ESC_MAX(CHOREO_NAME_MAX) + 1], groups[512],
      state[ESC_MAX(CHOREO_STATE_MAX)], since[24], seen[24],
      reason[ESC_MAX(CHOREO_REASON_MAX)], clock[24],
      version[ESC_MAX(CHOREO_RELEASE_MAX) + 24], data[4096],
      addr[ESC_MAX(CHOREO_ADDR_MAX)];
  const char *raw_state;
};

/* A peer's release and the protocol both speak, "0.2.0/1.1";
 * "unversioned" for a 0.1.0 agent; "-" when not known (this node too:
 * `choreo version` says its own). */
static void version_text(const choreo_peer *p, bool self, char *buf,
                         size_t len) {
  char rel[ESC_MAX(CHOREO_RELEASE_MAX) + 1];

  if (self || p->version == NULL) {
    snprintf(buf, len, "-");
    return;
  }
  cli_escape(p->version, rel, sizeof(rel));
  if (strcmp(p->version, "unversioned") == 0 || p->proto < 0)
    snprintf(buf, len, "%s", rel);
  else
    snprintf(buf, len, "%s/1.%d", rel, p->proto);
}

static void make_row(const choreo_peer *p, bool self, int64_t now,
                     struct row *r) {
  size_t n;

  cli_escape(p->name, r->name, sizeof(r->name) - 1);
  n = strlen(r->name);
  if (self) { /* room was kept for it */
    r->name[n] = '*';
    r->name[n + 1] = '\0';
  }
  groups_text(p, r->groups, sizeof(r->groups));
  cli_escape(p->state, r->state, sizeof(r->state));
  cli_age(now - p->since_ms, r->since, sizeof(r->since));
  if (self)
    snprintf(r->seen, sizeof(r->seen), "-");
  else
    cli_age(p->last_seen_ms, r->seen, sizeof(r->seen));
  cli_escape(p->reason[0] ? p->reason : "-", r->reason, sizeof(r->reason));
  /* The peer's clock against ours; under a second is noise. */
  if (self || (p->clock_offset_ms < 1000 && p->clock_offset_ms > -1000))
    snprintf(r->clock, sizeof(r->clock), "-");
  else
    snprintf(r->clock, sizeof(r->clock), "%+.0fs",
             (double)p->clock_offset_ms / 1000.0);
  version_text(p, self, r->version, sizeof(r->version));
  data_text(p, r->data, sizeof(r->data));
  cli_escape(p->addr != NULL && p->addr[0] ? p->addr : "-", r->addr,
             sizeof(r->addr));
  r->raw_state = p->state;
}

static int64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void row_cols(const struct row *r, const char *cols[COLS]) {
  cols[COL_NAME] = r->name;
  cols[COL_GROUPS] = r->groups;
  cols[COL_STATE] = r->state;
  cols[COL_SINCE] = r->since;
  cols[COL_SEEN] = r->seen;
  cols[COL_REASON] = r->reason;
  cols[COL_CLOCK] = r->clock;
  cols[COL_VERSION] = r->version;
  cols[COL_ADDR] = r->addr;
}

/* One line: the columns padded to w (by characters, not bytes), the state
 * in colour when colour is not "", then the data. */
static void print_line(const char *cols[COLS], const size_t w[COLS],
                       const char *colour, const char *data) {
  for (int c = 0; c < COLS; c++) {
    if (c == COL_STATE && colour[0] != '\0') {
      fputs(colour, stdout);
      fputs(cols[c], stdout);
      fputs("\033[0m", stdout);
      for (size_t k = cli_width(cols[c]); k < w[c]; k++)
        fputc(' ', stdout);
    } else {
      cli_pad(stdout, cols[c], w[c]);
    }
    fputs("  ", stdout);
  }
  printf("%s\n", data);
}

static void print_table(const choreo_peer *self, const choreo_peer *peers,
                        size_t n) {
  static const char *heads[COLS] = {"NAME",  "GROUPS",    "STATE",
                                    "SINCE", "LAST SEEN", "REASON",
                                    "CLOCK", "VERSION",   "ADDR"};
  struct row *rows = calloc(n + 2, sizeof(*rows));
  const char *cols[COLS];
  size_t count = 0, w[COLS];
  bool colour = cli_colour(stdout);
  int64_t now = wall_ms();

  if (rows == NULL)
    return;
  if (self != NULL)
    make_row(self, true, now, &rows[count++]);
  for (size_t i = 0; i < n; i++)
    make_row(&peers[i], false, now, &rows[count++]);
  for (int c = 0; c < COLS; c++)
    w[c] = cli_width(heads[c]);
  for (size_t i = 0; i < count; i++) {
    row_cols(&rows[i], cols);
    for (int c = 0; c < COLS; c++)
      if (cli_width(cols[c]) > w[c])
        w[c] = cli_width(cols[c]);
  }
  print_line(heads, w, "", "DATA");
  for (size_t i = 0; i < count; i++) {
    row_cols(&rows[i], cols);
    print_line(cols, w, cli_state_colour(rows[i].raw_state, colour),
               rows[i].data[0] ? rows[i].data : "-");
  }
  free(rows);
}

/* ---- status and peers ---- */

/* A line under the table when another address claims this node's name
 * (the status reply's "name_conflict"; docs/PROTOCOL.md). The address
 * came from the network: escaped. */
static void print_conflict(choreo_client *c) {
  char *text = NULL, addr[4 * CHOREO_ADDR_MAX + 4], age[32];
  json_t *root, *nc;
  const char *a;

  if (choreo_status_json(c, &text) != 0)
    return;
  root = json_loads(text, 0, NULL);
  free(text);
  nc = json_object_get(root, "name_conflict");
  a = json_string_value(json_object_get(nc, "addr"));
  if (a != NULL) {
    cli_escape(a, addr, sizeof(addr));
    cli_age(wall_ms() -
                (int64_t)json_integer_value(json_object_get(nc, "since")),
            age, sizeof(age));
    printf("NAME CONFLICT: %s claims this node's name (%s, for %s); see "
           "the agent's log\n",
           addr,
           json_is_true(json_object_get(nc, "live")) ? "a live agent"
                                                     : "refuted",
           age);
  }
  if (json_integer_value(json_object_get(root, "truncated")) > 0)
    printf("... %" JSON_INTEGER_FORMAT " more peers not shown: the list "
           "passed its size bound\n",
           json_integer_value(json_object_get(root, "truncated")));
  json_decref(root);
}

/* A line under the table when the state shown is not the one declared
 * (a check or a behaviour claims another). */
static void print_declared(const choreo_status *st) {
  char declared[ESC_MAX(CHOREO_STATE_MAX)], shown[ESC_MAX(CHOREO_STATE_MAX)];

  if (st->declared_state == NULL || st->declared_state[0] == '\0' ||
      strcmp(st->declared_state, st->node.state) == 0)
    return;
  cli_escape(st->declared_state, declared, sizeof(declared));
  cli_escape(st->node.state, shown, sizeof(shown));
  printf("DECLARED: %s; shown: %s (claimed by a check or a behaviour)\n",
         declared, shown);
}

int cmd_status(int argc, char **argv) {
  struct query_args q;
  choreo_client *c = NULL;
  int rv = parse("status", status_usage,
                 "sc"
                 "A",
                 argc, argv, &q);
  if (rv >= 0 || (rv = no_positional("status", &q)) >= 0)
    return rv;
  if ((rv = cli_connect("status", &q.common, &c)) != 0)
    return rv;
  if (q.common.json) {
    char *text = NULL;
    rv = choreo_status_json(c, &text);
    if (rv == 0)
      printf("%s\n", text);
    free(text);
  } else {
    choreo_status *st = NULL;
    rv = choreo_status_get(c, &st);
    if (rv == 0) {
      print_table(&st->node, st->peers, st->npeers);
      print_declared(st);
      print_conflict(c);
    }
    choreo_status_free(st);
  }
  choreo_close(c);
  return rv == 0 ? EXIT_OK : cli_fail("status", rv, NULL);
}

static int peers_json(choreo_client *c, const char *group) {
  json_t *req = json_pack("{s:s}", "cmd", "peers"), *reply;
  char *text = NULL, *out;
  int rv;
  if (group != NULL)
    json_object_set_new(req, "group", json_string(group));
  out = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  rv = choreo_request(c, out, &text);
  free(out);
  if (rv == 0) {
    reply = json_loads(text, 0, NULL);
    out = json_dumps(json_object_get(reply, "peers"), JSON_COMPACT);
    printf("%s\n", out != NULL ? out : "[]");
    free(out);
    json_decref(reply);
  }
  free(text);
  return rv;
}

int cmd_peers(int argc, char **argv) {
  struct query_args q;
  choreo_client *c = NULL;
  choreo_status *st = NULL;
  int rv = parse("peers", peers_usage, "scgA", argc, argv, &q);
  if (rv >= 0 || (rv = no_positional("peers", &q)) >= 0)
    return rv;
  if (q.group != NULL && !choreo_valid_name(q.group))
    return cli_usage_error("peers", "'%s' is not a valid group name", q.group);
  if ((rv = cli_connect("peers", &q.common, &c)) != 0)
    return rv;
  if (q.common.json) {
    rv = peers_json(c, q.group);
  } else if ((rv = choreo_status_get(c, &st)) == 0) {
    size_t k = 0;
    for (size_t i = 0; i < st->npeers; i++) {
      bool in = q.group == NULL;
      for (size_t g = 0; !in && g < st->peers[i].ngroups; g++)
        in = strcmp(st->peers[i].groups[g], q.group) == 0;
      if (in && k != i) {
        choreo_peer tmp = st->peers[k];
        st->peers[k] = st->peers[i];
        st->peers[i] = tmp;
      }
      k += in;
    }
    print_table(NULL, st->peers, k);
  }
  choreo_status_free(st);
  choreo_close(c);
  return rv == 0 ? EXIT_OK : cli_fail("peers", rv, NULL);
}

/* ---- watch ---- */

/* One event for humans; every field is escaped (cli_escape()). */
static void print_event_text(const choreo_event *ev) {
  char when[32], event[ESC_MAX(16)], peer[ESC_MAX(CHOREO_NAME_MAX)],
      state[ESC_MAX(CHOREO_STATE_MAX)], previous[ESC_MAX(CHOREO_STATE_MAX)],
      reason[ESC_MAX(CHOREO_REASON_MAX)];
  time_t s = (time_t)(ev->time_ms / 1000);
  /* A data event changes no state: show the state it is in. */
  bool data = strcmp(ev->event, "data") == 0;
  struct tm tm;

  localtime_r(&s, &tm);
  strftime(when, sizeof(when), "%H:%M:%S", &tm);
  cli_escape(ev->event, event, sizeof(event));
  cli_escape(ev->peer, peer, sizeof(peer));
  cli_escape(ev->state, state, sizeof(state));
  cli_escape(ev->previous, previous, sizeof(previous));
  cli_escape(ev->reason, reason, sizeof(reason));
  printf("%s.%03d  ", when, (int)(ev->time_ms % 1000));
  cli_pad(stdout, event, 7);
  printf(" %s  %s%s%s%s%s%s\n", peer, data ? "" : previous,
         !data && previous[0] ? " -> " : "", state, reason[0] ? "  (" : "",
         reason, reason[0] ? ")" : "");
}

/* What `watch` prints: the filters, and the format. */
struct watch_filter {
  const char *node, *group;
  char events[128]; /* ",joined,lost," or "" for all */
  bool json;
};

static bool wanted(const struct watch_filter *f, const choreo_event *ev) {
  char key[32];
  bool in = f->group == NULL;

  if (f->node != NULL && strcmp(ev->peer, f->node) != 0)
    return false;
  for (size_t i = 0; !in && i < ev->ngroups; i++)
    in = strcmp(ev->groups[i], f->group) == 0;
  if (!in)
    return false;
  snprintf(key, sizeof(key), ",%.24s,", ev->event);
  return f->events[0] == '\0' || strstr(f->events, key) != NULL;
}

static int print_event(const choreo_event *ev, void *arg) {
  const struct watch_filter *f = arg;
  if (!wanted(f, ev))
    return 0;
  if (f->json) {
    json_t *groups = json_array();
    for (size_t i = 0; groups != NULL && i < ev->ngroups; i++)
      json_array_append_new(groups, json_string(ev->groups[i]));
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o?}", "event",
                          ev->event, "peer", ev->peer, "state", ev->state,
                          "previous", ev->previous, "reason", ev->reason,
                          "time", (json_int_t)ev->time_ms, "groups", groups);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text != NULL)
      printf("%s\n", text);
    free(text);
    json_decref(o);
  } else {
    print_event_text(ev);
  }
  fflush(stdout);
  return 0;
}

static void on_interrupt(int sig) {}

/* --event LIST into f->events as ",a,b,"; every name one of the events. */
static int parse_events(const char *list, struct watch_filter *f) {
  static const char *const known[] = {"joined", "state", "data",
                                      "left",   "lost",  "snapshot"};
  char buf[128], *p, *save = NULL;
  size_t used = 1;

  if (list == NULL)
    return -1;
  if (strlen(list) >= sizeof(buf) - 2)
    return cli_usage_error("watch", "--event: list too long");
  snprintf(buf, sizeof(buf), "%s", list);
  snprintf(f->events, sizeof(f->events), ",");
  for (p = strtok_r(buf, ",", &save); p != NULL;
       p = strtok_r(NULL, ",", &save)) {
    bool ok = false;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
      ok |= strcmp(p, known[i]) == 0;
    if (!ok)
      return cli_usage_error("watch",
                             "--event: '%s' is not an event (joined, state, "
                             "data, left, lost, snapshot)",
                             p);
    used +=
        (size_t)snprintf(f->events + used, sizeof(f->events) - used, "%s,", p);
  }
  if (used == 1)
    return cli_usage_error("watch", "--event: no event given");
  return -1;
}

int cmd_watch(int argc, char **argv) {
  struct query_args q;
  struct watch_filter f = {0};
  choreo_client *c = NULL;
  struct sigaction sa = {.sa_handler = on_interrupt};
  int rv = parse("watch", watch_usage, "scngeAD", argc, argv, &q);
  if (rv >= 0 || (rv = no_positional("watch", &q)) >= 0)
    return rv;
  if ((q.node && !choreo_valid_name(q.node)) ||
      (q.group && !choreo_valid_name(q.group)))
    return cli_usage_error("watch", "'%s' is not a valid name",
                           q.node ? q.node : q.group);
  if ((rv = parse_events(q.events, &f)) >= 0)
    return rv;
  f.node = q.node;
  f.group = q.group;
  f.json = q.common.json;
  if ((rv = cli_connect("watch", &q.common, &c)) != 0)
    return rv;
  /* SIGINT/SIGTERM interrupt the blocking read (no SA_RESTART); the
   * library reports that as -EINTR, which ends the watch cleanly. */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  rv = q.snapshot ? choreo_watch_snapshot(c, print_event, &f)
                  : choreo_watch(c, print_event, &f);
  choreo_close(c);
  if (rv == -EINTR)
    return EXIT_OK;
  return cli_fail("watch", rv, NULL);
}

/* ---- wait ---- */

/* A state, or a comma-separated list of them (as choreo_wait takes). */
static bool valid_states(const char *list) {
  char buf[CHOREO_WAIT_STATES_MAX * (CHOREO_STATE_MAX + 1)], *p, *save = NULL;
  size_t n = 0, len = strlen(list);

  if (len == 0 || len >= sizeof(buf) || list[0] == ',' ||
      list[len - 1] == ',' || strstr(list, ",,") != NULL)
    return false;
  memcpy(buf, list, len + 1);
  for (p = strtok_r(buf, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save))
    if (++n > CHOREO_WAIT_STATES_MAX || !choreo_valid_state(p))
      return false;
  return true;
}

int cmd_wait(int argc, char **argv) {
  struct query_args q;
  choreo_client *c = NULL;
  uint64_t timeout = 0;
  const char *state;
  int rv = parse("wait", wait_usage, "scgntBCE", argc, argv, &q);
  if (rv >= 0)
    return rv;
  if ((q.node == NULL) == (q.group == NULL))
    return cli_usage_error("wait", "give exactly one of --node and --group");
  if (q.any == q.all)
    return cli_usage_error("wait", "give exactly one of --any and --all");
  if (q.npositional != (q.states == NULL))
    return cli_usage_error("wait", "give exactly one STATE or --state LIST");
  state = q.states != NULL ? q.states : q.positional[0];
  if (!valid_states(state))
    return cli_usage_error("wait",
                           "'%s' is not a valid state or list of up to %d "
                           "(1-32 of a-z 0-9 _ -, comma-separated)",
                           state, CHOREO_WAIT_STATES_MAX);
  if ((q.node && !choreo_valid_name(q.node)) ||
      (q.group && !choreo_valid_name(q.group)))
    return cli_usage_error("wait", "'%s' is not a valid name",
                           q.node ? q.node : q.group);
  if (q.timeout != NULL && choreo_parse_duration(q.timeout, &timeout) != 0)
    return cli_usage_error("wait",
                           "'%s' is not a duration (250ms, 5s, 2m, "
                           "1h)",
                           q.timeout);
  if ((rv = cli_connect("wait", &q.common, &c)) != 0)
    return rv;
  rv = choreo_wait(c, q.node, q.group, q.all, state,
                   q.timeout ? (int64_t)timeout : -1);
  choreo_close(c);
  if (rv == CHOREO_ETIMEDOUT)
    return cli_error(EXIT_FAILED, "wait", "timed out after %s", q.timeout);
  return rv == 0 ? EXIT_OK : cli_fail("wait", rv, NULL);
}

/* ---- metrics ---- */

int cmd_metrics(int argc, char **argv) {
  struct query_args q;
  choreo_client *c = NULL;
  char *text = NULL;
  int rv = parse("metrics", metrics_usage, "sc", argc, argv, &q);
  if (rv >= 0 || (rv = no_positional("metrics", &q)) >= 0)
    return rv;
  if ((rv = cli_connect("metrics", &q.common, &c)) != 0)
    return rv;
  rv = choreo_request(c, "{\"cmd\":\"metrics\"}", &text);
  if (rv == 0) {
    json_t *reply = json_loads(text, 0, NULL);
    const char *m = json_string_value(json_object_get(reply, "text"));
    if (m != NULL)
      fputs(m, stdout);
    else
      rv = CHOREO_EPROTO;
    json_decref(reply);
  }
  free(text);
  choreo_close(c);
  return rv == 0 ? EXIT_OK : cli_fail("metrics", rv, NULL);
}
