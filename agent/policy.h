/*
 * policy.h — the daemon's decisions as pure functions: no libuv, no
 * nanomsg, no clock and no system call; time is a parameter. The shell
 * (agent*.c) gathers plain values, asks here, and carries the answer out.
 * Each rule is table-tested in tests/unit/test_policy.c.
 *
 *   own state     which claim this node shows (docs/CONFIGURATION.md
 *                 "Own state")
 *   admission     whether a decoded message is read at all
 *                 (docs/PROTOCOL.md, docs/SECURITY.md)
 *   reading behind  whether this agent reads its inbox behind
 *                 (docs/RELIABILITY.md "Starved of CPU")
 *   checks        rise and fall of a health check
 *   relay credit  when a relay's batch may go (docs/ARCHITECTURE.md
 *                 "Relays")
 *   member lists  who sends a member list, what is news to a relay, and
 *                 what to do after a record was merged
 *   own record    the bound on incarnations, claims about this node and
 *                 their refutation, two agents with one name
 *                 (docs/PROTOCOL.md "A node owns its record")
 *   control       who may read or change what on the control socket
 *                 (docs/OPERATIONS.md "Who may change what")
 *   script trust  whether a script file run as a user can be trusted
 *                 (docs/CONFIGURATION.md "run_as")
 */
#ifndef CHOREO_POLICY_H
#define CHOREO_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "choreo.h"
#include "peers.h"
#include "record.h"

/* ---- own state ---- */

/* The claims that compete for the state this node shows. A NULL state
 * means no such claim. */
struct policy_claims {
  const char *declared; /* choreo set, run-in, node.state, state_dir */
  const char *declared_reason;
  const char *check_state; /* the first failing check's state */
  const char *check_name;
  const char *behaviour_state; /* the first claiming behaviour's state */
  const char *behaviour_name;
};

enum policy_own {
  POLICY_OWN_DECLARED,
  POLICY_OWN_CHECK,
  POLICY_OWN_BEHAVIOUR,
  POLICY_OWN_READY,
};

/* The declared state wins unless it is "ready"; then a failing check's
 * state ("check NAME failing"), then a behaviour's ("behaviour NAME"),
 * else "ready" with the declared reason. Writes the state and reason
 * shown and returns which claim won. */
enum policy_own policy_own_state(const struct policy_claims *c,
                                 char state[CHOREO_STATE_MAX + 1],
                                 char reason[CHOREO_REASON_MAX + 1]);

/* ---- admission ---- */

/* A sender of an earlier version sends no nonce and so can't prove
 * freshness: its messages are judged by their sending time instead, as
 * that version did (within this of our clock), so that a cluster keeps
 * working through a rolling upgrade. */
#define POLICY_LEGACY_FRESH_MS 60000
/* An incarnation more than this ahead of our clock is "from the future". */
#define POLICY_FUTURE_SLACK_S 86400
/* A peer whose clock is further than this from ours is warned about, at
 * most once per POLICY_SKEW_WARN_EVERY_MS per peer. Skew is only
 * reported: admission never compares two clocks. */
#define POLICY_SKEW_WARN_MS 60000
#define POLICY_SKEW_WARN_EVERY_MS (10 * 60 * 1000)

enum policy_admit {
  POLICY_ADMIT,
  POLICY_DROP_CLUSTER,
  POLICY_DROP_SELF_NAME,
  POLICY_DROP_STALE, /* not proved fresh yet (docs/SECURITY.md) */
  POLICY_DROP_FUTURE,
  POLICY_DROP_REPLAY,
  POLICY_DROP_RELAY_DUPLICATE,
};

/* What admission needs to know, about the receiver and the message. */
struct policy_admit_in {
  const char *cluster, *name; /* ours */
  bool keyed;                 /* we have a key ring */
  int64_t now_ms;             /* our wall clock */
  const char *msg_cluster, *msg_from;
  /* The sender's clock when it sent: reported (policy_clock_offset),
   * never compared with ours to admit or drop. */
  uint64_t msg_time;
  uint64_t msg_inc;
  /* Freshness, with a key ring: the sender has proved since we started
   * that what it sends is new (a message of it echoed our nonce), or
   * this message echoes our nonce. */
  bool proved, echoes_us;
  /* The message carries the sender's nonce: false only from an earlier
   * version (see POLICY_LEGACY_FRESH_MS). */
  bool msg_nonce;
};

/* Cluster, own name, freshness (with a key ring only), incarnation from
 * the future, in that order. With a key ring, a sender's messages are
 * read only once it has proved freshness: a message that echoes the
 * nonce this agent drew at its start was sent after that start, so a
 * capture replayed to an agent that has just restarted (and forgot the
 * last sequence numbers it accepted) is dropped as stale. After the
 * proof, the sequence number decides (policy_admit_seq): a later (inc,
 * seq) is fresh, an earlier one a replay. No clock is compared, except
 * for a message without a nonce (an earlier version's), which is judged
 * by its time as that version did (POLICY_LEGACY_FRESH_MS). */
enum policy_admit policy_admit(const struct policy_admit_in *in);

/* What a receiver does with the nonce a sealed message carries (before
 * admission: a sender that hasn't proved freshness must still get its
 * proof), given its entry for the sender in the list it echoes. */
enum policy_echo {
  POLICY_ECHO_KEEP,    /* nothing changes */
  POLICY_ECHO_ADVANCE, /* same nonce, a newer message: note its (inc, seq) */
  POLICY_ECHO_ARM,     /* echo this nonce for a few heartbeats from now */
};

struct policy_echo_in {
  bool known;               /* an entry for the sender */
  bool active;              /* and it is still being echoed */
  uint64_t nonce, inc, seq; /* the entry's nonce and the (inc, seq) it
                               was noted with */
  uint64_t msg_nonce, msg_inc, msg_seq;
  bool msg_proving;
};

/* A message without a nonce, or not newer by (inc, seq) than the one the
 * entry's nonce came with, changes nothing: a replayed capture can't
 * displace a peer's current nonce. A new nonce is armed; the same nonce
 * is armed again only when its echo has run out and the sender asks
 * ("proving"). */
enum policy_echo policy_echo_note(const struct policy_echo_in *in);

/* After the peer table said whether (inc, seq) is newer than the last
 * accepted from its sender (fresh): an old one is a replay, or, through
 * a relay or at a relay from a leaf, the expected copy of a message that
 * came two ways. */
enum policy_admit policy_admit_seq(bool fresh, bool via_relay, bool from_leaf,
                                   bool we_relay);

/* How far the sender's clock is from ours: its sending time minus our
 * clock at receipt (ms; the transit time, on a LAN far below a
 * millisecond, counts as skew). 0 when the message carries no time. */
int64_t policy_clock_offset(uint64_t msg_time, int64_t now_ms);

/* Whether to warn about a peer's clock offset: further than
 * POLICY_SKEW_WARN_MS from ours, and no warning about that peer yet
 * (warned false) or none since POLICY_SKEW_WARN_EVERY_MS before now
 * (monotonic ms, as warned_at). */
bool policy_skew_warn(int64_t offset_ms, uint64_t now, bool warned,
                      uint64_t warned_at);

/* ---- reading behind (docs/RELIABILITY.md "Starved of CPU") ---- */

/* How late a sender's messages are read here: struct peer_lag
 * (peers.h), whose base decays POLICY_LAG_DECAY_PER_S ms a second. */
#define POLICY_LAG_DECAY_PER_S 10

/* Note a message sent at msg_time (the sender's unix ms; 0: none) and
 * read at now (monotonic ms): its lag (ms, 0 for the freshest so far or
 * for no time), with l updated. */
uint64_t policy_lag_note(struct peer_lag *l, uint64_t msg_time, uint64_t now);

/* What an agent read over the last heartbeat. */
struct policy_behind_in {
  uint64_t msgs, late; /* messages straight from their senders, and how
                          many of them were read late (policy_lag_late) */
  uint64_t read;       /* messages read from the inbox (a batch is one) */
  uint64_t foreign;    /* of those, ones no key opened or that did not
                          decode (a batch: none of its frames did) */
  bool full;           /* a wake-up read a whole batch (MESH_RECV_BATCH) */
  bool drained;        /* a wake-up read the inbox empty */
};

/* Whether this agent reads its inbox behind, over the last heartbeat:
 * more waited than it took in at some turn of its loop (full; without it,
 * late messages are the network's delay, not a backlog of its own), and
 * either of the msgs that came straight from their senders more than half
 * were read over a heartbeat late, or no turn read the inbox empty
 * (drained false: the backlog never cleared in a whole heartbeat) while
 * most of what it read was the cluster's own. Lateness is measured
 * against each sender's freshest message (policy_lag_note), so it can't
 * see a backlog that was there when a sender was first heard, as every
 * sender of a starting cluster is; the inbox that never empties can. A
 * flood of what no key opens (the network without the key) keeps the
 * inbox full too, but is no backlog of the cluster's: its peers' messages
 * are read late only if they are, and the first rule says so. Its peers'
 * silence is then its own backlog's, and it takes none for lost until it
 * has caught up (peers_grace()). */
bool policy_behind(const struct policy_behind_in *in);
/* Whether a message of lag_ms counts as late, with a heartbeat of
 * heartbeat_ms. */
bool policy_lag_late(uint64_t lag_ms, uint64_t heartbeat_ms);

/* ---- checks ---- */

/* Consecutive results of a check, and whether it is failing. */
struct policy_check {
  unsigned fails, passes;
  bool failing;
};

enum policy_check_change {
  POLICY_CHECK_SAME,
  POLICY_CHECK_FAILS,  /* fall failures in a row: now failing */
  POLICY_CHECK_PASSES, /* rise passes in a row: passing again */
};

/* Count one result (ok: passed) into *s; says whether it flipped. */
enum policy_check_change policy_check_result(struct policy_check *s, bool ok,
                                             unsigned rise, unsigned fall);

/* ---- relay credit ---- */

/* Repeats wait at most a quarter of a heartbeat, within these bounds. */
#define POLICY_RELAY_HOLD_MIN_MS 10
#define POLICY_RELAY_HOLD_MAX_MS 250
/* Batches sent at once for changes before the credit runs out, and
 * members per millisecond of the interval at which it comes back (200
 * members: one batch per 50 ms, fewer than 4: no limit). */
#define POLICY_RELAY_BURST 8
#define POLICY_RELAY_MEMBERS_PER_MS 4

/* How long a batch of repeated heartbeats waits. */
uint64_t policy_relay_hold_ms(uint64_t heartbeat_ms);
/* The credit comes back at one batch per this many ms: one per
 * POLICY_RELAY_MEMBERS_PER_MS members (npeers), since each batch is a
 * delivery to every one, but never slower than the batch of repeats
 * goes (policy_relay_hold_ms): a change does not wait longer than a
 * repeat, and a relay that passes repeats on sends that batch to every
 * member at that pace anyway (10,000 members: 2.5 s, capped to 250 ms
 * with a 1 s heartbeat). */
uint64_t policy_relay_interval_ms(size_t npeers, uint64_t heartbeat_ms);
/* When a batch sent for a change may go: now while there is credit. The
 * credit is kept as the time at which it would be all spent (credit_at,
 * a "theoretical arrival time"): each batch for a change pushes it one
 * interval (policy_relay_interval_ms) later, and it may run ahead of now
 * by POLICY_RELAY_BURST - 1 intervals. */
uint64_t policy_relay_change_time(uint64_t credit_at, uint64_t now,
                                  uint64_t interval_ms);
/* credit_at after a batch for a change went at now; never beyond the
 * credit all spent (a full batch goes without credit, and owes none). */
uint64_t policy_relay_spend(uint64_t credit_at, uint64_t now,
                            uint64_t interval_ms);
/* Whether a relay forwards a record message: what a leaf sent it directly
 * (not through another relay), except its hello; and what came through
 * another relay when it is news to this one (its own copy from the leaf
 * was lost, or comes later): its members would otherwise have the change
 * from the other relays alone. A relay passes each record on once
 * (peer_passed), so the copies stop there. */
bool policy_relay_forwards(bool we_relay, bool via_relay, bool from_leaf,
                           bool hello, bool news);

/* ---- shares (docs/PROTOCOL.md "Shares") ---- */

/* With more relays alive than this, each relay forwards to a share of the
 * members only: a leaf is in the shares of the POLICY_RELAY_SHARE_K
 * relays that rank highest for it (rendezvous hashing), so a change
 * costs each relay K/R of the copies and still reaches every leaf twice.
 * With this many relays or fewer, each forwards to every member. */
#define POLICY_RELAY_SHARE_K 2

/* relay's rank for member: a hash of both names, the same on every node. */
uint64_t policy_share_rank(const char *relay, const char *member);
/* Whether relay self forwards to member: true for a member that is not a
 * leaf (relays and mesh members are in every share), and while the
 * relays alive (self and the nothers others) are POLICY_RELAY_SHARE_K or
 * fewer; otherwise whether self is among the POLICY_RELAY_SHARE_K of
 * highest rank for it. A relay that holds fewer relays alive than there
 * are serves a superset of its share: while relays disagree, members get
 * more copies, not fewer, except from a relay that is gone. */
bool policy_relay_serves(const char *self, const char *const *others,
                         size_t nothers, const char *member, bool leaf);

/* ---- quiet relays (docs/PROTOCOL.md "Relays") ---- */

/* After a leaf's record changed, its next heartbeats are passed on for
 * this many heartbeats: a change whose own message was lost on the way
 * to a member still reaches it. */
#define POLICY_RELAY_REPEAT_HB 2

/* How a relay passes on a leaf's state or leave message. */
enum policy_relay_pass {
  POLICY_PASS_NONE, /* not at all: members hold it already */
  POLICY_PASS_HOLD, /* in the batch of repeats (policy_relay_hold_ms()) */
  POLICY_PASS_NEWS, /* in the batch of changes, at once with credit */
};

struct policy_pass_in {
  bool forwards;       /* policy_relay_forwards() */
  bool news;           /* policy_is_news() */
  bool unpassed;       /* this relay has not passed this version on yet
                          (a leaf's first record came in its hello) */
  bool leave;          /* a leave message */
  bool control;        /* it carries what members act on: echoes, a
                          proving flag, want_cert, revocations */
  bool cert_wanted;    /* it carries a certificate a member asked for */
  bool changed_lately; /* the sender's record changed within
                          POLICY_RELAY_REPEAT_HB heartbeats */
  bool catch_up;       /* a catch-up window is open */
  bool all_quiet;      /* every member speaks minor 2 (WIRE_PROTO_QUIET) */
  bool behind;         /* the relay reads its inbox behind (policy_behind) */
};

/* News goes at once, and so does a version this relay has not passed
 * on yet; a repeat only while a member may lack it (after a
 * change, in a catch-up window, or while an agent of an earlier minor,
 * which times leaves by their silence, needs every heartbeat); else not
 * at all, which keeps what a member receives at steady state independent
 * of the cluster's size. A relay that reads behind keeps the first two
 * kinds of repeats back, each a copy per member of its share: it sheds
 * them until it has caught up, and what a member lacks meanwhile it asks
 * for then (a resync; its records digest is not sent while it reads
 * behind). */
enum policy_relay_pass policy_relay_pass(const struct policy_pass_in *in);

/* What policy_relay_pass reads of the relay itself. */
struct policy_relay_mode {
  bool catch_up;  /* a catch-up window is open */
  bool all_quiet; /* every member speaks minor 2 */
  bool behind;    /* it reads its inbox behind */
};

/* policy_relay_pass for a leaf's message m that the relay forwards
 * (policy_relay_forwards), from the relay's entry of its sender and its
 * own mode: whether m is news (policy_is_news, before the merge) and the
 * certificate it carries was asked for. */
enum policy_relay_pass
policy_relay_pass_msg(const struct wire_msg *m, const struct peer *peer,
                      bool news, bool cert_wanted,
                      const struct policy_relay_mode *mode, uint64_t now,
                      uint64_t heartbeat_ms);

/* ---- hellos ---- */

/* Until someone answers, a joiner says hello to its join addresses (or
 * relays) every POLICY_HELLO_FIRST_MS for the first
 * POLICY_HELLO_FAST_TRIES (the first ones are lost while the connections
 * come up, and more so on a loaded machine), then with a gap doubling up
 * to one heartbeat. */
#define POLICY_HELLO_FIRST_MS 20
#define POLICY_HELLO_FAST_TRIES 25

/* The gap (ms) before the next hello, after `tries` were sent; 0: no
 * more from the hello timer, the heartbeat says hello from now on.
 * delivered: the hello just sent went out while every connection of the
 * joiner was up, so it reached every address: whoever is there is slow
 * to answer, not missing it, and fast retries would only add to what
 * slows it (5,000 leaves retrying every 20 ms kept two simulated relays
 * from ever catching up). */
uint64_t policy_hello_gap(unsigned tries, bool delivered,
                          uint64_t heartbeat_ms);

/* How long a catch-up window stays open: long enough for every leaf's
 * next heartbeat to pass (one and a half heartbeats). */
uint64_t policy_relay_window_ms(uint64_t heartbeat_ms);

/* Catch-ups (docs/PROTOCOL.md "Relays"): a member that may lack records
 * (a joiner, a leaf new, restarted or back, a member asking for a
 * resync) gets every leaf's heartbeat for policy_relay_window_ms(). A
 * relay sends them to that member alone, over a connection of its own to
 * its inbox, for up to POLICY_RELAY_TARGETS_MAX members at once; what one
 * member needs then costs the others nothing. */
#define POLICY_RELAY_TARGETS_MAX 32
enum policy_catch_up {
  POLICY_CATCH_UP_COVERED, /* nothing to open: every heartbeat reaches
                              every member already (a window for everyone
                              is open, or an earlier minor is alive) */
  POLICY_CATCH_UP_ALONE,   /* the member alone (open or extend its own) */
  POLICY_CATCH_UP_ALL,     /* a window for everyone */
  POLICY_CATCH_UP_LATER,   /* none now: this relay reads its inbox behind
                              (what asked is stale, a hello it read a
                              minute late); one window serves what was put
                              off once it has caught up (relay_resume) */
};
struct policy_catch_up_in {
  bool window_open; /* a window for everyone is open */
  bool all_quiet;   /* every member speaks minor 2 (WIRE_PROTO_QUIET) */
  bool has_own;     /* the member has a catch-up of its own already */
  size_t own_free;  /* catch-ups of its own the relay may still open */
  bool reachable;   /* its address is known and valid */
  bool behind;      /* this relay reads its inbox behind (policy_behind) */
};
/* A member alone while it has one or one is free and its address is
 * known; everyone when none is (a burst of joiners, as when a whole
 * cluster starts: one window serves them all); nothing when every
 * heartbeat is passed on anyway; nothing yet while the relay reads its
 * inbox behind (two relays starved on a machine of 500 agents read the
 * hellos of a minute before, opened a window for everyone a second for
 * them, and never caught up). */
enum policy_catch_up policy_relay_catch_up(const struct policy_catch_up_in *in);

/* Records digests (docs/PROTOCOL.md "Records digest"): a member compares
 * its own with each relay's, and asks for a resync when they differ. */
#define POLICY_RESYNC_MISSES 2
#define POLICY_RESYNC_BACKOFF_MAX_HB 64
struct policy_resync {
  unsigned misses;     /* mismatches in a row */
  uint64_t pair;       /* the two digests at the last request, hashed */
  uint64_t last_at;    /* the last request (monotonic ms); 0: none */
  uint64_t backoff_ms; /* the gap after the last request; 0: none yet */
  /* both digests at the relay's previous message; noted: they are set */
  uint64_t ours_prev, theirs_prev;
  bool noted;
};

/* One relay's records digest (theirs) was compared with ours at now:
 * whether to ask for a resync. After POLICY_RESYNC_MISSES mismatches in
 * a row (a change in flight differs for a moment). Then:
 * - two other digests than at the last request, both as they were at
 *   the relay's previous message (nothing is in flight either way, and
 *   we still differ: a message lost): two heartbeats after the last
 *   request, and the back-off starts over;
 * - the same two digests (a difference the resync did not mend: a node
 *   one side hears only through the other's window), or one of them
 *   changed since the relay's previous message (records still on their
 *   way: a cluster forming, where a catch-up every two heartbeats for
 *   every member kept relays that share a machine with hundreds of
 *   leaves minutes behind): not before a back-off that doubles from two
 *   heartbeats up to POLICY_RESYNC_BACKOFF_MAX_HB, whether they matched
 *   in between or not, starting over only after four back-offs without
 *   a request.
 * A difference that keeps coming back, or that comes with records that
 * keep arriving, costs one catch-up per 64 heartbeats; one that stays
 * once nothing arrives, one two heartbeats after the last. */
bool policy_resync_note(struct policy_resync *s, uint64_t ours, uint64_t theirs,
                        uint64_t now, uint64_t heartbeat_ms);
/* The relay's message carried no digest (it reads its inbox behind, or
 * speaks an earlier minor): what was asked of it and the back-off are
 * forgotten, and its next digest is compared as if it were the first. */
void policy_resync_forget(struct policy_resync *s);

/* ---- member lists ---- */

/* Views differ: whether we send our member list rather than the sender
 * (who knows their_known members, counting itself): the side that knows
 * more; on a tie, the one whose name sorts first. npeers: our table's
 * entries, not counting us. */
bool policy_lists_ours(size_t npeers, const char *name, uint32_t their_known,
                       const char *their_name);

/* Whether a record tells this agent something, given the entry it has
 * for its node (NULL: none): a node it didn't know or hadn't heard, one
 * it thought lost or gone, or a newer version. */
bool policy_is_news(const struct peer *peer, const struct record *r);

/* What happened when a state, hello or leave record was merged. */
struct policy_record_in {
  bool hello;       /* the message was a hello */
  bool from_leaf;   /* its sender is a leaf */
  bool from_relay;  /* its sender is a relay */
  bool via_relay;   /* it came in a relay's batch */
  bool we_relay;    /* network.relay */
  bool we_leaf;     /* network.relays */
  bool new_peer;    /* its sender is new to the table, or heard first */
  bool same_view;   /* its digest equals ours */
  uint64_t now;     /* monotonic ms */
  uint64_t list_at; /* when we last sent our member list */
  uint64_t heartbeat_ms;
  size_t npeers; /* for policy_lists_ours */
  const char *name;
  uint32_t their_known;
  const char *their_name;
  /* A random number (uniform over 32 bits), drawn for this call: the
   * lottery that picks the few leaves that offer their lists. */
  uint32_t lottery;
};

/* A leaf's list reaches its relays only, which hear every leaf anyway:
 * what it adds (members a relay can't hear, who left while it was away)
 * needs a few leaves, not all. With digests differing, a leaf offers its
 * list with a chance of POLICY_LEAF_LIST_OFFERS in its number of members
 * (about that many leaves in all per round). At 5,000 simulated leaves,
 * every leaf offering its list to relays that were behind kept them
 * behind. */
#define POLICY_LEAF_LIST_OFFERS 4

/* What the shell does next; flags, POLICY_NOTHING when none. */
enum policy_after {
  POLICY_NOTHING = 0,
  POLICY_ANSWER_LIST = 1 << 0,  /* answer a hello with our member list */
  POLICY_PUBLISH_SOON = 1 << 1, /* republish our state shortly */
  POLICY_OFFER_LIST = 1 << 2,   /* offer our list after a random delay */
};

/* A hello gets our member list (unless a relay hears a leaf's) and our
 * state soon. A leaf compares views with its relays only, not with every
 * member whose heartbeat they pass on. A node we hear first gets our
 * state again soon (what we sent before its inbox was connected was
 * dropped). Otherwise, when views differ and our last list is older than
 * half a heartbeat, the side policy_lists_ours picks offers its list; a
 * relay offers it to mesh members only: leaves take records from it,
 * and every relay hears every leaf. */
unsigned policy_after_record(const struct policy_record_in *in);
/* Whether in->same_view can change what policy_after_record decides:
 * when it can't, the shell need not compare views (a pass over the
 * table whenever it changed, which a leaf of a forming cluster of 10,000
 * would otherwise make for most of the frames its relays pass on). */
bool policy_view_matters(const struct policy_record_in *in);

/* ---- own record ---- */

/* Whether an incarnation is within bounds at our clock now_ms: at most
 * POLICY_FUTURE_SLACK_S seconds ahead of it. The one rule for envelopes
 * (policy_admit), member entries, claims about this node and this node's
 * own incarnation at start. */
bool policy_inc_in_bounds(uint64_t inc, int64_t now_ms);

/* The incarnation to start with: one more than the saved one (loaded:
 * state_dir had one), never behind the clock; but a saved one that is out
 * of bounds (policy_inc_in_bounds: a corrupted or forged file, or a clock
 * set back) is not followed, since every peer would drop it: then the
 * clock's. Peers that hold a higher one make the node refute
 * (policy_claim), so it need not be exact. */
uint64_t policy_start_inc(uint64_t saved, bool loaded, int64_t now_ms);

/* A claim about this node that it did not necessarily make: a record
 * under its name (hello, state, leave from "us"), or the entry for it in
 * someone's member list. */
struct policy_claim_in {
  const struct record *own; /* our record as published */
  bool direct;              /* a record; false: a member entry */
  uint64_t inc, ver;
  const char *addr;
  bool left;
  const char *state, *reason; /* direct only */
  int64_t now_ms;             /* our clock, for the bound */
};

enum policy_claim {
  POLICY_CLAIM_IGNORE, /* older than our record, or what we published */
  POLICY_CLAIM_BOUNDS, /* incarnation out of bounds: dropped, counted */
  POLICY_CLAIM_REFUTE, /* as new as ours or newer, and not ours: refute */
};

/* A claim as new as our record or newer that isn't exactly ours (another
 * address, left, another state or reason, or a greater stamp) is refuted
 * with a greater incarnation (policy_refute_inc): whoever holds it takes
 * ours over it. An older one is ignored: ours replaces it wherever it is
 * held. */
enum policy_claim policy_claim(const struct policy_claim_in *in);

/* The incarnation that outbids a claim: one more than the greater of ours
 * and the claimed one; saturates at RECORD_COUNTER_MAX. */
uint64_t policy_refute_inc(uint64_t own, uint64_t claimed);

/* Whether a message from a peer shows that it is behind what we hold for
 * it: a lower incarnation than the last message we accepted from it
 * (msg_inc), or a record older than the one we hold (r; NULL for a
 * member list). Then we send our member list, whose entry for it makes
 * it refute (a node restarted with a lost state file, or whose record a
 * forged message holds). */
bool policy_sender_behind(const struct peer *peer, uint64_t msg_inc,
                          const struct record *r);

/* ---- two agents with one name ---- */

/* A node is a newcomer for this many heartbeats after its start: a
 * conflict it detects meanwhile stops it, not the agent that was there. */
#define POLICY_NEWCOMER_HEARTBEATS 10

/* Another address that claims this node's name (policy_rival_claim). An
 * episode ends when the address hasn't claimed it for a lost_after. */
struct policy_rival {
  char addr[CHOREO_ADDR_MAX + 1]; /* "" when none */
  uint64_t first, last;           /* monotonic ms of its first and last claim */
  uint64_t inc;                   /* the greatest incarnation it claimed */
  uint64_t refuted_at;            /* when we last refuted it */
  unsigned raises;                /* times it outbid us */
  bool confirmed;                 /* a live agent, not a one-off claim */
  int64_t since_wall;             /* unix ms of the first claim, for status */
};

enum policy_rival_act {
  POLICY_RIVAL_NONE = 0,
  POLICY_RIVAL_REFUTE = 1 << 0,   /* refute the claim */
  POLICY_RIVAL_NEW = 1 << 1,      /* a first claim from this address: warn */
  POLICY_RIVAL_CONFLICT = 1 << 2, /* now a confirmed conflict: error, count */
  POLICY_RIVAL_STOP = 1 << 3,     /* we are the newcomer: stop */
};

/* What the rival-tracking knows about us. */
struct policy_rival_in {
  const char *addr; /* the claim's address (not ours) */
  uint64_t inc;     /* the claim's incarnation */
  uint64_t now;     /* monotonic ms */
  uint64_t uptime;  /* ms since this agent started */
  uint64_t heartbeat_ms, lost_after_ms;
};

/* A claim from another address, as new as ours (policy_claim said
 * refute). The first from an address is refuted (it may be a one-off
 * claim: a forged message, a stale list). An address that outbids our
 * refutation again (a greater incarnation than it claimed before) is a
 * live agent with our name: a conflict. Then the newcomer, an agent that
 * started less than POLICY_NEWCOMER_HEARTBEATS ago, stops; the one that
 * was there keeps running, reports the conflict and refutes at most once
 * a heartbeat (two long-running agents with one name would otherwise
 * raise their incarnations as fast as messages go). Updates *r. */
unsigned policy_rival_claim(struct policy_rival *r,
                            const struct policy_rival_in *in);

/* Status shows a rival for this long after its last claim. */
#define POLICY_RIVAL_SHOWN_MS (10 * 60 * 1000)

/* Forget a rival not heard for keep_ms; true if one was. */
bool policy_rival_expire(struct policy_rival *r, uint64_t now,
                         uint64_t keep_ms);

/* ---- startup sync (policy_sync) ----
 * When a starting agent may trust its view and evaluate conditions
 * (docs/RELIABILITY.md "Restarts"). Counts are of members other than
 * this node, alive and not left. */
struct policy_sync_in {
  uint64_t now, started_at; /* monotonic ms */
  uint64_t window;          /* the startup window: 1.5 heartbeats */
  uint64_t lost_after;
  uint64_t max_wait;     /* sync.max_wait; 0: none */
  bool got_members;      /* a member list or a member answered */
  bool view_agreed;      /* a member's digest has equalled ours */
  size_t unheard;        /* entries only heard of, not heard from yet */
  size_t heard;          /* members heard */
  size_t min_members;    /* sync.min_members; 0: none */
  size_t groups_missing; /* groups of sync.groups with no member heard */
};

enum policy_sync {
  POLICY_SYNC_WAIT,    /* not yet: check again by *recheck or on news */
  POLICY_SYNC_DONE,    /* the view can be trusted */
  POLICY_SYNC_GAVE_UP, /* sync.max_wait passed with something missing */
};

/* The view can be trusted when the operator's sync.min_members and
 * sync.groups are met and either the views agree with every member heard
 * of heard from, or the startup window passed and every member heard of
 * (from a member list, or members.json after a restart) has been heard
 * or is gone from the table (peers.c forgets an entry not heard for
 * lost_after). lost_after past the window bounds that wait even if an
 * entry lingers. sync.max_wait, when set, bounds the
 * whole wait (GAVE_UP: the caller says what is missing). On WAIT,
 * *recheck is the next time at which the answer can change without news
 * (UINT64_MAX: none). */
enum policy_sync policy_sync(const struct policy_sync_in *in,
                             uint64_t *recheck);

/* ---- control socket authority ---- */

/* What a client of the control socket may do, from its credentials
 * (SO_PEERCRED): root and the agent's own effective user change state,
 * members of control.read_group only read, anyone else is refused. */
enum policy_access {
  POLICY_ACCESS_CHANGE, /* may send every command */
  POLICY_ACCESS_READ,   /* may send reading commands only */
  POLICY_ACCESS_NONE,   /* refused at connection */
};

enum policy_access policy_control_access(uint32_t peer_uid, uint32_t agent_euid,
                                         bool reader);

/* Whether a control command only reads: status, peers, watch, metrics,
 * version. Every other name, known or not (set, leave, reload,
 * force-leave, revoke, …), is taken to change something. */
bool policy_control_reads(const char *cmd);

enum policy_verdict {
  POLICY_ALLOW,     /* carry the command out */
  POLICY_READ_ONLY, /* a reader asked for a change: refused */
  POLICY_REFUSE,    /* not allowed at all */
};

/* The verdict on command cmd from a client with the given access. */
enum policy_verdict policy_control_allow(enum policy_access access,
                                         const char *cmd);

/* ---- script trust ---- */

/* Why a script file (or its directory) run as run_uid can't be trusted:
 * someone other than root and that user could change it. */
enum policy_script {
  POLICY_SCRIPT_OK,
  POLICY_SCRIPT_OWNER,       /* owned by another user */
  POLICY_SCRIPT_GROUP_WRITE, /* group-writable */
  POLICY_SCRIPT_OTHER_WRITE, /* writable by anyone */
};

/* The decision over a stat() of the file (is_dir false) or of a
 * directory above it (is_dir true): its owner must be root or
 * run_uid, and neither group nor others may write it. A directory owned
 * by root with the sticky bit (like /tmp) may be writable by all: no one
 * else can then remove or rename a file in it they don't own. */
enum policy_script policy_script_trust(uint32_t st_uid, uint32_t st_mode,
                                       uint32_t run_uid, bool is_dir);

#endif
