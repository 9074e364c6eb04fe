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
 */
#ifndef CHOREO_STATE_H
#define CHOREO_STATE_H

#include <jansson.h>
#include <stdint.h>

#include "choreo.h"

#define STATE_FILE "state.json"

struct saved_state {
  char state[CHOREO_STATE_MAX + 1];
  char reason[CHOREO_REASON_MAX + 1];
  int64_t since_ms;
  json_t *data; /* object; owned reference */
  uint64_t inc; /* incarnation of the last start */
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

#endif
