/*
 * http.h — the daemon's HTTP part (docs/PROTOCOL.md "HTTP endpoint"):
 * a read-only endpoint on http.listen, served in the agent's loop. It
 * owns its listener, its connections and their timers; what it serves
 * comes from the wiring through hooks (the metrics text, the status and
 * peers JSON), and events are pushed to it (http_event()).
 *
 * Bounds (each a named constant below): connections, the request head
 * (http_req.h), the time to send a request, the bytes waiting for an
 * event-stream client that doesn't read. A client past a bound is
 * answered 4xx/503 or dropped, and counted in the metrics.
 */
#ifndef CHOREO_HTTP_H
#define CHOREO_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "http_req.h"
#include "metrics.h"

#define HTTP_CONNS_MAX 512         /* connections open at once */
#define HTTP_EVENT_CLIENTS_MAX 64  /* of them, reading /v1/events */
#define HTTP_HEAD_TIMEOUT_MS 10000 /* to send the whole request head */
#define HTTP_SEND_TIMEOUT_MS 30000 /* to take a whole response */
#define HTTP_LINGER_MS 2000 /* for the client to close after a response */
#define HTTP_EVENTS_QUEUED_MAX 65536 /* bytes an event client may lag */
#define HTTP_EVENTS_PING_MS 15000    /* a comment line on idle streams */
#define HTTP_EVENTS_SNDBUF 32768     /* kernel send buffer of a stream */
#define HTTP_EVENTS_BACKLOG 64 /* recent events a new stream starts with */

struct http_conn;     /* http.c */
struct http_listener; /* http.c */

struct http {
  uv_loop_t *loop;
  struct metrics *metrics;             /* borrowed */
  struct http_listener *lst, *pending; /* pending: a reload's, not yet in use */
  char token[HTTP_TOKEN_MAX + 1], pending_token[HTTP_TOKEN_MAX + 1];
  struct http_conn *conns; /* a list */
  /* The latest events as sent ("data: …\n\n"), oldest first from
   * backlog_at: a new stream starts with them (the page's timeline). */
  char *backlog[HTTP_EVENTS_BACKLOG];
  size_t backlog_at;
  uv_timer_t ping;
  char rbuf[4096]; /* reads: each is fed to its request at once */
  bool stopped;
  uint64_t accept_errors;
  bool pending_off; /* a reload turns the endpoint off */
  /* Hooks: the metrics text (0, or a CHOREO_E* code; the caller frees
   * *out); the /v1/status and /v1/peers objects (new references, NULL:
   * out of memory). */
  int (*metrics_text)(struct http *h, char **out);
  json_t *(*status)(struct http *h);
  json_t *(*peers)(struct http *h);
};

/* Set up (no I/O). */
void http_init(struct http *h, uv_loop_t *loop, struct metrics *m);
/* Listen on cfg's http.listen (nothing when it is ""), with the token of
 * http.token_file. Returns 0 or a CHOREO_E* code, said in the log with
 * the address. */
int http_start(struct http *h, const struct config *cfg);
/* A reload: bind cfg's listener if it differs from the running one. 0:
 * ready to http_commit(); else the old listener stays and *why (a
 * message, owned by the caller: free()) says what failed. */
int http_prepare(struct http *h, const struct config *cfg, char **why);
/* Use what http_prepare() made ready; http_abort(): drop it. */
void http_commit(struct http *h);
void http_abort(struct http *h);
/* Send an event object to every /v1/events client ("data: JSON"). */
void http_event(struct http *h, json_t *event);
/* Close the listener and every connection; idempotent. */
void http_close(struct http *h);
/* Free the backlog, after http_close() and the loop's last run. */
void http_free(struct http *h);

#endif
