/*
 * identity.h — node identity: Ed25519 signing keys, the certificates an
 * operator issues ("this public key is node NAME, in groups G…"), the
 * revocations an operator signs, and the signature over a node's record
 * (docs/PROTOCOL.md "Identity").
 *
 * Pure: libsodium and jansson only, no clock (callers pass the time), no
 * I/O except the *_load() functions that read one file. Nothing parsed
 * here is trusted: every field is type-checked and bounded, and every
 * error says what is wrong in err (never NULL, ID_ERR_MAX bytes).
 *
 * What is signed is never JSON text: each signature covers a byte string
 * built from the parsed fields (length-prefixed strings, big-endian
 * integers, a domain-separating prefix), so any two encoders agree on it.
 */
#ifndef CHOREO_IDENTITY_H
#define CHOREO_IDENTITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "choreo.h"
#include "record.h"

#define ID_PUBLIC_BYTES 32 /* crypto_sign_PUBLICKEYBYTES */
#define ID_SECRET_BYTES 64 /* crypto_sign_SECRETKEYBYTES (seed, public) */
#define ID_SIG_BYTES 64    /* crypto_sign_BYTES */
#define ID_HASH_BYTES 32   /* crypto_generichash (BLAKE2b-256) */
/* base64 (original variant, padded) lengths, without the NUL. */
#define ID_PUBLIC_B64 44
#define ID_SECRET_B64 88
#define ID_SIG_B64 88
#define ID_HASH_B64 44
/* A certificate or revocation as JSON text (file or wire): larger is
 * refused before parsing. */
#define ID_TEXT_MAX 2048
/* A key file: one base64 line, blanks and a trailing newline. */
#define ID_KEY_FILE_MAX 256
/* Operator keys trusted at once (identity.operators). */
#define ID_OPERATORS_MAX 8
#define ID_ERR_MAX 160

/* A node's or an operator's signing key. */
struct id_key {
  uint8_t sk[ID_SECRET_BYTES];
  uint8_t pk[ID_PUBLIC_BYTES];
};

/* A new random key. Returns 0, or CHOREO_ECRYPTO (libsodium failed to
 * start). */
int id_key_generate(struct id_key *k);
/* The secret key as one line of base64 (ID_SECRET_B64 + 1 bytes). */
void id_key_format(const struct id_key *k, char out[ID_SECRET_B64 + 1]);
/* Parse a key file's text: one line of base64 of ID_SECRET_BYTES bytes,
 * blanks around it allowed; the public half must match the seed.
 * Returns 0 or CHOREO_EINVAL with err. */
int id_key_parse(const char *text, size_t len, struct id_key *k, char *err);
/* Read and parse path: a regular file, at most ID_KEY_FILE_MAX bytes,
 * not readable or writable by group or others (mode 0600 or 0400).
 * Returns 0, or CHOREO_EINVAL with err ("PATH: …"). */
int id_key_load(const char *path, struct id_key *k, char *err);
/* Wipe k (sodium_memzero). */
void id_key_wipe(struct id_key *k);

/* A public key as base64 (ID_PUBLIC_B64 + 1 bytes). */
void id_public_format(const uint8_t pk[ID_PUBLIC_BYTES],
                      char out[ID_PUBLIC_B64 + 1]);
/* Parse ID_PUBLIC_B64 characters of base64 exactly (no blanks). Returns
 * 0 or CHOREO_EINVAL with err. */
int id_public_parse(const char *text, uint8_t pk[ID_PUBLIC_BYTES], char *err);

/* A certificate: operator `operator_key` says that `key` is node `node`,
 * which may claim the groups listed, from not_before to not_after (unix
 * seconds, both included). */
struct id_cert {
  char node[CHOREO_NAME_MAX + 1];
  size_t ngroups;
  char groups[CHOREO_GROUPS_MAX][CHOREO_NAME_MAX + 1];
  uint8_t key[ID_PUBLIC_BYTES];
  uint64_t serial; /* random, shown as 16 hex digits */
  int64_t not_before, not_after;
  uint8_t operator_key[ID_PUBLIC_BYTES];
  uint8_t sig[ID_SIG_BYTES];
};

/* Fill and sign *out. node and groups must be valid names (ngroups ≤
 * CHOREO_GROUPS_MAX, no duplicates), not_before ≤ not_after; serial 0
 * draws a random one. Returns 0 or CHOREO_EINVAL with err. */
int id_cert_issue(const struct id_key *op, const char *node, size_t ngroups,
                  const char (*groups)[CHOREO_NAME_MAX + 1],
                  const uint8_t key[ID_PUBLIC_BYTES], uint64_t serial,
                  int64_t not_before, int64_t not_after, struct id_cert *out,
                  char *err);
/* The certificate as a JSON object (new reference; NULL: out of memory):
 * {"cert":1,"node","groups","key","serial","not_before","not_after",
 *  "operator","sig"}. */
json_t *id_cert_to_json(const struct id_cert *c);
/* Parse such an object. Checks form and bounds only, not the signature.
 * Returns 0 or CHOREO_EINVAL with err naming the field. */
int id_cert_from_json(const json_t *j, struct id_cert *c, char *err);
/* Parse a certificate file's text (one JSON object, ≤ ID_TEXT_MAX bytes). */
int id_cert_parse(const char *text, size_t len, struct id_cert *c, char *err);
/* Read and parse path. Returns 0 or CHOREO_EINVAL with err ("PATH: …"). */
int id_cert_load(const char *path, struct id_cert *c, char *err);

enum id_cert_verdict {
  ID_CERT_OK = 0,
  ID_CERT_UNTRUSTED, /* operator_key is not one of the trusted keys */
  ID_CERT_BAD_SIG,   /* the operator's signature does not verify */
  ID_CERT_NOT_YET,   /* now < not_before */
  ID_CERT_EXPIRED,   /* now > not_after */
};
/* Whether c is signed by one of ops[0..nops) and valid at now_s. */
enum id_cert_verdict id_cert_verify(const struct id_cert *c,
                                    const uint8_t (*ops)[ID_PUBLIC_BYTES],
                                    size_t nops, int64_t now_s);
const char *id_cert_verdict_name(enum id_cert_verdict v);
bool id_cert_has_group(const struct id_cert *c, const char *group);
/* The first of r's groups that c does not list, or NULL. */
const char *id_cert_missing_group(const struct id_cert *c,
                                  const struct record *r);

/* A revocation: operator `operator_key` says certificate `serial` (of
 * node `node`, "" when the operator gave only the serial) is revoked, as
 * of `time` (unix seconds). */
struct id_revocation {
  uint64_t serial;
  char node[CHOREO_NAME_MAX + 1];
  int64_t time;
  uint8_t operator_key[ID_PUBLIC_BYTES];
  uint8_t sig[ID_SIG_BYTES];
};

/* Fill and sign *out. node may be "" or NULL. Returns 0 or CHOREO_EINVAL. */
int id_revocation_issue(const struct id_key *op, uint64_t serial,
                        const char *node, int64_t time,
                        struct id_revocation *out, char *err);
/* {"revoke":1,"serial","node","time","operator","sig"}. */
json_t *id_revocation_to_json(const struct id_revocation *r);
int id_revocation_from_json(const json_t *j, struct id_revocation *r,
                            char *err);
int id_revocation_parse(const char *text, size_t len, struct id_revocation *r,
                        char *err);
/* Whether r is signed by one of ops[0..nops). */
bool id_revocation_verify(const struct id_revocation *r,
                          const uint8_t (*ops)[ID_PUBLIC_BYTES], size_t nops);

/* A record's signature. The node signs its record's *head*: cluster,
 * name, inc, ver, left, addr and the hash of its *body* (state, reason,
 * since, groups, data with keys sorted). A member list entry carries the
 * head's fields, the body hash and the signature, so a receiver can check
 * what a list says of a node without the body. */
struct id_head {
  const char *cluster, *name, *addr;
  uint64_t inc, ver;
  bool left;
  uint8_t body_hash[ID_HASH_BYTES];
};

/* The body hash of r (its state, reason, since, groups and data). */
void id_body_hash(const struct record *r, uint8_t out[ID_HASH_BYTES]);
/* Fill h from r (pointers into r and cluster; the body hash computed). */
void id_head_of(const char *cluster, const struct record *r, struct id_head *h);
/* A 32-byte digest of the head's signed bytes: the cache key for "this
 * exact head was verified already". */
void id_head_digest(const struct id_head *h, uint8_t out[ID_HASH_BYTES]);
void id_head_sign(const struct id_key *k, const struct id_head *h,
                  uint8_t sig[ID_SIG_BYTES]);
bool id_head_verify(const uint8_t pk[ID_PUBLIC_BYTES], const struct id_head *h,
                    const uint8_t sig[ID_SIG_BYTES]);

/* A relay's verdicts (docs/PROTOCOL.md "Identity"): the leaves it holds
 * lost, signed with the relay's key together with the message's stamp,
 * so that they can't be forged or replayed apart from its messages. */
struct id_verdict {
  const char *name;
  uint64_t inc, ver;
};
struct id_verdicts {
  const char *cluster, *relay;
  uint64_t inc, seq; /* the message's */
  uint32_t total;    /* all the relay holds lost */
  size_t n;          /* at most ID_VERDICTS_MAX */
  const struct id_verdict *v;
};
#define ID_VERDICTS_MAX 32
void id_verdicts_sign(const struct id_key *k, const struct id_verdicts *vs,
                      uint8_t sig[ID_SIG_BYTES]);
bool id_verdicts_verify(const uint8_t pk[ID_PUBLIC_BYTES],
                        const struct id_verdicts *vs,
                        const uint8_t sig[ID_SIG_BYTES]);

/* Serials as 16 lowercase hex digits (17 bytes with the NUL). */
void id_serial_format(uint64_t serial, char out[17]);
/* Exactly 16 hex digits (either case). Returns 0 or CHOREO_EINVAL. */
int id_serial_parse(const char *text, uint64_t *serial);

/* base64 of n bytes into out (size at least sodium_base64_ENCODED_LEN);
 * parse exactly n bytes from a string of exactly the right length. */
void id_b64_format(const uint8_t *bin, size_t n, char *out, size_t outlen);
int id_b64_parse(const char *text, uint8_t *bin, size_t n);

#endif
