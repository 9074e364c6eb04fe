/*
 * control.c — the control socket server: JSON lines over a unix socket;
 * see control.h for the rules it enforces on clients.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "choreo.h"
#include "control.h"
#include "log.h"
#include "util.h"

struct control_client {
  uv_pipe_t pipe;
  uv_timer_t idle; /* unfinished line, or silence (see arm_idle) */
  uv_shutdown_t shutdown;
  struct control *owner;
  struct control_client *next;
  char *buf; /* grows to CHOREO_REQUEST_MAX + 1: a line and its \n */
  size_t len, cap;
  bool watcher;
  bool partial; /* buf holds the start of a line */
  bool paused;  /* replies back up: requests are not read (backpressure) */
  bool eof;     /* the client's side is closed: nothing more to read */
  bool closing;
  bool refused; /* answered "permission denied": the rest is discarded */
  int open_handles;
  struct control_peer peer;
};

#define CONTROL_BUF_FIRST 1024 /* a client's first read buffer */

struct write_req {
  uv_write_t req;
  struct control_client *cl;
  char data[]; /* the line */
};

static void consume_lines(struct control_client *cl);
static void spares_refill(struct control *c);

/* ---- socket file ---- */

/* Is an agent answering at path? Decides whether a socket file is stale. */
static int probe_live(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int fd, rv;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  rv = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 1 : -errno;
  close(fd);
  return rv;
}

static int make_parent(const char *path) {
  char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
  char *slash;
  snprintf(dir, sizeof(dir), "%s", path);
  slash = strrchr(dir, '/');
  if (slash == NULL || slash == dir)
    return 0;
  *slash = '\0';
  for (char *p = dir + 1; *p != '\0'; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

static int claim_path(const char *path) {
  int live = probe_live(path);
  if (live == 1)
    return CHOREO_EEXISTS;
  /* Only a refused connection proves the file is a dead agent's socket;
   * anything else (e.g. a regular file) is left alone and bind fails. */
  if (live == -ECONNREFUSED && unlink(path) != 0 && errno != ENOENT)
    return -errno;
  return make_parent(path);
}

/* ---- clients ---- */

static void client_free_if_closed(struct control_client *cl) {
  struct control *c = cl->owner;
  if (--cl->open_handles > 0)
    return;
  for (struct control_client **pp = &c->clients; *pp != NULL;
       pp = &(*pp)->next) {
    if (*pp == cl) {
      *pp = cl->next;
      break;
    }
  }
  c->nclients--;
  free(cl->buf);
  free(cl);
  if (!c->closing)
    spares_refill(c); /* the client may have held a spare's place */
  if (c->closing && c->nclients == 0 && c->handles == 0 &&
      c->close_cb != NULL) {
    void (*cb)(struct control *) = c->close_cb;
    c->close_cb = NULL;
    cb(c);
  }
}

static void on_client_handle_closed(uv_handle_t *h) {
  struct control_client *cl = h->data;
  client_free_if_closed(cl);
}

static void client_close(struct control_client *cl) {
  if (cl->closing)
    return;
  cl->closing = true;
  uv_close((uv_handle_t *)&cl->pipe, on_client_handle_closed);
  uv_close((uv_handle_t *)&cl->idle, on_client_handle_closed);
}

static void client_fail(struct control_client *cl, const char *why) {
  cl->owner->metrics->control_errors++;
  log_warn("control: dropping a client: %s", why);
  control_reply_error(cl, "%s", why);
  client_close(cl);
}

static void drop_slow(struct control_client *cl, const char *why) {
  cl->owner->metrics->control_errors++;
  cl->owner->metrics->control_dropped_slow++;
  log_warn("control: dropping a client that doesn't read its replies: %s", why);
  client_close(cl);
}

static void on_idle(uv_timer_t *t) {
  struct control_client *cl = container_of(t, struct control_client, idle);
  if (cl->refused) {
    client_close(cl);
  } else if (cl->paused) {
    char why[64];
    snprintf(why, sizeof(why), "they still wait after %d ms", CONTROL_STALL_MS);
    drop_slow(cl, why);
  } else if (cl->partial) {
    client_fail(cl, "request line left unfinished for too long");
  } else {
    cl->owner->metrics->control_errors++;
    log_warn("control: dropping a client silent for %d s",
             CONTROL_SILENT_MS / 1000);
    client_close(cl);
  }
}

/* The idle timer: a partial line must be finished within CONTROL_IDLE_MS
 * of its first byte (bytes trickling in don't restart the clock); a client
 * with nothing pending that is not a watcher may stay silent for
 * CONTROL_SILENT_MS; a watcher only listens and is never timed out. */
static void arm_idle(struct control_client *cl, bool new_line) {
  if (cl->closing)
    return;
  if (cl->len > 0) {
    if (!cl->partial || new_line)
      uv_timer_start(&cl->idle, on_idle, CONTROL_IDLE_MS, 0);
    cl->partial = true;
  } else {
    cl->partial = false;
    if (cl->watcher)
      uv_timer_stop(&cl->idle);
    else
      uv_timer_start(&cl->idle, on_idle, CONTROL_SILENT_MS, 0);
  }
}

static void dispatch_line(struct control_client *cl, char *line, size_t len) {
  json_error_t jerr;
  json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
  cl->owner->metrics->control_requests++;
  if (req == NULL || !json_is_object(req)) {
    json_decref(req);
    cl->owner->metrics->control_errors++;
    control_reply_error(cl, "request is not a JSON object%s%s",
                        req == NULL ? ": " : "", req == NULL ? jerr.text : "");
    return;
  }
  cl->owner->on_request(cl->owner, cl, req);
  json_decref(req);
}

static void consume_lines(struct control_client *cl) {
  size_t start = 0;
  for (size_t i = 0; i < cl->len && !cl->closing && !cl->paused; i++) {
    if (cl->buf[i] != '\n')
      continue;
    if (i > start)
      dispatch_line(cl, cl->buf + start, i - start);
    start = i + 1;
  }
  if (cl->closing)
    return;
  memmove(cl->buf, cl->buf + start, cl->len - start);
  cl->len -= start;
  if (cl->paused)
    return; /* the rest waits, unread, for the replies to drain */
  /* The buffer grows to CHOREO_REQUEST_MAX bytes and a newline: full at
   * that size and still no newline means a longer line. */
  if (cl->len > CHOREO_REQUEST_MAX)
    client_fail(cl, "request line too long");
  else
    arm_idle(cl, start > 0);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct control_client *cl =
      container_of((uv_pipe_t *)h, struct control_client, pipe);
  /* Most requests are a few dozen bytes: start small and grow (by 4) up
   * to the longest line allowed, so that 256 clients don't hold 16 MiB. A
   * failed realloc leaves no room, and libuv then reports UV_ENOBUFS. */
  if (cl->len == cl->cap && cl->cap < CHOREO_REQUEST_MAX + 1) {
    size_t cap = cl->cap * 4 < CHOREO_REQUEST_MAX + 1 ? cl->cap * 4
                                                      : CHOREO_REQUEST_MAX + 1;
    char *p = realloc(cl->buf, cap);
    if (p != NULL) {
      cl->buf = p;
      cl->cap = cap;
    }
  }
  buf->base = cl->buf + cl->len;
  buf->len = cl->cap - cl->len;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  client_close(container_of(req, struct control_client, shutdown));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct control_client *cl =
      container_of((uv_pipe_t *)s, struct control_client, pipe);
  if (cl->refused) {
    if (n < 0)
      client_close(cl);
    return; /* what it says is not read: buf is reused */
  }
  if (n == UV_EOF) {
    /* The client has said all it will say; what we owe it is still
     * written (a reply queued behind a full socket buffer), then the
     * connection is closed. A watcher is closed too: it is gone or
     * half-closed, and a half-closed watcher would never be dropped. */
    uv_read_stop(s);
    cl->eof = true;
    uv_timer_stop(&cl->idle);
    if (uv_shutdown(&cl->shutdown, s, on_shutdown) != 0)
      client_close(cl);
    return;
  }
  if (n < 0) {
    client_close(cl);
    return;
  }
  cl->len += (size_t)n;
  consume_lines(cl);
}

/* ---- authority ---- */

#define CONTROL_GROUPS_FIRST 64      /* supplementary groups looked at first */
#define CONTROL_GROUPS_MAX (1 << 16) /* NGROUPS_MAX on Linux */
#define CONTROL_PW_BUF 16384         /* getpwuid_r's buffer */

/* The name of uid into out[len] ("" when it has none); false if unknown. */
static bool user_name(uint32_t uid, char *out, size_t len, gid_t *gid) {
  struct passwd pw, *res = NULL;
  char *buf = malloc(CONTROL_PW_BUF);

  out[0] = '\0';
  if (buf != NULL &&
      getpwuid_r((uid_t)uid, &pw, buf, CONTROL_PW_BUF, &res) == 0 &&
      res != NULL) {
    if (strlcpy_checked(out, pw.pw_name, len) != 0)
      out[0] = '\0'; /* longer than a name we keep: shown by uid only */
    if (gid != NULL)
      *gid = pw.pw_gid;
  }
  free(buf);
  return res != NULL && out[0] != '\0';
}

bool control_in_group(uint32_t uid, uint32_t gid, uint32_t group) {
  char name[CONFIG_USER_MAX + 1];
  gid_t pw_gid = (gid_t)gid, *groups = NULL;
  int n = CONTROL_GROUPS_FIRST;
  bool in = false;

  if (gid == group)
    return true;
  if (!user_name(uid, name, sizeof(name), &pw_gid))
    return false;
  for (int tries = 0; tries < 2 && !in; tries++) {
    gid_t *g = realloc(groups, (size_t)n * sizeof(*g));
    int got = n;
    if (g == NULL)
      break;
    groups = g;
    if (getgrouplist(name, pw_gid, groups, &got) < 0) {
      /* got is now the number needed: one more try with that much. */
      if (got <= n || got > CONTROL_GROUPS_MAX)
        break;
      n = got;
      continue;
    }
    for (int i = 0; i < got; i++)
      in = in || groups[i] == (gid_t)group;
    break;
  }
  free(groups);
  return in;
}

/* Who is at the other end of fd, and what it may do. */
static void peer_learn(struct control *c, int fd, struct control_peer *p) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  bool reader;

  memset(p, 0, sizeof(*p));
  p->access = POLICY_ACCESS_NONE;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      len != sizeof(cred)) {
    p->uid = p->gid = UINT32_MAX;
    p->pid = -1;
    return;
  }
  p->uid = (uint32_t)cred.uid;
  p->gid = (uint32_t)cred.gid;
  p->pid = (int32_t)cred.pid;
  user_name(p->uid, p->user, sizeof(p->user), NULL);
  /* Group membership costs a lookup: only asked when it decides. */
  reader = c->opts.read_group && p->uid != 0 && p->uid != c->opts.agent_euid &&
           control_in_group(p->uid, p->gid, c->opts.read_gid);
  p->access = policy_control_access(p->uid, c->opts.agent_euid, reader);
}

/* One error line for a client with no access at all, then the end. */
static void refuse_peer(struct control_client *cl) {
  struct control *c = cl->owner;
  const struct control_peer *p = &cl->peer;
  char user[4 * CONFIG_USER_MAX + 4];

  c->metrics->control_access_denied++;
  util_escape(p->user, user, sizeof(user));
  if (log_allow("control:refused", util_wall_ms()))
    log_warn("control: refused a connection from uid %u pid %d%s%s%s: not "
             "root, the agent's user or a member of control.read_group",
             (unsigned)p->uid, (int)p->pid, user[0] ? " (" : "", user,
             user[0] ? ")" : "");
  control_reply_error(
      cl,
      "permission denied: uid %u may not use this socket "
      "(only root, uid %u%s)",
      (unsigned)p->uid, (unsigned)c->opts.agent_euid,
      c->opts.read_group ? " and members of control.read_group to read" : "");
  /* Half-close after the line, and read (and drop) until the client
   * hangs up: a client that sends its request only now still reads the
   * line instead of failing to send. Bounded by CONTROL_REFUSED_MS. */
  cl->refused = true;
  if (uv_shutdown(&cl->shutdown, (uv_stream_t *)&cl->pipe, NULL) != 0 ||
      uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read) != 0) {
    client_close(cl);
    return;
  }
  uv_timer_start(&cl->idle, on_idle, CONTROL_REFUSED_MS, 0);
}

const struct control_peer *
control_client_peer(const struct control_client *cl) {
  return &cl->peer;
}

/* A client on descriptor fd (ours from now on, closed on failure). */
static void client_add(struct control *c, int fd) {
  struct control_client *cl = calloc(1, sizeof(*cl));

  if (cl != NULL && (cl->buf = malloc(CONTROL_BUF_FIRST)) != NULL)
    cl->cap = CONTROL_BUF_FIRST;
  if (cl == NULL || cl->buf == NULL || uv_pipe_init(c->loop, &cl->pipe, 0)) {
    if (cl != NULL)
      free(cl->buf);
    free(cl);
    close(fd);
    log_error("control: out of memory accepting a client");
    return;
  }
  uv_timer_init(c->loop, &cl->idle);
  cl->pipe.data = cl->idle.data = cl;
  cl->owner = c;
  cl->open_handles = 2;
  cl->next = c->clients;
  c->clients = cl;
  c->nclients++;
  if (uv_pipe_open(&cl->pipe, fd) != 0) {
    close(fd);
    c->metrics->control_errors++;
    client_close(cl);
    return;
  }
  if (c->nclients > CONTROL_CLIENTS_MAX) {
    c->metrics->control_errors++;
    c->metrics->control_dropped_full++;
    client_close(cl);
    return;
  }
  peer_learn(c, fd, &cl->peer);
  if (cl->peer.access == POLICY_ACCESS_NONE) {
    refuse_peer(cl);
    return;
  }
  uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read);
  arm_idle(cl, false);
}

/* ---- accepting, with descriptors in reserve ---- */

static size_t spares_held(const struct control *c) {
  size_t n = 0;
  for (size_t i = 0; i < ARRAY_SIZE(c->spare); i++)
    n += c->spare[i] >= 0;
  return n;
}

/* Take back the places of spares given up. Another thread (nanomsg's)
 * may have taken the descriptor meanwhile: then try again later. */
static void spares_refill(struct control *c) {
  for (size_t i = 0; i < ARRAY_SIZE(c->spare); i++) {
    if (c->spare[i] < 0 &&
        (c->spare[i] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
      break;
  }
}

/* Out of descriptors: accept the next client on a spare's place. False
 * when no spare is left. */
static bool accept_on_spare(struct control *c) {
  for (size_t i = 0; i < ARRAY_SIZE(c->spare); i++) {
    int fd;
    if (c->spare[i] < 0)
      continue;
    close(c->spare[i]);
    c->spare[i] = -1;
    fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      log_warn("control: out of descriptors; a client took a reserved one "
               "(%zu left)",
               spares_held(c));
      client_add(c, fd);
    } else {
      spares_refill(c); /* nothing to accept after all */
    }
    return true;
  }
  return false;
}

static void on_listen_readable(uv_poll_t *h, int status, int events);

static void on_retry(uv_timer_t *t) {
  struct control *c = container_of(t, struct control, retry);
  spares_refill(c);
  if (!c->closing)
    uv_poll_start(&c->poll, UV_READABLE, on_listen_readable);
}

/* No descriptor at all: leave the connection in the backlog for a while
 * instead of waking up for it again and again. */
static void accept_pause(struct control *c) {
  c->metrics->control_accept_shed++;
  log_warn("control: out of descriptors and no reserve left; accepting "
           "again in %d ms",
           CONTROL_RETRY_MS);
  uv_poll_stop(&c->poll);
  uv_timer_start(&c->retry, on_retry, CONTROL_RETRY_MS, 0);
}

static void on_listen_readable(uv_poll_t *h, int status, int events) {
  struct control *c = container_of(h, struct control, poll);

  for (int i = 0; i < CONTROL_ACCEPT_BATCH && !c->closing; i++) {
    int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      client_add(c, fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
        errno == ENOMEM) {
      if (!accept_on_spare(c)) {
        accept_pause(c);
        return;
      }
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      log_warn("control: accept: %s", strerror(errno));
    return;
  }
}

/* ---- replies ---- */

static size_t queued(struct control_client *cl) {
  return uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe);
}

/* Replies drained: read requests again, starting with those left in the
 * buffer. */
static void resume(struct control_client *cl) {
  cl->paused = false;
  consume_lines(cl);
  if (cl->closing || cl->paused || cl->eof)
    return;
  if (uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read) != 0)
    client_close(cl);
}

static void on_written(uv_write_t *req, int status) {
  struct write_req *w = container_of(req, struct write_req, req);
  struct control_client *cl = w->cl;

  free(w);
  if (status == 0 && cl->paused && !cl->closing &&
      queued(cl) <= CONTROL_OUT_PAUSE / 2)
    resume(cl);
}

static void pause_reading(struct control_client *cl) {
  cl->paused = true;
  uv_read_stop((uv_stream_t *)&cl->pipe);
  uv_timer_start(&cl->idle, on_idle, CONTROL_STALL_MS, 0);
}

static void send_line(struct control_client *cl, json_t *msg) {
  char why[64];
  size_t len;
  struct write_req *w;
  uv_buf_t buf;

  if (cl->closing)
    return;
  /* Measured first and written in place: a reply of many megabytes (a
   * status at the peer table's budget) is held once, not as jansson's
   * doubling buffer and then a copy of it. */
  len = json_dumpb(msg, NULL, 0, JSON_COMPACT);
  if (len == 0)
    return;
  /* One reply is always taken, however large (a status of a big
   * cluster); what piles up behind unread ones is what is bounded. */
  if (queued(cl) > 0 && queued(cl) + len + 1 > CONTROL_OUT_MAX) {
    snprintf(why, sizeof(why), "over %d bytes would wait", CONTROL_OUT_MAX);
    drop_slow(cl, why);
    return;
  }
  w = malloc(sizeof(*w) + len + 1);
  if (w == NULL)
    return;
  w->cl = cl;
  if (json_dumpb(msg, w->data, len, JSON_COMPACT) != len) {
    free(w);
    return;
  }
  w->data[len] = '\n';
  buf = uv_buf_init(w->data, (unsigned)len + 1);
  if (uv_write(&w->req, (uv_stream_t *)&cl->pipe, &buf, 1, on_written) != 0)
    free(w);
  else if (!cl->paused && !cl->watcher && queued(cl) > CONTROL_OUT_PAUSE)
    pause_reading(cl);
}

void control_reply(struct control_client *cl, json_t *reply) {
  send_line(cl, reply);
}

void control_reply_error(struct control_client *cl, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  json_t *reply;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  reply = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
  send_line(cl, reply);
  json_decref(reply);
}

void control_watch(struct control_client *cl) {
  cl->watcher = true;
  if (!cl->partial)
    uv_timer_stop(&cl->idle);
}

void control_broadcast(struct control *c, json_t *ev) {
  struct control_client *next;
  for (struct control_client *cl = c->clients; cl != NULL; cl = next) {
    next = cl->next;
    if (!cl->watcher || cl->closing)
      continue;
    send_line(cl, ev); /* drops it beyond CONTROL_OUT_MAX */
  }
}

/* ---- server ---- */

static int listen_at(const char *path, const struct control_opts *opts,
                     bool *bound, int *out) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int rv = 0;

  if (fd < 0)
    return -errno;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    rv = -errno; /* the file, if any, is not ours: leave it */
    goto fail;
  }
  *bound = true;
  /* The group first: until chmod, the file has bind's mode (umask),
   * never more than it will have. */
  if ((opts->read_group &&
       chown(path, (uid_t)-1, (gid_t)opts->read_gid) != 0) ||
      chmod(path, (mode_t)opts->mode) != 0 || listen(fd, 64) != 0) {
    rv = -errno;
    goto fail;
  }
  *out = fd;
  return 0;
fail:
  close(fd);
  return rv;
}

int control_dir_check(const char *path, char *why, size_t len) {
  char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
  const char *slash = strrchr(path, '/');

  why[0] = '\0';
  if (slash == NULL)
    snprintf(dir, sizeof(dir), ".");
  else if (slash == path)
    snprintf(dir, sizeof(dir), "/");
  else if (snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path) >=
           (int)sizeof(dir)) {
    snprintf(why, len, "%s: path too long", path);
    return -ENAMETOOLONG;
  }
  return util_dir_trusted(dir, true,
                          ", so they could replace the socket; restrict it "
                          "with chmod 755",
                          why, len);
}

int control_start(struct control *c, uv_loop_t *loop, const char *path,
                  const struct control_opts *opts, struct metrics *m,
                  control_request_fn fn) {
  int rv;

  memset(c, 0, sizeof(*c));
  c->fd = -1;
  for (size_t i = 0; i < ARRAY_SIZE(c->spare); i++)
    c->spare[i] = -1;
  c->loop = loop;
  c->metrics = m;
  c->on_request = fn;
  c->opts = *opts;
  if (snprintf(c->path, sizeof(c->path), "%s", path) >= (int)sizeof(c->path))
    return -ENAMETOOLONG;
  if ((rv = control_dir_check(path, c->why, sizeof(c->why))) != 0)
    return rv;
  if ((rv = claim_path(path)) != 0)
    return rv;
  if ((rv = listen_at(path, opts, &c->bound, &c->fd)) != 0)
    return rv;
  spares_refill(c);
  if ((rv = uv_poll_init(loop, &c->poll, c->fd)) != 0)
    return rv;
  c->handles++;
  if ((rv = uv_timer_init(loop, &c->retry)) != 0)
    return rv;
  c->handles++;
  return uv_poll_start(&c->poll, UV_READABLE, on_listen_readable);
}

static void on_server_closed(uv_handle_t *h) {
  struct control *c = h->data;
  if (--c->handles > 0)
    return;
  /* libuv no longer watches it: the descriptor can go. */
  close(c->fd);
  c->fd = -1;
  if (c->nclients == 0 && c->close_cb != NULL) {
    void (*cb)(struct control *) = c->close_cb;
    c->close_cb = NULL;
    cb(c);
  }
}

void control_close(struct control *c, void (*cb)(struct control *c)) {
  if (c->closing)
    return;
  c->closing = true;
  c->close_cb = cb;
  for (struct control_client *cl = c->clients; cl != NULL; cl = cl->next)
    client_close(cl);
  if (c->bound)
    unlink(c->path);
  for (size_t i = 0; i < ARRAY_SIZE(c->spare); i++) {
    if (c->spare[i] >= 0)
      close(c->spare[i]);
    c->spare[i] = -1;
  }
  if (c->handles == 0) {
    if (c->fd >= 0)
      close(c->fd);
    c->fd = -1;
    if (c->nclients == 0 && cb != NULL) {
      c->close_cb = NULL;
      cb(c);
    }
    return;
  }
  /* Both handles were initialised (poll first, then the timer). */
  c->poll.data = c->retry.data = c;
  uv_close((uv_handle_t *)&c->poll, on_server_closed);
  if (c->handles == 2)
    uv_close((uv_handle_t *)&c->retry, on_server_closed);
}
