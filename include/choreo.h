/*
 * choreo.h — the public interface of libchoreo.
 *
 * libchoreo is what tools use to talk to a running choreo agent over its
 * control socket: set this node's state, read the peer table, stream events,
 * wait for a condition. The `choreo` command line is built on it. It also
 * holds the few rules that the agent and its clients must share: the limits
 * on names and values, how they are validated, and how durations are
 * written.
 *
 * Conventions: a function that can fail returns 0 or a negative error code
 * (CHOREO_E* below, or a negated errno value); choreo_strerror() describes
 * either. Every pointer a function hands back says who owns it.
 */
#ifndef CHOREO_H
#define CHOREO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CHOREO_BUILDING_LIBRARY) && defined(__GNUC__)
#define CHOREO_EXPORT __attribute__((visibility("default")))
#else
#define CHOREO_EXPORT
#endif

#define CHOREO_VERSION "0.2.0"

/* ---- Limits (docs/PROTOCOL.md); every one is enforced everywhere ---- */
#define CHOREO_NAME_MAX 64         /* node, group, behaviour, check names */
#define CHOREO_CLUSTER_MAX 64      /* cluster name: same characters as a node */
#define CHOREO_STATE_MAX 32        /* a state: 1-32 of a-z 0-9 _ - */
#define CHOREO_GROUPS_MAX 16       /* groups per node */
#define CHOREO_DATA_KEYS_MAX 32    /* data keys per node */
#define CHOREO_DATA_KEY_MAX 64     /* a data key: 1-64 of a-z 0-9 _ . - */
#define CHOREO_DATA_VALUE_MAX 1024 /* a data value: bytes of UTF-8 */
#define CHOREO_REASON_MAX 256      /* a reason: bytes of UTF-8 */
#define CHOREO_ADDR_MAX 256        /* a nanomsg address such as tcp://h:p */
#define CHOREO_MSG_MAX 65536       /* one message on the wire, sealed or not */
#define CHOREO_REQUEST_MAX 65536   /* one control-socket request line */
#define CHOREO_RELEASE_MAX 32      /* a release as peers report it, "0.2.0" */

/* ---- Errors ---- */
#define CHOREO_ERRNO_MAP(XX)                                                   \
  XX(NOMEM, "out of memory")                                                   \
  XX(INVAL, "invalid argument")                                                \
  XX(NOAGENT, "no agent answers on the control socket")                        \
  XX(PROTO, "malformed reply from the agent")                                  \
  XX(TIMEDOUT, "timed out")                                                    \
  XX(CLOSED, "connection closed by the agent")                                 \
  XX(TOOBIG, "message too large")                                              \
  XX(REFUSED, "the agent refused the request")                                 \
  XX(CONFIG, "invalid configuration")                                          \
  XX(EXISTS, "already exists")                                                 \
  XX(NOTFOUND, "not found")                                                    \
  XX(DECODE, "malformed message")                                              \
  XX(CRYPTO, "message could not be authenticated")                             \
  XX(PEERCRED, "the control socket is served by another user")

typedef enum {
  CHOREO_OK = 0,
#define XX(name, msg) CHOREO_E##name,
  CHOREO__EFIRST = -1000,
  CHOREO_ERRNO_MAP(XX)
#undef XX
} choreo_errno;

/* The codes count up from -999 (CHOREO_ENOMEM), far below any negated
 * errno value, so both kinds can travel in one int. */

/* Describe err (a CHOREO_E* code or a negated errno). Returns a static
 * string; never NULL. */
CHOREO_EXPORT const char *choreo_strerror(int err);
/* The same into buf (always NUL-terminated); returns buf. */
CHOREO_EXPORT char *choreo_strerror_r(int err, char *buf, size_t len);
/* The symbolic name, e.g. "CHOREO_ETIMEDOUT" or "ENOENT"'s "errno 2". */
CHOREO_EXPORT const char *choreo_err_name(int err);

/* ---- Validation shared by agent and clients ---- */
CHOREO_EXPORT bool choreo_valid_name(const char *s); /* node/group/cluster */
CHOREO_EXPORT bool choreo_valid_state(const char *s);
/* A state a node may declare for itself (choreo set, run-in, node.state,
 * a check's or behaviour's claim): a valid state other than "lost" and
 * "left", which only observers assign. */
CHOREO_EXPORT bool choreo_valid_settable_state(const char *s);
CHOREO_EXPORT bool choreo_valid_data_key(const char *s);
/* A value or reason: valid UTF-8 of at most max bytes, no NUL. */
CHOREO_EXPORT bool choreo_valid_text(const char *s, size_t max);

/* Parse a duration: a whole number followed by ms, s, m or h ("250ms",
 * "5s", "2m", "24h"). Returns 0 and *ms, or CHOREO_EINVAL for anything
 * else (no unit, negative, overflow, trailing characters). */
CHOREO_EXPORT int choreo_parse_duration(const char *s, uint64_t *ms);

/* The library's version, CHOREO_VERSION. */
CHOREO_EXPORT const char *choreo_version(void);

/* ---- Client ---- */

/* The default control socket path. */
#define CHOREO_DEFAULT_SOCKET "/run/choreo/choreo.sock"

typedef struct choreo_client choreo_client;

typedef struct choreo_kv {
  char *key;
  char *value;
} choreo_kv;

/* One node as the agent sees it (choreo(1), "status --json": PEER). */
typedef struct choreo_peer {
  char *name;
  char **groups;
  size_t ngroups;
  char *state;
  char *reason;
  int64_t since_ms;     /* unix ms when the state was entered */
  int64_t last_seen_ms; /* ms since last heard; 0 for this node */
  choreo_kv *data;
  size_t ndata;
  /* Its clock minus this node's (ms), estimated from its latest message;
   * 0 for this node and for agents that don't report it. */
  int64_t clock_offset_ms;
  /* Its versions, once the agent heard a message of its own (PROTOCOL.md
   * "Versions"): its release ("0.2.0"; "unversioned" for a 0.1.0 agent,
   * which says none; "unknown" for a versioned agent that gave none), or
   * NULL when not heard yet (this node too: see choreo_version()); and
   * the protocol minor both agents speak, -1 when not known. */
  char *version;
  int proto;
  /* The address it advertises (its inbox), e.g. "tcp://10.0.0.5:7410";
   * "" from agents that don't report it. */
  char *addr;
} choreo_peer;

typedef struct choreo_status {
  choreo_peer node;
  choreo_peer *peers;
  size_t npeers;
  /* The state declared on this node (choreo set, run-in, node.state) and
   * its reason; node.state is the effective one, which differs while a
   * check or a behaviour claims a state. "" from agents that don't
   * report it. */
  char *declared_state;
  char *declared_reason;
} choreo_status;

/* One event as streamed by watch (choreo(1), "watch --json"). */
typedef struct choreo_event {
  const char *event; /* joined, state, data, left, lost */
  const char *peer;
  const char *state;
  const char *previous;
  const char *reason;
  int64_t time_ms;
  /* The peer's groups (none from agents that don't report them). */
  const char *const *groups;
  size_t ngroups;
} choreo_event;

/* Connect to the agent at socket_path (NULL: CHOREO_DEFAULT_SOCKET). Each
 * later request waits at most timeout_ms for the agent's answer.
 * On success the caller owns *out; release it with choreo_close().
 * Returns CHOREO_ENOAGENT when nothing listens there, and CHOREO_EPEERCRED
 * when the process that answers runs as neither root nor this process's
 * effective user (someone else's socket at that path). The agent closes a
 * connection that has sent nothing for 60 s (unless it is watching): a
 * program that asks now and then connects for each round of requests. */
CHOREO_EXPORT int choreo_connect(const char *socket_path, int timeout_ms,
                                 choreo_client **out);
CHOREO_EXPORT void choreo_close(choreo_client *c);

/* Send one raw JSON request line (without the newline) and read one reply
 * line. On success the caller owns *reply (free()). A reply with
 * "ok": false is returned as CHOREO_EREFUSED with *reply still set so the
 * caller can show the agent's "error". */
CHOREO_EXPORT int choreo_request(choreo_client *c, const char *request,
                                 char **reply);

/* Declare this node's state. reason may be NULL (keep none). data holds
 * ndata pairs merged into the current data; a pair whose value is NULL or
 * "" removes its key. On refusal, *error (if not NULL) receives the agent's
 * message, owned by the caller. */
CHOREO_EXPORT int choreo_set(choreo_client *c, const char *state,
                             const char *reason, const choreo_kv *data,
                             size_t ndata, char **error);

/* The outcome of a reload (choreo(1), "reload"). */
typedef struct choreo_reload_result {
  bool applied;       /* the new configuration is in effect */
  size_t nbehaviours; /* applied: behaviours and checks now configured */
  size_t nchecks;
  char **kept; /* applied: settings that need a restart, changed in the
                  file but kept as they were (e.g. "network.listen") */
  size_t nkept;
  char **errors; /* refused: "FILE:LINE:COL: message", one per problem */
  size_t nerrors;
} choreo_reload_result;

/* Ask the agent to read its configuration file (and key file) again.
 * A reload is all or nothing: either everything is applied, or nothing
 * changed and the errors say why. On 0 or CHOREO_EREFUSED the caller owns
 * *out; free it with choreo_reload_free(). Returns 0 when applied,
 * CHOREO_EREFUSED when the agent refused the new configuration
 * ((*out)->errors says why), CHOREO_EPROTO for a reply that is not one,
 * CHOREO_ENOMEM, or a connection error (then *out is NULL). */
CHOREO_EXPORT int choreo_reload(choreo_client *c, choreo_reload_result **out);
CHOREO_EXPORT void choreo_reload_free(choreo_reload_result *r);

/* Fetch this node and every peer. On success the caller owns *out; free it
 * with choreo_status_free(). */
CHOREO_EXPORT int choreo_status_get(choreo_client *c, choreo_status **out);
CHOREO_EXPORT void choreo_status_free(choreo_status *st);
/* The same as the JSON document of `choreo status --json`; caller frees. */
CHOREO_EXPORT int choreo_status_json(choreo_client *c, char **out);

/* Stream events: cb is called once per event, in order, until it returns
 * non-zero (that value is returned) or the connection ends (CHOREO_ECLOSED).
 * The event's strings live only during the call. Blocks; no timeout. */
typedef int (*choreo_watch_cb)(const choreo_event *ev, void *arg);
CHOREO_EXPORT int choreo_watch(choreo_client *c, choreo_watch_cb cb, void *arg);

/* Wait until the watched peers satisfy a condition: the node `node` (if
 * not NULL) or the members of `group`, any (all=false) or all (all=true) in
 * `state`. state may be a comma-separated list ("ready,degraded", at most
 * CHOREO_WAIT_STATES_MAX): a node in any of them counts. Returns 0 when it
 * holds, CHOREO_ETIMEDOUT after timeout_ms (negative: forever),
 * CHOREO_EINVAL for a list with an invalid or empty state or too many. */
CHOREO_EXPORT int choreo_wait(choreo_client *c, const char *node,
                              const char *group, bool all, const char *state,
                              int64_t timeout_ms);

/* As choreo_watch(), but first cb is called once per node known now,
 * this node first, with event "snapshot", previous "" and time the unix
 * ms since when the node is in its state. The stream is started before
 * the snapshot is taken (on a second connection to the same socket), so
 * no change in between is missed: an event may repeat what the snapshot
 * showed, never the other way round. Returns as choreo_watch(). */
CHOREO_EXPORT int choreo_watch_snapshot(choreo_client *c, choreo_watch_cb cb,
                                        void *arg);

/* Mark the member named node left in this agent's view now (choreo(1),
 * "force-leave"), for a node that is gone for good, instead of waiting
 * for network.reap_after. A member that is alive is refused unless
 * force. Returns 0, or CHOREO_EREFUSED with *error (if not NULL, owned by
 * the caller) saying why: not a member, left already, or alive. */
CHOREO_EXPORT int choreo_force_leave(choreo_client *c, const char *node,
                                     bool force, char **error);

/* choreo_set() for a while: the declared state returns to the one
 * declared before (before the first of several in a row) after for_ms
 * (1 ms to a year), unless set again; the agent keeps the expiry across
 * restarts. for_ms 0 is choreo_set(). Returns as choreo_set(). */
CHOREO_EXPORT int choreo_set_for(choreo_client *c, const char *state,
                                 const char *reason, const choreo_kv *data,
                                 size_t ndata, uint64_t for_ms, char **error);

/* Hand a revocation to the agent (choreo(1), "revoke"): revocation_json
 * is the JSON object an operator signed (`choreo cert revoke`), sent as
 * it is; the agent checks its signature against its trusted operator keys,
 * keeps it in state_dir and passes it on to its peers. On 0, *node_out (if
 * not NULL; owned by the caller, free()) is the node whose certificate is
 * revoked ("" when the revocation names only a serial) and *new_out (if
 * not NULL) says whether the agent did not know it yet. Returns 0,
 * CHOREO_EINVAL when revocation_json is not a JSON object, CHOREO_EREFUSED
 * with *error (if not NULL, owned by the caller) saying why the agent
 * refused it (a bad signature, an operator it does not trust, identity
 * off), CHOREO_EPROTO for a reply without node or new, or a connection
 * error. */
CHOREO_EXPORT int choreo_revoke(choreo_client *c, const char *revocation_json,
                                char **node_out, bool *new_out, char **error);

/* The most states choreo_wait() takes in one comma-separated list. */
#define CHOREO_WAIT_STATES_MAX 16

#ifdef __cplusplus
}
#endif
#endif /* CHOREO_H */
