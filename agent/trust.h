/*
 * trust.h — what this agent trusts (docs/SECURITY.md "Identity"): the
 * operator keys of `identity.operators`, this node's own key and
 * certificate, the revocations it has verified, and, per peer, the
 * certificate and the last record head it has verified.
 *
 * The decisions are here, as functions of the message and the table:
 * whether a record may be merged (its signature, its certificate, the
 * groups it claims), what a member list entry may say, whether a
 * revocation is new. Verifying costs an Ed25519 check (tens of µs), so
 * each peer's last verified head and certificate are kept and a repeat
 * (a heartbeat of an unchanged record) costs a hash.
 *
 * Pure: no clock (callers pass unix ms), no I/O. The table is bounded
 * (TRUST_ENTRIES_MAX peers, TRUST_REVOKED_MAX revocations).
 */
#ifndef CHOREO_TRUST_H
#define CHOREO_TRUST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "record.h"
#include "wire.h"

#define TRUST_ENTRIES_MAX 8192
#define TRUST_REVOKED_MAX 1024
/* Outgoing state messages that carry a newly learnt revocation. */
#define TRUST_SPREAD_COUNT 6

/* Why a record or an entry was dropped; each is a label of
 * choreo_identity_dropped_total. */
#define TRUST_DROP_MAP(XX)                                                     \
  XX(UNSIGNED, "unsigned")       /* no signature, and one is required */       \
  XX(NO_CERT, "no_cert")         /* signed, but no certificate known */        \
  XX(BAD_CERT, "bad_cert")       /* a certificate that doesn't parse */        \
  XX(UNTRUSTED, "untrusted")     /* issued by an operator not trusted */       \
  XX(CERT_SIG, "cert_signature") /* the operator's signature is wrong */       \
  XX(EXPIRED, "expired")         /* not valid now (expired or not yet) */      \
  XX(NAME, "name")               /* the certificate names another node */      \
  XX(GROUPS, "groups")           /* a group the certificate doesn't list */    \
  XX(BAD_SIG, "signature")       /* the record's signature is wrong */         \
  XX(REVOKED, "revoked")         /* the certificate was revoked */

enum trust_verdict {
  TRUST_OK = 0,      /* merge it */
  TRUST_OK_UNSIGNED, /* merge it: unsigned, allowed (required: false) */
#define XX(id, s) TRUST_DROP_##id,
  TRUST_DROP_MAP(XX)
#undef XX
      TRUST_VERDICTS
};

/* One peer's verified identity. */
struct trust_entry {
  struct trust_entry *next; /* hash chain */
  char name[CHOREO_NAME_MAX + 1];
  bool has_cert; /* cert verified (trusted, valid when checked, not revoked) */
  struct id_cert cert;
  /* It has signed a record we verified: from then on, unsigned claims
   * about it are refused even with required: false. */
  bool signs;
  bool unsigned_warned; /* an unsigned record of it was said once */
  /* The newest head verified, with its signature (member lists carry
   * it), and its digest (the cache key). */
  bool has_head;
  uint64_t inc, ver;
  bool left;
  char addr[CHOREO_ADDR_MAX + 1];
  uint8_t body_hash[ID_HASH_BYTES];
  uint8_t sig[ID_SIG_BYTES];
  uint8_t digest[ID_HASH_BYTES];
};

struct trust_revoked {
  struct id_revocation rev;
  unsigned spread; /* outgoing state messages that still carry it */
};

struct trust {
  /* Configuration (trust_configure). enabled: identity is configured;
   * without it nothing is verified or signed. */
  bool enabled, required;
  char cluster[CHOREO_CLUSTER_MAX + 1];
  size_t nops;
  uint8_t ops[ID_OPERATORS_MAX][ID_PUBLIC_BYTES];
  struct id_key key;
  struct id_cert cert;
  json_t *cert_json; /* our certificate as sent (owned) */
  /* Our signature of our record's head, reused while the head is the
   * same. */
  bool signed_ok;
  uint8_t signed_digest[ID_HASH_BYTES];
  uint8_t signed_sig[ID_SIG_BYTES];
  uint8_t signed_body_hash[ID_HASH_BYTES];

  struct trust_revoked *revoked; /* owned, nrevoked of them */
  size_t nrevoked;

  struct trust_entry **buckets; /* owned; nbuckets, a power of two */
  size_t nbuckets, n;

  /* Counters (metrics.c shows them). */
  uint64_t verified;   /* signatures checked: records, entries, certs */
  uint64_t cache_hits; /* records whose head was verified already */
  uint64_t unsigned_accepted;
  uint64_t dropped[TRUST_VERDICTS];
  uint64_t entries_refused; /* member entries dropped or reduced to hints */
  uint64_t revocations_refused;
};

/* An empty table, identity off. Returns 0 or CHOREO_ENOMEM. */
int trust_init(struct trust *t);
void trust_free(struct trust *t);

/* Take the configuration (copies everything; ops: nops operator keys).
 * With key and cert NULL identity is off. A change of operators forgets
 * every peer's verified certificate (they are checked again). */
int trust_configure(struct trust *t, const char *cluster,
                    const struct id_key *key, const struct id_cert *cert,
                    const uint8_t (*ops)[ID_PUBLIC_BYTES], size_t nops,
                    bool required);

/* Whether this node's own identity fits: the certificate is for key, names
 * `name`, is signed by one of ops and valid at now_s, and lists every one
 * of groups. Returns NULL, or what is wrong (a static or err string). */
const char *trust_check_own(const struct id_key *key,
                            const struct id_cert *cert,
                            const uint8_t (*ops)[ID_PUBLIC_BYTES], size_t nops,
                            const char *name, size_t ngroups,
                            const char (*groups)[CHOREO_NAME_MAX + 1],
                            int64_t now_s, char err[ID_ERR_MAX]);

/* A record that came from its node (hello, state, leave): m's record, its
 * signature and certificate. TRUST_OK: verified (or identity off);
 * TRUST_OK_UNSIGNED: allowed without a signature (*warn: say so, the
 * first time for this peer); anything else: drop, counted. */
enum trust_verdict trust_check_record(struct trust *t, const struct wire_msg *m,
                                      int64_t now_ms, bool *warn);

/* What a member list entry may say. */
enum trust_member {
  TRUST_MEMBER_OK,   /* merge it as it is */
  TRUST_MEMBER_HINT, /* only "this name exists at this address": merge it
                        as a member never heard, if not known yet */
  TRUST_MEMBER_SKIP, /* ignore it */
};
enum trust_member trust_check_member(struct trust *t,
                                     const struct wire_member *w,
                                     int64_t now_ms);

/* Whether a member list entry about this node may be taken as ours (a
 * claim to refute or a rival to detect): with identity, only when it
 * carries our own signature. */
bool trust_own_entry(const struct trust *t, const struct wire_member *w);

/* Sign our record for publishing: m->has_sig and m->sig set, and m->cert
 * when with_cert (peers that hold it need it once; docs/PROTOCOL.md
 * "Certificates on demand"). Identity off: nothing. */
void trust_sign(struct trust *t, struct wire_msg *m, const struct record *own,
                bool with_cert);
/* A relay signs its verdicts (m->lost, m->lost_total) with the message's
 * stamp (m->inc, m->seq, set before): m->lost_sig. Identity off:
 * nothing. */
void trust_sign_verdicts(struct trust *t, struct wire_msg *m);
/* Whether the verdicts of a relay's message (m->relay), accepted already
 * by trust_check_record, may be taken: identity off, or signed by the
 * key of the relay's certificate held here (unsigned ones only where its
 * records may be unsigned). An empty list is checked too: it withdraws
 * the relay's verdicts. False: counted as a drop. */
bool trust_check_verdicts(struct trust *t, const struct wire_msg *m,
                          int64_t now_ms);
/* Fill w's signature for a member list: our own entry (own) or a peer's,
 * when the head verified last is the record w describes. */
void trust_sign_member(struct trust *t, struct wire_member *w,
                       const struct record *own);

/* A revocation from the network, the control socket or the state file.
 * Returns 0 with *is_new (and *node: the revoked node's name when this
 * table held its certificate, else the revocation's node, "" if none), or
 * CHOREO_EINVAL with err (malformed, not signed by a trusted operator),
 * CHOREO_EREFUSED with err (identity off, or TRUST_REVOKED_MAX held), or
 * CHOREO_ENOMEM. spread: carry it in the next TRUST_SPREAD_COUNT state
 * messages. */
int trust_revoke(struct trust *t, const json_t *obj, bool spread, bool *is_new,
                 char node[CHOREO_NAME_MAX + 1], char err[ID_ERR_MAX]);
bool trust_is_revoked(const struct trust *t, uint64_t serial);
/* The revocations to carry: for a state message, those still spreading
 * (each counted down); for a member list, all of them (up to
 * WIRE_REVOKED_MAX, newest first). NULL when none (new reference). */
json_t *trust_revoked_for(struct trust *t, bool members);
/* All revocations, to persist (new reference, an array). */
json_t *trust_revoked_all(const struct trust *t);

/* Forget a peer (reaped). */
void trust_forget(struct trust *t, const char *name);
struct trust_entry *trust_find(const struct trust *t, const char *name);

const char *trust_verdict_name(enum trust_verdict v);

#endif
