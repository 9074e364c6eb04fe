/*
 * agent.h — the daemon. A slim struct agent wires the shared modules
 * (loop, configuration, metrics, peer table, engine, runner, key ring)
 * and the parts of the daemon, each of which owns its data, its timers
 * and its lifecycle:
 *
 *   agent.c          the wiring: start, signals, reload, leave, stop; the
 *                    wake-up timer (peers_tick and the engine's deadlines)
 *   agent_net.c      struct net: the protocol, membership, endpoints,
 *                    startup sync
 *   agent_self.c     struct self: this node's record and declared state
 *   agent_jobs.c     struct jobs: engine actions and checks carried out
 *                    by the runner
 *   checks.c         struct checks: health checks and their rise and fall
 *   agent_relay.c    struct relay: forwarding leaves' messages in batches
 *   agent_control.c  struct ctl: the control socket and its requests
 *   notify.c         struct notify: READY, STATUS and the watchdog for
 *                    systemd (notify.h)
 *   http.c           struct http: the HTTP endpoint (metrics, status,
 *                    events, the fleet page), fed by agent.c's hooks
 *
 * Calls go one way (agent.c wires everything; a part never reaches into
 * another's fields, only calls its functions):
 *
 *   agent.c: wires every part (hooks carry what flows back up)
 *     │
 *     ├─▶ ctl ─────────────┬─────▶ net ──▶ relay
 *     │                    │        │
 *     │                    ▼        │
 *     ├─▶ jobs ─────────▶ self ◀────┘
 *     │                    │
 *     │                    ▼
 *     └──────────────────▶ checks
 *
 * and the other way only through hooks (function pointers) that agent.c
 * sets at start: net.changed (a message was handled: step the engine),
 * net.wake_at and jobs.wake_at (arm the wake-up), self.publish (the
 * record has a new version), checks.run (start a check), checks.changed
 * (a result was counted), jobs.check_done (a check's run ended),
 * relay.send, ctl.leave. The decisions themselves are in policy.c, pure.
 */
#ifndef CHOREO_AGENT_H
#define CHOREO_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "batch.h"
#include "config.h"
#include "control.h"
#include "engine.h"
#include "http.h"
#include "mesh.h"
#include "notify.h"
#include "metrics.h"
#include "peers.h"
#include "policy.h"
#include "record.h"
#include "runner.h"
#include "seal.h"
#include "trust.h"
#include "seen.h"
#include "state.h"
#include "statefiles.h"
#include "util.h"

/* Scripts running at once; more wait in the runner's queue. */
#define AGENT_MAX_RUNNING 32
/* Times a leave is published, AGENT_LEAVE_GAP_MS apart: PUB may drop. */
#define AGENT_LEAVE_REPEAT 3
#define AGENT_LEAVE_GAP_MS 30
/* Descriptors besides the two per member: sockets, pipes of scripts,
 * control clients, log, nanomsg's own. */
#define AGENT_FD_RESERVE 64

struct agent;

/* ---- self (agent_self.c) ----
 * Owns this node's record as published, and the declared state (set by
 * choreo set or run-in, node.state, persisted in state_dir) with its
 * reason and since. Which claim is shown is policy_own_state's. */
struct self {
  struct record rec; /* as published */
  char declared[CHOREO_STATE_MAX + 1];
  char declared_reason[CHOREO_REASON_MAX + 1];
  int64_t declared_since;
  struct state_report unsaved; /* "cannot save the state", rate-limited */
  /* `set --for`: when the declared state expires (unix ms; 0: never), the
   * state and reason it returns to, and the timer that does it. */
  int64_t until_ms;
  char then[CHOREO_STATE_MAX + 1];
  char then_reason[CHOREO_REASON_MAX + 1];
  uv_timer_t expiry;
  /* Hook: the record got a new version (state, reason, groups or data). */
  void (*publish)(struct self *s);
};

/* Read state_dir, set up the record and persist it with the new
 * incarnation; a state_dir that can't be written is said loudly and the
 * agent goes on from what it read. Returns 0 or a CHOREO_E* code. */
int self_init(struct self *s);
/* Recompute the state this node shows; publish if it changed. */
void self_refresh(struct self *s);
/* Apply a `set`: validate, check that state_dir can take it (state_room()),
 * publish, then save it durably. Returns 0; or
 * CHOREO_EINVAL with *why set and nothing changed; or a negated errno with
 * *why set when it could not be saved: nothing changed then either (a
 * failure after publishing publishes the previous state again). */
int self_set(struct self *s, const char *state, const char *reason,
             json_t *data, const char **why);
/* self_set() for for_ms (0: for good). With for_ms, the declared state
 * returns to the one declared before (the one before the first of
 * several --for in a row) at now + for_ms, unless set again; the expiry
 * is saved in state_dir and kept across restarts. */
int self_set_for(struct self *s, const char *state, const char *reason,
                 json_t *data, uint64_t for_ms, const char **why);
/* The expiry of the declared state: 0 when none, else unix ms and the
 * state it returns to. */
int64_t self_expiry(const struct self *s, const char **then);
/* Close the expiry timer; idempotent. */
void self_stop(struct self *s);
/* Outbid a claim about this node that it didn't make: take an
 * incarnation above both ours and claimed (policy_refute_inc), save it,
 * publish. */
void self_refute(struct self *s, uint64_t claimed);
/* Mark the record left (a new version); false if it was already. */
bool self_leave(struct self *s);
const struct record *self_record(const struct self *s);
/* The declared state and its reason, which the shown one may differ from
 * while a check or behaviour claims one. */
void self_declared(const struct self *s, const char **state,
                   const char **reason);
void self_free(struct self *s);

/* ---- checks (checks.c) ----
 * Owns the check set of the running configuration: one timer per check
 * and its consecutive results (policy_check). Replaced whole on reload;
 * a set's memory goes with the close callback of its last timer. */
struct checks;

struct check_state {
  struct check_set *set;
  uv_timer_t timer;
  struct policy_check count; /* consecutive results, failing */
  bool running;
};

struct check_set {
  struct checks *owner;
  size_t n, closing;
  struct check_state v[];
};

struct checks {
  struct check_set *set; /* NULL when stopped */
  /* Hooks: start check c (0, or nonzero: it failed at once); a check's
   * result was counted (the shown state may change). */
  int (*run)(struct checks *c, const struct config_check *check);
  void (*changed)(struct checks *c);
};

/* Start a timer per check of the configuration. */
int checks_start(struct checks *c);
/* Close the timers; idempotent. */
void checks_stop(struct checks *c);
/* The first failing check, in file order. */
bool checks_failing(const struct checks *c, size_t *index);
/* A run of check `name` ended; ok: it passed. */
void checks_result(struct checks *c, const char *name, bool ok);

/* ---- jobs (agent_jobs.c) ----
 * Owns the jobs handed to the runner (behaviour actions and check runs),
 * so that their end can be routed back by name, and the tag counter. */
struct job {
  uint64_t tag;
  bool is_check;
  enum engine_action_type type;   /* of a behaviour's action */
  char name[CHOREO_NAME_MAX + 1]; /* behaviour or check name */
  uint64_t rx_ns;                 /* receipt of the message that caused it */
  uint64_t started_ns;            /* its first attempt started; 0: not yet */
  struct job *next;
};

struct jobs {
  struct job *list;
  uint64_t next_tag;
  uint64_t rx_ns; /* receipt of the message being handled; 0: none */
  bool stopped;
  /* Level behaviours' last actions that ended, as saved in applied.json
   * (docs/BEHAVIOURS.md "Restarts"), and "cannot save" rate-limited. The
   * file is replaced at each end, on the loop, without fsyncs; the
   * engine hears of the end at once (applied.log covers a crash). */
  struct applied_set applied;
  struct state_report unsaved;
  struct job *ending_next; /* ends written by the next save */
  /* applied.log: one line appended before each level action starts (the
   * intent), so that an action whose end was never saved is known to be
   * unsettled after a crash. Opened once; log_open false when it could
   * not be (actions run anyway, "cannot log" rate-limited). */
  bool log_open, log_dirty; /* log_dirty: found unreadable, to empty */
  int log_fd;
  int log_err;         /* why it is not open */
  uint64_t log_bytes;  /* its size as far as we know */
  uint64_t intent_seq; /* the SEQ of the last line written or read */
  struct state_report unlogged;
  /* Hooks: a check's run ended (ok: it passed); arm the wake-up for the
   * engine's next deadline, monotonic ms (UINT64_MAX: none). */
  void (*check_done)(struct jobs *j, const char *name, bool ok);
  void (*wake_at)(struct jobs *j, uint64_t when);
  /* Hook: a behaviour's action ended (counted in the metrics already);
   * secs: from its start, retries included. */
  void (*behaviour_done)(struct jobs *j, const struct job *job,
                         enum runner_result res, double secs);
};

/* Read applied.json and tell the engine what a previous run applied;
 * before the startup sync. A missing file: nothing applied; a corrupt
 * one: said, and every level behaviour brought to its truth once synced. */
void jobs_restore(struct jobs *j);
/* Ask the engine for due actions and start them, arm the wake-up, and
 * refresh the shown state. rx_ns: the receipt time of the message that
 * caused the step (0: none). */
void jobs_step(struct jobs *j, uint64_t rx_ns);
/* Start one run of a check. */
int jobs_run_check(struct jobs *j, const struct config_check *c);
/* Runner callbacks; arg is the struct jobs. */
void jobs_started(void *arg, uint64_t tag, unsigned attempt);
void jobs_done(void *arg, uint64_t tag, enum runner_result res, int status);
/* No more steps: the runner's last callbacks are only counted. */
void jobs_stop(struct jobs *j);
void jobs_free(struct jobs *j);

/* ---- relay (agent_relay.c) ----
 * Owns the relay role's two queues (repeats and changes) with their
 * timers, the credit of batches sent for changes, and the table of
 * messages seen through relays. */
struct relay;

/* Messages a relay will forward in one batch, and when it goes. */
struct relay_queue {
  struct batch batch;
  uv_timer_t timer;
  uint64_t due;
  struct relay *relay;
};

/* Certificates asked for that a relay remembers passing on. */
#define RELAY_WANTED_MAX 32
/* A catch-up batch whose connection is not up yet is tried again after
 * this many ms. */
#define RELAY_TARGET_RETRY_MS 10

/* A catch-up sent to one member alone (policy_relay_catch_up): a PUB
 * socket of its own connected to the member's inbox. Every leaf message
 * the relay takes in until `until` goes to it, in batches that wait like
 * the repeats; the socket is closed a heartbeat later, once what was sent
 * has had time to arrive. */
struct relay_target {
  bool used;
  char name[CHOREO_NAME_MAX + 1];
  int sock;          /* mesh_solo_open() */
  uint64_t until;    /* monotonic ms: messages are added until then */
  uint64_t close_at; /* monotonic ms: the socket is closed then */
  uint64_t due;      /* monotonic ms: its batch goes then */
  struct batch batch;
};

struct relay {
  /* Leaves' repeated heartbeats and their changes waiting to be forwarded
   * (no buffers unless a relay), and the credit (policy_relay_spend). */
  struct relay_queue hold, news;
  uint64_t credit_at;
  /* Messages received through relays (and a leaf's own, which relays
   * pass back), to skip copies before decoding them; allocated when
   * first needed (32 KiB an agent of a plain mesh doesn't pay). */
  struct seen *seen;
  /* Quiet relaying (docs/PROTOCOL.md "Relays"): until when a catch-up
   * window passes every heartbeat on (monotonic ms); whether every member
   * speaks minor 2 (else every heartbeat is passed on, for the members
   * that time leaves by their silence; from each heartbeat); the members
   * whose certificate was asked for lately, and until when. */
  uint64_t window_until;
  bool all_quiet;
  /* A catch-up was put off (POLICY_CATCH_UP_LATER) while this relay
   * read behind: one window opens once it has caught up. */
  bool deferred;
  struct {
    char name[CHOREO_NAME_MAX + 1];
    uint64_t until;
  } wanted[RELAY_WANTED_MAX];
  /* Catch-ups sent to one member alone, and the timer of their batches
   * and closings. */
  struct relay_target targets[POLICY_RELAY_TARGETS_MAX];
  uv_timer_t targets_timer;
  /* Shares (docs/PROTOCOL.md "Shares"), as relay_share_sync() last found
   * them: the other relays alive; split: more than POLICY_RELAY_SHARE_K
   * relays alive, since split_at (monotonic ms); share_sig: a digest of
   * that set; share_n: members connected in the share. */
  char others[PEERS_RELAYS_MAX][CHOREO_NAME_MAX + 1];
  size_t nothers, share_n;
  bool split;
  uint64_t split_at, share_sig;
  bool stopped;
  /* Hook: send these bytes to every member; 0 or a negated errno. */
  int (*send)(struct relay *r, const void *buf, size_t len);
};

int relay_init(struct relay *r);
/* Open (or extend) a catch-up window from now: every leaf's heartbeat is
 * passed on for policy_relay_window_ms(). */
void relay_open_window(struct relay *r, uint64_t now);
/* Member `peer` may lack records (a joiner, a leaf new, restarted or
 * back, a resync asked): a catch-up for it alone, or a window for
 * everyone, as policy_relay_catch_up() says. */
void relay_catch_up(struct relay *r, const struct peer *peer, uint64_t now);
/* The catch-ups put off while the relay read behind: once it reads in
 * time again (a heartbeat finds it so, or a wake-up reads its inbox
 * empty), one window for everyone serves them. */
void relay_resume(struct relay *r, uint64_t now, bool behind);
/* Whether a catch-up of one member alone is taking messages now, and
 * add a leaf's message (as received) to each such catch-up but its
 * sender's. */
bool relay_targets_open(const struct relay *r, uint64_t now);
void relay_targets_add(struct relay *r, const void *msg, size_t len,
                       const char *from, uint64_t now);
bool relay_window_open(const struct relay *r, uint64_t now);
/* Shares: once a heartbeat, the relays alive and every member's place in
 * this relay's share (connected or not); relay_share_peer() for one
 * member whose record or role changed, relay_share_forget() for one
 * reaped.
 * Whether forwarded batches go to the share alone (relays split the
 * members, and the share's connections have had a heartbeat to come up),
 * and whether this relay forwards to peer. */
void relay_share_sync(struct relay *r, uint64_t now);
void relay_share_peer(struct relay *r, struct peer *peer);
void relay_share_forget(struct relay *r, struct peer *peer);
bool relay_share_active(const struct relay *r, uint64_t now);
bool relay_serves(const struct relay *r, const struct peer *peer, uint64_t now);
/* Note the certificates a message asks for (want_cert), so that the
 * answers carrying them are passed on; and ask whether one was. */
void relay_note_wants(struct relay *r, const struct wire_msg *m, uint64_t now);
bool relay_cert_wanted(const struct relay *r, const char *name, uint64_t now);
/* A relay forwards a leaf's message (the bytes as received) to every
 * member: at once when it changes something, else with the next batch. */
void relay_forward(struct relay *r, const void *msg, size_t len, bool change);
/* Send the changes waiting for credit now, before a message of the
 * relay's own whose records digest counts them (net_publish). */
void relay_flush_changes(struct relay *r);
/* Note a message received through a relay, received by a relay, or sent
 * by a leaf; returns whether it had been noted before (a copy). */
bool relay_seen(struct relay *r, const void *msg, size_t len);
void relay_close(struct relay *r);
void relay_free(struct relay *r);

/* ---- network (agent_net.c) ----
 * Owns the mesh and its endpoints, the sequence number of what this node
 * sends, what membership and the startup sync have learnt, and the
 * heartbeat, quick-republication, answer, list and hello timers. */

/* One PUB connection, shared by the join address and the member that
 * advertises the same address. */
struct endpoint {
  char addr[CHOREO_ADDR_MAX + 1];
  int id;
  unsigned refs; /* members using it */
  bool join;     /* a join address: kept while the agent runs */
};

struct net_echo; /* agent_net.c */

struct net {
  struct mesh mesh;
  bool mesh_open;
  struct endpoint *eps;
  size_t neps;
  uint64_t seq;
  bool got_members; /* a member list or a member answered us */
  bool view_agreed; /* a member's digest has equalled ours */
  bool synced;
  uint64_t started_at; /* monotonic ms */
  /* members.json: the members known at start (waited for by the sync),
   * and the members_digest() last saved (saved again only when it
   * changed, at most every NET_MEMBERS_SAVE_EVERY heartbeats, and at
   * stop). */
  struct members_set known;
  bool members_saved;
  uint64_t members_key;
  unsigned members_beats;
  struct state_report members_unsaved;
  uint64_t members_sent_at;
  bool members_wanted;
  unsigned hello_tries;
  uv_timer_t heartbeat, soon, answer, list, hello;
  /* Certificates on demand (docs/PROTOCOL.md): state messages that still
   * carry our certificate, the count of state messages (every
   * NET_CERT_EVERY-th carries it), and the members whose certificate we
   * ask for, each in a few more messages. */
  unsigned cert_due, cert_tick;
  size_t nwant;
  struct {
    char name[CHOREO_NAME_MAX + 1];
    unsigned left;
  } want[WIRE_WANT_MAX];
  unsigned soon_left;        /* quick republications still due */
  bool soon_again;           /* asked for while the current ones were due */
  uint64_t fd_limit;         /* RLIMIT_NOFILE once raised; 0: unknown */
  bool fd_warned;            /* said that the members need more */
  struct policy_rival rival; /* another agent claiming our name */
  /* Freshness, with a key ring: this start's nonce; until when our
   * messages ask peers to echo it (monotonic ms); the nonces we echo
   * (allocated when first needed). */
  uint64_t nonce, proving_until;
  struct net_echo *echo;
  /* Records digests compared with each relay (slots of the peer table),
   * and the messages that still ask relays for a resync. */
  struct policy_resync resync[PEERS_RELAYS_MAX];
  unsigned resync_left;
  /* This heartbeat's messages straight from their senders, how many of
   * them were read late, and the largest lag (ms): whether this agent reads
   * its inbox behind (policy_behind()). */
  uint64_t lag_msgs, lag_late, lag_max;
  /* this heartbeat: messages read from the inbox, and those of them no
   * key opened or that did not decode */
  uint64_t inbox_read, inbox_foreign;
  uint64_t full_reads_seen;    /* mesh.full_reads at the last heartbeat */
  uint64_t drained_reads_seen; /* mesh.drained_reads at the last heartbeat */
  /* so at the last heartbeat, until a wake-up reads the inbox empty */
  bool reading_behind;
  bool stopped;
  /* Hooks: a message was handled (rx_ns: when it was received); arm the
   * wake-up for monotonic time `when`. */
  void (*changed)(struct net *n, uint64_t rx_ns);
  void (*wake_at)(struct net *n, uint64_t when);
  /* Hook: another live agent has our name and we are the newcomer: stop
   * (exit 1), without a leave, which would be taken as the other's. */
  void (*name_taken)(struct net *n);
};

/* Set up the timers (no I/O); now: the start, monotonic ms. */
void net_init(struct net *n, uint64_t now, uint64_t fd_limit);
/* Bind the inbox, connect to the join addresses, start the heartbeat. */
int net_start(struct net *n);
void net_publish(struct net *n, enum wire_type type);
/* The record changed: publish it, once the mesh is open. */
void net_publish_change(struct net *n);
void net_publish_soon(struct net *n);
/* Our certificate is new to peers (identity configured or changed): the
 * next few state messages carry it. */
void net_offer_cert(struct net *n);
/* Send bytes as they are to every member (a relay's batch). */
int net_send_raw(struct net *n, const void *buf, size_t len);
/* End the startup sync when it is due (policy_sync). */
void net_check_sync(struct net *n);
/* Save members.json if it changed; not before the sync (the view may be
 * incomplete yet). */
void net_save_members(struct net *n);
/* A member was reaped: shut its endpoint down. */
void net_peer_reaped(struct net *n, struct peer *peer);
/* A member went lost: make the connection to it anew. */
void net_peer_lost(struct net *n, struct peer *peer);
void net_set_heartbeat(struct net *n, uint64_t ms);
void net_stats(struct net *n, struct mesh_stats *ms);
/* Another address that claimed this node's name in the last ten minutes
 * (policy_rival_claim, POLICY_RIVAL_SHOWN_MS); NULL: none. */
const struct policy_rival *net_rival(struct net *n);
void net_close(struct net *n);
void net_free(struct net *n);

/* ---- control (agent_control.c) ----
 * Owns the control socket server and answers its requests. */
struct ctl {
  struct control server;
  /* Hooks: a client asked this node to leave the cluster; to reload its
   * configuration (the report, owned by the caller; NULL: out of memory). */
  void (*leave)(struct ctl *c);
  json_t *(*reload)(struct ctl *c);
  /* Hook: the metrics text, as the HTTP endpoint serves it (the caller
   * frees *out); NULL: the counters alone. */
  int (*metrics_text)(struct ctl *c, char **out);
};

int ctl_start(struct ctl *c);
/* The views of the peers heard from that keep(peer, arg) accepts (every
 * one when keep is NULL), in name order, as a JSON array of at most
 * CTL_LIST_BYTES_MAX bytes of compact JSON: the status reply and a
 * script's standard input stay bounded however much the table holds.
 * *truncated gets how many accepted peers were left out (0: none). The
 * caller owns the array; NULL when out of memory. */
#define CTL_LIST_BYTES_MAX ((size_t)8 * 1024 * 1024)
json_t *ctl_peer_list(struct ctl *c,
                      bool (*keep)(const struct peer *peer, const void *arg),
                      const void *arg, size_t *truncated);
/* Tell every watching client about a peer event. */
void ctl_peer_event(struct ctl *c, const struct peer_event *ev);
/* The status reply ({"ok","node","peers","declared"[,"name_conflict"]})
 * and the peers shown (an array of PEER); new references, NULL: out of
 * memory. */
json_t *ctl_status(struct ctl *c);
json_t *ctl_peers(struct ctl *c);
void ctl_close(struct ctl *c);

/* ---- identity: agent_trust.c ---- */
/* Configure a->trust from cfg (at start and after a reload). */
int agent_trust_configure(struct agent *a, const struct config *cfg);
/* Revocations kept in state_dir from earlier runs. */
void agent_trust_restore(struct agent *a);
/* Revocations a peer's message carries (an array). */
void agent_trust_learn(struct agent *a, const json_t *revocations,
                       const char *from);
/* One revocation handed in locally (via: who, for the log). Returns 0
 * with node and *is_new, or an error with err (trust_revoke()). */
int agent_trust_revoke(struct agent *a, const json_t *revocation,
                       const char *via, char node[CHOREO_NAME_MAX + 1],
                       bool *is_new, char err[ID_ERR_MAX]);

/* ---- the agent ---- */
struct agent {
  uv_loop_t loop;
  char config_path[CONFIG_PATH_MAX];
  struct config *cfg;
  struct metrics metrics;
  struct peers peers;
  struct engine engine;
  struct runner runner;
  struct seal_ring *ring; /* network.key_file; NULL: none, plain text */
  struct trust trust;     /* identity (trust.h); agent_trust.c */

  struct net net;
  struct self self;
  struct jobs jobs;
  struct checks checks;
  struct relay relay;
  struct ctl ctl;
  struct notify notify;
  struct http http; /* http.h */

  uv_timer_t wake, leave;
  uint64_t wake_at;
  unsigned leave_left; /* leave messages still to send */
  uv_signal_t sighup, sigterm, sigint;
  bool stopping;
  int exit_code;
};

/* Run the agent for the configuration at path until it stops. Returns the
 * process exit status: 0 after a leave or signal, 1 when it could not
 * start, 2 for an invalid configuration. */
int agent_run(const char *path);

/* The agent a part is embedded in, for the shared modules it wires. */
#define AGENT_OF(ptr, part) container_of(ptr, struct agent, part)

/* Close a handle that was initialised and is not closing yet; a part's
 * close may run before its start did. */
static inline void agent_close_handle(uv_handle_t *h) {
  if (h->loop != NULL && !uv_is_closing(h))
    uv_close(h, NULL);
}

#endif
