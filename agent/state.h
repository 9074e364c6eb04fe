/*
 * state.h — this node's declared state, persisted in state_dir so that it
 * survives restarts, and the incarnation counter that orders this node's
 * records across restarts.
 *
 * The file is written as a temporary file in the same directory, fsynced,
 * renamed over the old one, and the directory fsynced: a crash leaves
 * either the old file or the new one, never a torn one.
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
 * Returns 0 or a negated errno. */
int state_save(const char *dir, const struct saved_state *s);

#endif
