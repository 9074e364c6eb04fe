/*
 * config.c — reads the agent's YAML configuration (docs/CONFIGURATION.md,
 * choreo.yaml(5)) and the behaviour packs it includes into struct config.
 *
 * Each file is read in two steps. config_load.c builds libyaml's event
 * stream into a small tree of nodes that keep their marks (inside a pack,
 * with ${NAME} already replaced by the include's vars); this file walks the
 * tree against the schema, section by section. Every problem is recorded as
 * "FILE:LINE:COL: message" and the walk goes on, so that `choreo check` shows
 * them all at once; only a YAML syntax error stops the file it is in. Nothing
 * here touches the network.
 */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "config_load.h"
#include "log.h"
#include "http_req.h"
#include "policy.h"
#include "seal.h"
#include "trust.h"
#include "util.h"

#define VAR_NAME_MAX 64     /* an include var's name */
#define VAR_VALUE_MAX 1024  /* an include var's value */
#define HEARTBEAT_MIN_MS 10 /* below this the mesh would only send beats */
#define FALL_RISE_MAX 100
#define RETRIES_MAX 10
#define FEWER_THAN_MAX 1000000

/* ---- Comparisons used by the engine on reload ---- */

const char *config_event_name(enum config_event e) {
  switch (e) {
#define XX(id, s)                                                              \
  case CONFIG_EV_##id:                                                         \
    return s;
    CONFIG_EVENT_MAP(XX)
#undef XX
  default:
    return "unknown";
  }
}

static bool same_condition(const struct config_condition *a,
                           const struct config_condition *b) {
  if (a->kind != b->kind || a->nstates != b->nstates || a->n != b->n)
    return false;
  for (size_t i = 0; i < a->nstates; i++)
    if (strcmp(a->states[i], b->states[i]) != 0)
      return false;
  return true;
}

bool config_behaviour_same_trigger(const struct config_behaviour *a,
                                   const struct config_behaviour *b) {
  if (strcmp(a->peers.group, b->peers.group) != 0 ||
      strcmp(a->peers.node, b->peers.node) != 0)
    return false;
  if (a->has_when != b->has_when || a->on_mask != b->on_mask)
    return false;
  return !a->has_when || same_condition(&a->when, &b->when);
}

/* ---- node ---- */

enum { NODE_NAME, NODE_CLUSTER, NODE_GROUPS, NODE_STATE, NODE_DATA, NODE__N };
static const char *const node_keys[] = {"name", "cluster", "groups", "state",
                                        "data"};
_Static_assert(ARRAY_SIZE(node_keys) == NODE__N, "node_keys");

/* A list of group names at where (node.groups, sync.groups): each a valid
 * name, none twice, at most CHOREO_GROUPS_MAX, into groups[*n]. */
static void parse_group_list(struct loader *L, const struct ynode *v,
                             const char *where,
                             char (*groups)[CHOREO_NAME_MAX + 1], size_t *n) {
  if (cfg_is_null(v) ||
      !cfg_get_str_list(L, v, where, CHOREO_GROUPS_MAX, "groups"))
    return;
  for (size_t i = 0; i < v->nkids; i++) {
    const struct ynode *g = v->kids[i];
    size_t j = 0;
    while (j < *n && strcmp(groups[j], g->str) != 0)
      j++;
    if (j < *n)
      cfg_problem(L, g, where, "group \"%s\" is listed twice", g->str);
    else if (cfg_get_name(L, g, where, groups[j], CHOREO_NAME_MAX + 1))
      (*n)++;
  }
}

static void parse_groups(struct loader *L, const struct ynode *v) {
  parse_group_list(L, v, "node.groups", L->cfg->groups, &L->cfg->ngroups);
}

/* One data pair: the key at kids[i] of m and its value. */
static void parse_datum(struct loader *L, const struct ynode *m, size_t i) {
  const struct ynode *k = m->kids[i], *v = m->kids[i + 1];
  const char *where = "node.data", *s;
  char w[WHERE_MAX];

  if (!cfg_key_ok(L, k, where) || cfg_dup_key(L, m, i, where))
    return;
  if (!choreo_valid_data_key(k->str)) {
    cfg_problem(L, k, where,
                "\"%s\" is not a valid data key (1-%d of a-z 0-9 _ . -)",
                k->str, CHOREO_DATA_KEY_MAX);
    return;
  }
  if (!cfg_get_str(L, v, cfg_sub(w, where, k->str), &s))
    return;
  if (!choreo_valid_text(s, CHOREO_DATA_VALUE_MAX)) {
    cfg_problem(L, v, w, "longer than %d bytes or not UTF-8",
                CHOREO_DATA_VALUE_MAX);
    return;
  }
  if (json_object_set_new(L->cfg->data, k->str, json_string(s)) != 0)
    L->nomem = true;
}

static void parse_data(struct loader *L, const struct ynode *m) {
  if (cfg_is_null(m))
    return;
  if (m->kind != Y_MAP) {
    cfg_problem(L, m, "node.data", "expected a mapping of keys to strings");
    return;
  }
  if (m->nkids / 2 > CHOREO_DATA_KEYS_MAX) {
    cfg_problem(L, m, "node.data", "at most %d keys", CHOREO_DATA_KEYS_MAX);
    return;
  }
  for (size_t i = 0; i + 1 < m->nkids; i += 2)
    parse_datum(L, m, i);
}

static void parse_node(struct loader *L, const struct ynode *m) {
  const struct ynode *v[NODE__N], *k[NODE__N];
  struct config *cfg = L->cfg;

  if (!cfg_map_fields(L, m, "node", node_keys, NODE__N, v, k))
    return;
  if (v[NODE_NAME] != NULL) {
    L->name_set = true;
    cfg_get_name(L, v[NODE_NAME], "node.name", cfg->name, sizeof(cfg->name));
  }
  if (v[NODE_CLUSTER] != NULL)
    cfg_get_name(L, v[NODE_CLUSTER], "node.cluster", cfg->cluster,
                 sizeof(cfg->cluster));
  if (v[NODE_GROUPS] != NULL)
    parse_groups(L, v[NODE_GROUPS]);
  if (v[NODE_STATE] != NULL)
    cfg_get_state(L, v[NODE_STATE], "node.state", cfg->state, true);
  if (v[NODE_DATA] != NULL)
    parse_data(L, v[NODE_DATA]);
}

/* The host name when node.name is not given. */
static void default_name(struct loader *L) {
  char host[256];
  if (L->name_set)
    return;
  if (gethostname(host, sizeof(host)) != 0)
    host[0] = '\0';
  host[sizeof(host) - 1] = '\0';
  if (!choreo_valid_name(host) ||
      strlcpy_checked(L->cfg->name, host, sizeof(L->cfg->name)) != 0)
    cfg_problem_at(
        L, L->file, 1, 1, "node.name",
        "the host name \"%s\" is not a valid node name; set node.name", host);
}

/* ---- network ---- */

struct addr {
  bool tcp;
  char host[CHOREO_ADDR_MAX + 1];
};

static bool valid_port(const char *p) {
  unsigned long n = 0;
  size_t len = strlen(p);
  if (len == 0 || len > 5 || strspn(p, "0123456789") != len)
    return false;
  for (; *p != '\0'; p++)
    n = n * 10 + (unsigned long)(*p - '0');
  return n >= 1 && n <= 65535;
}

/* NULL if s is an address nanomsg can use (its parts in *a), else what is
 * wrong with it. */
static const char *addr_parse(const char *s, struct addr *a) {
  const char *rest, *colon;

  memset(a, 0, sizeof(*a));
  if (strlen(s) > CHOREO_ADDR_MAX)
    return "longer than 256 characters";
  if (strncmp(s, "ipc://", 6) == 0 || strncmp(s, "inproc://", 9) == 0)
    return strstr(s, "://")[3] == '\0' ? "needs a path or a name" : NULL;
  if (strncmp(s, "tcp://", 6) != 0)
    return "write tcp://HOST:PORT, ipc://PATH or inproc://NAME";
  rest = s + strlen("tcp://");
  if ((colon = strrchr(rest, ':')) == NULL)
    return "needs a port (tcp://HOST:PORT)";
  if (colon == rest)
    return "needs a host (tcp://HOST:PORT)";
  if (!valid_port(colon + 1))
    return "the port must be a number from 1 to 65535";
  a->tcp = true;
  memcpy(a->host, rest, (size_t)(colon - rest));
  return NULL;
}

static bool addr_wildcard(const struct addr *a) {
  return a->tcp && (strcmp(a->host, "0.0.0.0") == 0 ||
                    strcmp(a->host, "*") == 0 || strcmp(a->host, "[::]") == 0);
}

/* Only this machine can reach it: ipc, inproc or a loopback tcp host. */
static bool addr_local(const struct addr *a) {
  return !a->tcp || strncmp(a->host, "127.", 4) == 0 ||
         strcmp(a->host, "localhost") == 0 || strcmp(a->host, "[::1]") == 0;
}

/* An address into dst; dial: one that peers dial, so not a wildcard. */
static bool get_addr(struct loader *L, const struct ynode *v, const char *where,
                     char *dst, bool dial) {
  struct addr a;
  const char *s, *why;

  if (!cfg_get_str(L, v, where, &s))
    return false;
  if ((why = addr_parse(s, &a)) != NULL) {
    cfg_problem(L, v, where, "\"%s\" is not a valid address: %s", s, why);
    return false;
  }
  if (dial && addr_wildcard(&a)) {
    cfg_problem(L, v, where, "%s is a wildcard; peers need an address to dial",
                s);
    return false;
  }
  return strlcpy_checked(dst, s, CHOREO_ADDR_MAX + 1) == 0;
}

/* network.join and network.relays: lists of addresses to dial. */
static void parse_dial_list(struct loader *L, const struct ynode *v,
                            const char *where,
                            char (*list)[CHOREO_ADDR_MAX + 1], size_t *n) {
  if (!cfg_get_str_list(L, v, where, CONFIG_JOIN_MAX, "addresses") ||
      cfg_is_null(v))
    return;
  for (size_t i = 0; i < v->nkids; i++)
    if (get_addr(L, v->kids[i], where, list[*n], true))
      (*n)++;
}

enum {
  NET_LISTEN,
  NET_ADVERTISE,
  NET_JOIN,
  NET_HEARTBEAT,
  NET_LOST_AFTER,
  NET_KEY_FILE,
  NET_INSECURE,
  NET_REAP_AFTER,
  NET_RELAY,
  NET_RELAYS,
  NET_MAX_MEMBERS,
  NET__N
};
static const char *const network_keys[] = {
    "listen",   "advertise",  "join",  "heartbeat", "lost_after", "key_file",
    "insecure", "reap_after", "relay", "relays",    "max_members"};
_Static_assert(ARRAY_SIZE(network_keys) == NET__N, "network_keys");

/* Format ms the way it would be written, e.g. "1s" or "1500ms". */
static const char *fmt_ms(uint64_t ms, char *buf, size_t size) {
  if (ms != 0 && ms % 3600000 == 0)
    snprintf(buf, size, "%lluh", (unsigned long long)(ms / 3600000));
  else if (ms != 0 && ms % 60000 == 0)
    snprintf(buf, size, "%llum", (unsigned long long)(ms / 60000));
  else if (ms != 0 && ms % 1000 == 0)
    snprintf(buf, size, "%llus", (unsigned long long)(ms / 1000));
  else
    snprintf(buf, size, "%llums", (unsigned long long)ms);
  return buf;
}

/* heartbeat and lost_after, both given or default, once both are valid. */
static void check_timing(struct loader *L, const struct ynode *hb,
                         const struct ynode *lost) {
  struct config *cfg = L->cfg;
  char t[32];

  if (hb != NULL && cfg->heartbeat_ms < HEARTBEAT_MIN_MS)
    cfg_problem(L, hb, "network.heartbeat", "must be at least %dms",
                HEARTBEAT_MIN_MS);
  else if (cfg->lost_after_ms > cfg->heartbeat_ms)
    return;
  else if (lost != NULL)
    cfg_problem(L, lost, "network.lost_after",
                "must be longer than network.heartbeat (%s)",
                fmt_ms(cfg->heartbeat_ms, t, sizeof(t)));
  else
    cfg_problem(L, hb, "network.heartbeat",
                "must be shorter than network.lost_after (%s)",
                fmt_ms(cfg->lost_after_ms, t, sizeof(t)));
}

/* advertise's default, and docs/SECURITY.md: no clear text off this
 * machine unless the operator says so. */
static void check_listen(struct loader *L, const struct ynode *listen,
                         bool advertise, bool key, bool insecure) {
  struct config *cfg = L->cfg;
  struct addr a;

  addr_parse(cfg->listen, &a);
  if (!advertise && addr_wildcard(&a))
    cfg_problem(L, listen, "network.advertise",
                "required when network.listen is a wildcard (%s): write the "
                "address peers dial, e.g. tcp://10.0.0.5:7410",
                cfg->listen);
  else if (!advertise)
    memcpy(cfg->advertise, cfg->listen, sizeof(cfg->advertise));
  if (!key && !insecure && !addr_local(&a))
    cfg_problem(
        L, listen, "network.listen",
        "%s is not a loopback address and there is no network.key_file: "
        "set network.key_file (see choreo keygen), or network.insecure: "
        "true to accept unencrypted traffic",
        cfg->listen);
}

/* The agent refuses to start with a key file it can't use: load it here
 * too, so that `choreo check` refuses it as well. */
static void check_key_file(struct loader *L, const struct ynode *v) {
  struct seal_ring *ring = NULL;
  struct seal_error err;
  int rv = seal_ring_load(L->cfg->key_file, &ring, &err);

  seal_ring_free(ring);
  if (rv == CHOREO_ENOMEM)
    L->nomem = true;
  else if (rv == CHOREO_ECONFIG)
    cfg_problem(L, v, "network.key_file", "%s", err.text);
  else if (rv != 0)
    cfg_problem(L, v, "network.key_file", "%s: %s", L->cfg->key_file,
                choreo_strerror(rv));
}

static void parse_network(struct loader *L, const struct ynode *m) {
  const struct ynode *v[NET__N], *k[NET__N];
  struct config *cfg = L->cfg;
  bool listen_ok = true, timing_ok = true, insecure_ok = true;

  if (!cfg_map_fields(L, m, "network", network_keys, NET__N, v, k))
    return;
  if (v[NET_LISTEN] != NULL)
    listen_ok =
        get_addr(L, v[NET_LISTEN], "network.listen", cfg->listen, false);
  if (v[NET_ADVERTISE] != NULL)
    get_addr(L, v[NET_ADVERTISE], "network.advertise", cfg->advertise, true);
  if (v[NET_JOIN] != NULL)
    parse_dial_list(L, v[NET_JOIN], "network.join", cfg->join, &cfg->njoin);
  if (v[NET_RELAY] != NULL)
    cfg_get_bool(L, v[NET_RELAY], "network.relay", &cfg->relay);
  if (v[NET_RELAYS] != NULL)
    parse_dial_list(L, v[NET_RELAYS], "network.relays", cfg->relays,
                    &cfg->nrelays);
  if (cfg->relay && cfg->nrelays > 0)
    cfg_problem(L, v[NET_RELAYS], "network.relays",
                "a relay can't be a leaf: remove network.relays (a relay "
                "joins through network.join) or network.relay");
  else if (cfg->nrelays > 0 && cfg->njoin > 0)
    cfg_problem(L, v[NET_JOIN], "network.join",
                "not used with network.relays: a leaf joins through its "
                "relays; remove network.join");
  if (v[NET_HEARTBEAT] != NULL)
    timing_ok &= cfg_get_duration(L, v[NET_HEARTBEAT], "network.heartbeat",
                                  &cfg->heartbeat_ms);
  if (v[NET_LOST_AFTER] != NULL)
    timing_ok &= cfg_get_duration(L, v[NET_LOST_AFTER], "network.lost_after",
                                  &cfg->lost_after_ms);
  if (v[NET_REAP_AFTER] != NULL)
    cfg_get_duration(L, v[NET_REAP_AFTER], "network.reap_after",
                     &cfg->reap_after_ms);
  if (v[NET_MAX_MEMBERS] != NULL)
    cfg_get_uint(L, v[NET_MAX_MEMBERS], "network.max_members", 1,
                 CONFIG_MEMBERS_MAX, &cfg->max_members);
  if (v[NET_KEY_FILE] != NULL &&
      cfg_get_path(L, v[NET_KEY_FILE], "network.key_file", cfg->key_file,
                   sizeof(cfg->key_file)))
    check_key_file(L, v[NET_KEY_FILE]);
  if (v[NET_INSECURE] != NULL)
    insecure_ok =
        cfg_get_bool(L, v[NET_INSECURE], "network.insecure", &cfg->insecure);
  if (timing_ok)
    check_timing(L, v[NET_HEARTBEAT], v[NET_LOST_AFTER]);
  if (listen_ok)
    check_listen(L, v[NET_LISTEN], v[NET_ADVERTISE] != NULL,
                 v[NET_KEY_FILE] != NULL, cfg->insecure || !insecure_ok);
}

/* ---- control and state_dir ---- */

enum { CTL_SOCKET, CTL_MODE, CTL_READ_GROUP, CTL__N };
static const char *const control_keys[] = {"socket", "mode", "read_group"};
_Static_assert(ARRAY_SIZE(control_keys) == CTL__N, "control_keys");

/* A file mode in octal, as chmod takes it: "0660" or 0660. */
static void parse_mode(struct loader *L, const struct ynode *v) {
  const char *s, *p;
  unsigned mode = 0;

  if (!cfg_get_str(L, v, "control.mode", &s))
    return;
  for (p = s; *p == '0' && p[1] != '\0'; p++)
    ;
  if (*p == '\0' || strlen(p) > 3 || strspn(p, "01234567") != strlen(p)) {
    cfg_problem(L, v, "control.mode",
                "\"%s\" is not a file mode (write it in octal, e.g. \"0660\")",
                s);
    return;
  }
  for (; *p != '\0'; p++)
    mode = mode * 8 + (unsigned)(*p - '0');
  L->cfg->socket_mode = mode;
}

/* A user or group name as written, into dst[CONFIG_USER_MAX + 1];
 * escaped into shown[] for messages (the text is the operator's, but it
 * may come from an include's vars). */
static bool get_account_name(struct loader *L, const struct ynode *v,
                             const char *where, char *dst, char *shown,
                             size_t shown_len) {
  const char *s;

  if (!cfg_get_str(L, v, where, &s))
    return false;
  util_escape(s, shown, shown_len);
  if (s[0] == '\0' || strlcpy_checked(dst, s, CONFIG_USER_MAX + 1) != 0) {
    cfg_problem(L, v, where, "\"%s\" is not a name of 1 to %d bytes", shown,
                CONFIG_USER_MAX);
    return false;
  }
  return true;
}

/* control.read_group: a group that exists here (getgrnam). */
static void parse_read_group(struct loader *L, const struct ynode *v) {
  struct config *cfg = L->cfg;
  char shown[4 * CONFIG_USER_MAX + 8];
  struct group *gr;

  if (!get_account_name(L, v, "control.read_group", cfg->read_group, shown,
                        sizeof(shown)))
    return;
  errno = 0;
  if ((gr = getgrnam(cfg->read_group)) == NULL) {
    cfg_problem(L, v, "control.read_group", "no group \"%s\"%s%s", shown,
                errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
    cfg->read_group[0] = '\0';
    return;
  }
  cfg->read_gid = (uint32_t)gr->gr_gid;
}

static void parse_control(struct loader *L, const struct ynode *m) {
  const struct ynode *v[CTL__N], *k[CTL__N];
  struct config *cfg = L->cfg;
  const char *s;

  if (!cfg_map_fields(L, m, "control", control_keys, CTL__N, v, k))
    return;
  if (v[CTL_SOCKET] != NULL &&
      cfg_get_str(L, v[CTL_SOCKET], "control.socket", &s) &&
      strlcpy_checked(cfg->socket, s, sizeof(cfg->socket)) != 0)
    cfg_problem(L, v[CTL_SOCKET], "control.socket",
                "longer than %d bytes (the limit of a unix socket path)",
                CONFIG_SOCKET_MAX);
  if (v[CTL_MODE] != NULL)
    parse_mode(L, v[CTL_MODE]);
  if (v[CTL_READ_GROUP] != NULL)
    parse_read_group(L, v[CTL_READ_GROUP]);
}

/* ---- log ---- */

enum { LOG_KEY_LEVEL, LOG_KEY__N };
static const char *const log_keys[] = {"level"};
_Static_assert(ARRAY_SIZE(log_keys) == LOG_KEY__N, "log_keys");

static void parse_log(struct loader *L, const struct ynode *m) {
  const struct ynode *v[LOG_KEY__N], *k[LOG_KEY__N];
  enum log_level level;
  const char *s;

  if (!cfg_map_fields(L, m, "log", log_keys, LOG_KEY__N, v, k))
    return;
  if (v[LOG_KEY_LEVEL] == NULL ||
      !cfg_get_str(L, v[LOG_KEY_LEVEL], "log.level", &s))
    return;
  if (log_level_parse(s, &level) != 0)
    cfg_problem(L, v[LOG_KEY_LEVEL], "log.level",
                "\"%s\" is not a level (error, warning, info or debug)", s);
  else
    L->cfg->log_level = (int)level;
}

/* ---- http ---- */

enum { HTTP_LISTEN, HTTP_TOKEN_FILE, HTTP__N };
static const char *const http_keys[] = {"listen", "token_file"};
_Static_assert(ARRAY_SIZE(http_keys) == HTTP__N, "http_keys");

/* http: {listen: HOST:PORT, token_file: PATH}. A listener other than
 * loopback serves anyone who can reach it: it must have a token. */
static void parse_http(struct loader *L, const struct ynode *m) {
  const struct ynode *v[HTTP__N], *k[HTTP__N];
  struct config *cfg = L->cfg;
  struct sockaddr_storage ss;
  bool loopback = false;
  const char *s, *why;

  if (!cfg_map_fields(L, m, "http", http_keys, HTTP__N, v, k))
    return;
  if (v[HTTP_TOKEN_FILE] != NULL)
    cfg_get_path(L, v[HTTP_TOKEN_FILE], "http.token_file", cfg->http_token_file,
                 sizeof(cfg->http_token_file));
  if (v[HTTP_LISTEN] == NULL) {
    cfg_problem(L, m, "http",
                "needs \"listen\" (HOST:PORT, e.g. "
                "127.0.0.1:9100)");
    return;
  }
  if (!cfg_get_str(L, v[HTTP_LISTEN], "http.listen", &s))
    return;
  if (http_parse_listen(s, &ss, &loopback, &why) != 0 ||
      strlcpy_checked(cfg->http_listen, s, sizeof(cfg->http_listen)) != 0) {
    cfg_problem(L, v[HTTP_LISTEN], "http.listen", "\"%s\": %s", s, why);
    cfg->http_listen[0] = '\0';
    return;
  }
  if (!loopback && v[HTTP_TOKEN_FILE] == NULL)
    cfg_problem(L, v[HTTP_LISTEN], "http.listen",
                "%s is not a loopback address: set http.token_file (a bearer "
                "token every client must send)",
                s);
}

/* ---- identity ---- */

enum { ID_KEY_FILE, ID_CERT_FILE, ID_OPERATORS, ID_REQUIRED, ID__N };
static const char *const identity_keys[] = {"key_file", "cert_file",
                                            "operators", "required"};
_Static_assert(ARRAY_SIZE(identity_keys) == ID__N, "identity_keys");

static void parse_operators(struct loader *L, const struct ynode *v) {
  struct config *cfg = L->cfg;
  char w[WHERE_MAX], err[ID_ERR_MAX];

  if (!cfg_get_seq(L, v, "identity.operators"))
    return;
  if (v->nkids == 0 || v->nkids > ID_OPERATORS_MAX) {
    cfg_problem(L, v, "identity.operators",
                "expected 1 to %d operator public keys (choreo pubkey)",
                ID_OPERATORS_MAX);
    return;
  }
  for (size_t i = 0; i < v->nkids; i++) {
    const char *s;
    cfg_nth(w, "identity.operators", i);
    if (!cfg_get_str(L, v->kids[i], w, &s))
      continue;
    if (id_public_parse(s, cfg->identity_ops[cfg->identity_nops], err) != 0)
      cfg_problem(L, v->kids[i], w, "%s", err);
    else
      cfg->identity_nops++;
  }
}

static void parse_identity(struct loader *L, const struct ynode *m) {
  const struct ynode *v[ID__N], *k[ID__N];
  struct config *cfg = L->cfg;
  char err[ID_ERR_MAX];

  if (!cfg_map_fields(L, m, "identity", identity_keys, ID__N, v, k))
    return;
  L->identity = m;
  cfg->identity = true;
  cfg->identity_required = true;
  if (v[ID_REQUIRED] != NULL)
    cfg_get_bool(L, v[ID_REQUIRED], "identity.required",
                 &cfg->identity_required);
  for (int i = ID_KEY_FILE; i <= ID_OPERATORS; i++) {
    if (v[i] == NULL)
      cfg_problem(L, m, "identity",
                  "needs \"%s\" (docs/OPERATIONS.md \"Identity\")",
                  identity_keys[i]);
  }
  if (v[ID_OPERATORS] != NULL)
    parse_operators(L, v[ID_OPERATORS]);
  if (v[ID_KEY_FILE] != NULL &&
      cfg_get_path(L, v[ID_KEY_FILE], "identity.key_file",
                   cfg->identity_key_file, sizeof(cfg->identity_key_file)) &&
      id_key_load(cfg->identity_key_file, &cfg->identity_key, err) != 0) {
    cfg_problem(L, v[ID_KEY_FILE], "identity.key_file", "%s", err);
    cfg->identity_key_file[0] = '\0';
  }
  if (v[ID_CERT_FILE] != NULL &&
      cfg_get_path(L, v[ID_CERT_FILE], "identity.cert_file",
                   cfg->identity_cert_file, sizeof(cfg->identity_cert_file)) &&
      id_cert_load(cfg->identity_cert_file, &cfg->identity_cert, err) != 0) {
    cfg_problem(L, v[ID_CERT_FILE], "identity.cert_file", "%s", err);
    cfg->identity_cert_file[0] = '\0';
  }
}

/* Once node.name and node.groups are known: the certificate must fit the
 * key, this node, its groups and the operators, now. */
static void check_identity(struct loader *L) {
  struct config *cfg = L->cfg;
  const char *why;
  char err[ID_ERR_MAX];

  if (L->identity == NULL || cfg->identity_key_file[0] == '\0' ||
      cfg->identity_cert_file[0] == '\0' || cfg->identity_nops == 0)
    return;
  why = trust_check_own(&cfg->identity_key, &cfg->identity_cert,
                        (const uint8_t(*)[ID_PUBLIC_BYTES])cfg->identity_ops,
                        cfg->identity_nops, cfg->name, cfg->ngroups,
                        (const char(*)[CHOREO_NAME_MAX + 1]) cfg->groups,
                        (int64_t)time(NULL), err);
  if (why != NULL)
    cfg_problem(L, L->identity, "identity.cert_file", "%s: %s",
                cfg->identity_cert_file, why);
}

/* ---- sync ---- */

enum { SYNC_MIN_MEMBERS, SYNC_GROUPS, SYNC_MAX_WAIT, SYNC__N };
static const char *const sync_keys[] = {"min_members", "groups", "max_wait"};
_Static_assert(ARRAY_SIZE(sync_keys) == SYNC__N, "sync_keys");

static void parse_sync_groups(struct loader *L, const struct ynode *v) {
  parse_group_list(L, v, "sync.groups", L->cfg->sync_groups,
                   &L->cfg->sync_ngroups);
}

static void parse_sync(struct loader *L, const struct ynode *m) {
  const struct ynode *v[SYNC__N], *k[SYNC__N];
  struct config *cfg = L->cfg;

  if (!cfg_map_fields(L, m, "sync", sync_keys, SYNC__N, v, k))
    return;
  cfg->sync_max_wait_ms = CONFIG_SYNC_WAIT_DEFAULT_MS;
  if (v[SYNC_MIN_MEMBERS] != NULL)
    cfg_get_uint(L, v[SYNC_MIN_MEMBERS], "sync.min_members", 0,
                 CONFIG_SYNC_MEMBERS_MAX, &cfg->sync_min_members);
  if (v[SYNC_GROUPS] != NULL)
    parse_sync_groups(L, v[SYNC_GROUPS]);
  if (v[SYNC_MAX_WAIT] != NULL &&
      cfg_get_duration(L, v[SYNC_MAX_WAIT], "sync.max_wait",
                       &cfg->sync_max_wait_ms) &&
      cfg->sync_max_wait_ms == 0)
    cfg_problem(L, v[SYNC_MAX_WAIT], "sync.max_wait",
                "must be longer than 0s: the agent would never act without "
                "what it waits for");
}

/* ---- Commands ---- */

static void argv_free(struct config_argv *a) {
  for (size_t i = 0; i < a->argc; i++)
    free(a->argv[i]);
  free(a->argv);
  a->argv = NULL;
  a->argc = 0;
}

/* Make *cmd (argv[0]) absolute if it is a relative path and check that it
 * can be run; a bare name must be found in $PATH. */
static void resolve_command(struct loader *L, const struct ynode *at,
                            const char *where, char **cmd) {
  char full[CONFIG_PATH_MAX], *abs;
  const char *why;

  if ((*cmd)[0] == '\0') {
    cfg_problem(L, at, where, "the command is empty");
    return;
  }
  if (strchr(*cmd, '/') == NULL) {
    /* The agent spawns through libuv, which searches this when $PATH is
     * unset. */
    if (util_command_problem(*cmd, "/usr/local/bin:/usr/bin:/bin") != NULL)
      cfg_problem(L, at, where, "%s: not found in PATH", *cmd);
    return;
  }
  if ((*cmd)[0] != '/') {
    if (cfg_join_path(L->dir, *cmd, full, sizeof(full)) != 0) {
      cfg_problem(L, at, where, "%s: path too long", *cmd);
      return;
    }
    if ((abs = strdup(full)) == NULL) {
      L->nomem = true;
      return;
    }
    free(*cmd);
    *cmd = abs;
  }
  if ((why = util_exec_problem(*cmd)) != NULL)
    cfg_problem(L, at, where, "%s: %s", *cmd, why);
}

/* Item i of a command written as a list, or the command as one string;
 * the node itself for an empty list (whose problem parse_argv says). */
static const struct ynode *argv_item(const struct ynode *v, size_t i) {
  if (v->kind != Y_SEQ)
    return v;
  return i < v->nkids ? v->kids[i] : v;
}

/* A command: a list of 1 to CONFIG_ARGV_MAX strings, or one string. Any
 * scalar is an argument ("null" and "true" included); argv[0] is not. */
static void parse_argv(struct loader *L, const struct ynode *v,
                       const char *where, struct config_argv *out) {
  size_t n = v->kind == Y_SEQ ? v->nkids : 1;
  bool ok = true;

  if (v->kind == Y_MAP || cfg_is_null(v) || n == 0 || n > CONFIG_ARGV_MAX) {
    cfg_problem(L, v, where, "expected a command: a list of 1 to %d strings",
                CONFIG_ARGV_MAX);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *it = argv_item(v, i);
    if (i == 0 ? !cfg_is_string(it) : it->kind != Y_SCALAR) {
      cfg_problem(L, it, where, "expected a string");
      ok = false;
    }
  }
  if (!ok)
    return;
  if ((out->argv = calloc(n + 1, sizeof(char *))) == NULL) {
    L->nomem = true;
    return;
  }
  out->argc = n;
  for (size_t i = 0; i < n; i++) {
    if ((out->argv[i] = strdup(argv_item(v, i)->str)) == NULL) {
      L->nomem = true;
      return;
    }
  }
  resolve_command(L, argv_item(v, 0), where, &out->argv[0]);
}

/* "CHOREO_VAR_NAME=value" for each var of the include being read. */
static void copy_vars(struct loader *L, size_t *nvars, char ***vars) {
  const struct include_ctx *inc = L->inc;
  if (inc == NULL || inc->nvars == 0)
    return;
  /* NULL-terminated, for util_strv_free(). */
  if ((*vars = calloc(inc->nvars + 1, sizeof(char *))) == NULL) {
    L->nomem = true;
    return;
  }
  *nvars = inc->nvars;
  for (size_t i = 0; i < inc->nvars; i++) {
    (*vars)[i] = cfg_dup_printf("CHOREO_VAR_%s=%s", inc->name[i]->str,
                                inc->value[i]->str);
    if ((*vars)[i] == NULL)
      L->nomem = true;
  }
}

static void set_mark(struct loader *L, const struct ynode *n,
                     struct config_mark *m) {
  snprintf(m->file, sizeof(m->file), "%s", L->file);
  m->line = n->line;
  m->col = n->col;
}

/* ---- run_as ---- */

/* A user that exists here (getpwnam) and that this agent can become: a
 * non-root agent can only run scripts as itself. */
static void parse_run_as(struct loader *L, const struct ynode *v,
                         const char *where, struct config_user *u) {
  char shown[4 * CONFIG_USER_MAX + 8];
  struct passwd *pw;

  if (!get_account_name(L, v, where, u->name, shown, sizeof(shown)))
    return;
  errno = 0;
  if ((pw = getpwnam(u->name)) == NULL) {
    cfg_problem(L, v, where, "no user \"%s\"%s%s", shown,
                errno != 0 ? ": " : "", errno != 0 ? strerror(errno) : "");
    return;
  }
  if (geteuid() != 0 && pw->pw_uid != geteuid()) {
    cfg_problem(L, v, where,
                "the agent runs as uid %u, not root: it can't run scripts as "
                "\"%s\" (uid %u)",
                (unsigned)geteuid(), shown, (unsigned)pw->pw_uid);
    return;
  }
  if (strlcpy_checked(u->home, pw->pw_dir != NULL ? pw->pw_dir : "/",
                      sizeof(u->home)) != 0) {
    cfg_problem(L, v, where, "the home directory of \"%s\" is too long", shown);
    return;
  }
  u->uid = (uint32_t)pw->pw_uid;
  u->gid = (uint32_t)pw->pw_gid;
  u->set = true;
}

/* defaults: settings every behaviour takes unless it says otherwise. */
enum { DEF_RUN_AS, DEF__N };
static const char *const defaults_keys[] = {"run_as"};
_Static_assert(ARRAY_SIZE(defaults_keys) == DEF__N, "defaults_keys");

static void parse_defaults(struct loader *L, const struct ynode *m) {
  const struct ynode *v[DEF__N], *k[DEF__N];

  if (!cfg_map_fields(L, m, "defaults", defaults_keys, DEF__N, v, k))
    return;
  if (v[DEF_RUN_AS] != NULL)
    parse_run_as(L, v[DEF_RUN_AS], "defaults.run_as", &L->cfg->default_run_as);
}

/* One stat() and the decision over it; 1: trusted, else why is set. */
static int trust_one(const char *path, const char *shown, bool is_dir,
                     uint32_t run_uid, char *why, size_t len) {
  struct stat st;
  const char *what = is_dir ? "the directory " : "";

  if (stat(path, &st) != 0) {
    int err = errno;
    snprintf(why, len, "%s%s: %s", what, shown, strerror(err));
    return -err;
  }
  switch (policy_script_trust((uint32_t)st.st_uid, (uint32_t)st.st_mode,
                              run_uid, is_dir)) {
  case POLICY_SCRIPT_OK:
    return 1;
  case POLICY_SCRIPT_OWNER:
    snprintf(why, len,
             "%s%s is writable by uid %u (its owner; not root or the run_as "
             "user)",
             what, shown, (unsigned)st.st_uid);
    break;
  case POLICY_SCRIPT_GROUP_WRITE:
    snprintf(why, len,
             "%s%s is writable by group gid %u (mode %04o; not root or the "
             "run_as user)",
             what, shown, (unsigned)st.st_gid, (unsigned)(st.st_mode & 07777));
    break;
  default:
    snprintf(why, len, "%s%s is writable by anyone (mode %04o)", what, shown,
             (unsigned)(st.st_mode & 07777));
    break;
  }
  return CHOREO_EREFUSED;
}

/* A bare command name: the file PATH finds (libuv's default PATH when
 * unset), or the name itself when none is found (stat then says so). */
static void find_in_path(const char *name, char *out, size_t len) {
  const char *path = getenv("PATH");
  const char *p;

  snprintf(out, len, "%s", name);
  if (path == NULL)
    path = "/usr/local/bin:/usr/bin:/bin";
  for (p = path; *p != '\0';) {
    size_t n = strcspn(p, ":");
    char full[CONFIG_PATH_MAX];
    if (n > 0 &&
        snprintf(full, sizeof(full), "%.*s/%s", (int)n, p, name) <
            (int)sizeof(full) &&
        access(full, X_OK) == 0) {
      snprintf(out, len, "%s", full);
      return;
    }
    p += n + (p[n] == ':');
  }
}

int config_script_trust(const char *path, uint32_t run_uid, char *why,
                        size_t len) {
  char file[CONFIG_PATH_MAX], dir[CONFIG_PATH_MAX];
  char shown[4 * 256 + 8];
  int rv;

  why[0] = '\0';
  if (strchr(path, '/') == NULL)
    find_in_path(path, file, sizeof(file));
  else
    snprintf(file, sizeof(file), "%s", path);
  util_escape(file, shown, sizeof(shown));
  if ((rv = trust_one(file, shown, false, run_uid, why, len)) != 1)
    return rv;
  /* Every directory up to /: whoever can write one of them can rename
   * the file's directory away and put another in its place. */
  snprintf(dir, sizeof(dir), "%s", file);
  while (strcmp(dir, "/") != 0 && strchr(dir, '/') != NULL) {
    char *slash = strrchr(dir, '/');
    if (slash == dir)
      slash[1] = '\0';
    else
      *slash = '\0';
    util_escape(dir, shown, sizeof(shown));
    if ((rv = trust_one(dir, shown, true, run_uid, why, len)) != 1)
      return rv;
  }
  return 0;
}

/* After every file is read: behaviours without run_as take
 * defaults.run_as, and the scripts of those that run as a user must be
 * ones no one else can change. */
static void settle_run_as(struct loader *L) {
  struct config *cfg = L->cfg;
  char why[2048];

  for (size_t i = 0; i < cfg->nbehaviours; i++) {
    struct config_behaviour *b = &cfg->behaviours[i];
    if (!b->run_as.set)
      b->run_as = cfg->default_run_as;
    if (!b->run_as.set)
      continue;
    if (b->run.argc > 0 && config_script_trust(b->run.argv[0], b->run_as.uid,
                                               why, sizeof(why)) != 0)
      cfg_problem_at(L, b->run_mark.file, b->run_mark.line, b->run_mark.col, "",
                     "behaviour %s: run: %s", b->name, why);
    if (b->revert.argc > 0 &&
        config_script_trust(b->revert.argv[0], b->run_as.uid, why,
                            sizeof(why)) != 0)
      cfg_problem_at(L, b->revert_mark.file, b->revert_mark.line,
                     b->revert_mark.col, "", "behaviour %s: revert: %s",
                     b->name, why);
  }
}

/* ---- Conditions and events ---- */

enum { W_ANY, W_ALL, W_NONE, W_FEWER_THAN, W_STATE, W__N };
static const char *const when_keys[] = {"any", "all", "none", "fewer_than",
                                        "state"};
_Static_assert(ARRAY_SIZE(when_keys) == W__N, "when_keys");

/* Is state among the first n states of c? */
static bool states_has(const struct config_condition *c, size_t n,
                       const char *state) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(c->states[i], state) == 0)
      return true;
  return false;
}

/* S, or a list of 1 to CONFIG_STATES_MAX states meaning "one of". */
static void parse_states(struct loader *L, const struct ynode *v,
                         const char *where, struct config_condition *c) {
  size_t n = v->kind == Y_SEQ ? v->nkids : 1;

  if (v->kind == Y_MAP || n == 0 || n > CONFIG_STATES_MAX) {
    cfg_problem(L, v, where, "expected a state or a list of 1 to %d states",
                CONFIG_STATES_MAX);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *it = argv_item(v, i);
    if (!cfg_get_state(L, it, where, c->states[c->nstates], false))
      continue;
    /* Peers that left are not watched: "left" can never be counted, so
     * the condition would be constant. on: [left] is what reacts to it. */
    if (strcmp(c->states[c->nstates], "left") == 0)
      cfg_problem(L, it, where,
                  "\"left\" never matches: peers that left are not watched (to "
                  "react to a leave, use on: [left])");
    else if (c->nstates > 0 && states_has(c, c->nstates, c->states[c->nstates]))
      cfg_problem(L, it, where, "\"%s\" is listed twice", it->str);
    else
      c->nstates++;
  }
}

/* The one condition of when: any, all, none or fewer_than (with state). */
static void pick_condition(struct loader *L, const struct ynode *m,
                           const struct ynode **k, const char *where,
                           int *kind) {
  *kind = -1;
  for (int i = W_ANY; i <= W_FEWER_THAN; i++) {
    if (k[i] == NULL)
      continue;
    if (*kind >= 0) {
      cfg_problem(L, k[i], where,
                  "%s can't be combined with %s; write one condition",
                  when_keys[i], when_keys[*kind]);
      *kind = -2;
      return;
    }
    *kind = i;
  }
  if (*kind == -1)
    cfg_problem(L, m, where, "expected one of any, all, none or fewer_than");
}

static void parse_when(struct loader *L, const struct ynode *m,
                       const char *where, struct config_condition *c) {
  static const enum config_cond_kind kinds[] = {COND_ANY, COND_ALL, COND_NONE,
                                                COND_FEWER_THAN};
  const struct ynode *v[W__N], *k[W__N];
  char w[WHERE_MAX];
  int kind;

  if (!cfg_map_fields(L, m, where, when_keys, W__N, v, k))
    return;
  pick_condition(L, m, k, where, &kind);
  if (kind < 0)
    return;
  c->kind = kinds[kind];
  if (kind != W_FEWER_THAN) {
    parse_states(L, v[kind], cfg_sub(w, where, when_keys[kind]), c);
    if (k[W_STATE] != NULL)
      cfg_problem(L, k[W_STATE], cfg_sub(w, where, "state"),
                  "only goes with fewer_than");
    return;
  }
  if (cfg_get_uint(L, v[W_FEWER_THAN], cfg_sub(w, where, "fewer_than"), 0,
                   FEWER_THAN_MAX, &c->n) &&
      c->n == 0)
    cfg_problem(L, v[W_FEWER_THAN], w,
                "0 can never be true (fewer than 0 peers); write 1 or more");
  if (v[W_STATE] == NULL)
    cfg_problem(L, m, where, "fewer_than needs state: the state to count");
  else
    parse_states(L, v[W_STATE], cfg_sub(w, where, "state"), c);
}

/* The event called name, other than change; CONFIG_EV__COUNT if none. */
static enum config_event find_event(const char *name) {
  for (int e = 0; e < CONFIG_EV__COUNT; e++)
    if (e != CONFIG_EV_CHANGE && strcmp(name, config_event_name(e)) == 0)
      return (enum config_event)e;
  return CONFIG_EV__COUNT;
}

static void unknown_event(struct loader *L, const struct ynode *v,
                          const char *where) {
  cfg_problem(
      L, v, where,
      "unknown event \"%s\" (expected change, or a list of joined, left, "
      "lost, state, data)",
      v->str);
}

/* on: change, one event, or a list of events other than change. */
static void parse_on(struct loader *L, const struct ynode *v, const char *where,
                     unsigned *mask) {
  size_t n = v->kind == Y_SEQ ? v->nkids : 1;

  if (v->kind == Y_MAP || n == 0) {
    cfg_problem(L, v, where, "expected change, or a list of events");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const struct ynode *it = argv_item(v, i);
    enum config_event e;
    if (!cfg_is_string(it)) {
      cfg_problem(L, it, where, "expected a string");
      continue;
    }
    if (strcmp(it->str, "change") == 0 && n > 1)
      cfg_problem(
          L, it, where,
          "change can't be combined with other events (write on: change, "
          "or list only joined, left, lost, state, data)");
    else if (strcmp(it->str, "change") == 0)
      *mask |= CONFIG_EV_BIT(CONFIG_EV_CHANGE);
    else if ((e = find_event(it->str)) == CONFIG_EV__COUNT)
      unknown_event(L, it, where);
    else if ((*mask & CONFIG_EV_BIT(e)) != 0)
      cfg_problem(L, it, where, "\"%s\" is listed twice", it->str);
    else
      *mask |= CONFIG_EV_BIT(e);
  }
}

/* ---- behaviours ---- */

enum {
  B_NAME,
  B_PEERS,
  B_WHEN,
  B_ON,
  B_RUN,
  B_REVERT,
  B_STATE,
  B_SETTLE,
  B_TIMEOUT,
  B_RETRIES,
  B_RUN_AS,
  B__N
};
static const char *const behaviour_keys[] = {
    "name",  "peers",  "when",    "on",      "run",   "revert",
    "state", "settle", "timeout", "retries", "run_as"};
_Static_assert(ARRAY_SIZE(behaviour_keys) == B__N, "behaviour_keys");

enum { SEL_GROUP, SEL_NODE, SEL__N };
static const char *const selector_keys[] = {"group", "node"};

static void parse_selector(struct loader *L, const struct ynode *m,
                           const char *where, struct config_selector *sel) {
  const struct ynode *v[SEL__N], *k[SEL__N];
  char w[WHERE_MAX];

  if (!cfg_map_fields(L, m, where, selector_keys, SEL__N, v, k))
    return;
  if (v[SEL_GROUP] != NULL)
    cfg_get_name(L, v[SEL_GROUP], cfg_sub(w, where, "group"), sel->group,
                 sizeof(sel->group));
  if (v[SEL_NODE] != NULL)
    cfg_get_name(L, v[SEL_NODE], cfg_sub(w, where, "node"), sel->node,
                 sizeof(sel->node));
}

/* The name, unique among every behaviour read so far. */
static void behaviour_name(struct loader *L, const struct ynode *m,
                           const struct ynode *v, const char *where,
                           struct config_behaviour *b) {
  const struct config *cfg = L->cfg;
  char w[WHERE_MAX];

  if (v == NULL) {
    cfg_problem(L, m, where, "\"name\" is required");
    return;
  }
  if (!cfg_get_name(L, v, cfg_sub(w, where, "name"), b->name, sizeof(b->name)))
    return;
  for (const struct config_behaviour *o = cfg->behaviours; o != b; o++) {
    if (strcmp(o->name, b->name) == 0) {
      cfg_problem(L, v, w,
                  "duplicate behaviour name \"%s\" (first at %s:%u:%u)",
                  b->name, o->mark.file, o->mark.line, o->mark.col);
      return;
    }
  }
}

/* peers, and when (a condition) or on (events): exactly one of them. */
static void behaviour_trigger(struct loader *L, const struct ynode *m,
                              const struct ynode **v, const struct ynode **k,
                              const char *where, struct config_behaviour *b) {
  char w[WHERE_MAX];

  if (v[B_PEERS] != NULL)
    parse_selector(L, v[B_PEERS], cfg_sub(w, where, "peers"), &b->peers);
  if (v[B_WHEN] != NULL && v[B_ON] != NULL) {
    cfg_problem(L, k[B_ON], where,
                "has both when and on; react to a condition (when) or to "
                "events (on), not both");
  } else if (v[B_WHEN] != NULL) {
    b->has_when = true;
    parse_when(L, v[B_WHEN], cfg_sub(w, where, "when"), &b->when);
  } else if (v[B_ON] != NULL) {
    parse_on(L, v[B_ON], cfg_sub(w, where, "on"), &b->on_mask);
  } else {
    cfg_problem(L, m, where, "needs when (a condition) or on (events)");
  }
}

/* run, revert and state; the last two only make sense with when. */
static void behaviour_actions(struct loader *L, const struct ynode *m,
                              const struct ynode **v, const struct ynode **k,
                              const char *where, struct config_behaviour *b) {
  char w[WHERE_MAX];

  if (v[B_RUN] == NULL) {
    cfg_problem(L, m, where, "\"run\" is required");
  } else {
    set_mark(L, argv_item(v[B_RUN], 0), &b->run_mark);
    parse_argv(L, v[B_RUN], cfg_sub(w, where, "run"), &b->run);
  }
  if (v[B_REVERT] != NULL && v[B_ON] != NULL)
    cfg_problem(L, k[B_REVERT], cfg_sub(w, where, "revert"),
                "only a behaviour with when can revert; this one has on");
  else if (v[B_REVERT] != NULL) {
    set_mark(L, argv_item(v[B_REVERT], 0), &b->revert_mark);
    parse_argv(L, v[B_REVERT], cfg_sub(w, where, "revert"), &b->revert);
  }
  if (v[B_STATE] != NULL && v[B_ON] != NULL)
    cfg_problem(
        L, k[B_STATE], cfg_sub(w, where, "state"),
        "only a behaviour with when can claim a state; this one has on");
  else if (v[B_STATE] != NULL)
    cfg_get_state(L, v[B_STATE], cfg_sub(w, where, "state"), b->state, true);
}

static void behaviour_timing(struct loader *L, const struct ynode **v,
                             const char *where, struct config_behaviour *b) {
  char w[WHERE_MAX];

  if (v[B_SETTLE] != NULL)
    cfg_get_duration(L, v[B_SETTLE], cfg_sub(w, where, "settle"),
                     &b->settle_ms);
  if (v[B_TIMEOUT] != NULL &&
      cfg_get_duration(L, v[B_TIMEOUT], cfg_sub(w, where, "timeout"),
                       &b->timeout_ms) &&
      b->timeout_ms == 0)
    cfg_problem(L, v[B_TIMEOUT], w, "must be more than 0");
  if (v[B_RETRIES] != NULL)
    cfg_get_uint(L, v[B_RETRIES], cfg_sub(w, where, "retries"), 0, RETRIES_MAX,
                 &b->retries);
}

static void parse_behaviour(struct loader *L, const struct ynode *m,
                            const char *where, struct config_behaviour *b) {
  const struct ynode *v[B__N], *k[B__N];

  set_mark(L, m, &b->mark);
  b->timeout_ms = 30000;
  if (m->kind != Y_MAP) {
    cfg_problem(L, m, where, "expected a mapping");
    return;
  }
  cfg_map_fields(L, m, where, behaviour_keys, B__N, v, k);
  behaviour_name(L, m, v[B_NAME], where, b);
  behaviour_trigger(L, m, v, k, where, b);
  behaviour_actions(L, m, v, k, where, b);
  behaviour_timing(L, v, where, b);
  if (v[B_RUN_AS] != NULL) {
    char w[WHERE_MAX];
    parse_run_as(L, v[B_RUN_AS], cfg_sub(w, where, "run_as"), &b->run_as);
  }
  copy_vars(L, &b->nvars, &b->vars);
}

/* A new zeroed item of size bytes at the end of the list *items (n
 * items, room for *cap), grown by doubling from first; NULL when the list
 * already holds max (said at `at`, key path what) or out of memory. */
static void *add_item(struct loader *L, const struct ynode *at,
                      const char *what, void **items, size_t *n, size_t *cap,
                      size_t size, size_t first, size_t max) {
  char *item;

  if (*n == max) {
    cfg_problem(L, at, what, "more than %zu %s", max, what);
    return NULL;
  }
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : first;
    void *p = realloc(*items, c * size);
    if (p == NULL) {
      L->nomem = true;
      return NULL;
    }
    *items = p;
    *cap = c;
  }
  item = (char *)*items + (*n)++ * size;
  memset(item, 0, size);
  return item;
}

static struct config_behaviour *add_behaviour(struct loader *L,
                                              const struct ynode *at) {
  struct config *cfg = L->cfg;
  void *items = cfg->behaviours;
  struct config_behaviour *b =
      add_item(L, at, "behaviours", &items, &cfg->nbehaviours, &L->bcap,
               sizeof(*b), 8, CONFIG_BEHAVIOURS_MAX);
  cfg->behaviours = items;
  return b;
}

static void parse_behaviours(struct loader *L, const struct ynode *list) {
  char w[WHERE_MAX];
  if (!cfg_get_seq(L, list, "behaviours"))
    return;
  for (size_t i = 0; i < list->nkids; i++) {
    struct config_behaviour *b = add_behaviour(L, list->kids[i]);
    if (b == NULL)
      return;
    parse_behaviour(L, list->kids[i], cfg_nth(w, "behaviours", i), b);
  }
}

/* ---- checks ---- */

enum { C_NAME, C_RUN, C_INTERVAL, C_TIMEOUT, C_FALL, C_RISE, C_STATE, C__N };
static const char *const check_keys[] = {"name", "run",  "interval", "timeout",
                                         "fall", "rise", "state"};
_Static_assert(ARRAY_SIZE(check_keys) == C__N, "check_keys");

static void check_name(struct loader *L, const struct ynode *m,
                       const struct ynode *v, const char *where,
                       struct config_check *c) {
  const struct config *cfg = L->cfg;
  char w[WHERE_MAX];

  if (v == NULL) {
    cfg_problem(L, m, where, "\"name\" is required");
    return;
  }
  if (!cfg_get_name(L, v, cfg_sub(w, where, "name"), c->name, sizeof(c->name)))
    return;
  for (const struct config_check *o = cfg->checks; o != c; o++) {
    if (strcmp(o->name, c->name) == 0) {
      cfg_problem(L, v, w, "duplicate check name \"%s\" (first at %s:%u:%u)",
                  c->name, o->mark.file, o->mark.line, o->mark.col);
      return;
    }
  }
}

/* interval and timeout: both more than 0, the timeout the shorter. */
static void check_timing_fields(struct loader *L, const struct ynode **v,
                                const char *where, struct config_check *c) {
  char w[WHERE_MAX], t[32];
  bool ok = true;

  if (v[C_INTERVAL] != NULL &&
      (ok = cfg_get_duration(L, v[C_INTERVAL], cfg_sub(w, where, "interval"),
                             &c->interval_ms)) &&
      c->interval_ms == 0) {
    cfg_problem(L, v[C_INTERVAL], w, "must be more than 0");
    ok = false;
  }
  if (v[C_TIMEOUT] != NULL &&
      !cfg_get_duration(L, v[C_TIMEOUT], cfg_sub(w, where, "timeout"),
                        &c->timeout_ms))
    return;
  if (v[C_TIMEOUT] != NULL && c->timeout_ms == 0)
    cfg_problem(L, v[C_TIMEOUT], cfg_sub(w, where, "timeout"),
                "must be more than 0");
  else if (!ok || c->timeout_ms < c->interval_ms)
    return;
  else if (v[C_TIMEOUT] != NULL)
    cfg_problem(L, v[C_TIMEOUT], cfg_sub(w, where, "timeout"),
                "must be shorter than interval (%s)",
                fmt_ms(c->interval_ms, t, sizeof(t)));
  else
    cfg_problem(L, v[C_INTERVAL], cfg_sub(w, where, "interval"),
                "must be longer than timeout (%s)",
                fmt_ms(c->timeout_ms, t, sizeof(t)));
}

static void check_fields(struct loader *L, const struct ynode **v,
                         const char *where, struct config_check *c) {
  char w[WHERE_MAX];

  check_timing_fields(L, v, where, c);
  if (v[C_FALL] != NULL)
    cfg_get_uint(L, v[C_FALL], cfg_sub(w, where, "fall"), 1, FALL_RISE_MAX,
                 &c->fall);
  if (v[C_RISE] != NULL)
    cfg_get_uint(L, v[C_RISE], cfg_sub(w, where, "rise"), 1, FALL_RISE_MAX,
                 &c->rise);
  if (v[C_STATE] != NULL &&
      cfg_get_state(L, v[C_STATE], cfg_sub(w, where, "state"), c->state,
                    true) &&
      strcmp(c->state, "ready") == 0)
    cfg_problem(L, v[C_STATE], w, "a failing check can't claim \"ready\"");
}

static void parse_check(struct loader *L, const struct ynode *m,
                        const char *where, struct config_check *c) {
  const struct ynode *v[C__N], *k[C__N];
  char w[WHERE_MAX];

  set_mark(L, m, &c->mark);
  c->interval_ms = 5000;
  c->timeout_ms = 2000;
  c->fall = 3;
  c->rise = 2;
  snprintf(c->state, sizeof(c->state), "failed");
  if (m->kind != Y_MAP) {
    cfg_problem(L, m, where, "expected a mapping");
    return;
  }
  cfg_map_fields(L, m, where, check_keys, C__N, v, k);
  check_name(L, m, v[C_NAME], where, c);
  if (v[C_RUN] == NULL)
    cfg_problem(L, m, where, "\"run\" is required");
  else
    parse_argv(L, v[C_RUN], cfg_sub(w, where, "run"), &c->run);
  check_fields(L, v, where, c);
  copy_vars(L, &c->nvars, &c->vars);
}

static struct config_check *add_check(struct loader *L,
                                      const struct ynode *at) {
  struct config *cfg = L->cfg;
  void *items = cfg->checks;
  struct config_check *c = add_item(L, at, "checks", &items, &cfg->nchecks,
                                    &L->ccap, sizeof(*c), 4, CONFIG_CHECKS_MAX);
  cfg->checks = items;
  return c;
}

static void parse_checks(struct loader *L, const struct ynode *list) {
  char w[WHERE_MAX];
  if (!cfg_get_seq(L, list, "checks"))
    return;
  for (size_t i = 0; i < list->nkids; i++) {
    struct config_check *c = add_check(L, list->kids[i]);
    if (c == NULL)
      return;
    parse_check(L, list->kids[i], cfg_nth(w, "checks", i), c);
  }
}

/* ---- include ---- */

static bool valid_var_name(const char *s) {
  size_t n = strlen(s);
  return n >= 1 && n <= VAR_NAME_MAX && !(s[0] >= '0' && s[0] <= '9') &&
         strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_") == n;
}

/* One var: the name at kids[i] of m and its value. */
static bool parse_var(struct loader *L, const struct ynode *m, size_t i,
                      const char *where, struct include_ctx *inc) {
  const struct ynode *k = m->kids[i], *v = m->kids[i + 1];
  char w[WHERE_MAX];
  const char *s;

  if (!cfg_key_ok(L, k, where) || cfg_dup_key(L, m, i, where))
    return false;
  if (!valid_var_name(k->str)) {
    cfg_problem(L, k, where,
                "\"%s\" is not a var name (1-%d of A-Z a-z 0-9 _, not starting "
                "with a digit)",
                k->str, VAR_NAME_MAX);
    return false;
  }
  if (!cfg_get_str(L, v, cfg_sub(w, where, k->str), &s))
    return false;
  if (strlen(s) > VAR_VALUE_MAX) {
    cfg_problem(L, v, w, "longer than %d bytes", VAR_VALUE_MAX);
    return false;
  }
  inc->name[inc->nvars] = k;
  inc->value[inc->nvars++] = v;
  return true;
}

static bool parse_vars(struct loader *L, const struct ynode *m,
                       const char *where, struct include_ctx *inc) {
  bool ok = true;
  if (cfg_is_null(m))
    return true;
  if (m->kind != Y_MAP) {
    cfg_problem(L, m, where, "expected a mapping of names to values");
    return false;
  }
  if (m->nkids / 2 > CONFIG_VARS_MAX) {
    cfg_problem(L, m, where, "at most %d vars", CONFIG_VARS_MAX);
    return false;
  }
  for (size_t i = 0; i + 1 < m->nkids; i += 2)
    ok &= parse_var(L, m, i, where, inc);
  return ok;
}

enum { INC_FILE, INC_VARS, INC__N };
static const char *const include_keys[] = {"file", "vars"};

/* An include entry: a path, or {file, vars}. *file receives the path's
 * node. Returns false if the entry can't be followed (said why). */
static bool include_entry(struct loader *L, const struct ynode *it,
                          const char *where, const struct ynode **file,
                          struct include_ctx *inc) {
  const struct ynode *v[INC__N], *k[INC__N];
  char w[WHERE_MAX];
  const char *s;

  if (cfg_is_string(it)) {
    *file = it;
    return true;
  }
  if (it->kind != Y_MAP) {
    cfg_problem(L, it, where,
                "expected a file name, or a mapping with file and "
                "vars");
    return false;
  }
  cfg_map_fields(L, it, where, include_keys, INC__N, v, k);
  if (v[INC_FILE] == NULL) {
    cfg_problem(L, it, where, "\"file\" is required");
    return false;
  }
  if (!cfg_get_str(L, v[INC_FILE], cfg_sub(w, where, "file"), &s))
    return false;
  *file = v[INC_FILE];
  return v[INC_VARS] == NULL ||
         parse_vars(L, v[INC_VARS], cfg_sub(w, where, "vars"), inc);
}

/* The vars of inc sorted by name, as one string to compare includes. */
static char *vars_signature(const struct include_ctx *inc) {
  size_t order[CONFIG_VARS_MAX];
  struct strbuf b = {0};
  char len[32];

  for (size_t i = 0; i < inc->nvars; i++) {
    size_t j = i;
    for (; j > 0 && strcmp(inc->name[order[j - 1]]->str, inc->name[i]->str) > 0;
         j--)
      order[j] = order[j - 1];
    order[j] = i;
  }
  for (size_t i = 0; i < inc->nvars; i++) {
    const char *value = inc->value[order[i]]->str;
    snprintf(len, sizeof(len), "=%zu:", strlen(value));
    cfg_sb_str(&b, inc->name[order[i]]->str);
    cfg_sb_str(&b, len);
    cfg_sb_str(&b, value);
  }
  return cfg_sb_take(&b);
}

/* Remember an include; false if the same file with the same vars was
 * already included (said where). */
static bool first_inclusion(struct loader *L, const struct ynode *it,
                            const struct ynode *file, const char *full,
                            const char *where, const struct include_ctx *inc) {
  char real[PATH_MAX], *sig;
  struct seen_include *s;

  if (realpath(full, real) == NULL) {
    cfg_problem(L, file, where, "%s: %s", full, strerror(errno));
    return false;
  }
  if ((sig = vars_signature(inc)) == NULL) {
    L->nomem = true;
    return false;
  }
  for (size_t i = 0; i < L->nseen; i++) {
    s = &L->seen[i];
    if (strcmp(s->real, real) == 0 && strcmp(s->sig, sig) == 0) {
      cfg_problem(L, it, where,
                  "%s is already included with the same vars at %s:%u:%u", full,
                  L->file, s->line, s->col);
      free(sig);
      return false;
    }
  }
  s = &L->seen[L->nseen];
  if ((s->real = strdup(real)) == NULL) {
    L->nomem = true;
    free(sig);
    return false;
  }
  s->sig = sig;
  s->line = it->line;
  s->col = it->col;
  L->nseen++;
  return true;
}

static void walk_top(struct loader *L, const struct ynode *root, bool pack);

/* Read the pack at full with the vars of inc; at and where name the
 * include entry for messages about the pack as a whole. */
static void read_pack(struct loader *L, const struct ynode *at,
                      const char *full, const char *where,
                      struct include_ctx *inc) {
  const char *saved_file = L->file;
  char saved_dir[CONFIG_PATH_MAX], w[WHERE_MAX];
  struct ynode *root = NULL;
  char *buf = NULL;
  size_t len;
  int rv;

  if (cfg_read_file(L, full, at, where, &buf, &len) != 0)
    return;
  memcpy(saved_dir, L->dir, sizeof(saved_dir));
  if ((rv = cfg_dir_of(full, L->dir, sizeof(L->dir))) != 0)
    cfg_problem(L, at, where, "%s: path too long", full);
  L->file = full;
  L->inc = inc;
  L->expanded = 0;
  if (rv == 0 && (rv = cfg_parse_yaml(L, buf, len, &root)) == 0)
    walk_top(L, root, true);
  free(buf);
  L->file = saved_file;
  L->inc = NULL;
  memcpy(L->dir, saved_dir, sizeof(L->dir));
  for (size_t i = 0; rv == 0 && i < inc->nvars; i++)
    if (!inc->used[i])
      cfg_problem(L, inc->name[i], cfg_sub(w, where, "vars"),
                  "\"%s\" is not used in %s", inc->name[i]->str, full);
  cfg_ynode_free(root);
}

static void parse_include(struct loader *L, const struct ynode *it,
                          const char *where) {
  struct include_ctx inc;
  const struct ynode *file;
  char full[CONFIG_PATH_MAX];

  memset(&inc, 0, sizeof(inc));
  inc.file = L->file;
  inc.line = it->line;
  inc.col = it->col;
  if (!include_entry(L, it, where, &file, &inc))
    return;
  if (cfg_join_path(L->dir, file->str, full, sizeof(full)) != 0) {
    cfg_problem(L, file, where, "%s: path too long", file->str);
    return;
  }
  if (first_inclusion(L, it, file, full, where, &inc))
    read_pack(L, file, full, where, &inc);
}

static void parse_includes(struct loader *L, const struct ynode *list) {
  char w[WHERE_MAX];
  if (!cfg_get_seq(L, list, "include"))
    return;
  if (list->nkids > CONFIG_INCLUDES_MAX) {
    cfg_problem(L, list, "include", "at most %d files", CONFIG_INCLUDES_MAX);
    return;
  }
  for (size_t i = 0; i < list->nkids; i++)
    parse_include(L, list->kids[i], cfg_nth(w, "include", i));
}

/* ---- The file as a whole ---- */

enum {
  TOP_NODE,
  TOP_NETWORK,
  TOP_CONTROL,
  TOP_STATE_DIR,
  TOP_SYNC,
  TOP_HTTP,
  TOP_IDENTITY,
  TOP_INCLUDE,
  TOP_LOG,
  TOP_DEFAULTS,
  TOP_CHECKS,
  TOP_BEHAVIOURS,
  TOP__N
};
static const char *const top_keys[] = {
    "node",     "network", "control", "state_dir", "sync",   "http",
    "identity", "include", "log",     "defaults",  "checks", "behaviours"};
_Static_assert(ARRAY_SIZE(top_keys) == TOP__N, "top_keys");

/* A section of the main file only, met in a pack: say so. */
static bool refuse_in_pack(struct loader *L, const struct ynode *key) {
  for (int i = 0; cfg_is_string(key) && i < TOP_CHECKS; i++) {
    if (strcmp(key->str, top_keys[i]) == 0) {
      cfg_problem(L, key, key->str, "%s",
                  i == TOP_INCLUDE
                      ? "an included file can't include other files"
                      : "not allowed in an included file (only behaviours and "
                        "checks)");
      return true;
    }
  }
  return false;
}

static void section(struct loader *L, int i, const struct ynode *v) {
  struct config *cfg = L->cfg;

  switch (i) {
  case TOP_NODE:
    parse_node(L, v);
    break;
  case TOP_NETWORK:
    parse_network(L, v);
    break;
  case TOP_CONTROL:
    parse_control(L, v);
    break;
  case TOP_STATE_DIR:
    cfg_get_path(L, v, "state_dir", cfg->state_dir, sizeof(cfg->state_dir));
    break;
  case TOP_SYNC:
    parse_sync(L, v);
    break;
  case TOP_HTTP:
    parse_http(L, v);
    break;
  case TOP_IDENTITY:
    parse_identity(L, v);
    break;
  case TOP_INCLUDE:
    parse_includes(L, v);
    break;
  case TOP_LOG:
    parse_log(L, v);
    break;
  case TOP_DEFAULTS:
    parse_defaults(L, v);
    break;
  case TOP_CHECKS:
    parse_checks(L, v);
    break;
  default:
    parse_behaviours(L, v);
    break;
  }
}

/* The sections of a file, each read as soon as its key is: problems come
 * in file order, and behaviours and checks of includes keep their place. */
static void walk_top(struct loader *L, const struct ynode *root, bool pack) {
  const struct ynode *k[TOP__N];
  size_t first;

  if (root == NULL || cfg_is_null(root))
    return;
  if (root->kind != Y_MAP) {
    cfg_problem(L, root, "", "expected a mapping of sections (%s)",
                pack ? "behaviours, checks" : "node, network, control, ...");
    return;
  }
  /* A pack may hold the last two sections only. */
  first = pack ? TOP_CHECKS : 0;
  for (size_t j = 0; j < TOP__N; j++)
    k[j] = NULL;
  for (size_t i = 0; i + 1 < root->nkids; i += 2) {
    size_t j;
    if (pack && refuse_in_pack(L, root->kids[i]))
      continue;
    j = first + cfg_field_at(L, root, i, "", top_keys + first, TOP__N - first,
                             k + first);
    if (j < TOP__N) {
      k[j] = root->kids[i];
      section(L, (int)j, root->kids[i + 1]);
    }
  }
}

/* ---- Loading and freeing ---- */

static struct config *config_new(void) {
  struct config *cfg = calloc(1, sizeof(*cfg));
  if (cfg == NULL)
    return NULL;
  if ((cfg->data = json_object()) == NULL) {
    free(cfg);
    return NULL;
  }
  snprintf(cfg->cluster, sizeof(cfg->cluster), "default");
  snprintf(cfg->state, sizeof(cfg->state), "ready");
  snprintf(cfg->listen, sizeof(cfg->listen), "tcp://127.0.0.1:7410");
  snprintf(cfg->advertise, sizeof(cfg->advertise), "%s", cfg->listen);
  snprintf(cfg->socket, sizeof(cfg->socket), "%s", CHOREO_DEFAULT_SOCKET);
  snprintf(cfg->state_dir, sizeof(cfg->state_dir), "/var/lib/choreo");
  cfg->heartbeat_ms = 1000;
  cfg->lost_after_ms = 5000;
  cfg->max_members = CONFIG_MEMBERS_DEFAULT;
  cfg->reap_after_ms = 24 * 3600 * 1000;
  cfg->socket_mode = 0660;
  cfg->log_level = LOG_LEVEL_INFO;
  return cfg;
}

/* Read the main file at L->file into L->cfg. */
static void load_main(struct loader *L) {
  struct ynode *root = NULL;
  char *buf = NULL;
  size_t len;
  int rv;

  if (strlen(L->file) >= CONFIG_PATH_MAX ||
      cfg_dir_of(L->file, L->dir, sizeof(L->dir)) != 0) {
    cfg_problem_at(L, L->file, 1, 1, "", "path longer than %d bytes",
                   CONFIG_PATH_MAX - 1);
    return;
  }
  if (cfg_read_file(L, L->file, NULL, "", &buf, &len) != 0)
    return;
  rv = cfg_parse_yaml(L, buf, len, &root);
  free(buf);
  if (rv == 0) {
    walk_top(L, root, false);
    default_name(L);
    check_identity(L);
    settle_run_as(L);
  }
  cfg_ynode_free(root);
}

int config_load(const char *path, struct config **out,
                struct config_errors *errs) {
  struct config_errors none;
  struct loader *L = calloc(1, sizeof(*L));
  int rv = 0;

  *out = NULL;
  if (errs == NULL)
    errs = &none;
  memset(errs, 0, sizeof(*errs));
  if (L == NULL || (L->cfg = config_new()) == NULL) {
    free(L);
    return CHOREO_ENOMEM;
  }
  L->errs = errs;
  L->file = path;
  load_main(L);
  if (L->nomem)
    rv = CHOREO_ENOMEM;
  else if (errs->n > 0 || errs->more > 0)
    rv = CHOREO_ECONFIG;
  for (size_t i = 0; i < L->nseen; i++) {
    free(L->seen[i].real);
    free(L->seen[i].sig);
  }
  if (rv == 0)
    *out = L->cfg;
  else
    config_free(L->cfg);
  free(L);
  if (errs == &none)
    config_errors_free(&none);
  return rv;
}

void config_free(struct config *cfg) {
  if (cfg == NULL)
    return;
  for (size_t i = 0; i < cfg->nbehaviours; i++) {
    argv_free(&cfg->behaviours[i].run);
    argv_free(&cfg->behaviours[i].revert);
    util_strv_free(cfg->behaviours[i].vars);
  }
  for (size_t i = 0; i < cfg->nchecks; i++) {
    argv_free(&cfg->checks[i].run);
    util_strv_free(cfg->checks[i].vars);
  }
  free(cfg->behaviours);
  free(cfg->checks);
  json_decref(cfg->data);
  id_key_wipe(&cfg->identity_key);
  free(cfg);
}

void config_errors_free(struct config_errors *errs) {
  if (errs == NULL)
    return;
  for (size_t i = 0; i < errs->n; i++)
    free(errs->msg[i]);
  errs->n = 0;
  errs->more = 0;
}
