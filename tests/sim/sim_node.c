/*
 * sim_node.c — one simulated agent: the real pure core (peers, wire,
 * record, batch, seen, engine, policy, statefiles) driven by a copy of
 * the agent's libuv shell, with uv timers replaced by the simulator's
 * (sim_timer_*), nanomsg by sim_net_send and state_dir by struct
 * sim_disk. The shell's decisions are all policy.c calls, made here with
 * the same arguments in the same order. When the shell changes, change
 * the function that mirrors it:
 *
 *   sim function        mirrors (file: function)
 *   ------------        --------------------------------------------
 *   send_msg            agent_net.c: send_msg
 *   envelope            agent_net.c: envelope (no key ring: no echoes)
 *   add_unheard         agent_net.c: add_unheard
 *   net_publish         agent_net.c: net_publish, net_publish_change
 *   publish_members     agent_net.c: publish_members, members_gap
 *   on_soon, publish_soon  agent_net.c: on_soon, net_publish_soon
 *   on_answer, answer_hello agent_net.c: on_answer, answer_hello
 *   on_list, offer_list agent_net.c: on_list, offer_list
 *   on_heartbeat        agent_net.c: on_heartbeat, behind_check,
 *                       save_members_due
 *   on_drained          agent_net.c: on_drained
 *   on_hello            agent_net.c: on_hello
 *   open_endpoint ...   agent_net.c: find_endpoint, open_endpoint,
 *                       release_addr, release_alt, release_endpoint,
 *                       reach_also, expire_alts, sync_endpoint, redial
 *   tell_behind, claim, own_name_claims
 *                       agent_net.c: the same names (rivals included)
 *   maybe_behind, admit agent_net.c: maybe_behind, admit
 *   merged, after_record, handle_record, handle_members
 *                       agent_net.c: the same names
 *   fresh_after, note_lag
 *                       agent_net.c: fresh_after (clock offset and lag
 *                       only), note_lag
 *   on_one, on_message  agent_net.c: on_one, on_message
 *   check_sync          agent_net.c: sync_counts, net_check_sync
 *   load_members, save_members
 *                       agent_net.c: load_members, net_save_members
 *   net_start           agent_net.c: net_start
 *   relay_forward, flush, flush_at, relay_open_window,
 *   relay_resume
 *                       agent_relay.c: the same names (flush(nd, true):
 *                       relay_flush_changes)
 *   relay_catch_up, targets_open, targets_add, targets_flush,
 *   target_flush, target_close, targets_arm
 *                       agent_relay.c: relay_catch_up,
 *                       relay_targets_open, relay_targets_add,
 *                       on_targets_timer, target_flush, target_close,
 *                       targets_arm (the socket: sim_net_send_one; its
 *                       connection is up once connect_us has passed)
 *   relay_said, pass_on
 *                       agent_net.c: the same names
 *   self_init, refresh, self_refute, sim_node_set
 *                       agent_self.c: self_init, refresh, self_refute,
 *                       self_set (no data, no --for)
 *   on_peer_event       agent.c: on_peer_event
 *   wake_at, on_wake    agent.c: wake_at, on_wake
 *   jobs_step, action_done
 *                       agent_jobs.c: jobs_step, the runner's exit
 *                       (scripts are not run: an action takes
 *                       SIM_SCRIPT_US and its end is engine_done())
 *
 * Left out, because the simulated cluster has no key ring: sealing,
 * nonces and echoes (note_nonce, want_proof, add_echoes); and what only
 * logs or counts for operators (note_versions, check_fd_room, metrics).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "record.h"
#include "sim.h"

static const uint64_t soon_delays_ms[] = {5, 25, 100, 400};
#define MEMBERS_PER_MSG 128
#define MEMBERS_GAP_MS 50
#define NET_MEMBERS_SAVE_EVERY 5
#define SOON_TAIL_MS 400
#define NET_RESYNC_REPEATS 3
/* What a behaviour's script takes, from issue to end. */
#define SIM_SCRIPT_US 5000
#define SIM_BEHAVIOUR "follow"
/* A catch-up batch whose connection is not up yet is tried again after
 * this (agent_relay.c RELAY_TARGET_RETRY_MS). */
#define SIM_TARGET_RETRY_MS 10

static void wake_at(struct sim_node *nd, uint64_t when);
static void jobs_step(struct sim_node *nd);
static void check_sync(struct sim_node *nd);
static void refresh(struct sim_node *nd, bool force);
static void relay_forward(struct sim_node *nd, const void *msg, size_t len,
                          bool change);
static void flush(struct sim_node *nd, bool news);
static void share_peer(struct sim_node *nd, struct peer *peer);
static void share_sync(struct sim_node *nd, uint64_t now);
static void share_forget(struct sim_node *nd, struct peer *peer);
static void relay_catch_up(struct sim_node *nd, const struct peer *peer,
                           uint64_t now);
static void relay_resume(struct sim_node *nd, uint64_t now, bool behind);
static void targets_add(struct sim_node *nd, const void *msg, size_t len,
                        const char *from, uint64_t now);
static bool targets_open(const struct sim_node *nd, uint64_t now);

static bool is_leaf(const struct sim_node *nd) {
  return nd->cfg.nrelays > 0;
}

static bool has_join(const struct sim_node *nd) {
  return nd->cfg.njoin > 0 || nd->cfg.nrelays > 0;
}

/* ---- timers ---- */

void sim_timer_start(struct sim_node *nd, enum sim_timer t, uint64_t ms) {
  nd->t_gen[t]++;
  nd->t_active[t] = true;
  sim_at(nd->sim, nd->cpu + ms * 1000, SIM_EV_TIMER, nd->id, (int)t,
         nd->t_gen[t], NULL);
}

void sim_timer_stop(struct sim_node *nd, enum sim_timer t) {
  nd->t_gen[t]++;
  nd->t_active[t] = false;
}

/* ---- sending ---- */

static void send_msg(struct sim_node *nd, const struct wire_msg *m) {
  char *buf = NULL;
  size_t len = 0;
  if (wire_encode(m, &buf, &len) != 0)
    return;
  uint64_t before = nd->tx_msgs;
  sim_cpu(nd, nd->sim->o.encode_us);
  sim_net_send(nd, buf, len);
  *(m->type == WIRE_MEMBERS ? &nd->tx_lists : &nd->tx_own) +=
      nd->tx_msgs - before;
  if (is_leaf(nd))
    (void)seen_note(nd->seen, buf, len);
  free(buf);
}

static void envelope(struct sim_node *nd, struct wire_msg *m,
                     enum wire_type t) {
  memset(m, 0, sizeof(*m));
  m->type = t;
  snprintf(m->cluster, sizeof(m->cluster), "%s", nd->cfg.cluster);
  snprintf(m->from, sizeof(m->from), "%s", nd->cfg.name);
  m->inc = nd->rec.inc;
  m->seq = ++nd->seq;
  m->time = (uint64_t)sim_wall(nd);
  m->leaf = is_leaf(nd);
  m->heartbeat_ms = nd->cfg.heartbeat_ms;
}

static void add_unheard(struct sim_node *nd, struct wire_msg *m) {
  const struct peer *pick[WIRE_UNHEARD_MAX];
  size_t k = 0;

  for (size_t i = 0; i < nd->peers.n; i++) {
    const struct peer *p = nd->peers.v[i];
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

static void net_publish(struct sim_node *nd, enum wire_type type) {
  struct wire_msg m;
  envelope(nd, &m, type);
  m.rec = nd->rec;
  m.digest = peers_digest(&nd->peers, &nd->rec);
  m.nknown = (uint32_t)(nd->peers.n + 1);
  if (type != WIRE_LEAVE)
    add_unheard(nd, &m);
  if (nd->cfg.relay) {
    m.relay = true;
    m.nlost = peers_verdicts(&nd->peers, m.lost, WIRE_LOST_MAX, &m.lost_total);
    m.has_rdigest = !nd->reading_behind;
    if (m.has_rdigest) {
      m.rdigest = peers_records_digest(&nd->peers, &nd->rec, -1);
      flush(nd, true); /* relay_flush_changes */
    }
  } else if (nd->resync_left > 0) {
    nd->resync_left--;
    m.resync = true;
  }
  send_msg(nd, &m);
}

static void add_member(struct wire_member *w, const struct record *r) {
  snprintf(w->name, sizeof(w->name), "%s", r->name);
  snprintf(w->addr, sizeof(w->addr), "%s", r->addr);
  w->inc = r->inc;
  w->ver = r->ver;
  w->left = r->left;
}

static void publish_members(struct sim_node *nd) {
  struct wire_member *list = calloc(MEMBERS_PER_MSG, sizeof(*list));
  struct wire_msg m;
  size_t i = 0, k = 0;

  if (list == NULL)
    return;
  add_member(&list[k++], &nd->rec);
  for (; i <= nd->peers.n; i++) {
    bool flush = i == nd->peers.n || k == MEMBERS_PER_MSG;
    if (flush && k > 0) {
      envelope(nd, &m, WIRE_MEMBERS);
      m.members = list;
      m.nmembers = k;
      send_msg(nd, &m);
      k = 0;
    }
    if (i < nd->peers.n && nd->peers.v[i]->rec->addr[0] != '\0')
      add_member(&list[k++], nd->peers.v[i]->rec);
  }
  free(list);
  nd->members_sent_at = sim_ms(nd);
  nd->members_wanted = false;
}

static uint64_t members_gap(const struct sim_node *nd) {
  uint64_t gap = (uint64_t)nd->peers.n;
  return gap > MEMBERS_GAP_MS ? gap : MEMBERS_GAP_MS;
}

static void on_soon(struct sim_node *nd) {
  size_t step =
      sizeof(soon_delays_ms) / sizeof(soon_delays_ms[0]) - nd->soon_left;
  if (nd->members_wanted && sim_ms(nd) - nd->members_sent_at >= members_gap(nd))
    publish_members(nd);
  net_publish(nd, WIRE_STATE);
  if (--nd->soon_left > 0) {
    sim_timer_start(nd, SIM_T_SOON,
                    soon_delays_ms[step + 1] - soon_delays_ms[step]);
  } else if (nd->soon_again) {
    nd->soon_again = false;
    nd->soon_left = 1;
    sim_timer_start(nd, SIM_T_SOON, SOON_TAIL_MS);
  }
}

static void publish_soon(struct sim_node *nd) {
  if (!nd->up)
    return;
  if (nd->t_active[SIM_T_SOON]) {
    nd->soon_again = true;
    return;
  }
  nd->soon_left = sizeof(soon_delays_ms) / sizeof(soon_delays_ms[0]);
  nd->soon_again = false;
  sim_timer_start(nd, SIM_T_SOON, soon_delays_ms[0]);
}

static void on_answer(struct sim_node *nd) {
  publish_members(nd);
  net_publish(nd, WIRE_STATE);
}

static void answer_hello(struct sim_node *nd) {
  uint64_t since = sim_ms(nd) - nd->members_sent_at;
  uint64_t gap = members_gap(nd);
  if (!nd->up || nd->t_active[SIM_T_ANSWER])
    return;
  sim_timer_start(nd, SIM_T_ANSWER,
                  since >= gap ? soon_delays_ms[0] : gap - since);
}

static void offer_list(struct sim_node *nd) {
  uint64_t window = nd->cfg.heartbeat_ms / 2;
  if (!nd->up || nd->t_active[SIM_T_LIST])
    return;
  sim_timer_start(nd, SIM_T_LIST,
                  window > 0 ? sim_rand_below(&nd->sim->rand, window) : 0);
}

/* ---- members.json ---- */

static void save_members(struct sim_node *nd) {
  uint64_t key;
  char *text;
  if (!nd->disk.restarts || !nd->synced)
    return;
  key = members_digest(&nd->peers);
  if (nd->members_saved && key == nd->members_key)
    return;
  if ((text = members_encode(&nd->peers, NULL)) == NULL)
    return;
  free(nd->disk.members);
  nd->disk.members = text;
  nd->members_saved = true;
  nd->members_key = key;
}

static void merged(struct sim_node *nd, enum peers_result res,
                   struct peer *peer);

static void load_members(struct sim_node *nd) {
  char why[256];
  if (nd->disk.members == NULL)
    return;
  if (members_parse(nd->disk.members, strlen(nd->disk.members), nd->cfg.name,
                    &nd->known, why, sizeof(why)) != 0)
    return;
  for (size_t i = 0; i < nd->known.n; i++) {
    const struct members_entry *m = &nd->known.v[i];
    struct wire_member w = {.inc = m->inc, .ver = m->ver};
    struct peer *peer = NULL;
    enum peers_result res;
    memcpy(w.name, m->name, sizeof(w.name));
    memcpy(w.addr, m->addr, sizeof(w.addr));
    res = peers_merge_member(&nd->peers, &w, sim_ms(nd), sim_wall(nd), &peer);
    merged(nd, res, peer);
  }
}

static void expire_alts(struct sim_node *nd);

static void behind_check(struct sim_node *nd) {
  /* Every message of the simulation opens and decodes: none foreign. */
  struct policy_behind_in in = {.msgs = nd->lag_msgs,
                                .late = nd->lag_late,
                                .read = nd->reads,
                                .full = nd->full_reads > 0,
                                .drained = nd->drained_reads > 0};
  bool behind = policy_behind(&in);
  nd->lag_msgs = nd->lag_late = nd->full_reads = nd->drained_reads = 0;
  nd->reads = 0;
  nd->reading_behind = behind;
  if (!behind)
    return;
  peers_grace(&nd->peers, sim_ms(nd));
  nd->behind++;
}

/* agent_net.c: on_drained */
static void on_drained(struct sim_node *nd) {
  if (!nd->reading_behind)
    return;
  nd->reading_behind = false;
  if (nd->cfg.relay)
    relay_resume(nd, sim_ms(nd), false);
}

static void on_heartbeat(struct sim_node *nd) {
  (void)peers_clock(&nd->peers, sim_ms(nd));
  behind_check(nd);
  expire_alts(nd);
  if (nd->cfg.relay) {
    nd->all_quiet = peers_all_speak(&nd->peers, WIRE_PROTO_QUIET);
    share_sync(nd, sim_ms(nd));
    relay_resume(nd, sim_ms(nd), nd->reading_behind);
  }
  if (nd->members_wanted)
    publish_members(nd);
  if (!nd->got_members && has_join(nd)) {
    net_publish(nd, WIRE_HELLO);
    nd->hello_tries++;
  } else {
    net_publish(nd, WIRE_STATE);
  }
  if (++nd->members_beats >= NET_MEMBERS_SAVE_EVERY) {
    nd->members_beats = 0;
    save_members(nd);
  }
  sim_timer_start(nd, SIM_T_HEARTBEAT, nd->cfg.heartbeat_ms);
}

static void on_hello(struct sim_node *nd) {
  uint64_t gap;
  bool delivered;
  if (nd->got_members)
    return;
  delivered = sim_net_all_up(nd);
  net_publish(nd, WIRE_HELLO);
  nd->hello_tries++;
  gap = policy_hello_gap(nd->hello_tries, delivered, nd->cfg.heartbeat_ms);
  if (gap > 0)
    sim_timer_start(nd, SIM_T_HELLO, gap);
}

/* ---- endpoints ---- */

static uint64_t connect_us(const struct sim *s) {
  return 3 * s->o.latency_us + 200;
}

static struct sim_ep *find_endpoint(struct sim_node *nd, const char *addr) {
  for (size_t i = 0; i < nd->neps; i++)
    if (strcmp(nd->eps[i].addr, addr) == 0)
      return &nd->eps[i];
  return NULL;
}

/* A new connection to addr at the end of *eps (a PUB's), coming up after
 * connect_us(); NULL when out of memory. */
static struct sim_ep *ep_append(struct sim_node *nd, struct sim_ep **eps,
                                size_t *neps, const char *addr) {
  struct sim_ep *ep, *v = realloc(*eps, (*neps + 1) * sizeof(*v));
  int target;
  if (v == NULL)
    return NULL;
  *eps = v;
  ep = &v[(*neps)++];
  memset(ep, 0, sizeof(*ep));
  snprintf(ep->addr, sizeof(ep->addr), "%s", addr);
  target = sim_addr_node(nd->sim, addr);
  ep->target = target;
  ep->life = target >= 0 ? nd->sim->nodes[target].life : 0;
  ep->up_at = nd->cpu + connect_us(nd->sim);
  return ep;
}

static struct sim_ep *open_endpoint(struct sim_node *nd, const char *addr,
                                    bool join) {
  struct sim_ep *ep = find_endpoint(nd, addr);
  if (ep != NULL) {
    ep->join |= join;
    return ep;
  }
  if (!wire_valid_addr(addr))
    return NULL; /* mesh_connect refuses it */
  if ((ep = ep_append(nd, &nd->eps, &nd->neps, addr)) == NULL)
    return NULL;
  ep->join = join;
  publish_soon(nd);
  return ep;
}

static void release_addr(struct sim_node *nd, const char *addr) {
  struct sim_ep *ep = find_endpoint(nd, addr);
  if (ep == NULL || --ep->refs > 0 || ep->join)
    return;
  *ep = nd->eps[--nd->neps];
}

static void release_alt(struct sim_node *nd, struct peer *peer) {
  struct peer_more *more = peer->more;
  if (more == NULL || more->alt_addr == NULL)
    return;
  release_addr(nd, more->alt_addr);
  free(more->alt_addr);
  more->alt_addr = NULL;
}

static void release_endpoint(struct sim_node *nd, struct peer *peer) {
  if (peer->endpoint < 0)
    return;
  release_addr(nd, peer_more_of(peer)->endpoint_addr);
  peer->endpoint = -1;
  if (peer->more != NULL) {
    free(peer->more->endpoint_addr);
    peer->more->endpoint_addr = NULL;
  }
}

static void reach_also(struct sim_node *nd, struct peer *peer,
                       const char *addr) {
  struct sim_ep *ep;
  struct peer_more *more;
  char *copy;
  if (peer == NULL || is_leaf(nd) || addr[0] == '\0' ||
      strcmp(addr, peer->rec->addr) == 0 || strcmp(addr, nd->rec.addr) == 0)
    return;
  if ((more = peer_more(peer)) == NULL)
    return;
  more->alt_until = sim_ms(nd) + nd->cfg.lost_after_ms;
  if (more->alt_addr != NULL && strcmp(addr, more->alt_addr) == 0)
    return;
  release_alt(nd, peer);
  if ((copy = strdup(addr)) == NULL)
    return;
  if ((ep = open_endpoint(nd, addr, false)) == NULL) {
    free(copy);
    return;
  }
  ep->refs++;
  more->alt_addr = copy;
}

static void expire_alts(struct sim_node *nd) {
  uint64_t now = sim_ms(nd);
  for (size_t i = 0; i < nd->peers.n; i++) {
    struct peer *p = nd->peers.v[i];
    if (p->more != NULL && p->more->alt_addr != NULL &&
        now >= p->more->alt_until)
      release_alt(nd, p);
  }
}

static void sync_endpoint(struct sim_node *nd, struct peer *peer) {
  struct sim_ep *ep;
  struct peer_more *more;
  char *copy;
  if (peer->status == PEER_LEFT || peer->rec->addr[0] == '\0') {
    release_endpoint(nd, peer);
    return;
  }
  if (peer->endpoint >= 0 &&
      strcmp(peer_more_of(peer)->endpoint_addr, peer->rec->addr) == 0)
    return;
  release_endpoint(nd, peer);
  if ((more = peer_more(peer)) == NULL ||
      (copy = strdup(peer->rec->addr)) == NULL)
    return;
  ep = open_endpoint(nd, peer->rec->addr, false);
  if (ep == NULL) {
    free(copy);
    return;
  }
  ep->refs++;
  peer->endpoint = 0;
  more->endpoint_addr = copy;
}

static void redial(struct sim_node *nd, struct peer *peer) {
  uint64_t now = sim_ms(nd);
  struct sim_ep *ep;
  if (peer == NULL ||
      (peer_more_of(peer)->redialled_at != 0 &&
       now - peer_more_of(peer)->redialled_at < nd->cfg.heartbeat_ms))
    return;
  if (is_leaf(nd))
    ep = find_endpoint(nd, peer->rec->addr);
  else
    ep = peer->endpoint >= 0
             ? find_endpoint(nd, peer_more_of(peer)->endpoint_addr)
             : NULL;
  if (ep == NULL || (is_leaf(nd) && !ep->join))
    return;
  if (peer_more(peer) == NULL)
    return;
  peer->more->redialled_at = now;
  ep->up_at = nd->cpu + connect_us(nd->sim);
  publish_soon(nd);
}

/* ---- self (agent_self.c) ---- */

static void self_publish(struct sim_node *nd) {
  if (nd->up)
    net_publish(nd, WIRE_STATE);
}

static void persist(struct sim_node *nd) {
  nd->disk.has_state = true;
  nd->disk.inc = nd->rec.inc;
  snprintf(nd->disk.declared, sizeof(nd->disk.declared), "%s", nd->declared);
}

static void refresh(struct sim_node *nd, bool force) {
  char state[CHOREO_STATE_MAX + 1], reason[CHOREO_REASON_MAX + 1];
  struct policy_claims c = {.declared = nd->declared, .declared_reason = ""};
  int b = engine_claim(&nd->engine);
  if (b >= 0) {
    c.behaviour_state = nd->cfg.behaviours[b].state;
    c.behaviour_name = nd->cfg.behaviours[b].name;
  }
  (void)policy_own_state(&c, state, reason);
  if (!force && strcmp(state, nd->rec.state) == 0 &&
      strcmp(reason, nd->rec.reason) == 0)
    return;
  if (strcmp(state, nd->rec.state) != 0)
    nd->rec.since_ms = sim_wall(nd);
  snprintf(nd->rec.state, sizeof(nd->rec.state), "%s", state);
  snprintf(nd->rec.reason, sizeof(nd->rec.reason), "%s", reason);
  nd->rec.ver++;
  self_publish(nd);
}

void sim_node_set(struct sim_node *nd, const char *state) {
  snprintf(nd->declared, sizeof(nd->declared), "%s", state);
  refresh(nd, false);
  persist(nd);
}

static void self_refute(struct sim_node *nd, uint64_t claimed) {
  nd->rec.inc = policy_refute_inc(nd->rec.inc, claimed);
  nd->rec.ver++;
  nd->refutations++;
  persist(nd);
  self_publish(nd);
}

static void self_init(struct sim_node *nd) {
  record_free(&nd->rec);
  (void)record_init(&nd->rec);
  snprintf(nd->rec.name, sizeof(nd->rec.name), "%s", nd->cfg.name);
  sim_addr_of(nd->id, nd->rec.addr, sizeof(nd->rec.addr));
  nd->rec.ngroups = nd->cfg.ngroups;
  memcpy(nd->rec.groups, nd->cfg.groups, sizeof(nd->rec.groups));
  snprintf(nd->declared, sizeof(nd->declared), "%s",
           nd->disk.has_state ? nd->disk.declared : nd->cfg.state);
  nd->rec.inc =
      policy_start_inc(nd->disk.inc, nd->disk.has_state, sim_wall(nd));
  nd->rec.ver = 1;
  persist(nd);
  nd->rec.since_ms = sim_wall(nd);
  refresh(nd, false);
}

/* ---- claims about this node ---- */

static void tell_behind(struct sim_node *nd) {
  nd->members_wanted = true;
  if (sim_ms(nd) - nd->members_sent_at < nd->cfg.heartbeat_ms / 2)
    return;
  publish_members(nd);
  nd->members_wanted = true;
}

static void claim(struct sim_node *nd, const struct policy_claim_in *in) {
  enum policy_claim c = policy_claim(in);
  unsigned act = POLICY_RIVAL_REFUTE;

  if (c == POLICY_CLAIM_BOUNDS) {
    nd->forged_refused++;
    return;
  }
  if (c != POLICY_CLAIM_REFUTE || nd->rec.left || !nd->up)
    return;
  if (strcmp(in->addr, nd->rec.addr) != 0) {
    uint64_t now = sim_ms(nd);
    struct policy_rival_in rin = {
        .addr = in->addr,
        .inc = in->inc,
        .now = now,
        .uptime = now - nd->started_at,
        .heartbeat_ms = nd->cfg.heartbeat_ms,
        .lost_after_ms = nd->cfg.lost_after_ms,
    };
    act = policy_rival_claim(&nd->rival, &rin);
    if (act & POLICY_RIVAL_STOP) {
      /* net_name_taken: the agent stops. */
      sim_node_crash(nd);
      return;
    }
  }
  if (act & POLICY_RIVAL_REFUTE)
    self_refute(nd, in->inc);
}

static void own_name_claims(struct sim_node *nd, const struct wire_msg *m) {
  struct policy_claim_in in = {.own = &nd->rec, .now_ms = sim_wall(nd)};
  if (m->type != WIRE_MEMBERS) {
    in.direct = true;
    in.inc = m->inc;
    in.ver = m->rec.ver;
    in.addr = m->rec.addr;
    in.left = m->rec.left || m->type == WIRE_LEAVE;
    in.state = m->rec.state;
    in.reason = m->rec.reason;
    claim(nd, &in);
    return;
  }
  for (size_t i = 0; i < m->nmembers && nd->up; i++) {
    const struct wire_member *e = &m->members[i];
    if (strcmp(e->name, nd->cfg.name) != 0)
      continue;
    in.inc = e->inc;
    in.ver = e->ver;
    in.addr = e->addr;
    in.left = e->left;
    claim(nd, &in);
  }
}

/* ---- receiving ---- */

static bool names_us(const struct wire_msg *m, const char *name) {
  for (size_t i = 0; i < m->nunheard; i++)
    if (strcmp(m->unheard[i], name) == 0)
      return true;
  return false;
}

static void maybe_behind(struct sim_node *nd, const struct wire_msg *m) {
  struct peer *peer = peers_find(&nd->peers, m->from);
  if (!policy_sender_behind(peer, m->inc, NULL))
    return;
  if (m->type == WIRE_HELLO)
    redial(nd, peer);
  if (m->type != WIRE_MEMBERS)
    reach_also(nd, peer, m->rec.addr);
  tell_behind(nd);
}

static enum policy_admit admit(struct sim_node *nd, const struct wire_msg *m,
                               bool via_relay) {
  const struct peer *sender = peers_find(&nd->peers, m->from);
  struct policy_admit_in in = {
      .cluster = nd->cfg.cluster,
      .name = nd->cfg.name,
      .keyed = false,
      .now_ms = sim_wall(nd),
      .msg_cluster = m->cluster,
      .msg_from = m->from,
      .msg_time = m->time,
      .msg_inc = m->inc,
      .proved = sender != NULL && sender->proved,
      .echoes_us = false,
      .msg_nonce = m->nonce != 0,
  };
  enum policy_admit r = policy_admit(&in);
  if (r == POLICY_ADMIT)
    r = policy_admit_seq(peers_accept_seq(&nd->peers, m->from, m->inc, m->seq),
                         via_relay, m->leaf, nd->cfg.relay);
  switch (r) {
  case POLICY_ADMIT:
    break;
  case POLICY_DROP_SELF_NAME:
    own_name_claims(nd, m);
    break;
  case POLICY_DROP_RELAY_DUPLICATE:
    if (!via_relay)
      maybe_behind(nd, m);
    break;
  case POLICY_DROP_REPLAY:
    maybe_behind(nd, m);
    break;
  case POLICY_DROP_FUTURE:
    nd->forged_refused++;
    break;
  default:
    break;
  }
  return r;
}

static void merged(struct sim_node *nd, enum peers_result res,
                   struct peer *peer) {
  if (res == PEERS_FULL || res == PEERS_OVER_BUDGET || peer == NULL)
    return;
  wake_at(nd, peers_next_deadline(&nd->peers));
  if (is_leaf(nd))
    return;
  sync_endpoint(nd, peer);
  if (nd->cfg.relay)
    share_peer(nd, peer);
}

static void after_record(struct sim_node *nd, unsigned todo) {
  if (todo & POLICY_ANSWER_LIST) {
    nd->members_wanted = true;
    answer_hello(nd);
  }
  if (todo & POLICY_PUBLISH_SOON)
    publish_soon(nd);
  if (todo & POLICY_OFFER_LIST)
    offer_list(nd);
}

static void relay_open_window(struct sim_node *nd, uint64_t now) {
  uint64_t until = now + policy_relay_window_ms(nd->cfg.heartbeat_ms);
  if (nd->window_until <= now)
    nd->windows++;
  if (until > nd->window_until)
    nd->window_until = until;
}

/* agent_relay.c: relay_resume */
static void relay_resume(struct sim_node *nd, uint64_t now, bool behind) {
  if (!nd->deferred || behind)
    return;
  nd->deferred = false;
  relay_open_window(nd, now);
}

/* agent_net.c: served_by */
static bool served_by(const struct sim_node *nd, int slot) {
  const char *others[PEERS_RELAYS_MAX];
  const struct peer *r = nd->peers.relays[slot];
  size_t n = peers_relays_alive(&nd->peers, r, others);
  return policy_relay_serves(r->rec->name, others, n, nd->cfg.name,
                             is_leaf(nd));
}

static void relay_said(struct sim_node *nd, const struct wire_msg *m,
                       uint64_t now) {
  int slot;
  for (size_t i = 0; i < m->nlost; i++)
    if (strcmp(m->lost[i].name, nd->cfg.name) == 0)
      redial(nd, peers_find(&nd->peers, m->from));
  (void)peers_relay_verdicts(&nd->peers, m->from, m->inc, m->seq, m->lost,
                             m->nlost, m->nlost == m->lost_total, now,
                             sim_wall(nd));
  wake_at(nd, peers_next_deadline(&nd->peers));
  slot = peers_relay_slot(&nd->peers, m->from);
  /* a relay that reads behind sends no digest: start over once back */
  if (slot >= 0 && !m->has_rdigest)
    policy_resync_forget(&nd->resync[slot]);
  /* Before our startup sync, views still form: a difference is no news,
   * and counting it would only grow the back-off. */
  if (!m->has_rdigest || slot < 0 || !nd->synced)
    return;
  /* a relay that does not forward to us: its records are not ours */
  if (!served_by(nd, slot)) {
    policy_resync_forget(&nd->resync[slot]);
    return;
  }
  if (policy_resync_note(&nd->resync[slot],
                         peers_records_digest(&nd->peers, &nd->rec, slot),
                         m->rdigest, now, nd->cfg.heartbeat_ms)) {
    nd->resyncs++;
    nd->resync_left = NET_RESYNC_REPEATS;
    publish_soon(nd);
  }
}

static void pass_on(struct sim_node *nd, const struct wire_msg *m,
                    struct peer *peer, bool news, uint64_t now, const void *raw,
                    size_t rawlen) {
  /* No identity in the simulation: no certificate is asked for. */
  struct policy_relay_mode mode = {
      .catch_up = now < nd->window_until,
      .all_quiet = nd->all_quiet,
      .behind = nd->reading_behind,
  };
  struct policy_relay_mode alone = {.catch_up = true,
                                    .all_quiet = nd->all_quiet};
  enum policy_relay_pass pass = policy_relay_pass_msg(
      m, peer, news, false, &mode, now, nd->cfg.heartbeat_ms);

  if (targets_open(nd, now) &&
      (pass != POLICY_PASS_NONE ||
       policy_relay_pass_msg(m, peer, news, false, &alone, now,
                             nd->cfg.heartbeat_ms) != POLICY_PASS_NONE))
    targets_add(nd, raw, rawlen, m->from, now);
  if (pass == POLICY_PASS_NONE)
    return;
  relay_forward(nd, raw, rawlen, pass == POLICY_PASS_NEWS);
  peer_passed(peer, &m->rec);
}

/* agent_net.c: pass_duplicate */
static void pass_duplicate(struct sim_node *nd, const struct wire_msg *m,
                           bool via_relay, const void *raw, size_t rawlen) {
  struct peer *peer = peers_find(&nd->peers, m->from);
  if (peer == NULL || m->type == WIRE_MEMBERS ||
      !policy_relay_forwards(nd->cfg.relay, via_relay, m->leaf,
                             m->type == WIRE_HELLO, false))
    return;
  pass_on(nd, m, peer, false, sim_ms(nd), raw, rawlen);
}

static void handle_record(struct sim_node *nd, const struct wire_msg *m,
                          bool via_relay, const void *raw, size_t rawlen) {
  uint64_t now = sim_ms(nd);
  struct peer *peer = peers_find(&nd->peers, m->from);
  bool first_heard = peer == NULL || !peer->heard;
  bool restarted =
      peer != NULL &&
      (m->type == WIRE_HELLO || (peer->heard && (m->inc > peer->rec->inc ||
                                                 peer->status != PEER_ALIVE)));
  bool news = nd->cfg.relay && m->leaf && policy_is_news(peer, &m->rec);
  bool forward = policy_relay_forwards(nd->cfg.relay, via_relay, m->leaf,
                                       m->type == WIRE_HELLO, news);
  enum peers_result res =
      peers_merge_direct(&nd->peers, &m->rec, now, sim_wall(nd), &peer);
  if (restarted || names_us(m, nd->cfg.name))
    redial(nd, peer);
  merged(nd, res, peer);
  if (peer != NULL) {
    (void)peers_accept_seq(&nd->peers, m->from, m->inc, m->seq);
    peers_note_roles(&nd->peers, peer, m->leaf, m->relay, now);
    if (nd->cfg.relay)
      share_peer(nd, peer);
  }
  if (res == PEERS_STALE && policy_sender_behind(peer, m->inc, &m->rec)) {
    reach_also(nd, peer, m->rec.addr);
    tell_behind(nd);
  }
  nd->got_members = true;
  if (m->relay && !via_relay && !nd->cfg.relay && peer != NULL)
    relay_said(nd, m, now);
  if (nd->cfg.relay && !via_relay && peer != NULL) {
    bool answered = peer->hello_last && m->type != WIRE_HELLO;
    peer->hello_last = m->type == WIRE_HELLO;
    if (m->type == WIRE_HELLO || answered || m->resync ||
        (m->leaf && (first_heard || restarted)))
      relay_catch_up(nd, peer, now);
  }
  if (forward && peer != NULL)
    pass_on(nd, m, peer, news, now, raw, rawlen);
  struct policy_record_in in = {
      .hello = m->type == WIRE_HELLO,
      .from_leaf = m->leaf,
      .from_relay = m->relay,
      .via_relay = via_relay,
      .we_relay = nd->cfg.relay,
      .we_leaf = is_leaf(nd),
      .new_peer = res == PEERS_NEW || (first_heard && peer != NULL),
      .now = now,
      .list_at = nd->members_sent_at,
      .heartbeat_ms = nd->cfg.heartbeat_ms,
      .npeers = nd->peers.n,
      .name = nd->cfg.name,
      .their_known = m->nknown,
      .their_name = m->from,
      .lottery = is_leaf(nd) ? (uint32_t)sim_rand_next(&nd->sim->rand) : 0,
  };
  if (!nd->view_agreed || policy_view_matters(&in))
    in.same_view = peers_same_view(&nd->peers, &nd->rec, m->digest, m->nknown);
  if (in.same_view)
    nd->view_agreed = true;
  after_record(nd, policy_after_record(&in));
}

static void handle_members(struct sim_node *nd, const struct wire_msg *m) {
  uint64_t now = sim_ms(nd);
  int64_t wall = sim_wall(nd);
  sim_timer_stop(nd, SIM_T_LIST);
  for (size_t i = 0; i < m->nmembers && nd->up; i++) {
    const struct wire_member *e = &m->members[i];
    struct peer *peer = NULL;
    enum peers_result res;
    if (strcmp(e->name, nd->cfg.name) == 0) {
      struct policy_claim_in in = {.own = &nd->rec,
                                   .inc = e->inc,
                                   .ver = e->ver,
                                   .addr = e->addr,
                                   .left = e->left,
                                   .now_ms = wall};
      claim(nd, &in);
      continue;
    }
    if (!policy_inc_in_bounds(e->inc, wall)) {
      nd->forged_refused++;
      continue;
    }
    res = peers_merge_member(&nd->peers, e, now, wall, &peer);
    merged(nd, res, peer);
  }
  nd->got_members = true;
}

static void note_lag(struct sim_node *nd, struct peer *peer,
                     uint64_t msg_time) {
  struct peer_more *more = peer_more(peer);
  if (more == NULL)
    return;
  nd->lag_msgs++;
  if (policy_lag_late(policy_lag_note(&more->lag, msg_time, sim_ms(nd)),
                      nd->cfg.heartbeat_ms))
    nd->lag_late++;
}

static void fresh_after(struct sim_node *nd, const struct wire_msg *m,
                        bool via_relay) {
  struct peer *peer = peers_find(&nd->peers, m->from);
  if (peer == NULL || m->time == 0)
    return;
  if (!via_relay)
    note_lag(nd, peer, m->time);
  peer->clock_offset_ms = policy_clock_offset(m->time, sim_wall(nd));
  if (policy_skew_warn(peer->clock_offset_ms, sim_ms(nd),
                       peer_more_of(peer)->skew_warned,
                       peer_more_of(peer)->skew_warned_at) &&
      peer_more(peer) != NULL) {
    peer->more->skew_warned = true;
    peer->more->skew_warned_at = sim_ms(nd);
  }
}

static void on_one(struct sim_node *nd, struct sim_blob *blob, size_t k,
                   const void *buf, size_t len, bool via_relay) {
  const struct wire_msg *m;
  struct wire_msg *tmp;
  enum policy_admit r;

  if ((via_relay || nd->cfg.relay) && seen_note(nd->seen, buf, len) &&
      via_relay)
    return;
  nd->decodes++;
  sim_cpu(nd, nd->sim->o.decode_us);
  m = sim_blob_decode(blob, k, buf, len, &tmp);
  if (m == NULL) {
    /* refused: counted by the agent, nothing more */
  } else if (via_relay && strcmp(m->from, nd->cfg.name) == 0) {
    /* our own message, passed on by a relay */
  } else if ((r = admit(nd, m, via_relay)) == POLICY_DROP_RELAY_DUPLICATE) {
    pass_duplicate(nd, m, via_relay, buf, len);
  } else if (r == POLICY_ADMIT && nd->up) {
    if ((size_t)m->type < sizeof(nd->rx_type) / sizeof(nd->rx_type[0]))
      nd->rx_type[m->type]++;
    nd->rx_resync += m->resync;
    if (m->type == WIRE_MEMBERS)
      handle_members(nd, m);
    else
      handle_record(nd, m, via_relay, buf, len);
    if (nd->up) {
      fresh_after(nd, m, via_relay);
      check_sync(nd);
      jobs_step(nd);
    }
  }
  if (tmp != NULL) {
    wire_msg_free(tmp);
    free(tmp);
  }
}

static void on_message(struct sim_node *nd, struct sim_blob *blob) {
  const void *buf = blob->data, *frame;
  size_t len = blob->len, flen, pos = 0, k = 0;
  if (!batch_is(buf, len)) {
    on_one(nd, blob, 0, buf, len, false);
    return;
  }
  if (batch_check(buf, len) == 0)
    return;
  while (nd->up && batch_next(buf, len, &pos, &frame, &flen))
    on_one(nd, blob, k++, frame, flen, true);
}

/* ---- startup sync ---- */

static void check_sync(struct sim_node *nd) {
  uint64_t now = sim_ms(nd), recheck;
  struct policy_sync_in in = {
      .now = now,
      .started_at = nd->started_at,
      .window = nd->cfg.heartbeat_ms + nd->cfg.heartbeat_ms / 2,
      .lost_after = nd->cfg.lost_after_ms,
      .max_wait = nd->cfg.sync_max_wait_ms,
      .got_members = nd->got_members,
      .view_agreed = nd->view_agreed,
      .min_members = nd->cfg.sync_min_members,
  };
  if (nd->synced)
    return;
  peers_live(&nd->peers, &in.heard, &in.unheard);
  if (policy_sync(&in, &recheck) == POLICY_SYNC_WAIT) {
    wake_at(nd, recheck);
    return;
  }
  nd->synced = true;
  engine_set_synced(&nd->engine, now);
  nd->members_beats = 0;
  save_members(nd);
}

/* ---- relay (agent_relay.c) ---- */

/* agent_relay.c: relay_share_active, relay_serves */
static bool share_active(const struct sim_node *nd, uint64_t now) {
  return nd->split && now >= nd->split_at + nd->cfg.heartbeat_ms;
}

bool sim_node_share_active(const struct sim_node *nd) {
  return share_active(nd, sim_ms(nd));
}

static bool serves(const struct sim_node *nd, const struct peer *peer,
                   uint64_t now) {
  return !share_active(nd, now) || !peer->relayed ||
         peer_more_of(peer)->share_ep > 0;
}

/* agent_relay.c: forward_send */
static void forward_send(struct sim_node *nd, const void *buf, size_t len) {
  uint64_t before = nd->tx_msgs;
  if (share_active(nd, sim_ms(nd)))
    sim_net_send_share(nd, buf, len);
  else
    sim_net_send(nd, buf, len);
  nd->tx_forwarded += nd->tx_msgs - before;
}

/* agent_relay.c: credit_interval */
static uint64_t credit_interval(const struct sim_node *nd) {
  size_t members = share_active(nd, sim_ms(nd)) ? nd->share_n : nd->peers.n;
  return policy_relay_interval_ms(members, nd->cfg.heartbeat_ms);
}

static void flush(struct sim_node *nd, bool news) {
  struct batch *b = news ? &nd->news : &nd->hold;
  sim_timer_stop(nd, news ? SIM_T_NEWS : SIM_T_HOLD);
  if (b->frames == 0)
    return;
  uint64_t before = nd->tx_forwarded;
  nd->fwd_batches[news]++;
  nd->fwd_frames[news] += b->frames;
  forward_send(nd, b->buf, b->len);
  if (news) {
    nd->tx_fwd_news += nd->tx_forwarded - before;
    nd->credit_at =
        policy_relay_spend(nd->credit_at, sim_ms(nd), credit_interval(nd));
  }
  batch_reset(b);
}

static void flush_at(struct sim_node *nd, bool news, uint64_t when) {
  uint64_t now = sim_ms(nd), *due = news ? &nd->news_due : &nd->hold_due;
  enum sim_timer t = news ? SIM_T_NEWS : SIM_T_HOLD;
  if (when <= now) {
    flush(nd, news);
    return;
  }
  if (nd->t_active[t] && *due <= when)
    return;
  *due = when;
  sim_timer_start(nd, t, when - now);
}

static void relay_forward(struct sim_node *nd, const void *msg, size_t len,
                          bool change) {
  struct batch *b = change ? &nd->news : &nd->hold;
  uint64_t now = sim_ms(nd);
  if (b->buf == NULL)
    return;
  if (!batch_fits(b, len))
    flush(nd, change);
  if (batch_add(b, msg, len) != 0) {
    forward_send(nd, msg, len);
    return;
  }
  if (change)
    flush_at(nd, true,
             policy_relay_change_time(nd->credit_at, now, credit_interval(nd)));
  else if (b->frames == 1)
    flush_at(nd, false, now + policy_relay_hold_ms(nd->cfg.heartbeat_ms));
}

static int target_find(const struct sim_node *nd, const char *name) {
  for (int k = 0; k < POLICY_RELAY_TARGETS_MAX; k++)
    if (nd->targets[k].used && strcmp(nd->targets[k].name, name) == 0)
      return k;
  return -1;
}

static bool targets_open(const struct sim_node *nd, uint64_t now) {
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++)
    if (nd->targets[k].used && nd->targets[k].until > now)
      return true;
  return false;
}

static void target_close(struct sim_target *t) {
  batch_free(&t->b);
  memset(t, 0, sizeof(*t));
}

/* Arm the targets' timer for the earliest batch due or connection to
 * close. */
static void targets_arm(struct sim_node *nd) {
  uint64_t now = sim_ms(nd), next = UINT64_MAX;
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++) {
    const struct sim_target *t = &nd->targets[k];
    uint64_t at =
        t->b.frames > 0 && t->due < t->close_at ? t->due : t->close_at;
    if (t->used && at < next)
      next = at;
  }
  if (next == UINT64_MAX)
    sim_timer_stop(nd, SIM_T_TARGETS);
  else
    sim_timer_start(nd, SIM_T_TARGETS, next > now ? next - now : 0);
}

/* Send t's batch if its connection is up; false while it is not. */
static bool target_flush(struct sim_node *nd, struct sim_target *t) {
  int rv;
  if (t->b.frames == 0)
    return true;
  rv = sim_net_send_one(nd, t->node, &t->life, &t->up_at, &t->last_at, t->b.buf,
                        t->b.len);
  if (rv > 0)
    return false;
  nd->tx_catch_ups += rv == 0;
  batch_reset(&t->b);
  return true;
}

static void targets_flush(struct sim_node *nd) {
  uint64_t now = sim_ms(nd);
  bool unreached = false;
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++) {
    struct sim_target *t = &nd->targets[k];
    if (!t->used)
      continue;
    if (t->b.frames > 0 && t->due <= now && !target_flush(nd, t))
      t->due = now + SIM_TARGET_RETRY_MS;
    if (now >= t->close_at) {
      unreached |= t->b.frames > 0;
      target_close(t);
    }
  }
  /* A member never reached alone gets a window for everyone. */
  if (unreached)
    relay_open_window(nd, now);
  targets_arm(nd);
}

static void relay_catch_up(struct sim_node *nd, const struct peer *peer,
                           uint64_t now) {
  int k = target_find(nd, peer->rec->name);
  size_t nfree = 0;
  struct sim_target *t;
  if (!serves(nd, peer, now))
    return;
  for (size_t i = 0; i < POLICY_RELAY_TARGETS_MAX; i++)
    nfree += !nd->targets[i].used;
  struct policy_catch_up_in in = {
      .window_open = now < nd->window_until,
      .all_quiet = nd->all_quiet,
      .has_own = k >= 0,
      .own_free = nfree,
      .reachable = wire_valid_addr(peer->rec->addr),
      .behind = nd->reading_behind,
  };
  switch (policy_relay_catch_up(&in)) {
  case POLICY_CATCH_UP_COVERED:
    return;
  case POLICY_CATCH_UP_LATER:
    nd->deferred = true;
    return;
  case POLICY_CATCH_UP_ALL:
    relay_open_window(nd, now);
    return;
  case POLICY_CATCH_UP_ALONE:
    break;
  }
  if (k < 0) {
    for (k = 0; nd->targets[k].used; k++)
      ;
    t = &nd->targets[k];
    if (batch_init(&t->b) != 0)
      return;
    t->used = true;
    snprintf(t->name, sizeof(t->name), "%s", peer->rec->name);
    t->node = sim_addr_node(nd->sim, peer->rec->addr);
    t->life = t->node >= 0 ? nd->sim->nodes[t->node].life : 0;
    t->up_at = nd->cpu + connect_us(nd->sim);
  }
  t = &nd->targets[k];
  if (t->until <= now)
    nd->catch_ups++;
  t->until = now + policy_relay_window_ms(nd->cfg.heartbeat_ms);
  t->close_at = t->until + nd->cfg.heartbeat_ms;
  targets_arm(nd);
}

/* Every leaf message taken in goes to each member catching up (but its
 * sender), in a batch of its own that waits like the repeats. */
static void targets_add(struct sim_node *nd, const void *msg, size_t len,
                        const char *from, uint64_t now) {
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++) {
    struct sim_target *t = &nd->targets[k];
    if (!t->used || t->until <= now || strcmp(t->name, from) == 0)
      continue;
    if (!batch_fits(&t->b, len) && !target_flush(nd, t))
      continue; /* not up yet, and full: this one is not kept */
    if (batch_add(&t->b, msg, len) != 0)
      continue;
    if (t->b.frames == 1)
      t->due = now + policy_relay_hold_ms(nd->cfg.heartbeat_ms);
  }
  targets_arm(nd);
}

/* ---- shares (agent_relay.c) ---- */

static struct sim_ep *share_find(struct sim_node *nd, const char *addr) {
  for (size_t i = 0; i < nd->nshare_eps; i++)
    if (strcmp(nd->share_eps[i].addr, addr) == 0)
      return &nd->share_eps[i];
  return NULL;
}

/* mesh_share_connect: 0, or -1 */
static int share_connect(struct sim_node *nd, const char *addr) {
  if (share_find(nd, addr) != NULL)
    return -1; /* one member an address: not reached */
  return ep_append(nd, &nd->share_eps, &nd->nshare_eps, addr) != NULL ? 0 : -1;
}

static void share_disconnect(struct sim_node *nd, struct peer_more *more) {
  struct sim_ep *ep;
  if (more == NULL || more->share_ep == 0)
    return;
  if ((ep = share_find(nd, more->share_addr)) != NULL)
    *ep = nd->share_eps[--nd->nshare_eps];
  more->share_ep = 0;
  free(more->share_addr);
  more->share_addr = NULL;
  nd->share_n--;
}

static void share_peer(struct sim_node *nd, struct peer *peer) {
  const char *others[PEERS_RELAYS_MAX];
  struct peer_more *more = peer->more;
  const char *addr = peer->rec->addr;
  bool want;
  char *copy;

  bool in = peer->status != PEER_LEFT;
  uint64_t sig =
      nd->share_sig ^ (uint64_t)peer->relayed << 1 ^ (uint64_t)in << 2;

  if (more != NULL && more->share_sig == sig &&
      (more->share_addr == NULL || strcmp(more->share_addr, addr) == 0))
    return;
  for (size_t i = 0; i < nd->nothers; i++)
    others[i] = nd->others[i];
  want = nd->split && in && wire_valid_addr(addr) &&
         policy_relay_serves(nd->cfg.name, others, nd->nothers, peer->rec->name,
                             peer->relayed);
  if (more != NULL && more->share_ep > 0 &&
      (!want || strcmp(more->share_addr, addr) != 0))
    share_disconnect(nd, more);
  if ((more = peer_more(peer)) == NULL)
    return;
  more->share_sig = sig;
  if (!want || more->share_ep > 0 || (copy = strdup(addr)) == NULL)
    return;
  if (share_connect(nd, addr) < 0) {
    free(copy);
    return;
  }
  more->share_ep = 1;
  more->share_addr = copy;
  nd->share_n++;
}

static void share_forget(struct sim_node *nd, struct peer *peer) {
  share_disconnect(nd, peer->more);
}

static void share_sync(struct sim_node *nd, uint64_t now) {
  const char *names[PEERS_RELAYS_MAX];
  uint64_t sig = 0;
  bool split;
  if (!nd->cfg.relay)
    return;
  nd->nothers = peers_relays_alive(&nd->peers, NULL, names);
  for (size_t i = 0; i < nd->nothers; i++) {
    snprintf(nd->others[i], sizeof(nd->others[0]), "%s", names[i]);
    sig ^= policy_share_rank(names[i], "");
  }
  split = nd->nothers >= POLICY_RELAY_SHARE_K;
  if (split && !nd->split)
    nd->split_at = now;
  nd->split = split;
  nd->share_sig = (sig ^ (uint64_t)split << 63) | 1;
  for (size_t i = 0; i < nd->peers.n; i++)
    share_peer(nd, nd->peers.v[i]);
}

/* ---- agent.c and agent_jobs.c ---- */

static void on_peer_event(void *arg, const struct peer_event *ev) {
  struct sim_node *nd = arg;
  uint64_t now = sim_ms(nd);
  if (ev->type == PEER_EV_REAPED) {
    release_alt(nd, (struct peer *)ev->peer);
    release_endpoint(nd, (struct peer *)ev->peer);
    share_forget(nd, (struct peer *)ev->peer);
    engine_peer_event(&nd->engine, ev, now);
    return;
  }
  if (ev->type == PEER_EV_LOST) {
    redial(nd, (struct peer *)ev->peer);
    if (nd->cfg.relay && ev->peer->relayed)
      publish_soon(nd);
  }
  if (nd->cfg.relay && ev->peer->is_relay && ev->type != PEER_EV_DATA)
    share_sync(nd, now);
  engine_peer_event(&nd->engine, ev, now);
  sim_observe(nd, ev);
}

static void wake_at(struct sim_node *nd, uint64_t when) {
  uint64_t now = sim_ms(nd);
  if (!nd->up || when == UINT64_MAX || when >= nd->wake_at)
    return;
  nd->wake_at = when;
  sim_timer_start(nd, SIM_T_WAKE, when > now ? when - now : 0);
}

static void on_wake(struct sim_node *nd) {
  uint64_t next;
  nd->wake_at = UINT64_MAX;
  next = peers_tick(&nd->peers, sim_ms(nd), sim_wall(nd), nd->cfg.lost_after_ms,
                    nd->cfg.reap_after_ms);
  wake_at(nd, next);
  check_sync(nd);
  jobs_step(nd);
}

static void jobs_step(struct sim_node *nd) {
  struct engine_action acts[32];
  uint64_t deadline = UINT64_MAX;
  size_t n;
  do {
    n = engine_step(&nd->engine, &nd->peers, sim_ms(nd), acts, 32, &deadline);
    for (size_t i = 0; i < n; i++) {
      sim_action(nd, &acts[i]);
      sim_at(nd->sim, nd->cpu + SIM_SCRIPT_US, SIM_EV_DONE, nd->id,
             (int)acts[i].behaviour, nd->life, NULL);
    }
  } while (n == 32);
  wake_at(nd, deadline);
  refresh(nd, false);
}

static void action_done(struct sim_node *nd, size_t b) {
  nd->action_busy = false;
  nd->disk.has_applied = true;
  nd->disk.applied_run = nd->last_action == ENGINE_ACT_RUN;
  engine_done(&nd->engine, b, sim_ms(nd));
  jobs_step(nd);
}

/* ---- lifecycle ---- */

static void net_start(struct sim_node *nd) {
  peers_set_covered(&nd->peers, !nd->cfg.relay);
  load_members(nd);
  for (size_t i = 0; i < nd->cfg.njoin; i++)
    if (strcmp(nd->cfg.join[i], nd->rec.addr) != 0)
      open_endpoint(nd, nd->cfg.join[i], true);
  for (size_t i = 0; i < nd->cfg.nrelays; i++)
    if (strcmp(nd->cfg.relays[i], nd->rec.addr) != 0)
      open_endpoint(nd, nd->cfg.relays[i], true);
  sim_timer_start(nd, SIM_T_HEARTBEAT, nd->cfg.heartbeat_ms);
  if (nd->neps > 0)
    sim_timer_start(nd, SIM_T_HELLO, 0);
  else
    nd->got_members = false;
  wake_at(nd, nd->started_at + nd->cfg.heartbeat_ms + nd->cfg.heartbeat_ms / 2);
}

void sim_node_start(struct sim_node *nd) {
  struct sim *s = nd->sim;
  unsigned char key[16];
  nd->life++;
  nd->up = true;
  nd->started_us = s->now;
  nd->cpu = s->now;
  nd->busy_until = s->now;
  nd->started_at = sim_ms(nd);
  nd->wake_at = UINT64_MAX;
  nd->seq = 0;
  nd->members_sent_at = 0;
  nd->got_members = nd->synced = nd->view_agreed = nd->members_wanted = false;
  nd->members_saved = false;
  nd->members_beats = nd->hello_tries = 0;
  nd->soon_left = 0;
  nd->soon_again = false;
  nd->credit_at = 0;
  nd->window_until = 0;
  nd->nothers = nd->share_n = 0;
  nd->split = false;
  nd->split_at = nd->share_sig = 0;
  nd->all_quiet = false;
  memset(nd->resync, 0, sizeof(nd->resync));
  nd->resync_left = 0;
  nd->lag_msgs = nd->lag_late = nd->full_reads = nd->drained_reads = 0;
  nd->reads = 0;
  nd->reading_behind = false;
  nd->deferred = false;
  nd->last_action = -1;
  nd->action_busy = false;
  memset(&nd->rival, 0, sizeof(nd->rival));
  peers_init(&nd->peers, nd->cfg.name, nd->cfg.max_members, on_peer_event, nd);
  peers_set_max(&nd->peers, nd->cfg.max_members);
  peers_share_pool(&nd->peers, nd->sim->pool);
  peers_set_timing(&nd->peers, nd->cfg.heartbeat_ms, nd->cfg.lost_after_ms,
                   nd->cfg.reap_after_ms);
  (void)engine_init(&nd->engine, &nd->cfg, sim_ms(nd));
  /* applied.json: what the previous run's last finished action was */
  if (nd->disk.has_applied && nd->cfg.nbehaviours > 0) {
    (void)engine_restore(&nd->engine, SIM_BEHAVIOUR, nd->disk.applied_run,
                         true);
    nd->last_action = nd->disk.applied_run ? ENGINE_ACT_RUN : ENGINE_ACT_REVERT;
  }
  nd->seen = seen_new();
  /* seen_init drew its key from libsodium: one of the seed's instead */
  for (size_t i = 0; i < sizeof(key); i++)
    key[i] = (unsigned char)sim_rand_next(&s->rand);
  memcpy(nd->seen->key, key, sizeof(key));
  if (nd->cfg.relay) {
    (void)batch_init(&nd->hold);
    (void)batch_init(&nd->news);
  }
  self_init(nd);
  net_start(nd);
}

void sim_node_crash(struct sim_node *nd) {
  if (!nd->up)
    return;
  nd->up = false;
  for (size_t t = 0; t < SIM_T_COUNT; t++)
    sim_timer_stop(nd, (enum sim_timer)t);
  peers_free(&nd->peers);
  engine_free(&nd->engine);
  members_free(&nd->known);
  free(nd->eps);
  nd->eps = NULL;
  nd->neps = 0;
  free(nd->share_eps);
  nd->share_eps = NULL;
  nd->nshare_eps = 0;
  free(nd->seen);
  nd->seen = NULL;
  batch_free(&nd->hold);
  batch_free(&nd->news);
  for (size_t k = 0; k < POLICY_RELAY_TARGETS_MAX; k++)
    target_close(&nd->targets[k]);
}

void sim_node_event(struct sim_node *nd, const struct sim_event *e) {
  switch (e->type) {
  case SIM_EV_DELIVER:
    /* An agent busy when it arrived takes it in the same drain (mesh.c)
     * as those before it: no wake-up of its own. */
    sim_cpu(nd, nd->sim->drained ? nd->sim->o.busy_us : nd->sim->o.wake_us);
    /* mesh.c reads a batch of SIM_RECV_BATCH a wake-up: more waited */
    if (nd->sim->drained && nd->inbox.n + 1 >= SIM_RECV_BATCH)
      nd->full_reads++;
    if (nd->inbox.n == 0)
      nd->drained_reads++;
    nd->reads++;
    nd->rx_msgs++;
    nd->rx_bytes += e->blob->len;
    on_message(nd, e->blob);
    if (nd->inbox.n == 0)
      on_drained(nd);
    break;
  case SIM_EV_DONE:
    action_done(nd, (size_t)e->arg);
    break;
  case SIM_EV_TIMER:
    nd->t_active[e->arg] = false;
    switch ((enum sim_timer)e->arg) {
    case SIM_T_HEARTBEAT:
      on_heartbeat(nd);
      break;
    case SIM_T_SOON:
      on_soon(nd);
      break;
    case SIM_T_ANSWER:
      on_answer(nd);
      break;
    case SIM_T_LIST:
      publish_members(nd);
      break;
    case SIM_T_HELLO:
      on_hello(nd);
      break;
    case SIM_T_WAKE:
      on_wake(nd);
      break;
    case SIM_T_HOLD:
      flush(nd, false);
      break;
    case SIM_T_NEWS:
      flush(nd, true);
      break;
    case SIM_T_TARGETS:
      targets_flush(nd);
      break;
    case SIM_T_COUNT:
      break;
    }
    break;
  case SIM_EV_WORLD:
  case SIM_EV_WAKE:
    break;
  }
}
