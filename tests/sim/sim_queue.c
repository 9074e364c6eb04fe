/*
 * sim_queue.c — the simulator's randomness and time: a PRNG of its own
 * (xoshiro256**, seeded through splitmix64; never rand() or the clock)
 * and the event queue, a binary heap ordered by virtual time and, for
 * equal times, by the order events were scheduled, so that one seed
 * replays one history.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void sim_rand_seed(struct sim_rand *r, uint64_t seed) {
  for (size_t i = 0; i < 4; i++)
    r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

uint64_t sim_rand_next(struct sim_rand *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t sim_rand_below(struct sim_rand *r, uint64_t n) {
  /* The modulo bias is below 2^-40 for any n the simulator uses. */
  return n == 0 ? 0 : sim_rand_next(r) % n;
}

bool sim_rand_chance(struct sim_rand *r, double p) {
  if (p <= 0)
    return false;
  return (double)(sim_rand_next(r) >> 11) * 0x1.0p-53 < p;
}

struct sim_blob *sim_blob_new(const void *buf, size_t len) {
  struct sim_blob *b = malloc(sizeof(*b) + len);
  if (b == NULL)
    abort(); /* the simulator has no way on without memory */
  b->refs = 1;
  b->len = len;
  b->nframes = 0;
  b->frames = NULL;
  memcpy(b->data, buf, len);
  return b;
}

void sim_blob_unref(struct sim_blob *b) {
  if (b == NULL || --b->refs > 0)
    return;
  for (size_t k = 0; k < b->nframes; k++) {
    if (b->frames[k].m != NULL) {
      wire_msg_free(b->frames[k].m);
      free(b->frames[k].m);
    }
  }
  free(b->frames);
  free(b);
}

const struct wire_msg *sim_blob_decode(struct sim_blob *b, size_t k,
                                       const void *buf, size_t len) {
  struct wire_error err;
  struct sim_frame *f;

  if (k >= b->nframes) {
    size_t n = k + 1 > 2 * b->nframes ? k + 1 : 2 * b->nframes;
    f = realloc(b->frames, n * sizeof(*f));
    if (f == NULL)
      abort();
    memset(f + b->nframes, 0, (n - b->nframes) * sizeof(*f));
    b->frames = f;
    b->nframes = n;
  }
  f = &b->frames[k];
  if (!f->done) {
    f->done = true;
    f->m = malloc(sizeof(*f->m));
    if (f->m == NULL || wire_msg_init(f->m) != 0)
      abort();
    if (wire_decode(buf, len, f->m, &err) != 0) {
      wire_msg_free(f->m);
      free(f->m);
      f->m = NULL;
    }
  }
  return f->m;
}

static bool before(const struct sim_event *a, const struct sim_event *b) {
  return a->at < b->at || (a->at == b->at && a->ord < b->ord);
}

void sim_queue_push(struct sim_queue *q, const struct sim_event *e) {
  size_t i;
  if (q->n == q->cap) {
    size_t cap = q->cap ? q->cap * 2 : 4096;
    struct sim_event *v = realloc(q->v, cap * sizeof(*v));
    if (v == NULL)
      abort();
    q->v = v;
    q->cap = cap;
  }
  i = q->n++;
  q->v[i] = *e;
  q->v[i].ord = q->ord++;
  while (i > 0 && before(&q->v[i], &q->v[(i - 1) / 2])) {
    struct sim_event t = q->v[i];
    q->v[i] = q->v[(i - 1) / 2];
    q->v[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
}

bool sim_queue_pop(struct sim_queue *q, struct sim_event *out) {
  size_t i = 0;
  if (q->n == 0)
    return false;
  *out = q->v[0];
  q->v[0] = q->v[--q->n];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < q->n && before(&q->v[l], &q->v[m]))
      m = l;
    if (r < q->n && before(&q->v[r], &q->v[m]))
      m = r;
    if (m == i)
      break;
    struct sim_event t = q->v[i];
    q->v[i] = q->v[m];
    q->v[m] = t;
    i = m;
  }
  return true;
}

void sim_queue_free(struct sim_queue *q) {
  struct sim_event e;
  while (sim_queue_pop(q, &e))
    sim_blob_unref(e.blob);
  free(q->v);
  q->v = NULL;
  q->cap = 0;
}
