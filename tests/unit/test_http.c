/*
 * test_http.c — the pure half of the HTTP endpoint (agent/http_req.c):
 * requests read under our bounds, fed whole or a byte at a time; the
 * status each hostile request gets; routing and the bearer token; the
 * listen address and token file; and the state gauges of /metrics
 * (agent/metrics.c) with their label escaping; the http section of the
 * configuration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "http_req.h"
#include "metrics.h"

/* Feed text in chunks of step bytes (0: all at once); the last result. */
static enum http_feed feed(struct http_req *r, const char *text, size_t step) {
  size_t len = strlen(text), off = 0;
  enum http_feed f = HTTP_REQ_MORE;

  http_req_init(r);
  if (step == 0)
    step = len;
  while (off < len && f == HTTP_REQ_MORE) {
    size_t n = len - off < step ? len - off : step;
    f = http_req_feed(r, text + off, n);
    off += n;
  }
  return f;
}

/* The status a request gets: its error, or its route's answer. */
static int answer(const char *text, size_t step, const char *token,
                  enum http_route *route) {
  struct http_req r;
  enum http_route dummy;
  enum http_feed f = feed(&r, text, step);

  if (f == HTTP_REQ_MORE)
    return 0;
  if (f == HTTP_REQ_BAD)
    return r.status;
  return http_req_route(&r, token, route != NULL ? route : &dummy);
}

static char *repeat(const char *prefix, char c, size_t n, const char *suffix) {
  size_t p = strlen(prefix), s = strlen(suffix);
  char *out = malloc(p + n + s + 1);
  assert_non_null(out);
  memcpy(out, prefix, p);
  memset(out + p, c, n);
  memcpy(out + p + n, suffix, s + 1);
  return out;
}

static const struct {
  const char *request;
  int status;
  enum http_route route;
} cases[] = {
    {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, HTTP_ROUTE_PAGE},
    {"GET /metrics HTTP/1.1\r\n\r\n", 200, HTTP_ROUTE_METRICS},
    {"HEAD /metrics HTTP/1.0\r\n\r\n", 200, HTTP_ROUTE_METRICS},
    {"GET /v1/status?x=1 HTTP/1.1\r\n\r\n", 200, HTTP_ROUTE_STATUS},
    {"GET /v1/peers HTTP/1.1\r\n\r\n", 200, HTTP_ROUTE_PEERS},
    {"GET /v1/events HTTP/1.1\r\n\r\n", 200, HTTP_ROUTE_EVENTS},
    {"GET /v1/event HTTP/1.1\r\n\r\n", 404, HTTP_ROUTE_NONE},
    {"GET /metrics/ HTTP/1.1\r\n\r\n", 404, HTTP_ROUTE_NONE},
    {"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405,
     HTTP_ROUTE_NONE},
    {"DELETE / HTTP/1.1\r\n\r\n", 405, HTTP_ROUTE_NONE},
    {"GET / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 413, HTTP_ROUTE_NONE},
    {"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 413,
     HTTP_ROUTE_NONE},
    {"GARBAGE\r\n\r\n", 400, HTTP_ROUTE_NONE},
    {"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400, HTTP_ROUTE_NONE},
    {"GET / HTTP/1.1 extra\r\n\r\n", 400, HTTP_ROUTE_NONE},
    {"G\001T / HTTP/1.1\r\n\r\n", 400, HTTP_ROUTE_NONE},
};

static void http_answers_each_request_of_the_table(void **state) {
  static const size_t steps[] = {0, 1, 7};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
      enum http_route route = HTTP_ROUTE_NONE;
      int got = answer(cases[i].request, steps[k], NULL, &route);
      if (got != cases[i].status)
        fail_msg("case %zu step %zu: %d, expected %d", i, steps[k], got,
                 cases[i].status);
      if (got == 200)
        assert_int_equal(route, cases[i].route);
    }
  }
}

static void http_waits_for_the_end_of_the_head(void **state) {
  struct http_req r;
  assert_int_equal(feed(&r, "GET / HTTP/1.1\r\nHost: a\r\n", 0), HTTP_REQ_MORE);
  assert_int_equal(http_req_feed(&r, "\r\n", 2), HTTP_REQ_DONE);
  assert_false(r.head);
}

static void http_refuses_a_head_over_the_limit_with_431(void **state) {
  char *big =
      repeat("GET / HTTP/1.1\r\nX-Big: ", 'a', HTTP_HEAD_MAX, "\r\n\r\n");
  char *fits =
      repeat("GET / HTTP/1.1\r\nX-Big: ", 'a', HTTP_HEAD_MAX - 64, "\r\n\r\n");
  assert_int_equal(answer(big, 0, NULL, NULL), 431);
  assert_int_equal(answer(big, 4096, NULL, NULL), 431);
  assert_int_equal(answer(big, 1000, NULL, NULL), 431);
  assert_int_equal(answer(fits, 4096, NULL, NULL), 200);
  assert_int_equal(answer(fits, 0, NULL, NULL), 200);
  free(big);
  free(fits);
}

static void http_refuses_a_long_url_with_414(void **state) {
  char *url = repeat("GET /", 'a', HTTP_URL_MAX, " HTTP/1.1\r\n\r\n");
  assert_int_equal(answer(url, 0, NULL, NULL), 414);
  assert_int_equal(answer(url, 100, NULL, NULL), 414);
  free(url);
}

static void http_wants_the_bearer_token_except_for_the_page(void **state) {
  const char *tok = "0123456789abcdef0123";
  assert_int_equal(answer("GET /metrics HTTP/1.1\r\n\r\n", 0, tok, NULL), 401);
  assert_int_equal(answer("GET /metrics HTTP/1.1\r\nAuthorization: Bearer "
                          "0123456789abcdef0123\r\n\r\n",
                          3, tok, NULL),
                   200);
  assert_int_equal(answer("GET /metrics HTTP/1.1\r\nauthorization: bearer "
                          "0123456789abcdef0123\r\n\r\n",
                          0, tok, NULL),
                   200);
  assert_int_equal(answer("GET /metrics HTTP/1.1\r\nAuthorization: Bearer "
                          "0123456789abcdef012\r\n\r\n",
                          0, tok, NULL),
                   401);
  assert_int_equal(answer("GET /metrics HTTP/1.1\r\nAuthorization: Bearer "
                          "0123456789abcdef0123x\r\n\r\n",
                          0, tok, NULL),
                   401);
  /* Two Authorization headers: neither counts. */
  assert_int_equal(answer("GET /metrics HTTP/1.1\r\nAuthorization: Bearer "
                          "0123456789abcdef0123\r\nAuthorization: x\r\n\r\n",
                          0, tok, NULL),
                   401);
  assert_int_equal(answer("GET / HTTP/1.1\r\n\r\n", 0, tok, NULL), 200);
  assert_int_equal(answer("GET /metrics HTTP/1.1\r\n\r\n", 0, "", NULL), 200);
}

static void http_parses_listen_addresses(void **state) {
  struct sockaddr_storage ss;
  const char *why;
  bool lo;
  assert_int_equal(http_parse_listen("127.0.0.1:9100", &ss, &lo, &why), 0);
  assert_true(lo);
  assert_int_equal(http_parse_listen("127.1.2.3:1", &ss, &lo, &why), 0);
  assert_true(lo);
  assert_int_equal(http_parse_listen("[::1]:9100", &ss, &lo, &why), 0);
  assert_true(lo);
  assert_int_equal(http_parse_listen("0.0.0.0:9100", &ss, &lo, &why), 0);
  assert_false(lo);
  assert_int_equal(http_parse_listen("[::]:80", &ss, &lo, &why), 0);
  assert_false(lo);
  static const char *const bad[] = {"",
                                    "9100",
                                    "127.0.0.1",
                                    "127.0.0.1:",
                                    "127.0.0.1:0",
                                    "127.0.0.1:65536",
                                    "127.0.0.1:9x",
                                    "localhost:9100",
                                    "::1:9100",
                                    "[::1]",
                                    "[nope]:1",
                                    "127.0.0.1:+80",
                                    ":9100"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (http_parse_listen(bad[i], &ss, &lo, &why) == 0)
      fail_msg("\"%s\" accepted", bad[i]);
  }
}

static void http_reads_a_token_file_of_one_line(void **state) {
  char out[HTTP_TOKEN_MAX + 1];
  const char *why;
  assert_int_equal(
      http_token_parse("0123456789abcdef\n", 17, out, sizeof(out), &why), 0);
  assert_string_equal(out, "0123456789abcdef");
  assert_int_not_equal(http_token_parse("short\n", 6, out, sizeof(out), &why),
                       0);
  assert_int_not_equal(
      http_token_parse("0123456789 abcdef", 17, out, sizeof(out), &why), 0);
  assert_int_not_equal(
      http_token_parse("0123456789abcdef\n\n", 18, out, sizeof(out), &why), 0);
}

/* ---- the gauges of /metrics ---- */

static void metrics_render_the_state_gauges_escaped(void **state) {
  struct metrics m;
  static const char groups[2][CHOREO_NAME_MAX + 1] = {"db", "eu"};
  struct metrics_node self = {"web1", "ready", NULL, 0, 12.5};
  struct metrics_node peers[] = {
      {"db1", "maintenance", groups, 2, 7200},
      {"odd", "a\"b\\c\nd", NULL, 0, 0},
  };
  char *text;

  memset(&m, 0, sizeof(m));
  assert_int_equal(metrics_render_nodes(&m, &self, peers, 2, &text), 0);
  assert_non_null(strstr(text, "choreo_own_state{state=\"ready\"} 1\n"));
  assert_non_null(strstr(text, "choreo_own_state_age_seconds 12.500\n"));
  assert_non_null(strstr(text, "choreo_peer_state{peer=\"db1\",group=\"db\","
                               "state=\"maintenance\"} 1\n"));
  assert_non_null(strstr(text, "choreo_peer_state{peer=\"db1\",group=\"eu\","
                               "state=\"maintenance\"} 1\n"));
  assert_non_null(strstr(text, "choreo_peer_state{peer=\"odd\",group=\"\","
                               "state=\"a\\\"b\\\\c\\nd\"} 1\n"));
  assert_non_null(
      strstr(text, "choreo_peer_state_age_seconds{peer=\"db1\"} 7200.000\n"));
  assert_non_null(strstr(text, "# TYPE choreo_peer_state gauge\n"));
  assert_non_null(
      strstr(text, "choreo_build_info{version=\"" CHOREO_VERSION "\"} 1\n"));
  free(text);
}

static void metrics_count_behaviour_runs_by_name(void **state) {
  struct metrics m;
  char *text;

  memset(&m, 0, sizeof(m));
  assert_int_equal(metrics_behaviour_done(&m, "drain", false, true, 0.02), 0);
  assert_int_equal(metrics_behaviour_done(&m, "drain", true, false, 3), 0);
  assert_int_equal(metrics_behaviour_done(&m, "page", false, true, 500), 0);
  assert_int_equal(metrics_render(&m, &text), 0);
  assert_non_null(strstr(text, "# TYPE choreo_behaviour_runs_total counter\n"));
  assert_non_null(strstr(
      text,
      "choreo_behaviour_runs_total{behaviour=\"drain\",action=\"run\"} 1\n"));
  assert_non_null(strstr(text, "choreo_behaviour_runs_total{behaviour="
                               "\"drain\",action=\"revert\"} 1\n"));
  assert_non_null(
      strstr(text, "choreo_behaviour_failures_total{behaviour=\"drain\"} 1\n"));
  assert_non_null(
      strstr(text, "choreo_behaviour_failures_total{behaviour=\"page\"} 0\n"));
  assert_non_null(
      strstr(text, "# TYPE choreo_behaviour_duration_seconds histogram\n"));
  assert_non_null(strstr(text, "choreo_behaviour_duration_seconds_bucket{"
                               "behaviour=\"drain\",le=\"0.05\"} 1\n"));
  assert_non_null(strstr(text, "choreo_behaviour_duration_seconds_bucket{"
                               "behaviour=\"drain\",le=\"5\"} 2\n"));
  /* Above the last bound: in +Inf and the count only. */
  assert_non_null(strstr(text, "choreo_behaviour_duration_seconds_bucket{"
                               "behaviour=\"page\",le=\"120\"} 0\n"));
  assert_non_null(strstr(text, "choreo_behaviour_duration_seconds_bucket{"
                               "behaviour=\"page\",le=\"+Inf\"} 1\n"));
  assert_non_null(strstr(
      text,
      "choreo_behaviour_duration_seconds_count{behaviour=\"drain\"} 2\n"));
  free(text);
  metrics_free(&m);
}

/* ---- the http section of the configuration ---- */

static int load_text(const char *yaml, struct config **cfg,
                     struct config_errors *errs) {
  char path[] = "/tmp/choreo-test-http.XXXXXX";
  int fd = mkstemp(path), rv;
  assert_true(fd >= 0);
  assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
  close(fd);
  rv = config_load(path, cfg, errs);
  unlink(path);
  return rv;
}

static void config_reads_the_http_section(void **state) {
  struct config_errors errs = {0};
  struct config *cfg = NULL;
  assert_int_equal(
      load_text("node: {name: a}\nhttp: {listen: \"127.0.0.1:9100\"}\n", &cfg,
                &errs),
      0);
  assert_string_equal(cfg->http_listen, "127.0.0.1:9100");
  assert_string_equal(cfg->http_token_file, "");
  config_free(cfg);
  assert_int_equal(load_text("node: {name: a}\n", &cfg, &errs), 0);
  assert_string_equal(cfg->http_listen, "");
  config_free(cfg);
}

static void config_rejects_bad_http_settings(void **state) {
  static const struct {
    const char *yaml, *msg;
  } bad[] = {
      {"http: {listen: \"0.0.0.0:9100\"}\n",
       ":1:16: http.listen: 0.0.0.0:9100 is not a loopback address"},
      {"http: {listen: \"127.0.0.1:99999\"}\n", ":1:16: http.listen: "},
      {"http: {listen: \"localhost:80\"}\n", ":1:16: http.listen: "},
      {"http: {token_file: /x}\n", ":1:7: http: needs \"listen\""},
      {"http: {listen: \"127.0.0.1:1\", tls: 1}\n", "unknown key \"tls\""},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct config_errors errs = {0};
    struct config *cfg = NULL;
    assert_int_not_equal(load_text(bad[i].yaml, &cfg, &errs), 0);
    assert_null(cfg);
    assert_true(errs.n >= 1);
    if (strstr(errs.msg[0], bad[i].msg) == NULL)
      fail_msg("case %zu: \"%s\" lacks \"%s\"", i, errs.msg[0], bad[i].msg);
    config_errors_free(&errs);
  }
}

static void config_takes_a_public_listener_with_a_token(void **state) {
  struct config_errors errs = {0};
  struct config *cfg = NULL;
  assert_int_equal(
      load_text("http: {listen: \"0.0.0.0:9100\", token_file: /etc/t}\n", &cfg,
                &errs),
      0);
  assert_string_equal(cfg->http_token_file, "/etc/t");
  config_free(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(http_answers_each_request_of_the_table),
      cmocka_unit_test(http_waits_for_the_end_of_the_head),
      cmocka_unit_test(http_refuses_a_head_over_the_limit_with_431),
      cmocka_unit_test(http_refuses_a_long_url_with_414),
      cmocka_unit_test(http_wants_the_bearer_token_except_for_the_page),
      cmocka_unit_test(http_parses_listen_addresses),
      cmocka_unit_test(http_reads_a_token_file_of_one_line),
      cmocka_unit_test(metrics_render_the_state_gauges_escaped),
      cmocka_unit_test(metrics_count_behaviour_runs_by_name),
      cmocka_unit_test(config_reads_the_http_section),
      cmocka_unit_test(config_rejects_bad_http_settings),
      cmocka_unit_test(config_takes_a_public_listener_with_a_token),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
