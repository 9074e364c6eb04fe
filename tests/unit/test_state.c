/*
 * test_state.c — this node's state file in state_dir: a save loads back
 * the same; a missing, corrupt, truncated or oversized file is an error,
 * never a crash; a failed save closes its descriptor and leaves no
 * temporary file; a planted symlink is never followed; a save in two steps
 * fails at its first when there is no room and leaves nothing behind when
 * dropped; reads of state_dir's files are bounded and follow no symlink;
 * and state_dir_check refuses directories others could write to.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "state.h"

struct fixture {
  char dir[64];
  char sub[128]; /* dir/state: where the state is saved */
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof(f->dir), "/tmp/choreo-state-XXXXXX");
  if (mkdtemp(f->dir) == NULL)
    return -1;
  snprintf(f->sub, sizeof(f->sub), "%s/state", f->dir);
  *state = f;
  return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  chmod(path, 0700);
  return remove(path);
}

static int teardown(void **state) {
  struct fixture *f = *state;
  nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void put(const char *path, const char *text) {
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  assert_true(fputs(text, fp) >= 0);
  assert_int_equal(fclose(fp), 0);
}

/* Open descriptors of this process. */
static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  assert_non_null(d);
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

/* Entries of dir other than "." and ".." whose name starts with prefix. */
static int entries(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  assert_non_null(d);
  while ((e = readdir(d)) != NULL)
    n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
         strncmp(e->d_name, prefix, strlen(prefix)) == 0;
  closedir(d);
  return n;
}

static void sample(struct saved_state *s) {
  memset(s, 0, sizeof(*s));
  snprintf(s->state, sizeof(s->state), "maintenance");
  snprintf(s->reason, sizeof(s->reason), "schema 42 \xc3\xa9");
  s->since_ms = 1700000000123;
  s->inc = 7;
  s->data = json_pack("{s:s, s:s}", "version", "1.2.3", "role", "primary");
  assert_non_null(s->data);
}

/* ---- Round trip ---- */

static void state_loads_back_what_was_saved(void **state) {
  struct fixture *f = *state;
  struct saved_state s, back;
  struct stat st;
  char path[256];

  sample(&s);
  assert_int_equal(state_save(f->sub, &s), 0);
  assert_int_equal(state_load(f->sub, &back), 0);
  assert_string_equal(back.state, s.state);
  assert_string_equal(back.reason, s.reason);
  assert_int_equal(back.since_ms, s.since_ms);
  assert_int_equal(back.inc, s.inc);
  assert_true(json_equal(back.data, s.data));
  /* the directory is created 0700, the file 0600, no temporary is left */
  assert_int_equal(stat(f->sub, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0700);
  snprintf(path, sizeof(path), "%s/" STATE_FILE, f->sub);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  assert_int_equal(entries(f->sub, "."), 0);
  json_decref(back.data);
  /* a second save replaces the first */
  s.inc = 8;
  assert_int_equal(state_save(f->sub, &s), 0);
  assert_int_equal(state_load(f->sub, &back), 0);
  assert_int_equal(back.inc, 8);
  json_decref(back.data);
  json_decref(s.data);
}

/* set --for: the expiry is saved only when there is one, and loads back. */
static void state_keeps_the_expiry_of_set_for(void **state) {
  struct fixture *f = *state;
  struct saved_state s, back;

  sample(&s);
  assert_int_equal(state_save(f->sub, &s), 0);
  assert_int_equal(state_load(f->sub, &back), 0);
  assert_int_equal(back.until_ms, 0);
  assert_string_equal(back.then, "");
  json_decref(back.data);
  s.until_ms = 1796000000000;
  snprintf(s.then, sizeof(s.then), "ready");
  snprintf(s.then_reason, sizeof(s.then_reason), "back");
  assert_int_equal(state_save(f->sub, &s), 0);
  assert_int_equal(state_load(f->sub, &back), 0);
  assert_int_equal(back.until_ms, 1796000000000);
  assert_string_equal(back.then, "ready");
  assert_string_equal(back.then_reason, "back");
  json_decref(back.data);
  json_decref(s.data);
}

static void state_load_without_file_or_dir_is_not_found(void **state) {
  struct fixture *f = *state;
  struct saved_state s;
  assert_int_equal(state_load(f->sub, &s), CHOREO_ENOTFOUND);
  assert_int_equal(mkdir(f->sub, 0700), 0);
  assert_int_equal(state_load(f->sub, &s), CHOREO_ENOTFOUND);
  assert_null(s.data);
}

/* ---- Corrupt files: an error, never a crash ---- */

static void state_load_refuses_corrupt_files(void **state) {
  struct fixture *f = *state;
  static const char *const files[] = {
      "",
      "{",
      "garbage\x01\xff",
      "[]",
      "null",
      "{\"state\": \"ready\"}",                            /* no inc */
      "{\"state\": \"ready\", \"inc\": \"1\"}",            /* mistyped */
      "{\"state\": \"Not Valid\", \"inc\": 1}",            /* bad state */
      "{\"state\": \"ready\", \"inc\": -1}",               /* negative */
      "{\"state\": \"ready\", \"inc\": 9007199254740993}", /* too big */
      "{\"state\": \"ready\", \"inc\": 1, \"since\": -5}", /* negative */
      "{\"state\": \"ready\", \"inc\": 1, \"data\": [1]}", /* not object */
      "{\"state\": \"ready\", \"inc\": 1, \"data\": {\"A\": \"x\"}}",
      "{\"state\": \"ready\", \"inc\": 1, \"data\": {\"a\": 1}}",
      "{\"state\": \"ready\", \"inc\": 1, \"reason\": 5}",
      "{\"state\": \"ready\", \"inc\": 1, \"inc\": 2}", /* duplicate key */
      "{\"state\": \"ready\", \"inc\": 1, \"data\": {\"a\": \"x\"", /* cut */
      /* set --for: until without then, a then that can't be set, a
       * until that is not after 1970 */
      "{\"state\": \"drain\", \"inc\": 1, \"until\": 5}",
      "{\"state\": \"drain\", \"inc\": 1, \"until\": 5, \"then\": \"lost\"}",
      "{\"state\": \"drain\", \"inc\": 1, \"until\": 0, \"then\": \"ready\"}",
      "{\"state\": \"drain\", \"inc\": 1, \"until\": 5, \"then\": \"ready\", "
      "\"then_reason\": 7}",
  };
  char path[256];

  assert_int_equal(mkdir(f->sub, 0700), 0);
  snprintf(path, sizeof(path), "%s/" STATE_FILE, f->sub);
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    struct saved_state s;
    put(path, files[i]);
    if (state_load(f->sub, &s) != CHOREO_EDECODE)
      fail_msg("file %zu (%s) was not refused", i, files[i]);
    assert_null(s.data);
  }
}

static void state_load_refuses_a_truncated_save(void **state) {
  struct fixture *f = *state;
  struct saved_state s, back;
  char path[256], whole[1024];
  size_t n;
  FILE *fp;

  sample(&s);
  assert_int_equal(state_save(f->sub, &s), 0);
  json_decref(s.data);
  snprintf(path, sizeof(path), "%s/" STATE_FILE, f->sub);
  fp = fopen(path, "r");
  assert_non_null(fp);
  n = fread(whole, 1, sizeof(whole), fp);
  fclose(fp);
  assert_true(n > 10 && n < sizeof(whole));
  /* every proper prefix but the one that drops only the final newline */
  for (size_t len = 0; len + 1 < n; len++) {
    fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(whole, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    if (state_load(f->sub, &back) != CHOREO_EDECODE)
      fail_msg("a file cut to %zu bytes was not refused", len);
  }
}

static void state_load_refuses_an_oversized_file(void **state) {
  struct fixture *f = *state;
  struct saved_state s;
  char path[256];
  FILE *fp;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  snprintf(path, sizeof(path), "%s/" STATE_FILE, f->sub);
  fp = fopen(path, "w");
  assert_non_null(fp);
  /* valid but for its size: padded with whitespace beyond 64 KiB */
  fputs("{\"state\": \"ready\", \"inc\": 1}", fp);
  for (int i = 0; i < 70000; i++)
    fputc(' ', fp);
  assert_int_equal(fclose(fp), 0);
  assert_int_equal(state_load(f->sub, &s), CHOREO_EDECODE);
}

static void state_load_refuses_a_directory_as_file(void **state) {
  struct fixture *f = *state;
  struct saved_state s;
  char path[256];
  assert_int_equal(mkdir(f->sub, 0700), 0);
  snprintf(path, sizeof(path), "%s/" STATE_FILE, f->sub);
  assert_int_equal(mkdir(path, 0700), 0);
  assert_int_equal(state_load(f->sub, &s), CHOREO_EDECODE);
}

/* ---- Failed saves ---- */

static void state_save_into_a_file_fails_cleanly(void **state) {
  struct fixture *f = *state;
  struct saved_state s;
  int before = open_fds();

  put(f->sub, "not a directory\n");
  sample(&s);
  assert_int_equal(state_save(f->sub, &s), -ENOTDIR);
  assert_int_equal(open_fds(), before);
  json_decref(s.data);
}

static void state_save_over_a_directory_closes_and_cleans_up(void **state) {
  struct fixture *f = *state;
  struct saved_state s;
  char path[256];
  int before;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  snprintf(path, sizeof(path), "%s/" STATE_FILE, f->sub);
  assert_int_equal(mkdir(path, 0700), 0);
  sample(&s);
  before = open_fds();
  /* rename() over a directory fails after the file was written */
  assert_int_equal(state_save(f->sub, &s), -EISDIR);
  assert_int_equal(open_fds(), before);
  assert_int_equal(entries(f->sub, "."), 0);
  json_decref(s.data);
}

static void state_save_that_cannot_write_closes_and_cleans_up(void **state) {
  struct fixture *f = *state;
  struct saved_state s;
  struct rlimit old, small = {.rlim_cur = 16, .rlim_max = RLIM_INFINITY};
  void (*prev)(int);
  int before, rv;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  sample(&s);
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  small.rlim_max = old.rlim_max;
  prev = signal(SIGXFSZ, SIG_IGN);
  before = open_fds();
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  rv = state_save(f->sub, &s);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev);
  assert_int_equal(rv, -EFBIG);
  assert_int_equal(open_fds(), before);
  assert_int_equal(entries(f->sub, "."), 0);
  json_decref(s.data);
}

static void state_save_never_follows_a_planted_symlink(void **state) {
  struct fixture *f = *state;
  struct saved_state s, back;
  char link[256], victim[256];
  struct stat st;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  snprintf(victim, sizeof(victim), "%s/victim", f->dir);
  snprintf(link, sizeof(link), "%s/." STATE_FILE ".tmp", f->sub);
  assert_int_equal(symlink(victim, link), 0);
  sample(&s);
  assert_int_equal(state_save(f->sub, &s), 0);
  assert_int_equal(stat(victim, &st), -1);
  assert_int_equal(errno, ENOENT);
  assert_int_equal(lstat(link, &st), 0);
  assert_true(S_ISLNK(st.st_mode));
  assert_int_equal(state_load(f->sub, &back), 0);
  assert_string_equal(back.state, "maintenance");
  json_decref(back.data);
  json_decref(s.data);
}

/* ---- Two-step saves and bounded reads (state_prepare, state_read) ---- */

static void state_prepare_fails_where_the_write_would(void **state) {
  struct fixture *f = *state;
  struct rlimit old, small = {.rlim_cur = 16, .rlim_max = RLIM_INFINITY};
  struct state_pending w;
  void (*prev)(int);
  int before, rv;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
  small.rlim_max = old.rlim_max;
  prev = signal(SIGXFSZ, SIG_IGN);
  before = open_fds();
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
  rv = state_prepare(f->sub, "applied.json",
                     "text longer than sixteen bytes, as a full disk", &w);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
  signal(SIGXFSZ, prev);
  assert_int_equal(rv, -EFBIG);
  assert_int_equal(w.fd, -1);
  assert_int_equal(open_fds(), before);
  assert_int_equal(entries(f->sub, ""), 0);
}

static void state_prepare_in_a_read_only_dir_leaves_nothing(void **state) {
  struct fixture *f = *state;
  struct state_pending w;

  if (geteuid() == 0)
    skip(); /* root writes through a mode of 0500 */
  assert_int_equal(mkdir(f->sub, 0500), 0);
  assert_int_equal(state_prepare(f->sub, "members.json", "{}", &w), -EACCES);
  assert_int_equal(w.fd, -1);
  assert_int_equal(entries(f->sub, ""), 0);
}

/* state_room: what `choreo set` checks before it publishes. */
static void state_room_in_a_writable_dir(void **state) {
  struct fixture *f = *state;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  assert_int_equal(state_room(f->sub, 64 * 1024), 0);
  assert_int_equal(entries(f->sub, ""), 0); /* nothing written */
  assert_int_equal(state_room(f->sub, SIZE_MAX / 2), -ENOSPC);
}

static void state_room_of_a_missing_dir(void **state) {
  struct fixture *f = *state;
  assert_int_equal(state_room(f->sub, 1), -ENOENT);
}

static void state_room_in_a_dir_this_user_cant_write(void **state) {
  struct fixture *f = *state;

  if (geteuid() == 0)
    skip(); /* root writes through a mode of 0500 */
  assert_int_equal(mkdir(f->sub, 0500), 0);
  assert_int_equal(state_room(f->sub, 1), -EACCES);
}

/* A full and a read-only file system, with a small tmpfs (root only). */
static void state_room_on_a_full_and_a_read_only_tmpfs(void **state) {
  struct fixture *f = *state;
  char filler[PATH_MAX + 16];
  int fd;

  if (geteuid() != 0)
    skip();
  assert_int_equal(mkdir(f->sub, 0700), 0);
  if (mount("tmpfs", f->sub, "tmpfs", 0, "size=256k") != 0)
    skip(); /* no mount here (a container without CAP_SYS_ADMIN) */
  assert_int_equal(state_room(f->sub, 64 * 1024), 0);
  snprintf(filler, sizeof(filler), "%s/filler", f->sub);
  fd = open(filler, O_WRONLY | O_CREAT, 0600);
  assert_true(fd >= 0);
  {
    char block[4096] = {0};
    while (write(fd, block, sizeof(block)) > 0)
      ;
  }
  close(fd);
  assert_int_equal(state_room(f->sub, 1), -ENOSPC);
  unlink(filler);
  assert_int_equal(state_room(f->sub, 64 * 1024), 0);
  assert_int_equal(mount(NULL, f->sub, NULL, MS_REMOUNT | MS_RDONLY, NULL), 0);
  assert_int_equal(state_room(f->sub, 1), -EROFS);
  assert_int_equal(umount(f->sub), 0);
}

static void state_abort_drops_a_prepared_save(void **state) {
  struct fixture *f = *state;
  struct state_pending w;
  char *text = NULL;
  size_t len;
  int before = open_fds();

  assert_int_equal(state_write(f->sub, "applied.json", "old"), 0);
  assert_int_equal(state_prepare(f->sub, "applied.json", "new", &w), 0);
  assert_int_equal(entries(f->sub, ".applied.json.tmp."), 1);
  state_abort(&w);
  state_abort(&w); /* idempotent */
  assert_int_equal(entries(f->sub, "."), 0);
  assert_int_equal(open_fds(), before);
  assert_int_equal(state_read(f->sub, "applied.json", 64, &text, &len), 0);
  assert_string_equal(text, "old\n");
  free(text);
}

/* state_replace: in place, cut to the new length, no link followed. */
static void state_replace_overwrites_in_place(void **state) {
  struct fixture *f = *state;
  char path[PATH_MAX + 32], link[PATH_MAX + 32], *buf = NULL;
  size_t len = 0;

  assert_int_equal(state_replace(f->sub, "applied.json", "a longer text"), 0);
  assert_int_equal(state_replace(f->sub, "applied.json", "short"), 0);
  assert_int_equal(state_read(f->sub, "applied.json", 1024, &buf, &len), 0);
  assert_int_equal(len, strlen("short\n"));
  assert_memory_equal(buf, "short\n", len);
  free(buf);
  assert_int_equal(entries(f->sub, ""), 1); /* no temporary left */
  snprintf(path, sizeof(path), "%s/victim", f->dir);
  snprintf(link, sizeof(link), "%s/members.json", f->sub);
  assert_int_equal(symlink(path, link), 0);
  assert_int_equal(state_replace(f->sub, "members.json", "x"), -ELOOP);
  assert_int_equal(access(path, F_OK), -1); /* nothing made through it */
}

static void state_commit_replaces_the_file(void **state) {
  struct fixture *f = *state;
  struct state_pending w;
  char *text = NULL;
  size_t len;

  assert_int_equal(state_write(f->sub, "members.json", "old"), 0);
  assert_int_equal(state_prepare(f->sub, "members.json", "new", &w), 0);
  assert_int_equal(state_commit(&w), 0);
  assert_int_equal(entries(f->sub, "."), 0);
  assert_int_equal(state_read(f->sub, "members.json", 64, &text, &len), 0);
  assert_string_equal(text, "new\n");
  assert_int_equal(len, 4);
  free(text);
  assert_int_equal(state_commit(&w), -EBADF); /* once only */
}

static void state_read_is_bounded(void **state) {
  struct fixture *f = *state;
  char path[256], *text = (char *)"x";
  size_t len = 1;

  assert_int_equal(state_read(f->sub, "applied.json", 8, &text, &len),
                   CHOREO_ENOTFOUND);
  assert_null(text);
  assert_int_equal(mkdir(f->sub, 0700), 0);
  snprintf(path, sizeof(path), "%s/applied.json", f->sub);
  put(path, "12345678");
  assert_int_equal(state_read(f->sub, "applied.json", 8, &text, &len), 0);
  assert_int_equal(len, 8);
  free(text);
  put(path, "123456789");
  assert_int_equal(state_read(f->sub, "applied.json", 8, &text, &len),
                   CHOREO_ETOOBIG);
  assert_null(text);
}

static void state_read_refuses_symlinks_and_directories(void **state) {
  struct fixture *f = *state;
  char path[256], victim[256], *text = NULL;
  size_t len;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  snprintf(victim, sizeof(victim), "%s/victim", f->dir);
  put(victim, "{}");
  snprintf(path, sizeof(path), "%s/members.json", f->sub);
  assert_int_equal(symlink(victim, path), 0);
  assert_int_equal(state_read(f->sub, "members.json", 64, &text, &len), -ELOOP);
  assert_null(text);
  snprintf(path, sizeof(path), "%s/applied.json", f->sub);
  assert_int_equal(mkdir(path, 0700), 0);
  assert_int_equal(state_read(f->sub, "applied.json", 64, &text, &len),
                   CHOREO_EDECODE);
  assert_null(text);
}

static void state_report_says_once_a_gap(void **state) {
  struct state_report r = {0};

  assert_true(state_report_due(&r, 1000));
  assert_false(state_report_due(&r, 1001));
  assert_false(state_report_due(&r, 1000 + STATE_REPORT_GAP_MS - 1));
  assert_int_equal(r.suppressed, 2);
  r.suppressed = 0;
  assert_true(state_report_due(&r, 1000 + STATE_REPORT_GAP_MS));
}

/* ---- state_dir_check ---- */

static void state_dir_check_refuses_what_others_could_write(void **state) {
  struct fixture *f = *state;
  static const struct {
    mode_t mode;
    int rv;
    const char *why; /* in the message, or NULL for none */
  } cases[] = {
      {0700, 0, NULL},
      {0750, 0, NULL},
      {0755, 0, NULL},
      {0770, CHOREO_EINVAL, "group or others may write to it (mode 0770)"},
      {0702, CHOREO_EINVAL, "group or others may write to it (mode 0702)"},
      {01777, CHOREO_EINVAL, "group or others may write to it (mode 1777)"},
  };
  char why[512];

  assert_int_equal(state_dir_check(f->sub, why, sizeof(why)), 0);
  assert_string_equal(why, "");
  assert_int_equal(mkdir(f->sub, 0700), 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(chmod(f->sub, cases[i].mode), 0);
    assert_int_equal(state_dir_check(f->sub, why, sizeof(why)), cases[i].rv);
    if (cases[i].why == NULL) {
      assert_string_equal(why, "");
      continue;
    }
    assert_non_null(strstr(why, cases[i].why));
    assert_non_null(strstr(why, f->sub));
  }
}

static void state_dir_check_refuses_a_file(void **state) {
  struct fixture *f = *state;
  char why[512];
  put(f->sub, "x");
  assert_int_equal(state_dir_check(f->sub, why, sizeof(why)), -ENOTDIR);
  assert_non_null(strstr(why, "not a directory"));
}

static void state_dir_check_refuses_another_users_dir(void **state) {
  struct fixture *f = *state;
  char why[512];
  uid_t other = geteuid() == 65534 ? 65533 : 65534;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  if (chown(f->sub, other, (gid_t)-1) != 0)
    skip(); /* only root can give a directory away */
  assert_int_equal(state_dir_check(f->sub, why, sizeof(why)), CHOREO_EINVAL);
  assert_non_null(strstr(why, "neither root nor the agent's user"));
  /* root's own is fine */
  assert_int_equal(chown(f->sub, 0, (gid_t)-1), 0);
  assert_int_equal(state_dir_check(f->sub, why, sizeof(why)), 0);
}

/* ---- Formats (state_migrate) ---- */

/* What choreo 0.1.0 wrote: no "format". */
static const char state_0_1_0[] = "{\n  \"data\": {\"role\": \"primary\"},\n"
                                  "  \"inc\": 1700000005,\n"
                                  "  \"reason\": \"schema 42\",\n"
                                  "  \"since\": 1700000000123,\n"
                                  "  \"state\": \"maintenance\"\n}\n";

/* dir/name's text; the caller frees it. */
static char *slurp(const char *dir, const char *name) {
  char *buf = NULL;
  size_t len = 0;
  assert_int_equal(state_read(dir, name, 1 << 20, &buf, &len), 0);
  return buf;
}

static void put_in(const char *dir, const char *name, const char *text) {
  char path[256];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  put(path, text);
}

static void state_migrate_upgrades_a_0_1_0_state_json_keeping_it(void **state) {
  struct fixture *f = *state;
  struct saved_state back;
  char why[512], *text;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  put_in(f->sub, STATE_FILE, state_0_1_0);
  /* left by a newer version before a rollback to 0.1.0: stale */
  put_in(f->sub, "applied.json", "{\"format\":1,\"behaviours\":{}}");
  put_in(f->sub, "members.json", "{\"format\":1,\"members\":[]}");
  assert_int_equal(state_migrate(f->sub, why, sizeof(why)), 0);
  text = slurp(f->sub, "applied.json");
  assert_non_null(strstr(text, "\"unknown\": true"));
  free(text);
  assert_int_equal(entries(f->sub, "members.json"), 1);
  text = slurp(f->sub, STATE_FILE);
  assert_non_null(strstr(text, "\"format\": 1"));
  free(text);
  /* the old text is kept as it was, for a rollback */
  text = slurp(f->sub, STATE_FILE ".v0");
  assert_string_equal(text, state_0_1_0);
  free(text);
  assert_int_equal(entries(f->sub, "."), 0);
  assert_int_equal(state_load(f->sub, &back), 0);
  assert_string_equal(back.state, "maintenance");
  assert_string_equal(back.reason, "schema 42");
  assert_int_equal(back.inc, 1700000005);
  assert_string_equal(json_string_value(json_object_get(back.data, "role")),
                      "primary");
  json_decref(back.data);
  /* a second start finds format 1: nothing more to do */
  put_in(f->sub, STATE_FILE ".v0", "kept");
  assert_int_equal(state_migrate(f->sub, why, sizeof(why)), 0);
  text = slurp(f->sub, STATE_FILE ".v0");
  assert_string_equal(text, "kept");
  free(text);
}

static void state_save_writes_the_format(void **state) {
  struct fixture *f = *state;
  struct saved_state s;
  char why[512], *text;

  sample(&s);
  assert_int_equal(state_save(f->sub, &s), 0);
  json_decref(s.data);
  text = slurp(f->sub, STATE_FILE);
  assert_non_null(strstr(text, "\"format\": 1"));
  free(text);
  assert_int_equal(state_migrate(f->sub, why, sizeof(why)), 0);
  assert_int_equal(entries(f->sub, STATE_FILE ".v0"), 0);
}

/* A file no version of this agent can read is refused, named, and left
 * as it was: nothing is written. */
static void state_migrate_refuses_what_it_cannot_read(void **state) {
  static const struct {
    const char *file, *text, *why;
  } cases[] = {
      {STATE_FILE, "{\"format\":2,\"state\":\"ready\",\"inc\":1}",
       "state.json: format 2, newer than this agent's (1)"},
      {STATE_FILE, "{\"format\":\"1\",\"state\":\"ready\",\"inc\":1}",
       "state.json: \"format\" is not a whole number"},
      {STATE_FILE, "{\"format\":null,\"state\":\"ready\",\"inc\":1}",
       "not a whole number"},
      {"applied.json", "{\"format\":3,\"behaviours\":{}}",
       "applied.json: format 3, newer"},
      {"applied.json", "{\"version\":[1],\"behaviours\":{}}",
       "applied.json: \"version\" is not a whole number"},
      {"members.json", "{\"format\":2,\"members\":[]}",
       "members.json: format 2, newer"},
  };
  struct fixture *f = *state;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char why[512], path[256], *text;
    put_in(f->sub, cases[i].file, cases[i].text);
    assert_int_equal(state_migrate(f->sub, why, sizeof(why)), CHOREO_EINVAL);
    if (strstr(why, cases[i].why) == NULL || strstr(why, f->sub) == NULL)
      fail_msg("case %zu: why \"%s\"", i, why);
    text = slurp(f->sub, cases[i].file);
    assert_string_equal(text, cases[i].text);
    free(text);
    assert_int_equal(entries(f->sub, ""), 1);
    snprintf(path, sizeof(path), "%s/%s", f->sub, cases[i].file);
    assert_int_equal(unlink(path), 0);
  }
}

/* No dir, no files, corrupt files (their loaders say so), files of
 * development builds ("version": 1): nothing to refuse or migrate. */
static void state_migrate_leaves_the_rest_to_the_loaders(void **state) {
  struct fixture *f = *state;
  char why[512];

  assert_int_equal(state_migrate(f->sub, why, sizeof(why)), 0);
  assert_int_equal(mkdir(f->sub, 0700), 0);
  assert_int_equal(state_migrate(f->sub, why, sizeof(why)), 0);
  put_in(f->sub, STATE_FILE, "{\"state\":");
  put_in(f->sub, "applied.json", "{\"version\":1,\"behaviours\":{}}");
  put_in(f->sub, "members.json", "[]");
  assert_int_equal(state_migrate(f->sub, why, sizeof(why)), 0);
  assert_int_equal(entries(f->sub, ""), 3);
}

static void state_migrate_in_a_read_only_dir_is_not_fatal(void **state) {
  struct fixture *f = *state;
  struct saved_state back;
  char why[512], *text;

  if (geteuid() == 0)
    skip(); /* root writes through a mode of 0500 */
  assert_int_equal(mkdir(f->sub, 0700), 0);
  put_in(f->sub, STATE_FILE, state_0_1_0);
  assert_int_equal(chmod(f->sub, 0500), 0);
  assert_int_equal(state_migrate(f->sub, why, sizeof(why)), 0);
  text = slurp(f->sub, STATE_FILE);
  assert_string_equal(text, state_0_1_0);
  free(text);
  assert_int_equal(state_load(f->sub, &back), 0);
  json_decref(back.data);
}

static void state_load_refuses_a_format_it_does_not_read(void **state) {
  struct fixture *f = *state;
  struct saved_state back;

  assert_int_equal(mkdir(f->sub, 0700), 0);
  put_in(f->sub, STATE_FILE, "{\"format\":2,\"state\":\"ready\",\"inc\":1}");
  assert_int_equal(state_load(f->sub, &back), CHOREO_EDECODE);
  put_in(f->sub, STATE_FILE, "{\"format\":1,\"state\":\"ready\",\"inc\":1}");
  assert_int_equal(state_load(f->sub, &back), 0);
  json_decref(back.data);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(state_loads_back_what_was_saved),
      T(state_keeps_the_expiry_of_set_for),
      T(state_load_without_file_or_dir_is_not_found),
      T(state_load_refuses_corrupt_files),
      T(state_load_refuses_a_truncated_save),
      T(state_load_refuses_an_oversized_file),
      T(state_load_refuses_a_directory_as_file),
      T(state_save_into_a_file_fails_cleanly),
      T(state_save_over_a_directory_closes_and_cleans_up),
      T(state_save_that_cannot_write_closes_and_cleans_up),
      T(state_save_never_follows_a_planted_symlink),
      T(state_prepare_fails_where_the_write_would),
      T(state_prepare_in_a_read_only_dir_leaves_nothing),
      T(state_abort_drops_a_prepared_save),
      T(state_commit_replaces_the_file),
      T(state_replace_overwrites_in_place),
      T(state_room_in_a_writable_dir),
      T(state_room_of_a_missing_dir),
      T(state_room_in_a_dir_this_user_cant_write),
      T(state_room_on_a_full_and_a_read_only_tmpfs),
      T(state_read_is_bounded),
      T(state_read_refuses_symlinks_and_directories),
      T(state_report_says_once_a_gap),
      T(state_dir_check_refuses_what_others_could_write),
      T(state_dir_check_refuses_a_file),
      T(state_dir_check_refuses_another_users_dir),
      T(state_migrate_upgrades_a_0_1_0_state_json_keeping_it),
      T(state_save_writes_the_format),
      T(state_migrate_refuses_what_it_cannot_read),
      T(state_migrate_leaves_the_rest_to_the_loaders),
      T(state_migrate_in_a_read_only_dir_is_not_fatal),
      T(state_load_refuses_a_format_it_does_not_read),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
