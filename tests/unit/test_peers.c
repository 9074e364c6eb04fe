/*
 * test_peers.c — the peer table's rules (agent/peers.c): merges of records
 * and member lists, the replay guard, lost/left/reap, and the digest.
 *
 * The merge rules are a table: each row is a case with a sequence of steps
 * (merge, member, tick, replay check), the result each step must return,
 * the exact sequence of events, and the table it must leave behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "peers.h"
#include "recpool.h"
#include "util.h"

#define SELF "me"
#define LOST_AFTER 1000
#define REAP_AFTER 5000
#define WALL 1700000000000

/* ---- fixture: a table whose events are written down as text ---- */

struct merge_case;

struct fixture {
  struct peers p;
  const struct merge_case *c; /* the row a table test runs; else NULL */
  char events[1024];          /* "type name state<previous;" per event */
  uint64_t seq;               /* of the verdicts' messages */
};

/* The table must be sorted and hold the event's peer whenever an event is
 * reported: events only come from a consistent table. */
static void assert_consistent(const struct peers *p, const struct peer *peer) {
  for (size_t i = 1; i < p->n; i++)
    assert_true(strcmp(p->v[i - 1]->rec->name, p->v[i]->rec->name) < 0);
  assert_ptr_equal(peers_find(p, peer->rec->name), peer);
}

static void on_event(void *arg, const struct peer_event *ev) {
  struct fixture *f = arg;
  size_t n = strlen(f->events);

  assert_consistent(&f->p, ev->peer);
  assert_int_equal(ev->time_ms, WALL);
  assert_string_equal(ev->reason, ev->peer->rec->reason);
  assert_string_equal(ev->state, peer_state(ev->peer));
  snprintf(f->events + n, sizeof(f->events) - n, "%s %s %s<%s;",
           peer_event_name(ev->type), ev->peer->rec->name, ev->state,
           ev->previous);
}

static int fixture_setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));

  if (f == NULL)
    return -1;
  f->c = *state;
  peers_init(&f->p, SELF, PEERS_MAX_DEFAULT, on_event, f);
  *state = f;
  return 0;
}

static int fixture_teardown(void **state) {
  struct fixture *f = *state;
  peers_free(&f->p);
  free(f);
  return 0;
}

/* "name:status:state:heard " per entry, in table order. */
static void dump(const struct peers *p, char *buf, size_t size) {
  static const char *const status[] = {"alive", "lost", "left"};
  size_t n = 0;

  buf[0] = '\0';
  for (size_t i = 0; i < p->n && n < size; i++) {
    const struct peer *e = p->v[i];
    n += (size_t)snprintf(buf + n, size - n, "%s%s:%s:%s:%d", i ? " " : "",
                          e->rec->name, status[e->status], peer_state(e),
                          e->heard ? 1 : 0);
  }
}

static void make_record(struct record *r, const char *name, uint64_t inc,
                        uint64_t ver, const char *state, bool left,
                        const char *data) {
  assert_int_equal(record_init(r), 0);
  snprintf(r->name, sizeof(r->name), "%s", name);
  snprintf(r->addr, sizeof(r->addr), "tcp://%s:7410", name);
  snprintf(r->state, sizeof(r->state), "%s", state);
  r->inc = inc;
  r->ver = ver;
  r->left = left;
  if (data != NULL)
    json_object_set_new(r->data, "k", json_string(data));
}

static enum peers_result direct(struct peers *p, const char *name, uint64_t inc,
                                uint64_t ver, const char *state, bool left,
                                const char *data, uint64_t now) {
  struct record r;
  struct peer *out = (struct peer *)&out; /* must be overwritten */
  enum peers_result res;

  make_record(&r, name, inc, ver, state, left, data);
  res = peers_merge_direct(p, &r, now, WALL, &out);
  if (res < 0)
    assert_null(out);
  record_free(&r);
  return res;
}

static enum peers_result member(struct peers *p, const char *name, uint64_t inc,
                                uint64_t ver, bool left, const char *addr,
                                uint64_t now) {
  struct wire_member m;
  struct peer *out = (struct peer *)&out;
  enum peers_result res;

  memset(&m, 0, sizeof(m));
  snprintf(m.name, sizeof(m.name), "%s", name);
  if (addr != NULL)
    snprintf(m.addr, sizeof(m.addr), "%s", addr);
  else
    snprintf(m.addr, sizeof(m.addr), "tcp://%s:7410", name);
  m.inc = inc;
  m.ver = ver;
  m.left = left;
  res = peers_merge_member(p, &m, now, WALL, &out);
  if (res < 0)
    assert_null(out);
  else if (res != PEERS_STALE)
    assert_ptr_equal(out, peers_find(p, name));
  return res;
}

/* ---- the merge rules, as a table ---- */

enum op { END, DIRECT, MEMBER, TICK, SEQ };

struct step {
  enum op op;
  const char *name;
  uint64_t inc, ver; /* SEQ: inc, seq */
  const char *state;
  bool left;
  const char *data; /* value of data key "k"; NULL: no data */
  uint64_t t;       /* monotonic ms */
  int expect;       /* the merge result, or SEQ's verdict (0/1) */
};

#define D(n, i, v, s, t, r)                                                    \
  { DIRECT, n, i, v, s, false, NULL, t, r }
#define DK(n, i, v, s, k, t, r)                                                \
  { DIRECT, n, i, v, s, false, k, t, r }
#define DL(n, i, v, s, t, r)                                                   \
  { DIRECT, n, i, v, s, true, NULL, t, r }
#define M(n, i, v, t, r)                                                       \
  { MEMBER, n, i, v, NULL, false, NULL, t, r }
#define ML(n, i, v, t, r)                                                      \
  { MEMBER, n, i, v, NULL, true, NULL, t, r }
#define T(t)                                                                   \
  { TICK, NULL, 0, 0, NULL, false, NULL, t, 0 }
#define S(n, i, q, ok)                                                         \
  { SEQ, n, i, q, NULL, false, NULL, 0, ok }

struct merge_case {
  const char *name;
  struct step steps[12];
  const char *events;
  const char *table;
};

static const struct merge_case cases[] = {
    {"peers_report_a_new_node_as_joined",
     {D("a", 1, 1, "ready", 0, PEERS_NEW)},
     "joined a ready<;",
     "a:alive:ready:1"},
    {"peers_report_a_newer_state_with_the_previous_one",
     {D("a", 1, 1, "ready", 0, PEERS_NEW),
      D("a", 1, 2, "busy", 10, PEERS_UPDATED)},
     "joined a ready<;state a busy<ready;",
     "a:alive:busy:1"},
    {"peers_ignore_a_duplicate_record",
     {D("a", 1, 1, "ready", 0, PEERS_NEW),
      D("a", 1, 1, "ready", 10, PEERS_UPDATED)},
     "joined a ready<;",
     "a:alive:ready:1"},
    {"peers_ignore_a_reordered_older_record",
     {D("a", 1, 1, "ready", 0, PEERS_NEW),
      D("a", 1, 3, "busy", 1, PEERS_UPDATED),
      D("a", 1, 2, "maintenance", 2, PEERS_STALE)},
     "joined a ready<;state a busy<ready;",
     "a:alive:busy:1"},
    {"peers_report_a_data_change",
     {DK("a", 1, 1, "ready", "x", 0, PEERS_NEW),
      DK("a", 1, 2, "ready", "y", 1, PEERS_UPDATED),
      DK("a", 1, 3, "ready", "y", 2, PEERS_UPDATED)},
     "joined a ready<;data a ready<ready;",
     "a:alive:ready:1"},
    {"peers_report_state_then_data_when_both_change",
     {DK("a", 1, 1, "ready", "x", 0, PEERS_NEW),
      DK("a", 1, 2, "busy", NULL, 1, PEERS_UPDATED)},
     "joined a ready<;state a busy<ready;data a busy<ready;",
     "a:alive:busy:1"},
    {"peers_let_an_incarnation_bump_beat_a_higher_version",
     {D("a", 1, 9, "busy", 0, PEERS_NEW),
      D("a", 2, 1, "ready", 1, PEERS_UPDATED),
      D("a", 1, 10, "maintenance", 2, PEERS_STALE)},
     "joined a busy<;state a ready<busy;",
     "a:alive:ready:1"},
    {"peers_refuse_a_replayed_seq",
     {S("a", 1, 1, 1), D("a", 1, 1, "ready", 0, PEERS_NEW), S("a", 1, 1, 1),
      S("a", 1, 1, 0), S("a", 1, 2, 1), S("a", 1, 1, 0), S("a", 1, 2, 0)},
     "joined a ready<;",
     "a:alive:ready:1"},
    {"peers_accept_a_restart_with_a_higher_incarnation_and_reset_seq",
     {D("a", 1, 1, "ready", 0, PEERS_NEW), S("a", 1, 5, 1), S("a", 2, 1, 1),
      S("a", 1, 9, 0), S("a", 2, 1, 0), S("a", 2, 2, 1),
      D("a", 2, 1, "ready", 1, PEERS_UPDATED)},
     "joined a ready<;",
     "a:alive:ready:1"},
    {"peers_let_unknown_nodes_pass_the_replay_guard_unrecorded",
     {S("a", 1, 1, 1), S("a", 1, 1, 1)},
     "",
     ""},
    {"peers_mark_a_silent_node_lost_once",
     {D("a", 1, 1, "ready", 0, PEERS_NEW), T(999), T(1000), T(1500)},
     "joined a ready<;lost a lost<ready;",
     "a:lost:lost:1"},
    {"peers_revive_a_lost_node_on_a_heartbeat",
     {D("a", 1, 1, "ready", 0, PEERS_NEW), T(1000),
      D("a", 1, 1, "ready", 1200, PEERS_UPDATED), T(2199)},
     "joined a ready<;lost a lost<ready;joined a ready<lost;",
     "a:alive:ready:1"},
    {"peers_revive_a_lost_node_on_a_newer_record",
     {D("a", 1, 1, "ready", 0, PEERS_NEW), T(1000),
      D("a", 1, 2, "busy", 1200, PEERS_UPDATED)},
     "joined a ready<;lost a lost<ready;joined a busy<lost;state a busy<ready;",
     "a:alive:busy:1"},
    {"peers_mark_a_node_left_on_its_leave_and_never_lost",
     {D("a", 1, 1, "ready", 0, PEERS_NEW),
      DL("a", 1, 2, "ready", 100, PEERS_UPDATED), T(1500),
      DL("a", 1, 2, "ready", 1600, PEERS_STALE),
      D("a", 1, 1, "ready", 1700, PEERS_STALE), T(4000)},
     "joined a ready<;left a left<ready;",
     "a:left:left:1"},
    {"peers_mark_a_lost_node_left_on_its_leave",
     {D("a", 1, 1, "ready", 0, PEERS_NEW), T(1000),
      DL("a", 1, 2, "ready", 1100, PEERS_UPDATED)},
     "joined a ready<;lost a lost<ready;left a left<lost;",
     "a:left:left:1"},
    {"peers_welcome_back_a_left_node_with_a_new_incarnation",
     {D("a", 1, 1, "ready", 0, PEERS_NEW),
      DL("a", 1, 2, "ready", 1, PEERS_UPDATED),
      D("a", 2, 1, "ready", 2, PEERS_UPDATED)},
     "joined a ready<;left a left<ready;joined a ready<left;",
     "a:alive:ready:1"},
    {"peers_spread_left_from_a_member_list",
     {D("a", 1, 1, "ready", 0, PEERS_NEW), ML("a", 1, 2, 10, PEERS_UPDATED),
      ML("a", 1, 2, 20, PEERS_STALE), D("a", 1, 2, "ready", 30, PEERS_STALE),
      T(2000)},
     "joined a ready<;left a left<ready;",
     "a:left:left:1"},
    {"peers_ignore_an_older_leave_in_a_member_list",
     {D("a", 1, 3, "ready", 0, PEERS_NEW), ML("a", 1, 2, 10, PEERS_STALE)},
     "joined a ready<;",
     "a:alive:ready:1"},
    {"peers_never_take_state_from_a_member_list",
     {D("a", 1, 1, "ready", 0, PEERS_NEW), M("a", 1, 5, 10, PEERS_STALE),
      D("a", 1, 2, "busy", 20, PEERS_UPDATED)},
     "joined a ready<;state a busy<ready;",
     "a:alive:busy:1"},
    {"peers_reap_lost_and_left_nodes_after_reap_after",
     {D("a", 1, 1, "ready", 0, PEERS_NEW), D("b", 1, 1, "ready", 0, PEERS_NEW),
      DL("b", 1, 2, "ready", 100, PEERS_UPDATED), T(1000), T(5099), T(5100),
      T(5999), T(6000)},
     "joined a ready<;joined b ready<;left b left<ready;lost a lost<ready;"
     "reaped b left<;reaped a lost<;",
     ""},
    {"peers_refuse_a_record_or_member_naming_this_node",
     {D(SELF, 1, 1, "ready", 0, PEERS_SELF), M(SELF, 1, 1, 0, PEERS_SELF),
      S(SELF, 1, 1, 1)},
     "",
     ""},
    {"peers_do_not_add_a_stranger_that_already_left",
     {DL("a", 1, 1, "ready", 0, PEERS_STALE), ML("b", 1, 1, 0, PEERS_STALE)},
     "",
     ""},
    {"peers_add_a_listed_member_unheard_and_silently",
     {M("a", 1, 4, 0, PEERS_NEW), M("a", 1, 4, 5, PEERS_STALE)},
     "",
     "a:alive::0"},
    {"peers_report_a_listed_member_joined_on_its_first_record",
     {M("a", 1, 4, 0, PEERS_NEW), D("a", 1, 4, "ready", 10, PEERS_UPDATED),
      D("a", 1, 4, "ready", 20, PEERS_UPDATED)},
     "joined a ready<;",
     "a:alive:ready:1"},
    {"peers_ignore_a_record_older_than_the_listed_stamp",
     {M("a", 2, 1, 0, PEERS_NEW), D("a", 1, 7, "ready", 10, PEERS_STALE)},
     "",
     "a:alive::0"},
    {"peers_lose_and_reap_an_unheard_member_without_events",
     {M("a", 1, 1, 0, PEERS_NEW), T(1000), T(6000)},
     "reaped a lost<;",
     ""},
    {"peers_mark_an_unheard_member_left_silently",
     {M("a", 1, 1, 0, PEERS_NEW), ML("a", 1, 2, 10, PEERS_UPDATED),
      DL("a", 1, 2, "ready", 20, PEERS_UPDATED)},
     "",
     "a:left:left:0"},
};

/* The counts the table keeps as it changes (peers_live(), p->marked) are
 * what a pass over it finds. */
static void check_counts(const struct peers *p) {
  size_t heard = 0, unheard = 0, marked = 0, h, u;
  for (size_t k = 0; k < p->n; k++) {
    const struct peer *peer = p->v[k];
    marked += peer->lost_by != 0;
    if (peer->status != PEER_ALIVE || peer->rec->left)
      continue;
    heard += peer->heard;
    unheard += !peer->heard;
  }
  peers_live(p, &h, &u);
  assert_int_equal(h, heard);
  assert_int_equal(u, unheard);
  assert_int_equal(p->marked, marked);
  /* The records digests, kept as the table changes, are what a pass
   * over it gives (an XOR of each counted entry's stamp, per slot
   * without what that relay holds lost). */
  for (int slot = -1; slot < PEERS_RELAYS_MAX; slot++) {
    uint64_t want = 0;
    for (size_t k = 0; k < p->n; k++) {
      const struct peer *peer = p->v[k];
      if (!peer->heard || peer->rec->left || peer->status != PEER_ALIVE ||
          (slot >= 0 && (peer->lost_by & (1u << slot))))
        continue;
      want ^= peers_records_digest(&(struct peers){.rdig = {0}}, peer->rec, -1);
    }
    assert_true(
        peers_records_digest((struct peers *)(uintptr_t)p, NULL, slot) == want);
  }
  /* The view digest, kept until something it covers changes, is what a
   * pass over the table gives. */
  {
    struct peers *q = (struct peers *)(uintptr_t)p;
    uint64_t kept = peers_digest(q, NULL);
    q->digest_valid = false;
    assert_true(peers_digest(q, NULL) == kept);
  }
}

static void run_step(struct fixture *f, const struct step *s) {
  switch (s->op) {
  case DIRECT:
    assert_int_equal(direct(&f->p, s->name, s->inc, s->ver, s->state, s->left,
                            s->data, s->t),
                     s->expect);
    break;
  case MEMBER:
    assert_int_equal(
        member(&f->p, s->name, s->inc, s->ver, s->left, NULL, s->t), s->expect);
    break;
  case TICK:
    (void)peers_tick(&f->p, s->t, WALL, LOST_AFTER, REAP_AFTER);
    break;
  case SEQ:
    assert_int_equal(peers_accept_seq(&f->p, s->name, s->inc, s->ver),
                     s->expect);
    break;
  case END:
    break;
  }
}

static void run_case(void **state) {
  struct fixture *f = *state;
  const struct merge_case *c = f->c;
  char table[512];

  for (size_t i = 0; i < ARRAY_SIZE(c->steps) && c->steps[i].op != END; i++) {
    run_step(f, &c->steps[i]);
    check_counts(&f->p);
  }
  assert_string_equal(f->events, c->events);
  dump(&f->p, table, sizeof(table));
  assert_string_equal(table, c->table);
}

/* ---- relays' verdicts, as a table ---- */

/* A covered table (this agent is not a relay) with relays r1, r2 and
 * leaves a, b, all heard at t=0: each row is what happens next, and the
 * events and table it must leave. Verdict lists are "name:inc:ver,..". */
enum vop { V_END, V_LEAF, V_RELAY, V_SAY, V_SAYALL, V_TICK, V_REC };

struct vstep {
  enum vop op;
  const char *name; /* the leaf or relay; V_SAY: the relay */
  const char *list; /* V_SAY: the verdicts */
  uint64_t ver;     /* V_REC: the leaf's version */
  uint64_t t;
};

struct verdict_case {
  const char *name;
  bool relay_table; /* the table is a relay's: not covered */
  struct vstep steps[10];
  const char *events; /* after the set-up's joins */
  const char *table;
};

static const struct verdict_case verdict_cases[] = {
    {"verdicts_of_one_relay_of_two_leave_a_leaf_alive",
     false,
     {{V_SAY, "r1", "a:1:1", 0, 10}},
     "",
     "a:alive:ready:1 b:alive:ready:1 r1:alive:ready:1 r2:alive:ready:1"},
    {"verdicts_of_every_live_relay_make_a_leaf_lost",
     false,
     {{V_SAY, "r1", "a:1:1", 0, 10}, {V_SAY, "r2", "a:1:1", 0, 20}},
     "lost a lost<ready;",
     "a:lost:lost:1 b:alive:ready:1 r1:alive:ready:1 r2:alive:ready:1"},
    {"a_relay_lost_leaves_the_verdicts_of_the_others",
     false,
     {{V_SAY, "r1", "a:1:1", 0, 10},
      {V_RELAY, "r1", NULL, 0, 900},
      {V_LEAF, "b", NULL, 0, 900},
      {V_TICK, NULL, NULL, 0, 1100}},
     "lost r2 lost<ready;lost a lost<ready;",
     "a:lost:lost:1 b:alive:ready:1 r1:alive:ready:1 r2:lost:lost:1"},
    {"a_quiet_leaf_stays_alive_while_a_relay_is_heard",
     false,
     {{V_RELAY, "r1", NULL, 0, 900},
      {V_RELAY, "r2", NULL, 0, 900},
      {V_RELAY, "r1", NULL, 0, 1800},
      {V_RELAY, "r2", NULL, 0, 1800},
      {V_TICK, NULL, NULL, 0, 2500}},
     "",
     "a:alive:ready:1 b:alive:ready:1 r1:alive:ready:1 r2:alive:ready:1"},
    {"leaves_go_silent_with_the_last_relay",
     false,
     {{V_RELAY, "r1", NULL, 0, 500},
      {V_TICK, NULL, NULL, 0, 1100},
      {V_TICK, NULL, NULL, 0, 1500}},
     "lost r2 lost<ready;lost r1 lost<ready;lost a lost<ready;lost b "
     "lost<ready;",
     "a:lost:lost:1 b:lost:lost:1 r1:lost:lost:1 r2:lost:lost:1"},
    {"the_leaf_itself_revives_it_and_clears_the_verdicts",
     false,
     {{V_SAY, "r1", "a:1:1", 0, 10},
      {V_SAY, "r2", "a:1:1", 0, 20},
      {V_LEAF, "a", NULL, 0, 30},
      {V_SAY, "r1", "a:1:1", 0, 40}},
     "lost a lost<ready;joined a ready<lost;",
     "a:alive:ready:1 b:alive:ready:1 r1:alive:ready:1 r2:alive:ready:1"},
    {"a_verdict_on_an_older_record_is_ignored",
     false,
     {{V_REC, "a", NULL, 2, 5},
      {V_SAY, "r1", "a:1:1", 0, 10},
      {V_SAY, "r2", "a:1:1", 0, 20}},
     "",
     "a:alive:ready:1 b:alive:ready:1 r1:alive:ready:1 r2:alive:ready:1"},
    {"a_complete_list_withdraws_what_it_no_longer_names",
     false,
     {{V_SAYALL, "r1", "a:1:1", 0, 10},
      {V_SAYALL, "r1", "b:1:1", 0, 20},
      {V_SAY, "r2", "a:1:1", 0, 30}},
     "",
     "a:alive:ready:1 b:alive:ready:1 r1:alive:ready:1 r2:alive:ready:1"},
    {"an_incomplete_list_withdraws_nothing",
     false,
     {{V_SAY, "r1", "a:1:1", 0, 10},
      {V_SAY, "r1", "b:1:1", 0, 20},
      {V_SAY, "r2", "a:1:1", 0, 30}},
     "lost a lost<ready;",
     "a:lost:lost:1 b:alive:ready:1 r1:alive:ready:1 r2:alive:ready:1"},
    {"verdicts_on_a_relay_or_an_unknown_name_change_nothing",
     false,
     {{V_SAY, "r1", "r2:1:1,zz:1:1", 0, 10},
      {V_SAY, "r2", "r2:1:1,zz:1:1", 0, 20}},
     "",
     "a:alive:ready:1 b:alive:ready:1 r1:alive:ready:1 r2:alive:ready:1"},
    {"a_relay_table_ignores_verdicts_and_times_silence",
     true,
     {{V_SAY, "r1", "a:1:1", 0, 10},
      {V_SAY, "r2", "a:1:1", 0, 20},
      {V_RELAY, "r1", NULL, 0, 900},
      {V_RELAY, "r2", NULL, 0, 900},
      {V_LEAF, "b", NULL, 0, 900},
      {V_TICK, NULL, NULL, 0, 1100}},
     "lost a lost<ready;",
     "a:lost:lost:1 b:alive:ready:1 r1:alive:ready:1 r2:alive:ready:1"},
};

static void heard_as(struct fixture *f, const char *name, uint64_t ver,
                     bool relay, uint64_t t) {
  struct record r;
  struct peer *peer = NULL;

  make_record(&r, name, 1, ver, "ready", false, NULL);
  assert_true(peers_merge_direct(&f->p, &r, t, WALL, &peer) >= 0);
  record_free(&r);
  assert_non_null(peer);
  peers_note_roles(&f->p, peer, !relay, relay, t);
}

/* "name:inc:ver,..." into v; returns the count. */
static size_t parse_verdicts(const char *list, struct wire_lost *v) {
  char buf[256], *save = NULL;
  size_t n = 0;

  snprintf(buf, sizeof(buf), "%s", list);
  for (char *tok = strtok_r(buf, ",", &save); tok != NULL && n < WIRE_LOST_MAX;
       tok = strtok_r(NULL, ",", &save)) {
    unsigned long long inc = 0, ver = 0;
    char name[65];
    assert_int_equal(sscanf(tok, "%64[^:]:%llu:%llu", name, &inc, &ver), 3);
    snprintf(v[n].name, sizeof(v[n].name), "%s", name);
    v[n].inc = inc;
    v[n].ver = ver;
    n++;
  }
  return n;
}

static void run_verdict_case(void **state) {
  struct fixture *f = *state;
  const struct verdict_case *c = (const void *)f->c;
  char table[512];

  peers_set_timing(&f->p, 0, LOST_AFTER, REAP_AFTER);
  peers_set_covered(&f->p, !c->relay_table);
  heard_as(f, "r1", 1, true, 0);
  heard_as(f, "r2", 1, true, 0);
  heard_as(f, "a", 1, false, 0);
  heard_as(f, "b", 1, false, 0);
  f->events[0] = '\0';
  for (size_t i = 0; i < ARRAY_SIZE(c->steps) && c->steps[i].op != V_END; i++) {
    const struct vstep *s = &c->steps[i];
    struct wire_lost v[WIRE_LOST_MAX];
    size_t n;
    switch (s->op) {
    case V_LEAF:
      heard_as(f, s->name, 1, false, s->t);
      break;
    case V_REC:
      heard_as(f, s->name, s->ver, false, s->t);
      break;
    case V_RELAY:
      heard_as(f, s->name, 1, true, s->t);
      break;
    case V_SAY:
    case V_SAYALL:
      n = parse_verdicts(s->list, v);
      (void)peers_relay_verdicts(&f->p, s->name, 1, ++f->seq, v, n,
                                 s->op == V_SAYALL, s->t, WALL);
      break;
    case V_TICK:
      (void)peers_tick(&f->p, s->t, WALL, LOST_AFTER, REAP_AFTER);
      break;
    case V_END:
      break;
    }
    check_counts(&f->p);
  }
  assert_string_equal(f->events, c->events);
  dump(&f->p, table, sizeof(table));
  assert_string_equal(table, c->table);
}

/* What a relay says: the leaves it holds lost, newest first, at most
 * max, and how many in all; relays and mesh members are not listed. */
static void peers_verdicts_list_lost_leaves_newest_first(void **state) {
  struct fixture *f = *state;
  struct wire_lost v[WIRE_LOST_MAX];
  uint32_t total = 0;
  const char *names[] = {"a", "b", "c", "d"};

  peers_set_timing(&f->p, 0, LOST_AFTER, REAP_AFTER);
  heard_as(f, "r9", 1, true, 0);
  assert_int_equal(direct(&f->p, "m", 1, 1, "ready", false, NULL, 0),
                   PEERS_NEW);
  for (size_t i = 0; i < ARRAY_SIZE(names); i++)
    heard_as(f, names[i], 1, false, 0);
  /* c, a, d, b go lost at 1000, 1100, 1200, 1300 (the others heard). */
  const char *order[] = {"c", "a", "d", "b"};
  for (size_t k = 0; k < 4; k++) {
    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
      bool gone = false;
      for (size_t j = 0; j <= k; j++)
        gone |= strcmp(names[i], order[j]) == 0;
      if (!gone)
        heard_as(f, names[i], 1, false, 100 * k + 1);
    }
    heard_as(f, "r9", 1, true, 100 * k + 1);
    assert_int_equal(
        direct(&f->p, "m", 1, 1, "ready", false, NULL, 100 * k + 1),
        PEERS_UPDATED);
    (void)peers_tick(&f->p, 1000 + 100 * k, WALL, LOST_AFTER, REAP_AFTER);
  }
  assert_int_equal(peers_verdicts(&f->p, v, WIRE_LOST_MAX, &total), 4);
  assert_int_equal(total, 4);
  assert_string_equal(v[0].name, "b");
  assert_string_equal(v[1].name, "d");
  assert_string_equal(v[2].name, "a");
  assert_string_equal(v[3].name, "c");
  assert_int_equal(peers_verdicts(&f->p, v, 2, &total), 2);
  assert_int_equal(total, 4);
  assert_string_equal(v[0].name, "b");
  assert_string_equal(v[1].name, "d");
}

/* The relays alive, for shares: relays only, alive only, one left out
 * on request. */
static void peers_relays_alive_lists_the_live_relays(void **state) {
  struct fixture *f = *state;
  const char *names[PEERS_RELAYS_MAX];
  const struct peer *r2;

  peers_set_timing(&f->p, 0, LOST_AFTER, REAP_AFTER);
  assert_int_equal(peers_relays_alive(&f->p, NULL, names), 0);
  heard_as(f, "r1", 1, true, 0);
  heard_as(f, "r2", 1, true, 0);
  heard_as(f, "r3", 1, true, 0);
  heard_as(f, "a", 1, false, 0);
  assert_int_equal(peers_relays_alive(&f->p, NULL, names), 3);
  r2 = peers_find(&f->p, "r2");
  assert_int_equal(peers_relays_alive(&f->p, r2, names), 2);
  for (size_t i = 0; i < 2; i++)
    assert_string_not_equal(names[i], "r2");
  assert_int_equal(peers_force_lost(&f->p, "r3", 10, WALL), 0);
  assert_int_equal(peers_relays_alive(&f->p, NULL, names), 2);
  assert_int_equal(peers_relays_alive(&f->p, r2, names), 1);
  assert_string_equal(names[0], "r1");
  /* a relay that says it is no longer one */
  heard_as(f, "r1", 2, false, 20);
  assert_int_equal(peers_relays_alive(&f->p, NULL, names), 1);
  assert_string_equal(names[0], "r2");
}

/* The records digest: a relay's own equals a member's for that relay
 * when they hold the same records, leaving out what the relay holds
 * lost; any version apart makes them differ; the cache follows. */
static void peers_records_digest_matches_the_relays_view(void **state) {
  struct fixture *f = *state;
  struct peers relay;
  struct record self_m, self_r;
  struct wire_lost v[1], v2[2];
  int slot;
  uint64_t d;

  peers_init(&relay, "r1", PEERS_MAX_DEFAULT, NULL, NULL);
  peers_set_timing(&relay, 0, LOST_AFTER, REAP_AFTER);
  peers_set_timing(&f->p, 0, LOST_AFTER, REAP_AFTER);
  peers_set_covered(&f->p, true);
  make_record(&self_m, SELF, 1, 1, "ready", false, NULL);
  make_record(&self_r, "r1", 1, 1, "ready", false, NULL);
  /* The member knows r1, a, b; the relay knows me, a, b, and holds b
   * lost. */
  heard_as(f, "r1", 1, true, 0);
  heard_as(f, "a", 1, false, 0);
  heard_as(f, "b", 1, false, 0);
  assert_int_equal(direct(&relay, SELF, 1, 1, "ready", false, NULL, 0),
                   PEERS_NEW);
  assert_int_equal(direct(&relay, "a", 1, 1, "ready", false, NULL, 0),
                   PEERS_NEW);
  assert_int_equal(direct(&relay, "b", 1, 1, "ready", false, NULL, 0),
                   PEERS_NEW);
  slot = peers_relay_slot(&f->p, "r1");
  assert_true(slot >= 0);
  assert_int_equal(peers_force_lost(&relay, "b", 10, WALL), 0);
  d = peers_records_digest(&relay, &self_r, -1);
  assert_true(peers_records_digest(&f->p, &self_m, slot) != d);
  parse_verdicts("b:1:1", v);
  (void)peers_relay_verdicts(&f->p, "r1", 1, 1, v, 1, true, 20, WALL);
  assert_true(peers_records_digest(&f->p, &self_m, slot) == d);
  /* b is still alive here (one relay of one: lost, in fact) */
  /* A newer version of a on one side only. */
  assert_int_equal(direct(&relay, "a", 1, 2, "busy", false, NULL, 30),
                   PEERS_UPDATED);
  assert_true(peers_records_digest(&relay, &self_r, -1) != d);
  assert_true(peers_records_digest(&f->p, &self_m, slot) == d);
  heard_as(f, "a", 2, false, 40);
  assert_true(peers_records_digest(&f->p, &self_m, slot) ==
              peers_records_digest(&relay, &self_r, -1));
  /* The relay can't hear me and says so: my digest for it leaves me out
   * (no resync would mend that), until a complete list no longer names
   * me. */
  assert_int_equal(peers_force_lost(&relay, SELF, 50, WALL), 0);
  d = peers_records_digest(&relay, &self_r, -1);
  assert_true(peers_records_digest(&f->p, &self_m, slot) != d);
  parse_verdicts("b:1:1,me:1:1", v2);
  (void)peers_relay_verdicts(&f->p, "r1", 1, 2, v2, 2, true, 60, WALL);
  assert_true(peers_records_digest(&f->p, &self_m, slot) == d);
  (void)peers_relay_verdicts(&f->p, "r1", 1, 3, v2, 1, true, 70, WALL);
  assert_true(peers_records_digest(&f->p, &self_m, slot) != d);
  record_free(&self_m);
  record_free(&self_r);
  peers_free(&relay);
}

/* A relay passes every heartbeat on while a member alive speaks an
 * earlier minor; members whose versions were not heard yet, and members
 * lost or left, don't count. */
static void peers_all_speak_ignores_the_unheard_and_the_gone(void **state) {
  struct fixture *f = *state;
  struct peer *a, *b;

  assert_true(peers_all_speak(&f->p, 2));
  heard_as(f, "a", 1, false, 0);
  heard_as(f, "b", 1, false, 0);
  a = peers_find(&f->p, "a");
  b = peers_find(&f->p, "b");
  assert_true(peers_all_speak(&f->p, 2)); /* versions not heard yet */
  a->version_heard = b->version_heard = true;
  a->proto = 2;
  b->proto = 1;
  assert_false(peers_all_speak(&f->p, 2));
  assert_true(peers_all_speak(&f->p, 1));
  assert_int_equal(peers_force_lost(&f->p, "b", 10, WALL), 0);
  assert_true(peers_all_speak(&f->p, 2));
}

/* ---- rules outside the table ---- */

static void peers_refuse_a_new_node_when_full(void **state) {
  struct fixture *f = *state;

  peers_free(&f->p);
  peers_init(&f->p, SELF, 2, on_event, f);
  assert_int_equal(direct(&f->p, "a", 1, 1, "ready", false, NULL, 0),
                   PEERS_NEW);
  assert_int_equal(direct(&f->p, "b", 1, 1, "ready", false, NULL, 0),
                   PEERS_NEW);
  assert_int_equal(direct(&f->p, "c", 1, 1, "ready", false, NULL, 0),
                   PEERS_FULL);
  assert_int_equal(member(&f->p, "d", 1, 1, false, NULL, 0), PEERS_FULL);
  /* Known nodes still update. */
  assert_int_equal(direct(&f->p, "a", 1, 2, "busy", false, NULL, 1),
                   PEERS_UPDATED);
  assert_int_equal(f->p.n, 2);
  assert_null(peers_find(&f->p, "c"));
  assert_string_equal(f->events,
                      "joined a ready<;joined b ready<;state a busy<ready;");
}

/* The memory budget: a key holder who forges many nodes with large data
 * can't grow the table past it; what it would take is refused and
 * counted, what shrinks or keeps an entry's size is always taken, and
 * reaping gives the bytes back. */
static void peers_refuse_what_would_pass_the_memory_budget(void **state) {
  struct fixture *f = *state;
  char big[CHOREO_DATA_VALUE_MAX + 1];
  struct record r;
  size_t small, large;

  memset(big, 'x', CHOREO_DATA_VALUE_MAX);
  big[CHOREO_DATA_VALUE_MAX] = '\0';
  make_record(&r, "a", 1, 1, "ready", false, "v");
  small = peers_entry_bytes(&r);
  record_free(&r);
  make_record(&r, "a", 1, 1, "ready", false, big);
  large = peers_entry_bytes(&r);
  record_free(&r);
  assert_true(large >= small + CHOREO_DATA_VALUE_MAX - 1);
  assert_int_equal(f->p.bytes_max, PEERS_BYTES_MAX_DEFAULT);

  /* Room for two small entries and not one more byte. */
  peers_set_budget(&f->p, 2 * small);
  assert_int_equal(direct(&f->p, "a", 1, 1, "ready", false, "v", 0), PEERS_NEW);
  assert_int_equal(direct(&f->p, "b", 1, 1, "ready", false, "v", 0), PEERS_NEW);
  assert_int_equal(f->p.bytes, 2 * small);
  assert_int_equal(direct(&f->p, "c", 1, 1, "ready", false, "v", 0),
                   PEERS_OVER_BUDGET);
  assert_null(peers_find(&f->p, "c"));
  assert_int_equal(member(&f->p, "d", 1, 1, false, NULL, 0), PEERS_OVER_BUDGET);
  /* A larger record of a known node is refused: its entry stays. */
  assert_int_equal(direct(&f->p, "a", 1, 2, "busy", false, big, 1),
                   PEERS_OVER_BUDGET);
  assert_string_equal(peers_find(&f->p, "a")->rec->state, "ready");
  assert_int_equal(f->p.budget_drops, 3);
  /* One of the same size is taken. */
  assert_int_equal(direct(&f->p, "a", 1, 3, "busy", false, "w", 2),
                   PEERS_UPDATED);
  assert_int_equal(f->p.bytes, 2 * small);
  assert_string_equal(f->events,
                      "joined a ready<;joined b ready<;state a busy<ready;"
                      "data a busy<ready;");
  f->events[0] = '\0';

  /* Forgetting a node gives its bytes back. */
  peers_set_timing(&f->p, 0, LOST_AFTER, REAP_AFTER);
  (void)peers_tick(&f->p, 10 + LOST_AFTER, WALL, LOST_AFTER, REAP_AFTER);
  assert_int_equal(f->p.bytes, 2 * small);
  (void)peers_tick(&f->p, 20 + LOST_AFTER + REAP_AFTER, WALL, LOST_AFTER,
                   REAP_AFTER);
  assert_int_equal(f->p.n, 0);
  assert_int_equal(f->p.bytes, 0);
}

/* A shrinking record is taken even when the table is over a budget that
 * was lowered under it. */
static void peers_take_a_smaller_record_over_the_budget(void **state) {
  struct fixture *f = *state;

  assert_int_equal(direct(&f->p, "a", 1, 1, "ready", false, "long value", 0),
                   PEERS_NEW);
  peers_set_budget(&f->p, 1);
  assert_int_equal(direct(&f->p, "a", 1, 2, "busy", false, "v", 1),
                   PEERS_UPDATED);
  assert_int_equal(direct(&f->p, "a", 1, 3, "busy", false, "longer value", 2),
                   PEERS_OVER_BUDGET);
  assert_int_equal(f->p.budget_drops, 1);
}

static enum peers_result direct_groups(struct peers *p, uint64_t ver,
                                       const char *state, size_t ngroups,
                                       const char *const *groups) {
  struct record r;
  enum peers_result res;

  make_record(&r, "a", 1, ver, state, false, NULL);
  for (size_t i = 0; i < ngroups; i++)
    snprintf(r.groups[i], sizeof(r.groups[i]), "%s", groups[i]);
  r.ngroups = ngroups;
  res = peers_merge_direct(p, &r, ver, WALL, NULL);
  record_free(&r);
  return res;
}

/* Groups decide who watches a node: their change must be reported even
 * when nothing else changed (as "data": the documented events have no other
 * name). */
static void peers_report_a_groups_change_as_data(void **state) {
  struct fixture *f = *state;
  const char *const db[] = {"db"}, *const db_web[] = {"db", "web"},
                    *const web_db[] = {"web", "db"};

  assert_int_equal(direct_groups(&f->p, 1, "ready", 1, db), PEERS_NEW);
  assert_int_equal(direct_groups(&f->p, 2, "ready", 1, db), PEERS_UPDATED);
  assert_int_equal(direct_groups(&f->p, 3, "ready", 2, db_web), PEERS_UPDATED);
  assert_int_equal(direct_groups(&f->p, 4, "ready", 2, web_db), PEERS_UPDATED);
  assert_int_equal(direct_groups(&f->p, 5, "busy", 0, NULL), PEERS_UPDATED);
  assert_string_equal(f->events, "joined a ready<;data a ready<ready;"
                                 "data a ready<ready;state a busy<ready;"
                                 "data a busy<ready;");
}

static void peers_cap_nodes_only_heard_of(void **state) {
  struct fixture *f = *state;
  char name[16];

  for (unsigned i = 0; i < PEERS_UNHEARD_MAX; i++) {
    snprintf(name, sizeof(name), "bogus%u", i);
    assert_int_equal(member(&f->p, name, 1, 1, false, NULL, 0), PEERS_NEW);
  }
  assert_int_equal(member(&f->p, "onemore", 1, 1, false, NULL, 0), PEERS_FULL);
  /* A node heard from directly is not held back by the cap. */
  assert_int_equal(direct(&f->p, "real", 1, 1, "ready", false, NULL, 0),
                   PEERS_NEW);
  /* Hearing from a listed node frees its place. */
  assert_int_equal(direct(&f->p, "bogus0", 1, 1, "ready", false, NULL, 0),
                   PEERS_UPDATED);
  assert_int_equal(f->p.unheard, PEERS_UNHEARD_MAX - 1);
  assert_int_equal(member(&f->p, "onemore", 1, 1, false, NULL, 0), PEERS_NEW);
}

static void peers_forget_silent_nodes_never_heard_from(void **state) {
  struct fixture *f = *state;

  assert_int_equal(member(&f->p, "ghost", 1, 1, false, NULL, 0), PEERS_NEW);
  assert_int_equal(direct(&f->p, "real", 1, 1, "ready", false, NULL, 0),
                   PEERS_NEW);
  f->events[0] = '\0';
  (void)peers_tick(&f->p, 5000, WALL, 5000, 86400000);
  /* The ghost goes at once, silently but for the internal REAPED; the real
   * node is lost and stays until reaped. */
  assert_null(peers_find(&f->p, "ghost"));
  assert_int_equal(f->p.unheard, 0);
  assert_non_null(peers_find(&f->p, "real"));
  assert_string_equal(f->events, "reaped ghost lost<;lost real lost<ready;");
}

static void peers_update_a_listed_address_only_when_newer(void **state) {
  struct fixture *f = *state;
  struct peer *a, *b;

  assert_int_equal(direct(&f->p, "a", 1, 3, "ready", false, NULL, 0),
                   PEERS_NEW);
  a = peers_find(&f->p, "a");
  assert_int_equal(member(&f->p, "a", 1, 3, false, "tcp://a:2", 1),
                   PEERS_STALE);
  assert_string_equal(a->rec->addr, "tcp://a:7410");
  /* A node heard from owns its address: a newer list entry can't move it
   * (one forged entry would cut its inbox off). */
  assert_int_equal(member(&f->p, "a", 1, 4, false, "tcp://a:2", 2),
                   PEERS_STALE);
  assert_int_equal(member(&f->p, "a", 9, 1, false, "tcp://a:2", 2),
                   PEERS_STALE);
  assert_string_equal(a->rec->addr, "tcp://a:7410");
  /* A heard entry keeps the stamp of the record it holds. */
  assert_int_equal(a->rec->ver, 3);
  assert_int_equal(a->rec->inc, 1);
  /* Its own record moves it. */
  {
    struct record r;
    struct peer *out = NULL;
    make_record(&r, "a", 1, 4, "ready", false, NULL);
    snprintf(r.addr, sizeof(r.addr), "tcp://a:3");
    assert_int_equal(peers_merge_direct(&f->p, &r, 3, WALL, &out),
                     PEERS_UPDATED);
    record_free(&r);
  }
  assert_string_equal(a->rec->addr, "tcp://a:3");

  assert_int_equal(member(&f->p, "b", 1, 1, false, NULL, 0), PEERS_NEW);
  b = peers_find(&f->p, "b");
  assert_int_equal(member(&f->p, "b", 2, 1, false, "tcp://b:2", 1),
                   PEERS_UPDATED);
  assert_string_equal(b->rec->addr, "tcp://b:2");
  assert_int_equal(b->rec->inc, 2);
  assert_false(b->heard);
  assert_int_equal(b->endpoint, -1);
  assert_string_equal(f->events, "joined a ready<;");
}

static void peers_tick_returns_the_next_deadline(void **state) {
  struct fixture *f = *state;
  struct peers *p = &f->p;

  assert_true(peers_tick(p, 0, WALL, LOST_AFTER, REAP_AFTER) == UINT64_MAX);
  direct(p, "a", 1, 1, "ready", false, NULL, 0);
  direct(p, "b", 1, 1, "ready", false, NULL, 300);
  assert_int_equal(peers_tick(p, 500, WALL, LOST_AFTER, REAP_AFTER), 1000);
  assert_int_equal(peers_tick(p, 1000, WALL, LOST_AFTER, REAP_AFTER), 1300);
  assert_int_equal(peers_tick(p, 1300, WALL, LOST_AFTER, REAP_AFTER), 6000);
  assert_int_equal(peers_tick(p, 6000, WALL, LOST_AFTER, REAP_AFTER), 6300);
  assert_true(peers_tick(p, 6300, WALL, LOST_AFTER, REAP_AFTER) == UINT64_MAX);
  assert_int_equal(p->n, 0);
}

static void peers_count_by_status(void **state) {
  struct fixture *f = *state;
  size_t alive, lost, left;

  direct(&f->p, "a", 1, 1, "ready", false, NULL, 0);
  direct(&f->p, "b", 1, 1, "ready", false, NULL, 500);
  direct(&f->p, "c", 1, 1, "ready", false, NULL, 500);
  direct(&f->p, "c", 1, 2, "ready", true, NULL, 500);
  (void)peers_tick(&f->p, 1000, WALL, LOST_AFTER, REAP_AFTER);
  peers_count(&f->p, &alive, &lost, &left);
  assert_int_equal(alive, 1);
  assert_int_equal(lost, 1);
  assert_int_equal(left, 1);
  peers_count(&f->p, NULL, NULL, NULL);
}

/* force-leave: a lost member is marked left here at once (one LEFT
 * event); a live one only with force; unknown and left ones are refused;
 * a newer record of the node makes it join again. */
static void peers_force_leave_marks_a_lost_member_left(void **state) {
  struct fixture *f = *state;
  uint64_t digest = peers_digest(&f->p, NULL);

  direct(&f->p, "a", 1, 1, "ready", false, NULL, 0);
  direct(&f->p, "b", 1, 1, "ready", false, NULL, 500);
  (void)peers_tick(&f->p, 1000, WALL, LOST_AFTER, REAP_AFTER);
  f->events[0] = '\0';
  digest = peers_digest(&f->p, NULL);
  assert_int_equal(peers_force_leave(&f->p, "nobody", false, 1000, WALL),
                   CHOREO_ENOTFOUND);
  assert_int_equal(peers_force_leave(&f->p, "b", false, 1000, WALL),
                   CHOREO_EREFUSED);
  assert_string_equal(f->events, "");
  assert_int_equal(peers_force_leave(&f->p, "a", false, 1000, WALL), 0);
  assert_string_equal(f->events, "left a left<lost;");
  assert_int_equal(peers_force_leave(&f->p, "a", true, 1000, WALL),
                   CHOREO_EINVAL);
  /* The node's record is its own: the view sent to others is unchanged. */
  assert_int_equal(peers_digest(&f->p, NULL), digest);
  assert_int_equal(peers_force_leave(&f->p, "b", true, 1000, WALL), 0);
  check_counts(&f->p);
  f->events[0] = '\0';
  direct(&f->p, "b", 1, 1, "ready", false, NULL, 1100); /* a heartbeat */
  assert_string_equal(f->events, "");
  direct(&f->p, "b", 1, 2, "busy", false, NULL, 1200);
  assert_string_equal(peer_state(peers_find(&f->p, "b")), "busy");
  check_counts(&f->p);
}

/* A revoked node is marked lost at once (one LOST event); unknown and
 * already lost ones are refused. */
static void peers_force_lost_marks_a_live_member_lost(void **state) {
  struct fixture *f = *state;

  direct(&f->p, "a", 1, 1, "ready", false, NULL, 0);
  f->events[0] = '\0';
  assert_int_equal(peers_force_lost(&f->p, "nobody", 100, WALL),
                   CHOREO_ENOTFOUND);
  assert_int_equal(peers_force_lost(&f->p, "a", 100, WALL), 0);
  assert_string_equal(f->events, "lost a lost<ready;");
  assert_int_equal(peers_find(&f->p, "a")->status, PEER_LOST);
  check_counts(&f->p);
  assert_int_equal(peers_force_lost(&f->p, "a", 200, WALL), CHOREO_EINVAL);
}

static void peers_find_nodes_in_a_large_table(void **state) {
  struct fixture *f = *state;
  char name[16];

  /* 97 is prime: i * 37 mod 97 visits every name once, out of order. */
  for (unsigned i = 0; i < 97; i++) {
    snprintf(name, sizeof(name), "n%02u", i * 37 % 97);
    assert_int_equal(direct(&f->p, name, 1, 1, "ready", false, NULL, 0),
                     PEERS_NEW);
  }
  assert_int_equal(f->p.n, 97);
  for (unsigned i = 0; i < 97; i++) {
    snprintf(name, sizeof(name), "n%02u", i);
    assert_non_null(peers_find(&f->p, name));
    assert_string_equal(f->p.v[i]->rec->name, name);
  }
  assert_null(peers_find(&f->p, "n97"));
  assert_null(peers_find(&f->p, "a"));
  assert_null(peers_find(&f->p, NULL));
}

static void peers_work_without_a_callback(void **state) {
  struct peers p;
  (void)state;

  peers_init(&p, SELF, 8, NULL, NULL);
  assert_int_equal(direct(&p, "a", 1, 1, "ready", false, NULL, 0), PEERS_NEW);
  assert_int_equal(direct(&p, "a", 1, 2, "busy", false, NULL, 0),
                   PEERS_UPDATED);
  assert_int_equal(peers_tick(&p, 10000, WALL, LOST_AFTER, REAP_AFTER),
                   10000 + REAP_AFTER);
  assert_true(peers_tick(&p, 10000 + REAP_AFTER, WALL, LOST_AFTER,
                         REAP_AFTER) == UINT64_MAX);
  assert_int_equal(p.n, 0);
  peers_free(&p);
  peers_free(&p); /* safe twice */
}

static void peers_name_every_event(void **state) {
  (void)state;
  assert_string_equal(peer_event_name(PEER_EV_JOINED), "joined");
  assert_string_equal(peer_event_name(PEER_EV_STATE), "state");
  assert_string_equal(peer_event_name(PEER_EV_DATA), "data");
  assert_string_equal(peer_event_name(PEER_EV_LEFT), "left");
  assert_string_equal(peer_event_name(PEER_EV_LOST), "lost");
  assert_string_equal(peer_event_name(PEER_EV_REAPED), "reaped");
}

/* ---- digest ---- */

struct view_entry {
  const char *name, *addr;
  uint64_t inc, ver;
  bool left;
};

/* The digest of agent `self` whose table holds the given entries (in
 * the order given). */
static uint64_t digest_of(const char *self, const struct view_entry *v,
                          size_t n) {
  struct record r;
  struct peers p;
  uint64_t d;

  peers_init(&p, self, 64, NULL, NULL);
  for (size_t i = 0; i < n; i++) {
    make_record(&r, v[i].name, v[i].inc, v[i].ver, "ready", false, NULL);
    snprintf(r.addr, sizeof(r.addr), "%s", v[i].addr);
    assert_true(peers_merge_direct(&p, &r, 0, WALL, NULL) >= 0);
    r.left = v[i].left;
    r.ver++;
    if (r.left)
      assert_true(peers_merge_direct(&p, &r, 0, WALL, NULL) > 0);
    record_free(&r);
  }
  make_record(&r, self, 1, 1, "ready", false, NULL);
  d = peers_digest(&p, &r);
  record_free(&r);
  peers_free(&p);
  return d;
}

static const struct view_entry base[] = {
    {"a", "tcp://a:1", 1, 1, false},
    {"b", "tcp://b:1", 2, 1, false},
    {"c", "tcp://c:1", 3, 1, true},
};

static void peers_digest_ignores_insertion_order(void **state) {
  const struct view_entry reversed[] = {base[2], base[1], base[0]};
  const struct view_entry mixed[] = {base[1], base[2], base[0]};
  uint64_t d = digest_of(SELF, base, 3);
  (void)state;

  assert_true(d == digest_of(SELF, reversed, 3));
  assert_true(d == digest_of(SELF, mixed, 3));
}

/* The digest is on the wire: agents of different releases compare it,
 * so its value for a given view never changes. The values were computed
 * apart, from docs/PROTOCOL.md "Digest", with our own record last, in
 * the middle and first. */
static void peers_digest_value_is_fixed(void **state) {
  (void)state;
  assert_true(digest_of(SELF, base, 3) == 0xf85658a63a27052eULL);
  assert_true(digest_of("bb", base, 3) == 0x2b7a6d999af50ffeULL);
  assert_true(digest_of("0", base, 3) == 0x76fdab4ba3305ae4ULL);
}

static void peers_digest_ignores_versions_and_states(void **state) {
  const struct view_entry newer[] = {
      {"a", "tcp://a:1", 1, 7, false}, base[1], base[2]};
  (void)state;
  assert_true(digest_of(SELF, base, 3) == digest_of(SELF, newer, 3));
}

static void
peers_digest_is_the_same_for_agents_with_the_same_view(void **state) {
  /* Agent "a" sees me and b; agent "me" sees a and b: one membership. */
  const struct view_entry from_a[] = {
      {SELF, "tcp://" SELF ":7410", 1, 1, false},
      {"b", "tcp://b:7410", 1, 1, false}};
  const struct view_entry from_me[] = {{"a", "tcp://a:7410", 1, 1, false},
                                       {"b", "tcp://b:7410", 1, 1, false}};
  (void)state;
  assert_true(digest_of("a", from_a, 2) == digest_of(SELF, from_me, 2));
}

static void peers_digest_differs_when_addr_inc_or_left_differs(void **state) {
  const struct view_entry addr[] = {
      {"a", "tcp://a:2", 1, 1, false}, base[1], base[2]};
  const struct view_entry inc[] = {
      {"a", "tcp://a:1", 2, 1, false}, base[1], base[2]};
  const struct view_entry left[] = {
      {"a", "tcp://a:1", 1, 1, true}, base[1], base[2]};
  const struct view_entry fewer[] = {base[0], base[1]};
  uint64_t d = digest_of(SELF, base, 3);
  (void)state;

  assert_true(d != digest_of(SELF, addr, 3));
  assert_true(d != digest_of(SELF, inc, 3));
  assert_true(d != digest_of(SELF, left, 3));
  assert_true(d != digest_of(SELF, fewer, 2));
}

static void peers_digest_separates_fields(void **state) {
  const struct view_entry one[] = {{"ab", "c", 1, 1, false}};
  const struct view_entry two[] = {{"a", "bc", 1, 1, false}};
  struct peers p;
  (void)state;

  assert_true(digest_of(SELF, one, 1) != digest_of(SELF, two, 1));
  /* Without a self record, the digest covers the table alone. */
  peers_init(&p, SELF, 1, NULL, NULL);
  assert_true(peers_digest(&p, NULL) != digest_of(SELF, NULL, 0));
  peers_free(&p);
}

/* The index by name: every entry found after nodes come and go in any
 * order (reaping takes entries out from the middle of probe runs), none
 * found that went, and the records shared with a pool. Each row: how many
 * nodes join, and which of them (every k-th, from an offset) stay. */
static void peers_find_after_entries_come_and_go(void **state) {
  static const struct {
    size_t nodes, every, from;
  } rows[] = {{1, 2, 1}, {40, 2, 0}, {300, 3, 1}, {1000, 7, 3}, {1000, 1, 0}};
  char name[32];
  (void)state;

  for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
    struct peers p;
    uint64_t t = LOST_AFTER + 1;
    peers_init(&p, SELF, 4096, NULL, NULL);
    peers_set_budget(&p, (size_t)1 << 30);
    for (size_t i = 0; i < rows[r].nodes; i++) {
      snprintf(name, sizeof(name), "n%zu", (i * 7919) % rows[r].nodes);
      assert_int_equal(direct(&p, name, 1, 1, "ready", false, NULL, 0),
                       PEERS_NEW);
    }
    /* Those that stay speak before each tick; the others are lost,
     * then reaped. */
    for (int k = 0; k < 2; k++) {
      for (size_t i = rows[r].from; i < rows[r].nodes; i += rows[r].every) {
        snprintf(name, sizeof(name), "n%zu", i);
        (void)direct(&p, name, 1, 1, "ready", false, NULL, t - 1);
      }
      (void)peers_tick(&p, t, WALL, LOST_AFTER, REAP_AFTER);
      t += REAP_AFTER + 1;
    }
    for (size_t i = 0; i < rows[r].nodes; i++) {
      bool stays = i >= rows[r].from && (i - rows[r].from) % rows[r].every == 0;
      struct peer *peer;
      snprintf(name, sizeof(name), "n%zu", i);
      peer = peers_find(&p, name);
      print_message("row %zu node %s\n", r, name);
      assert_int_equal(peer != NULL, stays);
      if (peer != NULL)
        assert_string_equal(peer->rec->name, name);
    }
    assert_null(peers_find(&p, "nobody"));
    check_counts(&p);
    peers_free(&p);
  }
}

/* network.max_members: a table holds as many members as it is set to,
 * with the budget for them, and refuses the one more. */
static void peers_set_max_grows_the_table_and_its_budget(void **state) {
  static const struct {
    size_t max, budget;
  } rows[] = {
      {1, PEERS_BYTES_MAX_DEFAULT},
      {PEERS_MAX_DEFAULT, PEERS_BYTES_MAX_DEFAULT},
      {PEERS_MAX_DEFAULT + 1, (PEERS_MAX_DEFAULT + 1) * PEERS_BYTES_PER_MEMBER},
      {100000, 100000 * (size_t)PEERS_BYTES_PER_MEMBER},
  };
  struct peers p;
  char name[32];
  (void)state;

  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
    assert_int_equal(peers_budget_for(rows[i].max), rows[i].budget);
  peers_init(&p, SELF, PEERS_MAX_DEFAULT, NULL, NULL);
  peers_set_max(&p, 5000);
  assert_int_equal(p.bytes_max, 5000 * (size_t)PEERS_BYTES_PER_MEMBER);
  for (size_t i = 0; i < 5000; i++) {
    snprintf(name, sizeof(name), "n%zu", i);
    assert_int_equal(direct(&p, name, 1, 1, "ready", false, "some data", 0),
                     PEERS_NEW);
  }
  assert_int_equal(direct(&p, "one-more", 1, 1, "ready", false, NULL, 0),
                   PEERS_FULL);
  /* Lowered: what is held stays, nothing new comes in. */
  peers_set_max(&p, 10);
  assert_int_equal(p.n, 5000);
  assert_int_equal(direct(&p, "one-more", 1, 1, "ready", false, NULL, 0),
                   PEERS_FULL);
  assert_int_equal(direct(&p, "n7", 1, 2, "ready", false, NULL, 0),
                   PEERS_UPDATED);
  peers_free(&p);
}

/* Two tables given one pool (the simulator's) hold one copy of a record
 * both merged; a newer record in one is another copy; a table freed gives
 * its holds back. */
static void peers_share_records_through_a_pool(void **state) {
  struct recpool *pool = recpool_new();
  struct peers a, b;
  (void)state;

  assert_non_null(pool);
  peers_init(&a, "x", 16, NULL, NULL);
  peers_init(&b, "y", 16, NULL, NULL);
  peers_share_pool(&a, pool);
  peers_share_pool(&b, pool);
  assert_int_equal(direct(&a, "n1", 1, 1, "ready", false, "d", 0), PEERS_NEW);
  assert_int_equal(direct(&b, "n1", 1, 1, "ready", false, "d", 0), PEERS_NEW);
  assert_int_equal(recpool_records(pool), 1);
  assert_int_equal(recpool_holds(pool), 2);
  assert_true(peers_find(&a, "n1")->rec == peers_find(&b, "n1")->rec);
  assert_int_equal(direct(&a, "n1", 1, 2, "busy", false, "d", 10),
                   PEERS_UPDATED);
  assert_int_equal(recpool_records(pool), 2);
  assert_int_equal(recpool_holds(pool), 2);
  assert_string_equal(peer_state(peers_find(&b, "n1")), "ready");
  peers_free(&a);
  assert_int_equal(recpool_records(pool), 1);
  assert_int_equal(recpool_holds(pool), 1);
  peers_free(&b);
  assert_int_equal(recpool_holds(pool), 0);
  recpool_free(pool);
}

/* peers_same_view: the size said must match before digests are compared,
 * and a view of the same size and digest is the same. */
static void peers_same_view_needs_size_and_digest(void **state) {
  struct record self, r;
  struct peers p;
  uint64_t d;
  (void)state;

  peers_init(&p, SELF, 64, NULL, NULL);
  for (size_t i = 0; i < 3; i++) {
    make_record(&r, base[i].name, base[i].inc, base[i].ver, "ready", false,
                NULL);
    assert_true(peers_merge_direct(&p, &r, 0, WALL, NULL) >= 0);
    record_free(&r);
  }
  make_record(&self, SELF, 1, 1, "ready", false, NULL);
  d = peers_digest(&p, &self);
  const struct {
    bool with_self;
    uint64_t digest;
    uint32_t known;
    bool same;
  } views[] = {
      {true, d, 4, true},   /* three entries and self */
      {true, d, 3, false},  /* the digest of another size: a collision */
      {true, d, 5, false},  /* likewise */
      {true, d, 0, false},  /* none said */
      {true, ~d, 4, false}, /* the same size, another view */
      {false, peers_digest(&p, NULL), 3, true}, /* the table alone */
      {false, peers_digest(&p, NULL), 4, false},
  };
  for (size_t i = 0; i < sizeof(views) / sizeof(views[0]); i++)
    assert_int_equal(peers_same_view(&p, views[i].with_self ? &self : NULL,
                                     views[i].digest, views[i].known),
                     views[i].same);
  record_free(&self);
  peers_free(&p);
}

/* The cached digest must be what a fresh computation gives after every
 * kind of change of the table and of self. */
static uint64_t fresh_digest(struct peers *p, const struct record *self) {
  p->digest_valid = false;
  return peers_digest(p, self);
}

static void peers_digest_cache_follows_every_change(void **state) {
  struct peers p;
  struct record self;
  (void)state;

  peers_init(&p, SELF, 16, NULL, NULL);
  make_record(&self, SELF, 1, 1, "ready", false, NULL);
#define SAME()                                                                 \
  do {                                                                         \
    uint64_t cached = peers_digest(&p, &self);                                 \
    assert_true(cached == fresh_digest(&p, &self));                            \
  } while (0)
  SAME();
  assert_int_equal(direct(&p, "a", 1, 1, "ready", false, NULL, 0), PEERS_NEW);
  SAME();
  assert_int_equal(member(&p, "b", 1, 1, false, NULL, 0), PEERS_NEW);
  SAME();
  assert_int_equal(member(&p, "b", 2, 1, false, "tcp://b:9", 0),
                   PEERS_UPDATED); /* unheard: stamp and address */
  SAME();
  assert_int_equal(direct(&p, "a", 2, 1, "ready", false, NULL, 0),
                   PEERS_UPDATED); /* a restart: new incarnation */
  SAME();
  assert_int_equal(member(&p, "a", 2, 5, false, "tcp://a:9", 0),
                   PEERS_STALE); /* heard: its address is its own */
  SAME();
  assert_int_equal(member(&p, "a", 2, 6, true, NULL, 0), PEERS_UPDATED);
  SAME();
  self.inc = 2;
  SAME();
  self.left = true;
  SAME();
  /* Reaped: b never heard, then a left long ago. */
  (void)peers_tick(&p, 10 * REAP_AFTER, WALL, LOST_AFTER, REAP_AFTER);
  (void)peers_tick(&p, 20 * REAP_AFTER, WALL, LOST_AFTER, REAP_AFTER);
  assert_int_equal(p.n, 0);
  SAME();
#undef SAME
  record_free(&self);
  peers_free(&p);
}

/* ---- deadlines, stalls and since ---- */

/* The detector must not go to sleep: a node that comes back after being
 * lost gets its lost_after deadline again, not the reap deadline the tick
 * asked for while it was lost. */
static void peers_rearm_lost_after_when_a_lost_node_comes_back(void **state) {
  struct fixture *f = *state;
  struct peers *p = &f->p;

  direct(p, "a", 1, 1, "ready", false, NULL, 0);
  assert_int_equal(peers_next_deadline(p), 0); /* no timing yet: tick now */
  assert_int_equal(peers_tick(p, 0, WALL, LOST_AFTER, REAP_AFTER), LOST_AFTER);
  assert_int_equal(peers_tick(p, LOST_AFTER, WALL, LOST_AFTER, REAP_AFTER),
                   LOST_AFTER + REAP_AFTER);
  assert_int_equal(peers_find(p, "a")->status, PEER_LOST);
  /* A heartbeat revives it: its next deadline is lost_after away. */
  assert_int_equal(direct(p, "a", 1, 1, "ready", false, NULL, 1500),
                   PEERS_UPDATED);
  assert_int_equal(peers_next_deadline(p), 1500 + LOST_AFTER);
  assert_int_equal(
      peers_tick(p, 1500 + LOST_AFTER, WALL, LOST_AFTER, REAP_AFTER),
      1500 + LOST_AFTER + REAP_AFTER);
  /* A restart (newer incarnation) revives it the same way. */
  assert_int_equal(direct(p, "a", 2, 1, "ready", false, NULL, 3000),
                   PEERS_UPDATED);
  assert_int_equal(peers_next_deadline(p), 3000 + LOST_AFTER);
  assert_string_equal(f->events, "joined a ready<;lost a lost<ready;"
                                 "joined a ready<lost;lost a lost<ready;"
                                 "joined a ready<lost;");
}

static void peers_next_deadline_follows_merges_ticks_and_timing(void **state) {
  struct fixture *f = *state;
  struct peers *p = &f->p;

  assert_true(peers_next_deadline(p) == UINT64_MAX);
  peers_set_timing(p, 0, LOST_AFTER, REAP_AFTER);
  direct(p, "a", 1, 1, "ready", false, NULL, 100);
  assert_int_equal(peers_next_deadline(p), 100 + LOST_AFTER);
  /* A later message leaves the bound early (a tick finds nothing to do). */
  direct(p, "a", 1, 1, "ready", false, NULL, 600);
  assert_int_equal(peers_next_deadline(p), 100 + LOST_AFTER);
  assert_int_equal(peers_tick(p, 1100, WALL, LOST_AFTER, REAP_AFTER),
                   600 + LOST_AFTER);
  /* A listed node must be heard within lost_after too. */
  member(p, "b", 1, 1, false, NULL, 700);
  assert_int_equal(peers_next_deadline(p), 600 + LOST_AFTER);
  /* A leave brings the reap deadline. */
  direct(p, "a", 1, 2, "ready", true, NULL, 800);
  assert_int_equal(peers_next_deadline(p), 600 + LOST_AFTER);
  assert_int_equal(peers_tick(p, 800, WALL, LOST_AFTER, REAP_AFTER),
                   700 + LOST_AFTER);
  /* Shorter timeouts bring every deadline forward at once. */
  peers_set_timing(p, 0, 100, 200);
  assert_int_equal(peers_next_deadline(p), 800);
}

static void peers_grant_a_fresh_lost_after_after_a_stall(void **state) {
  struct fixture *f = *state;
  struct peers *p = &f->p;

  peers_set_timing(p, 100, LOST_AFTER, REAP_AFTER);
  direct(p, "a", 1, 1, "ready", false, NULL, 0);
  direct(p, "b", 1, 1, "ready", false, NULL, 0);
  (void)peers_tick(p, 500, WALL, LOST_AFTER, REAP_AFTER);
  assert_false(peers_clock(p, 600));
  /* Stopped from 600 to 3600: nobody is blamed at the first tick. */
  assert_int_equal(peers_tick(p, 3600, WALL, LOST_AFTER, REAP_AFTER),
                   3600 + LOST_AFTER);
  assert_string_equal(f->events, "joined a ready<;joined b ready<;");
  assert_int_equal(p->stalls, 1);
  assert_int_equal(p->stall_ms, 3000);
  /* a speaks after the stall; b never does and is lost a lost_after
   * after the stall, not before. */
  direct(p, "a", 1, 1, "ready", false, NULL, 3650);
  for (uint64_t t = 3700; t < 3600 + LOST_AFTER; t += 100)
    assert_false(peers_clock(p, t));
  assert_int_equal(
      peers_tick(p, 3600 + LOST_AFTER - 1, WALL, LOST_AFTER, REAP_AFTER),
      3600 + LOST_AFTER);
  assert_int_equal(peers_find(p, "b")->status, PEER_ALIVE);
  (void)peers_tick(p, 3600 + LOST_AFTER, WALL, LOST_AFTER, REAP_AFTER);
  assert_int_equal(peers_find(p, "a")->status, PEER_ALIVE);
  assert_int_equal(peers_find(p, "b")->status, PEER_LOST);
  assert_int_equal(p->stalls, 1);
}

static void peers_notice_a_stall_in_a_merge_too(void **state) {
  struct fixture *f = *state;
  struct peers *p = &f->p;

  peers_set_timing(p, 100, LOST_AFTER, REAP_AFTER);
  direct(p, "a", 1, 1, "ready", false, NULL, 0);
  direct(p, "b", 1, 1, "ready", false, NULL, 50);
  /* After the stall a's message is read before the timer fires. */
  direct(p, "a", 1, 1, "ready", false, NULL, 5000);
  assert_int_equal(p->stalls, 1);
  assert_int_equal(peers_find(p, "b")->quiet_since, 5000);
  assert_int_equal(peers_find(p, "b")->last_seen, 50);
  assert_int_equal(peers_tick(p, 5000, WALL, LOST_AFTER, REAP_AFTER),
                   5000 + LOST_AFTER);
  assert_int_equal(peers_find(p, "b")->status, PEER_ALIVE);
}

/* Which gaps between two calls are this agent's stalls. */
static void peers_tell_a_stall_from_a_late_timer(void **state) {
  static const struct {
    uint64_t heartbeat, lost_after, gap;
    bool stalled;
  } rows[] = {
      {1000, 5000, 1000, false}, /* an ordinary heartbeat */
      {1000, 5000, 2500, false}, /* a late timer */
      {1000, 5000, 4000, false}, /* lost_after - heartbeat: still fine */
      {1000, 5000, 4001, true},  /* a live node may look silent now */
      {1000, 5000, 15000, true},
      {1000, 1500, 2000, false}, /* lost_after near the heartbeat: */
      {1000, 1500, 2001, true},  /* two heartbeats missed */
      {0, 5000, 60000, false},   /* no heartbeat: no detection */
  };
  (void)state;

  for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
    struct peers p;
    peers_init(&p, SELF, 8, NULL, NULL);
    peers_set_timing(&p, rows[i].heartbeat, rows[i].lost_after, REAP_AFTER);
    assert_false(peers_stalled(&p, 1000000)); /* no call yet */
    assert_false(peers_clock(&p, 1000000));
    assert_false(peers_stalled(&p, 999000)); /* an older time */
    if (peers_stalled(&p, 1000000 + rows[i].gap) != rows[i].stalled)
      fail_msg("row %zu: heartbeat %llu, lost_after %llu, gap %llu", i,
               (unsigned long long)rows[i].heartbeat,
               (unsigned long long)rows[i].lost_after,
               (unsigned long long)rows[i].gap);
    assert_int_equal(peers_clock(&p, 1000000 + rows[i].gap), rows[i].stalled);
    assert_int_equal(p.stalls, rows[i].stalled ? 1 : 0);
    peers_free(&p);
  }
}

static void peers_grace_leaves_lost_and_left_nodes_alone(void **state) {
  struct peers p;
  (void)state;

  peers_init(&p, SELF, 8, NULL, NULL);
  direct(&p, "a", 1, 1, "ready", false, NULL, 0);
  direct(&p, "b", 1, 1, "ready", false, NULL, 0);
  direct(&p, "c", 1, 1, "ready", false, NULL, 0);
  direct(&p, "c", 1, 2, "ready", true, NULL, 0);
  direct(&p, "b", 1, 1, "ready", false, NULL, 800);
  (void)peers_tick(&p, 1000, WALL, LOST_AFTER, REAP_AFTER);
  peers_grace(&p, 1500);
  assert_int_equal(peers_find(&p, "a")->status, PEER_LOST);
  assert_int_equal(peers_find(&p, "a")->quiet_since, 0);
  assert_int_equal(peers_find(&p, "b")->quiet_since, 1500);
  assert_int_equal(peers_find(&p, "c")->status, PEER_LEFT);
  assert_int_equal(peers_find(&p, "c")->quiet_since, 0);
  /* A grace never moves a deadline earlier. */
  peers_grace(&p, 1200);
  assert_int_equal(peers_find(&p, "b")->quiet_since, 1500);
  peers_free(&p);
}

/* SINCE: a lost or left node shows when it was seen to become so; an
 * alive one the since of its own record, also once it is back. */
static void peers_show_since_when_a_node_is_lost_or_left(void **state) {
  struct peers p;
  struct record r;
  struct peer *a, *b;
  (void)state;

  peers_init(&p, SELF, 8, NULL, NULL);
  make_record(&r, "a", 1, 1, "ready", false, NULL);
  r.since_ms = 1000;
  assert_int_equal(peers_merge_direct(&p, &r, 0, 5000, &a), PEERS_NEW);
  r.name[0] = 'b';
  assert_int_equal(peers_merge_direct(&p, &r, 0, 5000, &b), PEERS_NEW);
  assert_int_equal(peer_since(a), 1000);
  (void)peers_tick(&p, LOST_AFTER, 7000, LOST_AFTER, REAP_AFTER);
  assert_string_equal(peer_state(a), "lost");
  assert_int_equal(peer_since(a), 7000);
  /* Still lost at the next tick: still since 7000. */
  (void)peers_tick(&p, LOST_AFTER + 10, 7010, LOST_AFTER, REAP_AFTER);
  assert_int_equal(peer_since(a), 7000);
  r.name[0] = 'a';
  assert_int_equal(peers_merge_direct(&p, &r, LOST_AFTER + 20, 8000, &a),
                   PEERS_UPDATED);
  assert_int_equal(peer_since(a), 1000);
  r.ver = 2;
  r.left = true;
  assert_int_equal(peers_merge_direct(&p, &r, LOST_AFTER + 30, 9000, &a),
                   PEERS_UPDATED);
  assert_string_equal(peer_state(a), "left");
  assert_int_equal(peer_since(a), 9000);
  /* Left through a member list. */
  assert_int_equal(member(&p, "b", 1, 2, true, NULL, LOST_AFTER + 40),
                   PEERS_UPDATED);
  assert_int_equal(peer_since(b), WALL);
  record_free(&r);
  peers_free(&p);
}

/* ---- the detector as the agent drives it: a randomised property ---- *
 *
 * A simulated agent drives the table exactly as agent.c and agent_net.c
 * do: a wake-up timer only ever brought earlier by the deadlines the table
 * reports after each merge (and by other deadlines, at random), re-armed
 * from each tick's result; peers_clock() every heartbeat; the nodes'
 * messages whenever they come. Nodes join, heartbeat, change state, fall
 * silent, crash, restart, leave and come back; member lists relay them,
 * old records are replayed; the agent itself stalls now and then, and
 * after a stall its timers and the messages that waited come in any
 * order. After every step:
 *  - a node silent for lost_after + one heartbeat of the agent's running
 *    time (since its last message, or since the end of the agent's last
 *    stall) is lost, and a wake-up is armed by its deadline;
 *  - no node is declared lost before it was silent for lost_after of the
 *    agent's running time;
 *  - a node whose current record arrives is alive.
 * A failure names the seed and the step, which replay it exactly. */

#define SIM_NODES 5
#define SIM_HB 100
#define SIM_LOST 500
#define SIM_REAP 3000
#define SIM_SEEDS 150
#define SIM_STEPS 2500
/* peers_stalled()'s limit for SIM_HB and SIM_LOST: the model's own. */
#define SIM_STALL                                                              \
  (SIM_LOST - SIM_HB > 2 * SIM_HB ? SIM_LOST - SIM_HB : 2 * SIM_HB)

enum sim_mode { SIM_NEW, SIM_UP, SIM_DOWN, SIM_GONE };

struct sim_node {
  char name[8];
  enum sim_mode mode;
  uint64_t inc, ver;
  uint64_t next_send;   /* SIM_UP: its next heartbeat */
  uint64_t quiet_until; /* its messages are lost until then */
  uint64_t heard_at;    /* its last record the table was given */
  uint64_t listed_at;   /* when a member list made its entry */
};

struct sim {
  struct peers p;
  uint64_t rng, seed;
  size_t step;
  uint64_t now;
  uint64_t wake_at;   /* the agent's wake-up timer; UINT64_MAX: idle */
  uint64_t next_beat; /* its heartbeat timer */
  bool clocked;
  uint64_t last_call; /* the last time the table was given */
  uint64_t grace_at;  /* the end of the agent's last stall */
  struct sim_node n[SIM_NODES];
};

#define SIM_CHECK(s, cond, ...)                                                \
  do {                                                                         \
    if (!(cond)) {                                                             \
      char why_[256];                                                          \
      snprintf(why_, sizeof(why_), __VA_ARGS__);                               \
      fail_msg("seed %llu step %zu t=%llu: %s", (unsigned long long)(s)->seed, \
               (s)->step, (unsigned long long)(s)->now, why_);                 \
    }                                                                          \
  } while (0)

static uint64_t sim_rand(struct sim *s, uint64_t n) {
  /* xorshift64*: the same sequence for a seed on every platform. */
  s->rng ^= s->rng >> 12;
  s->rng ^= s->rng << 25;
  s->rng ^= s->rng >> 27;
  return n == 0 ? 0 : (s->rng * 0x2545F4914F6CDD1DULL >> 33) % n;
}

static uint64_t max_u64(uint64_t a, uint64_t b) {
  return a > b ? a : b;
}

static struct sim_node *sim_node(struct sim *s, const char *name) {
  for (size_t i = 0; i < SIM_NODES; i++)
    if (strcmp(s->n[i].name, name) == 0)
      return &s->n[i];
  return NULL;
}

static void sim_on_event(void *arg, const struct peer_event *ev) {
  struct sim *s = arg;
  struct sim_node *n = sim_node(s, ev->peer->rec->name);

  SIM_CHECK(s, n != NULL, "an event for an unknown node");
  if (ev->type != PEER_EV_LOST)
    return;
  SIM_CHECK(s, s->now >= max_u64(n->heard_at, s->grace_at) + SIM_LOST,
            "%s lost after %llu ms of silence (last heard at %llu, stall "
            "ended at %llu)",
            n->name,
            (unsigned long long)(s->now - max_u64(n->heard_at, s->grace_at)),
            (unsigned long long)n->heard_at, (unsigned long long)s->grace_at);
}

/* Every call into the table goes through here first: it is how the model
 * knows, independently of the table, where the agent's stalls end. */
static void sim_call(struct sim *s) {
  if (s->clocked && s->now - s->last_call > SIM_STALL)
    s->grace_at = s->now;
  s->clocked = true;
  s->last_call = s->now;
}

/* agent_wake_at(): only ever earlier. */
static void sim_wake_at(struct sim *s, uint64_t when) {
  if (when < s->wake_at)
    s->wake_at = when;
}

static void sim_merged(struct sim *s, enum peers_result res,
                       const struct peer *out) {
  SIM_CHECK(s, res >= 0, "merge refused: %d", (int)res);
  if (out != NULL)
    sim_wake_at(s, peers_next_deadline(&s->p));
}

/* Node n's record as (inc, ver), left or not, given to the table. */
static void sim_direct(struct sim *s, struct sim_node *n, uint64_t ver,
                       bool left) {
  struct record r;
  struct peer *out;
  enum peers_result res;
  bool current = ver == n->ver;

  assert_int_equal(record_init(&r), 0);
  snprintf(r.name, sizeof(r.name), "%s", n->name);
  snprintf(r.addr, sizeof(r.addr), "tcp://%s:7410", n->name);
  snprintf(r.state, sizeof(r.state), "s%llu", (unsigned long long)(ver % 3));
  r.inc = n->inc;
  r.ver = ver;
  r.left = left;
  sim_call(s);
  res = peers_merge_direct(&s->p, &r, s->now, WALL, &out);
  record_free(&r);
  sim_merged(s, res, out);
  /* A late old record the table takes (its entry was forgotten, or a
   * list gave it that stamp) is a message from the node too. */
  if (!left && (res == PEERS_NEW || res == PEERS_UPDATED))
    n->heard_at = s->now;
  if (current && !left) {
    out = peers_find(&s->p, n->name);
    SIM_CHECK(s, out != NULL && out->status == PEER_ALIVE && out->heard,
              "%s spoke but is not alive", n->name);
  }
}

/* Another member's list mentions n, with its current stamp or an older
 * one (lists run behind). */
static void sim_member(struct sim *s, struct sim_node *n) {
  struct wire_member m;
  struct peer *out;
  enum peers_result res;
  bool known = peers_find(&s->p, n->name) != NULL;

  memset(&m, 0, sizeof(m));
  snprintf(m.name, sizeof(m.name), "%s", n->name);
  snprintf(m.addr, sizeof(m.addr), "tcp://%s:7410", n->name);
  m.inc = n->inc;
  m.ver = n->ver - sim_rand(s, n->ver);
  m.left = n->mode == SIM_GONE && m.ver == n->ver;
  sim_call(s);
  res = peers_merge_member(&s->p, &m, s->now, WALL, &out);
  sim_merged(s, res, out);
  if (!known && res == PEERS_NEW)
    n->listed_at = s->now;
}

static void sim_tick(struct sim *s) {
  sim_call(s);
  s->wake_at = UINT64_MAX;
  sim_wake_at(s, peers_tick(&s->p, s->now, WALL, SIM_LOST, SIM_REAP));
}

static void sim_beat(struct sim *s) {
  sim_call(s);
  (void)peers_clock(&s->p, s->now);
  s->next_beat = s->now + SIM_HB;
}

static void sim_send(struct sim *s, struct sim_node *n) {
  n->next_send = s->now + SIM_HB - SIM_HB / 10 + sim_rand(s, SIM_HB / 5);
  /* One heartbeat in ten is dropped; a quiet node's all are. */
  if (s->now < n->quiet_until || sim_rand(s, 10) == 0)
    return;
  sim_direct(s, n, n->ver, false);
}

static void sim_check(struct sim *s) {
  for (size_t i = 0; i < SIM_NODES; i++) {
    struct sim_node *n = &s->n[i];
    const struct peer *e = peers_find(&s->p, n->name);
    uint64_t ref;
    if (e == NULL || e->status != PEER_ALIVE)
      continue;
    ref = max_u64(e->heard ? n->heard_at : n->listed_at, s->grace_at);
    SIM_CHECK(s, s->now < ref + SIM_LOST + SIM_HB,
              "%s is alive though silent for %llu ms", n->name,
              (unsigned long long)(s->now - ref));
    SIM_CHECK(s, s->wake_at <= ref + SIM_LOST,
              "%s's deadline %llu has no wake-up (next at %llu)", n->name,
              (unsigned long long)(ref + SIM_LOST),
              (unsigned long long)s->wake_at);
  }
}

/* The timers and heartbeats due by `until`, earliest first; after a stall
 * (`any_order`) everything overdue comes in a random order, as the loop
 * may run its timers or read what waited on its sockets first. */
static void sim_run_until(struct sim *s, uint64_t until, bool any_order) {
  for (;;) {
    uint64_t due[SIM_NODES + 2];
    size_t pick = SIZE_MAX, ndue = 0, cand[SIM_NODES + 2];

    due[0] = s->wake_at;
    due[1] = s->next_beat;
    for (size_t i = 0; i < SIM_NODES; i++)
      due[i + 2] = s->n[i].mode == SIM_UP ? s->n[i].next_send : UINT64_MAX;
    for (size_t i = 0; i < ARRAY_SIZE(due); i++) {
      if (due[i] > until)
        continue;
      cand[ndue++] = i;
      if (pick == SIZE_MAX || due[i] < due[pick])
        pick = i;
    }
    if (ndue == 0)
      return;
    if (any_order)
      pick = cand[sim_rand(s, ndue)];
    s->now = max_u64(s->now, due[pick]);
    if (pick == 0)
      sim_tick(s);
    else if (pick == 1)
      sim_beat(s);
    else
      sim_send(s, &s->n[pick - 2]);
    /* After a stall, once the agent has run (a dropped message is not
     * the agent running). */
    if (!any_order || s->last_call == s->now)
      sim_check(s);
  }
}

/* One random thing happening to a random node at s->now. */
static void sim_act(struct sim *s) {
  struct sim_node *n = &s->n[sim_rand(s, SIM_NODES)];

  switch (sim_rand(s, 12)) {
  case 0: /* starts, or restarts after a crash or a leave */
    if (n->mode == SIM_UP)
      break;
    n->inc++;
    n->ver = 1;
    n->mode = SIM_UP;
    n->quiet_until = 0;
    sim_direct(s, n, n->ver, false);
    n->next_send = s->now + SIM_HB;
    break;
  case 1: /* crashes */
    if (n->mode == SIM_UP)
      n->mode = SIM_DOWN;
    break;
  case 2: /* leaves, saying so (maybe lost) */
    if (n->mode != SIM_UP)
      break;
    n->ver++;
    n->mode = SIM_GONE;
    if (sim_rand(s, 4) != 0)
      sim_direct(s, n, n->ver, true);
    break;
  case 3: /* falls silent for a while (its messages are lost) */
    if (n->mode == SIM_UP)
      n->quiet_until = s->now + sim_rand(s, 3 * SIM_LOST);
    break;
  case 4: /* changes state */
    if (n->mode != SIM_UP || s->now < n->quiet_until)
      break;
    n->ver++;
    sim_direct(s, n, n->ver, false);
    break;
  case 5: /* an old record of it, replayed or late */
    if (n->mode != SIM_NEW && n->ver > 1)
      sim_direct(s, n, n->ver - 1 - sim_rand(s, n->ver - 1), false);
    break;
  case 6: /* another member's list mentions it */
    if (n->mode != SIM_NEW)
      sim_member(s, n);
    break;
  case 7: /* another deadline (the engine's) wakes the agent up */
    sim_wake_at(s, s->now + sim_rand(s, SIM_HB));
    break;
  default: /* an ordinary stretch of time */
    break;
  }
}

static void sim_run(uint64_t seed) {
  struct sim *s = calloc(1, sizeof(*s));

  assert_non_null(s);
  s->seed = seed;
  s->rng = seed * 0x9E3779B97F4A7C15ULL + 1;
  s->now = 1000000;
  s->wake_at = UINT64_MAX;
  s->next_beat = s->now + SIM_HB;
  for (size_t i = 0; i < SIM_NODES; i++)
    snprintf(s->n[i].name, sizeof(s->n[i].name), "n%zu", i);
  peers_init(&s->p, SELF, PEERS_MAX_DEFAULT, sim_on_event, s);
  peers_set_timing(&s->p, SIM_HB, SIM_LOST, SIM_REAP);
  for (s->step = 0; s->step < SIM_STEPS; s->step++) {
    uint64_t at = s->now + 1 + sim_rand(s, SIM_HB);
    bool stall = sim_rand(s, 100) == 0;
    if (stall) {
      /* Nothing runs from now until well past lost_after. */
      s->now += SIM_STALL + 1 + sim_rand(s, 3 * SIM_LOST);
      at = s->now;
      if (sim_rand(s, 2) == 0) {
        sim_act(s); /* what waited on the socket is read first */
        if (s->clocked && s->last_call == s->now)
          sim_check(s); /* the agent has run since the stall */
      }
      sim_run_until(s, s->now, true);
    } else {
      sim_run_until(s, at, false);
      s->now = at;
    }
    sim_act(s);
    sim_check(s);
  }
  peers_free(&s->p);
  free(s);
}

static void peers_detect_every_silence_driven_as_the_agent_does(void **state) {
  (void)state;
  for (uint64_t seed = 1; seed <= SIM_SEEDS; seed++)
    sim_run(seed);
}

#define TEST(fn)                                                               \
  cmocka_unit_test_setup_teardown(fn, fixture_setup, fixture_teardown)

int main(void) {
  struct CMUnitTest rules[ARRAY_SIZE(cases)];
  const struct CMUnitTest others[] = {
      TEST(peers_refuse_a_new_node_when_full),
      TEST(peers_refuse_what_would_pass_the_memory_budget),
      TEST(peers_take_a_smaller_record_over_the_budget),
      TEST(peers_report_a_groups_change_as_data),
      TEST(peers_cap_nodes_only_heard_of),
      TEST(peers_forget_silent_nodes_never_heard_from),
      TEST(peers_update_a_listed_address_only_when_newer),
      TEST(peers_tick_returns_the_next_deadline),
      TEST(peers_count_by_status),
      TEST(peers_force_leave_marks_a_lost_member_left),
      TEST(peers_force_lost_marks_a_live_member_lost),
      TEST(peers_find_nodes_in_a_large_table),
      TEST(peers_work_without_a_callback),
      TEST(peers_name_every_event),
      TEST(peers_digest_ignores_insertion_order),
      TEST(peers_digest_ignores_versions_and_states),
      TEST(peers_digest_value_is_fixed),
      TEST(peers_digest_is_the_same_for_agents_with_the_same_view),
      TEST(peers_digest_differs_when_addr_inc_or_left_differs),
      TEST(peers_digest_separates_fields),
      TEST(peers_same_view_needs_size_and_digest),
      TEST(peers_find_after_entries_come_and_go),
      TEST(peers_share_records_through_a_pool),
      TEST(peers_set_max_grows_the_table_and_its_budget),
      TEST(peers_digest_cache_follows_every_change),
      TEST(peers_rearm_lost_after_when_a_lost_node_comes_back),
      TEST(peers_next_deadline_follows_merges_ticks_and_timing),
      TEST(peers_grant_a_fresh_lost_after_after_a_stall),
      TEST(peers_notice_a_stall_in_a_merge_too),
      TEST(peers_tell_a_stall_from_a_late_timer),
      TEST(peers_grace_leaves_lost_and_left_nodes_alone),
      TEST(peers_show_since_when_a_node_is_lost_or_left),
      TEST(peers_detect_every_silence_driven_as_the_agent_does),
      TEST(peers_verdicts_list_lost_leaves_newest_first),
      TEST(peers_records_digest_matches_the_relays_view),
      TEST(peers_relays_alive_lists_the_live_relays),
      TEST(peers_all_speak_ignores_the_unheard_and_the_gone),
  };
  struct CMUnitTest verdicts[ARRAY_SIZE(verdict_cases)];
  int failed;

  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    struct CMUnitTest t = {cases[i].name, run_case, fixture_setup,
                           fixture_teardown, (void *)&cases[i]};
    rules[i] = t;
  }
  for (size_t i = 0; i < ARRAY_SIZE(verdict_cases); i++) {
    struct CMUnitTest t = {verdict_cases[i].name, run_verdict_case,
                           fixture_setup, fixture_teardown,
                           (void *)&verdict_cases[i]};
    verdicts[i] = t;
  }
  failed = cmocka_run_group_tests_name("peers merge rules", rules, NULL, NULL);
  failed +=
      cmocka_run_group_tests_name("relays' verdicts", verdicts, NULL, NULL);
  failed += cmocka_run_group_tests_name("peers", others, NULL, NULL);
  return failed != 0;
}
