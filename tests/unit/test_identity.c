/*
 * test_identity.c — node identity (agent/identity.c): signing keys and
 * their files, certificates and their verdicts, revocations, the signature
 * over a record's head, serials, and every malformed certificate or
 * revocation the parser must refuse with the field named.
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
#include <sodium.h>

#include "identity.h"

typedef const char (*groups_t)[CHOREO_NAME_MAX + 1];

#define NOW 1700000000
#define DAY 86400

static const char two_groups[2][CHOREO_NAME_MAX + 1] = {"web", "eu-west"};

static void new_key(struct id_key *k) {
  assert_int_equal(id_key_generate(k), 0);
}

/* A certificate for "web1" in web and eu-west, valid NOW - 1 day to NOW
 * + 1 day, signed by op. */
static void issue(const struct id_key *op, const struct id_key *node,
                  struct id_cert *c) {
  char err[ID_ERR_MAX] = "";
  assert_int_equal(id_cert_issue(op, "web1", 2, two_groups, node->pk, 0,
                                 NOW - DAY, NOW + DAY, c, err),
                   0);
}

static bool ops_trust(const struct id_cert *c, const struct id_key *op) {
  const uint8_t(*ops)[ID_PUBLIC_BYTES] =
      (const uint8_t(*)[ID_PUBLIC_BYTES])op->pk;
  return id_cert_verify(c, ops, 1, NOW) == ID_CERT_OK;
}

/* ---- keys ---- */

static void key_round_trips_through_its_text(void **state) {
  struct id_key k, back;
  char text[ID_SECRET_B64 + 1], line[ID_SECRET_B64 + 8], err[ID_ERR_MAX];

  new_key(&k);
  id_key_format(&k, text);
  assert_int_equal(strlen(text), ID_SECRET_B64);
  snprintf(line, sizeof(line), " \t%s\r\n\n", text);
  assert_int_equal(id_key_parse(line, strlen(line), &back, err), 0);
  assert_memory_equal(back.sk, k.sk, ID_SECRET_BYTES);
  assert_memory_equal(back.pk, k.pk, ID_PUBLIC_BYTES);
  id_key_wipe(&back);
  for (size_t i = 0; i < sizeof(back); i++)
    assert_int_equal(((uint8_t *)&back)[i], 0);
}

static void key_parse_refuses_what_is_not_a_key(void **state) {
  struct id_key k;
  char good[ID_SECRET_B64 + 1], text[256], err[ID_ERR_MAX];
  uint8_t sk[ID_SECRET_BYTES];

  new_key(&k);
  id_key_format(&k, good);
  struct {
    const char *text;
    const char *want;
  } rows[] = {
      {"", "no key"},
      {" \n\t ", "no key"},
      {"abc", "88 characters"},
      {NULL /* 89 chars */, "88 characters"},
      {NULL /* a '!' */, "invalid base64"},
      {NULL /* a blank inside */, "invalid base64"},
      {NULL /* public half of another key */, "does not match its seed"},
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    const char *t = rows[i].text;
    if (i == 3) {
      snprintf(text, sizeof(text), "%sA", good);
      t = text;
    } else if (i == 4 || i == 5) {
      snprintf(text, sizeof(text), "%s", good);
      text[10] = i == 4 ? '!' : ' ';
      t = text;
    } else if (i == 6) {
      struct id_key other;
      new_key(&other);
      memcpy(sk, k.sk, 32);
      memcpy(sk + 32, other.pk, 32);
      id_b64_format(sk, sizeof(sk), text, sizeof(text));
      t = text;
    }
    err[0] = '\0';
    assert_int_equal(id_key_parse(t, strlen(t), &k, err), CHOREO_EINVAL);
    if (strstr(err, rows[i].want) == NULL)
      fail_msg("row %zu: \"%s\" does not say \"%s\"", i, err, rows[i].want);
  }
}

struct dir {
  char path[64];
  char file[96];
};

static int dir_setup(void **state) {
  struct dir *d = calloc(1, sizeof(*d));
  if (d == NULL)
    return -1;
  snprintf(d->path, sizeof(d->path), "/tmp/test_identity.XXXXXX");
  if (mkdtemp(d->path) == NULL) {
    free(d);
    return -1;
  }
  snprintf(d->file, sizeof(d->file), "%s/node.key", d->path);
  *state = d;
  return 0;
}

static int dir_teardown(void **state) {
  struct dir *d = *state;
  char big[128];
  unlink(d->file);
  snprintf(big, sizeof(big), "%s/sub", d->path);
  rmdir(big);
  rmdir(d->path);
  free(d);
  return 0;
}

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(path, mode), 0);
}

static void key_load_refuses_a_file_others_may_access(void **state) {
  struct dir *d = *state;
  struct id_key k, back;
  char text[ID_SECRET_B64 + 2], err[ID_ERR_MAX], want[512];
  struct {
    mode_t mode;
    const char *what; /* NULL: accepted */
  } rows[] = {
      {0600, NULL},       {0400, NULL},         {0644, "readable"},
      {0640, "readable"}, {0604, "readable"},   {0620, "writable"},
      {0602, "writable"}, {0610, "accessible"}, {0601, "accessible"},
  };

  new_key(&k);
  id_key_format(&k, text);
  strcat(text, "\n");
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    write_file(d->file, text, rows[i].mode);
    err[0] = '\0';
    if (rows[i].what == NULL) {
      assert_int_equal(id_key_load(d->file, &back, err), 0);
      assert_memory_equal(back.sk, k.sk, ID_SECRET_BYTES);
      continue;
    }
    assert_int_equal(id_key_load(d->file, &back, err), CHOREO_EINVAL);
    snprintf(want, sizeof(want), "%s: %s by others (mode %04o); chmod 600 %s",
             d->file, rows[i].what, (unsigned)rows[i].mode, d->file);
    assert_string_equal(err, want);
  }
}

static void key_load_names_the_file_it_refuses(void **state) {
  struct dir *d = *state;
  struct id_key k;
  char err[ID_ERR_MAX], want[512], big[ID_KEY_FILE_MAX + 2];

  assert_int_equal(id_key_load(d->file, &k, err), CHOREO_EINVAL);
  snprintf(want, sizeof(want), "%s: cannot open: No such file or directory",
           d->file);
  assert_string_equal(err, want);

  write_file(d->file, "not a key\n", 0600);
  assert_int_equal(id_key_load(d->file, &k, err), CHOREO_EINVAL);
  snprintf(want, sizeof(want), "%s: not a signing key", d->file);
  assert_non_null(strstr(err, want));

  memset(big, ' ', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  write_file(d->file, big, 0600);
  assert_int_equal(id_key_load(d->file, &k, err), CHOREO_EINVAL);
  snprintf(want, sizeof(want), "%s: larger than %d bytes", d->file,
           ID_KEY_FILE_MAX);
  assert_string_equal(err, want);

  assert_int_equal(id_key_load(d->path, &k, err), CHOREO_EINVAL);
  snprintf(want, sizeof(want), "%s: not a regular file", d->path);
  assert_string_equal(err, want);
}

static void public_key_round_trips_and_refuses_bad_text(void **state) {
  struct id_key k;
  char text[ID_PUBLIC_B64 + 2], err[ID_ERR_MAX];
  uint8_t pk[ID_PUBLIC_BYTES];

  new_key(&k);
  id_public_format(k.pk, text);
  assert_int_equal(id_public_parse(text, pk, err), 0);
  assert_memory_equal(pk, k.pk, ID_PUBLIC_BYTES);
  strcat(text, "A");
  assert_int_equal(id_public_parse(text, pk, err), CHOREO_EINVAL);
  assert_non_null(strstr(err, "not a public key"));
  assert_int_equal(id_public_parse("", pk, err), CHOREO_EINVAL);
  text[ID_PUBLIC_B64] = '\0';
  text[3] = '*';
  assert_int_equal(id_public_parse(text, pk, err), CHOREO_EINVAL);
  /* The last character before the padding carries 4 unused bits: set. */
  id_public_format(k.pk, text);
  text[ID_PUBLIC_B64 - 2] = text[ID_PUBLIC_B64 - 2] == 'A' ? 'B' : 'A';
  if (id_b64_parse(text, pk, ID_PUBLIC_BYTES) == 0) {
    char again[ID_PUBLIC_B64 + 1];
    id_public_format(pk, again);
    assert_string_equal(again, text); /* canonical only */
  }
}

/* ---- certificates ---- */

static void cert_round_trips_through_json_and_verifies(void **state) {
  struct id_key op, node;
  struct id_cert c, back;
  char err[ID_ERR_MAX], *text;
  json_t *j;

  new_key(&op);
  new_key(&node);
  issue(&op, &node, &c);
  assert_true(c.serial != 0);
  assert_memory_equal(c.operator_key, op.pk, ID_PUBLIC_BYTES);
  j = id_cert_to_json(&c);
  assert_non_null(j);
  text = json_dumps(j, JSON_COMPACT);
  assert_non_null(text);
  {
    static const char head[] = "{\"cert\":1,\"node\":\"web1\",\"groups\":"
                               "[\"web\",\"eu-west\"],\"key\":\"";
    assert_int_equal(strncmp(text, head, sizeof(head) - 1), 0);
  }
  assert_int_equal(id_cert_parse(text, strlen(text), &back, err), 0);
  assert_memory_equal(&back, &c, sizeof(c));
  assert_true(ops_trust(&back, &op));
  free(text);
  json_decref(j);
}

static void cert_is_refused_by_an_operator_it_does_not_name(void **state) {
  struct id_key op, other, node;
  struct id_cert c;
  const uint8_t(*ops)[ID_PUBLIC_BYTES];

  new_key(&op);
  new_key(&other);
  new_key(&node);
  issue(&op, &node, &c);
  ops = (const uint8_t(*)[ID_PUBLIC_BYTES])other.pk;
  assert_int_equal(id_cert_verify(&c, ops, 1, NOW), ID_CERT_UNTRUSTED);
  assert_int_equal(id_cert_verify(&c, ops, 0, NOW), ID_CERT_UNTRUSTED);
  assert_string_equal(id_cert_verdict_name(ID_CERT_UNTRUSTED),
                      "untrusted operator");
}

static void cert_is_valid_from_not_before_to_not_after_included(void **state) {
  struct id_key op, node;
  struct id_cert c;
  const uint8_t(*ops)[ID_PUBLIC_BYTES];

  new_key(&op);
  new_key(&node);
  issue(&op, &node, &c);
  ops = (const uint8_t(*)[ID_PUBLIC_BYTES])op.pk;
  assert_int_equal(id_cert_verify(&c, ops, 1, NOW - DAY - 1), ID_CERT_NOT_YET);
  assert_int_equal(id_cert_verify(&c, ops, 1, NOW - DAY), ID_CERT_OK);
  assert_int_equal(id_cert_verify(&c, ops, 1, NOW + DAY), ID_CERT_OK);
  assert_int_equal(id_cert_verify(&c, ops, 1, NOW + DAY + 1), ID_CERT_EXPIRED);
  assert_string_equal(id_cert_verdict_name(ID_CERT_NOT_YET), "not yet valid");
  assert_string_equal(id_cert_verdict_name(ID_CERT_EXPIRED), "expired");
}

/* Each row changes one signed field of a good certificate. */
static void change_node(struct id_cert *c) {
  c->node[0] = 'x';
}
static void change_group(struct id_cert *c) {
  c->groups[1][0] = 'x';
}
static void drop_group(struct id_cert *c) {
  c->ngroups = 1;
}
static void add_group(struct id_cert *c) {
  snprintf(c->groups[2], sizeof(c->groups[2]), "db");
  c->ngroups = 3;
}
static void swap_groups(struct id_cert *c) {
  char g[CHOREO_NAME_MAX + 1];
  memcpy(g, c->groups[0], sizeof(g));
  memcpy(c->groups[0], c->groups[1], sizeof(g));
  memcpy(c->groups[1], g, sizeof(g));
}
static void change_key(struct id_cert *c) {
  c->key[5] ^= 1;
}
static void change_serial(struct id_cert *c) {
  c->serial ^= 1;
}
static void change_not_before(struct id_cert *c) {
  c->not_before -= 1;
}
static void change_not_after(struct id_cert *c) {
  c->not_after += 1;
}
static void change_sig(struct id_cert *c) {
  c->sig[63] ^= 0x10;
}
static void too_many_groups(struct id_cert *c) {
  c->ngroups = CHOREO_GROUPS_MAX + 1;
}

static void cert_signature_breaks_when_any_field_changes(void **state) {
  static void (*const changes[])(struct id_cert *) = {
      change_node,      change_group, drop_group,      add_group,
      swap_groups,      change_key,   change_serial,   change_not_before,
      change_not_after, change_sig,   too_many_groups,
  };
  struct id_key op, node;
  struct id_cert c, bad;
  const uint8_t(*ops)[ID_PUBLIC_BYTES];

  new_key(&op);
  new_key(&node);
  issue(&op, &node, &c);
  ops = (const uint8_t(*)[ID_PUBLIC_BYTES])op.pk;
  for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
    bad = c;
    changes[i](&bad);
    if (id_cert_verify(&bad, ops, 1, NOW) != ID_CERT_BAD_SIG)
      fail_msg("change %zu still verifies", i);
  }
  /* The operator key is signed too: swapped for a trusted one, it fails. */
  {
    struct id_key op2;
    uint8_t two[2][ID_PUBLIC_BYTES];
    new_key(&op2);
    memcpy(two[0], op.pk, ID_PUBLIC_BYTES);
    memcpy(two[1], op2.pk, ID_PUBLIC_BYTES);
    bad = c;
    memcpy(bad.operator_key, op2.pk, ID_PUBLIC_BYTES);
    assert_int_equal(id_cert_verify(&bad, (const uint8_t(*)[32])two, 2, NOW),
                     ID_CERT_BAD_SIG);
  }
}

static void cert_rotation_trusts_either_of_two_operators(void **state) {
  struct id_key old_op, new_op, node;
  struct id_cert a, b;
  uint8_t ops[2][ID_PUBLIC_BYTES];
  const uint8_t(*o)[ID_PUBLIC_BYTES] = (const uint8_t(*)[ID_PUBLIC_BYTES])ops;

  new_key(&old_op);
  new_key(&new_op);
  new_key(&node);
  issue(&old_op, &node, &a);
  issue(&new_op, &node, &b);
  memcpy(ops[0], old_op.pk, ID_PUBLIC_BYTES);
  memcpy(ops[1], new_op.pk, ID_PUBLIC_BYTES);
  assert_int_equal(id_cert_verify(&a, o, 2, NOW), ID_CERT_OK);
  assert_int_equal(id_cert_verify(&b, o, 2, NOW), ID_CERT_OK);
  /* The old key retired: its certificates are no longer trusted. */
  assert_int_equal(id_cert_verify(&a, o + 1, 1, NOW), ID_CERT_UNTRUSTED);
  assert_int_equal(id_cert_verify(&b, o + 1, 1, NOW), ID_CERT_OK);
}

static void cert_issue_refuses_bad_arguments(void **state) {
  static const char dup[2][CHOREO_NAME_MAX + 1] = {"web", "web"};
  static const char bad[1][CHOREO_NAME_MAX + 1] = {"Web!"};
  static char many[CHOREO_GROUPS_MAX + 1][CHOREO_NAME_MAX + 1];
  struct id_key op;
  struct id_cert c;
  char err[ID_ERR_MAX];

  new_key(&op);
  for (size_t i = 0; i < CHOREO_GROUPS_MAX + 1; i++)
    snprintf(many[i], sizeof(many[i]), "g%zu", i);
  assert_int_equal(
      id_cert_issue(&op, "web 1", 0, NULL, op.pk, 0, 0, 1, &c, err),
      CHOREO_EINVAL);
  assert_string_equal(err, "node: not a valid name");
  assert_int_equal(id_cert_issue(&op, "web1", 2, dup, op.pk, 0, 0, 1, &c, err),
                   CHOREO_EINVAL);
  assert_string_equal(err, "field \"groups\": \"web\" twice");
  assert_int_equal(id_cert_issue(&op, "web1", 1, bad, op.pk, 0, 0, 1, &c, err),
                   CHOREO_EINVAL);
  assert_string_equal(err, "field \"groups\": entry 0 is not a valid name");
  assert_int_equal(id_cert_issue(&op, "web1", CHOREO_GROUPS_MAX + 1,
                                 (groups_t)many, op.pk, 0, 0, 1, &c, err),
                   CHOREO_EINVAL);
  assert_string_equal(err, "field \"groups\": more than 16");
  assert_int_equal(id_cert_issue(&op, "web1", 0, NULL, op.pk, 0, 2, 1, &c, err),
                   CHOREO_EINVAL);
  assert_string_equal(err, "validity: not_before is after not_after");
  assert_int_equal(
      id_cert_issue(&op, "web1", 0, NULL, op.pk, 0, -1, 1, &c, err),
      CHOREO_EINVAL);
  assert_string_equal(err, "validity: negative time");
  /* Sixteen groups and no group at all are both fine. */
  assert_int_equal(id_cert_issue(&op, "web1", CHOREO_GROUPS_MAX, (groups_t)many,
                                 op.pk, 7, 0, 0, &c, err),
                   0);
  assert_int_equal(c.serial, 7);
  assert_int_equal(id_cert_issue(&op, "web1", 0, NULL, op.pk, 0, 0, 0, &c, err),
                   0);
  assert_int_equal(c.ngroups, 0);
}

static void cert_issue_draws_a_new_serial_each_time(void **state) {
  struct id_key op;
  struct id_cert a, b;

  new_key(&op);
  issue(&op, &op, &a);
  issue(&op, &op, &b);
  assert_true(a.serial != 0 && b.serial != 0);
  assert_true(a.serial != b.serial);
}

static void cert_reports_the_first_group_it_does_not_list(void **state) {
  struct id_key op;
  struct id_cert c;
  struct record r;

  new_key(&op);
  issue(&op, &op, &c);
  assert_int_equal(record_init(&r), 0);
  assert_null(id_cert_missing_group(&c, &r));
  snprintf(r.groups[0], sizeof(r.groups[0]), "eu-west");
  r.ngroups = 1;
  assert_null(id_cert_missing_group(&c, &r));
  snprintf(r.groups[1], sizeof(r.groups[1]), "db");
  snprintf(r.groups[2], sizeof(r.groups[2]), "admin");
  r.ngroups = 3;
  assert_string_equal(id_cert_missing_group(&c, &r), "db");
  assert_true(id_cert_has_group(&c, "web"));
  assert_false(id_cert_has_group(&c, "db"));
  record_free(&r);
}

/* ---- malformed certificates ---- */

struct bad_row {
  const char *field;
  const char *value; /* JSON text; NULL: the field removed */
  const char *want;  /* the error */
};

/* obj with field set to value (or removed), then parsed by from. */
static void check_bad_rows(const json_t *good, const struct bad_row *rows,
                           size_t n,
                           int (*from)(const json_t *, void *, char *),
                           void *out) {
  for (size_t i = 0; i < n; i++) {
    json_t *j = json_deep_copy(good);
    char err[ID_ERR_MAX] = "";

    assert_non_null(j);
    if (rows[i].value == NULL) {
      json_object_del(j, rows[i].field);
    } else {
      json_t *v =
          json_loads(rows[i].value, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
      assert_non_null(v);
      json_object_set_new(j, rows[i].field, v);
    }
    if (from(j, out, err) != CHOREO_EINVAL)
      fail_msg("row %zu (%s = %s) accepted", i, rows[i].field,
               rows[i].value ? rows[i].value : "(none)");
    if (strcmp(err, rows[i].want) != 0)
      fail_msg("row %zu: \"%s\", not \"%s\"", i, err, rows[i].want);
    json_decref(j);
  }
}

static int cert_from(const json_t *j, void *out, char *err) {
  return id_cert_from_json(j, out, err);
}

static int revocation_from(const json_t *j, void *out, char *err) {
  return id_revocation_from_json(j, out, err);
}

static void cert_parse_refuses_malformed_objects(void **state) {
  static const struct bad_row rows[] = {
      {"cert", NULL, "field \"cert\": missing"},
      {"cert", "2", "field \"cert\": format 2 is not 1"},
      {"cert", "\"1\"", "field \"cert\": not an integer"},
      {"node", NULL, "field \"node\": missing"},
      {"node", "7", "field \"node\": not a string"},
      {"node", "\"\"", "field \"node\": not a valid name"},
      {"node", "\"Web 1\"", "field \"node\": not a valid name"},
      {"groups", NULL, "field \"groups\": missing"},
      {"groups", "\"web\"", "field \"groups\": not an array"},
      {"groups", "[\"web\",\"web\"]", "field \"groups\": \"web\" twice"},
      {"groups", "[\"web\",3]",
       "field \"groups\": entry 1 is not a valid name"},
      {"groups", "[\"a b\"]", "field \"groups\": entry 0 is not a valid name"},
      {"groups",
       "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\","
       "\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]",
       "field \"groups\": more than 16"},
      {"key", NULL, "field \"key\": missing"},
      {"key", "\"AAAA\"", "field \"key\": not 32 bytes of base64"},
      {"key", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"",
       "field \"key\": not 32 bytes of base64"},
      {"key", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA!=\"",
       "field \"key\": not 32 bytes of base64"},
      {"key", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\\u0000=\"",
       "field \"key\": holds a NUL byte"},
      {"serial", NULL, "field \"serial\": missing"},
      {"serial", "12", "field \"serial\": not a string"},
      {"serial", "\"0123\"", "field \"serial\": not 16 hex digits"},
      {"serial", "\"0123456789abcdeg\"", "field \"serial\": not 16 hex digits"},
      {"not_before", NULL, "field \"not_before\": missing"},
      {"not_before", "-1", "field \"not_before\": negative"},
      {"not_before", "1.5", "field \"not_before\": not an integer"},
      {"not_before", "4000000000", "field \"not_before\": after not_after"},
      {"not_after", "\"soon\"", "field \"not_after\": not an integer"},
      {"not_after", "1", "field \"not_before\": after not_after"},
      {"operator", NULL, "field \"operator\": missing"},
      {"operator", "null", "field \"operator\": not a string"},
      {"sig", NULL, "field \"sig\": missing"},
      {"sig", "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"",
       "field \"sig\": not 64 bytes of base64"},
  };
  struct id_key op;
  struct id_cert c, back;
  json_t *good;
  char err[ID_ERR_MAX];

  new_key(&op);
  issue(&op, &op, &c);
  good = id_cert_to_json(&c);
  assert_non_null(good);
  check_bad_rows(good, rows, sizeof(rows) / sizeof(rows[0]), cert_from, &back);
  /* A field it does not know is ignored. */
  json_object_set_new(good, "comment", json_string("later formats"));
  assert_int_equal(id_cert_from_json(good, &back, err), 0);
  assert_memory_equal(&back, &c, sizeof(c));
  json_decref(good);
  assert_int_equal(id_cert_from_json(NULL, &back, err), CHOREO_EINVAL);
  assert_string_equal(err, "not a JSON object");
}

static void cert_parse_refuses_text_that_is_not_one_object(void **state) {
  static const struct {
    const char *text;
    const char *want;
  } rows[] = {
      {"", "not JSON"},
      {"[1]", "not a JSON object"},
      {"{\"cert\":1", "not JSON"},
      {"{\"cert\":1,\"cert\":1}", "not JSON"},
      {"{} {}", "not JSON"},
      {"{\"cert\":1}", "field \"node\": missing"},
  };
  struct id_cert c;
  char err[ID_ERR_MAX], *big;

  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    assert_int_equal(id_cert_parse(rows[i].text, strlen(rows[i].text), &c, err),
                     CHOREO_EINVAL);
    if (strncmp(err, rows[i].want, strlen(rows[i].want)) != 0)
      fail_msg("row %zu: \"%s\" does not start \"%s\"", i, err, rows[i].want);
  }
  /* A key file given by mistake: no part of it is quoted. */
  assert_int_equal(id_cert_parse("secretKEY==", 11, &c, err), CHOREO_EINVAL);
  assert_null(strstr(err, "secret"));
  big = malloc(ID_TEXT_MAX + 2);
  assert_non_null(big);
  memset(big, ' ', ID_TEXT_MAX + 1);
  big[0] = '{';
  big[ID_TEXT_MAX] = '}';
  big[ID_TEXT_MAX + 1] = '\0';
  assert_int_equal(id_cert_parse(big, ID_TEXT_MAX + 1, &c, err), CHOREO_EINVAL);
  assert_string_equal(err, "larger than 2048 bytes");
  free(big);
}

static void cert_load_reads_a_file_and_names_it(void **state) {
  struct dir *d = *state;
  struct id_key op;
  struct id_cert c, back;
  char err[ID_ERR_MAX], want[512], *text;
  json_t *j;

  new_key(&op);
  issue(&op, &op, &c);
  j = id_cert_to_json(&c);
  text = json_dumps(j, JSON_COMPACT);
  assert_non_null(text);
  write_file(d->file, text, 0644); /* a certificate is public */
  assert_int_equal(id_cert_load(d->file, &back, err), 0);
  assert_memory_equal(&back, &c, sizeof(c));
  write_file(d->file, "{\"cert\":1}", 0644);
  assert_int_equal(id_cert_load(d->file, &back, err), CHOREO_EINVAL);
  snprintf(want, sizeof(want), "%s: field \"node\": missing", d->file);
  assert_string_equal(err, want);
  free(text);
  json_decref(j);
}

/* ---- revocations ---- */

static void revocation_round_trips_and_verifies(void **state) {
  struct id_key op, other;
  struct id_revocation r, back, bad;
  const uint8_t(*ops)[ID_PUBLIC_BYTES];
  char err[ID_ERR_MAX], *text;
  json_t *j;

  new_key(&op);
  new_key(&other);
  assert_int_equal(
      id_revocation_issue(&op, 0x0123456789abcdefULL, "web1", NOW, &r, err), 0);
  j = id_revocation_to_json(&r);
  text = json_dumps(j, JSON_COMPACT);
  assert_non_null(text);
  {
    static const char head[] = "{\"revoke\":1,\"serial\":\"0123456789abcdef\","
                               "\"node\":\"web1\",\"time\":1700000000,"
                               "\"operator\":\"";
    assert_int_equal(strncmp(text, head, sizeof(head) - 1), 0);
  }
  assert_int_equal(id_revocation_parse(text, strlen(text), &back, err), 0);
  assert_memory_equal(&back, &r, sizeof(r));
  ops = (const uint8_t(*)[ID_PUBLIC_BYTES])op.pk;
  assert_true(id_revocation_verify(&back, ops, 1));
  assert_false(id_revocation_verify(&back, (const uint8_t(*)[32])other.pk, 1));

  bad = r;
  bad.serial ^= 1;
  assert_false(id_revocation_verify(&bad, ops, 1));
  bad = r;
  bad.node[0] = 'x';
  assert_false(id_revocation_verify(&bad, ops, 1));
  bad = r;
  bad.time++;
  assert_false(id_revocation_verify(&bad, ops, 1));
  bad = r;
  bad.sig[0] ^= 1;
  assert_false(id_revocation_verify(&bad, ops, 1));
  bad = r;
  memcpy(bad.operator_key, other.pk, ID_PUBLIC_BYTES);
  assert_false(id_revocation_verify(&bad, (const uint8_t(*)[32])other.pk, 1));
  free(text);
  json_decref(j);
}

static void revocation_by_serial_alone_has_an_empty_node(void **state) {
  struct id_key op;
  struct id_revocation r, back;
  char err[ID_ERR_MAX];
  json_t *j;

  new_key(&op);
  assert_int_equal(id_revocation_issue(&op, 42, NULL, NOW, &r, err), 0);
  assert_string_equal(r.node, "");
  j = id_revocation_to_json(&r);
  assert_string_equal(json_string_value(json_object_get(j, "node")), "");
  assert_int_equal(id_revocation_from_json(j, &back, err), 0);
  assert_true(id_revocation_verify(&back, (const uint8_t(*)[32])op.pk, 1));
  json_decref(j);
  assert_int_equal(id_revocation_issue(&op, 42, "a b", NOW, &r, err),
                   CHOREO_EINVAL);
  assert_string_equal(err, "node: not a valid name");
  assert_int_equal(id_revocation_issue(&op, 42, "web1", -5, &r, err),
                   CHOREO_EINVAL);
  assert_string_equal(err, "time: negative");
}

static void revocation_parse_refuses_malformed_objects(void **state) {
  static const struct bad_row rows[] = {
      {"revoke", NULL, "field \"revoke\": missing"},
      {"revoke", "0", "field \"revoke\": format 0 is not 1"},
      {"serial", NULL, "field \"serial\": missing"},
      {"serial", "\"xyz\"", "field \"serial\": not 16 hex digits"},
      {"node", NULL, "field \"node\": missing"},
      {"node", "\"a b\"", "field \"node\": not a valid name"},
      {"node", "[]", "field \"node\": not a string"},
      {"time", NULL, "field \"time\": missing"},
      {"time", "-3", "field \"time\": negative"},
      {"time", "true", "field \"time\": not an integer"},
      {"operator", "\"\"", "field \"operator\": not 32 bytes of base64"},
      {"sig", NULL, "field \"sig\": missing"},
  };
  struct id_key op;
  struct id_revocation r, back;
  char err[ID_ERR_MAX];
  json_t *good;

  new_key(&op);
  assert_int_equal(id_revocation_issue(&op, 9, "web1", NOW, &r, err), 0);
  good = id_revocation_to_json(&r);
  assert_non_null(good);
  check_bad_rows(good, rows, sizeof(rows) / sizeof(rows[0]), revocation_from,
                 &back);
  json_decref(good);
  assert_int_equal(id_revocation_parse("{\"cert\":1}", 10, &back, err),
                   CHOREO_EINVAL);
  assert_string_equal(err, "field \"revoke\": missing");
}

/* ---- record heads ---- */

static void make_record(struct record *r, const char *data_json) {
  assert_int_equal(record_init(r), 0);
  snprintf(r->name, sizeof(r->name), "web1");
  snprintf(r->addr, sizeof(r->addr), "tcp://10.0.0.1:7946");
  r->inc = 3;
  r->ver = 17;
  snprintf(r->state, sizeof(r->state), "ready");
  snprintf(r->reason, sizeof(r->reason), "deployed");
  r->since_ms = 1700000000123;
  r->ngroups = 2;
  snprintf(r->groups[0], sizeof(r->groups[0]), "web");
  snprintf(r->groups[1], sizeof(r->groups[1]), "eu-west");
  json_decref(r->data);
  r->data = json_loads(data_json, 0, NULL);
  assert_non_null(r->data);
}

static void rec_state(struct record *r) {
  snprintf(r->state, sizeof(r->state), "draining");
}
static void rec_reason(struct record *r) {
  r->reason[0] = 'D';
}
static void rec_since(struct record *r) {
  r->since_ms++;
}
static void rec_group(struct record *r) {
  r->groups[0][0] = 'x';
}
static void rec_group_count(struct record *r) {
  r->ngroups = 1;
}
static void rec_data_value(struct record *r) {
  json_object_set_new(r->data, "version", json_string("1.3"));
}
static void rec_data_key(struct record *r) {
  json_t *v = json_incref(json_object_get(r->data, "version"));
  json_object_del(r->data, "version");
  json_object_set_new(r->data, "versio", v);
}
static void rec_data_added(struct record *r) {
  json_object_set_new(r->data, "zone", json_string(""));
}
static void rec_inc(struct record *r) {
  r->inc++;
}
static void rec_ver(struct record *r) {
  r->ver++;
}
static void rec_left(struct record *r) {
  r->left = true;
}
static void rec_addr(struct record *r) {
  r->addr[6] = '2';
}
static void rec_name(struct record *r) {
  r->name[3] = '2';
}

static void head_signature_covers_every_record_field(void **state) {
  static const struct {
    void (*change)(struct record *);
    const char *what;
  } rows[] = {
      {rec_state, "state"},
      {rec_reason, "reason"},
      {rec_since, "since"},
      {rec_group, "a group"},
      {rec_group_count, "groups"},
      {rec_data_value, "a data value"},
      {rec_data_key, "a data key"},
      {rec_data_added, "a data key added"},
      {rec_inc, "inc"},
      {rec_ver, "ver"},
      {rec_left, "left"},
      {rec_addr, "addr"},
      {rec_name, "name"},
  };
  const char *data = "{\"version\":\"1.2\",\"port\":\"8080\"}";
  struct id_key k, other;
  struct record r;
  struct id_head h;
  uint8_t sig[ID_SIG_BYTES], digest[ID_HASH_BYTES], d2[ID_HASH_BYTES];

  new_key(&k);
  new_key(&other);
  make_record(&r, data);
  id_head_of("shop", &r, &h);
  id_head_sign(&k, &h, sig);
  assert_true(id_head_verify(k.pk, &h, sig));
  assert_false(id_head_verify(other.pk, &h, sig));
  id_head_digest(&h, digest);
  record_free(&r);

  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    make_record(&r, data);
    rows[i].change(&r);
    id_head_of("shop", &r, &h);
    if (id_head_verify(k.pk, &h, sig))
      fail_msg("changing %s keeps the signature valid", rows[i].what);
    id_head_digest(&h, d2);
    if (memcmp(d2, digest, sizeof(d2)) == 0)
      fail_msg("changing %s keeps the digest", rows[i].what);
    record_free(&r);
  }
  /* The cluster is signed too. */
  make_record(&r, data);
  id_head_of("shop2", &r, &h);
  assert_false(id_head_verify(k.pk, &h, sig));
  record_free(&r);
}

static void head_ignores_the_order_of_data_keys_in_json(void **state) {
  struct record a, b;
  struct id_head ha, hb;
  struct id_key k;
  uint8_t sig[ID_SIG_BYTES], da[ID_HASH_BYTES], db[ID_HASH_BYTES];

  new_key(&k);
  make_record(&a, "{\"a\":\"1\",\"b\":\"2\",\"ab\":\"3\",\"B\":\"4\"}");
  make_record(&b, "{\"B\":\"4\",\"ab\":\"3\",\"b\":\"2\",\"a\":\"1\"}");
  id_head_of("shop", &a, &ha);
  id_head_of("shop", &b, &hb);
  assert_memory_equal(ha.body_hash, hb.body_hash, ID_HASH_BYTES);
  id_head_sign(&k, &ha, sig);
  assert_true(id_head_verify(k.pk, &hb, sig));
  id_head_digest(&ha, da);
  id_head_digest(&hb, db);
  assert_memory_equal(da, db, ID_HASH_BYTES);
  record_free(&a);
  record_free(&b);
}

static void head_never_signs_fields_beyond_their_limits(void **state) {
  char cluster[CHOREO_CLUSTER_MAX + 2];
  struct id_key k;
  struct record r;
  struct id_head h;
  uint8_t sig[ID_SIG_BYTES], zero[ID_SIG_BYTES] = {0};

  new_key(&k);
  make_record(&r, "{}");
  memset(cluster, 'c', sizeof(cluster) - 1);
  cluster[sizeof(cluster) - 1] = '\0';
  id_head_of(cluster, &r, &h);
  id_head_sign(&k, &h, sig);
  assert_memory_equal(sig, zero, sizeof(sig));
  assert_false(id_head_verify(k.pk, &h, sig));
  record_free(&r);
}

/* ---- the signed bytes, as identity.c's header comment lays them out ---- */

struct ref {
  uint8_t b[65536];
  size_t n;
};

static void ref_put(struct ref *r, const void *p, size_t n) {
  assert_true(r->n + n <= sizeof(r->b));
  memcpy(r->b + r->n, p, n);
  r->n += n;
}

static void ref_u32(struct ref *r, uint32_t v) {
  uint8_t b[4] = {v >> 24, v >> 16, v >> 8, v};
  ref_put(r, b, 4);
}

static void ref_u64(struct ref *r, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; i++)
    b[i] = (uint8_t)(v >> (56 - 8 * i));
  ref_put(r, b, 8);
}

static void ref_str(struct ref *r, const char *s) {
  ref_u32(r, (uint32_t)strlen(s));
  ref_put(r, s, strlen(s));
}

static void ref_domain(struct ref *r, const char *name) {
  ref_put(r, name, strlen(name) + 1);
  ref_put(r, "\x01", 1);
}

static int str_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void ref_body_hash(const struct record *rec, uint8_t out[32]) {
  static struct ref r;
  const char *keys[64], *key;
  size_t n = 0;
  json_t *v;

  r.n = 0;
  ref_domain(&r, "choreo-body");
  ref_str(&r, rec->state);
  ref_str(&r, rec->reason);
  ref_u64(&r, (uint64_t)rec->since_ms);
  ref_u32(&r, (uint32_t)rec->ngroups);
  for (size_t i = 0; i < rec->ngroups; i++)
    ref_str(&r, rec->groups[i]);
  json_object_foreach(rec->data, key, v) keys[n++] = key;
  qsort(keys, n, sizeof(keys[0]), str_cmp);
  ref_u32(&r, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    ref_str(&r, keys[i]);
    ref_str(&r, json_string_value(json_object_get(rec->data, keys[i])));
  }
  crypto_generichash(out, 32, r.b, r.n, NULL, 0);
}

static void signed_bytes_follow_the_documented_layout(void **state) {
  static struct ref r;
  struct id_key op;
  struct id_cert c;
  struct id_revocation rv;
  struct record rec;
  struct id_head h;
  uint8_t want[32], got[32], sig[64];
  char err[ID_ERR_MAX];

  new_key(&op);
  /* A certificate's signature is over these bytes. */
  issue(&op, &op, &c);
  r.n = 0;
  ref_domain(&r, "choreo-cert");
  ref_str(&r, "web1");
  ref_u32(&r, 2);
  ref_str(&r, "web");
  ref_str(&r, "eu-west");
  ref_put(&r, op.pk, 32);
  ref_u64(&r, c.serial);
  ref_u64(&r, (uint64_t)(NOW - DAY));
  ref_u64(&r, (uint64_t)(NOW + DAY));
  ref_put(&r, op.pk, 32);
  assert_int_equal(crypto_sign_verify_detached(c.sig, r.b, r.n, op.pk), 0);

  /* A revocation's. */
  assert_int_equal(id_revocation_issue(&op, 77, "web1", NOW, &rv, err), 0);
  r.n = 0;
  ref_domain(&r, "choreo-revoke");
  ref_u64(&r, 77);
  ref_str(&r, "web1");
  ref_u64(&r, NOW);
  ref_put(&r, op.pk, 32);
  assert_int_equal(crypto_sign_verify_detached(rv.sig, r.b, r.n, op.pk), 0);

  /* The body hash, with few keys and with more than a record may hold
   * (the two ways identity.c sorts them), and the head. */
  for (int many = 0; many < 2; many++) {
    make_record(&rec, "{\"b\":\"2\",\"a\":\"1\",\"B\":\"x\",\"ab\":\"\"}");
    for (int i = 0; many && i < 40; i++) {
      char k[8];
      snprintf(k, sizeof(k), "k%02d", 39 - i);
      json_object_set_new(rec.data, k, json_string(k));
    }
    ref_body_hash(&rec, want);
    id_body_hash(&rec, got);
    assert_memory_equal(got, want, 32);
    id_head_of("shop", &rec, &h);
    r.n = 0;
    ref_domain(&r, "choreo-head");
    ref_str(&r, "shop");
    ref_str(&r, "web1");
    ref_u64(&r, 3);
    ref_u64(&r, 17);
    ref_put(&r, "\x00", 1);
    ref_str(&r, "tcp://10.0.0.1:7946");
    ref_put(&r, want, 32);
    crypto_generichash(want, 32, r.b, r.n, NULL, 0);
    id_head_digest(&h, got);
    assert_memory_equal(got, want, 32);
    id_head_sign(&op, &h, sig);
    assert_int_equal(crypto_sign_verify_detached(sig, r.b, r.n, op.pk), 0);
    record_free(&rec);
  }
}

/* ---- serials ---- */

static void serial_is_sixteen_hex_digits(void **state) {
  static const char *const bad[] = {"",
                                    "0123456789abcde",
                                    "0123456789abcdef0",
                                    "0123456789abcdeg",
                                    " 123456789abcdef",
                                    "0x23456789abcdef",
                                    "-123456789abcdef"};
  char text[17];
  uint64_t s;

  id_serial_format(0x00ab00cd00ef0012ULL, text);
  assert_string_equal(text, "00ab00cd00ef0012");
  assert_int_equal(id_serial_parse(text, &s), 0);
  assert_true(s == 0x00ab00cd00ef0012ULL);
  assert_int_equal(id_serial_parse("FFFFFFFFFFFFFFFF", &s), 0);
  assert_true(s == UINT64_MAX);
  id_serial_format(UINT64_MAX, text);
  assert_string_equal(text, "ffffffffffffffff");
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    if (id_serial_parse(bad[i], &s) != CHOREO_EINVAL)
      fail_msg("\"%s\" accepted", bad[i]);
  assert_int_equal(id_serial_parse(NULL, &s), CHOREO_EINVAL);
}

#define T(f) cmocka_unit_test(f)
#define TD(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(key_round_trips_through_its_text),
      T(key_parse_refuses_what_is_not_a_key),
      TD(key_load_refuses_a_file_others_may_access),
      TD(key_load_names_the_file_it_refuses),
      T(public_key_round_trips_and_refuses_bad_text),
      T(cert_round_trips_through_json_and_verifies),
      T(cert_is_refused_by_an_operator_it_does_not_name),
      T(cert_is_valid_from_not_before_to_not_after_included),
      T(cert_signature_breaks_when_any_field_changes),
      T(cert_rotation_trusts_either_of_two_operators),
      T(cert_issue_refuses_bad_arguments),
      T(cert_issue_draws_a_new_serial_each_time),
      T(cert_reports_the_first_group_it_does_not_list),
      T(cert_parse_refuses_malformed_objects),
      T(cert_parse_refuses_text_that_is_not_one_object),
      TD(cert_load_reads_a_file_and_names_it),
      T(revocation_round_trips_and_verifies),
      T(revocation_by_serial_alone_has_an_empty_node),
      T(revocation_parse_refuses_malformed_objects),
      T(head_signature_covers_every_record_field),
      T(head_ignores_the_order_of_data_keys_in_json),
      T(head_never_signs_fields_beyond_their_limits),
      T(signed_bytes_follow_the_documented_layout),
      T(serial_is_sixteen_hex_digits),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
