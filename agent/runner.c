/*
 * runner.c — runs behaviour and check scripts as child processes; runner.h
 * holds the contract.
 *
 * A job (struct runner_job) lives from runner_submit() until its done
 * callback: it waits in the FIFO, runs one try after another and waits out
 * the backoff between them. A try (struct runner_try) owns the handles of
 * one child: the process, its three pipes and two timers. It is freed once
 * every one of them is closed, and only then does the job go on (retry or
 * end), so a job never has two tries at once and no handle outlives its
 * memory. The job's own timer first defers the start (runner_submit never
 * spawns nor calls back), then times the backoff; the done callback runs
 * from its close callback.
 *
 * Memory stays bounded whatever a script prints: each output stream has one
 * read buffer and one line buffer, and beyond the per-try log budget the
 * bytes are only counted.
 *
 * Escapees and orphans: the agent is a child subreaper (from the first
 * job on), so processes a script moves out of its group stay below the
 * agent. Stopping a try signals them with its group (signal_escaped: a
 * scan of /proc); re-parented orphans that exit are reaped by their own
 * pid on SIGCHLD (reap_orphans), skipping every pid that is a process
 * handle of the loop: those are libuv's to wait for.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "choreo.h"
#include "log.h"
#include "runner.h"
#include "util.h"

#define RUNNER_READ_BUF 16384 /* one read from a child's stdout or stderr */

enum job_state {
  JOB_QUEUED,  /* waiting for a slot (r->queued counts it) */
  JOB_RUNNING, /* holds a slot; a try is under way or closing */
  JOB_BACKOFF, /* between two tries; holds no slot */
  JOB_ENDING   /* its timer is closing; done comes next */
};

struct stream {
  uv_pipe_t pipe;
  struct runner_try *t;
  bool is_err;
  bool eof;
  size_t len; /* bytes of the current line in line[] */
  char line[RUNNER_LINE_MAX + 1];
  char buf[RUNNER_READ_BUF];
};

struct runner_try {
  struct runner_job *j;
  uv_process_t proc;
  uv_pipe_t in;
  struct stream out, err;
  uv_write_t write_req;
  uv_timer_t timer;  /* the timeout, then the kill grace */
  uv_timer_t linger; /* after the exit, for the rest of the output */
  unsigned pending;  /* initialised handles not closed yet */
  int spawn_err;
  bool exited, finished, term_sent, timed_out, cancelled, over_budget;
  int64_t exit_status;
  int term_signal;
  size_t log_lines, log_bytes;
  uint64_t dropped;
  uint64_t start_ticks; /* the script's start time (/proc), 0: unknown */
};

struct runner_job {
  struct runner *r;
  struct runner_job *next, *prev; /* r->jobs; the head's prev is the tail */
  enum job_state state;
  bool holds_slot;
  uint64_t tag;
  char *name;
  char **argv, **env;
  char *input;
  size_t input_len;
  uint64_t timeout_ms;
  unsigned retries, attempt;
  unsigned spawn_fails; /* transient start failures in a row */
  bool ever_started;    /* a try of it has been spawned */
  bool quiet;
  bool as_user; /* run_as: uid and gid below */
  uint32_t uid, gid;
  uv_timer_t timer; /* the deferred start, then the retry backoff */
  struct runner_try *run;
  enum runner_result res;
  int status;
};

static void pump(struct runner *r);
static void reaper_start(struct runner *r);
static void reap_orphans(struct runner *r);
static void job_after_try(struct runner_job *j, enum runner_result res,
                          int status);

const char *runner_result_name(enum runner_result res) {
  switch (res) {
#define XX(id, s)                                                              \
  case RUNNER_##id:                                                            \
    return s;
    RUNNER_RESULT_MAP(XX)
#undef XX
  }
  return "unknown";
}

/* ---- the job list: every job not yet done, in FIFO order ---- */

static void list_append(struct runner *r, struct runner_job *j) {
  j->next = NULL;
  if (r->jobs == NULL) {
    j->prev = j;
    r->jobs = j;
    return;
  }
  j->prev = r->jobs->prev;
  r->jobs->prev->next = j;
  r->jobs->prev = j;
}

static void list_remove(struct runner *r, struct runner_job *j) {
  if (j == r->jobs) {
    r->jobs = j->next;
    if (r->jobs != NULL)
      r->jobs->prev = j->prev;
    return;
  }
  j->prev->next = j->next;
  if (j->next != NULL)
    j->next->prev = j->prev;
  else
    r->jobs->prev = j->prev;
}

static struct runner_job *first_queued(struct runner *r) {
  for (struct runner_job *j = r->jobs; j != NULL; j = j->next) {
    if (j->state == JOB_QUEUED)
      return j;
  }
  return NULL;
}

static void set_gauges(struct runner *r) {
  r->metrics->runs_running = (int64_t)r->running;
  r->metrics->runs_queued = (int64_t)r->queued;
}

static void slot_release(struct runner_job *j) {
  if (!j->holds_slot)
    return;
  j->holds_slot = false;
  j->r->running--;
  set_gauges(j->r);
}

/* ---- copying a spec ---- */

/* *out stays NULL when v is NULL. */
static int strv_dup(char *const *v, char ***out) {
  size_t n = 0;
  char **copy;

  *out = NULL;
  if (v == NULL)
    return 0;
  while (v[n] != NULL)
    n++;
  copy = calloc(n + 1, sizeof(*copy));
  if (copy == NULL)
    return CHOREO_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if ((copy[i] = strdup(v[i])) == NULL) {
      util_strv_free(copy);
      return CHOREO_ENOMEM;
    }
  }
  *out = copy;
  return 0;
}

/* "KEY=value", owned by the caller; NULL when out of memory. */
static char *env_entry(const char *key, const char *value) {
  size_t len = strlen(key) + 1 + strlen(value) + 1;
  char *e = malloc(len);
  if (e != NULL)
    snprintf(e, len, "%s=%s", key, value);
  return e;
}

/* The environment of a job run as user u: env (this process's when NULL)
 * less its HOME, USER and LOGNAME, then those of u. */
static int env_for_user(char *const *env, const struct config_user *u,
                        char ***out) {
  extern char **environ;
  char *const *from = env != NULL ? env : environ;
  size_t n = 0, k = 0;
  char **v;

  while (from[n] != NULL)
    n++;
  if ((v = calloc(n + 4, sizeof(*v))) == NULL)
    return CHOREO_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (strncmp(from[i], "HOME=", 5) == 0 ||
        strncmp(from[i], "USER=", 5) == 0 ||
        strncmp(from[i], "LOGNAME=", 8) == 0)
      continue;
    if ((v[k++] = strdup(from[i])) == NULL)
      goto fail;
  }
  if ((v[k++] = env_entry("HOME", u->home)) == NULL ||
      (v[k++] = env_entry("USER", u->name)) == NULL ||
      (v[k++] = env_entry("LOGNAME", u->name)) == NULL)
    goto fail;
  *out = v;
  return 0;
fail:
  util_strv_free(v);
  return CHOREO_ENOMEM;
}

/* Accepts a half-built job. */
static void job_free(struct runner_job *j) {
  if (j == NULL)
    return;
  free(j->name);
  util_strv_free(j->argv);
  util_strv_free(j->env);
  free(j->input);
  free(j);
}

static int job_new(struct runner *r, const struct runner_spec *spec,
                   struct runner_job **out) {
  struct runner_job *j = calloc(1, sizeof(*j));
  const char *name = spec->name != NULL ? spec->name : spec->argv[0];
  int rv = CHOREO_ENOMEM;

  if (j == NULL)
    goto fail;
  j->r = r;
  j->tag = spec->tag;
  j->timeout_ms = spec->timeout_ms;
  j->retries = spec->retries;
  j->quiet = spec->quiet;
  if ((j->name = strdup(name)) == NULL)
    goto fail;
  j->as_user = spec->user != NULL && spec->user->set;
  if (j->as_user) {
    j->uid = spec->user->uid;
    j->gid = spec->user->gid;
  }
  if ((rv = strv_dup(spec->argv, &j->argv)) != 0 ||
      (rv = j->as_user ? env_for_user(spec->env, spec->user, &j->env)
                       : strv_dup(spec->env, &j->env)) != 0)
    goto fail;
  if (spec->input_len > 0) {
    rv = CHOREO_ENOMEM;
    if ((j->input = malloc(spec->input_len)) == NULL)
      goto fail;
    memcpy(j->input, spec->input, spec->input_len);
    j->input_len = spec->input_len;
  }
  *out = j;
  return 0;

fail:
  job_free(j);
  return rv;
}

/* ---- runner lifecycle ---- */

void runner_init(struct runner *r, uv_loop_t *loop, unsigned max_running,
                 struct metrics *m, runner_started_fn started,
                 runner_done_fn done, void *arg) {
  assert(m != NULL);
  memset(r, 0, sizeof(*r));
  r->loop = loop;
  r->max_running = max_running > 0 ? max_running : 1;
  r->metrics = m;
  r->started = started;
  r->done = done;
  r->arg = arg;
  set_gauges(r);
}

static void on_kick(uv_timer_t *timer) {
  pump(container_of(timer, struct runner_job, timer)->r);
}

int runner_submit(struct runner *r, const struct runner_spec *spec) {
  struct runner_job *j = NULL;
  int rv;

  if (r->closing)
    return CHOREO_ECLOSED;
  if (spec == NULL || spec->argv == NULL || spec->argv[0] == NULL ||
      spec->argv[0][0] == '\0' || (spec->input == NULL && spec->input_len))
    return CHOREO_EINVAL;
  /* uv_buf_t holds an unsigned int length. */
  if (r->queued >= RUNNER_QUEUE_MAX || spec->input_len > UINT_MAX)
    return CHOREO_ETOOBIG;
  if ((rv = job_new(r, spec, &j)) != 0)
    goto fail;
  reaper_start(r);
  if ((rv = uv_timer_init(r->loop, &j->timer)) != 0)
    goto fail;
  /* Start from the loop, never from inside this call: the caller may not
   * expect its callbacks yet. Cannot fail on a fresh timer. */
  uv_timer_start(&j->timer, on_kick, 0, 0);
  j->state = JOB_QUEUED;
  list_append(r, j);
  r->queued++;
  set_gauges(r);
  return 0;

fail:
  job_free(j);
  return rv;
}

/* ---- signals to a child's process group ---- */

static void signal_group(struct runner_try *t, int sig) {
  /* The child leads its own session and group (UV_PROCESS_DETACHED), so
   * -pid reaches it and everything it started that did not leave. */
  if (t->proc.pid <= 0)
    return;
  if (kill(-t->proc.pid, sig) != 0 && errno != ESRCH)
    log_warn("%s: cannot signal process group %d: %s", t->j->name,
             (int)t->proc.pid, strerror(errno));
}

/* ---- escapees: what a script moved out of its group ---- */

struct proc_entry {
  pid_t pid, ppid, pgrp;
  char state;
  uint64_t start_ticks;
};

struct proc_table {
  struct proc_entry *v;
  size_t n;
};

/* Fields of /proc/PID/stat after the command, which may itself hold
 * spaces and parentheses: state ppid pgrp session ... starttime (22nd). */
static bool proc_read(pid_t pid, struct proc_entry *e) {
  char path[64], buf[1024];
  const char *p;
  unsigned long long start = 0;
  int ppid, pgrp, fd, field;
  ssize_t n;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return false;
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  if ((p = strrchr(buf, ')')) == NULL ||
      sscanf(p + 1, " %c %d %d", &e->state, &ppid, &pgrp) != 3)
    return false;
  /* starttime is the 20th field after the command. */
  for (field = 0; *p != '\0' && field < 20; p++)
    if (*p == ' ')
      field++;
  if (field < 20 || sscanf(p, "%llu", &start) != 1)
    return false;
  e->pid = pid;
  e->ppid = (pid_t)ppid;
  e->pgrp = (pid_t)pgrp;
  e->start_ticks = start;
  return true;
}

/* Every process of the system, up to RUNNER_PROC_MAX. 0 or CHOREO_ENOMEM,
 * or a negated errno when /proc can't be read. */
static int proc_scan(struct proc_table *pt) {
  DIR *d = opendir("/proc");
  size_t cap = 0;
  struct dirent *de;
  int rv = 0;

  pt->v = NULL;
  pt->n = 0;
  if (d == NULL)
    return -errno;
  while ((de = readdir(d)) != NULL && pt->n < RUNNER_PROC_MAX) {
    char *end;
    long pid = strtol(de->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid > INT_MAX)
      continue;
    if (pt->n == cap) {
      size_t ncap = cap == 0 ? 256 : cap * 2;
      struct proc_entry *v = realloc(pt->v, ncap * sizeof(*v));
      if (v == NULL) {
        rv = CHOREO_ENOMEM;
        break;
      }
      pt->v = v;
      cap = ncap;
    }
    if (proc_read((pid_t)pid, &pt->v[pt->n]))
      pt->n++;
  }
  closedir(d);
  return rv;
}

/* The pids of every process handle of the loop: libuv's own children,
 * which only libuv may wait for. */
struct uv_pids {
  pid_t v[64];
  size_t n;
  bool overflow;
};

static void walk_pids(uv_handle_t *h, void *arg) {
  struct uv_pids *p = arg;
  if (h->type != UV_PROCESS)
    return;
  if (p->n < ARRAY_SIZE(p->v))
    p->v[p->n++] = ((uv_process_t *)h)->pid;
  else
    p->overflow = true;
}

static bool is_libuv_child(const struct uv_pids *p, pid_t pid) {
  for (size_t i = 0; i < p->n; i++)
    if (p->v[i] == pid)
      return true;
  return p->overflow; /* unsure: leave it to libuv */
}

/* Is e in the tree below root (root excluded)? */
static bool descends_from(const struct proc_table *pt,
                          const struct proc_entry *e, pid_t root) {
  pid_t ppid = e->ppid;
  /* Bounded walk: a table read while processes come and go may hold a
   * cycle of recycled pids. */
  for (size_t hops = 0; hops < pt->n && ppid > 1; hops++) {
    const struct proc_entry *up = NULL;
    if (ppid == root)
      return true;
    for (size_t i = 0; i < pt->n && up == NULL; i++)
      if (pt->v[i].pid == ppid)
        up = &pt->v[i];
    if (up == NULL)
      return false;
    ppid = up->ppid;
  }
  return false;
}

/* Does e belong to the run t: below its script, or an orphan re-parented
 * to the agent since t started, that no other running script claims? */
static bool escaped_from(const struct proc_table *pt,
                         const struct proc_entry *e, struct runner_try *t,
                         const struct uv_pids *uvp) {
  pid_t self = getpid();

  /* What stayed in the group gets the group's signal already. */
  if (e->pid == t->proc.pid || e->pid == self || e->state == 'Z' ||
      e->pgrp == t->proc.pid)
    return false;
  if (descends_from(pt, e, t->proc.pid))
    return true;
  if (e->ppid != self || is_libuv_child(uvp, e->pid) || t->start_ticks == 0 ||
      e->start_ticks < t->start_ticks)
    return false;
  for (struct runner_job *o = t->j->r->jobs; o != NULL; o = o->next) {
    if (o->run != NULL && o->run != t && o->run->proc.pid > 0 &&
        o->run->start_ticks != 0 && o->run->start_ticks <= e->start_ticks &&
        !o->run->exited)
      return false; /* another live run may have left it: not ours */
  }
  return true;
}

/* Send sig to every process that left t's group but belongs to t. */
static void signal_escaped(struct runner_try *t, int sig) {
  struct runner *r = t->j->r;
  struct proc_table pt;
  struct uv_pids uvp = {.n = 0};
  int rv;

  if (t->proc.pid <= 0)
    return;
  if ((rv = proc_scan(&pt)) != 0) {
    log_warn("%s: cannot look for processes that left its group: %s",
             t->j->name, choreo_strerror(rv));
    free(pt.v);
    return;
  }
  uv_walk(r->loop, walk_pids, &uvp);
  for (size_t i = 0; i < pt.n; i++) {
    const struct proc_entry *e = &pt.v[i];
    if (!escaped_from(&pt, e, t, &uvp))
      continue;
    if (kill(e->pid, sig) != 0)
      continue; /* gone already */
    if (sig == SIGTERM)
      r->metrics->escapees_killed++;
    log_warn("%s: process %d outside its group, sent %s", t->j->name,
             (int)e->pid, sig == SIGKILL ? "SIGKILL" : "SIGTERM");
  }
  free(pt.v);
}

/* Wait for pid unless libuv owns it; counts what was reaped. */
static void reap_one(struct runner *r, const struct uv_pids *uvp, pid_t pid) {
  siginfo_t info;

  if (is_libuv_child(uvp, pid))
    return;
  memset(&info, 0, sizeof(info));
  if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG) == 0 &&
      info.si_pid == pid) {
    r->metrics->orphans_reaped++;
    log_debug("reaped process %d left behind by a script", (int)pid);
  }
}

/* Our children as the kernel lists them (/proc/self/task/PID/children:
 * orphans are re-parented to the main thread, which also spawns the
 * scripts), into pids; returns how many, or -1 where the kernel has no
 * such file. O(children), not O(processes): this runs at every SIGCHLD. */
static int own_children(pid_t *pids, size_t max) {
  char path[64], buf[4096];
  ssize_t len;
  size_t n = 0;
  int fd;

  snprintf(path, sizeof(path), "/proc/self/task/%d/children", (int)getpid());
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return -1;
  len = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (len < 0)
    return -1;
  buf[len] = '\0';
  for (char *p = buf, *end; n < max; p = end) {
    long pid = strtol(p, &end, 10);
    if (end == p)
      break;
    if (pid > 0 && pid <= INT_MAX)
      pids[n++] = (pid_t)pid;
  }
  return (int)n;
}

/* Zombies re-parented to us (we are a subreaper) that libuv doesn't own:
 * wait for each by its own pid. */
static void reap_orphans(struct runner *r) {
  struct proc_table pt;
  struct uv_pids uvp = {.n = 0};
  pid_t self = getpid(), kids[512];
  int nkids = own_children(kids, ARRAY_SIZE(kids));

  uv_walk(r->loop, walk_pids, &uvp);
  if (nkids >= 0 && (size_t)nkids < ARRAY_SIZE(kids)) {
    for (int i = 0; i < nkids; i++)
      reap_one(r, &uvp, kids[i]);
    return;
  }
  /* No children file (or more children than it read): the whole table. */
  if (proc_scan(&pt) != 0) {
    free(pt.v);
    return;
  }
  for (size_t i = 0; i < pt.n; i++)
    if (pt.v[i].ppid == self && pt.v[i].state == 'Z')
      reap_one(r, &uvp, pt.v[i].pid);
  free(pt.v);
}

static void on_sigchld(uv_signal_t *h, int signum) {
  /* libuv has its own watcher for SIGCHLD and waits for its children;
   * this one only looks for the others. */
  reap_orphans(container_of(h, struct runner, sigchld));
}

/* Become a subreaper and watch for orphans, once, at the first job. A
 * failure costs only the reaping: scripts still run. */
static void reaper_start(struct runner *r) {
  if (r->reaping)
    return;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
    log_warn("cannot become a subreaper: processes scripts move out of "
             "their group will escape timeouts: %s",
             strerror(errno));
  if (uv_signal_init(r->loop, &r->sigchld) != 0)
    return;
  r->reaping = true;
  if (uv_signal_start(&r->sigchld, on_sigchld, SIGCHLD) != 0)
    log_warn("cannot watch SIGCHLD: orphans of scripts won't be reaped");
  /* The agent's lifetime is not the reaper's business. */
  uv_unref((uv_handle_t *)&r->sigchld);
}

static uint64_t proc_start_ticks(pid_t pid) {
  struct proc_entry e;
  return proc_read(pid, &e) ? e.start_ticks : 0;
}

static void on_timer(uv_timer_t *timer);

static void term_group(struct runner_try *t) {
  t->term_sent = true;
  signal_escaped(t, SIGTERM);
  signal_group(t, SIGTERM);
  uv_timer_start(&t->timer, on_timer, RUNNER_KILL_GRACE_MS, 0);
}

static void on_timer(uv_timer_t *timer) {
  struct runner_try *t = container_of(timer, struct runner_try, timer);
  struct runner_job *j = t->j;

  if (t->term_sent) {
    log_warn("%s: still running %d ms after SIGTERM, sending SIGKILL", j->name,
             RUNNER_KILL_GRACE_MS);
    signal_escaped(t, SIGKILL);
    signal_group(t, SIGKILL);
    return;
  }
  t->timed_out = true;
  j->r->metrics->runs_timed_out++;
  log_warn("%s: timed out after %" PRIu64 " ms, stopping its process group",
           j->name, j->timeout_ms);
  term_group(t);
}

/* ---- output: bounded lines, a byte and line budget per try ---- */

static void drop(struct runner_try *t, size_t n) {
  t->dropped += n;
  t->j->r->metrics->output_dropped_bytes += n;
}

/* Keep the log one line per line and free of terminal escapes. */
static void sanitize(char *s, size_t *len) {
  if (*len > 0 && s[*len - 1] == '\r')
    (*len)--;
  s[*len] = '\0';
  for (size_t i = 0; i < *len; i++) {
    unsigned char c = (unsigned char)s[i];
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      s[i] = '?';
  }
}

/* Log the buffered line; nl is 1 when a newline ended it. */
static void line_emit(struct stream *s, size_t nl) {
  struct runner_try *t = s->t;
  size_t n = s->len;

  s->len = 0;
  if (t->over_budget || t->log_lines >= RUNNER_LOG_LINES ||
      t->log_bytes + n > RUNNER_LOG_BYTES) {
    t->over_budget = true;
    drop(t, n + nl);
    return;
  }
  t->log_lines++;
  t->log_bytes += n;
  sanitize(s->line, &n);
  if (s->is_err)
    log_warn("%s: %s", t->j->name, s->line);
  else if (t->j->quiet)
    log_debug("%s: %s", t->j->name, s->line);
  else
    log_info("%s: %s", t->j->name, s->line);
}

static void stream_consume(struct stream *s, const char *p, size_t n) {
  while (n > 0) {
    const char *nl;
    size_t len, take;

    if (s->t->over_budget) {
      drop(s->t, n);
      return;
    }
    nl = memchr(p, '\n', n);
    len = nl != NULL ? (size_t)(nl - p) : n;
    take = RUNNER_LINE_MAX - s->len;
    take = len < take ? len : take;
    memcpy(s->line + s->len, p, take);
    s->len += take;
    p += take;
    n -= take;
    if (take < len) {
      line_emit(s, 0); /* full: split the line */
    } else if (nl != NULL) {
      line_emit(s, 1);
      p++;
      n--;
    }
  }
}

static void stream_flush(struct stream *s) {
  if (s->len > 0)
    line_emit(s, 0);
}

/* ---- the end of a try ---- */

static void try_closed(struct runner_try *t);

static void try_unref(struct runner_try *t) {
  assert(t->pending > 0);
  if (--t->pending == 0)
    try_closed(t);
}

static void on_proc_closed(uv_handle_t *h) {
  try_unref(container_of(h, struct runner_try, proc));
}

static void on_in_closed(uv_handle_t *h) {
  try_unref(container_of(h, struct runner_try, in));
}

static void on_stream_closed(uv_handle_t *h) {
  try_unref(container_of(h, struct stream, pipe)->t);
}

static void on_timer_closed(uv_handle_t *h) {
  try_unref(container_of(h, struct runner_try, timer));
}

static void on_linger_closed(uv_handle_t *h) {
  try_unref(container_of(h, struct runner_try, linger));
}

/* A handle that was never initialised has no loop (the try is calloc'ed). */
static void close_once(uv_handle_t *h, uv_close_cb cb) {
  if (h->loop != NULL && !uv_is_closing(h))
    uv_close(h, cb);
}

static void try_finish(struct runner_try *t) {
  if (t->finished)
    return;
  t->finished = true;
  stream_flush(&t->out);
  stream_flush(&t->err);
  if (t->dropped > 0)
    log_warn("%s: output truncated: %" PRIu64 " more bytes dropped", t->j->name,
             t->dropped);
  /* The leader is gone; whatever of its group survived SIGTERM and let go
   * of the output goes now rather than outlive the runner's interest. */
  if (t->term_sent) {
    signal_escaped(t, SIGKILL);
    signal_group(t, SIGKILL);
  }
  close_once((uv_handle_t *)&t->in, on_in_closed);
  close_once((uv_handle_t *)&t->out.pipe, on_stream_closed);
  close_once((uv_handle_t *)&t->err.pipe, on_stream_closed);
  close_once((uv_handle_t *)&t->timer, on_timer_closed);
  close_once((uv_handle_t *)&t->linger, on_linger_closed);
  close_once((uv_handle_t *)&t->proc, on_proc_closed);
}

static bool try_drained(const struct runner_try *t) {
  return t->out.eof && t->err.eof;
}

static void stream_end(struct stream *s) {
  struct runner_try *t = s->t;

  s->eof = true;
  stream_flush(s);
  close_once((uv_handle_t *)&s->pipe, on_stream_closed);
  if (t->exited && try_drained(t))
    try_finish(t);
}

static void on_linger(uv_timer_t *timer) {
  struct runner_try *t = container_of(timer, struct runner_try, linger);

  /* A daemon the script left behind still holds the output: stop
   * listening to it rather than let it hold the job. (After a timeout it
   * is what survived SIGTERM, and try_finish() kills it.) */
  if (!t->term_sent)
    log_warn("%s: exited, but a process it started still holds its output; "
             "no longer reading it",
             t->j->name);
  try_finish(t);
}

static void on_child_exit(uv_process_t *proc, int64_t exit_status,
                          int term_signal) {
  struct runner_try *t = container_of(proc, struct runner_try, proc);

  t->exited = true;
  t->exit_status = exit_status;
  t->term_signal = term_signal;
  uv_timer_stop(&t->timer);
  if (try_drained(t))
    try_finish(t);
  else
    uv_timer_start(&t->linger, on_linger, RUNNER_LINGER_MS, 0);
}

static enum runner_result try_result(const struct runner_try *t, int *status) {
  *status = 0;
  if (t->spawn_err != 0) {
    *status = t->spawn_err;
    return RUNNER_SPAWN;
  }
  if (t->cancelled)
    return RUNNER_CANCELLED;
  if (t->timed_out)
    return RUNNER_TIMEOUT;
  if (t->term_signal != 0) {
    *status = t->term_signal;
    return RUNNER_SIGNAL;
  }
  if (t->exit_status != 0) {
    *status = (int)t->exit_status;
    return RUNNER_EXIT;
  }
  return RUNNER_OK;
}

static void try_closed(struct runner_try *t) {
  struct runner_job *j = t->j;
  int status;
  enum runner_result res = try_result(t, &status);

  j->run = NULL;
  free(t);
  job_after_try(j, res, status);
}

/* ---- the start of a try ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct stream *s = container_of(h, struct stream, pipe);
  (void)hint; /* one fixed buffer per stream keeps memory bounded */
  buf->base = s->buf;
  buf->len = sizeof(s->buf);
}

static void on_read(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf) {
  struct stream *s = container_of(h, struct stream, pipe);

  if (nread > 0)
    stream_consume(s, buf->base, (size_t)nread);
  else if (nread < 0)
    stream_end(s); /* EOF, or an error that ends the stream alike */
}

static void on_written(uv_write_t *req, int status) {
  struct runner_try *t = container_of(req, struct runner_try, write_req);

  /* EPIPE: the script exited or closed stdin without reading it all;
   * ECANCELED: the try ended first. Neither is the script's failure. */
  if (status != 0 && status != UV_ECANCELED)
    log_debug("%s: input not fully read: %s", t->j->name, uv_strerror(status));
  close_once((uv_handle_t *)&t->in, on_in_closed);
}

static void write_input(struct runner_try *t) {
  struct runner_job *j = t->j;
  uv_buf_t buf = uv_buf_init(j->input, (unsigned int)j->input_len);
  int rv;

  if (j->input_len == 0)
    goto close;
  rv = uv_write(&t->write_req, (uv_stream_t *)&t->in, &buf, 1, on_written);
  if (rv == 0)
    return;
  log_debug("%s: cannot write input: %s", j->name, uv_strerror(rv));
close:
  /* Closing our end is the script's end of input. */
  close_once((uv_handle_t *)&t->in, on_in_closed);
}

static void read_output(struct stream *s) {
  int rv = uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read);
  if (rv != 0) {
    log_warn("%s: cannot read output: %s", s->t->j->name, uv_strerror(rv));
    stream_end(s);
  }
}

static void try_begin(struct runner_try *t) {
  struct runner_job *j = t->j;
  struct runner *r = j->r;

  r->metrics->runs_started++;
  j->spawn_fails = 0;
  j->ever_started = true;
  t->start_ticks = proc_start_ticks(t->proc.pid);
  log_debug("%s: started %s (pid %d, try %u)", j->name, j->argv[0],
            (int)t->proc.pid, j->attempt + 1);
  write_input(t);
  read_output(&t->out);
  read_output(&t->err);
  if (j->timeout_ms > 0)
    uv_timer_start(&t->timer, on_timer, j->timeout_ms, 0);
  /* Last: the callback may close the runner. */
  if (r->started != NULL)
    r->started(r->arg, j->tag, j->attempt);
}

static void try_spawn_failed(struct runner_try *t, int err) {
  t->spawn_err = err;
  log_error("%s: cannot run %s: %s", t->j->name, t->j->argv[0],
            choreo_strerror(err));
  if (uv_is_active((uv_handle_t *)&t->proc)) {
    /* exec() worked but libuv could not open a stdio stream: the child
     * runs without us listening; stop it and wait for its exit. */
    signal_group(t, SIGKILL);
    t->out.eof = t->err.eof = true;
    close_once((uv_handle_t *)&t->in, on_in_closed);
    close_once((uv_handle_t *)&t->out.pipe, on_stream_closed);
    close_once((uv_handle_t *)&t->err.pipe, on_stream_closed);
    return;
  }
  if (t->pending == 0) {
    /* Not one handle was initialised: nothing to wait for. */
    t->finished = true;
    try_closed(t);
    return;
  }
  try_finish(t);
}

static int try_init_handles(struct runner_try *t, uv_loop_t *loop) {
  uv_pipe_t *pipes[] = {&t->in, &t->out.pipe, &t->err.pipe};
  uv_timer_t *timers[] = {&t->timer, &t->linger};
  int rv;

  for (size_t i = 0; i < ARRAY_SIZE(pipes); i++) {
    if ((rv = uv_pipe_init(loop, pipes[i], 0)) != 0)
      return rv;
    t->pending++;
  }
  for (size_t i = 0; i < ARRAY_SIZE(timers); i++) {
    if ((rv = uv_timer_init(loop, timers[i])) != 0)
      return rv;
    t->pending++;
  }
  return 0;
}

static int try_spawn(struct runner_try *t) {
  struct runner_job *j = t->j;
  uv_process_options_t opts;
  uv_stdio_container_t stdio[3];
  int rv;

  if ((rv = try_init_handles(t, j->r->loop)) != 0)
    return rv;
  /* The pipe flags are from the child's side. */
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&t->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&t->out.pipe;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&t->err.pipe;
  memset(&opts, 0, sizeof(opts));
  opts.exit_cb = on_child_exit;
  opts.file = j->argv[0];
  opts.args = j->argv;
  opts.env = j->env; /* NULL: this process's environment */
  opts.flags = UV_PROCESS_DETACHED;
  if (j->as_user) {
    opts.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    opts.uid = (uv_uid_t)j->uid;
    opts.gid = (uv_gid_t)j->gid;
  }
  opts.stdio_count = (int)ARRAY_SIZE(stdio);
  opts.stdio = stdio;
  rv = uv_spawn(j->r->loop, &t->proc, &opts);
  /* uv_spawn initialises the handle even when it fails. */
  t->pending++;
  return rv;
}

/* A script run as another user is checked before each try: whoever
 * could change it since the configuration was loaded would run code as
 * that user. */
static bool script_trusted(struct runner_job *j) {
  char why[1024];
  if (config_script_trust(j->argv[0], j->uid, why, sizeof(why)) == 0)
    return true;
  log_error("%s: refusing to run %s as uid %u: %s", j->name, j->argv[0],
            (unsigned)j->uid, why);
  return false;
}

static void try_start(struct runner_job *j) {
  struct runner_try *t = calloc(1, sizeof(*t));
  int rv;

  if (t == NULL) {
    log_error("%s: cannot run %s: %s", j->name, j->argv[0],
              choreo_strerror(UV_ENOMEM));
    job_after_try(j, RUNNER_SPAWN, UV_ENOMEM);
    return;
  }
  if (j->as_user && !script_trusted(j)) {
    free(t);
    job_after_try(j, RUNNER_REFUSED, CHOREO_EREFUSED);
    return;
  }
  t->j = j;
  t->out.t = t->err.t = t;
  t->err.is_err = true;
  j->run = t;
  if ((rv = try_spawn(t)) != 0)
    try_spawn_failed(t, rv);
  else
    try_begin(t);
}

/* ---- the job between and after its tries ---- */

static void pump(struct runner *r) {
  struct runner_job *j;

  while (!r->closing && r->running < r->max_running &&
         (j = first_queued(r)) != NULL) {
    j->state = JOB_RUNNING;
    j->holds_slot = true;
    r->queued--;
    r->running++;
    set_gauges(r);
    try_start(j);
  }
}

static void on_job_closed(uv_handle_t *h) {
  struct runner_job *j = container_of(h, struct runner_job, timer);
  struct runner *r = j->r;
  runner_done_fn done = r->done;
  void *arg = r->arg;
  uint64_t tag = j->tag;
  enum runner_result res = j->res;
  int status = j->status;
  bool others, closing = r->closing;
  void (*close_cb)(struct runner *) = r->close_cb;

  slot_release(j);
  list_remove(r, j);
  others = r->jobs != NULL;
  job_free(j);
  if (done != NULL)
    done(arg, tag, res, status);
  /* Without other jobs, done may have closed the runner and freed it:
   * touch r only when it must still be there. */
  if (others) {
    pump(r);
  } else if (closing && !r->reaping) {
    r->close_cb = NULL;
    if (close_cb != NULL)
      close_cb(r);
  }
}

static void on_sigchld_closed(uv_handle_t *h) {
  struct runner *r = container_of((uv_signal_t *)h, struct runner, sigchld);
  void (*cb)(struct runner *) = r->close_cb;

  r->reaping = false;
  if (r->jobs != NULL)
    return; /* the last job's end calls back */
  r->close_cb = NULL;
  if (cb != NULL)
    cb(r);
}

static void job_end(struct runner_job *j, enum runner_result res, int status) {
  j->state = JOB_ENDING;
  j->res = res;
  j->status = status;
  uv_close((uv_handle_t *)&j->timer, on_job_closed);
}

static void on_backoff(uv_timer_t *timer) {
  struct runner_job *j = container_of(timer, struct runner_job, timer);
  struct runner *r = j->r;

  /* Back in the queue behind everything that waited meanwhile. */
  list_remove(r, j);
  list_append(r, j);
  j->state = JOB_QUEUED;
  r->queued++;
  set_gauges(r);
  pump(r);
}

static uint64_t backoff_ms(unsigned attempt) {
  uint64_t ms = RUNNER_BACKOFF_MS;
  for (unsigned i = 0; i < attempt && ms < RUNNER_BACKOFF_MAX_MS; i++)
    ms *= 2;
  return ms < RUNNER_BACKOFF_MAX_MS ? ms : RUNNER_BACKOFF_MAX_MS;
}

static void describe(enum runner_result res, int status, char *buf,
                     size_t len) {
  switch (res) {
  case RUNNER_EXIT:
    snprintf(buf, len, "exited with status %d", status);
    break;
  case RUNNER_SIGNAL:
    snprintf(buf, len, "killed by signal %d", status);
    break;
  case RUNNER_SPAWN:
    snprintf(buf, len, "could not start: %s", choreo_strerror(status));
    break;
  default:
    snprintf(buf, len, "%s", runner_result_name(res));
    break;
  }
}

static void job_retry(struct runner_job *j, const char *what) {
  struct runner *r = j->r;
  uint64_t delay = backoff_ms(j->attempt);

  r->metrics->runs_retried++;
  log_warn("%s: %s; retry %u of %u in %" PRIu64 " ms", j->name, what,
           j->attempt + 1, j->retries, delay);
  j->attempt++;
  j->state = JOB_BACKOFF;
  slot_release(j);
  uv_timer_start(&j->timer, on_backoff, delay, 0);
  pump(r);
}

/* Start failures that say nothing about the script: the agent, or the
 * system, is out of descriptors, processes or memory for now. */
static bool spawn_transient(int err) {
  return err == UV_EMFILE || err == UV_ENFILE || err == UV_EAGAIN ||
         err == UV_ENOMEM;
}

/* A try that could not start for want of a resource: wait and try again,
 * for as long as it takes, without using up the job's retries. */
static void job_retry_spawn(struct runner_job *j, const char *what) {
  struct runner *r = j->r;
  uint64_t delay = backoff_ms(j->spawn_fails);

  r->metrics->runs_spawn_retried++;
  log_warn("%s: %s; trying again in %" PRIu64 " ms", j->name, what, delay);
  j->spawn_fails++;
  j->state = JOB_BACKOFF;
  slot_release(j);
  uv_timer_start(&j->timer, on_backoff, delay, 0);
  pump(r);
}

static void job_after_try(struct runner_job *j, enum runner_result res,
                          int status) {
  struct runner *r = j->r;
  bool failed = res != RUNNER_OK && res != RUNNER_CANCELLED;
  char what[160];

  describe(res, status, what, sizeof(what));
  if (res == RUNNER_SPAWN && spawn_transient(status) && !r->closing) {
    job_retry_spawn(j, what);
    return;
  }
  if (failed && res != RUNNER_SPAWN && !r->closing && j->attempt < j->retries) {
    job_retry(j, what);
    return;
  }
  if (failed) {
    r->metrics->runs_failed++;
    /* A spawn failure was logged with its path already. */
    if (res != RUNNER_SPAWN)
      log_error("%s: failed after %u %s: %s", j->name, j->attempt + 1,
                j->attempt == 0 ? "try" : "tries", what);
  } else {
    log_debug("%s: %s", j->name, what);
  }
  job_end(j, res, status);
}

/* ---- closing ---- */

static void try_cancel(struct runner_try *t) {
  /* Once the script has exited, its result stands. */
  if (t->finished || t->exited || t->spawn_err != 0)
    return;
  t->cancelled = true;
  if (!t->term_sent)
    term_group(t);
}

static void job_cancel(struct runner_job *j) {
  switch (j->state) {
  case JOB_QUEUED:
    j->r->queued--;
    set_gauges(j->r);
    job_end(j, RUNNER_CANCELLED, 0);
    break;
  case JOB_BACKOFF:
    job_end(j, RUNNER_CANCELLED, 0);
    break;
  case JOB_RUNNING:
    if (j->run != NULL)
      try_cancel(j->run);
    break;
  case JOB_ENDING:
    break;
  }
}

int runner_withdraw(struct runner *r, uint64_t tag) {
  for (struct runner_job *j = r->jobs; j != NULL; j = j->next) {
    if (j->tag != tag || j->state == JOB_ENDING)
      continue;
    if (j->ever_started || j->state == JOB_RUNNING)
      return CHOREO_EEXISTS;
    if (j->state == JOB_QUEUED) {
      r->queued--;
      set_gauges(r);
    }
    log_info("%s: withdrawn before it could start: superseded", j->name);
    job_end(j, RUNNER_WITHDRAWN, 0);
    return 0;
  }
  return CHOREO_ENOTFOUND;
}

void runner_close(struct runner *r, void (*cb)(struct runner *r)) {
  if (r->closing)
    return;
  r->closing = true;
  r->close_cb = cb;
  if (r->reaping) {
    /* Reap what is there now: nobody will once the handle is gone. */
    reap_orphans(r);
    uv_close((uv_handle_t *)&r->sigchld, on_sigchld_closed);
  } else if (r->jobs == NULL) {
    /* Nothing holds a handle: done at once. */
    r->close_cb = NULL;
    if (cb != NULL)
      cb(r);
    return;
  }
  for (struct runner_job *j = r->jobs; j != NULL; j = j->next)
    job_cancel(j);
}
