/*
 * sim_main.c — choreo-sim's command line, the simulated cluster, its
 * scenarios, the invariants checked while it runs and the summary line.
 *
 * The cluster: node 0 is the seed. With --relays R, nodes 0..R-1 are
 * relays (network.relay), each joining the others, and the others leaves
 * (network.relays: all the relays), as docs/OPERATIONS.md "Relays" says
 * and bench/converge.py and bench/reaction.py set them up; with
 * 0 relays every node is a member of the full mesh, joining node 0. The
 * last --dbs nodes are in group "db"; the other non-relay nodes are in
 * group "web" and have one level behaviour, `follow`, watching group db
 * with `when: {any: maintenance}`. During the run the first db node
 * alternates between maintenance and ready (--changes times): each
 * change is timed until every running node's table has it (and until
 * 99 % have it).
 *
 * Invariants, checked every heartbeat while the run goes, and once more
 * after it, when the simulation has gone on without changes until the
 * last disturbance is lost_after plus three heartbeats old (docs/
 * ARCHITECTURE.md "Simulation"):
 *   views      once the network has been calm (no partition, crash,
 *              restart, forging or flapping) for lost_after plus three
 *              heartbeats, every running node's entry for every other
 *              running node whose record has not changed for lost_after
 *              holds exactly that record (incarnation, version), heard
 *              and alive; a node down for longer is not alive in it.
 *              A record newer than its node's own (pinned) fails it too.
 *   behaviour  then too, two heartbeats after the db's last change,
 *              every synced web node with no action in flight that
 *              holds the db's current record has as its last action RUN
 *              exactly when a running db node is in maintenance (the
 *              truth), REVERT or none otherwise; at the final check
 *              every such node, whatever it holds
 *   bounds     never does a table hold an incarnation out of bounds
 *              (policy_inc_in_bounds: a forged far-future one)
 *   memory     every table within its byte budget (peers.bytes_max)
 * A broken invariant prints the seed, the virtual time and the event
 * last handled, and the process exits 1.
 */
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "policy.h"
#include "recpool.h"
#include "sim.h"
#include "util.h"

#define MS 1000ULL

enum world {
  W_START,
  W_CRASH,
  W_SET,   /* the timed change of the db node */
  W_CUT,   /* the partition starts */
  W_HEAL,  /* and ends */
  W_PROBE, /* cold convergence */
  W_CHECK, /* the invariants */
  W_STEADY,
  W_FORGE,
  W_FLAP,
  W_SLOW, /* relay 0's CPU costs SIM_SLOW_FACTOR times more, or again 1 */
  W_CALM, /* a disturbance ends */
};

/* relay-starved: how many times the CPU model's costs the starved relay
 * pays (a relay of 100 then needs about two seconds of CPU a second) */
#define SIM_SLOW_FACTOR 400

static struct sim S;
static struct sim_event cur; /* the event being handled */
static FILE *summary_out;    /* the summary, until the final check */
static uint64_t conv_us;     /* cold convergence; 0: not yet */
static size_t probe_o, probe_s;
static uint64_t steady_from;
static unsigned changes_made;
static double *reach_all, *reach_99;
static size_t nsamples;
static bool change_counts;
static uint64_t forge_seq;
static uint64_t view_checks, behaviour_checks;

/* ---- options ---- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: choreo-sim --nodes N [--relays R] [--seed S] [--loss P]\n"
          "                  [--scenario NAME] [--seconds T] [--heartbeat MS]\n"
          "                  [--lost-after MS] [--dup P] [--latency-us US]\n"
          "                  [--jitter-us US] [--launch-ms MS] [--skew-ms MS]\n"
          "                  [--leaves-after MS]\n"
          "                  [--changes K] [--dbs D] [--wake-us US]\n"
          "                  [--busy-us US] [--decode-us US] [--encode-us US]\n"
          "                  [--send-us US] [--set-us US]\n"
          "                  [--cores C] [--trace]\n"
          "scenarios: steady (default), partition, flap, relay-dies,\n"
          "           forged-members, crash-restart, relay-cut,\n"
          "           relay-starved\n"
          "Runs the real protocol code of N agents in virtual time and prints\n"
          "one summary line; exits 1 when an invariant breaks\n"
          "(docs/ARCHITECTURE.md \"Simulation\").\n");
}

static bool num(const char *s, uint64_t *out) {
  char *end;
  unsigned long long v;
  if (s == NULL || *s < '0' || *s > '9')
    return false;
  v = strtoull(s, &end, 10);
  if (*end != '\0')
    return false;
  *out = v;
  return true;
}

static bool prob(const char *s, double *out) {
  char *end;
  double v;
  if (s == NULL)
    return false;
  v = strtod(s, &end);
  if (*end != '\0' || !(v >= 0 && v <= 1))
    return false;
  *out = v;
  return true;
}

static const char *scenarios[] = {
    "steady",         "partition",     "flap",      "relay-dies",
    "forged-members", "crash-restart", "relay-cut", "relay-starved"};

static int parse(int argc, char **argv, struct sim_opts *o) {
  struct {
    const char *name;
    uint64_t *v;
  } nums[] = {
      {"--seed", &o->seed},
      {"--seconds", &o->seconds},
      {"--heartbeat", &o->heartbeat_ms},
      {"--lost-after", &o->lost_after_ms},
      {"--latency-us", &o->latency_us},
      {"--jitter-us", &o->jitter_us},
      {"--launch-ms", &o->launch_ms},
      {"--leaves-after", &o->leaves_after_ms},
      {"--skew-ms", &o->skew_ms},
      {"--changes", &o->changes},
      {"--wake-us", &o->wake_us},
      {"--busy-us", &o->busy_us},
      {"--decode-us", &o->decode_us},
      {"--encode-us", &o->encode_us},
      {"--send-us", &o->send_us},
      {"--set-us", &o->set_us},
      {"--cores", &o->cores},
  };
  uint64_t v;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
    bool done = false;
    if (strcmp(a, "--trace") == 0) {
      o->trace = true;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      exit(0);
    }
    for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]) && !done; k++) {
      if (strcmp(a, nums[k].name) != 0)
        continue;
      if (!num(val, nums[k].v)) {
        fprintf(stderr, "choreo-sim: %s: expected a whole number, got %s\n", a,
                val ? val : "nothing");
        return -1;
      }
      done = true;
    }
    if (done) {
      i++;
      continue;
    }
    if (strcmp(a, "--nodes") == 0 || strcmp(a, "--relays") == 0 ||
        strcmp(a, "--dbs") == 0) {
      if (!num(val, &v) || v > 100000) {
        fprintf(stderr, "choreo-sim: %s: expected 0..100000, got %s\n", a,
                val ? val : "nothing");
        return -1;
      }
      *(a[2] == 'n'   ? &o->nodes
        : a[2] == 'r' ? &o->relays
                      : &o->dbs) = (size_t)v;
    } else if (strcmp(a, "--loss") == 0 || strcmp(a, "--dup") == 0) {
      if (!prob(val, a[2] == 'l' ? &o->loss : &o->dup)) {
        fprintf(stderr, "choreo-sim: %s: expected a probability 0..1, got %s\n",
                a, val ? val : "nothing");
        return -1;
      }
    } else if (strcmp(a, "--scenario") == 0) {
      size_t k = 0;
      for (; k < sizeof(scenarios) / sizeof(scenarios[0]); k++)
        if (val != NULL && strcmp(val, scenarios[k]) == 0)
          break;
      if (k == sizeof(scenarios) / sizeof(scenarios[0])) {
        fprintf(stderr, "choreo-sim: --scenario: unknown scenario %s\n",
                val ? val : "(none)");
        return -1;
      }
      o->scenario = scenarios[k];
    } else {
      fprintf(stderr, "choreo-sim: unknown option %s (see --help)\n", a);
      return -1;
    }
    i++;
  }
  if (o->nodes < 2 || o->relays >= o->nodes || o->dbs < 1 ||
      o->dbs + o->relays >= o->nodes) {
    fprintf(stderr, "choreo-sim: need --nodes >= 2, fewer relays and dbs "
                    "than nodes, at least one db and one other node\n");
    return -1;
  }
  if (o->nodes > CONFIG_MEMBERS_MAX || o->cores > 1024 || o->changes > 100000 ||
      o->seconds > 1000000) {
    fprintf(stderr,
            "choreo-sim: at most %d --nodes (network.max_members), "
            "1024 --cores, 100000 --changes and 1000000 --seconds\n",
            CONFIG_MEMBERS_MAX);
    return -1;
  }
  if (o->heartbeat_ms < 10 ||
      (o->lost_after_ms != 0 && o->lost_after_ms <= o->heartbeat_ms)) {
    fprintf(stderr, "choreo-sim: --heartbeat at least 10 ms, --lost-after "
                    "above it\n");
    return -1;
  }
  if (o->leaves_after_ms > 0 &&
      (o->relays == 0 || strcmp(o->scenario, "steady") != 0 ||
       o->leaves_after_ms >= o->seconds * 1000)) {
    fprintf(stderr, "choreo-sim: --leaves-after needs --relays, the steady "
                    "scenario, and to be shorter than --seconds\n");
    return -1;
  }
  if (strcmp(o->scenario, "steady") != 0 &&
      o->seconds * 1000 < 30 * o->heartbeat_ms) {
    fprintf(stderr,
            "choreo-sim: scenario %s needs --seconds of at least 30 "
            "heartbeats\n",
            o->scenario);
    return -1;
  }
  return 0;
}

/* ---- the cluster ---- */

static bool is_db(size_t i) {
  return i >= S.n - S.o.dbs;
}

static void configure(struct sim_node *nd, size_t i) {
  struct config *c = &nd->cfg;
  const struct sim_opts *o = &S.o;
  memset(c, 0, sizeof(*c));
  snprintf(c->name, sizeof(c->name), "n%zu", i);
  snprintf(c->cluster, sizeof(c->cluster), "sim");
  snprintf(c->state, sizeof(c->state), "ready");
  c->data = json_object();
  c->ngroups = 1;
  snprintf(c->groups[0], sizeof(c->groups[0]), "%s",
           i < o->relays ? "relay"
           : is_db(i)    ? "db"
                         : "web");
  sim_addr_of((int)i, c->listen, sizeof(c->listen));
  snprintf(c->advertise, sizeof(c->advertise), "%s", c->listen);
  c->heartbeat_ms = o->heartbeat_ms;
  c->lost_after_ms = o->lost_after_ms;
  c->reap_after_ms = 24 * 3600 * 1000ULL;
  /* network.max_members, as an operator of a cluster larger than the
   * default sets it. */
  c->max_members = o->nodes > CONFIG_MEMBERS_DEFAULT ? (unsigned)o->nodes
                                                     : CONFIG_MEMBERS_DEFAULT;
  if (o->relays > 0) {
    c->relay = i < o->relays;
    /* A relay joins the other relays (docs/OPERATIONS.md "Relays"). */
    for (size_t r = 0;
         i < o->relays && r < o->relays && c->njoin < CONFIG_JOIN_MAX; r++)
      if (r != i)
        sim_addr_of((int)r, c->join[c->njoin++], sizeof(c->join[0]));
    for (size_t r = 0; i >= o->relays && r < o->relays && r < CONFIG_JOIN_MAX;
         r++)
      sim_addr_of((int)r, c->relays[c->nrelays++], sizeof(c->relays[0]));
  } else if (i > 0) {
    sim_addr_of(0, c->join[c->njoin++], sizeof(c->join[0]));
  }
  if (i >= o->relays && !is_db(i)) {
    struct config_behaviour *b = calloc(1, sizeof(*b));
    if (b == NULL)
      abort();
    snprintf(b->name, sizeof(b->name), "follow");
    snprintf(b->peers.group, sizeof(b->peers.group), "db");
    b->has_when = true;
    b->when.kind = COND_ANY;
    b->when.nstates = 1;
    snprintf(b->when.states[0], sizeof(b->when.states[0]), "maintenance");
    b->timeout_ms = 30000;
    c->behaviours = b;
    c->nbehaviours = 1;
  }
}

int sim_node_init(struct sim *s, struct sim_node *nd, int id) {
  memset(nd, 0, sizeof(*nd));
  nd->id = id;
  nd->sim = s;
  nd->last_action = -1;
  configure(nd, (size_t)id);
  if (s->o.skew_ms > 0)
    nd->skew_ms = (int64_t)sim_rand_below(&s->rand, 2 * s->o.skew_ms + 1) -
                  (int64_t)s->o.skew_ms;
  return record_init(&nd->rec);
}

void sim_node_free(struct sim_node *nd) {
  sim_node_crash(nd);
  sim_inbox_free(&nd->inbox);
  record_free(&nd->rec);
  free(nd->disk.members);
  free(nd->cfg.behaviours);
  json_decref(nd->cfg.data);
}

/* ---- reports ---- */

static void describe(char *buf, size_t len) {
  static const char *w[] = {"start", "crash",  "set",   "cut",  "heal", "probe",
                            "check", "steady", "forge", "flap", "calm"};
  static const char *t[] = {"heartbeat", "soon", "answer", "list",
                            "hello",     "wake", "hold",   "news"};
  switch (cur.type) {
  case SIM_EV_DELIVER:
    snprintf(buf, len, "a message of %zu bytes delivered to n%d",
             cur.blob ? cur.blob->len : 0, cur.node);
    break;
  case SIM_EV_TIMER:
    snprintf(buf, len, "n%d's %s timer", cur.node, t[cur.arg]);
    break;
  case SIM_EV_DONE:
    snprintf(buf, len, "n%d's action ended", cur.node);
    break;
  case SIM_EV_WORLD:
    snprintf(buf, len, "scenario step %s (node %d)", w[cur.arg], cur.node);
    break;
  case SIM_EV_WAKE:
    snprintf(buf, len, "n%d's CPU free", cur.node);
    break;
  }
}

static void broken(const char *what, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void broken(const char *what, const char *fmt, ...) {
  char detail[512], ev[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof(detail), fmt, ap);
  va_end(ap);
  describe(ev, sizeof(ev));
  printf("invariant broken: %s: %s; seed %" PRIu64 ", t=%.3f s, after %s "
         "(scenario %s, nodes %zu, relays %zu)\n",
         what, detail, S.o.seed, (double)S.now / 1e6, ev, S.o.scenario, S.n,
         S.o.relays);
  fflush(stdout);
  exit(1);
}

/* ---- the truth ---- */

/* What can be wrong with o's view of x, by view_fault()'s index. */
static const char *const view_faults[] = {"missing", "not heard", "not alive",
                                          "another record"};

/* What is wrong with o's view of x (an index into view_faults); -1:
 * nothing, o holds x's current record, heard and alive. */
static int view_fault(const struct sim_node *o, const struct sim_node *x) {
  const struct peer *p = peers_find(&o->peers, x->cfg.name);
  if (p == NULL)
    return 0;
  if (!p->heard)
    return 1;
  if (p->status != PEER_ALIVE)
    return 2;
  if (p->rec->inc != x->rec.inc || p->rec->ver != x->rec.ver)
    return 3;
  return -1;
}

/* Whether observer o's entry for node x is x's record; why not in *why. */
static bool view_ok(const struct sim_node *o, const struct sim_node *x,
                    const char **why) {
  int f = view_fault(o, x);
  if (f >= 0)
    *why = view_faults[f];
  return f < 0;
}

static void probe(void) {
  size_t total = S.n * S.n, done = 0;
  while (done < total) {
    const char *why;
    if (probe_o != probe_s &&
        !view_ok(&S.nodes[probe_o], &S.nodes[probe_s], &why))
      return;
    done++;
    if (++probe_s == S.n) {
      probe_s = 0;
      probe_o = (probe_o + 1) % S.n;
    }
  }
  conv_us = S.now;
}

static bool db_truth(void) {
  for (size_t i = S.n - S.o.dbs; i < S.n; i++)
    if (S.nodes[i].up && strcmp(S.nodes[i].rec.state, "maintenance") == 0)
      return true;
  return false;
}

static bool db_views_current(const struct sim_node *o) {
  const char *why;
  for (size_t i = S.n - S.o.dbs; i < S.n; i++)
    if (S.nodes[i].up && !view_ok(o, &S.nodes[i], &why))
      return false;
  return true;
}

static void check_memory_bounds(void) {
  for (size_t i = 0; i < S.n; i++) {
    const struct sim_node *o = &S.nodes[i];
    if (!o->up)
      continue;
    if (o->peers.bytes > o->peers.bytes_max)
      broken("memory", "n%zu's table holds %zu bytes, budget %zu", i,
             o->peers.bytes, o->peers.bytes_max);
    for (size_t k = 0; k < o->peers.n; k++)
      if (!policy_inc_in_bounds(o->peers.v[k]->rec->inc, sim_wall(o)))
        broken("pinned",
               "n%zu holds %s at incarnation %" PRIu64 ", out of bounds", i,
               o->peers.v[k]->rec->name, o->peers.v[k]->rec->inc);
  }
}

/* How long the oldest event waiting for the node's CPU has waited (ms). */
static double backlog_ms(const struct sim_node *nd) {
  uint64_t at = sim_inbox_oldest(&nd->inbox);
  return at < S.now ? (double)(S.now - at) / 1e3 : 0;
}

/* Whether copies over connection `link` come from a relay. */
static bool from_relay(int link) {
  int from = sim_link_from(link);
  return from >= 0 && (size_t)from < S.o.relays;
}

/* Of the deliveries waiting for nd, those that came from relays. */
static size_t waiting_from_relays(const struct sim_node *nd) {
  size_t k = 0;
  for (size_t q = 0; q < nd->inbox.nqueues; q++)
    if (from_relay(nd->inbox.queues[q].link))
      k += nd->inbox.queues[q].msgs.n;
  return k;
}

/* --trace, while the cluster forms: which views are not there yet (every
 * pair looked at: N² lookups a heartbeat) */
static void trace_unconverged(void) {
  size_t count[ARRAY_SIZE(view_faults)] = {0}, observers = 0, eg_o = 0,
         eg_s = 0;
  int eg = -1;
  if (conv_us != 0)
    return;
  for (size_t i = 0; i < S.n; i++) {
    bool behind = false;
    for (size_t j = 0; j < S.n; j++) {
      int f = j == i ? -1 : view_fault(&S.nodes[i], &S.nodes[j]);
      if (f < 0)
        continue;
      count[f]++;
      if (eg < 0) {
        eg = f;
        eg_o = i;
        eg_s = j;
      }
      behind = true;
    }
    observers += behind;
  }
  fprintf(stderr, "; not formed: %zu nodes lack a view (", observers);
  for (size_t k = 0; k < ARRAY_SIZE(view_faults); k++)
    fprintf(stderr, "%s%zu %s", k ? ", " : "", count[k], view_faults[k]);
  fprintf(stderr, ")");
  if (eg >= 0)
    fprintf(stderr, ", e.g. n%zu's of n%zu: %s", eg_o, eg_s, view_faults[eg]);
}

/* --trace: each heartbeat, on stderr, how far behind the relays and the
 * most loaded other node are. */
static void trace(void) {
  size_t worst = S.o.relays;
  fprintf(stderr, "t=%.1f s:", (double)S.now / 1e6);
  for (size_t i = 0; i < S.n; i++) {
    const struct sim_node *nd = &S.nodes[i];
    if (i < S.o.relays)
      fprintf(
          stderr,
          " n%zu %zu waiting (%zu from relays; dropped on full connections "
          "%" PRIu64 ", %" PRIu64 " from relays), oldest %.0f ms, CPU %.0f ms, "
          "%" PRIu64 " decodes, %" PRIu64 " sent (from the start: own %" PRIu64
          ", lists %" PRIu64 ", forwarded %" PRIu64 " (changes %" PRIu64
          "), catch-ups %" PRIu64 "; batches of changes %" PRIu64
          " holding %" PRIu64 " frames, of repeats %" PRIu64 " holding %" PRIu64
          "; share %zu of %zu relays, active %d), %" PRIu64
          " in (hello %" PRIu64 ", state %" PRIu64 ", members %" PRIu64
          ", resync %" PRIu64 ");",
          i, nd->inbox.n, waiting_from_relays(nd), nd->dropped_full[0],
          nd->dropped_full[1], backlog_ms(nd), (double)nd->cpu_us / 1e3,
          nd->decodes, nd->tx_msgs, nd->tx_own, nd->tx_lists, nd->tx_forwarded,
          nd->tx_fwd_news, nd->tx_catch_ups, nd->fwd_batches[1],
          nd->fwd_frames[1], nd->fwd_batches[0], nd->fwd_frames[0], nd->share_n,
          nd->nothers, sim_node_share_active(nd), nd->rx_msgs,
          nd->rx_type[WIRE_HELLO], nd->rx_type[WIRE_STATE],
          nd->rx_type[WIRE_MEMBERS], nd->rx_resync);
    else if (worst < S.n && nd->inbox.n > S.nodes[worst].inbox.n)
      worst = i;
  }
  if (worst < S.n)
    fprintf(stderr, " worst other n%zu %zu waiting, oldest %.0f ms", worst,
            S.nodes[worst].inbox.n, backlog_ms(&S.nodes[worst]));
  trace_unconverged();
  fprintf(stderr, "\n");
}

/* --trace, at a change: the relays' backlog then (a change waits behind
 * what they have not read yet) */
static void trace_set(void) {
  fprintf(stderr, "t=%.3f s: n%d changes state;", (double)S.now / 1e6,
          S.change_node);
  for (size_t i = 0; i < S.o.relays && i < S.n; i++)
    fprintf(stderr, " n%zu %zu waiting, oldest %.0f ms;", i, S.nodes[i].inbox.n,
            backlog_ms(&S.nodes[i]));
  fprintf(stderr, "\n");
}

/* --trace, for a timed change that reached every node (said when the next
 * begins): how long it took, and when each relay took it in */
static void trace_change(double to99_ms, double all_ms) {
  fprintf(stderr,
          "the change of t=%.3f s reached 99%% in %.2f ms, all in "
          "%.2f ms;",
          (double)S.change_at / 1e6, to99_ms, all_ms);
  for (size_t i = 0; i < S.o.relays && i < S.n; i++)
    if (S.change_seen[i] != 0)
      fprintf(stderr, " n%zu had it after %.2f ms;", i,
              (double)(S.change_seen[i] - S.change_at) / 1e3);
  fprintf(stderr, "\n");
}

static void check_views(uint64_t stable) {
  for (size_t i = 0; i < S.n; i++) {
    const struct sim_node *o = &S.nodes[i];
    if (!o->up)
      continue;
    for (size_t j = 0; j < S.n; j++) {
      const struct sim_node *x = &S.nodes[j];
      const struct peer *p;
      const char *why;
      if (j == i)
        continue;
      if (x->up) {
        if (S.now - x->stable_since < stable || S.now - x->started_us < stable)
          continue;
        if (!view_ok(o, x, &why)) {
          p = peers_find(&o->peers, x->cfg.name);
          /* With how far behind each node's CPU is, and since when the
           * observer has not heard the node: an overloaded node shows. */
          broken("views",
                 "n%zu's view of n%zu: %s (holds inc %" PRIu64 " ver %" PRIu64
                 ", n%zu is at inc %" PRIu64 " ver %" PRIu64
                 "; last heard %.1f s ago; %zu events waiting for n%zu's CPU, "
                 "the oldest for %.1f ms; %zu for n%zu's, %.1f ms)",
                 i, j, why, p ? p->rec->inc : 0, p ? p->rec->ver : 0, j,
                 x->rec.inc, x->rec.ver,
                 p ? (double)(sim_now_ms(&S) - p->last_seen) / 1e3 : -1.0,
                 o->inbox.n, i, backlog_ms(o), x->inbox.n, j, backlog_ms(x));
        }
      } else if ((p = peers_find(&o->peers, x->cfg.name)) != NULL &&
                 p->status == PEER_ALIVE && p->heard &&
                 S.now - o->started_us >= stable) {
        broken("views", "n%zu holds n%zu alive, which is down", i, j);
      }
    }
  }
}

/* Every synced web node with no action in flight has as last action what
 * its condition says on the truth. Not strict: only nodes whose view of
 * the db nodes is the truth already (the engine's part); a view still
 * behind is the views invariant's, whose bound is lost_after. */
static void check_behaviours(bool strict) {
  bool truth = db_truth();
  behaviour_checks++;
  for (size_t i = 0; i < S.n; i++) {
    const struct sim_node *o = &S.nodes[i];
    bool ran;
    if (!o->up || o->cfg.nbehaviours == 0 || !o->synced || o->action_busy)
      continue;
    if (!strict && !db_views_current(o))
      continue;
    ran = o->last_action == ENGINE_ACT_RUN;
    if (ran != truth) {
      const struct sim_node *db = &S.nodes[S.n - S.o.dbs];
      const struct peer *p = peers_find(&o->peers, db->cfg.name);
      broken("behaviour",
             "n%zu's last action is %s, but a db node in maintenance is %s "
             "(it holds n%d in %s at ver %" PRIu64 ", which is in %s at ver "
             "%" PRIu64 ")",
             i,
             o->last_action < 0
                 ? "none"
                 : engine_action_name((enum engine_action_type)o->last_action),
             truth ? "true" : "false", db->id, p ? peer_state(p) : "nothing",
             p ? p->rec->ver : 0, db->rec.state, db->rec.ver);
    }
  }
}

/* relay-starved: relay 0 pays SIM_SLOW_FACTOR times its CPU costs */
static bool starved(void) {
  return S.n > 0 && S.nodes[0].slow > 1;
}

static bool calm_enough(void) {
  const struct sim_opts *o = &S.o;
  return !S.cut && !starved() &&
         S.now - S.calm_since >= (o->lost_after_ms + 3 * o->heartbeat_ms) * MS;
}

/* The db nodes' records have not changed for for_us. */
static bool db_settled(uint64_t for_us) {
  for (size_t i = S.n - S.o.dbs; i < S.n; i++) {
    const struct sim_node *nd = &S.nodes[i];
    if (nd->up && (nd->rec.inc != nd->seen_inc || nd->rec.ver != nd->seen_ver ||
                   S.now - nd->stable_since < for_us))
      return false;
  }
  return true;
}

/* Every heartbeat: note records that changed, then check. */
static void check(void) {
  uint64_t stable = S.o.lost_after_ms * MS;
  for (size_t i = 0; i < S.n; i++) {
    struct sim_node *nd = &S.nodes[i];
    if (nd->up &&
        (nd->rec.inc != nd->seen_inc || nd->rec.ver != nd->seen_ver)) {
      nd->seen_inc = nd->rec.inc;
      nd->seen_ver = nd->rec.ver;
      nd->stable_since = S.now;
    }
  }
  check_memory_bounds();
  if (!calm_enough())
    return;
  view_checks++;
  check_views(stable);
  if (db_settled(2 * S.o.heartbeat_ms * MS))
    check_behaviours(db_settled(stable));
}

void sim_observe(struct sim_node *nd, const struct peer_event *ev) {
  const struct sim_node *x;
  if (S.change_node < 0 || S.change_seen == NULL)
    return;
  x = &S.nodes[S.change_node];
  if (strcmp(ev->peer->rec->name, x->cfg.name) != 0 ||
      S.change_seen[nd->id] != 0 || ev->peer->rec->inc != S.change_inc ||
      ev->peer->rec->ver < S.change_ver)
    return;
  S.change_seen[nd->id] = nd->cpu > S.change_at ? nd->cpu : S.change_at + 1;
  S.change_reached++;
}

void sim_action(struct sim_node *nd, const struct engine_action *a) {
  if (a->type == ENGINE_ACT_RUN || a->type == ENGINE_ACT_REVERT) {
    nd->last_action = (int)a->type;
    nd->action_busy = true;
    nd->actions++;
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Close the change being timed: a sample if every running node had it. */
static void close_change(void) {
  size_t targets = 0, k = 0;
  uint64_t *t;
  if (S.change_node < 0 || !change_counts)
    return;
  t = calloc(S.n, sizeof(*t));
  if (t == NULL)
    abort();
  for (size_t i = 0; i < S.n; i++) {
    if ((int)i == S.change_node || !S.nodes[i].up)
      continue;
    targets++;
    if (S.change_seen[i] != 0)
      t[k++] = S.change_seen[i] - S.change_at;
  }
  if (targets > 0 && k == targets) {
    size_t i99 = (targets * 99 + 99) / 100;
    qsort(t, k, sizeof(*t), cmp_u64);
    reach_all[nsamples] = (double)t[k - 1] / 1000.0;
    reach_99[nsamples] = (double)t[i99 - 1] / 1000.0;
    if (S.o.trace)
      trace_change(reach_99[nsamples], reach_all[nsamples]);
    nsamples++;
  }
  change_counts = false;
  free(t);
}

/* ---- scenarios ---- */

static void world(uint64_t at, enum world w, int node) {
  if (w == W_CRASH && node >= 0)
    S.nodes[node].disk.restarts = true;
  sim_at(&S, at, SIM_EV_WORLD, node, (int)w, 0, NULL);
}

static void disturb(void) {
  S.calm_since = S.now;
}

static void forge(void) {
  /* A member list from a node nobody knows: real names at a forged
   * address, half with an incarnation ten days ahead (out of bounds),
   * half one second ahead of the real one (in bounds: the node refutes). */
  struct wire_member list[9];
  struct wire_msg m;
  char *buf = NULL;
  size_t len = 0;
  int64_t wall = 1800000000000LL + (int64_t)(S.now / 1000);
  memset(&m, 0, sizeof(m));
  m.type = WIRE_MEMBERS;
  snprintf(m.cluster, sizeof(m.cluster), "sim");
  snprintf(m.from, sizeof(m.from), "forger");
  m.inc = (uint64_t)(wall / 1000);
  m.seq = ++forge_seq;
  m.time = (uint64_t)wall;
  memset(list, 0, sizeof(list));
  snprintf(list[0].name, sizeof(list[0].name), "forger");
  snprintf(list[0].addr, sizeof(list[0].addr), "tcp://forger.invalid:1");
  list[0].inc = m.inc;
  list[0].ver = 1;
  for (size_t k = 1; k < 9; k++) {
    const struct sim_node *x = &S.nodes[sim_rand_below(&S.rand, S.n)];
    snprintf(list[k].name, sizeof(list[k].name), "%s", x->cfg.name);
    snprintf(list[k].addr, sizeof(list[k].addr), "tcp://evil.invalid:666");
    list[k].inc = k % 2 ? m.inc + 10 * 86400 : x->rec.inc + 1;
    list[k].ver = 1;
  }
  m.members = list;
  m.nmembers = 9;
  if (wire_encode(&m, &buf, &len) != 0)
    return;
  /* to a few nodes, as if its PUB were connected to their inboxes */
  for (int k = 0; k < 5; k++) {
    int to = (int)sim_rand_below(&S.rand, S.n);
    struct sim_blob *b = sim_blob_new(buf, len);
    sim_at(&S, S.now + S.o.latency_us, SIM_EV_DELIVER, to, -1, S.nodes[to].life,
           b);
  }
  free(buf);
}

static void schedule(void) {
  const struct sim_opts *o = &S.o;
  uint64_t H = o->heartbeat_ms * MS, end = o->seconds * 1000 * MS;
  uint64_t leaves = o->leaves_after_ms * MS;
  uint64_t first = leaves + 6 * H, gap = 3 * H / 2;
  const char *sc = o->scenario;

  world(0, W_START, 0);
  for (size_t i = 1; i < S.n; i++)
    world((o->launch_ms > 0 ? sim_rand_below(&S.rand, o->launch_ms * MS) : 0) +
              (i >= o->relays ? leaves : 0),
          W_START, (int)i);
  world(10 * MS, W_PROBE, -1);
  world(H, W_CHECK, -1);
  world(first - H / 2, W_STEADY, -1);
  if (o->changes > 0 && end > first + 2 * H &&
      (end - first - 2 * H) / o->changes > gap)
    gap = (end - first - 2 * H) / o->changes;
  for (uint64_t k = 0; k < o->changes && first + k * gap + H <= end; k++)
    world(first + k * gap, W_SET, (int)(S.n - o->dbs));
  if (strcmp(sc, "partition") == 0 || strcmp(sc, "relay-cut") == 0) {
    world(8 * H, W_CUT, -1);
    world(18 * H, W_HEAL, -1);
  } else if (strcmp(sc, "relay-dies") == 0) {
    int r = o->relays > 1 ? 1 : 0;
    world(8 * H + 37 * H / 100, W_CRASH, r);
    world(14 * H, W_START, r);
  } else if (strcmp(sc, "crash-restart") == 0) {
    for (size_t i = 0; i < S.n; i++) {
      if (i == 0 || (i % 13 != 5 && !is_db(i)))
        continue;
      world(8 * H + sim_rand_below(&S.rand, H), W_CRASH, (int)i);
      world(9 * H + sim_rand_below(&S.rand, 5 * H), W_START, (int)i);
    }
  } else if (strcmp(sc, "forged-members") == 0) {
    for (uint64_t t = 8 * H; t < 18 * H; t += 100 * MS)
      world(t, W_FORGE, -1);
    world(18 * H, W_CALM, -1);
  } else if (strcmp(sc, "relay-starved") == 0) {
    /* relay 0 while the cluster forms and after: it reads its inbox
     * seconds behind, then has its CPU back */
    world(H / 2, W_SLOW, -1);
    world(10 * H, W_SLOW, -1);
  } else if (strcmp(sc, "flap") == 0) {
    int f = (int)(S.n - o->dbs - 1);
    for (uint64_t t = 8 * H; t < 16 * H;
         t += 100 * MS + sim_rand_below(&S.rand, 300 * MS))
      world(t, W_FLAP, f);
    world(16 * H, W_CALM, -1);
  }
}

static void cut(void) {
  /* a third of the nodes, relay 1 among them when there are relays;
   * relay-cut: relay 1 alone, still running, cut off from everyone */
  bool relay_only = strcmp(S.o.scenario, "relay-cut") == 0;
  memset(S.side, 0, S.n);
  for (size_t i = 0; i < S.n; i++)
    S.side[i] = relay_only ? i == 1 : i % 3 == 1;
  S.cut = true;
}

static void set_change(struct sim_node *nd) {
  const char *to =
      strcmp(nd->rec.state, "maintenance") == 0 ? "ready" : "maintenance";
  close_change();
  /* the last moment the previous change is settled: check behaviours */
  if (calm_enough() && db_settled(2 * S.o.heartbeat_ms * MS))
    check_behaviours(false);
  if (!nd->up)
    return;
  nd->cpu = S.now;
  sim_node_set(nd, to);
  sim_cpu(nd, S.o.set_us);
  nd->busy_until = nd->cpu;
  memset(S.change_seen, 0, S.n * sizeof(*S.change_seen));
  S.change_node = nd->id;
  S.change_inc = nd->rec.inc;
  S.change_ver = nd->rec.ver;
  S.change_at = S.now;
  S.change_reached = 0;
  if (S.o.trace)
    trace_set();
  /* a sample only from a calm world */
  change_counts = !S.cut && !starved() &&
                  S.now - S.calm_since >= S.o.lost_after_ms * MS &&
                  conv_us != 0;
  changes_made++;
}

static void on_world(const struct sim_event *e) {
  uint64_t H = S.o.heartbeat_ms * MS;
  struct sim_node *nd = e->node >= 0 ? &S.nodes[e->node] : NULL;
  switch ((enum world)e->arg) {
  case W_START:
    if (!nd->up) {
      sim_node_start(nd);
      disturb();
    }
    break;
  case W_CRASH:
    sim_node_crash(nd);
    disturb();
    break;
  case W_SET:
    set_change(nd);
    break;
  case W_CUT:
    cut();
    disturb();
    break;
  case W_HEAL:
    S.cut = false;
    disturb();
    break;
  case W_PROBE:
    probe();
    if (conv_us == 0)
      world(S.now + 10 * MS, W_PROBE, -1);
    break;
  case W_CHECK:
    if (S.o.trace)
      trace();
    check();
    world(S.now + H, W_CHECK, -1);
    break;
  case W_STEADY:
    /* Steady is a heartbeat after the cluster formed, not before: a
     * large one still forming at 5.5 heartbeats would count its catch-ups
     * as steady-state traffic. One that forms too late for that counts
     * the whole run. */
    if (conv_us == 0 || S.now < conv_us + H) {
      world(conv_us == 0 ? S.now + H : conv_us + H, W_STEADY, -1);
      break;
    }
    steady_from = S.now;
    for (size_t i = 0; i < S.n; i++)
      S.nodes[i].rx_msgs = S.nodes[i].rx_bytes = S.nodes[i].tx_msgs =
          S.nodes[i].tx_bytes = S.nodes[i].decodes = 0;
    break;
  case W_FORGE:
    forge();
    disturb();
    break;
  case W_FLAP:
    if (nd->up) {
      nd->cpu = S.now;
      sim_node_set(nd,
                   strcmp(nd->rec.state, "ready") == 0 ? "draining" : "ready");
      nd->busy_until = nd->cpu;
    }
    disturb();
    break;
  case W_SLOW:
    /* of the world, not of the node's CPU: the end of it would wait
     * behind what the starved relay has to do */
    S.nodes[0].slow = starved() ? 1 : SIM_SLOW_FACTOR;
    disturb();
    break;
  case W_CALM:
    disturb();
    break;
  }
}

/* ---- the loop ---- */

static bool node_event_current(const struct sim_event *e) {
  const struct sim_node *nd = &S.nodes[e->node];
  if (!nd->up)
    return false;
  switch (e->type) {
  case SIM_EV_DELIVER:
  case SIM_EV_DONE:
    return e->gen == nd->life;
  case SIM_EV_TIMER:
    return nd->t_active[e->arg] && e->gen == nd->t_gen[e->arg];
  case SIM_EV_WORLD:
  case SIM_EV_WAKE:
    break;
  }
  return true;
}

/* The next event waiting for nd. A busy agent's loop reads at most a
 * batch of messages a turn (mesh.c), taking them from its connections in
 * turn (sim_inbox.c), and runs its due timers between turns: a timer, or
 * a step of the world, that waits behind deliveries goes once a batch of
 * them has been taken, or before the delivery whose turn is next if it
 * came first. */
static struct sim_event take_waiting(struct sim_node *nd) {
  const struct sim_event *d = sim_inbox_next_delivery(&nd->inbox);
  const struct sim_event *o = sim_inbox_next_other(&nd->inbox);
  bool delivery = d != NULL;
  struct sim_event e;

  if (d != NULL && o != NULL &&
      (nd->drain_run >= SIM_RECV_BATCH || o->at < d->at ||
       (o->at == d->at && o->ord < d->ord)))
    delivery = false;
  e = sim_inbox_take(&nd->inbox, delivery);
  nd->drain_run = delivery ? nd->drain_run + 1 : 0;
  return e;
}

/* A SIM_EV_WAKE at busy_until while events wait for nd. */
static void wake_later(struct sim_node *nd) {
  if (nd->wake_queued || nd->inbox.n == 0)
    return;
  nd->wake_queued = true;
  /* Not before now: an event taken from the queue may have been dropped
   * (stale) without the node's CPU moving on. */
  sim_at(&S, nd->busy_until > S.now ? nd->busy_until : S.now, SIM_EV_WAKE,
         nd->id, 0, 0, NULL);
}

/* With --cores, the core free first. */
static size_t first_core(void) {
  size_t core = 0;
  for (size_t c = 1; c < S.o.cores; c++)
    if (S.core_free[c] < S.core_free[core])
      core = c;
  return core;
}

/* With --cores, when even the core free first is busy: e goes back in
 * the queue for the moment it is free (one machine: it waits). */
static bool wait_for_core(struct sim_event *e, size_t core) {
  if (S.o.cores == 0 || S.core_free[core] <= S.now)
    return false;
  e->at = S.core_free[core];
  sim_queue_push(&S.q, e);
  return true;
}

/* A step of the world that runs a node's own code (its start, a `set`)
 * takes a core like its events; with --cores it may wait for one. */
static void world_step(struct sim_event *e) {
  struct sim_node *nd;
  size_t core;
  bool runs = e->node >= 0 && (e->arg == W_START || e->arg == W_SET);

  if (!runs || S.o.cores == 0) {
    on_world(e);
    return;
  }
  core = first_core();
  if (wait_for_core(e, core))
    return;
  on_world(e);
  nd = &S.nodes[e->node];
  if (nd->up && nd->busy_until > S.core_free[core])
    S.core_free[core] = nd->busy_until;
}

/* Handle one event, or make it wait for its node's CPU or a core. */
static void step(struct sim_event e) {
  struct sim_node *nd;
  size_t core;

  cur = e;
  if (e.type == SIM_EV_WORLD && (e.node < 0 || !S.nodes[e.node].up ||
                                 S.nodes[e.node].busy_until <= S.now)) {
    world_step(&e);
    return;
  }
  nd = &S.nodes[e.node];
  if (e.type != SIM_EV_WORLD && !node_event_current(&e)) {
    if (e.type == SIM_EV_DELIVER)
      S.dropped_down++;
    sim_blob_unref(e.blob);
    return;
  }
  if (nd->busy_until > S.now) {
    /* it waits for the node's CPU, or its connection is full */
    if (!sim_inbox_push(&nd->inbox, &e)) {
      S.dropped_full++;
      nd->dropped_full[0]++;
      nd->dropped_full[1] += from_relay(e.arg);
      sim_blob_unref(e.blob);
      return;
    }
    wake_later(nd);
    return;
  }
  core = S.o.cores > 0 ? first_core() : 0;
  if (wait_for_core(&e, core))
    return;
  nd->cpu = S.now;
  sim_node_event(nd, &e);
  nd->busy_until = nd->cpu;
  if (S.o.cores > 0)
    S.core_free[core] = nd->cpu;
  sim_blob_unref(e.blob);
  wake_later(nd);
}

static void run(uint64_t end) {
  struct sim_event e;
  while (sim_queue_pop(&S.q, &e)) {
    struct sim_node *woke = NULL;
    if (e.at > end) {
      sim_queue_push(&S.q, &e);
      break;
    }
    S.now = e.at;
    S.events++;
    if (e.type == SIM_EV_WAKE) {
      woke = &S.nodes[e.node];
      woke->wake_queued = false;
      if (woke->busy_until > S.now || woke->inbox.n == 0) {
        wake_later(woke);
        continue;
      }
      e = take_waiting(woke);
      e.at = S.now;
    }
    S.drained = woke != NULL;
    step(e);
    if (woke != NULL)
      wake_later(woke);
  }
}

/* ---- summary ---- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of v[0..n), sorted in place. */
static double quantile(double *v, size_t n, double q) {
  size_t k;
  if (n == 0)
    return 0;
  qsort(v, n, sizeof(*v), cmp_double);
  k = (size_t)((double)n * q + 0.999999);
  return v[k > 0 ? k - 1 : 0];
}

struct rates {
  double *rx, *rxb, *tx, *txb, *dec;
  size_t n;
};

static void rates_of(bool relays, struct rates *r, double secs) {
  r->n = 0;
  for (size_t i = 0; i < S.n; i++) {
    const struct sim_node *nd = &S.nodes[i];
    if (!nd->up || nd->cfg.relay != relays)
      continue;
    r->rx[r->n] = (double)nd->rx_msgs / secs;
    r->rxb[r->n] = (double)nd->rx_bytes / secs;
    r->tx[r->n] = (double)nd->tx_msgs / secs;
    r->txb[r->n] = (double)nd->tx_bytes / secs;
    r->dec[r->n] = (double)nd->decodes / secs;
    r->n++;
  }
}

static void print_rates(const char *who, bool relays, double secs) {
  struct rates r = {.rx = calloc(S.n, sizeof(double)),
                    .rxb = calloc(S.n, sizeof(double)),
                    .tx = calloc(S.n, sizeof(double)),
                    .txb = calloc(S.n, sizeof(double)),
                    .dec = calloc(S.n, sizeof(double))};
  if (!r.rx || !r.rxb || !r.tx || !r.txb || !r.dec)
    abort();
  rates_of(relays, &r, secs);
  if (r.n > 0)
    fprintf(
        summary_out,
        "; %s rx %.1f msg/s (p99 %.1f) %.1f kB/s (p99 %.1f), decodes %.0f/s "
        "(p99 %.0f), tx %.1f msg/s (p99 %.1f) %.1f kB/s (p99 %.1f)",
        who, quantile(r.rx, r.n, 0.5), quantile(r.rx, r.n, 0.99),
        quantile(r.rxb, r.n, 0.5) / 1000, quantile(r.rxb, r.n, 0.99) / 1000,
        quantile(r.dec, r.n, 0.5), quantile(r.dec, r.n, 0.99),
        quantile(r.tx, r.n, 0.5), quantile(r.tx, r.n, 0.99),
        quantile(r.txb, r.n, 0.5) / 1000, quantile(r.txb, r.n, 0.99) / 1000);
  free(r.rx);
  free(r.rxb);
  free(r.tx);
  free(r.txb);
  free(r.dec);
}

static void summary(void) {
  const struct sim_opts *o = &S.o;
  double secs = (double)(S.now - steady_from) / 1e6;
  fprintf(summary_out,
          "choreo-sim nodes=%zu relays=%zu seed=%" PRIu64
          " loss=%.3f scenario=%s seconds=%" PRIu64 " heartbeat=%" PRIu64
          "ms: cold ",
          S.n, o->relays, o->seed, o->loss, o->scenario, o->seconds,
          o->heartbeat_ms);
  if (conv_us != 0) {
    /* with relays first, what is timed is the leaves' start */
    double ms = (double)(conv_us - o->leaves_after_ms * MS) / 1000.0;
    fprintf(summary_out, "%.1f ms (%.2f heartbeats)", ms,
            ms / (double)o->heartbeat_ms);
    if (o->leaves_after_ms > 0)
      fprintf(summary_out,
              " from the leaves' start, %" PRIu64 " ms after the relays'",
              o->leaves_after_ms);
  } else
    fprintf(summary_out, "not converged");
  if (nsamples > 0) {
    size_t n = nsamples;
    fprintf(summary_out,
            "; change to all p50 %.2f ms p99 %.2f ms, to 99%% p50 %.2f ms "
            "p99 %.2f ms (%zu changes)",
            quantile(reach_all, n, 0.5), quantile(reach_all, n, 0.99),
            quantile(reach_99, n, 0.5), quantile(reach_99, n, 0.99), n);
  } else {
    fprintf(summary_out, "; change to all: no sample");
  }
  if (secs > 0) {
    print_rates(o->relays > 0 ? "leaf" : "member", false, secs);
    print_rates("relay", true, secs);
  }
  if (o->relays > 0) {
    uint64_t alone = 0, everyone = 0, asked = 0;
    for (size_t i = 0; i < S.n; i++) {
      alone += S.nodes[i].catch_ups;
      everyone += S.nodes[i].windows;
      asked += S.nodes[i].resyncs;
    }
    fprintf(summary_out,
            "; catch-ups %" PRIu64 " alone, %" PRIu64 " for everyone, "
            "resyncs asked %" PRIu64,
            alone, everyone, asked);
  }
  {
    uint64_t behind = 0;
    for (size_t i = 0; i < S.n; i++)
      behind += S.nodes[i].behind;
    if (behind > 0)
      fprintf(summary_out, "; heartbeats read behind %" PRIu64, behind);
    if (S.dropped_full > 0)
      fprintf(summary_out, "; dropped on full connections %" PRIu64,
              S.dropped_full);
  }
  {
    uint64_t refuted = 0, refused = 0;
    for (size_t i = 0; i < S.n; i++) {
      refuted += S.nodes[i].refutations;
      refused += S.nodes[i].forged_refused;
    }
    if (refuted > 0 || refused > 0)
      fprintf(summary_out,
              "; refutations %" PRIu64 ", out-of-bounds incarnations refused "
              "%" PRIu64,
              refuted, refused);
  }
}

/* After the run (its figures taken): go on without changes until the
 * last disturbance and the last change are lost_after and three
 * heartbeats old, then check views and behaviours against the truth. */
static void final_check(uint64_t end) {
  uint64_t H = S.o.heartbeat_ms * MS, L = S.o.lost_after_ms * MS;
  uint64_t at = end;
  if (S.calm_since + L + 3 * H > at)
    at = S.calm_since + L + 3 * H;
  if (S.change_node >= 0 && S.change_at + L + 2 * H > at)
    at = S.change_at + L + 2 * H;
  run(at);
  S.now = at;
  cur = (struct sim_event){.type = SIM_EV_WORLD, .node = -1, .arg = W_CHECK};
  check();
  if (S.cut || !calm_enough() || !db_settled(L))
    broken("views", "the world is not calm at the end of the run");
  view_checks++;
  check_views(L);
  check_behaviours(true);
}

int main(int argc, char **argv) {
  struct sim_opts *o = &S.o;
  char *line = NULL;
  size_t line_len = 0;
  uint64_t end;
  *o = (struct sim_opts){
      .nodes = 0,
      .relays = 0,
      .dbs = 1,
      .seed = 1,
      .loss = 0,
      .scenario = "steady",
      .seconds = 30,
      .heartbeat_ms = 1000,
      .latency_us = 200,
      .jitter_us = 100,
      .changes = 10,
      .launch_ms = 1000,
      /* docs/BENCHMARKS.md: a delivery wakes two threads, about 70 µs of
       * CPU with sending; a decode, 7 µs (142,613 a second) */
      .wake_us = 70,
      /* bench/relay_load.py: a relay of 5,000 leaves paced one message
       * at a time pays 66 µs a message; in bursts of 64 it drains them
       * at 26 µs, of which the decode is 7 */
      .busy_us = 19,
      .decode_us = 7,
      .encode_us = 3,
  };
  if (parse(argc, argv, o) != 0)
    return 2;
  if (o->lost_after_ms == 0)
    o->lost_after_ms = 5 * o->heartbeat_ms;
  if (o->lost_after_ms <= o->heartbeat_ms)
    o->lost_after_ms = 5 * o->heartbeat_ms;
  end = o->seconds * 1000 * MS;
  if (sodium_init() < 0)
    return 2;
  json_object_seed(1);
  log_set_level(LOG_LEVEL_ERROR);
  sim_rand_seed(&S.rand, o->seed);
  S.n = o->nodes;
  S.nodes = calloc(S.n, sizeof(*S.nodes));
  S.side = calloc(S.n, 1);
  S.change_seen = calloc(S.n, sizeof(*S.change_seen));
  S.core_free = calloc(o->cores + 1, sizeof(*S.core_free));
  S.pool = recpool_new();
  reach_all = calloc(o->changes + 1, sizeof(double));
  reach_99 = calloc(o->changes + 1, sizeof(double));
  if (!S.nodes || !S.side || !S.change_seen || !reach_all || !reach_99 ||
      !S.core_free || !S.pool)
    abort();
  S.change_node = -1;
  for (size_t i = 0; i < S.n; i++)
    if (sim_node_init(&S, &S.nodes[i], (int)i) != 0)
      abort();
  schedule();
  run(end);
  S.now = end;
  close_change();
  if ((summary_out = open_memstream(&line, &line_len)) == NULL)
    abort();
  summary();
  fclose(summary_out);
  final_check(end);
  printf("%s; invariants: ok (views checked %" PRIu64 " times, behaviours "
         "%" PRIu64 ")\n",
         line, view_checks, behaviour_checks);
  free(line);
  for (size_t i = 0; i < S.n; i++)
    sim_node_free(&S.nodes[i]);
  sim_queue_free(&S.q);
  recpool_free(S.pool);
  free(S.nodes);
  free(S.side);
  free(S.change_seen);
  free(S.core_free);
  free(reach_all);
  free(reach_99);
  return 0;
}
