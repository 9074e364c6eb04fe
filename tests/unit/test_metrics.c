/*
 * test_metrics.c — the agent's counters and gauges in the Prometheus text
 * format: one HELP and TYPE per family, counters typed counter and gauges
 * gauge, labels rendered, the reaction histogram cumulative with its sum
 * and count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

/* The "# TYPE NAME " line of name's family in text: its type word. */
static void type_of(const char *text, const char *name, char *out, size_t len) {
  char head[160];
  const char *p;
  snprintf(head, sizeof(head), "# TYPE %s ", name);
  p = strstr(text, head);
  assert_non_null(p);
  p += strlen(head);
  snprintf(out, len, "%.*s", (int)strcspn(p, "\n"), p);
}

static void metrics_render_groups_families_and_the_histogram(void **state) {
  struct metrics m;
  char *text;

  (void)state;
  memset(&m, 0, sizeof(m));
  m.drop_decode_TOO_BIG = 3;
  m.runs_started = 7;
  m.runs_running = 2;
  m.peers_lost = -1;
  metrics_observe_reaction(&m, 0.3);
  metrics_observe_reaction(&m, 3);
  metrics_observe_reaction(&m, 2000);
  assert_int_equal(metrics_render(&m, &text), 0);
  assert_non_null(strstr(
      text, "# HELP choreo_messages_dropped_total Messages dropped, by reason\n"
            "# TYPE choreo_messages_dropped_total counter\n"
            "choreo_messages_dropped_total{reason=\"too_big\"} 3\n"
            "choreo_messages_dropped_total{reason=\"not_json\"} 0\n"));
  assert_int_equal(count(text, "# HELP choreo_messages_dropped_total "), 1);
  /* Every family has one header: its rows are adjacent in metrics.h. */
  for (const char *p = strstr(text, "# HELP "); p != NULL;
       p = strstr(p + 1, "# HELP ")) {
    char name[128];
    const char *end = strchr(p + 7, ' ');
    assert_non_null(end);
    snprintf(name, sizeof(name), "%.*s ", (int)(end - p), p);
    assert_int_equal(count(text, name), 1);
  }
  assert_int_equal(count(text, "# TYPE choreo_messages_dropped_total "), 1);
  assert_int_equal(count(text, "choreo_messages_dropped_total{"), 15);
  assert_non_null(strstr(text, "# HELP choreo_script_runs_total Behaviour "
                               "and check scripts started\n"
                               "# TYPE choreo_script_runs_total counter\n"
                               "choreo_script_runs_total 7\n"));
  assert_non_null(strstr(text, "# TYPE choreo_peers gauge\n"
                               "choreo_peers{status=\"alive\"} 0\n"
                               "choreo_peers{status=\"lost\"} -1\n"
                               "choreo_peers{status=\"left\"} 0\n"));
  assert_non_null(strstr(text, "# TYPE choreo_scripts_running gauge\n"
                               "choreo_scripts_running 2\n"));
  assert_non_null(strstr(text,
                         "# TYPE choreo_reaction_latency_ms histogram\n"
                         "choreo_reaction_latency_ms_bucket{le=\"0.5\"} 1\n"
                         "choreo_reaction_latency_ms_bucket{le=\"1\"} 1\n"
                         "choreo_reaction_latency_ms_bucket{le=\"2\"} 1\n"
                         "choreo_reaction_latency_ms_bucket{le=\"5\"} 2\n"
                         "choreo_reaction_latency_ms_bucket{le=\"10\"} 2\n"
                         "choreo_reaction_latency_ms_bucket{le=\"50\"} 2\n"
                         "choreo_reaction_latency_ms_bucket{le=\"250\"} 2\n"
                         "choreo_reaction_latency_ms_bucket{le=\"1000\"} 2\n"
                         "choreo_reaction_latency_ms_bucket{le=\"+Inf\"} 3\n"
                         "choreo_reaction_latency_ms_sum 2003.300\n"
                         "choreo_reaction_latency_ms_count 3\n"));
  /* One HELP and one TYPE per family, every line ended. */
  assert_int_equal(count(text, "# HELP "), count(text, "# TYPE "));
  assert_int_equal(count(text, "{}"), 0);
  assert_int_equal(text[strlen(text) - 1], '\n');
  free(text);
}

static void
metrics_type_every_counter_counter_and_every_gauge_gauge(void **state) {
  static const struct {
    const char *name;
    const char *type;
  } rows[] = {
#define XX(id, name, labels, help) {name, "counter"},
      METRICS_COUNTERS(XX)
#undef XX
#define XX(id, name, labels, help) {name, "gauge"},
          METRICS_GAUGES(XX)
#undef XX
  };
  struct metrics m;
  char *text, type[32];

  (void)state;
  memset(&m, 0, sizeof(m));
  assert_int_equal(metrics_render(&m, &text), 0);
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    type_of(text, rows[i].name, type, sizeof(type));
    if (strcmp(type, rows[i].type) != 0)
      fail_msg("%s is typed %s, not %s", rows[i].name, type, rows[i].type);
    /* Prometheus: a counter's name ends in _total */
    if (strcmp(rows[i].type, "counter") == 0)
      assert_non_null(strstr(rows[i].name, "_total"));
  }
  type_of(text, "choreo_reaction_latency_ms", type, sizeof(type));
  assert_string_equal(type, "histogram");
  free(text);
}

static void metrics_render_each_value_on_its_own_row(void **state) {
  static const struct {
    size_t offset;
    int64_t value;
    const char *want;
  } cases[] = {
      {offsetof(struct metrics, msg_received), 5,
       "\nchoreo_messages_received_total 5\n"},
      {offsetof(struct metrics, drop_replay), 2,
       "\nchoreo_messages_dropped_total{reason=\"replay\"} 2\n"},
      {offsetof(struct metrics, mesh_out_up), 4,
       "\nchoreo_connections{direction=\"out\",state=\"up\"} 4\n"},
      {offsetof(struct metrics, runs_queued), -3,
       "\nchoreo_scripts_queued -3\n"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct metrics m;
    char *text;
    memset(&m, 0, sizeof(m));
    memcpy((char *)&m + cases[i].offset, &cases[i].value, sizeof(int64_t));
    assert_int_equal(metrics_render(&m, &text), 0);
    if (strstr(text, cases[i].want) == NULL)
      fail_msg("case %zu: no row %s", i, cases[i].want);
    free(text);
  }
}

static void metrics_histogram_buckets_are_cumulative(void **state) {
  static const double bounds[] = METRICS_REACTION_BOUNDS;
  static const struct {
    double ms;
    const char *first_le; /* the first bucket that counts it */
  } cases[] = {
      {0, "0.5"},   {0.5, "0.5"},  {0.6, "1"},     {1, "1"},
      {1.5, "2"},   {4.9, "5"},    {10, "10"},     {49, "50"},
      {250, "250"}, {999, "1000"}, {1000, "1000"}, {1000.5, "+Inf"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct metrics m;
    char *text, row[96];
    bool counted = false;
    memset(&m, 0, sizeof(m));
    metrics_observe_reaction(&m, cases[i].ms);
    assert_int_equal(metrics_render(&m, &text), 0);
    for (size_t b = 0; b <= sizeof(bounds) / sizeof(bounds[0]); b++) {
      char le[16];
      if (b < sizeof(bounds) / sizeof(bounds[0]))
        snprintf(le, sizeof(le), "%g", bounds[b]);
      else
        snprintf(le, sizeof(le), "+Inf");
      counted |= strcmp(le, cases[i].first_le) == 0;
      snprintf(row, sizeof(row),
               "choreo_reaction_latency_ms_bucket{le=\"%s\"} %d\n", le,
               counted ? 1 : 0);
      if (strstr(text, row) == NULL)
        fail_msg("%g ms: no row %s", cases[i].ms, row);
    }
    assert_non_null(strstr(text, "\nchoreo_reaction_latency_ms_count 1\n"));
    free(text);
  }
}

/* Every reason the decoder can reject a message for has its counter, and
 * metrics_count_reject() moves exactly that one. */
static void metrics_count_every_decoder_rejection(void **state) {
  static const struct {
    enum wire_reject r;
    const char *row;
  } reasons[] = {
#define XX(id, s)                                                              \
  {WIRE_REJECT_##id, "choreo_messages_dropped_total{reason=\"" s "\"} 1\n"},
      WIRE_REJECT_MAP(XX)
#undef XX
  };
  (void)state;
  for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
    struct metrics m;
    char *text;
    memset(&m, 0, sizeof(m));
    metrics_count_reject(&m, reasons[i].r);
    metrics_count_reject(&m, WIRE_OK);
    assert_int_equal(metrics_render(&m, &text), 0);
    assert_non_null(strstr(text, reasons[i].row));
    /* and nothing else moved */
    assert_int_equal(count(text, " 1\n"), 1);
    free(text);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(metrics_render_groups_families_and_the_histogram),
      cmocka_unit_test(
          metrics_type_every_counter_counter_and_every_gauge_gauge),
      cmocka_unit_test(metrics_render_each_value_on_its_own_row),
      cmocka_unit_test(metrics_histogram_buckets_are_cumulative),
      cmocka_unit_test(metrics_count_every_decoder_rejection),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
