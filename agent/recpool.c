/*
 * recpool.c — records stored once and shared by their holders; see
 * recpool.h. A chained hash table keyed by a keyed hash (SipHash, a key
 * drawn per pool) of the node's name and stamp, so that names chosen by a
 * key holder can't pile records into one chain.
 */
#include <sodium.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "recpool.h"

#define RECPOOL_BUCKETS_MIN 64

struct pooled {
  struct pooled *next; /* in its bucket */
  uint64_t hash;
  size_t refs;
  struct record rec;
};

struct recpool {
  struct pooled **bucket; /* nbuckets, a power of two */
  size_t nbuckets;
  size_t records, holds;
  unsigned char key[crypto_shorthash_KEYBYTES];
};

static uint64_t hash_of(const struct recpool *pool, const struct record *r) {
  unsigned char buf[CHOREO_NAME_MAX + 1 + 16], h[crypto_shorthash_BYTES];
  size_t n = strlen(r->name);
  uint64_t v;

  memcpy(buf, r->name, n);
  for (size_t i = 0; i < 8; i++) {
    buf[n + i] = (unsigned char)(r->inc >> (8 * i));
    buf[n + 8 + i] = (unsigned char)(r->ver >> (8 * i));
  }
  crypto_shorthash(h, buf, n + 16, pool->key);
  memcpy(&v, h, sizeof(v));
  return v;
}

static struct pooled *pooled_of(const struct record *r) {
  return (struct pooled *)(void *)((char *)(uintptr_t)r -
                                   offsetof(struct pooled, rec));
}

struct recpool *recpool_new(void) {
  struct recpool *pool = calloc(1, sizeof(*pool));

  if (pool == NULL)
    return NULL;
  pool->bucket = calloc(RECPOOL_BUCKETS_MIN, sizeof(*pool->bucket));
  if (pool->bucket == NULL) {
    free(pool);
    return NULL;
  }
  pool->nbuckets = RECPOOL_BUCKETS_MIN;
  randombytes_buf(pool->key, sizeof(pool->key));
  return pool;
}

void recpool_free(struct recpool *pool) {
  if (pool == NULL)
    return;
  for (size_t i = 0; i < pool->nbuckets; i++) {
    struct pooled *e = pool->bucket[i], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      record_free(&e->rec);
      free(e);
    }
  }
  free(pool->bucket);
  free(pool);
}

/* Twice the buckets once there are more records than buckets; a pool
 * that can't grow keeps its chains longer. */
static void grow(struct recpool *pool) {
  size_t n = pool->nbuckets * 2;
  struct pooled **b;

  if (pool->records <= pool->nbuckets || n > SIZE_MAX / sizeof(*b))
    return;
  if ((b = calloc(n, sizeof(*b))) == NULL)
    return;
  for (size_t i = 0; i < pool->nbuckets; i++) {
    struct pooled *e = pool->bucket[i], *next;
    for (; e != NULL; e = next) {
      next = e->next;
      e->next = b[e->hash & (n - 1)];
      b[e->hash & (n - 1)] = e;
    }
  }
  free(pool->bucket);
  pool->bucket = b;
  pool->nbuckets = n;
}

const struct record *recpool_hold(struct recpool *pool,
                                  const struct record *r) {
  uint64_t h = hash_of(pool, r);
  struct pooled **head = &pool->bucket[h & (pool->nbuckets - 1)], *e;

  for (e = *head; e != NULL; e = e->next) {
    if (e->hash == h && record_equal(&e->rec, r)) {
      e->refs++;
      pool->holds++;
      return &e->rec;
    }
  }
  if ((e = malloc(sizeof(*e))) == NULL)
    return NULL;
  if (record_init(&e->rec) != 0 || record_copy(&e->rec, r) != 0) {
    record_free(&e->rec);
    free(e);
    return NULL;
  }
  e->hash = h;
  e->refs = 1;
  e->next = *head;
  *head = e;
  pool->records++;
  pool->holds++;
  grow(pool);
  return &e->rec;
}

void recpool_release(struct recpool *pool, const struct record *r) {
  struct pooled *e, **at;

  if (r == NULL)
    return;
  e = pooled_of(r);
  pool->holds--;
  if (--e->refs > 0)
    return;
  for (at = &pool->bucket[e->hash & (pool->nbuckets - 1)]; *at != e;
       at = &(*at)->next)
    ;
  *at = e->next;
  pool->records--;
  record_free(&e->rec);
  free(e);
}

size_t recpool_records(const struct recpool *pool) {
  return pool->records;
}

size_t recpool_holds(const struct recpool *pool) {
  return pool->holds;
}
