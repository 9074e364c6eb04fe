/*
 * agent_jobs.c — carrying out what the engine decides, and running checks.
 *
 * Each engine action becomes a runner job with the environment and the
 * JSON input of SPEC.md ("What a behaviour script receives"); its end goes
 * back to the engine by behaviour name, so that a reload in between can't
 * misroute it. Checks are periodic runner jobs whose results, counted
 * against rise and fall, feed this node's own state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "util.h"
#include "view.h"

extern char **environ;

#define ENV_EXTRA_MAX 16

/* ---- environment ---- */

struct env {
  char **v;
  size_t n, cap;
};

/* Append "key=value", or key alone (already "K=V") when value is NULL. */
static int env_add(struct env *e, const char *key, const char *value) {
  size_t len = strlen(key) + (value != NULL ? strlen(value) + 1 : 0) + 1;
  char *s;
  if (e->n + 2 > e->cap) {
    size_t cap = e->cap == 0 ? 64 : e->cap * 2;
    char **v = realloc(e->v, cap * sizeof(*v));
    if (v == NULL)
      return CHOREO_ENOMEM;
    e->v = v;
    e->cap = cap;
  }
  s = malloc(len);
  if (s == NULL)
    return CHOREO_ENOMEM;
  snprintf(s, len, "%s%s%s", key, value != NULL ? "=" : "",
           value != NULL ? value : "");
  e->v[e->n++] = s;
  e->v[e->n] = NULL;
  return 0;
}

static void env_free(struct env *e) {
  for (size_t i = 0; i < e->n; i++)
    free(e->v[i]);
  free(e->v);
}

/* The agent's own environment less anything we set (so a stale
 * CHOREO_PEER from the agent's parent can't leak into a script). */
static int env_inherit(struct env *e) {
  for (char **p = environ; *p != NULL; p++) {
    if (strncmp(*p, "CHOREO_", 7) == 0 && strncmp(*p, "CHOREO_SOCKET=", 14) &&
        strncmp(*p, "CHOREO_DEBUG=", 13))
      continue;
    if (env_add(e, *p, NULL) != 0)
      return CHOREO_ENOMEM;
  }
  return 0;
}

/* ---- behaviour actions ---- */

static void matching(struct agent *a, const struct config_behaviour *b,
                     char *out, size_t len) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < a->peers.n; i++) {
    const struct peer *p = a->peers.v[i];
    int n;
    if (!engine_watches(b, &a->peers, p))
      continue;
    if (b->has_when && !engine_state_in(&b->when, peer_state(p)))
      continue;
    n = snprintf(out + used, len - used, "%s%s", used ? " " : "", p->rec.name);
    if (n < 0 || (size_t)n >= len - used) {
      out[used] = '\0'; /* names that don't fit are left out whole */
      return;
    }
    used += (size_t)n;
  }
}

static char *stdin_json(struct agent *a, const struct config_behaviour *b,
                        const char *event) {
  uint64_t now = uv_now(&a->loop);
  json_t *peers = json_array(), *doc;
  char *text;

  for (size_t i = 0; peers != NULL && i < a->peers.n; i++)
    if (engine_watches(b, &a->peers, a->peers.v[i]))
      json_array_append_new(peers, view_table_peer(a->peers.v[i], now));
  doc = json_pack("{s:o, s:s, s:o}", "node",
                  view_peer(&a->self, a->self.state, 0), "event", event,
                  "peers", peers);
  text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
  json_decref(doc);
  return text;
}

static int action_env(struct agent *a, const struct config_behaviour *b,
                      const struct engine_action *act, struct env *e) {
  char *match = malloc(65536);
  int rv = match == NULL ? CHOREO_ENOMEM : env_inherit(e);
  if (rv == 0) {
    matching(a, b, match, 65536);
    const char *kv[][2] = {
        {"CHOREO_NODE", a->cfg->name},
        {"CHOREO_CLUSTER", a->cfg->cluster},
        {"CHOREO_STATE", a->self.state},
        {"CHOREO_BEHAVIOUR", b->name},
        {"CHOREO_EVENT", engine_action_name(act->type)},
        {"CHOREO_PEER", act->cause.peer},
        {"CHOREO_PEER_STATE", act->cause.state},
        {"CHOREO_PEER_PREVIOUS", act->cause.previous},
        {"CHOREO_PEER_REASON", act->cause.reason},
        {"CHOREO_MATCHING", match},
    };
    for (size_t i = 0; rv == 0 && i < ARRAY_SIZE(kv); i++)
      rv = env_add(e, kv[i][0], kv[i][1]);
    for (size_t i = 0; rv == 0 && i < b->nvars; i++)
      rv = env_add(e, b->vars[i], NULL);
  }
  free(match);
  return rv;
}

static struct job *job_new(struct agent *a, const char *name, bool is_check) {
  struct job *j = calloc(1, sizeof(*j));
  if (j == NULL)
    return NULL;
  j->tag = ++a->next_tag;
  j->is_check = is_check;
  snprintf(j->name, sizeof(j->name), "%s", name);
  j->rx_ns = a->cur_rx_ns;
  j->next = a->jobs;
  a->jobs = j;
  return j;
}

static struct job *job_take(struct agent *a, uint64_t tag) {
  for (struct job **pp = &a->jobs; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->tag == tag) {
      struct job *j = *pp;
      *pp = j->next;
      return j;
    }
  }
  return NULL;
}

static int submit(struct agent *a, struct job *j,
                  const struct config_argv *argv, char **env, const char *input,
                  uint64_t timeout_ms, unsigned retries) {
  struct runner_spec spec = {
      .tag = j->tag,
      .name = j->name,
      .argv = argv->argv,
      .env = env,
      .input = input,
      .input_len = input != NULL ? strlen(input) : 0,
      .timeout_ms = timeout_ms,
      .retries = retries,
      .quiet = j->is_check,
  };
  return runner_submit(&a->runner, &spec);
}

/* Start one action; returns false when it ended at once (nothing to run
 * or the runner refused), so the engine must be told right away. */
static bool start_action(struct agent *a, const struct engine_action *act) {
  const struct config_behaviour *b = &a->cfg->behaviours[act->behaviour];
  const struct config_argv *argv =
      act->type == ENGINE_ACT_REVERT ? &b->revert : &b->run;
  struct env e = {0};
  const char *event = engine_action_name(act->type);
  char *input = NULL;
  struct job *j;
  int rv;

  log_info("behaviour %s: %s%s%s%s", b->name, event,
           act->cause.peer[0] ? " (peer " : "", act->cause.peer,
           act->cause.peer[0] ? ")" : "");
  if (argv->argc == 0)
    return false;
  j = job_new(a, b->name, false);
  input = stdin_json(a, b, event);
  rv = j == NULL || input == NULL ? CHOREO_ENOMEM : action_env(a, b, act, &e);
  if (rv == 0)
    rv = submit(a, j, argv, e.v, input, b->timeout_ms, b->retries);
  env_free(&e);
  free(input);
  if (rv != 0) {
    log_error("behaviour %s: cannot start %s: %s", b->name, argv->argv[0],
              choreo_strerror(rv));
    a->metrics.runs_failed++;
    if (j != NULL)
      free(job_take(a, j->tag));
    return false;
  }
  return true;
}

void agent_step(struct agent *a) {
  struct engine_action acts[32];
  uint64_t now, deadline = UINT64_MAX;
  size_t n;
  bool again;

  if (a->stopping)
    return;
  do {
    now = uv_now(&a->loop);
    n = engine_step(&a->engine, &a->peers, now, acts, ARRAY_SIZE(acts),
                    &deadline);
    again = n == ARRAY_SIZE(acts);
    for (size_t i = 0; i < n; i++) {
      if (!start_action(a, &acts[i])) {
        engine_done(&a->engine, acts[i].behaviour, now);
        again = true;
      }
    }
  } while (again);
  /* An action still waiting to start that the truth went past. */
  for (struct job *j = a->jobs; j != NULL; j = j->next) {
    int idx = j->is_check ? -1 : engine_index(&a->engine, j->name);
    if (idx >= 0 && engine_superseded(&a->engine, (size_t)idx))
      (void)runner_withdraw(&a->runner, j->tag);
  }
  if (a->engine.dropped > 0) {
    log_warn("%llu per-peer events dropped: a behaviour's queue of %d "
             "events was full",
             (unsigned long long)a->engine.dropped, ENGINE_QUEUE_MAX);
    a->engine.dropped = 0;
  }
  agent_wake_at(a, deadline);
  /* A behaviour's state claim follows its actions. */
  agent_self_refresh(a);
}

/* ---- runner callbacks ---- */

void agent_jobs_started(void *arg, uint64_t tag, unsigned attempt) {
  struct agent *a = arg;
  for (struct job *j = a->jobs; j != NULL; j = j->next) {
    if (j->tag != tag)
      continue;
    if (attempt == 0 && j->rx_ns != 0)
      metrics_observe_reaction(&a->metrics,
                               (double)(uv_hrtime() - j->rx_ns) / 1e6);
    return;
  }
}

static void check_result(struct agent *a, const char *name, bool ok);

void agent_jobs_done(void *arg, uint64_t tag, enum runner_result res,
                     int status) {
  struct agent *a = arg;
  struct job *j = job_take(a, tag);
  int idx;

  if (j == NULL)
    return;
  if (j->is_check) {
    check_result(a, j->name, res == RUNNER_OK);
  } else if (!a->stopping && (idx = engine_index(&a->engine, j->name)) >= 0) {
    if (res == RUNNER_WITHDRAWN)
      engine_withdrawn(&a->engine, (size_t)idx);
    engine_done(&a->engine, (size_t)idx, uv_now(&a->loop));
    agent_step(a);
  }
  free(j);
}

/* ---- checks ---- */

bool agent_check_failing(const struct agent *a, size_t *index) {
  for (size_t i = 0; a->checks != NULL && i < a->checks->n; i++) {
    if (a->checks->v[i].failing) {
      *index = i;
      return true;
    }
  }
  return false;
}

static void check_result(struct agent *a, const char *name, bool ok) {
  for (size_t i = 0; a->checks != NULL && i < a->checks->n; i++) {
    const struct config_check *c = &a->cfg->checks[i];
    struct check_state *cs = &a->checks->v[i];
    if (strcmp(c->name, name) != 0)
      continue;
    cs->running = false;
    cs->passes = ok ? cs->passes + 1 : 0;
    cs->fails = ok ? 0 : cs->fails + 1;
    if (!cs->failing && cs->fails >= c->fall) {
      cs->failing = true;
      log_warn("check %s: failing after %u failures", c->name, cs->fails);
    } else if (cs->failing && cs->passes >= c->rise) {
      cs->failing = false;
      log_info("check %s: passing again after %u passes", c->name, cs->passes);
    }
    agent_self_refresh(a);
    return;
  }
}

static void on_check_timer(uv_timer_t *t) {
  struct check_state *cs = container_of(t, struct check_state, timer);
  struct agent *a = cs->set->agent;
  const struct config_check *c = &a->cfg->checks[cs - cs->set->v];
  struct env e = {0};
  struct job *j;
  int rv;

  if (cs->running)
    return; /* the previous run is still going: skip this beat */
  j = job_new(a, c->name, true);
  rv = j == NULL ? CHOREO_ENOMEM : env_inherit(&e);
  for (size_t k = 0; rv == 0 && k < c->nvars; k++)
    rv = env_add(&e, c->vars[k], NULL);
  if (rv == 0 && (rv = env_add(&e, "CHOREO_NODE", a->cfg->name)) == 0)
    rv = submit(a, j, &c->run, e.v, NULL, c->timeout_ms, 0);
  env_free(&e);
  if (rv != 0) {
    if (j != NULL)
      free(job_take(a, j->tag));
    check_result(a, c->name, false);
    return;
  }
  cs->running = true;
}

int agent_checks_start(struct agent *a) {
  size_t n = a->cfg->nchecks;
  struct check_set *set = calloc(1, sizeof(*set) + n * sizeof(set->v[0]));
  if (set == NULL)
    return CHOREO_ENOMEM;
  set->agent = a;
  set->n = n;
  for (size_t i = 0; i < n; i++) {
    set->v[i].set = set;
    uv_timer_init(&a->loop, &set->v[i].timer);
    uv_timer_start(&set->v[i].timer, on_check_timer, 0,
                   a->cfg->checks[i].interval_ms);
  }
  a->checks = set;
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

void agent_checks_stop(struct agent *a) {
  struct check_set *set = a->checks;
  if (set == NULL)
    return;
  a->checks = NULL;
  if (set->n == 0) {
    free(set);
    return;
  }
  set->closing = set->n;
  for (size_t i = 0; i < set->n; i++)
    uv_close((uv_handle_t *)&set->v[i].timer, on_check_closed);
}
