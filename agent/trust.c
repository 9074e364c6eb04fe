/*
 * trust.c — per-peer verification of records, member entries and
 * revocations against the operators' keys (trust.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "trust.h"
#include "util.h"

#define TRUST_BUCKETS_MIN 64

int trust_init(struct trust *t) {
  memset(t, 0, sizeof(*t));
  if (sodium_init() < 0)
    return CHOREO_ECRYPTO;
  t->buckets = calloc(TRUST_BUCKETS_MIN, sizeof(*t->buckets));
  if (t->buckets == NULL)
    return CHOREO_ENOMEM;
  t->nbuckets = TRUST_BUCKETS_MIN;
  return 0;
}

void trust_free(struct trust *t) {
  for (size_t i = 0; t->buckets != NULL && i < t->nbuckets; i++) {
    struct trust_entry *e = t->buckets[i], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      free(e);
    }
  }
  free(t->buckets);
  free(t->revoked);
  json_decref(t->cert_json);
  id_key_wipe(&t->key);
  memset(t, 0, sizeof(*t));
}

const char *trust_verdict_name(enum trust_verdict v) {
  switch (v) {
  case TRUST_OK:
    return "ok";
  case TRUST_OK_UNSIGNED:
    return "unsigned_accepted";
#define XX(id, s)                                                              \
  case TRUST_DROP_##id:                                                        \
    return s;
    TRUST_DROP_MAP(XX)
#undef XX
  case TRUST_VERDICTS:
    break;
  }
  return "unknown";
}

/* ---- the table of peers ---- */

static size_t bucket_of(const struct trust *t, const char *name) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (const char *c = name; *c != '\0'; c++)
    h = (h ^ (uint8_t)*c) * 1099511628211ULL;
  return (size_t)(h & (t->nbuckets - 1));
}

struct trust_entry *trust_find(const struct trust *t, const char *name) {
  struct trust_entry *e = t->buckets[bucket_of(t, name)];
  while (e != NULL && strcmp(e->name, name) != 0)
    e = e->next;
  return e;
}

static void grow(struct trust *t) {
  size_t n = t->nbuckets * 2;
  struct trust_entry **b = calloc(n, sizeof(*b)), **old = t->buckets;
  size_t nold = t->nbuckets;

  if (b == NULL)
    return; /* chains just get longer */
  t->buckets = b;
  t->nbuckets = n;
  for (size_t i = 0; i < nold; i++) {
    struct trust_entry *e = old[i], *next;
    for (; e != NULL; e = next) {
      size_t k = bucket_of(t, e->name);
      next = e->next;
      e->next = b[k];
      b[k] = e;
    }
  }
  free(old);
}

/* The entry of name, made if there is room. NULL: the table is full. */
static struct trust_entry *entry(struct trust *t, const char *name) {
  struct trust_entry *e = trust_find(t, name);
  size_t k;

  if (e != NULL)
    return e;
  if (t->n >= TRUST_ENTRIES_MAX || (e = calloc(1, sizeof(*e))) == NULL)
    return NULL;
  memcpy(e->name, name, strlen(name) + 1);
  if (t->n + 1 > t->nbuckets)
    grow(t);
  k = bucket_of(t, name);
  e->next = t->buckets[k];
  t->buckets[k] = e;
  t->n++;
  return e;
}

void trust_forget(struct trust *t, const char *name) {
  struct trust_entry **p = &t->buckets[bucket_of(t, name)];
  while (*p != NULL && strcmp((*p)->name, name) != 0)
    p = &(*p)->next;
  if (*p == NULL)
    return;
  struct trust_entry *e = *p;
  *p = e->next;
  free(e);
  t->n--;
}

/* ---- configuration ---- */

const char *trust_check_own(const struct id_key *key,
                            const struct id_cert *cert,
                            const uint8_t (*ops)[ID_PUBLIC_BYTES], size_t nops,
                            const char *name, size_t ngroups,
                            const char (*groups)[CHOREO_NAME_MAX + 1],
                            int64_t now_s, char err[ID_ERR_MAX]) {
  enum id_cert_verdict v;

  if (sodium_memcmp(cert->key, key->pk, ID_PUBLIC_BYTES) != 0)
    return "the certificate is for another key than identity.key_file's";
  if (strcmp(cert->node, name) != 0) {
    snprintf(err, ID_ERR_MAX, "the certificate names node %s, not %s",
             cert->node, name);
    return err;
  }
  if ((v = id_cert_verify(cert, ops, nops, now_s)) != ID_CERT_OK) {
    snprintf(err, ID_ERR_MAX, "the certificate is %s",
             v == ID_CERT_UNTRUSTED ? "signed by an operator key not in "
                                      "identity.operators"
                                    : id_cert_verdict_name(v));
    return err;
  }
  for (size_t i = 0; i < ngroups; i++) {
    if (!id_cert_has_group(cert, groups[i])) {
      snprintf(err, ID_ERR_MAX,
               "node.groups has %s, which the certificate does not list",
               groups[i]);
      return err;
    }
  }
  return NULL;
}

static bool same_ops(const struct trust *t,
                     const uint8_t (*ops)[ID_PUBLIC_BYTES], size_t nops) {
  return t->nops == nops &&
         (nops == 0 || memcmp(t->ops, ops, nops * ID_PUBLIC_BYTES) == 0);
}

int trust_configure(struct trust *t, const char *cluster,
                    const struct id_key *key, const struct id_cert *cert,
                    const uint8_t (*ops)[ID_PUBLIC_BYTES], size_t nops,
                    bool required) {
  json_t *cj = NULL;

  if (nops > ID_OPERATORS_MAX)
    return CHOREO_EINVAL;
  if (key != NULL && cert != NULL && (cj = id_cert_to_json(cert)) == NULL)
    return CHOREO_ENOMEM;
  if (!same_ops(t, ops, nops)) {
    /* Certificates verified against other operators are checked again. */
    for (size_t i = 0; i < t->nbuckets; i++)
      for (struct trust_entry *e = t->buckets[i]; e != NULL; e = e->next)
        e->has_cert = e->has_head = false;
  }
  snprintf(t->cluster, sizeof(t->cluster), "%s", cluster);
  t->enabled = cj != NULL;
  t->required = required && t->enabled;
  t->nops = nops;
  if (nops > 0)
    memcpy(t->ops, ops, nops * ID_PUBLIC_BYTES);
  json_decref(t->cert_json);
  t->cert_json = cj;
  id_key_wipe(&t->key);
  memset(&t->cert, 0, sizeof(t->cert));
  if (t->enabled) {
    t->key = *key;
    t->cert = *cert;
  }
  t->signed_ok = false;
  return 0;
}

/* ---- revocations ---- */

bool trust_is_revoked(const struct trust *t, uint64_t serial) {
  for (size_t i = 0; i < t->nrevoked; i++)
    if (t->revoked[i].rev.serial == serial)
      return true;
  return false;
}

/* A certificate we may use for name now: verified, still valid, not
 * revoked (a revocation clears has_cert). */
static const struct id_cert *usable_cert(const struct trust_entry *e,
                                         int64_t now_ms) {
  int64_t now_s = now_ms / 1000;
  if (e == NULL || !e->has_cert)
    return NULL;
  if (now_s < e->cert.not_before || now_s > e->cert.not_after)
    return NULL;
  return &e->cert;
}

int trust_revoke(struct trust *t, const json_t *obj, bool spread, bool *is_new,
                 char node[CHOREO_NAME_MAX + 1], char err[ID_ERR_MAX]) {
  struct id_revocation r;
  struct trust_revoked *grown;

  *is_new = false;
  node[0] = '\0';
  if (!t->enabled) {
    snprintf(err, ID_ERR_MAX, "identity is not configured on this node");
    return CHOREO_EREFUSED;
  }
  memset(&r, 0, sizeof(r));
  if (id_revocation_from_json(obj, &r, err) != 0)
    return CHOREO_EINVAL;
  snprintf(node, CHOREO_NAME_MAX + 1, "%s", r.node);
  if (trust_is_revoked(t, r.serial))
    return 0;
  t->verified++;
  if (!id_revocation_verify(&r, (const uint8_t(*)[ID_PUBLIC_BYTES])t->ops,
                            t->nops)) {
    snprintf(err, ID_ERR_MAX,
             "not signed by an operator key in identity.operators");
    return CHOREO_EINVAL;
  }
  if (t->nrevoked >= TRUST_REVOKED_MAX) {
    snprintf(err, ID_ERR_MAX, "%d revocations held already, the most kept",
             TRUST_REVOKED_MAX);
    return CHOREO_EREFUSED;
  }
  grown = realloc(t->revoked, (t->nrevoked + 1) * sizeof(*grown));
  if (grown == NULL)
    return CHOREO_ENOMEM;
  t->revoked = grown;
  t->revoked[t->nrevoked].rev = r;
  t->revoked[t->nrevoked].spread = spread ? TRUST_SPREAD_COUNT : 0;
  t->nrevoked++;
  *is_new = true;
  /* Whoever holds that certificate is no longer trusted. */
  for (size_t i = 0; i < t->nbuckets; i++) {
    for (struct trust_entry *e = t->buckets[i]; e != NULL; e = e->next) {
      if (e->has_cert && e->cert.serial == r.serial) {
        e->has_cert = e->has_head = false;
        snprintf(node, CHOREO_NAME_MAX + 1, "%s", e->name);
      }
    }
  }
  return 0;
}

static json_t *revoked_array(struct trust *t, bool members) {
  json_t *a = json_array();
  size_t n = 0;

  if (a == NULL)
    return NULL;
  for (size_t k = t->nrevoked; k-- > 0 && n < WIRE_REVOKED_MAX;) {
    struct trust_revoked *r = &t->revoked[k];
    if (!members && r->spread == 0)
      continue;
    if (!members)
      r->spread--;
    json_array_append_new(a, id_revocation_to_json(&r->rev));
    n++;
  }
  if (n == 0) {
    json_decref(a);
    return NULL;
  }
  return a;
}

json_t *trust_revoked_for(struct trust *t, bool members) {
  if (!t->enabled || t->nrevoked == 0)
    return NULL;
  return revoked_array(t, members);
}

json_t *trust_revoked_all(const struct trust *t) {
  json_t *a = json_array();
  for (size_t k = 0; a != NULL && k < t->nrevoked; k++)
    json_array_append_new(a, id_revocation_to_json(&t->revoked[k].rev));
  return a;
}

/* ---- records ---- */

static enum trust_verdict drop(struct trust *t, enum trust_verdict v) {
  t->dropped[v]++;
  return v;
}

static enum trust_verdict cert_verdict(enum id_cert_verdict v) {
  switch (v) {
  case ID_CERT_OK:
    return TRUST_OK;
  case ID_CERT_UNTRUSTED:
    return TRUST_DROP_UNTRUSTED;
  case ID_CERT_BAD_SIG:
    return TRUST_DROP_CERT_SIG;
  case ID_CERT_NOT_YET:
  case ID_CERT_EXPIRED:
    return TRUST_DROP_EXPIRED;
  }
  return TRUST_DROP_BAD_CERT;
}

/* The certificate m carries, checked, or the one verified before.
 * *out: NULL when there is none. */
static enum trust_verdict sender_cert(struct trust *t, const struct wire_msg *m,
                                      struct trust_entry *e, int64_t now_ms,
                                      struct id_cert *buf,
                                      const struct id_cert **out) {
  char err[ID_ERR_MAX];
  enum trust_verdict v;

  *out = usable_cert(e, now_ms);
  if (m->cert == NULL)
    return TRUST_OK;
  memset(buf, 0, sizeof(*buf));
  if (id_cert_from_json(m->cert, buf, err) != 0)
    return TRUST_DROP_BAD_CERT;
  if (*out != NULL && memcmp(buf, *out, sizeof(*buf)) == 0)
    return TRUST_OK; /* the one verified already */
  *out = NULL;
  if (strcmp(buf->node, m->from) != 0)
    return TRUST_DROP_NAME;
  t->verified++;
  v = cert_verdict(id_cert_verify(
      buf, (const uint8_t(*)[ID_PUBLIC_BYTES])t->ops, t->nops, now_ms / 1000));
  if (v != TRUST_OK)
    return v;
  if (trust_is_revoked(t, buf->serial))
    return TRUST_DROP_REVOKED;
  *out = buf;
  return TRUST_OK;
}

/* Keep what was verified: the certificate and the newest head. */
static void remember(struct trust_entry *e, const struct id_cert *cert,
                     const struct id_head *h, const uint8_t sig[ID_SIG_BYTES],
                     const uint8_t digest[ID_HASH_BYTES]) {
  if (&e->cert != cert) {
    /* A head verified with another key is not vouched for by this one;
     * one verified with the same key (a renewed certificate) stays. */
    if (!e->has_cert || memcmp(e->cert.key, cert->key, ID_PUBLIC_BYTES) != 0)
      e->has_head = false;
    e->cert = *cert;
  }
  e->has_cert = true;
  e->signs = true;
  if (e->has_head && (h->inc < e->inc || (h->inc == e->inc && h->ver < e->ver)))
    return; /* an older version, verified again: keep the newest */
  e->has_head = true;
  e->inc = h->inc;
  e->ver = h->ver;
  e->left = h->left;
  snprintf(e->addr, sizeof(e->addr), "%s", h->addr);
  memcpy(e->body_hash, h->body_hash, ID_HASH_BYTES);
  memcpy(e->sig, sig, ID_SIG_BYTES);
  memcpy(e->digest, digest, ID_HASH_BYTES);
}

enum trust_verdict trust_check_record(struct trust *t, const struct wire_msg *m,
                                      int64_t now_ms, bool *warn) {
  struct trust_entry *e;
  struct id_cert buf;
  const struct id_cert *cert;
  struct id_head h;
  uint8_t digest[ID_HASH_BYTES];
  enum trust_verdict v;

  *warn = false;
  if (!t->enabled)
    return TRUST_OK;
  e = trust_find(t, m->from);
  if ((v = sender_cert(t, m, e, now_ms, &buf, &cert)) != TRUST_OK)
    return drop(t, v);
  if (!m->has_sig) {
    if (t->required || (e != NULL && e->signs))
      return drop(t, TRUST_DROP_UNSIGNED);
    t->unsigned_accepted++;
    if ((e = entry(t, m->from)) == NULL || !e->unsigned_warned)
      *warn = true;
    if (e != NULL)
      e->unsigned_warned = true;
    return TRUST_OK_UNSIGNED;
  }
  if (cert == NULL)
    return drop(t, TRUST_DROP_NO_CERT);
  if (id_cert_missing_group(cert, &m->rec) != NULL)
    return drop(t, TRUST_DROP_GROUPS);
  id_head_of(t->cluster, &m->rec, &h);
  id_head_digest(&h, digest);
  if (e != NULL && e->has_head && cert == &e->cert &&
      sodium_memcmp(digest, e->digest, ID_HASH_BYTES) == 0) {
    t->cache_hits++;
    return TRUST_OK;
  }
  t->verified++;
  if (!id_head_verify(cert->key, &h, m->sig))
    return drop(t, TRUST_DROP_BAD_SIG);
  if ((e = entry(t, m->from)) != NULL)
    remember(e, cert, &h, m->sig, digest);
  return TRUST_OK;
}

/* ---- member lists ---- */

enum trust_member trust_check_member(struct trust *t,
                                     const struct wire_member *w,
                                     int64_t now_ms) {
  struct trust_entry *e;
  const struct id_cert *cert;
  struct id_head h;
  uint8_t digest[ID_HASH_BYTES];

  if (!t->enabled)
    return TRUST_MEMBER_OK;
  e = trust_find(t, w->name);
  cert = usable_cert(e, now_ms);
  if (cert == NULL || !w->has_sig) {
    /* Nothing to check it with: unsigned claims pass only where no
     * signature is asked of that node. */
    if (!w->has_sig && !t->required && (e == NULL || !e->signs))
      return TRUST_MEMBER_OK;
    t->entries_refused++;
    return w->left ? TRUST_MEMBER_SKIP : TRUST_MEMBER_HINT;
  }
  h = (struct id_head){.cluster = t->cluster,
                       .name = w->name,
                       .addr = w->addr,
                       .inc = w->inc,
                       .ver = w->ver,
                       .left = w->left};
  memcpy(h.body_hash, w->body_hash, ID_HASH_BYTES);
  id_head_digest(&h, digest);
  if (e->has_head && sodium_memcmp(digest, e->digest, ID_HASH_BYTES) == 0) {
    t->cache_hits++;
    return TRUST_MEMBER_OK;
  }
  t->verified++;
  if (!id_head_verify(cert->key, &h, w->sig)) {
    t->entries_refused++;
    t->dropped[TRUST_DROP_BAD_SIG]++;
    return TRUST_MEMBER_SKIP;
  }
  remember(e, cert, &h, w->sig, digest);
  return TRUST_MEMBER_OK;
}

bool trust_own_entry(const struct trust *t, const struct wire_member *w) {
  struct id_head h = {.cluster = t->cluster,
                      .name = w->name,
                      .addr = w->addr,
                      .inc = w->inc,
                      .ver = w->ver,
                      .left = w->left};
  if (!t->enabled)
    return true;
  if (!w->has_sig)
    return false;
  memcpy(h.body_hash, w->body_hash, ID_HASH_BYTES);
  return id_head_verify(t->key.pk, &h, w->sig);
}

/* ---- signing ---- */

/* Our head's signature, made again only when the head changes. */
static void own_signature(struct trust *t, const struct record *own) {
  struct id_head h;
  uint8_t digest[ID_HASH_BYTES];

  id_head_of(t->cluster, own, &h);
  id_head_digest(&h, digest);
  if (t->signed_ok &&
      sodium_memcmp(digest, t->signed_digest, ID_HASH_BYTES) == 0)
    return;
  id_head_sign(&t->key, &h, t->signed_sig);
  memcpy(t->signed_digest, digest, ID_HASH_BYTES);
  memcpy(t->signed_body_hash, h.body_hash, ID_HASH_BYTES);
  t->signed_ok = true;
}

void trust_sign(struct trust *t, struct wire_msg *m, const struct record *own,
                bool with_cert) {
  if (!t->enabled)
    return;
  own_signature(t, own);
  m->has_sig = true;
  memcpy(m->sig, t->signed_sig, ID_SIG_BYTES);
  json_decref(m->cert);
  m->cert = with_cert ? json_incref(t->cert_json) : NULL;
}

/* m's verdicts as identity.c signs them; items holds them. */
static void verdicts_of(const struct trust *t, const struct wire_msg *m,
                        struct id_verdict items[ID_VERDICTS_MAX],
                        struct id_verdicts *vs) {
  size_t n = m->nlost <= ID_VERDICTS_MAX ? m->nlost : ID_VERDICTS_MAX;

  for (size_t i = 0; i < n; i++)
    items[i] = (struct id_verdict){
        .name = m->lost[i].name, .inc = m->lost[i].inc, .ver = m->lost[i].ver};
  *vs = (struct id_verdicts){.cluster = t->cluster,
                             .relay = m->from,
                             .inc = m->inc,
                             .seq = m->seq,
                             .total = m->lost_total,
                             .n = n,
                             .v = items};
}

void trust_sign_verdicts(struct trust *t, struct wire_msg *m) {
  struct id_verdict items[ID_VERDICTS_MAX];
  struct id_verdicts vs;

  if (!t->enabled)
    return;
  verdicts_of(t, m, items, &vs);
  id_verdicts_sign(&t->key, &vs, m->lost_sig);
  m->has_lost_sig = true;
}

bool trust_check_verdicts(struct trust *t, const struct wire_msg *m,
                          int64_t now_ms) {
  struct id_verdict items[ID_VERDICTS_MAX];
  struct id_verdicts vs;
  const struct trust_entry *e;
  const struct id_cert *cert;

  if (!t->enabled || !m->relay)
    return true;
  e = trust_find(t, m->from);
  if (!m->has_lost_sig) {
    if (t->required || (e != NULL && e->signs)) {
      (void)drop(t, TRUST_DROP_UNSIGNED);
      return false;
    }
    return true;
  }
  if ((cert = usable_cert(e, now_ms)) == NULL) {
    (void)drop(t, TRUST_DROP_NO_CERT);
    return false;
  }
  verdicts_of(t, m, items, &vs);
  t->verified++;
  if (!id_verdicts_verify(cert->key, &vs, m->lost_sig)) {
    (void)drop(t, TRUST_DROP_BAD_SIG);
    return false;
  }
  return true;
}

void trust_sign_member(struct trust *t, struct wire_member *w,
                       const struct record *own) {
  const struct trust_entry *e;

  w->has_sig = false;
  if (!t->enabled)
    return;
  if (strcmp(w->name, own->name) == 0) {
    own_signature(t, own);
    w->has_sig = true;
    memcpy(w->body_hash, t->signed_body_hash, ID_HASH_BYTES);
    memcpy(w->sig, t->signed_sig, ID_SIG_BYTES);
    return;
  }
  e = trust_find(t, w->name);
  if (e == NULL || !e->has_head || e->inc != w->inc || e->ver != w->ver ||
      e->left != w->left || strcmp(e->addr, w->addr) != 0)
    return;
  w->has_sig = true;
  memcpy(w->body_hash, e->body_hash, ID_HASH_BYTES);
  memcpy(w->sig, e->sig, ID_SIG_BYTES);
}
