/*
 * fuzz_sealed.c — libFuzzer target for what an agent with a key does with
 * a message from the network (agent_on_message): seal_open with every key
 * of the ring, then wire_decode of what opened.
 *
 * The first byte picks who sent the rest:
 *   even: anyone — the bytes are opened as they are (they almost never
 *         open: this is the path of every attacker without the key);
 *   odd:  a key holder — the bytes are first sealed with the ring's second
 *         key, so they open and reach the decoder, as from a member (or an
 *         insider, docs/SECURITY.md) sending arbitrary content.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seal.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fixed test keys, never used outside tests. The agent's ring holds two,
 * so that opening tries more than one; members seal with the second. */
#define KEY_1 "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define KEY_2 "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="

struct rings {
  struct seal_ring *agent;  /* KEY_1, KEY_2 */
  struct seal_ring *member; /* KEY_2 */
};

static struct seal_ring *parse(const char *text) {
  struct seal_ring *r = NULL;
  struct seal_error err;
  if (seal_ring_parse(text, strlen(text), "test", &r, &err) != 0)
    abort();
  return r;
}

/* The harness's only state, built once. */
static const struct rings *rings(void) {
  static struct rings k;
  if (k.agent == NULL) {
    k.agent = parse("# fuzzing keys\n" KEY_1 "\n" KEY_2 "\n");
    k.member = parse(KEY_2 "\n");
  }
  return &k;
}

/* What agent_on_message does once a message has opened. */
static void decode(const unsigned char *buf, size_t len) {
  struct wire_error err;
  struct wire_msg m;
  if (wire_msg_init(&m) != 0)
    return;
  (void)wire_decode(buf, len, &m, &err);
  wire_msg_free(&m);
}

static void from_anyone(const struct rings *k, const uint8_t *data,
                        size_t size) {
  unsigned char *plain = NULL;
  size_t len = 0;
  if (seal_open_alloc(k->agent, data, size, &plain, &len) == 0)
    decode(plain, len);
  free(plain);
}

static void from_member(const struct rings *k, const uint8_t *data,
                        size_t size) {
  unsigned char *box = NULL, *plain = NULL;
  size_t boxlen = 0, len = 0;

  if (seal_box_alloc(k->member, data, size, &box, &boxlen) != 0)
    return; /* too big to seal: never sent */
  if (seal_open_alloc(k->agent, box, boxlen, &plain, &len) != 0 ||
      len != size || memcmp(plain, data, len) != 0)
    abort(); /* a sealed message must open to what was sealed */
  decode(plain, len);
  free(plain);
  free(box);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  if ((data[0] & 1) == 0)
    from_anyone(rings(), data + 1, size - 1);
  else
    from_member(rings(), data + 1, size - 1);
  return 0;
}
