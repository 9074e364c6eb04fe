/*
 * agent_self.c — the self part: this node's own state. Three kinds of
 * claim compete (docs/CONFIGURATION.md "Own state"): the declared state
 * (choreo set, run-in, node.state, persisted in state_dir) wins unless it
 * is "ready"; then a failing check's state, then a behaviour's state,
 * first in file order; else "ready" (policy_own_state). The reason
 * published says which claim won. The part owns the record as published
 * and the declared state; each new version goes to the publish hook.
 * Its incarnation is its own too: a claim about this node that it didn't
 * make is outbid with a greater one (self_refute, docs/PROTOCOL.md "A
 * node owns its record").
 */
#include <inttypes.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "log.h"
#include "policy.h"
#include "state.h"
#include "util.h"

static struct agent *agent_of(struct self *s) {
  return AGENT_OF(s, self);
}

/* Save the state in state_dir, durably (state_save()), with the expiry
 * of a `set --for` running. */
static int persist(struct self *s, const char *state, const char *reason,
                   int64_t since, json_t *data) {
  struct saved_state ss = {.since_ms = since,
                           .data = data,
                           .inc = s->rec.inc,
                           .until_ms = s->until_ms};
  snprintf(ss.state, sizeof(ss.state), "%s", state);
  snprintf(ss.reason, sizeof(ss.reason), "%s", reason);
  snprintf(ss.then, sizeof(ss.then), "%s", s->then);
  snprintf(ss.then_reason, sizeof(ss.then_reason), "%s", s->then_reason);
  return state_save(agent_of(s)->cfg->state_dir, &ss);
}

/* Say that state_dir can't be written: at once the first time, then at
 * most once per STATE_REPORT_GAP_MS. */
static void report_unsaved(struct self *s, int err, const char *what) {
  struct agent *a = agent_of(s);

  if (!state_report_due(&s->unsaved, uv_now(&a->loop)))
    return;
  log_error("state_dir: %s: cannot save the state: %s; %s (%" PRIu64
            " more failures not logged)",
            a->cfg->state_dir, choreo_strerror(err), what,
            s->unsaved.suppressed);
  s->unsaved.suppressed = 0;
}

/* The configured data with the persisted data on top: keys set at run time
 * survive restarts, keys added to the file appear. */
static void merge_data(json_t *into, json_t *saved) {
  if (saved != NULL)
    json_object_update(into, saved);
}

static void arm_expiry(struct self *s);

/* A `set --for` saved by the previous run: still running, it is armed
 * again; over while the agent was down, the state it returns to is
 * declared now. */
static void restore_expiry(struct self *s, const struct saved_state *ss) {
  if (ss->until_ms <= 0)
    return;
  if (ss->until_ms <= util_wall_ms()) {
    log_info("set --for: %s expired while the agent was down; back to %s",
             s->declared, ss->then);
    snprintf(s->declared, sizeof(s->declared), "%s", ss->then);
    snprintf(s->declared_reason, sizeof(s->declared_reason), "%s",
             ss->then_reason);
    s->declared_since = util_wall_ms();
    return;
  }
  s->until_ms = ss->until_ms;
  snprintf(s->then, sizeof(s->then), "%s", ss->then);
  snprintf(s->then_reason, sizeof(s->then_reason), "%s", ss->then_reason);
}

int self_init(struct self *s) {
  const struct config *cfg = agent_of(s)->cfg;
  struct saved_state ss;
  uint64_t now_s = (uint64_t)(util_wall_ms() / 1000);
  int rv = record_init(&s->rec), loaded;

  if (rv != 0)
    return rv;
  uv_timer_init(&agent_of(s)->loop, &s->expiry);
  loaded = state_load(cfg->state_dir, &ss);
  snprintf(s->rec.name, sizeof(s->rec.name), "%s", cfg->name);
  snprintf(s->rec.addr, sizeof(s->rec.addr), "%s", cfg->advertise);
  s->rec.ngroups = cfg->ngroups;
  memcpy(s->rec.groups, cfg->groups, sizeof(s->rec.groups));
  json_object_update(s->rec.data, cfg->data);
  if (loaded == 0) {
    snprintf(s->declared, sizeof(s->declared), "%s", ss.state);
    snprintf(s->declared_reason, sizeof(s->declared_reason), "%s", ss.reason);
    s->declared_since = ss.since_ms;
    merge_data(s->rec.data, ss.data);
    json_decref(ss.data);
    restore_expiry(s, &ss);
  } else {
    snprintf(s->declared, sizeof(s->declared), "%s", cfg->state);
    s->declared_since = util_wall_ms();
    ss.inc = 0;
  }
  /* Incarnations order this node's records across restarts: one more than
   * the last, and never behind the clock, so even a node whose state_dir
   * was wiped usually outranks its former self; where it doesn't (quick
   * restarts ran ahead of the clock, then the file was lost), peers hold
   * a greater one and the node refutes it (self_refute). A saved one out
   * of bounds, which every peer would drop, is not followed. */
  s->rec.inc = policy_start_inc(ss.inc, loaded == 0, util_wall_ms());
  if (loaded == 0 && s->rec.inc != ss.inc + 1 && ss.inc + 1 > now_s)
    log_warn("state_dir: %s: the saved incarnation %" PRIu64
             " is more than a day ahead of the clock; starting from %" PRIu64,
             cfg->state_dir, ss.inc, s->rec.inc);
  s->rec.ver = 1;
  rv = persist(s, s->declared, s->declared_reason, s->declared_since,
               s->rec.data);
  /* A full or read-only state_dir must not keep the node down: it goes
   * on from what it read, and `set` is refused until it can be saved. */
  if (rv != 0)
    report_unsaved(s, rv,
                   "the agent runs on its last saved state, and `choreo set` "
                   "fails until state_dir can be written");
  s->rec.since_ms = s->declared_since;
  self_refresh(s);
  arm_expiry(s);
  return 0;
}

/* Which claim wins, as (state, reason). */
static void effective(struct self *s, char *state, char *reason) {
  struct agent *a = agent_of(s);
  struct policy_claims c = {.declared = s->declared,
                            .declared_reason = s->declared_reason};
  size_t check;
  int b;

  if (checks_failing(&a->checks, &check)) {
    c.check_state = a->cfg->checks[check].state;
    c.check_name = a->cfg->checks[check].name;
  }
  if ((b = engine_claim(&a->engine)) >= 0) {
    c.behaviour_state = a->cfg->behaviours[b].state;
    c.behaviour_name = a->cfg->behaviours[b].name;
  }
  (void)policy_own_state(&c, state, reason);
}

/* Publish a new version when the shown state, reason or groups changed, or
 * when the caller changed something else of the record (force). */
static void refresh(struct self *s, bool force) {
  const struct config *cfg = agent_of(s)->cfg;
  char state[CHOREO_STATE_MAX + 1], reason[CHOREO_REASON_MAX + 1];
  bool changed;

  effective(s, state, reason);
  changed = force || strcmp(state, s->rec.state) != 0 ||
            strcmp(reason, s->rec.reason) != 0 ||
            !record_groups_are(&s->rec, cfg->ngroups, cfg->groups);
  if (!changed)
    return;
  if (strcmp(state, s->rec.state) != 0) {
    if (s->rec.state[0] != '\0')
      log_info("state %s -> %s (%s)", s->rec.state, state,
               reason[0] != '\0' ? reason : "no reason given");
    /* The declared state keeps its own "since" across restarts; shown
     * again after another claim ended, it starts anew. */
    s->rec.since_ms = s->rec.state[0] == '\0' && strcmp(state, s->declared) == 0
                          ? s->declared_since
                          : util_wall_ms();
  }
  snprintf(s->rec.state, sizeof(s->rec.state), "%s", state);
  snprintf(s->rec.reason, sizeof(s->rec.reason), "%s", reason);
  s->rec.ngroups = cfg->ngroups;
  memcpy(s->rec.groups, cfg->groups, sizeof(s->rec.groups));
  s->rec.ver++;
  if (s->publish != NULL)
    s->publish(s);
}

void self_refresh(struct self *s) {
  refresh(s, false);
}

static int check_data(json_t *data, json_t *current, json_t **merged,
                      const char **why) {
  const char *key;
  json_t *v;

  *merged = json_deep_copy(current);
  if (*merged == NULL)
    return CHOREO_ENOMEM;
  json_object_foreach(data, key, v) {
    const char *value = json_string_value(v);
    if (!choreo_valid_data_key(key)) {
      *why = "data key must be 1-64 characters of a-z 0-9 _ . -";
      goto fail;
    }
    if (value == NULL || !choreo_valid_text(value, CHOREO_DATA_VALUE_MAX)) {
      *why = "data value must be UTF-8 text of at most 1024 bytes";
      goto fail;
    }
    if (value[0] == '\0')
      json_object_del(*merged, key);
    else
      json_object_set(*merged, key, v);
  }
  if (json_object_size(*merged) > CHOREO_DATA_KEYS_MAX) {
    *why = "at most 32 data keys";
    goto fail;
  }
  return 0;
fail:
  json_decref(*merged);
  *merged = NULL;
  return CHOREO_EINVAL;
}

/* The declared state and data as they were, to put back. */
struct declared_copy {
  char state[CHOREO_STATE_MAX + 1];
  char reason[CHOREO_REASON_MAX + 1];
  int64_t since;
  json_t *data; /* owned reference */
};

static void declare(struct self *s, const char *state, const char *reason,
                    int64_t since, json_t *data) {
  snprintf(s->declared, sizeof(s->declared), "%s", state);
  snprintf(s->declared_reason, sizeof(s->declared_reason), "%s", reason);
  s->declared_since = since;
  json_decref(s->rec.data);
  s->rec.data = data;
}

static const char *check_set(const char *state, const char *reason) {
  if (!choreo_valid_state(state))
    return "state must be 1-32 characters of a-z 0-9 _ -";
  if (!choreo_valid_settable_state(state))
    return "lost and left are assigned by observers and can't be set";
  if (!choreo_valid_text(reason, CHOREO_REASON_MAX))
    return "reason must be UTF-8 text of at most 256 bytes";
  return NULL;
}

#define UNSAVED_WHY                                                            \
  "state_dir can't be written (see the agent's log); nothing changed"

/* What a state file may take: state.json is read back only up to 64 KiB. */
#define SELF_STATE_BYTES_MAX (64 * 1024)

/* The expiry a set for for_ms leaves: none (0), or now + for_ms back to
 * the state declared before the first --for of a row. */
static void next_expiry(const struct self *s, uint64_t for_ms,
                        struct declared_copy *x, int64_t *until) {
  *until = for_ms > 0 ? util_wall_ms() + (int64_t)for_ms : 0;
  x->state[0] = x->reason[0] = '\0';
  if (for_ms == 0)
    return;
  snprintf(x->state, sizeof(x->state), "%s",
           s->until_ms > 0 ? s->then : s->declared);
  snprintf(x->reason, sizeof(x->reason), "%s",
           s->until_ms > 0 ? s->then_reason : s->declared_reason);
}

static void set_expiry(struct self *s, int64_t until, const char *then,
                       const char *then_reason) {
  s->until_ms = until;
  snprintf(s->then, sizeof(s->then), "%s", then);
  snprintf(s->then_reason, sizeof(s->then_reason), "%s", then_reason);
}

int self_set(struct self *s, const char *state, const char *reason,
             json_t *data, const char **why) {
  return self_set_for(s, state, reason, data, 0, why);
}

int self_set_for(struct self *s, const char *state, const char *reason,
                 json_t *data, uint64_t for_ms, const char **why) {
  struct declared_copy old, then, was = {0};
  int64_t until, was_until = s->until_ms;
  json_t *merged = NULL;
  bool data_changed;
  int64_t since;
  int rv;

  if (reason == NULL)
    reason = "";
  if ((*why = check_set(state, reason)) != NULL)
    return CHOREO_EINVAL;
  if ((rv = check_data(data, s->rec.data, &merged, why)) != 0)
    return rv;
  since = strcmp(state, s->declared) == 0 ? s->declared_since : util_wall_ms();
  next_expiry(s, for_ms, &then, &until);
  snprintf(was.state, sizeof(was.state), "%s", s->then);
  snprintf(was.reason, sizeof(was.reason), "%s", s->then_reason);
  set_expiry(s, until, then.state, then.reason);
  /* A full or read-only state_dir is refused before anything is
   * published, so that what peers see is never what a restart would not
   * keep; the check writes nothing and waits for no disk. The file, with
   * its fsyncs (which cost more than the whole trip to the peers), is
   * written after the publication, and the caller hears "ok" only once
   * it is durable. A state_dir that has gone (ENOENT) is made again by the
   * save. */
  rv = state_room(agent_of(s)->cfg->state_dir, SELF_STATE_BYTES_MAX);
  if (rv != 0 && rv != -ENOENT) {
    report_unsaved(s, rv, "`choreo set` refused");
    json_decref(merged);
    set_expiry(s, was_until, was.state, was.reason);
    *why = UNSAVED_WHY;
    return rv;
  }
  snprintf(old.state, sizeof(old.state), "%s", s->declared);
  snprintf(old.reason, sizeof(old.reason), "%s", s->declared_reason);
  old.since = s->declared_since;
  old.data = json_incref(s->rec.data);
  data_changed = !json_equal(merged, s->rec.data);
  declare(s, state, reason, since, merged);
  refresh(s, data_changed);
  if ((rv = persist(s, state, reason, since, s->rec.data)) != 0) {
    /* Rare (the room was there a moment ago, or fsync or rename failed):
     * put the previous state back, and publish it. */
    report_unsaved(s, rv, "`choreo set` undone");
    declare(s, old.state, old.reason, old.since, old.data);
    set_expiry(s, was_until, was.state, was.reason);
    refresh(s, data_changed);
    *why = UNSAVED_WHY;
    return rv;
  }
  json_decref(old.data);
  arm_expiry(s);
  return 0;
}

/* ---- set --for: the expiry ---- */

/* Retry a return that could not be saved this much later. */
#define SELF_EXPIRY_RETRY_MS 5000

static void on_expiry(uv_timer_t *t) {
  struct self *s = container_of(t, struct self, expiry);
  char then[CHOREO_STATE_MAX + 1], then_reason[CHOREO_REASON_MAX + 1];
  json_t *none = json_object();
  const char *why = NULL;
  int rv;

  snprintf(then, sizeof(then), "%s", s->then);
  snprintf(then_reason, sizeof(then_reason), "%s", s->then_reason);
  log_info("set --for: %s expired; back to %s", s->declared, then);
  rv = none != NULL ? self_set_for(s, then, then_reason, none, 0, &why)
                    : CHOREO_ENOMEM;
  json_decref(none);
  if (rv != 0) {
    log_error("set --for: cannot return to %s: %s; trying again", then,
              why != NULL ? why : choreo_strerror(rv));
    uv_timer_start(&s->expiry, on_expiry, SELF_EXPIRY_RETRY_MS, 0);
  }
}

static void arm_expiry(struct self *s) {
  int64_t left;

  if (s->expiry.loop == NULL || uv_is_closing((uv_handle_t *)&s->expiry))
    return;
  uv_timer_stop(&s->expiry);
  if (s->until_ms <= 0)
    return;
  left = s->until_ms - util_wall_ms();
  uv_timer_start(&s->expiry, on_expiry, left > 0 ? (uint64_t)left : 0, 0);
}

int64_t self_expiry(const struct self *s, const char **then) {
  *then = s->then;
  return s->until_ms;
}

void self_stop(struct self *s) {
  agent_close_handle((uv_handle_t *)&s->expiry);
}

bool self_leave(struct self *s) {
  if (s->rec.left)
    return false;
  s->rec.left = true;
  s->rec.ver++;
  return true;
}

void self_refute(struct self *s, uint64_t claimed) {
  struct agent *a = agent_of(s);
  int rv;

  s->rec.inc = policy_refute_inc(s->rec.inc, claimed);
  s->rec.ver++;
  a->metrics.refutations++;
  /* Saved so that the next start begins above it; a failure only costs
   * another refutation then. */
  rv = persist(s, s->declared, s->declared_reason, s->declared_since,
               s->rec.data);
  if (rv != 0)
    log_warn("state_dir: %s: cannot save the incarnation: %s",
             a->cfg->state_dir, choreo_strerror(rv));
  if (s->publish != NULL)
    s->publish(s);
}

const struct record *self_record(const struct self *s) {
  return &s->rec;
}

void self_declared(const struct self *s, const char **state,
                   const char **reason) {
  *state = s->declared;
  *reason = s->declared_reason;
}

void self_free(struct self *s) {
  record_free(&s->rec);
}
