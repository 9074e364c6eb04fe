/*
 * agent.h — the daemon: one struct agent owns the loop and every module
 * (configuration, mesh, peer table, engine, runner, control server,
 * metrics) and wires them together. It is the only mutable state of the
 * process.
 *
 * The daemon is split by concern:
 *   agent.c          lifecycle: start, signals, reload, leave, stop
 *   agent_net.c      publishing and receiving messages, membership
 *   agent_self.c     this node's own state: declared, claimed, published
 *   agent_jobs.c     engine actions and checks carried out by the runner
 *   agent_control.c  control-socket requests
 *   agent_relay.c    the relay role: forwarding leaves' messages
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
#include "mesh.h"
#include "metrics.h"
#include "peers.h"
#include "policy.h"
#include "record.h"
#include "runner.h"
#include "seal.h"
#include "seen.h"

/* Scripts running at once; more wait in the runner's queue. */
#define AGENT_MAX_RUNNING 32
/* Times a leave is published, AGENT_LEAVE_GAP_MS apart: PUB may drop. */
#define AGENT_LEAVE_REPEAT 3
#define AGENT_LEAVE_GAP_MS 30
/* Descriptors besides the two per member: sockets, pipes of scripts,
 * control clients, log, nanomsg's own. */
#define AGENT_FD_RESERVE 64

/* One PUB connection, shared by the join address and the member that
 * advertises the same address. */
struct endpoint {
  char addr[CHOREO_ADDR_MAX + 1];
  int id;
  unsigned refs; /* members using it */
  bool join;     /* a join address: kept while the agent runs */
};

/* A job handed to the runner, so that its end can be routed back. */
struct job {
  uint64_t tag;
  bool is_check;
  char name[CHOREO_NAME_MAX + 1]; /* behaviour or check name */
  uint64_t rx_ns;                 /* receipt of the message that caused it */
  struct job *next;
};

/* Messages a relay will forward in one batch, and when it goes. */
struct relay_queue {
  struct batch batch;
  uv_timer_t timer; /* data: the agent */
  uint64_t due;
};

struct check_set;

struct check_state {
  struct check_set *set;
  uv_timer_t timer;
  struct policy_check count; /* consecutive results, failing */
  bool running;
};

/* The checks of one configuration; replaced whole on reload, freed once
 * its timers are closed. */
struct check_set {
  struct agent *agent;
  size_t n, closing;
  struct check_state v[];
};

struct agent {
  uv_loop_t loop;
  char config_path[CONFIG_PATH_MAX];
  struct config *cfg;
  struct metrics metrics;
  struct mesh mesh;
  struct peers peers;
  struct engine engine;
  struct runner runner;
  struct control control;
  struct seal_ring *ring; /* network.key_file; NULL: none, plain text */

  /* This node. */
  struct record self; /* as published */
  char declared[CHOREO_STATE_MAX + 1];
  char declared_reason[CHOREO_REASON_MAX + 1];
  int64_t declared_since;
  uint64_t seq;

  /* Membership. */
  struct endpoint *eps;
  size_t neps;
  bool got_members; /* a member list or a member answered us */
  bool view_agreed; /* a member's digest has equalled ours */
  bool synced;
  uint64_t started_at; /* monotonic ms */
  uint64_t members_sent_at;
  bool members_wanted;
  unsigned hello_tries;
  uint64_t cur_rx_ns; /* receipt time of the message being handled */

  /* Relay role (network.relay, agent_relay.c): leaves' repeated
   * heartbeats and their changes waiting to be forwarded (no buffers
   * unless a relay), and the credit of batches sent for changes. */
  struct relay_queue relay_hold, relay_news;
  uint64_t relay_credit_at;
  /* Messages received through relays (and a leaf's own, which relays
   * pass back), to skip copies before decoding them; allocated when
   * first needed (32 KiB an agent of a plain mesh doesn't pay). */
  struct seen *seen;

  /* Jobs and checks. */
  struct job *jobs;
  uint64_t next_tag;
  struct check_set *checks; /* NULL when stopped */

  uv_timer_t heartbeat, wake, soon, answer, list, hello, leave;
  uint64_t wake_at;
  uint64_t fd_limit;   /* RLIMIT_NOFILE once raised; 0: unknown */
  bool fd_warned;      /* said that the members need more */
  unsigned soon_left;  /* quick republications still due */
  bool soon_again;     /* asked for while the current ones were due */
  unsigned leave_left; /* leave messages still to send */
  uv_signal_t sighup, sigterm, sigint;

  bool mesh_open;
  bool stopping;
  int exit_code;
};

/* Run the agent for the configuration at path until it stops. Returns the
 * process exit status: 0 after a leave or signal, 1 when it could not
 * start, 2 for an invalid configuration. */
int agent_run(const char *path);

/* agent.c */
void agent_stop(struct agent *a, int exit_code);
void agent_leave(struct agent *a);
/* Arm the wake-up timer for monotonic time `when` if that is earlier than
 * the one already set. */
void agent_wake_at(struct agent *a, uint64_t when);

/* agent_net.c */
int agent_net_start(struct agent *a);
void agent_publish(struct agent *a, enum wire_type type);
void agent_publish_soon(struct agent *a);
void agent_heartbeat(uv_timer_t *t);
void agent_on_message(struct mesh *m, const void *buf, size_t len);
void agent_peer_event(void *arg, const struct peer_event *ev);
void agent_check_sync(struct agent *a);
void agent_net_close(struct agent *a);

/* agent_self.c */
int agent_self_init(struct agent *a);
/* Recompute the state this node shows; publish if it changed. */
void agent_self_refresh(struct agent *a);
/* Apply a `set`: validate, publish, then persist. Returns 0; or
 * CHOREO_EINVAL with *why set and nothing changed; or a negated errno with
 * *why set when the new state is in effect but could not be saved. */
int agent_self_set(struct agent *a, const char *state, const char *reason,
                   json_t *data, const char **why);

/* agent_jobs.c */
/* Ask the engine for due actions and start them; re-arm the wake-up. */
void agent_step(struct agent *a);
void agent_jobs_started(void *arg, uint64_t tag, unsigned attempt);
void agent_jobs_done(void *arg, uint64_t tag, enum runner_result res,
                     int status);
int agent_checks_start(struct agent *a);
void agent_checks_stop(struct agent *a);
bool agent_check_failing(const struct agent *a, size_t *index);

/* agent_relay.c */
int agent_relay_init(struct agent *a);
/* A relay forwards a leaf's message (the bytes as received) to every
 * member: at once when it changes something, else with the next batch. */
void agent_relay_forward(struct agent *a, const void *msg, size_t len,
                         bool change);
void agent_relay_free(struct agent *a);
/* Note a message received through a relay, received by a relay, or sent
 * by a leaf; returns whether it had been noted before (a copy). */
bool agent_relay_seen(struct agent *a, const void *msg, size_t len);

/* agent_control.c */
void agent_on_request(struct control *c, struct control_client *cl,
                      json_t *req);

#endif
