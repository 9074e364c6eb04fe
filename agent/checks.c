/*
 * checks.c — the checks part: periodic health checks (docs/CONFIGURATION.md
 * "checks"). Each check of the configuration has a timer; every interval
 * the run hook starts it through the runner (agent_jobs.c), unless the
 * previous run is still going, and its results are counted against rise
 * and fall (policy_check_result). A failing check's state competes for
 * this node's own state (agent_self.c), so every result goes to the
 * changed hook. On reload the whole set is replaced; its memory goes with
 * the close callback of its last timer.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "util.h"

static struct agent *agent_of(const struct checks *c) {
  return AGENT_OF(c, checks);
}

bool checks_failing(const struct checks *c, size_t *index) {
  for (size_t i = 0; c->set != NULL && i < c->set->n; i++) {
    if (c->set->v[i].count.failing) {
      *index = i;
      return true;
    }
  }
  return false;
}

void checks_result(struct checks *c, const char *name, bool ok) {
  const struct config *cfg = agent_of(c)->cfg;
  for (size_t i = 0; c->set != NULL && i < c->set->n; i++) {
    const struct config_check *cc = &cfg->checks[i];
    struct check_state *cs = &c->set->v[i];
    if (strcmp(cc->name, name) != 0)
      continue;
    cs->running = false;
    switch (policy_check_result(&cs->count, ok, cc->rise, cc->fall)) {
    case POLICY_CHECK_FAILS:
      log_warn("check %s: failing after %u failures", cc->name,
               cs->count.fails);
      break;
    case POLICY_CHECK_PASSES:
      log_info("check %s: passing again after %u passes", cc->name,
               cs->count.passes);
      break;
    case POLICY_CHECK_SAME:
      break;
    }
    c->changed(c);
    return;
  }
}

static void on_check_timer(uv_timer_t *t) {
  struct check_state *cs = container_of(t, struct check_state, timer);
  struct checks *c = cs->set->owner;
  const struct config_check *cc = &agent_of(c)->cfg->checks[cs - cs->set->v];

  if (cs->running)
    return; /* the previous run is still going: skip this beat */
  if (c->run(c, cc) != 0) {
    checks_result(c, cc->name, false);
    return;
  }
  cs->running = true;
}

int checks_start(struct checks *c) {
  struct agent *a = agent_of(c);
  size_t n = a->cfg->nchecks;
  struct check_set *set = calloc(1, sizeof(*set) + n * sizeof(set->v[0]));
  if (set == NULL)
    return CHOREO_ENOMEM;
  set->owner = c;
  set->n = n;
  for (size_t i = 0; i < n; i++) {
    set->v[i].set = set;
    uv_timer_init(&a->loop, &set->v[i].timer);
    uv_timer_start(&set->v[i].timer, on_check_timer, 0,
                   a->cfg->checks[i].interval_ms);
  }
  c->set = set;
  return 0;
}

static void on_check_closed(uv_handle_t *h) {
  struct check_state *cs =
      container_of((uv_timer_t *)h, struct check_state, timer);
  struct check_set *set = cs->set;
  /* The set's memory goes with its last timer. */
  if (--set->closing == 0)
    free(set);
}

void checks_stop(struct checks *c) {
  struct check_set *set = c->set;
  if (set == NULL)
    return;
  c->set = NULL;
  if (set->n == 0) {
    free(set);
    return;
  }
  set->closing = set->n;
  for (size_t i = 0; i < set->n; i++)
    uv_close((uv_handle_t *)&set->v[i].timer, on_check_closed);
}
