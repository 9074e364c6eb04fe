/*
 * policy.c — the daemon's decisions, pure (see policy.h): the shell
 * passes what it knows as plain values and carries the answer out.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "policy.h"
#include "util.h"

/* ---- own state ---- */

enum policy_own policy_own_state(const struct policy_claims *c,
                                 char state[CHOREO_STATE_MAX + 1],
                                 char reason[CHOREO_REASON_MAX + 1]) {
  const size_t slen = CHOREO_STATE_MAX + 1, rlen = CHOREO_REASON_MAX + 1;

  if (strcmp(c->declared, "ready") != 0) {
    snprintf(state, slen, "%s", c->declared);
    snprintf(reason, rlen, "%s", c->declared_reason);
    return POLICY_OWN_DECLARED;
  }
  if (c->check_state != NULL) {
    snprintf(state, slen, "%s", c->check_state);
    snprintf(reason, rlen, "check %s failing", c->check_name);
    return POLICY_OWN_CHECK;
  }
  if (c->behaviour_state != NULL) {
    snprintf(state, slen, "%s", c->behaviour_state);
    snprintf(reason, rlen, "behaviour %s", c->behaviour_name);
    return POLICY_OWN_BEHAVIOUR;
  }
  snprintf(state, slen, "ready");
  snprintf(reason, rlen, "%s", c->declared_reason);
  return POLICY_OWN_READY;
}

/* ---- admission ---- */

/* An earlier version's rule, for its messages only: sent within
 * POLICY_LEGACY_FRESH_MS of our clock. */
static bool legacy_fresh(uint64_t msg_time, int64_t now_ms) {
  return msg_time != 0 &&
         (int64_t)msg_time >= now_ms - POLICY_LEGACY_FRESH_MS &&
         (int64_t)msg_time <= now_ms + POLICY_LEGACY_FRESH_MS;
}

enum policy_admit policy_admit(const struct policy_admit_in *in) {
  if (strcmp(in->msg_cluster, in->cluster) != 0)
    return POLICY_DROP_CLUSTER;
  if (strcmp(in->msg_from, in->name) == 0)
    return POLICY_DROP_SELF_NAME;
  /* Only a sealed message proves anything: one that echoes our nonce was
   * sent after we started, and once a sender has proved that, its (inc,
   * seq) orders the rest. Plain text is not checked (anyone can forge
   * it); the sender's "time" is never compared with our clock, so a
   * skewed clock costs nothing (docs/SECURITY.md). */
  if (in->keyed && !in->proved && !in->echoes_us &&
      (in->msg_nonce || !legacy_fresh(in->msg_time, in->now_ms)))
    return POLICY_DROP_STALE;
  if (!policy_inc_in_bounds(in->msg_inc, in->now_ms))
    return POLICY_DROP_FUTURE;
  return POLICY_ADMIT;
}

int64_t policy_clock_offset(uint64_t msg_time, int64_t now_ms) {
  if (msg_time == 0 || msg_time > (uint64_t)INT64_MAX)
    return 0;
  return (int64_t)msg_time - now_ms;
}

bool policy_skew_warn(int64_t offset_ms, uint64_t now, bool warned,
                      uint64_t warned_at) {
  if (offset_ms <= POLICY_SKEW_WARN_MS && offset_ms >= -POLICY_SKEW_WARN_MS)
    return false;
  return !warned || now - warned_at >= POLICY_SKEW_WARN_EVERY_MS;
}

uint64_t policy_lag_note(struct peer_lag *l, uint64_t msg_time, uint64_t now) {
  int64_t offset, base;
  uint64_t decay;

  if (msg_time == 0 || msg_time > (uint64_t)INT64_MAX / 2 ||
      now > (uint64_t)INT64_MAX / 2)
    return 0;
  offset = (int64_t)msg_time - (int64_t)now;
  if (!l->set) {
    *l = (struct peer_lag){.base = offset, .base_at = now, .set = true};
    return 0;
  }
  decay =
      now > l->base_at ? (now - l->base_at) * POLICY_LAG_DECAY_PER_S / 1000 : 0;
  base = l->base - (int64_t)(decay < (uint64_t)INT64_MAX / 4
                                 ? decay
                                 : (uint64_t)INT64_MAX / 4);
  if (offset >= base) {
    /* The freshest yet, or the decayed base caught up with it. */
    *l = (struct peer_lag){.base = offset, .base_at = now, .set = true};
    return 0;
  }
  return (uint64_t)(base - offset);
}

bool policy_lag_late(uint64_t lag_ms, uint64_t heartbeat_ms) {
  return heartbeat_ms > 0 && lag_ms > heartbeat_ms;
}

bool policy_behind(const struct policy_behind_in *in) {
  bool most_late = in->late <= in->msgs && in->late > in->msgs - in->late;
  bool ours = in->foreign <= in->read && in->foreign < in->read - in->foreign;
  return in->full && (most_late || (!in->drained && ours));
}

enum policy_echo policy_echo_note(const struct policy_echo_in *in) {
  if (in->msg_nonce == 0)
    return POLICY_ECHO_KEEP;
  if (!in->known)
    return POLICY_ECHO_ARM;
  if (in->msg_inc < in->inc ||
      (in->msg_inc == in->inc && in->msg_seq <= in->seq))
    return POLICY_ECHO_KEEP;
  if (in->msg_nonce != in->nonce)
    return POLICY_ECHO_ARM;
  return in->active || !in->msg_proving ? POLICY_ECHO_ADVANCE : POLICY_ECHO_ARM;
}

enum policy_admit policy_admit_seq(bool fresh, bool via_relay, bool from_leaf,
                                   bool we_relay) {
  if (fresh)
    return POLICY_ADMIT;
  /* Through two relays, or at a relay directly from a leaf and through
   * another relay, the same message arrives twice: expected, and counted
   * apart from replays. */
  if (via_relay || (from_leaf && we_relay))
    return POLICY_DROP_RELAY_DUPLICATE;
  return POLICY_DROP_REPLAY;
}

/* ---- checks ---- */

enum policy_check_change policy_check_result(struct policy_check *s, bool ok,
                                             unsigned rise, unsigned fall) {
  s->passes = ok ? s->passes + 1 : 0;
  s->fails = ok ? 0 : s->fails + 1;
  if (!s->failing && s->fails >= fall) {
    s->failing = true;
    return POLICY_CHECK_FAILS;
  }
  if (s->failing && s->passes >= rise) {
    s->failing = false;
    return POLICY_CHECK_PASSES;
  }
  return POLICY_CHECK_SAME;
}

/* ---- relay credit ---- */

uint64_t policy_relay_hold_ms(uint64_t heartbeat_ms) {
  uint64_t ms = heartbeat_ms / 4;
  if (ms < POLICY_RELAY_HOLD_MIN_MS)
    return POLICY_RELAY_HOLD_MIN_MS;
  return ms > POLICY_RELAY_HOLD_MAX_MS ? POLICY_RELAY_HOLD_MAX_MS : ms;
}

uint64_t policy_relay_interval_ms(size_t npeers, uint64_t heartbeat_ms) {
  uint64_t iv = (uint64_t)npeers / POLICY_RELAY_MEMBERS_PER_MS;
  uint64_t hold = policy_relay_hold_ms(heartbeat_ms);
  return iv < hold ? iv : hold;
}

uint64_t policy_relay_change_time(uint64_t credit_at, uint64_t now,
                                  uint64_t iv) {
  uint64_t ahead = (POLICY_RELAY_BURST - 1) * iv;
  uint64_t at = credit_at > now ? credit_at : now;
  return at - now > ahead ? at - ahead : now;
}

uint64_t policy_relay_spend(uint64_t credit_at, uint64_t now, uint64_t iv) {
  uint64_t at = (credit_at > now ? credit_at : now) + iv;
  /* No credit is no credit: a batch sent without (full, it could not
   * wait) leaves no debt behind, or a cluster's start would hold back the
   * changes after it for as many intervals as it filled batches. */
  uint64_t empty = now + POLICY_RELAY_BURST * iv;
  return at < empty ? at : empty;
}

bool policy_relay_forwards(bool we_relay, bool via_relay, bool from_leaf,
                           bool hello, bool news) {
  /* A repeat in a batch has been forwarded by another relay already; a
   * leaf's hello is answered here, its member lists merged here. */
  return we_relay && from_leaf && !hello && (!via_relay || news);
}

/* ---- shares ---- */

uint64_t policy_share_rank(const char *relay, const char *member) {
  uint64_t h = util_fnv(UTIL_FNV_OFFSET, relay, strlen(relay) + 1);
  h = util_fnv(h, member, strlen(member) + 1);
  /* FNV's last bytes barely reach its high bits: mix (splitmix64's
   * finalizer), so that ranks spread evenly over the relays. */
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

/* a ranks above b for the member: by rank, then by name. */
static bool ranks_above(uint64_t ra, const char *a, uint64_t rb,
                        const char *b) {
  return ra != rb ? ra > rb : strcmp(a, b) < 0;
}

bool policy_relay_serves(const char *self, const char *const *others,
                         size_t nothers, const char *member, bool leaf) {
  uint64_t mine;
  size_t above = 0;
  if (!leaf || nothers < POLICY_RELAY_SHARE_K)
    return true;
  mine = policy_share_rank(self, member);
  for (size_t i = 0; i < nothers && above < POLICY_RELAY_SHARE_K; i++)
    above += ranks_above(policy_share_rank(others[i], member), others[i], mine,
                         self);
  return above < POLICY_RELAY_SHARE_K;
}

/* ---- quiet relays ---- */

enum policy_relay_pass policy_relay_pass(const struct policy_pass_in *in) {
  if (!in->forwards)
    return POLICY_PASS_NONE;
  if (in->news || in->unpassed || in->leave || in->control || in->cert_wanted)
    return POLICY_PASS_NEWS;
  if (!in->all_quiet)
    return POLICY_PASS_HOLD;
  if ((in->changed_lately || in->catch_up) && !in->behind)
    return POLICY_PASS_HOLD;
  return POLICY_PASS_NONE;
}

enum policy_relay_pass
policy_relay_pass_msg(const struct wire_msg *m, const struct peer *peer,
                      bool news, bool cert_wanted,
                      const struct policy_relay_mode *mode, uint64_t now,
                      uint64_t heartbeat_ms) {
  struct policy_pass_in in = {
      .forwards = true,
      .news = news,
      .unpassed = !peer_more_of(peer)->passed ||
                  peer_more_of(peer)->passed_inc != m->rec.inc ||
                  peer_more_of(peer)->passed_ver != m->rec.ver,
      .leave = m->type == WIRE_LEAVE,
      /* Not "resync": only a relay that hears it directly acts on it,
       * and every relay does (a leaf sends to each). */
      .control =
          m->necho > 0 || m->proving || m->nwant > 0 || m->revoked != NULL,
      .cert_wanted = m->cert != NULL && cert_wanted,
      .changed_lately =
          peer->changed_at + POLICY_RELAY_REPEAT_HB * heartbeat_ms > now,
      .catch_up = mode->catch_up,
      .all_quiet = mode->all_quiet,
      .behind = mode->behind,
  };
  return policy_relay_pass(&in);
}

uint64_t policy_relay_window_ms(uint64_t heartbeat_ms) {
  return heartbeat_ms + heartbeat_ms / 2;
}

enum policy_catch_up
policy_relay_catch_up(const struct policy_catch_up_in *in) {
  if (in->behind)
    return POLICY_CATCH_UP_LATER;
  if (in->window_open || !in->all_quiet)
    return POLICY_CATCH_UP_COVERED;
  if (in->reachable && (in->has_own || in->own_free > 0))
    return POLICY_CATCH_UP_ALONE;
  return POLICY_CATCH_UP_ALL;
}

bool policy_resync_note(struct policy_resync *s, uint64_t ours, uint64_t theirs,
                        uint64_t now, uint64_t heartbeat_ms) {
  uint64_t max = POLICY_RESYNC_BACKOFF_MAX_HB * heartbeat_ms;
  uint64_t pair = ours ^ (theirs * 0x9e3779b97f4a7c15ULL);
  bool quiet = s->noted && ours == s->ours_prev && theirs == s->theirs_prev;
  bool same, fast;

  s->ours_prev = ours;
  s->theirs_prev = theirs;
  s->noted = true;
  if (ours == theirs) {
    s->misses = 0;
    return false;
  }
  if (++s->misses < POLICY_RESYNC_MISSES)
    return false;
  same = s->last_at != 0 && pair == s->pair;
  fast = !same && quiet;
  if (s->last_at != 0 &&
      now < s->last_at + (fast ? 2 * heartbeat_ms : s->backoff_ms))
    return false;
  if (s->backoff_ms == 0 || fast || now - s->last_at > 4 * s->backoff_ms)
    s->backoff_ms = 2 * heartbeat_ms;
  else if ((s->backoff_ms *= 2) > max)
    s->backoff_ms = max;
  s->pair = pair;
  s->last_at = now;
  s->misses = 0;
  return true;
}

void policy_resync_forget(struct policy_resync *s) {
  *s = (struct policy_resync){0};
}

/* ---- member lists ---- */

bool policy_lists_ours(size_t npeers, const char *name, uint32_t their_known,
                       const char *their_name) {
  /* Only one side of a pair sends, so that a cluster whose views all
   * differ while it forms (N agents, each hearing N-1 digests) doesn't
   * have every agent send its whole list to every other twice a
   * heartbeat. The other side, once it knows more, sends in its turn, so
   * views still meet. */
  uint64_t ours = (uint64_t)npeers + 1;
  if (their_known != ours)
    return their_known < ours;
  return strcmp(name, their_name) < 0;
}

bool policy_is_news(const struct peer *peer, const struct record *r) {
  return peer == NULL || !peer->heard || peer->status != PEER_ALIVE ||
         record_cmp(r, peer->rec) > 0;
}

uint64_t policy_hello_gap(unsigned tries, bool delivered,
                          uint64_t heartbeat_ms) {
  uint64_t gap;
  unsigned doublings;

  if (delivered)
    return 0;
  if (tries < POLICY_HELLO_FAST_TRIES) {
    gap = POLICY_HELLO_FIRST_MS;
  } else {
    doublings = tries - POLICY_HELLO_FAST_TRIES + 1;
    gap = (uint64_t)POLICY_HELLO_FIRST_MS << (doublings < 10 ? doublings : 10);
  }
  return gap < heartbeat_ms ? gap : heartbeat_ms;
}

unsigned policy_after_record(const struct policy_record_in *in) {
  if (in->hello) {
    /* A leaf needs no list from its relay: it hears every member's own
     * record through the relays within a heartbeat, which a list (names
     * and addresses, no states) could not give it sooner. A list goes to
     * every member: at 200 leaves starting together, answering each
     * hello with one cost more than everything else the relay sent. */
    if (in->we_relay && in->from_leaf)
      return POLICY_PUBLISH_SOON;
    return POLICY_ANSWER_LIST | POLICY_PUBLISH_SOON;
  }
  if (in->we_leaf && in->via_relay)
    return POLICY_NOTHING;
  /* Not our list: it has one from whoever answered its hello, and
   * differences are settled by the digests. */
  if (!in->we_leaf && in->new_peer)
    return POLICY_PUBLISH_SOON;
  if (!in->same_view && policy_view_matters(in))
    return POLICY_OFFER_LIST;
  return POLICY_NOTHING;
}

bool policy_view_matters(const struct policy_record_in *in) {
  /* A relay gives a leaf records, not lists: the leaf's records digest
   * and its resyncs settle what it lacks. Nor does another relay need
   * its list: each hears every leaf (leaves list every relay). A relay's
   * list goes to every member, 79 messages at 10,000 members; offered
   * whenever a leaf's or a relay's view differed from its own, as all do
   * while a cluster forms, it went every half heartbeat and took more of
   * the relay's CPU than all else. */
  if (in->hello || (in->we_leaf && in->via_relay) ||
      (!in->we_leaf && in->new_peer) ||
      (in->we_relay && (in->from_leaf || in->from_relay)))
    return false;
  return in->now - in->list_at >= in->heartbeat_ms / 2 &&
         policy_lists_ours(in->npeers, in->name, in->their_known,
                           in->their_name) &&
         (!in->we_leaf || (uint64_t)in->lottery * (in->npeers + 1) <
                              (uint64_t)POLICY_LEAF_LIST_OFFERS << 32);
}

/* ---- own record ---- */

static uint64_t now_seconds(int64_t now_ms) {
  return now_ms > 0 ? (uint64_t)now_ms / 1000 : 0;
}

bool policy_inc_in_bounds(uint64_t inc, int64_t now_ms) {
  /* The sum stays far below 2^64 for any clock; a counter over 2^53 is
   * refused by the decoder already. */
  return inc <= now_seconds(now_ms) + POLICY_FUTURE_SLACK_S &&
         inc <= RECORD_COUNTER_MAX;
}

uint64_t policy_start_inc(uint64_t saved, bool loaded, int64_t now_ms) {
  uint64_t now_s = now_seconds(now_ms);
  uint64_t next = loaded && saved < RECORD_COUNTER_MAX ? saved + 1 : 0;
  if (next < now_s || !policy_inc_in_bounds(next, now_ms))
    return now_s;
  return next;
}

static bool same_text(const char *a, const char *b) {
  return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

enum policy_claim policy_claim(const struct policy_claim_in *in) {
  const struct record *own = in->own;
  bool differs;

  if (!policy_inc_in_bounds(in->inc, in->now_ms))
    return POLICY_CLAIM_BOUNDS;
  if (in->inc != own->inc)
    return in->inc > own->inc ? POLICY_CLAIM_REFUTE : POLICY_CLAIM_IGNORE;
  if (in->ver != own->ver)
    return in->ver > own->ver ? POLICY_CLAIM_REFUTE : POLICY_CLAIM_IGNORE;
  /* The same stamp: ours (a join address that is this node under another
   * spelling sends us our own hellos), or a forgery that a peer holding
   * it would keep until our next version. */
  differs = strcmp(in->addr, own->addr) != 0 || in->left != own->left;
  if (in->direct)
    differs = differs || !same_text(in->state, own->state) ||
              !same_text(in->reason, own->reason);
  return differs ? POLICY_CLAIM_REFUTE : POLICY_CLAIM_IGNORE;
}

uint64_t policy_refute_inc(uint64_t own, uint64_t claimed) {
  uint64_t top = own > claimed ? own : claimed;
  return top >= RECORD_COUNTER_MAX ? RECORD_COUNTER_MAX : top + 1;
}

bool policy_sender_behind(const struct peer *peer, uint64_t msg_inc,
                          const struct record *r) {
  if (peer == NULL)
    return false;
  if (msg_inc < peer->msg_inc)
    return true;
  /* A member list only introduces the node: unheard, we hold no record
   * of it that it could be behind. */
  return r != NULL && peer->heard && record_cmp(r, peer->rec) < 0;
}

/* ---- two agents with one name ---- */

unsigned policy_rival_claim(struct policy_rival *r,
                            const struct policy_rival_in *in) {
  bool newcomer = in->uptime < POLICY_NEWCOMER_HEARTBEATS * in->heartbeat_ms;
  unsigned act = POLICY_RIVAL_NONE;

  if (r->addr[0] == '\0' || strcmp(r->addr, in->addr) != 0 ||
      in->now - r->last >= in->lost_after_ms) {
    memset(r, 0, sizeof(*r));
    snprintf(r->addr, sizeof(r->addr), "%s", in->addr);
    r->first = in->now;
    r->inc = in->inc;
    r->last = in->now;
    r->refuted_at = in->now;
    return POLICY_RIVAL_REFUTE | POLICY_RIVAL_NEW;
  }
  r->last = in->now;
  if (in->inc > r->inc) {
    /* It answered our refutation with a greater incarnation of its own:
     * something keeps claiming our name from there. */
    r->inc = in->inc;
    r->raises++;
    if (!r->confirmed) {
      r->confirmed = true;
      if (newcomer)
        return POLICY_RIVAL_CONFLICT | POLICY_RIVAL_STOP;
      r->refuted_at = in->now;
      return POLICY_RIVAL_CONFLICT | POLICY_RIVAL_REFUTE;
    }
  }
  if (!r->confirmed || in->now - r->refuted_at >= in->heartbeat_ms) {
    r->refuted_at = in->now;
    act |= POLICY_RIVAL_REFUTE;
  }
  return act;
}

bool policy_rival_expire(struct policy_rival *r, uint64_t now,
                         uint64_t keep_ms) {
  if (r->addr[0] == '\0' || now - r->last < keep_ms)
    return false;
  memset(r, 0, sizeof(*r));
  return true;
}

/* ---- startup sync ---- */

static uint64_t sync_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Bring *at down to t when t is still ahead. */
static void sync_at(uint64_t *at, uint64_t now, uint64_t t) {
  if (t > now && t < *at)
    *at = t;
}

enum policy_sync policy_sync(const struct policy_sync_in *in,
                             uint64_t *recheck) {
  uint64_t window_end = sync_add(in->started_at, in->window);
  uint64_t heard_end = sync_add(window_end, in->lost_after);
  uint64_t wait_end = sync_add(in->started_at, in->max_wait);
  bool complete = in->got_members && in->view_agreed && in->unheard == 0;
  bool asked = in->heard >= in->min_members && in->groups_missing == 0;
  /* Past the window a member only heard of (listed by another, or known
   * before a restart) is still waited for: on a loaded host it may be
   * heard only after the window, and a condition evaluated without it
   * acts on a partial view. peers.c forgets it after lost_after of
   * silence, so heard_end only bounds the wait if an entry lingers. */
  bool view = complete || (in->unheard == 0 && in->now >= window_end) ||
              in->now >= heard_end;

  *recheck = UINT64_MAX;
  if (view && asked)
    return POLICY_SYNC_DONE;
  if (in->max_wait > 0 && in->now >= wait_end)
    return POLICY_SYNC_GAVE_UP;
  if (!view) {
    sync_at(recheck, in->now, window_end);
    sync_at(recheck, in->now, heard_end);
  }
  if (in->max_wait > 0)
    sync_at(recheck, in->now, wait_end);
  return POLICY_SYNC_WAIT;
}

/* ---- control socket authority ---- */

enum policy_access policy_control_access(uint32_t peer_uid, uint32_t agent_euid,
                                         bool reader) {
  if (peer_uid == 0 || peer_uid == agent_euid)
    return POLICY_ACCESS_CHANGE;
  return reader ? POLICY_ACCESS_READ : POLICY_ACCESS_NONE;
}

bool policy_control_reads(const char *cmd) {
  /* An allow list: a command added later changes state until it is
   * listed here, so a reader never gains it by omission. */
  static const char *const reads[] = {"status", "peers", "watch", "metrics",
                                      "version"};
  if (cmd == NULL)
    return false;
  for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
    if (strcmp(cmd, reads[i]) == 0)
      return true;
  }
  return false;
}

enum policy_verdict policy_control_allow(enum policy_access access,
                                         const char *cmd) {
  switch (access) {
  case POLICY_ACCESS_CHANGE:
    return POLICY_ALLOW;
  case POLICY_ACCESS_READ:
    return policy_control_reads(cmd) ? POLICY_ALLOW : POLICY_READ_ONLY;
  default:
    return POLICY_REFUSE;
  }
}

/* ---- script trust ---- */

enum policy_script policy_script_trust(uint32_t st_uid, uint32_t st_mode,
                                       uint32_t run_uid, bool is_dir) {
  if (st_uid != 0 && st_uid != run_uid)
    return POLICY_SCRIPT_OWNER;
  if (is_dir && st_uid == 0 && (st_mode & S_ISVTX) != 0)
    return POLICY_SCRIPT_OK;
  if ((st_mode & S_IWOTH) != 0)
    return POLICY_SCRIPT_OTHER_WRITE;
  if ((st_mode & S_IWGRP) != 0)
    return POLICY_SCRIPT_GROUP_WRITE;
  return POLICY_SCRIPT_OK;
}
