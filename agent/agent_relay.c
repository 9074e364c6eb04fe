/*
 * agent_relay.c — the relay role (network.relay; docs/ARCHITECTURE.md
 * "Relays"). A leaf publishes to its relays only; a relay, which like any
 * member of a full mesh is connected to every member, forwards the leaf's
 * state and leave messages to all of them, exactly as the leaf sealed
 * them, in batches (batch.h).
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
 * per POLICY_RELAY_MEMBERS_PER_MS members (200 members: one batch per 50 ms). A
 * single change, the story's case, never waits; a burst of them (a whole
 * cluster starting, every leaf news to the relay) goes in a few large batches
 * instead of one delivery per member per change.
 */
#include <stdlib.h>

#include "agent.h"
#include "batch.h"
#include "log.h"
#include "policy.h"
#include "util.h"

static uint64_t hold_ms(const struct agent *a) {
  return policy_relay_hold_ms(a->cfg->heartbeat_ms);
}

static void flush(struct agent *a, struct relay_queue *q) {
  struct batch *b = &q->batch;
  uv_timer_stop(&q->timer);
  if (b->frames == 0)
    return;
  if (mesh_send(&a->mesh, b->buf, b->len) == 0) {
    a->metrics.relay_batches_sent++;
    a->metrics.msg_sent++;
  } else {
    a->metrics.msg_send_failed++;
  }
  if (q == &a->relay_news) {
    uint64_t now = uv_now(&a->loop);
    a->relay_credit_at =
        policy_relay_spend(a->relay_credit_at, now, a->peers.n);
  }
  batch_reset(b);
}

static void on_relay_timer(uv_timer_t *t) {
  struct agent *a = t->data;
  flush(a, container_of(t, struct relay_queue, timer));
}

/* Send q's batch at `when` (monotonic ms) unless it is due earlier. */
static void flush_at(struct agent *a, struct relay_queue *q, uint64_t when) {
  uint64_t now = uv_now(&a->loop);
  if (when <= now) {
    flush(a, q);
    return;
  }
  if (uv_is_active((uv_handle_t *)&q->timer) && q->due <= when)
    return;
  q->due = when;
  uv_timer_start(&q->timer, on_relay_timer, when - now, 0);
}

int agent_relay_init(struct agent *a) {
  struct relay_queue *qs[] = {&a->relay_hold, &a->relay_news};
  int rv = 0;
  for (size_t i = 0; i < ARRAY_SIZE(qs); i++) {
    uv_timer_init(&a->loop, &qs[i]->timer);
    qs[i]->timer.data = a;
    if (a->cfg->relay && rv == 0)
      rv = batch_init(&qs[i]->batch);
  }
  return rv;
}

void agent_relay_forward(struct agent *a, const void *msg, size_t len,
                         bool change) {
  struct relay_queue *q = change ? &a->relay_news : &a->relay_hold;
  struct batch *b = &q->batch;
  uint64_t now = uv_now(&a->loop);

  if (a->stopping || b->buf == NULL)
    return;
  if (!batch_fits(b, len))
    flush(a, q);
  a->metrics.relay_forwarded++;
  if (batch_add(b, msg, len) != 0) {
    /* Too large for any batch: it goes alone, as its sender sent it. */
    if (mesh_send(&a->mesh, msg, len) == 0)
      a->metrics.msg_sent++;
    else
      a->metrics.msg_send_failed++;
    return;
  }
  if (change)
    flush_at(a, q,
             policy_relay_change_time(a->relay_credit_at, now, a->peers.n));
  else if (b->frames == 1)
    flush_at(a, q, now + hold_ms(a));
}

void agent_relay_free(struct agent *a) {
  batch_free(&a->relay_hold.batch);
  batch_free(&a->relay_news.batch);
  free(a->seen);
  a->seen = NULL;
}

bool agent_relay_seen(struct agent *a, const void *msg, size_t len) {
  if (a->seen == NULL && (a->seen = seen_new()) == NULL)
    return false; /* the table only saves work */
  return seen_note(a->seen, msg, len);
}
