/*
 * state.h — this node's declared state, persisted in state_dir so that it
 * survives restarts, and the incarnation counter that orders this node's
 * records across restarts.
 *
 * The file is written as a temporary file in the same directory, fsynced,
 * renamed over the old one, and the directory fsynced: a crash leaves
 * either the old file or the new one, never a torn one. The temporary file
 * gets a fresh random name (.state.json.tmp.XXXXXX) created with O_EXCL
 * and mode 0600, so that nothing planted in state_dir is followed.
 *
 * The other files of state_dir (applied.json, members.json: statefiles.h)
 * are written and read with the same functions, state_write() and
 * state_read(). A save can be split in two (state_prepare(), then
 * state_commit() or state_abort()): the text is written first, which is
 * where a full or read-only state_dir fails, and the fsyncs and the rename
 * come second, so that a caller can refuse a change that can't be saved
 * without paying for the fsyncs before acting on it.
 */
#ifndef CHOREO_STATE_H
#define CHOREO_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "choreo.h"

#define STATE_FILE "state.json"

struct saved_state {
  char state[CHOREO_STATE_MAX + 1];
  char reason[CHOREO_REASON_MAX + 1];
  int64_t since_ms;
  json_t *data; /* object; owned reference */
  uint64_t inc; /* incarnation of the last start */
  /* `choreo set STATE --for DURATION`: when the state expires (unix ms;
   * 0: never) and the state and reason it returns to then. Optional in
   * the file ("until", "then", "then_reason"). */
  int64_t until_ms;
  char then[CHOREO_STATE_MAX + 1];
  char then_reason[CHOREO_REASON_MAX + 1];
};

/* Read dir/state.json into *s (s->data is a new reference the caller
 * releases). Returns 0, CHOREO_ENOTFOUND when there is no file yet, or
 * CHOREO_EDECODE (with a log line naming the file and problem) when it is
 * unreadable or invalid: the caller then starts from the configuration. */
int state_load(const char *dir, struct saved_state *s);

/* Write *s to dir/state.json atomically, creating dir (0700) if missing.
 * Returns 0 or a negated errno; the temporary file is removed and every
 * descriptor closed whatever fails. */
int state_save(const char *dir, const struct saved_state *s);

/* Whether dir may hold this agent's state: refused (why[len] says what,
 * naming dir) when it is not a directory, is owned by a user other than
 * root and the agent's effective user, or group or others may write to it.
 * A dir that does not exist yet is fine: state_save() creates it 0700.
 * Returns 0, CHOREO_EINVAL, or a negated errno (stat failed, not a
 * directory). */
int state_dir_check(const char *dir, char *why, size_t len);

/* A save in two steps: the temporary file holds the text, not yet
 * synced nor renamed. */
struct state_pending {
  int fd; /* -1: none */
  char path[4200], tmp[4200], dir[4096];
};

void state_pending_init(struct state_pending *w);
/* Create dir (0700) if missing and write text (and a newline) to a fresh
 * temporary file beside dir/name. Returns 0 (then call state_commit() or
 * state_abort()) or a negated errno (nothing left behind). */
int state_prepare(const char *dir, const char *name, const char *text,
                  struct state_pending *w);
/* fsync the temporary file, rename it over dir/name, fsync dir. Returns 0
 * or a negated errno (the temporary file removed). */
int state_commit(struct state_pending *w);
/* Drop a prepared save; idempotent. */
void state_abort(struct state_pending *w);
/* Whether dir can take a file of about `bytes` now, without writing
 * anything (statvfs and access: a few microseconds, no metadata written,
 * nothing waits for the disk): 0, -EROFS for a read-only file system,
 * -ENOSPC when the free space (for root, the blocks reserved for root
 * too) is less than bytes and two blocks, -EACCES when this process may
 * not write there, or the negated errno of statvfs (e.g. -ENOENT: dir is
 * gone). A caller that wants to refuse a change that can't be saved
 * checks this before acting and saves after; a save that fails anyway (a
 * race with something filling the disk) must be undone by the caller. */
int state_room(const char *dir, size_t bytes);
/* dir/name overwritten in place, no fsync, no rename (a link there is
 * refused): a crash of the agent mid-write can leave it empty or cut,
 * which the reader refuses; a power loss can leave it older. Only for a
 * file whose loss costs work, never truth (applied.json: applied.log marks
 * what it doesn't settle, and an unreadable one makes every level
 * behaviour reconciled both ways). */
int state_replace(const char *dir, const char *name, const char *text);
/* state_prepare() then state_commit(). */
int state_write(const char *dir, const char *name, const char *text);

/* Read dir/name, at most max bytes, without following a symlink. On
 * success *out (NUL-terminated, *len bytes) is the caller's to free().
 * Returns 0, CHOREO_ENOTFOUND (no file), CHOREO_ETOOBIG (larger than max),
 * CHOREO_EDECODE (not a regular file), CHOREO_ENOMEM or a negated errno. */
int state_read(const char *dir, const char *name, size_t max, char **out,
               size_t *len);

/* The formats of state_dir's files ("format", statefiles.h), checked
 * once at start before any of them is read (docs/OPERATIONS.md
 * "Upgrades"). An older file is migrated in place: 0.1.0's state.json
 * (format 0) is kept as state.json.v0, written whole, before the new one
 * replaces it (the backup stays, for a rollback), and applied.json is
 * written to say that what was applied is unknown (0.1.0 kept no record;
 * one found there is stale, left before a rollback to 0.1.0). A file of a newer
 * format, or whose "format" is not a whole number, is refused:
 * CHOREO_EINVAL, with why[len] naming the file and what to do; nothing is
 * written. A file missing or unreadable is left to its loader. A
 * migration that can't be written is logged and not fatal. Returns 0 or
 * CHOREO_EINVAL. */
int state_migrate(const char *dir, char *why, size_t len);

/* Saying "cannot save" at most once per STATE_REPORT_GAP_MS: the agent
 * keeps working with a full or read-only state_dir, and its log must not
 * fill up with one line per change. */
#define STATE_REPORT_GAP_MS 60000
struct state_report {
  bool said;
  uint64_t at;         /* monotonic ms of the last line */
  uint64_t suppressed; /* lines not written since */
};
/* Whether a line is due at now_ms (then it is counted as said); the
 * caller reports r->suppressed in it and zeroes it. */
bool state_report_due(struct state_report *r, uint64_t now_ms);

#endif
