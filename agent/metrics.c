/*
 * metrics.c — the agent's counters and gauges in the Prometheus text
 * exposition format 0.0.4, for `choreo metrics`; metrics.h lists them.
 *
 * Rows of metrics.h that share a metric name are one family: its HELP and
 * TYPE lines are written once, followed by all its rows, since the format
 * wants each family in one group. The reaction latency is a histogram with
 * the fixed bounds METRICS_REACTION_BOUNDS.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "choreo.h"
#include "metrics.h"
#include "util.h"

#define REACTION_NAME "choreo_reaction_latency_ms"
#define REACTION_HELP                                                          \
  "Time from a message received to the script it caused started, in "          \
  "milliseconds"

struct row {
  const char *name, *labels, *help;
  bool gauge;
  size_t off; /* of the value in struct metrics */
};

static const struct row rows[] = {
#define XX(id, name, labels, help)                                             \
  {name, labels, help, false, offsetof(struct metrics, id)},
    METRICS_COUNTERS(XX)
#undef XX
#define XX(id, name, labels, help)                                             \
  {name, labels, help, true, offsetof(struct metrics, id)},
        METRICS_GAUGES(XX)
#undef XX
};

static const double reaction_bounds[] = METRICS_REACTION_BOUNDS;

_Static_assert(ARRAY_SIZE(reaction_bounds) ==
                   ARRAY_SIZE(((struct metrics *)0)->reaction_buckets),
               "one bucket per bound");

/* The buckets count each observation once, in the first bound that holds
 * it; rendering makes them cumulative. Above the last bound an observation
 * is only in the count. */
void metrics_observe_reaction(struct metrics *m, double ms) {
  if (!(ms >= 0))
    ms = 0; /* negative or NaN: a clock quirk, not a real latency */
  for (size_t i = 0; i < ARRAY_SIZE(reaction_bounds); i++) {
    if (ms <= reaction_bounds[i]) {
      m->reaction_buckets[i]++;
      break;
    }
  }
  m->reaction_count++;
  m->reaction_sum_ms += ms;
}

void metrics_count_reject(struct metrics *m, enum wire_reject r) {
  switch (r) {
#define XX(id, s)                                                              \
  case WIRE_REJECT_##id:                                                       \
    m->drop_decode_##id++;                                                     \
    break;
    WIRE_REJECT_MAP(XX)
#undef XX
  case WIRE_OK:
    break;
  }
}

/* ---- a growing text buffer; the first failure sticks ---- */

struct text {
  char *p;
  size_t len, cap;
  int err;
};

#if defined(__GNUC__)
static void text_printf(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
#endif

static void text_printf(struct text *t, const char *fmt, ...) {
  va_list ap;
  int n;

  if (t->err != 0)
    return;
  va_start(ap, fmt);
  n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  if (n < 0) {
    t->err = CHOREO_ENOMEM; /* only our own formats: cannot happen */
    return;
  }
  if ((size_t)n >= t->cap - t->len) {
    size_t cap = (t->len + (size_t)n + 1) * 2;
    char *p = realloc(t->p, cap);
    if (p == NULL) {
      t->err = CHOREO_ENOMEM;
      return;
    }
    t->p = p;
    t->cap = cap;
    va_start(ap, fmt);
    vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
  }
  t->len += (size_t)n;
}

/* ---- rendering ---- */

static void render_row(struct text *t, const struct metrics *m,
                       const struct row *r) {
  const char *base = (const char *)m + r->off;
  const char *open = r->labels[0] != '\0' ? "{" : "";
  const char *close = r->labels[0] != '\0' ? "}" : "";

  if (r->gauge) {
    int64_t v;
    memcpy(&v, base, sizeof(v));
    text_printf(t, "%s%s%s%s %lld\n", r->name, open, r->labels, close,
                (long long)v);
  } else {
    uint64_t v;
    memcpy(&v, base, sizeof(v));
    text_printf(t, "%s%s%s%s %llu\n", r->name, open, r->labels, close,
                (unsigned long long)v);
  }
}

/* The rows of one family are adjacent in the list (metrics.h): a
 * family's header comes before its first row. */
static void render_families(struct text *t, const struct metrics *m) {
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    if (i == 0 || strcmp(rows[i - 1].name, rows[i].name) != 0)
      text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", rows[i].name, rows[i].help,
                  rows[i].name, rows[i].gauge ? "gauge" : "counter");
    render_row(t, m, &rows[i]);
  }
}

static void render_reaction(struct text *t, const struct metrics *m) {
  uint64_t cumulative = 0;

  text_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", REACTION_NAME,
              REACTION_HELP, REACTION_NAME);
  for (size_t i = 0; i < ARRAY_SIZE(reaction_bounds); i++) {
    cumulative += m->reaction_buckets[i];
    text_printf(t, "%s_bucket{le=\"%g\"} %llu\n", REACTION_NAME,
                reaction_bounds[i], (unsigned long long)cumulative);
  }
  text_printf(t, "%s_bucket{le=\"+Inf\"} %llu\n", REACTION_NAME,
              (unsigned long long)m->reaction_count);
  text_printf(t, "%s_sum %.3f\n", REACTION_NAME, m->reaction_sum_ms);
  text_printf(t, "%s_count %llu\n", REACTION_NAME,
              (unsigned long long)m->reaction_count);
}

int metrics_render(const struct metrics *m, char **out) {
  struct text t = {NULL, 0, 0, 0};

  *out = NULL;
  if ((t.p = malloc(4096)) == NULL)
    return CHOREO_ENOMEM;
  t.cap = 4096;
  t.p[0] = '\0';
  render_families(&t, m);
  render_reaction(&t, m);
  if (t.err != 0) {
    free(t.p);
    return t.err;
  }
  *out = t.p;
  return 0;
}
