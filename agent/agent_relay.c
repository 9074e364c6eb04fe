/*
 * agent_relay.c — the relay part: the relay role (network.relay;
 * docs/ARCHITECTURE.md "Relays"). A leaf publishes to its relays only; a relay,
 * which like any member of a full mesh is connected to every member, forwards
 * the leaf's state and leave messages to all of them, exactly as the leaf
 * sealed them, in batches (batch.h).
 *
 * What the cluster pays is deliveries: every message a member receives
 * wakes two threads of it (nanomsg's and the loop), about 70 µs of CPU on
 * a small machine, while decoding one costs a tenth of that. A heartbeat
 * that only repeats what members know waits in the batch for up to a
 * quarter of a heartbeat, so members receive a few batches a heartbeat
 * instead of one message per member. A message that changes something (a
 * new member, one not heard yet, one lost or gone, a newer version, a
 * leave) goes in a batch of its own, without the repeats (at 200 members
 * a batch of repeats holds some fifty heartbeats, whose decoding would
 * delay the change at every member), at once, as long as there is
 * credit: POLICY_RELAY_BURST changes in a row, then one more per millisecond
 * per POLICY_RELAY_MEMBERS_PER_MS members (200 members: one batch per 50 ms),
 * or per quarter heartbeat if that is sooner. A
 * single change, the story's case, never waits; a burst of them (a whole
 * cluster starting, every leaf news to the relay) goes in a few large batches
 * instead of one delivery per member per change. When a batch goes is
 * policy.c's (policy_relay_*); this part owns the two queues, their
 * timers, the credit and the table of messages seen, and sends through
 * the send hook.
 */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "batch.h"
#include "log.h"
#include "policy.h"
#include "util.h"

static struct agent *agent_of(struct relay *r) {
  return AGENT_OF(r, relay);
}

/* What the relay forwards goes to its share while relays split the
 * members, else to every member. */
static int forward_send(struct relay *r, const void *buf, size_t len) {
  struct agent *a = agent_of(r);
  if (relay_share_active(r, uv_now(&a->loop)))
    return mesh_share_send(&a->net.mesh, buf, len);
  return r->send(r, buf, len);
}

static void send_batch(struct relay *r, const void *buf, size_t len) {
  struct metrics *m = &agent_of(r)->metrics;
  if (forward_send(r, buf, len) == 0)
    m->msg_sent++;
  else
    m->msg_send_failed++;
}

/* One batch of changes per this many ms once the burst is spent: for the
 * members a batch goes to. */
static uint64_t credit_interval(struct relay *r) {
  struct agent *a = agent_of(r);
  size_t members =
      relay_share_active(r, uv_now(&a->loop)) ? r->share_n : a->peers.n;
  return policy_relay_interval_ms(members, a->cfg->heartbeat_ms);
}

static void flush(struct relay *r, struct relay_queue *q) {
  struct agent *a = agent_of(r);
  struct batch *b = &q->batch;
  uv_timer_stop(&q->timer);
  if (b->frames == 0)
    return;
  if (forward_send(r, b->buf, b->len) == 0) {
    a->metrics.relay_batches_sent++;
    a->metrics.msg_sent++;
  } else {
    a->metrics.msg_send_failed++;
  }
  if (q == &r->news)
    r->credit_at =
        policy_relay_spend(r->credit_at, uv_now(&a->loop), credit_interval(r));
  batch_reset(b);
}

static void on_relay_timer(uv_timer_t *t) {
  struct relay_queue *q = container_of(t, struct relay_queue, timer);
  flush(q->relay, q);
}

/* Send q's batch at `when` (monotonic ms) unless it is due earlier. */
static void flush_at(struct relay *r, struct relay_queue *q, uint64_t when) {
  uint64_t now = uv_now(&agent_of(r)->loop);
  if (when <= now) {
    flush(r, q);
    return;
  }
  if (uv_is_active((uv_handle_t *)&q->timer) && q->due <= when)
    return;
  q->due = when;
  uv_timer_start(&q->timer, on_relay_timer, when - now, 0);
}

static void on_targets_timer(uv_timer_t *t);

int relay_init(struct relay *r) {
  struct agent *a = agent_of(r);
  struct relay_queue *qs[] = {&r->hold, &r->news};
  int rv = 0;
  for (size_t i = 0; i < ARRAY_SIZE(qs); i++) {
    uv_timer_init(&a->loop, &qs[i]->timer);
    qs[i]->relay = r;
    if (a->cfg->relay && rv == 0)
      rv = batch_init(&qs[i]->batch);
  }
  uv_timer_init(&a->loop, &r->targets_timer);
  r->targets_timer.data = r;
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++)
    r->targets[k].sock = -1;
  return rv;
}

void relay_open_window(struct relay *r, uint64_t now) {
  struct agent *a = agent_of(r);
  uint64_t until = now + policy_relay_window_ms(a->cfg->heartbeat_ms);
  if (r->window_until <= now)
    a->metrics.relay_windows++;
  if (until > r->window_until)
    r->window_until = until;
}

bool relay_window_open(const struct relay *r, uint64_t now) {
  return now < r->window_until;
}

/* ---- catch-ups of one member alone ---- */

static int target_find(const struct relay *r, const char *name) {
  for (int k = 0; k < POLICY_RELAY_TARGETS_MAX; k++)
    if (r->targets[k].used && strcmp(r->targets[k].name, name) == 0)
      return k;
  return -1;
}

static void target_close(struct relay_target *t) {
  mesh_solo_close(t->sock);
  batch_free(&t->batch);
  memset(t, 0, sizeof(*t));
  t->sock = -1;
}

/* Arm the timer for the earliest batch due or socket to close. */
static void targets_arm(struct relay *r) {
  uint64_t now = uv_now(&agent_of(r)->loop), next = UINT64_MAX;
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++) {
    const struct relay_target *t = &r->targets[k];
    uint64_t at =
        t->batch.frames > 0 && t->due < t->close_at ? t->due : t->close_at;
    if (t->used && at < next)
      next = at;
  }
  if (r->stopped || next == UINT64_MAX)
    uv_timer_stop(&r->targets_timer);
  else
    uv_timer_start(&r->targets_timer, on_targets_timer,
                   next > now ? next - now : 0, 0);
}

/* Send t's batch once its connection is up; false while it is not. */
static bool target_flush(struct relay *r, struct relay_target *t) {
  struct metrics *m = &agent_of(r)->metrics;
  if (t->batch.frames == 0)
    return true;
  if (!mesh_solo_up(t->sock))
    return false;
  if (mesh_solo_send(t->sock, t->batch.buf, t->batch.len) == 0) {
    m->relay_batches_sent++;
    m->msg_sent++;
  } else {
    m->msg_send_failed++;
  }
  batch_reset(&t->batch);
  return true;
}

static void on_targets_timer(uv_timer_t *timer) {
  struct relay *r = timer->data;
  uint64_t now = uv_now(&agent_of(r)->loop);
  bool unreached = false;
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++) {
    struct relay_target *t = &r->targets[k];
    if (!t->used)
      continue;
    if (t->batch.frames > 0 && t->due <= now && !target_flush(r, t))
      t->due = now + RELAY_TARGET_RETRY_MS;
    if (now >= t->close_at) {
      if (t->batch.frames > 0) {
        unreached = true;
        log_info("relay: no connection to %s for its catch-up; opening a "
                 "window for everyone",
                 t->name);
      }
      target_close(t);
    }
  }
  /* A member this relay could not reach alone gets a window for all. */
  if (unreached)
    relay_open_window(r, now);
  targets_arm(r);
}

void relay_catch_up(struct relay *r, const struct peer *peer, uint64_t now) {
  struct agent *a = agent_of(r);
  int k = target_find(r, peer->rec->name);
  size_t nfree = 0;
  struct relay_target *t;
  /* A member of other relays' shares is theirs to catch up. */
  if (!relay_serves(r, peer, now))
    return;
  for (size_t i = 0; i < POLICY_RELAY_TARGETS_MAX; i++)
    nfree += !r->targets[i].used;
  struct policy_catch_up_in in = {
      .window_open = relay_window_open(r, now),
      .all_quiet = r->all_quiet,
      .has_own = k >= 0,
      .own_free = nfree,
      .reachable = wire_valid_addr(peer->rec->addr),
      .behind = a->net.reading_behind,
  };
  switch (policy_relay_catch_up(&in)) {
  case POLICY_CATCH_UP_COVERED:
    return;
  case POLICY_CATCH_UP_LATER:
    r->deferred = true;
    return;
  case POLICY_CATCH_UP_ALL:
    relay_open_window(r, now);
    return;
  case POLICY_CATCH_UP_ALONE:
    break;
  }
  if (k < 0) {
    int sock;
    for (k = 0; r->targets[k].used; k++)
      ;
    t = &r->targets[k];
    if (batch_init(&t->batch) != 0 ||
        (sock = mesh_solo_open(&a->net.mesh, peer->rec->addr)) < 0) {
      batch_free(&t->batch);
      relay_open_window(r, now);
      return;
    }
    t->used = true;
    t->sock = sock;
    snprintf(t->name, sizeof(t->name), "%s", peer->rec->name);
  }
  t = &r->targets[k];
  if (t->until <= now)
    a->metrics.relay_catch_ups++;
  t->until = now + policy_relay_window_ms(a->cfg->heartbeat_ms);
  t->close_at = t->until + a->cfg->heartbeat_ms;
  targets_arm(r);
}

void relay_resume(struct relay *r, uint64_t now, bool behind) {
  if (!r->deferred || behind || r->stopped)
    return;
  r->deferred = false;
  relay_open_window(r, now);
}

bool relay_targets_open(const struct relay *r, uint64_t now) {
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++)
    if (r->targets[k].used && r->targets[k].until > now)
      return true;
  return false;
}

void relay_targets_add(struct relay *r, const void *msg, size_t len,
                       const char *from, uint64_t now) {
  uint64_t hold = policy_relay_hold_ms(agent_of(r)->cfg->heartbeat_ms);
  if (r->stopped)
    return;
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++) {
    struct relay_target *t = &r->targets[k];
    if (!t->used || t->until <= now || strcmp(t->name, from) == 0)
      continue;
    /* Full while its connection is not up: this one is not kept (the
     * member asks for a resync if it needs it). */
    if (!batch_fits(&t->batch, len) && !target_flush(r, t))
      continue;
    if (batch_add(&t->batch, msg, len) != 0)
      continue;
    if (t->batch.frames == 1)
      t->due = now + hold;
  }
  targets_arm(r);
}

void relay_note_wants(struct relay *r, const struct wire_msg *m, uint64_t now) {
  uint64_t until =
      now + POLICY_RELAY_REPEAT_HB * agent_of(r)->cfg->heartbeat_ms;
  for (size_t i = 0; i < m->nwant; i++) {
    size_t slot = 0;
    /* Its slot, else a free or the oldest one. */
    for (size_t k = 0; k < RELAY_WANTED_MAX; k++) {
      if (strcmp(r->wanted[k].name, m->want_cert[i]) == 0) {
        slot = k;
        break;
      }
      if (r->wanted[k].until < r->wanted[slot].until)
        slot = k;
    }
    memcpy(r->wanted[slot].name, m->want_cert[i], sizeof(r->wanted[0].name));
    r->wanted[slot].until = until;
  }
}

bool relay_cert_wanted(const struct relay *r, const char *name, uint64_t now) {
  for (size_t k = 0; k < RELAY_WANTED_MAX; k++)
    if (r->wanted[k].until > now && strcmp(r->wanted[k].name, name) == 0)
      return true;
  return false;
}

void relay_forward(struct relay *r, const void *msg, size_t len, bool change) {
  struct agent *a = agent_of(r);
  struct relay_queue *q = change ? &r->news : &r->hold;
  struct batch *b = &q->batch;
  uint64_t now = uv_now(&a->loop);

  if (r->stopped || b->buf == NULL)
    return;
  if (!batch_fits(b, len))
    flush(r, q);
  a->metrics.relay_forwarded++;
  if (batch_add(b, msg, len) != 0) {
    /* Too large for any batch: it goes alone, as its sender sent it. */
    send_batch(r, msg, len);
    return;
  }
  if (change)
    flush_at(r, q,
             policy_relay_change_time(r->credit_at, now, credit_interval(r)));
  else if (b->frames == 1)
    flush_at(r, q, now + policy_relay_hold_ms(a->cfg->heartbeat_ms));
}

void relay_flush_changes(struct relay *r) {
  if (!r->stopped)
    flush(r, &r->news);
}

bool relay_seen(struct relay *r, const void *msg, size_t len) {
  if (r->seen == NULL && (r->seen = seen_new()) == NULL)
    return false; /* the table only saves work */
  return seen_note(r->seen, msg, len);
}

/* ---- shares (docs/PROTOCOL.md "Shares") ---- */

bool relay_share_active(const struct relay *r, uint64_t now) {
  /* The share's connections have a heartbeat to come up; until then
   * everyone gets what is forwarded. */
  return r->split &&
         now >= r->split_at + agent_of((struct relay *)r)->cfg->heartbeat_ms;
}

bool relay_serves(const struct relay *r, const struct peer *peer,
                  uint64_t now) {
  return !relay_share_active(r, now) || !peer->relayed ||
         peer_more_of(peer)->share_ep > 0;
}

static void share_disconnect(struct relay *r, struct peer_more *more) {
  if (more == NULL || more->share_ep == 0)
    return;
  mesh_share_disconnect(&agent_of(r)->net.mesh, more->share_ep - 1);
  more->share_ep = 0;
  free(more->share_addr);
  more->share_addr = NULL;
  r->share_n--;
}

void relay_share_peer(struct relay *r, struct peer *peer) {
  struct agent *a = agent_of(r);
  const char *others[PEERS_RELAYS_MAX];
  struct peer_more *more = peer->more;
  const char *addr = peer->rec->addr;
  bool want;
  char *copy;
  int ep;

  /* decided for this set of relays, this role and address, not left */
  bool in = peer->status != PEER_LEFT;
  uint64_t sig =
      r->share_sig ^ (uint64_t)peer->relayed << 1 ^ (uint64_t)in << 2;

  if (r->stopped)
    return;
  if (more != NULL && more->share_sig == sig &&
      (more->share_addr == NULL || strcmp(more->share_addr, addr) == 0))
    return;
  for (size_t i = 0; i < r->nothers; i++)
    others[i] = r->others[i];
  want = r->split && in && wire_valid_addr(addr) &&
         policy_relay_serves(a->cfg->name, others, r->nothers, peer->rec->name,
                             peer->relayed);
  if (more != NULL && more->share_ep > 0 &&
      (!want || strcmp(more->share_addr, addr) != 0))
    share_disconnect(r, more);
  if ((more = peer_more(peer)) == NULL)
    return;
  more->share_sig = sig;
  if (!want || more->share_ep > 0 || (copy = strdup(addr)) == NULL)
    return;
  if ((ep = mesh_share_connect(&a->net.mesh, addr)) < 0) {
    free(copy);
    return;
  }
  more->share_ep = ep + 1;
  more->share_addr = copy;
  r->share_n++;
}

void relay_share_forget(struct relay *r, struct peer *peer) {
  share_disconnect(r, peer->more);
}

void relay_share_sync(struct relay *r, uint64_t now) {
  struct agent *a = agent_of(r);
  const char *names[PEERS_RELAYS_MAX];
  uint64_t sig = 0;
  bool split;

  if (r->stopped || !a->cfg->relay)
    return;
  r->nothers = peers_relays_alive(&a->peers, NULL, names);
  for (size_t i = 0; i < r->nothers; i++) {
    snprintf(r->others[i], sizeof(r->others[0]), "%s", names[i]);
    /* order-free, so that slots taken in another order agree */
    sig ^= policy_share_rank(names[i], "");
  }
  split = r->nothers >= POLICY_RELAY_SHARE_K;
  if (split && !r->split) {
    r->split_at = now;
    log_info("relay: %zu relays alive: forwarding to this relay's share of "
             "the members",
             r->nothers + 1);
  } else if (!split && r->split) {
    log_info("relay: %zu relays alive: forwarding to every member",
             r->nothers + 1);
  }
  r->split = split;
  /* never 0, which a member's entry holds until first decided */
  r->share_sig = (sig ^ (uint64_t)split << 63) | 1;
  for (size_t i = 0; i < a->peers.n; i++)
    relay_share_peer(r, a->peers.v[i]);
}

void relay_close(struct relay *r) {
  r->stopped = true;
  agent_close_handle((uv_handle_t *)&r->hold.timer);
  agent_close_handle((uv_handle_t *)&r->news.timer);
  agent_close_handle((uv_handle_t *)&r->targets_timer);
}

void relay_free(struct relay *r) {
  batch_free(&r->hold.batch);
  batch_free(&r->news.batch);
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++)
    if (r->targets[k].used)
      target_close(&r->targets[k]);
  free(r->seen);
  r->seen = NULL;
}
