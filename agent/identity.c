/*
 * identity.c — node identity with libsodium (Ed25519 signatures, BLAKE2b
 * hashes) and jansson: signing keys, operator certificates, revocations and
 * the signature over a node's record; see identity.h.
 *
 * Every signature covers a byte string built from parsed fields, never
 * JSON text. The layouts (format 1):
 *
 *   str(s)  = u32(len(s)) || the bytes of s (no NUL)
 *   u32(n)  = 4 bytes, big-endian;  u64(n) / i64(n) = 8 bytes, big-endian
 *             (an i64 as its two's complement; times are never negative)
 *   bool(b) = 1 byte, 0x00 or 0x01
 *   key, hash, signature: their raw bytes (32, 32, 64)
 *
 *   certificate (signed by the operator's key):
 *     "choreo-cert" 0x00 0x01
 *     str(node) u32(ngroups) str(group)... (in the certificate's order)
 *     key[32] u64(serial) i64(not_before) i64(not_after) operator_key[32]
 *
 *   revocation (signed by the operator's key):
 *     "choreo-revoke" 0x00 0x01
 *     u64(serial) str(node) ("" when not given) i64(time) operator_key[32]
 *
 *   record body (hashed, BLAKE2b-256 unkeyed: the body hash):
 *     "choreo-body" 0x00 0x01
 *     str(state) str(reason) i64(since_ms)
 *     u32(ngroups) str(group)... (in the record's order)
 *     u32(ndata) then per data key, keys sorted bytewise (strcmp):
 *       str(key) str(value)
 *
 *   record head (signed by the node's key; id_head_digest() is the
 *   BLAKE2b-256 of these bytes):
 *     "choreo-head" 0x00 0x01
 *     str(cluster) str(name) u64(inc) u64(ver) bool(left) str(addr)
 *     body_hash[32]
 *
 * The JSON forms (id_cert_to_json, id_revocation_to_json): keys and
 * signatures in base64 (original alphabet, padded), the serial as 16 hex
 * digits, times as integers (unix seconds):
 *   {"cert":1,"node":"web1","groups":["web"],"key":"…44…","serial":"…16…",
 *    "not_before":1700000000,"not_after":1731536000,"operator":"…44…",
 *    "sig":"…88…"}
 *   {"revoke":1,"serial":"…16…","node":"web1","time":1700000000,
 *    "operator":"…44…","sig":"…88…"}
 * Fields the parser does not know are ignored, so a later format may add
 * some; a different format number is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "identity.h"

_Static_assert(ID_PUBLIC_BYTES == crypto_sign_PUBLICKEYBYTES, "public key");
_Static_assert(ID_SECRET_BYTES == crypto_sign_SECRETKEYBYTES, "secret key");
_Static_assert(ID_SIG_BYTES == crypto_sign_BYTES, "signature");
_Static_assert(ID_HASH_BYTES == crypto_generichash_BYTES, "hash");
_Static_assert(ID_PUBLIC_B64 + 1 ==
                   sodium_base64_ENCODED_LEN(32,
                                             sodium_base64_VARIANT_ORIGINAL),
               "public base64");
_Static_assert(ID_SECRET_B64 + 1 ==
                   sodium_base64_ENCODED_LEN(64,
                                             sodium_base64_VARIANT_ORIGINAL),
               "secret base64");

#define ID_FORMAT 1

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int
fail(char *err, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(err, ID_ERR_MAX, fmt, ap);
  va_end(ap);
  return CHOREO_EINVAL;
}

/* ---- the signed bytes ---- */

/* Bytes go either to buf (cap bytes; over sets overflow) or, when h is
 * set, into a running hash. */
struct enc {
  uint8_t *buf;
  size_t cap, len;
  bool overflow;
  crypto_generichash_state *h;
};

static void put(struct enc *e, const void *p, size_t n) {
  if (e->h != NULL) {
    crypto_generichash_update(e->h, p, n);
    return;
  }
  if (e->overflow || n > e->cap - e->len) {
    e->overflow = true;
    return;
  }
  memcpy(e->buf + e->len, p, n);
  e->len += n;
}

static void put_u32(struct enc *e, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                  (uint8_t)v};
  put(e, b, sizeof(b));
}

static void put_u64(struct enc *e, uint64_t v) {
  uint8_t b[8];
  for (int i = 7; i >= 0; i--, v >>= 8)
    b[i] = (uint8_t)v;
  put(e, b, sizeof(b));
}

static void put_i64(struct enc *e, int64_t v) {
  put_u64(e, (uint64_t)v);
}

static void put_bool(struct enc *e, bool v) {
  uint8_t b = v ? 1 : 0;
  put(e, &b, 1);
}

/* s: at most max bytes are looked at (arrays of fixed size). */
static void put_strn(struct enc *e, const char *s, size_t max) {
  size_t n = s != NULL ? strnlen(s, max) : 0;
  put_u32(e, (uint32_t)n);
  put(e, s != NULL ? s : "", n);
}

static void put_str(struct enc *e, const char *s) {
  put_strn(e, s, SIZE_MAX);
}

/* The domain prefix: the name with its NUL, then the format byte. */
static void put_domain(struct enc *e, const char *name) {
  uint8_t f = ID_FORMAT;
  put(e, name, strlen(name) + 1);
  put(e, &f, 1);
}

/* Largest signed byte strings: a certificate with 16 groups of 64 bytes,
 * a head with the longest cluster, name and address. */
#define CERT_BYTES_MAX                                                         \
  (13 + 4 + CHOREO_NAME_MAX + 4 + CHOREO_GROUPS_MAX * (4 + CHOREO_NAME_MAX) +  \
   32 + 3 * 8 + 32)
#define REVOKE_BYTES_MAX (15 + 8 + 4 + CHOREO_NAME_MAX + 8 + 32)
#define HEAD_BYTES_MAX                                                         \
  (13 + 4 + CHOREO_CLUSTER_MAX + 4 + CHOREO_NAME_MAX + 8 + 8 + 1 + 4 +         \
   CHOREO_ADDR_MAX + ID_HASH_BYTES)

static void cert_bytes(struct enc *e, const struct id_cert *c) {
  size_t n = c->ngroups <= CHOREO_GROUPS_MAX ? c->ngroups : 0;

  put_domain(e, "choreo-cert");
  put_strn(e, c->node, sizeof(c->node));
  put_u32(e, (uint32_t)n);
  for (size_t i = 0; i < n; i++)
    put_strn(e, c->groups[i], sizeof(c->groups[i]));
  put(e, c->key, ID_PUBLIC_BYTES);
  put_u64(e, c->serial);
  put_i64(e, c->not_before);
  put_i64(e, c->not_after);
  put(e, c->operator_key, ID_PUBLIC_BYTES);
  if (c->ngroups > CHOREO_GROUPS_MAX)
    e->overflow = true; /* never signs or verifies */
}

static void revocation_bytes(struct enc *e, const struct id_revocation *r) {
  put_domain(e, "choreo-revoke");
  put_u64(e, r->serial);
  put_strn(e, r->node, sizeof(r->node));
  put_i64(e, r->time);
  put(e, r->operator_key, ID_PUBLIC_BYTES);
}

/* A string of at most max bytes: a longer one marks e overflowed. */
static void put_bounded(struct enc *e, const char *s, size_t max) {
  if (s != NULL && strnlen(s, max + 1) > max)
    e->overflow = true;
  put_str(e, s);
}

static void head_bytes(struct enc *e, const struct id_head *h) {
  put_domain(e, "choreo-head");
  put_bounded(e, h->cluster, CHOREO_CLUSTER_MAX);
  put_bounded(e, h->name, CHOREO_NAME_MAX);
  put_u64(e, h->inc);
  put_u64(e, h->ver);
  put_bool(e, h->left);
  put_bounded(e, h->addr, CHOREO_ADDR_MAX);
  put(e, h->body_hash, ID_HASH_BYTES);
}

static void put_pair(struct enc *e, const char *key, const json_t *v) {
  put_str(e, key);
  /* A record's data holds strings only (record.h). */
  put_str(e, json_is_string(v) ? json_string_value(v) : "");
}

static int key_cmp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The data object's pairs, keys in strcmp order. A record holds at most
 * CHOREO_DATA_KEYS_MAX keys: those are picked in rounds, each the smallest
 * key above the previous one (keys of an object are distinct), which
 * needs no memory. More (a caller that skipped the bounds) are sorted in
 * an array; without memory for one, the rounds do it, slowly. */
static void put_data(struct enc *e, const json_t *data) {
  json_t *d = (json_t *)data; /* jansson's iterators take no const */
  const char *prev = NULL, *key, **keys = NULL;
  size_t n = json_is_object(d) ? json_object_size(d) : 0, k = 0;
  json_t *v;

  put_u32(e, (uint32_t)n);
  if (n > CHOREO_DATA_KEYS_MAX && (keys = malloc(n * sizeof(*keys))) != NULL) {
    json_object_foreach(d, key, v) keys[k++] = key;
    qsort(keys, k, sizeof(*keys), key_cmp);
    for (size_t i = 0; i < k; i++)
      put_pair(e, keys[i], json_object_get(d, keys[i]));
    free(keys);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const char *best = NULL;
    json_t *bestv = NULL;
    json_object_foreach(d, key, v) {
      if ((prev == NULL || strcmp(key, prev) > 0) &&
          (best == NULL || strcmp(key, best) < 0)) {
        best = key;
        bestv = v;
      }
    }
    put_pair(e, best, bestv);
    prev = best;
  }
}

void id_body_hash(const struct record *r, uint8_t out[ID_HASH_BYTES]) {
  crypto_generichash_state h;
  struct enc e = {.h = &h};
  size_t n = r->ngroups <= CHOREO_GROUPS_MAX ? r->ngroups : CHOREO_GROUPS_MAX;

  crypto_generichash_init(&h, NULL, 0, ID_HASH_BYTES);
  put_domain(&e, "choreo-body");
  put_strn(&e, r->state, sizeof(r->state));
  put_strn(&e, r->reason, sizeof(r->reason));
  put_i64(&e, r->since_ms);
  put_u32(&e, (uint32_t)n);
  for (size_t i = 0; i < n; i++)
    put_strn(&e, r->groups[i], sizeof(r->groups[i]));
  put_data(&e, r->data);
  crypto_generichash_final(&h, out, ID_HASH_BYTES);
}

void id_head_of(const char *cluster, const struct record *r,
                struct id_head *h) {
  h->cluster = cluster;
  h->name = r->name;
  h->addr = r->addr;
  h->inc = r->inc;
  h->ver = r->ver;
  h->left = r->left;
  id_body_hash(r, h->body_hash);
}

void id_head_digest(const struct id_head *h, uint8_t out[ID_HASH_BYTES]) {
  crypto_generichash_state s;
  struct enc e = {.h = &s};

  crypto_generichash_init(&s, NULL, 0, ID_HASH_BYTES);
  head_bytes(&e, h);
  crypto_generichash_final(&s, out, ID_HASH_BYTES);
}

/* A head whose cluster, name or address exceeds its limit (identity.h's
 * callers never build one) is signed as all zeros, which never verifies. */
void id_head_sign(const struct id_key *k, const struct id_head *h,
                  uint8_t sig[ID_SIG_BYTES]) {
  uint8_t buf[HEAD_BYTES_MAX];
  struct enc e = {.buf = buf, .cap = sizeof(buf)};

  head_bytes(&e, h);
  if (e.overflow)
    memset(sig, 0, ID_SIG_BYTES);
  else
    crypto_sign_detached(sig, NULL, buf, e.len, k->sk);
}

bool id_head_verify(const uint8_t pk[ID_PUBLIC_BYTES], const struct id_head *h,
                    const uint8_t sig[ID_SIG_BYTES]) {
  uint8_t buf[HEAD_BYTES_MAX];
  struct enc e = {.buf = buf, .cap = sizeof(buf)};

  head_bytes(&e, h);
  return !e.overflow && crypto_sign_verify_detached(sig, buf, e.len, pk) == 0;
}

/* ---- a relay's verdicts ---- */

#define VERDICTS_BYTES_MAX                                                     \
  (12 + 4 + CHOREO_CLUSTER_MAX + 4 + CHOREO_NAME_MAX + 8 + 8 + 4 + 4 +         \
   ID_VERDICTS_MAX * (4 + CHOREO_NAME_MAX + 8 + 8))

static void verdicts_bytes(struct enc *e, const struct id_verdicts *vs) {
  put_domain(e, "choreo-lost");
  put_bounded(e, vs->cluster, CHOREO_CLUSTER_MAX);
  put_bounded(e, vs->relay, CHOREO_NAME_MAX);
  put_u64(e, vs->inc);
  put_u64(e, vs->seq);
  put_u32(e, vs->total);
  put_u32(e, (uint32_t)vs->n);
  if (vs->n > ID_VERDICTS_MAX) {
    e->overflow = true;
    return;
  }
  for (size_t i = 0; i < vs->n; i++) {
    put_bounded(e, vs->v[i].name, CHOREO_NAME_MAX);
    put_u64(e, vs->v[i].inc);
    put_u64(e, vs->v[i].ver);
  }
}

/* Out of bounds (never built by callers): all zeros, which never
 * verifies. */
void id_verdicts_sign(const struct id_key *k, const struct id_verdicts *vs,
                      uint8_t sig[ID_SIG_BYTES]) {
  uint8_t buf[VERDICTS_BYTES_MAX];
  struct enc e = {.buf = buf, .cap = sizeof(buf)};

  verdicts_bytes(&e, vs);
  if (e.overflow)
    memset(sig, 0, ID_SIG_BYTES);
  else
    crypto_sign_detached(sig, NULL, buf, e.len, k->sk);
}

bool id_verdicts_verify(const uint8_t pk[ID_PUBLIC_BYTES],
                        const struct id_verdicts *vs,
                        const uint8_t sig[ID_SIG_BYTES]) {
  uint8_t buf[VERDICTS_BYTES_MAX];
  struct enc e = {.buf = buf, .cap = sizeof(buf)};

  verdicts_bytes(&e, vs);
  return !e.overflow && crypto_sign_verify_detached(sig, buf, e.len, pk) == 0;
}

/* ---- base64, serials ---- */

void id_b64_format(const uint8_t *bin, size_t n, char *out, size_t outlen) {
  sodium_bin2base64(out, outlen, bin, n, sodium_base64_VARIANT_ORIGINAL);
}

int id_b64_parse(const char *text, uint8_t *bin, size_t n) {
  size_t want =
             sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL) - 1,
         got = 0;
  const char *end = NULL;

  if (text == NULL || strnlen(text, want + 1) != want)
    return CHOREO_EINVAL;
  /* libsodium refuses non-zero padding bits too: one text per key. */
  if (sodium_base642bin(bin, n, text, want, NULL, &got, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      got != n || end != text + want)
    return CHOREO_EINVAL;
  return 0;
}

void id_public_format(const uint8_t pk[ID_PUBLIC_BYTES],
                      char out[ID_PUBLIC_B64 + 1]) {
  id_b64_format(pk, ID_PUBLIC_BYTES, out, ID_PUBLIC_B64 + 1);
}

int id_public_parse(const char *text, uint8_t pk[ID_PUBLIC_BYTES], char *err) {
  if (id_b64_parse(text, pk, ID_PUBLIC_BYTES) != 0)
    return fail(err, "not a public key (%d characters of base64)",
                ID_PUBLIC_B64);
  return 0;
}

void id_serial_format(uint64_t serial, char out[17]) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; i--, serial >>= 4)
    out[i] = hex[serial & 0xf];
  out[16] = '\0';
}

int id_serial_parse(const char *text, uint64_t *serial) {
  uint64_t v = 0;

  if (text == NULL || strnlen(text, 17) != 16)
    return CHOREO_EINVAL;
  for (int i = 0; i < 16; i++) {
    char ch = text[i];
    unsigned d;
    if (ch >= '0' && ch <= '9')
      d = (unsigned)(ch - '0');
    else if (ch >= 'a' && ch <= 'f')
      d = (unsigned)(ch - 'a' + 10);
    else if (ch >= 'A' && ch <= 'F')
      d = (unsigned)(ch - 'A' + 10);
    else
      return CHOREO_EINVAL;
    v = v << 4 | d;
  }
  *serial = v;
  return 0;
}

/* ---- keys ---- */

int id_key_generate(struct id_key *k) {
  if (sodium_init() < 0)
    return CHOREO_ECRYPTO;
  crypto_sign_keypair(k->pk, k->sk);
  return 0;
}

void id_key_format(const struct id_key *k, char out[ID_SECRET_B64 + 1]) {
  id_b64_format(k->sk, ID_SECRET_BYTES, out, ID_SECRET_B64 + 1);
}

static bool blank(char ch) {
  return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

int id_key_parse(const char *text, size_t len, struct id_key *k, char *err) {
  char line[ID_SECRET_B64 + 1];
  uint8_t pk[ID_PUBLIC_BYTES], sk[ID_SECRET_BYTES];
  int rv = 0;

  while (len > 0 && blank(text[0]))
    text++, len--;
  while (len > 0 && blank(text[len - 1]))
    len--;
  if (len == 0)
    return fail(err, "no key (make one with choreo keygen --signing)");
  if (len != ID_SECRET_B64)
    return fail(err, "not a signing key: %d characters of base64 expected",
                ID_SECRET_B64);
  memcpy(line, text, len);
  line[len] = '\0';
  if (id_b64_parse(line, k->sk, ID_SECRET_BYTES) != 0)
    rv = fail(err, "not a signing key: invalid base64");
  else if (sodium_init() < 0)
    rv = fail(err, "libsodium failed to start");
  else if (crypto_sign_seed_keypair(pk, sk, k->sk) != 0 ||
           sodium_memcmp(pk, k->sk + 32, ID_PUBLIC_BYTES) != 0)
    rv = fail(err, "not a signing key: its public half does not match its "
                   "seed");
  else
    crypto_sign_ed25519_sk_to_pk(k->pk, k->sk);
  sodium_memzero(line, sizeof(line));
  sodium_memzero(sk, sizeof(sk));
  if (rv != 0)
    id_key_wipe(k);
  return rv;
}

void id_key_wipe(struct id_key *k) {
  sodium_memzero(k, sizeof(*k));
}

/* Read path (a regular file of at most max bytes) into buf[max + 1]. With
 * private, refuse a file that group or others may access. */
static int read_file(const char *path, char *buf, size_t max, size_t *len,
                     bool private, char *err) {
  struct stat st;
  ssize_t k;
  int fd, rv = 0;
  unsigned mode;

  /* O_NONBLOCK: a FIFO put there by mistake must not hang us. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return fail(err, "%s: cannot open: %s", path, strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rv = fail(err, "%s: not a regular file", path);
    goto done;
  }
  mode = (unsigned)(st.st_mode & 07777);
  if (private && (mode & 077) != 0) {
    rv = fail(err, "%s: %s by others (mode %04o); chmod 600 %s", path,
              (mode & 044)   ? "readable"
              : (mode & 022) ? "writable"
                             : "accessible",
              mode, path);
    goto done;
  }
  *len = 0;
  while (*len <= max) {
    k = read(fd, buf + *len, max + 1 - *len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      rv = fail(err, "%s: cannot read: %s", path, strerror(errno));
      goto done;
    }
    if (k == 0)
      break;
    *len += (size_t)k;
  }
  if (*len > max)
    rv = fail(err, "%s: larger than %zu bytes", path, max);
done:
  close(fd);
  return rv;
}

/* err = "PATH: " + err, cut to ID_ERR_MAX. */
static int prefix_path(char *err, const char *path) {
  char msg[ID_ERR_MAX];
  memcpy(msg, err, ID_ERR_MAX);
  msg[ID_ERR_MAX - 1] = '\0';
  return fail(err, "%s: %s", path, msg);
}

int id_key_load(const char *path, struct id_key *k, char *err) {
  char buf[ID_KEY_FILE_MAX + 1];
  size_t len = 0;
  int rv = read_file(path, buf, ID_KEY_FILE_MAX, &len, true, err);

  if (rv == 0 && (rv = id_key_parse(buf, len, k, err)) != 0)
    prefix_path(err, path);
  sodium_memzero(buf, sizeof(buf));
  return rv;
}

/* ---- JSON fields ---- */

static int get_field(const json_t *j, const char *name, json_t **out,
                     char *err) {
  *out = json_object_get(j, name);
  if (*out == NULL)
    return fail(err, "field \"%s\": missing", name);
  return 0;
}

static int get_string(const json_t *j, const char *name, const char **out,
                      char *err) {
  json_t *v;
  int rv = get_field(j, name, &v, err);
  if (rv != 0)
    return rv;
  if (!json_is_string(v))
    return fail(err, "field \"%s\": not a string", name);
  /* A decoder with JSON_ALLOW_NUL could hand over "web1\u0000x". */
  if (strlen(json_string_value(v)) != json_string_length(v))
    return fail(err, "field \"%s\": holds a NUL byte", name);
  *out = json_string_value(v);
  return 0;
}

static int get_time(const json_t *j, const char *name, int64_t *out,
                    char *err) {
  json_t *v;
  int rv = get_field(j, name, &v, err);
  if (rv != 0)
    return rv;
  if (!json_is_integer(v))
    return fail(err, "field \"%s\": not an integer", name);
  if (json_integer_value(v) < 0)
    return fail(err, "field \"%s\": negative", name);
  *out = (int64_t)json_integer_value(v);
  return 0;
}

static int get_format(const json_t *j, const char *name, char *err) {
  json_t *v;
  if (!json_is_object(j))
    return fail(err, "not a JSON object");
  int rv = get_field(j, name, &v, err);
  if (rv != 0)
    return rv;
  if (!json_is_integer(v))
    return fail(err, "field \"%s\": not an integer", name);
  if (json_integer_value(v) != ID_FORMAT)
    return fail(err, "field \"%s\": format %lld is not %d", name,
                (long long)json_integer_value(v), ID_FORMAT);
  return 0;
}

static int get_bytes(const json_t *j, const char *name, uint8_t *bin, size_t n,
                     char *err) {
  const char *s;
  int rv = get_string(j, name, &s, err);
  if (rv != 0)
    return rv;
  if (id_b64_parse(s, bin, n) != 0)
    return fail(err, "field \"%s\": not %zu bytes of base64", name, n);
  return 0;
}

static int get_serial(const json_t *j, uint64_t *serial, char *err) {
  const char *s;
  int rv = get_string(j, "serial", &s, err);
  if (rv != 0)
    return rv;
  if (id_serial_parse(s, serial) != 0)
    return fail(err, "field \"serial\": not 16 hex digits");
  return 0;
}

/* A name into out[CHOREO_NAME_MAX + 1]; empty allowed when may_be_empty. */
static int get_name(const json_t *j, const char *name, char *out,
                    bool may_be_empty, char *err) {
  const char *s;
  int rv = get_string(j, name, &s, err);
  if (rv != 0)
    return rv;
  if (!(may_be_empty && s[0] == '\0') && !choreo_valid_name(s))
    return fail(err, "field \"%s\": not a valid name", name);
  snprintf(out, CHOREO_NAME_MAX + 1, "%s", s);
  return 0;
}

static int check_groups(size_t n, const char (*groups)[CHOREO_NAME_MAX + 1],
                        char *err) {
  if (n > CHOREO_GROUPS_MAX)
    return fail(err, "field \"groups\": more than %d", CHOREO_GROUPS_MAX);
  for (size_t i = 0; i < n; i++) {
    if (!choreo_valid_name(groups[i]))
      return fail(err, "field \"groups\": entry %zu is not a valid name", i);
    for (size_t k = 0; k < i; k++)
      if (strcmp(groups[k], groups[i]) == 0)
        return fail(err, "field \"groups\": \"%s\" twice", groups[i]);
  }
  return 0;
}

static int get_groups(const json_t *j, struct id_cert *c, char *err) {
  json_t *a, *v;
  size_t i;
  int rv = get_field(j, "groups", &a, err);

  if (rv != 0)
    return rv;
  if (!json_is_array(a))
    return fail(err, "field \"groups\": not an array");
  if (json_array_size(a) > CHOREO_GROUPS_MAX)
    return fail(err, "field \"groups\": more than %d", CHOREO_GROUPS_MAX);
  json_array_foreach(a, i, v) {
    if (!json_is_string(v) || !choreo_valid_name(json_string_value(v)))
      return fail(err, "field \"groups\": entry %zu is not a valid name", i);
    snprintf(c->groups[i], sizeof(c->groups[i]), "%s", json_string_value(v));
  }
  c->ngroups = json_array_size(a);
  return check_groups(c->ngroups,
                      (const char(*)[CHOREO_NAME_MAX + 1]) c->groups, err);
}

/* Parse text (≤ ID_TEXT_MAX bytes) as one JSON object. */
static int load_text(const char *text, size_t len, json_t **out, char *err) {
  json_error_t jerr;

  *out = NULL;
  if (len > ID_TEXT_MAX)
    return fail(err, "larger than %d bytes", ID_TEXT_MAX);
  *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  if (*out == NULL) {
    /* jansson quotes the text "near" the error: the file given could be a
     * secret key, so that part is left out. */
    char *near = strstr(jerr.text, " near '");
    if (near != NULL)
      *near = '\0';
    return fail(err, "not JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                jerr.column);
  }
  if (!json_is_object(*out)) {
    json_decref(*out);
    *out = NULL;
    return fail(err, "not a JSON object");
  }
  return 0;
}

/* ---- certificates ---- */

int id_cert_issue(const struct id_key *op, const char *node, size_t ngroups,
                  const char (*groups)[CHOREO_NAME_MAX + 1],
                  const uint8_t key[ID_PUBLIC_BYTES], uint64_t serial,
                  int64_t not_before, int64_t not_after, struct id_cert *out,
                  char *err) {
  uint8_t buf[CERT_BYTES_MAX];
  struct enc e = {.buf = buf, .cap = sizeof(buf)};
  int rv;

  memset(out, 0, sizeof(*out));
  if (node == NULL || !choreo_valid_name(node))
    return fail(err, "node: not a valid name");
  if ((rv = check_groups(ngroups, groups, err)) != 0)
    return rv;
  if (not_before < 0 || not_after < 0)
    return fail(err, "validity: negative time");
  if (not_before > not_after)
    return fail(err, "validity: not_before is after not_after");
  if (sodium_init() < 0)
    return fail(err, "libsodium failed to start");
  while (serial == 0)
    randombytes_buf(&serial, sizeof(serial));
  snprintf(out->node, sizeof(out->node), "%s", node);
  out->ngroups = ngroups;
  for (size_t i = 0; i < ngroups; i++)
    snprintf(out->groups[i], sizeof(out->groups[i]), "%s", groups[i]);
  memcpy(out->key, key, ID_PUBLIC_BYTES);
  out->serial = serial;
  out->not_before = not_before;
  out->not_after = not_after;
  memcpy(out->operator_key, op->pk, ID_PUBLIC_BYTES);
  cert_bytes(&e, out);
  crypto_sign_detached(out->sig, NULL, buf, e.len, op->sk);
  return 0;
}

/* Set name to a new value in o; *ok false once one failed. */
static void set(json_t *o, const char *name, json_t *v, bool *ok) {
  if (v == NULL || json_object_set_new(o, name, v) != 0)
    *ok = false;
}

static json_t *b64_json(const uint8_t *bin, size_t n) {
  char b64[ID_SIG_B64 + 1];
  id_b64_format(bin, n, b64, sizeof(b64));
  return json_string(b64);
}

static json_t *serial_json(uint64_t serial) {
  char hex[17];
  id_serial_format(serial, hex);
  return json_string(hex);
}

json_t *id_cert_to_json(const struct id_cert *c) {
  json_t *o = json_object(), *g = json_array();
  size_t n = c->ngroups <= CHOREO_GROUPS_MAX ? c->ngroups : CHOREO_GROUPS_MAX;
  bool ok = o != NULL && g != NULL;

  for (size_t i = 0; ok && i < n; i++)
    if (json_array_append_new(g, json_string(c->groups[i])) != 0)
      ok = false;
  if (!ok) {
    json_decref(g);
    json_decref(o);
    return NULL;
  }
  set(o, "cert", json_integer(ID_FORMAT), &ok);
  set(o, "node", json_string(c->node), &ok);
  set(o, "groups", g, &ok);
  set(o, "key", b64_json(c->key, ID_PUBLIC_BYTES), &ok);
  set(o, "serial", serial_json(c->serial), &ok);
  set(o, "not_before", json_integer(c->not_before), &ok);
  set(o, "not_after", json_integer(c->not_after), &ok);
  set(o, "operator", b64_json(c->operator_key, ID_PUBLIC_BYTES), &ok);
  set(o, "sig", b64_json(c->sig, ID_SIG_BYTES), &ok);
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int id_cert_from_json(const json_t *j, struct id_cert *c, char *err) {
  int rv;

  memset(c, 0, sizeof(*c));
  if ((rv = get_format(j, "cert", err)) != 0 ||
      (rv = get_name(j, "node", c->node, false, err)) != 0 ||
      (rv = get_groups(j, c, err)) != 0 ||
      (rv = get_bytes(j, "key", c->key, ID_PUBLIC_BYTES, err)) != 0 ||
      (rv = get_serial(j, &c->serial, err)) != 0 ||
      (rv = get_time(j, "not_before", &c->not_before, err)) != 0 ||
      (rv = get_time(j, "not_after", &c->not_after, err)) != 0 ||
      (rv = get_bytes(j, "operator", c->operator_key, ID_PUBLIC_BYTES, err)) !=
          0 ||
      (rv = get_bytes(j, "sig", c->sig, ID_SIG_BYTES, err)) != 0)
    goto fail;
  if (c->not_before > c->not_after) {
    rv = fail(err, "field \"not_before\": after not_after");
    goto fail;
  }
  return 0;
fail:
  memset(c, 0, sizeof(*c));
  return rv;
}

int id_cert_parse(const char *text, size_t len, struct id_cert *c, char *err) {
  json_t *j;
  int rv = load_text(text, len, &j, err);

  if (rv == 0)
    rv = id_cert_from_json(j, c, err);
  json_decref(j);
  return rv;
}

int id_cert_load(const char *path, struct id_cert *c, char *err) {
  char buf[ID_TEXT_MAX + 1];
  size_t len = 0;
  int rv = read_file(path, buf, ID_TEXT_MAX, &len, false, err);

  if (rv == 0 && (rv = id_cert_parse(buf, len, c, err)) != 0)
    prefix_path(err, path);
  return rv;
}

static bool trusted(const uint8_t key[ID_PUBLIC_BYTES],
                    const uint8_t (*ops)[ID_PUBLIC_BYTES], size_t nops) {
  for (size_t i = 0; i < nops; i++)
    if (memcmp(ops[i], key, ID_PUBLIC_BYTES) == 0)
      return true;
  return false;
}

enum id_cert_verdict id_cert_verify(const struct id_cert *c,
                                    const uint8_t (*ops)[ID_PUBLIC_BYTES],
                                    size_t nops, int64_t now_s) {
  uint8_t buf[CERT_BYTES_MAX];
  struct enc e = {.buf = buf, .cap = sizeof(buf)};

  if (!trusted(c->operator_key, ops, nops))
    return ID_CERT_UNTRUSTED;
  cert_bytes(&e, c);
  if (e.overflow ||
      crypto_sign_verify_detached(c->sig, buf, e.len, c->operator_key) != 0)
    return ID_CERT_BAD_SIG;
  if (now_s < c->not_before)
    return ID_CERT_NOT_YET;
  if (now_s > c->not_after)
    return ID_CERT_EXPIRED;
  return ID_CERT_OK;
}

const char *id_cert_verdict_name(enum id_cert_verdict v) {
  switch (v) {
  case ID_CERT_OK:
    return "valid";
  case ID_CERT_UNTRUSTED:
    return "untrusted operator";
  case ID_CERT_BAD_SIG:
    return "bad signature";
  case ID_CERT_NOT_YET:
    return "not yet valid";
  case ID_CERT_EXPIRED:
    return "expired";
  }
  return "unknown verdict";
}

bool id_cert_has_group(const struct id_cert *c, const char *group) {
  size_t n = c->ngroups <= CHOREO_GROUPS_MAX ? c->ngroups : CHOREO_GROUPS_MAX;
  for (size_t i = 0; i < n; i++)
    if (strcmp(c->groups[i], group) == 0)
      return true;
  return false;
}

const char *id_cert_missing_group(const struct id_cert *c,
                                  const struct record *r) {
  size_t n = r->ngroups <= CHOREO_GROUPS_MAX ? r->ngroups : CHOREO_GROUPS_MAX;
  for (size_t i = 0; i < n; i++)
    if (!id_cert_has_group(c, r->groups[i]))
      return r->groups[i];
  return NULL;
}

/* ---- revocations ---- */

int id_revocation_issue(const struct id_key *op, uint64_t serial,
                        const char *node, int64_t time,
                        struct id_revocation *out, char *err) {
  uint8_t buf[REVOKE_BYTES_MAX];
  struct enc e = {.buf = buf, .cap = sizeof(buf)};

  memset(out, 0, sizeof(*out));
  if (node != NULL && node[0] != '\0' && !choreo_valid_name(node))
    return fail(err, "node: not a valid name");
  if (time < 0)
    return fail(err, "time: negative");
  out->serial = serial;
  snprintf(out->node, sizeof(out->node), "%s", node != NULL ? node : "");
  out->time = time;
  memcpy(out->operator_key, op->pk, ID_PUBLIC_BYTES);
  revocation_bytes(&e, out);
  crypto_sign_detached(out->sig, NULL, buf, e.len, op->sk);
  return 0;
}

json_t *id_revocation_to_json(const struct id_revocation *r) {
  json_t *o = json_object();
  bool ok = o != NULL;

  if (!ok)
    return NULL;
  set(o, "revoke", json_integer(ID_FORMAT), &ok);
  set(o, "serial", serial_json(r->serial), &ok);
  set(o, "node", json_string(r->node), &ok);
  set(o, "time", json_integer(r->time), &ok);
  set(o, "operator", b64_json(r->operator_key, ID_PUBLIC_BYTES), &ok);
  set(o, "sig", b64_json(r->sig, ID_SIG_BYTES), &ok);
  if (!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

int id_revocation_from_json(const json_t *j, struct id_revocation *r,
                            char *err) {
  int rv;

  memset(r, 0, sizeof(*r));
  if ((rv = get_format(j, "revoke", err)) != 0 ||
      (rv = get_serial(j, &r->serial, err)) != 0 ||
      (rv = get_name(j, "node", r->node, true, err)) != 0 ||
      (rv = get_time(j, "time", &r->time, err)) != 0 ||
      (rv = get_bytes(j, "operator", r->operator_key, ID_PUBLIC_BYTES, err)) !=
          0 ||
      (rv = get_bytes(j, "sig", r->sig, ID_SIG_BYTES, err)) != 0) {
    memset(r, 0, sizeof(*r));
    return rv;
  }
  return 0;
}

int id_revocation_parse(const char *text, size_t len, struct id_revocation *r,
                        char *err) {
  json_t *j;
  int rv = load_text(text, len, &j, err);

  if (rv == 0)
    rv = id_revocation_from_json(j, r, err);
  json_decref(j);
  return rv;
}

bool id_revocation_verify(const struct id_revocation *r,
                          const uint8_t (*ops)[ID_PUBLIC_BYTES], size_t nops) {
  uint8_t buf[REVOKE_BYTES_MAX];
  struct enc e = {.buf = buf, .cap = sizeof(buf)};

  if (!trusted(r->operator_key, ops, nops))
    return false;
  revocation_bytes(&e, r);
  return !e.overflow &&
         crypto_sign_verify_detached(r->sig, buf, e.len, r->operator_key) == 0;
}
