/*
 * test_log.c — unit tests of agent/log.c: peer-supplied text never
 * reaches the log as control characters, newlines or bidi overrides, and
 * warnings about peers are rate-limited per key and in all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "choreo.h"
#include "log.h"
#include "util.h"

/* Run log_warn(fmt, arg) with stderr sent to a file; the text written. */
static void logged(const char *arg, char *out, size_t len) {
  char path[] = "/tmp/choreo-test-log.XXXXXX";
  int fd = mkstemp(path), saved = dup(STDERR_FILENO);
  FILE *f;
  size_t n;

  assert_true(fd >= 0 && saved >= 0);
  assert_true(dup2(fd, STDERR_FILENO) >= 0);
  log_warn("peer says %s", arg);
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  close(fd);
  f = fopen(path, "rb");
  assert_non_null(f);
  n = fread(out, 1, len - 1, f);
  out[n] = '\0';
  fclose(f);
  unlink(path);
}

static void log_escapes_what_peers_sent(void **state) {
  char out[4096];
  const char *line;
  (void)state;
  logged("evil\nfake: line\r\x1b[31m\xe2\x80\xae\x7f\xff", out, sizeof(out));
  /* One line, ending with its newline. */
  assert_non_null(strchr(out, '\n'));
  assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
  line = strstr(out, "warning: peer says ");
  assert_non_null(line);
  assert_string_equal(line, "warning: peer says evil\\nfake: "
                            "line\\r\\x1b[31m\\u202e\\x7f\\xff\n");
}

static void log_keeps_a_truncated_line_one_line(void **state) {
  char *big = malloc(5000), out[16384];
  (void)state;
  assert_non_null(big);
  memset(big, '\n', 4999);
  big[4999] = '\0';
  logged(big, out, sizeof(out));
  assert_int_equal(strchr(out, '\n') - out, (long)strlen(out) - 1);
  assert_non_null(strstr(out, "\\n\\n"));
  free(big);
}

static void log_allow_once_per_key_a_minute(void **state) {
  const int64_t t = INT64_C(1000000000);
  (void)state;
  assert_true(log_allow("claim:tcp://a:1", t));
  assert_false(log_allow("claim:tcp://a:1", t + 1));
  assert_false(log_allow("claim:tcp://a:1", t + LOG_LIMIT_MS - 1));
  assert_true(log_allow("claim:tcp://b:1", t + 2));
  assert_true(log_allow("claim:tcp://a:1", t + LOG_LIMIT_MS));
}

static void log_allow_bounds_all_keys_together(void **state) {
  const int64_t t = INT64_C(5000000000);
  char key[32];
  unsigned allowed = 0;
  (void)state;
  /* An attacker with a thousand names gets no more lines a minute. */
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof(key), "peer-%d", i);
    allowed += log_allow(key, t + i);
  }
  assert_true(allowed <= 60);
  assert_true(allowed > 0);
  assert_true(log_suppressed() >= 1000 - 60);
}

/* A key said once stays limited however many other keys pass through
 * (an attacker's forged names must not free the budget's warning). */
static void log_allow_keeps_a_key_limited_among_many_others(void **state) {
  const int64_t t = INT64_C(9000000000);
  char key[32];
  (void)state;
  assert_true(log_allow("peers:budget", t));
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof(key), "refused:replay:n%d", i);
    (void)log_allow(key, t + 1 + i / 100);
    assert_false(log_allow("peers:budget", t + 2 + i / 100));
  }
  assert_true(log_allow("peers:budget", t + LOG_LIMIT_MS));
}

/* log.level: lines below the level are not written, and a level is
 * known by its name only. */
static void log_level_hides_lines_below_it(void **state) {
  char out[4096];
  enum log_level l = LOG_LEVEL_DEBUG;
  (void)state;
  unsetenv("CHOREO_DEBUG");
  assert_int_equal(log_level_parse("error", &l), 0);
  assert_int_equal(l, LOG_LEVEL_ERROR);
  assert_int_equal(log_level_parse("loud", &l), CHOREO_EINVAL);
  assert_int_equal(log_level_parse("", &l), CHOREO_EINVAL);
  assert_int_equal(l, LOG_LEVEL_ERROR);
  assert_string_equal(log_level_name(LOG_LEVEL_WARNING), "warning");
  log_set_level(LOG_LEVEL_ERROR);
  logged("hidden", out, sizeof(out));
  assert_string_equal(out, "");
  log_set_level(LOG_LEVEL_WARNING);
  logged("shown", out, sizeof(out));
  assert_non_null(strstr(out, "warning: peer says shown\n"));
  log_set_level(LOG_LEVEL_INFO);
}

/* JOURNAL_STREAM names stderr's device and inode: "<4>warning: ..."
 * without a timestamp; any other value (or none) keeps the plain line. */
static void log_prefixes_priorities_for_the_journal(void **state) {
  char path[] = "/tmp/choreo-test-journal.XXXXXX", env[64], out[4096];
  int fd = mkstemp(path), saved = dup(STDERR_FILENO);
  struct stat st;
  FILE *f;
  size_t n;
  (void)state;

  assert_true(fd >= 0 && saved >= 0 && fstat(fd, &st) == 0);
  assert_true(dup2(fd, STDERR_FILENO) >= 0);
  snprintf(env, sizeof(env), "%ju:%ju", (uintmax_t)st.st_dev,
           (uintmax_t)st.st_ino);
  setenv("JOURNAL_STREAM", env, 1);
  assert_true(log_detect_journal());
  log_warn("to the journal");
  log_error("bad");
  setenv("JOURNAL_STREAM", "1:2", 1);
  assert_false(log_detect_journal());
  setenv("JOURNAL_STREAM", "12:34x", 1);
  assert_false(log_detect_journal());
  unsetenv("JOURNAL_STREAM");
  assert_false(log_detect_journal());
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  close(fd);
  f = fopen(path, "rb");
  assert_non_null(f);
  n = fread(out, 1, sizeof(out) - 1, f);
  out[n] = '\0';
  fclose(f);
  unlink(path);
  assert_string_equal(out, "<4>warning: to the journal\n<3>error: bad\n");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(log_escapes_what_peers_sent),
      cmocka_unit_test(log_keeps_a_truncated_line_one_line),
      cmocka_unit_test(log_allow_once_per_key_a_minute),
      cmocka_unit_test(log_allow_bounds_all_keys_together),
      cmocka_unit_test(log_allow_keeps_a_key_limited_among_many_others),
      cmocka_unit_test(log_level_hides_lines_below_it),
      cmocka_unit_test(log_prefixes_priorities_for_the_journal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
