/*
 * test_config.c — unit tests of agent/config.c: a full configuration with
 * an include loads with every value and default right, and every kind of
 * problem is reported as the exact "FILE:LINE:COL: message" text.
 *
 * Each test writes its files into a fresh temporary directory; in expected
 * messages "@" stands for that directory. The full example lives in
 * tests/unit/data/config/.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "log.h"

#ifndef TEST_SRCDIR
#error "TEST_SRCDIR must name the tests/ directory"
#endif
#define DATA_DIR TEST_SRCDIR "/unit/data/config"

/* A valid key: base64 of 32 bytes, as `choreo keygen` prints. */
#define KEY "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80="

struct fixture {
  char dir[64];
  struct config *cfg;
  struct config_errors errs;
};

/* ---- Helpers ---- */

static void put_file(const struct fixture *f, const char *name,
                     const char *text, mode_t mode) {
  char path[256];
  FILE *fp;

  snprintf(path, sizeof(path), "%s/%s", f->dir, name);
  fp = fopen(path, "w");
  assert_non_null(fp);
  assert_int_equal(fputs(text, fp) >= 0, 1);
  assert_int_equal(fclose(fp), 0);
  assert_int_equal(chmod(path, mode), 0);
}

static void put(const struct fixture *f, const char *name, const char *text) {
  put_file(f, name, text, 0644);
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  char sub[128];

  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "/tmp/choreo-config-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(sub, sizeof(sub), "%s/bin", f->dir);
  if (mkdir(sub, 0755) != 0)
    return -1;
  snprintf(sub, sizeof(sub), "%s/packs", f->dir);
  if (mkdir(sub, 0755) != 0)
    return -1;
  put_file(f, "bin/ok", "#!/bin/sh\nexit 0\n", 0755);
  put_file(f, "bin/noexec", "#!/bin/sh\nexit 0\n", 0644);
  *state = f;
  return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int teardown(void **state) {
  struct fixture *f = *state;
  config_free(f->cfg);
  config_errors_free(&f->errs);
  nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static int load(struct fixture *f, const char *name) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", f->dir, name);
  return config_load(path, &f->cfg, &f->errs);
}

/* want with every "@" replaced by the fixture's directory. */
static void expand_dir(const struct fixture *f, const char *want, char *out,
                       size_t size) {
  size_t n = 0;
  for (; *want != '\0' && n + 1 < size; want++) {
    if (*want == '@') {
      n += (size_t)snprintf(out + n, size - n, "%s", f->dir);
      continue;
    }
    out[n++] = *want;
  }
  out[n < size ? n : size - 1] = '\0';
}

/* Loading must fail with exactly the messages of want (NULL-terminated);
 * on a mismatch, every message is shown. */
static void expect_errors(struct fixture *f, int rv, const char *const *want) {
  char buf[2048];
  size_t n = 0;
  bool same;

  while (want[n] != NULL)
    n++;
  same = f->errs.n == n && f->errs.more == 0;
  for (size_t i = 0; same && i < n; i++) {
    expand_dir(f, want[i], buf, sizeof(buf));
    same = strcmp(f->errs.msg[i], buf) == 0;
  }
  for (size_t i = 0; !same && i < f->errs.n; i++)
    print_message("  got:  %s\n", f->errs.msg[i]);
  for (size_t i = 0; !same && i < n; i++) {
    expand_dir(f, want[i], buf, sizeof(buf));
    print_message("  want: %s\n", buf);
  }
  assert_true(same);
  assert_int_equal(rv, CHOREO_ECONFIG);
  assert_null(f->cfg);
}

#define EXPECT_ERRORS(f, rv, ...)                                              \
  expect_errors((f), (rv), (const char *const[]){__VA_ARGS__, NULL})

/* Load name, which must be valid. */
static struct config *load_ok(struct fixture *f, const char *name) {
  int rv = load(f, name);
  for (size_t i = 0; i < f->errs.n; i++)
    print_message("  unexpected: %s\n", f->errs.msg[i]);
  assert_int_equal(rv, 0);
  assert_int_equal(f->errs.n, 0);
  assert_non_null(f->cfg);
  return f->cfg;
}

/* ---- The full example ---- */

static void config_loads_every_field_of_the_full_example(void **state) {
  struct fixture *f = *state;
  struct config *cfg;

  assert_int_equal(config_load(DATA_DIR "/full.yaml", &f->cfg, &f->errs), 0);
  cfg = f->cfg;
  assert_string_equal(cfg->name, "web1");
  assert_string_equal(cfg->cluster, "shop");
  assert_int_equal(cfg->ngroups, 2);
  assert_string_equal(cfg->groups[0], "web");
  assert_string_equal(cfg->groups[1], "frontend");
  assert_string_equal(cfg->state, "maintenance");
  assert_int_equal(json_object_size(cfg->data), 2);
  assert_string_equal(json_string_value(json_object_get(cfg->data, "url")),
                      "http://10.0.0.5/");
  assert_string_equal(json_string_value(json_object_get(cfg->data, "zone")),
                      "eu-1");
  assert_string_equal(cfg->listen, "tcp://0.0.0.0:7410");
  assert_string_equal(cfg->advertise, "tcp://10.0.0.5:7410");
  assert_int_equal(cfg->njoin, 2);
  assert_string_equal(cfg->join[0], "tcp://10.0.0.2:7410");
  assert_string_equal(cfg->join[1], "tcp://db1.example:7410");
  assert_int_equal(cfg->heartbeat_ms, 500);
  assert_int_equal(cfg->lost_after_ms, 3000);
  assert_int_equal(cfg->reap_after_ms, 2 * 3600 * 1000);
  assert_string_equal(cfg->key_file, DATA_DIR "/cluster.key");
  assert_false(cfg->insecure);
  assert_string_equal(cfg->socket, "/run/choreo-test/choreo.sock");
  assert_int_equal(cfg->socket_mode, 0600);
  assert_string_equal(cfg->state_dir, "/var/lib/choreo-test");
}

static void config_loads_checks_of_the_main_file_and_the_pack(void **state) {
  struct fixture *f = *state;
  const struct config_check *c;

  assert_int_equal(config_load(DATA_DIR "/full.yaml", &f->cfg, &f->errs), 0);
  assert_int_equal(f->cfg->nchecks, 2);
  c = &f->cfg->checks[0];
  assert_string_equal(c->name, "http");
  assert_string_equal(c->mark.file, DATA_DIR "/full.yaml");
  assert_int_equal(c->mark.line, 29);
  assert_int_equal(c->mark.col, 5);
  assert_int_equal(c->run.argc, 3);
  assert_string_equal(c->run.argv[0], "sh");
  assert_string_equal(c->run.argv[2], "exit 0");
  assert_null(c->run.argv[3]);
  assert_int_equal(c->interval_ms, 10000);
  assert_int_equal(c->timeout_ms, 3000);
  assert_int_equal(c->fall, 4);
  assert_int_equal(c->rise, 1);
  assert_string_equal(c->state, "unhealthy");
  assert_int_equal(c->nvars, 0);

  c = &f->cfg->checks[1];
  assert_string_equal(c->name, "shop-worker.service");
  assert_string_equal(c->mark.file, DATA_DIR "/packs/unit.yaml");
  assert_int_equal(c->interval_ms, 5000);
  assert_int_equal(c->timeout_ms, 2000);
  assert_int_equal(c->fall, 3);
  assert_int_equal(c->rise, 2);
  assert_string_equal(c->state, "failed");
  assert_int_equal(c->nvars, 2);
}

static void config_loads_behaviours_in_file_order_with_pack_vars(void **state) {
  struct fixture *f = *state;
  const struct config_behaviour *b;

  assert_int_equal(config_load(DATA_DIR "/full.yaml", &f->cfg, &f->errs), 0);
  assert_int_equal(f->cfg->nbehaviours, 5);
  /* The include comes before behaviours: in the file, so does its pack. */
  b = &f->cfg->behaviours[0];
  assert_string_equal(b->name, "stop-shop-worker.service");
  assert_string_equal(b->mark.file, DATA_DIR "/packs/unit.yaml");
  assert_int_equal(b->mark.line, 3);
  assert_int_equal(b->mark.col, 5);
  assert_string_equal(b->peers.group, "db");
  assert_true(b->has_when);
  assert_int_equal(b->when.kind, COND_NONE);
  assert_int_equal(b->when.nstates, 1);
  assert_string_equal(b->when.states[0], "ready");
  assert_string_equal(b->run.argv[2], "echo stop shop-worker.service");
  assert_int_equal(b->nvars, 2);
  assert_string_equal(b->vars[0], "CHOREO_VAR_unit=shop-worker.service");
  assert_string_equal(b->vars[1], "CHOREO_VAR_depends_on=db");
  assert_int_equal(b->revert.argc, 0);
  assert_int_equal(b->timeout_ms, 30000);
  assert_int_equal(b->settle_ms, 0);
  assert_int_equal(b->retries, 0);
  assert_string_equal(b->state, "");
}

static void config_loads_a_condition_behaviour_with_every_key(void **state) {
  struct fixture *f = *state;
  const struct config_behaviour *b;

  assert_int_equal(config_load(DATA_DIR "/full.yaml", &f->cfg, &f->errs), 0);
  b = &f->cfg->behaviours[1];
  assert_string_equal(b->name, "holding-page");
  assert_string_equal(b->mark.file, DATA_DIR "/full.yaml");
  assert_int_equal(b->mark.line, 42);
  assert_int_equal(b->mark.col, 5);
  assert_string_equal(b->peers.group, "db");
  assert_string_equal(b->peers.node, "");
  assert_true(b->has_when);
  assert_int_equal(b->on_mask, 0);
  assert_int_equal(b->when.kind, COND_ANY);
  assert_string_equal(b->when.states[0], "maintenance");
  assert_int_equal(b->run.argc, 3);
  assert_string_equal(b->run.argv[0], "/bin/sh");
  assert_string_equal(b->revert.argv[2], "echo off");
  assert_null(b->revert.argv[3]);
  assert_string_equal(b->state, "degraded");
  assert_int_equal(b->settle_ms, 100);
  assert_int_equal(b->timeout_ms, 10000);
  assert_int_equal(b->retries, 2);
  assert_int_equal(b->nvars, 0);
}

static void config_loads_event_and_quorum_behaviours(void **state) {
  struct fixture *f = *state;
  const struct config_behaviour *b;

  assert_int_equal(config_load(DATA_DIR "/full.yaml", &f->cfg, &f->errs), 0);
  b = &f->cfg->behaviours[2];
  assert_string_equal(b->peers.group, "web");
  assert_string_equal(b->peers.node, "web2");
  assert_false(b->has_when);
  assert_int_equal(b->on_mask, CONFIG_EV_BIT(CONFIG_EV_CHANGE));

  b = &f->cfg->behaviours[3];
  assert_int_equal(b->when.kind, COND_FEWER_THAN);
  assert_int_equal(b->when.n, 2);
  assert_int_equal(b->when.nstates, 2);
  assert_string_equal(b->when.states[1], "degraded");
  assert_int_equal(b->run.argc, 1);
  assert_string_equal(b->run.argv[0], "sh");
  assert_null(b->run.argv[1]);

  b = &f->cfg->behaviours[4];
  assert_int_equal(b->on_mask, CONFIG_EV_BIT(CONFIG_EV_JOINED) |
                                   CONFIG_EV_BIT(CONFIG_EV_LOST));
}

static void config_uses_defaults_for_an_empty_file(void **state) {
  struct fixture *f = *state;
  struct config *cfg;
  char host[256] = "";

  put(f, "main.yaml", "# nothing but defaults\n");
  cfg = load_ok(f, "main.yaml");
  gethostname(host, sizeof(host));
  assert_string_equal(cfg->name, host);
  assert_string_equal(cfg->cluster, "default");
  assert_int_equal(cfg->ngroups, 0);
  assert_string_equal(cfg->state, "ready");
  assert_int_equal(json_object_size(cfg->data), 0);
  assert_string_equal(cfg->listen, "tcp://127.0.0.1:7410");
  assert_string_equal(cfg->advertise, "tcp://127.0.0.1:7410");
  assert_int_equal(cfg->njoin, 0);
  assert_int_equal(cfg->heartbeat_ms, 1000);
  assert_int_equal(cfg->lost_after_ms, 5000);
  assert_int_equal(cfg->reap_after_ms, 24 * 3600 * 1000);
  assert_int_equal(cfg->max_members, 4096);
  assert_string_equal(cfg->key_file, "");
  assert_false(cfg->insecure);
  assert_string_equal(cfg->socket, CHOREO_DEFAULT_SOCKET);
  assert_int_equal(cfg->socket_mode, 0660);
  assert_string_equal(cfg->state_dir, "/var/lib/choreo");
  assert_int_equal(cfg->nbehaviours, 0);
  assert_null(cfg->behaviours);
  assert_int_equal(cfg->nchecks, 0);
}

static void config_defaults_advertise_to_a_concrete_listen(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "network:\n"
      "  listen: tcp://127.0.0.2:7999\n"
      "control: {mode: 0640}\n");
  load_ok(f, "main.yaml");
  assert_string_equal(f->cfg->advertise, "tcp://127.0.0.2:7999");
  assert_int_equal(f->cfg->socket_mode, 0640);
}

static void
config_accepts_non_loopback_listen_with_key_or_insecure(void **state) {
  struct fixture *f = *state;
  char want[256];
  put_file(f, "cluster.key", KEY "\n", 0600);
  put(f, "key.yaml",
      "network:\n"
      "  listen: tcp://10.0.0.5:7410\n"
      "  key_file: cluster.key\n");
  load_ok(f, "key.yaml");
  snprintf(want, sizeof(want), "%s/cluster.key", f->dir);
  assert_string_equal(f->cfg->key_file, want);
  config_free(f->cfg);
  f->cfg = NULL;
  put(f, "insecure.yaml",
      "network:\n"
      "  listen: tcp://10.0.0.5:7410\n"
      "  insecure: true\n");
  load_ok(f, "insecure.yaml");
  assert_true(f->cfg->insecure);
}

static void config_resolves_relative_scripts_against_their_file(void **state) {
  struct fixture *f = *state;
  char want[256];

  put(f, "main.yaml",
      "include: [packs/p.yaml]\n"
      "behaviours:\n"
      "  - {name: a, on: change, run: ./bin/ok}\n");
  put(f, "packs/p.yaml",
      "checks:\n"
      "  - {name: c, run: [../bin/ok, x]}\n");
  load_ok(f, "main.yaml");
  snprintf(want, sizeof(want), "%s/bin/ok", f->dir);
  assert_string_equal(f->cfg->behaviours[0].run.argv[0], want);
  snprintf(want, sizeof(want), "%s/packs/../bin/ok", f->dir);
  assert_string_equal(f->cfg->checks[0].run.argv[0], want);
  assert_string_equal(f->cfg->checks[0].run.argv[1], "x");
}

static void config_resolves_paths_of_a_relative_config_file(void **state) {
  struct fixture *f = *state;
  char cwd[512], want[256];

  put(f, "main.yaml",
      "state_dir: state\n"
      "checks:\n"
      "  - {name: c, run: [bin/ok]}\n");
  assert_non_null(getcwd(cwd, sizeof(cwd)));
  assert_int_equal(chdir(f->dir), 0);
  assert_int_equal(config_load("main.yaml", &f->cfg, &f->errs), 0);
  assert_int_equal(chdir(cwd), 0);
  snprintf(want, sizeof(want), "%s/bin/ok", f->dir);
  assert_string_equal(f->cfg->checks[0].run.argv[0], want);
  snprintf(want, sizeof(want), "%s/state", f->dir);
  assert_string_equal(f->cfg->state_dir, want);
  assert_string_equal(f->cfg->checks[0].mark.file, "main.yaml");
}

static void config_accepts_same_include_with_other_vars(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "include:\n"
      "  - {file: packs/p.yaml, vars: {n: a}}\n"
      "  - {file: packs/p.yaml, vars: {n: b}}\n");
  put(f, "packs/p.yaml",
      "behaviours:\n"
      "  - {name: \"${n}\", on: change, run: [true]}\n");
  load_ok(f, "main.yaml");
  assert_int_equal(f->cfg->nbehaviours, 2);
  assert_string_equal(f->cfg->behaviours[0].name, "a");
  assert_string_equal(f->cfg->behaviours[1].name, "b");
  assert_string_equal(f->cfg->behaviours[1].vars[0], "CHOREO_VAR_n=b");
}

/* ---- Problems: keys and types ---- */

static void config_rejects_unknown_key(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node:\n"
      "  nam: web1\n"
      "behavior: []\n"
      "behaviours:\n"
      "  - name: a\n"
      "    when: {anyy: down, any: down}\n"
      "    run: [true]\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:2:3: node: unknown key \"nam\" (expected name, cluster, "
      "groups, state, data)",
      "@/main.yaml:3:1: unknown key \"behavior\" (expected node, network, "
      "control, state_dir, sync, http, identity, include, log, defaults, "
      "checks, "
      "behaviours)",
      "@/main.yaml:6:12: behaviours[0].when: unknown key \"anyy\" (expected "
      "any, all, none, fewer_than, state)");
}

static void config_rejects_duplicate_key(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node:\n"
      "  name: a\n"
      "  data: {k: v, k: w}\n"
      "  name: b\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:4:3: node: duplicate key \"name\" (first at 2:3)",
                "@/main.yaml:3:16: node.data: duplicate key \"k\" (first at "
                "3:10)");
}

static void config_rejects_wrong_types(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node: [a]\n"
      "network:\n"
      "  listen: {tcp: 1}\n"
      "  join: tcp://10.0.0.2:7410\n"
      "  insecure: yes\n"
      "behaviours:\n"
      "  - name: [x]\n"
      "    on: change\n"
      "    run: {a: b}\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:1:7: node: expected a mapping",
                "@/main.yaml:3:11: network.listen: expected a string",
                "@/main.yaml:4:9: network.join: expected a list of strings",
                "@/main.yaml:5:13: network.insecure: expected true or false",
                "@/main.yaml:7:11: behaviours[0].name: expected a string",
                "@/main.yaml:9:10: behaviours[0].run: expected a command: a "
                "list of 1 to 64 strings");
}

/* An empty command list is a problem, not a crash (fuzz_config found
 * the run_as marks reading its first item). */
static void config_rejects_an_empty_command(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - name: x\n"
      "    peers: {group: db}\n"
      "    when: {any: maintenance}\n"
      "    run: []\n"
      "    revert: []\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:5:10: behaviours[0].run: expected a command: a "
                "list of 1 to 64 strings",
                "@/main.yaml:6:13: behaviours[0].revert: expected a command: "
                "a list of 1 to 64 strings");
}

static void config_rejects_bad_duration(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "network:\n"
      "  heartbeat: 5x\n"
      "checks:\n"
      "  - {name: c, run: [true], interval: 5}\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:14: network.heartbeat: \"5x\" is not a duration "
                "(write 250ms, 5s, 2m or 24h)",
                "@/main.yaml:4:38: checks[0].interval: \"5\" is not a duration "
                "(write 250ms, 5s, 2m or 24h)");
}

static void config_rejects_lost_after_not_above_heartbeat(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "network:\n"
      "  heartbeat: 2s\n"
      "  lost_after: 2000ms\n");
  put(f, "fast.yaml",
      "network:\n"
      "  heartbeat: 5ms\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:3:15: network.lost_after: must be longer than "
                "network.heartbeat (2s)");
  config_errors_free(&f->errs);
  EXPECT_ERRORS(f, load(f, "fast.yaml"),
                "@/fast.yaml:2:14: network.heartbeat: must be at least 10ms");
}

/* ---- sync ---- */

static void config_sync_defaults_to_waiting_for_nothing_more(void **state) {
  struct fixture *f = *state;
  struct config *cfg;
  put(f, "main.yaml", "node: {name: web1}\n");
  cfg = load_ok(f, "main.yaml");
  assert_int_equal(cfg->sync_min_members, 0);
  assert_int_equal(cfg->sync_ngroups, 0);
  assert_int_equal(cfg->sync_max_wait_ms, 0);
}

static void config_reads_the_sync_section(void **state) {
  struct fixture *f = *state;
  struct config *cfg;
  put(f, "main.yaml",
      "sync:\n"
      "  min_members: 3\n"
      "  groups: [db, web]\n"
      "  max_wait: 45s\n");
  cfg = load_ok(f, "main.yaml");
  assert_int_equal(cfg->sync_min_members, 3);
  assert_int_equal(cfg->sync_ngroups, 2);
  assert_string_equal(cfg->sync_groups[0], "db");
  assert_string_equal(cfg->sync_groups[1], "web");
  assert_int_equal(cfg->sync_max_wait_ms, 45000);
  config_free(f->cfg);
  f->cfg = NULL;
  put(f, "short.yaml", "sync: {groups: [db]}\n");
  cfg = load_ok(f, "short.yaml");
  assert_int_equal(cfg->sync_max_wait_ms, CONFIG_SYNC_WAIT_DEFAULT_MS);
}

static void config_rejects_bad_sync_values(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "sync:\n"
      "  min_members: -1\n"
      "  groups: [db, db, \"No Good\"]\n"
      "  max_wait: 0s\n"
      "  wait: 1s\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:5:3: sync: unknown key \"wait\" (expected "
                "min_members, groups, max_wait)",
                "@/main.yaml:2:16: sync.min_members: \"-1\" is not a whole "
                "number",
                "@/main.yaml:3:16: sync.groups: group \"db\" is listed twice",
                "@/main.yaml:3:20: sync.groups: \"No Good\" is not a valid "
                "name (1-64 of A-Z a-z 0-9 . _ -)",
                "@/main.yaml:4:13: sync.max_wait: must be longer than 0s: the "
                "agent would never act without what it waits for");
}

static void config_rejects_sync_in_an_included_file(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml", "include: [pack.yaml]\n");
  put(f, "pack.yaml", "sync: {min_members: 1}\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/pack.yaml:1:1: sync: not allowed in an included file (only "
                "behaviours and checks)");
}

static void config_reads_log_level_and_rejects_unknown_levels(void **state) {
  struct fixture *f = *state;
  put(f, "ok.yaml", "log:\n  level: debug\n");
  assert_int_equal(load(f, "ok.yaml"), 0);
  assert_int_equal(f->cfg->log_level, LOG_LEVEL_DEBUG);
  config_free(f->cfg);
  f->cfg = NULL;
  put(f, "main.yaml", "log:\n  level: loud\n  format: json\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:3:3: log: unknown key \"format\" (expected "
                "level)",
                "@/main.yaml:2:10: log.level: \"loud\" is not a level (error, "
                "warning, info or debug)");
}

/* ---- Problems: node ---- */

static void config_rejects_bad_state_characters(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node:\n"
      "  state: Maintenance\n"
      "behaviours:\n"
      "  - name: a\n"
      "    when: {any: [ready, \"down!\"]}\n"
      "    run: [true]\n"
      "    state: lost\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:2:10: node.state: \"Maintenance\" is not a valid state "
      "(1-32 of a-z 0-9 _ -)",
      "@/main.yaml:5:25: behaviours[0].when.any: \"down!\" is not a valid "
      "state (1-32 of a-z 0-9 _ -)",
      "@/main.yaml:7:12: behaviours[0].state: \"lost\" is assigned by "
      "observers and can't be set");
}

static void config_rejects_bad_node_fields(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node:\n"
      "  name: web 1\n"
      "  cluster: \"\"\n"
      "  groups: [web, web, \"a/b\"]\n"
      "  data: {URL: x, ok: [1]}\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:2:9: node.name: \"web 1\" is not a valid name (1-64 of "
      "A-Z a-z 0-9 . _ -)",
      "@/main.yaml:3:12: node.cluster: \"\" is not a valid name (1-64 of "
      "A-Z a-z 0-9 . _ -)",
      "@/main.yaml:4:17: node.groups: group \"web\" is listed twice",
      "@/main.yaml:4:22: node.groups: \"a/b\" is not a valid name (1-64 of "
      "A-Z a-z 0-9 . _ -)",
      "@/main.yaml:5:10: node.data: \"URL\" is not a valid data key (1-64 of "
      "a-z 0-9 _ . -)",
      "@/main.yaml:5:22: node.data.ok: expected a string");
}

static void config_rejects_too_many_groups(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node:\n"
      "  groups: [a, b, c, d, e, f, g, h, i, j, k, l, m, n, "
      "o, p, q]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:11: node.groups: at most 16 groups");
}

/* ---- Problems: network and control ---- */

static void config_rejects_non_loopback_listen_without_key(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "network:\n"
      "  listen: tcp://10.0.0.5:7410\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:11: network.listen: tcp://10.0.0.5:7410 is not "
                "a loopback address and there is no network.key_file: set "
                "network.key_file (see choreo keygen), or network.insecure: "
                "true to accept unencrypted traffic");
}

static void config_rejects_wildcard_listen_without_advertise(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "network:\n"
      "  insecure: true\n"
      "  listen: tcp://*:7410\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:3:11: network.advertise: required when "
                "network.listen is a wildcard (tcp://*:7410): write the "
                "address peers dial, e.g. tcp://10.0.0.5:7410");
}

static void config_rejects_bad_addresses(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "network:\n"
      "  listen: udp://1.2.3.4:5\n"
      "  advertise: tcp://[::]:7410\n"
      "  join: [tcp://a, \"tcp://:1\", tcp://a:0, ipc://]\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:2:11: network.listen: \"udp://1.2.3.4:5\" is not a valid "
      "address: write tcp://HOST:PORT, ipc://PATH or inproc://NAME",
      "@/main.yaml:3:14: network.advertise: tcp://[::]:7410 is a wildcard; "
      "peers need an address to dial",
      "@/main.yaml:4:10: network.join: \"tcp://a\" is not a valid address: "
      "needs a port (tcp://HOST:PORT)",
      "@/main.yaml:4:19: network.join: \"tcp://:1\" is not a valid address: "
      "needs a host (tcp://HOST:PORT)",
      "@/main.yaml:4:31: network.join: \"tcp://a:0\" is not a valid address: "
      "the port must be a number from 1 to 65535",
      "@/main.yaml:4:42: network.join: \"ipc://\" is not a valid address: "
      "needs a path or a name");
}

static void config_reads_relay_settings(void **state) {
  struct fixture *f = *state;
  put(f, "relay.yaml",
      "network:\n"
      "  relay: true\n"
      "  join: [tcp://127.0.0.1:7411]\n");
  load_ok(f, "relay.yaml");
  assert_true(f->cfg->relay);
  assert_int_equal(f->cfg->nrelays, 0);
  config_free(f->cfg);
  f->cfg = NULL;
  put(f, "leaf.yaml",
      "network:\n"
      "  relays: [tcp://127.0.0.1:7411, tcp://127.0.0.1:7412]\n");
  load_ok(f, "leaf.yaml");
  assert_false(f->cfg->relay);
  assert_int_equal(f->cfg->nrelays, 2);
  assert_string_equal(f->cfg->relays[1], "tcp://127.0.0.1:7412");
  assert_int_equal(f->cfg->njoin, 0);
}

static void config_rejects_bad_relay_settings(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "network:\n"
      "  relay: yes\n"
      "  relays: [tcp://a]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:10: network.relay: expected true or false",
                "@/main.yaml:3:12: network.relays: \"tcp://a\" is not a valid "
                "address: needs a port (tcp://HOST:PORT)");
  config_errors_free(&f->errs);
  put(f, "main.yaml",
      "network:\n"
      "  relay: true\n"
      "  relays: [tcp://127.0.0.1:7411]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:3:11: network.relays: a relay can't be a leaf: "
                "remove network.relays (a relay joins through network.join) "
                "or network.relay");
  config_errors_free(&f->errs);
  put(f, "main.yaml",
      "network:\n"
      "  join: [tcp://127.0.0.1:7412]\n"
      "  relays: [tcp://127.0.0.1:7411]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:9: network.join: not used with network.relays: "
                "a leaf joins through its relays; remove network.join");
}

static void config_rejects_bad_control_settings(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "control:\n"
      "  mode: \"0668\"\n"
      "  socket: /tmp/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:3:11: control.socket: longer than 107 bytes (the "
                "limit of a unix socket path)",
                "@/main.yaml:2:9: control.mode: \"0668\" is not a file mode "
                "(write it in octal, e.g. \"0660\")");
}

/* ---- Problems: behaviours ---- */

static void config_rejects_fewer_than_zero(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - name: q\n"
      "    when: {fewer_than: 0, state: ready}\n"
      "    run: [true]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:3:24: behaviours[0].when.fewer_than: 0 can never "
                "be true (fewer than 0 peers); write 1 or more");
}

static void config_rejects_left_in_a_condition(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - {name: a, when: {any: left}, run: [true]}\n"
      "  - {name: b, when: {fewer_than: 2, state: [ready, left]}, run: "
      "[true]}\n"
      "  - {name: c, when: {any: lost}, run: [true]}\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:27: behaviours[0].when.any: \"left\" never "
                "matches: peers that left are not watched (to react to a "
                "leave, use on: [left])",
                "@/main.yaml:3:52: behaviours[1].when.state: \"left\" never "
                "matches: peers that left are not watched (to react to a "
                "leave, use on: [left])");
}

static void config_rejects_a_state_or_event_listed_twice(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - {name: a, when: {none: [ready, busy, ready]}, run: [true]}\n"
      "  - {name: b, on: [joined, lost, joined], run: [true]}\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:2:42: behaviours[0].when.none: \"ready\" is listed twice",
      "@/main.yaml:3:34: behaviours[1].on: \"joined\" is listed twice");
}

static void config_rejects_malformed_conditions(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - {name: a, when: {any: x, all: y}, run: [true]}\n"
      "  - {name: b, when: {fewer_than: 2}, run: [true]}\n"
      "  - {name: c, when: {none: x, state: y}, run: [true]}\n"
      "  - {name: d, when: {}, run: [true]}\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:2:30: behaviours[0].when: all can't be combined with any; "
      "write one condition",
      "@/main.yaml:3:21: behaviours[1].when: fewer_than needs state: the "
      "state to count",
      "@/main.yaml:4:31: behaviours[2].when.state: only goes with fewer_than",
      "@/main.yaml:5:21: behaviours[3].when: expected one of any, all, none "
      "or fewer_than");
}

static void config_rejects_when_and_on_together_or_neither(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - name: a\n"
      "    when: {any: x}\n"
      "    on: change\n"
      "    run: [true]\n"
      "  - name: b\n"
      "    run: [true]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:4:5: behaviours[0]: has both when and on; react "
                "to a condition (when) or to events (on), not both",
                "@/main.yaml:6:5: behaviours[1]: needs when (a condition) or "
                "on (events)");
}

static void config_rejects_change_mixed_with_events(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - {name: a, on: [joined, change], run: [true]}\n"
      "  - {name: b, on: [joined, leave], run: [true]}\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:2:28: behaviours[0].on: change can't be combined with "
      "other events (write on: change, or list only joined, left, lost, "
      "state, data)",
      "@/main.yaml:3:28: behaviours[1].on: unknown event \"leave\" (expected "
      "change, or a list of joined, left, lost, state, data)");
}

static void config_rejects_revert_and_state_with_on(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - name: a\n"
      "    on: [state]\n"
      "    run: [true]\n"
      "    revert: [true]\n"
      "    state: busy\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:5:5: behaviours[0].revert: only a behaviour with "
                "when can revert; this one has on",
                "@/main.yaml:6:5: behaviours[0].state: only a behaviour with "
                "when can claim a state; this one has on");
}

static void config_rejects_missing_name_and_run(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - when: {any: x}\n"
      "    timeout: 0s\n"
      "    retries: 11\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:2:5: behaviours[0]: \"name\" is required",
      "@/main.yaml:2:5: behaviours[0]: \"run\" is required",
      "@/main.yaml:3:14: behaviours[0].timeout: must be more than 0",
      "@/main.yaml:4:14: behaviours[0].retries: 11 is out of range (0 to 10)");
}

/* network.max_members: a whole number of 1 to 100,000. */
static void config_takes_max_members_within_bounds(void **state) {
  struct fixture *f = *state;
  static const struct {
    const char *value;
    unsigned want; /* 0: refused with error */
    const char *error;
  } rows[] = {
      {"10000", 10000, NULL},
      {"1", 1, NULL},
      {"100000", 100000, NULL},
      {"0", 0,
       "@/main.yaml:1:39: network.max_members: 0 is out of range "
       "(1 to 100000)"},
      {"100001", 0,
       "@/main.yaml:1:39: network.max_members: 100001 is out of "
       "range (1 to 100000)"},
      {"many", 0,
       "@/main.yaml:1:39: network.max_members: \"many\" is not a "
       "whole number"},
  };
  char yaml[128];

  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    print_message("max_members %s\n", rows[i].value);
    snprintf(yaml, sizeof(yaml), "network: {heartbeat: 1s, max_members: %s}\n",
             rows[i].value);
    put(f, "main.yaml", yaml);
    if (rows[i].want != 0) {
      assert_int_equal(load(f, "main.yaml"), 0);
      assert_int_equal(f->cfg->max_members, rows[i].want);
      config_free(f->cfg);
      f->cfg = NULL;
    } else {
      EXPECT_ERRORS(f, load(f, "main.yaml"), rows[i].error);
      config_errors_free(&f->errs);
    }
  }
}

static void config_rejects_missing_script(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - name: a\n"
      "    on: change\n"
      "    run: [./bin/missing, x]\n"
      "    revert: [/nonexistent/script]\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:4:11: behaviours[0].run: @/bin/missing: no such file",
      "@/main.yaml:5:5: behaviours[0].revert: only a behaviour with when can "
      "revert; this one has on");
}

static void config_rejects_non_executable_script(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "checks:\n"
      "  - name: c\n"
      "    run: bin/noexec\n"
      "behaviours:\n"
      "  - {name: a, when: {any: x}, run: [true], revert: bin}\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:3:10: checks[0].run: @/bin/noexec: is not executable",
      "@/main.yaml:5:52: behaviours[0].revert: bin: not found in PATH");
}

static void config_rejects_command_not_in_path(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - name: a\n"
      "    when: {all: down}\n"
      "    run: [choreo-test-no-such-command, x]\n"
      "    revert: [\"\"]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:4:11: behaviours[0].run: "
                "choreo-test-no-such-command: not found in PATH",
                "@/main.yaml:5:14: behaviours[0].revert: the command is "
                "empty");
}

static void config_rejects_duplicate_behaviour_names(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "behaviours:\n"
      "  - {name: a, on: change, run: [true]}\n"
      "  - {name: a, on: change, run: [true]}\n"
      "include:\n"
      "  - packs/p.yaml\n");
  put(f, "packs/p.yaml",
      "behaviours:\n"
      "  - name: a\n"
      "    on: change\n"
      "    run: [true]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:3:12: behaviours[1].name: duplicate behaviour "
                "name \"a\" (first at @/main.yaml:2:5)",
                "@/packs/p.yaml:2:11: behaviours[0].name: duplicate behaviour "
                "name \"a\" (first at @/main.yaml:2:5)");
}

/* ---- Problems: checks ---- */

static void config_rejects_bad_check_settings(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "checks:\n"
      "  - name: c\n"
      "    run: [true]\n"
      "    interval: 1s\n"
      "    timeout: 1s\n"
      "    fall: 0\n"
      "    state: ready\n"
      "  - {name: c, run: [true], interval: 1s}\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:5:14: checks[0].timeout: must be shorter than interval (1s)",
      "@/main.yaml:6:11: checks[0].fall: 0 is out of range (1 to 100)",
      "@/main.yaml:7:12: checks[0].state: a failing check can't claim "
      "\"ready\"",
      "@/main.yaml:8:12: checks[1].name: duplicate check name \"c\" (first "
      "at @/main.yaml:2:5)",
      "@/main.yaml:8:38: checks[1].interval: must be longer than timeout "
      "(2s)");
}

/* ---- Problems: includes ---- */

static void config_rejects_include_missing_var(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "include:\n"
      "  - file: packs/p.yaml\n"
      "    vars: {unit: a.service}\n");
  put(f, "packs/p.yaml",
      "behaviours:\n"
      "  - name: restart\n"
      "    when: {any: down}\n"
      "    run: [true, \"${unit}\", \"${units}\"]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/packs/p.yaml:4:28: ${units} has no value (include at "
                "@/main.yaml:2:5)");
}

static void config_rejects_include_unused_var(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "include:\n"
      "  - file: packs/p.yaml\n"
      "    vars:\n"
      "      unit: a.service\n"
      "      depends_on: db\n");
  put(f, "packs/p.yaml",
      "behaviours:\n"
      "  - {name: \"${unit}\", on: change, run: [true]}\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:5:7: include[0].vars: \"depends_on\" is not used "
                "in @/packs/p.yaml");
}

static void config_rejects_same_include_twice(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "include:\n"
      "  - {file: packs/p.yaml, vars: {a: x, b: y}}\n"
      "  - file: ./packs/../packs/p.yaml\n"
      "    vars: {b: y, a: x}\n");
  put(f, "packs/p.yaml",
      "checks:\n"
      "  - {name: \"${a}${b}\", run: [true]}\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:3:5: include[1]: @/packs/../packs/p.yaml is "
                "already included with the same vars at @/main.yaml:2:5");
}

static void config_rejects_missing_include_file(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "include:\n"
      "  - packs/none.yaml\n"
      "  - {vars: {a: b}}\n"
      "  - {file: packs/p.yaml, vars: {1a: b}}\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:2:5: include[0]: @/packs/none.yaml: No such file or "
      "directory",
      "@/main.yaml:3:5: include[1]: \"file\" is required",
      "@/main.yaml:4:33: include[2].vars: \"1a\" is not a var name (1-64 of "
      "A-Z a-z 0-9 _, not starting with a digit)");
}

static void config_rejects_other_sections_in_an_include(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml", "include: [packs/p.yaml]\n");
  put(f, "packs/p.yaml",
      "node: {name: x}\n"
      "include: [q.yaml]\n"
      "checks: []\n"
      "extra: 1\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/packs/p.yaml:1:1: node: not allowed in an included file "
                "(only behaviours and checks)",
                "@/packs/p.yaml:2:1: include: an included file can't include "
                "other files",
                "@/packs/p.yaml:4:1: unknown key \"extra\" (expected checks, "
                "behaviours)");
}

/* ---- Problems: the files themselves ---- */

static void config_stops_a_file_at_a_yaml_syntax_error(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node:\n"
      "  name: [a\n"
      "network: {nope: 1}\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:3:8: invalid YAML: while parsing a flow "
                "sequence: did not find expected ',' or ']'");
}

static void config_rejects_yaml_aliases(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node:\n"
      "  name: &n web1\n"
      "  cluster: *n\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:9: YAML anchors are not supported (&n); write "
                "the value out in full",
                "@/main.yaml:3:12: YAML aliases are not supported (*n); write "
                "the value out in full",
                "@/main.yaml:3:12: node.cluster: expected a string");
}

static void config_rejects_a_second_document(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node: {name: a}\n"
      "---\n"
      "node: {name: b}\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:1: only one YAML document per file");
}

static void config_rejects_deep_nesting(void **state) {
  struct fixture *f = *state;
  char text[256];
  size_t n = 0;

  n += (size_t)snprintf(text, sizeof(text), "node: ");
  for (int i = 0; i < 70; i++)
    text[n++] = '[';
  text[n++] = '\n';
  text[n] = '\0';
  put(f, "main.yaml", text);
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:1:70: nested deeper than 64 levels");
}

static void config_rejects_missing_main_file(void **state) {
  struct fixture *f = *state;
  EXPECT_ERRORS(f, load(f, "none.yaml"),
                "@/none.yaml:1:1: No such file or directory");
}

/* A FIFO (or a device) is refused at once: opening it must not wait for a
 * writer that never comes, neither as the main file nor as an include. */
static void config_rejects_fifos_without_waiting(void **state) {
  struct fixture *f = *state;
  char path[256];

  snprintf(path, sizeof(path), "%s/fifo.yaml", f->dir);
  assert_int_equal(mkfifo(path, 0644), 0);
  EXPECT_ERRORS(f, load(f, "fifo.yaml"), "@/fifo.yaml:1:1: not a regular file");
  config_errors_free(&f->errs);
  put(f, "main.yaml", "include: [fifo.yaml]\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:1:11: include[0]: @/fifo.yaml: not a regular "
                "file");
}

static void config_rejects_too_large_file(void **state) {
  struct fixture *f = *state;
  char *big = malloc(CONFIG_FILE_MAX + 2);

  assert_non_null(big);
  memset(big, '#', CONFIG_FILE_MAX + 1);
  big[CONFIG_FILE_MAX + 1] = '\0';
  put(f, "main.yaml", big);
  free(big);
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:1:1: larger than 1048576 bytes");
}

static void config_reports_every_problem(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "node: {name: \"a b\", state: left}\n"
      "network: {heartbeat: soon}\n"
      "checks:\n"
      "  - {name: c, run: [true], rise: x}\n"
      "behaviours:\n"
      "  - {name: a, when: {any: UP}, run: [true]}\n");
  EXPECT_ERRORS(
      f, load(f, "main.yaml"),
      "@/main.yaml:1:14: node.name: \"a b\" is not a valid name (1-64 of A-Z "
      "a-z 0-9 . _ -)",
      "@/main.yaml:1:28: node.state: \"left\" is assigned by observers and "
      "can't be set",
      "@/main.yaml:2:22: network.heartbeat: \"soon\" is not a duration (write "
      "250ms, 5s, 2m or 24h)",
      "@/main.yaml:4:34: checks[0].rise: \"x\" is not a whole number",
      "@/main.yaml:6:27: behaviours[0].when.any: \"UP\" is not a valid state "
      "(1-32 of a-z 0-9 _ -)");
}

static void config_caps_messages_and_counts_the_rest(void **state) {
  struct fixture *f = *state;
  const size_t size = 64 * 1024;
  char *text = malloc(size);
  size_t n;

  assert_non_null(text);
  n = (size_t)snprintf(text, size, "behaviours:\n");
  for (int i = 0; i < CONFIG_ERRORS_MAX + 20; i++)
    n += (size_t)snprintf(text + n, size - n,
                          "  - {name: b%d, on: change, run: [true], "
                          "retries: x}\n",
                          i);
  assert_true(n < size);
  put(f, "main.yaml", text);
  free(text);
  assert_int_equal(load(f, "main.yaml"), CHOREO_ECONFIG);
  assert_int_equal(f->errs.n, CONFIG_ERRORS_MAX);
  assert_int_equal(f->errs.more, 20);
  assert_string_equal(f->errs.msg[0] + strlen(f->dir),
                      "/main.yaml:2:50: behaviours[0].retries: \"x\" is not "
                      "a whole number");
}

/* ---- Helpers used by the engine ---- */

static void config_event_name_names_every_event(void **state) {
  (void)state;
  assert_string_equal(config_event_name(CONFIG_EV_JOINED), "joined");
  assert_string_equal(config_event_name(CONFIG_EV_LEFT), "left");
  assert_string_equal(config_event_name(CONFIG_EV_LOST), "lost");
  assert_string_equal(config_event_name(CONFIG_EV_STATE), "state");
  assert_string_equal(config_event_name(CONFIG_EV_DATA), "data");
  assert_string_equal(config_event_name(CONFIG_EV_CHANGE), "change");
  assert_string_equal(config_event_name(CONFIG_EV__COUNT), "unknown");
}

static void
config_same_trigger_compares_peers_condition_and_events(void **state) {
  struct config_behaviour a, b;
  (void)state;

  memset(&a, 0, sizeof(a));
  snprintf(a.name, sizeof(a.name), "one");
  snprintf(a.peers.group, sizeof(a.peers.group), "db");
  a.has_when = true;
  a.when.kind = COND_ANY;
  a.when.nstates = 2;
  snprintf(a.when.states[0], sizeof(a.when.states[0]), "down");
  snprintf(a.when.states[1], sizeof(a.when.states[1]), "maintenance");
  b = a;
  snprintf(b.name, sizeof(b.name), "other"); /* the name does not count */
  b.retries = 3;
  assert_true(config_behaviour_same_trigger(&a, &b));
  snprintf(b.when.states[1], sizeof(b.when.states[1]), "lost");
  assert_false(config_behaviour_same_trigger(&a, &b));
  b = a;
  b.when.kind = COND_ALL;
  assert_false(config_behaviour_same_trigger(&a, &b));
  b = a;
  snprintf(b.peers.node, sizeof(b.peers.node), "db1");
  assert_false(config_behaviour_same_trigger(&a, &b));
  b = a;
  b.has_when = false;
  b.on_mask = CONFIG_EV_BIT(CONFIG_EV_CHANGE);
  assert_false(config_behaviour_same_trigger(&a, &b));
  a = b;
  b.when.kind = COND_NONE; /* ignored without when */
  assert_true(config_behaviour_same_trigger(&a, &b));
  b.on_mask |= CONFIG_EV_BIT(CONFIG_EV_LOST);
  assert_false(config_behaviour_same_trigger(&a, &b));
}

static void config_free_accepts_null(void **state) {
  struct config_errors errs = {0};
  (void)state;
  config_free(NULL);
  config_errors_free(&errs);
  assert_int_equal(errs.n, 0);
}

/* ---- Key files: what the agent would refuse, check refuses too ---- */

static void config_rejects_a_missing_key_file(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "network:\n"
      "  key_file: nokey\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:13: network.key_file: @/nokey: cannot open: No "
                "such file or directory");
}

static void config_rejects_a_key_file_that_is_not_a_key(void **state) {
  struct fixture *f = *state;
  put_file(f, "bad.key", "# comment\nnot a key at all\n", 0600);
  put(f, "main.yaml",
      "network:\n"
      "  key_file: bad.key\n");
  assert_int_equal(load(f, "main.yaml"), CHOREO_ECONFIG);
  assert_int_equal(f->errs.n, 1);
  {
    char want[256];
    snprintf(want, sizeof(want),
             "%s/main.yaml:2:13: network.key_file: %s/bad.key:2: ", f->dir,
             f->dir);
    assert_memory_equal(f->errs.msg[0], want, strlen(want));
  }
  assert_null(strstr(f->errs.msg[0], "not a key at all"));
}

static void config_rejects_a_directory_as_key_file(void **state) {
  struct fixture *f = *state;
  put(f, "main.yaml",
      "network:\n"
      "  key_file: bin\n");
  EXPECT_ERRORS(f, load(f, "main.yaml"),
                "@/main.yaml:2:13: network.key_file: @/bin: not a regular "
                "file");
}

/* ---- control.socket alone, for the command line ---- */

static int socket_of(struct fixture *f, const char *name, char *buf,
                     size_t len) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", f->dir, name);
  return config_socket_path(path, buf, len, &f->errs);
}

static void config_socket_path_ignores_the_rest_of_the_file(void **state) {
  struct fixture *f = *state;
  char sock[CONFIG_SOCKET_MAX + 1];
  put(f, "main.yaml",
      "node: {name: \"not a valid name!\"}\n"
      "control:\n"
      "  mode: bogus\n"
      "  socket: /run/x/choreo.sock\n"
      "behaviours:\n"
      "  - {name: b, on: change, run: /nonexistent/script}\n");
  assert_int_equal(load(f, "main.yaml"), CHOREO_ECONFIG);
  config_errors_free(&f->errs);
  assert_int_equal(socket_of(f, "main.yaml", sock, sizeof(sock)), 0);
  assert_int_equal(f->errs.n, 0);
  assert_string_equal(sock, "/run/x/choreo.sock");
}

static void config_socket_path_defaults_when_not_written(void **state) {
  struct fixture *f = *state;
  char sock[CONFIG_SOCKET_MAX + 1];
  static const char *const files[] = {"", "node: {name: a}\n",
                                      "control: {mode: \"0600\"}\n",
                                      "control:\n", "- a list\n"};
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    put(f, "main.yaml", files[i]);
    assert_int_equal(socket_of(f, "main.yaml", sock, sizeof(sock)), 0);
    assert_string_equal(sock, CHOREO_DEFAULT_SOCKET);
  }
}

static void config_socket_path_reports_what_it_cannot_use(void **state) {
  struct fixture *f = *state;
  char sock[CONFIG_SOCKET_MAX + 1], want[512], big[300];
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"control: {socket: [a, b]}\n",
       "@/main.yaml:1:19: control.socket: expected a string"},
      {"control: {socket: ~}\n",
       "@/main.yaml:1:19: control.socket: expected a string"},
      {"control: [\n", NULL}, /* a YAML syntax error: said by libyaml */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    put(f, "main.yaml", cases[i].text);
    assert_int_equal(socket_of(f, "main.yaml", sock, sizeof(sock)),
                     CHOREO_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    if (cases[i].want != NULL) {
      expand_dir(f, cases[i].want, want, sizeof(want));
      assert_string_equal(f->errs.msg[0], want);
    }
    config_errors_free(&f->errs);
  }
  memset(big, 'a', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  snprintf(want, sizeof(want), "control: {socket: /%s}\n", big);
  put(f, "main.yaml", want);
  assert_int_equal(socket_of(f, "main.yaml", sock, sizeof(sock)),
                   CHOREO_ECONFIG);
  expand_dir(f,
             "@/main.yaml:1:19: control.socket: longer than 107 bytes (the "
             "limit of a unix socket path)",
             want, sizeof(want));
  assert_string_equal(f->errs.msg[0], want);
  config_errors_free(&f->errs);
  assert_int_equal(socket_of(f, "missing.yaml", sock, sizeof(sock)),
                   CHOREO_ECONFIG);
  expand_dir(f, "@/missing.yaml:1:1: No such file or directory", want,
             sizeof(want));
  assert_string_equal(f->errs.msg[0], want);
}

/* ---- Paths at and beyond CONFIG_PATH_MAX ---- */

static void config_refuses_a_path_of_config_path_max_bytes(void **state) {
  struct fixture *f = *state;
  char *path = malloc(CONFIG_PATH_MAX + 1), sock[CONFIG_SOCKET_MAX + 1];
  char want[64];
  assert_non_null(path);
  memset(path, 'a', CONFIG_PATH_MAX);
  path[0] = '/';
  path[CONFIG_PATH_MAX] = '\0';
  snprintf(want, sizeof(want), ":1:1: path longer than %d bytes",
           CONFIG_PATH_MAX - 1);
  assert_int_equal(config_load(path, &f->cfg, &f->errs), CHOREO_ECONFIG);
  assert_int_equal(f->errs.n, 1);
  assert_non_null(strstr(f->errs.msg[0], want));
  config_errors_free(&f->errs);
  assert_int_equal(config_socket_path(path, sock, sizeof(sock), &f->errs),
                   CHOREO_ECONFIG);
  assert_int_equal(f->errs.n, 1);
  assert_non_null(strstr(f->errs.msg[0], want));
  free(path);
}

/* ---- Own states: lost and left are the observers' ---- */

static void
config_refuses_lost_and_left_wherever_a_state_is_claimed(void **state) {
  struct fixture *f = *state;
  static const char *const files[] = {
      "node: {state: lost}\n",
      "node: {state: left}\n",
      "checks:\n  - {name: c, run: bin/ok, state: lost}\n",
      "behaviours:\n  - {name: b, when: {any: ready}, run: bin/ok, state: "
      "left}\n",
  };
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    put(f, "main.yaml", files[i]);
    assert_int_equal(load(f, "main.yaml"), CHOREO_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    assert_non_null(
        strstr(f->errs.msg[0], "is assigned by observers and can't be set"));
    config_errors_free(&f->errs);
  }
}

/* ---- Lists with a cap (add_item) ---- */

/* Item i of a checks (check) or behaviours list, appended at text + used. */
static size_t list_item(bool check, size_t i, char *text, size_t len) {
  if (check)
    return (size_t)snprintf(text, len, "  - {name: c%zu, run: bin/ok}\n", i);
  return (size_t)snprintf(text, len,
                          "  - {name: b%zu, on: change, run: bin/ok}\n", i);
}

static void config_caps_checks_and_behaviours(void **state) {
  struct fixture *f = *state;
  static const struct {
    const char *section, *want;
    size_t max;
  } cases[] = {
      {"checks", "checks: more than 64 checks", CONFIG_CHECKS_MAX},
      {"behaviours", "behaviours: more than 1024 behaviours",
       CONFIG_BEHAVIOURS_MAX},
  };
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    size_t len = 64 + (cases[c].max + 2) * 64, used;
    char *text = malloc(len);
    assert_non_null(text);
    used = (size_t)snprintf(text, len, "%s:\n", cases[c].section);
    for (size_t i = 0; i < cases[c].max; i++)
      used += list_item(c == 0, i, text + used, len - used);
    put(f, "main.yaml", text);
    load_ok(f, "main.yaml");
    assert_int_equal(c == 0 ? f->cfg->nchecks : f->cfg->nbehaviours,
                     cases[c].max);
    assert_string_equal(c == 0 ? f->cfg->checks[cases[c].max - 1].name
                               : f->cfg->behaviours[cases[c].max - 1].name,
                        c == 0 ? "c63" : "b1023");
    config_free(f->cfg);
    f->cfg = NULL;
    list_item(c == 0, cases[c].max, text + used, len - used);
    put(f, "main.yaml", text);
    assert_int_equal(load(f, "main.yaml"), CHOREO_ECONFIG);
    assert_int_equal(f->errs.n, 1);
    assert_non_null(strstr(f->errs.msg[0], cases[c].want));
    config_errors_free(&f->errs);
    free(text);
  }
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(config_loads_every_field_of_the_full_example),
      T(config_loads_checks_of_the_main_file_and_the_pack),
      T(config_loads_behaviours_in_file_order_with_pack_vars),
      T(config_loads_a_condition_behaviour_with_every_key),
      T(config_loads_event_and_quorum_behaviours),
      T(config_uses_defaults_for_an_empty_file),
      T(config_defaults_advertise_to_a_concrete_listen),
      T(config_accepts_non_loopback_listen_with_key_or_insecure),
      T(config_reads_relay_settings),
      T(config_rejects_bad_relay_settings),
      T(config_resolves_relative_scripts_against_their_file),
      T(config_resolves_paths_of_a_relative_config_file),
      T(config_accepts_same_include_with_other_vars),
      T(config_rejects_unknown_key),
      T(config_rejects_duplicate_key),
      T(config_rejects_wrong_types),
      T(config_rejects_an_empty_command),
      T(config_rejects_bad_duration),
      T(config_rejects_lost_after_not_above_heartbeat),
      T(config_sync_defaults_to_waiting_for_nothing_more),
      T(config_reads_the_sync_section),
      T(config_rejects_bad_sync_values),
      T(config_rejects_sync_in_an_included_file),
      T(config_reads_log_level_and_rejects_unknown_levels),
      T(config_rejects_bad_state_characters),
      T(config_rejects_bad_node_fields),
      T(config_rejects_too_many_groups),
      T(config_rejects_non_loopback_listen_without_key),
      T(config_rejects_wildcard_listen_without_advertise),
      T(config_rejects_bad_addresses),
      T(config_rejects_bad_control_settings),
      T(config_rejects_fewer_than_zero),
      T(config_rejects_left_in_a_condition),
      T(config_rejects_a_state_or_event_listed_twice),
      T(config_rejects_malformed_conditions),
      T(config_rejects_when_and_on_together_or_neither),
      T(config_rejects_change_mixed_with_events),
      T(config_rejects_revert_and_state_with_on),
      T(config_rejects_missing_name_and_run),
      T(config_takes_max_members_within_bounds),
      T(config_rejects_missing_script),
      T(config_rejects_non_executable_script),
      T(config_rejects_command_not_in_path),
      T(config_rejects_duplicate_behaviour_names),
      T(config_rejects_bad_check_settings),
      T(config_rejects_include_missing_var),
      T(config_rejects_include_unused_var),
      T(config_rejects_same_include_twice),
      T(config_rejects_missing_include_file),
      T(config_rejects_other_sections_in_an_include),
      T(config_stops_a_file_at_a_yaml_syntax_error),
      T(config_rejects_yaml_aliases),
      T(config_rejects_a_second_document),
      T(config_rejects_deep_nesting),
      T(config_rejects_missing_main_file),
      T(config_rejects_fifos_without_waiting),
      T(config_rejects_too_large_file),
      T(config_reports_every_problem),
      T(config_caps_messages_and_counts_the_rest),
      T(config_event_name_names_every_event),
      T(config_same_trigger_compares_peers_condition_and_events),
      T(config_free_accepts_null),
      T(config_rejects_a_missing_key_file),
      T(config_rejects_a_key_file_that_is_not_a_key),
      T(config_rejects_a_directory_as_key_file),
      T(config_socket_path_ignores_the_rest_of_the_file),
      T(config_socket_path_defaults_when_not_written),
      T(config_socket_path_reports_what_it_cannot_use),
      T(config_refuses_a_path_of_config_path_max_bytes),
      T(config_refuses_lost_and_left_wherever_a_state_is_claimed),
      T(config_caps_checks_and_behaviours),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
