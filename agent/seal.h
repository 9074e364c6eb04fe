/*
 * seal.h — the cluster key ring and the sealing of messages (docs/SECURITY.md
 * "The cluster key").
 *
 * A key file holds up to SEAL_KEYS_MAX keys, one per line, each the base64
 * text of SEAL_KEY_BYTES random bytes (what `choreo keygen` prints); blank
 * lines and lines starting with '#' are ignored. The first key seals, every
 * key opens, which is how keys are rotated without a moment in which two
 * agents can't read each other.
 *
 * A sealed message is nonce || crypto_secretbox_easy(message): a random
 * SEAL_NONCE_BYTES nonce, then the MAC and the ciphertext. It is both
 * secret and authenticated; replays are the protocol's business
 * ((inc, seq) ordering, docs/PROTOCOL.md), not this module's.
 */
#ifndef CHOREO_SEAL_H
#define CHOREO_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#include "choreo.h"

#define SEAL_KEYS_MAX 8
#define SEAL_KEY_BYTES 32   /* crypto_secretbox_KEYBYTES */
#define SEAL_NONCE_BYTES 24 /* crypto_secretbox_NONCEBYTES */
#define SEAL_MAC_BYTES 16   /* crypto_secretbox_MACBYTES */
#define SEAL_OVERHEAD (SEAL_NONCE_BYTES + SEAL_MAC_BYTES)
#define SEAL_FILE_MAX 16384 /* bytes of a key file, comments included */
#define SEAL_ERROR_MAX 4200 /* a path (CONFIG_PATH_MAX) and a message */

struct seal_ring; /* private: the keys live in guarded, locked memory */

/* Why a key file was refused: "PATH:LINE: message", or "PATH: message"
 * when no line is to blame (line is then 0). */
struct seal_error {
  unsigned line;
  char text[SEAL_ERROR_MAX];
};

/* Read the key file at path. On success returns 0 and the caller owns
 * *out (seal_ring_free()); a file that group or others may read is loaded
 * with a warning in the log. Returns CHOREO_ECONFIG with err filled for a
 * file that can't be read or isn't a valid key file, CHOREO_ENOMEM, or
 * CHOREO_ECRYPTO when libsodium can't be initialised. */
int seal_ring_load(const char *path, struct seal_ring **out,
                   struct seal_error *err);

/* The same from len bytes of text; name is used in error messages. */
int seal_ring_parse(const char *text, size_t len, const char *name,
                    struct seal_ring **out, struct seal_error *err);

/* Zero the keys and release the ring; NULL is fine. */
void seal_ring_free(struct seal_ring *r);

/* Keys in the ring (1..SEAL_KEYS_MAX). */
size_t seal_ring_size(const struct seal_ring *r);

/* Seal len bytes of msg with the ring's first key into out (outsize bytes,
 * at least len + SEAL_OVERHEAD). Returns 0 and *outlen, or CHOREO_ETOOBIG
 * when the sealed message would exceed CHOREO_MSG_MAX or outsize. */
int seal_box(const struct seal_ring *r, const void *msg, size_t len,
             unsigned char *out, size_t outsize, size_t *outlen);

/* Open a sealed message of len bytes into out (outsize bytes, at least
 * len - SEAL_OVERHEAD), trying every key of the ring. Returns 0 and
 * *outlen (and *key, the index of the key that opened it, if key is not
 * NULL); CHOREO_ECRYPTO when no key opens it (too short, tampered, another
 * key, plain text); CHOREO_ETOOBIG when out is too small. */
int seal_open(const struct seal_ring *r, const void *box, size_t len,
              unsigned char *out, size_t outsize, size_t *outlen, size_t *key);

/* seal_box and seal_open into a buffer they allocate: on success the
 * caller owns *out (free()). Also CHOREO_ENOMEM. */
int seal_box_alloc(const struct seal_ring *r, const void *msg, size_t len,
                   unsigned char **out, size_t *outlen);
int seal_open_alloc(const struct seal_ring *r, const void *box, size_t len,
                    unsigned char **out, size_t *outlen);

#endif
