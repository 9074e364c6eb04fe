/*
 * batch.c — relay batches: framing, checking and building; see batch.h.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "choreo.h"

static const unsigned char magic[BATCH_MAGIC_LEN] = {0x00, 'c', 'h', 'o',
                                                     'r',  'e', 'o', 0x01};

static size_t get_len(const unsigned char *p) {
  return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

static void put_len(unsigned char *p, size_t n) {
  p[0] = (unsigned char)(n >> 24);
  p[1] = (unsigned char)(n >> 16);
  p[2] = (unsigned char)(n >> 8);
  p[3] = (unsigned char)n;
}

bool batch_is(const void *buf, size_t len) {
  return len >= BATCH_MAGIC_LEN && memcmp(buf, magic, BATCH_MAGIC_LEN) == 0;
}

size_t batch_check(const void *buf, size_t len) {
  const unsigned char *p = buf;
  size_t pos = BATCH_MAGIC_LEN, frames = 0;

  if (!batch_is(buf, len) || len > CHOREO_MSG_MAX)
    return 0;
  while (pos < len) {
    size_t n;
    if (len - pos < BATCH_FRAME_HEADER || frames == BATCH_FRAMES_MAX)
      return 0;
    n = get_len(p + pos);
    pos += BATCH_FRAME_HEADER;
    if (n == 0 || n > len - pos)
      return 0;
    pos += n;
    frames++;
  }
  return frames;
}

bool batch_next(const void *buf, size_t len, size_t *pos, const void **frame,
                size_t *flen) {
  const unsigned char *p = buf;
  size_t n;

  if (*pos == 0)
    *pos = BATCH_MAGIC_LEN;
  if (*pos >= len || len - *pos < BATCH_FRAME_HEADER)
    return false;
  n = get_len(p + *pos);
  if (n == 0 || n > len - *pos - BATCH_FRAME_HEADER)
    return false;
  *frame = p + *pos + BATCH_FRAME_HEADER;
  *flen = n;
  *pos += BATCH_FRAME_HEADER + n;
  return true;
}

int batch_init(struct batch *b) {
  b->buf = malloc(CHOREO_MSG_MAX);
  b->len = b->frames = 0;
  return b->buf != NULL ? 0 : CHOREO_ENOMEM;
}

void batch_free(struct batch *b) {
  free(b->buf);
  b->buf = NULL;
  b->len = b->frames = 0;
}

void batch_reset(struct batch *b) {
  b->len = b->frames = 0;
}

bool batch_fits(const struct batch *b, size_t flen) {
  size_t used = (b->len > 0 ? b->len : BATCH_MAGIC_LEN) + BATCH_FRAME_HEADER;
  return flen > 0 && b->frames < BATCH_FRAMES_MAX && used < CHOREO_MSG_MAX &&
         flen <= CHOREO_MSG_MAX - used;
}

int batch_add(struct batch *b, const void *frame, size_t flen) {
  if (flen == 0)
    return CHOREO_EINVAL;
  if (!batch_fits(b, flen))
    return CHOREO_ETOOBIG;
  if (b->len == 0) {
    memcpy(b->buf, magic, BATCH_MAGIC_LEN);
    b->len = BATCH_MAGIC_LEN;
  }
  put_len(b->buf + b->len, flen);
  memcpy(b->buf + b->len + BATCH_FRAME_HEADER, frame, flen);
  b->len += BATCH_FRAME_HEADER + flen;
  b->frames++;
  return 0;
}
