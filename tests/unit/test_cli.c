/*
 * test_cli.c — what the subcommands share (cli.c): peer-supplied text
 * escaped for terminals, widths in characters for aligned tables, and the
 * refusal of configuration paths of CONFIG_PATH_MAX bytes or more.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli.h"
#include "config.h"

static void escape_makes_control_and_bidi_characters_visible(void **state) {
  static const struct {
    const char *in, *out;
  } cases[] = {
      {"", ""},
      {"plain text", "plain text"},
      {"caf\xc3\xa9 \xe2\x9c\x93", "caf\xc3\xa9 \xe2\x9c\x93"}, /* kept */
      {"\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"},
      {"a\nb", "a\\nb"},
      {"a\r\tb", "a\\r\\tb"},
      {"\x01\x07\x08\x1f", "\\x01\\x07\\x08\\x1f"},
      {"del\x7f", "del\\x7f"},
      {"c1 \xc2\x80 \xc2\x9b \xc2\x9f", "c1 \\u0080 \\u009b \\u009f"},
      {"\xc2\xa0nbsp", "\xc2\xa0nbsp"}, /* U+00A0 is printable */
      {"\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae",
       "\\u202a\\u202b\\u202c\\u202d\\u202e"},
      {"\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9",
       "\\u2066\\u2067\\u2068\\u2069"},
      {"\xe2\x80\xa9\xe2\x81\xaa", "\xe2\x80\xa9\xe2\x81\xaa"}, /* neighbours */
      {"bad \xff\xfe utf8 \xc3", "bad \\xff\\xfe utf8 \\xc3"},
      {"\xed\xa0\x80", "\\xed\\xa0\\x80"}, /* a surrogate is not UTF-8 */
      {"ok\nweb9  web  ready", "ok\\nweb9  web  ready"},
  };
  char out[256];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_true(cli_escape(cases[i].in, out, sizeof(out)));
    if (strcmp(out, cases[i].out) != 0)
      fail_msg("case %zu: got \"%s\", want \"%s\"", i, out, cases[i].out);
  }
}

static void escape_output_holds_no_raw_control_byte(void **state) {
  char in[256], out[4 * 256 + 1];
  for (int i = 1; i < 256; i++)
    in[i - 1] = (char)i;
  in[255] = '\0';
  assert_true(cli_escape(in, out, sizeof(out)));
  for (const unsigned char *p = (const unsigned char *)out; *p; p++)
    if (*p < 0x20 || *p == 0x7f || *p >= 0x80)
      fail_msg("raw byte 0x%02x at %td", *p, (const char *)p - out);
}

static void escape_cuts_at_a_character_and_says_so(void **state) {
  char out[8];
  assert_false(cli_escape("abcdefghij", out, sizeof(out)));
  assert_string_equal(out, "abcd...");
  /* é is two bytes: never half of it */
  assert_false(cli_escape("abc\xc3\xa9\xc3\xa9xyz", out, sizeof(out)));
  assert_string_equal(out, "abc...");
  assert_true(cli_escape("abcdefg", out, sizeof(out)));
  assert_string_equal(out, "abcdefg");
  assert_false(cli_escape("x", out, 0));
}

static void width_counts_characters_not_bytes(void **state) {
  assert_int_equal(cli_width(""), 0);
  assert_int_equal(cli_width("ready"), 5);
  assert_int_equal(cli_width("caf\xc3\xa9"), 4);
  assert_int_equal(cli_width("\xe2\x9c\x93\xe2\x9c\x93"), 2);
  assert_int_equal(cli_width("\\u202e"), 6);
}

static void check_path_refuses_config_path_max_bytes(void **state) {
  char *path = malloc(CONFIG_PATH_MAX + 1);
  assert_non_null(path);
  memset(path, 'a', CONFIG_PATH_MAX);
  path[CONFIG_PATH_MAX] = '\0';
  assert_int_equal(cli_check_path("check", path), EXIT_USAGE);
  path[CONFIG_PATH_MAX - 1] = '\0';
  assert_int_equal(cli_check_path("check", path), EXIT_OK);
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(escape_makes_control_and_bidi_characters_visible),
      cmocka_unit_test(escape_output_holds_no_raw_control_byte),
      cmocka_unit_test(escape_cuts_at_a_character_and_says_so),
      cmocka_unit_test(width_counts_characters_not_bytes),
      cmocka_unit_test(check_path_refuses_config_path_max_bytes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
