/*
 * fuzz_wire.c — libFuzzer target for the message decoder (agent/wire.c),
 * the first code every byte from the network reaches on a cluster without
 * a key, and the second (after seal_open) on one with a key.
 *
 * Beyond "no crash, no leak, no undefined behaviour", it checks the codec's
 * own promise: whatever the decoder accepts, the encoder writes back as a
 * message the decoder accepts again and that encodes to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Encode m, decode the result, encode again: both encodings must agree. */
static void round_trip(const struct wire_msg *m) {
  struct wire_error err;
  struct wire_msg again;
  char *out = NULL, *out2 = NULL;
  size_t len = 0, len2 = 0;
  int rv = wire_encode(m, &out, &len);

  /* Escapes may make the re-encoding longer than what was received. */
  if (rv == CHOREO_ETOOBIG)
    return;
  if (rv != 0)
    abort(); /* accepted by the decoder, refused by the encoder */
  if (wire_msg_init(&again) != 0)
    abort();
  if (wire_decode(out, len, &again, &err) != 0)
    abort(); /* our own encoding refused */
  if (wire_encode(&again, &out2, &len2) != 0 || len2 != len ||
      memcmp(out, out2, len) != 0)
    abort(); /* not a fixed point */
  free(out);
  free(out2);
  wire_msg_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct wire_error err;
  struct wire_msg m;

  if (wire_msg_init(&m) != 0)
    return 0;
  if (wire_decode(data, size, &m, &err) == 0)
    round_trip(&m);
  else if (err.reason == WIRE_OK ||
           strnlen(err.detail, sizeof(err.detail)) == sizeof(err.detail))
    abort(); /* a refusal must say why, in a terminated string */
  wire_msg_free(&m);
  return 0;
}
