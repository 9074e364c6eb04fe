/*
 * sim_inbox.c — what waits for a busy node's CPU.
 *
 * An agent's inbox is a nanomsg SUB socket, which takes the next message
 * from its connections in turn (nanomsg's fair queue: one message from
 * a connection, then on to the next that has one), not in the order the
 * messages arrived over all of them. So the deliveries that wait here are
 * kept by connection, each one's in order (a TCP stream), and taken one
 * connection at a time in a round: a message from a sender with little
 * to say waits behind one message of each other connection, not behind
 * everything that came before it. A connection holds what its socket
 * buffers hold (SIM_LINK_BYTES); nanomsg drops the rest at the sender.
 * What else waits (timers, steps of the world, a script done) keeps its
 * order of arrival; the caller (sim_main.c take_waiting) decides when it
 * goes.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void fifo_push(struct sim_fifo *f, const struct sim_event *e) {
  if (f->head + f->n == f->cap) {
    if (f->head > 0) {
      memmove(f->v, f->v + f->head, f->n * sizeof(*f->v));
      f->head = 0;
    }
    if (f->n == f->cap) {
      size_t cap = f->cap ? 2 * f->cap : 4;
      struct sim_event *v = realloc(f->v, cap * sizeof(*v));
      if (v == NULL)
        abort(); /* the simulator has no way on without memory */
      f->v = v;
      f->cap = cap;
    }
  }
  f->v[f->head + f->n++] = *e;
}

static struct sim_event fifo_pop(struct sim_fifo *f) {
  struct sim_event e = f->v[f->head++];
  if (--f->n == 0)
    f->head = 0;
  return e;
}

static void fifo_free(struct sim_fifo *f) {
  for (size_t i = 0; i < f->n; i++)
    sim_blob_unref(f->v[f->head + i].blob);
  free(f->v);
  memset(f, 0, sizeof(*f));
}

static size_t hash_slot(int link, size_t cap) {
  uint64_t h = (uint64_t)(uint32_t)link * 0x9e3779b97f4a7c15ULL;
  return (size_t)(h >> 32) & (cap - 1);
}

static void index_grow(struct sim_inbox *in) {
  size_t cap = in->index_cap ? 2 * in->index_cap : 16;
  int *idx = malloc(cap * sizeof(*idx));
  if (idx == NULL)
    abort();
  for (size_t i = 0; i < cap; i++)
    idx[i] = -1;
  for (size_t q = 0; q < in->nqueues; q++) {
    size_t s = hash_slot(in->queues[q].link, cap);
    while (idx[s] >= 0)
      s = (s + 1) & (cap - 1);
    idx[s] = (int)q;
  }
  free(in->index);
  in->index = idx;
  in->index_cap = cap;
}

/* The queue of connection `link`, made on its first delivery. */
static size_t queue_of(struct sim_inbox *in, int link) {
  size_t s;
  if (2 * (in->nqueues + 1) > in->index_cap)
    index_grow(in);
  s = hash_slot(link, in->index_cap);
  while (in->index[s] >= 0) {
    if (in->queues[in->index[s]].link == link)
      return (size_t)in->index[s];
    s = (s + 1) & (in->index_cap - 1);
  }
  if (in->nqueues == in->queues_cap) {
    size_t cap = in->queues_cap ? 2 * in->queues_cap : 4;
    struct sim_link_q *v = realloc(in->queues, cap * sizeof(*v));
    size_t *r = realloc(in->round, cap * sizeof(*r));
    if (v == NULL || r == NULL)
      abort();
    /* the round is a ring: unroll it into the larger array */
    for (size_t i = 0; i < in->round_n; i++)
      r[in->queues_cap + i] = r[(in->round_head + i) % in->queues_cap];
    if (in->round_n > 0)
      memmove(r, r + in->queues_cap, in->round_n * sizeof(*r));
    in->round_head = 0;
    in->queues = v;
    in->round = r;
    in->queues_cap = cap;
  }
  memset(&in->queues[in->nqueues], 0, sizeof(in->queues[0]));
  in->queues[in->nqueues].link = link;
  in->index[s] = (int)in->nqueues;
  return in->nqueues++;
}

bool sim_inbox_push(struct sim_inbox *in, const struct sim_event *e) {
  if (e->type == SIM_EV_DELIVER) {
    size_t q = queue_of(in, e->arg);
    struct sim_link_q *sq = &in->queues[q];
    if (sq->msgs.n > 0 && sq->bytes + e->blob->len > SIM_LINK_BYTES)
      return false;
    if (sq->msgs.n == 0) /* its turn comes after the others' */
      in->round[(in->round_head + in->round_n++) % in->queues_cap] = q;
    fifo_push(&sq->msgs, e);
    sq->bytes += e->blob->len;
  } else {
    fifo_push(&in->other, e);
  }
  in->n++;
  return true;
}

const struct sim_event *sim_inbox_next_delivery(const struct sim_inbox *in) {
  const struct sim_fifo *f;
  if (in->round_n == 0)
    return NULL;
  f = &in->queues[in->round[in->round_head]].msgs;
  return &f->v[f->head];
}

const struct sim_event *sim_inbox_next_other(const struct sim_inbox *in) {
  return in->other.n > 0 ? &in->other.v[in->other.head] : NULL;
}

struct sim_event sim_inbox_take(struct sim_inbox *in, bool delivery) {
  struct sim_event e;
  in->n--;
  if (!delivery)
    return fifo_pop(&in->other);
  size_t q = in->round[in->round_head];
  in->round_head = (in->round_head + 1) % in->queues_cap;
  in->round_n--;
  e = fifo_pop(&in->queues[q].msgs);
  in->queues[q].bytes -= e.blob->len;
  if (in->queues[q].msgs.n > 0) /* its next message: at the end of the round */
    in->round[(in->round_head + in->round_n++) % in->queues_cap] = q;
  return e;
}

uint64_t sim_inbox_oldest(const struct sim_inbox *in) {
  uint64_t at = UINT64_MAX;
  if (in->other.n > 0)
    at = in->other.v[in->other.head].at;
  for (size_t i = 0; i < in->round_n; i++) {
    const struct sim_fifo *f =
        &in->queues[in->round[(in->round_head + i) % in->queues_cap]].msgs;
    if (f->v[f->head].at < at)
      at = f->v[f->head].at;
  }
  return at;
}

void sim_inbox_free(struct sim_inbox *in) {
  fifo_free(&in->other);
  for (size_t q = 0; q < in->nqueues; q++)
    fifo_free(&in->queues[q].msgs);
  free(in->queues);
  free(in->round);
  free(in->index);
  memset(in, 0, sizeof(*in));
}
