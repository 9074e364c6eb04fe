/*
 * test_client.c — libchoreo, the public client API, against a fake agent:
 * a thread per connection on a unix socket in a temporary directory that
 * answers each request line with a scripted reply. Each public call is
 * tested for success, the agent's refusal, a malformed reply, no agent, a
 * silent agent and an oversized reply; and a socket served by another user
 * is refused (SO_PEERCRED).
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "choreo.h"

#define CONNS_MAX 16
#define REQS_MAX 16
#define TIMEOUT_MS 2000

/* How the fake agent answers. */
enum mode {
  SCRIPT,  /* the next of replies[] for each request, then close */
  BY_CMD,  /* status: status_reply; watch: ok, then events, then close */
  SILENT,  /* read requests, answer nothing */
  FLOOD,   /* answer with bytes and never a newline */
  NOREPLY, /* close at the first request */
};

struct fake {
  char dir[64];
  char path[108];
  int lfd;
  enum mode mode;
  const char *replies[8];
  size_t nreplies, next;
  const char *status_reply; /* BY_CMD */
  const char *events;       /* BY_CMD: lines sent after a watch's ok */
  pthread_t acceptor, conn[CONNS_MAX];
  int fds[CONNS_MAX];
  size_t nconn;
  pthread_mutex_t lock;
  char req[REQS_MAX][2048];
  size_t nreq;
};

struct conn_arg {
  struct fake *f;
  int fd;
};

static int send_str(int fd, const char *s) {
  size_t len = strlen(s);
  while (len > 0) {
    ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
    if (n <= 0)
      return -1;
    s += n;
    len -= (size_t)n;
  }
  return 0;
}

/* One request line into buf; false at the end of the connection. */
static bool read_req(int fd, char *buf, size_t len) {
  size_t n = 0;
  char ch;
  while (recv(fd, &ch, 1, 0) == 1) {
    if (ch == '\n') {
      buf[n] = '\0';
      return true;
    }
    if (n + 1 < len)
      buf[n++] = ch;
  }
  return false;
}

static const char *answer(struct fake *f, const char *req) {
  const char *reply = NULL;
  pthread_mutex_lock(&f->lock);
  if (f->nreq < REQS_MAX)
    snprintf(f->req[f->nreq++], sizeof(f->req[0]), "%s", req);
  if (f->mode == SCRIPT && f->next < f->nreplies)
    reply = f->replies[f->next++];
  pthread_mutex_unlock(&f->lock);
  if (f->mode == BY_CMD)
    reply =
        strstr(req, "\"watch\"") != NULL ? "{\"ok\":true}\n" : f->status_reply;
  return reply;
}

static void *serve(void *p) {
  struct conn_arg *a = p;
  struct fake *f = a->f;
  char req[4096], junk[65536];
  int fd = a->fd;

  free(a);
  memset(junk, 'x', sizeof(junk));
  while (read_req(fd, req, sizeof(req))) {
    const char *reply = answer(f, req);
    if (f->mode == SILENT)
      continue;
    if (f->mode == FLOOD) {
      while (send(fd, junk, sizeof(junk), MSG_NOSIGNAL) > 0)
        ;
      break;
    }
    if (reply == NULL || send_str(fd, reply) != 0)
      break;
    if (f->mode == BY_CMD && strstr(req, "\"watch\"") != NULL) {
      if (f->events != NULL)
        send_str(fd, f->events);
      if (f->events != NULL)
        break;
      /* no events: stay silent until the client goes */
      while (recv(fd, junk, sizeof(junk), 0) > 0)
        ;
      break;
    }
  }
  shutdown(fd, SHUT_RDWR);
  return NULL;
}

static void *accept_loop(void *p) {
  struct fake *f = p;
  for (;;) {
    int fd = accept(f->lfd, NULL, NULL);
    struct conn_arg *a;
    if (fd < 0)
      return NULL;
    pthread_mutex_lock(&f->lock);
    if (f->nconn == CONNS_MAX || (a = malloc(sizeof(*a))) == NULL) {
      pthread_mutex_unlock(&f->lock);
      close(fd);
      continue;
    }
    a->f = f;
    a->fd = fd;
    f->fds[f->nconn] = fd;
    pthread_create(&f->conn[f->nconn++], NULL, serve, a);
    pthread_mutex_unlock(&f->lock);
  }
}

static int listen_at(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      listen(fd, 8) != 0)
    return -1;
  return fd;
}

static int setup(void **state) {
  struct fake *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "/tmp/choreo-client-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->path, sizeof(f->path), "%s/agent.sock", f->dir);
  f->lfd = -1;
  pthread_mutex_init(&f->lock, NULL);
  *state = f;
  return 0;
}

/* Start serving in mode with the given replies (NULL-terminated). */
static void start(struct fake *f, enum mode mode, ...) {
  va_list ap;
  const char *r;
  f->mode = mode;
  va_start(ap, mode);
  while ((r = va_arg(ap, const char *)) != NULL)
    f->replies[f->nreplies++] = r;
  va_end(ap);
  f->lfd = listen_at(f->path);
  assert_true(f->lfd >= 0);
  assert_int_equal(pthread_create(&f->acceptor, NULL, accept_loop, f), 0);
}

static int teardown(void **state) {
  struct fake *f = *state;
  char path[128];
  if (f->lfd >= 0) {
    shutdown(f->lfd, SHUT_RDWR);
    pthread_join(f->acceptor, NULL);
    close(f->lfd);
  }
  for (size_t i = 0; i < f->nconn; i++) {
    shutdown(f->fds[i], SHUT_RDWR);
    pthread_join(f->conn[i], NULL);
    close(f->fds[i]);
  }
  unlink(f->path);
  snprintf(path, sizeof(path), "%s/file", f->dir);
  unlink(path);
  rmdir(f->dir);
  pthread_mutex_destroy(&f->lock);
  free(f);
  return 0;
}

static choreo_client *connect_ok(struct fake *f, int timeout_ms) {
  choreo_client *c = NULL;
  assert_int_equal(choreo_connect(f->path, timeout_ms, &c), 0);
  assert_non_null(c);
  return c;
}

/* The request the fake agent received as JSON (a new reference). */
static json_t *request(struct fake *f, size_t i) {
  json_t *j;
  pthread_mutex_lock(&f->lock);
  assert_true(i < f->nreq);
  j = json_loads(f->req[i], 0, NULL);
  pthread_mutex_unlock(&f->lock);
  assert_non_null(j);
  return j;
}

/* ---- connect ---- */

static void connect_without_agent_says_no_agent(void **state) {
  struct fake *f = *state;
  choreo_client *c = (choreo_client *)1;
  char path[128];
  FILE *fp;

  assert_int_equal(choreo_connect(f->path, TIMEOUT_MS, &c), CHOREO_ENOAGENT);
  assert_null(c);
  /* a dead agent's socket file, and a file that is not a socket */
  snprintf(path, sizeof(path), "%s/file", f->dir);
  fp = fopen(path, "w");
  assert_non_null(fp);
  fclose(fp);
  assert_int_equal(choreo_connect(path, TIMEOUT_MS, &c), CHOREO_ENOAGENT);
  close(listen_at(f->path));
  assert_int_equal(choreo_connect(f->path, TIMEOUT_MS, &c), CHOREO_ENOAGENT);
  unlink(f->path);
}

static void connect_refuses_a_path_too_long_for_a_socket(void **state) {
  char path[200];
  choreo_client *c = NULL;
  (void)state;
  memset(path, 'a', sizeof(path) - 1);
  path[0] = '/';
  path[sizeof(path) - 1] = '\0';
  assert_int_equal(choreo_connect(path, TIMEOUT_MS, &c), CHOREO_EINVAL);
  assert_null(c);
}

static void connect_refuses_a_socket_served_by_another_user(void **state) {
  struct fake *f = *state;
  choreo_client *c = NULL;
  int ready[2], status;
  char b;
  pid_t pid;

  if (geteuid() != 0)
    skip(); /* serving as another user needs root */
  assert_int_equal(chmod(f->dir, 0777), 0);
  assert_int_equal(pipe(ready), 0);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    /* SO_PEERCRED reports who called listen(): drop to nobody first. */
    int fd;
    close(ready[0]);
    if (setgid(65534) != 0 || setuid(65534) != 0)
      _exit(1);
    if ((fd = listen_at(f->path)) < 0)
      _exit(2);
    if (write(ready[1], "x", 1) != 1)
      _exit(3);
    fd = accept(fd, NULL, NULL);
    _exit(fd >= 0 ? 0 : 4);
  }
  close(ready[1]);
  assert_int_equal(read(ready[0], &b, 1), 1);
  close(ready[0]);
  assert_int_equal(choreo_connect(f->path, TIMEOUT_MS, &c), CHOREO_EPEERCRED);
  assert_null(c);
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  assert_string_equal(choreo_err_name(CHOREO_EPEERCRED), "CHOREO_EPEERCRED");
}

/* ---- request ---- */

static void request_returns_the_reply(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *reply = NULL;
  start(f, SCRIPT, "{\"ok\":true,\"n\":1}\n", NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_request(c, "{\"cmd\":\"x\"}", &reply), 0);
  assert_string_equal(reply, "{\"ok\":true,\"n\":1}");
  free(reply);
  choreo_close(c);
}

static void request_refuses_what_is_not_a_json_object(void **state) {
  struct fake *f = *state;
  static const char *const bad[] = {"", "nope", "[1]", "{\"cmd\":", "3"};
  choreo_client *c;
  char *reply = (char *)1;
  start(f, SCRIPT, NULL);
  c = connect_ok(f, TIMEOUT_MS);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(choreo_request(c, bad[i], &reply), CHOREO_EINVAL);
    assert_null(reply);
  }
  choreo_close(c);
  assert_int_equal(f->nreq, 0);
}

static void request_reports_a_refusal_with_the_reply(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *reply = NULL;
  start(f, SCRIPT, "{\"ok\":false,\"error\":\"no\"}\n", NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_request(c, "{\"cmd\":\"x\"}", &reply),
                   CHOREO_EREFUSED);
  assert_string_equal(reply, "{\"ok\":false,\"error\":\"no\"}");
  free(reply);
  choreo_close(c);
}

/* Replies that are not the protocol's, each on a fresh connection. */
static void request_refuses_malformed_replies(void **state) {
  struct fake *f = *state;
  static const char *const bad[] = {
      "not json\n",          "[true]\n",
      "{\"ok\":1}\n",        "{\"error\":\"x\"}\n",
      "{\"ok\":\"true\"}\n", "\"ok\"\n",
      "{\"ok\":true\n",
  };
  start(f, SCRIPT, bad[0], bad[1], bad[2], bad[3], bad[4], bad[5], bad[6],
        NULL);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    choreo_client *c = connect_ok(f, TIMEOUT_MS);
    char *reply = (char *)1;
    if (choreo_request(c, "{\"cmd\":\"x\"}", &reply) != CHOREO_EPROTO)
      fail_msg("reply %zu (%s) was not refused", i, bad[i]);
    assert_null(reply);
    choreo_close(c);
  }
}

static void request_reports_a_closed_connection(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *reply = NULL;
  start(f, NOREPLY, NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_request(c, "{\"cmd\":\"x\"}", &reply),
                   CHOREO_ECLOSED);
  assert_null(reply);
  choreo_close(c);
}

static void request_times_out_on_a_silent_agent(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *reply = NULL;
  start(f, SILENT, NULL);
  c = connect_ok(f, 200);
  assert_int_equal(choreo_request(c, "{\"cmd\":\"x\"}", &reply),
                   CHOREO_ETIMEDOUT);
  assert_null(reply);
  choreo_close(c);
}

static void request_refuses_an_oversized_reply(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *reply = NULL;
  start(f, FLOOD, NULL);
  c = connect_ok(f, 20000);
  assert_int_equal(choreo_request(c, "{\"cmd\":\"x\"}", &reply),
                   CHOREO_ETOOBIG);
  assert_null(reply);
  choreo_close(c);
}

/* ---- set ---- */

static void set_sends_state_reason_and_data(void **state) {
  struct fake *f = *state;
  choreo_kv data[] = {{"version", "1.2"}, {"gone", NULL}};
  choreo_client *c;
  char *error = (char *)1;
  json_t *req;

  start(f, SCRIPT, "{\"ok\":true}\n", NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_set(c, "maintenance", "r", data, 2, &error), 0);
  assert_null(error);
  choreo_close(c);
  req = request(f, 0);
  assert_string_equal(json_string_value(json_object_get(req, "cmd")), "set");
  assert_string_equal(json_string_value(json_object_get(req, "state")),
                      "maintenance");
  assert_string_equal(json_string_value(json_object_get(req, "reason")), "r");
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(req, "data"), "gone")),
      "");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(req, "data"), "version")),
                      "1.2");
  json_decref(req);
}

static void set_returns_the_agents_refusal(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *error = NULL;
  start(f, SCRIPT, "{\"ok\":false,\"error\":\"no such state\"}\n",
        "{\"ok\":false}\n", NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_set(c, "x", NULL, NULL, 0, &error), CHOREO_EREFUSED);
  assert_string_equal(error, "no such state");
  free(error);
  assert_int_equal(choreo_set(c, "x", NULL, NULL, 0, &error), CHOREO_EREFUSED);
  assert_string_equal(error, "refused");
  free(error);
  /* without room for the message */
  choreo_close(c);
}

static void set_reports_malformed_and_missing_replies(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *error = NULL;
  start(f, SCRIPT, "garbage\n", NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_set(c, "x", NULL, NULL, 0, &error), CHOREO_EPROTO);
  assert_null(error);
  /* the script is done: the agent closes */
  assert_int_equal(choreo_set(c, "x", NULL, NULL, 0, &error), CHOREO_ECLOSED);
  assert_null(error);
  choreo_close(c);
}

/* ---- revoke ---- */

static const char revocation[] =
    "{\"revoke\":1,\"serial\":\"0123456789abcdef\",\"node\":\"web1\","
    "\"time\":5,\"operator\":\"o\",\"sig\":\"s\"}";

static void revoke_sends_the_revocation_and_reads_the_answer(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *node = NULL, *error = (char *)1;
  bool fresh = false;
  json_t *req, *want;

  start(f, SCRIPT,
        "{\"ok\":true,\"node\":\"web1\",\"serial\":\"0123456789abcdef\","
        "\"new\":true}\n",
        "{\"ok\":true,\"node\":\"\",\"new\":false}\n", NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_revoke(c, revocation, &node, &fresh, &error), 0);
  assert_string_equal(node, "web1");
  assert_true(fresh);
  assert_null(error);
  free(node);
  assert_int_equal(choreo_revoke(c, revocation, &node, &fresh, NULL), 0);
  assert_string_equal(node, "");
  assert_false(fresh);
  free(node);
  choreo_close(c);
  req = request(f, 0);
  want = json_loads(revocation, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(req, "cmd")), "revoke");
  assert_true(json_equal(json_object_get(req, "revocation"), want));
  json_decref(want);
  json_decref(req);
}

static void revoke_returns_the_agents_refusal(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *node = (char *)1, *error = NULL;
  bool fresh = true;

  start(f, SCRIPT, "{\"ok\":false,\"error\":\"revocation: bad signature\"}\n",
        "{\"ok\":true,\"node\":\"web1\"}\n", NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_revoke(c, revocation, &node, &fresh, &error),
                   CHOREO_EREFUSED);
  assert_string_equal(error, "revocation: bad signature");
  assert_null(node);
  assert_false(fresh);
  free(error);
  /* ok, but without "new": not an answer to a revocation */
  assert_int_equal(choreo_revoke(c, revocation, &node, &fresh, &error),
                   CHOREO_EPROTO);
  assert_null(node);
  assert_null(error);
  choreo_close(c);
}

static void revoke_refuses_what_is_not_a_json_object(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *node = NULL;

  start(f, SCRIPT, NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_revoke(c, "[1]", &node, NULL, NULL), CHOREO_EINVAL);
  assert_int_equal(choreo_revoke(c, "{\"revoke\":1", &node, NULL, NULL),
                   CHOREO_EINVAL);
  assert_int_equal(choreo_revoke(c, NULL, &node, NULL, NULL), CHOREO_EINVAL);
  assert_null(node);
  choreo_close(c);
  assert_int_equal(f->nreq, 0);
}

/* ---- status ---- */

#define PEER(name, state, groups, data)                                        \
  "{\"name\":\"" name "\",\"groups\":" groups ",\"state\":\"" state            \
  "\",\"reason\":\"why\",\"since\":1000,\"last_seen_ms\":5,\"data\":" data "}"

static const char status_ok[] =
    "{\"ok\":true,\"declared\":{\"state\":\"ready\"},\"node\":" PEER(
        "web1", "ready", "[\"web\"]",
        "{\"v\":\"1\"}") ",\"peers\":[" PEER("db1", "maintenance",
                                             "[\"db\",\"x\"]", "{}") "]}\n";

static void status_get_parses_node_and_peers(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  choreo_status *st = NULL;
  start(f, SCRIPT, status_ok, NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_status_get(c, &st), 0);
  assert_string_equal(st->node.name, "web1");
  assert_string_equal(st->node.state, "ready");
  assert_string_equal(st->node.reason, "why");
  assert_string_equal(st->declared_state, "ready");
  assert_string_equal(st->declared_reason, "");
  assert_string_equal(st->node.addr, ""); /* not reported: empty */
  assert_int_equal(st->node.since_ms, 1000);
  assert_int_equal(st->node.ngroups, 1);
  assert_int_equal(st->node.ndata, 1);
  assert_string_equal(st->node.data[0].key, "v");
  assert_string_equal(st->node.data[0].value, "1");
  assert_int_equal(st->npeers, 1);
  assert_string_equal(st->peers[0].name, "db1");
  assert_int_equal(st->peers[0].ngroups, 2);
  assert_string_equal(st->peers[0].groups[1], "x");
  assert_int_equal(st->peers[0].last_seen_ms, 5);
  choreo_status_free(st);
  choreo_status_free(NULL);
  choreo_close(c);
}

#define VPEER(name, extra)                                                     \
  "{\"name\":\"" name "\",\"groups\":[],\"state\":\"ready\",\"reason\":\"\","  \
  "\"since\":1,\"last_seen_ms\":5,\"data\":{}" extra "}"

/* Each peer's version as the agent shows it; absent (not heard yet, or
 * an agent before 0.2.0): NULL and -1. */
#define V_A ",\"version\":\"0.2.0\",\"proto\":1"
#define V_B ",\"version\":\"unversioned\",\"proto\":0"
#define V_D ",\"version\":\"9\",\"proto\":\"1\""
#define PEERS_V                                                                \
  VPEER("a", V_A) "," VPEER("b", V_B) "," VPEER("c", "") "," VPEER("d", V_D)
static const char status_versions[] =
    "{\"ok\":true,\"node\":" VPEER("web1", "") ",\"peers\":[" PEERS_V "]}\n";

static void status_get_parses_peer_versions(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  choreo_status *st = NULL;
  start(f, SCRIPT, status_versions, NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_status_get(c, &st), 0);
  assert_null(st->node.version);
  assert_int_equal(st->node.proto, -1);
  assert_int_equal(st->npeers, 4);
  assert_string_equal(st->peers[0].version, "0.2.0");
  assert_int_equal(st->peers[0].proto, 1);
  assert_string_equal(st->peers[1].version, "unversioned");
  assert_int_equal(st->peers[1].proto, 0);
  assert_null(st->peers[2].version);
  assert_int_equal(st->peers[2].proto, -1);
  assert_string_equal(st->peers[3].version, "9");
  assert_int_equal(st->peers[3].proto, -1);
  choreo_status_free(st);
  choreo_close(c);
}

static void status_get_refuses_malformed_documents(void **state) {
  struct fake *f = *state;
  static const char *const bad[] = {
      "{\"ok\":true}\n",
      "{\"ok\":true,\"node\":" PEER("a", "ready", "[]",
                                    "{}") ",\"peers\":{}}\n",
      "{\"ok\":true,\"node\":5,\"peers\":[]}\n",
      "{\"ok\":true,\"node\":" PEER("a", "ready", "\"web\"",
                                    "{}") ",\"peers\":[]}\n",
      "{\"ok\":true,\"node\":" PEER(
          "a", "ready", "[]", "{}") ",\"peers\":[" PEER("b", "ready", "[]",
                                                        "[]") "]}\n",
  };
  start(f, SCRIPT, bad[0], bad[1], bad[2], bad[3], bad[4], NULL);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    choreo_client *c = connect_ok(f, TIMEOUT_MS);
    choreo_status *st = (choreo_status *)1;
    if (choreo_status_get(c, &st) != CHOREO_EPROTO)
      fail_msg("document %zu was not refused: %s", i, bad[i]);
    assert_null(st);
    choreo_close(c);
  }
}

/* The document of status --json: node, peers and the declared state;
 * "ok" is the protocol's, not the document's. */
static void status_json_is_the_document_without_protocol_fields(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  char *text = NULL;
  json_t *j;
  start(f, SCRIPT, status_ok, "{\"ok\":false,\"error\":\"busy\"}\n", NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_status_json(c, &text), 0);
  j = json_loads(text, 0, NULL);
  assert_non_null(j);
  assert_int_equal(json_object_size(j), 3);
  assert_null(json_object_get(j, "ok"));
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(j, "declared"), "state")),
                      "ready");
  assert_non_null(json_object_get(j, "node"));
  assert_non_null(json_object_get(j, "peers"));
  json_decref(j);
  free(text);
  assert_int_equal(choreo_status_json(c, &text), CHOREO_EREFUSED);
  assert_null(text);
  choreo_close(c);
}

/* ---- watch ---- */

struct seen_events {
  int n, stop_at;
  char last[64];
};

static int on_event(const choreo_event *ev, void *arg) {
  struct seen_events *s = arg;
  s->n++;
  snprintf(s->last, sizeof(s->last), "%s %s %s %s %s", ev->event, ev->peer,
           ev->previous, ev->state, ev->reason);
  return s->n == s->stop_at ? 7 : 0;
}

static void watch_delivers_events_until_the_agent_closes(void **state) {
  struct fake *f = *state;
  struct seen_events s = {0};
  choreo_client *c;
  start(f, BY_CMD, NULL);
  f->events = "{\"event\":\"joined\",\"peer\":\"a\",\"state\":\"ready\","
              "\"time\":1}\n"
              "{\"event\":\"state\",\"peer\":\"a\",\"state\":\"down\","
              "\"previous\":\"ready\",\"reason\":\"r\",\"time\":2}\n";
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_watch(c, on_event, &s), CHOREO_ECLOSED);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.last, "state a ready down r");
  choreo_close(c);
}

static void watch_stops_when_the_callback_says_so(void **state) {
  struct fake *f = *state;
  struct seen_events s = {.stop_at = 1};
  choreo_client *c;
  start(f, BY_CMD, NULL);
  f->events = "{\"event\":\"joined\",\"peer\":\"a\",\"state\":\"ready\"}\n"
              "{\"event\":\"joined\",\"peer\":\"b\",\"state\":\"ready\"}\n";
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_watch(c, on_event, &s), 7);
  assert_int_equal(s.n, 1);
  choreo_close(c);
}

static void watch_refuses_malformed_events(void **state) {
  struct fake *f = *state;
  static const char *const bad[] = {
      "nope\n",
      "[]\n",
      "{\"event\":\"joined\",\"state\":\"ready\"}\n", /* no peer */
      "{\"event\":\"joined\",\"peer\":5,\"state\":\"ready\"}\n",
  };
  start(f, BY_CMD, NULL);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct seen_events s = {0};
    choreo_client *c = connect_ok(f, TIMEOUT_MS);
    f->events = bad[i];
    if (choreo_watch(c, on_event, &s) != CHOREO_EPROTO)
      fail_msg("event %zu was not refused: %s", i, bad[i]);
    assert_int_equal(s.n, 0);
    choreo_close(c);
  }
}

static void watch_reports_a_refused_watch(void **state) {
  struct fake *f = *state;
  struct seen_events s = {0};
  choreo_client *c;
  start(f, SCRIPT, "{\"ok\":false,\"error\":\"too many watchers\"}\n", NULL);
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_watch(c, on_event, &s), CHOREO_EREFUSED);
  assert_int_equal(s.n, 0);
  choreo_close(c);
}

/* ---- wait ---- */

static void wait_returns_when_the_condition_holds(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  start(f, BY_CMD, NULL);
  f->status_reply = status_ok;
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_wait(c, "db1", NULL, false, "maintenance", 2000), 0);
  assert_int_equal(choreo_wait(c, NULL, "web", true, "ready", 2000), 0);
  choreo_close(c);
}

static void wait_times_out_when_it_never_holds(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  start(f, BY_CMD, NULL);
  f->status_reply = status_ok;
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_wait(c, "db1", NULL, false, "ready", 200),
                   CHOREO_ETIMEDOUT);
  choreo_close(c);
}

static void wait_reports_a_malformed_status(void **state) {
  struct fake *f = *state;
  choreo_client *c;
  start(f, BY_CMD, NULL);
  f->status_reply = "{\"ok\":true,\"peers\":3}\n";
  c = connect_ok(f, TIMEOUT_MS);
  assert_int_equal(choreo_wait(c, "db1", NULL, false, "ready", 2000),
                   CHOREO_EPROTO);
  choreo_close(c);
}

/* ---- errors ---- */

static void strerror_names_every_code(void **state) {
  static const int codes[] = {
#define XX(name, msg) CHOREO_E##name,
      CHOREO_ERRNO_MAP(XX)
#undef XX
  };
  char buf[8];
  (void)state;
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    assert_string_not_equal(choreo_strerror(codes[i]), "unknown error");
    assert_string_not_equal(choreo_err_name(codes[i]), "unknown");
  }
  assert_string_equal(choreo_strerror(-ENOENT), strerror(ENOENT));
  assert_string_equal(choreo_strerror(5), "unknown error");
  assert_string_equal(choreo_strerror_r(CHOREO_ENOAGENT, buf, sizeof(buf)),
                      "no agen");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(connect_without_agent_says_no_agent),
      T(connect_refuses_a_path_too_long_for_a_socket),
      T(connect_refuses_a_socket_served_by_another_user),
      T(request_returns_the_reply),
      T(request_refuses_what_is_not_a_json_object),
      T(request_reports_a_refusal_with_the_reply),
      T(request_refuses_malformed_replies),
      T(request_reports_a_closed_connection),
      T(request_times_out_on_a_silent_agent),
      T(request_refuses_an_oversized_reply),
      T(set_sends_state_reason_and_data),
      T(set_returns_the_agents_refusal),
      T(set_reports_malformed_and_missing_replies),
      T(revoke_sends_the_revocation_and_reads_the_answer),
      T(revoke_returns_the_agents_refusal),
      T(revoke_refuses_what_is_not_a_json_object),
      T(status_get_parses_node_and_peers),
      T(status_get_parses_peer_versions),
      T(status_get_refuses_malformed_documents),
      T(status_json_is_the_document_without_protocol_fields),
      T(watch_delivers_events_until_the_agent_closes),
      T(watch_stops_when_the_callback_says_so),
      T(watch_refuses_malformed_events),
      T(watch_reports_a_refused_watch),
      T(wait_returns_when_the_condition_holds),
      T(wait_times_out_when_it_never_holds),
      T(wait_reports_a_malformed_status),
      T(strerror_names_every_code),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
