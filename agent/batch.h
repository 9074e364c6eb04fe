/*
 * batch.h — relay batches: several messages, exactly as their senders
 * published them, in one nanomsg message (docs/PROTOCOL.md "Relays").
 *
 *   batch = magic (8 bytes: 00 63 68 6f 72 65 6f 01, NUL "choreo" 1)
 *           frame+
 *   frame = length (4 bytes, big-endian, 1..CHOREO_MSG_MAX) message
 *
 * The whole batch is at most CHOREO_MSG_MAX bytes, like any message. A
 * batch is a container and nothing more: it carries no MAC of its own,
 * because every frame is opened, checked and admitted on its own exactly
 * as if its sender had sent it directly. A plain message starts with "{"
 * and a sealed one with a random nonce, so the magic's first byte tells a
 * batch apart (a sealed message whose nonce begins with the eight bytes
 * of the magic, one in 2^64, is read as a batch, fails and is dropped like
 * any lost message).
 */
#ifndef CHOREO_BATCH_H
#define CHOREO_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#define BATCH_MAGIC_LEN 8
#define BATCH_FRAME_HEADER 4
/* The most frames one batch may hold; a heartbeat is a few hundred bytes,
 * so a full batch of them holds far fewer. */
#define BATCH_FRAMES_MAX 1024

/* Whether buf begins with the batch magic. */
bool batch_is(const void *buf, size_t len);

/* Check the framing of a whole batch: the magic, then frames that fill it
 * exactly, each 1..CHOREO_MSG_MAX bytes, at most BATCH_FRAMES_MAX of them,
 * the whole at most CHOREO_MSG_MAX. Returns the number of frames (>= 1),
 * or 0 when the batch is malformed (nothing in it is to be used). */
size_t batch_check(const void *buf, size_t len);

/* Iterate over the frames of a batch that batch_check accepted: start
 * with *pos = 0; each call sets *frame and *flen and returns true, until
 * false at the end. */
bool batch_next(const void *buf, size_t len, size_t *pos, const void **frame,
                size_t *flen);

/* A batch being built, in a buffer of CHOREO_MSG_MAX bytes. */
struct batch {
  unsigned char *buf; /* owned; NULL until batch_init */
  size_t len;         /* bytes used, the magic included; 0: empty */
  size_t frames;
};

/* Returns 0 or CHOREO_ENOMEM. */
int batch_init(struct batch *b);
void batch_free(struct batch *b);
/* Empty b, keeping its buffer. */
void batch_reset(struct batch *b);
/* Whether a frame of flen bytes fits in b as it is now. */
bool batch_fits(const struct batch *b, size_t flen);
/* Append one message. Returns 0, or CHOREO_ETOOBIG when it doesn't fit
 * (b unchanged: send b and start again; a message that doesn't fit an
 * empty batch is sent alone), or CHOREO_EINVAL for an empty message. */
int batch_add(struct batch *b, const void *frame, size_t flen);

#endif
