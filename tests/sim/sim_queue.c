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

/* Bytes of the decodes kept by every blob. */
static size_t decoded_bytes;

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
      decoded_bytes -= sizeof(struct wire_msg);
    }
  }
  free(b->frames);
  free(b);
}

/* A new message holding what buf decodes to; NULL when refused. */
static struct wire_msg *decode(const void *buf, size_t len) {
  struct wire_error err;
  struct wire_msg *m = malloc(sizeof(*m));

  if (m == NULL || wire_msg_init(m) != 0)
    abort(); /* the simulator has no way on without memory */
  if (wire_decode(buf, len, m, &err) != 0) {
    wire_msg_free(m);
    free(m);
    return NULL;
  }
  return m;
}

const struct wire_msg *sim_blob_decode(struct sim_blob *b, size_t k,
                                       const void *buf, size_t len,
                                       struct wire_msg **tmp) {
  struct sim_frame *f;

  *tmp = NULL;
  if ((k >= b->nframes || !b->frames[k].done) &&
      decoded_bytes + sizeof(struct wire_msg) > SIM_DECODED_MAX)
    return *tmp = decode(buf, len);

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
    if ((f->m = decode(buf, len)) != NULL)
      decoded_bytes += sizeof(struct wire_msg);
  }
  return f->m;
}

static bool before(const struct sim_event *a, const struct sim_event *b) {
  return a->at < b->at || (a->at == b->at && a->ord < b->ord);
}

/* Push e with the (at, ord) it has. */
static void push_keyed(struct sim_queue *q, const struct sim_event *e) {
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
  while (i > 0 && before(&q->v[i], &q->v[(i - 1) / 2])) {
    struct sim_event t = q->v[i];
    q->v[i] = q->v[(i - 1) / 2];
    q->v[(i - 1) / 2] = t;
    i = (i - 1) / 2;
  }
}

void sim_queue_push(struct sim_queue *q, const struct sim_event *e) {
  struct sim_event k = *e;
  k.ord = q->ord++;
  k.fan = NULL;
  push_keyed(q, &k);
}

uint64_t sim_queue_ord(struct sim_queue *q) {
  return q->ord++;
}

static int cmp_copy(const void *a, const void *b) {
  const struct sim_copy *x = a, *y = b;
  if (x->at != y->at)
    return x->at < y->at ? -1 : 1;
  return (x->ord > y->ord) - (x->ord < y->ord);
}

void sim_queue_push_fan(struct sim_queue *q, struct sim_fan *f) {
  struct sim_event e = {.type = SIM_EV_DELIVER, .fan = f};
  qsort(f->c, f->n, sizeof(*f->c), cmp_copy);
  f->next = 0;
  e.at = f->c[0].at;
  e.ord = f->c[0].ord;
  push_keyed(q, &e);
}

/* The root's key grew (or it was replaced): move it down. */
static void sift_down(struct sim_queue *q) {
  size_t i = 0;
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
}

bool sim_queue_pop(struct sim_queue *q, struct sim_event *out) {
  struct sim_fan *f;
  const struct sim_copy *c;

  if (q->n == 0)
    return false;
  if ((f = q->v[0].fan) == NULL) {
    *out = q->v[0];
    q->v[0] = q->v[--q->n];
    sift_down(q);
    return true;
  }
  c = &f->c[f->next++];
  *out = (struct sim_event){.at = c->at,
                            .ord = c->ord,
                            .type = SIM_EV_DELIVER,
                            .node = c->node,
                            .arg = f->link,
                            .gen = c->life,
                            .blob = f->blob};
  f->blob->refs++;
  if (f->next < f->n) {
    q->v[0].at = f->c[f->next].at;
    q->v[0].ord = f->c[f->next].ord;
  } else {
    sim_blob_unref(f->blob);
    free(f->c);
    free(f);
    q->v[0] = q->v[--q->n];
  }
  sift_down(q);
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
