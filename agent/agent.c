/*
 * agent.c — the daemon's lifecycle: load the configuration, start every
 * module, handle signals (SIGHUP reloads, SIGTERM/SIGINT leave), and stop
 * cleanly; see agent.h for how the rest of the daemon is split.
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

static void print_errors(const struct config_errors *errs) {
  for (size_t i = 0; i < errs->n; i++)
    fprintf(stderr, "%s\n", errs->msg[i]);
  if (errs->more > 0)
    fprintf(stderr, "(%zu more problems not shown)\n", errs->more);
}

/* ---- wake-up: lost peers, reaping, settle and coalescing deadlines ---- */

static void on_wake(uv_timer_t *t) {
  struct agent *a = container_of(t, struct agent, wake);
  uint64_t now = uv_now(&a->loop), next;

  a->wake_at = UINT64_MAX;
  next = peers_tick(&a->peers, now, util_wall_ms(), a->cfg->lost_after_ms,
                    a->cfg->reap_after_ms);
  agent_wake_at(a, next);
  agent_check_sync(a);
  agent_step(a);
}

void agent_wake_at(struct agent *a, uint64_t when) {
  uint64_t now = uv_now(&a->loop);
  if (a->stopping || when == UINT64_MAX || when >= a->wake_at)
    return;
  a->wake_at = when;
  uv_timer_start(&a->wake, on_wake, when > now ? when - now : 0, 0);
}

/* ---- reload ---- */

static void warn_restart_needed(const struct config *old,
                                const struct config *cfg) {
  static const struct {
    const char *what;
    size_t off, len;
  } fields[] = {
#define F(field, what)                                                         \
  {what, offsetof(struct config, field), sizeof(((struct config *)0)->field)}
      F(name, "node.name"),
      F(cluster, "node.cluster"),
      F(listen, "network.listen"),
      F(advertise, "network.advertise"),
      F(socket, "control.socket"),
      F(state_dir, "state_dir"),
      F(key_file, "network.key_file"),
#undef F
  };
  for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
    if (strncmp((const char *)old + fields[i].off,
                (const char *)cfg + fields[i].off, fields[i].len) != 0)
      log_warn("reload: %s changed; it takes effect at the next restart",
               fields[i].what);
  }
  if (old->relay != cfg->relay)
    log_warn("reload: network.relay changed; it takes effect at the next "
             "restart");
  bool relays_same = old->nrelays == cfg->nrelays;
  for (size_t i = 0; relays_same && i < old->nrelays; i++)
    relays_same = strcmp(old->relays[i], cfg->relays[i]) == 0;
  if (!relays_same)
    log_warn("reload: network.relays changed; it takes effect at the next "
             "restart");
}

/* Keep the settings that need a restart, take everything else. */
static void carry_restart_settings(const struct config *old,
                                   struct config *cfg) {
  memcpy(cfg->name, old->name, sizeof(cfg->name));
  memcpy(cfg->cluster, old->cluster, sizeof(cfg->cluster));
  memcpy(cfg->listen, old->listen, sizeof(cfg->listen));
  memcpy(cfg->advertise, old->advertise, sizeof(cfg->advertise));
  memcpy(cfg->socket, old->socket, sizeof(cfg->socket));
  memcpy(cfg->state_dir, old->state_dir, sizeof(cfg->state_dir));
  memcpy(cfg->key_file, old->key_file, sizeof(cfg->key_file));
  cfg->relay = old->relay;
  cfg->nrelays = old->nrelays;
  memcpy(cfg->relays, old->relays, sizeof(cfg->relays));
}

static void reload(struct agent *a) {
  struct config_errors errs = {0};
  struct config *cfg = NULL, *old = a->cfg;
  uint64_t now = uv_now(&a->loop);

  log_info("reload: reading %s", a->config_path);
  if (a->ring != NULL) { /* key_file is kept as it was at start */
    struct seal_ring *ring = NULL;
    struct seal_error serr;
    if (seal_ring_load(a->cfg->key_file, &ring, &serr) != 0) {
      log_error("reload: network.key_file: %s; the previous keys stay",
                serr.text);
    } else {
      seal_ring_free(a->ring);
      a->ring = ring;
      log_info("reload: network.key_file: %zu keys", seal_ring_size(ring));
    }
  }
  if (config_load(a->config_path, &cfg, &errs) != 0) {
    for (size_t i = 0; i < errs.n; i++)
      log_error("reload: %s", errs.msg[i]);
    log_error("reload: configuration refused; the previous one stays");
    config_errors_free(&errs);
    return;
  }
  warn_restart_needed(old, cfg);
  carry_restart_settings(old, cfg);
  if (engine_reload(&a->engine, cfg, now) != 0) {
    log_error("reload: out of memory; the previous configuration stays");
    config_free(cfg);
    return;
  }
  agent_checks_stop(a);
  a->cfg = cfg;
  config_free(old);
  if (agent_checks_start(a) != 0)
    log_error("reload: checks could not be started");
  uv_timer_set_repeat(&a->heartbeat, cfg->heartbeat_ms);
  peers_set_timing(&a->peers, cfg->heartbeat_ms, cfg->lost_after_ms,
                   cfg->reap_after_ms);
  agent_wake_at(a, peers_next_deadline(&a->peers));
  log_info("reload: %zu behaviours, %zu checks", cfg->nbehaviours,
           cfg->nchecks);
  agent_self_refresh(a);
  agent_step(a);
}

/* ---- signals, leave, stop ---- */

static void on_signal(uv_signal_t *s, int signum) {
  struct agent *a = s->data;
  if (signum == SIGHUP) {
    reload(a);
    return;
  }
  log_info("%s: leaving the cluster", strsignal(signum));
  agent_leave(a);
}

static void on_leave_timer(uv_timer_t *t) {
  struct agent *a = container_of(t, struct agent, leave);
  agent_publish(a, WIRE_LEAVE);
  if (--a->leave_left == 0)
    agent_stop(a, 0);
}

void agent_leave(struct agent *a) {
  if (a->stopping || a->self.left)
    return;
  a->self.left = true;
  a->self.ver++;
  a->leave_left = AGENT_LEAVE_REPEAT;
  agent_publish(a, WIRE_LEAVE);
  a->leave_left--;
  uv_timer_start(&a->leave, on_leave_timer, AGENT_LEAVE_GAP_MS,
                 AGENT_LEAVE_GAP_MS);
}

static void on_runner_closed(struct runner *r) {}
static void on_control_closed(struct control *c) {}

static void close_handle(uv_handle_t *h) {
  if (h->loop != NULL && !uv_is_closing(h))
    uv_close(h, NULL);
}

void agent_stop(struct agent *a, int exit_code) {
  if (a->stopping)
    return;
  a->stopping = true;
  a->exit_code = exit_code;
  agent_checks_stop(a);
  runner_close(&a->runner, on_runner_closed);
  control_close(&a->control, on_control_closed);
  agent_net_close(a);
  close_handle((uv_handle_t *)&a->heartbeat);
  close_handle((uv_handle_t *)&a->wake);
  close_handle((uv_handle_t *)&a->soon);
  close_handle((uv_handle_t *)&a->answer);
  close_handle((uv_handle_t *)&a->list);
  close_handle((uv_handle_t *)&a->hello);
  close_handle((uv_handle_t *)&a->leave);
  close_handle((uv_handle_t *)&a->relay_hold.timer);
  close_handle((uv_handle_t *)&a->relay_news.timer);
  close_handle((uv_handle_t *)&a->sighup);
  close_handle((uv_handle_t *)&a->sigterm);
  close_handle((uv_handle_t *)&a->sigint);
}

/* ---- start ---- */

static int start_signals(struct agent *a) {
  uv_signal_t *sigs[] = {&a->sighup, &a->sigterm, &a->sigint};
  int nums[] = {SIGHUP, SIGTERM, SIGINT};
  for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
    int rv = uv_signal_init(&a->loop, sigs[i]);
    if (rv != 0)
      return rv;
    sigs[i]->data = a;
    if ((rv = uv_signal_start(sigs[i], on_signal, nums[i])) != 0)
      return rv;
  }
  return 0;
}

static int start_control(struct agent *a) {
  int rv = control_start(&a->control, &a->loop, a->cfg->socket,
                         a->cfg->socket_mode, &a->metrics, agent_on_request);
  if (rv == CHOREO_EEXISTS)
    log_error("control.socket: %s: another agent is running there",
              a->cfg->socket);
  else if (rv != 0)
    log_error("control.socket: %s: %s", a->cfg->socket, choreo_strerror(rv));
  return rv;
}

static int start(struct agent *a) {
  struct seal_error serr;
  int rv;
  uv_timer_init(&a->loop, &a->heartbeat);
  uv_timer_init(&a->loop, &a->wake);
  uv_timer_init(&a->loop, &a->soon);
  uv_timer_init(&a->loop, &a->answer);
  uv_timer_init(&a->loop, &a->list);
  uv_timer_init(&a->loop, &a->hello);
  uv_timer_init(&a->loop, &a->leave);
  a->wake_at = UINT64_MAX;
  a->started_at = uv_now(&a->loop);
  runner_init(&a->runner, &a->loop, AGENT_MAX_RUNNING, &a->metrics,
              agent_jobs_started, agent_jobs_done, a);
  peers_init(&a->peers, a->cfg->name, PEERS_MAX_DEFAULT, agent_peer_event, a);
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
  if ((rv = engine_init(&a->engine, a->cfg, a->started_at)) != 0)
    return rv;
  if ((rv = start_signals(a)) != 0 || (rv = agent_self_init(a)) != 0)
    return rv;
  if ((rv = agent_relay_init(a)) != 0)
    return rv;
  if ((rv = start_control(a)) != 0 || (rv = agent_net_start(a)) != 0)
    return rv;
  if ((rv = agent_checks_start(a)) != 0)
    return rv;
  log_info("agent %s (cluster %s) listening on %s, state %s, %zu behaviours",
           a->cfg->name, a->cfg->cluster, a->cfg->listen, a->self.state,
           a->cfg->nbehaviours);
  return 0;
}

static void free_all(struct agent *a) {
  for (struct job *j = a->jobs, *next; j != NULL; j = next) {
    next = j->next;
    free(j);
  }
  free(a->eps);
  engine_free(&a->engine);
  peers_free(&a->peers);
  record_free(&a->self);
  seal_ring_free(a->ring);
  agent_relay_free(a);
  config_free(a->cfg);
}

/* A full mesh needs two descriptors per member (docs/ARCHITECTURE.md):
 * take the hard limit, which systemd and most shells set far above the
 * soft one. */
static void raise_fd_limit(struct agent *a) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlim_t soft = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      log_warn("cannot raise the open-files limit: %s", strerror(errno));
      rl.rlim_cur = soft;
    }
  }
  a->fd_limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
}

int agent_run(const char *path) {
  struct config_errors errs = {0};
  struct agent *a;
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
  raise_fd_limit(a);
  /* libsodium seals messages and draws the random delays of agent_net.c. */
  if (sodium_init() < 0) {
    log_error("libsodium could not be initialised");
    config_free(a->cfg);
    free(a);
    return 1;
  }
  uv_loop_init(&a->loop);
  rv = start(a);
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
