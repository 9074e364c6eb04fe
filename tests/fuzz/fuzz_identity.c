/*
 * fuzz_identity.c — libFuzzer target for node identity (agent/identity.c):
 * the certificates and revocations an agent reads from files, the wire and
 * the control socket, and the record signatures it checks on every
 * message with identity on.
 *
 * The first byte picks what the rest is: 'c' (or 0 mod 3) a certificate,
 * 'r' (1 mod 3) a revocation, 'h' (2 mod 3) a record, as JSON text. Beyond
 * "no crash, no leak, no undefined behaviour":
 *   - a refusal says why, in a terminated string;
 *   - what parses is within its bounds, writes back (to_json) to an object
 *     that parses to an equal struct, and to text that does too;
 *   - its signature check against a fixed operator key never crashes, and
 *     once re-signed with that key (issue) it verifies, and still fails
 *     under any other trusted key;
 *   - a record (fields read from the JSON with the protocol's bounds, data
 *     of any JSON values) signs and verifies, its digest is stable, and a
 *     changed body hash or a changed counter breaks the signature.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct id_key op, other;
static bool ready;

static void setup(void) {
  uint8_t seed[32];

  if (ready)
    return;
  if (sodium_init() < 0)
    abort();
  memset(seed, 0x4f, sizeof(seed));
  crypto_sign_seed_keypair(op.pk, op.sk, seed);
  memset(seed, 0x50, sizeof(seed));
  crypto_sign_seed_keypair(other.pk, other.sk, seed);
  ready = true;
}

static void check_refusal(int rv, const char *err) {
  if (rv != CHOREO_EINVAL || err[0] == '\0' ||
      strnlen(err, ID_ERR_MAX) == ID_ERR_MAX)
    abort(); /* a refusal must say why, in a terminated string */
}

static bool cert_equal(const struct id_cert *a, const struct id_cert *b) {
  if (strcmp(a->node, b->node) != 0 || a->ngroups != b->ngroups ||
      a->serial != b->serial || a->not_before != b->not_before ||
      a->not_after != b->not_after || memcmp(a->key, b->key, 32) != 0 ||
      memcmp(a->operator_key, b->operator_key, 32) != 0 ||
      memcmp(a->sig, b->sig, 64) != 0)
    return false;
  for (size_t i = 0; i < a->ngroups; i++)
    if (strcmp(a->groups[i], b->groups[i]) != 0)
      return false;
  return true;
}

static bool revocation_equal(const struct id_revocation *a,
                             const struct id_revocation *b) {
  return a->serial == b->serial && strcmp(a->node, b->node) == 0 &&
         a->time == b->time &&
         memcmp(a->operator_key, b->operator_key, 32) == 0 &&
         memcmp(a->sig, b->sig, 64) == 0;
}

/* The text of j, parsed back with parse into out: must succeed. */
static char *dump(json_t *j) {
  char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
  if (text == NULL)
    abort();
  return text;
}

static void cert_round_trip(const struct id_cert *c) {
  struct id_cert back, signed_c;
  char err[ID_ERR_MAX] = "", *text;
  const uint8_t(*ops)[ID_PUBLIC_BYTES] =
      (const uint8_t(*)[ID_PUBLIC_BYTES])op.pk;
  json_t *j = id_cert_to_json(c);

  if (c->ngroups > CHOREO_GROUPS_MAX || !choreo_valid_name(c->node) ||
      c->not_before < 0 || c->not_before > c->not_after)
    abort(); /* out of bounds yet accepted */
  text = dump(j);
  if (id_cert_from_json(j, &back, err) != 0 || !cert_equal(c, &back))
    abort();
  if (id_cert_parse(text, strlen(text), &back, err) != 0 ||
      !cert_equal(c, &back))
    abort();
  free(text);
  json_decref(j);
  (void)id_cert_verify(c, ops, 1, c->not_before);
  /* The same fields signed with op: valid within its period, and only
   * under op. */
  if (id_cert_issue(&op, c->node, c->ngroups,
                    (const char(*)[CHOREO_NAME_MAX + 1]) c->groups, c->key,
                    c->serial, c->not_before, c->not_after, &signed_c,
                    err) != 0)
    abort();
  if (id_cert_verify(&signed_c, ops, 1, c->not_after) != ID_CERT_OK)
    abort();
  if (id_cert_verify(&signed_c, (const uint8_t(*)[ID_PUBLIC_BYTES])other.pk, 1,
                     c->not_after) != ID_CERT_UNTRUSTED)
    abort();
  signed_c.serial ^= 1;
  if (id_cert_verify(&signed_c, ops, 1, c->not_after) != ID_CERT_BAD_SIG)
    abort();
}

static void fuzz_cert(const char *text, size_t len) {
  struct id_cert c;
  char err[ID_ERR_MAX] = "";
  int rv = id_cert_parse(text, len, &c, err);

  if (rv == 0)
    cert_round_trip(&c);
  else
    check_refusal(rv, err);
}

static void fuzz_revocation(const char *text, size_t len) {
  struct id_revocation r, back, signed_r;
  const uint8_t(*ops)[ID_PUBLIC_BYTES] =
      (const uint8_t(*)[ID_PUBLIC_BYTES])op.pk;
  char err[ID_ERR_MAX] = "", *out;
  int rv = id_revocation_parse(text, len, &r, err);
  json_t *j;

  if (rv != 0) {
    check_refusal(rv, err);
    return;
  }
  if (r.time < 0 || (r.node[0] != '\0' && !choreo_valid_name(r.node)))
    abort();
  j = id_revocation_to_json(&r);
  out = dump(j);
  if (id_revocation_from_json(j, &back, err) != 0 ||
      !revocation_equal(&r, &back) ||
      id_revocation_parse(out, strlen(out), &back, err) != 0 ||
      !revocation_equal(&r, &back))
    abort();
  free(out);
  json_decref(j);
  (void)id_revocation_verify(&r, ops, 1);
  if (id_revocation_issue(&op, r.serial, r.node, r.time, &signed_r, err) != 0 ||
      !id_revocation_verify(&signed_r, ops, 1))
    abort();
  signed_r.time ^= 1;
  if (id_revocation_verify(&signed_r, ops, 1))
    abort();
}

/* A string field of j into out[max + 1], if it is one and fits. */
static void text_field(json_t *j, const char *name, char *out, size_t max) {
  const char *s = json_string_value(json_object_get(j, name));
  if (s != NULL && strlen(s) <= max)
    memcpy(out, s, strlen(s) + 1);
}

static uint64_t int_field(json_t *j, const char *name) {
  json_int_t v = json_integer_value(json_object_get(j, name));
  return v < 0 ? 0 : (uint64_t)v;
}

static void record_of(json_t *j, struct record *r, char *cluster) {
  json_t *g = json_object_get(j, "groups"), *d = json_object_get(j, "data"), *v;
  size_t i;

  text_field(j, "cluster", cluster, CHOREO_CLUSTER_MAX);
  text_field(j, "name", r->name, CHOREO_NAME_MAX);
  text_field(j, "addr", r->addr, CHOREO_ADDR_MAX);
  text_field(j, "state", r->state, CHOREO_STATE_MAX);
  text_field(j, "reason", r->reason, CHOREO_REASON_MAX);
  r->inc = int_field(j, "inc");
  r->ver = int_field(j, "ver");
  r->since_ms = (int64_t)int_field(j, "since");
  r->left = json_is_true(json_object_get(j, "left"));
  json_array_foreach(g, i, v) {
    const char *s = json_string_value(v);
    if (r->ngroups < CHOREO_GROUPS_MAX && s != NULL &&
        strlen(s) <= CHOREO_NAME_MAX)
      memcpy(r->groups[r->ngroups++], s, strlen(s) + 1);
  }
  /* Any values, not only strings: the hash must cope with what it gets. */
  if (json_is_object(d)) {
    json_decref(r->data);
    r->data = json_incref(d);
  }
}

static void fuzz_head(const char *text, size_t len) {
  char cluster[CHOREO_CLUSTER_MAX + 1] = "";
  uint8_t sig[ID_SIG_BYTES], d1[ID_HASH_BYTES], d2[ID_HASH_BYTES];
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
  struct id_head h;
  struct record r;

  if (!json_is_object(j) || record_init(&r) != 0) {
    json_decref(j);
    return;
  }
  record_of(j, &r, cluster);
  id_head_of(cluster, &r, &h);
  id_head_sign(&op, &h, sig);
  if (!id_head_verify(op.pk, &h, sig) || id_head_verify(other.pk, &h, sig))
    abort();
  id_head_digest(&h, d1);
  id_head_of(cluster, &r, &h);
  id_head_digest(&h, d2);
  if (memcmp(d1, d2, sizeof(d1)) != 0)
    abort(); /* the same record, another digest */
  h.body_hash[len % ID_HASH_BYTES] ^= 0x80;
  if (id_head_verify(op.pk, &h, sig))
    abort();
  h.body_hash[len % ID_HASH_BYTES] ^= 0x80;
  h.ver++;
  if (id_head_verify(op.pk, &h, sig))
    abort();
  record_free(&r);
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data + 1;

  setup();
  if (size == 0)
    return 0;
  switch (data[0] == 'c'   ? 0
          : data[0] == 'r' ? 1
          : data[0] == 'h' ? 2
                           : data[0] % 3) {
  case 0:
    fuzz_cert(text, size - 1);
    break;
  case 1:
    fuzz_revocation(text, size - 1);
    break;
  default:
    /* Records reach the signature bounded by the wire's 64 KiB. */
    if (size - 1 <= CHOREO_MSG_MAX)
      fuzz_head(text, size - 1);
  }
  return 0;
}
