/*
 * engine.c — the behaviour engine (engine.h): turns peer events and the
 * passing of time into the actions of the configured behaviours.
 *
 * Each behaviour has a small state machine (struct engine_bstate). Peer
 * events only mark what may have changed: a condition behaviour whose
 * counts moved becomes "stale" (its truth must be evaluated again), an
 * `on: change` behaviour "dirty", and an `on: [events]` behaviour gets an
 * entry in its queue. engine_step() then evaluates the stale conditions and
 * issues at most one action per behaviour that is not busy.
 *
 * Conditions are counted, not scanned: each condition behaviour keeps how
 * many peers it watches and how many of those are in one of its states,
 * and a peer event moves these counts by that one peer's old and new
 * contribution. The old contribution comes from the census (struct
 * engine_census): per counted peer (heard, not left, not self), its state
 * and which of the configuration's distinct selectors it matched, as of
 * its last event. So an event costs O(behaviours) cheap updates and a
 * step evaluates each stale condition in O(1), however many peers there
 * are. The census is rebuilt from the peer table at the first step after
 * engine_init() or engine_reload() (and if memory ran out); until then,
 * and if the rebuild itself runs out of memory, conditions are evaluated
 * by scanning the table, as engine_condition_holds() does.
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
  size_t watched, in;   /* counted: watched peers, those in the states */
  bool truth;           /* the condition's raw value at the last evaluation */
  uint64_t truth_since; /* monotonic ms when truth last changed value */
  bool applied;         /* RUN issued last (true) or REVERT / nothing */
  bool rerun;           /* restored RUN of another condition: RUN again
                           if the current one holds (engine_restore()) */
  bool stale;           /* an event may have changed the truth */
  struct engine_cause pending; /* last event since the last evaluation */

  /* `on: change` */
  bool dirty;
  uint64_t dirty_since; /* first change of the current burst */

  /* every behaviour */
  size_t sel;                /* its selector in the census */
  bool busy;                 /* an action was issued and is not done */
  struct engine_cause cause; /* of the truth change / the change burst */

  /* `on: [events]`: a ring, grown on demand up to ENGINE_QUEUE_MAX */
  struct queued *q;
  size_t qcap, qhead, qlen;
};

/* A peer as last counted: what it added to the counts, so that its next
 * event can take exactly that back out. */
struct counted {
  char name[CHOREO_NAME_MAX + 1];
  char state[CHOREO_STATE_MAX + 1]; /* peer_state() */
  uint64_t match[];                 /* bit s: matched selector s */
};

struct engine_census {
  const struct config_selector **sel; /* the distinct selectors of cfg */
  size_t nsel, words;                 /* words: of a match bit set */
  struct counted **v;                 /* sorted by name; each owned */
  size_t n, cap;
  uint64_t *scratch; /* the match bits of the event's peer */
  bool valid;        /* the counts agree with the table */
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

/* Could some behaviour watch this peer: heard, present, not self? */
static bool countable(const struct peer *peer, const char *self) {
  return peer->heard && peer->status != PEER_LEFT && !peer->rec->left &&
         strcmp(peer->rec->name, self) != 0;
}

bool engine_watches(const struct config_behaviour *b, const struct peers *p,
                    const struct peer *peer) {
  return countable(peer, p->self) && selector_matches(&b->peers, peer->rec);
}

bool engine_state_in(const struct config_condition *c, const char *state) {
  for (size_t i = 0; i < c->nstates; i++)
    if (strcmp(c->states[i], state) == 0)
      return true;
  return false;
}

static bool counts_hold(const struct config_condition *c, size_t watched,
                        size_t in) {
  switch (c->kind) {
  case COND_ANY:
    return in > 0;
  case COND_NONE:
    return in == 0;
  case COND_ALL:
    return watched > 0 && in == watched;
  case COND_FEWER_THAN:
    return in < c->n;
  }
  return false;
}

/* Running evaluation of a condition over the table, peer by peer; decided
 * is set as soon as the remaining peers cannot change the result. */
struct scan {
  size_t watched, in;
  bool decided, result;
};

static void scan_peer(const struct config_condition *c, struct scan *t,
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

bool engine_condition_holds(const struct config_behaviour *b,
                            const struct peers *p) {
  struct scan t = {0};

  if (b->peers.node[0] != '\0') {
    /* A node selector watches at most one peer: no scan. */
    const struct peer *peer = peers_find(p, b->peers.node);
    if (peer != NULL && engine_watches(b, p, peer))
      scan_peer(&b->when, &t, peer_state(peer));
  } else {
    for (size_t i = 0; i < p->n && !t.decided; i++)
      if (engine_watches(b, p, p->v[i]))
        scan_peer(&b->when, &t, peer_state(p->v[i]));
  }
  return t.decided ? t.result : counts_hold(&b->when, t.watched, t.in);
}

/* ---- the census: counted peers and the distinct selectors ---- */

static bool bit(const uint64_t *set, size_t i) {
  return (set[i / 64] >> (i % 64)) & 1u;
}

static void census_clear(struct engine_census *c) {
  for (size_t i = 0; i < c->n; i++)
    free(c->v[i]);
  c->n = 0;
}

static void census_free(struct engine_census *c) {
  if (c == NULL)
    return;
  census_clear(c);
  free(c->v);
  free(c->sel);
  free(c->scratch);
  free(c);
}

/* A census for cfg, with s[i].sel set for each behaviour; nothing counted
 * yet (not valid). NULL when out of memory. */
static struct engine_census *census_new(const struct config *cfg,
                                        struct engine_bstate *s) {
  struct engine_census *c = calloc(1, sizeof(*c));
  size_t n = cfg->nbehaviours;

  if (c == NULL || (c->sel = calloc(n != 0 ? n : 1, sizeof(*c->sel))) == NULL)
    goto fail;
  for (size_t i = 0; i < n; i++) {
    const struct config_selector *sel = &cfg->behaviours[i].peers;
    size_t k = 0;
    while (k < c->nsel && (strcmp(c->sel[k]->group, sel->group) != 0 ||
                           strcmp(c->sel[k]->node, sel->node) != 0))
      k++;
    if (k == c->nsel)
      c->sel[c->nsel++] = sel;
    s[i].sel = k;
  }
  c->words = (c->nsel + 63) / 64;
  c->scratch = calloc(c->words != 0 ? c->words : 1, sizeof(*c->scratch));
  if (c->scratch == NULL)
    goto fail;
  return c;
fail:
  census_free(c);
  return NULL;
}

/* The selectors that record r matches, into set. */
static void census_match(const struct engine_census *c, const struct record *r,
                         uint64_t *set) {
  memset(set, 0, c->words * sizeof(*set));
  for (size_t k = 0; k < c->nsel; k++)
    if (selector_matches(c->sel[k], r))
      set[k / 64] |= (uint64_t)1 << (k % 64);
}

/* The index of name, or where it would be inserted. */
static size_t census_locate(const struct engine_census *c, const char *name,
                            bool *found) {
  size_t lo = 0, hi = c->n;

  *found = false;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int cmp = strcmp(c->v[mid]->name, name);
    if (cmp == 0) {
      *found = true;
      return mid;
    }
    if (cmp < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static void census_drop(struct engine_census *c, const char *name);

/* Record peer as counted with state and the match bits in set; returns 0
 * or CHOREO_ENOMEM (the census is then unchanged). A peer no selector
 * matches counts for no behaviour: it is left out (dropped if it was
 * in), which is what every reader of the census makes of an entry
 * without bits, so that an agent watching a few groups of a large
 * cluster keeps an entry for their members only. */
static int census_put(struct engine_census *c, const struct record *r,
                      const char *state, const uint64_t *set) {
  size_t bytes = c->words * sizeof(*set);
  bool found, any = false;
  size_t at;
  struct counted *k;

  for (size_t w = 0; w < c->words; w++)
    any |= set[w] != 0;
  if (!any) {
    census_drop(c, r->name);
    return 0;
  }
  at = census_locate(c, r->name, &found);
  if (!found) {
    if (c->n == c->cap) {
      size_t cap = c->cap != 0 ? c->cap * 2 : 16;
      struct counted **v = realloc(c->v, cap * sizeof(*v));
      if (v == NULL)
        return CHOREO_ENOMEM;
      c->v = v;
      c->cap = cap;
    }
    if ((k = malloc(sizeof(*k) + bytes)) == NULL)
      return CHOREO_ENOMEM;
    (void)strlcpy_checked(k->name, r->name, sizeof(k->name));
    memmove(c->v + at + 1, c->v + at, (c->n - at) * sizeof(*c->v));
    c->v[at] = k;
    c->n++;
  }
  k = c->v[at];
  (void)strlcpy_checked(k->state, state, sizeof(k->state));
  memcpy(k->match, set, bytes);
  return 0;
}

static void census_drop(struct engine_census *c, const char *name) {
  bool found;
  size_t at = census_locate(c, name, &found);

  if (!found)
    return;
  free(c->v[at]);
  memmove(c->v + at, c->v + at + 1, (c->n - at - 1) * sizeof(*c->v));
  c->n--;
}

static struct counted *census_find(const struct engine_census *c,
                                   const char *name) {
  bool found;
  size_t at = census_locate(c, name, &found);
  return found ? c->v[at] : NULL;
}

/* Count every peer of the table afresh. Returns 0, or CHOREO_ENOMEM (the
 * census stays invalid). */
static int census_rebuild(struct engine *e, const struct peers *p) {
  struct engine_census *c = e->census;

  census_clear(c);
  for (size_t i = 0; i < p->n; i++) {
    const struct peer *peer = p->v[i];
    if (!countable(peer, e->cfg->name))
      continue;
    census_match(c, peer->rec, c->scratch);
    if (census_put(c, peer->rec, peer_state(peer), c->scratch) != 0) {
      census_clear(c);
      return CHOREO_ENOMEM;
    }
  }
  for (size_t i = 0; i < e->cfg->nbehaviours; i++) {
    const struct config_behaviour *b = &e->cfg->behaviours[i];
    struct engine_bstate *s = &e->b[i];
    s->watched = s->in = 0;
    if (!b->has_when)
      continue;
    for (size_t k = 0; k < c->n; k++) {
      if (!bit(c->v[k]->match, s->sel))
        continue;
      s->watched++;
      s->in += engine_state_in(&b->when, c->v[k]->state);
    }
    s->stale = true;
  }
  c->valid = true;
  return 0;
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
  e->census = census_new(cfg, e->b);
  if (e->census == NULL) {
    free(e->b);
    e->b = NULL;
    return CHOREO_ENOMEM;
  }
  e->cfg = cfg;
  return 0;
}

void engine_free(struct engine *e) {
  if (e->b != NULL && e->cfg != NULL)
    for (size_t i = 0; i < e->cfg->nbehaviours; i++)
      queue_free(&e->b[i]);
  free(e->b);
  census_free(e->census);
  e->b = NULL;
  e->census = NULL;
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
  struct engine_census *census = v != NULL ? census_new(cfg, v) : NULL;

  if (census == NULL || taken == NULL) {
    free(v);
    free(taken);
    census_free(census);
    return CHOREO_ENOMEM;
  }
  for (size_t i = 0; i < cfg->nbehaviours; i++) {
    const struct config_behaviour *nb = &cfg->behaviours[i];
    size_t j = old_index(e, nb, taken), sel = v[i].sel;
    if (j == SIZE_MAX)
      continue;
    taken[j] = true;
    if (config_behaviour_same_trigger(&e->cfg->behaviours[j], nb)) {
      v[i] = e->b[j]; /* the queue moves along */
      v[i].stale = true;
      v[i].sel = sel;
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
  e->census = census; /* counted afresh at the next step */
  return 0;
}

int engine_restore(struct engine *e, const char *name, bool run,
                   bool same_condition) {
  int i = engine_index(e, name);

  if (e->synced)
    return CHOREO_EINVAL;
  if (i < 0 || !e->cfg->behaviours[i].has_when)
    return CHOREO_ENOTFOUND;
  /* A REVERT that ended leaves the behaviour as a first start does:
   * RUN if the condition holds, nothing else. */
  e->b[i].applied = run;
  e->b[i].rerun = run && !same_condition;
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
  (void)strlcpy_checked(c->peer, ev->peer->rec->name, sizeof(c->peer));
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

/* One event as the census sees it: the peer's contribution before (as
 * counted) and now. */
struct delta {
  const struct peer_event *ev;
  const struct engine_cause *cause;
  const struct counted *was; /* NULL: not counted before */
  bool counts;               /* counted now (heard, present, not self) */
  bool same;                 /* counted before and now alike */
  bool reaped;
  const uint64_t *match; /* the selectors the record matches now */
};

/* A condition behaviour: move its counts by the peer's old and new
 * contribution; stale only when they moved. With counts not valid (not
 * rebuilt yet) every event of a selected peer makes it stale. */
static void event_condition(struct engine *e, size_t i, const struct delta *d) {
  const struct config_behaviour *b = &e->cfg->behaviours[i];
  struct engine_bstate *s = &e->b[i];
  bool before = d->was != NULL && bit(d->was->match, s->sel);
  bool now = d->counts && bit(d->match, s->sel);
  bool in_before, in_now;

  if (!e->census->valid) {
    if (before || (!d->reaped && bit(d->match, s->sel))) {
      s->stale = true;
      s->pending = *d->cause;
    }
    return;
  }
  if (d->same || (!before && !now))
    return;
  in_before = before && engine_state_in(&b->when, d->was->state);
  in_now = now && engine_state_in(&b->when, d->ev->state);
  if (before == now && in_before == in_now)
    return;
  s->watched = s->watched - before + now;
  s->in = s->in - in_before + in_now;
  /* The cause of a truth change is the last event that left the truth
   * different from its last evaluation; events that leave it equal can't
   * be it, and copying a cause into each of many behaviours is most of
   * an event's cost. */
  if (counts_hold(&b->when, s->watched, s->in) != s->truth) {
    s->stale = true;
    s->pending = *d->cause;
  }
}

/* An `on:` behaviour: a change of the watched set (a peer entering,
 * changing in or leaving it, reaping included) marks `on: change` dirty;
 * a per-peer event of a selected peer is queued once synced. */
static void event_on(struct engine *e, size_t i, const struct delta *d,
                     uint64_t now) {
  const struct config_behaviour *b = &e->cfg->behaviours[i];
  struct engine_bstate *s = &e->b[i];
  bool selected = !d->reaped && bit(d->match, s->sel);
  bool before = d->was != NULL && bit(d->was->match, s->sel);
  enum engine_action_type act;
  enum config_event cev;

  if (watches_change(b) && (selected || before)) {
    if (!s->dirty)
      s->dirty_since = now;
    s->dirty = true;
    s->cause = *d->cause;
  }
  /* Per-peer events from before the sync are not replayed. */
  if (selected && e->synced && event_kind(d->ev->type, &cev, &act) &&
      (b->on_mask & CONFIG_EV_BIT(cev)) != 0 && !queue_push(s, act, d->cause))
    e->dropped++;
}

static bool same_match(const struct engine_census *c, const uint64_t *a,
                       const uint64_t *b) {
  return memcmp(a, b, c->words * sizeof(*a)) == 0;
}

/* Bring the census to the peer's contribution now. */
static void census_update(struct engine *e, const struct delta *d) {
  struct engine_census *c = e->census;

  if (!c->valid || d->same)
    return;
  if (!d->counts)
    census_drop(c, d->ev->peer->rec->name);
  else if (census_put(c, d->ev->peer->rec, d->ev->state, d->match) != 0)
    c->valid = false; /* counted afresh at the next step */
}

/* Only behaviours whose selector matched the peer before or matches it
 * now are touched (a left peer still matches for its "left" event). */
void engine_peer_event(struct engine *e, const struct peer_event *ev,
                       uint64_t now) {
  struct engine_census *c = e->census;
  struct engine_cause cause;
  struct delta d = {.ev = ev, .cause = &cause, .match = c->scratch};

  cause_from_event(&cause, ev);
  d.reaped = ev->type == PEER_EV_REAPED;
  d.counts = !d.reaped && countable(ev->peer, e->cfg->name);
  d.was = c->valid ? census_find(c, ev->peer->rec->name) : NULL;
  census_match(c, ev->peer->rec, c->scratch);
  d.same = d.was != NULL && d.counts && strcmp(d.was->state, ev->state) == 0 &&
           same_match(c, d.was->match, d.match);
  for (size_t i = 0; i < e->cfg->nbehaviours; i++) {
    if (e->cfg->behaviours[i].has_when)
      event_condition(e, i, &d);
    else
      event_on(e, i, &d, now);
  }
  census_update(e, &d);
}

/* ---- stepping ---- */

/* One step's working state: where its actions go. */
struct out {
  struct engine_action *v;
  size_t n, max;
  uint64_t *deadline;
  const struct peers *p; /* for conditions while the counts are invalid */
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

static void evaluate(struct engine *e, size_t i, uint64_t now, struct out *o) {
  const struct config_behaviour *b = &e->cfg->behaviours[i];
  struct engine_bstate *s = &e->b[i];
  bool truth = e->census->valid ? counts_hold(&b->when, s->watched, s->in)
                                : engine_condition_holds(b, o->p);

  s->stale = false;
  if (truth != s->truth) {
    s->truth = truth;
    s->truth_since = now;
    s->cause = s->pending;
  }
  memset(&s->pending, 0, sizeof(s->pending));
}

static void step_condition(struct engine *e, size_t i, uint64_t now,
                           struct out *o) {
  const struct config_behaviour *b = &e->cfg->behaviours[i];
  struct engine_bstate *s = &e->b[i];
  uint64_t due;

  if (s->stale)
    evaluate(e, i, now, o);
  if (s->busy || (s->truth == s->applied && !s->rerun))
    return; /* engine_done() brings the next step */
  due = util_add_sat(s->truth_since, b->settle_ms);
  if (now < due) {
    set_min(o->deadline, due);
    return;
  }
  if (issue(o, now, i, s->truth ? ENGINE_ACT_RUN : ENGINE_ACT_REVERT,
            &s->cause)) {
    s->applied = s->truth;
    s->rerun = false;
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
    uint64_t due = util_add_sat(s->dirty_since, b->settle_ms);
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
  struct out o = {.v = out, .max = max, .deadline = deadline, .p = p};

  *deadline = UINT64_MAX;
  /* Out of memory, the conditions are scanned instead. */
  if (!e->census->valid)
    (void)census_rebuild(e, p);
  if (!e->synced)
    return 0;
  for (size_t i = 0; i < e->cfg->nbehaviours; i++) {
    if (e->cfg->behaviours[i].has_when)
      step_condition(e, i, now, &o);
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

bool engine_superseded(const struct engine *e, size_t b) {
  const struct engine_bstate *s;
  if (e->cfg == NULL || b >= e->cfg->nbehaviours ||
      !e->cfg->behaviours[b].has_when)
    return false;
  s = &e->b[b];
  return s->busy && s->truth != s->applied;
}

void engine_withdrawn(struct engine *e, size_t b) {
  if (e->cfg == NULL || b >= e->cfg->nbehaviours ||
      !e->cfg->behaviours[b].has_when || !e->b[b].busy)
    return;
  /* RUN and REVERT alternate: the one before the withdrawn one stands. */
  e->b[b].applied = !e->b[b].applied;
}

int engine_claim(const struct engine *e) {
  for (size_t i = 0; i < e->cfg->nbehaviours; i++) {
    const struct config_behaviour *b = &e->cfg->behaviours[i];
    if (b->state[0] != '\0' && b->has_when && e->b[i].applied)
      return (int)i;
  }
  return -1;
}
