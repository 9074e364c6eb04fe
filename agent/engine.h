/*
 * engine.h — the behaviour engine: decides which behaviour scripts run, and
 * when, from the configuration, the peer table and the time.
 *
 * Pure: no libuv, no processes. The agent feeds it peer events and the
 * monotonic time, asks it for actions with engine_step(), carries them out
 * (runner), and reports each action's end with engine_done(). It also tells
 * the agent when to call again (the next settle or coalescing deadline).
 *
 * Rules (docs/CONFIGURATION.md "Conditions", "Events", "Own state"):
 *  - A condition behaviour is level-based: RUN when its condition becomes
 *    true, REVERT when it becomes false; they strictly alternate, and the
 *    last one issued matches the latest truth. A change must hold for
 *    `settle` before it counts; a shorter flap issues nothing.
 *  - One action per behaviour at a time: while one is in flight, changes
 *    only update the truth, and after engine_done() the single action that
 *    brings the behaviour to the latest truth (if any) is issued.
 *  - `on: change` is coalesced: changes of watched peers mark it dirty; it
 *    runs when not busy and `settle` has passed since the first change of
 *    the burst. `on: [events]` queue one action per event per peer.
 *  - Nothing is issued before engine_set_synced() (startup sync window);
 *    then every condition that holds issues RUN once, and every `on:
 *    change` behaviour runs once with the snapshot. Per-peer events that
 *    happen before the sync are not replayed.
 *  - Watched peers: those matching the behaviour's selector (group and/or
 *    node), heard from, and not left; self is never watched. A lost peer is
 *    watched and in state "lost". A peer whose groups change enters or
 *    leaves the watched set at that event (the table reports a groups
 *    change as "data").
 *
 * Cost: the engine counts, per condition behaviour, its watched peers and
 * those in its states, moved by each event; an event costs O(behaviours),
 * a step evaluates only the conditions an event moved, each in O(1).
 */
#ifndef CHOREO_ENGINE_H
#define CHOREO_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "peers.h"

/* Per-peer event actions queued for one behaviour at most; more are dropped
 * and counted in engine.dropped. */
#define ENGINE_QUEUE_MAX 256

#define ENGINE_ACTION_MAP(XX)                                                  \
  XX(RUN, "run")                                                               \
  XX(REVERT, "revert")                                                         \
  XX(CHANGE, "change")                                                         \
  XX(JOINED, "joined")                                                         \
  XX(LEFT, "left")                                                             \
  XX(LOST, "lost")                                                             \
  XX(STATE, "state")                                                           \
  XX(DATA, "data")

enum engine_action_type {
#define XX(id, s) ENGINE_ACT_##id,
  ENGINE_ACTION_MAP(XX)
#undef XX
};

/* The peer that caused an action: for RUN/REVERT the last watched peer
 * whose event changed the truth (empty at startup); for per-peer events
 * that peer; for CHANGE the last peer of the burst. */
struct engine_cause {
  char peer[CHOREO_NAME_MAX + 1];
  char state[CHOREO_STATE_MAX + 1];
  char previous[CHOREO_STATE_MAX + 1];
  char reason[CHOREO_REASON_MAX + 1];
};

struct engine_action {
  size_t behaviour; /* index into cfg->behaviours */
  enum engine_action_type type;
  struct engine_cause cause;
};

struct engine_bstate; /* private to engine.c */
struct engine_census; /* private to engine.c */

struct engine {
  const struct config *cfg;     /* borrowed: must outlive the engine, or be
                                   replaced with engine_reload() */
  struct engine_bstate *b;      /* cfg->nbehaviours entries; owned */
  struct engine_census *census; /* counted peers; owned */
  bool synced;
  uint64_t dropped; /* event actions dropped on full queues; the agent
                       logs and resets it */
};

/* Prepare the engine for cfg (no actions yet). Returns 0 or CHOREO_ENOMEM. */
int engine_init(struct engine *e, const struct config *cfg, uint64_t now);
/* Switch to cfg: a behaviour whose name and trigger
 * (config_behaviour_same_trigger) are unchanged keeps its state (and so
 * does not run again); others start fresh, as at startup. A behaviour that
 * is dropped or changed while its run is applied is not reverted. An
 * action in flight for a kept behaviour stays in flight; a changed one
 * starts fresh once its old action is done. Returns 0 or
 * CHOREO_ENOMEM (the engine is then unchanged). */
int engine_reload(struct engine *e, const struct config *cfg, uint64_t now);
void engine_free(struct engine *e);

/* The index of the behaviour named name in the current configuration, or
 * -1. Indexes change with engine_reload(): an action in flight across a
 * reload is mapped back to its behaviour by name. */
int engine_index(const struct engine *e, const char *name);

/* Before the startup sync: what the previous run of this agent applied
 * for the level behaviour named name (applied.json, docs/BEHAVIOURS.md
 * "Restarts"): run (its RUN was the last action that ended) or not (its
 * REVERT was, or nothing), and whether that was for the same condition
 * (selector and `when`) as now. Once synced the engine reconciles:
 *   run, same condition:    REVERT if the condition is false, else nothing;
 *   run, other condition:   REVERT if false, RUN again if true (the RUN
 *                           was for another condition);
 *   not run (either way):   RUN if true, else nothing (as a first start).
 * Returns 0; CHOREO_ENOTFOUND when no level behaviour has that name (the
 * entry is to be ignored); CHOREO_EINVAL once synced (nothing changed). */
int engine_restore(struct engine *e, const char *name, bool run,
                   bool same_condition);

/* The startup sync is complete: actions may be issued from now on. */
void engine_set_synced(struct engine *e, uint64_t now);

/* Feed one peer event (from the peer table's callback). Every event of the
 * table must be fed, REAPED included: the counts follow them. */
void engine_peer_event(struct engine *e, const struct peer_event *ev,
                       uint64_t now);

/* Issue the actions due at `now`, at most max of them, into out; returns
 * how many. Each issued action makes its behaviour busy until
 * engine_done(). *deadline receives the monotonic time at which calling
 * again would issue more without any new event (UINT64_MAX: none). p is the
 * table whose events were fed: after engine_init() and engine_reload() the
 * first step counts its peers afresh (O(peers x behaviours), once). */
size_t engine_step(struct engine *e, const struct peers *p, uint64_t now,
                   struct engine_action *out, size_t max, uint64_t *deadline);

/* The action of behaviour b has finished (succeeded or failed for good).
 * An index that names no behaviour (any more) is ignored. */
void engine_done(struct engine *e, size_t b, uint64_t now);

/* Is behaviour b's action in flight superseded: a condition behaviour
 * whose truth went back to what was applied before that action was
 * issued? An action that has not started yet (its script could not be
 * started, say for want of descriptors, and waits to try again) is then
 * better withdrawn than run late and undone. False for event behaviours:
 * each of their actions stands. */
bool engine_superseded(const struct engine *e, size_t b);

/* The action in flight of behaviour b was withdrawn before it ran: as far
 * as the condition goes, it was never issued. engine_done() still follows
 * as for any action. An index that names no behaviour is ignored. */
void engine_withdrawn(struct engine *e, size_t b);

/* The first behaviour in file order with a `state` whose RUN is applied
 * (its condition holds, as far as actions go); -1 if none. */
int engine_claim(const struct engine *e);

/* Does behaviour b watch this peer (selector, heard, not left, not self)? */
bool engine_watches(const struct config_behaviour *b, const struct peers *p,
                    const struct peer *peer);
/* Is state one of the condition's states? */
bool engine_state_in(const struct config_condition *c, const char *state);
/* Evaluate b's condition over the peer table now. */
bool engine_condition_holds(const struct config_behaviour *b,
                            const struct peers *p);

const char *engine_action_name(enum engine_action_type t);

#endif
