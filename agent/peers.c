/*
 * peers.c — the peer table (see peers.h): a name-sorted array of owned
 * entries, the rules that merge records and member lists into it, the
 * lost/left/reap timeline, the replay guard and the anti-entropy digest.
 *
 * Pure: the caller passes the clocks; the only output besides the table
 * itself is the event callback. An event is reported only once the table
 * is consistent again, and the callback may read the table but must not
 * change it (no merge, no tick from inside it).
 *
 * Entries come from two sources:
 *  - records from the node itself (peers_merge_direct): the entry is
 *    "heard" and its state is known;
 *  - other nodes' member lists (peers_merge_member): an "unheard" entry
 *    with a name, an address and the (inc, ver) stamp the list carried,
 *    but no state. Lists may spread a node's leave, but never change the
 *    address of a node heard from: that is the node's own to say. Unheard
 * entries raise no event until the node's own record arrives; that record is
 * taken even when its stamp only equals the listed one, since the list carried
 * the stamp but not the content.
 *
 * Every entry has one deadline: lost_after after its silence began while
 * alive, reap_after after its status changed while lost or left. The
 * table keeps the earliest (p->next): a tick computes it anew, every
 * merge brings it forward to the deadline of the entry it touched, and a
 * grace only pushes deadlines later, so p->next is never later than a
 * deadline that exists.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"
#include "recpool.h"
#include "util.h"

#define PEERS_CAP_MIN 16

/* ---- table ---- */

/* The index (p->slot): every entry by a keyed hash of its name (SipHash,
 * a key drawn per table, so that names a key holder chooses can't pile
 * into one run), open addressing with linear probing, at most half
 * full. Finding a name costs a hash and a probe or two, where a search
 * of the sorted entries would cost log2(n) comparisons, each a miss in
 * the cache. */
#define PEERS_SLOTS_MIN 32
_Static_assert(crypto_shorthash_KEYBYTES == sizeof(((struct peers *)0)->key),
               "key size");

static uint32_t hash_name(const struct peers *p, const char *name) {
  unsigned char h[crypto_shorthash_BYTES];
  uint32_t v;

  crypto_shorthash(h, (const unsigned char *)name, strlen(name), p->key);
  memcpy(&v, h, sizeof(v));
  return v;
}

/* The entry of name, or NULL. The last one found is remembered: the
 * handling of one message asks for its sender several times (the replay
 * guard, the merge, the freshness and version notes), and in a large
 * table each search of the index is a few misses of the cache. */
static struct peer *index_find(const struct peers *p, const char *name) {
  struct peers *q = (struct peers *)(uintptr_t)p; /* the memo only */
  size_t mask = p->nslots - 1, i;
  uint32_t h;

  if (p->last != NULL && strcmp(p->last->rec->name, name) == 0)
    return p->last;
  if (p->nslots == 0)
    return NULL;
  h = hash_name(p, name);
  for (i = h & mask; p->slot[i] != NULL; i = (i + 1) & mask) {
    if (p->slot[i]->hash == h && strcmp(p->slot[i]->rec->name, name) == 0)
      return q->last = p->slot[i];
  }
  return NULL;
}

static void index_put(struct peer **slot, size_t nslots, struct peer *peer) {
  size_t mask = nslots - 1, i = peer->hash & mask;

  while (slot[i] != NULL)
    i = (i + 1) & mask;
  slot[i] = peer;
}

/* Room in the index for one entry more. Returns 0 or CHOREO_ENOMEM. */
static int index_reserve(struct peers *p) {
  size_t n = p->nslots == 0 ? PEERS_SLOTS_MIN : p->nslots;
  struct peer **slot;

  if (p->nslots == 0)
    randombytes_buf(p->key, sizeof(p->key));
  while (n < 2 * (p->n + 1))
    n *= 2;
  if (n == p->nslots)
    return 0;
  if ((slot = calloc(n, sizeof(*slot))) == NULL)
    return CHOREO_ENOMEM;
  for (size_t i = 0; i < p->n; i++)
    index_put(slot, n, p->v[i]);
  free(p->slot);
  p->slot = slot;
  p->nslots = n;
  return 0;
}

/* Take peer out of the index, moving back the entries of its run that
 * probed past it. */
static void index_del(struct peers *p, const struct peer *peer) {
  size_t mask = p->nslots - 1, i = peer->hash & mask, j;

  if (p->last == peer)
    p->last = NULL;
  while (p->slot[i] != peer)
    i = (i + 1) & mask;
  for (j = (i + 1) & mask; p->slot[j] != NULL; j = (j + 1) & mask) {
    size_t home = p->slot[j]->hash & mask;
    /* Stays unless its home lies cyclically outside (i, j]. */
    bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
    if (!stays) {
      p->slot[i] = p->slot[j];
      i = j;
    }
  }
  p->slot[i] = NULL;
}

/* The index of name, or where it would be inserted. */
static size_t locate(const struct peers *p, const char *name, bool *found) {
  size_t lo = 0, hi = p->n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(p->v[mid]->rec->name, name);
    if (c == 0) {
      *found = true;
      return mid;
    }
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = false;
  return lo;
}

void peers_init(struct peers *p, const char *self, size_t max,
                peers_event_fn on_event, void *arg) {
  memset(p, 0, sizeof(*p));
  /* A self name too long to be valid can't match a valid peer's either. */
  (void)strlcpy_checked(p->self, self != NULL ? self : "", sizeof(p->self));
  p->max = max;
  p->on_event = on_event;
  p->arg = arg;
  p->next = UINT64_MAX;
  p->bytes_max = PEERS_BYTES_MAX_DEFAULT;
}

void peers_set_budget(struct peers *p, size_t bytes_max) {
  p->bytes_max = bytes_max;
}

void peers_live(const struct peers *p, size_t *heard, size_t *unheard) {
  *heard = p->live_heard;
  *unheard = p->live_unheard;
}

size_t peers_budget_for(size_t max) {
  if (max <= PEERS_MAX_DEFAULT)
    return PEERS_BYTES_MAX_DEFAULT;
  return max > SIZE_MAX / PEERS_BYTES_PER_MEMBER ? SIZE_MAX
                                                 : max * PEERS_BYTES_PER_MEMBER;
}

void peers_set_max(struct peers *p, size_t max) {
  p->max = max;
  p->bytes_max = peers_budget_for(max);
}

size_t peers_entry_bytes(const struct record *r) {
  /* The record is held in the table's pool: in an agent's, one record
   * per entry, with the pool's header and bucket. */
  size_t bytes = sizeof(struct peer) + sizeof(struct peer *) +
                 sizeof(struct record) + RECPOOL_ENTRY_OVERHEAD;
  const char *key;
  json_t *value;

  json_object_foreach(r->data, key, value) {
    bytes += PEERS_DATA_ENTRY_OVERHEAD + strlen(key);
    if (json_is_string(value))
      bytes += json_string_length(value);
  }
  return bytes;
}

/* Whether the table may grow from `from` to `to` bytes for one entry:
 * shrinking always may; growing must stay within the budget. Counts a
 * refusal. */
static bool within_budget(struct peers *p, size_t from, size_t to) {
  if (to <= from || p->bytes - from + to <= p->bytes_max)
    return true;
  p->budget_drops++;
  return false;
}

struct peer_more *peer_more(struct peer *peer) {
  if (peer->more == NULL)
    peer->more = calloc(1, sizeof(*peer->more));
  return peer->more;
}

void peer_more_free(struct peer *peer) {
  if (peer->more == NULL)
    return;
  free(peer->more->endpoint_addr);
  free(peer->more->alt_addr);
  free(peer->more->share_addr);
  free(peer->more);
  peer->more = NULL;
}

static void peer_destroy(struct peers *p, struct peer *peer) {
  recpool_release(p->pool, peer->rec);
  peer_more_free(peer);
  free(peer);
}

void peers_free(struct peers *p) {
  for (size_t i = 0; i < p->n; i++)
    peer_destroy(p, p->v[i]);
  free(p->v);
  free(p->slot);
  p->v = NULL;
  p->slot = NULL;
  p->last = NULL;
  p->n = p->cap = p->nslots = 0;
  p->marked = 0;
  p->live_heard = p->live_unheard = 0;
  memset(p->rdig, 0, sizeof(p->rdig));
  p->bytes = 0;
  if (!p->pool_shared)
    recpool_free(p->pool);
  p->pool = NULL;
  p->pool_shared = false;
}

void peers_share_pool(struct peers *p, struct recpool *pool) {
  if (p->n > 0)
    return;
  if (!p->pool_shared)
    recpool_free(p->pool);
  p->pool = pool;
  p->pool_shared = true;
}

/* The pool the table's records are held in, made with the first entry
 * unless one is shared; NULL when out of memory. */
static struct recpool *pool_of(struct peers *p) {
  if (p->pool == NULL)
    p->pool = recpool_new();
  return p->pool;
}

/* One node's part of a records digest. */
static uint64_t hash_stamp(const struct record *r) {
  unsigned char num[16];

  for (size_t i = 0; i < 8; i++) {
    num[i] = (unsigned char)(r->inc >> (8 * i));
    num[8 + i] = (unsigned char)(r->ver >> (8 * i));
  }
  return util_fnv(util_fnv(UTIL_FNV_OFFSET, r->name, strlen(r->name) + 1), num,
                  sizeof(num));
}

/* Take the entry's part out of the records digests (p->rdig), or put it
 * back: an XOR, so the same call does both. Slot s's digest leaves out
 * what relay s holds lost. */
static void toggle_digests(struct peers *p, const struct peer *peer) {
  uint64_t h;
  if (!peer->heard || peer->rec->left || peer->status != PEER_ALIVE)
    return;
  h = hash_stamp(peer->rec);
  p->rdig[0] ^= h;
  for (int s = 0; s < PEERS_RELAYS_MAX; s++)
    if (!(peer->lost_by & (1u << s)))
      p->rdig[s + 1] ^= h;
}

/* Count the entry in (sign 1) or out (-1) of p->live_heard,
 * p->live_unheard and the records digests, before and after anything
 * that changes its status, its heard flag or its record (whose left flag
 * and stamp count). */
static void tally(struct peers *p, const struct peer *peer, int sign) {
  size_t *n;
  toggle_digests(p, peer);
  if (peer->status != PEER_ALIVE || peer->rec->left)
    return;
  n = peer->heard ? &p->live_heard : &p->live_unheard;
  *n = sign > 0 ? *n + 1 : *n - 1;
}

/* Make the entry hold r instead of its record. Returns 0 or
 * CHOREO_ENOMEM (the entry unchanged). */
static int hold(struct peers *p, struct peer *peer, const struct record *r) {
  const struct record *held = recpool_hold(p->pool, r);

  if (held == NULL)
    return CHOREO_ENOMEM;
  tally(p, peer, -1);
  recpool_release(p->pool, peer->rec);
  peer->rec = held;
  tally(p, peer, 1);
  return 0;
}

/* Make the entry hold its record with another stamp, left flag and
 * address (addr NULL: the same). Returns 0 or CHOREO_ENOMEM. */
static int restamp(struct peers *p, struct peer *peer, uint64_t inc,
                   uint64_t ver, bool left, const char *addr) {
  struct record r;
  int rv;

  if (record_init(&r) != 0 || record_copy(&r, peer->rec) != 0) {
    record_free(&r);
    return CHOREO_ENOMEM;
  }
  r.inc = inc;
  r.ver = ver;
  r.left = left;
  if (addr != NULL)
    (void)strlcpy_checked(r.addr, addr, sizeof(r.addr));
  rv = hold(p, peer, &r);
  record_free(&r);
  return rv;
}

struct peer *peers_find(const struct peers *p, const char *name) {
  return name != NULL ? index_find(p, name) : NULL;
}

const char *peer_state(const struct peer *peer) {
  switch (peer->status) {
  case PEER_LOST:
    return "lost";
  case PEER_LEFT:
    return "left";
  case PEER_ALIVE:
    break;
  }
  return peer->rec->state;
}

int64_t peer_since(const struct peer *peer) {
  return peer->status == PEER_ALIVE ? peer->rec->since_ms : peer->status_wall;
}

/* A new entry holding r; NULL when out of memory. */
static struct peer *peer_new(struct peers *p, const struct record *r,
                             uint64_t now, int64_t wall) {
  struct recpool *pool = pool_of(p);
  struct peer *peer = calloc(1, sizeof(*peer));

  if (peer == NULL || pool == NULL ||
      (peer->rec = recpool_hold(pool, r)) == NULL) {
    free(peer);
    return NULL;
  }
  peer->status = PEER_ALIVE;
  peer->last_seen = now;
  peer->quiet_since = now;
  peer->status_since = now;
  peer->status_wall = wall;
  peer->changed_at = now;
  peer->endpoint = -1;
  return peer;
}

static int insert_at(struct peers *p, size_t at, struct peer *peer) {
  if (index_reserve(p) != 0)
    return CHOREO_ENOMEM;
  if (p->n == p->cap) {
    size_t cap = p->cap == 0 ? PEERS_CAP_MIN : p->cap * 2;
    struct peer **v = realloc(p->v, cap * sizeof(*v));
    if (v == NULL)
      return CHOREO_ENOMEM;
    p->v = v;
    p->cap = cap;
  }
  memmove(p->v + at + 1, p->v + at, (p->n - at) * sizeof(*p->v));
  p->v[at] = peer;
  p->n++;
  peer->hash = hash_name(p, peer->rec->name);
  index_put(p->slot, p->nslots, peer);
  p->digest_valid = false;
  return 0;
}

static void remove_at(struct peers *p, size_t at) {
  if (!p->v[at]->heard)
    p->unheard--;
  if (p->v[at]->lost_by != 0)
    p->marked--;
  tally(p, p->v[at], -1);
  p->bytes -= peers_entry_bytes(p->v[at]->rec);
  index_del(p, p->v[at]);
  peer_destroy(p, p->v[at]);
  memmove(p->v + at, p->v + at + 1, (p->n - at - 1) * sizeof(*p->v));
  p->n--;
  p->digest_valid = false;
}

/* Add a copy of r at `at` (from locate()). */
static enum peers_result add(struct peers *p, size_t at, const struct record *r,
                             bool heard, uint64_t now, int64_t wall,
                             struct peer **out) {
  struct peer *peer;

  /* Entries only heard of (from member lists) are capped apart: a hostile
   * list of bogus members must not fill the table or open thousands of
   * connections. */
  size_t cost = peers_entry_bytes(r);

  if (p->n >= p->max || (!heard && p->unheard >= PEERS_UNHEARD_MAX))
    return PEERS_FULL;
  if (!within_budget(p, 0, cost))
    return PEERS_OVER_BUDGET;
  peer = peer_new(p, r, now, wall);
  if (peer == NULL)
    return PEERS_NOMEM;
  if (insert_at(p, at, peer) != 0) {
    peer_destroy(p, peer);
    return PEERS_NOMEM;
  }
  peer->heard = heard;
  if (!heard)
    p->unheard++;
  tally(p, peer, 1);
  p->bytes += cost;
  if (out != NULL)
    *out = peer;
  return PEERS_NEW;
}

/* ---- deadlines ---- */

/* When a tick has something to do about the entry: lose it, or forget
 * it. */
/* The relays' slots whose relay is alive here, as bits. */
static unsigned live_relays(const struct peers *p) {
  unsigned mask = 0;
  for (size_t s = 0; s < PEERS_RELAYS_MAX; s++)
    if (p->relays[s] != NULL && p->relays[s]->status == PEER_ALIVE)
      mask |= 1u << s;
  return mask;
}

/* A leaf whose liveness the relays' verdicts decide here. */
static bool covered(const struct peers *p, const struct peer *peer) {
  return p->covered && peer->relayed && !peer->is_relay;
}

/* Every change of an entry's lost_by goes through here, which keeps
 * p->marked and the records digests. */
static void set_lost_by(struct peers *p, struct peer *peer, uint8_t v) {
  if (peer->lost_by == v)
    return;
  if (peer->lost_by == 0)
    p->marked++;
  else if (v == 0)
    p->marked--;
  toggle_digests(p, peer);
  peer->lost_by = v;
  toggle_digests(p, peer);
}

/* Whether the relays alive here (live, as bits; 0: none) all hold a
 * covered leaf lost. */
static bool judged_lost(const struct peer *peer, unsigned live) {
  return live != 0 && (peer->lost_by & live) == live;
}

static uint64_t deadline(const struct peers *p, const struct peer *peer) {
  if (peer->status != PEER_ALIVE)
    return util_add_sat(peer->status_since, p->reap_after);
  if (!covered(p, peer))
    return util_add_sat(peer->quiet_since, p->lost_after);
  /* While a relay is heard, it speaks for the leaves: no silence counts.
   * Without one, their silence counts from the last relay heard. */
  if (live_relays(p) != 0)
    return UINT64_MAX;
  return util_add_sat(peer->quiet_since > p->relay_heard_at ? peer->quiet_since
                                                            : p->relay_heard_at,
                      p->lost_after);
}

static void arm(struct peers *p, const struct peer *peer) {
  uint64_t due = deadline(p, peer);
  if (due < p->next)
    p->next = due;
}

/* ---- events ---- */

static void emit(const struct peers *p, const struct peer *peer,
                 enum peer_event_type type, const char *previous,
                 int64_t wall) {
  struct peer_event ev = {
      .type = type,
      .peer = peer,
      .state = peer_state(peer),
      .previous = previous,
      .reason = peer->rec->reason,
      .time_ms = wall,
  };

  if (p->on_event != NULL)
    p->on_event(p->arg, &ev);
}

const char *peer_event_name(enum peer_event_type t) {
  switch (t) {
#define XX(id, s)                                                              \
  case PEER_EV_##id:                                                           \
    return s;
    PEER_EVENT_MAP(XX)
#undef XX
  }
  return "unknown";
}

/* ---- records from the node itself ---- */

/* What a peer looked like before a merge, for the events after it. */
struct before {
  enum peer_status status;
  bool heard;
  char shown[CHOREO_STATE_MAX + 1]; /* peer_state() */
  char state[CHOREO_STATE_MAX + 1]; /* rec.state */
};

static void remember(struct before *b, const struct peer *peer) {
  b->status = peer->status;
  b->heard = peer->heard;
  (void)strlcpy_checked(b->shown, peer_state(peer), sizeof(b->shown));
  (void)strlcpy_checked(b->state, peer->rec->state, sizeof(b->state));
}

static void set_status(struct peers *p, struct peer *peer, enum peer_status s,
                       uint64_t now, int64_t wall) {
  if (peer->status != s) {
    tally(p, peer, -1);
    peer->status = s;
    tally(p, peer, 1);
    peer->status_since = now;
    peer->status_wall = wall;
  }
}

/* A message from the node itself at now: its silence starts again. */
static void seen(struct peer *peer, uint64_t now) {
  peer->last_seen = now;
  peer->quiet_since = now;
}

/* A newer record marked left: the node is gone, so its last state and
 * data changes are not reported, only the leave (and only if observers
 * ever saw the node: a never-heard node leaves silently). */
static void take_left(struct peers *p, struct peer *peer,
                      const struct before *b, uint64_t now, int64_t wall) {
  if (b->status == PEER_LEFT)
    return;
  set_status(p, peer, PEER_LEFT, now, wall);
  if (b->heard)
    emit(p, peer, PEER_EV_LEFT, b->shown, wall);
}

/* A newer record, not left: the node is alive and heard. */
static void take_alive(struct peers *p, struct peer *peer,
                       const struct before *b, bool data_changed, uint64_t now,
                       int64_t wall) {
  bool state_changed = strcmp(b->state, peer->rec->state) != 0;

  if (!peer->heard)
    p->unheard--;
  tally(p, peer, -1);
  peer->heard = true;
  tally(p, peer, 1);
  seen(peer, now);
  set_status(p, peer, PEER_ALIVE, now, wall);
  if (!b->heard) {
    emit(p, peer, PEER_EV_JOINED, "", wall);
    return;
  }
  if (b->status != PEER_ALIVE)
    emit(p, peer, PEER_EV_JOINED, b->shown, wall);
  if (state_changed)
    emit(p, peer, PEER_EV_STATE, b->state, wall);
  if (data_changed)
    emit(p, peer, PEER_EV_DATA, b->state, wall);
}

static enum peers_result replace(struct peers *p, struct peer *peer,
                                 const struct record *r, uint64_t now,
                                 int64_t wall) {
  struct before b;
  /* Groups decide which behaviours watch the node, and the events of
   * docs/CONFIGURATION.md have no name for their change: it is reported as
   * "data", a change of what the node publishes besides its state. */
  bool data_changed =
      !record_same_data(r, peer->rec) || !record_same_groups(r, peer->rec);
  /* The view digest covers name, addr, inc and left: a new state or new
   * data (the common change) leaves it as it is, and recomputing it is a
   * pass over the whole table. */
  bool view_changed = r->inc != peer->rec->inc || r->left != peer->rec->left ||
                      strcmp(r->addr, peer->rec->addr) != 0;
  size_t was = peers_entry_bytes(peer->rec), cost = peers_entry_bytes(r);

  if (!within_budget(p, was, cost))
    return PEERS_OVER_BUDGET;
  remember(&b, peer);
  if (hold(p, peer, r) != 0)
    return PEERS_NOMEM;
  peer->changed_at = now;
  if (view_changed)
    p->digest_valid = false;
  p->bytes = p->bytes - was + cost;
  if (r->left)
    take_left(p, peer, &b, now, wall);
  else
    take_alive(p, peer, &b, data_changed, now, wall);
  return PEERS_UPDATED;
}

/* The same (inc, ver) again: a heartbeat. It proves the node alive. */
static enum peers_result refresh(struct peers *p, struct peer *peer,
                                 uint64_t now, int64_t wall) {
  if (peer->status == PEER_LEFT)
    return PEERS_STALE;
  seen(peer, now);
  if (peer->status == PEER_LOST) {
    set_status(p, peer, PEER_ALIVE, now, wall);
    emit(p, peer, PEER_EV_JOINED, "lost", wall);
  }
  return PEERS_UPDATED;
}

static enum peers_result merge_direct(struct peers *p, const struct record *r,
                                      uint64_t now, int64_t wall,
                                      struct peer **out) {
  enum peers_result res;
  struct peer *peer;
  bool found;
  size_t at;
  int cmp;

  if (strcmp(r->name, p->self) == 0)
    return PEERS_SELF;
  if ((peer = index_find(p, r->name)) == NULL) {
    /* A stranger that already left is not worth an entry. */
    if (r->left)
      return PEERS_STALE;
    at = locate(p, r->name, &found);
    res = add(p, at, r, true, now, wall, &peer);
    if (res == PEERS_NEW) {
      *out = peer;
      emit(p, peer, PEER_EV_JOINED, "", wall);
    }
    return res;
  }
  *out = peer;
  cmp = record_cmp(r, peer->rec);
  if (cmp >= 0)
    /* The node itself speaks: what the relays held no longer stands. */
    set_lost_by(p, peer, 0);
  if (cmp > 0 || (cmp == 0 && !peer->heard)) {
    res = replace(p, peer, r, now, wall);
    if (res == PEERS_NOMEM || res == PEERS_OVER_BUDGET)
      *out = NULL;
    return res;
  }
  return cmp == 0 ? refresh(p, peer, now, wall) : PEERS_STALE;
}

enum peers_result peers_merge_direct(struct peers *p, const struct record *r,
                                     uint64_t now, int64_t wall,
                                     struct peer **out) {
  struct peer *peer = NULL;
  enum peers_result res;

  (void)peers_clock(p, now);
  res = merge_direct(p, r, now, wall, &peer);
  if (peer != NULL)
    arm(p, peer);
  if (out != NULL)
    *out = peer;
  return res;
}

/* ---- member lists ---- */

static int cmp_stamp(uint64_t inc_a, uint64_t ver_a, const struct record *b) {
  if (inc_a != b->inc)
    return inc_a > b->inc ? 1 : -1;
  return (ver_a > b->ver) - (ver_a < b->ver);
}

static enum peers_result add_member(struct peers *p, size_t at,
                                    const struct wire_member *m, uint64_t now,
                                    int64_t wall, struct peer **out) {
  struct record r;
  enum peers_result res;

  if (record_init(&r) != 0)
    return PEERS_NOMEM;
  (void)strlcpy_checked(r.name, m->name, sizeof(r.name));
  (void)strlcpy_checked(r.addr, m->addr, sizeof(r.addr));
  r.inc = m->inc;
  r.ver = m->ver;
  res = add(p, at, &r, false, now, wall, out);
  record_free(&r);
  return res;
}

static enum peers_result member_left(struct peers *p, struct peer *peer,
                                     const struct wire_member *m, uint64_t now,
                                     int64_t wall) {
  char shown[CHOREO_STATE_MAX + 1];

  (void)strlcpy_checked(shown, peer_state(peer), sizeof(shown));
  if (restamp(p, peer, m->inc, m->ver, true, NULL) != 0)
    return PEERS_NOMEM;
  p->digest_valid = false;
  set_status(p, peer, PEER_LEFT, now, wall);
  if (peer->heard)
    emit(p, peer, PEER_EV_LEFT, shown, wall);
  return PEERS_UPDATED;
}

static enum peers_result merge_member(struct peers *p,
                                      const struct wire_member *m, uint64_t now,
                                      int64_t wall, struct peer **out) {
  struct peer *peer;
  bool found;
  size_t at;
  int cmp;

  if (strcmp(m->name, p->self) == 0)
    return PEERS_SELF;
  if ((peer = index_find(p, m->name)) == NULL) {
    if (m->left)
      return PEERS_STALE;
    at = locate(p, m->name, &found);
    return add_member(p, at, m, now, wall, out);
  }
  *out = peer;
  cmp = cmp_stamp(m->inc, m->ver, peer->rec);
  if (m->left)
    return cmp >= 0 && peer->status != PEER_LEFT
               ? member_left(p, peer, m, now, wall)
               : PEERS_STALE;
  /* A node heard from owns its address: only its own record changes it
   * (a restarted node's new address arrives with its first state). A
   * list that could move it would let one message cut the node's inbox
   * off from everyone who took it. A heard entry also keeps the stamp of
   * the record it holds, or the node's own record of that stamp would be
   * taken for a duplicate. */
  if (cmp <= 0 || peer->heard)
    return PEERS_STALE;
  if (restamp(p, peer, m->inc, m->ver, peer->rec->left, m->addr) != 0)
    return PEERS_NOMEM;
  p->digest_valid = false;
  return PEERS_UPDATED;
}

enum peers_result peers_merge_member(struct peers *p,
                                     const struct wire_member *m, uint64_t now,
                                     int64_t wall, struct peer **out) {
  struct peer *peer = NULL;
  enum peers_result res;

  (void)peers_clock(p, now);
  res = merge_member(p, m, now, wall, &peer);
  if (peer != NULL)
    arm(p, peer);
  if (out != NULL)
    *out = peer;
  return res;
}

/* ---- replay guard ---- */

/* (0, 0) means "nothing accepted yet": senders number their messages from
 * 1, so a message stamped (0, 0) is refused from a known node. */
bool peers_accept_seq(struct peers *p, const char *from, uint64_t inc,
                      uint64_t seq) {
  struct peer *peer = peers_find(p, from);

  if (peer == NULL)
    return true;
  if (inc < peer->msg_inc || (inc == peer->msg_inc && seq <= peer->msg_seq))
    return false;
  peer->msg_inc = inc;
  peer->msg_seq = seq;
  return true;
}

/* ---- time ---- */

void peers_set_timing(struct peers *p, uint64_t heartbeat, uint64_t lost_after,
                      uint64_t reap_after) {
  p->heartbeat = heartbeat;
  p->lost_after = lost_after;
  p->reap_after = reap_after;
  /* Shorter timeouts bring deadlines forward: recompute them all. */
  p->next = UINT64_MAX;
  for (size_t i = 0; i < p->n; i++)
    arm(p, p->v[i]);
}

uint64_t peers_next_deadline(const struct peers *p) {
  return p->next;
}

bool peers_stalled(const struct peers *p, uint64_t now) {
  uint64_t limit = 2 * p->heartbeat;

  if (p->heartbeat == 0 || !p->clocked || now <= p->clock)
    return false;
  if (p->lost_after > p->heartbeat && p->lost_after - p->heartbeat > limit)
    limit = p->lost_after - p->heartbeat;
  return now - p->clock > limit;
}

void peers_grace(struct peers *p, uint64_t now) {
  /* Deadlines only move later: p->next stays a safe (early) bound. */
  for (size_t i = 0; i < p->n; i++) {
    struct peer *peer = p->v[i];
    if (peer->status == PEER_ALIVE && peer->quiet_since < now)
      peer->quiet_since = now;
  }
}

bool peers_clock(struct peers *p, uint64_t now) {
  bool stalled = peers_stalled(p, now);

  if (stalled) {
    uint64_t gap = now - p->clock;
    p->stalls++;
    if (gap > p->stall_ms)
      p->stall_ms = gap;
    peers_grace(p, now);
  }
  if (!p->clocked || now > p->clock)
    p->clock = now;
  p->clocked = true;
  return stalled;
}

static void lose(struct peers *p, struct peer *peer, uint64_t now,
                 int64_t wall) {
  set_status(p, peer, PEER_LOST, now, wall);
  if (peer->heard)
    emit(p, peer, PEER_EV_LOST, peer->rec->state, wall);
}

static void free_slot(struct peers *p, const struct peer *relay);

/* One pass of peers_tick(), with the relays alive here as bits. */
static void tick_pass(struct peers *p, uint64_t now, int64_t wall,
                      unsigned live) {
  size_t i = 0;

  p->next = UINT64_MAX;
  while (i < p->n) {
    struct peer *peer = p->v[i];
    if (peer->status == PEER_ALIVE && covered(p, peer) &&
        judged_lost(peer, live))
      lose(p, peer, now, wall);
    if (peer->status == PEER_ALIVE && now >= deadline(p, peer)) {
      lose(p, peer, now, wall);
      if (!peer->heard) {
        /* Never heard from and now silent: a name someone's list gave us
         * that we can't reach. Forget it at once, connection included. */
        emit(p, peer, PEER_EV_REAPED, "", wall);
        remove_at(p, i);
        continue;
      }
    }
    if (peer->status != PEER_ALIVE && now >= deadline(p, peer)) {
      emit(p, peer, PEER_EV_REAPED, "", wall);
      if (peer->is_relay)
        free_slot(p, peer);
      remove_at(p, i);
      continue;
    }
    arm(p, peer);
    i++;
  }
}

uint64_t peers_tick(struct peers *p, uint64_t now, int64_t wall,
                    uint64_t lost_after, uint64_t reap_after) {
  unsigned live;

  p->lost_after = lost_after;
  p->reap_after = reap_after;
  (void)peers_clock(p, now);
  live = live_relays(p);
  tick_pass(p, now, wall, live);
  /* A relay lost in this pass no longer speaks for the leaves: judge
   * them again by the relays left. */
  if (live_relays(p) != live)
    tick_pass(p, now, wall, live_relays(p));
  return p->next;
}

/* ---- relays ---- */

void peers_set_covered(struct peers *p, bool on) {
  if (p->covered != on) {
    p->covered = on;
  }
}

bool peers_all_speak(const struct peers *p, uint32_t minor) {
  for (size_t i = 0; i < p->n; i++) {
    const struct peer *peer = p->v[i];
    if (peer->status == PEER_ALIVE && peer->version_heard &&
        peer->proto < minor)
      return false;
  }
  return true;
}

void peer_passed(struct peer *peer, const struct record *r) {
  struct peer_more *m = peer_more(peer);
  /* Out of memory: not remembered, so it is passed on again. */
  if (m == NULL)
    return;
  m->passed = true;
  m->passed_inc = r->inc;
  m->passed_ver = r->ver;
}

size_t peers_relays_alive(const struct peers *p, const struct peer *except,
                          const char **names) {
  size_t n = 0;
  for (size_t s = 0; s < PEERS_RELAYS_MAX; s++) {
    const struct peer *r = p->relays[s];
    if (r != NULL && r != except && r->is_relay && r->status == PEER_ALIVE)
      names[n++] = r->rec->name;
  }
  return n;
}

int peers_relay_slot(const struct peers *p, const char *name) {
  for (int s = 0; s < PEERS_RELAYS_MAX; s++)
    if (p->relays[s] != NULL && strcmp(p->relays[s]->rec->name, name) == 0)
      return s;
  return -1;
}

/* The relay's slot is free again, and what it held lost with it. */
static void free_slot(struct peers *p, const struct peer *relay) {
  for (int s = 0; s < PEERS_RELAYS_MAX; s++) {
    if (p->relays[s] != relay)
      continue;
    p->relays[s] = NULL;
    for (size_t i = 0; p->marked > 0 && i < p->n; i++)
      set_lost_by(p, p->v[i], p->v[i]->lost_by & (uint8_t) ~(1u << s));
    p->self_lost_by &= (uint8_t) ~(1u << s);
  }
}

void peers_note_roles(struct peers *p, struct peer *peer, bool leaf, bool relay,
                      uint64_t now) {
  if (peer->relayed != (leaf && !relay) || peer->is_relay != relay) {
    if (peer->is_relay && !relay)
      free_slot(p, peer);
    peer->relayed = leaf && !relay;
    peer->is_relay = relay;
  }
  if (!relay)
    return;
  p->relay_heard_at = now;
  if (peers_relay_slot(p, peer->rec->name) >= 0)
    return;
  for (size_t s = 0; s < PEERS_RELAYS_MAX; s++)
    if (p->relays[s] == NULL) {
      p->relays[s] = peer;
      return;
    }
}

size_t peers_relay_verdicts(struct peers *p, const char *relay, uint64_t inc,
                            uint64_t seq, const struct wire_lost *v, size_t n,
                            bool complete, uint64_t now, int64_t wall) {
  int slot = peers_relay_slot(p, relay);
  struct peer_more *rm;
  uint8_t bit;
  size_t lost = 0;
  unsigned live;

  if (!p->covered || slot < 0)
    return 0;
  if ((rm = peer_more(p->relays[slot])) == NULL || inc < rm->verdict_inc ||
      (inc == rm->verdict_inc && seq <= rm->verdict_seq))
    return 0;
  rm->verdict_inc = inc;
  rm->verdict_seq = seq;
  bit = (uint8_t)(1u << slot);
  (void)peers_clock(p, now);
  if (complete) {
    /* What the relay no longer lists, it no longer holds lost. */
    for (size_t i = 0; p->marked > 0 && i < p->n; i++)
      set_lost_by(p, p->v[i], p->v[i]->lost_by & (uint8_t)~bit);
    if (p->self_lost_by & bit) {
      p->self_lost_by &= (uint8_t)~bit;
    }
  }
  for (size_t i = 0; i < n; i++) {
    struct peer *peer = peers_find(p, v[i].name);
    if (strcmp(v[i].name, p->self) == 0 && !(p->self_lost_by & bit)) {
      p->self_lost_by |= bit;
    }
    /* An older record than ours: the node spoke since the relay lost it. */
    if (peer == NULL || !covered(p, peer) ||
        cmp_stamp(v[i].inc, v[i].ver, peer->rec) < 0 || (peer->lost_by & bit))
      continue;
    set_lost_by(p, peer, peer->lost_by | bit);
  }
  live = live_relays(p);
  /* Only an entry some relay holds lost can be judged lost. */
  for (size_t i = 0; p->marked > 0 && i < p->n; i++) {
    struct peer *peer = p->v[i];
    if (peer->status == PEER_ALIVE && covered(p, peer) &&
        judged_lost(peer, live)) {
      lose(p, peer, now, wall);
      arm(p, peer);
      lost++;
    }
  }
  return lost;
}

size_t peers_verdicts(const struct peers *p, struct wire_lost *out, size_t max,
                      uint32_t *total) {
  size_t k = 0;
  uint32_t all = 0;

  for (size_t i = 0; i < p->n; i++) {
    const struct peer *peer = p->v[i];
    size_t at;
    if (peer->status != PEER_LOST || !peer->heard || !peer->relayed)
      continue;
    all++;
    /* Keep the max most recently lost, newest first (insertion). */
    for (at = k; at > 0; at--) {
      const struct peer *q = peers_find(p, out[at - 1].name);
      if (q->status_since >= peer->status_since)
        break;
    }
    if (at >= max)
      continue;
    if (k < max)
      k++;
    memmove(out + at + 1, out + at, (k - 1 - at) * sizeof(*out));
    (void)strlcpy_checked(out[at].name, peer->rec->name, sizeof(out[at].name));
    out[at].inc = peer->rec->inc;
    out[at].ver = peer->rec->ver;
  }
  if (total != NULL)
    *total = all;
  return k;
}

/* ---- digest and counts ---- */

/* util_fnv() of s and its NUL, in one pass. */
static uint64_t fnv_str(uint64_t h, const char *s) {
  const unsigned char *b = (const unsigned char *)s;
  do {
    h ^= *b;
    h *= UTIL_FNV_PRIME;
  } while (*b++ != '\0');
  return h;
}

/* Strings end with their NUL and numbers have a fixed width and byte
 * order, so different splits of the same bytes hash differently. */
static uint64_t hash_member(uint64_t h, const struct record *r) {
  unsigned char num[9];

  h = fnv_str(h, r->name);
  h = fnv_str(h, r->addr);
  for (size_t i = 0; i < 8; i++)
    num[i] = (unsigned char)(r->inc >> (8 * i));
  num[8] = r->left ? 1 : 0;
  return util_fnv(h, num, sizeof(num));
}

uint64_t peers_digest(struct peers *p, const struct record *self) {
  uint64_t h = UTIL_FNV_OFFSET;
  size_t at = p->n, lo = 0, hi = p->n;

  if (p->digest_valid && p->digest_self == self &&
      (self == NULL ||
       (self->inc == p->digest_inc && self->left == p->digest_left)))
    return p->digest;

  /* Our own record goes where its name sorts: found once, by bisection,
   * not compared with every entry (at 10,000 members the comparisons
   * cost as much as the hashing). */
  if (self != NULL) {
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (strcmp(self->name, p->v[mid]->rec->name) < 0)
        hi = mid;
      else
        lo = mid + 1;
    }
    at = lo;
  }
  for (size_t i = 0; i <= p->n; i++) {
    if (self != NULL && i == at)
      h = hash_member(h, self);
    if (i < p->n)
      h = hash_member(h, p->v[i]->rec);
  }
  p->digest = h;
  p->digest_valid = true;
  p->digest_self = self;
  p->digest_inc = self != NULL ? self->inc : 0;
  p->digest_left = self != NULL && self->left;
  return h;
}

bool peers_same_view(struct peers *p, const struct record *self,
                     uint64_t digest, uint32_t known) {
  if ((uint64_t)known != (uint64_t)p->n + (self != NULL ? 1 : 0))
    return false;
  return digest == peers_digest(p, self);
}

uint64_t peers_records_digest(struct peers *p, const struct record *self,
                              int slot) {
  size_t c = slot < 0 || slot >= PEERS_RELAYS_MAX ? 0 : (size_t)slot + 1;
  uint8_t bit = c == 0 ? 0 : (uint8_t)(1u << slot);
  uint64_t h = p->rdig[c]; /* kept as the table changes (tally()) */

  if (self != NULL && !(p->self_lost_by & bit))
    h ^= hash_stamp(self);
  return h;
}

void peers_count(const struct peers *p, size_t *alive, size_t *lost,
                 size_t *left) {
  size_t c[3] = {0, 0, 0};

  for (size_t i = 0; i < p->n; i++)
    c[p->v[i]->status]++;
  if (alive != NULL)
    *alive = c[PEER_ALIVE];
  if (lost != NULL)
    *lost = c[PEER_LOST];
  if (left != NULL)
    *left = c[PEER_LEFT];
}

/* ---- force-leave ---- */

int peers_force_lost(struct peers *p, const char *name, uint64_t now,
                     int64_t wall) {
  struct peer *peer = peers_find(p, name);

  if (peer == NULL)
    return CHOREO_ENOTFOUND;
  if (peer->status != PEER_ALIVE)
    return CHOREO_EINVAL;
  lose(p, peer, now, wall);
  arm(p, peer);
  return 0;
}

int peers_force_leave(struct peers *p, const char *name, bool force,
                      uint64_t now, int64_t wall) {
  struct peer *peer = peers_find(p, name);
  char shown[CHOREO_STATE_MAX + 1];

  if (peer == NULL)
    return CHOREO_ENOTFOUND;
  if (peer->status == PEER_LEFT)
    return CHOREO_EINVAL;
  if (peer->status == PEER_ALIVE && !force)
    return CHOREO_EREFUSED;
  (void)strlcpy_checked(shown, peer_state(peer), sizeof(shown));
  set_status(p, peer, PEER_LEFT, now, wall);
  arm(p, peer);
  if (peer->heard)
    emit(p, peer, PEER_EV_LEFT, shown, wall);
  return 0;
}
