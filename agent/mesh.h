/*
 * mesh.h — the agent's nanomsg sockets, inside the libuv loop.
 *
 * Topology (docs/ARCHITECTURE.md): one SUB socket bound at network.listen
 * is this agent's inbox; one PUB socket connects to the inbox of every
 * member, so one send fans out to all. nanomsg runs its own threads; the
 * loop learns of incoming messages through NN_RCVFD, a descriptor that only
 * signals readiness, watched by a uv_poll_t, and then drains the socket
 * with NN_DONTWAIT until EAGAIN. PUB never blocks and silently drops
 * (slow joiners, full pipes): the protocol above is built for loss.
 *
 * The inbox guard: nanomsg accepts every connection to the inbox and keeps
 * it as long as the peer likes once it has sent the 8-byte SP header; it
 * has no cap on connections and no idle timeout, and when the process is
 * out of descriptors its accept loop spins. So anyone who can reach the
 * port, key or not, could take every descriptor of the agent. Every
 * MESH_GUARD_MS the mesh counts the agent's descriptors (every
 * MESH_GUARD_IDLE_MS while it holds less than half its limit: reading
 * /proc/self/fd ten times a second doubled an idle agent's CPU); when it
 * holds three quarters of its limit:
 *  - first, inbox connections that never sent more than the header and
 *    have been quiet for MESH_IDLE_MS are shut down (TCP_INFO tells); a
 *    member's connection carries a heartbeat every period and stays;
 *  - if the attacker reconnects (more connections swept within
 *    MESH_REFILL_MS than twice the limit, or the count stays over the
 *    mark for MESH_STUCK_MS with nothing idle enough to sweep), while
 *    such connections are there, the inbox endpoint is shut
 *    down, closing every connection to it, and bound again
 *    MESH_COOLDOWN_MS later. Members reconnect by themselves.
 * Without a single header-only connection the inbox is left alone: the
 * descriptors are the members', the scripts' or the clients', and the
 * limit is too low (logged). The agent's own outgoing connections, which
 * carry its heartbeats, are never touched.
 */
#ifndef CHOREO_MESH_H
#define CHOREO_MESH_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "choreo.h"

#define MESH_GUARD_MS 100       /* how often the guard looks near the mark */
#define MESH_GUARD_IDLE_MS 1000 /* and below half the limit (idle cost) */
#define MESH_IDLE_MS 250      /* a header-only connection this quiet is idle */
#define MESH_REFILL_MS 2000   /* the window in which sweeps are counted */
#define MESH_STUCK_MS 1000    /* over the mark this long: a reset */
#define MESH_COOLDOWN_MS 1000 /* the inbox doesn't listen after a reset */

struct mesh;

/* One message of len bytes; buf is valid during the call only. */
typedef void (*mesh_recv_fn)(struct mesh *m, const void *buf, size_t len);

struct mesh {
  uv_poll_t poll;
  uv_timer_t guard; /* the inbox guard (see above) */
  int handles;      /* of poll and guard, not closed yet */
  int bind_ep;      /* the inbox's endpoint; -1 while it is being reset */
  char listen[CHOREO_ADDR_MAX + 1];
  uint64_t fd_limit;    /* RLIMIT_NOFILE at mesh_init; 0: no guard */
  uint64_t fds;         /* descriptors held at the last count (guard) */
  uint64_t resets;      /* inbox resets so far */
  uint64_t idle_closed; /* idle inbox connections closed so far */
  /* Wake-ups that read a whole batch of messages (MESH_RECV_BATCH)
   * without draining the inbox: more waited than a turn takes in. */
  uint64_t full_reads;
  /* Wake-ups that read the inbox empty. */
  uint64_t drained_reads;
  uint64_t last_log_ms, rebind_at;
  uint64_t over_since;   /* over the mark since (loop time); 0: under it */
  uint64_t window_start; /* of the current MESH_REFILL_MS window */
  uint64_t swept_window; /* connections swept in it */
  int listen_port;       /* of a tcp:// inbox; 0 for another transport */
  DIR *fd_dir; /* /proc/self/fd, open throughout; NULL without guard */
  int sub;     /* inbox; -1 when closed */
  int pub;     /* fan-out; -1 when closed */
  int share;   /* a relay's share (mesh_share_connect); -1 until used */
  mesh_recv_fn on_recv;
  /* A wake-up read the inbox empty (NULL: nothing to do then). */
  void (*on_drained)(struct mesh *m);
  void (*close_cb)(struct mesh *m);
  /* The inbox's IPv4 address when it is bound to one (not the wildcard):
   * outgoing connections leave from it. Empty otherwise. */
  char local[16];
  bool local_loopback;
};

/* Create both sockets and bind the inbox at listen (no callback runs
 * before mesh_start). Returns 0, or a negated errno (EADDRINUSE, EINVAL
 * for a bad address, …) with nothing left open. */
int mesh_init(struct mesh *m, uv_loop_t *loop, const char *listen,
              size_t max_msg, mesh_recv_fn on_recv);
int mesh_start(struct mesh *m);

/* How many of the connections this agent made (its PUB's) are up. */
size_t mesh_out_up(struct mesh *m);

/* Connect the PUB socket to a member's inbox; reconnects in the background
 * for as long as the endpoint exists. When the inbox is bound to one
 * IPv4 address and the member's is an IPv4 address of the same kind
 * (both loopback or both not), the connection leaves
 * from the inbox's address ("tcp://LOCAL;REMOTE"), so that firewalls see
 * the address the node advertises and the kernel need not search the
 * whole port space of the wildcard address for every connection. Returns
 * the endpoint id (>= 0) or a negated errno (EINVAL: not a valid
 * address). */
int mesh_connect(struct mesh *m, const char *addr);
/* A connection of its own to one member's inbox, apart from the
 * fan-out (a relay's catch-up, docs/PROTOCOL.md "Relays"): a PUB socket
 * connected to addr alone, from the inbox's address like mesh_connect.
 * Returns the socket (>= 0) or a negated errno. What is sent before its
 * connection is up (mesh_solo_up) is dropped, as on any PUB. */
int mesh_solo_open(struct mesh *m, const char *addr);
bool mesh_solo_up(int s);
/* 0, or a negated errno (EAGAIN: its pipe is full). */
int mesh_solo_send(int s, const void *buf, size_t len);
void mesh_solo_close(int s);

/* A relay's share (docs/PROTOCOL.md "Shares"): a second PUB socket,
 * made on first use, connected to the members it forwards to when relays
 * share the members; the same rules as mesh_connect. Returns the endpoint
 * id (>= 0) or a negated errno. */
int mesh_share_connect(struct mesh *m, const char *addr);
void mesh_share_disconnect(struct mesh *m, int endpoint);
/* Publish to the share; like mesh_send. -EBADF: no share yet. */
int mesh_share_send(struct mesh *m, const void *buf, size_t len);
/* How many of the share's connections are up. */
size_t mesh_share_up(struct mesh *m);

/* Shut an endpoint down. */
void mesh_disconnect(struct mesh *m, int endpoint);

/* Publish one message to every connected member. Never blocks. Returns 0
 * or a negated errno (EAGAIN when nanomsg could not queue it). */
int mesh_send(struct mesh *m, const void *buf, size_t len);

/* nanomsg's own connection counts, for metrics. */
struct mesh_stats {
  uint64_t out_up, out_connecting, in_up, connect_errors;
  uint64_t inbox_resets, inbox_idle_closed, fds; /* the inbox guard's */
};
void mesh_stats(struct mesh *m, struct mesh_stats *st);

/* Close the sockets; cb runs when the handles are closed. */
void mesh_close(struct mesh *m, void (*cb)(struct mesh *m));

#endif
