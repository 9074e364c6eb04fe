/*
 * sim_net.c — the virtual network and the nodes' clocks.
 *
 * A node's PUB socket holds one connection per member it knows
 * (struct sim_ep, as agent_net.c's endpoints); one send copies the
 * message to each connection that is up, as nanomsg does. A connection
 * comes up a connect time after it is made (three one-way latencies:
 * TCP's handshake and nanomsg's), and what is sent before is dropped (the
 * slow joiner). When the node at the other end restarts, the connection
 * comes back MESH_RECONNECT_IVL_MS (100 ms) after it is up again. Each
 * copy crosses a link with a latency (base plus uniform jitter, so that
 * copies on different connections overtake each other; on one they
 * arrive in the order sent, as over TCP), may be lost (--loss) or duplicated
 * (--dup), and is dropped while a partition separates the two nodes or
 * when the receiver is down or restarted meanwhile.
 *
 * Clocks: virtual time is in µs. A node's monotonic clock, which its
 * timers and the peer table run on, is the virtual time (ms); its wall
 * clock, which stamps incarnations, "since" and sending times, is off by
 * its skew. A node handles one event at a time: an event that arrives
 * while it is busy waits (sim_main.c), and what it sends while handling
 * one leaves at its CPU time (sim_cpu), so latencies include processing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

/* Virtual time 0 is this unix time (2027-01-15). */
#define SIM_EPOCH_MS 1800000000000LL
/* Monotonic ms of virtual time 0 (never 0: peers.c's "never"). */
#define SIM_MONO_BASE_MS 1000000
#define SIM_RECONNECT_US 100000

uint64_t sim_ms(const struct sim_node *nd) {
  return SIM_MONO_BASE_MS + nd->cpu / 1000;
}

uint64_t sim_now_ms(const struct sim *s) {
  return SIM_MONO_BASE_MS + s->now / 1000;
}

int64_t sim_wall(const struct sim_node *nd) {
  return SIM_EPOCH_MS + (int64_t)(nd->cpu / 1000) + nd->skew_ms;
}

void sim_cpu(struct sim_node *nd, uint64_t us) {
  if (nd->slow > 1)
    us *= nd->slow;
  nd->cpu += us;
  nd->cpu_us += us;
}

void sim_at(struct sim *s, uint64_t at, enum sim_ev type, int node, int arg,
            uint64_t gen, struct sim_blob *blob) {
  struct sim_event e = {.at = at,
                        .type = type,
                        .node = node,
                        .arg = arg,
                        .gen = gen,
                        .blob = blob};
  sim_queue_push(&s->q, &e);
}

void sim_addr_of(int id, char *buf, size_t len) {
  snprintf(buf, len, "tcp://n%d:7410", id);
}

int sim_addr_node(const struct sim *s, const char *addr) {
  char *end;
  unsigned long id;
  if (strncmp(addr, "tcp://n", 7) != 0 || addr[7] < '0' || addr[7] > '9')
    return -1;
  id = strtoul(addr + 7, &end, 10);
  if (strcmp(end, ":7410") != 0 || id >= s->n)
    return -1;
  return (int)id;
}

static uint64_t latency(struct sim *s) {
  return s->o.latency_us + sim_rand_below(&s->rand, s->o.jitter_us + 1);
}

/* Add a copy of b due at node `to` at `at` to the send's fan (made with
 * the first copy), with the tie-break it would have as an event of its
 * own. */
static void fan_add(struct sim *s, struct sim_fan **fan, struct sim_blob *b,
                    uint64_t at, int link, int to) {
  struct sim_fan *f = *fan;
  if (f == NULL) {
    if ((f = calloc(1, sizeof(*f))) == NULL)
      abort(); /* the simulator has no way on without memory */
    f->blob = b;
    f->link = link;
    b->refs++;
    *fan = f;
  }
  if (f->n == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 4;
    struct sim_copy *c = realloc(f->c, cap * sizeof(*c));
    if (c == NULL)
      abort();
    f->c = c;
    f->cap = cap;
  }
  f->c[f->n++] = (struct sim_copy){.at = at,
                                   .ord = sim_queue_ord(&s->q),
                                   .node = to,
                                   .life = s->nodes[to].life};
}

/* One copy over the link from -> to, leaving at `at`, into the send's
 * fan. A connection is a TCP stream: a copy never arrives before the one
 * sent on it before (*last_at); copies on different connections overtake
 * each other. */
static void cross(struct sim *s, int from, enum sim_sock sock, int to,
                  uint64_t at, struct sim_blob *b, struct sim_fan **fan,
                  uint64_t *last_at) {
  unsigned copies = 1 + sim_rand_chance(&s->rand, s->o.dup);
  for (unsigned c = 0; c < copies; c++) {
    if (s->cut && s->side[from] != s->side[to]) {
      s->dropped_cut++;
      continue;
    }
    if (sim_rand_chance(&s->rand, s->o.loss)) {
      s->dropped_loss++;
      continue;
    }
    uint64_t arrive = at + latency(s);
    if (arrive < *last_at)
      arrive = *last_at;
    *last_at = arrive;
    fan_add(s, fan, b, arrive, sim_link(from, sock), to);
  }
}

/* Queue what a send put in its fan. */
static void fan_send(struct sim *s, struct sim_fan *fan) {
  if (fan != NULL)
    sim_queue_push_fan(&s->q, fan);
}

/* One send on a PUB socket whose connections are eps. */
static void send_eps(struct sim_node *nd, enum sim_sock sock,
                     struct sim_ep *eps, size_t neps, const void *buf,
                     size_t len) {
  struct sim *s = nd->sim;
  struct sim_blob *b = NULL;
  struct sim_fan *fan = NULL;

  for (size_t i = 0; i < neps; i++) {
    struct sim_ep *ep = &eps[i];
    struct sim_node *to;
    if (ep->target < 0)
      continue; /* nobody listens there: nanomsg keeps trying, sends none */
    to = &s->nodes[ep->target];
    if (!to->up) {
      s->dropped_down++;
      continue;
    }
    /* The node at the other end restarted since the connection came up:
     * nanomsg reconnects after its interval. */
    if (ep->life != to->life) {
      uint64_t back = to->started_us + SIM_RECONNECT_US;
      ep->life = to->life;
      if (ep->up_at < back)
        ep->up_at = back;
    }
    if (nd->cpu < ep->up_at) {
      s->dropped_joiner++;
      continue;
    }
    if (b == NULL)
      b = sim_blob_new(buf, len);
    nd->tx_msgs++;
    nd->tx_bytes += len;
    sim_cpu(nd, s->o.send_us);
    cross(s, nd->id, sock, ep->target, nd->cpu, b, &fan, &ep->last_at);
  }
  fan_send(s, fan);
  sim_blob_unref(b);
}

void sim_net_send(struct sim_node *nd, const void *buf, size_t len) {
  send_eps(nd, SIM_SOCK_ALL, nd->eps, nd->neps, buf, len);
}

void sim_net_send_share(struct sim_node *nd, const void *buf, size_t len) {
  send_eps(nd, SIM_SOCK_SHARE, nd->share_eps, nd->nshare_eps, buf, len);
}

bool sim_net_all_up(const struct sim_node *nd) {
  const struct sim *s = nd->sim;
  if (nd->neps == 0)
    return false;
  for (size_t i = 0; i < nd->neps; i++) {
    const struct sim_ep *ep = &nd->eps[i];
    const struct sim_node *to;
    if (ep->target < 0)
      return false;
    to = &s->nodes[ep->target];
    /* down, or restarted since: nanomsg reconnects (sim_net_send) */
    if (!to->up || ep->life != to->life || nd->cpu < ep->up_at)
      return false;
  }
  return true;
}

int sim_net_send_one(struct sim_node *nd, int to, unsigned *life,
                     uint64_t *up_at, uint64_t *last_at, const void *buf,
                     size_t len) {
  struct sim *s = nd->sim;
  struct sim_node *peer;
  struct sim_blob *b;
  struct sim_fan *fan = NULL;

  if (to < 0)
    return -1;
  peer = &s->nodes[to];
  if (!peer->up) {
    s->dropped_down++;
    return -1;
  }
  if (*life != peer->life) {
    uint64_t back = peer->started_us + SIM_RECONNECT_US;
    *life = peer->life;
    if (*up_at < back)
      *up_at = back;
  }
  if (nd->cpu < *up_at)
    return 1;
  b = sim_blob_new(buf, len);
  nd->tx_msgs++;
  nd->tx_bytes += len;
  sim_cpu(nd, s->o.send_us);
  cross(s, nd->id, SIM_SOCK_ONE, to, nd->cpu, b, &fan, last_at);
  fan_send(s, fan);
  sim_blob_unref(b);
  return 0;
}
