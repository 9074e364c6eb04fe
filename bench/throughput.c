/*
 * throughput.c (bench) — how many messages one core can take in: a
 * typical `state` message (a record with two groups, three data keys and a
 * reason; about 330 bytes of JSON) is decoded (wire_decode, then
 * wire_msg_free) over and over, as agent_on_message does it, in three
 * settings:
 *
 *   plain     no key: wire_decode only;
 *   key       sealed with the only key of the ring: seal_open + decode;
 *   rotation  a ring of two keys, the message sealed with the second (as
 *             during a key rotation): one failed open first, then the
 *             right one, then decode.
 *
 * Each run lasts about RUN_MS of CPU time (of this thread: the figures
 * hold on a busy machine too); prints the median of RUNS runs of each, in
 * messages per CPU second, and the sealing rate too (seal_box of the same
 * message, which every publication pays once). Usage: bench-throughput
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "seal.h"
#include "wire.h"

#define RUNS 5
#define RUN_MS 1000
#define BATCH 1000

#define KEY_A "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
#define KEY_B "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI="

struct input {
  const struct seal_ring *ring; /* NULL: plain */
  const unsigned char *msg;
  size_t len;
  bool seal; /* measure seal_box instead of open + decode */
};

/* CPU time of this thread: what one core spends, whatever else the
 * machine runs meanwhile. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int typical(char **out, size_t *len) {
  struct wire_msg m;
  int rv = wire_msg_init(&m);

  if (rv != 0)
    return rv;
  m.type = WIRE_STATE;
  snprintf(m.cluster, sizeof(m.cluster), "shop");
  snprintf(m.from, sizeof(m.from), "db1");
  m.inc = m.rec.inc = 1764061200;
  m.seq = 4242;
  m.digest = 0x9f1c2a0b44e1d3c7;
  m.nknown = 12;
  snprintf(m.rec.name, sizeof(m.rec.name), "db1");
  snprintf(m.rec.addr, sizeof(m.rec.addr), "tcp://10.0.0.11:7410");
  m.rec.ver = 17;
  snprintf(m.rec.state, sizeof(m.rec.state), "maintenance");
  snprintf(m.rec.reason, sizeof(m.rec.reason), "schema upgrade to v42");
  m.rec.since_ms = 1764061234567;
  m.rec.ngroups = 2;
  snprintf(m.rec.groups[0], sizeof(m.rec.groups[0]), "db");
  snprintf(m.rec.groups[1], sizeof(m.rec.groups[1]), "primary");
  json_object_set_new(m.rec.data, "dsn",
                      json_string("postgres://10.0.0.11/shop"));
  json_object_set_new(m.rec.data, "role", json_string("primary"));
  json_object_set_new(m.rec.data, "version", json_string("15.4"));
  rv = wire_encode(&m, out, len);
  wire_msg_free(&m);
  return rv;
}

/* One message taken in, as agent_on_message does. */
static int take_in(const struct input *in, unsigned char *plain) {
  struct wire_error err;
  struct wire_msg m;
  const unsigned char *buf = in->msg;
  size_t len = in->len;
  int rv;

  if (in->ring != NULL) {
    rv = seal_open(in->ring, in->msg, in->len, plain, CHOREO_MSG_MAX, &len,
                   NULL);
    if (rv != 0)
      return rv;
    buf = plain;
  }
  if ((rv = wire_msg_init(&m)) == 0)
    rv = wire_decode(buf, len, &m, &err);
  wire_msg_free(&m);
  return rv;
}

/* Messages per second over one run of about RUN_MS. */
static double run(const struct input *in, unsigned char *scratch) {
  double start = now_s(), end;
  size_t n = 0, len;

  do {
    for (int i = 0; i < BATCH; i++) {
      int rv = in->seal ? seal_box(in->ring, in->msg, in->len, scratch,
                                   CHOREO_MSG_MAX, &len)
                        : take_in(in, scratch);
      if (rv != 0) {
        fprintf(stderr, "bench-throughput: %s\n", choreo_strerror(rv));
        exit(1);
      }
    }
    n += BATCH;
    end = now_s();
  } while (end - start < RUN_MS / 1000.0);
  return (double)n / (end - start);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void measure(const char *name, const struct input *in,
                    unsigned char *scratch) {
  double rates[RUNS];
  for (int i = 0; i < RUNS; i++)
    rates[i] = run(in, scratch);
  qsort(rates, RUNS, sizeof(rates[0]), cmp_double);
  printf("%-9s %6zu bytes  median %9.0f msg/s  (min %.0f, max %.0f)\n", name,
         in->len, rates[RUNS / 2], rates[0], rates[RUNS - 1]);
}

static struct seal_ring *ring(const char *text) {
  struct seal_ring *r = NULL;
  struct seal_error err;
  if (seal_ring_parse(text, strlen(text), "bench", &r, &err) != 0) {
    fprintf(stderr, "bench-throughput: %s\n", err.text);
    exit(1);
  }
  return r;
}

int main(void) {
  struct seal_ring *one = ring(KEY_B "\n"), *two = ring(KEY_A "\n" KEY_B);
  unsigned char *scratch = malloc(CHOREO_MSG_MAX), *box = NULL;
  size_t len = 0, boxlen = 0;
  char *msg = NULL;

  if (scratch == NULL || typical(&msg, &len) != 0 ||
      seal_box_alloc(one, msg, len, &box, &boxlen) != 0)
    return 1;
  printf("one core, median of %d runs of %d ms of CPU time:\n", RUNS, RUN_MS);
  measure("plain", &(struct input){NULL, (unsigned char *)msg, len, false},
          scratch);
  measure("key", &(struct input){one, box, boxlen, false}, scratch);
  measure("rotation", &(struct input){two, box, boxlen, false}, scratch);
  measure("seal", &(struct input){one, (unsigned char *)msg, len, true},
          scratch);
  free(box);
  free(msg);
  free(scratch);
  seal_ring_free(one);
  seal_ring_free(two);
  return 0;
}
