/*
 * seal.c — the cluster key ring (read from network.key_file) and the
 * sealing and opening of messages with libsodium's crypto_secretbox; see
 * seal.h for the file format and the message layout.
 *
 * The keys live in memory from sodium_malloc() (guard pages, locked when
 * the system allows) and are wiped with sodium_memzero() when the ring is
 * freed; the text of the key file is wiped as soon as it is parsed. No
 * error message ever quotes a line of the file: it might hold a key.
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

#include "log.h"
#include "seal.h"

_Static_assert(SEAL_KEY_BYTES == crypto_secretbox_KEYBYTES, "key size");
_Static_assert(SEAL_NONCE_BYTES == crypto_secretbox_NONCEBYTES, "nonce");
_Static_assert(SEAL_MAC_BYTES == crypto_secretbox_MACBYTES, "mac");

struct seal_ring {
  size_t n;
  unsigned char keys[SEAL_KEYS_MAX][SEAL_KEY_BYTES];
};
/* sodium_malloc() puts the block at the end of a page: its size keeps the
 * struct aligned. */
_Static_assert(sizeof(struct seal_ring) % sizeof(size_t) == 0, "alignment");

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int
refuse(struct seal_error *err, const char *name, unsigned line, const char *fmt,
       ...) {
  char msg[160];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  err->line = line;
  if (line > 0)
    snprintf(err->text, sizeof(err->text), "%s:%u: %s", name, line, msg);
  else
    snprintf(err->text, sizeof(err->text), "%s: %s", name, msg);
  return CHOREO_ECONFIG;
}

/* ---- the ring ---- */

static struct seal_ring *ring_new(void) {
  struct seal_ring *r;
  if (sodium_init() < 0)
    return NULL;
  r = sodium_malloc(sizeof(*r));
  if (r != NULL)
    sodium_memzero(r, sizeof(*r));
  return r;
}

void seal_ring_free(struct seal_ring *r) {
  if (r == NULL)
    return;
  sodium_memzero(r, sizeof(*r));
  sodium_free(r);
}

size_t seal_ring_size(const struct seal_ring *r) {
  return r->n;
}

/* Without the blanks around it and a trailing CR; false for a line that
 * holds nothing but blanks or a comment. */
static bool trim(const char **s, size_t *len) {
  const char *p = *s, *end = *s + *len;
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
    end--;
  *s = p;
  *len = (size_t)(end - p);
  return *len > 0 && *p != '#';
}

static int add_key(struct seal_ring *r, const char *s, size_t len,
                   const char *name, unsigned line, struct seal_error *err) {
  unsigned char key[SEAL_KEY_BYTES];
  const char *end = NULL;
  size_t n = 0;
  int rv;

  if (r->n == SEAL_KEYS_MAX)
    return refuse(err, name, line, "more than %d keys", SEAL_KEYS_MAX);
  rv = sodium_base642bin(key, sizeof(key), s, len, NULL, &n, &end,
                         sodium_base64_VARIANT_ORIGINAL);
  if (rv != 0 || n != sizeof(key) || end != s + len) {
    sodium_memzero(key, sizeof(key));
    return refuse(err, name, line,
                  "not a base64-encoded %d-byte key (make one with choreo "
                  "keygen)",
                  SEAL_KEY_BYTES);
  }
  memcpy(r->keys[r->n++], key, sizeof(key));
  sodium_memzero(key, sizeof(key));
  return 0;
}

int seal_ring_parse(const char *text, size_t len, const char *name,
                    struct seal_ring **out, struct seal_error *err) {
  struct seal_ring *r = ring_new();
  const char *p = text, *end = text + len;
  unsigned line = 0;
  int rv = 0;

  *out = NULL;
  err->line = 0;
  err->text[0] = '\0';
  if (r == NULL)
    return sodium_init() < 0 ? CHOREO_ECRYPTO : CHOREO_ENOMEM;
  while (p < end && rv == 0) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *s = p;
    size_t n = (size_t)((nl != NULL ? nl : end) - p);

    line++;
    p = nl != NULL ? nl + 1 : end;
    if (trim(&s, &n))
      rv = add_key(r, s, n, name, line, err);
  }
  if (rv == 0 && r->n == 0)
    rv = refuse(err, name, 0,
                "no key in the file (make one with choreo keygen)");
  if (rv != 0)
    goto fail;
  *out = r;
  return 0;
fail:
  seal_ring_free(r);
  return rv;
}

/* Read the whole file into buf[SEAL_FILE_MAX + 1]; *len bytes. */
static int read_key_file(const char *path, char *buf, size_t *len,
                         struct seal_error *err) {
  struct stat st;
  ssize_t k;
  int fd, rv = 0;

  /* O_NONBLOCK: a FIFO put there by mistake must not hang the agent. */
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0)
    return refuse(err, path, 0, "cannot open: %s", strerror(errno));
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rv = refuse(err, path, 0, "not a regular file");
    goto done;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
    log_warn("network.key_file: %s: group or others may access it (mode "
             "%04o); restrict it with chmod 600",
             path, (unsigned)(st.st_mode & 07777));
  *len = 0;
  while (*len <= SEAL_FILE_MAX) {
    k = read(fd, buf + *len, SEAL_FILE_MAX + 1 - *len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      rv = refuse(err, path, 0, "cannot read: %s", strerror(errno));
      goto done;
    }
    if (k == 0)
      break;
    *len += (size_t)k;
  }
  if (*len > SEAL_FILE_MAX)
    rv = refuse(err, path, 0, "larger than %d bytes", SEAL_FILE_MAX);
done:
  close(fd);
  return rv;
}

int seal_ring_load(const char *path, struct seal_ring **out,
                   struct seal_error *err) {
  char buf[SEAL_FILE_MAX + 1];
  size_t len = 0;
  int rv;

  *out = NULL;
  err->line = 0;
  err->text[0] = '\0';
  rv = read_key_file(path, buf, &len, err);
  if (rv == 0)
    rv = seal_ring_parse(buf, len, path, out, err);
  sodium_memzero(buf, sizeof(buf));
  return rv;
}

/* ---- messages ---- */

int seal_box(const struct seal_ring *r, const void *msg, size_t len,
             unsigned char *out, size_t outsize, size_t *outlen) {
  if (len > CHOREO_MSG_MAX - SEAL_OVERHEAD || outsize < len + SEAL_OVERHEAD)
    return CHOREO_ETOOBIG;
  randombytes_buf(out, SEAL_NONCE_BYTES);
  crypto_secretbox_easy(out + SEAL_NONCE_BYTES, msg, len, out, r->keys[0]);
  *outlen = len + SEAL_OVERHEAD;
  return 0;
}

int seal_open(const struct seal_ring *r, const void *box, size_t len,
              unsigned char *out, size_t outsize, size_t *outlen, size_t *key) {
  const unsigned char *b = box;

  if (len < SEAL_OVERHEAD)
    return CHOREO_ECRYPTO;
  if (outsize < len - SEAL_OVERHEAD)
    return CHOREO_ETOOBIG;
  for (size_t i = 0; i < r->n; i++) {
    if (crypto_secretbox_open_easy(out, b + SEAL_NONCE_BYTES,
                                   len - SEAL_NONCE_BYTES, b,
                                   r->keys[i]) == 0) {
      *outlen = len - SEAL_OVERHEAD;
      if (key != NULL)
        *key = i;
      return 0;
    }
  }
  return CHOREO_ECRYPTO;
}

int seal_box_alloc(const struct seal_ring *r, const void *msg, size_t len,
                   unsigned char **out, size_t *outlen) {
  int rv;

  *out = NULL;
  if (len > CHOREO_MSG_MAX - SEAL_OVERHEAD)
    return CHOREO_ETOOBIG;
  if ((*out = malloc(len + SEAL_OVERHEAD)) == NULL)
    return CHOREO_ENOMEM;
  rv = seal_box(r, msg, len, *out, len + SEAL_OVERHEAD, outlen);
  if (rv != 0) {
    free(*out);
    *out = NULL;
  }
  return rv;
}

int seal_open_alloc(const struct seal_ring *r, const void *box, size_t len,
                    unsigned char **out, size_t *outlen) {
  int rv;

  *out = NULL;
  if (len < SEAL_OVERHEAD)
    return CHOREO_ECRYPTO;
  /* One byte more than the plain text, so that an empty one allocates. */
  if ((*out = malloc(len - SEAL_OVERHEAD + 1)) == NULL)
    return CHOREO_ENOMEM;
  rv = seal_open(r, box, len, *out, len - SEAL_OVERHEAD + 1, outlen, NULL);
  if (rv != 0) {
    free(*out);
    *out = NULL;
  }
  return rv;
}
