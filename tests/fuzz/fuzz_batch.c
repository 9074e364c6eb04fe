/*
 * fuzz_batch.c — libFuzzer target for relay batches (agent/batch.c), what
 * every agent reads first of a message that begins with the batch magic,
 * and then the message decoder for each frame, as agent_net.c does.
 *
 * Checks beyond "no crash, no leak, no undefined behaviour": what
 * batch_check accepts, batch_next walks frame by frame to the end and
 * batch_add builds again to the same bytes; on what it refuses, batch_next
 * still never reads outside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "choreo.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t frames = batch_check(data, size), seen = 0, pos = 0, flen;
  struct batch again;
  struct wire_error err;
  struct wire_msg m;
  const void *f;

  if (batch_init(&again) != 0 || wire_msg_init(&m) != 0)
    abort();
  while (batch_next(data, size, &pos, &f, &flen)) {
    const uint8_t *p = f;
    if (p < data || p + flen > data + size || flen == 0)
      abort(); /* a frame outside the input */
    seen++;
    if (frames == 0)
      continue;
    if (batch_add(&again, f, flen) != 0)
      abort(); /* accepted, but can't be built again */
    (void)wire_decode(f, flen, &m, &err);
  }
  if (frames != 0 && (seen != frames || again.len != size ||
                      memcmp(again.buf, data, size) != 0))
    abort(); /* accepted, but not walked or not rebuilt the same */
  wire_msg_free(&m);
  batch_free(&again);
  return 0;
}
