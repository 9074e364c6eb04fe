/*
 * throughput.c (bench) — how many messages one core can take in: a
 * typical `state` message (a record with two groups, three data keys and a
 * reason; about 390 bytes of JSON) is decoded (wire_decode, then
 * wire_msg_free) over and over, as agent_on_message does it, in these
 * settings:
 *
 *   plain     no key: wire_decode only;
 *   key       sealed with the only key of the ring: seal_open + decode;
 *   rotation  a ring of two keys, the message sealed with the second (as
 *             during a key rotation): one failed open first, then the
 *             right one, then decode;
 *   identity-new     identity (docs/SECURITY.md "Identity"): the message
 *             signed by its node and carrying its certificate, taken in as
 *             agent_net.c's trusted() does: wire_decode, then
 *             trust_check_record against a table configured with a real
 *             operator key. Every message is a new version of the record
 *             (ID_VERSIONS of them, signed in advance, ver increasing), so
 *             every one costs an Ed25519 verification;
 *   identity-repeat  the same signed message again and again: a
 *             heartbeat of an unchanged record, whose head was verified
 *             already (the cache hit: a hash instead of a verification);
 *   signed-decode    that signed message decoded only (wire_decode,
 *             without the check): what the larger message costs by itself.
 *
 * and, on the sender's side, encode and encode-signed: wire_encode of the
 * message without identity and with its signature and certificate.
 *
 * Each run lasts about RUN_MS of CPU time (of this thread: the figures
 * hold on a busy machine too); prints the median of RUNS runs of each, in
 * messages per CPU second and µs per message, and the rates of what a
 * sender pays once per publication or version: seal (seal_box of the
 * message) and sign (trust_sign of a new version of the record: body
 * hash, head digest, Ed25519 signature). Then the size of the same hello
 * encoded without identity and with it (trust_sign: signature and
 * certificate), and the identity figures side by side.
 *
 * The identity settings check what they measure: every identity-new
 * message must be one verification and no cache hit, every
 * identity-repeat message a cache hit and no verification; otherwise the
 * benchmark fails.
 *
 * Usage: bench-throughput [--quick]   (--quick: one run of QUICK_MS per
 * setting and ID_VERSIONS_QUICK versions, which such a run goes round,
 * for the test suite: the figures mean little, the checks hold)
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "identity.h"
#include "seal.h"
#include "trust.h"
#include "util.h"
#include "wire.h"

#define RUNS 5
#define RUN_MS 1000
#define QUICK_MS 50
#define BATCH 100
/* identity-new: versions of the record signed in advance, taken in turn. */
#define ID_VERSIONS 1000
/* --quick: fewer, so that a short run goes round them and meets the
 * cache's newest head again. */
#define ID_VERSIONS_QUICK 20
#define DAY_S 86400

#define KEY_A "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define KEY_B "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="

#define CLUSTER "shop"
#define SENDER "db1"

enum kind {
  TAKE_IN,  /* (open and) decode, as agent_on_message */
  SEAL,     /* seal_box: what a publication pays with a key */
  ID_CHECK, /* decode, then trust_check_record, as trusted() */
  ID_SIGN,  /* trust_sign of a new version: what a change pays */
  ENCODE,   /* wire_encode: what every publication pays */
};

struct input {
  enum kind kind;
  const struct seal_ring *ring; /* TAKE_IN, SEAL; NULL: plain */
  /* The messages, taken in turn (nmsgs of them; ID_SIGN: the record's
   * encoding, for its size only). */
  char **msgs;
  size_t *lens, nmsgs, next;
  struct trust *trust; /* ID_CHECK: the receiver's; ID_SIGN: the sender's */
  /* ID_SIGN: the record signed, ver bumped each time; ENCODE: the
   * message encoded. */
  struct wire_msg *own;
  uint64_t done; /* messages handled, over every run */
};

static int runs = RUNS;
static int run_ms = RUN_MS;
static size_t id_versions = ID_VERSIONS;

/* CPU time of this thread: what one core spends, whatever else the
 * machine runs meanwhile. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench-throughput: %s: %s\n", what, why);
  exit(1);
}

/* m: the typical record (version ver) in a message of type type.
 * Returns 0 or CHOREO_ENOMEM; free m with wire_msg_free(). */
static int typical_msg(struct wire_msg *m, enum wire_type type, uint64_t ver) {
  int rv = wire_msg_init(m);

  if (rv != 0)
    return rv;
  m->type = type;
  snprintf(m->cluster, sizeof(m->cluster), CLUSTER);
  snprintf(m->from, sizeof(m->from), SENDER);
  m->inc = m->rec.inc = 1764061200;
  m->seq = 4242;
  m->digest = 0x9f1c2a0b44e1d3c7;
  m->nknown = 12;
  snprintf(m->rec.name, sizeof(m->rec.name), SENDER);
  snprintf(m->rec.addr, sizeof(m->rec.addr), "tcp://10.0.0.11:7410");
  m->rec.ver = ver;
  snprintf(m->rec.state, sizeof(m->rec.state), "maintenance");
  snprintf(m->rec.reason, sizeof(m->rec.reason), "schema upgrade to v42");
  m->rec.since_ms = 1764061234567;
  m->rec.ngroups = 2;
  snprintf(m->rec.groups[0], sizeof(m->rec.groups[0]), "db");
  snprintf(m->rec.groups[1], sizeof(m->rec.groups[1]), "primary");
  json_object_set_new(m->rec.data, "dsn",
                      json_string("postgres://10.0.0.11/shop"));
  json_object_set_new(m->rec.data, "role", json_string("primary"));
  json_object_set_new(m->rec.data, "version", json_string("15.4"));
  return 0;
}

/* The typical message encoded; signed by signer unless signer is NULL,
 * with its certificate when with_cert (as net_publish does for a hello, or
 * for a peer that asked; a heartbeat or a change carries the signature
 * only). On success the caller owns *out (free()). */
static int typical(enum wire_type type, uint64_t ver, struct trust *signer,
                   bool with_cert, char **out, size_t *len) {
  struct wire_msg m;
  int rv = typical_msg(&m, type, ver);

  if (rv != 0)
    return rv;
  if (signer != NULL)
    trust_sign(signer, &m, &m.rec, with_cert);
  rv = wire_encode(&m, out, len);
  wire_msg_free(&m);
  return rv;
}

/* One message taken in, as agent_on_message does. */
static int take_in(const struct seal_ring *ring, const unsigned char *msg,
                   size_t msglen, unsigned char *plain) {
  struct wire_error err;
  struct wire_msg m;
  const unsigned char *buf = msg;
  size_t len = msglen;
  int rv;

  if (ring != NULL) {
    rv = seal_open(ring, msg, msglen, plain, CHOREO_MSG_MAX, &len, NULL);
    if (rv != 0)
      return rv;
    buf = plain;
  }
  if ((rv = wire_msg_init(&m)) == 0)
    rv = wire_decode(buf, len, &m, &err);
  wire_msg_free(&m);
  return rv;
}

/* One signed message taken in as agent_net.c's trusted() does, up to its
 * verdict: decoded, then checked against the table at the wall clock's
 * time. A message the table refuses ends the benchmark. */
static int check_in(struct trust *t, const unsigned char *buf, size_t len) {
  struct wire_error err;
  struct wire_msg m;
  enum trust_verdict v = TRUST_OK;
  bool warn;
  int rv;

  if ((rv = wire_msg_init(&m)) == 0 &&
      (rv = wire_decode(buf, len, &m, &err)) == 0)
    v = trust_check_record(t, &m, util_wall_ms(), &warn);
  wire_msg_free(&m);
  if (rv == 0 && v != TRUST_OK)
    die("identity check", trust_verdict_name(v));
  return rv;
}

/* The receiver's cache holds the newest head it verified, which a cycle
 * through the versions meets again at its end: forgotten when the cycle
 * starts again (the certificate stays verified), every message is a new
 * version to it, as in a stream of changes. */
static void forget_head(struct trust *t) {
  struct trust_entry *e = trust_find(t, SENDER);
  if (e != NULL)
    e->has_head = false;
}

static void one(struct input *in, unsigned char *scratch) {
  const unsigned char *msg = (const unsigned char *)in->msgs[in->next];
  size_t len = in->lens[in->next], out;
  int rv = 0;

  switch (in->kind) {
  case TAKE_IN:
    rv = take_in(in->ring, msg, len, scratch);
    break;
  case SEAL:
    rv = seal_box(in->ring, msg, len, scratch, CHOREO_MSG_MAX, &out);
    break;
  case ID_CHECK:
    rv = check_in(in->trust, msg, len);
    break;
  case ID_SIGN:
    in->own->rec.ver++;
    trust_sign(in->trust, in->own, &in->own->rec, false);
    break;
  case ENCODE: {
    char *text = NULL;
    rv = wire_encode(in->own, &text, &out);
    free(text);
    break;
  }
  }
  if (rv != 0)
    die("message", choreo_strerror(rv));
  if (++in->next == in->nmsgs) {
    in->next = 0;
    if (in->kind == ID_CHECK && in->nmsgs > 1)
      forget_head(in->trust);
  }
}

/* Messages per second over one run of about run_ms. */
static double run(struct input *in, unsigned char *scratch) {
  double start = now_s(), end;
  size_t n = 0;

  do {
    for (int i = 0; i < BATCH; i++)
      one(in, scratch);
    n += BATCH;
    end = now_s();
  } while (end - start < run_ms / 1000.0);
  in->done += n;
  return (double)n / (end - start);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Prints the median of runs runs and returns it (messages per second). */
static double measure(const char *name, struct input *in,
                      unsigned char *scratch) {
  double rates[RUNS];
  for (int i = 0; i < runs; i++)
    rates[i] = run(in, scratch);
  qsort(rates, (size_t)runs, sizeof(rates[0]), cmp_double);
  printf("%-15s %6zu bytes  median %9.0f msg/s %8.2f µs  (min %.0f, max "
         "%.0f)\n",
         name, in->lens[0], rates[runs / 2], 1e6 / rates[runs / 2], rates[0],
         rates[runs - 1]);
  return rates[runs / 2];
}

static struct seal_ring *ring(const char *text) {
  struct seal_ring *r = NULL;
  struct seal_error err;
  if (seal_ring_parse(text, strlen(text), "bench", &r, &err) != 0)
    die("key ring", err.text);
  return r;
}

/* Everything identity needs: an operator, the sender's and the
 * receiver's keys and certificates (issued by the operator, valid from
 * yesterday to a year from now), and both tables configured with
 * identity required, as the agents of a cluster with identity. */
struct world {
  struct id_key op, db, web;
  struct id_cert db_cert, web_cert;
  struct trust sender, receiver;
};

static void issue(const struct id_key *op, const char *node, size_t ngroups,
                  const char (*groups)[CHOREO_NAME_MAX + 1],
                  const struct id_key *k, struct id_cert *out) {
  int64_t now = util_wall_ms() / 1000;
  char err[ID_ERR_MAX];
  if (id_cert_issue(op, node, ngroups, groups, k->pk, 0, now - DAY_S,
                    now + 365 * DAY_S, out, err) != 0)
    die("certificate", err);
}

static void world_init(struct world *w) {
  const char db_groups[2][CHOREO_NAME_MAX + 1] = {"db", "primary"};
  const char web_groups[1][CHOREO_NAME_MAX + 1] = {"web"};
  const uint8_t(*ops)[ID_PUBLIC_BYTES] =
      (const uint8_t(*)[ID_PUBLIC_BYTES])w->op.pk;

  if (id_key_generate(&w->op) != 0 || id_key_generate(&w->db) != 0 ||
      id_key_generate(&w->web) != 0)
    die("keys", choreo_strerror(CHOREO_ECRYPTO));
  issue(&w->op, SENDER, 2, db_groups, &w->db, &w->db_cert);
  issue(&w->op, "web1", 1, web_groups, &w->web, &w->web_cert);
  if (trust_init(&w->sender) != 0 || trust_init(&w->receiver) != 0 ||
      trust_configure(&w->sender, CLUSTER, &w->db, &w->db_cert, ops, 1, true) !=
          0 ||
      trust_configure(&w->receiver, CLUSTER, &w->web, &w->web_cert, ops, 1,
                      true) != 0)
    die("trust tables", choreo_strerror(CHOREO_ENOMEM));
}

/* Measure an identity check and make sure of what it measured: each
 * message one verification (new) or one cache hit (repeat). */
static double measure_check(const char *name, struct input *in, bool new,
                            unsigned char *scratch) {
  struct trust *t = in->trust;
  uint64_t verified, hits;
  double rate;

  one(in, scratch); /* the certificate verified, the table's entry made */
  verified = t->verified;
  hits = t->cache_hits;
  in->done = 0;
  rate = measure(name, in, scratch);
  verified = t->verified - verified;
  hits = t->cache_hits - hits;
  if (verified != (new ? in->done : 0) || hits != (new ? 0 : in->done)) {
    fprintf(stderr,
            "bench-throughput: %s: %llu messages, %llu verifications, %llu "
            "cache hits\n",
            name, (unsigned long long)in->done, (unsigned long long)verified,
            (unsigned long long)hits);
    exit(1);
  }
  return rate;
}

/* The same hello without identity and with it, plain and sealed. */
static void hello_sizes(struct world *w, const struct seal_ring *key) {
  char *plain = NULL, *signed_ = NULL;
  unsigned char *box = NULL;
  size_t plen = 0, slen = 0, pbox = 0, sbox = 0;

  if (typical(WIRE_HELLO, 17, NULL, false, &plain, &plen) != 0 ||
      typical(WIRE_HELLO, 17, &w->sender, true, &signed_, &slen) != 0 ||
      seal_box_alloc(key, plain, plen, &box, &pbox) != 0)
    die("hello", "cannot encode");
  free(box);
  box = NULL;
  if (seal_box_alloc(key, signed_, slen, &box, &sbox) != 0)
    die("hello", "cannot seal");
  printf("hello: %zu bytes without identity, %zu with it (signature and "
         "certificate: +%zu); sealed %zu and %zu (+%zu, +%zu)\n",
         plen, slen, slen - plen, pbox, sbox, pbox - plen, sbox - slen);
  free(box);
  free(plain);
  free(signed_);
}

/* id_versions signed versions of the record (ver 1, 2…) for identity-new,
 * and one more (the newest) for identity-repeat, without the certificate
 * as they go out; the receiver holds it from a hello, taken first. */
static void signed_versions(struct world *w, char **msgs, size_t *lens) {
  char *hello = NULL;
  size_t len = 0;

  for (size_t i = 0; i <= id_versions; i++)
    if (typical(WIRE_STATE, i + 1, &w->sender, false, &msgs[i], &lens[i]) != 0)
      die("signed state", "cannot encode");
  if (typical(WIRE_HELLO, 0, &w->sender, true, &hello, &len) != 0 ||
      check_in(&w->receiver, (const unsigned char *)hello, len) != 0)
    die("hello", "cannot take the certificate in");
  free(hello);
}

static void identity(struct world *w, double plain, char **plain_msg,
                     size_t *plain_len, unsigned char *scratch) {
  char **msgs = calloc(id_versions + 1, sizeof(*msgs));
  size_t *lens = calloc(id_versions + 1, sizeof(*lens));
  struct wire_msg own, bare;
  double fresh, repeat, sign, plain_enc, signed_enc;

  if (msgs == NULL || lens == NULL ||
      typical_msg(&own, WIRE_STATE, id_versions + 2) != 0 ||
      typical_msg(&bare, WIRE_STATE, 17) != 0)
    die("identity", choreo_strerror(CHOREO_ENOMEM));
  signed_versions(w, msgs, lens);
  fresh = measure_check("identity-new",
                        &(struct input){.kind = ID_CHECK,
                                        .msgs = msgs,
                                        .lens = lens,
                                        .nmsgs = id_versions,
                                        .trust = &w->receiver},
                        true, scratch);
  repeat = measure_check("identity-repeat",
                         &(struct input){.kind = ID_CHECK,
                                         .msgs = msgs + id_versions,
                                         .lens = lens + id_versions,
                                         .nmsgs = 1,
                                         .trust = &w->receiver},
                         false, scratch);
  /* How much of a repeat is the larger message's decoding (the
   * signature and certificate's JSON) rather than the check. */
  measure("signed-decode",
          &(struct input){.kind = TAKE_IN,
                          .msgs = msgs + id_versions,
                          .lens = lens + id_versions,
                          .nmsgs = 1},
          scratch);
  sign = measure("sign",
                 &(struct input){.kind = ID_SIGN,
                                 .msgs = msgs + id_versions,
                                 .lens = lens + id_versions,
                                 .nmsgs = 1,
                                 .trust = &w->sender,
                                 .own = &own},
                 scratch);
  /* What publishing costs besides the signature: the larger message's
   * encoding (own is signed now: its signature and certificate). */
  plain_enc = measure("encode",
                      &(struct input){.kind = ENCODE,
                                      .msgs = plain_msg,
                                      .lens = plain_len,
                                      .nmsgs = 1,
                                      .own = &bare},
                      scratch);
  signed_enc = measure("encode-signed",
                       &(struct input){.kind = ENCODE,
                                       .msgs = msgs + id_versions,
                                       .lens = lens + id_versions,
                                       .nmsgs = 1,
                                       .own = &own},
                       scratch);
  printf("a state message (heartbeat or change): %zu bytes without "
         "identity, %zu with its signature (no certificate: peers hold it)\n",
         *plain_len, lens[id_versions]);
  printf("identity, per message on one core: a new version %.2f µs "
         "(decode, verify), a repeat (heartbeat) %.2f µs, plain decode "
         "%.2f µs: a heartbeat costs %.2f µs more with identity, a new "
         "version %.2f µs more; signing a new version %.2f µs, encoding "
         "it %.2f µs more than without identity\n",
         1e6 / fresh, 1e6 / repeat, 1e6 / plain, 1e6 / repeat - 1e6 / plain,
         1e6 / fresh - 1e6 / plain, 1e6 / sign,
         1e6 / signed_enc - 1e6 / plain_enc);
  wire_msg_free(&own);
  wire_msg_free(&bare);
  for (size_t i = 0; i <= id_versions; i++)
    free(msgs[i]);
  free(msgs);
  free(lens);
}

int main(int argc, char **argv) {
  struct seal_ring *one_key = ring(KEY_B "\n"), *two = ring(KEY_A "\n" KEY_B);
  unsigned char *scratch = malloc(CHOREO_MSG_MAX), *box = NULL;
  size_t len = 0, boxlen = 0;
  char *msg = NULL, *boxed;
  struct world *w = calloc(1, sizeof(*w));
  double plain;

  if (argc == 2 && strcmp(argv[1], "--quick") == 0) {
    runs = 1;
    run_ms = QUICK_MS;
    id_versions = ID_VERSIONS_QUICK;
  } else if (argc != 1) {
    fprintf(stderr, "usage: bench-throughput [--quick]\n");
    return 2;
  }
  if (scratch == NULL || w == NULL ||
      typical(WIRE_STATE, 17, NULL, false, &msg, &len) != 0 ||
      seal_box_alloc(one_key, msg, len, &box, &boxlen) != 0)
    return 1;
  world_init(w);
  boxed = (char *)box;
  printf("one core, median of %d runs of %d ms of CPU time:\n", runs, run_ms);
  plain = measure(
      "plain",
      &(struct input){.kind = TAKE_IN, .msgs = &msg, .lens = &len, .nmsgs = 1},
      scratch);
  measure("key",
          &(struct input){.kind = TAKE_IN,
                          .ring = one_key,
                          .msgs = &boxed,
                          .lens = &boxlen,
                          .nmsgs = 1},
          scratch);
  measure("rotation",
          &(struct input){.kind = TAKE_IN,
                          .ring = two,
                          .msgs = &boxed,
                          .lens = &boxlen,
                          .nmsgs = 1},
          scratch);
  measure("seal",
          &(struct input){.kind = SEAL,
                          .ring = one_key,
                          .msgs = &msg,
                          .lens = &len,
                          .nmsgs = 1},
          scratch);
  identity(w, plain, &msg, &len, scratch);
  hello_sizes(w, one_key);
  trust_free(&w->sender);
  trust_free(&w->receiver);
  free(w);
  free(box);
  free(msg);
  free(scratch);
  seal_ring_free(one_key);
  seal_ring_free(two);
  return 0;
}
