/*
 * test_engine.c — unit tests of the behaviour engine (agent/engine.c).
 *
 * The rules are table-driven: each row is a configuration (up to three
 * behaviours), a timeline of operations on a real peer table (records
 * merged from peers, ticks that make peers lost, the startup sync, the end
 * of actions) and the exact sequence of actions expected, with the peer
 * that caused each, plus the own-state claim at the end. The peer table's
 * event callback feeds the engine, so the rows exercise real events.
 *
 * After every operation the harness steps the engine at that time; unless
 * the row is "manual", each issued action ends at once (engine_done), as a
 * script that returns immediately would.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "util.h"

#define SELF "self"
#define LOST_AFTER 1000
#define REAP_AFTER 10000
#define NOTHING UINT64_MAX /* no deadline */
#define ROW_BEHAVIOURS 3
#define ROW_OPS 24

/* ---- rows ---- */

struct bspec {
  bool when;
  enum config_cond_kind kind;
  const char *states[CONFIG_STATES_MAX];
  unsigned n;
  unsigned on; /* CONFIG_EV_BIT()s */
  const char *group, *node;
  uint64_t settle;
  const char *claim; /* the behaviour's own state; NULL: none */
};

enum op_kind {
  OP_END,
  OP_MERGE,    /* peer publishes (state, ver) in group (default "db") */
  OP_LEAVE,    /* peer announces a graceful leave with version ver */
  OP_TICK,     /* the peer table looks for silent peers */
  OP_SYNC,     /* the startup sync is complete */
  OP_DONE,     /* the action of behaviour b ends */
  OP_STEP,     /* only step */
  OP_DEADLINE, /* step, then the deadline must be `at` */
  OP_CLAIM,    /* engine_claim() must be b (-1: none); no step */
  OP_RESTORE,  /* engine_restore(peer: name, ver: run, b: same condition)
                  must return at; then step */
};

struct op {
  enum op_kind kind;
  uint64_t t;
  const char *peer, *state, *group;
  const char *data; /* the record's data {"v": data}; NULL: none */
  uint64_t ver;
  int b;
  uint64_t at;
};

struct row {
  const char *name;
  struct bspec b[ROW_BEHAVIOURS];
  bool manual; /* actions end only with OP_DONE */
  struct op ops[ROW_OPS];
  const char *expect; /* "type(peer) …", "bN/" prefixed past one behaviour */
  int claim;
};

#define ANY(...) .when = true, .kind = COND_ANY, .states = {__VA_ARGS__}
#define ALL(...) .when = true, .kind = COND_ALL, .states = {__VA_ARGS__}
#define NONE(...) .when = true, .kind = COND_NONE, .states = {__VA_ARGS__}
#define FEWER(k, ...)                                                          \
  .when = true, .kind = COND_FEWER_THAN, .n = k, .states = {__VA_ARGS__}
#define DB .group = "db"

#define M(t_, p_, s_, v_)                                                      \
  { .kind = OP_MERGE, .t = t_, .peer = p_, .state = s_, .ver = v_ }
#define MG(t_, p_, g_, s_, v_)                                                 \
  { .kind = OP_MERGE, .t = t_, .peer = p_, .group = g_, .state = s_, .ver = v_ }
#define MD(t_, p_, s_, v_, d_)                                                 \
  { .kind = OP_MERGE, .t = t_, .peer = p_, .state = s_, .ver = v_, .data = d_ }
#define LEAVE(t_, p_, v_)                                                      \
  { .kind = OP_LEAVE, .t = t_, .peer = p_, .ver = v_ }
#define TICK(t_)                                                               \
  { .kind = OP_TICK, .t = t_ }
#define SYNC(t_)                                                               \
  { .kind = OP_SYNC, .t = t_ }
#define DONE(t_, b_)                                                           \
  { .kind = OP_DONE, .t = t_, .b = b_ }
#define STEP(t_)                                                               \
  { .kind = OP_STEP, .t = t_ }
#define DEADLINE(t_, at_)                                                      \
  { .kind = OP_DEADLINE, .t = t_, .at = at_ }
#define CLAIM(b_)                                                              \
  { .kind = OP_CLAIM, .b = b_ }
#define RESTORE(name_, run_, same_, rv_)                                       \
  {                                                                            \
    .kind = OP_RESTORE, .peer = name_, .ver = run_, .b = same_,                \
    .at = (uint64_t)(int64_t)(rv_)                                             \
  }

/* Two peers of group db in the given states, then the sync, at time 0. */
#define START(s1, s2) M(0, "db1", s1, 1), M(0, "db2", s2, 1), SYNC(0)

/* ---- each condition kind through the same situations ----
 * any maintenance: db1 toggles, db2 stays ready.
 * all maintenance: db1 toggles, db2 stays in maintenance.
 * none maintenance: db1 toggles (ready: true), db2 stays ready.
 * fewer_than 2 ready: db1 toggles (maintenance: true), db2 stays ready. */
#define KIND_ROWS(K, COND, T, F, FIXED)                                        \
  {.name = K "_edge_up",                                                       \
   .b = {{COND, DB, .claim = "degraded"}},                                     \
   .ops = {START(F, FIXED), M(100, "db1", T, 2)},                              \
   .expect = "run(db1)",                                                       \
   .claim = 0},                                                                \
      {.name = K "_edge_down",                                                 \
       .b = {{COND, DB, .claim = "degraded"}},                                 \
       .ops = {START(F, FIXED), M(100, "db1", T, 2), M(200, "db1", F, 3)},     \
       .expect = "run(db1) revert(db1)",                                       \
       .claim = -1},                                                           \
      {.name = K "_flap_shorter_than_settle_issues_nothing",                   \
       .b = {{COND, DB, .settle = 100, .claim = "degraded"}},                  \
       .ops = {START(F, FIXED), M(100, "db1", T, 2), M(150, "db1", F, 3),      \
               STEP(250), STEP(1000)},                                         \
       .expect = "",                                                           \
       .claim = -1},                                                           \
      {.name = K "_flap_longer_than_settle_runs_then_reverts",                 \
       .b = {{COND, DB, .settle = 100, .claim = "degraded"}},                  \
       .ops = {START(F, FIXED), M(100, "db1", T, 2), STEP(199), STEP(200),     \
               M(300, "db1", F, 3), STEP(399), CLAIM(0), STEP(400)},           \
       .expect = "run(db1) revert(db1)",                                       \
       .claim = -1},                                                           \
      {.name = K "_duplicate_message_issues_nothing",                          \
       .b = {{COND, DB, .claim = "degraded"}},                                 \
       .ops = {START(F, FIXED), M(100, "db1", T, 2), M(200, "db1", T, 2),      \
               M(300, "db1", T, 2), M(400, "db2", FIXED, 1)},                  \
       .expect = "run(db1)",                                                   \
       .claim = 0},                                                            \
      {.name = K "_reordered_older_record_issues_nothing",                     \
       .b = {{COND, DB, .claim = "degraded"}},                                 \
       .ops = {START(F, FIXED), M(100, "db1", T, 3), M(200, "db1", F, 2),      \
               M(300, "db1", F, 1)},                                           \
       .expect = "run(db1)",                                                   \
       .claim = 0},                                                            \
  {                                                                            \
    .name = K "_start_while_true_runs_once_after_sync",                        \
    .b = {{COND, DB, .claim = "degraded"}},                                    \
    .ops = {M(0, "db1", T, 1), M(0, "db2", FIXED, 1),                          \
            STEP(100),         M(200, "db1", T, 1),                            \
            CLAIM(-1),         SYNC(500),                                      \
            STEP(600),         M(700, "db1", T, 1)},                           \
    .expect = "run()", .claim = 0                                              \
  }

static const struct row rows[] = {
    KIND_ROWS("any", ANY("maintenance"), "maintenance", "ready", "ready"),
    KIND_ROWS("all", ALL("maintenance"), "maintenance", "ready", "maintenance"),
    KIND_ROWS("none", NONE("maintenance"), "ready", "maintenance", "ready"),
    KIND_ROWS("fewer_than", FEWER(2, "ready"), "maintenance", "ready", "ready"),

    /* A lost peer is watched, in state "lost". */
    {.name = "any_lost_peer_no_longer_counts_as_its_state",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("ready", "ready"), M(100, "db1", "maintenance", 2),
             M(1200, "db2", "ready", 1), TICK(1200)},
     .expect = "run(db1) revert(db1)",
     .claim = -1},
    {.name = "any_lost_peer_counts_as_state_lost",
     .b = {{ANY("lost"), DB, .claim = "degraded"}},
     .ops = {START("ready", "ready"), M(600, "db2", "ready", 1), TICK(999),
             TICK(1000), TICK(1100)},
     .expect = "run(db1)",
     .claim = 0},
    {.name = "all_lost_peer_breaks_all",
     .b = {{ALL("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("maintenance", "maintenance"),
             M(1050, "db2", "maintenance", 1), TICK(1050)},
     .expect = "run() revert(db1)",
     .claim = -1},
    {.name = "none_lost_peer_is_not_in_state",
     .b = {{NONE("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("maintenance", "ready"), M(1050, "db2", "ready", 1),
             TICK(1050)},
     .expect = "run(db1)",
     .claim = 0},
    {.name = "fewer_than_lost_peer_lowers_the_count",
     .b = {{FEWER(2, "ready"), DB, .claim = "degraded"}},
     .ops = {START("ready", "ready"), M(1050, "db2", "ready", 1), TICK(1050)},
     .expect = "run(db1)",
     .claim = 0},
    {.name = "lost_peer_that_comes_back_reverts",
     .b = {{ANY("lost"), DB, .claim = "degraded"}},
     .ops = {START("ready", "ready"), M(1050, "db2", "ready", 1), TICK(1050),
             M(1100, "db1", "ready", 1)},
     .expect = "run(db1) revert(db1)",
     .claim = -1},

    {.name = "reaped_peer_is_no_longer_watched",
     .b = {{ALL("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("maintenance", "maintenance"),
             M(1050, "db1", "maintenance", 1), TICK(1050),
             M(11000, "db1", "maintenance", 1), TICK(11000),
             M(11100, "db1", "maintenance", 1), TICK(11100)},
     .expect = "run() revert(db2) run(db2)",
     .claim = 0},

    /* A peer joins while the condition holds. */
    {.name = "any_peer_joins_while_true",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("ready", "ready"), M(100, "db1", "maintenance", 2),
             M(200, "db3", "ready", 1), M(300, "db4", "maintenance", 1)},
     .expect = "run(db1)",
     .claim = 0},
    {.name = "all_peer_joins_while_true",
     .b = {{ALL("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("ready", "maintenance"), M(100, "db1", "maintenance", 2),
             M(200, "db3", "ready", 1), M(300, "db3", "maintenance", 2)},
     .expect = "run(db1) revert(db3) run(db3)",
     .claim = 0},
    {.name = "none_peer_joins_while_true",
     .b = {{NONE("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("maintenance", "ready"), M(100, "db1", "ready", 2),
             M(200, "db3", "ready", 1)},
     .expect = "run(db1)",
     .claim = 0},
    {.name = "fewer_than_peer_joins_while_true",
     .b = {{FEWER(2, "ready"), DB, .claim = "degraded"}},
     .ops = {START("ready", "ready"), M(100, "db1", "maintenance", 2),
             M(200, "db3", "ready", 1)},
     .expect = "run(db1) revert(db3)",
     .claim = -1},

    /* Conditions over no watched peer. */
    {.name = "all_needs_at_least_one_watched_peer",
     .b = {{ALL("maintenance"), DB, .claim = "degraded"}},
     .ops = {SYNC(0), MG(100, "web1", "web", "maintenance", 1)},
     .expect = "",
     .claim = -1},
    {.name = "none_and_fewer_than_hold_without_peers",
     .b = {{NONE("maintenance"), DB}, {FEWER(1, "ready"), DB}},
     .ops = {SYNC(0), M(100, "db1", "ready", 1)},
     .expect = "b0/run() b1/run() b1/revert(db1)",
     .claim = -1},

    /* One action at a time; strict alternation. */
    {.name = "flip_while_busy_issues_only_the_latest_truth_after_done",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .manual = true,
     .ops = {START("ready", "ready"), M(100, "db1", "maintenance", 2),
             M(200, "db1", "ready", 3), CLAIM(0), DONE(300, 0), CLAIM(-1),
             DONE(400, 0), STEP(500)},
     .expect = "run(db1) revert(db1)",
     .claim = -1},
    {.name = "flip_twice_while_busy_issues_nothing",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .manual = true,
     .ops = {START("ready", "ready"), M(100, "db1", "maintenance", 2),
             M(200, "db1", "ready", 3), M(250, "db1", "maintenance", 4),
             DONE(300, 0), STEP(400)},
     .expect = "run(db1)",
     .claim = 0},
    {.name = "done_of_an_idle_behaviour_changes_nothing",
     .b = {{ANY("maintenance"), DB}},
     .manual = true,
     .ops = {START("ready", "ready"), DONE(50, 0), DONE(60, 7),
             M(100, "db1", "maintenance", 2), M(150, "db1", "ready", 3),
             DONE(200, 0), DONE(210, 0)},
     .expect = "run(db1) revert(db1)",
     .claim = -1},

    /* Selectors. */
    {.name = "states_list_means_one_of",
     .b = {{ANY("maintenance", "draining"), DB, .claim = "degraded"}},
     .ops = {START("ready", "ready"), M(100, "db1", "draining", 2),
             M(200, "db1", "maintenance", 3), M(300, "db2", "draining", 2),
             M(400, "db1", "ready", 4), M(500, "db2", "ready", 3)},
     .expect = "run(db1) revert(db2)",
     .claim = -1},
    {.name = "group_selector_ignores_other_groups",
     .b = {{ANY("maintenance"), DB}},
     .ops = {START("ready", "ready"), MG(100, "web1", "web", "maintenance", 1),
             M(200, "db1", "maintenance", 2)},
     .expect = "run(db1)",
     .claim = -1},
    {.name = "no_selector_watches_every_peer",
     .b = {{ANY("maintenance")}},
     .ops = {START("ready", "ready"), MG(100, "web1", "web", "maintenance", 1)},
     .expect = "run(web1)",
     .claim = -1},
    {.name = "node_selector_watches_that_node_only",
     .b = {{ANY("maintenance"), .node = "db2"}},
     .ops = {START("ready", "ready"), M(100, "db1", "maintenance", 2),
             M(200, "db2", "maintenance", 2)},
     .expect = "run(db2)",
     .claim = -1},
    {.name = "node_and_group_selector_need_both",
     .b = {{ANY("maintenance"), DB, .node = "web1"}},
     .ops = {START("ready", "ready"), MG(100, "web1", "web", "maintenance", 1),
             M(200, "db1", "maintenance", 2)},
     .expect = "",
     .claim = -1},
    {.name = "self_is_never_watched",
     .b = {{ANY("maintenance"), .claim = "degraded"}},
     .ops = {SYNC(0), MG(100, SELF, "db", "maintenance", 1)},
     .expect = "",
     .claim = -1},
    {.name = "any_left_peer_is_not_watched",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("ready", "ready"), M(100, "db1", "maintenance", 2),
             LEAVE(200, "db1", 3), M(300, "db1", "maintenance", 2)},
     .expect = "run(db1) revert(db1)",
     .claim = -1},
    {.name = "all_left_peer_is_not_watched",
     .b = {{ALL("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("maintenance", "ready"), LEAVE(100, "db2", 2)},
     .expect = "run(db2)",
     .claim = 0},

    /* A peer's groups decide whether it is watched: their change alone
     * (reported as "data") moves it into or out of the watched set. */
    {.name = "groups_change_moves_a_peer_in_and_out_of_a_condition",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .ops = {START("ready", "ready"), MG(100, "web1", "web", "maintenance", 1),
             MG(200, "web1", "db", "maintenance", 2),
             MG(300, "web1", "web", "maintenance", 3)},
     .expect = "run(web1) revert(web1)",
     .claim = -1},
    {.name = "groups_change_counts_for_all_and_fewer_than",
     .b = {{ALL("ready"), DB}, {FEWER(3, "ready"), DB}},
     .ops = {START("ready", "ready"), MG(100, "web1", "web", "busy", 1),
             MG(200, "web1", "db", "busy", 2),
             MG(300, "web1", "db", "ready", 3),
             MG(400, "web1", "web", "ready", 4)},
     .expect = "b0/run() b1/run() b0/revert(web1) b0/run(web1) "
               "b1/revert(web1) b1/run(web1)",
     .claim = -1},
    {.name = "groups_change_is_a_change_of_the_watched_peers",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_CHANGE), DB}},
     .ops = {START("ready", "ready"), MG(100, "web1", "web", "x", 1),
             MG(200, "web1", "db", "x", 2), MG(300, "web1", "web", "x", 3),
             MG(400, "web1", "web", "y", 4)},
     .expect = "change() change(web1) change(web1)",
     .claim = -1},
    {.name = "groups_change_into_the_selector_is_a_data_event",
     .b = {{.on =
                CONFIG_EV_BIT(CONFIG_EV_DATA) | CONFIG_EV_BIT(CONFIG_EV_JOINED),
            DB}},
     .ops = {START("ready", "ready"), MG(100, "web1", "web", "x", 1),
             MG(200, "web1", "db", "x", 2), MG(300, "web1", "web", "x", 3)},
     .expect = "data(web1)",
     .claim = -1},

    /* on: change */
    {.name = "change_runs_once_after_sync_with_the_snapshot",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_CHANGE), DB}},
     .ops = {M(0, "db1", "ready", 1), M(10, "db1", "maintenance", 2), STEP(20),
             SYNC(100), STEP(200)},
     .expect = "change()",
     .claim = -1},
    {.name = "change_burst_while_busy_runs_twice_in_all",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_CHANGE), DB}},
     .manual = true,
     .ops = {START("ready", "ready"), M(100, "db1", "a", 2),
             M(110, "db2", "b", 2), M(120, "db1", "c", 3),
             M(130, "db2", "d", 3), M(140, "db1", "e", 4), DONE(200, 0),
             DONE(300, 0), STEP(400)},
     .expect = "change() change(db1)",
     .claim = -1},
    {.name = "change_coalesces_a_burst_over_settle",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_CHANGE), DB, .settle = 100}},
     .ops = {START("ready", "ready"), DEADLINE(0, 100), DEADLINE(99, 100),
             STEP(100), DEADLINE(150, NOTHING), M(200, "db1", "a", 2),
             DEADLINE(200, 300), M(250, "db2", "b", 2), DEADLINE(260, 300),
             M(290, "db1", "c", 3), STEP(299), DEADLINE(300, NOTHING)},
     .expect = "change() change(db1)",
     .claim = -1},
    {.name = "change_counts_membership_and_data",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_CHANGE), DB}},
     .ops = {START("ready", "ready"), M(100, "db3", "ready", 1),
             MD(200, "db3", "ready", 2, "x"), LEAVE(300, "db3", 3),
             M(1050, "db2", "ready", 1), TICK(1050),
             MG(1100, "web1", "web", "x", 1)},
     .expect = "change() change(db3) change(db3) change(db3) change(db1)",
     .claim = -1},

    {.name = "change_counts_the_reaping_of_a_lost_peer",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_CHANGE), DB}},
     .ops = {START("ready", "ready"), M(1050, "db2", "ready", 1), TICK(1050),
             M(11000, "db2", "ready", 1), TICK(11000), TICK(11100)},
     .expect = "change() change(db1) change(db1)",
     .claim = -1},
    {.name = "change_ignores_the_reaping_of_a_left_peer",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_CHANGE), DB}},
     .ops = {START("ready", "ready"), LEAVE(100, "db1", 2),
             M(10000, "db2", "ready", 1), TICK(10000), TICK(10200)},
     .expect = "change() change(db1)",
     .claim = -1},

    {.name = "change_of_state_and_data_in_one_record_is_one_change",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_CHANGE), DB}},
     .ops = {START("ready", "ready"), MD(100, "db1", "maintenance", 2, "x")},
     .expect = "change() change(db1)",
     .claim = -1},

    /* on: [events] */
    {.name = "events_state_and_data_in_one_record_are_two_actions",
     .b = {{.on =
                CONFIG_EV_BIT(CONFIG_EV_STATE) | CONFIG_EV_BIT(CONFIG_EV_DATA),
            DB}},
     .ops = {START("ready", "ready"), MD(100, "db1", "maintenance", 2, "x")},
     .expect = "state(db1) data(db1)",
     .claim = -1},
    {.name = "events_one_action_per_event_per_peer_in_order",
     .b = {{.on =
                CONFIG_EV_BIT(CONFIG_EV_STATE) | CONFIG_EV_BIT(CONFIG_EV_LOST),
            DB}},
     .manual = true,
     .ops = {M(0, "db1", "ready", 1), M(0, "db2", "ready", 1),
             M(10, "db1", "maintenance", 2), SYNC(100), STEP(150),
             M(200, "db1", "ready", 3), M(300, "db2", "maintenance", 2),
             M(310, "db2", "maintenance", 2), M(320, "db3", "ready", 1),
             M(400, "db1", "drain", 4), DONE(500, 0), DONE(510, 0),
             M(1450, "db2", "ready", 3), M(1450, "db3", "ready", 1), TICK(1450),
             DONE(1500, 0), DONE(1600, 0), DONE(1700, 0)},
     .expect = "state(db1) state(db2) state(db1) state(db2) lost(db1)",
     .claim = -1},
    {.name = "events_joined_left_data",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_JOINED) |
                  CONFIG_EV_BIT(CONFIG_EV_LEFT) | CONFIG_EV_BIT(CONFIG_EV_DATA),
            DB}},
     .ops = {START("ready", "ready"), M(100, "db3", "ready", 1),
             MD(200, "db3", "ready", 2, "x"), MD(300, "db3", "busy", 3, "x"),
             LEAVE(400, "db3", 4)},
     .expect = "joined(db3) data(db3) left(db3)",
     .claim = -1},

    /* Own state claims: the first applied behaviour with a state, in file
     * order. */
    {.name = "claim_is_the_first_applied_behaviour_in_file_order",
     .b = {{ANY("maintenance"), DB, .claim = "first"},
           {ANY("maintenance"), DB},
           {ANY("draining"), .group = "web", .claim = "second"}},
     .ops = {START("ready", "ready"), CLAIM(-1),
             MG(100, "web1", "web", "draining", 1), CLAIM(2),
             M(200, "db1", "maintenance", 2), CLAIM(0),
             M(300, "db1", "ready", 3), CLAIM(2),
             MG(400, "web1", "web", "ready", 2)},
     .expect = "b2/run(web1) b0/run(db1) b1/run(db1) b0/revert(db1) "
               "b1/revert(db1) b2/revert(web1)",
     .claim = -1},
    {.name = "claim_follows_actions_not_truth",
     .b = {{ANY("maintenance"), DB, .settle = 100, .claim = "first"}},
     .manual = true,
     .ops = {START("ready", "ready"), M(100, "db1", "maintenance", 2),
             CLAIM(-1), STEP(200), CLAIM(0), M(250, "db1", "ready", 3),
             DONE(260, 0), CLAIM(0), STEP(350), CLAIM(-1)},
     .expect = "run(db1) revert(db1)",
     .claim = -1},

    /* Deadlines. */
    {.name = "deadline_is_the_end_of_settle",
     .b = {{ANY("maintenance"), DB, .settle = 100}},
     .manual = true,
     .ops = {START("ready", "ready"), DEADLINE(50, NOTHING),
             M(100, "db1", "maintenance", 2), DEADLINE(100, 200),
             DEADLINE(150, 200), M(160, "db1", "ready", 3),
             DEADLINE(170, NOTHING), M(180, "db1", "maintenance", 4),
             DEADLINE(190, 280), DEADLINE(280, NOTHING),
             M(300, "db1", "ready", 5), DEADLINE(300, NOTHING), DONE(310, 0),
             DEADLINE(310, 400), DEADLINE(400, NOTHING)},
     .expect = "run(db1) revert(db1)",
     .claim = -1},
    {.name = "no_deadline_before_sync",
     .b = {{ANY("maintenance"), DB, .settle = 100}},
     .ops = {M(0, "db1", "maintenance", 1), DEADLINE(10, NOTHING), SYNC(20),
             DEADLINE(30, 120), STEP(120)},
     .expect = "run()",
     .claim = -1},

    /* Restarts (docs/BEHAVIOURS.md "Restarts"): what applied.json says
     * was applied, reconciled with the truth once synced. */
    {.name = "restored_run_and_condition_false_reverts",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .ops = {RESTORE("b0", 1, 1, 0), START("ready", "ready")},
     .expect = "revert()",
     .claim = -1},
    {.name = "restored_run_and_condition_true_does_nothing",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .ops = {RESTORE("b0", 1, 1, 0), START("maintenance", "ready"), STEP(1000)},
     .expect = "",
     .claim = 0},
    {.name = "restored_run_is_claimed_before_the_sync",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .ops = {RESTORE("b0", 1, 1, 0), CLAIM(0), M(0, "db1", "ready", 1),
             CLAIM(0), SYNC(10)},
     .expect = "revert()",
     .claim = -1},
    {.name = "restored_revert_and_condition_true_runs",
     .b = {{ANY("maintenance"), DB, .claim = "degraded"}},
     .ops = {RESTORE("b0", 0, 1, 0), START("maintenance", "ready")},
     .expect = "run()",
     .claim = 0},
    {.name = "restored_revert_and_condition_false_does_nothing",
     .b = {{ANY("maintenance"), DB}},
     .ops = {RESTORE("b0", 0, 1, 0), START("ready", "ready"), STEP(1000)},
     .expect = "",
     .claim = -1},
    {.name = "restored_run_of_another_condition_runs_again_when_true",
     .b = {{ANY("maintenance"), DB}},
     .ops = {RESTORE("b0", 1, 0, 0), START("maintenance", "ready"), STEP(1000)},
     .expect = "run()",
     .claim = -1},
    {.name = "restored_run_of_another_condition_reverts_when_false",
     .b = {{ANY("maintenance"), DB}},
     .ops = {RESTORE("b0", 1, 0, 0), START("ready", "ready"), STEP(1000)},
     .expect = "revert()",
     .claim = -1},
    {.name = "restored_revert_of_another_condition_is_a_first_start",
     .b = {{NONE("maintenance"), DB}},
     .ops = {RESTORE("b0", 0, 0, 0), START("ready", "ready")},
     .expect = "run()",
     .claim = -1},
    {.name = "restored_run_then_truth_changes_alternate_as_usual",
     .b = {{ANY("maintenance"), DB}},
     .ops = {RESTORE("b0", 1, 1, 0), START("maintenance", "ready"),
             M(100, "db1", "ready", 2), M(200, "db1", "maintenance", 3)},
     .expect = "revert(db1) run(db1)",
     .claim = -1},
    {.name = "restored_run_false_waits_for_settle",
     .b = {{ANY("maintenance"), DB, .settle = 100}},
     .ops = {RESTORE("b0", 1, 1, 0), START("ready", "ready"), DEADLINE(50, 100),
             STEP(100)},
     .expect = "revert()",
     .claim = -1},
    {.name = "restored_unknown_behaviour_is_ignored",
     .b = {{ANY("maintenance"), DB}},
     .ops = {RESTORE("gone", 1, 1, CHOREO_ENOTFOUND), START("ready", "ready")},
     .expect = "",
     .claim = -1},
    {.name = "restored_event_behaviour_is_ignored",
     .b = {{.on = CONFIG_EV_BIT(CONFIG_EV_STATE), DB}},
     .ops = {RESTORE("b0", 1, 1, CHOREO_ENOTFOUND), START("ready", "ready")},
     .expect = "",
     .claim = -1},
    {.name = "restore_after_the_sync_changes_nothing",
     .b = {{ANY("maintenance"), DB}},
     .ops = {START("ready", "ready"), RESTORE("b0", 1, 1, CHOREO_EINVAL),
             STEP(1000)},
     .expect = "",
     .claim = -1},
};

/* ---- harness ---- */

struct harness {
  struct config cfg;
  struct peers p;
  struct engine e;
  uint64_t now, deadline;
  bool manual;
  bool prefix; /* more than one behaviour: name them in the log */
  char log[1024];
};

static void on_peer_event(void *arg, const struct peer_event *ev) {
  struct harness *h = arg;
  engine_peer_event(&h->e, ev, h->now);
}

static void behaviour_from_spec(struct config_behaviour *b,
                                const struct bspec *s, size_t i) {
  snprintf(b->name, sizeof(b->name), "b%zu", i);
  b->has_when = s->when;
  b->when.kind = s->kind;
  b->when.n = s->n;
  for (size_t k = 0; k < CONFIG_STATES_MAX && s->states[k] != NULL; k++) {
    snprintf(b->when.states[k], sizeof(b->when.states[k]), "%s", s->states[k]);
    b->when.nstates = k + 1;
  }
  b->on_mask = s->on;
  snprintf(b->peers.group, sizeof(b->peers.group), "%s",
           s->group != NULL ? s->group : "");
  snprintf(b->peers.node, sizeof(b->peers.node), "%s",
           s->node != NULL ? s->node : "");
  snprintf(b->state, sizeof(b->state), "%s", s->claim != NULL ? s->claim : "");
  b->settle_ms = s->settle;
  b->timeout_ms = 30000;
}

/* A configuration of the given behaviours, built by hand. */
static void config_build(struct config *cfg, const struct bspec *specs,
                         size_t n) {
  memset(cfg, 0, sizeof(*cfg));
  snprintf(cfg->name, sizeof(cfg->name), "%s", SELF);
  cfg->data = json_object();
  assert_non_null(cfg->data);
  cfg->behaviours = calloc(n != 0 ? n : 1, sizeof(*cfg->behaviours));
  assert_non_null(cfg->behaviours);
  cfg->nbehaviours = n;
  for (size_t i = 0; i < n; i++)
    behaviour_from_spec(&cfg->behaviours[i], &specs[i], i);
}

static void config_release(struct config *cfg) {
  free(cfg->behaviours);
  json_decref(cfg->data);
}

static void harness_start(struct harness *h, const struct bspec *specs,
                          size_t n) {
  memset(h, 0, sizeof(*h));
  config_build(&h->cfg, specs, n);
  h->prefix = n > 1;
  h->deadline = NOTHING;
  peers_init(&h->p, SELF, PEERS_MAX_DEFAULT, on_peer_event, h);
  assert_int_equal(engine_init(&h->e, &h->cfg, 0), 0);
}

static void harness_stop(struct harness *h) {
  engine_free(&h->e);
  peers_free(&h->p);
  config_release(&h->cfg);
}

static void log_action(struct harness *h, const struct engine_action *a) {
  size_t used = strlen(h->log);
  char who[16] = "";

  if (h->prefix)
    snprintf(who, sizeof(who), "b%zu/", a->behaviour);
  snprintf(h->log + used, sizeof(h->log) - used, "%s%s%s(%s)",
           used != 0 ? " " : "", who, engine_action_name(a->type),
           a->cause.peer);
}

/* Step at h->now; in automatic mode, end each action at once and step
 * again until nothing more is due. */
static void harness_step(struct harness *h) {
  struct engine_action acts[4];
  size_t n;

  do {
    n = engine_step(&h->e, &h->p, h->now, acts, ARRAY_SIZE(acts), &h->deadline);
    for (size_t i = 0; i < n; i++) {
      log_action(h, &acts[i]);
      if (!h->manual)
        engine_done(&h->e, acts[i].behaviour, h->now);
    }
  } while (n != 0 && (!h->manual || n == ARRAY_SIZE(acts)));
}

static void merge(struct harness *h, const struct op *op, bool left) {
  struct record r;

  assert_int_equal(record_init(&r), 0);
  snprintf(r.name, sizeof(r.name), "%s", op->peer);
  snprintf(r.addr, sizeof(r.addr), "tcp://127.0.0.1:7410");
  snprintf(r.state, sizeof(r.state), "%s", left ? "ready" : op->state);
  snprintf(r.groups[0], sizeof(r.groups[0]), "%s",
           op->group != NULL ? op->group : "db");
  r.ngroups = 1;
  r.inc = 1;
  r.ver = op->ver;
  r.left = left;
  r.since_ms = 1000;
  if (op->data != NULL)
    assert_int_equal(json_object_set_new(r.data, "v", json_string(op->data)),
                     0);
  (void)peers_merge_direct(&h->p, &r, h->now, 1000000 + (int64_t)h->now, NULL);
  record_free(&r);
}

static void apply(struct harness *h, const struct op *op) {
  if (op->kind != OP_CLAIM)
    h->now = op->t;
  switch (op->kind) {
  case OP_MERGE:
  case OP_LEAVE:
    merge(h, op, op->kind == OP_LEAVE);
    break;
  case OP_TICK:
    (void)peers_tick(&h->p, h->now, 1000000 + (int64_t)h->now, LOST_AFTER,
                     REAP_AFTER);
    break;
  case OP_SYNC:
    engine_set_synced(&h->e, h->now);
    break;
  case OP_DONE:
    engine_done(&h->e, (size_t)op->b, h->now);
    break;
  case OP_CLAIM:
    assert_int_equal(engine_claim(&h->e), op->b);
    return;
  case OP_RESTORE:
    assert_int_equal(engine_restore(&h->e, op->peer, op->ver != 0, op->b != 0),
                     (int)(int64_t)op->at);
    break;
  case OP_END:
  case OP_STEP:
  case OP_DEADLINE:
    break;
  }
  harness_step(h);
  if (op->kind == OP_DEADLINE)
    assert_int_equal(h->deadline, op->at);
}

static size_t count_specs(const struct bspec *b) {
  size_t n = 0;
  while (n < ROW_BEHAVIOURS && (b[n].when || b[n].on != 0))
    n++;
  return n;
}

static void run_row(void **state) {
  const struct row *row = *state;
  struct harness h;

  harness_start(&h, row->b, count_specs(row->b));
  h.manual = row->manual;
  for (size_t i = 0; i < ROW_OPS && row->ops[i].kind != OP_END; i++)
    apply(&h, &row->ops[i]);
  assert_string_equal(h.log, row->expect);
  assert_int_equal(engine_claim(&h.e), row->claim);
  harness_stop(&h);
}

/* ---- direct tests ---- */

static const struct bspec any_maint = {ANY("maintenance"), DB,
                                       .claim = "degraded"};
static const struct bspec on_state = {.on = CONFIG_EV_BIT(CONFIG_EV_STATE), DB};

static void set_now(struct harness *h, uint64_t t) {
  h->now = t;
}

static void put(struct harness *h, uint64_t t, const char *peer, const char *st,
                uint64_t ver) {
  struct op op = M(t, peer, st, ver);
  apply(h, &op);
}

static void engine_run_carries_the_cause_of_the_truth_change(void **state) {
  struct harness h;
  struct engine_action a;
  uint64_t deadline;

  (void)state;
  harness_start(&h, &any_maint, 1);
  h.manual = true;
  put(&h, 0, "db1", "ready", 1);
  engine_set_synced(&h.e, 0);
  set_now(&h, 10);
  {
    struct record r;
    assert_int_equal(record_init(&r), 0);
    snprintf(r.name, sizeof(r.name), "db1");
    snprintf(r.state, sizeof(r.state), "maintenance");
    snprintf(r.reason, sizeof(r.reason), "schema upgrade");
    snprintf(r.groups[0], sizeof(r.groups[0]), "db");
    r.ngroups = 1, r.inc = 1, r.ver = 2;
    (void)peers_merge_direct(&h.p, &r, 10, 1000, NULL);
    record_free(&r);
  }
  assert_int_equal(engine_step(&h.e, &h.p, 30, &a, 1, &deadline), 1);
  assert_int_equal(a.type, ENGINE_ACT_RUN);
  assert_int_equal(a.behaviour, 0);
  assert_string_equal(a.cause.peer, "db1");
  assert_string_equal(a.cause.state, "maintenance");
  assert_string_equal(a.cause.previous, "ready");
  assert_string_equal(a.cause.reason, "schema upgrade");
  harness_stop(&h);
}

static void engine_event_action_carries_its_peer_event(void **state) {
  struct harness h;
  struct engine_action a;
  uint64_t deadline;

  (void)state;
  harness_start(&h, &on_state, 1);
  h.manual = true;
  put(&h, 0, "db1", "ready", 1);
  engine_set_synced(&h.e, 0);
  set_now(&h, 10);
  put(&h, 10, "db1", "draining", 2); /* issued and logged by the harness */
  put(&h, 20, "db1", "maintenance", 3);
  engine_done(&h.e, 0, 30);
  assert_int_equal(engine_step(&h.e, &h.p, 30, &a, 1, &deadline), 1);
  assert_int_equal(a.type, ENGINE_ACT_STATE);
  assert_string_equal(a.cause.peer, "db1");
  assert_string_equal(a.cause.state, "maintenance");
  assert_string_equal(a.cause.previous, "draining");
  harness_stop(&h);
}

static void engine_queue_overflow_is_counted_in_dropped(void **state) {
  struct harness h;
  const uint64_t events = ENGINE_QUEUE_MAX + 10;
  size_t issued;

  (void)state;
  harness_start(&h, &on_state, 1);
  h.manual = true;
  put(&h, 0, "db1", "s0", 1);
  engine_set_synced(&h.e, 0);
  put(&h, 1, "db1", "s1", 2); /* issued: the behaviour is busy */
  for (uint64_t i = 0; i < events; i++) {
    char st[16];
    snprintf(st, sizeof(st), "s%llu", (unsigned long long)(i % 2 + 2));
    put(&h, 2 + i, "db1", st, 3 + i);
  }
  assert_int_equal(h.e.dropped, events - ENGINE_QUEUE_MAX);
  /* What was queued is issued, one at a time, nothing more. */
  for (issued = 0; issued < 2 * ENGINE_QUEUE_MAX; issued++) {
    struct engine_action a;
    uint64_t deadline;
    engine_done(&h.e, 0, 1000);
    if (engine_step(&h.e, &h.p, 1000, &a, 1, &deadline) == 0)
      break;
  }
  assert_int_equal(issued, ENGINE_QUEUE_MAX);
  harness_stop(&h);
}

static void engine_full_output_leaves_actions_due(void **state) {
  const struct bspec specs[3] = {any_maint, any_maint, any_maint};
  struct harness h;
  struct engine_action a[2];
  uint64_t deadline;

  (void)state;
  harness_start(&h, specs, 3);
  h.manual = true;
  put(&h, 0, "db1", "maintenance", 1);
  engine_set_synced(&h.e, 0);
  assert_int_equal(engine_step(&h.e, &h.p, 5, a, 2, &deadline), 2);
  assert_int_equal(a[0].behaviour, 0);
  assert_int_equal(a[1].behaviour, 1);
  assert_int_equal(deadline, 5); /* call again at once */
  assert_int_equal(engine_step(&h.e, &h.p, 6, a, 0, &deadline), 0);
  assert_int_equal(deadline, 6);
  assert_int_equal(engine_step(&h.e, &h.p, 7, a, 2, &deadline), 1);
  assert_int_equal(a[0].behaviour, 2);
  assert_int_equal(a[0].type, ENGINE_ACT_RUN);
  assert_int_equal(deadline, NOTHING);
  harness_stop(&h);
}

/* n behaviours cycling through three conditions, two of which hold: each
 * must get its own truth, however many share a condition. */
static void check_many_behaviours(size_t n) {
  const struct bspec kinds[3] = {
      {ANY("maintenance"), DB}, {ANY("draining"), DB}, {NONE("ready"), DB}};
  struct bspec *specs = calloc(n, sizeof(*specs));
  struct engine_action a[64];
  struct harness h;
  size_t runs = 0, k;
  uint64_t deadline;

  assert_non_null(specs);
  for (size_t i = 0; i < n; i++)
    specs[i] = kinds[i % 3];
  harness_start(&h, specs, n);
  put(&h, 0, "db1", "maintenance", 1);
  put(&h, 0, "db2", "busy", 1);
  engine_set_synced(&h.e, 0);
  while ((k = engine_step(&h.e, &h.p, 10, a, ARRAY_SIZE(a), &deadline)) > 0) {
    for (size_t i = 0; i < k; i++) {
      assert_int_equal(a[i].type, ENGINE_ACT_RUN);
      assert_int_not_equal(a[i].behaviour % 3, 1);
      runs++;
    }
  }
  assert_int_equal(runs, n - (n + 1) / 3);
  harness_stop(&h);
  free(specs);
}

static void engine_shared_conditions_each_get_their_truth(void **state) {
  (void)state;
  check_many_behaviours(30);
  check_many_behaviours(CONFIG_BEHAVIOURS_MAX);
  check_many_behaviours(CONFIG_BEHAVIOURS_MAX + 100);
}

/* ---- property: the counts agree with a scan of the table ---- */

#define PROP_PEERS 8
#define PROP_BEHAVIOURS 24
#define PROP_OPS 3000

static uint32_t prng(uint32_t *s) {
  /* xorshift32: deterministic, so a failure can be replayed. */
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

static const char *const prop_states[] = {"ready", "maintenance", "draining",
                                          "lost"};
static const char *const prop_groups[] = {"db", "web"};

static void prop_behaviour(struct config_behaviour *b, size_t i, uint32_t *s) {
  const enum config_cond_kind kinds[] = {COND_ANY, COND_ALL, COND_NONE,
                                         COND_FEWER_THAN};
  uint32_t r = prng(s);

  memset(b, 0, sizeof(*b));
  snprintf(b->name, sizeof(b->name), "p%zu", i);
  b->has_when = true;
  b->when.kind = kinds[r % 4];
  b->when.n = 1 + (r >> 4) % 4;
  b->when.nstates = 1 + (r >> 8) % 2;
  for (size_t k = 0; k < b->when.nstates; k++)
    snprintf(b->when.states[k], sizeof(b->when.states[k]), "%s",
             prop_states[(r >> (10 + 2 * k)) % ARRAY_SIZE(prop_states)]);
  if ((r >> 16) % 3 != 2)
    snprintf(b->peers.group, sizeof(b->peers.group), "%s",
             prop_groups[(r >> 18) % 2]);
  if ((r >> 20) % 5 == 0)
    snprintf(b->peers.node, sizeof(b->peers.node), "n%u", (r >> 23) % 3);
  b->timeout_ms = 30000;
}

struct prop_peer {
  uint64_t inc, ver;
};

/* Merge a random record of peer i: a new state and groups, sometimes a
 * leave, sometimes a new incarnation. */
static void prop_merge(struct harness *h, struct prop_peer *pp, size_t i,
                       uint32_t *s) {
  uint32_t r = prng(s);
  struct record rec;

  assert_int_equal(record_init(&rec), 0);
  snprintf(rec.name, sizeof(rec.name), "n%zu", i);
  snprintf(rec.addr, sizeof(rec.addr), "tcp://127.0.0.1:7410");
  /* "lost" is an observer's state; peers publish the others. */
  snprintf(rec.state, sizeof(rec.state), "%s", prop_states[r % 3]);
  for (size_t g = 0; g < ARRAY_SIZE(prop_groups); g++)
    if ((r >> (4 + g)) & 1)
      snprintf(rec.groups[rec.ngroups++], sizeof(rec.groups[0]), "%s",
               prop_groups[g]);
  if ((r >> 8) % 8 == 0)
    pp->inc++, pp->ver = 0;
  rec.inc = pp->inc;
  rec.ver = ++pp->ver;
  rec.left = (r >> 12) % 10 == 0;
  rec.since_ms = 1000;
  (void)peers_merge_direct(&h->p, &rec, h->now, 1000000 + (int64_t)h->now,
                           NULL);
  record_free(&rec);
}

/* Step until quiet, ending each action at once; applied[] follows the
 * actions. */
static void prop_step(struct harness *h, bool *applied) {
  struct engine_action a[8];
  uint64_t deadline;
  size_t n;

  while ((n = engine_step(&h->e, &h->p, h->now, a, ARRAY_SIZE(a), &deadline)) >
         0) {
    for (size_t i = 0; i < n; i++) {
      assert_true(a[i].type == ENGINE_ACT_RUN ||
                  a[i].type == ENGINE_ACT_REVERT);
      if (applied[a[i].behaviour] == (a[i].type == ENGINE_ACT_RUN))
        fail_msg("at %llu: behaviour %zu: %s while %s",
                 (unsigned long long)h->now, a[i].behaviour,
                 engine_action_name(a[i].type),
                 applied[a[i].behaviour] ? "applied" : "not applied");
      applied[a[i].behaviour] = a[i].type == ENGINE_ACT_RUN;
      engine_done(&h->e, a[i].behaviour, h->now);
    }
  }
}

static void prop_check(const struct harness *h, const bool *applied,
                       size_t op) {
  const struct config *cfg = h->e.cfg;

  for (size_t b = 0; b < cfg->nbehaviours; b++) {
    bool scan = engine_condition_holds(&cfg->behaviours[b], &h->p);
    if (applied[b] != scan)
      fail_msg("op %zu: behaviour %zu (kind %d, group '%s', node '%s') "
               "applied %d, scan %d",
               op, b, (int)cfg->behaviours[b].when.kind,
               cfg->behaviours[b].peers.group, cfg->behaviours[b].peers.node,
               applied[b], scan);
  }
}

/* A random configuration of n condition behaviours (or, with from, the
 * behaviours of from rotated by one: the same ones, reordered). */
static void prop_config(struct config *cfg, const struct config *from,
                        uint32_t *seed) {
  config_build(cfg, NULL, 0);
  free(cfg->behaviours);
  cfg->behaviours = calloc(PROP_BEHAVIOURS, sizeof(*cfg->behaviours));
  assert_non_null(cfg->behaviours);
  cfg->nbehaviours = PROP_BEHAVIOURS;
  for (size_t i = 0; i < PROP_BEHAVIOURS; i++) {
    if (from != NULL)
      cfg->behaviours[i] = from->behaviours[(i + 1) % PROP_BEHAVIOURS];
    else
      prop_behaviour(&cfg->behaviours[i], i, seed);
  }
}

/* Random merges, leaves, restarts, silences (lost) and reaps of a few
 * peers with changing groups, and reloads that reorder the behaviours:
 * after every step each condition's last action must match a full scan
 * of the table. */
static void engine_counts_agree_with_a_scan_of_the_table(void **state) {
  struct prop_peer pp[PROP_PEERS];
  bool applied[PROP_BEHAVIOURS] = {false}, rotated[PROP_BEHAVIOURS];
  struct config cfgs[2], *live = &cfgs[0], *next = &cfgs[1], *swap;
  struct harness h;
  uint32_t seed = 2463534242u;

  (void)state;
  memset(&h, 0, sizeof(h));
  for (size_t i = 0; i < PROP_PEERS; i++)
    pp[i].inc = 1, pp[i].ver = 0;
  prop_config(live, NULL, &seed);
  peers_init(&h.p, SELF, PEERS_MAX_DEFAULT, on_peer_event, &h);
  assert_int_equal(engine_init(&h.e, live, 0), 0);
  engine_set_synced(&h.e, 0);
  for (size_t op = 0; op < PROP_OPS; op++) {
    uint32_t r = prng(&seed);
    size_t peer = (r >> 8) % PROP_PEERS;
    h.now += r % 400;
    if (r % 7 != 0)
      prop_merge(&h, &pp[peer], peer, &seed);
    (void)peers_tick(&h.p, h.now, 1000000 + (int64_t)h.now, LOST_AFTER,
                     REAP_AFTER / 4);
    if (op % 500 == 499) {
      /* Kept by name, counted afresh at the next step. */
      prop_config(next, live, &seed);
      for (size_t i = 0; i < PROP_BEHAVIOURS; i++)
        rotated[i] = applied[(i + 1) % PROP_BEHAVIOURS];
      memcpy(applied, rotated, sizeof(applied));
      assert_int_equal(engine_reload(&h.e, next, h.now), 0);
      config_release(live);
      swap = live, live = next, next = swap;
    }
    prop_step(&h, applied);
    prop_check(&h, applied, op);
  }
  engine_free(&h.e);
  peers_free(&h.p);
  config_release(live);
}

static void engine_nothing_is_issued_before_sync(void **state) {
  struct harness h;
  struct engine_action a;
  uint64_t deadline = 0;

  (void)state;
  harness_start(&h, &any_maint, 1);
  put(&h, 0, "db1", "maintenance", 1);
  assert_int_equal(engine_step(&h.e, &h.p, 100000, &a, 1, &deadline), 0);
  assert_int_equal(deadline, NOTHING);
  assert_int_equal(engine_claim(&h.e), -1);
  harness_stop(&h);
}

/* Reload: a → kept as is, b → trigger changed, c → dropped, d → new. */
static void engine_reload_keeps_unchanged_and_starts_others_fresh(void **st) {
  const struct bspec old_specs[3] = {any_maint, any_maint, any_maint};
  struct bspec new_specs[3] = {any_maint, any_maint, any_maint};
  struct harness h;
  struct config cfg2;

  (void)st;
  harness_start(&h, old_specs, 3);
  snprintf(h.cfg.behaviours[0].name, CHOREO_NAME_MAX + 1, "a");
  snprintf(h.cfg.behaviours[1].name, CHOREO_NAME_MAX + 1, "b");
  snprintf(h.cfg.behaviours[2].name, CHOREO_NAME_MAX + 1, "c");
  put(&h, 0, "db1", "maintenance", 1);
  put(&h, 0, "db2", "draining", 1);
  engine_set_synced(&h.e, 0);
  set_now(&h, 0);
  harness_step(&h);
  assert_string_equal(h.log, "b0/run() b1/run() b2/run()");

  new_specs[0].states[0] = "draining"; /* b: condition changed */
  config_build(&cfg2, new_specs, 3);
  snprintf(cfg2.behaviours[0].name, CHOREO_NAME_MAX + 1, "b");
  snprintf(cfg2.behaviours[1].name, CHOREO_NAME_MAX + 1, "d");
  snprintf(cfg2.behaviours[2].name, CHOREO_NAME_MAX + 1, "a");
  assert_int_equal(engine_reload(&h.e, &cfg2, 50), 0);
  assert_int_equal(engine_index(&h.e, "a"), 2);
  assert_int_equal(engine_index(&h.e, "c"), -1);
  assert_int_equal(engine_claim(&h.e), 2); /* a is still applied */
  h.log[0] = '\0';
  set_now(&h, 60);
  harness_step(&h);
  assert_string_equal(h.log, "b0/run() b1/run()"); /* b, d: fresh */

  /* The old configuration can go; the kept state follows the new one. */
  config_release(&h.cfg);
  h.cfg = cfg2;
  h.log[0] = '\0';
  put(&h, 100, "db1", "ready", 2);
  assert_string_equal(h.log, "b1/revert(db1) b2/revert(db1)");
  harness_stop(&h);
}

static void engine_reload_keeps_an_action_in_flight(void **state) {
  struct bspec specs[2] = {on_state, any_maint};
  struct harness h;
  struct config cfg2;
  struct engine_action a;
  uint64_t deadline;

  (void)state;
  harness_start(&h, specs, 2);
  h.manual = true;
  put(&h, 0, "db1", "ready", 1);
  engine_set_synced(&h.e, 0);
  put(&h, 10, "db1", "a", 2);
  put(&h, 20, "db1", "b", 3); /* queued behind the busy first */
  assert_string_equal(h.log, "b0/state(db1)");

  /* Same behaviours, swapped: b0 is now at index 1, still busy. */
  specs[0] = any_maint, specs[1] = on_state;
  config_build(&cfg2, specs, 2);
  snprintf(cfg2.behaviours[0].name, CHOREO_NAME_MAX + 1, "b1");
  snprintf(cfg2.behaviours[1].name, CHOREO_NAME_MAX + 1, "b0");
  assert_int_equal(engine_reload(&h.e, &cfg2, 30), 0);
  config_release(&h.cfg);
  h.cfg = cfg2;
  assert_int_equal(engine_step(&h.e, &h.p, 40, &a, 1, &deadline), 0);
  engine_done(&h.e, (size_t)engine_index(&h.e, "b0"), 50);
  assert_int_equal(engine_step(&h.e, &h.p, 50, &a, 1, &deadline), 1);
  assert_int_equal(a.behaviour, 1);
  assert_int_equal(a.type, ENGINE_ACT_STATE);
  assert_string_equal(a.cause.state, "b");
  harness_stop(&h);
}

static void engine_watches_only_heard_selected_present_others(void **state) {
  struct config cfg;
  struct peers p;
  struct peer peer;
  struct record rec;

  (void)state;
  config_build(&cfg, &any_maint, 1);
  peers_init(&p, SELF, 16, NULL, NULL);
  memset(&peer, 0, sizeof(peer));
  assert_int_equal(record_init(&rec), 0);
  peer.rec = &rec;
  snprintf(rec.name, sizeof(rec.name), "db1");
  snprintf(rec.groups[0], sizeof(rec.groups[0]), "db");
  rec.ngroups = 1;
  peer.heard = true;
  assert_true(engine_watches(&cfg.behaviours[0], &p, &peer));
  peer.status = PEER_LOST;
  assert_true(engine_watches(&cfg.behaviours[0], &p, &peer));
  peer.status = PEER_LEFT;
  assert_false(engine_watches(&cfg.behaviours[0], &p, &peer));
  peer.status = PEER_ALIVE;
  peer.heard = false;
  assert_false(engine_watches(&cfg.behaviours[0], &p, &peer));
  peer.heard = true;
  snprintf(rec.name, sizeof(rec.name), SELF);
  assert_false(engine_watches(&cfg.behaviours[0], &p, &peer));
  snprintf(rec.name, sizeof(rec.name), "db1");
  snprintf(rec.groups[0], sizeof(rec.groups[0]), "web");
  assert_false(engine_watches(&cfg.behaviours[0], &p, &peer));
  record_free(&rec);
  peers_free(&p);
  config_release(&cfg);
}

static void engine_state_in_matches_one_of_the_states(void **state) {
  const struct bspec s = {ANY("maintenance", "draining")};
  struct config_behaviour b;

  (void)state;
  memset(&b, 0, sizeof(b));
  behaviour_from_spec(&b, &s, 0);
  assert_true(engine_state_in(&b.when, "maintenance"));
  assert_true(engine_state_in(&b.when, "draining"));
  assert_false(engine_state_in(&b.when, "ready"));
  assert_false(engine_state_in(&b.when, ""));
}

static void engine_action_names_match_the_spec(void **state) {
  (void)state;
  assert_string_equal(engine_action_name(ENGINE_ACT_RUN), "run");
  assert_string_equal(engine_action_name(ENGINE_ACT_REVERT), "revert");
  assert_string_equal(engine_action_name(ENGINE_ACT_CHANGE), "change");
  assert_string_equal(engine_action_name(ENGINE_ACT_JOINED), "joined");
  assert_string_equal(engine_action_name(ENGINE_ACT_LEFT), "left");
  assert_string_equal(engine_action_name(ENGINE_ACT_LOST), "lost");
  assert_string_equal(engine_action_name(ENGINE_ACT_STATE), "state");
  assert_string_equal(engine_action_name(ENGINE_ACT_DATA), "data");
}

static void engine_empty_configuration_does_nothing(void **state) {
  struct harness h;
  struct engine_action a;
  uint64_t deadline;

  (void)state;
  harness_start(&h, NULL, 0);
  put(&h, 0, "db1", "maintenance", 1);
  engine_set_synced(&h.e, 0);
  assert_int_equal(engine_step(&h.e, &h.p, 10, &a, 1, &deadline), 0);
  assert_int_equal(deadline, NOTHING);
  assert_int_equal(engine_claim(&h.e), -1);
  assert_int_equal(engine_index(&h.e, "b0"), -1);
  harness_stop(&h);
}

/* ---- superseded actions ---- */

/* A RUN in flight that has not started (its script can't be started yet)
 * and whose condition went back: withdrawn, it leaves nothing to undo. */
static void engine_withdrawn_run_leaves_nothing_to_revert(void **state) {
  struct harness h;
  struct engine_action a;
  uint64_t deadline;

  (void)state;
  harness_start(&h, &any_maint, 1);
  h.manual = true;
  put(&h, 0, "db1", "ready", 1);
  engine_set_synced(&h.e, 0);
  put(&h, 10, "db1", "maintenance", 2);
  assert_string_equal(h.log, "run(db1)");
  assert_false(engine_superseded(&h.e, 0)); /* still what the truth asks */
  put(&h, 20, "db1", "ready", 3);
  assert_true(engine_superseded(&h.e, 0));
  engine_withdrawn(&h.e, 0);
  engine_done(&h.e, 0, 30);
  assert_int_equal(engine_step(&h.e, &h.p, 30, &a, 1, &deadline), 0);
  assert_int_equal(engine_claim(&h.e), -1);
  /* The condition holds again: a RUN, as if the first was never issued. */
  put(&h, 40, "db1", "maintenance", 4);
  assert_string_equal(h.log, "run(db1) run(db1)");
  harness_stop(&h);
}

static void engine_done_without_withdrawal_reverts_as_before(void **state) {
  struct harness h;

  (void)state;
  harness_start(&h, &any_maint, 1);
  h.manual = true;
  put(&h, 0, "db1", "ready", 1);
  engine_set_synced(&h.e, 0);
  put(&h, 10, "db1", "maintenance", 2);
  put(&h, 20, "db1", "ready", 3);
  engine_done(&h.e, 0, 30);
  put(&h, 30, "db1", "ready", 3); /* a duplicate: only steps */
  assert_string_equal(h.log, "run(db1) revert(db1)");
  harness_stop(&h);
}

static void engine_event_actions_are_never_superseded(void **state) {
  struct harness h;

  (void)state;
  harness_start(&h, &on_state, 1);
  h.manual = true;
  put(&h, 0, "db1", "ready", 1);
  engine_set_synced(&h.e, 0);
  put(&h, 10, "db1", "maintenance", 2);
  put(&h, 20, "db1", "ready", 3);
  assert_string_equal(h.log, "state(db1)");
  assert_false(engine_superseded(&h.e, 0));
  assert_false(engine_superseded(&h.e, 7)); /* no such behaviour */
  engine_withdrawn(&h.e, 7);                /* ignored */
  harness_stop(&h);
}

int main(void) {
  const size_t nrows = ARRAY_SIZE(rows);
  struct CMUnitTest *row_tests = calloc(nrows, sizeof(*row_tests));
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(engine_run_carries_the_cause_of_the_truth_change),
      cmocka_unit_test(engine_event_action_carries_its_peer_event),
      cmocka_unit_test(engine_withdrawn_run_leaves_nothing_to_revert),
      cmocka_unit_test(engine_done_without_withdrawal_reverts_as_before),
      cmocka_unit_test(engine_event_actions_are_never_superseded),
      cmocka_unit_test(engine_queue_overflow_is_counted_in_dropped),
      cmocka_unit_test(engine_full_output_leaves_actions_due),
      cmocka_unit_test(engine_shared_conditions_each_get_their_truth),
      cmocka_unit_test(engine_counts_agree_with_a_scan_of_the_table),
      cmocka_unit_test(engine_nothing_is_issued_before_sync),
      cmocka_unit_test(engine_reload_keeps_unchanged_and_starts_others_fresh),
      cmocka_unit_test(engine_reload_keeps_an_action_in_flight),
      cmocka_unit_test(engine_watches_only_heard_selected_present_others),
      cmocka_unit_test(engine_state_in_matches_one_of_the_states),
      cmocka_unit_test(engine_action_names_match_the_spec),
      cmocka_unit_test(engine_empty_configuration_does_nothing),
  };
  int failed;

  if (row_tests == NULL)
    return 1;
  for (size_t i = 0; i < nrows; i++) {
    row_tests[i].name = rows[i].name;
    row_tests[i].test_func = run_row;
    row_tests[i].initial_state = (void *)&rows[i];
  }
  /* One cmocka test per row, named after it. */
  failed =
      _cmocka_run_group_tests("engine_rules", row_tests, nrows, NULL, NULL);
  failed += cmocka_run_group_tests_name("engine", tests, NULL, NULL);
  free(row_tests);
  return failed != 0;
}
