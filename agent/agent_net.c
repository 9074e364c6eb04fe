/*
 * agent_net.c — the agent's side of the protocol (docs/PROTOCOL.md):
 * publishing its record (heartbeats, changes, hello, leave) and member
 * lists, receiving and checking every message (alone or in a relay's
 * batch), keeping one PUB connection per member (a leaf: per relay), and
 * deciding when the startup sync is over.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>

#include "agent.h"
#include "batch.h"
#include "log.h"
#include "util.h"
#include "view.h"
#include "wire.h"

/* Quick republications after a new connection: PUB drops what is sent
 * before a pipe is up (the slow joiner), so say it again shortly after. */
static const uint64_t soon_delays_ms[] = {5, 25, 100, 400};
#define HELLO_FIRST_MS 20
#define HELLO_FAST_TRIES 25
/* Entries per members message: 128 of the largest possible (64-byte name,
 * 256-byte address) stay under CHOREO_MSG_MAX once encoded. */
#define MEMBERS_PER_MSG 128
/* The shortest gap between two member lists sent by the quick
 * republications (answers to hellos). */
#define MEMBERS_GAP_MS 50

/* A leaf (network.relays) talks to its relays only. */
static bool is_leaf(const struct agent *a) {
  return a->cfg->nrelays > 0;
}

/* Join addresses: network.join, or a leaf's relays. */
static bool has_join(const struct agent *a) {
  return a->cfg->njoin > 0 || a->cfg->nrelays > 0;
}

/* ---- sending ---- */

static void send_msg(struct agent *a, const struct wire_msg *m) {
  char *buf = NULL;
  unsigned char *box = NULL;
  size_t len = 0;
  int rv = wire_encode(m, &buf, &len);
  /* With a key ring nothing leaves unsealed (SPEC.md "Security"). */
  if (rv == 0 && a->ring != NULL)
    rv = seal_box_alloc(a->ring, buf, len, &box, &len);
  if (rv != 0) {
    log_error("cannot encode a %s message: %s", wire_type_name(m->type),
              choreo_strerror(rv));
  } else if (mesh_send(&a->mesh, box != NULL ? (void *)box : buf, len) == 0) {
    a->metrics.msg_sent++;
    /* Relays pass a leaf's messages back to it with everyone else's. */
    if (is_leaf(a))
      (void)agent_relay_seen(a, box != NULL ? (void *)box : buf, len);
  } else {
    a->metrics.msg_send_failed++;
  }
  free(box);
  free(buf);
}

static void envelope(struct agent *a, struct wire_msg *m, enum wire_type t) {
  memset(m, 0, sizeof(*m));
  m->type = t;
  snprintf(m->cluster, sizeof(m->cluster), "%s", a->cfg->cluster);
  snprintf(m->from, sizeof(m->from), "%s", a->cfg->name);
  m->inc = a->self.inc;
  m->seq = ++a->seq;
  m->time = (uint64_t)util_wall_ms();
  m->leaf = is_leaf(a);
}

void agent_publish(struct agent *a, enum wire_type type) {
  struct wire_msg m;
  envelope(a, &m, type);
  /* A shallow copy: the message only borrows the record to encode it. */
  m.rec = a->self;
  m.digest = peers_digest(&a->peers, &a->self);
  m.nknown = (uint32_t)(a->peers.n + 1);
  send_msg(a, &m);
}

static void add_member(struct wire_member *w, const struct record *r) {
  snprintf(w->name, sizeof(w->name), "%s", r->name);
  snprintf(w->addr, sizeof(w->addr), "%s", r->addr);
  w->inc = r->inc;
  w->ver = r->ver;
  w->left = r->left;
}

static void publish_members(struct agent *a) {
  struct wire_member *list = calloc(MEMBERS_PER_MSG, sizeof(*list));
  struct wire_msg m;
  size_t i = 0, k = 0;

  if (list == NULL)
    return;
  add_member(&list[k++], &a->self);
  for (; i <= a->peers.n; i++) {
    bool flush = i == a->peers.n || k == MEMBERS_PER_MSG;
    if (flush && k > 0) {
      envelope(a, &m, WIRE_MEMBERS);
      m.members = list;
      m.nmembers = k;
      send_msg(a, &m);
      k = 0;
    }
    if (i < a->peers.n && a->peers.v[i]->rec.addr[0] != '\0')
      add_member(&list[k++], &a->peers.v[i]->rec);
  }
  free(list);
  a->members_sent_at = uv_now(&a->loop);
  a->members_wanted = false;
}

/* The gap grows with the cluster: a list is about 70 bytes per member and
 * goes to every member, so at 200 members one is 2.8 MB on the wire. */
static uint64_t members_gap(const struct agent *a) {
  uint64_t gap = (uint64_t)a->peers.n;
  return gap > MEMBERS_GAP_MS ? gap : MEMBERS_GAP_MS;
}

/* Quick republications. PUB drops what is sent before a new connection
 * is up, so after one the state is published again 5, 25, 100 and 400 ms
 * later. While new connections keep coming (a forming cluster, where
 * every agent opens N-1 of them) the sequence is not restarted for each:
 * once it ends, one more publication follows every SOON_TAIL_MS for as
 * long as more were asked for meanwhile. Every publication goes to every
 * member, so what a forming cluster pays is their number per agent: a few
 * plus one per SOON_TAIL_MS of forming, not a few per connection (which
 * at 200 agents was more than two cores could deliver). */
#define SOON_TAIL_MS 400

static void on_soon(uv_timer_t *t) {
  struct agent *a = container_of(t, struct agent, soon);
  size_t step = ARRAY_SIZE(soon_delays_ms) - a->soon_left;
  /* A member list goes to every member and grows with the cluster (200
   * members: two messages, 14 KB, to 199 pipes): at most one per
   * MEMBERS_GAP_MS here; one still wanted goes with a later step or the
   * next heartbeat. */
  if (a->members_wanted &&
      uv_now(&a->loop) - a->members_sent_at >= members_gap(a))
    publish_members(a);
  agent_publish(a, WIRE_STATE);
  if (--a->soon_left > 0) {
    uv_timer_start(t, on_soon, soon_delays_ms[step + 1] - soon_delays_ms[step],
                   0);
  } else if (a->soon_again) {
    a->soon_again = false;
    a->soon_left = 1;
    uv_timer_start(t, on_soon, SOON_TAIL_MS, 0);
  }
}

void agent_publish_soon(struct agent *a) {
  if (a->stopping)
    return;
  if (uv_is_active((uv_handle_t *)&a->soon)) {
    a->soon_again = true;
    return;
  }
  a->soon_left = ARRAY_SIZE(soon_delays_ms);
  a->soon_again = false;
  uv_timer_start(&a->soon, on_soon, soon_delays_ms[0], 0);
}

/* A hello is answered with the member list within MEMBERS_GAP_MS, however
 * many joiners say hello at once (one list answers them all) and whatever
 * the quick republications are doing. */
static void on_answer(uv_timer_t *t) {
  struct agent *a = container_of(t, struct agent, answer);
  publish_members(a);
  agent_publish(a, WIRE_STATE);
}

static void answer_hello(struct agent *a) {
  uint64_t since = uv_now(&a->loop) - a->members_sent_at, gap = members_gap(a);
  if (a->stopping || uv_is_active((uv_handle_t *)&a->answer))
    return;
  uv_timer_start(&a->answer, on_answer,
                 since >= gap ? soon_delays_ms[0] : gap - since, 0);
}

/* Views differ: send our list after a random delay within half a
 * heartbeat, unless someone else's list arrives first (handle_members
 * cancels it). In a forming cluster every agent sees differing digests
 * from every other; without this each would send its whole list to every
 * member, N^2 lists of N entries (560 MB at 200 agents), where a few
 * suffice. If views still differ, the next heartbeat tries again. */
static void on_list(uv_timer_t *t) {
  struct agent *a = container_of(t, struct agent, list);
  publish_members(a);
}

static void offer_list(struct agent *a) {
  uint32_t window = (uint32_t)(a->cfg->heartbeat_ms / 2);
  if (a->stopping || uv_is_active((uv_handle_t *)&a->list))
    return;
  uv_timer_start(&a->list, on_list,
                 window > 0 ? randombytes_uniform(window) : 0, 0);
}

void agent_heartbeat(uv_timer_t *t) {
  struct agent *a = container_of(t, struct agent, heartbeat);
  (void)peers_clock(&a->peers, uv_now(&a->loop));
  if (a->members_wanted)
    publish_members(a);
  agent_publish(a, !a->got_members && has_join(a) ? WIRE_HELLO : WIRE_STATE);
}

/* Until someone answers, say hello to the join addresses: every
 * HELLO_FIRST_MS for the first HELLO_FAST_TRIES (the first ones are lost
 * while the connection comes up, and more so on a loaded machine), then
 * with a gap doubling up to one heartbeat. */
static void on_hello(uv_timer_t *t) {
  struct agent *a = container_of(t, struct agent, hello);
  uint64_t gap;
  if (a->got_members)
    return;
  agent_publish(a, WIRE_HELLO);
  a->hello_tries++;
  if (a->hello_tries % 20 == 0)
    log_warn("no member has answered at the join addresses yet (%u tries)",
             a->hello_tries);
  gap = a->hello_tries < HELLO_FAST_TRIES
            ? HELLO_FIRST_MS
            : (uint64_t)HELLO_FIRST_MS
                  << (a->hello_tries - HELLO_FAST_TRIES < 10
                          ? a->hello_tries - HELLO_FAST_TRIES + 1
                          : 10);
  if (gap > a->cfg->heartbeat_ms)
    gap = a->cfg->heartbeat_ms;
  uv_timer_start(t, on_hello, gap, 0);
}

/* ---- endpoints ---- */

static struct endpoint *find_endpoint(struct agent *a, const char *addr) {
  for (size_t i = 0; i < a->neps; i++)
    if (strcmp(a->eps[i].addr, addr) == 0)
      return &a->eps[i];
  return NULL;
}

static struct endpoint *open_endpoint(struct agent *a, const char *addr,
                                      bool join) {
  struct endpoint *ep = find_endpoint(a, addr), *v;
  int id;
  if (ep != NULL) {
    ep->join |= join;
    return ep;
  }
  id = mesh_connect(&a->mesh, addr);
  if (id < 0) {
    log_warn("cannot connect to %s: %s", addr, choreo_strerror(id));
    return NULL;
  }
  v = realloc(a->eps, (a->neps + 1) * sizeof(*v));
  if (v == NULL) {
    mesh_disconnect(&a->mesh, id);
    return NULL;
  }
  a->eps = v;
  ep = &a->eps[a->neps++];
  memset(ep, 0, sizeof(*ep));
  snprintf(ep->addr, sizeof(ep->addr), "%s", addr);
  ep->id = id;
  ep->join = join;
  agent_publish_soon(a);
  return ep;
}

static void release_endpoint(struct agent *a, struct peer *peer) {
  struct endpoint *ep;
  if (peer->endpoint < 0)
    return;
  ep = find_endpoint(a, peer->endpoint_addr);
  peer->endpoint = -1;
  peer->endpoint_addr[0] = '\0';
  if (ep == NULL || --ep->refs > 0 || ep->join)
    return;
  mesh_disconnect(&a->mesh, ep->id);
  *ep = a->eps[--a->neps];
}

/* Keep one connection to each member that may still talk, at the address
 * it advertises now. */
static void sync_endpoint(struct agent *a, struct peer *peer) {
  struct endpoint *ep;
  if (peer->status == PEER_LEFT || peer->rec.addr[0] == '\0') {
    release_endpoint(a, peer);
    return;
  }
  if (peer->endpoint >= 0 && strcmp(peer->endpoint_addr, peer->rec.addr) == 0)
    return;
  release_endpoint(a, peer);
  ep = open_endpoint(a, peer->rec.addr, false);
  if (ep == NULL)
    return;
  ep->refs++;
  peer->endpoint = ep->id;
  snprintf(peer->endpoint_addr, sizeof(peer->endpoint_addr), "%s", ep->addr);
}

/* ---- receiving ---- */

void agent_peer_event(void *arg, const struct peer_event *ev) {
  struct agent *a = arg;
  uint64_t now = uv_now(&a->loop);
  json_t *o;

  if (ev->type == PEER_EV_REAPED) {
    release_endpoint(a, (struct peer *)ev->peer);
    engine_peer_event(&a->engine, ev, now);
    return;
  }
  a->metrics.peer_events++;
  /* A data event (data or groups changed) leaves the state as it was. */
  bool arrow = ev->type != PEER_EV_DATA && ev->previous[0] != '\0';
  log_info("peer %s %s: %s%s%s", ev->peer->rec.name, peer_event_name(ev->type),
           arrow ? ev->previous : "", arrow ? " -> " : "", ev->state);
  o = view_event(ev);
  if (o != NULL)
    control_broadcast(&a->control, o);
  json_decref(o);
  engine_peer_event(&a->engine, ev, now);
}

static void count_reject(struct agent *a, enum wire_reject r) {
  switch (r) {
  case WIRE_REJECT_TOO_BIG:
    a->metrics.drop_too_big++;
    break;
  case WIRE_REJECT_NOT_JSON:
    a->metrics.drop_not_json++;
    break;
  case WIRE_REJECT_BAD_VERSION:
    a->metrics.drop_bad_version++;
    break;
  case WIRE_REJECT_UNKNOWN_TYPE:
    a->metrics.drop_unknown_type++;
    break;
  case WIRE_REJECT_BAD_FIELD:
    a->metrics.drop_bad_field++;
    break;
  case WIRE_REJECT_OVER_LIMIT:
    a->metrics.drop_over_limit++;
    break;
  case WIRE_OK:
    break;
  }
}

/* Checks that need the agent's context: cluster, own name, freshness
 * (with a key ring), incarnation from the future, replay. Returns false
 * (counted) to drop. */
static bool admit(struct agent *a, const struct wire_msg *m, bool via_relay) {
  int64_t now_ms = util_wall_ms();
  uint64_t now_s = (uint64_t)(now_ms / 1000);
  if (strcmp(m->cluster, a->cfg->cluster) != 0) {
    a->metrics.drop_cluster++;
    return false;
  }
  if (strcmp(m->from, a->cfg->name) == 0) {
    a->metrics.drop_self_name++;
    log_debug("dropped a message claiming this node's name");
    return false;
  }
  /* Sealed messages carry their sending time under the MAC; one outside
   * the window is an old capture (or a badly wrong clock: said in the
   * log at debug level and counted, see docs/SECURITY.md). */
  if (a->ring != NULL &&
      (m->time == 0 || (int64_t)m->time < now_ms - AGENT_FRESH_MS ||
       (int64_t)m->time > now_ms + AGENT_FRESH_MS)) {
    a->metrics.drop_stale++;
    log_debug("dropped a stale message from %s: sent at %" PRIu64
              ", now %" PRId64,
              m->from, m->time, now_ms);
    return false;
  }
  if (m->inc > now_s + AGENT_FUTURE_SLACK_S) {
    a->metrics.drop_future++;
    return false;
  }
  /* Through two relays, or at a relay directly from a leaf and through
   * another relay, the same message arrives twice: expected, and counted
   * apart from replays. */
  if (!peers_accept_seq(&a->peers, m->from, m->inc, m->seq)) {
    if (via_relay || (m->leaf && a->cfg->relay))
      a->metrics.relay_duplicates++;
    else
      a->metrics.drop_replay++;
    return false;
  }
  return true;
}

/* Two descriptors per member (docs/ARCHITECTURE.md): say once when the
 * open-files limit can't hold the cluster, before connections start to
 * fail for want of them. */
static void check_fd_room(struct agent *a) {
  uint64_t need = 2 * ((uint64_t)a->peers.n + 1) + AGENT_FD_RESERVE;
  if (a->fd_warned || a->fd_limit == 0 || need <= a->fd_limit)
    return;
  a->fd_warned = true;
  log_warn("%zu members need about %" PRIu64 " open files but the limit is "
           "%" PRIu64 ": raise it (LimitNOFILE=, ulimit -n)",
           a->peers.n + 1, need, a->fd_limit);
}

static void merged(struct agent *a, enum peers_result res, struct peer *peer,
                   uint64_t now) {
  if (res == PEERS_FULL) {
    a->metrics.drop_table_full++;
    return;
  }
  if (peer == NULL)
    return;
  agent_wake_at(a, peers_next_deadline(&a->peers));
  /* A leaf's only connections are to its relays, kept from the start. */
  if (is_leaf(a))
    return;
  sync_endpoint(a, peer);
  if (res == PEERS_NEW)
    check_fd_room(a);
}

/* Views differ: which side sends its member list? The one that knows more
 * members; on a tie, the one whose name sorts first. Only one side of a
 * pair sends, so that a cluster whose views all differ while it forms (N
 * agents, each hearing N-1 digests) doesn't have every agent send its
 * whole list to every other twice a heartbeat. The other side, once it
 * knows more, sends in its turn, so views still meet. */
static bool lists_ours(const struct agent *a, const struct wire_msg *m) {
  uint64_t ours = (uint64_t)a->peers.n + 1;
  if (m->nknown != ours)
    return m->nknown < ours;
  return strcmp(a->cfg->name, m->from) < 0;
}

/* Whether a record tells this agent something, given the entry it has
 * for its node (NULL: none): a node it didn't know or hadn't heard, one
 * it thought lost or gone, or a newer version. */
static bool is_news(const struct peer *peer, const struct record *r) {
  return peer == NULL || !peer->heard || peer->status != PEER_ALIVE ||
         record_cmp(r, &peer->rec) > 0;
}

/* raw/rawlen: the message as received, which a relay forwards. */
static void handle_record(struct agent *a, struct wire_msg *m, uint64_t now,
                          bool via_relay, const void *raw, size_t rawlen) {
  struct peer *peer = peers_find(&a->peers, m->from);
  bool first_heard = peer == NULL || !peer->heard;
  /* A relay forwards what a leaf sent it directly (what came in a batch
   * has been forwarded by another relay already): its state and leave
   * messages, not its hello (answered here) nor its member lists (merged
   * here, and passed on through this relay's own lists). */
  bool forward =
      a->cfg->relay && !via_relay && m->leaf && m->type != WIRE_HELLO;
  bool news = forward && is_news(peer, &m->rec);
  enum peers_result res =
      peers_merge_direct(&a->peers, &m->rec, now, util_wall_ms(), &peer);
  merged(a, res, peer, now);
  if (peer != NULL)
    (void)peers_accept_seq(&a->peers, m->from, m->inc, m->seq);
  a->got_members = true;
  if (forward && peer != NULL)
    agent_relay_forward(a, raw, rawlen, news || m->type == WIRE_LEAVE);
  /* A hello gets our member list. A node we hear for the first time gets
   * our state again soon (what we sent before its inbox was connected was
   * dropped), but not our list: it has one from whoever answered its
   * hello, and differences are settled by the digests. A leaf has no
   * connection to anyone but its relays, and compares views with them
   * only, not with every member whose heartbeat they pass on. */
  bool same_view = m->digest == peers_digest(&a->peers, &a->self);
  if (same_view)
    a->view_agreed = true;
  if (m->type == WIRE_HELLO) {
    /* A leaf needs no list from its relay: it hears every member's own
     * record through the relays within a heartbeat, which a list (names
     * and addresses, no states) could not give it sooner. Our state
     * answers its hello; its view and ours are compared through the
     * digests like everyone's. A list goes to every member: at 200
     * leaves starting together, answering each hello with one cost
     * more than everything else the relay sent. */
    if (!(a->cfg->relay && m->leaf)) {
      a->members_wanted = true;
      answer_hello(a);
    }
    agent_publish_soon(a);
  } else if (is_leaf(a) && via_relay) {
    return;
  } else if (!is_leaf(a) &&
             (res == PEERS_NEW || (first_heard && peer != NULL))) {
    agent_publish_soon(a);
  } else if (!same_view &&
             now - a->members_sent_at >= a->cfg->heartbeat_ms / 2 &&
             lists_ours(a, m)) {
    offer_list(a);
  }
}

static void handle_members(struct agent *a, struct wire_msg *m, uint64_t now) {
  int64_t wall = util_wall_ms();
  /* Someone else has sent a list: ours, if one was offered, waits for
   * the next difference of digests. */
  uv_timer_stop(&a->list);
  for (size_t i = 0; i < m->nmembers; i++) {
    struct peer *peer = NULL;
    enum peers_result res =
        peers_merge_member(&a->peers, &m->members[i], now, wall, &peer);
    if (res == PEERS_FULL)
      a->metrics.members_capped++;
    else
      merged(a, res, peer, now);
  }
  a->got_members = true;
}

/* One message, received directly or as a frame of a relay's batch. */
static void on_one(struct agent *a, const void *buf, size_t len,
                   bool via_relay) {
  struct wire_error err;
  struct wire_msg m;
  unsigned char *plain = NULL;
  const void *raw = buf;
  size_t rawlen = len;
  uint64_t now = uv_now(&a->loop);

  a->metrics.msg_received++;
  /* A copy through a second relay, or our own message passed back: known
   * by its bytes, before the cost of opening and decoding it. A relay
   * notes what leaves send it directly too, for the copies other relays
   * pass on. */
  if ((via_relay || a->cfg->relay) && agent_relay_seen(a, buf, len) &&
      via_relay) {
    a->metrics.relay_duplicates++;
    return;
  }
  /* With a key ring, only what one of its keys opens is read at all: plain
   * text, another cluster's key and a changed byte are one rejection. */
  if (a->ring != NULL &&
      seal_open_alloc(a->ring, buf, len, &plain, &len) != 0) {
    a->metrics.drop_unauthenticated++;
    log_debug("dropped a message: unauthenticated");
    return;
  }
  if (wire_msg_init(&m) != 0) {
    free(plain);
    return;
  }
  if (wire_decode(plain != NULL ? (void *)plain : buf, len, &m, &err) != 0) {
    count_reject(a, err.reason);
    log_debug("dropped a message: %s: %s", wire_reject_name(err.reason),
              err.detail);
  } else if (via_relay && strcmp(m.from, a->cfg->name) == 0) {
    /* Our own message, passed on by a relay to every member. */
  } else if (admit(a, &m, via_relay)) {
    a->metrics.msg_accepted++;
    a->cur_rx_ns = uv_hrtime();
    if (m.type == WIRE_MEMBERS)
      handle_members(a, &m, now);
    else
      handle_record(a, &m, now, via_relay, raw, rawlen);
    agent_check_sync(a);
    agent_step(a);
    a->cur_rx_ns = 0;
  }
  wire_msg_free(&m);
  free(plain);
}

void agent_on_message(struct mesh *mesh, const void *buf, size_t len) {
  struct agent *a = container_of(mesh, struct agent, mesh);
  const void *frame;
  size_t flen, pos = 0;

  if (a->stopping)
    return;
  if (!batch_is(buf, len)) {
    on_one(a, buf, len, false);
    return;
  }
  /* A relay's batch: every frame is a message on its own, opened and
   * checked as if its sender had sent it here. */
  if (batch_check(buf, len) == 0) {
    a->metrics.msg_received++;
    a->metrics.drop_bad_batch++;
    log_debug("dropped a relay batch of %zu bytes: malformed framing", len);
    return;
  }
  a->metrics.relay_batches_received++;
  while (!a->stopping && batch_next(buf, len, &pos, &frame, &flen))
    on_one(a, frame, flen, true);
}

/* ---- startup sync ---- */

void agent_check_sync(struct agent *a) {
  uint64_t now = uv_now(&a->loop);
  uint64_t window = a->cfg->heartbeat_ms + a->cfg->heartbeat_ms / 2;
  /* Heard from every member it knows, and knows what a member knows:
   * when a whole cluster starts at once, the first list an agent gets
   * may predate some joiners, and its members would all be heard long
   * before it learns of the others. */
  bool all_heard = a->got_members && a->view_agreed;

  if (a->synced)
    return;
  for (size_t i = 0; all_heard && i < a->peers.n; i++) {
    const struct peer *p = a->peers.v[i];
    if (p->status == PEER_ALIVE && !p->heard)
      all_heard = false;
  }
  if (!all_heard && now - a->started_at < window) {
    agent_wake_at(a, a->started_at + window);
    return;
  }
  a->synced = true;
  log_info("synchronised with %zu members after %llu ms", a->peers.n,
           (unsigned long long)(now - a->started_at));
  engine_set_synced(&a->engine, now);
}

/* ---- start and stop ---- */

int agent_net_start(struct agent *a) {
  int rv = mesh_init(&a->mesh, &a->loop, a->cfg->listen, CHOREO_MSG_MAX,
                     agent_on_message);
  if (rv != 0) {
    log_error("network.listen: %s: %s", a->cfg->listen, choreo_strerror(rv));
    return rv;
  }
  a->mesh_open = true;
  if ((rv = mesh_start(&a->mesh)) != 0)
    return rv;
  for (size_t i = 0; i < a->cfg->njoin; i++)
    if (strcmp(a->cfg->join[i], a->self.addr) != 0)
      open_endpoint(a, a->cfg->join[i], true);
  for (size_t i = 0; i < a->cfg->nrelays; i++)
    if (strcmp(a->cfg->relays[i], a->self.addr) != 0)
      open_endpoint(a, a->cfg->relays[i], true);
  uv_timer_start(&a->heartbeat, agent_heartbeat, a->cfg->heartbeat_ms,
                 a->cfg->heartbeat_ms);
  if (a->neps > 0)
    uv_timer_start(&a->hello, on_hello, 0, 0);
  else
    a->got_members = false; /* a seed waits out the sync window */
  agent_wake_at(a, a->started_at + a->cfg->heartbeat_ms +
                       a->cfg->heartbeat_ms / 2);
  return 0;
}

static void on_mesh_closed(struct mesh *m) {}

void agent_net_close(struct agent *a) {
  if (a->mesh_open) {
    a->mesh_open = false;
    mesh_close(&a->mesh, on_mesh_closed);
  }
}
