/*
 * test_policy.c — unit tests of the daemon's pure decisions
 * (agent/policy.c). Every rule is a table: one row per case, with the
 * inputs as plain values and the expected answer.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "policy.h"
#include "util.h"

/* ---- own state ---- */

struct own_row {
  const char *name;
  struct policy_claims in;
  enum policy_own won;
  const char *state, *reason;
};

static const struct own_row own_rows[] = {
    {"declared_beats_everything",
     {"maintenance", "disk swap", "degraded", "disk", "draining", "drain"},
     POLICY_OWN_DECLARED,
     "maintenance",
     "disk swap"},
    {"declared_without_reason_shows_none",
     {"standby", "", "degraded", "disk", NULL, NULL},
     POLICY_OWN_DECLARED,
     "standby",
     ""},
    {"failing_check_beats_behaviour_when_declared_ready",
     {"ready", "booted", "degraded", "disk", "draining", "drain"},
     POLICY_OWN_CHECK,
     "degraded",
     "check disk failing"},
    {"behaviour_claim_when_ready_and_no_check_fails",
     {"ready", "booted", NULL, NULL, "draining", "drain"},
     POLICY_OWN_BEHAVIOUR,
     "draining",
     "behaviour drain"},
    {"ready_keeps_declared_reason",
     {"ready", "booted", NULL, NULL, NULL, NULL},
     POLICY_OWN_READY,
     "ready",
     "booted"},
    {"ready_with_no_reason",
     {"ready", "", NULL, NULL, NULL, NULL},
     POLICY_OWN_READY,
     "ready",
     ""},
};

static void own_state_precedence(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(own_rows); i++) {
    const struct own_row *r = &own_rows[i];
    char st[CHOREO_STATE_MAX + 1], reason[CHOREO_REASON_MAX + 1];
    enum policy_own won = policy_own_state(&r->in, st, reason);
    print_message("row %s\n", r->name);
    assert_int_equal(won, r->won);
    assert_string_equal(st, r->state);
    assert_string_equal(reason, r->reason);
  }
}

static void own_state_reason_truncated_to_limit(void **state) {
  char longname[CHOREO_REASON_MAX + 1];
  char st[CHOREO_STATE_MAX + 1], reason[CHOREO_REASON_MAX + 1];
  struct policy_claims c = {"ready", "", "degraded", longname, NULL, NULL};
  memset(longname, 'c', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  assert_int_equal(policy_own_state(&c, st, reason), POLICY_OWN_CHECK);
  assert_int_equal(strlen(reason), CHOREO_REASON_MAX);
  assert_memory_equal(reason, "check ccc", 9);
}

/* ---- admission ---- */

#define NOW_MS INT64_C(1700000000000)
#define NOW_S UINT64_C(1700000000)

struct admit_row {
  const char *name;
  bool keyed;
  const char *cluster, *from;
  uint64_t time, inc;
  bool proved, echoes_us; /* freshness proved before; echoed our nonce */
  bool fresh, via_relay, from_leaf, we_relay;
  enum policy_admit expect;
};

#define H_MS INT64_C(3600000)

static const struct admit_row admit_rows[] = {
    /* name, keyed, cluster, from, time, inc, proved, echoes_us, fresh,
     * via_relay, from_leaf, we_relay, expect */
    {"plain_message_admitted", false, "prod", "b", 0, NOW_S, false, false, true,
     false, false, false, POLICY_ADMIT},
    {"other_cluster_dropped", false, "test", "b", NOW_MS, NOW_S, false, false,
     true, false, false, false, POLICY_DROP_CLUSTER},
    {"own_name_dropped", false, "prod", "a", NOW_MS, NOW_S, false, false, true,
     false, false, false, POLICY_DROP_SELF_NAME},
    {"cluster_checked_before_name", false, "test", "a", NOW_MS, NOW_S, false,
     false, true, false, false, false, POLICY_DROP_CLUSTER},
    {"other_cluster_keyed_dropped_before_freshness", true, "test", "b", NOW_MS,
     NOW_S, false, false, true, false, false, false, POLICY_DROP_CLUSTER},
    {"no_time_without_ring_admitted", false, "prod", "b", 0, NOW_S, false,
     false, true, false, false, false, POLICY_ADMIT},
    {"old_time_without_ring_admitted", false, "prod", "b", 1, NOW_S, false,
     false, true, false, false, false, POLICY_ADMIT},
    /* A receiver that has just restarted proved nobody: a capture can't
     * echo the nonce it drew at this start, whatever its time and inc. */
    {"replay_after_restart_is_stale", true, "prod", "b", NOW_MS - 120000,
     NOW_S - 100, false, false, true, false, false, false, POLICY_DROP_STALE},
    {"replay_after_restart_with_current_time_is_stale", true, "prod", "b",
     NOW_MS, NOW_S, false, false, true, false, false, false, POLICY_DROP_STALE},
    {"replay_after_restart_with_newer_inc_is_stale", true, "prod", "b", NOW_MS,
     NOW_S + 60, false, false, true, false, false, false, POLICY_DROP_STALE},
    {"unproved_without_time_is_stale", true, "prod", "b", 0, NOW_S, false,
     false, true, false, false, false, POLICY_DROP_STALE},
    {"echo_of_our_nonce_admitted", true, "prod", "b", NOW_MS, NOW_S, false,
     true, true, false, false, false, POLICY_ADMIT},
    {"echo_of_our_nonce_with_old_seq_is_replay", true, "prod", "b", NOW_MS,
     NOW_S, true, true, false, false, false, false, POLICY_DROP_REPLAY},
    {"proved_sender_newer_seq_admitted", true, "prod", "b", NOW_MS, NOW_S, true,
     false, true, false, false, false, POLICY_ADMIT},
    {"proved_sender_capture_replayed_is_replay", true, "prod", "b", NOW_MS,
     NOW_S, true, false, false, false, false, false, POLICY_DROP_REPLAY},
    {"proved_sender_without_time_admitted", true, "prod", "b", 0, NOW_S, true,
     false, true, false, false, false, POLICY_ADMIT},
    /* Skew: the sender's clock is never compared with ours. */
    {"skew_plus_90s_admitted", true, "prod", "b", NOW_MS + 90000, NOW_S + 90,
     true, false, true, false, false, false, POLICY_ADMIT},
    {"skew_minus_90s_admitted", true, "prod", "b", NOW_MS - 90000, NOW_S - 90,
     true, false, true, false, false, false, POLICY_ADMIT},
    {"skew_plus_1h_admitted", true, "prod", "b", NOW_MS + H_MS, NOW_S + 3600,
     true, false, true, false, false, false, POLICY_ADMIT},
    {"skew_minus_1h_admitted", true, "prod", "b", NOW_MS - H_MS, NOW_S - 3600,
     true, false, true, false, false, false, POLICY_ADMIT},
    {"skew_plus_1h_unproved_echoing_us_admitted", true, "prod", "b",
     NOW_MS + H_MS, NOW_S + 3600, false, true, true, false, false, false,
     POLICY_ADMIT},
    {"skew_plus_1h_capture_is_replay", true, "prod", "b", NOW_MS + H_MS,
     NOW_S + 3600, true, false, false, false, false, false, POLICY_DROP_REPLAY},
    {"skew_plus_90s_unproved_is_stale", true, "prod", "b", NOW_MS + 90000,
     NOW_S + 90, false, false, true, false, false, false, POLICY_DROP_STALE},
    {"incarnation_a_day_ahead_admitted", false, "prod", "b", 0, NOW_S + 86400,
     false, false, true, false, false, false, POLICY_ADMIT},
    {"incarnation_from_the_future_dropped", false, "prod", "b", 0,
     NOW_S + 86401, false, false, true, false, false, false,
     POLICY_DROP_FUTURE},
    {"old_sequence_is_replay", false, "prod", "b", 0, NOW_S, false, false,
     false, false, false, false, POLICY_DROP_REPLAY},
    {"old_sequence_via_relay_is_duplicate", false, "prod", "b", 0, NOW_S, false,
     false, false, true, false, false, POLICY_DROP_RELAY_DUPLICATE},
    {"old_leaf_sequence_at_relay_is_duplicate", false, "prod", "b", 0, NOW_S,
     false, false, false, false, true, true, POLICY_DROP_RELAY_DUPLICATE},
    {"old_leaf_sequence_at_member_is_replay", false, "prod", "b", 0, NOW_S,
     false, false, false, false, true, false, POLICY_DROP_REPLAY},
    {"old_mesh_sequence_at_relay_is_replay", false, "prod", "b", 0, NOW_S,
     false, false, false, false, false, true, POLICY_DROP_REPLAY},
    {"stale_checked_before_sequence", true, "prod", "b", 0, NOW_S, false, false,
     false, true, false, false, POLICY_DROP_STALE},
};

static void admission(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(admit_rows); i++) {
    const struct admit_row *r = &admit_rows[i];
    struct policy_admit_in in = {
        .cluster = "prod",
        .name = "a",
        .keyed = r->keyed,
        .now_ms = NOW_MS,
        .msg_cluster = r->cluster,
        .msg_from = r->from,
        .msg_time = r->time,
        .msg_inc = r->inc,
        .proved = r->proved,
        .echoes_us = r->echoes_us,
        .msg_nonce = true,
    };
    enum policy_admit got = policy_admit(&in);
    if (got == POLICY_ADMIT)
      got = policy_admit_seq(r->fresh, r->via_relay, r->from_leaf, r->we_relay);
    print_message("row %s\n", r->name);
    assert_int_equal(got, r->expect);
  }
}

/* A sender of an earlier version sends no nonce: judged by its time, as
 * that version did, until it is upgraded. */
static void admission_of_an_earlier_version(void **state) {
  static const struct {
    const char *name;
    bool keyed, proved;
    uint64_t time;
    enum policy_admit expect;
  } rows[] = {
      {"unproved_sent_now_admitted", true, false, NOW_MS, POLICY_ADMIT},
      {"unproved_60s_old_admitted", true, false, NOW_MS - 60000, POLICY_ADMIT},
      {"unproved_60s_ahead_admitted", true, false, NOW_MS + 60000,
       POLICY_ADMIT},
      {"unproved_older_stale", true, false, NOW_MS - 60001, POLICY_DROP_STALE},
      {"unproved_further_ahead_stale", true, false, NOW_MS + 60001,
       POLICY_DROP_STALE},
      {"unproved_without_time_stale", true, false, 0, POLICY_DROP_STALE},
      {"proved_skewed_an_hour_admitted", true, true, NOW_MS + H_MS,
       POLICY_ADMIT},
      {"without_ring_any_time_admitted", false, false, 1, POLICY_ADMIT},
  };
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    struct policy_admit_in in = {
        .cluster = "prod",
        .name = "a",
        .keyed = rows[i].keyed,
        .now_ms = NOW_MS,
        .msg_cluster = "prod",
        .msg_from = "b",
        .msg_time = rows[i].time,
        .msg_inc = NOW_S,
        .proved = rows[i].proved,
        .msg_nonce = false,
    };
    print_message("row %s\n", rows[i].name);
    assert_int_equal(policy_admit(&in), rows[i].expect);
  }
}

static void echo_note_table(void **state) {
  static const struct {
    const char *name;
    struct policy_echo_in in;
    enum policy_echo expect;
  } rows[] = {
      /* known, active, nonce, inc, seq, msg_nonce, msg_inc, msg_seq,
       * msg_proving */
      {"no_nonce_keeps",
       {false, false, 0, 0, 0, 0, 5, 1, false},
       POLICY_ECHO_KEEP},
      {"new_sender_arms",
       {false, false, 0, 0, 0, 7, 5, 1, false},
       POLICY_ECHO_ARM},
      {"restarted_sender_new_nonce_arms",
       {true, true, 7, 5, 9, 8, 6, 1, false},
       POLICY_ECHO_ARM},
      {"same_nonce_newer_seq_advances",
       {true, true, 7, 5, 9, 7, 5, 10, false},
       POLICY_ECHO_ADVANCE},
      {"same_nonce_expired_not_asking_advances",
       {true, false, 7, 5, 9, 7, 5, 10, false},
       POLICY_ECHO_ADVANCE},
      {"same_nonce_expired_asking_arms",
       {true, false, 7, 5, 9, 7, 5, 10, true},
       POLICY_ECHO_ARM},
      {"same_nonce_active_asking_advances",
       {true, true, 7, 5, 9, 7, 5, 10, true},
       POLICY_ECHO_ADVANCE},
      {"replayed_capture_old_nonce_keeps",
       {true, true, 8, 6, 3, 7, 5, 9, true},
       POLICY_ECHO_KEEP},
      {"duplicate_keeps",
       {true, true, 7, 5, 9, 7, 5, 9, true},
       POLICY_ECHO_KEEP},
      {"old_seq_same_inc_other_nonce_keeps",
       {true, false, 7, 5, 9, 8, 5, 8, true},
       POLICY_ECHO_KEEP},
  };
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    print_message("row %s\n", rows[i].name);
    assert_int_equal(policy_echo_note(&rows[i].in), rows[i].expect);
  }
}

static void clock_offset_is_sender_time_minus_ours(void **state) {
  assert_int_equal(policy_clock_offset(NOW_MS + 90000, NOW_MS), 90000);
  assert_int_equal(policy_clock_offset(NOW_MS - 90000, NOW_MS), -90000);
  assert_int_equal(policy_clock_offset(NOW_MS + H_MS, NOW_MS), H_MS);
  assert_int_equal(policy_clock_offset(0, NOW_MS), 0); /* no time: unknown */
  assert_int_equal(policy_clock_offset(UINT64_MAX, NOW_MS), 0);
}

struct skew_row {
  const char *name;
  int64_t offset;
  uint64_t now;
  bool warned;
  uint64_t warned_at;
  bool expect;
};

#define T0 UINT64_C(5000000)
#define TEN_MIN UINT64_C(600000)

static void skew_warning_rate_limited_per_peer(void **state) {
  static const struct skew_row rows[] = {
      {"in_sync_no_warning", 0, T0, false, 0, false},
      {"a_minute_off_no_warning", 60000, T0, false, 0, false},
      {"a_minute_behind_no_warning", -60000, T0, false, 0, false},
      {"plus_90s_warned", 90000, T0, false, 0, true},
      {"minus_90s_warned", -90000, T0, false, 0, true},
      {"plus_1h_warned", H_MS, T0, false, 0, true},
      {"again_within_10_min_not_warned", 90000, T0 + TEN_MIN - 1, true, T0,
       false},
      {"again_after_10_min_warned", 90000, T0 + TEN_MIN, true, T0, true},
      {"warned_at_zero_still_rate_limited", 90000, 1000, true, 0, false},
  };
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    print_message("row %s\n", rows[i].name);
    assert_int_equal(policy_skew_warn(rows[i].offset, rows[i].now,
                                      rows[i].warned, rows[i].warned_at),
                     rows[i].expect);
  }
}

/* ---- reading behind ---- */

/* One message of a sender: sent at its unix ms, read at our monotonic
 * ms, and the lag policy_lag_note() gives it. */
struct lag_step {
  uint64_t sent, read, lag;
};

struct lag_row {
  const char *name;
  struct lag_step steps[6];
  size_t n;
};

#define WALL0 1790000000000ULL /* the sender's clock, unix ms */
#define MONO0 5000ULL          /* ours, monotonic ms */

static const struct lag_row lag_rows[] = {
    {"first_message_is_the_base", {{WALL0, MONO0, 0}}, 1},
    {"read_as_sent_never_late",
     {{WALL0, MONO0, 0},
      {WALL0 + 1000, MONO0 + 1000, 0},
      {WALL0 + 2000, MONO0 + 2000, 0}},
     3},
    {"a_skewed_clock_is_not_lag",
     {{WALL0 - 90000, MONO0, 0}, {WALL0 - 89000, MONO0 + 1000, 0}},
     2},
    {"a_growing_backlog_is",
     {{WALL0, MONO0, 0},
      {WALL0 + 1000, MONO0 + 3000, 1970},
      {WALL0 + 2000, MONO0 + 10000, 7900}},
     3},
    {"catching_up_lowers_it",
     {{WALL0, MONO0, 0},
      {WALL0 + 1000, MONO0 + 60000, 58400},
      {WALL0 + 60000, MONO0 + 60100, 0}},
     3},
    {"transit_jitter_is_not_lag",
     {{WALL0, MONO0 + 5, 0},
      {WALL0 + 1000, MONO0 + 1001, 0},
      {WALL0 + 2000, MONO0 + 2009, 0}},
     3},
    /* Its clock stepped 2 s back: late by 2 s at first, by 10 ms less
     * each second since the base (POLICY_LAG_DECAY_PER_S), none after
     * 200 s. A backlog is seen less the same decay. */
    {"a_clock_stepped_back_stops_counting",
     {{WALL0, MONO0, 0},
      {WALL0 - 1000, MONO0 + 1000, 1990},
      {WALL0 + 99000, MONO0 + 101000, 990},
      {WALL0 + 199000, MONO0 + 201000, 0},
      {WALL0 + 200000, MONO0 + 202000, 0}},
     5},
    {"no_time_counts_nothing",
     {{WALL0, MONO0, 0},
      {0, MONO0 + 50000, 0},
      {WALL0 + 1000, MONO0 + 1000, 0}},
     3},
    {"a_time_out_of_range_counts_nothing",
     {{UINT64_MAX, MONO0, 0},
      {WALL0, MONO0, 0},
      {UINT64_MAX / 2 + 1, MONO0 + 1000, 0},
      {WALL0 + 1000, MONO0 + 6000, 4940}},
     4},
};

static void lag_against_the_freshest_message(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(lag_rows); i++) {
    const struct lag_row *r = &lag_rows[i];
    struct peer_lag l = {0};
    print_message("row %s\n", r->name);
    for (size_t k = 0; k < r->n; k++)
      assert_int_equal(policy_lag_note(&l, r->steps[k].sent, r->steps[k].read),
                       r->steps[k].lag);
  }
}

static void behind_when_most_messages_are_late(void **state) {
  static const struct {
    const char *name;
    uint64_t msgs, late, read, foreign;
    bool full, drained, behind;
  } rows[] = {
      /* Some turn read a whole batch, and some other read the inbox
       * empty: behind when most messages were late. */
      {"nothing_read_is_not_behind", 0, 0, 0, 0, true, true, false},
      {"one_late_of_one", 1, 1, 1, 0, true, true, true},
      {"one_late_of_two_is_not_most", 2, 1, 2, 0, true, true, false},
      {"two_late_of_three", 3, 2, 3, 0, true, true, true},
      {"half_is_not_most", 10, 5, 10, 0, true, true, false},
      {"six_of_ten", 10, 6, 10, 0, true, true, true},
      {"none_late", 500, 0, 500, 0, true, true, false},
      {"more_late_than_read_is_nonsense", 5, 6, 6, 0, true, true, false},
      /* Late, but no turn read a whole batch: the network's delay (a
       * link that got slower), not a backlog here. */
      {"all_late_but_never_full", 500, 500, 500, 0, false, true, false},
      {"six_of_ten_never_full", 10, 6, 10, 0, false, true, false},
      /* Every turn read a whole batch: the backlog never cleared in a
       * heartbeat, late by the senders' measure or not (a starting
       * cluster, each sender first heard while it waited). */
      {"never_drained_none_late", 500, 0, 500, 0, true, false, true},
      {"never_drained_only_batches_read", 0, 0, 800, 0, true, false, true},
      {"never_drained_half_late", 10, 5, 10, 0, true, false, true},
      /* ... unless most of it was what no key opens: a flood by the
       * network without the key is no backlog of the cluster's. */
      {"never_drained_by_a_flood", 100, 0, 30000, 29900, true, false, false},
      {"never_drained_half_foreign", 100, 0, 200, 100, true, false, false},
      {"never_drained_some_foreign", 100, 0, 200, 99, true, false, true},
      /* A flood that makes the cluster's own messages late: behind. */
      {"flood_and_most_late", 100, 60, 30000, 29900, true, false, true},
      {"foreign_beyond_read_is_nonsense", 100, 0, 10, 20, true, false, false},
      /* Neither: nothing came, or too little to fill a turn. */
      {"idle", 0, 0, 0, 0, false, false, false},
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    struct policy_behind_in in = {.msgs = rows[i].msgs,
                                  .late = rows[i].late,
                                  .read = rows[i].read,
                                  .foreign = rows[i].foreign,
                                  .full = rows[i].full,
                                  .drained = rows[i].drained};
    print_message("row %s\n", rows[i].name);
    assert_int_equal(policy_behind(&in), rows[i].behind);
  }
  assert_false(policy_lag_late(1000, 1000));
  assert_true(policy_lag_late(1001, 1000));
  assert_false(policy_lag_late(5000, 0));
}

/* ---- checks ---- */

struct check_row {
  const char *name;
  unsigned rise, fall;
  const char *results; /* 'p' pass, 'f' fail */
  const char *changes; /* per result: '.' same, 'F' fails, 'P' passes */
};

static const struct check_row check_rows[] = {
    {"one_failure_with_fall_one_fails", 1, 1, "f", "F"},
    {"fails_after_fall_in_a_row", 2, 3, "fffpp", "..F.P"},
    {"a_pass_resets_the_failures", 1, 3, "ffpfff", ".....F"},
    {"passes_after_rise_in_a_row", 3, 1, "fppfppp", "F.....P"},
    {"passing_check_stays_passing", 2, 2, "pppp", "...."},
    {"failing_check_stays_failing", 2, 1, "ffff", "F..."},
    {"flapping_never_rises", 2, 1, "fpfpfp", "F....."},
};

static void check_rise_and_fall(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(check_rows); i++) {
    const struct check_row *r = &check_rows[i];
    struct policy_check s = {0};
    char got[16] = {0};
    for (size_t k = 0; r->results[k] != '\0'; k++) {
      enum policy_check_change c =
          policy_check_result(&s, r->results[k] == 'p', r->rise, r->fall);
      got[k] = c == POLICY_CHECK_FAILS    ? 'F'
               : c == POLICY_CHECK_PASSES ? 'P'
                                          : '.';
      if (c == POLICY_CHECK_FAILS)
        assert_true(s.failing);
      else if (c == POLICY_CHECK_PASSES)
        assert_false(s.failing);
    }
    print_message("row %s\n", r->name);
    assert_string_equal(got, r->changes);
  }
}

static void check_counts_consecutive_results(void **state) {
  struct policy_check s = {0};
  policy_check_result(&s, false, 2, 5);
  policy_check_result(&s, false, 2, 5);
  assert_int_equal(s.fails, 2);
  assert_int_equal(s.passes, 0);
  policy_check_result(&s, true, 2, 5);
  assert_int_equal(s.fails, 0);
  assert_int_equal(s.passes, 1);
  assert_false(s.failing);
}

/* ---- relay credit ---- */

struct hold_row {
  uint64_t heartbeat_ms, hold_ms;
};

static const struct hold_row hold_rows[] = {
    {0, 10},     {39, 10},    {40, 10},    {44, 11},
    {1000, 250}, {1003, 250}, {5000, 250},
};

static void relay_hold_is_a_quarter_heartbeat_within_bounds(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(hold_rows); i++)
    assert_int_equal(policy_relay_hold_ms(hold_rows[i].heartbeat_ms),
                     hold_rows[i].hold_ms);
}

struct interval_row {
  size_t npeers;
  uint64_t heartbeat_ms, interval_ms;
};

/* One batch per ms per four members, never slower than the repeats. */
static const struct interval_row interval_rows[] = {
    {0, 1000, 0},     {3, 1000, 0},      {8, 1000, 2},      {200, 1000, 50},
    {400, 1000, 100}, {1000, 1000, 250}, {5000, 1000, 250}, {10000, 1000, 250},
    {10000, 200, 50}, {10000, 20, 10},   {200, 100, 25},    {10000, 5000, 250},
};

static void relay_interval_grows_with_members_to_the_hold(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(interval_rows); i++) {
    const struct interval_row *r = &interval_rows[i];
    print_message("row %zu members, %" PRIu64 " ms heartbeat\n", r->npeers,
                  r->heartbeat_ms);
    assert_int_equal(policy_relay_interval_ms(r->npeers, r->heartbeat_ms),
                     r->interval_ms);
  }
}

struct credit_row {
  const char *name;
  size_t npeers;
  uint64_t credit_at, now;
  uint64_t go_at, credit_after; /* credit_after: spent at go_at */
};

/* With a 1 s heartbeat. */
static const struct credit_row credit_rows[] = {
    {"no_members_no_limit", 0, 1000, 1000, 1000, 1000},
    {"small_cluster_no_limit", 3, 0, 1000, 1000, 1000},
    {"fresh_credit_goes_now", 200, 0, 1000, 1000, 1050},
    {"credit_within_burst_goes_now", 200, 1350, 1000, 1000, 1400},
    {"burst_spent_waits_one_interval", 200, 1400, 1000, 1050, 1450},
    {"far_behind_waits_longer", 200, 1600, 1000, 1250, 1650},
    {"credit_in_the_past_is_reset", 200, 500, 1000, 1000, 1050},
    {"interval_grows_with_members", 400, 1800, 1000, 1100, 1900},
    {"interval_at_most_the_hold", 10000, 3000, 1000, 1250, 3250},
};

static void relay_credit(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(credit_rows); i++) {
    const struct credit_row *r = &credit_rows[i];
    uint64_t iv = policy_relay_interval_ms(r->npeers, 1000);
    uint64_t at = policy_relay_change_time(r->credit_at, r->now, iv);
    print_message("row %s\n", r->name);
    assert_int_equal(at, r->go_at);
    assert_int_equal(policy_relay_spend(r->credit_at, at, iv), r->credit_after);
  }
}

static void relay_burst_then_one_per_interval(void **state) {
  uint64_t credit = 0, now = 1000;
  uint64_t iv = policy_relay_interval_ms(200, 1000);
  for (unsigned i = 0; i < POLICY_RELAY_BURST; i++) {
    assert_int_equal(policy_relay_change_time(credit, now, iv), now);
    credit = policy_relay_spend(credit, now, iv);
  }
  assert_int_equal(policy_relay_change_time(credit, now, iv), now + 50);
}

/* Full batches go without credit (at 5,000 members a cluster's start
 * fills dozens): the credit is then spent, not owed, and a change after
 * the burst waits one interval at most. */
static void relay_full_batches_owe_no_credit(void **state) {
  uint64_t credit = 0, now = 1000;
  uint64_t iv = policy_relay_interval_ms(800, 1000); /* 200 ms */
  for (unsigned i = 0; i < 5 * POLICY_RELAY_BURST; i++)
    credit = policy_relay_spend(credit, now, iv);
  assert_int_equal(credit, now + POLICY_RELAY_BURST * 200);
  assert_int_equal(policy_relay_change_time(credit, now, iv), now + 200);
  /* and it comes back with time: all of it after a burst's intervals */
  now += POLICY_RELAY_BURST * 200;
  assert_int_equal(policy_relay_change_time(credit, now, iv), now);
}

struct forward_row {
  bool we_relay, via_relay, from_leaf, hello, news, expect;
};

static const struct forward_row forward_rows[] = {
    {true, false, true, false, false, true},
    {true, false, true, false, true, true},
    {true, false, true, true, false, false},
    {true, true, true, false, false, false},
    {true, false, false, false, false, false},
    {false, false, true, false, false, false},
    /* news through another relay: this relay's own copy was lost */
    {true, true, true, false, true, true},
    {true, true, true, true, true, false},
    {true, true, false, false, true, false},
    {false, true, true, false, true, false},
};

static void relay_forwards_leaves_direct_records_only(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(forward_rows); i++) {
    const struct forward_row *r = &forward_rows[i];
    assert_int_equal(policy_relay_forwards(r->we_relay, r->via_relay,
                                           r->from_leaf, r->hello, r->news),
                     r->expect);
  }
}

/* ---- shares ---- */

static const char *const share_relays[] = {"relay1", "relay2", "relay3",
                                           "relay4", "relay5", "relay6"};

/* How many of the first n relays serve member, as each sees the others
 * alive. */
static size_t servers(size_t n, const char *member, bool leaf) {
  size_t count = 0;
  for (size_t r = 0; r < n; r++) {
    const char *others[ARRAY_SIZE(share_relays)];
    size_t k = 0;
    for (size_t o = 0; o < n; o++)
      if (o != r)
        others[k++] = share_relays[o];
    count += policy_relay_serves(share_relays[r], others, k, member, leaf);
  }
  return count;
}

struct share_row {
  size_t relays; /* relays alive */
  bool leaf;     /* the member is a leaf */
  size_t expect; /* relays that forward to it */
};

static const struct share_row share_rows[] = {
    {1, true, 1}, {2, true, 2},  {3, true, 2},  {4, true, 2},
    {6, true, 2}, {6, false, 6}, {3, false, 3}, {2, false, 2},
};

/* Every leaf is served by exactly K relays when there are more, by all
 * of them otherwise; relays and mesh members by all. */
static void relay_shares_cover_every_member_k_times(void **state) {
  char member[32];
  for (size_t i = 0; i < ARRAY_SIZE(share_rows); i++) {
    const struct share_row *r = &share_rows[i];
    for (unsigned m = 0; m < 500; m++) {
      snprintf(member, sizeof(member), "leaf%u", m);
      assert_int_equal(servers(r->relays, member, r->leaf), r->expect);
    }
  }
}

/* Shares are even: with 6 relays each serves about a third of 6,000
 * leaves (2,000), within 10 %; and a relay lost moves only the leaves it
 * served, each to one other relay. */
static void relay_shares_are_even_and_stable(void **state) {
  size_t load[ARRAY_SIZE(share_relays)] = {0};
  char member[32];
  const char *others[ARRAY_SIZE(share_relays)];
  size_t moved = 0;
  for (unsigned m = 0; m < 6000; m++) {
    snprintf(member, sizeof(member), "node-%05u.example", m);
    for (size_t r = 0; r < 6; r++) {
      size_t k = 0;
      bool before, after;
      for (size_t o = 0; o < 6; o++)
        if (o != r)
          others[k++] = share_relays[o];
      before = policy_relay_serves(share_relays[r], others, k, member, true);
      load[r] += before;
      if (r == 5)
        continue;
      /* relay6 gone: the others without it */
      k = 0;
      for (size_t o = 0; o < 5; o++)
        if (o != r)
          others[k++] = share_relays[o];
      after = policy_relay_serves(share_relays[r], others, k, member, true);
      assert_true(!before || after); /* a relay keeps every leaf it had */
      moved += after && !before;
    }
  }
  for (size_t r = 0; r < 6; r++)
    assert_in_range(load[r], 1800, 2200);
  assert_int_equal(moved, load[5]);
}

/* A relay that holds fewer relays alive serves a superset of its share;
 * the rank is the same on every node and tells relays and names apart. */
static void relay_share_of_fewer_relays_is_a_superset(void **state) {
  char member[32];
  for (unsigned m = 0; m < 2000; m++) {
    snprintf(member, sizeof(member), "m%u", m);
    bool all = policy_relay_serves("relay1", share_relays + 1, 5, member, true);
    bool fewer =
        policy_relay_serves("relay1", share_relays + 1, 3, member, true);
    assert_true(!all || fewer);
  }
  assert_true(policy_share_rank("a", "b") == policy_share_rank("a", "b"));
  assert_true(policy_share_rank("a", "b") != policy_share_rank("b", "a"));
  assert_true(policy_share_rank("ab", "c") != policy_share_rank("a", "bc"));
}

/* ---- quiet relays ---- */

struct pass_row {
  const char *name;
  struct policy_pass_in in;
  enum policy_relay_pass expect;
};

#define QUIET .forwards = true, .all_quiet = true
static const struct pass_row pass_rows[] = {
    {"not_a_forward", {.news = true, .all_quiet = true}, POLICY_PASS_NONE},
    {"an_unchanged_heartbeat_stays", {QUIET}, POLICY_PASS_NONE},
    {"news_goes_at_once", {QUIET, .news = true}, POLICY_PASS_NEWS},
    {"a_leave_goes_at_once", {QUIET, .leave = true}, POLICY_PASS_NEWS},
    {"echoes_and_wants_go_at_once", {QUIET, .control = true}, POLICY_PASS_NEWS},
    {"a_certificate_asked_for_goes_at_once",
     {QUIET, .cert_wanted = true},
     POLICY_PASS_NEWS},
    {"repeats_after_a_change",
     {QUIET, .changed_lately = true},
     POLICY_PASS_HOLD},
    {"repeats_in_a_catch_up_window",
     {QUIET, .catch_up = true},
     POLICY_PASS_HOLD},
    {"every_repeat_for_an_earlier_minor", {.forwards = true}, POLICY_PASS_HOLD},
    {"news_beats_the_window",
     {QUIET, .news = true, .catch_up = true},
     POLICY_PASS_NEWS},
    {"behind_no_repeats_after_a_change",
     {QUIET, .changed_lately = true, .behind = true},
     POLICY_PASS_NONE},
    {"behind_no_repeats_in_a_window",
     {QUIET, .catch_up = true, .behind = true},
     POLICY_PASS_NONE},
    {"behind_news_still_goes",
     {QUIET, .news = true, .catch_up = true, .behind = true},
     POLICY_PASS_NEWS},
    {"behind_a_version_not_passed_on_still_goes",
     {QUIET, .unpassed = true, .behind = true},
     POLICY_PASS_NEWS},
    {"behind_a_leave_still_goes",
     {QUIET, .leave = true, .behind = true},
     POLICY_PASS_NEWS},
    {"behind_every_repeat_for_an_earlier_minor",
     {.forwards = true, .behind = true},
     POLICY_PASS_HOLD},
};

static void relay_passes_on_news_and_repeats_only_when_needed(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(pass_rows); i++) {
    const struct pass_row *r = &pass_rows[i];
    if (policy_relay_pass(&r->in) != r->expect)
      fail_msg("%s: %d, not %d", r->name, policy_relay_pass(&r->in), r->expect);
  }
  assert_int_equal(policy_relay_window_ms(1000), 1500);
}

/* Hellos: fast while one may have been lost on the way, doubling after
 * the fast ones, at most a heartbeat; none from the timer once one went
 * out over connections all up. */
static void hello_gap_backs_off_and_stops_once_delivered(void **state) {
  static const struct {
    unsigned tries;
    bool delivered;
    uint64_t heartbeat, expect;
  } rows[] = {
      {1, false, 1000, 20},       {24, false, 1000, 20},
      {25, false, 1000, 40},      {26, false, 1000, 80},
      {29, false, 1000, 640},     {30, false, 1000, 1000},
      {40, false, 100000, 20480}, {1000, false, 100000, 20480},
      {1, false, 10, 10},         {1, true, 1000, 0},
      {30, true, 1000, 0},
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
    if (policy_hello_gap(rows[i].tries, rows[i].delivered, rows[i].heartbeat) !=
        rows[i].expect)
      fail_msg("row %zu: %llu, not %llu", i,
               (unsigned long long)policy_hello_gap(
                   rows[i].tries, rows[i].delivered, rows[i].heartbeat),
               (unsigned long long)rows[i].expect);
}

struct catch_up_row {
  const char *name;
  struct policy_catch_up_in in;
  enum policy_catch_up expect;
};

#define CALM .all_quiet = true, .reachable = true
static const struct catch_up_row catch_up_rows[] = {
    {"alone_while_a_slot_is_free",
     {CALM, .own_free = POLICY_RELAY_TARGETS_MAX},
     POLICY_CATCH_UP_ALONE},
    {"the_last_free_slot", {CALM, .own_free = 1}, POLICY_CATCH_UP_ALONE},
    {"its_own_is_extended_when_none_is_free",
     {CALM, .has_own = true},
     POLICY_CATCH_UP_ALONE},
    {"everyone_when_none_is_free", {CALM}, POLICY_CATCH_UP_ALL},
    {"everyone_when_its_address_is_unknown",
     {.all_quiet = true, .own_free = 4},
     POLICY_CATCH_UP_ALL},
    {"nothing_while_a_window_for_everyone_is_open",
     {CALM, .own_free = 4, .window_open = true},
     POLICY_CATCH_UP_COVERED},
    {"nothing_while_an_earlier_minor_gets_every_heartbeat",
     {.reachable = true, .own_free = 4},
     POLICY_CATCH_UP_COVERED},
    {"nothing_for_an_unknown_address_under_an_earlier_minor",
     {.own_free = 0},
     POLICY_CATCH_UP_COVERED},
    {"later_while_reading_behind",
     {CALM, .own_free = 4, .behind = true},
     POLICY_CATCH_UP_LATER},
    {"later_while_reading_behind_not_everyone",
     {CALM, .own_free = 0, .behind = true},
     POLICY_CATCH_UP_LATER},
    {"later_while_reading_behind_even_with_a_window",
     {CALM, .window_open = true, .behind = true},
     POLICY_CATCH_UP_LATER},
};

static void relay_catches_up_one_member_alone_while_it_can(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(catch_up_rows); i++) {
    const struct catch_up_row *r = &catch_up_rows[i];
    if (policy_relay_catch_up(&r->in) != r->expect)
      fail_msg("%s: %d, not %d", r->name, policy_relay_catch_up(&r->in),
               r->expect);
  }
}

/* A relay's mode: a window open, every member of minor 2 (not behind). */
#define MODE(window, quiet)                                                    \
  (&(struct policy_relay_mode){.catch_up = (window), .all_quiet = (quiet)})

/* What a relay makes of a leaf's message and its entry of the leaf. */
static void relay_pass_reads_the_message_and_the_entry(void **state) {
  struct peer peer;
  struct wire_msg m;
  uint64_t hb = 1000, now = 10000;

  (void)state;
  memset(&peer, 0, sizeof(peer));
  memset(&m, 0, sizeof(m));
  m.type = WIRE_STATE;
  m.rec.inc = 7;
  m.rec.ver = 3;
  /* A version never passed on: at once, even the first state after a
   * hello (no news to the relay, which merged the hello). */
  assert_int_equal(policy_relay_pass_msg(&m, &peer, false, false,
                                         MODE(false, true), now, hb),
                   POLICY_PASS_NEWS);
  peer_passed(&peer, &m.rec);
  assert_int_equal(policy_relay_pass_msg(&m, &peer, false, false,
                                         MODE(false, true), now, hb),
                   POLICY_PASS_NONE);
  /* Changed within two heartbeats: with the repeats. */
  peer.changed_at = now - 2 * hb + 1;
  assert_int_equal(policy_relay_pass_msg(&m, &peer, false, false,
                                         MODE(false, true), now, hb),
                   POLICY_PASS_HOLD);
  peer.changed_at = now - 2 * hb;
  /* An echo, and a certificate asked for, go at once; a certificate no
   * one asked for, or an ask without a certificate, do not. */
  m.necho = 1;
  assert_int_equal(policy_relay_pass_msg(&m, &peer, false, false,
                                         MODE(false, true), now, hb),
                   POLICY_PASS_NEWS);
  m.necho = 0;
  assert_int_equal(
      policy_relay_pass_msg(&m, &peer, false, true, MODE(false, true), now, hb),
      POLICY_PASS_NONE);
  m.cert = json_object();
  assert_int_equal(policy_relay_pass_msg(&m, &peer, false, false,
                                         MODE(false, true), now, hb),
                   POLICY_PASS_NONE);
  assert_int_equal(
      policy_relay_pass_msg(&m, &peer, false, true, MODE(false, true), now, hb),
      POLICY_PASS_NEWS);
  json_decref(m.cert);
  m.cert = NULL;
  /* A resync request is for the relays that hear it directly: not
   * passed on for itself. */
  m.resync = true;
  assert_int_equal(policy_relay_pass_msg(&m, &peer, false, false,
                                         MODE(false, true), now, hb),
                   POLICY_PASS_NONE);
  m.resync = false;
  /* A window, or a member of minor 1: with the repeats. */
  assert_int_equal(
      policy_relay_pass_msg(&m, &peer, false, false, MODE(true, true), now, hb),
      POLICY_PASS_HOLD);
  assert_int_equal(policy_relay_pass_msg(&m, &peer, false, false,
                                         MODE(false, false), now, hb),
                   POLICY_PASS_HOLD);
  /* A newer version: at once again. */
  m.rec.ver = 4;
  assert_int_equal(policy_relay_pass_msg(&m, &peer, false, false,
                                         MODE(false, true), now, hb),
                   POLICY_PASS_NEWS);
  peer_more_free(&peer);
}

/* A resync is asked after two mismatches in a row. The same difference
 * (the same two digests) again: not before a back-off that doubles (2,
 * 4, ... 64 heartbeats), also when they matched for a while in between;
 * a calm of four back-offs starts it over. Another difference with both
 * digests as at the relay's previous message (nothing in flight): two
 * heartbeats after the last request. Another difference while records
 * still reach us or the relay (a cluster forming): the back-off. */
/* n messages of a relay, *t advancing by step each: ours is ours0 + d *
 * ours_step, theirs theirs0 + d (d = 0, 1, ...), both moving at every
 * message or theirs alone. Requests come at a back-off that doubles from
 * the last (at last): 2, 4, 8 heartbeats, three of them; returns the
 * third. */
static uint64_t asks_double(struct policy_resync *s, uint64_t *t, uint64_t last,
                            uint64_t hb, uint64_t n, uint64_t ours0,
                            uint64_t ours_step, uint64_t theirs0,
                            uint64_t step) {
  uint64_t asked[3];
  size_t k = 0;
  for (uint64_t d = 0; d < n; d++)
    if (policy_resync_note(s, ours0 + d * ours_step, theirs0 + d, *t += step,
                           hb)) {
      assert_true(k < 3);
      asked[k++] = *t;
    }
  assert_int_equal(k, 3);
  assert_int_equal(asked[0] - last, 2 * hb);
  assert_int_equal(asked[1] - asked[0], 4 * hb);
  assert_int_equal(asked[2] - asked[1], 8 * hb);
  return asked[2];
}

static void resync_backs_off_while_digests_differ(void **state) {
  struct policy_resync s = {0};
  uint64_t hb = 1000, t = 1000, asked[8], last;
  size_t k = 0;

  (void)state;
  assert_false(policy_resync_note(&s, 1, 2, t, hb));
  assert_true(policy_resync_note(&s, 1, 2, t += hb, hb));
  asked[k++] = t;
  while (k < ARRAY_SIZE(asked) && t < 400 * hb)
    if (policy_resync_note(&s, 1, 2, t += hb, hb))
      asked[k++] = t;
  assert_int_equal(k, ARRAY_SIZE(asked));
  assert_int_equal(asked[1] - asked[0], 2 * hb);
  assert_int_equal(asked[2] - asked[1], 4 * hb);
  assert_int_equal(asked[3] - asked[2], 8 * hb);
  assert_int_equal(asked[6] - asked[5], 64 * hb);
  assert_int_equal(asked[7] - asked[6], 64 * hb);
  /* Flapping: a match, then the same difference again, every 5
   * heartbeats. The back-off stays at 64 heartbeats. */
  last = asked[7];
  for (int i = 0; i < 60; i++) {
    assert_false(policy_resync_note(&s, 1, 1, t += hb, hb));
    for (int j = 0; j < 4; j++)
      if (policy_resync_note(&s, 1, 2, t += hb, hb)) {
        assert_true(t - last >= 64 * hb);
        last = t;
      }
  }
  assert_int_equal(s.backoff_ms, 64 * hb);
  /* Mismatches that don't come in a row ask nothing. */
  for (int i = 0; i < 10; i++) {
    assert_false(policy_resync_note(&s, 1, 2, t += hb, hb));
    assert_false(policy_resync_note(&s, 2, 2, t += hb, hb));
  }
  /* Another difference: asked two heartbeats after the last request,
   * and the back-off starts over. */
  t = last + 2 * hb;
  assert_false(policy_resync_note(&s, 3, 2, t, hb));
  assert_true(policy_resync_note(&s, 3, 2, t += hb, hb));
  assert_int_equal(s.backoff_ms, 2 * hb);
  last = t;
  /* A cluster forming: our digest changes at every message of the
   * relay; requests at the back-off, which doubles: 2, 4, 8 heartbeats. */
  last = asks_double(&s, &t, last, hb, 30, 10, 1, 100, hb / 2);
  assert_int_equal(s.backoff_ms, 16 * hb);
  /* Nothing reaches us any more and the digests still differ: asked two
   * heartbeats after the last request (not at the first message, where
   * ours had just changed), and the back-off starts over. */
  t = last + 2 * hb;
  assert_false(policy_resync_note(&s, 7, 8, t, hb));
  assert_true(policy_resync_note(&s, 7, 8, t += hb, hb));
  assert_int_equal(s.backoff_ms, 2 * hb);
  /* The same difference: the back-off. */
  assert_false(policy_resync_note(&s, 7, 8, t += hb, hb));
  assert_true(policy_resync_note(&s, 7, 8, t += hb, hb));
  assert_int_equal(s.backoff_ms, 4 * hb);
  /* The same difference after a calm of four back-offs: it starts over
   * from two heartbeats. */
  t += 4 * 4 * hb + 1;
  assert_false(policy_resync_note(&s, 7, 8, t, hb));
  assert_true(policy_resync_note(&s, 7, 8, t += hb, hb));
  assert_int_equal(s.backoff_ms, 2 * hb);
  last = t;
  /* Ours stays, the relay's changes at each of its messages (it learns
   * what it has not passed on yet): the back-off, 2, 4, 8 heartbeats. */
  (void)asks_double(&s, &t, last, hb, 16, 50, 0, 200, hb);
  /* The relay sent no digest (it read behind): once it sends one again,
   * two mismatches ask at once, whatever the back-off was. */
  assert_int_equal(s.backoff_ms, 16 * hb);
  policy_resync_forget(&s);
  t += hb;
  assert_false(policy_resync_note(&s, 50, 300, t += hb, hb));
  assert_true(policy_resync_note(&s, 50, 300, t += hb, hb));
  assert_int_equal(s.backoff_ms, 2 * hb);
}

/* ---- member lists ---- */

struct lists_row {
  size_t npeers;
  const char *name;
  uint32_t their_known;
  const char *their_name;
  bool expect;
};

static const struct lists_row lists_rows[] = {
    {4, "b", 3, "a", true},  /* we know more */
    {2, "a", 5, "b", false}, /* they know more */
    {4, "a", 5, "b", true},  /* tie: our name first */
    {4, "b", 5, "a", false}, /* tie: theirs first */
    {0, "a", 0, "b", true},  /* they claim none: we know one, ourselves */
    {0, "b", 1, "a", false},
};

static void lists_ours_picks_one_side(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(lists_rows); i++) {
    const struct lists_row *r = &lists_rows[i];
    print_message("row %zu\n", i);
    assert_int_equal(
        policy_lists_ours(r->npeers, r->name, r->their_known, r->their_name),
        r->expect);
  }
}

static void lists_ours_is_one_sided(void **state) {
  /* Of two agents, exactly one sends. */
  assert_true(policy_lists_ours(3, "a", 4, "b") !=
              policy_lists_ours(3, "b", 4, "a"));
  assert_true(policy_lists_ours(5, "a", 4, "b") !=
              policy_lists_ours(3, "b", 6, "a"));
}

struct news_row {
  const char *name;
  bool known, heard;
  enum peer_status status;
  uint64_t inc, ver; /* the entry's; the record is (10, 5) */
  bool expect;
};

static const struct news_row news_rows[] = {
    {"unknown_node", false, false, PEER_ALIVE, 0, 0, true},
    {"known_not_heard", true, false, PEER_ALIVE, 10, 5, true},
    {"lost_node", true, true, PEER_LOST, 10, 5, true},
    {"left_node", true, true, PEER_LEFT, 10, 5, true},
    {"newer_version", true, true, PEER_ALIVE, 10, 4, true},
    {"newer_incarnation", true, true, PEER_ALIVE, 9, 8, true},
    {"same_version", true, true, PEER_ALIVE, 10, 5, false},
    {"older_version", true, true, PEER_ALIVE, 10, 6, false},
};

static void is_news_when_it_tells_something(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(news_rows); i++) {
    const struct news_row *r = &news_rows[i];
    struct peer p;
    struct record rec, held;
    memset(&p, 0, sizeof(p));
    memset(&rec, 0, sizeof(rec));
    memset(&held, 0, sizeof(held));
    p.heard = r->heard;
    p.status = r->status;
    p.rec = &held;
    held.inc = r->inc;
    held.ver = r->ver;
    rec.inc = 10;
    rec.ver = 5;
    print_message("row %s\n", r->name);
    assert_int_equal(policy_is_news(r->known ? &p : NULL, &rec), r->expect);
  }
}

/* What after a record: flags A(nswer list), S(oon), O(ffer list). */
struct after_row {
  const char *name;
  bool hello, from_leaf, via_relay, we_relay, we_leaf, new_peer, same_view;
  uint64_t now, list_at;
  size_t npeers;
  uint32_t their_known;
  unsigned expect;
  uint32_t lottery; /* 0 in rows that don't say */
};

#define HB 1000

static const struct after_row after_rows[] = {
    {"hello_gets_list_and_state", true, false, false, false, false, true, false,
     5000, 4900, 3, 1, POLICY_ANSWER_LIST | POLICY_PUBLISH_SOON, 0},
    {"leaf_hello_at_relay_gets_state_only", true, true, false, true, false,
     true, false, 5000, 0, 3, 1, POLICY_PUBLISH_SOON, 0},
    {"leaf_hello_at_member_gets_list", true, true, false, false, false, false,
     true, 5000, 0, 3, 1, POLICY_ANSWER_LIST | POLICY_PUBLISH_SOON, 0},
    {"leaf_ignores_records_via_relay", false, false, true, false, true, true,
     false, 5000, 0, 9, 1, POLICY_NOTHING, 0},
    {"new_peer_gets_state_soon", false, false, false, false, false, true, false,
     5000, 0, 9, 1, POLICY_PUBLISH_SOON, 0},
    {"leaf_does_not_republish_for_new_peer", false, false, false, false, true,
     true, true, 5000, 0, 9, 1, POLICY_NOTHING, 0},
    {"leaf_offers_list_to_its_relay", false, false, false, false, true, true,
     false, 5000, 0, 9, 1, POLICY_OFFER_LIST, 0},
    {"relay_offers_no_list_to_a_leaf", false, true, false, true, false, false,
     false, 5000, 0, 999, 1, POLICY_NOTHING, 0},
    {"relay_offers_its_list_to_a_mesh_member", false, false, false, true, false,
     false, false, 5000, 0, 999, 1, POLICY_OFFER_LIST, 0},
    {"same_view_nothing", false, false, false, false, false, false, true, 5000,
     0, 9, 1, POLICY_NOTHING, 0},
    {"differing_view_offers_list", false, false, false, false, false, false,
     false, 5000, 4500, 9, 1, POLICY_OFFER_LIST, 0},
    {"list_sent_recently_waits", false, false, false, false, false, false,
     false, 5000, 4501, 9, 1, POLICY_NOTHING, 0},
    {"they_know_more_they_send", false, false, false, false, false, false,
     false, 5000, 0, 2, 9, POLICY_NOTHING, 0},
    /* Of 1,000 members, a leaf offers with a chance of 4 in 1,000. */
    {"leaf_of_many_wins_the_lottery", false, false, false, false, true, false,
     false, 5000, 0, 999, 1, POLICY_OFFER_LIST, 17179869},
    {"leaf_of_many_loses_the_lottery", false, false, false, false, true, false,
     false, 5000, 0, 999, 1, POLICY_NOTHING, 17179870},
    {"leaf_of_a_few_always_offers", false, false, false, false, true, false,
     false, 5000, 0, 3, 1, POLICY_OFFER_LIST, UINT32_MAX},
    {"mesh_member_ignores_the_lottery", false, false, false, false, false,
     false, false, 5000, 0, 999, 1, POLICY_OFFER_LIST, UINT32_MAX},
};

/* Relays offer their lists to mesh members only. */
static void relay_offers_no_list_to_a_relay(void **state) {
  struct policy_record_in in = {
      .we_relay = true,
      .from_relay = true,
      .now = 5000,
      .heartbeat_ms = HB,
      .npeers = 999,
      .name = "a",
      .their_known = 1,
      .their_name = "b",
  };
  (void)state;
  assert_false(policy_view_matters(&in));
  assert_int_equal(policy_after_record(&in), POLICY_NOTHING);
  in.from_relay = false;
  assert_true(policy_view_matters(&in));
  assert_int_equal(policy_after_record(&in), POLICY_OFFER_LIST);
  in.we_relay = false;
  in.from_relay = true; /* a mesh member offers to a relay */
  assert_int_equal(policy_after_record(&in), POLICY_OFFER_LIST);
}

static void after_record(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(after_rows); i++) {
    const struct after_row *r = &after_rows[i];
    struct policy_record_in in = {
        .hello = r->hello,
        .from_leaf = r->from_leaf,
        .via_relay = r->via_relay,
        .we_relay = r->we_relay,
        .we_leaf = r->we_leaf,
        .new_peer = r->new_peer,
        .same_view = r->same_view,
        .now = r->now,
        .list_at = r->list_at,
        .heartbeat_ms = HB,
        .npeers = r->npeers,
        .name = "a",
        .their_known = r->their_known,
        .their_name = "b",
        .lottery = r->lottery,
    };
    print_message("row %s\n", r->name);
    assert_int_equal(policy_after_record(&in), r->expect);
    /* The shell compares views only where policy_view_matters says the
     * comparison can change the decision: elsewhere either answer gives
     * the same, and where it matters they differ (an offer or none). */
    struct policy_record_in same = in, differ = in;
    same.same_view = true;
    differ.same_view = false;
    if (policy_view_matters(&in))
      assert_int_not_equal(policy_after_record(&same),
                           policy_after_record(&differ));
    else
      assert_int_equal(policy_after_record(&same),
                       policy_after_record(&differ));
  }
}

/* ---- own record ---- */

#define OWN_NOW_MS INT64_C(1764061200000) /* 2025-11-25 09:00:00 UTC */
#define OWN_NOW_S UINT64_C(1764061200)

static void inc_bounds(void **state) {
  static const struct {
    const char *name;
    uint64_t inc;
    int64_t now_ms;
    bool in;
  } rows[] = {
      {"zero", 0, OWN_NOW_MS, true},
      {"now", OWN_NOW_S, OWN_NOW_MS, true},
      {"a_day_ahead", OWN_NOW_S + POLICY_FUTURE_SLACK_S, OWN_NOW_MS, true},
      {"a_day_and_a_second_ahead", OWN_NOW_S + POLICY_FUTURE_SLACK_S + 1,
       OWN_NOW_MS, false},
      {"two_to_the_53_minus_1", RECORD_COUNTER_MAX - 1, OWN_NOW_MS, false},
      {"uint64_max", UINT64_MAX, OWN_NOW_MS, false},
      {"clock_before_1970", POLICY_FUTURE_SLACK_S, -5000, true},
      {"clock_before_1970_beyond", POLICY_FUTURE_SLACK_S + 1, -5000, false},
      {"clock_at_the_end_of_time", RECORD_COUNTER_MAX + 1, INT64_MAX, false},
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    print_message("%s\n", rows[i].name);
    assert_int_equal(policy_inc_in_bounds(rows[i].inc, rows[i].now_ms),
                     rows[i].in);
  }
}

static void start_inc(void **state) {
  static const struct {
    const char *name;
    uint64_t saved;
    bool loaded;
    uint64_t want;
  } rows[] = {
      {"no_file_takes_the_clock", 0, false, OWN_NOW_S},
      {"no_file_ignores_saved", OWN_NOW_S + 50, false, OWN_NOW_S},
      {"older_file_takes_the_clock", OWN_NOW_S - 100, true, OWN_NOW_S},
      {"quick_restarts_go_one_ahead", OWN_NOW_S + 9, true, OWN_NOW_S + 10},
      {"just_in_bounds", OWN_NOW_S + POLICY_FUTURE_SLACK_S - 1, true,
       OWN_NOW_S + POLICY_FUTURE_SLACK_S},
      {"at_the_bound_the_next_is_out", OWN_NOW_S + POLICY_FUTURE_SLACK_S, true,
       OWN_NOW_S},
      {"ten_days_ahead_is_not_followed", OWN_NOW_S + 10 * 86400, true,
       OWN_NOW_S},
      {"counter_max_does_not_overflow", RECORD_COUNTER_MAX, true, OWN_NOW_S},
      {"uint64_max_does_not_overflow", UINT64_MAX, true, OWN_NOW_S},
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    print_message("%s\n", rows[i].name);
    assert_int_equal(
        policy_start_inc(rows[i].saved, rows[i].loaded, OWN_NOW_MS),
        rows[i].want);
  }
}

static void claims_about_this_node(void **state) {
  struct record own;
  static const struct {
    const char *name;
    bool direct;
    uint64_t inc, ver;
    const char *addr;
    bool left;
    const char *st, *reason;
    enum policy_claim want;
  } rows[] = {
      {"older_incarnation_is_ignored", false, OWN_NOW_S - 1, 99, "tcp://a:1",
       true, NULL, NULL, POLICY_CLAIM_IGNORE},
      {"older_version_is_ignored", true, OWN_NOW_S, 4, "tcp://b:1", false,
       "maintenance", "", POLICY_CLAIM_IGNORE},
      {"our_own_entry", false, OWN_NOW_S, 5, "tcp://a:1", false, NULL, NULL,
       POLICY_CLAIM_IGNORE},
      {"our_own_record_echoed", true, OWN_NOW_S, 5, "tcp://a:1", false, "ready",
       "up", POLICY_CLAIM_IGNORE},
      {"same_stamp_other_address", false, OWN_NOW_S, 5, "tcp://b:1", false,
       NULL, NULL, POLICY_CLAIM_REFUTE},
      {"same_stamp_left", false, OWN_NOW_S, 5, "tcp://a:1", true, NULL, NULL,
       POLICY_CLAIM_REFUTE},
      {"same_stamp_other_state", true, OWN_NOW_S, 5, "tcp://a:1", false,
       "maintenance", "up", POLICY_CLAIM_REFUTE},
      {"same_stamp_other_reason", true, OWN_NOW_S, 5, "tcp://a:1", false,
       "ready", "forged", POLICY_CLAIM_REFUTE},
      {"greater_version_same_address", false, OWN_NOW_S, 6, "tcp://a:1", false,
       NULL, NULL, POLICY_CLAIM_REFUTE},
      {"greater_incarnation_held_by_peers", false, OWN_NOW_S + 10, 1,
       "tcp://a:1", false, NULL, NULL, POLICY_CLAIM_REFUTE},
      {"left_just_under_a_day_ahead", false, OWN_NOW_S + 86399, 1, "tcp://a:1",
       true, NULL, NULL, POLICY_CLAIM_REFUTE},
      {"left_at_two_to_the_53_minus_1", false, RECORD_COUNTER_MAX - 1, 1,
       "tcp://a:1", true, NULL, NULL, POLICY_CLAIM_BOUNDS},
      {"record_beyond_a_day", true, OWN_NOW_S + 86401, 1, "tcp://a:1", false,
       "ready", "up", POLICY_CLAIM_BOUNDS},
  };
  (void)state;
  assert_int_equal(record_init(&own), 0);
  snprintf(own.name, sizeof(own.name), "db1");
  snprintf(own.addr, sizeof(own.addr), "tcp://a:1");
  snprintf(own.state, sizeof(own.state), "ready");
  snprintf(own.reason, sizeof(own.reason), "up");
  own.inc = OWN_NOW_S;
  own.ver = 5;
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    struct policy_claim_in in = {
        .own = &own,
        .direct = rows[i].direct,
        .inc = rows[i].inc,
        .ver = rows[i].ver,
        .addr = rows[i].addr,
        .left = rows[i].left,
        .state = rows[i].st,
        .reason = rows[i].reason,
        .now_ms = OWN_NOW_MS,
    };
    print_message("%s\n", rows[i].name);
    assert_int_equal(policy_claim(&in), rows[i].want);
  }
  record_free(&own);
}

static void refute_inc_outbids_and_saturates(void **state) {
  static const struct {
    uint64_t own, claimed, want;
  } rows[] = {
      {100, 50, 101},
      {100, 100, 101},
      {100, 200, 201},
      {RECORD_COUNTER_MAX - 1, 5, RECORD_COUNTER_MAX},
      {RECORD_COUNTER_MAX, 5, RECORD_COUNTER_MAX},
      {5, UINT64_MAX, RECORD_COUNTER_MAX},
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(rows); i++)
    assert_int_equal(policy_refute_inc(rows[i].own, rows[i].claimed),
                     rows[i].want);
}

static void sender_behind_what_we_hold(void **state) {
  struct peer peer;
  struct record held;
  struct record r;
  (void)state;
  memset(&peer, 0, sizeof(peer));
  assert_int_equal(record_init(&held), 0);
  peer.rec = &held;
  assert_int_equal(record_init(&r), 0);
  held.inc = 20;
  held.ver = 3;
  peer.msg_inc = 20;
  peer.heard = true;

  assert_false(policy_sender_behind(NULL, 1, NULL));
  /* A restart with a lower incarnation than its last message. */
  assert_true(policy_sender_behind(&peer, 19, NULL));
  assert_false(policy_sender_behind(&peer, 20, NULL));
  /* Its record older than the one held (a forged one outranks it). */
  r.inc = 20;
  r.ver = 2;
  assert_true(policy_sender_behind(&peer, 20, &r));
  r.ver = 3;
  assert_false(policy_sender_behind(&peer, 20, &r));
  r.ver = 4;
  assert_false(policy_sender_behind(&peer, 20, &r));
  /* Only listed: no record of it held that it could be behind. */
  peer.heard = false;
  r.ver = 1;
  assert_false(policy_sender_behind(&peer, 20, &r));
  record_free(&r);
  record_free(&held);
}

struct rival_step {
  const char *addr;
  uint64_t inc, now, uptime;
  unsigned want;
};

static void run_rival(const struct rival_step *steps, size_t n) {
  struct policy_rival r;
  memset(&r, 0, sizeof(r));
  for (size_t i = 0; i < n; i++) {
    struct policy_rival_in in = {
        .addr = steps[i].addr,
        .inc = steps[i].inc,
        .now = steps[i].now,
        .uptime = steps[i].uptime,
        .heartbeat_ms = 1000,
        .lost_after_ms = 5000,
    };
    print_message("step %zu\n", i);
    assert_int_equal(policy_rival_claim(&r, &in), steps[i].want);
  }
}

#define R POLICY_RIVAL_REFUTE
#define N POLICY_RIVAL_NEW
#define C POLICY_RIVAL_CONFLICT
#define S POLICY_RIVAL_STOP

static void rival_the_agent_that_was_there_stays(void **state) {
  static const struct rival_step steps[] = {
      {"tcp://b:1", 10, 100000, 100000, R | N}, /* first claim: refute */
      {"tcp://b:1", 10, 100100, 100100, R},     /* the same list again */
      {"tcp://b:1", 12, 100300, 100300, C | R}, /* it outbid us: live */
      {"tcp://b:1", 14, 100500, 100500, 0},     /* at most once a heartbeat */
      {"tcp://b:1", 16, 101300, 101300, R},
      {"tcp://c:1", 17, 101400, 101400, R | N}, /* another address */
      {"tcp://c:1", 17, 107000, 107000, R | N}, /* silent a lost_after */
  };
  (void)state;
  run_rival(steps, ARRAY_SIZE(steps));
}

static void rival_the_newcomer_stops(void **state) {
  static const struct rival_step steps[] = {
      {"tcp://a:1", 10, 2000, 2000, R | N},
      {"tcp://a:1", 10, 2100, 2100, R},
      {"tcp://a:1", 12, 2300, 2300, C | S},
  };
  (void)state;
  run_rival(steps, ARRAY_SIZE(steps));
}

static void rival_a_one_off_claim_stops_nobody(void **state) {
  /* A forged entry repeated by every member's list, never raised. */
  static const struct rival_step steps[] = {
      {"tcp://x:1", 50, 1000, 1000, R | N},
      {"tcp://x:1", 50, 1200, 1200, R},
      {"tcp://x:1", 50, 1400, 1400, R},
      {"tcp://x:1", 49, 1600, 1600, R},
  };
  (void)state;
  run_rival(steps, ARRAY_SIZE(steps));
}

#undef R
#undef N
#undef C
#undef S

static void rival_expires(void **state) {
  struct policy_rival r;
  (void)state;
  memset(&r, 0, sizeof(r));
  assert_false(policy_rival_expire(&r, 10, 5));
  snprintf(r.addr, sizeof(r.addr), "tcp://b:1");
  r.last = 100;
  assert_false(policy_rival_expire(&r, 104, 5));
  assert_true(policy_rival_expire(&r, 105, 5));
  assert_string_equal(r.addr, "");
}

/* ---- startup sync ---- */

#define SYNC_BASE .started_at = 1000, .window = 1500, .lost_after = 5000
#define NEVER UINT64_MAX

static const struct {
  const char *name;
  struct policy_sync_in in;
  enum policy_sync expect;
  uint64_t recheck;
} sync_rows[] = {
    {"first_start_all_heard_and_agreed_is_done",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 1100,
      .heard = 2},
     POLICY_SYNC_DONE,
     NEVER},
    {"first_start_no_answer_waits_the_window",
     {SYNC_BASE, .view_agreed = true, .now = 1100},
     POLICY_SYNC_WAIT,
     2500},
    {"first_start_views_differ_waits_the_window",
     {SYNC_BASE, .got_members = true, .now = 1100, .heard = 1},
     POLICY_SYNC_WAIT,
     2500},
    {"first_start_unheard_member_waits_the_window",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 1100,
      .unheard = 1, .heard = 1},
     POLICY_SYNC_WAIT,
     2500},
    {"first_start_member_heard_of_waited_for_past_the_window",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 2500,
      .unheard = 3, .heard = 1},
     POLICY_SYNC_WAIT,
     7500},
    {"first_start_member_heard_of_silent_for_lost_after_is_done",
     {SYNC_BASE, .got_members = true, .now = 7500, .unheard = 1, .heard = 1},
     POLICY_SYNC_DONE,
     NEVER},
    {"first_start_window_over_is_done",
     {SYNC_BASE, .view_agreed = true, .now = 2500},
     POLICY_SYNC_DONE,
     NEVER},
    {"restart_waits_for_known_members_past_the_window",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 2600,
      .unheard = 1, .heard = 2},
     POLICY_SYNC_WAIT,
     7500},
    {"restart_empty_view_waits",
     {SYNC_BASE, .now = 1750, .unheard = 2},
     POLICY_SYNC_WAIT,
     2500},
    {"restart_all_known_heard_and_agreed_is_done_at_once",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 1300,
      .heard = 2},
     POLICY_SYNC_DONE,
     NEVER},
    {"restart_known_heard_views_differ_waits_the_window",
     {SYNC_BASE, .got_members = true, .now = 1300, .heard = 2},
     POLICY_SYNC_WAIT,
     2500},
    {"restart_known_heard_or_forgotten_after_window_is_done",
     {SYNC_BASE, .got_members = true, .now = 2500, .heard = 1},
     POLICY_SYNC_DONE,
     NEVER},
    {"restart_known_member_silent_for_lost_after_is_done",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 7500,
      .unheard = 1},
     POLICY_SYNC_DONE,
     NEVER},
    {"min_members_not_met_waits_for_news",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 3000,
      .heard = 1, .min_members = 2},
     POLICY_SYNC_WAIT,
     NEVER},
    {"min_members_met_is_done",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 1100,
      .heard = 2, .min_members = 2},
     POLICY_SYNC_DONE,
     NEVER},
    {"missing_group_waits_until_max_wait",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 3000,
      .heard = 2, .groups_missing = 1, .max_wait = 30000},
     POLICY_SYNC_WAIT,
     31000},
    {"missing_group_at_max_wait_gives_up",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 31000,
      .heard = 2, .groups_missing = 1, .max_wait = 30000},
     POLICY_SYNC_GAVE_UP,
     NEVER},
    {"max_wait_cuts_the_wait_for_known_members",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 3000,
      .unheard = 1, .max_wait = 2000},
     POLICY_SYNC_GAVE_UP,
     NEVER},
    {"max_wait_is_the_earliest_recheck",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 1100,
      .unheard = 1, .max_wait = 1000},
     POLICY_SYNC_WAIT,
     2000},
    {"nothing_missing_at_max_wait_is_done",
     {SYNC_BASE, .got_members = true, .view_agreed = true, .now = 40000,
      .heard = 1, .min_members = 1, .max_wait = 30000},
     POLICY_SYNC_DONE,
     NEVER},
};

static void sync_decides_when_the_view_can_be_trusted(void **state) {
  for (size_t i = 0; i < sizeof(sync_rows) / sizeof(sync_rows[0]); i++) {
    uint64_t recheck = 0;
    enum policy_sync got = policy_sync(&sync_rows[i].in, &recheck);
    if (got != sync_rows[i].expect || recheck != sync_rows[i].recheck)
      fail_msg("%s: got %d recheck %llu, want %d recheck %llu",
               sync_rows[i].name, (int)got, (unsigned long long)recheck,
               (int)sync_rows[i].expect,
               (unsigned long long)sync_rows[i].recheck);
  }
}

/* ---- control socket authority ---- */

#define AGENT_EUID 998u

struct access_row {
  const char *name;
  uint32_t peer_uid;
  uint32_t agent_euid;
  bool reader;
  enum policy_access expect;
};

static const struct access_row access_rows[] = {
    {"root_changes", 0, AGENT_EUID, false, POLICY_ACCESS_CHANGE},
    {"root_in_the_read_group_still_changes", 0, AGENT_EUID, true,
     POLICY_ACCESS_CHANGE},
    {"the_agents_own_user_changes", AGENT_EUID, AGENT_EUID, false,
     POLICY_ACCESS_CHANGE},
    {"a_root_agent_and_a_user_in_the_group_reads", 1001, 0, true,
     POLICY_ACCESS_READ},
    {"a_reader_of_a_non_root_agent_reads", 1001, AGENT_EUID, true,
     POLICY_ACCESS_READ},
    {"anyone_else_is_refused", 1001, AGENT_EUID, false, POLICY_ACCESS_NONE},
    {"anyone_else_of_a_root_agent_is_refused", 1001, 0, false,
     POLICY_ACCESS_NONE},
    {"nobody_is_refused", 65534, 0, false, POLICY_ACCESS_NONE},
};

static void control_access_from_credentials(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(access_rows); i++) {
    const struct access_row *r = &access_rows[i];
    enum policy_access got =
        policy_control_access(r->peer_uid, r->agent_euid, r->reader);
    if (got != r->expect)
      fail_msg("%s: got %d, want %d", r->name, (int)got, (int)r->expect);
  }
}

struct verdict_row {
  enum policy_access access;
  const char *cmd;
  enum policy_verdict expect;
};

static const struct verdict_row verdict_rows[] = {
    {POLICY_ACCESS_CHANGE, "set", POLICY_ALLOW},
    {POLICY_ACCESS_CHANGE, "leave", POLICY_ALLOW},
    {POLICY_ACCESS_CHANGE, "reload", POLICY_ALLOW},
    {POLICY_ACCESS_CHANGE, "force-leave", POLICY_ALLOW},
    {POLICY_ACCESS_CHANGE, "revoke", POLICY_ALLOW},
    {POLICY_ACCESS_CHANGE, "status", POLICY_ALLOW},
    {POLICY_ACCESS_CHANGE, "no-such-command", POLICY_ALLOW},
    {POLICY_ACCESS_READ, "status", POLICY_ALLOW},
    {POLICY_ACCESS_READ, "peers", POLICY_ALLOW},
    {POLICY_ACCESS_READ, "watch", POLICY_ALLOW},
    {POLICY_ACCESS_READ, "metrics", POLICY_ALLOW},
    {POLICY_ACCESS_READ, "version", POLICY_ALLOW},
    {POLICY_ACCESS_READ, "set", POLICY_READ_ONLY},
    {POLICY_ACCESS_READ, "leave", POLICY_READ_ONLY},
    {POLICY_ACCESS_READ, "reload", POLICY_READ_ONLY},
    {POLICY_ACCESS_READ, "force-leave", POLICY_READ_ONLY},
    {POLICY_ACCESS_READ, "revoke", POLICY_READ_ONLY},
    {POLICY_ACCESS_READ, "no-such-command", POLICY_READ_ONLY},
    {POLICY_ACCESS_READ, "STATUS", POLICY_READ_ONLY},
    {POLICY_ACCESS_READ, "status ", POLICY_READ_ONLY},
    {POLICY_ACCESS_READ, "", POLICY_READ_ONLY},
    {POLICY_ACCESS_READ, NULL, POLICY_READ_ONLY},
    {POLICY_ACCESS_NONE, "status", POLICY_REFUSE},
    {POLICY_ACCESS_NONE, "set", POLICY_REFUSE},
    {POLICY_ACCESS_NONE, NULL, POLICY_REFUSE},
};

static void control_verdict_by_access_and_command(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(verdict_rows); i++) {
    const struct verdict_row *r = &verdict_rows[i];
    enum policy_verdict got = policy_control_allow(r->access, r->cmd);
    if (got != r->expect)
      fail_msg("row %zu (access %d, %s): got %d, want %d", i, (int)r->access,
               r->cmd != NULL ? r->cmd : "NULL", (int)got, (int)r->expect);
  }
}

/* ---- script trust ---- */

#define RUN_UID 1001u

struct trust_row {
  const char *name;
  uint32_t st_uid, st_mode, run_uid;
  bool is_dir;
  enum policy_script expect;
};

static const struct trust_row trust_rows[] = {
    {"root_owned_0755", 0, 0100755, RUN_UID, false, POLICY_SCRIPT_OK},
    {"run_as_user_owned_0700", RUN_UID, 0100700, RUN_UID, false,
     POLICY_SCRIPT_OK},
    {"another_users_file", 1002, 0100755, RUN_UID, false, POLICY_SCRIPT_OWNER},
    {"another_users_read_only_file", 1002, 0100500, RUN_UID, false,
     POLICY_SCRIPT_OWNER},
    {"group_writable", 0, 0100775, RUN_UID, false, POLICY_SCRIPT_GROUP_WRITE},
    {"world_writable", 0, 0100757, RUN_UID, false, POLICY_SCRIPT_OTHER_WRITE},
    {"world_and_group_writable_says_world", RUN_UID, 0100777, RUN_UID, false,
     POLICY_SCRIPT_OTHER_WRITE},
    {"sticky_file_is_no_exception", 0, 0101777, RUN_UID, false,
     POLICY_SCRIPT_OTHER_WRITE},
    {"root_dir_0755", 0, 040755, RUN_UID, true, POLICY_SCRIPT_OK},
    {"user_dir_0700", RUN_UID, 040700, RUN_UID, true, POLICY_SCRIPT_OK},
    {"root_sticky_dir_like_tmp", 0, 041777, RUN_UID, true, POLICY_SCRIPT_OK},
    {"user_sticky_dir_world_writable", RUN_UID, 041777, RUN_UID, true,
     POLICY_SCRIPT_OTHER_WRITE},
    {"group_writable_dir", 0, 040775, RUN_UID, true, POLICY_SCRIPT_GROUP_WRITE},
    {"another_users_dir", 1002, 040755, RUN_UID, true, POLICY_SCRIPT_OWNER},
    {"run_as_root_own_file", 0, 0100755, 0, false, POLICY_SCRIPT_OK},
    {"run_as_root_users_file", RUN_UID, 0100755, 0, false, POLICY_SCRIPT_OWNER},
};

static void script_trust_owner_and_write_bits(void **state) {
  for (size_t i = 0; i < ARRAY_SIZE(trust_rows); i++) {
    const struct trust_row *r = &trust_rows[i];
    enum policy_script got =
        policy_script_trust(r->st_uid, r->st_mode, r->run_uid, r->is_dir);
    if (got != r->expect)
      fail_msg("%s: got %d, want %d", r->name, (int)got, (int)r->expect);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(own_state_precedence),
      cmocka_unit_test(own_state_reason_truncated_to_limit),
      cmocka_unit_test(admission),
      cmocka_unit_test(admission_of_an_earlier_version),
      cmocka_unit_test(echo_note_table),
      cmocka_unit_test(clock_offset_is_sender_time_minus_ours),
      cmocka_unit_test(skew_warning_rate_limited_per_peer),
      cmocka_unit_test(lag_against_the_freshest_message),
      cmocka_unit_test(behind_when_most_messages_are_late),
      cmocka_unit_test(check_rise_and_fall),
      cmocka_unit_test(check_counts_consecutive_results),
      cmocka_unit_test(relay_hold_is_a_quarter_heartbeat_within_bounds),
      cmocka_unit_test(relay_interval_grows_with_members_to_the_hold),
      cmocka_unit_test(relay_credit),
      cmocka_unit_test(relay_burst_then_one_per_interval),
      cmocka_unit_test(relay_full_batches_owe_no_credit),
      cmocka_unit_test(relay_forwards_leaves_direct_records_only),
      cmocka_unit_test(relay_shares_cover_every_member_k_times),
      cmocka_unit_test(relay_shares_are_even_and_stable),
      cmocka_unit_test(relay_share_of_fewer_relays_is_a_superset),
      cmocka_unit_test(relay_passes_on_news_and_repeats_only_when_needed),
      cmocka_unit_test(relay_catches_up_one_member_alone_while_it_can),
      cmocka_unit_test(relay_pass_reads_the_message_and_the_entry),
      cmocka_unit_test(hello_gap_backs_off_and_stops_once_delivered),
      cmocka_unit_test(resync_backs_off_while_digests_differ),
      cmocka_unit_test(lists_ours_picks_one_side),
      cmocka_unit_test(lists_ours_is_one_sided),
      cmocka_unit_test(is_news_when_it_tells_something),
      cmocka_unit_test(after_record),
      cmocka_unit_test(relay_offers_no_list_to_a_relay),
      cmocka_unit_test(inc_bounds),
      cmocka_unit_test(start_inc),
      cmocka_unit_test(claims_about_this_node),
      cmocka_unit_test(refute_inc_outbids_and_saturates),
      cmocka_unit_test(sender_behind_what_we_hold),
      cmocka_unit_test(rival_the_agent_that_was_there_stays),
      cmocka_unit_test(rival_the_newcomer_stops),
      cmocka_unit_test(rival_a_one_off_claim_stops_nobody),
      cmocka_unit_test(rival_expires),
      cmocka_unit_test(sync_decides_when_the_view_can_be_trusted),
      cmocka_unit_test(control_access_from_credentials),
      cmocka_unit_test(control_verdict_by_access_and_command),
      cmocka_unit_test(script_trust_owner_and_write_bits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
