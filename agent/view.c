/*
 * view.c — the PEER and event JSON shapes of docs/PROTOCOL.md "Control socket";
 * see view.h.
 */
#include "view.h"

json_t *view_peer(const struct record *r, const char *state,
                  int64_t last_seen_ms) {
  json_t *groups = json_array();
  json_t *o;

  if (groups == NULL)
    return NULL;
  for (size_t i = 0; i < r->ngroups; i++)
    json_array_append_new(groups, json_string(r->groups[i]));
  o = json_pack("{s:s, s:o, s:s, s:s, s:I, s:I, s:O}", "name", r->name,
                "groups", groups, "state", state, "reason", r->reason, "since",
                (json_int_t)r->since_ms, "last_seen_ms",
                (json_int_t)last_seen_ms, "data", r->data);
  return o;
}

/* Its versions, once a message of its own said them (docs/PROTOCOL.md
 * "Versions"): "version" (its release, "unversioned" for a 0.1.0 agent),
 * "proto" (the minor both speak), "proto_range" ([min, max] it speaks)
 * and, from minor 2, "heartbeat_ms". */
static void add_versions(json_t *o, const struct peer *peer) {
  const char *said = peer_more_of(peer)->release;
  const char *release = said[0] != '\0' ? said : "unknown";

  if (!peer->version_heard)
    return;
  json_object_set_new(o, "version",
                      json_string(peer->versioned ? release : "unversioned"));
  json_object_set_new(o, "proto", json_integer(peer->proto));
  json_object_set_new(
      o, "proto_range",
      json_pack("[i,i]", (int)peer->proto_min, (int)peer->proto_max));
  if (peer->heartbeat_ms != 0)
    json_object_set_new(o, "heartbeat_ms",
                        json_integer((json_int_t)peer->heartbeat_ms));
}

json_t *view_table_peer(const struct peer *peer, uint64_t now) {
  int64_t age = now > peer->last_seen ? (int64_t)(now - peer->last_seen) : 0;
  json_t *o = view_peer(peer->rec, peer_state(peer), age);
  /* A lost or left node shows since when it is so, not its record's. */
  if (o != NULL) {
    json_object_set_new(o, "since", json_integer(peer_since(peer)));
    /* Its clock minus ours, as its latest message showed (ms). */
    json_object_set_new(o, "clock_offset_ms",
                        json_integer((json_int_t)peer->clock_offset_ms));
    add_versions(o, peer);
  }
  return o;
}

json_t *view_event(const struct peer_event *ev) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "event",
                   peer_event_name(ev->type), "peer", ev->peer->rec->name,
                   "state", ev->state, "previous", ev->previous, "reason",
                   ev->reason, "time", (json_int_t)ev->time_ms);
}
