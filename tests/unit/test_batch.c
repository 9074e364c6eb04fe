/*
 * test_batch.c — relay batches: what is built is read back frame by frame,
 * and every malformed framing is refused whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "batch.h"
#include "choreo.h"

static const unsigned char magic[BATCH_MAGIC_LEN] = {0,   'c', 'h', 'o',
                                                     'r', 'e', 'o', 1};

/* A batch of raw bytes: the magic, then (length, bytes) pairs as given. */
static size_t frame(unsigned char *out, size_t at, uint32_t len,
                    const char *bytes, size_t n) {
  out[at] = (unsigned char)(len >> 24);
  out[at + 1] = (unsigned char)(len >> 16);
  out[at + 2] = (unsigned char)(len >> 8);
  out[at + 3] = (unsigned char)len;
  memcpy(out + at + 4, bytes, n);
  return at + 4 + n;
}

static void batch_round_trips_frames_in_order(void **state) {
  (void)state;
  struct batch b;
  const char *msgs[] = {"{\"a\":1}", "x", "{\"third\":true}"};
  const void *f;
  size_t flen, pos = 0, i = 0;

  assert_int_equal(batch_init(&b), 0);
  assert_int_equal(b.len, 0);
  for (size_t k = 0; k < 3; k++)
    assert_int_equal(batch_add(&b, msgs[k], strlen(msgs[k])), 0);
  assert_int_equal(b.frames, 3);
  assert_true(batch_is(b.buf, b.len));
  assert_int_equal(batch_check(b.buf, b.len), 3);
  while (batch_next(b.buf, b.len, &pos, &f, &flen)) {
    assert_true(i < 3);
    assert_int_equal(flen, strlen(msgs[i]));
    assert_memory_equal(f, msgs[i], flen);
    i++;
  }
  assert_int_equal(i, 3);
  batch_reset(&b);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.frames, 0);
  assert_int_equal(batch_add(&b, "y", 1), 0);
  assert_int_equal(batch_check(b.buf, b.len), 1);
  batch_free(&b);
}

static void batch_fills_up_to_msg_max_exactly(void **state) {
  (void)state;
  struct batch b;
  size_t room = CHOREO_MSG_MAX - BATCH_MAGIC_LEN - BATCH_FRAME_HEADER;
  char *big = calloc(1, CHOREO_MSG_MAX);

  assert_non_null(big);
  memset(big, 'z', CHOREO_MSG_MAX);
  assert_int_equal(batch_init(&b), 0);
  /* One byte too many for an empty batch: sent alone by the relay. */
  assert_false(batch_fits(&b, room + 1));
  assert_int_equal(batch_add(&b, big, room + 1), CHOREO_ETOOBIG);
  assert_int_equal(b.len, 0);
  assert_int_equal(batch_add(&b, big, 0), CHOREO_EINVAL);
  /* Two frames that fill it to the byte. */
  assert_int_equal(batch_add(&b, big, 100), 0);
  assert_false(batch_fits(&b, room - 100));
  assert_true(batch_fits(&b, room - 100 - BATCH_FRAME_HEADER));
  assert_int_equal(batch_add(&b, big, room - 100 - BATCH_FRAME_HEADER), 0);
  assert_int_equal(b.len, CHOREO_MSG_MAX);
  assert_int_equal(batch_check(b.buf, b.len), 2);
  assert_int_equal(batch_add(&b, big, 1), CHOREO_ETOOBIG);
  batch_free(&b);
  free(big);
}

static void batch_stops_at_frames_max(void **state) {
  (void)state;
  struct batch b;
  assert_int_equal(batch_init(&b), 0);
  for (size_t i = 0; i < BATCH_FRAMES_MAX; i++)
    assert_int_equal(batch_add(&b, "m", 1), 0);
  assert_false(batch_fits(&b, 1));
  assert_int_equal(batch_add(&b, "m", 1), CHOREO_ETOOBIG);
  assert_int_equal(batch_check(b.buf, b.len), BATCH_FRAMES_MAX);
  batch_free(&b);
}

static void batch_refuses_malformed_framing(void **state) {
  (void)state;
  unsigned char buf[256];
  size_t n;

  /* Plain and sealed messages are not batches. */
  assert_false(batch_is("{\"v\":1}", 7));
  assert_false(batch_is(magic, BATCH_MAGIC_LEN - 1));
  assert_int_equal(batch_check("{\"v\":1}", 7), 0);
  /* The magic alone: no frame. */
  memcpy(buf, magic, sizeof(magic));
  assert_int_equal(batch_check(buf, BATCH_MAGIC_LEN), 0);
  /* A header cut short. */
  assert_int_equal(batch_check(buf, BATCH_MAGIC_LEN + 3), 0);
  /* A frame of length 0. */
  n = frame(buf, BATCH_MAGIC_LEN, 0, "", 0);
  assert_int_equal(batch_check(buf, n), 0);
  /* A length past the end, by one byte. */
  n = frame(buf, BATCH_MAGIC_LEN, 4, "abc", 3);
  assert_int_equal(batch_check(buf, n), 0);
  /* A length that would wrap a 32-bit position. */
  n = frame(buf, BATCH_MAGIC_LEN, 0xffffffffu, "abc", 3);
  assert_int_equal(batch_check(buf, n), 0);
  /* A good frame, then trailing bytes that are not a whole header. */
  n = frame(buf, BATCH_MAGIC_LEN, 3, "abc", 3);
  assert_int_equal(batch_check(buf, n), 1);
  buf[n] = 0;
  assert_int_equal(batch_check(buf, n + 1), 0);
  /* A good frame, then one whose length runs past the end. */
  n = frame(buf, n, 10, "abc", 3);
  assert_int_equal(batch_check(buf, n), 0);
  /* One frame, well framed, but one byte larger than any message. */
  size_t total = CHOREO_MSG_MAX + 1;
  unsigned char *huge = calloc(1, total);
  assert_non_null(huge);
  memcpy(huge, magic, sizeof(magic));
  frame(huge, BATCH_MAGIC_LEN,
        (uint32_t)(total - BATCH_MAGIC_LEN - BATCH_FRAME_HEADER), "", 0);
  assert_int_equal(batch_check(huge, total), 0);
  assert_int_equal(batch_check(huge, total - 1), 0); /* and cut short */
  free(huge);
}

static void batch_next_stops_on_what_check_refuses(void **state) {
  (void)state;
  unsigned char buf[64];
  const void *f;
  size_t flen, pos = 0, n;

  memcpy(buf, magic, sizeof(magic));
  n = frame(buf, BATCH_MAGIC_LEN, 2, "ok", 2);
  n = frame(buf, n, 50, "short", 5);
  assert_true(batch_next(buf, n, &pos, &f, &flen));
  assert_int_equal(flen, 2);
  assert_false(batch_next(buf, n, &pos, &f, &flen));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(batch_round_trips_frames_in_order),
      cmocka_unit_test(batch_fills_up_to_msg_max_exactly),
      cmocka_unit_test(batch_stops_at_frames_max),
      cmocka_unit_test(batch_refuses_malformed_framing),
      cmocka_unit_test(batch_next_stops_on_what_check_refuses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
