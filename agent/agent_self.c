/*
 * agent_self.c — this node's own state. Three kinds of claim compete
 * (SPEC.md "Own state"): the declared state (choreo set, run-in,
 * node.state, persisted in state_dir) wins unless it is "ready"; then a
 * failing check's state, then a behaviour's state, first in file order;
 * else "ready". The reason published says which claim won.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "log.h"
#include "state.h"
#include "util.h"

static int persist(struct agent *a, const char *state, const char *reason,
                   int64_t since, json_t *data) {
  struct saved_state s = {.since_ms = since, .data = data, .inc = a->self.inc};
  snprintf(s.state, sizeof(s.state), "%s", state);
  snprintf(s.reason, sizeof(s.reason), "%s", reason);
  return state_save(a->cfg->state_dir, &s);
}

/* The configured data with the persisted data on top: keys set at run time
 * survive restarts, keys added to the file appear. */
static void merge_data(json_t *into, json_t *saved) {
  if (saved != NULL)
    json_object_update(into, saved);
}

int agent_self_init(struct agent *a) {
  struct saved_state s;
  uint64_t now_s = (uint64_t)(util_wall_ms() / 1000);
  int rv = record_init(&a->self), loaded;

  if (rv != 0)
    return rv;
  loaded = state_load(a->cfg->state_dir, &s);
  snprintf(a->self.name, sizeof(a->self.name), "%s", a->cfg->name);
  snprintf(a->self.addr, sizeof(a->self.addr), "%s", a->cfg->advertise);
  a->self.ngroups = a->cfg->ngroups;
  memcpy(a->self.groups, a->cfg->groups, sizeof(a->self.groups));
  json_object_update(a->self.data, a->cfg->data);
  if (loaded == 0) {
    snprintf(a->declared, sizeof(a->declared), "%s", s.state);
    snprintf(a->declared_reason, sizeof(a->declared_reason), "%s", s.reason);
    a->declared_since = s.since_ms;
    merge_data(a->self.data, s.data);
    json_decref(s.data);
  } else {
    snprintf(a->declared, sizeof(a->declared), "%s", a->cfg->state);
    a->declared_since = util_wall_ms();
    s.inc = 0;
  }
  /* Incarnations order this node's records across restarts: one more than
   * the last, and never behind the clock, so even a node whose state_dir
   * was wiped outranks its former self. */
  a->self.inc = s.inc + 1 > now_s ? s.inc + 1 : now_s;
  a->self.ver = 1;
  rv = persist(a, a->declared, a->declared_reason, a->declared_since,
               a->self.data);
  if (rv != 0) {
    log_error("state_dir: %s: cannot save the state: %s", a->cfg->state_dir,
              choreo_strerror(rv));
    return rv;
  }
  a->self.since_ms = a->declared_since;
  agent_self_refresh(a);
  return 0;
}

/* Which claim wins, as (state, reason). */
static void effective(struct agent *a, char *state, char *reason) {
  size_t check;
  int b;
  const size_t slen = CHOREO_STATE_MAX + 1, rlen = CHOREO_REASON_MAX + 1;

  if (strcmp(a->declared, "ready") != 0) {
    snprintf(state, slen, "%s", a->declared);
    snprintf(reason, rlen, "%s", a->declared_reason);
  } else if (agent_check_failing(a, &check)) {
    snprintf(state, slen, "%s", a->cfg->checks[check].state);
    snprintf(reason, rlen, "check %s failing", a->cfg->checks[check].name);
  } else if ((b = engine_claim(&a->engine)) >= 0) {
    snprintf(state, slen, "%s", a->cfg->behaviours[b].state);
    snprintf(reason, rlen, "behaviour %s", a->cfg->behaviours[b].name);
  } else {
    snprintf(state, slen, "ready");
    snprintf(reason, rlen, "%s", a->declared_reason);
  }
}

static bool same_groups(const struct agent *a) {
  if (a->self.ngroups != a->cfg->ngroups)
    return false;
  return memcmp(a->self.groups, a->cfg->groups,
                a->cfg->ngroups * sizeof(a->self.groups[0])) == 0;
}

/* Publish a new version when the shown state, reason or groups changed, or
 * when the caller changed something else of the record (force). */
static void refresh(struct agent *a, bool force) {
  char state[CHOREO_STATE_MAX + 1], reason[CHOREO_REASON_MAX + 1];
  bool changed;

  effective(a, state, reason);
  changed = force || strcmp(state, a->self.state) != 0 ||
            strcmp(reason, a->self.reason) != 0 || !same_groups(a);
  if (!changed)
    return;
  if (strcmp(state, a->self.state) != 0) {
    if (a->self.state[0] != '\0')
      log_info("state %s -> %s (%s)", a->self.state, state,
               reason[0] != '\0' ? reason : "no reason given");
    /* The declared state keeps its own "since" across restarts; shown
     * again after another claim ended, it starts anew. */
    a->self.since_ms =
        a->self.state[0] == '\0' && strcmp(state, a->declared) == 0
            ? a->declared_since
            : util_wall_ms();
  }
  snprintf(a->self.state, sizeof(a->self.state), "%s", state);
  snprintf(a->self.reason, sizeof(a->self.reason), "%s", reason);
  a->self.ngroups = a->cfg->ngroups;
  memcpy(a->self.groups, a->cfg->groups, sizeof(a->self.groups));
  a->self.ver++;
  if (a->mesh_open)
    agent_publish(a, WIRE_STATE);
}

void agent_self_refresh(struct agent *a) {
  refresh(a, false);
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

int agent_self_set(struct agent *a, const char *state, const char *reason,
                   json_t *data, const char **why) {
  json_t *merged = NULL;
  bool data_changed;
  int64_t since;
  int rv;

  if (!choreo_valid_state(state)) {
    *why = "state must be 1-32 characters of a-z 0-9 _ -";
    return CHOREO_EINVAL;
  }
  if (strcmp(state, "lost") == 0 || strcmp(state, "left") == 0) {
    *why = "lost and left are assigned by observers and can't be set";
    return CHOREO_EINVAL;
  }
  if (reason == NULL)
    reason = "";
  if (!choreo_valid_text(reason, CHOREO_REASON_MAX)) {
    *why = "reason must be UTF-8 text of at most 256 bytes";
    return CHOREO_EINVAL;
  }
  if ((rv = check_data(data, a->self.data, &merged, why)) != 0)
    return rv;
  since = strcmp(state, a->declared) == 0 ? a->declared_since : util_wall_ms();
  snprintf(a->declared, sizeof(a->declared), "%s", state);
  snprintf(a->declared_reason, sizeof(a->declared_reason), "%s", reason);
  a->declared_since = since;
  data_changed = !json_equal(merged, a->self.data);
  json_decref(a->self.data);
  a->self.data = merged;
  /* Publish first, persist second: the fsyncs cost more than the whole
   * trip to the peers, and the caller hears "ok" only once both are done.
   * A crash in between restarts with the previous state, which the new
   * incarnation then publishes: peers follow either way. */
  refresh(a, data_changed);
  rv = persist(a, state, reason, since, a->self.data);
  if (rv != 0) {
    log_error("state_dir: %s: cannot save the state: %s; it is in effect "
              "but will not survive a restart",
              a->cfg->state_dir, choreo_strerror(rv));
    *why = "in effect, but could not be saved in state_dir (see the agent's "
           "log); it will not survive a restart";
    return rv;
  }
  return 0;
}
