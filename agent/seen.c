/*
 * seen.c — fingerprints of recently received messages; see seen.h.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "seen.h"

_Static_assert((SEEN_SLOTS & (SEEN_SLOTS - 1)) == 0, "SEEN_SLOTS");
_Static_assert(crypto_shorthash_KEYBYTES == sizeof(((struct seen *)0)->key),
               "key size");

static uint64_t fingerprint(const struct seen *s, const void *buf, size_t len) {
  unsigned char h[crypto_shorthash_BYTES];
  uint64_t v;
  crypto_shorthash(h, buf, len, s->key);
  memcpy(&v, h, sizeof(v));
  return v != 0 ? v : 1; /* 0 marks an empty slot */
}

void seen_init(struct seen *s) {
  memset(s->slot, 0, sizeof(s->slot));
  randombytes_buf(s->key, sizeof(s->key));
}

struct seen *seen_new(void) {
  struct seen *s = malloc(sizeof(*s));
  if (s != NULL)
    seen_init(s);
  return s;
}

bool seen_note(struct seen *s, const void *buf, size_t len) {
  uint64_t v = fingerprint(s, buf, len);
  uint64_t *slot = &s->slot[v & (SEEN_SLOTS - 1)];
  bool before = *slot == v;
  *slot = v;
  return before;
}
