/*
 * test_wire.c — the message codec (agent/wire.c): exact round trips of
 * every message type, and a decoder that refuses every malformed, hostile
 * or oversized input with the right reason and a detail naming the field.
 *
 * Most rejections are a table: each row takes a valid message, changes one
 * field (replaces, deletes, or blows it up) and says how the decoder must
 * refuse it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"
#include "wire.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* ---- sample messages ---- */

static void sample_record(struct record *r, const char *name, uint64_t inc) {
  snprintf(r->name, sizeof(r->name), "%s", name);
  snprintf(r->addr, sizeof(r->addr), "tcp://10.0.0.5:7410");
  r->inc = inc;
  r->ver = 42;
  r->left = false;
  snprintf(r->state, sizeof(r->state), "maintenance");
  snprintf(r->reason, sizeof(r->reason), "schema upgrade \xe2\x80\x94 \"v2\"");
  r->since_ms = 1700000000123;
  r->ngroups = 2;
  snprintf(r->groups[0], sizeof(r->groups[0]), "db");
  snprintf(r->groups[1], sizeof(r->groups[1]), "primary");
  json_object_set_new(r->data, "url", json_string("http://10.0.0.5/"));
  json_object_set_new(r->data, "note", json_string("h\xc3\xa9llo"));
}

static void sample_msg(struct wire_msg *m, enum wire_type type) {
  assert_int_equal(wire_msg_init(m), 0);
  m->type = type;
  snprintf(m->cluster, sizeof(m->cluster), "shop");
  snprintf(m->from, sizeof(m->from), "db1");
  m->inc = 1700000000;
  m->seq = 77;
  m->time = 1700000000123;
  m->leaf = type == WIRE_LEAVE;
  /* Freshness: a nonce always, asking for echoes in a hello, echoing two
   * others' nonces in a state message. */
  m->nonce = 0x0123456789abcdefULL;
  m->proving = type == WIRE_HELLO;
  if (type == WIRE_STATE) {
    m->necho = 2;
    snprintf(m->echo[0].name, sizeof(m->echo[0].name), "web1");
    m->echo[0].nonce = 1;
    snprintf(m->echo[1].name, sizeof(m->echo[1].name), "web2");
    m->echo[1].nonce = UINT64_MAX;
    /* two members it holds as lost */
    m->nunheard = 2;
    snprintf(m->unheard[0], sizeof(m->unheard[0]), "web3");
    snprintf(m->unheard[1], sizeof(m->unheard[1]), "app-1");
    /* quiet relays: a relay's two newest verdicts of five, asking for a
     * resync */
    m->relay = true;
    m->nlost = 2;
    snprintf(m->lost[0].name, sizeof(m->lost[0].name), "web4");
    m->lost[0].inc = 1764061200;
    m->lost[0].ver = 7;
    snprintf(m->lost[1].name, sizeof(m->lost[1].name), "web5");
    m->lost[1].inc = 1764061300;
    m->lost[1].ver = 0;
    m->lost_total = 5;
    m->has_lost_sig = true;
    m->has_rdigest = true;
    m->rdigest = 0x9f1c2a0b44e1d3c7ULL;
    m->resync = true;
  }
  if (type == WIRE_MEMBERS) {
    static const char *const names[] = {"db1", "web1", "web2"};
    m->nmembers = ARRAY_SIZE(names);
    m->members = calloc(m->nmembers, sizeof(*m->members));
    assert_non_null(m->members);
    for (size_t i = 0; i < m->nmembers; i++) {
      struct wire_member *w = &m->members[i];
      snprintf(w->name, sizeof(w->name), "%s", names[i]);
      snprintf(w->addr, sizeof(w->addr), "tcp://10.0.0.%zu:7410", i + 5);
      w->inc = 1700000000 + i;
      w->ver = 3 * i;
      w->left = i == 2;
    }
    return;
  }
  sample_record(&m->rec, m->from, m->inc);
  m->rec.left = type == WIRE_LEAVE;
  m->digest = 0xfedcba9876543210ULL;
  m->nknown = 3;
}

static void assert_records_equal(const struct record *a,
                                 const struct record *b) {
  assert_string_equal(a->name, b->name);
  assert_string_equal(a->addr, b->addr);
  assert_int_equal(a->inc, b->inc);
  assert_int_equal(a->ver, b->ver);
  assert_int_equal(a->left, b->left);
  assert_string_equal(a->state, b->state);
  assert_string_equal(a->reason, b->reason);
  assert_int_equal(a->since_ms, b->since_ms);
  assert_int_equal(a->ngroups, b->ngroups);
  for (size_t i = 0; i < a->ngroups; i++)
    assert_string_equal(a->groups[i], b->groups[i]);
  assert_true(json_equal(a->data, b->data));
  assert_int_equal(record_cmp(a, b), 0);
}

static void assert_msgs_equal(const struct wire_msg *a,
                              const struct wire_msg *b) {
  assert_int_equal(a->type, b->type);
  assert_string_equal(a->cluster, b->cluster);
  assert_string_equal(a->from, b->from);
  assert_int_equal(a->inc, b->inc);
  assert_int_equal(a->seq, b->seq);
  assert_int_equal(a->time, b->time);
  assert_int_equal(a->leaf, b->leaf);
  assert_true(a->nonce == b->nonce);
  assert_int_equal(a->proving, b->proving);
  assert_int_equal(a->necho, b->necho);
  for (size_t i = 0; i < a->necho; i++) {
    assert_string_equal(a->echo[i].name, b->echo[i].name);
    assert_true(a->echo[i].nonce == b->echo[i].nonce);
  }
  assert_int_equal(a->nunheard, b->nunheard);
  for (size_t i = 0; i < a->nunheard; i++)
    assert_string_equal(a->unheard[i], b->unheard[i]);
  assert_int_equal(a->relay, b->relay);
  assert_int_equal(a->nlost, b->nlost);
  for (size_t i = 0; i < a->nlost; i++) {
    assert_string_equal(a->lost[i].name, b->lost[i].name);
    assert_true(a->lost[i].inc == b->lost[i].inc);
    assert_true(a->lost[i].ver == b->lost[i].ver);
  }
  assert_int_equal(a->lost_total, b->lost_total);
  assert_int_equal(a->has_lost_sig, b->has_lost_sig);
  if (a->has_lost_sig)
    assert_memory_equal(a->lost_sig, b->lost_sig, ID_SIG_BYTES);
  assert_int_equal(a->has_rdigest, b->has_rdigest);
  assert_true(a->rdigest == b->rdigest);
  assert_int_equal(a->resync, b->resync);
  assert_int_equal(a->nmembers, b->nmembers);
  for (size_t i = 0; i < a->nmembers; i++) {
    assert_string_equal(a->members[i].name, b->members[i].name);
    assert_string_equal(a->members[i].addr, b->members[i].addr);
    assert_int_equal(a->members[i].inc, b->members[i].inc);
    assert_int_equal(a->members[i].ver, b->members[i].ver);
    assert_int_equal(a->members[i].left, b->members[i].left);
    assert_int_equal(a->members[i].has_sig, b->members[i].has_sig);
    if (a->members[i].has_sig) {
      assert_memory_equal(a->members[i].body_hash, b->members[i].body_hash,
                          ID_HASH_BYTES);
      assert_memory_equal(a->members[i].sig, b->members[i].sig, ID_SIG_BYTES);
    }
  }
  assert_int_equal(a->cert == NULL, b->cert == NULL);
  if (a->cert != NULL)
    assert_true(json_equal(a->cert, b->cert));
  assert_int_equal(a->nwant, b->nwant);
  for (size_t i = 0; i < a->nwant; i++)
    assert_string_equal(a->want_cert[i], b->want_cert[i]);
  assert_int_equal(a->revoked == NULL, b->revoked == NULL);
  if (a->revoked != NULL)
    assert_true(json_equal(a->revoked, b->revoked));
  if (a->type == WIRE_MEMBERS)
    return;
  assert_int_equal(a->has_sig, b->has_sig);
  if (a->has_sig)
    assert_memory_equal(a->sig, b->sig, ID_SIG_BYTES);
  assert_true(a->digest == b->digest);
  assert_int_equal(a->nknown, b->nknown);
  assert_records_equal(&a->rec, &b->rec);
}

/* Encode m, decode it, compare, and encode again to the same bytes. */
static void round_trip(const struct wire_msg *m) {
  struct wire_error err;
  struct wire_msg back;
  char *buf, *again;
  size_t len, len2;

  assert_int_equal(wire_encode(m, &buf, &len), 0);
  assert_int_equal(wire_msg_init(&back), 0);
  assert_int_equal(wire_decode(buf, len, &back, &err), 0);
  assert_int_equal(err.reason, WIRE_OK);
  assert_msgs_equal(m, &back);
  assert_int_equal(wire_encode(&back, &again, &len2), 0);
  assert_int_equal(len, len2);
  assert_memory_equal(buf, again, len);
  free(buf);
  free(again);
  wire_msg_free(&back);
}

/* ---- round trips ---- */

static void wire_round_trips_every_type(void **state) {
  static const enum wire_type types[] = {WIRE_HELLO, WIRE_STATE, WIRE_MEMBERS,
                                         WIRE_LEAVE};
  (void)state;

  for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
    struct wire_msg m;
    sample_msg(&m, types[i]);
    round_trip(&m);
    wire_msg_free(&m);
  }
}

/* Identity's fields: the record's signature, a member entry's signed
 * head, the certificate and revocations (objects carried as they are). */
static void wire_round_trips_identity_fields(void **state) {
  static const enum wire_type types[] = {WIRE_HELLO, WIRE_STATE, WIRE_MEMBERS,
                                         WIRE_LEAVE};
  (void)state;

  for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
    struct wire_msg m;
    sample_msg(&m, types[i]);
    m.has_sig = true;
    for (size_t b = 0; b < ID_SIG_BYTES; b++)
      m.sig[b] = (uint8_t)(b * 7 + 1);
    for (size_t k = 0; k < m.nmembers; k++) {
      m.members[k].has_sig = true;
      memset(m.members[k].body_hash, 0xa5, ID_HASH_BYTES);
      memset(m.members[k].sig, (int)k, ID_SIG_BYTES);
    }
    m.cert = json_pack("{s:i,s:s}", "cert", 1, "node", "db1");
    m.revoked =
        json_pack("[{s:i,s:s}]", "revoke", 1, "serial", "00112233445566ff");
    round_trip(&m);
    wire_msg_free(&m);
  }
}

/* Quiet relays' fields on every type: a full list of WIRE_LOST_MAX
 * verdicts at extreme counters, the signature of the verdicts, the
 * records digest and both flags. */
static void wire_round_trips_quiet_relay_fields(void **state) {
  static const enum wire_type types[] = {WIRE_HELLO, WIRE_STATE, WIRE_MEMBERS,
                                         WIRE_LEAVE};
  (void)state;

  for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
    struct wire_msg m;
    sample_msg(&m, types[i]);
    m.relay = m.resync = true;
    m.nlost = WIRE_LOST_MAX;
    for (size_t k = 0; k < WIRE_LOST_MAX; k++) {
      snprintf(m.lost[k].name, sizeof(m.lost[k].name), "web%zu", k);
      m.lost[k].inc = k == 0 ? RECORD_COUNTER_MAX : 1764061200 + k;
      m.lost[k].ver = k == 1 ? RECORD_COUNTER_MAX : k;
    }
    m.lost_total = WIRE_LOST_TOTAL_MAX;
    m.has_lost_sig = true;
    for (size_t b = 0; b < ID_SIG_BYTES; b++)
      m.lost_sig[b] = (uint8_t)(255 - b * 3);
    m.has_rdigest = true;
    m.rdigest = i == 0 ? UINT64_MAX : 0;
    round_trip(&m);
    /* a complete list: "nlost" equals its length */
    m.lost_total = WIRE_LOST_MAX;
    round_trip(&m);
    /* more held than listed, none listed */
    m.nlost = 0;
    m.lost_total = 1;
    round_trip(&m);
    wire_msg_free(&m);
  }
}

static char *encoded(enum wire_type type, size_t *len);

/* The JSON forms of the quiet fields, and what each absence means. */
static void wire_decodes_absent_quiet_relay_fields(void **state) {
  struct wire_error err;
  struct wire_msg m;
  json_t *root;
  size_t len;
  char *buf = encoded(WIRE_STATE, &len), *out;
  (void)state;

  assert_non_null(strstr(
      buf, "\"relay\":true,\"lost\":[{\"name\":\"web4\","
           "\"inc\":1764061200,\"ver\":7},{\"name\":\"web5\","
           "\"inc\":1764061300,\"ver\":0}],\"nlost\":5,\"lost_sig\":\""));
  assert_non_null(
      strstr(buf, "\",\"rdigest\":\"9f1c2a0b44e1d3c7\",\"resync\":true,"));
  root = json_loadb(buf, len, 0, NULL);
  assert_non_null(root);
  assert_int_equal(wire_msg_init(&m), 0);

  /* Without "nlost", the list is complete. */
  json_object_del(root, "nlost");
  out = json_dumps(root, JSON_COMPACT);
  assert_int_equal(wire_decode(out, strlen(out), &m, &err), 0);
  assert_int_equal(m.nlost, 2);
  assert_int_equal(m.lost_total, 2);
  free(out);

  /* "nlost" without "lost": verdicts held, none listed. */
  json_object_set_new(root, "nlost", json_integer(5));
  json_object_del(root, "lost");
  out = json_dumps(root, JSON_COMPACT);
  assert_int_equal(wire_decode(out, strlen(out), &m, &err), 0);
  assert_int_equal(m.nlost, 0);
  assert_int_equal(m.lost_total, 5);
  free(out);

  /* None of them: all false or zero. */
  json_object_del(root, "nlost");
  json_object_del(root, "relay");
  json_object_del(root, "lost_sig");
  json_object_del(root, "rdigest");
  json_object_del(root, "resync");
  out = json_dumps(root, JSON_COMPACT);
  assert_int_equal(wire_decode(out, strlen(out), &m, &err), 0);
  assert_false(m.relay);
  assert_int_equal(m.nlost, 0);
  assert_int_equal(m.lost_total, 0);
  assert_false(m.has_lost_sig);
  assert_false(m.has_rdigest);
  assert_false(m.resync);
  free(out);
  json_decref(root);
  wire_msg_free(&m);
  free(buf);

  /* The encoder leaves them all out when they are unset. */
  buf = encoded(WIRE_HELLO, &len);
  assert_null(strstr(buf, "\"relay\""));
  assert_null(strstr(buf, "lost"));
  assert_null(strstr(buf, "\"rdigest\""));
  assert_null(strstr(buf, "\"resync\""));
  free(buf);
}

static void wire_round_trips_extreme_values(void **state) {
  struct wire_msg m;
  (void)state;

  sample_msg(&m, WIRE_STATE);
  m.inc = m.rec.inc = RECORD_COUNTER_MAX;
  m.seq = RECORD_COUNTER_MAX;
  m.rec.ver = 0;
  m.rec.since_ms = INT64_MAX;
  m.digest = UINT64_MAX;
  m.nknown = UINT32_MAX;
  m.rec.reason[0] = '\0';
  m.rec.ngroups = 0;
  json_object_clear(m.rec.data);
  round_trip(&m);
  m.digest = 0;
  m.inc = m.rec.inc = m.seq = 0;
  m.rec.since_ms = 0;
  round_trip(&m);
  wire_msg_free(&m);
}

static void wire_round_trips_an_empty_member_list(void **state) {
  struct wire_msg m;
  (void)state;

  sample_msg(&m, WIRE_MEMBERS);
  m.nmembers = 0;
  round_trip(&m);
  wire_msg_free(&m);
}

/* base64 of ID_SIG_BYTES zero bytes */
#define B64_ZERO64                                                             \
  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"   \
  "AAAAAAAAAAAAAA=="

static void wire_encodes_compact_json_in_envelope_order(void **state) {
  static const char head[] = "{\"v\":1,\"proto\":[0," STR(
      WIRE_PROTO_MAX) "],"
                      "\"release\":\"" CHOREO_VERSION "\","
                      "\"cluster\":\"shop\",\"from\":\"db1\","
                      "\"inc\":1700000000,\"seq\":77,"
                      "\"time\":1700000000123,"
                      "\"nonce\":\"0123456789abcdef\","
                      "\"echo\":[[\"web1\",\"0000000000000001\"],"
                      "[\"web2\",\"ffffffffffffffff\"]],"
                      "\"unheard\":[\"web3\",\"app-1\"],"
                      "\"relay\":true,\"lost\":[{\"name\":\"web4\","
                      "\"inc\":1764061200,\"ver\":7},"
                      "{\"name\":\"web5\",\"inc\":1764061300,"
                      "\"ver\":0}],\"nlost\":5,\"lost_sig\":\"" B64_ZERO64 "\","
                      "\"rdigest\":\"9f1c2a0b44e1d3c7\",\"resync\":true,"
                      "\"type\":\"state\",\"rec\":{\"addr\":";
  struct wire_msg m;
  char *buf;
  size_t len;
  (void)state;

  sample_msg(&m, WIRE_STATE);
  assert_int_equal(wire_encode(&m, &buf, &len), 0);
  assert_int_equal(strlen(buf), len);
  assert_memory_equal(buf, head, sizeof(head) - 1);
  assert_non_null(strstr(buf, "\"digest\":\"fedcba9876543210\",\"known\":3}"));
  assert_null(strstr(buf, ": "));
  assert_null(strstr(buf, ", "));
  free(buf);
  wire_msg_free(&m);
}

/* The agent publishes from a zeroed message that borrows its record. */
static void wire_encodes_a_message_never_initialised(void **state) {
  struct wire_member w = {.name = "a", .addr = "tcp://a:1", .inc = 1, .ver = 2};
  struct wire_msg m;
  char *buf;
  size_t len;
  (void)state;

  memset(&m, 0, sizeof(m));
  m.type = WIRE_MEMBERS;
  snprintf(m.cluster, sizeof(m.cluster), "c");
  snprintf(m.from, sizeof(m.from), "a");
  m.members = &w;
  m.nmembers = 1;
  assert_int_equal(wire_encode(&m, &buf, &len), 0);
  free(buf);
  m.type = WIRE_STATE;
  snprintf(m.rec.addr, sizeof(m.rec.addr), "tcp://a:1");
  snprintf(m.rec.state, sizeof(m.rec.state), "ready");
  assert_int_equal(wire_encode(&m, &buf, &len), 0);
  assert_non_null(strstr(buf, "\"data\":{}"));
  free(buf);
}

/* ---- encoder refusals ---- */

static void wire_refuses_to_encode_more_than_msg_max(void **state) {
  char key[16], value[CHOREO_DATA_VALUE_MAX + 1];
  struct wire_msg m;
  char *buf = NULL;
  size_t len = 0;
  (void)state;

  /* Valid text that JSON escapes six-fold: \u0001. */
  memset(value, 1, CHOREO_DATA_VALUE_MAX);
  value[CHOREO_DATA_VALUE_MAX] = '\0';
  sample_msg(&m, WIRE_STATE);
  for (int i = 0; i < CHOREO_DATA_KEYS_MAX; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    json_object_set_new(m.rec.data, key, json_string(value));
  }
  assert_int_equal(wire_encode(&m, &buf, &len), CHOREO_ETOOBIG);
  assert_null(buf);
  wire_msg_free(&m);
}

static void wire_refuses_to_encode_what_receivers_refuse(void **state) {
  struct wire_msg m;
  char *buf = NULL;
  size_t len;
  (void)state;

  sample_msg(&m, WIRE_STATE);
  snprintf(m.rec.reason, sizeof(m.rec.reason), "bad \xff byte");
  assert_int_equal(wire_encode(&m, &buf, &len), CHOREO_EINVAL);
  m.rec.reason[0] = '\0';
  m.rec.ver = RECORD_COUNTER_MAX + 1;
  assert_int_equal(wire_encode(&m, &buf, &len), CHOREO_EINVAL);
  wire_msg_free(&m);

  sample_msg(&m, WIRE_MEMBERS);
  m.nmembers = WIRE_MEMBERS_MAX + 1;
  assert_int_equal(wire_encode(&m, &buf, &len), CHOREO_EINVAL);
  m.nmembers = 3;
  wire_msg_free(&m);
  assert_null(buf);
}

static void wire_refuses_to_encode_verdicts_receivers_refuse(void **state) {
  struct wire_msg m;
  char *buf = NULL;
  size_t len;
  (void)state;

  sample_msg(&m, WIRE_STATE);
  m.nlost = WIRE_LOST_MAX + 1;
  m.lost_total = WIRE_LOST_MAX + 1;
  assert_int_equal(wire_encode(&m, &buf, &len), CHOREO_EINVAL);
  m.nlost = 2;
  m.lost_total = 1; /* fewer in all than listed */
  assert_int_equal(wire_encode(&m, &buf, &len), CHOREO_EINVAL);
  m.lost_total = WIRE_LOST_TOTAL_MAX + 1;
  assert_int_equal(wire_encode(&m, &buf, &len), CHOREO_EINVAL);
  m.lost_total = 2;
  m.lost[1].ver = RECORD_COUNTER_MAX + 1;
  assert_int_equal(wire_encode(&m, &buf, &len), CHOREO_EINVAL);
  m.lost[1].ver = 0;
  snprintf(m.lost[0].name, sizeof(m.lost[0].name), "bad \xff");
  assert_int_equal(wire_encode(&m, &buf, &len), CHOREO_EINVAL);
  assert_null(buf);
  snprintf(m.lost[0].name, sizeof(m.lost[0].name), "web4");
  assert_int_equal(wire_encode(&m, &buf, &len), 0);
  free(buf);
  wire_msg_free(&m);
}

/* ---- decoding raw bytes ---- */

static int decode_raw(const void *buf, size_t len, struct wire_error *err) {
  struct wire_msg m;
  int rv;

  assert_int_equal(wire_msg_init(&m), 0);
  rv = wire_decode(buf, len, &m, err);
  if (rv != 0) {
    assert_int_equal(rv, CHOREO_EDECODE);
    assert_int_equal(m.nmembers, 0);
    assert_null(m.members);
  }
  wire_msg_free(&m);
  return rv;
}

static void expect_raw(const char *buf, size_t len, enum wire_reject why) {
  struct wire_error err;
  int rv = decode_raw(buf, len, &err);

  if (err.reason != why)
    print_error("expected %s, got %s: %s\n", wire_reject_name(why),
                wire_reject_name(err.reason), err.detail);
  assert_int_equal(err.reason, why);
  assert_int_equal(rv, why == WIRE_OK ? 0 : CHOREO_EDECODE);
}

static char *encoded(enum wire_type type, size_t *len) {
  struct wire_msg m;
  char *buf;

  sample_msg(&m, type);
  assert_int_equal(wire_encode(&m, &buf, len), 0);
  wire_msg_free(&m);
  return buf;
}

static void wire_rejects_input_that_is_not_a_json_object(void **state) {
  static const char *const bad[] = {
      "",
      "garbage",
      "[1,2]",
      "\"state\"",
      "42",
      "null",
      "{\"v\":1",
      "{\"v\":1}{}",
      /* duplicate keys */
      "{\"v\":1,\"v\":1,\"type\":\"state\"}",
      /* an integer beyond 64 bits */
      "{\"v\":1,\"inc\":99999999999999999999999}",
      /* invalid UTF-8 inside a string */
      "{\"v\":1,\"reason\":\"\xff\xfe\"}",
      /* a lone surrogate */
      "{\"v\":1,\"reason\":\"\\ud800\"}",
  };
  size_t len;
  char *buf = encoded(WIRE_STATE, &len);
  (void)state;

  for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
    expect_raw(bad[i], strlen(bad[i]), WIRE_REJECT_NOT_JSON);
  /* Truncated anywhere, a valid message is not JSON any more. */
  for (size_t cut = 0; cut < len; cut += 7)
    expect_raw(buf, cut, WIRE_REJECT_NOT_JSON);
  /* A NUL after the document. */
  buf[len - 1] = '\0';
  expect_raw(buf, len, WIRE_REJECT_NOT_JSON);
  free(buf);
}

static void wire_rejects_invalid_utf8_in_a_reason(void **state) {
  struct wire_error err;
  size_t len;
  char *buf = encoded(WIRE_STATE, &len);
  char *at = strstr(buf, "schema");
  (void)state;

  assert_non_null(at);
  at[0] = (char)0xc0; /* an overlong form */
  at[1] = (char)0x80;
  assert_int_equal(decode_raw(buf, len, &err), CHOREO_EDECODE);
  assert_int_equal(err.reason, WIRE_REJECT_NOT_JSON);
  free(buf);
}

static void wire_rejects_more_than_msg_max_before_parsing(void **state) {
  size_t len;
  char *msg = encoded(WIRE_STATE, &len);
  char *buf = malloc(CHOREO_MSG_MAX + 1);
  (void)state;

  /* Exactly CHOREO_MSG_MAX bytes (the message padded with spaces) pass. */
  memset(buf, ' ', CHOREO_MSG_MAX + 1);
  memcpy(buf, msg, len);
  expect_raw(buf, CHOREO_MSG_MAX, WIRE_OK);
  expect_raw(buf, CHOREO_MSG_MAX + 1, WIRE_REJECT_TOO_BIG);
  expect_raw(buf, SIZE_MAX, WIRE_REJECT_TOO_BIG);
  free(buf);
  free(msg);
}

/* Deep nesting must neither crash the parser nor pass: jansson caps it. */
static void wire_survives_deep_nesting(void **state) {
  char *buf = malloc(CHOREO_MSG_MAX);
  size_t n = CHOREO_MSG_MAX / 2 - 16, len;
  (void)state;

  len = (size_t)snprintf(buf, 16, "{\"x\":");
  memset(buf + len, '[', n);
  memset(buf + len + n, ']', n);
  buf[len + 2 * n] = '}';
  expect_raw(buf, len + 2 * n + 1, WIRE_REJECT_NOT_JSON);
  free(buf);
}

static void wire_reuses_a_message_for_the_next_decode(void **state) {
  struct wire_error err;
  struct wire_msg m;
  size_t slen, mlen;
  char *st = encoded(WIRE_STATE, &slen);
  char *mem = encoded(WIRE_MEMBERS, &mlen);
  (void)state;

  assert_int_equal(wire_msg_init(&m), 0);
  assert_int_equal(wire_decode(st, slen, &m, &err), 0);
  assert_int_equal(wire_decode(mem, mlen, &m, &err), 0);
  assert_int_equal(m.nmembers, 3);
  assert_string_equal(m.rec.state, "");
  assert_int_equal(m.nlost, 0);
  assert_int_equal(m.lost_total, 0);
  assert_false(m.relay || m.resync || m.has_rdigest || m.has_lost_sig);
  assert_int_equal(json_object_size(m.rec.data), 0);
  assert_int_equal(wire_decode(st, slen, &m, &err), 0);
  assert_int_equal(m.nmembers, 0);
  assert_string_equal(m.rec.state, "maintenance");
  assert_int_equal(wire_decode("nope", 4, &m, &err), CHOREO_EDECODE);
  assert_string_equal(m.rec.state, "");
  wire_msg_free(&m);
  wire_msg_free(&m); /* safe twice */
  free(st);
  free(mem);
}

static void wire_names_types_and_reasons(void **state) {
  (void)state;
  assert_string_equal(wire_type_name(WIRE_HELLO), "hello");
  assert_string_equal(wire_type_name(WIRE_STATE), "state");
  assert_string_equal(wire_type_name(WIRE_MEMBERS), "members");
  assert_string_equal(wire_type_name(WIRE_LEAVE), "leave");
  assert_string_equal(wire_reject_name(WIRE_REJECT_TOO_BIG), "too_big");
  assert_string_equal(wire_reject_name(WIRE_REJECT_NOT_JSON), "not_json");
  assert_string_equal(wire_reject_name(WIRE_REJECT_BAD_VERSION), "bad_version");
  assert_string_equal(wire_reject_name(WIRE_REJECT_UNKNOWN_TYPE),
                      "unknown_type");
  assert_string_equal(wire_reject_name(WIRE_REJECT_BAD_FIELD), "bad_field");
  assert_string_equal(wire_reject_name(WIRE_REJECT_OVER_LIMIT), "over_limit");
}

/* ---- decoding one changed field: the table ---- */

enum change {
  SET,    /* the field becomes the JSON text s */
  DEL,    /* the field is removed */
  REPEAT, /* the field becomes a string of s repeated n times */
  ARRAY,  /* the field becomes an array of n copies of the JSON text s */
  OBJECT, /* the field becomes an object of n keys k0.. with JSON text s */
};

struct reject_case {
  const char *name;
  enum wire_type base; /* the valid message changed */
  const char *path;    /* "rec.groups[1]", "members[0].inc", … */
  enum change change;
  const char *s;
  size_t n;
  enum wire_reject expect;
  const char *detail; /* must occur in err.detail; NULL: not checked */
};

#define K16 "kkkkkkkkkkkkkkkk"
#define MEMBER_JSON                                                            \
  "{\"name\":\"m\",\"addr\":\"tcp://m:1\",\"inc\":1,\"ver\":1,\"left\":false}"

#define LOST_JSON "{\"name\":\"web9\",\"inc\":1,\"ver\":1}"

#define SIG88                                                                  \
  "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
  "AAAAAAAAAAAAAA==\""

static const struct reject_case reject_cases[] = {
    /* identity */
    {"wire_accepts_a_signature_of_64_bytes", WIRE_STATE, "rec.sig", SET, SIG88,
     0, WIRE_OK, NULL},
    {"wire_rejects_a_signature_of_another_length", WIRE_STATE, "rec.sig", SET,
     "\"AAAA\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"rec.sig\": not base64 of 64 bytes"},
    {"wire_rejects_a_signature_not_base64", WIRE_STATE, "rec.sig", REPEAT, "!",
     88, WIRE_REJECT_BAD_FIELD, "field \"rec.sig\": not base64 of 64 bytes"},
    {"wire_rejects_a_member_signature_without_its_body_hash", WIRE_MEMBERS,
     "members[0].sig", SET, SIG88, 0, WIRE_REJECT_BAD_FIELD,
     "\"bh\" and \"sig\" go together"},
    {"wire_rejects_more_than_32_revocations", WIRE_STATE, "revoked", ARRAY,
     "{}", 33, WIRE_REJECT_OVER_LIMIT, "field \"revoked\": 33 entries"},
    {"wire_accepts_32_revocations", WIRE_STATE, "revoked", ARRAY, "{}", 32,
     WIRE_OK, NULL},
    {"wire_rejects_more_than_8_wanted_certificates", WIRE_STATE, "want_cert",
     ARRAY, "\"db1\"", 9, WIRE_REJECT_OVER_LIMIT,
     "field \"want_cert\": 9 entries"},
    {"wire_rejects_a_wanted_certificate_not_a_name", WIRE_STATE, "want_cert",
     ARRAY, "\"db 1\"", 1, WIRE_REJECT_BAD_FIELD, "field \"want_cert[0]\""},
    {"wire_rejects_a_revocation_not_an_object", WIRE_STATE, "revoked", ARRAY,
     "5", 1, WIRE_REJECT_BAD_FIELD, "field \"revoked[0]\": not an object"},
    /* quiet relays: relay, lost, nlost, lost_sig, rdigest, resync
     * (optional) */
    {"wire_accepts_a_message_without_relay", WIRE_STATE, "relay", DEL, NULL, 0,
     WIRE_OK, NULL},
    {"wire_accepts_a_false_relay_flag", WIRE_STATE, "relay", SET, "false", 0,
     WIRE_OK, NULL},
    {"wire_rejects_a_relay_flag_that_is_not_a_boolean", WIRE_STATE, "relay",
     SET, "1", 0, WIRE_REJECT_BAD_FIELD, "field \"relay\": not a boolean"},
    {"wire_accepts_a_message_without_resync", WIRE_STATE, "resync", DEL, NULL,
     0, WIRE_OK, NULL},
    {"wire_rejects_a_resync_flag_that_is_not_a_boolean", WIRE_STATE, "resync",
     SET, "\"true\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"resync\": not a boolean"},
    {"wire_accepts_nlost_without_lost", WIRE_STATE, "lost", DEL, NULL, 0,
     WIRE_OK, NULL},
    {"wire_accepts_lost_without_nlost", WIRE_STATE, "nlost", DEL, NULL, 0,
     WIRE_OK, NULL},
    {"wire_rejects_lost_that_is_not_an_array", WIRE_STATE, "lost", SET, "{}", 0,
     WIRE_REJECT_BAD_FIELD, "field \"lost\": not an array"},
    {"wire_rejects_more_than_32_verdicts", WIRE_HELLO, "lost", ARRAY, LOST_JSON,
     33, WIRE_REJECT_OVER_LIMIT, "field \"lost\": 33 entries, at most 32"},
    {"wire_accepts_32_verdicts", WIRE_HELLO, "lost", ARRAY, LOST_JSON, 32,
     WIRE_OK, NULL},
    {"wire_accepts_an_empty_list_of_verdicts", WIRE_STATE, "lost", SET, "[]", 0,
     WIRE_OK, NULL},
    {"wire_rejects_a_verdict_that_is_not_an_object", WIRE_STATE, "lost[1]", SET,
     "\"web5\"", 0, WIRE_REJECT_BAD_FIELD, "field \"lost[1]\": not an object"},
    {"wire_rejects_a_verdict_of_an_invalid_name", WIRE_STATE, "lost[0].name",
     SET, "\"a/b\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"lost[0].name\": invalid name \"a/b\""},
    {"wire_rejects_a_verdict_name_too_long", WIRE_STATE, "lost[1].name", REPEAT,
     "n", 65, WIRE_REJECT_OVER_LIMIT, "field \"lost[1].name\": 65 bytes"},
    {"wire_rejects_a_verdict_incarnation_beyond_2_53", WIRE_STATE,
     "lost[0].inc", SET, "9007199254740993", 0, WIRE_REJECT_OVER_LIMIT,
     "field \"lost[0].inc\""},
    {"wire_accepts_a_verdict_incarnation_of_2_53", WIRE_STATE, "lost[0].inc",
     SET, "9007199254740992", 0, WIRE_OK, NULL},
    {"wire_rejects_a_negative_verdict_version", WIRE_STATE, "lost[1].ver", SET,
     "-1", 0, WIRE_REJECT_OVER_LIMIT, "field \"lost[1].ver\": -1 out of range"},
    {"wire_rejects_a_verdict_version_in_a_string", WIRE_STATE, "lost[1].ver",
     SET, "\"7\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"lost[1].ver\": not an integer"},
    {"wire_rejects_a_fractional_verdict_incarnation", WIRE_STATE, "lost[0].inc",
     SET, "1.5", 0, WIRE_REJECT_BAD_FIELD, "field \"lost[0].inc\""},
    {"wire_ignores_unknown_fields_in_a_verdict", WIRE_STATE, "lost[0].future",
     SET, "true", 0, WIRE_OK, NULL},
    {"wire_rejects_nlost_that_is_not_an_integer", WIRE_STATE, "nlost", SET,
     "\"5\"", 0, WIRE_REJECT_BAD_FIELD, "field \"nlost\": not an integer"},
    {"wire_rejects_nlost_above_a_million", WIRE_STATE, "nlost", SET, "1000001",
     0, WIRE_REJECT_OVER_LIMIT,
     "field \"nlost\": 1000001 out of range 0..1000000"},
    {"wire_accepts_nlost_of_a_million", WIRE_STATE, "nlost", SET, "1000000", 0,
     WIRE_OK, NULL},
    {"wire_rejects_a_negative_nlost", WIRE_STATE, "nlost", SET, "-1", 0,
     WIRE_REJECT_OVER_LIMIT, "field \"nlost\""},
    {"wire_rejects_nlost_below_the_length_of_lost", WIRE_STATE, "nlost", SET,
     "1", 0, WIRE_REJECT_BAD_FIELD,
     "field \"nlost\": 1, fewer than the 2 in \"lost\""},
    {"wire_accepts_nlost_equal_to_the_length_of_lost", WIRE_STATE, "nlost", SET,
     "2", 0, WIRE_OK, NULL},
    {"wire_rejects_more_verdicts_than_nlost", WIRE_STATE, "lost", ARRAY,
     LOST_JSON, 6, WIRE_REJECT_BAD_FIELD, "fewer than the 6 in \"lost\""},
    {"wire_accepts_a_message_without_lost_sig", WIRE_STATE, "lost_sig", DEL,
     NULL, 0, WIRE_OK, NULL},
    {"wire_rejects_a_lost_sig_of_another_length", WIRE_STATE, "lost_sig", SET,
     "\"AAAA\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"lost_sig\": not base64 of 64 bytes"},
    {"wire_rejects_a_lost_sig_not_base64", WIRE_STATE, "lost_sig", REPEAT, "!",
     88, WIRE_REJECT_BAD_FIELD, "field \"lost_sig\": not base64 of 64 bytes"},
    {"wire_rejects_a_lost_sig_that_is_a_number", WIRE_STATE, "lost_sig", SET,
     "64", 0, WIRE_REJECT_BAD_FIELD, "field \"lost_sig\""},
    {"wire_accepts_a_message_without_rdigest", WIRE_STATE, "rdigest", DEL, NULL,
     0, WIRE_OK, NULL},
    {"wire_rejects_an_uppercase_rdigest", WIRE_STATE, "rdigest", SET,
     "\"9F1C2A0B44E1D3C7\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"rdigest\": not 16 lowercase hex digits"},
    {"wire_rejects_a_short_rdigest", WIRE_STATE, "rdigest", SET, "\"9f1c\"", 0,
     WIRE_REJECT_BAD_FIELD, "field \"rdigest\""},
    {"wire_rejects_an_rdigest_that_is_a_number", WIRE_STATE, "rdigest", SET,
     "12", 0, WIRE_REJECT_BAD_FIELD, "field \"rdigest\": not a string"},
    {"wire_rejects_a_long_rdigest", WIRE_STATE, "rdigest", SET,
     "\"9f1c2a0b44e1d3c70\"", 0, WIRE_REJECT_OVER_LIMIT, "field \"rdigest\""},
    /* envelope */
    {"wire_rejects_version_2", WIRE_STATE, "v", SET, "2", 0,
     WIRE_REJECT_BAD_VERSION, "version 2; this agent speaks version 1"},
    {"wire_rejects_a_version_given_as_a_fraction", WIRE_STATE, "v", SET, "1.0",
     0, WIRE_REJECT_BAD_VERSION, "field \"v\": not an integer"},
    /* versions: "proto" and "release" */
    {"wire_accepts_a_message_without_proto_as_0_1_0s", WIRE_STATE, "proto", DEL,
     NULL, 0, WIRE_OK, NULL},
    {"wire_accepts_a_sender_speaking_higher_minors_too", WIRE_STATE, "proto",
     SET, "[0,99]", 0, WIRE_OK, NULL},
    {"wire_rejects_a_sender_speaking_only_future_minors", WIRE_STATE, "proto",
     SET, "[7,9]", 0, WIRE_REJECT_PROTO, "it speaks protocol 1.7-1.9"},
    {"wire_rejects_proto_as_a_string", WIRE_STATE, "proto", SET, "\"1\"", 0,
     WIRE_REJECT_BAD_FIELD, "field \"proto\": not a [min, max] pair"},
    {"wire_rejects_proto_as_a_number", WIRE_STATE, "proto", SET, "1", 0,
     WIRE_REJECT_BAD_FIELD, "field \"proto\": not a [min, max] pair"},
    {"wire_rejects_proto_of_one_item", WIRE_STATE, "proto", SET, "[1]", 0,
     WIRE_REJECT_BAD_FIELD, "field \"proto\": not a [min, max] pair"},
    {"wire_rejects_a_minor_given_as_a_string", WIRE_STATE, "proto", SET,
     "[0,\"1\"]", 0, WIRE_REJECT_BAD_FIELD,
     "field \"proto[1]\": not an integer"},
    {"wire_rejects_a_negative_minor", WIRE_STATE, "proto", SET, "[-1,1]", 0,
     WIRE_REJECT_OVER_LIMIT, "field \"proto[0]\": -1 out of range"},
    {"wire_rejects_a_minor_beyond_the_limit", WIRE_STATE, "proto", SET,
     "[0,65536]", 0, WIRE_REJECT_OVER_LIMIT, "field \"proto[1]\""},
    {"wire_rejects_a_proto_range_upside_down", WIRE_STATE, "proto", SET,
     "[1,0]", 0, WIRE_REJECT_BAD_FIELD, "min above max"},
    {"wire_accepts_a_message_without_release", WIRE_STATE, "release", DEL, NULL,
     0, WIRE_OK, NULL},
    {"wire_rejects_a_release_that_is_not_a_string", WIRE_STATE, "release", SET,
     "[0,2]", 0, WIRE_REJECT_BAD_FIELD, "field \"release\": not a string"},
    {"wire_rejects_an_invalid_release", WIRE_STATE, "release", SET,
     "\"0.2 \\n\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"release\": invalid release"},
    {"wire_rejects_an_empty_release", WIRE_STATE, "release", SET, "\"\"", 0,
     WIRE_REJECT_BAD_FIELD, "invalid release"},
    {"wire_rejects_a_release_too_long", WIRE_STATE, "release", REPEAT, "1", 33,
     WIRE_REJECT_OVER_LIMIT, "field \"release\": 33 bytes, at most 32"},
    {"wire_ignores_a_field_of_a_minor_it_does_not_speak", WIRE_STATE,
     "heartbeat_ms", SET, "\"not a number\"", 0, WIRE_OK, NULL},
    {"wire_rejects_a_missing_version", WIRE_STATE, "v", DEL, NULL, 0,
     WIRE_REJECT_BAD_VERSION, "field \"v\": missing"},
    {"wire_rejects_a_version_given_as_a_string", WIRE_STATE, "v", SET, "\"1\"",
     0, WIRE_REJECT_BAD_VERSION, NULL},
    {"wire_rejects_an_unknown_type", WIRE_STATE, "type", SET, "\"gossip\"", 0,
     WIRE_REJECT_UNKNOWN_TYPE, "field \"type\": unknown \"gossip\""},
    {"wire_rejects_a_sender_name_too_long", WIRE_STATE, "from", REPEAT, "n", 65,
     WIRE_REJECT_OVER_LIMIT, "field \"from\": 65 bytes, at most 64"},
    {"wire_accepts_a_sender_name_of_the_maximum_length", WIRE_STATE, "from",
     REPEAT, "n", 64, WIRE_OK, NULL},
    {"wire_rejects_an_invalid_sender_name", WIRE_STATE, "from", SET,
     "\"web 1\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"from\": invalid name \"web 1\""},
    {"wire_rejects_a_cluster_name_too_long", WIRE_STATE, "cluster", REPEAT, "c",
     65, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_an_empty_cluster_name", WIRE_STATE, "cluster", SET, "\"\"",
     0, WIRE_REJECT_BAD_FIELD, "field \"cluster\": invalid cluster name \"\""},
    {"wire_escapes_and_cuts_quoted_text", WIRE_STATE, "from", SET,
     "\"bad\\u0001aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", 0,
     WIRE_REJECT_BAD_FIELD,
     "invalid name \"bad\\x01aaaaaaaaaaaaaaaaaaaaaaaaaaaa\"..."},
    {"wire_escapes_non_ascii_in_quoted_text", WIRE_STATE, "from", SET,
     "\"d\xc3\xa9\"", 0, WIRE_REJECT_BAD_FIELD, "\"d\\xc3\\xa9\""},
    {"wire_rejects_a_negative_incarnation", WIRE_STATE, "inc", SET, "-1", 0,
     WIRE_REJECT_OVER_LIMIT, "field \"inc\": -1 out of range"},
    {"wire_rejects_an_incarnation_beyond_2_53", WIRE_STATE, "inc", SET,
     "9007199254740993", 0, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_accepts_an_incarnation_of_2_53", WIRE_STATE, "inc", SET,
     "9007199254740992", 0, WIRE_OK, NULL},
    {"wire_rejects_a_seq_beyond_2_53", WIRE_STATE, "seq", SET,
     "9007199254740993", 0, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_the_largest_64_bit_seq", WIRE_STATE, "seq", SET,
     "9223372036854775807", 0, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_the_smallest_64_bit_seq", WIRE_STATE, "seq", SET,
     "-9223372036854775808", 0, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_a_time_beyond_2_53", WIRE_STATE, "time", SET,
     "9007199254740993", 0, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_a_negative_time", WIRE_STATE, "time", SET, "-5", 0,
     WIRE_REJECT_OVER_LIMIT, "field \"time\": -5 out of range"},
    {"wire_rejects_a_time_in_a_string", WIRE_STATE, "time", SET, "\"1\"", 0,
     WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_accepts_a_message_without_a_time", WIRE_STATE, "time", DEL, NULL, 0,
     WIRE_OK, NULL},
    {"wire_rejects_a_leaf_flag_that_is_not_a_boolean", WIRE_STATE, "leaf", SET,
     "1", 0, WIRE_REJECT_BAD_FIELD, "field \"leaf\": not a boolean"},
    {"wire_accepts_a_false_leaf_flag", WIRE_STATE, "leaf", SET, "false", 0,
     WIRE_OK, NULL},
    {"wire_rejects_a_fractional_incarnation", WIRE_STATE, "inc", SET, "1.0", 0,
     WIRE_REJECT_BAD_FIELD, "field \"inc\": not an integer"},
    {"wire_rejects_a_huge_real_incarnation", WIRE_STATE, "inc", SET, "1e300", 0,
     WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_ignores_unknown_envelope_fields", WIRE_STATE, "future", SET,
     "{\"x\":[1,{\"y\":null}]}", 0, WIRE_OK, NULL},
    {"wire_ignores_unknown_fields_in_a_record", WIRE_STATE, "rec.future", SET,
     "1", 0, WIRE_OK, NULL},
    {"wire_ignores_a_name_repeated_in_a_record", WIRE_STATE, "rec.name", SET,
     "\"other\"", 0, WIRE_OK, NULL},
    {"wire_ignores_unknown_fields_in_a_member", WIRE_MEMBERS,
     "members[0].future", SET, "true", 0, WIRE_OK, NULL},
    /* record */
    {"wire_rejects_an_invalid_state", WIRE_STATE, "rec.state", SET, "\"Bad!\"",
     0, WIRE_REJECT_BAD_FIELD, "field \"rec.state\": invalid state \"Bad!\""},
    {"wire_rejects_an_empty_state", WIRE_STATE, "rec.state", SET, "\"\"", 0,
     WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_rejects_a_state_too_long", WIRE_STATE, "rec.state", REPEAT, "a", 33,
     WIRE_REJECT_OVER_LIMIT, "field \"rec.state\": 33 bytes, at most 32"},
    {"wire_accepts_a_state_of_the_maximum_length", WIRE_STATE, "rec.state",
     REPEAT, "a", 32, WIRE_OK, NULL},
    {"wire_rejects_a_reason_too_long", WIRE_STATE, "rec.reason", REPEAT,
     "\xc3\xa9", 129, WIRE_REJECT_OVER_LIMIT,
     "field \"rec.reason\": 258 bytes, at most 256"},
    {"wire_accepts_a_reason_of_the_maximum_length", WIRE_STATE, "rec.reason",
     REPEAT, "\xc3\xa9", 128, WIRE_OK, NULL},
    {"wire_accepts_an_empty_reason", WIRE_STATE, "rec.reason", SET, "\"\"", 0,
     WIRE_OK, NULL},
    {"wire_rejects_a_nul_in_a_reason", WIRE_STATE, "rec.reason", SET,
     "\"a\\u0000b\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"rec.reason\": contains a NUL byte"},
    {"wire_rejects_an_address_too_long", WIRE_STATE, "rec.addr", REPEAT, "a",
     257, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_an_address_of_another_scheme", WIRE_STATE, "rec.addr", SET,
     "\"http://x\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"rec.addr\": invalid address \"http://x\""},
    {"wire_rejects_an_empty_address", WIRE_STATE, "rec.addr", SET, "\"\"", 0,
     WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_rejects_an_address_without_a_host", WIRE_STATE, "rec.addr", SET,
     "\"tcp://\"", 0, WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_rejects_a_control_character_in_an_address", WIRE_STATE, "rec.addr",
     SET, "\"tcp://a\\nb:1\"", 0, WIRE_REJECT_BAD_FIELD, "tcp://a\\x0ab:1"},
    {"wire_accepts_an_ipc_address", WIRE_STATE, "rec.addr", SET,
     "\"ipc:///run/choreo/inbox\"", 0, WIRE_OK, NULL},
    {"wire_accepts_an_inproc_address", WIRE_MEMBERS, "members[1].addr", SET,
     "\"inproc://n2\"", 0, WIRE_OK, NULL},
    {"wire_rejects_a_version_beyond_2_53", WIRE_STATE, "rec.ver", SET,
     "9007199254740993", 0, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_a_negative_since", WIRE_STATE, "rec.since", SET, "-5", 0,
     WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_too_many_groups", WIRE_STATE, "rec.groups", ARRAY, "\"g\"",
     17, WIRE_REJECT_OVER_LIMIT, "field \"rec.groups\": 17 items, at most 16"},
    {"wire_accepts_the_maximum_of_groups", WIRE_STATE, "rec.groups", ARRAY,
     "\"g\"", 16, WIRE_OK, NULL},
    {"wire_rejects_a_group_name_too_long", WIRE_STATE, "rec.groups[0]", REPEAT,
     "g", 65, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_an_invalid_group_name", WIRE_STATE, "rec.groups[1]", SET,
     "\"no space\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"rec.groups[1]\": invalid name \"no space\""},
    {"wire_rejects_too_many_data_keys", WIRE_STATE, "rec.data", OBJECT, "\"v\"",
     33, WIRE_REJECT_OVER_LIMIT, "field \"rec.data\": 33 keys, at most 32"},
    {"wire_accepts_the_maximum_of_data_keys", WIRE_STATE, "rec.data", OBJECT,
     "\"v\"", 32, WIRE_OK, NULL},
    {"wire_rejects_a_data_key_too_long", WIRE_STATE,
     "rec.data." K16 K16 K16 K16 "k", SET, "\"v\"", 0, WIRE_REJECT_OVER_LIMIT,
     NULL},
    {"wire_accepts_a_data_key_of_the_maximum_length", WIRE_STATE,
     "rec.data." K16 K16 K16 K16, SET, "\"v\"", 0, WIRE_OK, NULL},
    {"wire_rejects_an_invalid_data_key", WIRE_STATE, "rec.data.Upper", SET,
     "\"v\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"rec.data\": invalid key \"Upper\""},
    {"wire_rejects_a_data_value_too_long", WIRE_STATE, "rec.data.url", REPEAT,
     "v", 1025, WIRE_REJECT_OVER_LIMIT,
     "field \"rec.data.url\": 1025 bytes, at most 1024"},
    {"wire_accepts_a_data_value_of_the_maximum_length", WIRE_STATE,
     "rec.data.url", REPEAT, "v", 1024, WIRE_OK, NULL},
    {"wire_rejects_a_nul_in_a_data_value", WIRE_STATE, "rec.data.url", SET,
     "\"\\u0000\"", 0, WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_rejects_a_digest_with_other_characters", WIRE_STATE, "digest", SET,
     "\"fedcba987654321x\"", 0, WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_rejects_an_uppercase_digest", WIRE_STATE, "digest", SET,
     "\"FEDCBA9876543210\"", 0, WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_rejects_a_short_digest", WIRE_STATE, "digest", SET, "\"abc\"", 0,
     WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_rejects_a_long_digest", WIRE_STATE, "digest", SET,
     "\"00000000000000000\"", 0, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_a_known_count_beyond_32_bits", WIRE_STATE, "known", SET,
     "4294967296", 0, WIRE_REJECT_OVER_LIMIT, NULL},
    /* freshness: nonce, proving, echo (optional) */
    {"wire_accepts_a_message_without_freshness_fields", WIRE_STATE, "echo", DEL,
     NULL, 0, WIRE_OK, NULL},
    {"wire_rejects_a_nonce_that_is_not_hex", WIRE_STATE, "nonce", SET,
     "\"0123456789abcdeg\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"nonce\": not 16 lowercase hex digits"},
    {"wire_rejects_a_nonce_that_is_a_number", WIRE_STATE, "nonce", SET, "12", 0,
     WIRE_REJECT_BAD_FIELD, "field \"nonce\": not a string"},
    {"wire_rejects_a_short_nonce", WIRE_STATE, "nonce", SET, "\"0123\"", 0,
     WIRE_REJECT_BAD_FIELD, NULL},
    {"wire_rejects_proving_that_is_not_a_boolean", WIRE_HELLO, "proving", SET,
     "1", 0, WIRE_REJECT_BAD_FIELD, "field \"proving\": not a boolean"},
    {"wire_rejects_an_echo_that_is_not_an_array", WIRE_STATE, "echo", SET, "{}",
     0, WIRE_REJECT_BAD_FIELD, "field \"echo\": not an array"},
    {"wire_rejects_too_many_echoes", WIRE_STATE, "echo", ARRAY,
     "[\"web1\",\"0000000000000001\"]", 33, WIRE_REJECT_OVER_LIMIT,
     "field \"echo\": 33 entries, at most 32"},
    {"wire_accepts_the_maximum_of_echoes", WIRE_STATE, "echo", ARRAY,
     "[\"web1\",\"0000000000000001\"]", 32, WIRE_OK, NULL},
    {"wire_rejects_an_echo_that_is_not_a_pair", WIRE_STATE, "echo[1]", SET,
     "[\"web2\"]", 0, WIRE_REJECT_BAD_FIELD,
     "field \"echo[1]\": not a [name, nonce] pair"},
    {"wire_rejects_an_echo_of_an_invalid_name", WIRE_STATE, "echo[0]", SET,
     "[\"a/b\",\"0000000000000001\"]", 0, WIRE_REJECT_BAD_FIELD,
     "field \"echo[0]\": invalid name \"a/b\""},
    {"wire_rejects_an_echo_of_an_invalid_nonce", WIRE_STATE, "echo[0]", SET,
     "[\"web1\",\"X000000000000001\"]", 0, WIRE_REJECT_BAD_FIELD,
     "field \"echo[0]\": not 16 lowercase hex digits"},
    /* unheard (optional) */
    {"wire_accepts_a_message_without_unheard", WIRE_STATE, "unheard", DEL, NULL,
     0, WIRE_OK, NULL},
    {"wire_rejects_unheard_that_is_not_an_array", WIRE_STATE, "unheard", SET,
     "\"web3\"", 0, WIRE_REJECT_BAD_FIELD, "field \"unheard\": not an array"},
    {"wire_rejects_too_many_unheard", WIRE_STATE, "unheard", ARRAY, "\"web3\"",
     9, WIRE_REJECT_OVER_LIMIT, "field \"unheard\": 9 entries, at most 8"},
    {"wire_accepts_the_maximum_of_unheard", WIRE_STATE, "unheard", ARRAY,
     "\"web3\"", 8, WIRE_OK, NULL},
    {"wire_rejects_an_invalid_unheard_name", WIRE_STATE, "unheard[1]", SET,
     "\"a/b\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"unheard[1]\": invalid name \"a/b\""},
    {"wire_rejects_an_unheard_name_that_is_a_number", WIRE_STATE, "unheard[0]",
     SET, "7", 0, WIRE_REJECT_BAD_FIELD, NULL},
    /* members */
    {"wire_rejects_too_many_members", WIRE_MEMBERS, "members", ARRAY,
     MEMBER_JSON, 257, WIRE_REJECT_OVER_LIMIT,
     "field \"members\": 257 entries, at most 256"},
    {"wire_accepts_the_maximum_of_members", WIRE_MEMBERS, "members", ARRAY,
     MEMBER_JSON, 256, WIRE_OK, NULL},
    {"wire_rejects_a_member_that_is_not_an_object", WIRE_MEMBERS, "members[1]",
     SET, "\"x\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"members[1]\": not an object"},
    {"wire_rejects_an_invalid_member_name", WIRE_MEMBERS, "members[2].name",
     SET, "\"a/b\"", 0, WIRE_REJECT_BAD_FIELD,
     "field \"members[2].name\": invalid name \"a/b\""},
    {"wire_rejects_a_member_name_too_long", WIRE_MEMBERS, "members[0].name",
     REPEAT, "m", 65, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_a_negative_member_incarnation", WIRE_MEMBERS,
     "members[0].inc", SET, "-1", 0, WIRE_REJECT_OVER_LIMIT, NULL},
    {"wire_rejects_a_member_version_beyond_2_53", WIRE_MEMBERS,
     "members[0].ver", SET, "9007199254740993", 0, WIRE_REJECT_OVER_LIMIT,
     NULL},
};

static json_t *new_value(enum change change, const char *s, size_t n) {
  json_t *v = NULL;

  switch (change) {
  case SET:
    return json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
  case DEL:
    return NULL;
  case REPEAT: {
    size_t len = strlen(s);
    char *buf = malloc(len * n + 1);
    for (size_t i = 0; i < n; i++)
      memcpy(buf + i * len, s, len);
    buf[len * n] = '\0';
    v = json_string(buf);
    free(buf);
    return v;
  }
  case ARRAY:
    v = json_array();
    for (size_t i = 0; i < n; i++)
      json_array_append_new(v, json_loads(s, JSON_DECODE_ANY, NULL));
    return v;
  case OBJECT:
    v = json_object();
    for (size_t i = 0; i < n; i++) {
      char key[24];
      snprintf(key, sizeof(key), "k%zu", i);
      json_object_set_new(v, key, json_loads(s, JSON_DECODE_ANY, NULL));
    }
    return v;
  }
  return NULL;
}

/* Set (or delete, value NULL) the field at path, e.g. "members[0].inc". */
static void apply(json_t *cur, char *path, json_t *value) {
  char *dot = strchr(path, '.'), *br;
  size_t idx = 0;
  json_t *next;

  if (dot != NULL)
    *dot = '\0';
  br = strchr(path, '[');
  if (br != NULL) {
    *br = '\0';
    idx = strtoul(br + 1, NULL, 10);
  }
  if (dot == NULL && br == NULL) {
    if (value != NULL)
      assert_int_equal(json_object_set_new(cur, path, value), 0);
    else
      assert_int_equal(json_object_del(cur, path), 0);
    return;
  }
  next = json_object_get(cur, path);
  assert_non_null(next);
  if (br != NULL && dot == NULL) {
    if (value != NULL)
      assert_int_equal(json_array_set_new(next, idx, value), 0);
    else
      assert_int_equal(json_array_remove(next, idx), 0);
    return;
  }
  if (br != NULL)
    next = json_array_get(next, idx);
  assert_non_null(next);
  apply(next, dot + 1, value);
}

/* The sample message of type base with one field changed, as bytes. */
static char *changed(enum wire_type base, const char *path, json_t *value,
                     size_t *len) {
  char *buf = encoded(base, len), *out, p[128];
  json_t *root = json_loadb(buf, *len, 0, NULL);

  assert_non_null(root);
  snprintf(p, sizeof(p), "%s", path);
  apply(root, p, value);
  out = json_dumps(root, JSON_COMPACT);
  assert_non_null(out);
  *len = strlen(out);
  json_decref(root);
  free(buf);
  return out;
}

static void expect_change(enum wire_type base, const char *path, json_t *value,
                          enum wire_reject why, const char *detail) {
  struct wire_error err;
  size_t len;
  char *buf = changed(base, path, value, &len);
  int rv = decode_raw(buf, len, &err);

  if (err.reason != why || (detail != NULL && !strstr(err.detail, detail)))
    print_error("%s: expected %s \"%s\", got %s \"%s\"\n", path,
                wire_reject_name(why), detail ? detail : "",
                wire_reject_name(err.reason), err.detail);
  assert_int_equal(err.reason, why);
  assert_int_equal(rv, why == WIRE_OK ? 0 : CHOREO_EDECODE);
  if (detail != NULL)
    assert_non_null(strstr(err.detail, detail));
  for (const char *c = err.detail; *c != '\0'; c++)
    assert_true(*c >= 0x20 && *c < 0x7f);
  free(buf);
}

static void run_reject_case(void **state) {
  const struct reject_case *c = *state;

  expect_change(c->base, c->path, new_value(c->change, c->s, c->n), c->expect,
                c->detail);
}

/* ---- every field: missing, and of a wrong type ---- */

struct field {
  enum wire_type base;
  const char *path;
  const char *wrong; /* a value of a wrong type */
  bool required;     /* removing it is an error too */
};

static const struct field fields[] = {
    {WIRE_STATE, "cluster", "5", true},
    {WIRE_STATE, "from", "[\"db1\"]", true},
    {WIRE_STATE, "inc", "\"5\"", true},
    {WIRE_STATE, "seq", "true", true},
    {WIRE_STATE, "type", "5", true},
    {WIRE_STATE, "rec", "[]", true},
    {WIRE_STATE, "rec.addr", "5", true},
    {WIRE_STATE, "rec.ver", "\"1\"", true},
    {WIRE_STATE, "rec.left", "0", true},
    {WIRE_STATE, "rec.state", "null", true},
    {WIRE_STATE, "rec.reason", "5", true},
    {WIRE_STATE, "rec.since", "\"0\"", true},
    {WIRE_STATE, "rec.groups", "{}", true},
    {WIRE_STATE, "rec.groups[0]", "5", false},
    {WIRE_STATE, "rec.data", "[]", true},
    {WIRE_STATE, "rec.data.url", "null", false},
    {WIRE_STATE, "digest", "5", true},
    {WIRE_STATE, "known", "true", true},
    {WIRE_HELLO, "rec", "\"x\"", true},
    {WIRE_LEAVE, "rec.left", "\"true\"", true},
    {WIRE_MEMBERS, "members", "{}", true},
    {WIRE_MEMBERS, "members[0]", "[]", false},
    {WIRE_MEMBERS, "members[0].name", "5", true},
    {WIRE_MEMBERS, "members[0].addr", "5", true},
    {WIRE_MEMBERS, "members[0].inc", "\"1\"", true},
    {WIRE_MEMBERS, "members[0].ver", "1.5", true},
    {WIRE_MEMBERS, "members[0].left", "\"true\"", true},
    {WIRE_STATE, "rec.sig", "5", false},
    {WIRE_STATE, "cert", "[]", false},
    {WIRE_STATE, "revoked", "{}", false},
    {WIRE_STATE, "want_cert", "\"db1\"", false},
    {WIRE_MEMBERS, "cert", "\"x\"", false},
    {WIRE_STATE, "relay", "\"yes\"", false},
    {WIRE_STATE, "resync", "0", false},
    {WIRE_STATE, "lost", "\"web4\"", false},
    {WIRE_STATE, "lost[0]", "[]", false},
    {WIRE_STATE, "lost[0].name", "5", true},
    {WIRE_STATE, "lost[0].inc", "\"1\"", true},
    {WIRE_STATE, "lost[1].ver", "null", true},
    {WIRE_STATE, "nlost", "[5]", false},
    {WIRE_STATE, "lost_sig", "{}", false},
    {WIRE_STATE, "rdigest", "true", false},
};

static void wire_rejects_each_field_of_a_wrong_type(void **state) {
  char detail[96];
  (void)state;

  for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
    snprintf(detail, sizeof(detail), "field \"%s\": not ", fields[i].path);
    expect_change(fields[i].base, fields[i].path,
                  new_value(SET, fields[i].wrong, 0), WIRE_REJECT_BAD_FIELD,
                  detail);
  }
}

static void wire_rejects_each_missing_field(void **state) {
  char detail[96];
  (void)state;

  for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
    if (!fields[i].required)
      continue;
    snprintf(detail, sizeof(detail), "field \"%s\": missing", fields[i].path);
    expect_change(fields[i].base, fields[i].path, NULL, WIRE_REJECT_BAD_FIELD,
                  detail);
  }
}

/* ---- versions ---- */

/* wire_proto_agree(): (our range, their range) -> the minor, or none. */
static void wire_agrees_on_the_highest_minor_both_speak(void **state) {
  static const struct {
    uint32_t omin, omax, tmin, tmax;
    bool ok;
    uint32_t agreed;
  } cases[] = {
      {0, 1, 0, 0, true, 0},  /* 0.1.0: minor 0 */
      {0, 1, 0, 1, true, 1},  /* two 0.2.0 agents */
      {0, 1, 0, 2, true, 1},  /* a newer sender that still speaks ours */
      {0, 2, 0, 1, true, 1},  /* a newer receiver */
      {0, 2, 1, 2, true, 2},  /* two newer agents */
      {0, 2, 0, 3, true, 2},  /* this version and a proto_next build */
      {0, 3, 0, 2, true, 2},  /* a proto_next build and this version */
      {0, 1, 2, 3, false, 0}, /* a sender that dropped our minors */
      {2, 3, 0, 1, false, 0}, /* a receiver that dropped the sender's */
      {0, 1, 1, 0, false, 0}, /* an upside-down range */
      {1, 1, 1, 1, true, 1},
  };
  (void)state;
  for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
    uint32_t out = 99;
    bool ok = wire_proto_agree(cases[i].omin, cases[i].omax, cases[i].tmin,
                               cases[i].tmax, &out);
    assert_int_equal(ok, cases[i].ok);
    if (ok)
      assert_int_equal(out, cases[i].agreed);
  }
}

static void wire_decodes_the_senders_versions(void **state) {
  struct wire_error err;
  struct wire_msg m;
  size_t len;
  char *buf = encoded(WIRE_HELLO, &len);
  (void)state;

  assert_int_equal(wire_msg_init(&m), 0);
  assert_int_equal(wire_decode(buf, len, &m, &err), 0);
  assert_true(m.versioned);
  assert_int_equal(m.proto_min, WIRE_PROTO_MIN);
  assert_int_equal(m.proto_max, WIRE_PROTO_MAX);
  assert_string_equal(m.release, CHOREO_VERSION);
  wire_msg_free(&m);
  free(buf);
}

/* 0.1.0's messages say no version: read as minor 0, unversioned. */
static void wire_reads_a_0_1_0_message_as_unversioned(void **state) {
  static const char old[] =
      "{\"v\":1,\"cluster\":\"test\",\"from\":\"db1\",\"inc\":5,"
      "\"seq\":3,\"type\":\"state\",\"rec\":{\"addr\":\"tcp://127.0.0.1:"
      "1\",\"ver\":2,\"left\":false,\"state\":\"ready\",\"reason\":\"\","
      "\"since\":1,\"groups\":[\"db\"],\"data\":{}},\"digest\":"
      "\"0000000000000001\",\"known\":1}";
  struct wire_error err;
  struct wire_msg m;
  (void)state;

  assert_int_equal(wire_msg_init(&m), 0);
  assert_int_equal(wire_decode(old, sizeof(old) - 1, &m, &err), 0);
  assert_false(m.versioned);
  assert_int_equal(m.proto_min, 0);
  assert_int_equal(m.proto_max, 0);
  assert_string_equal(m.release, "");
  assert_string_equal(m.rec.state, "ready");
  wire_msg_free(&m);
}

/* A message of another version names its sender, for the log line. */
static void wire_names_the_sender_of_another_version(void **state) {
  struct wire_error err;
  size_t len;
  char *buf = changed(WIRE_STATE, "proto", new_value(SET, "[5,6]", 0), &len);
  (void)state;

  assert_int_equal(decode_raw(buf, len, &err), CHOREO_EDECODE);
  assert_int_equal(err.reason, WIRE_REJECT_PROTO);
  assert_string_equal(err.from, "db1");
  assert_non_null(strstr(err.detail, "this agent 1.0-1." STR(WIRE_PROTO_MAX)));
  free(buf);
  buf = changed(WIRE_STATE, "v", new_value(SET, "3", 0), &len);
  assert_int_equal(decode_raw(buf, len, &err), CHOREO_EDECODE);
  assert_int_equal(err.reason, WIRE_REJECT_BAD_VERSION);
  assert_string_equal(err.from, "db1");
  free(buf);
  buf = changed(WIRE_STATE, "from", new_value(SET, "\"a b\"", 0), &len);
  assert_int_equal(decode_raw(buf, len, &err), CHOREO_EDECODE);
  assert_string_equal(err.from, "");
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(wire_round_trips_every_type),
      cmocka_unit_test(wire_round_trips_extreme_values),
      cmocka_unit_test(wire_round_trips_identity_fields),
      cmocka_unit_test(wire_round_trips_quiet_relay_fields),
      cmocka_unit_test(wire_decodes_absent_quiet_relay_fields),
      cmocka_unit_test(wire_round_trips_an_empty_member_list),
      cmocka_unit_test(wire_encodes_compact_json_in_envelope_order),
      cmocka_unit_test(wire_encodes_a_message_never_initialised),
      cmocka_unit_test(wire_refuses_to_encode_more_than_msg_max),
      cmocka_unit_test(wire_refuses_to_encode_what_receivers_refuse),
      cmocka_unit_test(wire_refuses_to_encode_verdicts_receivers_refuse),
      cmocka_unit_test(wire_rejects_input_that_is_not_a_json_object),
      cmocka_unit_test(wire_rejects_invalid_utf8_in_a_reason),
      cmocka_unit_test(wire_rejects_more_than_msg_max_before_parsing),
      cmocka_unit_test(wire_survives_deep_nesting),
      cmocka_unit_test(wire_reuses_a_message_for_the_next_decode),
      cmocka_unit_test(wire_names_types_and_reasons),
      cmocka_unit_test(wire_rejects_each_field_of_a_wrong_type),
      cmocka_unit_test(wire_rejects_each_missing_field),
      cmocka_unit_test(wire_agrees_on_the_highest_minor_both_speak),
      cmocka_unit_test(wire_decodes_the_senders_versions),
      cmocka_unit_test(wire_reads_a_0_1_0_message_as_unversioned),
      cmocka_unit_test(wire_names_the_sender_of_another_version),
  };
  struct CMUnitTest rows[ARRAY_SIZE(reject_cases)];
  int failed;

  for (size_t i = 0; i < ARRAY_SIZE(reject_cases); i++) {
    struct CMUnitTest t = {reject_cases[i].name, run_reject_case, NULL, NULL,
                           (void *)&reject_cases[i]};
    rows[i] = t;
  }
  failed = cmocka_run_group_tests_name("wire", tests, NULL, NULL);
  failed += cmocka_run_group_tests_name("wire fields", rows, NULL, NULL);
  return failed != 0;
}
