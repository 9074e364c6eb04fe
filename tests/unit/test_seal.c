/*
 * test_seal.c — the key ring and message sealing (agent/seal.c): round
 * trips, every way a sealed message can be wrong (another key, a changed
 * byte, cut short, plain text), key rotation, and every way a key file can
 * be refused, each naming the file and the line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "seal.h"
#include "util.h"

#define KEY_TEXT_MAX                                                           \
  sodium_base64_ENCODED_LEN(SEAL_KEY_BYTES, sodium_base64_VARIANT_ORIGINAL)

static const char sample[] =
    "{\"v\":1,\"cluster\":\"shop\",\"from\":\"db1\",\"inc\":1,\"seq\":2,"
    "\"type\":\"state\"}";

/* The base64 text of a key whose bytes are all `fill`. */
static const char *key_text(unsigned char fill, char out[KEY_TEXT_MAX]) {
  unsigned char key[SEAL_KEY_BYTES];
  memset(key, fill, sizeof(key));
  return sodium_bin2base64(out, KEY_TEXT_MAX, key, sizeof(key),
                           sodium_base64_VARIANT_ORIGINAL);
}

/* A ring of the keys filled with fills[0..n-1], in that order. */
static struct seal_ring *ring_of(const unsigned char *fills, size_t n) {
  char text[1024] = "", k[KEY_TEXT_MAX];
  struct seal_ring *r = NULL;
  struct seal_error err;

  for (size_t i = 0; i < n; i++) {
    strcat(text, key_text(fills[i], k));
    strcat(text, "\n");
  }
  assert_int_equal(seal_ring_parse(text, strlen(text), "test", &r, &err), 0);
  assert_non_null(r);
  assert_int_equal(seal_ring_size(r), n);
  return r;
}

static size_t seal_sample(const struct seal_ring *r, unsigned char *box) {
  size_t len = 0;
  assert_int_equal(seal_box(r, sample, strlen(sample), box,
                            strlen(sample) + SEAL_OVERHEAD, &len),
                   0);
  assert_int_equal(len, strlen(sample) + SEAL_OVERHEAD);
  return len;
}

/* ---- messages ---- */

static void seal_round_trips_a_message(void **state) {
  struct seal_ring *r = ring_of((const unsigned char[]){1}, 1);
  unsigned char box[256], plain[256];
  size_t len = seal_sample(r, box), out = 0, key = 99;

  assert_int_equal(seal_open(r, box, len, plain, sizeof(plain), &out, &key), 0);
  assert_int_equal(out, strlen(sample));
  assert_memory_equal(plain, sample, out);
  assert_int_equal(key, 0);
  assert_null(memmem(box, len, "cluster", 7)); /* not in clear */
  seal_ring_free(r);
}

static void seal_uses_a_new_nonce_every_time(void **state) {
  struct seal_ring *r = ring_of((const unsigned char[]){1}, 1);
  unsigned char a[256], b[256];
  size_t len = seal_sample(r, a);

  seal_sample(r, b);
  assert_memory_not_equal(a, b, SEAL_NONCE_BYTES);
  assert_memory_not_equal(a + SEAL_NONCE_BYTES, b + SEAL_NONCE_BYTES,
                          len - SEAL_NONCE_BYTES);
  seal_ring_free(r);
}

static void seal_refuses_a_message_sealed_with_another_key(void **state) {
  struct seal_ring *r1 = ring_of((const unsigned char[]){1}, 1);
  struct seal_ring *r2 = ring_of((const unsigned char[]){2, 3}, 2);
  unsigned char box[256], plain[256];
  size_t len = seal_sample(r1, box), out = 0;

  assert_int_equal(seal_open(r2, box, len, plain, sizeof(plain), &out, NULL),
                   CHOREO_ECRYPTO);
  seal_ring_free(r1);
  seal_ring_free(r2);
}

static void seal_refuses_every_changed_byte(void **state) {
  struct seal_ring *r = ring_of((const unsigned char[]){1}, 1);
  unsigned char box[256], plain[256];
  size_t len = seal_sample(r, box), out = 0;

  /* The nonce, the MAC and the ciphertext are all covered. */
  for (size_t i = 0; i < len; i++) {
    box[i] ^= 0x01;
    assert_int_equal(seal_open(r, box, len, plain, sizeof(plain), &out, NULL),
                     CHOREO_ECRYPTO);
    box[i] ^= 0x01;
  }
  assert_int_equal(seal_open(r, box, len, plain, sizeof(plain), &out, NULL), 0);
  seal_ring_free(r);
}

static void seal_refuses_a_truncated_or_extended_message(void **state) {
  struct seal_ring *r = ring_of((const unsigned char[]){1}, 1);
  unsigned char box[256] = {0}, plain[256];
  size_t len = seal_sample(r, box), out = 0;

  for (size_t n = 0; n < len; n++)
    assert_int_equal(seal_open(r, box, n, plain, sizeof(plain), &out, NULL),
                     CHOREO_ECRYPTO);
  assert_int_equal(seal_open(r, box, len + 1, plain, sizeof(plain), &out, NULL),
                   CHOREO_ECRYPTO);
  seal_ring_free(r);
}

static void seal_refuses_plain_text(void **state) {
  struct seal_ring *r = ring_of((const unsigned char[]){1}, 1);
  unsigned char plain[256];
  size_t out = 0;

  assert_int_equal(
      seal_open(r, sample, strlen(sample), plain, sizeof(plain), &out, NULL),
      CHOREO_ECRYPTO);
  seal_ring_free(r);
}

static void seal_round_trips_an_empty_and_a_largest_message(void **state) {
  struct seal_ring *r = ring_of((const unsigned char[]){1}, 1);
  size_t max = CHOREO_MSG_MAX - SEAL_OVERHEAD, len = 0, out = 0;
  unsigned char *msg = calloc(1, max + 1), *box = NULL, *plain = NULL;

  assert_non_null(msg);
  memset(msg, 'x', max + 1);
  assert_int_equal(seal_box_alloc(r, msg, 0, &box, &len), 0);
  assert_int_equal(len, SEAL_OVERHEAD);
  assert_int_equal(seal_open_alloc(r, box, len, &plain, &out), 0);
  assert_int_equal(out, 0);
  free(box);
  free(plain);
  assert_int_equal(seal_box_alloc(r, msg, max, &box, &len), 0);
  assert_int_equal(len, CHOREO_MSG_MAX);
  assert_int_equal(seal_open_alloc(r, box, len, &plain, &out), 0);
  assert_int_equal(out, max);
  assert_memory_equal(plain, msg, max);
  free(box);
  free(plain);
  assert_int_equal(seal_box_alloc(r, msg, max + 1, &box, &len), CHOREO_ETOOBIG);
  assert_null(box);
  free(msg);
  seal_ring_free(r);
}

static void seal_refuses_output_buffers_too_small(void **state) {
  struct seal_ring *r = ring_of((const unsigned char[]){1}, 1);
  unsigned char box[256], plain[256];
  size_t len = seal_sample(r, box), out = 0;

  assert_int_equal(seal_box(r, sample, strlen(sample), box,
                            strlen(sample) + SEAL_OVERHEAD - 1, &out),
                   CHOREO_ETOOBIG);
  assert_int_equal(
      seal_open(r, box, len, plain, len - SEAL_OVERHEAD - 1, &out, NULL),
      CHOREO_ETOOBIG);
  seal_ring_free(r);
}

static void seal_opens_with_an_old_key_listed_second(void **state) {
  struct seal_ring *old = ring_of((const unsigned char[]){1}, 1);
  struct seal_ring *both = ring_of((const unsigned char[]){1, 2}, 2);
  struct seal_ring *flip = ring_of((const unsigned char[]){2, 1}, 2);
  struct seal_ring *fresh = ring_of((const unsigned char[]){2}, 1);
  unsigned char box[256], plain[256];
  size_t len, out = 0, key = 99;

  /* Step 1: the new key added second; the old one still seals. */
  len = seal_sample(both, box);
  assert_int_equal(seal_open(old, box, len, plain, sizeof(plain), &out, NULL),
                   0);
  /* Step 2: the new key first; nodes still at step 1 open it. */
  len = seal_sample(flip, box);
  assert_int_equal(seal_open(both, box, len, plain, sizeof(plain), &out, &key),
                   0);
  assert_int_equal(key, 1);
  /* ... and nodes at step 2 open what those at step 1 still seal. */
  len = seal_sample(both, box);
  assert_int_equal(seal_open(flip, box, len, plain, sizeof(plain), &out, &key),
                   0);
  assert_int_equal(key, 1);
  /* Step 3: the old key removed; nothing sealed with it opens any more. */
  len = seal_sample(old, box);
  assert_int_equal(seal_open(fresh, box, len, plain, sizeof(plain), &out, NULL),
                   CHOREO_ECRYPTO);
  seal_ring_free(old);
  seal_ring_free(both);
  seal_ring_free(flip);
  seal_ring_free(fresh);
}

/* ---- key files ---- */

static void parse_fails(const char *text, unsigned line, const char *msg) {
  struct seal_ring *r = (struct seal_ring *)&r;
  struct seal_error err;

  assert_int_equal(seal_ring_parse(text, strlen(text), "/etc/k", &r, &err),
                   CHOREO_ECONFIG);
  assert_null(r);
  assert_int_equal(err.line, line);
  assert_string_equal(err.text, msg);
}

static void seal_ignores_blank_lines_comments_and_blanks(void **state) {
  char k1[KEY_TEXT_MAX], k2[KEY_TEXT_MAX], text[512];
  struct seal_ring *r = NULL, *one = ring_of((const unsigned char[]){1}, 1);
  struct seal_error err;
  unsigned char box[256], plain[256];
  size_t len, out = 0, key = 99;

  snprintf(text, sizeof(text),
           "# cluster keys\n\n   \t\n  %s  \r\n\t# old key, remove after "
           "the rotation\n%s",
           key_text(2, k2), key_text(1, k1));
  assert_int_equal(seal_ring_parse(text, strlen(text), "k", &r, &err), 0);
  assert_int_equal(seal_ring_size(r), 2);
  len = seal_sample(one, box);
  assert_int_equal(seal_open(r, box, len, plain, sizeof(plain), &out, &key), 0);
  assert_int_equal(key, 1);
  seal_ring_free(r);
  seal_ring_free(one);
}

static void seal_names_the_line_of_a_bad_key(void **state) {
  char k[KEY_TEXT_MAX], text[512];
  const char *bad = "/etc/k:4: not a base64-encoded 32-byte key (make one "
                    "with choreo keygen)";

  snprintf(text, sizeof(text), "# keys\n%s\n\nnot base64!\n", key_text(1, k));
  parse_fails(text, 4, bad);
  /* Valid base64 of 16 bytes, and of 33. */
  parse_fails("AAAAAAAAAAAAAAAAAAAAAA==\n", 1,
              "/etc/k:1: not a base64-encoded 32-byte key (make one with "
              "choreo keygen)");
  parse_fails("\n\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", 3,
              "/etc/k:3: not a base64-encoded 32-byte key (make one with "
              "choreo keygen)");
  /* A key followed by something else on its line. */
  snprintf(text, sizeof(text), "%s # main\n", key_text(1, k));
  parse_fails(text, 1,
              "/etc/k:1: not a base64-encoded 32-byte key (make one with "
              "choreo keygen)");
}

static void seal_refuses_a_nul_byte_in_a_key_line(void **state) {
  char k[KEY_TEXT_MAX], text[128];
  struct seal_ring *r = NULL;
  struct seal_error err;
  size_t n;

  key_text(1, k);
  n = (size_t)snprintf(text, sizeof(text), "%s\n%s\n", k, k);
  text[n - 3] = '\0';
  assert_int_equal(seal_ring_parse(text, n, "k", &r, &err), CHOREO_ECONFIG);
  assert_int_equal(err.line, 2);
  assert_null(r);
}

static void seal_refuses_more_than_eight_keys(void **state) {
  char text[1024] = "", k[KEY_TEXT_MAX];
  struct seal_ring *r = NULL;
  struct seal_error err;

  for (unsigned char i = 1; i <= SEAL_KEYS_MAX; i++) {
    strcat(text, key_text(i, k));
    strcat(text, "\n");
  }
  assert_int_equal(seal_ring_parse(text, strlen(text), "k", &r, &err), 0);
  assert_int_equal(seal_ring_size(r), SEAL_KEYS_MAX);
  seal_ring_free(r);
  strcat(text, "# one too many\n");
  strcat(text, key_text(9, k));
  parse_fails(text, SEAL_KEYS_MAX + 2, "/etc/k:10: more than 8 keys");
}

static void seal_refuses_a_file_without_keys(void **state) {
  const char *msg = "/etc/k: no key in the file (make one with choreo keygen)";
  parse_fails("", 0, msg);
  parse_fails("\n\n  \r\n", 0, msg);
  parse_fails("# nothing but comments\n# here\n", 0, msg);
}

/* ---- key files on disk ---- */

struct dir {
  char path[64];
  char file[128];
};

static int dir_setup(void **state) {
  struct dir *d = calloc(1, sizeof(*d));
  assert_non_null(d);
  snprintf(d->path, sizeof(d->path), "/tmp/test_seal.XXXXXX");
  assert_non_null(mkdtemp(d->path));
  snprintf(d->file, sizeof(d->file), "%s/cluster.key", d->path);
  *state = d;
  return 0;
}

static int dir_teardown(void **state) {
  struct dir *d = *state;
  unlink(d->file);
  rmdir(d->path);
  free(d);
  return 0;
}

static void put_file(const char *path, const char *text, size_t len,
                     mode_t mode) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(chmod(path, mode), 0);
}

static void seal_loads_a_key_file(void **state) {
  struct dir *d = *state;
  char k1[KEY_TEXT_MAX], k2[KEY_TEXT_MAX], text[256];
  struct seal_ring *r = NULL;
  struct seal_error err;

  snprintf(text, sizeof(text), "%s\n%s\n", key_text(1, k1), key_text(2, k2));
  put_file(d->file, text, strlen(text), 0600);
  assert_int_equal(seal_ring_load(d->file, &r, &err), 0);
  assert_int_equal(seal_ring_size(r), 2);
  seal_ring_free(r);
  /* Readable by others: loaded, with a warning in the log. */
  chmod(d->file, 0644);
  assert_int_equal(seal_ring_load(d->file, &r, &err), 0);
  seal_ring_free(r);
}

static void seal_names_the_file_it_cannot_load(void **state) {
  struct dir *d = *state;
  struct seal_ring *r = NULL;
  struct seal_error err;
  char want[256], *big;

  assert_int_equal(seal_ring_load(d->file, &r, &err), CHOREO_ECONFIG);
  snprintf(want, sizeof(want), "%s: cannot open: No such file or directory",
           d->file);
  assert_string_equal(err.text, want);
  assert_int_equal(seal_ring_load(d->path, &r, &err), CHOREO_ECONFIG);
  snprintf(want, sizeof(want), "%s: not a regular file", d->path);
  assert_string_equal(err.text, want);
  put_file(d->file, "garbage\n", 8, 0600);
  assert_int_equal(seal_ring_load(d->file, &r, &err), CHOREO_ECONFIG);
  snprintf(want, sizeof(want),
           "%s:1: not a base64-encoded 32-byte key (make one with choreo "
           "keygen)",
           d->file);
  assert_string_equal(err.text, want);
  big = malloc(SEAL_FILE_MAX + 1);
  assert_non_null(big);
  memset(big, '\n', SEAL_FILE_MAX + 1);
  put_file(d->file, big, SEAL_FILE_MAX + 1, 0600);
  free(big);
  assert_int_equal(seal_ring_load(d->file, &r, &err), CHOREO_ECONFIG);
  snprintf(want, sizeof(want), "%s: larger than 16384 bytes", d->file);
  assert_string_equal(err.text, want);
  assert_null(r);
}

#define T(f) cmocka_unit_test(f)
#define TD(f) cmocka_unit_test_setup_teardown(f, dir_setup, dir_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(seal_round_trips_a_message),
      T(seal_uses_a_new_nonce_every_time),
      T(seal_refuses_a_message_sealed_with_another_key),
      T(seal_refuses_every_changed_byte),
      T(seal_refuses_a_truncated_or_extended_message),
      T(seal_refuses_plain_text),
      T(seal_round_trips_an_empty_and_a_largest_message),
      T(seal_refuses_output_buffers_too_small),
      T(seal_opens_with_an_old_key_listed_second),
      T(seal_ignores_blank_lines_comments_and_blanks),
      T(seal_names_the_line_of_a_bad_key),
      T(seal_refuses_a_nul_byte_in_a_key_line),
      T(seal_refuses_more_than_eight_keys),
      T(seal_refuses_a_file_without_keys),
      TD(seal_loads_a_key_file),
      TD(seal_names_the_file_it_cannot_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
