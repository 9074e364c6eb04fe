/*
 * test_statefiles.c — applied.json and members.json (agent/statefiles.c):
 * what is encoded parses back the same; garbage, truncated text, wrong
 * types, unknown versions, out-of-range values and oversized files are
 * refused whole with a reason, never half-used; the condition text tells
 * changed conditions apart; applied.log's intents parse back, and a
 * malformed log is refused whole with the line and the reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "statefiles.h"

#define SELF "web1"

/* ---- applied.json ---- */

static void applied_round_trip_keeps_every_entry(void **state) {
  struct applied_set s = {0}, back;
  char why[256];
  char *text;

  assert_int_equal(applied_put(&s, "holding", APPLIED_RUN, "peers a", 0), 0);
  assert_int_equal(applied_put(&s, "unit", APPLIED_REVERT, "peers b", 0), 0);
  assert_int_equal(applied_put(&s, "holding", APPLIED_REVERT, "peers c", 0), 0);
  assert_int_equal(s.n, 2);
  text = applied_encode(&s);
  assert_non_null(text);
  assert_int_equal(applied_parse(text, strlen(text), &back, why, sizeof(why)),
                   0);
  assert_int_equal(back.n, 2);
  assert_int_equal(applied_find(&back, "holding")->action, APPLIED_REVERT);
  assert_string_equal(applied_find(&back, "holding")->cond, "peers c");
  assert_int_equal(applied_find(&back, "unit")->action, APPLIED_REVERT);
  assert_null(applied_find(&back, "other"));
  free(text);
  applied_free(&s);
  applied_free(&back);
}

static bool not_b(const char *name, void *arg) {
  return strcmp(name, (const char *)arg) != 0;
}

static void applied_retain_drops_what_is_not_kept(void **state) {
  struct applied_set s = {0};

  assert_int_equal(applied_put(&s, "a", APPLIED_RUN, "x", 0), 0);
  assert_int_equal(applied_put(&s, "b", APPLIED_RUN, "y", 0), 0);
  assert_int_equal(applied_put(&s, "c", APPLIED_REVERT, "z", 0), 0);
  applied_retain(&s, not_b, (void *)"b");
  assert_int_equal(s.n, 2);
  assert_null(applied_find(&s, "b"));
  assert_string_equal(applied_find(&s, "c")->cond, "z");
  applied_free(&s);
}

static const struct {
  const char *name, *text, *why;
} bad_applied[] = {
    {"empty", "", "not JSON"},
    {"garbage", "\x01\x02garbage", "not JSON"},
    {"truncated", "{\"version\":1,\"behaviours\":{\"a\":{\"applied\":\"r",
     "not JSON"},
    {"not_an_object", "[1,2]", "not a JSON object"},
    {"no_format", "{\"behaviours\":{}}", "format 0, this agent reads format 1"},
    {"version_as_text", "{\"version\":\"1\",\"behaviours\":{}}",
     "\"version\" is not a whole number"},
    {"format_as_text", "{\"format\":\"1\",\"behaviours\":{}}",
     "\"format\" is not a whole number"},
    {"format_negative", "{\"format\":-1,\"behaviours\":{}}",
     "\"format\" is not a whole number"},
    {"future_version", "{\"version\":2,\"behaviours\":{}}", "format 2"},
    {"future_format", "{\"format\":2,\"behaviours\":{}}", "format 2"},
    {"no_behaviours", "{\"version\":1}", "no \"behaviours\""},
    {"behaviours_not_object", "{\"version\":1,\"behaviours\":[]}",
     "not an object"},
    {"entry_not_object", "{\"version\":1,\"behaviours\":{\"a\":1}}",
     "\"applied\""},
    {"unknown_action",
     "{\"version\":1,\"behaviours\":{\"a\":{\"applied\":\"maybe\","
     "\"condition\":\"x\"}}}",
     "\"applied\""},
    {"action_not_text",
     "{\"version\":1,\"behaviours\":{\"a\":{\"applied\":1,\"condition\":\"x\"}}"
     "}",
     "\"applied\""},
    {"no_condition",
     "{\"version\":1,\"behaviours\":{\"a\":{\"applied\":\"run\"}}}",
     "\"condition\""},
    {"bad_name",
     "{\"version\":1,\"behaviours\":{\"A B\":{\"applied\":\"run\","
     "\"condition\":\"x\"}}}",
     "name is invalid"},
    {"duplicate_key", "{\"version\":1,\"behaviours\":{},\"behaviours\":{}}",
     "not JSON"},
};

static void applied_parse_refuses_bad_files(void **state) {
  for (size_t i = 0; i < sizeof(bad_applied) / sizeof(bad_applied[0]); i++) {
    struct applied_set s;
    char why[256];
    int rv = applied_parse(bad_applied[i].text, strlen(bad_applied[i].text), &s,
                           why, sizeof(why));
    if (rv != CHOREO_EDECODE || strstr(why, bad_applied[i].why) == NULL)
      fail_msg("%s: rv %d, why \"%s\"", bad_applied[i].name, rv, why);
    assert_int_equal(s.n, 0);
    assert_null(s.v);
  }
}

static void applied_parse_refuses_a_too_long_condition(void **state) {
  size_t len = APPLIED_COND_MAX + 200;
  char *text = malloc(len), *cond = malloc(APPLIED_COND_MAX + 2);
  struct applied_set s;
  char why[256];

  assert_non_null(text);
  assert_non_null(cond);
  memset(cond, 'x', APPLIED_COND_MAX + 1);
  cond[APPLIED_COND_MAX + 1] = '\0';
  snprintf(text, len,
           "{\"version\":1,\"behaviours\":{\"a\":{\"applied\":\"run\","
           "\"condition\":\"%s\"}}}",
           cond);
  assert_int_equal(applied_parse(text, strlen(text), &s, why, sizeof(why)),
                   CHOREO_EDECODE);
  assert_non_null(strstr(why, "\"condition\""));
  free(text);
  free(cond);
}

static void applied_parse_refuses_an_oversized_file(void **state) {
  size_t len = APPLIED_FILE_MAX + 1;
  char *text = malloc(len);
  struct applied_set s;
  char why[256];

  assert_non_null(text);
  memset(text, ' ', len);
  assert_int_equal(applied_parse(text, len, &s, why, sizeof(why)),
                   CHOREO_EDECODE);
  assert_non_null(strstr(why, "larger than"));
  free(text);
}

static void applied_put_is_bounded(void **state) {
  struct applied_set s = {0};
  char name[CHOREO_NAME_MAX + 2];

  memset(name, 'a', sizeof(name) - 1);
  name[sizeof(name) - 1] = '\0';
  assert_int_equal(applied_put(&s, name, APPLIED_RUN, "", 0), CHOREO_EINVAL);
  for (int i = 0; i < CONFIG_BEHAVIOURS_MAX; i++) {
    snprintf(name, sizeof(name), "b%d", i);
    assert_int_equal(applied_put(&s, name, APPLIED_RUN, "", 0), 0);
  }
  assert_int_equal(applied_put(&s, "one-more", APPLIED_RUN, "", 0),
                   CHOREO_ETOOBIG);
  applied_free(&s);
}

static void applied_condition_tells_changed_conditions_apart(void **state) {
  struct config_behaviour a = {0}, b;
  char ta[APPLIED_COND_MAX + 1], tb[APPLIED_COND_MAX + 1];

  snprintf(a.peers.group, sizeof(a.peers.group), "db");
  a.has_when = true;
  a.when.kind = COND_ANY;
  a.when.nstates = 1;
  snprintf(a.when.states[0], sizeof(a.when.states[0]), "maintenance");
  b = a;
  applied_condition(&a, ta, sizeof(ta));
  applied_condition(&b, tb, sizeof(tb));
  assert_string_equal(ta, tb);
  assert_string_equal(ta, "peers group=db node=; when any maintenance");
  b.when.kind = COND_NONE;
  applied_condition(&b, tb, sizeof(tb));
  assert_string_not_equal(ta, tb);
  b = a;
  snprintf(b.peers.group, sizeof(b.peers.group), "web");
  applied_condition(&b, tb, sizeof(tb));
  assert_string_not_equal(ta, tb);
  b = a;
  b.when.nstates = 2;
  snprintf(b.when.states[1], sizeof(b.when.states[1]), "draining");
  applied_condition(&b, tb, sizeof(tb));
  assert_string_not_equal(ta, tb);
  b = a;
  b.when.kind = COND_FEWER_THAN;
  b.when.n = 2;
  applied_condition(&b, tb, sizeof(tb));
  assert_string_equal(tb,
                      "peers group=db node=; when fewer_than 2 maintenance");
}

/* ---- members.json ---- */

static void merge(struct peers *p, const char *name, const char *state,
                  const char *group) {
  struct record r;

  assert_int_equal(record_init(&r), 0);
  snprintf(r.name, sizeof(r.name), "%s", name);
  snprintf(r.addr, sizeof(r.addr), "tcp://127.0.0.1:7411");
  snprintf(r.state, sizeof(r.state), "%s", state);
  snprintf(r.groups[0], sizeof(r.groups[0]), "%s", group);
  r.ngroups = 1;
  r.inc = 7;
  r.ver = 3;
  assert_true(peers_merge_direct(p, &r, 0, 0, NULL) >= 0);
  record_free(&r);
}

static void members_round_trip_keeps_heard_members(void **state) {
  struct peers p;
  struct members_set s;
  struct wire_member unheard = {.name = "ghost", .addr = "tcp://h:1"};
  char why[256];
  size_t left = 99;
  char *text;

  peers_init(&p, SELF, PEERS_MAX_DEFAULT, NULL, NULL);
  merge(&p, "db1", "maintenance", "db");
  merge(&p, "web2", "ready", "web");
  (void)peers_merge_member(&p, &unheard, 0, 0, NULL);
  text = members_encode(&p, &left);
  assert_non_null(text);
  assert_int_equal(left, 0);
  assert_int_equal(
      members_parse(text, strlen(text), SELF, &s, why, sizeof(why)), 0);
  assert_int_equal(s.n, 2); /* the unheard one is not a member to wait for */
  assert_string_equal(s.v[0].name, "db1");
  assert_string_equal(s.v[0].state, "maintenance");
  assert_string_equal(s.v[0].addr, "tcp://127.0.0.1:7411");
  assert_int_equal(s.v[0].ngroups, 1);
  assert_string_equal(s.v[0].groups[0], "db");
  assert_int_equal(s.v[0].inc, 7);
  assert_int_equal(s.v[0].ver, 3);
  free(text);
  members_free(&s);
  peers_free(&p);
}

static void members_encode_caps_the_entries(void **state) {
  struct peers p;
  struct members_set s;
  char why[256], name[32];
  size_t left = 0;
  char *text;

  peers_init(&p, SELF, PEERS_MAX_DEFAULT, NULL, NULL);
  for (int i = 0; i < MEMBERS_FILE_ENTRIES + 5; i++) {
    snprintf(name, sizeof(name), "n%04d", i);
    merge(&p, name, "ready", "db");
  }
  text = members_encode(&p, &left);
  assert_non_null(text);
  assert_int_equal(left, 5);
  assert_int_equal(
      members_parse(text, strlen(text), SELF, &s, why, sizeof(why)), 0);
  assert_int_equal(s.n, MEMBERS_FILE_ENTRIES);
  free(text);
  members_free(&s);
  peers_free(&p);
}

static void members_digest_follows_membership_not_states(void **state) {
  struct peers p;
  uint64_t d0, d1;

  peers_init(&p, SELF, PEERS_MAX_DEFAULT, NULL, NULL);
  merge(&p, "db1", "ready", "db");
  d0 = members_digest(&p);
  /* a newer record with another state: same members */
  {
    struct record r;
    assert_int_equal(record_init(&r), 0);
    snprintf(r.name, sizeof(r.name), "db1");
    snprintf(r.addr, sizeof(r.addr), "tcp://127.0.0.1:7411");
    snprintf(r.state, sizeof(r.state), "maintenance");
    snprintf(r.groups[0], sizeof(r.groups[0]), "db");
    r.ngroups = 1;
    r.inc = 7;
    r.ver = 4;
    assert_true(peers_merge_direct(&p, &r, 0, 0, NULL) > 0);
    assert_int_equal(members_digest(&p), d0);
    /* another group, then another incarnation: saved again */
    snprintf(r.groups[0], sizeof(r.groups[0]), "cache");
    r.ver = 5;
    assert_true(peers_merge_direct(&p, &r, 0, 0, NULL) > 0);
    d1 = members_digest(&p);
    assert_true(d1 != d0);
    r.inc = 8;
    r.ver = 1;
    assert_true(peers_merge_direct(&p, &r, 0, 0, NULL) > 0);
    assert_true(members_digest(&p) != d1);
    record_free(&r);
  }
  d1 = members_digest(&p);
  merge(&p, "db2", "ready", "db");
  assert_true(members_digest(&p) != d1);
  peers_free(&p);
}

#define ENTRY(name, addr, inc, groups, state)                                  \
  "{\"version\":1,\"members\":[{\"name\":" name ",\"addr\":" addr              \
  ",\"inc\":" inc ",\"ver\":1,\"groups\":" groups ",\"state\":" state "}]}"
#define GOOD_ENTRY(n)                                                          \
  ENTRY("\"" n "\"", "\"tcp://h:1\"", "1", "[]", "\"ready\"")

static const struct {
  const char *name, *text, *why;
} bad_members[] = {
    {"garbage", "\xff\xfe", "not JSON"},
    {"truncated", "{\"version\":1,\"members\":[{\"name\":\"db1\"", "not JSON"},
    {"future_version", "{\"version\":9,\"members\":[]}", "format 9"},
    {"future_format", "{\"format\":9,\"members\":[]}", "format 9"},
    {"members_not_array", "{\"version\":1,\"members\":{}}", "not an array"},
    {"entry_not_object", "{\"version\":1,\"members\":[\"db1\"]}",
     "not an object"},
    {"bad_name", ENTRY("\"DB 1\"", "\"tcp://h:1\"", "1", "[]", "\"ready\""),
     "\"name\""},
    {"name_not_text", ENTRY("7", "\"tcp://h:1\"", "1", "[]", "\"ready\""),
     "\"name\""},
    {"bad_scheme", ENTRY("\"db1\"", "\"http://h:1\"", "1", "[]", "\"ready\""),
     "\"addr\""},
    {"control_char_addr",
     ENTRY("\"db1\"", "\"tcp://h\\n:1\"", "1", "[]", "\"ready\""), "\"addr\""},
    {"negative_inc", ENTRY("\"db1\"", "\"tcp://h:1\"", "-1", "[]", "\"ready\""),
     "\"inc\""},
    {"huge_inc",
     ENTRY("\"db1\"", "\"tcp://h:1\"", "9007199254740993", "[]", "\"ready\""),
     "\"inc\""},
    {"inc_as_text",
     ENTRY("\"db1\"", "\"tcp://h:1\"", "\"1\"", "[]", "\"ready\""), "\"inc\""},
    {"groups_not_array",
     ENTRY("\"db1\"", "\"tcp://h:1\"", "1", "\"db\"", "\"ready\""),
     "\"groups\""},
    {"bad_group", ENTRY("\"db1\"", "\"tcp://h:1\"", "1", "[1]", "\"ready\""),
     "group 1"},
    {"too_many_groups",
     ENTRY("\"db1\"", "\"tcp://h:1\"", "1",
           "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\","
           "\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]",
           "\"ready\""),
     "\"groups\""},
    {"bad_state", ENTRY("\"db1\"", "\"tcp://h:1\"", "1", "[]", "\"Ready!\""),
     "\"state\""},
    {"self", GOOD_ENTRY(SELF), "names this node"},
    {"listed_twice",
     "{\"version\":1,\"members\":[{\"name\":\"db1\",\"addr\":\"tcp://h:1\","
     "\"inc\":1,\"ver\":1,\"groups\":[],\"state\":\"ready\"},{\"name\":"
     "\"db1\",\"addr\":\"tcp://h:1\",\"inc\":1,\"ver\":1,\"groups\":[],"
     "\"state\":\"ready\"}]}",
     "listed twice"},
};

static void members_parse_refuses_bad_files(void **state) {
  for (size_t i = 0; i < sizeof(bad_members) / sizeof(bad_members[0]); i++) {
    struct members_set s;
    char why[256];
    int rv = members_parse(bad_members[i].text, strlen(bad_members[i].text),
                           SELF, &s, why, sizeof(why));
    if (rv != CHOREO_EDECODE || strstr(why, bad_members[i].why) == NULL)
      fail_msg("%s: rv %d, why \"%s\"", bad_members[i].name, rv, why);
    assert_int_equal(s.n, 0);
    assert_null(s.v);
  }
}

static void members_parse_refuses_too_many_entries(void **state) {
  size_t cap = (MEMBERS_FILE_ENTRIES + 2) * 128, used;
  char *text = malloc(cap);
  struct members_set s;
  char why[256];

  assert_non_null(text);
  used = (size_t)snprintf(text, cap, "{\"version\":1,\"members\":[");
  for (int i = 0; i <= MEMBERS_FILE_ENTRIES; i++)
    used += (size_t)snprintf(text + used, cap - used,
                             "%s{\"name\":\"n%d\",\"addr\":\"tcp://h:1\","
                             "\"inc\":1,\"ver\":1,\"groups\":[],\"state\":"
                             "\"ready\"}",
                             i != 0 ? "," : "", i);
  snprintf(text + used, cap - used, "]}");
  assert_int_equal(
      members_parse(text, strlen(text), SELF, &s, why, sizeof(why)),
      CHOREO_EDECODE);
  assert_non_null(strstr(why, "at most"));
  free(text);
}

static void members_parse_takes_a_good_entry(void **state) {
  const char *text = GOOD_ENTRY("db1");
  struct members_set s;
  char why[256];

  assert_int_equal(
      members_parse(text, strlen(text), SELF, &s, why, sizeof(why)), 0);
  assert_int_equal(s.n, 1);
  members_free(&s);
}

/* statefiles_format(): the format of each kind of file, the key's
 * wrong types refused, text that is no object left to the loaders. */
static const struct {
  const char *name, *text;
  int rv;
  int64_t format;
} formats[] = {
    {"format_1", "{\"format\":1,\"behaviours\":{}}", 0, 1},
    {"future", "{\"format\":7,\"whatever\":[]}", 0, 7},
    {"dev_version", "{\"version\":1,\"members\":[]}", 0, 1},
    {"format_first", "{\"format\":2,\"version\":1}", 0, 2},
    {"state_0_1_0", "{\"state\":\"ready\",\"inc\":5}", 0, 0},
    {"text", "{\"format\":\"2\"}", CHOREO_EINVAL, 0},
    {"fraction", "{\"format\":1.5}", CHOREO_EINVAL, 0},
    {"negative", "{\"format\":-3}", CHOREO_EINVAL, 0},
    {"null", "{\"format\":null}", CHOREO_EINVAL, 0},
    {"array", "[1]", CHOREO_EDECODE, 0},
    {"not_json", "{\"format\":", CHOREO_EDECODE, 0},
};

static void statefiles_format_reads_each_kind_of_file(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
    char why[128];
    int64_t f = -1;
    int rv = statefiles_format(formats[i].text, strlen(formats[i].text), &f,
                               why, sizeof(why));
    if (rv != formats[i].rv || (rv == 0 && f != formats[i].format) ||
        (rv != 0 && why[0] == '\0'))
      fail_msg("%s: rv %d, format %lld, why \"%s\"", formats[i].name, rv,
               (long long)f, why);
  }
}

/* Written when a 0.1.0 state_dir is migrated: refused, so that every
 * level behaviour is brought to its condition. */
static void applied_parse_refuses_what_is_unknown(void **state) {
  struct applied_set s;
  char why[256], *text = applied_encode_unknown();
  (void)state;

  assert_non_null(text);
  assert_int_equal(applied_parse(text, strlen(text), &s, why, sizeof(why)),
                   CHOREO_EDECODE);
  assert_string_equal(why, APPLIED_UNKNOWN_WHY);
  assert_int_equal(s.n, 0);
  free(text);
}

static void statefiles_are_written_with_a_format(void **state) {
  struct applied_set s = {0};
  char *text;
  int64_t f = 0;
  char why[64];
  (void)state;

  text = applied_encode(&s);
  assert_non_null(text);
  assert_non_null(strstr(text, "\"format\": 1"));
  assert_int_equal(statefiles_format(text, strlen(text), &f, why, sizeof(why)),
                   0);
  assert_int_equal(f, STATEFILES_VERSION);
  free(text);
}

/* ---- applied.log ---- */

static void applied_seq_round_trips_and_is_optional(void **state) {
  struct applied_set s = {0}, back;
  const char *old = "{\"format\":1,\"behaviours\":{\"h\":{\"applied\":\"run\","
                    "\"condition\":\"c\"}}}";
  const char *bad = "{\"format\":1,\"behaviours\":{\"h\":{\"applied\":\"run\","
                    "\"condition\":\"c\",\"seq\":-1}}}";
  char why[256];
  char *text;
  (void)state;

  assert_int_equal(applied_put(&s, "h", APPLIED_RUN, "c", 42), 0);
  text = applied_encode(&s);
  assert_non_null(text);
  assert_int_equal(applied_parse(text, strlen(text), &back, why, sizeof(why)),
                   0);
  assert_int_equal(applied_find(&back, "h")->seq, 42);
  applied_free(&back);
  assert_int_equal(applied_parse(old, strlen(old), &back, why, sizeof(why)), 0);
  assert_int_equal(applied_find(&back, "h")->seq, 0);
  applied_free(&back);
  assert_int_equal(applied_parse(bad, strlen(bad), &back, why, sizeof(why)),
                   CHOREO_EDECODE);
  assert_non_null(strstr(why, "\"seq\""));
  free(text);
  applied_free(&s);
}

static void applied_log_keeps_each_behaviours_last_intent(void **state) {
  char text[4 * (APPLIED_LOG_LINE_MAX + 1)], why[256];
  struct applied_intents s;
  size_t used = strlen(APPLIED_LOG_HEADER);
  (void)state;

  memcpy(text, APPLIED_LOG_HEADER, used);
  used += applied_log_line(text + used, sizeof(text) - used, 1, "holding",
                           APPLIED_RUN, applied_fingerprint("peers a"));
  used += applied_log_line(text + used, sizeof(text) - used, 2, "unit",
                           APPLIED_RUN, 0);
  used += applied_log_line(text + used, sizeof(text) - used, 7, "holding",
                           APPLIED_REVERT, UINT64_MAX);
  assert_int_equal(applied_log_parse(text, used, &s, why, sizeof(why)), 0);
  assert_int_equal(s.n, 2);
  assert_int_equal(s.last_seq, 7);
  assert_int_equal(applied_intent_find(&s, "holding")->seq, 7);
  assert_int_equal(applied_intent_find(&s, "holding")->action, APPLIED_REVERT);
  assert_true(applied_intent_find(&s, "holding")->fingerprint == UINT64_MAX);
  assert_int_equal(applied_intent_find(&s, "unit")->action, APPLIED_RUN);
  assert_null(applied_intent_find(&s, "other"));
  applied_intents_free(&s);
  assert_int_equal(applied_log_parse("", 0, &s, why, sizeof(why)), 0);
  assert_int_equal(s.n, 0);
  assert_int_equal(applied_log_parse(APPLIED_LOG_HEADER,
                                     strlen(APPLIED_LOG_HEADER), &s, why,
                                     sizeof(why)),
                   0);
  assert_int_equal(s.n, 0);
  assert_int_equal(s.last_seq, 0);
}

static void applied_log_line_refuses_what_it_cannot_write(void **state) {
  char line[APPLIED_LOG_LINE_MAX + 1];
  (void)state;

  assert_int_equal(
      applied_log_line(line, sizeof(line), 1, "bad name", APPLIED_RUN, 0), 0);
  assert_int_equal(
      applied_log_line(line, sizeof(line), 1, "a", APPLIED_NONE, 0), 0);
  assert_int_equal(applied_log_line(line, 8, 1, "holding", APPLIED_RUN, 0), 0);
  assert_int_equal(
      applied_log_line(line, sizeof(line), 3, "a", APPLIED_RUN, 0xab),
      strlen("3 a run 00000000000000ab\n"));
  assert_string_equal(line, "3 a run 00000000000000ab\n");
}

static void applied_log_parse_refuses_bad_logs(void **state) {
  static const struct {
    const char *text, *why;
  } cases[] = {
      {"1 a run 0000000000000000\n", "line 1: not \"format 1\""},
      {"format 2\n", "line 1: not \"format 1\""},
      {"format 1", "line 1: not \"format 1\""},
      {"format 1\n"
       "1 a run 0000000000000000",
       "line 2: torn"},
      {"format 1\n"
       "1 a run 0000000000000000\n2 b rev",
       "line 3: torn"},
      {"format 1\n"
       "1 a run\n",
       "line 2: not SEQ NAME ACTION FINGERPRINT"},
      {"format 1\n"
       "1 a run 0000000000000000 x\n",
       "line 2: not SEQ"},
      {"format 1\n"
       "1  a run 0000000000000000\n",
       "line 2: not SEQ"},
      {"format 1\n"
       "1 a/b run 0000000000000000\n",
       "line 2: the behaviour name"},
      {"format 1\n"
       "0 a run 0000000000000000\n",
       "line 2: SEQ is not"},
      {"format 1\n"
       "-1 a run 0000000000000000\n",
       "line 2: SEQ is not"},
      {"format 1\n"
       "99999999999999999999 a run 0000000000000000\n",
       "line 2: SEQ is not"},
      {"format 1\n"
       "1 a none 0000000000000000\n",
       "line 2: ACTION"},
      {"format 1\n"
       "1 a run 000000000000000\n",
       "line 2: FINGERPRINT"},
      {"format 1\n"
       "1 a run 000000000000000G\n",
       "line 2: FINGERPRINT"},
      {"format 1\n"
       "1 a run 000000000000000A\n",
       "line 2: FINGERPRINT"},
      {"format 1\n"
       "2 a run 0000000000000000\n2 b run 0000000000000000\n",
       "line 3: SEQ 2 does not grow"},
      {"format 1\n"
       "\n",
       "line 2: not SEQ"},
  };
  struct applied_intents s;
  char why[256];
  (void)state;

  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(applied_log_parse(cases[i].text, strlen(cases[i].text), &s,
                                       why, sizeof(why)),
                     CHOREO_EDECODE);
    if (strstr(why, cases[i].why) != why)
      fail_msg("case %zu: \"%s\" does not start with \"%s\"", i, why,
               cases[i].why);
    assert_int_equal(s.n, 0);
    assert_null(s.v);
  }
}

static void
applied_log_parse_refuses_nul_long_lines_and_big_logs(void **state) {
  char line[APPLIED_LOG_LINE_MAX + 32], why[256];
  char *big = malloc(APPLIED_LOG_MAX + 1);
  struct applied_intents s;
  (void)state;

  assert_int_equal(applied_log_parse("format 1\n1 a\0run 0000000000000000\n",
                                     34, &s, why, sizeof(why)),
                   CHOREO_EDECODE);
  assert_non_null(strstr(why, "not text"));
  memset(line, '1', sizeof(line));
  memcpy(line, APPLIED_LOG_HEADER, strlen(APPLIED_LOG_HEADER));
  line[sizeof(line) - 1] = '\n';
  assert_int_equal(applied_log_parse(line, sizeof(line), &s, why, sizeof(why)),
                   CHOREO_EDECODE);
  assert_non_null(strstr(why, "too long"));
  assert_non_null(big);
  memset(big, '\n', APPLIED_LOG_MAX + 1);
  memcpy(big, APPLIED_LOG_HEADER, strlen(APPLIED_LOG_HEADER));
  assert_int_equal(
      applied_log_parse(big, APPLIED_LOG_MAX + 1, &s, why, sizeof(why)),
      CHOREO_EDECODE);
  assert_non_null(strstr(why, "larger than"));
  free(big);
}

static void applied_log_parse_bounds_the_behaviours(void **state) {
  size_t cap = (APPLIED_LOG_NAMES + 1) * 40, used, all = 0;
  char *text = malloc(cap), name[32], why[256];
  struct applied_intents s;
  (void)state;

  assert_non_null(text);
  used = strlen(APPLIED_LOG_HEADER);
  memcpy(text, APPLIED_LOG_HEADER, used);
  for (size_t i = 0; i <= APPLIED_LOG_NAMES; i++) {
    snprintf(name, sizeof(name), "b%zu", i);
    all = used;
    used +=
        applied_log_line(text + used, cap - used, i + 1, name, APPLIED_RUN, 0);
  }
  assert_int_equal(applied_log_parse(text, used, &s, why, sizeof(why)),
                   CHOREO_EDECODE);
  assert_non_null(strstr(why, "more than"));
  assert_int_equal(applied_log_parse(text, all, &s, why, sizeof(why)), 0);
  assert_int_equal(s.n, APPLIED_LOG_NAMES);
  applied_intents_free(&s);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(applied_round_trip_keeps_every_entry),
      cmocka_unit_test(applied_parse_refuses_bad_files),
      cmocka_unit_test(applied_parse_refuses_a_too_long_condition),
      cmocka_unit_test(applied_parse_refuses_an_oversized_file),
      cmocka_unit_test(applied_put_is_bounded),
      cmocka_unit_test(applied_retain_drops_what_is_not_kept),
      cmocka_unit_test(applied_condition_tells_changed_conditions_apart),
      cmocka_unit_test(members_round_trip_keeps_heard_members),
      cmocka_unit_test(members_encode_caps_the_entries),
      cmocka_unit_test(members_digest_follows_membership_not_states),
      cmocka_unit_test(members_parse_refuses_bad_files),
      cmocka_unit_test(members_parse_refuses_too_many_entries),
      cmocka_unit_test(members_parse_takes_a_good_entry),
      cmocka_unit_test(statefiles_format_reads_each_kind_of_file),
      cmocka_unit_test(statefiles_are_written_with_a_format),
      cmocka_unit_test(applied_parse_refuses_what_is_unknown),
      cmocka_unit_test(applied_seq_round_trips_and_is_optional),
      cmocka_unit_test(applied_log_keeps_each_behaviours_last_intent),
      cmocka_unit_test(applied_log_line_refuses_what_it_cannot_write),
      cmocka_unit_test(applied_log_parse_refuses_bad_logs),
      cmocka_unit_test(applied_log_parse_refuses_nul_long_lines_and_big_logs),
      cmocka_unit_test(applied_log_parse_bounds_the_behaviours),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
