/*
 * http.c — the HTTP endpoint (docs/PROTOCOL.md "HTTP endpoint"): a
 * read-only server in the agent's loop on our own uv_tcp handles, with
 * http-parser reading the requests (http_req.c: bounds, routing, token).
 * Every connection carries one request and is closed once answered,
 * except an event stream, which stays open and gets one "data: JSON"
 * block per event while it keeps up. What is served comes from the
 * wiring's hooks; see http.h for the lifecycle and the bounds.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "util.h"

/* The fleet page, agent/http_page.html, embedded at build time. */
extern const char http_page[];
extern const size_t http_page_len;

#define TOKEN_FILE_MAX 4096

struct http_listener {
  uv_tcp_t tcp;
  struct http *owner;
  char addr[CONFIG_HTTP_LISTEN_MAX + 1];
};

struct http_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  struct http *owner;
  struct http_conn *prev, *next;
  struct http_req req;
  bool responded, events, closing;
  int open; /* handles not closed yet */
};

struct http_write {
  uv_write_t req;
  struct http_conn *conn;
  bool last; /* close the connection once written */
  char data[];
};

/* A message for the log or a reload report; NULL when out of memory. */
#if defined(__GNUC__)
static char *msgf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
static char *msgf(const char *fmt, ...) {
  va_list ap;
  char *s;
  int n;

  va_start(ap, fmt);
  n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

/* ---- connections ---- */

static void conn_reset(struct http_conn *c);
static void on_linger(uv_timer_t *t);

static void conn_closed(uv_handle_t *hd) {
  struct http_conn *c = hd->data;
  if (--c->open == 0)
    free(c);
}

static void conn_close(struct http_conn *c) {
  struct http *h = c->owner;

  if (c->closing)
    return;
  c->closing = true;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    h->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  h->metrics->http_clients--;
  if (c->events)
    h->metrics->http_event_clients--;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
  uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void on_linger(uv_timer_t *t);

/* Close with a reset: a client that doesn't read would never see a FIN
 * queued behind the bytes it doesn't take, and they'd hold kernel memory. */
static void conn_reset(struct http_conn *c) {
  struct linger lg = {1, 0};
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0)
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  conn_close(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  struct http_conn *c = req->data;
  free(req);
  if (status != 0)
    conn_close(c);
}

/* The response is out: end our side, and close once the client has
 * closed its own (or at HTTP_LINGER_MS). Closing at once with request
 * bytes unread would send a reset, which can destroy the response before
 * the client reads it (an error answered before the request was read). */
static void conn_finish(struct http_conn *c) {
  uv_shutdown_t *req = malloc(sizeof(*req));

  if (req == NULL) {
    conn_close(c);
    return;
  }
  req->data = c;
  uv_timer_start(&c->timer, on_linger, HTTP_LINGER_MS, 0);
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    conn_close(c);
  }
}

static void on_written(uv_write_t *req, int status) {
  struct http_write *w = container_of(req, struct http_write, req);
  if (status == 0 && w->last && !w->conn->closing)
    conn_finish(w->conn);
  else if (status != 0 && status != UV_ECANCELED)
    conn_close(w->conn);
  free(w);
}

static void on_linger(uv_timer_t *t) {
  conn_close(t->data);
}

/* Queue bytes on c; last: close it once they are sent. */
static void conn_write(struct http_conn *c, const char *head, size_t hlen,
                       const char *body, size_t blen, bool last) {
  struct http_write *w;
  uv_buf_t buf;

  if (c->closing)
    return;
  w = malloc(sizeof(*w) + hlen + blen);
  if (w == NULL) {
    conn_close(c);
    return;
  }
  w->conn = c;
  w->last = last;
  memcpy(w->data, head, hlen);
  if (blen > 0)
    memcpy(w->data + hlen, body, blen);
  buf = uv_buf_init(w->data, (unsigned)(hlen + blen));
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0) {
    free(w);
    conn_close(c);
  }
}

static void on_conn_timer(uv_timer_t *t) {
  struct http_conn *c = t->data;
  c->owner->metrics->http_dropped_timeout++;
  conn_reset(c);
}

/* A complete response with a body (none for HEAD), then close. */
static void respond(struct http_conn *c, int status, const char *type,
                    const char *body, size_t len) {
  char head[512];
  const char *extra = "";
  int n;

  if (status == 405)
    extra = "Allow: GET, HEAD\r\n";
  else if (status == 401)
    extra = "WWW-Authenticate: Bearer realm=\"choreo\"\r\n";
  else if (type != NULL && strncmp(type, "text/html", 9) == 0)
    extra = "Content-Security-Policy: default-src 'none'; script-src "
            "'unsafe-inline'; style-src 'unsafe-inline'; connect-src "
            "'self'; img-src data:\r\n";
  if (status >= 400)
    c->owner->metrics->http_errors++;
  n = snprintf(head, sizeof(head),
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
               "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
               "%sConnection: close\r\n\r\n",
               status, http_status_text(status), type, len, extra);
  if (n < 0 || (size_t)n >= sizeof(head)) {
    conn_close(c);
    return;
  }
  c->responded = true;
  uv_timer_start(&c->timer, on_conn_timer, HTTP_SEND_TIMEOUT_MS, 0);
  conn_write(c, head, (size_t)n, body, c->req.head ? 0 : len, true);
}

static void respond_error(struct http_conn *c, int status) {
  char body[128];
  int n =
      snprintf(body, sizeof(body), "%d %s\n", status, http_status_text(status));
  respond(c, status, "text/plain; charset=utf-8", body, (size_t)n);
}

static void respond_json(struct http_conn *c, json_t *o) {
  char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
  json_decref(o);
  if (text == NULL) {
    respond_error(c, 500);
    return;
  }
  respond(c, 200, "application/json", text, strlen(text));
  free(text);
}

static void respond_metrics(struct http_conn *c) {
  struct http *h = c->owner;
  char *text = NULL;

  if (h->metrics_text(h, &text) != 0) {
    respond_error(c, 500);
    return;
  }
  respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", text,
          strlen(text));
  free(text);
}

/* An event stream: the head now, then whatever http_event() sends. */
static void start_events(struct http_conn *c) {
  static const char head[] = "HTTP/1.1 200 OK\r\n"
                             "Content-Type: text/event-stream\r\n"
                             "Cache-Control: no-store\r\n"
                             "X-Content-Type-Options: nosniff\r\n"
                             "Connection: close\r\n\r\n"
                             ": choreo events\n\n";
  struct http *h = c->owner;
  int size = HTTP_EVENTS_SNDBUF;

  if (h->metrics->http_event_clients >= HTTP_EVENT_CLIENTS_MAX) {
    h->metrics->http_dropped_full++;
    respond_error(c, 503);
    return;
  }
  c->responded = true;
  if (c->req.head) {
    conn_write(c, head, sizeof(head) - 1, NULL, 0, true);
    return;
  }
  c->events = true;
  h->metrics->http_event_clients++;
  uv_timer_stop(&c->timer);
  /* A small kernel buffer: a client that stops reading is found out after
   * tens of kilobytes, not megabytes. */
  (void)uv_send_buffer_size((uv_handle_t *)&c->tcp, &size);
  conn_write(c, head, sizeof(head) - 1, NULL, 0, false);
  /* Recent events first, marked "event: history": the page's timeline
   * shows them, and the states come from /v1/status. */
  for (size_t i = 0; i < HTTP_EVENTS_BACKLOG; i++) {
    static const char mark[] = "event: history\n";
    const char *f = h->backlog[(h->backlog_at + i) % HTTP_EVENTS_BACKLOG];
    if (f != NULL)
      conn_write(c, mark, sizeof(mark) - 1, f, strlen(f), false);
  }
}

static void dispatch(struct http_conn *c) {
  struct http *h = c->owner;
  enum http_route route;
  int status = c->req.status;

  h->metrics->http_requests++;
  if (status == 0)
    status = http_req_route(&c->req, h->token, &route);
  if (status != 200) {
    respond_error(c, status);
    return;
  }
  switch (route) {
  case HTTP_ROUTE_PAGE:
    respond(c, 200, "text/html; charset=utf-8", http_page, http_page_len);
    break;
  case HTTP_ROUTE_METRICS:
    respond_metrics(c);
    break;
  case HTTP_ROUTE_STATUS:
    respond_json(c, h->status(h));
    break;
  case HTTP_ROUTE_PEERS:
    respond_json(c, h->peers(h));
    break;
  case HTTP_ROUTE_EVENTS:
    start_events(c);
    break;
  default:
    respond_error(c, 404);
    break;
  }
}

static void on_alloc(uv_handle_t *hd, size_t size, uv_buf_t *buf) {
  struct http_conn *c = hd->data;
  *buf = uv_buf_init(c->owner->rbuf, sizeof(c->owner->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct http_conn *c = s->data;

  if (nread < 0) {
    conn_close(c);
    return;
  }
  /* Bytes after the one request (an event client's, pipelined ones) are
   * read and ignored: reading them keeps the stream's state visible. */
  if (nread == 0 || c->responded)
    return;
  switch (http_req_feed(&c->req, buf->base, (size_t)nread)) {
  case HTTP_REQ_MORE:
    break;
  case HTTP_REQ_DONE:
  case HTTP_REQ_BAD:
    dispatch(c);
    break;
  }
}

/* Beyond HTTP_CONNS_MAX: a short 503 if the socket takes it, and close. */
static void refuse(struct http_conn *c) {
  static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                             "Content-Length: 0\r\nConnection: close\r\n\r\n";
  uv_buf_t buf = uv_buf_init((char *)busy, sizeof(busy) - 1);
  c->owner->metrics->http_dropped_full++;
  (void)uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  conn_close(c);
}

static void on_connection(uv_stream_t *server, int status) {
  struct http_listener *l = container_of(server, struct http_listener, tcp);
  struct http *h = l->owner;
  struct http_conn *c;

  if (status != 0 || h->stopped) {
    /* Said once every 1000 (out of descriptors, a flood can't flood the
     * log too). */
    if (status != 0 && h->accept_errors++ % 1000 == 0)
      log_warn("http: accept on %s: %s (%llu times)", l->addr,
               uv_strerror(status), (unsigned long long)h->accept_errors);
    return;
  }
  if ((c = calloc(1, sizeof(*c))) == NULL)
    return;
  c->owner = h;
  c->tcp.data = c->timer.data = c;
  http_req_init(&c->req);
  uv_tcp_init(h->loop, &c->tcp);
  uv_timer_init(h->loop, &c->timer);
  c->open = 2;
  c->next = h->conns;
  if (h->conns != NULL)
    h->conns->prev = c;
  h->conns = c;
  h->metrics->http_clients++;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  if (h->metrics->http_clients > HTTP_CONNS_MAX) {
    refuse(c);
    return;
  }
  uv_timer_start(&c->timer, on_conn_timer, HTTP_HEAD_TIMEOUT_MS, 0);
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    conn_close(c);
}

/* ---- events ---- */

static void events_send(struct http *h, const char *text, size_t len) {
  struct http_conn *c, *next;

  for (c = h->conns; c != NULL; c = next) {
    next = c->next;
    if (!c->events || c->closing)
      continue;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) + len >
        HTTP_EVENTS_QUEUED_MAX) {
      h->metrics->http_dropped_slow++;
      log_warn("http: an event client stopped reading; dropped");
      conn_reset(c);
      continue;
    }
    conn_write(c, text, len, NULL, 0, false);
  }
}

void http_event(struct http *h, json_t *event) {
  char *text, *frame;
  size_t len;

  if (h->stopped || h->lst == NULL || event == NULL)
    return;
  /* JSON_COMPACT output has no newline: one "data:" line per event. */
  if ((text = json_dumps(event, JSON_COMPACT)) == NULL)
    return;
  len = strlen(text) + 8;
  if ((frame = malloc(len + 1)) != NULL) {
    snprintf(frame, len + 1, "data: %s\n\n", text);
    events_send(h, frame, len);
    free(h->backlog[h->backlog_at]);
    h->backlog[h->backlog_at] = frame;
    h->backlog_at = (h->backlog_at + 1) % HTTP_EVENTS_BACKLOG;
  }
  free(text);
}

static void on_ping(uv_timer_t *t) {
  static const char ping[] = ": ping\n\n";
  struct http *h = container_of(t, struct http, ping);
  if (h->metrics->http_event_clients > 0)
    events_send(h, ping, sizeof(ping) - 1);
}

/* ---- listener ---- */

static void listener_closed(uv_handle_t *hd) {
  free(container_of((uv_tcp_t *)hd, struct http_listener, tcp));
}

static void listener_close(struct http_listener **lp) {
  if (*lp != NULL)
    uv_close((uv_handle_t *)&(*lp)->tcp, listener_closed);
  *lp = NULL;
}

/* Bind and listen on addr; *why (allocated) says what failed. */
static int listener_open(struct http *h, const char *addr,
                         struct http_listener **out, char **why) {
  struct sockaddr_storage ss;
  struct http_listener *l;
  const char *perr;
  bool loopback;
  int rv;

  *out = NULL;
  if (http_parse_listen(addr, &ss, &loopback, &perr) != 0) {
    *why = msgf("http.listen: %s: %s", addr, perr);
    return CHOREO_EINVAL;
  }
  if ((l = calloc(1, sizeof(*l))) == NULL) {
    *why = msgf("http.listen: %s: out of memory", addr);
    return CHOREO_ENOMEM;
  }
  l->owner = h;
  snprintf(l->addr, sizeof(l->addr), "%s", addr);
  uv_tcp_init(h->loop, &l->tcp);
  rv = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
  if (rv == 0)
    rv = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection); /* nginx's */
  if (rv != 0) {
    *why = msgf("http.listen: %s: %s", addr, uv_strerror(rv));
    uv_close((uv_handle_t *)&l->tcp, listener_closed);
    return rv; /* libuv's codes are negated errnos */
  }
  *out = l;
  return 0;
}

/* Read http.token_file into out ("" when there is none). */
static int load_token(const char *path, char *out, char **why) {
  char buf[TOKEN_FILE_MAX];
  const char *perr;
  ssize_t n;
  int fd;

  out[0] = '\0';
  if (path[0] == '\0')
    return 0;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
    *why = msgf("http.token_file: %s: %s", path, strerror(errno));
    return CHOREO_EINVAL;
  }
  n = read(fd, buf, sizeof(buf));
  close(fd);
  if (n < 0 ||
      http_token_parse(buf, (size_t)n, out, HTTP_TOKEN_MAX + 1, &perr) != 0) {
    *why =
        msgf("http.token_file: %s: %s", path, n < 0 ? strerror(errno) : perr);
    out[0] = '\0';
    return CHOREO_EINVAL;
  }
  return 0;
}

/* ---- lifecycle ---- */

void http_init(struct http *h, uv_loop_t *loop, struct metrics *m) {
  h->loop = loop;
  h->metrics = m;
  uv_timer_init(loop, &h->ping);
}

int http_start(struct http *h, const struct config *cfg) {
  char *why = NULL;
  int rv;

  if (cfg->http_listen[0] == '\0')
    return 0;
  if ((rv = load_token(cfg->http_token_file, h->token, &why)) == 0)
    rv = listener_open(h, cfg->http_listen, &h->lst, &why);
  if (rv != 0) {
    log_error("%s", why != NULL ? why : "http: out of memory");
    free(why);
    return rv;
  }
  uv_timer_start(&h->ping, on_ping, HTTP_EVENTS_PING_MS, HTTP_EVENTS_PING_MS);
  log_info("http: serving on %s%s", cfg->http_listen,
           h->token[0] != '\0' ? " (bearer token required)" : "");
  return 0;
}

int http_prepare(struct http *h, const struct config *cfg, char **why) {
  int rv;

  *why = NULL;
  http_abort(h);
  h->pending_off = cfg->http_listen[0] == '\0';
  if ((rv = load_token(cfg->http_token_file, h->pending_token, why)) != 0)
    return rv;
  /* The same address keeps its listener (and its clients). */
  if (cfg->http_listen[0] == '\0' ||
      (h->lst != NULL && strcmp(h->lst->addr, cfg->http_listen) == 0))
    return 0;
  return listener_open(h, cfg->http_listen, &h->pending, why);
}

void http_commit(struct http *h) {
  memcpy(h->token, h->pending_token, sizeof(h->token));
  if (h->pending_off && h->lst != NULL) {
    log_info("http: %s closed", h->lst->addr);
    listener_close(&h->lst);
  }
  if (h->pending != NULL) {
    listener_close(&h->lst);
    h->lst = h->pending;
    h->pending = NULL;
    uv_timer_start(&h->ping, on_ping, HTTP_EVENTS_PING_MS, HTTP_EVENTS_PING_MS);
    log_info("http: serving on %s", h->lst->addr);
  }
}

void http_abort(struct http *h) {
  listener_close(&h->pending);
}

void http_close(struct http *h) {
  if (h->stopped)
    return;
  h->stopped = true;
  listener_close(&h->lst);
  listener_close(&h->pending);
  while (h->conns != NULL)
    conn_close(h->conns);
  if (h->ping.loop != NULL && !uv_is_closing((uv_handle_t *)&h->ping))
    uv_close((uv_handle_t *)&h->ping, NULL);
}

void http_free(struct http *h) {
  for (size_t i = 0; i < HTTP_EVENTS_BACKLOG; i++) {
    free(h->backlog[i]);
    h->backlog[i] = NULL;
  }
}
