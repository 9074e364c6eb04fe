/*
 * agent.c — the daemon's wiring and lifecycle: load the configuration,
 * set up the shared modules and the parts (see agent.h), connect the
 * parts' hooks, handle signals (SIGHUP reloads, SIGTERM/SIGINT leave),
 * and stop cleanly: agent_stop closes every part, free_all frees them.
 * It also owns the wake-up timer, which ticks the peer table (lost and
 * reaped members) and serves the engine's deadlines.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <sys/resource.h>

#include "agent.h"
#include "log.h"
#include "util.h"
#include "view.h"

static void print_errors(const struct config_errors *errs) {
  for (size_t i = 0; i < errs->n; i++)
    fprintf(stderr, "%s\n", errs->msg[i]);
  if (errs->more > 0)
    fprintf(stderr, "(%zu more problems not shown)\n", errs->more);
}

/* ---- wake-up: lost peers, reaping, settle and coalescing deadlines ---- */

static void wake_at(struct agent *a, uint64_t when);

static void on_wake(uv_timer_t *t) {
  struct agent *a = container_of(t, struct agent, wake);
  uint64_t now = uv_now(&a->loop), next;

  a->wake_at = UINT64_MAX;
  next = peers_tick(&a->peers, now, util_wall_ms(), a->cfg->lost_after_ms,
                    a->cfg->reap_after_ms);
  wake_at(a, next);
  net_check_sync(&a->net);
  jobs_step(&a->jobs, 0);
  if (a->net.synced)
    notify_ready(&a->notify);
}

/* Arm the wake-up timer for monotonic time `when` if that is earlier than
 * the one already set. */
static void wake_at(struct agent *a, uint64_t when) {
  uint64_t now = uv_now(&a->loop);
  if (a->stopping || when == UINT64_MAX || when >= a->wake_at)
    return;
  a->wake_at = when;
  uv_timer_start(&a->wake, on_wake, when > now ? when - now : 0, 0);
}

/* ---- the parts' hooks ---- */

static void net_changed(struct net *n, uint64_t rx_ns) {
  jobs_step(&AGENT_OF(n, net)->jobs, rx_ns);
  if (n->synced)
    notify_ready(&AGENT_OF(n, net)->notify);
}

static void net_wake_at(struct net *n, uint64_t when) {
  wake_at(AGENT_OF(n, net), when);
}

static void jobs_wake_at(struct jobs *j, uint64_t when) {
  wake_at(AGENT_OF(j, jobs), when);
}

static void jobs_check_done(struct jobs *j, const char *name, bool ok) {
  checks_result(&AGENT_OF(j, jobs)->checks, name, ok);
}

static int checks_run(struct checks *c, const struct config_check *check) {
  return jobs_run_check(&AGENT_OF(c, checks)->jobs, check);
}

static void checks_changed(struct checks *c) {
  self_refresh(&AGENT_OF(c, checks)->self);
}

static void agent_stop(struct agent *a, int exit_code);

static void net_name_taken(struct net *n) {
  agent_stop(AGENT_OF(n, net), 1);
}

static void self_publish(struct self *s) {
  net_publish_change(&AGENT_OF(s, self)->net);
}

static int relay_send(struct relay *r, const void *buf, size_t len) {
  return net_send_raw(&AGENT_OF(r, relay)->net, buf, len);
}

static void agent_leave(struct agent *a);
static json_t *ctl_reload(struct ctl *c);

/* systemd's STATUS= line: members alive (this node included) and the
 * level behaviours whose `run` is applied. */
static void notify_status_text(struct notify *n, char *buf, size_t len) {
  struct agent *a = AGENT_OF(n, notify);
  size_t alive, lost, left, applied = 0;

  peers_count(&a->peers, &alive, &lost, &left);
  for (size_t i = 0; i < a->jobs.applied.n; i++)
    applied += a->jobs.applied.v[i].action == APPLIED_RUN;
  snprintf(buf, len, "%s%zu members, %zu behaviours applied",
           a->net.synced ? "" : "synchronising: ", alive + 1, applied);
}

/* ---- metrics: one text for the control socket and the HTTP endpoint ---- */

static void refresh_gauges(struct agent *a) {
  size_t alive, lost, left;
  struct mesh_stats ms;

  peers_count(&a->peers, &alive, &lost, &left);
  net_stats(&a->net, &ms);
  a->metrics.mesh_out_up = (int64_t)ms.out_up;
  a->metrics.mesh_out_connecting = (int64_t)ms.out_connecting;
  a->metrics.mesh_in_up = (int64_t)ms.in_up;
  a->metrics.mesh_connect_errors = (int64_t)ms.connect_errors;
  a->metrics.inbox_resets = ms.inbox_resets;
  a->metrics.inbox_idle_closed = ms.inbox_idle_closed;
  a->metrics.fds_open = (int64_t)ms.fds;
  a->metrics.relay_share_members =
      relay_share_active(&a->relay, uv_now(&a->loop))
          ? (int64_t)a->relay.share_n
          : 0;
  a->metrics.relay_share_up = (int64_t)mesh_share_up(&a->net.mesh);
  a->metrics.peers_alive = (int64_t)alive;
  a->metrics.peers_lost = (int64_t)lost;
  a->metrics.peers_left = (int64_t)left;
  a->metrics.peers_bytes = (int64_t)a->peers.bytes;
  a->metrics.peers_bytes_max = (int64_t)a->peers.bytes_max;
  a->metrics.peers_budget_drops = a->peers.budget_drops;
  a->metrics.peer_stalls = a->peers.stalls;
#define XX(id, s) a->metrics.id_drop_##id = a->trust.dropped[TRUST_DROP_##id];
  TRUST_DROP_MAP(XX)
#undef XX
  a->metrics.id_verified = a->trust.verified;
  a->metrics.id_cache_hits = a->trust.cache_hits;
  a->metrics.id_unsigned = a->trust.unsigned_accepted;
  a->metrics.id_entries_refused = a->trust.entries_refused;
  a->metrics.id_revocations_refused = a->trust.revocations_refused;
  a->metrics.id_revoked = (int64_t)a->trust.nrevoked;
}

static double age_s(int64_t now_ms, int64_t since_ms) {
  return now_ms > since_ms ? (double)(now_ms - since_ms) / 1000 : 0;
}

/* The counters, then the state of this node and of every peer heard
 * from (as `choreo peers` lists them). */
static int metrics_text(struct agent *a, char **out) {
  const struct record *self = self_record(&a->self);
  int64_t now = util_wall_ms();
  struct metrics_node me = {self->name, self->state, self->groups,
                            self->ngroups, age_s(now, self->since_ms)};
  struct metrics_node *v = calloc(a->peers.n + 1, sizeof(*v));
  size_t n = 0;
  int rv;

  if (v == NULL)
    return CHOREO_ENOMEM;
  refresh_gauges(a);
  for (size_t i = 0; i < a->peers.n; i++) {
    const struct peer *p = a->peers.v[i];
    if (!p->heard)
      continue;
    v[n++] = (struct metrics_node){p->rec->name, peer_state(p), p->rec->groups,
                                   p->rec->ngroups, age_s(now, peer_since(p))};
  }
  rv = metrics_render_nodes(&a->metrics, &me, v, n, out);
  free(v);
  return rv;
}

static int ctl_metrics_text(struct ctl *c, char **out) {
  return metrics_text(AGENT_OF(c, ctl), out);
}

static int http_metrics_text(struct http *h, char **out) {
  return metrics_text(AGENT_OF(h, http), out);
}

/* /v1/status: what `choreo status --json` prints (declared included). */
static json_t *http_status(struct http *h) {
  json_t *o = ctl_status(&AGENT_OF(h, http)->ctl);
  json_object_del(o, "ok");
  return o;
}

static json_t *http_peers(struct http *h) {
  return ctl_peers(&AGENT_OF(h, http)->ctl);
}

/* A behaviour's action ended: an event of the HTTP event stream. */
static void jobs_behaviour_done(struct jobs *j, const struct job *job,
                                enum runner_result res, double secs) {
  json_t *o =
      json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "event", "behaviour",
                "behaviour", job->name, "action", engine_action_name(job->type),
                "result", runner_result_name(res), "duration_ms",
                (json_int_t)(secs * 1000), "time", (json_int_t)util_wall_ms());
  http_event(&AGENT_OF(j, jobs)->http, o);
  json_decref(o);
}

static void ctl_leave(struct ctl *c) {
  agent_leave(AGENT_OF(c, ctl));
}

/* The peer table's events: logged, shown to watching clients, fed to the
 * engine; a reaped member's endpoint is shut down. */
static void on_peer_event(void *arg, const struct peer_event *ev) {
  struct agent *a = arg;
  uint64_t now = uv_now(&a->loop);

  if (ev->type == PEER_EV_REAPED) {
    net_peer_reaped(&a->net, (struct peer *)ev->peer);
    relay_share_forget(&a->relay, (struct peer *)ev->peer);
    engine_peer_event(&a->engine, ev, now);
    return;
  }
  a->metrics.peer_events++;
  if (ev->type == PEER_EV_LOST)
    net_peer_lost(&a->net, (struct peer *)ev->peer);
  /* A relay lost or back: the shares move at once. */
  if (a->cfg->relay && ev->peer->is_relay && ev->type != PEER_EV_DATA)
    relay_share_sync(&a->relay, now);
  /* A data event (data or groups changed) leaves the state as it was. */
  bool arrow = ev->type != PEER_EV_DATA && ev->previous[0] != '\0';
  log_info("peer %s %s: %s%s%s", ev->peer->rec->name, peer_event_name(ev->type),
           arrow ? ev->previous : "", arrow ? " -> " : "", ev->state);
  ctl_peer_event(&a->ctl, ev);
  json_t *o = view_event(ev);
  http_event(&a->http, o);
  json_decref(o);
  engine_peer_event(&a->engine, ev, now);
  notify_status_changed(&a->notify);
}

static void wire_hooks(struct agent *a) {
  a->net.changed = net_changed;
  a->net.wake_at = net_wake_at;
  a->jobs.wake_at = jobs_wake_at;
  a->jobs.check_done = jobs_check_done;
  a->checks.run = checks_run;
  a->checks.changed = checks_changed;
  a->self.publish = self_publish;
  a->net.name_taken = net_name_taken;
  a->relay.send = relay_send;
  a->ctl.leave = ctl_leave;
  a->ctl.reload = ctl_reload;
  a->notify.status = notify_status_text;
  a->ctl.metrics_text = ctl_metrics_text;
  a->http.metrics_text = http_metrics_text;
  a->http.status = http_status;
  a->http.peers = http_peers;
  a->jobs.behaviour_done = jobs_behaviour_done;
}

/* ---- reload ---- */

/* The settings a reload can't change: they are kept as they were at
 * start, and a change is said in the log. */
enum restart_kind {
  RESTART_TEXT,   /* a char array */
  RESTART_VALUE,  /* a scalar */
  RESTART_RELAYS, /* network.relays: nrelays and relays[] */
};

static const struct {
  const char *what;
  enum restart_kind kind;
  size_t off, len;
} restart_only[] = {
#define F(field, what, kind)                                                   \
  {                                                                            \
    what, kind, offsetof(struct config, field),                                \
        sizeof(((struct config *)0)->field)                                    \
  }
    F(name, "node.name", RESTART_TEXT),
    F(cluster, "node.cluster", RESTART_TEXT),
    F(listen, "network.listen", RESTART_TEXT),
    F(advertise, "network.advertise", RESTART_TEXT),
    F(socket, "control.socket", RESTART_TEXT),
    F(read_group, "control.read_group", RESTART_TEXT),
    F(state_dir, "state_dir", RESTART_TEXT),
    F(key_file, "network.key_file", RESTART_TEXT),
    F(relay, "network.relay", RESTART_VALUE),
    F(relays, "network.relays", RESTART_RELAYS),
#undef F
};

static bool restart_same(size_t i, const struct config *old,
                         const struct config *cfg) {
  const char *o = (const char *)old + restart_only[i].off;
  const char *c = (const char *)cfg + restart_only[i].off;
  bool same;

  switch (restart_only[i].kind) {
  case RESTART_TEXT:
    return strncmp(o, c, restart_only[i].len) == 0;
  case RESTART_VALUE:
    return memcmp(o, c, restart_only[i].len) == 0;
  case RESTART_RELAYS:
    same = old->nrelays == cfg->nrelays;
    for (size_t k = 0; same && k < old->nrelays; k++)
      same = strcmp(old->relays[k], cfg->relays[k]) == 0;
    return same;
  }
  return false;
}

/* Keep the settings that need a restart, take everything else; say which
 * ones changed (appended to kept, a JSON array, when not NULL). */
static void keep_restart_settings(const struct config *old, struct config *cfg,
                                  json_t *kept) {
  for (size_t i = 0; i < ARRAY_SIZE(restart_only); i++) {
    if (restart_same(i, old, cfg))
      continue;
    log_warn("reload: %s changed; it takes effect at the next restart",
             restart_only[i].what);
    if (kept != NULL)
      json_array_append_new(kept, json_string(restart_only[i].what));
  }
  for (size_t i = 0; i < ARRAY_SIZE(restart_only); i++) {
    if (restart_only[i].kind == RESTART_RELAYS)
      cfg->nrelays = old->nrelays;
    memcpy((char *)cfg + restart_only[i].off,
           (const char *)old + restart_only[i].off, restart_only[i].len);
  }
}

/* A refused reload: every error logged and listed in the report; nothing
 * of the running configuration or key ring changed. */
static json_t *reload_refused(struct agent *a, json_t *report) {
  json_t *errors = json_object_get(report, "errors");
  for (size_t i = 0; i < json_array_size(errors); i++)
    log_error("reload: %s", json_string_value(json_array_get(errors, i)));
  log_error("reload: configuration refused; the previous one stays");
  a->metrics.reloads_refused++;
  json_object_set_new(report, "applied", json_false());
  return report;
}

/* Everything that can fail is done before anything is swapped: the
 * configuration is read and checked, the key file read and checked, the
 * engine built for the new behaviours; only then do the configuration,
 * the key ring and the checks change, all together. */
static json_t *reload_prepare(struct agent *a, struct config **cfgp,
                              struct seal_ring **ringp, json_t *report) {
  struct config_errors errs = {0};
  json_t *errors = json_object_get(report, "errors");
  struct seal_error serr;
  char *why = NULL;

  if (config_load(a->config_path, cfgp, &errs) != 0) {
    for (size_t i = 0; i < errs.n; i++)
      json_array_append_new(errors, json_string(errs.msg[i]));
    if (errs.more > 0)
      json_array_append_new(
          errors, json_sprintf("(%zu more problems not shown)", errs.more));
    config_errors_free(&errs);
    return NULL;
  }
  /* network.key_file's path is kept as it was at start; its keys are
   * read again, so that a rotation needs no restart. */
  if (a->ring != NULL && seal_ring_load(a->cfg->key_file, ringp, &serr) != 0) {
    json_array_append_new(errors,
                          json_sprintf("network.key_file: %s", serr.text));
    return NULL;
  }
  /* A new http.listen is bound now: if it can't be, the old one stays. */
  if (http_prepare(&a->http, *cfgp, &why) != 0) {
    json_array_append_new(errors, json_string(why ? why : "out of memory"));
    free(why);
    seal_ring_free(*ringp);
    *ringp = NULL;
    return NULL;
  }
  return report;
}

static void reload_swap(struct agent *a, struct config *cfg,
                        struct seal_ring *ring) {
  struct config *old = a->cfg;
  checks_stop(&a->checks);
  http_commit(&a->http);
  a->cfg = cfg;
  config_free(old);
  log_set_level((enum log_level)cfg->log_level);
  if (agent_trust_configure(a, cfg) != 0)
    log_error("reload: identity could not be configured (out of memory)");
  if (ring != NULL) {
    seal_ring_free(a->ring);
    a->ring = ring;
    log_info("reload: network.key_file: %zu keys", seal_ring_size(ring));
  }
  if (checks_start(&a->checks) != 0)
    log_error("reload: checks could not be started");
  net_set_heartbeat(&a->net, cfg->heartbeat_ms);
  peers_set_timing(&a->peers, cfg->heartbeat_ms, cfg->lost_after_ms,
                   cfg->reap_after_ms);
  peers_set_max(&a->peers, cfg->max_members);
  wake_at(a, peers_next_deadline(&a->peers));
}

/* Read the configuration (and key file) again: all of it is applied, or
 * none of it. Returns the report {"applied", "behaviours", "checks",
 * "kept"} or {"applied": false, "errors"}, owned by the caller; NULL when
 * out of memory (nothing changed then). */
static json_t *reload(struct agent *a) {
  struct config *cfg = NULL;
  struct seal_ring *ring = NULL;
  json_t *report = json_pack("{s:[], s:[]}", "errors", "kept");

  if (report == NULL)
    return NULL;
  if (a->stopping) {
    json_array_append_new(json_object_get(report, "errors"),
                          json_string("the agent is stopping"));
    return reload_refused(a, report);
  }
  log_info("reload: reading %s", a->config_path);
  if (reload_prepare(a, &cfg, &ring, report) == NULL) {
    config_free(cfg);
    return reload_refused(a, report);
  }
  keep_restart_settings(a->cfg, cfg, json_object_get(report, "kept"));
  if (engine_reload(&a->engine, cfg, uv_now(&a->loop)) != 0) {
    json_array_append_new(json_object_get(report, "errors"),
                          json_string("out of memory"));
    http_abort(&a->http);
    seal_ring_free(ring);
    config_free(cfg);
    return reload_refused(a, report);
  }
  reload_swap(a, cfg, ring);
  log_info("reload: %zu behaviours, %zu checks", cfg->nbehaviours,
           cfg->nchecks);
  a->metrics.reloads_applied++;
  json_object_set_new(report, "applied", json_true());
  json_object_set_new(report, "behaviours",
                      json_integer((json_int_t)cfg->nbehaviours));
  json_object_set_new(report, "checks", json_integer((json_int_t)cfg->nchecks));
  json_object_del(report, "errors");
  self_refresh(&a->self);
  jobs_step(&a->jobs, 0);
  return report;
}

static json_t *ctl_reload(struct ctl *c) {
  return reload(AGENT_OF(c, ctl));
}

/* ---- signals, leave, stop ---- */

static void on_signal(uv_signal_t *s, int signum) {
  struct agent *a;
  if (signum == SIGHUP) {
    json_decref(reload(container_of(s, struct agent, sighup)));
    return;
  }
  a = signum == SIGTERM ? container_of(s, struct agent, sigterm)
                        : container_of(s, struct agent, sigint);
  log_info("%s: leaving the cluster", strsignal(signum));
  agent_leave(a);
}

static void agent_stop(struct agent *a, int exit_code);

static void on_leave_timer(uv_timer_t *t) {
  struct agent *a = container_of(t, struct agent, leave);
  net_publish(&a->net, WIRE_LEAVE);
  if (--a->leave_left == 0)
    agent_stop(a, 0);
}

static void agent_leave(struct agent *a) {
  if (a->stopping || !self_leave(&a->self))
    return;
  a->leave_left = AGENT_LEAVE_REPEAT;
  net_publish(&a->net, WIRE_LEAVE);
  a->leave_left--;
  uv_timer_start(&a->leave, on_leave_timer, AGENT_LEAVE_GAP_MS,
                 AGENT_LEAVE_GAP_MS);
}

static void on_runner_closed(struct runner *r) {}

static void agent_stop(struct agent *a, int exit_code) {
  if (a->stopping)
    return;
  a->stopping = true;
  a->exit_code = exit_code;
  notify_stop(&a->notify);
  self_stop(&a->self);
  net_save_members(&a->net);
  jobs_stop(&a->jobs);
  checks_stop(&a->checks);
  runner_close(&a->runner, on_runner_closed);
  ctl_close(&a->ctl);
  http_close(&a->http);
  net_close(&a->net);
  relay_close(&a->relay);
  agent_close_handle((uv_handle_t *)&a->wake);
  agent_close_handle((uv_handle_t *)&a->leave);
  agent_close_handle((uv_handle_t *)&a->sighup);
  agent_close_handle((uv_handle_t *)&a->sigterm);
  agent_close_handle((uv_handle_t *)&a->sigint);
  notify_close(&a->notify);
}

/* ---- start ---- */

static int start_signals(struct agent *a) {
  uv_signal_t *sigs[] = {&a->sighup, &a->sigterm, &a->sigint};
  int nums[] = {SIGHUP, SIGTERM, SIGINT};
  for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
    int rv = uv_signal_init(&a->loop, sigs[i]);
    if (rv != 0)
      return rv;
    if ((rv = uv_signal_start(sigs[i], on_signal, nums[i])) != 0)
      return rv;
  }
  return 0;
}

/* Refuse a state_dir that someone else could write to: what it holds
 * decides which scripts run after a restart. */
static int check_state_dir(struct agent *a) {
  char why[CONFIG_PATH_MAX + 160];
  int rv = state_dir_check(a->cfg->state_dir, why, sizeof(why));

  if (rv == 0)
    rv = state_migrate(a->cfg->state_dir, why, sizeof(why));
  if (rv != 0)
    log_error("state_dir refused: %s", why);
  return rv;
}

static int start(struct agent *a, uint64_t fd_limit) {
  uint64_t now = uv_now(&a->loop);
  struct seal_error serr;
  int rv;

  wire_hooks(a);
  uv_timer_init(&a->loop, &a->wake);
  uv_timer_init(&a->loop, &a->leave);
  http_init(&a->http, &a->loop, &a->metrics);
  net_init(&a->net, now, fd_limit);
  a->wake_at = UINT64_MAX;
  runner_init(&a->runner, &a->loop, AGENT_MAX_RUNNING, &a->metrics,
              jobs_started, jobs_done, &a->jobs);
  peers_init(&a->peers, a->cfg->name, a->cfg->max_members, on_peer_event, a);
  peers_set_max(&a->peers, a->cfg->max_members);
  peers_set_timing(&a->peers, a->cfg->heartbeat_ms, a->cfg->lost_after_ms,
                   a->cfg->reap_after_ms);
  if (a->cfg->key_file[0] != '\0' &&
      (rv = seal_ring_load(a->cfg->key_file, &a->ring, &serr)) != 0) {
    log_error("network.key_file: %s", serr.text);
    return rv;
  }
  if (a->ring != NULL)
    log_info("network.key_file: %zu keys; every message is sealed",
             seal_ring_size(a->ring));
  if ((rv = check_state_dir(a)) != 0)
    return rv;
  if ((rv = trust_init(&a->trust)) != 0 ||
      (rv = agent_trust_configure(a, a->cfg)) != 0)
    return rv;
  agent_trust_restore(a);
  if ((rv = engine_init(&a->engine, a->cfg, now)) != 0)
    return rv;
  jobs_restore(&a->jobs);
  if ((rv = start_signals(a)) != 0 || (rv = self_init(&a->self)) != 0)
    return rv;
  if ((rv = relay_init(&a->relay)) != 0)
    return rv;
  if ((rv = ctl_start(&a->ctl)) != 0 ||
      (rv = http_start(&a->http, a->cfg)) != 0 ||
      (rv = net_start(&a->net)) != 0)
    return rv;
  if ((rv = checks_start(&a->checks)) != 0)
    return rv;
  notify_start(&a->notify);
  log_info("agent %s (cluster %s) listening on %s, state %s, %zu behaviours",
           a->cfg->name, a->cfg->cluster, a->cfg->listen,
           self_record(&a->self)->state, a->cfg->nbehaviours);
  return 0;
}

static void free_all(struct agent *a) {
  jobs_free(&a->jobs);
  net_free(&a->net);
  engine_free(&a->engine);
  peers_free(&a->peers);
  self_free(&a->self);
  seal_ring_free(a->ring);
  trust_free(&a->trust);
  relay_free(&a->relay);
  metrics_free(&a->metrics);
  http_free(&a->http);
  config_free(a->cfg);
}

/* A full mesh needs two descriptors per member (docs/ARCHITECTURE.md):
 * take the hard limit, which systemd and most shells set far above the
 * soft one. Returns the limit in effect; 0: unknown. */
static uint64_t raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t soft = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      log_warn("cannot raise the open-files limit: %s", strerror(errno));
      rl.rlim_cur = soft;
    }
  }
  return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}

int agent_run(const char *path) {
  struct config_errors errs = {0};
  struct agent *a;
  uint64_t fd_limit;
  int rv, code;

  a = calloc(1, sizeof(*a));
  if (a == NULL)
    return 1;
  snprintf(a->config_path, sizeof(a->config_path), "%s", path);
  if (config_load(path, &a->cfg, &errs) != 0) {
    print_errors(&errs);
    config_errors_free(&errs);
    free(a);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  log_detect_journal();
  log_set_level((enum log_level)a->cfg->log_level);
  fd_limit = raise_fd_limit();
  /* libsodium seals messages and draws the random delays of agent_net.c. */
  if (sodium_init() < 0) {
    log_error("libsodium could not be initialised");
    config_free(a->cfg);
    free(a);
    return 1;
  }
  uv_loop_init(&a->loop);
  /* Before anything starts a thread: it takes systemd's variables out of
   * the environment. A failure only means systemd isn't told. */
  (void)notify_init(&a->notify, &a->loop);
  rv = start(a, fd_limit);
  if (rv != 0) {
    log_error("agent could not start: %s", choreo_strerror(rv));
    agent_stop(a, 1);
  }
  uv_run(&a->loop, UV_RUN_DEFAULT);
  code = a->exit_code;
  if (uv_loop_close(&a->loop) != 0)
    log_warn("handles left open at exit");
  free_all(a);
  free(a);
  return code;
}
