/*
 * engine.c (bench) — the cost of one reaction of the behaviour engine: a
 * peer changes state in a table of 1,000 peers watched by 1,000 condition
 * behaviours; the time measured runs from the merge of the peer's record
 * (whose event feeds the engine) to the last engine_step() that issues
 * nothing more, every action ending at once as a script that returns
 * immediately would. Two configurations:
 *
 *   shared    every behaviour has the same selector and condition
 *             ({any: maintenance} over group db): all 1,000 run, then
 *             revert, at each change;
 *   distinct  behaviour i has its own quorum rule ({fewer_than: i + 1,
 *             state: ready} over group db): one flips at each change.
 *
 * The peer toggles between ready and maintenance, one change per run;
 * prints the median of 31 runs (after 3 warm-up runs) for each, in
 * microseconds. Usage: bench-engine [RUNS]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "peers.h"
#include "util.h"

#define NPEERS 1000
#define NBEHAVIOURS 1000
#define WARMUP 3
#define RUNS_DEFAULT 31

enum kind { SHARED, DISTINCT };

struct bench {
  struct config cfg;
  struct peers p;
  struct engine e;
  uint64_t now;
  size_t actions; /* issued in the last measured run */
};

static void on_event(void *arg, const struct peer_event *ev) {
  struct bench *b = arg;
  engine_peer_event(&b->e, ev, b->now);
}

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void behaviour(struct config_behaviour *cb, enum kind k, size_t i) {
  snprintf(cb->name, sizeof(cb->name), "b%zu", i);
  snprintf(cb->peers.group, sizeof(cb->peers.group), "db");
  cb->has_when = true;
  cb->when.nstates = 1;
  cb->timeout_ms = 30000;
  if (k == SHARED) {
    cb->when.kind = COND_ANY;
    snprintf(cb->when.states[0], sizeof(cb->when.states[0]), "maintenance");
  } else {
    cb->when.kind = COND_FEWER_THAN;
    cb->when.n = (unsigned)i + 1;
    snprintf(cb->when.states[0], sizeof(cb->when.states[0]), "ready");
  }
}

static int publish(struct bench *b, size_t peer, const char *state,
                   uint64_t ver) {
  struct record r;

  if (record_init(&r) != 0)
    return -1;
  snprintf(r.name, sizeof(r.name), "db%04zu", peer);
  snprintf(r.addr, sizeof(r.addr), "tcp://127.0.0.1:%zu", 20000 + peer);
  snprintf(r.state, sizeof(r.state), "%s", state);
  snprintf(r.groups[0], sizeof(r.groups[0]), "db");
  r.ngroups = 1;
  r.inc = 1;
  r.ver = ver;
  (void)peers_merge_direct(&b->p, &r, b->now, (int64_t)b->now, NULL);
  record_free(&r);
  return 0;
}

/* Step until nothing more is due; returns the actions issued. */
static size_t drain(struct bench *b) {
  struct engine_action acts[64];
  uint64_t deadline;
  size_t n, total = 0;

  while ((n = engine_step(&b->e, &b->p, b->now, acts, ARRAY_SIZE(acts),
                          &deadline)) > 0) {
    for (size_t i = 0; i < n; i++)
      engine_done(&b->e, acts[i].behaviour, b->now);
    total += n;
  }
  return total;
}

static int setup(struct bench *b, enum kind k) {
  memset(b, 0, sizeof(*b));
  b->cfg.behaviours = calloc(NBEHAVIOURS, sizeof(*b->cfg.behaviours));
  b->cfg.data = json_object();
  if (b->cfg.behaviours == NULL || b->cfg.data == NULL)
    return -1;
  b->cfg.nbehaviours = NBEHAVIOURS;
  snprintf(b->cfg.name, sizeof(b->cfg.name), "self");
  for (size_t i = 0; i < NBEHAVIOURS; i++)
    behaviour(&b->cfg.behaviours[i], k, i);
  peers_init(&b->p, "self", PEERS_MAX_DEFAULT, on_event, b);
  if (engine_init(&b->e, &b->cfg, 0) != 0)
    return -1;
  for (size_t i = 0; i < NPEERS; i++)
    if (publish(b, i, "ready", 1) != 0)
      return -1;
  engine_set_synced(&b->e, 0);
  (void)drain(b);
  return 0;
}

static void teardown(struct bench *b) {
  engine_free(&b->e);
  peers_free(&b->p);
  free(b->cfg.behaviours);
  json_decref(b->cfg.data);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median time of `runs` reactions, in microseconds. */
static int measure(enum kind k, int runs, double *median, size_t *actions) {
  struct bench b;
  double *t = calloc((size_t)runs, sizeof(*t));
  int rv = -1;

  if (t == NULL || setup(&b, k) != 0)
    goto out;
  for (int i = 0; i < WARMUP + runs; i++) {
    const char *state = i % 2 == 0 ? "maintenance" : "ready";
    double t0;

    b.now += 10;
    t0 = now_us();
    if (publish(&b, NPEERS / 2, state, 2 + (uint64_t)i) != 0)
      goto out;
    *actions = drain(&b);
    if (i >= WARMUP)
      t[i - WARMUP] = now_us() - t0;
  }
  qsort(t, (size_t)runs, sizeof(*t), cmp_double);
  *median = t[runs / 2];
  rv = 0;
out:
  teardown(&b);
  free(t);
  return rv;
}

int main(int argc, char **argv) {
  static const struct {
    enum kind kind;
    const char *name;
  } cases[] = {{SHARED, "shared"}, {DISTINCT, "distinct"}};
  int runs = RUNS_DEFAULT;

  if (argc > 1 && (runs = (int)strtol(argv[1], NULL, 10)) < 1) {
    fprintf(stderr, "usage: %s [RUNS]\n", argv[0]);
    return 2;
  }
  printf("engine: %d behaviours, %d peers, one state change; median of %d\n",
         NBEHAVIOURS, NPEERS, runs);
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    double median;
    size_t actions = 0;
    if (measure(cases[i].kind, runs, &median, &actions) != 0) {
      fprintf(stderr, "%s: setup failed\n", cases[i].name);
      return 1;
    }
    printf("%-9s %10.1f us  (%zu actions in the last run)\n", cases[i].name,
           median, actions);
  }
  return 0;
}
