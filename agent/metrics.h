/*
 * metrics.h — the agent's counters and gauges, rendered in the Prometheus
 * text format by `choreo metrics`. One X-macro lists them all so that names,
 * help texts and storage can't drift apart.
 *
 * Each row: XX(id, metric name, label set or "", help text). Rows that share
 * a metric name are one metric family with different labels; they must be
 * adjacent (the unit test checks that each family has one header).
 */
#ifndef CHOREO_METRICS_H
#define CHOREO_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trust.h"
#include "wire.h"

/* One counter per reason the decoder rejects a message (WIRE_REJECT_MAP):
 * a new reason there is a new row here. It expands to the XX of the list
 * being expanded, so the users of METRICS_COUNTERS call theirs XX. */
#define METRICS_DECODE_ROW(id, s)                                              \
  XX(drop_decode_##id, "choreo_messages_dropped_total", "reason=\"" s "\"",    \
     "Messages dropped, by reason")

/* One counter per reason identity drops a record (TRUST_DROP_MAP). */
#define METRICS_TRUST_ROW(id, s)                                               \
  XX(id_drop_##id, "choreo_identity_dropped_total", "reason=\"" s "\"",        \
     "Records dropped by the identity checks, by reason")

#define METRICS_COUNTERS(XX)                                                   \
  XX(msg_received, "choreo_messages_received_total", "",                       \
     "Messages received on the inbox")                                         \
  XX(msg_accepted, "choreo_messages_accepted_total", "",                       \
     "Messages that passed every check and were merged")                       \
  XX(msg_sent, "choreo_messages_sent_total", "", "Messages published")         \
  XX(msg_send_failed, "choreo_messages_send_failed_total", "",                 \
     "Messages nanomsg refused to queue")                                      \
  XX(msg_unversioned, "choreo_messages_unversioned_total", "",                 \
     "Messages accepted from agents that say no version (0.1.0)")              \
  WIRE_REJECT_MAP(METRICS_DECODE_ROW)                                          \
  XX(drop_cluster, "choreo_messages_dropped_total",                            \
     "reason=\"other_cluster\"", "Messages dropped, by reason")                \
  XX(drop_self_name, "choreo_messages_dropped_total", "reason=\"own_name\"",   \
     "Messages dropped, by reason")                                            \
  XX(drop_replay, "choreo_messages_dropped_total", "reason=\"replay\"",        \
     "Messages dropped, by reason")                                            \
  XX(drop_future, "choreo_messages_dropped_total", "reason=\"future\"",        \
     "Messages dropped, by reason")                                            \
  XX(drop_table_full, "choreo_messages_dropped_total",                         \
     "reason=\"table_full\"", "Messages dropped, by reason")                   \
  XX(drop_unauthenticated, "choreo_messages_dropped_total",                    \
     "reason=\"unauthenticated\"", "Messages dropped, by reason")              \
  XX(drop_stale, "choreo_messages_dropped_total", "reason=\"stale\"",          \
     "Messages dropped, by reason")                                            \
  XX(drop_bad_batch, "choreo_messages_dropped_total", "reason=\"bad_batch\"",  \
     "Messages dropped, by reason")                                            \
  TRUST_DROP_MAP(METRICS_TRUST_ROW)                                            \
  XX(id_verified, "choreo_identity_verifications_total", "",                   \
     "Signatures checked: records, member entries, certificates, "             \
     "revocations")                                                            \
  XX(id_cache_hits, "choreo_identity_cache_hits_total", "",                    \
     "Signed records and entries verified already (no signature checked)")     \
  XX(id_unsigned, "choreo_identity_unsigned_total", "",                        \
     "Unsigned records accepted (identity.required: false)")                   \
  XX(id_entries_refused, "choreo_identity_member_entries_refused_total", "",   \
     "Member list entries ignored, or taken only as a name and address, for "  \
     "want of a signature that can be checked")                                \
  XX(id_revocations_refused, "choreo_identity_revocations_refused_total", "",  \
     "Revocations from peers refused (malformed, or not signed by a trusted "  \
     "operator)")                                                              \
  XX(relay_batches_received, "choreo_relay_batches_received_total", "",        \
     "Relay batches received (each frame is then counted as a message)")       \
  XX(relay_duplicates, "choreo_relay_duplicates_total", "",                    \
     "Copies dropped: received already (through another relay or directly) "   \
     "or this agent's own, passed back by a relay")                            \
  XX(relay_forwarded, "choreo_relay_forwarded_total", "",                      \
     "Leaves' messages this relay forwarded (to every member, or to its "      \
     "share)")                                                                 \
  XX(relay_batches_sent, "choreo_relay_batches_sent_total", "",                \
     "Batches this relay published")                                           \
  XX(relay_quiet, "choreo_relay_repeats_kept_total", "",                       \
     "Leaves' unchanged heartbeats this relay did not pass on (members hold "  \
     "them)")                                                                  \
  XX(relay_windows, "choreo_relay_catch_up_windows_total", "",                 \
     "Catch-up windows for every member this relay opened (more members "      \
     "needed one at once than it sends to alone)")                             \
  XX(relay_catch_ups, "choreo_relay_catch_ups_alone_total", "",                \
     "Catch-ups this relay sent to one member alone (a hello, a leaf new or "  \
     "back, a resync asked)")                                                  \
  XX(resyncs_asked, "choreo_relay_resyncs_asked_total", "",                    \
     "Resyncs this member asked of its relays (records digests differed)")     \
  XX(verdict_losses, "choreo_relay_verdict_losses_total", "",                  \
     "Leaves taken for lost because every relay alive here holds them lost")   \
  XX(members_capped, "choreo_members_capped_total", "",                        \
     "Member entries ignored because the table was full")                      \
  XX(peers_budget_drops, "choreo_peer_table_refused_total",                    \
     "reason=\"budget\"",                                                      \
     "Records and member entries refused because the peer table would pass "   \
     "its memory budget")                                                      \
  XX(members_future, "choreo_member_entries_dropped_total",                    \
     "reason=\"future\"", "Member entries dropped: incarnation out of bounds") \
  XX(refutations, "choreo_refutations_total", "",                              \
     "Claims about this node it didn't make, outbid with a new incarnation")   \
  XX(name_conflicts, "choreo_name_conflicts_total", "",                        \
     "Other live agents found claiming this node's name")                      \
  XX(peer_events, "choreo_peer_events_total", "",                              \
     "Peer events (joined, state, data, left, lost)")                          \
  XX(runs_started, "choreo_script_runs_total", "",                             \
     "Behaviour and check scripts started")                                    \
  XX(runs_failed, "choreo_script_failures_total", "",                          \
     "Script runs that failed after their retries")                            \
  XX(runs_retried, "choreo_script_retries_total", "",                          \
     "Script runs retried after a failure")                                    \
  XX(runs_timed_out, "choreo_script_timeouts_total", "",                       \
     "Script runs killed at their timeout")                                    \
  XX(runs_spawn_retried, "choreo_script_start_retries_total", "",              \
     "Script starts retried because a resource (descriptors, processes, "      \
     "memory) was exhausted")                                                  \
  XX(escapees_killed, "choreo_script_escapees_killed_total", "",               \
     "Processes a stopped script had moved out of its process group, "         \
     "killed with it")                                                         \
  XX(orphans_reaped, "choreo_script_orphans_reaped_total", "",                 \
     "Exited processes left behind by scripts and reaped by the agent")        \
  XX(output_dropped_bytes, "choreo_script_output_dropped_bytes_total", "",     \
     "Script output bytes not logged because a run exceeded its budget")       \
  XX(control_requests, "choreo_control_requests_total", "",                    \
     "Requests on the control socket")                                         \
  XX(control_errors, "choreo_control_errors_total", "",                        \
     "Bad requests and dropped clients on the control socket")                 \
  XX(control_dropped_slow, "choreo_control_clients_dropped_total",             \
     "reason=\"slow\"", "Control clients dropped, by reason")                  \
  XX(control_dropped_full, "choreo_control_clients_dropped_total",             \
     "reason=\"too_many\"", "Control clients dropped, by reason")              \
  XX(control_accept_shed, "choreo_control_clients_dropped_total",              \
     "reason=\"no_descriptor\"", "Control clients dropped, by reason")         \
  XX(control_access_change, "choreo_control_access_total",                     \
     "access=\"change\"",                                                      \
     "Control requests by authority: changes and reads carried out, "          \
     "requests and connections denied")                                        \
  XX(control_access_read, "choreo_control_access_total", "access=\"read\"",    \
     "Control requests by authority: changes and reads carried out, "          \
     "requests and connections denied")                                        \
  XX(control_access_denied, "choreo_control_access_total",                     \
     "access=\"denied\"",                                                      \
     "Control requests by authority: changes and reads carried out, "          \
     "requests and connections denied")                                        \
  XX(inbox_idle_closed, "choreo_inbox_idle_closed_total", "",                  \
     "Inbox connections closed because they sent only a header and then "      \
     "nothing while descriptors ran short")                                    \
  XX(inbox_resets, "choreo_inbox_resets_total", "",                            \
     "Times every inbox connection was closed because they held too many "     \
     "descriptors")                                                            \
  XX(reloads_applied, "choreo_reloads_total", "outcome=\"applied\"",           \
     "Configuration reloads (SIGHUP, choreo reload), by outcome")              \
  XX(reloads_refused, "choreo_reloads_total", "outcome=\"refused\"",           \
     "Configuration reloads (SIGHUP, choreo reload), by outcome")              \
  XX(peer_stalls, "choreo_stalls_total", "",                                   \
     "Times this agent's own loop stalled too long to tell peers' silence "    \
     "from its own: peers were given a fresh lost_after")                      \
  XX(inbox_behind, "choreo_inbox_behind_total", "",                            \
     "Heartbeats at which this agent read its inbox behind (most messages "    \
     "over a heartbeat late): peers were given a fresh lost_after")            \
  XX(clock_skew_warnings, "choreo_clock_skew_warnings_total", "",              \
     "Warnings that a peer's clock is far from this node's")                   \
  XX(http_requests, "choreo_http_requests_total", "",                          \
     "Requests read on the HTTP endpoint")                                     \
  XX(http_errors, "choreo_http_errors_total", "",                              \
     "HTTP requests answered with an error status (4xx, 5xx)")                 \
  XX(http_dropped_slow, "choreo_http_clients_dropped_total",                   \
     "reason=\"slow\"",                                                        \
     "HTTP clients dropped, by reason (slow: an event stream not read)")       \
  XX(http_dropped_timeout, "choreo_http_clients_dropped_total",                \
     "reason=\"timeout\"",                                                     \
     "HTTP clients dropped, by reason (slow: an event stream not read)")       \
  XX(http_dropped_full, "choreo_http_clients_dropped_total",                   \
     "reason=\"too_many\"",                                                    \
     "HTTP clients dropped, by reason (slow: an event stream not read)")

#define METRICS_GAUGES(XX)                                                     \
  XX(peers_alive, "choreo_peers", "status=\"alive\"", "Peers by status")       \
  XX(peers_lost, "choreo_peers", "status=\"lost\"", "Peers by status")         \
  XX(peers_left, "choreo_peers", "status=\"left\"", "Peers by status")         \
  XX(runs_running, "choreo_scripts_running", "", "Scripts running now")        \
  XX(runs_queued, "choreo_scripts_queued", "",                                 \
     "Scripts waiting for a free slot")                                        \
  XX(mesh_out_up, "choreo_connections", "direction=\"out\",state=\"up\"",      \
     "nanomsg connections by direction and state")                             \
  XX(mesh_out_connecting, "choreo_connections",                                \
     "direction=\"out\",state=\"connecting\"",                                 \
     "nanomsg connections by direction and state")                             \
  XX(mesh_in_up, "choreo_connections", "direction=\"in\",state=\"up\"",        \
     "nanomsg connections by direction and state")                             \
  XX(mesh_connect_errors, "choreo_connect_errors", "",                         \
     "Failed connection attempts to members' inboxes (nanomsg's count)")       \
  XX(fds_open, "choreo_open_descriptors", "", "Descriptors the agent holds")   \
  XX(peers_bytes, "choreo_peer_table_bytes", "",                               \
     "Memory the peer table holds by its estimate")                            \
  XX(peers_bytes_max, "choreo_peer_table_bytes_max", "",                       \
     "The peer table's memory budget")                                         \
  XX(http_clients, "choreo_http_clients", "",                                  \
     "Connections open on the HTTP endpoint")                                  \
  XX(http_event_clients, "choreo_http_event_clients", "",                      \
     "HTTP clients reading the event stream")                                  \
  XX(id_revoked, "choreo_identity_revocations", "",                            \
     "Certificate revocations this agent holds")                               \
  XX(relay_share_members, "choreo_relay_share_members", "",                    \
     "Members this relay forwards to while relays split the members (0: "      \
     "it forwards to every member)")                                           \
  XX(relay_share_up, "choreo_relay_share_connections", "",                     \
     "Connections of this relay's share that are up")

struct metrics {
#define XX(id, name, labels, help) uint64_t id;
  METRICS_COUNTERS(XX)
#undef XX
#define XX(id, name, labels, help) int64_t id;
  METRICS_GAUGES(XX)
#undef XX
  /* Reaction latency: message received → script started, in a histogram
   * of fixed bucket bounds (ms). */
  uint64_t reaction_buckets[8];
  uint64_t reaction_count;
  double reaction_sum_ms;
  /* Runs of each behaviour by name (kept across reloads), in the order
   * first seen; owned, freed by metrics_free(). */
  struct metrics_behaviour *behaviours;
  size_t nbehaviours, behaviours_cap;
};

#define METRICS_BEHAVIOURS_MAX 1024 /* names counted: CONFIG_BEHAVIOURS_MAX */
/* Bucket upper bounds of the behaviour duration histogram, in seconds. */
#define METRICS_DURATION_BOUNDS                                                \
  { 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120 }

struct metrics_behaviour {
  char name[CHOREO_NAME_MAX + 1];
  uint64_t runs[2]; /* action run, revert */
  uint64_t failures;
  uint64_t buckets[8];
  uint64_t count;
  double sum_s;
};

/* The nodes, for the state gauges of metrics_render_nodes(). */
struct metrics_node {
  const char *name, *state;
  const char (*groups)[CHOREO_NAME_MAX + 1];
  size_t ngroups;
  double age_s; /* in the current state */
};

/* Bucket upper bounds of the reaction histogram, in milliseconds. */
#define METRICS_REACTION_BOUNDS                                                \
  { 0.5, 1, 2, 5, 10, 50, 250, 1000 }

void metrics_observe_reaction(struct metrics *m, double ms);
/* Count a message the decoder rejected for reason r (WIRE_OK: nothing). */
void metrics_count_reject(struct metrics *m, enum wire_reject r);
/* Render m in the Prometheus text exposition format. On success the caller
 * owns *out (free()). Returns 0 or CHOREO_ENOMEM. */
int metrics_render(const struct metrics *m, char **out);
/* metrics_render() followed by the node state gauges (choreo_own_state,
 * choreo_peer_state and their ages; self first, then n peers) and
 * choreo_build_info. Label values are escaped. Ownership as for
 * metrics_render(). */
int metrics_render_nodes(const struct metrics *m,
                         const struct metrics_node *self,
                         const struct metrics_node *peers, size_t n,
                         char **out);
/* A behaviour's action ended: revert or not, ok or failed, after secs.
 * Names beyond METRICS_BEHAVIOURS_MAX distinct ones are not counted.
 * Returns 0 or CHOREO_ENOMEM (nothing counted). */
int metrics_behaviour_done(struct metrics *m, const char *name, bool revert,
                           bool ok, double secs);
void metrics_free(struct metrics *m);

#endif
