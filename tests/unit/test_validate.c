/*
 * test_validate.c — the shared rules of validate.c and the messages of
 * errors.c: names, states, data keys, UTF-8 text, durations.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "choreo.h"

static void names_accept_letters_digits_dot_underscore_dash(void **state) {
  assert_true(choreo_valid_name("web-1.eu_West"));
  assert_true(choreo_valid_name("a"));
  char max[CHOREO_NAME_MAX + 2];
  memset(max, 'a', CHOREO_NAME_MAX);
  max[CHOREO_NAME_MAX] = '\0';
  assert_true(choreo_valid_name(max));
  max[CHOREO_NAME_MAX] = 'a';
  max[CHOREO_NAME_MAX + 1] = '\0';
  assert_false(choreo_valid_name(max));
}

static void names_reject_empty_spaces_and_symbols(void **state) {
  const char *bad[] = {"", "web 1", "web/1", "wéb", "a:b", "a\n"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_false(choreo_valid_name(bad[i]));
  assert_false(choreo_valid_name(NULL));
}

static void states_are_lowercase_digits_underscore_dash(void **state) {
  assert_true(choreo_valid_state("maintenance"));
  assert_true(choreo_valid_state("read_only-2"));
  assert_false(choreo_valid_state("Ready"));
  assert_false(choreo_valid_state("a.b"));
  assert_false(choreo_valid_state(""));
  assert_false(choreo_valid_state("abcdefghijklmnopqrstuvwxyz0123456"));
  assert_true(choreo_valid_state("abcdefghijklmnopqrstuvwxyz012345"));
}

static void settable_states_are_valid_states_but_lost_and_left(void **state) {
  static const struct {
    const char *s;
    bool settable;
  } cases[] = {
      {"ready", true},
      {"maintenance", true},
      {"failed", true},
      {"lost", false},
      {"left", false},
      {"lost2", true},
      {"leftover", true},
      {"xlost", true},
      {"Lost", false},
      {"", false},
      {"a b", false},
      {NULL, false},
      {"abcdefghijklmnopqrstuvwxyz012345", true},
      {"abcdefghijklmnopqrstuvwxyz0123456", false},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    if (choreo_valid_settable_state(cases[i].s) != cases[i].settable)
      fail_msg("\"%s\": expected %s", cases[i].s ? cases[i].s : "(null)",
               cases[i].settable ? "settable" : "refused");
    /* settable implies valid */
    if (cases[i].settable)
      assert_true(choreo_valid_state(cases[i].s));
  }
}

static void data_keys_allow_dots_but_not_capitals(void **state) {
  assert_true(choreo_valid_data_key("db.url"));
  assert_false(choreo_valid_data_key("DB"));
  assert_false(choreo_valid_data_key(""));
}

static void text_must_be_utf8_within_its_limit(void **state) {
  assert_true(choreo_valid_text("", 10));
  assert_true(choreo_valid_text("h\xc3\xa9llo", 6));
  assert_false(choreo_valid_text("h\xc3\xa9llo", 5));
  assert_false(choreo_valid_text("\xc3", 10));             /* truncated */
  assert_false(choreo_valid_text("\xc0\xaf", 10));         /* overlong */
  assert_false(choreo_valid_text("\xed\xa0\x80", 10));     /* surrogate */
  assert_false(choreo_valid_text("\xf4\x90\x80\x80", 10)); /* > U+10FFFF */
  assert_true(choreo_valid_text("\xf0\x9f\x98\x80", 4));   /* emoji */
  assert_false(choreo_valid_text(NULL, 10));
}

static void durations_take_ms_s_m_h(void **state) {
  uint64_t ms = 0;
  assert_int_equal(choreo_parse_duration("250ms", &ms), 0);
  assert_int_equal(ms, 250);
  assert_int_equal(choreo_parse_duration("5s", &ms), 0);
  assert_int_equal(ms, 5000);
  assert_int_equal(choreo_parse_duration("2m", &ms), 0);
  assert_int_equal(ms, 120000);
  assert_int_equal(choreo_parse_duration("24h", &ms), 0);
  assert_int_equal(ms, 86400000);
  assert_int_equal(choreo_parse_duration("0s", &ms), 0);
  assert_int_equal(ms, 0);
}

static void durations_reject_missing_units_signs_and_overflow(void **state) {
  const char *bad[] = {"5",
                       "s",
                       "-1s",
                       "1.5s",
                       "5 s",
                       "5sec",
                       "",
                       "1d",
                       "5S",
                       "99999999999999999999ms",
                       "9223372036854776h"};
  uint64_t ms = 7;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(choreo_parse_duration(bad[i], &ms), CHOREO_EINVAL);
  assert_int_equal(ms, 7);
}

static void errors_have_distinct_messages(void **state) {
  char buf[8];
  assert_string_equal(choreo_strerror(CHOREO_ENOAGENT),
                      "no agent answers on the control socket");
  assert_string_equal(choreo_strerror(-2), "No such file or directory");
  assert_string_equal(choreo_err_name(CHOREO_ETIMEDOUT), "CHOREO_ETIMEDOUT");
  assert_string_equal(choreo_strerror(12345), "unknown error");
  assert_true(CHOREO_ENOMEM < -900 && CHOREO_ECRYPTO > CHOREO_ENOMEM);
  choreo_strerror_r(CHOREO_ETIMEDOUT, buf, sizeof(buf));
  assert_string_equal(buf, "timed o");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(names_accept_letters_digits_dot_underscore_dash),
      cmocka_unit_test(names_reject_empty_spaces_and_symbols),
      cmocka_unit_test(states_are_lowercase_digits_underscore_dash),
      cmocka_unit_test(settable_states_are_valid_states_but_lost_and_left),
      cmocka_unit_test(data_keys_allow_dots_but_not_capitals),
      cmocka_unit_test(text_must_be_utf8_within_its_limit),
      cmocka_unit_test(durations_take_ms_s_m_h),
      cmocka_unit_test(durations_reject_missing_units_signs_and_overflow),
      cmocka_unit_test(errors_have_distinct_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
