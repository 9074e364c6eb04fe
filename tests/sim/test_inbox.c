/*
 * test_inbox.c — what waits for a busy simulated node (sim_inbox.c):
 * deliveries are taken one connection at a time in a round, each
 * connection's in order; a connection whose buffers are full drops what
 * comes; other events keep their order; everything is freed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"

/* A delivery over `link` whose blob is `len` bytes, its first byte `tag`. */
static struct sim_event delivery(int link, char tag, size_t len, uint64_t at) {
  char *buf = calloc(1, len);
  struct sim_event e = {.at = at, .type = SIM_EV_DELIVER, .arg = link};
  assert_non_null(buf);
  buf[0] = tag;
  e.blob = sim_blob_new(buf, len);
  free(buf);
  return e;
}

static char take_tag(struct sim_inbox *in) {
  struct sim_event e = sim_inbox_take(in, true);
  char tag = (char)e.blob->data[0];
  sim_blob_unref(e.blob);
  return tag;
}

/* Pushed in order `pushed` (link, tag), they come out as `want`. */
static void inbox_takes_connections_in_turn(void **state) {
  (void)state;
  static const struct {
    const char *what;
    int links[8];
    const char *tags; /* one per link above */
    const char *want;
  } cases[] = {
      {"one connection: in order", {1, 1, 1}, "abc", "abc"},
      {"a quiet sender waits behind one message of the busy one",
       {1, 1, 1, 1, 2},
       "abcdZ",
       "aZbcd"},
      {"three connections: a round each",
       {1, 1, 2, 2, 3, 3},
       "abcdef",
       "acebdf"},
      {"a connection heard again joins the end of the round",
       {1, 2, 1, 3},
       "abcd",
       "abdc"},
      {"the forger's connection (-1) is one like any",
       {-1, 4, -1},
       "xyz",
       "xyz"},
  };
  for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
    struct sim_inbox in = {0};
    size_t n = strlen(cases[k].tags);
    char got[16] = {0};
    for (size_t i = 0; i < n; i++) {
      struct sim_event e =
          delivery(cases[k].links[i], cases[k].tags[i], 100, 10 * i);
      assert_true(sim_inbox_push(&in, &e));
    }
    assert_int_equal(in.n, n);
    for (size_t i = 0; i < n; i++)
      got[i] = take_tag(&in);
    if (strcmp(got, cases[k].want) != 0)
      fail_msg("%s: took %s, want %s", cases[k].what, got, cases[k].want);
    assert_int_equal(in.n, 0);
    assert_null(sim_inbox_next_delivery(&in));
    sim_inbox_free(&in);
  }
}

static void inbox_drops_what_a_full_connection_cant_hold(void **state) {
  (void)state;
  struct sim_inbox in = {0};
  size_t big = CHOREO_MSG_MAX, fits = SIM_LINK_BYTES / big;
  struct sim_event e;

  for (size_t i = 0; i < fits; i++) {
    e = delivery(sim_link(7, SIM_SOCK_SHARE), 'a', big, i);
    assert_true(sim_inbox_push(&in, &e));
  }
  e = delivery(sim_link(7, SIM_SOCK_SHARE), 'b', big, 99);
  assert_false(sim_inbox_push(&in, &e)); /* full: the caller drops it */
  sim_blob_unref(e.blob);
  /* Another socket of the same sender is another connection. */
  e = delivery(sim_link(7, SIM_SOCK_ONE), 'c', big, 100);
  assert_true(sim_inbox_push(&in, &e));
  assert_int_equal(in.n, fits + 1);
  /* One taken: room for one more. */
  assert_int_equal(take_tag(&in), 'a');
  e = delivery(sim_link(7, SIM_SOCK_SHARE), 'd', big, 101);
  assert_true(sim_inbox_push(&in, &e));
  /* An empty connection takes one message of any size. */
  e = delivery(sim_link(8, SIM_SOCK_ALL), 'e', SIM_LINK_BYTES + 1, 102);
  assert_true(sim_inbox_push(&in, &e));
  sim_inbox_free(&in);
}

static void inbox_keeps_other_events_in_order(void **state) {
  (void)state;
  struct sim_inbox in = {0};
  struct sim_event t1 = {.at = 5, .type = SIM_EV_TIMER, .arg = 1};
  struct sim_event t2 = {.at = 6, .type = SIM_EV_TIMER, .arg = 2};
  struct sim_event d = delivery(3, 'a', 10, 1);

  assert_true(sim_inbox_push(&in, &t1));
  assert_true(sim_inbox_push(&in, &d));
  assert_true(sim_inbox_push(&in, &t2));
  assert_int_equal(in.n - in.other.n, 1); /* one delivery */
  assert_int_equal(sim_inbox_oldest(&in), 1);
  assert_int_equal(sim_inbox_next_other(&in)->arg, 1);
  assert_int_equal(sim_inbox_take(&in, false).arg, 1);
  assert_int_equal(sim_inbox_take(&in, false).arg, 2);
  assert_null(sim_inbox_next_other(&in));
  assert_int_equal(sim_inbox_oldest(&in), 1);
  assert_int_equal(take_tag(&in), 'a');
  assert_int_equal(sim_inbox_oldest(&in), UINT64_MAX);
  sim_inbox_free(&in);
}

/* Thousands of connections: the index and the round grow, and every
 * connection still gets its turn before any gets a second. */
static void inbox_grows_with_its_connections(void **state) {
  (void)state;
  struct sim_inbox in = {0};
  enum { N = 5000 };
  for (int r = 0; r < 2; r++)
    for (int i = 0; i < N; i++) {
      struct sim_event e = delivery(sim_link(i, SIM_SOCK_ALL), 'a', 8, 0);
      assert_true(sim_inbox_push(&in, &e));
    }
  for (int r = 0; r < 2; r++)
    for (int i = 0; i < N; i++) {
      assert_int_equal(sim_inbox_next_delivery(&in)->arg,
                       sim_link(i, SIM_SOCK_ALL));
      assert_int_equal(take_tag(&in), 'a');
    }
  assert_int_equal(in.n, 0);
  sim_inbox_free(&in);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(inbox_takes_connections_in_turn),
      cmocka_unit_test(inbox_drops_what_a_full_connection_cant_hold),
      cmocka_unit_test(inbox_keeps_other_events_in_order),
      cmocka_unit_test(inbox_grows_with_its_connections),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
