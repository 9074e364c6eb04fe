/*
 * http_req.c — one HTTP request read with http-parser under our bounds,
 * routed and authorised; see http_req.h. http-parser does the grammar
 * (request line, header folding, chunked framing); the limits that make
 * the endpoint safe for a hostile client are ours and are checked here,
 * before a byte beyond them reaches the parser.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_req.h"
#include "util.h"

static struct http_req *req_of(http_parser *p) {
  return container_of(p, struct http_req, parser);
}

/* Stop the parser with status s to answer (the first one set wins). */
static int fail(struct http_req *r, int s) {
  if (r->status == 0)
    r->status = s;
  return -1; /* 1 would mean "no body" to on_headers_complete */
}

static int on_url(http_parser *p, const char *at, size_t len) {
  struct http_req *r = req_of(p);
  if (len > HTTP_URL_MAX - r->url_len)
    return fail(r, 414);
  memcpy(r->url + r->url_len, at, len);
  r->url_len += len;
  r->url[r->url_len] = '\0';
  return 0;
}

static int on_field(http_parser *p, const char *at, size_t len) {
  struct http_req *r = req_of(p);
  if (r->in_value) {
    r->in_value = false;
    r->field_len = 0;
    r->field_long = false;
  }
  if (len > HTTP_FIELD_MAX - r->field_len) {
    r->field_long = true; /* not a header we look at */
    return 0;
  }
  memcpy(r->field + r->field_len, at, len);
  r->field_len += len;
  r->field[r->field_len] = '\0';
  return 0;
}

static int on_value(http_parser *p, const char *at, size_t len) {
  struct http_req *r = req_of(p);
  bool first = !r->in_value;

  r->in_value = true;
  if (r->field_long || strcasecmp(r->field, "authorization") != 0)
    return 0;
  if (first && r->auth_len > 0)
    r->auth_long = true; /* two Authorization headers: take neither */
  if (len > HTTP_AUTH_MAX - r->auth_len) {
    r->auth_long = true;
    return 0;
  }
  memcpy(r->auth + r->auth_len, at, len);
  r->auth_len += len;
  r->auth[r->auth_len] = '\0';
  return 0;
}

static int on_headers_complete(http_parser *p) {
  struct http_req *r = req_of(p);
  r->headers_done = true;
  if (p->method != HTTP_GET && p->method != HTTP_HEAD)
    return fail(r, 405);
  /* A GET has no body; one announced is refused rather than read. */
  if ((p->flags & F_CHUNKED) != 0 ||
      (p->content_length > 0 && p->content_length != ULLONG_MAX))
    return fail(r, 413);
  r->head = p->method == HTTP_HEAD;
  return 0;
}

static int on_message_complete(http_parser *p) {
  req_of(p)->done = true;
  http_parser_pause(p, 1); /* one request per connection */
  return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

void http_req_init(struct http_req *r) {
  memset(r, 0, sizeof(*r));
  http_parser_init(&r->parser, HTTP_REQUEST);
}

enum http_feed http_req_feed(struct http_req *r, const char *buf, size_t len) {
  size_t n = len, used;
  bool capped = false;

  if (r->status != 0)
    return HTTP_REQ_BAD;
  if (r->done)
    return HTTP_REQ_DONE;
  if (len == 0) /* would tell http-parser the stream ended */
    return HTTP_REQ_MORE;
  if (!r->headers_done && r->head_bytes >= HTTP_HEAD_MAX) {
    fail(r, 431);
    return HTTP_REQ_BAD;
  }
  if (!r->headers_done && n > HTTP_HEAD_MAX - r->head_bytes) {
    n = HTTP_HEAD_MAX - r->head_bytes;
    capped = true;
  }
  used = http_parser_execute(&r->parser, &settings, buf, n);
  if (!r->headers_done)
    r->head_bytes += used;
  if (r->status != 0)
    return HTTP_REQ_BAD;
  if (r->done)
    return HTTP_REQ_DONE;
  if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK) {
    fail(r, 400);
    return HTTP_REQ_BAD;
  }
  if (capped && !r->headers_done) {
    fail(r, 431);
    return HTTP_REQ_BAD;
  }
  return HTTP_REQ_MORE;
}

static bool token_ok(const struct http_req *r, const char *token) {
  static const char bearer[] = "Bearer ";
  size_t tlen = strlen(token);

  if (r->auth_long || r->auth_len != sizeof(bearer) - 1 + tlen ||
      strncasecmp(r->auth, bearer, sizeof(bearer) - 1) != 0)
    return false;
  /* Constant time: the comparison doesn't tell how much of a guess was
   * right. */
  return sodium_memcmp(r->auth + sizeof(bearer) - 1, token, tlen) == 0;
}

int http_req_route(const struct http_req *r, const char *token,
                   enum http_route *route) {
  static const char *const paths[] = {
#define XX(id, s) s,
      HTTP_ROUTE_MAP(XX)
#undef XX
  };
  size_t plen = strcspn(r->url, "?#");

  *route = HTTP_ROUTE_NONE;
  for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
    if (strlen(paths[i]) == plen && strncmp(r->url, paths[i], plen) == 0)
      *route = (enum http_route)i;
  }
  if (*route == HTTP_ROUTE_NONE)
    return 404;
  /* The page holds no data (it asks for it with the token it is given);
   * everything else needs the token when there is one. */
  if (token != NULL && token[0] != '\0' && *route != HTTP_ROUTE_PAGE &&
      !token_ok(r, token))
    return 401;
  return 200;
}

const char *http_status_text(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 431:
    return "Request Header Fields Too Large";
  case 503:
    return "Service Unavailable";
  default:
    return "Internal Server Error";
  }
}

/* PORT: 1 to 65535 in decimal, nothing else. */
static int parse_port(const char *s, unsigned *port) {
  unsigned long v;
  char *end;

  if (*s < '0' || *s > '9' || strlen(s) > 5)
    return -1;
  v = strtoul(s, &end, 10);
  if (*end != '\0' || v == 0 || v > 65535)
    return -1;
  *port = (unsigned)v;
  return 0;
}

int http_parse_listen(const char *s, struct sockaddr_storage *ss,
                      bool *loopback, const char **why) {
  char host[64];
  const char *colon = strrchr(s, ':');
  size_t hlen;
  unsigned port;

  memset(ss, 0, sizeof(*ss));
  *why = "expected HOST:PORT, e.g. 127.0.0.1:9100 or [::1]:9100";
  if (colon == NULL || (hlen = (size_t)(colon - s)) == 0 ||
      hlen >= sizeof(host))
    return -1;
  if (parse_port(colon + 1, &port) != 0) {
    *why = "the port must be a number from 1 to 65535";
    return -1;
  }
  if (s[0] == '[') {
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (hlen < 3 || s[hlen - 1] != ']')
      return -1;
    memcpy(host, s + 1, hlen - 2);
    host[hlen - 2] = '\0';
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
      *why = "the host must be a numeric IPv6 address in brackets";
      return -1;
    }
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *loopback = IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr);
    return 0;
  }
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  memcpy(host, s, hlen);
  host[hlen] = '\0';
  if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
    *why = "the host must be a numeric IPv4 address (or [IPv6])";
    return -1;
  }
  a4->sin_family = AF_INET;
  a4->sin_port = htons((uint16_t)port);
  *loopback = (ntohl(a4->sin_addr.s_addr) >> 24) == 127;
  return 0;
}

int http_token_parse(const char *text, size_t len, char *out, size_t size,
                     const char **why) {
  if (len > 0 && text[len - 1] == '\n')
    len--;
  if (len > 0 && text[len - 1] == '\r')
    len--;
  if (len < 16 || len > HTTP_TOKEN_MAX || len >= size) {
    *why = "the token must be one line of 16 to 256 characters";
    return -1;
  }
  for (size_t i = 0; i < len; i++) {
    if (text[i] <= ' ' || text[i] > '~') {
      *why = "the token must be printable ASCII without spaces";
      return -1;
    }
  }
  memcpy(out, text, len);
  out[len] = '\0';
  return 0;
}
