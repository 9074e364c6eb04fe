/*
 * peers.h — the peer table: everything this agent knows about the other
 * members, and the rules that merge what arrives into it.
 *
 * Pure: no sockets, no timers. Callers pass the monotonic time (ms, for
 * lost/reap) and the wall-clock time (unix ms, for event times). Every
 * observable change is reported once through the table's event callback.
 *
 * Merge rules (docs/PROTOCOL.md):
 *  - A record replaces the stored one only if it is newer by (inc, ver):
 *    duplicates, reordered and replayed records change nothing.
 *  - Messages from a node carry (inc, seq); one not newer than the last
 *    accepted from that node is a replay and is refused before merging.
 *  - A record heard from the node itself marks it seen; a lost node is
 *    revived by it ("joined" again).
 *  - Member lists relayed by others only introduce nodes (name, address)
 *    and spread "left"; a node's state is learnt from the node itself.
 *  - A node silent for lost_after becomes lost; lost and left nodes are
 *    forgotten after reap_after. A node only heard of (from member lists)
 *    that stays silent for lost_after is forgotten at once, and at most
 *    PEERS_UNHEARD_MAX such entries are kept.
 *
 * Time (docs/RELIABILITY.md): the table keeps the earliest deadline it
 * needs (peers_next_deadline()), updated by every merge and tick, so a
 * caller that ticks it at that deadline never misses a loss: every merge
 * that leaves a node alive arms its lost_after deadline. Once given a
 * heartbeat (peers_set_timing()) the table also notices this agent's own
 * stalls from the gaps between the times it is given, and does not blame
 * them on its peers: they get a fresh lost_after instead (peers_grace()).
 */
#ifndef CHOREO_PEERS_H
#define CHOREO_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"
#include "wire.h"

/* Members a table holds at most; entries beyond are refused and counted. */
#define PEERS_MAX_DEFAULT 4096
/* Relays whose verdicts a table keeps (slots of peer.lost_by); verdicts
 * of relays beyond are not read. */
#define PEERS_RELAYS_MAX 8
/* Entries learnt from member lists but not heard from yet, at most. */
#define PEERS_UNHEARD_MAX 256
/* Memory the table may hold, in bytes (entries, records, data and the
 * index), estimated by peers_entry_bytes(): a key holder who forges
 * thousands of nodes with the largest data can't grow the agent beyond
 * it. A new entry or a larger record that would pass it is refused
 * (PEERS_OVER_BUDGET) and counted in budget_drops. */
#define PEERS_BYTES_MAX_DEFAULT ((size_t)32 * 1024 * 1024)
/* What one data key and value cost beyond their bytes, for the estimate:
 * jansson's string object (32 bytes), its hash table pair (about 56 and
 * the key) and malloc's header and rounding of the three allocations. */
#define PEERS_DATA_ENTRY_OVERHEAD 160

enum peer_status {
  PEER_ALIVE,
  PEER_LOST,
  PEER_LEFT,
};

/* Events the table reports. REAPED is internal (the agent closes the
 * node's connection); the others are the events of docs/CONFIGURATION.md. DATA
 * also reports a change of the node's groups, which changes who watches it. */
#define PEER_EVENT_MAP(XX)                                                     \
  XX(JOINED, "joined")                                                         \
  XX(STATE, "state")                                                           \
  XX(DATA, "data")                                                             \
  XX(LEFT, "left")                                                             \
  XX(LOST, "lost")                                                             \
  XX(REAPED, "reaped")

enum peer_event_type {
#define XX(id, s) PEER_EV_##id,
  PEER_EVENT_MAP(XX)
#undef XX
};

struct recpool;

/* How late a sender's messages are read here (policy_lag_note()): the
 * largest offset seen, its sending time minus our monotonic clock at
 * receipt (ms), so that neither its clock's skew nor a step of our wall
 * clock counts; lowered with time from base_at (monotonic ms), so that a
 * clock drifting from ours, or stepped back, stops counting. set: a
 * message with a time came. */
struct peer_lag {
  int64_t base;
  uint64_t base_at;
  bool set;
};

/* What few entries of a table need (peer->more, made on first use by
 * peer_more()): a leaf's table of thousands holds none. */
struct peer_more {
  /* The agent's connection to it (peer->endpoint) was made to this
   * address; NULL when none. Owned. */
  char *endpoint_addr;
  uint64_t redialled_at; /* monotonic ms its connection was last made anew */
  /* Another address that sent messages under its name which were behind
   * the record held (two agents with one name, or a restart at a new
   * address): kept connected until alt_until, monotonic ms, so that both
   * hear the member list that makes them refute. NULL when none. Owned. */
  char *alt_addr;
  uint64_t alt_until;
  /* When its clock's skew was last warned about (monotonic ms;
   * skew_warned: ever). */
  bool skew_warned;
  uint64_t skew_warned_at;
  /* A relay's: the (inc, seq) of the message whose verdicts were taken
   * last; older ones are not taken again (a replay). */
  uint64_t verdict_inc, verdict_seq;
  /* This agent being a relay (agent_net.c): the record of it (inc, ver)
   * last passed on to every member; passed: one was. */
  bool passed;
  uint64_t passed_inc, passed_ver;
  /* This agent being a relay whose members are shared (agent_relay.c):
   * its connection of the share, made to share_addr (owned; NULL: none),
   * and what it was decided for (relay->share_sig and its role). */
  int share_ep;
  char *share_addr;
  uint64_t share_sig;
  /* Freshness (agent_net.c): the nonce of it this agent last echoed, and
   * the (inc, seq) of the message that brought it, kept once the echo is
   * over, so that the same nonce is not echoed again (0: none). */
  uint64_t echoed_nonce, echoed_inc, echoed_seq;
  /* Its release as its latest message of its own said it ("0.2.0";
   * "": not said). */
  char release[CHOREO_RELEASE_MAX + 1];
  /* How late its messages straight from it are read (agent_net.c). */
  struct peer_lag lag;
};

/* One member as this agent knows it. Laid out small: a table holds one
 * per member, and the simulator N tables of N. */
struct peer {
  /* The newest record known, held read-only in the table's pool
   * (recpool.h): to change it, the table holds another. */
  const struct record *rec;
  struct peer_more *more; /* NULL until needed (peer_more()) */
  uint64_t last_seen;     /* monotonic ms of the last message from it */
  /* Monotonic ms its silence counts from: last_seen, or later when this
   * agent stalled since (peers_grace()). Lost at quiet_since + lost_after. */
  uint64_t quiet_since;
  uint64_t status_since; /* monotonic ms of the last status change */
  int64_t status_wall;   /* the same as unix ms: when it was seen to change */
  uint64_t msg_inc;      /* newest (inc, seq) accepted from the node: */
  uint64_t msg_seq;      /* the replay guard */
  /* Its clock minus ours, from its latest message (ms). */
  int64_t clock_offset_ms;
  uint64_t heartbeat_ms; /* its period, from minor 3 on (0: unknown) */
  uint64_t changed_at;   /* monotonic ms its record last became newer */
  uint32_t hash;         /* of its name, for the table's index */
  enum peer_status status;
  int endpoint; /* the agent's connection to it; -1: none */
  /* Its versions (docs/PROTOCOL.md "Versions"), from its latest message
   * of its own (agent_net.c): version_heard, whether one came yet;
   * versioned, whether it said which protocol minors it speaks (false: a
   * 0.1.0 agent); that range and the minor both speak (at most
   * WIRE_PROTO_LIMIT). version_refused: a message of a version we can't
   * read was said (once, until one we read comes). */
  uint16_t proto_min, proto_max, proto;
  bool version_heard, versioned, version_refused;
  bool heard; /* a record came from the node itself */
  /* Freshness, with a key ring (docs/SECURITY.md): a message of the node
   * echoed this agent's nonce, so its later (inc, seq) are fresh. */
  bool proved;
  /* Relays (docs/PROTOCOL.md "Relays"), from its own latest message:
   * relayed, it is a leaf, whose records reach this agent through relays;
   * is_relay, it is a relay. lost_by: the relays (bits of their slots,
   * peers_relay_verdicts()) that hold it lost by their own detection.
   * hello_last (agent_net.c): its last message to us was a hello (its
   * next state says it has our answer, so our connection to it is up). */
  bool relayed, is_relay, hello_last;
  uint8_t lost_by;
};

/* The entry's rarely needed fields, made (zeroed) on first use; NULL when
 * out of memory. Freed with the entry. */
struct peer_more *peer_more(struct peer *peer);

/* The same for reading: all zero ("", NULL) while it has none. */
static inline const struct peer_more *peer_more_of(const struct peer *peer) {
  static const struct peer_more none;
  return peer->more != NULL ? peer->more : &none;
}

/* Free what peer_more() made for a peer that no table holds (a test's). */
void peer_more_free(struct peer *peer);

struct peer_event {
  enum peer_event_type type;
  const struct peer *peer; /* valid during the callback only; for REAPED
                              the entry is removed right after */
  const char *state;       /* the peer's state now (lost/left included) */
  const char *previous;    /* its state before; "" when none */
  const char *reason;
  int64_t time_ms; /* wall clock */
};

/* Called once the table is consistent; it may read the table but must not
 * change it (no merge, no tick). */
typedef void (*peers_event_fn)(void *arg, const struct peer_event *ev);

struct peers {
  struct peer **v; /* sorted by name; each owned */
  /* The entries by name (peers.c "The index"): nslots slots, a power
   * of two, at least twice n; key, the table's hash key. */
  struct peer **slot;
  size_t nslots;
  unsigned char key[16];
  struct peer *last; /* the entry found last (peers.c index_find()) */
  /* Where the entries' records are held: the table's own pool (made with
   * the first entry), or one shared with other tables
   * (peers_share_pool()). */
  struct recpool *pool;
  bool pool_shared;
  size_t n, cap, max;
  size_t unheard; /* entries with heard == false */
  char self[CHOREO_NAME_MAX + 1];
  peers_event_fn on_event; /* may be NULL */
  void *arg;
  /* peers_digest()'s last result, for the self record it was given: the
   * digest is asked for with every message sent and received, and only
   * changes with the view. */
  bool digest_valid;
  uint64_t digest, digest_inc;
  bool digest_left;
  const struct record *digest_self;
  /* Timing (peers_set_timing(), peers_tick()); 0 until given. */
  uint64_t heartbeat, lost_after, reap_after;
  uint64_t next;     /* peers_next_deadline() */
  bool clocked;      /* a time was given: */
  uint64_t clock;    /* the latest one, monotonic ms */
  uint64_t stalls;   /* stalls of this agent noticed (peers_stalled()) */
  uint64_t stall_ms; /* the longest of them */
  /* Memory budget (PEERS_BYTES_MAX_DEFAULT, peers_set_budget()): bytes
   * the entries hold now by peers_entry_bytes(), the most they may hold,
   * and records refused because they would have passed it. */
  size_t bytes, bytes_max;
  uint64_t budget_drops;
  /* Relays (peers_set_covered()): covered, this agent takes the relays'
   * verdicts on leaves rather than timing their silence itself (it is
   * not a relay); the relays heard, one entry per slot; the
   * last time a relay was heard (monotonic ms). rdig: the records digests of
   * the table, without self (peers_records_digest()), the whole one and one per
   * relay slot, kept as the table changes. */
  bool covered;
  struct peer *relays[PEERS_RELAYS_MAX]; /* NULL when free */
  uint8_t self_lost_by; /* the relays whose verdicts name this agent */
  /* Entries some relay holds lost (lost_by not 0): while there are none,
   * a relay's verdicts cost what they list, not a pass over the table. */
  size_t marked;
  /* Entries alive and not left, heard from and only heard of
   * (peers_live()), kept by every change. */
  size_t live_heard, live_unheard;
  uint64_t relay_heard_at;
  uint64_t rdig[PEERS_RELAYS_MAX + 1];
};

/* Results of the merge functions. */
enum peers_result {
  PEERS_STALE = 0,   /* nothing changed (duplicate or older) */
  PEERS_NEW = 1,     /* a node was added */
  PEERS_UPDATED = 2, /* the stored entry changed or was refreshed */
  PEERS_SELF = -1,   /* names this agent: refused */
  PEERS_FULL = -2,   /* the table holds max entries: refused */
  PEERS_NOMEM = -3,
  PEERS_OVER_BUDGET = -4, /* would pass the memory budget: refused */
};

/* Prepare an empty table for node `self` holding at most max peers and
 * PEERS_BYTES_MAX_DEFAULT bytes. */
void peers_init(struct peers *p, const char *self, size_t max,
                peers_event_fn on_event, void *arg);
void peers_free(struct peers *p);

/* Hold the entries' records in `pool`, shared with other tables (the
 * simulator's agents), rather than in a pool of the table's own. Only
 * for an empty table (else nothing changes); the pool must outlive the
 * table, and peers_free() leaves it be (call again after peers_init()). */
void peers_share_pool(struct peers *p, struct recpool *pool);

/* Set the memory budget (bytes, at least one entry's worth). Entries held
 * beyond a lowered budget stay until they are reaped; only what would
 * grow the table is refused. */
void peers_set_budget(struct peers *p, size_t bytes_max);

/* The budget a table of max members gets from peers_set_max(): as much
 * per member as PEERS_BYTES_MAX_DEFAULT gives PEERS_MAX_DEFAULT, and
 * never less than PEERS_BYTES_MAX_DEFAULT. */
#define PEERS_BYTES_PER_MEMBER (PEERS_BYTES_MAX_DEFAULT / PEERS_MAX_DEFAULT)
size_t peers_budget_for(size_t max);

/* Hold at most max members (network.max_members), with the budget
 * peers_budget_for(max). Entries held beyond a lowered max or budget
 * stay until they are reaped; only what would grow the table is
 * refused. */
void peers_set_max(struct peers *p, size_t max);

/* What an entry holding record r costs, in bytes, by the table's
 * estimate: the entry itself, its place in the index, and every data key
 * and value with PEERS_DATA_ENTRY_OVERHEAD each. */
size_t peers_entry_bytes(const struct record *r);

struct peer *peers_find(const struct peers *p, const char *name);

/* The state a peer shows to conditions and to status: "lost" or "left"
 * by status, else its record's state ("" while not heard). */
const char *peer_state(const struct peer *peer);

/* Since when (unix ms) it shows that state: for a lost or left node, when
 * this agent saw it become so; else the since of its record. */
int64_t peer_since(const struct peer *peer);

/* Replay guard: true if a message (inc, seq) from node `from` is newer than
 * every one accepted from it, and records it as accepted. Unknown nodes
 * pass without being recorded: after a merge that created the entry, call
 * it again to record the message. A new entry has accepted nothing yet,
 * (0, 0): senders number their messages from 1. */
bool peers_accept_seq(struct peers *p, const char *from, uint64_t inc,
                      uint64_t seq);

/* Merge a record that came from its own node (hello, state, leave). When
 * out is not NULL it receives the entry (NULL on refusal). */
enum peers_result peers_merge_direct(struct peers *p, const struct record *r,
                                     uint64_t now, int64_t wall,
                                     struct peer **out);

/* Merge an entry of another node's member list. */
enum peers_result peers_merge_member(struct peers *p,
                                     const struct wire_member *m, uint64_t now,
                                     int64_t wall, struct peer **out);

/* The timing the table works with (ms): how often the caller hears from
 * peers and calls the table (heartbeat), when a silent node is lost and
 * when a lost or left one is forgotten. heartbeat 0 turns the detection
 * of stalls off: the caller then promises nothing about how often it
 * calls. Call at start and whenever the configuration changes. */
void peers_set_timing(struct peers *p, uint64_t heartbeat, uint64_t lost_after,
                      uint64_t reap_after);

/* Mark silent nodes lost and forget long-lost and long-left ones.
 * lost_after and reap_after replace those of peers_set_timing(). Returns
 * peers_next_deadline(). */
uint64_t peers_tick(struct peers *p, uint64_t now, int64_t wall,
                    uint64_t lost_after, uint64_t reap_after);

/* The earliest monotonic time at which peers_tick() could change
 * something (UINT64_MAX: never), kept by every merge, tick and grace: a
 * caller that arms its wake-up timer from it after each of them (timers
 * only ever brought earlier, and re-armed from the tick's result) ticks
 * in time for every deadline. It may be earlier than needed (a tick then
 * just finds nothing to do), never later. */
uint64_t peers_next_deadline(const struct peers *p);

/* This agent's loop runs at monotonic time now. With a heartbeat set,
 * call at least once per heartbeat (the agent: from its heartbeat timer);
 * merges and ticks count as calls too. If the agent was stalled since the
 * previous call (peers_stalled()), every alive node gets a fresh
 * lost_after (peers_grace()) before anything else is decided; returns
 * true then. */
bool peers_clock(struct peers *p, uint64_t now);

/* Whether the gap since the previous call shows that this agent itself
 * stalled (stopped, swapped out, a blocked loop): more than
 * max(lost_after - heartbeat, 2 * heartbeat) without a call. From
 * lost_after - heartbeat on, a stall could make a node that kept sending
 * every heartbeat look silent for lost_after; twice the heartbeat keeps
 * an ordinary late timer from counting as a stall. Always false without a
 * heartbeat or before the first call. */
bool peers_stalled(const struct peers *p, uint64_t now);

/* Give every alive node a fresh lost_after from now: what this agent did
 * not hear while it stalled is not the nodes' silence. Lost and left
 * nodes stay as they are. */
void peers_grace(struct peers *p, uint64_t now);

/* A digest of the member view (every entry's name, address, incarnation
 * and left flag, plus self given as rec): two agents with the same view
 * have the same digest. Computed again only when the table or self's
 * incarnation or left flag changed since the last call. */
uint64_t peers_digest(struct peers *p, const struct record *self);

/* Whether a member that sent `digest` over a view of `known` members
 * (itself included, wire "known") has the view this table and self
 * (NULL: the table alone) make. A view of another size is not the same
 * whatever its digest, and is told without hashing: a table that grows
 * with every message (a cluster forming) would otherwise hash all its
 * entries for each one, N times N at every member. */
bool peers_same_view(struct peers *p, const struct record *self,
                     uint64_t digest, uint32_t known);

/* ---- relays (docs/PROTOCOL.md "Relays") ---- */

/* Whether this agent takes relays' verdicts on leaves (it is not a relay
 * itself): a leaf's liveness is then what the relays say, not its
 * silence, which is all a member hears of a quiet leaf. */
void peers_set_covered(struct peers *p, bool covered);

/* What the node's own latest message said of its role: a leaf (its
 * messages come through relays) or a relay. A relay takes a slot (up to
 * PEERS_RELAYS_MAX), and now is the last time a relay was heard. */
void peers_note_roles(struct peers *p, struct peer *peer, bool leaf, bool relay,
                      uint64_t now);

/* Whether every member alive whose versions were heard speaks `minor` or
 * later (a relay passes every heartbeat on while one does not). */
bool peers_all_speak(const struct peers *p, uint32_t minor);

/* This relay has passed the node's record r on to every member. */
void peer_passed(struct peer *peer, const struct record *r);

/* The slot of relay `name`, or -1 when it has none. */
int peers_relay_slot(const struct peers *p, const char *name);
/* The names of the relays held alive (is_relay, status alive) but
 * `except` (NULL: none), into names (PEERS_RELAYS_MAX of them at most);
 * returns how many. What policy_relay_serves() takes as the others. */
size_t peers_relays_alive(const struct peers *p, const struct peer *except,
                          const char **names);

/* A covered table takes the verdicts of relay `relay` (which must hold a
 * slot): each entry names a leaf the relay holds lost at a record not
 * older than the one held here; complete says the list is all the relay
 * holds lost, so leaves not in it are no longer lost by it. A leaf is
 * lost here once every relay alive here holds it lost (a relay cut off
 * from one leaf alone does not make it lost to others); its own next
 * message, which a relay forwards as news, revives it. (inc, seq): the
 * stamp of the relay's message; verdicts of a message not newer than the
 * last taken from that relay are ignored. Returns the number of leaves
 * taken for lost. */
size_t peers_relay_verdicts(struct peers *p, const char *relay, uint64_t inc,
                            uint64_t seq, const struct wire_lost *v, size_t n,
                            bool complete, uint64_t now, int64_t wall);

/* The verdicts this agent (a relay) gives: leaves it holds lost, the most
 * recently lost first, at most max into out; *total, all it holds lost.
 * Returns how many were written. */
size_t peers_verdicts(const struct peers *p, struct wire_lost *out, size_t max,
                      uint32_t *total);

/* The records digest (docs/PROTOCOL.md "Records digest"): the XOR of a
 * hash of (name, inc, ver) over self and every node heard from, alive
 * and not left. slot -1: as this agent holds them (what a relay sends);
 * a relay's slot: leaving out the leaves that relay holds lost, which is
 * what that relay's own digest is compared with; self too, when that
 * relay's verdicts name this agent (it can't hear us: no resync would
 * mend that). Kept as the table changes: asking costs a hash of self. */
uint64_t peers_records_digest(struct peers *p, const struct record *self,
                              int slot);

/* Members alive and not left: heard from (a record came from the node
 * itself), and only heard of (from member lists). Kept as the table
 * changes: what the startup sync asks after every message costs nothing
 * however large the table. */
void peers_live(const struct peers *p, size_t *heard, size_t *unheard);

/* Count peers by status. */
void peers_count(const struct peers *p, size_t *alive, size_t *lost,
                 size_t *left);

const char *peer_event_name(enum peer_event_type t);

/* An operator's `choreo force-leave NAME` (docs/CLI.md): mark the member
 * left in this table now, as if it had left, rather than wait for it to
 * be reaped; the LEFT event follows. Only this table changes: the node's
 * record (and so the member lists and digest sent) stays its own, since
 * only a node may announce its own departure. A record of the node newer
 * than the one held (it restarted, or changed its state) makes it join
 * again. A member that is alive (not lost) is refused unless force.
 * Returns 0; CHOREO_ENOTFOUND (no such member); CHOREO_EINVAL (it has
 * left already); CHOREO_EREFUSED (alive, and not force). */
int peers_force_leave(struct peers *p, const char *name, bool force,
                      uint64_t now, int64_t wall);

/* A node this agent no longer believes (its certificate was revoked,
 * trust.h): mark it lost now, as if it had gone silent; the LOST event
 * follows, and it is reaped like any lost node. Returns 0,
 * CHOREO_ENOTFOUND (no such member) or CHOREO_EINVAL (not alive). */
int peers_force_lost(struct peers *p, const char *name, uint64_t now,
                     int64_t wall);

#endif
