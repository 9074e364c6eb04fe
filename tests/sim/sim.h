/*
 * sim.h — choreo-sim, the deterministic simulator (docs/ARCHITECTURE.md
 * "Simulation"): N agents in one process, running the real pure code
 * (peers, wire, record, batch, seen, engine, policy, statefiles) under a
 * virtual clock and a virtual network. The libuv shell of the agent
 * (agent_net.c, agent_relay.c, agent_self.c, agent.c, agent_jobs.c) is
 * mirrored in sim_node.c, function by function (its header comment lists
 * which mirrors which).
 *
 *   sim_queue.c   the PRNG, the event queue (virtual time in µs)
 *   sim_inbox.c   what waits for a busy node: deliveries taken from
 *                 their connections in turn, as nanomsg's fair queue does
 *   sim_net.c     the virtual network: links, latency, loss, duplication,
 *                 partitions, connections coming up, crashed receivers,
 *                 and the per-node CPU that messages queue for
 *   sim_node.c    one agent: the mirrored shell around the real core
 *   sim_main.c    the command line, the scenarios, the invariants and
 *                 the summary line
 *
 * Everything random comes from one seed (sim_rand); nothing reads the
 * real clock, so one seed gives one output, byte for byte.
 */
#ifndef CHOREO_SIM_H
#define CHOREO_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "config.h"
#include "engine.h"
#include "peers.h"
#include "policy.h"
#include "seen.h"
#include "statefiles.h"
#include "wire.h"

/* ---- PRNG and queue (sim_queue.c) ---- */

/* xoshiro256** seeded by splitmix64. */
struct sim_rand {
  uint64_t s[4];
};
void sim_rand_seed(struct sim_rand *r, uint64_t seed);
uint64_t sim_rand_next(struct sim_rand *r);
/* Uniform in [0, n); 0 when n is 0. */
uint64_t sim_rand_below(struct sim_rand *r, uint64_t n);
/* True with probability p. */
bool sim_rand_chance(struct sim_rand *r, double p);

/* Bytes sent once and delivered to many: shared, counted. Each frame
 * (the blob itself, or each of a batch) is decoded by the first receiver
 * and kept for the others: the decoder is a pure function of the bytes,
 * so every receiver would get the same message, and each is still
 * charged the decode's CPU time and counted as decoding. */
struct sim_blob {
  unsigned refs;
  size_t len;
  size_t nframes;           /* entries of frames */
  struct sim_frame *frames; /* by frame index; NULL until decoded */
  unsigned char data[];
};
struct sim_frame {
  bool done;
  struct wire_msg *m; /* NULL: the decoder refused the frame */
};
struct sim_blob *sim_blob_new(const void *buf, size_t len);
void sim_blob_unref(struct sim_blob *b);
/* Frame k of blob b (bytes buf, len within it), decoded once; NULL when
 * the decoder refuses it. The decodes kept take at most SIM_DECODED_MAX
 * bytes (a message is 8 KB decoded, a relay's batch thousands of them):
 * past that the frame is decoded into a message of the caller's, *tmp,
 * which it frees (wire_msg_free, free) after use. */
#define SIM_DECODED_MAX ((size_t)1 << 30)
/* mesh.c's MESH_RECV_BATCH: messages an agent takes in per wake-up */
#define SIM_RECV_BATCH 64
const struct wire_msg *sim_blob_decode(struct sim_blob *b, size_t k,
                                       const void *buf, size_t len,
                                       struct wire_msg **tmp);

enum sim_ev {
  SIM_EV_DELIVER, /* a message reaches node's inbox */
  SIM_EV_TIMER,   /* one of node's timers (arg: which, gen: its arming) */
  SIM_EV_DONE,    /* a behaviour's action ends (arg: behaviour) */
  SIM_EV_WORLD,   /* a scenario step (arg: step), node -1 */
  SIM_EV_WAKE,    /* node's CPU is free: it takes the next waiting event */
};

struct sim_event {
  uint64_t at;  /* virtual µs */
  uint64_t ord; /* tie-break: order of scheduling */
  enum sim_ev type;
  int node;
  int arg;               /* DELIVER: the connection (sim_link), -1: forged */
  uint64_t gen;          /* TIMER: the arming; DELIVER: receiver's life */
  struct sim_blob *blob; /* DELIVER: owned reference */
  struct sim_fan *fan;   /* in the queue only: the copies of one send */
};

/* One copy of a send: due at node `node` (of life `life`) at `at`, with
 * the tie-break it was scheduled with. */
struct sim_copy {
  uint64_t at, ord;
  int node;
  unsigned life;
};

/* The copies of one send to many (sim_net_send), sorted by (at, ord),
 * held in the queue as one entry whose key is its next copy's: they come
 * out in the order they would as entries of their own, and the queue
 * holds an entry per send in flight, not per copy (a relay's message to
 * 5,000 members is one). Owns one reference to blob. */
struct sim_fan {
  struct sim_blob *blob;
  int link; /* the sender's socket: sim_link() */
  size_t n, next, cap;
  struct sim_copy *c;
};

struct sim_queue {
  struct sim_event *v; /* a binary min-heap by (at, ord) */
  size_t n, cap;
  uint64_t ord;
};
void sim_queue_push(struct sim_queue *q, const struct sim_event *e);
/* The tie-break of the next event scheduled (what push would give it). */
uint64_t sim_queue_ord(struct sim_queue *q);
/* Queue a fan's copies (f->n > 0; sorted here); the queue owns f. */
void sim_queue_push_fan(struct sim_queue *q, struct sim_fan *f);
/* The next event: a fan gives its next copy as a DELIVER event with a
 * reference to the blob of its own. */
bool sim_queue_pop(struct sim_queue *q, struct sim_event *out);
void sim_queue_free(struct sim_queue *q);

/* ---- what waits for a busy node (sim_inbox.c) ---- */

struct sim_fifo {
  struct sim_event *v;
  size_t head, n, cap;
};
/* The connection a copy comes over, as the receiver's SUB socket has
 * them: one per socket of the sender's that connects to it (its PUB to
 * every member, a relay's PUB to its share, a relay's catch-up socket to
 * that member alone). */
enum sim_sock { SIM_SOCK_ALL, SIM_SOCK_SHARE, SIM_SOCK_ONE, SIM_SOCK_COUNT };
#define sim_link(from, sock) ((from)*SIM_SOCK_COUNT + (int)(sock))
/* The sender of a connection's copies; -1 for the forger's. */
#define sim_link_from(link) ((link) < 0 ? -1 : (link) / SIM_SOCK_COUNT)
/* What a connection holds for a receiver that doesn't read: the sender's
 * and the receiver's socket buffers, each MESH_BUF_BYTES in agent/mesh.c
 * (two of the largest messages). nanomsg drops what doesn't fit at the
 * sender, for that connection alone. */
#define SIM_LINK_BYTES (4 * (size_t)CHOREO_MSG_MAX)
/* One connection's deliveries waiting, in the order they arrived. */
struct sim_link_q {
  int link;
  size_t bytes;
  struct sim_fifo msgs;
};
/* Deliveries by connection (DELIVER's arg), taken a connection at a time
 * in a round, as nanomsg's SUB socket takes from its connections; the
 * other events in order of arrival. Owns the blobs' references. */
struct sim_inbox {
  size_t n; /* events waiting */
  struct sim_fifo other;
  struct sim_link_q *queues; /* every connection heard while busy */
  size_t nqueues, queues_cap;
  int *index; /* open addressing: link -> queues[], -1 empty */
  size_t index_cap;
  size_t *round; /* ring of queues[] with deliveries, next first */
  size_t round_head, round_n;
};
/* Make e wait; false (e not taken) for a delivery whose connection holds
 * SIM_LINK_BYTES already: the sender's nanomsg dropped it. */
bool sim_inbox_push(struct sim_inbox *in, const struct sim_event *e);
/* The delivery whose turn is next, the oldest other event; NULL if none. */
const struct sim_event *sim_inbox_next_delivery(const struct sim_inbox *in);
const struct sim_event *sim_inbox_next_other(const struct sim_inbox *in);
/* Take that delivery (delivery) or that other event; one must wait. */
struct sim_event sim_inbox_take(struct sim_inbox *in, bool delivery);
/* When the oldest event waiting arrived (µs); UINT64_MAX if none. */
uint64_t sim_inbox_oldest(const struct sim_inbox *in);
void sim_inbox_free(struct sim_inbox *in);

/* ---- one agent (sim_node.c) ---- */

/* The timers of the shell, each a uv_timer_t there. */
enum sim_timer {
  SIM_T_HEARTBEAT, /* agent_net.c heartbeat */
  SIM_T_SOON,      /* agent_net.c soon */
  SIM_T_ANSWER,    /* agent_net.c answer */
  SIM_T_LIST,      /* agent_net.c list */
  SIM_T_HELLO,     /* agent_net.c hello */
  SIM_T_WAKE,      /* agent.c wake */
  SIM_T_HOLD,      /* agent_relay.c hold.timer */
  SIM_T_NEWS,      /* agent_relay.c news.timer */
  SIM_T_TARGETS,   /* agent_relay.c targets_timer */
  SIM_T_COUNT
};

/* One PUB connection (agent_net.c struct endpoint). */
struct sim_ep {
  char addr[CHOREO_ADDR_MAX + 1];
  int target;     /* the node at addr; -1: nobody there */
  uint64_t up_at; /* µs: what is sent before is dropped (slow joiner) */
  int refs;
  bool join;
  unsigned life;    /* the target's life the connection was made to */
  uint64_t last_at; /* µs: when the copy sent last arrives (in order) */
};

/* A catch-up sent to one member alone (agent_relay.c struct
 * relay_target): a connection of its own to the member's inbox. */
struct sim_target {
  bool used;
  char name[CHOREO_NAME_MAX + 1];
  int node;          /* the node at its address; -1: nobody */
  unsigned life;     /* the node's life the connection was made to */
  uint64_t up_at;    /* µs: what is sent before is dropped */
  uint64_t last_at;  /* µs: when the copy sent last arrives (in order) */
  uint64_t until;    /* ms: heartbeats are added until then */
  uint64_t close_at; /* ms: the connection is closed then */
  uint64_t due;      /* ms: its batch goes then */
  struct batch b;
};

/* What state_dir keeps across a crash. */
struct sim_disk {
  bool has_state;
  uint64_t inc;
  char declared[CHOREO_STATE_MAX + 1];
  char *members; /* members.json's text; owned; NULL: none */
  /* members.json is written only for a node the scenario restarts: no
   * other reads it, and N copies of N entries would be most of a large
   * run's memory */
  bool restarts;
  bool has_applied, applied_run; /* applied.json: the last action ended */
};

struct sim_node {
  int id;
  struct sim *sim;
  struct config cfg;   /* this node's configuration (engine borrows it) */
  bool up;             /* running */
  unsigned life;       /* starts so far: a delivery to an earlier life drops */
  uint64_t started_us; /* virtual µs of its latest start */
  int64_t skew_ms;     /* its wall clock minus the true time */
  struct sim_disk disk;

  /* agent.c / agent_self.c */
  struct peers peers;
  struct engine engine;
  struct record rec; /* own record as published */
  char declared[CHOREO_STATE_MAX + 1];
  uint64_t wake_at; /* ms; UINT64_MAX: none */

  /* agent_net.c struct net */
  uint64_t seq, started_at, members_sent_at;
  bool got_members, synced, view_agreed, members_wanted;
  bool members_saved;
  uint64_t members_key;
  unsigned members_beats, hello_tries;
  size_t soon_left;
  bool soon_again;
  struct members_set known;
  struct sim_ep *eps;
  size_t neps;
  struct policy_rival rival;

  /* agent_relay.c struct relay */
  struct batch hold, news;
  uint64_t hold_due, news_due, credit_at;
  struct seen *seen;
  uint64_t window_until;
  bool all_quiet;
  struct sim_target targets[POLICY_RELAY_TARGETS_MAX];
  /* agent_relay.c: shares (relay_share_sync); the share's connections */
  char others[PEERS_RELAYS_MAX][CHOREO_NAME_MAX + 1];
  size_t nothers, share_n;
  bool split;
  uint64_t split_at, share_sig;
  struct sim_ep *share_eps;
  size_t nshare_eps;
  /* agent_net.c: records digests compared with each relay */
  struct policy_resync resync[PEERS_RELAYS_MAX];
  unsigned resync_left;
  /* agent_net.c: this heartbeat's messages straight from their senders,
   * the late ones; heartbeats read behind */
  uint64_t lag_msgs, lag_late, behind;
  uint64_t full_reads;    /* this heartbeat: deliveries with a batch waiting */
  uint64_t drained_reads; /* this heartbeat: deliveries nothing waited after */
  uint64_t reads;         /* this heartbeat: deliveries */
  bool reading_behind;
  bool deferred;                        /* agent_relay.c: relay.deferred */
  uint64_t resyncs, windows, catch_ups; /* counted, for the summary */

  /* timers: armed, due (µs) and arming counter */
  bool t_active[SIM_T_COUNT];
  uint64_t t_gen[SIM_T_COUNT];

  /* CPU: µs the node is busy until; cpu is the node's time while it
   * handles an event (effects happen then) */
  uint64_t busy_until, cpu;
  /* Events that came while it was busy (sim_main.c run()): taken one at
   * a time at SIM_EV_WAKE, queued at busy_until while any wait. Kept
   * here rather than in the queue, where thousands of deliveries waiting
   * for one node would each be sifted again every time they are put
   * back. */
  struct sim_inbox inbox;
  size_t drain_run; /* deliveries taken from the queue in a row */
  bool wake_queued;

  /* the level behaviour: last action issued, and if one is in flight */
  int last_action; /* -1: none; ENGINE_ACT_RUN or ENGINE_ACT_REVERT */
  bool action_busy;
  uint64_t actions;

  /* counters since the last reset (sim_main.c: steady state) */
  uint64_t rx_msgs, rx_bytes, tx_msgs, tx_bytes, decodes;
  /* copies sent since the start, by kind (--trace): its own records,
   * member lists, forwarded batches, catch-ups alone */
  uint64_t tx_own, tx_lists, tx_forwarded, tx_catch_ups;
  uint64_t tx_fwd_news; /* of tx_forwarded: batches of changes */
  /* batches forwarded, and the frames in them: changes, repeats */
  uint64_t fwd_batches[2], fwd_frames[2];
  uint64_t cpu_us; /* CPU time taken in all (--trace) */
  /* CPU costs are this many times the model's (0 or 1: as the model;
   * the relay-starved scenario) */
  uint64_t slow;
  uint64_t refutations, forged_refused;
  /* copies to it dropped on full connections: all, from relays (--trace) */
  uint64_t dropped_full[2];
  /* --trace: messages taken in by type (wire_type), and resync requests */
  uint64_t rx_type[4], rx_resync;
  /* the truth checks: its record's stamp when last looked at, since when */
  uint64_t seen_inc, seen_ver, stable_since;
};

/* ---- the world (sim_main.c, sim_net.c) ---- */

struct sim_opts {
  size_t nodes, relays, dbs;
  uint64_t seed;
  double loss, dup;
  const char *scenario;
  uint64_t seconds;
  uint64_t heartbeat_ms, lost_after_ms;
  uint64_t latency_us, jitter_us;
  uint64_t launch_ms; /* nodes other than the seed start within this */
  /* --leaves-after: the leaves start this much later than the relays
   * (relays first, as docs/OPERATIONS.md advises); 0: all together */
  uint64_t leaves_after_ms;
  uint64_t skew_ms;                       /* wall clocks spread over +-skew */
  uint64_t wake_us, decode_us, encode_us; /* CPU model */
  /* a delivery that found the node busy: drained with the ones before
   * it, without a wake-up of its own (bench/relay_load.py) */
  uint64_t busy_us;
  uint64_t send_us; /* per copy sent (per pipe) */
  /* a `choreo set` besides publishing: the control request, the state
   * file written and synced (after the publication, as the agent does) */
  uint64_t set_us;
  uint64_t cores; /* 0: every node has a CPU of its own; else all nodes
                     share this many (one machine, as the benchmarks) */
  uint64_t changes;
  bool trace; /* --trace: the relays' backlog each heartbeat, on stderr */
};

struct sim {
  struct sim_opts o;
  struct sim_rand rand;
  struct sim_queue q;
  uint64_t now; /* µs */
  struct sim_node *nodes;
  size_t n;
  /* Where every node's peer table holds its records (recpool.h): the
   * copies of one record that reach N nodes are stored once. */
  struct recpool *pool;
  /* partition: side[i] 0 or 1 while cut; nodes on different sides
   * don't hear each other */
  bool cut;
  unsigned char *side;
  /* the change being timed (sim_main.c) */
  int change_node;
  uint64_t change_ver, change_inc, change_at;
  uint64_t *change_seen; /* per node: µs it learnt it; 0: not yet */
  size_t change_reached;
  /* invariant state: the last disturbance (µs) */
  uint64_t calm_since;
  bool failed;
  char event[256];     /* the event being handled, for reports */
  uint64_t *core_free; /* with --cores: µs each core is busy until */
  uint64_t events;
  bool drained; /* the event being handled waited for its node's CPU */
  uint64_t dropped_loss, dropped_cut, dropped_down, dropped_joiner;
  uint64_t dropped_full; /* a connection's buffers full (SIM_LINK_BYTES) */
};

/* sim_net.c */
uint64_t sim_ms(const struct sim_node *nd);  /* the node's monotonic ms */
uint64_t sim_now_ms(const struct sim *s);    /* the same, of virtual now */
int64_t sim_wall(const struct sim_node *nd); /* its wall clock, unix ms */
void sim_at(struct sim *s, uint64_t at, enum sim_ev type, int node, int arg,
            uint64_t gen, struct sim_blob *blob);
/* Whether every connection of nd is up (agent_net.c: mesh_out_up() at
 * least its endpoints). */
bool sim_net_all_up(const struct sim_node *nd);
/* Send buf to every connection of nd (nanomsg PUB: one copy per pipe). */
void sim_net_send(struct sim_node *nd, const void *buf, size_t len);
/* The same to the relay's share (mesh_share_send). */
void sim_net_send_share(struct sim_node *nd, const void *buf, size_t len);
/* Send buf over a connection of nd's own to node `to` (a catch-up):
 * made to life *life, up at *up_at µs. Returns 0 when sent (or lost on
 * the way), 1 while the connection is not up yet, -1 when nobody is
 * there. */
int sim_net_send_one(struct sim_node *nd, int to, unsigned *life,
                     uint64_t *up_at, uint64_t *last_at, const void *buf,
                     size_t len);
/* The node an address names, or -1. */
int sim_addr_node(const struct sim *s, const char *addr);
void sim_addr_of(int id, char *buf, size_t len);
/* Charge the node CPU time. */
void sim_cpu(struct sim_node *nd, uint64_t us);

/* sim_node.c */
int sim_node_init(struct sim *s, struct sim_node *nd, int id);
void sim_node_free(struct sim_node *nd);
void sim_node_start(struct sim_node *nd);
void sim_node_crash(struct sim_node *nd);
void sim_node_set(struct sim_node *nd, const char *state);
void sim_node_event(struct sim_node *nd, const struct sim_event *e);
/* Whether a relay forwards to its share yet (agent_relay.c:
 * relay_share_active), for --trace. */
bool sim_node_share_active(const struct sim_node *nd);
void sim_timer_start(struct sim_node *nd, enum sim_timer t, uint64_t ms);
void sim_timer_stop(struct sim_node *nd, enum sim_timer t);

/* sim_main.c: a peer table event of node nd (the truth checks). */
void sim_observe(struct sim_node *nd, const struct peer_event *ev);
void sim_action(struct sim_node *nd, const struct engine_action *a);

#endif
