/*
 * control.h — the control socket: a unix stream socket on which the CLI and
 * other tools send JSON requests, one per line, and read JSON replies, one
 * per line. A client that asked to watch then receives every peer event as
 * a line until it disconnects.
 *
 * Everything a client sends is untrusted. A line that is not a JSON object
 * gets an error reply. A line longer than CHOREO_REQUEST_MAX, or a partial
 * line left unfinished CONTROL_IDLE_MS after its first byte, gets an error
 * reply and ends that client's connection and no other; so does silence
 * for CONTROL_SILENT_MS from a client that is not watching. A client that
 * doesn't read what it is sent can't make the agent hold its replies:
 * once CONTROL_OUT_PAUSE bytes wait for it, its requests are no longer
 * read (backpressure), and it is dropped (counted as "slow") if they still
 * wait CONTROL_STALL_MS later or if more than CONTROL_OUT_MAX bytes would
 * wait (a watcher's events; one reply alone is always sent, however
 * large). A client that closes its side still
 * gets the replies it is owed.
 *
 * Descriptors: the server accepts on its own listening socket (not
 * libuv's, whose accept loop spins when the process is out of
 * descriptors) and keeps CONTROL_SPARE_FDS descriptors in reserve: when
 * accept fails with EMFILE or ENFILE, a spare is given up for the next
 * client, so an operator can still ask a node under a descriptor flood
 * what is going on. With no spare left, accepting pauses for
 * CONTROL_RETRY_MS (the pending connection waits in the backlog) rather
 * than spin.
 *
 * Authority (docs/OPERATIONS.md "Who may change what"): every accepted
 * connection learns its peer's uid, gid and pid (SO_PEERCRED). Root and
 * the agent's own effective user may send every command; members of the
 * read group (control.read_group) only reading ones (the agent checks
 * each request against control_client_peer()); anyone else gets one
 * error line and the connection is closed. With a read group, the socket
 * file belongs to that group (chown) before it is given its mode.
 */
#ifndef CHOREO_CONTROL_H
#define CHOREO_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "config.h"
#include "metrics.h"
#include "policy.h"

#define CONTROL_CLIENTS_MAX 256
#define CONTROL_IDLE_MS 10000
#define CONTROL_SILENT_MS 60000
#define CONTROL_OUT_PAUSE (256 * 1024)
#define CONTROL_OUT_MAX (1024 * 1024)
#define CONTROL_STALL_MS 5000
#define CONTROL_SPARE_FDS 4
#define CONTROL_RETRY_MS 100
#define CONTROL_ACCEPT_BATCH 16 /* connections accepted per wake-up */
/* A refused client (no access) is closed when it hangs up or after this:
 * long enough to send its request and read the refusal, short enough
 * that refused connections can't keep the clients' places taken. */
#define CONTROL_REFUSED_MS 1000

struct control;
struct control_client; /* private */

/* Who may use the socket and how its file is made. */
struct control_opts {
  unsigned mode;       /* chmod of the socket file (control.mode) */
  bool read_group;     /* control.read_group is set */
  uint32_t read_gid;   /* its gid: members read, and own the file */
  uint32_t agent_euid; /* the agent's effective uid: may change state */
};

/* A client's credentials, learnt when it was accepted. */
struct control_peer {
  uint32_t uid, gid;
  int32_t pid;
  char user[CONFIG_USER_MAX + 1]; /* the uid's name; "" : unknown */
  enum policy_access access;
};

/* A request from a client: req is a JSON object, borrowed for the call.
 * The callee answers with control_reply() (now or later, while the client
 * is alive) and may mark the client as a watcher. */
typedef void (*control_request_fn)(struct control *c, struct control_client *cl,
                                   json_t *req);

struct control {
  uv_poll_t poll;   /* the listening socket */
  uv_timer_t retry; /* accepting again after a pause, refilling spares */
  int fd;           /* the listening socket; -1 when closed */
  int spare[CONTROL_SPARE_FDS]; /* reserved descriptors, -1 when given up */
  int handles;                  /* of poll and retry, not closed yet */
  uv_loop_t *loop;
  char path[108];
  struct metrics *metrics; /* borrowed */
  control_request_fn on_request;
  struct control_client *clients; /* private list */
  size_t nclients;
  struct control_opts opts;
  bool bound; /* the socket file is ours to unlink */
  bool closing;
  void (*close_cb)(struct control *c);
  char why[512]; /* why control_start() refused the path; "" otherwise */
};

/* Listen at path with opts (the mode and group of the socket file, who
 * may do what), creating its directory (0755) if
 * missing; a directory control_dir_check() refuses is refused (c->why
 * says why). A socket file left by a dead agent is replaced; a live agent's
 * is not: CHOREO_EEXISTS then. Other failures: a negated errno. Whatever
 * the result, the caller ends with control_close(). */
int control_start(struct control *c, uv_loop_t *loop, const char *path,
                  const struct control_opts *opts, struct metrics *m,
                  control_request_fn fn);

/* The credentials of a client (borrowed; valid while it is). */
const struct control_peer *control_client_peer(const struct control_client *cl);

/* Whether the user uid (primary group gid) is a member of group `group`:
 * its primary group, or a supplementary one of its name (getpwuid_r,
 * getgrouplist). A uid with no name is a member by its gid only. */
bool control_in_group(uint32_t uid, uint32_t gid, uint32_t group);

/* Whether the directory of the socket at path can be trusted: owned by
 * root or the agent's user, and not writable by group or others (unless
 * root-owned and sticky, like /tmp, where no one else can remove or
 * rename our socket). Whoever can write there can replace the socket and
 * take the operators' requests. Missing: fine (control_start creates it,
 * 0755). Returns 0, or CHOREO_EINVAL / a negated errno with why set. */
int control_dir_check(const char *path, char *why, size_t len);

/* Send one reply line (reply is borrowed). A client closed meanwhile is
 * silently skipped. */
void control_reply(struct control_client *cl, json_t *reply);
/* Answer {"ok": false, "error": message}. */
void control_reply_error(struct control_client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Make the client a watcher: it receives control_broadcast() lines. */
void control_watch(struct control_client *cl);
/* Send ev (borrowed) to every watcher. */
void control_broadcast(struct control *c, json_t *ev);

/* Close the server and every client, unlink the socket file; cb runs when
 * every handle is closed. Idempotent. */
void control_close(struct control *c, void (*cb)(struct control *c));

#endif
