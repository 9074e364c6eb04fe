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

/* ---- behaviours ---- */

static const double duration_bounds[] = METRICS_DURATION_BOUNDS;

_Static_assert(ARRAY_SIZE(duration_bounds) ==
                   ARRAY_SIZE(((struct metrics_behaviour *)0)->buckets),
               "one bucket per bound");

static struct metrics_behaviour *behaviour_slot(struct metrics *m,
                                                const char *name) {
  struct metrics_behaviour *b;

  for (size_t i = 0; i < m->nbehaviours; i++) {
    if (strcmp(m->behaviours[i].name, name) == 0)
      return &m->behaviours[i];
  }
  if (m->nbehaviours >= METRICS_BEHAVIOURS_MAX)
    return NULL;
  if (m->nbehaviours == m->behaviours_cap) {
    size_t cap = m->behaviours_cap ? m->behaviours_cap * 2 : 8;
    b = realloc(m->behaviours, cap * sizeof(*b));
    if (b == NULL)
      return NULL;
    m->behaviours = b;
    m->behaviours_cap = cap;
  }
  b = &m->behaviours[m->nbehaviours++];
  memset(b, 0, sizeof(*b));
  snprintf(b->name, sizeof(b->name), "%s", name);
  return b;
}

int metrics_behaviour_done(struct metrics *m, const char *name, bool revert,
                           bool ok, double secs) {
  struct metrics_behaviour *b = behaviour_slot(m, name);

  if (b == NULL)
    return CHOREO_ENOMEM;
  if (!(secs >= 0))
    secs = 0;
  b->runs[revert ? 1 : 0]++;
  if (!ok)
    b->failures++;
  for (size_t i = 0; i < ARRAY_SIZE(duration_bounds); i++) {
    if (secs <= duration_bounds[i]) {
      b->buckets[i]++;
      break;
    }
  }
  b->count++;
  b->sum_s += secs;
  return 0;
}

void metrics_free(struct metrics *m) {
  free(m->behaviours);
  m->behaviours = NULL;
  m->nbehaviours = m->behaviours_cap = 0;
}

/* A label value as the exposition format wants it: \\, \" and \n escaped;
 * bytes past 255 of it are cut (names and states are shorter). */
static const char *label(const char *s, char *buf, size_t size) {
  size_t o = 0;
  for (; *s != '\0' && o + 3 < size; s++) {
    if (*s == '\\' || *s == '"' || *s == '\n') {
      buf[o++] = '\\';
      buf[o++] = *s == '\n' ? 'n' : *s;
    } else {
      buf[o++] = *s;
    }
  }
  buf[o] = '\0';
  return buf;
}

static void render_behaviours(struct text *t, const struct metrics *m) {
  static const char *const actions[] = {"run", "revert"};
  char nb[600];

  text_printf(t, "# HELP choreo_behaviour_runs_total Behaviour actions that "
                 "ended, by behaviour and action\n"
                 "# TYPE choreo_behaviour_runs_total counter\n");
  for (size_t i = 0; i < m->nbehaviours; i++)
    for (size_t k = 0; k < ARRAY_SIZE(actions); k++)
      text_printf(t,
                  "choreo_behaviour_runs_total{behaviour=\"%s\","
                  "action=\"%s\"} %llu\n",
                  label(m->behaviours[i].name, nb, sizeof(nb)), actions[k],
                  (unsigned long long)m->behaviours[i].runs[k]);
  text_printf(t, "# HELP choreo_behaviour_failures_total Behaviour actions "
                 "that failed after their retries\n"
                 "# TYPE choreo_behaviour_failures_total counter\n");
  for (size_t i = 0; i < m->nbehaviours; i++)
    text_printf(t, "choreo_behaviour_failures_total{behaviour=\"%s\"} %llu\n",
                label(m->behaviours[i].name, nb, sizeof(nb)),
                (unsigned long long)m->behaviours[i].failures);
  text_printf(t, "# HELP choreo_behaviour_duration_seconds Time a behaviour "
                 "action took, retries included\n"
                 "# TYPE choreo_behaviour_duration_seconds histogram\n");
  for (size_t i = 0; i < m->nbehaviours; i++) {
    const struct metrics_behaviour *b = &m->behaviours[i];
    uint64_t cumulative = 0;
    label(b->name, nb, sizeof(nb));
    for (size_t k = 0; k < ARRAY_SIZE(duration_bounds); k++) {
      cumulative += b->buckets[k];
      text_printf(t,
                  "choreo_behaviour_duration_seconds_bucket{behaviour=\"%s\","
                  "le=\"%g\"} %llu\n",
                  nb, duration_bounds[k], (unsigned long long)cumulative);
    }
    text_printf(t,
                "choreo_behaviour_duration_seconds_bucket{behaviour=\"%s\","
                "le=\"+Inf\"} %llu\n"
                "choreo_behaviour_duration_seconds_sum{behaviour=\"%s\"} %.6f\n"
                "choreo_behaviour_duration_seconds_count{behaviour=\"%s\"} "
                "%llu\n",
                nb, (unsigned long long)b->count, nb, b->sum_s, nb,
                (unsigned long long)b->count);
  }
}

/* ---- node states ---- */

static void render_nodes(struct text *t, const struct metrics_node *self,
                         const struct metrics_node *peers, size_t n) {
  char a[600], b[600], c[600];

  text_printf(t,
              "# HELP choreo_own_state This node's state (1: the current "
              "one)\n# TYPE choreo_own_state gauge\n"
              "choreo_own_state{state=\"%s\"} 1\n",
              label(self->state, a, sizeof(a)));
  text_printf(t,
              "# HELP choreo_own_state_age_seconds Time this node has "
              "been in its state\n"
              "# TYPE choreo_own_state_age_seconds gauge\n"
              "choreo_own_state_age_seconds %.3f\n",
              self->age_s);
  text_printf(t, "# HELP choreo_peer_state Each peer's state as this node "
                 "sees it, one row per group (1: the current one)\n"
                 "# TYPE choreo_peer_state gauge\n");
  for (size_t i = 0; i < n; i++) {
    const struct metrics_node *p = &peers[i];
    label(p->name, a, sizeof(a));
    label(p->state, c, sizeof(c));
    if (p->ngroups == 0)
      text_printf(t,
                  "choreo_peer_state{peer=\"%s\",group=\"\",state=\"%s\"} 1\n",
                  a, c);
    for (size_t g = 0; g < p->ngroups; g++)
      text_printf(
          t, "choreo_peer_state{peer=\"%s\",group=\"%s\",state=\"%s\"} 1\n", a,
          label(p->groups[g], b, sizeof(b)), c);
  }
  text_printf(t, "# HELP choreo_peer_state_age_seconds Time each peer has "
                 "been in its state\n"
                 "# TYPE choreo_peer_state_age_seconds gauge\n");
  for (size_t i = 0; i < n; i++)
    text_printf(t, "choreo_peer_state_age_seconds{peer=\"%s\"} %.3f\n",
                label(peers[i].name, a, sizeof(a)), peers[i].age_s);
  text_printf(t,
              "# HELP choreo_build_info The agent's version\n"
              "# TYPE choreo_build_info gauge\n"
              "choreo_build_info{version=\"%s\"} 1\n",
              CHOREO_VERSION);
}

static int render(const struct metrics *m, const struct metrics_node *self,
                  const struct metrics_node *peers, size_t n, char **out) {
  struct text t = {NULL, 0, 0, 0};

  *out = NULL;
  if ((t.p = malloc(4096)) == NULL)
    return CHOREO_ENOMEM;
  t.cap = 4096;
  t.p[0] = '\0';
  render_families(&t, m);
  render_reaction(&t, m);
  render_behaviours(&t, m);
  if (self != NULL)
    render_nodes(&t, self, peers, n);
  if (t.err != 0) {
    free(t.p);
    return t.err;
  }
  *out = t.p;
  return 0;
}

int metrics_render(const struct metrics *m, char **out) {
  return render(m, NULL, NULL, 0, out);
}

int metrics_render_nodes(const struct metrics *m,
                         const struct metrics_node *self,
                         const struct metrics_node *peers, size_t n,
                         char **out) {
  return render(m, self, peers, n, out);
}
