/*
 * wire.c — the messages agents exchange, to and from JSON with jansson
 * (see wire.h; docs/PROTOCOL.md).
 *
 * Encoding builds a compact JSON document: the envelope
 * {"v","cluster","from","inc","seq","type"}, then for hello, state and
 * leave "rec" (the sender's record without its name and incarnation, which
 * are "from" and "inc"), "digest" (16 lowercase hex digits: a JSON number
 * would lose bits of a uint64) and "known"; for members, "members".
 *
 * Decoding trusts nothing. The size is checked before parsing; jansson
 * rejects duplicate keys and bounds the nesting depth itself (2048 in
 * 2.14); then every field we use is checked for presence, type, size and
 * characters, and a rejection names the field and quotes (escaped, cut
 * short) what was received. Fields we do not know, in the envelope, in a
 * record or in a member entry, are ignored on purpose: a newer agent may
 * add fields without older ones dropping its messages. A known field of
 * the wrong type is still an error.
 *
 * Versions (docs/PROTOCOL.md "Versions"): "v" is the major format, and
 * "proto": [min, max] the protocol minors the sender speaks, checked
 * right after "v" so that a message of a minor we can't read is refused
 * as proto_unsupported, not as whatever field it lacks; "release" is the
 * sender's software version. Both are optional (0.1.0 sent neither). The
 * fields of a minor above ours are not decoded at all: to this agent
 * they are unknown fields. The optional fields of quiet relays (minor 2:
 * "relay", "lost", "nlost", "lost_sig", "rdigest", "resync") are decoded
 * from every sender, as the identity fields are; what a receiver does
 * with them is its own policy.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util.h"
#include "wire.h"

#define DIGEST_DIGITS 16
#define FIELD_MAX 80 /* "rec.data." and a data key */
#define QUOTE_MAX 32 /* bytes of received text quoted in an error */
#define QUOTE_BUF (QUOTE_MAX * 4 + 6) /* each byte may become \xHH */

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

const char *wire_type_name(enum wire_type t) {
  switch (t) {
#define XX(id, s)                                                              \
  case WIRE_##id:                                                              \
    return s;
    WIRE_TYPE_MAP(XX)
#undef XX
  }
  return "unknown";
}

const char *wire_reject_name(enum wire_reject r) {
  switch (r) {
  case WIRE_OK:
    return "ok";
#define XX(id, s)                                                              \
  case WIRE_REJECT_##id:                                                       \
    return s;
    WIRE_REJECT_MAP(XX)
#undef XX
  }
  return "unknown";
}

int wire_msg_init(struct wire_msg *m) {
  memset(m, 0, sizeof(*m));
  return record_init(&m->rec);
}

void wire_msg_free(struct wire_msg *m) {
  json_decref(m->cert);
  json_decref(m->revoked);
  m->cert = m->revoked = NULL;
  record_free(&m->rec);
  free(m->members);
  m->members = NULL;
  m->nmembers = 0;
}

/* ---- encoding ---- */

/* The first error sticks; later steps only release what they were given,
 * so a message is built without a check after every call. */
struct enc {
  int rv;
};

/* Add v (a new reference, stolen even on failure) to object o. */
static void put(struct enc *e, json_t *o, const char *key, json_t *v) {
  if (e->rv != 0) {
    json_decref(v);
    return;
  }
  if (v == NULL || json_object_set_new(o, key, v) != 0)
    e->rv = CHOREO_ENOMEM;
}

static void append(struct enc *e, json_t *a, json_t *v) {
  if (e->rv != 0) {
    json_decref(v);
    return;
  }
  if (v == NULL || json_array_append_new(a, v) != 0)
    e->rv = CHOREO_ENOMEM;
}

/* A string jansson refuses is not UTF-8 (receivers would refuse it too). */
static json_t *str(struct enc *e, const char *s) {
  json_t *v = json_string(s);
  if (v == NULL && e->rv == 0)
    e->rv = choreo_valid_text(s, SIZE_MAX) ? CHOREO_ENOMEM : CHOREO_EINVAL;
  return v;
}

/* Counters beyond RECORD_COUNTER_MAX would be refused on arrival. */
static json_t *counter(struct enc *e, uint64_t u) {
  if (u > RECORD_COUNTER_MAX) {
    if (e->rv == 0)
      e->rv = CHOREO_EINVAL;
    return NULL;
  }
  return json_integer((json_int_t)u);
}

/* n bytes as base64 (identity's signatures and hashes). */
static json_t *b64(const uint8_t *bin, size_t n) {
  char buf[sodium_base64_ENCODED_LEN(ID_SIG_BYTES,
                                     sodium_base64_VARIANT_ORIGINAL)];
  if (n > ID_SIG_BYTES)
    return NULL;
  sodium_bin2base64(buf, sizeof(buf), bin, n, sodium_base64_VARIANT_ORIGINAL);
  return json_string(buf);
}

static json_t *enc_groups(struct enc *e, const struct record *r) {
  json_t *a = json_array();

  for (size_t i = 0; i < r->ngroups && i < CHOREO_GROUPS_MAX; i++)
    append(e, a, str(e, r->groups[i]));
  return a;
}

static json_t *enc_record(struct enc *e, const struct record *r) {
  json_t *o = json_object();

  put(e, o, "addr", str(e, r->addr));
  put(e, o, "ver", counter(e, r->ver));
  put(e, o, "left", json_boolean(r->left));
  put(e, o, "state", str(e, r->state));
  put(e, o, "reason", str(e, r->reason));
  put(e, o, "since", json_integer((json_int_t)r->since_ms));
  put(e, o, "groups", enc_groups(e, r));
  /* The message only borrows the record's data for the dump. */
  put(e, o, "data", r->data != NULL ? json_incref(r->data) : json_object());
  return o;
}

static json_t *enc_member(struct enc *e, const struct wire_member *w) {
  json_t *o = json_object();

  put(e, o, "name", str(e, w->name));
  put(e, o, "addr", str(e, w->addr));
  put(e, o, "inc", counter(e, w->inc));
  put(e, o, "ver", counter(e, w->ver));
  put(e, o, "left", json_boolean(w->left));
  if (w->has_sig) {
    put(e, o, "bh", b64(w->body_hash, ID_HASH_BYTES));
    put(e, o, "sig", b64(w->sig, ID_SIG_BYTES));
  }
  return o;
}

static json_t *enc_members(struct enc *e, const struct wire_msg *m) {
  json_t *a = json_array();

  if (m->nmembers > WIRE_MEMBERS_MAX && e->rv == 0)
    e->rv = CHOREO_EINVAL;
  for (size_t i = 0; i < m->nmembers && e->rv == 0; i++)
    append(e, a, enc_member(e, &m->members[i]));
  return a;
}

static json_t *hex64(uint64_t v) {
  char buf[DIGEST_DIGITS + 1];
  snprintf(buf, sizeof(buf), "%016" PRIx64, v);
  return json_string(buf);
}

/* The optional freshness fields: "nonce", "proving", "echo". */
static void enc_fresh(struct enc *e, json_t *o, const struct wire_msg *m) {
  json_t *a;
  if (m->nonce != 0)
    put(e, o, "nonce", hex64(m->nonce));
  if (m->proving)
    put(e, o, "proving", json_true());
  if (m->necho == 0)
    return;
  if (m->necho > WIRE_ECHO_MAX && e->rv == 0)
    e->rv = CHOREO_EINVAL;
  a = json_array();
  for (size_t i = 0; i < m->necho && i < WIRE_ECHO_MAX; i++)
    append(e, a, json_pack("[s,o]", m->echo[i].name, hex64(m->echo[i].nonce)));
  put(e, o, "echo", a);
}

/* The optional "unheard": names of members the sender holds as lost. */
static void enc_unheard(struct enc *e, json_t *o, const struct wire_msg *m) {
  json_t *a;
  if (m->nunheard == 0)
    return;
  if (m->nunheard > WIRE_UNHEARD_MAX && e->rv == 0)
    e->rv = CHOREO_EINVAL;
  a = json_array();
  for (size_t i = 0; i < m->nunheard && i < WIRE_UNHEARD_MAX; i++)
    append(e, a, json_string(m->unheard[i]));
  put(e, o, "unheard", a);
}

/* "proto", "release" and the optional fields of our higher minors. */
static void enc_versions(struct enc *e, json_t *o, const struct wire_msg *m) {
  put(e, o, "proto", json_pack("[i,i]", WIRE_PROTO_MIN, WIRE_PROTO_MAX));
  put(e, o, "release", json_string(CHOREO_VERSION));
#if WIRE_PROTO_MAX >= WIRE_PROTO_HEARTBEAT
  if (m->heartbeat_ms != 0)
    put(e, o, "heartbeat_ms", counter(e, m->heartbeat_ms));
#else
  (void)m;
#endif
}

/* The optional identity fields: "cert" and "revoked" (borrowed),
 * "want_cert". */
static void enc_identity(struct enc *e, json_t *o, const struct wire_msg *m) {
  if (m->nwant > 0) {
    json_t *a = json_array();
    if (m->nwant > WIRE_WANT_MAX && e->rv == 0)
      e->rv = CHOREO_EINVAL;
    for (size_t i = 0; i < m->nwant && i < WIRE_WANT_MAX; i++)
      append(e, a, json_string(m->want_cert[i]));
    put(e, o, "want_cert", a);
  }
  if (m->cert != NULL)
    put(e, o, "cert", json_incref(m->cert));
  if (m->revoked == NULL)
    return;
  if ((!json_is_array(m->revoked) ||
       json_array_size(m->revoked) > WIRE_REVOKED_MAX) &&
      e->rv == 0)
    e->rv = CHOREO_EINVAL;
  put(e, o, "revoked", json_incref(m->revoked));
}

static json_t *enc_lost(struct enc *e, const struct wire_lost *l) {
  json_t *o = json_object();

  put(e, o, "name", str(e, l->name));
  put(e, o, "inc", counter(e, l->inc));
  put(e, o, "ver", counter(e, l->ver));
  return o;
}

/* The optional fields of quiet relays: "relay", "lost" and "nlost",
 * "lost_sig", "rdigest", "resync". */
static void enc_quiet(struct enc *e, json_t *o, const struct wire_msg *m) {
  if (m->relay)
    put(e, o, "relay", json_true());
  if ((m->nlost > WIRE_LOST_MAX || m->lost_total < m->nlost ||
       m->lost_total > WIRE_LOST_TOTAL_MAX) &&
      e->rv == 0)
    e->rv = CHOREO_EINVAL;
  if (m->lost_total > 0) {
    json_t *a = json_array();
    for (size_t i = 0; i < m->nlost && i < WIRE_LOST_MAX; i++)
      append(e, a, enc_lost(e, &m->lost[i]));
    put(e, o, "lost", a);
    put(e, o, "nlost", json_integer((json_int_t)m->lost_total));
  }
  if (m->has_lost_sig)
    put(e, o, "lost_sig", b64(m->lost_sig, ID_SIG_BYTES));
  if (m->has_rdigest)
    put(e, o, "rdigest", hex64(m->rdigest));
  if (m->resync)
    put(e, o, "resync", json_true());
}

static json_t *enc_msg(struct enc *e, const struct wire_msg *m) {
  json_t *o = json_object(), *rec;
  char digest[DIGEST_DIGITS + 1];

  put(e, o, "v", json_integer(WIRE_VERSION));
  enc_versions(e, o, m);
  put(e, o, "cluster", str(e, m->cluster));
  put(e, o, "from", str(e, m->from));
  put(e, o, "inc", counter(e, m->inc));
  put(e, o, "seq", counter(e, m->seq));
  if (m->time != 0)
    put(e, o, "time", counter(e, m->time));
  if (m->leaf)
    put(e, o, "leaf", json_true());
  enc_fresh(e, o, m);
  enc_unheard(e, o, m);
  enc_identity(e, o, m);
  enc_quiet(e, o, m);
  put(e, o, "type", json_string(wire_type_name(m->type)));
  if (m->type == WIRE_MEMBERS) {
    put(e, o, "members", enc_members(e, m));
    return o;
  }
  snprintf(digest, sizeof(digest), "%016" PRIx64, m->digest);
  rec = enc_record(e, &m->rec);
  if (m->has_sig && rec != NULL)
    put(e, rec, "sig", b64(m->sig, ID_SIG_BYTES));
  put(e, o, "rec", rec);
  put(e, o, "digest", json_string(digest));
  put(e, o, "known", json_integer((json_int_t)m->nknown));
  return o;
}

int wire_encode(const struct wire_msg *m, char **out, size_t *len) {
  struct enc e = {0};
  json_t *root = enc_msg(&e, m);
  char *s = NULL;
  size_t n;

  if (e.rv == 0 && root == NULL)
    e.rv = CHOREO_ENOMEM;
  if (e.rv == 0) {
    s = json_dumps(root, JSON_COMPACT);
    if (s == NULL)
      e.rv = CHOREO_ENOMEM;
  }
  json_decref(root);
  if (e.rv != 0)
    return e.rv;
  n = strlen(s);
  if (n > CHOREO_MSG_MAX) {
    free(s);
    return CHOREO_ETOOBIG;
  }
  *out = s;
  *len = n;
  return 0;
}

/* ---- decoding: errors ---- */

/* Received text made safe for a log line: printable ASCII stays, any other
 * byte becomes \xHH, and it is cut after QUOTE_MAX bytes ("..."). */
static void quote(char out[QUOTE_BUF], const char *s, size_t len) {
  size_t o = 0;

  out[o++] = '"';
  for (size_t i = 0; i < len && i < QUOTE_MAX; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out[o++] = (char)c;
    } else {
      snprintf(out + o, 5, "\\x%02x", c);
      o += 4;
    }
  }
  out[o++] = '"';
  if (len > QUOTE_MAX) {
    memcpy(out + o, "...", 3);
    o += 3;
  }
  out[o] = '\0';
}

/* jansson's message may quote the input near the error: keep it one
 * printable line. */
static void printable(char *dst, size_t size, const char *src) {
  size_t i = 0;

  for (; src[i] != '\0' && i + 1 < size; i++) {
    unsigned char c = (unsigned char)src[i];
    dst[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  dst[i] = '\0';
}

/* Set err and return CHOREO_EDECODE. A detail too long for err->detail is
 * cut: it is a diagnostic, the reason is what gets counted. */
PRINTF_LIKE(3, 4)
static int reject(struct wire_error *err, enum wire_reject why, const char *fmt,
                  ...) {
  va_list ap;

  err->reason = why;
  va_start(ap, fmt);
  vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
  va_end(ap);
  return CHOREO_EDECODE;
}

/* ---- decoding: one value ---- */

/* o[key], required; field receives its name for errors. */
static int lookup(json_t *o, const char *pre, const char *key,
                  char field[FIELD_MAX], json_t **v, struct wire_error *err) {
  /* Both parts are short literals or bounded keys: plain copies, as this
   * runs for every field of every message. */
  size_t a = strlen(pre), b = strlen(key);
  if (a > FIELD_MAX - 1)
    a = FIELD_MAX - 1;
  if (b > FIELD_MAX - 1 - a)
    b = FIELD_MAX - 1 - a;
  memcpy(field, pre, a);
  memcpy(field + a, key, b);
  field[a + b] = '\0';
  *v = json_object_get(o, key);
  if (*v == NULL)
    return reject(err, WIRE_REJECT_BAD_FIELD, "field \"%s\": missing", field);
  return 0;
}

static int check_text(const json_t *v, const char *field, size_t max,
                      const char **out, struct wire_error *err) {
  const char *s;
  size_t len;

  if (!json_is_string(v))
    return reject(err, WIRE_REJECT_BAD_FIELD, "field \"%s\": not a string",
                  field);
  s = json_string_value(v);
  len = json_string_length(v);
  if (len > max)
    return reject(err, WIRE_REJECT_OVER_LIMIT,
                  "field \"%s\": %zu bytes, at most %zu", field, len, max);
  if (strlen(s) != len)
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"%s\": contains a NUL byte", field);
  /* jansson checks UTF-8 already; this also applies our stricter rules. */
  if (!choreo_valid_text(s, max))
    return reject(err, WIRE_REJECT_BAD_FIELD, "field \"%s\": not valid UTF-8",
                  field);
  *out = s;
  return 0;
}

/* A string of at most max bytes that valid() accepts, copied into dst
 * (which holds max + 1 bytes). what names the rule in errors. */
static int check_word(const json_t *v, const char *field, size_t max,
                      bool (*valid)(const char *), const char *what, char *dst,
                      struct wire_error *err) {
  char q[QUOTE_BUF];
  const char *s;
  int rv = check_text(v, field, max, &s, err);

  if (rv != 0)
    return rv;
  if (!valid(s)) {
    quote(q, s, strlen(s));
    return reject(err, WIRE_REJECT_BAD_FIELD, "field \"%s\": invalid %s %s",
                  field, what, q);
  }
  memcpy(dst, s, strlen(s) + 1);
  return 0;
}

bool wire_valid_addr(const char *s) {
  static const char *const schemes[] = {"tcp://", "ipc://", "inproc://"};
  size_t i;

  for (i = 0; i < ARRAY_SIZE(schemes); i++) {
    size_t n = strlen(schemes[i]);
    if (strncmp(s, schemes[i], n) == 0 && s[n] != '\0')
      break;
  }
  if (i == ARRAY_SIZE(schemes))
    return false;
  /* Addresses go to nn_connect() and to logs: printable ASCII only. */
  for (; *s != '\0'; s++) {
    if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
      return false;
  }
  return true;
}

static int check_uint(const json_t *v, const char *field, uint64_t max,
                      uint64_t *out, struct wire_error *err) {
  json_int_t i;

  if (!json_is_integer(v))
    return reject(err, WIRE_REJECT_BAD_FIELD, "field \"%s\": not an integer",
                  field);
  i = json_integer_value(v);
  if (i < 0 || (uint64_t)i > max)
    return reject(err, WIRE_REJECT_OVER_LIMIT,
                  "field \"%s\": %" JSON_INTEGER_FORMAT
                  " out of range 0..%" PRIu64,
                  field, i, max);
  *out = (uint64_t)i;
  return 0;
}

/* ---- decoding: one field of an object ---- */

static int get_word(json_t *o, const char *pre, const char *key, size_t max,
                    bool (*valid)(const char *), const char *what, char *dst,
                    struct wire_error *err) {
  char field[FIELD_MAX];
  json_t *v;
  int rv = lookup(o, pre, key, field, &v, err);
  return rv != 0 ? rv : check_word(v, field, max, valid, what, dst, err);
}

static int get_text(json_t *o, const char *pre, const char *key, size_t max,
                    char *dst, struct wire_error *err) {
  char field[FIELD_MAX];
  const char *s;
  json_t *v;
  int rv = lookup(o, pre, key, field, &v, err);

  if (rv == 0)
    rv = check_text(v, field, max, &s, err);
  if (rv == 0)
    memcpy(dst, s, strlen(s) + 1);
  return rv;
}

static int get_addr(json_t *o, const char *pre, char *dst,
                    struct wire_error *err) {
  return get_word(o, pre, "addr", CHOREO_ADDR_MAX, wire_valid_addr, "address",
                  dst, err);
}

static int get_uint(json_t *o, const char *pre, const char *key, uint64_t max,
                    uint64_t *out, struct wire_error *err) {
  char field[FIELD_MAX];
  json_t *v;
  int rv = lookup(o, pre, key, field, &v, err);
  return rv != 0 ? rv : check_uint(v, field, max, out, err);
}

static int get_bool(json_t *o, const char *pre, const char *key, bool *out,
                    struct wire_error *err) {
  char field[FIELD_MAX];
  json_t *v;
  int rv = lookup(o, pre, key, field, &v, err);

  if (rv != 0)
    return rv;
  if (!json_is_boolean(v))
    return reject(err, WIRE_REJECT_BAD_FIELD, "field \"%s\": not a boolean",
                  field);
  *out = json_is_true(v);
  return 0;
}

/* o[key] of the given JSON type (JSON_OBJECT or JSON_ARRAY). */
static int get_typed(json_t *o, const char *pre, const char *key,
                     json_type type, json_t **v, struct wire_error *err) {
  char field[FIELD_MAX];
  int rv = lookup(o, pre, key, field, v, err);

  if (rv == 0 && json_typeof(*v) != type)
    rv = reject(err, WIRE_REJECT_BAD_FIELD, "field \"%s\": not %s", field,
                type == JSON_OBJECT ? "an object" : "an array");
  return rv;
}

/* ---- decoding: records ---- */

static int dec_groups(json_t *rec, struct record *r, struct wire_error *err) {
  char field[FIELD_MAX];
  json_t *a, *v;
  size_t i;
  int rv = get_typed(rec, "rec.", "groups", JSON_ARRAY, &a, err);

  if (rv != 0)
    return rv;
  if (json_array_size(a) > CHOREO_GROUPS_MAX)
    return reject(err, WIRE_REJECT_OVER_LIMIT,
                  "field \"rec.groups\": %zu items, at most %d",
                  json_array_size(a), CHOREO_GROUPS_MAX);
  json_array_foreach(a, i, v) {
    snprintf(field, sizeof(field), "rec.groups[%zu]", i);
    rv = check_word(v, field, CHOREO_NAME_MAX, choreo_valid_name, "name",
                    r->groups[i], err);
    if (rv != 0)
      return rv;
  }
  r->ngroups = json_array_size(a);
  return 0;
}

static int check_data_key(const char *key, size_t len, struct wire_error *err) {
  char q[QUOTE_BUF];

  if (len > CHOREO_DATA_KEY_MAX)
    return reject(err, WIRE_REJECT_OVER_LIMIT,
                  "field \"rec.data\": a key of %zu bytes, at most %d", len,
                  CHOREO_DATA_KEY_MAX);
  if (strlen(key) != len || !choreo_valid_data_key(key)) {
    quote(q, key, len);
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"rec.data\": invalid key %s", q);
  }
  return 0;
}

static int dec_data(json_t *rec, struct record *r, struct wire_error *err) {
  char field[FIELD_MAX];
  const char *key, *s;
  json_t *d, *v, *copy;
  size_t klen;
  int rv = get_typed(rec, "rec.", "data", JSON_OBJECT, &d, err);

  if (rv != 0)
    return rv;
  if (json_object_size(d) > CHOREO_DATA_KEYS_MAX)
    return reject(err, WIRE_REJECT_OVER_LIMIT,
                  "field \"rec.data\": %zu keys, at most %d",
                  json_object_size(d), CHOREO_DATA_KEYS_MAX);
  json_object_keylen_foreach(d, key, klen, v) {
    if ((rv = check_data_key(key, klen, err)) != 0)
      return rv;
    snprintf(field, sizeof(field), "rec.data.%s", key);
    if ((rv = check_text(v, field, CHOREO_DATA_VALUE_MAX, &s, err)) != 0)
      return rv;
  }
  copy = json_deep_copy(d);
  if (copy == NULL)
    return CHOREO_ENOMEM;
  json_decref(r->data);
  r->data = copy;
  return 0;
}

/* Optional base64 of exactly n bytes at pre+key: *has says whether it
 * was there. */
static int get_b64(json_t *o, const char *pre, const char *key, uint8_t *out,
                   size_t n, bool *has, struct wire_error *err) {
  json_t *v = json_object_get(o, key);
  const char *s, *end = NULL;
  size_t got = 0;

  *has = false;
  if (v == NULL)
    return 0;
  s = json_string_value(v);
  if (s == NULL ||
      json_string_length(v) !=
          sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) - 1)
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"%s%s\": not base64 of %zu bytes", pre, key, n);
  if (sodium_base642bin(out, n, s, json_string_length(v), NULL, &got, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      got != n || end != s + json_string_length(v))
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"%s%s\": not base64 of %zu bytes", pre, key, n);
  *has = true;
  return 0;
}

static int dec_record(json_t *o, struct record *r, struct wire_error *err) {
  static const char pre[] = "rec.";
  uint64_t since;
  json_t *rec;
  int rv;

  if ((rv = get_typed(o, "", "rec", JSON_OBJECT, &rec, err)) != 0 ||
      (rv = get_addr(rec, pre, r->addr, err)) != 0 ||
      (rv = get_uint(rec, pre, "ver", RECORD_COUNTER_MAX, &r->ver, err)) != 0 ||
      (rv = get_bool(rec, pre, "left", &r->left, err)) != 0 ||
      (rv = get_word(rec, pre, "state", CHOREO_STATE_MAX, choreo_valid_state,
                     "state", r->state, err)) != 0 ||
      (rv = get_text(rec, pre, "reason", CHOREO_REASON_MAX, r->reason, err)) !=
          0 ||
      (rv = get_uint(rec, pre, "since", INT64_MAX, &since, err)) != 0 ||
      (rv = dec_groups(rec, r, err)) != 0 || (rv = dec_data(rec, r, err)) != 0)
    return rv;
  r->since_ms = (int64_t)since;
  return 0;
}

/* DIGEST_DIGITS lowercase hex digits (a digest or a nonce). */
static int check_hex64(const json_t *v, const char *field, uint64_t *out,
                       struct wire_error *err) {
  char q[QUOTE_BUF];
  const char *s;
  uint64_t d = 0;
  int rv = check_text(v, field, DIGEST_DIGITS, &s, err);

  if (rv != 0)
    return rv;
  for (size_t i = 0; i < DIGEST_DIGITS; i++) {
    char c = s[i];
    if (c >= '0' && c <= '9')
      d = d << 4 | (uint64_t)(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = d << 4 | (uint64_t)(c - 'a' + 10);
    else {
      quote(q, s, strlen(s));
      return reject(err, WIRE_REJECT_BAD_FIELD,
                    "field \"%s\": not %d lowercase hex digits: %s", field,
                    DIGEST_DIGITS, q);
    }
  }
  *out = d;
  return 0;
}

static int dec_digest(json_t *o, uint64_t *out, struct wire_error *err) {
  char field[FIELD_MAX];
  json_t *v;
  int rv = lookup(o, "", "digest", field, &v, err);
  return rv != 0 ? rv : check_hex64(v, field, out, err);
}

/* hello, state, leave: the sender's record and its view's digest. */
static int dec_announce(json_t *o, struct wire_msg *m, struct wire_error *err) {
  uint64_t known;
  int rv;

  if ((rv = dec_record(o, &m->rec, err)) != 0 ||
      (rv = get_b64(json_object_get(o, "rec"), "rec.", "sig", m->sig,
                    ID_SIG_BYTES, &m->has_sig, err)) != 0 ||
      (rv = dec_digest(o, &m->digest, err)) != 0 ||
      (rv = get_uint(o, "", "known", UINT32_MAX, &known, err)) != 0)
    return rv;
  m->nknown = (uint32_t)known;
  memcpy(m->rec.name, m->from, sizeof(m->rec.name));
  m->rec.inc = m->inc;
  return 0;
}

/* ---- decoding: member lists ---- */

static int dec_member(json_t *e, size_t i, struct wire_member *w,
                      struct wire_error *err) {
  char pre[FIELD_MAX];
  uint64_t max = RECORD_COUNTER_MAX;
  bool has_bh;
  int rv;

  snprintf(pre, sizeof(pre), "members[%zu].", i);
  if (!json_is_object(e))
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"members[%zu]\": not an object", i);
  if ((rv = get_word(e, pre, "name", CHOREO_NAME_MAX, choreo_valid_name, "name",
                     w->name, err)) != 0 ||
      (rv = get_addr(e, pre, w->addr, err)) != 0 ||
      (rv = get_uint(e, pre, "inc", max, &w->inc, err)) != 0 ||
      (rv = get_uint(e, pre, "ver", max, &w->ver, err)) != 0 ||
      (rv = get_bool(e, pre, "left", &w->left, err)) != 0 ||
      (rv = get_b64(e, pre, "bh", w->body_hash, ID_HASH_BYTES, &has_bh, err)) !=
          0 ||
      (rv = get_b64(e, pre, "sig", w->sig, ID_SIG_BYTES, &w->has_sig, err)) !=
          0)
    return rv;
  if (has_bh != w->has_sig)
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"%s%s\": \"bh\" and \"sig\" go together", pre,
                  has_bh ? "sig" : "bh");
  return 0;
}

static int dec_members(json_t *o, struct wire_msg *m, struct wire_error *err) {
  json_t *a, *e;
  size_t i, n;
  int rv = get_typed(o, "", "members", JSON_ARRAY, &a, err);

  if (rv != 0)
    return rv;
  n = json_array_size(a);
  if (n > WIRE_MEMBERS_MAX)
    return reject(err, WIRE_REJECT_OVER_LIMIT,
                  "field \"members\": %zu entries, at most %d", n,
                  WIRE_MEMBERS_MAX);
  if (n == 0)
    return 0;
  m->members = calloc(n, sizeof(*m->members));
  if (m->members == NULL)
    return CHOREO_ENOMEM;
  m->nmembers = n;
  json_array_foreach(a, i, e) {
    if ((rv = dec_member(e, i, &m->members[i], err)) != 0)
      return rv;
  }
  return 0;
}

/* ---- decoding: freshness ---- */

static int dec_echo(json_t *e, size_t i, struct wire_echo *w,
                    struct wire_error *err) {
  char field[FIELD_MAX];
  int rv;

  snprintf(field, sizeof(field), "echo[%zu]", i);
  if (!json_is_array(e) || json_array_size(e) != 2)
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"%s\": not a [name, nonce] pair", field);
  if ((rv = check_word(json_array_get(e, 0), field, CHOREO_NAME_MAX,
                       choreo_valid_name, "name", w->name, err)) != 0)
    return rv;
  return check_hex64(json_array_get(e, 1), field, &w->nonce, err);
}

/* "nonce", "proving" and "echo", all optional. */
static int dec_fresh(json_t *o, struct wire_msg *m, struct wire_error *err) {
  json_t *v, *e;
  size_t i;
  int rv;

  if ((v = json_object_get(o, "nonce")) != NULL &&
      (rv = check_hex64(v, "nonce", &m->nonce, err)) != 0)
    return rv;
  if ((v = json_object_get(o, "proving")) != NULL) {
    if (!json_is_boolean(v))
      return reject(err, WIRE_REJECT_BAD_FIELD,
                    "field \"proving\": not a boolean");
    m->proving = json_is_true(v);
  }
  if ((v = json_object_get(o, "echo")) == NULL)
    return 0;
  if (!json_is_array(v))
    return reject(err, WIRE_REJECT_BAD_FIELD, "field \"echo\": not an array");
  if (json_array_size(v) > WIRE_ECHO_MAX)
    return reject(err, WIRE_REJECT_OVER_LIMIT,
                  "field \"echo\": %zu entries, at most %d", json_array_size(v),
                  WIRE_ECHO_MAX);
  json_array_foreach(v, i, e) {
    if ((rv = dec_echo(e, i, &m->echo[i], err)) != 0)
      return rv;
  }
  m->necho = json_array_size(v);
  return 0;
}

/* "unheard", optional: at most WIRE_UNHEARD_MAX valid names. */
static int dec_unheard(json_t *o, struct wire_msg *m, struct wire_error *err) {
  char field[FIELD_MAX];
  json_t *v, *e;
  size_t i;
  int rv;

  if ((v = json_object_get(o, "unheard")) == NULL)
    return 0;
  if (!json_is_array(v))
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"unheard\": not an array");
  if (json_array_size(v) > WIRE_UNHEARD_MAX)
    return reject(err, WIRE_REJECT_OVER_LIMIT,
                  "field \"unheard\": %zu entries, at most %d",
                  json_array_size(v), WIRE_UNHEARD_MAX);
  json_array_foreach(v, i, e) {
    snprintf(field, sizeof(field), "unheard[%zu]", i);
    if ((rv = check_word(e, field, CHOREO_NAME_MAX, choreo_valid_name, "name",
                         m->unheard[i], err)) != 0)
      return rv;
  }
  m->nunheard = json_array_size(v);
  return 0;
}

/* ---- decoding: identity ---- */

/* "cert" (an object) and "revoked" (at most WIRE_REVOKED_MAX objects),
 * both optional: kept as they are for the identity layer, which checks
 * their fields. */
static int dec_identity(json_t *o, struct wire_msg *m, struct wire_error *err) {
  char field[FIELD_MAX];
  json_t *v, *e;
  size_t i;
  int rv;

  if ((v = json_object_get(o, "want_cert")) != NULL) {
    if (!json_is_array(v))
      return reject(err, WIRE_REJECT_BAD_FIELD,
                    "field \"want_cert\": not an array");
    if (json_array_size(v) > WIRE_WANT_MAX)
      return reject(err, WIRE_REJECT_OVER_LIMIT,
                    "field \"want_cert\": %zu entries, at most %d",
                    json_array_size(v), WIRE_WANT_MAX);
    json_array_foreach(v, i, e) {
      snprintf(field, sizeof(field), "want_cert[%zu]", i);
      if ((rv = check_word(e, field, CHOREO_NAME_MAX, choreo_valid_name, "name",
                           m->want_cert[i], err)) != 0)
        return rv;
    }
    m->nwant = json_array_size(v);
  }
  if ((v = json_object_get(o, "cert")) != NULL) {
    if (!json_is_object(v))
      return reject(err, WIRE_REJECT_BAD_FIELD,
                    "field \"cert\": not an object");
    m->cert = json_incref(v);
  }
  if ((v = json_object_get(o, "revoked")) == NULL)
    return 0;
  if (!json_is_array(v))
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"revoked\": not an array");
  if (json_array_size(v) > WIRE_REVOKED_MAX)
    return reject(err, WIRE_REJECT_OVER_LIMIT,
                  "field \"revoked\": %zu entries, at most %d",
                  json_array_size(v), WIRE_REVOKED_MAX);
  json_array_foreach(v, i, e) {
    if (!json_is_object(e))
      return reject(err, WIRE_REJECT_BAD_FIELD,
                    "field \"revoked[%zu]\": not an object", i);
  }
  m->revoked = json_incref(v);
  return 0;
}

/* ---- decoding: quiet relays ---- */

/* One verdict of "lost": {"name", "inc", "ver"}. */
static int dec_lost(json_t *e, size_t i, struct wire_lost *l,
                    struct wire_error *err) {
  char pre[FIELD_MAX];
  uint64_t max = RECORD_COUNTER_MAX;
  int rv;

  snprintf(pre, sizeof(pre), "lost[%zu].", i);
  if (!json_is_object(e))
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"lost[%zu]\": not an object", i);
  if ((rv = get_word(e, pre, "name", CHOREO_NAME_MAX, choreo_valid_name, "name",
                     l->name, err)) != 0 ||
      (rv = get_uint(e, pre, "inc", max, &l->inc, err)) != 0 ||
      (rv = get_uint(e, pre, "ver", max, &l->ver, err)) != 0)
    return rv;
  return 0;
}

/* "lost" (at most WIRE_LOST_MAX verdicts) and "nlost" (how many in all,
 * not fewer than the list: without it, the list is complete). */
static int dec_lost_list(json_t *o, struct wire_msg *m,
                         struct wire_error *err) {
  json_t *a = json_object_get(o, "lost"), *n = json_object_get(o, "nlost");
  uint64_t total = 0;
  json_t *e;
  size_t i;
  int rv;

  if (a != NULL) {
    if (!json_is_array(a))
      return reject(err, WIRE_REJECT_BAD_FIELD, "field \"lost\": not an array");
    if (json_array_size(a) > WIRE_LOST_MAX)
      return reject(err, WIRE_REJECT_OVER_LIMIT,
                    "field \"lost\": %zu entries, at most %d",
                    json_array_size(a), WIRE_LOST_MAX);
    json_array_foreach(a, i, e) {
      if ((rv = dec_lost(e, i, &m->lost[i], err)) != 0)
        return rv;
    }
    m->nlost = json_array_size(a);
  }
  total = m->nlost;
  if (n != NULL &&
      (rv = check_uint(n, "nlost", WIRE_LOST_TOTAL_MAX, &total, err)) != 0)
    return rv;
  if (total < m->nlost)
    return reject(err, WIRE_REJECT_BAD_FIELD,
                  "field \"nlost\": %" PRIu64
                  ", fewer than the %zu in \"lost\"",
                  total, m->nlost);
  m->lost_total = (uint32_t)total;
  return 0;
}

/* An optional boolean at the envelope's key. */
static int opt_bool(json_t *o, const char *key, bool *out,
                    struct wire_error *err) {
  json_t *v = json_object_get(o, key);

  if (v == NULL)
    return 0;
  if (!json_is_boolean(v))
    return reject(err, WIRE_REJECT_BAD_FIELD, "field \"%s\": not a boolean",
                  key);
  *out = json_is_true(v);
  return 0;
}

/* "relay", "lost", "nlost", "lost_sig", "rdigest", "resync", all
 * optional. */
static int dec_quiet(json_t *o, struct wire_msg *m, struct wire_error *err) {
  json_t *v;
  int rv;

  if ((rv = opt_bool(o, "relay", &m->relay, err)) != 0 ||
      (rv = opt_bool(o, "resync", &m->resync, err)) != 0 ||
      (rv = dec_lost_list(o, m, err)) != 0 ||
      (rv = get_b64(o, "", "lost_sig", m->lost_sig, ID_SIG_BYTES,
                    &m->has_lost_sig, err)) != 0)
    return rv;
  if ((v = json_object_get(o, "rdigest")) == NULL)
    return 0;
  if ((rv = check_hex64(v, "rdigest", &m->rdigest, err)) != 0)
    return rv;
  m->has_rdigest = true;
  return 0;
}

/* ---- decoding: the envelope ---- */

static int dec_version(json_t *o, struct wire_error *err) {
  json_t *v = json_object_get(o, "v");

  if (v == NULL)
    return reject(err, WIRE_REJECT_BAD_VERSION, "field \"v\": missing");
  if (!json_is_integer(v))
    return reject(err, WIRE_REJECT_BAD_VERSION,
                  "field \"v\": not an integer; this agent speaks version %d",
                  WIRE_VERSION);
  if (json_integer_value(v) != WIRE_VERSION)
    return reject(err, WIRE_REJECT_BAD_VERSION,
                  "version %" JSON_INTEGER_FORMAT
                  "; this agent speaks version %d",
                  json_integer_value(v), WIRE_VERSION);
  return 0;
}

bool wire_proto_agree(uint32_t our_min, uint32_t our_max, uint32_t their_min,
                      uint32_t their_max, uint32_t *out) {
  uint32_t hi = our_max < their_max ? our_max : their_max;
  uint32_t lo = our_min > their_min ? our_min : their_min;

  if (their_min > their_max || hi < lo)
    return false;
  *out = hi;
  return true;
}

/* One minor of "proto". */
static int check_minor(const json_t *v, size_t i, uint32_t *out,
                       struct wire_error *err) {
  char field[FIELD_MAX];
  uint64_t u = 0;
  int rv;

  snprintf(field, sizeof(field), "proto[%zu]", i);
  if ((rv = check_uint(v, field, WIRE_PROTO_LIMIT, &u, err)) == 0)
    *out = (uint32_t)u;
  return rv;
}

/* A release: 1-CHOREO_RELEASE_MAX of 0-9 A-Z a-z . + - ~ (it is shown
 * and logged). */
static bool valid_release(const char *s) {
  if (*s == '\0')
    return false;
  for (; *s != '\0'; s++) {
    char c = *s;
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
          (c >= 'A' && c <= 'Z') || c == '.' || c == '+' || c == '-' ||
          c == '~'))
      return false;
  }
  return true;
}

/* "proto" and "release", both optional: without "proto" the sender is a
 * 0.1.0 agent, which speaks minor 0 only. */
static int dec_proto(json_t *o, struct wire_msg *m, struct wire_error *err) {
  uint32_t agreed;
  json_t *v = json_object_get(o, "proto");
  int rv;

  m->proto_min = m->proto_max = 0;
  if (v != NULL) {
    if (!json_is_array(v) || json_array_size(v) != 2)
      return reject(err, WIRE_REJECT_BAD_FIELD,
                    "field \"proto\": not a [min, max] pair");
    if ((rv = check_minor(json_array_get(v, 0), 0, &m->proto_min, err)) != 0 ||
        (rv = check_minor(json_array_get(v, 1), 1, &m->proto_max, err)) != 0)
      return rv;
    if (m->proto_min > m->proto_max)
      return reject(err, WIRE_REJECT_BAD_FIELD,
                    "field \"proto\": [%" PRIu32 ", %" PRIu32
                    "], min above max",
                    m->proto_min, m->proto_max);
    m->versioned = true;
  }
  if (!wire_proto_agree(WIRE_PROTO_MIN, WIRE_PROTO_MAX, m->proto_min,
                        m->proto_max, &agreed))
    return reject(err, WIRE_REJECT_PROTO,
                  "it speaks protocol %d.%" PRIu32 "-%d.%" PRIu32
                  ", this agent %d.%d-%d.%d",
                  WIRE_VERSION, m->proto_min, WIRE_VERSION, m->proto_max,
                  WIRE_VERSION, WIRE_PROTO_MIN, WIRE_VERSION, WIRE_PROTO_MAX);
  if ((v = json_object_get(o, "release")) != NULL)
    return check_word(v, "release", CHOREO_RELEASE_MAX, valid_release,
                      "release", m->release, err);
  return 0;
}

/* The fields of minors that only a build speaking them decodes:
 * "heartbeat_ms" (WIRE_PROTO_HEARTBEAT, a test build's). The fields of
 * WIRE_PROTO_QUIET are decoded from any sender (dec_quiet()). */
static int dec_minor_fields(json_t *o, struct wire_msg *m,
                            struct wire_error *err) {
#if WIRE_PROTO_MAX >= WIRE_PROTO_HEARTBEAT
  json_t *v = json_object_get(o, "heartbeat_ms");
  if (v != NULL)
    return check_uint(v, "heartbeat_ms", RECORD_COUNTER_MAX, &m->heartbeat_ms,
                      err);
#else
  (void)o, (void)m, (void)err;
#endif
  return 0;
}

static int dec_type(json_t *o, enum wire_type *t, struct wire_error *err) {
  static const enum wire_type types[] = {
#define XX(id, s) WIRE_##id,
      WIRE_TYPE_MAP(XX)
#undef XX
  };
  char field[FIELD_MAX], q[QUOTE_BUF];
  json_t *v;
  int rv = lookup(o, "", "type", field, &v, err);

  if (rv != 0)
    return rv;
  if (!json_is_string(v))
    return reject(err, WIRE_REJECT_BAD_FIELD, "field \"type\": not a string");
  for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
    if (strcmp(json_string_value(v), wire_type_name(types[i])) == 0) {
      *t = types[i];
      return 0;
    }
  }
  quote(q, json_string_value(v), json_string_length(v));
  return reject(err, WIRE_REJECT_UNKNOWN_TYPE, "field \"type\": unknown %s", q);
}

static int dec_msg(json_t *o, struct wire_msg *m, struct wire_error *err) {
  uint64_t max = RECORD_COUNTER_MAX;
  json_t *v;
  int rv;

  if ((rv = dec_version(o, err)) != 0 || (rv = dec_proto(o, m, err)) != 0 ||
      (rv = dec_type(o, &m->type, err)) != 0 ||
      (rv = get_word(o, "", "cluster", CHOREO_CLUSTER_MAX, choreo_valid_name,
                     "cluster name", m->cluster, err)) != 0 ||
      (rv = get_word(o, "", "from", CHOREO_NAME_MAX, choreo_valid_name, "name",
                     m->from, err)) != 0 ||
      (rv = get_uint(o, "", "inc", max, &m->inc, err)) != 0 ||
      (rv = get_uint(o, "", "seq", max, &m->seq, err)) != 0)
    return rv;
  /* Optional: what to do without it is the receiver's policy. */
  if ((v = json_object_get(o, "time")) != NULL &&
      (rv = check_uint(v, "time", max, &m->time, err)) != 0)
    return rv;
  if ((v = json_object_get(o, "leaf")) != NULL) {
    if (!json_is_boolean(v))
      return reject(err, WIRE_REJECT_BAD_FIELD,
                    "field \"leaf\": not a boolean");
    m->leaf = json_is_true(v);
  }
  if ((rv = dec_fresh(o, m, err)) != 0 || (rv = dec_unheard(o, m, err)) != 0 ||
      (rv = dec_identity(o, m, err)) != 0 || (rv = dec_quiet(o, m, err)) != 0 ||
      (rv = dec_minor_fields(o, m, err)) != 0)
    return rv;
  if (m->type == WIRE_MEMBERS)
    return dec_members(o, m, err);
  return dec_announce(o, m, err);
}

/* Empty m for a new message, keeping the record's data object. */
static void reset(struct wire_msg *m) {
  json_t *data = m->rec.data;

  json_decref(m->cert);
  json_decref(m->revoked);
  free(m->members);
  memset(m, 0, sizeof(*m));
  m->rec.data = data;
  if (data != NULL)
    json_object_clear(data);
}

int wire_decode(const void *buf, size_t len, struct wire_msg *m,
                struct wire_error *err) {
  char text[JSON_ERROR_TEXT_LENGTH];
  json_error_t jerr;
  json_t *root;
  int rv;

  err->reason = WIRE_OK;
  err->detail[0] = '\0';
  err->from[0] = '\0';
  reset(m);
  if (len > CHOREO_MSG_MAX)
    return reject(err, WIRE_REJECT_TOO_BIG, "%zu bytes, at most %d", len,
                  CHOREO_MSG_MAX);
  /* NULs are let through the parser so that they are refused per field. */
  root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
  if (root == NULL) {
    printable(text, sizeof(text), jerr.text);
    return reject(err, WIRE_REJECT_NOT_JSON, "at byte %d: %s", jerr.position,
                  text);
  }
  if (json_is_object(root)) {
    /* Named in errors where known: whoever sends another version is
     * logged once, by name. */
    const char *from = json_string_value(json_object_get(root, "from"));
    if (from != NULL && strlen(from) <= CHOREO_NAME_MAX &&
        choreo_valid_name(from))
      memcpy(err->from, from, strlen(from) + 1);
    rv = dec_msg(root, m, err);
  } else {
    rv = reject(err, WIRE_REJECT_NOT_JSON, "not a JSON object");
  }
  json_decref(root);
  if (rv != 0)
    reset(m);
  return rv;
}
