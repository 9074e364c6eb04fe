/*
 * wire.h — the messages agents exchange, as JSON (docs/PROTOCOL.md).
 *
 * Every message is an envelope {"v":1,"cluster","from","inc","seq","type",…}.
 * hello, state and leave carry the sender's own record; members carries the
 * sender's view of the membership. The decoder trusts nothing: every field
 * is type-checked and bounded, and each rejection has a reason of its own
 * so it can be counted.
 */
#ifndef CHOREO_WIRE_H
#define CHOREO_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "identity.h"
#include "record.h"

/* Versions (docs/PROTOCOL.md "Versions"). "v" is the major format: a
 * message of another major is dropped. Within it, a protocol minor only
 * adds optional fields. Every message says which minors its sender
 * speaks ("proto": [min, max]); a message without it is 0.1.0's (minor
 * 0). Each receiver reads a sender's fields up to the highest minor both
 * speak (wire_proto_agree()); one published message goes to every
 * member, so it carries the fields of the sender's highest minor, which
 * older receivers ignore. */
#define WIRE_VERSION 1
#define WIRE_PROTO_MIN 0
/* The minor that added the optional fields of quiet relays: "relay",
 * "lost", "nlost", "lost_sig", "rdigest" and "resync" (docs/PROTOCOL.md
 * "Relays"). */
#define WIRE_PROTO_QUIET 2
#ifdef CHOREO_PROTO_NEXT
/* A test build (meson -Dproto_next=true): one minor more, whose only
 * addition is the optional "heartbeat_ms", so that negotiation is tested
 * before the next release exists. */
#define WIRE_PROTO_MAX 3
#else
#define WIRE_PROTO_MAX 2
#endif
/* The minor that added "heartbeat_ms" (a proto_next build only). */
#define WIRE_PROTO_HEARTBEAT 3
/* The largest minor a message may claim; a larger one is over_limit. */
#define WIRE_PROTO_LIMIT 65535
/* Member entries in one members message; a larger view is sent as several
 * messages. Bounded so that a message stays well under CHOREO_MSG_MAX. */
#define WIRE_MEMBERS_MAX 256
/* Members a sender says it can't hear, in one message (docs/PROTOCOL.md
 * "Unheard"). */
#define WIRE_UNHEARD_MAX 8
/* Nonces echoed in one message (docs/PROTOCOL.md "Freshness"). */
#define WIRE_ECHO_MAX 32
/* Names whose certificates a sender asks for, in one message
 * (docs/PROTOCOL.md "Certificates on demand"). */
#define WIRE_WANT_MAX 8
/* Revocations carried in one message (docs/PROTOCOL.md "Revocations"). */
#define WIRE_REVOKED_MAX 32
/* Verdicts of a relay listed in one message; a relay holding more says
 * how many in "nlost" (docs/PROTOCOL.md "Relays"). */
#define WIRE_LOST_MAX 32
/* The largest "nlost" a message may claim. */
#define WIRE_LOST_TOTAL_MAX 1000000

#define WIRE_TYPE_MAP(XX)                                                      \
  XX(HELLO, "hello")     /* a newcomer's record: answer with members */        \
  XX(STATE, "state")     /* the sender's record: heartbeat or change */        \
  XX(MEMBERS, "members") /* the sender's member view */                        \
  XX(LEAVE, "leave")     /* the sender's record, marked left */

enum wire_type {
#define XX(id, s) WIRE_##id,
  WIRE_TYPE_MAP(XX)
#undef XX
};

/* Why a message was rejected; each maps to a counter in metrics.h. */
#define WIRE_REJECT_MAP(XX)                                                    \
  XX(TOO_BIG, "too_big")           /* larger than CHOREO_MSG_MAX */            \
  XX(NOT_JSON, "not_json")         /* not a JSON object */                     \
  XX(BAD_VERSION, "bad_version")   /* "v" missing or not WIRE_VERSION */       \
  XX(PROTO, "proto_unsupported")   /* "proto" shares no minor with ours */     \
  XX(UNKNOWN_TYPE, "unknown_type") /* "type" not one of WIRE_TYPE_MAP */       \
  XX(BAD_FIELD, "bad_field")       /* a field missing, of a wrong type or      \
                                      with invalid characters */               \
  XX(OVER_LIMIT, "over_limit")     /* a string, count or number too large */

enum wire_reject {
  WIRE_OK = 0,
#define XX(id, s) WIRE_REJECT_##id,
  WIRE_REJECT_MAP(XX)
#undef XX
};

struct wire_error {
  enum wire_reject reason;
  char detail[160]; /* e.g. "field \"state\": not a valid state" */
  /* The sender's name when "from" was a valid name (a message of another
   * version is logged once per sender), else "". */
  char from[CHOREO_NAME_MAX + 1];
};

/* One entry of a members message. */
struct wire_member {
  char name[CHOREO_NAME_MAX + 1];
  char addr[CHOREO_ADDR_MAX + 1];
  uint64_t inc, ver;
  bool left;
  /* With identity: the node's own signature of this head (name, addr,
   * inc, ver, left and the hash of its record's body), as it signed it. */
  bool has_sig;
  uint8_t body_hash[ID_HASH_BYTES];
  uint8_t sig[ID_SIG_BYTES];
};

/* A nonce echoed back to the node that sent it: proof for that node that
 * the message was sent after it started. */
struct wire_echo {
  char name[CHOREO_NAME_MAX + 1];
  uint64_t nonce;
};

/* One verdict of a relay: a member it holds lost by its own detection,
 * at the record (inc, ver) it holds of it. */
struct wire_lost {
  char name[CHOREO_NAME_MAX + 1];
  uint64_t inc, ver;
};

struct wire_msg {
  enum wire_type type;
  char cluster[CHOREO_CLUSTER_MAX + 1];
  char from[CHOREO_NAME_MAX + 1];
  uint64_t inc;  /* the sender's incarnation */
  uint64_t seq;  /* grows with every message the sender publishes */
  uint64_t time; /* the sender's clock, unix ms, when it sent; 0: absent */
  /* The sender is a leaf (network.relays): it publishes to its relays
   * only, which forward its state and leave messages to every member. */
  bool leaf;
  /* Freshness (with a key ring; docs/PROTOCOL.md): the sender's nonce,
   * drawn at each start (0: absent); whether it waits for peers to echo
   * it ("proving"); the nonces of others it echoes. */
  uint64_t nonce;
  bool proving;
  size_t necho;
  struct wire_echo echo[WIRE_ECHO_MAX];
  /* Members the sender holds as lost while it hears others: each, on
   * reading its name here, makes its connection to the sender anew (its
   * messages may be stuck behind a TCP retransmission back-off). */
  size_t nunheard;
  char unheard[WIRE_UNHEARD_MAX][CHOREO_NAME_MAX + 1];
  /* Versions: whether the message said which protocol minors its sender
   * speaks ("proto"; false: a 0.1.0 agent, [0, 0]), that range, and the
   * sender's release ("release", e.g. "0.2.0"; "" when absent). The
   * encoder always writes this agent's own (WIRE_PROTO_MIN..MAX,
   * CHOREO_VERSION). */
  bool versioned;
  uint32_t proto_min, proto_max;
  char release[CHOREO_RELEASE_MAX + 1];
  /* Minor WIRE_PROTO_HEARTBEAT: the sender's heartbeat period (ms; 0:
   * absent). Decoded only by a build that speaks that minor. */
  uint64_t heartbeat_ms;

  /* Identity (docs/PROTOCOL.md "Identity"), all optional: the sender's
   * signature of rec's head ("rec.sig"), its certificate ("cert": an
   * object, parsed by the identity layer) and operators' revocations
   * ("revoked": an array of at most WIRE_REVOKED_MAX objects). The
   * message owns one reference to each object (NULL: absent). */
  bool has_sig;
  uint8_t sig[ID_SIG_BYTES];
  json_t *cert;
  json_t *revoked;
  /* "want_cert": members whose signed records arrived without a
   * certificate the sender holds; each sends its certificate again. */
  size_t nwant;
  char want_cert[WIRE_WANT_MAX][CHOREO_NAME_MAX + 1];

  /* Quiet relays (minor WIRE_PROTO_QUIET; docs/PROTOCOL.md "Relays"), all
   * optional and decoded from any sender, like the identity fields. */
  bool relay;   /* "relay": true — the sender is a relay */
  size_t nlost; /* "lost": at most WIRE_LOST_MAX verdicts, newest first */
  struct wire_lost lost[WIRE_LOST_MAX];
  /* "nlost": how many the sender holds lost in all (>= nlost; the list is
   * complete when equal; at most WIRE_LOST_TOTAL_MAX). */
  uint32_t lost_total;
  /* "lost_sig": base64 of ID_SIG_BYTES, the relay's signature of its
   * verdicts (identity). */
  bool has_lost_sig;
  uint8_t lost_sig[ID_SIG_BYTES];
  /* "rdigest": 16 lowercase hex digits, the sender's records digest. */
  bool has_rdigest;
  uint64_t rdigest;
  bool resync; /* "resync": true — the sender asks relays to pass on every
                  record again */

  /* hello, state, leave: the sender's record (rec.name == from,
   * rec.inc == inc) and a digest of its member view. */
  struct record rec;
  uint64_t digest;
  uint32_t nknown; /* members in the sender's view, itself included */

  /* members */
  size_t nmembers;
  struct wire_member *members; /* owned */
};

/* Prepare m (no I/O). Returns 0 or CHOREO_ENOMEM. */
int wire_msg_init(struct wire_msg *m);
/* Release what m owns. */
void wire_msg_free(struct wire_msg *m);

/* Encode m. On success the caller owns *out (free()) of *len bytes, not
 * NUL-terminated on the wire. Returns 0, CHOREO_ENOMEM, or CHOREO_ETOOBIG
 * when the result would exceed CHOREO_MSG_MAX. CHOREO_EINVAL: m holds what
 * no receiver would accept (a string not UTF-8, a counter above
 * RECORD_COUNTER_MAX, more than WIRE_MEMBERS_MAX members, more than
 * WIRE_LOST_MAX verdicts or a lost_total below nlost or above
 * WIRE_LOST_TOTAL_MAX). */
int wire_encode(const struct wire_msg *m, char **out, size_t *len);

/* Decode len bytes into m (initialised; previous content replaced). Returns
 * 0, or CHOREO_EDECODE with err saying why (err may not be NULL), or
 * CHOREO_ENOMEM. Nothing in buf is trusted. */
int wire_decode(const void *buf, size_t len, struct wire_msg *m,
                struct wire_error *err);

/* The minor a receiver speaking [our_min, our_max] reads a sender's
 * messages in, the sender speaking [their_min, their_max]: the highest
 * in both. Returns true and *out, or false when the ranges don't meet
 * (the message is dropped: proto_unsupported). */
bool wire_proto_agree(uint32_t our_min, uint32_t our_max, uint32_t their_min,
                      uint32_t their_max, uint32_t *out);

const char *wire_type_name(enum wire_type t);
const char *wire_reject_name(enum wire_reject r);

/* An address a member may advertise: tcp://, ipc:// or inproc:// and
 * something after it, printable ASCII only (it goes to nn_connect() and
 * to logs). */
bool wire_valid_addr(const char *s);

#endif
