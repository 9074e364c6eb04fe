/*
 * engine.c — the behaviour engine (engine.h): turns peer events and the
 * passing of time into the actions of the configured behaviours.
 *
 * Each behaviour has a small state machine (struct engine_bstate). Peer
 * events only mark what may have changed: a condition behaviour becomes
 * "stale" (its truth must be evaluated again), an `on: change` behaviour
 * "dirty", and an `on: [events]` behaviour gets an entry in its queue.
 * engine_step() then evaluates the stale conditions only (so a step costs
 * O(behaviours), plus O(peers) per distinct selector and condition among
 * the behaviours that an event touched) and issues at most one action per
 * behaviour that is not busy.
 *
 * A condition behaviour remembers two levels: the raw truth of its
 * condition (and since when it holds that value) and what was last applied
 * (true once RUN was issued, false once REVERT was). An action is due when
 * the truth, held for `settle`, differs from what is applied; as only one
 * action is in flight at a time and the due one is computed afresh after
 * each, RUN and REVERT strictly alternate and the last matches the truth.
 */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "util.h"

/* One queued per-peer event action. */
struct queued {
  enum engine_action_type type;
  struct engine_cause cause;
};

struct engine_bstate {
  /* condition behaviours */
  bool truth;           /* the condition's raw value at the last evaluation */
  uint64_t truth_since; /* monotonic ms when truth last changed value */
  bool applied;         /* RUN issued last (true) or REVERT / nothing */
  bool stale;           /* an event may have changed the truth */
  uint32_t trigger;     /* hash of selector and condition (memo key) */
  struct engine_cause pending; /* last event since the last evaluation */

  /* `on: change` */
  bool dirty;
  uint64_t dirty_since; /* first change of the current burst */

  /* every behaviour */
  bool busy;                 /* an action was issued and is not done */
  struct engine_cause cause; /* of the truth change / the change burst */

  /* `on: [events]`: a ring, grown on demand up to ENGINE_QUEUE_MAX */
  struct queued *q;
  size_t qcap, qhead, qlen;
};

const char *engine_action_name(enum engine_action_type t) {
  switch (t) {
#define XX(id, s)                                                              \
  case ENGINE_ACT_##id:                                                        \
    return s;
    ENGINE_ACTION_MAP(XX)
#undef XX
  }
  return "unknown";
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void set_min(uint64_t *deadline, uint64_t t) {
  if (t < *deadline)
    *deadline = t;
}

/* ---- watched peers and conditions ---- */

static bool selector_matches(const struct config_selector *sel,
                             const struct record *r) {
  if (sel->node[0] != '\0' && strcmp(sel->node, r->name) != 0)
    return false;
  return sel->group[0] == '\0' || record_in_group(r, sel->group);
}

bool engine_watches(const struct config_behaviour *b, const struct peers *p,
                    const struct peer *peer) {
  if (!peer->heard || peer->status == PEER_LEFT || peer->rec.left)
    return false;
  if (strcmp(peer->rec.name, p->self) == 0)
    return false;
  return selector_matches(&b->peers, &peer->rec);
}

bool engine_state_in(const struct config_condition *c, const char *state) {
  for (size_t i = 0; i < c->nstates; i++)
    if (strcmp(c->states[i], state) == 0)
      return true;
  return false;
}

/* Running evaluation of a condition, peer by peer; decided is set as soon
 * as the remaining peers cannot change the result. */
struct tally {
  size_t watched, in;
  bool decided, result;
};

static void tally_peer(const struct config_condition *c, struct tally *t,
                       const char *state) {
  bool in = engine_state_in(c, state);

  t->watched++;
  t->in += in;
  switch (c->kind) {
  case COND_ANY:
    t->decided = t->result = in;
    break;
  case COND_NONE:
    t->decided = in;
    t->result = !in;
    break;
  case COND_ALL:
    t->decided = !in;
    t->result = false;
    break;
  case COND_FEWER_THAN:
    t->decided = t->in >= c->n;
    t->result = false;
    break;
  }
}

static bool tally_result(const struct config_condition *c,
                         const struct tally *t) {
  switch (c->kind) {
  case COND_ANY:
    return t->in > 0;
  case COND_NONE:
    return t->in == 0;
  case COND_ALL:
    return t->watched > 0 && t->in == t->watched;
  case COND_FEWER_THAN:
    return t->in < c->n;
  }
  return false;
}

bool engine_condition_holds(const struct config_behaviour *b,
                            const struct peers *p) {
  struct tally t = {0};

  if (b->peers.node[0] != '\0') {
    /* A node selector watches at most one peer: no scan. */
    const struct peer *peer = peers_find(p, b->peers.node);
    if (peer != NULL && engine_watches(b, p, peer))
      tally_peer(&b->when, &t, peer_state(peer));
    return t.decided ? t.result : tally_result(&b->when, &t);
  }
  for (size_t i = 0; i < p->n && !t.decided; i++)
    if (engine_watches(b, p, p->v[i]))
      tally_peer(&b->when, &t, peer_state(p->v[i]));
  return t.decided ? t.result : tally_result(&b->when, &t);
}

/* Behaviours with the same selector and condition have the same truth: a
 * step evaluates each such trigger once (packs often repeat one). */
static uint32_t fnv(uint32_t h, const void *buf, size_t len) {
  const unsigned char *c = buf;

  for (size_t i = 0; i < len; i++)
    h = (h ^ c[i]) * 16777619u;
  return h;
}

static uint32_t trigger_hash(const struct config_behaviour *b) {
  const struct config_condition *c = &b->when;
  unsigned num[3] = {(unsigned)c->kind, c->n, (unsigned)c->nstates};
  uint32_t h = 2166136261u;

  /* Strings with their NUL, so that different splits hash differently. */
  h = fnv(h, b->peers.group, strlen(b->peers.group) + 1);
  h = fnv(h, b->peers.node, strlen(b->peers.node) + 1);
  h = fnv(h, num, sizeof(num));
  for (size_t i = 0; i < c->nstates && i < CONFIG_STATES_MAX; i++)
    h = fnv(h, c->states[i], strlen(c->states[i]) + 1);
  return h;
}

/* ---- the event queue of `on: [events]` behaviours ---- */

static int queue_grow(struct engine_bstate *s) {
  size_t cap = s->qcap != 0 ? s->qcap * 2 : 4;
  struct queued *q;

  if (cap > ENGINE_QUEUE_MAX)
    cap = ENGINE_QUEUE_MAX;
  q = malloc(cap * sizeof(*q));
  if (q == NULL)
    return CHOREO_ENOMEM;
  for (size_t i = 0; i < s->qlen; i++)
    q[i] = s->q[(s->qhead + i) % s->qcap];
  free(s->q);
  s->q = q;
  s->qcap = cap;
  s->qhead = 0;
  return 0;
}

/* Returns false when the entry had to be dropped (queue full, no memory). */
static bool queue_push(struct engine_bstate *s, enum engine_action_type type,
                       const struct engine_cause *cause) {
  struct queued *slot;

  if (s->qlen >= ENGINE_QUEUE_MAX)
    return false;
  if (s->qlen == s->qcap && queue_grow(s) != 0)
    return false;
  slot = &s->q[(s->qhead + s->qlen) % s->qcap];
  slot->type = type;
  slot->cause = *cause;
  s->qlen++;
  return true;
}

static void queue_drop_head(struct engine_bstate *s) {
  s->qhead = (s->qhead + 1) % s->qcap;
  s->qlen--;
}

static void queue_free(struct engine_bstate *s) {
  free(s->q);
  s->q = NULL;
  s->qcap = s->qhead = s->qlen = 0;
}

/* ---- lifecycle ---- */

static bool watches_change(const struct config_behaviour *b) {
  return (b->on_mask & CONFIG_EV_BIT(CONFIG_EV_CHANGE)) != 0;
}

/* A behaviour as at startup: nothing applied, everything to (re)do. */
static void bstate_fresh(struct engine_bstate *s,
                         const struct config_behaviour *b, uint64_t now) {
  memset(s, 0, sizeof(*s));
  s->truth_since = now;
  s->stale = true;
  s->trigger = trigger_hash(b);
  if (watches_change(b)) {
    s->dirty = true;
    s->dirty_since = now;
  }
}

static struct engine_bstate *bstates_new(const struct config *cfg,
                                         uint64_t now) {
  size_t n = cfg->nbehaviours;
  struct engine_bstate *v = calloc(n != 0 ? n : 1, sizeof(*v));

  for (size_t i = 0; v != NULL && i < n; i++)
    bstate_fresh(&v[i], &cfg->behaviours[i], now);
  return v;
}

int engine_init(struct engine *e, const struct config *cfg, uint64_t now) {
  memset(e, 0, sizeof(*e));
  e->b = bstates_new(cfg, now);
  if (e->b == NULL)
    return CHOREO_ENOMEM;
  e->cfg = cfg;
  return 0;
}

void engine_free(struct engine *e) {
  if (e->b != NULL && e->cfg != NULL)
    for (size_t i = 0; i < e->cfg->nbehaviours; i++)
      queue_free(&e->b[i]);
  free(e->b);
  e->b = NULL;
  e->cfg = NULL;
}

int engine_index(const struct engine *e, const char *name) {
  for (size_t i = 0; e->cfg != NULL && i < e->cfg->nbehaviours; i++)
    if (strcmp(e->cfg->behaviours[i].name, name) == 0)
      return (int)i;
  return -1;
}

/* The old behaviour named like nb, or SIZE_MAX. */
static size_t old_index(const struct engine *e,
                        const struct config_behaviour *nb, const bool *taken) {
  for (size_t j = 0; j < e->cfg->nbehaviours; j++)
    if (!taken[j] && strcmp(e->cfg->behaviours[j].name, nb->name) == 0)
      return j;
  return SIZE_MAX;
}

int engine_reload(struct engine *e, const struct config *cfg, uint64_t now) {
  size_t nold = e->cfg->nbehaviours;
  struct engine_bstate *v = bstates_new(cfg, now);
  bool *taken = calloc(nold != 0 ? nold : 1, sizeof(*taken));

  if (v == NULL || taken == NULL) {
    free(v);
    free(taken);
    return CHOREO_ENOMEM;
  }
  for (size_t i = 0; i < cfg->nbehaviours; i++) {
    const struct config_behaviour *nb = &cfg->behaviours[i];
    size_t j = old_index(e, nb, taken);
    if (j == SIZE_MAX)
      continue;
    taken[j] = true;
    if (config_behaviour_same_trigger(&e->cfg->behaviours[j], nb)) {
      v[i] = e->b[j]; /* the queue moves along */
      v[i].stale = true;
      v[i].trigger = trigger_hash(nb);
      e->b[j].q = NULL;
    } else {
      /* Changed: starts fresh, but its old action may still be running
       * under the same name; the new one waits for that action's end. */
      v[i].busy = e->b[j].busy;
    }
  }
  free(taken);
  engine_free(e);
  e->cfg = cfg;
  e->b = v;
  return 0;
}

void engine_set_synced(struct engine *e, uint64_t now) {
  (void)now;
  e->synced = true;
  for (size_t i = 0; i < e->cfg->nbehaviours; i++) {
    struct engine_bstate *s = &e->b[i];
    s->stale = true;
    /* What runs first runs on the snapshot, not for one peer's event. */
    memset(&s->pending, 0, sizeof(s->pending));
    if (s->dirty)
      memset(&s->cause, 0, sizeof(s->cause));
  }
}

/* ---- events ---- */

static void cause_from_event(struct engine_cause *c,
                             const struct peer_event *ev) {
  /* Every field comes from the table, within the same limits. */
  (void)strlcpy_checked(c->peer, ev->peer->rec.name, sizeof(c->peer));
  (void)strlcpy_checked(c->state, ev->state != NULL ? ev->state : "",
                        sizeof(c->state));
  (void)strlcpy_checked(c->previous, ev->previous != NULL ? ev->previous : "",
                        sizeof(c->previous));
  (void)strlcpy_checked(c->reason, ev->reason != NULL ? ev->reason : "",
                        sizeof(c->reason));
}

/* The `on:` event and action of a peer event; false for REAPED. */
static bool event_kind(enum peer_event_type t, enum config_event *ev,
                       enum engine_action_type *act) {
  switch (t) {
  case PEER_EV_JOINED:
    *ev = CONFIG_EV_JOINED, *act = ENGINE_ACT_JOINED;
    return true;
  case PEER_EV_STATE:
    *ev = CONFIG_EV_STATE, *act = ENGINE_ACT_STATE;
    return true;
  case PEER_EV_DATA:
    *ev = CONFIG_EV_DATA, *act = ENGINE_ACT_DATA;
    return true;
  case PEER_EV_LEFT:
    *ev = CONFIG_EV_LEFT, *act = ENGINE_ACT_LEFT;
    return true;
  case PEER_EV_LOST:
    *ev = CONFIG_EV_LOST, *act = ENGINE_ACT_LOST;
    return true;
  case PEER_EV_REAPED:
    break;
  }
  return false;
}

static void event_one(struct engine *e, size_t i, const struct peer_event *ev,
                      const struct engine_cause *cause, uint64_t now) {
  const struct config_behaviour *b = &e->cfg->behaviours[i];
  struct engine_bstate *s = &e->b[i];
  enum engine_action_type act;
  enum config_event cev;

  if (b->has_when) {
    s->stale = true;
    s->pending = *cause;
    return;
  }
  if (!event_kind(ev->type, &cev, &act))
    return; /* a reaped peer was lost or left: no longer in any snapshot */
  if (watches_change(b)) {
    if (!s->dirty)
      s->dirty_since = now;
    s->dirty = true;
    s->cause = *cause;
  }
  /* Per-peer events from before the sync are not replayed. */
  if (e->synced && (b->on_mask & CONFIG_EV_BIT(cev)) != 0 &&
      !queue_push(s, act, cause))
    e->dropped++;
}

/* Only the behaviours whose selector matches the peer's record are
 * touched (a left peer still matches for its "left" event). A peer's
 * groups change only with a record that the table may report with no
 * event of its own: such a change is seen at the peer's next event. */
void engine_peer_event(struct engine *e, const struct peer_event *ev,
                       uint64_t now) {
  struct engine_cause cause;

  cause_from_event(&cause, ev);
  for (size_t i = 0; i < e->cfg->nbehaviours; i++)
    if (selector_matches(&e->cfg->behaviours[i].peers, &ev->peer->rec))
      event_one(e, i, ev, &cause, now);
}

/* ---- stepping ---- */

/* Slots of the per-step memo of evaluated triggers: a power of two, at
 * least twice CONFIG_BEHAVIOURS_MAX; larger configurations go without. */
#define MEMO_SLOTS 2048u

/* One step's working state: where its actions go, and the memo (the
 * index + 1 of the behaviour that evaluated a trigger in this step). */
struct out {
  struct engine_action *v;
  size_t n, max;
  uint64_t *deadline;
  bool memo_ready;
  uint16_t memo[MEMO_SLOTS];
};

/* Issue an action for behaviour i, or, when out is full, leave it due and
 * ask to be called again at once. Returns whether it was issued. */
static bool issue(struct out *o, uint64_t now, size_t i,
                  enum engine_action_type type,
                  const struct engine_cause *cause) {
  if (o->n >= o->max) {
    set_min(o->deadline, now);
    return false;
  }
  o->v[o->n].behaviour = i;
  o->v[o->n].type = type;
  o->v[o->n].cause = *cause;
  o->n++;
  return true;
}

/* The truth of behaviour i's condition now, evaluated at most once per
 * trigger and step: the table does not change during a step. */
static bool holds(const struct engine *e, const struct peers *p, size_t i,
                  struct out *o) {
  const struct config_behaviour *b = &e->cfg->behaviours[i];
  uint32_t k = e->b[i].trigger;

  if (e->cfg->nbehaviours >= MEMO_SLOTS / 2)
    return engine_condition_holds(b, p);
  if (!o->memo_ready) {
    memset(o->memo, 0, sizeof(o->memo));
    o->memo_ready = true;
  }
  for (;; k++) {
    size_t j = o->memo[k % MEMO_SLOTS];
    if (j == 0)
      break;
    j--;
    if (e->b[j].trigger == e->b[i].trigger &&
        config_behaviour_same_trigger(&e->cfg->behaviours[j], b))
      return e->b[j].truth;
  }
  o->memo[k % MEMO_SLOTS] = (uint16_t)(i + 1);
  return engine_condition_holds(b, p);
}

static void evaluate(struct engine *e, const struct peers *p, size_t i,
                     uint64_t now, struct out *o) {
  struct engine_bstate *s = &e->b[i];
  bool truth = holds(e, p, i, o);

  s->stale = false;
  if (truth != s->truth) {
    s->truth = truth;
    s->truth_since = now;
    s->cause = s->pending;
  }
  memset(&s->pending, 0, sizeof(s->pending));
}

static void step_condition(struct engine *e, const struct peers *p, size_t i,
                           uint64_t now, struct out *o) {
  const struct config_behaviour *b = &e->cfg->behaviours[i];
  struct engine_bstate *s = &e->b[i];
  uint64_t due;

  if (s->stale)
    evaluate(e, p, i, now, o);
  if (s->busy || s->truth == s->applied)
    return; /* engine_done() brings the next step */
  due = add_sat(s->truth_since, b->settle_ms);
  if (now < due) {
    set_min(o->deadline, due);
    return;
  }
  if (issue(o, now, i, s->truth ? ENGINE_ACT_RUN : ENGINE_ACT_REVERT,
            &s->cause)) {
    s->applied = s->truth;
    s->busy = true;
  }
}

static void step_events(struct engine *e, size_t i, uint64_t now,
                        struct out *o) {
  const struct config_behaviour *b = &e->cfg->behaviours[i];
  struct engine_bstate *s = &e->b[i];

  if (s->busy)
    return;
  if (s->dirty) {
    uint64_t due = add_sat(s->dirty_since, b->settle_ms);
    if (now < due) {
      set_min(o->deadline, due);
    } else if (issue(o, now, i, ENGINE_ACT_CHANGE, &s->cause)) {
      s->dirty = false;
      s->busy = true;
      return;
    }
  }
  if (s->qlen > 0 &&
      issue(o, now, i, s->q[s->qhead].type, &s->q[s->qhead].cause)) {
    queue_drop_head(s);
    s->busy = true;
  }
}

size_t engine_step(struct engine *e, const struct peers *p, uint64_t now,
                   struct engine_action *out, size_t max, uint64_t *deadline) {
  struct out o = {.v = out, .max = max, .deadline = deadline};

  *deadline = UINT64_MAX;
  if (!e->synced)
    return 0;
  for (size_t i = 0; i < e->cfg->nbehaviours; i++) {
    if (e->cfg->behaviours[i].has_when)
      step_condition(e, p, i, now, &o);
    else
      step_events(e, i, now, &o);
  }
  return o.n;
}

void engine_done(struct engine *e, size_t b, uint64_t now) {
  (void)now;
  /* An index from before a reload may name nothing any more. */
  if (e->cfg == NULL || b >= e->cfg->nbehaviours)
    return;
  e->b[b].busy = false;
}

int engine_claim(const struct engine *e) {
  for (size_t i = 0; i < e->cfg->nbehaviours; i++) {
    const struct config_behaviour *b = &e->cfg->behaviours[i];
    if (b->state[0] != '\0' && b->has_when && e->b[i].applied)
      return (int)i;
  }
  return -1;
}
