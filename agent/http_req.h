/*
 * http_req.h — the pure half of the HTTP endpoint (agent/http.c): one
 * request read through http-parser with our own bounds, the route it asks
 * for, the bearer token check, and the listen address of http.listen.
 * No sockets and no clock: the unit tests feed bytes and read decisions.
 *
 * Everything a client sends is untrusted: the request head is bounded
 * (HTTP_HEAD_MAX, answered 431), the URL too (414), a body is refused
 * (413), only GET and HEAD are served (405), anything else malformed is
 * 400.
 */
#ifndef CHOREO_HTTP_REQ_H
#define CHOREO_HTTP_REQ_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define HTTP_HEAD_MAX 8192 /* bytes of request line and headers */
#define HTTP_URL_MAX 1024  /* bytes of the request target */
#define HTTP_AUTH_MAX 512  /* bytes of the Authorization header's value */
#define HTTP_TOKEN_MAX 256 /* bytes of the bearer token (token_file) */
#define HTTP_FIELD_MAX 32  /* bytes of a header name we look at */

/* The paths served. */
#define HTTP_ROUTE_MAP(XX)                                                     \
  XX(PAGE, "/")                                                                \
  XX(METRICS, "/metrics")                                                      \
  XX(STATUS, "/v1/status")                                                     \
  XX(PEERS, "/v1/peers")                                                       \
  XX(EVENTS, "/v1/events")

enum http_route {
#define XX(id, s) HTTP_ROUTE_##id,
  HTTP_ROUTE_MAP(XX)
#undef XX
      HTTP_ROUTE_NONE
};

enum http_feed { HTTP_REQ_MORE, HTTP_REQ_DONE, HTTP_REQ_BAD };

struct http_req {
  http_parser parser;
  size_t head_bytes;             /* fed so far, up to the end of the headers */
  bool headers_done, done, head; /* head: the method is HEAD */
  int status;                    /* 0, or the error status to answer */
  char url[HTTP_URL_MAX + 1];
  size_t url_len;
  char field[HTTP_FIELD_MAX + 1]; /* the header name being read */
  size_t field_len;
  bool field_long, in_value;
  char auth[HTTP_AUTH_MAX + 1]; /* Authorization's value */
  size_t auth_len;
  bool auth_long;
};

void http_req_init(struct http_req *r);
/* Feed bytes as they arrive. HTTP_REQ_MORE: the head is not complete yet;
 * HTTP_REQ_DONE: a whole request was read (bytes after it are ignored: one
 * request per connection); HTTP_REQ_BAD: r->status says what to answer. */
enum http_feed http_req_feed(struct http_req *r, const char *buf, size_t len);
/* The answer to a complete request: 200 with *route set, or 401 (token
 * not NULL and no "Authorization: Bearer TOKEN" that matches), 404. */
int http_req_route(const struct http_req *r, const char *token,
                   enum http_route *route);
/* The reason phrase of a status we send ("Not Found"). */
const char *http_status_text(int status);
/* Parse http.listen, "HOST:PORT" with HOST a numeric IPv4 address or a
 * bracketed IPv6 one ("[::1]:9100"), into *ss. *loopback: 127.0.0.0/8 or
 * ::1. Returns 0, or -1 with *why set. */
int http_parse_listen(const char *s, struct sockaddr_storage *ss,
                      bool *loopback, const char **why);
/* Read a bearer token from the text of a token file: one line of
 * printable ASCII without spaces, 16 to HTTP_TOKEN_MAX bytes, a final
 * newline allowed. Returns 0 with out filled, or -1 with *why set. */
int http_token_parse(const char *text, size_t len, char *out, size_t size,
                     const char **why);

#endif
