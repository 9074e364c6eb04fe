/*
 * agent_jobs.c — the jobs part: carrying out what the engine decides, and
 * running checks' commands.
 *
 * Each engine action becomes a runner job with the environment and the
 * JSON input of docs/CONFIGURATION.md ("What a behaviour script
 * receives"); its end goes back to the engine by behaviour name, so that
 * a reload in between can't misroute it. A check's run (started for
 * checks.c) is a runner job too, whose end goes to the check_done hook.
 * The part owns the list of jobs in flight and the tag counter.
 *
 * It also owns what level behaviours have applied (applied.json): when a
 * RUN or REVERT ends, that is saved (in libuv's thread pool, so that the
 * fsyncs never block the loop) before the engine hears of the end, so a
 * crash at any point leaves a file that says either the previous action
 * or this one, and an action whose end was not saved is issued again
 * after the restart (docs/BEHAVIOURS.md "Restarts").
 *
 * Because the save comes only at the end, an action cut off by a crash
 * (its script did its work, its end never saved) would be forgotten. So
 * before a level action starts, one line saying so (an intent) is
 * appended to applied.log: a single write() to a file opened once, no
 * fsync, as this is the reaction path. Each saved end records the SEQ of
 * the intents it settles; at a restart, a behaviour with a later intent
 * is unknown and brought to its truth both ways.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"
#include "view.h"

extern char **environ;

static struct agent *agent_of(struct jobs *j) {
  return AGENT_OF(j, jobs);
}

/* ---- environment ---- */

struct env {
  char **v;
  size_t n, cap;
};

/* Append "key=value", or key alone (already "K=V") when value is NULL. */
static int env_add(struct env *e, const char *key, const char *value) {
  size_t len = strlen(key) + (value != NULL ? strlen(value) + 1 : 0) + 1;
  char *s;
  if (e->n + 2 > e->cap) {
    size_t cap = e->cap == 0 ? 64 : e->cap * 2;
    char **v = realloc(e->v, cap * sizeof(*v));
    if (v == NULL)
      return CHOREO_ENOMEM;
    e->v = v;
    e->cap = cap;
  }
  s = malloc(len);
  if (s == NULL)
    return CHOREO_ENOMEM;
  snprintf(s, len, "%s%s%s", key, value != NULL ? "=" : "",
           value != NULL ? value : "");
  e->v[e->n++] = s;
  e->v[e->n] = NULL;
  return 0;
}

static void env_free(struct env *e) {
  for (size_t i = 0; i < e->n; i++)
    free(e->v[i]);
  free(e->v);
}

/* The agent's own environment less anything we set (so a stale
 * CHOREO_PEER from the agent's parent can't leak into a script). */
static int env_inherit(struct env *e) {
  for (char **p = environ; *p != NULL; p++) {
    if (strncmp(*p, "CHOREO_", 7) == 0 && strncmp(*p, "CHOREO_SOCKET=", 14) &&
        strncmp(*p, "CHOREO_DEBUG=", 13))
      continue;
    if (env_add(e, *p, NULL) != 0)
      return CHOREO_ENOMEM;
  }
  return 0;
}

/* ---- behaviour actions ---- */

static void matching(struct agent *a, const struct config_behaviour *b,
                     char *out, size_t len) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < a->peers.n; i++) {
    const struct peer *p = a->peers.v[i];
    int n;
    if (!engine_watches(b, &a->peers, p))
      continue;
    if (b->has_when && !engine_state_in(&b->when, peer_state(p)))
      continue;
    n = snprintf(out + used, len - used, "%s%s", used ? " " : "", p->rec->name);
    if (n < 0 || (size_t)n >= len - used) {
      out[used] = '\0'; /* names that don't fit are left out whole */
      return;
    }
    used += (size_t)n;
  }
}

struct watched {
  const struct config_behaviour *b;
  const struct peers *peers;
};

static bool watched(const struct peer *peer, const void *arg) {
  const struct watched *w = arg;
  return engine_watches(w->b, w->peers, peer);
}

/* The input of a run: this node, the event and the peers the behaviour
 * watches, bounded like the status reply (ctl_peer_list), with
 * "truncated": N when peers were left out. */
static char *stdin_json(struct agent *a, const struct config_behaviour *b,
                        const char *event) {
  const struct record *self = self_record(&a->self);
  struct watched w = {b, &a->peers};
  size_t truncated = 0;
  json_t *peers = ctl_peer_list(&a->ctl, watched, &w, &truncated), *doc;
  char *text;
  size_t len;

  doc = json_pack("{s:o, s:s, s:o}", "node", view_peer(self, self->state, 0),
                  "event", event, "peers", peers);
  if (doc != NULL && truncated > 0)
    json_object_set_new(doc, "truncated", json_integer((json_int_t)truncated));
  /* Measured, then written in place: megabytes of input are held once. */
  len = doc != NULL ? json_dumpb(doc, NULL, 0, JSON_COMPACT) : 0;
  text = len > 0 ? malloc(len + 1) : NULL;
  if (text != NULL && json_dumpb(doc, text, len, JSON_COMPACT) == len) {
    text[len] = '\0';
  } else {
    free(text);
    text = NULL;
  }
  json_decref(doc);
  return text;
}

static int action_env(struct agent *a, const struct config_behaviour *b,
                      const struct engine_action *act, struct env *e) {
  char *match = malloc(65536);
  int rv = match == NULL ? CHOREO_ENOMEM : env_inherit(e);
  if (rv == 0) {
    matching(a, b, match, 65536);
    const char *kv[][2] = {
        {"CHOREO_NODE", a->cfg->name},
        {"CHOREO_CLUSTER", a->cfg->cluster},
        {"CHOREO_STATE", self_record(&a->self)->state},
        {"CHOREO_BEHAVIOUR", b->name},
        {"CHOREO_EVENT", engine_action_name(act->type)},
        {"CHOREO_PEER", act->cause.peer},
        {"CHOREO_PEER_STATE", act->cause.state},
        {"CHOREO_PEER_PREVIOUS", act->cause.previous},
        {"CHOREO_PEER_REASON", act->cause.reason},
        {"CHOREO_MATCHING", match},
    };
    for (size_t i = 0; rv == 0 && i < ARRAY_SIZE(kv); i++)
      rv = env_add(e, kv[i][0], kv[i][1]);
    for (size_t i = 0; rv == 0 && i < b->nvars; i++)
      rv = env_add(e, b->vars[i], NULL);
  }
  free(match);
  return rv;
}

/* ---- applied.json ---- */

static void report_unsaved(struct jobs *js, int err) {
  struct agent *a = agent_of(js);

  if (!state_report_due(&js->unsaved, uv_now(&a->loop)))
    return;
  log_error("state_dir: %s/%s: cannot save what behaviours applied: %s; a "
            "restart would not know it (%" PRIu64 " more failures not "
            "logged)",
            a->cfg->state_dir, APPLIED_FILE, choreo_strerror(err),
            js->unsaved.suppressed);
  js->unsaved.suppressed = 0;
}

/* ---- applied.log: intents ---- */

static void report_unlogged(struct jobs *js, int err) {
  struct agent *a = agent_of(js);

  if (!state_report_due(&js->unlogged, uv_now(&a->loop)))
    return;
  log_error("state_dir: %s/%s: cannot log an action before it starts: %s; "
            "the action runs anyway, but a crash during it would leave a "
            "restart unaware of it (%" PRIu64 " more failures not logged)",
            a->cfg->state_dir, APPLIED_LOG_FILE, choreo_strerror(err),
            js->unlogged.suppressed);
  js->unlogged.suppressed = 0;
}

/* The log is kept open only by an agent with a level behaviour: an open
 * file keeps its file system from being remounted read-only. */
static bool has_level(const struct agent *a) {
  for (size_t i = 0; i < a->cfg->nbehaviours; i++)
    if (a->cfg->behaviours[i].has_when)
      return true;
  return false;
}

/* The first line of an empty log: its format. */
static int log_header(int fd) {
  size_t len = strlen(APPLIED_LOG_HEADER);
  ssize_t n = write(fd, APPLIED_LOG_HEADER, len);

  if (n < 0)
    return -errno;
  return (size_t)n == len ? 0 : -EIO;
}

/* Open applied.log for appending (created if missing, never through a
 * link); off the reaction path: at the start, then after saves. */
static int log_open(struct jobs *js) {
  struct agent *a = agent_of(js);
  char path[CONFIG_PATH_MAX + sizeof(APPLIED_LOG_FILE) + 1];
  struct stat st;
  int fd, n, rv;

  if (js->log_open)
    return 0;
  n = snprintf(path, sizeof(path), "%s/%s", a->cfg->state_dir,
               APPLIED_LOG_FILE);
  if (n < 0 || (size_t)n >= sizeof(path))
    return CHOREO_EINVAL;
  fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return CHOREO_EDECODE;
  }
  if (st.st_size == 0 && (rv = log_header(fd)) != 0) {
    close(fd);
    return js->log_err = rv;
  }
  js->log_fd = fd;
  js->log_open = true;
  js->log_bytes =
      st.st_size == 0 ? strlen(APPLIED_LOG_HEADER) : (uint64_t)st.st_size;
  return 0;
}

/* Append the intent of a level behaviour's RUN or REVERT, before it
 * starts. A failure is said (rate-limited); the action runs anyway. */
static void log_intent(struct jobs *js, const struct config_behaviour *b,
                       enum engine_action_type type) {
  char cond[APPLIED_COND_MAX + 1], line[APPLIED_LOG_LINE_MAX + 1];
  size_t len;
  ssize_t n;

  if (!b->has_when || (type != ENGINE_ACT_RUN && type != ENGINE_ACT_REVERT))
    return;
  /* Not tried yet (no level behaviour before a reload), or a first start
   * whose state_dir the first save has not created yet: tried again
   * until it exists (only then, so never a steady cost). */
  if (!js->log_open &&
      ((js->log_err != 0 && js->log_err != -ENOENT) || log_open(js) != 0)) {
    report_unlogged(js, js->log_err != 0 ? js->log_err : CHOREO_ENOTFOUND);
    return;
  }
  applied_condition(b, cond, sizeof(cond));
  len = applied_log_line(line, sizeof(line), js->intent_seq + 1, b->name,
                         type == ENGINE_ACT_RUN ? APPLIED_RUN : APPLIED_REVERT,
                         applied_fingerprint(cond));
  if (len == 0) {
    report_unlogged(js, CHOREO_EINVAL);
    return;
  }
  /* O_APPEND: one write() of a short line lands whole at the end, and
   * survives a crash of the process once it returned. */
  n = write(js->log_fd, line, len);
  if (n < 0) {
    report_unlogged(js, -errno);
    return;
  }
  js->intent_seq++;
  js->log_bytes += (uint64_t)n;
  if ((size_t)n != len)
    report_unlogged(js, -EIO);
}

static bool behaviour_in_flight(const struct jobs *js) {
  for (const struct job *j = js->list; j != NULL; j = j->next)
    if (!j->is_check)
      return true;
  return false;
}

/* After applied.json was saved: once every intent in the log is settled
 * in the file on disk (nothing in flight or waiting to be saved, the
 * startup reconciliation issued), the log is emptied when it grew past
 * its bound or was found unreadable. */
static void log_compact(struct jobs *js) {
  struct agent *a = agent_of(js);
  int rv = 0;

  if (!js->log_open) {
    if (has_level(a) && (rv = log_open(js)) != 0)
      report_unlogged(js, rv);
    return;
  }
  if ((js->log_bytes <= APPLIED_LOG_COMPACT && !js->log_dirty) ||
      js->ending_next != NULL || behaviour_in_flight(js) || !a->engine.synced)
    return;
  if (ftruncate(js->log_fd, 0) != 0 || (rv = log_header(js->log_fd)) != 0) {
    report_unlogged(js, rv != 0 ? rv : -errno);
    return;
  }
  js->log_bytes = strlen(APPLIED_LOG_HEADER);
  js->log_dirty = false;
}

/* ---- saving applied.json ----
 * Written at each end of a level action, on the loop, replaced whole
 * without fsyncs (state_replace). The engine hears of an end at once, so
 * that the next action of the behaviour never waits for the disk: should
 * the agent die before the file says it, the line logged in applied.log
 * before the action started is not settled, and the restart reconciles
 * the behaviour both ways (run again if its condition holds, revert if
 * not). */

/* Free the ends a write carried (the engine was told of each at once). */
static void ends_done(struct jobs *js, struct job *list) {
  (void)js;
  for (struct job *j = list, *next; j != NULL; j = next) {
    next = j->next;
    free(j);
  }
}

/* An entry of applied.json worth keeping: a level behaviour of the
 * configuration now (dropped ones are not reverted, as at a reload). */
static bool is_level(const char *name, void *arg) {
  struct agent *a = arg;
  int idx = engine_index(&a->engine, name);
  return idx >= 0 && a->cfg->behaviours[idx].has_when;
}

static void save_start(struct jobs *js) {
  struct agent *a = agent_of(js);
  struct job *ended = js->ending_next;
  char *text;
  int rv;

  if (ended == NULL)
    return;
  js->ending_next = NULL;
  applied_retain(&js->applied, is_level, a);
  /* On the loop, after the script ended, never on the way to one: a
   * rename without fsyncs costs tens of microseconds. A thread pool for
   * it would cost more: its threads' stacks make every fork of a script
   * slower. */
  text = applied_encode(&js->applied);
  rv = text == NULL ? CHOREO_ENOMEM
                    : state_replace(a->cfg->state_dir, APPLIED_FILE, text);
  free(text);
  if (rv != 0)
    report_unsaved(js, rv);
  else if (!js->stopped)
    log_compact(js);
  ends_done(js, ended);
}

/* A behaviour's action ended. A level behaviour's RUN or REVERT is put in
 * applied.json's next write and the engine is told at once: returns true
 * when j is kept for that write (the engine told); false when the caller
 * must tell the engine (j stays the caller's). */
static bool save_applied(struct jobs *js, struct job *j) {
  struct agent *a = agent_of(js);
  int idx = engine_index(&a->engine, j->name);
  char cond[APPLIED_COND_MAX + 1];
  int rv;

  if (idx < 0 || !a->cfg->behaviours[idx].has_when ||
      (j->type != ENGINE_ACT_RUN && j->type != ENGINE_ACT_REVERT))
    return false;
  applied_condition(&a->cfg->behaviours[idx], cond, sizeof(cond));
  /* The engine has one action of a behaviour out at a time: this end
   * settles every intent of the behaviour logged so far. */
  rv = applied_put(&js->applied, j->name,
                   j->type == ENGINE_ACT_RUN ? APPLIED_RUN : APPLIED_REVERT,
                   cond, js->intent_seq);
  if (rv != 0) {
    report_unsaved(js, rv);
    return false;
  }
  j->next = js->ending_next;
  js->ending_next = j;
  save_start(js);
  engine_done(&a->engine, (size_t)idx, uv_now(&a->loop));
  return true;
}

/* An action that ended at once (nothing to run, or not started): a job
 * of its own, saved like any other. */
static bool save_applied_now(struct jobs *js, const struct engine_action *act) {
  struct agent *a = agent_of(js);
  struct job *j = calloc(1, sizeof(*j));

  if (j == NULL)
    return false;
  snprintf(j->name, sizeof(j->name), "%s",
           a->cfg->behaviours[act->behaviour].name);
  j->type = act->type;
  if (save_applied(js, j))
    return true;
  free(j);
  return false;
}

/* Everything a previous run applied is unknown: bring every level
 * behaviour to its truth, both ways. */
static void restore_unknown(struct jobs *js) {
  struct agent *a = agent_of(js);
  for (size_t i = 0; i < a->cfg->nbehaviours; i++)
    (void)engine_restore(&a->engine, a->cfg->behaviours[i].name, true, false);
}

static void restore_entries(struct jobs *js) {
  struct agent *a = agent_of(js);
  char cond[APPLIED_COND_MAX + 1];

  for (size_t i = 0; i < js->applied.n; i++) {
    const struct applied_entry *e = &js->applied.v[i];
    int idx = engine_index(&a->engine, e->name);
    bool same;
    if (idx < 0 || !a->cfg->behaviours[idx].has_when) {
      log_info("%s: behaviour %s is not a level behaviour of this "
               "configuration; ignored",
               APPLIED_FILE, e->name);
      continue;
    }
    applied_condition(&a->cfg->behaviours[idx], cond, sizeof(cond));
    same = strcmp(cond, e->cond) == 0;
    (void)engine_restore(&a->engine, e->name, e->action == APPLIED_RUN, same);
    if (e->action == APPLIED_RUN)
      log_info("behaviour %s: run was applied before the restart%s; "
               "reconciled once synchronised",
               e->name, same ? "" : " (for another condition)");
  }
}

/* Read applied.json into js->applied; false when it is unreadable (said:
 * every level behaviour is then unknown). */
static bool restore_applied(struct jobs *js) {
  struct agent *a = agent_of(js);
  char *buf = NULL, why[256];
  size_t len = 0;
  int rv =
      state_read(a->cfg->state_dir, APPLIED_FILE, APPLIED_FILE_MAX, &buf, &len);

  if (rv == CHOREO_ENOTFOUND)
    return true; /* a first start: nothing applied */
  if (rv == 0) {
    rv = applied_parse(buf, len, &js->applied, why, sizeof(why));
    free(buf);
  } else {
    snprintf(why, sizeof(why), "%s", choreo_strerror(rv));
  }
  if (rv != 0) {
    log_warn("state_dir: %s/%s: %s; what behaviours applied before is "
             "unknown: once synchronised, each is run or reverted to match "
             "its condition",
             a->cfg->state_dir, APPLIED_FILE, why);
    applied_free(&js->applied);
    return false;
  }
  for (size_t i = 0; i < js->applied.n; i++)
    if (js->applied.v[i].seq > js->intent_seq)
      js->intent_seq = js->applied.v[i].seq;
  return true;
}

/* Intents of applied.log that no end saved in applied.json settles: the
 * action started (and may have done its work) but its end is unknown. */
static void restore_pending(struct jobs *js,
                            const struct applied_intents *log) {
  struct agent *a = agent_of(js);

  for (size_t i = 0; i < log->n; i++) {
    const struct applied_intent *it = &log->v[i];
    const struct applied_entry *e = applied_find(&js->applied, it->name);
    if (e != NULL && e->seq >= it->seq)
      continue;
    if (engine_restore(&a->engine, it->name, true, false) != 0)
      continue; /* not a level behaviour of this configuration */
    log_info("behaviour %s: its %s started before the restart and its end "
             "was never saved (%s); brought to its condition both ways once "
             "synchronised",
             it->name, applied_action_name(it->action), APPLIED_LOG_FILE);
  }
}

/* Read applied.log; false when it is unreadable or malformed (said:
 * every level behaviour is then unknown, and the log is emptied once
 * that is settled). */
static bool restore_log(struct jobs *js) {
  struct agent *a = agent_of(js);
  struct applied_intents log;
  char *buf = NULL, why[256];
  size_t len = 0;
  int rv = state_read(a->cfg->state_dir, APPLIED_LOG_FILE, APPLIED_LOG_MAX,
                      &buf, &len);

  if (rv == CHOREO_ENOTFOUND)
    return true;
  if (rv == 0) {
    rv = applied_log_parse(buf, len, &log, why, sizeof(why));
    free(buf);
  } else {
    snprintf(why, sizeof(why), "%s", choreo_strerror(rv));
  }
  if (rv != 0) {
    log_warn("state_dir: %s/%s: %s; which actions a crash cut off is "
             "unknown: once synchronised, each level behaviour is run or "
             "reverted to match its condition",
             a->cfg->state_dir, APPLIED_LOG_FILE, why);
    js->log_dirty = true;
    return false;
  }
  if (log.last_seq > js->intent_seq)
    js->intent_seq = log.last_seq;
  restore_pending(js, &log);
  applied_intents_free(&log);
  return true;
}

void jobs_restore(struct jobs *js) {
  bool known = restore_applied(js);
  int rv;

  if (known)
    restore_entries(js);
  if (!restore_log(js))
    known = false;
  if (!known)
    restore_unknown(js);
  /* A first start has no state_dir yet (the first save creates it):
   * the log is opened by the first step that finds it there. */
  if (has_level(agent_of(js)) && (rv = log_open(js)) != 0 && rv != -ENOENT)
    report_unlogged(js, rv);
}

/* ---- jobs ---- */

static struct job *job_new(struct jobs *js, const char *name, bool is_check) {
  struct job *j = calloc(1, sizeof(*j));
  if (j == NULL)
    return NULL;
  j->tag = ++js->next_tag;
  j->is_check = is_check;
  snprintf(j->name, sizeof(j->name), "%s", name);
  j->rx_ns = js->rx_ns;
  j->next = js->list;
  js->list = j;
  return j;
}

static struct job *job_take(struct jobs *js, uint64_t tag) {
  for (struct job **pp = &js->list; *pp != NULL; pp = &(*pp)->next) {
    if ((*pp)->tag == tag) {
      struct job *j = *pp;
      *pp = j->next;
      return j;
    }
  }
  return NULL;
}

static int submit(struct agent *a, struct job *j,
                  const struct config_argv *argv, char **env, const char *input,
                  uint64_t timeout_ms, unsigned retries,
                  const struct config_user *user) {
  struct runner_spec spec = {
      .tag = j->tag,
      .name = j->name,
      .argv = argv->argv,
      .env = env,
      .input = input,
      .input_len = input != NULL ? strlen(input) : 0,
      .timeout_ms = timeout_ms,
      .retries = retries,
      .quiet = j->is_check,
      .user = user,
  };
  return runner_submit(&a->runner, &spec);
}

/* Start one action; returns false when it ended at once (nothing to run
 * or the runner refused), so the engine must be told right away. */
static bool start_action(struct jobs *js, const struct engine_action *act) {
  struct agent *a = agent_of(js);
  const struct config_behaviour *b = &a->cfg->behaviours[act->behaviour];
  const struct config_argv *argv =
      act->type == ENGINE_ACT_REVERT ? &b->revert : &b->run;
  struct env e = {0};
  const char *event = engine_action_name(act->type);
  char *input = NULL;
  struct job *j;
  int rv;

  log_info("behaviour %s: %s%s%s%s", b->name, event,
           act->cause.peer[0] ? " (peer " : "", act->cause.peer,
           act->cause.peer[0] ? ")" : "");
  if (argv->argc == 0)
    return false;
  log_intent(js, b, act->type);
  j = job_new(js, b->name, false);
  if (j != NULL)
    j->type = act->type;
  input = stdin_json(a, b, event);
  rv = j == NULL || input == NULL ? CHOREO_ENOMEM : action_env(a, b, act, &e);
  if (rv == 0)
    rv = submit(a, j, argv, e.v, input, b->timeout_ms, b->retries, &b->run_as);
  env_free(&e);
  free(input);
  if (rv != 0) {
    log_error("behaviour %s: cannot start %s: %s", b->name, argv->argv[0],
              choreo_strerror(rv));
    a->metrics.runs_failed++;
    if (j != NULL)
      free(job_take(js, j->tag));
    return false;
  }
  return true;
}

void jobs_step(struct jobs *js, uint64_t rx_ns) {
  struct agent *a = agent_of(js);
  struct engine_action acts[32];
  uint64_t now, deadline = UINT64_MAX, saved = js->rx_ns;
  size_t n;
  bool again;

  if (js->stopped)
    return;
  /* A step nested in the handling of a message (an action that ended at
   * once) keeps that message's receipt time. */
  if (rx_ns != 0)
    js->rx_ns = rx_ns;
  /* Before the startup sync no action is issued: the moment to open the
   * log of a first start, once state_dir exists, off the reaction path. */
  if (!js->log_open && !a->engine.synced && has_level(a))
    (void)log_open(js);
  do {
    now = uv_now(&a->loop);
    n = engine_step(&a->engine, &a->peers, now, acts, ARRAY_SIZE(acts),
                    &deadline);
    again = n == ARRAY_SIZE(acts);
    for (size_t i = 0; i < n; i++) {
      if (!start_action(js, &acts[i])) {
        if (!save_applied_now(js, &acts[i]))
          engine_done(&a->engine, acts[i].behaviour, now);
        again = true;
      }
    }
  } while (again);
  js->rx_ns = saved;
  /* An action still waiting to start that the truth went past. */
  for (struct job *j = js->list; j != NULL; j = j->next) {
    int idx = j->is_check ? -1 : engine_index(&a->engine, j->name);
    if (idx >= 0 && engine_superseded(&a->engine, (size_t)idx))
      (void)runner_withdraw(&a->runner, j->tag);
  }
  if (a->engine.dropped > 0) {
    log_warn("%llu per-peer events dropped: a behaviour's queue of %d "
             "events was full",
             (unsigned long long)a->engine.dropped, ENGINE_QUEUE_MAX);
    a->engine.dropped = 0;
  }
  js->wake_at(js, deadline);
  /* A behaviour's state claim follows its actions. */
  self_refresh(&a->self);
}

/* ---- runner callbacks ---- */

void jobs_started(void *arg, uint64_t tag, unsigned attempt) {
  struct jobs *js = arg;
  for (struct job *j = js->list; j != NULL; j = j->next) {
    if (j->tag != tag)
      continue;
    if (attempt == 0)
      j->started_ns = uv_hrtime();
    if (attempt == 0 && j->rx_ns != 0)
      metrics_observe_reaction(&agent_of(js)->metrics,
                               (double)(uv_hrtime() - j->rx_ns) / 1e6);
    return;
  }
}

/* Per-behaviour runs, failures and duration; an action that never
 * started (withdrawn, cancelled before it ran) is not a run. */
static void behaviour_ended(struct jobs *js, const struct job *j,
                            enum runner_result res) {
  struct agent *a = agent_of(js);
  double secs;

  if (j->started_ns == 0 || res == RUNNER_WITHDRAWN)
    return;
  secs = (double)(uv_hrtime() - j->started_ns) / 1e9;
  (void)metrics_behaviour_done(&a->metrics, j->name,
                               j->type == ENGINE_ACT_REVERT, res == RUNNER_OK,
                               secs);
  if (js->behaviour_done != NULL)
    js->behaviour_done(js, j, res, secs);
}

void jobs_done(void *arg, uint64_t tag, enum runner_result res, int status) {
  struct jobs *js = arg;
  struct agent *a = agent_of(js);
  struct job *j = job_take(js, tag);
  int idx;

  if (j == NULL)
    return;
  if (!j->is_check)
    behaviour_ended(js, j, res);
  if (j->is_check) {
    js->check_done(js, j->name, res == RUNNER_OK);
  } else if (!js->stopped && (idx = engine_index(&a->engine, j->name)) >= 0) {
    /* A withdrawn action never ran: nothing to save as applied. */
    if (res == RUNNER_WITHDRAWN)
      engine_withdrawn(&a->engine, (size_t)idx);
    else if (save_applied(js, j)) {
      jobs_step(js, 0); /* told by save_applied; j goes with the write */
      return;
    }
    engine_done(&a->engine, (size_t)idx, uv_now(&a->loop));
    jobs_step(js, 0);
  }
  free(j);
}

/* ---- checks' runs ---- */

int jobs_run_check(struct jobs *js, const struct config_check *c) {
  struct agent *a = agent_of(js);
  struct env e = {0};
  struct job *j = job_new(js, c->name, true);
  int rv = j == NULL ? CHOREO_ENOMEM : env_inherit(&e);

  for (size_t k = 0; rv == 0 && k < c->nvars; k++)
    rv = env_add(&e, c->vars[k], NULL);
  if (rv == 0 && (rv = env_add(&e, "CHOREO_NODE", a->cfg->name)) == 0)
    rv = submit(a, j, &c->run, e.v, NULL, c->timeout_ms, 0, NULL);
  env_free(&e);
  if (rv != 0 && j != NULL)
    free(job_take(js, j->tag));
  return rv;
}

void jobs_stop(struct jobs *js) {
  js->stopped = true;
}

void jobs_free(struct jobs *js) {
  ends_done(js, js->ending_next);
  js->ending_next = NULL;
  applied_free(&js->applied);
  if (js->log_open)
    close(js->log_fd);
  js->log_open = false;
  for (struct job *j = js->list, *next; j != NULL; j = next) {
    next = j->next;
    free(j);
  }
  js->list = NULL;
}
