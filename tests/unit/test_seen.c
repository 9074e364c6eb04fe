/*
 * test_seen.c — fingerprints of received messages: a copy is known, a
 * different message is not, a slot taken by another message forgets the
 * first, and two agents' keys differ.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "seen.h"

static int setup(void **state) {
  (void)state;
  return sodium_init() < 0 ? -1 : 0;
}

static void seen_knows_a_copy_and_nothing_else(void **state) {
  (void)state;
  struct seen *s = malloc(sizeof(*s));
  const char a[] = "{\"from\":\"web1\",\"seq\":1}";
  const char b[] = "{\"from\":\"web1\",\"seq\":2}";

  assert_non_null(s);
  seen_init(s);
  assert_false(seen_note(s, a, sizeof(a)));
  assert_true(seen_note(s, a, sizeof(a)));
  assert_true(seen_note(s, a, sizeof(a)));
  assert_false(seen_note(s, b, sizeof(b)));
  /* The same bytes, one shorter: another message. */
  assert_false(seen_note(s, a, sizeof(a) - 1));
  free(s);
}

static void seen_forgets_what_a_later_message_evicts(void **state) {
  (void)state;
  struct seen *s = malloc(sizeof(*s));
  char msg[32];
  size_t known = 0;

  assert_non_null(s);
  seen_init(s);
  assert_false(seen_note(s, "first", 5));
  /* 16 times more messages than slots: the first is evicted (all but
   * surely: e^-16) and is then new again; recent ones are still known. */
  for (int i = 0; i < 16 * SEEN_SLOTS; i++) {
    int n = snprintf(msg, sizeof(msg), "m%d", i);
    assert_false(seen_note(s, msg, (size_t)n));
  }
  assert_false(seen_note(s, "first", 5));
  for (int i = 16 * SEEN_SLOTS - 100; i < 16 * SEEN_SLOTS; i++) {
    int n = snprintf(msg, sizeof(msg), "m%d", i);
    known += seen_note(s, msg, (size_t)n);
  }
  /* About 2 of the 100 share a slot with a later one (1 in 4096 per
   * pair); 20 would be one in more than 10^10. */
  assert_true(known >= 80);
  free(s);
}

static void seen_keys_differ_between_tables(void **state) {
  (void)state;
  struct seen *s1 = malloc(sizeof(*s1)), *s2 = malloc(sizeof(*s2));
  assert_non_null(s1);
  assert_non_null(s2);
  seen_init(s1);
  seen_init(s2);
  assert_memory_not_equal(s1->key, s2->key, sizeof(s1->key));
  free(s1);
  free(s2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(seen_knows_a_copy_and_nothing_else),
      cmocka_unit_test(seen_forgets_what_a_later_message_evicts),
      cmocka_unit_test(seen_keys_differ_between_tables),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
