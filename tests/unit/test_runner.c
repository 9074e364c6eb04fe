/*
 * test_runner.c — the script runner against real child processes: results,
 * input and environment, output limits, timeouts that take the whole
 * process group, retries, the concurrency limit, closing; and the
 * metrics the runner keeps (their rendering is test_metrics.c's).
 *
 * Each test has its own loop, counts callbacks, asserts the counts after
 * uv_run and ends with uv_loop_close() == 0, so a leaked handle fails it.
 * Scripts are /bin/sh -c one-liners; $1 is a fresh temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "choreo.h"
#include "metrics.h"
#include "runner.h"
#include "util.h"

extern char **environ;

#define MAX_EVENTS 64

struct fx {
  uv_loop_t loop;
  struct runner r;
  struct metrics m;
  char dir[64];
  int started, done, closed;
  uint64_t start_tags[MAX_EVENTS];
  unsigned attempts[MAX_EVENTS];
  uint64_t done_tags[MAX_EVENTS];
  enum runner_result res[MAX_EVENTS];
  int status[MAX_EVENTS];
  int running, max_running;
  int64_t running_gauge_max;
  int close_at_start; /* runner_close from the nth started callback */
};

/* ---- fixture ---- */

static void on_closed(struct runner *r) {
  struct fx *f = container_of(r, struct fx, r);
  f->closed++;
}

static void on_started(void *arg, uint64_t tag, unsigned attempt) {
  struct fx *f = arg;
  if (f->started < MAX_EVENTS) {
    f->start_tags[f->started] = tag;
    f->attempts[f->started] = attempt;
  }
  f->started++;
  if (++f->running > f->max_running)
    f->max_running = f->running;
  if (f->m.runs_running > f->running_gauge_max)
    f->running_gauge_max = f->m.runs_running;
  if (f->close_at_start == f->started)
    runner_close(&f->r, on_closed);
}

static void on_done(void *arg, uint64_t tag, enum runner_result res,
                    int status) {
  struct fx *f = arg;
  if (f->done < MAX_EVENTS) {
    f->done_tags[f->done] = tag;
    f->res[f->done] = res;
    f->status[f->done] = status;
  }
  f->done++;
  /* A cancelled queued job never started. */
  if (f->running > 0 && res != RUNNER_CANCELLED)
    f->running--;
}

static int setup(void **state) {
  struct fx *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  snprintf(f->dir, sizeof(f->dir), "/tmp/test_runner.XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  runner_init(&f->r, &f->loop, 4, &f->m, on_started, on_done, f);
  *state = f;
  return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Close the runner, drain the loop, and require that nothing leaked. */
static int teardown(void **state) {
  struct fx *f = *state;
  if (!f->r.closing)
    runner_close(&f->r, on_closed);
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
  assert_int_equal(f->closed, 1);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

/* ---- helpers ---- */

static void submit_argv(struct fx *f, uint64_t tag, char *const *argv,
                        const char *input, size_t input_len,
                        uint64_t timeout_ms, unsigned retries) {
  struct runner_spec spec = {
      .tag = tag,
      .name = "job",
      .argv = argv,
      .env = environ,
      .input = input,
      .input_len = input_len,
      .timeout_ms = timeout_ms,
      .retries = retries,
  };
  assert_int_equal(runner_submit(&f->r, &spec), 0);
}

/* Run `script` with /bin/sh; $1 is the fixture's directory. */
static void submit_sh(struct fx *f, uint64_t tag, const char *script,
                      uint64_t timeout_ms, unsigned retries) {
  char *argv[] = {"/bin/sh", "-c", (char *)script, "sh", f->dir, NULL};
  submit_argv(f, tag, argv, NULL, 0, timeout_ms, retries);
}

static void run(struct fx *f) {
  assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
}

static uint64_t now_ms(void) {
  return uv_hrtime() / 1000000;
}

static void path_of(const struct fx *f, const char *name, char *buf,
                    size_t len) {
  int n = snprintf(buf, len, "%s/%s", f->dir, name);
  assert_true(n > 0 && (size_t)n < len);
}

/* The whole file, NUL-terminated; the caller frees it. */
static char *slurp(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb"); /* written by the script under test */
  char *buf = NULL;
  size_t cap = 0, n = 0, k;

  assert_non_null(fp);
  do {
    if (cap - n < 4096) {
      cap = cap * 2 + 4096;
      buf = realloc(buf, cap + 1);
      assert_non_null(buf);
    }
    k = fread(buf + n, 1, cap - n, fp);
    n += k;
  } while (k > 0);
  fclose(fp);
  buf[n] = '\0';
  if (len != NULL)
    *len = n;
  return buf;
}

static char *slurp_in(const struct fx *f, const char *name) {
  char path[128];
  path_of(f, name, path, sizeof(path));
  return slurp(path, NULL);
}

static pid_t read_pgid(const struct fx *f) {
  char *s = slurp_in(f, "pgid");
  long v = strtol(s, NULL, 10);
  free(s);
  assert_true(v > 1);
  return (pid_t)v;
}

/* Orphans of a killed group come to this process (a subreaper, see main):
 * reap them, then require that the group is empty. */
static bool group_gone(pid_t pgid) {
  for (int i = 0; i < 300; i++) {
    while (waitpid(-pgid, NULL, WNOHANG) > 0)
      ;
    if (kill(-pgid, 0) == -1 && errno == ESRCH)
      return true;
    usleep(10000);
  }
  return false;
}

static size_t count(const char *hay, const char *needle) {
  size_t n = 0;
  for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

/* The agent's log goes to stderr: catch it in a file for a while. */
struct capture {
  int saved;
  char path[128];
};

static void capture_start(const struct fx *f, struct capture *c) {
  int fd;
  path_of(f, "log", c->path, sizeof(c->path));
  /* The log under test, read back by capture_end. */
  fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  fflush(stderr);
  c->saved = dup(STDERR_FILENO);
  assert_true(c->saved >= 0);
  assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  close(fd);
}

static char *capture_end(struct capture *c) {
  dup2(c->saved, STDERR_FILENO);
  close(c->saved);
  return slurp(c->path, NULL);
}

/* ---- results ---- */

static void runner_reports_ok_once_for_exit_zero(void **state) {
  struct fx *f = *state;

  submit_sh(f, 42, "exit 0", 0, 2);
  run(f);
  assert_int_equal(f->started, 1);
  assert_int_equal(f->attempts[0], 0);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->done_tags[0], 42);
  assert_int_equal(f->res[0], RUNNER_OK);
  assert_int_equal(f->status[0], 0);
  assert_int_equal(f->m.runs_started, 1);
  assert_int_equal(f->m.runs_failed, 0);
  assert_int_equal(f->m.runs_retried, 0);
  assert_int_equal(f->m.runs_running, 0);
  assert_int_equal(f->m.runs_queued, 0);
}

static void runner_reports_the_exit_code_of_a_failing_script(void **state) {
  struct fx *f = *state;

  submit_sh(f, 1, "exit 3", 0, 0);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_EXIT);
  assert_int_equal(f->status[0], 3);
  assert_int_equal(f->m.runs_failed, 1);
}

static void runner_reports_the_signal_that_killed_a_script(void **state) {
  struct fx *f = *state;

  submit_sh(f, 1, "kill -KILL $$", 0, 0);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_SIGNAL);
  assert_int_equal(f->status[0], SIGKILL);
  assert_int_equal(f->m.runs_failed, 1);
}

static void runner_never_calls_back_from_inside_submit(void **state) {
  struct fx *f = *state;
  char *argv[] = {"/nonexistent/choreo-test-missing", NULL};

  submit_sh(f, 1, "exit 0", 0, 0);
  submit_argv(f, 2, argv, NULL, 0, 0, 0);
  assert_int_equal(f->started, 0);
  assert_int_equal(f->done, 0);
  run(f);
  assert_int_equal(f->started, 1);
  assert_int_equal(f->done, 2);
}

/* ---- input and environment ---- */

static void runner_writes_the_input_to_stdin_exactly(void **state) {
  struct fx *f = *state;
  static const char input[] =
      "{\"node\": {\"name\": \"web1\"}, \"event\": \"run\", \"peers\": []}";
  char *argv[] = {"/bin/sh", "-c", "cat > \"$1/in\"", "sh", f->dir, NULL};
  size_t len;
  char path[128], *got;

  submit_argv(f, 1, argv, input, strlen(input), 0, 0);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_OK);
  path_of(f, "in", path, sizeof(path));
  got = slurp(path, &len);
  assert_int_equal(len, strlen(input));
  assert_memory_equal(got, input, len);
  free(got);
}

static void runner_passes_exactly_the_given_environment(void **state) {
  struct fx *f = *state;
  char *argv[] = {"/bin/sh",
                  "-c",
                  "printf '%s|%s' \"$CHOREO_TEST_VALUE\" "
                  "\"${CHOREO_TEST_PARENT_ONLY-unset}\" > \"$1/env\"",
                  "sh",
                  f->dir,
                  NULL};
  char *env[] = {"PATH=/usr/bin:/bin", "CHOREO_TEST_VALUE=hello world", NULL};
  struct runner_spec spec = {.tag = 1, .name = "env", .argv = argv, .env = env};
  char *got;

  setenv("CHOREO_TEST_PARENT_ONLY", "leaked", 1);
  assert_int_equal(runner_submit(&f->r, &spec), 0);
  run(f);
  unsetenv("CHOREO_TEST_PARENT_ONLY");
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_OK);
  got = slurp_in(f, "env");
  assert_string_equal(got, "hello world|unset");
  free(got);
}

static void runner_finishes_a_script_that_ignores_a_large_input(void **state) {
  struct fx *f = *state;
  size_t len = 1024 * 1024;
  char *input = malloc(len);
  char *quick[] = {"/bin/sh", "-c", "exit 0", NULL};
  char *slow[] = {"/bin/sh", "-c", "sleep 0.2; exit 0", NULL};

  assert_non_null(input);
  memset(input, 'x', len);
  submit_argv(f, 1, quick, input, len, 10000, 0);
  submit_argv(f, 2, slow, input, len, 10000, 0);
  free(input); /* the runner has its own copy */
  run(f);
  assert_int_equal(f->done, 2);
  assert_int_equal(f->res[0], RUNNER_OK);
  assert_int_equal(f->res[1], RUNNER_OK);
}

/* ---- timeouts ---- */

static void runner_kills_the_whole_process_group_at_timeout(void **state) {
  struct fx *f = *state;
  uint64_t t0 = now_ms();
  pid_t pgid;

  submit_sh(f, 1,
            "echo $$ > \"$1/pgid\"; sleep 1000 & sleep 1000 & "
            "echo started; wait",
            300, 0);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_TIMEOUT);
  assert_int_equal(f->m.runs_timed_out, 1);
  assert_int_equal(f->m.runs_failed, 1);
  /* SIGTERM was enough: no wait for the kill grace. */
  assert_true(now_ms() - t0 < RUNNER_KILL_GRACE_MS);
  pgid = read_pgid(f);
  assert_true(group_gone(pgid));
}

static void runner_sends_sigkill_to_a_group_that_ignores_sigterm(void **state) {
  struct fx *f = *state;
  uint64_t t0 = now_ms();
  pid_t pgid;

  /* An ignored signal stays ignored across exec: the sleeps ignore it too. */
  submit_sh(f, 1,
            "trap '' TERM; echo $$ > \"$1/pgid\"; sleep 1000 & sleep 1000", 200,
            0);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_TIMEOUT);
  assert_true(now_ms() - t0 >= RUNNER_KILL_GRACE_MS);
  pgid = read_pgid(f);
  assert_true(group_gone(pgid));
}

/* ---- retries ---- */

#define COUNT_TRIES                                                            \
  "n=$(cat \"$1/count\" 2>/dev/null || echo 0); n=$((n + 1)); "                \
  "echo $n > \"$1/count\"; "

static void runner_retries_a_failing_script_then_reports_once(void **state) {
  struct fx *f = *state;
  uint64_t t0 = now_ms();
  char *tries;

  submit_sh(f, 7, COUNT_TRIES "exit 1", 0, 2);
  run(f);
  tries = slurp_in(f, "count");
  assert_string_equal(tries, "3\n");
  free(tries);
  assert_int_equal(f->started, 3);
  for (unsigned i = 0; i < 3; i++) {
    assert_int_equal(f->start_tags[i], 7);
    assert_int_equal(f->attempts[i], i);
  }
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_EXIT);
  assert_int_equal(f->status[0], 1);
  assert_int_equal(f->m.runs_started, 3);
  assert_int_equal(f->m.runs_retried, 2);
  assert_int_equal(f->m.runs_failed, 1);
  /* Backoff: 1x then 2x the base delay. */
  assert_true(now_ms() - t0 >= 3 * RUNNER_BACKOFF_MS - 50);
}

static void runner_stops_retrying_once_a_try_succeeds(void **state) {
  struct fx *f = *state;

  submit_sh(f, 1, COUNT_TRIES "[ $n -ge 2 ] && exit 0; exit 1", 0, 3);
  run(f);
  assert_int_equal(f->started, 2);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_OK);
  assert_int_equal(f->m.runs_retried, 1);
  assert_int_equal(f->m.runs_failed, 0);
}

/* ---- output ---- */

/* The text after "job: " on each log line equal to want. */
static size_t count_logged(const char *log, const char *level,
                           const char *want) {
  char needle[2048];
  snprintf(needle, sizeof(needle), " %s: job: %s\n", level, want);
  return count(log, needle);
}

static void runner_keeps_a_quiet_jobs_stdout_out_of_the_info_log(void **state) {
  struct fx *f = *state;
  char *argv[] = {"/bin/sh", "-c", "echo chatter; echo trouble >&2", NULL};
  struct runner_spec spec = {
      .tag = 1,
      .name = "job",
      .argv = argv,
      .env = environ,
      .quiet = true,
  };
  struct capture c;
  char *log;

  unsetenv("CHOREO_DEBUG");
  capture_start(f, &c);
  assert_int_equal(runner_submit(&f->r, &spec), 0);
  run(f);
  log = capture_end(&c);
  assert_int_equal(f->res[0], RUNNER_OK);
  assert_int_equal(count_logged(log, "info", "chatter"), 0);
  assert_int_equal(count_logged(log, "warning", "trouble"), 1);
  free(log);
}

static void runner_logs_output_lines_with_the_job_name(void **state) {
  struct fx *f = *state;
  struct capture c;
  char a1024[RUNNER_LINE_MAX + 1], a452[453];
  char *log;

  memset(a1024, 'a', RUNNER_LINE_MAX);
  a1024[RUNNER_LINE_MAX] = '\0';
  memset(a452, 'a', 452);
  a452[452] = '\0';
  capture_start(f, &c);
  submit_sh(f, 1,
            "echo hello; echo oops >&2; printf 'esc\\033[31m\\r\\n'; "
            "head -c 2500 /dev/zero | tr '\\0' a; echo; printf partial",
            0, 0);
  run(f);
  log = capture_end(&c);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_OK);
  assert_int_equal(count_logged(log, "info", "hello"), 1);
  assert_int_equal(count_logged(log, "warning", "oops"), 1);
  assert_int_equal(count_logged(log, "info", "esc?[31m"), 1);
  assert_int_equal(count_logged(log, "info", a1024), 2);
  assert_int_equal(count_logged(log, "info", a452), 1);
  assert_int_equal(count_logged(log, "info", "partial"), 1);
  assert_int_equal(count(log, "truncated"), 0);
  assert_int_equal(f->m.output_dropped_bytes, 0);
  free(log);
}

static void
runner_drops_output_beyond_the_line_budget_and_says_so(void **state) {
  struct fx *f = *state;
  struct capture c;
  char *log;

  capture_start(f, &c);
  submit_sh(f, 1,
            "i=0; while [ $i -lt 300 ]; do printf 'line%03d\\n' $i; "
            "i=$((i + 1)); done",
            0, 0);
  run(f);
  log = capture_end(&c);
  assert_int_equal(f->res[0], RUNNER_OK);
  assert_int_equal(count_logged(log, "info", "line000"), 1);
  assert_int_equal(count_logged(log, "info", "line199"), 1);
  assert_int_equal(count_logged(log, "info", "line200"), 0);
  /* 100 lines of 8 bytes went unlogged. */
  assert_int_equal(f->m.output_dropped_bytes, 800);
  assert_int_equal(
      count_logged(log, "warning", "output truncated: 800 more bytes dropped"),
      1);
  free(log);
}

static long max_rss_kb(void) {
  struct rusage ru;
  assert_int_equal(getrusage(RUSAGE_SELF, &ru), 0);
  return ru.ru_maxrss;
}

static void runner_keeps_memory_bounded_under_100mb_of_output(void **state) {
  struct fx *f = *state;
  struct capture c;
  long before = max_rss_kb();
  char *log;

  capture_start(f, &c);
  submit_sh(f, 1, "head -c 100000000 /dev/zero | tr '\\0' x", 0, 0);
  run(f);
  log = capture_end(&c);
  free(log);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_OK);
  assert_true(f->m.output_dropped_bytes >= 99000000);
  assert_true(f->m.output_dropped_bytes <= 100000000);
  /* Far below the 100 MB that went through. */
  assert_true(max_rss_kb() - before < 16 * 1024);
}

/* ---- concurrency ---- */

static void runner_runs_at_most_max_running_in_fifo_order(void **state) {
  struct fx *f = *state;

  runner_init(&f->r, &f->loop, 2, &f->m, on_started, on_done, f);
  for (uint64_t tag = 0; tag < 6; tag++)
    submit_sh(f, tag, "sleep 0.1", 0, 0);
  assert_int_equal(f->m.runs_queued, 6);
  run(f);
  assert_int_equal(f->started, 6);
  assert_int_equal(f->max_running, 2);
  assert_true(f->running_gauge_max <= 2);
  for (uint64_t tag = 0; tag < 6; tag++) {
    assert_int_equal(f->start_tags[tag], tag);
    assert_int_equal(f->res[tag], RUNNER_OK);
  }
  assert_int_equal(f->done, 6);
  assert_int_equal(f->m.runs_running, 0);
  assert_int_equal(f->m.runs_queued, 0);
}

static void runner_does_not_hold_a_slot_during_backoff(void **state) {
  struct fx *f = *state;

  runner_init(&f->r, &f->loop, 1, &f->m, on_started, on_done, f);
  submit_sh(f, 1, COUNT_TRIES "[ $n -ge 2 ] && exit 0; exit 1", 0, 1);
  submit_sh(f, 2, "exit 0", 0, 0);
  run(f);
  /* Job 2 ran while job 1 waited for its retry. */
  assert_int_equal(f->started, 3);
  assert_int_equal(f->start_tags[0], 1);
  assert_int_equal(f->start_tags[1], 2);
  assert_int_equal(f->start_tags[2], 1);
  assert_int_equal(f->done, 2);
  assert_int_equal(f->done_tags[0], 2);
  assert_int_equal(f->res[1], RUNNER_OK);
}

/* ---- spawn failures ---- */

static void runner_reports_a_missing_executable_without_retry(void **state) {
  struct fx *f = *state;
  char *argv[] = {"/nonexistent/choreo-test-missing", NULL};

  submit_argv(f, 5, argv, "{}", 2, 1000, 3);
  run(f);
  assert_int_equal(f->started, 0);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->done_tags[0], 5);
  assert_int_equal(f->res[0], RUNNER_SPAWN);
  assert_int_equal(f->status[0], -ENOENT);
  assert_int_equal(f->m.runs_started, 0);
  assert_int_equal(f->m.runs_retried, 0);
  assert_int_equal(f->m.runs_failed, 1);
}

static void runner_reports_a_file_without_exec_permission(void **state) {
  struct fx *f = *state;
  char path[128];
  char *argv[] = {path, NULL};
  FILE *fp;

  path_of(f, "noexec", path, sizeof(path));
  fp = fopen(path, "w"); /* a script the runner must refuse to run */
  assert_non_null(fp);
  fputs("#!/bin/sh\nexit 0\n", fp);
  fclose(fp);
  assert_int_equal(chmod(path, 0644), 0);
  /* Even root needs an x bit to execute a file; skip on odd systems. */
  if (access(path, X_OK) == 0)
    skip();
  submit_argv(f, 1, argv, NULL, 0, 0, 2);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_SPAWN);
  assert_int_equal(f->status[0], -EACCES);
}

static void runner_finds_a_bare_name_in_path(void **state) {
  struct fx *f = *state;
  char *argv[] = {"true", NULL};

  submit_argv(f, 1, argv, NULL, 0, 0, 0);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_OK);
}

/* ---- a script that leaves a daemon behind ---- */

static void runner_does_not_wait_for_a_daemon_holding_stdout(void **state) {
  struct fx *f = *state;
  uint64_t t0 = now_ms(), took;
  pid_t pgid;

  submit_sh(f, 1, "echo $$ > \"$1/pgid\"; (sleep 30 &); exit 0", 0, 0);
  run(f);
  took = now_ms() - t0;
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_OK);
  assert_true(took >= RUNNER_LINGER_MS - 20);
  assert_true(took < RUNNER_LINGER_MS + 1500);
  pgid = read_pgid(f);
  assert_int_equal(kill(-pgid, 0), 0); /* the daemon was left alone */
  kill(-pgid, SIGKILL);
  assert_true(group_gone(pgid));
}

/* ---- closing ---- */

static void runner_close_cancels_a_running_job(void **state) {
  struct fx *f = *state;
  char *argv[] = {"sleep", "30", NULL};
  uint64_t t0 = now_ms();

  f->close_at_start = 1;
  submit_argv(f, 9, argv, NULL, 0, 0, 3);
  run(f);
  assert_int_equal(f->started, 1);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->done_tags[0], 9);
  assert_int_equal(f->res[0], RUNNER_CANCELLED);
  assert_int_equal(f->closed, 1);
  assert_int_equal(f->m.runs_retried, 0);
  assert_true(now_ms() - t0 < RUNNER_KILL_GRACE_MS);
}

static void runner_close_cancels_queued_and_retrying_jobs(void **state) {
  struct fx *f = *state;
  char *sleeper[] = {"sleep", "30", NULL};

  runner_init(&f->r, &f->loop, 1, &f->m, on_started, on_done, f);
  f->close_at_start = 2;
  submit_sh(f, 1, "exit 1", 0, 5);           /* fails, then waits to retry */
  submit_argv(f, 2, sleeper, NULL, 0, 0, 0); /* runs meanwhile */
  submit_sh(f, 3, "exit 0", 0, 0);           /* still queued */
  run(f);
  assert_int_equal(f->started, 2);
  assert_int_equal(f->start_tags[1], 2);
  assert_int_equal(f->done, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(f->res[i], RUNNER_CANCELLED);
  assert_int_equal(f->closed, 1);
  assert_int_equal(f->m.runs_retried, 1);
  assert_int_equal(f->m.runs_running, 0);
  assert_int_equal(f->m.runs_queued, 0);
  /* A second close is a no-op. */
  runner_close(&f->r, on_closed);
  assert_int_equal(f->closed, 1);
}

static void runner_close_without_jobs_calls_back_once(void **state) {
  struct fx *f = *state;

  runner_close(&f->r, on_closed);
  assert_int_equal(f->closed, 1);
  runner_close(&f->r, on_closed);
  assert_int_equal(f->closed, 1);
}

static void runner_submit_refuses_bad_specs(void **state) {
  struct fx *f = *state;
  char *empty[] = {NULL};
  char *blank[] = {"", NULL};
  char *ok[] = {"true", NULL};
  struct runner_spec spec = {.tag = 1, .name = "bad"};

  assert_int_equal(runner_submit(&f->r, &spec), CHOREO_EINVAL);
  spec.argv = empty;
  assert_int_equal(runner_submit(&f->r, &spec), CHOREO_EINVAL);
  spec.argv = blank;
  assert_int_equal(runner_submit(&f->r, &spec), CHOREO_EINVAL);
  spec.argv = ok;
  spec.input_len = 5; /* but no input */
  assert_int_equal(runner_submit(&f->r, &spec), CHOREO_EINVAL);
  run(f);
  assert_int_equal(f->done, 0);
  assert_int_equal(f->started, 0);
}

static void runner_submit_refuses_beyond_a_full_queue(void **state) {
  struct fx *f = *state;
  char *argv[] = {"true", NULL};
  struct runner_spec spec = {.tag = 1, .name = "q", .argv = argv};

  runner_init(&f->r, &f->loop, 1, &f->m, on_started, on_done, f);
  for (int i = 0; i < RUNNER_QUEUE_MAX; i++)
    assert_int_equal(runner_submit(&f->r, &spec), 0);
  assert_int_equal(runner_submit(&f->r, &spec), CHOREO_ETOOBIG);
  assert_int_equal(f->m.runs_queued, RUNNER_QUEUE_MAX);
  runner_close(&f->r, on_closed);
  assert_int_equal(runner_submit(&f->r, &spec), CHOREO_ECLOSED);
  run(f);
  assert_int_equal(f->started, 0);
  assert_int_equal(f->done, RUNNER_QUEUE_MAX);
  for (int i = 0; i < MAX_EVENTS; i++)
    assert_int_equal(f->res[i], RUNNER_CANCELLED);
  assert_int_equal(f->closed, 1);
  assert_int_equal(f->m.runs_queued, 0);
}

static void runner_names_every_result(void **state) {
  (void)state;
  assert_string_equal(runner_result_name(RUNNER_OK), "ok");
  assert_string_equal(runner_result_name(RUNNER_TIMEOUT), "timed out");
  assert_string_equal(runner_result_name(RUNNER_CANCELLED), "cancelled");
  assert_string_equal(runner_result_name(RUNNER_REFUSED),
                      "refused: the script file is not trusted");
}

/* ---- metrics ---- */

static void metrics_render_counts_what_the_runner_did(void **state) {
  struct fx *f = *state;
  char *text;

  submit_sh(f, 1, "exit 0", 0, 0);
  submit_sh(f, 2, "exit 1", 0, 0);
  run(f);
  assert_int_equal(metrics_render(&f->m, &text), 0);
  assert_non_null(strstr(text, "\nchoreo_script_runs_total 2\n"));
  assert_non_null(strstr(text, "\nchoreo_script_failures_total 1\n"));
  assert_non_null(strstr(text, "\nchoreo_scripts_running 0\n"));
  free(text);
}

/* ---- escapees and start failures ---- */

static pid_t read_pid_file(const struct fx *f, const char *name) {
  char *s = slurp_in(f, name);
  long v = strtol(s, NULL, 10);
  free(s);
  assert_true(v > 1);
  return (pid_t)v;
}

static void on_tick(uv_timer_t *t) {
  (void)t;
}

/* Gone and reaped, by the runner: a zombie still answers kill(pid, 0).
 * The loop runs meanwhile, for the runner's SIGCHLD watcher, kept alive by
 * a timer (the watcher alone doesn't keep a loop running). */
static bool reaped_by_runner(struct fx *f, pid_t pid) {
  uv_timer_t tick;
  bool gone = false;

  uv_timer_init(&f->loop, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  for (int i = 0; i < 300 && !gone; i++) {
    uv_run(&f->loop, UV_RUN_ONCE);
    gone = kill(pid, 0) == -1 && errno == ESRCH;
  }
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  return gone;
}

static void runner_kills_a_child_that_left_the_group_with_setsid(void **state) {
  struct fx *f = *state;
  pid_t pid;

  submit_sh(f, 1,
            "setsid sleep 300 </dev/null >/dev/null 2>&1 & "
            "echo $! > \"$1/escapee\"; sleep 30",
            300, 0);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_TIMEOUT);
  pid = read_pid_file(f, "escapee");
  assert_true(reaped_by_runner(f, pid));
  /* Reaped by the script's shell or, once re-parented, by the runner. */
  assert_true(f->m.escapees_killed >= 1);
}

static void
runner_kills_an_orphan_a_double_fork_left_in_a_new_session(void **state) {
  struct fx *f = *state;
  pid_t pid;

  /* The subshell exits at once: the sleep is re-parented to us before
   * the timeout, and only its start time ties it to the run. */
  submit_sh(f, 1,
            "(setsid sleep 300 </dev/null >/dev/null 2>&1 & "
            "echo $! > \"$1/escapee\"); sleep 30",
            300, 0);
  run(f);
  assert_int_equal(f->res[0], RUNNER_TIMEOUT);
  pid = read_pid_file(f, "escapee");
  assert_true(reaped_by_runner(f, pid));
  assert_true(f->m.escapees_killed >= 1);
  assert_true(f->m.orphans_reaped >= 1); /* ours from the start */
}

static void on_restore_limit(uv_timer_t *t) {
  struct rlimit *rl = t->data;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, rl), 0);
  uv_close((uv_handle_t *)t, NULL);
}

static void
runner_retries_a_start_that_failed_for_want_of_descriptors(void **state) {
  struct fx *f = *state;
  struct rlimit saved, low;
  uv_timer_t restore;
  int lowest;

  submit_sh(f, 1, "exit 0", 0, 0); /* no retries: starting is not a try */
  /* Room for not one more descriptor; given back after 700 ms. */
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  lowest = dup(STDIN_FILENO);
  assert_true(lowest > 0);
  close(lowest);
  low = saved;
  low.rlim_cur = (rlim_t)lowest;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  uv_timer_init(&f->loop, &restore);
  restore.data = &saved;
  uv_timer_start(&restore, on_restore_limit, 700, 0);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_OK);
  assert_int_equal(f->started, 1);
  assert_true(f->m.runs_spawn_retried >= 2);
  assert_int_equal(f->m.runs_failed, 0);
}

static void runner_withdraws_a_job_still_waiting_to_start(void **state) {
  struct fx *f = *state;
  struct rlimit saved, low;
  int lowest;

  submit_sh(f, 7, "exit 0", 0, 3);
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &saved), 0);
  lowest = dup(STDIN_FILENO);
  assert_true(lowest > 0);
  close(lowest);
  low = saved;
  low.rlim_cur = (rlim_t)lowest;
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
  for (int i = 0; i < 100 && f->m.runs_spawn_retried == 0; i++)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(setrlimit(RLIMIT_NOFILE, &saved), 0);
  assert_true(f->m.runs_spawn_retried >= 1);
  assert_int_equal(runner_withdraw(&f->r, 8), CHOREO_ENOTFOUND);
  assert_int_equal(runner_withdraw(&f->r, 7), 0);
  assert_int_equal(runner_withdraw(&f->r, 7), CHOREO_ENOTFOUND); /* ending */
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_WITHDRAWN);
  assert_int_equal(f->started, 0);
}

static void runner_does_not_withdraw_a_job_that_started(void **state) {
  struct fx *f = *state;

  submit_sh(f, 3, "sleep 0.3", 0, 0);
  while (f->started == 0)
    uv_run(&f->loop, UV_RUN_ONCE);
  assert_int_equal(runner_withdraw(&f->r, 3), CHOREO_EEXISTS);
  run(f);
  assert_int_equal(f->res[0], RUNNER_OK);
}

/* ---- run_as ---- */

static void submit_user(struct fx *f, uint64_t tag, char *const *argv,
                        const struct config_user *u, unsigned retries) {
  struct runner_spec spec = {
      .tag = tag,
      .name = "job",
      .argv = argv,
      .env = environ,
      .retries = retries,
      .user = u,
  };
  assert_int_equal(runner_submit(&f->r, &spec), 0);
}

static void
runner_runs_a_job_as_its_user_with_home_user_and_logname(void **state) {
  struct fx *f = *state;
  /* As root, a user that is not root (nobody); else ourselves. */
  struct config_user u = {.set = true,
                          .uid = geteuid() == 0 ? 65534 : geteuid(),
                          .gid = geteuid() == 0 ? 65534 : getegid()};
  char *argv[] = {"/bin/sh",
                  "-c",
                  "{ id -u; id -g; echo \"$HOME $USER $LOGNAME\"; "
                  "env | grep -c '^HOME='; } > \"$1/who\"",
                  "sh",
                  f->dir,
                  NULL};
  char *got, want[256];

  snprintf(u.name, sizeof(u.name), "runas-test");
  snprintf(u.home, sizeof(u.home), "/nonexistent/runas-home");
  assert_int_equal(chown(f->dir, (uid_t)u.uid, (gid_t)u.gid), 0);
  submit_user(f, 1, argv, &u, 0);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_OK);
  got = slurp_in(f, "who");
  snprintf(want, sizeof(want),
           "%u\n%u\n/nonexistent/runas-home runas-test runas-test\n1\n",
           (unsigned)u.uid, (unsigned)u.gid);
  assert_string_equal(got, want);
  free(got);
}

static void runner_refuses_a_script_others_can_write_and_retries(void **state) {
  struct fx *f = *state;
  struct config_user u = {.set = true, .uid = geteuid(), .gid = getegid()};
  char path[128], ran[160];
  char *argv[] = {path, NULL};
  FILE *fp;

  path_of(f, "script.sh", path, sizeof(path));
  fp = fopen(path, "w");
  assert_non_null(fp);
  fputs("#!/bin/sh\ntouch \"$0.ran\"\n", fp);
  fclose(fp);
  assert_int_equal(chmod(path, 0757), 0);
  snprintf(u.name, sizeof(u.name), "runas-test");
  snprintf(u.home, sizeof(u.home), "/");
  submit_user(f, 2, argv, &u, 1);
  run(f);
  assert_int_equal(f->done, 1);
  assert_int_equal(f->res[0], RUNNER_REFUSED);
  assert_int_equal(f->status[0], CHOREO_EREFUSED);
  assert_int_equal(f->started, 0);
  assert_int_equal(f->m.runs_failed, 1);
  assert_int_equal(f->m.runs_retried, 1);
  snprintf(ran, sizeof(ran), "%s.ran", path);
  assert_int_equal(access(ran, F_OK), -1);
}

static void runner_runs_a_trusted_script_as_its_user(void **state) {
  struct fx *f = *state;
  struct config_user u = {.set = true, .uid = geteuid(), .gid = getegid()};
  char path[128], ran[160];
  char *argv[] = {path, NULL};
  FILE *fp;

  path_of(f, "script.sh", path, sizeof(path));
  fp = fopen(path, "w");
  assert_non_null(fp);
  fputs("#!/bin/sh\ntouch \"$0.ran\"\n", fp);
  fclose(fp);
  assert_int_equal(chmod(path, 0755), 0);
  snprintf(u.name, sizeof(u.name), "runas-test");
  snprintf(u.home, sizeof(u.home), "/");
  submit_user(f, 3, argv, &u, 0);
  run(f);
  assert_int_equal(f->res[0], RUNNER_OK);
  snprintf(ran, sizeof(ran), "%s.ran", path);
  assert_int_equal(access(ran, F_OK), 0);
}

int main(void) {

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(runner_reports_ok_once_for_exit_zero),
      T(runner_reports_the_exit_code_of_a_failing_script),
      T(runner_reports_the_signal_that_killed_a_script),
      T(runner_never_calls_back_from_inside_submit),
      T(runner_writes_the_input_to_stdin_exactly),
      T(runner_passes_exactly_the_given_environment),
      T(runner_finishes_a_script_that_ignores_a_large_input),
      T(runner_kills_the_whole_process_group_at_timeout),
      T(runner_sends_sigkill_to_a_group_that_ignores_sigterm),
      T(runner_retries_a_failing_script_then_reports_once),
      T(runner_stops_retrying_once_a_try_succeeds),
      T(runner_logs_output_lines_with_the_job_name),
      T(runner_keeps_a_quiet_jobs_stdout_out_of_the_info_log),
      T(runner_drops_output_beyond_the_line_budget_and_says_so),
      T(runner_keeps_memory_bounded_under_100mb_of_output),
      T(runner_runs_at_most_max_running_in_fifo_order),
      T(runner_does_not_hold_a_slot_during_backoff),
      T(runner_reports_a_missing_executable_without_retry),
      T(runner_reports_a_file_without_exec_permission),
      T(runner_finds_a_bare_name_in_path),
      T(runner_does_not_wait_for_a_daemon_holding_stdout),
      T(runner_close_cancels_a_running_job),
      T(runner_close_cancels_queued_and_retrying_jobs),
      T(runner_close_without_jobs_calls_back_once),
      T(runner_submit_refuses_bad_specs),
      T(runner_submit_refuses_beyond_a_full_queue),
      cmocka_unit_test(runner_names_every_result),
      T(metrics_render_counts_what_the_runner_did),
      T(runner_kills_a_child_that_left_the_group_with_setsid),
      T(runner_kills_an_orphan_a_double_fork_left_in_a_new_session),
      T(runner_retries_a_start_that_failed_for_want_of_descriptors),
      T(runner_withdraws_a_job_still_waiting_to_start),
      T(runner_does_not_withdraw_a_job_that_started),
      T(runner_runs_a_job_as_its_user_with_home_user_and_logname),
      T(runner_refuses_a_script_others_can_write_and_retries),
      T(runner_runs_a_trusted_script_as_its_user),
  };
#undef T
  /* As the agent does: a script that closes its stdin early must not kill
   * us with SIGPIPE. */
  signal(SIGPIPE, SIG_IGN);
  /* Orphans of the scripts' process groups come to us, so the tests can
   * reap them and see their groups empty (PID 1 may not reap). */
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  /* RUNNER_TEST_FILTER=GLOB runs only the tests it matches. */
  if (getenv("RUNNER_TEST_FILTER") != NULL)
    cmocka_set_test_filter(getenv("RUNNER_TEST_FILTER"));
  return cmocka_run_group_tests(tests, NULL, NULL);
}
