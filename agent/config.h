/*
 * config.h — the agent's configuration: the YAML file of docs/CONFIGURATION.md,
 * with its includes, read into plain structs. Loading never touches the
 * network; it reports every problem it finds as "FILE:LINE:COL: message".
 */
#ifndef CHOREO_CONFIG_H
#define CHOREO_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "choreo.h"
#include "identity.h"

#define CONFIG_JOIN_MAX 16  /* network.join entries */
#define CONFIG_STATES_MAX 8 /* states in one condition list */
#define CONFIG_ARGV_MAX 64  /* arguments of one run/revert command */
#define CONFIG_BEHAVIOURS_MAX 1024
#define CONFIG_CHECKS_MAX 64
#define CONFIG_INCLUDES_MAX 64
#define CONFIG_VARS_MAX 32
#define CONFIG_PATH_MAX 4096
#define CONFIG_SOCKET_MAX 107         /* sun_path less its NUL */
#define CONFIG_FILE_MAX (1024 * 1024) /* bytes of one YAML file */
#define CONFIG_ERRORS_MAX 100         /* problems reported before giving up */
/* network.max_members: the members a peer table holds (default
 * PEERS_MAX_DEFAULT), and its largest value. */
#define CONFIG_MEMBERS_DEFAULT 4096
#define CONFIG_MEMBERS_MAX 100000
/* sync.min_members: at most every other member of the largest table. */
#define CONFIG_SYNC_MEMBERS_MAX (CONFIG_MEMBERS_MAX - 1)
#define CONFIG_SYNC_WAIT_DEFAULT_MS 30000
#define CONFIG_HTTP_LISTEN_MAX 64 /* http.listen: [IPv6]:PORT fits */
#define CONFIG_USER_MAX 32 /* a user or group name (run_as, read_group) */

/* Where something was written: for messages about it after loading. */
struct config_mark {
  char file[CONFIG_PATH_MAX];
  unsigned line, col; /* 1-based */
};

/* Peer selector of a behaviour; empty strings mean "any". */
struct config_selector {
  char group[CHOREO_NAME_MAX + 1];
  char node[CHOREO_NAME_MAX + 1];
};

enum config_cond_kind {
  COND_ANY,        /* {any: S} */
  COND_ALL,        /* {all: S} */
  COND_NONE,       /* {none: S} */
  COND_FEWER_THAN, /* {fewer_than: N, state: S} */
};

struct config_condition {
  enum config_cond_kind kind;
  size_t nstates; /* 1..CONFIG_STATES_MAX: "one of" */
  char states[CONFIG_STATES_MAX][CHOREO_STATE_MAX + 1];
  unsigned n; /* fewer_than only; >= 1 */
};

/* Peer events a behaviour may subscribe to with `on:`; CHANGE is the
 * coalesced `on: change`. */
#define CONFIG_EVENT_MAP(XX)                                                   \
  XX(JOINED, "joined")                                                         \
  XX(LEFT, "left")                                                             \
  XX(LOST, "lost")                                                             \
  XX(STATE, "state")                                                           \
  XX(DATA, "data")                                                             \
  XX(CHANGE, "change")

enum config_event {
#define XX(id, s) CONFIG_EV_##id,
  CONFIG_EVENT_MAP(XX)
#undef XX
      CONFIG_EV__COUNT
};
#define CONFIG_EV_BIT(e) (1u << (e))

/* A NULL-terminated argument vector; argv[0] is resolved: a path as
 * written (relative ones made absolute against the directory of the file
 * that declared it) or, without a slash, the name to look up in PATH. */
struct config_argv {
  size_t argc;
  char **argv; /* argc + 1 entries, argv[argc] == NULL; owned */
};

/* The user a script runs as (run_as), resolved with getpwnam() at load:
 * its uid and primary gid, and the HOME it gets. set false: the agent's
 * own user, environment unchanged. */
struct config_user {
  bool set;
  char name[CONFIG_USER_MAX + 1];
  uint32_t uid, gid;
  char home[CONFIG_PATH_MAX];
};

struct config_behaviour {
  char name[CHOREO_NAME_MAX + 1];
  struct config_mark mark; /* where `- name:` was written */
  struct config_selector peers;
  bool has_when; /* exactly one of has_when / on_mask != 0 */
  struct config_condition when;
  unsigned on_mask; /* CONFIG_EV_BIT()s */
  struct config_argv run;
  struct config_argv revert;        /* argc 0: none */
  char state[CHOREO_STATE_MAX + 1]; /* "" : no own-state claim */
  uint64_t settle_ms;               /* default 0 */
  uint64_t timeout_ms;              /* default 30s */
  unsigned retries;                 /* default 0 */
  /* run_as, or defaults.run_as; where run and revert were written, for
   * the messages of the script trust check (config_script_trust()). */
  struct config_user run_as;
  struct config_mark run_mark, revert_mark;
  /* Vars of the include that brought it in, as "CHOREO_VAR_NAME=value"
   * environment entries; nvars 0 for behaviours of the main file. */
  size_t nvars;
  char **vars; /* owned */
};

struct config_check {
  char name[CHOREO_NAME_MAX + 1];
  struct config_mark mark;
  struct config_argv run;
  uint64_t interval_ms;             /* default 5s */
  uint64_t timeout_ms;              /* default 2s */
  unsigned fall;                    /* default 3 */
  unsigned rise;                    /* default 2 */
  char state[CHOREO_STATE_MAX + 1]; /* default "failed" */
  size_t nvars;
  char **vars; /* owned, as for behaviours */
};

struct config {
  /* node */
  char name[CHOREO_NAME_MAX + 1];       /* default: host name */
  char cluster[CHOREO_CLUSTER_MAX + 1]; /* default "default" */
  size_t ngroups;
  char groups[CHOREO_GROUPS_MAX][CHOREO_NAME_MAX + 1];
  char state[CHOREO_STATE_MAX + 1]; /* default "ready" */
  json_t *data;                     /* object; owned; never NULL */

  /* network */
  char listen[CHOREO_ADDR_MAX + 1];    /* default tcp://127.0.0.1:7410 */
  char advertise[CHOREO_ADDR_MAX + 1]; /* default: listen unless wildcard */
  size_t njoin;
  char join[CONFIG_JOIN_MAX][CHOREO_ADDR_MAX + 1];
  /* Relays (docs/ARCHITECTURE.md "Relays"): with relay, this agent
   * forwards what leaves publish to every member; with relays, it is a
   * leaf that connects to these addresses only (they are also its join
   * addresses). Never both. */
  bool relay;
  size_t nrelays;
  char relays[CONFIG_JOIN_MAX][CHOREO_ADDR_MAX + 1];
  uint64_t heartbeat_ms;  /* default 1s */
  uint64_t lost_after_ms; /* default 5s */
  uint64_t reap_after_ms; /* default 24h */
  unsigned max_members;   /* other members held at most; PEERS_MAX_DEFAULT */
  char key_file[CONFIG_PATH_MAX]; /* "" : none */
  bool insecure;

  /* control */
  char socket[CONFIG_SOCKET_MAX + 1]; /* default CHOREO_DEFAULT_SOCKET */
  unsigned socket_mode;               /* default 0660 */
  /* control.read_group: members may only read (docs/OPERATIONS.md "Who
   * may change what"); "" : none. Its gid, resolved with getgrnam(). */
  char read_group[CONFIG_USER_MAX + 1];
  uint32_t read_gid;
  /* defaults.run_as: the user of behaviours that don't say run_as. */
  struct config_user default_run_as;

  char state_dir[CONFIG_PATH_MAX]; /* default /var/lib/choreo */

  int log_level; /* log.level: an enum log_level (log.h); default info */
  /* http (docs/CONFIGURATION.md "http"): "" : the endpoint is off. */
  char http_listen[CONFIG_HTTP_LISTEN_MAX + 1]; /* HOST:PORT */
  char http_token_file[CONFIG_PATH_MAX];        /* "" : no token */

  /* identity (docs/CONFIGURATION.md "identity"): on when the section is
   * written. The key and certificate are read and checked at load (the
   * certificate is for the key, names this node, lists its groups and is
   * signed by one of the operators and valid now). config_free() wipes
   * the key. */
  bool identity;
  bool identity_required; /* default true */
  char identity_key_file[CONFIG_PATH_MAX];
  char identity_cert_file[CONFIG_PATH_MAX];
  size_t identity_nops;
  uint8_t identity_ops[ID_OPERATORS_MAX][ID_PUBLIC_BYTES];
  struct id_key identity_key;
  struct id_cert identity_cert;

  /* sync: what conditions wait for after a start (policy_sync). */
  unsigned sync_min_members; /* other members heard; default 0 */
  size_t sync_ngroups;       /* a member of each heard */
  char sync_groups[CHOREO_GROUPS_MAX][CHOREO_NAME_MAX + 1];
  uint64_t sync_max_wait_ms; /* default 0 (none); 30s once sync is given */

  size_t nbehaviours;
  struct config_behaviour *behaviours; /* owned */
  size_t nchecks;
  struct config_check *checks; /* owned */
};

/* Problems found while loading, in the order found. */
struct config_errors {
  size_t n;
  char *msg[CONFIG_ERRORS_MAX]; /* owned; "FILE:LINE:COL: message" */
  size_t more;                  /* problems beyond CONFIG_ERRORS_MAX */
};

/* Load the file at path with everything it includes. On success returns 0
 * and the caller owns *out (config_free()). On any problem returns
 * CHOREO_ECONFIG, *out is NULL and errs holds every message (the caller
 * releases them with config_errors_free()); CHOREO_ENOMEM likewise. */
int config_load(const char *path, struct config **out,
                struct config_errors *errs);
void config_free(struct config *cfg);

/* Read only control.socket from the file at path into buf[len] (the
 * default, CHOREO_DEFAULT_SOCKET, when it is not written), without reading
 * or checking the rest of the configuration: what the command line needs
 * to find the agent. Returns 0, CHOREO_ECONFIG with errs filled when the
 * file can't be read, isn't YAML, its path is CONFIG_PATH_MAX bytes or
 * more, or control.socket is not a string that fits (the caller releases
 * errs with config_errors_free()), or CHOREO_ENOMEM. */
int config_socket_path(const char *path, char *buf, size_t len,
                       struct config_errors *errs);
void config_errors_free(struct config_errors *errs);

/* Whether the script file at path, run as run_uid, can be trusted: it
 * and every directory above it are owned by root or run_uid and none is
 * writable by group or others (policy_script_trust(); a root-owned
 * sticky directory such as /tmp excepted). A bare name is looked up in
 * PATH. Returns 0, or a negated
 * errno (stat failed) / CHOREO_EREFUSED with why[len] saying why, e.g.
 * "/srv/x.sh is writable by uid 1001 (not root or run_as user)". The
 * agent asks again before each start (runner.c): the file may have
 * changed since it was loaded. */
int config_script_trust(const char *path, uint32_t run_uid, char *why,
                        size_t len);

/* Name of an event, e.g. "joined". */
const char *config_event_name(enum config_event e);

/* True when the two behaviours watch the same peers with the same
 * condition or events (a reload keeps such a behaviour's state). */
bool config_behaviour_same_trigger(const struct config_behaviour *a,
                                   const struct config_behaviour *b);

#endif
