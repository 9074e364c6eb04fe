/*
 * state.c — persistence of this node's declared state and incarnation in
 * state_dir, and the formats of its files (state_migrate(): an older file
 * is migrated in place, a newer one refused); see state.h for the
 * guarantees.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "state.h"
#include "statefiles.h"
#include "util.h"

#define STATE_FILE_MAX (64 * 1024)

static int path_join(char *out, size_t len, const char *dir, const char *name) {
  int n = snprintf(out, len, "%s/%s", dir, name);
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The optional expiry of a `set --for`: all three fields or none. */
static int decode_expiry(json_t *root, struct saved_state *s,
                         const char **why) {
  const char *then = NULL, *then_reason = "";
  json_int_t until = 0;

  s->until_ms = 0;
  s->then[0] = s->then_reason[0] = '\0';
  if (json_object_get(root, "until") == NULL)
    return 0;
  if (json_unpack(root, "{s:I, s:s, s?s}", "until", &until, "then", &then,
                  "then_reason", &then_reason) != 0 ||
      until <= 0 || !choreo_valid_settable_state(then) ||
      !choreo_valid_text(then_reason, CHOREO_REASON_MAX)) {
    *why = "until, then or then_reason is missing or invalid";
    return CHOREO_EDECODE;
  }
  s->until_ms = until;
  snprintf(s->then, sizeof(s->then), "%s", then);
  snprintf(s->then_reason, sizeof(s->then_reason), "%s", then_reason);
  return 0;
}

static int decode(json_t *root, struct saved_state *s, const char **why) {
  const char *state = NULL, *reason = "";
  int rv;
  json_t *data = NULL;
  json_int_t since = 0, inc = 0;
  const char *key;
  json_t *v;

  json_int_t format = 0;

  /* Formats 0 (0.1.0's, without the key) and 1 have the same fields;
   * state_migrate() refused any other before this runs. */
  if (json_unpack(root, "{s:s, s?s, s?I, s?o, s:I, s?I}", "state", &state,
                  "reason", &reason, "since", &since, "data", &data, "inc",
                  &inc, "format", &format) != 0) {
    *why = "missing or mistyped fields";
    return CHOREO_EDECODE;
  }
  if (format < 0 || format > STATEFILES_VERSION) {
    *why = "a \"format\" this agent does not read";
    return CHOREO_EDECODE;
  }
  if (!choreo_valid_state(state) ||
      !choreo_valid_text(reason, CHOREO_REASON_MAX) || since < 0 || inc < 0 ||
      (uint64_t)inc > RECORD_COUNTER_MAX) {
    *why = "a field is out of range";
    return CHOREO_EDECODE;
  }
  if (data != NULL) {
    if (!json_is_object(data) ||
        json_object_size(data) > CHOREO_DATA_KEYS_MAX) {
      *why = "data is not an object of at most 32 keys";
      return CHOREO_EDECODE;
    }
    json_object_foreach(data, key, v) {
      if (!choreo_valid_data_key(key) || !json_is_string(v) ||
          !choreo_valid_text(json_string_value(v), CHOREO_DATA_VALUE_MAX)) {
        *why = "data holds an invalid key or value";
        return CHOREO_EDECODE;
      }
    }
  }
  snprintf(s->state, sizeof(s->state), "%s", state);
  snprintf(s->reason, sizeof(s->reason), "%s", reason);
  s->since_ms = since;
  s->inc = (uint64_t)inc;
  if ((rv = decode_expiry(root, s, why)) != 0)
    return rv;
  s->data = data != NULL ? json_deep_copy(data) : json_object();
  return s->data != NULL ? 0 : CHOREO_ENOMEM;
}

int state_load(const char *dir, struct saved_state *s) {
  char path[4200];
  struct stat st = {0};
  json_error_t jerr;
  const char *why = NULL;
  json_t *root;
  int rv;

  memset(s, 0, sizeof(*s));
  if (path_join(path, sizeof(path), dir, STATE_FILE) != 0)
    return CHOREO_EINVAL;
  if (stat(path, &st) != 0 && errno == ENOENT)
    return CHOREO_ENOTFOUND;
  if (st.st_size > STATE_FILE_MAX) {
    log_warn("%s: larger than %d bytes; starting from the configuration", path,
             STATE_FILE_MAX);
    return CHOREO_EDECODE;
  }
  root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  if (root == NULL) {
    log_warn("%s: unreadable (%s); starting from the configuration", path,
             jerr.text);
    return CHOREO_EDECODE;
  }
  rv = decode(root, s, &why);
  json_decref(root);
  if (rv == CHOREO_EDECODE)
    log_warn("%s: %s; starting from the configuration", path, why);
  return rv;
}

static int mkdir_p(const char *dir, mode_t mode) {
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
    return -ENAMETOOLONG;
  for (char *p = tmp + 1; *p != '\0'; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
      return -errno;
    *p = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST)
    return -errno;
  return 0;
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int rv = 0;
  if (fd < 0)
    return -errno;
  if (fsync(fd) != 0)
    rv = -errno;
  close(fd);
  return rv;
}

/* The state as the text of the file; the caller frees it. */
static char *encode(const struct saved_state *s) {
  json_t *root = json_pack("{s:i, s:s, s:s, s:I, s:O, s:I}", "format",
                           STATEFILES_VERSION, "state", s->state, "reason",
                           s->reason, "since", (json_int_t)s->since_ms, "data",
                           s->data, "inc", (json_int_t)s->inc);
  if (root != NULL && s->until_ms > 0) {
    json_object_set_new(root, "until", json_integer((json_int_t)s->until_ms));
    json_object_set_new(root, "then", json_string(s->then));
    json_object_set_new(root, "then_reason", json_string(s->then_reason));
  }
  char *text =
      root != NULL ? json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
  json_decref(root);
  return text;
}

/* Write text and its newline to fd; fd stays open. */
static int write_text(int fd, const char *text) {
  int rv = write_all(fd, text, strlen(text));
  return rv == 0 ? write_all(fd, "\n", 1) : rv;
}

void state_pending_init(struct state_pending *w) {
  memset(w, 0, sizeof(*w));
  w->fd = -1;
}

int state_prepare(const char *dir, const char *name, const char *text,
                  struct state_pending *w) {
  int rv;

  state_pending_init(w);
  if ((rv = mkdir_p(dir, 0700)) != 0)
    return rv;
  if (path_join(w->path, sizeof(w->path), dir, name) != 0 ||
      snprintf(w->tmp, sizeof(w->tmp), "%s/.%s.tmp.XXXXXX", dir, name) >=
          (int)sizeof(w->tmp) ||
      snprintf(w->dir, sizeof(w->dir), "%s", dir) >= (int)sizeof(w->dir))
    return -ENAMETOOLONG;
  /* A fresh name created with O_EXCL (mode 0600): nothing planted in
   * state_dir, a symlink least of all, is ever opened or followed. */
  w->fd = mkostemp(w->tmp, O_CLOEXEC);
  if (w->fd < 0) {
    rv = -errno;
    w->tmp[0] = '\0';
    return rv;
  }
  /* Room is taken here, at write: a full or read-only state_dir fails now,
   * before the caller acts on what it saves. */
  if ((rv = write_text(w->fd, text)) != 0)
    state_abort(w);
  return rv;
}

static int commit(struct state_pending *w, bool durable) {
  int rv = 0;

  if (w->fd < 0)
    return -EBADF;
  if (durable && fsync(w->fd) != 0)
    rv = -errno;
  if (close(w->fd) != 0 && rv == 0)
    rv = -errno;
  w->fd = -1;
  if (rv == 0 && rename(w->tmp, w->path) != 0)
    rv = -errno;
  if (rv != 0) {
    unlink(w->tmp);
    w->tmp[0] = '\0';
    return rv;
  }
  w->tmp[0] = '\0';
  return durable ? fsync_dir(w->dir) : 0;
}

int state_commit(struct state_pending *w) {
  return commit(w, true);
}

void state_abort(struct state_pending *w) {
  if (w->fd >= 0)
    close(w->fd);
  w->fd = -1;
  if (w->tmp[0] != '\0')
    unlink(w->tmp);
  w->tmp[0] = '\0';
}

int state_replace(const char *dir, const char *name, const char *text) {
  char path[4200];
  size_t len = strlen(text);
  int fd, rv;

  if ((rv = mkdir_p(dir, 0700)) != 0)
    return rv;
  if (path_join(path, sizeof(path), dir, name) != 0)
    return -ENAMETOOLONG;
  /* In place, and cut to its new length after the write rather than
   * emptied first: ext4 starts the writeback of a file renamed over
   * another or truncated to zero at once, which cost more than the
   * reaction it follows. O_NOFOLLOW: a link planted there is refused. */
  fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  rv = write_text(fd, text);
  if (rv == 0 && ftruncate(fd, (off_t)len + 1) != 0)
    rv = -errno;
  if (close(fd) != 0 && rv == 0)
    rv = -errno;
  return rv;
}

int state_write(const char *dir, const char *name, const char *text) {
  struct state_pending w;
  int rv = state_prepare(dir, name, text, &w);
  return rv != 0 ? rv : state_commit(&w);
}

int state_read(const char *dir, const char *name, size_t max, char **out,
               size_t *len) {
  char path[4200];
  struct stat st;
  char *buf;
  ssize_t n;
  size_t got = 0;
  int fd, rv = 0;

  *out = NULL;
  *len = 0;
  if (path_join(path, sizeof(path), dir, name) != 0)
    return -ENAMETOOLONG;
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0)
    return errno == ENOENT ? CHOREO_ENOTFOUND : -errno;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return CHOREO_EDECODE;
  }
  if ((buf = malloc(max + 1)) == NULL) {
    close(fd);
    return CHOREO_ENOMEM;
  }
  /* Read one byte past max to tell "exactly max" from "larger". */
  while (got <= max && (n = read(fd, buf + got, max + 1 - got)) != 0) {
    if (n < 0) {
      if (errno == EINTR)
        continue;
      rv = -errno;
      break;
    }
    got += (size_t)n;
  }
  close(fd);
  if (rv == 0 && got > max)
    rv = CHOREO_ETOOBIG;
  if (rv != 0) {
    free(buf);
    return rv;
  }
  buf[got] = '\0';
  *out = buf;
  *len = got;
  return 0;
}

bool state_report_due(struct state_report *r, uint64_t now_ms) {
  if (r->said && now_ms - r->at < STATE_REPORT_GAP_MS) {
    r->suppressed++;
    return false;
  }
  r->said = true;
  r->at = now_ms;
  return true;
}

int state_save(const char *dir, const struct saved_state *s) {
  char *text = encode(s);
  int rv;

  if (text == NULL)
    return -ENOMEM;
  rv = state_write(dir, STATE_FILE, text);
  free(text);
  return rv;
}

int state_room(const char *dir, size_t bytes) {
  struct statvfs sv;
  uint64_t room, need;

  if (statvfs(dir, &sv) != 0)
    return -errno;
  if (sv.f_flag & ST_RDONLY)
    return -EROFS;
  if (access(dir, W_OK | X_OK) != 0)
    return -errno;
  room = (uint64_t)(geteuid() == 0 ? sv.f_bfree : sv.f_bavail) * sv.f_frsize;
  need = (uint64_t)bytes + 2 * (uint64_t)sv.f_frsize;
  return room < need ? -ENOSPC : 0;
}

int state_dir_check(const char *dir, char *why, size_t len) {
  return util_dir_trusted(dir, false, "; restrict it with chmod 700", why, len);
}

/* ---- formats ---- */

/* The files of state_dir, each with a "format" (statefiles.h). */
static const char *const state_files[] = {STATE_FILE, APPLIED_FILE,
                                          MEMBERS_FILE};

/* 0.1.0's state.json (format 0) as format 1: the same fields and
 * "format". The caller frees the text; NULL: no memory or not an object
 * (not migrated: state_load() refuses it, as corrupt). */
static char *upgrade_state_text(const char *buf, size_t len) {
  json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, NULL);
  char *text = NULL;

  if (json_is_object(root) &&
      json_object_set_new(root, "format", json_integer(STATEFILES_VERSION)) ==
          0)
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(root);
  return text;
}

/* 0.1.0 keeps no record of what it applied: an applied.json beside its
 * state.json was left by a later version before a rollback, and is
 * stale; none at all is no better, since a first start runs nothing for
 * a condition that is false. What was applied is unknown: said so in
 * applied.json (applied_encode_unknown()), so that each level behaviour
 * is brought to its condition, both ways, once synchronised. Returns 0
 * or a negated errno. */
static int applied_unknown(const char *dir) {
  char *text = applied_encode_unknown();
  int rv = text != NULL ? state_write(dir, APPLIED_FILE, text) : -ENOMEM;

  free(text);
  return rv;
}

/* Migrate dir/state.json from format 0: the old text is kept first, as
 * state.json.v0 (written whole and synced), applied.json says that what
 * was applied is unknown, then the new text replaces the old; a crash in
 * between leaves the old file, and the next start migrates again. A state_dir
 * that can't be written is not fatal: the old format is read as it is,
 * and migrated at a later start. */
static void migrate_state(const char *dir, const char *buf, size_t len) {
  char backup[sizeof(STATE_FILE) + 8];
  char *text = upgrade_state_text(buf, len);
  size_t keep = len;
  int rv;

  if (text == NULL)
    return;
  snprintf(backup, sizeof(backup), "%s.v0", STATE_FILE);
  /* state_write() adds the newline the old text ends with. */
  while (keep > 0 && buf[keep - 1] == '\n')
    keep--;
  char *old = strndup(buf, keep);
  rv = old != NULL ? state_write(dir, backup, old) : -ENOMEM;
  if (rv == 0)
    rv = applied_unknown(dir);
  if (rv == 0)
    rv = state_write(dir, STATE_FILE, text);
  if (rv == 0)
    log_info("state_dir: %s/%s migrated from format 0 (choreo 0.1.0) to "
             "format %d; the old file is kept as %s",
             dir, STATE_FILE, STATEFILES_VERSION, backup);
  else
    log_warn("state_dir: %s/%s: cannot migrate it from format 0 (%s); read "
             "as it is, migrated at a later start",
             dir, STATE_FILE, choreo_strerror(rv));
  free(old);
  free(text);
}

/* One file's format: 0 when fine (migrated if older), or CHOREO_EINVAL
 * with why said when it must not be read. */
static int check_format(const char *dir, const char *name, char *why,
                        size_t len) {
  char what[160];
  char *buf = NULL;
  size_t n = 0;
  int64_t format = 0;
  int rv = state_read(dir, name, APPLIED_FILE_MAX, &buf, &n);

  /* No file, or one that can't be read: its loader says what it does
   * without it. */
  if (rv != 0)
    return 0;
  rv = statefiles_format(buf, n, &format, what, sizeof(what));
  if (rv == CHOREO_EINVAL) {
    snprintf(why, len,
             "%s/%s: %s, which no version of choreo writes; refusing to "
             "start rather than misread it (move the file away to start "
             "without it)",
             dir, name, what);
  } else if (rv == 0 && format > STATEFILES_VERSION) {
    snprintf(why, len,
             "%s/%s: format %lld, newer than this agent's (%d): it was "
             "written by a newer choreo; run that version again, or restore "
             "the files kept by its migration (docs/OPERATIONS.md "
             "\"Upgrades\")",
             dir, name, (long long)format, STATEFILES_VERSION);
    rv = CHOREO_EINVAL;
  } else {
    if (rv == 0 && format < STATEFILES_VERSION && strcmp(name, STATE_FILE) == 0)
      migrate_state(dir, buf, n);
    rv = 0;
  }
  free(buf);
  return rv;
}

int state_migrate(const char *dir, char *why, size_t len) {
  why[0] = '\0';
  for (size_t i = 0; i < ARRAY_SIZE(state_files); i++) {
    int rv = check_format(dir, state_files[i], why, len);
    if (rv != 0)
      return rv;
  }
  return 0;
}
