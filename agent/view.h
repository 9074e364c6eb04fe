/*
 * view.h — how the agent shows nodes and events to the outside: the PEER
 * and event JSON objects of docs/PROTOCOL.md "Control socket", shared by the
 * control socket (status, peers, watch) and the JSON given to scripts on stdin.
 */
#ifndef CHOREO_VIEW_H
#define CHOREO_VIEW_H

#include <jansson.h>
#include <stdint.h>

#include "peers.h"
#include "record.h"

/* A PEER object: {"name","groups","state","reason","since","last_seen_ms",
 * "data"}. state is what the node shows (e.g. "lost"); last_seen_ms is the
 * age in ms (0 for self). Returns a new reference, NULL on ENOMEM. */
json_t *view_peer(const struct record *r, const char *state,
                  int64_t last_seen_ms);
/* view_peer() of a table entry at monotonic time now. */
json_t *view_table_peer(const struct peer *peer, uint64_t now);
/* A watch event object: {"event","peer","state","previous","reason",
 * "time"}. */
json_t *view_event(const struct peer_event *ev);

#endif
