/*
 * state.c — persistence of this node's declared state and incarnation in
 * state_dir; see state.h for the guarantees.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "record.h"
#include "state.h"
#include "util.h"

#define STATE_FILE_MAX (64 * 1024)

static int path_join(char *out, size_t len, const char *dir, const char *name) {
  int n = snprintf(out, len, "%s/%s", dir, name);
  return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int decode(json_t *root, struct saved_state *s, const char **why) {
  const char *state = NULL, *reason = "";
  json_t *data = NULL;
  json_int_t since = 0, inc = 0;
  const char *key;
  json_t *v;

  if (json_unpack(root, "{s:s, s?s, s?I, s?o, s:I}", "state", &state, "reason",
                  &reason, "since", &since, "data", &data, "inc", &inc) != 0) {
    *why = "missing or mistyped fields";
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
  s->data = data != NULL ? json_deep_copy(data) : json_object();
  return s->data != NULL ? 0 : CHOREO_ENOMEM;
}

int state_load(const char *dir, struct saved_state *s) {
  char path[4200];
  json_error_t jerr;
  const char *why = NULL;
  json_t *root;
  int rv;

  memset(s, 0, sizeof(*s));
  if (path_join(path, sizeof(path), dir, STATE_FILE) != 0)
    return CHOREO_EINVAL;
  if (access(path, F_OK) != 0 && errno == ENOENT)
    return CHOREO_ENOTFOUND;
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

int state_save(const char *dir, const struct saved_state *s) {
  char path[4200], tmp[4200];
  char *text = NULL;
  json_t *root;
  int fd = -1, rv;

  if ((rv = mkdir_p(dir, 0700)) != 0)
    return rv;
  if (path_join(path, sizeof(path), dir, STATE_FILE) != 0 ||
      path_join(tmp, sizeof(tmp), dir, "." STATE_FILE ".tmp") != 0)
    return -ENAMETOOLONG;
  root = json_pack("{s:s, s:s, s:I, s:O, s:I}", "state", s->state, "reason",
                   s->reason, "since", (json_int_t)s->since_ms, "data", s->data,
                   "inc", (json_int_t)s->inc);
  if (root != NULL)
    text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(root);
  if (text == NULL)
    return -ENOMEM;
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    rv = -errno;
    goto fail;
  }
  if ((rv = write_all(fd, text, strlen(text))) != 0 ||
      (rv = write_all(fd, "\n", 1)) != 0)
    goto fail;
  if (fsync(fd) != 0 || close(fd) != 0) {
    fd = -1;
    rv = -errno;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    rv = -errno;
    goto fail;
  }
  free(text);
  return fsync_dir(dir);

fail:
  if (fd >= 0)
    close(fd);
  unlink(tmp);
  free(text);
  return rv;
}
