/*
 * runner.h — runs behaviour and check scripts as child processes.
 *
 * No shell: argv is executed directly, in its own session and process
 * group (UV_PROCESS_DETACHED), with the environment given, the input
 * written to its stdin (then closed; a script that never reads it is fine),
 * and stdout/stderr logged line by line, prefixed with the job's name. Per
 * run at most RUNNER_LOG_LINES lines and RUNNER_LOG_BYTES bytes are logged;
 * the excess is read, dropped and counted. A run that outlives its timeout
 * gets SIGTERM on its whole group, then SIGKILL after RUNNER_KILL_GRACE_MS.
 * A failed run is retried `retries` times with exponential backoff. A run
 * that could not even start for want of a resource (EMFILE, ENFILE, EAGAIN,
 * ENOMEM: descriptors or processes exhausted, perhaps by an attacker) is
 * retried with the same backoff until it starts, without using up its
 * retries: an action is never lost to a transient shortage. At most
 * max_running scripts run at once; the others wait in FIFO order.
 *
 * Escapees: a script can leave its process group (setsid, a double fork
 * into a new session) and so outlive a kill of the group. The runner makes
 * the agent a child subreaper (PR_SET_CHILD_SUBREAPER), so that whatever a
 * script leaves behind is re-parented to the agent instead of init. When a
 * run is stopped (timeout or close), every process it started is signalled
 * with its group: its descendants, found through /proc, and the orphans
 * re-parented to the agent since the run started that belong to no other
 * run. Orphans that exit are reaped on SIGCHLD with waitid(P_PID) on their
 * own pid, never waitpid(-1), which would steal libuv's children.
 *
 * Another user (run_as): a job with a user runs with its uid and primary
 * gid (UV_PROCESS_SETUID | UV_PROCESS_SETGID; libuv drops the
 * supplementary groups) and HOME, USER and LOGNAME set for it. Before
 * each try its script file and the directories above it are checked again
 * (config_script_trust()): a file someone else could have changed since
 * the configuration was loaded is not run; the try fails as REFUSED,
 * with the reason in the log, and is retried as failures are.
 */
#ifndef CHOREO_RUNNER_H
#define CHOREO_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "metrics.h"

#define RUNNER_LOG_LINES 200
#define RUNNER_LOG_BYTES (64 * 1024)
#define RUNNER_LINE_MAX 1024 /* longer lines are split */
#define RUNNER_KILL_GRACE_MS 2000
#define RUNNER_BACKOFF_MS 200 /* first retry delay; doubles each try */
#define RUNNER_BACKOFF_MAX_MS 10000
#define RUNNER_QUEUE_MAX 4096 /* jobs waiting; more are refused */
#define RUNNER_PROC_MAX 65536 /* processes looked at in one /proc scan */
#define RUNNER_LINGER_MS                                                       \
  200 /* after exit, wait this long for the                                    \
         rest of the output */

#define RUNNER_RESULT_MAP(XX)                                                  \
  XX(OK, "ok")                     /* exit status 0 */                         \
  XX(EXIT, "exited non-zero")      /* status is the exit code */               \
  XX(SIGNAL, "killed by a signal") /* status is the signal */                  \
  XX(TIMEOUT, "timed out")                                                     \
  XX(SPAWN, "could not start") /* status is the negated errno */               \
  XX(CANCELLED, "cancelled")   /* the runner was closed first */               \
  XX(WITHDRAWN, "withdrawn before it started") /* runner_withdraw() */         \
  XX(REFUSED, "refused: the script file is not trusted") /* run_as */

enum runner_result {
#define XX(id, s) RUNNER_##id,
  RUNNER_RESULT_MAP(XX)
#undef XX
};

struct runner_spec {
  uint64_t tag;      /* the caller's id for this job */
  const char *name;  /* log prefix, e.g. the behaviour's name */
  char *const *argv; /* NULL-terminated; argv[0] a path, or a name
                        looked up in PATH */
  char *const *env;  /* NULL-terminated "K=V" entries: the whole
                        environment of the child */
  const char *input; /* written to stdin; may be NULL */
  size_t input_len;
  uint64_t timeout_ms; /* 0: none */
  unsigned retries;
  bool quiet;                     /* stdout only at debug level (checks, which
                                     run every few seconds); stderr as always */
  const struct config_user *user; /* run as this user; NULL or !set:
                                     the agent's own (copied) */
};

/* started: a try of job `tag` has just been spawned (attempt 0 first).
 * done: the job is over, after its retries; called exactly once per job
 * that runner_submit() accepted. */
typedef void (*runner_started_fn)(void *arg, uint64_t tag, unsigned attempt);
typedef void (*runner_done_fn)(void *arg, uint64_t tag, enum runner_result res,
                               int status);

struct runner_job; /* private */

struct runner {
  uv_loop_t *loop;
  unsigned max_running;
  struct metrics *metrics; /* borrowed; counters updated here */
  runner_started_fn started;
  runner_done_fn done;
  void *arg;
  struct runner_job *jobs; /* every job not yet done; private list */
  size_t running, queued;
  uv_signal_t sigchld; /* reaps orphans (see above); from the first submit */
  bool reaping;        /* sigchld is initialised and not closed yet */
  bool closing;
  void (*close_cb)(struct runner *r);
};

/* Prepare a runner (no I/O). */
void runner_init(struct runner *r, uv_loop_t *loop, unsigned max_running,
                 struct metrics *m, runner_started_fn started,
                 runner_done_fn done, void *arg);

/* Queue a job; spec and everything it points to are copied. Returns 0, or
 * CHOREO_EINVAL (empty argv), CHOREO_ENOMEM, CHOREO_ETOOBIG (queue full),
 * CHOREO_ECLOSED (closing); on error done is never called for it. */
int runner_submit(struct runner *r, const struct runner_spec *spec);

/* Stop: queued and retry-waiting jobs end as CANCELLED, running ones get
 * SIGTERM on their group (SIGKILL after the grace) and end as CANCELLED.
 * cb runs once every handle is closed; the runner's memory may be freed
 * then. Calling it again is a no-op. */
void runner_close(struct runner *r, void (*cb)(struct runner *r));

/* Withdraw job `tag` if none of its tries has started yet (it waits for a
 * slot, or to try again after a start failure): it ends as WITHDRAWN,
 * from the loop. Returns 0, CHOREO_ENOTFOUND (no such job, or it is ending
 * already) or CHOREO_EEXISTS (a try has started: its result stands). */
int runner_withdraw(struct runner *r, uint64_t tag);

const char *runner_result_name(enum runner_result res);

#endif
