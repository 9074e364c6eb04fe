/*
 * agent_control.c — what the agent answers on its control socket. Every
 * request is a JSON object {"cmd": NAME, …}; every reply is {"ok": true,
 * …} or {"ok": false, "error": MESSAGE} (docs/PROTOCOL.md "Control
 * socket"). Nothing a client sends is trusted. The control part owns the
 * control socket server (control.c); it reads this node's record and
 * declared state from the self part, applies `set` through it, and asks
 * the wiring to leave through the leave hook.
 *
 * Authority: each request is checked against what its client may do
 * (control.h, policy_control_allow()); a change carried out is written to
 * the log as one "audit:" line with who asked and what, a refusal too
 * (rate-limited), and both are counted (choreo_control_access_total).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"
#include "view.h"

/* The longest `set --for`: a year. */
#define SET_FOR_MAX_MS 31536000000LL

static struct agent *agent_of(struct ctl *c) {
  return AGENT_OF(c, ctl);
}

/* A PEER with its advertised address ("addr"; docs/PROTOCOL.md). */
static json_t *with_addr(json_t *o, const struct record *r) {
  if (o != NULL)
    json_object_set_new(o, "addr", json_string(r->addr));
  return o;
}

static json_t *self_view(struct agent *a) {
  const struct record *self = self_record(&a->self);
  return with_addr(view_peer(self, self->state, 0), self);
}

json_t *ctl_peer_list(struct ctl *c,
                      bool (*keep)(const struct peer *peer, const void *arg),
                      const void *arg, size_t *truncated) {
  struct agent *a = agent_of(c);
  uint64_t now = uv_now(&a->loop);
  json_t *list = json_array();
  size_t used = 2; /* [] */

  *truncated = 0;
  for (size_t i = 0; list != NULL && i < a->peers.n; i++) {
    const struct peer *p = a->peers.v[i];
    json_t *view;
    size_t len;
    if (!p->heard || (keep != NULL && !keep(p, arg)))
      continue;
    /* Past the bound, the rest is only counted: a forged table of
     * thousands of nodes with the largest data must not make a reply or
     * a script's input of hundreds of megabytes. */
    if (*truncated > 0) {
      (*truncated)++;
      continue;
    }
    view = with_addr(view_table_peer(p, now), p->rec);
    len = view != NULL ? json_dumpb(view, NULL, 0, JSON_COMPACT) + 1 : 0;
    if (view != NULL && used + len > CTL_LIST_BYTES_MAX) {
      json_decref(view);
      (*truncated)++;
      continue;
    }
    used += len;
    json_array_append_new(list, view);
  }
  return list;
}

static bool in_group(const struct peer *peer, const void *group) {
  return record_in_group(peer->rec, group);
}

/* Peers shown to users: those heard from, sorted by name, and with
 * "truncated": N beside them when N were left out for the bound
 * (docs/PROTOCOL.md "Control socket"). */
static json_t *with_peers(struct agent *a, json_t *reply, const char *group) {
  size_t truncated = 0;
  json_t *list = ctl_peer_list(&a->ctl, group != NULL ? in_group : NULL, group,
                               &truncated);
  if (reply == NULL || list == NULL) {
    json_decref(list);
    json_decref(reply);
    return NULL;
  }
  json_object_set_new(reply, "peers", list);
  if (truncated > 0) {
    json_object_set_new(reply, "truncated",
                        json_integer((json_int_t)truncated));
    if (log_allow("control:truncated", util_wall_ms()))
      log_warn("control: a peer list passed %zu bytes: %zu peers left out "
               "(\"truncated\")",
               CTL_LIST_BYTES_MAX, truncated);
  }
  return reply;
}

static void reply_new(struct control_client *cl, json_t *reply) {
  if (reply == NULL) {
    control_reply_error(cl, "out of memory");
    return;
  }
  control_reply(cl, reply);
  json_decref(reply);
}

/* Another address that claimed this node's name (docs/PROTOCOL.md "Two
 * agents with one name"): "name_conflict" in the status reply, absent
 * when there is none. */
static json_t *with_conflict(struct agent *a, json_t *reply) {
  const struct policy_rival *r = net_rival(&a->net);
  if (r != NULL && reply != NULL)
    json_object_set_new(reply, "name_conflict",
                        json_pack("{s:s, s:I, s:b}", "addr", r->addr, "since",
                                  (json_int_t)r->since_wall, "live",
                                  r->confirmed));
  return reply;
}

/* A `set --for` running: "until" (unix ms) and "then" (the state it
 * returns to) in reply's object `key` (NULL: reply itself). */
static json_t *with_expiry(struct agent *a, json_t *reply, const char *key) {
  const char *then;
  int64_t until = self_expiry(&a->self, &then);
  json_t *o = key != NULL ? json_object_get(reply, key) : reply;

  if (until > 0 && o != NULL) {
    json_object_set_new(o, "until", json_integer((json_int_t)until));
    json_object_set_new(o, "then", json_string(then));
  }
  return reply;
}

json_t *ctl_status(struct ctl *c) {
  struct agent *a = agent_of(c);
  const char *declared, *declared_reason;
  self_declared(&a->self, &declared, &declared_reason);
  /* "declared" is the state set by hand (choreo set, run-in), which the
   * shown state may differ from while a check or behaviour claims one. */
  json_t *reply =
      json_pack("{s:b, s:o, s:{s:s, s:s}}", "ok", 1, "node", self_view(a),
                "declared", "state", declared, "reason", declared_reason);
  return with_conflict(a,
                       with_expiry(a, with_peers(a, reply, NULL), "declared"));
}

json_t *ctl_peers(struct ctl *c) {
  size_t truncated = 0;
  return ctl_peer_list(c, NULL, NULL, &truncated);
}

static void do_status(struct agent *a, struct control_client *cl, json_t *req) {
  reply_new(cl, ctl_status(&a->ctl));
}

static void do_peers(struct agent *a, struct control_client *cl, json_t *req) {
  json_t *g = json_object_get(req, "group");
  if (g != NULL &&
      (!json_is_string(g) || !choreo_valid_name(json_string_value(g)))) {
    control_reply_error(cl, "peers: \"group\" must be a valid group name");
    return;
  }
  reply_new(cl, with_peers(a, json_pack("{s:b}", "ok", 1),
                           g ? json_string_value(g) : NULL));
}

static void do_set(struct agent *a, struct control_client *cl, json_t *req) {
  json_t *state = json_object_get(req, "state");
  json_t *reason = json_object_get(req, "reason");
  json_t *data = json_object_get(req, "data");
  json_t *for_ms = json_object_get(req, "for_ms");
  json_t *empty = NULL;
  const char *why = "invalid request";
  int rv;

  if (!json_is_string(state) || (reason != NULL && !json_is_string(reason)) ||
      (data != NULL && !json_is_object(data))) {
    control_reply_error(cl, "set: needs \"state\" (string), optional "
                            "\"reason\" (string) and \"data\" (object)");
    return;
  }
  if (for_ms != NULL &&
      (!json_is_integer(for_ms) || json_integer_value(for_ms) <= 0 ||
       json_integer_value(for_ms) > SET_FOR_MAX_MS)) {
    control_reply_error(cl, "set: \"for_ms\" must be a whole number of ms "
                            "from 1 to 31536000000 (a year)");
    return;
  }
  if (data == NULL)
    data = empty = json_object();
  rv = self_set_for(&a->self, json_string_value(state),
                    reason != NULL ? json_string_value(reason) : NULL, data,
                    for_ms ? (uint64_t)json_integer_value(for_ms) : 0, &why);
  json_decref(empty);
  if (rv != 0) {
    control_reply_error(cl, "set: %s", why);
    return;
  }
  reply_new(
      cl, with_expiry(a, json_pack("{s:b, s:o}", "ok", 1, "node", self_view(a)),
                      NULL));
}

/* {"cmd": "force-leave", "node": NAME, "force": bool}: mark a member
 * left in this agent's table (peers_force_leave; docs/CLI.md). */
static void do_force_leave(struct agent *a, struct control_client *cl,
                           json_t *req) {
  json_t *node = json_object_get(req, "node"), *force;
  const char *name;
  int rv;

  force = json_object_get(req, "force");
  if (!json_is_string(node) || !choreo_valid_name(json_string_value(node)) ||
      (force != NULL && !json_is_boolean(force))) {
    control_reply_error(cl, "force-leave: needs \"node\" (a valid name) and "
                            "optional \"force\" (boolean)");
    return;
  }
  name = json_string_value(node);
  rv = peers_force_leave(&a->peers, name, json_is_true(force), uv_now(&a->loop),
                         util_wall_ms());
  if (rv == CHOREO_ENOTFOUND)
    control_reply_error(cl, "force-leave: %s is not a member", name);
  else if (rv == CHOREO_EINVAL)
    control_reply_error(cl, "force-leave: %s has left already", name);
  else if (rv == CHOREO_EREFUSED)
    control_reply_error(cl,
                        "force-leave: %s is alive (heard within "
                        "lost_after); add --force to mark it left anyway",
                        name);
  else {
    log_info("force-leave: %s marked left on request", name);
    reply_new(cl, json_pack("{s:b, s:s}", "ok", 1, "node", name));
  }
}

static void do_watch(struct agent *a, struct control_client *cl, json_t *req) {
  reply_new(cl, json_pack("{s:b}", "ok", 1));
  control_watch(cl);
}

static void do_metrics(struct agent *a, struct control_client *cl,
                       json_t *req) {
  char *text = NULL;
  /* The same text as the HTTP endpoint's /metrics (agent.c); a control
   * part run alone (the fuzz target) has the counters only. */
  int rv = a->ctl.metrics_text != NULL ? a->ctl.metrics_text(&a->ctl, &text)
                                       : metrics_render(&a->metrics, &text);
  if (rv != 0) {
    control_reply_error(cl, "out of memory");
    return;
  }
  reply_new(cl, json_pack("{s:b, s:s}", "ok", 1, "text", text));
  free(text);
}

static void do_leave(struct agent *a, struct control_client *cl, json_t *req) {
  reply_new(cl, json_pack("{s:b}", "ok", 1));
  log_info("leave requested on the control socket");
  a->ctl.leave(&a->ctl);
}

static void do_version(struct agent *a, struct control_client *cl,
                       json_t *req) {
  reply_new(cl, json_pack("{s:b, s:s}", "ok", 1, "version", CHOREO_VERSION));
}

/* Reload the configuration; the reply says whether it was applied:
 * {"ok": true, "applied": true, "behaviours", "checks", "kept": [restart-only
 * settings that changed and were kept]} or {"ok": true, "applied": false,
 * "errors": ["FILE:LINE:COL: message", ...]}. A refused reload is an
 * answered request, not a failed one. */
static void do_reload(struct agent *a, struct control_client *cl, json_t *req) {
  json_t *report;
  /* A control part run without the daemon around it (the fuzz target)
   * has nothing to reload. */
  if (a->ctl.reload == NULL) {
    control_reply_error(cl, "reload: not available here");
    return;
  }
  report = a->ctl.reload(&a->ctl);
  if (report != NULL)
    json_object_set_new(report, "ok", json_true());
  reply_new(cl, report);
}

/* `choreo revoke FILE`: {"cmd":"revoke","revocation":{…}}. The reply
 * names the node and says whether the revocation was new here. */
static void do_revoke(struct agent *a, struct control_client *cl, json_t *req) {
  const json_t *r = json_object_get(req, "revocation");
  char node[CHOREO_NAME_MAX + 1], err[ID_ERR_MAX];
  bool is_new = false;
  int rv;

  if (!json_is_object(r)) {
    control_reply_error(cl, "revoke: needs \"revocation\" (the object choreo "
                            "cert revoke prints)");
    return;
  }
  rv = agent_trust_revoke(a, r, "the control socket", node, &is_new, err);
  if (rv == CHOREO_ENOMEM)
    control_reply_error(cl, "out of memory");
  else if (rv != 0)
    control_reply_error(cl, "revoke: %s", err);
  else
    reply_new(
        cl, json_pack("{s:b, s:s, s:b}", "ok", 1, "node", node, "new", is_new));
}

static const struct {
  const char *cmd;
  void (*fn)(struct agent *a, struct control_client *cl, json_t *req);
} commands[] = {
    {"status", do_status},
    {"peers", do_peers},
    {"set", do_set},
    {"watch", do_watch},
    {"metrics", do_metrics},
    {"leave", do_leave},
    {"version", do_version},
    {"reload", do_reload},
    {"force-leave", do_force_leave},
    {"revoke", do_revoke},
};

/* ---- audit ---- */

#define AUDIT_LINE_MAX 1024 /* bytes of one audit line; longer ends "..." */

struct audit_buf {
  char s[AUDIT_LINE_MAX];
  size_t len;
  bool cut;
};

static void audit_add(struct audit_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void audit_add(struct audit_buf *b, const char *fmt, ...) {
  va_list ap;
  int n;

  if (b->cut)
    return;
  va_start(ap, fmt);
  n = vsnprintf(b->s + b->len, sizeof(b->s) - b->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(b->s) - b->len) {
    b->cut = true; /* visible truncation */
    memcpy(b->s + sizeof(b->s) - 4, "...", 4);
    b->len = sizeof(b->s) - 1;
    return;
  }
  b->len += (size_t)n;
}

/* Text from the client or the system, escaped (quoted when a value). */
static void audit_text(struct audit_buf *b, const char *s, bool quote) {
  char esc[4 * 256 + 4];
  util_escape(s, esc, sizeof(esc));
  audit_add(b, quote ? "\"%s\"" : "%s", esc);
}

/* One argument of a request: strings escaped and quoted, an object by
 * its keys (data values may be secrets), numbers and booleans as is. */
static void audit_value(struct audit_buf *b, const char *key, json_t *v) {
  const char *k;
  json_t *x;
  bool first = true;

  if (strcmp(key, "for_ms") == 0 && json_is_integer(v)) {
    audit_add(b, " --for %" PRId64 "ms", (int64_t)json_integer_value(v));
    return;
  }
  if (strcmp(key, "data") == 0 && json_is_object(v) && json_object_size(v) == 0)
    return; /* a set sends {} when it changes no data */
  audit_add(b, " ");
  audit_text(b, key, false);
  audit_add(b, " ");
  if (json_is_string(v)) {
    audit_text(b, json_string_value(v), true);
  } else if (json_is_object(v)) {
    audit_add(b, "[");
    json_object_foreach(v, k, x) {
      audit_add(b, "%s", first ? "" : ", ");
      audit_text(b, k, false);
      first = false;
    }
    audit_add(b, "]");
  } else if (json_is_integer(v)) {
    audit_add(b, "%" PRId64, (int64_t)json_integer_value(v));
  } else if (json_is_boolean(v)) {
    audit_add(b, "%s", json_is_true(v) ? "true" : "false");
  } else {
    audit_add(b, "(%s)", json_is_array(v) ? "array" : "other");
  }
}

/* "uid 0 (root) pid 4242: set maintenance reason \"x\" data [k] --for
 * 60000ms": who asked and what. The arguments every command may have
 * come first in this order, then any other in the request's order, so
 * that an argument of a command added later is written too. */
static void audit_describe(const struct control_peer *p, const char *cmd,
                           json_t *req, struct audit_buf *b) {
  static const char *const first[] = {"state", "node",   "reason",
                                      "data",  "for_ms", "force"};
  const char *key;
  json_t *v;

  audit_add(b, "uid %u", (unsigned)p->uid);
  if (p->user[0] != '\0') {
    audit_add(b, " (");
    audit_text(b, p->user, false);
    audit_add(b, ")");
  }
  audit_add(b, " pid %d: ", (int)p->pid);
  audit_text(b, cmd, false);
  for (size_t i = 0; i < ARRAY_SIZE(first); i++) {
    v = json_object_get(req, first[i]);
    if (v == NULL)
      continue;
    if (i < 2 && json_is_string(v)) { /* the object of the command */
      audit_add(b, " ");
      audit_text(b, json_string_value(v), false);
    } else {
      audit_value(b, first[i], v);
    }
  }
  json_object_foreach(req, key, v) {
    bool seen = strcmp(key, "cmd") == 0;
    for (size_t i = 0; !seen && i < ARRAY_SIZE(first); i++)
      seen = strcmp(key, first[i]) == 0;
    if (!seen)
      audit_value(b, key, v);
  }
}

/* Whether the client may send cmd; a refusal is answered, logged
 * (rate-limited) and counted here, a change carried out is audited. */
static bool authorise(struct agent *a, struct control_client *cl,
                      const char *cmd, json_t *req) {
  const struct control_peer *p = control_client_peer(cl);
  enum policy_verdict v = policy_control_allow(p->access, cmd);
  struct audit_buf b = {.len = 0};

  if (v == POLICY_ALLOW && policy_control_reads(cmd)) {
    a->metrics.control_access_read++;
    return true;
  }
  audit_describe(p, cmd, req, &b);
  if (v != POLICY_ALLOW) {
    a->metrics.control_access_denied++;
    if (log_allow("control:denied", util_wall_ms()))
      log_warn("audit: refused: %s (may only read: control.read_group)", b.s);
    control_reply_error(cl, "permission denied: uid %u may only read%s",
                        (unsigned)p->uid,
                        v == POLICY_READ_ONLY ? " (control.read_group)" : "");
    return false;
  }
  a->metrics.control_access_change++;
  log_info("audit: %s", b.s);
  return true;
}

static void on_request(struct control *server, struct control_client *cl,
                       json_t *req) {
  struct agent *a = agent_of(container_of(server, struct ctl, server));
  const char *cmd = json_string_value(json_object_get(req, "cmd"));

  if (cmd == NULL) {
    a->metrics.control_errors++;
    control_reply_error(cl, "request has no \"cmd\" string");
    return;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
    if (strcmp(commands[i].cmd, cmd) == 0) {
      if (authorise(a, cl, cmd, req))
        commands[i].fn(a, cl, req);
      return;
    }
  }
  a->metrics.control_errors++;
  control_reply_error(cl, "unknown command \"%.32s\"", cmd);
}

int ctl_start(struct ctl *c) {
  struct agent *a = agent_of(c);
  const struct control_opts opts = {
      .mode = a->cfg->socket_mode,
      .read_group = a->cfg->read_group[0] != '\0',
      .read_gid = a->cfg->read_gid,
      .agent_euid = (uint32_t)geteuid(),
  };
  int rv = control_start(&c->server, &a->loop, a->cfg->socket, &opts,
                         &a->metrics, on_request);
  if (rv != 0 && c->server.why[0] != '\0')
    log_error("control.socket: %s", c->server.why);
  else if (rv == CHOREO_EEXISTS)
    log_error("control.socket: %s: another agent is running there",
              a->cfg->socket);
  else if (rv != 0)
    log_error("control.socket: %s: %s", a->cfg->socket, choreo_strerror(rv));
  return rv;
}

void ctl_peer_event(struct ctl *c, const struct peer_event *ev) {
  json_t *o = view_event(ev), *groups = json_array();
  /* The peer's groups, so that watchers can filter by group. */
  for (size_t i = 0; groups != NULL && i < ev->peer->rec->ngroups; i++)
    json_array_append_new(groups, json_string(ev->peer->rec->groups[i]));
  if (o != NULL && groups != NULL)
    json_object_set(o, "groups", groups);
  json_decref(groups);
  if (o != NULL)
    control_broadcast(&c->server, o);
  json_decref(o);
}

static void on_control_closed(struct control *server) {}

void ctl_close(struct ctl *c) {
  control_close(&c->server, on_control_closed);
}
