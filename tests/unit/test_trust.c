/*
 * test_trust.c — what identity lets through (trust.h): records checked
 * against their certificates and signatures, member list entries,
 * revocations, and the verification cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "identity.h"
#include "trust.h"
#include "wire.h"

#define NOW_S 1800000000LL
#define NOW_MS (NOW_S * 1000)
#define DAY 86400

struct world {
  struct id_key op, op2, db, web, self;
  struct id_cert db_cert, web_cert, self_cert, db_untrusted, db_expired,
      db_webname;
  struct trust t;
};

static void cert(const struct id_key *op, const char *node, const char *group,
                 const struct id_key *k, int64_t nb, int64_t na,
                 struct id_cert *out) {
  char groups[1][CHOREO_NAME_MAX + 1];
  char err[ID_ERR_MAX];
  snprintf(groups[0], sizeof(groups[0]), "%s", group);
  assert_int_equal(id_cert_issue(op, node, 1,
                                 (const char(*)[CHOREO_NAME_MAX + 1]) groups,
                                 k->pk, 0, nb, na, out, err),
                   0);
}

static int setup(void **state) {
  struct world *w = calloc(1, sizeof(*w));
  assert_non_null(w);
  assert_int_equal(id_key_generate(&w->op), 0);
  assert_int_equal(id_key_generate(&w->op2), 0);
  assert_int_equal(id_key_generate(&w->db), 0);
  assert_int_equal(id_key_generate(&w->web), 0);
  assert_int_equal(id_key_generate(&w->self), 0);
  cert(&w->op, "db1", "db", &w->db, NOW_S - DAY, NOW_S + DAY, &w->db_cert);
  cert(&w->op, "web1", "web", &w->web, NOW_S - DAY, NOW_S + DAY, &w->web_cert);
  cert(&w->op, "me", "web", &w->self, NOW_S - DAY, NOW_S + DAY, &w->self_cert);
  cert(&w->op2, "db1", "db", &w->db, NOW_S - DAY, NOW_S + DAY,
       &w->db_untrusted);
  cert(&w->op, "db1", "db", &w->db, NOW_S - 2 * DAY, NOW_S - DAY,
       &w->db_expired);
  cert(&w->op, "web1", "db", &w->db, NOW_S - DAY, NOW_S + DAY, &w->db_webname);
  assert_int_equal(trust_init(&w->t), 0);
  assert_int_equal(trust_configure(&w->t, "shop", &w->self, &w->self_cert,
                                   (const uint8_t(*)[ID_PUBLIC_BYTES])w->op.pk,
                                   1, true),
                   0);
  *state = w;
  return 0;
}

static int teardown(void **state) {
  struct world *w = *state;
  trust_free(&w->t);
  free(w);
  return 0;
}

/* A state message from `from` in group `group`, signed with k (NULL:
 * unsigned), carrying c (NULL: none). */
static void msg(struct wire_msg *m, const char *from, const char *group,
                uint64_t inc, uint64_t ver, const char *state,
                const struct id_key *k, const struct id_cert *c) {
  struct id_head h;
  assert_int_equal(wire_msg_init(m), 0);
  m->type = WIRE_STATE;
  snprintf(m->cluster, sizeof(m->cluster), "shop");
  snprintf(m->from, sizeof(m->from), "%s", from);
  m->inc = inc;
  snprintf(m->rec.name, sizeof(m->rec.name), "%s", from);
  snprintf(m->rec.addr, sizeof(m->rec.addr), "tcp://127.0.0.1:7411");
  m->rec.inc = inc;
  m->rec.ver = ver;
  snprintf(m->rec.state, sizeof(m->rec.state), "%s", state);
  m->rec.ngroups = 1;
  snprintf(m->rec.groups[0], sizeof(m->rec.groups[0]), "%s", group);
  json_object_set_new(m->rec.data, "dsn", json_string("postgres://db1"));
  if (k != NULL) {
    id_head_of("shop", &m->rec, &h);
    id_head_sign(k, &h, m->sig);
    m->has_sig = true;
  }
  if (c != NULL)
    m->cert = id_cert_to_json(c);
}

static enum trust_verdict check(struct world *w, struct wire_msg *m) {
  bool warn;
  enum trust_verdict v = trust_check_record(&w->t, m, NOW_MS, &warn);
  wire_msg_free(m);
  return v;
}

/* ---- records: the table ---- */

enum forge {
  F_NONE,
  F_UNSIGNED,      /* no signature */
  F_NO_CERT,       /* signed, no certificate sent or known */
  F_UNTRUSTED,     /* a certificate from an operator not trusted */
  F_EXPIRED,       /* an expired certificate */
  F_OTHER_NAME,    /* a certificate naming another node */
  F_GROUP,         /* a group outside the certificate */
  F_STATE_CHANGED, /* the state changed after signing */
  F_FUTURE_INC,    /* incarnation changed after signing (2^53 - 1) */
  F_WRONG_KEY,     /* signed by another node's key */
  F_LEFT,          /* left set after signing */
  F_ADDR,          /* address changed after signing */
  F_BAD_CERT,      /* a certificate object that doesn't parse */
  F_CERT_TAMPERED, /* the certificate's groups changed after issue */
};

static const struct {
  const char *name;
  enum forge forge;
  enum trust_verdict expect;
} record_cases[] = {
    {"a record signed by its node with its certificate", F_NONE, TRUST_OK},
    {"an unsigned record (required)", F_UNSIGNED, TRUST_DROP_UNSIGNED},
    {"signed, no certificate", F_NO_CERT, TRUST_DROP_NO_CERT},
    {"a certificate from an untrusted operator", F_UNTRUSTED,
     TRUST_DROP_UNTRUSTED},
    {"an expired certificate", F_EXPIRED, TRUST_DROP_EXPIRED},
    {"a certificate naming another node", F_OTHER_NAME, TRUST_DROP_NAME},
    {"a group outside the certificate", F_GROUP, TRUST_DROP_GROUPS},
    {"the state changed after signing", F_STATE_CHANGED, TRUST_DROP_BAD_SIG},
    {"a future incarnation", F_FUTURE_INC, TRUST_DROP_BAD_SIG},
    {"signed by another node's key", F_WRONG_KEY, TRUST_DROP_BAD_SIG},
    {"left set after signing", F_LEFT, TRUST_DROP_BAD_SIG},
    {"the address moved after signing", F_ADDR, TRUST_DROP_BAD_SIG},
    {"a certificate that doesn't parse", F_BAD_CERT, TRUST_DROP_BAD_CERT},
    {"a certificate changed after issue", F_CERT_TAMPERED, TRUST_DROP_CERT_SIG},
};

static void trust_checks_each_forged_record(void **state) {
  struct world *w = *state;

  for (size_t i = 0; i < sizeof(record_cases) / sizeof(record_cases[0]); i++) {
    struct wire_msg m;
    struct id_cert c = w->db_cert;
    const struct id_key *k = &w->db;
    const char *group = "db";
    enum trust_verdict v;

    switch (record_cases[i].forge) {
    case F_UNTRUSTED:
      c = w->db_untrusted;
      break;
    case F_EXPIRED:
      c = w->db_expired;
      break;
    case F_OTHER_NAME:
      c = w->db_webname;
      break;
    case F_WRONG_KEY:
      k = &w->web;
      break;
    case F_GROUP:
      group = "web";
      break;
    case F_CERT_TAMPERED:
      snprintf(c.groups[0], sizeof(c.groups[0]), "web");
      group = "web";
      break;
    default:
      break;
    }
    msg(&m, "db1", group, 5, 7, "maintenance",
        record_cases[i].forge == F_UNSIGNED ? NULL : k,
        record_cases[i].forge == F_NO_CERT ? NULL : &c);
    if (record_cases[i].forge == F_STATE_CHANGED)
      snprintf(m.rec.state, sizeof(m.rec.state), "ready");
    if (record_cases[i].forge == F_FUTURE_INC)
      m.inc = m.rec.inc = RECORD_COUNTER_MAX - 1;
    if (record_cases[i].forge == F_LEFT)
      m.rec.left = true;
    if (record_cases[i].forge == F_ADDR)
      snprintf(m.rec.addr, sizeof(m.rec.addr), "tcp://10.6.6.6:7411");
    if (record_cases[i].forge == F_BAD_CERT)
      json_object_set_new(m.cert, "key", json_string("not base64"));
    v = check(w, &m);
    if (v != record_cases[i].expect)
      print_error("%s: expected %s, got %s\n", record_cases[i].name,
                  trust_verdict_name(record_cases[i].expect),
                  trust_verdict_name(v));
    assert_int_equal(v, record_cases[i].expect);
    /* Nothing forged is remembered as verified (db1 was forgotten after
     * the case before). */
    if (record_cases[i].expect != TRUST_OK)
      assert_true(trust_find(&w->t, "db1") == NULL ||
                  !trust_find(&w->t, "db1")->has_head);
    trust_forget(&w->t, "db1");
  }
}

/* A heartbeat of an unchanged record costs no signature check; a new
 * version does; the certificate is verified once. */
static void trust_verifies_once_per_version(void **state) {
  struct world *w = *state;
  struct wire_msg m;
  uint64_t before;

  msg(&m, "db1", "db", 5, 7, "ready", &w->db, &w->db_cert);
  assert_int_equal(check(w, &m), TRUST_OK);
  before = w->t.verified;
  for (int i = 0; i < 10; i++) {
    msg(&m, "db1", "db", 5, 7, "ready", &w->db, &w->db_cert);
    assert_int_equal(check(w, &m), TRUST_OK);
  }
  assert_int_equal(w->t.verified, before);
  assert_int_equal(w->t.cache_hits, 10);
  msg(&m, "db1", "db", 5, 8, "maintenance", &w->db, &w->db_cert);
  assert_int_equal(check(w, &m), TRUST_OK);
  assert_int_equal(w->t.verified, before + 1);
  /* The same head with a garbage signature: the head is what was
   * verified, so it stays accepted, and costs nothing. */
  msg(&m, "db1", "db", 5, 8, "maintenance", &w->db, &w->db_cert);
  memset(m.sig, 0, sizeof(m.sig));
  assert_int_equal(check(w, &m), TRUST_OK);
  /* A changed body under the cached version is checked, and refused. */
  msg(&m, "db1", "db", 5, 8, "maintenance", &w->db, &w->db_cert);
  snprintf(m.rec.reason, sizeof(m.rec.reason), "forged");
  assert_int_equal(check(w, &m), TRUST_DROP_BAD_SIG);
  /* Later messages may leave the certificate out once it is known. */
  msg(&m, "db1", "db", 5, 9, "ready", &w->db, NULL);
  assert_int_equal(check(w, &m), TRUST_OK);
}

/* required: false lets unsigned records in, said once per peer, until
 * the peer has signed one. */
static void trust_accepts_unsigned_until_required_or_signed(void **state) {
  struct world *w = *state;
  struct wire_msg m;
  bool warn;

  assert_int_equal(trust_configure(&w->t, "shop", &w->self, &w->self_cert,
                                   (const uint8_t(*)[ID_PUBLIC_BYTES])w->op.pk,
                                   1, false),
                   0);
  msg(&m, "web1", "web", 1, 1, "ready", NULL, NULL);
  assert_int_equal(trust_check_record(&w->t, &m, NOW_MS, &warn),
                   TRUST_OK_UNSIGNED);
  assert_true(warn);
  assert_int_equal(trust_check_record(&w->t, &m, NOW_MS, &warn),
                   TRUST_OK_UNSIGNED);
  assert_false(warn);
  wire_msg_free(&m);
  msg(&m, "web1", "web", 1, 2, "ready", &w->web, &w->web_cert);
  assert_int_equal(check(w, &m), TRUST_OK);
  msg(&m, "web1", "web", 1, 3, "maintenance", NULL, NULL);
  assert_int_equal(check(w, &m), TRUST_DROP_UNSIGNED);
  assert_int_equal(w->t.unsigned_accepted, 2);
}

/* Identity off: nothing checked, nothing signed. */
static void trust_off_checks_nothing(void **state) {
  struct trust t;
  struct wire_msg m;
  struct wire_member e = {.name = "db1", .addr = "tcp://x:1", .inc = 9};
  bool warn;
  (void)state;

  assert_int_equal(trust_init(&t), 0);
  msg(&m, "db1", "db", 1, 1, "ready", NULL, NULL);
  assert_int_equal(trust_check_record(&t, &m, NOW_MS, &warn), TRUST_OK);
  trust_sign(&t, &m, &m.rec, true);
  assert_false(m.has_sig);
  assert_null(m.cert);
  assert_int_equal(trust_check_member(&t, &e, NOW_MS), TRUST_MEMBER_OK);
  assert_true(trust_own_entry(&t, &e));
  wire_msg_free(&m);
  trust_free(&t);
}

/* ---- member list entries ---- */

static void trust_checks_member_entries(void **state) {
  struct world *w = *state;
  struct wire_msg m, own;
  struct wire_member e;

  msg(&m, "db1", "db", 5, 7, "maintenance", &w->db, &w->db_cert);
  assert_int_equal(check(w, &m), TRUST_OK);
  /* What our list says of db1 carries db1's own signature... */
  msg(&own, "me", "web", 1, 1, "ready", NULL, NULL);
  memset(&e, 0, sizeof(e));
  snprintf(e.name, sizeof(e.name), "db1");
  snprintf(e.addr, sizeof(e.addr), "tcp://127.0.0.1:7411");
  e.inc = 5;
  e.ver = 7;
  trust_sign_member(&w->t, &e, &own.rec);
  assert_true(e.has_sig);
  /* ...but not of a version we didn't verify. */
  e.ver = 6;
  trust_sign_member(&w->t, &e, &own.rec);
  assert_false(e.has_sig);
  e.ver = 7;
  trust_sign_member(&w->t, &e, &own.rec);
  wire_msg_free(&own);
  /* Another agent's list with it: taken. */
  assert_int_equal(trust_check_member(&w->t, &e, NOW_MS), TRUST_MEMBER_OK);
  /* A forged left at the largest incarnation, without db1's signature. */
  struct wire_member forged = e;
  forged.has_sig = false;
  forged.left = true;
  forged.inc = RECORD_COUNTER_MAX - 1;
  assert_int_equal(trust_check_member(&w->t, &forged, NOW_MS),
                   TRUST_MEMBER_SKIP);
  /* The same with db1's old signature: it doesn't cover the change. */
  forged.has_sig = true;
  assert_int_equal(trust_check_member(&w->t, &forged, NOW_MS),
                   TRUST_MEMBER_SKIP);
  /* A forged address, unsigned: only a name and an address. */
  forged = e;
  forged.has_sig = false;
  snprintf(forged.addr, sizeof(forged.addr), "tcp://10.6.6.6:1");
  assert_int_equal(trust_check_member(&w->t, &forged, NOW_MS),
                   TRUST_MEMBER_HINT);
  /* A node never heard: a hint, whatever it claims, unless left. */
  forged = e;
  snprintf(forged.name, sizeof(forged.name), "ghost");
  assert_int_equal(trust_check_member(&w->t, &forged, NOW_MS),
                   TRUST_MEMBER_HINT);
  forged.left = true;
  assert_int_equal(trust_check_member(&w->t, &forged, NOW_MS),
                   TRUST_MEMBER_SKIP);
}

/* Entries about this node count only with its own signature. */
static void trust_takes_only_signed_entries_as_our_own(void **state) {
  struct world *w = *state;
  struct record own;
  struct wire_member e;

  assert_int_equal(record_init(&own), 0);
  snprintf(own.name, sizeof(own.name), "me");
  snprintf(own.addr, sizeof(own.addr), "tcp://127.0.0.1:7412");
  own.inc = 3;
  own.ver = 4;
  snprintf(own.state, sizeof(own.state), "ready");
  memset(&e, 0, sizeof(e));
  snprintf(e.name, sizeof(e.name), "me");
  snprintf(e.addr, sizeof(e.addr), "%s", own.addr);
  e.inc = 3;
  e.ver = 4;
  trust_sign_member(&w->t, &e, &own);
  assert_true(trust_own_entry(&w->t, &e));
  e.left = true;
  assert_false(trust_own_entry(&w->t, &e));
  e.has_sig = false;
  assert_false(trust_own_entry(&w->t, &e));
  record_free(&own);
}

/* Our own messages carry a signature others verify, and the
 * certificate. */
static void trust_signs_what_others_verify(void **state) {
  struct world *w = *state;
  struct trust other;
  struct wire_msg m;
  bool warn;

  msg(&m, "me", "web", 2, 1, "ready", NULL, NULL);
  trust_sign(&w->t, &m, &m.rec, false);
  assert_true(m.has_sig);
  assert_null(m.cert);
  trust_sign(&w->t, &m, &m.rec, true);
  assert_non_null(m.cert);
  assert_int_equal(trust_init(&other), 0);
  assert_int_equal(trust_configure(&other, "shop", &w->db, &w->db_cert,
                                   (const uint8_t(*)[ID_PUBLIC_BYTES])w->op.pk,
                                   1, true),
                   0);
  assert_int_equal(trust_check_record(&other, &m, NOW_MS, &warn), TRUST_OK);
  /* Another cluster's name in the head: not the same signed bytes. */
  snprintf(other.cluster, sizeof(other.cluster), "other");
  trust_forget(&other, "me");
  assert_int_equal(trust_check_record(&other, &m, NOW_MS, &warn),
                   TRUST_DROP_BAD_SIG);
  wire_msg_free(&m);
  trust_free(&other);
}

/* ---- a relay's verdicts ---- */

/* "me" as a relay signs its verdicts; db1's table, which holds me's
 * certificate, takes them as signed and refuses each forgery: a verdict
 * changed, added or dropped, another stamp (a replay under a new seq),
 * the count, another relay's name, no signature while required. */
enum vforge {
  V_NONE,
  V_ENTRY,
  V_ADDED,
  V_DROPPED,
  V_SEQ,
  V_TOTAL,
  V_FROM,
  V_UNSIGNED
};

static void relay_msg(struct wire_msg *m) {
  msg(m, "me", "web", 2, 1, "ready", NULL, NULL);
  m->relay = true;
  m->seq = 40;
  m->nlost = 2;
  m->lost_total = 3;
  snprintf(m->lost[0].name, sizeof(m->lost[0].name), "web7");
  m->lost[0].inc = 5;
  m->lost[0].ver = 6;
  snprintf(m->lost[1].name, sizeof(m->lost[1].name), "web8");
  m->lost[1].inc = 7;
  m->lost[1].ver = 8;
}

static void trust_checks_a_relays_verdicts(void **state) {
  static const struct {
    enum vforge f;
    bool ok;
  } rows[] = {{V_NONE, true},     {V_ENTRY, false},   {V_ADDED, false},
              {V_DROPPED, false}, {V_SEQ, false},     {V_TOTAL, false},
              {V_FROM, false},    {V_UNSIGNED, false}};
  struct world *w = *state;
  struct trust other;
  bool warn;

  assert_int_equal(trust_init(&other), 0);
  assert_int_equal(trust_configure(&other, "shop", &w->db, &w->db_cert,
                                   (const uint8_t(*)[ID_PUBLIC_BYTES])w->op.pk,
                                   1, true),
                   0);
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    struct wire_msg m;
    relay_msg(&m);
    trust_sign(&w->t, &m, &m.rec, true);
    trust_sign_verdicts(&w->t, &m);
    assert_true(m.has_lost_sig);
    /* The relay's record, and so its certificate, is taken first. */
    assert_int_equal(trust_check_record(&other, &m, NOW_MS, &warn), TRUST_OK);
    switch (rows[i].f) {
    case V_ENTRY:
      m.lost[1].ver = 9;
      break;
    case V_ADDED:
      m.nlost = 3;
      snprintf(m.lost[2].name, sizeof(m.lost[2].name), "db1");
      break;
    case V_DROPPED:
      m.nlost = 1;
      break;
    case V_SEQ:
      m.seq = 41;
      break;
    case V_TOTAL:
      m.lost_total = 2;
      break;
    case V_FROM:
      snprintf(m.from, sizeof(m.from), "web1");
      break;
    case V_UNSIGNED:
      m.has_lost_sig = false;
      break;
    case V_NONE:
      break;
    }
    if (trust_check_verdicts(&other, &m, NOW_MS) != rows[i].ok)
      fail_msg("row %zu: verdicts %s", i, rows[i].ok ? "refused" : "taken");
    wire_msg_free(&m);
  }
  /* An empty list (withdrawing every verdict) is signed and checked too. */
  {
    struct wire_msg m;
    relay_msg(&m);
    m.nlost = 0;
    m.lost_total = 0;
    trust_sign_verdicts(&w->t, &m);
    assert_true(trust_check_verdicts(&other, &m, NOW_MS));
    m.has_lost_sig = false;
    assert_false(trust_check_verdicts(&other, &m, NOW_MS));
    /* Not a relay's message: nothing to check. */
    m.relay = false;
    assert_true(trust_check_verdicts(&other, &m, NOW_MS));
    wire_msg_free(&m);
  }
  trust_free(&other);
}

/* ---- revocations ---- */

static json_t *revocation(const struct id_key *op, uint64_t serial,
                          const char *node) {
  struct id_revocation r;
  char err[ID_ERR_MAX];
  assert_int_equal(id_revocation_issue(op, serial, node, NOW_S, &r, err), 0);
  return id_revocation_to_json(&r);
}

static void trust_revokes_and_spreads(void **state) {
  struct world *w = *state;
  char node[CHOREO_NAME_MAX + 1], err[ID_ERR_MAX];
  struct wire_msg m;
  bool is_new;
  json_t *r, *a;

  msg(&m, "db1", "db", 5, 7, "ready", &w->db, &w->db_cert);
  assert_int_equal(check(w, &m), TRUST_OK);
  /* From an untrusted operator: refused. */
  r = revocation(&w->op2, w->db_cert.serial, "db1");
  assert_int_equal(trust_revoke(&w->t, r, true, &is_new, node, err),
                   CHOREO_EINVAL);
  json_decref(r);
  /* Malformed: refused, the field named. */
  r = json_pack("{s:i, s:s}", "revoke", 1, "serial", "xyz");
  assert_int_equal(trust_revoke(&w->t, r, true, &is_new, node, err),
                   CHOREO_EINVAL);
  assert_non_null(strstr(err, "serial"));
  json_decref(r);
  r = revocation(&w->op, w->db_cert.serial, "");
  assert_int_equal(trust_revoke(&w->t, r, true, &is_new, node, err), 0);
  assert_true(is_new);
  assert_string_equal(node, "db1"); /* the holder of that certificate */
  assert_int_equal(trust_revoke(&w->t, r, true, &is_new, node, err), 0);
  assert_false(is_new);
  json_decref(r);
  assert_true(trust_is_revoked(&w->t, w->db_cert.serial));
  /* Its records are dropped from now on, certificate sent or not. */
  msg(&m, "db1", "db", 5, 7, "ready", &w->db, &w->db_cert);
  assert_int_equal(check(w, &m), TRUST_DROP_REVOKED);
  msg(&m, "db1", "db", 5, 8, "ready", &w->db, NULL);
  assert_int_equal(check(w, &m), TRUST_DROP_NO_CERT);
  /* Carried in the next TRUST_SPREAD_COUNT state messages, and in every
   * member list. */
  for (int i = 0; i < TRUST_SPREAD_COUNT; i++) {
    a = trust_revoked_for(&w->t, false);
    assert_int_equal(json_array_size(a), 1);
    json_decref(a);
  }
  assert_null(trust_revoked_for(&w->t, false));
  a = trust_revoked_for(&w->t, true);
  assert_int_equal(json_array_size(a), 1);
  json_decref(a);
  a = trust_revoked_all(&w->t);
  assert_int_equal(json_array_size(a), 1);
  json_decref(a);
}

/* ---- this node's own identity ---- */

static void trust_checks_own_identity(void **state) {
  struct world *w = *state;
  const uint8_t(*ops)[ID_PUBLIC_BYTES] =
      (const uint8_t(*)[ID_PUBLIC_BYTES])w->op.pk;
  char groups[2][CHOREO_NAME_MAX + 1] = {"web", "db"};
  char err[ID_ERR_MAX];
  const char *why;

  assert_null(trust_check_own(&w->self, &w->self_cert, ops, 1, "me", 1,
                              (const char(*)[CHOREO_NAME_MAX + 1]) groups,
                              NOW_S, err));
  why =
      trust_check_own(&w->db, &w->self_cert, ops, 1, "me", 1,
                      (const char(*)[CHOREO_NAME_MAX + 1]) groups, NOW_S, err);
  assert_non_null(strstr(why, "another key"));
  why =
      trust_check_own(&w->self, &w->self_cert, ops, 1, "web9", 1,
                      (const char(*)[CHOREO_NAME_MAX + 1]) groups, NOW_S, err);
  assert_non_null(strstr(why, "names node me, not web9"));
  why =
      trust_check_own(&w->self, &w->self_cert, ops, 1, "me", 2,
                      (const char(*)[CHOREO_NAME_MAX + 1]) groups, NOW_S, err);
  assert_non_null(strstr(why, "node.groups has db"));
  why = trust_check_own(
      &w->self, &w->self_cert, (const uint8_t(*)[ID_PUBLIC_BYTES])w->op2.pk, 1,
      "me", 1, (const char(*)[CHOREO_NAME_MAX + 1]) groups, NOW_S, err);
  assert_non_null(strstr(why, "not in identity.operators"));
  why = trust_check_own(&w->self, &w->self_cert, ops, 1, "me", 1,
                        (const char(*)[CHOREO_NAME_MAX + 1]) groups,
                        NOW_S + 2 * DAY, err);
  assert_non_null(strstr(why, "expired"));
}

/* A renewed certificate (same key, new serial) keeps the newest head
 * verified: a restart that lost its state (a lower incarnation) under the
 * new certificate doesn't stop others from vouching for the node's
 * newest signed head in member lists, which is what makes it refute. */
static void trust_keeps_the_newest_head_across_a_renewal(void **state) {
  struct world *w = *state;
  struct wire_msg m, own;
  struct wire_member e = {
      .name = "db1", .addr = "tcp://127.0.0.1:7411", .inc = 5, .ver = 7};
  struct id_cert renewed;

  cert(&w->op, "db1", "db", &w->db, NOW_S - DAY, NOW_S + 2 * DAY, &renewed);
  msg(&m, "db1", "db", 5, 7, "ready", &w->db, &w->db_cert);
  assert_int_equal(check(w, &m), TRUST_OK);
  msg(&m, "db1", "db", 4, 1, "garbage", &w->db, &renewed);
  assert_int_equal(check(w, &m), TRUST_OK);
  msg(&own, "me", "web", 1, 1, "ready", NULL, NULL);
  trust_sign_member(&w->t, &e, &own.rec);
  assert_true(e.has_sig);
  /* A new key is another matter: what the old one signed is dropped. */
  cert(&w->op, "db1", "db", &w->web, NOW_S - DAY, NOW_S + DAY, &renewed);
  msg(&m, "db1", "db", 4, 2, "garbage", &w->web, &renewed);
  assert_int_equal(check(w, &m), TRUST_OK);
  trust_sign_member(&w->t, &e, &own.rec);
  assert_false(e.has_sig);
  wire_msg_free(&own);
}

/* A new operator list forgets what was verified against the old one. */
static void trust_rechecks_after_operators_change(void **state) {
  struct world *w = *state;
  struct wire_msg m;

  msg(&m, "db1", "db", 5, 7, "ready", &w->db, &w->db_cert);
  assert_int_equal(check(w, &m), TRUST_OK);
  assert_int_equal(trust_configure(&w->t, "shop", &w->self, &w->self_cert,
                                   (const uint8_t(*)[ID_PUBLIC_BYTES])w->op2.pk,
                                   1, true),
                   0);
  msg(&m, "db1", "db", 5, 7, "ready", &w->db, &w->db_cert);
  assert_int_equal(check(w, &m), TRUST_DROP_UNTRUSTED);
}

int main(void) {
#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      TEST(trust_checks_each_forged_record),
      TEST(trust_verifies_once_per_version),
      TEST(trust_accepts_unsigned_until_required_or_signed),
      cmocka_unit_test(trust_off_checks_nothing),
      TEST(trust_checks_a_relays_verdicts),
      TEST(trust_checks_member_entries),
      TEST(trust_takes_only_signed_entries_as_our_own),
      TEST(trust_signs_what_others_verify),
      TEST(trust_revokes_and_spreads),
      TEST(trust_checks_own_identity),
      TEST(trust_rechecks_after_operators_change),
      TEST(trust_keeps_the_newest_head_across_a_renewal),
  };
#undef TEST
  return cmocka_run_group_tests(tests, NULL, NULL);
}
