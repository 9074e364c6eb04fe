/*
 * client.c — libchoreo: talks to a running agent over its control socket
 * (JSON lines, see docs/PROTOCOL.md "Control socket"). Blocking calls with
 * timeouts, meant for command-line tools and scripts; nothing here knows
 * about the agent's internals.
 */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "choreo.h"

/* Replies larger than this are refused: a status of thousands of peers is
 * a few MiB. */
#define CLIENT_REPLY_MAX (64 * 1024 * 1024)

struct choreo_client {
  int fd;
  int timeout_ms;
  char *buf; /* received bytes not yet returned as lines */
  size_t len, cap;
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The agent runs as root or as the user of its operators' tools: a socket
 * served by anyone else is someone else's, planted where ours was
 * expected, and must not be told our state changes nor believed. */
static int check_server(int fd) {
  struct ucred cred;
  socklen_t len = sizeof(cred);

  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return -errno;
  if (cred.uid != 0 && cred.uid != geteuid())
    return CHOREO_EPEERCRED;
  return 0;
}

CHOREO_EXPORT int choreo_connect(const char *socket_path, int timeout_ms,
                                 choreo_client **out) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  choreo_client *c;
  int rv;
  const char *path = socket_path != NULL ? socket_path : CHOREO_DEFAULT_SOCKET;

  *out = NULL;
  if (strlen(path) >= sizeof(sa.sun_path))
    return CHOREO_EINVAL;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return CHOREO_ENOMEM;
  c->timeout_ms = timeout_ms;
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    int err = -errno;
    free(c);
    return err;
  }
  if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int err = errno;
    close(c->fd);
    free(c);
    /* Nothing there, or a dead agent's file: both mean "no agent". */
    if (err == ENOENT || err == ECONNREFUSED || err == ENOTSOCK)
      return CHOREO_ENOAGENT;
    return -err;
  }
  if ((rv = check_server(c->fd)) != 0) {
    close(c->fd);
    free(c);
    return rv;
  }
  *out = c;
  return 0;
}

CHOREO_EXPORT void choreo_close(choreo_client *c) {
  if (c == NULL)
    return;
  close(c->fd);
  free(c->buf);
  free(c);
}

static int send_all(choreo_client *c, const char *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EPIPE || errno == ECONNRESET ? CHOREO_ECLOSED : -errno;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

static int fill(choreo_client *c, int64_t deadline) {
  struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
  ssize_t n;
  int wait = -1;

  if (deadline >= 0) {
    int64_t left = deadline - mono_ms();
    if (left <= 0)
      return CHOREO_ETIMEDOUT;
    wait = left > 60000 ? 60000 : (int)left;
  }
  n = poll(&pfd, 1, wait);
  if (n < 0)
    return -errno; /* -EINTR included: choreo_watch() lets the caller stop */
  if (n == 0)
    return deadline >= 0 && mono_ms() >= deadline ? CHOREO_ETIMEDOUT : 0;
  if (c->cap - c->len < 4096) {
    size_t cap = c->cap == 0 ? 8192 : c->cap * 2;
    char *b;
    if (cap > CLIENT_REPLY_MAX)
      return CHOREO_ETOOBIG;
    b = realloc(c->buf, cap);
    if (b == NULL)
      return CHOREO_ENOMEM;
    c->buf = b;
    c->cap = cap;
  }
  n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
  if (n < 0)
    return errno == EINTR ? 0 : -errno;
  if (n == 0)
    return CHOREO_ECLOSED;
  c->len += (size_t)n;
  return 0;
}

/* Read one line (without its newline) into a new string the caller owns. */
static int read_line(choreo_client *c, int64_t deadline, char **line) {
  for (;;) {
    char *nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL;
    int rv;
    if (nl != NULL) {
      size_t n = (size_t)(nl - c->buf);
      *line = malloc(n + 1);
      if (*line == NULL)
        return CHOREO_ENOMEM;
      memcpy(*line, c->buf, n);
      (*line)[n] = '\0';
      memmove(c->buf, nl + 1, c->len - n - 1);
      c->len -= n + 1;
      return 0;
    }
    if ((rv = fill(c, deadline)) != 0)
      return rv;
  }
}

static int64_t deadline_of(const choreo_client *c) {
  return c->timeout_ms < 0 ? -1 : mono_ms() + c->timeout_ms;
}

/* Send req and read its reply as a JSON object; "ok": false becomes
 * CHOREO_EREFUSED with *reply still set. */
static int exchange(choreo_client *c, json_t *req, json_t **reply) {
  char *text = json_dumps(req, JSON_COMPACT), *line = NULL;
  json_t *r;
  int rv;

  *reply = NULL;
  if (text == NULL)
    return CHOREO_ENOMEM;
  rv = send_all(c, text, strlen(text));
  if (rv == 0)
    rv = send_all(c, "\n", 1);
  free(text);
  if (rv == 0)
    rv = read_line(c, deadline_of(c), &line);
  if (rv != 0)
    return rv;
  r = json_loads(line, 0, NULL);
  free(line);
  if (r == NULL || !json_is_object(r) ||
      !json_is_boolean(json_object_get(r, "ok"))) {
    json_decref(r);
    return CHOREO_EPROTO;
  }
  *reply = r;
  return json_is_true(json_object_get(r, "ok")) ? 0 : CHOREO_EREFUSED;
}

CHOREO_EXPORT int choreo_request(choreo_client *c, const char *request,
                                 char **reply) {
  json_t *req = json_loads(request, 0, NULL), *r = NULL;
  int rv;

  *reply = NULL;
  if (req == NULL || !json_is_object(req)) {
    json_decref(req);
    return CHOREO_EINVAL;
  }
  rv = exchange(c, req, &r);
  json_decref(req);
  if (r != NULL) {
    *reply = json_dumps(r, JSON_COMPACT);
    json_decref(r);
    if (*reply == NULL)
      return CHOREO_ENOMEM;
  }
  return rv;
}

static void take_error(json_t *reply, char **error) {
  const char *msg = json_string_value(json_object_get(reply, "error"));
  if (error != NULL)
    *error = strdup(msg != NULL ? msg : "refused");
}

CHOREO_EXPORT int choreo_set(choreo_client *c, const char *state,
                             const char *reason, const choreo_kv *data,
                             size_t ndata, char **error) {
  return choreo_set_for(c, state, reason, data, ndata, 0, error);
}

CHOREO_EXPORT int choreo_set_for(choreo_client *c, const char *state,
                                 const char *reason, const choreo_kv *data,
                                 size_t ndata, uint64_t for_ms, char **error) {
  json_t *req, *d = json_object(), *reply = NULL;
  int rv;

  if (error != NULL)
    *error = NULL;
  for (size_t i = 0; d != NULL && i < ndata; i++)
    json_object_set_new(
        d, data[i].key,
        json_string(data[i].value != NULL ? data[i].value : ""));
  req = json_pack("{s:s, s:s, s:o}", "cmd", "set", "state", state, "data", d);
  if (req == NULL)
    return CHOREO_ENOMEM;
  if (reason != NULL)
    json_object_set_new(req, "reason", json_string(reason));
  if (for_ms > 0)
    json_object_set_new(req, "for_ms", json_integer((json_int_t)for_ms));
  rv = exchange(c, req, &reply);
  if (rv == CHOREO_EREFUSED)
    take_error(reply, error);
  json_decref(reply);
  json_decref(req);
  return rv;
}

/* ---- reload ---- */

/* Copy an array of strings; false when it isn't one (or out of memory). */
static bool take_strings(json_t *a, char ***out, size_t *n) {
  size_t len = json_array_size(a);
  *out = NULL;
  *n = 0;
  if (a == NULL)
    return true;
  if (!json_is_array(a) || (*out = calloc(len + 1, sizeof(**out))) == NULL)
    return false;
  for (size_t i = 0; i < len; i++) {
    const char *v = json_string_value(json_array_get(a, i));
    if (v == NULL || ((*out)[i] = strdup(v)) == NULL)
      return false;
    (*n)++;
  }
  return true;
}

CHOREO_EXPORT void choreo_reload_free(choreo_reload_result *r) {
  if (r == NULL)
    return;
  for (size_t i = 0; r->kept != NULL && r->kept[i] != NULL; i++)
    free(r->kept[i]);
  for (size_t i = 0; r->errors != NULL && r->errors[i] != NULL; i++)
    free(r->errors[i]);
  free(r->kept);
  free(r->errors);
  free(r);
}

CHOREO_EXPORT int choreo_reload(choreo_client *c, choreo_reload_result **out) {
  json_t *req = json_pack("{s:s}", "cmd", "reload"), *reply = NULL;
  json_t *applied, *nb, *nc;
  choreo_reload_result *r;
  int rv;

  *out = NULL;
  if (req == NULL)
    return CHOREO_ENOMEM;
  rv = exchange(c, req, &reply);
  json_decref(req);
  /* An agent that refused the request itself (one without the command,
   * say) gives its reason as the one error. */
  if (rv == CHOREO_EREFUSED && reply != NULL &&
      json_object_get(reply, "applied") == NULL) {
    json_t *err = json_object_get(reply, "error");
    json_object_set_new(reply, "applied", json_false());
    json_object_set_new(reply, "errors",
                        json_pack("[s]", json_is_string(err)
                                             ? json_string_value(err)
                                             : "refused"));
    rv = 0;
  }
  if (rv != 0 && rv != CHOREO_EREFUSED) {
    json_decref(reply);
    return rv;
  }
  applied = json_object_get(reply, "applied");
  nb = json_object_get(reply, "behaviours");
  nc = json_object_get(reply, "checks");
  if (!json_is_boolean(applied) ||
      (json_is_true(applied) &&
       (json_integer_value(nb) < 0 || json_integer_value(nc) < 0))) {
    json_decref(reply);
    return CHOREO_EPROTO;
  }
  if ((r = calloc(1, sizeof(*r))) == NULL) {
    json_decref(reply);
    return CHOREO_ENOMEM;
  }
  r->applied = json_is_true(applied);
  r->nbehaviours = (size_t)json_integer_value(nb);
  r->nchecks = (size_t)json_integer_value(nc);
  if (!take_strings(json_object_get(reply, "kept"), &r->kept, &r->nkept) ||
      !take_strings(json_object_get(reply, "errors"), &r->errors,
                    &r->nerrors)) {
    json_decref(reply);
    choreo_reload_free(r);
    return CHOREO_EPROTO;
  }
  json_decref(reply);
  *out = r;
  return r->applied ? 0 : CHOREO_EREFUSED;
}

/* ---- status ---- */

static char *dup_str(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return strdup(s != NULL ? s : "");
}

static void peer_clear(choreo_peer *p) {
  free(p->name);
  free(p->state);
  free(p->reason);
  free(p->version);
  for (size_t i = 0; i < p->ngroups; i++)
    free(p->groups[i]);
  free(p->groups);
  for (size_t i = 0; i < p->ndata; i++) {
    free(p->data[i].key);
    free(p->data[i].value);
  }
  free(p->data);
  free(p->addr);
  memset(p, 0, sizeof(*p));
}

static int peer_parse(json_t *o, choreo_peer *p) {
  json_t *groups = json_object_get(o, "groups"),
         *data = json_object_get(o, "data");
  const char *key;
  json_t *v;
  size_t i;

  if (!json_is_object(o) || !json_is_array(groups) || !json_is_object(data))
    return CHOREO_EPROTO;
  p->name = dup_str(o, "name");
  p->state = dup_str(o, "state");
  p->reason = dup_str(o, "reason");
  p->addr = dup_str(o, "addr");
  p->since_ms = json_integer_value(json_object_get(o, "since"));
  p->last_seen_ms = json_integer_value(json_object_get(o, "last_seen_ms"));
  p->clock_offset_ms =
      json_integer_value(json_object_get(o, "clock_offset_ms"));
  p->proto = -1;
  if (json_is_string(json_object_get(o, "version"))) {
    json_t *proto = json_object_get(o, "proto");
    if ((p->version = dup_str(o, "version")) == NULL)
      return CHOREO_ENOMEM;
    if (json_is_integer(proto) && json_integer_value(proto) >= 0 &&
        json_integer_value(proto) <= INT32_MAX)
      p->proto = (int)json_integer_value(proto);
  }
  p->groups = calloc(json_array_size(groups) + 1, sizeof(char *));
  p->data = calloc(json_object_size(data) + 1, sizeof(choreo_kv));
  if (p->name == NULL || p->state == NULL || p->reason == NULL ||
      p->addr == NULL || p->groups == NULL || p->data == NULL)
    return CHOREO_ENOMEM;
  json_array_foreach(groups, i, v) {
    if ((p->groups[p->ngroups] =
             strdup(json_is_string(v) ? json_string_value(v) : "")) == NULL)
      return CHOREO_ENOMEM;
    p->ngroups++;
  }
  json_object_foreach(data, key, v) {
    choreo_kv *kv = &p->data[p->ndata];
    kv->key = strdup(key);
    kv->value = strdup(json_is_string(v) ? json_string_value(v) : "");
    p->ndata++;
    if (kv->key == NULL || kv->value == NULL)
      return CHOREO_ENOMEM;
  }
  return 0;
}

CHOREO_EXPORT void choreo_status_free(choreo_status *st) {
  if (st == NULL)
    return;
  peer_clear(&st->node);
  for (size_t i = 0; i < st->npeers; i++)
    peer_clear(&st->peers[i]);
  free(st->peers);
  free(st->declared_state);
  free(st->declared_reason);
  free(st);
}

static int status_request(choreo_client *c, json_t **reply) {
  json_t *req = json_pack("{s:s}", "cmd", "status");
  int rv;
  if (req == NULL)
    return CHOREO_ENOMEM;
  rv = exchange(c, req, reply);
  json_decref(req);
  return rv;
}

CHOREO_EXPORT int choreo_status_get(choreo_client *c, choreo_status **out) {
  json_t *reply = NULL, *peers, *v;
  choreo_status *st;
  size_t i;
  int rv;

  *out = NULL;
  if ((rv = status_request(c, &reply)) != 0)
    goto done;
  peers = json_object_get(reply, "peers");
  st = calloc(1, sizeof(*st));
  if (st == NULL || !json_is_array(peers)) {
    free(st);
    rv = st == NULL ? CHOREO_ENOMEM : CHOREO_EPROTO;
    goto done;
  }
  st->peers = calloc(json_array_size(peers) + 1, sizeof(choreo_peer));
  rv = st->peers == NULL
           ? CHOREO_ENOMEM
           : peer_parse(json_object_get(reply, "node"), &st->node);
  json_array_foreach(peers, i, v) {
    if (rv != 0)
      break;
    rv = peer_parse(v, &st->peers[st->npeers++]);
  }
  if (rv == 0) {
    json_t *d = json_object_get(reply, "declared");
    st->declared_state = dup_str(d, "state");
    st->declared_reason = dup_str(d, "reason");
    if (st->declared_state == NULL || st->declared_reason == NULL)
      rv = CHOREO_ENOMEM;
  }
  if (rv != 0)
    choreo_status_free(st);
  else
    *out = st;
done:
  json_decref(reply);
  return rv;
}

CHOREO_EXPORT int choreo_status_json(choreo_client *c, char **out) {
  json_t *reply = NULL;
  int rv = status_request(c, &reply);
  *out = NULL;
  if (rv == 0) {
    /* Exactly the shape of choreo(1): {"node": PEER, "peers": [PEER...],
     * "declared": {state, reason}} (docs/schema/status.json). */
    json_object_del(reply, "ok");
    *out = json_dumps(reply, JSON_COMPACT);
    if (*out == NULL)
      rv = CHOREO_ENOMEM;
  }
  json_decref(reply);
  return rv;
}

/* ---- watch and wait ---- */

static int start_watch(choreo_client *c) {
  json_t *req = json_pack("{s:s}", "cmd", "watch"), *reply = NULL;
  int rv;
  if (req == NULL)
    return CHOREO_ENOMEM;
  rv = exchange(c, req, &reply);
  json_decref(req);
  json_decref(reply);
  return rv;
}

static int next_event(choreo_client *c, int64_t deadline, json_t **ev) {
  char *line = NULL;
  int rv = read_line(c, deadline, &line);
  if (rv != 0)
    return rv;
  *ev = json_loads(line, 0, NULL);
  free(line);
  return *ev != NULL && json_is_object(*ev) ? 0 : CHOREO_EPROTO;
}

/* The groups of an event: borrowed from the JSON object, at most
 * CHOREO_GROUPS_MAX (the agent sends no more). */
static void event_groups(json_t *o, const char **out, choreo_event *ev) {
  json_t *g = json_object_get(o, "groups"), *v;
  size_t i;
  ev->ngroups = 0;
  json_array_foreach(g, i, v) {
    if (ev->ngroups < CHOREO_GROUPS_MAX && json_is_string(v))
      out[ev->ngroups++] = json_string_value(v);
  }
  ev->groups = out;
}

/* Call cb for one event object; CHOREO_EPROTO when it is not one. */
static int deliver(json_t *o, choreo_watch_cb cb, void *arg) {
  const char *groups[CHOREO_GROUPS_MAX];
  choreo_event ev;

  ev.event = json_string_value(json_object_get(o, "event"));
  ev.peer = json_string_value(json_object_get(o, "peer"));
  ev.state = json_string_value(json_object_get(o, "state"));
  ev.previous = json_string_value(json_object_get(o, "previous"));
  ev.reason = json_string_value(json_object_get(o, "reason"));
  ev.time_ms = json_integer_value(json_object_get(o, "time"));
  if (ev.event == NULL || ev.peer == NULL || ev.state == NULL)
    return CHOREO_EPROTO;
  if (ev.previous == NULL)
    ev.previous = "";
  if (ev.reason == NULL)
    ev.reason = "";
  event_groups(o, groups, &ev);
  return cb(&ev, arg);
}

static int watch_loop(choreo_client *c, choreo_watch_cb cb, void *arg) {
  int rv = 0;
  while (rv == 0) {
    json_t *o = NULL;
    if ((rv = next_event(c, -1, &o)) != 0) {
      json_decref(o);
      break; /* -EINTR included: the caller decides whether to go on */
    }
    rv = deliver(o, cb, arg);
    json_decref(o);
  }
  return rv;
}

CHOREO_EXPORT int choreo_watch(choreo_client *c, choreo_watch_cb cb,
                               void *arg) {
  int rv = start_watch(c);
  return rv != 0 ? rv : watch_loop(c, cb, arg);
}

/* A second connection to the agent c talks to. */
static int connect_again(choreo_client *c, choreo_client **out) {
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  struct sockaddr_un sa;
  socklen_t salen = sizeof(sa);

  if (getpeername(c->fd, (struct sockaddr *)&sa, &salen) != 0)
    return -errno;
  memcpy(path, sa.sun_path, sizeof(path));
  path[sizeof(path) - 1] = '\0';
  return choreo_connect(path, c->timeout_ms, out);
}

/* One "snapshot" event per node of a status reply. */
static int snapshot_events(json_t *reply, choreo_watch_cb cb, void *arg) {
  json_t *nodes = json_array(), *v;
  size_t i;
  int rv = 0;

  if (nodes == NULL)
    return CHOREO_ENOMEM;
  json_array_append(nodes, json_object_get(reply, "node"));
  json_array_extend(nodes, json_object_get(reply, "peers"));
  json_array_foreach(nodes, i, v) {
    json_t *ev = json_pack(
        "{s:s, s:O?, s:O?, s:s, s:O?, s:O?, s:O?}", "event", "snapshot", "peer",
        json_object_get(v, "name"), "state", json_object_get(v, "state"),
        "previous", "", "reason", json_object_get(v, "reason"), "time",
        json_object_get(v, "since"), "groups", json_object_get(v, "groups"));
    rv = ev != NULL ? deliver(ev, cb, arg) : CHOREO_ENOMEM;
    json_decref(ev);
    if (rv != 0)
      break;
  }
  json_decref(nodes);
  return rv;
}

CHOREO_EXPORT int choreo_watch_snapshot(choreo_client *c, choreo_watch_cb cb,
                                        void *arg) {
  choreo_client *s = NULL;
  json_t *reply = NULL;
  int rv = start_watch(c);

  if (rv == 0 && (rv = connect_again(c, &s)) == 0 &&
      (rv = status_request(s, &reply)) == 0)
    rv = snapshot_events(reply, cb, arg);
  json_decref(reply);
  choreo_close(s);
  return rv != 0 ? rv : watch_loop(c, cb, arg);
}

/* ---- force-leave ---- */

CHOREO_EXPORT int choreo_force_leave(choreo_client *c, const char *node,
                                     bool force, char **error) {
  json_t *req = json_pack("{s:s, s:s, s:b}", "cmd", "force-leave", "node", node,
                          "force", force),
         *reply = NULL;
  int rv;

  if (error != NULL)
    *error = NULL;
  if (req == NULL)
    return CHOREO_ENOMEM;
  rv = exchange(c, req, &reply);
  if (rv == CHOREO_EREFUSED)
    take_error(reply, error);
  json_decref(reply);
  json_decref(req);
  return rv;
}

/* ---- revoke ---- */

static int revoke_result(json_t *reply, char **node_out, bool *new_out) {
  const char *node = json_string_value(json_object_get(reply, "node"));
  json_t *fresh = json_object_get(reply, "new");

  if (node == NULL || !json_is_boolean(fresh))
    return CHOREO_EPROTO;
  if (node_out != NULL && (*node_out = strdup(node)) == NULL)
    return CHOREO_ENOMEM;
  if (new_out != NULL)
    *new_out = json_is_true(fresh);
  return 0;
}

CHOREO_EXPORT int choreo_revoke(choreo_client *c, const char *revocation_json,
                                char **node_out, bool *new_out, char **error) {
  json_t *rev, *req, *reply = NULL;
  int rv;

  if (node_out != NULL)
    *node_out = NULL;
  if (new_out != NULL)
    *new_out = false;
  if (error != NULL)
    *error = NULL;
  rev = revocation_json != NULL
            ? json_loads(revocation_json, JSON_REJECT_DUPLICATES, NULL)
            : NULL;
  if (!json_is_object(rev)) {
    json_decref(rev);
    return CHOREO_EINVAL;
  }
  req = json_pack("{s:s}", "cmd", "revoke");
  /* json_object_set_new() takes rev even when it fails. */
  if (req == NULL || json_object_set_new(req, "revocation", rev) != 0) {
    if (req == NULL)
      json_decref(rev);
    json_decref(req);
    return CHOREO_ENOMEM;
  }
  rv = exchange(c, req, &reply);
  if (rv == 0)
    rv = revoke_result(reply, node_out, new_out);
  else if (rv == CHOREO_EREFUSED)
    take_error(reply, error);
  json_decref(reply);
  json_decref(req);
  return rv;
}

static bool peer_selected(const choreo_peer *p, const char *node,
                          const char *group) {
  if (node != NULL && strcmp(p->name, node) != 0)
    return false;
  if (group != NULL) {
    for (size_t i = 0; i < p->ngroups; i++)
      if (strcmp(p->groups[i], group) == 0)
        return true;
    return false;
  }
  return true;
}

/* The states of a comma-separated list, each valid; false otherwise. */
struct state_list {
  char buf[CHOREO_WAIT_STATES_MAX * (CHOREO_STATE_MAX + 1)];
  const char *v[CHOREO_WAIT_STATES_MAX];
  size_t n;
};

static bool split_states(const char *list, struct state_list *out) {
  char *p, *save = NULL;

  out->n = 0;
  if (strlen(list) >= sizeof(out->buf) || list[0] == ',' ||
      list[strlen(list) - 1] == ',' || strstr(list, ",,") != NULL)
    return false;
  memcpy(out->buf, list, strlen(list) + 1);
  for (p = strtok_r(out->buf, ",", &save); p != NULL;
       p = strtok_r(NULL, ",", &save)) {
    if (out->n == CHOREO_WAIT_STATES_MAX || !choreo_valid_state(p))
      return false;
    out->v[out->n++] = p;
  }
  return out->n > 0;
}

static bool in_states(const char *state, const struct state_list *l) {
  for (size_t i = 0; i < l->n; i++)
    if (strcmp(state, l->v[i]) == 0)
      return true;
  return false;
}

/* any: one selected peer in a state; all: at least one, and every one. */
static bool holds(const choreo_status *st, const char *node, const char *group,
                  bool all, const struct state_list *states) {
  size_t selected = 0, in_state = 0;
  const choreo_peer *self = &st->node;
  if (peer_selected(self, node, group)) {
    selected++;
    in_state += in_states(self->state, states);
  }
  for (size_t i = 0; i < st->npeers; i++) {
    if (!peer_selected(&st->peers[i], node, group) ||
        strcmp(st->peers[i].state, "left") == 0)
      continue;
    selected++;
    in_state += in_states(st->peers[i].state, states);
  }
  return all ? selected > 0 && in_state == selected : in_state > 0;
}

CHOREO_EXPORT int choreo_wait(choreo_client *c, const char *node,
                              const char *group, bool all, const char *state,
                              int64_t timeout_ms) {
  int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
  choreo_client *w = NULL;
  struct state_list states;
  int rv;

  if (state == NULL || !split_states(state, &states))
    return CHOREO_EINVAL;
  /* Events come on a second connection; each one triggers a fresh status
   * on this one, so nothing between the two can be missed. */
  if ((rv = connect_again(c, &w)) != 0 || (rv = start_watch(w)) != 0)
    goto done;
  for (;;) {
    choreo_status *st = NULL;
    json_t *ev = NULL;
    bool ok;
    if ((rv = choreo_status_get(c, &st)) != 0)
      break;
    ok = holds(st, node, group, all, &states);
    choreo_status_free(st);
    if (ok)
      break;
    do {
      json_decref(ev);
      ev = NULL;
      rv = next_event(w, deadline, &ev);
    } while (rv == -EINTR ||
             (rv == 0 && w->len > 0 && memchr(w->buf, '\n', w->len)));
    json_decref(ev);
    if (rv != 0)
      break;
  }
done:
  choreo_close(w);
  return rv;
}
