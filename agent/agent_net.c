/*
 * agent_net.c — the network part, the agent's side of the protocol
 * (docs/PROTOCOL.md): publishing its record (heartbeats, changes, hello,
 * leave) and member lists, receiving and checking every message (alone
 * or in a relay's batch), keeping one PUB connection per member (a leaf:
 * per relay), and carrying out the startup sync (policy_sync decides when
 * the view can be trusted), with members.json in state_dir: the members
 * known before a restart, loaded at start and waited for, saved when
 * membership changes. It owns the
 * mesh, the endpoints, the sequence number and its timers; it reads this
 * node's record from the self part, hands leaves' messages to the relay
 * part, and tells the wiring through its hooks that a message was handled
 * (net.changed) or that a deadline is due (net.wake_at). What to admit,
 * answer or offer is policy.c's.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>

#include "agent.h"
#include "trust.h"
#include "batch.h"
#include "log.h"
#include "policy.h"
#include "util.h"
#include "wire.h"

/* Quick republications after a new connection: PUB drops what is sent
 * before a pipe is up (the slow joiner), so say it again shortly after. */
static const uint64_t soon_delays_ms[] = {5, 25, 100, 400};
/* Entries per members message: 128 of the largest possible (64-byte name,
 * 256-byte address) stay under CHOREO_MSG_MAX once encoded. */
#define MEMBERS_PER_MSG 128
/* With identity each entry carries a signature and a body hash (about
 * 150 bytes more): fewer per message keep it well under CHOREO_MSG_MAX. */
#define MEMBERS_PER_MSG_SIGNED 64
/* Certificates on demand: after a start, a new member, or a member
 * asking, the next NET_CERT_REPEATS state messages carry our certificate;
 * besides, every NET_CERT_EVERY-th does. Each name we ask a certificate
 * of goes in our next NET_CERT_REPEATS messages. */
#define NET_CERT_REPEATS 3
/* Messages that carry a resync request once one is decided. */
#define NET_RESYNC_REPEATS 3
#define NET_CERT_EVERY 30
/* The shortest gap between two member lists sent by the quick
 * republications (answers to hellos). */
#define MEMBERS_GAP_MS 50
/* members.json is saved again (when it changed) at most this often, in
 * heartbeats, and at stop. */
#define NET_MEMBERS_SAVE_EVERY 5

static void save_members_due(struct net *n);

static struct agent *agent_of(struct net *n) {
  return AGENT_OF(n, net);
}

/* A leaf (network.relays) talks to its relays only. */
static bool is_leaf(struct net *n) {
  return agent_of(n)->cfg->nrelays > 0;
}

/* Join addresses: network.join, or a leaf's relays. */
static bool has_join(struct net *n) {
  const struct config *cfg = agent_of(n)->cfg;
  return cfg->njoin > 0 || cfg->nrelays > 0;
}

/* ---- sending ---- */

static void send_msg(struct net *n, const struct wire_msg *m) {
  struct agent *a = agent_of(n);
  char *buf = NULL;
  unsigned char *box = NULL;
  size_t len = 0;
  int rv = wire_encode(m, &buf, &len);
  /* With a key ring nothing leaves unsealed (docs/SECURITY.md). */
  if (rv == 0 && a->ring != NULL)
    rv = seal_box_alloc(a->ring, buf, len, &box, &len);
  if (rv != 0) {
    log_error("cannot encode a %s message: %s", wire_type_name(m->type),
              choreo_strerror(rv));
  } else if (mesh_send(&n->mesh, box != NULL ? (void *)box : buf, len) == 0) {
    a->metrics.msg_sent++;
    /* Relays pass a leaf's messages back to it with everyone else's. */
    if (is_leaf(n))
      (void)relay_seen(&a->relay, box != NULL ? (void *)box : buf, len);
  } else {
    a->metrics.msg_send_failed++;
  }
  free(box);
  free(buf);
}

static void add_echoes(struct net *n, struct wire_msg *m);
static void echo_sweep(struct net *n, uint64_t now);

static void envelope(struct net *n, struct wire_msg *m, enum wire_type t) {
  struct agent *a = agent_of(n);
  memset(m, 0, sizeof(*m));
  m->type = t;
  snprintf(m->cluster, sizeof(m->cluster), "%s", a->cfg->cluster);
  snprintf(m->from, sizeof(m->from), "%s", a->cfg->name);
  m->inc = self_record(&a->self)->inc;
  m->seq = ++n->seq;
  m->time = (uint64_t)util_wall_ms();
  m->leaf = is_leaf(n);
  m->heartbeat_ms = a->cfg->heartbeat_ms;
  if (a->ring != NULL)
    add_echoes(n, m);
}

/* "unheard": the members we hold as lost, the most recently lost first
 * (at most WIRE_UNHEARD_MAX). One that is alive and hears us makes its
 * connection to us anew (handle_record): after heavy loss or a partition,
 * its messages to us may wait out TCP's retransmission back-off, seconds
 * after the network healed, while ours reach it. */
static void add_unheard(struct net *n, struct wire_msg *m) {
  struct agent *a = agent_of(n);
  const struct peer *pick[WIRE_UNHEARD_MAX];
  size_t k = 0;

  for (size_t i = 0; i < a->peers.n; i++) {
    const struct peer *p = a->peers.v[i];
    size_t j;
    if (p->status != PEER_LOST)
      continue;
    if (k == WIRE_UNHEARD_MAX && p->status_since <= pick[k - 1]->status_since)
      continue;
    j = k < WIRE_UNHEARD_MAX ? k++ : k - 1;
    for (; j > 0 && pick[j - 1]->status_since < p->status_since; j--)
      pick[j] = pick[j - 1];
    pick[j] = p;
  }
  for (size_t i = 0; i < k; i++)
    snprintf(m->unheard[i], sizeof(m->unheard[i]), "%s", pick[i]->rec->name);
  m->nunheard = k;
}

/* Whether this message carries our certificate: always a hello or a
 * leave; a state message while some are due, and every
 * NET_CERT_EVERY-th. */
static bool with_cert(struct net *n, enum wire_type type) {
  if (type != WIRE_STATE)
    return true;
  if (n->cert_due > 0) {
    n->cert_due--;
    return true;
  }
  return ++n->cert_tick % NET_CERT_EVERY == 0;
}

/* Peers may lack our certificate: send it in the next messages. */
static void offer_cert(struct net *n) {
  n->cert_due = NET_CERT_REPEATS;
}

void net_offer_cert(struct net *n) {
  offer_cert(n);
}

/* "want_cert": the members whose signed records came without a
 * certificate we hold, each named in a few messages. */
static void add_wants(struct net *n, struct wire_msg *m) {
  size_t k = 0;
  for (size_t i = 0; i < n->nwant; i++) {
    memcpy(m->want_cert[m->nwant++], n->want[i].name, sizeof(n->want[i].name));
    if (--n->want[i].left > 0)
      n->want[k++] = n->want[i];
  }
  n->nwant = k;
}

static void want_cert(struct net *n, const char *name) {
  for (size_t i = 0; i < n->nwant; i++)
    if (strcmp(n->want[i].name, name) == 0)
      return;
  if (n->nwant == WIRE_WANT_MAX)
    return; /* the others first; this one asks again after */
  snprintf(n->want[n->nwant].name, sizeof(n->want[0].name), "%s", name);
  n->want[n->nwant++].left = NET_CERT_REPEATS;
  net_publish_soon(n);
}

void net_publish(struct net *n, enum wire_type type) {
  struct agent *a = agent_of(n);
  const struct record *self = self_record(&a->self);
  struct wire_msg m;
  envelope(n, &m, type);
  /* A shallow copy: the message only borrows the record to encode it. */
  m.rec = *self;
  m.digest = peers_digest(&a->peers, self);
  m.nknown = (uint32_t)(a->peers.n + 1);
  if (type != WIRE_LEAVE)
    add_unheard(n, &m);
  /* Identity: our signature of the record, our certificate when a peer
   * may lack it, the certificates we lack, and the revocations learnt
   * lately (trust.h). */
  trust_sign(&a->trust, &m, self, with_cert(n, type));
  add_wants(n, &m);
  m.revoked = trust_revoked_for(&a->trust, false);
  if (a->cfg->relay) {
    /* A relay speaks for the leaves: those it holds lost, and the digest
     * of the records it holds, which members compare with theirs. */
    m.relay = true;
    m.nlost = peers_verdicts(&a->peers, m.lost, WIRE_LOST_MAX, &m.lost_total);
    /* Not while it reads its inbox behind: members would ask it for
     * catch-ups of records it holds as of a while ago, and it would read
     * their requests as late. */
    m.has_rdigest = !n->reading_behind;
    if (m.has_rdigest) {
      m.rdigest = peers_records_digest(&a->peers, self, -1);
      /* The digest counts the changes waiting for credit: they go first,
       * or every member would find its digest behind ours at once, and
       * all of them would ask for a resync together. */
      relay_flush_changes(&a->relay);
    }
    trust_sign_verdicts(&a->trust, &m);
  } else if (n->resync_left > 0) {
    n->resync_left--;
    m.resync = true;
  }
  send_msg(n, &m);
  json_decref(m.cert);
  json_decref(m.revoked);
}

void net_publish_change(struct net *n) {
  if (n->mesh_open)
    net_publish(n, WIRE_STATE);
}

int net_send_raw(struct net *n, const void *buf, size_t len) {
  return mesh_send(&n->mesh, buf, len);
}

static void add_member(struct net *n, struct wire_member *w,
                       const struct record *r) {
  struct agent *a = agent_of(n);
  snprintf(w->name, sizeof(w->name), "%s", r->name);
  snprintf(w->addr, sizeof(w->addr), "%s", r->addr);
  w->inc = r->inc;
  w->ver = r->ver;
  w->left = r->left;
  /* The node's own signature of this head, when we verified it. */
  trust_sign_member(&a->trust, w, self_record(&a->self));
}

static void publish_members(struct net *n) {
  struct agent *a = agent_of(n);
  struct wire_member *list = calloc(MEMBERS_PER_MSG, sizeof(*list));
  struct wire_msg m;
  size_t i = 0, k = 0;
  size_t per = a->trust.enabled ? MEMBERS_PER_MSG_SIGNED : MEMBERS_PER_MSG;
  /* Revocations travel with lists too: a newcomer learns them here. */
  json_t *revoked = trust_revoked_for(&a->trust, true);

  if (list == NULL) {
    json_decref(revoked);
    return;
  }
  add_member(n, &list[k++], self_record(&a->self));
  for (; i <= a->peers.n; i++) {
    bool flush = i == a->peers.n || k == per;
    if (flush && k > 0) {
      envelope(n, &m, WIRE_MEMBERS);
      m.members = list;
      m.nmembers = k;
      m.revoked = revoked;
      revoked = NULL; /* in the first message only */
      send_msg(n, &m);
      json_decref(m.revoked);
      k = 0;
    }
    if (i < a->peers.n && a->peers.v[i]->rec->addr[0] != '\0')
      add_member(n, &list[k++], a->peers.v[i]->rec);
  }
  json_decref(revoked);
  free(list);
  n->members_sent_at = uv_now(&a->loop);
  n->members_wanted = false;
}

/* The gap grows with the cluster: a list is about 70 bytes per member and
 * goes to every member, so at 200 members one is 2.8 MB on the wire. */
static uint64_t members_gap(struct net *n) {
  uint64_t gap = (uint64_t)agent_of(n)->peers.n;
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
  struct net *n = container_of(t, struct net, soon);
  size_t step = ARRAY_SIZE(soon_delays_ms) - n->soon_left;
  /* A member list goes to every member and grows with the cluster (200
   * members: two messages, 14 KB, to 199 pipes): at most one per
   * MEMBERS_GAP_MS here; one still wanted goes with a later step or the
   * next heartbeat. */
  if (n->members_wanted &&
      uv_now(&agent_of(n)->loop) - n->members_sent_at >= members_gap(n))
    publish_members(n);
  net_publish(n, WIRE_STATE);
  if (--n->soon_left > 0) {
    uv_timer_start(t, on_soon, soon_delays_ms[step + 1] - soon_delays_ms[step],
                   0);
  } else if (n->soon_again) {
    n->soon_again = false;
    n->soon_left = 1;
    uv_timer_start(t, on_soon, SOON_TAIL_MS, 0);
  }
}

void net_publish_soon(struct net *n) {
  if (n->stopped)
    return;
  if (uv_is_active((uv_handle_t *)&n->soon)) {
    n->soon_again = true;
    return;
  }
  n->soon_left = ARRAY_SIZE(soon_delays_ms);
  n->soon_again = false;
  uv_timer_start(&n->soon, on_soon, soon_delays_ms[0], 0);
}

/* A hello is answered with the member list within MEMBERS_GAP_MS, however
 * many joiners say hello at once (one list answers them all) and whatever
 * the quick republications are doing. */
static void on_answer(uv_timer_t *t) {
  struct net *n = container_of(t, struct net, answer);
  publish_members(n);
  net_publish(n, WIRE_STATE);
}

static void answer_hello(struct net *n) {
  uint64_t since = uv_now(&agent_of(n)->loop) - n->members_sent_at;
  uint64_t gap = members_gap(n);
  if (n->stopped || uv_is_active((uv_handle_t *)&n->answer))
    return;
  uv_timer_start(&n->answer, on_answer,
                 since >= gap ? soon_delays_ms[0] : gap - since, 0);
}

/* Views differ: send our list after a random delay within half a
 * heartbeat, unless someone else's list arrives first (handle_members
 * cancels it). In a forming cluster every agent sees differing digests
 * from every other; without this each would send its whole list to every
 * member, N^2 lists of N entries (560 MB at 200 agents), where a few
 * suffice. If views still differ, the next heartbeat tries again. */
static void on_list(uv_timer_t *t) {
  struct net *n = container_of(t, struct net, list);
  publish_members(n);
}

static void offer_list(struct net *n) {
  uint32_t window = (uint32_t)(agent_of(n)->cfg->heartbeat_ms / 2);
  if (n->stopped || uv_is_active((uv_handle_t *)&n->list))
    return;
  uv_timer_start(&n->list, on_list,
                 window > 0 ? randombytes_uniform(window) : 0, 0);
}

static void expire_alts(struct net *n);

/* A hello to the join addresses, counted, with a warning every 20. */
static void say_hello(struct net *n) {
  net_publish(n, WIRE_HELLO);
  n->hello_tries++;
  if (n->hello_tries % 20 == 0)
    log_warn("no member has answered at the join addresses yet (%u tries)",
             n->hello_tries);
}

/* Once a heartbeat: an agent that reads its inbox behind (starved of
 * CPU, or more to read than it can) would take the senders it has not
 * read yet for silent; while policy_behind() says so, every peer gets a
 * fresh lost_after, as after a stall. The verdict holds until the next
 * heartbeat or until a wake-up reads the inbox empty (on_drained),
 * whichever comes first. */
static void behind_check(struct net *n) {
  struct agent *a = agent_of(n);
  struct policy_behind_in in = {
      .msgs = n->lag_msgs,
      .late = n->lag_late,
      .read = n->inbox_read,
      .foreign = n->inbox_foreign,
      .full = n->mesh.full_reads != n->full_reads_seen,
      .drained = n->mesh.drained_reads != n->drained_reads_seen,
  };
  bool behind = policy_behind(&in);
  uint64_t worst = n->lag_max;

  n->full_reads_seen = n->mesh.full_reads;
  n->drained_reads_seen = n->mesh.drained_reads;
  n->lag_msgs = n->lag_late = n->lag_max = 0;
  n->inbox_read = n->inbox_foreign = 0;
  n->reading_behind = behind;
  if (!behind)
    return;
  peers_grace(&a->peers, uv_now(&a->loop));
  a->metrics.inbox_behind++;
  if (log_allow("behind", util_wall_ms()))
    log_warn("this agent reads its inbox behind (%s%.1f s late; starved "
             "of CPU, or more to read than it can): no peer is taken for "
             "lost from its silence until it catches up "
             "(choreo_inbox_behind_total counts the heartbeats)",
             in.drained
                 ? "messages up to "
                 : "its inbox never emptied in a heartbeat, messages up to ",
             (double)worst / 1000.0);
}

static void on_heartbeat(uv_timer_t *t) {
  struct net *n = container_of(t, struct net, heartbeat);
  struct agent *a = agent_of(n);
  /* Once a heartbeat: how the table tells this agent's own stalls. */
  if (peers_clock(&a->peers, uv_now(&a->loop)) &&
      log_allow("stall", util_wall_ms()))
    log_warn("this agent's loop stalled (the longest so far %" PRIu64
             " ms; paused, or starved of CPU): its peers get a fresh "
             "lost_after instead of being taken for lost "
             "(choreo_stalls_total counts stalls)",
             a->peers.stall_ms);
  behind_check(n);
  echo_sweep(n, uv_now(&a->loop));
  expire_alts(n);
  if (a->cfg->relay) {
    a->relay.all_quiet = peers_all_speak(&a->peers, WIRE_PROTO_QUIET);
    relay_share_sync(&a->relay, uv_now(&a->loop));
    relay_resume(&a->relay, uv_now(&a->loop), n->reading_behind);
  }
  if (n->members_wanted)
    publish_members(n);
  if (!n->got_members && has_join(n))
    say_hello(n);
  else
    net_publish(n, WIRE_STATE);
  save_members_due(n);
}

/* Until someone answers, say hello to the join addresses as
 * policy_hello_gap() says: quickly while a hello may have been lost on
 * the way, then with every heartbeat (on_heartbeat). */
static void on_hello(uv_timer_t *t) {
  struct net *n = container_of(t, struct net, hello);
  uint64_t gap, heartbeat_ms = agent_of(n)->cfg->heartbeat_ms;
  bool delivered;
  if (n->got_members)
    return;
  delivered = n->neps > 0 && mesh_out_up(&n->mesh) >= n->neps;
  say_hello(n);
  gap = policy_hello_gap(n->hello_tries, delivered, heartbeat_ms);
  if (gap > 0)
    uv_timer_start(t, on_hello, gap, 0);
}

/* ---- endpoints ---- */

static struct endpoint *find_endpoint(struct net *n, const char *addr) {
  for (size_t i = 0; i < n->neps; i++)
    if (strcmp(n->eps[i].addr, addr) == 0)
      return &n->eps[i];
  return NULL;
}

static struct endpoint *open_endpoint(struct net *n, const char *addr,
                                      bool join) {
  struct endpoint *ep = find_endpoint(n, addr), *v;
  int id;
  if (ep != NULL) {
    ep->join |= join;
    return ep;
  }
  id = mesh_connect(&n->mesh, addr);
  if (id < 0) {
    char key[CHOREO_ADDR_MAX + 16];
    /* The address came from a peer: at most once a minute each. */
    snprintf(key, sizeof(key), "connect:%s", addr);
    if (log_allow(key, util_wall_ms()))
      log_warn("cannot connect to %s: %s", addr, choreo_strerror(id));
    return NULL;
  }
  v = realloc(n->eps, (n->neps + 1) * sizeof(*v));
  if (v == NULL) {
    mesh_disconnect(&n->mesh, id);
    return NULL;
  }
  n->eps = v;
  ep = &n->eps[n->neps++];
  memset(ep, 0, sizeof(*ep));
  snprintf(ep->addr, sizeof(ep->addr), "%s", addr);
  ep->id = id;
  ep->join = join;
  net_publish_soon(n);
  return ep;
}

/* Drop one member's use of the connection to addr. */
static void release_addr(struct net *n, const char *addr) {
  struct endpoint *ep = find_endpoint(n, addr);
  if (ep == NULL || --ep->refs > 0 || ep->join)
    return;
  mesh_disconnect(&n->mesh, ep->id);
  *ep = n->eps[--n->neps];
}

static void release_alt(struct net *n, struct peer *peer) {
  struct peer_more *more = peer->more;
  if (more == NULL || more->alt_addr == NULL)
    return;
  release_addr(n, more->alt_addr);
  free(more->alt_addr);
  more->alt_addr = NULL;
}

static void release_endpoint(struct net *n, struct peer *peer) {
  if (peer->endpoint < 0)
    return;
  release_addr(n, peer_more_of(peer)->endpoint_addr);
  peer->endpoint = -1;
  if (peer->more != NULL) {
    free(peer->more->endpoint_addr);
    peer->more->endpoint_addr = NULL;
  }
}

void net_peer_reaped(struct net *n, struct peer *peer) {
  release_alt(n, peer);
  release_endpoint(n, peer);
  trust_forget(&agent_of(n)->trust, peer->rec->name);
}

/* Messages under peer's name came from addr, which is not the address of
 * the record we hold, and were behind it: connect to addr too for a
 * lost_after, so that what we send (the member list that makes a node
 * refute) reaches both. One such address per member. */
static void reach_also(struct net *n, struct peer *peer, const char *addr) {
  struct agent *a = agent_of(n);
  struct endpoint *ep;
  struct peer_more *more;
  char *copy;

  if (peer == NULL || is_leaf(n) || addr[0] == '\0' ||
      strcmp(addr, peer->rec->addr) == 0 ||
      strcmp(addr, self_record(&a->self)->addr) == 0)
    return;
  if ((more = peer_more(peer)) == NULL)
    return;
  more->alt_until = uv_now(&a->loop) + a->cfg->lost_after_ms;
  if (more->alt_addr != NULL && strcmp(addr, more->alt_addr) == 0)
    return;
  release_alt(n, peer);
  if ((copy = strdup(addr)) == NULL)
    return;
  if ((ep = open_endpoint(n, addr, false)) == NULL) {
    free(copy);
    return;
  }
  ep->refs++;
  more->alt_addr = copy;
}

/* Close the connections of reach_also() that are due. */
static void expire_alts(struct net *n) {
  struct agent *a = agent_of(n);
  uint64_t now = uv_now(&a->loop);
  for (size_t i = 0; i < a->peers.n; i++) {
    struct peer *p = a->peers.v[i];
    if (p->more != NULL && p->more->alt_addr != NULL &&
        now >= p->more->alt_until)
      release_alt(n, p);
  }
}

/* Keep one connection to each member that may still talk, at the address
 * it advertises now. */
static void sync_endpoint(struct net *n, struct peer *peer) {
  struct endpoint *ep;
  struct peer_more *more;
  char *copy;
  if (peer->status == PEER_LEFT || peer->rec->addr[0] == '\0') {
    release_endpoint(n, peer);
    return;
  }
  if (peer->endpoint >= 0 &&
      strcmp(peer_more_of(peer)->endpoint_addr, peer->rec->addr) == 0)
    return;
  release_endpoint(n, peer);
  if ((more = peer_more(peer)) == NULL ||
      (copy = strdup(peer->rec->addr)) == NULL)
    return;
  ep = open_endpoint(n, peer->rec->addr, false);
  if (ep == NULL) {
    free(copy);
    return;
  }
  ep->refs++;
  peer->endpoint = ep->id;
  more->endpoint_addr = copy;
}

/* ---- freshness (with a key ring; docs/PROTOCOL.md "Freshness") ---- */

/* How long a peer's new nonce is echoed, and how long our messages ask
 * for ours after a message was dropped for want of proof: heartbeats. */
#define ECHO_HEARTBEATS 3
#define PROVING_HEARTBEATS 2
/* Nonces echoed at most; when all are in use the one due to end first
 * gives way (its sender asks again if it still needs it). */
#define NET_ECHO_MAX 256

/* A peer's nonce, echoed in this agent's messages until `until`. */
struct net_echo {
  char name[CHOREO_NAME_MAX + 1];
  uint64_t nonce, inc, seq; /* and the (inc, seq) of the message it came in */
  uint64_t until;           /* monotonic ms; 0: a free slot */
  unsigned sent;            /* messages it was echoed in */
  /* The address of an endpoint opened to answer a sender not in the
   * table (owned; NULL: none), released when the entry goes. Its id may
   * change (redial), its address doesn't. */
  char *ep_addr;
};

static void echo_clear(struct net *n, struct net_echo *e) {
  if (e->ep_addr != NULL)
    release_addr(n, e->ep_addr);
  free(e->ep_addr);
  memset(e, 0, sizeof(*e));
}

/* Echo the nonces noted lately, the least echoed first, at most
 * WIRE_ECHO_MAX in one message. */
static void add_echoes(struct net *n, struct wire_msg *m) {
  uint64_t now = uv_now(&agent_of(n)->loop);
  m->nonce = n->nonce;
  m->proving = now < n->proving_until;
  while (n->echo != NULL && m->necho < WIRE_ECHO_MAX) {
    struct net_echo *best = NULL;
    for (size_t i = 0; i < NET_ECHO_MAX; i++) {
      struct net_echo *e = &n->echo[i];
      bool taken = false;
      if (e->until <= now)
        continue;
      for (size_t k = 0; k < m->necho && !taken; k++)
        taken = strcmp(m->echo[k].name, e->name) == 0;
      if (!taken && (best == NULL || e->sent < best->sent))
        best = e;
    }
    if (best == NULL)
      break;
    best->sent++;
    snprintf(m->echo[m->necho].name, sizeof(m->echo[0].name), "%s", best->name);
    m->echo[m->necho++].nonce = best->nonce;
  }
}

/* Expired entries let go of the endpoints they opened. */
static void echo_sweep(struct net *n, uint64_t now) {
  for (size_t i = 0; n->echo != NULL && i < NET_ECHO_MAX; i++)
    if (n->echo[i].until != 0 && n->echo[i].until <= now)
      echo_clear(n, &n->echo[i]);
}

/* The address to answer an unknown sender at: its record's, or its own
 * entry of its member list. */
static const char *sender_addr(const struct wire_msg *m) {
  if (m->type != WIRE_MEMBERS)
    return m->rec.addr;
  for (size_t i = 0; i < m->nmembers; i++)
    if (strcmp(m->members[i].name, m->from) == 0)
      return m->members[i].addr;
  return "";
}

/* The entry echoing name's nonce now, or NULL. */
static struct net_echo *echo_find(struct net *n, const char *name) {
  for (size_t i = 0; i < NET_ECHO_MAX; i++)
    if (n->echo[i].until != 0 && strcmp(n->echo[i].name, name) == 0)
      return &n->echo[i];
  return NULL;
}

static struct net_echo *echo_slot(struct net *n, const char *name) {
  struct net_echo *free_slot = NULL, *oldest = &n->echo[0];
  for (size_t i = 0; i < NET_ECHO_MAX; i++) {
    struct net_echo *e = &n->echo[i];
    if (e->until != 0 && strcmp(e->name, name) == 0)
      return e;
    if (e->until == 0 && free_slot == NULL)
      free_slot = e;
    if (e->until < oldest->until)
      oldest = e;
  }
  if (free_slot != NULL)
    return free_slot;
  echo_clear(n, oldest);
  return oldest;
}

/* Keep the nonce of peer echoed, with the (inc, seq) of the message that
 * brought it, in its entry. Out of memory: not kept, and echoed again. */
static void remember_echo(struct peer *peer, const struct wire_msg *m) {
  struct peer_more *more = peer_more(peer);
  if (more == NULL)
    return;
  more->echoed_nonce = m->nonce;
  more->echoed_inc = m->inc;
  more->echoed_seq = m->seq;
}

/* Note the nonce of an authenticated message as policy_echo_note says:
 * an armed one is echoed for ECHO_HEARTBEATS, starting with quick
 * republications. */
static void note_nonce(struct net *n, const struct wire_msg *m) {
  struct agent *a = agent_of(n);
  uint64_t now = uv_now(&a->loop);
  struct peer *peer;
  const struct peer_more *mem;
  struct net_echo *e;
  const char *addr;

  if (m->nonce == 0)
    return;
  if (n->echo == NULL &&
      (n->echo = calloc(NET_ECHO_MAX, sizeof(*n->echo))) == NULL)
    return;
  /* What we echo of it: the entry echoing now, or what its entry in the
   * table kept once the echo was over (a nonce echoed once, and not
   * asked for again, is not echoed again: that would go on forever, and
   * through relays every message carrying it goes to every member). */
  e = echo_find(n, m->from);
  peer = peers_find(&a->peers, m->from);
  /* Once the echo is over, only the same nonce is known: another one is
   * echoed whatever its (inc, seq), as when the entry was forgotten (a
   * node restarted below the incarnation held must be able to prove
   * itself, to be told it is behind). */
  mem = e == NULL && peer != NULL && peer_more_of(peer)->echoed_nonce != 0 &&
                peer_more_of(peer)->echoed_nonce == m->nonce
            ? peer_more_of(peer)
            : NULL;
  struct policy_echo_in in = {
      .known = e != NULL || mem != NULL,
      .active = e != NULL && e->until > now,
      .nonce = e != NULL     ? e->nonce
               : mem != NULL ? mem->echoed_nonce
                             : 0,
      .inc = e != NULL     ? e->inc
             : mem != NULL ? mem->echoed_inc
                           : 0,
      .seq = e != NULL     ? e->seq
             : mem != NULL ? mem->echoed_seq
                           : 0,
      .msg_nonce = m->nonce,
      .msg_inc = m->inc,
      .msg_seq = m->seq,
      .msg_proving = m->proving,
  };
  switch (policy_echo_note(&in)) {
  case POLICY_ECHO_KEEP:
    return;
  case POLICY_ECHO_ADVANCE:
    if (e != NULL) {
      e->inc = m->inc;
      e->seq = m->seq;
    }
    if (peer != NULL) {
      /* The same nonce as noted (a newcomer's, noted before it had an
       * entry in the table). */
      remember_echo(peer, m);
    }
    return;
  case POLICY_ECHO_ARM:
    break;
  }
  if (e == NULL)
    e = echo_slot(n, m->from);
  if (peer != NULL) {
    remember_echo(peer, m);
  }
  e->sent = 0;
  snprintf(e->name, sizeof(e->name), "%s", m->from);
  e->nonce = m->nonce;
  e->inc = m->inc;
  e->seq = m->seq;
  e->until = now + ECHO_HEARTBEATS * a->cfg->heartbeat_ms;
  /* A sender we have no connection to (a newcomer's hello we can't read
   * yet) needs one for our echo to reach it. */
  addr = sender_addr(m);
  if (e->ep_addr == NULL && !is_leaf(n) && addr[0] != '\0' &&
      peers_find(&a->peers, m->from) == NULL) {
    struct endpoint *ep = open_endpoint(n, addr, false);
    if (ep != NULL && (e->ep_addr = strdup(ep->addr)) != NULL)
      ep->refs++;
  }
  net_publish_soon(n);
}

static bool echoes_us(struct net *n, const struct wire_msg *m) {
  const char *name = agent_of(n)->cfg->name;
  for (size_t i = 0; i < m->necho; i++)
    if (m->echo[i].nonce == n->nonce && strcmp(m->echo[i].name, name) == 0)
      return true;
  return false;
}

/* A message was dropped for want of proof: ask every peer to echo our
 * nonce for a while (our next messages say "proving"). */
static void want_proof(struct net *n) {
  struct agent *a = agent_of(n);
  uint64_t now = uv_now(&a->loop);
  bool asking = now < n->proving_until;
  n->proving_until = now + PROVING_HEARTBEATS * a->cfg->heartbeat_ms;
  if (!asking)
    net_publish_soon(n);
}

/* A message straight from its sender (not through a relay): how late it
 * is read, counted towards this heartbeat's verdict on whether this agent
 * reads its inbox behind (on_heartbeat). */
static void note_lag(struct net *n, struct peer *peer, uint64_t msg_time,
                     uint64_t now) {
  struct peer_more *more = peer_more(peer);
  uint64_t lag;
  if (more == NULL)
    return;
  lag = policy_lag_note(&more->lag, msg_time, now);
  n->lag_msgs++;
  if (policy_lag_late(lag, agent_of(n)->cfg->heartbeat_ms))
    n->lag_late++;
  if (lag > n->lag_max)
    n->lag_max = lag;
}

/* After an admitted message: its sender proved freshness if it echoed
 * our nonce; its clock offset is kept, and a large one warned about. */
static void fresh_after(struct net *n, const struct wire_msg *m,
                        bool via_relay) {
  struct agent *a = agent_of(n);
  struct peer *peer = peers_find(&a->peers, m->from);
  uint64_t now = uv_now(&a->loop);
  int64_t wall = util_wall_ms();

  if (peer == NULL)
    return;
  if (a->ring != NULL && !peer->proved && echoes_us(n, m))
    peer->proved = true;
  if (m->time == 0)
    return;
  if (!via_relay)
    note_lag(n, peer, m->time, now);
  peer->clock_offset_ms = policy_clock_offset(m->time, wall);
  if (!policy_skew_warn(peer->clock_offset_ms, now,
                        peer_more_of(peer)->skew_warned,
                        peer_more_of(peer)->skew_warned_at) ||
      peer_more(peer) == NULL)
    return;
  peer->more->skew_warned = true;
  peer->more->skew_warned_at = now;
  a->metrics.clock_skew_warnings++;
  log_warn("peer %s: its clock is %+.1f s from ours (its sending time "
           "against our clock at receipt); the cluster works regardless, "
           "but check NTP there or here",
           m->from, (double)peer->clock_offset_ms / 1000.0);
}

/* A hello or a new incarnation says its sender has just started, a
 * message from a lost member that it is back: our connection to it may be
 * waiting out nanomsg's reconnection back-off (up to 3 s after its inbox
 * was gone), so that it would hear nothing from us for that long, not
 * even the member list that tells it to refute, or our leave. Make the
 * connection anew, at most once a heartbeat per member. */
static void redial(struct net *n, struct peer *peer) {
  struct agent *a = agent_of(n);
  uint64_t now = uv_now(&a->loop);
  struct endpoint *ep;
  int id;

  if (peer == NULL ||
      (peer_more_of(peer)->redialled_at != 0 &&
       now - peer_more_of(peer)->redialled_at < a->cfg->heartbeat_ms))
    return;
  /* A leaf's only connections are to its relays: their join endpoints. */
  if (is_leaf(n))
    ep = find_endpoint(n, peer->rec->addr);
  else
    ep = peer->endpoint >= 0
             ? find_endpoint(n, peer_more_of(peer)->endpoint_addr)
             : NULL;
  if (ep == NULL || (is_leaf(n) && !ep->join))
    return;
  if (peer_more(peer) == NULL)
    return;
  peer->more->redialled_at = now;
  if ((id = mesh_connect(&n->mesh, ep->addr)) < 0)
    return;
  mesh_disconnect(&n->mesh, ep->id);
  ep->id = id;
  if (!is_leaf(n))
    peer->endpoint = id;
  net_publish_soon(n);
}

/* ---- receiving ---- */

/* Whether the sender says it can't hear us (its "unheard"). */
static bool names_us(const struct wire_msg *m, const char *name) {
  for (size_t i = 0; i < m->nunheard; i++)
    if (strcmp(m->unheard[i], name) == 0)
      return true;
  return false;
}

void net_peer_lost(struct net *n, struct peer *peer) {
  /* Our connection to it may be what broke: make it anew, so that what
   * we send reaches it as soon as it can hear (redial: once a heartbeat
   * per member at most). */
  redial(n, peer);
  /* A relay's verdict on a leaf goes out at once, not at the heartbeat. */
  if (agent_of(n)->cfg->relay && peer->relayed)
    net_publish_soon(n);
}

/* ---- claims about this node ---- */

/* A sender is behind what we hold for it (policy_sender_behind): it
 * restarted with a lower incarnation, a forged record outranks its own,
 * or another agent has its name. Our member list carries its entry as
 * we hold it, which makes it refute. At most one list per half heartbeat
 * goes for this. */
static void tell_behind(struct net *n, const char *who) {
  struct agent *a = agent_of(n);
  uint64_t now = uv_now(&a->loop);
  /* Again with the quick republications, for a connection just made
   * (reach_also) that drops what is sent before it is up. */
  n->members_wanted = true;
  if (now - n->members_sent_at < a->cfg->heartbeat_ms / 2)
    return;
  log_debug("%s is behind the record held for it: sending the member list",
            who);
  publish_members(n);
  n->members_wanted = true;
}

/* Said at error level: a claim of our name from another address is a
 * cloned machine or a forger, and either needs an operator. */
static void log_rival(struct net *n, unsigned act) {
  struct agent *a = agent_of(n);
  const char *mine = self_record(&a->self)->addr;
  char key[CHOREO_ADDR_MAX + 16];

  if (act & POLICY_RIVAL_NEW) {
    a->metrics.name_conflicts++;
    n->rival.since_wall = util_wall_ms();
    snprintf(key, sizeof(key), "claim:%s", n->rival.addr);
    if (log_allow(key, n->rival.since_wall))
      log_error("name conflict: %s claims this node's name %s (this agent: "
                "%s); refuting it",
                n->rival.addr, a->cfg->name, mine);
  }
  if (act & POLICY_RIVAL_CONFLICT)
    log_error("name conflict: a live agent at %s has this node's name %s "
              "(this agent: %s)%s",
              n->rival.addr, a->cfg->name, mine,
              act & POLICY_RIVAL_STOP
                  ? "; this agent started later and stops: give one of them "
                    "another node.name"
                  : "; the one that started later should stop");
}

const struct policy_rival *net_rival(struct net *n) {
  struct agent *a = agent_of(n);
  (void)policy_rival_expire(&n->rival, uv_now(&a->loop), POLICY_RIVAL_SHOWN_MS);
  return n->rival.addr[0] != '\0' ? &n->rival : NULL;
}

/* A claim about this node (policy_claim): refute what it didn't make;
 * from another address, see whether a live agent has our name
 * (policy_rival_claim). */
static void claim(struct net *n, const struct policy_claim_in *in) {
  struct agent *a = agent_of(n);
  const struct record *own = self_record(&a->self);
  enum policy_claim c = policy_claim(in);
  unsigned act = POLICY_RIVAL_REFUTE;

  /* A message under our name is counted as own_name already. */
  if (c == POLICY_CLAIM_BOUNDS) {
    if (!in->direct)
      a->metrics.members_future++;
    return;
  }
  /* Leaving: the leave is this node's last word. */
  if (c != POLICY_CLAIM_REFUTE || own->left || n->stopped)
    return;
  if (strcmp(in->addr, own->addr) != 0) {
    uint64_t now = uv_now(&a->loop);
    struct policy_rival_in rin = {
        .addr = in->addr,
        .inc = in->inc,
        .now = now,
        .uptime = now - n->started_at,
        .heartbeat_ms = a->cfg->heartbeat_ms,
        .lost_after_ms = a->cfg->lost_after_ms,
    };
    act = policy_rival_claim(&n->rival, &rin);
    log_rival(n, act);
    if (act & POLICY_RIVAL_STOP) {
      n->name_taken(n);
      return;
    }
  }
  if (act & POLICY_RIVAL_REFUTE) {
    log_debug("refuting a claim about this node: inc %" PRIu64 " ver %" PRIu64
              " at %s%s",
              in->inc, in->ver, in->addr, in->left ? ", left" : "");
    self_refute(&a->self, in->inc);
  }
}

/* A message under our own name that we didn't send: its record, or for
 * a member list our entry in it, is a claim about this node. */
static void own_name_claims(struct net *n, const struct wire_msg *m) {
  struct agent *a = agent_of(n);
  struct policy_claim_in in = {.own = self_record(&a->self),
                               .now_ms = util_wall_ms()};
  if (m->type != WIRE_MEMBERS) {
    in.direct = true;
    in.inc = m->inc;
    in.ver = m->rec.ver;
    in.addr = m->rec.addr;
    in.left = m->rec.left || m->type == WIRE_LEAVE;
    in.state = m->rec.state;
    in.reason = m->rec.reason;
    claim(n, &in);
    return;
  }
  for (size_t i = 0; i < m->nmembers; i++) {
    const struct wire_member *e = &m->members[i];
    if (strcmp(e->name, a->cfg->name) != 0 || !trust_own_entry(&a->trust, e))
      continue;
    in.inc = e->inc;
    in.ver = e->ver;
    in.addr = e->addr;
    in.left = e->left;
    claim(n, &in);
  }
}

/* A message refused for `reason` (the label of its
 * choreo_messages_dropped_total row), from `from` when its sender's name
 * is known (NULL: not decoded yet; nanomsg doesn't say the sender's
 * address). Counted by the caller; said at warning level at most once a
 * minute per sender and reason, and, through log_allow(), at most 60
 * lines a minute in all: no flood can grow the log faster. */
static void refused(const char *reason, const char *from, const char *detail) {
  char key[CHOREO_NAME_MAX + 64];

  snprintf(key, sizeof(key), "refused:%s:%s", reason, from ? from : "");
  if (!log_allow(key, util_wall_ms()))
    return;
  log_warn("refused a message%s%s: %s%s%s (said once a minute per sender and "
           "reason; choreo_messages_dropped_total counts each)",
           from ? " from " : "", from ? from : "", reason, detail ? ": " : "",
           detail ? detail : "");
}

/* Checks that need the agent's context (policy_admit): cluster, own
 * name, freshness (with a key ring), incarnation from the future,
 * replay. Returns false (counted) to drop. */
/* A sender whose message was not newer than the last taken from it may
 * be behind (policy_sender_behind): it restarted below the incarnation
 * held. Tell it, at the address it sent from too. */
static void maybe_behind(struct net *n, const struct wire_msg *m) {
  struct peer *peer = peers_find(&agent_of(n)->peers, m->from);
  if (!policy_sender_behind(peer, m->inc, NULL))
    return;
  if (m->type == WIRE_HELLO)
    redial(n, peer);
  if (m->type != WIRE_MEMBERS)
    reach_also(n, peer, m->rec.addr);
  tell_behind(n, m->from);
}

/* Whether m is taken in: POLICY_ADMIT, or why not (counted here). */
static enum policy_admit admit(struct net *n, const struct wire_msg *m,
                               bool via_relay, bool signed_current) {
  struct agent *a = agent_of(n);
  int64_t now_ms = util_wall_ms();
  const struct peer *sender = peers_find(&a->peers, m->from);
  struct policy_admit_in in = {
      .cluster = a->cfg->cluster,
      .name = a->cfg->name,
      .keyed = a->ring != NULL,
      .now_ms = now_ms,
      .msg_cluster = m->cluster,
      .msg_from = m->from,
      .msg_time = m->time,
      .msg_inc = m->inc,
      .proved = sender != NULL && sender->proved,
      .echoes_us = a->ring != NULL && echoes_us(n, m),
      .msg_nonce = m->nonce != 0,
  };
  enum policy_admit r = policy_admit(&in);
  if (a->ring != NULL && r != POLICY_DROP_CLUSTER && r != POLICY_DROP_SELF_NAME)
    note_nonce(n, m);
  if (r == POLICY_ADMIT) {
    bool fresh = peers_accept_seq(&a->peers, m->from, m->inc, m->seq);
    /* With identity the sequence number, which no signature covers, can't
     * drop a record its node signed that is at least as new as the one
     * held: a forger who replays the node's message with a far sequence
     * number can't make its next heartbeats and versions look replayed
     * (docs/SECURITY.md "Identity"). */
    if (!fresh && signed_current) {
      struct peer *p = peers_find(&a->peers, m->from);
      p->msg_inc = m->inc;
      p->msg_seq = m->seq;
      fresh = true;
    }
    r = policy_admit_seq(fresh, via_relay, m->leaf, a->cfg->relay);
  }
  switch (r) {
  case POLICY_ADMIT:
    break;
  case POLICY_DROP_CLUSTER:
    a->metrics.drop_cluster++;
    refused("other_cluster", m->from, m->cluster);
    break;
  case POLICY_DROP_SELF_NAME:
    /* Not ours (a relay's copy of ours was set aside before): a claim
     * about this node, by a forger or another agent with our name. */
    a->metrics.drop_self_name++;
    own_name_claims(n, m);
    break;
  case POLICY_DROP_STALE:
    /* Not proved fresh yet: a replay, or a peer that hasn't heard our
     * nonce yet; ask for it. */
    a->metrics.drop_stale++;
    refused("stale", m->from, "not proved fresh yet");
    want_proof(n);
    break;
  case POLICY_DROP_FUTURE:
    a->metrics.drop_future++;
    refused("future", m->from, "incarnation more than a day ahead");
    break;
  case POLICY_DROP_RELAY_DUPLICATE:
    a->metrics.relay_duplicates++;
    /* At a relay, straight from a leaf: the leaf may be behind (it
     * restarted below the incarnation held), and only we can tell it. */
    if (!via_relay)
      maybe_behind(n, m);
    break;
  case POLICY_DROP_REPLAY:
    a->metrics.drop_replay++;
    refused("replay", m->from, NULL);
    maybe_behind(n, m);
    break;
  }
  return r;
}

/* Two descriptors per member (docs/ARCHITECTURE.md): say once when the
 * open-files limit can't hold the cluster, before connections start to
 * fail for want of them. */
static void check_fd_room(struct net *n) {
  size_t npeers = agent_of(n)->peers.n;
  uint64_t need = 2 * ((uint64_t)npeers + 1) + AGENT_FD_RESERVE;
  if (n->fd_warned || n->fd_limit == 0 || need <= n->fd_limit)
    return;
  n->fd_warned = true;
  log_warn("%zu members need about %" PRIu64 " open files but the limit is "
           "%" PRIu64 ": raise it (LimitNOFILE=, ulimit -n)",
           npeers + 1, need, n->fd_limit);
}

/* The peer table is at its memory budget (peers.h): say so, at most once
 * a minute, with what it holds. */
static void over_budget(struct agent *a) {
  if (log_allow("peers:budget", util_wall_ms()))
    log_warn("the peer table holds %zu bytes, its budget is %zu: records "
             "and member entries that would grow it are refused (%" PRIu64
             " so far, choreo_peer_table_refused_total)",
             a->peers.bytes, a->peers.bytes_max, a->peers.budget_drops);
}

static void merged(struct net *n, enum peers_result res, struct peer *peer,
                   uint64_t now) {
  struct agent *a = agent_of(n);
  if (res == PEERS_FULL) {
    a->metrics.drop_table_full++;
    refused("table_full", NULL, NULL);
    return;
  }
  if (res == PEERS_OVER_BUDGET) {
    over_budget(a);
    return;
  }
  if (peer == NULL)
    return;
  n->wake_at(n, peers_next_deadline(&a->peers));
  /* A leaf's only connections are to its relays, kept from the start. */
  if (is_leaf(n))
    return;
  sync_endpoint(n, peer);
  if (a->cfg->relay)
    relay_share_peer(&a->relay, peer);
  if (res == PEERS_NEW)
    check_fd_room(n);
}

/* Carry out what policy_after_record decided. */
static void after_record(struct net *n, unsigned todo) {
  if (todo & POLICY_ANSWER_LIST) {
    n->members_wanted = true;
    answer_hello(n);
  }
  if (todo & POLICY_PUBLISH_SOON)
    net_publish_soon(n);
  if (todo & POLICY_OFFER_LIST)
    offer_list(n);
}

/* Whether the relay in slot forwards to this member: as it decides
 * (policy_relay_serves), from the relays this member holds alive. */
static bool served_by(struct net *n, int slot) {
  struct agent *a = agent_of(n);
  const char *others[PEERS_RELAYS_MAX];
  const struct peer *r = a->peers.relays[slot];
  size_t k = peers_relays_alive(&a->peers, r, others);
  return policy_relay_serves(r->rec->name, others, k, a->cfg->name, is_leaf(n));
}

/* A relay's own message: take its verdicts on the leaves, and compare
 * its records digest with ours; when they keep differing, ask the relays
 * for a resync (policy_resync_note). */
static void relay_said(struct net *n, const struct wire_msg *m, uint64_t now) {
  struct agent *a = agent_of(n);
  int slot;

  /* A relay that holds us lost can't hear us, though we hear it: our
   * connection to it may wait out a reconnection back-off. Make it anew
   * (at most once a heartbeat). */
  for (size_t i = 0; i < m->nlost; i++)
    if (strcmp(m->lost[i].name, a->cfg->name) == 0)
      redial(n, peers_find(&a->peers, m->from));
  /* With identity, only verdicts the relay signed with this message's
   * stamp count (trust.h). */
  if (!trust_check_verdicts(&a->trust, m, util_wall_ms()))
    refused("verdicts", m->from, "a relay's verdicts not signed by it");
  else if (peers_relay_verdicts(&a->peers, m->from, m->inc, m->seq, m->lost,
                                m->nlost, m->nlost == m->lost_total, now,
                                util_wall_ms()) > 0)
    a->metrics.verdict_losses++;
  n->wake_at(n, peers_next_deadline(&a->peers));
  slot = peers_relay_slot(&a->peers, m->from);
  /* A relay that reads behind sends no digest: what we asked of it may
   * never be read, and the back-off grew meanwhile; start over once it's
   * back. */
  if (slot >= 0 && !m->has_rdigest)
    policy_resync_forget(&n->resync[slot]);
  /* Before our startup sync, views still form: a difference is no news,
   * and counting it would only grow the back-off. */
  if (!m->has_rdigest || slot < 0 || !n->synced)
    return;
  /* With shares, only the relays that forward to us feed our records: a
   * relay that does not (docs/PROTOCOL.md "Shares") may differ while it
   * catches up on the cluster, and a resync it can't answer would only
   * make the relays that do pass every heartbeat on. */
  if (!served_by(n, slot)) {
    policy_resync_forget(&n->resync[slot]);
    return;
  }
  if (policy_resync_note(
          &n->resync[slot],
          peers_records_digest(&a->peers, self_record(&a->self), slot),
          m->rdigest, now, a->cfg->heartbeat_ms)) {
    a->metrics.resyncs_asked++;
    log_info("records differ from relay %s's: asking for a resync", m->from);
    n->resync_left = NET_RESYNC_REPEATS;
    net_publish_soon(n);
  }
}

/* A relay passes a leaf's message on (policy_relay_pass): at once, with
 * the repeats, or not at all. */
static void pass_on(struct net *n, const struct wire_msg *m, struct peer *peer,
                    bool news, uint64_t now, const void *raw, size_t rawlen) {
  struct agent *a = agent_of(n);
  struct policy_relay_mode mode = {
      .catch_up = relay_window_open(&a->relay, now),
      .all_quiet = a->relay.all_quiet,
      .behind = n->reading_behind,
  };
  /* One member's catch-up costs a copy a record, however behind. */
  struct policy_relay_mode alone = {.catch_up = true,
                                    .all_quiet = a->relay.all_quiet};
  enum policy_relay_pass pass = policy_relay_pass_msg(
      m, peer, news,
      m->cert != NULL && relay_cert_wanted(&a->relay, m->from, now), &mode, now,
      a->cfg->heartbeat_ms);

  /* Members catching up alone get what everyone gets, and the repeats
   * a window would pass on. */
  if (relay_targets_open(&a->relay, now) &&
      (pass != POLICY_PASS_NONE ||
       policy_relay_pass_msg(m, peer, news, false, &alone, now,
                             a->cfg->heartbeat_ms) != POLICY_PASS_NONE))
    relay_targets_add(&a->relay, raw, rawlen, m->from, now);
  if (pass == POLICY_PASS_NONE) {
    a->metrics.relay_quiet++;
    return;
  }
  relay_forward(&a->relay, raw, rawlen, pass == POLICY_PASS_NEWS);
  peer_passed(peer, &m->rec);
}

/* A leaf's message that reached this relay straight from the leaf after
 * the same message came through another relay: merged already, but not
 * passed on by this relay, whose share would then have it from the other
 * relays only (one copy, or none behind a loss, until the leaf's next
 * heartbeat). Passed on as any message straight from a leaf. */
static void pass_duplicate(struct net *n, const struct wire_msg *m,
                           uint64_t now, bool via_relay, const void *raw,
                           size_t rawlen) {
  struct agent *a = agent_of(n);
  struct peer *peer = peers_find(&a->peers, m->from);
  if (peer == NULL || m->type == WIRE_MEMBERS ||
      !policy_relay_forwards(a->cfg->relay, via_relay, m->leaf,
                             m->type == WIRE_HELLO, false))
    return;
  pass_on(n, m, peer, false, now, raw, rawlen);
}

/* Merge a state, hello or leave record; a relay forwards a leaf's (the
 * bytes as received: raw/rawlen); then answer, republish or offer the
 * member list as policy_after_record says. */
static void handle_record(struct net *n, struct wire_msg *m, uint64_t now,
                          bool via_relay, const void *raw, size_t rawlen) {
  struct agent *a = agent_of(n);
  struct peer *peer = peers_find(&a->peers, m->from);
  bool first_heard = peer == NULL || !peer->heard;
  /* It has just started (a hello, a new incarnation) or is back. */
  bool restarted =
      peer != NULL &&
      (m->type == WIRE_HELLO || (peer->heard && (m->inc > peer->rec->inc ||
                                                 peer->status != PEER_ALIVE)));
  bool news = a->cfg->relay && m->leaf && policy_is_news(peer, &m->rec);
  bool forward = policy_relay_forwards(a->cfg->relay, via_relay, m->leaf,
                                       m->type == WIRE_HELLO, news);
  enum peers_result res =
      peers_merge_direct(&a->peers, &m->rec, now, util_wall_ms(), &peer);
  if (restarted || names_us(m, a->cfg->name))
    redial(n, peer);
  merged(n, res, peer, now);
  if (peer != NULL) {
    (void)peers_accept_seq(&a->peers, m->from, m->inc, m->seq);
    peers_note_roles(&a->peers, peer, m->leaf, m->relay, now);
    if (a->cfg->relay)
      relay_share_peer(&a->relay, peer); /* its role may be new */
  }
  if (res == PEERS_STALE && policy_sender_behind(peer, m->inc, &m->rec)) {
    reach_also(n, peer, m->rec.addr);
    tell_behind(n, m->from);
  }
  n->got_members = true;
  if (m->relay && !via_relay && !a->cfg->relay && peer != NULL)
    relay_said(n, m, now);
  /* Who may lack records gets every heartbeat for a while, alone if it
   * can (relay_catch_up): a joiner (at its hello, and again at its first
   * state after hellos, which says it has our answer: what we passed on
   * before our connection to it was up never reached it), a leaf new,
   * restarted or back, a member that asked. */
  if (a->cfg->relay && !via_relay && peer != NULL) {
    bool answered = peer->hello_last && m->type != WIRE_HELLO;
    peer->hello_last = m->type == WIRE_HELLO;
    if (m->type == WIRE_HELLO || answered || m->resync ||
        (m->leaf && (first_heard || restarted)))
      relay_catch_up(&a->relay, peer, now);
  }
  if (forward && peer != NULL)
    pass_on(n, m, peer, news, now, raw, rawlen);
  struct policy_record_in in = {
      .hello = m->type == WIRE_HELLO,
      .from_leaf = m->leaf,
      .from_relay = m->relay,
      .via_relay = via_relay,
      .we_relay = a->cfg->relay,
      .we_leaf = is_leaf(n),
      .new_peer = res == PEERS_NEW || (first_heard && peer != NULL),
      .now = now,
      .list_at = n->members_sent_at,
      .heartbeat_ms = a->cfg->heartbeat_ms,
      .npeers = a->peers.n,
      .name = a->cfg->name,
      .their_known = m->nknown,
      .their_name = m->from,
      .lottery = is_leaf(n) ? randombytes_random() : 0,
  };
  /* Views are compared where it counts only: until they first agree
   * (the startup sync waits for that) and where the decision reads it. */
  if (!n->view_agreed || policy_view_matters(&in))
    in.same_view =
        peers_same_view(&a->peers, self_record(&a->self), m->digest, m->nknown);
  if (in.same_view)
    n->view_agreed = true;
  /* A member new to us, or back from a restart, may lack our
   * certificate: the republications that follow carry it. */
  if (in.new_peer || restarted)
    offer_cert(n);
  after_record(n, policy_after_record(&in));
}

static void handle_members(struct net *n, struct wire_msg *m, uint64_t now) {
  struct agent *a = agent_of(n);
  int64_t wall = util_wall_ms();
  /* Someone else has sent a list: ours, if one was offered, waits for
   * the next difference of digests. */
  uv_timer_stop(&n->list);
  for (size_t i = 0; i < m->nmembers; i++) {
    const struct wire_member *e = &m->members[i];
    struct wire_member hint;
    struct peer *peer = NULL;
    enum peers_result res;
    if (strcmp(e->name, a->cfg->name) == 0) {
      /* With identity, only what we signed ourselves is about us. */
      if (!trust_own_entry(&a->trust, e))
        continue;
      struct policy_claim_in in = {.own = self_record(&a->self),
                                   .inc = e->inc,
                                   .ver = e->ver,
                                   .addr = e->addr,
                                   .left = e->left,
                                   .now_ms = wall};
      claim(n, &in);
      if (n->stopped)
        return;
      continue;
    }
    /* The bound on envelopes holds for entries: one entry far ahead
     * would otherwise outrank the node's own records for as long. */
    if (!policy_inc_in_bounds(e->inc, wall)) {
      a->metrics.members_future++;
      continue;
    }
    switch (trust_check_member(&a->trust, e, wall)) {
    case TRUST_MEMBER_OK:
      res = peers_merge_member(&a->peers, e, now, wall, &peer);
      break;
    case TRUST_MEMBER_HINT:
      /* Unsigned, or signed by a key we can't check yet: only that the
       * name exists at that address, for a name we don't know. */
      if (peers_find(&a->peers, e->name) != NULL)
        continue;
      hint = (struct wire_member){.inc = 0, .ver = 0, .left = false};
      memcpy(hint.name, e->name, sizeof(hint.name));
      memcpy(hint.addr, e->addr, sizeof(hint.addr));
      res = peers_merge_member(&a->peers, &hint, now, wall, &peer);
      break;
    default:
      continue;
    }
    if (res == PEERS_FULL)
      a->metrics.members_capped++;
    else if (res == PEERS_OVER_BUDGET)
      over_budget(a);
    else
      merged(n, res, peer, now);
  }
  n->got_members = true;
}

/* A message of another version than we read: said once per sender (a
 * member's entry keeps that it was said; an unknown sender is
 * rate-limited). */
static void version_refused(struct net *n, const struct wire_error *err) {
  struct peer *peer = peers_find(&agent_of(n)->peers, err->from);
  char key[CHOREO_NAME_MAX + 16];

  if (err->from[0] == '\0')
    return;
  snprintf(key, sizeof(key), "version:%s", err->from);
  if (peer != NULL ? peer->version_refused : !log_allow(key, util_wall_ms()))
    return;
  if (peer != NULL)
    peer->version_refused = true;
  log_warn("peer %s: dropping its messages: %s (%s); this agent is %s",
           err->from, err->detail, wire_reject_name(err->reason),
           CHOREO_VERSION);
}

/* Keep what the sender's message said of its versions; say when they
 * change, an unversioned (0.1.0) agent's once. */
static void note_versions(struct net *n, const struct wire_msg *m) {
  struct agent *a = agent_of(n);
  struct peer *peer = peers_find(&a->peers, m->from);
  uint32_t agreed = 0;
  bool same;

  if (!m->versioned)
    a->metrics.msg_unversioned++;
  if (peer == NULL)
    return;
  (void)wire_proto_agree(WIRE_PROTO_MIN, WIRE_PROTO_MAX, m->proto_min,
                         m->proto_max, &agreed);
  same = peer->version_heard && peer->versioned == m->versioned &&
         peer->proto_min == m->proto_min && peer->proto_max == m->proto_max &&
         strcmp(peer_more_of(peer)->release, m->release) == 0;
  peer->version_heard = true;
  peer->version_refused = false;
  peer->versioned = m->versioned;
  /* All at most WIRE_PROTO_LIMIT: the decoder refuses more. */
  peer->proto_min = (uint16_t)m->proto_min;
  peer->proto_max = (uint16_t)m->proto_max;
  peer->proto = (uint16_t)agreed;
  /* Out of memory: the release is not kept, and shows as unknown. */
  if (m->release[0] != '\0' && peer_more(peer) != NULL)
    memcpy(peer->more->release, m->release, sizeof(peer->more->release));
  else if (peer->more != NULL)
    peer->more->release[0] = '\0';
  peer->heartbeat_ms = agreed >= WIRE_PROTO_HEARTBEAT ? m->heartbeat_ms : 0;
  if (same)
    return;
  if (!m->versioned)
    log_warn("peer %s runs an unversioned agent (0.1.0, protocol %d.0): "
             "understood, but it can't tell versions apart; upgrade it "
             "(docs/OPERATIONS.md \"Upgrades\")",
             m->from, WIRE_VERSION);
  else
    log_info("peer %s: version %s, protocol %d.%" PRIu32 "-%d.%" PRIu32
             ", speaking %d.%" PRIu32,
             m->from, m->release[0] != '\0' ? m->release : "unknown",
             WIRE_VERSION, m->proto_min, WIRE_VERSION, m->proto_max,
             WIRE_VERSION, agreed);
}

static bool names_wanted(const struct wire_msg *m, const char *name) {
  for (size_t i = 0; i < m->nwant; i++)
    if (strcmp(m->want_cert[i], name) == 0)
      return true;
  return false;
}

/* Identity (trust.h): learn the revocations the message carries, then
 * check its record's signature and certificate (a member list's entries
 * are checked one by one when merged). Returns false (counted) to drop;
 * *signed_current: a verified signed record at least as new as the one
 * held. */
static bool trusted(struct net *n, const struct wire_msg *m,
                    bool *signed_current) {
  struct agent *a = agent_of(n);
  const struct peer *peer;
  enum trust_verdict v;
  bool warn;

  *signed_current = false;
  if (m->revoked != NULL)
    agent_trust_learn(a, m->revoked, m->from);
  if (a->cfg->relay && m->nwant > 0)
    relay_note_wants(&a->relay, m, uv_now(&a->loop));
  if (a->trust.enabled && names_wanted(m, a->cfg->name)) {
    offer_cert(n);
    net_publish_soon(n);
  }
  if (m->type == WIRE_MEMBERS)
    return true;
  v = trust_check_record(&a->trust, m, util_wall_ms(), &warn);
  if (v == TRUST_OK_UNSIGNED) {
    if (warn)
      log_warn("peer %s sends unsigned records: accepted while "
               "identity.required is false (said once per peer; "
               "choreo_identity_unsigned_total counts them)",
               m->from);
    return true;
  }
  if (v == TRUST_DROP_NO_CERT) {
    /* We lack its certificate (we started, or forgot it): ask. */
    want_cert(n, m->from);
    return false;
  }
  if (v != TRUST_OK) {
    refused(trust_verdict_name(v), m->from, "identity check failed");
    return false;
  }
  peer = peers_find(&a->peers, m->from);
  *signed_current = a->trust.enabled && m->has_sig && peer != NULL &&
                    record_cmp(&m->rec, peer->rec) >= 0;
  return true;
}

/* One message, received directly or as a frame of a relay's batch. False
 * when no key opened it or it did not decode: not the cluster's. */
static bool on_one(struct net *n, const void *buf, size_t len, bool via_relay) {
  struct agent *a = agent_of(n);
  struct wire_error err;
  struct wire_msg m;
  unsigned char *plain = NULL;
  const void *raw = buf;
  size_t rawlen = len;
  uint64_t now = uv_now(&a->loop);
  bool signed_current = false, ours = true;
  enum policy_admit r;

  a->metrics.msg_received++;
  /* A copy through a second relay, or our own message passed back: known
   * by its bytes, before the cost of opening and decoding it. A relay
   * notes what leaves send it directly too, for the copies other relays
   * pass on. */
  if ((via_relay || a->cfg->relay) && relay_seen(&a->relay, buf, len) &&
      via_relay) {
    a->metrics.relay_duplicates++;
    return true;
  }
  /* With a key ring, only what one of its keys opens is read at all: plain
   * text, another cluster's key and a changed byte are one rejection. */
  if (a->ring != NULL &&
      seal_open_alloc(a->ring, buf, len, &plain, &len) != 0) {
    a->metrics.drop_unauthenticated++;
    refused("unauthenticated", NULL, NULL);
    return false;
  }
  if (wire_msg_init(&m) != 0) {
    free(plain);
    return true;
  }
  if (wire_decode(plain != NULL ? (void *)plain : buf, len, &m, &err) != 0) {
    ours = false;
    metrics_count_reject(&a->metrics, err.reason);
    /* Another version says so once per member, naming both versions. */
    if (err.reason == WIRE_REJECT_BAD_VERSION ||
        err.reason == WIRE_REJECT_PROTO)
      version_refused(n, &err);
    else
      refused(wire_reject_name(err.reason), NULL, err.detail);
  } else if (via_relay && strcmp(m.from, a->cfg->name) == 0) {
    /* Our own message, passed on by a relay to every member. */
  } else if (!trusted(n, &m, &signed_current)) {
    /* refused and counted by trusted() */
  } else if ((r = admit(n, &m, via_relay, signed_current)) ==
             POLICY_DROP_RELAY_DUPLICATE) {
    pass_duplicate(n, &m, now, via_relay, raw, rawlen);
  } else if (r == POLICY_ADMIT) {
    uint64_t rx_ns = uv_hrtime();
    a->metrics.msg_accepted++;
    if (m.type == WIRE_MEMBERS)
      handle_members(n, &m, now);
    else
      handle_record(n, &m, now, via_relay, raw, rawlen);
    note_versions(n, &m);
    fresh_after(n, &m, via_relay);
    net_check_sync(n);
    n->changed(n, rx_ns);
  }
  wire_msg_free(&m);
  free(plain);
  return ours;
}

static void on_message(struct mesh *mesh, const void *buf, size_t len) {
  struct net *n = container_of(mesh, struct net, mesh);
  struct agent *a = agent_of(n);
  const void *frame;
  size_t flen, pos = 0;
  bool ours = false;

  if (n->stopped)
    return;
  n->inbox_read++;
  if (!batch_is(buf, len)) {
    n->inbox_foreign += !on_one(n, buf, len, false);
    return;
  }
  /* A relay's batch: every frame is a message on its own, opened and
   * checked as if its sender had sent it here. */
  if (batch_check(buf, len) == 0) {
    a->metrics.msg_received++;
    a->metrics.drop_bad_batch++;
    refused("bad_batch", NULL, "malformed framing");
    n->inbox_foreign++;
    return;
  }
  a->metrics.relay_batches_received++;
  while (!n->stopped && batch_next(buf, len, &pos, &frame, &flen))
    ours |= on_one(n, frame, flen, true);
  n->inbox_foreign += !ours;
}

/* ---- startup sync ---- */

/* The counts policy_sync decides on: members other than this node, alive
 * and not left. */
static void sync_counts(struct net *n, struct policy_sync_in *in,
                        bool *group_heard) {
  struct agent *a = agent_of(n);
  const struct config *cfg = a->cfg;
  size_t missing = cfg->sync_ngroups;

  /* Kept by the table: this is asked after every message until the
   * agent is synced, and a pass over the table each time would cost N
   * times N while a cluster of N forms. */
  peers_live(&a->peers, &in->heard, &in->unheard);
  for (size_t i = 0; missing > 0 && i < a->peers.n; i++) {
    const struct peer *p = a->peers.v[i];
    if (p->status != PEER_ALIVE || p->rec->left || !p->heard)
      continue;
    for (size_t g = 0; g < cfg->sync_ngroups; g++) {
      if (!group_heard[g] && record_in_group(p->rec, cfg->sync_groups[g])) {
        group_heard[g] = true;
        missing--;
      }
    }
  }
  in->groups_missing += missing;
}

/* Say what the sync gave up waiting for. */
static void sync_gave_up(struct net *n, const struct policy_sync_in *in,
                         const bool *group_heard) {
  struct agent *a = agent_of(n);
  const struct config *cfg = a->cfg;
  char groups[CHOREO_GROUPS_MAX * (CHOREO_NAME_MAX + 2) + 1] = "";
  size_t used = 0, known_waiting = 0;

  for (size_t k = 0; k < n->known.n; k++) {
    const struct peer *p = peers_find(&a->peers, n->known.v[k].name);
    known_waiting += p != NULL && !p->heard && p->status == PEER_ALIVE;
  }
  for (size_t g = 0; g < cfg->sync_ngroups; g++) {
    int k;
    if (group_heard[g])
      continue;
    k = snprintf(groups + used, sizeof(groups) - used, " %s",
                 cfg->sync_groups[g]);
    if (k > 0 && (size_t)k < sizeof(groups) - used)
      used += (size_t)k;
  }
  log_warn("sync.max_wait (%" PRIu64 " ms) passed without a full view: %zu "
           "of %zu known members heard (sync.min_members %u), %zu known "
           "before the restart not heard yet, no member heard of groups:%s; "
           "acting on this view",
           cfg->sync_max_wait_ms, in->heard, in->heard + in->unheard,
           cfg->sync_min_members, known_waiting,
           groups[0] != '\0' ? groups : " (none missing)");
}

void net_check_sync(struct net *n) {
  struct agent *a = agent_of(n);
  const struct config *cfg = a->cfg;
  bool group_heard[CHOREO_GROUPS_MAX] = {false};
  uint64_t now = uv_now(&a->loop), recheck;
  struct policy_sync_in in = {
      .now = now,
      .started_at = n->started_at,
      .window = cfg->heartbeat_ms + cfg->heartbeat_ms / 2,
      .lost_after = cfg->lost_after_ms,
      .max_wait = cfg->sync_max_wait_ms,
      /* Heard from every member it knows, and knows what a member knows:
       * when a whole cluster starts at once, the first list an agent gets
       * may predate some joiners, and its members would all be heard long
       * before it learns of the others. */
      .got_members = n->got_members,
      .view_agreed = n->view_agreed,
      .min_members = cfg->sync_min_members,
  };

  if (n->synced)
    return;
  sync_counts(n, &in, group_heard);
  switch (policy_sync(&in, &recheck)) {
  case POLICY_SYNC_WAIT:
    n->wake_at(n, recheck);
    return;
  case POLICY_SYNC_GAVE_UP:
    sync_gave_up(n, &in, group_heard);
    break;
  case POLICY_SYNC_DONE:
    log_info("synchronised: %zu of %zu known members heard after %" PRIu64
             " ms",
             in.heard, in.heard + in.unheard, now - n->started_at);
    break;
  }
  n->synced = true;
  engine_set_synced(&a->engine, now);
  /* The view is trusted from now on: save it at once, so that even a
   * crash within the next heartbeats restarts knowing these members. */
  n->members_beats = 0;
  net_save_members(n);
}

/* ---- members.json ---- */

/* The members known before a restart: entries not heard yet, which the
 * sync waits for (or for their lost_after, when peers.c forgets them),
 * and connections to their inboxes. */
static void load_members(struct net *n) {
  struct agent *a = agent_of(n);
  const char *dir = a->cfg->state_dir;
  uint64_t now = uv_now(&a->loop);
  char *buf = NULL, why[256];
  size_t len = 0, added = 0;
  int rv = state_read(dir, MEMBERS_FILE, MEMBERS_FILE_MAX, &buf, &len);

  if (rv == CHOREO_ENOTFOUND)
    return; /* a first start: the startup window */
  if (rv == 0) {
    rv = members_parse(buf, len, a->cfg->name, &n->known, why, sizeof(why));
    free(buf);
  } else {
    snprintf(why, sizeof(why), "%s", choreo_strerror(rv));
  }
  if (rv != 0) {
    log_warn("state_dir: %s/%s: %s; the members known before are not, so "
             "conditions wait for a full view as at a first start",
             dir, MEMBERS_FILE, why);
    return;
  }
  for (size_t i = 0; i < n->known.n; i++) {
    const struct members_entry *m = &n->known.v[i];
    struct wire_member w = {.inc = m->inc, .ver = m->ver};
    struct peer *peer = NULL;
    enum peers_result res;
    memcpy(w.name, m->name, sizeof(w.name));
    memcpy(w.addr, m->addr, sizeof(w.addr));
    res = peers_merge_member(&a->peers, &w, now, util_wall_ms(), &peer);
    merged(n, res, peer, now);
    added += peer != NULL;
  }
  log_info("%s: %zu members known before the restart; conditions wait until "
           "each is heard or silent for lost_after",
           MEMBERS_FILE, added);
}

void net_save_members(struct net *n) {
  struct agent *a = agent_of(n);
  uint64_t key = members_digest(&a->peers);
  size_t left = 0;
  char *text;
  int rv;

  if (!n->synced || (n->members_saved && key == n->members_key))
    return;
  if ((text = members_encode(&a->peers, &left)) == NULL)
    return;
  rv = state_write(a->cfg->state_dir, MEMBERS_FILE, text);
  if (rv != 0) {
    if (state_report_due(&n->members_unsaved, uv_now(&a->loop)))
      log_error("state_dir: %s/%s: cannot save the members: %s; a restart "
                "would wait for the members saved before (%" PRIu64
                " more failures not logged)",
                a->cfg->state_dir, MEMBERS_FILE, choreo_strerror(rv),
                n->members_unsaved.suppressed);
    n->members_unsaved.suppressed = 0;
    free(text);
    return;
  }
  /* Said at most once a minute: a large cluster changing saves often. */
  if (left > 0 && log_allow("members_file_full", util_wall_ms()))
    log_warn("%s: %zu members beyond the first %d not saved (said at most "
             "once a minute)",
             MEMBERS_FILE, left, MEMBERS_FILE_ENTRIES);
  free(text);
  n->members_saved = true;
  n->members_key = key;
}

/* Once every NET_MEMBERS_SAVE_EVERY heartbeats. */
static void save_members_due(struct net *n) {
  if (++n->members_beats < NET_MEMBERS_SAVE_EVERY)
    return;
  n->members_beats = 0;
  net_save_members(n);
}

/* ---- start and stop ---- */

void net_init(struct net *n, uint64_t now, uint64_t fd_limit) {
  uv_loop_t *loop = &agent_of(n)->loop;
  uv_timer_init(loop, &n->heartbeat);
  uv_timer_init(loop, &n->soon);
  uv_timer_init(loop, &n->answer);
  uv_timer_init(loop, &n->list);
  uv_timer_init(loop, &n->hello);
  n->started_at = now;
  n->fd_limit = fd_limit;
}

/* A fresh nonce per start: what a peer echoes proves its message was
 * sent after this start. Never 0 (absent on the wire). */
static void draw_nonce(struct net *n) {
  do
    randombytes_buf(&n->nonce, sizeof(n->nonce));
  while (n->nonce == 0);
}

/* A wake-up read the inbox empty: whatever backlog made this agent read
 * behind is gone, so it says so now rather than at its next heartbeat. A
 * relay sends its records digest again, passes repeats on and serves the
 * catch-ups it put off (at a 3 s heartbeat, 2,000 simulated leaves whose
 * relays had caught up waited up to two more heartbeats for them, and
 * the cluster formed in 4.07 heartbeats where it now forms in 3.04,
 * median of five seeds; docs/BENCHMARKS.md "A relay caught up says so
 * at once"). */
static void on_drained(struct mesh *mesh) {
  struct net *n = container_of(mesh, struct net, mesh);
  struct agent *a = agent_of(n);

  if (!n->reading_behind)
    return;
  n->reading_behind = false;
  if (a->cfg->relay)
    relay_resume(&a->relay, uv_now(&a->loop), false);
}

int net_start(struct net *n) {
  struct agent *a = agent_of(n);
  const char *self_addr = self_record(&a->self)->addr;
  int rv =
      mesh_init(&n->mesh, &a->loop, a->cfg->listen, CHOREO_MSG_MAX, on_message);
  if (rv != 0) {
    log_error("network.listen: %s: %s", a->cfg->listen, choreo_strerror(rv));
    return rv;
  }
  n->mesh_open = true;
  n->mesh.on_drained = on_drained;
  /* A relay times every member's silence itself; anyone else takes the
   * relays' word on leaves (peers_relay_verdicts). */
  peers_set_covered(&a->peers, !a->cfg->relay);
  draw_nonce(n);
  offer_cert(n);
  if ((rv = mesh_start(&n->mesh)) != 0)
    return rv;
  load_members(n);
  for (size_t i = 0; i < a->cfg->njoin; i++)
    if (strcmp(a->cfg->join[i], self_addr) != 0)
      open_endpoint(n, a->cfg->join[i], true);
  for (size_t i = 0; i < a->cfg->nrelays; i++)
    if (strcmp(a->cfg->relays[i], self_addr) != 0)
      open_endpoint(n, a->cfg->relays[i], true);
  uv_timer_start(&n->heartbeat, on_heartbeat, a->cfg->heartbeat_ms,
                 a->cfg->heartbeat_ms);
  if (n->neps > 0)
    uv_timer_start(&n->hello, on_hello, 0, 0);
  else
    n->got_members = false; /* a seed waits out the sync window */
  n->wake_at(n,
             n->started_at + a->cfg->heartbeat_ms + a->cfg->heartbeat_ms / 2);
  return 0;
}

void net_set_heartbeat(struct net *n, uint64_t ms) {
  uv_timer_set_repeat(&n->heartbeat, ms);
}

void net_stats(struct net *n, struct mesh_stats *ms) {
  mesh_stats(&n->mesh, ms);
}

static void on_mesh_closed(struct mesh *m) {}

void net_close(struct net *n) {
  n->stopped = true;
  if (n->mesh_open) {
    n->mesh_open = false;
    mesh_close(&n->mesh, on_mesh_closed);
  }
  agent_close_handle((uv_handle_t *)&n->heartbeat);
  agent_close_handle((uv_handle_t *)&n->soon);
  agent_close_handle((uv_handle_t *)&n->answer);
  agent_close_handle((uv_handle_t *)&n->list);
  agent_close_handle((uv_handle_t *)&n->hello);
}

void net_free(struct net *n) {
  for (size_t i = 0; n->echo != NULL && i < NET_ECHO_MAX; i++)
    free(n->echo[i].ep_addr);
  free(n->echo);
  n->echo = NULL;
  members_free(&n->known);
  free(n->eps);
  n->eps = NULL;
  n->neps = 0;
}
