/*
 * fuzz_trust.c — libFuzzer target for what identity lets through
 * (agent/trust.c): any bytes decoded as a message (wire_decode), then,
 * as the agent's receive path does with identity required, its
 * revocations taken (trust_revoke), its record checked
 * (trust_check_record) or its member entries (trust_check_member), and
 * a relay's verdicts (trust_check_verdicts). The
 * table trusts a fixed operator key and holds a verified certificate and
 * head for node "db1", so that the cache, revocation and member paths
 * are reached as well as the refusals.
 *
 * Beyond "no crash, no leak, no undefined behaviour": a verdict is one of
 * trust.h's; a record that passes either carries db1's signature of that
 * exact head (checked again here with identity.c) or is the head verified
 * already; the table never holds more than TRUST_ENTRIES_MAX nodes or
 * TRUST_REVOKED_MAX revocations.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "trust.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW_MS 1800000000000LL

static struct id_key op, db1, self;
static struct id_cert db1_cert, self_cert;
static struct wire_msg first; /* db1's valid signed state */
/* One table for every input, brought back after each to what it was:
 * db1's entry as verified, nothing else, no revocation. */
static struct trust t;
static struct trust_entry db1_saved;

static void key_from(uint8_t fill, struct id_key *k) {
  uint8_t seed[32];
  memset(seed, fill, sizeof(seed));
  crypto_sign_seed_keypair(k->pk, k->sk, seed);
}

static void setup(void) {
  static bool ready;
  char groups[1][CHOREO_NAME_MAX + 1] = {"db"};
  char err[ID_ERR_MAX];
  struct id_head h;

  if (ready)
    return;
  if (sodium_init() < 0)
    abort();
  key_from(1, &op);
  key_from(2, &db1);
  key_from(3, &self);
  if (id_cert_issue(&op, "db1", 1, (const char(*)[CHOREO_NAME_MAX + 1]) groups,
                    db1.pk, 42, 0, NOW_MS / 1000 + 86400, &db1_cert,
                    err) != 0 ||
      id_cert_issue(&op, "me", 1, (const char(*)[CHOREO_NAME_MAX + 1]) groups,
                    self.pk, 43, 0, NOW_MS / 1000 + 86400, &self_cert,
                    err) != 0 ||
      wire_msg_init(&first) != 0)
    abort();
  first.type = WIRE_STATE;
  memcpy(first.cluster, "test", 5);
  memcpy(first.from, "db1", 4);
  first.inc = first.rec.inc = 7;
  memcpy(first.rec.name, "db1", 4);
  memcpy(first.rec.addr, "tcp://127.0.0.1:7411", 21);
  first.rec.ver = 3;
  memcpy(first.rec.state, "ready", 6);
  first.rec.ngroups = 1;
  memcpy(first.rec.groups[0], "db", 3);
  id_head_of("test", &first.rec, &h);
  id_head_sign(&db1, &h, first.sig);
  first.has_sig = true;
  first.cert = id_cert_to_json(&db1_cert);
  if (trust_init(&t) != 0 ||
      trust_configure(&t, "test", &self, &self_cert,
                      (const uint8_t(*)[ID_PUBLIC_BYTES])op.pk, 1, true) != 0)
    abort();
  bool warn;
  if (trust_check_record(&t, &first, NOW_MS, &warn) != TRUST_OK ||
      trust_find(&t, "db1") == NULL)
    abort();
  db1_saved = *trust_find(&t, "db1");
  ready = true;
}

/* Back to the table setup() left. */
static void restore(void) {
  char names[64][CHOREO_NAME_MAX + 1];
  size_t n;
  struct trust_entry *e, *next;

  do {
    n = 0;
    for (size_t i = 0; i < t.nbuckets && n < 64; i++)
      for (e = t.buckets[i]; e != NULL && n < 64; e = e->next)
        if (strcmp(e->name, "db1") != 0)
          memcpy(names[n++], e->name, sizeof(names[0]));
    for (size_t i = 0; i < n; i++)
      trust_forget(&t, names[i]);
  } while (n > 0);
  e = trust_find(&t, "db1");
  if (e == NULL)
    abort();
  next = e->next;
  *e = db1_saved;
  e->next = next;
  t.nrevoked = 0;
  t.required = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct wire_msg m;
  struct wire_error err;
  char node[CHOREO_NAME_MAX + 1], why[ID_ERR_MAX];
  bool warn, is_new;

  setup();
  t.required = size > 0 && data[0] & 1;
  if (wire_msg_init(&m) != 0)
    abort();
  if (wire_decode(data, size, &m, &err) == 0) {
    const json_t *r;
    size_t i;
    json_array_foreach(m.revoked, i, r) {
      (void)trust_revoke(&t, r, true, &is_new, node, why);
      if (strlen(why) >= ID_ERR_MAX)
        abort();
    }
    if (m.type == WIRE_MEMBERS) {
      for (size_t k = 0; k < m.nmembers; k++)
        (void)trust_check_member(&t, &m.members[k], NOW_MS);
    } else {
      enum trust_verdict v;
      if (data[0] & 2 && strcmp(m.from, "db1") == 0) {
        struct id_head h0;
        id_head_of("test", &m.rec, &h0);
        id_head_sign(&db1, &h0, m.sig);
        m.has_sig = true;
      }
      v = trust_check_record(&t, &m, NOW_MS, &warn);
      struct trust_entry *e = trust_find(&t, m.from);
      if (v >= TRUST_VERDICTS)
        abort();
      /* A signed record let through is what its node signed. */
      if (v == TRUST_OK && m.has_sig && e != NULL && e->has_cert) {
        struct id_head h;
        uint8_t digest[ID_HASH_BYTES];
        id_head_of("test", &m.rec, &h);
        id_head_digest(&h, digest);
        if (!id_head_verify(e->cert.key, &h, m.sig) &&
            memcmp(digest, e->digest, ID_HASH_BYTES) != 0)
          abort();
      }
      /* A relay's verdicts taken are what db1 signed, with this stamp
       * (db1 signs them itself when the input asks). */
      if (v == TRUST_OK && m.relay) {
        if (data[0] & 4 && strcmp(m.from, "db1") == 0) {
          struct trust signer = t;
          signer.key = db1;
          trust_sign_verdicts(&signer, &m);
        }
        if (trust_check_verdicts(&t, &m, NOW_MS) && m.has_lost_sig &&
            (e == NULL || !e->has_cert))
          abort();
      }
    }
    json_decref(trust_revoked_for(&t, false));
    json_decref(trust_revoked_for(&t, true));
  }
  if (t.n > TRUST_ENTRIES_MAX || t.nrevoked > TRUST_REVOKED_MAX)
    abort();
  wire_msg_free(&m);
  restore();
  return 0;
}
