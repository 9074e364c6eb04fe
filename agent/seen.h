/*
 * seen.h — recently received messages, by fingerprint: a relay's batch
 * carries each leaf's message to every member, so with two relays every
 * member receives each message twice, and every leaf its own messages
 * back. A fingerprint (SipHash of the raw bytes, under a key drawn at
 * start, so that no sender can make two messages collide) recognises a
 * copy before it is opened and decoded, which is most of the cost.
 *
 * Direct-mapped: a fingerprint evicts whatever shared its slot. A copy
 * that arrives after its slot was taken is not recognised here and is
 * decoded, then dropped by the sequence check: the cache only saves work,
 * it decides nothing.
 */
#ifndef CHOREO_SEEN_H
#define CHOREO_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SEEN_SLOTS 4096 /* a power of two */

struct seen {
  unsigned char key[16];
  uint64_t slot[SEEN_SLOTS]; /* 0: empty */
};

/* Empty s and draw its key (libsodium must be initialised). */
void seen_init(struct seen *s);
/* A new table, initialised (free() it); NULL when out of memory. */
struct seen *seen_new(void);
/* Note the len bytes at buf; returns whether they had been noted before
 * (and not evicted since). */
bool seen_note(struct seen *s, const void *buf, size_t len);

#endif
